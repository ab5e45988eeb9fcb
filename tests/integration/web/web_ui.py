#!/usr/bin/env python3
"""web_ui.py: the gateway's web UI in a real browser (headless chromium
driven by puppeteer-core, web_ui.js), over a quickstart-like setup.

Topology (127.0.0.1, free ports, every process killed by PID on exit): an HA
pair of Prometheus 2.42 (external labels cluster=c1, replica=a|b) scraping
both Prometheus servers and a demo target that exposes 200 series, an
`orrery sidecar` beside each, and a gateway over the two sidecars
(--query.replica-label=replica).

HTTP checks here (the assets built into the binary): Content-Type, ETag and
304, gzip as stored when accepted and the same bytes inflated when not, 404
for an unknown asset; the compressed size of everything the page loads is
reported. Browser checks in web_ui.js (see there); its screenshots go to
--artifacts. Exit 0 when every check passed, 1 otherwise, 77 when
web/node_modules (puppeteer-core) is not installed.
"""
import argparse
import gzip
import json
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
sys.path.insert(0, os.path.join(HERE, ".."))
from portpick import free_port  # noqa: E402
from webtest import (check, failed, http, log, procs, run_browser, start,  # noqa: E402
                     stop_all, wait_until)

NSERIES = 200

DEMO_SRC = r"""
import http.server, sys
body = ("# TYPE demo_series gauge\n" +
        "".join('demo_series{i="%d"} %d\n' % (i, i) for i in range(int(sys.argv[2])))).encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def query(base, expr, **extra):
    params = dict(query=expr, **extra)
    st, _, body = http(base + "/api/v1/query?" + urllib.parse.urlencode(params))
    return st, json.loads(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--web-modules", required=True, help="web/node_modules")
    ap.add_argument("--artifacts", required=True, help="where the screenshots go")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.web_modules, "puppeteer-core")):
        log("web_ui: %s/puppeteer-core is missing (scripts/bootstrap.sh runs npm ci in web/)"
            % args.web_modules)
        return 77
    shutil.rmtree(args.artifacts, ignore_errors=True)
    os.makedirs(args.artifacts)
    work = tempfile.mkdtemp(prefix="orrery-webui-")
    try:
        run(args, work)
    finally:
        stop_all()
        if not failed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("logs kept in " + work)
    log("web_ui: %d check(s) failed: %s" % (len(failed), ", ".join(failed)) if failed else "web_ui: all passed")
    return 1 if failed else 0


def run(args, work):
    t0 = time.monotonic()
    demo_port = free_port()
    demo = start("demo", [sys.executable, "-c", DEMO_SRC, str(demo_port), str(NSERIES)], work)
    prom_ports = {r: free_port() for r in "ab"}
    proms = {}
    for r in "ab":
        cfg = os.path.join(work, "prom-%s.yml" % r)
        with open(cfg, "w") as f:
            f.write("""global:
  scrape_interval: 1s
  external_labels: {cluster: c1, replica: %s}
scrape_configs:
  - job_name: demo
    static_configs: [{targets: ['127.0.0.1:%d']}]
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:%d', '127.0.0.1:%d']}]
""" % (r, demo_port, prom_ports["a"], prom_ports["b"]))
        proms[r] = start("prom-" + r, [args.prometheus, "--config.file=" + cfg,
                                       "--storage.tsdb.path=" + os.path.join(work, "data-" + r),
                                       "--web.listen-address=127.0.0.1:%d" % prom_ports[r]], work)
    side = {}
    for r in "ab":
        gp, hp = free_port(), free_port()
        side[r] = "127.0.0.1:%d" % gp
        start("sidecar-" + r, [args.orrery, "sidecar", "--prometheus.url=http://127.0.0.1:%d" % prom_ports[r],
                               "--tsdb.path=" + os.path.join(work, "data-" + r),
                               "--grpc-address=" + side[r], "--http-address=127.0.0.1:%d" % hp], work)
    gw_port = free_port()
    gw = start("gateway", [args.orrery, "gateway", "--http-address=127.0.0.1:%d" % gw_port,
                           "--grpc-address=127.0.0.1:%d" % free_port(), "--query.replica-label=replica",
                           "--endpoint=" + side["a"], "--endpoint=" + side["b"]], work)
    base = "http://127.0.0.1:%d" % gw_port
    # A second gateway behind a path prefix, as behind a reverse proxy that
    # maps /ext/orr/ to it and strips /ext.
    gw2_port = free_port()
    start("gateway-prefixed", [args.orrery, "gateway", "--http-address=127.0.0.1:%d" % gw2_port,
                               "--grpc-address=127.0.0.1:%d" % free_port(), "--query.replica-label=replica",
                               "--web.route-prefix=orr/", "--web.external-prefix=/ext/orr",
                               "--endpoint=" + side["a"], "--endpoint=" + side["b"]], work)
    base2 = "http://127.0.0.1:%d" % gw2_port
    prom_a = "http://127.0.0.1:%d" % prom_ports["a"]

    def stores_up():
        def up(b):
            st, _, body = http(b + "/api/v1/stores")
            d = json.loads(body).get("data") or {} if st == 200 else {}
            return sum(1 for v in d.values() for e in v if not e.get("lastError")) == 2
        return up(base) and up(base2 + "/orr")

    def scraped():
        # Every target scraped by both replicas, as seen through the gateway.
        st, j = query(base, "count(up == 1)", dedup="false")
        return st == 200 and j["data"]["result"] and j["data"]["result"][0]["value"][1] == "6"

    wait_until("two stores up", stores_up, procs)
    wait_until("both replicas' scrapes", scraped, procs)
    log("setup ready in %.1f s" % (time.monotonic() - t0))
    # The 200 x 1,001 graph's range starts after this (web_ui.js waits for it).
    t_first = time.time()

    # ---- the assets over HTTP
    st, h, body = http(base + "/", {"Accept-Encoding": "gzip"})
    check("GET / is the page, gzip", st == 200 and h.get("Content-Type", "").startswith("text/html")
          and h.get("Content-Encoding") == "gzip" and b"static/app.js" in gzip.decompress(body),
          "%s %s" % (st, h))
    etag = h.get("ETag", "")
    st2, _, _ = http(base + "/graph", {"If-None-Match": etag})
    check("ETag revalidates (304)", bool(etag) and st2 == 304, "etag %r status %s" % (etag, st2))
    total = len(body)
    for name, ctype in [("app.js", "text/javascript"), ("app.css", "text/css"),
                        ("uPlot.js", "text/javascript"), ("uPlot.css", "text/css")]:
        st, h, z = http(base + "/static/" + name, {"Accept-Encoding": "gzip"})
        st_p, h_p, plain = http(base + "/static/" + name)
        ok = (st == 200 and st_p == 200 and h.get("Content-Type", "").startswith(ctype)
              and h.get("Content-Encoding") == "gzip" and "Content-Encoding" not in h_p
              and gzip.decompress(z) == plain)
        check("/static/%s: %s, gzip and identity agree" % (name, ctype), ok, "%s %s / %s %s" % (st, h, st_p, h_p))
        total += len(z)
    st, _, _ = http(base + "/static/nope.js")
    check("/static/nope.js is 404", st == 404, str(st))

    # ---- --web.route-prefix and --web.external-prefix
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    for path in ("/orr", "/"):
        try:
            opener.open(base2 + path, timeout=30)
            st, loc = 200, None
        except urllib.error.HTTPError as e:
            st, loc = e.code, e.headers.get("Location")
        check("prefixed gateway: %s redirects to the external prefix's graph" % path,
              st == 302 and loc == "/ext/orr/graph", "%s %s" % (st, loc))
    st, _, body = http(base2 + "/orr/graph")
    st_js, _, _ = http(base2 + "/orr/static/app.js")
    st_q, j = query(base2 + "/orr", "up")
    st_root, _, _ = http(base2 + "/api/v1/query?query=up")
    check("prefixed gateway: page, assets and API under /orr, not at the root",
          st == 200 and b"static/app.js" in body and st_js == 200 and st_q == 200
          and len(j["data"]["result"]) == 3 and st_root == 404,
          "%s %s %s %s" % (st, st_js, st_q, st_root))
    p = subprocess.run([args.orrery, "gateway", "--web.route-prefix=/a?b", "--endpoint=127.0.0.1:1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    check("a bad --web.route-prefix is refused", p.returncode != 0 and "web.route-prefix" in p.stdout,
          "exit %d: %s" % (p.returncode, p.stdout.strip()[-200:]))
    log("compressed assets of the page (index.html + 4 files): %d bytes" % total)

    # ---- what the browser must show, asked of the API and of Prometheus
    _, dedup = query(base, "up")
    _, nodedup = query(base, "up", dedup="false")
    n_dedup, n_nodedup = len(dedup["data"]["result"]), len(nodedup["data"]["result"])
    check("API: up has 3 series deduplicated, 6 without", (n_dedup, n_nodedup) == (3, 6),
          "%d / %d" % (n_dedup, n_nodedup))
    bad = "sum(rate(up[5m])"
    _, gw_err = query(base, bad)
    _, prom_err = query(prom_a, bad)
    check("API: the bad query's error is Prometheus's", gw_err.get("error") == prom_err.get("error"),
          "%r vs %r" % (gw_err.get("error"), prom_err.get("error")))

    spec = {"base": base, "artifacts": args.artifacts, "chromium": args.chromium,
            "modules": args.web_modules, "dedup": n_dedup, "nodedup": n_nodedup, "bad": bad,
            "bad_error": prom_err.get("error", ""), "stores": sorted(side.values()),
            "big_expr": "demo_series", "big_series": NSERIES, "t_first": t_first,
            "profile": os.path.join(work, "chromium-profile"), "prefixed": base2 + "/orr"}
    run_browser(args.node, os.path.join(HERE, "web_ui.js"), spec)
    log("screenshots: %s (whole run %.1f s)" % (args.artifacts, time.monotonic() - t0))


if __name__ == "__main__":
    sys.exit(main())
