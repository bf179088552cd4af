//! Blob pushes: upload sessions (monolithic and chunked), their status, cancelling, and
//! cross-repository mounts.
//!
//! Request bodies are streamed to the session's file through a small bounded channel
//! into a blocking writer, so a push of any size holds a few chunks in memory at most.
//! A session belongs to the repository it was started in (recorded in the database), and
//! a request for it through another repository's URL is answered as if it did not exist.

use super::{CONTENT_DIGEST, Query, Registry, UPLOAD_UUID, empty, header_str, names, value};
use crate::access::{Action, Target};
use crate::errors::{RegistryError, Result};
use crate::storage::CommitError;
use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt as _;
use std::io::{self, Read};

/// Body frames go to the disk writer in batches of about this many bytes: one hand-over
/// (a thread wake-up on each side) per batch rather than per frame. With one frame
/// queued and a hand-over for each, an import cost about 0.2 CPU-s per GiB more.
const BATCH: usize = 256 << 10;

/// Batches in flight between the network and the disk writer. A batch holds its frames
/// and the buffers they were read into, so this is most of what an upload holds in
/// memory: with 60 uploads at once (10 imports of 6 transfers), 4 frames of up to 400 KiB
/// each put the host at 300 MiB. One batch waiting behind the one being written keeps
/// the disk busy.
const CHANNEL_DEPTH: usize = 1;

fn location(repo: &str, id: &str) -> HeaderValue {
    value(format!("/v2/{repo}/blobs/uploads/{id}"))
}

/// The `Range` of a session holding `len` bytes: the inclusive range received. Before
/// the first byte the spec's examples (and distribution) say `0-0`.
fn range(len: u64) -> HeaderValue {
    value(format!("0-{}", len.saturating_sub(1)))
}

fn session_headers(repo: &str, id: &str, len: u64) -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (header::LOCATION, location(repo, id)),
        (header::RANGE, range(len)),
        (UPLOAD_UUID, value(id)),
    ]
}

/// `POST /v2/<name>/blobs/uploads/`: a mount, a monolithic upload (`?digest=` with the
/// body), or a new session.
pub(super) async fn start(
    registry: &Registry,
    repo: &str,
    parts: &Parts,
    query: &Query,
    body: Body,
) -> Result<Response> {
    if let Err(refused) = registry.require_project(repo).await {
        return Err(refused.after_draining(body).await);
    }
    if let Some(digest) = query.get("mount")
        && let Some(response) = mount(registry, repo, parts, digest, query.get("from")).await?
    {
        return Ok(response);
    }
    let monolithic = match query.get("digest").map(names::check_digest) {
        Some(Ok(d)) => Some(d.to_owned()),
        Some(Err(refused)) => return Err(refused.after_draining(body).await),
        None => None,
    };
    let id = registry.store(|s| s.start_upload()).await?;
    let (r, i) = (repo.to_owned(), id.clone());
    let owner = registry.authorizer().upload_owner(parts);
    if let Err(e) = registry
        .db(move |m| m.start_upload(&i, &r, owner.as_deref()))
        .await
    {
        let i = id.clone();
        let _ = registry.store(move |s| s.cancel_upload(&i)).await;
        return Err(e);
    }
    match monolithic {
        Some(digest) => {
            let _lock = registry.lock_upload(&id).await;
            if let Err(e) = append_body(registry, &id, body).await {
                discard(registry, &id).await;
                return Err(e);
            }
            commit(registry, repo, &id, &digest).await
        }
        None => Ok(empty(StatusCode::ACCEPTED, session_headers(repo, &id, 0))),
    }
}

/// Links a blob the caller can read in `from` into `repo`. `None` when the mount cannot
/// be done (no such blob there, no right to read it, a malformed request): the spec
/// then has the registry start an ordinary upload instead.
async fn mount(
    registry: &Registry,
    repo: &str,
    parts: &Parts,
    digest: &str,
    from: Option<&str>,
) -> Result<Option<Response>> {
    let (Ok(digest), Some(from)) = (names::check_digest(digest), from) else {
        return Ok(None);
    };
    if names::check_repository(from).is_err() {
        return Ok(None);
    }
    // A mount reads `from`: the caller needs pull there as well as push here.
    let read = Target::Repository {
        name: from.to_owned(),
        action: Action::Pull,
    };
    if registry.authorizer().authorize(parts, &read).await.is_err() {
        return Ok(None);
    }
    let _gc = registry.gc_shared().await;
    let (f, d) = (from.to_owned(), digest.to_owned());
    if !registry.db(move |m| m.blob_linked(&f, &d)).await? {
        return Ok(None);
    }
    let d = digest.to_owned();
    let Some(len) = registry.store(move |s| s.blob_len(&d)).await? else {
        return Ok(None);
    };
    let (r, d) = (repo.to_owned(), digest.to_owned());
    registry.db(move |m| m.link_blob(&r, &d, len)).await?;
    tracing::debug!(repo, from, digest, "mounted a blob");
    Ok(Some(created(repo, digest)))
}

fn created(repo: &str, digest: &str) -> Response {
    empty(
        StatusCode::CREATED,
        vec![
            (
                header::LOCATION,
                value(format!("/v2/{repo}/blobs/{digest}")),
            ),
            (CONTENT_DIGEST, value(digest)),
        ],
    )
}

/// The number of bytes a session of `repo` holds, or `BLOB_UPLOAD_UNKNOWN`.
async fn session_len(registry: &Registry, repo: &str, id: &str) -> Result<u64> {
    let i = id.to_owned();
    let owner = registry.db(move |m| m.upload_repository(&i)).await?;
    if owner.as_deref() != Some(repo) {
        return Err(RegistryError::upload_unknown(id));
    }
    let i = id.to_owned();
    match registry.store(move |s| s.upload_len(&i)).await? {
        Some(len) => Ok(len),
        None => {
            // The record outlived its data (a crash mid-cancel): forget it too.
            let i = id.to_owned();
            registry.db(move |m| m.end_upload(&i)).await?;
            Err(RegistryError::upload_unknown(id))
        }
    }
}

/// Parses `Content-Range: a-b` (also accepting a `bytes ` prefix and a `/total`).
pub(crate) fn content_range(s: &str) -> Option<(u64, u64)> {
    let s = s.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split('/').next()?;
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

/// Checks a chunk's `Content-Range` against the session: it must start where the data
/// so far ends, and agree with `Content-Length` when both are given.
fn check_chunk(headers: &HeaderMap, repo: &str, id: &str, len: u64) -> Result<()> {
    let Some(raw) = header_str(headers, header::CONTENT_RANGE) else {
        return Ok(());
    };
    let Some((start, end)) = content_range(raw) else {
        return Err(RegistryError::upload_invalid(format!(
            "the Content-Range {raw:?} is not <first byte>-<last byte>, such as 0-1023"
        )));
    };
    if start != len {
        return Err(RegistryError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!(
                "this chunk starts at byte {start}, but the upload holds {len} bytes, so the \
                 next chunk must start at {len}; ask GET {} for the upload's state and resume \
                 from there",
                location(repo, id).to_str().unwrap_or_default()
            ),
        )
        .with_header(header::LOCATION, location(repo, id))
        .with_header(header::RANGE, range(len))
        .with_header(UPLOAD_UUID, value(id)));
    }
    // Client numbers: checked, so that `0-18446744073709551615` cannot wrap to a length of 0.
    let Some(covers) = (end - start).checked_add(1) else {
        return Err(RegistryError::upload_invalid(format!(
            "the Content-Range {raw:?} covers more bytes than any blob can hold"
        )));
    };
    if let Some(length) = header_str(headers, header::CONTENT_LENGTH)
        && length.trim().parse::<u64>().ok() != Some(covers)
    {
        return Err(RegistryError::upload_invalid(format!(
            "the Content-Range {raw:?} covers {covers} bytes, but the Content-Length is \
             {length}; send them in agreement"
        )));
    }
    Ok(())
}

/// Whether the chunk `headers` describe may be appended next to the session `id` of
/// `repo`.
async fn next_chunk(registry: &Registry, repo: &str, id: &str, headers: &HeaderMap) -> Result<()> {
    let len = session_len(registry, repo, id).await?;
    check_chunk(headers, repo, id, len)
}

/// `PATCH`: appends a chunk (or the whole stream) to the session.
pub(super) async fn patch(
    registry: &Registry,
    repo: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let _lock = registry.lock_upload(id).await;
    if let Err(refused) = next_chunk(registry, repo, id, headers).await {
        return Err(refused.after_draining(body).await);
    }
    let len = append_body(registry, id, body).await?;
    Ok(empty(StatusCode::ACCEPTED, session_headers(repo, id, len)))
}

/// `PUT ?digest=`: appends the last chunk, if any, then verifies and stores the blob.
pub(super) async fn finish(
    registry: &Registry,
    repo: &str,
    id: &str,
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> Result<Response> {
    let Some(digest) = query.get("digest") else {
        let refused = RegistryError::digest_invalid(
            "finishing an upload needs the blob's digest: PUT <location>?digest=sha256:<hex>",
        );
        return Err(refused.after_draining(body).await);
    };
    let digest = match names::check_digest(digest) {
        Ok(d) => d.to_owned(),
        Err(refused) => return Err(refused.after_draining(body).await),
    };
    let _lock = registry.lock_upload(id).await;
    if let Err(refused) = next_chunk(registry, repo, id, headers).await {
        return Err(refused.after_draining(body).await);
    }
    let empty_body = header_str(headers, header::CONTENT_LENGTH).is_some_and(|l| l.trim() == "0");
    if !empty_body {
        append_body(registry, id, body).await?;
    }
    commit(registry, repo, id, &digest).await
}

/// Verifies the session's data against `digest`, stores it and links it to `repo`. On a
/// mismatch nothing is stored and the session is dropped: its data is wrong, and
/// appending cannot fix it.
async fn commit(registry: &Registry, repo: &str, id: &str, digest: &str) -> Result<Response> {
    let _gc = registry.gc_shared().await;
    let (i, d) = (id.to_owned(), digest.to_owned());
    let storage = registry.storage().clone();
    let outcome = tokio::task::spawn_blocking(move || storage.commit(&i, &d)).await?;
    match outcome {
        Ok(len) => {
            let (r, i, d) = (repo.to_owned(), id.to_owned(), digest.to_owned());
            registry
                .db(move |m| {
                    m.link_blob(&r, &d, len)?;
                    m.end_upload(&i)
                })
                .await?;
            Ok(created(repo, digest))
        }
        Err(CommitError::DigestMismatch { computed }) => {
            discard(registry, id).await;
            Err(RegistryError::digest_invalid(format!(
                "the uploaded data hashes to {computed}, not to {digest}; nothing was stored \
                 and the upload was dropped, so start a new upload and send the blob again \
                 (check that every chunk was sent, in order)"
            ))
            .with_detail(serde_json::json!({ "expected": digest, "computed": computed })))
        }
        Err(CommitError::InvalidDigest) => Err(RegistryError::digest_invalid(format!(
            "{digest:?} is not a sha256 or sha512 digest"
        ))),
        Err(CommitError::UnknownUpload) => Err(RegistryError::upload_unknown(id)),
        Err(CommitError::Io(e)) => Err(RegistryError::internal(e)),
    }
}

/// Drops a session's data and record, ignoring failures (the collector retries).
async fn discard(registry: &Registry, id: &str) {
    let i = id.to_owned();
    if let Err(e) = registry.store(move |s| s.cancel_upload(&i)).await {
        tracing::warn!(id, error = e.message, "could not drop an upload's data");
    }
    let i = id.to_owned();
    if let Err(e) = registry.db(move |m| m.end_upload(&i)).await {
        tracing::warn!(id, error = e.message, "could not forget an upload");
    }
}

/// `GET`: the session's state.
pub(super) async fn status(registry: &Registry, repo: &str, id: &str) -> Result<Response> {
    let len = session_len(registry, repo, id).await?;
    Ok(empty(
        StatusCode::NO_CONTENT,
        session_headers(repo, id, len),
    ))
}

/// `DELETE`: cancels the session.
pub(super) async fn cancel(registry: &Registry, repo: &str, id: &str) -> Result<Response> {
    let _lock = registry.lock_upload(id).await;
    session_len(registry, repo, id).await?;
    discard(registry, id).await;
    Ok(empty(StatusCode::NO_CONTENT, vec![]))
}

/// Streams a request body onto the end of a session; returns the session's new length.
async fn append_body(registry: &Registry, id: &str, body: Body) -> Result<u64> {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Vec<Bytes>>>(CHANNEL_DEPTH);
    let storage = registry.storage().clone();
    let i = id.to_owned();
    let writer = tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader {
            rx,
            batch: Vec::new().into_iter(),
            current: Bytes::new(),
        };
        storage.append(&i, &mut reader)
    });
    let bytes_in = registry.metrics().bytes_in.clone();
    let mut stream = body.into_data_stream();
    let mut broken = None;
    let mut batch = Vec::new();
    let mut batched = 0;
    loop {
        let (more, error) = match stream.next().await {
            Some(Ok(bytes)) => {
                bytes_in.inc_by(bytes.len() as u64);
                batched += bytes.len();
                batch.push(bytes);
                (true, None)
            }
            Some(Err(e)) => (false, Some(e.to_string())),
            None => (false, None),
        };
        if (batched >= BATCH || !more) && !batch.is_empty() {
            batched = 0;
            if tx.send(Ok(std::mem::take(&mut batch))).await.is_err() {
                // The writer stopped (a disk error); its result says why.
                break;
            }
        }
        if let Some(message) = error {
            let _ = tx.send(Err(io::Error::other(message.clone()))).await;
            broken = Some(message);
        }
        if !more {
            break;
        }
    }
    drop(tx);
    let written = writer.await?;
    if let Some(message) = broken {
        return Err(RegistryError::upload_invalid(format!(
            "the request body broke off ({message}); what arrived was kept, so ask GET \
             /v2/<name>/blobs/uploads/{id} how much, and resume from there"
        )));
    }
    Ok(written?)
}

/// A blocking reader over batches of body frames sent from async code.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Vec<Bytes>>>,
    batch: std::vec::IntoIter<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if let Some(next) = self.batch.next() {
                self.current = next;
                continue;
            }
            match self.rx.blocking_recv() {
                Some(Ok(batch)) => self.batch = batch.into_iter(),
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range("0-1023"), Some((0, 1023)));
        assert_eq!(content_range("bytes 10-19/100"), Some((10, 19)));
        assert_eq!(content_range("bytes=10-19"), Some((10, 19)));
        assert_eq!(content_range("5-2"), None);
        assert_eq!(content_range("x"), None);
    }
}
