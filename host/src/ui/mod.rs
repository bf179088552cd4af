//! The web UI: sign-in, projects, a project's repositories and tags, and the import page
//! with live progress.
//!
//! Why this build: the pages are one static HTML shell, one vanilla JavaScript file and
//! one stylesheet under `assets/`, embedded in the binary with `include_str!`. The host
//! stays one binary built by cargo alone: no npm, no bundler, nothing to download at
//! build time, and nothing to keep reproducible beyond the source files themselves. The
//! script talks to the same JSON API as every other client (`/api/v1/…`), so the UI can
//! do nothing the API does not allow, and it follows a task through the API's
//! Server-Sent Events stream. Two routes are the UI's own: the session (sign-in and
//! sign-out) and a read-only listing of a project's tags with their platforms, which
//! needs the blob store that the API's state does not hold.
//!
//! The Content-Security-Policy allows scripts, styles and connections to this origin
//! only, and no inline script at all: the page can run nothing but `app.js` and
//! `sync.js` (its sync pages), even if a
//! tag name or an error message ever slipped into the markup (the script writes text
//! with `textContent`, never `innerHTML`).

mod session;

use crate::auth::registry_access::RegistryAccess;
use crate::auth::session::{SessionCheck, session_caller};
use crate::auth::{Caller, Presented, presented};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use hoist_common::clock::rfc3339_of_ms;
use hoist_plugin::referrer::Kind;
use hoist_registry::{Action, Registry};
use serde::Serialize;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const SYNC_JS: &str = include_str!("assets/sync.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Scripts, styles, images and connections from this origin only; no inline script, no
/// framing, no form posts elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

#[derive(Clone)]
pub struct UiState {
    pub access: RegistryAccess,
    pub registry: Registry,
}

/// The UI's routes: the pages under `/ui/`, `/` sending browsers there, the session, and
/// the tag listing.
pub fn router(registry: Registry, access: RegistryAccess) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route(
            "/ui/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/sync.js",
            get(|| async { asset(SYNC_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/ui/session",
            get(session::whoami)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .route("/ui/data/projects/{project}/tags", get(project_tags))
        .with_state(UiState { access, registry })
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            // The assets are compiled in; a new host brings new ones, and a page must
            // not pair an old script with a new API.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    secure_headers(response.headers_mut());
    response
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// A JSON error as the API writes it, without a Basic challenge: the UI signs in with its
/// own form, and a challenge would make the browser pop up its password dialog.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

/// The caller of a UI data request: Basic credentials as the API takes them,
/// else the session cookie, else anonymous.
fn ui_caller(
    access: &RegistryAccess,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Result<Caller, String> {
    let refused = |m: &str| m.to_owned();
    match presented(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    ) {
        Presented::None => {}
        Presented::Basic { user, password } => {
            return access
                .passwords
                .caller(&user, &password, peer)
                .map_err(|r| r.message());
        }
        Presented::Bearer(_) => return Err(refused(crate::auth::REGISTRY_TOKEN_REFUSED)),
        Presented::Malformed => return Err(refused("the Authorization header is unreadable")),
    }
    match session_caller(
        &axum::http::Method::GET,
        headers,
        &access.keys,
        &access.store,
    ) {
        SessionCheck::None => Ok(Caller::Anonymous),
        SessionCheck::Caller(c) => Ok(c),
        SessionCheck::Refused(m) => Err(refused(m)),
    }
}

#[derive(Serialize)]
struct TagRow {
    repository: String,
    tag: String,
    digest: String,
    media_type: String,
    /// The manifest, its config and its layers; for an index, all of its images'.
    size: Option<u64>,
    /// `os/arch[/variant]` of each image the tag names.
    platforms: Vec<String>,
    /// When the tag last moved, RFC 3339.
    updated_at: String,
    /// `import` or `push`.
    origin: &'static str,
    imported_from: Option<String>,
    import_task: Option<String>,
    /// What refers to the tagged manifest, as a person reads it: `signed, SBOM`; empty
    /// when nothing does.
    referrers: String,
}

/// Whether a tag stands for a referrer rather than an image: the referrers tag schema's
/// `sha256-<hex>` and cosign's `sha256-<hex>.sig`/`.att`/`.sbom`. The page shows them
/// under the image they belong to, not as images.
fn is_referrer_tag(tag: &str) -> bool {
    let Some((alg, rest)) = tag.split_once('-') else {
        return false;
    };
    let hex = rest.split_once('.').map_or(rest, |(hex, _)| hex);
    matches!(alg, "sha256" | "sha512")
        && hex.len() >= 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The kinds of what refers to `digest` in `repository`: its referrers, by artifact
/// type, and cosign's legacy tags beside it.
fn referrer_kinds(
    db: &hoist_registry::Metadata,
    repository: &str,
    digest: &str,
    tags: &std::collections::HashSet<(String, String)>,
) -> anyhow::Result<String> {
    let mut kinds: Vec<Kind> = db
        .referrers(repository, digest, None)?
        .iter()
        .map(|m| Kind::of(m.artifact_type.as_deref().unwrap_or(""), None))
        .collect();
    for suffix in hoist_plugin::referrer::COSIGN_SUFFIXES {
        let tag = hoist_plugin::referrer::cosign_tag(digest, suffix);
        if tags.contains(&(repository.to_owned(), tag.clone())) {
            kinds.push(Kind::of("", Some(&tag)));
        }
    }
    Ok(hoist_plugin::referrer::summary(kinds))
}

/// Tags the page shows at most; a project with more is better served by the API.
const TAG_LIMIT: u64 = 500;

/// A project's repositories and their tags, for the project page.
async fn project_tags(
    State(state): State<UiState>,
    Path(project): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let access = state.access.clone();
    let peer = crate::auth::peer(request.extensions());
    let headers = request.headers().clone();
    let listed = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let caller = match ui_caller(&access, &headers, peer) {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        let db = &access.store.db;
        let Some(found) = db.project(&project)? else {
            return Ok(Ok(None));
        };
        if !caller.may(&format!("{project}/_"), found.public, Action::Pull) {
            return Ok(Ok(None));
        }
        let tags = db.project_tags(&project, TAG_LIMIT)?;
        let names: std::collections::HashSet<(String, String)> = tags
            .iter()
            .map(|t| (t.repository.clone(), t.tag.clone()))
            .collect();
        let mut images = Vec::new();
        for t in tags.into_iter().filter(|t| !is_referrer_tag(&t.tag)) {
            let kinds = referrer_kinds(db, &t.repository, &t.digest, &names)?;
            images.push((t, kinds));
        }
        Ok(Ok(Some((db.project_repositories(&project)?, images))))
    })
    .await;
    let (repositories, tags) = match listed {
        Ok(Ok(Ok(Some(listed)))) => listed,
        Ok(Ok(Err(why))) => return error(StatusCode::UNAUTHORIZED, "unauthorized", why),
        // The same answer for a missing project and a hidden one, as the API gives.
        Ok(Ok(Ok(None))) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "there is no such project, or it is not yours to see",
            );
        }
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "listing a project's tags failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the host failed to answer; its log has the details",
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    };
    let mut rows = Vec::with_capacity(tags.len());
    for (t, referrers) in tags {
        let summary = state.registry.summarize(&t.digest).await;
        rows.push(TagRow {
            size: summary.size,
            platforms: summary.platforms,
            updated_at: rfc3339_of_ms(t.updated_ms),
            origin: if t.imported_from.is_some() {
                "import"
            } else {
                "push"
            },
            repository: t.repository,
            tag: t.tag,
            digest: t.digest,
            media_type: t.media_type,
            imported_from: t.imported_from,
            import_task: t.import_task,
            referrers,
        });
    }
    Json(serde_json::json!({"repositories": repositories, "tags": rows})).into_response()
}

#[cfg(test)]
mod tests {
    use super::is_referrer_tag;

    #[test]
    fn referrer_tags_are_told_from_image_tags() {
        let hex = "0123456789abcdef".repeat(4);
        for tag in [
            format!("sha256-{hex}"),
            format!("sha256-{hex}.sig"),
            format!("sha256-{hex}.att"),
            format!("sha512-{hex}{hex}"),
        ] {
            assert!(is_referrer_tag(&tag), "{tag}");
        }
        for tag in ["v1", "latest", "sha256-abc", "sha1-0123", "sha256-zz.sig"] {
            assert!(!is_referrer_tag(tag), "{tag}");
        }
        assert!(!is_referrer_tag(&format!("md5-{hex}")));
    }
}
