//! How fast an import may go, and what it does when the source says "not now": a
//! bandwidth cap that holds over the whole task, and a 429 whose `Retry-After` is longer
//! than the import waits for itself, which leaves the task visibly `waiting` instead of
//! failing.

use hoist_tests::fault_proxy::{FaultProxy, ProxyFault};
use hoist_tests::hoist_server::{HoistServer, test_config};
use hoist_tests::images::docker_hub;
use hoist_tests::wait_until;
use serde_json::{Value, json};
use std::time::Duration;

fn ms(rfc3339: &Value) -> i64 {
    hoist_common::clock::ms_of_rfc3339(rfc3339.as_str().expect("a timestamp"))
        .expect("an RFC 3339 timestamp")
}

/// Starts an import as the admin and returns its task id.
fn start(host: &HoistServer, project: &str, body: Value) -> String {
    let (status, accepted) = host.admin(
        "POST",
        &format!("/api/v1/projects/{project}/images/import"),
        Some(body),
    );
    assert_eq!(status, 202, "{accepted}");
    accepted["task_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_bandwidth_cap_holds_an_import_to_its_rate() {
    const MIB: u64 = 1 << 20;
    let (hub, _) = docker_hub(&[64 << 20]);
    let dir = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(dir.path(), &[("docker.io", &hub.url())]));
    host.project("capped", false);
    let id = start(
        &host,
        "capped",
        json!({"source_url": "app:v1", "max_bytes_per_second": 16 * MIB}),
    );

    // The task's own progress stamps (taken when the plugin reported, to the ms): the
    // first report with bytes moving, and the first with every byte done.
    let mut first: Option<(i64, u64)> = None;
    let mut last: Option<(i64, u64)> = None;
    let mut task = Value::Null;
    wait_until(
        Duration::from_secs(60),
        "the capped import to finish",
        || {
            task = host.admin("GET", &format!("/api/v1/tasks/{id}"), None).1;
            let done = task["bytes_done"].as_u64().unwrap_or(0);
            let total = task["bytes_total"].as_u64().unwrap_or(0);
            if done > 0 && first.is_none() {
                first = Some((ms(&task["updated_at"]), done));
            }
            if total > 0 && done == total && last.is_none() {
                last = Some((ms(&task["updated_at"]), done));
            }
            matches!(task["state"].as_str(), Some("succeeded" | "failed"))
        },
    );
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["max_bytes_per_second"], 16 * MIB);
    let ((t0, b0), (t1, b1)) = (first.unwrap(), last.unwrap());
    let total = task["bytes_total"].as_u64().unwrap();
    assert!(total >= 64 * MIB, "{total}");
    // The whole image at the rate measured between the two reports: 4 s for 64 MiB.
    let rate = (b1 - b0) as f64 / ((t1 - t0) as f64 / 1000.0);
    let seconds = total as f64 / rate;
    let expected = total as f64 / (16 * MIB) as f64;
    println!(
        "capped import: {:.2} MiB/s, {seconds:.2} s for {:.1} MiB (cap 16 MiB/s: {expected:.2} s)",
        rate / MIB as f64,
        total as f64 / MIB as f64
    );
    assert!(
        (seconds - expected).abs() <= expected * 0.10,
        "{seconds:.2} s is not within 10% of {expected:.2} s"
    );
}

#[test]
fn a_source_that_asks_for_a_long_wait_leaves_the_task_waiting_then_it_succeeds() {
    let (hub, app) = docker_hub(&[200_000]);
    let proxy = FaultProxy::start(
        &hub.host(),
        ProxyFault::RateLimitManifests {
            retry_after_secs: 3,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(
        dir.path(),
        &[("docker.io", &format!("http://{}", proxy.host()))],
    );
    // The plugin waits up to a second by itself; the source asks for three.
    config.imports.max_retry_wait = Duration::from_secs(1);
    let host = HoistServer::start(config);
    host.project("patient", false);
    proxy.arm_rate_limit(1);
    let id = start(&host, "patient", json!({"source_url": "app:v1"}));

    let mut waiting = Value::Null;
    wait_until(Duration::from_secs(30), "the task to wait", || {
        waiting = host.admin("GET", &format!("/api/v1/tasks/{id}"), None).1;
        waiting["state"] == "waiting"
    });
    // Waiting in the open: until when, why, and what the source said of its quota.
    let until = ms(&waiting["waiting_until"]);
    let now = hoist_common::clock::now_ms();
    assert!(until > now - 1000 && until <= now + 4000, "{waiting}");
    assert_eq!(waiting["error"]["code"], "rate_limited", "{waiting}");
    assert_eq!(waiting["quota"]["remaining"], 0, "{waiting}");
    assert_eq!(waiting["quota"]["limit"], 100, "{waiting}");
    let (_, listed) = host.admin("GET", "/api/v1/projects/patient/tasks?state=waiting", None);
    assert_eq!(listed["tasks"][0]["id"], id.as_str(), "{listed}");

    let done = host.wait_task(&id, Duration::from_secs(60));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["digest"], app.digest.as_str());
    assert_eq!(done["attempts"], 2, "{done}");
    assert!(done.get("waiting_until").is_none(), "{done}");
    // It ran again no earlier than the source asked.
    assert!(ms(&done["finished_at"]) >= until - 1000, "{done}");
}

#[test]
fn a_waiting_task_can_be_cancelled() {
    let (hub, _) = docker_hub(&[100_000]);
    let proxy = FaultProxy::start(
        &hub.host(),
        ProxyFault::RateLimitManifests {
            retry_after_secs: 600,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(
        dir.path(),
        &[("docker.io", &format!("http://{}", proxy.host()))],
    ));
    host.project("patient", false);
    proxy.arm_rate_limit(1);
    let id = start(&host, "patient", json!({"source_url": "app:v1"}));
    wait_until(Duration::from_secs(30), "the task to wait", || {
        host.admin("GET", &format!("/api/v1/tasks/{id}"), None).1["state"] == "waiting"
    });
    let (status, body) = host.admin("POST", &format!("/api/v1/tasks/{id}/cancel"), None);
    assert_eq!(status, 202, "{body}");
    let task = host.wait_task(&id, Duration::from_secs(10));
    assert_eq!(task["state"], "cancelled", "{task}");
}
