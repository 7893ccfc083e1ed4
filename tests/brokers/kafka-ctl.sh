#!/bin/bash
# Control the test mock Kafka cluster started by ensure-kafka.sh:
#   kafka-ctl.sh down [ID] | up [ID] | create-topic NAME PARTITIONS [REPLICATION] | ping
#              | leader TOPIC PARTITION ID | coordinator group|transaction KEY ID
# (the mock moves no leader when a broker is down: `leader` does it)
# Exits 0 when the mock answered "ok", 1 on an error reply, 77 without a mock
# (e.g. FERRY_TEST_KAFKA_BROKERS points at a real cluster). A mock started
# elsewhere is controlled at FERRY_TEST_KAFKA_CONTROL (HOST:PORT).
set -u
state=${FERRY_TEST_STATE_DIR:-$PWD/tests/state}/kafka
if [ $# -lt 1 ]; then
    echo "usage: kafka-ctl.sh down [ID] | up [ID] | create-topic NAME PARTITIONS [REPLICATION] | ping" >&2
    exit 64
fi
if [ -n "${FERRY_TEST_KAFKA_BROKERS:-}" ]; then
    # a cluster started elsewhere: controllable only if it is a mock that
    # says where its control socket is (docker/compose.local.yml's)
    addr=${FERRY_TEST_KAFKA_CONTROL:-}
    if [ -z "$addr" ]; then
        echo "kafka-ctl: no mock cluster to control (FERRY_TEST_KAFKA_BROKERS is set, FERRY_TEST_KAFKA_CONTROL is not)" >&2
        exit 77
    fi
elif [ ! -s "$state/control" ]; then
    echo "kafka-ctl: no mock cluster to control (none started in $state)" >&2
    exit 77
else
    addr=$(cat "$state/control")
fi
exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}" || { echo "kafka-ctl: cannot reach $addr" >&2; exit 77; }
printf '%s\n' "$*" >&3
IFS= read -r -t 30 reply <&3 || reply="error no reply"
exec 3>&-
case $reply in
    ok*) [ "$reply" = ok ] || printf '%s\n' "${reply#ok }"; exit 0 ;;
    *) echo "kafka-ctl: $*: ${reply#error }" >&2; exit 1 ;;
esac
