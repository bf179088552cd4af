//! A fake source registry for fault injection only: it serves one small OCI image and
//! misbehaves in the one way a test asks for. Everything else uses real registries.

use crate::images::sha256;
use crate::{serve, serve_on};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::RngCore;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// The first GET of the layer sends half the body, then drops the connection.
    TruncateLayerOnce,
    /// The layer's bytes differ from its digest (same length).
    WrongLayerDigest,
    /// The first two manifest requests get 429 with `Retry-After: 1`.
    RateLimitTwice,
    /// Every manifest request gets 500.
    AlwaysServerError,
    /// Requests need Basic credentials, and layer GETs redirect (307) to another host.
    RedirectToCdn,
    /// Layer GETs redirect (307) to a CDN at 127.0.0.2, another loopback address, which an
    /// egress policy that allows only 127.0.0.1 refuses.
    RedirectToOtherAddress,
    /// The manifest is over 4 MiB.
    HugeManifest,
    /// The manifest is Docker schema 1.
    Schema1,
    /// The layer trickles out: 16 KiB every 20 ms, about 4 s in all.
    SlowLayer,
    /// The first GET of the layer sends half the body, then goes silent without closing.
    StallLayerOnce,
    /// The first GET of the layer is cut in the middle, and the resumed GET answers 206
    /// with bytes from the start instead of the ones asked for.
    WrongRangeOnResume,
    /// The manifest also lists a foreign (non-distributable) layer with `urls`.
    ForeignLayer,
}

/// The digest of the foreign layer, which no registry serves.
pub const FOREIGN_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

pub const USER: &str = "fakeuser";
pub const PASSWORD: &str = "fake-secret-password";

struct Inner {
    fault: Fault,
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
    manifest_requests: AtomicUsize,
    layer_requests: AtomicUsize,
    /// Range headers the layer requests carried.
    ranges: Mutex<Vec<Option<String>>>,
    cdn_port: Mutex<u16>,
    /// Authorization headers that reached the CDN.
    cdn_authorization: Mutex<Vec<Option<String>>>,
}

#[derive(Clone)]
pub struct FakeRegistry {
    pub port: u16,
    inner: Arc<Inner>,
}

impl FakeRegistry {
    pub fn start(fault: Fault) -> Self {
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .unwrap();
        let mut layer = vec![0u8; 3 << 20];
        rand::rng().fill_bytes(&mut layer);
        let manifest = match fault {
            Fault::Schema1 => serde_json::to_vec(&json!({
                "schemaVersion": 1, "name": "fake", "tag": "v1", "architecture": "amd64",
                "fsLayers": [], "history": [],
            }))
            .unwrap(),
            _ => serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": sha256(&config), "size": config.len()},
                "layers": if fault == Fault::ForeignLayer {
                    json!([
                        {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                         "digest": FOREIGN_DIGEST, "size": 12345,
                         "urls": ["https://foreign.example/layer.tar.gz"]},
                        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                         "digest": sha256(&layer), "size": layer.len()},
                    ])
                } else {
                    json!([{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": sha256(&layer), "size": layer.len()}])
                },
                "annotations": {"padding": if fault == Fault::HugeManifest {
                    "x".repeat(5 << 20) } else { String::new() }},
            }))
            .unwrap(),
        };
        let inner = Arc::new(Inner {
            fault,
            config,
            layer,
            manifest,
            manifest_requests: AtomicUsize::new(0),
            layer_requests: AtomicUsize::new(0),
            ranges: Mutex::new(Vec::new()),
            cdn_port: Mutex::new(0),
            cdn_authorization: Mutex::new(Vec::new()),
        });
        if matches!(fault, Fault::RedirectToCdn | Fault::RedirectToOtherAddress) {
            let cdn = Router::new()
                .route("/cdn/{digest}", get(cdn_blob))
                .with_state(inner.clone());
            *inner.cdn_port.lock().unwrap() = serve_on(cdn_ip(fault), cdn);
        }
        let app = Router::new()
            .route("/v2/", get(|| async { "{}" }))
            .route(
                "/v2/fake/manifests/{reference}",
                get(serve_manifest).head(serve_manifest),
            )
            .route("/v2/fake/blobs/{digest}", get(blob))
            .with_state(inner.clone());
        let port = serve(app);
        Self { port, inner }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn manifest_digest(&self) -> String {
        sha256(&self.inner.manifest)
    }

    pub fn layer_digest(&self) -> String {
        sha256(&self.inner.layer)
    }

    pub fn manifest_requests(&self) -> usize {
        self.inner.manifest_requests.load(Ordering::SeqCst)
    }

    pub fn layer_ranges(&self) -> Vec<Option<String>> {
        self.inner.ranges.lock().unwrap().clone()
    }

    pub fn cdn_authorization(&self) -> Vec<Option<String>> {
        self.inner.cdn_authorization.lock().unwrap().clone()
    }
}

fn needs_auth(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    if inner.fault != Fault::RedirectToCdn {
        return None;
    }
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&expected);
    (!ok).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"fake\"")],
            "",
        )
            .into_response()
    })
}

async fn serve_manifest(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(_reference): Path<String>,
) -> Response {
    if let Some(denied) = needs_auth(&inner, &headers) {
        return denied;
    }
    let n = inner.manifest_requests.fetch_add(1, Ordering::SeqCst);
    match inner.fault {
        Fault::RateLimitTwice if n < 2 => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response();
        }
        Fault::AlwaysServerError => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
        }
        _ => {}
    }
    let media = if inner.fault == Fault::Schema1 {
        "application/vnd.docker.distribution.manifest.v1+prettyjws"
    } else {
        MANIFEST_TYPE
    };
    (
        [
            ("content-type", media.to_owned()),
            ("docker-content-digest", sha256(&inner.manifest)),
        ],
        inner.manifest.clone(),
    )
        .into_response()
}

async fn blob(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(digest): Path<String>,
) -> Response {
    if let Some(denied) = needs_auth(&inner, &headers) {
        return denied;
    }
    if digest == sha256(&inner.config) {
        return inner.config.clone().into_response();
    }
    if digest != sha256(&inner.layer) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let n = inner.layer_requests.fetch_add(1, Ordering::SeqCst);
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    inner.ranges.lock().unwrap().push(range.clone());
    match inner.fault {
        Fault::RedirectToCdn | Fault::RedirectToOtherAddress => {
            let port = *inner.cdn_port.lock().unwrap();
            let ip = cdn_ip(inner.fault);
            (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", format!("http://{ip}:{port}/cdn/{digest}"))],
            )
                .into_response()
        }
        Fault::WrongLayerDigest => {
            let mut corrupt = inner.layer.clone();
            corrupt[1000] ^= 0xff;
            corrupt.into_response()
        }
        Fault::TruncateLayerOnce | Fault::WrongRangeOnResume if n == 0 => {
            // Promise the whole layer, send half, then fail the body: the client sees the
            // connection close early.
            let half = inner.layer[..inner.layer.len() / 2].to_vec();
            let stream = futures::stream::iter(vec![
                Ok(half),
                Err(std::io::Error::other("cut off by the test")),
            ]);
            (
                [("content-length", inner.layer.len().to_string())],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Fault::WrongRangeOnResume => (
            StatusCode::PARTIAL_CONTENT,
            [(
                "content-range",
                format!("bytes 0-{}/{}", inner.layer.len() - 1, inner.layer.len()),
            )],
            inner.layer.clone(),
        )
            .into_response(),
        Fault::StallLayerOnce if n == 0 => {
            let half = inner.layer[..inner.layer.len() / 2].to_vec();
            let stream = futures::StreamExt::chain(
                futures::stream::iter(vec![Ok::<_, std::io::Error>(half)]),
                futures::stream::pending(),
            );
            (
                [("content-length", inner.layer.len().to_string())],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Fault::SlowLayer => {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = inner
                .layer
                .chunks(16 * 1024)
                .map(|c| Ok(c.to_vec()))
                .collect();
            let stream = futures::StreamExt::then(futures::stream::iter(chunks), |c| async {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                c
            });
            (
                [("content-length", inner.layer.len().to_string())],
                Body::from_stream(stream),
            )
                .into_response()
        }
        _ => ranged(&inner.layer, range.as_deref()),
    }
}

fn cdn_ip(fault: Fault) -> &'static str {
    if fault == Fault::RedirectToOtherAddress {
        "127.0.0.2"
    } else {
        "127.0.0.1"
    }
}

async fn cdn_blob(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    inner.cdn_authorization.lock().unwrap().push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    inner.layer.clone().into_response()
}

/// Serves `bytes`, or the part a `Range: bytes=N-` asks for.
fn ranged(bytes: &[u8], range: Option<&str>) -> Response {
    let start = range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match start {
        Some(start) if start < bytes.len() => (
            StatusCode::PARTIAL_CONTENT,
            [(
                "content-range",
                format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
            )],
            bytes[start..].to_vec(),
        )
            .into_response(),
        _ => bytes.to_vec().into_response(),
    }
}
