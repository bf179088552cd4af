//! Hoist's registry with real clients: skopeo (Debian's) copies images from a real
//! distribution registry into Hoist and back out, and the manifests come out byte for
//! byte, so digests are kept; the Python `oras` client pushes chunked artifacts, a
//! referrer with a subject, and pulls them back.
//!
//! The first tests serve the registry alone (`hoist_registry::service`, the same
//! router the host serves, authentication off); the others run the whole host with its
//! token authentication, a private project, and credentials on every side.

use hoist_registry::{Registry, RegistryOptions};
use hoist_tests::hoist_server::{
    ADMIN_PASSWORD, HoistServer, admin_basic, admin_creds, test_config,
};
use hoist_tests::images::{Format, Pushed, Pusher, sha256};
use hoist_tests::registry::{Auth, Registry as Distribution};
use hoist_tests::{serve, skopeo, wait_until};
use std::path::PathBuf;
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
        let port = serve(hoist_registry::service(registry.clone()));
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

/// Pushes the two images the skopeo tests copy: `lib/single:v1` (Docker, linux/amd64)
/// and `lib/multi:v2` (an OCI index for linux/amd64 and linux/arm64/v8).
fn single_and_multi(pusher: &Pusher) -> (Pushed, Pushed) {
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
    (single, multi)
}

#[test]
fn skopeo_copies_images_through_hoist_with_their_digests_kept() {
    let source = Distribution::start(Auth::None);
    let target = Distribution::start(Auth::None);
    let hoist = Hoist::start();
    let pusher = Pusher::new(&source.url());
    let (single, multi) = single_and_multi(&pusher);

    for (repo, tag, pushed) in [("single", "v1", &single), ("multi", "v2", &multi)] {
        let src = format!("{}/lib/{repo}:{tag}", source.host());
        let in_hoist = format!("{}/team/{repo}:{tag}", hoist.host());
        skopeo::copy(&src, &in_hoist);
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
        skopeo::copy(&in_hoist, &out);
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
/// pulls the artifact back; prints the artifact's manifest digest. Arguments: the
/// registry, a work folder, `push` or `pull` (the pull alone), and optionally a user and
/// password, which oras sends to the token realm the registry's challenge names.
const ORAS_SCRIPT: &str = r#"
import json, os, sys
import oras.client, oras.oci
host, work, mode = sys.argv[1], sys.argv[2], sys.argv[3]
os.chdir(work)
client = oras.client.OrasClient(hostname=host, insecure=True)
if len(sys.argv) > 5:
    client.auth.set_basic_auth(sys.argv[4], sys.argv[5])
if mode == "push":
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
result = {"pulled": [open(p).read() for p in pulled]}
if mode == "push":
    result["subject"] = subject.digest
print(json.dumps(result))
"#;

/// The Python with the `oras` package: the virtual environment `scripts/install-deps.sh`
/// makes under the cache.
fn oras_python() -> PathBuf {
    let python = hoist_tests::hoist_cache().join("tools/py/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-deps.sh, which installs the oras client",
        python.display()
    );
    python
}

/// Runs [`ORAS_SCRIPT`]; its JSON result, or its stderr.
fn oras(host: &str, mode: &str, creds: Option<(&str, &str)>) -> Result<serde_json::Value, String> {
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(oras_python());
    cmd.args(["-c", ORAS_SCRIPT, host])
        .arg(work.path())
        .arg(mode)
        // Only the credentials given here: none from a docker config on this machine.
        .env("DOCKER_CONFIG", work.path());
    if let Some((user, password)) = creds {
        cmd.args([user, password]);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let line = out
        .stdout
        .split(|&b| b == b'\n')
        .rfind(|l| l.starts_with(b"{"))
        .expect("the script prints its result");
    Ok(serde_json::from_slice(line).unwrap())
}

#[test]
fn oras_pushes_chunked_artifacts_and_referrers() {
    let hoist = Hoist::start();
    let result = oras(&hoist.host(), "push", None).unwrap_or_else(|e| panic!("oras: {e}"));
    assert_eq!(result["pulled"][0], "hello from oras ".repeat(1000));

    let subject = result["subject"].as_str().unwrap();
    let (status, index) = get_json(&hoist, &format!("/v2/team/notes/referrers/{subject}"));
    assert_eq!(status, 200);
    let referrers = index["manifests"].as_array().unwrap();
    assert_eq!(referrers.len(), 1, "{index}");
    assert_eq!(referrers[0]["annotations"]["org.example.kind"], "signature");
}

#[test]
fn oras_pushes_and_pulls_artifacts_with_a_login_on_the_host() {
    let data = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(data.path(), &[]));
    host.project("team", false);

    // Without credentials nothing gets in.
    let refused = oras(&host.host(), "push", None);
    assert!(refused.is_err(), "an anonymous push into a private project");
    let (status, _) = host.call("GET", "/v2/team/notes/tags/list", None, false);
    assert_ne!(status, 200);

    // A robot with push rights on the project: oras logs in through the token flow.
    let (status, robot) = host.admin(
        "POST",
        "/api/v1/robots",
        Some(serde_json::json!({
            "name": "ci",
            "scopes": [{"project": "team", "actions": ["pull", "push"]}],
        })),
    );
    assert_eq!(status, 201, "{robot}");
    let (user, secret) = (
        robot["username"].as_str().unwrap(),
        robot["secret"].as_str().unwrap(),
    );
    let result = oras(&host.host(), "push", Some((user, secret)))
        .unwrap_or_else(|e| panic!("oras with the robot's login: {e}"));
    assert_eq!(result["pulled"][0], "hello from oras ".repeat(1000));

    let subject = result["subject"].as_str().unwrap();
    let (status, index) = host.admin("GET", &format!("/v2/team/notes/referrers/{subject}"), None);
    assert_eq!(status, 200);
    let referrers = index["manifests"].as_array().unwrap();
    assert_eq!(referrers.len(), 1, "{index}");
    assert_eq!(referrers[0]["annotations"]["org.example.kind"], "signature");

    // The admin pulls it too; an anonymous pull and a wrong secret are refused.
    let pulled = oras(&host.host(), "pull", Some(("admin", ADMIN_PASSWORD)))
        .unwrap_or_else(|e| panic!("oras pull as the admin: {e}"));
    assert_eq!(pulled["pulled"][0], "hello from oras ".repeat(1000));
    assert!(
        oras(&host.host(), "pull", None).is_err(),
        "an anonymous pull from a private project"
    );
    assert!(
        oras(&host.host(), "pull", Some((user, "wrong-secret"))).is_err(),
        "a wrong secret"
    );
}

/// The whole host with authentication: skopeo copies a single-platform and a
/// multi-platform image from a registry that wants a login into a private project (with
/// `--src-creds` and `--dest-creds`), reads them back with `--creds`, and copies them out
/// to another registry that wants a login; digests are kept all the way, and anonymous
/// callers get nothing.
#[test]
fn skopeo_copies_into_and_out_of_a_private_project_with_logins() {
    let basic = |user: &str, password: &str| Auth::Basic {
        user: user.into(),
        password: password.into(),
    };
    let source = Distribution::start(basic("source-user", "source-pass"));
    let target = Distribution::start(basic("target-user", "target-pass"));
    let data = tempfile::tempdir().unwrap();
    let hoist = HoistServer::start(test_config(data.path(), &[]));
    hoist.project("team", false);
    let admin = admin_creds();

    let pusher =
        Pusher::new(&source.url()).with_auth(hoist_tests::basic("source-user", "source-pass"));
    let (single, multi) = single_and_multi(&pusher);

    for (repo, tag, pushed) in [("single", "v1", &single), ("multi", "v2", &multi)] {
        let src = format!("{}/lib/{repo}:{tag}", source.host());
        let in_hoist = format!("{}/team/{repo}:{tag}", hoist.host());

        // Anonymous, and with a wrong password, the push is refused.
        let anonymous =
            skopeo::copy_with(&src, &in_hoist, &["--src-creds", "source-user:source-pass"]);
        assert!(anonymous.is_err(), "{repo}: an anonymous push");
        let wrong = skopeo::copy_with(
            &src,
            &in_hoist,
            &[
                "--src-creds",
                "source-user:source-pass",
                "--dest-creds",
                "admin:wrong",
            ],
        );
        assert!(wrong.is_err(), "{repo}: a push with a wrong password");
        assert!(
            !skopeo::exists_with(&in_hoist, &admin),
            "{repo}: nothing was pushed"
        );

        skopeo::copy_with(
            &src,
            &in_hoist,
            &[
                "--src-creds",
                "source-user:source-pass",
                "--dest-creds",
                &admin,
            ],
        )
        .unwrap_or_else(|e| panic!("skopeo copy {src} {in_hoist}: {e}"));
        let raw = skopeo::inspect_raw(&in_hoist, Some(&admin));
        assert_eq!(
            raw, pushed.manifest,
            "{repo}: Hoist serves the bytes pushed"
        );
        assert_eq!(sha256(&raw), pushed.digest, "{repo}: the digest is kept");
        skopeo::pull_all_with(&in_hoist, &admin);

        // The project is private: an anonymous caller sees neither the manifest nor can
        // copy the image out.
        assert!(!skopeo::exists(&in_hoist), "{repo}: anonymous inspect");
        let out = format!("{}/copied/{repo}:{tag}", target.host());
        let stolen = skopeo::copy_with(
            &in_hoist,
            &out,
            &["--dest-creds", "target-user:target-pass"],
        );
        assert!(
            stolen.is_err(),
            "{repo}: an anonymous pull of a private project"
        );

        // Out again with both logins, into a registry that wants its own.
        skopeo::copy_with(
            &in_hoist,
            &out,
            &[
                "--src-creds",
                &admin,
                "--dest-creds",
                "target-user:target-pass",
            ],
        )
        .unwrap_or_else(|e| panic!("skopeo copy {in_hoist} {out}: {e}"));
        let copied = skopeo::inspect_raw(&out, Some("target-user:target-pass"));
        assert_eq!(
            copied, pushed.manifest,
            "{repo}: the copy out keeps the bytes"
        );
        assert_eq!(sha256(&copied), pushed.digest, "{repo}: and the digest");
        skopeo::pull_all_with(&out, "target-user:target-pass");
    }

    // Each platform's manifest is there by digest, for a caller with the login.
    let index: serde_json::Value = serde_json::from_slice(&multi.manifest).unwrap();
    for child in index["manifests"].as_array().unwrap() {
        let digest = child["digest"].as_str().unwrap();
        let reference = format!("{}/team/multi@{digest}", hoist.host());
        let raw = skopeo::inspect_raw(&reference, Some(&admin));
        assert_eq!(sha256(&raw), digest);
        assert!(!skopeo::exists(&reference), "anonymous, by digest");
    }
}

/// A token carries only the access it was issued for, the admin's included: one fetched
/// to pull is refused a push, or an upload's cancel, with 401 and a challenge that names
/// the scope to ask for (as distribution answers, and as docker needs to re-authenticate);
/// a mount's challenge asks for a read of the repository it mounts from too.
#[test]
fn a_token_issued_to_pull_cannot_push_even_for_the_admin() {
    let data = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(data.path(), &[]));
    host.project("scoped", false);
    let basic = admin_basic();
    let token = |scope: &str| -> String {
        let body: serde_json::Value = ureq::get(&host.url("/token"))
            .query("service", &host.host())
            .query("scope", scope)
            .set("authorization", &basic)
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        body["token"].as_str().unwrap().to_owned()
    };
    let start_upload = |token: &str| match ureq::post(&host.url("/v2/scoped/app/blobs/uploads/"))
        .set("authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(r) => (r.status(), None),
        Err(ureq::Error::Status(code, r)) => {
            (code, r.header("www-authenticate").map(str::to_owned))
        }
        Err(e) => panic!("{e}"),
    };
    let pull = token("repository:scoped/app:pull");
    let (status, challenge) = start_upload(&pull);
    assert_eq!(status, 401);
    let challenge = challenge.expect("a challenge to ask for more");
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"repository:scoped/app:pull,push\""),
        "{challenge}"
    );
    // A client that sends the same token again (the Python oras package does, until it
    // sees a 403) is told 403, with the same challenge.
    let (status, again) = start_upload(&pull);
    assert_eq!(status, 403, "the same narrow token twice");
    assert_eq!(again.as_deref(), Some(challenge.as_str()));
    let push = token("repository:scoped/app:pull,push");
    let session = ureq::post(&host.url("/v2/scoped/app/blobs/uploads/"))
        .set("authorization", &format!("Bearer {push}"))
        .call()
        .unwrap();
    assert_eq!(session.status(), 202);
    let location = session.header("location").unwrap().to_owned();
    let cancel = |token: &str| match ureq::delete(&host.url(&location))
        .set("authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(r) => (r.status(), None),
        Err(ureq::Error::Status(code, r)) => {
            (code, r.header("www-authenticate").map(str::to_owned))
        }
        Err(e) => panic!("{e}"),
    };
    let (status, challenge) = cancel(&token("repository:scoped/app:pull"));
    assert_eq!(status, 401, "a cancel with a pull token");
    assert!(challenge.unwrap().contains("insufficient_scope"));
    assert_eq!(cancel(&push).0, 204);

    // Anonymous, a mount is challenged for both scopes it needs.
    let digest = format!("sha256:{}", "a".repeat(64));
    let answer = ureq::post(&host.url(&format!(
        "/v2/scoped/app/blobs/uploads/?mount={digest}&from=scoped/base"
    )))
    .call();
    let Err(ureq::Error::Status(401, r)) = answer else {
        panic!("an anonymous mount is challenged: {answer:?}")
    };
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("scope=\"repository:scoped/app:pull,push repository:scoped/base:pull\""),
        "{challenge}"
    );
}

/// A registry token is for `/v2` only: whatever its scope, and even when issued to the
/// admin, the JSON API and the UI's data refuse it, and nothing it asked for happens.
#[test]
fn the_api_refuses_registry_tokens_of_any_scope() {
    let data = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(data.path(), &[]));
    host.project("open", true);
    host.project("private", false);
    let basic = admin_basic();
    let token = |scope: Option<&str>, auth: Option<&str>| -> String {
        let mut request = ureq::get(&host.url("/token")).query("service", &host.host());
        if let Some(scope) = scope {
            request = request.query("scope", scope);
        }
        if let Some(auth) = auth {
            request = request.set("authorization", auth);
        }
        let body: serde_json::Value = request.call().unwrap().into_json().unwrap();
        body["token"].as_str().unwrap().to_owned()
    };
    let tokens = [
        token(Some("repository:open/app:pull"), Some(&basic)),
        token(
            Some("repository:private/app:pull,push,delete"),
            Some(&basic),
        ),
        token(Some("registry:catalog:*"), Some(&basic)),
        token(None, Some(&basic)),
        token(Some("repository:open/app:pull"), None),
    ];
    let calls: [(&str, &str, Option<serde_json::Value>); 5] = [
        ("GET", "/api/v1/projects", None),
        (
            "POST",
            "/api/v1/projects",
            Some(serde_json::json!({"name": "stolen", "public": false})),
        ),
        (
            "POST",
            "/api/v1/robots",
            Some(serde_json::json!({"name": "r",
                "scopes": [{"project": "private", "actions": ["pull", "push"]}]})),
        ),
        ("DELETE", "/api/v1/projects/open", None),
        ("GET", "/ui/data/projects/private/tags", None),
    ];
    for token in &tokens {
        for (method, path, body) in &calls {
            let request = ureq::request(method, &host.url(path))
                .set("authorization", &format!("Bearer {token}"));
            let answer = match body {
                Some(b) => request.send_json(b.clone()),
                None => request.call(),
            };
            let (status, body): (u16, serde_json::Value) = match answer {
                Ok(r) => (r.status(), r.into_json().unwrap_or_default()),
                Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or_default()),
                Err(e) => panic!("{e}"),
            };
            assert_eq!(status, 401, "{method} {path}: {body}");
            assert!(
                body.to_string().contains("registry token"),
                "{method} {path}: {body}"
            );
        }
    }
    let (_, projects) = host.admin("GET", "/api/v1/projects", None);
    let names: Vec<&str> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"open"), "nothing was deleted: {projects}");
    assert!(
        !names.contains(&"stolen"),
        "nothing was created: {projects}"
    );
}

/// The challenge's token realm cannot be steered by a forged `Host` header: a well-formed
/// host is used (quote-escaped), a malformed one is replaced by the listen address, and a
/// configured external host always wins.
#[test]
fn the_token_realm_is_never_built_from_a_forged_host_header() {
    use std::io::{Read, Write};
    let challenge = |host: &HoistServer, host_header: &str| -> String {
        let mut stream = std::net::TcpStream::connect(host.host()).unwrap();
        write!(
            stream,
            "GET /v2/ HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("www-authenticate:")
                    .then(|| l["www-authenticate:".len()..].trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no challenge in {answer}"))
    };
    let data = tempfile::tempdir().unwrap();
    let host = HoistServer::start(test_config(data.path(), &[]));
    assert_eq!(
        challenge(&host, "registry.example:5000"),
        "Bearer realm=\"http://registry.example:5000/token\",service=\"hoist-registry\""
    );
    let forged = challenge(&host, "evil.example\",foo=\"bar");
    assert_eq!(
        forged,
        format!(
            "Bearer realm=\"http://{}/token\",service=\"hoist-registry\"",
            host.host()
        )
    );
    drop(host);

    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(data.path(), &[]);
    config.external_host = Some("registry.example.com".into());
    let host = HoistServer::start(config);
    assert_eq!(
        challenge(&host, "evil.example"),
        "Bearer realm=\"http://registry.example.com/token\",service=\"hoist-registry\""
    );
}
