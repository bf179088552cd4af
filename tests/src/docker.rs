//! Debian's Docker daemon (`dockerd` from the `docker.io` package), started privately for
//! one test, and its own `docker` client pointed at it.
//!
//! The daemon runs as root with everything under a temporary folder in `/tmp` (data root,
//! exec root, the API socket, the pid file, the daemon's configuration and key): vfs
//! storage, no bridge and no iptables rules, so it touches neither the machine's network
//! nor a system daemon, and several can run side by side. It logs at debug level into
//! `dockerd.log` in that folder; every failure this module reports carries that log.
//!
//! The client is `/usr/bin/docker` from the same package, by its absolute path: the same
//! release as the daemon (20.10 on Debian 12), so the client and the daemon agree on the
//! API version without negotiating, and a `docker` found first on PATH (another release,
//! installed by hand, such as a 28.x in /usr/local/bin) is never used. Every command has a
//! deadline. It runs with an empty environment but for
//! `DOCKER_HOST` (the daemon's socket), `DOCKER_CONFIG` and `HOME` (a temporary folder
//! per [`DockerClient`]), so a login never reaches the user's `~/.docker`, and with no
//! PATH, so no credential helper (`docker-credential-*`) can take the credentials out of
//! that folder's `config.json`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The daemon, from Debian's `docker.io` (installed by `scripts/install-deps.sh`).
pub const DOCKERD: &str = "/usr/sbin/dockerd";
/// The client from the same package.
pub const DOCKER: &str = "/usr/bin/docker";

/// How long the daemon may take to answer its API after starting.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long the daemon may take to stop on SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// How long one docker command may take before the test fails (a push that docker
/// retries gives up after about 50 s).
const COMMAND_DEADLINE: Duration = Duration::from_secs(180);

/// A running `dockerd`. Stopped (SIGTERM, then SIGKILL after [`STOP_DEADLINE`]) and its
/// folder unmounted and removed when dropped.
pub struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    /// Starts a daemon that reaches `insecure_registries` (`127.0.0.1:PORT`) over plain
    /// HTTP, and waits until its API answers. Fails the test, with the daemon's log, if it
    /// exits or does not answer within a minute.
    pub fn start(insecure_registries: &[&str]) -> Self {
        // In /tmp rather than $TMPDIR: the socket's path must fit a sockaddr_un (108 bytes).
        let dir = tempfile::Builder::new()
            .prefix("hoist-dockerd-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        // A configuration of its own, so /etc/docker/daemon.json (if the machine has one)
        // does not apply. It only moves the daemon's identity key, which would otherwise
        // be written to /etc/docker/key.json; dockerd 20.10 takes that in the file only.
        let config = serde_json::json!({"deprecated-key-path": d.join("key.json")});
        std::fs::write(d.join("daemon.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let mut cmd = Command::new(DOCKERD);
        cmd.arg("--debug")
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .arg("--storage-driver=vfs")
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("--config-file")
            .arg(d.join("daemon.json"));
        for registry in insecure_registries {
            cmd.arg("--insecure-registry").arg(registry);
        }
        // dockerd starts containerd, runc and docker-proxy from PATH; nothing else of the
        // caller's environment (DOCKER_*, proxies) reaches it.
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // If the test process dies without dropping this (SIGKILL, abort), the daemon gets
        // SIGTERM and stops as on a normal drop. The signal follows the thread that
        // started it, which is the test's own.
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start {DOCKERD}: {e}; scripts/install-deps.sh installs docker.io")
        });
        let mut daemon = Self { child, dir };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let probe = self.client();
        let end = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "dockerd exited with {status} while starting (it needs root); its log:\n{}",
                    self.log()
                );
            }
            let out = probe.run(&["version", "--format", "{{.Server.Version}}"]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < end,
                "dockerd did not answer `docker version` within {START_DEADLINE:?}: {}\n\
                 its log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// A client of this daemon with a configuration folder of its own (logged out).
    pub fn client(&self) -> DockerClient {
        DockerClient {
            socket: self.socket(),
            log: self.dir.path().join("dockerd.log"),
            config: tempfile::tempdir().unwrap(),
        }
    }

    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let end = Instant::now() + STOP_DEADLINE;
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            if self.child.try_wait().ok().flatten().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // A daemon stopped by SIGTERM stops its containerd and unmounts its data root (it
        // bind-mounts it onto itself to make it private); one that had to be killed
        // leaves both behind.
        let containerd_pid = self.dir.path().join("exec/containerd/containerd.pid");
        if let Some(pid) = std::fs::read_to_string(containerd_pid)
            .ok()
            .and_then(|p| p.trim().parse::<libc::pid_t>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ours =
                String::from_utf8_lossy(&cmdline).contains(&*self.dir.path().to_string_lossy());
            if ours {
                // SAFETY: kill(2) on a containerd whose command line names our folder.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for mount in mounts_under(self.dir.path()) {
            let path = std::ffi::CString::new(mount.into_os_string().into_encoded_bytes()).unwrap();
            // SAFETY: a NUL-terminated path; a lazy unmount of a mount under our folder.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The mount points at or under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        // mountinfo escapes spaces and the like as octal; our folder's paths hold none.
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    mounts.dedup();
    mounts
}

/// `/usr/bin/docker` talking to one [`Dockerd`], with its own configuration folder.
pub struct DockerClient {
    socket: PathBuf,
    log: PathBuf,
    config: tempfile::TempDir,
}

impl DockerClient {
    /// `docker ARGS…`, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.args(args)
            .env_clear()
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.config.path())
            .env("HOME", self.config.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `docker ARGS…` and returns what it printed.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_inner(args, None)
    }

    /// Runs `docker ARGS…` with `input` on its standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        self.run_inner(args, Some(input))
    }

    /// Runs docker to its end, or fails the test (with the daemon's log) when it has not
    /// finished within [`COMMAND_DEADLINE`]. What it prints goes to files, so that a
    /// chatty command never blocks on a full pipe while it is being waited for.
    fn run_inner(&self, args: &[&str], input: Option<&str>) -> Output {
        use std::io::Write;
        let outputs = tempfile::tempdir().unwrap();
        let (stdout, stderr) = (outputs.path().join("stdout"), outputs.path().join("stderr"));
        let mut cmd = self.command(args);
        cmd.stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run {DOCKER}: {e}; scripts/install-deps.sh installs docker.io")
        });
        if let Some(input) = input {
            // Dropped at the end of the statement: docker reads to the end of its input.
            let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        }
        let end = Instant::now() + COMMAND_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let status = child.wait().unwrap();
                let out = Output {
                    status,
                    stdout: std::fs::read(&stdout).unwrap_or_default(),
                    stderr: std::fs::read(&stderr).unwrap_or_default(),
                };
                panic!(
                    "docker {args:?} did not finish within {COMMAND_DEADLINE:?}:\n{}\n{}",
                    show(&out),
                    self.daemon_log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: std::fs::read(&stdout).unwrap(),
            stderr: std::fs::read(&stderr).unwrap(),
        }
    }

    /// Runs `docker ARGS…`, fails the test (with the daemon's log) unless it succeeds,
    /// and returns its trimmed standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        self.expect_success(args, &out);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Fails the test, with what docker printed and the daemon's log, unless `out` is a
    /// success.
    pub fn expect_success(&self, args: &[&str], out: &Output) {
        assert!(
            out.status.success(),
            "docker {args:?} failed with {}:\n{}\n{}",
            out.status,
            show(out),
            self.daemon_log_tail()
        );
    }

    /// `docker login -u USER --password-stdin REGISTRY`.
    pub fn login(&self, registry: &str, user: &str, password: &str) -> Output {
        self.run_with_input(
            &["login", "--username", user, "--password-stdin", registry],
            password,
        )
    }

    /// This client's `config.json` (where `docker login` keeps credentials), or Null.
    pub fn config(&self) -> serde_json::Value {
        std::fs::read(self.config.path().join("config.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The daemon's last log lines, for failure messages.
    pub fn daemon_log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(80)..].join("\n");
        format!("dockerd's log (last lines):\n{tail}")
    }
}

/// Standard output and error of a finished command, for messages.
pub fn show(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}
