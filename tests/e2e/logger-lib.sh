# Shared by the logger broker tests (sourced after tests/lib.sh): 8 threads
# x 100,000 messages through one logger with a spool, the broker down for
# 10 s in the middle, then every (thread, seq) must be in the aggregated
# output exactly once.
LOAD="$FERRY_BINDIR/tests/logger/logger-load"
THREADS=${FERRY_LOGGER_TEST_THREADS:-8}
PER_THREAD=${FERRY_LOGGER_TEST_COUNT:-$(volume 100000)}
TOTAL=$((THREADS * PER_THREAD))
OUTAGE=10
[ -x "$LOAD" ] || skip "tests/logger/logger-load is not built"
LOAD=$(wrapped "$LOAD" "$T/wrap")

# logger_section DEST: the [logger] lines of the test config
logger_section() {
    cat <<EOC
[logger]
service = loadtest
level = DEBUG
destination = $1
spool_dir = $T/spool
spool_fsync = batch
full_policy = spill
queue_size = 65536
backoff_min = 50ms
backoff_max = 1s
EOC
}

progress_at_least() { p=$(cat "$T/progress" 2>/dev/null); [ "${p:-0}" -ge "$1" ]; }

# run_load CONFIG DOWN_CMD UP_CMD: log TOTAL messages paced over
# LOAD_SECONDS (stopping a RabbitMQ application alone can take 10 s on a
# busy machine), run DOWN_CMD once a fifth is logged, UP_CMD after OUTAGE
# seconds.
LOAD_SECONDS=${LOAD_SECONDS:-60}
run_load() {
    rate=$((PER_THREAD / LOAD_SECONDS + 1))
    # close may take long on a busy machine: a broker confirms ~1-13 k/s here
    bg "$LOAD" "$1" "$THREADS" "$PER_THREAD" "$rate" $(scaled 900000) \
        "$T/progress" >"$T/load.out" 2>"$T/load.err"
    load=$!
    wait_for 60 progress_at_least $((TOTAL / 5)) || fail "the load did not get going: $(cat "$T/load.err")"
    $2 || fail "could not stop the broker"
    down_at=$(cat "$T/progress")
    note "broker down after $down_at messages logged"
    sleep "$OUTAGE" # the outage itself, not a wait for something
    up_at=$(cat "$T/progress")
    $3 || fail "could not start the broker again"
    note "broker up again after $up_at messages logged"
    [ "$up_at" -gt "$down_at" ] || fail "nothing was logged during the outage"
    wait "$load"
    rc=$?
    cat "$T/load.out"
    grep -E 'warn|error' "$T/load.err" | head -n 5 >&2
    [ $rc -eq 0 ] || fail "logger-load exited $rc (1: a ferry_log call failed, 2: not all delivered)"
    grep -q "delivered=$TOTAL " "$T/load.out" || fail "not all $TOTAL delivered"
    grep -q "reconnects=0 " "$T/load.out" && note "the transport reconnected by itself (no new connection needed)"
    return 0
}

# check_output FILE: every (thread, seq) once, nothing else
check_output() {
    n=$(lines "$1")
    pairs=$(grep -o '"information":{"t":[0-9]*,"n":[0-9]*}' "$1" | sort -u | wc -l | tr -d ' ')
    ids=$(grep -o '"id":"[^"]*"' "$1" | sort -u | wc -l | tr -d ' ')
    echo "aggregated lines=$n distinct (thread,seq)=$pairs distinct ids=$ids expected=$TOTAL"
    [ "$pairs" -eq "$TOTAL" ] || fail "expected $TOTAL distinct (thread,seq) pairs, got $pairs"
    [ "$n" -eq "$TOTAL" ] || fail "expected $TOTAL lines (each id once), got $n"
}
