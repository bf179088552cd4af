//! The schema, as numbered steps. A database records the last step it took in
//! `PRAGMA user_version`; opening it applies the steps after that one, each in its own
//! transaction with its version number, so a file is never left half-upgraded. Steps are
//! only ever appended.
//!
//! The steps include the host's tables (tasks and their secrets, robots, sync rules and
//! runs) and the tag columns imports fill: SQLite keeps one version per file, and one
//! sequence is what lets a database written by any earlier release open and upgrade in
//! order. The registry creates those tables but never queries them; the host does,
//! through `Metadata::with_connection`.

use anyhow::{Context, Result, bail};
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
];

pub fn apply(conn: &mut Connection) -> Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > STEPS.len() {
        bail!(
            "the metadata database is at schema version {current}, newer than this host \
             knows ({}); run a newer host or restore a backup",
            STEPS.len()
        );
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
