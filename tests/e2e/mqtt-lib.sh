# Shared setup of the MQTT end-to-end tests (sourced after tests/lib.sh):
# a private mosquitto for this test (tests/brokers/mosquitto.sh), stopped
# when the test ends however it ends, and a config file for it.
need_plugin mqtt
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] ||
    skip "no mosquitto broker (apt-get install mosquitto)"
TEST_NAME=$(basename "$0" .test)
MQ_DIR=$FERRY_TEST_STATE_DIR/mqtt/$TEST_NAME.$$
MQ_HELPER=$FERRY_SRCDIR/tests/brokers/mosquitto.sh
mkdir -p "$MQ_DIR"
mqtt_cleanup() {
    "$MQ_HELPER" "$MQ_DIR" stop >/dev/null 2>&1
    cleanup
    [ "${MQ_KEEP:-0}" = 1 ] || rm -rf "$MQ_DIR"
}
trap 'rc=$?; [ $rc -eq 0 ] || MQ_KEEP=1; mqtt_cleanup; exit $rc' EXIT

# start_mosquitto [CONFIG-LINES]: start the broker, write $CONF for it
start_mosquitto() {
    MQ_PORT=$("$MQ_HELPER" "$MQ_DIR" start "${1:-}") || skip "mosquitto did not start: see $MQ_DIR/helper.log"
    CONF=$T/mqtt.conf
    printf '[transport]\nplugin = mqtt\n[mqtt]\nhost = 127.0.0.1\nport = %s\n%s\n' \
        "$MQ_PORT" "${MQTT_EXTRA:-}" >"$CONF"
}
restart_mosquitto() { "$MQ_HELPER" "$MQ_DIR" restart >/dev/null || fail "mosquitto did not restart"; }

# ids_in FILE: the ids of the JSON log lines in FILE, one per line
ids_in() { sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$@"; }
