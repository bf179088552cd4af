//! Requests the host makes itself, not for the plugin: pulling the plugin artifact,
//! POSTing a sync rule's webhook. They go through the same pooled client as imports, so
//! the egress policy is checked on the address dialled, and a slow or huge answer is cut
//! off.

use crate::boundary::client::{Clients, policy_denial};
use anyhow::{Result, anyhow};
use bytes::Bytes;
use hoist_plugin::url::Url;
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::BodyExt as _;
use std::time::Duration;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A response, its body read in full.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One request of the host's own through the pooled client: its connector checks the egress policy on the
/// address it dials, and the registry's extra CAs apply.
pub async fn send(
    clients: &Clients,
    method: Method,
    url: &Url,
    headers: &[(header::HeaderName, String)],
    authorization: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Response> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url.to_string())
        .header(header::USER_AGENT, "hoist-host");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(value) = authorization {
        let mut value = http::HeaderValue::from_str(value)?;
        value.set_sensitive(true);
        request = request.header(header::AUTHORIZATION, value);
    }
    let body = http_body_util::Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let request = request.body(body)?;
    let client = clients.for_authority(&url.authority).clone();
    let response = tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
        .await
        .map_err(|_| anyhow!("{} did not answer in time", url.redacted()))?
        .map_err(|e| match policy_denial(&e) {
            Some(denied) => anyhow!("{denied}"),
            None => anyhow!("cannot reach {}: {e}", url.redacted()),
        })?;
    let (parts, incoming) = response.into_parts();
    let body = tokio::time::timeout(
        REQUEST_TIMEOUT,
        http_body_util::Limited::new(incoming, limit.max(64 << 10)).collect(),
    )
    .await
    .map_err(|_| anyhow!("{} stalled while sending its answer", url.redacted()))?
    .map_err(|e| anyhow!("reading the answer of {}: {e}", url.redacted()))?
    .to_bytes();
    Ok(Response {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
