//! Garbage collection: frees blobs nothing refers to, and upload sessions left behind.
//!
//! A blob is kept when any of these holds:
//! - it is a manifest in some repository, or some manifest refers to it (config, layer,
//!   child manifest) — in any repository, because blobs are shared between them;
//! - it was written to the store less than the grace period ago;
//! - some repository was linked to it less than the grace period ago.
//!
//! **Why a grace period.** A push uploads its blobs first and its manifest last. In
//! between, which can be minutes for a large image, the blobs are referenced by nothing;
//! a collector that ran then would delete them and the manifest push would fail. Young
//! blobs and young links (an upload finishing renews the file, a mount renews the link)
//! are therefore kept, and the grace period (an hour by default) only needs to be longer
//! than the longest gap between a push's last blob and its manifest. The in-process sweep
//! also holds the registry's collector lock, which every push takes while it checks and
//! records references, so a manifest that refers to an old unreferenced blob cannot slip
//! between the collector's check and its delete either.
//!
//! Upload sessions that have received nothing for `upload_max_age` (a day by default)
//! are abandoned: their data and records are removed. So are, at once, sessions whose
//! owner has ended: the host runs [`sweep_uploads`] on its own, with its import tasks as
//! the owners, so that a crash mid-import leaves no session behind for long.
//!
//! The collector reads every referenced digest into memory (about 100 bytes each), fine
//! for millions of blobs; a mark table in the database is the next step beyond that.

use crate::options::GcOptions;
use crate::state::Registry;
use anyhow::Result;
use hoist_common::clock::{self, ms_of};
use serde::Serialize;
use std::time::SystemTime;

/// What a collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub blobs_kept_young: u64,
    pub uploads_deleted: u64,
}

/// Removes abandoned upload sessions: those idle (no byte received) since before
/// `idle_before`, those whose owner `owner_gone` says has ended (an import task that died
/// with its process, for one), and records whose data is gone. Returns how many.
pub async fn sweep_uploads(
    registry: &Registry,
    idle_before: SystemTime,
    owner_gone: impl Fn(&str) -> bool,
) -> Result<u64> {
    let (storage, metadata) = (registry.storage().clone(), registry.metadata().clone());
    let (on_disk, orphans, owners) = tokio::task::spawn_blocking(move || -> Result<_> {
        let on_disk = storage.list_uploads()?;
        let orphans: Vec<String> = metadata
            .uploads_started_before(ms_of(idle_before))?
            .into_iter()
            .filter(|id| !on_disk.iter().any(|(d, _)| d == id))
            .collect();
        Ok((on_disk, orphans, metadata.upload_owners()?))
    })
    .await??;
    let gone: std::collections::HashSet<&str> = owners
        .iter()
        .filter(|(_, owner)| owner_gone(owner))
        .map(|(id, _)| id.as_str())
        .collect();
    let abandoned: Vec<String> = on_disk
        .iter()
        .filter(|(id, modified)| *modified < idle_before || gone.contains(id.as_str()))
        .map(|(id, _)| id.clone())
        .chain(orphans)
        .collect();
    let mut deleted = 0;
    for id in abandoned {
        // The session's lock keeps a (very late) request on it from racing the delete.
        let _lock = registry.lock_upload(&id).await;
        let (storage, metadata) = (registry.storage().clone(), registry.metadata().clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            storage.cancel_upload(&id)?;
            metadata.end_upload(&id)?;
            Ok(())
        })
        .await??;
        deleted += 1;
    }
    Ok(deleted)
}

/// Runs one collection over the registry's store and database.
pub async fn collect(registry: &Registry, options: &GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    let upload_cutoff = clock::ago(options.upload_max_age);
    let blob_cutoff = clock::ago(options.grace);

    report.uploads_deleted = sweep_uploads(registry, upload_cutoff, |_| false).await?;

    // Blobs, under the collector lock.
    let _exclusive = registry.gc_exclusive().await;
    let (storage, metadata) = (registry.storage().clone(), registry.metadata().clone());
    let swept = tokio::task::spawn_blocking(move || -> Result<GcReport> {
        let mut report = GcReport::default();
        let referenced = metadata.gc_referenced()?;
        let recently_linked = metadata.gc_recently_linked(ms_of(blob_cutoff))?;
        for digest in storage.list_blobs()? {
            if referenced.contains(&digest) {
                continue;
            }
            if recently_linked.contains(&digest) {
                report.blobs_kept_young += 1;
                continue;
            }
            match storage.blob_modified(&digest)? {
                None => continue,
                Some(modified) if modified >= blob_cutoff => {
                    report.blobs_kept_young += 1;
                    continue;
                }
                Some(_) => {}
            }
            let len = storage.blob_len(&digest)?.unwrap_or(0);
            if storage.delete_blob(&digest)? {
                report.blobs_deleted += 1;
                report.bytes_freed += len;
            }
            metadata.forget_blob(&digest)?;
        }
        Ok(report)
    })
    .await??;
    report.blobs_deleted = swept.blobs_deleted;
    report.bytes_freed = swept.bytes_freed;
    report.blobs_kept_young = swept.blobs_kept_young;
    tracing::info!(?report, "garbage collection finished");
    Ok(report)
}
