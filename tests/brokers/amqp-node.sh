#!/bin/bash
# Start, stop or restart a private RabbitMQ node for the tests (Debian's
# rabbitmq-server): own node name, ports, epmd, cookie and data directory.
# Usage: amqp-node.sh start|stop|restart|url|status|ctl RABBITMQCTL-ARGS...
#
# State lives in $FERRY_AMQP_NODE_STATE (default $FERRY_TEST_STATE_DIR/amqp,
# FERRY_TEST_STATE_DIR defaulting to $PWD/tests/state):
#   env   ports, node name and data directory (kept across restarts)
#   url   amqp://guest:guest@127.0.0.1:PORT once the node accepts AMQP
#   log   what this script did and why it failed
# A restart keeps the port and the data, so durable queues survive it.
# TLS: with FERRY_AMQP_NODE_TLS=DIR (ca.pem, server.pem, server.key) when the
# node is created, it also listens for amqps:// on a port of its own, asks
# clients for a certificate (not required) and `tls-port` prints that port.
# Such a node also offers SASL EXTERNAL (rabbitmq_auth_mechanism_ssl): a
# client certificate logs in as the user named by its common name. Nodes
# without TLS load no plugin at all.
# A watchdog stops the node once $FERRY_TEST_OWNER_PID (default: the caller)
# has exited, or after 2 hours at the most, even when the state directory
# is gone by then; `stop` ends the watchdog first, so nothing touches the
# state directory once `stop` has returned.
# Every running node is registered in $FERRY_TEST_STATE_DIR/servers/ (see
# tests/brokers/servers.sh), which `make check` checks is empty at its end.
set -u

STATE=${FERRY_AMQP_NODE_STATE:-${FERRY_TEST_STATE_DIR:-$PWD/tests/state}/amqp}
SCALE=${FERRY_TEST_TIMEOUT_SCALE:-1}
RMQ_BIN=${FERRY_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HERE=$(cd "$(dirname "$0")" && pwd)

LOG=$STATE/log
. "$HERE/servers.sh"
. "$HERE/rabbitmq-lib.sh"

log() { [ -d "$STATE" ] || return 0; printf '%s amqp-node[%d]: %s\n' "$(date -u +%H:%M:%S.%3N)" $$ "$*" >>"$LOG"; }
die() {
    log "error: $*"
    echo "amqp-node: $* (see $LOG)" >&2
    exit 77
}

deadline_ms() { echo $(( $(now_ms) + $1 * SCALE * 1000 )); }

as_node_user() {
    rmq_cmd "$NODE_DIR/home"
    "${RMQ_CMD[@]}" "$@"
}

load_env() {
    [ -f "$STATE/env" ] || return 1
    # shellcheck disable=SC1091
    . "$STATE/env"
    [ -n "${NODE_DIR:-}" ] && [ -d "$NODE_DIR" ]
}

# Can the rabbitmq user reach and write DIR (every parent traversable)?
node_user_can_use() {
    [ "$(id -u)" = 0 ] || return 0
    runuser -u rabbitmq -- test -w "$1" 2>/dev/null
}

create_node() {
    command -v "$RMQ_BIN/rabbitmq-server" >/dev/null 2>&1 ||
        die "rabbitmq-server not found in $RMQ_BIN (apt-get install rabbitmq-server)"
    if [ "$(id -u)" = 0 ]; then
        id -u rabbitmq >/dev/null 2>&1 || die "no rabbitmq user (is rabbitmq-server installed?)"
    fi
    local ports
    ports=$(free_ports 4) || die "cannot choose free ports with $PY"
    set -- $ports
    PORT=$1 DIST_PORT=$2 EPMD_PORT=$3 TLS_PORT=
    NODENAME="ferrytest-$$-$PORT@localhost"
    NODE_DIR=$STATE/node
    mkdir -p "$NODE_DIR"
    if [ "$(id -u)" = 0 ]; then
        chown rabbitmq:rabbitmq "$NODE_DIR"
        if ! node_user_can_use "$NODE_DIR"; then
            # The build tree is not reachable by rabbitmq (e.g. under /root).
            rmdir "$NODE_DIR" 2>/dev/null
            NODE_DIR=$(mktemp -d /tmp/ferry-rabbitmq.XXXXXX) || die "mktemp failed"
            chown rabbitmq:rabbitmq "$NODE_DIR"
            log "build tree not reachable by user rabbitmq; node data in $NODE_DIR"
        fi
    fi
    mkdir -p "$NODE_DIR/home"
    node_files "$NODE_DIR" "$PORT"
    if [ -n "${FERRY_AMQP_NODE_TLS:-}" ]; then
        TLS_PORT=$4
        mkdir -p "$NODE_DIR/tls"
        cp "$FERRY_AMQP_NODE_TLS/ca.pem" "$FERRY_AMQP_NODE_TLS/server.pem" \
            "$FERRY_AMQP_NODE_TLS/server.key" "$NODE_DIR/tls/" || die "cannot copy the TLS files"
        cat >>"$NODE_DIR/rabbitmq.conf" <<EOF
listeners.ssl.default = $TLS_PORT
ssl_options.cacertfile = $NODE_DIR/tls/ca.pem
ssl_options.certfile = $NODE_DIR/tls/server.pem
ssl_options.keyfile = $NODE_DIR/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = AMQPLAIN
auth_mechanisms.3 = EXTERNAL
ssl_cert_login_from = common_name
EOF
        # What `rabbitmq-plugins --offline enable` writes, without starting
        # an Erlang VM for it.
        echo '[rabbitmq_auth_mechanism_ssl].' >"$NODE_DIR/enabled_plugins"
    fi
    new_cookie "$NODE_DIR/home"
    [ "$(id -u)" = 0 ] && chown -R rabbitmq:rabbitmq "$NODE_DIR"
    cat >"$STATE/env" <<EOF
PORT=$PORT
DIST_PORT=$DIST_PORT
EPMD_PORT=$EPMD_PORT
TLS_PORT=$TLS_PORT
NODENAME=$NODENAME
NODE_DIR=$NODE_DIR
EOF
    log "created node $NODENAME port=$PORT dist=$DIST_PORT epmd=$EPMD_PORT dir=$NODE_DIR"
}

url() { echo "amqp://guest:guest@127.0.0.1:$PORT"; }

amqp_ready() { amqp_port_ready "$PORT"; }

server_pid() {
    [ -s "$STATE/server.pid" ] && cat "$STATE/server.pid"
}

node_running() {
    local p
    p=$(server_pid) || return 1
    alive "$p"
}

# The owner of the node is recorded in $STATE/owner. A later run (a second
# `make check` in the same tree) that finds the node up while the recorded
# owner is gone takes it over: it records itself and starts a watchdog of
# its own; the old watchdog then reaps nothing, since `reap OWNER` stops the
# node only while OWNER is still the recorded one.
start_watchdog() {
    local owner=${FERRY_TEST_OWNER_PID:-$PPID}
    if [ "$(cat "$STATE/owner" 2>/dev/null)" = "$owner" ] &&
       [ -s "$STATE/watchdog.pid" ] && alive "$(cat "$STATE/watchdog.pid")"; then
        return 0
    fi
    stop_watchdog
    echo "$owner" >"$STATE/owner"
    # Detached and with no inherited descriptors, so $(...) callers do not
    # wait for it. It knows the node's pid and epmd port itself: if the state
    # directory was removed under a running node, it still stops the node.
    setsid bash -c '
        owner=$1; state=$2; here=$3; server=$4; epmd_port=$5; registry=$6
        limit=$(( $(date +%s) + 7200 ))
        while st=$(ps -o stat= -p "$owner") && [ "${st#Z}" = "$st" ] &&
              [ "$(date +%s)" -lt "$limit" ] &&
              [ -f "$state/env" ]; do
            sleep 1
        done
        if [ -f "$state/env" ]; then
            FERRY_AMQP_NODE_REAPING=1 FERRY_AMQP_NODE_STATE=$state "$here/amqp-node.sh" reap "$owner"
        elif st=$(ps -o stat= -p "$server") && [ "${st#Z}" = "$st" ]; then
            # the state is gone but the node is not: stop it by its process group
            kill -TERM -- "-$server" 2>/dev/null
            for _ in $(seq 100); do
                st=$(ps -o stat= -p "$server") && [ "${st#Z}" = "$st" ] || break
                sleep 0.1
            done
            kill -KILL -- "-$server" 2>/dev/null
            epmd -port "$epmd_port" -kill >/dev/null 2>&1
            rm -f "$registry"
        fi
    ' amqp-watchdog "$owner" "$STATE" "$HERE" "$(server_pid)" "$EPMD_PORT" "$(registry_file)" \
        </dev/null >/dev/null 2>&1 9>&- &
    echo $! >"$STATE/watchdog.pid"
    log "watchdog pid=$! owner=$owner"
}

# End the watchdog (not when it is the watchdog that stops the node).
stop_watchdog() {
    local w
    [ -z "${FERRY_AMQP_NODE_REAPING:-}" ] || return 0
    w=$(cat "$STATE/watchdog.pid" 2>/dev/null) || return 0
    rm -f "$STATE/watchdog.pid"
    [ -n "$w" ] && alive "$w" || return 0
    kill -TERM -- "-$w" 2>/dev/null || kill -TERM "$w" 2>/dev/null
    for _ in $(seq 50); do alive "$w" || return 0; sleep 0.1; done
    kill -KILL -- "-$w" 2>/dev/null
}

registry_file() { echo "$FERRY_SERVERS_DIR/amqp.$NODENAME"; }

do_start() {
    if load_env; then
        if node_running && amqp_ready; then
            local was
            was=$(cat "$STATE/owner" 2>/dev/null) || was=
            if [ -n "$was" ] && ! alive "$was"; then
                log "taking the node over from owner=$was, which has exited"
                start_watchdog
            fi
            url
            return 0
        fi
    else
        create_node
    fi
    rm -f "$STATE/url"
    local t0 dl p
    t0=$(now_ms)
    log "starting $NODENAME"
    rmq_cmd "$NODE_DIR/home"
    (cd "$NODE_DIR" && exec setsid "${RMQ_CMD[@]}" "$RMQ_BIN/rabbitmq-server") \
        </dev/null >>"$NODE_DIR/log/server.out" 2>&1 9>&- &
    p=$!
    echo "$p" >"$STATE/server.pid"
    dl=$(deadline_ms 60)
    until amqp_ready; do
        if ! alive "$p"; then
            log "server exited during start-up; last lines of its output:"
            tail -n 20 "$NODE_DIR/log/server.out" >>"$LOG" 2>/dev/null
            tail -n 20 "$NODE_DIR/log/node.log" >>"$LOG" 2>/dev/null
            die "RabbitMQ node $NODENAME exited during start-up"
        fi
        [ "$(now_ms)" -lt "$dl" ] || { do_stop >/dev/null 2>&1; die "RabbitMQ node $NODENAME not ready after $((60 * SCALE)) s"; }
        sleep 0.1
    done
    url >"$STATE/url"
    server_register "$(registry_file)" "$p" "RabbitMQ node $NODENAME (state $STATE)"
    log "node $NODENAME ready url=$(url) start_ms=$(( $(now_ms) - t0 ))"
    start_watchdog
    url
}

# Stop the node; $1 = "keep-epmd" during a restart.
do_stop() {
    load_env || return 0
    local p dl
    p=$(server_pid) || p=
    if [ -n "$p" ] && alive "$p"; then
        log "stopping $NODENAME"
        as_node_user "$RMQ_BIN/rabbitmqctl" -q -n "$NODENAME" stop >>"$LOG" 2>&1 ||
            log "rabbitmqctl stop failed; terminating pid $p"
        dl=$(deadline_ms 20)
        while alive "$p" && [ "$(now_ms)" -lt "$dl" ]; do
            sleep 0.1
        done
        if alive "$p"; then
            kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
            dl=$(deadline_ms 10)
            while alive "$p" && [ "$(now_ms)" -lt "$dl" ]; do sleep 0.1; done
            kill -KILL -- "-$p" 2>/dev/null
        fi
    fi
    rm -f "$STATE/server.pid" "$STATE/url"
    server_unregister "$(registry_file)"
    if [ "${1:-}" != keep-epmd ]; then
        # Our epmd runs on a private port: stopping it never affects another node.
        as_node_user epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1
        log "stopped $NODENAME"
    fi
}

cmd=${1:-}
# Only start creates the state directory: a stop (or a late watchdog) after
# the directory was removed must not bring it back.
case $cmd in
start) mkdir -p "$STATE" || { echo "amqp-node: cannot create $STATE" >&2; exit 77; } ;;
reap|stop|stop-locked) [ -d "$STATE" ] || exit 0 ;;
esac
case $cmd in
start)
    exec 9>"$STATE/lock"
    flock 9
    do_start
    ;;
reap)
    # the watchdog of owner $2: stop the node unless another run took it over
    exec 9>"$STATE/lock"
    flock 9
    was=$(cat "$STATE/owner" 2>/dev/null) || was=
    if [ -n "$was" ] && [ "$was" != "${2:-}" ]; then
        log "watchdog of owner=${2:-} exits: the node now belongs to owner=$was"
        exit 0
    fi
    exec "$0" stop-locked
    ;;
stop|stop-locked)
    stop_watchdog
    if [ "$cmd" = stop ]; then
        exec 9>"$STATE/lock"
        flock 9
    fi
    do_stop
    if load_env 2>/dev/null; then
        case $NODE_DIR in /tmp/ferry-rabbitmq.*) rm -rf "$NODE_DIR" ;; esac
    fi
    rm -f "$STATE/env" "$STATE/owner"
    ;;
restart)
    exec 9>"$STATE/lock"
    flock 9
    load_env || die "no node to restart in $STATE"
    do_stop keep-epmd
    do_start >/dev/null || exit 77
    url
    ;;
url)
    load_env && [ -f "$STATE/url" ] || die "no running node in $STATE"
    cat "$STATE/url"
    ;;
status)
    load_env && node_running && amqp_ready
    ;;
tls-port)
    load_env && [ -n "${TLS_PORT:-}" ] || die "no TLS listener in $STATE"
    echo "$TLS_PORT"
    ;;
ctl)
    # rabbitmqctl against this node, e.g. `ctl close_all_connections test`
    shift
    load_env || die "no node in $STATE"
    as_node_user "$RMQ_BIN/rabbitmqctl" -n "$NODENAME" "$@"
    ;;
*)
    echo "usage: amqp-node.sh start|stop|restart|url|status|tls-port|ctl ARGS..." >&2
    exit 64
    ;;
esac
