//! Web UI sessions: who a session cookie stands for.
//!
//! Signing in (`POST /ui/session`, in the UI's routes) sets an HttpOnly cookie holding a
//! short-lived session token signed with the host's token key, for a different audience
//! than registry tokens. The JSON API accepts that cookie as it accepts Basic credentials.
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

use super::admin::ADMIN_USER;
use super::jwt::TokenKeys;
use super::{Caller, ROBOT_PREFIX};
use crate::store::HostStore;
use axum::http::{HeaderMap, Method, header};

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
pub fn same_origin(headers: &HeaderMap) -> bool {
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
    store: &HostStore,
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
    caller_named(&claims.sub, store).map_or(
        SessionCheck::Refused("the session's account is gone"),
        SessionCheck::Caller,
    )
}

/// The caller a session subject names, with its rights as they are now.
fn caller_named(subject: &str, store: &HostStore) -> Option<Caller> {
    if subject == ADMIN_USER {
        return Some(Caller::Admin);
    }
    let name = subject.strip_prefix(ROBOT_PREFIX)?;
    let (robot, _) = store.robot(name).ok()??;
    Some(Caller::Robot {
        name: robot.name,
        scopes: robot.scopes,
    })
}
