#!/usr/bin/env bash
# Starts the registry host with the built-in plugin on 127.0.0.1:5000 and prints where to
# open it. Pass host flags after the script, for example --listen 0.0.0.0:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
exec cargo run --release --locked -p hoist-host -- "$@"
