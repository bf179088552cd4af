#!/usr/bin/env bash
# Fuzzes the parsers that read what clients and source registries send (the targets in
# fuzz/fuzz_targets), each for a bounded time: FUZZ_SECONDS (default 20) per target, so
# that CI pays about a minute and a half beyond the build. Every run first replays the
# committed seeds and fuzz/regressions/<target>/, the inputs that once crashed a target.
#
# A crash fails the run and leaves the input under fuzz/artifacts/<target>/: fix the
# cause, then move the input to fuzz/regressions/<target>/ so that every later run
# replays it. The corpus the fuzzer grows is kept under the cache, outside the clone.
#
# cargo-fuzz needs unstable rustc flags, and only the stable toolchain exists here, so
# RUSTC_BOOTSTRAP=1 unlocks them for this build alone. No sanitizer: the fuzzed code is
# safe Rust, where libFuzzer's coverage and Rust's own checks (overflow included: `-a`
# builds with debug assertions) find what there is to find, and AddressSanitizer would
# only slow each run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seconds=${FUZZ_SECONDS:-20}
export RUSTC_BOOTSTRAP=1
targets=(reference www_authenticate ranges manifest)
flags=(--fuzz-dir fuzz --sanitizer none -a --target-dir "$CARGO_TARGET_DIR/fuzz")
cargo fuzz build "${flags[@]}"
status=0
for target in "${targets[@]}"; do
  corpus=$HOIST_CACHE/fuzz-corpus/$target
  mkdir -p "$corpus" "fuzz/artifacts/$target" "fuzz/regressions/$target"
  if cargo fuzz run "${flags[@]}" "$target" \
    "$corpus" "fuzz/seeds/$target" "fuzz/regressions/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -close_fd_mask=1 \
    -artifact_prefix="fuzz/artifacts/$target/" >"$corpus.log" 2>&1; then
    echo "fuzz $target: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$corpus.log" | grep -o '[0-9]*$') inputs in ${seconds}s, no crash"
  else
    status=1
    echo "fuzz $target: CRASHED; the input is in fuzz/artifacts/$target/ (fix it, then move it to fuzz/regressions/$target/):"
    grep -E "panicked|ERROR|Test unit written" "$corpus.log" | head -n 5
  fi
done
exit "$status"
