//! One import: resolve the source's manifests, move the blobs the target lacks, then push
//! the manifests, children before their index and the tag last, so the target never shows
//! a tag whose content is incomplete.

use crate::executor::{self, Executor, now, sleep};
use crate::http::{BodyStream, HttpError, Response, SpliceError, Timeouts, Upload};
use crate::manifest::{self, Filtered, Parsed, PlatformFilter};
use crate::progress::{BlobProgress, BlobState, Field, ImportError, ManifestInfo, Phase, Status};
use crate::reference::Reference;
use crate::referrer::{self, ReferrerOptions};
use crate::referrers::{self, Finder, Found};
use crate::registry::{Client, Settings, Started};
use crate::retry;
use crate::throttle::Throttle;
use crate::url::Url;
use oci_spec::image::Descriptor;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use wasi::http::types::Method;

/// Blob transfers in flight at once when the request does not say: as many as skopeo's
/// default, which the copy benchmark showed to matter on images of many layers.
pub const DEFAULT_CONCURRENCY: u32 = 6;
/// A ceiling on what a request may ask for: each transfer holds a couple of MiB of host
/// buffers, and registries throttle clients that open many more connections.
const MAX_CONCURRENCY: u32 = 32;

/// What the caller asked for, in native types.
pub struct ImportSpec {
    pub source: String,
    pub target: String,
    pub platforms: Vec<PlatformFilter>,
    pub endpoints: Vec<(String, Vec<String>)>,
    pub insecure: Vec<String>,
    pub concurrency: u32,
    pub max_retries: u32,
    pub chunk_size: Option<u64>,
    pub mount_from: Vec<String>,
    pub copy_foreign_layers: bool,
    pub timeouts: Timeouts,
    pub credentials: Vec<(String, String, String)>,
    /// Registries whose credentials the host adds at its HTTP boundary.
    pub host_credentials: Vec<String>,
    /// Which signatures, SBOMs and attestations travel with the image.
    pub referrers: ReferrerOptions,
    /// A ceiling on the whole import's reads from the source, in bytes per second.
    pub max_bytes_per_second: Option<u64>,
    /// The longest `Retry-After` waited for inside the import, in ms (0: two minutes).
    pub max_retry_wait_ms: u32,
    /// Resolve and report the plan, but write nothing.
    pub dry_run: bool,
}

/// A running import and its executor.
pub struct Import {
    executor: Option<Executor>,
    shared: Rc<Shared>,
}

/// What the import's futures share.
struct Shared {
    status: RefCell<Status>,
    cancelled: Cell<bool>,
    finished: Cell<bool>,
    warnings: Rc<RefCell<Vec<String>>>,
}

/// A blob to move, with where it was found.
#[derive(Clone)]
struct Blob {
    index: usize,
    digest: String,
    size: u64,
}

impl Import {
    /// Checks the request and starts the import. Fails before any network call when a
    /// reference or option is invalid.
    pub fn start(spec: ImportSpec) -> Result<Self, ImportError> {
        let source = Reference::parse(&spec.source)
            .map_err(|e| ImportError::invalid(Field::Source, e.to_string()))?;
        let target = Reference::parse(&spec.target)
            .map_err(|e| ImportError::invalid(Field::Target, e.to_string()))?;
        if target.tag().is_none() && target.digest().is_none() {
            return Err(ImportError::invalid(
                Field::Target,
                "name a tag or a digest",
            ));
        }
        let settings = Settings::new(
            &spec.endpoints,
            &spec.insecure,
            &spec.credentials,
            spec.max_retries,
            spec.timeouts,
        )?
        .with_host_credentials(&spec.host_credentials)
        .with_max_retry_wait(spec.max_retry_wait_ms);
        if spec.chunk_size == Some(0) {
            return Err(ImportError::invalid(
                Field::Options,
                "the chunk size must be more than 0 bytes",
            ));
        }
        let concurrency = match spec.concurrency {
            0 => DEFAULT_CONCURRENCY,
            n => n.min(MAX_CONCURRENCY),
        };
        let warnings = Rc::new(RefCell::new(Vec::new()));
        let client = Client::new(settings, warnings.clone());
        let shared = Rc::new(Shared {
            status: RefCell::new(Status::new()),
            cancelled: Cell::new(false),
            finished: Cell::new(false),
            warnings,
        });
        let job = Job {
            client,
            source,
            target,
            platforms: spec.platforms,
            concurrency,
            chunk_size: spec.chunk_size,
            mount_from: spec.mount_from,
            copy_foreign: spec.copy_foreign_layers,
            referrers: spec.referrers,
            throttle: spec.max_bytes_per_second.map(Throttle::new),
            dry_run: spec.dry_run,
            shared: shared.clone(),
        };
        let executor = Executor::new();
        let for_task = shared.clone();
        executor.spawn(async move {
            let outcome = job.run().await;
            let mut status = for_task.status.borrow_mut();
            match outcome {
                Ok(()) => status.phase = Phase::Done,
                Err(e) => {
                    status.phase = Phase::Failed;
                    status.error = Some(e);
                }
            }
            for_task.finished.set(true);
        });
        Ok(Self {
            executor: Some(executor),
            shared,
        })
    }

    /// Works for about `budget_ms`, then reports.
    pub fn advance(&mut self, budget_ms: u32) -> Status {
        if let Some(executor) = self.executor.as_mut() {
            let deadline = now() + u64::from(budget_ms.max(1)) * 1_000_000;
            let shared = self.shared.clone();
            executor.run_until(deadline, || shared.finished.get());
            if self.shared.finished.get() {
                // Dropping the executor releases every stream and connection now.
                self.executor = None;
            }
        }
        self.status()
    }

    pub fn status(&self) -> Status {
        let mut status = self.shared.status.borrow().clone();
        status.warnings = self.shared.warnings.borrow().clone();
        status
    }

    /// Stops every transfer: dropping the futures aborts their requests, so no upload
    /// completes and no tag is written afterwards.
    pub fn cancel(&mut self) {
        if self.shared.finished.get() {
            return;
        }
        self.shared.cancelled.set(true);
        self.executor = None;
        self.shared.finished.set(true);
        let mut status = self.shared.status.borrow_mut();
        status.phase = Phase::Cancelled;
        status.error = Some(ImportError::Cancelled("the import was cancelled".into()));
        for blob in &mut status.blobs {
            if !blob.state.is_settled() {
                blob.state = BlobState::Cancelled;
            }
        }
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The import's work, run as one future on its executor.
struct Job {
    client: Client,
    source: Reference,
    target: Reference,
    platforms: Vec<PlatformFilter>,
    concurrency: u32,
    chunk_size: Option<u64>,
    mount_from: Vec<String>,
    copy_foreign: bool,
    referrers: ReferrerOptions,
    /// Shared by every transfer, so the cap holds for the import as a whole.
    throttle: Option<Throttle>,
    dry_run: bool,
    shared: Rc<Shared>,
}

/// What resolving found: the platform manifests to push, the
/// top manifest (the source's, a filtered index, or the one platform chosen), every blob
/// they need, and each platform manifest's `os/arch`.
struct Resolved {
    pushes: Vec<ManifestToPush>,
    top: ManifestToPush,
    /// Whether the top manifest is a new index that a platform filter wrote.
    rewritten: bool,
    descriptors: Vec<Descriptor>,
    platforms: HashMap<String, String>,
}

/// A manifest to push, in order.
struct ManifestToPush {
    /// The manifest's digest, which it is pushed under (the last one goes under the
    /// target's tag when there is one).
    reference: String,
    media_type: String,
    bytes: Vec<u8>,
}

impl Job {
    async fn run(&self) -> Result<(), ImportError> {
        let Resolved {
            mut pushes,
            top,
            rewritten,
            descriptors,
            platforms,
        } = self.resolve().await?;
        let top_digest = top.reference.clone();
        if let Some(want) = self.target.digest()
            && want != top_digest
        {
            return Err(ImportError::invalid(
                Field::Target,
                format!(
                    "it names the digest {want}, but the image to push has the digest \
                     {top_digest}; name the target by tag, or by the digest it will have"
                ),
            ));
        }
        let finder = Finder::new(
            &self.client,
            self.source.registry(),
            self.source.repository(),
            &self.referrers,
            &self.shared.warnings,
        );
        let subjects = Subjects::of(&pushes, &top, rewritten);
        // A required signature is checked before anything is written.
        if self.referrers.require_signature {
            self.check_signed(&finder, &subjects).await?;
        }
        let blobs = self.plan_blobs(&descriptors);
        pushes.push(top);
        self.shared.status.borrow_mut().manifests = pushes
            .iter()
            .map(|p| ManifestInfo {
                digest: p.reference.clone(),
                media_type: p.media_type.clone(),
                size: p.bytes.len() as u64,
                platform: platforms.get(&p.reference).cloned(),
            })
            .collect();
        if self.dry_run {
            let found = self.find_referrers(&finder, &subjects).await?;
            let mut blobs = blobs;
            blobs.extend(self.plan_blobs(found.iter().flat_map(|f| &f.blobs)));
            self.shared.status.borrow_mut().digest = Some(top_digest);
            return self.mark_present_blobs(&blobs).await;
        }

        self.set_phase(Phase::Copying);
        // The referrers are found while the image's blobs move, and their own (small)
        // blobs are copied beside them, so that only their manifests wait for the
        // subject: finding them takes a few round trips per level, and on a real network
        // (tens of ms each) those now hide behind the layers. On loopback what remains
        // is the registries' CPU for the extra requests (bench/copy.sh).
        let (_, found) =
            futures::future::try_join(self.copy_blobs(blobs, self.concurrency), async {
                let found = self.find_referrers(&finder, &subjects).await?;
                let blobs = self.plan_blobs(found.iter().flat_map(|f| &f.blobs));
                self.copy_blobs(blobs, REFERRER_TRANSFERS).await?;
                Ok(found)
            })
            .await?;

        self.set_phase(Phase::PushingManifests);
        self.push_manifests(&pushes, &found).await?;
        let mut status = self.shared.status.borrow_mut();
        status.target_reference = Some(format!(
            "{}/{}@{top_digest}",
            self.target.registry(),
            self.target.repository()
        ));
        status.digest = Some(top_digest);
        Ok(())
    }

    /// Fetches the source's manifests: the one the reference names (checked against its
    /// digest) and, for an index, each platform's (after the platform filter).
    async fn resolve(&self) -> Result<Resolved, ImportError> {
        let src_reg = self.source.registry();
        let src_repo = self.source.repository();
        let (raw, media, digest) = self
            .client
            .get_manifest(src_reg, src_repo, self.source.manifest_reference())
            .await?;
        if let Some(want) = self.source.digest()
            && want != digest
        {
            return Err(ImportError::DigestMismatch(format!(
                "{src_reg} served {src_repo} with digest {digest}, not {want}"
            )));
        }

        // The manifests to push after the blobs, children first, and the blobs they need.
        let mut pushes: Vec<ManifestToPush> = Vec::new();
        let mut platforms: HashMap<String, String> = HashMap::new();
        let mut descriptors: Vec<Descriptor> = Vec::new();
        let mut rewritten = false;
        let top = match manifest::parse(&media, &raw)? {
            Parsed::Image { config, layers } => {
                descriptors.push(*config);
                descriptors.extend(layers);
                ManifestToPush {
                    reference: digest.clone(),
                    media_type: media.clone(),
                    bytes: raw,
                }
            }
            Parsed::Index { manifests } => {
                let (children, top) = if self.platforms.is_empty() {
                    (manifests, Some((raw, media.clone())))
                } else {
                    match manifest::filter_index(&raw, &manifests, &self.platforms)? {
                        Filtered::Single(d) => (vec![*d], None),
                        Filtered::Index { bytes, kept } => (kept, Some((bytes, media.clone()))),
                    }
                };
                // The platform manifests are fetched at once: each is a round trip.
                let digests: Vec<String> =
                    children.iter().map(|c| c.digest().to_string()).collect();
                let fetched = executor::bounded(
                    MANIFEST_REQUESTS,
                    digests
                        .iter()
                        .map(|d| self.client.get_manifest(src_reg, src_repo, d)),
                )
                .await;
                for ((child, child_digest), got) in children.iter().zip(digests).zip(fetched) {
                    if let Some(p) = manifest::platform_name(child) {
                        platforms.insert(child_digest.clone(), p);
                    }
                    let (bytes, child_media, _) = got?;
                    match manifest::parse(&child_media, &bytes)? {
                        Parsed::Image { config, layers } => {
                            descriptors.push(*config);
                            descriptors.extend(layers);
                        }
                        Parsed::Index { .. } => {
                            return Err(ImportError::UnsupportedMediaType(format!(
                                "{child_digest} is an index inside an index, which Hoist does \
                                 not copy yet"
                            )));
                        }
                    }
                    pushes.push(ManifestToPush {
                        reference: child_digest,
                        media_type: child_media,
                        bytes,
                    });
                }
                rewritten = top.is_some() && !self.platforms.is_empty();
                match top {
                    // A filtered index is a new manifest, digested as the source's was.
                    Some((bytes, media)) => ManifestToPush {
                        reference: crate::registry::digest_as(&digest, &bytes),
                        media_type: media,
                        bytes,
                    },
                    // One platform chosen: its manifest is the image, pushed under the tag.
                    None => pushes.pop().expect("a single platform has one child"),
                }
            }
        };

        Ok(Resolved {
            pushes,
            top,
            rewritten,
            descriptors,
            platforms,
        })
    }

    /// Writes the manifests, children first; then, when there are referrers, the top one
    /// by digest and its referrers; the tag last.
    async fn push_manifests(
        &self,
        pushes: &[ManifestToPush],
        found: &[Found],
    ) -> Result<(), ImportError> {
        let dst_reg = self.target.registry();
        let dst_repo = self.target.repository();
        let (top, children) = pushes.split_last().expect("the top manifest is pushed");
        // The platform manifests are independent of each other: pushed at once.
        self.check_cancelled()?;
        executor::bounded(
            MANIFEST_REQUESTS,
            children
                .iter()
                .map(|push| self.put_manifest(push, &push.reference)),
        )
        .await
        .into_iter()
        .collect::<Result<(), _>>()?;
        if !found.is_empty() {
            // Referrers follow their subject, which is pushed by digest first, and come
            // before the tag, so that a tag never shows without its signatures.
            self.check_cancelled()?;
            self.put_manifest(top, &top.reference).await?;
            referrers::write(&self.client, dst_reg, dst_repo, found, |i| {
                self.shared.status.borrow_mut().referrers[i].copied = true;
            })
            .await?;
        }
        // The top manifest goes under the tag, and only after all it refers to.
        if let Some(tag) = self.target.tag() {
            self.check_cancelled()?;
            self.put_manifest(top, tag).await?;
        } else if found.is_empty() {
            self.check_cancelled()?;
            self.put_manifest(top, &top.reference).await?;
        }
        Ok(())
    }

    /// Pushes `push` under `reference` (its digest, or the target's tag). A tag push names
    /// a digest that is not sha256, or the target would file the manifest under its sha256
    /// digest and the copy's digest would differ.
    async fn put_manifest(
        &self,
        push: &ManifestToPush,
        reference: &str,
    ) -> Result<(), ImportError> {
        let by_tag = reference != push.reference;
        let digest =
            (by_tag && !push.reference.starts_with("sha256:")).then_some(push.reference.as_str());
        self.client
            .put_manifest(
                self.target.registry(),
                self.target.repository(),
                reference,
                digest,
                &push.media_type,
                &push.bytes,
            )
            .await?;
        Ok(())
    }

    /// Refuses the import when a manifest that must be signed has no signature.
    async fn check_signed(
        &self,
        finder: &Finder<'_>,
        subjects: &Subjects,
    ) -> Result<(), ImportError> {
        let unsigned = finder.unsigned(&subjects.must_sign).await?;
        let Some(first) = unsigned.first() else {
            return Ok(());
        };
        let repo = self.source.repository();
        let tag = referrer::cosign_tag(first, "sig");
        let filtered = if subjects.filtered {
            " (a platform filter writes a new index, which no signature of the source's \
             index covers, so each platform must be signed)"
        } else {
            ""
        };
        Err(ImportError::Unsigned(format!(
            "{} has no signature for {}{filtered}: no referrer of a signature type and no \
             {repo}:{tag} tag; sign it at the source, or import it without requiring a \
             signature",
            self.source.familiar(),
            unsigned.join(", ")
        )))
    }

    /// The referrers to copy with the subjects (none when the request turns them off),
    /// listed in the status.
    async fn find_referrers(
        &self,
        finder: &Finder<'_>,
        subjects: &Subjects,
    ) -> Result<Vec<Found>, ImportError> {
        if self.referrers.skip {
            return Ok(Vec::new());
        }
        let found = finder.find(&subjects.all).await?;
        self.shared.status.borrow_mut().referrers = found.iter().map(|f| f.info.clone()).collect();
        Ok(found)
    }

    /// The blobs not planned yet, in manifest order, added to the status; foreign layers
    /// are set aside unless asked for.
    fn plan_blobs<'d>(&self, descriptors: impl IntoIterator<Item = &'d Descriptor>) -> Vec<Blob> {
        let mut status = self.shared.status.borrow_mut();
        let mut seen: HashSet<String> = status.blobs.iter().map(|b| b.digest.clone()).collect();
        let mut blobs = Vec::new();
        for d in descriptors {
            let digest = d.digest().to_string();
            if !seen.insert(digest.clone()) {
                continue;
            }
            let foreign = d.urls().as_ref().is_some_and(|u| !u.is_empty());
            let state = if foreign && !self.copy_foreign {
                self.shared.warnings.borrow_mut().push(format!(
                    "skipped the foreign layer {digest} ({} bytes): it is not distributable; \
                     allow foreign layers to copy it",
                    d.size()
                ));
                BlobState::Foreign
            } else {
                blobs.push(Blob {
                    index: status.blobs.len(),
                    digest: digest.clone(),
                    size: d.size(),
                });
                BlobState::Pending
            };
            status.blobs.push(BlobProgress {
                digest,
                media_type: d.media_type().to_string(),
                size: d.size(),
                bytes_done: 0,
                state,
            });
        }
        blobs
    }

    /// For a dry run: which blobs the target already has.
    async fn mark_present_blobs(&self, blobs: &[Blob]) -> Result<(), ImportError> {
        for blob in blobs {
            if self
                .client
                .blob_exists(
                    self.target.registry(),
                    self.target.repository(),
                    &blob.digest,
                )
                .await?
            {
                self.set_blob(blob.index, BlobState::Skipped);
            }
        }
        Ok(())
    }

    fn set_phase(&self, phase: Phase) {
        self.shared.status.borrow_mut().phase = phase;
    }

    fn set_blob(&self, index: usize, state: BlobState) {
        self.shared.status.borrow_mut().blobs[index].state = state;
    }

    fn check_cancelled(&self) -> Result<(), ImportError> {
        if self.shared.cancelled.get() {
            Err(ImportError::Cancelled("the import was cancelled".into()))
        } else {
            Ok(())
        }
    }

    /// Moves the blobs with at most `transfers` in flight.
    async fn copy_blobs(&self, blobs: Vec<Blob>, transfers: u32) -> Result<(), ImportError> {
        let queue = RefCell::new(blobs.into_iter());
        let first_error: RefCell<Option<ImportError>> = RefCell::new(None);
        let worker = || async {
            loop {
                if first_error.borrow().is_some() {
                    return;
                }
                let Some(blob) = queue.borrow_mut().next() else {
                    return;
                };
                if let Err(e) = self.copy_blob(&blob).await {
                    self.set_blob(blob.index, BlobState::Failed(e.message().to_owned()));
                    first_error.borrow_mut().get_or_insert(e);
                    return;
                }
            }
        };
        let workers: Vec<_> = (0..transfers).map(|_| worker()).collect();
        futures::future::join_all(workers).await;
        match first_error.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn copy_blob(&self, blob: &Blob) -> Result<(), ImportError> {
        let dst_reg = self.target.registry();
        let dst_repo = self.target.repository();
        if self
            .client
            .blob_exists(dst_reg, dst_repo, &blob.digest)
            .await?
        {
            self.set_blob(blob.index, BlobState::Skipped);
            return Ok(());
        }
        // Mounting needs no bytes at all; try each candidate repository of the target.
        let mut upload = None;
        for from in self.mount_from.iter().filter(|f| f.as_str() != dst_repo) {
            match self
                .client
                .mount_or_start(dst_reg, dst_repo, &blob.digest, Some(from))
                .await?
            {
                Started::Mounted => {
                    self.set_blob(blob.index, BlobState::Mounted);
                    return Ok(());
                }
                Started::Refused => {}
                // The registry started an upload instead; keep the newest, drop the rest.
                Started::Upload(url) => {
                    if let Some(previous) = upload.replace(url) {
                        self.client.cancel_upload(dst_reg, dst_repo, previous).await;
                    }
                }
            }
        }
        self.set_blob(blob.index, BlobState::Copying);
        let mut attempt = 0;
        loop {
            let url = match upload.take() {
                Some(url) => url,
                None => match self
                    .client
                    .mount_or_start(dst_reg, dst_repo, &blob.digest, None)
                    .await?
                {
                    Started::Upload(url) => url,
                    Started::Mounted | Started::Refused => {
                        unreachable!("no mount was asked for")
                    }
                },
            };
            match self.transfer(blob, url).await {
                Ok(()) => {
                    self.set_blob(blob.index, BlobState::Done);
                    return Ok(());
                }
                // A failed upload starts again from scratch, within the retry budget.
                Err(ImportError::Network(m)) if attempt < 2 => {
                    attempt += 1;
                    self.shared.warnings.borrow_mut().push(format!(
                        "restarting the upload of {} after: {m}",
                        blob.digest
                    ));
                    self.shared.status.borrow_mut().blobs[blob.index].bytes_done = 0;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Streams the blob from the source into the upload at `url`: one download, resumed
    /// with Range where it breaks, feeding one PUT or a sequence of PATCH chunks.
    async fn transfer(&self, blob: &Blob, url: Url) -> Result<(), ImportError> {
        let dst_reg = self.target.registry();
        let dst_repo = self.target.repository();
        let record = |n: u64| {
            self.shared.status.borrow_mut().blobs[blob.index].bytes_done += n;
        };
        // The source is opened before the upload starts, so that a slow or retried GET
        // never leaves an upload request waiting for its body.
        let mut download = Download::default();
        self.open_source(blob, &mut download).await?;
        match self.chunk_size {
            None => {
                let put_url = url.with_query("digest", &blob.digest);
                let headers = [
                    ("content-type", "application/octet-stream".to_owned()),
                    ("content-length", blob.size.to_string()),
                ];
                let upload = self
                    .client
                    .start_upload(dst_reg, dst_repo, Method::Put, put_url, &headers)
                    .await?;
                let response = self
                    .pump(blob, &mut download, blob.size, upload, &record)
                    .await?;
                if response.status == 201 {
                    response.discard().await;
                    return Ok(());
                }
                let error = self.upload_failure(blob, response).await;
                // A restarted upload may find that an earlier attempt went through.
                if self
                    .client
                    .blob_exists(dst_reg, dst_repo, &blob.digest)
                    .await?
                {
                    return Ok(());
                }
                Err(error)
            }
            Some(chunk) => {
                let mut url = url;
                while download.position < blob.size {
                    let offset = download.position;
                    let len = chunk.min(blob.size - offset);
                    let headers = [
                        ("content-type", "application/octet-stream".to_owned()),
                        ("content-length", len.to_string()),
                        ("content-range", format!("{offset}-{}", offset + len - 1)),
                    ];
                    let upload = self
                        .client
                        .start_upload(dst_reg, dst_repo, Method::Patch, url.clone(), &headers)
                        .await?;
                    let response = self.pump(blob, &mut download, len, upload, &record).await?;
                    if response.status != 202 {
                        return Err(self.upload_failure(blob, response).await);
                    }
                    let location = response.header("location").map(str::to_owned);
                    let answered_at = response.url.clone();
                    response.discard().await;
                    if let Some(location) = location {
                        url = answered_at.join(&location).map_err(ImportError::Registry)?;
                    }
                }
                self.client
                    .finish_upload(dst_reg, dst_repo, url, &blob.digest)
                    .await
            }
        }
    }

    /// The error for an upload request the target refused. Those worth another upload
    /// come back as network errors, which restart the upload: an expired token (after
    /// dropping it) and the retryable statuses.
    async fn upload_failure(&self, blob: &Blob, response: Response) -> ImportError {
        let dst_reg = self.target.registry();
        let status = response.status;
        if status == 401 {
            response.discard().await;
            self.client.forget_tokens(dst_reg);
            return ImportError::Network(format!(
                "{dst_reg} refused the token while uploading {}",
                blob.digest
            ));
        }
        if retry::is_retryable_status(status) {
            response.discard().await;
            return ImportError::Network(format!(
                "{dst_reg} answered {status} to the upload of {}",
                blob.digest
            ));
        }
        self.client
            .error(dst_reg, &format!("the upload of {}", blob.digest), response)
            .await
    }

    /// Opens the source at the download's position unless it is open.
    async fn open_source(&self, blob: &Blob, download: &mut Download) -> Result<(), ImportError> {
        if download.stream.is_none() {
            let response = self
                .client
                .get_blob(
                    self.source.registry(),
                    self.source.repository(),
                    &blob.digest,
                    download.position,
                )
                .await?;
            download.stream = Some(response.into_stream());
        }
        Ok(())
    }

    /// Splices the next `len` bytes of the download into `upload` and returns the
    /// target's answer, reopening the source at the byte where it broke off.
    async fn pump(
        &self,
        blob: &Blob,
        download: &mut Download,
        len: u64,
        upload: Upload,
        record: &impl Fn(u64),
    ) -> Result<Response, ImportError> {
        let src_reg = self.source.registry();
        let dst_reg = self.target.registry();
        let end = download.position + len;
        while download.position < end {
            self.open_source(blob, download).await?;
            let stream = download.stream.as_ref().expect("just opened");
            let mut len = end - download.position;
            if let Some(throttle) = &self.throttle {
                len = len.min(throttle.quantum());
                let wait = throttle.reserve(len, now());
                if wait > 0 {
                    sleep(std::time::Duration::from_nanos(wait)).await;
                }
            }
            match upload.splice_from(stream, len, record).await {
                Ok(n) => download.position += n,
                Err(SpliceError::Source {
                    transferred,
                    reason,
                }) => {
                    download.position += transferred;
                    download.stream = None;
                    download.resumes += 1;
                    if download.resumes > MAX_RESUMES {
                        return Err(ImportError::Network(format!(
                            "the download of {} from {src_reg} kept breaking ({reason})",
                            blob.digest
                        )));
                    }
                    self.shared.warnings.borrow_mut().push(format!(
                        "resuming {} at byte {} after: {reason}",
                        blob.digest, download.position
                    ));
                }
                Err(SpliceError::Target(reason)) => {
                    return Err(ImportError::Network(format!(
                        "the upload of {} to {dst_reg} broke: {reason}",
                        blob.digest
                    )));
                }
                // Refused before the end; the caller reads the refusal.
                Err(SpliceError::Answered(response)) => return Ok(response),
            }
        }
        upload.finish().await.map_err(|e| match e {
            HttpError::Denied(m) => {
                ImportError::DeniedByPolicy(format!("uploading {} to {dst_reg}: {m}", blob.digest))
            }
            e => ImportError::Network(format!("uploading {} to {dst_reg}: {e}", blob.digest)),
        })
    }
}

/// Manifest requests in flight at once while an index's platform manifests are fetched
/// or pushed.
const MANIFEST_REQUESTS: usize = 8;

/// Transfers of referrers' blobs (signatures, SBOMs: kilobytes to a few MiB) beside the
/// image's own: they run while the image's layers move, so an import has at most
/// `concurrency` + this many in flight. Each is a few short requests, whose round trips
/// are what it costs: on loopback, 2 at once left some still going after the layers had
/// landed (a 4 MiB image's copy took 0.05 s longer than with 8).
const REFERRER_TRANSFERS: u32 = 8;

/// The manifests whose referrers travel with the image: every platform manifest copied,
/// and the top one unless a platform filter wrote it anew (no referrer of the source's
/// index names a filtered index). Those that must be signed under `require-signature`:
/// the top one, or each platform when the index was filtered. (One platform chosen is
/// the source's own manifest, pushed as the top one.)
struct Subjects {
    all: Vec<String>,
    must_sign: Vec<String>,
    filtered: bool,
}

impl Subjects {
    fn of(children: &[ManifestToPush], top: &ManifestToPush, filtered: bool) -> Self {
        let mut all: Vec<String> = children.iter().map(|c| c.reference.clone()).collect();
        let must_sign = if filtered {
            all.clone()
        } else {
            all.push(top.reference.clone());
            vec![top.reference.clone()]
        };
        Self {
            all,
            must_sign,
            filtered,
        }
    }
}

/// Times one blob's download may break and be resumed.
const MAX_RESUMES: u32 = 5;

/// A blob's download: one source stream, reopened with Range where it broke.
#[derive(Default)]
struct Download {
    stream: Option<BodyStream>,
    /// The next byte the stream yields.
    position: u64,
    resumes: u32,
}
