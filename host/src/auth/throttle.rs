//! Back-off for failed password checks (Basic, `/token`, the UI's sign-in), so that
//! guessing the admin's password or a robot's secret costs time.
//!
//! Failures are counted per source address and per account *from that source*: a few
//! are free (typos), then each further attempt from there must wait, twice as long each
//! time up to a cap. Counting an account's failures from every source together would let
//! anyone lock the admin out by failing on purpose; this way the admin, from an address
//! that has not failed, always gets in, and a source that guesses is slowed whichever
//! account it tries. Memory is bounded: quiet entries are forgotten.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Failures from one source, for any account, before it must wait.
const FREE_PER_SOURCE: u32 = 20;
/// Failures for one account from one source before it must wait.
const FREE_PER_ACCOUNT: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);
/// An entry this quiet is forgotten, and its count starts again.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Entries kept at most; past it, the quiet ones are dropped first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Source(IpAddr),
    Account(IpAddr, String),
}

struct Entry {
    failures: u32,
    last: Instant,
}

#[derive(Clone, Default)]
pub struct Throttle {
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
}

impl Throttle {
    /// Whether `account` may be checked now for a caller at `peer`; else how long to wait.
    /// Callers with no known address (in-process) are not throttled.
    pub fn check(&self, peer: Option<IpAddr>, account: &str) -> Result<(), Duration> {
        self.check_at(peer, account, Instant::now())
    }

    pub fn failed(&self, peer: Option<IpAddr>, account: &str) {
        self.failed_at(peer, account, Instant::now());
    }

    /// A right password clears its account's count from that source.
    pub fn succeeded(&self, peer: Option<IpAddr>, account: &str) {
        if let Some(ip) = peer {
            self.entries
                .lock()
                .remove(&Key::Account(ip, account.to_owned()));
        }
    }

    fn check_at(&self, peer: Option<IpAddr>, account: &str, now: Instant) -> Result<(), Duration> {
        let Some(ip) = peer else { return Ok(()) };
        let entries = self.entries.lock();
        let wait = [
            (Key::Source(ip), FREE_PER_SOURCE),
            (Key::Account(ip, account.to_owned()), FREE_PER_ACCOUNT),
        ]
        .into_iter()
        .filter_map(|(key, free)| {
            let entry = entries.get(&key)?;
            let since = now.saturating_duration_since(entry.last);
            if since >= FORGET_AFTER {
                return None;
            }
            let over = entry.failures.checked_sub(free)?;
            let wait = FIRST_WAIT
                .saturating_mul(2u32.saturating_pow(over))
                .min(MAX_WAIT);
            wait.checked_sub(since).filter(|left| !left.is_zero())
        })
        .max();
        wait.map_or(Ok(()), Err)
    }

    fn failed_at(&self, peer: Option<IpAddr>, account: &str, now: Instant) {
        let Some(ip) = peer else { return };
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now.saturating_duration_since(e.last) < FORGET_AFTER);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        for key in [Key::Source(ip), Key::Account(ip, account.to_owned())] {
            let entry = entries.entry(key).or_insert(Entry {
                failures: 0,
                last: now,
            });
            if now.saturating_duration_since(entry.last) >= FORGET_AFTER {
                entry.failures = 0;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn a_guessing_source_waits_longer_each_time_and_others_do_not() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..FREE_PER_ACCOUNT {
            assert_eq!(t.check_at(A, "admin", now), Ok(()));
            t.failed_at(A, "admin", now);
        }
        // The free tries are used up: the next waits, twice as long after each failure.
        assert_eq!(t.check_at(A, "admin", now), Err(FIRST_WAIT));
        t.failed_at(A, "admin", now);
        assert_eq!(t.check_at(A, "admin", now), Err(FIRST_WAIT * 2));
        assert_eq!(
            t.check_at(A, "admin", now + FIRST_WAIT * 2),
            Ok(()),
            "the wait ends"
        );
        // The admin from another address is not held back, nor is another account.
        assert_eq!(t.check_at(B, "admin", now), Ok(()));
        assert_eq!(t.check_at(A, "robot$ci", now), Ok(()));
        // A right password clears the account's count from that source.
        t.succeeded(A, "admin");
        assert_eq!(t.check_at(A, "admin", now), Ok(()));
        // In-process callers have no address and are never throttled.
        t.failed_at(None, "admin", now);
        assert_eq!(t.check_at(None, "admin", now), Ok(()));
    }

    #[test]
    fn a_source_trying_many_accounts_is_slowed_and_waits_are_capped() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..FREE_PER_SOURCE {
            t.failed_at(A, &format!("robot$r{i}"), now);
        }
        assert_eq!(t.check_at(A, "robot$new", now), Err(FIRST_WAIT));
        for i in 0..40 {
            t.failed_at(A, &format!("robot$x{i}"), now);
        }
        assert_eq!(t.check_at(A, "robot$new", now), Err(MAX_WAIT));
        assert_eq!(
            t.check_at(A, "robot$new", now + FORGET_AFTER),
            Ok(()),
            "quiet sources are forgiven"
        );
    }
}
