//! Content discovery: a repository's tags and the catalog of repositories, in byte
//! order, paginated with `n` and `last` and a `Link` to the next page.

use super::{Query, Registry, value};
use crate::errors::{RegistryError, Result};
use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The most entries one page holds, whatever `n` asks for.
pub(crate) const MAX_PAGE: u64 = 10_000;
/// The catalog's page when `n` is absent (the tag list then has no limit but this one).
pub(crate) const CATALOG_PAGE: u64 = 1_000;

/// Reads `n`: absent gives `default`; not a number is a 400; larger than the cap is cut.
fn page_size(query: &Query, default: u64) -> Result<u64> {
    match query.get("n") {
        None => Ok(default),
        Some(n) => n
            .trim()
            .parse::<u64>()
            .map(|n| n.min(MAX_PAGE))
            .map_err(|_| {
                RegistryError::pagination_invalid(format!(
                    "n={n:?} is not a number of entries; use a whole number from 0 to \
                     {MAX_PAGE}"
                ))
            }),
    }
}

/// The entries of one page, and the `Link` to the next when there is more. `fetch(last,
/// limit)` returns names after `last`, in order.
async fn page(
    query: &Query,
    default: u64,
    base: &str,
    fetch: impl AsyncFnOnce(Option<String>, u64) -> Result<Vec<String>>,
) -> Result<(Vec<String>, Option<String>)> {
    let n = page_size(query, default)?;
    if n == 0 {
        return Ok((Vec::new(), None));
    }
    let last = query.get("last").map(str::to_owned);
    // One more than asked tells whether another page follows.
    let mut names = fetch(last, n + 1).await?;
    let more = names.len() as u64 > n;
    names.truncate(n as usize);
    let link = match (more, names.last()) {
        (true, Some(last)) => {
            let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
            Some(format!("<{base}?last={last}&n={n}>; rel=\"next\""))
        }
        _ => None,
    };
    Ok((names, link))
}

fn with_link(body: serde_json::Value, link: Option<String>) -> Response {
    let mut response = Json(body).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, value(link));
    }
    response
}

/// `GET /v2/<name>/tags/list`.
pub(super) async fn list(registry: &Registry, repo: &str, query: &Query) -> Result<Response> {
    let r = repo.to_owned();
    if !registry.db(move |m| m.repository_exists(&r)).await? {
        return Err(RegistryError::name_unknown(format!(
            "there is no repository {repo}; it appears when something is pushed to it"
        ))
        .with_detail(json!({ "name": repo })));
    }
    let base = format!("/v2/{repo}/tags/list");
    let (tags, link) = page(query, MAX_PAGE, &base, async |last, limit| {
        let r = repo.to_owned();
        registry
            .db(move |m| m.tags(&r, last.as_deref(), limit))
            .await
    })
    .await?;
    Ok(with_link(json!({ "name": repo, "tags": tags }), link))
}

/// `GET /v2/_catalog`.
pub(super) async fn catalog(registry: &Registry, query: &Query) -> Result<Response> {
    let (repositories, link) = page(query, CATALOG_PAGE, "/v2/_catalog", async |last, limit| {
        registry
            .db(move |m| m.repositories(last.as_deref(), limit))
            .await
    })
    .await?;
    Ok(with_link(json!({ "repositories": repositories }), link))
}
