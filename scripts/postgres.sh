#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (Debian's PostgreSQL 15) for the scale-out tests: a
# cluster initialised into DIR, listening only on a Unix socket in DIR (no TCP port to
# collide on), no system service. PostgreSQL refuses to run as root, so as root the
# cluster belongs to the `postgres` user.
#   scripts/postgres.sh start DIR   prints the connection URL (database `hoist`)
#   scripts/postgres.sh stop DIR
set -euo pipefail
cmd=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "postgres.sh: no PostgreSQL server; run scripts/install-deps.sh" >&2; exit 1; }
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
start)
  mkdir -p "$dir"
  # The cluster and its socket live in a folder of their own under /tmp: the server's
  # user must reach it (a root-owned test folder is closed to it), and a socket's path
  # must stay under 108 bytes.
  cluster=$(mktemp -d /tmp/hoist-pg.XXXXXX)
  echo "$cluster" >"$dir/cluster"
  [ "$(id -u)" -eq 0 ] && chown postgres "$cluster"
  chmod 755 "$cluster"
  as_owner "$bin/initdb" -D "$cluster/data" -U hoist -A trust --no-sync >"$dir/initdb.log" 2>&1
  as_owner "$bin/pg_ctl" -D "$cluster/data" -l "$cluster/postgres.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$cluster' -c fsync=off -c max_connections=200" \
    start >/dev/null
  as_owner "$bin/createdb" -h "$cluster" -U hoist hoist
  # The socket folder goes in the URL's host, percent-encoded.
  echo "postgres://hoist@$(printf %s "$cluster" | sed 's|/|%2F|g')/hoist"
  ;;
stop)
  cluster=$(cat "$dir/cluster" 2>/dev/null) || exit 0
  as_owner "$bin/pg_ctl" -D "$cluster/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$cluster" "$dir/cluster"
  ;;
*) echo "postgres.sh: unknown command $cmd (start or stop)" >&2; exit 2 ;;
esac
