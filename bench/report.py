"""Write bench/results/latest.md and the SVG plots from a `make bench` run.

Usage: report.py RUNS_TSV OUT_DIR WALL_SECONDS [NOTE]
NOTE, when given, is printed under the heading (e.g. which parts were rerun).
Each figure is the median of the runs with their min and max; the analysis
in bench/findings.md is appended.
"""
import os
import platform
import statistics
import subprocess
import sys
import time

TRANSPORTS = ["zmq", "amqp", "kafka"]
PUB = ["raw", "libferry", "ferry-producer", "ferry-producer-steady", "python-loop",
       "python-per-message"]
PLOT_PUB = ["raw", "libferry", "ferry-producer", "ferry-producer-steady", "python-loop"]
SUB = ["raw", "aggregator", "aggregator-no-fsync"]
FERRY = {"libferry", "ferry-producer", "ferry-producer-steady", "aggregator", "aggregator-no-fsync"}
LABEL = {
    "raw": "plain library (C)",
    "libferry": "libferry API (ferry_pub_send)",
    "ferry-producer": "ferry-producer (stdin lines)",
    "ferry-producer-steady": "ferry-producer, less start-up",
    "python-loop": "Python, one connection",
    "python-per-message": "Python, one process per message",
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


def main():
    tsv, out, wall = sys.argv[1], sys.argv[2], sys.argv[3]
    runs = load(tsv)
    md = []
    w = md.append
    w("# ferry benchmarks: latest run\n")
    w("Written by `make bench` on %s (%s, %d CPUs), wall time of the run %s s. "
      "Every figure is the median of %s runs, with (min–max). Runs of the "
      "variants alternate within each round, so slow phases of the shared "
      "machine hit all of them.\n" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                      platform.machine(), os.cpu_count() or 0, wall,
                                      max((len(v) for v in runs.values()), default=0)))
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
      "JSON log envelope, about 190 bytes larger on the wire. Latency: 100-byte "
      "messages at 1000 msgs/s after a warm-up, send time stamped in the body, "
      "producer and consumer threads in one process (Kafka consumers with "
      "fetch.wait.max.ms 5).\n")

    headline = []
    for t in TRANSPORTS:
        if not any(k[0] == t for k in runs):
            continue
        w("## %s (%s, %s)\n" % (t, LIB[t], PYLIB[t]))
        w("### Publish\n")
        w("| size | program | msgs/s | MB/s | ferry / raw | ferry / Python loop |")
        w("|---:|---|---:|---:|---:|---:|")
        for size in (100, 1024):
            raw = stat(runs, (t, "pub", "raw", size))
            py = stat(runs, (t, "pub", "python-loop", size))
            for v in PUB:
                s = stat(runs, (t, "pub", v, size))
                if not s:
                    continue
                mb = s[0] * size / 1e6
                w("| %d | %s | %s | %s | %s | %s |" % (
                    size, LABEL[v], cell(s), fmt(mb),
                    ratio(s, raw) if v in FERRY else "", ratio(s, py) if v in FERRY else ""))
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
        g = lambda kind, v, size: stat(runs, (t, kind, v, size))
        headline.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            t,
            ratio(g("pub", "libferry", 100), g("pub", "raw", 100)),
            ratio(g("pub", "libferry", 1024), g("pub", "raw", 1024)),
            ratio(g("pub", "ferry-producer", 100), g("pub", "raw", 100)),
            ratio(g("pub", "ferry-producer-steady", 100), g("pub", "raw", 100)),
            ratio(g("sub", "aggregator", 100), g("sub", "raw", 100)),
            ratio(g("sub", "aggregator-no-fsync", 100), g("sub", "raw", 100)),
            ratio(g("pub", "ferry-producer", 100), g("pub", "python-loop", 100))))

    head = ["## Headline ratios (medians)\n",
            "| transport | libferry / raw, 100 B | libferry / raw, 1 KiB | ferry-producer / raw, 100 B "
            "| ferry-producer less start-up / raw, 100 B "
            "| aggregator (fsync) / raw consumer, 100 B | aggregator --no-fsync / raw, 100 B "
            "| ferry-producer / Python loop, 100 B |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"] + headline + [""]
    plots = ["## Plots\n", "![publish throughput](publish.svg)\n",
             "![consume throughput](consume.svg)\n", "![latency](latency.svg)\n"]
    top = 4 if len(sys.argv) > 4 and sys.argv[4] else 3
    md = md[:top] + head + plots + md[top:]
    findings = os.path.join(os.path.dirname(os.path.abspath(__file__)), "findings.md")
    if os.path.exists(findings):
        with open(findings) as f:
            md.append(f.read().rstrip("\n"))
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    plot(runs, out)


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
