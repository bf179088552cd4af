//! A fault-injecting proxy in front of a real registry: it forwards every request and
//! misbehaves in the one way a test asks for. The registry behind it does the real work.

use crate::serve;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum ProxyFault {
    /// None: the proxy only forwards and counts (a counting proxy).
    None,
    /// While armed ([`FaultProxy::arm_rate_limit`]), manifest requests answer 429 with
    /// `Retry-After: <seconds>`, Docker Hub style quota headers, and no upstream call.
    RateLimitManifests { retry_after_secs: u32 },
    /// The first request that completes an upload (a PUT with `?digest=`) reaches the
    /// registry, but its answer is held back this long, as if lost on the way.
    DelayFirstUploadCompletion(Duration),
    /// Every blob `GET` is answered this much later, so that a copy is reliably caught
    /// halfway (a restart during a run).
    DelayBlobs(Duration),
    /// Docker Hub's quota: every manifest answer says what is left (`ratelimit-remaining:
    /// <n>;w=21600`), and every manifest `GET` uses up one pull; HEADs are free. What is
    /// left is set with [`FaultProxy::set_quota`].
    Quota { limit: u32 },
}

struct Inner {
    upstream: String,
    fault: ProxyFault,
    completions: AtomicUsize,
    /// How many more manifest requests answer 429 under `RateLimitManifests`.
    rate_limited: AtomicUsize,
    /// Method, path and status of every forwarded request.
    log: Mutex<Vec<(String, String, u16)>>,
    /// When each request arrived.
    arrivals: Mutex<Vec<std::time::Instant>>,
    /// The pulls left under `Quota`.
    quota: AtomicUsize,
}

pub struct FaultProxy {
    pub port: u16,
    inner: Arc<Inner>,
}

impl FaultProxy {
    /// Starts a proxy for the registry at `upstream` (`host:port`).
    pub fn start(upstream: &str, fault: ProxyFault) -> Self {
        let inner = Arc::new(Inner {
            upstream: upstream.to_owned(),
            fault,
            completions: AtomicUsize::new(0),
            rate_limited: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            arrivals: Mutex::new(Vec::new()),
            quota: AtomicUsize::new(match fault {
                ProxyFault::Quota { limit } => limit as usize,
                _ => 0,
            }),
        });
        let app = Router::new().fallback(forward).with_state(inner.clone());
        Self {
            port: serve(app),
            inner,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Method, path and status of every request so far.
    pub fn log(&self) -> Vec<(String, String, u16)> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn clear_log(&self) {
        self.inner.log.lock().unwrap().clear();
    }

    /// When each request so far arrived.
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.inner.arrivals.lock().unwrap().clone()
    }

    /// Under `Quota`, the pulls left from now.
    pub fn set_quota(&self, pulls: usize) {
        self.inner.quota.store(pulls, Ordering::SeqCst);
    }

    /// Under `RateLimitManifests`, the next `n` manifest requests answer 429.
    pub fn arm_rate_limit(&self, n: usize) {
        self.inner.rate_limited.store(n, Ordering::SeqCst);
    }
}

async fn forward(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    inner
        .arrivals
        .lock()
        .unwrap()
        .push(std::time::Instant::now());
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let method = parts.method.to_string();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.to_string());
    let completion =
        method == "PUT" && path.contains("/blobs/uploads/") && path.contains("digest=");
    let blob_get = method == "GET" && path.contains("/blobs/sha256:");
    let manifest = path.contains("/manifests/");
    let pull = manifest && method == "GET";
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-length" | "connection"))
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    if let ProxyFault::RateLimitManifests { retry_after_secs } = inner.fault
        && path.contains("/manifests/")
        && inner
            .rate_limited
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        inner.log.lock().unwrap().push((method, path, 429));
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#,
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert("retry-after", HeaderValue::from(retry_after_secs));
        headers.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
        headers.insert("ratelimit-remaining", HeaderValue::from_static("0;w=21600"));
        return response;
    }
    let for_upstream = inner.clone();
    let (method_c, path_c) = (method.clone(), path.clone());
    let answer = tokio::task::spawn_blocking(move || {
        upstream_call(&for_upstream.upstream, &method_c, &path_c, &headers, &body)
    })
    .await
    .unwrap();
    let (status, headers, body) = match answer {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, e).into_response(),
    };
    inner.log.lock().unwrap().push((method, path, status));
    match inner.fault {
        ProxyFault::DelayFirstUploadCompletion(delay)
            if completion && inner.completions.fetch_add(1, Ordering::SeqCst) == 0 =>
        {
            tokio::time::sleep(delay).await;
        }
        ProxyFault::DelayBlobs(delay) if blob_get => {
            tokio::time::sleep(delay).await;
        }
        _ => {}
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    if let ProxyFault::Quota { limit } = inner.fault
        && manifest
    {
        let left = if pull {
            let before = inner
                .quota
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    Some(n.saturating_sub(1))
                });
            before.unwrap_or(0).saturating_sub(1)
        } else {
            inner.quota.load(Ordering::SeqCst)
        };
        let headers = response.headers_mut();
        headers.insert(
            "ratelimit-limit",
            format!("{limit};w=21600").parse().unwrap(),
        );
        headers.insert(
            "ratelimit-remaining",
            format!("{left};w=21600").parse().unwrap(),
        );
    }
    // Absolute Locations name the registry; clients must come back through here.
    let proxy_host = host_of(&parts.headers);
    for (k, v) in headers {
        if matches!(
            k.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        let v = v.replace(&inner.upstream, &proxy_host);
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            response.headers_mut().append(k, v);
        }
    }
    response
}

fn host_of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

fn upstream_call(
    upstream: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &Bytes,
) -> Result<Answer, String> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut req = agent.request(method, &format!("http://{upstream}{path}"));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let response = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .flat_map(|name| {
            response
                .all(&name)
                .into_iter()
                .map(|v| (name.clone(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut bytes = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok((status, headers, bytes))
}
