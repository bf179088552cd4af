//! Tokens already told that their scope is too narrow for a request.
//!
//! A token that lacks a scope gets 401 with `error="insufficient_scope"`, as distribution
//! answers and as the token spec and containerd expect: the client fetches a token for
//! the challenged scope and retries. Some clients do not: the Python `oras` package
//! (0.2.43) answers a 401 by sending the token it holds once more, and fetches a new one
//! only after a 403. So the second refusal of the same token for the same scope within a
//! minute is a 403 `DENIED` carrying the same challenge: a client that follows the spec
//! never sees it, and one that repeats itself is told to stop.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a refusal is remembered.
const REMEMBER: Duration = Duration::from_secs(60);
/// Refusals remembered at most; beyond it, expired ones are dropped, then all.
const CAPACITY: usize = 4096;

#[derive(Clone, Default)]
pub struct NarrowTokens {
    refused: Arc<Mutex<HashMap<(String, String), Instant>>>,
}

impl NarrowTokens {
    /// Records that the token `jti` was refused `scope`; true if it already was, recently.
    pub fn refused_again(&self, jti: &str, scope: &str) -> bool {
        self.refused_again_at(jti, scope, Instant::now())
    }

    fn refused_again_at(&self, jti: &str, scope: &str, now: Instant) -> bool {
        let mut refused = self.refused.lock();
        let key = (jti.to_owned(), scope.to_owned());
        let again = refused
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < REMEMBER);
        if !again && refused.len() >= CAPACITY {
            refused.retain(|_, at| now.duration_since(*at) < REMEMBER);
            if refused.len() >= CAPACITY {
                refused.clear();
            }
        }
        refused.insert(key, now);
        again
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_refusal_of_a_token_for_a_scope_is_known() {
        let narrow = NarrowTokens::default();
        let start = Instant::now();
        assert!(!narrow.refused_again_at("t1", "repository:a:push", start));
        assert!(narrow.refused_again_at("t1", "repository:a:push", start));
        // Another token, another scope: first refusals.
        assert!(!narrow.refused_again_at("t2", "repository:a:push", start));
        assert!(!narrow.refused_again_at("t1", "repository:b:push", start));
        // Forgotten after a while: a 401 again.
        let later = start + REMEMBER + Duration::from_secs(1);
        assert!(!narrow.refused_again_at("t1", "repository:a:push", later));
    }

    #[test]
    fn memory_stays_bounded() {
        let narrow = NarrowTokens::default();
        let now = Instant::now();
        for i in 0..CAPACITY * 3 {
            narrow.refused_again_at(&i.to_string(), "s", now);
        }
        assert!(narrow.refused.lock().len() <= CAPACITY);
    }
}
