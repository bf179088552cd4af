//! What the registry keeps in the metadata database: repositories, manifests and the
//! digests they refer to, tags, each repository's links to blobs, and upload sessions.
//!
//! Blob bytes live in [`crate::storage`]; these rows say which repository may see them.
//! A blob is readable in a repository only through a link (made by an upload finishing
//! there, or by a mount from a repository the caller can read), so a digest learnt from a
//! private project cannot be pulled, or referenced from a manifest, in another project.
//!
//! Times that the garbage collector compares are integer milliseconds since the epoch.
//! The SQL is written once for both engines (`ON CONFLICT`, no SQLite-only functions;
//! see [`super::sql`]).

use super::Metadata;
use super::sql::{FromValue, Row, Sql};
use crate::manifest::RefKind;
use anyhow::Result;
use hoist_common::clock::now_ms;
use std::collections::HashSet;

/// A tag as the web UI lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagDetail {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    pub manifest_size: u64,
    pub updated_ms: i64,
    /// The canonical source an import copied the tag from; none for a push.
    pub imported_from: Option<String>,
    pub import_task: Option<String>,
}

/// A tag an import wrote, with the source digest it was copied from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedTag {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub source_digest: String,
}

/// A manifest stored in a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestRecord {
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    /// The digest of the manifest this one refers to (`subject`), for referrers.
    pub subject: Option<String>,
    pub size: u64,
    /// The manifest's `annotations` as JSON, for referrers.
    pub annotations: Option<String>,
    pub created_ms: i64,
}

fn manifest_row(r: &Row) -> Result<ManifestRecord> {
    Ok(ManifestRecord {
        repository: r.get(0)?,
        digest: r.get(1)?,
        media_type: r.get(2)?,
        artifact_type: r.get(3)?,
        subject: r.get(4)?,
        size: r.get(5)?,
        annotations: r.get(6)?,
        created_ms: r.get(7)?,
    })
}

const MANIFEST_COLUMNS: &str =
    "repository, digest, media_type, artifact_type, subject, size, annotations, created_ms";

/// Makes the repository's row if it has none. The project must exist.
fn ensure_repository(tx: &mut dyn Sql, repository: &str) -> Result<()> {
    let project = repository.split('/').next().unwrap_or(repository);
    tx.execute(
        "INSERT INTO repositories (name, project, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO NOTHING",
        &[&repository, &project, &now_ms()],
    )?;
    Ok(())
}

/// The first column of every row, gathered into a list or a set.
fn column<T: FromValue, C: FromIterator<T>>(rows: Vec<Row>) -> Result<C> {
    rows.iter().map(|r| r.get(0)).collect()
}

impl Metadata {
    // ---- repositories ----

    pub(crate) fn repository_exists(&self, repository: &str) -> Result<bool> {
        self.with_connection(|c| {
            Ok(
                c.query_opt("SELECT 1 FROM repositories WHERE name = ?1", &[&repository])?
                    .is_some(),
            )
        })
    }

    /// How many repositories a project holds.
    pub fn repository_count(&self, project: &str) -> Result<u64> {
        self.with_connection(|c| {
            c.query_one(
                "SELECT COUNT(*) FROM repositories WHERE project = ?1",
                &[&project],
            )?
            .get(0)
        })
    }

    /// Repository names after `last`, in byte order, at most `limit`.
    pub(crate) fn repositories(&self, last: Option<&str>, limit: u64) -> Result<Vec<String>> {
        self.with_connection(|c| {
            column(c.query(
                "SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2",
                &[&last.unwrap_or(""), &limit],
            )?)
        })
    }

    /// Repository names of a project, in byte order.
    pub fn project_repositories(&self, project: &str) -> Result<Vec<String>> {
        self.with_connection(|c| {
            column(c.query(
                "SELECT name FROM repositories WHERE project = ?1 ORDER BY name",
                &[&project],
            )?)
        })
    }

    // ---- blob links ----

    /// Lets `repository` see the blob (after an upload there or a mount into it). Linking
    /// again refreshes the link's time, which the garbage collector's grace period reads.
    pub(crate) fn link_blob(&self, repository: &str, digest: &str, size: u64) -> Result<()> {
        self.transaction(|tx| {
            ensure_repository(tx, repository)?;
            tx.execute(
                "INSERT INTO blob_links (repository, digest, size, linked_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (repository, digest) DO UPDATE SET linked_ms = excluded.linked_ms",
                &[&repository, &digest, &size, &now_ms()],
            )?;
            Ok(())
        })
    }

    /// Whether `repository` may see the blob.
    pub(crate) fn blob_linked(&self, repository: &str, digest: &str) -> Result<bool> {
        self.with_connection(|c| {
            Ok(c.query_opt(
                "SELECT 1 FROM blob_links WHERE repository = ?1 AND digest = ?2",
                &[&repository, &digest],
            )?
            .is_some())
        })
    }

    /// A repository of `project` that may see the blob, to mount it from.
    pub fn repository_with_blob(&self, project: &str, digest: &str) -> Result<Option<String>> {
        self.with_connection(|c| {
            c.query_opt(
                "SELECT b.repository FROM blob_links b JOIN repositories r ON r.name = b.repository
                 WHERE r.project = ?1 AND b.digest = ?2 LIMIT 1",
                &[&project, &digest],
            )?
            .map(|r| r.get(0))
            .transpose()
        })
    }

    pub(crate) fn unlink_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        self.with_connection(|c| {
            Ok(c.execute(
                "DELETE FROM blob_links WHERE repository = ?1 AND digest = ?2",
                &[&repository, &digest],
            )? > 0)
        })
    }

    // ---- upload sessions ----

    /// Records which repository an upload session belongs to, and who opened it when the
    /// authorizer names an owner.
    pub(crate) fn start_upload(
        &self,
        id: &str,
        repository: &str,
        owner: Option<&str>,
    ) -> Result<()> {
        self.with_connection(|c| {
            c.execute(
                "INSERT INTO uploads (id, repository, started_ms, owner) VALUES (?1, ?2, ?3, ?4)",
                &[&id, &repository, &now_ms(), &owner],
            )?;
            Ok(())
        })
    }

    /// The upload sessions that have an owner, with it.
    pub fn upload_owners(&self) -> Result<Vec<(String, String)>> {
        self.with_connection(|c| {
            c.query("SELECT id, owner FROM uploads WHERE owner IS NOT NULL", &[])?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect()
        })
    }

    /// The repository an upload session belongs to.
    pub(crate) fn upload_repository(&self, id: &str) -> Result<Option<String>> {
        self.with_connection(|c| {
            c.query_opt("SELECT repository FROM uploads WHERE id = ?1", &[&id])?
                .map(|r| r.get(0))
                .transpose()
        })
    }

    pub(crate) fn end_upload(&self, id: &str) -> Result<()> {
        self.with_connection(|c| {
            c.execute("DELETE FROM uploads WHERE id = ?1", &[&id])?;
            Ok(())
        })
    }

    pub(crate) fn upload_count(&self) -> Result<u64> {
        self.with_connection(|c| c.query_one("SELECT COUNT(*) FROM uploads", &[])?.get(0))
    }

    /// Upload sessions started before `before_ms`.
    pub(crate) fn uploads_started_before(&self, before_ms: i64) -> Result<Vec<String>> {
        self.with_connection(|c| {
            column(c.query(
                "SELECT id FROM uploads WHERE started_ms < ?1",
                &[&before_ms],
            )?)
        })
    }

    // ---- manifests and tags ----

    /// Stores a manifest, what it refers to, and optionally a tag pointing at it, in one
    /// transaction. Storing the same manifest again only moves the tag.
    pub fn put_manifest(
        &self,
        record: &ManifestRecord,
        refs: &[(String, RefKind)],
        tag: Option<&str>,
    ) -> Result<()> {
        self.transaction(|tx| {
            ensure_repository(tx, &record.repository)?;
            tx.execute(
                "INSERT INTO manifests (repository, digest, media_type, artifact_type, subject,
                                        size, annotations, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (repository, digest) DO NOTHING",
                &[
                    &record.repository,
                    &record.digest,
                    &record.media_type,
                    &record.artifact_type,
                    &record.subject,
                    &record.size,
                    &record.annotations,
                    &record.created_ms,
                ],
            )?;
            for (digest, kind) in refs {
                tx.execute(
                    "INSERT INTO manifest_refs (repository, manifest, digest, kind)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    &[&record.repository, &record.digest, digest, &kind.as_str()],
                )?;
            }
            if let Some(tag) = tag {
                tx.execute(
                    "INSERT INTO tags (repository, name, digest, updated_ms)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (repository, name)
                     DO UPDATE SET digest = excluded.digest, updated_ms = excluded.updated_ms,
                                   imported_from = NULL, import_task = NULL,
                                   source_digest = NULL",
                    &[&record.repository, &tag, &record.digest, &now_ms()],
                )?;
            }
            Ok(())
        })
    }

    pub(crate) fn manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ManifestRecord>> {
        self.with_connection(|c| {
            c.query_opt(
                &format!(
                    "SELECT {MANIFEST_COLUMNS} FROM manifests WHERE repository = ?1 AND digest = ?2"
                ),
                &[&repository, &digest],
            )?
            .as_ref()
            .map(manifest_row)
            .transpose()
        })
    }

    /// The manifest a tag points at.
    pub fn tagged_manifest(&self, repository: &str, tag: &str) -> Result<Option<ManifestRecord>> {
        let columns = MANIFEST_COLUMNS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.with_connection(|c| {
            c.query_opt(
                &format!(
                    "SELECT {columns} FROM manifests m JOIN tags t
                     ON t.repository = m.repository AND t.digest = m.digest
                     WHERE t.repository = ?1 AND t.name = ?2"
                ),
                &[&repository, &tag],
            )?
            .as_ref()
            .map(manifest_row)
            .transpose()
        })
    }

    /// Deletes a manifest, its tags and its references.
    pub(crate) fn delete_manifest(&self, repository: &str, digest: &str) -> Result<bool> {
        self.transaction(|tx| {
            // The foreign keys cascade too; deleting explicitly keeps this correct on a
            // connection where they are off.
            tx.execute(
                "DELETE FROM tags WHERE repository = ?1 AND digest = ?2",
                &[&repository, &digest],
            )?;
            tx.execute(
                "DELETE FROM manifest_refs WHERE repository = ?1 AND manifest = ?2",
                &[&repository, &digest],
            )?;
            let n = tx.execute(
                "DELETE FROM manifests WHERE repository = ?1 AND digest = ?2",
                &[&repository, &digest],
            )?;
            Ok(n > 0)
        })
    }

    pub fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool> {
        self.with_connection(|c| {
            Ok(c.execute(
                "DELETE FROM tags WHERE repository = ?1 AND name = ?2",
                &[&repository, &tag],
            )? > 0)
        })
    }

    /// Notes that an import put `tag` on `digest` in `repository`, copied from
    /// `source` (whose manifest was `source_digest`, when known), unless a push has moved
    /// the tag since.
    pub fn record_tag_import(
        &self,
        repository: &str,
        tag: &str,
        digest: &str,
        source: &str,
        source_digest: Option<&str>,
        task: &str,
    ) -> Result<()> {
        self.with_connection(|c| {
            c.execute(
                "UPDATE tags SET imported_from = ?4, import_task = ?5, source_digest = ?6
                 WHERE repository = ?1 AND name = ?2 AND digest = ?3",
                &[&repository, &tag, &digest, &source, &task, &source_digest],
            )?;
            Ok(())
        })
    }

    /// A project's tags that an import copied from a known source digest.
    pub fn imported_tags(&self, project: &str) -> Result<Vec<ImportedTag>> {
        self.with_connection(|c| {
            c.query(
                "SELECT t.repository, t.name, t.digest, t.source_digest
                 FROM tags t JOIN repositories r ON r.name = t.repository
                 WHERE r.project = ?1 AND t.source_digest IS NOT NULL",
                &[&project],
            )?
            .iter()
            .map(|r| {
                Ok(ImportedTag {
                    repository: r.get(0)?,
                    tag: r.get(1)?,
                    digest: r.get(2)?,
                    source_digest: r.get(3)?,
                })
            })
            .collect()
        })
    }

    /// A project's tags with their manifests and where they came from, by repository
    /// and newest first, at most `limit`.
    pub fn project_tags(&self, project: &str, limit: u64) -> Result<Vec<TagDetail>> {
        self.with_connection(|c| {
            c.query(
                "SELECT t.repository, t.name, t.digest, m.media_type, m.size, t.updated_ms,
                        t.imported_from, t.import_task
                 FROM tags t
                 JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
                 JOIN repositories r ON r.name = t.repository
                 WHERE r.project = ?1
                 ORDER BY t.repository, t.updated_ms DESC, t.name
                 LIMIT ?2",
                &[&project, &limit],
            )?
            .iter()
            .map(|r| {
                Ok(TagDetail {
                    repository: r.get(0)?,
                    tag: r.get(1)?,
                    digest: r.get(2)?,
                    media_type: r.get(3)?,
                    manifest_size: r.get(4)?,
                    updated_ms: r.get(5)?,
                    imported_from: r.get(6)?,
                    import_task: r.get(7)?,
                })
            })
            .collect()
        })
    }

    /// Tag names after `last`, in byte order, at most `limit`.
    pub(crate) fn tags(
        &self,
        repository: &str,
        last: Option<&str>,
        limit: u64,
    ) -> Result<Vec<String>> {
        self.with_connection(|c| {
            column(c.query(
                "SELECT name FROM tags WHERE repository = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
                &[&repository, &last.unwrap_or(""), &limit],
            )?)
        })
    }

    /// Manifests in `repository` whose subject is `subject`, optionally of one artifact
    /// type, oldest first.
    pub fn referrers(
        &self,
        repository: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ManifestRecord>> {
        self.with_connection(|c| {
            c.query(
                &format!(
                    "SELECT {MANIFEST_COLUMNS} FROM manifests
                     WHERE repository = ?1 AND subject = ?2
                       AND (CAST(?3 AS TEXT) IS NULL OR artifact_type = ?3)
                     ORDER BY created_ms, digest"
                ),
                &[&repository, &subject, &artifact_type],
            )?
            .iter()
            .map(manifest_row)
            .collect()
        })
    }

    // ---- garbage collection ----

    /// Digests some manifest keeps alive: every manifest, and everything a manifest
    /// refers to (in any repository: the store is shared).
    pub(crate) fn gc_referenced(&self) -> Result<HashSet<String>> {
        self.with_connection(|c| {
            column(c.query(
                "SELECT digest FROM manifests UNION SELECT digest FROM manifest_refs",
                &[],
            )?)
        })
    }

    /// Digests some repository was linked to at or after `since_ms`: an upload that
    /// finished, or a mount, recently, which a manifest may be about to refer to.
    pub(crate) fn gc_recently_linked(&self, since_ms: i64) -> Result<HashSet<String>> {
        self.with_connection(|c| {
            column(c.query(
                "SELECT digest FROM blob_links WHERE linked_ms >= ?1",
                &[&since_ms],
            )?)
        })
    }

    /// Forgets every link to a blob that was deleted from storage.
    pub(crate) fn forget_blob(&self, digest: &str) -> Result<()> {
        self.with_connection(|c| {
            c.execute("DELETE FROM blob_links WHERE digest = ?1", &[&digest])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(repo: &str, digest: &str, subject: Option<&str>) -> ManifestRecord {
        ManifestRecord {
            repository: repo.into(),
            digest: digest.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: Some("application/x.test".into()),
            subject: subject.map(Into::into),
            size: 10,
            annotations: None,
            created_ms: now_ms(),
        }
    }

    #[test]
    fn deleting_a_project_removes_its_repositories_manifests_and_tags() {
        let db = Metadata::in_memory().unwrap();
        db.create_project("team", false).unwrap();
        db.link_blob("team/app", "sha256:l", 3).unwrap();
        db.put_manifest(
            &record("team/app", "sha256:m", None),
            &[("sha256:l".into(), RefKind::Layer)],
            Some("v1"),
        )
        .unwrap();
        db.put_manifest(&record("team/app", "sha256:s", Some("sha256:m")), &[], None)
            .unwrap();
        assert_eq!(db.repository_count("team").unwrap(), 1);
        assert_eq!(db.tags("team/app", None, 10).unwrap(), vec!["v1"]);
        assert_eq!(db.referrers("team/app", "sha256:m", None).unwrap().len(), 1);
        assert!(db.gc_referenced().unwrap().contains("sha256:l"));
        assert!(db.gc_recently_linked(0).unwrap().contains("sha256:l"));
        assert!(db.gc_recently_linked(i64::MAX).unwrap().is_empty());
        assert!(db.delete_project("team").unwrap());
        assert_eq!(db.repository_count("team").unwrap(), 0);
        assert!(db.tags("team/app", None, 10).unwrap().is_empty());
        assert!(!db.blob_linked("team/app", "sha256:l").unwrap());
        assert!(db.gc_referenced().unwrap().is_empty());
        assert!(db.gc_recently_linked(0).unwrap().is_empty());
    }

    #[test]
    fn deleting_a_manifest_removes_its_tags_but_a_tag_delete_keeps_the_manifest() {
        let db = Metadata::in_memory().unwrap();
        db.create_project("team", false).unwrap();
        db.put_manifest(&record("team/app", "sha256:m", None), &[], Some("a"))
            .unwrap();
        db.put_manifest(&record("team/app", "sha256:m", None), &[], Some("b"))
            .unwrap();
        assert!(db.delete_tag("team/app", "a").unwrap());
        assert!(db.manifest("team/app", "sha256:m").unwrap().is_some());
        assert_eq!(
            db.tagged_manifest("team/app", "b").unwrap().unwrap().digest,
            "sha256:m"
        );
        assert!(db.delete_manifest("team/app", "sha256:m").unwrap());
        assert!(db.tagged_manifest("team/app", "b").unwrap().is_none());
        assert!(!db.delete_manifest("team/app", "sha256:m").unwrap());
    }
}
