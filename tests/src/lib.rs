//! Shared helpers for the end-to-end tests: where the built components and the pinned
//! tools are, and how to run them.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The CLI component, built by this crate's build script.
pub const CLI_WASM: &str = env!("HOIST_CLI_WASM");
/// The plugin component, built by this crate's build script.
pub const PLUGIN_WASM: &str = env!("HOIST_PLUGIN_WASM");

/// The `wasmtime` CLI that `scripts/install-deps.sh` pins: `$HOIST_WASMTIME`, else the one
/// under `$HOME/.cache/hoist/tools`, else whatever is on PATH.
pub fn wasmtime() -> PathBuf {
    if let Some(path) = std::env::var_os("HOIST_WASMTIME") {
        return path.into();
    }
    let cache = std::env::var_os("HOIST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/hoist")
        });
    let pinned = cache.join("tools/bin/wasmtime");
    if pinned.exists() {
        pinned
    } else {
        "wasmtime".into()
    }
}

/// Runs `wasmtime run -S http hoist.wasm ARGS…` and returns what it printed.
pub fn hoist(args: &[&str]) -> Output {
    Command::new(wasmtime())
        .args(["run", "-S", "http"])
        .arg(CLI_WASM)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/install-deps.sh",
                wasmtime().display()
            )
        })
}
