//! A host whose streams are always ready, to hold the plugin to its `advance` budget.
//!
//! Real registries and wasmtime's own plumbing rarely let the plugin's copy loop run
//! unchecked: a stream runs out of data or of room now and then, the plugin waits, and its
//! executor looks at the clock. Node's shim (jco) is different: its outgoing body takes
//! 16 KiB at a time and its incoming body always has the next bytes, so a splice almost
//! never moves 0 bytes (issue 19). This host does the same in wasmtime, in memory, without
//! a network:
//! - its `wasi:http` hooks answer every request themselves, as a registry good enough for
//!   one import of one image (a config and one large layer);
//! - the layer's response body always has its next frame ready (64 KiB of a fixed
//!   pseudo-random sequence, made as it is read: never the whole blob in memory);
//! - request bodies are drained as fast as frames arrive, by the task wasmtime spawns for
//!   the request, on another thread of a multi-threaded runtime; and the outgoing body
//!   buffers many frames ([`WasiHttpHooks::p2_outgoing_body_buffer_chunks`]), so the guest
//!   finds room whenever it writes. With wasmtime's default of one buffered frame, the
//!   guest outruns the drain, its splices return 0, and it waits in `wasi:io/poll`, which
//!   is exactly the luck that hid the bug.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

pub use hoist_imports::contract::PluginPre;

/// The registry host every reference of the import names; nothing resolves it, the hooks
/// answer for it.
pub const REGISTRY: &str = "ready.test";
/// The source image.
pub const SOURCE: &str = "ready.test/src/app:v1";
/// Where it is copied to.
pub const TARGET: &str = "ready.test/dst/app:v1";
/// The frames of the layer's body.
pub const FRAME: usize = 64 << 10;

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &[u8] =
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
/// Frames the guest may write into an upload before the drain must catch up: 64 MiB of
/// 64 KiB frames at most, and the drain rarely lets more than a few wait.
const OUTGOING_BUFFER_FRAMES: usize = 1024;

/// The layer's bytes: a fixed pseudo-random sequence (xorshift64*, one step per byte),
/// made as it is read. Making each byte costs about a nanosecond on the reading thread,
/// roughly what a host pays to copy a byte out of a socket and into a stream; served as
/// slices of one static buffer instead, the 1 GiB layer moved in 12 ms (measured), faster
/// than any budget, and a test of the budget would test nothing.
#[derive(Clone)]
struct Generator {
    state: u64,
}

impl Generator {
    fn new() -> Self {
        Self {
            state: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut state = self.state;
        for byte in buf {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            *byte = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
        self.state = state;
    }

    /// The next `n` bytes, in a buffer of their own.
    fn next_frame(&mut self, n: usize) -> Bytes {
        let mut frame = vec![0; n];
        self.fill(&mut frame);
        Bytes::from(frame)
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The digest of the first `size` bytes of the sequence, hashed as they are made, once
/// per size and process (a couple of seconds per GiB).
fn layer_digest(size: u64) -> String {
    static DIGESTS: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let mut digests = DIGESTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, digest)) = digests.iter().find(|(s, _)| *s == size) {
        return digest.clone();
    }
    let mut hasher = Sha256::new();
    let mut generator = Generator::new();
    let mut buf = vec![0; FRAME];
    let mut left = size;
    while left > 0 {
        let n = left.min(FRAME as u64) as usize;
        generator.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let digest = format!("sha256:{:x}", hasher.finalize());
    digests.push((size, digest.clone()));
    digest
}

/// The image the registry serves: one config and one layer of `layer_size` bytes.
pub struct Image {
    pub layer_size: u64,
    pub layer_digest: String,
    pub config_digest: String,
    pub manifest: Bytes,
    pub manifest_digest: String,
}

impl Image {
    /// Computes the layer's digest (once per size).
    pub fn new(layer_size: u64) -> Self {
        let layer_digest = layer_digest(layer_size);
        let config_digest = sha256_digest(CONFIG);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": CONFIG.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": layer_size,
            }],
        }))
        .unwrap();
        Self {
            layer_size,
            layer_digest,
            config_digest,
            manifest_digest: sha256_digest(&manifest),
            manifest: Bytes::from(manifest),
        }
    }
}

/// What the registry saw.
#[derive(Default)]
pub struct Seen {
    /// Upload bytes received so far, over every PUT of a blob.
    pub upload_bytes: AtomicU64,
    /// Blob uploads completed (answered 201).
    pub blobs_stored: AtomicUsize,
    /// Manifests pushed.
    pub manifest_puts: AtomicUsize,
    /// `METHOD path` of every request, in order.
    pub requests: Mutex<Vec<String>>,
}

/// The registry, shared by the hooks of every store.
pub struct ReadyRegistry {
    pub image: Image,
    pub seen: Seen,
    next_upload: AtomicUsize,
}

/// A body that always has its next frame ready: `left` more bytes of the layer.
struct LayerBody {
    left: u64,
    generator: Generator,
}

impl Body for LayerBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(FRAME as u64);
        self.left -= n;
        let frame = self.generator.next_frame(n as usize);
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

fn full(bytes: Bytes) -> WasiBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn empty() -> WasiBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

fn respond(status: u16, headers: &[(&str, String)], body: WasiBody) -> http::Response<WasiBody> {
    let mut response = http::Response::builder().status(status);
    for (k, v) in headers {
        response = response.header(*k, v);
    }
    response.body(body).unwrap()
}

/// Reads a request body to its end as fast as its frames come; returns its length.
async fn drain(mut body: WasiBody) -> Result<u64, Error> {
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
        }
    }
    Ok(n)
}

impl ReadyRegistry {
    pub fn new(image: Image) -> Arc<Self> {
        Arc::new(Self {
            image,
            seen: Seen::default(),
            next_upload: AtomicUsize::new(0),
        })
    }

    async fn answer(
        self: Arc<Self>,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, Error> {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        self.seen
            .requests
            .lock()
            .unwrap()
            .push(format!("{method} {path}"));
        let content_length: Option<u64> = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let image = &self.image;
        let body = request.into_body();
        let not_found = || Ok(respond(404, &[], empty()));
        let Some(rest) = path.strip_prefix("/v2/") else {
            return not_found();
        };
        let (repository, what) = match rest.split_once("/manifests/") {
            Some((repo, reference)) => (repo, ("manifests", reference)),
            None => match rest.split_once("/blobs/uploads/") {
                Some((repo, id)) => (repo, ("uploads", id)),
                None => match rest.split_once("/blobs/") {
                    Some((repo, digest)) => (repo, ("blobs", digest)),
                    None => return not_found(),
                },
            },
        };
        let response = match (&method, what) {
            (&http::Method::GET | &http::Method::HEAD, ("manifests", reference))
                if repository == "src/app"
                    && (reference == "v1" || reference == image.manifest_digest) =>
            {
                let headers = [
                    ("content-type", MANIFEST_TYPE.to_owned()),
                    ("docker-content-digest", image.manifest_digest.clone()),
                    ("content-length", image.manifest.len().to_string()),
                ];
                let body = if method == http::Method::GET {
                    full(image.manifest.clone())
                } else {
                    empty()
                };
                respond(200, &headers, body)
            }
            (&http::Method::PUT, ("manifests", _)) if repository == "dst/app" => {
                let n = drain(body).await?;
                self.seen.manifest_puts.fetch_add(1, Ordering::SeqCst);
                let digest = image.manifest_digest.clone();
                let status = if Some(n) == content_length { 201 } else { 400 };
                respond(status, &[("docker-content-digest", digest)], empty())
            }
            (&http::Method::GET, ("blobs", digest)) if repository == "src/app" => {
                if digest == image.layer_digest {
                    let headers = [
                        ("content-type", "application/octet-stream".to_owned()),
                        ("content-length", image.layer_size.to_string()),
                        ("docker-content-digest", digest.to_owned()),
                    ];
                    let body = LayerBody {
                        left: image.layer_size,
                        generator: Generator::new(),
                    };
                    respond(200, &headers, body.boxed_unsync())
                } else if digest == image.config_digest {
                    let headers = [("content-length", CONFIG.len().to_string())];
                    respond(200, &headers, full(Bytes::from_static(CONFIG)))
                } else {
                    respond(404, &[], empty())
                }
            }
            // The target has nothing yet; every blob is uploaded.
            (&http::Method::HEAD, ("blobs", _)) => respond(404, &[], empty()),
            (&http::Method::POST, ("uploads", "")) if repository == "dst/app" => {
                drain(body).await?;
                let id = self.next_upload.fetch_add(1, Ordering::SeqCst);
                let location = format!("/v2/{repository}/blobs/uploads/{id}");
                respond(202, &[("location", location)], empty())
            }
            (&http::Method::PUT, ("uploads", _)) if repository == "dst/app" => {
                // Consumed as fast as it arrives. Only the length is checked: hashing here
                // would slow the drain below the guest's pace and push back on it, which
                // is the luck this host exists to take away.
                let mut body = body;
                let mut n = 0u64;
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame?.into_data() {
                        n += data.len() as u64;
                        self.seen
                            .upload_bytes
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                }
                let digest = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("digest="))
                    .unwrap_or("")
                    .replace("%3A", ":");
                let size = if digest == image.layer_digest {
                    image.layer_size
                } else {
                    CONFIG.len() as u64
                };
                if n != size || Some(n) != content_length {
                    respond(400, &[], empty())
                } else {
                    self.seen.blobs_stored.fetch_add(1, Ordering::SeqCst);
                    let location = format!("/v2/{repository}/blobs/{digest}");
                    let headers = [("location", location), ("docker-content-digest", digest)];
                    respond(201, &headers, empty())
                }
            }
            (&http::Method::DELETE, ("uploads", _)) => respond(204, &[], empty()),
            _ => respond(404, &[], empty()),
        };
        Ok(response)
    }
}

/// The `wasi:http` hooks of one store: every request goes to the in-memory registry.
struct Hooks {
    registry: Arc<ReadyRegistry>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _: Option<RequestOptions>,
        _: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let registry = self.registry.clone();
        Box::new(async move {
            let response = registry.answer(request).await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        OUTGOING_BUFFER_FRAMES
    }
}

/// What one instance of the plugin owns.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Hooks,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The built plugin, ready to instantiate against the in-memory registry.
pub struct ReadyHost {
    engine: Engine,
    pre: PluginPre<State>,
    pub registry: Arc<ReadyRegistry>,
}

impl ReadyHost {
    /// Loads `hoist_plugin.wasm` and a registry serving `image`.
    pub fn new(image: Image) -> anyhow::Result<Self> {
        let engine = Engine::new(&Config::new())?;
        let component = wasmtime::component::Component::from_file(&engine, crate::PLUGIN_WASM)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = PluginPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self {
            engine,
            pre,
            registry: ReadyRegistry::new(image),
        })
    }

    /// A store for one import, its requests answered by the registry.
    pub fn store(&self) -> Store<State> {
        Store::new(
            &self.engine,
            State {
                wasi: WasiCtx::builder().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: Hooks {
                    registry: self.registry.clone(),
                },
            },
        )
    }

    pub fn pre(&self) -> &PluginPre<State> {
        &self.pre
    }
}

/// The import request for [`SOURCE`] to [`TARGET`], over plain HTTP. Referrers are off:
/// this host serves one image's blobs and manifests, no tag list or referrers, since it
/// measures how the copy loop keeps its slices.
pub fn request() -> hoist_imports::contract::ImportRequest {
    let mut request = crate::request(SOURCE, TARGET, &[REGISTRY]);
    request.options.referrers.skip = true;
    request
}
