#!/usr/bin/env bash
# Benchmark (issue 5): an import through the host's API of a synthetic image from Debian's
# docker-registry, timed from the POST until the task has succeeded; in the same run,
# `skopeo copy` of the same image into the same host, and the limit (every blob read from
# the source with curl, in parallel). Then a re-import of the unchanged image, and ten
# imports at once into fresh repositories while the host's resident memory is sampled.
#   SIZE_MB=1024 LAYERS=8 CONCURRENT=10 bench/import.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source bench/lib.sh
scripts/install-deps.sh
SIZE_MB=${SIZE_MB:-1024}
LAYERS=${LAYERS:-8}
CONCURRENT=${CONCURRENT:-10}
cargo build --quiet --release --locked -p hoist-host
HOST_BIN=$CARGO_TARGET_DIR/release/hoist-host

work=$(mktemp -d)
host_pid=
trap '[ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null; stop_registries "$work"/src/pid; rm -rf "$work"' EXIT
image=$HOIST_CACHE/bench/image-${SIZE_MB}m-${LAYERS}
build_image "$image"
src=$(start_registry "$work/src")
push_image "$image" "$src" bench/app v1
S=127.0.0.1:$src

# The host, as an admin would run it, allowed to reach the loopback source.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
H=127.0.0.1:$port
cat > "$work/hoist.toml" <<TOML
[imports]
workers = $CONCURRENT
per_registry = $CONCURRENT
[egress]
allowed_networks = ["127.0.0.0/8"]
[registries."$S"]
insecure = true
TOML
HOIST_ADMIN_PASSWORD=bench RUST_LOG=warn "$HOST_BIN" --config "$work/hoist.toml" \
  --listen "$H" --data-dir "$work/hoist" >"$work/host.log" 2>&1 &
host_pid=$!
for _ in $(seq 300); do curl -sf "http://$H/healthz" >/dev/null && break; sleep 0.1; done
api() { curl -sf -u admin:bench -H 'content-type: application/json' "$@"; }
api -X POST "http://$H/api/v1/projects" -d '{"name":"bench","public":false}' >/dev/null

# Starts an import into bench/$1:v1; prints the task id.
start_import() {
  api -X POST "http://$H/api/v1/projects/bench/images/import" \
    -d "{\"source_url\":\"$S/bench/app:v1\",\"target_image\":\"$1\",\"target_tag\":\"v1\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["task_id"])'
}
# Waits until every task named has finished; fails unless each succeeded.
wait_tasks() {
  local id state
  for id in "$@"; do
    while :; do
      state=$(api "http://$H/api/v1/tasks/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
      case $state in
        succeeded) break ;;
        failed|cancelled) echo "bench: task $id $state" >&2; api "http://$H/api/v1/tasks/$id" >&2; exit 1 ;;
      esac
      sleep 0.05
    done
  done
}

read_all_blobs "$image" "$src" bench/app  # once to warm the page cache, as the push left it
t=$(now); read_all_blobs "$image" "$src" bench/app; limit=$(elapsed "$t")

t=$(now)
skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false --dest-creds admin:bench \
  "docker://$S/bench/app:v1" "docker://$H/bench/skopeo:v1"
skopeo_s=$(elapsed "$t")

t=$(now); id=$(start_import imported); wait_tasks "$id"; import_s=$(elapsed "$t")
t=$(now); id=$(start_import imported); wait_tasks "$id"; again_s=$(elapsed "$t")

[ "$(skopeo inspect --raw --tls-verify=false --creds admin:bench "docker://$H/bench/imported:v1" | sha256sum)" = \
  "$(skopeo inspect --raw --tls-verify=false "docker://$S/bench/app:v1" | sha256sum)" ] \
  || { echo "bench: the import's manifest differs from the source's" >&2; exit 1; }

# Ten at once, each into a repository that holds nothing yet, so that every blob moves.
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$host_pid/status"; }
before_kib=$(rss_kib)
t=$(now)
ids=()
for i in $(seq 1 "$CONCURRENT"); do ids+=("$(start_import "concurrent$i")"); done
peak_kib=0
( wait_tasks "${ids[@]}" ) &
waiter=$!
while kill -0 "$waiter" 2>/dev/null; do
  r=$(rss_kib); [ "$r" -gt "$peak_kib" ] && peak_kib=$r
  sleep 0.1
done
wait "$waiter"
concurrent_s=$(elapsed "$t")

python3 - "$SIZE_MB" "$LAYERS" "$limit" "$skopeo_s" "$import_s" "$again_s" "$CONCURRENT" \
  "$concurrent_s" "$before_kib" "$peak_kib" <<'PY'
import sys
size, layers, limit, skopeo, imp, again, n, conc, before, peak = sys.argv[1:]
limit, skopeo, imp, again, conc = map(float, (limit, skopeo, imp, again, conc))
print(f"image:                 {size} MiB in {layers} layers")
print(f"limit (curl read):     {limit:6.2f} s")
print(f"skopeo copy into host: {skopeo:6.2f} s")
print(f"import (API to done):  {imp:6.2f} s")
print(f"skopeo / import:       {skopeo / imp:6.2f}x  (target: at least 2)")
print(f"import / limit:        {imp / limit:6.2f}x  (target: at most 2)")
print(f"re-import, unchanged:  {again:6.2f} s   (target: under 1 s)")
print(f"{n} imports at once:    {conc:6.2f} s   host RSS {int(before)//1024} MiB before, "
      f"peak {int(peak)//1024} MiB (target: under about 150)")
PY
