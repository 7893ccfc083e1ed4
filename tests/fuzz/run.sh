#!/bin/sh
# Run one libFuzzer target for a bounded time on a copy of its seed corpus.
# Usage: run.sh TARGET SECONDS SRCDIR   (from the build tree; binaries in fuzz/)
set -u
t=$1 secs=$2 srcdir=$3
mkdir -p "fuzz/corpus-$t"
echo "fuzz: $t for ${secs}s"
if ! (cd fuzz && "./fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "corpus-$t" "$srcdir/tests/fuzz/corpus/$t") > "fuzz/$t.log" 2>&1; then
    tail -40 "fuzz/$t.log"
    echo "fuzz: $t found a crash: see fuzz/$t.log"
    exit 1
fi
echo "fuzz: $t done: $(grep -E 'stat::number_of_executed_units' "fuzz/$t.log" | tr -s ' ')"
