//! Credentials at rest: a task's source credentials must outlive a restart of the host
//! (its task continues), yet never appear in the task record or in the database in the
//! clear. They are sealed with ChaCha20-Poly1305 under a key kept in the data folder,
//! apart from the database, and deleted when their task no longer needs them.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::Path;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl SecretBox {
    /// Loads the key from `path`, creating it (readable by its owner only) on the first
    /// start.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let key = hoist_common::keyfile::load_or_create(
            path,
            KEY_LEN,
            KEY_LEN..=KEY_LEN,
            "restore it from a backup (deleting it loses the credentials of queued imports)",
        )?;
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// Seals `plain`: a random nonce, then the ciphertext and its tag.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = hoist_common::random::bytes();
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("sealing a small buffer cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// Opens what [`SecretBox::seal`] sealed; None when it was tampered with or sealed
    /// under another key.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher.decrypt(Nonce::from_slice(nonce), body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_hide_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let a = SecretBox::load_or_create(&path).unwrap();
        let sealed = a.seal(b"user:hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"user:hunter2");
        assert_ne!(a.seal(b"x"), a.seal(b"x"), "fresh nonces");

        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(a.open(&tampered).is_none());
        let other = SecretBox::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(other.open(&sealed).is_none());
        assert!(a.open(b"short").is_none());
    }
}
