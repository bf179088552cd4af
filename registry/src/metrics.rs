//! Prometheus metrics, served at `/metrics`.
//!
//! Each [`Metrics`] has a registry of its own (not the process-wide default), so that
//! several hosts in one process, as in the tests, count apart.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: prometheus::Registry,
    /// Requests answered, by method and status.
    pub requests: IntCounterVec,
    /// Blob and manifest bytes received by the registry.
    pub bytes_in: IntCounter,
    /// Blob and manifest bytes sent by the registry.
    pub bytes_out: IntCounter,
    /// Upload sessions open (started and neither finished nor cancelled), read from the
    /// database at each scrape, so it is right after a restart too.
    pub uploads_in_progress: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = prometheus::Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "hoist_http_requests_total",
                "HTTP requests answered, by method and status",
            ),
            &["method", "status"],
        )
        .expect("a valid metric");
        let bytes_in = IntCounter::new(
            "hoist_registry_bytes_received_total",
            "Blob and manifest bytes the registry received",
        )
        .expect("a valid metric");
        let bytes_out = IntCounter::new(
            "hoist_registry_bytes_sent_total",
            "Blob and manifest bytes the registry sent",
        )
        .expect("a valid metric");
        let uploads_in_progress = IntGauge::new(
            "hoist_registry_uploads_in_progress",
            "Blob upload sessions started and not yet finished or cancelled",
        )
        .expect("a valid metric");
        for metric in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(bytes_in.clone()),
            Box::new(bytes_out.clone()),
            Box::new(uploads_in_progress.clone()),
        ] {
            registry
                .register(metric)
                .expect("each metric is registered once");
        }
        Self {
            registry,
            requests,
            bytes_in,
            bytes_out,
            uploads_in_progress,
        }
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Middleware: counts every answered request by method and status.
pub(crate) async fn count_requests(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    // Only the standard methods are labels, so a client cannot grow the label set.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_owned(),
        _ => "OTHER".to_owned(),
    };
    let response = next.run(request).await;
    metrics
        .requests
        .with_label_values(&[method.as_str(), response.status().as_str()])
        .inc();
    response
}
