#!/usr/bin/env bash
# Starts the registry host with the built-in plugin on 127.0.0.1:5000, its data in
# ./hoist-data, and prints where to open it. Without HOIST_ADMIN_PASSWORD (or
# HOIST_ADMIN_PASSWORD_FILE) it runs in development mode, which generates an admin
# password, prints it once and keeps it in the data folder. Pass host flags after the
# script, for example --listen 0.0.0.0:5000 or --config hoist.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
dev=()
if [ -z "${HOIST_ADMIN_PASSWORD:-}${HOIST_ADMIN_PASSWORD_FILE:-}" ]; then
  dev=(--dev)
fi
exec cargo run --release --locked -p hoist-host -- "${dev[@]}" "$@"
