//! Putting the host together from its configuration: storage, database, keys, the
//! plugin, the task runner and the HTTP routes.

use crate::api::{self, AppState};
use crate::auth::admin::{self, AdminPassword};
use crate::auth::jwt::TokenKeys;
use crate::auth::registry_access::{self, RegistryAccess};
use crate::config::Config;
use crate::store::HostStore;
use crate::sync::runner::{SyncRunner, SyncSettings};
use crate::upload_sessions::UploadOwners;
use anyhow::{Context, Result, anyhow, bail};
use axum::response::IntoResponse as _;
use hoist_imports::PluginRuntime;
use hoist_imports::artifact::{self, ArtifactAccess, PluginSource};
use hoist_imports::boundary::client::Clients;
use hoist_imports::boundary::credentials::{HostCredential, Secret};
use hoist_imports::egress::{Cidr, EgressPolicy};
use hoist_imports::sealed::SecretBox;
use hoist_imports::settings::RegistrySettings;
use hoist_imports::tasks::{ExternalTarget, OwnRegistry, RunnerConfig, TaskRunner};
use hoist_plugin::url::Url;
use hoist_registry::{FsStorage, Metadata, Metrics, Registry, RegistryOptions, S3Storage, Storage};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use crate::auth::admin::Source as AdminPasswordSource;

pub struct Host {
    pub router: axum::Router,
    pub runner: TaskRunner,
    /// Where the admin password came from, for the start-up message.
    pub admin_source: AdminPasswordSource,
    pub admin: AdminPassword,
    sync: SyncRunner,
    limits: crate::listen::Limits,
    registry: Registry,
    upload_owners: UploadOwners,
    upload_max_age: Duration,
    upload_sweep_interval: Duration,
}

/// What [`Host::resume`] picked up from the last process.
pub struct Resumed {
    pub imports: usize,
    pub sync_runs: usize,
}

impl Host {
    /// Starts the work that goes on without requests: imports and sync runs the last
    /// process left unfinished continue, and the sync scheduler starts. Call it once the
    /// host is about to serve.
    pub async fn resume(&self) -> Result<Resumed> {
        let imports = self.runner.recover().await?;
        let sync_runs = self.sync.recover().await?;
        self.sync.start_scheduler();
        // After the recovery, so that the first sweep sees the restarted tasks' new
        // process and removes the sessions the last one left.
        crate::upload_sessions::start_sweeper(
            self.registry.clone(),
            self.runner.clone(),
            self.upload_owners.clone(),
            self.upload_max_age,
            self.upload_sweep_interval,
        );
        Ok(Resumed { imports, sync_runs })
    }

    /// Serves the host on `listener`, under the configured connection limits.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        crate::listen::serve(listener, self.router, self.limits).await
    }
}

/// The metadata database and the blob store the configuration names: SQLite and the
/// data folder, or PostgreSQL and S3. A shared database needs shared keys: a replica
/// with keys of its own would refuse every other replica's tokens. Both connect with
/// blocking clients, so this runs on a blocking thread.
pub async fn open_stores(config: &Config) -> Result<(Arc<Metadata>, Arc<dyn Storage>)> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || open_stores_blocking(&config)).await?
}

fn open_stores_blocking(config: &Config) -> Result<(Arc<Metadata>, Arc<dyn Storage>)> {
    let data = &config.data_dir;
    let metadata = match &config.database.url {
        Some(url) => {
            anyhow::ensure!(
                config.database.max_connections >= 1,
                "database.max_connections is 0; give the pool at least 1 connection"
            );
            anyhow::ensure!(
                config.imports.lease >= std::time::Duration::from_secs(3),
                "imports.lease is {:?}; with a shared database it must be at least 3s (it is \
                 renewed every third of it)",
                config.imports.lease
            );
            anyhow::ensure!(
                config.keys_dir.is_some(),
                "with a shared database ([database] url) set keys_dir to a folder every \
                 replica reads the same token.key and secrets.key from; copy them from the \
                 first replica's data folder"
            );
            Metadata::open_postgres(
                url,
                config.database.password()?.as_deref(),
                config.database.max_connections,
            )?
        }
        None => Metadata::open(&hoist_registry::database_path(data))?,
    };
    let storage: Arc<dyn Storage> = match &config.storage.s3 {
        Some(s3) => Arc::new(
            S3Storage::open(&s3.options()?)
                .with_context(|| format!("opening the S3 bucket {} for blobs", s3.bucket))?,
        ),
        None => Arc::new(
            FsStorage::open(data)
                .with_context(|| format!("opening the blob store in {}", data.display()))?,
        ),
    };
    Ok((Arc::new(metadata), storage))
}

/// Builds the host. `password` is `HOIST_ADMIN_PASSWORD`, passed in rather than read
/// here so that tests need not touch the process environment.
pub async fn build(config: &Config, password: Option<String>) -> Result<Host> {
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
    let (metadata, storage) = open_stores(config).await?;
    let keys_dir = config.keys_dir.as_deref().unwrap_or(data);
    let keys = TokenKeys::load_or_create(&keys_dir.join("token.key"))
        .context("loading the token signing key")?;
    let secrets = SecretBox::load_or_create(&keys_dir.join("secrets.key"))
        .context("loading the key that seals import credentials")?;
    let metadata_shared = metadata.is_shared();
    let store = HostStore::new(metadata.clone());
    let passwords = crate::auth::Passwords {
        admin: admin.clone(),
        store: store.clone(),
        throttle: Default::default(),
    };
    // This replica's name, in task leases and in its imports' upload sessions.
    let replica = hoist_common::random::id();
    let upload_owners = UploadOwners::new(replica.clone());
    let access = RegistryAccess {
        passwords: passwords.clone(),
        keys: keys.clone(),
        store: store.clone(),
        external_host: config.external_host.clone(),
        listen_host: config.listen.to_string(),
        narrow: Default::default(),
        upload_owners: upload_owners.clone(),
    };
    let registry = Registry::new(
        storage,
        metadata,
        RegistryOptions {
            auto_create_projects: config.registry.auto_create_projects,
            gc: hoist_registry::GcOptions {
                upload_max_age: config.registry.upload_max_age,
                ..Default::default()
            },
        },
        Metrics::new(),
    )
    .with_authorizer(Arc::new(access.clone()));
    let metrics = registry.metrics().clone();

    let registries = config.registry_settings()?;
    let target = external_target(config)?;
    let network = clients(config, &registries, target.as_ref())?;
    // Webhooks leave through the same egress policy as imports.
    let webhook_network = network.clone();
    let plugin = load_plugin(config, &registries, network, &data.join("cache")).await?;
    // Task targets, and the pull commands shown for them, name the registry that holds
    // the images.
    let import_authority = target
        .as_ref()
        .map_or_else(|| config.external_host(), |t| t.authority.clone());
    // Imports reach the registry's routes in process; they need nothing else of the host.
    let own = OwnRegistry {
        authority: config.external_host(),
        router: hoist_registry::with_layers(
            hoist_registry::router(registry.clone()),
            metrics.clone(),
        ),
        blobs: Arc::new(store.clone()),
    };
    let runner = TaskRunner::new(
        Arc::new(store.clone()),
        plugin.clone(),
        secrets.clone(),
        RunnerConfig {
            workers: config.imports.workers,
            per_registry: config.imports.per_registry,
            registries,
            target,
            max_retry_wait: config.imports.max_retry_wait,
            lease: metadata_shared.then_some(config.imports.lease),
            replica,
        },
        Some(own),
    );
    let sync = SyncRunner::new(
        store.clone(),
        runner.clone(),
        secrets,
        SyncSettings {
            scheduler: config.sync.scheduler,
            catch_up: config.sync.catch_up,
            tick: config.sync.tick,
            quota_wait: config.sync.quota_wait,
            quota_retries: config.sync.quota_retries,
        },
        webhook_network,
    );
    let api = api::router(AppState {
        plugin,
        store,
        runner: runner.clone(),
        sync: sync.clone(),
        passwords,
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
        hoist_registry::admin_router(registry.clone()).route_layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let access = access.clone();
                async move {
                    let admin = if req.uri().path() == "/metrics" {
                        true
                    } else {
                        let headers = req.headers().clone();
                        let peer = crate::auth::peer(req.extensions());
                        tokio::task::spawn_blocking(move || {
                            access.caller(&headers, peer).is_ok_and(|c| c.is_admin())
                        })
                        .await
                        .unwrap_or(false)
                    };
                    if admin {
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
    let router = hoist_registry::with_layers(
        api.merge(token)
            .merge(hoist_registry::router(registry.clone()))
            .merge(hoist_registry::readiness_router(registry.clone()))
            .merge(operations),
        metrics,
    );
    Ok(Host {
        router,
        runner,
        admin_source,
        admin,
        sync,
        limits: crate::listen::Limits {
            header_read_timeout: config.server.header_read_timeout,
            max_connections: config.server.max_connections,
        },
        registry,
        upload_owners,
        upload_max_age: config.registry.upload_max_age,
        upload_sweep_interval: config.registry.upload_sweep_interval,
    })
}

/// The plugin the configuration names: built in, a file, or an OCI artifact pulled now
/// through the imports' own network (`network`) and registry settings.
async fn load_plugin(
    config: &Config,
    registries: &RegistrySettings,
    network: Clients,
    cache: &Path,
) -> Result<PluginRuntime> {
    match PluginSource::parse(config.imports.plugin.as_deref())
        .context("in the configuration's imports.plugin (or --plugin, HOIST_PLUGIN)")?
    {
        PluginSource::Builtin => PluginRuntime::load(None, cache, network),
        PluginSource::File(path) => PluginRuntime::load(Some(&path), cache, network),
        PluginSource::Oci(reference) => {
            let access = ArtifactAccess {
                clients: network.clone(),
                settings: registries.clone(),
                credential: config.plugin_credential()?,
            };
            let pulled =
                artifact::pull(&reference, &access, config.imports.plugin_allow_tag, cache)
                    .await
                    .with_context(|| format!("pulling the plugin {reference}"))?;
            tracing::info!(
                plugin = %reference,
                manifest = %pulled.manifest_digest,
                from_cache = pulled.cached,
                "the plugin artifact is pulled"
            );
            PluginRuntime::load_bytes(&pulled.component, &reference.to_string(), cache, network)
        }
    }
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
fn clients(
    config: &Config,
    registries: &RegistrySettings,
    target: Option<&ExternalTarget>,
) -> Result<Clients> {
    let allowed = config
        .egress
        .allowed_networks
        .iter()
        .map(|n| Cidr::parse(n).map_err(|e| anyhow!("egress.allowed_networks: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let mut cas = registries.extra_cas();
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
    Ok(Clients::new(policy, &cas, Duration::from_secs(15))
        .map_err(|e| anyhow!(e))?
        .with_pacing(
            registries
                .pacing()
                .with_max_transfers(config.imports.max_transfers),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shared_database_needs_shared_keys_and_a_workable_lease() {
        let mut config = Config {
            data_dir: tempfile::tempdir().unwrap().keep(),
            ..Config::default()
        };
        // Nothing listens there: both checks come before any connection.
        config.database.url = Some("postgres://hoist@127.0.0.1:1/hoist".into());
        let err = open_stores(&config).await.err().unwrap();
        assert!(err.to_string().contains("set keys_dir"), "{err}");
        config.keys_dir = Some(config.data_dir.clone());
        config.imports.lease = std::time::Duration::from_secs(1);
        let err = open_stores(&config).await.err().unwrap();
        assert!(err.to_string().contains("imports.lease"), "{err}");
    }
}
