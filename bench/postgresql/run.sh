#!/bin/bash
# `make bench-postgresql` (part of `make bench`): rows per second from a
# filled Kafka topic (the mock cluster) into PostgreSQL through
# ferry-aggregator --sink postgresql with batches of 500 and 5,000, against
# the same server and the same rows as (a) python3-psycopg2 executemany of
# INSERT ... ON CONFLICT DO NOTHING in batches of 100 and (b) a plain libpq
# program COPYing them. Writes $BENCH_OUT/postgresql.tsv and postgresql.md.
# Environment: BENCH_BUILDDIR, BENCH_SRCDIR, BENCH_OUT, BENCH_PG_ROWS (50000:
# the mock keeps about 5 MiB per partition), BENCH_ROUNDS (3).
# An aggregator that has not landed every row after 120 s counts as failed.
set -u
B=${BENCH_BUILDDIR:?}
S=${BENCH_SRCDIR:?}
OUT=${BENCH_OUT:-$S/bench/results}
N=${BENCH_PG_ROWS:-50000}
ROUNDS=${BENCH_ROUNDS:-3}
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-pgbench.XXXXXX")
export FERRY_TEST_STATE_DIR=$T/state FERRY_TEST_OWNER_PID=$$ FERRY_PG_NODE_STATE=$T/pg
export FERRY_PLUGIN_PATH=$B/plugins/kafka:$B/plugins/sinks/postgresql
mkdir -p "$OUT" "$FERRY_TEST_STATE_DIR"
PG_NODE=$S/tests/brokers/pg-node.sh
trap '"$PG_NODE" stop >/dev/null 2>&1; kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT

log() { echo "bench-postgresql: $*" >&2; }
now() { date +%s.%N; }
psqlq() { "$PG_NODE" psql -c "$1"; }

CONNINFO=$("$PG_NODE" start) || { log "cannot start PostgreSQL (apt-get install postgresql)"; exit 1; }
cd "$B" || exit 1
BROKERS=$("$S/tests/brokers/ensure-kafka.sh") || { log "no Kafka mock cluster (make check builds it)"; exit 1; }
topic="pgbench-$$"
cat >"$T/f.conf" <<CONF
[transport]
plugin = kafka
[kafka]
brokers = $BROKERS
fetch_wait = 20ms
[aggregator]
destination = $topic
[producer]
destination = $topic
[postgresql]
conninfo = $CONNINFO
CONF
# 16 partitions: the mock keeps about 5 MiB per partition, the default 4
# would drop the oldest logs before they are consumed
"$S/tests/brokers/kafka-ctl.sh" create-topic "$topic" 16 >/dev/null ||
    { log "cannot create topic $topic"; exit 1; }
log "filling topic $topic with $N logs"
"$B/ferry-producer" -q -c "$T/f.conf" --generate logs --count "$N" || { log "producer failed"; exit 1; }

TSV=$OUT/postgresql.tsv
: >"$TSV.new"
# one measured figure: "WHAT BATCH ROUND ROWS_PER_S"
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$TSV.new"; log "$*"; }

# ferry BATCH ROUND: a new consumer group reads the whole topic into a new
# table; timed from the first committed batch (its rows not counted) to exit
ferry_run() {
    local table="ferry_b$1_r$2" t0 first t1 c0
    "$B/ferry-aggregator" -q -c "$T/f.conf" --group "pgbench-$1-$2-$$" --sink postgresql \
        -o postgresql.table="$table" --batch "$1" --count "$N" 2>"$T/agg.err" &
    local agg=$!
    while :; do
        c0=$(psqlq "SELECT count(*) FROM $table" 2>/dev/null) && [ "${c0:-0}" -gt 0 ] && break
        kill -0 $agg 2>/dev/null || break
        sleep 0.01
    done
    first=$(now)
    ( sleep 120; kill $agg 2>/dev/null ) &
    local guard=$!
    wait $agg || { log "aggregator failed: $(tail -2 "$T/agg.err")"; kill $guard 2>/dev/null; return; }
    kill $guard 2>/dev/null
    t1=$(now)
    local rows; rows=$(psqlq "SELECT count(*) FROM $table")
    [ "$rows" = "$N" ] || { log "ferry batch $1: $rows rows, want $N"; return; }
    record "ferry-batch-$1" "$1" "$2" "$(awk -v n=$((N - c0)) -v a="$first" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')"
}

for r in $(seq 1 "$ROUNDS"); do
    ferry_run 500 "$r"
    ferry_run 5000 "$r"
    out=$("$PY" "$S/bench/postgresql/pg-psycopg2-bench.py" "$CONNINFO" ferry_b500_r1 "py_r$r" 100) &&
        record psycopg2-executemany 100 "$r" "$(echo "$out" | sed 's/.*rows_per_s=//')"
    out=$("$B/bench/postgresql/pg-copy-bench" "$CONNINFO" ferry_b500_r1 "copy_r$r" 5000) &&
        record libpq-copy 5000 "$r" "$(echo "$out" | sed 's/.*rows_per_s=//')"
done
mv "$TSV.new" "$TSV"

# the report: medians per variant and the two goals
"$PY" - "$TSV" "$OUT/postgresql.md" "$N" "$ROUNDS" "$(nproc)" <<'PYEOF'
import statistics, sys, datetime
tsv, md, n, rounds, cores = sys.argv[1:6]
runs = {}
for line in open(tsv):
    what, batch, r, v = line.split("\t")
    runs.setdefault(what, []).append(float(v))
med = {k: statistics.median(v) for k, v in runs.items()}
a = med.get("psycopg2-executemany")
b = med.get("libpq-copy")
out = [f"# PostgreSQL sink benchmark ({datetime.date.today()}, {cores} cores)", "",
       f"{n} generated logs from a filled Kafka topic (the mock cluster) into a private "
       f"PostgreSQL 15 server; median of {rounds} rounds; rows per second.", "",
       "| variant | rows/s | × (a) psycopg2 | × (b) libpq COPY |", "|---|---:|---:|---:|"]
for k in ["ferry-batch-500", "ferry-batch-5000", "psycopg2-executemany", "libpq-copy"]:
    if k in med:
        fa = f"{med[k] / a:.1f}" if a else "-"
        fb = f"{med[k] / b:.2f}" if b else "-"
        out.append(f"| {k} | {med[k]:,.0f} | {fa} | {fb} |")
out += ["", "Goal: the aggregator ≥ 5 × (a) and ≥ 0.7 × (b).",
        "(a) psycopg2 `executemany` of INSERT ... ON CONFLICT DO NOTHING, 100 rows per commit;",
        "(b) one libpq program: COPY 5,000 rows into a temporary table, INSERT ... SELECT ... "
        "ON CONFLICT (id) DO NOTHING, COMMIT (what the sink does, without a broker).",
        "ferry is timed from its first committed batch to its exit (that batch's rows not "
        "counted), so start-up and the consumer group join are left out; it includes "
        "consuming from Kafka.", "", "Raw figures: postgresql.tsv (variant, batch, round, rows/s)."]
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PYEOF
