//! Import tasks: kept in the metadata database, run by a bounded pool of workers with a
//! limit per source registry, merged when the same import is asked for twice, and picked
//! up again after a restart.

pub mod model;

use crate::boundary::credentials::{HostCredential, Secret};
use crate::boundary::own_registry::{InternalGrant, OwnRegistryRoute};
use crate::boundary::pacing::Quota;
use crate::contract::{
    self, ImportRequest, Options, Phase, PlanStatus, RegistryEndpoints, SyncRequest,
};
use crate::runtime::{ImportAccess, PluginRuntime};
use crate::sealed::SecretBox;
use crate::settings::RegistrySettings;
use crate::shared_blobs::{BlobClaims, BlobIndex};
use hoist_common::clock::now_rfc3339;
use model::{Task, TaskError, TaskState, host_error, platforms_of};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// How often a running task's progress is written to the database. The live view (the
/// API and its event stream) is fed on every report; the database only needs enough to
/// show progress after a restart.
const PERSIST_EVERY: Duration = Duration::from_secs(1);
/// Times one task waits for its source's quota before it fails as rate-limited: a source
/// that keeps refusing after that many of its own waits needs a person.
const MAX_QUOTA_WAITS: u32 = 3;

/// Where tasks are kept: the host's metadata database, SQLite or PostgreSQL. Replicas
/// that share one share its tasks through leases (see [`RunnerConfig::lease`]).
pub trait TaskStore: Send + Sync + 'static {
    /// Stores a new task, with its sealed source credentials if any.
    fn insert(&self, task: &Task, sealed_credentials: Option<&[u8]>) -> anyhow::Result<()>;
    fn update(&self, task: &Task) -> anyhow::Result<()>;
    fn get(&self, id: &str) -> anyhow::Result<Option<Task>>;
    /// A project's tasks, newest first, optionally in one state.
    fn list(
        &self,
        project: &str,
        state: Option<TaskState>,
        limit: u32,
        offset: u32,
    ) -> anyhow::Result<Vec<Task>>;
    /// A queued or running task with this source and target.
    fn find_active(&self, source_canonical: &str, target: &str) -> anyhow::Result<Option<Task>>;
    fn sealed_credentials(&self, id: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Replaces a task's sealed credentials.
    fn set_credentials(&self, id: &str, sealed: &[u8]) -> anyhow::Result<()>;
    fn forget_credentials(&self, id: &str) -> anyhow::Result<()>;
    /// Every task that was queued or running when the host stopped, oldest first.
    fn unfinished(&self) -> anyhow::Result<Vec<Task>>;

    // ---- leases, for replicas sharing the store ----

    /// Takes an unfinished task for `owner` until `until_ms`, unless another owner's lease
    /// on it still runs at `now_ms`; whether it was taken. Atomic: of replicas racing for
    /// one task, one wins.
    fn claim(&self, id: &str, owner: &str, now_ms: i64, until_ms: i64) -> anyhow::Result<bool>;
    /// Extends `owner`'s leases on the tasks `ids` (those it runs) to `until_ms`; returns
    /// those of them whose cancel was asked for.
    fn renew(&self, owner: &str, ids: &[String], until_ms: i64) -> anyhow::Result<Vec<String>>;
    /// Drops any lease on a finished task, before it is queued again.
    fn release(&self, id: &str) -> anyhow::Result<()>;
    /// Unfinished tasks that no lease holds at `now_ms` (their replica stopped), oldest
    /// first.
    fn orphaned(&self, now_ms: i64) -> anyhow::Result<Vec<Task>>;
    /// Asks whichever replica runs the task to cancel it; false when it has finished.
    fn request_cancel(&self, id: &str) -> anyhow::Result<bool>;
    /// The owner of the lease on each unfinished task that has one.
    fn lease_owners(&self) -> anyhow::Result<HashMap<String, String>>;
}

/// Source credentials as an import request carries them.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SourceAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SourceAuth({}, …)", self.username)
    }
}

#[derive(Clone)]
pub struct RunnerConfig {
    pub workers: usize,
    pub per_registry: usize,
    pub registries: RegistrySettings,
    /// Where imports write when it is not the host's own registry.
    pub target: Option<ExternalTarget>,
    /// The longest `Retry-After` an import waits for inside the plugin; longer ones leave
    /// the task `waiting`.
    pub max_retry_wait: Duration,
    /// With a store shared by several replicas: how long a task stays with the replica
    /// that runs it without a renewal (renewed every third of it). A task whose lease
    /// ran out (its replica died) is taken over by another replica, which starts it
    /// again, skipping the blobs already stored. None: this host is alone with its store.
    pub lease: Option<Duration>,
    /// This replica's name in leases (and in the upload sessions its imports open).
    pub replica: String,
}

/// An external registry that imports write to, with the account the host pushes as.
#[derive(Clone, Debug)]
pub struct ExternalTarget {
    /// `host[:port]`, as task targets name it.
    pub authority: String,
    pub plain_http: bool,
    /// Added at the wasi:http boundary like a source's, never handed to the plugin.
    pub credential: Option<HostCredential>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            per_registry: 2,
            registries: RegistrySettings::default(),
            target: None,
            max_retry_wait: Duration::from_secs(120),
            lease: None,
            replica: hoist_common::random::id(),
        }
    }
}

/// The host's own registry, where tasks write unless an external target is configured.
#[derive(Clone)]
pub struct OwnRegistry {
    /// The authority clients pull from, which task targets name.
    pub authority: String,
    /// The registry's routes (`/v2/…`), served in process.
    pub router: axum::Router,
    /// Which repositories hold which blobs.
    pub blobs: Arc<dyn BlobIndex>,
}

struct Live {
    progress: watch::Sender<Task>,
    cancel: Arc<AtomicBool>,
}

#[derive(Clone)]
pub struct TaskRunner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn TaskStore>,
    plugin: PluginRuntime,
    secrets: SecretBox,
    config: RunnerConfig,
    own: Option<OwnRegistry>,
    workers: Arc<Semaphore>,
    per_registry: Mutex<HashMap<String, Arc<Semaphore>>>,
    live: Mutex<HashMap<String, Live>>,
    claims: Arc<BlobClaims>,
}

/// What submitting an import gave.
pub enum Submitted {
    New(Task),
    /// The same import was already queued or running; this is it.
    Merged(Task),
    /// An import of the same source into the same target is queued or running with other
    /// options (`differs`: "platforms", "referrer_options", "max_bytes_per_second" or
    /// "credentials"). Merging would drop this
    /// request's options, and running both would race on the tag: the caller is refused.
    Conflict {
        running: Task,
        differs: &'static str,
    },
}

impl TaskRunner {
    /// A runner whose tasks write to `own` (the host's registry), unless the
    /// configuration names an external target.
    pub fn new(
        store: Arc<dyn TaskStore>,
        plugin: PluginRuntime,
        secrets: SecretBox,
        config: RunnerConfig,
        own: Option<OwnRegistry>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                plugin,
                secrets,
                workers: Arc::new(Semaphore::new(config.workers.max(1))),
                config,
                own,
                per_registry: Mutex::default(),
                live: Mutex::default(),
                claims: Arc::default(),
            }),
        }
    }

    /// Runs `f` against the task store on a blocking thread: the store is a database,
    /// and the async workers serve requests.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn TaskStore) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref())).await?
    }

    /// Queues `task`, unless the same import is already queued or running.
    pub async fn submit(&self, task: Task, auth: Option<SourceAuth>) -> anyhow::Result<Submitted> {
        let auth_plain = auth.map(|a| serde_json::to_vec(&a).expect("plain strings"));
        let sealed = auth_plain.as_ref().map(|a| self.inner.secrets.seal(a));
        let new = task.clone();
        let existing = self
            .db(move |store| {
                if let Some(existing) = store.find_active(&new.source_canonical, &new.target)? {
                    return Ok(Some(existing));
                }
                store.insert(&new, sealed.as_deref())?;
                Ok(None)
            })
            .await?;
        if existing.is_none() {
            self.take(&task.id).await?;
        }
        if let Some(existing) = existing {
            let current = self.current(&existing.id).await?.unwrap_or(existing);
            if let Some(differs) = self.differs(&current, &task, auth_plain.as_deref()).await? {
                return Ok(Submitted::Conflict {
                    running: current,
                    differs,
                });
            }
            return Ok(Submitted::Merged(current));
        }
        self.spawn(task.clone());
        Ok(Submitted::New(task))
    }

    /// What makes `wanted` another import than `running` of the same source and target:
    /// other platforms, referrer options or bandwidth cap, or other source credentials
    /// (compared opened, in memory only).
    async fn differs(
        &self,
        running: &Task,
        wanted: &Task,
        auth: Option<&[u8]>,
    ) -> anyhow::Result<Option<&'static str>> {
        let set = |t: &Task| {
            t.platforms
                .iter()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
        };
        if set(running) != set(wanted) {
            return Ok(Some("platforms"));
        }
        if running.referrer_options != wanted.referrer_options {
            return Ok(Some("referrer_options"));
        }
        if running.max_bytes_per_second != wanted.max_bytes_per_second {
            return Ok(Some("max_bytes_per_second"));
        }
        let id = running.id.clone();
        let sealed = self.db(move |store| store.sealed_credentials(&id)).await?;
        let theirs = sealed.and_then(|s| self.inner.secrets.open(&s));
        Ok((theirs.as_deref() != auth).then_some("credentials"))
    }

    /// Starts every task the last run left queued or running. Running ones start again
    /// from the top; blobs they already copied are found on the target and skipped. With
    /// a shared store, only the tasks no replica holds, and from then on those of any
    /// replica that stops.
    pub async fn recover(&self) -> anyhow::Result<usize> {
        if let Some(lease) = self.inner.config.lease {
            // Replicas share the tasks: this one takes over those no lease holds, now
            // and whenever another replica stops.
            let taken = self.renew_and_take_over(lease).await?;
            self.keep_leases(lease);
            return Ok(taken);
        }
        let tasks = self
            .db(|store| {
                let mut tasks = store.unfinished()?;
                for task in &mut tasks {
                    if task.state == TaskState::Running {
                        task.state = TaskState::Queued;
                        task.warnings
                            .push("the host restarted during this import; it continues".into());
                        store.update(task)?;
                    }
                }
                Ok(tasks)
            })
            .await?;
        let n = tasks.len();
        for task in tasks {
            self.spawn(task);
        }
        Ok(n)
    }

    /// The task as it is now: live while it runs, from the database otherwise.
    pub async fn current(&self, id: &str) -> anyhow::Result<Option<Task>> {
        if let Some(live) = self.inner.live.lock().get(id) {
            return Ok(Some(live.progress.borrow().clone()));
        }
        let id = id.to_owned();
        self.db(move |store| store.get(&id)).await
    }

    /// A project's tasks, newest first, optionally in one state, each as it is now.
    pub async fn list(
        &self,
        project: &str,
        state: Option<TaskState>,
        limit: u32,
        offset: u32,
    ) -> anyhow::Result<Vec<Task>> {
        let project = project.to_owned();
        let tasks = self
            .db(move |store| store.list(&project, state, limit, offset))
            .await?;
        let live = self.inner.live.lock();
        Ok(tasks
            .into_iter()
            .map(|t| match live.get(&t.id) {
                Some(l) => l.progress.borrow().clone(),
                None => t,
            })
            .collect())
    }

    /// Follows a task's progress; None when it is not running or queued in this process.
    pub fn subscribe(&self, id: &str) -> Option<watch::Receiver<Task>> {
        self.inner
            .live
            .lock()
            .get(id)
            .map(|l| l.progress.subscribe())
    }

    /// Asks a queued or running task to stop. Returns false when it had finished.
    pub fn cancel(&self, id: &str) -> bool {
        match self.inner.live.lock().get(id) {
            Some(live) => {
                live.cancel.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Queues a failed or cancelled task again, with new credentials when given.
    pub async fn retry(&self, mut task: Task, auth: Option<SourceAuth>) -> anyhow::Result<Task> {
        let sealed = auth.map(|auth| {
            self.inner
                .secrets
                .seal(&serde_json::to_vec(&auth).expect("plain strings"))
        });
        task.authenticated |= sealed.is_some();
        task.state = TaskState::Queued;
        Self::reset(&mut task);
        let queued = task.clone();
        self.db(move |store| {
            if let Some(sealed) = sealed {
                store.set_credentials(&queued.id, &sealed)?;
            }
            // A lease left from the run that finished must not keep the retry from this
            // replica, which runs it now.
            store.release(&queued.id)?;
            store.update(&queued)
        })
        .await?;
        self.take(&task.id).await?;
        self.spawn(task.clone());
        Ok(task)
    }

    /// Takes the lease on a task this replica is about to run, when replicas share the
    /// store; whether it is this replica's to run.
    async fn take(&self, id: &str) -> anyhow::Result<bool> {
        let Some(lease) = self.inner.config.lease else {
            return Ok(true);
        };
        let (id, owner) = (id.to_owned(), self.inner.config.replica.clone());
        let now = hoist_common::clock::now_ms();
        let until = now + lease.as_millis() as i64;
        self.db(move |store| store.claim(&id, &owner, now, until))
            .await
    }

    /// Keeps this replica's leases and takes over the tasks of replicas that stopped,
    /// for as long as the host runs. Only with a shared store.
    fn keep_leases(&self, lease: Duration) {
        let runner = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(lease / 3);
            loop {
                ticks.tick().await;
                if let Err(e) = runner.renew_and_take_over(lease).await {
                    tracing::warn!(error = %e, "cannot renew the import leases");
                }
            }
        });
    }

    /// Renews this replica's leases, passes on the cancels asked of other replicas, and
    /// starts the tasks no lease holds; how many it took.
    async fn renew_and_take_over(&self, lease: Duration) -> anyhow::Result<usize> {
        let owner = self.inner.config.replica.clone();
        let now = hoist_common::clock::now_ms();
        let until = now + lease.as_millis() as i64;
        let running: Vec<String> = self.inner.live.lock().keys().cloned().collect();
        let cancelled = self
            .db(move |store| store.renew(&owner, &running, until))
            .await?;
        for id in cancelled {
            self.cancel(&id);
        }
        let orphans = self.db(move |store| store.orphaned(now)).await?;
        let mut taken = 0;
        for mut task in orphans {
            if self.inner.live.lock().contains_key(&task.id) || !self.take(&task.id).await? {
                continue;
            }
            tracing::info!(task = %task.id, "taking over an import whose replica stopped");
            if task.state == TaskState::Running {
                task.state = TaskState::Queued;
                task.warnings
                    .push("the replica running this import stopped; another continues it".into());
                self.record(&task, "a task taken over").await;
            }
            self.spawn(task);
            taken += 1;
        }
        Ok(taken)
    }

    /// Who holds the lease on each unfinished task, when replicas share the store.
    pub async fn lease_owners(&self) -> anyhow::Result<Option<HashMap<String, String>>> {
        if self.inner.config.lease.is_none() {
            return Ok(None);
        }
        self.db(|store| store.lease_owners().map(Some)).await
    }

    /// Asks a queued or running task to stop, on whichever replica runs it. Returns
    /// false when it had finished.
    pub async fn cancel_anywhere(&self, id: &str) -> anyhow::Result<bool> {
        if self.cancel(id) {
            return Ok(true);
        }
        if self.inner.config.lease.is_none() {
            return Ok(false);
        }
        let id = id.to_owned();
        self.db(move |store| store.request_cancel(&id)).await
    }

    /// Follows a task's progress: live when this replica runs it; from the database,
    /// where its replica writes it every second, when another does. None when it has
    /// finished or is unknown.
    pub async fn follow(&self, id: &str) -> anyhow::Result<Option<watch::Receiver<Task>>> {
        if let Some(rx) = self.subscribe(id) {
            return Ok(Some(rx));
        }
        if self.inner.config.lease.is_none() {
            return Ok(None);
        }
        let Some(task) = self.current(id).await? else {
            return Ok(None);
        };
        if task.state.is_finished() {
            return Ok(None);
        }
        let (tx, rx) = watch::channel(task);
        let (runner, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PERSIST_EVERY / 2);
            while !tx.is_closed() {
                ticks.tick().await;
                let Ok(Some(task)) = runner.current(&id).await else {
                    break;
                };
                let finished = task.state.is_finished();
                tx.send_if_modified(|old| {
                    let changed = *old != task;
                    *old = task;
                    changed
                });
                if finished {
                    break;
                }
            }
        });
        Ok(Some(rx))
    }

    fn reset(task: &mut Task) {
        task.phase = None;
        task.error = None;
        task.finished_at = None;
        task.bytes_done = 0;
        task.blobs_done = 0;
        task.blobs.clear();
        task.referrers.clear();
        task.warnings.clear();
    }

    fn spawn(&self, task: Task) {
        let (progress, _) = watch::channel(task.clone());
        let cancel = Arc::new(AtomicBool::new(false));
        self.inner.live.lock().insert(
            task.id.clone(),
            Live {
                progress: progress.clone(),
                cancel: cancel.clone(),
            },
        );
        let runner = self.clone();
        tokio::spawn(async move {
            let id = task.id.clone();
            runner.run(task, progress, cancel).await;
            runner.inner.live.lock().remove(&id);
        });
    }

    fn registry_limit(&self, registry: &str) -> Arc<Semaphore> {
        self.inner
            .per_registry
            .lock()
            .entry(registry.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.config.per_registry.max(1))))
            .clone()
    }

    async fn run(&self, mut task: Task, progress: watch::Sender<Task>, cancel: Arc<AtomicBool>) {
        let registry = registry_of(&task.source_canonical).to_owned();
        let mut waits = 0;
        loop {
            // A task restored while waiting waits out the rest of its time first.
            if task.state == TaskState::Waiting && !self.wait(&mut task, &progress, &cancel).await {
                break;
            }
            {
                let _worker = self.inner.workers.clone().acquire_owned().await;
                let _registry = self.registry_limit(&registry).acquire_owned().await;
                if cancel.load(Ordering::SeqCst) {
                    task.state = TaskState::Cancelled;
                    task.error = Some(TaskError {
                        code: "cancelled".into(),
                        message: "the import was cancelled before it started".into(),
                    });
                    break;
                }
                self.attempt(&mut task, &progress, &cancel, &registry).await;
            }
            // A source that asked, with a 429, to be left alone for longer than the
            // plugin waits by itself: the task waits in the open, holding no worker,
            // and runs again then (skipping the blobs it already copied).
            let refused_for_quota = task.state == TaskState::Failed
                && task
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == "rate_limited");
            let until = self
                .source_resume_at(&registry)
                .filter(|t| *t > hoist_common::clock::now_ms());
            match until {
                Some(until) if refused_for_quota && waits < MAX_QUOTA_WAITS => {
                    waits += 1;
                    task.state = TaskState::Waiting;
                    let at = hoist_common::clock::rfc3339_of_ms(until);
                    task.warnings.push(format!(
                        "{registry} refused the import for quota until {at}; it runs again then"
                    ));
                    task.waiting_until = Some(at);
                    self.record(&task, "a wait for the source's quota").await;
                    progress.send_replace(task.clone());
                }
                _ => break,
            }
        }
        task.waiting_until = None;
        task.finished_at = Some(now_rfc3339());
        tracing::info!(
            task = %task.id,
            state = task.state.as_str(),
            source = %task.source_canonical,
            target = %task.target,
            "import finished"
        );
        self.finish(&task, &progress).await;
    }

    /// Waits until the task's `waiting_until`, or until it is cancelled (then false, with
    /// the task cancelled).
    async fn wait(
        &self,
        task: &mut Task,
        progress: &watch::Sender<Task>,
        cancel: &AtomicBool,
    ) -> bool {
        let until = task
            .waiting_until
            .as_deref()
            .and_then(hoist_common::clock::ms_of_rfc3339)
            .unwrap_or(0);
        loop {
            if cancel.load(Ordering::SeqCst) {
                task.state = TaskState::Cancelled;
                task.error = Some(TaskError {
                    code: "cancelled".into(),
                    message: "the import was cancelled while it waited for the source's quota"
                        .into(),
                });
                return false;
            }
            let left = until - hoist_common::clock::now_ms();
            if left <= 0 {
                break;
            }
            // Short naps, so that a cancel is seen at once.
            tokio::time::sleep(Duration::from_millis(left.clamp(1, 250) as u64)).await;
        }
        task.waiting_until = None;
        progress.send_replace(task.clone());
        true
    }

    /// Runs the import once, leaving the task succeeded, failed or cancelled.
    async fn attempt(
        &self,
        task: &mut Task,
        progress: &watch::Sender<Task>,
        cancel: &AtomicBool,
        registry: &str,
    ) {
        task.state = TaskState::Running;
        task.error = None;
        task.waiting_until = None;
        task.attempts += 1;
        task.started_at = Some(now_rfc3339());
        self.record(task, "a task start").await;
        progress.send_replace(task.clone());

        // What the host noted (a restart) stays beside what the plugin reports.
        let host_notes = task.warnings.clone();
        let id = task.id.clone();
        let sealed = if task.authenticated {
            self.db(move |store| store.sealed_credentials(&id))
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "cannot read a task's sealed credentials");
                    None
                })
        } else {
            None
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let persister = tokio::spawn(self.clone().persist(progress.subscribe(), stopped));
        let started_ms = hoist_common::clock::now_ms();
        let outcome = match self.request_and_access(task, sealed) {
            Ok((request, access)) => {
                let result = self
                    .inner
                    .plugin
                    .import_with(&request, access, |status| {
                        task.apply(status);
                        task.warnings.splice(0..0, host_notes.iter().cloned());
                        task.quota = self
                            .source_quota(registry, started_ms)
                            .or(task.quota.take());
                        progress.send_replace(task.clone());
                        !cancel.load(Ordering::SeqCst)
                    })
                    .await;
                result.map_err(|e| format!("{e:#}"))
            }
            Err(message) => Err(message),
        };
        // The last progress write ends before the final record, which it must not undo.
        let _ = stop.send(());
        let _ = persister.await;
        match outcome {
            Ok(status) => {
                task.apply(&status);
                task.warnings.splice(0..0, host_notes.iter().cloned());
                task.quota = self
                    .source_quota(registry, started_ms)
                    .or(task.quota.take());
                task.state = match status.phase {
                    Phase::Done => TaskState::Succeeded,
                    Phase::Cancelled => TaskState::Cancelled,
                    _ => TaskState::Failed,
                };
            }
            Err(message) => {
                task.state = TaskState::Failed;
                task.error = Some(host_error(message));
            }
        }
    }

    /// Writes a running task's progress at most every [`PERSIST_EVERY`], off the import's
    /// own loop, until `stop`.
    async fn persist(
        self,
        mut progress: watch::Receiver<Task>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        loop {
            tokio::select! {
                changed = progress.changed() => if changed.is_err() { return },
                _ = &mut stop => return,
            }
            let task = progress.borrow_and_update().clone();
            self.record(&task, "progress").await;
            tokio::select! {
                () = tokio::time::sleep(PERSIST_EVERY) => {}
                _ = &mut stop => return,
            }
        }
    }

    /// Writes the task's record; a failure is logged (`what` says which write), since the
    /// import itself goes on.
    async fn record(&self, task: &Task, what: &'static str) {
        let record = task.clone();
        if let Err(e) = self.db(move |store| store.update(&record)).await {
            tracing::error!(task = %task.id, error = %e, "cannot record {what}");
        }
    }

    async fn finish(&self, task: &Task, progress: &watch::Sender<Task>) {
        self.record(task, "a finished task").await;
        // A failed task keeps its credentials for a retry; the others need them no more.
        if task.state != TaskState::Failed {
            let id = task.id.clone();
            if let Err(e) = self.db(move |store| store.forget_credentials(&id)).await {
                tracing::error!(task = %task.id, error = %e, "cannot delete a task's credentials");
            }
        }
        progress.send_replace(task.clone());
    }

    /// The plugin request for `task` and what the host lends it.
    fn request_and_access(
        &self,
        task: &Task,
        sealed: Option<Vec<u8>>,
    ) -> Result<(ImportRequest, ImportAccess), String> {
        let auth = if task.authenticated {
            let sealed = sealed
                .ok_or("the source credentials of this task are gone; retry it with credentials")?;
            let plain = self.inner.secrets.open(&sealed).ok_or(
                "the source credentials cannot be opened (the secrets key changed); retry \
                 the task with credentials",
            )?;
            Some(serde_json::from_slice::<SourceAuth>(&plain).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let registry = registry_of(&task.source_canonical);
        let grant = InternalGrant {
            project: task.project.clone(),
            task: task.id.clone(),
        };
        let (mut options, access) = self.options_and_access(registry, auth, grant);
        options.referrers = task.referrer_options.to_plugin();
        options.max_bytes_per_second = task
            .max_bytes_per_second
            .or(self.inner.config.registries.max_bytes_per_second(registry))
            .unwrap_or(0);
        options.max_retry_wait_ms =
            u32::try_from(self.inner.config.max_retry_wait.as_millis()).unwrap_or(u32::MAX);
        let request = ImportRequest {
            source: task.source_canonical.clone(),
            target: task.target.clone(),
            platforms: platforms_of(&task.platforms)?,
            options,
            credentials: Vec::new(),
        };
        Ok((request, access))
    }

    /// The options every plugin call of this host carries (endpoints, plain-HTTP
    /// registries, which credentials the boundary adds) and what the host lends it: the
    /// source credentials for `registry`, the target's, and the route to its own
    /// registry under `grant`.
    fn options_and_access(
        &self,
        registry: &str,
        auth: Option<SourceAuth>,
        grant: InternalGrant,
    ) -> (Options, ImportAccess) {
        let settings = &self.inner.config.registries;
        let mut credentials = Vec::new();
        // The registries whose credentials are added at the boundary, so that the plugin
        // reads a 401 from them as refused credentials.
        let mut host_credentials = Vec::new();
        if let Some(auth) = auth {
            credentials.push(HostCredential {
                endpoints: settings.endpoints(registry),
                username: auth.username,
                password: Secret::new(auth.password),
            });
            host_credentials.push(registry.to_owned());
        }
        let mut insecure = settings.insecure();
        let external = self.inner.config.target.as_ref();
        if let Some(target) = external {
            if target.plain_http {
                insecure.push(target.authority.clone());
            }
            if let Some(credential) = &target.credential {
                credentials.push(credential.clone());
                host_credentials.push(target.authority.clone());
            }
        }
        let own_registry = self
            .inner
            .own
            .clone()
            .filter(|_| external.is_none())
            .map(|own| {
                // In-process requests need no TLS; the plugin talks plain HTTP to it.
                insecure.push(own.authority.clone());
                OwnRegistryRoute {
                    authority: own.authority,
                    router: own.router,
                    grant,
                    claims: self.inner.claims.clone(),
                    index: own.blobs,
                }
            });
        let options = Options {
            endpoints: settings
                .plugin_endpoints()
                .into_iter()
                .map(|(registry, endpoints)| RegistryEndpoints {
                    registry,
                    endpoints,
                })
                .collect(),
            insecure_registries: insecure,
            host_credentials,
            ..contract::default_options()
        };
        (
            options,
            ImportAccess {
                credentials,
                own_registry,
            },
        )
    }

    /// The authority imports write to: the external target when one is configured,
    /// else the host's own registry.
    pub fn target_authority(&self) -> Option<String> {
        match &self.inner.config.target {
            Some(target) => Some(target.authority.clone()),
            None => self.inner.own.as_ref().map(|own| own.authority.clone()),
        }
    }

    /// Plans a sync of `request` (its options are filled here, as for an import) for
    /// `project`, with `auth` for the source, calling `on_status` after every slice; the
    /// plan stops when it returns false. `run` names the run in the target's audit trail.
    pub async fn plan(
        &self,
        project: &str,
        run: &str,
        mut request: SyncRequest,
        auth: Option<SourceAuth>,
        on_status: impl FnMut(&PlanStatus) -> bool,
    ) -> anyhow::Result<PlanStatus> {
        let grant = InternalGrant {
            project: project.to_owned(),
            task: run.to_owned(),
        };
        let (options, access) = self.options_and_access(&request.registry, auth, grant);
        request.options = options;
        request.credentials = Vec::new();
        self.inner.plugin.plan(&request, access, on_status).await
    }

    /// How sources are reached: their endpoints, ceilings and quota floors.
    pub fn registries(&self) -> &RegistrySettings {
        &self.inner.config.registries
    }

    /// The lowest quota an endpoint of `registry` reported since `since_ms`.
    pub fn source_quota(&self, registry: &str, since_ms: i64) -> Option<Quota> {
        let pacing = self.inner.plugin.pacing();
        self.inner
            .config
            .registries
            .endpoints(registry)
            .iter()
            .filter_map(|e| pacing.quota(&e.authority))
            .filter(|q| q.seen_ms >= since_ms)
            .min_by_key(|q| q.remaining)
    }

    /// The latest time an endpoint of `registry` asked, with a 429's `Retry-After`, to
    /// be left alone until.
    pub fn source_resume_at(&self, registry: &str) -> Option<i64> {
        let pacing = self.inner.plugin.pacing();
        self.inner
            .config
            .registries
            .endpoints(registry)
            .iter()
            .filter_map(|e| pacing.resume_at_ms(&e.authority))
            .max()
    }
}

/// The registry part of a canonical reference.
pub(crate) fn registry_of(canonical: &str) -> &str {
    canonical.split('/').next().unwrap_or(canonical)
}
