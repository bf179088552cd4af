#!/usr/bin/env bash
# Installs what Hoist's build and tests need, and only what is missing, so that a
# second run on the same machine costs a few seconds. Tools go under $HOME/.cache/hoist,
# never into the clone.
set -euo pipefail

# Keep in step with the `wasmtime` crate in Cargo.toml: the CLI tests run the same
# runtime the host embeds.
WASMTIME_VERSION=48.0.8

HOIST_CACHE=${HOIST_CACHE:-$HOME/.cache/hoist}
TOOLS=$HOIST_CACHE/tools

# Debian packages the tests start or call: the CNCF distribution registry, skopeo and
# podman as reference clients, htpasswd for basic-auth fixtures (and ab, bench/load.sh's
# load generator, from the same package), curl for the benchmarks,
# python3-venv for the oras client below, chromium and its WebDriver for the web UI tests.
# docker.io brings dockerd (with containerd and runc) and its own client, /usr/bin/docker:
# tests/tests/docker_cli.rs starts a private dockerd of its own in a temporary folder (vfs
# storage, no bridge, no iptables; it needs root) and drives it with that client by its
# absolute path, never a `docker` found first on PATH. The tests never use the machine's
# docker service, which installing the package enables where systemd runs (not in a
# container whose policy-rc.d forbids starting services). postgresql-15 is the server
# scripts/postgres.sh initialises into a temporary folder for the scale-out tests.
APT_PACKAGES=(docker-registry skopeo podman apache2-utils curl python3-venv chromium chromium-driver docker.io postgresql-15)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt packages: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The wasm target comes from rust-toolchain.toml; rustup installs it on first use, but
# asking here makes a fresh machine fail early and clearly if it cannot.
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# Builds crate $1 at version $2 into $TOOLS/bin unless binary $3 already says that
# version; its build outputs are thrown away afterwards.
cargo_tool() {
  local crate=$1 version=$2 binary=$3
  if ! "$TOOLS/bin/$binary" --version 2>/dev/null | grep -q "^$binary $version"; then
    echo "install-deps: building $crate $version" >&2
    CARGO_TARGET_DIR=$HOIST_CACHE/$crate-build \
      cargo install --quiet --locked --root "$TOOLS" "$crate" --version "$version"
    rm -rf "$HOIST_CACHE/$crate-build"
  fi
}

# About 9 minutes on 2 cores.
cargo_tool wasmtime-cli "$WASMTIME_VERSION" wasmtime
# cargo-fuzz drives the bounded fuzzing in scripts/fuzz.sh (libFuzzer comes with the fuzz
# crate itself, from crates.io).
cargo_tool cargo-fuzz 0.13.2 cargo-fuzz

# schemathesis checks the JSON API against host/openapi.yaml (tests/tests/api_schema.rs);
# its own virtual environment, pinned.
SCHEMATHESIS_VERSION=4.32.5
if ! "$TOOLS/schemathesis/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "install-deps: python schemathesis $SCHEMATHESIS_VERSION" >&2
  python3 -m venv "$TOOLS/schemathesis"
  "$TOOLS/schemathesis/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# The Python `oras` client checks artifacts and the referrers API; it lives in its own
# virtual environment under the cache, pinned.
ORAS_VERSION=0.2.43
if ! "$TOOLS/py/bin/python" -c "import oras, sys; sys.exit(oras.__version__ != '$ORAS_VERSION')" 2>/dev/null; then
  echo "install-deps: python oras $ORAS_VERSION" >&2
  python3 -m venv "$TOOLS/py"
  "$TOOLS/py/bin/pip" install --quiet --disable-pip-version-check "oras==$ORAS_VERSION"
fi

# moto_server stands in for S3 in the scale-out tests (scripts/s3.sh starts it): one
# in-memory process with multipart uploads and CopyObject; pinned, in its own environment.
MOTO_VERSION=5.2.6
if ! "$TOOLS/moto/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "install-deps: python moto[server] $MOTO_VERSION" >&2
  python3 -m venv "$TOOLS/moto"
  "$TOOLS/moto/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

# The Node host example (examples/node): jco and preview2-shim, pinned by its committed
# package-lock.json and installed with `npm ci` under the cache, so the clone stays clean.
# Node.js and npm come with the machine (Debian's packages otherwise). The install is
# redone only when the lockfile changes, so a second run needs no network.
REPO=$(cd "$(dirname "$0")/.." && pwd)
NODE_DEPS=$HOIST_CACHE/node/examples-node
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: apt packages: nodejs npm" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
lock_sum=$(sha256sum "$REPO/examples/node/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$NODE_DEPS/.installed-lock" 2>/dev/null)" != "$lock_sum" ]; then
  echo "install-deps: npm ci for examples/node (jco, preview2-shim) into $NODE_DEPS" >&2
  rm -rf "$NODE_DEPS"
  mkdir -p "$NODE_DEPS"
  cp "$REPO/examples/node/package.json" "$REPO/examples/node/package-lock.json" "$NODE_DEPS/"
  (cd "$NODE_DEPS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_sum" >"$NODE_DEPS/.installed-lock"
fi
