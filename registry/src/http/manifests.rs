//! Manifests: pull by tag or digest, push with checks, delete.
//!
//! A pushed manifest is kept byte for byte (its digest is the digest of those bytes) as
//! a blob, and described by a row in the database: media type, artifact type, subject,
//! size, annotations, and every digest it refers to. Before it is accepted:
//! - its media type must be one this registry serves (OCI image manifest or index,
//!   Docker schema 2 manifest or manifest list), named by `Content-Type` and agreeing
//!   with the body's own `mediaType` when it has one;
//! - it must be at most 4 MiB, as distribution allows;
//! - every blob it refers to (config and layers, except foreign layers with `urls`) must
//!   be linked to this repository, with the size the descriptor says;
//! - every manifest an index lists must be in this repository;
//! - when pushed by digest, its bytes must have that digest.
//!
//! Its digest is sha256 unless the push names another algorithm: by pushing to a digest
//! reference, or, with a tag, by a `?digest=` query (as the distribution spec's tag push
//! with a digest allows), which must then match the bytes too.
//!
//! OCI artifacts are image manifests with an `artifactType` or any config media type;
//! both are accepted, and the artifact type is recorded as the spec's referrers API
//! defines it (`artifactType`, else the config's media type).

use super::{CONTENT_DIGEST, OCI_SUBJECT, Query, Registry, empty, header_str, value};
use crate::digest::{self, Algorithm};
use crate::errors::{RegistryError, Result};
use crate::manifest::{self, MAX_MANIFEST, RefKind, Reference as Referenced};
use crate::metadata::ManifestRecord;
use crate::names::{self, Reference};
use crate::storage::CommitError;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hoist_common::clock::now_ms;

/// `PUT /v2/<name>/manifests/<reference>`: read, check, then store and record.
pub(super) async fn put(
    registry: &Registry,
    repo: &str,
    reference: &str,
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> Result<Response> {
    let reference = Reference::parse(reference)?;
    let claimed = match (&reference, query.get("digest")) {
        (Reference::Digest(d), _) => Some(d.clone()),
        (Reference::Tag(_), Some(d)) => Some(names::check_digest(d)?.to_owned()),
        (Reference::Tag(_), None) => None,
    };
    registry.require_project(repo).await?;
    let bytes = read_manifest(registry, headers, body).await?;
    let algorithm = claimed
        .as_deref()
        .and_then(digest::parse)
        .map_or(Algorithm::Sha256, |(a, _)| a);
    let digest = algorithm.digest(&bytes);
    if let Some(d) = claimed
        && d != digest
    {
        return Err(RegistryError::digest_invalid(format!(
            "the manifest was pushed as {d}, but its bytes hash to {digest}; push it by that \
             digest, or by a tag"
        )));
    }
    let checked = manifest::check(&bytes, header_str(headers, header::CONTENT_TYPE))?;

    // Checks, storage and the record happen under the collector's shared lock, so a
    // blob seen here cannot be collected before the record that keeps it exists.
    let _gc = registry.gc_shared().await;
    check_references(registry, repo, &checked.references).await?;
    let (d, body) = (digest.clone(), bytes.clone());
    registry
        .store(move |s| {
            if s.blob_len(&d)?.is_none() {
                s.put_blob(&d, &body).map_err(|e| match e {
                    CommitError::Io(e) => e,
                    other => std::io::Error::other(format!("{other:?}")),
                })?;
            }
            Ok(())
        })
        .await?;
    let subject = checked.subject.clone();
    let refs: Vec<(String, RefKind)> = checked
        .references
        .iter()
        .map(|r| (r.digest.clone(), r.kind))
        .collect();
    let record = ManifestRecord {
        repository: repo.to_owned(),
        digest: digest.clone(),
        media_type: checked.media_type,
        artifact_type: checked.artifact_type,
        subject: checked.subject,
        size: bytes.len() as u64,
        annotations: checked.annotations,
        created_ms: now_ms(),
    };
    let tag = match &reference {
        Reference::Tag(t) => Some(t.clone()),
        Reference::Digest(_) => None,
    };
    registry
        .db(move |m| m.put_manifest(&record, &refs, tag.as_deref()))
        .await?;

    let mut headers = vec![
        (
            header::LOCATION,
            value(format!("/v2/{repo}/manifests/{digest}")),
        ),
        (CONTENT_DIGEST, value(&digest)),
    ];
    if let Some(subject) = subject {
        headers.push((OCI_SUBJECT, value(subject)));
    }
    Ok(empty(StatusCode::CREATED, headers))
}

/// A pushed manifest's bytes, refused past [`MAX_MANIFEST`] before or while they arrive.
async fn read_manifest(registry: &Registry, headers: &HeaderMap, body: Body) -> Result<Bytes> {
    let too_big = || {
        RegistryError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            format!(
                "the manifest is larger than {MAX_MANIFEST} bytes (4 MiB), the most this \
                 registry accepts; split it (an index of smaller manifests) or trim its \
                 annotations"
            ),
        )
    };
    if header_str(headers, header::CONTENT_LENGTH)
        .and_then(|l| l.trim().parse::<u64>().ok())
        .is_some_and(|l| l > MAX_MANIFEST as u64)
    {
        return Err(too_big());
    }
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|_| too_big())?;
    registry.metrics().bytes_in.inc_by(bytes.len() as u64);
    Ok(bytes)
}

/// Refuses a manifest whose blobs are not linked to `repo` with the sizes it claims, or
/// whose child manifests are not in `repo`.
async fn check_references(
    registry: &Registry,
    repo: &str,
    references: &[Referenced],
) -> Result<()> {
    let (r, refs) = (repo.to_owned(), references.to_vec());
    let storage = registry.storage().clone();
    let missing = registry
        .db(move |m| {
            for reference in &refs {
                let (digest, size, what) =
                    (&reference.digest, reference.size, reference.kind.describe());
                let held = match reference.kind {
                    RefKind::Manifest => m.manifest(&r, digest)?.map(|child| child.size),
                    _ if m.blob_linked(&r, digest)? => storage.blob_len(digest)?,
                    _ => None,
                };
                let fault = match held {
                    None => RegistryError::manifest_blob_unknown(digest, what),
                    Some(len) if len != size => RegistryError::manifest_invalid(format!(
                        "the manifest says {what} {digest} has {size} bytes, but it has \
                         {len}; fix the size in the manifest"
                    )),
                    Some(_) => continue,
                };
                return Ok(Some(fault));
            }
            Ok(None)
        })
        .await?;
    missing.map_or(Ok(()), Err)
}

/// Finds a manifest by tag or digest.
async fn resolve(registry: &Registry, repo: &str, reference: &str) -> Result<ManifestRecord> {
    let parsed = Reference::lookup(repo, reference)?;
    let r = repo.to_owned();
    let found = registry
        .db(move |m| match &parsed {
            Reference::Tag(t) => m.tagged_manifest(&r, t),
            Reference::Digest(d) => m.manifest(&r, d),
        })
        .await?;
    if let Some(found) = found {
        return Ok(found);
    }
    // Say which part is missing: a manifest, or the whole project.
    let project = names::project_of(repo).to_owned();
    let p = project.clone();
    if registry.db(move |m| m.project(&p)).await?.is_none() {
        return Err(RegistryError::name_unknown(format!(
            "the project {project} does not exist, so {repo} has no manifests; list the \
             projects with GET /api/v1/projects"
        ))
        .with_detail(serde_json::json!({ "project": project })));
    }
    Err(RegistryError::manifest_unknown(repo, reference))
}

/// `GET` and `HEAD /v2/<name>/manifests/<reference>`: the stored bytes with their stored
/// media type.
pub(super) async fn get(
    registry: &Registry,
    repo: &str,
    reference: &str,
    with_body: bool,
) -> Result<Response> {
    let record = resolve(registry, repo, reference).await?;
    let d = record.digest.clone();
    let bytes = registry
        .store(move |s| s.read_small(&d, MAX_MANIFEST as u64))
        .await?;
    let Some(bytes) = bytes else {
        tracing::error!(
            repo,
            digest = record.digest,
            "a recorded manifest is missing from storage"
        );
        return Err(RegistryError::manifest_unknown(repo, reference));
    };
    let len = bytes.len();
    let mut response = if with_body {
        registry.metrics().bytes_out.inc_by(len as u64);
        (StatusCode::OK, Body::from(bytes)).into_response()
    } else {
        (StatusCode::OK, Body::empty()).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&record.media_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(CONTENT_DIGEST, value(&record.digest));
    h.insert(header::ETAG, value(format!("\"{}\"", record.digest)));
    h.insert(header::CONTENT_LENGTH, value(len.to_string()));
    Ok(response)
}

/// `DELETE /v2/<name>/manifests/<reference>`: by digest, the manifest and every tag on
/// it; by tag, only the tag (OCI 1.1 allows it).
pub(super) async fn delete(registry: &Registry, repo: &str, reference: &str) -> Result<Response> {
    let parsed = Reference::lookup(repo, reference)?;
    let r = repo.to_owned();
    let deleted = registry
        .db(move |m| match &parsed {
            Reference::Tag(t) => m.delete_tag(&r, t),
            Reference::Digest(d) => m.delete_manifest(&r, d),
        })
        .await?;
    if deleted {
        Ok(empty(StatusCode::ACCEPTED, vec![]))
    } else {
        Err(RegistryError::manifest_unknown(repo, reference))
    }
}
