"""Write bench/results/latest.md and the SVG plots from a `make bench` run.

Usage: report.py RUNS_TSV OUT_DIR WALL_SECONDS [NOTE]
NOTE, when given, is printed under the heading (e.g. which parts were rerun).
Each figure is the median of the runs with their min and max; the analysis
in bench/findings.md is appended. Instructions per message come from
OUT_DIR/icount.tsv (bench/icount.sh) when it is there.
"""
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import icount  # noqa: E402  (bench/icount.py)

TRANSPORTS = ["zmq", "amqp", "kafka"]
PUB = ["raw", "libferry", "ferry-producer", "ferry-producer-steady", "python-loop",
       "python-envelope", "python-per-message", "ferry-producer-per-message"]
PLOT_PUB = ["raw", "libferry", "ferry-producer", "ferry-producer-steady", "python-loop",
            "python-envelope"]
SUB = ["raw", "aggregator", "aggregator-no-fsync"]
FERRY = {"libferry", "ferry-producer", "ferry-producer-steady", "aggregator", "aggregator-no-fsync",
         "ferry-producer-per-message"}
LABEL = {
    "raw": "plain library (C)",
    "libferry": "libferry API (ferry_pub_send)",
    "ferry-producer": "ferry-producer (stdin lines)",
    "ferry-producer-steady": "ferry-producer, less start-up",
    "python-loop": "Python, one connection",
    "python-envelope": "Python, one connection, envelope (json.dumps)",
    "python-per-message": "Python, one process per message",
    "ferry-producer-per-message": "ferry-producer, one process per message",
    "aggregator": "ferry-aggregator (fsync)",
    "aggregator-no-fsync": "ferry-aggregator --no-fsync",
}
LIB = {"zmq": "libzmq", "amqp": "rabbitmq-c", "kafka": "librdkafka"}
PYLIB = {"zmq": "pyzmq", "amqp": "pika", "kafka": "confluent-kafka"}


def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            t, kind, var, size, vals = line.rstrip("\n").split("\t")
            runs.setdefault((t, kind, var, int(size)), []).append([float(v) for v in vals.split()])
    return runs


def stat(runs, key, col=0):
    vals = [r[col] for r in runs.get(key, [])]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals), len(vals)


def fmt(x):
    if x >= 100:
        return "{:,.0f}".format(x)
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def cell(s):
    return "%s (%s–%s)" % (fmt(s[0]), fmt(s[1]), fmt(s[2])) if s else "–"


def ratio(a, b):
    return "%.2f" % (a[0] / b[0]) if a and b and b[0] else "–"


def loads(runs):
    """'1-min 5-min 15-min' load averages at the start and the end of the run."""
    r = []
    for when in ("start", "end"):
        v = runs.get(("all", "load", when, 0))
        r.append(" / ".join("%.1f" % x for x in v[0]) if v else "?")
    return r


def main():
    tsv, out, wall = sys.argv[1], sys.argv[2], sys.argv[3]
    runs = load(tsv)
    icf = os.path.join(out, "icount.tsv")
    ic = icount.load(icf) if os.path.exists(icf) else {}
    md = []
    w = md.append
    la = loads(runs)
    w("# ferry benchmarks: latest run\n")
    w("Written by `make bench` on %s (%s, %d CPUs), wall time of the run %s s, "
      "**load average (1, 5, 15 min) %s at the start and %s at the end** (other work "
      "shared the machine: wall-clock figures move with it, instruction counts do "
      "not). Every figure is the median of %s runs, with (min–max). Runs of the "
      "variants alternate within each round, so slow phases of the shared "
      "machine hit all of them.\n" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                      platform.machine(), os.cpu_count() or 0, wall, la[0], la[1],
                                      max((len(v) for k, v in runs.items() if k[0] != "all"),
                                          default=0)))
    if len(sys.argv) > 4 and sys.argv[4]:
        w(sys.argv[4] + "\n")
    w("Settings, the same for the plain programs and ferry: AMQP persistent "
      "messages with publisher confirms (plain rabbitmq-c waits for them every "
      "1000 messages; the Python loop is the tutorial's: persistent, no "
      "confirms), consumers with prefetch 1000; Kafka acks=all, idempotent, "
      "linger.ms 5, consumers with fetch.wait.max.ms 100; ZeroMQ defaults "
      "(PUSH/PULL over TCP loopback). Messages per run: zmq 100,000; AMQP "
      "3,000; Kafka 30,000 of 100 B and 10,000 of 1 KiB. Consumers "
      "read a queue or topic filled beforehand by the libferry publisher "
      "(ZeroMQ: fed while consuming); their clock starts at the first message "
      "(the aggregator's at its first written batch). "
      "ferry-producer is timed as a whole process (start-up and connection "
      "included), and again less the time of the same process sending one "
      "line (its steady rate); it sends each stdin line of SIZE bytes as a "
      "JSON log envelope, about 190 bytes larger on the wire. The Python "
      "envelope loop builds that same envelope (id, service, level, message, "
      "information, timestamp, host, producer, seq) with `json.dumps` for "
      "each message. Latency: 100-byte "
      "messages at 1000 msgs/s after a warm-up, send time stamped in the body, "
      "producer and consumer threads in one process (Kafka consumers with "
      "fetch.wait.max.ms 5).\n")

    for t in TRANSPORTS:
        if not any(k[0] == t for k in runs):
            continue
        w("## %s (%s, %s)\n" % (t, LIB[t], PYLIB[t]))
        w("### Publish\n")
        w("| size | program | msgs/s | MB/s | ferry / raw | ferry / Python | ferry / Python envelope |")
        w("|---:|---|---:|---:|---:|---:|---:|")
        for size in (100, 1024):
            raw = stat(runs, (t, "pub", "raw", size))
            py = stat(runs, (t, "pub", "python-loop", size))
            pyenv = stat(runs, (t, "pub", "python-envelope", size))
            pyonce = stat(runs, (t, "pub", "python-per-message", size))
            for v in PUB:
                s = stat(runs, (t, "pub", v, size))
                if not s:
                    continue
                mb = s[0] * size / 1e6
                once = v == "ferry-producer-per-message"
                w("| %d | %s | %s | %s | %s | %s | %s |" % (
                    size, LABEL[v], cell(s), fmt(mb),
                    ratio(s, raw) if v in FERRY and not once else "",
                    ratio(s, pyonce if once else py) if v in FERRY else "",
                    ratio(s, pyenv) if v in FERRY and not once else ""))
        w("")
        w("### Consume\n")
        w("| size | program | msgs/s | MB/s | ferry / raw |")
        w("|---:|---|---:|---:|---:|")
        for size in (100, 1024):
            raw = stat(runs, (t, "sub", "raw", size))
            for v in SUB:
                s = stat(runs, (t, "sub", v, size))
                if s:
                    w("| %d | %s | %s | %s | %s |" % (size, LABEL[v], cell(s), fmt(s[0] * size / 1e6),
                                                      ratio(s, raw) if v in FERRY else ""))
        w("")
        w("### End-to-end latency (µs, 100 B at 1000 msgs/s)\n")
        w("| program | p50 | p99 | p99.9 |")
        w("|---|---:|---:|---:|")
        for v in ("raw", "libferry"):
            if (t, "lat", v, 100) in runs:
                w("| %s | %s | %s | %s |" % (LABEL[v], *(cell(stat(runs, (t, "lat", v, 100), c))
                                                       for c in range(3))))
        w("")
        sng = stat(runs, (t, "ship", "syslog-ng", 99))
        fp = stat(runs, (t, "ship", "ferry-producer", 99))
        if sng or fp:
            w("### Shipping a file: syslog-ng and ferry-producer\n")
            w("The same file of %s lines of 99 bytes, counted at the broker (from the "
              "shipper's start until the %s holds every line); syslog-ng %s with a "
              "`file()` source and `flags(flow-control)`, %s; ferry-producer reads it on "
              "stdin and sends each line as its JSON envelope, with confirms.\n" % (
                  "{:,}".format(SHIP_LINES), "topic" if t == "kafka" else "queue", SNG_VERSION,
                  "`kafka-c()` with acks=all and idempotence" if t == "kafka" else
                  "`amqp()` with persistent messages (it has no publisher confirms)"))
            w("| program | msgs/s | ferry-producer / syslog-ng |")
            w("|---|---:|---:|")
            w("| syslog-ng | %s | |" % cell(sng))
            w("| ferry-producer | %s | %s |" % (cell(fp), ratio(fp, sng)))
            w("")

    head = headline(runs, ic)
    plots = ["## Plots\n", "![publish throughput](publish.svg)\n",
             "![consume throughput](consume.svg)\n", "![latency](latency.svg)\n"]
    tail = []
    if ic:
        tail += ["## Instructions per message\n",
                 "Counted with valgrind's callgrind (`bench/icount.sh`; `perf stat -e "
                 "instructions` has no counters on this machine) over the whole process, "
                 "every thread and the client library included: the difference between a "
                 "run of 2N messages and one of N, divided by N, so start-up and connection "
                 "drop out. 100-byte messages (ferry-producer: stdin lines of 100 bytes, "
                 "sent as envelopes). The load does not change these counts; `make "
                 "bench-check` holds the ferry rows to within 10 % of "
                 "`bench/results/icount-baseline.tsv`. \"plain / ferry\" is the plain "
                 "program's count over ferry's: like the wall-clock ratios, 1.0 means "
                 "as cheap as the plain program. Over AMQP the own cost of rabbitmq-c's "
                 "`amqp_maybe_release_buffers_on_channel` is left out (see "
                 "`bench/icount.sh`: it walks frames queued during a synchronous call, "
                 "about 87 million instructions once per ferry consumer's start, "
                 "whatever N).\n",
                 icount.table(ic), ""]
    lg = [("%d, burst" % th, runs.get(("all", "logger", "ferry_log-%d" % th, 0))) for th in (1, 8)]
    lg.append(("8, 5,000 calls/s each", runs.get(("all", "logger", "ferry_log-8-paced", 0))))
    if any(v for _, v in lg):
        tail += ["## Logger: the cost of one `ferry_log()` call\n",
                 "`bench/logger-bench` over Kafka (timer overhead subtracted), with the "
                 "1-minute load average when it ran: on a loaded machine the tail is the "
                 "scheduler's. *Burst*: 200,000 calls per thread as fast as they go, far "
                 "beyond what the sender ships, into a queue that never fills: every record "
                 "lands in memory the process has not touched yet, and the tail is the "
                 "kernel's first-touch page faults (about one call in 25 takes one; "
                 "`/usr/bin/time -v` counts some 77,000 minor faults for 1.8 million calls). "
                 "*5,000 calls/s each*: an application's logging, which the sender keeps "
                 "up with, so records reuse freed memory and callers never wake the "
                 "sender (it naps, `LOGGER_NAP_MS` in core/lib/logger.c).\n",
                 "| threads | median ns | p99 ns | p99.9 ns | load average |",
                 "|---|---:|---:|---:|---:|"]
        for th, v in lg:
            if v:
                x = v[0]
                tail.append("| %s | %.0f | %s | %s | %.1f |" % (th, x[0], "{:,.0f}".format(x[1]),
                                                              "{:,.0f}".format(x[2]), x[3]))
        tail.append("")
    top = 4 if len(sys.argv) > 4 and sys.argv[4] else 3
    md = md[:top] + head + plots + md[top:] + tail
    findings = os.path.join(os.path.dirname(os.path.abspath(__file__)), "findings.md")
    if os.path.exists(findings):
        with open(findings) as f:
            md.append(f.read().rstrip("\n"))
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    plot(runs, out)


SHIP_LINES = int(os.environ.get("BENCH_SHIP_LINES", "200000"))
SNG_VERSION = "3.38"
# the goals of issue 20, by row of the headline table
GOALS = {
    "pub": {"zmq": "≥ 0.9; instructions ≥ 0.77 (≤ 1.3 ×)", "amqp": "≥ 0.95"},
    "agg": "≥ 0.9",
    "py": "≥ 1.0",
    "pyenv": "≥ 2.0",
    "once": "≥ 5",
    "ship": "kafka ≥ 1.5, amqp ≥ 1.0",
}


def headline(runs, ic):
    """The headline table: one row per claim, the wall-clock ratio of the
    medians next to the instruction ratio (plain / ferry) where counted."""
    rows = []

    def r(a, b):
        return ratio(stat(runs, a), stat(runs, b))

    def ir(kind, t, v, other=None):
        if other:  # against another counted program: its count over ferry's
            f, o = ic.get((kind, t, v)), ic.get(other)
            return "%.2f" % (o[0] / f[0]) if f and o and f[0] else "–"
        x = icount.ratio(ic, kind, t, v)
        return "%.2f" % x if x else "–"

    for t in TRANSPORTS:
        if any(k[0] == t for k in runs):
            rows.append("| libferry publish / plain %s, %s | %s | %s | %s |" % (
                LIB[t], t, r((t, "pub", "libferry", 100), (t, "pub", "raw", 100)),
                ir("pub", t, "libferry"), GOALS["pub"].get(t, "")))
    for t in TRANSPORTS:
        if any(k[0] == t for k in runs):
            rows.append("| ferry-aggregator (fsync) / plain consumer, %s | %s | %s | %s |" % (
                t, r((t, "sub", "aggregator", 100), (t, "sub", "raw", 100)),
                ir("sub", t, "aggregator"), GOALS["agg"]))
    for t in TRANSPORTS:
        if any(k[0] == t for k in runs):
            rows.append("| ferry-producer / plain publisher, %s | %s | %s | |" % (
                t, r((t, "pub", "ferry-producer", 100), (t, "pub", "raw", 100)),
                ir("producer", t, "ferry-producer")))
    def rp(t, py):
        """ferry-producer's whole process over the Python loop, and its
        steady rate (less start-up): the loop's own set-up is not timed"""
        whole = r((t, "pub", "ferry-producer", 100), (t, "pub", py, 100))
        steady = r((t, "pub", "ferry-producer-steady", 100), (t, "pub", py, 100))
        return whole if steady in ("", "–") else "%s (%s less start-up)" % (whole, steady)

    for t in TRANSPORTS:
        if any(k[0] == t for k in runs):
            rows.append("| ferry-producer / Python loop (%s, bare bodies), %s | %s | %s | %s |" % (
                PYLIB[t], t, rp(t, "python-loop"),
                ir("producer", t, "ferry-producer", ("producer", t, "python-loop")), GOALS["py"]))
    for t in TRANSPORTS:
        if any(k[0] == t for k in runs):
            rows.append("| ferry-producer / Python loop building the same envelope, %s | %s | %s | %s |"
                        % (t, rp(t, "python-envelope"),
                           ir("producer", t, "ferry-producer", ("producer", t, "python-envelope")),
                           GOALS["pyenv"]))
    for t in TRANSPORTS:
        if (t, "pub", "ferry-producer-per-message", 100) in runs:
            rows.append("| ferry-producer / Python (%s), one process per message, %s | %s | | %s |" % (
                PYLIB[t], t, r((t, "pub", "ferry-producer-per-message", 100),
                               (t, "pub", "python-per-message", 100)),
                GOALS["once"] if t == "amqp" else ""))
    for t in ("kafka", "amqp"):
        if (t, "ship", "syslog-ng", 99) in runs or (t, "ship", "ferry-producer", 99) in runs:
            rows.append("| ferry-producer / syslog-ng %s shipping the same file, %s | %s | | %s |" % (
                SNG_VERSION, t, r((t, "ship", "ferry-producer", 99), (t, "ship", "syslog-ng", 99)),
                "≥ 1.5" if t == "kafka" else "≥ 1.0 (ferry with confirms, syslog-ng without)"))
    if ("validator", "zmq", "ferry-validator") in ic:
        rows.append("| ferry-validator / plain consumer + plain publisher, zmq | | %s | |"
                    % ir("validator", "zmq", "ferry-validator"))
    for key, what in (("ferry_log-8-paced", "8 threads at 5,000 calls/s each"),
                      ("ferry_log-8", "8 threads, burst into fresh memory")):
        lg = runs.get(("all", "logger", key, 0))
        if lg:
            rows.append("| `ferry_log()` call, %s, p99 (load average %.1f) | %s ns | | < 1 µs idle |"
                        % (what, lg[0][3], "{:,.0f}".format(lg[0][1])))
    return ["## Headline ratios (medians, 100 B)\n",
            "Wall clock: ferry's rate over the other program's (median of the runs). "
            "Instructions: the other program's instructions per message over ferry's "
            "(callgrind; see [Instructions per message](#instructions-per-message)). "
            "Above 1 ferry is ahead. Against the Python loops, ferry-producer is timed as a "
            "whole process (start-up, connection and close included) and, in parentheses, "
            "less the run of one line, since the loops do not time their own set-up.\n",
            "| path | wall clock | instructions | goal |",
            "|---|---:|---:|---|"] + rows + [""]


def plot(runs, out):
    data = os.path.join(out, "plot-data")
    os.makedirs(data, exist_ok=True)
    present = [t for t in TRANSPORTS if any(k[0] == t for k in runs)]
    for kind, names in (("pub", PLOT_PUB), ("sub", SUB)):
        for t in present:
            with open(os.path.join(data, "%s-%s.dat" % (kind, t)), "w") as f:
                f.write("# size " + " ".join(names) + "\n")
                for size in (100, 1024):
                    row = [stat(runs, (t, kind, v, size)) for v in names]
                    f.write("%d %s\n" % (size, " ".join("%.1f" % s[0] if s else "NaN" for s in row)))
    n_lat = sum(1 for t in present for v in ("raw", "libferry") if (t, "lat", v, 100) in runs)
    with open(os.path.join(data, "lat.dat"), "w") as f:
        f.write("# name p50 p99 p99.9\n")
        for t in present:
            for v in ("raw", "libferry"):
                if (t, "lat", v, 100) in runs:
                    f.write('"%s %s" %s\n' % (t, v, " ".join("%.1f" % stat(runs, (t, "lat", v, 100), c)[0]
                                                             for c in range(3))))
    gp = []
    for kind, names, title, fname in (("pub", PLOT_PUB, "Publish throughput", "publish.svg"),
                                      ("sub", SUB, "Consume throughput", "consume.svg")):
        gp.append("set terminal svg size 1200,420 dynamic noenhanced font 'sans,11'")
        gp.append("set output '%s'" % os.path.join(out, fname))
        gp.append("set multiplot layout 1,%d title '%s (msgs/s by message size, median)'" % (len(present), title))
        gp.append("set logscale y; set style data histograms; set style histogram clustered gap 1")
        gp.append("set style fill solid 0.8 border -1; set key top right font ',9'; set grid ytics")
        for t in present:
            gp.append("set title '%s'" % t)
            cols = ", ".join("'%s' using %d:xtic(1) title '%s'" % (
                os.path.join(data, "%s-%s.dat" % (kind, t)), i + 2, LABEL[v]) for i, v in enumerate(names))
            gp.append("plot " + cols)
        gp.append("unset multiplot")
    if not n_lat:
        subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True, check=True)
        return
    gp.append("set terminal svg size 900,420 dynamic noenhanced font 'sans,11'")
    gp.append("set output '%s'" % os.path.join(out, "latency.svg"))
    gp.append("set title 'End-to-end latency, 100 B at 1000 msgs/s (µs, median of runs)'")
    gp.append("set logscale y; set style data histograms; set style histogram clustered gap 1")
    gp.append("set style fill solid 0.8 border -1; set key top left; set grid ytics; set xtics rotate by -20")
    lat = os.path.join(data, "lat.dat")
    gp.append("plot '%s' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'p99.9'" % lat)
    subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True, check=True)


if __name__ == "__main__":
    main()
