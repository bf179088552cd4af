//! What the speed work on the host's in-process route (issue 16) must not break: a blob
//! whose bytes were corrupted on the way is refused, progress reaches the event stream
//! while a slow import runs, and a cancel stops an upload in the middle.

use hoist_tests::fake_registry::{FakeRegistry, Fault};
use hoist_tests::hoist_server::{
    HoistServer, admin_basic, admin_creds, over_plain_http, test_config,
};
use hoist_tests::{skopeo, wait_until};
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

const TASK_DEADLINE: Duration = Duration::from_secs(120);

fn host_with(fault: Fault, dir: &Path) -> (FakeRegistry, HoistServer) {
    let fake = FakeRegistry::start(fault);
    let mut config = test_config(dir, &[]);
    over_plain_http(&mut config, &fake.host());
    let host = HoistServer::start(config);
    host.project("web", false);
    (fake, host)
}

fn start(host: &HoistServer, fake: &FakeRegistry) -> String {
    let (status, accepted) = host.import(
        "web",
        json!({"source_url": format!("{}/fake:v1", fake.host())}),
    );
    assert_eq!(status, 202, "{accepted}");
    accepted["task_id"].as_str().unwrap().to_owned()
}

/// The bytes in the host's upload sessions, which an upload in flight makes grow.
fn upload_bytes(data: &Path) -> u64 {
    let Ok(sessions) = std::fs::read_dir(data.join("uploads")) else {
        return 0;
    };
    sessions
        .filter_map(|s| std::fs::metadata(s.ok()?.path().join("data")).ok())
        .map(|m| m.len())
        .sum()
}

fn blob_path(data: &Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    data.join("blobs/sha256").join(&hex[..2]).join(hex)
}

#[test]
fn a_layer_corrupted_on_the_way_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, host) = host_with(Fault::WrongLayerDigest, dir.path());
    let id = start(&host, &fake);
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["state"], "failed", "{task}");
    assert_eq!(task["error"]["code"], "digest_mismatch", "{task}");
    assert!(
        !blob_path(dir.path(), &fake.layer_digest()).exists(),
        "no blob"
    );
    assert!(!skopeo::exists_with(
        &format!("{}/web/fake:v1", host.host()),
        &admin_creds()
    ));
}

#[test]
fn progress_reaches_the_event_stream_every_second_of_a_slow_import() {
    let dir = tempfile::tempdir().unwrap();
    // The layer trickles out for about 4 s.
    let (fake, host) = host_with(Fault::SlowLayer, dir.path());
    let id = start(&host, &fake);
    let events = ureq::get(&host.url(&format!("/api/v1/tasks/{id}/events")))
        .set("authorization", &admin_basic())
        .call()
        .unwrap();
    // When each event arrived while the layer was moving, and how far it had got.
    let mut copying: Vec<(Instant, u64)> = Vec::new();
    let mut last = Value::Null;
    for line in std::io::BufReader::new(events.into_reader()).lines() {
        let line = line.unwrap();
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        last = serde_json::from_str(data).unwrap();
        if last["state"] != "running" && last["state"] != "queued" {
            break;
        }
        if last["phase"] == "copying" {
            copying.push((Instant::now(), last["bytes_done"].as_u64().unwrap()));
        }
    }
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(copying.len() >= 3, "events while copying: {copying:?}");
    for pair in copying.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap <= Duration::from_secs(1), "{gap:?} without an event");
    }
    let (first, end) = (copying[0].1, copying[copying.len() - 1].1);
    assert!(
        end > first,
        "the bytes went up as they arrived: {first} then {end}"
    );
}

#[test]
fn a_cancel_stops_an_upload_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, host) = host_with(Fault::SlowLayer, dir.path());
    let id = start(&host, &fake);
    wait_until(
        Duration::from_secs(30),
        "the layer's upload to be under way",
        || upload_bytes(dir.path()) > 0,
    );
    let (status, _) = host.admin("POST", &format!("/api/v1/tasks/{id}/cancel"), None);
    assert_eq!(status, 202);
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["state"], "cancelled", "{task}");
    // The upload stopped where it was: its data grows no more, and the layer, which
    // would have finished within about 4 s, never becomes a blob.
    let stopped_at = upload_bytes(dir.path());
    let mut samples = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        samples.push(upload_bytes(dir.path()));
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        samples.iter().all(|n| *n <= stopped_at),
        "the upload went on after the cancel: {stopped_at} then {samples:?}"
    );
    assert!(
        !blob_path(dir.path(), &fake.layer_digest()).exists(),
        "no blob"
    );
}
