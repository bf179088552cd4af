//! The host's configuration: a TOML file (optional), then environment variables, then
//! command-line flags, each overriding the one before. With no file at all the host runs
//! a working registry on 127.0.0.1:5000 with its data in `./hoist-data`.

use anyhow::{Context, Result};
use hoist_imports::boundary::credentials::Secret;
use hoist_imports::boundary::pacing::Limits;
use hoist_imports::settings::{RegistrySettings, SourceSettings};
use hoist_plugin::url::Url;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Blobs, the database, keys and caches.
    pub data_dir: PathBuf,
    /// How clients reach this registry (`registry.example.com`, `127.0.0.1:5000`): the
    /// host part of import targets and pull commands. Default: the listen address.
    pub external_host: Option<String>,
    /// Development mode: generates an admin password when none is given.
    pub dev: bool,
    pub admin: AdminConfig,
    pub registry: RegistryConfig,
    pub imports: ImportsConfig,
    pub egress: EgressConfig,
    /// Per source registry: mirrors, plain HTTP, extra CAs.
    pub registries: HashMap<String, SourceRegistry>,
    /// An external OCI registry that imports write to instead of the built-in one.
    pub target: Option<TargetConfig>,
    pub sync: SyncConfig,
    pub server: ServerConfig,
    /// Where blobs live: the data folder, or an S3-compatible bucket.
    pub storage: StorageConfig,
    /// Where the metadata lives: SQLite in the data folder, or PostgreSQL.
    pub database: DatabaseConfig,
    /// The folder of the token signing key (`token.key`) and the key that seals import
    /// credentials (`secrets.key`); default: the data folder. Replicas that share a
    /// database must all read the same two files, or a token one issues is refused by
    /// the others and credentials one sealed cannot be opened by the others.
    pub keys_dir: Option<PathBuf>,
}

/// The metadata database. Without `url`, SQLite in the data folder (`hoist.db`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user@host:5432/hoist`: PostgreSQL, which any number of replicas share.
    /// Also `HOIST_DATABASE_URL`. Its password comes from `password_file` or
    /// `HOIST_DATABASE_PASSWORD` (or the URL, but a URL is easily logged).
    pub url: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The pool's size, per replica.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            password_file: None,
            max_connections: 16,
        }
    }
}

impl DatabaseConfig {
    /// The password for PostgreSQL, from its file or `HOIST_DATABASE_PASSWORD`.
    pub fn password(&self) -> Result<Option<String>> {
        match &self.password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("reading the database password file {}", path.display())
                })?;
                Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
            }
            None => Ok(std::env::var("HOIST_DATABASE_PASSWORD").ok()),
        }
    }
}

/// Blob storage. Without `s3`, blobs live in the data folder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub s3: Option<S3Config>,
}

/// An S3-compatible bucket that holds the blobs (and the upload sessions), shared by
/// every host replica that names it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The endpoint URL (`http://minio.internal:9000`); none for AWS itself.
    pub endpoint: Option<String>,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Keys start with this folder; empty for the bucket's root.
    #[serde(default)]
    pub prefix: String,
    /// A TOML file with `access_key_id` and `secret_access_key`. Without it the
    /// credentials come from the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, a web identity, the instance's role); never from this file.
    pub credentials_file: Option<PathBuf>,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl S3Config {
    /// The driver's options, with the access key read from its file.
    pub fn options(&self) -> Result<hoist_registry::S3Options> {
        if self.bucket.is_empty() {
            anyhow::bail!("[storage.s3] bucket is empty; name the bucket that holds the blobs");
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            anyhow::bail!("[storage.s3] endpoint {endpoint:?} is not an http:// or https:// URL");
        }
        let access_key = match &self.credentials_file {
            None => None,
            Some(path) => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Key {
                    access_key_id: String,
                    secret_access_key: String,
                }
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("reading the S3 credentials file {}", path.display())
                })?;
                let key: Key = toml::from_str(&text).with_context(|| {
                    format!(
                        "in the S3 credentials file {}: it holds access_key_id and \
                         secret_access_key",
                        path.display()
                    )
                })?;
                Some((key.access_key_id, key.secret_access_key))
            }
        };
        Ok(hoist_registry::S3Options {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            prefix: self.prefix.clone(),
            access_key,
        })
    }
}

/// What one client connection may cost the host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Time a client has to send a request's header; a kept-alive connection that starts
    /// no request within it is closed too. Bodies have no such limit.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: std::time::Duration,
    /// Connections open at once; more wait until one closes.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: std::time::Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// Scheduled sync: how the scheduler looks at the rules, and what a run does when the
/// source's quota runs out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Run rules on their schedules. Off: rules run only when asked ("Run now").
    pub scheduler: bool,
    /// A schedule missed while the host was down runs once at start (each rule can also
    /// turn it off). Off: missed slots are skipped.
    pub catch_up: bool,
    /// How often the scheduler looks for due rules.
    #[serde(with = "humantime_serde")]
    pub tick: std::time::Duration,
    /// How long a run waits when the source refused it for quota (429) past the plugin's
    /// own retries, before it tries again; it tries `quota_retries` times.
    #[serde(with = "humantime_serde")]
    pub quota_wait: std::time::Duration,
    pub quota_retries: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            scheduler: true,
            catch_up: true,
            tick: std::time::Duration::from_secs(5),
            quota_wait: std::time::Duration::from_secs(300),
            quota_retries: 3,
        }
    }
}

/// An external registry as the import target. Projects stay Hoist's (they are the first
/// path component there too); the images, and pulls of them, are the external registry's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Its base URL: `https://registry.example.com`, or `http://…` for plain HTTP.
    pub url: String,
    /// The account imports push as. Its password comes from `password_file` or from
    /// `HOIST_TARGET_PASSWORD`, never from this file.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A PEM file of CA certificates it is also trusted with.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// A file holding the admin's password (else `HOIST_ADMIN_PASSWORD`).
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Create a project on the first push into it instead of refusing the push.
    pub auto_create_projects: bool,
    /// A client's upload session that received nothing for this long is removed. (An
    /// import's sessions go as soon as its task is no longer running.)
    #[serde(with = "humantime_serde")]
    pub upload_max_age: std::time::Duration,
    /// How often abandoned upload sessions are looked for.
    #[serde(with = "humantime_serde")]
    pub upload_sweep_interval: std::time::Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            auto_create_projects: false,
            upload_max_age: hoist_registry::GcOptions::default().upload_max_age,
            upload_sweep_interval: std::time::Duration::from_secs(10 * 60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportsConfig {
    /// Imports running at once.
    pub workers: usize,
    /// Imports running at once from one source registry.
    pub per_registry: usize,
    /// Blob downloads in flight across every import and sync run (each import moves up
    /// to 6 blobs at once); what bounds the host's memory while many imports run.
    pub max_transfers: usize,
    /// The plugin to load instead of the built-in one: a component file, or an OCI
    /// artifact pinned by digest (`oci://registry.example/hoist/hoist-plugin@sha256:…`),
    /// pulled at start through the registry settings and egress policy the imports use.
    pub plugin: Option<String>,
    /// Accept an `oci://` plugin named by a tag alone. A tag can move to other code, so
    /// the default is to refuse it and ask for the digest.
    pub plugin_allow_tag: bool,
    /// The account that pulls an `oci://` plugin; anonymous without one. Its password comes
    /// from `plugin_password_file` or `HOIST_PLUGIN_PASSWORD`, never from this file.
    pub plugin_username: Option<String>,
    pub plugin_password_file: Option<PathBuf>,
    /// The longest `Retry-After` an import waits for inside the plugin. A source that
    /// asks for longer (an exhausted pull quota) leaves the task `waiting`, in the open
    /// and holding no worker, until the time it named.
    #[serde(with = "humantime_serde")]
    pub max_retry_wait: std::time::Duration,
    /// With a shared database: how long an import stays with the replica running it
    /// without that replica renewing its lease (every third of it). When the replica
    /// dies, another takes the import over after this long and continues it.
    #[serde(with = "humantime_serde")]
    pub lease: std::time::Duration,
}

impl Default for ImportsConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            per_registry: 2,
            max_transfers: 16,
            plugin: None,
            plugin_allow_tag: false,
            plugin_username: None,
            plugin_password_file: None,
            max_retry_wait: std::time::Duration::from_secs(120),
            lease: std::time::Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Networks imports may reach although they are not public (`10.0.0.0/8`,
    /// `127.0.0.1/32`). Public addresses are always allowed.
    pub allowed_networks: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceRegistry {
    /// URLs to reach this registry at, in order (`http://127.0.0.1:5001`).
    pub mirrors: Vec<String>,
    /// Reach it over plain HTTP.
    pub insecure: bool,
    /// A PEM file of CA certificates it is also trusted with.
    pub ca_file: Option<PathBuf>,
    /// Requests per second to each of its endpoints, all imports and sync runs together.
    pub max_requests_per_second: Option<f64>,
    /// Requests to each of its endpoints in flight at once (a blob download counts until
    /// its body has been read).
    pub max_concurrent_requests: Option<usize>,
    /// Scheduled sync copies from it only while the quota it reports
    /// (`RateLimit-Remaining`) stays above this many pulls; below, the run waits,
    /// visibly, for the quota to come back.
    pub quota_floor: Option<u64>,
    /// The bandwidth cap, in bytes per second, of each import from it whose request
    /// names none (reads from the source, the whole import together).
    pub max_bytes_per_second: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5000".parse().expect("a literal"),
            data_dir: PathBuf::from("hoist-data"),
            external_host: None,
            dev: false,
            admin: AdminConfig::default(),
            registry: RegistryConfig::default(),
            imports: ImportsConfig::default(),
            egress: EgressConfig::default(),
            registries: HashMap::new(),
            target: None,
            sync: SyncConfig::default(),
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            database: DatabaseConfig::default(),
            keys_dir: None,
        }
    }
}

impl Config {
    /// Reads `path` (when given), then applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the configuration {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("in the configuration {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// Environment overrides: `HOIST_LISTEN`, `HOIST_DATA_DIR`, `HOIST_DATABASE_URL`,
    /// `HOIST_EXTERNAL_HOST`,
    /// `HOIST_DEV`, `HOIST_ADMIN_PASSWORD_FILE`, `HOIST_AUTO_CREATE_PROJECTS`,
    /// `HOIST_WORKERS`, `HOIST_PLUGIN`, `HOIST_PLUGIN_ALLOW_TAG`, `HOIST_EGRESS_ALLOW`
    /// (comma-separated networks).
    pub(crate) fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = get("HOIST_LISTEN") {
            self.listen = v
                .parse()
                .with_context(|| format!("HOIST_LISTEN={v:?} is not host:port"))?;
        }
        if let Some(v) = get("HOIST_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("HOIST_DATABASE_URL") {
            self.database.url = Some(v);
        }
        if let Some(v) = get("HOIST_EXTERNAL_HOST") {
            self.external_host = Some(v);
        }
        if let Some(v) = get("HOIST_DEV") {
            self.dev = flag("HOIST_DEV", &v)?;
        }
        if let Some(v) = get("HOIST_ADMIN_PASSWORD_FILE") {
            self.admin.password_file = Some(v.into());
        }
        if let Some(v) = get("HOIST_AUTO_CREATE_PROJECTS") {
            self.registry.auto_create_projects = flag("HOIST_AUTO_CREATE_PROJECTS", &v)?;
        }
        if let Some(v) = get("HOIST_WORKERS") {
            self.imports.workers = v
                .parse()
                .with_context(|| format!("HOIST_WORKERS={v:?} is not a number"))?;
        }
        if let Some(v) = get("HOIST_PLUGIN") {
            self.imports.plugin = Some(v);
        }
        if let Some(v) = get("HOIST_PLUGIN_ALLOW_TAG") {
            self.imports.plugin_allow_tag = flag("HOIST_PLUGIN_ALLOW_TAG", &v)?;
        }
        if let Some(v) = get("HOIST_EGRESS_ALLOW") {
            self.egress.allowed_networks = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(())
    }

    /// The source registries' settings, with their mirror URLs parsed and their CA files
    /// read: the one shape the rest of the host uses.
    pub fn registry_settings(&self) -> Result<RegistrySettings> {
        if self.imports.max_transfers == 0 {
            anyhow::bail!("imports.max_transfers must be at least 1");
        }
        let mut settings = RegistrySettings::default();
        for (name, r) in &self.registries {
            let mirrors = r
                .mirrors
                .iter()
                .map(|m| {
                    Url::parse(m.trim_end_matches('/')).map_err(|e| {
                        anyhow::anyhow!("registries.\"{name}\".mirrors: {m:?} is not a URL: {e}")
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let ca_pem = match &r.ca_file {
                Some(path) => Some(std::fs::read(path).with_context(|| {
                    format!("reading the CA file of {name}: {}", path.display())
                })?),
                None => None,
            };
            if r.max_requests_per_second
                .is_some_and(|n| !(n > 0.0 && n.is_finite()))
            {
                anyhow::bail!(
                    "registries.\"{name}\".max_requests_per_second must be a positive number"
                );
            }
            if r.max_bytes_per_second == Some(0) {
                anyhow::bail!(
                    "registries.\"{name}\".max_bytes_per_second must be at least 1; leave it \
                     out for no cap"
                );
            }
            if r.max_concurrent_requests == Some(0) {
                anyhow::bail!("registries.\"{name}\".max_concurrent_requests must be at least 1");
            }
            settings.insert(
                name.clone(),
                SourceSettings {
                    mirrors,
                    insecure: r.insecure,
                    ca_pem,
                    limits: Limits {
                        requests_per_second: r.max_requests_per_second,
                        max_in_flight: r.max_concurrent_requests,
                    },
                    quota_floor: r.quota_floor,
                    max_bytes_per_second: r.max_bytes_per_second,
                },
            );
        }
        Ok(settings)
    }

    /// The account for an `oci://` plugin, when one is configured: `plugin_username` with
    /// the password from `plugin_password_file`, else from `HOIST_PLUGIN_PASSWORD`.
    pub(crate) fn plugin_credential(&self) -> Result<Option<(String, Secret)>> {
        let imports = &self.imports;
        let password = match &imports.plugin_password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| {
                        format!("reading imports.plugin_password_file {}", path.display())
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            None => std::env::var("HOIST_PLUGIN_PASSWORD").ok(),
        };
        match (&imports.plugin_username, password) {
            (Some(user), Some(password)) => Ok(Some((user.clone(), Secret::new(password)))),
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!(
                "imports.plugin_username is set but no password: set \
                 imports.plugin_password_file or HOIST_PLUGIN_PASSWORD"
            ),
            (None, Some(_)) => anyhow::bail!(
                "a plugin password is set but no imports.plugin_username to go with it"
            ),
        }
    }

    /// The host part of this registry's references.
    pub(crate) fn external_host(&self) -> String {
        self.external_host
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }
}

fn flag(name: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => anyhow::bail!("{name}={v:?} is not true or false"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_then_the_environment_set_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hoist.toml");
        std::fs::write(
            &path,
            r#"
            listen = "0.0.0.0:5443"
            [imports]
            workers = 8
            [egress]
            allowed_networks = ["10.0.0.0/8"]
            [registries."docker.io"]
            mirrors = ["http://127.0.0.1:5001"]
            "#,
        )
        .unwrap();
        let mut config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.imports.workers, 8);
        assert_eq!(config.registries["docker.io"].mirrors.len(), 1);
        config
            .apply_env(|k| (k == "HOIST_LISTEN").then(|| "127.0.0.1:6000".to_owned()))
            .unwrap();
        assert_eq!(config.listen.port(), 6000);
        assert_eq!(config.external_host(), "127.0.0.1:6000");

        std::fs::write(&path, "listen = \"x\"\nbogus = 1\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&path)).unwrap_err());
        assert!(err.contains("hoist.toml"), "{err}");
        let defaults = Config::default();
        assert_eq!(defaults.listen.to_string(), "127.0.0.1:5000");
        assert!(!defaults.dev, "production by default");
    }

    #[test]
    fn a_registrys_request_ceilings_and_quota_floor_are_read_and_checked() {
        let read = |toml: &str| -> Result<RegistrySettings> {
            let config: Config = toml::from_str(toml).unwrap();
            config.registry_settings()
        };
        let settings = read(
            r#"
            [registries."docker.io"]
            mirrors = ["http://127.0.0.1:5001", "https://mirror.internal"]
            max_requests_per_second = 5
            max_concurrent_requests = 4
            quota_floor = 20
            max_bytes_per_second = 16777216
            "#,
        )
        .unwrap();
        assert_eq!(settings.quota_floor("docker.io"), Some(20));
        assert_eq!(settings.max_bytes_per_second("docker.io"), Some(16 << 20));
        assert_eq!(settings.max_bytes_per_second("ghcr.io"), None);
        let err = read("[registries.\"x.io\"]\nmax_bytes_per_second = 0").unwrap_err();
        assert!(err.to_string().contains("max_bytes_per_second"), "{err}");
        assert_eq!(settings.quota_floor("ghcr.io"), None);
        let err = read("[registries.\"x.io\"]\nmax_requests_per_second = 0").unwrap_err();
        assert!(
            err.to_string()
                .contains("registries.\"x.io\".max_requests_per_second must be a positive"),
            "{err}"
        );
        let err = read("[registries.\"x.io\"]\nmax_concurrent_requests = 0").unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }

    #[test]
    fn scale_out_settings_are_read_and_their_mistakes_named() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("s3.toml");
        std::fs::write(
            &creds,
            "access_key_id = \"AK\"\nsecret_access_key = \"SK\"\n",
        )
        .unwrap();
        let config: Config = toml::from_str(&format!(
            r#"
            keys_dir = "/etc/hoist/keys"
            [database]
            url = "postgres://hoist@db/hoist"
            [storage.s3]
            endpoint = "http://127.0.0.1:9000"
            bucket = "blobs"
            prefix = "prod"
            credentials_file = {creds:?}
            "#
        ))
        .unwrap();
        assert_eq!(config.database.max_connections, 16);
        assert_eq!(config.imports.lease, std::time::Duration::from_secs(30));
        let options = config.storage.s3.as_ref().unwrap().options().unwrap();
        assert_eq!(options.region, "us-east-1");
        assert_eq!(options.access_key, Some(("AK".into(), "SK".into())));

        let s3 = |body: &str| -> anyhow::Result<hoist_registry::S3Options> {
            let config: Config = toml::from_str(&format!("[storage.s3]\n{body}")).unwrap();
            config.storage.s3.unwrap().options()
        };
        let err = s3("bucket = \"\"").unwrap_err();
        assert!(err.to_string().contains("bucket is empty"), "{err}");
        let err = s3("bucket = \"b\"\nendpoint = \"minio:9000\"").unwrap_err();
        assert!(
            err.to_string().contains("not an http:// or https:// URL"),
            "{err}"
        );
        std::fs::write(&creds, "access_key = \"AK\"\n").unwrap();
        let err = s3(&format!("bucket = \"b\"\ncredentials_file = {creds:?}")).unwrap_err();
        assert!(
            format!("{err:#}").contains("access_key_id and secret_access_key"),
            "{err:#}"
        );
        assert!(toml::from_str::<Config>("[storage.s3]\nendpoint = \"http://x\"").is_err());
    }
}
