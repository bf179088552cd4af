//! The parts of a sync rule as people write them (JSON for the host's API, YAML or TOML
//! for the CLI's `hoist sync FILE`), shared so that a rule means the same in both: which
//! tags, where they land, and what pruning keeps. Each turns into the contract's records
//! ([`crate::select`]); checking them is the selection engine's job, so an invalid
//! pattern is reported the same way whoever wrote it.

use crate::select::{Naming, PathNaming, Pattern, PatternKind, TagSelection};
use serde::{Deserialize, Serialize};

/// A tag pattern: `"1.27.*"` is a glob; `{glob: "…"}` or `{regex: "…"}` says which.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PatternSpec {
    Glob(String),
    Kind(PatternKindSpec),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum PatternKindSpec {
    Glob(String),
    Regex(String),
}

impl From<&PatternSpec> for Pattern {
    fn from(spec: &PatternSpec) -> Self {
        match spec {
            PatternSpec::Glob(value) | PatternSpec::Kind(PatternKindSpec::Glob(value)) => {
                Pattern::glob(value.clone())
            }
            PatternSpec::Kind(PatternKindSpec::Regex(value)) => Pattern::regex(value.clone()),
        }
    }
}

impl From<&Pattern> for PatternSpec {
    fn from(pattern: &Pattern) -> Self {
        match pattern.kind {
            PatternKind::Glob => PatternSpec::Glob(pattern.value.clone()),
            PatternKind::Regex => PatternSpec::Kind(PatternKindSpec::Regex(pattern.value.clone())),
        }
    }
}

/// Which tags a rule keeps, in the order applied: `include`, `exclude`, `semver`,
/// `newest`; `digests` are added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TagSpec {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<PatternSpec>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<PatternSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub prereleases: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl From<&TagSpec> for TagSelection {
    fn from(spec: &TagSpec) -> Self {
        TagSelection {
            include: spec.include.iter().map(Pattern::from).collect(),
            exclude: spec.exclude.iter().map(Pattern::from).collect(),
            semver: spec.semver.clone(),
            prereleases: spec.prereleases,
            newest: spec.newest,
            digests: spec.digests.clone(),
        }
    }
}

/// Where synced repositories land inside the project. The default names each as a
/// single import would (`<project>/<last path component>`); `keep_path`, or either
/// prefix, keeps the whole source path, less `strip_prefix`, under `add_prefix`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationSpec {
    #[serde(skip_serializing_if = "is_false")]
    pub keep_path: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_prefix: Option<String>,
}

impl DestinationSpec {
    /// The contract's naming of this destination in `project`.
    pub fn naming(&self, project: &str) -> Naming {
        let path = (self.keep_path || self.strip_prefix.is_some() || self.add_prefix.is_some())
            .then(|| PathNaming {
                strip_prefix: self.strip_prefix.clone(),
                add_prefix: self.add_prefix.clone(),
            });
        Naming {
            project: project.to_owned(),
            path,
        }
    }
}

/// Pruning: remove target tags whose source tag disappeared upstream, never leaving a
/// repository with fewer than `keep_minimum` tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneSpec {
    #[serde(default = "one")]
    pub keep_minimum: u32,
}

fn one() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_read_as_people_write_them() {
        let spec: TagSpec = serde_json::from_str(
            r#"{"include": ["1.*", {"regex": "v\\d+"}, {"glob": "edge"}], "newest": 2}"#,
        )
        .unwrap();
        let selection = TagSelection::from(&spec);
        assert_eq!(
            selection.include,
            vec![
                Pattern::glob("1.*"),
                Pattern::regex("v\\d+"),
                Pattern::glob("edge")
            ]
        );
        assert_eq!(selection.newest, Some(2));
        let unknown = serde_json::from_str::<TagSpec>(r#"{"newst": 2}"#).unwrap_err();
        assert!(unknown.to_string().contains("newst"), "{unknown}");
        let bad_kind = serde_json::from_str::<TagSpec>(r#"{"include": [{"wildcard": "x"}]}"#);
        assert!(bad_kind.is_err());
    }

    #[test]
    fn destinations_name_like_an_import_unless_a_path_is_kept() {
        let default = DestinationSpec::default().naming("proj");
        assert_eq!(default.path, None);
        let stripped = DestinationSpec {
            strip_prefix: Some("library".into()),
            ..Default::default()
        }
        .naming("proj");
        assert_eq!(
            stripped.path,
            Some(PathNaming {
                strip_prefix: Some("library".into()),
                add_prefix: None
            })
        );
        let kept = DestinationSpec {
            keep_path: true,
            ..Default::default()
        }
        .naming("proj");
        assert!(kept.path.is_some());
    }
}
