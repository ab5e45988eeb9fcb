#!/usr/bin/env python3
"""pushdown.py: aggregations pushed down to --endpoint.promql sources move
fewer bytes and answer the same (issue 13; gateway/pushdown.c).

One Prometheus 2.42 holds 1h of 20 counters http_requests_total{job=api|web,
instance=0..9} (made with promtool from OpenMetrics text). One gateway has
it twice, as --endpoint.promql=<prom>;region=eu and ...;region=us (two
"regions" whose series differ by their external label). A user then sees:
  - sum by (region, job) (rate(http_requests_total[5m])) over the hour at a
    1m step: each region's answer equals Prometheus's own sum by (job)
    (...), and each source was asked one query_range
    (orrery_gateway_promql_source_pushdowns_total +1);
  - the same answer from sum without (instance) (...), which is not pushed
    down (without): it reads every raw sample, many times the bytes
    (orrery_gateway_promql_source_received_bytes_total{endpoint} before and
    after each query; the counts are printed);
  - count, min, max, group, topk and bottomk by (region, ...), and sum by
    (job) and topk(4, ...) whose groups span both sources (partials merged,
    or picked again), equal the raw plan's answers (without: not pushed);
  - a third source with region=eu (zone=b) makes the eu series ambiguous:
    only the us source is pushed to, and the answers are still right;
  - a pushed source that cannot be reached: a warning naming it and the
    others' answer, or an error naming it with partial_response=false.
Usage: pushdown.py --orrery BIN --prometheus BIN --promtool BIN"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
from gateway_common import (Proc, check, finish, free_port, http, same, series,  # noqa: E402
                            stop_all, stores_up, wait_for, wait_ready)

STEP = 15  # seconds between samples
HOUR = 3600


def make_blocks(promtool, work, t0):
    om = os.path.join(work, "data.om")
    with open(om, "w") as f:
        f.write("# HELP http_requests Requests.\n# TYPE http_requests counter\n")
        for job in ("api", "web"):
            for inst in range(10):
                v = 0.0
                for k in range(HOUR // STEP + 1):
                    v += (inst + 1) * (2 if job == "api" else 3) + (k % 7)
                    f.write('http_requests_total{job="%s",instance="%d"} %g %d\n'
                            % (job, inst, v, t0 + k * STEP))
        f.write("# EOF\n")
    blocks = os.path.join(work, "data")
    r = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", om, blocks],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("promtool: " + r.stdout)
    return blocks


def metric(body, name, endpoint):
    for line in body.splitlines():
        if line.startswith(name + "{") and '"%s"' % endpoint in line:
            return float(line.split()[-1])
    return 0.0


def counters(gw, eps):
    st, body, _ = http("GET", gw.url + "/metrics", timeout=10)
    return {e: (metric(body, "orrery_gateway_promql_source_received_bytes_total", e),
                metric(body, "orrery_gateway_promql_source_pushdowns_total", e)) for e in eps}


def with_region(res, region):
    out = {}
    for k, v in (res or {}).items():
        m = json.loads(k)
        m["region"] = region
        out[json.dumps(m, sort_keys=True)] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--promtool", required=True)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="promql_src_pushdown.")
    t0 = (int(time.time()) // HOUR - 3) * HOUR
    try:
        data = make_blocks(args.promtool, work, t0)
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
        pport = free_port()
        prom = Proc("prometheus", [args.prometheus, "--config.file=" + cfg,
                                   "--storage.tsdb.path=" + data,
                                   "--storage.tsdb.retention.time=100y",
                                   "--web.listen-address=127.0.0.1:%d" % pport], work)
        purl = "http://127.0.0.1:%d" % pport
        wait_ready(purl + "/-/ready", prom)

        # Two sources on the one Prometheus, told apart by their URLs (the
        # metrics are per URL) and their external labels.
        eps = [purl, "http://localhost:%d" % pport]
        hp, gp = free_port(), free_port()
        gw = Proc("gateway", [args.orrery, "gateway", "--http-address=127.0.0.1:%d" % hp,
                              "--grpc-address=127.0.0.1:%d" % gp, "--log.level=debug",
                              "--endpoint.promql=%s;region=eu" % eps[0],
                              "--endpoint.promql=%s;region=us" % eps[1]], work)
        gw.clean = True
        gw.url = "http://127.0.0.1:%d" % hp
        wait_ready(gw.url + "/-/ready", gw)
        wait_for("both sources up", lambda: stores_up(gw.url, 2), 60)

        rng = {"start": str(t0 + 600), "end": str(t0 + HOUR), "step": "60"}

        def ask(url, q, params=rng, path="/api/v1/query_range"):
            st, body, _ = http("GET", url + path, dict(params, query=q), timeout=120)
            return series(body) if st == 200 else None

        def measured(q, params=rng, path="/api/v1/query_range"):
            before = counters(gw, eps)
            res = ask(gw.url, q, params, path)
            after = counters(gw, eps)
            return (res, {e: after[e][0] - before[e][0] for e in eps},
                    {e: after[e][1] - before[e][1] for e in eps})

        pushed_q = "sum by (region, job) (rate(http_requests_total[5m]))"
        raw_q = "sum without (instance) (rate(http_requests_total[5m]))"
        pushed, pbytes, pcount = measured(pushed_q)
        raw, rbytes, rcount = measured(raw_q)
        direct = ask(purl, "sum by (job) (rate(http_requests_total[5m]))")
        want = dict(with_region(direct, "eu"), **with_region(direct, "us"))
        check("pushed sum by (region, job): 4 series, each region equal to Prometheus's own",
              pushed is not None and len(pushed) == 4 and same(pushed, want),
              json.dumps(pushed)[:300])
        check("pushed: one query_range to each source", all(pcount[e] == 1 for e in eps),
              repr(pcount))
        check("sum without (instance) is not pushed and answers the same",
              all(rcount[e] == 0 for e in eps) and same(raw, pushed), repr(rcount))
        for e in eps:
            print("bytes from %s: pushed %d, unpushed %d (%.1fx)"
                  % (e, pbytes[e], rbytes[e], rbytes[e] / max(pbytes[e], 1)), flush=True)
        check("pushed moves fewer bytes than the unpushed plan (each source, 10x at least)",
              all(0 < pbytes[e] * 10 < rbytes[e] for e in eps), "%r vs %r" % (pbytes, rbytes))

        inst = {"time": str(t0 + 1800)}
        cases = [
            ("count by (region, instance) (rate(http_requests_total[5m]))",
             "count without (job) (rate(http_requests_total[5m]))", rng, "/api/v1/query_range"),
            ("min by (region, job) (irate(http_requests_total[2m]))",
             "min without (instance) (irate(http_requests_total[2m]))", rng, "/api/v1/query_range"),
            ("max by (region, job) (increase(http_requests_total[10m]))",
             "max without (instance) (increase(http_requests_total[10m]))", inst, "/api/v1/query"),
            ("group by (region, job) (rate(http_requests_total{instance=~\"[1-3]\"}[5m]))",
             "group without (instance) (rate(http_requests_total{instance=~\"[1-3]\"}[5m]))", rng,
             "/api/v1/query_range"),
            ("topk by (region) (3, rate(http_requests_total[5m]))",
             "topk without (instance, job) (3, rate(http_requests_total[5m]))", rng,
             "/api/v1/query_range"),
            ("bottomk by (region, job) (2, irate(http_requests_total[2m]))",
             "bottomk without (instance) (2, irate(http_requests_total[2m]))", inst,
             "/api/v1/query"),
            # groups that span both sources: partials merged (topk: picked
            # again) in the gateway
            ("topk(4, rate(http_requests_total[5m]))",
             "topk without (instance, job, region) (4, rate(http_requests_total[5m]))", rng,
             "/api/v1/query_range"),
            ("sum by (job) (rate(http_requests_total[5m]))",
             "sum without (instance, region) (rate(http_requests_total[5m]))", inst,
             "/api/v1/query"),
            ("count by (job) (rate(http_requests_total{region=\"eu\"}[5m]))",
             "count without (instance, region) (rate(http_requests_total{region=\"eu\"}[5m]))",
             rng, "/api/v1/query_range"),
        ]
        for pq, rq, params, path in cases:
            p, _, pc = measured(pq, params, path)
            r, _, rc = measured(rq, params, path)
            check("%s: pushed (%d queries) and equal to the raw plan" % (pq, sum(pc.values())),
                  sum(pc.values()) >= 1 and sum(rc.values()) == 0 and p and same(p, r),
                  "%s vs %s" % (json.dumps(p)[:200], json.dumps(r)[:200]))
        gw.stop()

        # A third source with region=eu (and zone=b): the eu series are no
        # longer told apart by an external label, so only us is pushed to.
        hp, gp = free_port(), free_port()
        gw = Proc("gateway-3", [args.orrery, "gateway", "--http-address=127.0.0.1:%d" % hp,
                                "--grpc-address=127.0.0.1:%d" % gp,
                                "--endpoint.promql=%s;region=eu" % eps[0],
                                "--endpoint.promql=%s;region=us" % eps[1],
                                "--endpoint.promql=%s;region=eu,zone=b" % eps[0]], work)
        gw.clean = True
        gw.url = "http://127.0.0.1:%d" % hp
        wait_ready(gw.url + "/-/ready", gw)
        wait_for("three sources up", lambda: stores_up(gw.url, 3), 60)
        before = counters(gw, eps)
        res = ask(gw.url, pushed_q)
        after = counters(gw, eps)
        raw3 = ask(gw.url, "sum without (instance, zone) (rate(http_requests_total[5m]))")
        n = [after[e][1] - before[e][1] for e in eps]
        check("ambiguous eu: only the us source is pushed to, same answer as the raw plan",
              n == [0, 1] and res is not None and len(res) == 4 and same(res, raw3),
              "%r %s" % (n, json.dumps(res)[:200]))
        gw.stop()

        # A pushed source that cannot be reached: a warning naming it (partial
        # response), or an error without partial response; the others' answer.
        dead = "http://127.0.0.1:%d" % free_port()
        hp, gp = free_port(), free_port()
        gw = Proc("gateway-dead", [args.orrery, "gateway", "--http-address=127.0.0.1:%d" % hp,
                                   "--grpc-address=127.0.0.1:%d" % gp,
                                   "--endpoint.promql=%s;region=eu" % eps[0],
                                   "--endpoint.promql=%s;region=us" % dead], work)
        gw.clean = True
        gw.url = "http://127.0.0.1:%d" % hp
        wait_ready(gw.url + "/-/ready", gw)
        wait_for("two sources up", lambda: stores_up(gw.url, 2), 60)
        st, body, _ = http("GET", gw.url + "/api/v1/query_range", dict(rng, query=pushed_q),
                           timeout=120)
        d = json.loads(body) if st == 200 else {}
        w = [x for x in d.get("warnings") or [] if dead + ":" in x]
        check("unreachable pushed source: eu's answer and a warning naming it",
              same(series(body) if st == 200 else None, with_region(direct, "eu")) and len(w) == 1,
              body[:400])
        st, body, _ = http("GET", gw.url + "/api/v1/query_range",
                           dict(rng, query=pushed_q, partial_response="false"), timeout=120)
        check("unreachable pushed source, partial_response=false: an error naming it",
              st != 200 and '"status":"error"' in body and dead in body, body[:300])
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
