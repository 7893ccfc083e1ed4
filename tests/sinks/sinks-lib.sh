# Shared set-up of the grpc and webhook sink tests (sourced after
# tests/lib.sh): Debian's python3 with the modules the servers need, the
# Python code generated from the shipped .proto, and helpers that start the
# servers in the test's scratch directory.
PY=/usr/bin/python3   # Debian's python3-grpcio etc. belong to this interpreter
PUMP="$FERRY_BINDIR/tests/sinks/sink-pump"
[ -x "$PUMP" ] || fail "sink-pump not built"
SCALE=$FERRY_TEST_TIMEOUT_SCALE

# need_sink NAME: the sink plugin was built in this tree
need_sink() {
    case " ${FERRY_BUILT_SINKS:-} " in
        *" $1 "*) ;;
        *) skip "the $1 sink is not built (configure --enable-$1: see its summary)" ;;
    esac
}

# need_grpc: the plugin and the Python side, with code from our .proto
need_grpc() {
    need_sink grpc
    "$PY" -c 'import grpc, grpc_tools, google.protobuf' 2>/dev/null ||
        skip "python3-grpcio, python3-grpc-tools or python3-protobuf missing"
    mkdir -p "$T/py"
    "$PY" -m grpc_tools.protoc -I "$FERRY_SRCDIR/proto" --python_out="$T/py" \
        --grpc_python_out="$T/py" "$FERRY_SRCDIR/proto/ferry/v1/sink.proto" ||
        fail "grpc_tools.protoc could not compile proto/ferry/v1/sink.proto"
}

# start_server NAME SCRIPT PORT ARGS...: start SCRIPT on PORT (0: any),
# wait until it serves; sets SRV_PID and SRV_PORT. Logs go to $T/NAME.log.
start_server() {
    local name=$1 script=$2 port=$3
    shift 3
    rm -f "$T/$name.port"
    PYTHONPATH="$T/py" "$PY" "$FERRY_SRCDIR/tests/sinks/$script" --port "$port" \
        --ready "$T/$name.port" "$@" 2>>"$T/$name.log" &
    SRV_PID=$!
    FERRY_PIDS="$FERRY_PIDS $SRV_PID"
    wait_for 20 test -s "$T/$name.port" || fail "$script did not start: $(tail -5 "$T/$name.log")"
    SRV_PORT=$(cat "$T/$name.port")
}

# uniq_ids FILE: distinct ids in FILE (one per line)
uniq_ids() { if [ -f "$1" ]; then sort -u "$1" | grep -c .; else echo 0; fi; }

# make_ca DIR NAME: a test CA and a server certificate for NAME (and
# 127.0.0.1) signed by it: DIR/ca.pem, DIR/server.pem, DIR/server.key
make_ca() {
    command -v openssl >/dev/null || skip "openssl missing"
    mkdir -p "$1"
    (
        cd "$1" &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ferry test CA" \
            -keyout ca.key -out ca.pem &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout server.key -out server.csr &&
        printf 'subjectAltName=DNS:%s,IP:127.0.0.1\n' "$2" > ext.cnf &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext.cnf -out server.pem
    ) >"$1/openssl.log" 2>&1 || fail "openssl: $(tail -3 "$1/openssl.log")"
}

# need_webhook: the plugin; the receiver is Python's own http.server
need_webhook() {
    need_sink webhook
    [ -x "$PY" ] || skip "$PY missing"
}

# amqp_conf FILE: a config for a private RabbitMQ node (started if needed)
amqp_conf() {
    need_plugin amqp
    AMQP_URL=$("$FERRY_SRCDIR/tests/brokers/ensure-amqp.sh") ||
        skip "no RabbitMQ broker: see $FERRY_TEST_STATE_DIR/amqp/log"
    printf '[transport]\nplugin = amqp\n[amqp]\nurl = %s\n' "$AMQP_URL" > "$1"
}
