//! Imports on the host from the registries admins name most (`ghcr.io`, `quay.io`,
//! `registry.k8s.io`), each mapped to a local Debian `docker-registry` by a mirror; from a
//! private source behind token auth, whose password must not surface in the host's logs; and
//! twenty at once under the worker limit while the registry keeps serving pulls; and from
//! a registry whose content is addressed by sha512.

use hoist_tests::fake_registry::{FakeRegistry, Fault};
use hoist_tests::fault_proxy::{FaultProxy, ProxyFault};
use hoist_tests::hoist_server::{HoistServer, admin_basic, admin_creds, test_config};
use hoist_tests::images::{Format, Pusher, docker_hub};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::token_server::{TokenField, token_registry};
use hoist_tests::{skopeo, wait_until};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const LAYERS: &[usize] = &[200_000, 400_000];
const TASK_DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn ghcr_quay_and_k8s_references_import_through_their_mirrors() {
    let ghcr = Registry::start(Auth::None);
    let quay = Registry::start(Auth::None);
    let k8s = Registry::start(Auth::None);
    let multi = Pusher::new(&ghcr.url()).index(
        "owner/repo",
        "v1.0.0",
        Format::Oci,
        LAYERS,
        &[("linux", "amd64", None), ("linux", "arm64", Some("v8"))],
    );
    let prometheus = Pusher::new(&quay.url()).image(
        "prometheus/prometheus",
        Some("latest"),
        Format::Docker,
        LAYERS,
        ("linux", "amd64"),
    );
    let pause = Pusher::new(&k8s.url()).image(
        "pause",
        Some("3.9"),
        Format::Oci,
        &[50_000],
        ("linux", "amd64"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (ghcr_url, quay_url, k8s_url) = (ghcr.url(), quay.url(), k8s.url());
    let host = HoistServer::start(test_config(
        dir.path(),
        &[
            ("ghcr.io", &ghcr_url),
            ("quay.io", &quay_url),
            ("registry.k8s.io", &k8s_url),
        ],
    ));
    host.project("mirror", false);

    let cases = [
        (
            "ghcr.io/owner/repo:v1.0.0",
            "repo:v1.0.0",
            &ghcr,
            "owner/repo:v1.0.0",
            &multi.digest,
        ),
        (
            "quay.io/prometheus/prometheus:latest",
            "prometheus:latest",
            &quay,
            "prometheus/prometheus:latest",
            &prometheus.digest,
        ),
        (
            "registry.k8s.io/pause:3.9",
            "pause:3.9",
            &k8s,
            "pause:3.9",
            &pause.digest,
        ),
    ];
    let ids: Vec<String> = cases
        .iter()
        .map(|(source, ..)| host.start_import("mirror", json!({"source_url": source})))
        .collect();
    for (id, (source, target, origin, origin_ref, digest)) in ids.iter().zip(&cases) {
        let task = host.wait_task(id, TASK_DEADLINE);
        assert_eq!(task["state"], "succeeded", "{source}: {task}");
        assert_eq!(task["digest"], digest.as_str(), "{source}");
        let stored = format!("{}/mirror/{target}", host.host());
        assert_eq!(task["target"], stored, "{source}");
        // The manifest (an index for ghcr's) is byte for byte the source's, and skopeo can
        // fetch and verify every blob of every platform from the host.
        assert_eq!(
            skopeo::inspect_raw(&stored, Some(&admin_creds())),
            skopeo::inspect_raw(&format!("{}/{origin_ref}", origin.host()), None),
            "{source}"
        );
        skopeo::pull_all_with(&stored, &admin_creds());
    }
}

/// Every line the process logs, at debug level, for the tests that scan them.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            // Debug for everything but the compiler, whose output is large and holds no
            // request data.
            .with_env_filter("debug,cranelift_codegen=info,wasmtime_cranelift=info")
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .init();
        logs
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_private_source_behind_token_auth_imports_and_its_password_is_never_logged() {
    let logs = captured_logs();
    let password = "tok3n-source-pw-9a1e";
    let (tokens, src) = token_registry("dana", password, TokenField::AccessToken);
    let pushed = Pusher::new(&src.url())
        .with_auth(format!(
            "Bearer {}",
            tokens.mint("team/secret", &["pull", "push"])
        ))
        .image(
            "team/secret",
            Some("v2"),
            Format::Oci,
            LAYERS,
            ("linux", "amd64"),
        );
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &[]);
    hoist_tests::hoist_server::over_plain_http(&mut config, &src.host());
    let host = HoistServer::start(config);
    host.project("web", false);

    // Without credentials the source refuses, and the task says what would fix it.
    let source = format!("{}/team/secret:v2", src.host());
    let id = host.start_import("web", json!({"source_url": source}));
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["state"], "failed", "{task}");
    assert_eq!(task["error"]["code"], "unauthorized", "{task}");
    assert!(
        task["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requires credentials"),
        "{task}"
    );
    // With a wrong password, the task says the credentials were refused, not missing.
    let id = host.start_import(
        "web",
        json!({"source_url": source, "auth": {"username": "dana", "password": "wrong"}}),
    );
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["error"]["code"], "unauthorized", "{task}");
    assert!(
        task["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused the credentials"),
        "{task}"
    );

    let id = host.start_import(
        "web",
        json!({"source_url": source, "target_image": "secret", "target_tag": "v2",
               "auth": {"username": "dana", "password": password}}),
    );
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["digest"], pushed.digest.as_str());
    // The token server saw the credentials: they reached the realm the registry announced.
    assert!(tokens.requests().iter().any(|(_, with_creds)| *with_creds));
    skopeo::pull_all_with(&format!("{}/web/secret:v2", host.host()), &admin_creds());

    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    // The capture works: the host logged this import's requests.
    assert!(logged.contains(&id), "the logs do not mention the task");
    assert!(!logged.contains(password), "a log line holds the password");
    let (_, task_json) = host.admin("GET", &format!("/api/v1/tasks/{id}"), None);
    assert!(!task_json.to_string().contains(password));
}

#[test]
fn twenty_imports_at_once_stay_under_the_worker_limit_while_pulls_keep_working() {
    const WORKERS: usize = 4;
    // Each import of the fake's slow layer takes about 4 s: long enough for the limit
    // to be reached and watched, short enough for 20 in 5 rounds.
    let fake = FakeRegistry::start(Fault::SlowLayer);
    let served = Registry::start(Auth::None);
    let resident = Pusher::new(&served.url()).image(
        "library/resident",
        Some("v1"),
        Format::Oci,
        LAYERS,
        ("linux", "amd64"),
    );
    let dir = tempfile::tempdir().unwrap();
    let served_url = served.url();
    let mut config = test_config(dir.path(), &[("docker.io", &served_url)]);
    config.imports.workers = WORKERS;
    config.imports.per_registry = WORKERS;
    hoist_tests::hoist_server::over_plain_http(&mut config, &fake.host());
    let host = HoistServer::start(config);
    host.project("busy", false);
    let id = host.start_import("busy", json!({"source_url": "resident:v1"}));
    assert_eq!(host.wait_task(&id, TASK_DEADLINE)["state"], "succeeded");

    let ids: Vec<String> = (0..20)
        .map(|i| {
            host.start_import(
                "busy",
                json!({"source_url": format!("{}/fake:v1", fake.host()),
                       "target_image": format!("copy{i}"), "target_tag": "v1"}),
            )
        })
        .collect();

    let mut most_running = 0;
    let mut slowest_pull = Duration::ZERO;
    let resident_ref = format!("{}/busy/resident:v1", host.host());
    wait_until(Duration::from_secs(180), "twenty imports to finish", || {
        let (status, page) = host.admin("GET", "/api/v1/projects/busy/tasks?state=running", None);
        assert_eq!(status, 200, "{page}");
        // The list filters on the recorded state; the live one is what counts.
        let running = page["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] == "running")
            .count();
        assert!(
            running <= WORKERS,
            "{running} imports ran at once, over the limit of {WORKERS}"
        );
        most_running = most_running.max(running);
        // The registry keeps answering pulls of what it already holds.
        let started = Instant::now();
        let manifest = skopeo::inspect_raw(&resident_ref, Some(&admin_creds()));
        slowest_pull = slowest_pull.max(started.elapsed());
        assert_eq!(hoist_tests::images::sha256(&manifest), resident.digest);
        let (_, done) = host.admin(
            "GET",
            "/api/v1/projects/busy/tasks?state=succeeded&limit=100",
            None,
        );
        done["tasks"].as_array().unwrap().len() == 21
    });
    assert_eq!(
        most_running, WORKERS,
        "the worker pool never filled: the limit was not exercised"
    );
    assert!(
        slowest_pull < Duration::from_secs(5),
        "a pull took {slowest_pull:?} while imports ran"
    );
    for id in &ids {
        let (_, task) = host.admin("GET", &format!("/api/v1/tasks/{id}"), None);
        assert_eq!(task["state"], "succeeded", "{task}");
        assert_eq!(task["bytes_done"], task["bytes_total"], "{task}");
    }
}

#[test]
fn an_external_target_receives_imports_pushed_with_the_hosts_own_account() {
    let (src, _) = docker_hub(LAYERS);
    let push_password = "target-push-pw-5b07";
    let external = Registry::start(Auth::Basic {
        user: "pusher".into(),
        password: push_password.into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("target-password");
    std::fs::write(&password_file, format!("{push_password}\n")).unwrap();
    let mirror = src.url();
    let mut config = test_config(&dir.path().join("data"), &[("docker.io", &mirror)]);
    config.target = Some(hoist_host::config::TargetConfig {
        url: external.url(),
        username: Some("pusher".into()),
        password_file: Some(password_file),
        ca_file: None,
    });
    let host = HoistServer::start(config);
    host.project("ext", false);

    let id = host.start_import("ext", json!({"source_url": "app:v1"}));
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["state"], "succeeded", "{task}");
    let landed = format!("{}/ext/app:v1", external.host());
    assert_eq!(task["target"], landed);
    assert!(!task.to_string().contains(push_password));
    // The image is in the external registry, byte for byte, and not in the host's own.
    assert_eq!(
        skopeo::inspect_raw(&landed, Some(&format!("pusher:{push_password}"))),
        skopeo::inspect_raw(&format!("{}/library/app:v1", src.host()), None)
    );
    assert!(!skopeo::exists_with(
        &format!("{}/ext/app:v1", host.host()),
        &admin_creds()
    ));
}

#[test]
fn imports_into_one_project_move_a_shared_layer_once() {
    // The fake's layer trickles for about 4 s, so the second import asks for it while the
    // first is still moving it.
    let fake = FakeRegistry::start(Fault::SlowLayer);
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &[]);
    hoist_tests::hoist_server::over_plain_http(&mut config, &fake.host());
    let host = HoistServer::start(config);
    host.project("shared", false);
    let source = format!("{}/fake:v1", fake.host());
    let ids: Vec<String> = ["one", "two"]
        .iter()
        .map(|name| {
            host.start_import(
                "shared",
                json!({"source_url": source, "target_image": name, "target_tag": "v1"}),
            )
        })
        .collect();
    let tasks: Vec<Value> = ids
        .iter()
        .map(|id| host.wait_task(id, TASK_DEADLINE))
        .collect();
    for task in &tasks {
        assert_eq!(task["state"], "succeeded", "{task}");
    }
    assert_eq!(
        fake.layer_ranges().len(),
        1,
        "the layer was downloaded more than once: {:?}",
        fake.layer_ranges()
    );
    let layer = fake.layer_digest();
    let states: Vec<&str> = tasks
        .iter()
        .map(|t| {
            t["blobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["digest"] == layer.as_str())
                .unwrap()["state"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        states.contains(&"done") && states.contains(&"skipped"),
        "one import copies the layer and the other finds it in place: {states:?}"
    );
    // Later, a third repository of the project gets the layer from the first two, not
    // from the source.
    let id = host.start_import(
        "shared",
        json!({"source_url": source, "target_image": "three", "target_tag": "v1"}),
    );
    assert_eq!(host.wait_task(&id, TASK_DEADLINE)["state"], "succeeded");
    assert_eq!(
        fake.layer_ranges().len(),
        1,
        "the layer was downloaded again"
    );
    for name in ["one", "two", "three"] {
        skopeo::pull_all_with(&format!("{}/shared/{name}:v1", host.host()), &admin_creds());
    }
}

/// A registry that addresses content by sha512 (here a second Hoist, which the
/// conformance suite's sha512 workflows pass): an import by sha512 digest keeps every
/// digest in sha512, whole or filtered to one platform, pushed under a tag.
#[test]
fn an_image_addressed_by_sha512_is_imported_with_its_sha512_digests() {
    use sha2::{Digest as _, Sha512};
    let sha512 = |bytes: &[u8]| format!("sha512:{:x}", Sha512::digest(bytes));
    let source_dir = tempfile::tempdir().unwrap();
    let source = HoistServer::start(test_config(source_dir.path(), &[]));
    source.project("src", true);
    let push = |path: &str, content_type: &str, bytes: &[u8]| {
        let a = ureq::request(
            if path.contains("/uploads/") {
                "POST"
            } else {
                "PUT"
            },
            &source.url(path),
        )
        .set("authorization", &admin_basic())
        .set("content-type", content_type)
        .send_bytes(bytes)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(a.status(), 201, "{path}");
    };
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let layer = format!("the {arch} layer ").repeat(20_000).into_bytes();
        let (config_digest, layer_digest) = (sha512(config.as_bytes()), sha512(&layer));
        push(
            &format!("/v2/src/app/blobs/uploads/?digest={config_digest}"),
            "application/octet-stream",
            config.as_bytes(),
        );
        push(
            &format!("/v2/src/app/blobs/uploads/?digest={layer_digest}"),
            "application/octet-stream",
            &layer,
        );
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        let digest = sha512(&manifest);
        push(
            &format!("/v2/src/app/manifests/{digest}"),
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        );
        children.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": manifest.len(), "platform": {"os": "linux", "architecture": arch}}));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children,
    }))
    .unwrap();
    let index_digest = sha512(&index);
    push(
        &format!("/v2/src/app/manifests/{index_digest}"),
        "application/vnd.oci.image.index.v1+json",
        &index,
    );

    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &[]);
    hoist_tests::hoist_server::over_plain_http(&mut config, &source.host());
    let host = HoistServer::start(config);
    host.project("dst", false);
    let arm_digest = children[1]["digest"].as_str().unwrap().to_owned();
    for (body, tag, digest) in [
        (
            json!({"source_url": format!("{}/src/app@{index_digest}", source.host()), "target_tag": "all"}),
            "all",
            &index_digest,
        ),
        (
            json!({"source_url": format!("{}/src/app@{index_digest}", source.host()), "target_tag": "arm", "platforms": ["linux/arm64"]}),
            "arm",
            &arm_digest,
        ),
    ] {
        let id = host.start_import("dst", body);
        let task = host.wait_task(&id, TASK_DEADLINE);
        assert_eq!(task["state"], "succeeded", "{task}");
        assert_eq!(task["digest"], digest.as_str(), "{task}");
        // The tag names the sha512 digest, and every manifest and blob below it is there
        // under its sha512 digest, with bytes that hash to it. (Debian's skopeo 1.9 does
        // not verify sha512 content, so the walk is done here.)
        let fetch = |kind: &str, reference: &str| {
            let got = ureq::get(&host.url(&format!("/v2/dst/app/{kind}/{reference}")))
                .set("authorization", &admin_basic())
                .set("accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
                .call()
                .unwrap_or_else(|e| panic!("{kind}/{reference}: {e}"));
            let header = got.header("docker-content-digest").map(str::to_owned);
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut got.into_reader(), &mut bytes).unwrap();
            (header, bytes)
        };
        let (header, top) = fetch("manifests", tag);
        assert_eq!(header.as_deref(), Some(digest.as_str()), "{tag}");
        assert_eq!(sha512(&top), *digest, "{tag}");
        let (mut manifests, mut checked) = (vec![top], 1);
        while let Some(bytes) = manifests.pop() {
            let m: Value = serde_json::from_slice(&bytes).unwrap();
            for child in m["manifests"].as_array().into_iter().flatten() {
                let d = child["digest"].as_str().unwrap();
                let (_, bytes) = fetch("manifests", d);
                assert_eq!(sha512(&bytes), d);
                manifests.push(bytes);
                checked += 1;
            }
            let layers = m["layers"].as_array().into_iter().flatten();
            for d in std::iter::once(&m["config"])
                .chain(layers)
                .filter_map(|b| b["digest"].as_str())
            {
                assert_eq!(sha512(&fetch("blobs", d).1), d);
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            if tag == "all" { 7 } else { 3 },
            "{tag}: every manifest and blob"
        );
    }
}

/// A source that reports its pull quota as Docker Hub does: the import's task carries
/// what was left after it, and the API shows it.
#[test]
fn an_import_reports_the_quota_its_source_has_left() {
    let source = Registry::start(Auth::None);
    Pusher::new(&source.url()).image(
        "library/app",
        Some("v1"),
        Format::Oci,
        &[50_000],
        ("linux", "amd64"),
    );
    let proxy = FaultProxy::start(&source.host(), ProxyFault::Quota { limit: 100 });
    proxy.set_quota(50);
    let dir = tempfile::tempdir().unwrap();
    let mirror = format!("http://{}", proxy.host());
    let host = HoistServer::start(test_config(dir.path(), &[("docker.io", &mirror)]));
    host.project("hub", false);
    let id = host.start_import("hub", json!({"source_url": "app:v1"}));
    let task = host.wait_task(&id, TASK_DEADLINE);
    assert_eq!(task["state"], "succeeded", "{task}");
    // One pull: the manifest GET. HEADs are free.
    let quota = &task["quota"];
    assert_eq!(quota["remaining"], 49, "{task}");
    assert_eq!(quota["limit"], 100, "{task}");
    assert_eq!(quota["window_seconds"], 21600, "{task}");
    assert_eq!(quota["endpoint"], proxy.host().as_str(), "{task}");
}
