//! The metadata database: projects, import tasks and their sealed credentials.
//!
//! SQLite by default, in WAL mode, through one connection behind a mutex: the host's
//! metadata traffic is small next to its blob traffic, and one writer is what SQLite
//! allows anyway. Callers in async code go through `spawn_blocking` where a query may
//! take long; the short ones here run inline. The schema grows by numbered migrations,
//! applied in order and recorded in `PRAGMA user_version`.

mod migrations;
mod registry;
mod robots;
mod tasks;

pub use registry::{ManifestRecord, RefKind, TagDetail, now_ms};
pub use robots::Robot;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

pub struct Metadata {
    conn: Mutex<Connection>,
}

/// A project: the unit of access and the first component of its repositories' names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Project {
    pub name: String,
    pub public: bool,
    pub created_at: String,
}

impl Metadata {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the metadata database {}", path.display()))?;
        Self::with_connection(conn)
    }

    pub fn in_memory() -> Result<Self> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(mut conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations::apply(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the database answers, for `/readyz`.
    pub fn ping(&self) -> Result<()> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    // ---- projects ----

    /// Creates a project; false when one of that name exists.
    pub fn create_project(&self, name: &str, public: bool) -> Result<bool> {
        let changed = self.conn().execute(
            "INSERT INTO projects (name, public, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
            params![name, public, crate::tasks::now()],
        )?;
        Ok(changed == 1)
    }

    pub fn project(&self, name: &str) -> Result<Option<Project>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, public, created_at FROM projects WHERE name = ?1",
                [name],
                project_row,
            )
            .optional()?)
    }

    pub fn projects(&self) -> Result<Vec<Project>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT name, public, created_at FROM projects ORDER BY name")?;
        let rows = stmt.query_map([], project_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_project_public(&self, name: &str, public: bool) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE projects SET public = ?2 WHERE name = ?1",
            params![name, public],
        )?;
        Ok(changed == 1)
    }

    /// How many imports a project's history holds.
    pub fn project_task_count(&self, name: &str) -> Result<u64> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM tasks WHERE project = ?1",
            [name],
            |r| r.get(0),
        )?)
    }

    /// Deletes a project and its task history.
    pub fn delete_project(&self, name: &str) -> Result<bool> {
        let changed = self
            .conn()
            .execute("DELETE FROM projects WHERE name = ?1", [name])?;
        Ok(changed == 1)
    }
}

fn project_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        name: row.get(0)?,
        public: row.get(1)?,
        created_at: row.get(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_created_once_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hoist.db");
        let db = Metadata::open(&path).unwrap();
        assert!(db.create_project("team", false).unwrap());
        assert!(
            !db.create_project("team", true).unwrap(),
            "names are unique"
        );
        assert!(db.set_project_public("team", true).unwrap());
        drop(db);
        let db = Metadata::open(&path).unwrap();
        assert!(db.project("team").unwrap().unwrap().public);
        assert_eq!(db.projects().unwrap().len(), 1);
        assert!(db.delete_project("team").unwrap());
        assert!(db.project("team").unwrap().is_none());
    }
}
