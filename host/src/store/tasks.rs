//! Tasks in the metadata database: the record as JSON, with the columns queries filter
//! on beside it.

use super::HostStore;
use anyhow::Result;
use hoist_imports::tasks::TaskStore;
use hoist_imports::tasks::model::{Task, TaskState};
impl TaskStore for HostStore {
    fn insert(&self, task: &Task, sealed_credentials: Option<&[u8]>) -> Result<()> {
        let body = serde_json::to_string(task)?;
        self.db.transaction(|tx| {
            tx.execute(
                "INSERT INTO tasks (id, project, seq, state, source_canonical, target, body)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM tasks), ?3, ?4, ?5, ?6)",
                &[
                    &task.id,
                    &task.project,
                    &task.state.as_str(),
                    &task.source_canonical,
                    &task.target,
                    &body,
                ],
            )?;
            if let Some(sealed) = sealed_credentials {
                tx.execute(
                    "INSERT INTO task_secrets (task, sealed) VALUES (?1, ?2)",
                    &[&task.id, &sealed],
                )?;
            }
            Ok(())
        })
    }

    fn update(&self, task: &Task) -> Result<()> {
        let body = serde_json::to_string(task)?;
        self.db.with_connection(|c| {
            // A finished task forgets a cancel asked of it, so that a retry runs.
            c.execute(
                "UPDATE tasks SET state = ?2, body = ?3, cancel_requested =
                     CASE WHEN ?2 IN ('succeeded', 'failed', 'cancelled') THEN 0
                          ELSE cancel_requested END
                 WHERE id = ?1",
                &[&task.id, &task.state.as_str(), &body],
            )
        })?;
        // A finished import notes on its tag where the tag came from, for the web UI,
        // and the source digest it copied, for sync runs to compare with. The digest must
        // match, so a target in another registry marks nothing here.
        if task.state == TaskState::Succeeded
            && let (Some(digest), Some((repository, tag))) =
                (&task.digest, tagged_repository(&task.target))
        {
            self.db.record_tag_import(
                repository,
                tag,
                digest,
                &task.source_canonical,
                source_digest(task, digest),
                &task.id,
            )?;
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<Task>> {
        self.db.with_connection(|c| {
            c.query_opt("SELECT body FROM tasks WHERE id = ?1", &[&id])?
                .map(|r| r.json(0))
                .transpose()
        })
    }

    fn list(
        &self,
        project: &str,
        state: Option<TaskState>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Task>> {
        self.db.with_connection(|c| {
            c.query(
                "SELECT body FROM tasks WHERE project = ?1 AND (CAST(?2 AS TEXT) IS NULL OR state = ?2)
                 ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
                &[&project, &state.map(TaskState::as_str), &limit, &offset],
            )?
            .iter()
            .map(|r| r.json(0))
            .collect()
        })
    }

    fn find_active(&self, source_canonical: &str, target: &str) -> Result<Option<Task>> {
        self.db.with_connection(|c| {
            c.query_opt(
                "SELECT body FROM tasks WHERE source_canonical = ?1 AND target = ?2
                 AND state IN ('queued', 'running', 'waiting') ORDER BY seq LIMIT 1",
                &[&source_canonical, &target],
            )?
            .map(|r| r.json(0))
            .transpose()
        })
    }

    fn sealed_credentials(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.db.with_connection(|c| {
            c.query_opt("SELECT sealed FROM task_secrets WHERE task = ?1", &[&id])?
                .map(|r| r.get(0))
                .transpose()
        })
    }

    fn set_credentials(&self, id: &str, sealed: &[u8]) -> Result<()> {
        self.db.with_connection(|c| {
            c.execute(
                "INSERT INTO task_secrets (task, sealed) VALUES (?1, ?2)
                 ON CONFLICT (task) DO UPDATE SET sealed = excluded.sealed",
                &[&id, &sealed],
            )
        })?;
        Ok(())
    }

    fn forget_credentials(&self, id: &str) -> Result<()> {
        self.db
            .with_connection(|c| c.execute("DELETE FROM task_secrets WHERE task = ?1", &[&id]))?;
        Ok(())
    }

    fn claim(&self, id: &str, owner: &str, now_ms: i64, until_ms: i64) -> Result<bool> {
        self.db.with_connection(|c| {
            Ok(c.execute(
                "UPDATE tasks SET lease_owner = ?2, lease_until_ms = ?3
                 WHERE id = ?1 AND state IN ('queued', 'running', 'waiting')
                   AND (lease_owner IS NULL OR lease_owner = ?2 OR lease_until_ms < ?4)",
                &[&id, &owner, &until_ms, &now_ms],
            )? == 1)
        })
    }

    fn renew(&self, owner: &str, ids: &[String], until_ms: i64) -> Result<Vec<String>> {
        self.db.transaction(|tx| {
            let mut cancelled = Vec::new();
            for id in ids {
                // One statement renews and tells whether a cancel was asked (both
                // engines take RETURNING).
                let renewed = tx.query_opt(
                    "UPDATE tasks SET lease_until_ms = ?3 WHERE id = ?1 AND lease_owner = ?2
                     RETURNING cancel_requested",
                    &[id, &owner, &until_ms],
                )?;
                if let Some(row) = renewed
                    && row.get::<bool>(0)?
                {
                    cancelled.push(id.clone());
                }
            }
            Ok(cancelled)
        })
    }

    fn release(&self, id: &str) -> Result<()> {
        self.db.with_connection(|c| {
            c.execute(
                "UPDATE tasks SET lease_owner = NULL, lease_until_ms = NULL WHERE id = ?1",
                &[&id],
            )
        })?;
        Ok(())
    }

    fn orphaned(&self, now_ms: i64) -> Result<Vec<Task>> {
        self.db.with_connection(|c| {
            c.query(
                "SELECT body FROM tasks WHERE state IN ('queued', 'running', 'waiting')
                   AND (lease_owner IS NULL OR lease_until_ms < ?1) ORDER BY seq",
                &[&now_ms],
            )?
            .iter()
            .map(|r| r.json(0))
            .collect()
        })
    }

    fn request_cancel(&self, id: &str) -> Result<bool> {
        self.db.with_connection(|c| {
            Ok(c.execute(
                "UPDATE tasks SET cancel_requested = 1
                 WHERE id = ?1 AND state IN ('queued', 'running', 'waiting')",
                &[&id],
            )? == 1)
        })
    }

    fn lease_owners(&self) -> Result<std::collections::HashMap<String, String>> {
        self.db.with_connection(|c| {
            c.query(
                "SELECT id, lease_owner FROM tasks WHERE lease_owner IS NOT NULL
                   AND state IN ('queued', 'running', 'waiting')",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect()
        })
    }

    fn unfinished(&self) -> Result<Vec<Task>> {
        self.db.with_connection(|c| {
            c.query(
                "SELECT body FROM tasks WHERE state IN ('queued', 'running', 'waiting') ORDER BY seq",
                &[],
            )?
            .iter()
            .map(|r| r.json(0))
            .collect()
        })
    }
}

impl HostStore {
    /// How many imports a project's history holds.
    pub fn project_task_count(&self, project: &str) -> Result<u64> {
        self.db.with_connection(|c| {
            c.query_one("SELECT COUNT(*) FROM tasks WHERE project = ?1", &[&project])?
                .get(0)
        })
    }
}

/// The repository and tag of a tagged target (`host:5000/project/name:tag`).
/// The source manifest an import copied: the digest its source was pinned to, or, with
/// no platform filter (which would have made a new index), the digest it wrote.
fn source_digest<'a>(task: &'a Task, written: &'a str) -> Option<&'a str> {
    match task.source_canonical.rsplit_once('@') {
        Some((_, pinned)) => Some(pinned),
        None => task.platforms.is_empty().then_some(written),
    }
}

fn tagged_repository(target: &str) -> Option<(&str, &str)> {
    let (_host, rest) = target.split_once('/')?;
    if rest.contains('@') {
        return None;
    }
    let (repository, tag) = rest.rsplit_once(':')?;
    (!tag.contains('/')).then_some((repository, tag))
}
