//! The web UI's session routes: sign in (check the admin's or a robot's password and set
//! the session cookie), sign out, and who the session is. What the cookie means, and the
//! checks against request forgery, are in [`crate::auth::session`].

use super::{UiState, error, secure_headers};
use crate::auth::jwt::SESSION_TTL_SECS;
use crate::auth::session::{COOKIE, CSRF_HEADER, SessionCheck, same_origin, session_caller};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

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
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
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
    let access = state.access.clone();
    let user = username.clone();
    let checked = tokio::task::spawn_blocking(move || {
        access.passwords.caller(&user, &password, Some(peer.ip()))
    })
    .await;
    let access = &state.access;
    let caller = match checked {
        Ok(Ok(caller)) => caller,
        Ok(Err(refused @ crate::auth::Refused::Wait(wait))) => {
            let mut answer = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                refused.message(),
            );
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, wait.as_secs().max(1).into());
            return answer;
        }
        _ => {
            tracing::info!(user = %username, "web UI sign-in refused");
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the user name or the password is wrong",
            );
        }
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
    let access = state.access.clone();
    let check = tokio::task::spawn_blocking(move || {
        session_caller(&Method::GET, &headers, &access.keys, &access.store)
    })
    .await
    .unwrap_or(SessionCheck::Refused(
        "the host failed to check the session",
    ));
    match check {
        SessionCheck::Caller(c) => {
            Json(serde_json::json!({"user": c.name(), "admin": c.is_admin()})).into_response()
        }
        SessionCheck::None => error(StatusCode::UNAUTHORIZED, "unauthorized", "not signed in"),
        SessionCheck::Refused(m) => error(StatusCode::UNAUTHORIZED, "unauthorized", m),
    }
}
