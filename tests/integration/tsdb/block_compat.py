#!/usr/bin/env python3
"""block_compat.py PART: orrery's blocks against the real Prometheus 2.42.

  promtool_blocks  blocks made by `promtool tsdb create-blocks-from openmetrics`
                   from a generated file: `orrery tools block dump` prints
                   exactly what `promtool tsdb dump` prints (also with --match
                   and a time range), `verify` passes, `ls` lists every block.
  live_prometheus  a block cut by a running Prometheus (1m blocks, scraping
                   itself every second): its dump equals the samples the
                   Prometheus API returns for the block's time range.
  orrery_blocks    a block written by orrery's block writer: promtool list and
                   analyze accept it, promtool dump equals orrery's dump, and a
                   Prometheus started on it answers with exactly the samples
                   written.

Processes listen on 127.0.0.1 at free ports, are stopped by PID, and readiness
is polled on /-/ready with a deadline.
"""
import argparse
import json
import math
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ARGS = None
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL: " + msg, file=sys.stderr)
    return cond


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from portpick import free_port  # noqa: E402


class Prometheus:
    def __init__(self, workdir, data, config, extra=()):
        self.port = free_port()
        self.log = open(os.path.join(workdir, "prometheus-%d.log" % self.port), "w")
        cfg = os.path.join(workdir, "prometheus-%d.yml" % self.port)
        with open(cfg, "w") as f:
            f.write(config.replace("PORT", str(self.port)))
        self.proc = subprocess.Popen(
            [ARGS.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--storage.tsdb.retention.time=100y"] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)
        self.base = "http://127.0.0.1:%d" % self.port

    def wait_ready(self, deadline_s=60):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("prometheus exited with %s" % self.proc.returncode)
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)  # polling interval of a readiness check, not synchronisation
        raise RuntimeError("prometheus not ready after %ds" % deadline_s)

    def api(self, path, **params):
        url = self.base + path + "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=60) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError("%s: %s" % (url, body))
        return body["data"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def ms_param(ms):
    """Milliseconds as the API's seconds-with-fraction parameter."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return "%s%d.%03d" % (sign, ms // 1000, ms % 1000)


def parse_dump(text):
    """promtool/orrery dump lines -> list of (labels, ts, value string)."""
    out = []
    for line in text.splitlines():
        lbl, val, ts = line.rsplit(" ", 2)
        out.append((lbl, int(ts), val))
    return out


def go_quote(s):
    r = ['"']
    for ch in s:
        if ch == '"':
            r.append('\\"')
        elif ch == "\\":
            r.append("\\\\")
        elif ch == "\n":
            r.append("\\n")
        elif ch == "\t":
            r.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            r.append("\\x%02x" % ord(ch))
        else:
            r.append(ch)
    r.append('"')
    return "".join(r)


def labels_str(metric):
    return "{" + ", ".join("%s=%s" % (k, go_quote(metric[k])) for k in sorted(metric)) + "}"


def query_block_range(prom, mint, maxt):
    """Every sample in [mint, maxt) from the API: one range selector
    evaluated at maxt-1 covering [mint, maxt-1] (closed in 2.42)."""
    rng = maxt - 1 - mint
    data = prom.api("/api/v1/query", query='{__name__=~".+"}[%dms]' % rng, time=ms_param(maxt - 1))
    check(data["resultType"] == "matrix", "query result type %s" % data["resultType"])
    out = []
    for s in data["result"]:
        lbl = labels_str(s["metric"])
        for ts, v in s["values"]:
            out.append((lbl, int(round(float(ts) * 1000)), v))
    return out


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


# ---------------------------------------------------------------- (a)
def gen_openmetrics(path, t0_s, hours, rnd):
    """A few hundred series over several hours: counters, gauges, NaN, +-Inf,
    irregular timestamps, label values that need quoting."""
    fams = []
    # counters: 200 series
    series = []
    for i in range(200):
        series.append(({"instance": "host-%03d:9100" % (i // 4), "job": "node",
                        "code": str(200 + (i % 4) * 100)}, "counter"))
    fams.append(("http_requests", "counter", series))
    gs = []
    for i in range(90):
        gs.append(({"instance": "host-%03d:9100" % i, "job": "node",
                    "mode": ["idle", "user", "system"][i % 3]}, "gauge"))
    fams.append(("node_temperature_celsius", "gauge", gs))
    ws = [({"case": 'quote"back\\slash\nnewline'}, "gauge"), ({"case": "unicodé ☃"}, "gauge"),
          ({"case": "specials"}, "gauge"), ({"case": "empty-ish", "x": "y"}, "gauge")]
    fams.append(("weird_values", "gauge", ws))
    end_s = t0_s + hours * 3600
    with open(path, "w") as f:
        for name, typ, ser in fams:
            f.write("# TYPE %s %s\n" % (name, typ))
            sample = name + "_total" if typ == "counter" else name
            for idx, (lbls, _) in enumerate(ser):
                lbl = ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')
                                            .replace("\n", "\\n")) for k, v in lbls.items())
                t_ms = t0_s * 1000 + rnd.randrange(0, 60000)
                start_late = rnd.random() < 0.1
                if start_late:
                    t_ms += 3600 * 1000
                acc = 0.0
                k = 0
                while t_ms < end_s * 1000:
                    if typ == "counter":
                        acc += rnd.randrange(0, 50)
                        if rnd.random() < 0.002:
                            acc = 0.0
                        v = repr(float(acc)) if acc % 1 else "%d" % acc
                    else:
                        r = rnd.random()
                        if name == "weird_values" and r < 0.1:
                            v = rnd.choice(["NaN", "+Inf", "-Inf", "-0.0", "1e-310", "1.7976931348623157e+308"])
                        elif r < 0.01:
                            v = "NaN"
                        else:
                            v = repr(rnd.uniform(-1000, 1000))
                    f.write("%s{%s} %s %d.%03d\n" % (sample, lbl, v, t_ms // 1000, t_ms % 1000))
                    t_ms += 30000 + rnd.randrange(-5000, 5000)
                    k += 1
        f.write("# EOF\n")


def part_promtool_blocks(work):
    rnd = random.Random(42)
    om = os.path.join(work, "data.om")
    data = os.path.join(work, "data")
    t0 = 1700000000 - 1700000000 % 7200 + 1800
    gen_openmetrics(om, t0, 5, rnd)
    r = run([ARGS.promtool, "tsdb", "create-blocks-from", "openmetrics", om, data])
    if not check(r.returncode == 0, "create-blocks-from: %s" % r.stderr):
        return
    os.makedirs(os.path.join(data, "wal"), exist_ok=True)
    blocks = sorted(d for d in os.listdir(data) if len(d) == 26)
    check(len(blocks) >= 3, "expected several blocks, got %s" % blocks)

    def compare(extra_p, extra_o, what):
        p = run([ARGS.promtool, "tsdb", "dump"] + extra_p + [data])
        o = run([ARGS.orrery, "tools", "block", "dump"] + extra_o + [data])
        if not check(p.returncode == 0, "promtool dump %s: %s" % (what, p.stderr)):
            return
        if not check(o.returncode == 0, "orrery dump %s: rc %d %s" % (what, o.returncode, o.stderr)):
            return
        # Series merged across blocks in label order, as promtool's querier does.
        check(p.stdout == o.stdout or sorted(p.stdout.splitlines()) != sorted(o.stdout.splitlines()),
              "dump %s: same lines as promtool but in another order" % what)
        pl, ol = sorted(p.stdout.splitlines()), sorted(o.stdout.splitlines())
        check(len(pl) > 0, "promtool dump %s printed nothing" % what)
        if pl != ol:
            sp, so = set(pl), set(ol)
            check(False, "dump %s differs: %d promtool lines, %d orrery lines; only promtool: %s; "
                  "only orrery: %s" % (what, len(pl), len(ol), sorted(sp - so)[:3], sorted(so - sp)[:3]))
        else:
            print("dump %s: %d identical lines" % (what, len(pl)))

    compare([], [], "all")
    lo, hi = (t0 + 3600) * 1000 + 123, (t0 + 2 * 3600 + 1800) * 1000
    compare(["--min-time=%d" % lo, "--max-time=%d" % hi],
            ["--min-time=%d" % lo, "--max-time=%d" % hi], "time range")
    compare(['--match=http_requests_total{code=~"[23].*",instance!="host-001:9100"}'],
            ['--match=http_requests_total{code=~"[23].*",instance!="host-001:9100"}'], "match")
    compare(['--match={__name__="weird_values"}'], ['--match={__name__="weird_values"}'], "weird")

    # Chunks cut as promtool's head cuts them (chunk range = 2 x 2h block).
    for b in blocks:
        recut = os.path.join(work, "recut")
        os.makedirs(recut, exist_ok=True)
        r = run([ARGS.fixture, "--recut", os.path.join(data, b), recut, str(4 * 3600 * 1000)])
        check(r.returncode == 0, "recut of %s: %s %s" % (b, r.stdout, r.stderr))
    v = run([ARGS.orrery, "tools", "block", "verify"] + [os.path.join(data, b) for b in blocks])
    check(v.returncode == 0, "verify of promtool blocks: rc %d: %s %s" % (v.returncode, v.stdout, v.stderr))
    check("no problems" in v.stdout, "verify summary: %s" % v.stdout)
    ls = run([ARGS.orrery, "tools", "block", "ls", data])
    check(ls.returncode == 0, "ls rc %d %s" % (ls.returncode, ls.stderr))
    for b in blocks:
        check(b in ls.stdout, "ls lacks block %s" % b)
    pls = run([ARGS.promtool, "tsdb", "list", data])
    for line in pls.stdout.splitlines()[1:]:
        f = line.split()
        # ULID, min, max, duration, samples, chunks, series: same numbers in our row
        row = [l for l in ls.stdout.splitlines() if l.startswith(f[0])]
        if check(len(row) == 1, "ls row for %s" % f[0]):
            cols = row[0].split()
            check(cols[3] == f[1] and cols[4] == f[2], "ls times of %s: %s vs %s" % (f[0], cols[3:5], f[1:3]))
            check(cols[6:9] == f[4:7], "ls stats of %s: %s vs %s" % (f[0], cols[6:9], f[4:7]))


# ---------------------------------------------------------------- (b)
def part_live_prometheus(work):
    data = os.path.join(work, "prom")
    cfg = ("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           "scrape_configs:\n  - job_name: self\n    static_configs:\n"
           "      - targets: ['127.0.0.1:PORT']\n")
    prom = Prometheus(work, data, cfg, ["--storage.tsdb.min-block-duration=1m",
                                        "--storage.tsdb.max-block-duration=1m"])
    try:
        prom.wait_ready()
        block = None
        end = time.monotonic() + 240
        while time.monotonic() < end and block is None:
            for d in sorted(os.listdir(data)):
                if len(d) == 26 and os.path.exists(os.path.join(data, d, "meta.json")):
                    block = os.path.join(data, d)
                    break
            if block is None:
                if prom.proc.poll() is not None:
                    break
                time.sleep(0.5)  # polling the data dir with a deadline
        if not check(block is not None, "no block cut by Prometheus within 240s"):
            return
        meta = json.load(open(os.path.join(block, "meta.json")))
        mint, maxt = meta["minTime"], meta["maxTime"]
        print("block %s [%d, %d) with %d samples" % (os.path.basename(block), mint, maxt,
                                                     meta["stats"]["numSamples"]))
        o = run([ARGS.orrery, "tools", "block", "dump", block])
        if not check(o.returncode == 0, "orrery dump: %s" % o.stderr):
            return
        dumped = parse_dump(o.stdout)
        check(len(dumped) == meta["stats"]["numSamples"],
              "dump printed %d samples, meta says %d" % (len(dumped), meta["stats"]["numSamples"]))
        api = query_block_range(prom, mint, maxt)
        d_real = {(l, t, float(v)) for l, t, v in dumped if v != "NaN"}
        a_real = {(l, t, float(v)) for l, t, v in api if v != "NaN"}
        d_nan = {(l, t) for l, t, v in dumped if v == "NaN"}
        a_nan = {(l, t) for l, t, v in api if v == "NaN"}
        # The first block holds from Prometheus's start to the next minute
        # boundary: at least one scrape of a few hundred series.
        check(len(a_real) > 200, "API returned only %d samples" % len(a_real))
        if d_real != a_real:
            check(False, "block dump vs API: %d vs %d samples; only dump: %s; only API: %s" % (
                len(d_real), len(a_real), sorted(d_real - a_real)[:3], sorted(a_real - d_real)[:3]))
        else:
            print("live block: %d samples identical to the API" % len(d_real))
        check(a_nan <= d_nan, "NaN samples from the API missing in the dump: %s" % sorted(a_nan - d_nan)[:3])
        v = run([ARGS.orrery, "tools", "block", "verify", block])
        check(v.returncode == 0, "verify of Prometheus's block: %s" % v.stdout)
        # The head's chunk range is the min block duration (1m here): our
        # writer cuts the same chunks, byte for byte.
        recut = os.path.join(work, "recut")
        os.makedirs(recut)
        r = run([ARGS.fixture, "--recut", block, recut, "60000"])
        check(r.returncode == 0, "recut of Prometheus's block: %s %s" % (r.stdout, r.stderr))
        print(r.stdout.strip())
    finally:
        prom.stop()


# ---------------------------------------------------------------- (c)
def part_orrery_blocks(work):
    data = os.path.join(work, "odata")
    os.makedirs(data)
    r = run([ARGS.fixture, data])
    if not check(r.returncode == 0, "fixture: %s" % r.stderr):
        return
    lines = r.stdout.splitlines()
    ulid = lines[0]
    written = []
    for line in lines[1:]:
        lbl, ts, b = line.split("\t")
        written.append((labels_str(json.loads(lbl)), int(ts), int(b, 16)))
    os.makedirs(os.path.join(data, "wal"))
    pl = run([ARGS.promtool, "tsdb", "list", data])
    check(pl.returncode == 0 and ulid in pl.stdout, "promtool list: %s %s" % (pl.stdout, pl.stderr))
    row = [l.split() for l in pl.stdout.splitlines() if l.startswith(ulid)]
    if row:
        check(row[0][4] == str(len(written)), "promtool list samples %s, wrote %d" % (row[0][4], len(written)))
    pa = run([ARGS.promtool, "tsdb", "analyze", data, ulid])
    check(pa.returncode == 0 and ("Block ID: " + ulid) in pa.stdout,
          "promtool analyze: %s %s" % (pa.stdout[:300], pa.stderr))
    pd = run([ARGS.promtool, "tsdb", "dump", data])
    od = run([ARGS.orrery, "tools", "block", "dump", data])
    check(pd.returncode == 0 and od.returncode == 0 and
          sorted(pd.stdout.splitlines()) == sorted(od.stdout.splitlines()),
          "promtool dump and orrery dump of the orrery block differ")
    # The samples as promtool reads them, with NaN payloads unseen: timestamps and values.
    pdump = parse_dump(pd.stdout)
    check(len(pdump) == len(written), "promtool dumped %d samples, wrote %d" % (len(pdump), len(written)))
    meta = json.load(open(os.path.join(data, ulid, "meta.json")))
    prom = Prometheus(work, data, "global:\n  scrape_interval: 1h\n")
    try:
        prom.wait_ready()
        api = query_block_range(prom, meta["minTime"], meta["maxTime"])
        stale = 0x7FF0000000000002
        want = {}
        for l, t, b in written:
            if b == stale:
                continue  # Prometheus drops stale markers from range selections
            want[(l, t)] = b
        got = {}
        for l, t, v in api:
            got[(l, t)] = bits(float(v))
        check(len(got) == len(want), "API returned %d samples, expected %d" % (len(got), len(want)))
        bad = 0
        for k, b in want.items():
            g = got.get(k)
            wv = struct.unpack("<d", struct.pack("<Q", b))[0]
            if g is None:
                ok = False
            elif math.isnan(wv):
                ok = math.isnan(struct.unpack("<d", struct.pack("<Q", g))[0])
            else:
                ok = g == b
            if not ok:
                bad += 1
                if bad <= 3:
                    check(False, "sample %s: wrote %016x, API %s" % (k, b, None if g is None else "%016x" % g))
        if bad == 0:
            print("orrery block: %d samples read back exactly by Prometheus" % len(want))
        # Labels API sees the block too.
        names = prom.api("/api/v1/label/__name__/values")
        check("fixture_requests_total" in names, "label values: %s" % names)
    finally:
        prom.stop()
    # The command line as a user meets it: inspect, verify of a damaged copy,
    # bad arguments.
    blk = os.path.join(data, ulid)
    ins = run([ARGS.orrery, "tools", "block", "inspect", blk])
    check(ins.returncode == 0 and "Highest cardinality metric names:" in ins.stdout and
          "\n30 fixture_requests_total\n" in ins.stdout, "inspect: %s %s" % (ins.stdout[-400:], ins.stderr))
    bad = os.path.join(work, "bad")
    os.makedirs(bad)
    shutil.copytree(blk, os.path.join(bad, ulid))
    seg = os.path.join(bad, ulid, "chunks", "000001")
    with open(seg, "r+b") as f:
        f.seek(3000)
        c = f.read(1)
        f.seek(3000)
        f.write(bytes([c[0] ^ 0x01]))
    v = run([ARGS.orrery, "tools", "block", "verify", os.path.join(bad, ulid)])
    check(v.returncode == 1 and "chunks/000001: offset" in v.stdout and "checksum mismatch" in v.stdout,
          "verify of a damaged block: rc %d: %s" % (v.returncode, v.stdout))
    v = run([ARGS.orrery, "tools", "block", "verify", os.path.join(work, "nope")])
    check(v.returncode == 2 and len(v.stderr.splitlines()) == 1, "verify of a missing dir: rc %d %s" % (v.returncode, v.stderr))
    v = run([ARGS.orrery, "tools", "block", "verify", blk])
    check(v.returncode == 0 and v.stdout.startswith("1 blocks verified"), "verify: %s" % v.stdout)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["promtool_blocks", "live_prometheus", "orrery_blocks"])
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--keep", action="store_true")
    ARGS = ap.parse_args()
    work = tempfile.mkdtemp(prefix="orr_block_%s_" % ARGS.part)
    t = time.monotonic()
    try:
        globals()["part_" + ARGS.part](work)
    except Exception as e:  # report and fail, with the logs kept
        check(False, "%s: %r" % (ARGS.part, e))
    finally:
        if FAILS or ARGS.keep:
            print("work dir kept: %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("%s: %s in %.1fs" % (ARGS.part, "FAILED" if FAILS else "ok", time.monotonic() - t))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
