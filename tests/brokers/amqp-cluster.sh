#!/bin/bash
# Start and stop a private three-node RabbitMQ cluster for the tests (three
# nodes of Debian's rabbitmq-server on this machine, joined with
# `rabbitmqctl join_cluster`).
# Usage: amqp-cluster.sh start|stop|urls|url N|kill N|pid N|ctl N ARGS...|status
#
# Each node has its own name, AMQP and distribution ports (chosen by the OS)
# and data directory; the three share one Erlang cookie (in one HOME) and one
# private epmd port, which is how they find each other. Nodes are numbered
# 1..3: `start` prints the three URLs, comma-separated, node 1 first (the
# `[amqp] url` failover list); `kill N` SIGKILLs node N (its whole process
# group, no clean shutdown); `ctl N ...` runs rabbitmqctl against node N.
#
# State lives in $FERRY_AMQP_CLUSTER_STATE (default
# $FERRY_TEST_STATE_DIR/amqp-cluster):
#   env   ports, node names and directories
#   log   what this script did and why it failed
# A watchdog stops every node once $FERRY_TEST_OWNER_PID (default: the
# caller) has exited, or after 2 hours at the most; `stop` ends the watchdog
# first. Every running node is registered in $FERRY_TEST_STATE_DIR/servers/
# (tests/brokers/servers.sh), which `make check` checks is empty at its end.
set -u

STATE=${FERRY_AMQP_CLUSTER_STATE:-${FERRY_TEST_STATE_DIR:-$PWD/tests/state}/amqp-cluster}
SCALE=${FERRY_TEST_TIMEOUT_SCALE:-1}
RMQ_BIN=${FERRY_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HERE=$(cd "$(dirname "$0")" && pwd)
NODES="1 2 3"

LOG=$STATE/log
. "$HERE/servers.sh"
. "$HERE/rabbitmq-lib.sh"

log() { [ -d "$STATE" ] || return 0; printf '%s amqp-cluster[%d]: %s\n' "$(date -u +%H:%M:%S.%3N)" $$ "$*" >>"$LOG"; }
die() {
    log "error: $*"
    echo "amqp-cluster: $* (see $LOG)" >&2
    exit 77
}

deadline_ms() { echo $(( $(now_ms) + $(awk -v s="$1" -v k="$SCALE" 'BEGIN{printf "%d", s*k*1000}') )); }

load_env() {
    [ -f "$STATE/env" ] || return 1
    # shellcheck disable=SC1091
    . "$STATE/env"
    [ -n "${BASE:-}" ] && [ -d "$BASE" ]
}

# node_vars N: NODENAME, PORT, DIST_PORT and NODE_DIR of node N
node_vars() {
    eval "PORT=\$PORT_$1 DIST_PORT=\$DIST_PORT_$1"
    NODENAME="ferrycl$1-$ID@localhost"
    NODE_DIR=$BASE/n$1
}

# as_node N CMD...: CMD in node N's environment, as the rabbitmq user
as_node() {
    node_vars "$1"
    shift
    rmq_cmd "$BASE/home"
    "${RMQ_CMD[@]}" "$@"
}

ctl() {
    local n=$1
    shift
    node_vars "$n"
    as_node "$n" "$RMQ_BIN/rabbitmqctl" -n "$NODENAME" "$@"
}

create_cluster() {
    command -v "$RMQ_BIN/rabbitmq-server" >/dev/null 2>&1 ||
        die "rabbitmq-server not found in $RMQ_BIN (apt-get install rabbitmq-server)"
    if [ "$(id -u)" = 0 ]; then
        id -u rabbitmq >/dev/null 2>&1 || die "no rabbitmq user (is rabbitmq-server installed?)"
    fi
    local ports
    # seven: three AMQP, three distribution, one epmd
    ports=$(free_ports 7) || die "cannot choose free ports with $PY"
    set -- $ports
    ID="$$-$1"
    BASE=$STATE/data
    mkdir -p "$BASE"
    if [ "$(id -u)" = 0 ]; then
        chown rabbitmq:rabbitmq "$BASE"
        if ! runuser -u rabbitmq -- test -w "$BASE" 2>/dev/null; then
            # The build tree is not reachable by rabbitmq (e.g. under /root).
            rmdir "$BASE" 2>/dev/null
            BASE=$(mktemp -d /tmp/ferry-rabbitmq-cluster.XXXXXX) || die "mktemp failed"
            log "build tree not reachable by user rabbitmq; node data in $BASE"
        fi
    fi
    mkdir -p "$BASE/home"
    new_cookie "$BASE/home" # one for the three nodes and rabbitmqctl
    {
        echo "ID=$ID"
        echo "BASE=$BASE"
        echo "EPMD_PORT=$7"
        echo "PORT_1=$1 PORT_2=$2 PORT_3=$3"
        echo "DIST_PORT_1=$4 DIST_PORT_2=$5 DIST_PORT_3=$6"
    } >"$STATE/env.new"
    . "$STATE/env.new"
    local n
    for n in $NODES; do
        node_vars "$n"
        node_files "$NODE_DIR" "$PORT"
    done
    [ "$(id -u)" = 0 ] && chown -R rabbitmq:rabbitmq "$BASE"
    mv "$STATE/env.new" "$STATE/env"
    log "created cluster id=$ID ports=$PORT_1,$PORT_2,$PORT_3 dist=$DIST_PORT_1,$DIST_PORT_2,$DIST_PORT_3 epmd=$EPMD_PORT dir=$BASE"
}

# True once node N's port answers AMQP.
amqp_ready() {
    node_vars "$1"
    amqp_port_ready "$PORT"
}

server_pid() { [ -s "$STATE/server$1.pid" ] && cat "$STATE/server$1.pid"; }
node_running() { local p; p=$(server_pid "$1") && alive "$p"; }
registry_file() { node_vars "$1"; echo "$FERRY_SERVERS_DIR/amqp.$NODENAME"; }
url() { node_vars "$1"; echo "amqp://guest:guest@127.0.0.1:$PORT"; }
urls() { echo "$(url 1),$(url 2),$(url 3)"; }

# launch N: start node N in the background, in a process group of its own
launch() {
    local p
    node_vars "$1"
    log "starting $NODENAME port=$PORT"
    (cd "$NODE_DIR" && exec setsid bash -c 'exec "$@"' node \
        "$HERE/amqp-cluster.sh" as-node "$1" "$RMQ_BIN/rabbitmq-server") \
        </dev/null >>"$NODE_DIR/log/server.out" 2>&1 9>&- &
    p=$!
    echo "$p" >"$STATE/server$1.pid"
}

# wait_ready N SECONDS: node N answers AMQP, or die
wait_ready() {
    local dl p
    p=$(server_pid "$1")
    dl=$(deadline_ms "$2")
    until amqp_ready "$1"; do
        if ! alive "$p"; then
            node_vars "$1"
            log "node $1 exited during start-up; last lines of its output:"
            tail -n 20 "$NODE_DIR/log/server.out" >>"$LOG" 2>/dev/null
            tail -n 20 "$NODE_DIR/log/node.log" >>"$LOG" 2>/dev/null
            return 1
        fi
        [ "$(now_ms)" -lt "$dl" ] || { log "node $1 not ready after $2 s (x$SCALE)"; return 1; }
        sleep 0.1
    done
}

start_watchdog() {
    local owner=${FERRY_TEST_OWNER_PID:-$PPID}
    echo "$owner" >"$STATE/owner"
    # Detached and with no inherited descriptors, so $(...) callers do not
    # wait for it.
    setsid bash -c '
        owner=$1; state=$2; here=$3
        limit=$(( $(date +%s) + 7200 ))
        while st=$(ps -o stat= -p "$owner") && [ "${st#Z}" = "$st" ] &&
              [ "$(date +%s)" -lt "$limit" ] && [ -f "$state/env" ]; do
            sleep 1
        done
        [ -f "$state/env" ] && FERRY_AMQP_CLUSTER_REAPING=1 FERRY_AMQP_CLUSTER_STATE=$state "$here/amqp-cluster.sh" stop
    ' amqp-cluster-watchdog "$owner" "$STATE" "$HERE" </dev/null >/dev/null 2>&1 9>&- &
    echo $! >"$STATE/watchdog.pid"
    log "watchdog pid=$! owner=$owner"
}

stop_watchdog() {
    local w
    [ -z "${FERRY_AMQP_CLUSTER_REAPING:-}" ] || return 0
    w=$(cat "$STATE/watchdog.pid" 2>/dev/null) || return 0
    rm -f "$STATE/watchdog.pid"
    [ -n "$w" ] && alive "$w" || return 0
    kill -TERM -- "-$w" 2>/dev/null || kill -TERM "$w" 2>/dev/null
}

# kill_node N: SIGKILL node N's process group (the Erlang VM and its helpers)
kill_node() {
    local p dl
    p=$(server_pid "$1") || return 0
    kill -KILL -- "-$p" 2>/dev/null
    dl=$(deadline_ms 10)
    while alive "$p" && [ "$(now_ms)" -lt "$dl" ]; do sleep 0.05; done
    # what outlived the group leader in the same group
    kill -KILL -- "-$p" 2>/dev/null
    rm -f "$STATE/server$1.pid"
    server_unregister "$(registry_file "$1")"
}

# stop_node N: rabbitmqctl stop, then TERM and KILL of its group
stop_node() {
    local p dl
    p=$(server_pid "$1") || return 0
    if alive "$p"; then
        ctl "$1" -q stop >>"$LOG" 2>&1 || log "rabbitmqctl stop of node $1 failed"
        dl=$(deadline_ms 20)
        while alive "$p" && [ "$(now_ms)" -lt "$dl" ]; do sleep 0.1; done
        if alive "$p"; then
            kill -TERM -- "-$p" 2>/dev/null
            dl=$(deadline_ms 10)
            while alive "$p" && [ "$(now_ms)" -lt "$dl" ]; do sleep 0.1; done
        fi
    fi
    kill_node "$1"
}

do_stop() {
    load_env || return 0
    local n pids=
    # in parallel: a node stopping alone waits for the others' answers
    for n in $NODES; do
        stop_node "$n" &
        pids="$pids $!"
    done
    wait $pids
    as_node 1 epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1
    log "stopped cluster id=$ID"
    # the data is the run's own: a new start makes a new cluster
    rm -rf "$BASE"
    rm -f "$STATE/env" "$STATE/owner"
}

do_start() {
    local t0 n
    if load_env; then
        if node_running 1 && node_running 2 && node_running 3; then
            urls
            return 0
        fi
        do_stop
    fi
    create_cluster
    t0=$(now_ms)
    # The three start in parallel: each comes up alone, then 2 and 3 join 1.
    for n in $NODES; do launch "$n"; done
    start_watchdog
    for n in $NODES; do
        wait_ready "$n" 90 || { do_stop; die "RabbitMQ node $n did not start"; }
        server_register "$(registry_file "$n")" "$(server_pid "$n")" \
            "RabbitMQ cluster node $n $NODENAME (state $STATE)"
    done
    log "nodes up in $(( $(now_ms) - t0 )) ms"
    node_vars 1
    local first=$NODENAME
    for n in 2 3; do
        # the AMQP port opens before the boot has finished, and a stop_app
        # during the boot is lost: await_startup first
        { ctl "$n" -q await_startup && ctl "$n" -q stop_app && ctl "$n" -q join_cluster "$first" && ctl "$n" -q start_app; } \
            >>"$LOG" 2>&1 || { do_stop; die "node $n could not join $first"; }
    done
    for n in 2 3; do
        wait_ready "$n" 60 || { do_stop; die "node $n did not come back after joining"; }
    done
    local running
    running=$(ctl 1 -q cluster_status --formatter json 2>>"$LOG" |
        "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))' 2>>"$LOG")
    [ "$running" = 3 ] || { do_stop; die "cluster_status shows ${running:-no} running nodes, want 3"; }
    log "cluster of 3 ready in $(( $(now_ms) - t0 )) ms: $(urls)"
    urls
}

cmd=${1:-}
case $cmd in
start) mkdir -p "$STATE" || { echo "amqp-cluster: cannot create $STATE" >&2; exit 77; } ;;
as-node) ;;
*) [ -d "$STATE" ] || { [ "$cmd" = stop ] && exit 0; echo "amqp-cluster: no cluster in $STATE" >&2; exit 77; } ;;
esac
case $cmd in
start)
    exec 9>"$STATE/lock"
    flock 9
    do_start
    ;;
stop)
    stop_watchdog
    exec 9>"$STATE/lock"
    flock 9
    do_stop
    ;;
as-node)
    # internal: exec CMD in node $2's environment (what `launch` runs)
    load_env || exit 77
    n=$2
    shift 2
    as_node "$n" "$@"
    ;;
urls)
    load_env || die "no cluster in $STATE"
    urls
    ;;
url)
    load_env || die "no cluster in $STATE"
    url "${2:?node number}"
    ;;
pid)
    load_env || die "no cluster in $STATE"
    server_pid "${2:?node number}"
    ;;
name)
    load_env || die "no cluster in $STATE"
    node_vars "${2:?node number}"
    echo "$NODENAME"
    ;;
kill)
    load_env || die "no cluster in $STATE"
    node_vars "${2:?node number}"
    log "SIGKILL of node $2 ($NODENAME)"
    kill_node "$2"
    ;;
status)
    load_env && node_running 1 && node_running 2 && node_running 3
    ;;
ctl)
    load_env || die "no cluster in $STATE"
    n=${2:?node number}
    shift 2
    ctl "$n" "$@"
    ;;
*)
    echo "usage: amqp-cluster.sh start|stop|urls|url N|pid N|name N|kill N|status|ctl N ARGS..." >&2
    exit 64
    ;;
esac
