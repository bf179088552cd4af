//! A bandwidth cap for one import: every transfer reserves its next slice of bytes before
//! reading it from the source, so the import as a whole never reads faster than the cap.
//!
//! Reservations run on a virtual clock (`next_free`: when the bytes reserved so far are paid
//! for) rather than a token bucket, so that concurrent transfers queue behind each other
//! instead of each spending a bucket's worth at once: over any window of `t` seconds the
//! import reads at most `rate · t` plus one quantum and the small credit below.

use std::cell::Cell;

const NANOS: u128 = 1_000_000_000;
/// Time a reservation may start in the past: a sleep that wakes a little late would
/// otherwise lose that time for good, and the import would run below its cap.
const CREDIT_NS: u64 = 20_000_000;
/// The smallest slice worth a wait: below it the calls cost more than the bytes.
const MIN_QUANTUM: u64 = 16 << 10;

pub struct Throttle {
    /// Bytes per second.
    rate: u64,
    /// When, on the monotonic clock (ns), the bytes reserved so far are paid for.
    next_free: Cell<u64>,
}

impl Throttle {
    /// A cap of `rate` bytes per second (at least 1).
    pub fn new(rate: u64) -> Self {
        Self {
            rate: rate.max(1),
            next_free: Cell::new(0),
        }
    }

    /// How many bytes to read per reservation: a tenth of a second's worth, so that the
    /// cap holds over short windows and a transfer waits at most about that long.
    pub fn quantum(&self) -> u64 {
        (self.rate / 10).max(MIN_QUANTUM.min(self.rate))
    }

    /// Reserves `bytes` at `now` (monotonic ns); returns how long to wait before reading
    /// them.
    pub fn reserve(&self, bytes: u64, now: u64) -> u64 {
        let start = self.next_free.get().max(now.saturating_sub(CREDIT_NS));
        let cost = (u128::from(bytes) * NANOS / u128::from(self.rate)) as u64;
        self.next_free.set(start.saturating_add(cost));
        start.saturating_sub(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `transfers` readers that each reserve a quantum, wait, and "read" it at once,
    /// for `seconds`; returns the bytes read in every 5-second window's worst case.
    fn simulate(rate: u64, transfers: usize, seconds: u64) -> (u64, u64) {
        let throttle = Throttle::new(rate);
        let q = throttle.quantum();
        let end = seconds * 1_000_000_000;
        // Each reader's next wake-up time; reads logged as (time, bytes).
        let mut wake = vec![0u64; transfers];
        let mut reads = Vec::new();
        loop {
            let (i, &t) = wake.iter().enumerate().min_by_key(|(_, t)| **t).unwrap();
            if t >= end {
                break;
            }
            let wait = throttle.reserve(q, t);
            // A sleep wakes up to a millisecond late.
            let at = t + wait + if wait > 0 { 1_000_000 } else { 0 };
            reads.push((at, q));
            wake[i] = at;
        }
        let window = 5_000_000_000;
        let mut worst = 0;
        for &(start, _) in &reads {
            let n: u64 = reads
                .iter()
                .filter(|(t, _)| *t >= start && *t < start + window)
                .map(|(_, b)| b)
                .sum();
            worst = worst.max(n);
        }
        let total: u64 = reads.iter().filter(|(t, _)| *t < end).map(|(_, b)| b).sum();
        (worst, total)
    }

    #[test]
    fn the_cap_holds_within_ten_percent_over_five_seconds_with_concurrent_transfers() {
        for transfers in [1, 6] {
            let rate = 16 << 20;
            let (worst, total) = simulate(rate, transfers, 20);
            let cap = 5 * rate;
            assert!(
                worst <= cap + cap / 10,
                "{transfers}: {worst} > {cap} + 10%"
            );
            // And it does not run far below the cap either.
            assert!(
                total >= 20 * rate * 9 / 10,
                "{transfers}: only {total} in 20 s"
            );
        }
    }

    #[test]
    fn reservations_queue_and_idle_time_is_not_banked() {
        let t = Throttle::new(1000);
        assert_eq!(
            t.quantum(),
            1000,
            "a tiny cap reads at most its rate at once"
        );
        assert_eq!(t.reserve(500, 0), 0);
        // The next half second is taken: the next reservation waits for it.
        assert_eq!(t.reserve(500, 0), 500_000_000);
        // After a long idle spell only the small credit is left.
        let later = 100 * 1_000_000_000;
        assert_eq!(t.reserve(1000, later), 0);
        assert_eq!(t.reserve(1, later), 1_000_000_000 - CREDIT_NS);
    }
}
