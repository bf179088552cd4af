//! The JSON API under `/api/v1`, and the health endpoints.

mod caller;
mod imports;
mod openapi;
mod projects;
mod robots;

use crate::auth::admin::AdminPassword;
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
    pub admin: AdminPassword,
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
        .route("/api/v1/robots", get(robots::list).post(robots::create))
        .route(
            "/api/v1/robots/{name}",
            axum::routing::delete(robots::delete),
        )
        .route("/api/v1/tasks/{id}", get(imports::get_task))
        .route("/api/v1/tasks/{id}/cancel", post(imports::cancel))
        .route("/api/v1/tasks/{id}/retry", post(imports::retry))
        .route("/api/v1/tasks/{id}/events", get(imports::events))
        .layer(axum::middleware::from_fn(strip_basic_challenge))
        .with_state(state)
}

/// An API error: `{"error": {"code", "message", "field"?}}` with its status.
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
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
