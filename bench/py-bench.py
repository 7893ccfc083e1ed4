"""The usual Python producers, for comparison in `make bench`.

Usage: py-bench.py zmq|amqp|kafka loop|envelope|once ADDRESS DEST COUNT SIZE
loop: one connection, COUNT messages, prints msgs/s (connection set-up not
timed). envelope: the same loop, each body the JSON log envelope
ferry-producer sends for a line of SIZE bytes (id, service, level, message,
timestamp, host, producer, seq), built with json.dumps. once: what the
tutorial producer does, run once per message: connect, send one message,
close.
"""
import datetime
import json
import os
import socket
import sys
import time
import uuid


def body(dest, i, size):
    head = '{"id":"%s-%d","w":0,"t":%d,"p":"' % (dest, i, time.time_ns())
    return (head + "x" * max(0, size - len(head) - 2) + '"}').encode()


HOST = socket.gethostname()
PRODUCER = "%s-%d" % (HOST, os.getpid())


def envelope(dest, i, size):
    line = "line %08d %s" % (i, "x" * max(0, size - 14))
    now = datetime.datetime.now(datetime.timezone.utc)
    return json.dumps({
        "id": str(uuid.uuid4()), "service": "bench", "level": "INFO", "message": line,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000),
        "host": HOST, "producer": PRODUCER, "seq": i + 1}).encode()


def run_zmq(addr, dest, n, size):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.LINGER, -1)
    s.connect(addr)
    t0 = time.monotonic()
    for i in range(n):
        s.send(body(dest, i, size))
    s.close()
    ctx.term()  # returns once everything is handed over
    return time.monotonic() - t0


def run_amqp(addr, dest, n, size):
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(addr))
    ch = conn.channel()
    ch.queue_declare(queue=dest, durable=True)
    props = pika.BasicProperties(delivery_mode=2)  # persistent, as in the tutorial
    t0 = time.monotonic()
    for i in range(n):
        ch.basic_publish(exchange="", routing_key=dest, body=body(dest, i, size),
                         properties=props)
    conn.close()
    return time.monotonic() - t0


def run_kafka(addr, dest, n, size):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": addr, "acks": "all", "enable.idempotence": True})
    failed = []

    def report(err, _msg):
        if err is not None:
            failed.append(err)

    t0 = time.monotonic()
    for i in range(n):
        while True:
            try:
                p.produce(dest, body(dest, i, size), key="k%d" % (i % 64), on_delivery=report)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    if p.flush(60) != 0 or failed:
        raise SystemExit("kafka: %d messages not delivered" % (len(failed) or 1))
    return time.monotonic() - t0


def main():
    global body
    transport, mode, addr, dest, n, size = sys.argv[1:7]
    n, size = int(n), int(size)
    if mode == "envelope":
        body = envelope
    run = {"zmq": run_zmq, "amqp": run_amqp, "kafka": run_kafka}[transport]
    elapsed = run(addr, dest, n, size)
    if mode in ("loop", "envelope"):
        print("%.1f" % (n / elapsed))


if __name__ == "__main__":
    main()
