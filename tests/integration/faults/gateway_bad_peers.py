#!/usr/bin/env python3
"""gateway_bad_peers.py: a peer's stream can't take the gateway's memory,
errors say who, data from a peer is checked at the boundary (issue 10,
items 3, 6 and 7).

Peers come from gateway_peer.js (grpc-js, our StoreAPI protos). For each
bad peer a fresh gateway gets two endpoints, an honest peer ("good", three
series fault_metric{i=...}) and the bad one, and a user queries
fault_metric. What the user must see:
  - 200 with the honest peer's series and a warning naming the bad peer's
    address and what was wrong (partial response, the default);
  - with partial_response=false, an error naming the bad peer;
  - the gateway's RSS (VmHWM from /proc) staying under 100 MB for the
    peers that stream forever, and back near the start afterwards;
  - a peer answering HTTP 500 shown as such in /api/v1/stores, not as a
    framing error; a gateway listed among its own endpoints shown as a
    query loop, /api/v1/series answering at once.
Usage: gateway_bad_peers.py --orrery BIN --node BIN --proto DIR --node-dir DIR"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway_common import (Proc, check, finish, free_port, http, log, rss_kb,  # noqa: E402
                            rss_settled, start_gateway, stop_all, stores_up, wait_for,
                            wait_ready)

HERE = os.path.dirname(os.path.abspath(__file__))
RSS_BOUND_KB = 100 * 1024
TIME_BOUND_S = 30  # the query timeout is 2 min; a bad peer must fail fast

# mode → (what the warning must say, streams forever)
BAD = {
    "nochunks": ("--query.max-series", True),
    "repeat": ("MiB held", True),
    "corrupt": ("corrupt XOR chunk", False),
    "badutf8": ("not valid UTF-8", False),
    "nul": ("NUL byte", False),
    "badname": ("invalid label name", False),
    "backwards": ("timestamps go backwards", False),
    "mismatch": ("not matching the request's matchers", False),
}


def start_peers(args, work, modes):
    p = subprocess.Popen([args.node, os.path.join(HERE, "gateway_peer.js"), args.proto,
                          args.node_dir] + modes, stdout=subprocess.PIPE,
                         stderr=open(os.path.join(work, "peers.log"), "w"), text=True)
    line = p.stdout.readline()
    if not line.startswith("READY "):
        p.kill()
        raise RuntimeError("peers did not start: %r (see %s/peers.log)" % (line, work))
    return p, json.loads(line[6:])


def one_bad(args, work, peers, mode):
    want, forever = BAD[mode]
    bad = peers[mode]
    # The default (500000) is reached in about 30 s at what node sends; a
    # tenth keeps the suite short and shows the same.
    extra = ["--query.max-series=50000"] if mode == "nochunks" else []
    gw = start_gateway(args.orrery, work, [peers["good"], bad], extra, name="gw-" + mode)
    try:
        wait_for("both endpoints up", lambda: stores_up(gw.url, 2), 30)
        base = rss_kb(gw.pid)
        st, body, dt = http("GET", gw.url + "/api/v1/query", {"query": "fault_metric"},
                            timeout=150)
        hwm = rss_kb(gw.pid, "VmHWM")
        after = rss_settled(gw.pid, base + (RSS_BOUND_KB or 10240) // 10)
        log("%s: %d in %.2f s, RSS %d kB before, peak %d kB, %d kB after: %s"
            % (mode, st, dt, base, hwm, after, body[:300]))
        d = json.loads(body) if st == 200 else {}
        res = d.get("data", {}).get("result", [])
        good = sorted(r["metric"].get("i") for r in res if r["metric"].get("peer") == "good")
        check("%s: 200 with the honest peer's 3 series" % mode, st == 200 and
              good == ["0", "1", "2"], "status %d, %s" % (st, body[:200]))
        warns = d.get("warnings", [])
        check("%s: a warning names the peer and says '%s'" % (mode, want),
              any(bad in w and want in w for w in warns), json.dumps(warns)[:400])
        if mode == "mismatch":
            check("mismatch: fake_metric is not in the result",
                  all(r["metric"].get("__name__") == "fault_metric" for r in res), body[:300])
        if forever:
            check("%s: answered within %d s" % (mode, TIME_BOUND_S), dt < TIME_BOUND_S,
                  "%.2f s" % dt)
            if RSS_BOUND_KB:
                check("%s: peak RSS under %d MB" % (mode, RSS_BOUND_KB // 1024),
                      hwm < RSS_BOUND_KB, "%d kB" % hwm)
                check("%s: RSS back near the start afterwards" % mode,
                      after < base + RSS_BOUND_KB // 10,
                      "%d kB before, %d kB after" % (base, after))
        st, body, dt = http("GET", gw.url + "/api/v1/query",
                            {"query": "fault_metric", "partial_response": "false"}, timeout=150)
        if mode == "mismatch":  # nothing asked for is lost: an answer, with the warning
            check("mismatch, partial_response=false: 200 with the warning",
                  st == 200 and bad in body, "%d %s" % (st, body[:300]))
        else:
            check("%s, partial_response=false: an error naming the peer" % mode,
                  st >= 400 and '"status":"error"' in body and bad in body and want in body,
                  "%d %s" % (st, body[:300]))
    finally:
        gw.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--node-dir", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--rss-mb", type=int, default=100,
                    help="peak RSS bound; 0: RSS only logged (sanitizers' allocator)")
    ap.add_argument("--work")
    args = ap.parse_args()
    global RSS_BOUND_KB
    RSS_BOUND_KB = args.rss_mb * 1024
    work = args.work or tempfile.mkdtemp(prefix="gw-bad-")
    modes = [m for m in BAD if not args.only or m in args.only.split(",")]
    peers_p = None
    try:
        peers_p, peers = start_peers(args, work, ["good"] + modes + ["http500"])
        for m in modes:
            one_bad(args, work, peers, m)

        # A peer that is no gRPC server at all, and the gateway itself.
        gw = start_gateway(args.orrery, work, [peers["good"], peers["http500"]], name="gw-http500")

        def last_error_of(addr):
            st, body, _ = http("GET", gw.url + "/api/v1/stores", timeout=5)
            for v in (json.loads(body).get("data") or {}).values():
                for e in v:
                    if e["name"] == addr and e.get("lastError"):
                        return e["lastError"]
            return None
        err = wait_for("an error for the HTTP 500 peer", lambda: last_error_of(peers["http500"]), 30)
        log("http500 peer: %s" % err)
        check("HTTP 500 peer: its error says HTTP status 500, not a framing error",
              "HTTP status 500" in err and "invalid message flag" not in err, err)
        st, body, dt = http("GET", gw.url + "/api/v1/query", {"query": "fault_metric"}, timeout=60)
        check("HTTP 500 peer: queries answer from the others",
              st == 200 and body.count('"peer":"good"') == 3, "%d %.2f s %s" % (st, dt, body[:200]))
        gw.stop()

        gp, hp = free_port(), free_port()
        me = "127.0.0.1:%d" % gp
        gws = Proc("gw-loop", [args.orrery, "gateway", "--http-address=127.0.0.1:%d" % hp,
                               "--grpc-address=" + me, "--endpoint=" + me,
                               "--endpoint=" + peers["good"]], work)
        gws.clean = True
        url = "http://127.0.0.1:%d" % hp
        wait_ready(url + "/-/ready", gws)

        def loop_error():
            st, body, _ = http("GET", url + "/api/v1/stores", timeout=5)
            for v in (json.loads(body).get("data") or {}).values():
                for e in v:
                    if e["name"] == me and e.get("lastError"):
                        return e["lastError"]
            return None
        err = wait_for("the self endpoint's error", loop_error, 30)
        check("gateway among its own endpoints: /api/v1/stores says query loop",
              "query loop" in err, err)
        wait_for("the honest peer up", lambda: stores_up(url, 1), 30)
        st, body, dt = http("GET", url + "/api/v1/series", {"match[]": "fault_metric"}, timeout=60)
        check("gateway among its own endpoints: /api/v1/series answers at once",
              st == 200 and dt < 10 and body.count('"peer":"good"') == 3,
              "%d %.2f s %s" % (st, dt, body[:200]))
        gws.stop()
    finally:
        stop_all()
        if peers_p:
            peers_p.kill()
            peers_p.wait()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
