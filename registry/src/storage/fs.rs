//! The filesystem driver: content-addressed blobs on local disk (DESIGN.md §4).
//!
//! Committed blobs live at `blobs/<algorithm>/<2 hex>/<hex>` (sha256 or sha512). Uploads are written under
//! `uploads/<id>/data` and only become visible by a rename after their digest has been
//! verified and their data fsynced, so a reader never sees a partial blob, and a crash
//! leaves either nothing or the whole blob. Upload sessions are plain files, so they
//! survive a restart of the host.

use super::appender::{AlignedBuf, Appender};
use super::running::{RunningDigest, RunningDigests};
use super::{BlobRead, CommitError, Storage};
use crate::digest::{self, Algorithm};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Appends gather request frames into pieces this large before writing them: large
/// enough for the disk to take at full speed (direct writes of 256 KiB ran as fast as
/// 1 MiB here), small enough that tens of concurrent uploads hold little memory.
const WRITE_CHUNK: usize = 256 << 10;

/// Blobs on the local file system.
pub struct FsStorage {
    root: PathBuf,
    digests: RunningDigests,
}

impl FsStorage {
    pub fn open(root: &Path) -> io::Result<Self> {
        for dir in ["uploads", "tmp"] {
            fs::create_dir_all(root.join(dir))?;
        }
        for algorithm in Algorithm::ALL {
            fs::create_dir_all(root.join("blobs").join(algorithm.name()))?;
        }
        Ok(Self {
            root: root.to_owned(),
            digests: RunningDigests::default(),
        })
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let (algorithm, hex) = digest::parse(digest)?;
        Some(
            self.root
                .join("blobs")
                .join(algorithm.name())
                .join(&hex[..2])
                .join(hex),
        )
    }

    fn upload_dir(&self, id: &str) -> Option<PathBuf> {
        // Ids are ours (hex); anything else could walk out of the folder.
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.root.join("uploads").join(id))
    }

    /// Moves a verified, fsynced file to its blob path.
    fn publish(&self, file: &Path, digest: &str) -> io::Result<()> {
        let dest = self
            .blob_path(digest)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad digest"))?;
        let parent = dest.parent().expect("a blob path has a parent");
        fs::create_dir_all(parent)?;
        fs::rename(file, &dest)?;
        File::open(parent)?.sync_all()
    }
}

fn hash_file(path: &Path, algorithm: Algorithm) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = algorithm.hasher();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

impl Storage for FsStorage {
    fn blob_len(&self, digest: &str) -> io::Result<Option<u64>> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(None);
        };
        match fs::metadata(path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_blob(&self, digest: &str, offset: u64) -> io::Result<Option<BlobRead>> {
        use std::io::{Seek as _, SeekFrom};
        let Some(path) = self.blob_path(digest) else {
            return Ok(None);
        };
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(Some(BlobRead {
            len,
            reader: Box::new(tokio::fs::File::from_std(file)),
        }))
    }

    fn read_small(&self, digest: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(None);
        };
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if file.metadata()?.len() > limit {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }

    fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), CommitError> {
        let (algorithm, _) = digest::parse(digest).ok_or(CommitError::InvalidDigest)?;
        let computed = algorithm.digest(bytes);
        if computed != digest {
            return Err(CommitError::DigestMismatch { computed });
        }
        let tmp = self.root.join("tmp").join(hoist_common::random::id());
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        self.publish(&tmp, digest).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        Ok(())
    }

    fn delete_blob(&self, digest: &str) -> io::Result<bool> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(false);
        };
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list_blobs(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for algorithm in Algorithm::ALL {
            for prefix in fs::read_dir(self.root.join("blobs").join(algorithm.name()))? {
                for blob in fs::read_dir(prefix?.path())? {
                    let name = blob?.file_name().to_string_lossy().into_owned();
                    let digest = format!("{}:{name}", algorithm.name());
                    if digest::parse(&digest).is_some() {
                        out.push(digest);
                    }
                }
            }
        }
        Ok(out)
    }

    fn blob_modified(&self, digest: &str) -> io::Result<Option<SystemTime>> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(None);
        };
        match fs::metadata(path) {
            Ok(m) => Ok(Some(m.modified()?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn start_upload(&self) -> io::Result<String> {
        let id = hoist_common::random::id();
        let dir = self.root.join("uploads").join(&id);
        fs::create_dir(&dir)?;
        File::create(dir.join("data"))?;
        Ok(id)
    }

    fn upload_len(&self, id: &str) -> io::Result<Option<u64>> {
        let Some(dir) = self.upload_dir(id) else {
            return Ok(None);
        };
        match fs::metadata(dir.join("data")) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn append(&self, id: &str, data: &mut dyn Read) -> io::Result<u64> {
        let dir = self
            .upload_dir(id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown upload"))?;
        let path = dir.join("data");
        let start = fs::metadata(&path)?.len();
        let mut file = Appender::open(&path, start)?;
        let mut running = self.digests.take(id, start);
        let mut write_out = |bytes: &[u8], running: &mut Option<RunningDigest>| {
            file.write(bytes).inspect_err(|_| *running = None)?;
            if let Some(r) = running {
                r.update(bytes);
            }
            io::Result::Ok(())
        };
        // Request bodies arrive in small frames; gathering them makes few large writes,
        // from a block-aligned buffer so that they can go to the disk directly.
        let mut buf = AlignedBuf::new(WRITE_CHUNK);
        let read = loop {
            match data.read(buf.space()) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    buf.advance(n);
                    if buf.is_full() {
                        write_out(buf.data(), &mut running)?;
                        buf.clear();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        // What arrived before a broken body is kept, for the client to resume after it.
        write_out(buf.data(), &mut running)?;
        if let Some(r) = running {
            self.digests.keep(id, r);
        }
        read?;
        Ok(fs::metadata(&path)?.len())
    }

    fn commit(&self, id: &str, digest: &str) -> Result<u64, CommitError> {
        let (algorithm, _) = digest::parse(digest).ok_or(CommitError::InvalidDigest)?;
        let dir = self.upload_dir(id).ok_or(CommitError::UnknownUpload)?;
        let data = dir.join("data");
        if !data.exists() {
            return Err(CommitError::UnknownUpload);
        }
        let len = fs::metadata(&data)?.len();
        let computed = match self.digests.finish(id, len, algorithm) {
            Some(computed) => computed,
            None => hash_file(&data, algorithm)?,
        };
        if computed != digest {
            // The session stays, so the client can see its state or cancel it; the data
            // never becomes a blob.
            return Err(CommitError::DigestMismatch { computed });
        }
        let file = File::open(&data)?;
        file.sync_all()?;
        let len = file.metadata()?.len();
        drop(file);
        self.publish(&data, digest)?;
        fs::remove_dir_all(&dir)?;
        Ok(len)
    }

    fn cancel_upload(&self, id: &str) -> io::Result<bool> {
        let Some(dir) = self.upload_dir(id) else {
            return Ok(false);
        };
        self.digests.forget(id);
        match fs::remove_dir_all(dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list_uploads(&self) -> io::Result<Vec<(String, SystemTime)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("uploads"))? {
            let entry = entry?;
            let id = entry.file_name().to_string_lossy().into_owned();
            let Some(dir) = self.upload_dir(&id) else {
                continue;
            };
            // The data file's time is the last append; a session whose data file is
            // gone (a crash between creating the folder and the file) counts by its
            // folder.
            let modified = match fs::metadata(dir.join("data")) {
                Ok(m) => m.modified()?,
                Err(_) => entry.metadata()?.modified()?,
            };
            out.push((id, modified));
        }
        Ok(out)
    }

    fn probe(&self) -> io::Result<()> {
        let path = self
            .root
            .join("tmp")
            .join(format!("probe-{}", hoist_common::random::id()));
        let mut file = File::create(&path)?;
        let written = file.write_all(b"ok").and_then(|()| file.sync_all());
        drop(file);
        let removed = fs::remove_file(&path);
        written.and(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        Algorithm::Sha256.digest(bytes)
    }

    #[test]
    fn an_upload_is_invisible_until_committed_with_the_right_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStorage::open(dir.path()).unwrap();
        let data = b"hello, registry".repeat(1000);
        let digest = sha(&data);
        let id = store.start_upload().unwrap();
        store.append(&id, &mut &data[..7000]).unwrap();
        assert_eq!(
            store.blob_len(&digest).unwrap(),
            None,
            "partial data is not a blob"
        );
        assert_eq!(
            store.append(&id, &mut &data[7000..]).unwrap(),
            data.len() as u64
        );

        let wrong = sha(b"something else");
        assert!(matches!(
            store.commit(&id, &wrong),
            Err(CommitError::DigestMismatch { computed }) if computed == digest
        ));
        assert_eq!(
            store.blob_len(&wrong).unwrap(),
            None,
            "nothing stored under a wrong digest"
        );

        assert_eq!(store.commit(&id, &digest).unwrap(), data.len() as u64);
        assert_eq!(store.read_small(&digest, 1 << 20).unwrap().unwrap(), data);
        assert_eq!(store.upload_len(&id).unwrap(), None, "the session is gone");
        assert_eq!(store.list_blobs().unwrap(), vec![digest]);
    }

    /// Gives `first`, then fails, as a request body that breaks off does.
    struct BreaksOff<'a>(&'a [u8]);

    impl Read for BreaksOff<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_body_that_breaks_off_keeps_what_arrived_and_the_digest_stays_right() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStorage::open(dir.path()).unwrap();
        // Larger than one write chunk, so that both the full and the partial writes run.
        let data: Vec<u8> = (0..WRITE_CHUNK * 2 + 12345)
            .map(|i| (i % 251) as u8)
            .collect();
        let cut = WRITE_CHUNK + 777;
        let id = store.start_upload().unwrap();
        assert!(store.append(&id, &mut BreaksOff(&data[..cut])).is_err());
        assert_eq!(store.upload_len(&id).unwrap(), Some(cut as u64));
        store.append(&id, &mut &data[cut..]).unwrap();
        assert!(matches!(
            store.commit(&id, &sha(b"other")),
            Err(CommitError::DigestMismatch { computed }) if computed == sha(&data)
        ));
        // The mismatch used up the running digest; this commit reads the file again.
        assert_eq!(store.commit(&id, &sha(&data)).unwrap(), data.len() as u64);
    }

    #[test]
    fn upload_sessions_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = FsStorage::open(dir.path()).unwrap();
            let id = store.start_upload().unwrap();
            store.append(&id, &mut &b"first half "[..]).unwrap();
            id
        };
        let store = FsStorage::open(dir.path()).unwrap();
        assert_eq!(store.upload_len(&id).unwrap(), Some(11));
        store.append(&id, &mut &b"second half"[..]).unwrap();
        let digest = sha(b"first half second half");
        store.commit(&id, &digest).unwrap();
        assert_eq!(store.blob_len(&digest).unwrap(), Some(22));
    }

    #[test]
    fn small_blobs_are_checked_and_ids_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStorage::open(dir.path()).unwrap();
        assert!(matches!(
            store.put_blob(&sha(b"a"), b"b"),
            Err(CommitError::DigestMismatch { .. })
        ));
        assert!(matches!(
            store.put_blob("md5:00", b"a"),
            Err(CommitError::InvalidDigest)
        ));
        store.put_blob(&sha(b"a"), b"a").unwrap();
        assert!(store.delete_blob(&sha(b"a")).unwrap());
        assert!(!store.delete_blob(&sha(b"a")).unwrap());
        assert_eq!(store.upload_len("../../etc").unwrap(), None);
        assert!(matches!(
            store.commit("../x", &sha(b"a")),
            Err(CommitError::UnknownUpload)
        ));
        let id = store.start_upload().unwrap();
        assert!(store.cancel_upload(&id).unwrap());
        assert_eq!(store.upload_len(&id).unwrap(), None);
    }

    #[test]
    fn sha512_blobs_are_verified_stored_listed_and_deleted_beside_sha256_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStorage::open(dir.path()).unwrap();
        let data = b"content addressed by sha512".repeat(100);
        let d512 = Algorithm::Sha512.digest(&data);
        let d256 = sha(&data);
        let id = store.start_upload().unwrap();
        store.append(&id, &mut &data[..]).unwrap();
        // The running sha256 cannot vouch for a sha512 digest: the file is read again.
        assert!(matches!(
            store.commit(&id, &Algorithm::Sha512.digest(b"other")),
            Err(CommitError::DigestMismatch { computed }) if computed == d512
        ));
        assert_eq!(store.commit(&id, &d512).unwrap(), data.len() as u64);
        store.put_blob(&d256, &data).unwrap();
        assert_eq!(store.read_small(&d512, 1 << 20).unwrap().unwrap(), data);
        let mut listed = store.list_blobs().unwrap();
        listed.sort();
        assert_eq!(listed, vec![d256.clone(), d512.clone()]);
        assert!(dir.path().join("blobs/sha512").join(&d512[7..9]).is_dir());
        assert!(matches!(
            store.put_blob(&Algorithm::Sha512.digest(b"x"), b"y"),
            Err(CommitError::DigestMismatch { .. })
        ));
        assert!(store.delete_blob(&d512).unwrap());
        assert_eq!(store.blob_len(&d512).unwrap(), None);
        assert_eq!(store.blob_len(&d256).unwrap(), Some(data.len() as u64));
    }
}
