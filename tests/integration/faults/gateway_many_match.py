#!/usr/bin/env python3
"""gateway_many_match.py: many match[] selectors fan out once (issue 10,
item 2).

One honest StoreAPI peer (gateway_peer.js "good:50000": fault_metric{i="0"}
... {i="49999"}) behind a gateway with default flags. A user POSTs 50,000
selectors fault_metric{i="k"} to /api/v1/series and to /federate. What the
user must see: every one of the 50,000 series once, the gateway's peak RSS
(VmHWM) under 100 MB and its RSS back near the start afterwards, and a small
query sent meanwhile answered without a delay of seconds.
Usage: gateway_many_match.py --orrery BIN --node BIN --proto DIR --node-dir DIR"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway_bad_peers import start_peers  # noqa: E402
from gateway_common import (check, finish, http, log, rss_kb, rss_settled,  # noqa: E402
                            start_gateway, stop_all, stores_up, wait_for)

N = 50000
RSS_BOUND_KB = 100 * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--node-dir", required=True)
    ap.add_argument("--rss-mb", type=int, default=100,
                    help="peak RSS bound; 0: RSS only logged (sanitizers' allocator)")
    ap.add_argument("--work")
    args = ap.parse_args()
    global RSS_BOUND_KB
    RSS_BOUND_KB = args.rss_mb * 1024
    work = args.work or tempfile.mkdtemp(prefix="gw-many-")
    peers_p = None
    try:
        peers_p, peers = start_peers(args, work, ["good:%d" % N])
        gw = start_gateway(args.orrery, work, [peers["good"]])
        wait_for("the peer up", lambda: stores_up(gw.url, 1), 30)
        body = "&".join("match%%5B%%5D=fault_metric%%7Bi%%3D%%22%d%%22%%7D" % k
                        for k in range(N)).encode()
        log("request body: %d bytes, %d selectors" % (len(body), N))
        base = rss_kb(gw.pid)
        for path, count in (("/api/v1/series", lambda b: b.count('"__name__"')),
                            ("/federate", lambda b: b.count("fault_metric{"))):
            side = {}

            def small():
                time.sleep(0.3)  # lands while the big request is being served
                st, b, dt = http("GET", gw.url + "/api/v1/query", {"query": "vector(1)"},
                                 timeout=60)
                side.update(st=st, dt=dt)
            th = threading.Thread(target=small)
            th.start()
            st, b, dt = http("POST", gw.url + path, body=body, timeout=120)
            th.join()
            hwm = rss_kb(gw.pid, "VmHWM")
            after = rss_settled(gw.pid, base + (RSS_BOUND_KB or 10240) // 10)
            n = count(b) if st == 200 else 0
            log("%s with %d selectors: %d in %.2f s, %d series; RSS %d kB before, peak %d kB, "
                "%d kB after; a small query meanwhile: %s in %.2f s"
                % (path, N, st, dt, n, base, hwm, after, side.get("st"), side.get("dt", -1)))
            check("%s: 200 with all %d series" % (path, N), st == 200 and n == N,
                  "status %d, %d series: %s" % (st, n, b[:200]))
            if RSS_BOUND_KB:
                check("%s: peak RSS under %d MB" % (path, RSS_BOUND_KB // 1024),
                      hwm < RSS_BOUND_KB, "%d kB" % hwm)
                check("%s: RSS back near the start afterwards" % path,
                      after < base + RSS_BOUND_KB // 10,
                      "%d kB before, %d kB after" % (base, after))
            check("%s: a small query meanwhile answers within 3 s" % path,
                  side.get("st") == 200 and side.get("dt", 99) < 3, repr(side))

        # Many selectors are parsed off the loop: a bad one among them gets
        # the answer it gets alone (Prometheus's error), and the good ones
        # before it are not half-served.
        goods = [("match[]", 'fault_metric{i="%d"}' % k) for k in range(200)]
        for path, bad in (("/api/v1/series", 'fault_metric{i="1"'),
                          ("/api/v1/series", '{i=""}'),
                          ("/federate", 'fault_metric{i="1"')):
            st1, b1, _ = http("POST", gw.url + path, [("match[]", bad)])
            st2, b2, _ = http("POST", gw.url + path, goods + [("match[]", bad)])
            check("%s: %s after 200 good selectors answers as alone" % (path, bad),
                  st1 == 400 and st2 == 400 and b1 == b2 and ("error" in b1 or "parse" in b1),
                  "alone: %d %s; after 200: %d %s" % (st1, b1[:200], st2, b2[:200]))
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
