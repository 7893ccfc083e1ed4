# Fault-injection scenarios, shared by tests/faults/<transport>-<fault>.test
# (sourced after FAULT_TRANSPORT is set). Each scenario runs a producer and
# an aggregator, injects one fault mid-stream and checks the output file
# with `ferry-aggregator --verify`: complete and duplicate-free over
# transports with acks (and zmq with FAULT_RELIABLE=1: reliable = true),
# loss reported exactly over plain zmq.
. "$FERRY_SRCDIR/tests/lib.sh"
need_plugin "$FAULT_TRANSPORT"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
N=${FAULT_COUNT:-20000}
RATE=${FAULT_RATE:-4000}
OUT=$T/out.txt
dest="ferry-fault-$FAULT_TRANSPORT-$$-$(date +%s%N)"

# write_conf FILE ADDRESS: a config for the transport at ADDRESS
write_conf() {
    case $FAULT_TRANSPORT in
    amqp) printf '[transport]\nplugin = amqp\n[amqp]\nurl = %s\nprefetch = 1000\n' "$2" ;;
    kafka) printf '[transport]\nplugin = kafka\n[kafka]\nbrokers = %s\n%s\n' "$2" \
        "session_timeout = 6s
commit_interval = 200ms
fetch_wait = 20ms" ;;
    zmq) printf '[transport]\nplugin = zmq\n[zmq]\nendpoint = tcp://%s\n' "$2"
        [ -z "${FAULT_RELIABLE:-}" ] || printf 'reliable = true\nack_timeout = 3s\n' ;;
    esac >"$1"
    printf '[aggregator]\ndestination = %s\noutput = %s\nbatch = 200\n[producer]\ndestination = %s\n' \
        "$dest" "$OUT" "$dest" >>"$1"
}

# broker_addr: the shared test broker (or a free port for zmq, which binds
# in the aggregator)
broker_addr() {
    case $FAULT_TRANSPORT in
    amqp) "$FERRY_SRCDIR/tests/brokers/ensure-amqp.sh" || skip "no RabbitMQ broker" ;;
    kafka) "$FERRY_SRCDIR/tests/brokers/ensure-kafka.sh" || skip "no Kafka cluster" ;;
    zmq) echo "127.0.0.1:$(free_port)" ;;
    esac
}

# host:port of an address or URL
hostport() { echo "$1" | sed -e 's|^[a-z]*://||' -e 's|^[^@]*@||' -e 's|[/,].*$||'; }

start_producer() { # CONFIG
    bg "$PRODUCER" -q -c "$1" --generate logs --count "$N" --rate "$RATE" \
        --flush-timeout 120s 2>"$T/producer.err"
    PROD=$!
}
start_aggregator() { # CONFIG [extra flags...]
    local c=$1; shift
    bg "$AGGREGATOR" -c "$c" "$@" 2>>"$T/aggregator.err"
    AGG=$!
}
stop_aggregator() { kill -TERM "$AGG" 2>/dev/null; wait "$AGG" 2>/dev/null; }

at_least() { [ "$(lines "$OUT")" -ge "$1" ]; }

# plain zmq: no acks, so loss is expected and only has to be reported exactly
lossy() { [ "$FAULT_TRANSPORT" = zmq ] && [ -z "${FAULT_RELIABLE:-}" ]; }

# wait for the producer (exit 0 required), then for the output to settle:
# complete, or (plain zmq) no growth for 3 s
finish() {
    local prc=0
    wait "$PROD" || prc=$?
    [ $prc -eq 0 ] || { tail -5 "$T/producer.err" >&2; fail "producer exited $prc"; }
    note "producer done at $(date +%T) with $(lines "$OUT") lines written"
    local end now last=-1 changed
    end=$(deadline 90)
    changed=$(date +%s)
    while :; do
        now=$(lines "$OUT")
        if [ "$now" != "$last" ]; then last=$now; changed=$(date +%s); fi
        if [ "$now" -ge "$N" ] && "$AGGREGATOR" --verify "$OUT" --expect "$N" >/dev/null 2>&1; then
            break
        fi
        # zmq cannot redeliver: once nothing has arrived for 3 s, that is all
        lossy && [ $(( $(date +%s) - changed )) -ge $(scaled 3) ] && break
        [ "$(date +%s)" -lt "$end" ] || break
        sleep 0.2
    done
    stop_aggregator
}

# check: the verdict of --verify, held against an independent count
check() {
    local vrc=0
    "$AGGREGATOR" --verify "$OUT" --expect "$N" >"$T/verify.txt" 2>&1 || vrc=$?
    cat "$T/verify.txt" | head -20
    local total uniq missing dups
    total=$(lines "$OUT")
    uniq=$(grep -o '"seq":[0-9]*' "$OUT" | sort -u | wc -l | tr -d ' ')
    missing=$(sed -n 's/^result=.* missing=\([0-9]*\).*/\1/p' "$T/verify.txt")
    dups=$(sed -n 's/^result=.* duplicates=\([0-9]*\)$/\1/p' "$T/verify.txt")
    echo "# $FAULT_TRANSPORT: sent=$N lines=$total unique=$uniq missing=$missing duplicates=$dups"
    [ "$missing" = $((N - uniq)) ] || fail "--verify says missing=$missing, the file lacks $((N - uniq))"
    [ "$dups" = $((total - uniq)) ] || fail "--verify says duplicates=$dups, the file repeats $((total - uniq))"
    if lossy; then
        if [ "$missing" = 0 ] && [ "$dups" = 0 ]; then
            [ $vrc -eq 0 ] || fail "--verify exited $vrc on a complete file"
        else
            [ $vrc -eq 65 ] || fail "--verify exited $vrc on an incomplete file"
        fi
        echo "# zmq: loss reported exactly by --verify (missing=$missing)"
    else
        [ $vrc -eq 0 ] || fail "--verify exited $vrc: $(tail -1 "$T/verify.txt")"
        [ "$uniq" = "$N" ] && [ "$total" = "$N" ] || fail "want $N lines each once"
    fi
    echo "PASS: $FAULT_TRANSPORT $1"
}

# SIGKILL of the aggregator mid-stream, then a new one takes over.
scenario_kill() {
    local addr; addr=$(broker_addr)
    write_conf "$T/f.conf" "$addr"
    start_aggregator "$T/f.conf"
    start_producer "$T/f.conf"
    wait_for 60 at_least $((N / 4)) || fail "aggregator wrote only $(lines "$OUT") lines"
    kill -KILL "$AGG"; wait "$AGG" 2>/dev/null
    note "$(date +%T) aggregator killed after $(lines "$OUT") lines"
    start_aggregator "$T/f.conf"
    finish
    check "aggregator SIGKILL"
}

# The aggregator's disk fills up: it must stop acking, say so, and carry on
# once there is room again.
scenario_diskfull() {
    local addr; addr=$(broker_addr)
    write_conf "$T/f.conf" "$addr"
    # SIGXFSZ ignored: write() fails with EFBIG instead of killing the process
    ( trap '' XFSZ; ulimit -S -f 256; exec "$AGGREGATOR" -c "$T/f.conf" 2>>"$T/aggregator.err" ) &
    AGG=$!; FERRY_PIDS="$FERRY_PIDS $AGG"
    start_producer "$T/f.conf"
    wait_for 60 grep -q 'write failed' "$T/aggregator.err" || fail "the file never filled up"
    local full; full=$(lines "$OUT")
    [ "$(stat -c %s "$OUT")" -le 262144 ] || fail "file grew past the limit"
    grep -m1 'write failed' "$T/aggregator.err" | sed 's/^/# /'
    prlimit --pid "$AGG" --fsize=unlimited || fail "cannot lift the file size limit"
    note "disk full at $full lines, limit lifted"
    finish
    grep -q 'write failed' "$T/aggregator.err" && [ "$(lines "$OUT")" -gt "$full" ] ||
        fail "the aggregator did not resume after the limit was lifted"
    check "disk full"
}

# Every TCP connection of the producer is cut once mid-stream.
scenario_cut() {
    local addr; addr=$(broker_addr)
    write_conf "$T/f.conf" "$addr"
    local hp; hp=$(hostport "$addr")
    if [ "$FAULT_TRANSPORT" = kafka ]; then
        # Kafka clients learn the brokers' own addresses from metadata, so a
        # relay only sees the bootstrap: cut the sockets in the kernel instead.
        command -v ss >/dev/null || skip "needs ss (iproute2) to cut TCP connections"
        write_conf "$T/p.conf" "$addr"
    else
        bg "$PY" "$FERRY_SRCDIR/tests/faults/cutproxy.py" "${hp%:*}" "${hp##*:}" "$T/proxy.port"
        PROXY=$!
        wait_for 10 test -s "$T/proxy.port" || fail "relay did not start"
        local pport; pport=$(cat "$T/proxy.port")
        case $FAULT_TRANSPORT in
        amqp) write_conf "$T/p.conf" "$(echo "$addr" | sed "s|:${hp##*:}|:$pport|")" ;;
        zmq) write_conf "$T/p.conf" "127.0.0.1:$pport" ;;
        esac
    fi
    start_aggregator "$T/f.conf"
    start_producer "$T/p.conf"
    wait_for 60 at_least $((N / 4)) || fail "aggregator wrote only $(lines "$OUT") lines"
    if [ "$FAULT_TRANSPORT" = kafka ]; then
        local out
        out=$(ss -K -t state established "( dport = :${hp##*:} or sport = :${hp##*:} )" 2>&1) ||
            skip "ss -K cannot close sockets here (needs root and CONFIG_INET_DIAG_DESTROY): $out"
        echo "$out" | grep -q ":${hp##*:}" || skip "ss -K closed nothing (kernel lacks CONFIG_INET_DIAG_DESTROY?)"
    else
        kill -USR1 "$PROXY"
    fi
    note "connections cut after $(lines "$OUT") lines"
    finish
    check "connection cut"
}

# The broker restarts under load.
scenario_restart() {
    local addr
    case $FAULT_TRANSPORT in
    amqp)
        [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || skip "needs rabbitmq-server to restart a node"
        export FERRY_AMQP_NODE_STATE=$T/node FERRY_TEST_OWNER_PID=$$
        addr=$("$FERRY_SRCDIR/tests/brokers/amqp-node.sh" start) || skip "cannot start a private RabbitMQ node"
        at_exit '"$FERRY_SRCDIR/tests/brokers/amqp-node.sh" stop >/dev/null 2>&1' ;;
    kafka)
        # a private mock cluster, so taking it down disturbs no other test
        FERRY_TEST_STATE_DIR=$T/state FERRY_TEST_OWNER_PID=$$
        export FERRY_TEST_STATE_DIR FERRY_TEST_OWNER_PID
        addr=$(broker_addr)
        "$FERRY_SRCDIR/tests/brokers/kafka-ctl.sh" ping >/dev/null 2>&1 || skip "no mock cluster to take down" ;;
    esac
    write_conf "$T/f.conf" "$addr"
    start_aggregator "$T/f.conf"
    start_producer "$T/f.conf"
    wait_for 60 at_least $((N / 4)) || fail "aggregator wrote only $(lines "$OUT") lines"
    case $FAULT_TRANSPORT in
    amqp) "$FERRY_SRCDIR/tests/brokers/amqp-node.sh" restart >/dev/null || fail "node restart failed" ;;
    kafka)
        "$FERRY_SRCDIR/tests/brokers/kafka-ctl.sh" down || fail "kafka-ctl down failed"
        local before; before=$(lines "$OUT")
        stalled() { local a; a=$(lines "$OUT"); sleep 0.5; [ "$(lines "$OUT")" = "$a" ]; }
        wait_for 20 stalled || fail "output kept growing with the broker down"
        "$FERRY_SRCDIR/tests/brokers/kafka-ctl.sh" up || fail "kafka-ctl up failed"
        note "broker down from $before lines" ;;
    esac
    note "broker restarted at $(lines "$OUT") lines"
    finish
    check "broker restart"
}

# SIGKILL of a producer that spools (zmq reliable = true) while its consumer
# is frozen, so thousands are unacknowledged; the consumer is killed too
# (what it held is gone). A new producer on the same spool, with nothing
# new to send, must deliver every message the first one wrote to its spool
# or had acknowledged: the check expects every seq up to the highest found
# in the output or in the spool before the restart.
scenario_producer_kill() {
    local addr; addr=$(broker_addr)
    write_conf "$T/f.conf" "$addr"
    cp "$T/f.conf" "$T/p.conf"
    printf '[zmq]\nspool_dir = %s\nlinger = %ss\n' "$T/spool" "$(scaled 60)" >>"$T/p.conf"
    start_aggregator "$T/f.conf"
    start_producer "$T/p.conf"
    wait_for 60 at_least $((N / 4)) || fail "aggregator wrote only $(lines "$OUT") lines"
    kill -STOP "$AGG"
    local stopped; stopped=$(lines "$OUT")
    spooled() { grep -aho '"seq":[0-9]*' "$T/spool"/*.seg 2>/dev/null | tail -n 1 | cut -d: -f2; }
    grown() { [ "$(spooled || echo 0)" -ge $((stopped + 2000)) ]; }
    wait_for 60 grown || fail "the spool did not grow with the consumer stopped"
    kill -KILL "$PROD"; wait "$PROD" 2>/dev/null
    kill -KILL "$AGG"; kill -CONT "$AGG" 2>/dev/null; wait "$AGG" 2>/dev/null
    local last; last=$(spooled)
    local seen; seen=$(grep -o '"seq":[0-9]*' "$OUT" | cut -d: -f2 | sort -n | tail -n 1)
    [ "${seen:-0}" -gt "$last" ] && last=$seen
    note "$(date +%T) producer and aggregator killed: $stopped lines written, spool up to seq $last"
    start_aggregator "$T/f.conf"
    local prc=0
    "$PRODUCER" -c "$T/p.conf" </dev/null 2>"$T/producer2.err" || prc=$?
    [ $prc -eq 0 ] || { tail -n 5 "$T/producer2.err" >&2; fail "restarted producer exited $prc"; }
    grep -m1 'spool recovered' "$T/producer2.err" | sed 's/^/# /'
    grep -q 'spool recovered unacked=[1-9]' "$T/producer2.err" || fail "nothing recovered from the spool"
    grep -q 'not acknowledged' "$T/producer2.err" && fail "restarted producer left messages unacked"
    N=$last
    complete() { "$AGGREGATOR" --verify "$OUT" --expect "$N" >/dev/null 2>&1; }
    wait_for 60 complete
    stop_aggregator
    check "producer SIGKILL with spool"
}

# Work sharing (zmq reliable = true, bind = producer): two aggregators
# connect to one producer and split the stream; one is killed with SIGKILL
# mid-stream. What it held unacked goes to the other: the two files
# together hold every id (an id in both files is allowed: at-least-once).
scenario_share() {
    local addr; addr=$(broker_addr)
    write_conf "$T/f.conf" "$addr"
    printf '[zmq]\nbind = producer\n' >>"$T/f.conf"
    sed "s|^output = .*|output = $T/out2.txt|" "$T/f.conf" >"$T/f2.conf"
    start_producer "$T/f.conf"
    start_aggregator "$T/f.conf"
    local agg1=$AGG
    start_aggregator "$T/f2.conf"
    local agg2=$AGG
    both() { [ "$(lines "$OUT")" -ge $((N / 8)) ] && [ "$(lines "$T/out2.txt")" -ge $((N / 8)) ]; }
    wait_for 60 both || fail "the stream was not shared: $(lines "$OUT") and $(lines "$T/out2.txt") lines"
    kill -KILL "$agg1"; wait "$agg1" 2>/dev/null
    note "$(date +%T) first aggregator killed at $(lines "$OUT") lines, the other has $(lines "$T/out2.txt")"
    local prc=0
    wait "$PROD" || prc=$?
    [ $prc -eq 0 ] || { tail -n 5 "$T/producer.err" >&2; fail "producer exited $prc"; }
    AGG=$agg2
    stop_aggregator
    cat "$OUT" "$T/out2.txt" >"$T/all.txt"
    local total uniq
    total=$(lines "$T/all.txt")
    uniq=$(grep -o '"seq":[0-9]*' "$T/all.txt" | sort -u | wc -l | tr -d ' ')
    echo "# zmq reliable sharing: sent=$N first=$(lines "$OUT") second=$(lines "$T/out2.txt") unique=$uniq in both=$((total - uniq))"
    [ "$uniq" = "$N" ] || fail "the two files hold $uniq of $N ids"
    "$AGGREGATOR" --verify "$T/out2.txt" >/dev/null 2>&1 || [ $? -eq 65 ] || fail "--verify failed on the second file"
    echo "PASS: zmq reliable work sharing with a consumer SIGKILL"
}

# Several producers into one consumer (zmq reliable: the aggregator binds, two
# producers connect): the aggregator is killed with SIGKILL mid-stream and a
# new one binds the same endpoint; each producer resends what was not acked,
# so every id of both arrives, each once after de-duplication.
scenario_fanin() {
    local addr; addr=$(broker_addr)
    write_conf "$T/f.conf" "$addr"
    start_aggregator "$T/f.conf"
    start_producer "$T/f.conf"
    local p1=$PROD
    bg "$PRODUCER" -q -c "$T/f.conf" --generate logs --count "$N" --rate "$RATE" \
        --flush-timeout 120s 2>"$T/producer2.err"
    local p2=$!
    wait_for 60 at_least $((N / 2)) || fail "aggregator wrote only $(lines "$OUT") lines"
    kill -KILL "$AGG"; wait "$AGG" 2>/dev/null
    note "$(date +%T) aggregator killed after $(lines "$OUT") lines"
    start_aggregator "$T/f.conf"
    local prc=0
    wait "$p1" || prc=$?
    [ $prc -eq 0 ] || { tail -n 5 "$T/producer.err" >&2; fail "first producer exited $prc"; }
    wait "$p2" || prc=$?
    [ $prc -eq 0 ] || { tail -n 5 "$T/producer2.err" >&2; fail "second producer exited $prc"; }
    complete() { [ "$(lines "$OUT")" -ge $((2 * N)) ] &&
        "$AGGREGATOR" --verify "$OUT" --expect "$N" >/dev/null 2>&1; }
    wait_for 90 complete || true
    stop_aggregator
    local vrc=0
    "$AGGREGATOR" --verify "$OUT" --expect "$N" >"$T/verify.txt" 2>&1 || vrc=$?
    head -20 "$T/verify.txt"
    local total uniq producers
    total=$(lines "$OUT")
    uniq=$(grep -o '"producer":"[^"]*","seq":[0-9]*' "$OUT" | sort -u | wc -l | tr -d ' ')
    producers=$(grep -o '"producer":"[^"]*"' "$OUT" | sort -u | wc -l | tr -d ' ')
    echo "# zmq reliable fan-in: sent=2x$N lines=$total unique=$uniq producers=$producers"
    [ "$producers" = 2 ] || fail "the file holds $producers producers, want 2"
    [ "$uniq" = $((2 * N)) ] || fail "the file holds $uniq of $((2 * N)) ids"
    [ "$total" = "$uniq" ] || fail "the file repeats $((total - uniq)) ids"
    [ $vrc -eq 0 ] || fail "--verify exited $vrc: $(tail -1 "$T/verify.txt")"
    echo "PASS: zmq reliable fan-in, two producers, aggregator SIGKILL"
}
