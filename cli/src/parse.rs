//! `hoist parse REF`: how Hoist (and `docker pull`) reads an image reference.

use crate::exit;
use crate::failure::Failure;
use hoist_plugin::reference::Reference;
use serde::Serialize;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    hoist parse nginx                      # docker.io/library/nginx:latest\n  \
    hoist parse --json ghcr.io/owner/repo:v1.0.0")]
pub struct Args {
    /// The image reference, as you would give it to `docker pull`.
    reference: String,
    /// Print one JSON object with registry, repository, tag, digest, familiar, canonical.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Parsed<'a> {
    registry: &'a str,
    repository: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
    familiar: String,
    canonical: String,
}

pub fn run(args: Args) -> u8 {
    let reference = match Reference::parse(&args.reference) {
        Ok(r) => r,
        Err(e) => {
            let f = Failure::usage(
                e.to_string(),
                "a reference reads [REGISTRY/]REPOSITORY[:TAG][@DIGEST], as `docker pull` takes it",
            );
            eprintln!("{f}");
            return f.exit_code();
        }
    };
    if args.json {
        let parsed = Parsed {
            registry: reference.registry(),
            repository: reference.repository(),
            tag: reference.tag(),
            digest: reference.digest(),
            familiar: reference.familiar(),
            canonical: reference.canonical(),
        };
        println!(
            "{}",
            serde_json::to_string(&parsed).expect("a struct of strings always serialises")
        );
    } else {
        println!("{}", reference.canonical());
    }
    exit::OK
}
