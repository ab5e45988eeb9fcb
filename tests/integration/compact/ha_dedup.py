#!/usr/bin/env python3
"""ha_dedup.py: HA pairs become one (issue 12).

Two Prometheus replicas (external label replica=r0/r1, same cluster) scrape
the same targets every 15 s for 2 h; r1 misses 10 minutes
(T0+30m..T0+40m). The series are counters (reqs_total, one target with a
real counter reset at T0+4000 s) and gauges (temp). Their two blocks are
compacted into one with `orrery compact --deduplication.replica-label=replica
--deduplication.func=penalty`. Then a PromQL set (rate/increase/irate/resets
across the gap, sum by, *_over_time, instant and range) through gateway ->
store over the compacted block equals the same set through gateway
(--query.replica-label=replica) -> store over the two replica blocks, and
the counters show no false reset across the gap: resets() is 0 (1 for the
target that really reset), rate() never negative nor above the true rate.

Two scrape alignments:
  aligned  both replicas scrape at the same instants (the compacted block
           must answer exactly as the deduplicated view);
  offset   r1 scrapes 7 s after r0. Every range query (from T0+10m) is
           again exactly equal; instant queries at T0+35m and T0+70m may
           take the other replica's samples (same series, values up to one
           scrape offset apart): the gateway runs the penalty algorithm over
           the chunks that overlap the query only, so it starts in another
           state than the compactor, which runs it once over each replica's
           whole series. Thanos's query-time dedup behaves alike; those
           answers are printed, not failed. The penalty also skips the
           first samples of r0 after r1's gap starts (2x the scrape
           interval), in both views: rate() dips there, by < 10 %.

Before compact.c's whole-series merge (lib/tsdb note 5) the compactor ran
the penalty on runs of overlapping chunks and lost 2 samples per series at
each chunk boundary (aligned: 218/256 equal).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "store"))
sys.path.insert(0, os.path.join(HERE, ".."))
import store_e2e as se  # noqa: E402

T0 = 1700006400  # a multiple of 2h
STEP = 15
GAP = (T0 + 1800, T0 + 2400)
RESET_AT = T0 + 4000
NINST = 6
RATE = {i: 0.5 + i for i in range(NINST)}  # per second, the counters' true rate

QUERIES = [
    "reqs_total", "temp", "timestamp(reqs_total)",
    "rate(reqs_total[1m])", "rate(reqs_total[5m])", "rate(reqs_total[15m])",
    "irate(reqs_total[5m])", "increase(reqs_total[10m])", "increase(reqs_total[1h])",
    "resets(reqs_total[20m])", "resets(reqs_total[1h])",
    "sum by (job) (rate(reqs_total[5m]))", "sum(rate(reqs_total[5m]))",
    "sum by (job) (increase(reqs_total[15m]))", "max by (job) (irate(reqs_total[2m]))",
    "topk(2, rate(reqs_total[5m]))", "count by (job) (reqs_total)",
    "sum by (job) (temp)", "delta(temp[10m])", "deriv(temp[10m])", "idelta(temp[5m])",
    "changes(temp[10m])", "avg_over_time(temp[10m])", "max_over_time(temp[10m])",
    "min_over_time(temp[10m])", "sum_over_time(temp[5m])", "stddev_over_time(temp[10m])",
    "quantile_over_time(0.9, temp[10m])", "count_over_time(reqs_total[10m])",
    "count_over_time(temp[5m])", "last_over_time(reqs_total[5m])",
    "predict_linear(temp[10m], 600)",
]
RANGE = [("start", str(T0 + 600)), ("end", str(T0 + 7100)), ("step", "60")]
INSTANTS = [T0 + 1500, T0 + 2100, T0 + 2350, T0 + 2500, T0 + 3000, T0 + 4200, T0 + 7100]


def counter(i, t):
    if i == NINST - 1 and t >= RESET_AT:
        return RATE[i] * (t - RESET_AT)
    return 100 * i + RATE[i] * (t - T0)


def gauge(i, t):
    return round(20 + 5 * math.sin((t - T0) / 600.0 + i), 3)


def make_block(a, work, name, offset, skip):
    om = os.path.join(work, name + ".om")
    times = [t for t in range(T0 + offset, T0 + 7200, STEP) if not (skip and skip[0] <= t < skip[1])]
    with open(om, "w") as f:
        f.write("# TYPE reqs counter\n")
        for i in range(NINST):
            for t in times:
                f.write('reqs_total{inst="i%d",job="j%d"} %r %d\n' % (i, i % 2, float(counter(i, t)), t))
        f.write("# TYPE temp gauge\n")
        for i in range(NINST):
            for t in times:
                f.write('temp{inst="i%d",job="j%d"} %r %d\n' % (i, i % 2, float(gauge(i, t)), t))
        f.write("# EOF\n")
    out = os.path.join(work, name)
    subprocess.run([a.promtool, "tsdb", "create-blocks-from", "openmetrics", om, out],
                   check=True, stdout=subprocess.DEVNULL)
    blocks = [os.path.join(out, b) for b in os.listdir(out)]
    if len(blocks) != 1:
        raise RuntimeError("promtool made %d blocks of %s" % (len(blocks), name))
    return blocks[0]


def ask(base, q, t=None):
    if t is None:
        _, body = se.get(base, "/api/v1/query_range", [("query", q)] + RANGE)
    else:
        _, body = se.get(base, "/api/v1/query", [("query", q), ("time", str(t))])
    return se.results(body)


def values(res):
    """{series labels: [(t, v)]} of a results() answer."""
    out = {}
    for r in res.get("result", []):
        d = json.loads(r)
        pts = d.get("values") or [d["value"]]
        out[json.dumps(d["metric"], sort_keys=True)] = [(float(t), float(v)) for t, v in pts]
    return out


def diff(one, two):
    """How two answers differ: a short text, '' when equal."""
    if one == two:
        return ""
    a, b = values(one), values(two)
    if set(a) != set(b):
        return "series differ: %s vs %s" % (sorted(set(a) - set(b))[:3], sorted(set(b) - set(a))[:3])
    worst, n = (0.0, None), 0
    for k in a:
        da, db = dict(a[k]), dict(b[k])
        if set(da) != set(db):
            return "%s: timestamps differ (%d vs %d points)" % (k, len(da), len(db))
        for t in da:
            if da[t] != db[t]:
                n += 1
                d = abs(da[t] - db[t])
                if d > worst[0]:
                    worst = (d, (k, t, da[t], db[t]))
    return "%d points differ, largest |diff| %g at %s" % (n, worst[0], worst[1])


def run(a, work, tag, offset, exact):
    t_start = time.monotonic()
    r0 = make_block(a, work, tag + "-r0", 0, None)
    r1 = make_block(a, work, tag + "-r1", offset, GAP)
    raw = os.path.join(work, tag + "-raw")
    comp = os.path.join(work, tag + "-comp")
    for d in (raw, comp):
        for b, rep in ((r0, "r0"), (r1, "r1")):
            dst = os.path.join(d, os.path.basename(b))
            shutil.copytree(b, dst)
            se.set_ext_labels(dst, {"cluster": "c", "replica": rep})
    yaml = lambda d: "type: FILESYSTEM\nconfig:\n  directory: %s\n" % d  # noqa: E731
    r = subprocess.run([a.orrery, "compact", "--objstore.config=" + yaml(comp),
                        "--data-dir=" + os.path.join(work, tag + "-cdata"), "--consistency-delay=0s",
                        "--compact.ranges=2h,6h", "--delete-delay=0s",
                        "--deduplication.replica-label=replica", "--deduplication.func=penalty"],
                       capture_output=True, text=True, timeout=120)
    metas = []
    for b in sorted(os.listdir(comp)):
        p = os.path.join(comp, b)
        if os.path.isfile(os.path.join(p, "meta.json")) and \
                not os.path.exists(os.path.join(p, "deletion-mark.json")):
            with open(os.path.join(p, "meta.json")) as f:
                metas.append(json.load(f))
    one = [m for m in metas if len(m["compaction"]["sources"]) == 2]
    # aligned: every r0 sample (r1's are the same ones); offset: r1's up to
    # the gap, r0's after it, less what the penalty skips at the switch.
    want_n = 12 * (7200 // STEP) if exact else None
    se.check(want_n is None or (one and one[0]["stats"]["numSamples"] == want_n),
             "%s: the compacted block holds %s samples (%s)"
             % (tag, want_n, one and one[0]["stats"]["numSamples"]))
    se.check(r.returncode == 0 and len(one) == 1 and one[0]["thanos"]["labels"] == {"cluster": "c"},
             "%s: the HA pair compacted into one block labelled {cluster=c} (exit %d, %s)"
             % (tag, r.returncode, r.stderr.strip()[-300:]))
    # The store serves the compacted block alone (its sources are covered).
    procs = []
    try:
        st_raw = se.start_store(a.orrery, work, yaml(raw), [], tag + "-store-raw")
        procs.append(st_raw)
        st_comp = se.start_store(a.orrery, work, yaml(comp), [], tag + "-store-comp")
        procs.append(st_comp)
        gw_raw = se.start_gateway(a.orrery, work, [st_raw.grpc], 1, ["--query.replica-label=replica"])
        procs.append(gw_raw)
        gw_comp = se.start_gateway(a.orrery, work, [st_comp.grpc], 1, ["--query.replica-label=replica"])
        procs.append(gw_comp)
        same, differ, window = 0, [], []
        for q in QUERIES:
            for t in [None] + INSTANTS:
                want, got = ask(gw_raw.base, q, t), ask(gw_comp.base, q, t)
                what = "%s %s" % ("range" if t is None else "instant T0+%d" % (t - T0), q)
                if "result" not in want or not want["result"]:
                    se.check(False, "%s: deduplicated view answers (%s)" % (what, str(want)[:300]))
                    continue
                d = diff(want, got)
                if d and (exact or t is None or set(values(want)) != set(values(got))):
                    differ.append("%s: %s" % (what, d))
                elif d:
                    window.append("%s: %s" % (what, d))
                else:
                    same += 1
        n = len(QUERIES) * (1 + len(INSTANTS))
        se.check(not differ, "%s: %d/%d queries (range and instant) over the compacted block equal the "
                 "gateway's deduplicated view of the two replicas%s"
                 % (tag, same, n, "".join("\n  " + x for x in differ)))
        if window:
            # Not a failure (see the module comment): the same series, values
            # from the other replica's scrape.
            print("%s: %d instant queries pick the other replica's samples at query time:%s"
                  % (tag, len(window), "".join("\n  " + x for x in window)))
        # No false counter reset across the gap, in both views.
        for view, gw in (("dedup", gw_raw), ("compacted", gw_comp)):
            res = values(ask(gw.base, "resets(reqs_total[1h])"))
            bad = {}
            for k, pts in res.items():
                inst = json.loads(k)["inst"]
                for t, v in pts:
                    real = 1 if inst == "i%d" % (NINST - 1) and t - 3600 < RESET_AT <= t else 0
                    if v != real:
                        bad[k] = (t, v, real)
            se.check(len(res) == NINST and not bad,
                     "%s/%s: resets(reqs_total[1h]) 0 across the gap (1 only around the real reset): %s"
                     % (tag, view, bad or "ok"))
            res = values(ask(gw.base, "rate(reqs_total[5m])"))
            bad = {}
            for k, pts in res.items():
                i = int(json.loads(k)["inst"][1:])
                for t, v in pts:
                    # Exact but where the window holds the real reset, or
                    # (offset replicas) the penalty's hole at the gap's start:
                    # there no more than the true rate, no less than 90 %.
                    loose = t - 300 <= RESET_AT <= t or (not exact and GAP[0] <= t <= GAP[0] + 360)
                    if v < 0 or v > RATE[i] * (1 + 1e-9) or \
                            (not loose and abs(v - RATE[i]) > 1e-9 * RATE[i]) or \
                            (loose and not t - 300 <= RESET_AT <= t and v < 0.9 * RATE[i]):
                        bad[k] = (t, v, RATE[i])
            se.check(len(res) == NINST and not bad,
                     "%s/%s: rate(reqs_total[5m]) never negative nor above the true rate, equal to it "
                     "away from the real reset%s: %s"
                     % (tag, view, "" if exact else " and the gap's first 6 minutes", bad or "ok"))
    finally:
        for p in reversed(procs):
            p.stop()
    print("%s: %.1fs" % (tag, time.monotonic() - t_start), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--promtool", required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ha_dedup.")
    try:
        run(a, work, "aligned", 0, True)
        run(a, work, "offset", 7, False)
    finally:
        if se.FAILS:
            print("kept %s for inspection" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("%d failed" % len(se.FAILS))
    return 1 if se.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
