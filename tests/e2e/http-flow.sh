# The HTTP flow over one real transport (sourced by http-TRANSPORT.test,
# which sets TR, defines transport_conf, and either broker_stop and
# broker_start, or closed_conf for a broker address nobody listens on).
# Produce one message and a batch of 1,000 through ferry-producer's HTTP
# API, find every one in ferry-aggregator's output, check the error
# statuses, the metrics of both programs (parsed by the Prometheus client)
# and the producer's health while the broker is away.
. "$FERRY_SRCDIR/tests/e2e/http-lib.sh"
pp=$(free_port)
ap=$(free_port)
dest="http-$TR-$$"
{
    printf '[transport]\nplugin = %s\n' "$TR"
    transport_conf
    printf '[producer]\ndestination = %s\n' "$dest"
    printf '[aggregator]\ndestination = %s\ngroup = g-%s\noutput = %s\nbatch_wait = 50ms\n' "$dest" "$dest" "$T/out.txt"
    printf '[http]\nconfirm_timeout = 3s\nretry_after = 1s\n'
} > "$T/f.conf"
P="http://127.0.0.1:$pp"
A="http://127.0.0.1:$ap"
start_aggregator() { bg "$AGGREGATOR" -c "$T/f.conf" --http "127.0.0.1:$ap"; agg=$!; }
start_aggregator
FERRY_HTTP_TOKEN=tok-$$ bg "$PRODUCER" -c "$T/f.conf" --http "127.0.0.1:$pp"
prod=$!
HTTP_TOKEN=tok-$$; export HTTP_TOKEN
wait_for 60 status_is 200 "$A/health" || fail "aggregator health: $(cat "$T/body")"
wait_for 60 status_is 200 "$P/health" || fail "producer health: $(cat "$T/body")"
expect 404 POST "$A/produce" /dev/null

printf '{"id":"one-%s","message":"through http","service":"web"}' "$$" > "$T/one.json"
expect 200 POST "$P/produce" "$T/one.json"
make_batch "$T/batch.json" 1000 "b$$"
expect 200 POST "$P/batch-produce" "$T/batch.json"
[ "$(json_field "$T/body" 'j["count"]')" = 1000 ] || fail "batch reply: $(head -c 200 "$T/body")"
wait_for 60 sh -c "[ \$(wc -l < '$T/out.txt' 2>/dev/null || echo 0) -ge 1001 ]" ||
    fail "only $(lines "$T/out.txt") of 1001 messages reached the aggregator"
[ "$(distinct_ids "$T/out.txt" id)" = 1001 ] || fail "$(distinct_ids "$T/out.txt" id) distinct ids, want 1001"
grep -q "\"id\":\"one-$$\"" "$T/out.txt" || fail "the single message is not in the output"

# errors
printf '{"message":' > "$T/bad.json"
expect 400 POST "$P/produce" "$T/bad.json"
printf '{"payload":{"a":1},"destination":5}' > "$T/badf.json"
expect 400 POST "$P/produce" "$T/badf.json"
/usr/bin/python3 -c 'import json; print(json.dumps({"message": "x" * 1100000}))' > "$T/big.json"
expect 413 POST "$P/produce" "$T/big.json"
HTTP_TOKEN= expect 401 POST "$P/produce" "$T/one.json"

# metrics of both sides, as Prometheus reads them
[ "$(metric "$P/metrics" ferry_messages_produced_total transport="$TR" destination="$dest")" = 1001 ] ||
    fail "producer produced_total: $(metric "$P/metrics" ferry_messages_produced_total destination="$dest")"
[ "$(metric "$P/metrics" ferry_messages_rejected_total destination="$dest")" = 2 ] || fail "producer rejected_total"
wait_for 30 metric_is 1001 "$A/metrics" ferry_messages_consumed_total transport="$TR" destination="$dest" ||
    fail "aggregator consumed_total: $(metric "$A/metrics" ferry_messages_consumed_total destination="$dest")"
[ "$(metric "$A/metrics" ferry_messages_dropped_total destination="$dest")" = 0 ] || fail "aggregator dropped_total"
[ "$(metric "$P/metrics" ferry_messages_dropped_total destination="$dest")" = 0 ] || fail "producer dropped_total"

# the broker goes away: 503 with Retry-After, health 503; and back
printf '{"id":"down-%s","message":"while the broker is away"}' "$$" > "$T/down.json"
if command -v broker_stop >/dev/null 2>&1; then
    broker_stop
    # An idle producer may learn of the loss only from its next publish:
    # that request gets 503 (at once, or after confirm_timeout), then health says so.
    expect 503 POST "$P/produce" "$T/down.json"
    grep -q '^Retry-After: 1' "$T/headers" || fail "503 without Retry-After"
    wait_for 60 status_is 503 "$P/health" || fail "producer health stayed $(hreq GET "$P/health") with the broker stopped"
    [ "$(metric "$P/metrics" ferry_up)" = 0 ] || fail "ferry_up not 0 while down"
    expect 503 POST "$P/produce" "$T/down.json"
    grep -q 'transport unavailable' "$T/body" || fail "second 503 not refused at once: $(cat "$T/body")"
    broker_start
    wait_for 90 status_is 200 "$P/health" || fail "producer health not back to 200: $(cat "$T/body")"
    # a client retries a 503 with the same id; the message is then confirmed and stored once
    retry_down() { [ "$(hreq POST "$P/produce" "$T/down.json")" = 200 ]; }
    wait_for 60 retry_down ||
        fail "retry after recovery not confirmed: $(cat "$T/body")"
    wait_for 60 grep -q "\"id\":\"down-$$\"" "$T/out.txt" || fail "retried message not at the aggregator"
    [ "$(grep -c "\"id\":\"down-$$\"" "$T/out.txt")" = 1 ] || fail "retried message stored twice"
else
    # flush_timeout: at SIGTERM the message refused with 503 may still wait
    # in the client library's queue (Kafka): give up on it after 5 s, not 5 min
    { printf '[transport]\nplugin = %s\n' "$TR"; closed_conf; printf '[http]\nconfirm_timeout = 3s\nretry_after = 1s\n[producer]\nflush_timeout = 5s\n'; } > "$T/closed.conf"
    cp_port=$(free_port)
    bg "$PRODUCER" -c "$T/closed.conf" --http "127.0.0.1:$cp_port"
    closed=$!
    C="http://127.0.0.1:$cp_port"
    # health may be 200 until the first publish finds no broker (Kafka
    # connects then); that request gets 503, and from then on health does too
    wait_for 30 status_is 200 "$C/health" || wait_for 30 status_is 503 "$C/health" ||
        fail "health with no broker: $(hreq GET "$C/health") $(cat "$T/body")"
    HTTP_TOKEN= expect 503 POST "$C/produce" "$T/down.json"
    grep -q '^Retry-After: 1' "$T/headers" || fail "503 without Retry-After"
    wait_for 30 status_is 503 "$C/health" || fail "health with no broker: $(hreq GET "$C/health") $(cat "$T/body")"
    [ "$(json_field "$T/body" 'j["connection"]')" != connected ] || fail "health says connected: $(cat "$T/body")"
    HTTP_TOKEN= expect 503 POST "$C/produce" "$T/down.json"
    grep -q 'transport unavailable' "$T/body" || fail "second 503 not refused at once: $(cat "$T/body")"
    kill -TERM $closed
    wait $closed
fi

kill -TERM $prod
wait $prod || fail "producer exit $? after SIGTERM"
kill -TERM $agg
wait $agg || fail "aggregator exit $? after SIGTERM"
echo "$TR: 1001 messages through HTTP reached the aggregator; errors, metrics and health checked"
