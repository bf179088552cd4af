# Shared by the benchmark scripts: registries on loopback and a synthetic image.
# Sourced from the repository's root, not run. Sourcing it loads the build environment,
# installs what is missing, and sets the image's size (SIZE_MB, LAYERS) unless given.
source scripts/env.sh
scripts/install-deps.sh
SIZE_MB=${SIZE_MB:-1024}
LAYERS=${LAYERS:-8}

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts Debian's docker-registry on a free loopback port; prints the port. With
# ACCESS_LOG=1 it logs every request to $dir/access.log, for counting requests.
start_registry() {
  local dir=$1 port log=true out=/dev/null
  port=$(free_port)
  mkdir -p "$dir/data"
  if [ "${ACCESS_LOG:-0}" = 1 ]; then log=false; out=$dir/access.log; fi
  cat > "$dir/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: $log}}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
  docker-registry serve "$dir/config.yml" >"$out" 2>&1 &
  echo $! > "$dir/pid"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  echo "$port"
}

stop_registries() {
  for pid in "$@"; do kill "$(cat "$pid")" 2>/dev/null || true; done
}

# Builds (once, cached) LAYERS gzip layers of random data, SIZE_MB in total, with a config
# and a manifest, under $1.
build_image() {
  local dir=$1 per=$((SIZE_MB / LAYERS)) i
  mkdir -p "$dir"
  [ -f "$dir/manifest.json" ] && return
  echo "bench: building a ${SIZE_MB} MiB image of $LAYERS layers (once, cached in $dir)" >&2
  for i in $(seq 1 "$LAYERS"); do
    head -c "$((per << 20))" /dev/urandom | gzip -1 > "$dir/layer$i" &
  done
  wait
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$dir/config"
  python3 - "$dir" "$LAYERS" <<'PY'
import hashlib, json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
def desc(path, media):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"mediaType": media, "digest": "sha256:" + h.hexdigest(), "size": os.path.getsize(path)}
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": desc(f"{d}/config", "application/vnd.oci.image.config.v1+json"),
     "layers": [desc(f"{d}/layer{i}", "application/vnd.oci.image.layer.v1.tar+gzip") for i in range(1, n + 1)]}
open(f"{d}/manifest.json", "w").write(json.dumps(m))
PY
}

# Uploads the file $1 as the blob $2 into http://127.0.0.1:$3/$4: a POST for a session,
# then one streamed PUT with the digest; with the bearer token $TOKEN when it is set.
upload_blob() {
  local f=$1 digest=$2 port=$3 repo=$4 loc auth=()
  [ -n "${TOKEN:-}" ] && auth=(-H "Authorization: Bearer $TOKEN")
  loc=$(curl -sf "${auth[@]}" -X POST -D - -o /dev/null "http://127.0.0.1:$port/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case $loc in http*) ;; *) loc="http://127.0.0.1:$port$loc" ;; esac
  case $loc in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  curl -sf "${auth[@]}" -X PUT -H 'content-type: application/octet-stream' -T "$f" "$loc" >/dev/null
}

# Pushes the image in $1 to http://127.0.0.1:$2/$3:$4 through the registry API, with
# the bearer token $TOKEN when it is set.
push_image() {
  local dir=$1 port=$2 repo=$3 tag=$4 f auth=()
  [ -n "${TOKEN:-}" ] && auth=(-H "Authorization: Bearer $TOKEN")
  for f in "$dir"/config "$dir"/layer*; do
    upload_blob "$f" "sha256:$(sha256sum "$f" | cut -d' ' -f1)" "$port" "$repo"
  done
  curl -sf "${auth[@]}" -X PUT -H 'content-type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$dir/manifest.json" "http://127.0.0.1:$port/v2/$repo/manifests/$tag" >/dev/null
}

# The digests of the image in $1 from its manifest: the config's, then the layers' in order.
image_digests() {
  python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(" ".join(d["digest"] for d in [m["config"]]+m["layers"]))' "$1/manifest.json"
}

# Reads every blob of the image from the registry, in parallel, to /dev/null: the limit.
# The digests come from the manifest, so nothing but the reads is timed.
read_all_blobs() {
  local dir=$1 port=$2 repo=$3 digest pids=()
  for digest in $(image_digests "$dir"); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/v2/$repo/blobs/$digest" &
    pids+=($!)
  done
  # Only these: a bare `wait` would also wait for servers the caller runs in the background.
  wait "${pids[@]}"
}

# Uploads every blob of the image in $1 into http://127.0.0.1:$2/$3 with curl, in
# parallel, each as one POST for a session and one streamed PUT with its digest: what the
# target registry itself costs to take the image in, hashing and durable writes included.
# The copy of a registry-to-registry tool can approach this, never beat it.
upload_all_blobs() {
  local dir=$1 port=$2 repo=$3 i=0 f digest pids=() files=("$1"/config)
  for i in $(seq 1 "$LAYERS"); do files+=("$dir/layer$i"); done
  i=0
  # The digests come from the manifest (config first, then the layers in order), so that
  # nothing but the uploads is timed.
  for digest in $(image_digests "$dir"); do
    f=${files[$i]}
    i=$((i + 1))
    upload_blob "$f" "$digest" "$port" "$repo" &
    pids+=($!)
  done
  wait "${pids[@]}"
}

# CPU seconds (user + system) process $1 has used so far, from /proc.
cpu_seconds() {
  awk -v tck="$(getconf CLK_TCK)" '{ print ($14 + $15) / tck }' "/proc/$1/stat"
}

# Writes $2 MiB into the folder $1 as $3 files in parallel, each made durable, then
# removes them. Direct I/O, so that only the disk is timed, not copies into the page cache.
write_durably() {
  local dir=$1 per=$(($2 / $3)) i pids=()
  mkdir -p "$dir"
  for i in $(seq 1 "$3"); do
    dd if=/dev/zero of="$dir/durable$i" bs=1M count="$per" oflag=direct conv=fsync status=none &
    pids+=($!)
  done
  wait "${pids[@]}"
  rm -f "$dir"/durable*
}

# The hashing floor of $1 MiB: every byte's sha256 (which a registry must compute before
# a blob is visible), spread over every core of the machine, at the rate one core
# hashes here (OpenSSL through Python, with the CPU's SHA extensions, as the host's sha2).
# Prints the seconds and the rate of one core in GB/s.
hash_floor() {
  python3 - "$1" <<'PY'
import hashlib, os, sys, time
size = int(sys.argv[1]) << 20
block = os.urandom(64 << 20)
h = hashlib.sha256()
t = time.perf_counter()
for _ in range(4):
    h.update(block)
rate = (256 << 20) / (time.perf_counter() - t)
print(f"{size / rate / os.cpu_count():.3f} {rate / 1e9:.2f}")
PY
}

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$(now) - $1:.3f}')"; }

# The scale-out stores (STORES=shared): a throwaway PostgreSQL and moto_server as S3,
# under $1, and $1/shared.toml, the part of the configuration every replica shares (keys,
# database, bucket). moto keeps every object in memory, in Python: its figures show the
# cost of the hop, not S3's speed.
start_shared_stores() {
  local dir=$1 s3 pg
  mkdir -p "$dir/keys"
  s3=$(scripts/s3.sh start "$dir/s3")
  echo "$s3" > "$dir/s3.url"
  pg=$(scripts/postgres.sh start "$dir/pg")
  printf 'access_key_id = "bench"\nsecret_access_key = "bench"\n' > "$dir/s3.credentials"
  cat > "$dir/shared.toml" <<TOML
keys_dir = "$dir/keys"
[database]
url = "$pg"
[storage.s3]
endpoint = "$s3"
bucket = "hoist"
credentials_file = "$dir/s3.credentials"
TOML
}

stop_shared_stores() {
  scripts/s3.sh stop "$1/s3"
  scripts/postgres.sh stop "$1/pg"
}

# Starts a hoist-host replica ($HOST_BIN) with the configuration $1 and the data folder
# $2 on a port it binds itself; prints "pid port" once it answers. The admin's password
# is $HOIST_ADMIN_PASSWORD.
start_replica() {
  local config=$1 data=$2 pid port=""
  RUST_LOG=warn "$HOST_BIN" --config "$config" --listen 127.0.0.1:0 --data-dir "$data" \
    >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    port=$(sed -n 's|^Hoist is running: open http://127.0.0.1:\([0-9]*\)/$|\1|p' "$data.log" | head -1)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "bench: the replica did not start:" >&2; cat "$data.log" >&2; exit 1; }
  echo "$pid $port"
}

# Peak RSS (VmHWM) of process $1, in MiB.
peak_mib() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$1/status"; }
