//! What a referrer is, apart from the network: its kind (signature, SBOM, attestation), its
//! entry in a referrers index, the names of the tags that stand in for the referrers API
//! (the OCI 1.1 fallback tag and cosign's legacy tags), and which referrers a request keeps.
//! `referrers` finds and writes them; this module decides.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the request asks of referrers (WIT `referrer-options`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferrerOptions {
    /// Copy no referrers.
    pub skip: bool,
    /// Artifact types to copy; empty copies every type.
    pub artifact_types: Vec<String>,
    /// Refuse an image that carries no signature.
    pub require_signature: bool,
}

impl ReferrerOptions {
    /// Whether a referrer of `artifact_type` is copied.
    pub fn allows(&self, artifact_type: &str) -> bool {
        self.artifact_types.is_empty() || self.artifact_types.iter().any(|t| t == artifact_type)
    }
}

/// What a referrer is for, as an admin reads it ("signed, SBOM").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Signature,
    Sbom,
    Attestation,
    Other,
}

impl Kind {
    /// The kind of a referrer, from its cosign tag's suffix when it has one (cosign's
    /// legacy manifests carry a generic config type), else from its artifact type.
    pub fn of(artifact_type: &str, tag: Option<&str>) -> Self {
        match tag
            .and_then(|t| t.rsplit_once('.'))
            .map(|(_, suffix)| suffix)
        {
            Some("sig") => return Kind::Signature,
            Some("att") => return Kind::Attestation,
            Some("sbom") => return Kind::Sbom,
            _ => {}
        }
        let t = artifact_type.to_ascii_lowercase();
        // Signatures: cosign (simple signing, its OCI 1.1 artifact type), Notary v2 and
        // sigstore bundles.
        if [
            "simplesigning",
            "cosign.artifact.sig",
            "notary.signature",
            "sigstore.bundle",
        ]
        .iter()
        .any(|s| t.contains(s))
        {
            Kind::Signature
        } else if [
            "in-toto",
            "dsse.envelope",
            "cosign.artifact.att",
            "attestation",
        ]
        .iter()
        .any(|s| t.contains(s))
        {
            Kind::Attestation
        } else if ["spdx", "cyclonedx", "sbom", "syft"]
            .iter()
            .any(|s| t.contains(s))
        {
            Kind::Sbom
        } else {
            Kind::Other
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Signature => "signature",
            Kind::Sbom => "sbom",
            Kind::Attestation => "attestation",
            Kind::Other => "other",
        }
    }
}

/// The suffixes of cosign's legacy tags, in the order they are looked for.
pub const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// The tag that stands for `digest` in the referrers tag schema and cosign's legacy tags:
/// `sha256:abc…` becomes `sha256-abc…`. Tags hold at most 128 characters, so a digest whose
/// tag would be longer is cut there, as the OCI spec's fallback says.
pub fn digest_tag(digest: &str) -> String {
    let mut tag = digest.replacen(':', "-", 1);
    tag.truncate(128);
    tag
}

/// cosign's legacy tag for `digest`: `sha256-<hex>.sig`.
pub fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

/// One descriptor of a referrers index (the API's answer, or the fallback tag's index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A referrers index, as the API serves it and the fallback tag holds it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default = "schema_version")]
    pub schema_version: u32,
    #[serde(default = "index_media_type")]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Vec<Entry>,
}

fn schema_version() -> u32 {
    2
}

fn index_media_type() -> String {
    crate::manifest::OCI_INDEX.to_owned()
}

impl Default for Index {
    fn default() -> Self {
        Self {
            schema_version: schema_version(),
            media_type: index_media_type(),
            manifests: Vec::new(),
        }
    }
}

impl Index {
    /// Adds the entries not listed yet (by digest); whether anything changed.
    pub fn merge(&mut self, entries: &[Entry]) -> bool {
        let mut changed = false;
        for e in entries {
            if !self.manifests.iter().any(|m| m.digest == e.digest) {
                self.manifests.push(e.clone());
                changed = true;
            }
        }
        changed
    }
}

/// What a referrer's own manifest says about it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFacts {
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub config: Option<MediaTyped>,
    #[serde(default)]
    pub layers: Vec<MediaTyped>,
    #[serde(default)]
    pub subject: Option<Subject>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaTyped {
    pub media_type: String,
}

#[derive(Debug, Deserialize)]
pub struct Subject {
    pub digest: String,
}

/// The config type an image manifest has when it says nothing about what it carries.
const GENERIC_CONFIGS: [&str; 3] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.empty.v1+json",
];

impl ManifestFacts {
    /// Reads a manifest's facts; a manifest that is not JSON has none.
    pub fn of(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// The artifact type as the referrers API reports it (`artifactType`, else the config's
    /// media type), except that a generic config type (cosign's legacy manifests) gives way
    /// to the first layer's type, which is what says "signature" there.
    pub fn artifact_type(&self) -> String {
        if let Some(t) = &self.artifact_type {
            return t.clone();
        }
        let config = self.config.as_ref().map(|c| c.media_type.as_str());
        match (config, self.layers.first()) {
            (Some(c), Some(layer)) if GENERIC_CONFIGS.contains(&c) => layer.media_type.clone(),
            (Some(c), _) => c.to_owned(),
            (None, Some(layer)) => layer.media_type.clone(),
            (None, None) => String::new(),
        }
    }

    /// This manifest's entry in a referrers index: the spec's `artifactType` (the field,
    /// else the config type) and its annotations.
    pub fn entry(&self, media_type: &str, digest: &str, size: u64) -> Entry {
        Entry {
            media_type: media_type.to_owned(),
            digest: digest.to_owned(),
            size,
            artifact_type: self
                .artifact_type
                .clone()
                .or_else(|| self.config.as_ref().map(|c| c.media_type.clone())),
            annotations: self.annotations.clone(),
        }
    }
}

/// "signed, SBOM, attestation": the kinds present, as the UI and CLI summarise them.
pub fn summary(kinds: impl IntoIterator<Item = Kind>) -> String {
    let kinds: Vec<Kind> = kinds.into_iter().collect();
    [
        (Kind::Signature, "signed"),
        (Kind::Sbom, "SBOM"),
        (Kind::Attestation, "attestation"),
        (Kind::Other, "other artifacts"),
    ]
    .iter()
    .filter(|(k, _)| kinds.contains(k))
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_cosign_tags_and_artifact_types() {
        let generic = "application/vnd.oci.image.config.v1+json";
        assert_eq!(Kind::of(generic, Some("sha256-ab.sig")), Kind::Signature);
        assert_eq!(Kind::of(generic, Some("sha256-ab.att")), Kind::Attestation);
        assert_eq!(Kind::of(generic, Some("sha256-ab.sbom")), Kind::Sbom);
        for (t, kind) in [
            (
                "application/vnd.dev.cosign.artifact.sig.v1+json",
                Kind::Signature,
            ),
            (
                "application/vnd.dev.cosign.simplesigning.v1+json",
                Kind::Signature,
            ),
            ("application/vnd.cncf.notary.signature", Kind::Signature),
            (
                "application/vnd.dev.sigstore.bundle.v0.3+json",
                Kind::Signature,
            ),
            ("application/spdx+json", Kind::Sbom),
            ("application/vnd.cyclonedx+json", Kind::Sbom),
            ("application/vnd.in-toto+json", Kind::Attestation),
            ("application/vnd.dsse.envelope.v1+json", Kind::Attestation),
            ("application/vnd.example.readme", Kind::Other),
        ] {
            assert_eq!(Kind::of(t, None), kind, "{t}");
        }
    }

    #[test]
    fn tags_for_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(digest_tag(&d), format!("sha256-{}", "a".repeat(64)));
        assert_eq!(
            cosign_tag(&d, "sig"),
            format!("sha256-{}.sig", "a".repeat(64))
        );
        // sha512's fallback tag is cut at the 128 characters a tag may have.
        let long = format!("sha512:{}", "b".repeat(128));
        assert_eq!(digest_tag(&long).len(), 128);
    }

    #[test]
    fn artifact_type_prefers_the_field_then_a_specific_config_then_the_first_layer() {
        let with_field = br#"{"artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"}}"#;
        assert_eq!(
            ManifestFacts::of(with_field).artifact_type(),
            "application/spdx+json"
        );
        let by_config = br#"{"config":{"mediaType":"application/vnd.example.sig"},"layers":[{"mediaType":"x"}]}"#;
        assert_eq!(
            ManifestFacts::of(by_config).artifact_type(),
            "application/vnd.example.sig"
        );
        let cosign = br#"{"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]}"#;
        let facts = ManifestFacts::of(cosign);
        assert_eq!(
            facts.artifact_type(),
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        // The index entry keeps the spec's rule (the config's type).
        assert_eq!(
            facts.entry("m", "sha256:x", 3).artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn merging_adds_only_new_digests() {
        let entry = |d: &str| Entry {
            media_type: "m".into(),
            digest: d.into(),
            size: 1,
            artifact_type: None,
            annotations: None,
        };
        let mut index = Index::default();
        assert!(index.merge(&[entry("a"), entry("b")]));
        assert!(!index.merge(&[entry("a")]));
        assert!(index.merge(&[entry("c"), entry("a")]));
        assert_eq!(index.manifests.len(), 3);
        let json = serde_json::to_value(&index).unwrap();
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["mediaType"], crate::manifest::OCI_INDEX);
    }

    #[test]
    fn options_allow_listed_types_only() {
        let all = ReferrerOptions::default();
        assert!(all.allows("anything"));
        let some = ReferrerOptions {
            artifact_types: vec!["application/spdx+json".into()],
            ..Default::default()
        };
        assert!(some.allows("application/spdx+json"));
        assert!(!some.allows("application/vnd.dev.cosign.simplesigning.v1+json"));
    }

    #[test]
    fn summaries_name_the_kinds_present() {
        assert_eq!(summary([Kind::Sbom, Kind::Signature]), "signed, SBOM");
        assert_eq!(summary([]), "");
    }
}
