"""A webhook receiver for the webhook sink's tests: Python's own
http.server (ThreadingHTTPServer), nothing ferry wrote.

Each POST body is NDJSON or a JSON array of events; the id of every event
is appended to --ids before the answer is sent. Modes make it answer 503
with Retry-After for a while, 400 for bodies containing a text, or demand
a bearer token / basic credentials.
"""
import argparse
import base64
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    lock = threading.Lock()
    first = None
    posts = 0
    events = 0


def make_handler(a, ids):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive

        def log_message(self, fmt, *args):
            if a.verbose:
                sys.stderr.write("webhook: " + fmt % args + "\n")

        def answer(self, code, text, extra=()):
            body = text.encode()
            self.send_response(code)
            for k, v in extra:
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            auth = self.headers.get("Authorization")
            if a.token is not None and auth != "Bearer " + a.token:
                return self.answer(401, "bad token")
            if a.basic is not None and auth != "Basic " + base64.b64encode(a.basic.encode()).decode():
                return self.answer(401, "bad credentials")
            now = time.monotonic()
            with State.lock:
                if State.first is None:
                    State.first = now
                busy = a.busy and now - State.first < a.busy
            if busy:
                print("refused: 503 Retry-After=%s" % a.retry_after, file=sys.stderr, flush=True)
                return self.answer(503, "busy", [("Retry-After", a.retry_after)])
            ctype = self.headers.get("Content-Type", "")
            try:
                if ctype.startswith("application/x-ndjson"):
                    events = [json.loads(l) for l in body.split(b"\n") if l.strip()]
                else:
                    events = json.loads(body)
                    assert isinstance(events, list)
            except Exception as e:  # noqa: BLE001 - any parse error is the client's
                return self.answer(400, "not %s: %s" % (ctype, e))
            if a.reject and a.reject.encode() in body:
                return self.answer(400, "refused: body contains %s" % a.reject)
            with State.lock:
                for ev in events:
                    ids.write("%s\n" % (ev.get("id", "-") if isinstance(ev, dict) else "-"))
                ids.flush()
                State.posts += 1
                State.events += len(events)
            self.answer(200, "ok %d" % len(events))

    return H


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ready")
    p.add_argument("--ids", default=os.devnull)
    p.add_argument("--token")
    p.add_argument("--basic", help="user:password required")
    p.add_argument("--busy", type=float, default=0, help="answer 503 this many seconds after the first POST")
    p.add_argument("--retry-after", default="1")
    p.add_argument("--reject", help="answer 400 to a body containing this text")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    ids = open(a.ids, "a")
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(a, ids))
    srv.daemon_threads = True
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if a.ready:
        with open(a.ready + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(a.ready + ".tmp", a.ready)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    print("served posts=%d events=%d" % (State.posts, State.events), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
