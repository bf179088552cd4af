//! Blob pulls (streamed from disk, with single byte ranges) and blob deletes.

use super::{CONTENT_DIGEST, Registry, header_str, names, value};
use crate::errors::{RegistryError, Result};
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use tokio::io::AsyncReadExt as _;

/// Read size when streaming a blob out.
const CHUNK: usize = 256 * 1024;

/// What a `Range` header asks of a blob of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wanted {
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads a `Range` header. One range of bytes (`a-b`, `a-`, `-n`) is served; anything
/// else (several ranges, other units, nonsense) is ignored and the whole blob is sent,
/// which RFC 9110 allows.
pub(crate) fn wanted(range: Option<&str>, len: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // A suffix: the last n bytes.
        return match b.parse::<u64>() {
            Ok(n) if n > 0 && len > 0 => Wanted::Part(len.saturating_sub(n), len - 1),
            Ok(_) => Wanted::Unsatisfiable,
            Err(_) => Wanted::Whole,
        };
    }
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), _) if b.is_empty() => {
            if start < len {
                Wanted::Part(start, len - 1)
            } else {
                Wanted::Unsatisfiable
            }
        }
        (Ok(start), Ok(end)) if start <= end => {
            if start < len {
                Wanted::Part(start, end.min(len - 1))
            } else {
                Wanted::Unsatisfiable
            }
        }
        _ => Wanted::Whole,
    }
}

/// GET or HEAD of a blob the repository is linked to.
pub(super) async fn get(
    registry: &Registry,
    repo: &str,
    digest: &str,
    parts: &Parts,
    with_body: bool,
) -> Result<Response> {
    let digest = names::check_digest(digest)?.to_owned();
    let (r, d) = (repo.to_owned(), digest.clone());
    if !registry.db(move |m| m.blob_linked(&r, &d)).await? {
        return Err(RegistryError::blob_unknown(repo, &digest));
    }
    let d = digest.clone();
    let Some(len) = registry.store(move |s| s.blob_len(&d)).await? else {
        // Linked but gone from the store (collected, or lost): the same as absent.
        return Err(RegistryError::blob_unknown(repo, &digest));
    };
    let range = header_str(&parts.headers, header::RANGE);
    let (status, start, count) = match wanted(range, len) {
        Wanted::Whole => (StatusCode::OK, 0, len),
        Wanted::Part(start, end) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Wanted::Unsatisfiable => {
            return Err(RegistryError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                format!(
                    "the range {:?} is outside the blob {digest}, which has {len} bytes; ask \
                     for bytes=0-{} at most",
                    range.unwrap_or_default(),
                    len.saturating_sub(1)
                ),
            )
            .with_header(header::CONTENT_RANGE, value(format!("bytes */{len}"))));
        }
    };

    let mut headers = vec![
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (CONTENT_DIGEST, value(&digest)),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        // A digest names immutable content, so it is a perfect strong ETag.
        (header::ETAG, value(format!("\"{digest}\""))),
        (header::CONTENT_LENGTH, value(count.to_string())),
    ];
    if status == StatusCode::PARTIAL_CONTENT {
        headers.push((
            header::CONTENT_RANGE,
            value(format!("bytes {start}-{}/{len}", start + count - 1)),
        ));
    }
    let body = if with_body {
        let d = digest.clone();
        let Some(blob) = registry.store(move |s| s.open_blob(&d, start)).await? else {
            return Err(RegistryError::blob_unknown(repo, &digest));
        };
        let bytes_out = registry.metrics().bytes_out.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(blob.reader.take(count), CHUNK)
            .map(move |chunk| {
                if let Ok(c) = &chunk {
                    bytes_out.inc_by(c.len() as u64);
                }
                chunk
            });
        Body::from_stream(stream)
    } else {
        Body::empty()
    };
    let mut response = (status, body).into_response();
    for (name, v) in headers {
        response.headers_mut().insert(name, v);
    }
    Ok(response)
}

/// Removes the repository's link to a blob. The bytes stay while any other repository
/// links to them or a manifest refers to them; the garbage collector frees the rest.
pub(super) async fn delete(registry: &Registry, repo: &str, digest: &str) -> Result<Response> {
    let digest = names::check_digest(digest)?.to_owned();
    let (r, d) = (repo.to_owned(), digest.clone());
    if registry.db(move |m| m.unlink_blob(&r, &d)).await? {
        Ok(super::empty(StatusCode::ACCEPTED, vec![]))
    } else {
        Err(RegistryError::blob_unknown(repo, &digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(wanted(None, 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-4"), 10), Wanted::Part(0, 4));
        assert_eq!(wanted(Some("bytes=5-"), 10), Wanted::Part(5, 9));
        assert_eq!(wanted(Some("bytes=5-100"), 10), Wanted::Part(5, 9));
        assert_eq!(wanted(Some("bytes=-3"), 10), Wanted::Part(7, 9));
        assert_eq!(wanted(Some("bytes=-30"), 10), Wanted::Part(0, 9));
        assert_eq!(wanted(Some("bytes=10-"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=10-20"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-0"), 0), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,4-5"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("items=0-1"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=5-2"), 10), Wanted::Whole);
    }
}
