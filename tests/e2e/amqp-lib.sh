# Shared setup of the AMQP end-to-end tests (sourced): broker URL, a config
# file, unique destination names, scaled deadlines and skip/fail handling.
set -u
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${abs_top_builddir:-$PWD}
export FERRY_TEST_STATE_DIR=${FERRY_TEST_STATE_DIR:-$top_builddir/tests/state}
export FERRY_PLUGIN_PATH=${FERRY_PLUGIN_PATH:-$top_builddir/plugins/amqp/.libs}
SCALE=${FERRY_TEST_TIMEOUT_SCALE:-1}
TEST_NAME=$(basename "$0" .test)
WORK=$top_builddir/tests/work/$TEST_NAME.$$
mkdir -p "$WORK"
. "$srcdir/tests/wrap.sh"
PRODUCER=$(FERRY_BINDIR=${FERRY_BINDIR:-$top_builddir} wrapped "$top_builddir/ferry-producer" "$WORK/wrap")
AGGREGATOR=$(FERRY_BINDIR=${FERRY_BINDIR:-$top_builddir} wrapped "$top_builddir/ferry-aggregator" "$WORK/wrap")
trap 'rc=$?; amqp_cleanup; [ $rc -eq 0 ] && rm -rf "$WORK"; exit $rc' EXIT
CLEANUP_PIDS=
amqp_cleanup() {
    local p
    for p in $CLEANUP_PIDS; do
        kill "$p" 2>/dev/null
    done
    return 0
}

# Skip (77), or fail (99) when every transport is required.
skip() {
    echo "SKIP: $TEST_NAME: $*" >&2
    [ "${FERRY_REQUIRE_ALL_TRANSPORTS:-0}" = 1 ] && exit 99
    exit 77
}
fail() {
    echo "FAIL: $TEST_NAME: $*" >&2
    exit 1
}

for prog in "$PRODUCER" "$AGGREGATOR"; do
    [ -x "$prog" ] || skip "$prog not built"
done
# FERRY_PLUGIN_PATH is a colon-separated list; the harness also says what it built
case " ${FERRY_BUILT_PLUGINS:-amqp} " in
    *" amqp "*) ;;
    *) skip "amqp plugin not built" ;;
esac

# Write a config for broker URL $1 to $2, extra [amqp] lines in $3.
write_config() {
    printf '[transport]\nplugin = amqp\n[amqp]\nurl = %s\n%s\n' "$1" "${3:-}" >"$2"
}

start_broker() {
    AMQP_URL=$("$srcdir/tests/brokers/ensure-amqp.sh") || skip "no RabbitMQ broker: see $FERRY_TEST_STATE_DIR/amqp/log"
    CONFIG=$WORK/ferry.ini
    write_config "$AMQP_URL" "$CONFIG" "${AMQP_EXTRA:-}"
}

# A destination name unique to this test run (the counter lives in a file
# because $(unique) runs in a subshell).
unique() {
    local n
    n=$(( $(cat "$WORK/.counter" 2>/dev/null || echo 0) + 1 ))
    echo $n >"$WORK/.counter"
    echo "ferrytest.$TEST_NAME.$$.$n"
}

# wait_for SECONDS COMMAND...: poll COMMAND until it succeeds, the deadline
# scaled by FERRY_TEST_TIMEOUT_SCALE.
wait_for() {
    local limit=$(( $(date +%s) + $1 * SCALE ))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$limit" ] || return 1
        sleep 0.1
    done
}

lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }

# Ids of the JSON log lines in the files given (one per line).
ids_of() { cat "$@" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p'; }
