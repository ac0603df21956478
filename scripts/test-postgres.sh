#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the store tests: a temporary data folder, a loopback port,
# run as an unprivileged user (`postgres` when started as root), trust authentication on loopback.
#   scripts/test-postgres.sh start   # prints the URL; GAUNTLET_TEST_PG_URL=$(... start)
#   scripts/test-postgres.sh url     # the URL of the running cluster
#   scripts/test-postgres.sh stop    # stops it (-m immediate) and deletes its folder
#   scripts/test-postgres.sh kill|restart   # what the outage tests do to it
# State lives in $GAUNTLET_TEST_PG_DIR (default /tmp/gauntlet-test-pg).
set -euo pipefail

dir="${GAUNTLET_TEST_PG_DIR:-/tmp/gauntlet-test-pg}"
port="${GAUNTLET_TEST_PG_PORT:-55432}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [ -z "$bin" ]; then
    echo "test-postgres: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
fi

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() { echo "postgres://gauntlet@127.0.0.1:$(cat "$dir/port")/gauntlet"; }

case "${1:-}" in
start)
    if [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        url
        exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
    echo "$port" >"$dir/port"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U gauntlet >"$dir/initdb.log" 2>&1
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U gauntlet gauntlet
    url
    ;;
url) url ;;
kill) as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null ;;
restart)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|url|stop|kill|restart" >&2
    exit 2
    ;;
esac
