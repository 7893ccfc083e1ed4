#!/bin/bash
# Start, stop or restart a private mosquitto broker (Debian's `mosquitto`)
# for one test: its own port from the OS, its own config and persistence
# directory, listening on 127.0.0.1 only.
# Usage: mosquitto.sh DIR start|stop|restart|kill|port|pid [CONFIG-LINES]
#   start    writes DIR/mosquitto.conf (CONFIG-LINES appended, e.g.
#            "max_queued_messages 1000" to keep the broker's default limit),
#            starts the broker and prints its port once it accepts MQTT
#   stop     SIGTERM (the broker saves its persistence file), waits for the exit
#   kill     SIGKILL: what was not yet saved is lost
#   restart  stop, then start on the same port with the same data
# A watchdog stops the broker once $FERRY_TEST_OWNER_PID (default: the
# caller) has exited, so a test that dies leaves no broker behind.
set -u
DIR=${1:?usage: mosquitto.sh DIR start|stop|restart|kill|port|pid}
CMD=${2:-}
EXTRA=${3:-}
SCALE=${FERRY_TEST_TIMEOUT_SCALE:-1}
BIN=${FERRY_MOSQUITTO_BIN:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
mkdir -p "$DIR/data" || { echo "mosquitto.sh: cannot create $DIR" >&2; exit 77; }
LOG=$DIR/helper.log
log() { printf '%s mosquitto.sh[%d]: %s\n' "$(date -u +%H:%M:%S.%3N)" $$ "$*" >>"$LOG"; }
die() { log "error: $*"; echo "mosquitto.sh: $* (see $LOG)" >&2; exit 77; }
now_ms() { date +%s%3N; }

alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
}
pid() { [ -s "$DIR/pid" ] && cat "$DIR/pid"; }

# True once the port answers an MQTT CONNECT with a CONNACK (a TLS
# listener: once it accepts TCP connections).
ready() {
    "$PY" - "$(cat "$DIR/port")" "$(grep -c '^certfile' "$DIR/mosquitto.conf")" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
if sys.argv[2] != "0":
    sys.exit(0)
s.settimeout(2)
# CONNECT, MQTT 3.1.1, clean session, keepalive 10, client id "probe"
s.sendall(bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 5]) + b"probe")
d = s.recv(4)
s.sendall(bytes([0xE0, 0]))
sys.exit(0 if len(d) == 4 and d[0] == 0x20 and d[3] == 0 else 1)
PY
}

do_start() {
    [ -x "$BIN" ] || die "mosquitto not found (apt-get install mosquitto)"
    if [ ! -s "$DIR/port" ]; then
        "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' \
            >"$DIR/port" || die "cannot choose a free port"
    fi
    local port; port=$(cat "$DIR/port")
    [ -n "$EXTRA" ] && printf '%s\n' "$EXTRA" >"$DIR/extra.conf"
    # Tests raise the per-client queue so a slow consumer loses nothing; a
    # test of the default limit passes "max_queued_messages 1000".
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "persistence true"
        echo "persistence_location $DIR/data/"
        echo "log_dest file $DIR/broker.log"
        echo "log_type error"
        echo "log_type warning"
        echo "log_type notice"
        echo "log_type information"
        [ "$(id -u)" = 0 ] && echo "user root"
        cat "$DIR/extra.conf" 2>/dev/null
        grep -q '^max_queued_messages' "$DIR/extra.conf" 2>/dev/null || echo "max_queued_messages 1000000"
    } >"$DIR/mosquitto.conf"
    setsid "$BIN" -c "$DIR/mosquitto.conf" </dev/null >>"$DIR/broker.out" 2>&1 9>&- &
    local p=$! dl=$(( $(now_ms) + 20000 * SCALE ))
    echo $p >"$DIR/pid"
    until ready; do
        alive "$p" || { tail -n 5 "$DIR/broker.out" "$DIR/broker.log" >>"$LOG" 2>/dev/null; die "mosquitto exited during start-up"; }
        [ "$(now_ms)" -lt "$dl" ] || die "mosquitto not ready after $((20 * SCALE)) s"
        sleep 0.05
    done
    log "started pid=$p port=$port"
    local owner=${FERRY_TEST_OWNER_PID:-$PPID}
    if ! { [ -s "$DIR/watchdog.pid" ] && alive "$(cat "$DIR/watchdog.pid")"; }; then
        setsid bash -c '
            owner=$1 dir=$2 limit=$(( $(date +%s) + 7200 ))
            while st=$(ps -o stat= -p "$owner") && [ "${st#Z}" = "$st" ] &&
                  [ "$(date +%s)" -lt "$limit" ] && [ -s "$dir/pid" ]; do sleep 1; done
            p=$(cat "$dir/pid" 2>/dev/null) && kill -TERM "$p" 2>/dev/null
        ' mosquitto-watchdog "$owner" "$DIR" </dev/null >/dev/null 2>&1 9>&- &
        echo $! >"$DIR/watchdog.pid"
    fi
    echo "$port"
}

do_stop() {
    local sig=$1 p dl
    p=$(pid) || return 0
    if alive "$p"; then
        kill "-$sig" "$p" 2>/dev/null
        dl=$(( $(now_ms) + 10000 * SCALE ))
        while alive "$p" && [ "$(now_ms)" -lt "$dl" ]; do sleep 0.05; done
        alive "$p" && kill -KILL "$p" 2>/dev/null
        log "stopped pid=$p signal=$sig"
    fi
    rm -f "$DIR/pid"
}

case $CMD in
start) do_start ;;
stop) do_stop TERM ;;
kill) do_stop KILL ;;
restart) do_stop TERM; do_start ;;
port) cat "$DIR/port" ;;
pid) pid ;;
*) echo "usage: mosquitto.sh DIR start|stop|restart|kill|port|pid [CONFIG-LINES]" >&2; exit 64 ;;
esac
