//! Content digests in the two algorithms the OCI image spec registers: sha256, which
//! every client uses, and sha512, which the distribution spec's conformance workflows
//! push and pull. A digest is `<algorithm>:<lowercase hex>` of the algorithm's length.

use sha2::{Digest as _, Sha256, Sha512};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub(crate) const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// The algorithm's name as digests spell it, which is also its folder in the store.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    pub fn by_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// How many hex digits a digest of this algorithm has.
    pub(crate) fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// The digest of `bytes` in this algorithm.
    pub fn digest(self, bytes: &[u8]) -> String {
        let mut h = self.hasher();
        h.update(bytes);
        h.finish()
    }
}

/// Splits a well-formed digest into its algorithm and hex digits; None for anything else
/// (an unknown algorithm, the wrong length, uppercase hex).
pub fn parse(digest: &str) -> Option<(Algorithm, &str)> {
    let (name, hex) = digest.split_once(':')?;
    let algorithm = Algorithm::by_name(name)?;
    (hex.len() == algorithm.hex_len()
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then_some((algorithm, hex))
}

/// A running digest.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// The digest, spelt `<algorithm>:<hex>`.
    pub fn finish(self) -> String {
        let algorithm = self.algorithm().name();
        match self {
            Hasher::Sha256(h) => format!("{algorithm}:{:x}", h.finalize()),
            Hasher::Sha512(h) => format!("{algorithm}:{:x}", h.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_algorithms_hash_and_parse_their_own_length_only() {
        let d256 = Algorithm::Sha256.digest(b"");
        let d512 = Algorithm::Sha512.digest(b"");
        assert_eq!(
            d256,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(d512.starts_with("sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83"));
        assert_eq!(parse(&d256).map(|(a, _)| a), Some(Algorithm::Sha256));
        assert_eq!(parse(&d512).map(|(a, _)| a), Some(Algorithm::Sha512));
        for bad in [
            format!("sha512:{}", "a".repeat(64)),
            format!("sha256:{}", "a".repeat(128)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha384:{}", "a".repeat(96)),
            "sha256".to_owned(),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
