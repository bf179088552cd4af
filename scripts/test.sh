#!/usr/bin/env bash
# Runs every test: installs what the tests need (only what is missing), builds the plugin,
# the CLI and the host, then runs the unit, contract and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/install-deps.sh
log=$(mktemp)
scale=$(mktemp -d)
trap 'scripts/s3.sh stop "$scale/s3"; scripts/postgres.sh stop "$scale/pg"; rm -rf "$log" "$scale"' EXIT
# Release mode: the tests compile wasm with wasmtime and move real images, which debug
# builds make many times slower; the host's run command shares these artifacts.
# The tests that start the real binary (a crash, an offline gc) use this one, built here
# rather than by a nested cargo call from inside the test run; so does the four-host test
# with the minimal wasmtime embedding (examples/embed-rust).
cargo build --release --locked -p hoist-host -p hoist-embed-example
export HOIST_HOST_BIN="$CARGO_TARGET_DIR/release/hoist-host"
export HOIST_EMBED_RUST_BIN="$CARGO_TARGET_DIR/release/embed-rust"
export HOIST_NODE_DEPS="$HOIST_CACHE/node/examples-node"
status=0
cargo test --release --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# The registry's protocol tests once more on the scale-out engines: blobs in S3
# (moto_server, in memory), metadata in PostgreSQL (a throwaway cluster).
if [ $# -eq 0 ]; then
  HOIST_TEST_S3=$(scripts/s3.sh start "$scale/s3") \
    HOIST_TEST_POSTGRES=$(scripts/postgres.sh start "$scale/pg") \
    cargo test --release --locked -p hoist-registry --test registry_protocol 2>&1 | tee -a "$log" || status=$?
fi
# One closing line for the whole run: cargo prints one per test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
# Bounded fuzzing of the parsers of untrusted input: about two minutes, its build included.
scripts/fuzz.sh || status=$?
exit "$status"
