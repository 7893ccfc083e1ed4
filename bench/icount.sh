#!/bin/bash
# Instructions per message of each ferry path and of the plain program it is
# compared with, counted with valgrind's callgrind (this machine's CPUs have
# no usable hardware counters for `perf stat -e instructions`). Each figure
# is (I(2N) - I(N)) / N over two runs of the same process, so start-up,
# connection and exit drop out; the count covers the whole process (every
# thread, the client library's included) and does not depend on the load.
#
# Usage: icount.sh OUT_TSV
# Writes one line per path: KIND TRANSPORT VARIANT INSTRUCTIONS_PER_MSG N
#   pub        plain library publisher (raw) / libferry ferry_pub_send (libferry)
#   producer   ferry-producer sending stdin lines of 100 B as JSON envelopes;
#              with ICOUNT_PYTHON=1 also the Python loops (bare bodies, and
#              the same envelope built with json.dumps)
#   sub        plain library consumer (raw) / ferry-aggregator with fsync
#   validator  ferry-validator (any well-formed JSON passes) forwarding to
#              a plain sink; its plain counterpart is raw sub + raw pub
# Environment: BENCH_BUILDDIR, BENCH_SRCDIR, ICOUNT_TRANSPORTS ("zmq kafka
# amqp"), ICOUNT_N (5000; AMQP 2000), ICOUNT_PYTHON (0), ICOUNT_JOBS (2:
# runs at once), ICOUNT_ONLY ("KIND:TRANSPORT:VARIANT ...": only those).
set -u
umask 077  # the configuration files hold the broker's URL
B=${BENCH_BUILDDIR:?}
S=${BENCH_SRCDIR:?}
OUTF=${1:?usage: icount.sh OUT_TSV}
TRANSPORTS=${ICOUNT_TRANSPORTS:-zmq kafka amqp}
N0=${ICOUNT_N:-5000}
JOBS=${ICOUNT_JOBS:-2}
PY=/usr/bin/python3
SIZE=100

BENCH=$B/bench/ferry-bench
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-icount.XXXXXX")
export FERRY_TEST_STATE_DIR=$T/state FERRY_TEST_OWNER_PID=$$
export FERRY_PLUGIN_PATH=$B/plugins/zmq:$B/plugins/amqp:$B/plugins/kafka:$B/plugins/sinks/file
mkdir -p "$FERRY_TEST_STATE_DIR"
trap 'kill $(jobs -p) 2>/dev/null; bash "$S/tests/brokers/stop-servers.sh" "$T/state" >&2; [ -n "${ICOUNT_KEEP:-}" ] || rm -rf "$T"' EXIT

log() { echo "icount: $*" >&2; }
uniq() { echo "i$$-$(date +%s%N)"; }
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# count_n TRANSPORT VARIANT: N (the Python programs cost about 100,000
# instructions a message: 1000 are plenty)
count_n() {
    case $2 in python-*) echo 1000; return ;; esac
    [ "$1" = amqp ] && echo "${ICOUNT_N:-2000}" || echo "$N0"
}

command -v valgrind >/dev/null || { log "valgrind not found (scripts/install-deps.sh bench)"; exit 1; }
[ -x "$BENCH" ] || { log "no $BENCH (make bench/ferry-bench)"; exit 1; }

# cg LOG PROGRAM ARGS...: run PROGRAM under callgrind (through libtool for
# the uninstalled libferry); its instruction total goes to LOG.count. Less,
# over AMQP, the own cost of rabbitmq-c's amqp_maybe_release_buffers_on_channel:
# it walks the list of frames that arrived during a synchronous call (the
# plugin's periodic count of the queue, made while deliveries stream in,
# leaves up to the prefetch's 3,000 frames there) on every call, so it costs
# per second of consuming, not per message, and swings by tens of millions
# of instructions between two runs; icount.sh reports it on its own line.
cg() {
    local lg=$1
    shift
    "$B/libtool" --mode=execute valgrind --tool=callgrind ${ICOUNT_VGOPTS:-} --log-file="$lg" \
        --callgrind-out-file="$lg.out" "$@"
    local rc=$? total walk=0
    total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$lg")
    if [ -n "$total" ] && grep -q amqp_maybe_release_buffers_on_channel "$lg.out"; then
        walk=$(callgrind_annotate --threshold=100 "$lg.out" 2>/dev/null |
            sed -n 's/^ *\([0-9,]*\) .*amqp_maybe_release_buffers_on_channel .*/\1/p' | head -n 1 | tr -d ,)
        total=$((total - ${walk:-0}))
    fi
    echo "$total" >"$lg.count"
    echo "${walk:-0}" >"$lg.walk"
    [ -n "${ICOUNT_KEEP:-}" ] || rm -f "$lg.out"
    return $rc
}

conf() {  # conf TRANSPORT ADDRESS [EXTRA LINES]: a ferry configuration file
    local f=$T/$1-$(uniq).conf
    {
        printf '[transport]\nplugin = %s\n[%s]\n' "$1" "$1"
        case $1 in
        zmq) echo "endpoint = $2"; echo "wire_version = 2" ;;  # as make bench
        amqp) echo "url = $2"; echo "prefetch = 1000" ;;
        kafka) echo "brokers = $2"; echo "session_timeout = 6s" ;;
        esac
        [ -z "${3:-}" ] || printf '%s\n' "$3"
    } >"$f"
    echo "$f"
}

addr() {
    case $1 in
    zmq) echo "tcp://127.0.0.1:$(port)" ;;
    amqp) echo "$AMQP_URL" ;;
    kafka) echo "$KAFKA_BROKERS" ;;
    esac
}

lines() {  # lines N SIZE: N lines of SIZE bytes
    local f=$T/lines-$1-$2
    if [ ! -f "$f" ]; then
        $PY -c "import sys
n,s=int(sys.argv[1]),int(sys.argv[2])
sys.stdout.write(''.join('line %08d %s\n' % (i, 'x' * (s - 14)) for i in range(n)))" "$1" "$2" >"$f.tmp" &&
            mv "$f.tmp" "$f"
    fi
    echo "$f"
}

drop() { [ "$1" = amqp ] && "$BENCH" -m drop -R -t amqp -a "$2" -d "$3"; return 0; }

# listening ADDRESS: wait until a zmq consumer under callgrind has bound
# its tcp:// ADDRESS (a ferry publisher gives up on an endpoint nobody
# listens at)
listening() {
    local p=${1##*:} i
    for i in $(seq 600); do
        [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    log "nothing listens at $1 after 60 s"
    return 1
}

# zsink ADDRESS N: a plain PULL sink bound at ADDRESS for N messages
zsink() { "$BENCH" -m sub -R -t zmq -a "$1" -d sink -n "$2" -s "$SIZE" >/dev/null; }

# one_run KIND TRANSPORT VARIANT N LOG: one instrumented run of N messages
one_run() {
    local k=$1 t=$2 v=$3 n=$4 lg=$5 a c d sink= rc=0
    a=$(addr "$t")
    c=$(conf "$t" "$a")
    d=$(uniq)
    case $k in
    pub)
        if [ "$t" = zmq ]; then
            local extra=0
            [ "$v" = libferry ] && extra=1  # its warm-up message
            zsink "$a" "$((n + extra))" & sink=$!
            listening "$a" || rc=1
        fi
        if [ "$v" = raw ]; then
            local w=-w
            [ "$t" = zmq ] && w=
            cg "$lg" "$BENCH" -m pub -R $w -t "$t" -a "$a" -d "$d" -n "$n" -s "$SIZE" >/dev/null || rc=1
        else
            cg "$lg" "$BENCH" -m pub -w -t "$t" -c "$c" -d "$d" -n "$n" -s "$SIZE" >/dev/null || rc=1
        fi ;;
    producer)
        [ "$t" = zmq ] && { zsink "$a" "$n" & sink=$!; listening "$a" || rc=1; }
        case $v in
        ferry-producer)
            cg "$lg" "$B/ferry-producer" -q -c "$c" --destination "$d" <"$(lines "$n" "$SIZE")" || rc=1 ;;
        python-loop | python-envelope)
            local mode=loop
            [ "$v" = python-envelope ] && mode=envelope
            PYTHONHASHSEED=0 cg "$lg" "$PY" "$S/bench/py-bench.py" "$t" "$mode" "$a" "$d" "$n" "$SIZE" >/dev/null || rc=1 ;;
        esac ;;
    sub)
        local feed=
        # Kafka: librdkafka's statistics (stats_interval, 1 s by default)
        # cost per second, not per message: each emission walks every
        # broker, topic and partition into JSON (about 2 million
        # instructions against the mock cluster). Under callgrind a run
        # sees a few of them, and when the 2N run saw two more than the N
        # one they added 800 instructions to each message (0 when it saw
        # as many): noise the plain consumer, which takes none, has not.
        [ "$t:$v" = kafka:aggregator ] && c=$(conf "$t" "$a" "stats_interval = 0")
        if [ "$t" != zmq ]; then  # filled first, at full speed
            "$BENCH" -m pub -t "$t" -c "$c" -d "$d" -n "$n" -s "$SIZE" >/dev/null || rc=1
        fi
        if [ "$v" = raw ]; then
            cg "$lg" "$BENCH" -m sub -R -t "$t" -a "$a" -d "$d" -n "$n" -s "$SIZE" >/dev/null &
        else
            cg "$lg" "$B/ferry-aggregator" -q -c "$c" --destination "$d" --group "$d" \
                --output "$T/$d.out" --count "$n" &
        fi
        local cons=$!
        # zmq: fed while it runs, once it has bound (the feeder connects)
        if [ "$t" = zmq ]; then
            listening "$a" && "$BENCH" -m pub -t "$t" -c "$c" -d "$d" -n "$n" -s "$SIZE" >/dev/null ||
                { rc=1; kill "$cons" 2>/dev/null; }
        fi
        wait "$cons" || rc=1
        rm -f "$T/$d.out" ;;
    validator)
        # one endpoint per destination over zmq, as the validator reads and writes
        local ain aout
        if [ "$t" = zmq ]; then
            ain=$(addr zmq) aout=$(addr zmq)
            c=$(conf zmq "$a" "endpoint.$d.in = $ain
endpoint.$d.out = $aout
endpoint.$d.rej = $(addr zmq)")
            zsink "$aout" "$n" & sink=$!
            listening "$aout" || rc=1
        else
            "$BENCH" -m pub -t "$t" -c "$c" -d "$d.in" -n "$n" -s "$SIZE" >/dev/null || rc=1
        fi
        cg "$lg" "$B/ferry-validator" -q -c "$c" --input "$d.in" --output "$d.out" \
            --reject "$d.rej" --group "$d" --count "$n" &
        local val=$!
        if [ "$t" = zmq ]; then
            listening "$ain" && "$BENCH" -m pub -t zmq -c "$c" -d "$d.in" -n "$n" -s "$SIZE" >/dev/null ||
                { rc=1; kill "$val" 2>/dev/null; }
        fi
        wait "$val" || rc=1
        drop "$t" "$a" "$d.in"; drop "$t" "$a" "$d.out"; drop "$t" "$a" "$d.rej" ;;
    esac
    if [ -n "$sink" ]; then
        if [ "$rc" = 0 ]; then wait "$sink" || rc=1; else kill "$sink" 2>/dev/null; fi
    fi
    drop "$t" "$a" "$d"
    return $rc
}

# repeats KIND TRANSPORT VARIANT: how many times the pair of runs is made
# (ICOUNT_REPEAT, 1); each count is the least of them (waiting can only
# add instructions). The Kafka aggregator twice: its counts were seen to
# differ by up to 25 % between runs (most of it in one unnamed librdkafka
# function, 5 to 15 million instructions a run; neither a longer session
# timeout nor always-full batches made it steadier).
repeats() {
    case $1:$2:$3 in
    sub:kafka:aggregator) echo "${ICOUNT_REPEAT:-2}" ;;
    *) echo "${ICOUNT_REPEAT:-1}" ;;
    esac
}

# measure KIND TRANSPORT VARIANT: the N and 2N runs side by side, then one
# line of the table
measure() {
    local k=$1 t=$2 v=$3 n lg=$T/$1-$2-$3 p1 p2 c1= c2= t0 r x
    t0=$(date +%s)
    n=$(count_n "$t" "$v")
    for r in $(seq "$(repeats "$k" "$t" "$v")"); do
        one_run "$k" "$t" "$v" "$n" "$lg.1" & p1=$!
        [ "$JOBS" -gt 1 ] || wait "$p1"
        one_run "$k" "$t" "$v" "$((2 * n))" "$lg.2" & p2=$!
        if ! wait "$p1" || ! wait "$p2" || [ ! -s "$lg.1.count" ] || [ ! -s "$lg.2.count" ]; then
            log "$k $t $v: run failed (valgrind's logs end:)"
            tail -n 5 "$lg.1" "$lg.2" >&2
            return 1
        fi
        x=$(cat "$lg.1.count")
        [ -n "$c1" ] && [ "$c1" -le "$x" ] || c1=$x
        x=$(cat "$lg.2.count")
        [ -n "$c2" ] && [ "$c2" -le "$x" ] || c2=$x
    done
    local per walk
    per=$(awk -v a="$c1" -v b="$c2" -v n="$n" 'BEGIN { printf "%.0f", (b - a) / n }')
    walk=$(cat "$lg.2.walk")
    [ "$walk" = 0 ] || log "$k $t $v: not counted: $walk instructions in amqp_maybe_release_buffers_on_channel in the 2N run ($(cat "$lg.1.walk") in the N run)"
    printf '%s\t%s\t%s\t%s\t%s\n' "$k" "$t" "$v" "$per" "$n" >>"$OUTF"
    log "$(printf '%-9s %-5s %-16s %7s instructions per message (N %s, %s s)' "$k" "$t" "$v" "$per" "$n" "$(($(date +%s) - t0))")"
}

: >"$OUTF"
failed=0
start=$(date +%s)
for t in $TRANSPORTS; do
    case $t in
    amqp) AMQP_URL=$("$S/tests/brokers/ensure-amqp.sh") || { log "no RabbitMQ: amqp not counted"; failed=1; continue; } ;;
    kafka) KAFKA_BROKERS=$(cd "$B" && "$S/tests/brokers/ensure-kafka.sh") ||
               { log "no Kafka mock: kafka not counted"; failed=1; continue; } ;;
    esac
    variants="pub:raw pub:libferry producer:ferry-producer sub:raw sub:aggregator"
    [ "${ICOUNT_PYTHON:-0}" = 1 ] && variants="$variants producer:python-loop producer:python-envelope"
    [ "$t" = zmq ] && variants="$variants validator:ferry-validator"
    for kv in $variants; do
        # ICOUNT_ONLY="KIND:TRANSPORT:VARIANT ...": just those
        [ -z "${ICOUNT_ONLY:-}" ] || case " $ICOUNT_ONLY " in *" ${kv%%:*}:$t:${kv#*:} "*) ;; *) continue ;; esac
        measure "${kv%%:*}" "$t" "${kv#*:}" || failed=1
    done
done
log "counted in $(($(date +%s) - start)) s"
exit $failed
