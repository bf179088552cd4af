//! The registry's operational routes: readiness, metrics and garbage collection.

use crate::gc;
use crate::state::Registry;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `GET /readyz`, for the host's router beside [`crate::router`].
pub fn readiness_router(registry: Registry) -> Router {
    Router::new()
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
    match gc::collect(&registry, &options).await {
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
