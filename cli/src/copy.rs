//! `hoist copy SRC DST`: the import, run by the plugin's engine inside this component.

use crate::exit;
use hoist_plugin::copy::{Import, ImportSpec};
use hoist_plugin::manifest::PlatformFilter;
use hoist_plugin::progress::{ImportError, Phase, Status};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    hoist copy nginx:latest localhost:5000/proj/nginx:latest --plain-http localhost:5000\n  \
    hoist copy --platform linux/amd64 ghcr.io/owner/repo:v1 registry.example/proj/repo:v1\n  \
    hoist copy --mirror docker.io=http://127.0.0.1:5001 --plain-http 127.0.0.1:5000 \\\n      \
    nginx 127.0.0.1:5000/proj/nginx:latest")]
pub struct Args {
    /// The image to copy, as `docker pull` takes it.
    source: String,
    /// Where to write it: registry/repository:tag.
    destination: String,
    /// Keep only this platform (os/arch[/variant]); repeat for several. Default: all.
    /// A filter writes a new index with a new digest (or the single manifest).
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]")]
    platforms: Vec<String>,
    /// Blob transfers in flight at once.
    #[arg(long, default_value_t = hoist_plugin::copy::DEFAULT_CONCURRENCY)]
    jobs: u32,
    /// Retries of a failed request (network errors, 5xx, 408, 429).
    #[arg(long, default_value_t = 5)]
    retry: u32,
    /// Reach this registry over plain HTTP; repeat for several.
    #[arg(long = "plain-http", alias = "insecure", value_name = "REGISTRY")]
    plain_http: Vec<String>,
    /// Reach REGISTRY at URL instead (a mirror); repeat for several.
    #[arg(long = "mirror", value_name = "REGISTRY=URL")]
    mirrors: Vec<String>,
    /// Credentials for the source, as USER:PASS (or set HOIST_SRC_CREDS).
    #[arg(long, env = "HOIST_SRC_CREDS", hide_env_values = true)]
    src_creds: Option<String>,
    /// Credentials for the destination, as USER:PASS (or set HOIST_DEST_CREDS).
    #[arg(long, env = "HOIST_DEST_CREDS", hide_env_values = true)]
    dest_creds: Option<String>,
    /// Upload blobs in chunks of this many bytes (PATCH), instead of one PUT each.
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u64>,
}

pub fn run(args: Args) -> ExitCode {
    match copy(args) {
        Ok(reference) => {
            println!("{reference}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hoist: {e}");
            ExitCode::from(exit::for_error(&e))
        }
    }
}

fn copy(args: Args) -> Result<String, ImportError> {
    let usage = ImportError::InvalidReference;
    let platforms = args
        .platforms
        .iter()
        .map(|p| PlatformFilter::parse(p).map_err(usage))
        .collect::<Result<Vec<_>, _>>()?;
    let endpoints = args
        .mirrors
        .iter()
        .map(|m| {
            m.split_once('=')
                .map(|(r, u)| (r.to_owned(), vec![u.to_owned()]))
                .ok_or_else(|| usage(format!("--mirror {m:?} is not REGISTRY=URL")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut credentials = Vec::new();
    for (flag, value, reference) in [
        ("--src-creds", &args.src_creds, &args.source),
        ("--dest-creds", &args.dest_creds, &args.destination),
    ] {
        if let Some(value) = value {
            let (user, pass) = value
                .split_once(':')
                .ok_or_else(|| usage(format!("{flag} must be USER:PASS")))?;
            let registry = hoist_plugin::reference::Reference::parse(reference)
                .map_err(|e| usage(e.to_string()))?
                .registry()
                .to_owned();
            credentials.push((registry, user.to_owned(), pass.to_owned()));
        }
    }
    let mut import = Import::start(ImportSpec {
        source: args.source,
        target: args.destination,
        platforms,
        endpoints,
        insecure: args.plain_http,
        concurrency: args.jobs,
        max_retries: args.retry,
        chunk_size: args.chunk_size,
        mount_from: Vec::new(),
        copy_foreign_layers: false,
        timeouts: Default::default(),
        credentials,
        dry_run: false,
    })?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let status = import.advance(250);
        if status.phase.is_finished() {
            return finish(status, started.elapsed());
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            report(&status);
            last_report = Instant::now();
        }
    }
}

fn report(status: &Status) {
    eprintln!(
        "{:?}: {}/{} blobs, {} of {} MiB",
        status.phase,
        status.blobs_done(),
        status.blobs.len(),
        status.bytes_done() >> 20,
        status.bytes_total() >> 20
    );
}

fn finish(status: Status, elapsed: Duration) -> Result<String, ImportError> {
    for warning in &status.warnings {
        eprintln!("hoist: warning: {warning}");
    }
    match status.phase {
        Phase::Done => {
            eprintln!(
                "copied {} blobs ({} MiB moved) in {:.1}s",
                status.blobs.len(),
                status.bytes_transferred() >> 20,
                elapsed.as_secs_f64()
            );
            Ok(status.target_reference.unwrap_or_default())
        }
        _ => Err(status.error.unwrap_or_else(|| {
            ImportError::Registry("the import stopped without a reason".into())
        })),
    }
}
