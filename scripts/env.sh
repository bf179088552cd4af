# Sourced by the other scripts: build outputs and tools live outside the clone, so that a
# fresh clone on the same machine reuses them.
export HOIST_CACHE="${HOIST_CACHE:-$HOME/.cache/hoist}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOIST_CACHE/target}"
# Which clone is building: two clones share the target directory, and the build scripts
# that embed the wasm components rerun when it changes (wasm-build/src/lib.rs).
HOIST_CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HOIST_CHECKOUT
export PATH="$HOIST_CACHE/tools/bin:$HOME/.cargo/bin:$PATH"
