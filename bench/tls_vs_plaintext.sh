#!/bin/sh
# tls_vs_plaintext.sh: what TLS costs, as ratios to plaintext in one run.
#   http: wrk over HTTPS keep-alive against the gateway's /api/v1/query,
#         vs the same gateway setup in plaintext (requests/s, TLS/plain);
#   grpc: Series streams (every series of the bucket, one call after the
#         other) from `orrery store` over mTLS vs a plaintext store over the
#         same bucket, with our gRPC client (bench_grpc_series; time,
#         TLS/plain).
# Certificates are made with openssl (tests/integration/tls/mkcerts.sh).
# The gateway's HTTPS comes from the hidden ORRERY_HTTP_TLS_CERT/_KEY.
#
# Usage: bench/tls_vs_plaintext.sh [--build DIR] [--series N] [--blocks N]
#          [--duration S] [--connections N] [--runs N] [--smoke]
# Defaults: build/gcc, 20000 series x 4 blocks, wrk 10 s with 16
# connections, 5 Series calls. --smoke: 200 series x 1 block, 1 s, 1 call
# (checks the script works; the numbers mean little).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
exec python3 - "$ROOT" "$@" <<'PY'
import argparse, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = sys.argv[1]
ap = argparse.ArgumentParser(prog="tls_vs_plaintext.sh")
ap.add_argument("--build", default=os.path.join(ROOT, "build", "gcc"))
ap.add_argument("--series", type=int, default=20000)
ap.add_argument("--blocks", type=int, default=4)
ap.add_argument("--duration", type=int, default=10)
ap.add_argument("--connections", type=int, default=16)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--smoke", action="store_true")
args = ap.parse_args(sys.argv[2:])
if args.smoke:
    args.series, args.blocks, args.duration, args.connections, args.runs = 200, 1, 1, 4, 1
b = args.build
orrery = os.path.join(b, "cmd", "orrery")
fixture = os.path.join(b, "tests", "integration", "store_fixture")
client = os.path.join(b, "bench", "bench_grpc_series")
for x in (orrery, fixture, client):
    if not os.access(x, os.X_OK):
        sys.exit("tls_vs_plaintext: %s not built (cmake --build %s)" % (x, b))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import portpick  # noqa: E402

work = tempfile.mkdtemp(prefix="tls_bench.")
procs = []


def start(argv, env=None, name="p"):
    e = dict(os.environ)
    e.update(env or {})
    log = open(os.path.join(work, name + ".log"), "w")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=e)
    procs.append(p)
    return p


def wait_port(port, secs=60):
    end = time.time() + secs
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit("tls_vs_plaintext: port %d never opened" % port)


def wait_store_up(port, secs=60):
    end = time.time() + secs
    while time.time() < end:
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%d/api/v1/stores" % port, timeout=5).read().decode()
            if '"store":[' in body and '"lastError":null' in body:
                return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit("tls_vs_plaintext: the gateway on %d never saw its store" % port)


def wrk(url):
    out = subprocess.run(["wrk", "-t2", "-c%d" % args.connections, "-d%ds" % args.duration, url],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m or errs or float(m.group(1)) == 0:
        sys.exit("tls_vs_plaintext: wrk failed:\n" + out)
    return float(m.group(1))


def series(port, tls):
    cmd = [client, "127.0.0.1", str(port), str(args.runs), str(T0 * 1000), str(END * 1000)]
    if tls:
        cmd += [C("ca.crt"), C("client.crt"), C("client.key")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("tls_vs_plaintext: bench_grpc_series failed: " + out.stderr + out.stdout)
    return dict(kv.split("=") for kv in out.stdout.split())


status = 0
try:
    subprocess.run(["bash", os.path.join(ROOT, "tests", "integration", "tls", "mkcerts.sh"),
                    os.path.join(work, "certs")], check=True)
    C = lambda f: os.path.join(work, "certs", f)  # noqa: E731
    bucket = os.path.join(work, "bucket")
    os.makedirs(bucket)
    subprocess.run([fixture, bucket, str(args.series), str(args.blocks), "120"], check=True,
                   stdout=subprocess.DEVNULL)
    T0 = 1700000000
    END = T0 + 7200 * args.blocks
    objstore = "--objstore.config=type: FILESYSTEM\nconfig:\n  directory: %s\n" % bucket
    sp, st = portpick.free_port(), portpick.free_port()
    start([orrery, "store", objstore, "--data-dir=" + os.path.join(work, "dp"),
           "--grpc-address=127.0.0.1:%d" % sp, "--http-address=127.0.0.1:0"], name="store_plain")
    start([orrery, "store", objstore, "--data-dir=" + os.path.join(work, "dt"),
           "--grpc-address=127.0.0.1:%d" % st, "--http-address=127.0.0.1:0",
           "--grpc-server-tls-cert=" + C("server.crt"), "--grpc-server-tls-key=" + C("server.key"),
           "--grpc-server-tls-client-ca=" + C("ca.crt")], name="store_tls")
    wait_port(sp)
    wait_port(st)
    gp, gt = portpick.free_port(), portpick.free_port()
    start([orrery, "gateway", "--http-address=127.0.0.1:%d" % gp, "--grpc-address=127.0.0.1:0",
           "--endpoint=127.0.0.1:%d" % sp], name="gw_plain")
    start([orrery, "gateway", "--http-address=127.0.0.1:%d" % gt, "--grpc-address=127.0.0.1:0",
           "--endpoint=127.0.0.1:%d" % sp],
          env={"ORRERY_HTTP_TLS_CERT": C("server.crt"), "ORRERY_HTTP_TLS_KEY": C("server.key")},
          name="gw_tls")
    wait_store_up(gp)
    wait_port(gt)
    # the HTTPS gateway answers the same (curl trusts our CA)
    # one series: the HTTP path's cost, not the fan-out's, dominates
    q = "/api/v1/query?query=fixture_metric%%7Binstance%%3D%%22i-00000007%%22%%7D&time=%d" % (T0 + 3600)
    a = urllib.request.urlopen("http://127.0.0.1:%d%s" % (gp, q)).read()
    bt = subprocess.run(["curl", "-sS", "--cacert", C("ca.crt"), "https://localhost:%d%s" % (gt, q)],
                        capture_output=True).stdout
    if a != bt or b'"success"' not in a:
        print("DIFF: the HTTPS gateway answers %r, the plaintext one %r" % (bt[:200], a[:200]))
        status = 1
    # the series store calls once each way before timing (the stores' caches warm)
    series(sp, False)
    series(st, True)
    http_plain = wrk("http://127.0.0.1:%d%s" % (gp, q))
    http_tls = wrk("https://localhost:%d%s" % (gt, q))
    g_plain = series(sp, False)
    g_tls = series(st, True)
    if g_plain["series"] != g_tls["series"] or g_plain["bytes"] != g_tls["bytes"]:
        print("DIFF: Series over TLS gave %s, plaintext %s" % (g_tls, g_plain))
        status = 1
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    print("%-46s %12s %12s %8s" % ("what", "plaintext", "TLS", "ratio"))
    print("%-46s %12.0f %12.0f %8.2f" % ("HTTP /api/v1/query keep-alive, requests/s", http_plain,
                                         http_tls, ratio(http_tls, http_plain)))
    sp_s, st_s = float(g_plain["seconds"]), float(g_tls["seconds"])
    print("%-46s %12.3f %12.3f %8.2f" % ("gRPC Series x%d (%s series, %s B), seconds" % (
        args.runs, g_plain["series"], g_plain["bytes"]), sp_s, st_s, ratio(st_s, sp_s)))
    print("%-46s %12s %12s %8.2f" % ("gRPC Series throughput, MiB/s", g_plain["mib_per_s"],
                                     g_tls["mib_per_s"],
                                     ratio(float(g_tls["mib_per_s"]), float(g_plain["mib_per_s"]))))
finally:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(work, ignore_errors=True)
sys.exit(status)
PY
