#!/usr/bin/env python3
"""store_memory.py: the store's memory with many series and blocks.

Writes NSERIES x NBLOCKS with store_fixture (the tsdb writer) into a
FILESYSTEM bucket, starts `orrery store` over it and checks:
  1. after the first sync, the store's RSS (over that of a store of an empty
     bucket, the binary and libraries; with --absolute the whole RSS) is
     under 3% of the blocks' total index size;
  2. a wide query ({__name__=~".+"}) with --store.limits.request-series set
     fails naming the limit, fast, and the peak RSS stays under that bound
     plus 64 MiB;
  3. 20 concurrent queries (a tenth of the series of a block each) through
     one store stay within --chunk-pool-size plus 128 MiB (which holds the
     16 MiB index cache) over the RSS before them; queries over the pool are
     refused with RESOURCE_EXHAUSTED naming it, never an OOM;
  4. with --store.enable-index-header-lazy-reader the RSS after sync is
     lower than without (same bucket, headers already built).
Every process is started here and stopped by PID.
Usage: store_memory.py ORRERY FIXTURE [--series N] [--blocks N] [--absolute] [--keep DIR]
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import store_e2e as e2e  # noqa: E402

MiB = 1 << 20


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def reset_peak(pid):
    """VmHWM restarts from the current RSS (proc(5): clear_refs 5)."""
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("orrery")
    ap.add_argument("fixture")
    ap.add_argument("--series", type=int, default=100000)
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--absolute", action="store_true")
    ap.add_argument("--pool-mib", type=int, default=64, help="--chunk-pool-size in MiB")
    ap.add_argument("--bucket", help="an existing fixture bucket (not written, kept)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="store_memory.")
    procs = []
    try:
        bdir = a.bucket or os.path.join(work, "bucket")
        if not a.bucket:
            os.makedirs(bdir)
            t0 = time.monotonic()
            subprocess.run([a.fixture, bdir, str(a.series), str(a.blocks), str(a.samples)], check=True,
                           stdout=subprocess.DEVNULL)
            print("fixture: %d series x %d blocks in %.1f s" % (a.series, a.blocks, time.monotonic() - t0))
        index_bytes = sum(os.path.getsize(os.path.join(bdir, b, "index")) for b in os.listdir(bdir)
                          if os.path.exists(os.path.join(bdir, b, "index")))
        nblocks = sum(1 for b in os.listdir(bdir) if os.path.exists(os.path.join(bdir, b, "meta.json")))
        base_kb = 0
        if not a.absolute:
            empty = os.path.join(work, "empty")
            os.makedirs(empty)
            st0 = e2e.start_store(a.orrery, work, "type: FILESYSTEM\nconfig:\n  directory: %s\n" % empty,
                                  [], "store-empty")
            base_kb = status_kb(st0.proc.pid, "VmRSS")
            st0.stop()
        yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
        pool = a.pool_mib * MiB
        t0 = time.monotonic()
        st = e2e.start_store(a.orrery, work, yaml, ["--store.limits.request-series=%d" % (a.series // 2),
                                                    "--chunk-pool-size=%d" % pool,
                                                    "--index-cache-size=16MB",
                                                    "--block-sync-concurrency=4"], "store")
        procs.append(st)
        sync_s = time.monotonic() - t0
        rss_kb = status_kb(st.proc.pid, "VmRSS")
        used = (rss_kb - base_kb) * 1024
        pct = 100.0 * used / index_bytes
        print("sync of %d blocks: %.1f s; index total %.1f MiB; RSS %.1f MiB (%s %.1f MiB) = %.2f%% of the index"
              % (nblocks, sync_s, index_bytes / MiB, rss_kb / 1024.0,
                 "absolute" if a.absolute else "over an empty store's", used / MiB, pct))
        e2e.check(e2e.metric(st.base, "thanos_bucket_store_blocks_loaded") == nblocks,
                  "all %d blocks loaded" % nblocks)
        e2e.check(pct < 3.0, "RSS after sync under 3%% of the index size (%.2f%%)" % pct)

        gw = e2e.start_gateway(a.orrery, work, [st.grpc], 1)
        procs.append(gw)
        reset_peak(st.proc.pid)
        t0 = time.monotonic()
        code, body = e2e.get(gw.base, "/api/v1/query", [("query", '{__name__=~".+"}'),
                                                        ("time", "1700003600"), ("partial_response", "false")])
        wide_s = time.monotonic() - t0
        hwm = status_kb(st.proc.pid, "VmHWM") * 1024
        e2e.check(code != 200 and "exceeded series limit" in body,
                  "wide query fails naming the series limit in %.2f s (%s)" % (wide_s, body[-160:]))
        e2e.check(hwm < rss_kb * 1024 + 64 * MiB,
                  "peak RSS during the wide query %.1f MiB (after sync %.1f MiB)" % (hwm / MiB, rss_kb / 1024.0))

        # 20 concurrent queries, each a tenth of the series of one block.
        before = status_kb(st.proc.pid, "VmRSS") * 1024
        reset_peak(st.proc.pid)

        def one(i):
            t = 1700000000 + 7200 * (i % nblocks) + 3600
            return e2e.get(gw.base, "/api/v1/query", [("query", 'count(fixture_metric{job="job-%d"})' % (i % 10)),
                                                      ("time", str(t)), ("partial_response", "false")])

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
            res = list(ex.map(one, range(20)))
        conc_s = time.monotonic() - t0
        ok = sum(1 for c, b in res if c == 200 and '"status":"success"' in b)
        exhausted = sum(1 for c, b in res if "chunk pool exhausted" in b)
        hwm = status_kb(st.proc.pid, "VmHWM") * 1024
        e2e.check(ok + exhausted == 20 and ok > 0,
                  "20 concurrent queries in %.1f s: %d answered, %d refused by the chunk pool" % (conc_s, ok, exhausted))
        if ok:
            c, b = next((c, b) for c, b in res if c == 200)
            v = json.loads(b)["data"]["result"]
            e2e.check(v and float(v[0]["value"][1]) == a.series / 10, "a concurrent answer counts %d series" % (a.series / 10))
        e2e.check(hwm <= before + pool + 128 * MiB,
                  "peak RSS %.1f MiB within RSS before (%.1f MiB) + --chunk-pool-size (%d MiB) + 128 MiB"
                  % (hwm / MiB, before / MiB, pool // MiB))

        # 4. The lazy index-header reader: after a sync (headers already
        # built, the same for both runs) nothing of them is held in memory,
        # so RSS is lower than with every header mapped and sampled.
        for p in reversed(procs):
            p.stop()
        procs = []
        rss = {}
        for mode, extra in (("eager", []), ("lazy", ["--store.enable-index-header-lazy-reader"])):
            st = e2e.start_store(a.orrery, work, yaml, ["--block-sync-concurrency=4"] + extra, "store")
            procs.append(st)
            rss[mode] = status_kb(st.proc.pid, "VmRSS")
            e2e.check(e2e.metric(st.base, "thanos_bucket_store_blocks_loaded") == nblocks,
                      "%s: all %d blocks loaded" % (mode, nblocks))
            st.stop()
            procs.remove(st)
        print("RSS after sync: eager %.1f MiB, lazy %.1f MiB" % (rss["eager"] / 1024.0, rss["lazy"] / 1024.0))
        e2e.check(rss["lazy"] < rss["eager"],
                  "RSS after sync with --store.enable-index-header-lazy-reader (%.1f MiB) lower than without "
                  "(%.1f MiB)" % (rss["lazy"] / 1024.0, rss["eager"] / 1024.0))
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("%d failed" % len(e2e.FAILS))
    return 1 if e2e.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
