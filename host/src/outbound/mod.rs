//! The plugin's way out: every `wasi:http` request an import makes passes through here.
//!
//! This is where the host keeps what the sandbox must not hold (DESIGN.md §3):
//! - the egress policy, checked on every connection ([`egress`], [`client`]);
//! - credentials, added as Basic authorization only on requests to the registry they
//!   belong to and to the token realm that registry announced in a 401 — never to
//!   other hosts or to redirect targets, which the plugin follows as new requests;
//! - the host's own registry, served in-process with the import's grant instead of any
//!   credential.

pub mod client;
pub mod egress;
pub mod shared_blobs;

use crate::auth::InternalGrant;
use client::{Clients, PolicyDenied, policy_denial};
use hoist_plugin::auth::{Challenge, parse_challenge};
use hoist_plugin::url::Url;
use http_body_util::BodyExt;
use shared_blobs::{BlobClaims, BlobIndex, BlobRequest, Turn};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// A registry's password: Debug output never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Credentials the host holds for one registry during one import.
#[derive(Clone, Debug)]
pub struct HostCredential {
    /// The registry's endpoints: only requests to these origins, and to the token realm
    /// one of them announces, get the credentials.
    pub endpoints: Vec<Url>,
    pub username: String,
    pub password: Secret,
}

/// The host's own registry, reached without leaving the process.
#[derive(Clone)]
pub struct Internal {
    /// The authority imports name it by (`127.0.0.1:5000`).
    pub authority: String,
    pub router: axum::Router,
    pub grant: InternalGrant,
    /// Blob work shared with the other imports into the registry.
    pub claims: Arc<BlobClaims>,
    /// Where blobs already are, to mount them instead of copying.
    pub index: Arc<dyn BlobIndex>,
}

impl Internal {
    /// Serves one request in-process, with the import's grant.
    async fn serve(&self, request: http::Request<axum::body::Body>) -> axum::response::Response {
        let mut request = request;
        request.extensions_mut().insert(self.grant.clone());
        tower::ServiceExt::oneshot(self.router.clone(), request)
            .await
            .unwrap_or_else(|never| match never {})
    }

    /// A blob check, taking part in the shared blob work: when another import is moving
    /// the blob into this project, wait for it and mount the blob from there.
    async fn check_blob(
        &self,
        request: http::Request<axum::body::Body>,
        repository: &str,
        digest: &str,
    ) -> axum::response::Response {
        let (project, task) = (&self.grant.project, &self.grant.task);
        let mut moved_into = None;
        while let Turn::Wait {
            repository: holder,
            mut ended,
        } = self.claims.claim(project, digest, task, repository)
        {
            // Err once the claim is dropped, which is the signal.
            let _ = ended.changed().await;
            moved_into = Some(holder);
        }
        if let Some(from) = moved_into.filter(|from| from != repository) {
            self.mount(repository, digest, &from).await;
        }
        // HEAD has no body, so the request can be made again after a mount.
        let again = rebuild(&request);
        let mut response = self.serve(request).await;
        if response.status() == http::StatusCode::NOT_FOUND
            && let Some(again) = again
        {
            let (index, p, d) = (self.index.clone(), project.clone(), digest.to_owned());
            let holder = tokio::task::spawn_blocking(move || index.repository_with(&p, &d))
                .await
                .ok()
                .flatten();
            if let Some(from) = holder.filter(|from| from != repository) {
                self.mount(repository, digest, &from).await;
                response = self.serve(again).await;
            }
        }
        if response.status().is_success() {
            self.claims.release(project, digest, task);
        }
        response
    }

    /// Links `digest` into `repository` from `from`, in the same project. When `from`
    /// does not hold it (that import failed), the registry opens an upload instead, which
    /// is cancelled: this import will upload the blob itself.
    async fn mount(&self, repository: &str, digest: &str, from: &str) {
        let uri = format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
        let Ok(request) = http::Request::post(uri).body(axum::body::Body::empty()) else {
            return;
        };
        let response = self.serve(request).await;
        if response.status() == http::StatusCode::ACCEPTED
            && let Some(location) = response.headers().get(http::header::LOCATION)
            && let Ok(request) =
                http::Request::delete(location.as_bytes()).body(axum::body::Body::empty())
        {
            self.serve(request).await;
        }
    }
}

/// What one import's requests learned and met, shared with the futures that carry them.
#[derive(Default)]
struct Learned {
    /// Endpoint origins that asked for Basic authentication, with the credential's index.
    basic: HashMap<String, usize>,
    /// Token realms (origin and path) that a credential's registry announced.
    realms: HashMap<String, usize>,
}

/// The `wasi:http` hooks of one import.
pub struct ImportNet {
    clients: Clients,
    credentials: Vec<HostCredential>,
    internal: Option<Internal>,
    learned: Arc<Mutex<Learned>>,
    denials: Arc<Mutex<Vec<PolicyDenied>>>,
    /// Requests this import sent, for the task record (counted, never logged with
    /// headers).
    requests: Arc<Mutex<u64>>,
}

impl ImportNet {
    pub fn new(
        clients: Clients,
        credentials: Vec<HostCredential>,
        internal: Option<Internal>,
    ) -> Self {
        Self {
            clients,
            credentials,
            internal,
            learned: Arc::default(),
            denials: Arc::default(),
            requests: Arc::default(),
        }
    }

    /// The policy refusals this import met, to name the class of address in its error.
    pub fn denials(&self) -> Vec<PolicyDenied> {
        self.denials.lock().unwrap().clone()
    }

    /// The credential whose registry answers at `origin`.
    fn credential_at(&self, origin: &str) -> Option<usize> {
        self.credentials
            .iter()
            .position(|c| c.endpoints.iter().any(|e| origin_of(e) == origin))
    }

    /// The credential to add to a request for `url`, if any.
    fn credential_for(&self, url: &Url) -> Option<&HostCredential> {
        let learned = self.learned.lock().unwrap();
        let origin = origin_of(url);
        let realm_key = format!("{origin}{}", path_only(&url.path));
        let index = learned
            .realms
            .get(&realm_key)
            .or_else(|| learned.basic.get(&origin))?;
        self.credentials.get(*index)
    }
}

/// A copy of a bodiless request.
fn rebuild(request: &http::Request<axum::body::Body>) -> Option<http::Request<axum::body::Body>> {
    let mut builder = http::Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone());
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    builder.body(axum::body::Body::empty()).ok()
}

fn origin_of(url: &Url) -> String {
    let scheme = if url.https { "https" } else { "http" };
    format!("{scheme}://{}", url.authority.to_ascii_lowercase())
}

fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or("/")
}

fn url_of(uri: &http::Uri) -> Option<Url> {
    Url::parse(&uri.to_string()).ok()
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

fn done() -> Box<dyn Future<Output = Result<(), Error>> + Send> {
    Box::new(async { Ok(()) })
}

impl Drop for ImportNet {
    /// However the import ended, the blobs it claimed are free for the others.
    fn drop(&mut self) {
        if let Some(internal) = &self.internal {
            internal.claims.release_task(&internal.grant.task);
        }
    }
}

impl WasiHttpHooks for ImportNet {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        *self.requests.lock().unwrap() += 1;
        let Some(url) = url_of(request.uri()) else {
            return Box::new(async { Err(Error::HttpRequestUriInvalid) });
        };

        if let Some(internal) = &self.internal
            && url.authority.eq_ignore_ascii_case(&internal.authority)
        {
            let internal = internal.clone();
            return Box::new(async move {
                // The plugin's credentials have no business here, and it holds none.
                request.headers_mut().remove(http::header::AUTHORIZATION);
                let blob = BlobRequest::of(request.method(), &url.path);
                let request = request.map(axum::body::Body::new);
                let response = match blob {
                    Some(BlobRequest::Check { repository, digest }) => {
                        internal.check_blob(request, &repository, &digest).await
                    }
                    Some(BlobRequest::Committed { digest }) => {
                        let response = internal.serve(request).await;
                        let grant = &internal.grant;
                        internal
                            .claims
                            .release(&grant.project, &digest, &grant.task);
                        response
                    }
                    None => internal.serve(request).await,
                };
                Ok((
                    response.map(|body| {
                        body.map_err(|e| Error::InternalError(Some(e.to_string())))
                            .boxed_unsync()
                    }),
                    done(),
                ))
            });
        }

        let host = url
            .authority
            .rsplit_once(':')
            .map_or(url.authority.as_str(), |(h, _)| h);
        if let Err(denied) = self.clients.check_literal(host) {
            tracing::warn!(%denied, "an import was refused by the egress policy");
            self.denials.lock().unwrap().push(denied);
            return Box::new(async { Err(Error::DestinationIpProhibited) });
        }

        if !request.headers().contains_key(http::header::AUTHORIZATION)
            && let Some(credential) = self.credential_for(&url)
        {
            let value = hoist_plugin::auth::basic_authorization(
                &credential.username,
                credential.password.expose(),
            );
            if let Ok(mut value) = http::HeaderValue::from_str(&value) {
                value.set_sensitive(true);
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
            }
        }

        let client = self.clients.for_authority(&url.authority).clone();
        let learned = self.learned.clone();
        let denials = self.denials.clone();
        let credential = self.credential_at(&origin_of(&url));
        let first_byte = options.and_then(|o| o.first_byte_timeout);
        let idle = options
            .and_then(|o| o.between_bytes_timeout)
            .unwrap_or(Duration::from_secs(600))
            .max(Duration::from_millis(1));
        Box::new(async move {
            let sent = client.request(request);
            let response = match first_byte {
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|_| Error::ConnectionReadTimeout)?,
                None => sent.await,
            };
            let response = response.map_err(|e| {
                if let Some(denied) = policy_denial(&e) {
                    tracing::warn!(%denied, "an import was refused by the egress policy");
                    denials.lock().unwrap().push(denied);
                    return Error::DestinationIpProhibited;
                }
                client_error(&e)
            })?;
            if response.status() == http::StatusCode::UNAUTHORIZED
                && let Some(index) = credential
            {
                learn(&learned, index, &url, response.headers());
            }
            Ok((
                response.map(|incoming| IdleBody::new(incoming, idle).boxed_unsync()),
                done(),
            ))
        })
    }
}

/// Records where the credential of `index` may go, from a 401 of its registry.
fn learn(learned: &Mutex<Learned>, index: usize, url: &Url, headers: &http::HeaderMap) {
    let Some(challenge) = headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_challenge)
    else {
        return;
    };
    let mut learned = learned.lock().unwrap();
    match challenge {
        Challenge::Basic => {
            learned.basic.insert(origin_of(url), index);
        }
        Challenge::Bearer { realm, .. } => {
            let Ok(realm) = Url::parse(&realm) else {
                return;
            };
            // Credentials reached over HTTPS never travel on in clear text.
            if url.https && !realm.https {
                return;
            }
            learned.realms.insert(
                format!("{}{}", origin_of(&realm), path_only(&realm.path)),
                index,
            );
        }
    }
}

/// The `wasi:http` error for a failed request, without its URL (which may carry a
/// presigned query).
fn client_error(e: &hyper_util::client::legacy::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::TimedOut => Error::ConnectionTimeout,
                std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                    Error::ConnectionTerminated
                }
                _ if io.to_string().contains("certificate") => Error::TlsCertificateError,
                _ => Error::InternalError(Some(io.to_string())),
            };
        }
        source = err.source();
    }
    let text = e.to_string();
    if text.contains("dns error") {
        Error::DnsError {
            rcode: Some(text),
            info_code: None,
        }
    } else if e.is_connect() {
        Error::ConnectionRefused
    } else {
        Error::InternalError(Some(text))
    }
}

/// A response body that fails when no bytes arrive for `idle`.
struct IdleBody {
    incoming: hyper::body::Incoming,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl IdleBody {
    fn new(incoming: hyper::body::Incoming, idle: Duration) -> Self {
        Self {
            incoming,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl http_body::Body for IdleBody {
    type Data = bytes::Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + self.idle;
                self.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

/// Registries' endpoints as the plugin will reach them, for matching credentials: the
/// configured mirrors, else the registry's API host over HTTPS (HTTP when insecure).
pub fn endpoints_of(
    registry: &str,
    mirrors: &HashMap<String, Vec<String>>,
    insecure: &HashSet<String>,
) -> Vec<Url> {
    if let Some(list) = mirrors.get(registry).filter(|l| !l.is_empty()) {
        return list
            .iter()
            .filter_map(|u| Url::parse(u.trim_end_matches('/')).ok())
            .collect();
    }
    let scheme = if insecure.contains(registry) {
        "http"
    } else {
        "https"
    };
    Url::parse(&format!(
        "{scheme}://{}",
        hoist_plugin::reference::api_host(registry)
    ))
    .into_iter()
    .collect()
}
