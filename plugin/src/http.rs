//! HTTP over `wasi:http/outgoing-handler`, as async functions on the import's executor.
//!
//! Blob bodies never enter guest memory: `splice` moves bytes from the source response's
//! stream into the upload request's stream inside the host. Measured against gathering
//! the bytes through a 1 MiB guest buffer (bench/copy.sh, 256 MiB in 4 layers, four runs
//! each): the same wall time within noise (2.0–2.2 s), with a third less guest CPU, so the
//! splice stays.

use crate::executor::{note_host_call, now, slice_over, wait_any, wait_for, yield_now};
use crate::url::Url;
use std::time::Duration;
use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasi::io::poll::Pollable;
use wasi::io::streams::{InputStream, OutputStream, StreamError};

/// Network timeouts. Generous by default, for a slow registry, yet short enough that a
/// dead one fails the attempt and the retry policy takes over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// For the headers of a response to a request whose body is small (not uploads).
    pub first_byte: Duration,
    /// For silence in the middle of a transfer, in either direction.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(15),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// From milliseconds, where 0 keeps the default.
    pub fn from_millis(connect: u32, first_byte: u32, idle: u32) -> Self {
        let d = Self::default();
        let pick = |ms: u32, default: Duration| {
            if ms == 0 {
                default
            } else {
                Duration::from_millis(ms.into())
            }
        };
        Self {
            connect: pick(connect, d.connect),
            first_byte: pick(first_byte, d.first_byte),
            idle: pick(idle, d.idle),
        }
    }

    /// What the host enforces for a request. An upload gets no first-byte timeout: hosts
    /// (wasmtime's among them) count it from the start of the request, so it would cut
    /// off every upload that takes longer, however steadily its bytes flow. The upload's
    /// own watchdog ([`Upload::splice_from`], [`Upload::finish`]) catches a stall instead.
    fn request_options(&self, upload: bool) -> Option<RequestOptions> {
        let o = RequestOptions::new();
        // A host may not support every timeout; an unsupported one is simply not set.
        let _ = o.set_connect_timeout(Some(self.connect.as_nanos() as u64));
        if !upload {
            let _ = o.set_first_byte_timeout(Some(self.first_byte.as_nanos() as u64));
        }
        let _ = o.set_between_bytes_timeout(Some(self.idle.as_nanos() as u64));
        Some(o)
    }
}

/// The most a single splice call is asked to move. Hosts move less per call (wasmtime one
/// frame, at most 1 MiB; Node's shim 16 KiB, or 1 MiB with examples/node's worker-side
/// splice), so one splice is short, and it bounds how far an `advance` runs past its
/// budget: the copy loop looks at the clock before each one, and stops early by the
/// host's slowest recent call (`executor::host_latency`).
///
/// Not made smaller when splices are slow: under Node a splice's time is the round trip
/// to the shim's worker thread, not the bytes (a 1 MiB splice took 0.6 ms at the median
/// and a 64 KiB one 0.3 ms; the slow ones, 10–57 ms, were the worker being late), and
/// asking for 256 KiB at a time left the longest advance(200) as long as before (200–230
/// ms against 200–219, 6 runs each at 256 MiB) for four times as many splices.
const SPLICE_CHUNK: u64 = 4 << 20;

/// Bytes a transfer moves before it lets the other transfers have their turn, when its
/// streams never make it wait.
const TURN_BYTES: u64 = SPLICE_CHUNK;

#[derive(Debug, Clone)]
pub enum HttpError {
    /// The request could not be sent or the response not received.
    Transport(String),
    /// The host refused to send the request: its egress policy forbids the destination.
    /// Retrying cannot help.
    Denied(String),
    /// A body was longer than the caller allows.
    TooLarge { limit: u64 },
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Transport(m) | HttpError::Denied(m) => f.write_str(m),
            HttpError::TooLarge { limit } => {
                write!(f, "the body is over the limit of {limit} bytes")
            }
        }
    }
}

fn transport(e: ErrorCode) -> HttpError {
    match e {
        ErrorCode::DestinationIpProhibited | ErrorCode::HttpRequestDenied => {
            HttpError::Denied(describe(&e))
        }
        e => HttpError::Transport(describe(&e)),
    }
}

/// A human sentence for a `wasi:http` error code.
fn describe(e: &ErrorCode) -> String {
    match e {
        ErrorCode::DnsError(d) => format!(
            "DNS lookup failed ({})",
            d.rcode.clone().unwrap_or_else(|| "no answer".into())
        ),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTimeout => "timed out connecting".into(),
        ErrorCode::ConnectionReadTimeout => "timed out waiting for data".into(),
        ErrorCode::ConnectionTerminated => "the connection was closed".into(),
        ErrorCode::TlsProtocolError => "TLS handshake failed".into(),
        ErrorCode::TlsCertificateError => "the TLS certificate was not accepted".into(),
        ErrorCode::HttpRequestDenied => "the host refused to send this request".into(),
        ErrorCode::DestinationIpProhibited => {
            "the host's egress policy forbids this destination".into()
        }
        ErrorCode::InternalError(Some(m)) => m.clone(),
        other => format!("{other:?}"),
    }
}

/// A request about to be sent.
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn build(&self) -> Result<OutgoingRequest, HttpError> {
        let fields: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        let headers = Fields::from_list(&fields)
            .map_err(|e| HttpError::Transport(format!("invalid request header: {e:?}")))?;
        let req = OutgoingRequest::new(headers);
        let bad = |what: &str| HttpError::Transport(format!("invalid request {what}"));
        req.set_method(&self.method).map_err(|_| bad("method"))?;
        let scheme = if self.url.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        req.set_scheme(Some(&scheme)).map_err(|_| bad("scheme"))?;
        req.set_authority(Some(&self.url.authority))
            .map_err(|_| bad("authority"))?;
        req.set_path_with_query(Some(&self.url.path))
            .map_err(|_| bad("path"))?;
        Ok(req)
    }
}

/// A received response. Its body is read with [`Response::bytes`] or taken as a stream.
pub struct Response {
    pub status: u16,
    /// Where the response came from, after redirects: relative `Location` headers are
    /// resolved against it.
    pub url: Url,
    headers: Vec<(String, String)>,
    // Field order is drop order: the stream before its body, the body before the response.
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
    _response: IncomingResponse,
}

impl Response {
    fn new(response: IncomingResponse, url: Url) -> Self {
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let body = response.consume().ok();
        let stream = body.as_ref().and_then(|b| b.stream().ok());
        Self {
            status: response.status(),
            url,
            headers,
            stream,
            body,
            _response: response,
        }
    }

    /// The first value of a header (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// Reads the whole body, refusing one longer than `limit` bytes.
    pub async fn bytes(mut self, limit: u64) -> Result<Vec<u8>, HttpError> {
        if self.content_length().is_some_and(|n| n > limit) {
            return Err(HttpError::TooLarge { limit });
        }
        let Some(stream) = self.stream.take() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        loop {
            match stream.read(64 * 1024) {
                Ok(chunk) if chunk.is_empty() => wait_for(stream.subscribe()).await,
                Ok(chunk) => {
                    out.extend_from_slice(&chunk);
                    if out.len() as u64 > limit {
                        return Err(HttpError::TooLarge { limit });
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Transport(e.to_debug_string()));
                }
            }
        }
        drop(stream);
        if let Some(body) = self.body.take() {
            drop(IncomingBody::finish(body));
        }
        Ok(out)
    }

    /// Reads and drops the body (small error bodies), so the connection can be reused.
    pub async fn discard(self) {
        let _ = self.bytes(64 * 1024).await;
    }

    /// The body as a stream, for splicing into an upload.
    pub fn into_stream(mut self) -> BodyStream {
        BodyStream {
            stream: self.stream.take(),
            _body: self.body.take(),
            _response: self._response,
        }
    }
}

/// A response body being streamed elsewhere.
pub struct BodyStream {
    stream: Option<InputStream>,
    _body: Option<IncomingBody>,
    _response: IncomingResponse,
}

/// The response, once it has arrived.
fn take_response(
    future: &wasi::http::types::FutureIncomingResponse,
    url: &Url,
) -> Option<Result<Response, HttpError>> {
    Some(match future.get()? {
        Ok(Ok(response)) => Ok(Response::new(response, url.clone())),
        Ok(Err(code)) => Err(transport(code)),
        Err(()) => Err(HttpError::Transport(
            "the response was already taken".into(),
        )),
    })
}

async fn await_response(
    future: &wasi::http::types::FutureIncomingResponse,
    url: &Url,
) -> Result<Response, HttpError> {
    loop {
        match take_response(future, url) {
            Some(result) => return result,
            None => wait_for(future.subscribe()).await,
        }
    }
}

/// Sends a request with an optional in-memory body (manifests, token requests).
pub async fn send(
    req: &Request,
    body: Option<&[u8]>,
    timeouts: &Timeouts,
) -> Result<Response, HttpError> {
    let outgoing = req.build()?;
    let out_body = outgoing
        .body()
        .map_err(|_| HttpError::Transport("the request body was already taken".into()))?;
    let future =
        outgoing_handler::handle(outgoing, timeouts.request_options(false)).map_err(transport)?;
    if let Some(bytes) = body.filter(|b| !b.is_empty()) {
        let stream = out_body.write().map_err(|_| {
            HttpError::Transport("the request body stream was already taken".into())
        })?;
        write_all(&stream, bytes).await?;
        drop(stream);
    }
    OutgoingBody::finish(out_body, None).map_err(transport)?;
    await_response(&future, &req.url).await
}

async fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), HttpError> {
    let failed = |e: StreamError| HttpError::Transport(format!("writing the request body: {e:?}"));
    while !bytes.is_empty() {
        let permit = stream.check_write().map_err(failed)?;
        if permit == 0 {
            wait_for(stream.subscribe()).await;
            continue;
        }
        let n = (permit as usize).min(bytes.len());
        stream.write(&bytes[..n]).map_err(failed)?;
        bytes = &bytes[n..];
    }
    // Once Content-Length bytes are written the host may close the stream under the
    // flush; the request is complete then, and the response says whether it worked.
    // (Failing here instead made callers retry a PUT the registry had already applied.)
    if stream.flush().is_ok() {
        wait_for(stream.subscribe()).await;
    }
    Ok(())
}

/// An upload whose body is being streamed.
pub struct Upload {
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
    future: wasi::http::types::FutureIncomingResponse,
    url: Url,
    idle: Duration,
}

/// Why a splice stopped short.
pub enum SpliceError {
    /// The source stream ended, broke or stalled after this many bytes; it can be
    /// resumed.
    Source { transferred: u64, reason: String },
    /// The upload broke or stalled; the upload must be started again.
    Target(String),
    /// The registry answered before the body was complete: a refusal, usually.
    Answered(Response),
}

impl Upload {
    /// Starts sending `req`; its body is written with [`Upload::splice_from`].
    pub fn start(req: &Request, timeouts: &Timeouts) -> Result<Self, HttpError> {
        let outgoing = req.build()?;
        let body = outgoing
            .body()
            .map_err(|_| HttpError::Transport("the request body was already taken".into()))?;
        let stream = body.write().map_err(|_| {
            HttpError::Transport("the request body stream was already taken".into())
        })?;
        let future = outgoing_handler::handle(outgoing, timeouts.request_options(true))
            .map_err(transport)?;
        Ok(Self {
            stream: Some(stream),
            body: Some(body),
            future,
            url: req.url.clone(),
            idle: timeouts.idle,
        })
    }

    /// Waits for `pollable`, for the registry's early answer, or for the idle timeout,
    /// whichever comes first.
    async fn wait_or_answer(&self, pollable: Pollable) -> Waited {
        let idle = monotonic_clock::subscribe_duration(self.idle.as_nanos() as u64);
        match wait_any(vec![pollable, self.future.subscribe(), idle]).await {
            0 => Waited::Ready,
            1 => match take_response(&self.future, &self.url) {
                Some(Ok(response)) => Waited::Answered(response),
                Some(Err(e)) => Waited::Failed(e.to_string()),
                None => Waited::Ready,
            },
            _ => Waited::Idle,
        }
    }

    /// Moves up to `len` bytes from `source` into this upload, inside the host. Calls
    /// `progress` with each amount moved.
    pub async fn splice_from(
        &self,
        source: &BodyStream,
        len: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, SpliceError> {
        let out = self.stream.as_ref().expect("the stream lives until finish");
        let Some(input) = source.stream.as_ref() else {
            return Err(SpliceError::Source {
                transferred: 0,
                reason: "the response had no body".into(),
            });
        };
        let idle_secs = self.idle.as_secs_f32();
        let mut done = 0;
        // Bytes moved since this loop last gave control back. When both streams are always
        // ready (Node's shim), no splice returns 0 and no wait ever yields, so the loop
        // yields itself: at once when the slice's time is up, so that `advance` keeps its
        // budget and a cancel lands, and after TURN_BYTES otherwise, so that concurrent
        // transfers take turns instead of the first one running its whole blob alone.
        // Yielding never drops the transfer: the next poll, in this slice or the next
        // `advance`, carries on from the same byte.
        let mut turn = 0;
        while done < len {
            // Asked before each splice, and again after each yield, not after a splice: a
            // transfer polled once the slice is over (after another transfer's slow call,
            // or resuming from a yield in the same round) then starts no splice at all. It
            // still moves on, as no slice is over at its start (`host_latency`).
            while turn >= TURN_BYTES || slice_over() {
                turn = 0;
                yield_now().await;
            }
            // Each splice is timed: how long the host takes to answer tells the executor
            // how early to end the slice.
            let started = now();
            let spliced = out.splice(input, (len - done).min(SPLICE_CHUNK));
            note_host_call(now().saturating_sub(started));
            match spliced {
                Ok(0) if slice_over() => {
                    // No time left to set up a wait (four more host calls): splice again
                    // in the next slice instead.
                }
                Ok(0) => {
                    // Either side may be the one not ready; wait for room, then for data.
                    let full = out
                        .check_write()
                        .map_err(|e| SpliceError::Target(format!("{e:?}")))?
                        == 0;
                    let pollable = if full {
                        out.subscribe()
                    } else {
                        input.subscribe()
                    };
                    match self.wait_or_answer(pollable).await {
                        Waited::Ready => {}
                        Waited::Answered(response) => return Err(SpliceError::Answered(response)),
                        Waited::Failed(reason) => return Err(SpliceError::Target(reason)),
                        Waited::Idle if full => {
                            return Err(SpliceError::Target(format!(
                                "the registry took no data for {idle_secs}s"
                            )));
                        }
                        Waited::Idle => {
                            return Err(SpliceError::Source {
                                transferred: done,
                                reason: format!("the source sent nothing for {idle_secs}s"),
                            });
                        }
                    }
                }
                Ok(n) => {
                    done += n;
                    turn += n;
                    progress(n);
                }
                Err(e) => {
                    // A broken upload shows on its own stream; otherwise the source broke.
                    if let Err(target) = out.check_write() {
                        return Err(match take_response(&self.future, &self.url) {
                            Some(Ok(response)) => SpliceError::Answered(response),
                            _ => SpliceError::Target(format!("{target:?}")),
                        });
                    }
                    let reason = match e {
                        StreamError::Closed => "the source closed the connection early".into(),
                        StreamError::LastOperationFailed(io) => io.to_debug_string(),
                    };
                    return Err(SpliceError::Source {
                        transferred: done,
                        reason,
                    });
                }
            }
        }
        Ok(done)
    }

    /// Ends the body and waits for the registry's answer, for at most the idle timeout
    /// after the last byte.
    pub async fn finish(mut self) -> Result<Response, HttpError> {
        let idle_secs = self.idle.as_secs_f32();
        if let Some(stream) = self.stream.take() {
            // A registry may answer as soon as it has Content-Length bytes, closing the
            // stream under the flush; its answer, not the flush, says whether it worked.
            if stream.flush().is_ok() {
                match self.wait_or_answer(stream.subscribe()).await {
                    Waited::Answered(response) => return Ok(response),
                    Waited::Failed(reason) => return Err(HttpError::Transport(reason)),
                    Waited::Idle => {
                        return Err(HttpError::Transport(format!(
                            "the registry took no data for {idle_secs}s"
                        )));
                    }
                    Waited::Ready => {}
                }
            }
        }
        if let Some(body) = self.body.take() {
            OutgoingBody::finish(body, None).map_err(transport)?;
        }
        let idle = monotonic_clock::subscribe_duration(self.idle.as_nanos() as u64);
        if wait_any(vec![self.future.subscribe(), idle]).await != 0 {
            return Err(HttpError::Transport(format!(
                "no answer {idle_secs}s after the upload's last byte"
            )));
        }
        await_response(&self.future, &self.url).await
    }
}

/// What an upload's wait ended with.
enum Waited {
    Ready,
    Answered(Response),
    Failed(String),
    Idle,
}
