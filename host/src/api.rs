//! The JSON API under `/api/v1`.

use crate::plugin::{PluginError, PluginRuntime};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone)]
pub struct AppState {
    pub plugin: PluginRuntime,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/references/parse", get(parse))
        .with_state(state)
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
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "plugin call failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"code": "plugin_failure", "message": format!("{e:#}")}})),
            )
                .into_response()
        }
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

/// The machine-readable code and the human message of a plugin error.
pub fn error_parts(e: &PluginError) -> (&'static str, &str) {
    match e {
        PluginError::InvalidReference(m) => ("invalid_reference", m),
        PluginError::Unauthorized(m) => ("unauthorized", m),
        PluginError::NotFound(m) => ("not_found", m),
        PluginError::RateLimited(m) => ("rate_limited", m),
        PluginError::DigestMismatch(m) => ("digest_mismatch", m),
        PluginError::UnsupportedMediaType(m) => ("unsupported_media_type", m),
        PluginError::Network(m) => ("network", m),
        PluginError::RegistryError(m) => ("registry_error", m),
        PluginError::DeniedByPolicy(m) => ("denied_by_policy", m),
        PluginError::Cancelled(m) => ("cancelled", m),
    }
}
