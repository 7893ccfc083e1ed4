# Shared part of the bounded-memory tests (sourced after tests/lib.sh): a
# producer fed far more than its window while nothing consumes, its resident
# size sampled from /proc, then the consumer comes back and every message
# must arrive.

# AddressSanitizer (configure --enable-sanitizers) keeps freed memory in a
# quarantine, 256 MiB by default, which would read as growth here: measure
# with the quarantine off. Without ASan the variable is ignored.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
export ASAN_OPTIONS

# feed FIFO COUNT BYTES PROGRESS [FIRST GO [RATE]]: write COUNT lines of
# BYTES characters to FIFO, rewriting PROGRESS with the number written so
# far; with FIRST and GO, stop after FIRST lines until the file GO exists;
# with RATE, write at most RATE lines a second after that. Run it with bg.
feed() {
    /usr/bin/python3 - "$@" <<'PY'
import os, sys, time
fifo, count, size, progress = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
first, go = (int(sys.argv[5]), sys.argv[6]) if len(sys.argv) > 6 else (count, None)
rate = float(sys.argv[7]) if len(sys.argv) > 7 else 0
pad = "x" * size
due = None
with open(fifo, "w") as out:
    for i in range(1, count + 1):
        if i == first + 1 and go:
            while not os.path.exists(go):
                time.sleep(0.05)
            due = time.monotonic()
        if rate and due is not None:
            # no catching up after the reader stalled: never faster than rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            due = max(due, now) + 1 / rate
        out.write("memory test line %d %s\n" % (i, pad))
        out.flush()
        with open(progress + ".tmp", "w") as p:
            p.write("%d\n" % i)
        os.rename(progress + ".tmp", progress)
PY
}

# written_at_least PROGRESS N: for wait_for
written_at_least() { p=$(cat "$1" 2>/dev/null); [ "${p:-0}" -ge "$2" ]; }

# check_peak WHAT BASELINE_KIB PEAK_KIB HELD_KIB: the peak may exceed the
# baseline by what the program holds by design (HELD_KIB), as much again
# for the allocator (freed chunks of the encoder's buffers sit between the
# kept copies: measured at up to 1.8 times the copies here) and 4 MiB of
# stacks, libraries' lazily touched pages and the like. A program that
# kept everything it was fed would exceed this several times over.
check_peak() {
    local allowed=$(($2 + 2 * $4 + 4096))
    echo "$1: baseline ${2} KiB, peak ${3} KiB, held by design ${4} KiB, allowed ${allowed} KiB"
    under_wrapper && { note "resident sizes not checked under FERRY_TEST_WRAPPER"; return 0; }
    [ "$3" -gt 0 ] || fail "$1: no memory sample"
    [ "$3" -le "$allowed" ] || fail "$1: peak resident ${3} KiB is over the allowed ${allowed} KiB"
}

# producer_outage DOWN_CMD UP_CMD WINDOW SIZE COPIES [RATE]: the producer over a
# broker (config $T/f.conf, with an aggregator consuming all the while):
# 20 messages of SIZE bytes go through and set the baseline, then the
# broker goes away (DOWN_CMD) and ten windows' worth are fed while it is
# away; the peak may exceed the baseline by COPIES copies of the window
# (the publisher's, plus the client library's own where it keeps one).
# Then UP_CMD, and every message must arrive exactly once. RATE (lines a
# second) paces the feed for a consumer that must keep up.
producer_outage() {
    local down=$1 up=$2 window=$3 size=$4 rate=${6:-0}
    local n=$((10 * window)) held=$(($5 * $3 * ($4 + 512) / 1024))
    mkfifo "$T/in"
    bg "$AGGREGATOR" -q -c "$T/f.conf" --count $n 2>"$T/agg.err"
    agg=$!
    bg feed "$T/in" $n "$size" "$T/progress" 20 "$T/go" "$rate"
    # not through bg: a background job's own redirection must name its stdin
    "$PRODUCER" -c "$T/f.conf" <"$T/in" 2>"$T/prod.err" &
    prod=$!
    FERRY_PIDS="$FERRY_PIDS $prod"
    bg rss_sampler $prod "$T/rss" 0.2
    wait_for 120 sh -c "[ -f '$T/out.txt' ] && [ \$(wc -l < '$T/out.txt') -ge 20 ]" ||
        fail "the first 20 messages did not arrive: $(tail -n 3 "$T/prod.err")"
    base=$(vm_kib $prod VmRSS)
    $down || fail "could not stop the broker"
    note "broker down after $(lines "$T/out.txt") messages"
    : >"$T/go"
    # the first 20 may still count: a producer blocked on stdin reads no confirms
    wait_for 120 written_at_least "$T/progress" $window ||
        fail "the producer took only $(cat "$T/progress") lines with the broker down"
    # the broker stays away while the producer retries: 15 samples (3 s at least)
    local n0; n0=$(lines "$T/rss")
    wait_for 60 sh -c "[ \$(wc -l < '$T/rss') -ge $((n0 + 15)) ]" || fail "the sampler stopped: is the producer gone?"
    local taken; taken=$(cat "$T/progress")
    echo "with the broker down the producer took $taken of $n lines (20 before, window $window)"
    [ "$taken" -le $((20 + window + 2 + 65536 / size)) ] || fail "took $taken lines with a window of $window"
    check_peak "producer, broker down" "$base" "$(peak_kib "$T/rss")" $held
    $up || fail "could not start the broker again"
    note "broker up again"
    wait_for 300 sh -c "! kill -0 $prod 2>/dev/null" || fail "producer still running: $(tail -n 3 "$T/prod.err")"
    wait $prod || fail "producer exit $?: $(tail -n 3 "$T/prod.err")"
    wait_for 120 sh -c "! kill -0 $agg 2>/dev/null" || fail "aggregator has $(lines "$T/out.txt") of $n: $(tail -n 5 "$T/agg.err")"
    wait $agg || fail "aggregator exit $?: $(tail -n 3 "$T/agg.err")"
    check_peak "producer, whole run" "$base" "$(peak_kib "$T/rss")" $held
    "$AGGREGATOR" --verify "$T/out.txt" --expect $n >"$T/verify.out" ||
        { cat "$T/verify.out"; fail "not every message arrived once"; }
    tail -n 1 "$T/verify.out"
}
