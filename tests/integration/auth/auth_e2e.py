#!/usr/bin/env python3
"""auth_e2e.py: HTTP authentication and secrets end to end, with real peers.

Topology (127.0.0.1, free ports, every process killed by PID at the end):
  s3rver over HTTPS (certificate for s3.orrery.test made here by openssl,
    a key pair made up for this run)
  Prometheus 2.42 with a web config (basic auth) — it scrapes itself with
    basic_auth, and the gateway's /federate with basic_auth (right and wrong
    password)
  a bearer-token proxy in this process, in front of that Prometheus
  sidecar A: --prometheus.http-client-file (basic_auth, password_file),
    --objstore.config (inline, S3 keys, tls_config ca_file + server_name)
  sidecar B: through the proxy, --prometheus.http-client with
    authorization.credentials_file (a bearer token file)
  store over the same bucket (--objstore.config-file)
  gateway over the three, with --http.config (basic auth, headers)
  gw-src: a gateway with --endpoint.prometheus, --endpoint.federate and
    --endpoint.promql on the protected Prometheus, --endpoint.http-client-file
  gw-bad: a gateway with a wrong inline --endpoint.http-client password and
    a password in its --endpoint.prometheus URL
Every orrery daemon runs with --http.config.

Checks (PASS/FAIL lines; exit 1 when one fails):
  a  curl against the gateway's API: 401 + WWW-Authenticate: Basic without
     credentials, with a wrong password and for an unknown user (same body);
     200 with them; /-/healthy and /metrics are protected too (Prometheus
     2.42); the configured headers on 200, 401 and 404.
  b  the sidecars reach Prometheus with basic auth and with a bearer token
     (answers through the gateway; the proxy saw only the right token); the
     store and sidecar A use the bucket over HTTPS with the run's keys.
  b2 the gateway's in-process sources answer through the client file; a
     wrong password is the endpoint's lastError (HTTP 401) in
     /api/v1/stores, its name and flags mask the URL's password, and the
     inline client config shows as <secret>.
  c  Prometheus scrapes the gateway's /federate with basic_auth: up 1 and
     federated series (region="eu") in Prometheus; with a wrong password
     up 0.
  d  SIGHUP: a bad web config keeps the old one (logged); a new one with a
     new password takes effect.
  e  a bad web config or --endpoint.http-client at start: exit 1 and one
     line naming the key (never the value).
  f  no secret (S3 keys, passwords, the bearer token) in any log line of
     the orrery daemons nor in /api/v1/status/flags, /metrics,
     /api/v1/stores, /api/v1/status/buildinfo; the inline bucket flag shows
     as <secret> where flags are shown.
"""
import argparse
import base64
import ctypes
import http.server as httpserver
import json
import os
import secrets
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from portpick import free_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
procs = []
results = []


def log(msg):
    print(msg, flush=True)


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    log("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""))
    return ok


def die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Proc:
    def __init__(self, name, argv, work, env=None):
        self.name = name
        self.logpath = os.path.join(work, name + ".log")
        self.logf = open(self.logpath, "a")
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                  env=env, preexec_fn=die_with_parent)
        procs.append(self)

    def alive(self):
        return self.p.poll() is None

    def log_text(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()


def poll(what, fn, deadline_s=90):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise RuntimeError("timed out waiting for " + what)


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def http(url, auth=None, timeout=30, ctx=None):
    """(status, headers dict (lower-case names), body str)."""
    req = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()
    except OSError:
        return 0, {}, ""


def curl(args):
    """Runs curl -s -i; returns (status, headers (lower-case), body)."""
    out = subprocess.run([ARGS.curl, "-s", "-i", "--max-time", "60"] + args,
                         capture_output=True, timeout=90).stdout.decode(errors="replace")
    head, _, body = out.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def bcrypt(pw, cost=6):
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$2y$", cost, None, 0)
    return lib.crypt(pw.encode(), salt).decode()


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def openssl(*args):
    subprocess.run([ARGS.openssl] + list(args), check=True, capture_output=True, timeout=120)


def make_certs(work):
    """A CA and a server certificate for s3.orrery.test (no IP SAN: the
    client must use tls_config.server_name to accept it)."""
    ca_key, ca = os.path.join(work, "ca.key"), os.path.join(work, "ca.crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
            "-days", "2", "-subj", "/CN=orrery test CA")
    key, csr, crt = (os.path.join(work, n) for n in ("s3.key", "s3.csr", "s3.crt"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=s3.orrery.test")
    ext = write(os.path.join(work, "s3.ext"), "subjectAltName=DNS:s3.orrery.test\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


class TokenProxy:
    """Forwards GET/POST to Prometheus (adding its basic auth) when the
    request carries the right bearer token; 401 otherwise."""

    def __init__(self, target, token, prom_auth):
        self.port = free_port()
        self.good = self.bad = 0
        outer = self

        class H(httpserver.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def fwd(self):
                if self.headers.get("Authorization") != "Bearer " + token:
                    outer.bad += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.good += 1
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() in ("content-type", "content-encoding", "accept-encoding",
                                         "x-prometheus-remote-read-version")}
                hdrs["Authorization"] = prom_auth
                req = urllib.request.Request(target + self.path, data=body, headers=hdrs,
                                             method=self.command)
                try:
                    r = urllib.request.urlopen(req, timeout=60)
                    code, rh, data = r.status, r.headers, r.read()
                except urllib.error.HTTPError as e:
                    code, rh, data = e.code, e.headers, e.read()
                self.send_response(code)
                for k, v in rh.items():
                    if k.lower() in ("content-type", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = fwd

        class S(socketserver.ThreadingMixIn, httpserver.HTTPServer):
            daemon_threads = True

        self.srv = S(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def main():
    work = tempfile.mkdtemp(prefix="orr-auth-")
    keep = False
    try:
        (run_tls if ARGS.part == "tls" else run)(work)
    except Exception as e:  # noqa: BLE001
        log(traceback.format_exc())
        check("raised %r" % e, False)
        keep = True
    finally:
        for p in reversed(procs):
            p.stop()
        if keep or not all(ok for _, ok in results):
            for p in procs:
                if p.name.startswith(("gateway", "sidecar", "store")):
                    log("---- %s log (last 3000 bytes)\n%s" % (p.name, p.log_text()[-3000:]))
        shutil.rmtree(work, ignore_errors=True)
    failed = [n for n, ok in results if not ok]
    log("%d checks, %d failed" % (len(results), len(failed)))
    return 1 if failed or not results else 0


def run(work):
    # ---- secrets of this run (random, so a match in the output is a leak)
    S3_AK = "AKORR" + secrets.token_hex(8).upper()
    S3_SK = "sk-" + secrets.token_hex(16)
    ALICE_PW = "alice-" + secrets.token_hex(10)
    PROM_PW = "prom-" + secrets.token_hex(10)
    TOKEN = "tok-" + secrets.token_hex(16)
    NEW_PW = "alice2-" + secrets.token_hex(10)
    WRONG_PW = "wrong-" + secrets.token_hex(10)  # the gateway's inline client config
    URL_PW = "urlpw-" + secrets.token_hex(10)    # user:pass@ in an --endpoint.* URL
    SECRETS = {"a wrong password in --endpoint.http-client": WRONG_PW,
               "a password in an --endpoint.prometheus URL": URL_PW, "S3 access key": S3_AK, "S3 secret key": S3_SK, "alice's password": ALICE_PW,
               "Prometheus's password": PROM_PW, "bearer token": TOKEN,
               "alice's new password": NEW_PW}

    ca, s3crt, s3key = make_certs(work)

    # ---- s3rver over HTTPS with this run's keys
    s3port = free_port()
    env = dict(os.environ, S3_ACCESS_KEY=S3_AK, S3_SECRET_KEY=S3_SK, S3_CERT=s3crt, S3_KEY=s3key,
               NODE_PATH=os.path.join(ARGS.node_dir, "node_modules"))
    s3 = Proc("s3rver", [ARGS.node, "--openssl-legacy-provider",
                         os.path.join(HERE, "s3rver_keys.js"), os.path.join(work, "s3"),
                         str(s3port), "auth-bucket"], work, env)
    poll("s3rver ready", lambda: "ready" in s3.log_text() or (not s3.alive() and
                                                              _raise("s3rver exited: " + s3.log_text())))
    bucket_yaml = ("type: S3\nconfig:\n  bucket: auth-bucket\n  endpoint: 127.0.0.1:%d\n"
                   "  access_key: %s\n  secret_key: %s\n  http_config:\n    tls_config:\n"
                   "      ca_file: %s\n      server_name: s3.orrery.test\n"
                   % (s3port, S3_AK, S3_SK, ca))
    bucket_file = write(os.path.join(work, "bucket.yml"), bucket_yaml)

    # ---- web configs
    web = write(os.path.join(work, "web.yml"),
                "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
                "    X-Frame-Options: deny\nbasic_auth_users:\n  alice: %s\n" % bcrypt(ALICE_PW))
    prom_web = write(os.path.join(work, "prom-web.yml"),
                     "basic_auth_users:\n  prom: %s\n" % bcrypt(PROM_PW))
    alice_pw_file = write(os.path.join(work, "alice.pw"), ALICE_PW + "\n")
    prom_pw_file = write(os.path.join(work, "prom.pw"), PROM_PW + "\n")
    token_file = write(os.path.join(work, "token"), TOKEN + "\n")
    AUTH = basic("alice", ALICE_PW)

    # ---- Prometheus 2.42, which also scrapes the gateway's /federate
    pport, gw_http, gw_grpc = free_port(), free_port(), free_port()
    prom_cfg = write(os.path.join(work, "prometheus.yml"), """global:
  scrape_interval: 1s
  external_labels: {region: eu}
scrape_configs:
- job_name: prometheus
  basic_auth: {username: prom, password_file: %s}
  static_configs: [{targets: ['127.0.0.1:%d']}]
- job_name: federate
  honor_labels: true
  metrics_path: /federate
  params: {'match[]': ['up{job="prometheus"}']}
  basic_auth: {username: alice, password_file: %s}
  static_configs: [{targets: ['127.0.0.1:%d']}]
- job_name: federate_wrong
  honor_labels: true
  metrics_path: /federate
  params: {'match[]': ['up{job="prometheus"}']}
  basic_auth: {username: alice, password: not-the-password}
  static_configs: [{targets: ['127.0.0.1:%d']}]
""" % (prom_pw_file, pport, alice_pw_file, gw_http, gw_http))
    prom = Proc("prometheus", [ARGS.prometheus, "--config.file=" + prom_cfg,
                               "--web.config.file=" + prom_web,
                               "--storage.tsdb.path=" + os.path.join(work, "prom-data"),
                               "--storage.tsdb.min-block-duration=2h",
                               "--storage.tsdb.max-block-duration=2h",
                               "--web.listen-address=127.0.0.1:%d" % pport], work)
    prom_url = "http://127.0.0.1:%d" % pport
    PROM_AUTH = basic("prom", PROM_PW)
    poll("prometheus ready", lambda: http(prom_url + "/-/ready", PROM_AUTH)[0] == 200
         if prom.alive() else _raise("prometheus exited: " + prom.log_text()[-2000:]))
    proxy = TokenProxy(prom_url, TOKEN, PROM_AUTH)

    # ---- sidecars, store, gateway
    def daemon(name, args):
        h, g = free_port(), free_port()
        p = Proc(name, [ARGS.orrery] + args + ["--http-address=127.0.0.1:%d" % h,
                                               "--grpc-address=127.0.0.1:%d" % g,
                                               "--http.config=" + web], work)
        p.url, p.grpc = "http://127.0.0.1:%d" % h, "127.0.0.1:%d" % g
        return p

    hc_a = write(os.path.join(work, "http-client-a.yml"),
                 "basic_auth:\n  username: prom\n  password_file: %s\n" % prom_pw_file)
    side_a = daemon("sidecar-a", ["sidecar", "--prometheus.url=" + prom_url,
                                  "--prometheus.http-client-file=" + hc_a,
                                  "--tsdb.path=" + os.path.join(work, "prom-data"),
                                  "--objstore.config=" + bucket_yaml])
    side_b = daemon("sidecar-b", ["sidecar", "--prometheus.url=http://127.0.0.1:%d" % proxy.port,
                                  "--prometheus.http-client=authorization:\n  type: Bearer\n"
                                  "  credentials_file: %s\n" % token_file,
                                  "--tsdb.path=" + os.path.join(work, "prom-data")])
    store = daemon("store", ["store", "--objstore.config-file=" + bucket_file,
                             "--data-dir=" + os.path.join(work, "store-data")])
    gw = Proc("gateway", [ARGS.orrery, "gateway", "--http-address=127.0.0.1:%d" % gw_http,
                          "--grpc-address=127.0.0.1:%d" % gw_grpc, "--http.config=" + web,
                          "--endpoint=" + side_a.grpc, "--endpoint=" + side_b.grpc,
                          "--endpoint=" + store.grpc], work)
    gw.url = "http://127.0.0.1:%d" % gw_http
    # gateways whose in-process sources read the protected Prometheus:
    # gw-src with --endpoint.http-client-file (basic auth, password file) for
    # remote read, /federate and the query API; gw-bad with a wrong inline
    # password and a password in the URL (both must stay masked).
    gw_src = daemon("gw-src", ["gateway", "--endpoint.http-client-file=" + hc_a,
                               "--federate.interval=1s",
                               "--endpoint.prometheus=%s;src=rr" % prom_url,
                               "--endpoint.federate=%s/federate?match[]=up;src=fed" % prom_url,
                               "--endpoint.promql=%s;src=pq" % prom_url])
    gw_bad = daemon("gw-bad", ["gateway",
                               "--endpoint.http-client=basic_auth:\n  username: prom\n"
                               "  password: %s\n" % WRONG_PW,
                               "--endpoint.prometheus=http://prom:%s@127.0.0.1:%d;src=bad"
                               % (URL_PW, pport),
                               "--endpoint.promql=http://prom:%s@127.0.0.1:%d;src=badpq"
                               % (URL_PW, pport)])
    for p in (side_a, side_b, store, gw, gw_src, gw_bad):
        poll(p.name + " ready", lambda p=p: (http(p.url + "/-/ready", AUTH)[0] == 200)
             if p.alive() else _raise("%s exited: %s" % (p.name, p.log_text()[-3000:])), 120)

    def stores_up():
        st, _, body = http(gw.url + "/api/v1/stores", AUTH)
        if st != 200:
            return False
        n = sum(1 for v in json.loads(body)["data"].values() for s in v
                if not s.get("lastError"))
        return n >= 3
    poll("gateway sees its 3 endpoints", stores_up, 120)

    # ---- a: curl against the API
    q = gw.url + "/api/v1/query?query=" + urllib.parse.quote('count(up{job="prometheus"})')
    st, h, body_none = curl([q])
    check("a: no credentials -> 401 with WWW-Authenticate: Basic",
          st == 401 and h.get("www-authenticate") == "Basic", "%d %s" % (st, h))
    check("a: the web config's headers on the 401",
          h.get("x-frame-options") == "deny" and h.get("x-content-type-options") == "nosniff", str(h))
    st_w, h_w, body_wrong = curl(["-u", "alice:wrong-password", q])
    st_u, h_u, body_unknown = curl(["-u", "mallory:" + ALICE_PW, q])
    check("a: wrong password and unknown user -> the same 401",
          st_w == st_u == 401 and body_wrong == body_unknown == body_none == "Unauthorized\n"
          and h_w.get("www-authenticate") == h_u.get("www-authenticate") == "Basic",
          "%d %d %r %r" % (st_w, st_u, body_wrong, body_unknown))

    def query_ok():
        st, h, body = curl(["-u", "alice:" + ALICE_PW, q])
        if st != 200:
            return None
        res = json.loads(body)["data"]["result"]
        return (st, h, res) if res else None
    got = poll("an answer through the gateway", query_ok, 90)
    check("a: with credentials -> 200 and data", got[0] == 200 and got[2], str(got[2])[:200])
    check("a: the web config's headers on the 200", got[1].get("x-frame-options") == "deny")
    st, h, _ = curl(["-u", "alice:" + ALICE_PW, gw.url + "/no/such/path"])
    check("a: the web config's headers on a 404", st == 404 and h.get("x-frame-options") == "deny",
          "%d" % st)
    for path in ("/-/healthy", "/-/ready", "/metrics"):
        st0 = curl([gw.url + path])[0]
        st1 = curl(["-u", "alice:" + ALICE_PW, gw.url + path])[0]
        check("a: %s protected as in Prometheus 2.42 (401 without, 200 with)" % path,
              st0 == 401 and st1 == 200, "%d %d" % (st0, st1))

    # ---- b: the sidecars' outgoing auth, the bucket over HTTPS
    def per_store_answers():
        st, _, body = http(gw.url + "/api/v1/stores", AUTH)
        return json.loads(body)["data"] if st == 200 else {}
    data = per_store_answers()
    check("b: the gateway lists sidecars and store without errors",
          sum(len(v) for v in data.values()) == 3 and
          all(not s.get("lastError") for v in data.values() for s in v), json.dumps(data)[:400])
    # sidecar B's series (remote read through the proxy) answer a query of
    # its own: ask its StoreAPI alone through a gateway-less path is not
    # possible, so count the proxy's traffic while the gateway queries.
    before = proxy.good
    poll("a query through sidecar B", lambda: query_ok() and proxy.good > before, 60)
    check("b: sidecar B reached Prometheus with the bearer token (file)",
          proxy.good > before and proxy.bad == 0, "good %d bad %d" % (proxy.good, proxy.bad))
    check("b: sidecar A uses the bucket over HTTPS (CA + server_name) with the run's keys",
          "cannot use the bucket" not in side_a.log_text() and side_a.alive())
    def metric(text, name):
        for ln in text.splitlines():
            if ln.startswith(name + " "):
                return float(ln.split()[1])
        return None
    st, _, m = http(store.url + "/metrics", AUTH)
    syncs, fails = metric(m, "thanos_blocks_meta_syncs_total"), metric(m, "thanos_blocks_meta_sync_failures_total")
    check("b: the store synced the HTTPS bucket with the run's keys (syncs > 0, no failure)",
          st == 200 and syncs and syncs > 0 and fails == 0, "%d syncs %s failures %s" % (st, syncs, fails))

    # the same bucket with a server_name its certificate does not carry:
    # refused, and the error names no key
    wrong = write(os.path.join(work, "bucket-wrong-name.yml"),
                  bucket_yaml.replace("server_name: s3.orrery.test", "server_name: other.test")
                  .replace("  access_key:", "  max_retries: 1\n  access_key:"))
    r = subprocess.run([ARGS.orrery, "tools", "bucket", "ls", "--objstore.config-file=" + wrong],
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    check("b: a tls_config.server_name the S3 certificate lacks -> refused, no key in the error",
          r.returncode != 0 and S3_AK not in out and S3_SK not in out, out.strip()[-300:])
    r = subprocess.run([ARGS.orrery, "tools", "bucket", "ls", "--objstore.config-file=" + bucket_file],
                       capture_output=True, text=True, timeout=120)
    check("b: the right server_name -> tools bucket ls works", r.returncode == 0,
          (r.stdout + r.stderr).strip()[-300:])

    # ---- b2: the gateway's in-process sources with --endpoint.http-client
    def src_counts():
        expr = urllib.parse.quote('count by (src) (up{job="prometheus",src=~"rr|fed|pq"})')
        st, _, body = http(gw_src.url + "/api/v1/query?query=" + expr, AUTH)
        if st != 200:
            return None
        got = {r["metric"].get("src"): float(r["value"][1]) for r in json.loads(body)["data"]["result"]}
        return got if set(got) == {"rr", "fed", "pq"} else None
    got = poll("gw-src answers from its three sources", src_counts, 90)
    check("b2: --endpoint.prometheus, --endpoint.federate and --endpoint.promql read the "
          "basic-auth Prometheus with --endpoint.http-client-file", got and all(v > 0 for v in got.values()),
          str(got))
    def bad_error():
        st, _, body = http(gw_bad.url + "/api/v1/stores", AUTH)
        if st != 200:
            return None
        for v in json.loads(body)["data"].values():
            for e in v:
                if e.get("lastError") and "401" in e["lastError"]:
                    return e
        return None
    e = poll("gw-bad's per-endpoint error", bad_error, 60)
    check("b2: a wrong password -> the endpoint's lastError in /api/v1/stores says HTTP 401 "
          "and its name masks the URL's password",
          e and e["name"] == "http://prom:xxxxx@127.0.0.1:%d" % pport, json.dumps(e)[:400])
    st, _, flags_bad = http(gw_bad.url + "/api/v1/status/flags", AUTH)
    check("b2: gw-bad's flags show --endpoint.http-client as <secret> and the URL masked",
          st == 200 and json.loads(flags_bad)["data"].get("endpoint.http-client") == "<secret>"
          and "prom:xxxxx@" in flags_bad, flags_bad[:400])

    # ---- c: Prometheus scrapes /federate with basic_auth
    st, _, body = curl(["-u", "alice:" + ALICE_PW, "-g",
                        gw.url + "/federate?match[]=" + urllib.parse.quote('up{job="prometheus"}')])
    check("c: /federate with credentials -> 200", st == 200, "%d %s" % (st, body[:300]))
    def prom_query(expr):
        st, _, body = http(prom_url + "/api/v1/query?query=" + urllib.parse.quote(expr), PROM_AUTH)
        return json.loads(body)["data"]["result"] if st == 200 else []

    def up(job):
        r = prom_query('up{job="%s"}' % job)
        return r[0]["value"][1] if r else None
    try:
        poll("federate scraped", lambda: up("federate") == "1" and up("federate_wrong") == "0", 60)
    except RuntimeError:
        st, _, body = http(prom_url + "/api/v1/targets", PROM_AUTH)
        log("targets: %d %s" % (st, body[:3000]))
        for t in json.loads(body)["data"]["activeTargets"] if st == 200 else []:
            log("target %s: %s %s" % (t["labels"].get("job"), t["health"], t["lastError"]))
    check("c: Prometheus scrapes the gateway's /federate with basic_auth (up 1)",
          up("federate") == "1")
    check("c: a wrong password in the scrape config -> up 0", up("federate_wrong") == "0")
    fed = poll("federated series", lambda: prom_query('count(up{region="eu"})'), 60)
    check("c: federated series (region=\"eu\") are in Prometheus", bool(fed), str(fed)[:200])

    # ---- d: SIGHUP
    good_web = open(web).read()
    write(web, "basic_auth_users:\n  alice: not-a-hash\n")
    gw.p.send_signal(signal.SIGHUP)
    poll("reload error logged", lambda: "Error reloading config" in gw.log_text(), 30)
    st = curl(["-u", "alice:" + ALICE_PW, gw.url + "/-/healthy"])[0]
    check("d: a bad file on SIGHUP keeps the old config", st == 200, "%d" % st)
    write(web, good_web.replace(good_web.split("alice: ")[1].strip(), bcrypt(NEW_PW)))
    gw.p.send_signal(signal.SIGHUP)
    poll("new password in force",
         lambda: curl(["-u", "alice:" + NEW_PW, gw.url + "/-/healthy"])[0] == 200, 30)
    st = curl(["-u", "alice:" + ALICE_PW, gw.url + "/-/healthy"])[0]
    check("d: after a good SIGHUP the new password works and the old one does not", st == 401,
          "%d" % st)
    write(web, good_web)
    gw.p.send_signal(signal.SIGHUP)
    poll("old password back",
         lambda: curl(["-u", "alice:" + ALICE_PW, gw.url + "/-/healthy"])[0] == 200, 30)

    # ---- e: a bad web config at start
    bad = write(os.path.join(work, "bad-web.yml"),
                "http_server_config:\n  http2: true\nbasic_auth_user:\n  a: b\n")
    r = subprocess.run([ARGS.orrery, "gateway", "--http-address=127.0.0.1:%d" % free_port(),
                        "--grpc-address=127.0.0.1:0", "--http.config=" + bad],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    check("e: a bad web config stops the daemon at start, naming the key",
          r.returncode == 1 and "field basic_auth_user not found" in out, out.strip()[:300])

    r = subprocess.run([ARGS.orrery, "gateway", "--http-address=127.0.0.1:%d" % free_port(),
                        "--grpc-address=127.0.0.1:0",
                        "--endpoint.http-client=basic_auth:\n  username: u\n  pasword: %s\n"
                        % WRONG_PW], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    check("e: a bad --endpoint.http-client stops the gateway at start, naming the key, not the value",
          r.returncode == 1 and "field pasword not found" in out and WRONG_PW not in out,
          out.strip()[:300])

    # ---- f: no secret in any output
    outputs = {}
    for p in (side_a, side_b, store, gw, gw_src, gw_bad):
        for path in ("/metrics", "/api/v1/status/flags", "/api/v1/stores",
                     "/api/v1/status/buildinfo", "/api/v1/status/config"):
            st, _, body = http(p.url + path, AUTH)
            outputs["%s %s (%d)" % (p.name, path, st)] = body
    # error answers too: a bad query, a wrong password
    outputs["gateway bad query"] = http(gw.url + "/api/v1/query?query=sum(", AUTH)[2]
    # gw-bad's sources fail: their warnings name the URL (masked)
    outputs["gw-bad query"] = http(gw_bad.url + "/api/v1/query?query=up", AUTH)[2]
    outputs["gw-bad sum query"] = http(gw_bad.url + "/api/v1/query?query=sum(up)", AUTH)[2]
    outputs["gateway 401"] = http(gw.url + "/api/v1/query?query=up", basic("alice", S3_SK))[2]
    # one more SIGHUP of each daemon, so its reload lines are in the logs
    for p in (side_a, side_b, store):
        p.p.send_signal(signal.SIGHUP)
    time.sleep(0)  # the logs are read after the stop below
    flags = outputs.get("gateway /api/v1/status/flags (200)", "")
    check("f: /api/v1/status/flags answers and shows http.config",
          '"http.config":"%s"' % web in flags, flags[:300])
    for p in (side_a, side_b, store, gw, gw_src, gw_bad):
        p.stop()
        outputs[p.name + " log"] = p.log_text()
    check_clean_exit((side_a, side_b, store, gw, gw_src, gw_bad))
    n_lines = sum(v.count("\n") for k, v in outputs.items() if k.endswith(" log"))
    leaks = ["%s in %s" % (what, where) for where, text in outputs.items()
             for what, s in SECRETS.items() if s in text]
    answered = sum(1 for k in outputs if k.endswith("(200)"))
    check("f: the grep reads real output (>= 40 log lines, >= 7 answers with 200: /metrics of each daemon and the gateway's status pages)",
          n_lines >= 40 and answered >= 7, "%d lines, %d answers" % (n_lines, answered))
    check("f: no secret in %d log lines and %d endpoint answers" %
          (n_lines, sum(1 for k in outputs if not k.endswith(" log"))), not leaks,
          "; ".join(leaks[:10]))


def cert(work, name, cn, ca, ca_key, san=None, days="2"):
    """A key and a certificate for |cn| signed by |ca|; returns (crt, key)."""
    key, csr, crt = (os.path.join(work, name + x) for x in (".key", ".csr", ".crt"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    args = ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", days]
    if san:
        args += ["-extfile", write(os.path.join(work, name + ".ext"), "subjectAltName=" + san + "\n")]
    openssl(*args)
    return crt, key


def make_ca(work, name):
    key, crt = os.path.join(work, name + ".key"), os.path.join(work, name + ".crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
            "-days", "2", "-subj", "/CN=" + name)
    return crt, key


def run_tls(work):
    """The gateway's HTTP API over TLS with client certificates
    (RequireAndVerifyClientCert) and basic auth, reached by curl and
    scraped by a Prometheus 2.42 (/federate, tls_config + basic_auth)."""
    PW = "alice-" + secrets.token_hex(10)
    ca, ca_key = make_ca(work, "ca")
    other_ca, other_key = make_ca(work, "other-ca")
    srv_crt, srv_key = cert(work, "gw", "gw.orrery.test", ca, ca_key,
                            "DNS:gw.orrery.test,IP:127.0.0.1")
    cli_crt, cli_key = cert(work, "client", "prometheus", ca, ca_key)
    bad_crt, bad_key = cert(work, "intruder", "intruder", other_ca, other_key)
    pw_file = write(os.path.join(work, "alice.pw"), PW + "\n")
    web = write(os.path.join(work, "web.yml"), """tls_server_config:
  cert_file: %s
  key_file: %s
  client_ca_file: %s
  client_auth_type: RequireAndVerifyClientCert
  min_version: TLS12
http_server_config:
  headers:
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: %s
""" % (srv_crt, srv_key, ca, bcrypt(PW)))

    pport, gw_http, gw_grpc = free_port(), free_port(), free_port()
    prom_cfg = write(os.path.join(work, "prometheus.yml"), """global:
  scrape_interval: 1s
  external_labels: {region: eu}
scrape_configs:
- job_name: prometheus
  static_configs: [{targets: ['127.0.0.1:%d']}]
- job_name: federate
  scheme: https
  honor_labels: true
  metrics_path: /federate
  params: {'match[]': ['up{job="prometheus"}']}
  basic_auth: {username: alice, password_file: %s}
  tls_config: {ca_file: %s, cert_file: %s, key_file: %s, server_name: gw.orrery.test}
  static_configs: [{targets: ['127.0.0.1:%d']}]
""" % (pport, pw_file, ca, cli_crt, cli_key, gw_http))
    prom = Proc("prometheus", [ARGS.prometheus, "--config.file=" + prom_cfg,
                               "--storage.tsdb.path=" + os.path.join(work, "prom-data"),
                               "--web.listen-address=127.0.0.1:%d" % pport], work)
    prom_url = "http://127.0.0.1:%d" % pport
    poll("prometheus ready", lambda: http(prom_url + "/-/ready")[0] == 200
         if prom.alive() else _raise("prometheus exited: " + prom.log_text()[-2000:]))
    sh, sg = free_port(), free_port()
    side = Proc("sidecar", [ARGS.orrery, "sidecar", "--prometheus.url=" + prom_url,
                            "--tsdb.path=" + os.path.join(work, "prom-data"),
                            "--http-address=127.0.0.1:%d" % sh,
                            "--grpc-address=127.0.0.1:%d" % sg], work)
    gw = Proc("gateway", [ARGS.orrery, "gateway", "--http-address=127.0.0.1:%d" % gw_http,
                          "--grpc-address=127.0.0.1:%d" % gw_grpc, "--http.config=" + web,
                          "--endpoint=127.0.0.1:%d" % sg], work)
    base = "https://127.0.0.1:%d" % gw_http
    tls_ok = ["--cacert", ca, "--cert", cli_crt, "--key", cli_key]
    q = base + "/api/v1/query?query=" + urllib.parse.quote('count(up{job="prometheus"})')

    def answered():
        if not gw.alive():
            _raise("gateway exited: " + gw.log_text()[-3000:])
        st, _, body = curl(tls_ok + ["-u", "alice:" + PW, q])
        return st == 200 and json.loads(body)["data"]["result"]
    poll("an answer over HTTPS", answered, 120)

    r = subprocess.run([ARGS.curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
                        "--cacert", ca, "-u", "alice:" + PW, q], capture_output=True, text=True)
    check("tls: no client certificate -> refused in the handshake (no HTTP answer)",
          r.returncode != 0 and r.stdout.strip() in ("000", ""), "curl exit %d, %s" % (r.returncode, r.stdout))
    r = subprocess.run([ARGS.curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
                        "--cacert", ca, "--cert", bad_crt, "--key", bad_key, "-u", "alice:" + PW, q],
                       capture_output=True, text=True)
    check("tls: a client certificate from another CA -> refused",
          r.returncode != 0 and r.stdout.strip() in ("000", ""), "curl exit %d, %s" % (r.returncode, r.stdout))
    check("tls: the refusal is logged with the peer's address",
          "TLS handshake failed" in gw.log_text() and "127.0.0.1:" in gw.log_text())
    st, h, body = curl(tls_ok + [q])
    check("tls: client certificate without credentials -> 401 WWW-Authenticate: Basic",
          st == 401 and h.get("www-authenticate") == "Basic", "%d %s" % (st, h))
    st, h, body = curl(tls_ok + ["-u", "alice:" + PW, q])
    check("tls: client certificate and credentials -> 200 with data",
          st == 200 and json.loads(body)["data"]["result"], "%d %s" % (st, body[:200]))
    check("tls: Strict-Transport-Security from the web config",
          h.get("strict-transport-security") == "max-age=31536000", str(h))
    r = subprocess.run([ARGS.curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
                        "http://127.0.0.1:%d/-/healthy" % gw_http], capture_output=True, text=True)
    check("tls: plaintext HTTP to the TLS port gets no HTTP answer", r.stdout.strip() in ("000", ""),
          r.stdout)

    def up():
        st, _, body = http(prom_url + "/api/v1/query?query=" + urllib.parse.quote('up{job="federate"}'))
        r = json.loads(body)["data"]["result"] if st == 200 else []
        return r[0]["value"][1] if r else None
    try:
        poll("federate over TLS scraped", lambda: up() == "1", 90)
    except RuntimeError:
        st, _, body = http(prom_url + "/api/v1/targets")
        log("targets: %s" % body[:2000])
    check("tls: Prometheus 2.42 scrapes /federate over TLS (client cert, basic_auth): up 1",
          up() == "1")
    def federated():
        st, _, body = http(prom_url + "/api/v1/query?query=" + urllib.parse.quote('count(up{region="eu"})'))
        return st == 200 and json.loads(body)["data"]["result"]
    try:
        poll("federated series", federated, 60)
    except RuntimeError:
        pass
    check("tls: federated series (region=\"eu\") are in Prometheus", federated())
    for p in (side, gw):
        p.stop()
    check_clean_exit((side, gw))


def check_clean_exit(daemons):
    """SIGTERM ends every daemon with status 0 and no sanitizer report."""
    for p in daemons:
        text = p.log_text()
        check("%s exits cleanly on SIGTERM" % p.name,
              p.p.returncode == 0 and "Sanitizer" not in text and "runtime error" not in text,
              "status %s %s" % (p.p.returncode, text[-1500:] if p.p.returncode else ""))


def _raise(msg):
    raise RuntimeError(msg)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["secrets", "tls"])
    for a in ("orrery", "prometheus", "curl", "openssl", "node", "node-dir"):
        ap.add_argument("--" + a, required=(a not in ("node", "node-dir")))
    ARGS = ap.parse_args()
    sys.exit(main())
