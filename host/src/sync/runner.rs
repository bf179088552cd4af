//! Runs sync rules: at most one run per rule at a time, each run a plan by the plugin
//! (list, select, compare with HEADs only) followed by one import task per tag to copy,
//! through the same task machinery as any import (merging, retries, restart survival),
//! then backups and pruning in the host's own metadata. The scheduler looks at the
//! enabled rules every tick and starts what is due; runs the last process left going
//! start again when the host does.

use super::rule::{Rule, WebhookOn};
use super::run::{Outcome, Requests, Run, RunItem, RunState, Trigger};
use super::schedule::{Decision, Schedule};
use crate::store::HostStore;
use anyhow::{Context, Result};
use hoist_common::clock::{now_ms, now_rfc3339, rfc3339_of_ms};
use hoist_imports::boundary::client::Clients;
use hoist_imports::contract::{KnownTag, PlanPhase, PlanStatus};
use hoist_imports::sealed::SecretBox;
use hoist_imports::tasks::model::{Task, TaskError, TaskState, host_error, task_error};
use hoist_imports::tasks::{SourceAuth, Submitted, TaskRunner};
use hoist_plugin::url::Url;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// What the scheduler and the quota pause are configured to do.
#[derive(Clone, Debug)]
pub(crate) struct SyncSettings {
    pub scheduler: bool,
    pub catch_up: bool,
    pub tick: Duration,
    pub quota_wait: Duration,
    pub quota_retries: u32,
}

struct Live {
    run: String,
    progress: watch::Sender<Run>,
    cancel: Arc<AtomicBool>,
}

#[derive(Clone)]
pub(crate) struct SyncRunner {
    inner: Arc<Inner>,
}

struct Inner {
    store: HostStore,
    tasks: TaskRunner,
    secrets: SecretBox,
    settings: SyncSettings,
    /// The egress-checked client webhooks go through.
    network: Clients,
    /// The run in progress, by rule.
    live: Mutex<HashMap<String, Live>>,
}

/// What asking for a run gave.
pub(crate) enum Started {
    Running(Run),
    /// The rule's previous run (`active`) is still going; this run is recorded skipped.
    Skipped {
        skipped: Run,
        active: String,
    },
}

impl SyncRunner {
    pub(crate) fn new(
        store: HostStore,
        tasks: TaskRunner,
        secrets: SecretBox,
        settings: SyncSettings,
        network: Clients,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                tasks,
                secrets,
                settings,
                network,
                live: Mutex::default(),
            }),
        }
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&HostStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.inner.store.run(f).await
    }

    /// Seals a rule's source credentials.
    pub(crate) fn seal(&self, auth: &SourceAuth) -> Vec<u8> {
        self.inner
            .secrets
            .seal(&serde_json::to_vec(auth).expect("plain strings"))
    }

    async fn source_auth(&self, rule: &Rule) -> Result<Option<SourceAuth>, String> {
        if !rule.source.authenticated {
            return Ok(None);
        }
        let id = rule.id.clone();
        let sealed = self
            .db(move |store| store.rule_secret(&id))
            .await
            .map_err(|e| format!("{e:#}"))?
            .ok_or("the rule's source credentials are gone; set them again")?;
        let plain = self.inner.secrets.open(&sealed).ok_or(
            "the rule's source credentials cannot be opened (the secrets key changed); set \
             them again",
        )?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// Starts a run of `rule` now, unless one is going.
    pub(crate) async fn start(&self, rule: Rule, trigger: Trigger) -> Result<Started> {
        let run = new_run(&rule, trigger);
        let active = self.inner.live.lock().get(&rule.id).map(|l| l.run.clone());
        if let Some(active) = active {
            let mut skipped = run;
            skipped.state = RunState::Skipped;
            skipped.finished_at = Some(skipped.started_at.clone());
            skipped.warnings.push(format!(
                "skipped: the previous run ({active}) of this rule is still going"
            ));
            let record = skipped.clone();
            self.db(move |store| store.insert_sync_run(&record)).await?;
            return Ok(Started::Skipped { skipped, active });
        }
        let record = run.clone();
        self.db(move |store| store.insert_sync_run(&record)).await?;
        Ok(self.spawn(rule, run))
    }

    /// Starts again every run the last process left going, under its own id.
    pub(crate) async fn recover(&self) -> Result<usize> {
        if self.inner.store.db.is_shared() {
            // With replicas sharing the database, a run left going may be another
            // replica's, live: runs hold no lease yet, so none is taken over. (A run's
            // imports are tasks, which are.)
            return Ok(0);
        }
        let runs = self.db(|store| store.unfinished_sync_runs()).await?;
        let mut n = 0;
        for mut run in runs {
            let rule_id = run.rule.clone();
            let Some(rule) = self.db(move |store| store.rule(&rule_id)).await? else {
                continue;
            };
            if self.inner.live.lock().contains_key(&rule.id) {
                continue;
            }
            run.warnings
                .push("the host restarted during this run; it started again".into());
            run.state = RunState::Running;
            run.items.clear();
            self.spawn(rule, run);
            n += 1;
        }
        Ok(n)
    }

    fn spawn(&self, rule: Rule, run: Run) -> Started {
        let (progress, _) = watch::channel(run.clone());
        let cancel = Arc::new(AtomicBool::new(false));
        self.inner.live.lock().insert(
            rule.id.clone(),
            Live {
                run: run.id.clone(),
                progress: progress.clone(),
                cancel: cancel.clone(),
            },
        );
        let this = self.clone();
        let started = run.clone();
        tokio::spawn(async move {
            let rule_id = rule.id.clone();
            let run = this.execute(&rule, run, &progress, &cancel).await;
            this.inner.live.lock().remove(&rule_id);
            progress.send_replace(run.clone());
            this.notify(&rule, &run).await;
        });
        Started::Running(started)
    }

    /// The run as it is now: live while it runs, else as recorded.
    pub(crate) async fn current(&self, id: &str) -> Result<Option<Run>> {
        if let Some(run) = self
            .inner
            .live
            .lock()
            .values()
            .find(|l| l.run == id)
            .map(|l| l.progress.borrow().clone())
        {
            return Ok(Some(run));
        }
        let id = id.to_owned();
        self.db(move |store| store.sync_run(&id)).await
    }

    pub(crate) fn subscribe(&self, id: &str) -> Option<watch::Receiver<Run>> {
        self.inner
            .live
            .lock()
            .values()
            .find(|l| l.run == id)
            .map(|l| l.progress.subscribe())
    }

    /// The run of `rule` in progress, if any.
    pub(crate) fn active_run(&self, rule: &str) -> Option<String> {
        self.inner.live.lock().get(rule).map(|l| l.run.clone())
    }

    /// Asks a run to stop: its plan stops and its queued imports are cancelled.
    pub(crate) fn cancel(&self, run: &str) -> bool {
        match self.inner.live.lock().values().find(|l| l.run == run) {
            Some(live) => {
                live.cancel.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// A dry run: what a run of `rule` would copy, keep, skip or prune right now, with
    /// byte estimates. Writes nothing.
    pub(crate) async fn plan(&self, rule: &Rule) -> Result<PlanStatus> {
        let auth = self.source_auth(rule).await.map_err(anyhow::Error::msg)?;
        self.plan_with(rule, auth).await
    }

    /// A dry run of `rule` with `auth` for its source (a rule not stored yet).
    pub(crate) async fn plan_with(
        &self,
        rule: &Rule,
        auth: Option<SourceAuth>,
    ) -> Result<PlanStatus> {
        let known = self.known_tags(&rule.project).await?;
        let target = self.target_authority()?;
        let request = rule.plan_request(&target, known, true);
        self.inner
            .tasks
            .plan(&rule.project, "plan", request, auth, |_| true)
            .await
    }

    fn target_authority(&self) -> Result<String> {
        self.inner
            .tasks
            .target_authority()
            .context("the host has no registry to sync into")
    }

    async fn known_tags(&self, project: &str) -> Result<Vec<KnownTag>> {
        let project = project.to_owned();
        let tags = self
            .db(move |store| store.db.imported_tags(&project))
            .await?;
        Ok(tags
            .into_iter()
            .map(|t| KnownTag {
                repository: t.repository,
                tag: t.tag,
                source_digest: t.source_digest,
                target_digest: t.digest,
            })
            .collect())
    }

    async fn record(&self, run: &Run, progress: &watch::Sender<Run>) {
        progress.send_replace(run.clone());
        self.store(run).await;
    }

    async fn store(&self, run: &Run) {
        let record = run.clone();
        if let Err(e) = self.db(move |store| store.update_sync_run(&record)).await {
            tracing::error!(run = %run.id, error = %e, "cannot record a sync run");
        }
    }

    async fn execute(
        &self,
        rule: &Rule,
        mut run: Run,
        progress: &watch::Sender<Run>,
        cancel: &AtomicBool,
    ) -> Run {
        tracing::info!(rule = %rule.name, project = %rule.project, run = %run.id,
            trigger = ?run.trigger, "sync run started");
        match self.plan_and_copy(rule, &mut run, progress, cancel).await {
            Ok(()) => {}
            Err(error) => run.error = Some(error),
        }
        run.count();
        run.phase = None;
        run.waiting_until = None;
        run.state = if cancel.load(Ordering::SeqCst) {
            RunState::Cancelled
        } else if run.error.is_some() || run.counts.failed > 0 {
            RunState::Failed
        } else {
            RunState::Succeeded
        };
        run.finished_at = Some(now_rfc3339());
        tracing::info!(rule = %rule.name, run = %run.id, state = run.state.as_str(),
            copied = run.counts.copied, unchanged = run.counts.unchanged,
            failed = run.counts.failed, upstream_requests = run.requests.upstream(),
            "sync run finished");
        // Stored but not yet published: the caller publishes it once the rule is free, so
        // whoever sees the run end may start the next one at once.
        self.store(&run).await;
        run
    }

    async fn plan_and_copy(
        &self,
        rule: &Rule,
        run: &mut Run,
        progress: &watch::Sender<Run>,
        cancel: &AtomicBool,
    ) -> Result<(), TaskError> {
        let auth = self.source_auth(rule).await.map_err(host_error)?;
        // Quota readings from before this run say nothing of now.
        let since_ms = now_ms();
        let status = self
            .plan_waiting_for_quota(rule, run, progress, cancel, &auth)
            .await?;
        run.items = status
            .items
            .iter()
            .map(|item| RunItem::of(item, rule.policy.overwrite))
            .collect();
        run.count();
        run.phase = Some("copying".into());
        self.record(run, progress).await;

        self.copy(rule, run, progress, cancel, &auth, since_ms)
            .await;
        if rule.prune.is_some() && !cancel.load(Ordering::SeqCst) {
            run.phase = Some("pruning".into());
            self.prune(run).await;
        }
        Ok(())
    }

    /// The plan, waiting (visibly) and trying again when the source refused it for quota.
    async fn plan_waiting_for_quota(
        &self,
        rule: &Rule,
        run: &mut Run,
        progress: &watch::Sender<Run>,
        cancel: &AtomicBool,
        auth: &Option<SourceAuth>,
    ) -> Result<PlanStatus, TaskError> {
        let target = self
            .target_authority()
            .map_err(|e| host_error(e.to_string()))?;
        let mut waits = 0;
        loop {
            run.state = RunState::Running;
            run.phase = Some("listing".into());
            self.record(run, progress).await;
            let known = self
                .known_tags(&rule.project)
                .await
                .map_err(|e| host_error(format!("{e:#}")))?;
            let request = rule.plan_request(&target, known, false);
            let mut last_phase = PlanPhase::Listing;
            let status = self
                .inner
                .tasks
                .plan(&rule.project, &run.id, request, auth.clone(), |status| {
                    if status.phase != last_phase {
                        last_phase = status.phase;
                        let mut live = run.clone();
                        live.phase = Some(phase_name(status.phase).into());
                        progress.send_replace(live);
                    }
                    !cancel.load(Ordering::SeqCst)
                })
                .await
                .map_err(|e| host_error(format!("{e:#}")))?;
            run.requests.add(&status.requests, status.target_requests);
            run.warnings.extend(status.warnings.iter().cloned());
            match (&status.phase, &status.error) {
                (PlanPhase::Done, _) => return Ok(status),
                (_, Some(error)) => {
                    let error = task_error(error);
                    if error.code == "rate_limited"
                        && waits < self.inner.settings.quota_retries
                        && !cancel.load(Ordering::SeqCst)
                    {
                        waits += 1;
                        let reason =
                            format!("the source refused requests for quota ({})", error.message);
                        let resume_at = self.inner.tasks.source_resume_at(&rule.source.registry);
                        self.wait_for_quota(run, progress, cancel, &reason, resume_at)
                            .await;
                        continue;
                    }
                    return Err(error);
                }
                _ => return Err(host_error("the plan stopped without an error".into())),
            }
        }
    }

    /// Waits `quota_wait`, or until `resume_at_ms` when the source asked for longer,
    /// showing the run as waiting until then.
    async fn wait_for_quota(
        &self,
        run: &mut Run,
        progress: &watch::Sender<Run>,
        cancel: &AtomicBool,
        reason: &str,
        resume_at_ms: Option<i64>,
    ) {
        let asked = resume_at_ms
            .and_then(|at| u64::try_from(at.saturating_sub(now_ms())).ok())
            .map(Duration::from_millis)
            .unwrap_or_default();
        let wait = self.inner.settings.quota_wait.max(asked);
        let until = now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        run.state = RunState::Waiting;
        run.waiting_until = Some(rfc3339_of_ms(until));
        run.warnings
            .push(format!("{reason}; waiting until {}", rfc3339_of_ms(until)));
        self.record(run, progress).await;
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline && !cancel.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(200).min(wait)).await;
        }
        run.state = RunState::Running;
        run.waiting_until = None;
    }

    /// How many more copies the source's quota allows before it falls to the floor set
    /// for its registry; None when no floor is set or the source has reported no quota
    /// since `since_ms`. A copy counts as one pull, as Docker Hub counts them (a pull is
    /// up to two manifest GETs; HEADs are free). Notes the lowest quota on the run.
    fn quota_headroom(&self, rule: &Rule, run: &mut Run, since_ms: i64) -> Option<usize> {
        let tasks = &self.inner.tasks;
        let quota = tasks.source_quota(&rule.source.registry, since_ms)?;
        run.quota = Some(quota.clone());
        let floor = tasks.registries().quota_floor(&rule.source.registry)?;
        Some(usize::try_from(quota.remaining.saturating_sub(floor)).unwrap_or(usize::MAX))
    }

    /// Why a run waits at the floor, for its warnings and its items' errors.
    fn at_the_floor(&self, rule: &Rule, run: &Run) -> String {
        let floor = self
            .inner
            .tasks
            .registries()
            .quota_floor(&rule.source.registry)
            .unwrap_or_default();
        let (remaining, limit) = run
            .quota
            .as_ref()
            .map_or((0, None), |q| (q.remaining, q.limit));
        let of = limit.map(|l| format!(" of {l}")).unwrap_or_default();
        format!(
            "{}'s quota is down to {remaining}{of} pulls, at the floor of {floor} set for it",
            rule.source.registry
        )
    }

    /// One import per item to copy, through the task machinery, in waves the source's
    /// quota allows: at the floor the run waits (visibly), then asks the source again with
    /// HEADs only, which cost no pulls, and goes on once the quota has come back.
    async fn copy(
        &self,
        rule: &Rule,
        run: &mut Run,
        progress: &watch::Sender<Run>,
        cancel: &AtomicBool,
        auth: &Option<SourceAuth>,
        mut since_ms: i64,
    ) {
        let mut waits = 0;
        loop {
            let pending: Vec<usize> = (0..run.items.len())
                .filter(|&i| {
                    run.items[i].outcome == Outcome::Copying && run.items[i].task_id.is_none()
                })
                .collect();
            let headroom = self.quota_headroom(rule, run, since_ms);
            if pending.is_empty() || cancel.load(Ordering::SeqCst) {
                return;
            }
            if headroom == Some(0) {
                let reason = self.at_the_floor(rule, run);
                if waits >= self.inner.settings.quota_retries {
                    for i in pending {
                        run.items[i].outcome = Outcome::Failed;
                        run.items[i].error = Some(TaskError {
                            code: "rate_limited".into(),
                            message: format!(
                                "not copied: {reason}, and it did not come back after {waits} \
                                 waits; the next run copies it"
                            ),
                        });
                    }
                    run.count();
                    self.record(run, progress).await;
                    return;
                }
                waits += 1;
                self.wait_for_quota(run, progress, cancel, &reason, None)
                    .await;
                // Only what the source says from now on counts: one that stops reporting
                // its quota is no longer held to it.
                since_ms = now_ms();
                if let Err(e) = self
                    .plan_waiting_for_quota(rule, run, progress, cancel, auth)
                    .await
                {
                    run.warnings
                        .push(format!("asking the source for its quota: {}", e.message));
                }
                run.phase = Some("copying".into());
                continue;
            }
            let wave: Vec<usize> = pending
                .into_iter()
                .take(headroom.unwrap_or(usize::MAX))
                .collect();
            self.copy_wave(rule, run, progress, cancel, auth, &wave)
                .await;
        }
    }

    /// Copies the items `wave` names, one import each; waits for all of them, and for
    /// the source when it refused them for quota.
    async fn copy_wave(
        &self,
        rule: &Rule,
        run: &mut Run,
        progress: &watch::Sender<Run>,
        cancel: &AtomicBool,
        auth: &Option<SourceAuth>,
        wave: &[usize],
    ) {
        for &i in wave {
            if cancel.load(Ordering::SeqCst) {
                continue;
            }
            if rule.policy.backup
                && let Err(e) = self.back_up(&mut run.items[i]).await
            {
                run.items[i].outcome = Outcome::Failed;
                run.items[i].error = Some(host_error(format!(
                    "the old image could not be kept before overwriting: {e:#}"
                )));
                continue;
            }
            match self.submit(rule, run, &run.items[i], auth.clone()).await {
                Ok(task) => run.items[i].task_id = Some(task),
                Err(e) => {
                    run.items[i].outcome = Outcome::Failed;
                    run.items[i].error = Some(host_error(format!("{e:#}")));
                }
            }
        }
        self.record(run, progress).await;
        let mut waits = 0;
        loop {
            let mut rate_limited = Vec::new();
            for i in 0..run.items.len() {
                let Some(task_id) = run.items[i].task_id.clone() else {
                    continue;
                };
                if run.items[i].outcome != Outcome::Copying {
                    continue;
                }
                let task = self.finished(&task_id, cancel).await;
                let item = &mut run.items[i];
                match task {
                    Some(task) if task.state == TaskState::Succeeded => {
                        item.outcome = Outcome::Copied;
                        item.bytes = task.bytes_total;
                    }
                    Some(task) => {
                        if task
                            .error
                            .as_ref()
                            .is_some_and(|e| e.code == "rate_limited")
                        {
                            rate_limited.push((i, task.clone()));
                        }
                        item.outcome = Outcome::Failed;
                        item.error = task.error.or_else(|| {
                            Some(host_error(format!(
                                "the import ended {}",
                                task.state.as_str()
                            )))
                        });
                    }
                    None => {
                        item.outcome = Outcome::Failed;
                        item.error = Some(host_error("the import's record is gone".into()));
                    }
                }
                run.count();
                self.record(run, progress).await;
            }
            if rate_limited.is_empty()
                || waits >= self.inner.settings.quota_retries
                || cancel.load(Ordering::SeqCst)
            {
                return;
            }
            waits += 1;
            let error = rate_limited[0].1.error.clone().expect("rate limited");
            let reason = format!("the source refused requests for quota ({})", error.message);
            let resume_at = self.inner.tasks.source_resume_at(&rule.source.registry);
            self.wait_for_quota(run, progress, cancel, &reason, resume_at)
                .await;
            run.phase = Some("copying".into());
            for (i, task) in rate_limited {
                match self.inner.tasks.retry(task, auth.clone()).await {
                    Ok(task) => {
                        run.items[i].outcome = Outcome::Copying;
                        run.items[i].error = None;
                        run.items[i].task_id = Some(task.id);
                    }
                    Err(e) => tracing::error!(error = %e, "cannot retry a sync import"),
                }
            }
            run.count();
            self.record(run, progress).await;
        }
    }

    async fn submit(
        &self,
        rule: &Rule,
        run: &Run,
        item: &RunItem,
        auth: Option<SourceAuth>,
    ) -> Result<String> {
        let source = item
            .source_reference
            .clone()
            .context("the plan gave no source for this item")?;
        let mut task = Task::queued(
            &rule.project,
            &source,
            source.clone(),
            item.target_reference.clone(),
            format!("sync rule {} (run {})", rule.name, run.id),
        );
        task.platforms.clone_from(&rule.platforms);
        task.authenticated = auth.is_some();
        Ok(match self.inner.tasks.submit(task, auth).await? {
            Submitted::New(task) | Submitted::Merged(task) => task.id,
            Submitted::Conflict { running, differs } => anyhow::bail!(
                "task {} imports this tag already with other {differs}; the next run copies \
                 it if it still differs",
                running.id
            ),
        })
    }

    /// The task once it has ended; cancels it when the run is cancelled.
    async fn finished(&self, id: &str, cancel: &AtomicBool) -> Option<Task> {
        loop {
            if cancel.load(Ordering::SeqCst) {
                self.inner.tasks.cancel(id);
            }
            let task = self.inner.tasks.current(id).await.ok().flatten()?;
            if task.state.is_finished() {
                return Some(task);
            }
            match self.inner.tasks.subscribe(id) {
                Some(mut rx) => {
                    let _ = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await;
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Keeps the image a tag holds under `<tag>-backup-<UTC time>` before it is
    /// overwritten; the backup is a tag on the same manifest, so it costs no storage.
    async fn back_up(&self, item: &mut RunItem) -> Result<()> {
        let (Some(tag), Some(_)) = (item.target_tag.clone(), item.target_digest.clone()) else {
            return Ok(());
        };
        let repository = item.target_repository.clone();
        let stamp = now_rfc3339().replace([':', '-'], "");
        let backup = format!("{tag}-backup-{}", stamp.trim_end_matches('Z'));
        let name = backup.clone();
        let kept = self
            .db(move |store| {
                let Some(record) = store.db.tagged_manifest(&repository, &tag)? else {
                    return Ok(false);
                };
                store.db.put_manifest(&record, &[], Some(&name))?;
                Ok(true)
            })
            .await?;
        if kept {
            item.backup_tag = Some(backup);
        }
        Ok(())
    }

    async fn prune(&self, run: &mut Run) {
        for item in run.items.iter_mut() {
            if item.outcome != Outcome::Pruned {
                continue;
            }
            let (repository, tag) = (item.target_repository.clone(), item.target_tag.clone());
            let Some(tag) = tag else { continue };
            if let Err(e) = self
                .db(move |store| store.db.delete_tag(&repository, &tag))
                .await
            {
                item.outcome = Outcome::Failed;
                item.error = Some(host_error(format!("the tag could not be removed: {e:#}")));
            }
        }
    }

    /// POSTs the run's summary to the rule's webhook, through the egress policy.
    async fn notify(&self, rule: &Rule, run: &Run) {
        let Some(webhook) = &rule.webhook else { return };
        if webhook.on == WebhookOn::Failures && run.state != RunState::Failed {
            return;
        }
        let summary = serde_json::json!({
            "event": "sync_run_finished",
            "project": rule.project,
            "rule": {"id": rule.id, "name": rule.name},
            "run": {
                "id": run.id, "state": run.state, "trigger": run.trigger,
                "started_at": run.started_at, "finished_at": run.finished_at,
                "counts": run.counts, "bytes": run.bytes,
                "upstream_requests": run.requests.upstream(), "error": run.error,
            },
        });
        let result = match Url::parse(&webhook.url) {
            Ok(url) => hoist_imports::boundary::fetch::send(
                &self.inner.network,
                http::Method::POST,
                &url,
                &[(http::header::CONTENT_TYPE, "application/json".into())],
                None,
                serde_json::to_vec(&summary).expect("json").into(),
                64 << 10,
            )
            .await
            .and_then(|r| {
                anyhow::ensure!(r.status.is_success(), "it answered {}", r.status);
                Ok(())
            }),
            Err(e) => Err(anyhow::anyhow!(e)),
        };
        if let Err(e) = result {
            tracing::warn!(rule = %rule.name, run = %run.id, error = %e,
                "the sync webhook was not delivered");
        }
    }

    /// Starts the scheduler, which looks at the rules every tick.
    pub(crate) fn start_scheduler(&self) {
        if !self.inner.settings.scheduler {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.tick(now_ms()).await {
                    tracing::error!(error = %e, "the sync scheduler failed a tick");
                }
                tokio::time::sleep(this.inner.settings.tick).await;
            }
        });
    }

    /// One look at every enabled rule at `now`: starts what is due (once however many
    /// slots passed), records a slot that came while the last run was going as skipped,
    /// and notes each rule's next due time.
    pub(crate) async fn tick(&self, now: i64) -> Result<()> {
        let rules = self.db(|store| store.enabled_rules()).await?;
        for (rule, next_due) in rules {
            let Ok(schedule) = Schedule::try_from(rule.schedule.clone()) else {
                continue;
            };
            if matches!(schedule, Schedule::Manual) {
                continue;
            }
            let mut rng = rand_unit;
            let Some(next_due) = next_due else {
                // A new or changed rule: its first slot after now.
                let first = schedule.next_after(now, &mut rng);
                let id = rule.id.clone();
                self.db(move |store| store.advance_due(&id, None, first))
                    .await?;
                continue;
            };
            let active = self.active_run(&rule.id).is_some();
            let catch_up = self.inner.settings.catch_up && rule.policy.catch_up;
            let due = schedule.due_runs(next_due, now, catch_up, active, &mut rng);
            if due.decision == Decision::NotDue {
                continue;
            }
            let id = rule.id.clone();
            let moved = self
                .db(move |store| store.advance_due(&id, Some(next_due), due.next_due_ms))
                .await?;
            if !moved {
                // Another replica took this slot.
                continue;
            }
            let late = now.saturating_sub(next_due) > super::schedule::ON_TIME_MS;
            match due.decision {
                Decision::Run | Decision::SkippedActive => {
                    let trigger = if late {
                        Trigger::CatchUp
                    } else {
                        Trigger::Schedule
                    };
                    self.start(rule, trigger).await?;
                }
                Decision::SkippedMissed => {
                    tracing::info!(rule = %rule.name, "a missed sync slot was skipped (no catch-up)");
                }
                Decision::NotDue => {}
            }
        }
        Ok(())
    }
}

fn rand_unit() -> f64 {
    let bytes = hoist_common::random::bytes::<8>();
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

fn phase_name(phase: PlanPhase) -> &'static str {
    match phase {
        PlanPhase::Listing => "listing",
        PlanPhase::Comparing => "comparing",
        PlanPhase::Done => "copying",
        PlanPhase::Failed | PlanPhase::Cancelled => "ending",
    }
}

fn new_run(rule: &Rule, trigger: Trigger) -> Run {
    Run {
        id: hoist_common::random::id(),
        rule: rule.id.clone(),
        project: rule.project.clone(),
        rule_name: rule.name.clone(),
        trigger,
        state: RunState::Running,
        phase: Some("listing".into()),
        started_at: now_rfc3339(),
        finished_at: None,
        waiting_until: None,
        items: Vec::new(),
        counts: Default::default(),
        bytes: 0,
        requests: Requests::default(),
        error: None,
        warnings: Vec::new(),
        quota: None,
    }
}
