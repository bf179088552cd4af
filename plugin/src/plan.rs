//! One sync plan on the network: list the catalog (for repository globs) and each
//! repository's tags, select them, and compare each selected tag with the target, at the
//! least cost a registry allows. Per selected tag: one manifest `HEAD` at the source, and
//! one at the target only when the caller has no record of the tag. No manifest `GET`, no
//! blob request; the token cache gives one token per repository scope.
//!
//! Driven like an import ([`crate::copy::Import`]): a future on an executor of its own,
//! advanced in slices, cancelled by dropping it.

use crate::executor::{Executor, now};
use crate::progress::{Field, ImportError};
use crate::registry::{Client, Settings};
use crate::select::{RepositoryPattern, Selection, check_naming, target_repository};
use crate::sync::{
    Comparison, KnownTag, PlanAction, PlanItem, PlanPhase, PlanSpec, PlanStatus,
    compare_with_record, compare_with_target, prune,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A running plan and its executor.
pub struct Plan {
    executor: Option<Executor>,
    shared: Rc<Shared>,
}

struct Shared {
    status: RefCell<PlanStatus>,
    finished: Cell<bool>,
    warnings: Rc<RefCell<Vec<String>>>,
}

/// How a standalone caller (the CLI) reaches registries, as an import spec carries it:
/// mirrors per registry, plain-HTTP registries, `(registry, user, password)` triples,
/// and the retry budget.
pub struct Reach {
    pub endpoints: Vec<(String, Vec<String>)>,
    pub insecure: Vec<String>,
    pub credentials: Vec<(String, String, String)>,
    pub max_retries: u32,
}

impl Plan {
    /// [`Plan::start`] for a caller that holds its own credentials.
    pub fn start_standalone(spec: PlanSpec, reach: &Reach) -> Result<Self, ImportError> {
        let settings = Settings::new(
            &reach.endpoints,
            &reach.insecure,
            &reach.credentials,
            reach.max_retries,
            Default::default(),
        )?;
        Self::start(spec, settings)
    }

    /// Checks the request (patterns, ranges, naming) and starts the plan. Fails before any
    /// network call when the rule is invalid.
    pub fn start(spec: PlanSpec, settings: Settings) -> Result<Self, ImportError> {
        let selection = Selection::new(&spec.tags).map_err(select_error)?;
        let patterns = spec
            .repositories
            .iter()
            .map(|r| RepositoryPattern::new(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(select_error)?;
        if patterns.is_empty() {
            return Err(ImportError::invalid(
                Field::Repositories,
                "name at least one repository (library/nginx) or glob (library/*)",
            ));
        }
        check_naming(&spec.naming).map_err(select_error)?;
        if spec.registry.is_empty() {
            return Err(ImportError::invalid(
                Field::Source,
                "name the source registry (docker.io, ghcr.io, registry.example:5000)",
            ));
        }
        let warnings = Rc::new(RefCell::new(Vec::new()));
        let shared = Rc::new(Shared {
            status: RefCell::new(PlanStatus::default()),
            finished: Cell::new(false),
            warnings: warnings.clone(),
        });
        let job = Job {
            client: Client::new(settings, warnings),
            spec,
            selection,
            patterns,
            shared: shared.clone(),
        };
        let executor = Executor::new();
        let for_plan = shared.clone();
        executor.spawn(async move {
            let outcome = job.run().await;
            job.count_requests();
            let mut status = for_plan.status.borrow_mut();
            match outcome {
                Ok(()) => status.phase = PlanPhase::Done,
                Err(e) => {
                    status.phase = PlanPhase::Failed;
                    status.error = Some(e);
                }
            }
            drop(status);
            for_plan.finished.set(true);
        });
        Ok(Self {
            executor: Some(executor),
            shared,
        })
    }

    /// Works for about `budget_ms`, then reports.
    pub fn advance(&mut self, budget_ms: u32) -> PlanStatus {
        if let Some(executor) = self.executor.as_mut() {
            let deadline = now() + u64::from(budget_ms.max(1)) * 1_000_000;
            let shared = self.shared.clone();
            executor.run_until(deadline, || shared.finished.get());
            if self.shared.finished.get() {
                self.executor = None;
            }
        }
        self.status()
    }

    pub fn status(&self) -> PlanStatus {
        let mut status = self.shared.status.borrow().clone();
        status.warnings = self.shared.warnings.borrow().clone();
        status
    }

    /// Stops the plan: dropping its future aborts its requests.
    pub fn cancel(&mut self) {
        if self.shared.finished.get() {
            return;
        }
        self.executor = None;
        self.shared.finished.set(true);
        let mut status = self.shared.status.borrow_mut();
        status.phase = PlanPhase::Cancelled;
        status.error = Some(ImportError::Cancelled("the plan was cancelled".into()));
    }
}

pub(crate) fn select_error(e: crate::select::SelectError) -> ImportError {
    let field = match e.field {
        crate::select::Field::Repositories => Field::Repositories,
        crate::select::Field::Tags => Field::Tags,
        crate::select::Field::Naming => Field::Naming,
    };
    ImportError::invalid(field, e.message)
}

struct Job {
    client: Client,
    spec: PlanSpec,
    selection: Selection,
    patterns: Vec<RepositoryPattern>,
    shared: Rc<Shared>,
}

impl Job {
    async fn run(&self) -> Result<(), ImportError> {
        let repositories = self.repositories().await?;
        self.shared.status.borrow_mut().repositories_total = repositories.len() as u32;
        for repository in &repositories {
            self.plan_repository(repository).await?;
            self.shared.status.borrow_mut().repositories_done += 1;
            self.count_requests();
        }
        Ok(())
    }

    /// The exact repositories, then those of the catalog that a glob matches, each once.
    async fn repositories(&self) -> Result<Vec<String>, ImportError> {
        let mut out: Vec<String> = Vec::new();
        let mut catalog = None;
        for pattern in &self.patterns {
            if !pattern.is_glob() {
                if !out.iter().any(|r| r == pattern.as_str()) {
                    out.push(pattern.as_str().to_owned());
                }
                continue;
            }
            if catalog.is_none() {
                catalog = Some(self.client.catalog(&self.spec.registry).await?);
            }
            let matched: Vec<&String> = catalog
                .iter()
                .flatten()
                .filter(|name| pattern.matches(name))
                .collect();
            if matched.is_empty() {
                self.warn(format!(
                    "no repository of {} matches {}",
                    self.spec.registry,
                    pattern.as_str()
                ));
            }
            for name in matched {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
        }
        Ok(out)
    }

    async fn plan_repository(&self, repository: &str) -> Result<(), ImportError> {
        let registry = &self.spec.registry;
        let target_repository =
            target_repository(&self.spec.naming, repository).map_err(select_error)?;
        self.set_phase(PlanPhase::Listing);
        let tags = match self.client.list_tags(registry, repository).await {
            Ok(tags) => tags,
            Err(ImportError::NotFound(m)) => {
                self.warn(format!("{repository}: {m}"));
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let decisions = self.selection.decide(&tags);
        for decision in &decisions.tags {
            if let Some(reason) = &decision.dropped {
                self.push(PlanItem {
                    source_repository: repository.to_owned(),
                    tag: Some(decision.tag.clone()),
                    source_digest: None,
                    target_repository: target_repository.clone(),
                    target_tag: Some(decision.tag.clone()),
                    target_digest: None,
                    action: PlanAction::Filtered,
                    reason: reason.clone(),
                    bytes: None,
                    source_reference: None,
                    target_reference: self.target_reference(&target_repository, &decision.tag),
                });
            }
        }
        self.set_phase(PlanPhase::Comparing);
        let wanted = (decisions.kept.iter().map(|t| (t, false)))
            .chain(decisions.digests.iter().map(|d| (d, true)));
        for (reference, by_digest) in wanted {
            let item = self
                .compare(repository, &target_repository, reference, by_digest)
                .await;
            // A source out of quota would fail every remaining tag alike: the plan stops
            // instead, so that the run waits for the quota and plans again.
            if let PlanAction::Failed(ImportError::RateLimited(m)) = &item.action {
                return Err(ImportError::RateLimited(m.clone()));
            }
            self.push(item);
        }
        if let Some(keep_minimum) = self.spec.prune_keep_minimum {
            for gone in prune(&self.spec.known, &target_repository, &tags, keep_minimum) {
                self.push(PlanItem {
                    source_repository: repository.to_owned(),
                    tag: Some(gone.tag.clone()),
                    source_digest: Some(gone.source_digest.clone()),
                    target_repository: target_repository.clone(),
                    target_tag: Some(gone.tag.clone()),
                    target_digest: Some(gone.target_digest.clone()),
                    action: PlanAction::Prune,
                    reason: format!("{repository}:{} is gone upstream", gone.tag),
                    bytes: None,
                    source_reference: None,
                    target_reference: self.target_reference(&target_repository, &gone.tag),
                });
            }
        }
        Ok(())
    }

    /// One selected tag (or digest) compared with the target.
    async fn compare(
        &self,
        repository: &str,
        target_repository: &str,
        reference: &str,
        by_digest: bool,
    ) -> PlanItem {
        let registry = &self.spec.registry;
        let tag = (!by_digest).then(|| reference.to_owned());
        let mut item = PlanItem {
            source_repository: repository.to_owned(),
            tag: tag.clone(),
            source_digest: None,
            target_repository: target_repository.to_owned(),
            target_tag: tag.clone(),
            target_digest: None,
            action: PlanAction::Copy,
            reason: String::new(),
            bytes: None,
            source_reference: None,
            target_reference: self.target_reference(target_repository, reference),
        };
        let source_digest = match self
            .client
            .head_manifest(registry, repository, reference)
            .await
        {
            Ok(Some(digest)) => digest,
            Ok(None) => {
                item.action = PlanAction::Failed(ImportError::NotFound(format!(
                    "{repository}:{reference} was listed but is gone from {registry}"
                )));
                item.reason = "gone upstream since the tag list".into();
                return item;
            }
            Err(e) => {
                item.reason = e.message().to_owned();
                item.action = PlanAction::Failed(e);
                return item;
            }
        };
        item.source_reference = Some(match &tag {
            Some(tag) => format!("{registry}/{repository}:{tag}@{source_digest}"),
            None => format!("{registry}/{repository}@{source_digest}"),
        });
        item.source_digest = Some(source_digest.clone());
        let known = tag
            .as_ref()
            .and_then(|tag| self.known(target_repository, tag));
        let (action, reason) = match compare_with_record(&source_digest, known) {
            Comparison::Decided(action, reason) => {
                item.target_digest = known.map(|k| k.target_digest.clone());
                (action, reason)
            }
            Comparison::AskTarget => {
                let target = &self.spec.target_registry;
                self.shared.status.borrow_mut().target_requests += 1;
                match self
                    .client
                    .head_manifest(target, target_repository, reference)
                    .await
                {
                    Ok(found) => {
                        item.target_digest.clone_from(&found);
                        compare_with_target(&source_digest, found.as_deref())
                    }
                    Err(e) => {
                        let reason = e.message().to_owned();
                        (PlanAction::Failed(e), reason)
                    }
                }
            }
        };
        item.action = action;
        item.reason = reason;
        if self.spec.estimate_bytes && item.action == PlanAction::Copy {
            item.bytes = self.size_of(repository, &source_digest).await;
        }
        item
    }

    /// The size of the image a manifest names: configs, layers and manifests. Costs a
    /// manifest GET (two levels for an index), so only dry runs ask for it.
    async fn size_of(&self, repository: &str, digest: &str) -> Option<u64> {
        let registry = &self.spec.registry;
        let (bytes, media, _) = self
            .client
            .get_manifest(registry, repository, digest)
            .await
            .ok()?;
        let own = bytes.len() as u64;
        match crate::manifest::parse(&media, &bytes).ok()? {
            crate::manifest::Parsed::Image { config, layers } => {
                Some(own + config.size() + layers.iter().map(|l| l.size()).sum::<u64>())
            }
            crate::manifest::Parsed::Index { manifests } => {
                let mut total = own;
                for child in manifests {
                    let child_digest = child.digest().to_string();
                    let (bytes, media, _) = self
                        .client
                        .get_manifest(registry, repository, &child_digest)
                        .await
                        .ok()?;
                    total += bytes.len() as u64;
                    if let crate::manifest::Parsed::Image { config, layers } =
                        crate::manifest::parse(&media, &bytes).ok()?
                    {
                        total += config.size() + layers.iter().map(|l| l.size()).sum::<u64>();
                    }
                }
                Some(total)
            }
        }
    }

    fn known(&self, repository: &str, tag: &str) -> Option<&KnownTag> {
        self.spec
            .known
            .iter()
            .find(|k| k.repository == repository && k.tag == tag)
    }

    fn target_reference(&self, repository: &str, reference: &str) -> String {
        let separator = if reference.contains(':') { '@' } else { ':' };
        format!(
            "{}/{repository}{separator}{reference}",
            self.spec.target_registry
        )
    }

    fn push(&self, item: PlanItem) {
        self.shared.status.borrow_mut().items.push(item);
    }

    fn set_phase(&self, phase: PlanPhase) {
        self.shared.status.borrow_mut().phase = phase;
    }

    fn warn(&self, message: String) {
        self.shared.warnings.borrow_mut().push(message);
    }

    fn count_requests(&self) {
        self.shared.status.borrow_mut().requests = self.client.counts(&self.spec.registry);
    }
}
