//! The seam for authentication. Every request is first classified into a [`Target`] (a
//! repository and an action: pull, push or delete; or the catalog), and the host's
//! [`Authorizer`] is asked before anything else happens. A mount also asks for pull on
//! the repository it mounts from. The registry itself knows no users or tokens.

use crate::errors::Result;
use axum::http::request::Parts;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a caller may do to a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    /// The token spec's names; `*` is every action, as distribution's `catalog:*`.
    pub fn parse_list(s: &str) -> Vec<Action> {
        let mut out = Vec::new();
        for name in s.split(',') {
            match name.trim() {
                "pull" => out.push(Action::Pull),
                "push" => out.push(Action::Push),
                "delete" => out.push(Action::Delete),
                "*" => out.extend([Action::Pull, Action::Push, Action::Delete]),
                _ => {}
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request wants to do, for the authorizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `GET /v2/`: the API check, which clients also use to find out how to log in.
    Base,
    /// `GET /v2/_catalog`.
    Catalog,
    Repository {
        name: String,
        action: Action,
    },
    /// A cross-repository mount: `action` (push) on `name`, which the request needs, and a
    /// read of `from`, which the mount needs (without it, an upload starts instead). A
    /// challenge names both scopes, so that a client asking for exactly the challenged
    /// scope can mount.
    Mount {
        name: String,
        from: String,
        action: Action,
    },
}

/// Decides whether a request may do what it asks. `parts` carries the Authorization
/// header and request extensions (an in-process import's grant, which only the host's
/// own code can set). A refusal is answered as it is (`UNAUTHORIZED` with a challenge,
/// or `DENIED`). Asynchronous, because deciding may need the database.
pub trait Authorizer: Send + Sync + 'static {
    fn authorize<'a>(&'a self, parts: &'a Parts, target: &'a Target) -> BoxFuture<'a, Result<()>>;

    /// Who opens an upload session with this (authorized) request, when the embedder
    /// tracks it: the registry records it with the session, and
    /// [`crate::sweep_uploads`] asks the embedder whether that owner is gone.
    fn upload_owner(&self, _parts: &Parts) -> Option<String> {
        None
    }
}

/// Lets everyone do everything: a registry without authentication, for tests and for
/// embedding behind a proxy that authenticates.
pub(crate) struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize<'a>(&'a self, _: &'a Parts, _: &'a Target) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
