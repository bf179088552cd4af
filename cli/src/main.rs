//! `hoist`: the import engine as a command. Built for `wasm32-wasip2`, it is one component
//! that the stock `wasmtime` CLI runs: `wasmtime run -S http hoist.wasm parse nginx`.

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
        Command::Parse(args) => parse::run(args),
    }
}
