//! Manifests and indexes: which media types Hoist copies, reading their descriptors, and the
//! platform filter. The raw bytes are always what gets pushed, unchanged, so digests (and
//! the signatures that name them) survive; parsing only finds what to copy.

use crate::progress::ImportError;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every manifest type Hoist copies, for the `Accept` header.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// distribution's limit: a larger manifest is refused rather than buffered.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// What a manifest's bytes turned out to be.
#[derive(Debug)]
pub enum Parsed {
    /// A single image: its config and layers.
    Image {
        config: Box<Descriptor>,
        layers: Vec<Descriptor>,
    },
    /// An index (or Docker manifest list): its children.
    Index { manifests: Vec<Descriptor> },
}

/// A platform a user asked for: `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformFilter {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl PlatformFilter {
    /// Parses `linux/amd64` or `linux/arm/v7`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self {
                os: (*os).into(),
                architecture: (*arch).into(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Self {
                    os: (*os).into(),
                    architecture: (*arch).into(),
                    variant: Some((*variant).into()),
                })
            }
            _ => Err(format!(
                "platform {s:?} is not os/arch or os/arch/variant (for example linux/amd64)"
            )),
        }
    }

    fn matches(&self, d: &Descriptor) -> bool {
        let Some(p) = d.platform() else {
            return false;
        };
        p.os().to_string() == self.os
            && p.architecture().to_string() == self.architecture
            && match &self.variant {
                Some(v) => p.variant().as_deref() == Some(v.as_str()),
                None => true,
            }
    }
}

impl std::fmt::Display for PlatformFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The platform an index entry names, as `os/arch[/variant]`.
pub fn platform_name(d: &Descriptor) -> Option<String> {
    let p = d.platform().as_ref()?;
    let mut s = format!("{}/{}", p.os(), p.architecture());
    if let Some(v) = p.variant() {
        s = format!("{s}/{v}");
    }
    Some(s)
}

/// The media type of a manifest: the `Content-Type` the registry sent, else the document's
/// own `mediaType`, else what its fields show (OCI allows leaving `mediaType` out).
pub fn media_type(content_type: Option<&str>, bytes: &[u8]) -> Result<String, ImportError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| ImportError::Registry(format!("the manifest is not valid JSON: {e}")))?;
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_owned())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    let media = declared.or(probe.media_type).unwrap_or_else(|| {
        if probe.schema_version == Some(1) {
            DOCKER_SCHEMA1.into()
        } else if probe.manifests.is_some() {
            OCI_INDEX.into()
        } else if probe.layers.is_some() {
            OCI_MANIFEST.into()
        } else {
            String::new()
        }
    });
    Ok(media)
}

/// Reads the descriptors out of a manifest of a type Hoist copies.
pub fn parse(media: &str, bytes: &[u8]) -> Result<Parsed, ImportError> {
    let invalid = |e: oci_spec::OciSpecError| {
        ImportError::Registry(format!("the {media} document does not parse: {e}"))
    };
    match media {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let m = ImageManifest::from_reader(bytes).map_err(invalid)?;
            Ok(Parsed::Image {
                config: Box::new(m.config().clone()),
                layers: m.layers().clone(),
            })
        }
        OCI_INDEX | DOCKER_LIST => {
            let i = ImageIndex::from_reader(bytes).map_err(invalid)?;
            Ok(Parsed::Index {
                manifests: i.manifests().clone(),
            })
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(ImportError::UnsupportedMediaType(
            "the source serves a Docker schema 1 manifest, which registries have deprecated \
             and Hoist does not copy; push the image again with a current client to convert it"
                .into(),
        )),
        "" => Err(ImportError::UnsupportedMediaType(
            "the manifest names no media type and has neither layers nor manifests".into(),
        )),
        other => Err(ImportError::UnsupportedMediaType(format!(
            "the manifest's media type {other} is not an OCI or Docker schema 2 image \
             manifest or index"
        ))),
    }
}

/// The result of applying a platform filter to an index.
#[derive(Debug)]
pub enum Filtered {
    /// Exactly one platform was asked for: that manifest alone is the image.
    Single(Box<Descriptor>),
    /// A new index holding only the matching manifests; it has a new digest.
    Index {
        bytes: Vec<u8>,
        kept: Vec<Descriptor>,
    },
}

/// Keeps the index's manifests that match `filters`. Every other field of the index is
/// kept as it was; the result is a new document with a new digest.
pub fn filter_index(
    raw: &[u8],
    manifests: &[Descriptor],
    filters: &[PlatformFilter],
) -> Result<Filtered, ImportError> {
    let kept: Vec<Descriptor> = manifests
        .iter()
        .filter(|d| filters.iter().any(|f| f.matches(d)))
        .cloned()
        .collect();
    let available = || {
        manifests
            .iter()
            .filter_map(platform_name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for f in filters {
        if !kept.iter().any(|d| f.matches(d)) {
            return Err(ImportError::NotFound(format!(
                "the image has no {f} manifest; it has: {}",
                available()
            )));
        }
    }
    if filters.len() == 1 && kept.len() == 1 {
        return Ok(Filtered::Single(Box::new(kept[0].clone())));
    }
    let mut doc: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|e| ImportError::Registry(format!("the index is not valid JSON: {e}")))?;
    let keep: std::collections::HashSet<String> =
        kept.iter().map(|d| d.digest().to_string()).collect();
    if let Some(list) = doc.get_mut("manifests").and_then(|m| m.as_array_mut()) {
        list.retain(|m| {
            m.get("digest")
                .and_then(|d| d.as_str())
                .is_some_and(|d| keep.contains(d))
        });
    }
    let bytes = serde_json::to_vec(&doc).expect("a JSON value always serialises");
    Ok(Filtered::Index { bytes, kept })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Vec<u8> {
        let d = |n: char, arch: &str, variant: Option<&str>| {
            let mut p = serde_json::json!({"os": "linux", "architecture": arch});
            if let Some(v) = variant {
                p["variant"] = v.into();
            }
            serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "digest": format!("sha256:{}", n.to_string().repeat(64)),
                "size": 100,
                "platform": p,
            })
        };
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [d('a', "amd64", None), d('b', "arm64", Some("v8")), d('c', "arm", Some("v7"))],
            "annotations": {"keep": "me"},
        }))
        .unwrap()
    }

    fn children(raw: &[u8]) -> Vec<Descriptor> {
        match parse(OCI_INDEX, raw).unwrap() {
            Parsed::Index { manifests } => manifests,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_platform_selects_its_manifest() {
        let raw = index();
        let f = [PlatformFilter::parse("linux/arm64").unwrap()];
        match filter_index(&raw, &children(&raw), &f).unwrap() {
            Filtered::Single(d) => assert!(d.digest().to_string().ends_with("bbbb")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn several_platforms_write_a_new_index() {
        let raw = index();
        let f = [
            PlatformFilter::parse("linux/amd64").unwrap(),
            PlatformFilter::parse("linux/arm/v7").unwrap(),
        ];
        let Filtered::Index { bytes, kept } = filter_index(&raw, &children(&raw), &f).unwrap()
        else {
            panic!()
        };
        assert_eq!(kept.len(), 2);
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(doc["annotations"]["keep"], "me", "other fields survive");
        assert_ne!(bytes, raw);
    }

    #[test]
    fn a_missing_platform_names_what_exists() {
        let raw = index();
        let f = [PlatformFilter::parse("windows/amd64").unwrap()];
        let err = filter_index(&raw, &children(&raw), &f).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("windows/amd64") && msg.contains("linux/arm/v7"),
            "{msg}"
        );
        assert!(PlatformFilter::parse("linux").is_err());
        assert!(PlatformFilter::parse("linux/").is_err());
    }

    #[test]
    fn media_types_from_header_field_or_shape() {
        let image = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(media_type(None, image).unwrap(), OCI_MANIFEST);
        assert_eq!(
            media_type(
                Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
                image
            )
            .unwrap(),
            DOCKER_MANIFEST
        );
        let schema1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        let media = media_type(Some("application/json"), schema1).unwrap();
        assert!(
            matches!(parse(&media, schema1), Err(ImportError::UnsupportedMediaType(m)) if m.contains("schema 1"))
        );
        assert!(matches!(
            parse("application/vnd.example+json", b"{}"),
            Err(ImportError::UnsupportedMediaType(_))
        ));
    }
}
