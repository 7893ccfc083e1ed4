#!/bin/bash
# Print the AMQP URL of a broker for the tests and exit 0, or print why
# there is none on stderr and exit 77. FERRY_TEST_AMQP_URL wins; otherwise
# one private RabbitMQ node per `make check` run is started (amqp-node.sh),
# shared by all tests and stopped when $FERRY_TEST_OWNER_PID exits.
set -u

if [ -n "${FERRY_TEST_AMQP_URL:-}" ]; then
    echo "$FERRY_TEST_AMQP_URL"
    exit 0
fi
# Without an owner from the harness, the node lives as long as the nearest
# `make` above us (so one `make check` shares it), else as long as our caller.
if [ -z "${FERRY_TEST_OWNER_PID:-}" ]; then
    owner=$PPID pid=$PPID
    while [ "$pid" -gt 1 ] 2>/dev/null; do
        case $(ps -o comm= -p "$pid" 2>/dev/null) in
        make|gmake) owner=$pid; break ;;
        esac
        pid=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ') || break
        [ -n "$pid" ] || break
    done
    export FERRY_TEST_OWNER_PID=$owner
fi
exec "$(cd "$(dirname "$0")" && pwd)/amqp-node.sh" start
