# PostgreSQL sink fault scenarios, shared by tests/faults/*-pg-*.test
# (sourced after FAULT_TRANSPORT is set): a producer fills a queue or topic,
# ferry-aggregator --sink postgresql moves it into a private PostgreSQL
# server, a fault is injected mid-stream, and the table must hold every id
# exactly once: SELECT count(*), count(DISTINCT id) both N.
. "$FERRY_SRCDIR/tests/lib.sh"
. "$FERRY_SRCDIR/tests/postgresql/pg-lib.sh"
need_plugin "$FAULT_TRANSPORT"
need_postgresql
N=${FAULT_COUNT:-100000}
dest="ferry-pgfault-$FAULT_TRANSPORT-$$-$(date +%s%N)"
TABLE=fault_logs

broker_addr() {
    case $FAULT_TRANSPORT in
    amqp) "$FERRY_SRCDIR/tests/brokers/ensure-amqp.sh" || skip "no RabbitMQ broker" ;;
    kafka) "$FERRY_SRCDIR/tests/brokers/ensure-kafka.sh" || skip "no Kafka cluster" ;;
    esac
}

# write_conf FILE ADDRESS
write_conf() {
    case $FAULT_TRANSPORT in
    amqp) printf '[transport]\nplugin = amqp\n[amqp]\nurl = %s\nprefetch = 2000\n' "$2" ;;
    kafka) printf '[transport]\nplugin = kafka\n[kafka]\nbrokers = %s\n%s\n' "$2" \
        "session_timeout = 6s
commit_interval = 200ms
fetch_wait = 20ms" ;;
    esac >"$1"
    # Kafka: each log keyed by its id, so the 100,000 spread over all 16
    # partitions. The default key (service.level) puts --generate logs'
    # five services on five partitions: 20,000 logs of about 320 bytes,
    # 6.4 MB, in each, past the mock's retention of 5 MiB a partition.
    # By the end of the run the mock has dropped the first 4,000 or so of
    # each, and a consumer that was killed and then waited out the
    # rebalance (about 10 s) below that point lost unread logs: "offset
    # reset ... Offset out of range" in its log, 19 and 419 rows missing in
    # two of three runs. Spread over 16, each partition holds about 2 MB.
    local key=service.level
    [ "$FAULT_TRANSPORT" = kafka ] && key=id
    cat >>"$1" <<CONF
[aggregator]
destination = $dest
sink = postgresql
batch = 1000
[producer]
destination = $dest
key = $key
[postgresql]
conninfo = $PG_CONNINFO
table = $TABLE
reconnect_max = 1s
CONF
}

# Kafka: a topic of 16 partitions, so 100,000 logs keyed by id stay well
# within the mock's retention of about 5 MiB per partition (the default is 4)
topic_for_volume() {
    [ "$FAULT_TRANSPORT" = kafka ] || return 0
    local rc=0
    "$FERRY_SRCDIR/tests/brokers/kafka-ctl.sh" create-topic "$dest" 16 >/dev/null || rc=$?
    [ $rc = 0 ] || [ $rc = 77 ] || fail "cannot create topic $dest"
}

rows() { psqlq "SELECT count(*) FROM $TABLE" 2>/dev/null || echo 0; }
at_least() { [ "$(rows)" -ge "$1" ] 2>/dev/null; }

start_producer() { # CONFIG [flags]
    local c=$1; shift
    bg "$PRODUCER" -q -c "$c" --generate logs --count "$N" --flush-timeout 300s "$@" 2>"$T/producer.err"
    PROD=$!
}
start_aggregator() { # CONFIG [flags]
    local c=$1; shift
    bg "$AGGREGATOR" -c "$c" "$@" 2>>"$T/aggregator.err"
    AGG=$!
}

# finish: the producer exited 0 and the table reached N rows
finish() {
    local prc=0
    wait "$PROD" || prc=$?
    [ $prc -eq 0 ] || { tail -5 "$T/producer.err" >&2; fail "producer exited $prc"; }
    note "producer done at $(date +%T) with $(rows) rows in the table"
    wait_for 180 at_least "$N" || { tail -5 "$T/aggregator.err" >&2; fail "only $(rows) of $N rows arrived"; }
    kill -TERM "$AGG" 2>/dev/null
    wait "$AGG" 2>/dev/null
}

check() {
    local total ids
    read -r total ids <<<"$(psqlq "SELECT count(*), count(DISTINCT id) FROM $TABLE" | tr '|' ' ')"
    echo "# $FAULT_TRANSPORT -> postgresql: sent=$N count=$total distinct=$ids"
    [ "$total" = "$N" ] && [ "$ids" = "$N" ] || fail "count(*)=$total count(DISTINCT id)=$ids, want $N"
    local seqs
    seqs=$(psqlq "SELECT count(DISTINCT body->>'seq') FROM $TABLE")
    [ "$seqs" = "$N" ] || fail "$seqs distinct producer sequence numbers, want $N"
    # a redelivered row is skipped by ON CONFLICT, never refused (a unique
    # violation would dead-letter it while the table still looked complete)
    grep -m3 'refused by the sink\|dead_lettered=[1-9]' "$T/aggregator.err" &&
        fail "the sink refused or dead-lettered records"
    echo "PASS: $FAULT_TRANSPORT -> postgresql $1"
}

# The aggregator SIGKILLed twice mid-stream, restarted each time.
scenario_pg_kill() {
    pg_start "kill-$FAULT_TRANSPORT"
    local addr; addr=$(broker_addr)
    write_conf "$T/f.conf" "$addr"
    topic_for_volume
    start_aggregator "$T/f.conf"
    # paced, so the backlog while a killed consumer's group rebalances stays
    # well inside the Kafka mock's retention (about 5 MiB per partition)
    start_producer "$T/f.conf" --rate "${FAULT_RATE:-8000}"
    local at
    for at in $((N / 5)) $((N / 2)); do
        wait_for 120 at_least "$at" || fail "only $(rows) rows before kill at $at"
        kill -KILL "$AGG"; wait "$AGG" 2>/dev/null
        note "$(date +%T) aggregator killed at $(rows) rows"
        start_aggregator "$T/f.conf"
    done
    finish
    check "aggregator SIGKILLed twice"
}

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/health"; }
health_is() { [ "$(http_code)" = "$1" ]; }

# PostgreSQL stopped for 10 s mid-stream, then started again.
scenario_pg_restart() {
    command -v curl >/dev/null || skip "needs curl"
    pg_start "restart-$FAULT_TRANSPORT"
    local addr; addr=$(broker_addr)
    write_conf "$T/f.conf" "$addr"
    HTTP_PORT=$(free_port)
    start_aggregator "$T/f.conf" --http "127.0.0.1:$HTTP_PORT"
    start_producer "$T/f.conf" --rate 2500
    wait_for 60 at_least $((N / 4)) || fail "only $(rows) rows before the database stopped"
    wait_for 10 health_is 200 || fail "/health is $(http_code) before the database stopped"
    "$PG_NODE" halt || fail "pg-node halt failed"
    local down; down=$(date +%s)
    note "$(date +%T) PostgreSQL stopped"
    wait_for 10 health_is 503 || fail "/health is $(http_code) with the database down, want 503"
    curl -s -m 2 "http://127.0.0.1:$HTTP_PORT/health" | head -c 300 | sed 's/^/# health: /'
    echo
    # down for 10 s in all; /health must stay 503 throughout
    while [ $(( $(date +%s) - down )) -lt 10 ]; do
        health_is 503 || fail "/health is $(http_code) while the database is down"
        sleep 0.5
    done
    "$PG_NODE" start >/dev/null || fail "pg-node start failed"
    note "$(date +%T) PostgreSQL started again"
    wait_for 30 health_is 200 || fail "/health is $(http_code) after the database came back, want 200"
    finish
    check "database stopped for 10 s"
    grep -q 'reconnected' "$T/aggregator.err" || fail "the sink did not log its reconnection"
}
