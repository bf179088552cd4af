//! Reading what a reference names without copying it: the manifest or index, each
//! platform's image and the blobs they need. The CLI's `inspect` runs this; it uses the
//! same registry client (endpoints, auth, retries) as an import.

use crate::executor::Executor;
use crate::http::Timeouts;
use crate::manifest::{self, Parsed};
use crate::progress::{Field, ImportError};
use crate::reference::Reference;
use crate::registry::{Client, Settings};
use std::cell::RefCell;
use std::rc::Rc;

/// An image config larger than this is not read for its platform: configs are a few KiB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How to reach the registry, as for an import.
pub struct InspectSpec {
    pub reference: String,
    pub endpoints: Vec<(String, Vec<String>)>,
    pub insecure: Vec<String>,
    pub credentials: Vec<(String, String, String)>,
    pub max_retries: u32,
    pub timeouts: Timeouts,
}

/// What the reference names.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// The reference, normalised.
    pub reference: String,
    pub digest: String,
    pub media_type: String,
    /// The manifest's raw bytes, exactly as the registry served them.
    pub raw: Vec<u8>,
    pub is_index: bool,
    /// One entry for an image; one per index entry for an index, in the index's order.
    pub images: Vec<ImageSummary>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ImageSummary {
    pub digest: String,
    pub media_type: String,
    /// `os/arch[/variant]`: from the index entry, or from the config of a lone image.
    pub platform: Option<String>,
    /// The config first, then the layers, with their sizes.
    pub blobs: Vec<(String, u64)>,
}

impl Inspection {
    /// The bytes of every distinct blob, counted once even when platforms share it.
    pub fn unique_blob_bytes(&self) -> (usize, u64) {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for (digest, size) in self.images.iter().flat_map(|i| &i.blobs) {
            if seen.insert(digest) {
                total += size;
            }
        }
        (seen.len(), total)
    }
}

/// Fetches the manifest (and an index's children) that `spec.reference` names.
pub fn inspect(spec: InspectSpec) -> Result<Inspection, ImportError> {
    let (mut inspection, warnings) = against_registry(spec, |client, reference| async move {
        run(&client, &reference).await
    })?;
    inspection.warnings = warnings;
    Ok(inspection)
}

/// Runs `work` to its end with a client for the registry `spec` names, as an import's
/// client reaches it; returns its result and the warnings the client gathered.
fn against_registry<T: 'static, F>(
    spec: InspectSpec,
    work: impl FnOnce(Client, Reference) -> F,
) -> Result<(T, Vec<String>), ImportError>
where
    F: Future<Output = Result<T, ImportError>> + 'static,
{
    let reference = Reference::parse(&spec.reference)
        .map_err(|e| ImportError::invalid(Field::Source, e.to_string()))?;
    let settings = Settings::new(
        &spec.endpoints,
        &spec.insecure,
        &spec.credentials,
        spec.max_retries,
        spec.timeouts,
    )?;
    let warnings = Rc::new(RefCell::new(Vec::new()));
    let work = work(Client::new(settings, warnings.clone()), reference);
    let outcome = Rc::new(RefCell::new(None));
    let mut executor = Executor::new();
    let slot = outcome.clone();
    executor.spawn(async move {
        *slot.borrow_mut() = Some(work.await);
    });
    executor.run_until(u64::MAX, || outcome.borrow().is_some());
    let result = outcome
        .take()
        .expect("the executor runs its only future to the end")?;
    Ok((result, warnings.take()))
}

async fn run(client: &Client, reference: &Reference) -> Result<Inspection, ImportError> {
    let registry = reference.registry();
    let repository = reference.repository();
    let (raw, media, digest) = client
        .get_manifest(registry, repository, reference.manifest_reference())
        .await?;
    if let Some(want) = reference.digest()
        && want != digest
    {
        return Err(ImportError::DigestMismatch(format!(
            "{registry} served {repository} with digest {digest}, not {want}"
        )));
    }
    let (is_index, images) = match manifest::parse(&media, &raw)? {
        Parsed::Image { config, layers } => {
            let platform = config_platform(client, reference, &config).await?;
            let blobs = std::iter::once(config.as_ref())
                .chain(&layers)
                .map(|d| (d.digest().to_string(), d.size()))
                .collect();
            let image = ImageSummary {
                digest: digest.clone(),
                media_type: media.clone(),
                platform,
                blobs,
            };
            (false, vec![image])
        }
        Parsed::Index { manifests } => {
            let mut images = Vec::new();
            for child in &manifests {
                let child_digest = child.digest().to_string();
                let (bytes, child_media, _) = client
                    .get_manifest(registry, repository, &child_digest)
                    .await?;
                // A nested index or an artifact of another type still gets its line.
                let blobs = match manifest::parse(&child_media, &bytes) {
                    Ok(Parsed::Image { config, layers }) => std::iter::once(*config)
                        .chain(layers)
                        .map(|d| (d.digest().to_string(), d.size()))
                        .collect(),
                    _ => Vec::new(),
                };
                images.push(ImageSummary {
                    digest: child_digest,
                    media_type: child_media,
                    platform: manifest::platform_name(child),
                    blobs,
                });
            }
            (true, images)
        }
    };
    Ok(Inspection {
        reference: reference.canonical(),
        digest,
        media_type: media,
        raw,
        is_index,
        images,
        warnings: Vec::new(),
    })
}

/// A lone image names its platform only in its config: read it when it is an image
/// config of a sane size. Anything else (an artifact) has no platform.
async fn config_platform(
    client: &Client,
    reference: &Reference,
    config: &oci_spec::image::Descriptor,
) -> Result<Option<String>, ImportError> {
    let media = config.media_type().to_string();
    let is_image_config = media == "application/vnd.oci.image.config.v1+json"
        || media == "application/vnd.docker.container.image.v1+json";
    if !is_image_config || config.size() > MAX_CONFIG_BYTES {
        return Ok(None);
    }
    let digest = config.digest().to_string();
    let response = client
        .get_blob(reference.registry(), reference.repository(), &digest, 0)
        .await?;
    let bytes = response.bytes(MAX_CONFIG_BYTES).await.map_err(|e| {
        ImportError::Network(format!(
            "reading the config {digest} from {}: {e}",
            reference.registry()
        ))
    })?;
    #[derive(serde::Deserialize)]
    struct Config {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let Ok(config) = serde_json::from_slice::<Config>(&bytes) else {
        return Ok(None);
    };
    Ok(match (config.os, config.architecture) {
        (Some(os), Some(arch)) => Some(match config.variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        }),
        _ => None,
    })
}

/// Pages of tags asked for at once; registries cap it (distribution at 1000 by default).
const TAGS_PAGE: u32 = 1000;
/// A tag list larger than this many pages is not a repository to sync tag by tag.
const MAX_TAG_PAGES: usize = 100;
/// One page of the tag list is small JSON.
const MAX_TAGS_BYTES: u64 = 4 << 20;

/// Every tag of the repository that `spec.reference` names (its tag is ignored), in the
/// registry's order, following `Link: <…>; rel="next"` pages.
pub fn list_tags(spec: InspectSpec) -> Result<Vec<String>, ImportError> {
    against_registry(spec, |client, reference| async move {
        tags(&client, &reference).await
    })
    .map(|(tags, _)| tags)
}

async fn tags(client: &Client, reference: &Reference) -> Result<Vec<String>, ImportError> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let registry = reference.registry();
    let repository = reference.repository();
    let scopes = vec![crate::auth::pull_scope(repository)];
    let mut path = format!("/v2/{repository}/tags/list?n={TAGS_PAGE}");
    let mut all = Vec::new();
    for _ in 0..MAX_TAG_PAGES {
        let response = client
            .send(
                registry,
                &scopes,
                wasi::http::types::Method::Get,
                &path,
                &[],
                None,
            )
            .await?;
        if response.status != 200 {
            let what = format!("the tags of {repository}");
            return Err(client.error(registry, &what, response).await);
        }
        let next = response.header("link").and_then(next_page);
        let bytes = response
            .bytes(MAX_TAGS_BYTES)
            .await
            .map_err(|e| ImportError::Network(format!("reading the tags of {repository}: {e}")))?;
        let page: Page = serde_json::from_slice(&bytes)
            .map_err(|e| ImportError::Registry(format!("{registry} sent a bad tag list: {e}")))?;
        all.extend(page.tags.unwrap_or_default());
        match next {
            Some(p) => path = p,
            None => return Ok(all),
        }
    }
    Err(ImportError::Registry(format!(
        "{repository} on {registry} lists more than {} tags",
        MAX_TAG_PAGES as u32 * TAGS_PAGE
    )))
}

/// The path of the next page from `Link: </v2/…?last=x&n=…>; rel="next"`. Only a path on
/// the same registry is followed.
fn next_page(link: &str) -> Option<String> {
    let (target, params) = link.split_once(';')?;
    if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
        return None;
    }
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    target.starts_with('/').then(|| target.to_owned())
}
