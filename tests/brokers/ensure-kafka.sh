#!/bin/sh
# Print the bootstrap servers of a Kafka cluster for the tests: the one in
# FERRY_TEST_KAFKA_BROKERS, or one private mock cluster per `make check` run
# (shared by all tests, stopped when the run ends). Exit 77 with the reason
# on stderr when there is none.
set -u

if [ -n "${FERRY_TEST_KAFKA_BROKERS:-}" ]; then
    printf '%s\n' "$FERRY_TEST_KAFKA_BROKERS"
    exit 0
fi

state=${FERRY_TEST_STATE_DIR:-$PWD/tests/state}/kafka
scale=${FERRY_TEST_TIMEOUT_SCALE:-1}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/servers.sh"
mock=${FERRY_KAFKA_MOCK:-}
if [ -z "$mock" ]; then
    for m in "$PWD/tests/brokers/kafka-mock" "$here/kafka-mock"; do
        if [ -x "$m" ]; then mock=$m; break; fi
    done
fi
if [ -z "$mock" ] || [ ! -x "$mock" ]; then
    echo "ensure-kafka: no kafka-mock program (build it with 'make check'; set FERRY_KAFKA_MOCK or FERRY_TEST_KAFKA_BROKERS)" >&2
    exit 77
fi

mkdir -p "$state" || { echo "ensure-kafka: cannot create $state" >&2; exit 77; }

# The recorded mock runs (a killed one leaves its files; its pid may be reused).
alive() {
    [ -s "$state/bootstrap" ] && [ -s "$state/pid" ] || return 1
    # shellcheck disable=SC2046
    set -- $(ps -o stat=,comm= -p "$(cat "$state/pid")" 2>/dev/null)
    [ "${2:-}" = kafka-mock ] && [ "${1#Z}" = "$1" ]
}

(
    flock -w "$((60 * scale))" 9 || { echo "ensure-kafka: lock $state/lock busy" >&2; exit 77; }
    # The owner is the make process running the tests; by hand, our caller.
    owner=${FERRY_TEST_OWNER_PID:-$PPID}
    if alive; then
        # A mock left by a run that has ended exits on its own any moment
        # (it watches its owner's pid): replace it rather than hand it out.
        was=$(cat "$state/owner" 2>/dev/null) || was=
        if [ -z "$was" ] || [ "$was" = "$owner" ] || kill -0 "$was" 2>/dev/null; then
            exit 0
        fi
        old=$(cat "$state/pid")
        kill "$old" 2>/dev/null
        tries=$((50 * scale))
        while kill -0 "$old" 2>/dev/null && [ "$tries" -gt 0 ]; do
            sleep 0.1
            tries=$((tries - 1))
        done
    fi
    rm -f "$state/bootstrap" "$state/control" "$state/pid"
    echo "$owner" >"$state/owner"
    # Detach fully: a test reads our stdout through a pipe, which must not
    # stay open in the long-lived mock.
    setsid "$mock" -b "${FERRY_TEST_KAFKA_MOCK_BROKERS:-1}" \
        -o "$state/bootstrap" -c "$state/control" -w "$owner" -l 7200 \
        </dev/null >>"$state/kafka-mock.log" 2>&1 9>&- &
    echo $! >"$state/pid"
    tries=$((100 * scale))
    while [ ! -s "$state/bootstrap" ]; do
        if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
            echo "ensure-kafka: kafka-mock exited at start-up, see $state/kafka-mock.log" >&2
            exit 77
        fi
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            echo "ensure-kafka: kafka-mock not ready after $((10 * scale)) s" >&2
            exit 77
        fi
        sleep 0.1
    done
    server_register "$FERRY_SERVERS_DIR/kafka-mock.$(cat "$state/pid")" "$(cat "$state/pid")" \
        "Kafka mock cluster $(cat "$state/bootstrap") (state $state)"
) 9>"$state/lock" || exit 77

if alive; then
    cat "$state/bootstrap"
    exit 0
fi
echo "ensure-kafka: kafka-mock is not running, see $state/kafka-mock.log" >&2
exit 77
