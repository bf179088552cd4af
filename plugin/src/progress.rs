//! The state of an import as callers see it: its phase, each blob's progress, and the
//! error that stopped it. These mirror the WIT `types` interface one to one; the component
//! glue converts them, and the CLI uses them directly.

use std::fmt;

/// Which part of a request an invalid input is about (WIT `request-field`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Project,
    Source,
    Target,
    TargetImage,
    TargetTag,
    Platforms,
    Options,
    Repositories,
    Tags,
    Naming,
}

impl Field {
    /// The field as a person reads it in an error line.
    pub fn name(self) -> &'static str {
        match self {
            Field::Project => "project",
            Field::Source => "source",
            Field::Target => "target",
            Field::TargetImage => "target image",
            Field::TargetTag => "target tag",
            Field::Platforms => "platforms",
            Field::Options => "options",
            Field::Repositories => "repositories",
            Field::Tags => "tags",
            Field::Naming => "naming",
        }
    }
}

/// An input that is not valid (WIT `invalid-input`): the field at fault, and what is
/// wrong with it. The message does not repeat the field's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidInput {
    pub field: Option<Field>,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: Field, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            message: message.into(),
        }
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{}: {}", field.name(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Every failure a caller can act on (WIT `error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportError {
    InvalidInput(InvalidInput),
    Unauthorized(String),
    NotFound(String),
    RateLimited(String),
    DigestMismatch(String),
    UnsupportedMediaType(String),
    Network(String),
    Registry(String),
    DeniedByPolicy(String),
    Cancelled(String),
    /// The request required a signature and the image has none.
    Unsigned(String),
}

impl ImportError {
    /// A short, stable name for the class of error, as APIs and logs use it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid_input",
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::RateLimited(_) => "rate_limited",
            Self::DigestMismatch(_) => "digest_mismatch",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Network(_) => "network",
            Self::Registry(_) => "registry_error",
            Self::DeniedByPolicy(_) => "denied_by_policy",
            Self::Cancelled(_) => "cancelled",
            Self::Unsigned(_) => "unsigned",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::InvalidInput(i) => &i.message,
            Self::Unauthorized(m)
            | Self::NotFound(m)
            | Self::RateLimited(m)
            | Self::DigestMismatch(m)
            | Self::UnsupportedMediaType(m)
            | Self::Network(m)
            | Self::Registry(m)
            | Self::DeniedByPolicy(m)
            | Self::Cancelled(m)
            | Self::Unsigned(m) => m,
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput(input) => write!(f, "invalid input: {input}"),
            _ => write!(f, "{}: {}", self.code().replace('_', " "), self.message()),
        }
    }
}

impl std::error::Error for ImportError {}

impl ImportError {
    /// An invalid input about `field`.
    pub fn invalid(field: Field, message: impl Into<String>) -> Self {
        Self::InvalidInput(InvalidInput::new(field, message))
    }
}

/// Requests sent to one registry (and its token service), by kind (WIT
/// `request-counts`). Retries and redirects count as requests of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub manifest_head: u32,
    pub manifest_get: u32,
    pub blob: u32,
    pub tag_list: u32,
    pub catalog: u32,
    pub referrers: u32,
    pub token: u32,
}

impl RequestCounts {
    /// Counts one request of `method` (`GET`, `HEAD`, …) to `path` (`/v2/…`).
    pub fn count(&mut self, method: &str, path: &str) {
        let path = path.split('?').next().unwrap_or(path);
        let slot = if path.ends_with("/tags/list") {
            &mut self.tag_list
        } else if path.ends_with("/_catalog") {
            &mut self.catalog
        } else if path.contains("/referrers/") {
            &mut self.referrers
        } else if path.contains("/manifests/") && method == "HEAD" {
            &mut self.manifest_head
        } else if path.contains("/manifests/") && method == "GET" {
            &mut self.manifest_get
        } else if path.contains("/blobs/") {
            &mut self.blob
        } else {
            return;
        };
        *slot = slot.saturating_add(1);
    }

    pub fn total(&self) -> u32 {
        [
            self.manifest_head,
            self.manifest_get,
            self.blob,
            self.tag_list,
            self.catalog,
            self.referrers,
            self.token,
        ]
        .iter()
        .fold(0u32, |a, b| a.saturating_add(*b))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Resolving,
    Copying,
    PushingManifests,
    Done,
    Failed,
    Cancelled,
}

impl Phase {
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Done | Phase::Failed | Phase::Cancelled)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobState {
    Pending,
    Skipped,
    Mounted,
    Copying,
    Done,
    Foreign,
    Failed(String),
    /// The import was cancelled before this blob was settled.
    Cancelled,
}

impl BlobState {
    /// Whether the blob needs no more work.
    pub fn is_settled(&self) -> bool {
        !matches!(self, BlobState::Pending | BlobState::Copying)
    }
}

#[derive(Clone, Debug)]
pub struct BlobProgress {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub bytes_done: u64,
    pub state: BlobState,
}

/// A manifest the import resolved and will push (or, in a dry run, would push). Not part
/// of the WIT status: the CLI's dry-run plan reads it directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestInfo {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// `os/arch[/variant]`, as the index names it; None for the top manifest.
    pub platform: Option<String>,
}

/// A referrer (signature, SBOM, attestation) the import found for a manifest it copies
/// (WIT `referrer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferrerInfo {
    pub digest: String,
    /// The manifest it refers to.
    pub subject: String,
    pub artifact_type: String,
    pub kind: crate::referrer::Kind,
    /// The cosign tag it is kept under (`sha256-<hex>.sig`), when it was found by one.
    pub tag: Option<String>,
    /// Written to the target.
    pub copied: bool,
}

#[derive(Clone, Debug)]
pub struct Status {
    pub phase: Phase,
    /// Every manifest to push, children first and the one the tag names last; filled in
    /// once resolving is over.
    pub manifests: Vec<ManifestInfo>,
    pub blobs: Vec<BlobProgress>,
    /// Referrers of the copied manifests, in the order they are written; filled in once
    /// resolving is over.
    pub referrers: Vec<ReferrerInfo>,
    pub digest: Option<String>,
    pub target_reference: Option<String>,
    pub error: Option<ImportError>,
    pub warnings: Vec<String>,
}

impl Status {
    pub fn new() -> Self {
        Self {
            phase: Phase::Resolving,
            manifests: Vec::new(),
            blobs: Vec::new(),
            referrers: Vec::new(),
            digest: None,
            target_reference: None,
            error: None,
            warnings: Vec::new(),
        }
    }

    /// Bytes transferred or accounted for: skipped, mounted and foreign blobs count whole.
    pub fn bytes_done(&self) -> u64 {
        self.blobs
            .iter()
            .map(|b| match b.state {
                BlobState::Skipped | BlobState::Mounted | BlobState::Done | BlobState::Foreign => {
                    b.size
                }
                _ => b.bytes_done,
            })
            .sum()
    }

    pub fn bytes_total(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }

    pub fn blobs_done(&self) -> u32 {
        self.blobs
            .iter()
            .filter(|b| {
                b.state.is_settled()
                    && !matches!(b.state, BlobState::Failed(_) | BlobState::Cancelled)
            })
            .count() as u32
    }

    /// Bytes that actually crossed the network into the target.
    pub fn bytes_transferred(&self) -> u64 {
        self.blobs
            .iter()
            .filter(|b| matches!(b.state, BlobState::Done | BlobState::Copying))
            .map(|b| b.bytes_done)
            .sum()
    }
}

impl Default for Status {
    fn default() -> Self {
        Self::new()
    }
}
