//! The OCI Distribution Spec v1.1 under `/v2/`: routing each request to its endpoint,
//! after the authorizer has seen it.

mod blobs;
mod manifests;
mod referrers;
mod tags;
mod uploads;

#[cfg(feature = "fuzzing")]
pub(crate) use {
    blobs::{Wanted, wanted},
    uploads::content_range,
};

use crate::access::{Action, Target};
use crate::errors::{RegistryError, Result};
use crate::names;
use crate::state::Registry;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use std::collections::HashMap;

pub(crate) const API_VERSION: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");
pub(crate) const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub(crate) const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub(crate) const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub(crate) const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// The `/v2/` routes.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*path}", any(dispatch))
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .headers_mut()
                    .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
                response
            },
        ))
        .with_state(registry)
}

async fn base(State(registry): State<Registry>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        return method_not_allowed(&parts.method).into_response();
    }
    match registry.authorizer().authorize(&parts, &Target::Base).await {
        Ok(()) => (
            [(header::CONTENT_TYPE, "application/json")],
            if parts.method == Method::HEAD {
                ""
            } else {
                "{}"
            },
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// What a path under `/v2/` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Catalog,
    Manifest(String),
    /// `blobs/uploads/`: start an upload (or mount).
    Uploads,
    Upload(String),
    Blob(String),
    TagsList,
    Referrers(String),
}

/// Splits a path under `/v2/` (already percent-decoded, without the prefix) into the
/// repository name and the endpoint. The name is what is left of the endpoint's fixed
/// tail, so names may have any number of components.
pub(crate) fn parse_path(path: &str) -> Option<(Option<String>, Endpoint)> {
    if path == "_catalog" {
        return Some((None, Endpoint::Catalog));
    }
    let segments: Vec<&str> = path.split('/').collect();
    let n = segments.len();
    let name = |tail: usize| -> Option<Option<String>> {
        (n > tail).then(|| Some(segments[..n - tail].join("/")))
    };
    let (repo, endpoint) = match segments.as_slice() {
        [.., "blobs", "uploads", ""] | [.., "blobs", "uploads"] => {
            let tail = if segments[n - 1].is_empty() { 3 } else { 2 };
            (name(tail)?, Endpoint::Uploads)
        }
        [.., "blobs", "uploads", id] => (name(3)?, Endpoint::Upload((*id).to_owned())),
        [.., "blobs", digest] => (name(2)?, Endpoint::Blob((*digest).to_owned())),
        [.., "manifests", reference] => (name(2)?, Endpoint::Manifest((*reference).to_owned())),
        [.., "tags", "list"] => (name(2)?, Endpoint::TagsList),
        [.., "referrers", digest] => (name(2)?, Endpoint::Referrers((*digest).to_owned())),
        _ => return None,
    };
    Some((repo, endpoint))
}

/// What a request to `path` (under `/v2/`) with `method` asks to do, for authorization:
/// reads are pull, writes are push (cancelling an upload too), deletes are delete.
pub fn classify(method: &Method, path: &str) -> Option<(Option<String>, Endpoint, Target)> {
    let (repo, endpoint) = parse_path(path)?;
    let target = match &repo {
        None => Target::Catalog,
        Some(name) => {
            let action = match (method, &endpoint) {
                (&Method::GET | &Method::HEAD, _) => Action::Pull,
                (&Method::DELETE, Endpoint::Manifest(_) | Endpoint::Blob(_)) => Action::Delete,
                _ => Action::Push,
            };
            Target::Repository {
                name: name.clone(),
                action,
            }
        }
    };
    Some((repo, endpoint, target))
}

pub(crate) fn method_not_allowed(method: &Method) -> RegistryError {
    RegistryError::unsupported(format!(
        "{method} is not supported on this endpoint; see the OCI distribution spec for the \
         methods each endpoint takes"
    ))
}

async fn dispatch(State(registry): State<Registry>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match route(&registry, &parts, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn route(registry: &Registry, parts: &Parts, body: Body) -> Result<Response> {
    let (repo, endpoint) = match admit(registry, parts).await {
        Ok(admitted) => admitted,
        Err(refused) => return Err(refused.after_draining(body).await),
    };
    let query = Query::of(parts);
    let method = parts.method.clone();
    let Some(repo) = repo else {
        return match method {
            Method::GET | Method::HEAD => tags::catalog(registry, &query).await,
            m => Err(method_not_allowed(&m)),
        };
    };
    match (endpoint, method) {
        (Endpoint::Manifest(r), Method::GET) => manifests::get(registry, &repo, &r, true).await,
        (Endpoint::Manifest(r), Method::HEAD) => manifests::get(registry, &repo, &r, false).await,
        (Endpoint::Manifest(r), Method::PUT) => {
            manifests::put(registry, &repo, &r, &parts.headers, &query, body).await
        }
        (Endpoint::Manifest(r), Method::DELETE) => manifests::delete(registry, &repo, &r).await,
        (Endpoint::Blob(d), Method::GET) => blobs::get(registry, &repo, &d, parts, true).await,
        (Endpoint::Blob(d), Method::HEAD) => blobs::get(registry, &repo, &d, parts, false).await,
        (Endpoint::Blob(d), Method::DELETE) => blobs::delete(registry, &repo, &d).await,
        (Endpoint::Uploads, Method::POST) => {
            uploads::start(registry, &repo, parts, &query, body).await
        }
        (Endpoint::Upload(id), Method::GET) => uploads::status(registry, &repo, &id).await,
        (Endpoint::Upload(id), Method::PATCH) => {
            uploads::patch(registry, &repo, &id, &parts.headers, body).await
        }
        (Endpoint::Upload(id), Method::PUT) => {
            uploads::finish(registry, &repo, &id, &parts.headers, &query, body).await
        }
        (Endpoint::Upload(id), Method::DELETE) => uploads::cancel(registry, &repo, &id).await,
        (Endpoint::TagsList, Method::GET | Method::HEAD) => {
            tags::list(registry, &repo, &query).await
        }
        (Endpoint::Referrers(d), Method::GET | Method::HEAD) => {
            referrers::list(registry, &repo, &d, &query).await
        }
        (_, m) => Err(method_not_allowed(&m)),
    }
}

/// Where a request goes: its repository (none for the catalog) and endpoint, once the
/// path is a registry endpoint and the caller may do what the method asks there.
/// The longest request target a registry route reads. A name has at most 255
/// characters and a digest 135, so anything longer is a mistake or a probe. (Beyond 64 KiB
/// hyper answers 414 itself, without a body: the `http` crate holds no longer URI.)
const MAX_URI: usize = 8 << 10;

async fn admit(registry: &Registry, parts: &Parts) -> Result<(Option<String>, Endpoint)> {
    let uri_len = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI {
        return Err(RegistryError::new(
            StatusCode::URI_TOO_LONG,
            "UNSUPPORTED",
            format!(
                "the request URI is {uri_len} bytes; the registry reads at most {MAX_URI} \
                 (a repository name has at most 255 characters)"
            ),
        ));
    }
    let raw = parts.uri.path().strip_prefix("/v2/").unwrap_or_default();
    let path = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| RegistryError::name_invalid("the path is not valid UTF-8"))?;
    let Some((repo, endpoint, target)) = classify(&parts.method, &path) else {
        return Err(RegistryError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!(
                "/v2/{path} is not a registry endpoint; they are /v2/<name>/manifests/<ref>, \
                 /v2/<name>/blobs/<digest>, /v2/<name>/blobs/uploads/, \
                 /v2/<name>/tags/list, /v2/<name>/referrers/<digest> and /v2/_catalog"
            ),
        ));
    };
    if let Some(name) = &repo {
        names::check_repository(name)?;
    }
    // A mount also reads `from`: the target says so, for the challenge to ask for both
    // scopes (as distribution's does). The read itself is checked by the mount.
    let target = match (target, &endpoint, Query::of(parts)) {
        (Target::Repository { name, action }, Endpoint::Uploads, query)
            if parts.method == Method::POST
                && query.get("mount").is_some()
                && query
                    .get("from")
                    .is_some_and(|f| names::check_repository(f).is_ok()) =>
        {
            Target::Mount {
                name,
                from: query.get("from").unwrap_or_default().to_owned(),
                action,
            }
        }
        (target, _, _) => target,
    };
    registry.authorizer().authorize(parts, &target).await?;
    Ok((repo, endpoint))
}

/// The query string's parameters (the last value of each).
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    fn of(parts: &Parts) -> Self {
        let pairs = parts
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect::<HashMap<_, _>>()
            })
            .unwrap_or_default();
        Self(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// A header's value as text, if present and readable.
pub(crate) fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header value from text we built (digests, paths of valid names, numbers).
pub(crate) fn value(s: impl AsRef<str>) -> HeaderValue {
    HeaderValue::from_str(s.as_ref()).expect("header values we build are visible ASCII")
}

/// A response with no body and these headers.
pub(crate) fn empty(status: StatusCode, headers: Vec<(HeaderName, HeaderValue)>) -> Response {
    let mut response = (status, Body::empty()).into_response();
    for (name, v) in headers {
        response.headers_mut().insert(name, v);
    }
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_a_name_and_an_endpoint() {
        let p = |s| parse_path(s);
        assert_eq!(
            p("a/b/c/manifests/v1"),
            Some((Some("a/b/c".into()), Endpoint::Manifest("v1".into())))
        );
        assert_eq!(
            p("a/b/blobs/uploads/"),
            Some((Some("a/b".into()), Endpoint::Uploads))
        );
        assert_eq!(
            p("a/b/blobs/uploads"),
            Some((Some("a/b".into()), Endpoint::Uploads))
        );
        assert_eq!(
            p("a/b/blobs/uploads/abc"),
            Some((Some("a/b".into()), Endpoint::Upload("abc".into())))
        );
        assert_eq!(
            p("a/blobs/blobs/sha256:x"),
            Some((Some("a/blobs".into()), Endpoint::Blob("sha256:x".into())))
        );
        assert_eq!(
            p("a/b/tags/list"),
            Some((Some("a/b".into()), Endpoint::TagsList))
        );
        assert_eq!(
            p("a/b/referrers/sha256:x"),
            Some((Some("a/b".into()), Endpoint::Referrers("sha256:x".into())))
        );
        assert_eq!(p("_catalog"), Some((None, Endpoint::Catalog)));
        assert_eq!(p("manifests/v1"), None, "a name is needed");
        assert_eq!(p("a/b/nothing"), None);
    }

    #[test]
    fn every_request_is_classified_for_authorization() {
        let t = |m: Method, p: &str| classify(&m, p).unwrap().2;
        let repo = |action| Target::Repository {
            name: "p/app".into(),
            action,
        };
        assert_eq!(t(Method::GET, "p/app/manifests/v1"), repo(Action::Pull));
        assert_eq!(t(Method::HEAD, "p/app/blobs/sha256:x"), repo(Action::Pull));
        assert_eq!(t(Method::PUT, "p/app/manifests/v1"), repo(Action::Push));
        assert_eq!(t(Method::POST, "p/app/blobs/uploads/"), repo(Action::Push));
        assert_eq!(
            t(Method::DELETE, "p/app/blobs/uploads/x"),
            repo(Action::Push)
        );
        assert_eq!(
            t(Method::DELETE, "p/app/manifests/v1"),
            repo(Action::Delete)
        );
        assert_eq!(
            t(Method::DELETE, "p/app/blobs/sha256:x"),
            repo(Action::Delete)
        );
        assert_eq!(t(Method::GET, "_catalog"), Target::Catalog);
    }
}
