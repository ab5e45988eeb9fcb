#!/usr/bin/env python3
"""compact_test.py PART: `orrery compact` against real tools.

  prometheus  Blocks made with promtool are given to a Prometheus 2.42
              (--storage.tsdb.min-block-duration=2h, max 6h, retention 100y)
              and, in a FILESYSTEM bucket, to `orrery compact` (ranges 2h,6h):
              (a) four aligned 2h blocks: both compact the first three into
              one 6h block; (b) two overlapping blocks (vertical compaction):
              both merge them. `promtool tsdb dump` of Prometheus's block and
              of ours is identical, and so are the meta.json stats; ours
              carries compaction level, sources, parents and the thanos
              section, and `orrery tools block verify` passes.
  bucket      Two groups in one bucket (external labels), one with a planted
              overlap: `orrery compact --wait` halts only that group (error
              log line naming the group and both blocks,
              thanos_compact_halted 1 on /metrics) while the other group is
              compacted; a no-compact-mark.json set with `orrery tools bucket
              mark` keeps a block out (groups 3 at a time,
              --compact.concurrency=3); deletion marks on the sources are
              removed with the blocks after --delete-delay; `orrery tools
              bucket inspect` lists the blocks; HA replicas (replica label)
              compact into one block without the replica label.
              --consistency-delay holds back downsampling as it does
              compaction: a 48h raw block uploaded just now is not
              downsampled under the default 30m, and is with 0s. `compact
              --wait` on an address in use exits 1 at once with a logfmt
              error naming the address and the cause, and leaves the bucket
              alone.
  crash       kill -9 of `orrery compact` at 10 random points of a
              compaction: after each kill the readable blocks (as the store
              filters them) hold every sample exactly once and verify; a run
              to completion leaves no two readable blocks sharing a source.
              Then 5 kills during a downsampling and a run to completion:
              exactly one whole 5m block.
  crash_s3    The bucket on s3rver (npm): `orrery compact --wait` uploads
              its compacted block one object per 2 s
              (ORRERY_COMPACT_TEST_PUT_DELAY); s3rver is killed once the
              first chunk segment is in, kept down 15 s (--s3-outage or
              $ORRERY_COMPACT_S3_OUTAGE: 60 by hand; the compactor's
              iterations fail and are retried) and restarted on the same
              port and data: the readable blocks then hold every sample
              exactly once and verify, exactly one compacted block has a
              meta.json (put once), and what the interrupted attempt left
              has none.
"""
import argparse
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import portpick  # noqa: E402

ARGS = None
FAILS = []
H2 = 7200
T0 = 1700006400  # a multiple of 6h


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL: " + msg, file=sys.stderr, flush=True)
    else:
        print("ok: " + msg, flush=True)
    return cond


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def om_series(f, name, labels, times, valfn):
    lab = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for t in times:
        ts = ("%d" % (t // 1000)) if t % 1000 == 0 else ("%d.%03d" % (t // 1000, t % 1000))
        f.write("%s{%s} %s %s\n" % (name, lab, repr(float(valfn(t))), ts))


def make_blocks(work, name, series, start_ms, end_ms, step_ms, offset_ms=0, skip=None,
                extra=()):
    """promtool blocks of |series| series sampled every |step_ms| in
    [start_ms, end_ms), plus a sample at each 2h boundary - 1 ms so that the
    blocks end on the boundary as Prometheus's head blocks do."""
    om = os.path.join(work, name + ".om")
    with open(om, "w") as f:
        f.write("# TYPE m gauge\n")
        for s in range(series):
            times = [t for t in range(start_ms + offset_ms, end_ms, step_ms)
                     if not skip or not skip[0] <= t < skip[1]]
            b = (start_ms // (H2 * 1000) + 1) * H2 * 1000
            while b <= end_ms:
                if b - 1 not in times and b - 1 >= start_ms:
                    times.append(b - 1)
                b += H2 * 1000
            times.sort()
            om_series(f, "m", {"inst": "i%d" % s, "job": "j%d" % (s % 3)}, times,
                      lambda t, s=s: (t // 1000) * (s % 5 + 1) % 1000 + s)
        f.write("# EOF\n")
    out = os.path.join(work, name)
    subprocess.run([ARGS.promtool, "tsdb", "create-blocks-from", "openmetrics", *extra, om, out],
                   check=True, stdout=subprocess.DEVNULL)
    return sorted(glob.glob(os.path.join(out, "*")))


def meta(d):
    with open(os.path.join(d, "meta.json")) as f:
        return json.load(f)


def bucket_cfg(d):
    return "type: FILESYSTEM\nconfig:\n  directory: %s\n" % d


def orrery(*args, **kw):
    return subprocess.run([ARGS.orrery] + list(args), capture_output=True, text=True, **kw)


def dump_block(work, block_dir, tag):
    """promtool tsdb dump of a single block (a db dir holding only it)."""
    d = os.path.join(work, "dump-" + tag)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "wal"))
    shutil.copytree(block_dir, os.path.join(d, os.path.basename(block_dir)))
    r = subprocess.run([ARGS.promtool, "tsdb", "dump", d], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("promtool tsdb dump %s: %s" % (d, r.stderr))
    return r.stdout


def dump_blocks(work, dirs, tag):
    d = os.path.join(work, "dump-" + tag)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "wal"))
    for b in dirs:
        shutil.copytree(b, os.path.join(d, os.path.basename(b)))
    r = subprocess.run([ARGS.promtool, "tsdb", "dump", d], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("promtool tsdb dump %s: %s" % (d, r.stderr))
    return r.stdout


def level2(d):
    return [b for b in sorted(glob.glob(os.path.join(d, "*")))
            if os.path.exists(os.path.join(b, "meta.json")) and meta(b)["compaction"]["level"] >= 2]


def readable(bucket, dedup=False):
    """Blocks a store would serve: meta.json present, no deletion mark; with
    |dedup| also without the blocks whose sources another one covers (the
    store's filter, Thanos's, within a resolution; equal sets: the smaller
    ULID stays)."""
    bs = [b for b in sorted(glob.glob(os.path.join(bucket, "*")))
          if os.path.exists(os.path.join(b, "meta.json"))
          and not os.path.exists(os.path.join(b, "deletion-mark.json"))]
    if not dedup:
        return bs
    src = {b: set(meta(b)["compaction"]["sources"]) for b in bs}
    res = {b: meta(b).get("thanos", {}).get("downsample", {}).get("resolution", 0) for b in bs}
    keep = []
    for b in bs:
        covered = any(o != b and res[o] == res[b] and src[b] <= src[o] and
                      (src[b] != src[o] or os.path.basename(o) < os.path.basename(b))
                      for o in bs)
        if not covered:
            keep.append(b)
    return keep


# ---------------------------------------------------------------- prometheus

def part_prometheus(work):
    scen = {}
    # (a) four aligned 2h blocks
    a = make_blocks(work, "a", 40, T0 * 1000, (T0 + 4 * H2) * 1000, 15000)
    # (b) two overlapping sets: 15 s samples in [T0, T0+2h) and 10 s samples
    # in [T0+1h, T0+3h) with the same values where timestamps meet
    b1 = make_blocks(work, "b1", 30, T0 * 1000, (T0 + H2) * 1000, 15000)
    b2 = make_blocks(work, "b2", 30, (T0 + 3600) * 1000, (T0 + H2 + 3600) * 1000, 10000)
    scen["aligned"] = a
    scen["overlap"] = b1 + b2
    cfg = os.path.join(work, "prom.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1h\n")
    procs = {}
    for name, blocks in scen.items():
        pd = os.path.join(work, "prom-" + name)
        bd = os.path.join(work, "bucket-" + name)
        os.makedirs(pd)
        os.makedirs(bd)
        for blk in blocks:
            shutil.copytree(blk, os.path.join(pd, os.path.basename(blk)))
            shutil.copytree(blk, os.path.join(bd, os.path.basename(blk)))
        port = portpick.free_port()
        logf = open(os.path.join(work, "prom-%s.log" % name), "w")
        procs[name] = subprocess.Popen(
            [ARGS.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + pd,
             "--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=6h",
             "--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:%d" % port],
            stdout=logf, stderr=subprocess.STDOUT)
    try:
        for name in scen:
            bd = os.path.join(work, "bucket-" + name)
            extra = ["--deduplication.replica-label=replica"] if name == "overlap" else []
            r = orrery("compact", "--objstore.config=" + bucket_cfg(bd),
                       "--data-dir=" + os.path.join(work, "data-" + name),
                       "--consistency-delay=0s", "--compact.ranges=2h,6h", *extra)
            check(r.returncode == 0, "%s: orrery compact exits 0 (%s)" % (name, r.stderr[-500:]))
        # Prometheus compacts a minute after start; poll.
        deadline = time.time() + 240
        while time.time() < deadline:
            if all(level2(os.path.join(work, "prom-" + n)) for n in scen):
                break
            time.sleep(2)
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    for name in scen:
        pl = level2(os.path.join(work, "prom-" + name))
        ol = level2(os.path.join(work, "bucket-" + name))
        if not check(len(pl) == 1 and len(ol) == 1,
                     "%s: one compacted block each (prometheus %d, orrery %d)"
                     % (name, len(pl), len(ol))):
            continue
        pm, om = meta(pl[0]), meta(ol[0])
        check((pm["minTime"], pm["maxTime"]) == (om["minTime"], om["maxTime"]),
              "%s: same time range %s" % (name, (om["minTime"], om["maxTime"])))
        check(pm["stats"] == om["stats"], "%s: same stats %s (prometheus %s)"
              % (name, om["stats"], pm["stats"]))
        check(pm["compaction"]["sources"] == om["compaction"]["sources"]
              and pm["compaction"]["level"] == om["compaction"]["level"]
              and [p["ulid"] for p in pm["compaction"]["parents"]]
              == [p["ulid"] for p in om["compaction"]["parents"]],
              "%s: same level, sources and parents" % name)
        check(om.get("thanos", {}).get("source") == "compactor"
              and om["thanos"]["downsample"]["resolution"] == 0
              and om["thanos"]["files"][-1]["rel_path"] == "meta.json",
              "%s: thanos section (source compactor, resolution 0, files)" % name)
        dp = dump_block(work, pl[0], name + "-prom")
        do = dump_block(work, ol[0], name + "-orrery")
        check(dp == do and len(dp) > 0,
              "%s: promtool tsdb dump identical (%d lines)" % (name, dp.count("\n")))
        same_index = open(os.path.join(pl[0], "index"), "rb").read() == \
            open(os.path.join(ol[0], "index"), "rb").read()
        same_chunks = open(os.path.join(pl[0], "chunks", "000001"), "rb").read() == \
            open(os.path.join(ol[0], "chunks", "000001"), "rb").read()
        log("%s: index byte-identical: %s, chunks byte-identical: %s"
            % (name, same_index, same_chunks))
        # (verified alone: beside its marked sources it overlaps them)
        r = orrery("tools", "block", "verify",
                   os.path.join(work, "dump-%s-orrery" % name, os.path.basename(ol[0])))
        check(r.returncode == 0, "%s: orrery tools block verify passes (%s)" % (name, r.stdout[-300:]))
        # The sources are marked for deletion in the bucket.
        for s in om["compaction"]["sources"]:
            check(os.path.exists(os.path.join(work, "bucket-" + name, s, "deletion-mark.json")),
                  "%s: source %s marked for deletion" % (name, s))


# ---------------------------------------------------------------- bucket

def set_labels(block_dir, labels, source="sidecar"):
    m = meta(block_dir)
    m["thanos"] = {"version": 1, "labels": labels, "downsample": {"resolution": 0},
                   "source": source}
    with open(os.path.join(block_dir, "meta.json"), "w") as f:
        json.dump(m, f, indent="\t")


def ulid_at(ms):
    """A ULID string for time |ms| (Crockford base32, 48-bit time + 80 random bits)."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    v = (ms << 80) | random.getrandbits(80)
    return "".join(alphabet[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


def http_get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def part_bucket(work):
    bd = os.path.join(work, "bucket")
    os.makedirs(bd)
    src = make_blocks(work, "g", 20, T0 * 1000, (T0 + 4 * H2) * 1000, 30000)
    # group A: four consecutive blocks -> compacted
    for b in src:
        dst = os.path.join(bd, os.path.basename(b))
        shutil.copytree(b, dst)
        set_labels(dst, {"cluster": "a"})
    # group B: two blocks over the same range (planted overlap) -> halted
    ovl = make_blocks(work, "o", 5, T0 * 1000, (T0 + H2) * 1000, 30000)
    ovl2 = make_blocks(work, "o2", 5, T0 * 1000 + 3600000, (T0 + H2) * 1000, 20000)
    b_ids = []
    for b in ovl + ovl2:
        dst = os.path.join(bd, os.path.basename(b))
        shutil.copytree(b, dst)
        set_labels(dst, {"cluster": "b"})
        b_ids.append(os.path.basename(b))
    # group C: HA replicas r0/r1 of the same data (r1 with a 10-minute gap)
    ha0 = make_blocks(work, "ha0", 5, T0 * 1000, (T0 + H2) * 1000, 15000)
    ha1 = make_blocks(work, "ha1", 5, T0 * 1000, (T0 + H2) * 1000, 15000,
                      skip=((T0 + 1800) * 1000, (T0 + 2400) * 1000))
    for b, rep in ((ha0[0], "r0"), (ha1[0], "r1")):
        dst = os.path.join(bd, os.path.basename(b))
        shutil.copytree(b, dst)
        set_labels(dst, {"cluster": "c", "replica": rep})
    # group D: one block with a no-compact mark next to a compactable pair
    d_blocks = make_blocks(work, "d", 5, T0 * 1000, (T0 + 3 * H2) * 1000, 60000)
    for b in d_blocks:
        dst = os.path.join(bd, os.path.basename(b))
        shutil.copytree(b, dst)
        set_labels(dst, {"cluster": "d"})
    # group E: one raw block spanning 48h -> downsampled to 5m
    t0e = (T0 // 194400) * 194400  # promtool's 54h block range
    e_blocks = make_blocks(work, "e", 5, t0e * 1000, (t0e + 48 * 3600) * 1000, 60000,
                           extra=("--max-block-duration=54h",))
    for b in e_blocks:
        dst = os.path.join(bd, os.path.basename(b))
        shutil.copytree(b, dst)
        set_labels(dst, {"cluster": "e"})
    r = orrery("tools", "bucket", "mark", "--objstore.config=" + bucket_cfg(bd),
               "--id", os.path.basename(d_blocks[0]), "--marker", "no-compact-mark.json",
               "--details", "test")
    check(r.returncode == 0, "tools bucket mark no-compact-mark.json exits 0 (%s)" % r.stderr)
    nc = os.path.join(bd, os.path.basename(d_blocks[0]), "no-compact-mark.json")
    check(os.path.exists(nc) and json.load(open(nc))["id"] == os.path.basename(d_blocks[0]),
          "no-compact-mark.json written with the block id")

    port = portpick.free_port()
    logp = os.path.join(work, "compact.log")
    with open(logp, "w") as logf:
        p = subprocess.Popen(
            [ARGS.orrery, "compact", "--wait", "--wait-interval=1s",
             "--objstore.config=" + bucket_cfg(bd), "--data-dir=" + os.path.join(work, "data"),
             "--consistency-delay=0s", "--compact.ranges=2h,6h", "--delete-delay=0s",
             "--compact.concurrency=3", "--http-address=127.0.0.1:%d" % port], stdout=logf, stderr=subprocess.STDOUT)
    metrics = ""
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                metrics = http_get("http://127.0.0.1:%d/metrics" % port)
                if re.search(r"^thanos_compact_iterations_total \d", metrics, re.M) or \
                        re.search(r"^thanos_compact_halted 1", metrics, re.M):
                    if re.search(r'thanos_compact_group_compactions_total\{group="0@\{cluster=\\"a\\"\}"\} [1-9]',
                                 metrics):
                        break
            except OSError:
                pass
            time.sleep(0.5)
        check(http_get("http://127.0.0.1:%d/-/ready" % port) is not None, "/-/ready answers")
        # a second iteration deletes the marked sources (delete delay 0)
        time.sleep(3)
        metrics = http_get("http://127.0.0.1:%d/metrics" % port)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    logtxt = open(logp).read()
    # The overlap halts group B only, with its log line and metric.
    halt = [l for l in logtxt.splitlines() if "level=error" in l and "halting" in l]
    check(len(halt) > 0 and "cluster=\\\"b\\\"" in halt[0] and all(i in halt[0] for i in b_ids),
          "error log line names the halted group and both blocks: %s" % (halt[:1],))
    check(re.search(r"^thanos_compact_halted 1", metrics, re.M) is not None,
          "thanos_compact_halted 1 on /metrics")
    check(all(os.path.exists(os.path.join(bd, i, "meta.json")) and
              not os.path.exists(os.path.join(bd, i, "deletion-mark.json")) for i in b_ids),
          "the halted group's blocks are untouched")
    # Group A was compacted: one readable 6h block + the newest 2h one.
    ra = [b for b in readable(bd) if meta(b).get("thanos", {}).get("labels") == {"cluster": "a"}]
    check(sorted(meta(b)["maxTime"] - meta(b)["minTime"] for b in ra) == [H2 * 1000, 3 * H2 * 1000],
          "group a compacted into a 6h block + the newest 2h block (%d readable)" % len(ra))
    for s in src[:3]:
        check(not os.path.exists(os.path.join(bd, os.path.basename(s))),
              "source %s deleted after the delete delay" % os.path.basename(s))
    # Group E: a 5m copy of the 48h raw block, same range, verified alone.
    e5 = [b for b in readable(bd) if meta(b).get("thanos", {}).get("labels") == {"cluster": "e"}
          and meta(b)["thanos"]["downsample"]["resolution"] == 300000]
    if check(len(e_blocks) == 1 and len(e5) == 1,
             "the 48h raw block got one 5m copy (%d)" % len(e5)):
        em, rm = meta(e5[0]), meta(e_blocks[0])
        check((em["minTime"], em["maxTime"]) == (rm["minTime"], rm["maxTime"])
              and em["stats"]["numSeries"] == 5
              and em["stats"]["numSamples"] == 5 * 48 * 12,
              "5m block: same range, 5 series, 576 windows each (%s)" % em["stats"])
        alone = os.path.join(work, "verify-e", os.path.basename(e5[0]))
        shutil.copytree(e5[0], alone)
        r = orrery("tools", "block", "verify", alone)
        check(r.returncode == 0, "5m block verifies (%s)" % r.stdout[-200:])
    check(re.search(r'thanos_compact_downsample_total\{group="0@\{cluster=\\"e\\"\}"\} 1', metrics)
          is not None, "thanos_compact_downsample_total counts it")
    # --downsample.concurrency=2: two 48h raw blocks (groups e and f) in a
    # bucket of their own are downsampled at the same time: both start
    # before either ends (uploads slowed to make each take a second or so).
    dsb = os.path.join(work, "bucket-ds")
    os.makedirs(dsb)
    f_blocks = make_blocks(work, "f", 3, t0e * 1000, (t0e + 48 * 3600) * 1000, 60000,
                           extra=("--max-block-duration=54h",))
    for b, lab in ((e_blocks[0], "e"), (f_blocks[0], "f")):
        dst = os.path.join(dsb, os.path.basename(b))
        shutil.copytree(b, dst)
        set_labels(dst, {"cluster": lab})
    r = orrery("compact", "--objstore.config=" + bucket_cfg(dsb),
               "--data-dir=" + os.path.join(work, "data-ds"), "--consistency-delay=0s",
               "--downsample.concurrency=2",
               env=dict(os.environ, ORRERY_COMPACT_TEST_PUT_DELAY="300ms"))
    lines = r.stderr.splitlines() + r.stdout.splitlines()
    starts = [i for i, l in enumerate(lines) if 'msg="downsampling block"' in l]
    ends = [i for i, l in enumerate(lines) if 'msg="downsampled block"' in l]
    check(r.returncode == 0 and len(starts) == 2 and len(ends) == 2,
          "--downsample.concurrency=2 downsamples both blocks (%s)" % r.stderr[-300:])
    check(len(starts) == 2 and ends and max(starts) < min(ends),
          "the two downsamplings overlap in time")
    d5 = [b for b in readable(dsb) if meta(b)["thanos"]["downsample"]["resolution"] == 300000]
    check(sorted(meta(b)["thanos"]["labels"]["cluster"] for b in d5) == ["e", "f"],
          "each raw block got its 5m copy")
    r = orrery("compact", "--objstore.config=" + bucket_cfg(dsb), "--downsample.concurrency=0")
    check(r.returncode == 2 and "--downsample.concurrency" in r.stderr,
          "--downsample.concurrency=0 is refused (%d)" % r.returncode)
    fresh_block(work, e_blocks[0])
    # With the replica label, vertical compaction: group C's HA pair (and
    # group B's overlap) become one block each, without the replica label.
    r = orrery("compact", "--objstore.config=" + bucket_cfg(bd),
               "--data-dir=" + os.path.join(work, "data"), "--consistency-delay=0s",
               "--compact.ranges=2h,6h", "--deduplication.replica-label=replica")
    check(r.returncode == 0, "one-shot run with --deduplication.replica-label exits 0 (%s)"
          % r.stderr[-300:])
    rc_ = [b for b in readable(bd) if meta(b).get("thanos", {}).get("labels", {}).get("cluster") == "c"]
    check(len(rc_) == 1 and meta(rc_[0])["thanos"]["labels"] == {"cluster": "c"},
          "HA replicas compacted into one block labelled {cluster=c} (%d readable)" % len(rc_))
    if rc_:
        want = dump_block(work, ha0[0], "ha0")
        check(dump_block(work, rc_[0], "ha") == want, "HA block dump equals one replica's samples")
    # Group D: the no-compact block stays as it is.
    check(os.path.exists(os.path.join(bd, os.path.basename(d_blocks[0]), "meta.json")) and
          not os.path.exists(os.path.join(bd, os.path.basename(d_blocks[0]), "deletion-mark.json")),
          "the no-compact-marked block was left alone")
    # --deduplication.func=penalty on the same HA pair in a bucket of its own:
    # one block; inside r1's gap the samples come from r0.
    pb = os.path.join(work, "bucket-penalty")
    os.makedirs(pb)
    for b, rep in ((ha0[0], "r0"), (ha1[0], "r1")):
        dst = os.path.join(pb, os.path.basename(b))
        shutil.copytree(b, dst)
        set_labels(dst, {"cluster": "c", "replica": rep})
    r = orrery("compact", "--objstore.config=" + bucket_cfg(pb),
               "--data-dir=" + os.path.join(work, "data-p"), "--consistency-delay=0s",
               "--compact.ranges=2h,6h", "--deduplication.replica-label=replica",
               "--deduplication.func=penalty")
    rp = readable(pb)
    check(r.returncode == 0 and len(rp) == 1 and meta(rp[0])["thanos"]["labels"] == {"cluster": "c"},
          "penalty: HA pair compacted into one block (%s)" % r.stderr[-200:])
    if rp:
        lines = dump_block(work, rp[0], "penalty").splitlines()
        n1 = dump_block(work, ha1[0], "ha1").count("\n")
        gap = [l for l in lines if (T0 + 1800) * 1000 <= int(l.split()[-1]) < (T0 + 2400) * 1000]
        ts = {}
        ordered = True
        for l in lines:
            k = l.rsplit(" ", 2)[0]
            t = int(l.split()[-1])
            if ts.get(k, -1) >= t:
                ordered = False
            ts[k] = t
        check(len(lines) >= n1 and len(gap) > 0 and ordered,
              "penalty: %d samples (r1 alone has %d), %d inside r1's gap, strictly ordered"
              % (len(lines), n1, len(gap)))

    # Retention and failed uploads, in a bucket of their own: a block without
    # meta.json whose ULID is 3 days old is removed; with raw retention 1d
    # (downsampling off) every block, all from 2023, is marked for deletion;
    # with downsampling on, that retention is refused at start-up.
    rb = os.path.join(work, "bucket-retention")
    os.makedirs(rb)
    for b in src[:2]:
        shutil.copytree(b, os.path.join(rb, os.path.basename(b)))
    partial = ulid_at(int(time.time() * 1000) - 3 * 86400 * 1000)
    fresh_partial = ulid_at(int(time.time() * 1000) - 3600 * 1000)
    for pid in (partial, fresh_partial):
        os.makedirs(os.path.join(rb, pid, "chunks"))
        with open(os.path.join(rb, pid, "chunks", "000001"), "wb") as f:
            f.write(b"\x85\xbd\x40\xdd\x01\x00\x00\x00")
    r = orrery("compact", "--objstore.config=" + bucket_cfg(rb),
               "--data-dir=" + os.path.join(work, "data-r"), "--retention.resolution-raw=1d")
    check(r.returncode != 0 and "40h" in r.stderr,
          "raw retention under 40h refused while downsampling is on (%s)" % r.stderr[-200:])
    r = orrery("compact", "--objstore.config=" + bucket_cfg(rb),
               "--data-dir=" + os.path.join(work, "data-r"), "--retention.resolution-raw=1d",
               "--downsampling.disable", "--consistency-delay=0s")
    check(r.returncode == 0, "retention run exits 0 (%s)" % r.stderr[-200:])
    check(all(os.path.exists(os.path.join(rb, os.path.basename(b), "deletion-mark.json"))
              for b in src[:2]), "blocks past raw retention are marked for deletion")
    check(not os.path.exists(os.path.join(rb, partial)),
          "a partial upload older than 48h is removed")
    check(os.path.exists(os.path.join(rb, fresh_partial)),
          "a partial upload an hour old is left alone")

    r = orrery("tools", "bucket", "inspect", "--objstore.config=" + bucket_cfg(bd))
    check(r.returncode == 0 and "ULID" in r.stdout and all(
        os.path.basename(b) in r.stdout for b in readable(bd)),
        "tools bucket inspect lists every block")
    print(r.stdout)


# ---------------------------------------------------------------- crash

def fresh_block(work, raw48):
    """|raw48| (a 48h raw block promtool made during this test: its ULID,
    the upload time as the compactor sees it, is minutes old) in a bucket of
    its own."""
    fb = os.path.join(work, "bucket-fresh")
    os.makedirs(fb)
    dst = os.path.join(fb, os.path.basename(raw48))
    shutil.copytree(raw48, dst)
    set_labels(dst, {"cluster": "fresh"})

    def res5m():
        return [b for b in readable(fb) if meta(b)["thanos"]["downsample"]["resolution"] == 300000]

    def cmd(*extra, data="data-fresh"):
        return ["compact", "--objstore.config=" + bucket_cfg(fb),
                "--data-dir=" + os.path.join(work, data)] + list(extra)

    # The default --consistency-delay (30m): too fresh to compact, and to
    # downsample too.
    r = orrery(*cmd())
    out = r.stdout + r.stderr
    check(r.returncode == 0 and not res5m() and 'msg="downsampling block"' not in out,
          "a 48h raw block younger than --consistency-delay is not downsampled (rc %d, %d 5m "
          "blocks): %s" % (r.returncode, len(res5m()), out[-300:]))

    # --wait on an address in use: exit 1 at once, an error line naming the
    # address and why, no iteration (one would make <data-dir>/compact first,
    # and with the delay at 0 downsample the block).
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        addr = "127.0.0.1:%d" % busy.getsockname()[1]
        t = time.monotonic()
        try:
            r = orrery(*cmd("--wait", "--wait-interval=1s", "--consistency-delay=0s",
                            "--http-address=" + addr, data="data-busy"), timeout=30)
        except subprocess.TimeoutExpired:
            r = None
        took = time.monotonic() - t
    if check(r is not None, "compact --wait on a busy address exits (%.1fs)" % took):
        out = r.stdout + r.stderr
        err = [l for l in out.splitlines() if "level=error" in l and "address=" + addr in l
               and "address already in use" in l.lower()]
        check(r.returncode == 1 and took < 10 and err,
              "compact --wait on a busy address: exit %d after %.1fs, error line %s"
              % (r.returncode, took, err or out[-300:]))
        check(not os.path.exists(os.path.join(work, "data-busy")) and not res5m()
              and "iteration" not in out and "downsampling" not in out,
              "compact --wait that cannot listen leaves the bucket alone (%s)" % out[-300:])

    r = orrery(*cmd("--consistency-delay=0s"))
    check(r.returncode == 0 and len(res5m()) == 1,
          "with --consistency-delay=0s the same block is downsampled (rc %d, %d 5m blocks)"
          % (r.returncode, len(res5m())))


def unverified(work, blocks):
    """The tail of `orrery tools block verify`'s output for each of |blocks|
    that fails it (each verified alone)."""
    bad = []
    for b in blocks:
        alone = os.path.join(work, "verify", os.path.basename(b))
        shutil.rmtree(os.path.dirname(alone), ignore_errors=True)
        shutil.copytree(b, alone)
        r = orrery("tools", "block", "verify", alone)
        if r.returncode != 0:
            bad.append(r.stdout[-300:])
    return bad


def part_crash(work):
    bd = os.path.join(work, "bucket")
    os.makedirs(bd)
    src = make_blocks(work, "c", 120, T0 * 1000, (T0 + 4 * H2) * 1000, 15000)
    for b in src:
        dst = os.path.join(bd, os.path.basename(b))
        shutil.copytree(b, dst)
        set_labels(dst, {"cluster": "crash"})
    want = dump_blocks(work, src, "sources")
    rng = random.Random(int(os.environ.get("SEED", "12")))
    cmd = [ARGS.orrery, "compact", "--objstore.config=" + bucket_cfg(bd),
           "--data-dir=" + os.path.join(work, "data"), "--consistency-delay=0s",
           "--compact.ranges=2h,6h"]
    # How long one run takes here, to spread the kills over it.
    probe = os.path.join(work, "probe")
    shutil.copytree(bd, probe)
    t = time.time()
    subprocess.run([c.replace(bd, probe) for c in cmd], capture_output=True)
    dur = time.time() - t
    log("one compaction run takes %.2fs" % dur)
    for i in range(10):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, dur))
        p.send_signal(signal.SIGKILL)
        p.wait()
        # whatever is readable now is complete and holds every sample once
        rd = readable(bd, dedup=True)
        bad = unverified(work, rd)
        check(not bad, "kill %d: every readable block verifies %s" % (i, bad[:1]))
        check(dump_blocks(work, rd, "kill") == want,
              "kill %d: readable blocks hold every sample exactly once" % i)
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, "a run after the kills completes (%s)" % r.stderr[-300:])
    rd = readable(bd)
    got = dump_blocks(work, rd, "after")
    check(got == want, "every sample exactly once among readable blocks (%d lines)" %
          want.count("\n"))
    seen = {}
    dup = False
    for b in rd:
        for s in meta(b)["compaction"]["sources"]:
            if s in seen:
                dup = True
            seen[s] = b
    check(not dup, "no two readable blocks share a source (%d readable)" % len(rd))
    check(len(rd) == 2, "one compacted block and the newest source remain readable")

    # The same with a downsampling: one raw block spanning 48h.
    db = os.path.join(work, "bucket-ds")
    os.makedirs(db)
    t0e = (T0 // 194400) * 194400
    raw = make_blocks(work, "ds", 60, t0e * 1000, (t0e + 48 * 3600) * 1000, 30000,
                      extra=("--max-block-duration=54h",))
    for b in raw:
        dst = os.path.join(db, os.path.basename(b))
        shutil.copytree(b, dst)
        set_labels(dst, {"cluster": "ds"})
    dcmd = [ARGS.orrery, "compact", "--objstore.config=" + bucket_cfg(db),
            "--data-dir=" + os.path.join(work, "data-ds"), "--consistency-delay=0s"]
    probe = os.path.join(work, "probe-ds")
    shutil.copytree(db, probe)
    t = time.time()
    subprocess.run([c.replace(db, probe) for c in dcmd], capture_output=True)
    dur = time.time() - t
    log("one downsampling run takes %.2fs" % dur)
    for i in range(5):
        p = subprocess.Popen(dcmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, dur))
        p.send_signal(signal.SIGKILL)
        p.wait()
    r = subprocess.run(dcmd, capture_output=True, text=True)
    check(r.returncode == 0, "a downsampling run after the kills completes")
    five = [b for b in readable(db, dedup=True)
            if meta(b)["thanos"]["downsample"]["resolution"] == 300000]
    check(len(five) == 1 and meta(five[0])["stats"]["numSamples"] == 60 * 576,
          "exactly one readable 5m block, whole (%d)" % len(five))
    if five:
        alone = os.path.join(work, "verify-ds", os.path.basename(five[0]))
        shutil.copytree(five[0], alone)
        check(orrery("tools", "block", "verify", alone).returncode == 0, "the 5m block verifies")


# ---------------------------------------------------------------- crash_s3

class S3rver:
    """s3rver on |port| over |data| (the same port and data across a restart)."""

    def __init__(self, work, data, bucket, port):
        self.data, self.bucket, self.port = data, bucket, port
        os.makedirs(data, exist_ok=True)
        self.logf = open(os.path.join(work, "s3rver.log"), "a")
        self.p = subprocess.Popen([
            ARGS.node, "--openssl-legacy-provider",
            os.path.join(ARGS.node_dir, "node_modules", ".bin", "s3rver"),
            "-d", data, "-a", "127.0.0.1", "-p", str(port), "--silent",
            "--configure-bucket", bucket], stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            if self.p.poll() is not None:
                raise RuntimeError("s3rver exited %s" % self.p.returncode)
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("s3rver did not start")
                time.sleep(0.05)

    def kill9(self):
        self.p.kill()
        self.p.wait()
        self.logf.close()

    def objects(self, prefix=""):
        """Keys under |prefix| (s3rver keeps <bucket>/<key>._S3rver_object)."""
        root = os.path.join(self.data, self.bucket)
        out = []
        for d, _, files in os.walk(root):
            for f in files:
                if f.endswith("._S3rver_object"):
                    k = os.path.relpath(os.path.join(d, f[:-len("._S3rver_object")]), root)
                    if k.startswith(prefix):
                        out.append(k)
        return sorted(out)

    def copy_to(self, dst):
        """The bucket as a directory tree (what a FILESYSTEM bucket would hold)."""
        shutil.rmtree(dst, ignore_errors=True)
        root = os.path.join(self.data, self.bucket)
        for k in self.objects():
            os.makedirs(os.path.dirname(os.path.join(dst, k)), exist_ok=True)
            shutil.copyfile(os.path.join(root, k) + "._S3rver_object", os.path.join(dst, k))


def s3_cfg(port, bucket):
    # max_retries 2: a request fails within a second while s3rver is down, so
    # what brings the block home is the compactor's next iteration.
    return ("type: S3\nconfig:\n  bucket: %s\n  endpoint: 127.0.0.1:%d\n  insecure: true\n"
            "  access_key: S3RVER\n  secret_key: S3RVER\n  max_retries: 2\n" % (bucket, port))


def part_crash_s3(work):
    if not os.path.exists(os.path.join(ARGS.node_dir, "node_modules", ".bin", "s3rver")):
        raise RuntimeError("s3rver is not installed under %s/node_modules" % ARGS.node_dir)
    t_start = time.monotonic()
    src = make_blocks(work, "s", 120, T0 * 1000, (T0 + 4 * H2) * 1000, 15000)
    for b in src:
        set_labels(b, {"cluster": "s3"})
    want = dump_blocks(work, src, "sources")
    port = portpick.free_port()
    s3data = os.path.join(work, "s3")
    s3 = S3rver(work, s3data, "compact", port)
    cfg = s3_cfg(port, "compact")
    comp = None
    clog = os.path.join(work, "compact.log")
    try:
        for b in src:
            for f in sorted(glob.glob(os.path.join(b, "chunks", "*"))) + [
                    os.path.join(b, "index"), os.path.join(b, "meta.json")]:
                key = os.path.relpath(f, os.path.dirname(b))
                r = orrery("tools", "bucket", "put", "--objstore.config=" + cfg, key, f)
                if r.returncode != 0:
                    raise RuntimeError("put %s: %s" % (key, r.stderr[-300:]))
        ids = {os.path.basename(b) for b in src}
        env = dict(os.environ, ORRERY_COMPACT_TEST_PUT_DELAY="2s")
        with open(clog, "w") as lf:
            comp = subprocess.Popen(
                [ARGS.orrery, "compact", "--wait", "--wait-interval=2s", "--log.level=debug",
                 "--http-address=127.0.0.1:%d" % portpick.free_port(),
                 "--objstore.config=" + cfg, "--data-dir=" + os.path.join(work, "data"),
                 "--consistency-delay=0s", "--compact.ranges=2h,6h"],
                stdout=lf, stderr=subprocess.STDOUT, env=env)

        def new_dirs():
            return sorted({k.split("/")[0] for k in s3.objects()} - ids)

        deadline = time.time() + 60
        first = None
        while time.time() < deadline and comp.poll() is None:
            got = [d for d in new_dirs() if s3.objects(d + "/chunks/")]
            if got:
                first = got[0]
                break
            time.sleep(0.05)
        if first is None:
            raise RuntimeError("the compacted block's upload never started")
        s3.kill9()
        log("s3rver killed with %s's objects %s in" % (first, s3.objects(first + "/")))
        check(not s3.objects(first + "/meta.json") and not s3.objects(first + "/index"),
              "s3rver went away after the chunks and before index and meta.json")
        # The outage itself (not a synchronisation wait): the compactor's
        # iterations fail against the dead port meanwhile. --s3-outage
        # (ORRERY_COMPACT_S3_OUTAGE) sets it; CI keeps the short default.
        time.sleep(ARGS.s3_outage)
        check(comp.poll() is None, "the compactor kept running through the outage")
        with open(clog) as f:
            text = f.read()
        check("upload of compacted block failed" in text,
              "the interrupted upload was logged as failed")
        fails = sum(1 for ln in text.splitlines() if 'msg="compaction iteration done"' in ln
                    and (" result=ok" not in ln or not re.search(r" errors=0\b", ln)))
        check(fails >= 2, "the compactor retried during the outage (%d failed iterations)" % fails)
        s3 = S3rver(work, s3data, "compact", port)
        t_back = time.monotonic()
        log("s3rver back on port %d with the same data dir" % port)

        def done():
            if comp.poll() is not None:
                raise RuntimeError("the compactor exited %s" % comp.returncode)
            return (all(s3.objects(i + "/deletion-mark.json") for i in sorted(ids)[:3]) and
                    any(s3.objects(d + "/meta.json") for d in new_dirs()))
        deadline = time.time() + 60
        while not done():
            if time.time() > deadline:
                raise RuntimeError("no compacted block 60 s after s3rver returned")
            time.sleep(0.2)
        log("compacted block and deletion marks in the bucket %.1fs after s3rver returned" %
            (time.monotonic() - t_back))
    finally:
        if comp and comp.poll() is None:
            comp.send_signal(signal.SIGTERM)
            try:
                comp.wait(30)
            except subprocess.TimeoutExpired:
                comp.kill()
                comp.wait()
        if s3.p.poll() is None:
            s3.kill9()
    check(comp.returncode == 0, "the compactor exits 0 on SIGTERM (%s)" % comp.returncode)
    bd = os.path.join(work, "bucket-copy")
    s3.copy_to(bd)
    rd = readable(bd, dedup=True)
    bad = unverified(work, rd)
    check(not bad, "every readable block verifies %s" % bad[:1])
    check(dump_blocks(work, rd, "after") == want,
          "every sample exactly once among readable blocks (%d lines)" % want.count("\n"))
    news = [d for d in sorted(os.listdir(bd)) if d not in ids]
    whole = [d for d in news if os.path.exists(os.path.join(bd, d, "meta.json"))]
    check(len(whole) == 1 and len(rd) == 2 and os.path.join(bd, whole[0]) in rd,
          "exactly one compacted block, readable beside the newest source (%s of %s)" %
          (whole, news))
    check(first not in whole, "the interrupted attempt %s has no meta.json" % first)
    with open(clog) as f:
        text = f.read()
    for d in whole:
        n = len(re.findall(r'msg="uploaded object" key=%s/meta.json ' % d, text))
        check(n == 1, "%s/meta.json put exactly once (%d)" % (d, n))
    seen = {}
    dup = False
    for b in readable(bd):
        for s in meta(b)["compaction"]["sources"]:
            dup = dup or s in seen
            seen[s] = b
    check(not dup, "no two readable blocks share a source")
    log("crash_s3 (s3rver down %gs): %.1fs" % (ARGS.s3_outage, time.monotonic() - t_start))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["prometheus", "bucket", "crash", "crash_s3"])
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--node", default="node")
    ap.add_argument("--node-dir", default="")
    ap.add_argument("--s3-outage", type=float,
                    default=float(os.environ.get("ORRERY_COMPACT_S3_OUTAGE", "15")),
                    help="crash_s3: seconds s3rver stays down (default 15, or "
                         "$ORRERY_COMPACT_S3_OUTAGE; the issue's figure is 60)")
    ARGS = ap.parse_args()
    work = tempfile.mkdtemp(prefix="orr_compact_")
    try:
        {"prometheus": part_prometheus, "bucket": part_bucket, "crash": part_crash,
         "crash_s3": part_crash_s3}[ARGS.part](work)
    finally:
        if FAILS:
            log("kept %s for inspection" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if FAILS:
        print("%d check(s) failed" % len(FAILS), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
