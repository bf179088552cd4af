//! Putting the host together from its configuration: storage, database, keys, the
//! plugin, the task runner and the HTTP routes.

use crate::api::{self, AppState};
use crate::auth::admin::{self, AdminPassword, Source};
use crate::auth::jwt::TokenKeys;
use crate::auth::registry_access::{self, RegistryAccess};
use crate::config::Config;
use crate::metadata::Metadata;
use crate::metrics::Metrics;
use crate::outbound::client::Clients;
use crate::outbound::egress::{Cidr, EgressPolicy};
use crate::outbound::shared_blobs::BlobIndex;
use crate::outbound::{HostCredential, Secret};
use crate::plugin::PluginRuntime;
use crate::registry::{Registry, RegistryOptions};
use crate::secrets::SecretBox;
use crate::storage::FsStorage;
use crate::tasks::{
    ExternalTarget, OwnRegistry, RegistrySettings, RunnerConfig, TaskRunner, TaskStore,
};
use anyhow::{Context, Result, anyhow, bail};
use axum::response::IntoResponse as _;
use hoist_plugin::url::Url;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub struct Host {
    pub router: axum::Router,
    pub runner: TaskRunner,
    /// Where the admin password came from, for the start-up message.
    pub admin_source: Source,
    pub admin: AdminPassword,
}

/// Builds the host. `password` is `HOIST_ADMIN_PASSWORD`, passed in rather than read
/// here so that tests need not touch the process environment.
pub fn build(config: &Config, password: Option<String>) -> Result<Host> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating the data folder {}", data.display()))?;
    let (admin, admin_source) = admin::resolve(
        password,
        config.admin.password_file.as_deref(),
        config.dev,
        data,
    )
    .map_err(|e| anyhow!(e))?;
    let keys = TokenKeys::load_or_create(&data.join("token.key"))
        .context("loading the token signing key")?;
    let secrets = SecretBox::load_or_create(&data.join("secrets.key"))
        .context("loading the key that seals import credentials")?;
    let metadata = Arc::new(Metadata::open(&crate::registry::database_path(data))?);
    let storage = FsStorage::open(data)
        .with_context(|| format!("opening the blob store in {}", data.display()))?;
    let access = RegistryAccess {
        admin: admin.clone(),
        keys: keys.clone(),
        metadata: metadata.clone(),
    };
    let registry = Registry::new(
        Arc::new(storage),
        metadata.clone(),
        RegistryOptions {
            auto_create_projects: config.registry.auto_create_projects,
            gc: Default::default(),
        },
        Metrics::new(),
    )
    .with_authorizer(Arc::new(access.clone()));
    let target = external_target(config)?;
    let plugin = PluginRuntime::load(config.imports.plugin.as_deref(), &data.join("cache"))?
        .with_network(clients(config, target.as_ref())?);

    let mut registries = RegistrySettings::default();
    for (name, r) in &config.registries {
        if !r.mirrors.is_empty() {
            registries.mirrors.insert(name.clone(), r.mirrors.clone());
        }
        if r.insecure {
            registries.insecure.insert(name.clone());
        }
    }
    // Task targets, and the pull commands shown for them, name the registry that holds
    // the images.
    let import_authority = target
        .as_ref()
        .map_or_else(|| config.external_host(), |t| t.authority.clone());
    let runner = TaskRunner::new(
        metadata.clone() as Arc<dyn TaskStore>,
        plugin.clone(),
        secrets,
        RunnerConfig {
            workers: config.imports.workers,
            per_registry: config.imports.per_registry,
            registries,
            target,
        },
    );
    let external_host = config.external_host();
    let blob_index: Arc<dyn BlobIndex> = metadata.clone();
    let api = api::router(AppState {
        plugin,
        metadata,
        runner: runner.clone(),
        admin: admin.clone(),
        keys,
        external_host: import_authority,
    });
    let token = axum::Router::new()
        .route("/token", axum::routing::get(registry_access::token))
        .with_state(access.clone());
    let token = token.merge(crate::ui::router(registry.clone(), access.clone()));
    // Metrics are for scrapers on the admin's network; garbage collection is for the
    // admin alone.
    let operations =
        crate::registry::admin_router(registry.clone()).route_layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let access = access.clone();
                async move {
                    let allowed = req.uri().path() == "/metrics"
                        || access.caller(req.headers()).is_some_and(|c| c.is_admin());
                    if allowed {
                        next.run(req).await
                    } else {
                        crate::api::ApiError::new(
                            axum::http::StatusCode::UNAUTHORIZED,
                            "unauthorized",
                            "garbage collection is for the admin; pass the admin's credentials",
                        )
                        .into_response()
                    }
                }
            },
        ));
    let router = crate::registry::with_layers(
        api.merge(token)
            .merge(crate::registry::router(registry.clone()))
            .merge(operations),
        registry.metrics().clone(),
    );
    runner.set_own_registry(OwnRegistry {
        authority: external_host,
        router: router.clone(),
        blobs: blob_index,
    });
    Ok(Host {
        router,
        runner,
        admin_source,
        admin,
    })
}

/// The external target registry, when the configuration names one, with its account.
fn external_target(config: &Config) -> Result<Option<ExternalTarget>> {
    let Some(target) = &config.target else {
        return Ok(None);
    };
    let url =
        Url::parse(target.url.trim_end_matches('/')).map_err(|e| anyhow!("target.url: {e}"))?;
    if url.path != "/" {
        bail!(
            "target.url {:?} has a path; a registry's API is at the root of its host, so give \
             only the scheme and host (https://registry.example.com)",
            target.url
        );
    }
    let password = match &target.password_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading target.password_file {}", path.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        ),
        None => std::env::var("HOIST_TARGET_PASSWORD").ok(),
    };
    let credential = match (&target.username, password) {
        (Some(username), Some(password)) => Some(HostCredential {
            endpoints: vec![url.clone()],
            username: username.clone(),
            password: Secret::new(password),
        }),
        (None, None) => None,
        (Some(_), None) => bail!(
            "target.username is set but no password: set target.password_file or \
             HOIST_TARGET_PASSWORD"
        ),
        (None, Some(_)) => bail!("a target password is set but no target.username to go with it"),
    };
    Ok(Some(ExternalTarget {
        authority: url.authority.clone(),
        plain_http: !url.https,
        credential,
    }))
}

/// The pooled client with the configured egress policy and extra CAs; `target`, the
/// external target, is trusted by name.
fn clients(config: &Config, target: Option<&ExternalTarget>) -> Result<Clients> {
    let allowed = config
        .egress
        .allowed_networks
        .iter()
        .map(|n| Cidr::parse(n).map_err(|e| anyhow!("egress.allowed_networks: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let mut cas = HashMap::new();
    for (name, r) in &config.registries {
        if let Some(path) = &r.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the CA file of {name}: {}", path.display()))?;
            cas.insert(name.clone(), pem);
        }
    }
    let mut trusted_hosts = Vec::new();
    if let Some(target) = target {
        let authority: axum::http::uri::Authority = target
            .authority
            .parse()
            .map_err(|e| anyhow!("target.url {:?}: {e}", target.authority))?;
        trusted_hosts.push(authority.host().to_owned());
        if let Some(path) = config.target.as_ref().and_then(|t| t.ca_file.as_ref()) {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading target.ca_file {}", path.display()))?;
            cas.insert(target.authority.clone(), pem);
        }
    }
    let policy = EgressPolicy {
        allowed,
        trusted_hosts,
    };
    Clients::new(policy, &cas, Duration::from_secs(15)).map_err(|e| anyhow!(e))
}
