//! Manifests as this registry reads them: one typed model for checking a push and for
//! describing an image to people (its size and platforms).
//!
//! A manifest is always stored and served byte for byte; this model only finds what the
//! bytes refer to. It reads OCI manifests and indexes and Docker schema 2 manifests and
//! lists; anything else is refused with a message that says what would be accepted.

use crate::errors::{RegistryError, Result};
use crate::names;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The largest manifest accepted, as distribution's default.
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
];

/// A content descriptor: what a manifest says about one blob or child manifest.
#[derive(Clone, Debug, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// A platform as an index or an image config names it.
#[derive(Clone, Debug, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`; None for attestations' `unknown/unknown` and empty platforms.
    pub fn name(&self) -> Option<String> {
        if self.os.is_empty() || self.architecture.is_empty() || self.os == "unknown" {
            return None;
        }
        Some(match self.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        })
    }
}

/// The fields of a manifest or index this registry reads.
#[derive(Debug, Deserialize)]
pub(crate) struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    pub media_type: Option<String>,
    #[serde(rename = "artifactType")]
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    pub layers: Option<Vec<Descriptor>>,
    pub manifests: Option<Vec<Descriptor>>,
    pub subject: Option<Descriptor>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// Reads manifest bytes, without checking what they refer to.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| {
            RegistryError::manifest_invalid(format!("the manifest is not valid JSON: {e}"))
        })
    }
}

/// An image's config blob, for its platform.
#[derive(Debug, Deserialize)]
pub(crate) struct ImageConfig {
    #[serde(flatten)]
    pub platform: Platform,
}

/// Whether a media type is an image or an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Image,
    Index,
}

/// The kind of a manifest media type, or the refusal that says what is accepted.
pub(crate) fn kind_of(media_type: &str) -> Result<Kind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(Kind::Image),
        OCI_INDEX | DOCKER_LIST => Ok(Kind::Index),
        m if DOCKER_SCHEMA1.contains(&m) => Err(RegistryError::manifest_invalid(format!(
            "{m} (Docker schema 1) is not accepted; convert the image to schema 2 or OCI \
             first, e.g. skopeo copy --format v2s2"
        ))),
        m => Err(RegistryError::manifest_invalid(format!(
            "the manifest media type {m:?} is not one this registry stores; send \
             {OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST} or {DOCKER_LIST} in Content-Type"
        ))),
    }
}

/// How a manifest refers to a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    Config,
    Layer,
    /// A child of an index.
    Manifest,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Config => "config",
            RefKind::Layer => "layer",
            RefKind::Manifest => "manifest",
        }
    }

    /// What a person calls it in an error.
    pub fn describe(self) -> &'static str {
        match self {
            RefKind::Config => "the config blob",
            RefKind::Layer => "the layer",
            RefKind::Manifest => "the manifest",
        }
    }
}

/// One digest a manifest refers to, with the size its descriptor claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub digest: String,
    pub size: u64,
    pub kind: RefKind,
}

/// What a pushed manifest is, once its bytes and media type have been checked.
#[derive(Debug)]
pub struct Checked {
    pub media_type: String,
    /// `artifactType`, else (for an image) the config's media type, as the referrers API
    /// reports it.
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    /// The manifest's annotations as JSON, when it has any.
    pub annotations: Option<String>,
    /// The blobs it needs in the repository (foreign layers left out), then its children.
    pub references: Vec<Reference>,
}

/// The bare media type of a `Content-Type` (no parameters, lowercase).
fn bare(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn descriptor(d: &Descriptor, kind: RefKind, what: &str) -> Result<Reference> {
    names::check_digest(&d.digest).map_err(|e| {
        RegistryError::manifest_invalid(format!("the {what} descriptor: {}", e.message))
    })?;
    let size = u64::try_from(d.size).map_err(|_| {
        RegistryError::manifest_invalid(format!(
            "the {what} descriptor {} has a negative size",
            d.digest
        ))
    })?;
    Ok(Reference {
        digest: d.digest.clone(),
        size,
        kind,
    })
}

/// Checks a pushed manifest's bytes against the `Content-Type` it came with, and lists
/// what it refers to. Its references are not looked up here.
pub fn check(bytes: &[u8], content_type: Option<&str>) -> Result<Checked> {
    let manifest = Manifest::from_slice(bytes)?;
    let declared = content_type.map(bare).filter(|t| !t.is_empty());
    let media_type = match (declared, &manifest.media_type) {
        (Some(ct), Some(mt)) if ct != *mt => {
            return Err(RegistryError::manifest_invalid(format!(
                "the Content-Type says {ct} but the manifest's mediaType says {mt}; send the \
                 manifest's own media type as Content-Type"
            )));
        }
        (Some(ct), _) => ct,
        (None, Some(mt)) => mt.clone(),
        (None, None) => {
            return Err(RegistryError::manifest_invalid(format!(
                "the manifest's media type is unknown: send it in Content-Type (such as \
                 {OCI_MANIFEST})"
            )));
        }
    };
    let kind = kind_of(&media_type)?;
    if manifest.schema_version != Some(2) {
        return Err(RegistryError::manifest_invalid(
            "schemaVersion must be 2 (schema 1 manifests are not accepted)",
        ));
    }
    let mut references = Vec::new();
    let artifact_type = match kind {
        Kind::Image => {
            let Some(config) = &manifest.config else {
                return Err(RegistryError::manifest_invalid(
                    "an image manifest needs a config descriptor (for an artifact without \
                     one, use the empty config application/vnd.oci.empty.v1+json)",
                ));
            };
            references.push(descriptor(config, RefKind::Config, "config")?);
            let Some(layers) = &manifest.layers else {
                return Err(RegistryError::manifest_invalid(
                    "an image manifest needs a layers array (it may be empty)",
                ));
            };
            for layer in layers {
                let reference = descriptor(layer, RefKind::Layer, "layer")?;
                // Foreign layers live at their URLs; this registry never holds them.
                if layer.urls.is_empty() {
                    references.push(reference);
                }
            }
            manifest
                .artifact_type
                .clone()
                .or_else(|| config.media_type.clone())
        }
        Kind::Index => {
            let Some(manifests) = &manifest.manifests else {
                return Err(RegistryError::manifest_invalid(
                    "an index needs a manifests array",
                ));
            };
            for child in manifests {
                references.push(descriptor(child, RefKind::Manifest, "manifest")?);
            }
            manifest.artifact_type.clone()
        }
    };
    let subject = match &manifest.subject {
        Some(s) => Some(descriptor(s, RefKind::Manifest, "subject")?.digest),
        None => None,
    };
    let annotations = manifest
        .annotations
        .as_ref()
        .filter(|a| !a.is_empty())
        .map(|a| serde_json::to_string(a).expect("strings serialize"));
    Ok(Checked {
        media_type,
        artifact_type,
        subject,
        annotations,
        references,
    })
}

/// What an image holds, for people: its size (manifests, configs and layers) and its
/// platforms. Unknown parts are left out rather than guessed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// None when the manifest itself cannot be read.
    pub size: Option<u64>,
    pub platforms: Vec<String>,
}

/// Summarises the manifest `bytes`, reading child manifests and configs with `read`
/// (which gives None for what it cannot read; they are small, so whole reads are fine).
pub fn summarize(bytes: &[u8], read: &dyn Fn(&str) -> Option<Vec<u8>>) -> Summary {
    let Ok(manifest) = Manifest::from_slice(bytes) else {
        return Summary::default();
    };
    let own = bytes.len() as u64;
    // Sizes are the pusher's word (a foreign layer's is never checked), so they add up
    // saturating rather than wrapping round to a small, wrong total.
    let positive = |d: &Descriptor| u64::try_from(d.size).unwrap_or(0);
    let image = |m: &Manifest| -> u64 {
        let layers = m.layers.as_deref().unwrap_or_default().iter().map(positive);
        m.config
            .iter()
            .map(positive)
            .chain(layers)
            .fold(0, u64::saturating_add)
    };
    if let Some(children) = &manifest.manifests {
        let mut size = own;
        let mut platforms = Vec::new();
        for child in children {
            size = size.saturating_add(positive(child));
            platforms.extend(child.platform.as_ref().and_then(Platform::name));
            if let Some(m) = read(&child.digest).and_then(|b| Manifest::from_slice(&b).ok()) {
                size = size.saturating_add(image(&m));
            }
        }
        return Summary {
            size: Some(size),
            platforms,
        };
    }
    let platforms = manifest
        .config
        .as_ref()
        .and_then(|c| read(&c.digest))
        .and_then(|b| serde_json::from_slice::<ImageConfig>(&b).ok())
        .and_then(|c| c.platform.name())
        .into_iter()
        .collect();
    Summary {
        size: Some(own.saturating_add(image(&manifest))),
        platforms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn a_push_is_checked_and_its_references_listed() {
        let image = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": digest('a'), "size": 10},
            "layers": [
                {"mediaType": "x", "digest": digest('b'), "size": 20},
                {"mediaType": "x", "digest": digest('c'), "size": 30, "urls": ["https://x"]},
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": digest('d'), "size": 5},
        });
        let bytes = serde_json::to_vec(&image).unwrap();
        let checked = check(
            &bytes,
            Some("application/vnd.oci.image.manifest.v1+json; x=y"),
        )
        .unwrap();
        assert_eq!(
            checked.references.len(),
            2,
            "the foreign layer is not needed here"
        );
        assert_eq!(checked.references[1].kind, RefKind::Layer);
        assert_eq!(checked.subject, Some(digest('d')));
        assert_eq!(
            checked.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        let err = check(&bytes, Some(OCI_INDEX)).unwrap_err();
        assert!(err.message.contains("mediaType says"), "{}", err.message);
        let schema1 = br#"{"schemaVersion":1}"#;
        let err = check(schema1, Some(DOCKER_SCHEMA1[0])).unwrap_err();
        assert!(err.message.contains("schema 1"), "{}", err.message);
        let negative = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"digest": digest('a'), "size": -1}]});
        let err = check(&serde_json::to_vec(&negative).unwrap(), None).unwrap_err();
        assert!(err.message.contains("negative size"), "{}", err.message);
    }

    #[test]
    fn a_summary_adds_up_an_index_and_names_its_platforms() {
        let child = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"digest": digest('c'), "size": 100},
            "layers": [{"digest": digest('l'), "size": 1000}],
        }))
        .unwrap();
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [
                {"digest": digest('m'), "size": child.len(),
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"digest": digest('u'), "size": 7,
                 "platform": {"os": "unknown", "architecture": "unknown"}},
            ],
        }))
        .unwrap();
        let child_for_read = child.clone();
        let read = move |d: &str| (d == digest('m')).then(|| child_for_read.clone());
        let summary = summarize(&index, &read);
        assert_eq!(summary.platforms, vec!["linux/arm64/v8"]);
        assert_eq!(
            summary.size,
            Some(index.len() as u64 + child.len() as u64 + 7 + 1100)
        );
        assert_eq!(summarize(b"not json", &read), Summary::default());
    }

    /// Shown by an input to the `manifest` fuzz target, kept in fuzz/regressions/: claimed
    /// sizes near i64::MAX made the total wrap round in release builds (and panic in debug).
    #[test]
    fn a_summary_of_huge_claimed_sizes_saturates() {
        let huge =
            serde_json::json!({"digest": digest('l'), "size": i64::MAX, "urls": ["https://x"]});
        let image = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"digest": digest('c'), "size": i64::MAX},
            "layers": [huge, huge, huge],
        }))
        .unwrap();
        assert_eq!(summarize(&image, &|_| None).size, Some(u64::MAX));
    }
}
