#!/bin/bash
# `make bench`: ferry against the plain client libraries and the usual Python
# scripts over zmq, amqp and kafka, in one run; raw figures go to
# $BENCH_OUT/runs.tsv, then bench/report.py writes latest.md and the plots.
# Then syslog-ng shipping a file into Kafka and RabbitMQ against
# ferry-producer, the logger's call cost, and instructions per message
# under callgrind (bench/icount.sh, $BENCH_OUT/icount.tsv).
# Environment: BENCH_BUILDDIR, BENCH_SRCDIR, BENCH_OUT, BENCH_ROUNDS (3),
# BENCH_TRANSPORTS ("zmq amqp kafka"), BENCH_SHIP_LINES (200000),
# BENCH_ICOUNT (1: count instructions; 0: skip).
set -u
B=${BENCH_BUILDDIR:?}
S=${BENCH_SRCDIR:?}
OUT=${BENCH_OUT:-$S/bench/results}
ROUNDS=${BENCH_ROUNDS:-3}
TRANSPORTS=${BENCH_TRANSPORTS:-zmq amqp kafka}
PY=/usr/bin/python3   # Debian's python3-pika, -confluent-kafka and -zmq belong to it
SIZES="100 1024"
LAT_N=1500 LAT_RATE=1000
PER_MSG_N=10          # one Python process (and connection) per message
export BENCH_SHIP_LINES=${BENCH_SHIP_LINES:-200000}  # the file syslog-ng and ferry-producer ship (report.py reads it)
SHIP_LINES=$BENCH_SHIP_LINES

BENCH=$B/bench/ferry-bench
PRODUCER=$B/ferry-producer
AGGREGATOR=$B/ferry-aggregator
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
export FERRY_TEST_STATE_DIR=$T/state FERRY_TEST_OWNER_PID=$$
export FERRY_PLUGIN_PATH=$B/plugins/zmq:$B/plugins/amqp:$B/plugins/kafka:$B/plugins/sinks/file
mkdir -p "$OUT" "$FERRY_TEST_STATE_DIR"
TSV=$OUT/runs.tsv
started=$(date +%s.%N)
# the private brokers stop before their state goes; stop-servers.sh says
# if anything else this run started is still up
trap 'kill $(jobs -p) 2>/dev/null; bash "$S/tests/brokers/stop-servers.sh" "$T/state"; rm -rf "$T"' EXIT
umask 077  # the configuration files hold the brokers' URLs

log() { echo "bench: $*" >&2; }
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f\n", n / (b - a) }'; }
uniq() { echo "b$$-$(date +%s%N)"; }  # called in $(...): no counter survives
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# count TRANSPORT SIZE: messages per throughput run, bounded volume per
# broker (the Kafka mock keeps about 5 MiB per partition, 4 partitions)
count() {
    case $1 in
    zmq) echo 100000 ;;
    amqp) echo 3000 ;;
    kafka) [ "$2" -le 100 ] && echo 30000 || echo 10000 ;;
    esac
}

# record TRANSPORT KIND VARIANT SIZE VALUE...: one measured run
record() {
    if [ -z "${5:-}" ]; then
        log "$1 $2 $3 size=$4: run failed"
        return
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${*:5}" >>"$TSV"
    log "$1 $2 $3 size=$4: ${*:5}"
}

# conf TRANSPORT ADDRESS [latency]: a ferry configuration file
conf() {
    local f=$T/$1-$(uniq).conf
    {
        printf '[transport]\nplugin = %s\n[%s]\n' "$1" "$1"
        case $1 in
        zmq) echo "endpoint = $2"; echo "wire_version = 2" ;;  # one frame a message
        amqp) echo "url = $2"; echo "prefetch = 1000" ;;  # as the plain consumer
        kafka) echo "brokers = $2"; echo "session_timeout = 6s"
               [ -n "${3:-}" ] && echo "fetch_wait = 5ms" ;;
        esac
    } >"$f"
    echo "$f"
}

addr() {  # a fresh address for one run
    case $1 in
    zmq) echo "tcp://127.0.0.1:$(port)" ;;
    amqp) echo "$AMQP_URL" ;;
    kafka) echo "$KAFKA_BROKERS" ;;
    esac
}

lines() {  # lines N SIZE: a file of N lines of SIZE bytes for ferry-producer
    local f=$T/lines-$1-$2
    [ -f "$f" ] || $PY -c "import sys
n,s=int(sys.argv[1]),int(sys.argv[2])
sys.stdout.write(''.join('line %08d %s\n' % (i, 'x' * (s - 14)) for i in range(n)))" "$1" "$2" >"$f"
    echo "$f"
}

# publish throughput: VARIANT in raw, libferry, ferry-producer, python-loop
pub_run() {
    local t=$1 size=$2 v=$3 n a c d sink= r=
    n=$(count "$t" "$size")
    a=$(addr "$t")
    c=$(conf "$t" "$a")
    d=$(uniq)
    # libferry and the plain brokers' clients settle one message before their
    # clock starts (connection, queue or topic creation), as a long-running
    # producer would have; plain libzmq connects before its clock starts.
    local w=-w extra=0
    # (the one-line ferry-producer run also reaches the zmq sink)
    [ "$t" = zmq ] && case $v in libferry | ferry-producer) extra=1 ;; *) w= ;; esac
    if [ "$t" = zmq ]; then  # a plain PULL sink binds; every producer connects
        "$BENCH" -m sub -R -t zmq -a "$a" -d "$d" -n "$((n + extra))" -s "$size" >/dev/null &
        sink=$!
        sleep 0.2
    fi
    case $v in
    raw) r=$("$BENCH" -m pub -R $w -t "$t" -a "$a" -d "$d" -n "$n" -s "$size") ;;
    libferry) r=$("$BENCH" -m pub -w -t "$t" -c "$c" -d "$d" -n "$n" -s "$size") ;;
    ferry-producer)
        # the whole process, and again less the time of a run with one line
        # (start-up, connection, topic creation, close): its steady rate
        local in one t0 t1 t2
        in=$(lines "$n" "$size")
        one=$(lines 1 "$size")
        t0=$(now)
        "$PRODUCER" -q -c "$c" --destination "$d-1" <"$one" && t1=$(now) &&
            "$PRODUCER" -q -c "$c" --destination "$d" <"$in" && t2=$(now) &&
            r=$(rate "$n" "$t1" "$t2") &&
            record "$t" pub ferry-producer-steady "$size" \
                "$(awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" \
                   'BEGIN { if (c - b > b - a) printf "%.1f\n", (n - 1) / ((c - b) - (b - a)) }')"
        [ "$t" = amqp ] && "$BENCH" -m drop -R -t amqp -a "$a" -d "$d-1" ;;
    python-loop) r=$("$PY" "$S/bench/py-bench.py" "$t" loop "$a" "$d" "$n" "$size") ;;
    python-envelope) r=$("$PY" "$S/bench/py-bench.py" "$t" envelope "$a" "$d" "$n" "$size") ;;
    esac
    [ -n "$sink" ] && { [ -n "$r" ] && wait "$sink" || kill "$sink" 2>/dev/null; }
    record "$t" pub "$v" "$size" "$r"
    [ "$t" = amqp ] && "$BENCH" -m drop -R -t amqp -a "$a" -d "$d"
}

# one connection (one interpreter) per message, the tutorial way
py_once_run() {
    local t=$1 size=$2 a d sink= t0 t1 i ok=1
    a=$(addr "$t")
    d=$(uniq)
    if [ "$t" = zmq ]; then
        "$BENCH" -m sub -R -t zmq -a "$a" -d "$d" -n "$PER_MSG_N" -s "$size" >/dev/null &
        sink=$!
        sleep 0.2
    fi
    t0=$(now)
    for i in $(seq "$PER_MSG_N"); do
        "$PY" "$S/bench/py-bench.py" "$t" once "$a" "$d" 1 "$size" || { ok=; break; }
    done
    t1=$(now)
    [ -n "$sink" ] && wait "$sink"
    record "$t" pub python-per-message "$size" "${ok:+$(rate "$PER_MSG_N" "$t0" "$t1")}"
    [ "$t" = amqp ] && "$BENCH" -m drop -R -t amqp -a "$a" -d "$d"
}

# the same for ferry-producer: one process per message (one line on stdin)
ferry_once_run() {
    local t=$1 size=$2 a c d sink= t0 t1 i ok=1 one
    a=$(addr "$t")
    c=$(conf "$t" "$a")
    d=$(uniq)
    one=$(lines 1 "$size")
    if [ "$t" = zmq ]; then
        "$BENCH" -m sub -R -t zmq -a "$a" -d "$d" -n "$PER_MSG_N" -s "$size" >/dev/null &
        sink=$!
        sleep 0.2
    fi
    t0=$(now)
    for i in $(seq "$PER_MSG_N"); do
        "$PRODUCER" -q -c "$c" --destination "$d" <"$one" || { ok=; break; }
    done
    t1=$(now)
    [ -n "$sink" ] && { [ -n "$ok" ] && wait "$sink" || kill "$sink" 2>/dev/null; }
    record "$t" pub ferry-producer-per-message "$size" "${ok:+$(rate "$PER_MSG_N" "$t0" "$t1")}"
    [ "$t" = amqp ] && "$BENCH" -m drop -R -t amqp -a "$a" -d "$d"
}

# ship_run TRANSPORT VARIANT: SHIP_LINES lines of 99 bytes shipped from a
# file, by syslog-ng (file source, flags(flow-control); Kafka acks=all and
# idempotence as ferry's; RabbitMQ persistent messages, syslog-ng has no
# confirms) or by ferry-producer (stdin, envelope, confirms); completion is
# counted at the broker, from the shipper's start until the queue or topic
# holds every line.
ship_run() {
    local t=$1 v=$2 d f=$T/ship.ready w r= p rc=0
    d=$(uniq)
    local in
    in=$(lines "$SHIP_LINES" 99)
    rm -f "$f"
    if [ "$v" = syslog-ng ]; then
        local sd=$T/syslog-ng-$d
        mkdir -p "$sd"
        {
            echo '@version: 3.38'
            echo 'options { stats-freq(0); };'
            echo "source s { file(\"$in\" flags(no-parse) follow-freq(1)); };"
            case $t in
            kafka) echo "destination d { kafka-c(bootstrap-servers(\"$KAFKA_BROKERS\") topic(\"$d\")" \
                       "message(\"\$MSG\") config(\"acks\" => \"all\" \"enable.idempotence\" => \"true\"" \
                       "\"linger.ms\" => \"5\")); };" ;;
            amqp)
                local hp=${AMQP_URL#*@} up=${AMQP_URL#amqp://}
                up=${up%@*}
                echo "destination d { amqp(host(\"${hp%:*}\") port(${hp##*:}) vhost(\"/\")" \
                     "exchange(\"amq.direct\") exchange-declare(no) routing-key(\"$d\")" \
                     "body(\"\$MSG\") persistent(yes) username(\"${up%%:*}\") password(\"${up#*:}\")); };" ;;
            esac
            echo 'log { source(s); destination(d); flags(flow-control); };'
        } >"$sd/syslog-ng.conf"
    fi
    local x=
    [ "$v" = syslog-ng ] && [ "$t" = amqp ] && x="-x amq.direct"  # its queue, bound first
    # shellcheck disable=SC2086
    "$BENCH" -m count -R -t "$t" -a "$(addr "$t")" $x -d "$d" -n "$SHIP_LINES" -f "$f" >"$T/ship.r" &
    w=$!
    while [ ! -e "$f" ] && kill -0 "$w" 2>/dev/null; do sleep 0.01; done
    if [ "$v" = syslog-ng ]; then
        syslog-ng -F -f "$sd/syslog-ng.conf" -R "$sd/persist" --pidfile="$sd/pid" -c "$sd/ctl" \
            --no-caps >"$sd/log" 2>&1 &
        p=$!
        wait "$w" || rc=1
        kill "$p" 2>/dev/null
        wait "$p"
        [ "$rc" = 0 ] || tail -n 5 "$sd/log" >&2
    else
        "$PRODUCER" -q -c "$(conf "$t" "$(addr "$t")")" --destination "$d" <"$in" || rc=1
        wait "$w" || rc=1
    fi
    [ "$rc" = 0 ] && r=$(cat "$T/ship.r")
    record "$t" ship "$v" 99 "$r"
    [ "$t" = amqp ] && "$BENCH" -m drop -R -t amqp -a "$AMQP_URL" -d "$d"
}

# logger_run: the cost of one ferry_log() call from 1 and 8 threads as fast
# as they can, and from 8 threads at 5,000 calls/s each (median p99 p99.9
# in ns), with the load average it was measured at
logger_run() {
    local c o load
    c=$(conf kafka "$KAFKA_BROKERS")
    load=$(cut -d' ' -f1 /proc/loadavg)
    o=$("$B/bench/logger-bench" "$c" 200000 0 2>&1) || { log "logger-bench failed: $o"; return; }
    local th
    for th in 1 8; do
        record all logger "ferry_log-$th" 0 "$(echo "$o" | sed -n "s/^ferry_log call, $th threads\{0,1\}, .*median \([0-9-]*\) ns, p99 \([0-9-]*\) ns, p99.9 \([0-9-]*\) ns.*/\1 \2 \3 $load/p")"
    done
    record all logger "ferry_log-8-paced" 0 "$(echo "$o" | sed -n "s/^ferry_log call, 8 threads paced at [0-9]*\/s each, .*median \([0-9-]*\) ns, p99 \([0-9-]*\) ns, p99.9 \([0-9-]*\) ns.*/\1 \2 \3 $load/p")"
}

# consume throughput: VARIANT in raw, aggregator, aggregator-no-fsync.
# Brokers are filled first by the libferry publisher; zmq is fed concurrently.
sub_run() {
    local t=$1 size=$2 v=$3 n a c d r= cons f w=
    n=$(count "$t" "$size")
    a=$(addr "$t")
    c=$(conf "$t" "$a")
    d=$(uniq)
    f=$T/$d.out
    feed() { "$BENCH" -m pub -t "$t" -c "$c" -d "$d" -n "$n" -s "$size" >/dev/null; }
    [ "$t" != zmq ] && { feed || { record "$t" sub "$v" "$size" ""; return; }; }
    case $v in
    raw) "$BENCH" -m sub -R -t "$t" -a "$a" -d "$d" -n "$n" -s "$size" >"$T/r" & cons=$! ;;
    aggregator*)
        local nf=
        [ "$v" = aggregator-no-fsync ] && nf=--no-fsync
        "$AGGREGATOR" -q -c "$c" --destination "$d" --group "$d" --output "$f" --count "$n" $nf \
            2>"$T/agg.log" &
        cons=$!
        "$BENCH" -m watch -f "$f" -d "$d" -n "$n" -s "$size" >"$T/r" &
        w=$! ;;
    esac
    [ "$t" = zmq ] && { sleep 0.3; feed; }
    wait "$cons" && { [ -z "$w" ] || wait "$w"; } && r=$(cat "$T/r")
    [ -n "$w" ] && kill "$w" 2>/dev/null
    record "$t" sub "$v" "$size" "$r"
    rm -f "$f"
    [ "$t" = amqp ] && "$BENCH" -m drop -R -t amqp -a "$a" -d "$d"
}

# end-to-end latency at a fixed rate, 100-byte messages: p50 p99 p99.9 in µs
lat_run() {
    local t=$1 v=$2 a c d r=
    a=$(addr "$t")
    c=$(conf "$t" "$a" latency)
    d=$(uniq)
    case $v in
    raw) r=$("$BENCH" -m lat -R -t "$t" -a "$a" -d "$d" -n "$LAT_N" -r "$LAT_RATE" -s 100) ;;
    libferry) r=$("$BENCH" -m lat -t "$t" -c "$c" -d "$d" -n "$LAT_N" -r "$LAT_RATE" -s 100) ;;
    esac
    record "$t" lat "$v" 100 "$r"
    [ "$t" = amqp ] && "$BENCH" -m drop -R -t amqp -a "$a" -d "$d"
}

: >"$TSV"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
record all load start 0 "$(loadavg)"
for t in $TRANSPORTS; do
    case $t in
    amqp) AMQP_URL=$("$S/tests/brokers/ensure-amqp.sh") || { log "no RabbitMQ: amqp skipped"; continue; } ;;
    kafka) KAFKA_BROKERS=$(cd "$B" && "$S/tests/brokers/ensure-kafka.sh") ||
               { log "no Kafka mock: kafka skipped"; continue; } ;;
    esac
    log "$t: publish"
    for round in $(seq "$ROUNDS"); do
        for size in $SIZES; do
            for v in raw libferry ferry-producer python-loop python-envelope; do pub_run "$t" "$size" "$v"; done
        done
        py_once_run "$t" 100
        ferry_once_run "$t" 100
    done
    log "$t: consume"
    for round in $(seq "$ROUNDS"); do
        for size in $SIZES; do
            for v in raw aggregator aggregator-no-fsync; do sub_run "$t" "$size" "$v"; done
        done
    done
    log "$t: latency"
    for round in $(seq "$ROUNDS"); do
        for v in raw libferry; do lat_run "$t" "$v"; done
    done
    if [ "$t" != zmq ]; then
        if command -v syslog-ng >/dev/null; then
            log "$t: shipping a file of $SHIP_LINES lines, syslog-ng and ferry-producer"
            for round in $(seq "$ROUNDS"); do
                for v in syslog-ng ferry-producer; do ship_run "$t" "$v"; done
            done
        else
            log "no syslog-ng (scripts/install-deps.sh bench): its rows skipped"
        fi
    fi
    [ "$t" = kafka ] && { log "logger: ferry_log() call cost"; logger_run; }
done
record all load end 0 "$(loadavg)"
if [ "${BENCH_ICOUNT:-1}" = 1 ]; then
    log "instructions per message (callgrind)"
    ICOUNT_PYTHON=1 ICOUNT_TRANSPORTS="$TRANSPORTS" bash "$S/bench/icount.sh" "$OUT/icount.tsv" ||
        log "some paths were not counted"
fi
ended=$(now)
"$PY" "$S/bench/report.py" "$TSV" "$OUT" "$(awk -v a="$started" -v b="$ended" 'BEGIN{printf "%.0f", b - a}')"
