#!/usr/bin/env python3
"""store_live_prometheus.py: blocks a live Prometheus 2.42 serves, uploaded
by `orrery sidecar`, answered by `orrery store` alone behind `orrery gateway`
the same as by that Prometheus (issue 11's first "Done when").

Route (the fastest honest one): promtool writes the PromQL differential
dataset (gen_data.py) as blocks into the data dir of a Prometheus started with --storage.tsdb.min-block-duration=2h
--storage.tsdb.max-block-duration=2h (it compacts nothing of its own, as
Thanos asks of any Prometheus beside a sidecar), external labels
{replica="r0"} and its remote-write receiver on. Remote write then pushes
4h10m of samples (counters with a reset, gauges) into its head, far past the
dataset (2030): the head spans more than 1.5 block durations, so Prometheus
itself cuts a 2h block from it (head compaction) while the test waits.
`orrery sidecar` beside it ships every level-1 block, promtool's and the one
Prometheus wrote, to a FILESYSTEM bucket through its shipper (chunks, index,
then meta.json). Once every block's meta.json is in the bucket the
sidecar is stopped; then `orrery store` over the bucket, and one `orrery
gateway` (--query.replica-label=replica, so the external label leaves the
answers as Prometheus's API leaves it out) per set of engine options.
Checks:
  1. the bucket holds every block of the data dir, index and chunk files
     byte-identical, meta.json with the thanos section (labels
     {replica="r0"}, source "sidecar");
  2. every query of queries.txt (promql_diff's comparison; the max_samples
     ones left out as with --via-store: the gateway's sample limit is not
     the store's) answered through the gateway equals the answer of the
     live Prometheus (queries with other engine options: of a Prometheus
     over a copy of the same data dir, started with those options);
  3. queries over the block Prometheus cut from its head (LIVE_QUERIES)
     equal the live Prometheus's answers too.
promql_diff's stale-marker block is left out: it overlaps promtool's, and
Prometheus merges overlapping blocks (vertical compaction, always on in
2.42) into a level-2 block that a sidecar does not ship.
Every process listens on 127.0.0.1 at a free port, readiness is polled, and
each is stopped by PID on every exit path.
Usage: store_live_prometheus.py --orrery BIN --prometheus BIN --promtool BIN
         [--queries FILE] [--keep]
"""
import argparse
import atexit
import concurrent.futures
import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "promql"))
sys.path.insert(0, os.path.join(HERE, ".."))
import promql_diff as pd  # noqa: E402
from portpick import free_port  # noqa: E402

FAILS = []
# The remote-written data: 2h-aligned, far past queries.txt's times.
T0 = 1900000800
PUSH_S = 4 * 3600 + 600
STEP_S = 15
LIVE_QUERIES = [
    "live_requests_total",
    "rate(live_requests_total[5m])",
    "sum by (code) (increase(live_requests_total[10m]))",
    "resets(live_requests_total[30m])",
    "live_temperature_celsius",
    "max_over_time(live_temperature_celsius[7m]) - min_over_time(live_temperature_celsius[7m])",
    "count by (__name__) ({job=\"live\"})",
    "avg(live_temperature_celsius) * on() group_left count(live_requests_total)",
]


# ---- remote write (protobuf and snappy by hand: no extra packages)
def _uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num, wire, payload):
    if wire == 2:
        return _uvarint(num << 3 | 2) + _uvarint(len(payload)) + payload
    return _uvarint(num << 3 | wire) + payload


def _write_request(series):
    """prometheus.WriteRequest{timeseries=1: {labels=1: {name=1, value=2},
    samples=2: {value=1 double, timestamp=2 int64}}}."""
    import struct
    out = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for k in sorted(labels):
            ts += _field(1, 2, _field(1, 2, k.encode()) + _field(2, 2, labels[k].encode()))
        for t_ms, v in samples:
            ts += _field(2, 2, _field(1, 1, struct.pack("<d", v)) + _field(2, 0, _uvarint(t_ms)))
        out += _field(1, 2, bytes(ts))
    return bytes(out)


def _snappy_literal(data):
    """Snappy's block format with literals only (valid, uncompressed)."""
    out = bytearray(_uvarint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2, n & 0xFF, n >> 8])
        out += chunk
    return bytes(out)


def live_series():
    import math
    n = PUSH_S // STEP_S
    out = []
    for code in ("200", "500"):
        v, samples = 0.0, []
        for k in range(n):
            if code == "500" and k == n // 3:
                v = 0.0  # a counter reset inside the block Prometheus cuts
            v += 3 if code == "200" else 0.25 * (k % 4)
            samples.append(((T0 + k * STEP_S) * 1000, v))
        out.append(({"__name__": "live_requests_total", "job": "live", "code": code}, samples))
    for room in ("a", "b"):
        out.append(({"__name__": "live_temperature_celsius", "job": "live", "room": room},
                    [((T0 + k * STEP_S) * 1000, 20 + 5 * math.sin(k / 40.0) + (room == "b"))
                     for k in range(n)]))
    return out


def remote_write(base, series):
    import urllib.request
    body = _snappy_literal(_write_request(series))
    req = urllib.request.Request(base + "/api/v1/write", data=body, method="POST", headers={
        "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        FAILS.append(what)
    return cond


class LiveProm(pd.Prometheus):
    """promql_diff's Prometheus with external labels, 2h blocks and the
    remote-write receiver."""

    def __init__(self, binary, data, workdir, extra=()):
        self.port = free_port()
        cfg = os.path.join(workdir, "prometheus-%d.yml" % self.port)
        with open(cfg, "w") as f:
            # No scrapes: a scrape's own series (up, ...) carry the wall
            # clock, which the remote-written 2030 samples would put out of
            # the head's bounds.
            f.write("global:\n  external_labels: {replica: r0}\nscrape_configs: []\n")
        self.logpath = os.path.join(workdir, "prometheus-%d.log" % self.port)
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen(
            [binary, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
             "--storage.tsdb.retention.time=100y", "--storage.tsdb.min-block-duration=2h",
             "--storage.tsdb.max-block-duration=2h", "--web.enable-remote-write-receiver",
             "--web.listen-address=127.0.0.1:%d" % self.port] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=pd._die_with_parent)
        self.base = "http://127.0.0.1:%d" % self.port


def block_ids(d):
    return sorted(b for b in os.listdir(d) if len(b) == 26 and os.path.isfile(os.path.join(d, b, "meta.json")))


def wait_for(what, cond, proc, timeout=90):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.proc.poll() is not None:
            raise RuntimeError("%s exited (%s) waiting for %s; log %s"
                               % (proc.logpath, proc.proc.returncode, what, proc.logpath))
        if cond():
            return
        time.sleep(0.05)  # polling interval
    raise RuntimeError("timed out waiting for " + what)


def start_gateway(orrery, work, store_grpc, opts):
    http, grpc = free_port(), free_port()
    extra = ["--%s=%s" % (pd.ENGINE_OPTIONS[k][0], v) for k, v in opts]
    gw = pd.Daemon([orrery, "gateway", "--endpoint=127.0.0.1:%d" % store_grpc,
                    "--http-address=127.0.0.1:%d" % http, "--grpc-address=127.0.0.1:%d" % grpc,
                    "--query.replica-label=replica", "--log.level=warn"] + extra, work, "gateway-%d" % http)
    gw.base = "http://127.0.0.1:%d" % http

    def store_up(body):
        st = json.loads(body).get("data", {}).get("store") or []
        return any(e.get("lastError") is None and e.get("minTime") is not None for e in st)

    gw.wait_url(gw.base + "/-/ready", lambda b: True)
    gw.wait_url(gw.base + "/api/v1/stores", store_up)
    return gw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--queries", default=os.path.join(HERE, "..", "promql", "queries.txt"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (printed)")
    a = ap.parse_args()
    if pd.is_asan_build(a.orrery):
        pd.MEM_LIMIT_MB = 0
    work = tempfile.mkdtemp(prefix="store_live_prometheus.")
    procs = []

    def cleanup(*_):
        for p in reversed(procs):
            p.stop()
        del procs[:]
        if a.keep:
            print("work directory kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    t0 = time.monotonic()

    queries = [q for q in pd.read_queries(a.queries) if not any(k == "max_samples" for k, _ in q.options)]
    blocks = pd.make_blocks(a.promtool, work)
    data = os.path.join(work, "prom-data")
    shutil.copytree(blocks, data)
    promtool_ids = block_ids(data)
    prom = LiveProm(a.prometheus, data, work)
    procs.append(prom)
    prom.wait_ready()
    check(remote_write(prom.base, live_series()) in (200, 204), "remote write into the live Prometheus")
    # Its head now spans 4h10m > 1.5 x 2h: Prometheus cuts [T0, T0+2h).
    wait_for("Prometheus to cut a block from its head", lambda: len(block_ids(data)) > len(promtool_ids), prom)
    want_ids = block_ids(data)
    cut = [b for b in want_ids if b not in promtool_ids]
    with open(os.path.join(data, cut[0], "meta.json")) as f:
        cm = json.load(f)
    check(len(cut) == 1 and cm["minTime"] == T0 * 1000 and cm["maxTime"] == (T0 + 7200) * 1000
          and cm["compaction"]["level"] == 1,
          "Prometheus cut block %s [%d, %d) level %d from its head"
          % (cut[0], cm["minTime"], cm["maxTime"], cm["compaction"]["level"]))

    # ---- the sidecar ships what the live Prometheus holds
    bdir = os.path.join(work, "bucket")
    os.makedirs(bdir)
    yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
    sc_http, sc_grpc = free_port(), free_port()
    sidecar = pd.Daemon([a.orrery, "sidecar", "--prometheus.url=" + prom.base, "--tsdb.path=" + data,
                         "--objstore.config=" + yaml, "--http-address=127.0.0.1:%d" % sc_http,
                         "--grpc-address=127.0.0.1:%d" % sc_grpc], work, "sidecar")
    procs.append(sidecar)
    wait_for("the sidecar to upload %d blocks" % len(want_ids), lambda: block_ids(bdir) == want_ids, sidecar)
    sidecar.stop()
    procs.remove(sidecar)
    t_shipped = time.monotonic()
    check(block_ids(bdir) == want_ids, "the sidecar uploaded all %d blocks of the live Prometheus" % len(want_ids))
    same = True
    for b in want_ids:
        for root, _, names in os.walk(os.path.join(data, b)):
            for n in names:
                if n in ("meta.json", "tombstones"):
                    continue
                src = os.path.join(root, n)
                dst = os.path.join(bdir, b, os.path.relpath(src, os.path.join(data, b)))
                if not os.path.isfile(dst) or not filecmp.cmp(src, dst, shallow=False):
                    same = check(False, "%s: %s differs or is missing in the bucket" % (b, os.path.relpath(src, data)))
        with open(os.path.join(bdir, b, "meta.json")) as f:
            m = json.load(f)
        th = m.get("thanos") or {}
        if th.get("labels") != {"replica": "r0"} or th.get("source") != "sidecar":
            same = check(False, "%s: meta.json thanos section %s" % (b, th))
    check(same, "index and chunks byte-identical, meta.json with thanos labels {replica=r0} and source sidecar")

    # ---- the store alone (no sidecar) behind gateways
    st_http, st_grpc = free_port(), free_port()
    store = pd.Daemon([a.orrery, "store", "--objstore.config=" + yaml, "--data-dir=" + os.path.join(work, "store-data"),
                       "--http-address=127.0.0.1:%d" % st_http, "--grpc-address=127.0.0.1:%d" % st_grpc,
                       "--log.level=warn"], work, "store")
    procs.append(store)
    store.wait_url("http://127.0.0.1:%d/-/ready" % st_http, lambda b: True)
    groups = {}
    for q in queries:
        groups.setdefault(q.options, []).append(q)
    proms = {(): prom}
    gws = {}
    for i, opts in enumerate(sorted(groups)):
        if opts not in proms:
            pdata = os.path.join(work, "prom-data-%d" % i)
            shutil.copytree(blocks, pdata)
            p = pd.Prometheus(a.prometheus, pdata, work,
                              ["--%s=%s" % (pd.ENGINE_OPTIONS[k][0], v) for k, v in opts])
            procs.append(p)
            proms[opts] = p
        gws[opts] = start_gateway(a.orrery, work, st_grpc, opts)
        procs.append(gws[opts])
    for p in proms.values():
        p.wait_ready()

    def one(q):
        return q, pd.run_prometheus(proms[q.options], q), pd.run_gateway(gws[q.options], q)

    live = [pd.Query(1000000 + i, "range", [("start", str(T0)), ("end", str(T0 + 7200 - 1)), ("step", "30")], e)
            for i, e in enumerate(LIVE_QUERIES)]
    live += [pd.Query(2000000 + i, "instant", [("time", str(T0 + 7200 - 1))], e) for i, e in enumerate(LIVE_QUERIES)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        results = list(ex.map(one, live))
    lm = 0
    for q, pb, (rc, out, err) in results:
        diffs = pd.compare(q, pb, rc, out, err)
        empty = '"result":[]' in pb
        if diffs or empty:
            print("MISMATCH %s%s" % (q.describe(), " (empty)" if empty else ""))
            for d in diffs[:4]:
                print("    " + d)
        else:
            lm += 1
    check(lm == len(live), "%d of %d queries over the block Prometheus cut equal its answers (non-empty)"
          % (lm, len(live)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        results = list(ex.map(one, queries))
    matched = 0
    for q, pb, (rc, out, err) in sorted(results, key=lambda r: r[0].lineno):
        diffs = pd.compare(q, pb, rc, out, err)
        if diffs:
            print("MISMATCH %s" % q.describe())
            for d in diffs[:4]:
                print("    " + d)
        else:
            matched += 1
    check(matched == len(queries), "%d of %d queries through store + gateway equal the live Prometheus's answers"
          % (matched, len(queries)))
    print("(blocks and upload %.1f s, store and queries %.1f s)" % (t_shipped - t0, time.monotonic() - t_shipped))
    cleanup()
    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
