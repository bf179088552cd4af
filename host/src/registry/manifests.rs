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
//! OCI artifacts are image manifests with an `artifactType` or any config media type;
//! both are accepted, and the artifact type is recorded as the spec's referrers API
//! defines it (`artifactType`, else the config's media type).

use super::errors::{RegistryError, Result};
use super::names::Reference;
use super::{CONTENT_DIGEST, OCI_SUBJECT, Registry, empty, header_str, names, value};
use crate::metadata::{ManifestRecord, RefKind, now_ms};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read as _;

/// The largest manifest accepted, as distribution's default.
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
];

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

/// The bare media type of a `Content-Type` (no parameters, lowercase).
fn bare(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

enum Kind {
    Image,
    Index,
}

fn kind_of(media_type: &str) -> Result<Kind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(Kind::Image),
        OCI_INDEX | DOCKER_LIST => Ok(Kind::Index),
        m if DOCKER_SCHEMA1.contains(&m) => Err(RegistryError::manifest_invalid(format!(
            "{m} (Docker schema 1) is not accepted; convert the image to schema 2 or OCI \
             first, e.g. skopeo copy --format v2s2"
        ))),
        m => Err(RegistryError::manifest_invalid(format!(
            "the manifest media type {m:?} is not one this registry stores; send \
             {OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST} or {DOCKER_LIST} in Content-Type"
        ))),
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn descriptor_digest<'a>(d: &'a Descriptor, what: &str) -> Result<&'a str> {
    names::check_digest(&d.digest).map_err(|e| {
        RegistryError::manifest_invalid(format!("the {what} descriptor: {}", e.message))
    })?;
    if d.size < 0 {
        return Err(RegistryError::manifest_invalid(format!(
            "the {what} descriptor {} has a negative size",
            d.digest
        )));
    }
    Ok(&d.digest)
}

/// `PUT /v2/<name>/manifests/<reference>`.
pub(super) async fn put(
    registry: &Registry,
    repo: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let reference = Reference::parse(reference)?;
    registry.require_project(repo).await?;
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
    let digest = sha256(&bytes);
    if let Reference::Digest(d) = &reference
        && *d != digest
    {
        return Err(RegistryError::digest_invalid(format!(
            "the manifest was pushed as {d}, but its bytes hash to {digest}; push it by that \
             digest, or by a tag"
        )));
    }

    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        RegistryError::manifest_invalid(format!("the manifest is not valid JSON: {e}"))
    })?;
    let declared = header_str(headers, header::CONTENT_TYPE)
        .map(bare)
        .filter(|t| !t.is_empty());
    let media_type = match (declared, &manifest.media_type) {
        (Some(ct), Some(mt)) if ct != *mt => {
            return Err(RegistryError::manifest_invalid(format!(
                "the Content-Type says {ct} but the manifest's mediaType says {mt}; send the \
                 manifest's own media type as Content-Type"
            )));
        }
        (Some(ct), _) => ct,
        (None, Some(mt)) => mt.clone(),
        (None, None) => {
            return Err(RegistryError::manifest_invalid(format!(
                "the manifest's media type is unknown: send it in Content-Type (such as \
                 {OCI_MANIFEST})"
            )));
        }
    };
    let kind = kind_of(&media_type)?;
    if manifest.schema_version != Some(2) {
        return Err(RegistryError::manifest_invalid(
            "schemaVersion must be 2 (schema 1 manifests are not accepted)",
        ));
    }

    // What the manifest refers to, and what must be here already.
    let mut blobs: Vec<(String, i64, RefKind)> = Vec::new();
    let mut children: Vec<(String, i64)> = Vec::new();
    let artifact_type = match kind {
        Kind::Image => {
            let Some(config) = &manifest.config else {
                return Err(RegistryError::manifest_invalid(
                    "an image manifest needs a config descriptor (for an artifact without \
                     one, use the empty config application/vnd.oci.empty.v1+json)",
                ));
            };
            blobs.push((
                descriptor_digest(config, "config")?.to_owned(),
                config.size,
                RefKind::Config,
            ));
            let Some(layers) = &manifest.layers else {
                return Err(RegistryError::manifest_invalid(
                    "an image manifest needs a layers array (it may be empty)",
                ));
            };
            for layer in layers {
                let d = descriptor_digest(layer, "layer")?;
                // Foreign layers live at their URLs; this registry never holds them.
                if layer.urls.is_empty() {
                    blobs.push((d.to_owned(), layer.size, RefKind::Layer));
                }
            }
            manifest
                .artifact_type
                .clone()
                .or_else(|| config.media_type.clone())
        }
        Kind::Index => {
            let Some(manifests) = &manifest.manifests else {
                return Err(RegistryError::manifest_invalid(
                    "an index needs a manifests array",
                ));
            };
            for child in manifests {
                children.push((descriptor_digest(child, "manifest")?.to_owned(), child.size));
            }
            manifest.artifact_type.clone()
        }
    };
    let subject = match &manifest.subject {
        Some(s) => Some(descriptor_digest(s, "subject")?.to_owned()),
        None => None,
    };
    let annotations = manifest
        .annotations
        .as_ref()
        .filter(|a| !a.is_empty())
        .map(|a| serde_json::to_string(a).expect("strings serialize"));

    // Checks, storage and the record happen under the collector's shared lock, so a
    // blob seen here cannot be collected before the record that keeps it exists.
    let _gc = registry.gc_shared().await;
    let (r, b, c) = (repo.to_owned(), blobs.clone(), children.clone());
    let storage = registry.storage().clone();
    let missing = registry
        .db(move |m| {
            for (digest, size, kind) in &b {
                let what = if *kind == RefKind::Config {
                    "the config blob"
                } else {
                    "the layer"
                };
                let held = if m.blob_linked(&r, digest)? {
                    storage.blob_len(digest)?
                } else {
                    None
                };
                match held {
                    None => return Ok(Some(RegistryError::manifest_blob_unknown(digest, what))),
                    Some(len) if len as i64 != *size => {
                        return Ok(Some(RegistryError::manifest_invalid(format!(
                            "the descriptor of {what} {digest} says {size} bytes, but the \
                             blob has {len}; fix the size in the manifest"
                        ))));
                    }
                    Some(_) => {}
                }
            }
            for (digest, size) in &c {
                match m.manifest(&r, digest)? {
                    None => {
                        return Ok(Some(RegistryError::manifest_blob_unknown(
                            digest,
                            "the manifest",
                        )));
                    }
                    Some(child) if child.size as i64 != *size => {
                        return Ok(Some(RegistryError::manifest_invalid(format!(
                            "the index lists {digest} with size {size}, but that manifest \
                             has {} bytes; fix the size in the index",
                            child.size
                        ))));
                    }
                    Some(_) => {}
                }
            }
            Ok(None)
        })
        .await?;
    if let Some(error) = missing {
        return Err(error);
    }

    let (d, body) = (digest.clone(), bytes.clone());
    registry
        .store(move |s| {
            if s.blob_len(&d)?.is_none() {
                s.put_blob(&d, &body).map_err(|e| match e {
                    crate::storage::CommitError::Io(e) => e,
                    other => std::io::Error::other(format!("{other:?}")),
                })?;
            }
            Ok(())
        })
        .await?;
    let record = ManifestRecord {
        repository: repo.to_owned(),
        digest: digest.clone(),
        media_type,
        artifact_type,
        subject: subject.clone(),
        size: bytes.len() as u64,
        annotations,
        created_ms: now_ms(),
    };
    let refs: Vec<(String, RefKind)> = blobs
        .into_iter()
        .map(|(d, _, k)| (d, k))
        .chain(children.into_iter().map(|(d, _)| (d, RefKind::Manifest)))
        .collect();
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

/// Finds a manifest by tag or digest.
async fn resolve(registry: &Registry, repo: &str, reference: &str) -> Result<ManifestRecord> {
    let parsed = Reference::parse(reference)?;
    let r = repo.to_owned();
    let found = registry
        .db(move |m| match &parsed {
            Reference::Tag(t) => m.tagged_manifest(&r, t),
            Reference::Digest(d) => m.manifest(&r, d),
        })
        .await?;
    found.ok_or_else(|| RegistryError::manifest_unknown(repo, reference))
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
        .store(move |s| {
            let Some(mut file) = s.open_blob(&d)? else {
                return Ok(None);
            };
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        })
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
    let parsed = Reference::parse(reference)?;
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
