#!/bin/sh
# promql_vs_prometheus.sh: times `orrery tools query` against Prometheus 2.42 on
# the same promtool-made blocks (>= 100k series over a few hours), per query
# class, and prints a table of median wall times and their ratios.
#
# Usage: bench/promql_vs_prometheus.sh [--orrery PATH] [--series N] [--hours H]
#          [--interval S] [--runs N] [--work DIR]
# Defaults: build/gcc/cmd/orrery, 100000 series, 3 h, 60 s, 5 runs, a temp dir
# (removed at the end unless --work is given; a given DIR keeps its data
# between runs, so a second run skips generation and import).
#
# Prometheus: curl's time_total for the request and the engine's own
# evalTotalTime from stats=all. orrery: wall time of the process, and the
# same minus the median wall time of `vector(1)` (process start + opening
# the blocks), which is closest to Prometheus's evaluation plus JSON time.
# Each class's answers are also compared once (promql_diff's comparator); a
# differing answer makes the script exit 1 after the table (the test suite's
# bench stage runs it on a tiny data set for that check).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
exec python3 - "$ROOT" "$@" <<'PY'
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = sys.argv[1]
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "promql"))
import promql_diff  # Prometheus runner and the comparator

ap = argparse.ArgumentParser(prog="promql_vs_prometheus.sh")
ap.add_argument("--orrery", default=os.path.join(ROOT, "build", "gcc", "cmd", "orrery"))
ap.add_argument("--prometheus", default="prometheus")
ap.add_argument("--promtool", default="promtool")
ap.add_argument("--series", type=int, default=100000)
ap.add_argument("--hours", type=int, default=3)
ap.add_argument("--interval", type=int, default=60)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--work")
args = ap.parse_args(sys.argv[2:])

T0 = 1700000000
END = T0 + args.hours * 3600
LES = ["0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]


def generate(path):
    """Families sized from --series: 60% request counters, 20% histogram
    series (10 per histogram: 8 buckets, _sum, _count), 20% gauges."""
    n_req = args.series * 6 // 10
    n_hist = args.series * 2 // 10 // 10
    n_gauge = args.series - n_req - n_hist * 10
    ts = ["%d" % t for t in range(T0, END + 1, args.interval)]
    nts = len(ts)
    lines = 0
    with open(path, "w", buffering=1 << 20) as f:
        f.write("# TYPE bench_requests counter\n")
        combos = [(m, c) for m in ("GET", "POST", "PUT") for c in ("200", "404", "500", "503")]
        for i in range(n_req):
            m, c = combos[i % len(combos)]
            lab = 'bench_requests_total{job="job-%d",instance="host-%05d",method="%s",code="%s"} ' % (
                (i // len(combos)) % 10, i // len(combos), m, c)
            step = 1 + (i * 7919) % 97
            f.write("".join("%s%d %s\n" % (lab, step * k + (k * k * i) % 13, ts[k]) for k in range(nts)))
            lines += nts
        f.write("# TYPE bench_latency_seconds histogram\n")
        for i in range(n_hist):
            base = 'job="job-%d",instance="host-%05d"' % (i % 10, i)
            cum = [0] * len(LES)
            out = []
            for k in range(nts):
                for b in range(len(LES)):
                    cum[b] += (b + 1) * (1 + (i + k) % 5)
                for b, le in enumerate(LES):
                    out.append('bench_latency_seconds_bucket{%s,le="%s"} %d %s\n' % (base, le, cum[b], ts[k]))
                out.append("bench_latency_seconds_sum{%s} %.3f %s\n" % (base, cum[-1] * 0.21, ts[k]))
                out.append("bench_latency_seconds_count{%s} %d %s\n" % (base, cum[-1], ts[k]))
            f.write("".join(out))
            lines += nts * (len(LES) + 2)
        f.write("# TYPE bench_gauge gauge\n")
        for i in range(n_gauge):
            lab = 'bench_gauge{instance="host-%05d",shard="s%d"} ' % (i // 4, i % 4)
            f.write("".join("%s%.2f %s\n" % (lab, ((i * 31 + k * 17) % 1000) / 7.0, ts[k]) for k in range(nts)))
            lines += nts
        f.write("# EOF\n")
    return lines


S, E, STEP = str(T0 + 1800), str(END), "60"
AT = str(END - 600)
CLASSES = [
    ("selector", "instant", 'bench_gauge{shard="s1"}'),
    ("rate", "instant", 'rate(bench_requests_total{job="job-3"}[5m])'),
    ("sum by rate", "range", "sum by (job, code) (rate(bench_requests_total[5m]))"),
    ("histogram_quantile", "range",
     "histogram_quantile(0.9, sum by (job, le) (rate(bench_latency_seconds_bucket[5m])))"),
    ("binop matching", "instant",
     'bench_requests_total{code="500"} / ignoring(code) bench_requests_total{code="200"}'),
    ("topk", "range", "topk(5, rate(bench_requests_total[5m]))"),
    ("subquery", "instant", "max_over_time(sum by (job) (rate(bench_requests_total[2m]))[1h:1m])"),
]


def qparams(mode):
    return [("time", AT)] if mode == "instant" else [("start", S), ("end", E), ("step", STEP)]


def curl(base, mode, expr):
    path = "/api/v1/query" if mode == "instant" else "/api/v1/query_range"
    cmd = ["curl", "-sS", "-o", body_path, "-w", "%{time_total}", "-G", base + path,
           "--data-urlencode", "query=" + expr, "--data-urlencode", "stats=all"]
    for k, v in qparams(mode):
        cmd += ["--data-urlencode", "%s=%s" % (k, v)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, text=True)
    with open(body_path) as f:
        body = json.load(f)
    ev = body.get("data", {}).get("stats", {}).get("timings", {}).get("evalTotalTime", float("nan"))
    return float(r.stdout) * 1000, ev * 1000, body


def orrery(blocks, mode, expr, keep=False):
    cmd = [args.orrery, "tools", "query", "--blocks=" + blocks]
    cmd += ["--%s=%s" % kv for kv in qparams(mode)] + ["--", expr]
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ms = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        sys.exit("orrery failed on %s: %s %s" % (expr, r.stdout[:300], r.stderr[:300]))
    return ms, (r.stdout.decode() if keep else None)


work = args.work or tempfile.mkdtemp(prefix="promql_bench.")
os.makedirs(work, exist_ok=True)
body_path = os.path.join(work, "body.json")
blocks = os.path.join(work, "blocks")
prom = None
try:
    if not os.path.isdir(blocks):
        om = os.path.join(work, "data.om")
        t = time.monotonic()
        n = generate(om)
        print("generated %d samples of %d series in %.0f s" % (n, args.series, time.monotonic() - t))
        t = time.monotonic()
        subprocess.run([args.promtool, "tsdb", "create-blocks-from", "openmetrics", om, blocks],
                       check=True, stdout=subprocess.DEVNULL)
        os.unlink(om)
        print("promtool create-blocks-from: %.0f s" % (time.monotonic() - t))
    pdata = os.path.join(work, "prometheus-data")
    shutil.rmtree(pdata, ignore_errors=True)
    shutil.copytree(blocks, pdata)
    prom = promql_diff.Prometheus(args.prometheus, pdata, work)
    prom.wait_ready(300)

    base_ms = statistics.median(orrery(blocks, "instant", "vector(1)")[0] for _ in range(args.runs))
    print("orrery block open + process (vector(1)): %.1f ms median of %d" % (base_ms, args.runs))
    rows = []
    for name, mode, expr in CLASSES:
        # one warm-up each, answers compared
        _, _, pbody = curl(prom.base, mode, expr)
        _, out = orrery(blocks, mode, expr, keep=True)
        pbody.get("data", {}).pop("stats", None)
        q = promql_diff.Query(0, mode, qparams(mode), expr)
        diffs = promql_diff.compare(q, json.dumps(pbody), 0, out, "")
        nser = len(pbody.get("data", {}).get("result", []))
        pw, pe, ow = [], [], []
        for _ in range(args.runs):
            w, e, _ = curl(prom.base, mode, expr)
            pw.append(w)
            pe.append(e)
            ow.append(orrery(blocks, mode, expr)[0])
        rows.append((name, mode, nser, statistics.median(pw), statistics.median(pe),
                     statistics.median(ow), "yes" if not diffs else "NO: " + diffs[0][:60]))
    print()
    print("%-19s %-7s %7s %10s %10s %10s %10s %7s %7s  %s" % (
        "class", "mode", "series", "prom wall", "prom eval", "orr wall", "orr -open",
        "wall x", "net x", "same answer"))
    for name, mode, nser, pw, pe, ow, same in rows:
        net = max(ow - base_ms, 0.0)
        print("%-19s %-7s %7d %8.1fms %8.1fms %8.1fms %8.1fms %7.2f %7.2f  %s" % (
            name, mode, nser, pw, pe, ow, net, ow / pw, net / pw, same))
    print("\nwall x = orrery wall / prometheus wall (curl time_total); net x = (orrery wall - "
          "vector(1) wall) / prometheus wall; < 1 means orrery is faster. Medians of %d runs; "
          "instant at %s, range %s..%s step %s." % (args.runs, AT, S, E, STEP))
    bad = [r[0] for r in rows if r[-1] != "yes"]
    if bad:
        sys.exit("answers differ from Prometheus: " + ", ".join(bad))
finally:
    if prom:
        prom.stop()
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
PY
