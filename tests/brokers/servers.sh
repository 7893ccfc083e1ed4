# The registry of servers the tests start (sourced by the broker helpers).
# Each running server has one file in $FERRY_SERVERS_DIR (default
# $FERRY_TEST_STATE_DIR/servers): "PID DESCRIPTION". A helper registers a
# server once it is up and unregisters it once it has stopped;
# tests/brokers/stop-servers.sh, run at the end of `make check`, stops the
# shared brokers and fails naming any server still registered and alive.
: "${FERRY_SERVERS_DIR:=${FERRY_TEST_STATE_DIR:-$PWD/tests/state}/servers}"

# server_register FILE PID DESCRIPTION
server_register() {
    mkdir -p "$FERRY_SERVERS_DIR" && printf '%s %s\n' "$2" "$3" >"$1"
}

# server_unregister FILE
server_unregister() { rm -f "$1"; }
