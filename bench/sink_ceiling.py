"""The receivers' own ceiling for bench/sinks.sh: a plain Python client (no
ferry) sends N events in batches of B to the test receivers, one call in
flight as the sinks do, and prints events/s.
    sink_ceiling.py grpc|webhook PORT N B BODYFILE"""
import http.client
import sys
import time

kind, port, n, b, bodyfile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
bodies = [l.rstrip(b"\n") for l in open(bodyfile, "rb")]
start = time.monotonic()
if kind == "grpc":
    import grpc
    from ferry.v1 import sink_pb2, sink_pb2_grpc
    stub = sink_pb2_grpc.SinkStub(grpc.insecure_channel("127.0.0.1:%d" % port))
    for i in range(0, n, b):
        evs = [sink_pb2.Event(id="c%d" % j, destination="bench", body=bodies[j % len(bodies)])
               for j in range(i, min(n, i + b))]
        stub.Write(sink_pb2.WriteRequest(events=evs), timeout=30)
else:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(0, n, b):
        payload = b"\n".join(bodies[j % len(bodies)] for j in range(i, min(n, i + b))) + b"\n"
        conn.request("POST", "/in", payload, {"Content-Type": "application/x-ndjson"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
print("%.0f" % (n / (time.monotonic() - start)))
