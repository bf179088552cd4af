//! The host killed with SIGKILL in the middle of a large push, then started again on the
//! same data folder: the blob is absent or complete, never corrupt; nothing partial is
//! served; the upload session resumes from the byte where the data stops, and a fresh
//! upload works as well. Killed again inside the blob's commit (seen there, frozen, then
//! killed), it leaves no blob and the whole session, and the PUT again finishes the push.
//!
//! This runs the real `hoist-host` binary as a child process, so the kill is a real one:
//! no destructor, no flush, no chance to tidy up.

use hoist_tests::hoist_server::admin_basic;
use hoist_tests::host_process::HostProcess;
use hoist_tests::wait_until;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// The blob: large enough that a push takes many reads and writes on each side.
const SIZE: u64 = 96 * MIB;
/// Where the first push stops sending and waits to be killed.
const PAUSE_AT: u64 = 48 * MIB;
/// What the host must hold before the kill: well into the blob.
const KILL_AFTER: u64 = 40 * MIB;
const SEED: u64 = 0x5eed_c0ffee;

/// Byte `offset` of the test blob's bytes: a pure function of the position, so that any
/// range can be produced again to resume from an arbitrary byte.
fn fill(offset: u64, buf: &mut [u8]) {
    fn word(i: u64) -> [u8; 8] {
        // splitmix64
        let mut z = (SEED ^ i).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }
    let mut o = offset;
    let mut i = 0;
    while i < buf.len() {
        let w = word(o / 8);
        let skip = (o % 8) as usize;
        let n = (8 - skip).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&w[skip..skip + n]);
        i += n;
        o += n as u64;
    }
}

/// The blob's bytes from `pos` to `end`, generated as they are read. With a pause, the
/// reader stops at that offset until told to go on, then fails (the host is gone by then).
struct BlobReader {
    pos: u64,
    end: u64,
    pause: Option<(u64, mpsc::Receiver<()>)>,
}

impl BlobReader {
    fn new(pos: u64, end: u64) -> Self {
        Self {
            pos,
            end,
            pause: None,
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut limit = self.end;
        if let Some((at, go_on)) = &self.pause {
            if self.pos == *at {
                let _ = go_on.recv();
                return Err(io::Error::other("the test stopped this upload here"));
            }
            limit = limit.min(*at);
        }
        let n = (buf.len() as u64).min(limit - self.pos) as usize;
        fill(self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

fn digest_of(mut reader: impl Read) -> (String, u64) {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    (format!("sha256:{:x}", hasher.finalize()), total)
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout_read(Duration::from_secs(120))
        .build()
}

/// Sends a request as the admin, returning any status as a response.
fn send(req: ureq::Request, body: Option<&mut dyn Read>) -> ureq::Response {
    let req = req.set("authorization", &admin_basic());
    let result = match body {
        Some(body) => req.send(body),
        None => req.call(),
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    }
}

/// The length a session's `Range: 0-<last>` header gives.
fn range_len(response: &ureq::Response) -> u64 {
    let range = response.header("range").expect("a Range header");
    let last: u64 = range
        .strip_prefix("0-")
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("a Range of 0-<last>: {range}"));
    // `0-0` is also what an empty session says; the tests only ask once bytes arrived.
    last + 1
}

/// Starts an upload session in `repo` and returns its Location (a path).
fn start_upload(host: &HostProcess, repo: &str) -> String {
    let r = send(
        agent().post(&host.url(&format!("/v2/{repo}/blobs/uploads/"))),
        None,
    );
    assert_eq!(r.status(), 202, "starting an upload");
    r.header("location").unwrap().to_owned()
}

/// Pushes the whole blob into `repo` in one PATCH and a PUT: a fresh upload.
fn push_whole(host: &HostProcess, repo: &str, digest: &str) {
    let location = start_upload(host, repo);
    let r = send(
        agent().request("PATCH", &host.url(&location)),
        Some(&mut BlobReader::new(0, SIZE)),
    );
    assert_eq!(r.status(), 202, "PATCH of the whole blob");
    finish(host, r.header("location").unwrap(), digest);
}

fn finish(host: &HostProcess, location: &str, digest: &str) {
    let r = send(
        agent()
            .put(&host.url(&format!("{location}?digest={digest}")))
            .set("content-length", "0"),
        None,
    );
    assert_eq!(
        r.status(),
        201,
        "completing the upload: {}",
        r.into_string().unwrap_or_default()
    );
}

/// HEAD of a blob: its status and length.
fn head_blob(host: &HostProcess, repo: &str, digest: &str) -> (u16, Option<u64>) {
    let r = send(
        agent().head(&host.url(&format!("/v2/{repo}/blobs/{digest}"))),
        None,
    );
    let len = r.header("content-length").and_then(|l| l.parse().ok());
    (r.status(), len)
}

/// GETs the blob and checks that its bytes hash to `digest`.
fn assert_served_intact(host: &HostProcess, repo: &str, digest: &str) {
    let r = send(
        agent().get(&host.url(&format!("/v2/{repo}/blobs/{digest}"))),
        None,
    );
    assert_eq!(r.status(), 200, "GET {repo}@{digest}");
    let (got, len) = digest_of(r.into_reader());
    assert_eq!(len, SIZE, "the whole blob is served");
    assert_eq!(got, digest, "the served bytes are the blob's");
}

/// Every committed blob in the data folder hashes to its name: nothing half-written or
/// wrong was ever made a blob.
fn assert_store_consistent(data: &Path) {
    let root = data.join("blobs/sha256");
    for prefix in std::fs::read_dir(&root).unwrap() {
        for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let blob = blob.unwrap();
            let name = blob.file_name().to_string_lossy().into_owned();
            let (digest, _) = digest_of(std::fs::File::open(blob.path()).unwrap());
            assert_eq!(
                digest,
                format!("sha256:{name}"),
                "a stored blob does not match its name"
            );
        }
    }
}

/// Where the data folder keeps the blob `digest` (sha256).
fn blob_file(data: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    data.join("blobs/sha256").join(&hex[..2]).join(hex)
}

/// Freezes the host (SIGSTOP) again and again until, frozen, it holds an upload session's
/// data file open for reading only, which only the commit does (hashing the data, then
/// syncing it). Returns that file and the read offset, the host left frozen. Fails after
/// `within`.
fn freeze_in_commit(pid: u32, data: &Path, within: Duration) -> (PathBuf, u64) {
    let uploads = std::fs::canonicalize(data.join("uploads")).unwrap();
    let end = Instant::now() + within;
    loop {
        signal(pid, libc::SIGSTOP);
        wait_stopped(pid);
        if let Some(found) = reading_session_data(pid, &uploads) {
            return found;
        }
        signal(pid, libc::SIGCONT);
        assert!(
            Instant::now() < end,
            "the host was never seen in the commit (the session's data open for reading) \
             within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: a plain system call on our own child's pid.
    let done = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(done, 0, "signal {signal} to {pid}");
}

/// Waits until every thread of the process has stopped.
fn wait_stopped(pid: u32) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let stopped = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
            .all(|stat| {
                // `pid (comm) S …`: the state follows the last parenthesis.
                let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
                matches!(state.and_then(|r| r.chars().next()), Some('T' | 't'))
            });
        if stopped {
            return;
        }
        assert!(Instant::now() < end, "the host did not stop");
        std::thread::yield_now();
    }
}

/// A file `uploads/<id>/data` that the process holds open read-only, with its offset.
fn reading_session_data(pid: u32, uploads: &Path) -> Option<(PathBuf, u64)> {
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let fd = fd.ok()?;
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if !(target.starts_with(uploads) && target.file_name() == Some("data".as_ref())) {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .ok()?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        let flags = u32::from_str_radix(&field("flags:")?, 8).ok()?;
        let pos: u64 = field("pos:")?.parse().ok()?;
        if flags & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 {
            return Some((target, pos));
        }
    }
    None
}

#[test]
fn a_host_killed_mid_upload_keeps_no_partial_blob_and_the_upload_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (digest, _) = digest_of(BlobReader::new(0, SIZE));
    let repo = "crash/big";

    let host = HostProcess::start(&data);
    let r = send(
        agent()
            .post(&host.url("/api/v1/projects"))
            .set("content-type", "application/json"),
        Some(&mut &br#"{"name":"crash","public":false}"#[..]),
    );
    assert_eq!(r.status(), 201, "creating the project");

    // 1. A push streams the blob in one PATCH and stops sending at PAUSE_AT. Once the
    // host reports (by the session's Range) that it holds KILL_AFTER bytes, it is killed.
    let location = start_upload(&host, repo);
    let (go_on, paused) = mpsc::channel();
    let patch = {
        let url = host.url(&location);
        std::thread::spawn(move || {
            let mut body = BlobReader {
                pos: 0,
                end: SIZE,
                pause: Some((PAUSE_AT, paused)),
            };
            agent()
                .request("PATCH", &url)
                .set("authorization", &admin_basic())
                .send(&mut body)
                .map(|r| r.status())
                .is_ok()
        })
    };
    let mut acknowledged = 0;
    wait_until(
        Duration::from_secs(60),
        "the host to hold the first part of the blob",
        || {
            let r = send(agent().get(&host.url(&location)), None);
            assert_eq!(r.status(), 204, "upload status while pushing");
            acknowledged = range_len(&r);
            acknowledged >= KILL_AFTER
        },
    );
    host.kill();
    // The sender may have failed on the dead socket already and be gone.
    let _ = go_on.send(());
    assert!(
        !patch.join().unwrap(),
        "the PATCH cannot have succeeded: the host died under it"
    );

    // 2. Started again: the blob is not there, nor is any prefix of it.
    let host = HostProcess::start(&data);
    assert_eq!(
        head_blob(&host, repo, &digest).0,
        404,
        "an unfinished upload is no blob"
    );
    let r = send(agent().get(&host.url(&location)), None);
    assert_eq!(r.status(), 204, "the upload session survived the crash");
    let held = range_len(&r);
    assert!(
        (acknowledged..=PAUSE_AT).contains(&held),
        "the session holds {held} bytes: at least the {acknowledged} acknowledged before the \
         kill, at most the {PAUSE_AT} sent"
    );
    let (prefix, _) = digest_of(BlobReader::new(0, held));
    assert_eq!(
        head_blob(&host, repo, &prefix).0,
        404,
        "the partial data is not served as a blob"
    );
    assert_store_consistent(&data);

    // 3. The push resumes from where the data stops, with Content-Range.
    let r = send(
        agent()
            .request("PATCH", &host.url(&location))
            .set("content-range", &format!("{held}-{}", SIZE - 1))
            .set("content-length", &(SIZE - held).to_string()),
        Some(&mut BlobReader::new(held, SIZE)),
    );
    assert_eq!(r.status(), 202, "the resumed PATCH is accepted");
    assert_eq!(range_len(&r), SIZE, "the session now holds the whole blob");
    let location = r.header("location").unwrap().to_owned();

    // 4. The host is killed again inside the commit of the blob (the PUT): the commit
    // reads the session's data back to hash it, then fsyncs it, and only then renames it
    // into place. Nothing else opens that file for reading (appends open it to append),
    // so the host is frozen until it is seen holding it open that way, and killed while
    // frozen. Were it never seen so, the kill would show nothing: the test fails.
    let mut put = std::net::TcpStream::connect(host.host()).unwrap();
    write!(
        put,
        "PUT {location}?digest={digest} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        host.host(),
        admin_basic()
    )
    .unwrap();
    put.flush().unwrap();
    let (session_data, offset) = freeze_in_commit(host.pid(), &data, Duration::from_secs(60));
    eprintln!(
        "killed in the commit, {} MiB into reading {}",
        offset / MIB,
        session_data.display()
    );
    // On disk at the kill: the session's data whole, and no blob yet.
    assert_eq!(std::fs::metadata(&session_data).unwrap().len(), SIZE);
    assert!(
        !blob_file(&data, &digest).exists(),
        "no blob before the rename"
    );
    host.kill();

    // 5. Started again: the commit did not finish, so there is no blob, and the session
    // still holds every byte; the PUT again finishes the push.
    let host = HostProcess::start(&data);
    assert_store_consistent(&data);
    assert_eq!(
        head_blob(&host, repo, &digest).0,
        404,
        "a commit cut off makes no blob"
    );
    let r = send(agent().get(&host.url(&location)), None);
    assert_eq!(r.status(), 204, "the session survived a kill in its commit");
    assert_eq!(range_len(&r), SIZE, "the session kept every byte");
    finish(&host, &location, &digest);
    assert_eq!(head_blob(&host, repo, &digest), (200, Some(SIZE)));
    assert_served_intact(&host, repo, &digest);

    // 6. A fresh upload of the same blob, into another repository, works too.
    push_whole(&host, "crash/again", &digest);
    assert_served_intact(&host, "crash/again", &digest);
    assert_store_consistent(&data);
}
