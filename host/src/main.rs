//! `hoist-host`: starts the registry host.

use anyhow::{Context, Result};
use clap::Parser;
use hoist_host::api::{self, AppState};
use hoist_host::plugin::PluginRuntime;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "hoist-host", version, about = "Hoist's registry host")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "HOIST_LISTEN", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// A plugin component to load instead of the built-in one.
    #[arg(long, env = "HOIST_PLUGIN")]
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
    let plugin = match &args.plugin {
        Some(path) => PluginRuntime::from_file(path)?,
        None => PluginRuntime::builtin()?,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("Hoist is running: open http://{addr}/");
    axum::serve(listener, api::router(AppState { plugin })).await?;
    Ok(())
}
