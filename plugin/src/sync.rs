//! Sync plans as callers see them (WIT `sync` records), and the pure decisions a plan
//! makes: whether a tag changed, which known tags to prune, and where the next page of a
//! tag list is. The network part lives in `plan.rs`; this part is tested natively.

use crate::progress::{ImportError, RequestCounts};
use crate::select::{Naming, TagSelection};

/// What the caller knows about a target tag: the source digest it was copied from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownTag {
    pub repository: String,
    pub tag: String,
    pub source_digest: String,
    pub target_digest: String,
}

/// One sync plan, in native types (WIT `sync-request`, credentials and options apart).
#[derive(Clone, Debug, Default)]
pub struct PlanSpec {
    pub registry: String,
    pub repositories: Vec<String>,
    pub tags: TagSelection,
    pub target_registry: String,
    pub naming: Naming,
    pub known: Vec<KnownTag>,
    pub prune_keep_minimum: Option<u32>,
    pub estimate_bytes: bool,
}

/// What a run would do with one item (WIT `plan-action`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanAction {
    Copy,
    Unchanged,
    Filtered,
    Prune,
    Failed(ImportError),
}

/// One tag or digest of a plan (WIT `plan-item`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanItem {
    pub source_repository: String,
    pub tag: Option<String>,
    pub source_digest: Option<String>,
    pub target_repository: String,
    pub target_tag: Option<String>,
    pub target_digest: Option<String>,
    pub action: PlanAction,
    pub reason: String,
    pub bytes: Option<u64>,
    pub source_reference: Option<String>,
    pub target_reference: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanPhase {
    Listing,
    Comparing,
    Done,
    Failed,
    Cancelled,
}

impl PlanPhase {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            PlanPhase::Done | PlanPhase::Failed | PlanPhase::Cancelled
        )
    }
}

/// A snapshot of a plan (WIT `plan-status`).
#[derive(Clone, Debug)]
pub struct PlanStatus {
    pub phase: PlanPhase,
    pub items: Vec<PlanItem>,
    pub repositories_done: u32,
    pub repositories_total: u32,
    pub requests: RequestCounts,
    pub target_requests: u32,
    pub error: Option<ImportError>,
    pub warnings: Vec<String>,
}

impl Default for PlanStatus {
    fn default() -> Self {
        Self {
            phase: PlanPhase::Listing,
            items: Vec::new(),
            repositories_done: 0,
            repositories_total: 0,
            requests: RequestCounts::default(),
            target_requests: 0,
            error: None,
            warnings: Vec::new(),
        }
    }
}

/// How a selected tag compares with what the target holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Decided from the caller's record alone: no request to the target.
    Decided(PlanAction, String),
    /// No record: the target's own digest decides ([`compare_with_target`]).
    AskTarget,
}

/// Compares a tag's current source digest with the caller's record of what the target
/// tag was copied from. A platform filter rewrites an index, so the target's digest can
/// differ from the source's forever; the record is what tells whether upstream moved.
pub fn compare_with_record(source_digest: &str, known: Option<&KnownTag>) -> Comparison {
    match known {
        Some(k) if k.source_digest == source_digest => Comparison::Decided(
            PlanAction::Unchanged,
            format!("already copied from {source_digest}"),
        ),
        Some(k) => Comparison::Decided(
            PlanAction::Copy,
            format!("upstream moved from {} to {source_digest}", k.source_digest),
        ),
        None => Comparison::AskTarget,
    }
}

/// Without a record: the target's digest for the tag (None when it has no such tag).
pub fn compare_with_target(source_digest: &str, target: Option<&str>) -> (PlanAction, String) {
    match target {
        None => (PlanAction::Copy, "new tag".into()),
        Some(t) if t == source_digest => (
            PlanAction::Unchanged,
            "the target holds the same digest".into(),
        ),
        Some(t) => (
            PlanAction::Copy,
            format!("the target holds {t}, upstream {source_digest}"),
        ),
    }
}

/// The known tags of `target_repository` to prune: those whose source tag is not in
/// `upstream` (listed at the source just now), never leaving fewer than `keep_minimum`
/// known tags in the repository. The oldest-listed known tags go first.
pub fn prune<'a>(
    known: &'a [KnownTag],
    target_repository: &str,
    upstream_target_tags: &[String],
    keep_minimum: u32,
) -> Vec<&'a KnownTag> {
    let in_repository: Vec<&KnownTag> = known
        .iter()
        .filter(|k| k.repository == target_repository)
        .collect();
    let may_remove = in_repository
        .len()
        .saturating_sub(usize::try_from(keep_minimum).unwrap_or(usize::MAX));
    in_repository
        .into_iter()
        .filter(|k| !upstream_target_tags.contains(&k.tag))
        .take(may_remove)
        .collect()
}

/// The next page of a paginated list, from its `Link: <…>; rel="next"` header.
pub fn next_page(link: Option<&str>) -> Option<String> {
    let link = link?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().to_ascii_lowercase();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(repository: &str, tag: &str, source: &str) -> KnownTag {
        KnownTag {
            repository: repository.into(),
            tag: tag.into(),
            source_digest: source.into(),
            target_digest: format!("target-{source}"),
        }
    }

    #[test]
    fn a_record_decides_without_the_target_and_its_absence_asks_it() {
        let k = known("p/nginx", "1.27", "sha256:a");
        assert!(matches!(
            compare_with_record("sha256:a", Some(&k)),
            Comparison::Decided(PlanAction::Unchanged, _)
        ));
        let Comparison::Decided(PlanAction::Copy, why) = compare_with_record("sha256:b", Some(&k))
        else {
            panic!("a moved tag is copied");
        };
        assert!(
            why.contains("sha256:a") && why.contains("sha256:b"),
            "{why}"
        );
        assert_eq!(compare_with_record("sha256:a", None), Comparison::AskTarget);
        assert_eq!(compare_with_target("sha256:a", None).0, PlanAction::Copy);
        assert_eq!(
            compare_with_target("sha256:a", Some("sha256:a")).0,
            PlanAction::Unchanged
        );
        assert_eq!(
            compare_with_target("sha256:a", Some("sha256:b")).0,
            PlanAction::Copy
        );
    }

    #[test]
    fn pruning_removes_only_vanished_tags_and_keeps_the_minimum() {
        let records = vec![
            known("p/a", "1", "x"),
            known("p/a", "2", "x"),
            known("p/a", "3", "x"),
            known("p/b", "9", "x"),
        ];
        let upstream = vec!["3".to_owned()];
        let gone: Vec<&str> = prune(&records, "p/a", &upstream, 0)
            .iter()
            .map(|k| k.tag.as_str())
            .collect();
        assert_eq!(gone, ["1", "2"], "p/b is another repository");
        let gone = prune(&records, "p/a", &upstream, 2);
        assert_eq!(gone.len(), 1, "three known, keep two: one may go");
        assert!(prune(&records, "p/a", &upstream, 5).is_empty());
        assert!(prune(&records, "p/a", &["1".into(), "2".into(), "3".into()], 0).is_empty());
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        assert_eq!(
            next_page(Some("</v2/a/tags/list?last=b&n=2>; rel=\"next\"")),
            Some("/v2/a/tags/list?last=b&n=2".into())
        );
        assert_eq!(
            next_page(Some(
                "<https://x/v2/_catalog?last=z>; rel=prev, <https://x/n>; rel=next"
            )),
            Some("https://x/n".into())
        );
        assert_eq!(next_page(Some("<x>; rel=\"prev\"")), None);
        assert_eq!(next_page(None), None);
    }
}
