#!/usr/bin/env python3
"""downsample_test.py: downsampled answers through `orrery store` + `orrery
gateway`, on 127.0.0.1 with free ports; every process started here is
stopped by PID on every exit path.

A 48h raw block (3 gauges, 3 counters with resets, a sample every 30 s at
15 s past each half minute) is downsampled to 5m by a one-shot `orrery
compact` over a FILESYSTEM bucket; then a 2h raw block that continues the
series is put in the bucket (no 5m copy: the gap the 5m data leaves).

Through store + gateway, range queries (step 1h, ending on hours) at
max_source_resolution=5m agree with the same at raw resolution:
max/min/sum_over_time over [1h] equal, count_over_time the number of 5m
windows (Thanos's meaning: the points of the count aggregate), rate/increase over [1h] and
[12h] within 1% (counter aggregates chained with reset correction: no
false reset where a 5m chunk ends after a reset). A plain selector proves
which data answered: 5m averages inside the 48h block, the raw samples of
the 2h block after it (gap filled with the finer resolution). "auto" is
step/5 for ranges and raw for instant queries; --query.auto-downsampling
without the parameter means auto; bad values get a 400 in Prometheus's
error shape with Thanos's wording.
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
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "promql"))
sys.path.insert(0, os.path.join(HERE, ".."))
import promql_diff as pd  # noqa: E402
from portpick import free_port  # noqa: E402

FAILS = []
H = 3600
T0 = (1700006400 // 194400) * 194400  # promtool's 54h block range
RAW_H = 48   # the downsampled block
GAP_H = 2    # the raw block after it


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def get(base, path, params=()):
    url = base + path + ("?" + urllib.parse.urlencode(list(params)) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def gauge(i, n):
    return float((n * (7 + i)) % 101 + i)


def counters(n_end, step=30):
    """Per counter: values at sample indexes 0..n_end-1, steady increments
    (10..12 per sample) and a reset to a small value every 5h + i*97min."""
    out = []
    for i in range(3):
        every = (5 * H + i * 97 * 60) // step
        v, vals = 0.0, []
        for n in range(n_end):
            if n and n % every == 0:
                v = float(n % 7)
            else:
                v += 10 + n % 3
            vals.append(v)
        out.append(vals)
    return out


def make_block(promtool, work, name, h_from, h_to, t0=T0, step=30, max_dur="54h"):
    """A promtool block with samples n in [h_from*H/step, h_to*H/step) at
    t0 + 15 + step*n seconds."""
    per_h = H // step
    n_end = h_to * per_h
    cs = counters(n_end, step)
    om = os.path.join(work, name + ".om")
    with open(om, "w") as f:
        f.write("# TYPE g gauge\n")
        for i in range(3):
            for n in range(h_from * per_h, n_end):
                f.write('g{i="%d"} %r %d\n' % (i, gauge(i, n), t0 + 15 + step * n))
        f.write("# TYPE cnt gauge\n")
        for i in range(3):
            for n in range(h_from * per_h, n_end):
                f.write('cnt{i="%d"} %r %d\n' % (i, cs[i][n], t0 + 15 + step * n))
        f.write("# EOF\n")
    out = os.path.join(work, name)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                    "--max-block-duration=" + max_dur, om, out], check=True, stdout=subprocess.DEVNULL)
    blocks = [os.path.join(out, b) for b in sorted(os.listdir(out))
              if os.path.isfile(os.path.join(out, b, "meta.json"))]
    if len(blocks) != 1:
        raise RuntimeError("promtool wrote %d blocks for %s" % (len(blocks), name))
    p = os.path.join(blocks[0], "meta.json")
    with open(p) as f:
        m = json.load(f)
    m["thanos"] = {"version": 1, "labels": {"cluster": "ds"}, "downsample": {"resolution": 0},
                   "source": "sidecar"}
    with open(p, "w") as f:
        json.dump(m, f, indent="\t")
    return blocks[0]


def start_store(orrery, work, yaml, name="store"):
    http, grpc = free_port(), free_port()
    st = pd.Daemon([orrery, "store", "--objstore.config=" + yaml,
                    "--data-dir=" + os.path.join(work, name + "-data"),
                    "--http-address=127.0.0.1:%d" % http, "--grpc-address=127.0.0.1:%d" % grpc],
                   work, name)
    st.base = "http://127.0.0.1:%d" % http
    st.wait_url(st.base + "/-/ready", lambda b: True)
    st.grpc = grpc
    return st


def start_gateway(orrery, work, grpc, extra=()):
    http, g = free_port(), free_port()
    gw = pd.Daemon([orrery, "gateway", "--http-address=127.0.0.1:%d" % http,
                    "--grpc-address=127.0.0.1:%d" % g, "--endpoint=127.0.0.1:%d" % grpc]
                   + list(extra), work, "gateway-%d" % http)
    gw.base = "http://127.0.0.1:%d" % http

    def up(body):
        st = [e for grp in (json.loads(body).get("data") or {}).values() for e in grp]
        # Our store (its external labels), not whatever holds the port now.
        return any(e.get("lastError") is None and e.get("minTime") is not None
                   and {"cluster": "ds"} in (e.get("labelSets") or []) for e in st)

    gw.wait_url(gw.base + "/-/ready", lambda b: True)
    gw.wait_url(gw.base + "/api/v1/stores", up)
    return gw


START, END = T0 + 2 * H, T0 + (RAW_H + GAP_H) * H
RANGE = [("start", str(START)), ("end", str(END)), ("step", "3600")]


def series(body):
    """{labels: [(t, v)]} of a successful matrix/vector answer, or None."""
    d = json.loads(body)
    if d.get("status") != "success":
        return None
    out = {}
    for r in d["data"]["result"]:
        key = json.dumps(r["metric"], sort_keys=True)
        vals = r.get("values") or ([r["value"]] if "value" in r else [])
        out[key] = [(float(t), float(v)) for t, v in vals]
    return out


def query_range(gw, q, res=None, rng=RANGE):
    p = [("query", q)] + rng + ([("max_source_resolution", res)] if res is not None else [])
    code, body = get(gw.base, "/api/v1/query_range", p)
    s = series(body) if code == 200 else None
    w = json.loads(body).get("warnings") if code == 200 else None
    if w or s == {}:
        log("query_range %s res=%s: %d series, warnings %s" % (q, res, len(s or {}), w))
    if s is None:
        raise RuntimeError("query_range %s res=%s: %d %s" % (q, res, code, body[:300]))
    return s


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def compare(raw, ds, rel):
    """'' when |raw| and |ds| have the same series and points within |rel|,
    else the first difference."""
    if sorted(raw) != sorted(ds):
        return "series differ: %s vs %s" % (sorted(raw)[:3], sorted(ds)[:3])
    for k in raw:
        a, b = raw[k], ds[k]
        if [t for t, _ in a] != [t for t, _ in b]:
            return "%s: timestamps differ (%d vs %d points)" % (k, len(a), len(b))
        for (t, va), (_, vb) in zip(a, b):
            if not close(va, vb, rel):
                return "%s at %d: raw %r, 5m %r" % (k, t, va, vb)
    return ""


def compact(a, work, bdir, yaml):
    t = time.time()
    r = subprocess.run([a.orrery, "compact", "--objstore.config=" + yaml,
                        "--data-dir=" + os.path.join(work, "compact-data"),
                        "--consistency-delay=0s"], capture_output=True, text=True)
    log("orrery compact (one-shot) took %.1fs" % (time.time() - t))
    check(r.returncode == 0, "orrery compact exits 0 (%s)" % r.stderr[-300:])
    res = []
    for b in os.listdir(bdir):
        mp = os.path.join(bdir, b, "meta.json")
        if os.path.isfile(mp):
            with open(mp) as f:
                res.append(json.load(f)["thanos"]["downsample"]["resolution"])
    return sorted(res)


def run_1h(a, work):
    """11 days sampled every 60 s: raw -> 5m -> 1h in one compact run; at
    max_source_resolution=1h, [6h] windows ending on hours agree with raw
    for min/max/sum, rate over [1d] and increase over [2d] within 1%. (Over
    only 6 hourly points a chunk boundary's extra sample - the chunk's
    first raw value, as Thanos writes it - moves Prometheus's extrapolation
    by up to 10%: rate over 1h data wants ranges of many hours.)"""
    t1 = (1700006400 // (486 * H)) * 486 * H  # promtool's 486h block range (2h * 3^5)
    bdir = os.path.join(work, "bucket-1h")
    os.makedirs(bdir)
    yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
    raw = make_block(a.promtool, work, "raw11d", 0, 11 * 24, t0=t1, step=60, max_dur="486h")
    shutil.copytree(raw, os.path.join(bdir, os.path.basename(raw)))
    res = compact(a, work, bdir, yaml)
    check(res == [0, 300000, 3600000], "11d raw block: 5m and 1h copies (%s)" % res)
    procs = []
    try:
        st = start_store(a.orrery, work, yaml, "store-1h")
        procs.append(st)
        gw = start_gateway(a.orrery, work, st.grpc)
        procs.append(gw)
        rng = [("start", str(t1 + 6 * H)), ("end", str(t1 + 11 * 24 * H)), ("step", str(6 * H))]
        for q, rel in (("max_over_time(g[6h])", 1e-9), ("min_over_time(g[6h])", 1e-9),
                       ("sum_over_time(g[6h])", 1e-9), ("rate(cnt[1d])", 0.01),
                       ("increase(cnt[2d])", 0.01)):
            r0 = query_range(gw, q, "0s", rng)
            r1 = query_range(gw, q, "1h", rng)
            diff = compare(r0, r1, rel)
            n = sum(len(v) for v in r0.values())
            check(not diff and n > 0, "%s: 1h agrees with raw within %g (%d points)%s"
                  % (q, rel, n, " - " + diff if diff else ""))
        r0 = query_range(gw, "g", "0s", rng)
        r5 = query_range(gw, "g", "5m", rng)
        r1 = query_range(gw, "g", "1h", rng)
        check(r0 != r5 and r5 != r1 and r0 != r1,
              "g: raw, 5m and 1h answers differ (each resolution used)")
    finally:
        for p in reversed(procs):
            p.stop()


def run(a, work):
    bdir = os.path.join(work, "bucket")
    os.makedirs(bdir)
    yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
    t = time.time()
    raw = make_block(a.promtool, work, "raw48", 0, RAW_H)
    gap = make_block(a.promtool, work, "raw2", RAW_H, RAW_H + GAP_H)
    shutil.copytree(raw, os.path.join(bdir, os.path.basename(raw)))
    log("blocks made in %.1fs" % (time.time() - t))
    res = compact(a, work, bdir, yaml)
    check(res == [0, 300000], "the bucket holds the raw block and its 5m copy (%s)" % res)
    # The later raw block: its time range has no 5m data.
    pd.upload_blocks(a.orrery, os.path.dirname(gap), yaml)

    procs = []
    try:
        st = start_store(a.orrery, work, yaml)
        procs.append(st)
        gw = start_gateway(a.orrery, work, st.grpc)
        procs.append(gw)
        gw_auto = start_gateway(a.orrery, work, st.grpc, ["--query.auto-downsampling"])
        procs.append(gw_auto)

        exact = ["max_over_time(g[1h])", "min_over_time(g[1h])", "sum_over_time(g[1h])",
                 "max(max_over_time(cnt[1h]))", "sum by (i) (sum_over_time(g[1h]))"]
        approx = ["rate(cnt[1h])", "increase(cnt[1h])", "increase(cnt[12h])",
                  "sum(rate(cnt[1h]))"]
        for q in exact + approx:
            rel = 1e-9 if q in exact else 0.01
            r0 = query_range(gw, q, "0s")
            r5 = query_range(gw, q, "5m")
            diff = compare(r0, r5, rel)
            n = sum(len(v) for v in r0.values())
            check(not diff and n > 0, "%s: 5m agrees with raw within %g (%d points)%s"
                  % (q, rel, n, " - " + diff if diff else ""))
            if q == "rate(cnt[1h])":
                worst = max(abs(b[1] - a_[1]) / a_[1] for k in r0 for a_, b in zip(r0[k], r5[k]))
                log("rate(cnt[1h]): worst relative difference 5m vs raw %.5f" % worst)

        # count_over_time reads the count aggregate and, as in Thanos, counts
        # its points: the 5m windows holding samples (10 raw samples each
        # here); past the 48h block the raw block answers the raw count.
        for q in ("count_over_time(g[1h])", "sum by (i) (count_over_time(cnt[1h]))"):
            r0 = query_range(gw, q, "0s")
            r5 = query_range(gw, q, "5m")
            want = {k: [(t, v / 10 if t <= T0 + RAW_H * H else v) for t, v in pts]
                    for k, pts in r0.items()}
            diff = compare(want, r5, 1e-9)
            check(not diff and r0, "%s: 5m gives the number of 5m windows (raw / 10), raw after "
                  "the 48h block%s" % (q, " - " + diff if diff else ""))

        # Which data answered: the plain selector gives 5m averages inside the
        # downsampled block, the raw samples of the block after it.
        r0 = query_range(gw, "g", "0s")
        r5 = query_range(gw, "g", "5m")
        in_ds = [(k, t) for k in r0 for (t, v), (_, w) in zip(r0[k], r5[k])
                 if t < T0 + RAW_H * H and v != w]
        in_gap = [(v, w) for k in r0 for (t, v), (_, w) in zip(r0[k], r5[k])
                  if t > T0 + RAW_H * H]
        check(len(in_ds) > 30, "5m: g answered from 5m averages inside the 48h block "
              "(%d of its points differ from raw)" % len(in_ds))
        check(in_gap and all(v == w for v, w in in_gap),
              "5m: after the 48h block the raw block fills the gap (%d points equal raw)"
              % len(in_gap))
        check(compare(r0, query_range(gw, "g"), 0) == "", "no parameter: raw")
        check(compare(r0, query_range(gw, "g", "raw"), 0) == "", "max_source_resolution=raw: raw")
        check(compare(r5, query_range(gw, "g", "auto"), 0) == "",
              "auto with step 1h (12m) chooses the 5m data")
        fine = [("start", str(START)), ("end", str(START + 3 * H)), ("step", "60")]
        check(compare(query_range(gw, "g", "0s", fine), query_range(gw, "g", "auto", fine), 0)
              == "", "auto with step 60s (12s) stays raw")
        check(compare(r5, query_range(gw_auto, "g"), 0) == "",
              "--query.auto-downsampling without the parameter: step / 5")
        check(compare(r0, query_range(gw_auto, "g", "0s"), 0) == "",
              "--query.auto-downsampling with max_source_resolution=0s: raw")
        # Instant queries: auto is raw (Thanos's default for instant queries).
        at = [("query", "g"), ("time", str(T0 + 24 * H))]
        _, b_raw = get(gw.base, "/api/v1/query", at)
        _, b_auto = get(gw.base, "/api/v1/query", at + [("max_source_resolution", "auto")])
        _, b_5m = get(gw.base, "/api/v1/query", at + [("max_source_resolution", "5m")])
        check(series(b_raw) == series(b_auto) and series(b_raw) != series(b_5m)
              and series(b_5m), "instant query: auto is raw, 5m differs")

        # Bad values: a 400 in Prometheus's error shape, Thanos's wording.
        for val, want in (("abc", "'max_source_resolution' parameter: cannot parse \"abc\" to a "
                                  "valid duration"),
                          ("-5", "negative 'max_source_resolution' is not accepted. Try a "
                                 "positive integer")):
            for path, extra in (("/api/v1/query_range", RANGE), ("/api/v1/query", [])):
                code, body = get(gw.base, path, [("query", "g"), ("max_source_resolution", val)]
                                 + extra)
                try:
                    d = json.loads(body)
                except ValueError:
                    d = {}
                check(code == 400 and d.get("status") == "error"
                      and d.get("errorType") == "bad_data" and d.get("error") == want,
                      "%s max_source_resolution=%s: 400 bad_data %r (got %d %s)"
                      % (path, val, want, code, body[:200]))
    finally:
        for p in reversed(procs):
            p.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--promtool", required=True)
    a = ap.parse_args()
    t = time.time()
    work = tempfile.mkdtemp(prefix="orr-downsample-")
    try:
        run(a, work)
        run_1h(a, work)
    except Exception as e:  # a harness failure is a test failure
        FAILS.append("harness: %s" % e)
        print("FAIL: harness: %s (work dir kept: %s)" % (e, work), flush=True)
        log("took %.1fs" % (time.time() - t))
        return 1
    log("took %.1fs" % (time.time() - t))
    if FAILS:
        print("%d check(s) failed (work dir kept: %s)" % (len(FAILS), work))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
