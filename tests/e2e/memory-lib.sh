# Shared part of the bounded-memory tests (sourced after tests/lib.sh): a
# producer fed far more than its window while nothing consumes, its resident
# size sampled from /proc, then the consumer comes back and every message
# must arrive.

# feed FIFO COUNT BYTES PROGRESS: write COUNT lines of BYTES characters to
# FIFO, rewriting PROGRESS with the number written so far; run it with bg.
feed() {
    /usr/bin/python3 - "$@" <<'PY'
import os, sys
fifo, count, size, progress = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
pad = "x" * size
with open(fifo, "w") as out:
    for i in range(1, count + 1):
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
# kept copies: measured at about 1.5 times the copies here) and 4 MiB of
# stacks, libraries' lazily touched pages and the like. A program that
# kept everything it was fed would exceed this several times over.
check_peak() {
    local allowed=$(($2 + 2 * $4 + 4096))
    echo "$1: baseline ${2} KiB, peak ${3} KiB, held by design ${4} KiB, allowed ${allowed} KiB"
    under_wrapper && { note "resident sizes not checked under FERRY_TEST_WRAPPER"; return 0; }
    [ "$3" -gt 0 ] || fail "$1: no memory sample"
    [ "$3" -le "$allowed" ] || fail "$1: peak resident ${3} KiB is over the allowed ${allowed} KiB"
}
