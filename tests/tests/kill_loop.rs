//! The host SIGKILLed again and again while five imports and two pushes run, then left to
//! finish: every import ends succeeded, every push lands, each tag's manifest and blobs
//! are complete and match their digests, no stored blob differs from its name, and the
//! upload sessions the killed processes opened for imports are gone; what is left in
//! `uploads/` is at most the sessions of client pushes that were cut off (a client may
//! still resume those).
//!
//! The kill moments come from a seeded generator; the seed is printed, and
//! `HOIST_KILL_SEED` replays a run.

use hoist_tests::fake_registry::{FakeRegistry, Fault};
use hoist_tests::hoist_server::{admin_basic, admin_creds};
use hoist_tests::host_process::HostProcess;
use hoist_tests::images::{Format, Pusher};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::wait_until;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KILLS: usize = 10;
const IMPORTS: usize = 5;
const PUSHES: usize = 2;
/// Blobs per pushed image: two layers and the config.
const BLOBS_PER_PUSH: usize = 3;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

/// A JSON call as the admin; None when the host is down.
fn call(url: &str, method: &str, body: Option<Value>) -> Option<(u16, Value)> {
    let request = agent()
        .request(method, url)
        .set("authorization", &admin_basic());
    let answer = match body {
        Some(b) => request.send_json(b),
        None => request.call(),
    };
    match answer {
        Ok(r) => Some((r.status(), r.into_json().unwrap_or(Value::Null))),
        Err(ureq::Error::Status(code, r)) => Some((code, r.into_json().unwrap_or(Value::Null))),
        Err(_) => None,
    }
}

fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    match agent()
        .get(url)
        .set("authorization", &admin_basic())
        .set(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )
        .call()
    {
        Ok(r) => {
            let status = r.status();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes).unwrap();
            (status, bytes)
        }
        Err(ureq::Error::Status(code, _)) => (code, Vec::new()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// `repository:tag` on the host is whole: its manifest, config and every layer are
/// served, and each matches its digest.
fn assert_complete(host: &HostProcess, repository: &str, tag: &str) {
    let (status, manifest) = get_bytes(&host.url(&format!("/v2/{repository}/manifests/{tag}")));
    assert_eq!(status, 200, "{repository}:{tag} is tagged");
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    let descriptors = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .collect::<Vec<_>>();
    for descriptor in descriptors {
        let digest = descriptor["digest"].as_str().unwrap();
        let (status, blob) = get_bytes(&host.url(&format!("/v2/{repository}/blobs/{digest}")));
        assert_eq!(status, 200, "{repository}:{tag} blob {digest}");
        assert_eq!(sha256(&blob), digest, "{repository}:{tag} blob content");
        assert_eq!(blob.len() as u64, descriptor["size"].as_u64().unwrap());
    }
}

/// Every committed blob hashes to its name.
fn assert_store_consistent(data: &Path) {
    for prefix in std::fs::read_dir(data.join("blobs/sha256")).unwrap() {
        for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let blob = blob.unwrap();
            let name = blob.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(blob.path()).unwrap();
            assert_eq!(sha256(&bytes), format!("sha256:{name}"), "a stored blob");
        }
    }
}

fn write_config(dir: &Path, fakes: &[FakeRegistry]) -> std::path::PathBuf {
    let mut toml = String::from(
        "[egress]\nallowed_networks = [\"127.0.0.0/8\"]\n\
         [registry]\nupload_sweep_interval = \"1s\"\n",
    );
    for fake in fakes {
        toml.push_str(&format!(
            "[registries.\"{}\"]\ninsecure = true\n",
            fake.host()
        ));
    }
    let path = dir.join("hoist.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

#[test]
fn imports_and_pushes_come_through_a_kill_loop_whole() {
    let seed = std::env::var("HOIST_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u64>());
    println!("kill loop seed: {seed} (HOIST_KILL_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Five sources whose layer trickles out for about 4 s: the kills land mid-copy.
    let fakes: Vec<FakeRegistry> = (0..IMPORTS)
        .map(|_| FakeRegistry::start(Fault::SlowLayer))
        .collect();
    let hub = Registry::start(Auth::None);
    let config = write_config(dir.path(), &fakes);
    let config = config.to_str().unwrap().to_owned();
    let args = ["--config", config.as_str()];
    let mut host = HostProcess::start_with(&data, &args);
    // Every restart on the same port: import targets and the pushing clients name it.
    let port = host.port;
    let start = || HostProcess::start_on(port, &data, &args);

    let (status, _) = call(
        &host.url("/api/v1/projects"),
        "POST",
        Some(json!({"name": "kill"})),
    )
    .unwrap();
    assert_eq!(status, 201);
    let tasks: Vec<String> = fakes
        .iter()
        .enumerate()
        .map(|(i, fake)| {
            let (status, accepted) = call(
                &host.url("/api/v1/projects/kill/images/import"),
                "POST",
                Some(json!({
                    "source_url": format!("{}/fake:v1", fake.host()),
                    "target_image": format!("imported{i}"),
                })),
            )
            .unwrap();
            assert_eq!(status, 202, "{accepted}");
            accepted["task_id"].as_str().unwrap().to_owned()
        })
        .collect();

    // Two clients push with skopeo for as long as the kills go on, each round a new
    // image (fresh layers, so every round uploads), and again after each failure; one
    // more round once the host is left alone.
    let target = host.host();
    let killing = Arc::new(AtomicBool::new(true));
    let failed_pushes = Arc::new(Mutex::new(0usize));
    let pushers: Vec<_> = (0..PUSHES)
        .map(|j| {
            let (target, failed, killing, hub_url, source) = (
                target.clone(),
                failed_pushes.clone(),
                killing.clone(),
                hub.url(),
                hub.host(),
            );
            std::thread::spawn(move || -> Result<Vec<String>, String> {
                let fresh = |n: usize| {
                    Pusher::new(&hub_url).image(
                        &format!("library/app{j}-{n}"),
                        Some("v1"),
                        Format::Docker,
                        &[2 << 20, 2 << 20],
                        ("linux", "amd64"),
                    );
                };
                let end = Instant::now() + Duration::from_secs(240);
                let (mut pushed, mut last_error, mut n) = (Vec::new(), String::new(), 0);
                fresh(n);
                while Instant::now() < end {
                    let last_round = !killing.load(Ordering::SeqCst);
                    let name = format!("kill/pushed{j}-{n}");
                    let out = std::process::Command::new("skopeo")
                        .args(["copy", "--retry-times", "0", "--src-tls-verify=false"])
                        .args(["--dest-tls-verify=false", "--dest-creds"])
                        .arg(admin_creds())
                        .arg(format!("docker://{source}/library/app{j}-{n}:v1"))
                        .arg(format!("docker://{target}/{name}:v1"))
                        .output()
                        .unwrap();
                    if out.status.success() {
                        pushed.push(name);
                        if last_round {
                            return Ok(pushed);
                        }
                        n += 1;
                        fresh(n);
                    } else {
                        last_error = String::from_utf8_lossy(&out.stderr).into_owned();
                        *failed.lock().unwrap() += 1;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
                Err(last_error)
            })
        })
        .collect();

    for kill in 0..KILLS {
        let moment = Duration::from_millis(rng.random_range(200..1500));
        std::thread::sleep(moment);
        println!("kill {kill} after {moment:?}");
        host.kill();
        host = start();
    }
    killing.store(false, Ordering::SeqCst);

    // Left alone now, everything finishes.
    for id in &tasks {
        let url = host.url(&format!("/api/v1/tasks/{id}"));
        let mut last = Value::Null;
        wait_until(Duration::from_secs(120), "the imports to end", || {
            last = call(&url, "GET", None).map(|(_, t)| t).unwrap_or_default();
            matches!(
                last["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        });
        assert_eq!(last["state"], "succeeded", "{last}");
    }
    let mut pushed = Vec::new();
    for pusher in pushers {
        match pusher.join().unwrap() {
            Ok(names) => pushed.extend(names),
            Err(e) => panic!(
                "a push never landed; skopeo's last error: {e}\nthe host's log:\n{}",
                host.log()
            ),
        }
    }

    for i in 0..IMPORTS {
        assert_complete(&host, &format!("kill/imported{i}"), "v1");
    }
    for name in &pushed {
        assert_complete(&host, name, "v1");
    }
    assert_store_consistent(&data);

    // The imports' sessions of killed processes are swept (none with an owner is left);
    // only pushes cut off by a kill may have left theirs (at most one per blob).
    let metadata = hoist_registry::Metadata::open(&hoist_registry::database_path(&data)).unwrap();
    wait_until(Duration::from_secs(10), "no import's session left", || {
        metadata.upload_owners().unwrap().is_empty()
    });
    let failed = *failed_pushes.lock().unwrap();
    let sessions = || std::fs::read_dir(data.join("uploads")).map_or(0, |d| d.count());
    let mut left = 0;
    wait_until(
        Duration::from_secs(10),
        "the upload sessions to be swept",
        || {
            left = sessions();
            left <= failed * BLOBS_PER_PUSH
        },
    );
    println!(
        "{} pushes landed, {failed} were cut off; {left} upload sessions left",
        pushed.len()
    );
}
