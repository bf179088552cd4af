//! The registry's state: its stores, settings and locks, shared by every request.

use crate::access::{AllowAll, Authorizer};
use crate::errors::{RegistryError, Result};
use crate::manifest::{self, MAX_MANIFEST, Summary};
use crate::metadata::Metadata;
use crate::metrics::Metrics;
use crate::names;
use crate::options::RegistryOptions;
use crate::storage::{FsStorage, Storage};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Weak};

/// The registry: its stores and settings. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    metadata: Arc<Metadata>,
    options: RegistryOptions,
    metrics: Metrics,
    authorizer: Arc<dyn Authorizer>,
    /// Held for reading while a push makes a blob reachable (an upload's commit and
    /// link, a mount, a manifest's checks and records); held for writing by the garbage
    /// collector's sweep. So the collector never deletes a blob between a push seeing
    /// it and the push's reference to it being recorded.
    gc: tokio::sync::RwLock<()>,
    /// One lock per upload session, so that two requests on one session cannot
    /// interleave their appends.
    upload_locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// The file of the metadata database inside a data directory.
pub fn database_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("hoist.db")
}

impl Registry {
    pub fn new(
        storage: Arc<dyn Storage>,
        metadata: Arc<Metadata>,
        options: RegistryOptions,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                metadata,
                options,
                metrics,
                authorizer: Arc::new(AllowAll),
                gc: tokio::sync::RwLock::new(()),
                upload_locks: Mutex::default(),
            }),
        }
    }

    /// A registry over a data directory: blobs and upload sessions under `blobs/`,
    /// `uploads/` and `tmp/`, the database in `hoist.db`.
    pub fn open(data_dir: &Path, options: RegistryOptions) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let storage = FsStorage::open(data_dir)
            .with_context(|| format!("opening the blob store in {}", data_dir.display()))?;
        let metadata = Metadata::open(&database_path(data_dir))?;
        Ok(Self::new(
            Arc::new(storage),
            Arc::new(metadata),
            options,
            Metrics::new(),
        ))
    }

    /// Replaces the authorizer (before the registry is shared).
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the authorizer is set before the registry is shared")
            .authorizer = authorizer;
        self
    }

    pub(crate) fn authorizer(&self) -> &dyn Authorizer {
        self.inner.authorizer.as_ref()
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    pub fn metadata(&self) -> &Arc<Metadata> {
        &self.inner.metadata
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn options(&self) -> &RegistryOptions {
        &self.inner.options
    }

    /// The size and platforms of the image a manifest describes, for people (the web
    /// UI's tag list).
    pub async fn summarize(&self, digest: &str) -> Summary {
        let (storage, digest) = (self.inner.storage.clone(), digest.to_owned());
        let read = move |d: &str| storage.read_small(d, MAX_MANIFEST as u64).ok().flatten();
        tokio::task::spawn_blocking(move || match read(&digest) {
            Some(bytes) => manifest::summarize(&bytes, &read),
            None => Summary::default(),
        })
        .await
        .unwrap_or_default()
    }

    /// Whether the database answers and the store takes writes, for `/readyz`.
    pub(crate) async fn ready(&self) -> std::result::Result<(), String> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.inner
                .metadata
                .ping()
                .map_err(|e| format!("the metadata database does not answer: {e:#}"))?;
            this.inner
                .storage
                .probe()
                .map_err(|e| format!("the blob store cannot be written: {e}"))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Runs a metadata query off the async threads.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Metadata) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T> {
        let metadata = self.inner.metadata.clone();
        Ok(tokio::task::spawn_blocking(move || f(&metadata)).await??)
    }

    /// Runs blocking storage work off the async threads.
    pub(crate) async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T> {
        let storage = self.inner.storage.clone();
        Ok(tokio::task::spawn_blocking(move || f(storage.as_ref())).await??)
    }

    /// Shared access against the garbage collector's sweep (see [`Inner::gc`]).
    pub(crate) async fn gc_shared(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.inner.gc.read().await
    }

    /// Exclusive access for the garbage collector's sweep.
    pub(crate) async fn gc_exclusive(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.inner.gc.write().await
    }

    pub(crate) async fn lock_upload(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.upload_locks.lock();
            locks.retain(|_, l| l.strong_count() > 0);
            match locks.get(id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(id.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// Refuses a push into a project that does not exist, or creates the project when
    /// the host is configured to.
    pub(crate) async fn require_project(&self, repository: &str) -> Result<()> {
        let project = names::project_of(repository).to_owned();
        let auto = self.inner.options.auto_create_projects;
        let exists = self
            .db(move |m| {
                if m.project(&project)?.is_some() {
                    return Ok(true);
                }
                if auto {
                    m.create_project(&project, false)?;
                    tracing::info!(project, "created a project on its first push");
                    return Ok(true);
                }
                Ok(false)
            })
            .await?;
        if exists {
            Ok(())
        } else {
            let project = names::project_of(repository);
            Err(RegistryError::name_unknown(format!(
                "the project {project} does not exist, so nothing can be pushed to \
                 {repository}; create it first (POST /api/v1/projects with \
                 {{\"name\": \"{project}\"}}), or let the host create projects on first \
                 push (registry.auto_create_projects = true in the configuration, or \
                 HOIST_AUTO_CREATE_PROJECTS=1)"
            ))
            .with_detail(serde_json::json!({ "project": project })))
        }
    }
}
