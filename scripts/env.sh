# Sourced by the other scripts: build outputs and tools live outside the clone, so that a
# fresh clone on the same machine reuses them.
export HOIST_CACHE="${HOIST_CACHE:-$HOME/.cache/hoist}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOIST_CACHE/target}"
export PATH="$HOIST_CACHE/tools/bin:$HOME/.cargo/bin:$PATH"
