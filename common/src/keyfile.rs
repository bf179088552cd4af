//! Key files in the data folder (the token signing key, the key that seals credentials):
//! made on the first start, readable by their owner only, and never silently replaced,
//! because replacing one revokes every token or loses every sealed credential.

use std::io::Write as _;
use std::path::Path;

/// Reads the key at `path`, or makes one of `len` random bytes there on the first start.
/// A key whose length is outside `lengths` is an error that tells the admin what to do:
/// `on_wrong_length` is that sentence.
pub fn load_or_create(
    path: &Path,
    len: usize,
    lengths: impl std::ops::RangeBounds<usize>,
    on_wrong_length: &str,
) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) if lengths.contains(&key.len()) => Ok(key),
        Ok(key) => Err(std::io::Error::other(format!(
            "{} holds {} bytes, not a usable key of {len} bytes; {on_wrong_length}",
            path.display(),
            key.len()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; len];
            crate::random::fill(&mut key);
            write_private(path, &key, true)?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path`, readable and writable by the owner only, and syncs it.
/// With `new_only`, an existing file is an error rather than overwritten.
pub fn write_private(path: &Path, bytes: &[u8], new_only: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if new_only {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let first = load_or_create(&path, 32, 32..=32, "delete it").unwrap();
        assert_eq!(load_or_create(&path, 32, 32.., "delete it").unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = load_or_create(&path, 16, 16..=16, "restore it")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("holds 32 bytes") && err.contains("restore it"),
            "{err}"
        );
        assert!(
            write_private(&path, b"x", true).is_err(),
            "never replaced silently"
        );
    }
}
