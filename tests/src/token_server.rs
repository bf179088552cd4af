//! A token server that behaves like Docker Hub's and GHCR's: anonymous clients get pull
//! tokens for `public/*` repositories, clients with the right Basic credentials get what
//! they ask for except on `secret/*`, where nobody gets anything (as the spec says, the
//! token simply lacks that access), and a wrong password gets 401. Tokens are ES256 JWTs carrying the
//! certificate in `x5c`, which distribution verifies against its `rootcertbundle`.

use crate::registry::{Auth, Registry};
use crate::serve;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;
use std::sync::{Arc, Mutex};

pub const SERVICE: &str = "hoist-test-registry";
pub const ISSUER: &str = "hoist-test-token-server";

/// Which field the token arrives in: Docker Hub sends `token`, OAuth servers
/// `access_token`.
#[derive(Clone, Copy)]
pub enum TokenField {
    Token,
    AccessToken,
}

struct Inner {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    user: String,
    password: String,
    field: TokenField,
    /// Every request: (scopes asked for, whether credentials came with it).
    requests: Mutex<Vec<(Vec<String>, bool)>>,
}

#[derive(Clone)]
pub struct TokenServer {
    pub port: u16,
    pub cert_pem: String,
    inner: Arc<Inner>,
}

impl TokenServer {
    pub fn start(user: &str, password: &str, field: TokenField) -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["hoist-test-token".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let signing = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        let inner = Arc::new(Inner {
            key: signing,
            cert_der: cert.der().to_vec(),
            user: user.into(),
            password: password.into(),
            field,
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/token", get(token))
            .with_state(inner.clone());
        let port = serve(app);
        Self {
            port,
            cert_pem: cert.pem(),
            inner,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// A Debian `docker-registry` that sends its clients here and trusts these tokens.
    pub fn registry(&self) -> Registry {
        Registry::start(Auth::Token {
            realm: self.realm(),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            cert_pem: self.cert_pem.clone(),
        })
    }

    /// A token for `repository` with `actions`, for pushing test images directly.
    pub fn mint(&self, repository: &str, actions: &[&str]) -> String {
        mint(
            &self.inner,
            &self.inner.user,
            &[(
                repository.to_owned(),
                actions.iter().map(|a| a.to_string()).collect(),
            )],
        )
    }

    /// The scopes of each token request so far, and whether it carried credentials.
    pub fn requests(&self) -> Vec<(Vec<String>, bool)> {
        self.inner.requests.lock().unwrap().clone()
    }
}

fn mint(inner: &Inner, subject: &str, access: &[(String, Vec<String>)]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "ES256", "typ": "JWT", "x5c": [STANDARD.encode(&inner.cert_der)]});
    let claims = json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{}", rand::random::<u64>()),
        "access": access.iter().map(|(name, actions)| json!({
            "type": "repository", "name": name, "actions": actions,
        })).collect::<Vec<_>>(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = inner
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    )
}

async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let scopes: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    inner
        .requests
        .lock()
        .unwrap()
        .push((scopes.clone(), basic.is_some()));
    let authenticated = match &basic {
        Some(pair) if *pair == format!("{}:{}", inner.user, inner.password) => true,
        Some(_) => {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"details": "incorrect username or password"})),
            )
                .into_response();
        }
        None => false,
    };
    let mut access = Vec::new();
    for scope in &scopes {
        let mut parts = scope.splitn(3, ':');
        let (Some("repository"), Some(name), Some(actions)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let granted: Vec<String> = actions
            .split(',')
            .filter(|_| !name.starts_with("secret/"))
            .filter(|a| authenticated || (*a == "pull" && name.starts_with("public/")))
            .map(str::to_owned)
            .collect();
        access.push((name.to_owned(), granted));
    }
    let subject = if authenticated {
        inner.user.clone()
    } else {
        String::new()
    };
    let token = mint(&inner, &subject, &access);
    let field = match inner.field {
        TokenField::Token => "token",
        TokenField::AccessToken => "access_token",
    };
    axum::Json(json!({field: token, "expires_in": 300})).into_response()
}

/// A token server that knows `user` with `password`, and a registry behind it.
pub fn token_registry(user: &str, password: &str, field: TokenField) -> (TokenServer, Registry) {
    let tokens = TokenServer::start(user, password, field);
    let registry = tokens.registry();
    (tokens, registry)
}
