//! Several host replicas on one PostgreSQL database and one S3 bucket (DESIGN.md §8):
//! what a client of either sees, and that the replicas share their work without doing
//! it twice.

use hoist_tests::hoist_server::{
    HoistServer, admin_basic, admin_creds, over_plain_http, test_config,
};
use hoist_tests::images::{Format, Pusher};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::scale_out::SharedStores;
use hoist_tests::skopeo;
use serde_json::json;
use std::time::Duration;

/// Two replicas on different ports: skopeo pushes through one and pulls through the
/// other with the same digests; a token the first issued is honoured by the second; 20
/// imports submitted to the two in turn all succeed, and no blob is written twice.
#[test]
fn two_replicas_serve_one_registry() {
    let stores = SharedStores::start();
    let hub = Registry::start(Auth::None);
    let replica = |name: &str| {
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config(data.path(), &[]);
        over_plain_http(&mut config, &hub.host());
        let host = HoistServer::start(stores.replica(config));
        eprintln!("replica {name} on {}", host.host());
        (host, data)
    };
    let (a, _a_data) = replica("a");
    let (b, _b_data) = replica("b");

    // A project made through one exists on the other.
    a.project("team", false);
    let (status, body) = b.admin("GET", "/api/v1/projects/team", None);
    assert_eq!(status, 200, "{body}");

    // Push through a, pull through b.
    let pushed = Pusher::new(&hub.url()).image(
        "library/app",
        Some("v1"),
        Format::Oci,
        &[3 << 20, 7 << 20],
        ("linux", "amd64"),
    );
    let creds = admin_creds();
    skopeo::copy_with(
        &format!("{}/library/app:v1", hub.host()),
        &format!("{}/team/app:v1", a.host()),
        &["--dest-creds", &creds],
    )
    .unwrap();
    let through_b = skopeo::inspect_raw(&format!("{}/team/app:v1", b.host()), Some(&creds));
    assert_eq!(
        hoist_tests::images::sha256(&through_b),
        pushed.digest,
        "b serves the manifest a took, byte for byte"
    );
    skopeo::pull_all_with(&format!("{}/team/app:v1", b.host()), &creds);

    // A token from a opens b.
    let token: serde_json::Value = ureq::get(&a.url("/token"))
        .query("service", &a.host())
        .query("scope", "repository:team/app:pull")
        .set("authorization", &admin_basic())
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let token = token["token"].as_str().unwrap();
    let answer = ureq::get(&b.url("/v2/team/app/manifests/v1"))
        .set("authorization", &format!("Bearer {token}"))
        .set("accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap();
    assert_eq!(answer.status(), 200);

    // 20 imports, each of its own image, submitted to a and b in turn.
    for i in 0..20 {
        Pusher::new(&hub.url()).image(
            &format!("library/img{i}"),
            Some("v1"),
            Format::Oci,
            &[1 << 20, 2 << 20],
            ("linux", "amd64"),
        );
    }
    let tasks: Vec<(usize, String)> = (0..20)
        .map(|i| {
            let host = if i % 2 == 0 { &a } else { &b };
            let id = host.start_import(
                "team",
                json!({
                    "source_url": format!("{}/library/img{i}:v1", hub.host()),
                    "target_image": format!("img{i}"),
                }),
            );
            (i, id)
        })
        .collect();
    for (i, id) in &tasks {
        // Each replica answers for every task, whichever ran it.
        let other = if i % 2 == 0 { &b } else { &a };
        let task = other.wait_task(id, Duration::from_secs(180));
        assert_eq!(task["state"], "succeeded", "{task}");
        assert!(skopeo::exists_with(
            &format!("{}/team/img{i}:v1", other.host()),
            &creds
        ));
    }
    let writes = stores.blob_writes();
    assert!(writes.len() >= 2 + 20 * 3, "{writes:?}");
    let twice: Vec<_> = writes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "blobs written more than once: {twice:?}");
}

/// Two in-process replicas on shared stores, `configure`d further, with a source
/// registry both reach over plain HTTP.
fn pair(
    stores: &SharedStores,
    hub: &Registry,
    configure: impl Fn(&mut hoist_host::config::Config),
) -> (HoistServer, HoistServer, Vec<tempfile::TempDir>) {
    let mut dirs = Vec::new();
    let mut start = || {
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config(data.path(), &[]);
        over_plain_http(&mut config, &hub.host());
        configure(&mut config);
        let host = HoistServer::start(stores.replica(config));
        dirs.push(data);
        host
    };
    let (a, b) = (start(), start());
    (a, b, dirs)
}

/// An import running on one replica is followed, live, through the other's event stream,
/// and cancelled through it.
#[test]
fn the_other_replica_follows_and_cancels_an_import() {
    let stores = SharedStores::start();
    let hub = Registry::start(Auth::None);
    Pusher::new(&hub.url()).image(
        "library/slow",
        Some("v1"),
        Format::Oci,
        &[48 << 20],
        ("linux", "amd64"),
    );
    let (a, b, _dirs) = pair(&stores, &hub, |c| c.imports.lease = Duration::from_secs(3));
    a.project("team", false);
    // About 12 s at this cap.
    let id = a.start_import(
        "team",
        json!({
            "source_url": format!("{}/library/slow:v1", hub.host()),
            "target_image": "slow",
            "max_bytes_per_second": 4 << 20,
        }),
    );
    let events = ureq::get(&b.url(&format!("/api/v1/tasks/{id}/events")))
        .set("authorization", &admin_basic())
        .call()
        .unwrap();
    let mut seen: Vec<u64> = Vec::new();
    let mut last = serde_json::Value::Null;
    let mut cancelled = false;
    for line in std::io::BufRead::lines(std::io::BufReader::new(events.into_reader())) {
        let line = line.unwrap();
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        last = serde_json::from_str(data).unwrap();
        if !matches!(last["state"].as_str(), Some("queued" | "running")) {
            break;
        }
        let bytes = last["bytes_done"].as_u64().unwrap_or(0);
        if bytes > 0 && seen.last() != Some(&bytes) {
            seen.push(bytes);
        }
        if seen.len() >= 3 && !cancelled {
            let (status, body) = b.admin("POST", &format!("/api/v1/tasks/{id}/cancel"), None);
            assert_eq!(status, 202, "{body}");
            cancelled = true;
        }
    }
    assert!(
        cancelled,
        "progress reached the other replica's stream: {seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(last["state"], "cancelled", "{last}");
    let task = a.wait_task(&id, Duration::from_secs(30));
    assert_eq!(task["state"], "cancelled", "{task}");
    assert!(!skopeo::exists_with(
        &format!("{}/team/slow:v1", a.host()),
        &admin_creds()
    ));
}

/// A scheduled rule's slot fires once, not once per replica, though both look at the
/// rules ten times a second.
#[test]
fn a_scheduled_slot_fires_once_with_two_replicas() {
    let stores = SharedStores::start();
    let hub = Registry::start(Auth::None);
    Pusher::new(&hub.url()).image(
        "library/app",
        Some("1.0.0"),
        Format::Oci,
        &[20_000],
        ("linux", "amd64"),
    );
    let (a, b, _dirs) = pair(&stores, &hub, |c| {
        c.sync.tick = Duration::from_millis(100);
        c.registries.insert(
            "docker.io".into(),
            hoist_host::config::SourceRegistry {
                mirrors: vec![hub.url()],
                ..Default::default()
            },
        );
    });
    a.project("hub", false);
    let (status, rule) = a.admin(
        "POST",
        "/api/v1/projects/hub/sync-rules",
        Some(json!({
            "name": "every minute",
            "source": {"registry": "docker.io", "repositories": ["library/app"]},
            "schedule": {"cron": "* * * * *", "timezone": "UTC"},
        })),
    );
    assert_eq!(status, 201, "{rule}");
    let rule = rule["id"].as_str().unwrap().to_owned();
    let runs = |host: &HoistServer| {
        let (status, runs) = host.admin(
            "GET",
            &format!("/api/v1/projects/hub/sync-rules/{rule}/runs"),
            None,
        );
        assert_eq!(status, 200, "{runs}");
        runs["runs"].as_array().cloned().unwrap_or_default()
    };
    // The next minute's slot, and a few seconds after it, in which both replicas tick
    // dozens of times.
    hoist_tests::wait_until(Duration::from_secs(75), "the scheduled run", || {
        !runs(&b).is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));
    let all = runs(&a);
    assert_eq!(all.len(), 1, "one run for one slot: {all:?}");
    assert_eq!(all[0]["trigger"], "schedule", "{all:?}");
}

/// A replica SIGKILLed in the middle of a 256 MiB import: the other takes the task over
/// when its lease runs out and finishes it, with the source's digest and every blob whole.
#[test]
fn a_killed_replicas_import_is_finished_by_the_other() {
    use hoist_tests::host_process::HostProcess;
    const LEASE: u64 = 5;
    let stores = SharedStores::start();
    let hub = Registry::start(Auth::None);
    let pushed = Pusher::new(&hub.url()).image(
        "library/big",
        Some("v1"),
        Format::Oci,
        &[64 << 20, 64 << 20, 64 << 20, 64 << 20],
        ("linux", "amd64"),
    );
    let dir = tempfile::tempdir().unwrap();
    // One name for the registry behind both (a load balancer's, in production): task
    // targets name it, so either replica writes them through its own routes.
    let config = dir.path().join("hoist.toml");
    std::fs::write(
        &config,
        stores.replica_toml(&format!(
            "external_host = \"registry.hoist.test:5000\"\n\
             [imports]\nlease = \"{LEASE}s\"\n\
             [egress]\nallowed_networks = [\"127.0.0.0/8\"]\n\
             [registries.\"{}\"]\ninsecure = true\n",
            hub.host()
        )),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let args = ["--config", config.as_str()];
    let a = HostProcess::start_with(&dir.path().join("a"), &args);
    let b = HostProcess::start_with(&dir.path().join("b"), &args);
    let api = |host: &HostProcess, method: &str, path: &str, body: Option<serde_json::Value>| {
        let request = ureq::request(method, &host.url(path)).set("authorization", &admin_basic());
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let response = match response {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        (
            response.status(),
            response.into_json::<serde_json::Value>().unwrap(),
        )
    };
    let (status, body) = api(
        &a,
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "team"})),
    );
    assert_eq!(status, 201, "{body}");
    // About 8 s at this cap, so the kill lands in the middle.
    let (status, accepted) = api(
        &a,
        "POST",
        "/api/v1/projects/team/images/import",
        Some(json!({
            "source_url": format!("{}/library/big:v1", hub.host()),
            "target_image": "big",
            "max_bytes_per_second": 32 << 20,
        })),
    );
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["task_id"].as_str().unwrap().to_owned();
    hoist_tests::wait_until(Duration::from_secs(60), "a quarter of the import", || {
        api(&b, "GET", &format!("/api/v1/tasks/{id}"), None).1["bytes_done"]
            .as_u64()
            .unwrap_or(0)
            > 64 << 20
    });
    a.kill();
    let killed = std::time::Instant::now();
    let mut task = serde_json::Value::Null;
    hoist_tests::wait_until(
        Duration::from_secs(LEASE + 30 + 10),
        "the other replica to finish the import",
        || {
            task = api(&b, "GET", &format!("/api/v1/tasks/{id}"), None).1;
            matches!(
                task["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        },
    );
    let took = killed.elapsed();
    println!("taken over and finished {took:?} after the kill (lease {LEASE} s)");
    assert_eq!(task["state"], "succeeded", "{task}\n{}", b.log());
    assert!(
        task["warnings"]
            .to_string()
            .contains("another continues it"),
        "the survivor took the task over: {task}"
    );
    assert!(
        took <= Duration::from_secs(LEASE + 30),
        "finished {took:?} after the kill"
    );
    assert_eq!(task["digest"], pushed.digest, "{task}");
    // Every blob reads back whole through the survivor; nothing partial is visible.
    let token: serde_json::Value = ureq::get(&b.url("/token"))
        .query("scope", "repository:team/big:pull")
        .set("authorization", &admin_basic())
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    for (digest, size) in &pushed.blobs {
        let response = ureq::get(&b.url(&format!("/v2/team/big/blobs/{digest}")))
            .set("authorization", &bearer)
            .call()
            .unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, *size);
        assert_eq!(&hoist_tests::images::sha256(&bytes), digest);
    }
    let writes = stores.blob_writes();
    let twice: Vec<_> = writes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "blobs written more than once: {twice:?}");
}
