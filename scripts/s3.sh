#!/usr/bin/env bash
# Starts a local S3 endpoint for the scale-out tests: moto_server (PyPI moto[server],
# installed by install-deps.sh), in memory, on a port the system picks, with one bucket.
#   scripts/s3.sh start DIR [BUCKET]   prints the endpoint URL; DIR keeps its pid and log
#   scripts/s3.sh stop DIR
# moto implements what Hoist's S3 driver uses (multipart uploads, CopyObject, ranged
# GETs, listing); it does not implement presigned-URL expiry, object lock or lifecycle
# rules, and keeps everything in memory, so it stands in for S3's protocol, not its speed.
set -euo pipefail
HOIST_CACHE=${HOIST_CACHE:-$HOME/.cache/hoist}
cmd=${1:?usage: s3.sh start|stop DIR [BUCKET]}
dir=${2:?usage: s3.sh start|stop DIR [BUCKET]}
bucket=${3:-hoist}
case $cmd in
start)
  mkdir -p "$dir"
  "$HOIST_CACHE/tools/moto/bin/moto_server" -H 127.0.0.1 -p 0 >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  url=""
  for _ in $(seq 100); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$dir/moto.log" | head -1 || true)
    [ -n "$url" ] && curl -fsS -o /dev/null "$url/" 2>/dev/null && break
    url=""
    sleep 0.1
  done
  [ -n "$url" ] || { echo "s3.sh: moto_server did not start; see $dir/moto.log" >&2; exit 1; }
  curl -fsS -X PUT -o /dev/null "$url/$bucket"
  echo "$url"
  ;;
stop)
  [ -f "$dir/moto.pid" ] && kill "$(cat "$dir/moto.pid")" 2>/dev/null || true
  ;;
*) echo "s3.sh: unknown command $cmd (start or stop)" >&2; exit 2 ;;
esac
