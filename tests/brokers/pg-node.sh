#!/bin/bash
# Start, stop or restart a private PostgreSQL 15 server for the tests
# (Debian's postgresql): own data directory, port and socket directory.
# Usage: pg-node.sh start|stop|halt|restart|conninfo|status|psql ARGS...
#   start     create the cluster on first use (initdb), start it, print the
#             conninfo ("host=127.0.0.1 port=P user=ferry dbname=postgres")
#   halt      stop the server, keep cluster and port (start brings it back:
#             a database restart as the sink sees one)
#   restart   halt, then start
#   stop      stop the server and remove the cluster
#   psql      run psql against the server (-X -q -v ON_ERROR_STOP=1 -At)
#
# State lives in $FERRY_PG_NODE_STATE (default $FERRY_TEST_STATE_DIR/pg,
# FERRY_TEST_STATE_DIR defaulting to $PWD/tests/state); a test that stops the
# server gives itself a state directory of its own. Files there:
#   env   port, data and socket directories (kept across halt/start)
#   log   what this script did and why it failed
# Exit status: 0; 77 when PostgreSQL is not installed (the caller skips);
# 1 for any other failure (the caller fails: the package is there).
# A watchdog stops the server once $FERRY_TEST_OWNER_PID (default: the
# caller) has exited, or after 2 hours at the most, even when the state
# directory is gone by then; `stop` ends the watchdog first. A running
# server is registered in $FERRY_TEST_STATE_DIR/servers/ (servers.sh), which
# `make check` checks is empty at its end.
set -u

STATE=${FERRY_PG_NODE_STATE:-${FERRY_TEST_STATE_DIR:-$PWD/tests/state}/pg}
SCALE=${FERRY_TEST_TIMEOUT_SCALE:-1}
PG_BIN=${FERRY_PG_BIN:-/usr/lib/postgresql/15/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

LOG=$STATE/log
. "$HERE/servers.sh"

log() { [ -d "$STATE" ] || return 0; printf '%s pg-node[%d]: %s\n' "$(date -u +%H:%M:%S.%3N)" $$ "$*" >>"$LOG"; }
die() {
    log "error: $*"
    echo "pg-node: $* (see $LOG)" >&2
    exit "${2:-1}"
}
now_ms() { date +%s%3N; }
deadline_ms() { echo $(( $(now_ms) + $1 * SCALE * 1000 )); }

# Commands run as postgres when we are root (initdb refuses root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

load_env() {
    [ -f "$STATE/env" ] || return 1
    # shellcheck disable=SC1091
    . "$STATE/env"
    [ -n "${DATA_DIR:-}" ] && [ -d "$DATA_DIR" ]
}

conninfo() { echo "host=127.0.0.1 port=$PORT user=ferry dbname=postgres"; }

create_cluster() {
    [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] ||
        die "PostgreSQL 15 not found in $PG_BIN (apt-get install postgresql)" 77
    if [ "$(id -u)" = 0 ]; then
        id -u postgres >/dev/null 2>&1 || die "no postgres user (is postgresql installed?)" 77
    fi
    PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])') ||
        die "cannot choose a free port with $PY"
    NODE_DIR=$STATE/node
    mkdir -p "$NODE_DIR"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$NODE_DIR"
        if ! runuser -u postgres -- test -w "$NODE_DIR" 2>/dev/null; then
            # The build tree is not reachable by postgres (e.g. under /root).
            rmdir "$NODE_DIR" 2>/dev/null
            NODE_DIR=$(mktemp -d /tmp/ferry-pg.XXXXXX) || die "mktemp failed"
            chown postgres:postgres "$NODE_DIR"
            log "build tree not reachable by user postgres; cluster in $NODE_DIR"
        fi
    fi
    DATA_DIR=$NODE_DIR/data
    SOCK_DIR=$NODE_DIR/sock
    as_pg mkdir -p "$SOCK_DIR" || die "cannot create $SOCK_DIR"
    local t0; t0=$(now_ms)
    as_pg "$PG_BIN/initdb" -D "$DATA_DIR" -A trust -U ferry -E UTF8 --locale=C.UTF-8 \
        >>"$LOG" 2>&1 || die "initdb failed"
    # A test server: no fsync wait per commit would make it faster, but the
    # sink's durability is what is tested, so fsync stays on.
    cat >"$STATE/env" <<EOF
PORT=$PORT
NODE_DIR=$NODE_DIR
DATA_DIR=$DATA_DIR
SOCK_DIR=$SOCK_DIR
EOF
    log "created cluster port=$PORT dir=$DATA_DIR initdb_ms=$(( $(now_ms) - t0 ))"
}

running() {
    as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1
}

ready() {
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U ferry -d postgres 2>/dev/null
}

# the postmaster's pid, from its pid file
server_pid() { head -n 1 "$DATA_DIR/postmaster.pid" 2>/dev/null; }
registry_file() { echo "$FERRY_SERVERS_DIR/pg.$PORT"; }

start_watchdog() {
    local owner=${FERRY_TEST_OWNER_PID:-$PPID}
    if [ "$(cat "$STATE/owner" 2>/dev/null)" = "$owner" ] &&
       [ -s "$STATE/watchdog.pid" ] && kill -0 "$(cat "$STATE/watchdog.pid")" 2>/dev/null; then
        return 0
    fi
    stop_watchdog
    echo "$owner" >"$STATE/owner"
    # It knows the postmaster's pid itself: if the state directory was
    # removed under a running server, it still stops the server.
    setsid bash -c '
        owner=$1; state=$2; here=$3; server=$4; registry=$5
        limit=$(( $(date +%s) + 7200 ))
        while st=$(ps -o stat= -p "$owner") && [ "${st#Z}" = "$st" ] &&
              [ "$(date +%s)" -lt "$limit" ] && [ -f "$state/env" ]; do
            sleep 1
        done
        if [ -f "$state/env" ]; then
            FERRY_PG_NODE_REAPING=1 FERRY_PG_NODE_STATE=$state "$here/pg-node.sh" reap "$owner"
        elif [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
            kill -INT "$server" 2>/dev/null   # fast shutdown
            for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$server" 2>/dev/null
            rm -f "$registry"
        fi
    ' pg-watchdog "$owner" "$STATE" "$HERE" "$(server_pid)" "$(registry_file)" \
        </dev/null >/dev/null 2>&1 9>&- &
    echo $! >"$STATE/watchdog.pid"
    log "watchdog pid=$! owner=$owner"
}

# End the watchdog (not when it is the watchdog that stops the server).
stop_watchdog() {
    local w
    [ -z "${FERRY_PG_NODE_REAPING:-}" ] || return 0
    w=$(cat "$STATE/watchdog.pid" 2>/dev/null) || return 0
    rm -f "$STATE/watchdog.pid"
    [ -n "$w" ] && kill -0 "$w" 2>/dev/null || return 0
    kill -TERM -- "-$w" 2>/dev/null || kill -TERM "$w" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$w" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL -- "-$w" 2>/dev/null
}

do_start() {
    load_env || create_cluster
    if running && ready; then
        start_watchdog
        conninfo
        return 0
    fi
    local t0; t0=$(now_ms)
    # -w waits until the server accepts connections; the timeout is scaled
    as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$NODE_DIR/server.log" -w -t $((60 * SCALE)) \
        -o "-p $PORT -k $SOCK_DIR -c listen_addresses=127.0.0.1" start </dev/null >>"$LOG" 2>&1 9>&- || {
        tail -n 20 "$NODE_DIR/server.log" >>"$LOG" 2>/dev/null
        die "PostgreSQL did not start on port $PORT"
    }
    local dl; dl=$(deadline_ms 30)
    until ready; do
        [ "$(now_ms)" -lt "$dl" ] || die "PostgreSQL on port $PORT not ready"
        sleep 0.05
    done
    log "started port=$PORT start_ms=$(( $(now_ms) - t0 ))"
    server_register "$(registry_file)" "$(server_pid)" "PostgreSQL port $PORT (state $STATE)"
    start_watchdog
    conninfo
}

do_halt() {
    load_env || return 0
    if running; then
        as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w -t $((60 * SCALE)) stop >>"$LOG" 2>&1 ||
            as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m immediate -w stop >>"$LOG" 2>&1
        log "stopped port=$PORT"
    fi
    server_unregister "$(registry_file)"
}

cmd=${1:-}
# Only start creates the state directory: a stop (or a late watchdog) after
# the directory was removed must not bring it back.
case $cmd in
start) mkdir -p "$STATE" || { echo "pg-node: cannot create $STATE" >&2; exit 1; } ;;
reap|stop|stop-locked|halt) [ -d "$STATE" ] || exit 0 ;;
status) [ -d "$STATE" ] || exit 1 ;;
*) [ -d "$STATE" ] || die "no cluster in $STATE" ;;
esac
case $cmd in
start)
    exec 9>"$STATE/lock"; flock 9
    do_start
    ;;
halt)
    exec 9>"$STATE/lock"; flock 9
    do_halt
    ;;
restart)
    exec 9>"$STATE/lock"; flock 9
    load_env || die "no cluster in $STATE"
    do_halt
    do_start
    ;;
reap)
    exec 9>"$STATE/lock"; flock 9
    was=$(cat "$STATE/owner" 2>/dev/null) || was=
    if [ -n "$was" ] && [ "$was" != "${2:-}" ]; then
        log "watchdog of owner=${2:-} exits: the server now belongs to owner=$was"
        exit 0
    fi
    exec "$0" stop-locked
    ;;
stop|stop-locked)
    stop_watchdog
    [ "$cmd" = stop ] && { exec 9>"$STATE/lock"; flock 9; }
    do_halt
    if load_env; then
        rm -rf "$NODE_DIR"
    fi
    rm -f "$STATE/env" "$STATE/owner"
    ;;
conninfo)
    load_env && running || die "no running server in $STATE"
    conninfo
    ;;
status)
    load_env && running && ready
    ;;
psql)
    shift
    load_env || die "no cluster in $STATE"
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$PORT" -U ferry -d postgres "$@"
    ;;
*)
    echo "usage: pg-node.sh start|stop|halt|restart|conninfo|status|psql ARGS..." >&2
    exit 64
    ;;
esac
