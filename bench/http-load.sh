#!/bin/sh
# Load test of ferry-producer's HTTP ingestion on 127.0.0.1: CLIENTS
# keep-alive connections POST /batch-produce (BATCH messages each) until
# REQUESTS requests are answered or SECONDS pass, whichever comes first;
# prints requests/s and confirmed messages/s. Bounded and loopback only.
#
# Usage: bench/http-load.sh [-b BUILDDIR] [-c CONFIG]
#            [-n REQUESTS] [-s SECONDS] [-k CLIENTS] [-m BATCH]
# Without -c: ZeroMQ on 127.0.0.1 with a ferry-aggregator (fsync off)
# consuming, whose output is counted at the end. With -c CONFIG: the
# transport that file names (e.g. a RabbitMQ or Kafka on this host).
set -eu
build=$PWD config= requests=2000 seconds=30 clients=8 batch=100
while getopts b:c:n:s:k:m: o; do
    case $o in
    b) build=$OPTARG ;; c) config=$OPTARG ;;
    n) requests=$OPTARG ;; s) seconds=$OPTARG ;; k) clients=$OPTARG ;; m) batch=$OPTARG ;;
    *) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 64 ;;
    esac
done
[ "$seconds" -le 600 ] && [ "$requests" -le 1000000 ] || { echo "http-load: at most 600 s and 1,000,000 requests" >&2; exit 64; }
[ -x "$build/ferry-producer" ] || { echo "http-load: no $build/ferry-producer (use -b BUILDDIR)" >&2; exit 66; }
export FERRY_PLUGIN_PATH="${FERRY_PLUGIN_PATH:-$build/tests/plugins:$build/plugins/zmq:$build/plugins/amqp:$build/plugins/kafka}"
py=/usr/bin/python3
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tmp=$(mktemp -d)
pid= agg=
trap 'for p in $pid $agg; do kill -TERM $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
dest="bench-http-$$"
{
    if [ -n "$config" ]; then
        cat "$config"
    else
        zport=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        printf '[transport]\nplugin = zmq\n[zmq]\nendpoint = tcp://127.0.0.1:%s\nsend_hwm = 20000\nreceive_hwm = 20000\n' "$zport"
        printf '[aggregator]\noutput = %s\nfsync = false\ndedup = false\nbatch = 5000\n' "$tmp/out.txt"
    fi
} > "$tmp/bench.conf"
{
    cat "$tmp/bench.conf"
    printf '\n[http]\nlisten = 127.0.0.1:%s\nmax_body = 64MiB\nmax_batch = 100000\nmax_connections = %s\n' \
        "$port" $((clients + 4))
} > "$tmp/producer.conf"
if [ -z "$config" ]; then
    "$build/ferry-aggregator" -q -c "$tmp/bench.conf" --destination "$dest" 2>"$tmp/agg.err" &
    agg=$!
fi
"$build/ferry-producer" -q -c "$tmp/producer.conf" --destination "$dest" 2>"$tmp/err" &
pid=$!
$py - "$port" "$requests" "$seconds" "$clients" "$batch" "$tmp/sent" <<'PY'
import http.client, json, sys, threading, time
port, total, seconds, clients, batch = (int(a) for a in sys.argv[1:6])
end = time.time() + 30
while True:  # wait for the server, at most 30 s
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/health")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    if time.time() > end:
        sys.exit("http-load: the producer did not become healthy")
    time.sleep(0.1)
lock = threading.Lock()
state = {"left": total, "ok": 0, "msgs": 0, "err": {}}
lat = []
def body(t, i):
    return json.dumps({"messages": [{"id": "bench-%d-%d-%d" % (t, i, k), "message": "bench line %d" % k,
                                     "service": "bench"} for k in range(batch)]}).encode()
def worker(t):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = 0
    while time.time() < deadline:
        with lock:
            if state["left"] <= 0:
                return
            state["left"] -= 1
        b = body(t, i); i += 1
        t0 = time.time()
        c.request("POST", "/batch-produce", body=b, headers={"Content-Type": "application/json"})
        r = c.getresponse(); body_text = r.read().decode(errors="replace")
        with lock:
            lat.append(time.time() - t0)
            if r.status == 200:
                state["ok"] += 1; state["msgs"] += batch
            else:
                state["err"][r.status] = state["err"].get(r.status, 0) + 1
                if state["err"][r.status] == 1:
                    print("http-load: first %d: %s" % (r.status, body_text[:200]), file=sys.stderr)
start = time.time()
deadline = start + seconds
ths = [threading.Thread(target=worker, args=(t,)) for t in range(clients)]
for t in ths: t.start()
for t in ths: t.join()
el = time.time() - start
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0
print("clients=%d batch=%d requests=%d ok=%d errors=%s seconds=%.2f" %
      (clients, batch, len(lat), state["ok"], state["err"] or "none", el))
print("requests/s=%.0f messages/s=%.0f latency_ms p50=%.1f p99=%.1f" %
      (len(lat) / el, state["msgs"] / el, p(0.5), p(0.99)))
open(sys.argv[6], "w").write("%d\n" % state["msgs"])
PY
kill -TERM $pid
wait $pid || { echo "http-load: producer exit $?" >&2; cat "$tmp/err" >&2; exit 1; }
pid=
if [ -n "$agg" ]; then
    # the 200s promised delivery to the transport; count what the aggregator wrote
    end=$(( $(date +%s) + 30 ))
    while [ "$(cat "$tmp/out.txt" 2>/dev/null | wc -l)" -lt "$(cat "$tmp/sent")" ] && [ "$(date +%s)" -lt "$end" ]; do
        sleep 0.2
    done
    echo "aggregator wrote $(wc -l < "$tmp/out.txt") of $(cat "$tmp/sent") confirmed messages"
fi
