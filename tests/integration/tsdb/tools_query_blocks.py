#!/usr/bin/env python3
"""`orrery tools query` over a directory of two blocks, the older one's index
corrupt: a query whose time range lies in the newer block answers exactly as
over the newer block alone (the older block is not opened), and a query that
needs the older block fails with exit status 1 and names its index."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--orrery", required=True)
ap.add_argument("--fixture", required=True)
ARGS = ap.parse_args()
FAILED = []


def check(cond, msg):
    if not cond:
        FAILED.append(msg)
        print("FAIL: " + msg, file=sys.stderr)
    return cond


def fixture(parent, t0_ms):
    r = subprocess.run([ARGS.fixture, parent, str(t0_ms)], stdout=subprocess.PIPE, text=True,
                       check=True)
    return os.path.join(parent, r.stdout.split("\n", 1)[0].strip())


def query(blocks, t, expr):
    return subprocess.run([ARGS.orrery, "tools", "query", "--blocks=" + blocks, "--time=%d" % t,
                           "--", expr], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


with tempfile.TemporaryDirectory(prefix="tools_query_blocks.") as work:
    both = os.path.join(work, "both")
    alone = os.path.join(work, "alone")
    os.makedirs(both)
    os.makedirs(alone)
    old = fixture(both, 1700000000000)   # samples in [1700000009, 1700005643) s
    new = fixture(both, 1700010000000)   # samples in [1700010009, 1700015643) s
    fixture(alone, 1700010000000)        # the same samples as |new|, alone
    expr = 'sum by (job) (rate(fixture_requests_total[5m]))'
    want = query(alone, 1700012000, expr)
    check(want.returncode == 0, "query over the newer block alone: %s" % want.stderr)
    check(len(json.loads(want.stdout)["data"]["result"]) > 0, "no series: %s" % want.stdout)
    good = query(both, 1700012000, expr)
    check(good.returncode == 0 and good.stdout == want.stdout,
          "intact blocks: %d %s %s" % (good.returncode, good.stdout[:200], good.stderr))

    with open(os.path.join(old, "index"), "r+b") as f:
        f.write(b"\0\0\0\0")  # the magic number: the index does not open
    got = query(both, 1700012000, expr)
    check(got.returncode == 0, "newer range, older index corrupt: exit %d: %s" %
          (got.returncode, got.stderr))
    check(got.stdout == want.stdout, "newer range: %s != %s" % (got.stdout[:200], want.stdout[:200]))
    bad = query(both, 1700003000, expr)
    check(bad.returncode == 1, "older range: exit %d, want 1" % bad.returncode)
    check(os.path.join(old, "index") in bad.stdout + bad.stderr and "magic" in bad.stdout + bad.stderr,
          "older range names the corrupt index: %s %s" % (bad.stdout[:300], bad.stderr[:300]))

if FAILED:
    sys.exit(1)
print("ok: the older block opened only when a query needed it")
