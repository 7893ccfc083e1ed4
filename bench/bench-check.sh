#!/bin/bash
# `make bench-check` and `make bench-baseline`: instructions per message of
# every ferry path (bench/icount.sh) against the committed baseline,
# bench/results/icount-baseline.tsv. Wall clock plays no part.
#
# Usage: bench-check.sh check|baseline
#   check     fails (exit 1) when a ferry path counts more than 10 % over its
#             baseline; a path that fails is counted once more and the lower
#             figure kept (waiting can only add instructions), so one run
#             caught spinning does not fail the check
#   baseline  rewrites the baseline: the median of BENCH_BASELINE_RUNS (3)
#             counts of every path
# Environment: BENCH_BUILDDIR, BENCH_SRCDIR (as for icount.sh).
set -u
B=${BENCH_BUILDDIR:?}
S=${BENCH_SRCDIR:?}
PY=/usr/bin/python3
BASE=$S/bench/results/icount-baseline.tsv
W=$B/bench/icount
mkdir -p "$W"
start=$(date +%s)

case ${1:-} in
check)
    [ -f "$BASE" ] || { echo "bench-check: no baseline $BASE (make bench-baseline)" >&2; exit 1; }
    bash "$S/bench/icount.sh" "$W/now.tsv" || echo "bench-check: some paths were not counted" >&2
    if ! "$PY" "$S/bench/icount.py" check "$BASE" "$W/now.tsv" "$W/failed" >"$W/check.txt"; then
        cat "$W/check.txt"
        echo "bench-check: counting the failing paths again" >&2
        ICOUNT_ONLY=$(tr '\n' ' ' <"$W/failed") bash "$S/bench/icount.sh" "$W/again.tsv"
        "$PY" "$S/bench/icount.py" min "$W/now.tsv" "$W/now.tsv" "$W/again.tsv"
    fi
    "$PY" "$S/bench/icount.py" check "$BASE" "$W/now.tsv"
    rc=$?
    echo "bench-check: $(($(date +%s) - start)) s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    exit $rc ;;
baseline)
    runs=()
    for i in $(seq "${BENCH_BASELINE_RUNS:-3}"); do
        bash "$S/bench/icount.sh" "$W/base-$i.tsv" || { echo "bench-baseline: a path was not counted" >&2; exit 1; }
        runs+=("$W/base-$i.tsv")
    done
    "$PY" "$S/bench/icount.py" median "$W/base.tsv" "${runs[@]}" &&
        { printf '# instructions per message (bench/icount.sh), median of %d runs; make bench-baseline\n' \
              "${#runs[@]}"; cat "$W/base.tsv"; } >"$BASE" &&
        "$PY" "$S/bench/icount.py" table "$BASE" &&
        echo "bench-baseline: wrote $BASE in $(($(date +%s) - start)) s" ;;
*)
    echo "usage: bench-check.sh check|baseline" >&2
    exit 64 ;;
esac
