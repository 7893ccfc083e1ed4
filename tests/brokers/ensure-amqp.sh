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
export FERRY_TEST_OWNER_PID=${FERRY_TEST_OWNER_PID:-$PPID}
exec "$(cd "$(dirname "$0")" && pwd)/amqp-node.sh" start
