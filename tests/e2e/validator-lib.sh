# Shared part of the validator end-to-end tests (sourced after tests/lib.sh):
# 10,000 generated download events, 10 % invalid, go producer -> validator,
# and two aggregators collect the output and reject destinations as records.
SCHEMA="$FERRY_SRCDIR/etc/schemas/download-event.json"
N=$(volume 10000)
NBAD=$((N / 10))   # floor(N * 0.1): the generator's exact count
IN=vin$$ OUT=vout$$ REJ=vrej$$


# start_aggregators CONF IDLE_SECONDS [extra flags]: one per destination,
# records; each exits after IDLE_SECONDS (scaled) without a message
start_aggregators() {
    local conf=$1 idle; idle=$(scaled "$2"); shift 2
    bg "$AGGREGATOR" -q -c "$conf" --destination "$OUT" --group "g$OUT" --format record \
        --id-field event_id --output "$T/valid.jsonl" --idle-exit "$idle"s "$@"
    AGG_OUT=$!
    bg "$AGGREGATOR" -q -c "$conf" --destination "$REJ" --group "g$REJ" --format record \
        --id-field event_id --output "$T/reject.jsonl" --idle-exit "$idle"s "$@"
    AGG_REJ=$!
}

# start_validator CONF LOG [extra flags]: give --idle-exit "$(scaled N)s"
start_validator() {
    local conf=$1 log=$2; shift 2
    bg "$VALIDATOR" -c "$conf" --input "$IN" --output "$OUT" --reject "$REJ" --group "g$IN" \
        --schema "$SCHEMA" "$@" 2>"$log"
    VAL=$!
}

produce() {
    local conf=$1; shift
    "$PRODUCER" -q -c "$conf" --destination "$IN" --generate downloads --count $N \
        --invalid-ratio 0.1 "$@" || fail "producer exited $?"
}

# wait_exit SECONDS PID NAME: the process ends, with status 0
wait_exit() {
    wait_for "$1" sh -c "! kill -0 $2 2>/dev/null" || fail "$3 still running after $1 s"
    wait "$2" || fail "$3 exited $?"
}

# collect CONF IDLE_SECONDS: run both aggregators until the destinations
# stay empty for IDLE_SECONDS
collect() {
    start_aggregators "$1" "$2"
    wait_exit 60 $AGG_OUT "output aggregator"
    wait_exit 60 $AGG_REJ "reject aggregator"
}

# check_records [--redelivered]: exactly the valid events at the output and
# the invalid ones at the reject destination, each once, each reject with
# its reason and source. With --redelivered, non-JSON rejects (which carry
# no id the aggregator could de-duplicate on) may appear more than once.
check_records() {
    /usr/bin/python3 - "$T/valid.jsonl" "$T/reject.jsonl" $N $NBAD "$IN" "$OUT" "$REJ" "${1:-}" <<'PY' || fail "records do not match"
import json, re, sys
valid_f, rej_f, n, nbad, src, out, rej, mode = sys.argv[1:9]
n, nbad = int(n), int(nbad)
errs = []
def records(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f]
    except FileNotFoundError:
        return []
def seq(body):
    if isinstance(body, dict):
        return int(body["event_id"][3:])
    m = re.match(r"dl-(\d+) ", body)
    return int(m.group(1)) if m else None
valid, bad = records(valid_f), records(rej_f)
vseq = [seq(r["body"]) for r in valid]
if len(valid) != n - nbad or len(set(vseq)) != n - nbad:
    errs.append("output: %d records, %d distinct events, want %d" % (len(valid), len(set(vseq)), n - nbad))
for r in valid:
    if r["destination"] != out or "x-ferry-error" in r.get("headers", {}):
        errs.append("output record not clean: %s" % json.dumps(r)[:300]); break
bseq = [seq(r["body"]) for r in bad]
json_bad = [s for r, s in zip(bad, bseq) if isinstance(r["body"], dict)]
text_bad = [s for r, s in zip(bad, bseq) if not isinstance(r["body"], dict)]
dups_text = len(text_bad) - len(set(text_bad))
if len(set(bseq)) != nbad or len(json_bad) != len(set(json_bad)):
    errs.append("reject: %d records, %d distinct events, want %d" % (len(bad), len(set(bseq)), nbad))
if dups_text and mode != "--redelivered":
    errs.append("reject: %d non-JSON events twice" % dups_text)
if len(bad) != nbad + (dups_text if mode == "--redelivered" else 0):
    errs.append("reject: %d records for %d events" % (len(bad), nbad))
for r in bad:
    h = r.get("headers", {})
    if r["destination"] != rej or not h.get("x-ferry-error") or h.get("x-ferry-source") != src:
        errs.append("reject record without reason or source: %s" % json.dumps(r)[:300]); break
if set(vseq) & set(bseq) or set(vseq) | set(bseq) != set(range(1, n + 1)):
    errs.append("events missing or in both: %d" % len(set(range(1, n + 1)) - set(vseq) - set(bseq)))
kinds = {}
for r in bad:
    e = r["headers"].get("x-ferry-error", "")
    k = "json" if "(#)" in e else re.sub(r".*\(#/properties/[^/]*/|.*\(#/", "", e.split(";")[0]).rstrip(")")
    kinds[k] = kinds.get(k, 0) + 1
for e in errs:
    print("FAIL: " + e, file=sys.stderr)
print("output %d, reject %d (%s)%s" % (len(valid), len(bad), ", ".join("%s %d" % kv for kv in sorted(kinds.items())),
      ", %d non-JSON redelivered" % dups_text if dups_text else ""))
print("example reject reason: " + next((r["headers"]["x-ferry-error"] for r in bad if "(#)" not in r["headers"]["x-ferry-error"]), ""))
sys.exit(1 if errs else 0)
PY
}

# check_counters LOG VALID INVALID: what the validator logged at exit
check_counters() {
    grep -q "stopped valid=$2 invalid=$3 errors=0" "$1" || fail "validator counters: $(grep stopped "$1")"
}
