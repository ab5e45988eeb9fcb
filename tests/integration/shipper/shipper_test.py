#!/usr/bin/env python3
"""shipper_test.py PART: the sidecar's shipper against real processes.

  live_fs    a real Prometheus 2.42 cutting 1m blocks (hidden flags) with
             external labels, and `orrery sidecar` with a FILESYSTEM bucket:
             the first block Prometheus cuts lands in the bucket with every
             file byte-identical, meta.json with the thanos section, and
             `orrery tools block verify` passes on the bucket copy; a restarted
             sidecar uploads nothing again.
  s3_outage  s3rver as the bucket: blocks made beforehand with promtool are
             uploaded byte-identical (verified from s3rver's files); then a
             multi-segment block starts uploading slowly and s3rver is stopped
             by PID for 60 s in the middle of it; after s3rver returns on the
             same port and data dir the upload completes, the state file
             records it and meta.json was put exactly once.
  crash      kill -9 of the sidecar in the middle of an upload, and a
             SIGKILL right after meta.json was put (before the state file
             write): after restarts the bucket holds every block, complete,
             and no meta.json and no finished block was uploaded twice.
  rss        the sidecar's peak RSS (VmHWM) while uploading a ~1 GB block
             stays far below the block size, to a FILESYSTEM bucket and to
             s3rver (multipart).

Slow uploads come from the test-only ORRERY_SHIPPER_TEST_PUT_DELAY (a pause
before each object), ORRERY_SHIPPER_TEST_INTERVAL shortens the sync interval
and ORRERY_SHIPPER_TEST_KILL_AFTER_META=1 makes the sidecar SIGKILL itself
right after a meta.json was put. Processes listen on 127.0.0.1 at free ports,
readiness is polled with deadlines, processes are stopped by PID.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ARGS = None
FAILS = []
EXT_LABELS = {"cluster": "shipper-test", "replica": "r0"}


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL: " + msg, file=sys.stderr)
    else:
        print("ok: " + msg)
    return cond


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from portpick import free_port  # noqa: E402


def poll(what, fn, deadline_s, interval=0.2):
    """Polls fn() until it returns a true value or the deadline passes."""
    end = time.monotonic() + deadline_s
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise RuntimeError("timed out after %ds waiting for %s" % (deadline_s, what))
        time.sleep(interval)  # polling interval of a condition check, not synchronisation


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


class Proc:
    def __init__(self, name, cmd, workdir, env=None):
        self.name = name
        self.logpath = os.path.join(workdir, "%s.log" % name)
        self.logf = open(self.logpath, "w")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, env=e)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        self.logf.flush()
        return read(self.logpath, "r")

    def kill9(self):
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout=30):
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


class Prometheus(Proc):
    def __init__(self, workdir, data, block_duration="2h", scrape_interval="1s"):
        self.port = free_port()
        cfg = os.path.join(workdir, "prometheus-%d.yml" % self.port)
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: %s\n  external_labels:\n" % scrape_interval)
            for k, v in EXT_LABELS.items():
                f.write("    %s: %s\n" % (k, v))
            f.write("scrape_configs:\n  - job_name: prometheus\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % self.port)
        super().__init__("prometheus-%d" % self.port, [
            ARGS.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
            "--web.listen-address=127.0.0.1:%d" % self.port,
            "--storage.tsdb.retention.time=100y",
            "--storage.tsdb.min-block-duration=" + block_duration,
            "--storage.tsdb.max-block-duration=" + block_duration], workdir)
        self.url = "http://127.0.0.1:%d" % self.port

    def wait_ready(self):
        def ready():
            if not self.alive():
                raise RuntimeError("prometheus exited: %s" % self.log()[-2000:])
            try:
                return http_get(self.url + "/-/ready", 2)[0] == 200
            except OSError:
                return False
        poll("prometheus ready", ready, 60)


class Sidecar(Proc):
    n = 0

    def __init__(self, workdir, prom, tsdb, objstore_cfg, env=None, extra=()):
        Sidecar.n += 1
        self.http = free_port()
        self.grpc = free_port()
        super().__init__("sidecar-%d" % Sidecar.n, [
            ARGS.orrery, "sidecar", "--log.level=debug",
            "--http-address=127.0.0.1:%d" % self.http,
            "--grpc-address=127.0.0.1:%d" % self.grpc,
            "--prometheus.url=" + prom.url, "--tsdb.path=" + tsdb,
            "--objstore.config-file=" + objstore_cfg] + list(extra), workdir, env)
        self.url = "http://127.0.0.1:%d" % self.http

    def wait_ready(self):
        def ready():
            if not self.alive():
                raise RuntimeError("sidecar exited %s: %s" % (self.proc.returncode, self.log()[-3000:]))
            try:
                return http_get(self.url + "/-/ready", 2)[0] == 200
            except OSError:
                return False
        poll("sidecar ready", ready, 60)

    def metric(self, name):
        _, body = http_get(self.url + "/metrics")
        m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
        return float(m.group(1)) if m else None

    def vm_hwm_kb(self):
        for line in read("/proc/%d/status" % self.pid, "r").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return None


class S3rver(Proc):
    n = 0

    def __init__(self, workdir, data, bucket, port=None):
        S3rver.n += 1
        self.port = port or free_port()
        self.data = data
        self.bucket = bucket
        os.makedirs(data, exist_ok=True)
        super().__init__("s3rver-%d" % S3rver.n, [
            ARGS.node, "--openssl-legacy-provider",
            os.path.join(ARGS.node_dir, "node_modules", ".bin", "s3rver"),
            "-d", data, "-a", "127.0.0.1", "-p", str(self.port), "--silent",
            "--configure-bucket", bucket], workdir)

    def wait_ready(self):
        def ready():
            if not self.alive():
                raise RuntimeError("s3rver exited: %s" % self.log()[-2000:])
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % self.port, timeout=2) as r:
                    return r.status in (200, 403)
            except urllib.error.HTTPError as e:
                return e.code in (403, 400)
            except OSError:
                return False
        poll("s3rver ready", ready, 60)

    def config(self, workdir, max_retries=None):
        path = os.path.join(workdir, "s3-%d.yml" % self.port)
        with open(path, "w") as f:
            f.write("type: S3\nconfig:\n  bucket: %s\n  endpoint: 127.0.0.1:%d\n"
                    "  access_key: S3RVER\n  secret_key: S3RVER\n  insecure: true\n"
                    % (self.bucket, self.port))
            if max_retries is not None:
                f.write("  max_retries: %d\n" % max_retries)
        return path

    def obj(self, key):
        return os.path.join(self.data, self.bucket, key) + "._S3rver_object"


def fs_config(workdir, directory):
    path = os.path.join(workdir, "fs.yml")
    with open(path, "w") as f:
        f.write("type: FILESYSTEM\nconfig:\n  directory: %s\n" % directory)
    return path


def fs_obj(bucket_dir):
    return lambda key: os.path.join(bucket_dir, key)


def state_ids(tsdb):
    try:
        st = json.loads(read(os.path.join(tsdb, "thanos.shipper.json"), "r"))
    except (OSError, ValueError):
        return []
    return st.get("uploaded") or []


def block_files(block_dir):
    files = ["chunks/" + n for n in sorted(os.listdir(os.path.join(block_dir, "chunks")))]
    return files + ["index"]


def check_block(tsdb, ulid, obj, label):
    """Every local file equals the bucket's; meta.json as Thanos writes it.
    |obj(key)| is the path of the bucket's copy of |key|."""
    local = os.path.join(tsdb, ulid)
    same = True
    for rel in block_files(local):
        b = obj(ulid + "/" + rel)
        if not os.path.exists(b) or read(os.path.join(local, rel)) != read(b):
            same = False
            print("differs: %s/%s" % (ulid, rel), file=sys.stderr)
    check(same, "%s: block %s chunks and index byte-identical in the bucket" % (label, ulid))
    meta = json.loads(read(obj(ulid + "/meta.json"), "r"))
    lmeta = json.loads(read(os.path.join(local, "meta.json"), "r"))
    th = meta.get("thanos", {})
    check(th.get("labels") == EXT_LABELS, "%s: thanos.labels are the external labels (%s)" %
          (label, th.get("labels")))
    check(th.get("source") == "sidecar" and th.get("downsample") == {"resolution": 0},
          "%s: thanos.source sidecar, downsample.resolution 0" % label)
    want_files = [{"rel_path": rel, "size_bytes": os.path.getsize(os.path.join(local, rel))}
                  for rel in block_files(local)] + [{"rel_path": "meta.json"}]
    if not check(th.get("files") == want_files, "%s: thanos.files list the sizes" % label):
        print("got %s\nwant %s" % (th.get("files"), want_files), file=sys.stderr)
    check(th.get("segment_files") == sorted(os.listdir(os.path.join(local, "chunks"))),
          "%s: thanos.segment_files" % label)
    for k in ("ulid", "minTime", "maxTime", "stats", "compaction", "version"):
        check(meta.get(k) == lmeta.get(k), "%s: meta.json %s as Prometheus wrote it" % (label, k))


def assemble(tsdb, ulid, obj, dest):
    """Copies the bucket's objects of a block into a block directory."""
    os.makedirs(os.path.join(dest, ulid, "chunks"))
    for rel in block_files(os.path.join(tsdb, ulid)) + ["meta.json"]:
        shutil.copyfile(obj(ulid + "/" + rel), os.path.join(dest, ulid, rel))
    return os.path.join(dest, ulid)


def verify(block_dir, label):
    r = subprocess.run([ARGS.orrery, "tools", "block", "verify", block_dir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, "%s: orrery tools block verify on the bucket copy: %s" %
          (label, r.stdout.strip()[-300:]))


def gen_block(tsdb, t0_ms, nseries, nchunks, segment=0):
    cmd = [ARGS.gen, tsdb, str(t0_ms), str(nseries), str(nchunks)]
    if segment:
        cmd.append(str(segment))
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def promtool_blocks(workdir, tsdb, hours_ago=48, nblocks=2):
    """Blocks made by promtool from an OpenMetrics file, nblocks x 2h."""
    om = os.path.join(workdir, "data.om")
    start = (int(time.time()) // 7200 - hours_ago // 2) * 7200
    with open(om, "w") as f:
        f.write("# TYPE shipper_om gauge\n")
        for s in range(20):
            for t in range(start, start + nblocks * 7200, 60):
                f.write('shipper_om{series="%d"} %d %d\n' % (s, (t * 7 + s) % 1000, t))
        f.write("# EOF\n")
    before = set(os.listdir(tsdb))
    subprocess.run([ARGS.promtool, "tsdb", "create-blocks-from", "openmetrics", om, tsdb],
                   check=True, stdout=subprocess.DEVNULL)
    return sorted(set(os.listdir(tsdb)) - before)


def count(text, pattern):
    return len(re.findall(pattern, text))


# ---------------------------------------------------------------- parts

def part_live_fs(wd):
    tsdb = os.path.join(wd, "tsdb")
    bucket = os.path.join(wd, "bucket")
    os.makedirs(bucket)
    prom = Prometheus(wd, tsdb, block_duration="1m")
    try:
        prom.wait_ready()
        side = Sidecar(wd, prom, tsdb, fs_config(wd, bucket))
        side.wait_ready()
        log("waiting for Prometheus to cut its first 1m block and the sidecar to ship it")
        ulid = poll("a block in the bucket", lambda: next(
            (n for n in sorted(os.listdir(bucket))
             if os.path.exists(os.path.join(bucket, n, "meta.json"))), None), 300, 1.0)
        log("block %s shipped" % ulid)
        poll("state file records %s" % ulid, lambda: ulid in state_ids(tsdb), 30)
        meta = json.loads(read(os.path.join(tsdb, ulid, "meta.json"), "r"))
        check(meta["compaction"]["level"] == 1, "live: a level-1 block cut by Prometheus")
        check_block(tsdb, ulid, fs_obj(bucket), "live")
        verify(os.path.join(bucket, ulid), "live")
        check(side.metric("thanos_shipper_uploads_total") >= 1, "live: thanos_shipper_uploads_total")
        check(side.metric("orrery_shipper_uploaded_bytes_total") > 0,
              "live: orrery_shipper_uploaded_bytes_total")
        check(side.metric("thanos_shipper_dir_syncs_total") >= 1, "live: thanos_shipper_dir_syncs_total")
        check(re.search(r'msg="upload new block" id=%s' % ulid, side.log()) is not None,
              "live: log 'upload new block' with the ULID")
        st1 = os.stat(os.path.join(bucket, ulid, "meta.json"))
        check(side.stop() == 0, "live: sidecar exits 0 on SIGTERM")
        # A restart ships nothing already shipped.
        shipped = [n for n in os.listdir(bucket) if os.path.exists(os.path.join(bucket, n, "meta.json"))]
        side2 = Sidecar(wd, prom, tsdb, fs_config(wd, bucket))
        side2.wait_ready()
        poll("a sync of the restarted sidecar",
             lambda: (side2.metric("thanos_shipper_dir_syncs_total") or 0) >= 1, 30)
        for n in shipped:
            check(re.search(r'"upload new block" id=%s' % n, side2.log()) is None,
                  "live: restarted sidecar does not upload %s again" % n)
        st2 = os.stat(os.path.join(bucket, ulid, "meta.json"))
        check((st1.st_ino, st1.st_mtime_ns) == (st2.st_ino, st2.st_mtime_ns),
              "live: meta.json untouched by the restart")
        side2.stop()
    finally:
        prom.stop()


def part_s3_outage(wd):
    tsdb = os.path.join(wd, "tsdb")
    os.makedirs(tsdb)
    s3data = os.path.join(wd, "s3")
    s3 = S3rver(wd, s3data, "shipper")
    pre = promtool_blocks(wd, tsdb)
    check(len(pre) == 2, "s3: promtool made 2 blocks")
    prom = Prometheus(wd, tsdb)
    side = None
    try:
        s3.wait_ready()
        prom.wait_ready()
        # max_retries 3: the minute of outage outlasts objstore's own retries
        # of one request (a few seconds), so what brings the block home is the
        # shipper's retry of the block with backoff.
        side = Sidecar(wd, prom, tsdb, s3.config(wd, max_retries=3), env={
            "ORRERY_SHIPPER_TEST_PUT_DELAY": "500ms", "ORRERY_SHIPPER_TEST_INTERVAL": "2s"})
        side.wait_ready()
        for u in pre:
            poll("%s/meta.json in s3rver" % u, lambda: os.path.exists(s3.obj(u + "/meta.json")), 60)
            poll("state records %s" % u, lambda: u in state_ids(tsdb), 30)
            check_block(tsdb, u, s3.obj, "s3")
            verify(assemble(tsdb, u, s3.obj, os.path.join(wd, "copies")), "s3")

        # (d) an S3 outage of a minute in the middle of an upload.
        big = gen_block(tsdb, int(time.time() * 1000) - 30 * 3600 * 1000, 100, 40, 131072)
        nseg = len(os.listdir(os.path.join(tsdb, big, "chunks")))
        log("t=0: block %s with %d segments written; sidecar uploads one object per 0.5 s" % (big, nseg))
        t0 = time.monotonic()
        poll("the upload of %s to be under way" % big,
             lambda: os.path.exists(s3.obj(big + "/chunks/000003")), 60, 0.05)
        port = s3.port
        s3.kill9()
        t_stop = time.monotonic()
        log("t=%.1fs: s3rver (pid %d) killed in mid-upload" % (t_stop - t0, s3.pid))
        check(not os.path.exists(s3.obj(big + "/meta.json")), "outage: no meta.json when S3 went away")
        check(not os.path.exists(s3.obj(big + "/index")), "outage: the index was not put yet")
        # The outage itself: a minute without S3 (not a synchronisation wait).
        time.sleep(60)
        check(side.alive(), "outage: the sidecar kept running")
        failures = side.metric("thanos_shipper_upload_failures_total") or 0
        check(failures >= 1, "outage: thanos_shipper_upload_failures_total = %d" % failures)
        retries = side.metric("thanos_shipper_dir_sync_failures_total") or 0
        check(retries >= 3, "outage: the shipper kept retrying (%d failed syncs in the minute)" % retries)
        check(re.search(r'msg="shipping failed" block=%s err=".*objstore' % big, side.log()) is not None,
              "outage: 'shipping failed' logged with objstore's error line")
        check(big not in state_ids(tsdb), "outage: the state file does not record the block")
        check(not os.path.exists(s3.obj(big + "/meta.json")), "outage: still no meta.json")
        s3 = S3rver(wd, s3data, "shipper", port)
        s3.wait_ready()
        t_back = time.monotonic()
        log("t=%.1fs: s3rver back on port %d with the same data dir" % (t_back - t0, port))
        poll("%s/meta.json after the outage" % big, lambda: os.path.exists(s3.obj(big + "/meta.json")),
             120, 0.2)
        log("t=%.1fs: meta.json of %s in the bucket (%.1fs after S3 returned)" %
            (time.monotonic() - t0, big, time.monotonic() - t_back))
        poll("state records %s" % big, lambda: big in state_ids(tsdb), 30)
        check_block(tsdb, big, s3.obj, "outage")
        logtext = side.log()
        for u in pre + [big]:
            n = count(logtext, r'msg="uploaded object" key=%s/meta.json ' % u)
            check(n == 1, "outage: %s/meta.json put exactly once (%d)" % (u, n))
        check(side.metric("thanos_shipper_uploads_total") == 3, "outage: 3 blocks uploaded in all")
        check(side.stop() == 0, "outage: sidecar exits 0 on SIGTERM")
    finally:
        if side and side.alive():
            side.stop()
        prom.stop()
        s3.stop()


def part_crash(wd):
    tsdb = os.path.join(wd, "tsdb")
    os.makedirs(tsdb)
    bucket = os.path.join(wd, "bucket")
    os.makedirs(bucket)
    cfg = fs_config(wd, bucket)
    now = int(time.time() * 1000)
    a = gen_block(tsdb, now - 60 * 3600 * 1000, 10, 10)
    b = gen_block(tsdb, now - 40 * 3600 * 1000, 100, 40, 131072)
    prom = Prometheus(wd, tsdb)
    sides = []
    try:
        prom.wait_ready()
        # 1. kill -9 while block b is being uploaded.
        s1 = Sidecar(wd, prom, tsdb, cfg, env={"ORRERY_SHIPPER_TEST_PUT_DELAY": "200ms"})
        sides.append(s1)
        poll("%s/chunks/000004 put" % b, lambda: os.path.exists(os.path.join(bucket, b, "chunks/000004")),
             60, 0.02)
        s1.kill9()
        log("sidecar 1 killed -9 in mid-upload of %s" % b)
        check(os.path.exists(os.path.join(bucket, a, "meta.json")), "crash: block a shipped before the kill")
        check(not os.path.exists(os.path.join(bucket, b, "meta.json")), "crash: no meta.json of b after the kill")
        check(a in state_ids(tsdb) and b not in state_ids(tsdb), "crash: the state file records a only")
        a_meta = os.stat(os.path.join(bucket, a, "meta.json"))
        s2 = Sidecar(wd, prom, tsdb, cfg)
        sides.append(s2)
        poll("%s recorded after the restart" % b, lambda: b in state_ids(tsdb), 60)
        check_block(tsdb, a, fs_obj(bucket), "crash a")
        check_block(tsdb, b, fs_obj(bucket), "crash b")
        verify(os.path.join(bucket, b), "crash b")
        check(not os.path.exists(os.path.join(tsdb, "thanos", "upload", b)), "crash: staging dir removed")
        check(s2.stop() == 0, "crash: sidecar 2 exits 0 on SIGTERM")

        # 2. SIGKILL right after meta.json of c was put, before the state file write.
        c = gen_block(tsdb, now - 20 * 3600 * 1000, 10, 10)
        s3 = Sidecar(wd, prom, tsdb, cfg, env={"ORRERY_SHIPPER_TEST_KILL_AFTER_META": "1"})
        sides.append(s3)
        poll("sidecar 3 to kill itself", lambda: not s3.alive(), 60)
        check(s3.proc.returncode == -signal.SIGKILL, "crash: sidecar 3 died by SIGKILL after meta.json")
        check(os.path.exists(os.path.join(bucket, c, "meta.json")), "crash: meta.json of c in the bucket")
        check(c not in state_ids(tsdb), "crash: the state file does not record c yet")
        c_meta = os.stat(os.path.join(bucket, c, "meta.json"))
        s4 = Sidecar(wd, prom, tsdb, cfg)
        sides.append(s4)
        poll("%s recorded by sidecar 4" % c, lambda: c in state_ids(tsdb), 60)
        l4 = s4.log()
        check(re.search(r'"block already in the bucket, recording it" block=%s' % c, l4) is not None,
              "crash: sidecar 4 records c without uploading")
        c_meta2 = os.stat(os.path.join(bucket, c, "meta.json"))
        check((c_meta.st_ino, c_meta.st_mtime_ns) == (c_meta2.st_ino, c_meta2.st_mtime_ns),
              "crash: meta.json of c not written again")
        a_meta2 = os.stat(os.path.join(bucket, a, "meta.json"))
        check((a_meta.st_ino, a_meta.st_mtime_ns) == (a_meta2.st_ino, a_meta2.st_mtime_ns),
              "crash: meta.json of a not written again")
        check_block(tsdb, c, fs_obj(bucket), "crash c")
        s4.stop()
        logs = "".join(s.log() if not s.logf.closed else read(s.logpath, "r") for s in sides)
        for u, name in ((a, "a"), (b, "b"), (c, "c")):
            n = count(logs, r'msg="uploaded object" key=%s/meta.json ' % u)
            check(n == 1, "crash: meta.json of %s put exactly once over 4 sidecar runs (%d)" % (name, n))
        n = count(logs, r'msg="upload new block" id=%s' % a)
        check(n == 1, "crash: the finished block a was uploaded once (%d)" % n)
        check(sorted(state_ids(tsdb)) == sorted([a, b, c]), "crash: the state file records a, b, c")
    finally:
        for s in sides:
            if s.alive():
                s.kill9()
        prom.stop()


def part_rss(wd):
    tsdb = os.path.join(wd, "tsdb")
    os.makedirs(tsdb)
    now = int(time.time() * 1000)
    t = time.monotonic()
    big = gen_block(tsdb, now - 80 * 3600 * 1000, 8000, 140)
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(tsdb, big))
               for f in fs)
    log("generated block %s: %.0f MB in %.1fs" % (big, size / 1e6, time.monotonic() - t))
    check(size > 900e6, "rss: the block is ~1 GB (%d bytes)" % size)
    # Both buckets: the 1 GB upload takes ~10 s each here.
    targets = [("fs", None), ("s3", S3rver(wd, os.path.join(wd, "s3"), "rss"))]
    prom = Prometheus(wd, tsdb)
    try:
        prom.wait_ready()
        for kind, s3 in targets:
            if s3:
                s3.wait_ready()
                cfg, obj = s3.config(wd), s3.obj
            else:
                bucket = os.path.join(wd, "bucket")
                os.makedirs(bucket)
                cfg, obj = fs_config(wd, bucket), fs_obj(bucket)
            st = os.path.join(tsdb, "thanos.shipper.json")
            if os.path.exists(st):
                os.unlink(st)
            t = time.monotonic()
            side = Sidecar(wd, prom, tsdb, cfg)
            poll("%s recorded" % big, lambda: big in state_ids(tsdb), 600, 0.5)
            hwm = side.vm_hwm_kb()
            log("rss %s: uploaded %.0f MB in %.1fs, sidecar VmHWM %d kB" %
                (kind, size / 1e6, time.monotonic() - t, hwm))
            print("VmHWM(%s) = %d kB for a %d-byte block" % (kind, hwm, size))
            check(hwm < 64 * 1024, "rss %s: VmHWM %d kB far below the block's %d MB" %
                  (kind, hwm, size >> 20))
            check(os.path.getsize(obj(big + "/chunks/000001")) ==
                  os.path.getsize(os.path.join(tsdb, big, "chunks/000001")),
                  "rss %s: first segment complete in the bucket" % kind)
            side.stop()
            if s3:
                s3.stop()
    finally:
        prom.stop()


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["live_fs", "s3_outage", "crash", "rss"])
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--node", default="node")
    ap.add_argument("--node-dir", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ARGS = ap.parse_args()
    if ARGS.part in ("s3_outage", "rss") and not os.path.exists(
            os.path.join(ARGS.node_dir, "node_modules", ".bin", "s3rver")):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=ARGS.node_dir, check=True)
    wd = tempfile.mkdtemp(prefix="shipper-%s." % ARGS.part)
    t = time.monotonic()
    try:
        globals()["part_" + ARGS.part](wd)
    except Exception as e:  # a failed wait names what did not happen
        FAILS.append(repr(e))
        print("FAIL: %r" % e, file=sys.stderr)
        for f in sorted(os.listdir(wd)):
            if f.endswith(".log"):
                print("---- %s (tail)\n%s" % (f, read(os.path.join(wd, f), "r")[-3000:]), file=sys.stderr)
    log("%s: %.1fs, %d failure(s)" % (ARGS.part, time.monotonic() - t, len(FAILS)))
    if ARGS.keep or FAILS:
        print("work directory kept: " + wd)
    else:
        shutil.rmtree(wd, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
