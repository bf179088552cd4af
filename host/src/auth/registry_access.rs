//! Authentication and authorisation for the registry API, the way distribution's token
//! auth does it: `/v2/` answers 401 with a Bearer challenge, `/token` issues JWTs whose
//! `access` claim lists what the caller may do, and every request is checked against
//! them. Basic credentials are accepted directly too, and anonymous callers may pull
//! from public projects. An in-process import carries an [`InternalGrant`] instead.

use super::admin::ADMIN_USER;
use super::jwt::{SERVICE, TokenKeys};
use super::narrow_tokens::NarrowTokens;
use super::scope::Access;
use super::{Caller, Passwords, Presented, Refused, presented};
use crate::store::HostStore;
use crate::upload_sessions::UploadOwners;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use hoist_imports::boundary::own_registry::InternalGrant;
use hoist_registry::{Action, Authorizer, RegistryError, Target, project_of};
use serde_json::json;
use std::net::IpAddr;

type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The accounts callers prove themselves as: the admin, robots (in the store), and the
/// holders of tokens signed with the host's key.
#[derive(Clone)]
pub struct RegistryAccess {
    pub passwords: Passwords,
    pub keys: TokenKeys,
    pub store: HostStore,
    /// The host the token realm names: the configured external host, else (None) the
    /// host the client called.
    pub external_host: Option<String>,
    /// The realm's host when the client's `Host` header is not a well-formed authority.
    pub listen_host: String,
    /// Tokens refused for too narrow a scope, to tell a client that repeats one apart.
    pub narrow: NarrowTokens,
    /// Names the owner of each upload session an import opens.
    pub upload_owners: UploadOwners,
}

impl RegistryAccess {
    /// Who sent these headers from `peer`; `Err` for credentials that do not check out.
    pub fn caller(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<Caller, Refused> {
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match presented(header) {
            Presented::None => Ok(Caller::Anonymous),
            Presented::Basic { user, password } => self.passwords.caller(&user, &password, peer),
            // Even the admin's token carries only the access it was issued for: a token
            // fetched to pull must not push, whoever asked for it.
            Presented::Bearer(token) => match self.keys.verify(&token) {
                Ok(claims) => Ok(Caller::Token(claims)),
                Err(_) => Err(Refused::Wrong),
            },
            Presented::Malformed => Err(Refused::Wrong),
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

impl RegistryAccess {
    /// The Bearer challenge for `scope`. The realm is on the configured external host, else
    /// on the host the client called if its `Host` header is a well-formed authority (so
    /// that a forged header cannot add parameters to the challenge), else on the listen
    /// address; every value is quote-escaped all the same.
    fn challenge(&self, headers: &HeaderMap, scope: Option<String>) -> HeaderValue {
        let host = self.external_host.clone().unwrap_or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| h.parse::<axum::http::uri::Authority>().is_ok())
                .unwrap_or(&self.listen_host)
                .to_owned()
        });
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https")
            .unwrap_or("http");
        let mut value = format!(
            "Bearer realm=\"{}\",service=\"{SERVICE}\"",
            quoted(&format!("{proto}://{host}/token"))
        );
        if let Some(scope) = scope {
            value.push_str(&format!(",scope=\"{}\"", quoted(&scope)));
        }
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    fn unauthorized(
        &self,
        headers: &HeaderMap,
        scope: Option<String>,
        message: &str,
    ) -> RegistryError {
        RegistryError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
            .with_header(header::WWW_AUTHENTICATE, self.challenge(headers, scope))
    }
}

/// The content of an RFC 9110 quoted-string: backslash and double quote escaped.
fn quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `challenge` with `error="insufficient_scope"` added.
fn insufficient_scope(challenge: HeaderValue) -> HeaderValue {
    let value = format!(
        "{},error=\"insufficient_scope\"",
        challenge.to_str().unwrap_or("Bearer")
    );
    HeaderValue::from_str(&value).unwrap_or(challenge)
}

/// 429 with `Retry-After`: a source that failed too many password checks waits.
fn too_many(refused: &Refused, wait: std::time::Duration) -> RegistryError {
    RegistryError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
        refused.message(),
    )
    .with_header(
        header::RETRY_AFTER,
        HeaderValue::from(wait.as_secs().max(1)),
    )
}

fn denied(message: String) -> RegistryError {
    RegistryError::new(StatusCode::FORBIDDEN, "DENIED", message)
}

impl Authorizer for RegistryAccess {
    fn authorize<'a>(&'a self, parts: &'a Parts, target: &'a Target) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let this = self.clone();
            let grant = parts.extensions.get::<InternalGrant>().cloned();
            let peer = super::peer(&parts.extensions);
            let (headers, target) = (parts.headers.clone(), target.clone());
            // Deciding reads the database (robots, project visibility): off the async
            // workers.
            tokio::task::spawn_blocking(move || {
                this.decide(&headers, peer, grant.as_ref(), &target)
            })
            .await
            .map_err(RegistryError::from)?
        })
    }

    fn upload_owner(&self, parts: &Parts) -> Option<String> {
        let grant = parts.extensions.get::<InternalGrant>()?;
        Some(self.upload_owners.owner(&grant.task))
    }
}

impl RegistryAccess {
    fn decide(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        grant: Option<&InternalGrant>,
        target: &Target,
    ) -> Result<()> {
        if let Some(grant) = grant {
            return match target {
                Target::Base => Ok(()),
                Target::Repository { name, action } | Target::Mount { name, action, .. }
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
        let caller = self
            .caller(headers, peer)
            .map_err(|refused| match refused {
                Refused::Wrong => self.unauthorized(
                    headers,
                    None,
                    "the credentials were not accepted; log in again with a valid user or token",
                ),
                Refused::Wait(wait) => too_many(&refused, wait),
            })?;
        match target {
            Target::Base if caller.is_anonymous() && !matches!(caller, Caller::Token(_)) => {
                Err(self.unauthorized(
                    headers,
                    None,
                    "authentication required; log in (docker login) or get a token from /token",
                ))
            }
            Target::Base => Ok(()),
            Target::Catalog if caller.is_admin() => Ok(()),
            Target::Catalog if matches!(&caller, Caller::Token(c) if c.sub == ADMIN_USER) => Ok(()),
            Target::Catalog if caller.is_anonymous() => Err(self.unauthorized(
                headers,
                Some("registry:catalog:*".into()),
                "the catalog is for the admin; log in",
            )),
            Target::Catalog => Err(denied(format!(
                "{} may not list the catalog; it is for the admin",
                caller.name()
            ))),
            Target::Repository { name, action } => {
                self.repository(headers, &caller, name, *action, None)
            }
            Target::Mount { name, from, action } => {
                self.repository(headers, &caller, name, *action, Some(from))
            }
        }
    }

    /// `action` on `name`, for a request that also reads `from` (a mount) if given.
    fn repository(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
        name: &str,
        action: Action,
        from: Option<&str>,
    ) -> Result<()> {
        if caller.may(name, self.is_public(name), action) {
            return Ok(());
        }
        // The scope a client should ask for: pushing needs pull too (clients check what
        // is there first), and a mount reads `from`.
        let actions: &[Action] = if action == Action::Push {
            &[Action::Pull, Action::Push]
        } else {
            &[action]
        };
        let mut scope = Access::repository(name, actions).to_scope();
        if let Some(from) = from {
            scope = format!(
                "{scope} {}",
                Access::repository(from, &[Action::Pull]).to_scope()
            );
        }
        if caller.is_anonymous() {
            Err(self.unauthorized(
                headers,
                Some(scope),
                &format!("{action} on {name} needs a signed-in user; log in"),
            ))
        } else if let Caller::Token(claims) = caller {
            // A token issued for a narrower scope (pull, when the client now pushes or
            // cancels an upload). Distribution answers 401 with `error="insufficient_scope"`
            // in the challenge, naming the scope needed, and clients re-authenticate on
            // 401 (docker and containerd do; a 403 ends their push). /token grants only
            // what the account holds, so an account without the right still ends refused.
            // The same token refused the same scope twice is a client that re-sends what
            // it holds on 401 (see `narrow_tokens`): it gets 403 with the same challenge.
            let status = if self.narrow.refused_again(&claims.jti, &scope) {
                (StatusCode::FORBIDDEN, "DENIED")
            } else {
                (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
            };
            Err(RegistryError::new(
                status.0,
                status.1,
                format!(
                    "this token does not grant {action} on {name}; get a token for the scope \
                     {scope}"
                ),
            )
            .with_header(
                header::WWW_AUTHENTICATE,
                insufficient_scope(self.challenge(headers, Some(scope))),
            ))
        } else {
            Err(denied(format!(
                "{} may not {action} {name}; ask the project's admin for the right",
                caller.name()
            )))
        }
    }
}

/// `GET /token?service=…&scope=…`: a JWT for the part of the asked scopes the caller
/// holds, anonymous or with Basic credentials. Wrong credentials get 401.
pub async fn token(
    State(access): State<RegistryAccess>,
    Query(pairs): Query<Vec<(String, String)>>,
    request: axum::extract::Request,
) -> Response {
    let peer = super::peer(request.extensions());
    let headers = request.headers().clone();
    // Checking a robot's secret and each project's visibility reads the database.
    let issued = tokio::task::spawn_blocking(move || access.issue(&headers, peer, &pairs)).await;
    match issued {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(refused @ Refused::Wait(wait))) => too_many(&refused, wait).into_response(),
        Ok(Err(Refused::Wrong)) => (
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
    /// `pairs`; `Err` when their credentials do not check out.
    fn issue(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        pairs: &[(String, String)],
    ) -> Result<serde_json::Value, Refused> {
        let caller = self.caller(headers, peer)?;
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
        Ok(json!({
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": hoist_common::clock::now_rfc3339(),
        }))
    }
}
