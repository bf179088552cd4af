//! The rule file of `hoist sync`: the same rule the host's sync API takes (source,
//! tags, platforms, destination), plus where it lands, as YAML or TOML:
//!
//! ```yaml
//! source:
//!   registry: docker.io
//!   repositories: [library/nginx, prometheus/*]
//! target: registry.example/mirror     # REGISTRY/PROJECT
//! tags:
//!   include: ["1.*", {regex: 'v\d+'}]
//!   semver: ">=1.25 <2"
//!   newest: 5
//! platforms: [linux/amd64]
//! destination: {strip_prefix: library}
//! ```
//!
//! A file with no schedule runs once per call: meant for cron. Pruning needs the records
//! of what earlier runs copied, which only the host keeps.

use crate::failure::Failure;
use hoist_plugin::rule::{DestinationSpec, TagSpec};
use hoist_plugin::select::TagSelection;
use hoist_plugin::sync::PlanSpec;
use serde::Deserialize;

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyncFile {
    pub source: Source,
    /// `REGISTRY/PROJECT`: the registry and the project (or namespace) images land in.
    pub target: String,
    #[serde(default)]
    pub tags: TagSpec,
    #[serde(default)]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub destination: DestinationSpec,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub registry: String,
    pub repositories: Vec<String>,
}

const HINT: &str = "see `hoist sync --help` for the rule format";

impl SyncFile {
    /// Reads a rule file: TOML when it is named `*.toml`, else YAML (which JSON is too).
    pub fn parse(name: &str, text: &str) -> Result<Self, Failure> {
        let parsed = if name.ends_with(".toml") {
            toml::from_str(text).map_err(|e| e.message().to_owned())
        } else {
            serde_norway::from_str(text).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| Failure::usage(format!("{name}: {e}"), HINT))
    }

    /// The registry and the project of `target`.
    pub fn target_parts(&self) -> Result<(&str, &str), Failure> {
        match self.target.trim_end_matches('/').split_once('/') {
            Some((registry, project)) if !registry.is_empty() && !project.is_empty() => {
                Ok((registry, project))
            }
            _ => Err(Failure::usage(
                format!("target {:?} is not REGISTRY/PROJECT", self.target),
                "for example target: registry.example/mirror",
            )),
        }
    }

    /// The plan of this rule; nothing is known of earlier runs.
    pub fn plan_spec(&self, estimate_bytes: bool) -> Result<PlanSpec, Failure> {
        let (registry, project) = self.target_parts()?;
        Ok(PlanSpec {
            registry: self.source.registry.clone(),
            repositories: self.source.repositories.clone(),
            tags: TagSelection::from(&self.tags),
            target_registry: registry.to_owned(),
            naming: self.destination.naming(project),
            known: Vec::new(),
            prune_keep_minimum: None,
            estimate_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_plugin::select::Pattern;

    const YAML: &str = r#"
source:
  registry: docker.io
  repositories: [library/app]
target: 127.0.0.1:5000/hub
tags:
  include: ["1.*", {regex: 'v\d+'}]
  semver: ">=1.1 <2"
  newest: 2
platforms: [linux/amd64]
"#;

    const TOML: &str = r#"
target = "127.0.0.1:5000/hub"
platforms = ["linux/amd64"]
[source]
registry = "docker.io"
repositories = ["library/app"]
[tags]
include = ["1.*", {regex = 'v\d+'}]
semver = ">=1.1 <2"
newest = 2
"#;

    #[test]
    fn yaml_and_toml_say_the_same_rule() {
        let yaml = SyncFile::parse("rule.yaml", YAML).unwrap();
        let toml = SyncFile::parse("rule.toml", TOML).unwrap();
        assert_eq!(yaml, toml);
        let spec = yaml.plan_spec(false).unwrap();
        assert_eq!(spec.target_registry, "127.0.0.1:5000");
        assert_eq!(spec.naming.project, "hub");
        assert_eq!(
            spec.tags.include,
            vec![Pattern::glob("1.*"), Pattern::regex("v\\d+")]
        );
        assert_eq!(spec.tags.newest, Some(2));
    }

    #[test]
    fn bad_files_name_what_is_wrong() {
        let unknown = SyncFile::parse(
            "r.yaml",
            "source: {registry: x, repositories: []}\ntarget: r/p\nschedule: daily\n",
        )
        .unwrap_err()
        .to_string();
        assert!(unknown.contains("schedule"), "{unknown}");
        let target = SyncFile::parse(
            "r.yaml",
            "source: {registry: x, repositories: [a/b]}\ntarget: nowhere\n",
        )
        .unwrap()
        .plan_spec(false)
        .unwrap_err()
        .to_string();
        assert!(target.contains("REGISTRY/PROJECT"), "{target}");
    }
}
