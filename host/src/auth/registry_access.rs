//! Authentication and authorisation for the registry API, the way distribution's token
//! auth does it: `/v2/` answers 401 with a Bearer challenge, `/token` issues JWTs whose
//! `access` claim lists what the caller may do, and every request is checked against
//! them. Basic credentials are accepted directly too, and anonymous callers may pull
//! from public projects. An in-process import carries an [`InternalGrant`] instead.

use super::admin::{ADMIN_USER, AdminPassword};
use super::jwt::{SERVICE, TokenKeys};
use super::scope::Access;
use super::{Caller, Presented, presented};
use crate::store::HostStore;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use hoist_imports::boundary::own_registry::InternalGrant;
use hoist_registry::{Action, Authorizer, RegistryError, Target, project_of};
use serde_json::json;

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The accounts callers prove themselves as: the admin, robots (in the store), and the
/// holders of tokens signed with the host's key.
#[derive(Clone)]
pub struct RegistryAccess {
    pub admin: AdminPassword,
    pub keys: TokenKeys,
    pub store: HostStore,
}

impl RegistryAccess {
    /// Who sent these headers; None for credentials that do not check out.
    pub fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match presented(header) {
            Presented::None => Some(Caller::Anonymous),
            Presented::Basic { user, password } => {
                super::basic_caller(&user, &password, &self.admin, &self.store)
            }
            // Even the admin's token carries only the access it was issued for: a token
            // fetched to pull must not push, whoever asked for it.
            Presented::Bearer(token) => match self.keys.verify(&token) {
                Ok(claims) => Some(Caller::Token(claims)),
                Err(_) => None,
            },
            Presented::Malformed => None,
        }
    }

    /// Whether the project of `repository` is public. Blocking: a database read.
    pub fn is_public(&self, repository: &str) -> bool {
        self.store
            .db
            .project(project_of(repository))
            .ok()
            .flatten()
            .is_some_and(|p| p.public)
    }
}

/// The Bearer challenge for `scope`, with the realm on the host the client called.
fn challenge(headers: &HeaderMap, scope: Option<String>) -> HeaderValue {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let mut value = format!("Bearer realm=\"{proto}://{host}/token\",service=\"{SERVICE}\"");
    if let Some(scope) = scope {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// `challenge` with `error="insufficient_scope"` added.
fn insufficient_scope(challenge: HeaderValue) -> HeaderValue {
    let value = format!(
        "{},error=\"insufficient_scope\"",
        challenge.to_str().unwrap_or("Bearer")
    );
    HeaderValue::from_str(&value).unwrap_or(challenge)
}

fn unauthorized(headers: &HeaderMap, scope: Option<String>, message: &str) -> RegistryError {
    RegistryError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
        .with_header(header::WWW_AUTHENTICATE, challenge(headers, scope))
}

fn denied(message: String) -> RegistryError {
    RegistryError::new(StatusCode::FORBIDDEN, "DENIED", message)
}

impl Authorizer for RegistryAccess {
    fn authorize<'a>(&'a self, parts: &'a Parts, target: &'a Target) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let this = self.clone();
            let grant = parts.extensions.get::<InternalGrant>().cloned();
            let (headers, target) = (parts.headers.clone(), target.clone());
            // Deciding reads the database (robots, project visibility): off the async
            // workers.
            tokio::task::spawn_blocking(move || this.decide(&headers, grant.as_ref(), &target))
                .await
                .map_err(RegistryError::from)?
        })
    }
}

impl RegistryAccess {
    fn decide(
        &self,
        headers: &HeaderMap,
        grant: Option<&InternalGrant>,
        target: &Target,
    ) -> Result<()> {
        if let Some(grant) = grant {
            return match target {
                Target::Base => Ok(()),
                Target::Repository { name, action }
                    if project_of(name) == grant.project && *action != Action::Delete =>
                {
                    Ok(())
                }
                _ => Err(denied(format!(
                    "the import task {} may only write into the project {}",
                    grant.task, grant.project
                ))),
            };
        }
        let caller = self.caller(headers).ok_or_else(|| {
            unauthorized(
                headers,
                None,
                "the credentials were not accepted; log in again with a valid user or token",
            )
        })?;
        match target {
            Target::Base if caller.is_anonymous() && !matches!(caller, Caller::Token(_)) => {
                Err(unauthorized(
                    headers,
                    None,
                    "authentication required; log in (docker login) or get a token from /token",
                ))
            }
            Target::Base => Ok(()),
            Target::Catalog if caller.is_admin() => Ok(()),
            Target::Catalog if matches!(&caller, Caller::Token(c) if c.sub == ADMIN_USER) => Ok(()),
            Target::Catalog if caller.is_anonymous() => Err(unauthorized(
                headers,
                Some("registry:catalog:*".into()),
                "the catalog is for the admin; log in",
            )),
            Target::Catalog => Err(denied(format!(
                "{} may not list the catalog; it is for the admin",
                caller.name()
            ))),
            Target::Repository { name, action } => {
                if caller.may(name, self.is_public(name), *action) {
                    return Ok(());
                }
                let scope = Access::repository(name, &[*action]).to_scope();
                if caller.is_anonymous() {
                    Err(unauthorized(
                        headers,
                        Some(scope),
                        &format!("{action} on {name} needs a signed-in user; log in"),
                    ))
                } else if let Caller::Token(_) = caller {
                    // A token issued for a narrower scope (pull, when the client now
                    // pushes): 403 with a challenge naming the scope needed and
                    // `error="insufficient_scope"` (RFC 6750 §3.1), so the client asks
                    // /token again (oras does). /token grants only what the account holds,
                    // so an account without the right still ends refused.
                    let needed = if *action == Action::Push {
                        Access::repository(name, &[Action::Pull, Action::Push]).to_scope()
                    } else {
                        scope
                    };
                    Err(denied(format!(
                        "this token does not grant {action} on {name}; get a token for the \
                         scope {needed}"
                    ))
                    .with_header(
                        header::WWW_AUTHENTICATE,
                        insufficient_scope(challenge(headers, Some(needed))),
                    ))
                } else {
                    Err(denied(format!(
                        "{} may not {action} {name}; ask the project's admin for the right",
                        caller.name()
                    )))
                }
            }
        }
    }
}

/// `GET /token?service=…&scope=…`: a JWT for the part of the asked scopes the caller
/// holds, anonymous or with Basic credentials. Wrong credentials get 401.
pub async fn token(
    State(access): State<RegistryAccess>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    // Checking a robot's secret and each project's visibility reads the database.
    let issued = tokio::task::spawn_blocking(move || access.issue(&headers, &pairs)).await;
    match issued {
        Ok(Some(body)) => Json(body).into_response(),
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"hoist\"")],
            Json(json!({"errors": [{"code": "UNAUTHORIZED",
                "message": "incorrect username or password"}]})),
        )
            .into_response(),
        Err(e) => RegistryError::internal(e).into_response(),
    }
}

impl RegistryAccess {
    /// The token answer for a caller with these headers asking for the `scope`s among
    /// `pairs`; None when their credentials do not check out.
    fn issue(&self, headers: &HeaderMap, pairs: &[(String, String)]) -> Option<serde_json::Value> {
        let caller = self.caller(headers)?;
        let granted: Vec<Access> = pairs
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' '))
            .filter_map(Access::parse)
            .map(|wanted| {
                if wanted.kind == "registry" && caller.is_admin() {
                    wanted
                } else {
                    caller.grant(&wanted, self.is_public(&wanted.name))
                }
            })
            .collect();
        let subject = match &caller {
            Caller::Anonymous => String::new(),
            other => other.name(),
        };
        let (token, expires_in) = self.keys.issue(&subject, granted);
        Some(json!({
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": hoist_common::clock::now_rfc3339(),
        }))
    }
}
