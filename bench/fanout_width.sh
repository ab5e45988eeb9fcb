#!/bin/sh
# fanout_width.sh: what the gateway spends per endpoint. For each N, N fake
# StoreAPI endpoints (bench_fanout_fake_stores: one process, one `up` series
# and one external label each) are given to one `orrery gateway` through a
# file SD file; once all N are up in /api/v1/stores, the instant query
# count(up) is sent --runs times over one kept-alive HTTP connection and
# the script prints, per N, the median and p90 wall time, the gateway's CPU
# time per query (user + system, from /proc: on a loaded machine the wall
# time mostly measures the wait for a core), the part of it spent on the
# gateway's loop thread (the main thread: what a query waits for; the
# rest ran on helper threads beside it), the fakes' CPU per query, the
# gateway's RSS after the runs and its peak RSS (VmHWM), and the cost per
# endpoint ((median(N) - median(1)) / (N - 1)). Every answer must be N,
# else exit 1. The fakes speak raw HTTP/2 with answers encoded once (cheap,
# so on a 2-core machine they leave a core to the gateway); --lib-fakes
# serves them with the library's gRPC and StoreAPI servers instead, as a
# sidecar would (the fakes' CPU column then shows that server's cost).
#
# --callgrind runs the gateway under valgrind's callgrind and adds, per N,
# the user-space instructions per query (all threads, and the loop thread's
# part), read with callgrind_control before and after the timed runs: unlike
# the times, these do not move with the machine's load or speed, so they
# tell a change's effect on a busy 2-core VM (the times then mean nothing).
#
# Usage: bench/fanout_width.sh [--build DIR] [--n "1 10 100 300 1000"] [--runs 50] [--work DIR] [--lib-fakes] [--orrery BIN] [--callgrind]
# Defaults: build/rel (needs orrery and bench_fanout_fake_stores built).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
exec python3 - "$ROOT" "$@" <<'PY'
import argparse, http.client, json, os, resource, shutil, statistics, subprocess, sys, tempfile, time
import urllib.parse

ROOT = sys.argv[1]
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "gateway"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import gateway_e2e as e2e  # noqa: E402  processes, HTTP, readiness
from portpick import free_port  # noqa: E402

ap = argparse.ArgumentParser(prog="fanout_width.sh")
ap.add_argument("--build", default=os.path.join(ROOT, "build", "rel"))
ap.add_argument("--n", default="1 10 100 300 1000")
ap.add_argument("--runs", type=int, default=50)
ap.add_argument("--work")
ap.add_argument("--lib-fakes", action="store_true")
ap.add_argument("--orrery", help="the gateway's binary (default: BUILD/cmd/orrery), for A/B runs over the same fakes")
ap.add_argument("--callgrind", action="store_true")
args = ap.parse_args(sys.argv[2:])
orrery = args.orrery or os.path.join(args.build, "cmd", "orrery")
fake_bin = os.path.join(args.build, "bench", "bench_fanout_fake_stores")
for b in (orrery, fake_bin):
    if not os.access(b, os.X_OK):
        sys.exit("fanout_width.sh: %s not built" % b)
widths = [int(x) for x in args.n.split()]
if args.callgrind:
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            sys.exit("fanout_width.sh: --callgrind needs %s (Debian's valgrind)" % tool)

# Each endpoint is a listener and a connection in the fakes' process and a
# connection in the gateway's: raise the soft fd limit to the hard one.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = hard
if soft != resource.RLIM_INFINITY and soft < 2 * max(widths) + 64:
    sys.exit("fanout_width.sh: open file limit %d is too low for %d endpoints" % (soft, max(widths)))

T0 = (int(time.time()) // 60) * 60 * 1000  # the fakes' last sample; queries ask at T0


CLK = os.sysconf("SC_CLK_TCK")


def callgrind_ir(pid):
    """Instructions so far of the callgrind run |pid|, per thread: {n: Ir}."""
    r = subprocess.run(["callgrind_control", "-e", "Ir", str(pid)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode(errors="replace")
    ths = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[0] == "Th":
            ths[int(f[1])] = int(f[2].replace(",", ""))
    if r.returncode or not ths:
        sys.exit("fanout_width.sh: callgrind_control -e Ir %d: %s" % (pid, out.strip()[-300:]))
    return ths


def cpu_s(pid, task=None):
    """User + system CPU seconds of |pid| (or of its thread |task|) so far."""
    path = "/proc/%d/task/%d/stat" % (pid, task) if task else "/proc/%d/stat" % pid
    with open(path) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / CLK


def rss_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Client:
    """One kept-alive HTTP/1.1 connection, as a dashboard's would be."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def post(self, path, params):
        body = urllib.parse.urlencode(params)
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.c.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
                r = self.c.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = None
                if attempt:
                    raise


def one_width(n, work):
    sd = os.path.join(work, "sd-%d.json" % n)
    if os.path.exists(sd):
        os.unlink(sd)
    fake = e2e.Proc("fakes-%d" % n, [fake_bin] + (["--lib"] if args.lib_fakes else []) + [str(n), str(T0), sd], work)
    end = time.monotonic() + 120
    while not os.path.exists(sd):
        if fake.p.poll() is not None or time.monotonic() > end:
            sys.exit("fanout_width.sh: fakes did not start; log %s" % fake.logpath)
        time.sleep(0.05)  # the fakes write the SD file once all N listen
    hp = free_port()
    vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + os.path.join(work, "callgrind.%p")] \
        if args.callgrind else []
    gw = e2e.Proc("gateway-%d" % n, vg + [orrery, "gateway", "--http-address=127.0.0.1:%d" % hp,
                                     "--grpc-address=127.0.0.1:%d" % free_port(),
                                     "--log.level=warn", "--store.sd-files=" + sd], work)
    url = "http://127.0.0.1:%d" % hp
    e2e.wait_ready(url + "/-/ready", gw)
    t_start = time.monotonic()
    while True:  # readiness: every endpoint's Info answered
        st, _, body = e2e.http("GET", url + "/api/v1/stores")
        up = 0
        if st == 200:
            up = sum(1 for v in (json.loads(body).get("data") or {}).values() for e in v
                     if not e.get("lastError") and e.get("lastCheck", "").find("0001-") != 0)
        if up == n:
            break
        if gw.p.poll() is not None or time.monotonic() - t_start > 120:
            sys.exit("fanout_width.sh: %d of %d endpoints up; log %s" % (up, n, gw.logpath))
        time.sleep(0.1)  # Info poll: the gateway probes once a second
    ready_s = time.monotonic() - t_start
    cl = Client(hp)
    p = {"query": "count(up)", "time": "%.3f" % (T0 / 1000.0)}
    bad = 0

    def q():
        nonlocal bad
        t0 = time.perf_counter()
        st, body = cl.post("/api/v1/query", p)
        dt = time.perf_counter() - t0
        try:
            v = json.loads(body)["data"]["result"][0]["value"][1]
        except (ValueError, KeyError, IndexError):
            v = None
        if st != 200 or v != str(n):
            bad += 1
            if bad == 1:
                print("N=%d: want %d, got HTTP %d %s" % (n, n, st, body[:300]), file=sys.stderr)
        return dt

    for _ in range(min(5, args.runs)):
        q()  # warm-up: connections open, caches filled
    ir0 = callgrind_ir(gw.p.pid) if args.callgrind else None
    c0, f0, l0 = cpu_s(gw.p.pid), cpu_s(fake.p.pid), cpu_s(gw.p.pid, gw.p.pid)
    ts = sorted(q() for _ in range(args.runs))
    gcpu = (cpu_s(gw.p.pid) - c0) / args.runs
    fcpu = (cpu_s(fake.p.pid) - f0) / args.runs
    lcpu = (cpu_s(gw.p.pid, gw.p.pid) - l0) / args.runs
    ir = None
    if args.callgrind:
        ir1 = callgrind_ir(gw.p.pid)
        # Thread 1 is the main thread: the loop.
        ir = ((sum(ir1.values()) - sum(ir0.values())) / args.runs,
              (ir1.get(1, 0) - ir0.get(1, 0)) / args.runs)
    med = statistics.median(ts)
    p90 = ts[min(len(ts) - 1, int(0.9 * len(ts)))]
    rss, hwm = rss_kb(gw.p.pid, "VmRSS"), rss_kb(gw.p.pid, "VmHWM")
    gw.stop()
    fake.stop()
    return med, p90, gcpu, lcpu, fcpu, rss, hwm, ready_s, bad, ir


work = args.work or tempfile.mkdtemp(prefix="fanout_width.")
os.makedirs(work, exist_ok=True)
status = 0
try:
    print("count(up) over N fake StoreAPI endpoints (%s fakes), %d runs each (after 5 warm-up); load %s"
          % ("library" if args.lib_fakes else "raw", args.runs, os.getloadavg()[0]))
    print("%6s %9s %9s %9s %9s %9s %9s %9s %11s %8s" % ("N", "med ms", "p90 ms", "gw cpu ms",
                                                         "loop cpu", "fake cpu", "RSS MB",
                                                         "peak MB", "us/endpoint", "ready s")
          + ("  %12s %12s" % ("kIr/query", "loop kIr/q") if args.callgrind else ""))
    base = None
    for n in widths:
        med, p90, gcpu, lcpu, fcpu, rss, hwm, ready_s, bad, ir = one_width(n, work)
        if base is None and n == 1:
            base = med
        per = "%11.1f" % ((med - base) / (n - 1) * 1e6) if base is not None and n > 1 else "%11s" % "-"
        print("%6d %9.2f %9.2f %9.2f %9.2f %9.2f %9.1f %9.1f %s %8.1f%s%s" % (
                  n, med * 1e3, p90 * 1e3, gcpu * 1e3, lcpu * 1e3, fcpu * 1e3, rss / 1024.0,
                  hwm / 1024.0, per, ready_s,
                  "  %12.1f %12.1f" % (ir[0] / 1e3, ir[1] / 1e3) if ir else "",
                  "  WRONG x%d" % bad if bad else ""),
              flush=True)
        if bad:
            status = 1
finally:
    for pr in reversed(e2e.procs):
        pr.stop()
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
sys.exit(status)
PY
