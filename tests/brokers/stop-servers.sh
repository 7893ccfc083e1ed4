#!/bin/bash
# stop-servers.sh [STATE_DIR]: the end of a test run (`make check`, `make
# bench`). Stops the shared brokers started in STATE_DIR (default
# $FERRY_TEST_STATE_DIR, else ./tests/state) by ensure-amqp.sh,
# ensure-kafka.sh and pg-node.sh, then checks the registry of servers (servers.sh): a
# server that a test started and left running is named, stopped, and makes
# the exit status 1. Only servers recorded in STATE_DIR are touched.
set -u
state=${1:-${FERRY_TEST_STATE_DIR:-$PWD/tests/state}}
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$state" ] || exit 0
export FERRY_TEST_STATE_DIR=$state FERRY_SERVERS_DIR=$state/servers

alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
}
# stop_pid PID: TERM to its process group (or itself), KILL after 10 s
stop_pid() {
    kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null
    for _ in $(seq 100); do alive "$1" || return 0; sleep 0.1; done
    kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null
}

# the shared RabbitMQ node of the run
[ -d "$state/amqp" ] && FERRY_AMQP_NODE_STATE=$state/amqp "$here/amqp-node.sh" stop
# three-node RabbitMQ clusters a test left (amqp-cluster.sh)
for d in "$state"/amqp-cluster*; do
    [ -f "$d/env" ] && FERRY_AMQP_CLUSTER_STATE=$d "$here/amqp-cluster.sh" stop
done
# the shared PostgreSQL server of the run
[ -d "$state/pg" ] && FERRY_PG_NODE_STATE=$state/pg "$here/pg-node.sh" stop
# the shared Kafka mock cluster of the run
if [ -s "$state/kafka/pid" ]; then
    p=$(cat "$state/kafka/pid")
    if [ "$(ps -o comm= -p "$p" 2>/dev/null)" = kafka-mock ]; then
        stop_pid "$p"
    fi
    rm -f "$state/kafka/pid" "$state/kafka/bootstrap" "$state/kafka/control" "$state/kafka/owner" \
        "$FERRY_SERVERS_DIR/kafka-mock.$p"
fi

rc=0
for f in "$FERRY_SERVERS_DIR"/*; do
    [ -f "$f" ] || continue
    read -r pid what <"$f"
    if [ -n "${pid:-}" ] && alive "$pid"; then
        echo "stop-servers: a test left this server running: $what (pid $pid); stopping it" >&2
        stop_pid "$pid"
        rc=1
    fi
    rm -f "$f"
done
exit $rc
