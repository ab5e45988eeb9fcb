"""gateway_common.py: what the gateway fault tests share — processes that die
with the harness and are stopped by PID, HTTP with timing, readiness polls,
RSS from /proc, and a pass/fail tally."""
import ctypes
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from portpick import free_port  # noqa: E402,F401

results = []
procs = []


def log(msg):
    print(msg, flush=True)


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    log("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""))
    return ok


def finish():
    failed = [n for n, ok in results if not ok]
    log("%d checks, %d failed" % (len(results), len(failed)))
    return 1 if failed or not results else 0


def _die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Proc:
    def __init__(self, name, argv, work, env=None):
        self.name, self.argv = name, argv
        self.logpath = os.path.join(work, name + ".log")
        self.log = open(self.logpath, "a")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  preexec_fn=_die_with_parent, env=env)
        self.pid = self.p.pid
        procs.append(self)

    def stop(self):
        """SIGTERM and wait; for an orrery daemon (|clean| set) a check that it
        exits 0 — under sanitizers that is where leaks and errors show."""
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, signal.SIGCONT)
                os.kill(self.p.pid, signal.SIGTERM)
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
            if getattr(self, "clean", False):
                self.log.flush()
                rc = self.p.returncode
                check("%s exits cleanly on SIGTERM" % self.name, rc == 0,
                      "" if rc == 0 else "exit %s; log tail:\n%s" % (rc, self.tail(15)))
        if not self.log.closed:
            self.log.close()

    def tail(self, n=30):
        try:
            with open(self.logpath) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def stop_all():
    for p in reversed(procs):
        p.stop()
    del procs[:]


def http(method, url, params=None, timeout=60, body=None):
    """Returns (status, body-str, seconds)."""
    data = None
    hdrs = {}
    if params is not None and method == "POST":
        data = urllib.parse.urlencode(params, doseq=True).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    elif params is not None:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    if body is not None:
        data = body
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace"), time.monotonic() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), time.monotonic() - t0
    except OSError as e:  # timeout, reset: what a client sees
        return 0, "client error: %s" % e, time.monotonic() - t0


def wait_ready(url, proc, deadline_s=60):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.p.poll() is not None:
            raise RuntimeError("%s exited; log %s:\n%s" % (proc.name, proc.logpath, proc.tail()))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # readiness poll interval
    raise RuntimeError("%s not ready; log %s" % (proc.name, proc.logpath))


def wait_for(what, fn, deadline_s=60, every=0.2):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(every)  # poll interval of a condition
    raise RuntimeError("timed out waiting for %s (last: %r)" % (what, last))


def stores_up(gw_url, n):
    st, body, _ = http("GET", gw_url + "/api/v1/stores", timeout=5)
    if st != 200:
        return False
    d = json.loads(body).get("data") or {}
    # Up: its Info answered (label sets known) and the last check succeeded.
    return sum(1 for v in d.values() for e in v
               if e.get("labelSets") and not e.get("lastError")) >= n


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def start_gateway(orrery, work, endpoints, extra=(), name="gateway"):
    gp, hp = free_port(), free_port()
    argv = [orrery, "gateway", "--http-address=127.0.0.1:%d" % hp,
            "--grpc-address=127.0.0.1:%d" % gp, "--query.replica-label=replica"]
    argv += ["--endpoint=" + e for e in endpoints] + list(extra)
    g = Proc(name, argv, work)
    g.clean = True
    g.url, g.grpc = "http://127.0.0.1:%d" % hp, "127.0.0.1:%d" % gp
    wait_ready(g.url + "/-/ready", g)
    return g


def rss_settled(pid, below_kb, deadline_s=5):
    """RSS once it went below |below_kb| (the gateway gives freed memory back
    within a tick, about a second), or the last reading after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        r = rss_kb(pid)
        if r < below_kb or time.monotonic() > end:
            return r
        time.sleep(0.1)  # poll interval of /proc


# A query answer compared across setups (the pushdown tests: gateway/
# stacked_pushdown.py, promql_src/pushdown.py).
def series(body):
    """{labels-json: [(t, value)]} of a query answer, or None on an error."""
    d = json.loads(body)
    if d.get("status") != "success":
        return None
    out = {}
    for r in d["data"]["result"]:
        pts = r.get("values") or [r["value"]]
        out[json.dumps(r["metric"], sort_keys=True)] = [(float(t), float(v)) for t, v in pts]
    return out


def same(a, b):
    if a is None or b is None or sorted(a) != sorted(b):
        return False
    for k in a:
        if len(a[k]) != len(b[k]):
            return False
        for (ta, va), (tb, vb) in zip(a[k], b[k]):
            if ta != tb or not (va == vb or math.isclose(va, vb, rel_tol=1e-9) or
                                (math.isnan(va) and math.isnan(vb))):
                return False
    return True
