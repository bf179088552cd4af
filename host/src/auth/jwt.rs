//! The registry's bearer tokens: JWTs with the token spec's `access` claim, issued by the
//! host's token endpoint and checked by its registry.
//!
//! They are signed with HS256 under a 256-bit key kept in the data folder. The issuer
//! and the only verifier are the same process (or replicas sharing the data folder), so
//! an asymmetric key would buy nothing but a certificate to manage; clients never verify
//! registry tokens. Deleting the key file revokes every token at the next start.

use super::scope::Access;
use hoist_common::clock::now_secs;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `iss` of every token.
pub const ISSUER: &str = "hoist";
/// The `service` the challenge names and the tokens' `aud`.
pub const SERVICE: &str = "hoist-registry";
/// How long a token lives: long enough for a large pull, short enough that a revoked
/// robot loses access soon.
pub const TOKEN_TTL_SECS: u64 = 300;
/// The `aud` of the web UI's session tokens: a different audience, so that a session
/// cookie is never a registry token and a registry token never a session.
pub const SESSION_AUDIENCE: &str = "hoist-ui";
/// How long a web UI session lasts: a working morning. There is no refresh; signing in
/// again is one form.
pub const SESSION_TTL_SECS: u64 = 4 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The account the token was issued to; empty for an anonymous token.
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub access: Vec<Access>,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    /// Loads the signing key from `path`, creating it (readable by its owner only) on
    /// the first start.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let key = hoist_common::keyfile::load_or_create(
            path,
            32,
            32..,
            "delete it to make a new key (every token issued so far stops working)",
        )?;
        Ok(Self::from_secret(&key))
    }

    pub fn from_secret(key: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
        }
    }

    /// A token for `subject` granting `access`, and its lifetime in seconds.
    pub fn issue(&self, subject: &str, access: Vec<Access>) -> (String, u64) {
        self.issue_for(SERVICE, TOKEN_TTL_SECS, subject, access)
    }

    /// A web UI session token for `subject`. It grants nothing by itself: the UI's
    /// caller is looked up again from the subject at every request.
    pub fn issue_session(&self, subject: &str) -> (String, u64) {
        self.issue_for(SESSION_AUDIENCE, SESSION_TTL_SECS, subject, Vec::new())
    }

    fn issue_for(&self, aud: &str, ttl: u64, subject: &str, access: Vec<Access>) -> (String, u64) {
        let now = now_secs();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: subject.into(),
            aud: aud.into(),
            exp: now + ttl,
            // A little slack for clocks of replicas that disagree.
            nbf: now.saturating_sub(10),
            iat: now,
            jti: hoist_common::random::id(),
            access,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (token, ttl)
    }

    /// The claims of a valid, unexpired token of ours.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        self.verify_for(SERVICE, token)
    }

    /// The claims of a valid, unexpired web UI session token.
    pub fn verify_session(&self, token: &str) -> Result<Claims, String> {
        self.verify_for(SESSION_AUDIENCE, token)
    }

    fn verify_for(&self, aud: &str, token: &str) -> Result<Claims, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[aud]);
        validation.validate_nbf = true;
        validation.leeway = 10;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_registry::Action;

    #[test]
    fn tokens_verify_only_with_our_key_and_carry_their_access() {
        let dir = tempfile::tempdir().unwrap();
        let keys = TokenKeys::load_or_create(&dir.path().join("token.key")).unwrap();
        let again = TokenKeys::load_or_create(&dir.path().join("token.key")).unwrap();
        let (token, ttl) = keys.issue("robot$ci", vec![Access::repository("p/a", &[Action::Pull])]);
        assert_eq!(ttl, TOKEN_TTL_SECS);
        let claims = again.verify(&token).expect("the same key after a restart");
        assert_eq!(claims.sub, "robot$ci");
        assert!(claims.access[0].grants("p/a", Action::Pull));
        assert!(!claims.access[0].grants("p/a", Action::Push));

        let other = TokenKeys::from_secret(&[7u8; 32]);
        assert!(
            other.verify(&token).is_err(),
            "another key's token is refused"
        );
        let mut tampered = token.clone();
        tampered.insert(tampered.len() - 5, 'x');
        assert!(keys.verify(&tampered).is_err());
        assert!(keys.verify("not a token").is_err());
        assert!(
            keys.verify_session(&token).is_err(),
            "a registry token is no session"
        );
        let (session, _) = keys.issue_session("admin");
        assert_eq!(keys.verify_session(&session).unwrap().sub, "admin");
        assert!(
            keys.verify(&session).is_err(),
            "a session is no registry token"
        );
    }
}
