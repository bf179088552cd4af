#!/usr/bin/env bash
# Benchmark (issues 5, 16): an import through the host's API of a synthetic image from
# Debian's docker-registry, timed from the POST until the task has succeeded; in the same
# run, `skopeo copy` of the same image into the same host, and the floors (every blob read
# from the source with curl, in parallel; the image's bytes written durably into the
# host's data folder), with the host's CPU seconds per GiB from /proc. Then a re-import of the unchanged image; the same
# import made by a second host whose external target is the first one, i.e. over loopback
# HTTP instead of in-process; and ten imports at once while the host's memory is sampled.
# Each import that must move bytes goes to a project of its own: within a project, imports
# share blobs and would mount them instead of copying.
#   SIZE_MB=1024 LAYERS=8 CONCURRENT=10 bench/import.sh
# STORES=shared adds imports into replicas on PostgreSQL and S3 (moto_server): one import
# into one replica, then SHARED_CONCURRENT (4) at once on one replica and split over two.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
CONCURRENT=${CONCURRENT:-10}
cargo build --quiet --release --locked -p hoist-host
HOST_BIN=$CARGO_TARGET_DIR/release/hoist-host

work=$(mktemp -d)
host_pid=
loop_pid=
trap 'kill $host_pid $loop_pid 2>/dev/null; stop_registries "$work"/src/pid; rm -rf "$work"' EXIT
image=$HOIST_CACHE/bench/image-${SIZE_MB}m-${LAYERS}
build_image "$image"
src=$(start_registry "$work/src")
push_image "$image" "$src" bench/app v1
S=127.0.0.1:$src

# Starts a host with the configuration in $1 on 127.0.0.1:$2, data in $3; prints its pid.
start_host() {
  HOIST_ADMIN_PASSWORD=bench RUST_LOG=warn "$HOST_BIN" --config "$1" --listen "127.0.0.1:$2" \
    --data-dir "$3" >"$3.log" 2>&1 &
  echo $!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && break; sleep 0.1; done
}
# The host, as an admin would run it, allowed to reach the loopback source.
H=127.0.0.1:$(free_port)
cat > "$work/hoist.toml" <<TOML
[imports]
workers = $CONCURRENT
per_registry = $CONCURRENT
[egress]
allowed_networks = ["127.0.0.0/8"]
[registries."$S"]
insecure = true
TOML
host_pid=$(start_host "$work/hoist.toml" "${H#*:}" "$work/hoist")
# A second host whose imports land in the first one over loopback HTTP.
L=127.0.0.1:$(free_port)
echo bench > "$work/target-password"
{ cat "$work/hoist.toml"; printf '[target]\nurl = "http://%s"\nusername = "admin"\npassword_file = "%s"\n' "$H" "$work/target-password"; } > "$work/loopback.toml"
loop_pid=$(start_host "$work/loopback.toml" "${L#*:}" "$work/loopback")
api() { curl -sf -u admin:bench -H 'content-type: application/json' "$@"; }
for p in viaskopeo imported loopback $(seq -f 'concurrent%g' 1 "$CONCURRENT"); do
  api -X POST "http://$H/api/v1/projects" -d "{\"name\":\"$p\",\"public\":false}" >/dev/null
done
api -X POST "http://$L/api/v1/projects" -d '{"name":"loopback","public":false}' >/dev/null

# Starts an import on host $1 into project $2; prints the task id. No python in what is
# timed: started through pyenv's shim, each python3 costs about 85 ms, which once made up
# most of the re-import's time.
start_import() {
  api -X POST "http://$1/api/v1/projects/$2/images/import" \
    -d "{\"source_url\":\"$S/bench/app:v1\",\"target_image\":\"app\",\"target_tag\":\"v1\"}" |
    sed -n 's/.*"task_id":"\([^"]*\)".*/\1/p'
}
# Waits until every task named (on host $1) has finished. Each task's event stream ends
# when the task does, so nothing polls: on two cores, a poll every few milliseconds would
# take CPU from the import it times.
wait_tasks() {
  local h=$1 id
  shift
  for id in "$@"; do api -N "http://$h/api/v1/tasks/$id/events" >/dev/null; done
}
# Fails unless every task named (on host $1) succeeded; outside the timed part.
check_tasks() {
  local h=$1 id state
  shift
  for id in "$@"; do
    state=$(api "http://$h/api/v1/tasks/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$state" = succeeded ] || { echo "bench: task $id $state" >&2; api "http://$h/api/v1/tasks/$id" >&2; exit 1; }
  done
}

read_all_blobs "$image" "$src" bench/app  # once to warm the page cache, as the push left it
t=$(now); read_all_blobs "$image" "$src" bench/app; limit=$(elapsed "$t")
# The disk's floor: the image's bytes written into the host's data folder and made
# durable, one file per layer in parallel, as an import writes them. Every registry that
# fsyncs its blobs (the host does, and so does distribution) pays at least this.
t=$(now); write_durably "$work/hoist" "$SIZE_MB" "$LAYERS"; disk=$(elapsed "$t")
read -r hashing hash_rate < <(hash_floor "$SIZE_MB")

t=$(now)
skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false --dest-creds admin:bench \
  "docker://$S/bench/app:v1" "docker://$H/viaskopeo/app:v1"
skopeo_s=$(elapsed "$t")

cpu0=$(cpu_seconds "$host_pid"); src0=$(cpu_seconds "$(cat "$work/src/pid")")
t=$(now); id=$(start_import "$H" imported); wait_tasks "$H" "$id"; import_s=$(elapsed "$t"); check_tasks "$H" "$id"
import_cpu=$(python3 -c "print($(cpu_seconds "$host_pid") - $cpu0)")
source_cpu=$(python3 -c "print($(cpu_seconds "$(cat "$work/src/pid")") - $src0)")
t=$(now); id=$(start_import "$H" imported); wait_tasks "$H" "$id"; again_s=$(elapsed "$t"); check_tasks "$H" "$id"
cpu0=$(python3 -c "print($(cpu_seconds "$host_pid") + $(cpu_seconds "$loop_pid"))")
t=$(now); id=$(start_import "$L" loopback); wait_tasks "$L" "$id"; loopback_s=$(elapsed "$t"); check_tasks "$L" "$id"
loopback_cpu=$(python3 -c "print($(cpu_seconds "$host_pid") + $(cpu_seconds "$loop_pid") - $cpu0)")

[ "$(skopeo inspect --raw --tls-verify=false --creds admin:bench "docker://$H/imported/app:v1" | sha256sum)" = \
  "$(skopeo inspect --raw --tls-verify=false "docker://$S/bench/app:v1" | sha256sum)" ] \
  || { echo "bench: the import's manifest differs from the source's" >&2; exit 1; }

# Ten at once, each into a project that holds nothing yet, so that every blob moves.
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$host_pid/status"; }
before_kib=$(rss_kib)
t=$(now)
ids=()
for i in $(seq 1 "$CONCURRENT"); do ids+=("$(start_import "$H" "concurrent$i")"); done
peak_kib=0
( wait_tasks "$H" "${ids[@]}" ) &
waiter=$!
while kill -0 "$waiter" 2>/dev/null; do
  r=$(rss_kib); [ "$r" -gt "$peak_kib" ] && peak_kib=$r
  sleep 0.1
done
wait "$waiter"
concurrent_s=$(elapsed "$t")
check_tasks "$H" "${ids[@]}"

python3 - "$SIZE_MB" "$LAYERS" "$limit" "$disk" "$skopeo_s" "$import_s" "$import_cpu" "$again_s" \
  "$loopback_s" "$loopback_cpu" "$CONCURRENT" "$concurrent_s" "$before_kib" "$peak_kib" \
  "$hashing" "$hash_rate" "$source_cpu" <<'PY'
import os, sys
size, layers = sys.argv[1:3]
limit, disk, skopeo, imp, cpu, again, loop, loop_cpu = map(float, sys.argv[3:11])
n, conc, before, peak = int(sys.argv[11]), float(sys.argv[12]), int(sys.argv[13]), int(sys.argv[14])
hashing, hash_rate, source_cpu = float(sys.argv[15]), sys.argv[16], float(sys.argv[17])
cores = os.cpu_count()
floor = max(limit, disk)
gib = int(size) / 1024
print(f"image:                 {size} MiB in {layers} layers")
print(f"floor, read (curl):    {limit:6.2f} s")
print(f"floor, disk:           {disk:6.2f} s   (write + fsync, {layers} files in parallel, into the host's data folder)")
print(f"floor, hashing:        {hashing:6.2f} s   (sha256 of every byte over {cores} cores, {hash_rate} GB/s each; "
      f"not in the targets' floor)")
print(f"skopeo copy into host: {skopeo:6.2f} s   {skopeo / floor:5.2f}x the larger floor")
print(f"import (API to done):  {imp:6.2f} s   {imp / floor:5.2f}x the larger floor (target: at most 1.5)")
print(f"skopeo / import:       {skopeo / imp:6.2f}x  (target: at least 2)")
print(f"host CPU, import:      {cpu:6.2f} s   {cpu / gib:.2f} CPU s per GiB (user + system); the source "
      f"registry's {source_cpu:.2f} s beside it: both cores busy for {(cpu + source_cpu) / cores:.2f} s")
print(f"re-import, unchanged:  {again:6.3f} s   (target: under 0.1 s)")
print(f"same import, loopback: {loop:6.2f} s   in-process is {loop / imp:.2f}x as fast (target: at least 1); "
      f"{loop_cpu / gib:.2f} CPU s per GiB in the two hosts")
print(f"{n} imports at once:    {conc:6.2f} s   {conc / (n * floor):5.2f}x ({n} x the larger floor) (target: at most 1.2); "
      f"host RSS {before // 1024} MiB before, peak {peak // 1024} MiB (target: under 120)")
PY

[ "${STORES:-}" = shared ] || exit 0
kill $loop_pid 2>/dev/null || true
a_pid= b_pid=
start_shared_stores "$work/shared"
trap 'kill $host_pid $a_pid $b_pid 2>/dev/null; stop_shared_stores "$work/shared"; stop_registries "$work"/src/pid; rm -rf "$work"' EXIT
{ cat "$work/shared/shared.toml"; cat "$work/hoist.toml"; } > "$work/replica.toml"
export HOIST_ADMIN_PASSWORD=bench
read -r a_pid a_port < <(start_replica "$work/replica.toml" "$work/a")
read -r b_pid b_port < <(start_replica "$work/replica.toml" "$work/b")
A=127.0.0.1:$a_port B=127.0.0.1:$b_port
SHARED_CONCURRENT=${SHARED_CONCURRENT:-4}
for p in shared $(seq -f 'one%g' 1 "$SHARED_CONCURRENT") $(seq -f 'two%g' 1 "$SHARED_CONCURRENT"); do
  api -X POST "http://$A/api/v1/projects" -d "{\"name\":\"$p\",\"public\":false}" >/dev/null
done
t=$(now); id=$(start_import "$A" shared); wait_tasks "$A" "$id"; shared_s=$(elapsed "$t"); check_tasks "$A" "$id"
t=$(now); ids=()
for i in $(seq 1 "$SHARED_CONCURRENT"); do ids+=("$(start_import "$A" "one$i")"); done
wait_tasks "$A" "${ids[@]}"; one_s=$(elapsed "$t"); check_tasks "$A" "${ids[@]}"
t=$(now); ids_a=(); ids_b=()
for i in $(seq 1 "$SHARED_CONCURRENT"); do
  if [ $((i % 2)) = 1 ]; then ids_a+=("$(start_import "$A" "two$i")"); else ids_b+=("$(start_import "$B" "two$i")"); fi
done
wait_tasks "$A" "${ids_a[@]}"; wait_tasks "$B" "${ids_b[@]}"; two_s=$(elapsed "$t")
check_tasks "$A" "${ids_a[@]}"; check_tasks "$B" "${ids_b[@]}"
python3 - "$SIZE_MB" "$import_s" "$shared_s" "$SHARED_CONCURRENT" "$one_s" "$two_s" \
  "$(peak_mib "$a_pid")" "$(peak_mib "$b_pid")" <<'PY'
import sys
mb = float(sys.argv[1])
embedded, shared = float(sys.argv[2]), float(sys.argv[3])
n, one, two = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
a_rss, b_rss = sys.argv[7:9]
print(f"--- on PostgreSQL + S3 (moto_server, in memory) ---")
print(f"import, one replica:   {shared:6.2f} s  {mb / shared:7.1f} MiB/s  ({shared / embedded:.2f}x the embedded host's)")
print(f"{n} at once, 1 replica: {one:6.2f} s  {n * mb / one:7.1f} MiB/s together")
print(f"{n} at once, 2 replicas:{two:6.2f} s  {n * mb / two:7.1f} MiB/s together ({one / two:.2f}x one replica's rate)")
print(f"peak RSS (VmHWM):      replica a {a_rss} MiB, replica b {b_rss} MiB")
PY
