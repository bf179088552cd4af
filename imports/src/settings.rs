//! How imports reach source registries: the one shape the host's per-registry
//! configuration takes on its way to the plugin (its endpoints and plain-HTTP list), to
//! the credentials (which origins they belong to), to the pooled client (extra CAs,
//! request ceilings) and to scheduled sync (the quota floor).

use crate::boundary::pacing::{Limits, Pacing};
use hoist_plugin::url::Url;
use std::collections::HashMap;

/// How to reach one source registry.
#[derive(Clone, Debug, Default)]
pub struct SourceSettings {
    /// Base URLs to reach it at, in order (mirrors); empty means its own API host.
    pub mirrors: Vec<Url>,
    /// Reach it over plain HTTP.
    pub insecure: bool,
    /// PEM certificates it is also trusted with.
    pub ca_pem: Option<Vec<u8>>,
    /// Ceilings on requests to each of its endpoints, for all imports together.
    pub limits: Limits,
    /// Scheduled sync copies from it only while the quota it reports stays above this.
    pub quota_floor: Option<u64>,
    /// The bandwidth cap of each import from it that names none, in bytes per second.
    pub max_bytes_per_second: Option<u64>,
}

/// Every configured source registry, by the name references give it (`docker.io`).
#[derive(Clone, Debug, Default)]
pub struct RegistrySettings {
    registries: HashMap<String, SourceSettings>,
}

impl RegistrySettings {
    pub fn insert(&mut self, registry: impl Into<String>, settings: SourceSettings) {
        self.registries.insert(registry.into(), settings);
    }

    /// The endpoints the plugin will reach `registry` at: its mirrors, else its API host
    /// over HTTPS (HTTP when insecure). Credentials for `registry` go to these only.
    pub fn endpoints(&self, registry: &str) -> Vec<Url> {
        let settings = self.registries.get(registry);
        if let Some(mirrors) = settings.map(|s| &s.mirrors).filter(|m| !m.is_empty()) {
            return mirrors.clone();
        }
        vec![Url {
            https: !settings.is_some_and(|s| s.insecure),
            authority: hoist_plugin::reference::api_host(registry).to_owned(),
            path: "/".into(),
        }]
    }

    /// The registry's own API endpoint, mirrors aside (HTTP when insecure): where pushes go.
    pub(crate) fn origin(&self, registry: &str) -> Url {
        Url {
            https: !self.registries.get(registry).is_some_and(|s| s.insecure),
            authority: hoist_plugin::reference::api_host(registry).to_owned(),
            path: "/".into(),
        }
    }

    /// Mirrors per registry, as the plugin's options take them.
    pub(crate) fn plugin_endpoints(&self) -> Vec<(String, Vec<String>)> {
        self.registries
            .iter()
            .filter(|(_, s)| !s.mirrors.is_empty())
            .map(|(name, s)| (name.clone(), s.mirrors.iter().map(Url::to_string).collect()))
            .collect()
    }

    /// The registries reached over plain HTTP.
    pub(crate) fn insecure(&self) -> Vec<String> {
        self.registries
            .iter()
            .filter(|(_, s)| s.insecure)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The request ceilings by endpoint, for the pooled client.
    pub fn pacing(&self) -> Pacing {
        let mut limits = HashMap::new();
        for (name, s) in &self.registries {
            if s.limits != Limits::default() {
                for endpoint in self.endpoints(name) {
                    limits.insert(endpoint.authority, s.limits);
                }
            }
        }
        Pacing::new(limits)
    }

    /// The quota below which scheduled sync stops copying from `registry`.
    pub fn quota_floor(&self, registry: &str) -> Option<u64> {
        self.registries.get(registry)?.quota_floor
    }

    /// The bandwidth cap of an import from `registry` that names none.
    pub fn max_bytes_per_second(&self, registry: &str) -> Option<u64> {
        self.registries.get(registry)?.max_bytes_per_second
    }

    /// Extra CA certificates per registry, for the pooled client.
    pub fn extra_cas(&self) -> HashMap<String, Vec<u8>> {
        self.registries
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.ca_pem.clone()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_is_reached_at_its_mirrors_or_its_api_host() {
        let mut settings = RegistrySettings::default();
        settings.insert(
            "docker.io",
            SourceSettings {
                mirrors: vec![Url::parse("http://127.0.0.1:5001").unwrap()],
                ..Default::default()
            },
        );
        settings.insert(
            "registry.internal:5000",
            SourceSettings {
                insecure: true,
                ..Default::default()
            },
        );
        assert_eq!(
            settings.endpoints("docker.io")[0].authority,
            "127.0.0.1:5001"
        );
        let internal = &settings.endpoints("registry.internal:5000")[0];
        assert!(!internal.https);
        let ghcr = &settings.endpoints("ghcr.io")[0];
        assert!(ghcr.https && ghcr.authority == "ghcr.io");
        assert_eq!(settings.insecure(), vec!["registry.internal:5000"]);
        assert_eq!(settings.plugin_endpoints().len(), 1);
    }
}
