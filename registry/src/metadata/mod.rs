//! The metadata database: projects and the registry's rows (repositories, manifests,
//! tags, blob links, upload sessions).
//!
//! Two engines behind one interface ([`sql`]): SQLite by default, in WAL mode, through
//! one connection behind a mutex (the host's metadata traffic is small next to its blob
//! traffic, and one writer is what SQLite allows anyway); or PostgreSQL through a pool,
//! for several hosts sharing one database. The methods here block; async code calls
//! them on a blocking thread (the registry through `Registry::db`, the host through its
//! `HostStore::run`), off the async worker threads. The schema grows by numbered
//! migrations, the same for both engines ([`migrations`]).
//!
//! The host keeps its own tables (import tasks, robots, sync rules and runs) in the same
//! database, through [`Metadata::with_connection`] and [`Metadata::transaction`]: one
//! schema version per database, so their schema steps are numbered among the
//! registry's. This crate creates those tables and never queries them.

mod migrations;
mod registry;
pub mod sql;

pub use registry::{ImportedTag, ManifestRecord, TagDetail};

use anyhow::{Context, Result};
use parking_lot::Mutex;
use rusqlite::Connection;
use serde::Serialize;
use sql::{Engine, Row, Sql};
use std::path::Path;

pub struct Metadata {
    engine: Engine,
}

/// A project: the unit of access and the first component of its repositories' names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Project {
    pub name: String,
    pub public: bool,
    pub created_at: String,
}

impl Metadata {
    /// The embedded SQLite database in `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the metadata database {}", path.display()))?;
        Self::opened(conn)
    }

    /// A PostgreSQL database (`postgres://user@host/db`, or a Unix socket folder as the
    /// host: `postgres://user@%2Frun%2Fpostgresql/db`), through a pool of at most
    /// `max_connections`, with `password` unless the URL carries one. Several hosts may
    /// open the same database: the schema is upgraded by whichever comes first, under a
    /// lock.
    pub fn open_postgres(url: &str, password: Option<&str>, max_connections: u32) -> Result<Self> {
        let mut config: postgres::Config = url
            .parse()
            .context("the database url is not a PostgreSQL URL (postgres://user@host/db)")?;
        if let Some(password) = password {
            config.password(password);
        }
        let pool = r2d2::Pool::builder()
            .max_size(max_connections)
            // Connections open as the load asks for them: replicas × max_connections held
            // open from the start would crowd a server's default of 100.
            .min_idle(Some(2.min(max_connections)))
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(sql::PgManager(config))
            .context("connecting to the PostgreSQL database")?;
        let engine = Engine::Postgres(pool);
        migrations::apply_postgres(&engine)?;
        Ok(Self { engine })
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
        migrations::apply_sqlite(&mut conn)?;
        Ok(Self {
            engine: Engine::Sqlite(Mutex::new(conn)),
        })
    }

    /// Whether this is PostgreSQL, which several hosts can share.
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// A connection, for the tables other crates keep here (the host's import tasks,
    /// robots, sync rules and runs). Blocking: from async code, call it on a blocking
    /// thread (`spawn_blocking`).
    pub fn with_connection<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        self.engine.with(f)
    }

    /// A transaction: committed when `f` succeeds, rolled back when it fails.
    pub fn transaction<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        self.engine.transaction(f)
    }

    /// Whether the database answers, for `/readyz`.
    pub(crate) fn ping(&self) -> Result<()> {
        self.with_connection(|c| c.query_one("SELECT 1", &[]).map(|_| ()))
    }

    // ---- projects ----

    /// Creates a project; false when one of that name exists.
    pub fn create_project(&self, name: &str, public: bool) -> Result<bool> {
        self.with_connection(|c| {
            Ok(c.execute(
                "INSERT INTO projects (name, public, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &public, &hoist_common::clock::now_rfc3339()],
            )? == 1)
        })
    }

    pub fn project(&self, name: &str) -> Result<Option<Project>> {
        self.with_connection(|c| {
            c.query_opt(
                "SELECT name, public, created_at FROM projects WHERE name = ?1",
                &[&name],
            )?
            .as_ref()
            .map(project_row)
            .transpose()
        })
    }

    pub fn projects(&self) -> Result<Vec<Project>> {
        self.with_connection(|c| {
            c.query(
                "SELECT name, public, created_at FROM projects ORDER BY name",
                &[],
            )?
            .iter()
            .map(project_row)
            .collect()
        })
    }

    pub fn set_project_public(&self, name: &str, public: bool) -> Result<bool> {
        self.with_connection(|c| {
            Ok(c.execute(
                "UPDATE projects SET public = ?2 WHERE name = ?1",
                &[&name, &public],
            )? == 1)
        })
    }

    /// Deletes a project, and with it everything kept for it (its repositories here, and
    /// the host's rows that refer to the project, such as its import history).
    pub fn delete_project(&self, name: &str) -> Result<bool> {
        self.with_connection(|c| {
            Ok(c.execute("DELETE FROM projects WHERE name = ?1", &[&name])? == 1)
        })
    }
}

fn project_row(row: &Row) -> Result<Project> {
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
