//! The wall clock, as Hoist records it: integer milliseconds since the Unix epoch where
//! times are compared (the garbage collector, leases), RFC 3339 where people read them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now. The one read of the wall clock that everything else here derives from; a time
/// compared with a file's modification time is taken as this.
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// The time `age` before now, or the epoch if that is before it: a cutoff for what was
/// last touched longer ago than `age`.
pub fn ago(age: Duration) -> SystemTime {
    now().checked_sub(age).unwrap_or(UNIX_EPOCH)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    ms_of(now())
}

/// Seconds since the epoch, now (token claims).
pub fn now_secs() -> u64 {
    now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A time as milliseconds since the epoch; times before it count as the epoch.
pub fn ms_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Now, as RFC 3339 in UTC to the second: `2026-12-01T07:33:52Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(now()).to_string()
}

/// Now, as RFC 3339 in UTC to the millisecond: `2026-12-01T07:33:52.123Z`.
pub fn now_rfc3339_millis() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Milliseconds since the epoch as RFC 3339 in UTC to the second.
pub fn rfc3339_of_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses RFC 3339 (as [`now_rfc3339`] and [`now_rfc3339_millis`] write it) into
/// milliseconds since the epoch: a waiting task's time to run again, read back.
pub fn ms_of_rfc3339(s: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(s).ok().map(ms_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_between_their_two_forms() {
        assert_eq!(rfc3339_of_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_of_ms(-5),
            "1970-01-01T00:00:00Z",
            "no time before the epoch"
        );
        let ms = 1_796_197_632_000;
        assert_eq!(ms_of_rfc3339(&rfc3339_of_ms(ms)), Some(ms));
        assert!(ms_of_rfc3339("yesterday").is_none());
        assert!(now_ms() > ms_of_rfc3339("2026-01-01T00:00:00Z").unwrap());
        let precise = now_rfc3339_millis();
        assert!(precise.contains('.'), "{precise}");
        assert!(ms_of_rfc3339(&precise).is_some(), "{precise}");
        assert!(ago(Duration::from_secs(60)) < now());
        assert_eq!(ago(Duration::MAX), UNIX_EPOCH, "no time before the epoch");
    }
}
