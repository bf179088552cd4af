//! Sync rules, their sealed source credentials and their runs in the metadata database:
//! each record as JSON, with the columns the scheduler and the lists filter on beside it.
//! The records are this module's, so their rows are kept here rather than in `store`,
//! which knows nothing of sync: the dependency runs one way, `sync` to `store`.

use super::rule::Rule;
use super::run::{Run, RunState};
use crate::store::HostStore;
use anyhow::Result;
use rusqlite::{OptionalExtension, params};

fn decode<T: serde::de::DeserializeOwned>(body: String) -> rusqlite::Result<T> {
    serde_json::from_str(&body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

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
        Ok(self.db.with_connection(|conn| {
            let tx = conn.transaction()?;
            let inserted = tx.execute(
                "INSERT INTO sync_rules (id, project, name, enabled, next_due_ms, body)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5) ON CONFLICT (project, name) DO NOTHING",
                params![rule.id, rule.project, rule.name, rule.enabled, body],
            )?;
            if inserted == 1
                && let Some(sealed) = sealed
            {
                tx.execute(
                    "INSERT INTO sync_rule_secrets (rule, sealed) VALUES (?1, ?2)",
                    params![rule.id, sealed],
                )?;
            }
            tx.commit()?;
            Ok::<_, rusqlite::Error>(inserted == 1)
        })?)
    }

    /// Replaces a rule, forgetting when it is next due (its schedule may have changed);
    /// false when another rule of the project has its name.
    pub(crate) fn replace_rule(&self, rule: &Rule, secret: Secret<'_>) -> Result<bool> {
        let body = serde_json::to_string(rule)?;
        Ok(self.db.with_connection(|conn| {
            let tx = conn.transaction()?;
            let clash: Option<String> = tx
                .query_row(
                    "SELECT id FROM sync_rules WHERE project = ?1 AND name = ?2 AND id != ?3",
                    params![rule.project, rule.name, rule.id],
                    |r| r.get(0),
                )
                .optional()?;
            if clash.is_some() {
                return Ok(false);
            }
            tx.execute(
                "UPDATE sync_rules SET name = ?2, enabled = ?3, next_due_ms = NULL, body = ?4
                 WHERE id = ?1",
                params![rule.id, rule.name, rule.enabled, body],
            )?;
            match secret {
                Secret::Keep => {}
                Secret::Set(sealed) => {
                    tx.execute(
                        "INSERT INTO sync_rule_secrets (rule, sealed) VALUES (?1, ?2)
                         ON CONFLICT (rule) DO UPDATE SET sealed = excluded.sealed",
                        params![rule.id, sealed],
                    )?;
                }
                Secret::Remove => {
                    tx.execute("DELETE FROM sync_rule_secrets WHERE rule = ?1", [&rule.id])?;
                }
            }
            tx.commit()?;
            Ok::<_, rusqlite::Error>(true)
        })?)
    }

    pub(crate) fn delete_rule(&self, id: &str) -> Result<bool> {
        Ok(self.db.with_connection(|conn| {
            conn.execute("DELETE FROM sync_rules WHERE id = ?1", [id])
                .map(|n| n > 0)
        })?)
    }

    pub(crate) fn rule(&self, id: &str) -> Result<Option<Rule>> {
        Ok(self.db.with_connection(|conn| {
            conn.query_row("SELECT body FROM sync_rules WHERE id = ?1", [id], |r| {
                decode(r.get(0)?)
            })
            .optional()
        })?)
    }

    pub(crate) fn rules(&self, project: &str) -> Result<Vec<Rule>> {
        self.rules_where("project = ?1 ORDER BY name", project)
    }

    /// Every enabled rule, with when each is next due (none: not computed yet).
    pub(crate) fn enabled_rules(&self) -> Result<Vec<(Rule, Option<i64>)>> {
        Ok(self.db.with_connection(|conn| {
            let mut stmt =
                conn.prepare("SELECT body, next_due_ms FROM sync_rules WHERE enabled = 1")?;
            let rows = stmt.query_map([], |r| Ok((decode(r.get(0)?)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?)
    }

    pub(crate) fn next_due(&self, rule: &str) -> Result<Option<i64>> {
        Ok(self.db.with_connection(|conn| {
            conn.query_row(
                "SELECT next_due_ms FROM sync_rules WHERE id = ?1",
                [rule],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
        })?)
    }

    pub(crate) fn set_next_due(&self, rule: &str, next_due_ms: Option<i64>) -> Result<()> {
        self.db.with_connection(|conn| {
            conn.execute(
                "UPDATE sync_rules SET next_due_ms = ?2 WHERE id = ?1",
                params![rule, next_due_ms],
            )
        })?;
        Ok(())
    }

    fn rules_where(&self, clause: &str, arg: &str) -> Result<Vec<Rule>> {
        Ok(self.db.with_connection(|conn| {
            let mut stmt = conn.prepare(&format!("SELECT body FROM sync_rules WHERE {clause}"))?;
            let rows = stmt.query_map([arg], |r| decode(r.get(0)?))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?)
    }

    pub(crate) fn rule_secret(&self, rule: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.db.with_connection(|conn| {
            conn.query_row(
                "SELECT sealed FROM sync_rule_secrets WHERE rule = ?1",
                [rule],
                |r| r.get(0),
            )
            .optional()
        })?)
    }

    // ---- runs ----

    pub(crate) fn insert_sync_run(&self, run: &Run) -> Result<()> {
        let body = serde_json::to_string(run)?;
        self.db.with_connection(|conn| {
            conn.execute(
                "INSERT INTO sync_runs (id, rule, seq, state, body)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sync_runs), ?3, ?4)",
                params![run.id, run.rule, run.state.as_str(), body],
            )
        })?;
        Ok(())
    }

    pub(crate) fn update_sync_run(&self, run: &Run) -> Result<()> {
        let body = serde_json::to_string(run)?;
        self.db.with_connection(|conn| {
            conn.execute(
                "UPDATE sync_runs SET state = ?2, body = ?3 WHERE id = ?1",
                params![run.id, run.state.as_str(), body],
            )
        })?;
        Ok(())
    }

    pub(crate) fn sync_run(&self, id: &str) -> Result<Option<Run>> {
        Ok(self.db.with_connection(|conn| {
            conn.query_row("SELECT body FROM sync_runs WHERE id = ?1", [id], |r| {
                decode(r.get(0)?)
            })
            .optional()
        })?)
    }

    /// A rule's runs, newest first.
    pub(crate) fn sync_runs(&self, rule: &str, limit: u32, offset: u32) -> Result<Vec<Run>> {
        Ok(self.db.with_connection(|conn| {
            let mut stmt = conn.prepare(
                "SELECT body FROM sync_runs WHERE rule = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3",
            )?;
            let rows = stmt.query_map(params![rule, limit, offset], |r| decode(r.get(0)?))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?)
    }

    /// Runs the last process left going, to start again.
    pub(crate) fn unfinished_sync_runs(&self) -> Result<Vec<Run>> {
        Ok(self.db.with_connection(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT body FROM sync_runs WHERE state IN ('{}', '{}') ORDER BY seq",
                RunState::Running.as_str(),
                RunState::Waiting.as_str()
            ))?;
            let rows = stmt.query_map([], |r| decode(r.get(0)?))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?)
    }
}
