//! The registry's upload sessions that import tasks open, and the sweep that removes
//! abandoned ones.
//!
//! A task's in-process requests carry its grant; the authorizer names the session's
//! owner from it as `<process>/<task>`, where `<process>` is random for each start of the
//! host. A session whose owner is an earlier process (the host was killed mid-import and
//! the task restarted with new sessions) or a task no longer running here is abandoned at
//! once; any other session only after `registry.upload_max_age` without a byte. Without
//! this, every crash mid-import left its partial layers in `uploads/` for the whole age.
//! Replicas that share a database name themselves as the process (the replica name in
//! the tasks' leases), and a session is abandoned when its task is no longer leased to
//! the replica that opened it: another replica's live import keeps its sessions.

use hoist_common::clock;
use hoist_imports::tasks::TaskRunner;
use hoist_registry::Registry;
use std::collections::HashMap;
use std::time::Duration;

/// Names the owners of the sessions this process opens for import tasks.
#[derive(Clone)]
pub struct UploadOwners {
    process: String,
}

impl UploadOwners {
    /// The owners of the sessions this process (or replica, named `process`) opens.
    pub fn new(process: String) -> Self {
        Self { process }
    }

    /// The owner recorded for a session opened by `task`.
    pub fn owner(&self, task: &str) -> String {
        format!("{}/{task}", self.process)
    }

    /// Whether `owner` has ended: another process's task, or one that is not running;
    /// with `leases` (replicas share the tasks), a task not leased to the replica that
    /// opened the session.
    fn gone(
        &self,
        owner: &str,
        runner: &TaskRunner,
        leases: Option<&HashMap<String, String>>,
    ) -> bool {
        let Some((process, task)) = owner.split_once('/') else {
            return true;
        };
        match leases {
            Some(leases) => leases.get(task).map(String::as_str) != Some(process),
            None => process != self.process || runner.subscribe(task).is_none(),
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
            let leases = match runner.lease_owners().await {
                Ok(leases) => leases,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the import leases; sweeping later");
                    continue;
                }
            };
            let gone = |owner: &str| owners.gone(owner, &runner, leases.as_ref());
            match hoist_registry::sweep_uploads(&registry, idle_before, gone).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "removed abandoned upload sessions"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep upload sessions"),
            }
        }
    });
}
