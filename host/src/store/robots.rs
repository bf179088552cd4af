//! Robot accounts: names, the hashes of their secrets, and their rights per project.

use super::HostStore;
use anyhow::Result;
use hoist_registry::Action;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// A robot's rights on one project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectScope {
    pub project: String,
    pub actions: Vec<Action>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Robot {
    pub name: String,
    pub scopes: Vec<ProjectScope>,
    pub created_at: String,
}

fn robot_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Robot, String)> {
    let scopes: String = row.get(2)?;
    Ok((
        Robot {
            name: row.get(0)?,
            scopes: serde_json::from_str(&scopes).unwrap_or_default(),
            created_at: row.get(3)?,
        },
        row.get(1)?,
    ))
}

impl HostStore {
    /// Creates a robot; false when the name is taken.
    pub fn create_robot(&self, robot: &Robot, secret_sha256: &str) -> Result<bool> {
        let scopes = serde_json::to_string(&robot.scopes)?;
        let changed = self.db.with_connection(|conn| {
            conn.execute(
                "INSERT INTO robots (name, secret_sha256, scopes, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                params![robot.name, secret_sha256, scopes, robot.created_at],
            )
        })?;
        Ok(changed == 1)
    }

    /// A robot and the hash of its secret.
    pub fn robot(&self, name: &str) -> Result<Option<(Robot, String)>> {
        Ok(self.db.with_connection(|conn| {
            conn.query_row(
                "SELECT name, secret_sha256, scopes, created_at FROM robots WHERE name = ?1",
                [name],
                robot_row,
            )
            .optional()
        })?)
    }

    pub fn robots(&self) -> Result<Vec<Robot>> {
        Ok(self.db.with_connection(|conn| {
            let mut stmt = conn.prepare(
                "SELECT name, secret_sha256, scopes, created_at FROM robots ORDER BY name",
            )?;
            let rows = stmt.query_map([], robot_row)?;
            rows.map(|r| r.map(|(robot, _)| robot))
                .collect::<rusqlite::Result<Vec<_>>>()
        })?)
    }

    pub fn delete_robot(&self, name: &str) -> Result<bool> {
        let deleted = self
            .db
            .with_connection(|conn| conn.execute("DELETE FROM robots WHERE name = ?1", [name]))?;
        Ok(deleted == 1)
    }
}
