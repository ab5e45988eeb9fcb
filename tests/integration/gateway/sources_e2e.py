#!/usr/bin/env python3
"""sources_e2e.py: the gateway's in-process sources over real Prometheus 2.42
(issue 13): --endpoint.prometheus (a plain Prometheus read through remote
read, no sidecar) and --endpoint.federate (a /federate endpoint scraped into
an in-memory head).

Topology (127.0.0.1, free ports, every process killed by PID on exit):
  eu-a, eu-b   an HA pair (external labels region=eu, replica=a|b) scraping a
               shared demo target, each with an `orrery sidecar`
  prom-b       a plain Prometheus (region=b) holding the PromQL differential
               dataset's blocks and scraping itself
  prom-c       a Prometheus (region=c) scraping itself every second, reached
               only through its /federate
  bad          a tiny HTTP server playing broken sources: /html answers an
               HTML page, /garbage random bytes, /hang never answers
  gw_main      --endpoint=<eu sidecars> --endpoint.prometheus=prom-b
               --endpoint.federate=prom-c/federate?match[]={job=~"prom.+"};region=c
               (--federate.interval=1s) and every bad source (both kinds, plus
               a refused port; one of them from --store.sd-files)
  gw_b         --endpoint.prometheus=prom-b only
  gw_max       prom-c's /federate with --federate.max-series=5

Checks (PASS/FAIL lines; exit 1 when any fails):
  1  gw_main's /api/v1/stores: eu sidecars, prom-b (component prometheus,
     labels region=b) and prom-c (component federate, region=c) without
     error; each bad source with its own clear lastError.
  2  gw_main answers sum by (region) (up) = {eu: 1, b: 1, c: 1} and a rate()
     per region, in time while the hanging sources hang; label values, label
     names and series come from both kinds of source.
  3  a subset of the PromQL differential suite (every 6th query) through gw_b
     equals prom-b's own answers (as gateway_e2e's check a compares), and a
     rate() at "now" too.
  4  federate: instant queries through gw_main equal prom-c's own answers at
     the same time, within one scrape interval.
  5  federate: prom-c killed → its series are stale (gone from instant
     queries) within a few scrape intervals and the endpoint shows the scrape
     error; prom-c restarted → they come back.
  6  federate: gw_max logs the max-series error and queries carry a warning.
  7  /metrics: calls per endpoint (kind storeapi, prometheus) and the bytes the
     sources read.
  8  the gateways stop cleanly on SIGTERM (exit 0; nothing leaked under ASan).
"""
import argparse
import atexit
import concurrent.futures
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gateway_e2e as e2e  # noqa: E402
from gateway_e2e import Proc, check, http, log, promql_diff, wait_ready, free_port  # noqa: E402

INTERVAL_S = 1  # --federate.interval and prom-c's scrape interval

BAD_SRC = r"""
import http.server, os, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/hang"):
            time.sleep(3600)
            return
        if self.path.startswith("/html"):
            body, ct = b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>\n", "text/html"
        else:
            body, ct = bytes((i * 7919 + 13) % 256 for i in range(700)), "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", ct)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def start_prom(args, work, name, port, ext, targets, blocks=None, interval="1s"):
    data = os.path.join(work, name)
    if blocks and not os.path.exists(data):
        shutil.copytree(blocks, data)
    cfg = os.path.join(work, name + ".yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: %s\n  external_labels: %s\n"
                "scrape_configs:\n  - job_name: %s\n    static_configs: [{targets: [%s]}]\n"
                % (interval, json.dumps(ext), targets[0], ", ".join("'%s'" % t for t in targets[1])))
    argv = [args.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
            "--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:%d" % port]
    p = Proc(name, argv, work)
    p.url = "http://127.0.0.1:%d" % port
    p.port = port
    return p


def start_gw(args, work, name, flags):
    gp, hp = free_port(), free_port()
    argv = [args.orrery, "gateway", "--http-address=127.0.0.1:%d" % hp,
            "--grpc-address=127.0.0.1:%d" % gp, "--query.replica-label=replica"] + flags
    g = Proc(name, argv, work)
    g.url = "http://127.0.0.1:%d" % hp
    return g


def stores(gw):
    st, _, body = http("GET", gw.url + "/api/v1/stores")
    if st != 200:
        return {}
    out = {}
    for comp, eps in (json.loads(body).get("data") or {}).items():
        for e in eps:
            out[e["name"]] = dict(e, component=comp)
    return out


def wait_for(what, fn, deadline_s=60, poll_s=0.2):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(poll_s)  # polling a condition, not waiting out time
    raise RuntimeError("timed out waiting for %s (last: %r)" % (what, last))


def query(url, q, t=None, **extra):
    p = {"query": q}
    if t is not None:
        p["time"] = "%.3f" % t
    p.update(extra)
    st, _, body = http("POST", url + "/api/v1/query", p)
    d = json.loads(body)
    return st, d


def vec(d):
    return {tuple(sorted((k, v) for k, v in s["metric"].items())): s["value"][1]
            for s in (d.get("data") or {}).get("result", [])}


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--queries", default=os.path.join(e2e.PROMQL, "queries.txt"))
    ap.add_argument("--every", type=int, default=6, help="every Nth differential query")
    ap.add_argument("--work", help="work directory (kept)")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="sources_e2e.")
    os.makedirs(work, exist_ok=True)

    def cleanup(*_):
        for p in reversed(e2e.procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001
                pass
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(2))
    t0 = time.monotonic()

    # ---- topology
    demo = e2e.Demo(work)
    blocks = promql_diff.make_blocks(args.promtool, work)
    prom = {}
    for rep in ("a", "b"):
        prom["eu-" + rep] = start_prom(args, work, "eu-" + rep, free_port(), {"region": "eu", "replica": rep},
                                       ("demo", ["127.0.0.1:%d" % demo.port]))
    pb, pc = free_port(), free_port()
    prom["b"] = start_prom(args, work, "prom-b", pb, {"region": "b"}, ("prometheus", ["127.0.0.1:%d" % pb]),
                           blocks=blocks)
    prom["c"] = start_prom(args, work, "prom-c", pc, {"region": "c"}, ("prometheus", ["127.0.0.1:%d" % pc]))
    bad_port = free_port()
    Proc("bad", [sys.executable, "-c", BAD_SRC, str(bad_port)], work)
    bad = "http://127.0.0.1:%d" % bad_port
    refused = "http://127.0.0.1:%d" % free_port()  # nothing listens there
    for p in prom.values():
        wait_ready(p.url + "/-/ready", p)
    side = {}
    for k in ("eu-a", "eu-b"):
        gp, hp = free_port(), free_port()
        s = Proc("sidecar-" + k, [args.orrery, "sidecar", "--prometheus.url=" + prom[k].url,
                                  "--tsdb.path=" + os.path.join(work, k),
                                  "--grpc-address=127.0.0.1:%d" % gp, "--http-address=127.0.0.1:%d" % hp], work)
        s.url, s.grpc = "http://127.0.0.1:%d" % hp, "127.0.0.1:%d" % gp
        side[k] = s
    for s in side.values():
        wait_ready(s.url + "/-/ready", s)
    # As a user types it: quotes, braces and a regex '+' unencoded.
    fed_url = prom["c"].url + '/federate?match[]={job=~"prom.+"}'
    bad_specs = {
        "prometheus refused": ("prometheus", refused),
        "prometheus html": ("prometheus", bad + "/html"),
        "prometheus garbage": ("prometheus", bad + "/garbage"),
        "prometheus hang": ("prometheus", bad + "/hang"),
        "federate refused": ("federate", refused + "/federate?match[]=up"),
        "federate html": ("federate", bad + "/html/federate?match[]=up"),
        "federate garbage": ("federate", bad + "/garbage/federate?match[]=up"),
        "federate hang": ("federate", bad + "/hang/federate?match[]=up"),
    }
    flags = ["--endpoint=" + s.grpc for s in side.values()]
    flags += ["--endpoint.prometheus=" + prom["b"].url,
              "--endpoint.federate=%s;region=c" % fed_url, "--federate.interval=%ds" % INTERVAL_S]
    # One of them through file SD, in its "<kind>+URL" form.
    sd = os.path.join(work, "sd.json")
    with open(sd, "w") as f:
        json.dump([{"targets": ["%s+%s" % bad_specs["federate refused"]]}], f)
    flags += ["--endpoint.%s=%s" % kv for k, kv in bad_specs.items() if k != "federate refused"]
    flags += ["--store.sd-files=" + sd]
    gw = start_gw(args, work, "gw_main", flags)
    gw_b = start_gw(args, work, "gw_b", ["--endpoint.prometheus=" + prom["b"].url])
    gw_max = start_gw(args, work, "gw_max", ["--endpoint.federate=%s;region=c" % fed_url,
                                             "--federate.interval=%ds" % INTERVAL_S, "--federate.max-series=5"])
    for g in (gw, gw_b, gw_max):
        wait_ready(g.url + "/-/ready", g)
    good = [s.grpc for s in side.values()] + [prom["b"].url, fed_url]

    def all_good_up():
        st = stores(gw)
        return all(n in st and not st[n]["lastError"] for n in good) and st
    st = wait_for("gw_main's good endpoints up", all_good_up)
    wait_for("gw_b up", lambda: (stores(gw_b).get(prom["b"].url) or {}).get("minTime", 0) != 0
             and not stores(gw_b)[prom["b"].url]["lastError"])
    log("setup %.1f s (work %s)" % (time.monotonic() - t0, work))

    # ---- 1: /api/v1/stores
    e = st[prom["b"].url]
    check("1: prom-b listed as a prometheus source with its labels", e["component"] == "prometheus"
          and e["labelSets"] == [{"region": "b"}], json.dumps(e))
    e = st[fed_url]
    check("1: prom-c listed as a federate source with its labels", e["component"] == "federate"
          and e["labelSets"] == [{"region": "c"}], json.dumps(e))
    want_err = {
        "prometheus refused": "Couldn't connect", "prometheus html": "not a Prometheus answer",
        "prometheus garbage": "not a Prometheus answer", "prometheus hang": "timed out",
        "federate refused": "Couldn't connect", "federate html": "not the text exposition format: line 1",
        "federate garbage": "not the text exposition format", "federate hang": "timed out",
    }

    def bad_errors():
        s = stores(gw)
        errs = {}
        for k, (kind, url) in bad_specs.items():
            name = url
            le = (s.get(name) or {}).get("lastError") or ""
            if want_err[k] not in le:
                return None
            errs[k] = le
        return errs
    try:
        errs = wait_for("every bad source's error", bad_errors, deadline_s=30)
        for k, v in sorted(errs.items()):
            log("  %-20s %s" % (k, v))
        check("1: each bad source shows its own error in /api/v1/stores", True)
    except RuntimeError as ex:
        check("1: each bad source shows its own error in /api/v1/stores", False, str(ex))

    # ---- 2: the union
    t = time.monotonic()
    _, d = query(gw.url, "sum by (region) (up)")
    got = {dict(k).get("region"): v for k, v in vec(d).items()}
    check("2: sum by (region) (up) over sidecars + prometheus + federate", got == {"eu": "1", "b": "1", "c": "1"},
          "%s (%.2f s)" % (got, time.monotonic() - t))
    _, d = query(gw.url, "sum by (region) (rate(prometheus_http_requests_total[30s]))")
    got = {dict(k).get("region"): v for k, v in vec(d).items()}
    check("2: rate() by region over the prometheus and federate sources",
          set(got) == {"b", "c"} and all(math.isfinite(float(v)) and float(v) >= 0 for v in got.values()),
          "%s" % got)
    check("2: answers in time while two sources hang", time.monotonic() - t < 10, "%.2f s" % (time.monotonic() - t))

    # ---- 2b: the metadata APIs over the sources
    _, _, b = http("GET", gw.url + "/api/v1/label/region/values")
    vals = json.loads(b).get("data") or []
    _, _, b = http("GET", gw.url + "/api/v1/labels", {"match[]": 'up{region="c"}'})
    names = json.loads(b).get("data") or []
    _, _, b = http("GET", gw.url + "/api/v1/series", {"match[]": 'up{region=~"b|c"}',
                                                     "start": "%d" % (time.time() - 60)})
    series = sorted(s.get("region", "") for s in json.loads(b).get("data") or [])
    check("2: label values, label names and series through both kinds of source",
          {"b", "c", "eu"} <= set(vals) and {"__name__", "instance", "job", "region"} <= set(names)
          and series == ["b", "c"], "values %s, names %s, series %s" % (vals, names, series))

    # ---- 2c: series that external labels reorder (demo_prefix{} is a
    # label-prefix of demo_prefix{quantile}; with region and replica added it
    # sorts after it): the sources send StoreAPI's order, the merge accepts it.
    def fed_once(match):
        st, _, b = http("GET", gw.url + "/federate", [("match[]", match)])
        keys = [l.rsplit(" ", 2)[0] for l in b.splitlines()
                if l and not l.startswith("#")]
        return st, keys, b
    st, keys, b = fed_once('{job="prometheus"}')
    check('2: /federate?match[]={job="prometheus"} answers 200 with each series once',
          st == 200 and keys and len(keys) == len(set(keys)),
          "%d, %d series, %d distinct: %r" % (st, len(keys), len(set(keys)), b[:300]))

    def prefix_pair():
        _, d = query(gw.url, "demo_prefix")
        got = sorted(dict(k).get("quantile", "") for k in vec(d))
        return got if got == ["", "0.5"] else None
    try:
        wait_for("demo_prefix scraped through the eu sidecars", prefix_pair, deadline_s=30)
        ok = True
    except RuntimeError:
        ok = False
    st, keys, b = fed_once('{job="demo"}')
    pk = [k for k in keys if k.startswith("demo_prefix")]
    check("2: demo_prefix and demo_prefix{quantile} through the eu sidecars: query and /federate",
          ok and st == 200 and len(keys) == len(set(keys)) and len(pk) == 2,
          "query ok %s; federate %d %r" % (ok, st, b[:300]))

    # ---- 3: PromQL differential subset through gw_b == prom-b
    e2e.EXT_REGION = "b"
    every = args.every * (5 if promql_diff.is_asan_build(args.orrery) else 1)
    queries = promql_diff.read_queries(args.queries)[::every]
    known = e2e.known_mismatch_exprs()

    def one(q):
        path = "/api/v1/query" if q.mode == "instant" else "/api/v1/query_range"
        ps, _, pbody = http("POST", prom["b"].url + path, e2e.q_params(e2e.with_ext_region(q)), timeout=120)
        gs, _, gbody = http("POST", gw_b.url + path, e2e.q_params(q), timeout=120)
        return q, ps, pbody, gs, gbody

    bad_q, allowed, engine = [], 0, 0
    t = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        for q, ps, pbody, gs, gbody in ex.map(one, queries):
            ok = '"status":"success"' in gbody
            diffs = promql_diff.compare(q, e2e.strip_ext_region(pbody), 0 if ok else 1,
                                        e2e.strip_ext_region(gbody) + "\n", "")
            if ps != gs:
                diffs.append("HTTP status: prometheus %d, gateway %d" % (ps, gs))
            if not diffs:
                continue
            if q.expr in known or any(k in q.expr for k in known):
                allowed += 1
                continue
            rc, out, _ = promql_diff.run_orrery(args.orrery, blocks, e2e.with_ext_region(q))
            if rc in (0, 1) and not promql_diff.compare(q, e2e.strip_ext_region(out.strip()), 0 if ok else 1,
                                                        e2e.strip_ext_region(gbody) + "\n", ""):
                engine += 1
                continue
            bad_q.append((q, diffs))
    for q, diffs in bad_q[:10]:
        log("  MISMATCH %s\n      %s" % (q.describe(), "\n      ".join(diffs[:3])))
    check("3: %d differential queries via --endpoint.prometheus == Prometheus" % len(queries), not bad_q,
          "%d mismatched, %d known engine mismatches, %d where the gateway agrees with `orrery tools query`; "
          "%.1f s" % (len(bad_q), allowed, engine, time.monotonic() - t))
    now = time.time() - 2
    q = "rate(prometheus_http_requests_total[1m])"
    _, dp = query(prom["b"].url, q, now)
    _, dg = query(gw_b.url, q, now)
    want = {tuple(sorted(k + (("region", "b"),))): v for k, v in vec(dp).items()}
    check("3: %s now == Prometheus" % q, want and vec(dg) == want, "%d series" % len(want))

    # ---- 4: federate answers equal the source's within one interval
    time.sleep(3 * INTERVAL_S)  # a few scrapes of the source and by the gateway
    T = time.time() - 2 * INTERVAL_S
    sel = '{job="prometheus",__name__=~"up|prometheus_build_info|prometheus_tsdb_head_.*|prometheus_http_requests_total"}'
    _, dg = query(gw.url, sel.replace("{", '{region="c",'), T)
    gv = {tuple(x for x in k if x[0] != "region"): v for k, v in vec(dg).items()}
    src = [vec(query(prom["c"].url, sel, T - i * INTERVAL_S)[1]) for i in range(2)]
    missing = [k for k in src[0] if k not in gv]
    differ = [k for k, v in gv.items() if all(s.get(k) != v for s in src)]
    check("4: federated instant query == the source's at the same time (within one interval)",
          len(src[0]) > 10 and not differ and len(missing) <= len(src[0]) // 10,
          "%d series at the source, %d through the gateway, %d differ, %d missing %s"
          % (len(src[0]), len(gv), len(differ), len(missing), [dict(k) for k in differ[:3]]))

    # ---- 5: staleness when the source dies, back when it returns
    pcp = prom["c"]
    pcp.stop()
    t = time.monotonic()
    try:
        wait_for("prom-c's series stale", lambda: not vec(query(gw.url, 'up{region="c"}')[1]), deadline_s=20,
                 poll_s=0.1)
        el = time.monotonic() - t
        check("5: series stale after the source died", el < 4 * INTERVAL_S + 2, "%.1f s after the kill" % el)
    except RuntimeError as ex:
        check("5: series stale after the source died", False, str(ex))
    try:  # the endpoint's Info poll (every 5 s) picks the error up
        le = wait_for("the federate endpoint's error",
                      lambda: (stores(gw).get(fed_url) or {}).get("lastError"), deadline_s=15)
    except RuntimeError as ex:
        le = str(ex)
    check("5: the federate endpoint shows the failed scrape (and stays up)", "scrape " in le, le)
    _, d = query(gw.url, 'count_over_time(up{region="c"}[5m])')
    check("5: its history is still served", bool(vec(d)), json.dumps(d)[:200])
    pcp.start()
    wait_ready(pcp.url + "/-/ready", pcp)
    try:
        wait_for("prom-c's series back", lambda: vec(query(gw.url, 'up{region="c"}')[1]), deadline_s=30)
        check("5: series back once the source returned", True)
    except RuntimeError as ex:
        check("5: series back once the source returned", False, str(ex))

    # ---- 6: max-series
    def over_limit():
        with open(gw_max.logpath) as f:
            return "federate.max-series" in f.read()
    try:
        wait_for("gw_max's max-series error", over_limit, deadline_s=30)
        check("6: max-series exceeded is logged as an error", True)
    except RuntimeError as ex:
        check("6: max-series exceeded is logged as an error", False, str(ex))
    _, d = query(gw_max.url, 'count(count_over_time({job="prometheus"}[5m]))')
    warns = d.get("warnings") or []
    n = list(vec(d).values())
    check("6: queries carry the max-series warning and see the 5 series kept",
          any("max-series" in w for w in warns) and n == ["5"], "%s %s" % (n, warns))

    # ---- 7: per-endpoint metrics
    _, _, m = http("GET", gw.url + "/metrics")

    def metric(name, **labels):
        """The largest value among the series of |name| with |labels|."""
        vals = [float(line.rsplit(" ", 1)[1]) for line in m.splitlines()
                if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items())]
        return max(vals) if vals else None
    rq = metric("orrery_gateway_endpoint_requests_total", endpoint=prom["b"].url, kind="prometheus",
                method="Series", code="OK")
    rb = metric("orrery_gateway_source_read_bytes_total", endpoint=prom["b"].url, kind="prometheus")
    fb = metric("orrery_gateway_source_read_bytes_total", kind="federate")
    ss = metric("orrery_gateway_endpoint_requests_total", kind="storeapi", method="Series", code="OK")
    check("7: /metrics counts calls and bytes per endpoint",
          all(v and v > 0 for v in (rq, rb, fb, ss)),
          "prometheus Series OK %s, remote-read bytes %s, federate bytes %s, storeapi Series OK %s"
          % (rq, rb, fb, ss))

    # ---- 8: a clean shutdown (the sources close in several loop turns;
    # under ASan a leak makes the exit code non-zero)
    codes = {}
    for g in (gw, gw_b, gw_max):
        g.stop()
        with open(g.logpath) as f:
            codes[g.name] = (g.p.returncode, "Sanitizer" in f.read())
    check("8: gateways exit 0 on SIGTERM with nothing leaked",
          all(c == 0 and not san for c, san in codes.values()), "%s" % codes)

    failed = [n for n, ok in e2e.results if not ok]
    log("%d checks, %d failed; %.1f s" % (len(e2e.results), len(failed), time.monotonic() - t0))
    return 1 if failed or not e2e.results else 0


if __name__ == "__main__":
    sys.exit(main())
