//! Credentials for the standalone CLI. Under `wasmtime run` no host adds them (DESIGN §3),
//! so the CLI passes them to the engine itself, from, in order: the `--*-creds` flags, the
//! matching environment variables (`wasmtime run --env HOIST_SRC_CREDS …`), and a docker
//! `config.json` in a directory the user preopened (`wasmtime run --dir ~/.docker::/docker
//! … --authfile /docker/config.json`, or `--env DOCKER_CONFIG=/docker`).
//!
//! Only the `auths` map can be used: `credsStore` and `credHelpers` name programs
//! (`docker-credential-*`), and a WASI component cannot start a process. When a helper is
//! the only source for a registry, the error for a refused request says so.

use crate::failure::Failure;
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A username and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    pub username: String,
    pub password: String,
}

/// Parses `USER:PASS` (the password may hold colons).
pub fn parse_pair(flag: &str, value: &str) -> Result<Creds, Failure> {
    match value.split_once(':') {
        Some((user, pass)) if !user.is_empty() => Ok(Creds {
            username: user.into(),
            password: pass.into(),
        }),
        _ => Err(Failure::usage(
            format!("{flag} must be USER:PASS"),
            "give the username, a colon, then the password",
        )),
    }
}

/// A docker `config.json`, as far as the CLI can use it.
#[derive(Debug, Default, Deserialize)]
pub struct AuthFile {
    #[serde(skip)]
    pub path: String,
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// What the auth file says about one registry.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(Creds),
    /// Nothing usable; the reason, when there is one worth telling.
    Unusable(String),
    Missing,
}

impl AuthFile {
    pub fn parse(path: &str, text: &str) -> Result<Self, Failure> {
        let mut file: AuthFile = serde_json::from_str(text).map_err(|e| {
            Failure::usage(
                format!("the auth file {path} is not a docker config.json: {e}"),
                "give a file with an \"auths\" map, as `docker login` writes",
            )
        })?;
        file.path = path.into();
        Ok(file)
    }

    /// Reads `path`. A missing file is an error only when the user named it.
    pub fn load(path: &Path, named: bool) -> Result<Option<Self>, Failure> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&shown, &text).map(Some),
            Err(e) if !named && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Failure::usage(
                format!("cannot read the auth file {shown}: {e}"),
                "under wasmtime, share its directory with `wasmtime run --dir \
                 HOST_DIR::GUEST_DIR` and give the path inside GUEST_DIR",
            )),
        }
    }

    /// The entry for `registry`. Keys may be bare hosts (`ghcr.io`) or URLs
    /// (`https://index.docker.io/v1/`), as different docker versions wrote them.
    pub fn lookup(&self, registry: &str) -> Lookup {
        let want = normalise(registry);
        let entry = self
            .auths
            .iter()
            .filter(|(k, _)| normalise(k) == want)
            .map(|(_, v)| v)
            .next();
        if let Some(entry) = entry {
            if let Some(creds) = entry.creds() {
                return Lookup::Found(creds);
            }
            if entry.identity_token.is_some() {
                return Lookup::Unusable(format!(
                    "the auth file {} holds an identity token for {registry}, which Hoist \
                     cannot use",
                    self.path
                ));
            }
        }
        let helper = self
            .cred_helpers
            .iter()
            .find(|(k, _)| normalise(k) == want)
            .map(|(_, v)| v)
            .or(self.creds_store.as_ref());
        match helper {
            Some(helper) => Lookup::Unusable(format!(
                "the auth file {} leaves {registry} to the credential helper \
                 docker-credential-{helper}, which cannot run inside WASI",
                self.path
            )),
            None => Lookup::Missing,
        }
    }
}

impl AuthEntry {
    fn creds(&self) -> Option<Creds> {
        if let (Some(u), Some(p)) = (&self.username, &self.password)
            && !u.is_empty()
        {
            return Some(Creds {
                username: u.clone(),
                password: p.clone(),
            });
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.auth.as_deref()?.trim())
            .ok()?;
        let pair = String::from_utf8(raw).ok()?;
        parse_pair("auth", &pair).ok()
    }
}

/// A registry name as auth files key it: no scheme, no path, Docker Hub's aliases folded.
fn normalise(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

/// Where the auth file is: `--authfile` (or `REGISTRY_AUTH_FILE`, as skopeo reads it),
/// else `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`. Environment
/// variables reach the component only when `wasmtime run --env` passes them.
pub fn auth_file_path(explicit: Option<&Path>) -> Option<(PathBuf, bool)> {
    if let Some(p) = explicit {
        return Some((p.to_owned(), true));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some((PathBuf::from(dir).join("config.json"), false));
    }
    std::env::var_os("HOME").map(|h| (PathBuf::from(h).join(".docker/config.json"), false))
}

/// Whether `registry` (as references name it) is this machine, where clear text never
/// leaves the host.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> AuthFile {
        AuthFile::parse("/docker/config.json", json).unwrap()
    }

    #[test]
    fn pairs_split_at_the_first_colon() {
        assert_eq!(
            parse_pair("--src-creds", "bob:pa:ss").unwrap(),
            Creds {
                username: "bob".into(),
                password: "pa:ss".into()
            }
        );
        assert!(parse_pair("--src-creds", "bob").is_err());
        assert!(parse_pair("--src-creds", ":pass").is_err());
    }

    #[test]
    fn auth_and_username_password_entries_under_any_key_form() {
        let f = file(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "Ym9iOnMzY3JldA=="},
                "http://127.0.0.1:5000": {"username": "amy", "password": "pw"},
                "ghcr.io": {}
            }}"#,
        );
        let bob = Creds {
            username: "bob".into(),
            password: "s3cret".into(),
        };
        assert_eq!(f.lookup("docker.io"), Lookup::Found(bob));
        assert!(matches!(f.lookup("127.0.0.1:5000"), Lookup::Found(c) if c.username == "amy"));
        assert_eq!(f.lookup("ghcr.io"), Lookup::Missing);
        assert_eq!(f.lookup("quay.io"), Lookup::Missing);
    }

    #[test]
    fn credential_helpers_are_named_as_unusable() {
        let f = file(r#"{"auths": {}, "credHelpers": {"gcr.io": "gcloud"}}"#);
        let Lookup::Unusable(why) = f.lookup("gcr.io") else {
            panic!()
        };
        assert!(why.contains("docker-credential-gcloud"), "{why}");
        assert_eq!(f.lookup("ghcr.io"), Lookup::Missing);
        let f = file(r#"{"credsStore": "desktop"}"#);
        assert!(matches!(f.lookup("ghcr.io"), Lookup::Unusable(w) if w.contains("desktop")));
    }

    #[test]
    fn a_broken_file_is_a_usage_error() {
        let e = AuthFile::parse("/x.json", "{not json").unwrap_err();
        assert_eq!(e.code, "usage");
        assert!(e.message.contains("/x.json"));
    }

    #[test]
    fn loopback_names() {
        for r in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "registry.example:5000",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "docker.io",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
