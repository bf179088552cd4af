//! Finding a copied manifest's referrers in the source and writing them to the target.
//!
//! A source is asked three ways, as signed images are found in the wild: the OCI 1.1
//! referrers API; where a registry has none (404), the referrers tag schema (`sha256-<hex>`
//! holding an index of them); and cosign's legacy tags (`sha256-<hex>.sig`, `.att`,
//! `.sbom`), which most signed images on Docker Hub and GHCR still use. Referrers are
//! followed recursively (a signature of an SBOM), bounded in depth and number.
//!
//! The target is written the same way round: a referrer is pushed with its `subject`, and
//! where the target does not answer `OCI-Subject` (it has no referrers API) the fallback
//! tag's index is kept up to date; a legacy tag is written under its own name.

use crate::executor;
use crate::manifest::{self, OCI_INDEX, Parsed};
use crate::progress::{ImportError, ReferrerInfo};
use crate::referrer::{self, COSIGN_SUFFIXES, Entry, Index, Kind, ManifestFacts, ReferrerOptions};
use crate::registry::Client;
use crate::{auth, url};
use oci_spec::image::Descriptor;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use wasi::http::types::Method;

/// Levels followed below a copied manifest: a signature of an attestation of an SBOM is
/// three; deeper chains are not seen in practice and a loop must end.
const MAX_DEPTH: u32 = 4;
/// Referrers copied with one import at most: a repository that signs every build keeps
/// one or two per manifest, so this only stops a runaway.
const MAX_REFERRERS: usize = 256;
/// Requests in flight at once while finding or writing referrers: enough to hide round
/// trips, few enough not to burst at a registry (an image may have hundreds).
const IN_FLIGHT: usize = 8;

/// Runs `futures` with at most [`IN_FLIGHT`] at once; their outputs in order.
async fn bounded<T>(futures: impl IntoIterator<Item = impl Future<Output = T>>) -> Vec<T> {
    executor::bounded(IN_FLIGHT, futures).await
}

/// A referrers index is a list of descriptors; 4 MiB holds tens of thousands.
const MAX_INDEX_BYTES: u64 = 4 << 20;

/// A referrer found in the source, with what copying it takes.
pub struct Found {
    pub info: ReferrerInfo,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// Its entry for a fallback tag's index.
    pub entry: Entry,
    /// Whether the manifest names its subject (a legacy cosign manifest does not).
    pub has_subject: bool,
    /// 1 for a referrer of a copied manifest, 2 for a referrer of that referrer, ….
    pub depth: u32,
    /// The manifests an index referrer lists, pushed before it.
    pub children: Vec<(String, String, Vec<u8>)>,
    /// Its blobs (configs and layers).
    pub blobs: Vec<Descriptor>,
}

/// One referrer as a listing names it, before its manifest is fetched.
#[derive(Clone)]
struct Listed {
    digest: String,
    /// The artifact type the listing gave, when it gave one.
    artifact_type: Option<String>,
    /// The cosign tag it was found under.
    tag: Option<String>,
}

/// An entry of a referrers index (the API's answer or the fallback tag's).
impl From<Entry> for Listed {
    fn from(e: Entry) -> Self {
        Self {
            digest: e.digest,
            artifact_type: e.artifact_type,
            tag: None,
        }
    }
}

/// Asks one source repository for referrers.
pub struct Finder<'a> {
    client: &'a Client,
    registry: &'a str,
    repository: &'a str,
    options: &'a ReferrerOptions,
    /// Whether the registry has the referrers API; unknown until asked once.
    has_api: Cell<Option<bool>>,
    /// The repository's tags, listed once when first needed.
    tags: RefCell<Option<HashSet<String>>>,
    /// Each subject's direct referrers, asked for once.
    listed: RefCell<HashMap<String, Vec<Listed>>>,
    warnings: &'a RefCell<Vec<String>>,
}

impl<'a> Finder<'a> {
    pub fn new(
        client: &'a Client,
        registry: &'a str,
        repository: &'a str,
        options: &'a ReferrerOptions,
        warnings: &'a RefCell<Vec<String>>,
    ) -> Self {
        Self {
            client,
            registry,
            repository,
            options,
            has_api: Cell::new(None),
            tags: RefCell::new(None),
            listed: RefCell::default(),
            warnings,
        }
    }

    /// Whether each of `subjects` has a signature among its direct referrers.
    pub async fn unsigned(&self, subjects: &[String]) -> Result<Vec<String>, ImportError> {
        let mut unsigned = Vec::new();
        for subject in subjects {
            let listed = self.list(subject).await?;
            if !listed.iter().any(|l| {
                Kind::of(l.artifact_type.as_deref().unwrap_or(""), l.tag.as_deref())
                    == Kind::Signature
            }) {
                unsigned.push(subject.clone());
            }
        }
        Ok(unsigned)
    }

    /// The referrers of `subjects` and, recursively, of theirs, that the options keep:
    /// parents before the referrers that name them.
    pub async fn find(&self, subjects: &[String]) -> Result<Vec<Found>, ImportError> {
        // One level at a time, and each level's listings and fetches at once: a request
        // costs a round trip, and an image of a few platforms has a dozen referrers.
        // The first listing goes alone, so that the tag list and whether the registry
        // has the referrers API are learned once, not by every concurrent listing.
        if let Some(first) = subjects.first() {
            self.list(first).await?;
        }
        // Referrers already taken, by digest or, for a legacy tag, by the tag (one
        // manifest may stand under a tag and in an index; both are written).
        let mut taken: HashSet<String> = HashSet::new();
        let mut queued: HashSet<String> = subjects.iter().cloned().collect();
        let mut level: Vec<String> = subjects.to_vec();
        let mut found = Vec::new();
        for depth in 1..=MAX_DEPTH {
            if level.is_empty() {
                break;
            }
            let listings = bounded(level.iter().map(|s| self.list(s))).await;
            let mut wanted = Vec::new();
            for (subject, listed) in level.iter().zip(listings) {
                for listed in listed? {
                    let key = listed.tag.clone().unwrap_or_else(|| listed.digest.clone());
                    let filtered_out = listed
                        .artifact_type
                        .as_deref()
                        .is_some_and(|t| !self.options.allows(t));
                    if filtered_out || !taken.insert(key) {
                        continue;
                    }
                    if found.len() + wanted.len() >= MAX_REFERRERS {
                        break;
                    }
                    wanted.push((subject.as_str(), listed));
                }
            }
            let fetched = bounded(
                wanted
                    .into_iter()
                    .map(|(subject, listed)| self.fetch(subject, listed, depth)),
            )
            .await;
            let mut next = Vec::new();
            for referrer in fetched {
                let Some(referrer) = referrer? else {
                    continue;
                };
                if queued.insert(referrer.info.digest.clone()) {
                    next.push(referrer.info.digest.clone());
                }
                found.push(referrer);
            }
            if found.len() >= MAX_REFERRERS {
                self.warn(format!(
                    "stopped after {MAX_REFERRERS} referrers; the rest were not copied"
                ));
                break;
            }
            level = next;
        }
        Ok(found)
    }

    /// The direct referrers of `subject`: from the API, else the fallback tag; and its
    /// cosign tags.
    async fn list(&self, subject: &str) -> Result<Vec<Listed>, ImportError> {
        if let Some(listed) = self.listed.borrow().get(subject) {
            return Ok(listed.clone());
        }
        let mut listed = match self.listed_by_api(subject).await? {
            Some(entries) => entries,
            None => self.listed_by_fallback_tag(subject).await?,
        };
        for suffix in COSIGN_SUFFIXES {
            let tag = referrer::cosign_tag(subject, suffix);
            if self.has_tag(&tag).await {
                listed.push(Listed {
                    digest: String::new(),
                    artifact_type: None,
                    tag: Some(tag),
                });
            }
        }
        self.listed
            .borrow_mut()
            .insert(subject.to_owned(), listed.clone());
        Ok(listed)
    }

    /// `GET /v2/<name>/referrers/<digest>`; None when the registry has no such API.
    async fn listed_by_api(&self, subject: &str) -> Result<Option<Vec<Listed>>, ImportError> {
        if self.has_api.get() == Some(false) {
            return Ok(None);
        }
        let mut path = format!("/v2/{}/referrers/{subject}", self.repository);
        // One allowed type can be asked for; the answer is filtered here all the same,
        // since a registry may ignore the filter (it then sends no OCI-Filters-Applied).
        if let [only] = self.options.artifact_types.as_slice() {
            path = format!("{path}?artifactType={}", url::encode(only));
        }
        let scopes = vec![auth::pull_scope(self.repository)];
        let response = self
            .client
            .send(
                self.registry,
                &scopes,
                Method::Get,
                &path,
                &[("accept", OCI_INDEX)],
                None,
            )
            .await?;
        let what = format!("the referrers of {}@{subject}", self.repository);
        match response.status {
            200 => {}
            // No referrers API: distribution 2.8, GHCR, and registries that route the
            // path nowhere (some answer 400 or 405 rather than 404).
            400 | 404 | 405 => {
                response.discard().await;
                self.has_api.set(Some(false));
                return Ok(None);
            }
            _ => return Err(self.client.error(self.registry, &what, response).await),
        }
        self.has_api.set(Some(true));
        let index = self.read_index(&what, response).await?;
        Ok(Some(
            index.manifests.into_iter().map(Listed::from).collect(),
        ))
    }

    /// The index under the referrers tag schema's tag for `subject`, when there is one.
    async fn listed_by_fallback_tag(&self, subject: &str) -> Result<Vec<Listed>, ImportError> {
        let tag = referrer::digest_tag(subject);
        if !self.has_tag(&tag).await {
            return Ok(Vec::new());
        }
        let (bytes, _, _) = self
            .client
            .get_manifest(self.registry, self.repository, &tag)
            .await?;
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
            ImportError::Registry(format!(
                "{} holds {}:{tag}, which is not a referrers index: {e}",
                self.registry, self.repository
            ))
        })?;
        Ok(index.manifests.into_iter().map(Listed::from).collect())
    }

    async fn read_index(
        &self,
        what: &str,
        response: crate::http::Response,
    ) -> Result<Index, ImportError> {
        let bytes = response.bytes(MAX_INDEX_BYTES).await.map_err(|e| {
            ImportError::Network(format!("reading {what} from {}: {e}", self.registry))
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ImportError::Registry(format!("{} sent {what} as bad JSON: {e}", self.registry))
        })
    }

    /// Whether the repository has `tag`, from one listing of its tags. A registry that
    /// does not list tags has none for this purpose, with a warning.
    async fn has_tag(&self, tag: &str) -> bool {
        if self.tags.borrow().is_none() {
            let tags = match self.client.list_tags(self.registry, self.repository).await {
                Ok(tags) => tags.into_iter().collect(),
                Err(e) => {
                    self.warn(format!(
                        "could not list the tags of {} to find cosign signatures and \
                         referrer tags: {}",
                        self.repository,
                        e.message()
                    ));
                    HashSet::new()
                }
            };
            *self.tags.borrow_mut() = Some(tags);
        }
        self.tags.borrow().as_ref().is_some_and(|t| t.contains(tag))
    }

    /// Fetches a listed referrer's manifest and what it refers to; None when it is
    /// filtered out or of a kind Hoist does not copy (with a warning).
    async fn fetch(
        &self,
        subject: &str,
        listed: Listed,
        depth: u32,
    ) -> Result<Option<Found>, ImportError> {
        let reference = listed.tag.clone().unwrap_or_else(|| listed.digest.clone());
        let (bytes, media, digest) = self
            .client
            .get_manifest(self.registry, self.repository, &reference)
            .await?;
        let facts = ManifestFacts::of(&bytes);
        let artifact_type = listed
            .artifact_type
            .unwrap_or_else(|| facts.artifact_type());
        if !self.options.allows(&artifact_type) {
            return Ok(None);
        }
        let mut blobs = Vec::new();
        let mut children = Vec::new();
        match manifest::parse(&media, &bytes) {
            Ok(Parsed::Image { config, layers }) => {
                blobs.push(*config);
                blobs.extend(layers);
            }
            Ok(Parsed::Index { manifests }) => {
                for child in manifests {
                    let child_digest = child.digest().to_string();
                    let (child_bytes, child_media, _) = self
                        .client
                        .get_manifest(self.registry, self.repository, &child_digest)
                        .await?;
                    match manifest::parse(&child_media, &child_bytes)? {
                        Parsed::Image { config, layers } => {
                            blobs.push(*config);
                            blobs.extend(layers);
                        }
                        Parsed::Index { .. } => {
                            self.warn(format!(
                                "left out the referrer {digest}: it nests an index in an index"
                            ));
                            return Ok(None);
                        }
                    }
                    children.push((child_digest, child_media, child_bytes));
                }
            }
            Err(e) => {
                self.warn(format!(
                    "left out the referrer {digest} of {subject}: {}",
                    e.message()
                ));
                return Ok(None);
            }
        }
        let entry = facts.entry(&media, &digest, bytes.len() as u64);
        Ok(Some(Found {
            info: ReferrerInfo {
                kind: Kind::of(&artifact_type, listed.tag.as_deref()),
                digest,
                subject: subject.to_owned(),
                artifact_type,
                tag: listed.tag,
                copied: false,
            },
            has_subject: facts.subject.is_some(),
            depth,
            media_type: media,
            bytes,
            entry,
            children,
            blobs,
        }))
    }

    fn warn(&self, message: String) {
        self.warnings.borrow_mut().push(message);
    }
}

/// Writes found referrers into one target repository, after their subjects and before
/// the tag moves. Calls `copied` with each referrer's index once it is written.
pub async fn write(
    client: &Client,
    registry: &str,
    repository: &str,
    found: &[Found],
    copied: impl Fn(usize),
) -> Result<(), ImportError> {
    // Subjects whose referrers the target did not index itself, with their entries.
    let mut fallback: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    // Level by level, so that a referrer follows its subject; each level at once.
    let deepest = found.iter().map(|f| f.depth).max().unwrap_or(0);
    for depth in 1..=deepest {
        let level: Vec<(usize, &Found)> = found
            .iter()
            .enumerate()
            .filter(|(_, f)| f.depth == depth)
            .collect();
        let written = bounded(level.iter().map(|(_, referrer)| async move {
            for (digest, media, bytes) in &referrer.children {
                client
                    .put_manifest(registry, repository, digest, None, media, bytes)
                    .await?;
            }
            let info = &referrer.info;
            // A legacy tag is written under its name (the digest stays the source's,
            // since the bytes do); a referrer with a subject goes by digest.
            let reference = info.tag.as_deref().unwrap_or(&info.digest);
            let sha512 = (!info.digest.starts_with("sha256:")).then_some(info.digest.as_str());
            client
                .put_manifest(
                    registry,
                    repository,
                    reference,
                    sha512.filter(|_| info.tag.is_some()),
                    &referrer.media_type,
                    &referrer.bytes,
                )
                .await
        }))
        .await;
        for ((i, referrer), took_subject) in level.iter().zip(written) {
            if referrer.has_subject && !took_subject? {
                fallback
                    .entry(referrer.info.subject.clone())
                    .or_default()
                    .push(referrer.entry.clone());
            }
            copied(*i);
        }
    }
    let updates = fallback.into_iter().map(|(subject, entries)| async move {
        let tag = referrer::digest_tag(&subject);
        let mut index = match client.get_manifest(registry, repository, &tag).await {
            Ok((bytes, _, _)) => serde_json::from_slice::<Index>(&bytes).map_err(|e| {
                ImportError::Registry(format!(
                    "{registry} holds {repository}:{tag}, which is not a referrers index, so \
                     the referrers of {subject} cannot be listed there: {e}"
                ))
            })?,
            Err(ImportError::NotFound(_)) => Index::default(),
            Err(e) => return Err(e),
        };
        if index.merge(&entries) {
            let bytes = serde_json::to_vec(&index).expect("an index serialises");
            client
                .put_manifest(registry, repository, &tag, None, OCI_INDEX, &bytes)
                .await?;
        }
        Ok(())
    });
    bounded(updates).await.into_iter().collect()
}
