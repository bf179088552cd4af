//! Web UI sessions: `POST /ui/session` checks the admin's or a robot's password and sets
//! an HttpOnly cookie holding a short-lived session token signed with the host's token
//! key; the JSON API accepts that cookie as it accepts Basic credentials.
//!
//! Against cross-site request forgery, the cookie is `SameSite=Strict` (a browser sends
//! it with no request that another site started), and every request that changes state
//! with it must also carry the `X-Hoist-UI` header, which only a same-origin script can
//! set (another origin's would need a CORS preflight that the host never grants), and an
//! `Origin`, when the browser sends one, naming this host. Reads (GET, and the SSE
//! stream, which `EventSource` opens without custom headers) need only the cookie.
//!
//! The session token names its subject only. Its rights are looked up again at each
//! request, so a robot deleted meanwhile loses its session at once.

use super::{UiState, error, secure_headers};
use crate::auth::jwt::{SESSION_TTL_SECS, TokenKeys};
use crate::auth::{Caller, ROBOT_PREFIX, admin::ADMIN_USER};
use crate::metadata::Metadata;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

pub const COOKIE: &str = "hoist_session";
/// The header the UI's script sends with every request that changes state.
pub const CSRF_HEADER: &str = "x-hoist-ui";

pub enum SessionCheck {
    /// No session cookie.
    None,
    Caller(Caller),
    /// A cookie that does not stand: expired, forged, or used without the CSRF header.
    Refused(&'static str),
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
}

/// Whether the request's `Origin`, if any, is this host (the `Host` it was sent to).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or_default();
    !host.is_empty() && origin_host == host
}

/// The caller a session cookie stands for.
pub fn session_caller(
    method: &Method,
    headers: &HeaderMap,
    keys: &TokenKeys,
    metadata: &Metadata,
) -> SessionCheck {
    let Some(token) = cookie(headers) else {
        return SessionCheck::None;
    };
    let Ok(claims) = keys.verify_session(&token) else {
        return SessionCheck::Refused("the session has expired; sign in again");
    };
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && (!headers.contains_key(CSRF_HEADER) || !same_origin(headers)) {
        return SessionCheck::Refused(
            "a request that changes something must come from the Hoist page itself \
             (X-Hoist-UI header, same origin)",
        );
    }
    caller_named(&claims.sub, metadata).map_or(
        SessionCheck::Refused("the session's account is gone"),
        SessionCheck::Caller,
    )
}

/// The caller a session subject names, with its rights as they are now.
fn caller_named(subject: &str, metadata: &Metadata) -> Option<Caller> {
    if subject == ADMIN_USER {
        return Some(Caller::Admin);
    }
    let name = subject.strip_prefix(ROBOT_PREFIX)?;
    let (robot, _) = metadata.robot(name).ok()??;
    Some(Caller::Robot {
        name: robot.name,
        scopes: robot.scopes,
    })
}

/// Leaves out the API's `WWW-Authenticate: Basic` on the UI script's requests: the page
/// has its own sign-in form, and the challenge would make the browser open its
/// password dialog over it.
pub async fn strip_basic_challenge(request: Request, next: Next) -> Response {
    let from_ui = request.headers().contains_key(CSRF_HEADER);
    let mut response = next.run(request).await;
    if from_ui {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    username: String,
    password: String,
}

fn set_cookie(value: &str, max_age: u64) -> HeaderValue {
    // No `Secure`: the host serves plain HTTP on loopback and behind TLS-terminating
    // proxies alike; behind TLS the browser only ever sends it over TLS anyway.
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("the token is base64url")
}

pub async fn sign_in(
    State(state): State<UiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !headers.contains_key(CSRF_HEADER) || !same_origin(&headers) {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "sign in from the Hoist page",
        );
    }
    let Ok(SignIn { username, password }) = serde_json::from_slice(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "send {\"username\": …, \"password\": …}",
        );
    };
    let access = &state.access;
    let Some(caller) =
        crate::auth::basic_caller(&username, &password, &access.admin, &access.metadata)
    else {
        tracing::info!(user = %username, "web UI sign-in refused");
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the user name or the password is wrong",
        );
    };
    let name = caller.name();
    let (token, ttl) = access.keys.issue_session(&name);
    tracing::info!(user = %name, "web UI sign-in");
    let mut response =
        Json(serde_json::json!({"user": name, "admin": caller.is_admin()})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&token, ttl.min(SESSION_TTL_SECS)),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(response.headers_mut());
    response
}

pub async fn sign_out(headers: HeaderMap) -> Response {
    if !headers.contains_key(CSRF_HEADER) || !same_origin(&headers) {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "sign out from the Hoist page",
        );
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0));
    response
}

/// Who the session is, for the page to decide between the sign-in form and the rest.
pub async fn whoami(State(state): State<UiState>, headers: HeaderMap) -> Response {
    let access = &state.access;
    match session_caller(&Method::GET, &headers, &access.keys, &access.metadata) {
        SessionCheck::Caller(c) => {
            Json(serde_json::json!({"user": c.name(), "admin": c.is_admin()})).into_response()
        }
        SessionCheck::None => error(StatusCode::UNAUTHORIZED, "unauthorized", "not signed in"),
        SessionCheck::Refused(m) => error(StatusCode::UNAUTHORIZED, "unauthorized", m),
    }
}
