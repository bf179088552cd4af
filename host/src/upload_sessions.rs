//! The registry's upload sessions that import tasks open, and the sweep that removes
//! abandoned ones.
//!
//! A task's in-process requests carry its grant; the authorizer names the session's
//! owner from it as `<process>/<task>`, where `<process>` is random for each start of the
//! host. A session whose owner is an earlier process (the host was killed mid-import and
//! the task restarted with new sessions) or a task no longer running here is abandoned at
//! once; any other session only after `registry.upload_max_age` without a byte. Without
//! this, every crash mid-import left its partial layers in `uploads/` for the whole age.

use hoist_common::clock;
use hoist_imports::tasks::TaskRunner;
use hoist_registry::Registry;
use std::time::Duration;

/// Names the owners of the sessions this process opens for import tasks.
#[derive(Clone)]
pub struct UploadOwners {
    process: String,
}

impl Default for UploadOwners {
    fn default() -> Self {
        Self {
            process: hoist_common::random::id(),
        }
    }
}

impl UploadOwners {
    /// The owner recorded for a session opened by `task`.
    pub fn owner(&self, task: &str) -> String {
        format!("{}/{task}", self.process)
    }

    /// Whether `owner` has ended: another process's task, or one that is not running.
    fn gone(&self, owner: &str, runner: &TaskRunner) -> bool {
        match owner.split_once('/') {
            Some((process, task)) => process != self.process || runner.subscribe(task).is_none(),
            None => true,
        }
    }
}

/// Sweeps now, then every `every`, for as long as the host runs.
pub fn start_sweeper(
    registry: Registry,
    runner: TaskRunner,
    owners: UploadOwners,
    max_age: Duration,
    every: Duration,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
        loop {
            ticks.tick().await;
            let idle_before = clock::ago(max_age);
            let gone = |owner: &str| owners.gone(owner, &runner);
            match hoist_registry::sweep_uploads(&registry, idle_before, gone).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "removed abandoned upload sessions"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep upload sessions"),
            }
        }
    });
}
