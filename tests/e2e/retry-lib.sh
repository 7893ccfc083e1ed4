# Retry with backoff, then dead-letter, then --replay (sourced after
# RETRY_TRANSPORT is set): an aggregator whose output cannot grow
# (RLIMIT_FSIZE 0) with max_retries = 2 dead-letters each of N messages
# after 3 attempts, with the reason, the attempt count and the original
# destination as headers and its ledger stamp intact; once the limit is
# lifted, `ferry-producer --replay` brings every one back to the output,
# which `ferry-aggregator --verify` finds complete and without duplicates.
. "$FERRY_SRCDIR/tests/lib.sh"
need_plugin "$RETRY_TRANSPORT"
N=300
dest="ferry-retry-$RETRY_TRANSPORT-$$-$(date +%s%N)"
dlq="$dest.dl"
OUT=$T/out.txt

case $RETRY_TRANSPORT in
amqp)
    url=$("$FERRY_SRCDIR/tests/brokers/ensure-amqp.sh") || skip "no RabbitMQ broker"
    printf '[transport]\nplugin = amqp\n[amqp]\nurl = %s\n' "$url" ;;
kafka)
    brokers=$("$FERRY_SRCDIR/tests/brokers/ensure-kafka.sh") || skip "no Kafka cluster"
    printf '[transport]\nplugin = kafka\n[kafka]\nbrokers = %s\nsession_timeout = 6s\ncommit_interval = 200ms\nfetch_wait = 20ms\n' "$brokers" ;;
zmq)
    printf '[transport]\nplugin = zmq\n[zmq]\nendpoint.%s = tcp://127.0.0.1:%s\nendpoint.%s = tcp://127.0.0.1:%s\n' \
        "$dest" "$(free_port)" "$dlq" "$(free_port)" ;;
esac >"$T/f.conf"
cat >>"$T/f.conf" <<CONF
[aggregator]
destination = $dest
output = $OUT
batch = 50
max_retries = 2
retry_backoff_min = 100ms
retry_backoff_max = 400ms
dead_letter = $dlq
[producer]
destination = $dest
CONF

# sum of dead_lettered= over the aggregator's "write failed" lines
dead_lettered() { sed -n 's/.*write failed.* dead_lettered=\([0-9]*\).*/\1/p' "$T/agg.err" | awk '{s+=$1} END {print s+0}'; }
at_least_dead() { [ "$(dead_lettered)" -ge "$1" ]; }
# distinct ledger seqs the replay has re-published
replayed() { sed -n 's/.*replayed dest=.* seq=\([0-9]*\) .*/\1/p' "$T/replay.err" 2>/dev/null | sort -u | wc -l | tr -d ' '; }
at_least_replayed() { [ "$(replayed)" -ge "$1" ]; }
complete() { [ "$(lines "$OUT")" -ge "$N" ] && "$AGGREGATOR" --verify "$OUT" --expect "$N" >/dev/null 2>&1; }

start_replay() { # extra flags...
    bg "$PRODUCER" -v -c "$T/f.conf" --replay "$dlq" "$@" 2>"$T/replay.err"
    REPLAY=$!
}

run_retry_test() {
    # SIGXFSZ ignored: write() fails with EFBIG, the aggregator counts a
    # failed attempt. Its log goes through a pipe, which the limit spares.
    mkfifo "$T/agg.fifo"
    bg sh -c 'exec cat < "$1" > "$2"' sh "$T/agg.fifo" "$T/agg.err"
    ( trap '' XFSZ; ulimit -S -f 0; exec "$AGGREGATOR" -c "$T/f.conf" 2>"$T/agg.fifo" ) &
    AGG=$!; FERRY_PIDS="$FERRY_PIDS $AGG"
    wait_for 30 grep -q "consuming destination" "$T/agg.err" || fail "aggregator did not start: $(tail -3 "$T/agg.err")"
    grep -m1 "retries on failure" "$T/agg.err" | sed 's/^/# /'
    # zmq holds no dead letters: their consumer must be there while they are made
    [ "${REPLAY_EARLY:-0}" = 1 ] && start_replay --replay-wait "$(scaled 5)s"
    "$PRODUCER" -q -c "$T/f.conf" --generate logs --count $N || fail "producer exited $?"
    if [ "${REPLAY_EARLY:-0}" = 1 ]; then
        wait_for 90 at_least_replayed $N || fail "only $(replayed) of $N replayed; aggregator: $(grep -c 'write failed' "$T/agg.err") failed writes"
    else
        wait_for 90 at_least_dead $N || fail "only $(dead_lettered) of $N dead-lettered: $(tail -3 "$T/agg.err")"
        [ "$(dead_lettered)" = $N ] || fail "$(dead_lettered) dead letters for $N messages"
    fi
    [ "$(lines "$OUT")" = 0 ] || fail "the output grew while it could not"
    grep -m1 "write failed" "$T/agg.err" | sed 's/^/# /'
    prlimit --pid "$AGG" --fsize=unlimited || fail "cannot lift the file size limit"
    note "$(dead_lettered) dead-lettered; limit lifted"
    [ "${REPLAY_EARLY:-0}" = 1 ] || start_replay --replay-count $N --replay-wait "$(scaled 10)s"
    wait_for 90 complete || fail "output has $(lines "$OUT") lines: $("$AGGREGATOR" --verify "$OUT" --expect $N | tail -1)"
    wait_for 60 sh -c "! kill -0 $REPLAY 2>/dev/null" || fail "replay did not finish"
    wait "$REPLAY" || fail "replay exited $?: $(tail -3 "$T/replay.err")"
    kill -TERM "$AGG"; wait "$AGG" || fail "aggregator exited $?"
    "$AGGREGATOR" --verify "$OUT" --expect $N | tail -1
    [ "$(lines "$OUT")" = $N ] || fail "want $N lines, have $(lines "$OUT")"
    # every dead letter as the replay saw it: 3 attempts, the reason, where it came from
    local total good
    total=$(grep -c "replayed dest=" "$T/replay.err")
    good=$(grep -c "replayed dest=$dest attempts=3 producer=[^ ]* seq=[0-9]* error=\"cannot write $OUT: File too large\"" "$T/replay.err")
    [ "$total" -ge $N ] && [ "$good" = "$total" ] ||
        fail "$good of $total replayed dead letters carry the expected headers: $(grep -m1 'replayed dest=' "$T/replay.err")"
    [ "$(replayed)" = $N ] || fail "$(replayed) distinct seqs replayed, want $N"
    grep "stopped received" "$T/agg.err" | sed 's/^/# /'
    grep "replay done" "$T/replay.err" | sed 's/^/# /'
    echo "PASS: $RETRY_TRANSPORT: $N dead-lettered after 3 attempts, replayed, written once each"
}
