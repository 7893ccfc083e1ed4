# Shared setup of the AMQP end-to-end tests (sourced): tests/lib.sh (skip,
# fail, wait_for, scaled, lines, ...), then the broker URL, a config file,
# unique destination names and a work directory under the build tree that
# is kept when the test fails.
: "${FERRY_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$FERRY_SRCDIR/tests/lib.sh"
srcdir=$FERRY_SRCDIR
top_builddir=$FERRY_BINDIR
TEST_NAME=$(basename "$0" .test)
WORK=$FERRY_BINDIR/tests/work/$TEST_NAME.$$
mkdir -p "$WORK"
# processes the test started and ended itself: TERM, not the KILL of cleanup
CLEANUP_PIDS=
amqp_cleanup() {
    local p
    for p in $CLEANUP_PIDS; do
        kill "$p" 2>/dev/null
    done
    return 0
}
trap 'rc=$?; amqp_cleanup; cleanup; [ $rc -eq 0 ] && rm -rf "$WORK"; exit $rc' EXIT

for prog in "$PRODUCER" "$AGGREGATOR"; do
    [ -x "$prog" ] || skip "$prog not built"
done
case " ${FERRY_BUILT_PLUGINS:-amqp} " in
    *" amqp "*) ;;
    *) skip "amqp plugin not built" ;;
esac

# Write a config for broker URL $1 to $2, extra [amqp] lines in $3.
write_config() {
    printf '[transport]\nplugin = amqp\n[amqp]\nurl = %s\n%s\n' "$1" "${3:-}" >"$2"
}

start_broker() {
    AMQP_URL=$("$FERRY_SRCDIR/tests/brokers/ensure-amqp.sh") || skip "no RabbitMQ broker: see $FERRY_TEST_STATE_DIR/amqp/log"
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

# Ids of the JSON log lines in the files given (one per line).
ids_of() { cat "$@" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p'; }
