//! Docker image references: the grammar of `distribution/reference` and the normalisation
//! of `docker pull` (`ParseNormalizedNamed`, then `latest` when no tag or digest is given).
//!
//! Written by hand rather than with a regex crate or `oci-spec`'s parser: the grammar is
//! small, and a scanner can say *which* part of the input is wrong (the registry, the third
//! path component, the tag, the digest's length), where a regex match only says "invalid".

use std::fmt;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// An older name for Docker Hub that references may still use.
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_NAMESPACE: &str = "library";
const DEFAULT_TAG: &str = "latest";
/// distribution's NameTotalLengthMax: the registry and path together.
pub const NAME_MAX: usize = 255;
/// The tag grammar allows one word character and up to 127 more.
pub const TAG_MAX: usize = 128;

/// A parsed and normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why an input is not a valid reference. The message names the offending part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceError {
    input: String,
    reason: String,
}

impl ReferenceError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        Self {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }

    /// The part after `invalid reference "…": `, for callers that frame it themselves.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid reference {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for ReferenceError {}

impl Reference {
    /// Parses what a user typed, as `docker pull` would.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |reason: String| ReferenceError::new(input, reason);
        if input.is_empty() {
            return Err(err(
                "the reference is empty; give an image such as nginx:latest".into(),
            ));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(format!(
                "it contains {c:?}; a reference has no spaces or control characters"
            )));
        }
        if let Some((scheme, _)) = input.split_once("://") {
            return Err(err(format!(
                "it starts with {scheme}://, but a reference has no URL scheme; write it as \
                 `docker pull` takes it, for example ghcr.io/owner/repo:tag"
            )));
        }
        if input.len() == 64 && input.bytes().all(is_lower_hex) {
            return Err(err(
                "a 64-character hex string is an image ID, not a repository name; \
                 name the repository, or use repo@sha256:<hex>"
                    .into(),
            ));
        }

        let (name_and_tag, digest) = match input.split_once('@') {
            Some((left, right)) => (left, Some(right)),
            None => (input, None),
        };
        if let Some(digest) = digest {
            check_digest(digest).map_err(err)?;
        }

        // A tag follows the last ':' that comes after the last '/' (and after an IPv6
        // literal's ']'); an earlier ':' is a port or part of the address.
        let last_slash = name_and_tag.rfind(['/', ']']).map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_and_tag[..last_slash + i],
                Some(&name_and_tag[last_slash + i + 1..]),
            ),
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(err)?;
        }

        if name.starts_with('[') && !name.contains('/') {
            return Err(err(format!(
                "it names the registry {name} but no repository; add /<repository>"
            )));
        }
        let (registry, path) = split_registry(name);
        if let Some(registry) = registry {
            check_registry(registry).map_err(err)?;
        }
        check_path(path).map_err(err)?;

        let registry = match registry {
            None | Some(DOCKER_HUB_LEGACY) => DOCKER_HUB,
            Some(other) => other,
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}/{path}")
        } else {
            path.to_owned()
        };
        let full_len = registry.len() + 1 + repository.len();
        if full_len > NAME_MAX {
            return Err(err(format!(
                "the name {registry}/{repository} is {full_len} characters long; \
                 registry and repository together may have at most {NAME_MAX}"
            )));
        }

        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Self {
            registry: registry.to_owned(),
            repository,
            tag,
            digest: digest.map(str::to_owned),
        })
    }

    /// The registry as references name it (`docker.io`, `ghcr.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to ask the registry's manifest endpoint for: the digest when there is one (it
    /// pins the content), else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// The short form Docker prints: `nginx:latest`, `user/app:1.2`, `ghcr.io/o/r:v1`.
    pub fn familiar(&self) -> String {
        let name = if self.registry == DOCKER_HUB {
            match self.repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                // Upstream prints `docker.io/a.b/c` as `a.b/c`, which reads back as the
                // registry `a.b`; keep the registry wherever dropping it would change the
                // meaning, so that the short form always parses to the same reference.
                _ if split_registry(&self.repository).0.is_some() => {
                    format!("{DOCKER_HUB}/{}", self.repository)
                }
                _ => self.repository.clone(),
            }
        } else {
            format!("{}/{}", self.registry, self.repository)
        };
        self.with_suffix(name)
    }

    /// The fully qualified form: `docker.io/library/nginx:latest`.
    pub fn canonical(&self) -> String {
        self.with_suffix(format!("{}/{}", self.registry, self.repository))
    }

    /// The host and port that serve this registry's API when no mirror is configured.
    /// Docker Hub's references say `docker.io`, but its API lives elsewhere.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    fn with_suffix(&self, mut name: String) -> String {
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(digest);
        }
        name
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// The host that serves `registry`'s API when no mirror is configured.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

/// Splits off the registry as `docker pull` decides it: the first component names a
/// registry only when it has a '.' or a ':', is `localhost`, or has uppercase letters
/// (which a repository path never has).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// A registry: a domain name or a bracketed IPv6 literal, with an optional port.
fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(format!(
                "the registry {registry:?} opens an IPv6 address with '[' but never closes it"
            ));
        };
        let addr = &rest[..end];
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(format!(
                "the registry {registry:?} has an invalid IPv6 address; write it as [fc00::1], \
                 with hex digits and ':' only"
            ));
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(port) => (None, Some(port)),
            None if after.is_empty() => (None, None),
            None => {
                return Err(format!(
                    "the registry {registry:?} has {after:?} after its IPv6 address; \
                     only :port may follow"
                ));
            }
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!(
                    "the registry {registry:?} is not a valid host name: each dot-separated \
                     part must be letters, digits and inner hyphens"
                ));
            }
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "the registry {registry:?} has an invalid port {port:?}; a port is digits only"
        ));
    }
    Ok(())
}

/// The repository path: components separated by '/', each `[a-z0-9]+` joined by one '.',
/// one or two '_', or any number of '-'.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the repository name is missing".into());
    }
    for (index, component) in path.split('/').enumerate() {
        check_path_component(component).map_err(|why| {
            if component.is_empty() {
                format!(
                    "path component {} of the repository {path:?} is empty ({why}); \
                     remove the extra '/'",
                    index + 1
                )
            } else {
                format!(
                    "path component {} ({component:?}) of the repository {path:?} {why}",
                    index + 1
                )
            }
        })?;
    }
    Ok(())
}

/// Checks one path component; the error is a predicate that follows the component's name.
pub fn check_path_component(component: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err("a path component needs at least one letter or digit".into());
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "has uppercase letters; repository names are lowercase (try {:?})",
            component.to_ascii_lowercase()
        ));
    }
    let bytes = component.as_bytes();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        let b = bytes[i];
        if is_lower_alnum(b) {
            expect_alnum = false;
            i += 1;
            continue;
        }
        let sep_len = match b {
            b'.' => 1,
            b'_' if bytes.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => bytes[i..].iter().take_while(|&&c| c == b'-').count(),
            _ => {
                return Err(format!(
                    "has {:?}; only lowercase letters, digits and the separators '.', '_', \
                     '__' and '-' are allowed",
                    b as char
                ));
            }
        };
        if i == 0 {
            return Err("must start with a lowercase letter or digit".into());
        }
        if expect_alnum {
            return Err(format!(
                "has {:?} right after another separator; separators ('.', '_', '__', '-') \
                 need a letter or digit between them",
                b as char
            ));
        }
        expect_alnum = true;
        i += sep_len;
    }
    if expect_alnum {
        return Err("must end with a letter or digit".into());
    }
    Ok(())
}

/// A tag: a word character, then up to 127 word characters, '.' or '-'.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after ':' is empty; drop the ':' or name a tag".into());
    }
    if tag.len() > TAG_MAX {
        return Err(format!(
            "the tag is {} characters long; a tag may have at most {TAG_MAX}",
            tag.len()
        ));
    }
    let first = tag.as_bytes()[0];
    if !is_word(first) {
        return Err(format!(
            "the tag {tag:?} must start with a letter, digit or '_'"
        ));
    }
    if let Some(bad) = tag.bytes().find(|&b| !is_word(b) && b != b'.' && b != b'-') {
        return Err(format!(
            "the tag {tag:?} has {:?}; tags use letters, digits, '_', '.' and '-'",
            bad as char
        ));
    }
    Ok(())
}

/// A digest: `algorithm:hex`, where the algorithm is one Hoist can verify and the hex
/// has that algorithm's length.
pub fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "the digest {digest:?} has no ':'; write it as sha256:<64 hex digits>"
        ));
    };
    let well_formed_algorithm = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|part| {
            part.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !well_formed_algorithm {
        return Err(format!(
            "the digest algorithm {algorithm:?} is malformed; write sha256:<64 hex digits>"
        ));
    }
    let expected_len = match algorithm {
        // The algorithms the OCI image spec registers.
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "the digest algorithm {algorithm:?} is not supported; use sha256 or sha512"
            ));
        }
    };
    if hex.len() != expected_len {
        return Err(format!(
            "the {algorithm} digest has {} hex digits; it needs exactly {expected_len}",
            hex.len()
        ));
    }
    if !hex.bytes().all(is_lower_hex) {
        return Err(format!(
            "the {algorithm} digest must be lowercase hex digits (0-9, a-f)"
        ));
    }
    Ok(())
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
