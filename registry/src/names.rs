//! Repository names, tags and digests, checked against distribution's grammar, with
//! errors that name the part that is wrong.
//!
//! - a path component is `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`;
//! - a name is components joined by `/`, at most 255 characters; in Hoist the first
//!   component is the project, so a name has at least two;
//! - a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`;
//! - a digest is `sha256:` and 64 lowercase hex digits, or `sha512:` and 128 (the
//!   algorithms the store keeps; the grammar allows others, which are refused as
//!   unsupported).

use super::errors::{RegistryError, Result};
use crate::digest::{self, Algorithm};

pub(crate) const MAX_NAME: usize = 255;
pub(crate) const MAX_TAG: usize = 128;

fn alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Whether `c` is one path component of a repository name.
fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    // Between alphanumeric runs: one '.', one '_', two '_', or any number of '-'.
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|s| s == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Project names as Harbor spells them: lowercase letters and digits with single `.`,
/// `_` or `-` between them, 2 to 63 characters. Every such name is also a valid first
/// component of a repository name.
pub fn check_project(name: &str) -> std::result::Result<(), String> {
    let b = name.as_bytes();
    let ok = (2..=63).contains(&b.len())
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| alnum(c) || matches!(c, b'.' | b'_' | b'-'))
        && !b.windows(2).any(|w| !alnum(w[0]) && !alnum(w[1]));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a project name: use 2 to 63 lowercase letters and digits, with \
             single '.', '_' or '-' between them (like my-team)"
        ))
    }
}

/// Checks a repository name: `<project>/<name…>`.
pub(crate) fn check_repository(name: &str) -> Result<()> {
    if name.len() > MAX_NAME {
        return Err(RegistryError::name_invalid(format!(
            "the repository name is {} characters long; the limit is {MAX_NAME}",
            name.len()
        )));
    }
    let components: Vec<&str> = name.split('/').collect();
    for (i, c) in components.iter().enumerate() {
        if !component_ok(c) {
            let why = if c.is_empty() {
                "an empty path component (a leading, trailing or doubled '/')".to_owned()
            } else if c.bytes().any(|b| b.is_ascii_uppercase()) {
                format!("the component {c:?} has uppercase letters; names are lowercase")
            } else {
                format!(
                    "the component {c:?} is not lowercase letters and digits separated by \
                     '.', '_', '__' or dashes"
                )
            };
            return Err(RegistryError::name_invalid(format!(
                "{name:?} is not a valid repository name: {why}"
            ))
            .with_detail(serde_json::json!({ "name": name, "component": i })));
        }
    }
    if components.len() < 2 {
        // A well-formed name that names no project here: NAME_UNKNOWN (404), which docker
        // does not retry, rather than NAME_INVALID, which it retries for about a minute.
        return Err(RegistryError::name_unknown(format!(
            "{name:?} has no project: repositories here are <project>/<name>, such as \
             my-team/{name}"
        )));
    }
    check_project(components[0])
        .map_err(|m| RegistryError::name_invalid(format!("in the repository name {name:?}: {m}")))
}

/// The project of a valid repository name.
pub fn project_of(repository: &str) -> &str {
    repository.split('/').next().unwrap_or(repository)
}

pub(crate) fn tag_ok(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= MAX_TAG
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// Checks a digest and returns it: sha256 or sha512, the algorithms the store keeps.
pub fn check_digest(digest: &str) -> Result<&str> {
    if digest::parse(digest).is_some() {
        return Ok(digest);
    }
    let Some((algorithm, _)) = digest.split_once(':') else {
        return Err(RegistryError::digest_invalid(format!(
            "{digest:?} is not a digest; write it as sha256:<64 lowercase hex digits> (or \
             sha512:<128>)"
        )));
    };
    let message = match Algorithm::by_name(algorithm) {
        Some(a) => format!(
            "{digest:?} is not a {algorithm} digest: it needs exactly {} lowercase hex digits \
             after '{algorithm}:'",
            a.hex_len()
        ),
        None => format!(
            "the digest algorithm {algorithm:?} is not supported here; use sha256 or sha512"
        ),
    };
    Err(RegistryError::digest_invalid(message))
}

/// What a manifest URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    /// The reference a manifest is pushed under. A bad one is the manifest's fault, so
    /// 400 `MANIFEST_INVALID` (or `DIGEST_INVALID`): `TAG_INVALID` is not among the
    /// distribution spec's error codes.
    pub fn parse(s: &str) -> Result<Self> {
        if s.contains(':') {
            check_digest(s)?;
            Ok(Reference::Digest(s.to_owned()))
        } else if tag_ok(s) {
            Ok(Reference::Tag(s.to_owned()))
        } else {
            Err(RegistryError::manifest_invalid(format!(
                "{s:?} is not a valid tag: use up to {MAX_TAG} letters, digits, '_', '.' and \
                 '-', not starting with '.' or '-'"
            )))
        }
    }

    /// The reference a manifest is read or deleted by. One that cannot exist names no
    /// manifest: 404 `MANIFEST_UNKNOWN`, as the spec's pull section requires.
    pub fn lookup(repository: &str, s: &str) -> Result<Self> {
        Self::parse(s).map_err(|_| RegistryError::manifest_unknown(repository, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_distribution_grammar_with_a_project() {
        for ok in [
            "team/app",
            "team/a/b/c",
            "my-team/app_1",
            "ab/x__y",
            "ab/x---y",
            "ab/x.y",
        ] {
            assert!(check_repository(ok).is_ok(), "{ok}");
        }
        for bad in [
            "app",
            "team//app",
            "team/app/",
            "/team/app",
            "team/App",
            "team/-app",
            "team/a___b",
            "team/a..b",
            "t/app",
            "team/a_-b",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        let long = format!("team/{}", "a".repeat(251));
        assert!(check_repository(&long).is_err());
        let err = check_repository("team/App").unwrap_err();
        assert!(err.message.contains("uppercase"), "{}", err.message);
        let err = check_repository("app").unwrap_err();
        assert!(err.message.contains("<project>/<name>"), "{}", err.message);
    }

    #[test]
    fn tags_and_digests() {
        assert!(tag_ok("latest") && tag_ok("v1.2.3-rc_1") && tag_ok("_x"));
        assert!(!tag_ok(".x") && !tag_ok("-x") && !tag_ok("") && !tag_ok(&"a".repeat(129)));
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Reference::parse(&d).unwrap(), Reference::Digest(d.clone()));
        assert!(Reference::parse("sha256:abc").is_err());
        assert!(Reference::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        let d512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(
            Reference::parse(&d512).unwrap(),
            Reference::Digest(d512.clone())
        );
        assert!(Reference::parse(&format!("sha512:{}", "a".repeat(64))).is_err());
        assert!(Reference::parse(&format!("sha384:{}", "a".repeat(96))).is_err());
        assert_eq!(
            Reference::parse("v1").unwrap(),
            Reference::Tag("v1".to_owned())
        );
    }

    #[test]
    fn project_names_follow_the_harbor_rule() {
        for ok in ["ab", "my-team", "a.b_c", "x1"] {
            assert!(check_project(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "A-team", "-ab", "ab-", "a--b", "a/b", &"x".repeat(64)] {
            assert!(check_project(bad).is_err(), "{bad}");
        }
    }
}
