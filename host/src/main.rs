//! `hoist-host`: starts the registry host.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hoist_host::config::Config;
use hoist_host::server::AdminPasswordSource as Source;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hoist-host",
    version,
    about = "Hoist's registry host",
    after_help = "Without a configuration file the host serves 127.0.0.1:5000 with its data in \
                  ./hoist-data. Production needs an admin password: set HOIST_ADMIN_PASSWORD \
                  or HOIST_ADMIN_PASSWORD_FILE, or pass --dev to have one generated."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// A TOML configuration file.
    #[arg(long, env = "HOIST_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the configuration).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The data folder (overrides the configuration).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Development mode: generate an admin password if none is set.
    #[arg(long)]
    dev: bool,
    /// The plugin to load instead of the built-in one: a component file, or an OCI
    /// artifact pinned by digest (`oci://registry/ns/hoist-plugin@sha256:…`).
    #[arg(long)]
    plugin: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Ship the plugin as an OCI artifact.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Collect garbage in a data folder, offline: removes blobs that no manifest refers
    /// to and that are older than the grace period, and upload sessions idle for longer
    /// than the upload age, then prints what it freed.
    #[command(
        after_help = "Run it while the host is stopped, or at least while nothing \
                      pushes to it (a read-only window): the running host's collector lock, \
                      which keeps a manifest push from racing a delete, does not reach this \
                      separate process. The grace period protects the blobs of a push whose \
                      manifest has not arrived yet. While the host runs, prefer its own \
                      collector: POST /api/v1/gc as the admin.\n\n\
                      Example: hoist-host gc --data-dir /var/lib/hoist --grace 30m"
    )]
    Gc {
        /// Keep unreferenced blobs younger than this (`90s`, `30m`, `1h`).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        /// Remove upload sessions that received nothing for this long.
        #[arg(long, default_value = "1d", value_parser = humantime::parse_duration)]
        upload_max_age: std::time::Duration,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Push a plugin component into a registry as an OCI artifact (config
    /// `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), and print the
    /// pinned reference a host's `plugin` setting takes.
    #[command(
        after_help = "The registry's settings in the configuration apply ([registries.\"…\"] \
                      insecure, ca_file). The password comes from --password-stdin or \
                      HOIST_PLUGIN_PASSWORD.\n\n\
                      Example:\n  \
                      hoist-host plugin push hoist_plugin.wasm \
                      registry.example.com/hoist/hoist-plugin:0.3.0 --username admin \
                      --password-stdin < pw\n  \
                      # prints oci://registry.example.com/hoist/hoist-plugin@sha256:…"
    )]
    Push {
        /// The component file (`hoist_plugin.wasm`).
        file: PathBuf,
        /// Where to push it: `registry/namespace/name:tag` (`oci://` optional).
        reference: String,
        /// Reach the registry over plain HTTP.
        #[arg(long)]
        plain_http: bool,
        /// The account to push as.
        #[arg(long)]
        username: Option<String>,
        /// Read the password from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> Result<()> {
    one_malloc_arena();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// glibc's malloc gives each thread that allocates its own arena (up to 8 per core), and
/// keeps what was freed in each: with ten imports at once (issue 16) the host peaked at
/// 159 MiB with a transfer cap of 16, of which 76 MiB sat in two arenas; with one arena,
/// 119 MiB, and no slower on two cores. Set before the runtime starts its threads, and
/// only when the admin has not chosen with `MALLOC_ARENA_MAX` themselves.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable of the allocator; no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

async fn run() -> Result<()> {
    let args = Args::parse();
    let logs = tracing_subscriber::fmt().with_env_filter(
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
    );
    // A command's stdout is its result; its logs go to stderr.
    if args.command.is_some() {
        logs.with_writer(std::io::stderr).init();
    } else {
        logs.init();
    }
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if args.plugin.is_some() {
        config.imports.plugin = args.plugin;
    }
    config.dev |= args.dev;

    if let Some(Command::Plugin(PluginCommand::Push {
        file,
        reference,
        plain_http,
        username,
        password_stdin,
    })) = args.command
    {
        return push_plugin(
            &config,
            &file,
            &reference,
            plain_http,
            username,
            password_stdin,
        )
        .await;
    }
    if let Some(Command::Gc {
        grace,
        upload_max_age,
        json,
    }) = args.command
    {
        return gc(&config, grace, upload_max_age, json).await;
    }

    // Bound before the host is built: with port 0 the host must know the port it got,
    // since import targets and token realms name it.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    config.listen = addr;
    let password = std::env::var("HOIST_ADMIN_PASSWORD").ok();
    let host = hoist_host::server::build(&config, password).await?;
    let resumed = host.resume().await?;
    if resumed.imports > 0 || resumed.sync_runs > 0 {
        tracing::info!(
            imports = resumed.imports,
            sync_runs = resumed.sync_runs,
            "work from the last run continues"
        );
    }
    println!("Hoist is running: open http://{addr}/");
    match &host.admin_source {
        Source::Generated { path } => println!(
            "Development mode: sign in as admin with password {} (kept in {})",
            host.admin.expose(),
            path.display()
        ),
        Source::Kept(path) => println!(
            "Development mode: the admin password is in {}",
            path.display()
        ),
        _ => {}
    }
    host.serve(listener).await;
    Ok(())
}

/// `hoist-host plugin push`: the component as an OCI artifact; prints its pinned reference.
async fn push_plugin(
    config: &Config,
    file: &std::path::Path,
    reference: &str,
    plain_http: bool,
    username: Option<String>,
    password_stdin: bool,
) -> Result<()> {
    use hoist_imports::artifact::{self, ArtifactAccess, ArtifactRef};
    use hoist_imports::boundary::client::Clients;
    use hoist_imports::boundary::credentials::Secret;
    use hoist_imports::egress::EgressPolicy;
    let bytes = std::fs::read(file)
        .with_context(|| format!("reading the plugin component {}", file.display()))?;
    let reference = ArtifactRef::parse(reference)?;
    let mut registries = config.registry_settings()?;
    if plain_http {
        registries.insert(
            reference.registry.clone(),
            hoist_imports::settings::SourceSettings {
                insecure: true,
                ..Default::default()
            },
        );
    }
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Some(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        std::env::var("HOIST_PLUGIN_PASSWORD").ok()
    };
    let credential = match (username, password) {
        (Some(user), Some(password)) => Some((user, Secret::new(password))),
        (None, _) => None,
        (Some(_), None) => {
            anyhow::bail!("--username needs a password: --password-stdin or HOIST_PLUGIN_PASSWORD")
        }
    };
    // The admin names the registry on the command line, so it is trusted by name, as the
    // external target is; other hosts (a token realm elsewhere) pass the usual policy.
    let host = reference
        .registry
        .rsplit_once(':')
        .map_or(reference.registry.as_str(), |(h, _)| h)
        .to_owned();
    let policy = EgressPolicy {
        trusted_hosts: vec![host],
        ..Default::default()
    };
    let clients = Clients::new(
        policy,
        &registries.extra_cas(),
        std::time::Duration::from_secs(15),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let access = ArtifactAccess {
        clients,
        settings: registries,
        credential,
    };
    let pinned = artifact::push(&bytes, &reference, &access)
        .await
        .with_context(|| format!("pushing {} to {reference}", file.display()))?;
    println!("{pinned}");
    Ok(())
}

/// `hoist-host gc`: one collection over the data folder, without serving.
async fn gc(
    config: &Config,
    grace: std::time::Duration,
    upload_max_age: std::time::Duration,
    json: bool,
) -> Result<()> {
    let data = &config.data_dir;
    anyhow::ensure!(
        config.database.url.is_some() || hoist_registry::database_path(data).exists(),
        "{} holds no Hoist data (no hoist.db); pass the host's --data-dir",
        data.display()
    );
    let options = hoist_registry::GcOptions {
        grace,
        upload_max_age,
    };
    let (metadata, storage) = hoist_host::server::open_stores(config).await?;
    let registry = hoist_registry::Registry::new(
        storage,
        metadata,
        hoist_registry::RegistryOptions {
            gc: options.clone(),
            ..Default::default()
        },
        hoist_registry::Metrics::new(),
    );
    let report = hoist_registry::collect_garbage(&registry, &options).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "freed {} bytes: {} unreferenced blobs deleted, {} kept as younger than {}, {} \
             abandoned uploads removed",
            report.bytes_freed,
            report.blobs_deleted,
            report.blobs_kept_young,
            humantime::format_duration(grace),
            report.uploads_deleted
        );
    }
    Ok(())
}
