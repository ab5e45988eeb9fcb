#!/usr/bin/env python3
"""gateway_e2e.py: end-to-end tests of the gateway over real Prometheus 2.42.

Topology (all on 127.0.0.1, free ports, every process killed by PID on exit):
two regions (eu, us), each an HA pair of Prometheus (external labels region,
replica=a|b) loaded with the same promtool-made blocks (the PromQL
differential dataset, so both replicas hold identical data) and scraping a
shared demo target and themselves every second; an `orrery sidecar` beside
each; gateways over them:
  gw_all  all four sidecars        gw_eu / gw_us  one region each
  gw_top  stacked on gw_eu + gw_us (their StoreAPI)
  gw_small  eu, --query.max-samples=2000
  gw_bh   eu-a + a TCP endpoint that accepts and never answers

Checks (each prints PASS/FAIL; exit 1 when any fails):
  a  every query of tests/integration/promql/queries.txt through gw_eu
     (dedup on, POST form as Grafana sends it) equals the same query sent to
     Prometheus eu-a directly (the external label region="eu" removed from
     both; service_info's own region label set to "eu" on Prometheus's side,
     since the external label wins; 1e-6 relative, NaN==NaN; the engine's
     known mismatches are allowed); with dedup=false both replicas' series
     appear. API errors are compared with Prometheus's.
  b  us-a stopped for OUTAGE_S seconds and restarted: up and rate() through
     gw_us have no gap and no spurious counter reset over the window (and
     us-a alone does have the gap).
  c  the black-hole endpoint: with partial response the query returns in
     time with a warning naming it; with partial_response=false an error.
  d  gw_top answers as gw_all on a query sample.
  e  gw_small refuses a large query with Prometheus's too-many-samples
     error (422); gw_all's peak RSS (VmHWM) over a large query is reported
     and must stay under 512 MiB.
  f  Grafana's requests (POST forms), gzip, and /federate scraped by a
     Prometheus with honor_labels: true.

TLS: the eu sidecars serve StoreAPI over mutual TLS, each with its own CA
(eu-a the test CA, eu-b the other one; certificates made by openssl through
tests/integration/tls/mkcerts.sh), the us sidecars in plaintext; every
gateway reaches the eu ones through --endpoint.sd-config with per-endpoint
tls_config, so every check above runs through both kinds of connection
(gw_eu: two mTLS sidecars with different CAs; gw_all: those and two in
plaintext).
"""
import argparse
import atexit
import concurrent.futures
import gzip
import http.server as httpserver
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PROMQL = os.path.join(HERE, "..", "promql")
sys.path.insert(0, PROMQL)
import gen_data  # noqa: E402
import promql_diff  # noqa: E402

OUTAGE_S = int(os.environ.get("GATEWAY_E2E_OUTAGE_S", "60"))
procs = []
results = []
results_lock = threading.Lock()
finished = set()  # letters of the checks that ran to their end


def log(msg):
    print(msg, flush=True)


def check(name, ok, detail=""):
    with results_lock:
        results.append((name, ok))
    log("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""))
    return ok


def run_test(letter, fn, args):
    """Runs one lettered check; whatever it raises is a failed check, on
    whichever thread it runs (an exception in a thread is otherwise only
    printed, and the checks it never made would not count as failures)."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001
        log(traceback.format_exc())
        check("%s: raised %r" % (letter, e), False)
    finished.add(letter)  # not reached when a thread dies of SystemExit and the like


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from portpick import free_port  # noqa: E402


class Proc:
    def __init__(self, name, argv, work):
        self.name, self.argv = name, argv
        self.logpath = os.path.join(work, name + ".log")
        self.start()
        procs.append(self)

    def start(self):
        self.log = open(self.logpath, "a")
        self.p = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  preexec_fn=promql_diff._die_with_parent)

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()


def http(method, url, params=None, headers=None, timeout=60, raw=False):
    """Returns (status, headers, body-bytes-or-str)."""
    data = None
    hdrs = dict(headers or {})
    if params is not None and method == "POST":
        data = urllib.parse.urlencode(params).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif params is not None:
        url += "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return r.status, dict(r.headers), body if raw else body.decode()
    except urllib.error.HTTPError as e:
        body = e.read()
        return e.code, dict(e.headers), body if raw else body.decode()


def wait_ready(url, proc, deadline_s=90):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.p.poll() is not None:
            raise RuntimeError("%s exited; log %s" % (proc.name, proc.logpath))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # readiness poll interval
    raise RuntimeError("%s not ready; log %s" % (proc.name, proc.logpath))


# ---------------------------------------------------------------- demo target
DEMO_SRC = r"""
import http.server, sys, time
t0 = float(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        v = int((time.time() - t0) * 10)
        # demo_prefix: one series a label-prefix of the other, which external
        # labels (region, replica) reorder in StoreAPI's order.
        body = ("# TYPE demo_counter_total counter\ndemo_counter_total %d\n"
                "demo_prefix 1\ndemo_prefix{quantile=\"0.5\"} 2\n" % v).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


class Demo:
    """A target both replicas scrape, in its own process: demo_counter_total
    grows 10/s (computed from the clock, so both replicas see one counter),
    and demo_prefix and demo_prefix{quantile="0.5"}."""

    def __init__(self, work):
        self.port = free_port()
        self.proc = Proc("demo", [sys.executable, "-c", DEMO_SRC, str(self.port), str(time.time())], work)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)  # until the demo server listens
        raise RuntimeError("demo target did not start")


class BlackHole:
    """A TCP proxy to |target| that, once hang() is called, stops answering:
    open connections get nothing more, new ones are accepted and left silent
    (an endpoint that accepts connections but never answers)."""

    def __init__(self, target):
        self.target = target
        self.hanging = False
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(64)
        self.port = self.s.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.loop, daemon=True).start()

    def hang(self):
        self.hanging = True

    def loop(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.hanging:
                continue
            try:
                u = socket.create_connection(self.target)
            except OSError:
                continue
            self.conns.append(u)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    def pipe(self, a, b):
        while True:
            try:
                d = a.recv(65536)
            except OSError:
                return
            if not d:
                return
            if self.hanging:
                continue  # swallow: never answer again
            try:
                b.sendall(d)
            except OSError:
                return


# ---------------------------------------------------------------- topology
# Sidecars serving StoreAPI over mutual TLS, and the CA of each (the others
# serve plaintext).
SIDECAR_TLS_CA = {"eu-a": "ca", "eu-b": "otherca"}


class Topology:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.demo = Demo(work)
        blocks = promql_diff.make_blocks(args.promtool, work)
        self.blocks = blocks
        self.prom, self.side = {}, {}
        for region in ("eu", "us"):
            for rep in ("a", "b"):
                self.start_prom(region, rep, blocks)
        for k, p in self.prom.items():
            wait_ready(p.url + "/-/ready", p)
        self.certs = os.path.join(work, "certs")
        subprocess.run(["bash", os.path.join(HERE, "..", "tls", "mkcerts.sh"), self.certs],
                       check=True, stdout=subprocess.DEVNULL)
        self.ep_tls = {}  # endpoint address -> the CA of its mTLS ("ca", "otherca")
        for k in self.prom:
            self.start_sidecar(k)
        for k, s in self.side.items():
            wait_ready(s.url + "/-/ready", s)
        g = lambda *ks: [self.side[k].grpc for k in ks]
        self.gw = {}
        self.start_gw("gw_all", g("eu-a", "eu-b", "us-a", "us-b"))
        self.start_gw("gw_eu", g("eu-a", "eu-b"))
        self.start_gw("gw_us", g("us-a", "us-b"))
        self.start_gw("gw_small", g("eu-a", "eu-b"), ["--query.max-samples=2000"])
        host, port = self.side["eu-b"].grpc.split(":")
        self.bh = BlackHole((host, int(port)))
        self.ep_tls["127.0.0.1:%d" % self.bh.port] = self.ep_tls[self.side["eu-b"].grpc]
        self.start_gw("gw_bh", g("eu-a") + ["127.0.0.1:%d" % self.bh.port],
                      ["--store.response-timeout=2s"])
        for k, gw in self.gw.items():
            wait_ready(gw.url + "/-/ready", gw)
        for k in ("gw_eu", "gw_us"):
            self.wait_stores(self.gw[k], 2)
        self.start_gw("gw_top", [self.gw["gw_eu"].grpc, self.gw["gw_us"].grpc])
        wait_ready(self.gw["gw_top"].url + "/-/ready", self.gw["gw_top"])
        for k, gw in self.gw.items():
            if k == "gw_top":  # checked by (d) itself
                continue
            self.wait_stores(gw, gw.need_up)

    def start_prom(self, region, rep, blocks):
        key = "%s-%s" % (region, rep)
        port = free_port()
        data = os.path.join(self.work, "prom-" + key)
        shutil.copytree(blocks, data)
        cfg = os.path.join(self.work, "prom-%s.yml" % key)
        with open(cfg, "w") as f:
            f.write("""global:
  scrape_interval: 1s
  external_labels: {region: %s, replica: %s}
scrape_configs:
  - job_name: demo
    static_configs: [{targets: ['127.0.0.1:%d']}]
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:%d']}]
""" % (region, rep, self.demo.port, port))
        argv = [self.args.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
                "--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:%d" % port]
        p = Proc("prom-" + key, argv, self.work)
        p.url = "http://127.0.0.1:%d" % port
        self.prom[key] = p

    def start_sidecar(self, key):
        gp, hp = free_port(), free_port()
        argv = [self.args.orrery, "sidecar", "--prometheus.url=" + self.prom[key].url,
                "--tsdb.path=" + os.path.join(self.work, "prom-" + key),
                "--grpc-address=127.0.0.1:%d" % gp, "--http-address=127.0.0.1:%d" % hp]
        ca = SIDECAR_TLS_CA.get(key)
        if ca:
            c = lambda f: os.path.join(self.certs, f)  # noqa: E731
            srv = "server" if ca == "ca" else "otherserver"
            argv += ["--grpc-server-tls-cert=" + c(srv + ".crt"), "--grpc-server-tls-key=" + c(srv + ".key"),
                     "--grpc-server-tls-client-ca=" + c(ca + ".crt")]
            self.ep_tls["127.0.0.1:%d" % gp] = ca
        s = Proc("sidecar-" + key, argv, self.work)
        s.url, s.grpc = "http://127.0.0.1:%d" % hp, "127.0.0.1:%d" % gp
        self.side[key] = s

    def start_gw(self, name, endpoints, extra=(), need_up=None):
        gp, hp = free_port(), free_port()
        argv = [self.args.orrery, "gateway", "--http-address=127.0.0.1:%d" % hp,
                "--grpc-address=127.0.0.1:%d" % gp, "--query.replica-label=replica"]
        argv += ["--endpoint=" + e for e in endpoints if e not in self.ep_tls] + list(extra)
        tls_eps = [e for e in endpoints if e in self.ep_tls]
        if tls_eps:
            c = lambda f: os.path.join(self.certs, f)  # noqa: E731
            cfg = os.path.join(self.work, name + "-endpoints.yml")
            with open(cfg, "w") as f:
                f.write("endpoints:\n")
                for e in tls_eps:
                    cli = "client" if self.ep_tls[e] == "ca" else "otherclient"
                    f.write("  - address: %s\n    tls_config: {ca_file: %s, cert_file: %s, key_file: %s}\n"
                            % (e, c(self.ep_tls[e] + ".crt"), c(cli + ".crt"), c(cli + ".key")))
            argv.append("--endpoint.sd-config-file=" + cfg)
        g = Proc(name, argv, self.work)
        g.url, g.grpc = "http://127.0.0.1:%d" % hp, "127.0.0.1:%d" % gp
        g.need_up = len(endpoints) if need_up is None else need_up
        self.gw[name] = g

    def wait_stores(self, gw, n, deadline_s=60):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            st, _, body = http("GET", gw.url + "/api/v1/stores")
            if st == 200:
                d = json.loads(body).get("data") or {}
                up = sum(1 for v in d.values() for e in v if not e.get("lastError"))
                if up >= n:
                    return
            time.sleep(0.2)  # poll until the gateway's Info calls succeeded
        raise RuntimeError("%s: fewer than %d endpoints up; log %s" % (gw.name, n, gw.logpath))


def bench_stack(args, work, scale, region):
    """The stack of bench/gateway_vs_prometheus.sh and bench/gateway_stress.sh:
    stack_over_blocks over the PromQL differential dataset at |scale| (made
    into blocks by promtool once per |work|)."""
    om = os.path.join(work, "data.om")
    blocks = os.path.join(work, "blocks")
    if not os.path.isdir(blocks):
        gen_data.gen(om, scale)
        subprocess.run([args.promtool, "tsdb", "create-blocks-from", "openmetrics", om, blocks],
                       check=True, stdout=subprocess.DEVNULL)
    return stack_over_blocks(args, work, blocks, region)


def stack_over_blocks(args, work, blocks, region, prom_ready_s=90, info_s=60):
    """Prometheus over a fresh copy of |blocks|, an orrery sidecar beside it
    with the external labels {region: |region|, replica: a}, and a gateway
    over the sidecar, each ready (Prometheus within |prom_ready_s|: large
    blocks take a while to open) and the sidecar's Info answered through the
    gateway (within |info_s|). |args| has orrery and prometheus. The
    processes are in |procs| (the caller stops them). Returns (prom, side,
    gw); prom.url, gw.url and gw.port (its HTTP port) are set."""
    data = os.path.join(work, "prom")
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(blocks, data)
    pport = free_port()
    cfg = os.path.join(work, "prom.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1h\n  external_labels: {region: %s, replica: a}\n"
                "scrape_configs: []\n" % region)
    prom = Proc("prometheus", [args.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
                               "--storage.tsdb.retention.time=100y",
                               "--web.listen-address=127.0.0.1:%d" % pport], work)
    prom.url = "http://127.0.0.1:%d" % pport
    wait_ready(prom.url + "/-/ready", prom, prom_ready_s)
    gp, hp = free_port(), free_port()
    side = Proc("sidecar", [args.orrery, "sidecar", "--prometheus.url=" + prom.url, "--tsdb.path=" + data,
                            "--grpc-address=127.0.0.1:%d" % gp, "--http-address=127.0.0.1:%d" % hp], work)
    wait_ready("http://127.0.0.1:%d/-/ready" % hp, side)
    gh = free_port()
    gw = Proc("gateway", [args.orrery, "gateway", "--http-address=127.0.0.1:%d" % gh,
                          "--grpc-address=127.0.0.1:%d" % free_port(),
                          "--query.replica-label=replica", "--endpoint=127.0.0.1:%d" % gp], work)
    gw.url, gw.port = "http://127.0.0.1:%d" % gh, gh
    wait_ready(gw.url + "/-/ready", gw)
    deadline = time.monotonic() + info_s  # until the sidecar's Info answered
    while True:
        st, _, body = http("GET", gw.url + "/api/v1/stores")
        if st == 200 and any(not e.get("lastError") for v in (json.loads(body).get("data") or {}).values()
                             for e in v):
            return prom, side, gw
        if time.monotonic() > deadline:
            sys.exit("gateway: the sidecar endpoint is not up; log %s" % gw.logpath)
        time.sleep(0.2)  # poll interval


# ---------------------------------------------------------------- helpers
EXT_REGION = "eu"  # gw_eu's endpoints' external label region
# service_info is the dataset's one metric with a region label of its own;
# through a sidecar the external label replaces it (as in Thanos).
OWN_REGION_RE = re.compile(r"\bservice_info\b(\{[^{}]*\})?")


def with_ext_region(q):
    """The query Prometheus (which does not apply external labels to its
    query answers) must be asked for the gateway's answer: each instant
    service_info selector wrapped in label_replace(..., "region", "eu", "", "")
    (a range selector or the name in a string is left as it is)."""
    def wrap(m):
        before, after = m.string[:m.start()], m.string[m.end():].lstrip()
        if before.endswith('"') or after.startswith(("[", "{")):
            return m.group(0)
        return 'label_replace(%s, "region", "%s", "", "")' % (m.group(0), EXT_REGION)
    expr = OWN_REGION_RE.sub(wrap, q.expr)
    if expr == q.expr:
        return q
    return promql_diff.Query(q.lineno, q.mode, q.params, expr, q.options)


def strip_ext_region(body):
    """The gateway adds region="eu" to every series; Prometheus's answer to
    with_ext_region's query has it where the gateway's label replaced the
    dataset's. Only that value is removed: any other region (the dataset's
    own, kept where the external label should have won) stays and differs."""
    try:
        d = json.loads(body)
    except ValueError:
        return body
    if d.get("status") == "error":
        d["error"] = re.sub(r'region="%s", |, region="%s"|region="%s"' % ((EXT_REGION,) * 3), "",
                            d.get("error", ""))
    r = (d.get("data") or {}).get("result")
    if isinstance(r, list):
        for s in r:
            if isinstance(s, dict) and s.get("metric", {}).get("region") == EXT_REGION:
                del s["metric"]["region"]
    return json.dumps(d)


def known_mismatch_exprs():
    p = os.path.join(PROMQL, "KNOWN_MISMATCHES.md")
    exprs = set()
    with open(p) as f:
        for line in f:
            for m in re.finditer(r"`(?:instant|range) [^`:]*: ([^`]+)`", line):
                exprs.add(m.group(1).strip())
    exprs.add("log10(special_values)")
    return exprs


def q_params(q):
    return [("query", q.expr)] + q.params


# ---------------------------------------------------------------- (a)
def test_a(t, args):
    queries = promql_diff.read_queries(args.queries)
    known = known_mismatch_exprs()
    gw, prom = t.gw["gw_eu"], t.prom["eu-a"]

    def one(q):
        path = "/api/v1/query" if q.mode == "instant" else "/api/v1/query_range"
        ps, _, pb = http("POST", prom.url + path, q_params(with_ext_region(q)), timeout=120)
        st, _, gb = http("POST", gw.url + path, q_params(q), timeout=120)
        ok = '"status":"success"' in gb
        return q, ps, pb, st, gb, ok

    bad, allowed, engine = [], 0, 0
    rewritten = sum(1 for q in queries if with_ext_region(q) is not q)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        for q, ps, pb, st, gb, ok in ex.map(one, queries):
            diffs = promql_diff.compare(q, strip_ext_region(pb), 0 if ok else 1, strip_ext_region(gb) + "\n", "")
            if ps != st:  # 400 bad_data, 422 execution, 503 timeout ... as Prometheus answers
                diffs.append("HTTP status: prometheus %d, gateway %d" % (ps, st))
            if diffs:
                if q.expr in known or any(k in q.expr for k in known):
                    allowed += 1
                    continue
                # Where orrery's engine itself differs from Prometheus on these
                # blocks (promql_diff's business), the gateway must agree with
                # the engine instead.
                rc, out, err = promql_diff.run_orrery(args.orrery, t.blocks, with_ext_region(q))
                if rc in (0, 1) and not promql_diff.compare(q, strip_ext_region(out.strip()), 0 if ok else 1,
                                                             strip_ext_region(gb) + "\n", ""):
                    engine += 1
                    continue
                bad.append((q, diffs))
    for q, diffs in bad[:10]:
        log("  MISMATCH %s\n      %s" % (q.describe(), "\n      ".join(diffs[:3])))
    check("a: %d queries via gw_eu (dedup) == Prometheus eu-a" % len(queries), not bad,
          "%d mismatched, %d known engine mismatches, %d where the gateway agrees with `orrery tools query` "
          "(engine mismatches); %d selecting service_info compared with its region set to the external "
          "label's; %.1f s" % (len(bad), allowed, engine, rewritten, time.monotonic() - t0))

    # dedup=false shows both replicas.
    p = {"query": "temperature_celsius", "time": "1700003600"}
    _, _, d1 = http("POST", gw.url + "/api/v1/query", p)
    _, _, d0 = http("POST", gw.url + "/api/v1/query", dict(p, dedup="false"))
    r1 = json.loads(d1)["data"]["result"]
    r0 = json.loads(d0)["data"]["result"]
    reps = sorted(set(s["metric"].get("replica", "") for s in r0))
    check("a: dedup=false gives both replicas' series", len(r1) > 0 and len(r0) == 2 * len(r1)
          and reps == ["a", "b"] and all("replica" not in s["metric"] for s in r1),
          "dedup %d series, no dedup %d (replicas %s)" % (len(r1), len(r0), reps))

    # The API's errors, byte for byte with Prometheus's, GET and POST.
    cases = [
        ("/api/v1/query", {"query": "up", "time": "abc"}),
        ("/api/v1/query", {"query": "sum("}),
        ("/api/v1/query", {"query": "up", "timeout": "xyz"}),
        ("/api/v1/query_range", {"query": "up", "start": "100", "end": "50", "step": "10"}),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "100000", "step": "1"}),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "100", "step": "0"}),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "100", "step": "x"}),
        ("/api/v1/query_range", {"query": "up", "start": "x", "end": "100", "step": "1"}),
        ("/api/v1/query_range", {"query": "up[5m]", "start": "0", "end": "100", "step": "1"}),
        ("/api/v1/series", {}),
        ("/api/v1/series", {"match[]": "{job=~\".*\"}"}),
        ("/api/v1/series", {"match[]": "up{"}),
        ("/api/v1/series", {"match[]": "up", "start": "bad"}),
        ("/api/v1/labels", {"match[]": "{a=\"\"}"}),
        ("/api/v1/label/1abc/values", {}),
        ("/api/v1/query", {"query": "up", "dedup": "maybe"}),
    ]
    errs = []
    for path, params in cases:
        for method in ("GET", "POST"):
            if method == "POST" and "/label/" in path:
                continue
            ps, _, pb = http(method, prom.url + path, params)
            gs, _, gb = http(method, gw.url + path, params)
            if path.endswith("/query") and "dedup" in params:
                want = ('{"status":"error","errorType":"bad_data","error":"\'dedup\' parameter: '
                        'strconv.ParseBool: parsing \\"maybe\\": invalid syntax"}')
                if gs != 400 or gb != want:
                    errs.append("%s %s %s: got %d %s" % (method, path, params, gs, gb))
                continue
            if ps != gs or pb != gb:
                errs.append("%s %s %s: prometheus %d %s, gateway %d %s" % (method, path, params, ps, pb, gs, gb))
    for e in errs[:6]:
        log("  " + e)
    check("a: API errors as Prometheus's (%d requests)" % (2 * len(cases)), not errs)


# ---------------------------------------------------------------- (b)
def max_gap(samples):
    ts = [float(t) for t, _ in samples]
    return max((b - a for a, b in zip(ts, ts[1:])), default=float("inf")), len(ts)


def test_b(t):
    p = t.prom["us-a"]
    gw = t.gw["gw_us"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until both replicas have scraped the demo target 20 times
        n = []
        for k in ("us-a", "us-b"):
            st, _, b = http("GET", t.prom[k].url + "/api/v1/query", {"query": 'count_over_time(up{job="demo"}[1m])'})
            r = json.loads(b)["data"]["result"] if st == 200 else []
            n.append(float(r[0]["value"][1]) if r else 0)
        if min(n) >= 20:
            break
        time.sleep(0.5)
    t_stop = time.time()
    p.stop()
    time.sleep(OUTAGE_S)
    p.start()
    wait_ready(p.url + "/-/ready", p)
    t_restart = time.time()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until us-a has scraped 5 times since its restart
        st, _, b = http("GET", p.url + "/api/v1/query", {"query": 'up{job="demo"}[1m]'})
        r = json.loads(b)["data"]["result"] if st == 200 else []
        if r and sum(1 for ts, _ in r[0]["values"] if float(ts) > t_restart) >= 5:
            break
        time.sleep(0.5)
    end = int(time.time())
    start = int(t_stop) - 5
    w = end - start

    def inst(url, q):
        st, _, b = http("POST", url + "/api/v1/query", {"query": q, "time": str(end)})
        r = json.loads(b)["data"]["result"] if st == 200 else []
        return r[0]["values"] if len(r) == 1 else []

    # Raw samples: the gateway's merged series has no hole; us-a's own has the outage.
    gap_gw, n_gw = max_gap(inst(gw.url, 'up{job="demo"}[%ds]' % w))
    gap_a, n_a = max_gap(inst(p.url, 'up{job="demo"}[%ds]' % w))
    st, _, b = http("POST", gw.url + "/api/v1/query_range",
                    {"query": 'rate(demo_counter_total{job="demo"}[10s])', "start": str(start),
                     "end": str(end), "step": "1"})
    r = json.loads(b)["data"]["result"] if st == 200 else []
    vals = [float(v) for _, v in r[0]["values"]] if len(r) == 1 else []
    have = set(int(float(ts)) for ts, _ in r[0]["values"]) if len(r) == 1 else set()
    missing = [x - int(t_stop) for x in range(start, end + 1) if x not in have]
    low = [(int(float(ts)) - int(t_stop), round(float(v), 1)) for ts, v in r[0]["values"] if float(v) < 8] if r else []
    st, _, b = http("POST", gw.url + "/api/v1/query",
                    {"query": 'resets(demo_counter_total{job="demo"}[%ds])' % w, "time": str(end)})
    rr = json.loads(b)["data"]["result"] if st == 200 else []
    nres = float(rr[0]["value"][1]) if len(rr) == 1 else -1
    # Thanos's penalty dedup switches replicas after a 5 s silence (its initial
    # penalty), so with 1 s scrapes the merged samples may be up to ~6 s apart.
    # A false reset would show as resets > 0 and a rate spike of the counter's
    # whole value (> 100/s here); every step must have a rate.
    ok = (gap_gw <= 6.5 and len(vals) == w + 1 and min(vals or [0]) > 0 and max(vals or [99]) < 20
          and nres == 0)
    if not ok:  # show each replica's samples as the gateway sees them
        st, _, b = http("POST", gw.url + "/api/v1/query", {"query": 'up{job="demo"}[%ds]' % w, "time": str(end),
                                                           "dedup": "false"})
        for sr in (json.loads(b)["data"]["result"] if st == 200 else []):
            ts = [round(float(x) - t_stop, 1) for x, _ in sr["values"]]
            holes = [(a, b2) for a, b2 in zip(ts, ts[1:]) if b2 - a > 2.5]
            log("  replica %s: %d samples from %s to %s s after the stop, holes %s" %
                (sr["metric"].get("replica"), len(ts), ts[:1], ts[-1:], holes))
    check("b: %ds outage of us-a: through the gateway up and rate() have no gap, no false reset" % OUTAGE_S, ok,
          "up: %d samples, largest gap %.1f s; rate: %d of %d steps, min %.2f max %.2f (demo grows 10/s); "
          "resets %s; steps missing at %s s and rate < 8 at %s (s after the stop; restart at +%d s)"
          % (n_gw, gap_gw, len(vals), w + 1, min(vals or [0]), max(vals or [0]), nres, missing[:5], low[:6],
             t_restart - t_stop))
    check("b: us-a alone has the hole (the check can fail)", gap_a >= OUTAGE_S - 5,
          "%d samples, largest gap %.1f s" % (n_a, gap_a))


# ---------------------------------------------------------------- (c)
def test_c(t):
    gw = t.gw["gw_bh"]
    bh = "127.0.0.1:%d" % t.bh.port
    # The endpoint answered Info (it is up); from now on it never answers.
    t.bh.hang()
    p = {"query": "temperature_celsius", "time": "1700003600", "timeout": "10s"}
    t0 = time.monotonic()
    st, _, b = http("POST", gw.url + "/api/v1/query", dict(p, partial_response="true"))
    dt = time.monotonic() - t0
    d = json.loads(b)
    w = d.get("warnings") or []
    check("c: black-hole endpoint, partial response: success with a warning naming it",
          st == 200 and d.get("status") == "success" and any(bh in x for x in w) and dt < 10,
          "%d in %.1f s, warnings %s" % (st, dt, w))
    t0 = time.monotonic()
    st, _, b = http("POST", gw.url + "/api/v1/query", dict(p, partial_response="false"))
    dt = time.monotonic() - t0
    d = json.loads(b)
    check("c: black-hole endpoint, partial_response=false: an error naming it",
          d.get("status") == "error" and bh in d.get("error", "") and dt < 11,
          "%d in %.1f s: %s" % (st, dt, b[:300]))


# ---------------------------------------------------------------- (d)
def test_d(t, args):
    t.wait_stores(t.gw["gw_top"], 2)
    queries = [q for q in promql_diff.read_queries(args.queries)][::7]
    diffs_all = []
    for q in queries:
        path = "/api/v1/query" if q.mode == "instant" else "/api/v1/query_range"
        _, _, a = http("POST", t.gw["gw_all"].url + path, q_params(q))
        _, _, b = http("POST", t.gw["gw_top"].url + path, q_params(q))
        ok = '"status":"success"' in b
        diffs = promql_diff.compare(q, a, 0 if ok else 1, b + "\n", "")
        if diffs:
            diffs_all.append((q, diffs))
    for q, d in diffs_all[:5]:
        log("  MISMATCH %s\n      %s" % (q.describe(), "\n      ".join(d[:3])))
    check("d: gateway stacked on two gateways == one gateway on all endpoints (%d queries)" % len(queries),
          not diffs_all, "%d differ" % len(diffs_all))


# ---------------------------------------------------------------- (e)
def vmhwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def test_e(t):
    st, _, b = http("POST", t.gw["gw_small"].url + "/api/v1/query_range",
                    {"query": "sum(rate(http_requests_total[5m]))", "start": "1700000000",
                     "end": "1700010800", "step": "60"})
    want = ('{"status":"error","errorType":"execution","error":"query processing would load too many '
            'samples into memory in query execution"}')
    check("e: over --query.max-samples: Prometheus's error, 422", st == 422 and b == want, "%d %s" % (st, b[:200]))
    gw = t.gw["gw_all"]
    before = vmhwm(gw.p.pid)
    t0 = time.monotonic()
    st, _, b = http("POST", gw.url + "/api/v1/query_range",
                    {"query": '{__name__=~".+"}', "start": "1700000000", "end": "1700010800",
                     "step": "15", "dedup": "false"}, timeout=120)
    dt = time.monotonic() - t0
    after = vmhwm(gw.p.pid)
    n = len(json.loads(b)["data"]["result"]) if st == 200 else -1
    # A client that goes away mid-stream, then a query past its deadline: the
    # gateway cancels and keeps serving.
    body = urllib.parse.urlencode({"query": '{__name__=~".+"}', "start": "1700000000", "end": "1700010800",
                                   "step": "15", "dedup": "false"}).encode()
    u = urllib.parse.urlparse(gw.url)
    c = socket.create_connection((u.hostname, u.port))
    c.sendall(b"POST /api/v1/query_range HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
              b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    first = c.recv(4096)
    c.close()
    st_t, _, bt = http("POST", gw.url + "/api/v1/query_range",
                       {"query": 'count_over_time({__name__=~".+"}[1h])', "start": "1700000000",
                        "end": "1700010800", "step": "15", "timeout": "0.001"})
    st_h, _, _ = http("GET", gw.url + "/-/healthy")
    dt_ok = json.loads(bt).get("errorType") == "timeout" if st_t == 503 else False
    check("e: client gone mid-stream and timeout=1ms: 503 timeout, gateway still healthy",
          first.startswith(b"HTTP/1.1 200") and dt_ok and st_h == 200 and gw.p.poll() is None,
          "first bytes %r; timeout answer %d %s" % (first[:40], st_t, bt[:160]))
    check("e: peak RSS of gw_all over a large query stays bounded", st == 200 and after < 512 * 1024,
          "VmHWM %d KiB before, %d KiB after; %d series, %.1f MB body, %.1f s" %
          (before, after, n, len(b) / 1e6, dt))


# ---------------------------------------------------------------- (f)
def test_f(t, args):
    gw = t.gw["gw_all"]
    end = time.monotonic() + 30
    while time.monotonic() < end:  # until both regions' live samples are queryable
        st, _, b = http("POST", gw.url + "/api/v1/query", {"query": "rate(demo_counter_total[1m])"})
        if st == 200 and len(json.loads(b)["data"]["result"]) == 2:
            break
        time.sleep(0.5)
    now = int(time.time())
    form = {"start": str(now - 300), "end": str(now)}
    reqs = [
        ("POST", "/api/v1/query_range", dict(form, query='sum by (region) (demo_counter_total)', step="15")),
        ("POST", "/api/v1/query", {"query": "up", "time": str(now)}),
        ("POST", "/api/v1/labels", form),
        ("GET", "/api/v1/label/__name__/values", form),
        ("POST", "/api/v1/series", dict(form, **{"match[]": 'up{job="demo"}'})),
        ("GET", "/api/v1/status/buildinfo", None),
        ("GET", "/api/v1/metadata", None),
        ("GET", "/api/v1/status/flags", None),
        ("GET", "/api/v1/stores", None),
    ]
    bad = []
    info = {}
    for m, path, p in reqs:
        st, h, b = http(m, gw.url + path, p)
        try:
            d = json.loads(b)
        except ValueError:
            d = {}
        if st != 200 or d.get("status") != "success":
            bad.append("%s %s: %d %s" % (m, path, st, b[:200]))
        info[path] = d.get("data")
    vals = info.get("/api/v1/label/__name__/values") or []
    labels = info.get("/api/v1/labels") or []
    series = info.get("/api/v1/series") or []
    qr = info.get("/api/v1/query_range") or {}
    regions = sorted(s["metric"].get("region", "") for s in qr.get("result", []))
    if "demo_counter_total" not in vals or "region" not in labels or "replica" in labels:
        bad.append("labels: %s / values: %s" % (labels, vals[:5]))
    if len(series) != 2 or any("replica" in s for s in series):
        bad.append("series: %s" % series)
    if regions != ["eu", "us"]:
        bad.append("query_range regions %s" % regions)
    if (info.get("/api/v1/status/flags") or {}).get("query.replica-label") != "[replica]":
        bad.append("flags: %s" % info.get("/api/v1/status/flags"))
    for e in bad:
        log("  " + e)
    check("f: Grafana's requests (POST forms) answered", not bad)

    st, h, b = http("POST", gw.url + "/api/v1/query_range",
                    {"query": "http_requests_total", "start": "1700000000", "end": "1700003600", "step": "60"},
                    headers={"Accept-Encoding": "gzip"}, raw=True)
    enc = {k.lower(): v for k, v in h.items()}.get("content-encoding")
    ok = False
    try:
        ok = enc == "gzip" and json.loads(gzip.decompress(b))["status"] == "success"
    except Exception:  # noqa: BLE001
        pass
    check("f: gzip", st == 200 and ok, "Content-Encoding %s, %d bytes" % (enc, len(b)))

    # /federate directly, then scraped by a Prometheus.
    st, h, body = http("GET", gw.url + "/federate", [("match[]", '{job="demo"}'), ("match[]", "demo_counter_total")])
    ct = {k.lower(): v for k, v in h.items()}.get("content-type")
    lines = body.splitlines()
    ok = (st == 200 and ct == "text/plain; version=0.0.4; charset=utf-8" and lines
          and lines[0] == "# TYPE demo_counter_total untyped"
          and sum(1 for l in lines if l.startswith("demo_counter_total{")) == 2
          and all('replica=' not in l for l in lines)
          and all(re.match(r'^[a-z_]+\{.*instance="127\.0\.0\.1:\d+".*region="(eu|us)"\} \S+ \d+$', l)
                  for l in lines if not l.startswith("#")))
    check("f: /federate body in text format 0.0.4", ok, "%d %s %r" % (st, ct, body[:400]))

    port = free_port()
    cfg = os.path.join(t.work, "prom-fed.yml")
    u = urllib.parse.urlparse(gw.url)
    with open(cfg, "w") as f:
        f.write("""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params: {'match[]': ['{job="demo"}']}
    static_configs: [{targets: ['%s']}]
""" % u.netloc)
    fed = Proc("prom-fed", [args.prometheus, "--config.file=" + cfg,
                            "--storage.tsdb.path=" + os.path.join(t.work, "prom-fed"),
                            "--web.listen-address=127.0.0.1:%d" % port], t.work)
    url = "http://127.0.0.1:%d" % port
    wait_ready(url + "/-/ready", fed)
    got = []
    end = time.monotonic() + 30
    while time.monotonic() < end:
        st, _, b = http("GET", url + "/api/v1/query", {"query": 'demo_counter_total{job="demo"}'})
        got = json.loads(b)["data"]["result"] if st == 200 else []
        if len(got) == 2:
            break
        time.sleep(0.5)  # poll until the federating Prometheus scraped
    regions = sorted(s["metric"].get("region", "") for s in got)
    check("f: a Prometheus scraping /federate (honor_labels) ingests the series", regions == ["eu", "us"],
          "%s" % [s["metric"] for s in got])
    fed.stop()


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--queries", default=os.path.join(PROMQL, "queries.txt"))
    ap.add_argument("--work", help="work directory (kept)")
    ap.add_argument("--only", default="abcdef", help="letters of the checks to run")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="gateway_e2e.")
    os.makedirs(work, exist_ok=True)

    def cleanup(*_):
        for p in reversed(procs):
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
    try:
        t = Topology(args, work)
    except RuntimeError as e:
        log("FAIL setup: %s" % e)
        return 1
    log("setup %.1f s (work %s)" % (time.monotonic() - t0, work))
    if "d" in args.only:  # before (b) takes a replica down
        run_test("d", test_d, (t, args))
    tb = None
    if "b" in args.only:
        # (b) waits out the outage in a thread while the others run; run_test
        # turns anything it raises into a failed check, and a thread that
        # never finished is one too.
        tb = threading.Thread(target=run_test, args=("b", test_b, (t,)), daemon=True)
        tb.start()
    for letter, fn, a in (("a", test_a, (t, args)), ("c", test_c, (t,)), ("e", test_e, (t,)),
                          ("f", test_f, (t, args))):
        if letter in args.only:
            run_test(letter, fn, a)
    if tb:
        tb.join(timeout=OUTAGE_S + 300)
        if tb.is_alive():
            check("b: finished", False, "still running %d s after the others" % (OUTAGE_S + 300))
        elif "b" not in finished:
            check("b: finished", False, "its thread ended by a BaseException (SystemExit, ...)")
    failed = [n for n, ok in results if not ok]
    log("%d checks, %d failed; %.1f s" % (len(results), len(failed), time.monotonic() - t0))
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
