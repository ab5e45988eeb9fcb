#!/usr/bin/env python3
"""stacked_pushdown.py: a global gateway over two regional gateways pushes
aggregations down through gRPC thanos.Query (issue 16; gateway/pushdown.c,
gateway/queryapi.c), so only aggregated series cross between regions.

Two regions, eu and us, each a Prometheus 2.42 (external labels region=...,
replica=a) with a sidecar and a regional gateway over it; eu has an HA
twin (a second Prometheus over a copy of its data, replica=b, and its
sidecar), so the gateways deduplicate along --query.replica-label=replica. The counters
http_requests_total{job,instance} differ per region (made with promtool from
OpenMetrics text). A third Prometheus holds both regions' series with region
as a plain label: the answer over all data. Two global gateways over the two
regional ones: --query.mode=local (raw series cross) and
--query.mode=distributed. A user then sees:
  - sum by (region) (rate(http_requests_total[5m])) over a range, and as an
    instant query: the same answer from both global gateways and from the
    Prometheus over all data;
  - the distributed gateway asked each region one QueryRange (Query for the
    instant one), the local one none (orrery_gateway_endpoint_requests_total
    {method="QueryRange"}), and it received far fewer bytes from the regions
    (orrery_gateway_endpoint_received_bytes_total{endpoint}, before and after:
    at least --min-ratio times fewer; the counts are printed);
  - sum by (job), max by (region, job), topk by (region) and count by
    (instance) with groups spanning both regions: equal in both modes and to
    Prometheus; sum without (instance) (not pushed) too;
  - with dedup=false, eu's replicas both count: the two modes still agree
    (the region is asked not to deduplicate either);
With --bench, the range query is also timed on both global gateways, A/B
alternately, and the medians printed (bench/stacked_pushdown.sh).
Usage: stacked_pushdown.py --orrery BIN --prometheus BIN --promtool BIN
       [--series N] [--minutes M] [--min-ratio R] [--bench ROUNDS]"""
import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
from gateway_common import (Proc, check, finish, free_port, http, same, series,  # noqa: E402
                            stop_all, stores_up, wait_for, wait_ready)

STEP = 60  # seconds between samples
REGIONS = ("eu", "us")


def write_om(path, regions, per_region, minutes, t0, with_region):
    """OpenMetrics text of http_requests_total for |regions|: per_region
    series each, 5 jobs, one sample per STEP over |minutes|."""
    with open(path, "w") as f:
        f.write("# HELP http_requests Requests.\n# TYPE http_requests counter\n")
        for k in range(minutes * 60 // STEP + 1):
            t = t0 + k * STEP
            for region in regions:
                ri = REGIONS.index(region)
                rl = 'region="%s",' % region if with_region else ""
                for i in range(per_region):
                    # Distinct slopes per series and region; a reset now and then.
                    v = ((i % 13) + 1 + ri) * (k % 40) + (i % 7)
                    f.write('http_requests_total{%sjob="j%d",instance="%d"} %d %d\n'
                            % (rl, i % 5, i // 5, v, t))
        f.write("# EOF\n")


def make_blocks(promtool, work, name, regions, per_region, minutes, t0, with_region):
    om = os.path.join(work, name + ".om")
    write_om(om, regions, per_region, minutes, t0, with_region)
    blocks = os.path.join(work, name)
    r = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", om, blocks],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    os.unlink(om)
    if r.returncode != 0:
        raise RuntimeError("promtool: " + r.stdout)
    return blocks


def start_prom(args, work, name, data, ext):
    cfg = os.path.join(work, name + ".yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1h\n")
        if ext:
            f.write("  external_labels: %s\n" % json.dumps(ext))
        f.write("scrape_configs: []\n")
    port = free_port()
    p = Proc(name, [args.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
                    "--storage.tsdb.retention.time=100y",
                    "--web.listen-address=127.0.0.1:%d" % port], work)
    p.url = "http://127.0.0.1:%d" % port
    return p


def start(args, work, name, argv):
    gp, hp = free_port(), free_port()
    p = Proc(name, [args.orrery] + argv + ["--http-address=127.0.0.1:%d" % hp,
                                           "--grpc-address=127.0.0.1:%d" % gp], work)
    p.clean = True
    p.url, p.grpc = "http://127.0.0.1:%d" % hp, "127.0.0.1:%d" % gp
    return p


def metric(body, name, **want):
    """The sum of |name|'s samples whose labels include |want|."""
    total = 0.0
    for line in body.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line[:line.rindex("}")]))
        if all(labels.get(k) == v for k, v in want.items()):
            total += float(line.split()[-1])
    return total


def counters(gw, regions):
    st, body, _ = http("GET", gw.url + "/metrics", timeout=10)
    out = {}
    for r in regions:
        out[r.grpc] = (metric(body, "orrery_gateway_endpoint_received_bytes_total",
                              endpoint=r.grpc),
                       metric(body, "orrery_gateway_endpoint_requests_total", endpoint=r.grpc,
                              method="QueryRange") +
                       metric(body, "orrery_gateway_endpoint_requests_total", endpoint=r.grpc,
                              method="Query"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--series", type=int, default=200, help="series in all, half per region")
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--min-ratio", type=float, default=10.0)
    ap.add_argument("--bench", type=int, default=0, help="timed rounds per mode")
    args = ap.parse_args()
    per = max(args.series // 2, 5)
    work = tempfile.mkdtemp(prefix="stacked_pushdown.")
    t0 = (int(time.time()) // 3600 - 4) * 3600
    try:
        t_gen = time.monotonic()
        data = {r: make_blocks(args.promtool, work, "prom-" + r, (r,), per, args.minutes, t0,
                               False) for r in REGIONS}
        data["all"] = make_blocks(args.promtool, work, "prom-all", REGIONS, per, args.minutes,
                                  t0, True)
        print("data: %d series per region, %d min at %ds (made in %.1fs)"
              % (per, args.minutes, STEP, time.monotonic() - t_gen), flush=True)
        shutil.copytree(data["eu"], os.path.join(work, "prom-eu-b"))
        prom = {r: start_prom(args, work, "prom-" + r, data[r], {"region": r, "replica": "a"})
                for r in REGIONS}
        prom["eu-b"] = start_prom(args, work, "prom-eu-b", os.path.join(work, "prom-eu-b"),
                                  {"region": "eu", "replica": "b"})
        prom["all"] = start_prom(args, work, "prom-all", data["all"], None)
        for p in prom.values():
            wait_ready(p.url + "/-/ready", p, 120)
        side = {r: start(args, work, "sidecar-" + r,
                         ["sidecar", "--prometheus.url=" + prom[r].url,
                          "--tsdb.path=" + os.path.join(work, "prom-" + r)])
                for r in REGIONS + ("eu-b",)}
        for s in side.values():
            wait_ready(s.url + "/-/ready", s)
        reg = {r: start(args, work, "gateway-" + r,
                        ["gateway", "--query.replica-label=replica"] +
                        ["--endpoint=" + side[k].grpc for k in side if k.startswith(r)])
               for r in REGIONS}
        for r, g in reg.items():
            wait_ready(g.url + "/-/ready", g)
            wait_for("the region's sidecars up",
                     lambda g=g, r=r: stores_up(g.url, 2 if r == "eu" else 1), 60)
        regions = [reg[r] for r in REGIONS]
        ends = ["--endpoint=" + g.grpc for g in regions]
        rl = ["--query.replica-label=replica"]
        local = start(args, work, "global-local", ["gateway", "--query.mode=local"] + rl + ends)
        dist = start(args, work, "global-distributed",
                     ["gateway", "--query.mode=distributed"] + rl + ends)
        for g in (local, dist):
            wait_ready(g.url + "/-/ready", g)
            wait_for("both regions up", lambda g=g: stores_up(g.url, 2), 60)

        end = t0 + args.minutes * 60
        rng = {"start": str(end - min(30, args.minutes // 2) * 60), "end": str(end), "step": "60"}
        inst = {"time": str(end - 120)}

        def ask(url, q, params=rng, path="/api/v1/query_range"):
            st, body, _ = http("GET", url + path, dict(params, query=q), timeout=300)
            return series(body) if st == 200 else None

        def measured(gw, q, params=rng, path="/api/v1/query_range"):
            before = counters(gw, regions)
            t = time.monotonic()
            res = ask(gw.url, q, params, path)
            took = time.monotonic() - t
            after = counters(gw, regions)
            return (res, sum(after[k][0] - before[k][0] for k in after),
                    sum(after[k][1] - before[k][1] for k in after), took)

        q = "sum by (region) (rate(http_requests_total[5m]))"
        want = ask(prom["all"].url, q)
        lres, lbytes, lcalls, ltook = measured(local, q)
        dres, dbytes, dcalls, dtook = measured(dist, q)
        check("%s: both regions, equal to Prometheus over all data (local mode)" % q,
              want is not None and len(want) == 2 and same(lres, want),
              json.dumps(lres)[:300])
        check("the same answer in distributed mode", same(dres, want), json.dumps(dres)[:300])
        check("distributed: one QueryRange to each region; local: none",
              dcalls == 2 and lcalls == 0, "%r %r" % (dcalls, lcalls))
        ratio = lbytes / max(dbytes, 1)
        print("bytes from the regions: local %d, distributed %d (%.0fx fewer); "
              "time: local %.3fs, distributed %.3fs" % (lbytes, dbytes, ratio, ltook, dtook),
              flush=True)
        check("distributed receives at least %gx fewer bytes from the regions" % args.min_ratio,
              dbytes > 0 and ratio >= args.min_ratio, "%d vs %d" % (dbytes, lbytes))

        iw = ask(prom["all"].url, q, inst, "/api/v1/query")
        ires, _, icalls, _ = measured(dist, q, inst, "/api/v1/query")
        check("instant %s: one Query to each region, equal to Prometheus" % q,
              icalls == 2 and iw is not None and same(ires, iw), json.dumps(ires)[:300])

        cases = [
            ("sum by (job) (rate(http_requests_total[5m]))", rng, "/api/v1/query_range", True),
            ("max by (region, job) (increase(http_requests_total[10m]))", inst, "/api/v1/query",
             True),
            ("topk by (region) (3, rate(http_requests_total[5m]))", rng, "/api/v1/query_range",
             True),
            ("count by (instance) (rate(http_requests_total{job=\"j1\"}[5m]))", rng,
             "/api/v1/query_range", True),
            ("sum without (instance) (rate(http_requests_total[5m]))", rng,
             "/api/v1/query_range", False),
        ]
        for cq, params, path, pushed in cases:
            w = ask(prom["all"].url, cq, params, path)
            lr, _, _, _ = measured(local, cq, params, path)
            dr, _, dc, _ = measured(dist, cq, params, path)
            check("%s: %s, equal in both modes and to Prometheus"
                  % (cq, "pushed down" if pushed else "not pushed down"),
                  w is not None and same(lr, w) and same(dr, w) and (dc == 2) == pushed,
                  "%d calls; %s vs %s" % (dc, json.dumps(dr)[:200], json.dumps(w)[:200]))

        nd = dict(rng, dedup="false")
        lr, _, _, _ = measured(local, q, nd)
        dr, _, dc, _ = measured(dist, q, nd)
        eu = [v for k, v in (lr or {}).items() if '"eu"' in k]
        eu_want = [v for k, v in want.items() if '"eu"' in k]
        check("dedup=false: eu's two replicas both counted, pushed down, the same in both modes",
              dc == 2 and same(lr, dr) and len(eu) == 1 and
              math.isclose(eu[0][0][1], 2 * eu_want[0][0][1], rel_tol=1e-9),
              "%s vs %s" % (json.dumps(dr)[:200], json.dumps(lr)[:200]))

        if args.bench:
            times = {"local": [], "distributed": []}
            for _ in range(args.bench):  # alternately, so both see the same load
                for name, g in (("local", local), ("distributed", dist)):
                    r, _, _, took = measured(g, q)
                    check("bench round (%s): same answer" % name, same(r, want))
                    times[name].append(took)
            for name in times:
                v = times[name]
                print("bench %s: median %.3fs (min %.3f, max %.3f) over %d rounds"
                      % (name, statistics.median(v), min(v), max(v), len(v)), flush=True)
            print("bench: bytes ratio %.0fx, time ratio %.1fx"
                  % (ratio, statistics.median(times["local"]) /
                     max(statistics.median(times["distributed"]), 1e-9)), flush=True)
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
