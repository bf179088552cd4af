//! Hoist's registry with real clients: skopeo (Debian's) copies images from a real
//! distribution registry into Hoist and back out, and the manifests come out byte for
//! byte, so digests are kept; the Python `oras` client pushes chunked artifacts, a
//! referrer with a subject, and pulls them back.
//!
//! The registry is served in this process from `hoist_host::registry::service`, the same
//! router the host serves, over a temporary data folder.

use hoist_host::registry::{Registry, RegistryOptions};
use hoist_tests::images::{Format, Pusher, sha256};
use hoist_tests::registry::{Auth, Registry as Distribution};
use hoist_tests::{serve, skopeo, wait_until};
use std::process::Command;
use std::time::Duration;

/// Hoist's registry on a loopback port, with the project `team`.
struct Hoist {
    port: u16,
    registry: Registry,
    _dir: tempfile::TempDir,
}

impl Hoist {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), RegistryOptions::default()).unwrap();
        registry.metadata().create_project("team", false).unwrap();
        let port = serve(hoist_host::registry::service(registry.clone()));
        let url = format!("http://127.0.0.1:{port}/v2/");
        wait_until(
            Duration::from_secs(10),
            "Hoist's registry to answer",
            || ureq::get(&url).call().is_ok(),
        );
        Self {
            port,
            registry,
            _dir: dir,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn skopeo_copy(from: &str, to: &str) {
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .expect("skopeo is installed by scripts/install-deps.sh");
    assert!(
        out.status.success(),
        "skopeo copy {from} {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn skopeo_copies_images_through_hoist_with_their_digests_kept() {
    let source = Distribution::start(Auth::None);
    let target = Distribution::start(Auth::None);
    let hoist = Hoist::start();
    let pusher = Pusher::new(&source.url());
    let single = pusher.image(
        "lib/single",
        Some("v1"),
        Format::Docker,
        &[300_000, 40_000],
        ("linux", "amd64"),
    );
    let multi = pusher.index(
        "lib/multi",
        "v2",
        Format::Oci,
        &[200_000],
        &[("linux", "amd64", None), ("linux", "arm64", Some("v8"))],
    );

    for (repo, tag, pushed) in [("single", "v1", &single), ("multi", "v2", &multi)] {
        let src = format!("{}/lib/{repo}:{tag}", source.host());
        let in_hoist = format!("{}/team/{repo}:{tag}", hoist.host());
        skopeo_copy(&src, &in_hoist);
        let raw = skopeo::inspect_raw(&in_hoist, None);
        assert_eq!(
            raw, pushed.manifest,
            "{repo}: Hoist serves the bytes pushed"
        );
        assert_eq!(sha256(&raw), pushed.digest, "{repo}: the digest is kept");
        // skopeo fetches and verifies every blob of every platform.
        skopeo::pull_all(&in_hoist);

        // And out again, into another registry.
        let out = format!("{}/copied/{repo}:{tag}", target.host());
        skopeo_copy(&in_hoist, &out);
        assert_eq!(skopeo::inspect_raw(&out, None), pushed.manifest);
    }

    // The platforms' manifests are there by digest, and every blob is in the store.
    let index: serde_json::Value = serde_json::from_slice(&multi.manifest).unwrap();
    for child in index["manifests"].as_array().unwrap() {
        let digest = child["digest"].as_str().unwrap();
        let raw = skopeo::inspect_raw(&format!("{}/team/multi@{digest}", hoist.host()), None);
        assert_eq!(sha256(&raw), digest);
    }
    for (digest, size) in single.blobs.iter().chain(&multi.blobs) {
        assert_eq!(
            hoist.registry.storage().blob_len(digest).unwrap(),
            Some(*size),
            "{digest}"
        );
    }
    let (status, tags) = get_json(&hoist, "/v2/team/multi/tags/list");
    assert_eq!(status, 200);
    assert_eq!(tags["tags"], serde_json::json!(["v2"]));
}

fn get_json(hoist: &Hoist, path: &str) -> (u16, serde_json::Value) {
    match ureq::get(&format!("http://{}{path}", hoist.host())).call() {
        Ok(r) => (
            r.status(),
            serde_json::from_reader(r.into_reader()).unwrap(),
        ),
        Err(ureq::Error::Status(s, r)) => (s, serde_json::from_reader(r.into_reader()).unwrap()),
        Err(e) => panic!("{path}: {e}"),
    }
}

/// Pushes an artifact in chunks, then a signature whose subject is that artifact, then
/// pulls the artifact back; prints the artifact's manifest digest.
const ORAS_SCRIPT: &str = r#"
import json, os, sys
import oras.client, oras.oci
host, work = sys.argv[1], sys.argv[2]
os.chdir(work)
client = oras.client.OrasClient(hostname=host, insecure=True)
with open("notes.txt", "w") as f:
    f.write("hello from oras " * 1000)
client.push(target=f"{host}/team/notes:v1", files=["notes.txt"], do_chunked=True,
            chunk_size=4096, quiet=True)
manifest = client.get_manifest(f"{host}/team/notes:v1")
subject = oras.oci.Subject.from_manifest(manifest)
with open("signature.txt", "w") as f:
    f.write("signed")
client.push(target=f"{host}/team/notes:signature", files=["signature.txt"],
            subject=subject, quiet=True,
            manifest_annotations={"org.example.kind": "signature"})
pulled = client.pull(target=f"{host}/team/notes:v1", outdir="out")
print(json.dumps({"subject": subject.digest, "pulled": [open(p).read() for p in pulled]}))
"#;

#[test]
fn oras_pushes_chunked_artifacts_and_referrers() {
    if Command::new("python3")
        .args(["-c", "import oras"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        // scripts/install-deps.sh installs it; a machine without it skips this client.
        eprintln!("skipping: the Python oras package is not installed");
        return;
    }
    let hoist = Hoist::start();
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .args(["-c", ORAS_SCRIPT, &hoist.host()])
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oras: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|&b| b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .expect("the script prints its result"),
    )
    .unwrap();
    assert_eq!(result["pulled"][0], "hello from oras ".repeat(1000));

    let subject = result["subject"].as_str().unwrap();
    let (status, index) = get_json(&hoist, &format!("/v2/team/notes/referrers/{subject}"));
    assert_eq!(status, 200);
    let referrers = index["manifests"].as_array().unwrap();
    assert_eq!(referrers.len(), 1, "{index}");
    assert_eq!(referrers[0]["annotations"]["org.example.kind"], "signature");
}
