//! The host's own rows in the metadata database (import tasks and robots), and the
//! adapters that let the imports crate see what it needs of the registry's rows. Sync
//! rules and runs keep their rows in `sync::store`, beside their records.

mod robots;
mod tasks;

pub use robots::{ProjectScope, Robot};

use hoist_imports::BlobIndex;
use hoist_registry::Metadata;
use std::sync::Arc;

/// The metadata database, as the host uses it. Its methods block: call them through
/// [`HostStore::run`] from async code.
#[derive(Clone)]
pub struct HostStore {
    pub db: Arc<Metadata>,
}

impl HostStore {
    pub fn new(db: Arc<Metadata>) -> Self {
        Self { db }
    }

    /// Runs `f` on a blocking thread, off the async workers that serve requests.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&HostStore) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this)).await?
    }
}

impl BlobIndex for HostStore {
    fn repository_with(&self, project: &str, digest: &str) -> Option<String> {
        self.db
            .repository_with_blob(project, digest)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot look up a blob's repositories"))
            .ok()
            .flatten()
    }
}
