//! The metadata database: projects and the registry's rows (repositories, manifests,
//! tags, blob links, upload sessions).
//!
//! SQLite by default, in WAL mode, through one connection behind a mutex: the host's
//! metadata traffic is small next to its blob traffic, and one writer is what SQLite
//! allows anyway. The methods here block; async code calls them on a blocking thread
//! (the registry through `Registry::db`, the host through its `HostStore::run`), off the
//! async worker threads. The schema grows by numbered migrations, applied in order and
//! recorded in `PRAGMA user_version`.
//!
//! The host keeps its own tables (import tasks, robots, sync rules and runs) in the same
//! file, through [`Metadata::with_connection`]: SQLite has one schema version per file,
//! so their schema steps are numbered among the registry's in [`migrations`]. This crate
//! creates those tables and never queries them.

mod migrations;
mod registry;

pub use registry::{ImportedTag, ManifestRecord, TagDetail};

use anyhow::{Context, Result};
use parking_lot::{Mutex, MutexGuard};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;

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
        Self::opened(conn)
    }

    #[cfg(test)]
    pub(crate) fn in_memory() -> Result<Self> {
        Self::opened(Connection::open_in_memory()?)
    }

    fn opened(mut conn: Connection) -> Result<Self> {
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
        self.conn.lock()
    }

    /// The connection, for the tables other crates keep in this file (the host's import
    /// tasks, robots, sync rules and runs). Blocking: from async code, call it on a blocking thread
    /// (`spawn_blocking`).
    pub fn with_connection<T, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        f(&mut self.conn())
    }

    /// Whether the database answers, for `/readyz`.
    pub(crate) fn ping(&self) -> Result<()> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    // ---- projects ----

    /// Creates a project; false when one of that name exists.
    pub fn create_project(&self, name: &str, public: bool) -> Result<bool> {
        let changed = self.conn().execute(
            "INSERT INTO projects (name, public, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
            params![name, public, hoist_common::clock::now_rfc3339()],
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

    /// Deletes a project, and with it everything kept for it (its repositories here, and
    /// the host's rows that refer to the project, such as its import history).
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
