//! Signatures, SBOMs and attestations travel with the image: found in the source through
//! the OCI 1.1 referrers API, the referrers tag schema, or cosign's legacy tags, and
//! written to the target the same way round. Debian's distribution 2.8 has no referrers
//! API, so it exercises the fallbacks on both sides; Hoist's registry has it.

use hoist_registry::{Registry as HoistRegistry, RegistryOptions};
use hoist_tests::hoist_server::{HoistServer, test_config};
use hoist_tests::images::{Format, Pushed, Pusher, sha256};
use hoist_tests::registry::{Auth, Registry};
use hoist_tests::{hoist, hoist_cache, serve, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const SIGNATURE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SBOM: &str = "application/spdx+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
const PLATFORMS: [(&str, &str, Option<&str>); 2] =
    [("linux", "amd64", None), ("linux", "arm64", Some("v8"))];

/// A manifest's descriptor fields: media type, digest, size.
type Subject = (String, String, usize);

fn subject_of(media: &str, pushed: &Pushed) -> Subject {
    (
        media.to_owned(),
        pushed.digest.clone(),
        pushed.manifest.len(),
    )
}

/// The platform manifests of an index, in order.
fn children(index: &Pushed) -> Vec<Subject> {
    let parsed: Value = serde_json::from_slice(&index.manifest).unwrap();
    parsed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mediaType"].as_str().unwrap().to_owned(),
                m["digest"].as_str().unwrap().to_owned(),
                m["size"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

/// The tag that stands for a digest in the referrers tag schema and cosign's tags.
fn digest_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Pushes an OCI 1.1 artifact by digest: an empty config, one layer holding `content`,
/// `artifactType`, and `subject`. Returns its digest and its entry for a referrers index.
fn attach(
    pusher: &Pusher,
    repo: &str,
    subject: &Subject,
    artifact_type: &str,
    content: &[u8],
) -> (String, Value) {
    let config = pusher.push_blob(repo, b"{}");
    let layer = pusher.push_blob(repo, content);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": config, "size": 2},
        "layers": [{"mediaType": artifact_type, "digest": layer, "size": content.len()}],
        "subject": {"mediaType": subject.0, "digest": subject.1, "size": subject.2},
    }))
    .unwrap();
    let digest = sha256(&manifest);
    pusher.push_manifest(repo, &digest, OCI_MANIFEST, &manifest);
    let entry = json!({
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": manifest.len(),
        "artifactType": artifact_type,
    });
    (digest, entry)
}

/// Writes the referrers tag schema's index for `subject`, as a client of a registry
/// without the referrers API keeps it.
fn fallback_tag(pusher: &Pusher, repo: &str, subject: &str, entries: Vec<Value>) {
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    }))
    .unwrap();
    pusher.push_manifest(repo, &digest_tag(subject), OCI_INDEX, &index);
}

/// A cosign-style legacy manifest (a generic image config, one layer of `layer_type`),
/// written as an OCI layout and copied by skopeo to `repo:sha256-<hex>.<suffix>` of
/// `registry`. Returns the manifest's digest.
fn skopeo_cosign_tag(
    work: &Path,
    registry: &str,
    repo: &str,
    subject: &str,
    suffix: &str,
    layer_type: &str,
) -> String {
    let layout = work.join(format!("{}-{suffix}", digest_tag(subject)));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        (digest, bytes.len())
    };
    let payload = serde_json::to_vec(&json!({
        "critical": {"image": {"docker-manifest-digest": subject}, "type": "cosign container image signature"},
        "optional": {"suffix": suffix},
    }))
    .unwrap();
    let (layer, layer_size) = blob(&payload);
    let config = serde_json::to_vec(&json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    }))
    .unwrap();
    let (config, config_size) = blob(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": layer_type, "digest": layer, "size": layer_size,
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}}],
    }))
    .unwrap();
    let (digest, size) = blob(&manifest);
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
             "annotations": {"org.opencontainers.image.ref.name": "sig"}}]}))
        .unwrap(),
    )
    .unwrap();
    let tag = format!("{}.{suffix}", digest_tag(subject));
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:sig", layout.display()))
        .arg(format!("docker://{registry}/{repo}:{tag}"))
        .output()
        .expect("skopeo is installed by scripts/install-deps.sh");
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    digest
}

/// The digests a referrers answer (or a fallback tag's index) lists.
fn listed(index: &Value) -> BTreeSet<String> {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect()
}

fn set(digests: &[&String]) -> BTreeSet<String> {
    digests.iter().map(|d| (*d).clone()).collect()
}

fn get_json(url: &str) -> (u16, Value) {
    match ureq::get(url)
        .set("accept", &format!("{OCI_INDEX}, {OCI_MANIFEST}"))
        .call()
    {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(s, _)) => (s, Value::Null),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// The digest `registry` holds under `repo:reference`, if any.
fn manifest_digest(base: &str, repo: &str, reference: &str) -> Option<String> {
    match ureq::head(&format!("{base}/v2/{repo}/manifests/{reference}"))
        .set("accept", &format!("{OCI_INDEX}, {OCI_MANIFEST}"))
        .call()
    {
        Ok(r) => r.header("docker-content-digest").map(str::to_owned),
        Err(ureq::Error::Status(404, _)) => None,
        Err(e) => panic!("HEAD {repo}:{reference}: {e}"),
    }
}

/// What the source holds, by name.
struct Signed {
    index: Pushed,
    platforms: Vec<Subject>,
    signature: String,
    sbom: String,
    sbom_signature: String,
    cosign_sig: String,
    cosign_att: String,
}

/// distribution as the source: a two-platform index with a signature and an SBOM
/// attached to the index (listed under the tag schema's fallback tag), a signature of the
/// SBOM (two levels), and cosign `.sig` and `.att` tags on the amd64 manifest, made with
/// skopeo.
fn signed_image_without_referrers_api(source: &Registry, work: &Path) -> Signed {
    let pusher = Pusher::new(&source.url());
    let repo = "library/app";
    let index = pusher.index(repo, "v1", Format::Oci, &[300_000], &PLATFORMS);
    let top = subject_of(OCI_INDEX, &index);
    let (signature, signature_entry) = attach(&pusher, repo, &top, SIGNATURE, b"signature");
    let (sbom, sbom_entry) = attach(&pusher, repo, &top, SBOM, br#"{"spdxVersion":"SPDX-2.3"}"#);
    fallback_tag(
        &pusher,
        repo,
        &index.digest,
        vec![signature_entry, sbom_entry.clone()],
    );
    let sbom_subject = (
        OCI_MANIFEST.to_owned(),
        sbom.clone(),
        sbom_entry["size"].as_u64().unwrap() as usize,
    );
    let (sbom_signature, entry) = attach(&pusher, repo, &sbom_subject, SIGNATURE, b"of the sbom");
    fallback_tag(&pusher, repo, &sbom, vec![entry]);
    let platforms = children(&index);
    let amd64 = &platforms[0].1;
    let cosign_sig = skopeo_cosign_tag(work, &source.host(), repo, amd64, "sig", SIMPLE_SIGNING);
    let cosign_att = skopeo_cosign_tag(work, &source.host(), repo, amd64, "att", DSSE);
    Signed {
        index,
        platforms,
        signature,
        sbom,
        sbom_signature,
        cosign_sig,
        cosign_att,
    }
}

fn import(host: &HoistServer, project: &str, body: Value) -> Value {
    let (status, accepted) = host.admin(
        "POST",
        &format!("/api/v1/projects/{project}/images/import"),
        Some(body),
    );
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["task_id"].as_str().unwrap().to_owned();
    host.wait_task(&id, Duration::from_secs(120))
}

#[test]
fn signatures_sboms_and_cosign_tags_arrive_from_a_registry_without_the_referrers_api() {
    let source = Registry::start(Auth::None);
    let work = tempfile::tempdir().unwrap();
    let signed = signed_image_without_referrers_api(&source, work.path());
    let dir = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(dir.path(), &[("docker.io", &source.url())]));
    host.project("web", true);

    let task = import(&host, "web", json!({"source_url": "app:v1"}));
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["digest"], signed.index.digest.as_str());
    let referrers = task["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 5, "{task}");
    assert!(referrers.iter().all(|r| r["copied"] == true), "{task}");
    let kinds: Vec<(&str, &str)> = referrers
        .iter()
        .map(|r| (r["digest"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    for (digest, kind) in [
        (&signed.signature, "signature"),
        (&signed.sbom, "sbom"),
        (&signed.sbom_signature, "signature"),
        (&signed.cosign_sig, "signature"),
        (&signed.cosign_att, "attestation"),
    ] {
        assert!(
            kinds.contains(&(digest.as_str(), kind)),
            "{digest} {kind}: {task}"
        );
    }

    // Hoist's referrers API lists the same artifacts under the same digests, for the
    // index and, a level down, for the SBOM.
    let api = |subject: &str| {
        let (status, index) = get_json(&host.url(&format!("/v2/web/app/referrers/{subject}")));
        assert_eq!(status, 200);
        index
    };
    let of_index = api(&signed.index.digest);
    assert_eq!(listed(&of_index), set(&[&signed.signature, &signed.sbom]));
    let types: BTreeSet<&str> = of_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(types, BTreeSet::from([SIGNATURE, SBOM]));
    assert_eq!(listed(&api(&signed.sbom)), set(&[&signed.sbom_signature]));
    // The legacy tags exist under their names, with the source's digests.
    let base = host.url("");
    let amd64 = &signed.platforms[0].1;
    for (suffix, digest) in [("sig", &signed.cosign_sig), ("att", &signed.cosign_att)] {
        let tag = format!("{}.{suffix}", digest_tag(amd64));
        assert_eq!(
            manifest_digest(&base, "web/app", &tag).as_ref(),
            Some(digest),
            "{tag}"
        );
    }
    // The web UI shows them under the image, not as images of their own.
    let (status, tags) = get_json(&host.url("/ui/data/projects/web/tags"));
    assert_eq!(status, 200, "{tags}");
    let rows = tags["tags"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "only the image's tag is a row: {tags}");
    assert_eq!(rows[0]["tag"], "v1");
    assert_eq!(rows[0]["referrers"], "signed, SBOM");

    // An artifact-type allow-list: only SBOMs arrive, and nothing that signs them.
    host.project("sboms", true);
    let task = import(
        &host,
        "sboms",
        json!({"source_url": "app:v1", "referrer_options": {"artifact_types": [SBOM]}}),
    );
    assert_eq!(task["state"], "succeeded", "{task}");
    let copied: Vec<&str> = task["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap())
        .collect();
    assert_eq!(copied, vec![signed.sbom.as_str()], "{task}");
    let (_, of_index) =
        get_json(&host.url(&format!("/v2/sboms/app/referrers/{}", signed.index.digest)));
    assert_eq!(listed(&of_index), set(&[&signed.sbom]));
    let sig_tag = format!("{}.sig", digest_tag(amd64));
    assert_eq!(manifest_digest(&base, "sboms/app", &sig_tag), None);

    // Referrers off: the image alone.
    host.project("bare", true);
    let task = import(
        &host,
        "bare",
        json!({"source_url": "app:v1", "referrer_options": {"copy": false}}),
    );
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["referrers"], json!([]));
    let (_, of_index) =
        get_json(&host.url(&format!("/v2/bare/app/referrers/{}", signed.index.digest)));
    assert!(listed(&of_index).is_empty());

    // One platform chosen: its manifest is the image, and its own referrers (amd64's
    // cosign tags) travel with it; the source index's do not, since it is not copied.
    host.project("one", true);
    let task = import(
        &host,
        "one",
        json!({"source_url": "app:v1", "platforms": ["linux/amd64"]}),
    );
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["digest"], amd64.as_str(), "{task}");
    let copied: BTreeSet<String> = task["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        copied,
        set(&[&signed.cosign_sig, &signed.cosign_att]),
        "{task}"
    );
    assert_eq!(
        manifest_digest(&base, "one/app", &sig_tag).as_ref(),
        Some(&signed.cosign_sig)
    );
    // With a signature required, the one platform must carry one: arm64 has none.
    let task = import(
        &host,
        "one",
        json!({"source_url": "app:v1", "target_tag": "arm", "platforms": ["linux/arm64"],
               "referrer_options": {"require_signature": true}}),
    );
    assert_eq!(task["state"], "failed", "{task}");
    assert_eq!(task["error"]["code"], "unsigned", "{task}");
    assert_eq!(manifest_digest(&base, "one/app", "arm"), None);
}

#[test]
fn an_unsigned_image_is_refused_when_a_signature_is_required_and_nothing_is_written() {
    let source = Registry::start(Auth::None);
    let pusher = Pusher::new(&source.url());
    pusher.image(
        "library/plain",
        Some("v1"),
        Format::Oci,
        &[100_000],
        ("linux", "amd64"),
    );
    let signed = pusher.image(
        "library/signed",
        Some("v1"),
        Format::Oci,
        &[100_000],
        ("linux", "amd64"),
    );
    let work = tempfile::tempdir().unwrap();
    skopeo_cosign_tag(
        work.path(),
        &source.host(),
        "library/signed",
        &signed.digest,
        "sig",
        SIMPLE_SIGNING,
    );
    let dir = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(dir.path(), &[("docker.io", &source.url())]));
    host.project("strict", true);
    let required = json!({"require_signature": true});

    let task = import(
        &host,
        "strict",
        json!({"source_url": "plain:v1", "referrer_options": required}),
    );
    assert_eq!(task["state"], "failed", "{task}");
    assert_eq!(task["error"]["code"], "unsigned", "{task}");
    let message = task["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no signature") && message.contains(".sig"),
        "{message}"
    );
    assert_eq!(task["blobs_total"], 0, "refused before any blob: {task}");
    let (status, _) = get_json(&host.url("/v2/strict/plain/tags/list"));
    assert_eq!(status, 404, "nothing was written");

    // A signed image passes, signature and all.
    let task = import(
        &host,
        "strict",
        json!({"source_url": "signed:v1", "referrer_options": required}),
    );
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["referrers"][0]["kind"], "signature", "{task}");
}

/// Attaches artifacts with the Python `oras` client, each with a subject, through the
/// target's referrers API. Arguments: the registry and a JSON list of items `{repo,
/// subject: {mediaType, digest, size} | subject_item: <index of an earlier item>,
/// artifact_type, content}`; prints the digests it pushed, as JSON.
const ORAS_ATTACH: &str = r#"
import json, os, sys, tempfile
import oras.client, oras.oci, requests
host, items = sys.argv[1], json.loads(sys.argv[2])
os.chdir(tempfile.mkdtemp())
client = oras.client.OrasClient(hostname=host, insecure=True)
pushed = []
for i, item in enumerate(items):
    if "subject_item" in item:
        subject = pushed[item["subject_item"]]
    else:
        subject = item["subject"]
    with open(f"payload-{i}", "w") as f:
        f.write(item["content"])
    with open(f"config-{i}.json", "w") as f:
        f.write("{}")
    response = client.push(
        target=f"{host}/{item['repo']}:attached-{i}",
        files=[f"payload-{i}:{item['artifact_type']}"],
        manifest_config=f"config-{i}.json:{item['artifact_type']}",
        subject=oras.oci.Subject(subject["mediaType"], subject["digest"], subject["size"]),
        quiet=True,
    )
    digest = response.headers["Docker-Content-Digest"]
    media = "application/vnd.oci.image.manifest.v1+json"
    raw = requests.get(f"http://{host}/v2/{item['repo']}/manifests/{digest}",
                       headers={"Accept": media}).content
    pushed.append({"mediaType": media, "digest": digest, "size": len(raw)})
print(json.dumps([p["digest"] for p in pushed]))
"#;

fn oras_attach(host: &str, items: &Value) -> Vec<String> {
    let python = hoist_cache().join("tools/py/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-deps.sh, which installs the oras client",
        python.display()
    );
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .args(["-c", ORAS_ATTACH, host, &items.to_string()])
        .env("DOCKER_CONFIG", work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oras: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.lines().last().unwrap()).unwrap()
}

/// Hoist's registry, bare: the referrers API, no auth.
fn hoist_registry() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let registry = HoistRegistry::open(dir.path(), RegistryOptions::default()).unwrap();
    registry.metadata().create_project("team", true).unwrap();
    let port = serve(hoist_registry::service(registry));
    let host = format!("127.0.0.1:{port}");
    let url = format!("http://{host}/v2/");
    wait_until(
        Duration::from_secs(10),
        "Hoist's registry to answer",
        || ureq::get(&url).call().is_ok(),
    );
    (host, dir)
}

#[test]
fn referrers_from_hoist_reach_a_registry_without_the_api_under_fallback_tags() {
    let (source, _data) = hoist_registry();
    let pusher = Pusher::new(&format!("http://{source}"));
    let repo = "team/app";
    let index = pusher.index(repo, "v1", Format::Oci, &[200_000], &PLATFORMS);
    let arm64 = children(&index)[1].clone();
    let descriptor = |s: &Subject| json!({"mediaType": s.0, "digest": s.1, "size": s.2});
    let top = subject_of(OCI_INDEX, &index);
    let digests = oras_attach(
        &source,
        &json!([
            {"repo": repo, "subject": descriptor(&top), "artifact_type": SIGNATURE, "content": "signed"},
            {"repo": repo, "subject": descriptor(&top), "artifact_type": SBOM, "content": "{}"},
            {"repo": repo, "subject_item": 1, "artifact_type": SIGNATURE, "content": "sbom signed"},
            {"repo": repo, "subject": descriptor(&arm64), "artifact_type": SBOM, "content": "{\"arm\":1}"},
        ]),
    );
    let [signature, sbom, sbom_signature, arm_sbom] = digests.as_slice() else {
        panic!("{digests:?}");
    };
    let target = Registry::start(Auth::None);
    let dst = format!("{}/mirror/app:v1", target.host());
    let out = hoist(&[
        "copy",
        "--plain-http",
        &source,
        "--plain-http",
        &target.host(),
        "--json",
        &format!("{source}/{repo}:v1"),
        &dst,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "done")
        .expect("a done event");
    let reported = done["referrers"].as_array().unwrap();
    assert_eq!(reported.len(), 4, "{done}");
    assert!(reported.iter().all(|r| r["copied"] == true), "{done}");

    // distribution has no referrers API: the copy keeps the fallback tags, which list the
    // same digests as the source's API, each level and platform included.
    let base = target.url();
    let fallback = |subject: &str| {
        let (status, index) = get_json(&format!(
            "{base}/v2/mirror/app/manifests/{}",
            digest_tag(subject)
        ));
        assert_eq!(status, 200, "the fallback tag of {subject}");
        index
    };
    assert_eq!(listed(&fallback(&index.digest)), set(&[signature, sbom]));
    assert_eq!(listed(&fallback(sbom)), set(&[sbom_signature]));
    assert_eq!(listed(&fallback(&arm64.1)), set(&[arm_sbom]));
    for digest in [signature, sbom, sbom_signature, arm_sbom] {
        assert_eq!(
            manifest_digest(&base, "mirror/app", digest).as_ref(),
            Some(digest)
        );
    }

    // An unsigned image is refused with its class and the policy exit code, and the
    // target gets nothing.
    pusher.image(
        "team/plain",
        Some("v1"),
        Format::Oci,
        &[50_000],
        ("linux", "amd64"),
    );
    let out = hoist(&[
        "copy",
        "--plain-http",
        &source,
        "--plain-http",
        &target.host(),
        "--require-signature",
        &format!("{source}/team/plain:v1"),
        &format!("{}/mirror/plain:v1", target.host()),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.lines().last().unwrap().starts_with("unsigned"),
        "{stderr}"
    );
    assert_eq!(manifest_digest(&base, "mirror/plain", "v1"), None);
}
