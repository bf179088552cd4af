//! An import task as the API shows it and the database keeps it: no secret in it, ever.

use crate::boundary::pacing::Quota;
use crate::contract::{self, BlobState, Phase, PluginError, ReferrerKind, Status, error_parts};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Running,
    /// The source refused it for quota (a 429 whose `Retry-After` is longer than the
    /// import waits for itself); it runs again at `waiting_until`.
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Waiting => "waiting",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => TaskState::Queued,
            "running" => TaskState::Running,
            "waiting" => TaskState::Waiting,
            "succeeded" => TaskState::Succeeded,
            "failed" => TaskState::Failed,
            "cancelled" => TaskState::Cancelled,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
        )
    }
}

/// One blob of a task, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskBlob {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub bytes_done: u64,
    /// pending, skipped, mounted, copying, done, foreign or failed.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Which referrers (signatures, SBOMs, attestations) travel with the image, as an import
/// request asks. Absent fields take the defaults: copy every referrer, require none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReferrerOptions {
    /// Copy the image's referrers.
    pub copy: bool,
    /// Only referrers of these artifact types; empty means every type.
    pub artifact_types: Vec<String>,
    /// Refuse an image without a signature before writing anything.
    pub require_signature: bool,
}

impl Default for ReferrerOptions {
    fn default() -> Self {
        Self {
            copy: true,
            artifact_types: Vec::new(),
            require_signature: false,
        }
    }
}

/// At most this many artifact types in an allow-list.
pub const MAX_ARTIFACT_TYPES: usize = 32;

impl ReferrerOptions {
    /// Checks the allow-list: each entry a media type (`type/subtype`), and few of them.
    pub fn check(&self) -> Result<(), String> {
        if self.artifact_types.len() > MAX_ARTIFACT_TYPES {
            return Err(format!(
                "{} artifact types were given; name at most {MAX_ARTIFACT_TYPES}",
                self.artifact_types.len()
            ));
        }
        for t in &self.artifact_types {
            let media_type = t.len() <= 255
                && t.split_once('/')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/.+-_".contains(c));
            if !media_type {
                return Err(format!(
                    "{t:?} is not an artifact type; write a media type such as \
                     application/spdx+json"
                ));
            }
        }
        Ok(())
    }

    /// The plugin's form.
    pub fn to_plugin(&self) -> contract::ReferrerOptions {
        contract::ReferrerOptions {
            skip: !self.copy,
            artifact_types: self.artifact_types.clone(),
            require_signature: self.require_signature,
        }
    }
}

/// A referrer the import found, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskReferrer {
    pub digest: String,
    /// The manifest it refers to.
    pub subject: String,
    pub artifact_type: String,
    /// signature, sbom, attestation or other.
    pub kind: String,
    /// The cosign tag it stands under (`sha256-<hex>.sig`), when it was found by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Written to the target.
    pub copied: bool,
}

/// A typed error: `code` for programs, `message` (with its hint) for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub project: String,
    /// The source as the caller wrote it, and as it normalises.
    pub source: String,
    pub source_canonical: String,
    /// The target inside this registry: `host/project/name:tag`.
    pub target: String,
    /// Platform filters (`os/arch[/variant]`); empty means every platform.
    pub platforms: Vec<String>,
    pub state: TaskState,
    /// resolving, copying, pushing_manifests, done, failed or cancelled; null while
    /// queued.
    pub phase: Option<String>,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub blobs_done: u32,
    pub blobs_total: u32,
    pub blobs: Vec<TaskBlob>,
    /// The digest written under the target tag.
    pub digest: Option<String>,
    /// The target as a digest reference, once done.
    pub target_reference: Option<String>,
    pub error: Option<TaskError>,
    pub warnings: Vec<String>,
    /// Whether the caller gave source credentials (which the task record never holds).
    pub authenticated: bool,
    pub created_by: String,
    /// RFC 3339 timestamps.
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// How many times the task started running (restarts and retries count).
    pub attempts: u32,
    /// What the source last reported of its quota (`RateLimit-Remaining`) while this
    /// task ran, when it reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Which referrers travel with the image.
    #[serde(default)]
    pub referrer_options: ReferrerOptions,
    /// The referrers found, parents before theirs, each marked once written.
    #[serde(default)]
    pub referrers: Vec<TaskReferrer>,
    /// The ceiling on the import's source reads, in bytes per second, as asked; none
    /// takes the source registry's configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes_per_second: Option<u64>,
    /// While `waiting`: when the task runs again (RFC 3339), as the source asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_until: Option<String>,
    /// When the plugin last reported progress, to the millisecond (RFC 3339), so that a
    /// client can time what it sees (a bandwidth cap, a stall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl Task {
    /// A queued task with nothing done yet and the default options.
    pub fn queued(
        project: &str,
        source: &str,
        source_canonical: String,
        target: String,
        created_by: String,
    ) -> Self {
        Self {
            id: hoist_common::random::id(),
            project: project.to_owned(),
            source: source.to_owned(),
            source_canonical,
            target,
            platforms: Vec::new(),
            state: TaskState::Queued,
            phase: None,
            bytes_done: 0,
            bytes_total: 0,
            blobs_done: 0,
            blobs_total: 0,
            blobs: Vec::new(),
            digest: None,
            target_reference: None,
            error: None,
            warnings: Vec::new(),
            authenticated: false,
            created_by,
            created_at: hoist_common::clock::now_rfc3339(),
            started_at: None,
            finished_at: None,
            attempts: 0,
            quota: None,
            referrer_options: ReferrerOptions::default(),
            referrers: Vec::new(),
            max_bytes_per_second: None,
            waiting_until: None,
            updated_at: None,
        }
    }

    /// Takes in a status report of the plugin.
    pub(crate) fn apply(&mut self, status: &Status) {
        self.updated_at = Some(hoist_common::clock::now_rfc3339_millis());
        self.phase = Some(phase_name(status.phase).into());
        self.bytes_done = status.bytes_done;
        self.bytes_total = status.bytes_total;
        self.blobs_done = status.blobs_done;
        self.blobs_total = status.blobs_total;
        self.blobs = status
            .blobs
            .iter()
            .map(|b| {
                let (state, error) = blob_state(&b.state);
                TaskBlob {
                    digest: b.digest.clone(),
                    media_type: b.media_type.clone(),
                    size: b.size,
                    bytes_done: b.bytes_done,
                    state: state.into(),
                    error,
                }
            })
            .collect();
        self.referrers = status
            .referrers
            .iter()
            .map(|r| TaskReferrer {
                digest: r.digest.clone(),
                subject: r.subject.clone(),
                artifact_type: r.artifact_type.clone(),
                kind: match r.kind {
                    ReferrerKind::Signature => "signature",
                    ReferrerKind::Sbom => "sbom",
                    ReferrerKind::Attestation => "attestation",
                    ReferrerKind::Other => "other",
                }
                .into(),
                tag: r.tag.clone(),
                copied: r.copied,
            })
            .collect();
        self.digest.clone_from(&status.digest);
        self.target_reference.clone_from(&status.target_reference);
        self.warnings.clone_from(&status.warnings);
        self.error = status.error.as_ref().map(task_error);
    }
}

pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Resolving => "resolving",
        Phase::Copying => "copying",
        Phase::PushingManifests => "pushing_manifests",
        Phase::Done => "done",
        Phase::Failed => "failed",
        Phase::Cancelled => "cancelled",
    }
}

fn blob_state(state: &BlobState) -> (&'static str, Option<String>) {
    match state {
        BlobState::Pending => ("pending", None),
        BlobState::Skipped => ("skipped", None),
        BlobState::Mounted => ("mounted", None),
        BlobState::Copying => ("copying", None),
        BlobState::Done => ("done", None),
        BlobState::Foreign => ("foreign", None),
        BlobState::Failed(m) => ("failed", Some(m.clone())),
        BlobState::Cancelled => ("cancelled", None),
    }
}

pub fn task_error(e: &PluginError) -> TaskError {
    let (code, message) = error_parts(e);
    TaskError {
        code: code.into(),
        message: message.into(),
    }
}

/// A task that failed outside the plugin (a trap, a host error).
pub fn host_error(message: String) -> TaskError {
    TaskError {
        code: "internal".into(),
        message,
    }
}

/// At most this many platform filters per request: an image index lists a few dozen.
pub(crate) const MAX_PLATFORMS: usize = 64;

/// The plugin's view, for building requests. Each part is checked as a word of letters,
/// digits, `.`, `_` and `-` (as `GOOS`/`GOARCH` values are), so that nothing like a path
/// or a very long list reaches the records.
pub fn platforms_of(filters: &[String]) -> Result<Vec<contract::Platform>, String> {
    if filters.len() > MAX_PLATFORMS {
        return Err(format!(
            "{} platforms were given; name at most {MAX_PLATFORMS}, or none for all",
            filters.len()
        ));
    }
    let word = |w: &str| {
        (1..=32).contains(&w.len())
            && w.starts_with(|c: char| c.is_ascii_alphanumeric())
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    filters
        .iter()
        .map(|f| {
            let mut parts = f.split('/');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(os), Some(arch), variant, None)
                    if word(os) && word(arch) && variant.is_none_or(word) =>
                {
                    Ok(contract::Platform {
                        os: os.into(),
                        architecture: arch.into(),
                        variant: variant.map(str::to_owned),
                    })
                }
                _ => Err(format!(
                    "platform {f:?} is not os/arch[/variant], like linux/amd64 or linux/arm/v7"
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_filters_are_words_and_few() {
        let ok = |f: &[&str]| platforms_of(&f.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let parsed = ok(&["linux/amd64", "linux/arm/v7", "windows/amd64/10.0.17763"]).unwrap();
        assert_eq!(parsed[1].variant.as_deref(), Some("v7"));
        for bad in [
            "../../etc",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/arm/",
            "linux/am d64",
            "linux/.hidden",
        ] {
            let e = ok(&[bad]).unwrap_err();
            assert!(e.contains("os/arch"), "{bad}: {e}");
        }
        let many = vec!["linux/amd64".to_owned(); MAX_PLATFORMS + 1];
        assert!(platforms_of(&many).unwrap_err().contains("at most"));
    }
}
