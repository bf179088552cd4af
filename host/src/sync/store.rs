//! Sync rules, their sealed source credentials and their runs in the metadata database:
//! each record as JSON, with the columns the scheduler and the lists filter on beside it.
//! The records are this module's, so their rows are kept here rather than in `store`,
//! which knows nothing of sync: the dependency runs one way, `sync` to `store`.

use super::rule::Rule;
use super::run::{Run, RunState};
use crate::store::HostStore;
use anyhow::Result;
/// What a write of a rule does with its sealed credentials.
pub(crate) enum Secret<'a> {
    Keep,
    Set(&'a [u8]),
    Remove,
}

impl HostStore {
    /// Stores a new rule; false when the project already has a rule of that name.
    pub(crate) fn insert_rule(&self, rule: &Rule, sealed: Option<&[u8]>) -> Result<bool> {
        let body = serde_json::to_string(rule)?;
        self.db.transaction(|tx| {
            let inserted = tx.execute(
                "INSERT INTO sync_rules (id, project, name, enabled, next_due_ms, body)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5) ON CONFLICT (project, name) DO NOTHING",
                &[&rule.id, &rule.project, &rule.name, &rule.enabled, &body],
            )?;
            if inserted == 1
                && let Some(sealed) = sealed
            {
                tx.execute(
                    "INSERT INTO sync_rule_secrets (rule, sealed) VALUES (?1, ?2)",
                    &[&rule.id, &sealed],
                )?;
            }
            Ok(inserted == 1)
        })
    }

    /// Replaces a rule, forgetting when it is next due (its schedule may have changed);
    /// false when another rule of the project has its name.
    pub(crate) fn replace_rule(&self, rule: &Rule, secret: Secret<'_>) -> Result<bool> {
        let body = serde_json::to_string(rule)?;
        self.db.transaction(|tx| {
            let clash = tx.query_opt(
                "SELECT id FROM sync_rules WHERE project = ?1 AND name = ?2 AND id != ?3",
                &[&rule.project, &rule.name, &rule.id],
            )?;
            if clash.is_some() {
                return Ok(false);
            }
            tx.execute(
                "UPDATE sync_rules SET name = ?2, enabled = ?3, next_due_ms = NULL, body = ?4
                 WHERE id = ?1",
                &[&rule.id, &rule.name, &rule.enabled, &body],
            )?;
            match secret {
                Secret::Keep => {}
                Secret::Set(sealed) => {
                    tx.execute(
                        "INSERT INTO sync_rule_secrets (rule, sealed) VALUES (?1, ?2)
                         ON CONFLICT (rule) DO UPDATE SET sealed = excluded.sealed",
                        &[&rule.id, &sealed],
                    )?;
                }
                Secret::Remove => {
                    tx.execute("DELETE FROM sync_rule_secrets WHERE rule = ?1", &[&rule.id])?;
                }
            }
            Ok(true)
        })
    }

    pub(crate) fn delete_rule(&self, id: &str) -> Result<bool> {
        self.db
            .with_connection(|c| Ok(c.execute("DELETE FROM sync_rules WHERE id = ?1", &[&id])? > 0))
    }

    pub(crate) fn rule(&self, id: &str) -> Result<Option<Rule>> {
        self.db.with_connection(|c| {
            c.query_opt("SELECT body FROM sync_rules WHERE id = ?1", &[&id])?
                .map(|r| r.json(0))
                .transpose()
        })
    }

    pub(crate) fn rules(&self, project: &str) -> Result<Vec<Rule>> {
        self.db.with_connection(|c| {
            c.query(
                "SELECT body FROM sync_rules WHERE project = ?1 ORDER BY name",
                &[&project],
            )?
            .iter()
            .map(|r| r.json(0))
            .collect()
        })
    }

    /// Every enabled rule, with when each is next due (none: not computed yet).
    pub(crate) fn enabled_rules(&self) -> Result<Vec<(Rule, Option<i64>)>> {
        self.db.with_connection(|c| {
            c.query(
                "SELECT body, next_due_ms FROM sync_rules WHERE enabled = 1",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.json(0)?, r.get(1)?)))
            .collect()
        })
    }

    pub(crate) fn next_due(&self, rule: &str) -> Result<Option<i64>> {
        self.db.with_connection(|c| {
            Ok(
                c.query_opt("SELECT next_due_ms FROM sync_rules WHERE id = ?1", &[&rule])?
                    .map(|r| r.get(0))
                    .transpose()?
                    .flatten(),
            )
        })
    }

    /// Moves a rule's next due time from `from` to `to`, unless it has moved since it was
    /// read; whether this call moved it. Replicas sharing the database all look at the
    /// rules, and only the one whose move lands starts the run, so each slot fires once.
    pub(crate) fn advance_due(
        &self,
        rule: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<bool> {
        self.db.with_connection(|c| {
            Ok(c.execute(
                "UPDATE sync_rules SET next_due_ms = ?3
                 WHERE id = ?1 AND (next_due_ms = ?2 OR (next_due_ms IS NULL AND ?2 IS NULL))",
                &[&rule, &from, &to],
            )? == 1)
        })
    }

    pub(crate) fn rule_secret(&self, rule: &str) -> Result<Option<Vec<u8>>> {
        self.db.with_connection(|c| {
            c.query_opt(
                "SELECT sealed FROM sync_rule_secrets WHERE rule = ?1",
                &[&rule],
            )?
            .map(|r| r.get(0))
            .transpose()
        })
    }

    // ---- runs ----

    pub(crate) fn insert_sync_run(&self, run: &Run) -> Result<()> {
        let body = serde_json::to_string(run)?;
        self.db.with_connection(|c| {
            c.execute(
                "INSERT INTO sync_runs (id, rule, seq, state, body)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sync_runs), ?3, ?4)",
                &[&run.id, &run.rule, &run.state.as_str(), &body],
            )
        })?;
        Ok(())
    }

    pub(crate) fn update_sync_run(&self, run: &Run) -> Result<()> {
        let body = serde_json::to_string(run)?;
        self.db.with_connection(|c| {
            c.execute(
                "UPDATE sync_runs SET state = ?2, body = ?3 WHERE id = ?1",
                &[&run.id, &run.state.as_str(), &body],
            )
        })?;
        Ok(())
    }

    pub(crate) fn sync_run(&self, id: &str) -> Result<Option<Run>> {
        self.db.with_connection(|c| {
            c.query_opt("SELECT body FROM sync_runs WHERE id = ?1", &[&id])?
                .map(|r| r.json(0))
                .transpose()
        })
    }

    /// A rule's runs, newest first.
    pub(crate) fn sync_runs(&self, rule: &str, limit: u32, offset: u32) -> Result<Vec<Run>> {
        self.db.with_connection(|c| {
            c.query(
                "SELECT body FROM sync_runs WHERE rule = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3",
                &[&rule, &limit, &offset],
            )?
            .iter()
            .map(|r| r.json(0))
            .collect()
        })
    }

    /// Runs the last process left going, to start again.
    pub(crate) fn unfinished_sync_runs(&self) -> Result<Vec<Run>> {
        self.db.with_connection(|c| {
            c.query(
                "SELECT body FROM sync_runs WHERE state IN (?1, ?2) ORDER BY seq",
                &[&RunState::Running.as_str(), &RunState::Waiting.as_str()],
            )?
            .iter()
            .map(|r| r.json(0))
            .collect()
        })
    }
}
