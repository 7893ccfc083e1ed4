"""A small ferry.v1.Sink service: takes the batches ferry's grpc sink sends,
de-duplicates them by event id and prints what it receives.

    python3 -m grpc_tools.protoc -I proto --python_out=. --grpc_python_out=. \
        proto/ferry/v1/sink.proto
    python3 examples/grpc-service/service.py --port 50051

Needs Debian's python3-grpcio, python3-protobuf and python3-grpc-tools.
A real service would keep the accepted ids in its database (in the same
transaction as the data) instead of in memory.
"""
import argparse
import sys
import threading
from concurrent import futures

import grpc

from ferry.v1 import sink_pb2, sink_pb2_grpc


class Sink(sink_pb2_grpc.SinkServicer):
    def __init__(self, reject):
        self.seen = set()
        self.lock = threading.Lock()
        self.reject = reject

    def Write(self, request, context):
        results = []
        with self.lock:
            for i, ev in enumerate(request.events):
                if self.reject and self.reject.encode() in ev.body:
                    # refused for good: ferry sends it to the dead-letter destination
                    results.append(sink_pb2.Result(index=i, accepted=False,
                                                   reason="contains " + self.reject))
                    continue
                if ev.id and ev.id in self.seen:
                    print("duplicate %s (a redelivery: accepted, not applied twice)" % ev.id)
                    continue
                self.seen.add(ev.id)
                if ev.HasField("log"):
                    print("%s %-8s %-10s %s  [%s]" % (
                        ev.log.timestamp, sink_pb2.Level.Name(ev.log.level), ev.log.service,
                        ev.log.message, ev.id))
                else:
                    print("%s %s: %r [%s]" % (ev.destination, ev.routing_key, ev.body[:80], ev.id))
        sys.stdout.flush()
        # events without a Result are accepted
        return sink_pb2.WriteResponse(results=results)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=50051)
    p.add_argument("--reject", help="refuse events whose body contains this text")
    a = p.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    sink_pb2_grpc.add_SinkServicer_to_server(Sink(a.reject), server)
    server.add_insecure_port("127.0.0.1:%d" % a.port)
    server.start()
    print("ferry.v1.Sink listening on 127.0.0.1:%d" % a.port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
