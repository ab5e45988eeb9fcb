#!/usr/bin/env python3
"""promql_diff.py: differential test of `orrery tools query` against Prometheus 2.42.

Generates the dataset (gen_data.py), turns it into blocks with promtool,
starts Prometheus on a copy of them (127.0.0.1, free port, readiness polled,
stopped by PID on every exit path), then runs every query of the query file
against both and compares the answers:

  status, errorType and error message (exactly; ALLOWED_MESSAGE_DIFFS is the
  allow-list), resultType, series label sets, timestamps, and values within
  1e-6 relative (NaN == NaN, infinities exact). Series order is compared
  where Prometheus defines it: matrices (the engine sorts range results by
  labels; an instant query's range selector comes sorted from storage) and
  instant vectors whose outermost operation is sort, sort_desc, topk or
  bottomk (values in order; ties may come in any order; see
  output_ordered). Other instant vectors come in the evaluator's order,
  which the API does not sort and which is Go map order for some
  functions, so they are compared sorted by labels.
  orrery must exit 0 on success and 1 on a query error, end its output
  with a newline and print no sanitizer report.

Query file: one query a line, '#' comments, blank lines ignored:
  [OPTION=VALUE ...] instant <time> <expr>
  [OPTION=VALUE ...] range <start> <end> <step> <expr>
Parameters are passed verbatim to both (so bad ones test error handling).
OPTIONs are engine settings: lookback=<duration> and max_samples=<n>. A
query with options is answered by another Prometheus started with
--query.lookback-delta / --query.max-samples, and orrery gets
--lookback-delta / --max-samples.

With --via-store the blocks are uploaded to a FILESYSTEM bucket with
`orrery tools bucket put` (meta.json last) and orrery answers through
`orrery store` alone behind `orrery gateway --endpoint` (one gateway per set
of engine options, queried over its HTTP API) instead of `tools query`.

With --via-promql orrery answers through a gateway whose only endpoint is
--endpoint.promql=<the oracle Prometheus>: it reads the very Prometheus
that is the oracle through its query API alone. Queries over the
stale-marked series are left out: the query API does not show stale
markers (gateway/src_promql.c, note 2).

Prints a compact diff for each mismatch and `N queries, M matched`; exits 1
if any query mismatched or the harness itself failed.
"""
import argparse
import atexit
import concurrent.futures
import ctypes
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import gen_data  # noqa: E402

# Error messages that legitimately differ: {query expr: reason}. Keep it tiny.
ALLOWED_MESSAGE_DIFFS = {
}
# (query, pattern, reason): for exactly this query (expression and request
# parameters, as in queries.txt), both messages match the pattern with equal
# groups. Keep it to the queries that need it: a looser rule would hide a
# wrong label set in every other many-to-many error.
ALLOWED_MESSAGE_PATTERNS = [
    (("range", (("start", "1700001334"), ("end", "1700005620"), ("step", "601")),
      'special_values != bool on(mode) (Inf + special_values{kind=~"int|frac|neg|nan|posinf"})'),
     re.compile(r"found duplicate series for the match group \{\} on the right hand-side "
                r"of the operation: \[\{kind=\"(?:int|frac|neg|nan|posinf)\"\}, "
                r"\{kind=\"(?:int|frac|neg|nan|posinf)\"\}\];many-to-many matching not allowed: "
                r"matching labels must be unique on one side"),
     "in a range query Prometheus's operands come in Go map order (rangeEval), so which two of "
     "the right-hand series it names changes from run to run"),
]
SUBQUERY_RE = re.compile(r"\[[^\]]*:[^\]]*\]")


def message_allowed(q, pm, om):
    if q.expr in ALLOWED_MESSAGE_DIFFS:
        return True
    for (mode, params, expr), pat, _ in ALLOWED_MESSAGE_PATTERNS:
        if (q.mode, tuple(q.params), q.expr) != (mode, params, expr):
            continue
        a, b = pat.fullmatch(pm or ""), pat.fullmatch(om or "")
        if a and b and a.groups() == b.groups():
            return True
    return False


REL_TOL = 1e-6
# query-file option -> (Prometheus flag, orrery tools query flag)
ENGINE_OPTIONS = {"lookback": ("query.lookback-delta", "lookback-delta"),
                  "max_samples": ("query.max-samples", "max-samples")}
ORDERED_RE = re.compile(r"^[\s(]*(sort|sort_desc|topk|bottomk)\s*(\(|by|without)")
GROUPED_RE = re.compile(r"^[\s(]*(topk|bottomk)\s*(by|without)|^[\s(]*(topk|bottomk)\s*\(.*\)\s*(by|without)\s*\([^()]*\)\s*$")


# ---------------------------------------------------------------- processes
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from portpick import free_port  # noqa: E402


def _die_with_parent():
    """Child side of Popen: SIGTERM when the harness dies (even by SIGKILL)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Prometheus:
    def __init__(self, binary, data, workdir, extra=()):
        self.port = free_port()
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
        self.logpath = os.path.join(workdir, "prometheus-%d.log" % self.port)
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen(
            [binary, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
             "--storage.tsdb.retention.time=100y",
             "--web.listen-address=127.0.0.1:%d" % self.port] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.base = "http://127.0.0.1:%d" % self.port

    def wait_ready(self, deadline_s=60):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("prometheus exited with %s; log: %s" % (self.proc.returncode, self.logpath))
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)  # polling interval of the readiness check
        raise RuntimeError("prometheus not ready after %ds" % deadline_s)

    def get(self, path, params):
        url = self.base + path + "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=120) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:  # 4xx/5xx carry the error JSON
            return e.read().decode()
        except OSError as e:  # timeouts, refused connections: not JSON, so a mismatch
            return "prometheus request failed: %s" % e

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class Daemon:
    """An orrery daemon (store, gateway) on 127.0.0.1, stopped by PID."""

    def __init__(self, argv, workdir, name):
        self.logpath = os.path.join(workdir, "%s.log" % name)
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)

    def wait_url(self, url, ok, deadline_s=90):
        end = time.monotonic() + deadline_s
        last = ""
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s; log: %s" % (url, self.proc.returncode, self.logpath))
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    last = r.read().decode()
                    if r.status == 200 and ok(last):
                        return
            except OSError:
                pass
            time.sleep(0.05)  # polling interval of the readiness check
        raise RuntimeError("%s not ready after %ds (last answer %s); log: %s"
                           % (url, deadline_s, last[:500], self.logpath))

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def upload_blocks(orrery, blocks, bucket_yaml):
    """Every block of |blocks| into the bucket with `orrery tools bucket put`,
    meta.json last (as the shipper orders it)."""
    for b in sorted(os.listdir(blocks)):
        bdir = os.path.join(blocks, b)
        if not os.path.isfile(os.path.join(bdir, "meta.json")):
            continue
        files = []
        for root, _, names in os.walk(bdir):
            for n in names:
                rel = os.path.relpath(os.path.join(root, n), bdir)
                files.append(rel)
        files.sort(key=lambda f: (f == "meta.json", f))
        for rel in files:
            r = subprocess.run([orrery, "tools", "bucket", "put", "--objstore.config=" + bucket_yaml,
                                "%s/%s" % (b, rel), os.path.join(bdir, rel)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise RuntimeError("bucket put %s/%s failed: %s" % (b, rel, r.stdout))


def start_store(orrery, work, bucket_yaml):
    http, grpc = free_port(), free_port()
    st = Daemon([orrery, "store", "--objstore.config=" + bucket_yaml,
                 "--data-dir=" + os.path.join(work, "store-data"),
                 "--http-address=127.0.0.1:%d" % http, "--grpc-address=127.0.0.1:%d" % grpc,
                 "--log.level=warn"], work, "store")
    st.wait_url("http://127.0.0.1:%d/-/ready" % http, lambda b: True)
    st.grpc = grpc
    return st


def start_gateway(orrery, work, endpoint, opts):
    """A gateway over |endpoint|: a store's gRPC port, or a whole flag."""
    http, grpc = free_port(), free_port()
    extra = ["--%s=%s" % (ENGINE_OPTIONS[k][0], v) for k, v in opts]
    ep = endpoint if isinstance(endpoint, str) else "--endpoint=127.0.0.1:%d" % endpoint
    gw = Daemon([orrery, "gateway", ep,
                 "--http-address=127.0.0.1:%d" % http, "--grpc-address=127.0.0.1:%d" % grpc,
                 "--log.level=warn"] + extra, work, "gateway-%d" % http)
    gw.base = "http://127.0.0.1:%d" % http

    def store_up(body):
        st = [e for kind in (json.loads(body).get("data") or {}).values() for e in kind or []]
        return any(e.get("lastError") is None and e.get("minTime") is not None for e in st)

    gw.wait_url(gw.base + "/-/ready", lambda b: True)
    gw.wait_url(gw.base + "/api/v1/stores", store_up)
    return gw


def run_gateway(gw, q):
    """The query to the gateway's HTTP API, shaped as run_orrery's result:
    exit 0 with the body on success, 1 with the error body otherwise."""
    path = "/api/v1/query" if q.mode == "instant" else "/api/v1/query_range"
    url = gw.base + path + "?" + urllib.parse.urlencode([("query", q.expr)] + q.params)
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            body, rc = r.read().decode(), 0
    except urllib.error.HTTPError as e:
        body, rc = e.read().decode(), 1
    except OSError as e:
        return -1, "", "gateway request failed: %s" % e
    if '"status":"error"' in body:
        rc = 1
    return rc, body if body.endswith("\n") else body + "\n", ""


# ---------------------------------------------------------------- queries
class Query:
    def __init__(self, lineno, mode, params, expr, options=()):
        self.lineno, self.mode, self.params, self.expr = lineno, mode, params, expr
        self.options = tuple(options)  # ((name, value), ...) sorted

    def describe(self):
        p = " ".join("%s=%s" % kv for kv in self.params)
        for k, v in self.options:
            p += " %s=%s" % (k, v)
        return "line %d [%s %s]: %s" % (self.lineno, self.mode, p, self.expr)


def read_queries(path):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            w = s.split(None, 1)
            opts = {}
            while "=" in w[0]:
                k, v = w[0].split("=", 1)
                if k not in ENGINE_OPTIONS:
                    raise SystemExit("%s:%d: unknown option %s" % (path, n, k))
                opts[k] = v
                w = w[1].split(None, 1)
            options = tuple(sorted(opts.items()))
            if w[0] == "instant":
                t, expr = w[1].split(None, 1)
                out.append(Query(n, "instant", [("time", t)], expr, options))
            elif w[0] == "range":
                a, b, st, expr = w[1].split(None, 3)
                out.append(Query(n, "range", [("start", a), ("end", b), ("step", st)], expr, options))
            else:
                raise SystemExit("%s:%d: expected 'instant' or 'range'" % (path, n))
    return out


def run_prometheus(prom, q):
    path = "/api/v1/query" if q.mode == "instant" else "/api/v1/query_range"
    return prom.get(path, [("query", q.expr)] + q.params)


MEM_LIMIT_MB = 4096


def _limit_memory():
    """orrery's address space is capped (MEM_LIMIT_MB; none for an ASan
    build, whose shadow memory needs terabytes of address space) so that a
    runaway query fails instead of starving the machine."""
    if MEM_LIMIT_MB > 0:
        resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT_MB << 20, MEM_LIMIT_MB << 20))


def is_asan_build(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def run_orrery(orrery, blocks, q):
    cmd = [orrery, "tools", "query", "--blocks=" + blocks]
    cmd += ["--%s=%s" % kv for kv in q.params]
    for k, v in q.options:
        cmd.append("--%s=%s" % (ENGINE_OPTIONS[k][1], v))
    cmd += ["--", q.expr]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                           preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        return -1, "", "timed out after 30 s"
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


# ---------------------------------------------------------------- comparison
def fval(s):
    return float(s)  # Go's "NaN", "+Inf", "-Inf" parse as Python floats


def val_eq(a, b):
    try:
        x, y = fval(a), fval(b)
    except (TypeError, ValueError):
        return a == b
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return x == y or abs(x - y) <= REL_TOL * max(abs(x), abs(y))


def ts_ms(t):
    return int(round(float(t) * 1000))


def lkey(metric):
    return tuple(sorted(metric.items()))


def lstr(metric):
    name = metric.get("__name__", "")
    rest = ", ".join('%s="%s"' % (k, v) for k, v in sorted(metric.items()) if k != "__name__")
    return "%s{%s}" % (name, rest)


def cmp_point(p, o, where, diffs):
    if not (isinstance(p, list) and isinstance(o, list) and len(p) == 2 and len(o) == 2):
        diffs.append("%s: malformed point %r vs %r" % (where, p, o))
        return
    if ts_ms(p[0]) != ts_ms(o[0]):
        diffs.append("%s: timestamp prometheus %s, orrery %s" % (where, p[0], o[0]))
    elif not val_eq(p[1], o[1]):
        diffs.append("%s @%s: prometheus %s, orrery %s" % (where, p[0], p[1], o[1]))


def cmp_series_values(ps, os_, where, diffs):
    pv, ov = ps.get("values", []), os_.get("values", [])
    pm = {ts_ms(t): v for t, v in pv}
    om = {ts_ms(t): v for t, v in ov}
    if len(pv) != len(ov) or set(pm) != set(om):
        only_p = sorted(set(pm) - set(om))
        only_o = sorted(set(om) - set(pm))
        diffs.append("%s: %d points in prometheus, %d in orrery; only prometheus at %s; only orrery at %s"
                     % (where, len(pv), len(ov), [t / 1000 for t in only_p[:3]],
                        [t / 1000 for t in only_o[:3]]))
    for t in sorted(set(pm) & set(om)):
        if not val_eq(pm[t], om[t]):
            diffs.append("%s @%s: prometheus %s, orrery %s" % (where, t / 1000, pm[t], om[t]))
            break
    if [ts_ms(t) for t, _ in ov] != sorted(ts_ms(t) for t, _ in ov):
        diffs.append("%s: orrery's points are not in time order" % where)


def output_ordered(q):
    """Whether Prometheus defines the order of an instant vector's series:
    sort/sort_desc and topk/bottomk order by value; but a grouped topk emits
    its groups in input order, which is Go map order when the input comes
    from histogram_quantile or a subquery."""
    m = ORDERED_RE.match(q.expr)
    if q.mode != "instant" or not m:
        return False
    if m.group(1) in ("topk", "bottomk") and GROUPED_RE.match(q.expr):
        return not ("histogram_quantile" in q.expr or SUBQUERY_RE.search(q.expr))
    return True


def cmp_vector(q, pr, orr, diffs):
    ordered = output_ordered(q)
    pk = [lkey(s["metric"]) for s in pr]
    ok = [lkey(s["metric"]) for s in orr]
    if len(set(ok)) != len(ok):
        diffs.append("orrery returned duplicate label sets")
    pd = {lkey(s["metric"]): s for s in pr}
    od = {lkey(s["metric"]): s for s in orr}
    if set(pd) != set(od):
        only_p = [lstr(dict(k)) for k in pk if k not in od]
        only_o = [lstr(dict(k)) for k in ok if k not in pd]
        diffs.append("series: %d in prometheus, %d in orrery; only prometheus: %s; only orrery: %s"
                     % (len(pr), len(orr), only_p[:3], only_o[:3]))
    for k in pk:
        if k in od:
            cmp_point(pd[k]["value"], od[k]["value"], lstr(dict(k)), diffs)
    if ordered and not diffs:
        pv = [s["value"][1] for s in pr]
        ov = [s["value"][1] for s in orr]
        if len(pv) != len(ov) or not all(val_eq(a, b) for a, b in zip(pv, ov)):
            diffs.append("order of values: prometheus %s, orrery %s" % (pv[:8], ov[:8]))


def cmp_matrix(q, pr, orr, diffs):
    pk = [lkey(s["metric"]) for s in pr]
    ok = [lkey(s["metric"]) for s in orr]
    pd = {lkey(s["metric"]): s for s in pr}
    od = {lkey(s["metric"]): s for s in orr}
    if set(pd) != set(od):
        only_p = [lstr(dict(k)) for k in pk if k not in od]
        only_o = [lstr(dict(k)) for k in ok if k not in pd]
        diffs.append("series: %d in prometheus, %d in orrery; only prometheus: %s; only orrery: %s"
                     % (len(pr), len(orr), only_p[:3], only_o[:3]))
    elif pk != ok:
        first = next(i for i in range(len(pk)) if pk[i] != ok[i])
        diffs.append("series order differs at #%d: prometheus %s, orrery %s"
                     % (first, lstr(dict(pk[first])), lstr(dict(ok[first]))))
    for k in pk:
        if k in od:
            cmp_series_values(pd[k], od[k], lstr(dict(k)), diffs)


def compare(q, prom_body, orc, out, err):
    """Returns a list of differences (empty when the answers agree)."""
    diffs = []
    m = re.search(r"(ERROR: \w+Sanitizer|runtime error:).*", err)
    if m:
        diffs.append("orrery sanitizer report: %s" % m.group(0)[:200])
    try:
        p = json.loads(prom_body)
    except ValueError:
        return ["prometheus answered non-JSON: %r" % prom_body[:200]]
    try:
        o = json.loads(out)
    except ValueError:
        return ["orrery exit %d, non-JSON output %r, stderr %r" % (orc, out[:200], err[:300])]
    if not out.endswith("\n"):
        diffs.append("orrery output does not end with a newline")
    if p.get("status") != o.get("status"):
        d = "status: prometheus %s, orrery %s" % (p.get("status"), o.get("status"))
        if p.get("status") == "error":
            d += " (prometheus: %s: %s)" % (p.get("errorType"), p.get("error"))
        if o.get("status") == "error":
            d += " (orrery: %s: %s)" % (o.get("errorType"), o.get("error"))
        return diffs + [d]
    if p["status"] == "error":
        if orc != 1:
            diffs.append("orrery exit code %d on a query error (want 1)" % orc)
        if p.get("errorType") != o.get("errorType"):
            diffs.append("errorType: prometheus %s, orrery %s" % (p.get("errorType"), o.get("errorType")))
        if p.get("error") != o.get("error") and not message_allowed(q, p.get("error"), o.get("error")):
            diffs.append("error: prometheus %r, orrery %r" % (p.get("error"), o.get("error")))
        return diffs
    if orc != 0:
        diffs.append("orrery exit code %d on success" % orc)
    if p.get("warnings") != o.get("warnings"):
        diffs.append("warnings: prometheus %r, orrery %r" % (p.get("warnings"), o.get("warnings")))
    pd, od = p.get("data", {}), o.get("data", {})
    if pd.get("resultType") != od.get("resultType"):
        return diffs + ["resultType: prometheus %s, orrery %s" % (pd.get("resultType"), od.get("resultType"))]
    rt = pd["resultType"]
    pr, orr = pd.get("result"), od.get("result")
    if rt in ("scalar", "string"):
        if rt == "string":
            if pr != orr:
                diffs.append("string: prometheus %r, orrery %r" % (pr, orr))
        else:
            cmp_point(pr, orr, "scalar", diffs)
    elif not isinstance(orr, list):
        diffs.append("orrery result is not a list: %r" % (orr,))
    elif rt == "vector":
        cmp_vector(q, pr, orr, diffs)
    elif rt == "matrix":
        cmp_matrix(q, pr, orr, diffs)
    else:
        diffs.append("unknown resultType %s" % rt)
    return diffs


def self_test():
    """The comparator must see the differences it exists to see."""
    q = Query(0, "instant", [("time", "1")], "x")
    qs = Query(0, "instant", [("time", "1")], "sort(x)")
    vec = lambda *s: json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": m, "value": [1, v]} for m, v in s]}})
    a = vec(({"a": "1"}, "1"), ({"a": "2"}, "2"))
    cases = [
        (q, a, a + "\n", 0, True),
        (q, a, vec(({"a": "2"}, "2"), ({"a": "1"}, "1")) + "\n", 0, True),
        (qs, a, vec(({"a": "2"}, "2"), ({"a": "1"}, "1")) + "\n", 0, False),
        (q, a, vec(({"a": "1"}, "1"), ({"a": "2"}, "2.0000000001")) + "\n", 0, True),
        (q, a, vec(({"a": "1"}, "1"), ({"a": "2"}, "2.01")) + "\n", 0, False),
        (q, a, vec(({"a": "1"}, "1"), ({"a": "3"}, "2")) + "\n", 0, False),
        (q, vec(({}, "NaN")), vec(({}, "NaN")) + "\n", 0, True),
        (q, vec(({}, "+Inf")), vec(({}, "-Inf")) + "\n", 0, False),
        (q, vec(({}, "1e-300")), vec(({}, "0")) + "\n", 0, False),
        (q, a, a + "\n", 1, False),
        (q, '{"status":"error","errorType":"bad_data","error":"x"}',
         '{"status":"error","errorType":"bad_data","error":"y"}\n', 1, False),
        (q, '{"status":"error","errorType":"bad_data","error":"x"}',
         '{"status":"error","errorType":"execution","error":"x"}\n', 1, False),
        (q, '{"status":"error","errorType":"bad_data","error":"x"}',
         '{"status":"error","errorType":"bad_data","error":"x"}\n', 1, True),
        (q, a, a + "\n", 0, True),
        (Query(0, "range", [], "x"),
         '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}',
         '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}\n',
         0, False),
    ]
    # A many-to-many error naming other series passes only for the one query
    # allowed to (ALLOWED_MESSAGE_PATTERNS), not for any range query.
    m2m = lambda a, b: json.dumps({"status": "error", "errorType": "execution", "error":
                                   "found duplicate series for the match group {} on the right hand-side of "
                                   "the operation: [{kind=\"%s\"}, {kind=\"%s\"}];many-to-many matching not "
                                   "allowed: matching labels must be unique on one side" % (a, b)})
    (mode, params, expr), _, _ = ALLOWED_MESSAGE_PATTERNS[0]
    cases += [
        (Query(0, mode, list(params), expr), m2m("int", "frac"), m2m("frac", "posinf") + "\n", 1, True),
        (Query(0, mode, list(params), expr), m2m("int", "frac"), m2m("frac", "other") + "\n", 1, False),
        (Query(0, mode, [("start", "1"), ("end", "2"), ("step", "1")], expr), m2m("int", "frac"),
         m2m("frac", "posinf") + "\n", 1, False),
        (Query(0, "range", list(params), "x + on() y"), m2m("int", "frac"), m2m("frac", "int") + "\n", 1, False),
    ]
    for i, (qq, pb, ob, rc, want) in enumerate(cases):
        got = not compare(qq, pb, rc, ob, "")
        if got != want:
            raise SystemExit("comparator self-test case %d: agreed=%s, expected %s" % (i, got, want))


# ---------------------------------------------------------------- coverage
def check_coverage(queries, functions_c):
    """Every function of the engine's table and every aggregation appears."""
    text = " ".join(q.expr for q in queries)
    missing = []
    if functions_c:
        with open(functions_c) as f:
            names = re.findall(r'\{"([a-z_0-9]+)"', f.read())
        if len(names) < 60:
            missing.append("(only %d function names found in %s)" % (len(names), functions_c))
        missing += [n for n in names if not re.search(r"\b%s\s*\(" % n, text)]
    aggs = ["sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
            "count_values", "quantile"]
    missing += [a for a in aggs if not re.search(r"\b%s\s*(\(|by|without)" % a, text)]
    return missing


# ---------------------------------------------------------------- main
def make_blocks(promtool, work, stale_fixture=None):
    """gen_data.py's file through promtool, plus (if given) the block of
    series with staleness markers that stale_fixture.c writes."""
    om = os.path.join(work, "data.om")
    gen_data.gen(om)
    blocks = os.path.join(work, "blocks")
    shutil.rmtree(blocks, ignore_errors=True)
    r = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", om, blocks],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("promtool create-blocks-from failed: %s" % r.stdout)
    if stale_fixture:
        r = subprocess.run([stale_fixture, blocks], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (stale_fixture, r.stdout))
    return blocks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--queries", default=os.path.join(HERE, "queries.txt"))
    ap.add_argument("--functions", help="lib/promql/functions.c: every function must be covered")
    ap.add_argument("--stale-fixture", help="promql_stale_fixture binary (series with stale markers)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--max-prometheus", type=int, default=8, help="Prometheus processes at once")
    ap.add_argument("--only", help="run only queries whose text contains this")
    ap.add_argument("--work", help="work directory (kept); default a temporary one")
    ap.add_argument("--report", help="write mismatches as Markdown to this file")
    ap.add_argument("--show", action="store_true", help="print every query's Prometheus answer")
    ap.add_argument("--via-store", action="store_true",
                    help="answer through orrery store + gateway over a bucket of the blocks")
    ap.add_argument("--via-promql", action="store_true",
                    help="answer through a gateway with --endpoint.promql=<the oracle Prometheus>")
    args = ap.parse_args()

    self_test()
    global MEM_LIMIT_MB
    if is_asan_build(args.orrery):
        MEM_LIMIT_MB = 0
    queries = read_queries(args.queries)
    missing = check_coverage(queries, args.functions)
    harness_fail = []
    if missing:
        harness_fail.append("not covered by any query: %s" % ", ".join(missing))
    if args.only:
        queries = [q for q in queries if args.only in q.expr]
    skipped = 0
    if args.via_promql:
        # Note 2 of gateway/src_promql.c: no stale markers through the API.
        kept = [q for q in queries if "stale" not in q.expr]
        skipped += len(queries) - len(kept)
        queries = kept
    if args.via_store or args.via_promql:
        # The gateway charges each arriving chunk's whole sample count to
        # --query.max-samples (gateway/proxy.c, note 3), so its limit trips
        # before Prometheus's, whatever the endpoint (sidecar or store):
        # those queries test the gateway, not the store, and are left out.
        kept = [q for q in queries if not any(k == "max_samples" for k, _ in q.options)]
        skipped += len(queries) - len(kept)
        queries = kept

    work = args.work or tempfile.mkdtemp(prefix="promql_diff.")
    os.makedirs(work, exist_ok=True)
    proms = {}  # options -> running Prometheus

    daemons = {}  # "store" and engine options -> running orrery daemons (--via-store)

    def cleanup(*_):
        for pr in list(proms.values()):
            pr.stop()
        for d in list(daemons.values()):
            d.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(2))

    t_start = time.monotonic()
    blocks = make_blocks(args.promtool, work, args.stale_fixture)
    if args.via_store:
        bdir = os.path.join(work, "bucket")
        os.makedirs(bdir, exist_ok=True)
        bucket_yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
        upload_blocks(args.orrery, blocks, bucket_yaml)
        daemons["store"] = start_store(args.orrery, work, bucket_yaml)
    t_ready = time.monotonic()
    # One Prometheus per set of engine options; at most --max-prometheus run at
    # once (each holds the whole dataset), the default one first.
    groups = {}
    for q in queries:
        groups.setdefault(q.options, []).append(q)
    order = sorted(groups)
    batches = [order[i:i + args.max_prometheus] for i in range(0, len(order), args.max_prometheus)]

    def one(q):
        pb = run_prometheus(proms[q.options], q)
        if args.via_store or args.via_promql:
            rc, out, err = run_gateway(daemons[q.options], q)
        else:
            rc, out, err = run_orrery(args.orrery, blocks, q)
        return q, pb, rc, out, err

    results = []
    for bi, batch in enumerate(batches):
        for i, opts in enumerate(batch):
            pdata = os.path.join(work, "prometheus-data-%d-%d" % (bi, i))
            shutil.rmtree(pdata, ignore_errors=True)
            shutil.copytree(blocks, pdata)
            extra = ["--%s=%s" % (ENGINE_OPTIONS[k][0], v) for k, v in opts]
            proms[opts] = Prometheus(args.prometheus, pdata, work, extra)
        for opts in batch:
            proms[opts].wait_ready()
            if args.via_store:
                daemons[opts] = start_gateway(args.orrery, work, daemons["store"].grpc, opts)
            elif args.via_promql:
                daemons[opts] = start_gateway(args.orrery, work,
                                              "--endpoint.promql=" + proms[opts].base, opts)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            results += ex.map(one, [q for opts in batch for q in groups[opts]])
        for opts in batch:
            proms.pop(opts).stop()
            if opts in daemons:
                daemons.pop(opts).stop()
            if not args.work:
                shutil.rmtree(os.path.join(work, "prometheus-data-%d-%d" % (bi, batch.index(opts))),
                              ignore_errors=True)

    matched = identical = 0
    mismatches = []
    prom_errors = 0
    for q, pb, rc, out, err in sorted(results, key=lambda r: r[0].lineno):
        if args.show:
            print("%s\n  -> %s" % (q.describe(), pb[:300]))
        if '"status":"error"' in pb:
            prom_errors += 1
        diffs = compare(q, pb, rc, out, err)
        if diffs:
            mismatches.append((q, diffs, pb, out))
            print("MISMATCH %s" % q.describe())
            for d in diffs[:4]:
                print("    " + d)
            if len(diffs) > 4:
                print("    ... %d more" % (len(diffs) - 4))
        else:
            matched += 1
            if out.rstrip("\n") == pb:
                identical += 1
    t_end = time.monotonic()

    if args.report:
        with open(args.report, "w") as f:
            for q, diffs, pb, out in mismatches:
                f.write("### `%s`\n%s %s\n\n" % (q.expr, q.mode, " ".join("%s=%s" % kv for kv in q.params)))
                for d in diffs[:4]:
                    f.write("- %s\n" % d)
                f.write("\n")
    for h in harness_fail:
        print("HARNESS: " + h)
    print("(%d of the queries are errors in Prometheus; %d matched bodies are byte-identical; "
          "blocks %.1f s, Prometheus and queries %.1f s)"
          % (prom_errors, identical, t_ready - t_start, t_end - t_ready))
    if skipped:
        print("(%d queries left out: max_samples%s)" % (skipped, ", stale markers" if args.via_promql else ""))
    print("%d queries, %d matched" % (len(queries), matched))
    return 1 if mismatches or harness_fail else 0


if __name__ == "__main__":
    sys.exit(main())
