//! `hoist inspect REF`: what a reference names, without copying it.

use crate::copy::fail;
use crate::failure::{self, Failure};
use crate::options::{Access, SideSpec};
use crate::report::{Mode, emit, size};
use hoist_plugin::inspect::{InspectSpec, Inspection};
use hoist_plugin::reference::Reference;
use serde_json::json;
use std::io::Write;

#[derive(clap::Args, Clone, Debug)]
#[command(after_help = "Examples:\n  \
    hoist inspect nginx:1.27\n  \
    hoist inspect --json ghcr.io/owner/repo:v1 | jq -r '.platforms[].platform'\n  \
    hoist inspect --raw --plain-http 127.0.0.1:5000 127.0.0.1:5000/proj/app:v1\n\n\
    Prints the digest, the media type, each platform with its manifest digest and the size \
    of its blobs, and the total of distinct blobs.")]
pub struct Args {
    /// The image to inspect, as `docker pull` takes it.
    reference: String,
    /// Print the manifest's bytes exactly as the registry serves them.
    #[arg(long, conflicts_with = "json")]
    raw: bool,
    /// Credentials, as USER:PASS.
    #[arg(
        long,
        env = "HOIST_CREDS",
        hide_env_values = true,
        value_name = "USER:PASS"
    )]
    creds: Option<String>,
    #[command(flatten)]
    access: Access,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> u8 {
    let mode = if args.json { Mode::Json } else { Mode::Quiet };
    match inspect(&args) {
        Ok(i) => {
            print(&args, &i);
            crate::exit::OK
        }
        Err(f) => fail(&f, mode),
    }
}

fn inspect(args: &Args) -> Result<Inspection, Failure> {
    let reference = Reference::parse(&args.reference).map_err(|e| {
        Failure::usage(
            e.to_string(),
            "a reference reads [REGISTRY/]REPOSITORY[:TAG][@DIGEST]",
        )
    })?;
    let auth_file = args.access.auth_file()?;
    let resolved = args.access.resolve(
        &[SideSpec {
            registry: reference.registry().into(),
            flag: "--creds",
            env: "HOIST_CREDS",
            action: "pull from",
            given: args.creds.as_deref(),
        }],
        auth_file.as_ref(),
    )?;
    hoist_plugin::inspect::inspect(InspectSpec {
        reference: args.reference.clone(),
        endpoints: resolved.endpoints,
        insecure: resolved.insecure,
        credentials: resolved.credentials,
        max_retries: args.access.retry,
        timeouts: Default::default(),
    })
    .map_err(|e| failure::from_import(e, &resolved.sides))
}

fn print(args: &Args, i: &Inspection) {
    for w in &i.warnings {
        eprintln!("warning: {w}");
    }
    if args.raw {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&i.raw);
        let _ = out.flush();
        return;
    }
    let (blob_count, blob_bytes) = i.unique_blob_bytes();
    if args.json {
        let platforms: Vec<_> = i
            .images
            .iter()
            .map(|m| {
                json!({
                    "digest": m.digest,
                    "media_type": m.media_type,
                    "platform": m.platform,
                    "blobs": m.blobs.len(),
                    "size": m.blobs.iter().map(|b| b.1).sum::<u64>(),
                })
            })
            .collect();
        emit(json!({
            "reference": i.reference,
            "digest": i.digest,
            "media_type": i.media_type,
            "kind": if i.is_index { "index" } else { "image" },
            "manifest_size": i.raw.len(),
            "platforms": platforms,
            "blobs": blob_count,
            "size": blob_bytes,
        }));
        return;
    }
    let kind = if i.is_index { "index" } else { "image" };
    let mut out = format!(
        "{}\ndigest:      {}\nmedia type:  {} ({kind}, {})\n",
        i.reference,
        i.digest,
        i.media_type,
        size(i.raw.len() as u64)
    );
    out += &format!("platforms:   {}\n", i.images.len());
    for m in &i.images {
        out += &format!(
            "  {:<16} {}  {:>2} blobs  {:>10}\n",
            m.platform.as_deref().unwrap_or("unknown"),
            m.digest,
            m.blobs.len(),
            size(m.blobs.iter().map(|b| b.1).sum())
        );
    }
    out += &format!(
        "total:       {blob_count} distinct blobs, {}",
        size(blob_bytes)
    );
    println!("{out}");
}
