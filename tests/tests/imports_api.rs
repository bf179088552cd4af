//! The seed's import API on Hoist's own host: imports into a project from real registries
//! behind a `docker.io` mirror, their tasks, progress stream, cancel and retry, batches,
//! restarts, and refusals of bad input.

use hoist_tests::fake_registry::{FakeRegistry, Fault};
use hoist_tests::hoist_server::{HoistServer, admin_basic, admin_creds, test_config};
use hoist_tests::images::{self, Format, Pusher};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::{skopeo, wait_until};
use serde_json::{Value, json};
use std::io::BufRead;
use std::time::Duration;

const LAYERS: &[usize] = &[300_000, 700_000];
const TASK_DEADLINE: Duration = Duration::from_secs(120);

/// A source registry standing in for Docker Hub, with `library/app:v1` in it.
fn docker_hub() -> (Registry, String) {
    let (src, app) = images::docker_hub(LAYERS);
    (src, app.digest)
}

#[test]
fn an_import_lands_in_the_project_with_its_progress_streamed() {
    let (src, digest) = docker_hub();
    let dir = tempfile::tempdir().unwrap();
    let mirror = src.url();
    let host = HoistServer::start(test_config(dir.path(), &[("docker.io", &mirror)]));
    host.project("web", false);

    let (status, accepted) = host.import("web", json!({"source_url": "app:v1"}));
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        accepted["task"]["source_canonical"],
        "docker.io/library/app:v1"
    );
    assert_eq!(
        accepted["task"]["target"],
        format!("{}/web/app:v1", host.host())
    );
    let id = accepted["task_id"].as_str().unwrap().to_owned();

    // The event stream carries the task until it ends.
    let events = ureq::get(&host.url(&format!("/api/v1/tasks/{id}/events")))
        .set("authorization", &admin_basic())
        .call()
        .unwrap();
    assert_eq!(events.content_type(), "text/event-stream");
    let mut last_event = String::new();
    let mut last_data = Value::Null;
    for line in std::io::BufReader::new(events.into_reader()).lines() {
        let line = line.unwrap();
        if let Some(name) = line.strip_prefix("event: ") {
            last_event = name.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            last_data = serde_json::from_str(data).unwrap();
            if last_event == "end" {
                break;
            }
        }
    }
    assert_eq!(last_event, "end");
    assert_eq!(last_data["state"], "succeeded", "{last_data}");
    assert_eq!(last_data["digest"], digest.as_str());
    assert_eq!(last_data["bytes_done"], last_data["bytes_total"]);

    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(
        task["target_reference"],
        format!("{}/web/app@{digest}", host.host())
    );
    // A real client sees the same image in the project, byte for byte.
    let pulled = skopeo::inspect_raw(&format!("{}/web/app:v1", host.host()), Some(&admin_creds()));
    assert_eq!(
        pulled,
        skopeo::inspect_raw(&format!("{}/library/app:v1", src.host()), None)
    );
}

#[test]
fn bad_input_is_refused_with_the_field_and_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(dir.path(), &[]));
    host.project("web", false);

    let (status, body) = host.import("web", json!({"source_url": "UPPER/Case:tag"}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "source_url");
    assert_eq!(body["error"]["code"], "invalid_reference");

    let (status, body) = host.import(
        "web",
        json!({"source_url": "nginx", "target_tag": "bad tag!"}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "target_tag");

    let (status, body) = host.import(
        "web",
        json!({"source_url": "nginx", "platforms": ["linux"]}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "platforms");

    let (status, body) = host.import("web", json!({"source": "nginx"}));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("source"),
        "{body}"
    );

    let (status, body) = host.import("nope", json!({"source_url": "nginx"}));
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("create")
    );

    let (status, _) = host.call(
        "POST",
        "/api/v1/projects/web/images/import",
        Some(json!({"source_url": "nginx"})),
        false,
    );
    assert_eq!(status, 401, "anonymous callers may not import");
}

#[test]
fn credentials_given_for_a_private_source_never_show_up_again() {
    let password = "private-source-pw-31c4";
    let src = Registry::start(Auth::Basic {
        user: "carol".into(),
        password: password.into(),
    });
    Pusher::new(&src.url())
        .with_auth(hoist_tests::basic("carol", password))
        .image(
            "team/app",
            Some("v1"),
            Format::Oci,
            LAYERS,
            ("linux", "amd64"),
        );
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &[]);
    hoist_tests::hoist_server::over_plain_http(&mut config, &src.host());
    let host = HoistServer::start(config);
    host.project("web", false);
    let (status, accepted) = host.import(
        "web",
        json!({
            "source_url": format!("{}/team/app:v1", src.host()),
            "auth": {"username": "carol", "password": password},
        }),
    );
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["task_id"].as_str().unwrap();
    let task = host.wait_task(id, TASK_DEADLINE);
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["authenticated"], true);

    let (_, list) = host.admin("GET", "/api/v1/projects/web/tasks", None);
    for text in [accepted.to_string(), task.to_string(), list.to_string()] {
        assert!(
            !text.contains(password),
            "an API response holds the password"
        );
    }
    // Nor does anything the host wrote to disk: database, WAL, keys, blobs.
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{} holds the password",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A slow source (its layer trickles for about 4 s), reached over plain HTTP, and a
/// host configuration that knows it.
fn slow_source(data_dir: &std::path::Path) -> (FakeRegistry, hoist_host::config::Config) {
    let fake = FakeRegistry::start(Fault::SlowLayer);
    let mut config = test_config(data_dir, &[]);
    hoist_tests::hoist_server::over_plain_http(&mut config, &fake.host());
    (fake, config)
}

#[test]
fn the_same_import_twice_is_merged_and_a_cancelled_one_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, config) = slow_source(dir.path());
    let host = HoistServer::start(config);
    host.project("web", false);

    let body = json!({"source_url": format!("{}/fake:v1", fake.host())});
    let (_, first) = host.import("web", body.clone());
    let (status, second) = host.import("web", body.clone());
    assert_eq!(status, 202);
    assert_eq!(second["merged"], true, "{second}");
    assert_eq!(second["task_id"], first["task_id"]);
    let id = first["task_id"].as_str().unwrap().to_owned();
    // Only identical requests merge: other platforms or other credentials would be lost in
    // the running task, so they are refused, naming the task to wait for.
    let mut other = body.clone();
    other["platforms"] = json!(["linux/arm64"]);
    let (status, refused) = host.import("web", other);
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["field"], "platforms", "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains(&id),
        "{refused}"
    );
    let mut other = body.clone();
    other["auth"] = json!({"username": "u", "password": "p"});
    let (status, refused) = host.import("web", other);
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["field"], "auth", "{refused}");
    assert!(!refused.to_string().contains("\"p\""), "{refused}");

    wait_until(Duration::from_secs(30), "the copy to start", || {
        let (_, t) = host.admin("GET", &format!("/api/v1/tasks/{id}"), None);
        t["phase"] == "copying"
    });
    let (status, _) = host.admin("POST", &format!("/api/v1/tasks/{id}/cancel"), None);
    assert_eq!(status, 202);
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["state"], "cancelled", "{task}");
    assert!(!skopeo::exists_with(
        &format!("{}/web/fake:v1", host.host()),
        &admin_creds()
    ));

    let (status, retried) = host.admin("POST", &format!("/api/v1/tasks/{id}/retry"), None);
    assert_eq!(status, 202, "{retried}");
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["attempts"], 2);

    let (status, _) = host.admin("POST", &format!("/api/v1/tasks/{id}/retry"), None);
    assert_eq!(status, 409, "a succeeded task is not retried");
}

#[test]
fn an_import_interrupted_by_a_restart_continues_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, config) = slow_source(dir.path());
    let host = HoistServer::start(config.clone());
    host.project("web", false);
    let (_, accepted) = host.import(
        "web",
        json!({"source_url": format!("{}/fake:v1", fake.host())}),
    );
    let id = accepted["task_id"].as_str().unwrap().to_owned();
    let uploads = dir.path().join("uploads");
    let sessions = || std::fs::read_dir(&uploads).map_or(0, |d| d.count());
    wait_until(Duration::from_secs(30), "the copy to start", || {
        let (_, t) = host.admin("GET", &format!("/api/v1/tasks/{id}"), None);
        t["phase"] == "copying" && sessions() > 0
    });
    // The same address again: the task's target names it.
    let mut config = config;
    config.listen = format!("127.0.0.1:{}", host.port).parse().unwrap();
    host.stop();
    let host = HoistServer::start(config);
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["attempts"], 2, "it ran again after the restart");
    assert!(
        task["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("restarted")),
        "{task}"
    );
    // The upload sessions the first process opened are not left behind: the restarted
    // task copied into new ones, and the old ones went when the host started.
    wait_until(Duration::from_secs(10), "no upload session left", || {
        sessions() == 0
    });
}

#[test]
fn a_batch_reports_its_bad_entry_and_imports_the_rest() {
    let (src, _) = docker_hub();
    let dir = tempfile::tempdir().unwrap();
    let mirror = src.url();
    let host = HoistServer::start(test_config(dir.path(), &[("docker.io", &mirror)]));
    host.project("web", false);
    let (status, body) = host.admin(
        "POST",
        "/api/v1/projects/web/images/import/batch",
        Some(json!({"images": [
            {"source_url": "app:v1"},
            {"source_url": "Not A Reference"},
            {"source_url": "app:v1", "target_image": "copy"},
        ]})),
    );
    assert_eq!(status, 202, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["error"]["field"], "source_url", "{body}");
    for i in [0, 2] {
        let id = items[i]["task_id"].as_str().unwrap();
        let task = host.wait_task(id, TASK_DEADLINE);
        assert_eq!(task["state"], "succeeded", "{task}");
    }
    let (_, list) = host.admin("GET", "/api/v1/projects/web/tasks?state=succeeded", None);
    assert_eq!(list["tasks"].as_array().unwrap().len(), 2);
    let (status, _) = host.admin("GET", "/api/v1/projects/web/tasks?state=bogus", None);
    assert_eq!(status, 400);
}

#[test]
fn a_source_on_a_refused_network_fails_with_the_class_named() {
    let (src, _) = docker_hub();
    let dir = tempfile::tempdir().unwrap();
    let mirror = src.url();
    let mut config = test_config(dir.path(), &[("docker.io", &mirror)]);
    config.egress.allowed_networks.clear();
    let host = HoistServer::start(config);
    host.project("web", false);
    let (_, accepted) = host.import("web", json!({"source_url": "app:v1"}));
    let task = host.wait_task(accepted["task_id"].as_str().unwrap(), TASK_DEADLINE);
    assert_eq!(task["state"], "failed");
    assert_eq!(task["error"]["code"], "denied_by_policy", "{task}");
    assert!(
        task["error"]["message"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{task}"
    );
}

#[test]
fn projects_are_managed_by_the_admin_and_not_deleted_while_they_hold_images() {
    let (src, _) = docker_hub();
    let dir = tempfile::tempdir().unwrap();
    let mirror = src.url();
    let host = HoistServer::start(test_config(dir.path(), &[("docker.io", &mirror)]));
    host.project("web", false);
    host.project("pub", true);
    let (status, body) = host.admin("POST", "/api/v1/projects", Some(json!({"name": "web"})));
    assert_eq!(status, 409, "{body}");
    let (status, body) = host.admin(
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "Bad Name"})),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "name");
    let (status, _) = host.call(
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "x1"})),
        false,
    );
    assert_eq!(status, 401, "anonymous callers may not create projects");

    let (_, anonymous) = host.call("GET", "/api/v1/projects", None, false);
    let names: Vec<&str> = anonymous
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pub"], "anonymous callers see public projects only");

    let (_, accepted) = host.import("web", json!({"source_url": "app:v1"}));
    let task = host.wait_task(accepted["task_id"].as_str().unwrap(), TASK_DEADLINE);
    assert_eq!(task["state"], "succeeded", "{task}");
    let (status, body) = host.admin("DELETE", "/api/v1/projects/web", None);
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("force"));
    let (status, _) = host.admin("DELETE", "/api/v1/projects/web?force=true", None);
    assert_eq!(status, 204);
    let (status, _) = host.admin("GET", "/api/v1/projects/web", None);
    assert_eq!(status, 404);
    assert!(!skopeo::exists_with(
        &format!("{}/web/app:v1", host.host()),
        &admin_creds()
    ));
}

#[test]
fn a_robot_pushes_where_its_scopes_allow_and_nowhere_else() {
    let (src, _) = docker_hub();
    let dir = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(dir.path(), &[]));
    host.project("web", false);
    host.project("other", false);
    let (status, created) = host.admin(
        "POST",
        "/api/v1/robots",
        Some(json!({"name": "ci", "scopes": [{"project": "web", "actions": ["pull", "push"]}]})),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["username"], "robot$ci");
    let secret = created["secret"].as_str().unwrap().to_owned();
    let creds = format!("robot$ci:{secret}");

    let source = format!("{}/library/app:v1", src.host());
    let push = |to: &str, creds: &str| {
        skopeo::copy_with(
            &source,
            &format!("{}/{to}", host.host()),
            &["--dest-creds", creds],
        )
    };
    push("web/app:v1", &creds).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        push("other/app:v1", &creds).is_err(),
        "no push right on other"
    );
    assert!(
        push("web/app:v2", "robot$ci:nope").is_err(),
        "a wrong secret is refused"
    );

    let (_, robots) = host.admin("GET", "/api/v1/robots", None);
    assert!(
        !robots.to_string().contains(&secret),
        "the secret is shown once only"
    );
    assert_eq!(robots[0]["scopes"][0]["project"], "web");
    let (status, _) = host.admin("DELETE", "/api/v1/robots/ci", None);
    assert_eq!(status, 204);
    assert!(
        push("web/app:v3", &creds).is_err(),
        "a deleted robot is locked out"
    );
}

/// Every error from `/api/v1` is the API's JSON error, including those axum answers
/// itself: an unknown path, a method a route does not take, a bad query string, a body
/// over the limit.
#[test]
fn every_api_error_is_json_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(dir.path(), &[]));
    host.project("web", false);
    let cases: [(&str, &str, Option<Value>, u16, &str); 4] = [
        ("GET", "/api/v1/nothing/here", None, 404, "not_found"),
        ("GET", "/api/v1", None, 404, "not_found"),
        (
            "PATCH",
            "/api/v1/tasks/abc/cancel",
            None,
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/api/v1/projects/web/tasks?limit=many",
            None,
            400,
            "invalid_request",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, answer) = host.admin(method, path, body);
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{method} {path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.len() > 10, "{method} {path}: {answer}");
    }
    let long = format!("/api/v1/projects?filter={}", "x".repeat(9000));
    let (got, answer) = host.admin("GET", &long, None);
    assert_eq!(got, 414, "{answer}");
    assert_eq!(answer["error"]["code"], "uri_too_long", "{answer}");
    let (_, answer) = host.admin("GET", "/api/v1/projects/web/tasks?limit=many", None);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit"),
        "the message names the parameter: {answer}"
    );

    // A body over the limit, announced by its length: refused before it is read.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host.host()).unwrap();
    write!(
        stream,
        "POST /api/v1/projects HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{{\"name\": \"",
        host.host(),
        64 << 20
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "too_large", "{body}");
}
