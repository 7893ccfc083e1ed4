#!/bin/bash
# make bench-sinks: events/s through the grpc and webhook sinks
# (ferry-producer -> zmq -> ferry-aggregator --sink NAME -> the Python test
# receivers) at batch 100 and 1,000, next to each receiver's own ceiling
# (a plain Python client, one call in flight like the sink). Goal: the sink
# reaches at least 0.8 x the ceiling. Writes bench/results/sinks.md.
set -eu
B=$BENCH_BUILDDIR S=$BENCH_SRCDIR OUT=$BENCH_OUT
N=${BENCH_SINK_EVENTS:-200000}
PY=/usr/bin/python3
W=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill -9 $p 2>/dev/null; done; rm -rf "$W"' EXIT
export FERRY_PLUGIN_PATH="$B/plugins/zmq:$B/plugins/sinks/grpc:$B/plugins/sinks/webhook:$B/plugins/sinks/file"
mkdir -p "$W/py"
$PY -m grpc_tools.protoc -I "$S/proto" --python_out="$W/py" --grpc_python_out="$W/py" "$S/proto/ferry/v1/sink.proto"
for i in $(seq 1000); do
    printf '{"id":"b%d","service":"bench","level":"INFO","message":"Log Entry %d: benchmark line of about a hundred bytes","timestamp":"2026-12-02T12:00:00.000Z","host":"bench"}\n' $i $i
done > "$W/bodies"

start() { # start NAME SCRIPT: sets PORT
    rm -f "$W/$1.port"
    PYTHONPATH="$W/py" $PY "$S/tests/sinks/$2" --port 0 --ready "$W/$1.port" >"$W/$1.log" 2>&1 &
    pids="$pids $!"
    for _ in $(seq 100); do [ -s "$W/$1.port" ] && break; sleep 0.1; done
    PORT=$(cat "$W/$1.port")
}
through() { # through SINK BATCH CONFIG-LINES: events/s of the aggregator
    local sink=$1 batch=$2
    printf '[transport]\nplugin = zmq\n[zmq]\nendpoint = ipc://%s/in-%s-%s.sock\nsend_hwm = 0\nreceive_hwm = 0\n%s\n' \
        "$W" "$sink" "$batch" "$3" > "$W/c.conf"
    head -4 "$W/c.conf" > "$W/p.conf"
    local t0 t1
    "$B/ferry-aggregator" -q -c "$W/c.conf" --sink "$sink" --destination bench --batch "$batch" \
        --batch-wait 50ms --count "$N" 2>"$W/agg.log" &
    local agg=$!
    sleep 0.5
    t0=$(date +%s.%N)
    "$B/ferry-producer" -q -c "$W/p.conf" --destination bench --generate logs --count "$N" 2>/dev/null
    wait $agg
    t1=$(date +%s.%N)
    awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}
{
echo "# Sinks: events/s through grpc and webhook (ferry $(git -C "$S" describe --always 2>/dev/null || echo '?'))"
echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $N events per run (generated logs, ~250 B), zmq in, one run each;"
echo "receivers are the Python test servers (tests/sinks/), ceiling = a plain Python client,"
echo "one call in flight like the sink."
echo
echo "| sink | batch | receiver ceiling (events/s) | ferry through the sink (events/s) | ratio |"
echo "|---|---:|---:|---:|---:|"
for sink in grpc webhook; do
    if [ $sink = grpc ]; then start g grpc_server.py; else start w webhook_server.py; fi
    for batch in 100 1000; do
        ceil=$(PYTHONPATH="$W/py" $PY "$S/bench/sink_ceiling.py" $sink "$PORT" "$N" "$batch" "$W/bodies")
        if [ $sink = grpc ]; then cfg=$(printf '[grpc]\ntarget = 127.0.0.1:%s\nplaintext = true\n' "$PORT")
        else cfg=$(printf '[webhook]\nurl = http://127.0.0.1:%s/in\n' "$PORT"); fi
        got=$(through $sink $batch "$cfg")
        echo "| $sink | $batch | $ceil | $got | $(awk -v a="$got" -v c="$ceil" 'BEGIN { printf "%.2f", a / c }') |"
    done
done
} >"$OUT/sinks.md"
# not `| tee`: the block would run in a subshell, its receivers' pids would
# not reach the EXIT trap, and they would hold the pipe open for ever
cat "$OUT/sinks.md"
