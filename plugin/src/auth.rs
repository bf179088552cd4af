//! The registry auth protocol's pure parts: reading `WWW-Authenticate` challenges, the
//! token endpoint's answer, and the scopes an import asks for.

use serde::Deserialize;
use std::collections::BTreeMap;

/// What a registry asked for in a 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`: send the username and password with every request.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`: get a token from `realm` first.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value. Registries send one challenge; when a header lists
/// several, Bearer is preferred over Basic, as Docker does.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let mut found = None;
    for (scheme, params) in split_challenges(header) {
        if scheme.eq_ignore_ascii_case("bearer") {
            let realm = params.get("realm")?.clone();
            return Some(Challenge::Bearer {
                realm,
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            });
        }
        if scheme.eq_ignore_ascii_case("basic") {
            found = Some(Challenge::Basic);
        }
    }
    found
}

/// Splits `Scheme a=b, c="d,e", Other x=y` into schemes with their parameters. Commas
/// inside quoted strings (a scope such as `repository:r:pull,push`) do not split.
fn split_challenges(header: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        // A token followed by '=' is a parameter of the current scheme; otherwise it is
        // the next scheme.
        let token_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start();
        if let Some(value_part) = after.strip_prefix('=') {
            let value_part = value_part.trim_start();
            let (value, remaining) = if let Some(quoted) = value_part.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = value_part.find(',').unwrap_or(value_part.len());
                (value_part[..end].trim().to_owned(), &value_part[end..])
            };
            if let Some((_, params)) = out.last_mut() {
                params.insert(token.to_ascii_lowercase(), value);
            }
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        } else if token.is_empty() {
            rest = after.trim_start_matches(',').trim_start();
        } else {
            out.push((token.to_owned(), BTreeMap::new()));
            rest = after.trim_start_matches(',').trim_start();
        }
    }
    out
}

/// The token endpoint's answer. Docker Hub sends `token`, OAuth-style servers
/// `access_token`; some send both.
#[derive(Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    /// Seconds the token is valid for; the token spec's default is 60.
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    pub fn token(&self) -> Option<&str> {
        self.token
            .as_deref()
            .filter(|t| !t.is_empty())
            .or(self.access_token.as_deref().filter(|t| !t.is_empty()))
    }

    /// How long to use the token. A little is held back so that a token never expires in
    /// the middle of a request.
    pub fn lifetime_secs(&self) -> u64 {
        let secs = self.expires_in.filter(|&s| s > 0).unwrap_or(60);
        secs.saturating_sub(secs.min(10) / 2).max(1)
    }
}

/// The scope for pulling from `repository`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scope for pushing to `repository` (a push also reads, to check what exists).
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// `user:password` as a Basic authorization value.
pub fn basic_authorization(username: &str, password: &str) -> String {
    use base64::Engine;
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_style_bearer() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/nginx:pull".into()),
            })
        );
    }

    #[test]
    fn commas_inside_quotes_do_not_split() {
        let c = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token", scope="repository:a/b:pull,push",error="insufficient_scope""#,
        );
        let Some(Challenge::Bearer { scope, .. }) = c else {
            panic!("{c:?}")
        };
        assert_eq!(scope.as_deref(), Some("repository:a/b:pull,push"));
    }

    #[test]
    fn basic_and_case_and_unquoted_values() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("bearer realm=http://x/token,service=x"),
            Some(Challenge::Bearer {
                realm: "http://x/token".into(),
                service: Some("x".into()),
                scope: None
            })
        );
        // Bearer wins when both are offered.
        assert!(matches!(
            parse_challenge(r#"Basic realm="r", Bearer realm="https://t/token""#),
            Some(Challenge::Bearer { .. })
        ));
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "no realm, no token"
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm="a\"b""#),
            Some(Challenge::Bearer {
                realm: "a\"b".into(),
                service: None,
                scope: None
            })
        );
    }

    #[test]
    fn token_or_access_token() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"a","expires_in":300}"#).unwrap();
        assert_eq!(t.token(), Some("a"));
        assert_eq!(t.lifetime_secs(), 295);
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        assert_eq!(t.token(), Some("b"));
        assert_eq!(t.lifetime_secs(), 55, "the spec's default of 60 seconds");
        let t: TokenResponse = serde_json::from_str(r#"{"token":"","access_token":"c"}"#).unwrap();
        assert_eq!(t.token(), Some("c"));
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.token(), None);
    }

    #[test]
    fn basic_value() {
        assert_eq!(
            basic_authorization("aladdin", "opensesame"),
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l"
        );
    }
}
