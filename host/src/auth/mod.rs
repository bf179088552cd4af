//! Who is calling, and what they may do.
//!
//! Callers prove themselves with Basic credentials (the admin account, or a robot and its
//! secret) or with a bearer token from the host's token endpoint. Rights are per project:
//! anonymous callers may pull from public projects, robots have the actions their scopes
//! name on their projects, and the admin may do anything.

pub mod admin;
pub mod jwt;
pub mod narrow_tokens;
pub mod registry_access;
pub mod scope;
pub mod session;
pub mod throttle;

use crate::store::{HostStore, ProjectScope};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hoist_registry::Action;
use jwt::Claims;
use scope::Access;

use sha2::{Digest as _, Sha256};

/// The username robots log in with is `robot$<name>`, as Harbor spells it, so that a
/// robot can never be mistaken for the admin.
pub const ROBOT_PREFIX: &str = "robot$";

/// An authenticated caller.
#[derive(Clone, Debug)]
pub enum Caller {
    Anonymous,
    Admin,
    Robot {
        name: String,
        scopes: Vec<ProjectScope>,
    },
    /// A bearer token: the rights were decided when it was issued.
    Token(Claims),
}

/// Why `/api/v1` and the UI's data refuse a Bearer token: registry tokens grant `/v2`
/// access to the repositories they name, and nothing else.
pub const REGISTRY_TOKEN_REFUSED: &str = "a registry token is accepted only by /v2; the API \
    takes Basic credentials (the admin or a robot) or the web UI's session";

impl Caller {
    /// The name for logs and records: never a secret.
    pub fn name(&self) -> String {
        match self {
            Caller::Anonymous => "anonymous".into(),
            Caller::Admin => admin::ADMIN_USER.into(),
            Caller::Robot { name, .. } => format!("{ROBOT_PREFIX}{name}"),
            Caller::Token(c) if c.sub.is_empty() => "anonymous".into(),
            Caller::Token(c) => c.sub.clone(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Caller::Anonymous) || matches!(self, Caller::Token(c) if c.sub.is_empty())
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    /// Whether the caller may do `action` to `repository`, whose project is public or
    /// not.
    pub fn may(&self, repository: &str, public: bool, action: Action) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Anonymous => public && action == Action::Pull,
            Caller::Robot { scopes, .. } => {
                let project = hoist_registry::project_of(repository);
                (public && action == Action::Pull)
                    || scopes
                        .iter()
                        .any(|s| s.project == project && s.actions.contains(&action))
            }
            Caller::Token(claims) => {
                (public && action == Action::Pull)
                    || claims.access.iter().any(|a| a.grants(repository, action))
            }
        }
    }

    /// Whether the caller may manage `project` itself (its settings, robots, deletion).
    pub fn may_manage(&self, _project: &str) -> bool {
        self.is_admin()
    }

    /// What to put in a token for a request of `wanted`: the part the caller holds.
    pub fn grant(&self, wanted: &Access, public: bool) -> Access {
        let actions: Vec<Action> = Action::parse_list(&wanted.actions.join(","))
            .into_iter()
            .filter(|&a| wanted.kind == "repository" && self.may(&wanted.name, public, a))
            .collect();
        Access::repository(&wanted.name, &actions)
    }
}

/// Why Basic credentials were not taken.
pub enum Refused {
    /// They do not check out.
    Wrong,
    /// Too many failures from this source: try again after this long.
    Wait(std::time::Duration),
}

impl Refused {
    /// The message for the caller.
    pub fn message(&self) -> String {
        match self {
            Refused::Wrong => "the user name or the password is wrong".into(),
            Refused::Wait(wait) => format!(
                "too many failed sign-ins from this address; try again in {} s",
                wait.as_secs().max(1)
            ),
        }
    }
}

/// Where a password is checked: the admin's, robots' secrets, and the back-off.
#[derive(Clone)]
pub struct Passwords {
    pub admin: admin::AdminPassword,
    pub store: HostStore,
    pub throttle: throttle::Throttle,
}

impl Passwords {
    /// The caller that Basic credentials name, sent from `peer`: the admin, or a robot
    /// (`robot$<name>`) with its secret. Blocking: a robot is looked up in the database.
    pub fn caller(
        &self,
        user: &str,
        password: &str,
        peer: Option<std::net::IpAddr>,
    ) -> Result<Caller, Refused> {
        self.throttle.check(peer, user).map_err(Refused::Wait)?;
        match basic_caller(user, password, &self.admin, &self.store) {
            Some(caller) => {
                self.throttle.succeeded(peer, user);
                Ok(caller)
            }
            None => {
                self.throttle.failed(peer, user);
                tracing::info!(user, peer = ?peer, "a password check failed");
                Err(Refused::Wrong)
            }
        }
    }
}

/// The peer address the listener recorded on a request, if it was served by one.
pub fn peer(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

/// The caller that Basic credentials name: the admin, or a robot (`robot$<name>`) with
/// its secret. None when they do not check out.
fn basic_caller(
    user: &str,
    password: &str,
    admin: &admin::AdminPassword,
    store: &HostStore,
) -> Option<Caller> {
    if user == admin::ADMIN_USER {
        return admin.check(password).then_some(Caller::Admin);
    }
    let name = user.strip_prefix(ROBOT_PREFIX)?;
    let (robot, hash) = store.robot(name).ok()??;
    secrets_match(&secret_hash(password), &hash).then_some(Caller::Robot {
        name: robot.name,
        scopes: robot.scopes,
    })
}

/// What an Authorization header holds.
pub enum Presented {
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// Present but unreadable: the caller gets 401, not anonymous rights.
    Malformed,
}

pub fn presented(header: Option<&str>) -> Presented {
    let Some(value) = header else {
        return Presented::None;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, password)) => Presented::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            },
            None => Presented::Malformed,
        }
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
        Presented::Bearer(rest.trim().to_owned())
    } else {
        Presented::Malformed
    }
}

/// A stored form of a secret. Robot secrets are 256 random bits, so a plain SHA-256 is
/// as strong as a slow hash here, and checking one costs nothing per request.
pub fn secret_hash(secret: &str) -> String {
    hoist_common::hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares secrets by their hashes, so that the time taken says nothing about how much
/// of a guess was right.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A new robot secret: 256 random bits, printable.
pub fn new_secret() -> String {
    format!(
        "hoist_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(hoist_common::random::bytes::<32>())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robot(project: &str, actions: &[Action]) -> Caller {
        Caller::Robot {
            name: "ci".into(),
            scopes: vec![ProjectScope {
                project: project.into(),
                actions: actions.to_vec(),
            }],
        }
    }

    #[test]
    fn rights_follow_projects_and_visibility() {
        let anon = Caller::Anonymous;
        assert!(anon.may("pub/app", true, Action::Pull));
        assert!(!anon.may("priv/app", false, Action::Pull));
        assert!(!anon.may("pub/app", true, Action::Push));

        let ci = robot("team", &[Action::Pull, Action::Push]);
        assert!(ci.may("team/app/sub", false, Action::Push));
        assert!(!ci.may("team/app", false, Action::Delete));
        assert!(!ci.may("other/app", false, Action::Pull));
        assert!(ci.may("other/app", true, Action::Pull), "public projects");
        assert!(!ci.may("teams/app", false, Action::Pull), "no prefix match");
        assert!(Caller::Admin.may("x/y", false, Action::Delete));

        let granted = ci.grant(
            &Access::parse("repository:team/app:pull,push,delete").unwrap(),
            false,
        );
        assert_eq!(granted.actions, vec!["pull", "push"]);
        let none = ci.grant(&Access::parse("repository:other/app:push").unwrap(), false);
        assert!(none.actions.is_empty());
    }

    #[test]
    fn authorization_headers_are_read_strictly() {
        let basic = format!("Basic {}", STANDARD.encode("robot$ci:pa:ss"));
        match presented(Some(&basic)) {
            Presented::Basic { user, password } => {
                assert_eq!(user, "robot$ci");
                assert_eq!(password, "pa:ss", "passwords may hold colons");
            }
            _ => panic!("basic"),
        }
        assert!(matches!(presented(Some("Bearer abc")), Presented::Bearer(t) if t == "abc"));
        assert!(matches!(presented(Some("Basic !!!")), Presented::Malformed));
        assert!(matches!(presented(Some("Digest x")), Presented::Malformed));
        assert!(matches!(presented(None), Presented::None));
        assert!(secrets_match("a", "a") && !secrets_match("a", "b"));
        assert_ne!(new_secret(), new_secret());
        assert_eq!(secret_hash("x").len(), 64);
    }
}
