# The soak (sourced by tests/soak/TRANSPORT.test after tests/lib.sh, with
# TR set): FERRY_SOAK_COUNT (default 1,000,000) log messages producer ->
# aggregator, the aggregator started first so it consumes while the producer
# produces, the resident size of both sampled every FERRY_SOAK_INTERVAL
# seconds (default 0.2: zmq can move the million in seconds). Passes when
# `ferry-aggregator --verify --expect COUNT` finds every message once and
# neither program grows: the highest resident size of the last quarter of
# the run may exceed the first quarter's highest by at most 10 % + 2 MiB.
# Writes one table row of figures to $FERRY_SOAK_DIR/TR.md.
N=${FERRY_SOAK_COUNT:-1000000}
SOAK_DIR=${FERRY_SOAK_DIR:-$FERRY_BINDIR/soak}
mkdir -p "$SOAK_DIR" || fail "cannot create $SOAK_DIR"
dest="soak-$TR-$$"
# the aggregator's de-duplication window fills within the first 2 % of
# the run, so what is left to grow would be a leak (it is bounded by
# dedup_window, 16 bytes an id: the default 2,000,000 is still filling at 1M);
# the producer's window is kept small for the same reason: it fills whenever
# the aggregator falls behind, and 1,000 messages are well within the margin
DEDUP=$((N / 50 < 1000 ? 1000 : N / 50))
{
    printf '[transport]\nplugin = %s\n' "$TR"
    soak_transport_conf
    printf '[producer]\ndestination = %s\nflush_timeout = 30m\nmax_inflight = 1000\n' "$dest"
    printf '[aggregator]\ndestination = %s\ngroup = g-%s\noutput = %s\nbatch = 2000\ndedup_window = %s\n' \
        "$dest" "$dest" "$T/out.txt" "$DEDUP"
} >"$T/soak.conf"
soak_prepare

start=$(date +%s.%N)
bg "$AGGREGATOR" -q -c "$T/soak.conf" --count "$N" 2>"$T/agg.err"
agg=$!
bg rss_sampler $agg "$T/agg.rss" "${FERRY_SOAK_INTERVAL:-0.2}"
# shellcheck disable=SC2086
bg "$PRODUCER" -q -c "$T/soak.conf" --generate logs --count "$N" ${SOAK_PRODUCER_FLAGS:-} 2>"$T/prod.err"
prod=$!
bg rss_sampler $prod "$T/prod.rss" "${FERRY_SOAK_INTERVAL:-0.2}"
wait $prod || fail "producer exit $?: $(tail -n 3 "$T/prod.err")"
produced=$(date +%s.%N)
# the aggregator needs at most a minute more than the producer (scaled)
( t=$(deadline 60); while kill -0 $agg 2>/dev/null && [ "$(date +%s)" -lt "$t" ]; do sleep 1; done
  kill $agg 2>/dev/null ) &
wait $agg || fail "aggregator exit $? ($(lines "$T/out.txt") of $N written): $(tail -n 3 "$T/agg.err")"
done_at=$(date +%s.%N)
"$AGGREGATOR" --verify "$T/out.txt" --expect "$N" >"$T/verify.out" ||
    { cat "$T/verify.out" >&2; fail "--verify: not every message exactly once"; }
tail -n 1 "$T/verify.out"

# rss_figures FILE: "start peak end first_quarter_max last_quarter_max" in KiB
rss_figures() {
    awk '{ t[NR] = $1; r[NR] = $2; if ($3 > hwm) hwm = $3 }
         END { last = t[NR]; fq = 0; lq = 0
               for (i = 1; i <= NR; i++) {
                   if (t[i] <= last / 4 && r[i] > fq) fq = r[i]
                   if (t[i] >= last * 3 / 4 && r[i] > lq) lq = r[i] }
               print r[1], hwm, r[NR], fq, lq }' "$1"
}
secs=$(awk -v a="$start" -v b="$done_at" 'BEGIN { printf "%.1f", b - a }')
rate=$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%d", n / s }')
set -- $(rss_figures "$T/prod.rss"); p_start=$1 p_peak=$2 p_end=$3 p_fq=$4 p_lq=$5
set -- $(rss_figures "$T/agg.rss"); a_start=$1 a_peak=$2 a_end=$3 a_fq=$4 a_lq=$5
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
row="| $TR | $N | $secs | $rate | $(mib $p_start) / $(mib $p_peak) / $(mib $p_end) | $(mib $a_start) / $(mib $a_peak) / $(mib $a_end) | 0 / 0 |"
echo "$row"
echo "$row" >"$SOAK_DIR/$TR.md"
cp "$T/prod.rss" "$SOAK_DIR/$TR-producer.rss"
cp "$T/agg.rss" "$SOAK_DIR/$TR-aggregator.rss"
echo "producer: first quarter max ${p_fq} KiB, last quarter max ${p_lq} KiB; aggregator: ${a_fq} KiB, ${a_lq} KiB"
under_wrapper && exit 0
[ "$(lines "$T/prod.rss")" -ge 8 ] && [ "$(lines "$T/agg.rss")" -ge 8 ] ||
    fail "too few memory samples to judge: run more messages (FERRY_SOAK_COUNT)"
flat() { [ "$2" -le $(($1 + $1 / 10 + 2048)) ]; }
flat "$p_fq" "$p_lq" || fail "producer memory grew: last quarter ${p_lq} KiB, first quarter ${p_fq} KiB"
flat "$a_fq" "$a_lq" || fail "aggregator memory grew: last quarter ${a_lq} KiB, first quarter ${a_fq} KiB"
