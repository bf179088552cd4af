//! `hoist-host`: starts the registry host.

use anyhow::{Context, Result};
use clap::Parser;
use hoist_host::auth::admin::Source;
use hoist_host::config::Config;
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
    /// A TOML configuration file.
    #[arg(long, env = "HOIST_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the configuration).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The data folder (overrides the configuration).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Development mode: generate an admin password if none is set.
    #[arg(long)]
    dev: bool,
    /// A plugin component to load instead of the built-in one.
    #[arg(long)]
    plugin: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
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

    let password = std::env::var("HOIST_ADMIN_PASSWORD").ok();
    let host = hoist_host::server::build(&config, password)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let resumed = host.runner.recover()?;
    if resumed > 0 {
        tracing::info!(resumed, "imports from the last run continue");
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
    axum::serve(listener, host.router).await?;
    Ok(())
}
