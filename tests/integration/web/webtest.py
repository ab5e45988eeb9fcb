"""webtest.py: what web_ui.py and web_blocks.py share — PASS/FAIL checks,
daemons started as children (killed with the test), HTTP, readiness polls and
the run of the browser half (web_ui.js, web_blocks.js over webtest.js).

|procs| and |failed| are this module's lists; the tests append to them and
never rebind them."""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

procs = []
failed = []


def log(msg):
    print(msg, flush=True)


def check(name, ok, detail=""):
    log("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""))
    if not ok:
        failed.append(name)
    return ok


def die_with_parent():
    import ctypes
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start(name, argv, work):
    logf = open(os.path.join(work, name + ".log"), "w")
    p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    p.name, p.logpath = name, logf.name
    procs.append(p)
    return p


def stop_all():
    for p in reversed(procs):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def http(url, headers=None, data=None):
    req = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def wait_until(what, fn, proc_list, deadline_s=60):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for p in proc_list:
            if p.poll() is not None:
                raise RuntimeError("%s exited; log %s" % (p.name, p.logpath))
        try:
            if fn():
                return
        except OSError:
            pass
        time.sleep(0.1)  # readiness poll interval
    raise RuntimeError("timed out waiting for " + what)


def run_browser(node, script, spec):
    """Runs the browser half |script| on |spec|; its FAIL lines are failed
    checks, and it must reach its end (DONE)."""
    p = subprocess.run([node, script, json.dumps(spec)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240,
                       preexec_fn=die_with_parent)
    for line in p.stdout.splitlines():
        log("  browser: " + line)
        if line.startswith("FAIL "):
            failed.append(line[5:])
    check("browser test ran to its end", p.returncode in (0, 1) and "DONE" in p.stdout,
          "exit %d" % p.returncode)
