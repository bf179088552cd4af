//! When to try a request again, and how long to wait first: exponential backoff with full
//! jitter, bounded, and `Retry-After` honoured when the server gives one.

use std::time::Duration;

/// The default number of attempts after the first.
pub const DEFAULT_RETRIES: u32 = 5;
const BASE: Duration = Duration::from_millis(200);
const CAP: Duration = Duration::from_secs(30);
/// A server may not make us wait longer than this for one retry, unless the request
/// allows longer (`options.max-retry-wait-ms`).
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);

/// Whether an HTTP status is worth another attempt.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..=599).contains(&status) && status != 501
}

/// The wait before retry number `attempt` (1 for the first retry). `random` is a uniform
/// value in [0, 1) that spreads clients out (full jitter); `retry_after` is what the server
/// asked for and takes precedence.
pub fn delay(attempt: u32, random: f64, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(RETRY_AFTER_CAP);
    }
    let exp = BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let ceiling = exp.min(CAP);
    // Never zero: a storm of immediate retries is what backoff exists to prevent.
    ceiling.mul_f64(random.clamp(0.0, 1.0)).max(BASE / 4)
}

/// Whether a server's `Retry-After` is short enough (at most `cap`) to wait for here. A
/// longer one (an exhausted pull quota) ends the request at once as rate-limited: whoever
/// runs the import then waits in the open (a task or sync run shows `waiting` until then)
/// rather than behind a request that seems to hang.
pub fn worth_waiting(retry_after: Option<Duration>, cap: Duration) -> bool {
    retry_after.is_none_or(|wait| wait <= cap)
}

/// Parses `Retry-After` in its delta-seconds form. The HTTP-date form is rare from
/// registries; it falls back to ordinary backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 416, 501] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(delay(1, 0.999_999, None).as_millis(), 199);
        assert_eq!(delay(3, 0.999_999, None).as_millis(), 799);
        assert!(delay(30, 0.999_999, None) <= CAP);
        assert_eq!(delay(4, 0.0, None), BASE / 4, "never zero");
    }

    #[test]
    fn retry_after_wins_within_a_cap() {
        assert_eq!(
            delay(1, 0.5, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            delay(1, 0.5, Some(Duration::from_secs(3600))),
            RETRY_AFTER_CAP
        );
        let cap = RETRY_AFTER_CAP;
        assert!(worth_waiting(None, cap) && worth_waiting(Some(cap), cap));
        assert!(!worth_waiting(Some(cap + Duration::from_secs(1)), cap));
        // A request may allow less.
        assert!(!worth_waiting(
            Some(Duration::from_secs(3)),
            Duration::from_secs(1)
        ));
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
