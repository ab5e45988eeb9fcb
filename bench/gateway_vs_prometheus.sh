#!/bin/sh
# gateway_vs_prometheus.sh: latency of queries through `orrery sidecar` +
# `orrery gateway` against the same queries sent to Prometheus 2.42 directly,
# on the same data (the PromQL differential dataset made into blocks by
# promtool, scaled with --scale), and prints per query the median wall time
# of N runs on each path and their ratio (gateway / Prometheus).
#
# Usage: bench/gateway_vs_prometheus.sh [--orrery PATH] [--scale N] [--runs N] [--work DIR]
# Defaults: build/gcc/cmd/orrery, scale 300 (about 18k series), 7 runs, a temp dir.
# Each query's answers are compared once (promql_diff's comparator, with the
# endpoint's external label removed); a differing answer is marked "DIFF"
# and makes the script exit 1 after the table (the test suite's bench stage
# runs it at --scale 1 --runs 1 for that check).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
exec python3 - "$ROOT" "$@" <<'PY'
import argparse, json, os, shutil, statistics, sys, tempfile, time

ROOT = sys.argv[1]
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "promql"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "gateway"))
import promql_diff  # noqa: E402
import gateway_e2e as e2e  # noqa: E402  processes, HTTP, readiness, the stack

ap = argparse.ArgumentParser(prog="gateway_vs_prometheus.sh")
ap.add_argument("--orrery", default=os.path.join(ROOT, "build", "gcc", "cmd", "orrery"))
ap.add_argument("--prometheus", default="prometheus")
ap.add_argument("--promtool", default="promtool")
ap.add_argument("--scale", type=int, default=300)
ap.add_argument("--runs", type=int, default=7)
ap.add_argument("--work")
args = ap.parse_args(sys.argv[2:])

T0, END = 1700000000, 1700010800
QUERIES = [
    ("instant", "up"),
    ("instant", "http_requests_total"),
    ("instant", "sum by (job) (rate(http_requests_total[5m]))"),
    ("instant", "topk(5, sum by (instance) (rate(node_cpu_seconds_total[5m])))"),
    ("instant", "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"),
    ("range", "sum by (job) (rate(http_requests_total[5m]))"),
    ("range", "avg(node_cpu_seconds_total)"),
    ("range", "max_over_time(temperature_celsius[10m])"),
    ("range", "count(http_requests_total)"),
    ("range", "http_requests_total{code=\"500\"}"),
]

work = args.work or tempfile.mkdtemp(prefix="gw_bench.")
os.makedirs(work, exist_ok=True)
try:
    prom, side, gw = e2e.bench_stack(args, work, args.scale, "bench")

    def strip_region(body):
        """The gateway adds the endpoint's external label region="bench"; Prometheus does not."""
        try:
            d = json.loads(body)
        except ValueError:
            return body
        if d.get("status") == "error":
            d["error"] = d.get("error", "").replace(', region="bench"', "").replace('region="bench", ', "")
        for r in (d.get("data") or {}).get("result") or []:
            if isinstance(r, dict) and isinstance(r.get("metric"), dict):
                r["metric"].pop("region", None)
        return json.dumps(d)

    def params(mode, q):
        if mode == "instant":
            return "/api/v1/query", {"query": q, "time": str(T0 + 5400)}
        return "/api/v1/query_range", {"query": q, "start": str(T0), "end": str(END), "step": "60"}

    def timed(url, path, p):
        t0 = time.perf_counter()
        st, _, body = e2e.http("POST", url + path, p, timeout=300)
        return time.perf_counter() - t0, st, body

    nseries = json.loads(e2e.http("GET", prom.url + "/api/v1/query",
                                  {"query": "count({__name__=~\".+\"})", "time": str(T0 + 5400)})[2]
                         )["data"]["result"][0]["value"][1]
    print("data: %s series (gen_data --series-scale %d), %d runs each, median wall time per request"
          % (nseries, args.scale, args.runs))
    print("%-90s %10s %10s %7s" % ("query", "prom ms", "gw ms", "ratio"))
    ratios = []
    ndiff = 0
    for mode, q in QUERIES:
        path, p = params(mode, q)
        # warm both paths once and compare the answers
        _, _, pb = timed(prom.url, path, p)
        _, st, gb = timed(gw.url, path, p)
        qq = promql_diff.Query(0, mode, [], q)
        diff = promql_diff.compare(qq, strip_region(pb), 0 if st == 200 else 1, strip_region(gb) + "\n", "")
        if diff:
            ndiff += 1
            print("DIFF %s %s: %s" % (mode, q, diff[0][:300]), file=sys.stderr)
        tp = statistics.median(timed(prom.url, path, p)[0] for _ in range(args.runs))
        tg = statistics.median(timed(gw.url, path, p)[0] for _ in range(args.runs))
        ratios.append(tg / tp)
        print("%-90s %10.1f %10.1f %7.2f%s" % ("%s %s" % (mode, q), tp * 1e3, tg * 1e3, tg / tp,
                                             "  DIFF" if diff else ""))
    print("geometric mean ratio %.2f" % statistics.geometric_mean(ratios))
    if ndiff:
        sys.exit("%d of %d queries answered differently" % (ndiff, len(QUERIES)))
finally:
    for p in reversed(e2e.procs):
        p.stop()
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
PY
