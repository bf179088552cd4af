//! How fast imports may talk to each source registry, and what quota it says is left.
//!
//! Per endpoint (`host[:port]`, a registry's API host or one of its mirrors) the admin may
//! set a ceiling on requests per second and on requests in flight; a request waits for
//! its turn here, in the host, so every import and sync run in the process shares one
//! budget, and the plugin needs to know nothing of it. Every response's
//! `RateLimit-Remaining`/`RateLimit-Limit` (Docker Hub's `76;w=21600` form) is noted, so
//! that scheduled sync can stop before it spends the quota below the admin's floor.

use hoist_common::clock::now_ms;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// What one endpoint allows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limits {
    /// Requests started per second, spaced evenly.
    pub requests_per_second: Option<f64>,
    /// Requests whose response has not been read to its end.
    pub max_in_flight: Option<usize>,
}

/// The quota an endpoint last reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub endpoint: String,
    pub remaining: u64,
    pub limit: Option<u64>,
    /// The window the quota counts over, in seconds (Docker Hub: 21600, six hours).
    pub window_seconds: Option<u64>,
    /// When the response that said so arrived (ms since the epoch).
    pub seen_ms: i64,
}

#[derive(Default)]
struct Endpoint {
    /// The earliest moment the next request may start.
    next_start: Option<Instant>,
    in_flight: Option<Arc<Semaphore>>,
    quota: Option<Quota>,
    /// When a 429's `Retry-After` said to come back (ms since the epoch).
    resume_at_ms: Option<i64>,
}

/// The limits of every endpoint, and what each has said of its quota.
#[derive(Default)]
pub struct Pacing {
    limits: HashMap<String, Limits>,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    /// Blob downloads in flight across every source, import and sync run of the host.
    transfers: Option<Arc<Semaphore>>,
}

impl Pacing {
    /// `limits` by endpoint authority (`host[:port]`, any case).
    pub fn new(limits: HashMap<String, Limits>) -> Self {
        Self {
            limits: limits
                .into_iter()
                .map(|(authority, l)| (authority.to_ascii_lowercase(), l))
                .collect(),
            endpoints: Mutex::default(),
            transfers: None,
        }
    }

    /// Caps the blob downloads in flight across the host at `n`, as dockerd's
    /// `max-concurrent-downloads` does. Each transfer holds a few hundred KiB of buffers
    /// from the network to the disk; ten imports of six transfers each took the host to
    /// 190 MiB or more, and on a machine of a few cores the bytes arrive no faster for
    /// more of them at once: they wait on the digest and the disk.
    pub fn with_max_transfers(mut self, n: usize) -> Self {
        self.transfers = Some(Arc::new(Semaphore::new(n.max(1))));
        self
    }

    /// Waits for a place among the host's blob downloads, to be held until the body has
    /// been read; None when there is no cap.
    pub(crate) async fn admit_transfer(&self) -> Option<OwnedSemaphorePermit> {
        let transfers = self.transfers.clone()?;
        Some(transfers.acquire_owned().await.expect("never closed"))
    }

    /// Waits until a request to `authority` may start. The permit, when the endpoint caps
    /// requests in flight, is to be held until the response's body has been read.
    pub(crate) async fn admit(&self, authority: &str) -> Option<OwnedSemaphorePermit> {
        let authority = authority.to_ascii_lowercase();
        let limits = *self.limits.get(&authority)?;
        let permit = match limits.max_in_flight {
            Some(n) => {
                let semaphore = self
                    .endpoints
                    .lock()
                    .entry(authority.clone())
                    .or_default()
                    .in_flight
                    .get_or_insert_with(|| Arc::new(Semaphore::new(n.max(1))))
                    .clone();
                Some(semaphore.acquire_owned().await.expect("never closed"))
            }
            None => None,
        };
        if let Some(rate) = limits.requests_per_second.filter(|r| *r > 0.0) {
            let start = {
                let mut endpoints = self.endpoints.lock();
                let endpoint = endpoints.entry(authority).or_default();
                let now = Instant::now();
                let start = endpoint.next_start.map_or(now, |next| next.max(now));
                // A rate so small that its gap overflows waits an hour between requests.
                let gap = Duration::try_from_secs_f64(1.0 / rate)
                    .unwrap_or(Duration::MAX)
                    .min(Duration::from_secs(3600));
                endpoint.next_start = Some(start + gap);
                start
            };
            tokio::time::sleep_until(start).await;
        }
        permit
    }

    /// Notes the quota a response from `authority` reports, and when a 429 said to come
    /// back.
    pub(crate) fn observe(
        &self,
        authority: &str,
        status: http::StatusCode,
        headers: &http::HeaderMap,
    ) {
        let quota = quota_of(headers);
        let resume_at = (status == http::StatusCode::TOO_MANY_REQUESTS)
            .then(|| retry_after_secs(headers))
            .flatten()
            .map(|secs| now_ms().saturating_add(secs.saturating_mul(1000)));
        if quota.is_none() && resume_at.is_none() {
            return;
        }
        let authority = authority.to_ascii_lowercase();
        let mut endpoints = self.endpoints.lock();
        let endpoint = endpoints.entry(authority.clone()).or_default();
        if let Some(mut quota) = quota {
            quota.endpoint = authority;
            endpoint.quota = Some(quota);
        }
        if resume_at.is_some() {
            endpoint.resume_at_ms = resume_at;
        }
    }

    /// When `authority` last asked, with a 429, to be left alone until.
    pub(crate) fn resume_at_ms(&self, authority: &str) -> Option<i64> {
        self.endpoints
            .lock()
            .get(&authority.to_ascii_lowercase())?
            .resume_at_ms
    }

    /// What `authority` last said of its quota.
    pub(crate) fn quota(&self, authority: &str) -> Option<Quota> {
        self.endpoints
            .lock()
            .get(&authority.to_ascii_lowercase())?
            .quota
            .clone()
    }
}

/// `Retry-After` in seconds (its HTTP-date form is rare from registries).
fn retry_after_secs(headers: &http::HeaderMap) -> Option<i64> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads `RateLimit-Remaining` (and `RateLimit-Limit`), as a bare number or in Docker
/// Hub's `<n>;w=<seconds>` form.
fn quota_of(headers: &http::HeaderMap) -> Option<Quota> {
    // The number, and the `w=` window when one is given.
    let read = |name: &str| -> Option<(u64, Option<u64>)> {
        let value = headers.get(name)?.to_str().ok()?;
        let mut parts = value.split([';', ',']).map(str::trim);
        let n = parts.next()?.parse().ok()?;
        let window = parts.find_map(|p| p.strip_prefix("w=")?.parse().ok());
        Some((n, window))
    };
    let (remaining, window) = read("ratelimit-remaining")?;
    let limit = read("ratelimit-limit");
    Some(Quota {
        endpoint: String::new(),
        remaining,
        limit: limit.map(|(n, _)| n),
        window_seconds: window.or(limit.and_then(|(_, w)| w)),
        seen_ms: now_ms(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn docker_hubs_and_bare_quota_headers_are_read() {
        let q = quota_of(&headers(&[
            ("ratelimit-limit", "100;w=21600"),
            ("ratelimit-remaining", "76;w=21600"),
        ]))
        .unwrap();
        assert_eq!(
            (q.remaining, q.limit, q.window_seconds),
            (76, Some(100), Some(21600))
        );
        let q = quota_of(&headers(&[("RateLimit-Remaining", " 3 ")])).unwrap();
        assert_eq!((q.remaining, q.limit, q.window_seconds), (3, None, None));
        assert_eq!(quota_of(&headers(&[("ratelimit-remaining", "many")])), None);
        assert_eq!(quota_of(&headers(&[("ratelimit-limit", "100")])), None);
    }

    #[test]
    fn a_429s_retry_after_is_remembered_per_endpoint() {
        let pacing = Pacing::default();
        let before = now_ms();
        let h = headers(&[
            ("retry-after", "3600"),
            ("ratelimit-remaining", "0;w=21600"),
        ]);
        pacing.observe("hub:443", http::StatusCode::OK, &h);
        assert_eq!(
            pacing.resume_at_ms("hub:443"),
            None,
            "only a 429 asks to wait"
        );
        assert_eq!(pacing.quota("HUB:443").unwrap().remaining, 0);
        pacing.observe("hub:443", http::StatusCode::TOO_MANY_REQUESTS, &h);
        let at = pacing.resume_at_ms("hub:443").unwrap();
        assert!(
            (before + 3_600_000..before + 3_700_000).contains(&at),
            "{at}"
        );
        assert_eq!(pacing.resume_at_ms("other:443"), None);
    }

    #[tokio::test]
    async fn requests_are_spaced_to_the_ceiling_and_capped_in_flight() {
        let pacing = Pacing::new(HashMap::from([(
            "Hub:443".to_owned(),
            Limits {
                requests_per_second: Some(20.0),
                max_in_flight: Some(1),
            },
        )]));
        let first = pacing.admit("hub:443").await;
        assert!(first.is_some(), "a capped endpoint hands out a permit");
        let second =
            tokio::time::timeout(Duration::from_millis(100), pacing.admit("hub:443")).await;
        assert!(
            second.is_err(),
            "a second request waits while one is in flight"
        );
        drop(first);
        let start = Instant::now();
        for _ in 0..5 {
            drop(pacing.admit("hub:443").await);
        }
        // 20 per second: five starts span at least four gaps of 50 ms.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        let start = Instant::now();
        assert!(
            pacing.admit("other:443").await.is_none(),
            "no limits, no wait"
        );
        assert!(start.elapsed() < Duration::from_millis(20));

        // A ceiling too small to space by does not overflow: the first request goes.
        let slow = Pacing::new(HashMap::from([(
            "slow:443".to_owned(),
            Limits {
                requests_per_second: Some(1e-300),
                max_in_flight: None,
            },
        )]));
        assert!(slow.admit("slow:443").await.is_none());
        let next = tokio::time::timeout(Duration::from_millis(50), slow.admit("slow:443")).await;
        assert!(next.is_err(), "the next one waits");
    }
}
