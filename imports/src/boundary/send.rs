//! Sending a request out of the process: through the pooled client (whose connector
//! applies the egress policy), with the first-byte timeout the plugin asked for, and a
//! response body that fails when the source goes silent.

use super::client::{PolicyDenied, PooledClient, policy_denial};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// Sends `request` through `client`. A policy refusal is reported to `denied` (to name
/// the class of address in the import's error) and answered as
/// `DestinationIpProhibited`.
pub(crate) async fn send(
    client: PooledClient,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    denied: impl FnOnce(PolicyDenied),
) -> Result<http::Response<hyper::body::Incoming>, Error> {
    let first_byte = options.and_then(|o| o.first_byte_timeout);
    let sent = client.request(request);
    let response = match first_byte {
        Some(limit) => tokio::time::timeout(limit, sent)
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?,
        None => sent.await,
    };
    response.map_err(|e| match policy_denial(&e) {
        Some(refusal) => {
            tracing::warn!(%refusal, "an import was refused by the egress policy");
            denied(refusal);
            Error::DestinationIpProhibited
        }
        None => client_error(&e),
    })
}

/// How long a response body may stay silent: the plugin's between-bytes timeout, else
/// ten minutes.
pub(crate) fn idle_timeout(options: Option<&RequestOptions>) -> Duration {
    options
        .and_then(|o| o.between_bytes_timeout)
        .unwrap_or(Duration::from_secs(600))
        .max(Duration::from_millis(1))
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
pub(crate) struct IdleBody {
    incoming: hyper::body::Incoming,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The request's place among those the registry allows in flight, and a blob
    /// download's among the host's, given back when the body is dropped, read or not.
    _turn: [Option<tokio::sync::OwnedSemaphorePermit>; 2],
}

impl IdleBody {
    pub(crate) fn new(
        incoming: hyper::body::Incoming,
        idle: Duration,
        turn: [Option<tokio::sync::OwnedSemaphorePermit>; 2],
    ) -> Self {
        Self {
            incoming,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            _turn: turn,
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
