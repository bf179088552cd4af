//! The parsers of what clients send, opened to the fuzz targets in `fuzz/` (the `fuzzing`
//! feature) and to nothing else.

use crate::http::Wanted;

/// A pushed manifest checked as the registry checks it, and one summarised for the API.
pub use crate::manifest::{check, summarize};

/// The byte range a `Range` header asks of a blob of `len` bytes, when it asks for one
/// the blob can serve.
pub fn wanted(range: &str, len: u64) -> Option<(u64, u64)> {
    match crate::http::wanted(Some(range), len) {
        Wanted::Part(start, end) => Some((start, end)),
        Wanted::Whole | Wanted::Unsatisfiable => None,
    }
}

/// The range an upload chunk's `Content-Range` names.
pub fn content_range(header: &str) -> Option<(u64, u64)> {
    crate::http::content_range(header)
}

/// Whether the registry stores content under `digest`.
pub fn digest_ok(digest: &str) -> bool {
    crate::digest::parse(digest).is_some()
}

/// Whether a `/v2/<name>/manifests/<reference>` reference is a tag or a digest the
/// registry accepts.
pub fn manifest_reference_ok(reference: &str) -> bool {
    crate::names::Reference::parse(reference).is_ok()
}
