//! Errors as the user sees them: one line that starts with the class, then the cause, then
//! a hint (`unauthorized: ghcr.io requires credentials; pass --src-creds or set
//! HOIST_SRC_CREDS`), an exit code per class, and the same as a `--json` event.

use crate::exit;
use hoist_plugin::progress::ImportError;
use serde_json::{Value, json};
use std::fmt;

/// A failure, ready to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The plugin's error code (`unauthorized`, `not_found`, `registry_error`, …), or
    /// `usage` for the command line.
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            code: "usage",
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn policy(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            code: "denied_by_policy",
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self.code {
            "usage" | "invalid_input" => exit::USAGE,
            "unauthorized" => exit::AUTH,
            "not_found" => exit::NOT_FOUND,
            "denied_by_policy" | "unsigned" => exit::POLICY,
            "cancelled" => exit::FAILED,
            _ => exit::REMOTE,
        }
    }

    /// The first word of the line: the class, as scripts match it.
    fn prefix(&self) -> &'static str {
        match self.code {
            "usage" | "invalid_input" => "usage",
            "unauthorized" => "unauthorized",
            "not_found" => "not found",
            "rate_limited" => "rate limited",
            "digest_mismatch" => "digest mismatch",
            "unsupported_media_type" => "unsupported media type",
            "network" => "network",
            "denied_by_policy" => "denied by policy",
            "cancelled" => "cancelled",
            "unsigned" => "unsigned",
            _ => "registry",
        }
    }

    /// The `--json` error event.
    pub fn event(&self) -> Value {
        json!({
            "event": "error",
            "code": self.code,
            "exit_code": self.exit_code(),
            "message": self.message,
            "hint": self.hint,
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever a registry put in its message.
        let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        write!(f, "{}: {}", self.prefix(), flat(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, "; {}", flat(hint))?;
        }
        Ok(())
    }
}

/// Where credentials for one side of a command come from, for the hints.
#[derive(Clone, Debug, Default)]
pub struct Side {
    /// The registry, as references name it.
    pub registry: String,
    /// The flag and variable that give this side credentials.
    pub flag: &'static str,
    pub env: &'static str,
    /// Where the credentials in use came from, if any were found.
    pub creds_from: Option<String>,
    /// Why the auth file could not supply credentials (a credential helper), if so.
    pub auth_file_note: Option<String>,
    /// What the side needs: "pull from" or "push to".
    pub action: &'static str,
}

/// Turns the engine's error into the user's, with a hint that names the right flag.
pub fn from_import(e: ImportError, sides: &[Side]) -> Failure {
    let code = e.code();
    let message = e.message().to_owned();
    match e {
        // The field leads the message here: an error line has no other place for it.
        ImportError::InvalidInput(input) => Failure {
            code,
            message: input.to_string(),
            hint: Some("see --help for the reference format and the options".into()),
        },
        ImportError::Unauthorized(_) => unauthorized(message, sides),
        ImportError::NotFound(_) => with_hint(
            code,
            message,
            "check the repository, tag and platform; `hoist inspect REF` shows what a \
             reference names",
        ),
        ImportError::Network(_) => {
            let hint = match tls_failure_authority(&message) {
                Some(host) => format!("if {host} serves plain HTTP, pass --plain-http {host}"),
                None => "check that the registry is reachable; a registry served over plain \
                         HTTP needs --plain-http REGISTRY, and --retry N retries longer"
                    .into(),
            };
            with_hint(code, message, &hint)
        }
        ImportError::RateLimited(_) => with_hint(
            code,
            message,
            "wait and run again, log in for a higher limit, or use --mirror",
        ),
        ImportError::DigestMismatch(_) => with_hint(
            code,
            message,
            "the registry served content that does not match its digest; run again, or \
             report it to the registry's operator",
        ),
        ImportError::UnsupportedMediaType(_) => with_hint(
            code,
            message,
            "Hoist copies OCI and Docker schema 2 images and indexes",
        ),
        ImportError::Registry(_) => with_hint(
            code,
            message,
            "the registry refused the request; run again, or check the registry's logs",
        ),
        ImportError::DeniedByPolicy(_) => {
            with_hint(code, message, "the request was refused before it was sent")
        }
        ImportError::Cancelled(_) => Failure {
            code,
            message,
            hint: None,
        },
        // The engine's message already names the fix.
        ImportError::Unsigned(_) => Failure {
            code,
            message,
            hint: None,
        },
    }
}

/// The host of an `https://` URL in a message about a failed TLS handshake: the usual
/// sign of a registry that speaks plain HTTP.
fn tls_failure_authority(message: &str) -> Option<&str> {
    if !message.contains("TLS") {
        return None;
    }
    let rest = &message[message.find("https://")? + "https://".len()..];
    // The authority, with its port: `--plain-http` takes the registry as references name it.
    rest.split(['/', ' ']).next().filter(|a| !a.is_empty())
}

/// Keeps a hint the engine already gave (after its `; `), else adds `hint`.
fn with_hint(code: &'static str, message: String, hint: &str) -> Failure {
    if message.contains("; ") {
        return Failure {
            code,
            message,
            hint: None,
        };
    }
    Failure {
        code,
        message,
        hint: Some(hint.into()),
    }
}

/// The engine's auth messages read `<registry> <cause>; <generic hint>`. The CLI knows
/// which flag, variable or auth file gives that registry credentials, so it keeps the
/// cause and names them instead.
fn unauthorized(message: String, sides: &[Side]) -> Failure {
    let cause = message
        .split_once("; ")
        .map_or(message.as_str(), |(c, _)| c)
        .to_owned();
    let lacks_rights = message.contains("lack the rights");
    let matching: Vec<&Side> = sides
        .iter()
        .filter(|s| message.starts_with(&format!("{} ", s.registry)))
        .collect();
    let hint = if matching.is_empty() {
        // A registry that is neither side (a token realm's own message): name them all.
        let flags: Vec<String> = sides
            .iter()
            .map(|s| format!("{} or {}", s.flag, s.env))
            .collect();
        format!("pass credentials with {}", flags.join(", or "))
    } else {
        matching
            .iter()
            .map(|side| side_hint(side, lacks_rights))
            .collect::<Vec<_>>()
            .join("; or ")
    };
    Failure {
        code: "unauthorized",
        message: cause,
        hint: Some(hint),
    }
}

fn side_hint(side: &Side, lacks_rights: bool) -> String {
    match (&side.creds_from, &side.auth_file_note) {
        (Some(from), _) if lacks_rights => format!(
            "the credentials from {from} may not {} {}; use an account that may",
            side.action, side.registry
        ),
        (Some(from), _) => format!("check the credentials from {from}"),
        (None, Some(note)) => format!("{note}; pass {} or set {}", side.flag, side.env),
        (None, None) => format!("pass {} or set {}", side.flag, side.env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(registry: &str) -> Side {
        Side {
            registry: registry.into(),
            flag: "--src-creds",
            env: "HOIST_SRC_CREDS",
            action: "pull from",
            ..Default::default()
        }
    }

    #[test]
    fn the_issue_s_example_line() {
        let e = ImportError::Unauthorized(
            "ghcr.io requires credentials; give a username and password for ghcr.io".into(),
        );
        let f = from_import(e, &[src("ghcr.io"), src("registry.example")]);
        assert_eq!(
            f.to_string(),
            "unauthorized: ghcr.io requires credentials; pass --src-creds or set HOIST_SRC_CREDS"
        );
        assert_eq!(f.exit_code(), exit::AUTH);
    }

    #[test]
    fn a_credential_helper_is_named_in_the_hint() {
        let mut side = src("gcr.io");
        side.auth_file_note = Some(
            "the auth file names the credential helper docker-credential-gcloud for gcr.io, \
             which cannot run inside WASI"
                .into(),
        );
        let f = from_import(
            ImportError::Unauthorized("gcr.io requires credentials; give …".into()),
            &[side],
        );
        assert!(f.to_string().contains("docker-credential-gcloud"), "{f}");
    }

    #[test]
    fn rights_and_refusals_name_where_the_credentials_came_from() {
        let mut side = src("r.example");
        side.creds_from = Some("--src-creds".into());
        let f = from_import(
            ImportError::Unauthorized(
                "r.example denied access to x; the credentials lack the rights".into(),
            ),
            std::slice::from_ref(&side),
        );
        assert_eq!(
            f.to_string(),
            "unauthorized: r.example denied access to x; the credentials from --src-creds \
             may not pull from r.example; use an account that may"
        );
        let f = from_import(
            ImportError::Unauthorized("r.example refused the credentials; check …".into()),
            &[side],
        );
        assert!(
            f.to_string()
                .ends_with("check the credentials from --src-creds")
        );
    }

    #[test]
    fn every_class_is_one_line_with_its_own_prefix_and_code() {
        let cases = [
            (
                ImportError::invalid(hoist_plugin::progress::Field::Source, "x"),
                "usage: source: x",
                2,
            ),
            (ImportError::Unauthorized("a b".into()), "unauthorized: ", 3),
            (ImportError::NotFound("x\nmore".into()), "not found: ", 4),
            (ImportError::Network("x".into()), "network: ", 5),
            (ImportError::Registry("x".into()), "registry: ", 5),
            (ImportError::RateLimited("x".into()), "rate limited: ", 5),
            (
                ImportError::DeniedByPolicy("x".into()),
                "denied by policy: ",
                6,
            ),
        ];
        for (e, prefix, code) in cases {
            let f = from_import(e, &[src("a")]);
            let line = f.to_string();
            assert!(line.starts_with(prefix), "{line}");
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(f.exit_code(), code, "{line}");
            assert_eq!(f.event()["exit_code"], code);
        }
    }

    #[test]
    fn a_tls_failure_suggests_plain_http_for_that_registry() {
        let f = from_import(
            ImportError::Network(
                "GET https://127.0.0.1:5000/v2/a/manifests/v1: TLS handshake failed (gave up \
                 after 2 attempts)"
                    .into(),
            ),
            &[],
        );
        assert!(
            f.to_string().ends_with(
                "; if 127.0.0.1:5000 serves plain HTTP, pass --plain-http 127.0.0.1:5000"
            ),
            "{f}"
        );
    }

    #[test]
    fn a_hint_the_engine_gave_is_kept_not_doubled() {
        let f = from_import(
            ImportError::NotFound(
                "the image has no windows/amd64 manifest; it has: linux/amd64".into(),
            ),
            &[],
        );
        assert_eq!(
            f.to_string(),
            "not found: the image has no windows/amd64 manifest; it has: linux/amd64"
        );
    }
}
