//! The small things every Hoist crate needs exactly one way of doing: reading the clock,
//! making random ids, and keeping a key file that only its owner can read.

pub mod clock;
pub mod keyfile;
pub mod random;

/// Bytes as lowercase hex (ids, digests, cache names).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(super::hex(&[0, 15, 255]), "000fff");
    }
}
