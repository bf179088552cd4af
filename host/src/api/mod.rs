//! The JSON API under `/api/v1`, and the health endpoints.

mod caller;
mod imports;
mod openapi;
mod projects;
mod robots;
mod sync_rules;

use crate::auth::jwt::TokenKeys;
use crate::auth::session::CSRF_HEADER;
use crate::store::HostStore;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hoist_imports::PluginRuntime;
use hoist_imports::contract::{PluginError, error_parts};
use hoist_imports::tasks::TaskRunner;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use caller::ApiCaller;

#[derive(Clone)]
pub struct AppState {
    pub plugin: PluginRuntime,
    pub store: HostStore,
    pub runner: TaskRunner,
    pub sync: crate::sync::runner::SyncRunner,
    pub passwords: crate::auth::Passwords,
    pub keys: TokenKeys,
    /// The host part of this registry's references (`127.0.0.1:5000`).
    pub external_host: String,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/openapi.yaml", get(openapi::document))
        .route("/api/v1/references/parse", get(parse))
        .route(
            "/api/v1/projects",
            get(projects::list).post(projects::create),
        )
        .route(
            "/api/v1/projects/{project}",
            get(projects::get_one)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/api/v1/projects/{project}/images/import",
            post(imports::import),
        )
        .route(
            "/api/v1/projects/{project}/images/import/batch",
            post(imports::batch),
        )
        .route("/api/v1/projects/{project}/tasks", get(imports::list))
        .route(
            "/api/v1/projects/{project}/sync-rules",
            get(sync_rules::list).post(sync_rules::create),
        )
        .route(
            "/api/v1/projects/{project}/sync-rules/preview",
            post(sync_rules::preview),
        )
        .route(
            "/api/v1/projects/{project}/sync-rules/{id}",
            get(sync_rules::get_one)
                .put(sync_rules::replace)
                .delete(sync_rules::delete),
        )
        .route(
            "/api/v1/projects/{project}/sync-rules/{id}/enable",
            post(sync_rules::enable),
        )
        .route(
            "/api/v1/projects/{project}/sync-rules/{id}/disable",
            post(sync_rules::disable),
        )
        .route(
            "/api/v1/projects/{project}/sync-rules/{id}/run",
            post(sync_rules::run_now),
        )
        .route(
            "/api/v1/projects/{project}/sync-rules/{id}/plan",
            post(sync_rules::plan),
        )
        .route(
            "/api/v1/projects/{project}/sync-rules/{id}/runs",
            get(sync_rules::runs),
        )
        .route("/api/v1/sync-runs/{id}", get(sync_rules::get_run))
        .route(
            "/api/v1/sync-runs/{id}/cancel",
            post(sync_rules::cancel_run),
        )
        .route("/api/v1/sync-runs/{id}/events", get(sync_rules::run_events))
        .route("/api/v1/robots", get(robots::list).post(robots::create))
        .route(
            "/api/v1/robots/{name}",
            axum::routing::delete(robots::delete),
        )
        .route("/api/v1/tasks/{id}", get(imports::get_task))
        .route("/api/v1/tasks/{id}/cancel", post(imports::cancel))
        .route("/api/v1/tasks/{id}/retry", post(imports::retry))
        .route("/api/v1/tasks/{id}/events", get(imports::events))
        .route("/api/v1", axum::routing::any(unknown_route))
        .route("/api/v1/{*rest}", axum::routing::any(unknown_route))
        // A body announced larger than the limit is refused before a byte of it is read
        // (and before the caller is known), rather than when the extractor reaches it.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::from_fn(refuse_long_uris))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn(strip_basic_challenge))
        .with_state(state)
}

/// The longest request target the API reads: its paths hold a project, a name and an
/// id, and its queries a few words. (Beyond 64 KiB hyper answers 414 itself, without a
/// body: the `http` crate holds no longer URI.)
const MAX_URI: usize = 8 << 10;

async fn refuse_long_uris(request: Request, next: Next) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request URI is {uri_len} bytes; the API reads at most {MAX_URI}"),
        )
        .into_response();
    }
    next.run(request).await
}

/// The largest request body the API reads: its bodies are small JSON objects (a batch of
/// a thousand references is under 200 KiB).
const BODY_LIMIT: usize = 2 << 20;

/// An API error: `{"error": {"code", "message", "field"?}}` with its status.
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Adds `Retry-After` (a refusal that ends by itself).
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait.as_secs().max(1));
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message).field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "an API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the host failed to answer; its log has the details",
        )
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(format!("{e:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"hoist\""),
            );
        }
        response
    }
}

/// A JSON body, with a 400 that names what is wrong in it instead of axum's plain text.
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "the request body is larger than the API accepts; send less",
                ))
            }
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!(
                    "{}; send a JSON object as the API description shows",
                    rejection.body_text()
                ),
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParseQuery {
    reference: String,
}

/// The parsed reference, with the same keys as `hoist parse --json`.
#[derive(Serialize)]
struct Parsed {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
    familiar: String,
    canonical: String,
}

async fn parse(State(state): State<AppState>, Query(q): Query<ParseQuery>) -> Response {
    match state.plugin.parse(&q.reference).await {
        Ok(Ok(r)) => Json(Parsed {
            registry: r.registry,
            repository: r.repository,
            tag: r.tag,
            digest: r.digest,
            familiar: r.familiar,
            canonical: r.canonical,
        })
        .into_response(),
        Ok(Err(e)) => error_response(StatusCode::BAD_REQUEST, &e),
        Err(e) => ApiError::internal(format!("{e:#}")).into_response(),
    }
}

/// A typed plugin error as `{"error": {"code", "message"}}`.
pub fn error_response(status: StatusCode, e: &PluginError) -> Response {
    let (code, message) = error_parts(e);
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Any path under `/api/v1` that no route takes.
async fn unknown_route(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "{} {} is not an API endpoint; the API's description is at /api/v1/openapi.yaml",
        request.method(),
        request.uri().path()
    ))
}

/// Every error from the API is JSON: the rejections that axum and its extractors answer
/// in plain text (a bad query string, a method the route does not take, a body over the
/// limit) are rewritten into the API's error shape, keeping their status and their text.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are short; anything longer is cut rather than buffered whole.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "invalid_request",
    };
    let message = match (status, text.is_empty()) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => format!(
            "this endpoint does not take that method{}; see /api/v1/openapi.yaml",
            parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .map(|allow| format!(" (it takes {allow})"))
                .unwrap_or_default()
        ),
        (StatusCode::PAYLOAD_TOO_LARGE, _) => {
            "the request body is larger than the API accepts; send less".to_owned()
        }
        (_, false) => text,
        (_, true) => status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_owned(),
    };
    let mut answer = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// Leaves out the API's `WWW-Authenticate: Basic` on the UI script's requests: the page
/// has its own sign-in form, and the challenge would make the browser open its
/// password dialog over it.
pub async fn strip_basic_challenge(request: Request, next: Next) -> Response {
    let from_ui = request.headers().contains_key(CSRF_HEADER);
    let mut response = next.run(request).await;
    if from_ui {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    response
}
