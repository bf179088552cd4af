//! The schema, as numbered steps, the same for SQLite and PostgreSQL (PostgreSQL's
//! types differ in name only: [`postgres_ddl`]). A SQLite database records the last step
//! it took in `PRAGMA user_version`; opening it applies the steps after that one, each in
//! its own transaction with its version number, so a file is never left half-upgraded.
//! PostgreSQL keeps the number in `hoist_schema`. Steps are only ever appended.
//!
//! The steps include the host's tables (tasks and their secrets, robots, sync rules and
//! runs) and the tag columns imports fill: SQLite keeps one version per file, and one
//! sequence is what lets a database written by any earlier release open and upgrade in
//! order. The registry creates those tables but never queries them; the host does,
//! through `Metadata::with_connection`.

use super::sql::Engine;
use anyhow::{Context, Result};
use rusqlite::Connection;

const STEPS: &[&str] = &[
    // 1: projects, import tasks, and the tasks' sealed credentials (kept apart, so that
    // no query of tasks can return them).
    "CREATE TABLE projects (
         name TEXT PRIMARY KEY,
         public INTEGER NOT NULL,
         created_at TEXT NOT NULL
     );
     CREATE TABLE tasks (
         id TEXT PRIMARY KEY,
         project TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
         seq INTEGER NOT NULL,
         state TEXT NOT NULL,
         source_canonical TEXT NOT NULL,
         target TEXT NOT NULL,
         body TEXT NOT NULL
     );
     CREATE INDEX tasks_by_project ON tasks (project, seq DESC);
     CREATE INDEX tasks_active ON tasks (source_canonical, target) WHERE state IN ('queued', 'running');
     CREATE TABLE task_secrets (
         task TEXT PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
         sealed BLOB NOT NULL
     );",
    // 2: the registry: repositories (inside projects), manifests with what they refer
    // to, tags, the blobs each repository may see, and upload sessions. Deleting a
    // project cascades to all of it; the blobs themselves are left to the garbage
    // collector. Times the collector compares are integer milliseconds.
    "CREATE TABLE repositories (
         name TEXT PRIMARY KEY,
         project TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
         created_ms INTEGER NOT NULL
     );
     CREATE INDEX repositories_by_project ON repositories (project, name);
     CREATE TABLE manifests (
         repository TEXT NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
         digest TEXT NOT NULL,
         media_type TEXT NOT NULL,
         artifact_type TEXT,
         subject TEXT,
         size INTEGER NOT NULL,
         annotations TEXT,
         created_ms INTEGER NOT NULL,
         PRIMARY KEY (repository, digest)
     );
     CREATE INDEX manifests_by_subject ON manifests (repository, subject)
         WHERE subject IS NOT NULL;
     CREATE TABLE manifest_refs (
         repository TEXT NOT NULL,
         manifest TEXT NOT NULL,
         digest TEXT NOT NULL,
         kind TEXT NOT NULL,
         PRIMARY KEY (repository, manifest, digest),
         FOREIGN KEY (repository, manifest) REFERENCES manifests (repository, digest)
             ON DELETE CASCADE
     );
     CREATE INDEX manifest_refs_by_digest ON manifest_refs (digest);
     CREATE TABLE tags (
         repository TEXT NOT NULL,
         name TEXT NOT NULL,
         digest TEXT NOT NULL,
         updated_ms INTEGER NOT NULL,
         PRIMARY KEY (repository, name),
         FOREIGN KEY (repository, digest) REFERENCES manifests (repository, digest)
             ON DELETE CASCADE
     );
     CREATE INDEX tags_by_digest ON tags (repository, digest);
     CREATE TABLE blob_links (
         repository TEXT NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
         digest TEXT NOT NULL,
         size INTEGER NOT NULL,
         linked_ms INTEGER NOT NULL,
         PRIMARY KEY (repository, digest)
     );
     CREATE INDEX blob_links_by_digest ON blob_links (digest, linked_ms);
     CREATE TABLE uploads (
         id TEXT PRIMARY KEY,
         repository TEXT NOT NULL,
         started_ms INTEGER NOT NULL
     );",
    // 3: robot accounts: a name, the SHA-256 of their secret, and their rights per
    // project as JSON.
    "CREATE TABLE robots (
         name TEXT PRIMARY KEY,
         secret_sha256 TEXT NOT NULL,
         scopes TEXT NOT NULL,
         created_at TEXT NOT NULL
     );",
    // 4: where a tag came from, for the web UI: the source an import copied it from and
    // the import's task. Both are empty for a tag a client pushed; a push moves the tag
    // and empties them again.
    "ALTER TABLE tags ADD COLUMN imported_from TEXT;
     ALTER TABLE tags ADD COLUMN import_task TEXT;",
    // 5: sync. A tag remembers the source digest it was copied from, so that a sync run
    // compares upstream with it and asks the target nothing (with a platform filter the
    // target's digest differs from the source's). Rules, their sealed source credentials
    // (apart, as a task's), and their runs, the record of each as JSON beside the
    // columns queries filter on.
    "ALTER TABLE tags ADD COLUMN source_digest TEXT;
     CREATE TABLE sync_rules (
         id TEXT PRIMARY KEY,
         project TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         enabled INTEGER NOT NULL,
         next_due_ms INTEGER,
         body TEXT NOT NULL,
         UNIQUE (project, name)
     );
     CREATE TABLE sync_rule_secrets (
         rule TEXT PRIMARY KEY REFERENCES sync_rules (id) ON DELETE CASCADE,
         sealed BLOB NOT NULL
     );
     CREATE TABLE sync_runs (
         id TEXT PRIMARY KEY,
         rule TEXT NOT NULL REFERENCES sync_rules (id) ON DELETE CASCADE,
         seq INTEGER NOT NULL,
         state TEXT NOT NULL,
         body TEXT NOT NULL
     );
     CREATE INDEX sync_runs_by_rule ON sync_runs (rule, seq DESC);",
    // 6: who opened an upload session (an import task, through the authorizer), so that
    // the sessions of a task that died with its process are removed at once.
    "ALTER TABLE uploads ADD COLUMN owner TEXT;",
    // 7: a task waiting for its source's quota is still active: a second import of it
    // merges into it, and a restart resumes it.
    "DROP INDEX tasks_active;
     CREATE INDEX tasks_active ON tasks (source_canonical, target)
         WHERE state IN ('queued', 'running', 'waiting');",
    // 8: replicas sharing one database share its tasks: the replica running a task holds
    // a lease on it until a time it keeps renewing, so that another takes the task over
    // when the lease runs out; a cancel asked of a replica that is not running the task
    // is left here for the one that is.
    "ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
     ALTER TABLE tasks ADD COLUMN lease_until_ms INTEGER;
     ALTER TABLE tasks ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;",
];

fn too_new(current: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "the metadata database is at schema version {current}, newer than this host knows \
         ({}); run a newer host or restore a backup",
        STEPS.len()
    )
}

pub(super) fn apply_sqlite(conn: &mut Connection) -> Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > STEPS.len() {
        return Err(too_new(current));
    }
    for (i, step) in STEPS.iter().enumerate().skip(current) {
        let version = i + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(step)
            .with_context(|| format!("applying schema step {version}"))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

/// Any number of hosts may start at once against one PostgreSQL database: the first to
/// take this advisory lock upgrades the schema, the others wait and find it done.
const MIGRATION_LOCK: i64 = 0x686f_6973_745f_6462; // "hoist_db"

/// The same steps on PostgreSQL, whose DDL (unlike SQLite's) is transactional: every
/// pending step and the version commit together. The version lives in `hoist_schema`.
pub(super) fn apply_postgres(engine: &Engine) -> Result<()> {
    let Engine::Postgres(pool) = engine else {
        unreachable!("called for PostgreSQL only")
    };
    let mut conn = pool.get()?;
    let (client, _) = conn.parts();
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS hoist_schema (version BIGINT NOT NULL)")?;
    let current = match tx.query_opt("SELECT version FROM hoist_schema", &[])? {
        Some(row) => row.get::<_, i64>(0) as usize,
        None => {
            tx.execute("INSERT INTO hoist_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if current > STEPS.len() {
        return Err(too_new(current));
    }
    for (i, step) in STEPS.iter().enumerate().skip(current) {
        tx.batch_execute(&postgres_ddl(step))
            .with_context(|| format!("applying schema step {} on PostgreSQL", i + 1))?;
    }
    tx.execute(
        "UPDATE hoist_schema SET version = $1",
        &[&(STEPS.len() as i64)],
    )?;
    tx.commit()?;
    Ok(())
}

/// A step in PostgreSQL's types: SQLite's INTEGER is 64 bits (PostgreSQL's is 32), BLOB
/// is BYTEA, and text compares byte by byte, as in SQLite, so that pages of the catalog
/// and tag lists (`name > ?`) follow the byte order the distribution spec asks for
/// whatever the database's locale.
pub(super) fn postgres_ddl(step: &str) -> String {
    let mut out = String::with_capacity(step.len() + 64);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(match word.as_str() {
            "INTEGER" => "BIGINT",
            "BLOB" => "BYTEA",
            "TEXT" => "TEXT COLLATE \"C\"",
            w => w,
        });
        word.clear();
    };
    for c in step.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Every step, for the test that both engines end with the same tables and columns.
#[cfg(test)]
pub(super) fn steps() -> &'static [&'static str] {
    STEPS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_steps_widen_integers_and_compare_text_by_bytes() {
        assert_eq!(
            postgres_ddl("CREATE TABLE t (n INTEGER NOT NULL, s TEXT, b BLOB, tasks_text INTEGER)"),
            "CREATE TABLE t (n BIGINT NOT NULL, s TEXT COLLATE \"C\", b BYTEA, tasks_text BIGINT)"
        );
        for step in steps() {
            assert!(!postgres_ddl(step).contains("INTEGER"));
        }
    }
}
