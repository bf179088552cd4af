#!/usr/bin/env bash
# Benchmark (issue 16): the registry under many clients. Drives Hoist's host and Debian's
# docker-registry side by side with wrk (Debian's package, installed by
# scripts/install-deps.sh), on the same image, in the same run:
#   - manifest HEAD by tag, 64 connections (what every node sends when a pod starts); the
#     host's with a bearer token from its /token endpoint, as docker and containerd send it;
#   - blob GET of a 16 MiB layer, 32 connections;
#   - tag list, 64 connections.
# Prints requests per second, p50/p99 latency, errors (non-2xx answers and socket errors)
# and the host's peak RSS, with the host's rate as a ratio to docker-registry's.
#   SECONDS_EACH=10 bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SECONDS_EACH=${SECONDS_EACH:-10}
cargo build --quiet --release --locked -p hoist-host --bin hoist-host
HOST_BIN=$CARGO_TARGET_DIR/release/hoist-host

work=$(mktemp -d)
trap 'stop_registries "$work"/reg/pid "$work"/host.pid; rm -rf "$work"' EXIT
image=$HOIST_CACHE/bench/image-16m-1
(SIZE_MB=16 LAYERS=1 build_image "$image")

password=bench-$RANDOM$RANDOM
hport=$(free_port)
HOIST_ADMIN_PASSWORD=$password RUST_LOG=warn "$HOST_BIN" --listen "127.0.0.1:$hport" \
  --data-dir "$work/hoist" >"$work/host.log" 2>&1 &
host_pid=$!
echo "$host_pid" > "$work/host.pid"
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null && break; sleep 0.2; done
curl -sf -u "admin:$password" -H 'content-type: application/json' \
  -d '{"name":"bench","public":false}' "http://127.0.0.1:$hport/api/v1/projects" >/dev/null
token=$(curl -sf -u "admin:$password" \
  "http://127.0.0.1:$hport/token?service=hoist&scope=repository:bench/app:pull,push" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
rport=$(start_registry "$work/reg")

# The image into both: the host's through the token, distribution's anonymously.
(LAYERS=1 TOKEN=$token push_image "$image" "$hport" bench/app v1)
(LAYERS=1 push_image "$image" "$rport" bench/app v1)
layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"])' "$image/manifest.json")
accept='application/vnd.oci.image.manifest.v1+json'

# One ab run (ApacheBench, from apache2-utils; wrk cannot time HEAD requests, since it
# waits for the body that a HEAD's Content-Length announces): name, connections, method,
# URL, extra header lines; prints one result line. Keep-alive, as registry clients do.
drive() {
  local name=$1 conns=$2 method=$3 url=$4 out
  shift 4
  out=$work/$name.out
  local args=(-k -q -c "$conns" -t "$SECONDS_EACH" -n 100000000 -H "Accept: $accept")
  [ "$method" = HEAD ] && args+=(-i)
  for h in "$@"; do args+=(-H "$h"); done
  ab "${args[@]}" "$url" > "$out" 2>&1 || true
  python3 - "$name" "$out" <<'PY'
import re, sys
name, text = sys.argv[1], open(sys.argv[2]).read()
rps = float(re.search(r"Requests per second:\s+([\d.]+)", text).group(1))
def pct(p):
    return float(re.search(rf"^\s*{p}%\s+(\d+)", text, re.M).group(1))
failed = int(re.search(r"Failed requests:\s+(\d+)", text).group(1))
bad = re.search(r"Non-2xx responses:\s+(\d+)", text)
errors = failed + (int(bad.group(1)) if bad else 0)
print(f"{name} {rps:.0f} {pct(50):.0f} {pct(99):.0f} {errors}")
PY
}

H=http://127.0.0.1:$hport
R=http://127.0.0.1:$rport
auth="Authorization: Bearer $token"
peak() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$host_pid/status"; }
{
  drive host-head 64 HEAD "$H/v2/bench/app/manifests/v1" "$auth"
  drive reg-head 64 HEAD "$R/v2/bench/app/manifests/v1"
  drive host-blob 32 GET "$H/v2/bench/app/blobs/$layer" "$auth"
  drive reg-blob 32 GET "$R/v2/bench/app/blobs/$layer"
  drive host-tags 64 GET "$H/v2/bench/app/tags/list" "$auth"
  drive reg-tags 64 GET "$R/v2/bench/app/tags/list"
} > "$work/results"
host_rss=$(peak)
reg_rss=$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$(cat "$work/reg/pid")/status")

python3 - "$work/results" "$SECONDS_EACH" "$host_rss" "$reg_rss" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, p50, p99, errors = line.split()
    rows[name] = (float(rps), float(p50), float(p99), int(errors))
seconds, host_rss, reg_rss = sys.argv[2:5]
print(f"each line: ab with keep-alive, {seconds} s; host with a bearer token, docker-registry anonymous; "
      f"latencies in whole ms, as ab gives them")
print(f"{'':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
for what, key, conns in [("manifest HEAD by tag", "head", 64), ("blob GET, 16 MiB", "blob", 32),
                         ("tag list", "tags", 64)]:
    for who in ["host", "reg"]:
        rps, p50, p99, errors = rows[f"{who}-{key}"]
        label = f"{what} ({conns}c) {'hoist' if who == 'host' else 'registry'}"
        print(f"{label:28} {rps:9.0f} {p50:8.2f} {p99:8.2f} {errors:7d}")
    ratio = rows[f"host-{key}"][0] / rows[f"reg-{key}"][0]
    print(f"{'  hoist / registry rate':28} {ratio:8.2f}x (target: at least 1)")
print(f"manifest HEAD p99, hoist: {rows['host-head'][2]:.2f} ms (target: under 50)")
print(f"peak RSS (VmHWM): hoist-host {host_rss} MiB, docker-registry {reg_rss} MiB")
PY
