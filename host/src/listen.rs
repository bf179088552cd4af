//! Serving connections with limits that `axum::serve` does not set: a deadline for each
//! request's header (which is also how long a kept-alive connection may sit idle, since
//! hyper starts that clock whenever it waits for a request), and a cap on connections
//! open at once. A body is not under the deadline: a slow upload or download that keeps
//! moving is never cut off.
//! Each request carries its peer's address (`ConnectInfo`), for the logs.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// What a connection may cost.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Time to send a request's header, and to start the next one on a kept-alive
    /// connection.
    pub(crate) header_read_timeout: Duration,
    /// Connections open at once; beyond it, new ones wait in the listen backlog.
    pub(crate) max_connections: usize,
}

/// Serves `router` on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, router: Router, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        // Taken before accepting, so that at the cap nothing more is accepted.
        let slot = slots.clone().acquire_owned().await.expect("never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, mostly: wait rather than spin.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "a connection ended with an error");
            }
            drop(slot);
        });
    }
}
