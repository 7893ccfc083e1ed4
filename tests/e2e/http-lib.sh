# Helpers for the HTTP tests (sourced after tests/lib.sh): requests through
# Python's urllib (no curl needed) and metrics read with the Prometheus
# client's own parser, so the text format is checked by a real consumer.

# hreq METHOD URL [BODY_FILE]: prints the status; body in $T/body, headers
# in $T/headers. $HTTP_TOKEN, when set, is sent as a bearer token.
hreq() {
    /usr/bin/python3 - "$@" "$T" <<'PY'
import os, sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
data_file = sys.argv[3] if len(sys.argv) > 4 else None
out = sys.argv[-1]
data = open(data_file, 'rb').read() if data_file else None
req = urllib.request.Request(url, data=data, method=method)
if data is not None:
    req.add_header('Content-Type', 'application/json')
tok = os.environ.get('HTTP_TOKEN')
if tok:
    req.add_header('Authorization', 'Bearer ' + tok)
try:
    r = urllib.request.urlopen(req, timeout=60)
    code, body, hdrs = r.status, r.read(), r.headers
except urllib.error.HTTPError as e:
    code, body, hdrs = e.code, e.read(), e.headers
except (urllib.error.URLError, ConnectionError, OSError):
    code, body, hdrs = 0, b'', {}
open(out + '/body', 'wb').write(body)
with open(out + '/headers', 'w') as f:
    for k, v in (hdrs.items() if hdrs else []):
        f.write('%s: %s\n' % (k, v))
print(code)
PY
}

# expect STATUS METHOD URL [BODY_FILE]: fail unless the answer has STATUS
expect() {
    want=$1; shift
    got=$(hreq "$@")
    [ "$got" = "$want" ] || fail "$1 $2: status $got, want $want: $(cat "$T/body")"
}

# status_is STATUS URL: for wait_for
status_is() { [ "$(hreq GET "$2")" = "$1" ]; }

# metric URL SAMPLE [LABEL=VALUE...]: value of the first matching sample
metric() {
    /usr/bin/python3 - "$@" <<'PY'
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
url, name = sys.argv[1], sys.argv[2]
want = dict(a.split('=', 1) for a in sys.argv[3:])
text = urllib.request.urlopen(url, timeout=10).read().decode()
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in want.items()):
            v = s.value
            print(int(v) if v == int(v) else v)
            sys.exit(0)
sys.exit(1)
PY
}

# metric_is VALUE URL SAMPLE [LABEL=VALUE...]: for wait_for
metric_is() { want=$1; shift; [ "$(metric "$@")" = "$want" ]; }

# json_field FILE EXPR: evaluate a Python expression over the parsed JSON `j`
json_field() { /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# make_batch FILE N PREFIX: {"messages": [...]} with N logs, ids PREFIX-1..N
make_batch() {
    /usr/bin/python3 -c '
import json, sys
n, p = int(sys.argv[2]), sys.argv[3]
msgs = [{"id": "%s-%d" % (p, i), "message": "batch line %d" % i, "service": "web"} for i in range(1, n + 1)]
json.dump({"messages": msgs}, open(sys.argv[1], "w"))' "$@"
}
