//! `hoist`: the import engine as a command. Built for `wasm32-wasip2`, it is one component
//! that the stock `wasmtime` CLI runs: `wasmtime run -S http hoist.wasm parse nginx`.

#[cfg(target_arch = "wasm32")]
mod copy;
mod exit;
mod parse;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "hoist",
    version,
    about = "Copy container images between registries, and parse image references",
    long_about = None,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy an image from one registry to another.
    #[cfg(target_arch = "wasm32")]
    Copy(copy::Args),
    /// Show how a reference normalises.
    Parse(parse::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        #[cfg(target_arch = "wasm32")]
        Command::Copy(args) => copy::run(args),
        Command::Parse(args) => parse::run(args),
    }
}
