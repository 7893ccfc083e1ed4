"""A ferry.v1.Sink service for the grpc sink's tests, on Debian's python3-grpcio.

Code for the contract is generated from the shipped proto/ferry/v1/sink.proto
by the test (grpc_tools.protoc) into a directory on PYTHONPATH. The server
appends every id it receives to --ids (one per line, before it answers), so
a test sees "at least once" in the raw file and "exactly once" after sort -u.
"""
import argparse
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

from ferry.v1 import sink_pb2, sink_pb2_grpc


class Sink(sink_pb2_grpc.SinkServicer):
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.ids = open(a.ids, "a") if a.ids else None
        self.first = None
        self.calls = 0
        self.events = 0
        self.shown = 0

    def Write(self, request, context):
        a = self.a
        if a.token is not None:
            md = dict(context.invocation_metadata())
            if md.get("authorization") != "Bearer " + a.token:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad or missing bearer token")
        for k, v in a.expect_header or []:
            if dict(context.invocation_metadata()).get(k) != v:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "header %s is not %s" % (k, v))
        now = time.monotonic()
        with self.lock:
            if self.first is None:
                self.first = now
            refuse = a.unavailable and now - self.first < a.unavailable
        if refuse:
            print("refused: UNAVAILABLE batch=%d" % len(request.events), file=sys.stderr, flush=True)
            context.abort(grpc.StatusCode.UNAVAILABLE, "busy for a while (test)")
        if a.status:
            context.abort(getattr(grpc.StatusCode, a.status), "refused by the test server")
        results = []
        with self.lock:
            for i, ev in enumerate(request.events):
                if a.reject and a.reject.encode() in ev.body:
                    results.append(sink_pb2.Result(index=i, accepted=False,
                                                   reason="body contains " + a.reject))
                    continue
                if self.ids:
                    self.ids.write(ev.id + "\n")
                if a.log_view and ev.HasField("log") and self.shown < 3:
                    self.shown += 1
                    print("log service=%s level=%s message=%s ts_ms=%d" % (
                        ev.log.service, sink_pb2.Level.Name(ev.log.level), ev.log.message,
                        ev.log.timestamp_unix_ms), file=sys.stderr, flush=True)
            if self.ids:
                self.ids.flush()
            self.calls += 1
            self.events += len(request.events)
        if a.delay:
            time.sleep(a.delay)
        return sink_pb2.WriteResponse(results=results)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--unix", help="listen on this unix socket path instead")
    p.add_argument("--ready", help="write the port here once serving")
    p.add_argument("--ids", help="append each accepted event's id here")
    p.add_argument("--token", help="require authorization: Bearer TOKEN")
    p.add_argument("--expect-header", nargs=2, action="append")
    p.add_argument("--unavailable", type=float, default=0,
                   help="answer UNAVAILABLE for this many seconds after the first call")
    p.add_argument("--status", help="answer every call with this status code name")
    p.add_argument("--reject", help="refuse events whose body contains this text")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--log-view", action="store_true", help="print each typed log envelope")
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--workers", type=int, default=4)
    a = p.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=a.workers),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    svc = Sink(a)
    sink_pb2_grpc.add_SinkServicer_to_server(svc, server)
    addr = "unix:" + a.unix if a.unix else "127.0.0.1:%d" % a.port
    if a.tls:
        with open(a.tls[0], "rb") as f:
            cert = f.read()
        with open(a.tls[1], "rb") as f:
            key = f.read()
        port = server.add_secure_port(addr, grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port(addr)
    server.start()
    if a.ready:
        tmp = a.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.ready)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()
    print("served calls=%d events=%d" % (svc.calls, svc.events), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
