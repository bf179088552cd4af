#!/usr/bin/env bash
# Benchmark (issue 3): the plugin copying a synthetic image between two Debian
# docker-registry instances, against `skopeo copy` of the same image between the same
# registries in the same run. Prints both times, their ratio, the plugin's peak memory,
# the re-import time, and the limit (reading every blob with curl in parallel).
#   SIZE_MB=1024 LAYERS=8 bench/copy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
cargo build --quiet --release --locked --target wasm32-wasip2 -p hoist-cli
WASM=$CARGO_TARGET_DIR/wasm32-wasip2/release/hoist.wasm

work=$(mktemp -d)
trap 'stop_registries "$work"/src/pid "$work"/dst/pid; rm -rf "$work"' EXIT
image=$HOIST_CACHE/bench/image-${SIZE_MB}m-${LAYERS}
build_image "$image"
src=$(start_registry "$work/src")
dst=$(start_registry "$work/dst")
push_image "$image" "$src" bench/app v1
S=127.0.0.1:$src
D=127.0.0.1:$dst

# Warm wasmtime's compilation cache, so that both tools are timed on copying alone.
wasmtime run -S http "$WASM" parse nginx >/dev/null

read_all_blobs "$image" "$src" bench/app  # once to warm the page cache, as the push left it
t=$(now); read_all_blobs "$image" "$src" bench/app; limit=$(elapsed "$t")

t=$(now)
skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false \
  "docker://$S/bench/app:v1" "docker://$D/skopeo/app:v1"
skopeo_s=$(elapsed "$t")

t=$(now)
/usr/bin/time -f %M -o "$work/rss" wasmtime run -S http "$WASM" copy \
  --plain-http "$S" --plain-http "$D" "$S/bench/app:v1" "$D/plugin/app:v1" >/dev/null 2>"$work/log" \
  || { cat "$work/log"; exit 1; }
plugin_s=$(elapsed "$t")
rss_mb=$(( $(cat "$work/rss") / 1024 ))

t=$(now)
wasmtime run -S http "$WASM" copy --plain-http "$S" --plain-http "$D" \
  "$S/bench/app:v1" "$D/plugin/app:v1" >/dev/null 2>&1
again_s=$(elapsed "$t")

[ "$(skopeo inspect --raw --tls-verify=false "docker://$D/plugin/app:v1" | sha256sum)" = \
  "$(skopeo inspect --raw --tls-verify=false "docker://$S/bench/app:v1" | sha256sum)" ] \
  || { echo "bench: the copy's manifest differs from the source's" >&2; exit 1; }

python3 - "$SIZE_MB" "$LAYERS" "$limit" "$skopeo_s" "$plugin_s" "$rss_mb" "$again_s" <<'PY'
import sys
size, layers, limit, skopeo, plugin, rss, again = sys.argv[1:]
limit, skopeo, plugin, again = map(float, (limit, skopeo, plugin, again))
print(f"image:            {size} MiB in {layers} layers")
print(f"limit (curl read): {limit:6.2f} s")
print(f"skopeo copy:       {skopeo:6.2f} s")
print(f"hoist (wasmtime):  {plugin:6.2f} s   peak RSS {rss} MiB")
print(f"skopeo / hoist:    {skopeo / plugin:6.2f}x  (above 1 means hoist is faster)")
print(f"hoist / limit:     {plugin / limit:6.2f}x")
print(f"re-import:         {again:6.2f} s")
PY
