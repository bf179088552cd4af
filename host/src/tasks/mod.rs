//! Import tasks: kept in the metadata database, run by a bounded pool of workers with a
//! limit per source registry, merged when the same import is asked for twice, and picked
//! up again after a restart.

pub mod model;

use crate::auth::InternalGrant;
use crate::outbound::shared_blobs::{BlobClaims, BlobIndex};
use crate::outbound::{HostCredential, Internal, Secret, endpoints_of};
use crate::plugin::{ImportAccess, ImportRequest, Options, PluginRuntime, RegistryEndpoints};
use crate::secrets::SecretBox;
use model::{Task, TaskError, TaskState, host_error, platforms_of};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// How often a running task's progress is written to the database. The live view (the
/// API and its event stream) is fed on every report; the database only needs enough to
/// show progress after a restart.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Where tasks are kept. The SQLite metadata store implements it; so can PostgreSQL,
/// whose `SELECT … FOR UPDATE SKIP LOCKED` would let replicas share the queue.
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

/// How imports reach registries, from the configuration.
#[derive(Clone, Default)]
pub struct RegistrySettings {
    /// Mirrors per registry name (`docker.io` → `http://127.0.0.1:5001`).
    pub mirrors: HashMap<String, Vec<String>>,
    /// Registries reached over plain HTTP.
    pub insecure: HashSet<String>,
}

#[derive(Clone)]
pub struct RunnerConfig {
    pub workers: usize,
    pub per_registry: usize,
    pub registries: RegistrySettings,
    /// Where imports write when it is not the host's own registry.
    pub target: Option<ExternalTarget>,
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
        }
    }
}

/// The host's own registry, where tasks write.
#[derive(Clone)]
pub struct OwnRegistry {
    /// The authority clients pull from, which task targets name.
    pub authority: String,
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
    own: Mutex<Option<OwnRegistry>>,
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
}

impl TaskRunner {
    pub fn new(
        store: Arc<dyn TaskStore>,
        plugin: PluginRuntime,
        secrets: SecretBox,
        config: RunnerConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                plugin,
                secrets,
                workers: Arc::new(Semaphore::new(config.workers.max(1))),
                config,
                own: Mutex::new(None),
                per_registry: Mutex::default(),
                live: Mutex::default(),
                claims: Arc::default(),
            }),
        }
    }

    /// Names the registry tasks write to. Set once the router exists, which needs the
    /// runner first.
    pub fn set_own_registry(&self, own: OwnRegistry) {
        *self.inner.own.lock().unwrap() = Some(own);
    }

    pub fn own_authority(&self) -> Option<String> {
        self.inner
            .own
            .lock()
            .unwrap()
            .as_ref()
            .map(|o| o.authority.clone())
    }

    pub fn store(&self) -> &Arc<dyn TaskStore> {
        &self.inner.store
    }

    /// Queues `task`, unless the same import is already queued or running.
    pub fn submit(&self, task: Task, auth: Option<SourceAuth>) -> anyhow::Result<Submitted> {
        if let Some(existing) = self
            .inner
            .store
            .find_active(&task.source_canonical, &task.target)?
        {
            return Ok(Submitted::Merged(
                self.current(&existing.id)?.unwrap_or(existing),
            ));
        }
        let sealed = auth.map(|a| {
            self.inner
                .secrets
                .seal(&serde_json::to_vec(&a).expect("plain strings"))
        });
        self.inner.store.insert(&task, sealed.as_deref())?;
        self.spawn(task.clone());
        Ok(Submitted::New(task))
    }

    /// Starts every task the last run left queued or running. Running ones start again
    /// from the top; blobs they already copied are found on the target and skipped.
    pub fn recover(&self) -> anyhow::Result<usize> {
        let tasks = self.inner.store.unfinished()?;
        let n = tasks.len();
        for mut task in tasks {
            if task.state == TaskState::Running {
                task.state = TaskState::Queued;
                task.warnings
                    .push("the host restarted during this import; it continues".into());
                self.inner.store.update(&task)?;
            }
            self.spawn(task);
        }
        Ok(n)
    }

    /// The task as it is now: live while it runs, from the database otherwise.
    pub fn current(&self, id: &str) -> anyhow::Result<Option<Task>> {
        if let Some(live) = self.inner.live.lock().unwrap().get(id) {
            return Ok(Some(live.progress.borrow().clone()));
        }
        self.inner.store.get(id)
    }

    /// Follows a task's progress; None when it is not running or queued in this process.
    pub fn subscribe(&self, id: &str) -> Option<watch::Receiver<Task>> {
        self.inner
            .live
            .lock()
            .unwrap()
            .get(id)
            .map(|l| l.progress.subscribe())
    }

    /// Asks a queued or running task to stop. Returns false when it had finished.
    pub fn cancel(&self, id: &str) -> bool {
        match self.inner.live.lock().unwrap().get(id) {
            Some(live) => {
                live.cancel.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Queues a failed or cancelled task again, with new credentials when given.
    pub fn retry(&self, mut task: Task, auth: Option<SourceAuth>) -> anyhow::Result<Task> {
        if let Some(auth) = auth {
            let sealed = self
                .inner
                .secrets
                .seal(&serde_json::to_vec(&auth).expect("plain strings"));
            self.inner.store.set_credentials(&task.id, &sealed)?;
            task.authenticated = true;
        }
        task.state = TaskState::Queued;
        Self::reset(&mut task);
        self.inner.store.update(&task)?;
        self.spawn(task.clone());
        Ok(task)
    }

    fn reset(task: &mut Task) {
        task.phase = None;
        task.error = None;
        task.finished_at = None;
        task.bytes_done = 0;
        task.blobs_done = 0;
        task.blobs.clear();
        task.warnings.clear();
    }

    fn spawn(&self, task: Task) {
        let (progress, _) = watch::channel(task.clone());
        let cancel = Arc::new(AtomicBool::new(false));
        self.inner.live.lock().unwrap().insert(
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
            runner.inner.live.lock().unwrap().remove(&id);
        });
    }

    fn registry_limit(&self, registry: &str) -> Arc<Semaphore> {
        self.inner
            .per_registry
            .lock()
            .unwrap()
            .entry(registry.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.config.per_registry.max(1))))
            .clone()
    }

    async fn run(&self, mut task: Task, progress: watch::Sender<Task>, cancel: Arc<AtomicBool>) {
        let store = &self.inner.store;
        let _worker = self.inner.workers.clone().acquire_owned().await;
        let registry = registry_of(&task.source_canonical).to_owned();
        let _registry = self.registry_limit(&registry).acquire_owned().await;
        if cancel.load(Ordering::SeqCst) {
            task.state = TaskState::Cancelled;
            task.error = Some(TaskError {
                code: "cancelled".into(),
                message: "the import was cancelled before it started".into(),
            });
            task.finished_at = Some(now());
            self.finish(&task, &progress);
            return;
        }
        task.state = TaskState::Running;
        task.attempts += 1;
        task.started_at = Some(now());
        if let Err(e) = store.update(&task) {
            tracing::error!(task = %task.id, error = %e, "cannot record a task start");
        }
        progress.send_replace(task.clone());

        // What the host noted (a restart) stays beside what the plugin reports.
        let host_notes = task.warnings.clone();
        let outcome = match self.request_and_access(&task) {
            Ok((request, access)) => {
                let mut last_persist = Instant::now();
                let result = self
                    .inner
                    .plugin
                    .import_with(&request, access, |status| {
                        task.apply(status);
                        task.warnings.splice(0..0, host_notes.iter().cloned());
                        progress.send_replace(task.clone());
                        if last_persist.elapsed() >= PERSIST_EVERY {
                            last_persist = Instant::now();
                            if let Err(e) = store.update(&task) {
                                tracing::warn!(task = %task.id, error = %e, "cannot record progress");
                            }
                        }
                        !cancel.load(Ordering::SeqCst)
                    })
                    .await;
                result.map_err(|e| format!("{e:#}"))
            }
            Err(message) => Err(message),
        };
        match outcome {
            Ok(status) => {
                task.apply(&status);
                task.warnings.splice(0..0, host_notes.iter().cloned());
                task.state = match status.phase {
                    crate::plugin::Phase::Done => TaskState::Succeeded,
                    crate::plugin::Phase::Cancelled => TaskState::Cancelled,
                    _ => TaskState::Failed,
                };
            }
            Err(message) => {
                task.state = TaskState::Failed;
                task.error = Some(host_error(message));
            }
        }
        task.finished_at = Some(now());
        tracing::info!(
            task = %task.id,
            state = task.state.as_str(),
            source = %task.source_canonical,
            target = %task.target,
            "import finished"
        );
        self.finish(&task, &progress);
    }

    fn finish(&self, task: &Task, progress: &watch::Sender<Task>) {
        if let Err(e) = self.inner.store.update(task) {
            tracing::error!(task = %task.id, error = %e, "cannot record a finished task");
        }
        // A failed task keeps its credentials for a retry; the others need them no more.
        if task.state != TaskState::Failed
            && let Err(e) = self.inner.store.forget_credentials(&task.id)
        {
            tracing::error!(task = %task.id, error = %e, "cannot delete a task's credentials");
        }
        progress.send_replace(task.clone());
    }

    /// The plugin request for `task` and what the host lends it.
    fn request_and_access(&self, task: &Task) -> Result<(ImportRequest, ImportAccess), String> {
        let settings = &self.inner.config.registries;
        let registry = registry_of(&task.source_canonical);
        let own = self.inner.own.lock().unwrap().clone();
        let mut credentials = Vec::new();
        if task.authenticated {
            let sealed = self
                .inner
                .store
                .sealed_credentials(&task.id)
                .map_err(|e| e.to_string())?
                .ok_or("the source credentials of this task are gone; retry it with credentials")?;
            let plain = self
                .inner
                .secrets
                .open(&sealed)
                .ok_or("the source credentials cannot be opened (the secrets key changed); retry the task with credentials")?;
            let auth: SourceAuth = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
            credentials.push(HostCredential {
                endpoints: endpoints_of(registry, &settings.mirrors, &settings.insecure),
                username: auth.username,
                password: Secret::new(auth.password),
            });
        }
        let mut insecure: Vec<String> = settings.insecure.iter().cloned().collect();
        let external = self.inner.config.target.as_ref();
        if let Some(target) = external {
            if target.plain_http {
                insecure.push(target.authority.clone());
            }
            credentials.extend(target.credential.clone());
        }
        let internal = own.filter(|_| external.is_none()).map(|own| {
            // In-process requests need no TLS; the plugin talks plain HTTP to it.
            insecure.push(own.authority.clone());
            Internal {
                authority: own.authority,
                router: own.router,
                grant: InternalGrant {
                    project: task.project.clone(),
                    task: task.id.clone(),
                },
                claims: self.inner.claims.clone(),
                index: own.blobs,
            }
        });
        let request = ImportRequest {
            source: task.source_canonical.clone(),
            target: task.target.clone(),
            platforms: platforms_of(&task.platforms)?,
            options: Options {
                endpoints: settings
                    .mirrors
                    .iter()
                    .map(|(registry, urls)| RegistryEndpoints {
                        registry: registry.clone(),
                        endpoints: urls.clone(),
                    })
                    .collect(),
                insecure_registries: insecure,
                concurrency: 0,
                max_retries: 0,
                chunk_size: None,
                mount_from: Vec::new(),
                copy_foreign_layers: false,
                timeouts: None,
            },
            credentials: Vec::new(),
        };
        Ok((
            request,
            ImportAccess {
                credentials,
                internal,
            },
        ))
    }
}

/// The registry part of a canonical reference.
pub fn registry_of(canonical: &str) -> &str {
    canonical.split('/').next().unwrap_or(canonical)
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A new task id: 128 random bits in hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
