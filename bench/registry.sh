#!/usr/bin/env bash
# Benchmark (issue 4): skopeo pushes a synthetic image to Hoist's registry host (with a
# login, into a private project) and pulls it back, then does the same with Debian's
# docker-registry, in the same run. Prints the times, their ratios and the host's peak
# memory (VmHWM).
#   SIZE_MB=1024 LAYERS=8 bench/registry.sh
# STORES=shared adds Hoist on PostgreSQL and S3 (moto_server): pushed through one
# replica, pulled through it and through a second one, and two pulls at once, on one
# replica and on two.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
cargo build --quiet --release --locked -p hoist-host --bin hoist-host
HOST_BIN=$CARGO_TARGET_DIR/release/hoist-host

work=$(mktemp -d)
trap 'stop_registries "$work"/reg/pid "$work"/host.pid; rm -rf "$work"' EXIT
image=$HOIST_CACHE/bench/image-${SIZE_MB}m-${LAYERS}
build_image "$image"

# skopeo's dir: layout of the image: the manifest, `version`, and each blob by its hex.
layout=$work/layout
mkdir -p "$layout"
cp "$image/manifest.json" "$layout/manifest.json"
printf 'Directory Transport Version: 1.1\n' > "$layout/version"
for f in "$image"/config "$image"/layer*; do
  hex=$(sha256sum "$f" | cut -d' ' -f1)
  ln "$f" "$layout/$hex" 2>/dev/null || cp "$f" "$layout/$hex"
done

# Hoist's host, with a login and a private project.
password=bench-$RANDOM$RANDOM
hport=$(free_port)
HOIST_ADMIN_PASSWORD=$password "$HOST_BIN" --listen "127.0.0.1:$hport" --data-dir "$work/hoist" \
  >"$work/host.log" 2>&1 &
host_pid=$!
echo "$host_pid" > "$work/host.pid"
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null || { cat "$work/host.log"; exit 1; }
curl -sf -u "admin:$password" -H 'content-type: application/json' \
  -d '{"name":"bench","public":false}' "http://127.0.0.1:$hport/api/v1/projects" >/dev/null
H=127.0.0.1:$hport
creds=admin:$password

rport=$(start_registry "$work/reg")
R=127.0.0.1:$rport

# Push, then pull into a directory (skopeo verifies every blob's digest as it reads).
timed() { local t; t=$(now); "$@"; elapsed "$t"; }
copy() { skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false "$@"; }

sync  # the layout's hard links need no flush, but the image build may have just run
host_push=$(timed copy --dest-creds "$creds" "dir:$layout" "docker://$H/bench/app:v1")
host_pull=$(timed copy --src-creds "$creds" "docker://$H/bench/app:v1" "dir:$work/pull-host")
reg_push=$(timed copy "dir:$layout" "docker://$R/bench/app:v1")
reg_pull=$(timed copy "docker://$R/bench/app:v1" "dir:$work/pull-reg")

[ "$(skopeo inspect --raw --tls-verify=false --creds "$creds" "docker://$H/bench/app:v1" | sha256sum)" = \
  "$(sha256sum < "$image/manifest.json")" ] \
  || { echo "bench: Hoist serves another manifest than the one pushed" >&2; exit 1; }
cmp -s "$work/pull-host/manifest.json" "$image/manifest.json" \
  || { echo "bench: the pull from Hoist differs" >&2; exit 1; }

host_rss=$(peak_mib "$host_pid")
reg_rss=$(peak_mib "$(cat "$work/reg/pid")")

python3 - "$SIZE_MB" "$LAYERS" "$host_push" "$host_pull" "$reg_push" "$reg_pull" "$host_rss" "$reg_rss" <<'PY'
import sys
size, layers = sys.argv[1:3]
hpush, hpull, rpush, rpull = map(float, sys.argv[3:7])
hrss, rrss = sys.argv[7:9]
mb = float(size)
print(f"image:                 {size} MiB in {layers} layers (skopeo, dir: to docker:// and back)")
print(f"push  hoist-host:      {hpush:6.2f} s  {mb / hpush:7.1f} MiB/s")
print(f"push  docker-registry: {rpush:6.2f} s  {mb / rpush:7.1f} MiB/s")
print(f"pull  hoist-host:      {hpull:6.2f} s  {mb / hpull:7.1f} MiB/s")
print(f"pull  docker-registry: {rpull:6.2f} s  {mb / rpull:7.1f} MiB/s")
print(f"push hoist / registry: {hpush / rpush:6.2f}x  (below 1 means hoist is faster)")
print(f"pull hoist / registry: {hpull / rpull:6.2f}x")
print(f"peak RSS (VmHWM):      hoist-host {hrss} MiB, docker-registry {rrss} MiB")
PY

[ "${STORES:-}" = shared ] || exit 0
a_pid= b_pid=
start_shared_stores "$work/shared"
trap 'kill $a_pid $b_pid 2>/dev/null; stop_shared_stores "$work/shared"; stop_registries "$work"/reg/pid "$work"/host.pid; rm -rf "$work"' EXIT
export HOIST_ADMIN_PASSWORD=$password
read -r a_pid a_port < <(start_replica "$work/shared/shared.toml" "$work/a")
read -r b_pid b_port < <(start_replica "$work/shared/shared.toml" "$work/b")
A=127.0.0.1:$a_port B=127.0.0.1:$b_port
curl -sf -u "admin:$password" -H 'content-type: application/json' \
  -d '{"name":"bench","public":false}' "http://$A/api/v1/projects" >/dev/null
pull_into() { copy --src-creds "$creds" "docker://$1/bench/app:v1" "dir:$2"; }
# The stand-in's own floor: every blob put into it at once (boto3, from moto's
# environment, timed inside Python), and copied once inside it, as a commit does.
read -r s3_put s3_copy < <("$HOIST_CACHE/tools/moto/bin/python" - "$(cat "$work/shared/s3.url")" "$image" <<'PY'
import concurrent.futures as cf, glob, sys, time, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="bench",
                  aws_secret_access_key="bench", region_name="us-east-1")
blobs = [open(f, "rb").read() for f in sorted(glob.glob(sys.argv[2] + "/layer*"))]
t = time.time()
with cf.ThreadPoolExecutor(len(blobs)) as ex:
    list(ex.map(lambda kb: s3.put_object(Bucket="hoist", Key=f"floor/{kb[0]}", Body=kb[1]), enumerate(blobs)))
put = time.time() - t
t = time.time()
with cf.ThreadPoolExecutor(len(blobs)) as ex:
    list(ex.map(lambda k: s3.copy_object(Bucket="hoist", Key=f"floor/c{k}",
                                         CopySource={"Bucket": "hoist", "Key": f"floor/{k}"}), range(len(blobs))))
print(f"{put:.3f} {time.time() - t:.3f}")
PY
)
s_push=$(timed copy --dest-creds "$creds" "dir:$layout" "docker://$A/bench/app:v1")
s_pull_a=$(timed pull_into "$A" "$work/pull-a")
s_pull_b=$(timed pull_into "$B" "$work/pull-b")
cmp -s "$work/pull-b/manifest.json" "$image/manifest.json" \
  || { echo "bench: the pull through the second replica differs" >&2; exit 1; }
both() { pull_into "$1" "$work/both-1" & pull_into "$2" "$work/both-2"; wait; rm -rf "$work"/both-*; }
s_two_one=$(timed both "$A" "$A")
s_two_two=$(timed both "$A" "$B")
python3 - "$SIZE_MB" "$host_push" "$host_pull" "$s_push" "$s_pull_a" "$s_pull_b" "$s_two_one" \
  "$s_two_two" "$(peak_mib "$a_pid")" "$(peak_mib "$b_pid")" "$s3_put" "$s3_copy" <<'PY'
import sys
mb = float(sys.argv[1])
push, pull, spush, spa, spb, one, two = map(float, sys.argv[2:9])
a_rss, b_rss = sys.argv[9:11]
s3_put, s3_copy = map(float, sys.argv[11:13])
floor = s3_put + s3_copy
print(f"--- on PostgreSQL + S3 (moto_server, in memory) ---")
print(f"floor, the stand-in:   {s3_put:6.2f} s to put every layer at once, {s3_copy:.2f} s to copy them once inside it")
print(f"push, one replica:     {spush:6.2f} s  {mb / spush:7.1f} MiB/s  ({spush / push:.2f}x the embedded host's, "
      f"{spush / floor:.2f}x the stand-in's put + copy)")
print(f"pull, same replica:    {spa:6.2f} s  {mb / spa:7.1f} MiB/s  ({spa / pull:.2f}x the embedded host's)")
print(f"pull, other replica:   {spb:6.2f} s  {mb / spb:7.1f} MiB/s")
print(f"2 pulls, one replica:  {one:6.2f} s  {2 * mb / one:7.1f} MiB/s together")
print(f"2 pulls, two replicas: {two:6.2f} s  {2 * mb / two:7.1f} MiB/s together ({one / two:.2f}x one replica's rate)")
print(f"peak RSS (VmHWM):      replica a {a_rss} MiB, replica b {b_rss} MiB")
PY
