//! Hoist's own registry: the OCI Distribution Spec v1.1 under `/v2/` (DESIGN.md §4).
//!
//! Pull, push (monolithic and chunked, with `Content-Range` and upload status),
//! cross-repository mount, tag listing and the catalog with `n`/`last`, deletion, and the
//! referrers API. Repositories are `<project>/<name…>`; pushing into a project that does
//! not exist is refused unless the host creates projects on first push.
//!
//! Blob bytes go through [`Storage`]; which repository may see which blob, manifests,
//! tags and upload sessions are rows in [`Metadata`]. Bodies are streamed to and from
//! disk: no handler holds a blob in memory (manifests, at most 4 MiB, are the exception).
//!
//! **The seam for authentication.** Every request is first classified into a [`Target`]
//! (a repository and an action: pull, push or delete; or the catalog) by [`classify`],
//! and the [`Authorizer`] is asked before anything else happens. A mount also asks for
//! pull on the repository it mounts from. Today's authorizer allows everything; the token
//! authentication plugs in there.
//!
//! **Blob links.** A blob is visible in a repository only when linked to it: an upload
//! finishing there, or a mount into it, makes the link. Pulls, HEADs and the blobs a
//! pushed manifest refers to are checked against the repository's links, never against
//! the global store, so knowing a digest from a private project gives nothing elsewhere.

mod blobs;
pub mod errors;
mod manifests;
pub mod names;
mod referrers;
mod tags;
mod uploads;

use crate::auth::scope::Action;
use crate::metadata::Metadata;
use crate::metrics::Metrics;
use crate::storage::{FsStorage, Storage};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use errors::{RegistryError, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

pub const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
pub const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// What a request wants to do, for the authorizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `GET /v2/`: the API check, which clients also use to find out how to log in.
    Base,
    /// `GET /v2/_catalog`.
    Catalog,
    Repository {
        name: String,
        action: Action,
    },
}

/// Decides whether a request may do what it asks. `parts` carries the Authorization
/// header and request extensions (an in-process import's [`crate::auth::InternalGrant`]).
/// A refusal is answered as it is (`UNAUTHORIZED` with a challenge, or `DENIED`).
pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, parts: &Parts, target: &Target) -> Result<()>;
}

/// Lets everyone do everything: the registry before authentication exists.
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _parts: &Parts, _target: &Target) -> Result<()> {
        Ok(())
    }
}

/// How the registry behaves.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Create a (private) project on the first push into it, instead of refusing.
    pub auto_create_projects: bool,
    /// The garbage collector's defaults.
    pub gc: crate::gc::GcOptions,
}

/// The registry: its stores and settings. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    metadata: Arc<Metadata>,
    options: RegistryOptions,
    metrics: Metrics,
    authorizer: Arc<dyn Authorizer>,
    /// Held for reading while a push makes a blob reachable (an upload's commit and
    /// link, a mount, a manifest's checks and records); held for writing by the garbage
    /// collector's sweep. So the collector never deletes a blob between a push seeing
    /// it and the push's reference to it being recorded.
    gc: tokio::sync::RwLock<()>,
    /// One lock per upload session, so that two requests on one session cannot
    /// interleave their appends.
    upload_locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// The file of the metadata database inside a data directory.
pub fn database_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("hoist.db")
}

impl Registry {
    pub fn new(
        storage: Arc<dyn Storage>,
        metadata: Arc<Metadata>,
        options: RegistryOptions,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                metadata,
                options,
                metrics,
                authorizer: Arc::new(AllowAll),
                gc: tokio::sync::RwLock::new(()),
                upload_locks: Mutex::default(),
            }),
        }
    }

    /// A registry over a data directory: blobs and upload sessions under `blobs/`,
    /// `uploads/` and `tmp/`, the database in `hoist.db`.
    pub fn open(data_dir: &Path, options: RegistryOptions) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let storage = FsStorage::open(data_dir)
            .with_context(|| format!("opening the blob store in {}", data_dir.display()))?;
        let metadata = Metadata::open(&database_path(data_dir))?;
        Ok(Self::new(
            Arc::new(storage),
            Arc::new(metadata),
            options,
            Metrics::new(),
        ))
    }

    /// Replaces the authorizer (before the registry is shared).
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the authorizer is set before the registry is shared")
            .authorizer = authorizer;
        self
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    pub fn metadata(&self) -> &Arc<Metadata> {
        &self.inner.metadata
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.inner.options
    }

    /// Whether the database answers and the store takes writes, for `/readyz`.
    pub async fn ready(&self) -> std::result::Result<(), String> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.inner
                .metadata
                .ping()
                .map_err(|e| format!("the metadata database does not answer: {e:#}"))?;
            this.inner
                .storage
                .probe()
                .map_err(|e| format!("the blob store cannot be written: {e}"))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Runs a metadata query off the async threads.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Metadata) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T> {
        let metadata = self.inner.metadata.clone();
        Ok(tokio::task::spawn_blocking(move || f(&metadata)).await??)
    }

    /// Runs blocking storage work off the async threads.
    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T> {
        let storage = self.inner.storage.clone();
        Ok(tokio::task::spawn_blocking(move || f(storage.as_ref())).await??)
    }

    /// Shared access against the garbage collector's sweep (see [`Inner::gc`]).
    pub(crate) async fn gc_shared(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.inner.gc.read().await
    }

    /// Exclusive access for the garbage collector's sweep.
    pub(crate) async fn gc_exclusive(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.inner.gc.write().await
    }

    pub(crate) async fn lock_upload(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .inner
                .upload_locks
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, l| l.strong_count() > 0);
            match locks.get(id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(id.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// Refuses a push into a project that does not exist, or creates the project when
    /// the host is configured to.
    async fn require_project(&self, repository: &str) -> Result<()> {
        let project = names::project_of(repository).to_owned();
        let auto = self.inner.options.auto_create_projects;
        let exists = self
            .db(move |m| {
                if m.project(&project)?.is_some() {
                    return Ok(true);
                }
                if auto {
                    m.create_project(&project, false)?;
                    tracing::info!(project, "created a project on its first push");
                    return Ok(true);
                }
                Ok(false)
            })
            .await?;
        if exists {
            Ok(())
        } else {
            let project = names::project_of(repository);
            Err(RegistryError::name_unknown(format!(
                "the project {project} does not exist, so nothing can be pushed to \
                 {repository}; create it first (POST /api/v1/projects with \
                 {{\"name\": \"{project}\"}}), or let the host create projects on first \
                 push (--auto-create-projects)"
            ))
            .with_detail(serde_json::json!({ "project": project })))
        }
    }
}

/// The `/v2/` routes, and `/readyz`.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*path}", any(dispatch))
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .headers_mut()
                    .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
                response
            },
        ))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(registry)
}

/// `GET /readyz`: 200 `{"status": "ready"}` when the database answers and the blob store
/// takes a write; else 503 `{"status": "not ready", "reason": …}`.
async fn readyz(State(registry): State<Registry>) -> Response {
    match registry.ready().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(reason) => {
            tracing::warn!(reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "not ready", "reason": reason})),
            )
                .into_response()
        }
    }
}

/// The registry's operational routes: `GET /metrics` and `POST /api/v1/gc`
/// (`?grace_seconds=&upload_max_age_seconds=` override the configured defaults). The
/// collection route is for the admin: put it behind the admin check.
pub fn admin_router(registry: Registry) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/api/v1/gc", axum::routing::post(collect_garbage))
        .with_state(registry)
}

/// Everything the registry serves ([`router`] and [`admin_router`]) with request ids
/// (`x-request-id`, made when the client sends none, and echoed), a tracing span per
/// request, and request counting. What a host serves beside the registry can be merged
/// in before these layers by calling [`with_layers`] on the whole.
pub fn service(registry: Registry) -> Router {
    let metrics = registry.metrics().clone();
    with_layers(
        router(registry.clone()).merge(admin_router(registry)),
        metrics,
    )
}

/// Adds request ids, tracing spans and request counting to `router`.
pub fn with_layers(router: Router, metrics: Metrics) -> Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    let span = |request: &axum::http::Request<Body>| {
        let id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            id,
            method = %request.method(),
            path = request.uri().path(),
        )
    };
    // Layers wrap outwards: the id is set first, so the span and the response have it.
    router
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::count_requests,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn metrics(State(registry): State<Registry>) -> Response {
    // The gauge is read from the database, so it is right after a restart too.
    if let Ok(n) = registry.db(|m| m.upload_count()).await {
        registry.metrics().uploads_in_progress.set(n as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        registry.metrics().render(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GcQuery {
    grace_seconds: Option<u64>,
    upload_max_age_seconds: Option<u64>,
}

async fn collect_garbage(
    State(registry): State<Registry>,
    query: Result<axum::extract::Query<GcQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(axum::extract::Query(q)) => q,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": {
                    "code": "invalid_request",
                    "message": format!(
                        "{}; the parameters are grace_seconds and upload_max_age_seconds, \
                         whole numbers",
                        e.body_text()
                    ),
                }})),
            )
                .into_response();
        }
    };
    let mut options = registry.options().gc.clone();
    if let Some(s) = query.grace_seconds {
        options.grace = std::time::Duration::from_secs(s);
    }
    if let Some(s) = query.upload_max_age_seconds {
        options.upload_max_age = std::time::Duration::from_secs(s);
    }
    match crate::gc::collect(&registry, &options).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "garbage collection failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({"error": {
                    "code": "internal",
                    "message": "garbage collection failed; the host's log has the cause",
                }})),
            )
                .into_response()
        }
    }
}

async fn base(State(registry): State<Registry>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        return method_not_allowed(&parts.method).into_response();
    }
    match registry.inner.authorizer.authorize(&parts, &Target::Base) {
        Ok(()) => (
            [(header::CONTENT_TYPE, "application/json")],
            if parts.method == Method::HEAD {
                ""
            } else {
                "{}"
            },
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// What a path under `/v2/` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Catalog,
    Manifest(String),
    /// `blobs/uploads/`: start an upload (or mount).
    Uploads,
    Upload(String),
    Blob(String),
    TagsList,
    Referrers(String),
}

/// Splits a path under `/v2/` (already percent-decoded, without the prefix) into the
/// repository name and the endpoint. The name is what is left of the endpoint's fixed
/// tail, so names may have any number of components.
pub fn parse_path(path: &str) -> Option<(Option<String>, Endpoint)> {
    if path == "_catalog" {
        return Some((None, Endpoint::Catalog));
    }
    let segments: Vec<&str> = path.split('/').collect();
    let n = segments.len();
    let name = |tail: usize| -> Option<Option<String>> {
        (n > tail).then(|| Some(segments[..n - tail].join("/")))
    };
    let (repo, endpoint) = match segments.as_slice() {
        [.., "blobs", "uploads", ""] | [.., "blobs", "uploads"] => {
            let tail = if segments[n - 1].is_empty() { 3 } else { 2 };
            (name(tail)?, Endpoint::Uploads)
        }
        [.., "blobs", "uploads", id] => (name(3)?, Endpoint::Upload((*id).to_owned())),
        [.., "blobs", digest] => (name(2)?, Endpoint::Blob((*digest).to_owned())),
        [.., "manifests", reference] => (name(2)?, Endpoint::Manifest((*reference).to_owned())),
        [.., "tags", "list"] => (name(2)?, Endpoint::TagsList),
        [.., "referrers", digest] => (name(2)?, Endpoint::Referrers((*digest).to_owned())),
        _ => return None,
    };
    Some((repo, endpoint))
}

/// What a request to `path` (under `/v2/`) with `method` asks to do, for authorization:
/// reads are pull, writes are push (cancelling an upload too), deletes are delete.
pub fn classify(method: &Method, path: &str) -> Option<(Option<String>, Endpoint, Target)> {
    let (repo, endpoint) = parse_path(path)?;
    let target = match &repo {
        None => Target::Catalog,
        Some(name) => {
            let action = match (method, &endpoint) {
                (&Method::GET | &Method::HEAD, _) => Action::Pull,
                (&Method::DELETE, Endpoint::Manifest(_) | Endpoint::Blob(_)) => Action::Delete,
                _ => Action::Push,
            };
            Target::Repository {
                name: name.clone(),
                action,
            }
        }
    };
    Some((repo, endpoint, target))
}

fn method_not_allowed(method: &Method) -> RegistryError {
    RegistryError::unsupported(format!(
        "{method} is not supported on this endpoint; see the OCI distribution spec for the \
         methods each endpoint takes"
    ))
}

async fn dispatch(State(registry): State<Registry>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match route(&registry, &parts, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn route(registry: &Registry, parts: &Parts, body: Body) -> Result<Response> {
    let (repo, endpoint) = match admit(registry, parts) {
        Ok(admitted) => admitted,
        Err(refused) => return Err(refused.after_draining(body).await),
    };
    let query = Query::of(parts);
    let method = parts.method.clone();
    let Some(repo) = repo else {
        return match method {
            Method::GET | Method::HEAD => tags::catalog(registry, &query).await,
            m => Err(method_not_allowed(&m)),
        };
    };
    match (endpoint, method) {
        (Endpoint::Manifest(r), Method::GET) => manifests::get(registry, &repo, &r, true).await,
        (Endpoint::Manifest(r), Method::HEAD) => manifests::get(registry, &repo, &r, false).await,
        (Endpoint::Manifest(r), Method::PUT) => {
            manifests::put(registry, &repo, &r, &parts.headers, body).await
        }
        (Endpoint::Manifest(r), Method::DELETE) => manifests::delete(registry, &repo, &r).await,
        (Endpoint::Blob(d), Method::GET) => blobs::get(registry, &repo, &d, parts, true).await,
        (Endpoint::Blob(d), Method::HEAD) => blobs::get(registry, &repo, &d, parts, false).await,
        (Endpoint::Blob(d), Method::DELETE) => blobs::delete(registry, &repo, &d).await,
        (Endpoint::Uploads, Method::POST) => {
            uploads::start(registry, &repo, parts, &query, body).await
        }
        (Endpoint::Upload(id), Method::GET) => uploads::status(registry, &repo, &id).await,
        (Endpoint::Upload(id), Method::PATCH) => {
            uploads::patch(registry, &repo, &id, &parts.headers, body).await
        }
        (Endpoint::Upload(id), Method::PUT) => {
            uploads::finish(registry, &repo, &id, &parts.headers, &query, body).await
        }
        (Endpoint::Upload(id), Method::DELETE) => uploads::cancel(registry, &repo, &id).await,
        (Endpoint::TagsList, Method::GET | Method::HEAD) => {
            tags::list(registry, &repo, &query).await
        }
        (Endpoint::Referrers(d), Method::GET | Method::HEAD) => {
            referrers::list(registry, &repo, &d, &query).await
        }
        (_, m) => Err(method_not_allowed(&m)),
    }
}

/// Where a request goes: its repository (none for the catalog) and endpoint, once the
/// path is a registry endpoint and the caller may do what the method asks there.
fn admit(registry: &Registry, parts: &Parts) -> Result<(Option<String>, Endpoint)> {
    let raw = parts.uri.path().strip_prefix("/v2/").unwrap_or_default();
    let path = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| RegistryError::name_invalid("the path is not valid UTF-8"))?;
    let Some((repo, endpoint, target)) = classify(&parts.method, &path) else {
        return Err(RegistryError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!(
                "/v2/{path} is not a registry endpoint; they are /v2/<name>/manifests/<ref>, \
                 /v2/<name>/blobs/<digest>, /v2/<name>/blobs/uploads/, \
                 /v2/<name>/tags/list, /v2/<name>/referrers/<digest> and /v2/_catalog"
            ),
        ));
    };
    if let Some(name) = &repo {
        names::check_repository(name)?;
    }
    registry.inner.authorizer.authorize(parts, &target)?;
    Ok((repo, endpoint))
}

/// The query string's parameters (the last value of each).
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    fn of(parts: &Parts) -> Self {
        let pairs = parts
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect::<HashMap<_, _>>()
            })
            .unwrap_or_default();
        Self(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// A header's value as text, if present and readable.
fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header value from text we built (digests, paths of valid names, numbers).
fn value(s: impl AsRef<str>) -> HeaderValue {
    HeaderValue::from_str(s.as_ref()).expect("header values we build are visible ASCII")
}

/// A response with no body and these headers.
fn empty(status: StatusCode, headers: Vec<(HeaderName, HeaderValue)>) -> Response {
    let mut response = (status, Body::empty()).into_response();
    for (name, v) in headers {
        response.headers_mut().insert(name, v);
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_a_name_and_an_endpoint() {
        let p = |s| parse_path(s);
        assert_eq!(
            p("a/b/c/manifests/v1"),
            Some((Some("a/b/c".into()), Endpoint::Manifest("v1".into())))
        );
        assert_eq!(
            p("a/b/blobs/uploads/"),
            Some((Some("a/b".into()), Endpoint::Uploads))
        );
        assert_eq!(
            p("a/b/blobs/uploads"),
            Some((Some("a/b".into()), Endpoint::Uploads))
        );
        assert_eq!(
            p("a/b/blobs/uploads/abc"),
            Some((Some("a/b".into()), Endpoint::Upload("abc".into())))
        );
        assert_eq!(
            p("a/blobs/blobs/sha256:x"),
            Some((Some("a/blobs".into()), Endpoint::Blob("sha256:x".into())))
        );
        assert_eq!(
            p("a/b/tags/list"),
            Some((Some("a/b".into()), Endpoint::TagsList))
        );
        assert_eq!(
            p("a/b/referrers/sha256:x"),
            Some((Some("a/b".into()), Endpoint::Referrers("sha256:x".into())))
        );
        assert_eq!(p("_catalog"), Some((None, Endpoint::Catalog)));
        assert_eq!(p("manifests/v1"), None, "a name is needed");
        assert_eq!(p("a/b/nothing"), None);
    }

    #[test]
    fn every_request_is_classified_for_authorization() {
        let t = |m: Method, p: &str| classify(&m, p).unwrap().2;
        let repo = |action| Target::Repository {
            name: "p/app".into(),
            action,
        };
        assert_eq!(t(Method::GET, "p/app/manifests/v1"), repo(Action::Pull));
        assert_eq!(t(Method::HEAD, "p/app/blobs/sha256:x"), repo(Action::Pull));
        assert_eq!(t(Method::PUT, "p/app/manifests/v1"), repo(Action::Push));
        assert_eq!(t(Method::POST, "p/app/blobs/uploads/"), repo(Action::Push));
        assert_eq!(
            t(Method::DELETE, "p/app/blobs/uploads/x"),
            repo(Action::Push)
        );
        assert_eq!(
            t(Method::DELETE, "p/app/manifests/v1"),
            repo(Action::Delete)
        );
        assert_eq!(
            t(Method::DELETE, "p/app/blobs/sha256:x"),
            repo(Action::Delete)
        );
        assert_eq!(t(Method::GET, "_catalog"), Target::Catalog);
    }
}
