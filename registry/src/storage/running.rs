//! The running digest of each upload session this process wrote from its first byte, so
//! that a commit need not read the data again. Both drivers keep one. After a restart, on
//! another replica, or when appends to one session overlapped, there is none for the
//! session and the commit reads the data.

use crate::digest::{Algorithm, Hasher};
use parking_lot::Mutex;
use std::collections::HashMap;

#[derive(Default)]
pub(super) struct RunningDigests(Mutex<HashMap<String, RunningDigest>>);

pub(super) struct RunningDigest {
    /// The bytes hashed so far; the digest is used only when the data has exactly these.
    len: u64,
    /// In sha256, which nearly every client commits with; a commit in another algorithm
    /// reads the data again.
    hasher: Hasher,
}

impl RunningDigest {
    pub(super) fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }
}

impl RunningDigests {
    /// The digest for an append that starts at byte `start`: the one kept, if it covers
    /// exactly the bytes before `start`; a fresh one for an empty session; else None,
    /// and the commit will read the data. Taken out while the append runs, so that an
    /// overlapping append finds none and gives up hashing.
    pub(super) fn take(&self, id: &str, start: u64) -> Option<RunningDigest> {
        let taken = self.0.lock().remove(id);
        taken.filter(|r| r.len == start).or_else(|| {
            (start == 0).then(|| RunningDigest {
                len: 0,
                hasher: Algorithm::Sha256.hasher(),
            })
        })
    }

    /// Keeps the digest after an append.
    pub(super) fn keep(&self, id: &str, running: RunningDigest) {
        self.0.lock().insert(id.to_owned(), running);
    }

    pub(super) fn forget(&self, id: &str) {
        self.0.lock().remove(id);
    }

    /// The session's digest in `algorithm`, if this process hashed exactly its `len`
    /// bytes; forgets it either way.
    pub(super) fn finish(&self, id: &str, len: u64, algorithm: Algorithm) -> Option<String> {
        let running = self.0.lock().remove(id)?;
        (running.len == len && running.hasher.algorithm() == algorithm)
            .then(|| running.hasher.finish())
    }
}
