//! Who is calling the API: the admin or a robot (Basic), or the web UI's session cookie;
//! anyone else is anonymous. A wrong password is a 401, never a silent fall back to
//! anonymous. A registry token (Bearer) is refused here whatever its scope: it was issued
//! for `/v2` access to named repositories, and reading it as its subject's full rights
//! would turn a pull token of the admin's into an admin session.

use super::{ApiError, AppState};
use crate::auth::session::{SessionCheck, session_caller};
use crate::auth::{Caller, Presented, REGISTRY_TOKEN_REFUSED, Refused, presented};
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let presented = presented(header);
        let (method, headers) = (parts.method.clone(), parts.headers.clone());
        let peer = crate::auth::peer(&parts.extensions);
        let (passwords, keys, store) = (
            state.passwords.clone(),
            state.keys.clone(),
            state.store.clone(),
        );
        // A robot's secret and a session's account are looked up in the database.
        let found = tokio::task::spawn_blocking(move || match presented {
            // Without credentials, the web UI's session cookie may stand for them.
            Presented::None => match session_caller(&method, &headers, &keys, &store) {
                SessionCheck::None => Ok(Caller::Anonymous),
                SessionCheck::Caller(c) => Ok(c),
                SessionCheck::Refused(m) => Err(unauthorized(m)),
            },
            Presented::Basic { user, password } => passwords
                .caller(&user, &password, peer)
                .map_err(|refused| match refused {
                    Refused::Wrong => refused_credentials(),
                    Refused::Wait(wait) => ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_failures",
                        refused.message(),
                    )
                    .retry_after(wait),
                }),
            Presented::Bearer(_) => Err(unauthorized(REGISTRY_TOKEN_REFUSED)),
            Presented::Malformed => Err(refused_credentials()),
        })
        .await
        .map_err(ApiError::internal)?;
        found.map(ApiCaller)
    }
}

fn unauthorized(why: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why)
}

fn refused_credentials() -> ApiError {
    unauthorized(
        "the credentials were not accepted; sign in as the admin or a robot, or use the web \
         UI's session",
    )
}

impl ApiCaller {
    /// 401 for an anonymous caller, 403 for one without the right.
    pub fn require(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else if self.0.is_anonymous() {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!("{what} needs a signed-in user; pass credentials"),
            ))
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("{} may not {what}", self.0.name()),
            ))
        }
    }
}
