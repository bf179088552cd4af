//! Who is calling the API: the admin or a robot (Basic), or the holder of a token from the
//! registry's token endpoint (Bearer), or the web UI's session cookie; anyone else is
//! anonymous. A wrong password is a
//! 401, never a silent fall back to anonymous.

use super::{ApiError, AppState};
use crate::auth::admin::ADMIN_USER;
use crate::auth::session::{SessionCheck, session_caller};
use crate::auth::{Caller, Presented, presented};
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
        let refused = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the credentials were not accepted; sign in as the admin, or use a token",
            )
        };
        let presented = presented(header);
        let (method, headers) = (parts.method.clone(), parts.headers.clone());
        let (admin, keys, store) = (state.admin.clone(), state.keys.clone(), state.store.clone());
        // A robot's secret and a session's account are looked up in the database.
        let found = tokio::task::spawn_blocking(move || match presented {
            // Without credentials, the web UI's session cookie may stand for them.
            Presented::None => match session_caller(&method, &headers, &keys, &store) {
                SessionCheck::None => Ok(Caller::Anonymous),
                SessionCheck::Caller(c) => Ok(c),
                SessionCheck::Refused(m) => Err(Some(m)),
            },
            Presented::Basic { user, password } => {
                crate::auth::basic_caller(&user, &password, &admin, &store).ok_or(None)
            }
            Presented::Bearer(token) => match keys.verify(&token) {
                Ok(claims) if claims.sub == ADMIN_USER => Ok(Caller::Admin),
                Ok(claims) => Ok(Caller::Token(claims)),
                Err(_) => Err(None),
            },
            Presented::Malformed => Err(None),
        })
        .await
        .map_err(ApiError::internal)?;
        match found {
            Ok(caller) => Ok(ApiCaller(caller)),
            Err(Some(why)) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why)),
            Err(None) => Err(refused()),
        }
    }
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
