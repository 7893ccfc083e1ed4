#!/bin/bash
# make bench-zmq-reliable (also run by make bench): the cost of zmq's
# reliable mode at 100 B. Publish throughput through libferry's publisher
# (bench/ferry-bench -m pub: until the last confirm, close included) and
# end-to-end latency at a fixed rate (-m lat: p50 p99 p99.9), for plain zmq,
# zmq reliable = true (without and with the spool), and amqp with publisher
# confirms (a private RabbitMQ node). Goal (issue 21): reliable zmq >= 5 x
# amqp-with-confirms throughput and >= 0.5 x plain zmq. The median of
# BENCH_ROUNDS runs is kept. Writes bench/results/zmq-reliable.md.
# Environment: BENCH_BUILDDIR, BENCH_SRCDIR, BENCH_OUT, BENCH_ROUNDS (3),
# BENCH_ZMQREL_VARIANTS (default: all four).
set -u
B=${BENCH_BUILDDIR:?}
S=${BENCH_SRCDIR:?}
OUT=${BENCH_OUT:-$S/bench/results}
ROUNDS=${BENCH_ROUNDS:-3}
PY=/usr/bin/python3
BENCH=$B/bench/ferry-bench
N_ZMQ=200000 N_AMQP=3000 LAT_N=1500 LAT_RATE=1000 SIZE=100
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-zmqrel.XXXXXX")
export FERRY_TEST_STATE_DIR=$T/state FERRY_TEST_OWNER_PID=$$
export FERRY_PLUGIN_PATH=$B/plugins/zmq:$B/plugins/amqp
mkdir -p "$OUT" "$FERRY_TEST_STATE_DIR"
trap 'kill $(jobs -p) 2>/dev/null; bash "$S/tests/brokers/stop-servers.sh" "$T/state"; rm -rf "$T"' EXIT
[ -x "$BENCH" ] || { echo "zmq-reliable.sh: $BENCH not built (make bench builds it)" >&2; exit 1; }

log() { echo "bench-zmq-reliable: $*" >&2; }
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dest() { echo "zr$$-$(date +%s%N)"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# conf VARIANT: a configuration for one run (a fresh zmq port each time)
conf() {
    local f=$T/$1-$(date +%s%N).conf
    case $1 in
    zmq-plain) printf '[transport]\nplugin = zmq\n[zmq]\nendpoint = tcp://127.0.0.1:%s\n' "$(port)" ;;
    zmq-reliable) printf '[transport]\nplugin = zmq\n[zmq]\nendpoint = tcp://127.0.0.1:%s\nreliable = true\n' "$(port)" ;;
    zmq-reliable-spool)
        rm -rf "$T/spool"
        printf '[transport]\nplugin = zmq\n[zmq]\nendpoint = tcp://127.0.0.1:%s\nreliable = true\nspool_dir = %s\nspool_fsync = batch\n' \
            "$(port)" "$T/spool" ;;
    amqp-confirms) printf '[transport]\nplugin = amqp\n[amqp]\nurl = %s\nprefetch = 1000\n' "$AMQP_URL" ;;
    esac >"$f"
    echo "$f"
}

# pub VARIANT: messages/s published and confirmed (zmq: a libferry consumer
# that acks binds first and counts them all)
pub() {
    local v=$1 c d r= sink=
    c=$(conf "$v")
    d=$(dest)
    case $v in
    zmq*)
        "$BENCH" -m sub -t zmq -c "$c" -d "$d" -n $((N_ZMQ + 1)) -s $SIZE >/dev/null &
        sink=$!
        sleep 0.3
        r=$("$BENCH" -m pub -w -t zmq -c "$c" -d "$d" -n $N_ZMQ -s $SIZE)
        if [ -n "$r" ]; then wait "$sink" || r=; else kill "$sink" 2>/dev/null; fi ;;
    amqp*)
        r=$("$BENCH" -m pub -w -t amqp -c "$c" -d "$d" -n $N_AMQP -s $SIZE)
        "$BENCH" -m drop -R -t amqp -a "$AMQP_URL" -d "$d" ;;
    esac
    echo "$r"
}

# lat VARIANT: "p50 p99 p99.9" in microseconds at LAT_RATE messages/s
lat() {
    local v=$1 c d t=zmq
    c=$(conf "$v")
    d=$(dest)
    case $v in amqp*) t=amqp ;; esac
    "$BENCH" -m lat -t $t -c "$c" -d "$d" -n $LAT_N -r $LAT_RATE -s $SIZE
    [ $t = amqp ] && "$BENCH" -m drop -R -t amqp -a "$AMQP_URL" -d "$d"
}

VARIANTS=${BENCH_ZMQREL_VARIANTS:-zmq-plain zmq-reliable zmq-reliable-spool amqp-confirms}
if [ "${VARIANTS%amqp-confirms}" != "$VARIANTS" ] && ! AMQP_URL=$("$S/tests/brokers/ensure-amqp.sh"); then
    log "no RabbitMQ: amqp-confirms not measured"
    VARIANTS=${VARIANTS% amqp-confirms}
fi
declare -A TPUT P50 P99
for v in $VARIANTS; do
    : >"$T/$v.pub"
    : >"$T/$v.lat"
    for _ in $(seq "$ROUNDS"); do
        r=$(pub "$v")
        log "$v publish: ${r:-failed} msg/s"
        [ -n "$r" ] && echo "$r" >>"$T/$v.pub"
        l=$(lat "$v")
        log "$v latency (p50 p99 p99.9 us): ${l:-failed}"
        [ -n "$l" ] && echo "$l" >>"$T/$v.lat"
    done
    TPUT[$v]=$(median <"$T/$v.pub")
    P50[$v]=$(awk '{ print $1 }' "$T/$v.lat" | median)
    P99[$v]=$(awk '{ print $2 }' "$T/$v.lat" | median)
done

ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "?" }'; }
verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r != "?" && r + 0 >= g) ? "met" : "NOT met" }'; }
{
    echo "# zmq reliable mode: its cost at 100 B (ferry $(git -C "$S" describe --always 2>/dev/null || echo '?'))"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)),"
    echo "median of $ROUNDS runs; zmq runs use wire_version = 2 (ferry-bench's default). Publish: libferry's"
    echo "publisher (bench/ferry-bench -m pub), $N_ZMQ messages over zmq and $N_AMQP over amqp, timed"
    echo "until the last confirm (plain zmq: handed to libzmq, nothing confirmed) and the close; a"
    echo "libferry consumer acks on the zmq side. Latency: producer and consumer in one process at"
    echo "$LAT_RATE messages/s, $LAT_N messages, end to end."
    echo
    echo "| variant | publish msg/s | p50 µs | p99 µs | confirms mean |"
    echo "|---|---:|---:|---:|---|"
    for v in $VARIANTS; do
        case $v in
        zmq-plain) what="handed to libzmq" ;;
        zmq-reliable) what="the consumer acked it (after its work)" ;;
        zmq-reliable-spool) what="as above, and written to the producer's spool first" ;;
        amqp-confirms) what="the broker has it (persistent, publisher confirms)" ;;
        esac
        echo "| $v | ${TPUT[$v]:-?} | ${P50[$v]:-?} | ${P99[$v]:-?} | $what |"
    done
    echo
    r1=$(ratio "${TPUT[zmq-reliable]:-}" "${TPUT[amqp-confirms]:-}")
    r2=$(ratio "${TPUT[zmq-reliable]:-}" "${TPUT[zmq-plain]:-}")
    echo "Goals (issue 21): reliable zmq / amqp with confirms = **${r1} x** (goal ≥ 5: $(verdict "$r1" 5));"
    echo "reliable zmq / plain zmq = **${r2} x** (goal ≥ 0.5: $(verdict "$r2" 0.5))."
    echo
    echo "Raw runs (msg/s; p50 p99 p99.9 µs):"
    echo
    for v in $VARIANTS; do
        echo "- $v: $(tr '\n' ' ' <"$T/$v.pub"); $(tr '\n' ',' <"$T/$v.lat" | sed 's/,$//')"
    done
} >"$OUT/zmq-reliable.md"
cat "$OUT/zmq-reliable.md"
