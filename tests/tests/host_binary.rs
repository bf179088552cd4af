//! The `hoist-host` binary's operations: `/readyz` telling a load balancer the truth about
//! storage, and the offline `hoist-host gc` command.

use hoist_tests::hoist_server::admin_basic;
use hoist_tests::host_process::{HostProcess, command};
use hoist_tests::images::{Format, Pusher};
use std::time::Duration;

fn get(url: &str) -> (u16, serde_json::Value) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let r = match agent.get(url).set("authorization", &admin_basic()).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = r.status();
    let text = r.into_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[test]
fn readyz_answers_503_with_the_reason_when_the_blob_store_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let host = HostProcess::start(&data);
    let (status, body) = get(&host.url("/readyz"));
    assert_eq!((status, &body["status"]), (200, &"ready".into()), "{body}");

    // The store's scratch folder disappears (a volume unmounted, a cleanup gone wrong):
    // the store can no longer take a write, so the host is not ready, and says why.
    std::fs::remove_dir_all(data.join("tmp")).unwrap();
    let (status, body) = get(&host.url("/readyz"));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not ready");
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains("blob store"), "{reason}");
    // Liveness is another matter: the process still answers.
    assert_eq!(get(&host.url("/healthz")).0, 200);

    std::fs::create_dir(data.join("tmp")).unwrap();
    assert_eq!(
        get(&host.url("/readyz")).0,
        200,
        "ready again once repaired"
    );
}

fn gc(data: &std::path::Path, extra: &[&str]) -> String {
    let out = command()
        .arg("gc")
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hoist-host gc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn blob_file(data: &std::path::Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    data.join("blobs/sha256").join(&hex[..2]).join(hex)
}

#[test]
fn hoist_host_gc_frees_unreferenced_blobs_offline_and_keeps_images() {
    let help = command().args(["gc", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("while the host is stopped") && help.contains("--grace"),
        "the help says when gc is safe to run: {help}"
    );

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let host = HostProcess::start(&data);
    let (status, _) = {
        let r = ureq::post(&host.url("/api/v1/projects"))
            .set("authorization", &admin_basic())
            .send_json(serde_json::json!({"name": "team", "public": false}))
            .unwrap();
        (r.status(), ())
    };
    assert_eq!(status, 201);
    let pusher = Pusher::new(&host.url("")).with_auth(admin_basic());
    let image = pusher.image(
        "team/app",
        Some("v1"),
        Format::Oci,
        &[200_000],
        ("linux", "amd64"),
    );
    // A blob pushed but never referenced by a manifest: a push that was abandoned.
    let orphan_bytes = vec![7u8; 123_457];
    let orphan = pusher.push_blob("team/app", &orphan_bytes);
    host.kill();

    // With the default grace period the orphan is too young to go.
    let kept = gc(&data, &["--json"]);
    let report: serde_json::Value = serde_json::from_str(kept.trim()).unwrap();
    assert_eq!(report["blobs_deleted"], 0, "{report}");
    assert!(
        report["blobs_kept_young"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(blob_file(&data, &orphan).exists());

    // With no grace period it goes, and the report says how much was freed.
    let freed = gc(&data, &["--grace", "0s"]);
    assert!(
        freed.contains("freed 123457 bytes") && freed.contains("1 unreferenced blobs deleted"),
        "{freed}"
    );
    assert!(!blob_file(&data, &orphan).exists(), "the orphan is gone");
    for (digest, _) in &image.blobs {
        assert!(blob_file(&data, digest).exists(), "{digest} is referenced");
    }

    // The image is whole when the host serves again; the orphan is not served.
    let host = HostProcess::start(&data);
    let (status, manifest) = get(&host.url("/v2/team/app/manifests/v1"));
    assert_eq!(status, 200, "{manifest}");
    for (digest, size) in &image.blobs {
        let r = ureq::head(&host.url(&format!("/v2/team/app/blobs/{digest}")))
            .set("authorization", &admin_basic())
            .call()
            .unwrap();
        assert_eq!(r.header("content-length"), Some(size.to_string().as_str()));
    }
    let (status, _) = get(&host.url(&format!("/v2/team/app/blobs/{orphan}")));
    assert_eq!(status, 404);

    // A folder that is not a data folder is refused, not treated as empty.
    let out = command()
        .args(["gc", "--data-dir"])
        .arg(dir.path().join("nothing-here"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no hoist.db"));
}
