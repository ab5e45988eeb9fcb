#!/bin/sh
# store_vs_prometheus.sh: latency of queries through `orrery gateway` +
# `orrery store` over a FILESYSTEM bucket against the same queries sent to
# Prometheus 2.42 holding the same blocks (written by the tsdb writer:
# tests/integration/store/store_fixture.c), cold and warm, with ratios
# (gateway+store / Prometheus; < 1: we are faster).
#   cold: both restarted before each query (the store's index cache empty,
#         Prometheus freshly opened; the OS page cache is left alone), one run;
#   warm: the median of N runs after that.
# Each query's answers are compared once (series and values, the store's
# external label removed); a differing answer is marked "DIFF" and makes
# the script exit 1 after the table (the test suite's bench stage runs --smoke).
#
# Usage: bench/store_vs_prometheus.sh [--build DIR] [--series N] [--blocks N] [--runs N] [--smoke]
# Defaults: build/gcc, 100000 series x 12 blocks of 2h, 5 runs. --smoke: 1000
# series x 2 blocks, 1 run (checks the script works; the numbers mean little).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
exec python3 - "$ROOT" "$@" <<'PY'
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = sys.argv[1]
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "store"))
import store_e2e as e2e  # noqa: E402  processes, HTTP, readiness
import promql_diff as pd  # noqa: E402

ap = argparse.ArgumentParser(prog="store_vs_prometheus.sh")
ap.add_argument("--build", default=os.path.join(ROOT, "build", "gcc"))
ap.add_argument("--prometheus", default="prometheus")
ap.add_argument("--series", type=int, default=100000)
ap.add_argument("--blocks", type=int, default=12)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--smoke", action="store_true")
ap.add_argument("--work")
args = ap.parse_args(sys.argv[2:])
if args.smoke:
    args.series, args.blocks, args.runs = 1000, 2, 1
orrery = os.path.join(args.build, "cmd", "orrery")
fixture = os.path.join(args.build, "tests", "integration", "store_fixture")
for b in (orrery, fixture):
    if not os.access(b, os.X_OK):
        sys.exit("store_vs_prometheus: %s not built (cmake --build %s)" % (b, args.build))

T0 = 1700000000
END = T0 + 7200 * args.blocks
QUERIES = [
    ("instant", "count(fixture_metric)", T0 + 3600),
    ("instant", 'fixture_metric{instance="i-%08d"}' % (args.series // 2), T0 + 3600),
    ("instant", 'sum by (job) (fixture_metric)', END - 3600),
    ("range", 'fixture_metric{instance="i-%08d"}' % (args.series // 3), None),
    ("range", 'sum(max_over_time(fixture_metric{job="job-3"}[2h]))', None),
    ("range", 'count(fixture_metric{job=~"job-[12]"})', None),
]

work = args.work or tempfile.mkdtemp(prefix="store_bench.")
os.makedirs(work, exist_ok=True)
procs = []
try:
    bucket = os.path.join(work, "bucket")
    if not os.path.isdir(bucket):
        os.makedirs(bucket)
        subprocess.run([fixture, bucket, str(args.series), str(args.blocks), "8"], check=True,
                       stdout=subprocess.DEVNULL)
    yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bucket
    pdata = os.path.join(work, "prom")

    def start_prom():
        # Prometheus opens the blocks in place of a copy (it may write into its dir).
        if not os.path.isdir(pdata):
            shutil.copytree(bucket, pdata)
        p = pd.Prometheus(args.prometheus, pdata, work, ["--query.max-samples=500000000"])
        p.wait_ready()
        return p

    def start_pair():
        st = e2e.start_store(orrery, work, yaml, ["--log.level=warn"], "store")
        gw = e2e.start_gateway(orrery, work, [st.grpc], 1, ["--log.level=warn", "--query.max-samples=500000000"])
        return st, gw

    def params(mode, q, t):
        if mode == "instant":
            return "/api/v1/query", [("query", q), ("time", str(t))]
        step = max(60, (END - T0) // 250)
        return "/api/v1/query_range", [("query", q), ("start", str(T0)), ("end", str(END)), ("step", str(step))]

    def timed(base, path, p):
        t0 = time.perf_counter()
        code, body = e2e.get(base, path, p)
        return time.perf_counter() - t0, code, body

    print("data: %d series x %d blocks of 2h (store_fixture); warm: median of %d runs"
          % (args.series, args.blocks, args.runs))
    print("%-70s %9s %9s %6s %9s %9s %6s" % ("query", "prom cold", "gw cold", "ratio", "prom warm", "gw warm", "ratio"))
    cold_r, warm_r = [], []
    ndiff = 0
    for mode, q, t in QUERIES:
        path, p = params(mode, q, t)
        prom = start_prom()
        st, gw = start_pair()
        procs[:] = [prom, st, gw]
        tpc, _, pb = timed(prom.base, path, p)
        tgc, code, gb = timed(gw.base, path, p)
        diff = e2e.results(pb) != e2e.results(gb, drop=("fixture",))
        ndiff += bool(diff)
        tpw = statistics.median(timed(prom.base, path, p)[0] for _ in range(args.runs))
        tgw = statistics.median(timed(gw.base, path, p)[0] for _ in range(args.runs))
        cold_r.append(tgc / tpc)
        warm_r.append(tgw / tpw)
        print("%-70s %9.1f %9.1f %6.2f %9.1f %9.1f %6.2f%s" % (
            ("%s %s" % (mode, q))[:70], tpc * 1e3, tgc * 1e3, tgc / tpc, tpw * 1e3, tgw * 1e3, tgw / tpw,
            "  DIFF" if diff else ""))
        for x in reversed(procs):
            x.stop()
        procs[:] = []
    print("geometric mean ratio: cold %.2f, warm %.2f"
          % (statistics.geometric_mean(cold_r), statistics.geometric_mean(warm_r)))
    if ndiff:
        sys.exit("%d of %d queries answered differently" % (ndiff, len(QUERIES)))
finally:
    for x in reversed(procs):
        x.stop()
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
PY
