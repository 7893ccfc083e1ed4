"""Instructions per message (bench/icount.sh's table): compare a run with
the committed baseline, merge runs, and the ratios ferry / plain program.

Usage:
  icount.py check BASELINE CURRENT [FAILED_OUT]
      exit 1 when a ferry path counts more than LIMIT (1.10) times its
      baseline or was not counted; the failing rows (KIND:TRANSPORT:VARIANT)
      go to FAILED_OUT, one a line
  icount.py min OUT RUN...      per row, the least of the runs
  icount.py median OUT RUN...   per row, the median of the runs
  icount.py table CURRENT       the figures and ratios as a Markdown table
"""
import statistics
import sys

LIMIT = 1.10
# the ferry paths and what each is compared with: the plain program (or
# programs, summed: the validator receives and publishes every message)
FERRY = {
    ("pub", "libferry"): [("pub", "raw")],
    ("producer", "ferry-producer"): [("pub", "raw")],
    ("sub", "aggregator"): [("sub", "raw")],
    ("validator", "ferry-validator"): [("sub", "raw"), ("pub", "raw")],
}
LABEL = {
    ("pub", "raw"): "plain library publisher",
    ("pub", "libferry"): "libferry publish (ferry_pub_send)",
    ("producer", "ferry-producer"): "ferry-producer (stdin lines, envelope)",
    ("producer", "python-loop"): "Python loop, bare bodies",
    ("producer", "python-envelope"): "Python loop, envelope with json.dumps",
    ("sub", "raw"): "plain library consumer",
    ("sub", "aggregator"): "ferry-aggregator (fsync)",
    ("validator", "ferry-validator"): "ferry-validator",
}
PLAIN_LABEL = {
    ("pub", "libferry"): "plain publisher",
    ("producer", "ferry-producer"): "plain publisher",
    ("sub", "aggregator"): "plain consumer",
    ("validator", "ferry-validator"): "plain consumer + plain publisher",
}
TRANSPORTS = ["zmq", "amqp", "kafka"]


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            kind, t, v, per, n = line.rstrip("\n").split("\t")[:5]
            rows[(kind, t, v)] = (float(per), int(n))
    return rows


def write(path, rows):
    with open(path, "w") as f:
        for (kind, t, v), (per, n) in rows.items():
            f.write("%s\t%s\t%s\t%.0f\t%d\n" % (kind, t, v, per, n))


def plain(rows, kind, t, v):
    """Instructions per message of the plain program(s) a ferry path is
    compared with, or None."""
    total = 0
    for pk, pv in FERRY.get((kind, v), []):
        r = rows.get((pk, t, pv))
        if r is None:
            return None
        total += r[0]
    return total or None


def ratio(rows, kind, t, v):
    """Plain instructions / ferry instructions: 1.0 is as cheap as the plain
    program, like the wall-clock ratios (ferry rate / plain rate)."""
    p = plain(rows, kind, t, v)
    f = rows.get((kind, t, v))
    return p / f[0] if p and f and f[0] > 0 else None


def check(base_path, cur_path, failed_out=None):
    base, cur = load(base_path), load(cur_path)
    failed = []
    print("%-9s %-5s %-16s %9s %9s %7s %13s" % ("path", "", "", "baseline", "now", "change",
                                               "plain / ferry"))
    for key in sorted(base, key=lambda k: (TRANSPORTS.index(k[1]) if k[1] in TRANSPORTS else 9, k)):
        kind, t, v = key
        b = base[key][0]
        c = cur.get(key)
        is_ferry = (kind, v) in FERRY
        if c is None:
            if is_ferry:
                failed.append(key)
                print("%-9s %-5s %-16s %9.0f %9s   FAIL: not counted" % (kind, t, v, b, "-"))
            continue
        change = c[0] / b - 1 if b > 0 else 0
        r = ratio(cur, kind, t, v)
        verdict = ""
        if is_ferry and c[0] > b * LIMIT:
            failed.append(key)
            verdict = "  FAIL: more than %d %% over the baseline" % round((LIMIT - 1) * 100)
        elif not is_ferry and abs(change) > LIMIT - 1:
            verdict = "  (plain program moved: another library version? bench-baseline)"
        print("%-9s %-5s %-16s %9.0f %9.0f %+6.1f%% %13s%s" % (
            kind, t, v, b, c[0], change * 100, "%.2f" % r if r else "", verdict))
    if failed_out:
        with open(failed_out, "w") as f:
            f.write("".join("%s:%s:%s\n" % k for k in failed))
    if failed:
        print("bench-check: %d path(s) failed (more than %d %% over the baseline, or not counted): %s" % (
            len(failed), round((LIMIT - 1) * 100), " ".join("%s:%s:%s" % k for k in failed)))
        return 1
    print("bench-check: every ferry path within %d %% of its baseline" % round((LIMIT - 1) * 100))
    return 0


def combine(out, paths, how):
    runs = [load(p) for p in paths]
    keys = []
    for r in runs:
        keys += [k for k in r if k not in keys]
    merged = {}
    for k in keys:
        vals = [r[k] for r in runs if k in r]
        per = min(v[0] for v in vals) if how == "min" else statistics.median(v[0] for v in vals)
        merged[k] = (per, vals[0][1])
    write(out, merged)
    return 0


def table(rows):
    """Markdown: per transport and path, ferry's count, the plain one and
    the ratio."""
    out = ["| transport | path | instructions / msg | compared with | its instructions / msg "
           "| plain / ferry |",
           "|---|---|---:|---|---:|---:|"]
    for t in TRANSPORTS:
        for kind, v in FERRY:
            f = rows.get((kind, t, v))
            if not f:
                continue
            p = plain(rows, kind, t, v)
            r = ratio(rows, kind, t, v)
            out.append("| %s | %s | %s | %s | %s | %s |" % (
                t, LABEL[(kind, v)], "{:,.0f}".format(f[0]), PLAIN_LABEL[(kind, v)],
                "{:,.0f}".format(p) if p else "–", "%.2f" % r if r else "–"))
        for v in ("python-loop", "python-envelope"):
            py = rows.get(("producer", t, v))
            f = rows.get(("producer", t, "ferry-producer"))
            if py and f:
                out.append("| %s | ferry-producer | %s | %s | %s | %.2f |" % (
                    t, "{:,.0f}".format(f[0]), LABEL[("producer", v)],
                    "{:,.0f}".format(py[0]), py[0] / f[0]))
    return "\n".join(out)


def main(argv):
    if len(argv) >= 3 and argv[0] == "check":
        return check(argv[1], argv[2], argv[3] if len(argv) > 3 else None)
    if len(argv) >= 3 and argv[0] in ("min", "median"):
        return combine(argv[1], argv[2:], argv[0])
    if len(argv) == 2 and argv[0] == "table":
        print(table(load(argv[1])))
        return 0
    sys.stderr.write(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
