//! A sync rule: what the API takes (`RuleBody`), what the database keeps (`Rule`), the
//! checks that name the field at fault, and the plan request a run hands the plugin.

use super::schedule::{Schedule, ScheduleSpec};
use hoist_imports::contract::{self, SyncRequest};
use hoist_imports::tasks::SourceAuth;
use hoist_imports::tasks::model::platforms_of;
use hoist_plugin::rule::{DestinationSpec, PatternSpec, PruneSpec, TagSpec};
use hoist_plugin::select::{self, RepositoryPattern, Selection, TagSelection};
use serde::{Deserialize, Serialize};

/// The most repositories one rule names; a glob counts once.
const MAX_REPOSITORIES: usize = 100;

/// The body of a create or replace: everything a person sets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleBody {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub source: SourceBody,
    #[serde(default)]
    pub tags: TagSpec,
    #[serde(default)]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub destination: DestinationSpec,
    #[serde(default)]
    pub prune: Option<PruneSpec>,
    #[serde(default)]
    pub schedule: Option<ScheduleSpec>,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub webhook: Option<Webhook>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceBody {
    /// `docker.io`, `ghcr.io`, `host:5000`.
    pub registry: String,
    pub repositories: Vec<String>,
    /// Credentials for a private source, sealed apart from the rule.
    pub auth: Option<SourceAuth>,
}

/// What a run does beyond copying new tags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Policy {
    /// Copy a tag whose upstream digest changed (else it is reported and left).
    pub overwrite: bool,
    /// Before overwriting, keep the old image under `<tag>-backup-<UTC time>`.
    pub backup: bool,
    /// A schedule missed while the host was down runs once when it starts.
    pub catch_up: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            overwrite: true,
            backup: false,
            catch_up: true,
        }
    }
}

/// A URL POSTed a JSON summary when a run ends, through the egress policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Webhook {
    pub url: String,
    #[serde(default)]
    pub on: WebhookOn,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WebhookOn {
    #[default]
    Always,
    Failures,
}

/// The source as stored: no credentials, only whether there are some.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Source {
    pub registry: String,
    pub repositories: Vec<String>,
    pub authenticated: bool,
}

/// A rule as stored and shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Rule {
    pub id: String,
    pub project: String,
    pub name: String,
    pub enabled: bool,
    pub source: Source,
    pub tags: TagSpec,
    pub platforms: Vec<String>,
    pub destination: DestinationSpec,
    pub prune: Option<PruneSpec>,
    pub schedule: Option<ScheduleSpec>,
    pub policy: Policy,
    pub webhook: Option<Webhook>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A field of the body and what is wrong with it.
#[derive(Debug)]
pub(crate) struct RuleError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> RuleError {
    RuleError {
        field,
        message: message.into(),
    }
}

impl RuleBody {
    /// Checks every field without any network: the same selection engine the plugin
    /// runs (linked natively), so that a form is answered at once and a bad pattern never
    /// reaches a schedule. The plugin checks again when a plan starts.
    pub(crate) fn check(&self, project: &str) -> Result<Schedule, RuleError> {
        let name = self.name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_. ".contains(&b))
        {
            return Err(refuse(
                "name",
                "a rule name is 1 to 64 letters, digits, spaces, '-', '_' or '.'",
            ));
        }
        let registry = self.source.registry.trim();
        if registry.is_empty() || registry.contains('/') || registry.contains(char::is_whitespace) {
            return Err(refuse(
                "source.registry",
                "name the registry alone, as references do: docker.io, ghcr.io, host:5000",
            ));
        }
        if self.source.repositories.is_empty() || self.source.repositories.len() > MAX_REPOSITORIES
        {
            return Err(refuse(
                "source.repositories",
                format!(
                    "name 1 to {MAX_REPOSITORIES} repositories, exactly (library/nginx) or \
                     by glob (library/*)"
                ),
            ));
        }
        for repository in &self.source.repositories {
            RepositoryPattern::new(repository)
                .map_err(|e| refuse("source.repositories", e.to_string()))?;
        }
        if let Some(auth) = &self.source.auth
            && (auth.username.is_empty() || auth.password.is_empty())
        {
            return Err(refuse(
                "source.auth",
                "auth needs both a username and a password (or token); leave it out for a \
                 public source",
            ));
        }
        Selection::new(&TagSelection::from(&self.tags))
            .map_err(|e| refuse("tags", e.to_string()))?;
        platforms_of(&self.platforms).map_err(|m| refuse("platforms", m))?;
        select::check_naming(&self.destination.naming(project))
            .map_err(|e| refuse("destination", e.to_string()))?;
        if let Some(webhook) = &self.webhook
            && hoist_plugin::url::Url::parse(&webhook.url).is_err()
        {
            return Err(refuse(
                "webhook.url",
                "give an absolute http:// or https:// URL",
            ));
        }
        Schedule::try_from(self.schedule.clone()).map_err(|e| refuse(e.field(), e.to_string()))
    }

    /// The rule to store (credentials apart).
    pub(crate) fn into_rule(
        self,
        id: String,
        project: &str,
        created_by: String,
        created_at: String,
        now: String,
    ) -> (Rule, Option<SourceAuth>) {
        let rule = Rule {
            id,
            project: project.to_owned(),
            name: self.name.trim().to_owned(),
            enabled: self.enabled,
            source: Source {
                registry: self.source.registry.trim().to_owned(),
                repositories: self.source.repositories,
                authenticated: self.source.auth.is_some(),
            },
            tags: self.tags,
            platforms: self.platforms,
            destination: self.destination,
            prune: self.prune,
            schedule: self.schedule,
            policy: self.policy,
            webhook: self.webhook,
            created_by,
            created_at,
            updated_at: now,
        };
        (rule, self.source.auth)
    }
}

impl Rule {
    /// The plan request for this rule into `target_registry`, knowing `known`; options
    /// and credentials are the runner's to fill.
    pub(crate) fn plan_request(
        &self,
        target_registry: &str,
        known: Vec<contract::KnownTag>,
        estimate_bytes: bool,
    ) -> SyncRequest {
        let naming = self.destination.naming(&self.project);
        SyncRequest {
            registry: self.source.registry.clone(),
            repositories: self.source.repositories.clone(),
            tags: contract_selection(&self.tags),
            target_registry: target_registry.to_owned(),
            naming: contract::Naming {
                project: naming.project,
                path: naming.path.map(|p| contract::PathNaming {
                    strip_prefix: p.strip_prefix,
                    add_prefix: p.add_prefix,
                }),
            },
            known,
            prune_keep_minimum: self.prune.map(|p| p.keep_minimum),
            estimate_bytes,
            options: contract::default_options(),
            credentials: Vec::new(),
        }
    }
}

fn contract_selection(spec: &TagSpec) -> contract::TagSelection {
    let patterns = |list: &[PatternSpec]| {
        list.iter()
            .map(|p| {
                let p = select::Pattern::from(p);
                contract::Pattern {
                    kind: match p.kind {
                        select::PatternKind::Glob => contract::PatternKind::Glob,
                        select::PatternKind::Regex => contract::PatternKind::Regex,
                    },
                    value: p.value,
                }
            })
            .collect()
    };
    contract::TagSelection {
        include: patterns(&spec.include),
        exclude: patterns(&spec.exclude),
        semver: spec.semver.clone(),
        prereleases: spec.prereleases,
        newest: spec.newest,
        digests: spec.digests.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> RuleBody {
        serde_json::from_str(json).unwrap()
    }

    fn refused(json: &str) -> (String, String) {
        let e = body(json)
            .check("proj")
            .err()
            .unwrap_or_else(|| panic!("accepted: {json}"));
        (e.field.to_owned(), e.message)
    }

    #[test]
    fn a_full_rule_is_accepted_and_names_its_schedule() {
        let rule = body(
            r#"{"name": "nginx", "source": {"registry": "docker.io",
                "repositories": ["library/nginx", "prometheus/*"]},
                "tags": {"include": ["1.*"], "semver": ">=1.1 <2", "newest": 2},
                "platforms": ["linux/amd64"], "prune": {"keep_minimum": 2},
                "schedule": {"cron": "0 3 * * *", "timezone": "Europe/Paris"},
                "policy": {"backup": true}, "webhook": {"url": "http://hooks.example/x"}}"#,
        );
        assert!(matches!(rule.check("proj"), Ok(Schedule::Cron(_))));
        assert!(rule.policy.overwrite && rule.policy.backup && rule.policy.catch_up);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                r#"{"name": "", "source": {"registry": "r", "repositories": ["a/b"]}}"#,
                "name",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r/x", "repositories": ["a/b"]}}"#,
                "source.registry",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r", "repositories": []}}"#,
                "source.repositories",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r", "repositories": ["A/B"]}}"#,
                "source.repositories",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r", "repositories": ["a/b"]},
                    "tags": {"include": [{"regex": "("}]}}"#,
                "tags",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r", "repositories": ["a/b"]},
                    "tags": {"semver": ">=banana"}}"#,
                "tags",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r", "repositories": ["a/b"]},
                    "platforms": ["linux"]}"#,
                "platforms",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r", "repositories": ["a/b"]},
                    "schedule": {"cron": "every day", "timezone": "UTC"}}"#,
                "schedule.cron",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r", "repositories": ["a/b"],
                    "auth": {"username": "u", "password": ""}}}"#,
                "source.auth",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r", "repositories": ["a/b"]},
                    "webhook": {"url": "ftp://x"}}"#,
                "webhook.url",
            ),
            (
                r#"{"name": "x", "source": {"registry": "r", "repositories": ["a/b"]},
                    "destination": {"add_prefix": "../x"}}"#,
                "destination",
            ),
        ];
        for (json, field) in cases {
            let (got, message) = refused(json);
            assert_eq!(got, field, "{json}: {message}");
            assert!(!message.is_empty());
        }
    }

    #[test]
    fn the_plan_request_carries_the_selection_and_naming() {
        let (rule, auth) = body(
            r#"{"name": "x", "source": {"registry": "docker.io", "repositories": ["library/*"],
                "auth": {"username": "u", "password": "p"}},
                "tags": {"include": [{"regex": "v\\d+"}], "newest": 3},
                "destination": {"strip_prefix": "library"}, "prune": {}}"#,
        )
        .into_rule("id".into(), "proj", "admin".into(), "t".into(), "t".into());
        assert!(rule.source.authenticated && auth.is_some());
        let request = rule.plan_request("reg.example", Vec::new(), false);
        assert_eq!(request.tags.include[0].kind, contract::PatternKind::Regex);
        assert_eq!(request.tags.newest, Some(3));
        assert_eq!(request.prune_keep_minimum, Some(1));
        let path = request.naming.path.unwrap();
        assert_eq!(path.strip_prefix.as_deref(), Some("library"));
        assert_eq!(request.naming.project, "proj");
    }
}
