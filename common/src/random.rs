//! Random values from the operating system: ids that must not collide and secrets that
//! must not be guessed. The OS's generator is the only source, so there is no seeding to
//! get wrong.

/// `N` random bytes. Panics only when the OS has no randomness, which no host Hoist runs
/// on lacks; there is nothing sensible to do without it.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

/// Fills `out` with random bytes; panics as [`bytes`] does.
pub fn fill(out: &mut [u8]) {
    getrandom::fill(out).expect("the OS provides randomness");
}

/// A new id: 128 random bits as 32 lowercase hex digits.
pub fn id() -> String {
    crate::hex(&bytes::<16>())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_hex_and_differ() {
        let (a, b) = (super::id(), super::id());
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
