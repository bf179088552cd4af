//! The referrers API (OCI 1.1): the manifests in a repository whose `subject` is a
//! given digest, as an image index of their descriptors.

use super::{OCI_FILTERS_APPLIED, Query, Registry, names};
use crate::errors::Result;
use crate::manifest::OCI_INDEX;
use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`. A subject nobody refers to, or
/// one this registry has never seen, gives an empty index: referrers may be pushed
/// before their subject.
pub(super) async fn list(
    registry: &Registry,
    repo: &str,
    digest: &str,
    query: &Query,
) -> Result<Response> {
    let subject = names::check_digest(digest)?.to_owned();
    let filter = query
        .get("artifactType")
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let (r, f) = (repo.to_owned(), filter.clone());
    let found = registry
        .db(move |m| m.referrers(&r, &subject, f.as_deref()))
        .await?;
    let manifests: Vec<Value> = found
        .into_iter()
        .map(|m| {
            let mut d = json!({
                "mediaType": m.media_type,
                "digest": m.digest,
                "size": m.size,
            });
            if let Some(t) = m.artifact_type {
                d["artifactType"] = json!(t);
            }
            if let Some(a) = m
                .annotations
                .and_then(|a| serde_json::from_str::<Value>(&a).ok())
            {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let mut response = Json(json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if filter.is_some() {
        response.headers_mut().insert(
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
