//! Blob storage: the interface the registry's handlers use, and its drivers.
//!
//! Handlers never see paths or files: they open blobs as async readers, append request
//! bodies to upload sessions, and commit a session under a digest, which the driver
//! makes visible only once the digest is verified and the data durable. Two drivers: the
//! local filesystem ([`fs`], the default) and S3-compatible object storage ([`s3`], for
//! several hosts sharing one store).

mod appender;
mod fs;
mod running;
mod s3;

pub use fs::FsStorage;
pub use s3::{S3Options, S3Storage};

use std::io::{self, Read};
use std::time::SystemTime;

/// A committed blob opened for reading.
pub struct BlobRead {
    /// The blob's whole length, whatever the offset it was opened at.
    pub len: u64,
    pub reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
}

/// Why committing an upload failed.
#[derive(Debug)]
pub enum CommitError {
    /// No upload session has this id.
    UnknownUpload,
    /// The data does not hash to the digest the client named; nothing was stored.
    DigestMismatch {
        computed: String,
    },
    /// The digest is not `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
    InvalidDigest,
    Io(io::Error),
}

impl From<io::Error> for CommitError {
    fn from(e: io::Error) -> Self {
        CommitError::Io(e)
    }
}

/// What the registry needs from a blob store.
pub trait Storage: Send + Sync + 'static {
    /// The size of a committed blob, or None.
    fn blob_len(&self, digest: &str) -> io::Result<Option<u64>>;
    /// Opens a committed blob for reading from byte `offset`.
    fn open_blob(&self, digest: &str, offset: u64) -> io::Result<Option<BlobRead>>;
    /// Reads a committed blob of at most `limit` bytes whole (manifests, configs); None
    /// when it is absent or larger.
    fn read_small(&self, digest: &str, limit: u64) -> io::Result<Option<Vec<u8>>>;
    /// Stores a small blob (a manifest) whose bytes are in memory, after checking them.
    fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), CommitError>;
    fn delete_blob(&self, digest: &str) -> io::Result<bool>;
    /// Every committed blob's digest.
    fn list_blobs(&self) -> io::Result<Vec<String>>;
    /// When a committed blob was last written. Committing the same digest again renews
    /// it, which the garbage collector's grace period relies on.
    fn blob_modified(&self, digest: &str) -> io::Result<Option<SystemTime>>;

    /// Starts an upload session and returns its id.
    fn start_upload(&self) -> io::Result<String>;
    /// Bytes received so far, or None for an unknown session.
    fn upload_len(&self, id: &str) -> io::Result<Option<u64>>;
    /// Appends everything `data` yields to the session; returns the new length.
    fn append(&self, id: &str, data: &mut dyn Read) -> io::Result<u64>;
    /// Verifies the session's data against `digest` and makes it a blob.
    fn commit(&self, id: &str, digest: &str) -> Result<u64, CommitError>;
    fn cancel_upload(&self, id: &str) -> io::Result<bool>;
    /// Every upload session, with when it last received data.
    fn list_uploads(&self) -> io::Result<Vec<(String, SystemTime)>>;
    /// Checks that the store can be written to, for `/readyz`.
    fn probe(&self) -> io::Result<()>;
}
