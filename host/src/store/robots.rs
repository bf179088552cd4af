//! Robot accounts: names, the hashes of their secrets, and their rights per project.

use super::HostStore;
use anyhow::Result;
use hoist_registry::Action;
use hoist_registry::sql::Row;
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

fn robot_row(row: &Row) -> Result<(Robot, String)> {
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
        let changed = self.db.with_connection(|c| {
            c.execute(
                "INSERT INTO robots (name, secret_sha256, scopes, created_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                &[&robot.name, &secret_sha256, &scopes, &robot.created_at],
            )
        })?;
        Ok(changed == 1)
    }

    /// A robot and the hash of its secret.
    pub fn robot(&self, name: &str) -> Result<Option<(Robot, String)>> {
        self.db.with_connection(|c| {
            c.query_opt(
                "SELECT name, secret_sha256, scopes, created_at FROM robots WHERE name = ?1",
                &[&name],
            )?
            .as_ref()
            .map(robot_row)
            .transpose()
        })
    }

    pub fn robots(&self) -> Result<Vec<Robot>> {
        self.db.with_connection(|c| {
            c.query(
                "SELECT name, secret_sha256, scopes, created_at FROM robots ORDER BY name",
                &[],
            )?
            .iter()
            .map(|r| robot_row(r).map(|(robot, _)| robot))
            .collect()
        })
    }

    pub fn delete_robot(&self, name: &str) -> Result<bool> {
        let deleted = self
            .db
            .with_connection(|c| c.execute("DELETE FROM robots WHERE name = ?1", &[&name]))?;
        Ok(deleted == 1)
    }
}
