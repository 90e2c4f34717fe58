#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster (Debian's packages) for the `postgres`-marked tests.
#
#   .ci/postgres.sh start   # prints: export GUARD_TEST_POSTGRES_DSN=postgresql://...
#   .ci/postgres.sh stop
#
# The cluster lives in $GUARD_PG_DIR (default /tmp/guard-pg), runs as the `postgres` user on a free
# loopback port, trusts local connections (a test database on 127.0.0.1 only) and is deleted on stop.
set -euo pipefail

DIR="${GUARD_PG_DIR:-/tmp/guard-pg}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"

as_postgres() {
    if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    if [ -z "$BIN" ]; then
        echo "PostgreSQL is not installed: apt-get install -y postgresql" >&2
        exit 1
    fi
    if [ -f "$DIR/port" ] && as_postgres "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        echo "export GUARD_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:$(cat "$DIR/port")/guard_test"
        return
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    [ "$(id -u)" = "0" ] && chown postgres:postgres "$DIR"
    # A free port: bind to 0 and read what the kernel chose.
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    echo "$port" > "$DIR/port"
    as_postgres "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 >"$DIR/initdb.log" 2>&1
    as_postgres "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $DIR -c fsync=off -c max_connections=200" start >/dev/null
    as_postgres "$BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres guard_test
    echo "export GUARD_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:$port/guard_test"
}

stop() {
    if [ -d "$DIR/data" ] && [ -n "$BIN" ]; then
        as_postgres "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
