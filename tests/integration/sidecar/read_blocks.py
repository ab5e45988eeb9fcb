#!/usr/bin/env python3
"""The sidecar reads Prometheus's persisted blocks itself (--tsdb.read-blocks).

A real Prometheus 2.42 holds promtool-made blocks (5 h to 1 h ago) and scrapes
a small target every second (its head). Through gateway -> sidecar, raw
samples (`m[range]` at an instant) and a range query must equal Prometheus's
own answers for a range inside the blocks, inside the head and spanning
both, and the sidecar's metrics must show the blocks were read (not remote
read). Then a compacted block is copied in beside its parent (the state
Prometheus's compaction leaves for a moment), and the parent removed: no
sample duplicated or lost. With --tsdb.read-blocks=false, and beside a
Prometheus that accepts out-of-order samples, every call goes through remote
read and the answers are the same.
"""
import argparse
import atexit
import http.server
import json
import os
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "promql"))
from portpick import free_port  # noqa: E402
import promql_diff  # noqa: E402

procs = []
fails = []


def log(msg):
    print(msg, flush=True)


def check(name, ok, detail=""):
    log("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + str(detail)[:2000]) if detail and not ok else ""))
    if not ok:
        fails.append(name)
    return ok


class Proc:
    def __init__(self, name, argv, work):
        self.name = name
        self.logpath = os.path.join(work, name + ".log")
        self.log = open(self.logpath, "a")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  preexec_fn=promql_diff._die_with_parent)
        procs.append(self)

    def stop(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()
        procs.remove(self)


def get(url, params=None, timeout=60):
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def wait_for(what, fn, proc, deadline_s=90):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.p.poll() is not None:
            raise RuntimeError("%s exited; log %s" % (proc.name, proc.logpath))
        if fn():
            return
        time.sleep(0.1)  # polling a condition another process makes true
    raise RuntimeError("timed out waiting for %s" % what)


# ---------------------------------------------------------------- the target
class Target(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        t = time.time()
        body = ("# TYPE bt_metric counter\nbt_metric{k=\"a\"} %d\nbt_metric{k=\"b\"} %.3f\n"
                % (int(t), t / 7)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def metric(url, name):
    st, body = get(url + "/metrics")
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def strip(body, drop=("region",)):
    d = json.loads(body)
    if d.get("status") != "success":
        return d
    res = d["data"]["result"]
    for r in res:
        for k in drop:
            r["metric"].pop(k, None)
    res.sort(key=lambda r: sorted(r["metric"].items()))
    return d["data"]


class Stack:
    def __init__(self, args, work, tag, prom_data, ooo=False, read_blocks=None):
        self.args, self.work, self.tag = args, work, tag
        pport = free_port()
        cfg = os.path.join(work, "prom-%s.yml" % tag)
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  external_labels: {region: it, replica: a}\n"
                    "scrape_configs:\n  - job_name: bt\n    static_configs: [{targets: ['%s']}]\n"
                    % args.target)
            if ooo:
                f.write("storage:\n  tsdb:\n    out_of_order_time_window: 1h\n")
        self.prom = Proc("prom-" + tag, [args.prometheus, "--config.file=" + cfg,
                                          "--storage.tsdb.path=" + prom_data,
                                          "--storage.tsdb.retention.time=100y",
                                          "--web.listen-address=127.0.0.1:%d" % pport], work)
        self.prom.url = "http://127.0.0.1:%d" % pport
        wait_for("Prometheus ready", lambda: get(self.prom.url + "/-/ready")[0] == 200, self.prom)
        self.data = prom_data
        self.start_sidecar(read_blocks)
        gp, hp = free_port(), free_port()
        self.gw = Proc("gateway-" + tag, [args.orrery, "gateway", "--http-address=127.0.0.1:%d" % hp,
                                           "--grpc-address=127.0.0.1:%d" % free_port(),
                                           "--query.replica-label=replica",
                                           "--endpoint=127.0.0.1:%d" % self.gp], work)
        self.gw.url = "http://127.0.0.1:%d" % hp
        wait_for("gateway ready", lambda: get(self.gw.url + "/-/ready")[0] == 200, self.gw)
        self.wait_store()

    def start_sidecar(self, read_blocks):
        self.gp, hp = getattr(self, "gp", None) or free_port(), free_port()
        argv = [self.args.orrery, "sidecar", "--prometheus.url=" + self.prom.url,
                "--tsdb.path=" + self.data, "--grpc-address=127.0.0.1:%d" % self.gp,
                "--http-address=127.0.0.1:%d" % hp]
        if read_blocks is not None:
            argv.append("--tsdb.read-blocks=%s" % ("true" if read_blocks else "false"))
        self.side = Proc("sidecar-" + self.tag, argv, self.work)
        self.side.url = "http://127.0.0.1:%d" % hp
        wait_for("sidecar ready", lambda: get(self.side.url + "/-/ready")[0] == 200, self.side)

    def wait_store(self):
        def up():
            st, body = get(self.gw.url + "/api/v1/stores")
            if st != 200:
                return False
            d = json.loads(body).get("data") or {}
            return any(not e.get("lastError") for v in d.values() for e in v)
        wait_for("the gateway's endpoint up", up, self.gw)

    def stop(self):
        for p in (self.gw, self.side, self.prom):
            p.stop()

    def same(self, name, path, params):
        st1, pb = get(self.prom.url + path, params)
        st2, gb = get(self.gw.url + path, params)
        p, g = strip(pb), strip(gb)
        ok = st1 == 200 and st2 == 200 and p == g
        npts = sum(len(r.get("values", [])) for r in p.get("result", [])) if isinstance(p, dict) else 0
        detail = "" if ok else "prometheus %d %s\ngateway %d %s" % (st1, pb[:800], st2, gb[:800])
        check("%s: %s (%d series, %d samples)" % (self.tag, name, len(p.get("result", [])), npts), ok and
              npts > 0, detail or "no samples")
        return ok


def queries(s, now, boundary):
    """Blocks only, head only, spanning both: raw samples and a range query."""
    out = []
    for name, at, rng in (("blocks only", boundary - 1800, "2h"), ("head only", now, "20s"),
                          ("spanning", now, "%ds" % (now - boundary + 3600))):
        out.append((name + " raw", "/api/v1/query", {"query": "bt_metric[%s]" % rng, "time": "%.3f" % at}))
    out.append(("spanning range rate", "/api/v1/query_range",
                {"query": "rate(bt_metric[1m])", "start": "%d" % (boundary - 3600), "end": "%.3f" % now,
                 "step": "15"}))
    out.append(("spanning range sum", "/api/v1/query_range",
                {"query": "sum by (k) (bt_metric)", "start": "%d" % (boundary - 7200), "end": "%.3f" % now,
                 "step": "30"}))
    # The calls above select few series with equality matchers: the sidecar
    # reads them on its loop. A regex matcher takes the worker thread.
    out.append(("blocks only raw (worker)", "/api/v1/query",
                {"query": 'bt_metric{k=~"a|b|c"}[2h]', "time": "%.3f" % (boundary - 1800)}))
    out.append(("spanning range sum (worker)", "/api/v1/query_range",
                {"query": 'sum by (k) ({__name__=~"bt_metric"})', "start": "%d" % (boundary - 7200),
                 "end": "%.3f" % now, "step": "30"}))
    return out


def make_data(args, work):
    now = time.time()
    start = int(now - 5 * 3600) // 15 * 15
    end = int(now - 3600) // 15 * 15
    om = os.path.join(work, "data.om")
    with open(om, "w") as f:
        f.write("# TYPE bt_metric gauge\n")
        for k in ("a", "b", "c"):
            for t in range(start, end, 15):
                f.write('bt_metric{instance="%s",job="bt",k="%s"} %d %d\n' % (args.target, k, t - start, t))
        f.write("# EOF\n")
    data = os.path.join(work, "blocks")
    os.makedirs(data)
    subprocess.run([args.promtool, "tsdb", "create-blocks-from", "openmetrics", om, data], check=True,
                   stdout=subprocess.DEVNULL)
    return data


def block_dirs(data):
    return sorted(d for d in os.listdir(data) if len(d) == 26 and os.path.isfile(os.path.join(data, d, "meta.json")))


def copy_as_compacted(data, parent):
    """The block a compaction of |parent| alone would write: the same
    data under a new ULID, with |parent| among its parents."""
    sys.path.insert(0, HERE)
    meta = json.load(open(os.path.join(data, parent, "meta.json")))
    import random
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    ms = int(time.time() * 1000)
    ts = ""
    for _ in range(10):
        ts = alphabet[ms % 32] + ts
        ms //= 32
    ulid = ts + "".join(random.choice(alphabet) for _ in range(16))
    tmp = os.path.join(data, ulid + ".tmp-for-creation")
    shutil.copytree(os.path.join(data, parent), tmp)
    meta["ulid"] = ulid
    meta["compaction"] = {"level": 2, "sources": meta["compaction"]["sources"],
                          "parents": [{"ulid": parent, "minTime": meta["minTime"], "maxTime": meta["maxTime"]}]}
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f)
    os.rename(tmp, os.path.join(data, ulid))
    return ulid


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--work")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="sidecar_read_blocks.")
    os.makedirs(work, exist_ok=True)
    srv = Server(("127.0.0.1", 0), Target)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    args.target = "127.0.0.1:%d" % srv.server_address[1]

    def cleanup(*_):
        for p in reversed(list(procs)):
            try:
                p.stop()
            except Exception:  # noqa: BLE001
                pass
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    blocks = make_data(args, work)
    nblocks = len(block_dirs(blocks))
    boundary = max(json.load(open(os.path.join(blocks, d, "meta.json")))["maxTime"]
                   for d in block_dirs(blocks)) / 1000.0
    log("%d promtool blocks, newest ends %.0f s ago" % (nblocks, time.time() - boundary))

    data = os.path.join(work, "prom")
    shutil.copytree(blocks, data)
    s = Stack(args, work, "read", data)

    def head_has(n):
        st, body = get(s.prom.url + "/api/v1/query", {"query": "count_over_time(bt_metric[1m])"})
        r = json.loads(body)["data"]["result"] if st == 200 else []
        return len(r) == 2 and all(float(x["value"][1]) >= n for x in r)
    wait_for("5 scrapes in the head", lambda: head_has(5), s.prom)
    wait_for("the sidecar's listing", lambda: (metric(s.side.url, "orrery_sidecar_blocks") or 0) >= 1, s.side)
    check("read: the sidecar reads every block", metric(s.side.url, "orrery_sidecar_blocks") == nblocks,
          metric(s.side.url, "orrery_sidecar_blocks"))
    now = time.time() - 3  # every scrape before |now| is in
    c0 = metric(s.side.url, "orrery_sidecar_block_series_calls_total")
    for name, path, params in queries(s, now, boundary):
        s.same(name, path, params)
    c1 = metric(s.side.url, "orrery_sidecar_block_series_calls_total")
    check("read: the block queries were read from the blocks (%s calls)" % (c1 - c0), c1 - c0 >= 4)
    st, body = get(s.gw.url + "/api/v1/query", {"query": "bt_metric[20s]", "time": "%.3f" % now})
    c2 = metric(s.side.url, "orrery_sidecar_block_series_calls_total")
    check("read: a head-only query is remote read only", c2 == c1, (c1, c2))

    # A compacted block beside its parent, then without it.
    l0 = metric(s.side.url, "orrery_sidecar_block_listings_total")
    parent = block_dirs(data)[0]
    child = copy_as_compacted(data, parent)
    wait_for("the sidecar's listing", lambda: metric(s.side.url, "orrery_sidecar_block_listings_total") > l0, s.side)
    check("compacted: parent and child present, one read",
          metric(s.side.url, "orrery_sidecar_blocks") == nblocks, metric(s.side.url, "orrery_sidecar_blocks"))
    c0 = metric(s.side.url, "orrery_sidecar_block_series_calls_total")
    now = time.time() - 3
    for name, path, params in queries(s, now, boundary):
        s.same("compacted block beside its parent: " + name, path, params)
    l0 = metric(s.side.url, "orrery_sidecar_block_listings_total")
    if os.path.isdir(os.path.join(data, parent)):  # Prometheus may have deleted it already
        shutil.rmtree(os.path.join(data, parent))
        wait_for("the sidecar's listing", lambda: metric(s.side.url, "orrery_sidecar_block_listings_total") > l0,
                 s.side)
    for name, path, params in queries(s, time.time() - 3, boundary):
        s.same("parent deleted: " + name, path, params)
    c1 = metric(s.side.url, "orrery_sidecar_block_series_calls_total")
    check("compacted: the blocks were read, not remote read (%s calls)" % (c1 - c0), c1 - c0 >= 8)
    log("(child block %s of %s)" % (child, parent))

    # --tsdb.read-blocks=false: remote read as before.
    s.side.stop()
    s.start_sidecar(False)
    s.wait_store()
    for name, path, params in queries(s, time.time() - 3, boundary):
        s.same("--tsdb.read-blocks=false: " + name, path, params)
    check("--tsdb.read-blocks=false: no block reads",
          metric(s.side.url, "orrery_sidecar_block_series_calls_total") in (None, 0.0))
    s.stop()

    # Out-of-order ingestion: every call through remote read, said once.
    data2 = os.path.join(work, "prom-ooo")
    shutil.copytree(blocks, data2)
    o = Stack(args, work, "ooo", data2, ooo=True)
    wait_for("the sidecar's config", lambda: "out-of-order" in open(o.side.logpath).read(), o.side)
    now = time.time() - 3
    for name, path, params in queries(o, now, boundary)[:1]:
        o.same("out-of-order window: " + name, path, params)
    check("out-of-order window: no block reads",
          metric(o.side.url, "orrery_sidecar_block_series_calls_total") == 0.0)
    o.stop()
    log("%d failed" % len(fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
