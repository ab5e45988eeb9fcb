#!/bin/sh
# compact_vs_prometheus.sh: compaction throughput (samples/s) and peak RSS of
# `orrery compact` against Prometheus 2.42 compacting the same blocks, and
# the downsampling throughput (MB/s of raw chunks per core: bytes over the
# downsampling thread's CPU time; wall time is printed beside it).
#
# Blocks come from bench_compact_gen: four aligned 2h blocks of --series
# series (480 samples each). Prometheus (--storage.tsdb.min-block-duration=2h,
# max 6h) compacts the first three into a 6h block about a minute after it
# starts; its log line "compact blocks ... duration=" gives its compaction
# time and /proc/<pid>/status VmHWM its peak RSS (the whole process: start-up
# and compaction). `orrery compact` (--compact.ranges=2h,6h) compacts the same
# three from a FILESYSTEM bucket; its log's compact_ms gives the compaction
# time (writing the block, as Prometheus's figure) and wait4() its peak RSS
# (the whole run: download, compaction, verification, upload). Then one
# raw block spanning 40h of --series/10 series is downsampled to 5m.
#
# One run at --series 1000000 (4 x 2h blocks, 1.44e9 samples compacted;
# 2026-12-05, Release build, shared 2-core machine at load 15-27, both
# measured alike): Prometheus 2.42 114.0 s (12.6 M samples/s), peak RSS
# 3892 MB; orrery compact 73.1 s (19.7 M samples/s), peak RSS 548 MB (the
# whole run) -> throughput 1.56x, RSS 0.14 of Prometheus's. Downsampling
# 2108 MB of raw chunks (100k series x 40h): 20.0 s CPU, 105.6 MB/s per
# core at that load (about 140 MB/s at load 5-10 on 210 MB).
#
# Usage: bench/compact_vs_prometheus.sh [--smoke] [--series N] [--orrery PATH]
#        [--gen PATH] [--prometheus PATH] [--work DIR]
# Defaults: 100000 series; --smoke: 300 series (a few seconds plus the
# minute Prometheus waits before compacting).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
exec python3 - "$ROOT" "$@" <<'PY'
import argparse, glob, json, os, re, shutil, signal, subprocess, sys, tempfile, time

ROOT = sys.argv[1]
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import portpick  # noqa: E402

ap = argparse.ArgumentParser(prog="compact_vs_prometheus.sh")
ap.add_argument("--orrery", default=os.path.join(ROOT, "build", "gcc", "cmd", "orrery"))
ap.add_argument("--gen", default=os.path.join(ROOT, "build", "gcc", "bench", "bench_compact_gen"))
ap.add_argument("--prometheus", default="prometheus")
ap.add_argument("--series", type=int, default=100000)
ap.add_argument("--smoke", action="store_true")
ap.add_argument("--work")
args = ap.parse_args(sys.argv[2:])
if args.smoke:
    args.series = 300

H2 = 7200 * 1000
T0 = 1700006400 * 1000  # a multiple of 6h


def gen(parent, t0, series, chunks):
    os.makedirs(parent, exist_ok=True)
    r = subprocess.run([args.gen, parent, str(t0), str(series), str(chunks)], check=True,
                       capture_output=True, text=True)
    return os.path.join(parent, r.stdout.strip())


def go_duration(text):
    """Seconds in a Go time.Duration string: "850ms", "12.5s", "1m54.03s"."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"([0-9.]+)(h|ms|µs|us|ns|m|s)", text)
    return sum(float(v) * units[u] for v, u in parts)


def dir_size(d):
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(d, "**"), recursive=True)
               if os.path.isfile(f))


def vmhwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_measured(cmd, log):
    """Runs |cmd|, returns (status, wall seconds, peak RSS bytes)."""
    t = time.time()
    with open(log, "w") as lf:
        p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
    return status, time.time() - t, ru.ru_maxrss * 1024


work = args.work or tempfile.mkdtemp(prefix="compact_bench.")
os.makedirs(work, exist_ok=True)
try:
    src = os.path.join(work, "blocks")
    shutil.rmtree(src, ignore_errors=True)
    blocks = [gen(src, T0 + i * H2, args.series, 4) for i in range(4)]
    samples = sum(json.load(open(os.path.join(b, "meta.json")))["stats"]["numSamples"]
                  for b in blocks[:3])
    print("data: 4 x 2h blocks of %d series; the 3 compacted hold %d samples, %.1f MB"
          % (args.series, samples, sum(dir_size(b) for b in blocks[:3]) / 1e6), flush=True)

    # ---- Prometheus
    pd = os.path.join(work, "prom")
    shutil.rmtree(pd, ignore_errors=True)
    shutil.copytree(src, pd)
    cfg = os.path.join(work, "prom.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1h\n")
    plog = os.path.join(work, "prom.log")
    port = portpick.free_port()
    with open(plog, "w") as lf:
        p = subprocess.Popen([args.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + pd,
                              "--storage.tsdb.min-block-duration=2h",
                              "--storage.tsdb.max-block-duration=6h",
                              "--storage.tsdb.retention.time=100y",
                              "--web.listen-address=127.0.0.1:%d" % port],
                             stdout=lf, stderr=subprocess.STDOUT)
    pdur = None
    prss = 0
    deadline = time.time() + 600
    try:
        while time.time() < deadline:
            prss = max(prss, vmhwm(p.pid))
            m = re.search(r'msg="compact blocks".*duration=(\S+)', open(plog).read())
            if m:
                pdur = go_duration(m.group(1))
                prss = max(prss, vmhwm(p.pid))
                break
            time.sleep(0.5)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)

    # ---- orrery
    bd = os.path.join(work, "bucket")
    shutil.rmtree(bd, ignore_errors=True)
    shutil.copytree(src, bd)
    olog = os.path.join(work, "orrery.log")
    status, owall, orss = run_measured(
        [args.orrery, "compact", "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: " + bd,
         "--data-dir=" + os.path.join(work, "data"), "--consistency-delay=0s",
         "--compact.ranges=2h,6h", "--downsampling.disable"], olog)
    m = re.search(r'msg="compacted blocks".*compact_ms=(\d+)', open(olog).read())
    odur = int(m.group(1)) / 1e3 if m else None
    if status != 0 or odur is None:
        print("orrery compact failed; see %s" % olog)
        sys.exit(1)

    print("%-28s %14s %14s %12s" % ("", "compaction s", "samples/s", "peak RSS MB"))
    if pdur:
        print("%-28s %14.3f %14.0f %12.1f" % ("prometheus 2.42", pdur, samples / pdur, prss / 1e6))
    else:
        print("prometheus 2.42: no compaction seen in its log (%s)" % plog)
    print("%-28s %14.3f %14.0f %12.1f" % ("orrery compact", odur, samples / max(odur, 1e-6),
                                          orss / 1e6))
    print("%-28s %14.3f %14s %12s" % ("orrery compact (whole run)", owall, "", ""))
    if pdur:
        print("throughput ratio orrery/prometheus: %.2fx; peak RSS ratio: %.2f"
              % (pdur / max(odur, 1e-6), orss / max(prss, 1)))

    # ---- downsampling: one raw block spanning 40h
    dsb = os.path.join(work, "ds-bucket")
    shutil.rmtree(dsb, ignore_errors=True)
    raw = gen(dsb, T0, max(args.series // 10, 10), 80)
    raw_bytes = dir_size(os.path.join(raw, "chunks"))
    dlog = os.path.join(work, "downsample.log")
    status, dwall, drss = run_measured(
        [args.orrery, "compact", "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: " + dsb,
         "--data-dir=" + os.path.join(work, "ds-data"), "--consistency-delay=0s"], dlog)
    m = re.search(r'msg="downsampled block".*downsample_ms=(\d+) downsample_cpu_ms=(\d+)',
                  open(dlog).read())
    if status != 0 or not m:
        print("downsampling failed; see %s" % dlog)
        sys.exit(1)
    ddur = max(int(m.group(1)) / 1e3, 1e-3)
    dcpu = max(int(m.group(2)) / 1e3, 1e-3)
    # Per core: the downsampling thread's CPU time (one block runs on one
    # thread); the wall-clock figure also counts whatever else the machine
    # runs.
    print("downsampling raw -> 5m: %.1f MB of raw chunks in %.3f s CPU (%.3f s wall): "
          "%.1f MB/s per core (%.1f MB/s wall), peak RSS %.1f MB"
          % (raw_bytes / 1e6, dcpu, ddur, raw_bytes / 1e6 / dcpu, raw_bytes / 1e6 / ddur,
             drss / 1e6))
finally:
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
PY
