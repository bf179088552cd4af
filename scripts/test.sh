#!/usr/bin/env bash
# Runs every test: installs what the tests need (only what is missing), builds the plugin,
# the CLI and the host, then runs the unit, contract and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/install-deps.sh
# Release mode: the tests compile wasm with wasmtime and move real images, which debug
# builds make many times slower; the host's run command shares these artifacts.
cargo test --release --workspace --locked "$@"
