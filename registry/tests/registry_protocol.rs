//! The registry's OCI Distribution protocol, over HTTP against the real router on a
//! loopback port with a temporary data folder: what a client (docker, skopeo, oras)
//! sees, answer by answer.

use hoist_registry::{Registry, RegistryOptions};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha512};
use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{:x}", Sha512::digest(bytes))
}

/// The registry over `dir` on the default stores, or on the ones the environment names,
/// so that every test here also runs on the scale-out engines (scripts/test.sh does):
/// `HOIST_TEST_S3` (an endpoint URL with a bucket `hoist`) puts blobs in S3 under a prefix
/// named after `dir`, and `HOIST_TEST_POSTGRES` (a server's URL) the metadata in a
/// database named after `dir`, so that a test that reopens `dir` finds both again.
fn open_registry(dir: &Path, options: RegistryOptions) -> Registry {
    let name = dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_ascii_lowercase();
    let storage: std::sync::Arc<dyn hoist_registry::Storage> = match std::env::var("HOIST_TEST_S3")
    {
        Ok(endpoint) => std::sync::Arc::new(
            hoist_registry::S3Storage::open(&hoist_registry::S3Options {
                endpoint: Some(endpoint),
                bucket: "hoist".into(),
                region: "us-east-1".into(),
                prefix: name.clone(),
                access_key: Some(("test".into(), "test".into())),
            })
            .expect("the S3 store opens"),
        ),
        Err(_) => std::sync::Arc::new(hoist_registry::FsStorage::open(dir).unwrap()),
    };
    let metadata = match std::env::var("HOIST_TEST_POSTGRES") {
        Ok(server) => {
            let database: String = std::iter::once('t')
                .chain(name.chars().filter(char::is_ascii_alphanumeric))
                .collect();
            let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
            let exists = admin
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
                .unwrap();
            if exists.is_none() {
                admin
                    .batch_execute(&format!("CREATE DATABASE {database}"))
                    .unwrap();
            }
            let (base, _) = server.rsplit_once('/').unwrap();
            hoist_registry::Metadata::open_postgres(&format!("{base}/{database}"), None, 4)
                .expect("the PostgreSQL database opens")
        }
        Err(_) => hoist_registry::Metadata::open(&hoist_registry::database_path(dir))
            .expect("the database opens"),
    };
    Registry::new(
        storage,
        std::sync::Arc::new(metadata),
        options,
        hoist_registry::Metrics::new(),
    )
}

/// The registry served from a thread of its own; stopped (and its database closed) when
/// dropped.
struct Server {
    base: String,
    registry: Option<Registry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(dir: &Path, options: RegistryOptions) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let registry = {
            // The S3 driver runs its requests on the runtime it is opened in.
            let _in_runtime = rt.enter();
            open_registry(dir, options)
        };
        let app = hoist_registry::service(registry.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Self {
            base,
            registry: Some(registry),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A server over `dir` in which the project `team` exists.
    fn with_team(dir: &Path) -> Self {
        let server = Self::start(dir, RegistryOptions::default());
        server
            .registry()
            .metadata()
            .create_project("team", false)
            .unwrap();
        server
    }

    fn registry(&self) -> &Registry {
        self.registry.as_ref().unwrap()
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        // A fresh agent per call: no pooled connection outlives the server in a test.
        let mut request = ureq::AgentBuilder::new()
            .build()
            .request(method, &self.url(path));
        for (k, v) in headers {
            request = request.set(k, v);
        }
        let response = match request.send_bytes(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .map(|n| {
                let v = response.header(&n).unwrap_or_default().to_owned();
                (n.to_ascii_lowercase(), v)
            })
            .collect();
        let mut body = Vec::new();
        response.into_reader().read_to_end(&mut body).unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Sends only the head of a PUT announcing `length` bytes, and reads the answer, as
    /// a client does that waits before sending a large body.
    fn raw_put_head(&self, path: &str, content_type: &str, length: usize) -> (u16, String) {
        use std::io::Write as _;
        let authority = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(authority).unwrap();
        write!(
            stream,
            "PUT {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {length}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, answer)
    }

    fn get(&self, path: &str) -> Answer {
        self.call("GET", path, &[], b"")
    }

    /// Pushes a blob monolithically into `repo`; returns its digest.
    fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let a = self.call(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            &[("content-type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(a.status, 201, "{}", a.text());
        digest
    }

    /// Pushes an image manifest (a config and one layer, both pushed first).
    fn image(&self, repo: &str, reference: Option<&str>, extra: Value) -> (String, Vec<u8>) {
        let config = format!("{{\"nonce\":\"{}\"}}", rand_hex());
        let layer = format!("layer {}", rand_hex()).into_bytes();
        let config_digest = self.blob(repo, config.as_bytes());
        let layer_digest = self.blob(repo, &layer);
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer.len()}],
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut manifest, extra) {
            m.extend(e);
        }
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = sha256(&bytes);
        let a = self.call(
            "PUT",
            &format!("/v2/{repo}/manifests/{}", reference.unwrap_or(&digest)),
            &[("content-type", OCI_MANIFEST)],
            &bytes,
        );
        assert_eq!(a.status, 201, "{}", a.text());
        (digest, bytes)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.registry.take();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn rand_hex() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The first error's code, checking the spec's error body shape.
    fn code(&self) -> String {
        let body = self.json();
        let error = &body["errors"][0];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an error says what is wrong: {body}"
        );
        error["code"].as_str().unwrap().to_owned()
    }
}

#[test]
fn the_api_version_check_answers_and_unknown_paths_are_spec_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let a = s.get("/v2/");
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), json!({}));
    assert_eq!(a.header("docker-distribution-api-version"), "registry/2.0");
    assert!(!a.header("x-request-id").is_empty(), "requests get an id");

    let a = s.get("/v2/team/app/nonsense");
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "NAME_UNKNOWN");
    let a = s.get("/v2/team/App/tags/list");
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "NAME_INVALID");
    assert!(a.text().contains("uppercase"), "{}", a.text());
    let a = s.get("/v2/app/tags/list");
    assert_eq!(a.status, 404, "a repository needs a project");
    assert_eq!(
        a.code(),
        "NAME_UNKNOWN",
        "not NAME_INVALID, which docker retries"
    );
    assert!(a.text().contains("has no project"), "{}", a.text());
    let a = s.call(
        "PUT",
        "/v2/app/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        b"{}",
    );
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "NAME_UNKNOWN");
    let a = s.get("/v2/ghost/x/manifests/1");
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "NAME_UNKNOWN");
    assert!(
        a.text().contains("the project ghost does not exist"),
        "{}",
        a.text()
    );
    // A request target no registry route could need: 414 with the spec's error body.
    let a = s.get(&format!("/v2/team/app/tags/list?last={}", "a".repeat(9000)));
    assert_eq!(a.status, 414);
    assert_eq!(a.code(), "UNSUPPORTED");
    assert!(a.text().contains("at most 8192"), "{}", a.text());
}

/// A reference that cannot exist names no manifest: 404 `MANIFEST_UNKNOWN` on GET, HEAD
/// and DELETE (the conformance suite's `.INVALID_MANIFEST_NAME`); pushing under one is
/// the manifest's fault, with a code from the spec's list.
#[test]
fn a_reference_that_cannot_exist_is_unknown_to_reads_and_invalid_to_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    s.image("team/app", Some("v1"), json!({}));
    for reference in [".INVALID_MANIFEST_NAME", "-bad", "sha256:abc", "md5:00"] {
        let path = format!("/v2/team/app/manifests/{reference}");
        for method in ["GET", "DELETE"] {
            let a = s.call(method, &path, &[], b"");
            assert_eq!(a.status, 404, "{method} {reference}: {}", a.text());
            assert_eq!(a.code(), "MANIFEST_UNKNOWN", "{method} {reference}");
        }
        assert_eq!(
            s.call("HEAD", &path, &[], b"").status,
            404,
            "HEAD {reference}"
        );
    }
    let a = s.call(
        "PUT",
        "/v2/team/app/manifests/.INVALID_MANIFEST_NAME",
        &[("content-type", OCI_MANIFEST)],
        b"{}",
    );
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.code(), "MANIFEST_INVALID");
    assert!(a.text().contains("not a valid tag"), "{}", a.text());
}

#[test]
fn a_chunked_upload_checks_its_ranges_and_reports_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256(&data);

    let a = s.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    assert_eq!(a.status, 202);
    let location = a.header("location").to_owned();
    assert!(
        location.starts_with("/v2/team/app/blobs/uploads/"),
        "{location}"
    );
    assert_eq!(a.header("range"), "0-0");
    let uuid = a.header("docker-upload-uuid").to_owned();
    assert!(location.ends_with(&uuid));

    let a = s.call(
        "PATCH",
        &location,
        &[
            ("content-range", "0-99999"),
            ("content-type", "application/octet-stream"),
        ],
        &data[..100_000],
    );
    assert_eq!(a.status, 202, "{}", a.text());
    assert_eq!(a.header("range"), "0-99999");
    let location = a.header("location").to_owned();

    // A chunk that does not start where the data ends is refused, and changes nothing.
    let a = s.call(
        "PATCH",
        &location,
        &[("content-range", "0-99999")],
        &data[..100_000],
    );
    assert_eq!(a.status, 416);
    assert_eq!(
        a.header("range"),
        "0-99999",
        "the answer says where to resume"
    );
    let a = s.call(
        "PATCH",
        &location,
        &[("content-range", "200000-299999")],
        &data[200_000..],
    );
    assert_eq!(a.status, 416);
    // A range whose length overflows is refused, however empty the body (its length
    // once wrapped to 0 and matched an empty body).
    let fresh = s.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    assert_eq!(fresh.status, 202);
    let a = s.call(
        "PATCH",
        fresh.header("location"),
        &[("content-range", "0-18446744073709551615")],
        b"",
    );
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.code(), "BLOB_UPLOAD_INVALID");
    let a = s.call(
        "PATCH",
        &location,
        &[("content-range", &format!("100000-{}", u64::MAX - 1))],
        b"",
    );
    assert_eq!(a.status, 400, "a length that disagrees: {}", a.text());

    let a = s.get(&location);
    assert_eq!(a.status, 204);
    assert_eq!(a.header("range"), "0-99999");
    assert_eq!(a.header("docker-upload-uuid"), uuid);

    // The session is tied to its repository. The refused chunk is large enough that
    // answering before reading it would break the pipe under the client.
    let elsewhere = location.replace("/team/app/", "/team/other/");
    let a = s.call("PATCH", &elsewhere, &[], &vec![0u8; 16 << 20]);
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "BLOB_UPLOAD_UNKNOWN");

    // A streamed chunk without Content-Range, then the last one with the PUT.
    let a = s.call("PATCH", &location, &[], &data[100_000..250_000]);
    assert_eq!(a.status, 202);
    assert_eq!(a.header("range"), "0-249999");
    let a = s.call(
        "PUT",
        &format!("{}?digest={digest}", a.header("location")),
        &[("content-type", "application/octet-stream")],
        &data[250_000..],
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.header("location"), format!("/v2/team/app/blobs/{digest}"));
    assert_eq!(a.header("docker-content-digest"), digest);

    let a = s.call("HEAD", &format!("/v2/team/app/blobs/{digest}"), &[], b"");
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), data.len().to_string());
    assert_eq!(a.header("docker-content-digest"), digest);
    assert!(a.body.is_empty());
    let a = s.get(&format!("/v2/team/app/blobs/{digest}"));
    assert_eq!(a.status, 200);
    assert_eq!(a.body, data);

    // The finished session is gone.
    let a = s.get(&location);
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "BLOB_UPLOAD_UNKNOWN");

    // A cancelled one too.
    let a = s.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    let location = a.header("location").to_owned();
    assert_eq!(s.call("DELETE", &location, &[], b"").status, 204);
    assert_eq!(s.get(&location).status, 404);
    let a = s.call("PUT", &format!("{location}?digest={digest}"), &[], b"");
    assert_eq!(a.code(), "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn a_wrong_digest_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let data = b"the real content".to_vec();
    let claimed = sha256(b"something else");

    let a = s.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    let location = a.header("location").to_owned();
    let a = s.call("PUT", &format!("{location}?digest={claimed}"), &[], &data);
    assert_eq!(a.status, 400);
    assert_eq!(a.code(), "DIGEST_INVALID");
    assert!(
        a.text().contains(&sha256(&data)),
        "names the real digest: {}",
        a.text()
    );
    for digest in [&claimed, &sha256(&data)] {
        let a = s.call("HEAD", &format!("/v2/team/app/blobs/{digest}"), &[], b"");
        assert_eq!(a.status, 404, "{digest} is not stored");
    }
    assert!(
        s.registry().storage().list_blobs().unwrap().is_empty(),
        "no blob of any name was written"
    );
    assert_eq!(s.get(&location).status, 404, "the session was dropped");

    // Monolithic uploads are checked the same way.
    let a = s.call(
        "POST",
        &format!("/v2/team/app/blobs/uploads/?digest={claimed}"),
        &[],
        &data,
    );
    assert_eq!(a.code(), "DIGEST_INVALID");
    let a = s.call(
        "POST",
        "/v2/team/app/blobs/uploads/?digest=sha256:1234",
        &[],
        &data,
    );
    assert_eq!(a.code(), "DIGEST_INVALID", "a malformed digest");
    assert!(s.registry().storage().list_blobs().unwrap().is_empty());
}

#[test]
fn blobs_are_served_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    let digest = s.blob("team/app", &data);
    let path = format!("/v2/team/app/blobs/{digest}");

    let a = s.call("GET", &path, &[("range", "bytes=10-19")], b"");
    assert_eq!(a.status, 206);
    assert_eq!(a.header("content-range"), "bytes 10-19/1000");
    assert_eq!(a.body, &data[10..20]);
    let a = s.call("GET", &path, &[("range", "bytes=990-")], b"");
    assert_eq!(a.status, 206);
    assert_eq!(a.body, &data[990..]);
    let a = s.call("GET", &path, &[("range", "bytes=-5")], b"");
    assert_eq!(a.body, &data[995..]);
    let a = s.call("GET", &path, &[("range", "bytes=1000-")], b"");
    assert_eq!(a.status, 416);
    assert_eq!(a.header("content-range"), "bytes */1000");
    let a = s.get(&path);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("accept-ranges"), "bytes");

    // Another repository does not see the blob, though the store has it.
    let a = s.get(&format!("/v2/team/other/blobs/{digest}"));
    assert_eq!(a.status, 404);
    assert_eq!(a.code(), "BLOB_UNKNOWN");
}

#[test]
fn manifests_are_checked_stored_byte_for_byte_and_served_with_their_type() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let (digest, bytes) = s.image("team/app", Some("v1"), json!({}));

    for reference in ["v1", digest.as_str()] {
        let a = s.get(&format!("/v2/team/app/manifests/{reference}"));
        assert_eq!(a.status, 200);
        assert_eq!(a.body, bytes, "the bytes pushed");
        assert_eq!(a.header("content-type"), OCI_MANIFEST);
        assert_eq!(a.header("docker-content-digest"), digest);
    }
    let a = s.call("HEAD", "/v2/team/app/manifests/v1", &[], b"");
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), bytes.len().to_string());
    assert!(a.body.is_empty());
    let a = s.get("/v2/team/app/manifests/nope");
    assert_eq!((a.status, a.code().as_str()), (404, "MANIFEST_UNKNOWN"));

    let put = |reference: &str, content_type: &str, body: &[u8]| {
        s.call(
            "PUT",
            &format!("/v2/team/app/manifests/{reference}"),
            &[("content-type", content_type)],
            body,
        )
    };
    let config = s.blob("team/app", b"{}");
    let manifest = |layer: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 2},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": 5}],
        }))
        .unwrap()
    };

    // A layer nobody pushed.
    let a = put("v2", OCI_MANIFEST, &manifest(&sha256(b"never")));
    assert_eq!(
        (a.status, a.code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    // A layer pushed to another repository only.
    let other = s.blob("team/other", b"other");
    let a = put("v2", OCI_MANIFEST, &manifest(&other));
    assert_eq!(a.code(), "MANIFEST_BLOB_UNKNOWN");
    // Pushed by a digest that is not its own.
    let layer = s.blob("team/app", b"layer");
    let good = manifest(&layer);
    let a = put(&sha256(b"x"), OCI_MANIFEST, &good);
    assert_eq!(a.code(), "DIGEST_INVALID");
    // Content-Type and mediaType disagree.
    let a = put(
        "v2",
        "application/vnd.docker.distribution.manifest.v2+json",
        &good,
    );
    assert_eq!(a.code(), "MANIFEST_INVALID");
    // Schema 1, unknown types, not JSON.
    let a = put(
        "v2",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        b"{}",
    );
    assert!(a.text().contains("schema 1"), "{}", a.text());
    let a = put("v2", "text/plain", b"{}");
    assert_eq!(a.code(), "MANIFEST_INVALID");
    let a = put("v2", OCI_MANIFEST, b"not json");
    assert_eq!(a.code(), "MANIFEST_INVALID");
    // Larger than 4 MiB: refused from the headers, before the body is sent.
    let (status, body) = s.raw_put_head(
        "/v2/team/app/manifests/v2",
        OCI_MANIFEST,
        4 * 1024 * 1024 + 1,
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("SIZE_INVALID"), "{body}");

    let a = put(&sha256(&good), OCI_MANIFEST, &good);
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.header("docker-content-digest"), sha256(&good));
    assert_eq!(
        a.header("location"),
        format!("/v2/team/app/manifests/{}", sha256(&good))
    );

    // An artifact: any config media type, foreign layers are not required.
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.example.thing.config+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.example.foreign", "digest": sha256(b"far"), "size": 3,
                    "urls": ["https://example.com/far"]}],
    }))
    .unwrap();
    assert_eq!(put("artifact", OCI_MANIFEST, &artifact).status, 201);

    // An index: every child must be here.
    let index = |children: &[(&str, usize)]| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": children.iter().map(|(d, size)| json!({
                "mediaType": OCI_MANIFEST, "digest": d, "size": size,
                "platform": {"os": "linux", "architecture": "amd64"},
            })).collect::<Vec<_>>(),
        }))
        .unwrap()
    };
    let a = put(
        "multi",
        OCI_INDEX,
        &index(&[(&digest, bytes.len()), (&sha256(b"absent"), 10)]),
    );
    assert_eq!(a.code(), "MANIFEST_BLOB_UNKNOWN");
    let multi = index(&[(&digest, bytes.len()), (&sha256(&good), good.len())]);
    assert_eq!(put("multi", OCI_INDEX, &multi).status, 201);
    let a = s.get("/v2/team/app/manifests/multi");
    assert_eq!(a.header("content-type"), OCI_INDEX);
    assert_eq!(a.body, multi);
}

#[test]
fn pushing_needs_the_project_unless_projects_are_made_on_first_push() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let a = s.call("POST", "/v2/ghost/app/blobs/uploads/", &[], b"");
    assert_eq!((a.status, a.code().as_str()), (404, "NAME_UNKNOWN"));
    let message = a.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("ghost") && message.contains("POST /api/v1/projects"),
        "names the project and how to create it: {message}"
    );
    // A monolithic push, refused with its blob still on the way, gets the same answer.
    let big = vec![7u8; 16 << 20];
    let a = s.call(
        "POST",
        &format!("/v2/ghost/app/blobs/uploads/?digest={}", sha256(&big)),
        &[("content-type", "application/octet-stream")],
        &big,
    );
    assert_eq!((a.status, a.code().as_str()), (404, "NAME_UNKNOWN"));
    let a = s.call(
        "PUT",
        "/v2/ghost/app/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        b"{}",
    );
    assert_eq!(a.code(), "NAME_UNKNOWN");
    drop(s);

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        RegistryOptions {
            auto_create_projects: true,
            ..Default::default()
        },
    );
    s.image("ghost/app", Some("v1"), json!({}));
    let project = s.registry().metadata().project("ghost").unwrap().unwrap();
    assert!(!project.public, "projects made on push are private");
    assert_eq!(s.get("/v2/ghost/app/manifests/v1").status, 200);
}

#[test]
fn blobs_mount_across_repositories_and_fall_back_to_an_upload() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let digest = s.blob("team/a", b"shared layer");
    let a = s.call(
        "POST",
        &format!("/v2/team/b/blobs/uploads/?mount={digest}&from=team/a"),
        &[],
        b"",
    );
    assert_eq!(a.status, 201);
    assert_eq!(a.header("location"), format!("/v2/team/b/blobs/{digest}"));
    assert_eq!(
        s.get(&format!("/v2/team/b/blobs/{digest}")).body,
        b"shared layer"
    );

    // Not in the source repository: an ordinary upload session instead.
    let absent = sha256(b"absent");
    let a = s.call(
        "POST",
        &format!("/v2/team/b/blobs/uploads/?mount={absent}&from=team/a"),
        &[],
        b"",
    );
    assert_eq!(a.status, 202);
    assert!(
        a.header("location")
            .starts_with("/v2/team/b/blobs/uploads/")
    );
}

/// Follows `Link` headers from `first`, returning every page's entries.
fn walk(s: &Server, first: &str, key: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next.take() {
        let a = s.get(&path);
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        let entries: Vec<String> = serde_json::from_value(a.json()[key].clone()).unwrap();
        pages.push(entries);
        if let Some(link) = a.headers.get("link") {
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            let url = link.trim_start_matches('<').split('>').next().unwrap();
            next = Some(url.to_owned());
        }
        assert!(pages.len() < 20, "the Link chain ends");
    }
    pages
}

#[test]
fn tags_and_the_catalog_page_with_n_and_last() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let (_, bytes) = s.image("team/app", Some("b"), json!({}));
    for tag in ["d", "a", "c", "e"] {
        let a = s.call(
            "PUT",
            &format!("/v2/team/app/manifests/{tag}"),
            &[("content-type", OCI_MANIFEST)],
            &bytes,
        );
        assert_eq!(a.status, 201);
    }

    let a = s.get("/v2/team/app/tags/list");
    assert_eq!(
        a.json(),
        json!({"name": "team/app", "tags": ["a", "b", "c", "d", "e"]})
    );
    assert!(!a.headers.contains_key("link"), "everything fits");

    let pages = walk(&s, "/v2/team/app/tags/list?n=1", "tags");
    assert_eq!(pages, [["a"], ["b"], ["c"], ["d"], ["e"]]);
    let pages = walk(&s, "/v2/team/app/tags/list?n=2", "tags");
    assert_eq!(pages, vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]]);
    let a = s.get("/v2/team/app/tags/list?n=2&last=b");
    assert_eq!(a.json()["tags"], json!(["c", "d"]));
    assert_eq!(
        a.header("link"),
        "</v2/team/app/tags/list?last=d&n=2>; rel=\"next\""
    );

    let a = s.get("/v2/team/app/tags/list?n=0");
    assert_eq!((a.status, a.json()["tags"].clone()), (200, json!([])));
    assert!(!a.headers.contains_key("link"));
    let a = s.get("/v2/team/app/tags/list?last=zzz");
    assert_eq!(a.json()["tags"], json!([]), "last past the end");
    for bad in ["abc", "-1", "1.5"] {
        let a = s.get(&format!("/v2/team/app/tags/list?n={bad}"));
        assert_eq!(a.status, 400, "n={bad}");
    }
    let a = s.get("/v2/team/nothing/tags/list");
    assert_eq!((a.status, a.code().as_str()), (404, "NAME_UNKNOWN"));

    for repo in ["team/x", "team/y/z"] {
        s.image(repo, Some("v1"), json!({}));
    }
    let pages = walk(&s, "/v2/_catalog?n=2", "repositories");
    assert_eq!(
        pages,
        vec![vec!["team/app", "team/x"], vec!["team/y/z"]],
        "multi-level names, in byte order"
    );
    let a = s.get("/v2/_catalog?n=0");
    assert_eq!(a.json()["repositories"], json!([]));
    assert_eq!(s.get("/v2/_catalog?n=x").status, 400);
}

#[test]
fn deletes_remove_tags_manifests_and_blob_links() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let (digest, bytes) = s.image("team/app", Some("v1"), json!({}));
    s.call(
        "PUT",
        "/v2/team/app/manifests/v2",
        &[("content-type", OCI_MANIFEST)],
        &bytes,
    );

    // A tag alone.
    assert_eq!(
        s.call("DELETE", "/v2/team/app/manifests/v1", &[], b"")
            .status,
        202
    );
    assert_eq!(s.get("/v2/team/app/manifests/v1").status, 404);
    assert_eq!(
        s.get(&format!("/v2/team/app/manifests/{digest}")).status,
        200
    );
    assert_eq!(
        s.get("/v2/team/app/tags/list").json()["tags"],
        json!(["v2"])
    );
    let a = s.call("DELETE", "/v2/team/app/manifests/v1", &[], b"");
    assert_eq!((a.status, a.code().as_str()), (404, "MANIFEST_UNKNOWN"));

    // The manifest, with the tags on it.
    let path = format!("/v2/team/app/manifests/{digest}");
    assert_eq!(s.call("DELETE", &path, &[], b"").status, 202);
    assert_eq!(s.get(&path).code(), "MANIFEST_UNKNOWN");
    assert_eq!(s.get("/v2/team/app/manifests/v2").status, 404);
    assert_eq!(s.get("/v2/team/app/tags/list").json()["tags"], json!([]));
    assert_eq!(s.call("DELETE", &path, &[], b"").status, 404);

    // A blob link.
    let blob = s.blob("team/app", b"doomed");
    let path = format!("/v2/team/app/blobs/{blob}");
    assert_eq!(s.call("DELETE", &path, &[], b"").status, 202);
    assert_eq!(s.get(&path).code(), "BLOB_UNKNOWN");
    let a = s.call("DELETE", &path, &[], b"");
    assert_eq!((a.status, a.code().as_str()), (404, "BLOB_UNKNOWN"));
}

#[test]
fn referrers_list_what_refers_to_a_subject_with_a_filter() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let (subject, bytes) = s.image("team/app", Some("v1"), json!({}));
    let descriptor = json!({"mediaType": OCI_MANIFEST, "digest": subject, "size": bytes.len()});

    // Referrers are pushed by digest, as clients do; the answer names the subject.
    let mut pushed = Vec::new();
    for (artifact_type, note) in [
        ("application/vnd.example.signature", "signed"),
        ("application/vnd.example.sbom", "listed"),
    ] {
        let config = s.blob("team/app", b"{}");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
            "layers": [],
            "subject": descriptor,
            "annotations": {"note": note},
        }))
        .unwrap();
        let digest = sha256(&manifest);
        let a = s.call(
            "PUT",
            &format!("/v2/team/app/manifests/{digest}"),
            &[("content-type", OCI_MANIFEST)],
            &manifest,
        );
        assert_eq!(a.status, 201, "{}", a.text());
        assert_eq!(a.header("oci-subject"), subject);
        pushed.push(digest);
    }

    let a = s.get(&format!("/v2/team/app/referrers/{subject}"));
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), OCI_INDEX);
    assert!(!a.headers.contains_key("oci-filters-applied"));
    let index = a.json();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let found = index["manifests"].as_array().unwrap();
    assert_eq!(found.len(), 2);
    let signature = found
        .iter()
        .find(|d| d["digest"] == pushed[0].as_str())
        .unwrap();
    assert_eq!(
        signature["artifactType"],
        "application/vnd.example.signature"
    );
    assert_eq!(signature["annotations"], json!({"note": "signed"}));
    assert_eq!(signature["mediaType"], OCI_MANIFEST);

    let a = s.get(&format!(
        "/v2/team/app/referrers/{subject}?artifactType=application/vnd.example.sbom"
    ));
    assert_eq!(a.header("oci-filters-applied"), "artifactType");
    let found = a.json()["manifests"].clone();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["digest"], pushed[1].as_str());

    let a = s.get(&format!("/v2/team/app/referrers/{}", sha256(b"nothing")));
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json()["manifests"],
        json!([]),
        "an unknown subject: an empty index"
    );
    let a = s.get("/v2/team/app/referrers/sha256:zz");
    assert_eq!((a.status, a.code().as_str()), (400, "DIGEST_INVALID"));
}

/// The conformance suite's sha512 workflows: blobs uploaded whole and in chunks, served,
/// mounted; manifests pushed by digest and by tag with `?digest=`, pulled, deleted; and
/// the collector freeing them, all in sha512.
#[test]
fn content_addressed_by_sha512_is_pushed_pulled_mounted_and_collected() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = sha512(config);
    let a = s.call(
        "POST",
        &format!("/v2/team/app/blobs/uploads/?digest={config_digest}"),
        &[("content-type", "application/octet-stream")],
        config,
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.header("docker-content-digest"), config_digest);
    assert_eq!(
        a.header("location"),
        format!("/v2/team/app/blobs/{config_digest}")
    );

    // In two chunks, then a wrong digest refused before the right one is accepted.
    let layer = b"a layer addressed by sha512 ".repeat(4000);
    let layer_digest = sha512(&layer);
    let a = s.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    let upload = a.header("location").to_owned();
    let half = layer.len() / 2;
    let a = s.call(
        "PATCH",
        &upload,
        &[("content-range", &format!("0-{}", half - 1))],
        &layer[..half],
    );
    assert_eq!(a.status, 202, "{}", a.text());
    let upload = a.header("location").to_owned();
    let a = s.call(
        "PUT",
        &format!("{upload}?digest={}", sha512(b"not the layer")),
        &[],
        &layer[half..],
    );
    assert_eq!((a.status, a.code().as_str()), (400, "DIGEST_INVALID"));
    let a = s.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    let upload = a.header("location").to_owned();
    let a = s.call("PATCH", &upload, &[], &layer);
    let upload = a.header("location").to_owned();
    let a = s.call("PUT", &format!("{upload}?digest={layer_digest}"), &[], b"");
    assert_eq!(a.status, 201, "{}", a.text());

    let a = s.call(
        "HEAD",
        &format!("/v2/team/app/blobs/{layer_digest}"),
        &[],
        b"",
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.header("docker-content-digest"), layer_digest);
    assert_eq!(a.header("content-length"), layer.len().to_string());
    let a = s.call(
        "GET",
        &format!("/v2/team/app/blobs/{layer_digest}"),
        &[("range", "bytes=10-19")],
        b"",
    );
    assert_eq!((a.status, &a.body[..]), (206, &layer[10..20]));

    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = sha512(&manifest);
    let a = s.call(
        "PUT",
        &format!("/v2/team/app/manifests/{manifest_digest}"),
        &[("content-type", OCI_MANIFEST)],
        &manifest,
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.header("docker-content-digest"), manifest_digest);

    // By tag: sha256 unless the push names its digest, which must then match.
    let a = s.call(
        "PUT",
        &format!("/v2/team/app/manifests/v1?digest={}", sha512(b"other")),
        &[("content-type", OCI_MANIFEST)],
        &manifest,
    );
    assert_eq!((a.status, a.code().as_str()), (400, "DIGEST_INVALID"));
    let a = s.call(
        "PUT",
        &format!("/v2/team/app/manifests/v1?digest={manifest_digest}"),
        &[("content-type", OCI_MANIFEST)],
        &manifest,
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.header("docker-content-digest"), manifest_digest);
    let a = s.get("/v2/team/app/manifests/v1");
    assert_eq!(a.header("docker-content-digest"), manifest_digest);
    assert_eq!(a.body, manifest);
    let a = s.call(
        "PUT",
        "/v2/team/app/manifests/plain",
        &[("content-type", OCI_MANIFEST)],
        &manifest,
    );
    assert_eq!(a.header("docker-content-digest"), sha256(&manifest));
    let a = s.get(&format!("/v2/team/app/manifests/{manifest_digest}"));
    assert_eq!((a.status, &a.body), (200, &manifest));

    let a = s.call(
        "POST",
        &format!("/v2/team/copy/blobs/uploads/?mount={layer_digest}&from=team/app"),
        &[],
        b"",
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(
        s.get(&format!("/v2/team/copy/blobs/{layer_digest}")).body,
        layer
    );
    let a = s.get(&format!("/v2/team/app/blobs/sha512:{}", "a".repeat(64)));
    assert_eq!((a.status, a.code().as_str()), (400, "DIGEST_INVALID"));

    for reference in ["v1", "plain", &manifest_digest, &sha256(&manifest)] {
        let a = s.call(
            "DELETE",
            &format!("/v2/team/app/manifests/{reference}"),
            &[],
            b"",
        );
        assert_eq!(a.status, 202, "{reference}: {}", a.text());
    }
    s.call(
        "DELETE",
        &format!("/v2/team/copy/blobs/{layer_digest}"),
        &[],
        b"",
    );
    let a = s.call("POST", "/api/v1/gc?grace_seconds=0", &[], b"");
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["blobs_deleted"], 4, "{}", a.text());
    assert!(s.registry().storage().list_blobs().unwrap().is_empty());
}

#[test]
fn an_upload_session_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let location = {
        let s = Server::with_team(dir.path());
        let a = s.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
        let a = s.call("PATCH", a.header("location"), &[], &data[..120_000]);
        assert_eq!(a.status, 202);
        a.header("location").to_owned()
    };
    let s = Server::start(dir.path(), RegistryOptions::default());
    let a = s.get(&location);
    assert_eq!(a.status, 204, "{}", a.text());
    assert_eq!(a.header("range"), "0-119999");
    let a = s.call(
        "PUT",
        &format!("{location}?digest={}", sha256(&data)),
        &[("content-range", "120000-199999")],
        &data[120_000..],
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(
        s.get(&format!("/v2/team/app/blobs/{}", sha256(&data))).body,
        data
    );
}

/// A layer larger than the S3 driver's parts, sent in chunks that do not line up with
/// them and resumed after a restart (so no running digest is left), reads back whole and
/// in ranges; the same bytes committed under a wrong digest store nothing and leave no
/// session behind.
#[test]
fn a_large_chunked_upload_resumes_after_a_restart_and_only_its_digest_commits_it() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..13_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let cuts = [0, 3_000_000, 7_500_000, 12_400_000, data.len()];
    let range = |i: usize| format!("{}-{}", cuts[i], cuts[i + 1] - 1);
    let location = {
        let s = Server::with_team(dir.path());
        let a = s.call("POST", "/v2/team/big/blobs/uploads/", &[], b"");
        let mut location = a.header("location").to_owned();
        for i in 0..2 {
            let a = s.call(
                "PATCH",
                &location,
                &[("content-range", &range(i))],
                &data[cuts[i]..cuts[i + 1]],
            );
            assert_eq!(a.status, 202, "{}", a.text());
            location = a.header("location").to_owned();
        }
        location
    };
    let s = Server::start(dir.path(), RegistryOptions::default());
    let a = s.call(
        "PATCH",
        &location,
        &[("content-range", &range(2))],
        &data[cuts[2]..cuts[3]],
    );
    assert_eq!(a.status, 202, "{}", a.text());
    let location = a.header("location").to_owned();
    assert_eq!(
        s.get(&location).header("range"),
        format!("0-{}", cuts[3] - 1)
    );
    let digest = sha256(&data);
    let a = s.call(
        "PUT",
        &format!("{location}?digest={digest}"),
        &[("content-range", &range(3))],
        &data[cuts[3]..],
    );
    assert_eq!(a.status, 201, "{}", a.text());
    let a = s.get(&format!("/v2/team/big/blobs/{digest}"));
    assert_eq!(a.body.len(), data.len());
    assert!(a.body == data, "the blob reads back byte for byte");
    let a = s.call(
        "GET",
        &format!("/v2/team/big/blobs/{digest}"),
        &[("range", "bytes=6000000-")],
        b"",
    );
    assert_eq!(a.status, 206, "{}", a.text());
    assert!(a.body == data[6_000_000..], "a range from inside a part");

    let wrong = sha256(b"something else");
    let a = s.call("POST", "/v2/team/other/blobs/uploads/", &[], b"");
    let a = s.call("PATCH", a.header("location"), &[], &data);
    assert_eq!(a.status, 202, "{}", a.text());
    let a = s.call(
        "PUT",
        &format!("{}?digest={wrong}", a.header("location")),
        &[],
        b"",
    );
    assert_eq!(a.code(), "DIGEST_INVALID", "{}", a.text());
    assert_eq!(s.get(&format!("/v2/team/other/blobs/{wrong}")).status, 404);
    assert_eq!(s.get(&format!("/v2/team/other/blobs/{digest}")).status, 404);
    assert!(
        s.registry().storage().list_uploads().unwrap().is_empty(),
        "no session is left behind"
    );
}

#[test]
fn garbage_collection_frees_old_unreferenced_blobs_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let (manifest, _) = s.image("team/app", Some("v1"), json!({}));
    let loose = s.blob("team/app", b"nobody refers to me");
    let a = s.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    let upload = a.header("location").to_owned();
    let blobs_before = s.registry().storage().list_blobs().unwrap().len();
    assert_eq!(
        blobs_before, 4,
        "config, layer, manifest and the loose blob"
    );

    // Within the grace period everything stays: the loose blob may be about to be used.
    let a = s.call("POST", "/api/v1/gc", &[], b"");
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["blobs_deleted"], 0);
    assert_eq!(a.json()["blobs_kept_young"], 1);
    assert_eq!(s.get(&format!("/v2/team/app/blobs/{loose}")).status, 200);
    assert_eq!(s.get(&upload).status, 204, "a fresh upload session stays");

    // Past it, only the unreferenced blob and the idle session go.
    let a = s.call(
        "POST",
        "/api/v1/gc?grace_seconds=0&upload_max_age_seconds=0",
        &[],
        b"",
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["blobs_deleted"], 1);
    assert_eq!(a.json()["uploads_deleted"], 1);
    assert_eq!(s.get(&format!("/v2/team/app/blobs/{loose}")).status, 404);
    assert_eq!(s.get(&upload).status, 404);
    let pulled = s.get("/v2/team/app/manifests/v1");
    assert_eq!(pulled.status, 200);
    let image: Value = pulled.json();
    for blob in [&image["config"]["digest"], &image["layers"][0]["digest"]] {
        let a = s.get(&format!("/v2/team/app/blobs/{}", blob.as_str().unwrap()));
        assert_eq!(a.status, 200, "referenced blobs stay");
    }

    // Once the manifest is deleted, its blobs are garbage too.
    s.call(
        "DELETE",
        &format!("/v2/team/app/manifests/{manifest}"),
        &[],
        b"",
    );
    let a = s.call("POST", "/api/v1/gc?grace_seconds=0", &[], b"");
    assert_eq!(a.json()["blobs_deleted"], 3);
    assert!(s.registry().storage().list_blobs().unwrap().is_empty());
}

#[test]
fn metrics_count_requests_bytes_and_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_team(dir.path());
    let digest = s.blob("team/app", &[7u8; 5000]);
    s.get(&format!("/v2/team/app/blobs/{digest}"));
    s.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    let metrics = s.get("/metrics").text();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("hoist_registry_bytes_received_total") >= 5000.0);
    assert!(value("hoist_registry_bytes_sent_total") >= 5000.0);
    assert_eq!(value("hoist_registry_uploads_in_progress"), 1.0);
    assert!(value("hoist_http_requests_total{method=\"GET\",status=\"200\"}") >= 1.0);
    assert!(value("hoist_http_requests_total{method=\"POST\",status=\"202\"}") >= 1.0);
}
