//! `hoist`: the import engine as a command. Built for `wasm32-wasip2`, it is one component
//! that the stock `wasmtime` CLI runs: `wasmtime run -S http hoist.wasm copy SRC DST`.
//!
//! The commands that reach registries (`copy`, `inspect`, `batch`) exist only in the wasm
//! build, where the plugin's engine is compiled in; a native build has `parse`, and the
//! pure parts (credentials, batch files, hints, bars) are unit-tested natively.

// Natively only `parse` runs; the shared modules are compiled there for their unit tests,
// and what only the wasm commands call would otherwise be reported as unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[cfg(target_arch = "wasm32")]
mod batch;
mod batch_file;
#[cfg(target_arch = "wasm32")]
mod copy;
mod creds;
mod exit;
mod failure;
#[cfg(target_arch = "wasm32")]
mod inspect;
mod options;
mod parse;
mod report;
#[cfg(target_arch = "wasm32")]
mod sync;
mod sync_file;

use clap::{Parser, Subcommand};
use failure::Failure;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hoist",
    version,
    about = "Copy container images between registries, inspect them, and parse references",
    long_about = None,
    after_help = AFTER_HELP,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = concat!(
    "Run it with the wasmtime CLI:\n  \
    wasmtime run -S http hoist.wasm copy nginx:1.27 registry.example/proj/nginx:1.27\n  \
    wasmtime run -S http --env HOIST_SRC_CREDS --dir ~/.docker::/docker hoist.wasm \\\n      \
      copy --authfile /docker/config.json SRC DST\n\n\
    Errors are one line on stderr that starts with their class (usage, unauthorized, not \
    found, network, registry, denied by policy), then the cause and a hint.\n\n",
    // Kept in step with exit.rs by a unit test.
    "Exit codes:\n  \
    0  success\n  \
    1  failure of mixed classes (a batch), or cancelled\n  \
    2  usage: a bad command line, reference or input file\n  \
    3  unauthorized: credentials missing, refused or lacking rights\n  \
    4  not found: no such image, tag, platform or repository\n  \
    5  network or registry failure (unreachable, 5xx, rate limited, bad digest)\n  \
    6  denied by policy (for example credentials over plain HTTP)"
);

#[derive(Subcommand)]
enum Command {
    /// Copy an image (every platform, or those chosen) from one registry to another.
    #[cfg(target_arch = "wasm32")]
    Copy(copy::Args),
    /// Show what a reference names: digest, media type, platforms and sizes.
    #[cfg(target_arch = "wasm32")]
    Inspect(inspect::Args),
    /// Copy many images listed in a file (text lines or skopeo-sync-style YAML).
    #[cfg(target_arch = "wasm32")]
    Batch(batch::Args),
    /// Keep tags mirrored: one pass of a sync rule file (YAML or TOML), for cron.
    #[cfg(target_arch = "wasm32")]
    Sync(sync::Args),
    /// Show how a reference normalises.
    Parse(parse::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::exit(clap_error(e)),
    };
    let code = match cli.command {
        #[cfg(target_arch = "wasm32")]
        Command::Copy(args) => copy::run(args),
        #[cfg(target_arch = "wasm32")]
        Command::Inspect(args) => inspect::run(args),
        #[cfg(target_arch = "wasm32")]
        Command::Batch(args) => batch::run(args),
        #[cfg(target_arch = "wasm32")]
        Command::Sync(args) => sync::run(args),
        Command::Parse(args) => parse::run(args),
    };
    exit::exit(code)
}

/// Help and version go to stdout with success. A usage error becomes one line, like every
/// other error: clap's first paragraph (without its `Usage:` block and tips), then where
/// the help is.
fn clap_error(e: clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            exit::OK
        }
        // `hoist` alone: the full help is the useful answer.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            exit::USAGE
        }
        _ => {
            eprintln!("{}", usage_line(&e.to_string(), &subcommand()));
            exit::USAGE
        }
    }
}

fn usage_line(rendered: &str, command: &str) -> Failure {
    let first_paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = first_paragraph.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    Failure::usage(message, format!("see `{command} --help`"))
}

/// `hoist copy` when the arguments name a command, else `hoist`.
fn subcommand() -> String {
    let known = ["copy", "inspect", "batch", "sync", "parse"];
    match std::env::args()
        .skip(1)
        .find(|a| known.contains(&a.as_str()))
    {
        Some(c) => format!("hoist {c}"),
        None => "hoist".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_become_one_usage_line() {
        let rendered = "error: the following required arguments were not provided:\n  \
                        <REFERENCE>\n\nUsage: hoist parse <REFERENCE>\n\nFor more \
                        information, try '--help'.\n";
        assert_eq!(
            usage_line(rendered, "hoist parse").to_string(),
            "usage: the following required arguments were not provided: <REFERENCE>; see \
             `hoist parse --help`"
        );
    }

    #[test]
    fn the_help_lists_the_exit_codes_of_exit_rs() {
        for (code, word) in [
            (exit::OK, "success"),
            (exit::FAILED, "failure"),
            (exit::USAGE, "usage"),
            (exit::AUTH, "unauthorized"),
            (exit::NOT_FOUND, "not found"),
            (exit::REMOTE, "network"),
            (exit::POLICY, "denied by policy"),
        ] {
            assert!(
                AFTER_HELP.contains(&format!("\n  {code}  {word}")),
                "{code} {word}: {AFTER_HELP}"
            );
        }
    }
}
