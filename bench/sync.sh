#!/usr/bin/env bash
# Benchmark (issue 14): a sync rule over REPOS repositories × TAGS tags in a local Debian
# docker-registry. The first run copies everything (cold); the second finds nothing changed
# (no-op) and is what a nightly sync costs. In the same run: the floor of a no-op (curl
# making the minimum requests itself: one tag-list page per repository and one manifest
# HEAD per tag, in parallel), and `skopeo sync` of the same repositories, cold and again.
# Requests to the source are counted from the registry's own access log, for every tool.
#   REPOS=10 TAGS=20 bench/sync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=1 LAYERS=1 source bench/lib.sh
REPOS=${REPOS:-10}
TAGS=${TAGS:-20}
cargo build --quiet --release --locked -p hoist-host
HOST_BIN=$CARGO_TARGET_DIR/release/hoist-host

work=$(mktemp -d)
host_pid=
src_pid=
trap 'kill $host_pid $src_pid 2>/dev/null; rm -rf "$work"' EXIT

# The source, with its access log on: one line per request, whoever makes it.
src=$(free_port)
mkdir -p "$work/src/data"
cat > "$work/src/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $work/src/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$src}
YML
docker-registry serve "$work/src/config.yml" >"$work/src/access.log" 2>&1 &
src_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$src/v2/" >/dev/null && break; sleep 0.1; done
S=127.0.0.1:$src
# Requests the source has answered so far.
requests() { grep -c '"[A-Z]* /v2/' "$work/src/access.log" || true; }

# Every tag its own small image (one 4 KiB layer), so that the cold run copies each.
echo "bench: pushing $REPOS repositories x $TAGS tags" >&2
python3 - "$S" "$REPOS" "$TAGS" <<'PY'
import hashlib, json, os, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
host, repos, tags = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def call(method, url, body=b"", ctype="application/octet-stream"):
    req = urllib.request.Request(url, data=body if method != "POST" else b"", method=method,
                                 headers={"content-type": ctype})
    with urllib.request.urlopen(req) as r:
        return r.headers
def blob(repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = call("POST", f"http://{host}/v2/{repo}/blobs/uploads/")["Location"]
    if not loc.startswith("http"):
        loc = f"http://{host}{loc}"
    call("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={digest}", data)
    return {"digest": digest, "size": len(data)}
def push(job):
    r, t = job
    repo = f"bench/repo{r}"
    # A config of its own per tag: distribution mis-links one blob pushed concurrently
    # into one repository (DIGEST_INVALID / MANIFEST_BLOB_UNKNOWN on the manifest).
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": {"tag": f"1.{t}.0"}},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    c = dict(blob(repo, config), mediaType="application/vnd.oci.image.config.v1+json")
    l = dict(blob(repo, os.urandom(4096)), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": c, "layers": [l]}
    call("PUT", f"http://{host}/v2/{repo}/manifests/1.{t}.0", json.dumps(m).encode(),
         "application/vnd.oci.image.manifest.v1+json")
with ThreadPoolExecutor(8) as pool:
    list(pool.map(push, [(r, t) for r in range(repos) for t in range(tags)]))
PY

H=127.0.0.1:$(free_port)
cat > "$work/hoist.toml" <<TOML
[egress]
allowed_networks = ["127.0.0.0/8"]
[registries."$S"]
insecure = true
[sync]
scheduler = false
TOML
HOIST_ADMIN_PASSWORD=bench RUST_LOG=warn "$HOST_BIN" --config "$work/hoist.toml" --listen "$H" \
  --data-dir "$work/hoist" >"$work/hoist.log" 2>&1 &
host_pid=$!
for _ in $(seq 300); do curl -sf "http://$H/healthz" >/dev/null && break; sleep 0.1; done
api() { curl -sf -u admin:bench -H 'content-type: application/json' "$@"; }
for p in mirror viaskopeo; do
  api -X POST "http://$H/api/v1/projects" -d "{\"name\":\"$p\",\"public\":false}" >/dev/null
done
rule=$(api -X POST "http://$H/api/v1/projects/mirror/sync-rules" \
  -d "{\"name\":\"bench\",\"source\":{\"registry\":\"$S\",\"repositories\":[\"bench/*\"]}}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# Runs the rule, waits on the run's event stream (which ends with the run) and prints the
# finished run's JSON on stdout.
run_rule() {
  local id
  id=$(api -X POST "http://$H/api/v1/projects/mirror/sync-rules/$rule/run" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["id"])')
  api -N "http://$H/api/v1/sync-runs/$id/events" >/dev/null
  api "http://$H/api/v1/sync-runs/$id"
}
field() { python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }

before=$(requests); t=$(now); cold=$(run_rule); cold_s=$(elapsed "$t"); cold_req=$(( $(requests) - before ))
[ "$(field 'r["state"]' <<<"$cold")" = succeeded ] || { echo "bench: cold run: $cold" >&2; exit 1; }
before=$(requests); t=$(now); noop=$(run_rule); noop_s=$(elapsed "$t"); noop_req=$(( $(requests) - before ))
[ "$(field 'r["counts"]["unchanged"]' <<<"$noop")" = $((REPOS * TAGS)) ] ||
  { echo "bench: the no-op run did not find every tag unchanged: $noop" >&2; exit 1; }

# The floor of a no-op: the same minimum requests (the catalog the glob needs, the tag
# lists, one HEAD per tag), made by curl 8 at a time.
urls=$work/urls
{
  echo "url = \"http://$S/v2/_catalog\""
  for r in $(seq 0 $((REPOS - 1))); do
    echo "url = \"http://$S/v2/bench/repo$r/tags/list\""
    for t in $(seq 0 $((TAGS - 1))); do
      echo "url = \"http://$S/v2/bench/repo$r/manifests/1.$t.0\""
    done
  done
} > "$urls"
t=$(now)
curl -s -Z --parallel-max 8 -I -H 'accept: application/vnd.oci.image.manifest.v1+json' \
  -K "$urls" >/dev/null
floor_s=$(elapsed "$t")

# skopeo sync, per repository (it has no globs), into the same host: cold, then again.
skopeo_sync() {
  local r
  for r in $(seq 0 $((REPOS - 1))); do
    skopeo sync --src docker --dest docker --src-tls-verify=false --dest-tls-verify=false \
      --dest-creds admin:bench "$S/bench/repo$r" "$H/viaskopeo" >/dev/null 2>>"$work/skopeo.log"
  done
}
before=$(requests); t=$(now); skopeo_sync; skopeo_cold_s=$(elapsed "$t"); skopeo_cold_req=$(( $(requests) - before ))
before=$(requests); t=$(now); skopeo_sync; skopeo_noop_s=$(elapsed "$t"); skopeo_noop_req=$(( $(requests) - before ))

python3 - "$REPOS" "$TAGS" "$cold_s" "$cold_req" "$noop_s" "$noop_req" "$floor_s" \
  "$skopeo_cold_s" "$skopeo_cold_req" "$skopeo_noop_s" "$skopeo_noop_req" "$noop" <<'PY'
import json, sys
repos, tags = int(sys.argv[1]), int(sys.argv[2])
cold, cold_req, noop, noop_req, floor, sk_cold, sk_cold_req, sk_noop, sk_noop_req = (
    float(x) for x in sys.argv[3:12])
run = json.loads(sys.argv[12])
minimum = 1 + repos + repos * tags
n = repos * tags
print(f"source:                    {repos} repositories x {tags} tags = {n} tags")
print(f"floor (curl, minimum requests in parallel): {floor:6.2f} s  {minimum} requests")
print(f"cold run (copies all):     {cold:6.2f} s  {int(cold_req)} requests to the source")
print(f"no-op run:                 {noop:6.2f} s  {int(noop_req)} requests "
      f"(minimum {minimum}: catalog + tag lists + one HEAD per tag)  target: under 2 s")
print(f"  no-op / floor:           {noop / floor:6.2f}x")
print(f"  the run's own count:     {json.dumps(run['requests'])}")
print(f"skopeo sync, cold:         {sk_cold:6.2f} s  {int(sk_cold_req)} requests")
print(f"skopeo sync, no change:    {sk_noop:6.2f} s  {int(sk_noop_req)} requests "
      f"({sk_noop_req / max(noop_req, 1):.1f}x ours; every manifest is a GET, i.e. a pull)")
print(f"  skopeo no-op / ours:     {sk_noop / noop:6.2f}x")
PY
