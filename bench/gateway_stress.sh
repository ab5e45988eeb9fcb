#!/bin/sh
# gateway_stress.sh: a soak of `orrery gateway` over `orrery sidecar` + Prometheus
# 2.42 (the PromQL differential dataset made into blocks by promtool, as
# gateway_vs_prometheus.sh sets it up): N clients (default 100), each on its
# own keep-alive connection, send a mix of queries back to back for
# --duration seconds, and the script prints the latency percentiles (p50,
# p99, max) overall and per query and the gateway's RSS over the run.
#
# Usage: bench/gateway_stress.sh [--orrery PATH] [--duration S] [--clients N] [--scale N] [--work DIR]
# Defaults: build/gcc/cmd/orrery, 60 s, 100 clients, scale 10, a temp dir.
#
# Fails (exit 1) when any request errs: a connection error or timeout, a
# status other than 200 (400 for the deliberately bad query), a body that is
# not a success (or, for the bad query, not Prometheus's bad_data error), a
# warning in a body, or the gateway exiting. From --duration 30 on it also
# fails when the gateway leaks: RSS and open descriptors are sampled every
# 0.5 s, and the mean RSS of the last tenth of the run may exceed that of the
# tenth after the first quarter (warm-up) by at most 10% + 4 MiB, and the
# descriptors by at most 8. The bench stage's smoke run uses a few seconds:
# the error check only.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
exec python3 - "$ROOT" "$@" <<'PY'
import argparse, http.client, json, os, random, shutil, statistics, sys, tempfile, threading, time
import urllib.parse

ROOT = sys.argv[1]
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "gateway"))
import gateway_e2e as e2e  # noqa: E402  processes, HTTP, readiness, the stack

ap = argparse.ArgumentParser(prog="gateway_stress.sh")
ap.add_argument("--orrery", default=os.path.join(ROOT, "build", "gcc", "cmd", "orrery"))
ap.add_argument("--prometheus", default="prometheus")
ap.add_argument("--promtool", default="promtool")
ap.add_argument("--duration", type=float, default=60)
ap.add_argument("--clients", type=int, default=100)
ap.add_argument("--scale", type=int, default=10)
ap.add_argument("--work")
args = ap.parse_args(sys.argv[2:])

T0, END = 1700000000, 1700010800
AT = str(T0 + 5400)
# (name, path, form, expected status)
QUERIES = [
    ("instant selector", "/api/v1/query", {"query": "http_requests_total", "time": AT}, 200),
    ("instant selector {code=\"500\"}", "/api/v1/query",
     {"query": "http_requests_total{code=\"500\"}", "time": AT}, 200),
    ("instant rate", "/api/v1/query", {"query": "rate(http_requests_total[5m])", "time": AT}, 200),
    ("instant sum by rate", "/api/v1/query",
     {"query": "sum by (job) (rate(http_requests_total[5m]))", "time": AT}, 200),
    ("instant up", "/api/v1/query", {"query": "up", "time": AT}, 200),
    ("range sum by rate 1h", "/api/v1/query_range",
     {"query": "sum by (job) (rate(http_requests_total[5m]))", "start": str(T0 + 3600),
      "end": str(T0 + 7200), "step": "60"}, 200),
    ("range avg_over_time 3h", "/api/v1/query_range",
     {"query": "avg_over_time(temperature_celsius[10m])", "start": str(T0), "end": str(END),
      "step": "300"}, 200),
    ("range up 3h", "/api/v1/query_range",
     {"query": "up", "start": str(T0), "end": str(END), "step": "120"}, 200),
    ("bad query (400)", "/api/v1/query", {"query": "sum(rate(http_requests_total[5m])", "time": AT}, 400),
]

work = args.work or tempfile.mkdtemp(prefix="gw_stress.")
os.makedirs(work, exist_ok=True)
keep = bool(args.work)  # a failed run keeps its logs
try:
    prom, side, gw = e2e.bench_stack(args, work, args.scale, "stress")

    # Every query answers as expected once before the clock starts.
    nseries = json.loads(e2e.http("POST", gw.url + "/api/v1/query",
                                  {"query": "count({__name__=~\".+\"})", "time": AT})[2]
                         )["data"]["result"][0]["value"][1]
    forms = []
    for name, path, form, want in QUERIES:
        st, _, body = e2e.http("POST", gw.url + path, form)
        if st != want:
            sys.exit("%s: status %d before the run, want %d: %s" % (name, st, want, body[:300]))
        forms.append((name, path, form, want, "&".join(
            "%s=%s" % (k, urllib.parse.quote(v, safe="")) for k, v in form.items())))

    stop = threading.Event()
    lock = threading.Lock()
    lat = {q[0]: [] for q in QUERIES}
    errors = []
    mem = []  # (seconds since start, RSS KiB, open fds)

    def status_kib(pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def monitor(t0):
        while not stop.is_set():
            try:
                mem.append((time.monotonic() - t0, status_kib(gw.p.pid), len(os.listdir("/proc/%d/fd" % gw.p.pid))))
            except OSError:
                pass
            stop.wait(0.5)  # sampling period, not synchronisation

    def client(i, t_end):
        """One client; an exception of its own (not the gateway's answer)
        is an error too, so a broken client cannot pass as a quiet run."""
        try:
            run_client(i, t_end)
        except Exception as e:  # noqa: BLE001 - any failure of the thread counts
            with lock:
                errors.append("client %d died: %s: %s" % (i, type(e).__name__, e))

    def run_client(i, t_end):
        rnd = random.Random(i)
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
        mine = {q[0]: [] for q in QUERIES}
        errs = []
        k = rnd.randrange(len(forms))
        while time.monotonic() < t_end and not stop.is_set():
            name, path, _, want, body = forms[k % len(forms)]
            k += 1
            t = time.perf_counter()
            try:
                conn.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
                r = conn.getresponse()
                out = r.read()
                dt = time.perf_counter() - t
                ok = r.status == want and (
                    out.startswith(b'{"status":"success"') and b'"warnings"' not in out if want == 200
                    else out.startswith(b'{"status":"error","errorType":"bad_data"'))
                if not ok:
                    errs.append("%s: %d %s" % (name, r.status, out[:200]))
                mine[name].append(dt)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                errs.append("%s: %s: %s" % (name, type(e).__name__, e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
        conn.close()
        with lock:
            for q in mine:
                lat[q].extend(mine[q])
            errors.extend(errs)

    def cpu_s(pid):
        """utime + stime of |pid| in seconds (/proc/PID/stat fields 14 and 15)."""
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    watched = [("gateway", gw), ("sidecar", side), ("prometheus", prom)]
    cpu0 = {n: cpu_s(p.p.pid) for n, p in watched}
    print("data: %s series (gen_data --series-scale %d); %d clients for %.0f s" %
          (nseries, args.scale, args.clients, args.duration))
    sys.stdout.flush()
    t0 = time.monotonic()
    mon = threading.Thread(target=monitor, args=(t0,))
    mon.start()
    threads = [threading.Thread(target=client, args=(i, t0 + args.duration)) for i in range(args.clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.monotonic() - t0
    stop.set()
    mon.join()
    cpu = {n: cpu_s(p.p.pid) - cpu0[n] for n, p in watched if p.p.poll() is None}
    if gw.p.poll() is not None:
        errors.append("gateway exited with %s; log %s" % (gw.p.returncode, gw.logpath))

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1e3 if xs else float("nan")

    alll = [x for q in lat for x in lat[q]]
    if not alll:
        errors.append("no request was answered")
    print("%-32s %8s %9s %9s %9s" % ("query", "requests", "p50 ms", "p99 ms", "max ms"))
    for name, *_ in QUERIES:
        xs = lat[name]
        print("%-32s %8d %9.1f %9.1f %9.1f" % (name, len(xs), pct(xs, 50), pct(xs, 99), pct(xs, 100)))
    print("%-32s %8d %9.1f %9.1f %9.1f" % ("all", len(alll), pct(alll, 50), pct(alll, 99), pct(alll, 100)))
    print("throughput %.0f requests/s over %.1f s; errors %d" % (len(alll) / wall, wall, len(errors)))
    print("CPU seconds during the run: " + ", ".join("%s %.1f" % (n, c) for n, c in cpu.items()) +
          "; load average %.1f" % os.getloadavg()[0])

    def window(lo, hi):
        w = [m for m in mem if lo * wall <= m[0] < hi * wall]
        return (statistics.mean(m[1] for m in w), statistics.mean(m[2] for m in w)) if w else (float("nan"), 0)

    leak = []
    if mem:
        warm_rss, warm_fd = window(0.25, 0.35)
        end_rss, end_fd = window(0.9, 1.01)
        print("gateway RSS by quarter of the run (MiB): " +
              " ".join("%.1f" % (window(q / 4 - 0.05, q / 4 + 0.05)[0] / 1024) for q in (1, 2, 3)) +
              " %.1f" % (window(0.9, 1.01)[0] / 1024))
        print("gateway RSS: %.1f MiB at 25-35%% of the run, %.1f MiB over the last 10%%, peak %.1f MiB; "
              "open fds %.0f -> %.0f" % (warm_rss / 1024, end_rss / 1024, max(m[1] for m in mem) / 1024,
                                         warm_fd, end_fd))
        if args.duration >= 30:
            if end_rss > warm_rss * 1.10 + 4096:
                leak.append("RSS grew from %.1f to %.1f MiB (allowed 10%% + 4 MiB)" % (warm_rss / 1024, end_rss / 1024))
            if end_fd > warm_fd + 8:
                leak.append("open descriptors grew from %.0f to %.0f" % (warm_fd, end_fd))
    for e in errors[:10]:
        print("ERROR %s" % e, file=sys.stderr)
    for e in leak:
        print("LEAK %s" % e, file=sys.stderr)
    if errors or leak:
        keep = True
        sys.exit("gateway_stress: %d errors, %d leak findings; gateway log %s" % (len(errors), len(leak), gw.logpath))
finally:
    for p in reversed(e2e.procs):
        p.stop()
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
PY
