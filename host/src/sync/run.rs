//! A sync run's record: why it started, where it is, what happened to each tag, and what
//! it cost upstream. Kept as JSON in the database and streamed live while it runs.

use hoist_imports::boundary::pacing::Quota;
use hoist_imports::contract::{PlanAction, PlanItem, RequestCounts};
use hoist_imports::tasks::model::TaskError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Trigger {
    Schedule,
    Manual,
    /// The schedule was missed while the host was down.
    CatchUp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunState {
    Running,
    /// Paused until `waiting_until`: the source's quota ran out.
    Waiting,
    Succeeded,
    /// The plan failed, or at least one item did.
    Failed,
    /// Not run: the previous run of the rule was still going.
    Skipped,
    Cancelled,
}

impl RunState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Waiting => "waiting",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Skipped => "skipped",
            RunState::Cancelled => "cancelled",
        }
    }

    pub(crate) fn is_finished(self) -> bool {
        !matches!(self, RunState::Running | RunState::Waiting)
    }
}

/// What happened to one tag (or digest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// To be copied; its import is queued or running.
    Copying,
    Copied,
    Unchanged,
    /// Dropped by the tag selection.
    Filtered,
    /// Upstream moved, and the rule does not overwrite.
    Kept,
    Pruned,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunItem {
    pub source_repository: String,
    pub tag: Option<String>,
    pub source_digest: Option<String>,
    pub target_repository: String,
    pub target_tag: Option<String>,
    pub outcome: Outcome,
    /// Why, for a person: `new tag`, `upstream moved …`, `excluded by …`.
    pub reason: String,
    /// The import that copies it.
    pub task_id: Option<String>,
    /// The tag the old image was kept under before it was overwritten.
    pub backup_tag: Option<String>,
    pub error: Option<TaskError>,
    pub bytes: u64,
    /// Where the import takes it from and puts it; not shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_reference: Option<String>,
    pub target_reference: String,
    #[serde(skip)]
    pub target_digest: Option<String>,
}

impl RunItem {
    pub(crate) fn of(item: &PlanItem, overwrite: bool) -> Self {
        let (outcome, error) = match &item.action {
            PlanAction::Copy if !overwrite && item.target_digest.is_some() => (Outcome::Kept, None),
            PlanAction::Copy => (Outcome::Copying, None),
            PlanAction::Unchanged => (Outcome::Unchanged, None),
            PlanAction::Filtered => (Outcome::Filtered, None),
            PlanAction::Prune => (Outcome::Pruned, None),
            PlanAction::Failed(e) => (
                Outcome::Failed,
                Some(hoist_imports::tasks::model::task_error(e)),
            ),
        };
        let reason = if outcome == Outcome::Kept {
            format!("{}; the rule does not overwrite", item.reason)
        } else {
            item.reason.clone()
        };
        Self {
            source_repository: item.source_repository.clone(),
            tag: item.tag.clone(),
            source_digest: item.source_digest.clone(),
            target_repository: item.target_repository.clone(),
            target_tag: item.target_tag.clone(),
            outcome,
            reason,
            task_id: None,
            backup_tag: None,
            error,
            bytes: item.bytes.unwrap_or(0),
            source_reference: item.source_reference.clone(),
            target_reference: item.target_reference.clone(),
            target_digest: item.target_digest.clone(),
        }
    }
}

/// How many items ended each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub copied: u32,
    pub unchanged: u32,
    pub filtered: u32,
    pub kept: u32,
    pub pruned: u32,
    pub failed: u32,
}

/// Requests sent upstream (to the source and its token service), by kind, and to the
/// target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Requests {
    pub manifest_head: u32,
    pub manifest_get: u32,
    pub blob: u32,
    pub tag_list: u32,
    pub catalog: u32,
    pub referrers: u32,
    pub token: u32,
    pub target: u32,
}

impl Requests {
    pub(crate) fn add(&mut self, counts: &RequestCounts, target: u32) {
        self.manifest_head += counts.manifest_head;
        self.manifest_get += counts.manifest_get;
        self.blob += counts.blob;
        self.tag_list += counts.tag_list;
        self.catalog += counts.catalog;
        self.referrers += counts.referrers;
        self.token += counts.token;
        self.target += target;
    }

    /// Every request to the source.
    pub(crate) fn upstream(&self) -> u32 {
        self.manifest_head
            + self.manifest_get
            + self.blob
            + self.tag_list
            + self.catalog
            + self.referrers
            + self.token
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Run {
    pub id: String,
    pub rule: String,
    pub project: String,
    pub rule_name: String,
    pub trigger: Trigger,
    pub state: RunState,
    /// While running: `listing`, `comparing`, `copying`, `pruning`.
    pub phase: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub waiting_until: Option<String>,
    pub items: Vec<RunItem>,
    pub counts: Counts,
    /// Bytes of the images copied.
    pub bytes: u64,
    /// Requests of the plan (the imports' own requests are on their tasks).
    pub requests: Requests,
    pub error: Option<TaskError>,
    pub warnings: Vec<String>,
    /// What the source last said of its quota (`RateLimit-Remaining`), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

impl Run {
    pub(crate) fn count(&mut self) {
        let mut counts = Counts::default();
        for item in &self.items {
            match item.outcome {
                Outcome::Copied => counts.copied += 1,
                Outcome::Unchanged => counts.unchanged += 1,
                Outcome::Filtered => counts.filtered += 1,
                Outcome::Kept => counts.kept += 1,
                Outcome::Pruned => counts.pruned += 1,
                Outcome::Failed => counts.failed += 1,
                Outcome::Copying => {}
            }
        }
        self.counts = counts;
        self.bytes = self
            .items
            .iter()
            .filter(|i| i.outcome == Outcome::Copied)
            .map(|i| i.bytes)
            .sum();
    }
}
