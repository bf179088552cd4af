//! What every route of a host serves with: request ids, a tracing span per request,
//! request counting, and a caught panic answered as a 500.

use crate::metrics::Metrics;
use crate::state::Registry;
use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse as _;

/// Everything the registry serves ([`crate::router`], readiness and the operational routes) with request ids
/// (`x-request-id`, made when the client sends none, and echoed), a tracing span per
/// request, and request counting. What a host serves beside the registry can be merged
/// in before these layers by calling [`with_layers`] on the whole.
pub fn service(registry: Registry) -> Router {
    let metrics = registry.metrics().clone();
    with_layers(
        crate::http::router(registry.clone())
            .merge(crate::ops::readiness_router(registry.clone()))
            .merge(crate::ops::admin_router(registry)),
        metrics,
    )
}

/// Adds request ids, tracing spans, request counting and panic catching to `router`.
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
    // Layers wrap outwards: the id is set first, so the span and the response have it;
    // a panic is caught inside the span, so its log line carries the request's id.
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::count_requests,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// A handler that panicked: a 500 with a JSON body, and the panic in the log (inside the
/// request's span, so with its id). The connection and every other request carry on.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    tracing::error!(panic = what, "a request handler panicked");
    let body = serde_json::json!({"errors": [{
        "code": "UNKNOWN",
        "message": "the host failed while answering; its log has the cause under this request's id",
    }]});
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(body),
    )
        .into_response()
}
