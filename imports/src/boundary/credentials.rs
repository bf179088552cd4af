//! Credentials the host holds for an import, and where they may go.
//!
//! A credential is added as Basic authorization only to requests for the registry it
//! belongs to (its endpoints, once one has asked for Basic) and for the token realm that
//! registry announced in a 401 — never to other hosts, and never to a redirect's target,
//! which the plugin follows as a new request. What each registry taught (its challenges)
//! is learnt from the responses, per import.

use hoist_plugin::auth::{Challenge, parse_challenge};
use hoist_plugin::url::Url;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A registry's password: Debug output never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Credentials the host holds for one registry during one import.
#[derive(Clone, Debug)]
pub struct HostCredential {
    /// The registry's endpoints: only requests to these origins, and to the token realm
    /// one of them announces, get the credentials.
    pub endpoints: Vec<Url>,
    pub username: String,
    pub password: Secret,
}

/// One import's credentials and what their registries asked for. Cheap to clone: the
/// clones share what was learnt.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    held: Arc<Vec<HostCredential>>,
    learned: Arc<Mutex<Learned>>,
}

/// Where each credential may go, learnt from 401s.
#[derive(Default)]
struct Learned {
    /// Endpoint origins that asked for Basic authentication, with the credential's index.
    basic: HashMap<String, usize>,
    /// Token realms (origin and path) that a credential's registry announced.
    realms: HashMap<String, usize>,
}

impl Credentials {
    pub(crate) fn new(held: Vec<HostCredential>) -> Self {
        Self {
            held: Arc::new(held),
            learned: Arc::default(),
        }
    }

    /// The `Authorization` value for a request to `url`, if one of the credentials may
    /// go there. Marked sensitive, so that no log prints it.
    pub(crate) fn authorization_for(&self, url: &Url) -> Option<http::HeaderValue> {
        let credential = {
            let learned = self.learned.lock();
            let origin = origin_of(url);
            let realm_key = format!("{origin}{}", path_only(&url.path));
            let index = learned
                .realms
                .get(&realm_key)
                .or_else(|| learned.basic.get(&origin))?;
            self.held.get(*index)?.clone()
        };
        let value = hoist_plugin::auth::basic_authorization(
            &credential.username,
            credential.password.expose(),
        );
        let mut value = http::HeaderValue::from_str(&value).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// The credential whose registry answers at `url`'s origin, to learn from its 401.
    pub(crate) fn owner_of(&self, url: &Url) -> Option<usize> {
        let origin = origin_of(url);
        self.held
            .iter()
            .position(|c| c.endpoints.iter().any(|e| origin_of(e) == origin))
    }

    /// Records where the credential `index` may go, from a 401 of its registry at `url`.
    pub(crate) fn learn(&self, index: usize, url: &Url, headers: &http::HeaderMap) {
        let Some(challenge) = headers
            .get(http::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
        else {
            return;
        };
        let mut learned = self.learned.lock();
        match challenge {
            Challenge::Basic => {
                learned.basic.insert(origin_of(url), index);
            }
            Challenge::Bearer { realm, .. } => {
                let Ok(realm) = Url::parse(&realm) else {
                    return;
                };
                // Credentials reached over HTTPS never travel on in clear text.
                if url.https && !realm.https {
                    return;
                }
                learned.realms.insert(
                    format!("{}{}", origin_of(&realm), path_only(&realm.path)),
                    index,
                );
            }
        }
    }
}

pub(crate) fn origin_of(url: &Url) -> String {
    let scheme = if url.https { "https" } else { "http" };
    format!("{scheme}://{}", url.authority.to_ascii_lowercase())
}

fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or("/")
}
