#!/usr/bin/env bash
# Benchmark (issues 3, 16): the plugin copying a synthetic image between two Debian
# docker-registry instances, against `skopeo copy` of the same image between the same
# registries in the same run. Prints the floors of this run (reading every blob with curl
# in parallel; curl uploading every blob into the target in parallel, which is what the
# target itself costs; writing the bytes durably into the target's folder), both times as
# ratios to the larger floor and to each other, wasmtime's CPU seconds per GiB and peak
# memory, and the re-import time.
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
t=$(now); upload_all_blobs "$image" "$dst" floor/app; upload=$(elapsed "$t")
t=$(now); write_durably "$work/dst/data" "$SIZE_MB" "$LAYERS"; disk=$(elapsed "$t")

t=$(now)
skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false \
  "docker://$S/bench/app:v1" "docker://$D/skopeo/app:v1"
skopeo_s=$(elapsed "$t")

t=$(now)
/usr/bin/time -f '%M %U %S' -o "$work/rss" wasmtime run -S http "$WASM" copy \
  --plain-http "$S" --plain-http "$D" "$S/bench/app:v1" "$D/plugin/app:v1" >/dev/null 2>"$work/log" \
  || { cat "$work/log"; exit 1; }
plugin_s=$(elapsed "$t")
read -r rss_kib user_s sys_s < "$work/rss"
rss_mb=$((rss_kib / 1024))
cpu_s=$(python3 -c "print($user_s + $sys_s)")

t=$(now)
wasmtime run -S http "$WASM" copy --plain-http "$S" --plain-http "$D" \
  "$S/bench/app:v1" "$D/plugin/app:v1" >/dev/null 2>&1
again_s=$(elapsed "$t")

[ "$(skopeo inspect --raw --tls-verify=false "docker://$D/plugin/app:v1" | sha256sum)" = \
  "$(skopeo inspect --raw --tls-verify=false "docker://$S/bench/app:v1" | sha256sum)" ] \
  || { echo "bench: the copy's manifest differs from the source's" >&2; exit 1; }

python3 - "$SIZE_MB" "$LAYERS" "$limit" "$upload" "$disk" "$skopeo_s" "$plugin_s" "$rss_mb" "$cpu_s" "$again_s" <<'PY'
import sys
size, layers = sys.argv[1:3]
limit, upload, disk, skopeo, plugin = map(float, sys.argv[3:8])
rss, cpu, again = sys.argv[8], float(sys.argv[9]), float(sys.argv[10])
floor = max(limit, upload, disk)
gib = int(size) / 1024
print(f"image:                  {size} MiB in {layers} layers")
print(f"floor, read (curl):     {limit:6.2f} s")
print(f"floor, target upload:   {upload:6.2f} s   (curl PUTs every blob into the target)")
print(f"floor, disk:            {disk:6.2f} s   (write + fsync into the target's folder)")
print(f"skopeo copy:            {skopeo:6.2f} s   {skopeo / floor:5.2f}x the larger floor")
print(f"hoist (wasmtime):       {plugin:6.2f} s   {plugin / floor:5.2f}x the larger floor, "
      f"{plugin / upload:.2f}x the upload floor (target: at most 1.2)")
print(f"skopeo / hoist:         {skopeo / plugin:6.2f}x  (above 1 means hoist is faster)")
print(f"hoist CPU:              {cpu:6.2f} s   {cpu / gib:.2f} CPU s per GiB (wasmtime, user + system), peak RSS {rss} MiB")
print(f"re-import:              {again:6.2f} s")
PY

# Referrers (issue 15): a 4-platform index of REF_MB (default: the image's size) whose
# index and platform manifests carry 3 referrers each (a signature, an SBOM, an
# attestation, listed under the referrers tag schema since distribution has no referrers
# API), copied with and without them. Both registries log their requests, so the requests
# the referrers cost are counted too, and their CPU time is read from /proc.
REF_MB=${REF_MB:-$SIZE_MB}
REF_ROUNDS=${REF_ROUNDS:-3}
ref=$work/ref
mkdir -p "$ref"
rsrc=$(ACCESS_LOG=1 start_registry "$ref/src")
rdst=$(ACCESS_LOG=1 start_registry "$ref/dst")
trap 'stop_registries "$work"/src/pid "$work"/dst/pid "$ref"/src/pid "$ref"/dst/pid; rm -rf "$work"' EXIT
python3 - "127.0.0.1:$rsrc" "$REF_MB" <<'PY'
import hashlib, json, os, sys, urllib.request
host, size_mb = sys.argv[1], int(sys.argv[2])
repo = "bench/signed"
def req(method, path, body=None, headers={}):
    r = urllib.request.Request(f"http://{host}{path}", data=body, method=method, headers=headers)
    return urllib.request.urlopen(r)
def blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = req("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    loc = loc if loc.startswith("http") else f"http://{host}{loc}"
    sep = "&" if "?" in loc else "?"
    urllib.request.urlopen(urllib.request.Request(f"{loc}{sep}digest={digest}", data=data, method="PUT",
        headers={"Content-Type": "application/octet-stream"}))
    return {"digest": digest, "size": len(data)}
def manifest(ref, media, doc):
    data = json.dumps(doc).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req("PUT", f"/v2/{repo}/manifests/{ref or digest}", data, {"Content-Type": media})
    return {"mediaType": media, "digest": digest, "size": len(data)}
OCI_M, OCI_I = "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"
def attach_three(subject):
    entries = []
    for kind in ["application/vnd.dev.cosign.artifact.sig.v1+json", "application/spdx+json",
                 "application/vnd.in-toto+json"]:
        layer = blob(os.urandom(4096))
        d = manifest(None, OCI_M, {"schemaVersion": 2, "mediaType": OCI_M, "artifactType": kind,
                             "config": {"mediaType": "application/vnd.oci.empty.v1+json", **blob(b"{}")},
                             "layers": [{"mediaType": kind, **layer}], "subject": subject})
        entries.append({**d, "artifactType": kind})
    manifest(subject["digest"].replace(":", "-"), OCI_I,
             {"schemaVersion": 2, "mediaType": OCI_I, "manifests": entries})
children = []
for arch in ["amd64", "arm64", "ppc64le", "s390x"]:
    layer = blob(os.urandom(size_mb << 20 >> 2))
    config = blob(json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode())
    m = manifest(None, OCI_M, {"schemaVersion": 2, "mediaType": OCI_M,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]})
    children.append({**m, "platform": {"os": "linux", "architecture": arch}})
index = manifest("v1", OCI_I, {"schemaVersion": 2, "mediaType": OCI_I, "manifests": children})
for subject in [index] + [{k: c[k] for k in ("mediaType", "digest", "size")} for c in children]:
    attach_three(subject)
PY
RS=127.0.0.1:$rsrc
RD=127.0.0.1:$rdst
requests() { grep -c '"\(GET\|HEAD\|PUT\|POST\|PATCH\|DELETE\) /v2/' "$1" 2>/dev/null || true; }
# Alternate the two, REF_ROUNDS times each: loopback noise is about as large as what is
# measured, so the median and the best of each are printed.
registries_cpu() { python3 -c "print($(cpu_seconds "$(cat "$ref/src/pid")") + $(cpu_seconds "$(cat "$ref/dst/pid")"))"; }
for round in $(seq 1 "$REF_ROUNDS"); do
  for mode in without with; do
    flag=(); [ "$mode" = without ] && flag=(--no-referrers)
    before_src=$(requests "$ref/src/access.log"); before_dst=$(requests "$ref/dst/access.log")
    cpu0=$(registries_cpu)
    t=$(now)
    wasmtime run -S http "$WASM" copy "${flag[@]}" --plain-http "$RS" --plain-http "$RD" \
      "$RS/bench/signed:v1" "$RD/$mode-$round/signed:v1" >/dev/null 2>"$work/log" \
      || { cat "$work/log"; exit 1; }
    s=$(elapsed "$t")
    cpu=$(python3 -c "print($(registries_cpu) - $cpu0)")
    src_n=$(( $(requests "$ref/src/access.log") - before_src ))
    dst_n=$(( $(requests "$ref/dst/access.log") - before_dst ))
    echo "$mode $s $src_n $dst_n $cpu" >> "$work/ref-runs"
  done
done
python3 - "$REF_MB" "$work/ref-runs" <<'PY'
import statistics, sys
size, path = sys.argv[1], sys.argv[2]
runs = {"with": [], "without": []}
for line in open(path):
    mode, s, src, dst, cpu = line.split()
    runs[mode].append((float(s), int(src), int(dst), float(cpu)))
med = {m: statistics.median(r[0] for r in runs[m]) for m in runs}
best = {m: min(r[0] for r in runs[m]) for m in runs}
cpu = {m: statistics.median(r[3] for r in runs[m]) for m in runs}
w, wo = runs["with"][0], runs["without"][0]
print(f"referrers:         {size} MiB, 4 platforms, 3 referrers per manifest (15 with the index's), "
      f"{len(runs['with'])} runs each")
print(f"  without:         median {med['without']:5.2f} s, best {best['without']:5.2f} s   "
      f"requests: {wo[1]} to the source, {wo[2]} to the target; registries' CPU {cpu['without']:.2f} s")
print(f"  with:            median {med['with']:5.2f} s, best {best['with']:5.2f} s   "
      f"requests: {w[1]} to the source, {w[2]} to the target; registries' CPU {cpu['with']:.2f} s")
print(f"  extra time:      median {(med['with'] / med['without'] - 1) * 100:+5.1f} %, best "
      f"{(best['with'] / best['without'] - 1) * 100:+5.1f} %, {med['with'] - med['without']:+.2f} s "
      f"(target: under 10% on loopback)")
PY
