#!/usr/bin/env python3
"""web_blocks.py: the blocks page in a real browser (headless chromium driven
by puppeteer-core, web_blocks.js), served by `orrery tools bucket web` and by
`orrery compact --wait`.

The bucket (FILESYSTEM) is made as the compactor tests make theirs
(compact/compact_test.py: promtool blocks given Thanos labels): group
{cluster="a"} three consecutive 2h blocks and two more overlapping the first
and the second, the second with a deletion mark (its overlap does not
count); {cluster="b", env="prod"} two blocks, one with a no-compact mark;
{cluster="e"} a 48h raw block and its 5m copy, made by a one-shot `orrery
compact` in a bucket of their own. Every block is
fresher than the default --consistency-delay, so the compactor serving the
page leaves the bucket as it is (checked after its first iteration).

HTTP checks here: /api/v1/blocks has Thanos's shape and every block's
meta.json as it is in the bucket, with its marks and size; /-/ready, /metrics,
the redirects under --web.route-prefix; a clean SIGTERM; a bad
--objstore.config is a CLI error. Browser checks in web_blocks.js; its
screenshots go to --artifacts. The compressed size of what the page loads is
reported. Exit 0 when every check passed, 1 otherwise.
"""
import argparse
import glob
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "compact"))
from portpick import free_port  # noqa: E402
from webtest import (check, failed, http, log, procs, run_browser, start,  # noqa: E402
                     stop_all, wait_until)
import compact_test as ct  # noqa: E402  (its block fixtures: make_blocks, set_labels)

H2 = 7200
T0 = (ct.T0 // 194400) * 194400  # promtool's 54h block range: the 48h block is one block


def label_key(ls):
    """A label set as the page titles it: {a="1", b="2"}."""
    return "{" + ", ".join("%s=%s" % (k, json.dumps(ls[k])) for k in sorted(ls)) + "}"


def tree(d):
    """Every file of the bucket with its size: what "unchanged" compares."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, d)] = os.path.getsize(p)
    return out


def expected_size(block_dir, m):
    files = (m.get("thanos") or {}).get("files") or []
    if files:
        return sum(f.get("size_bytes", 0) for f in files)
    return sum(s for rel, s in tree(block_dir).items()
               if os.path.basename(rel) not in ("deletion-mark.json", "no-compact-mark.json"))


def make_bucket(work, orrery_bin):
    bd = os.path.join(work, "bucket")
    os.makedirs(bd)
    groups = {}

    def put(blocks, labels):
        for b in blocks:
            dst = os.path.join(bd, os.path.basename(b))
            shutil.copytree(b, dst)
            ct.set_labels(dst, labels)
            groups.setdefault(label_key(labels), []).append(os.path.basename(b))
    a = ct.make_blocks(work, "a", 4, T0 * 1000, (T0 + 3 * H2) * 1000, 30000)
    # Two more over [0h30, 3h): one overlapping the first block, one the
    # second, which gets a deletion mark (so its overlap does not count).
    a_ovl = ct.make_blocks(work, "a2", 3, (T0 + 1800) * 1000, (T0 + 3 * 3600) * 1000, 30000)
    put(a + a_ovl, {"cluster": "a"})
    b = ct.make_blocks(work, "b", 3, (T0 + 3 * H2) * 1000, (T0 + 5 * H2) * 1000, 60000)
    put(b, {"cluster": "b", "env": "prod"})
    # {cluster="e"}: a 48h raw block and its 5m copy, downsampled by a
    # one-shot compactor in a bucket of their own.
    dsb = os.path.join(work, "bucket-ds")
    os.makedirs(dsb)
    e = ct.make_blocks(work, "e", 3, T0 * 1000, (T0 + 48 * 3600) * 1000, 60000,
                       extra=("--max-block-duration=54h",))
    for blk in e:
        dst = os.path.join(dsb, os.path.basename(blk))
        shutil.copytree(blk, dst)
        ct.set_labels(dst, {"cluster": "e"})
    r = subprocess.run([orrery_bin, "compact", "--objstore.config=" + ct.bucket_cfg(dsb),
                        "--data-dir=" + os.path.join(work, "data-ds"), "--consistency-delay=0s"],
                       capture_output=True, text=True, timeout=120)
    ds = [d for d in glob.glob(os.path.join(dsb, "*"))
          if ct.meta(d).get("thanos", {}).get("downsample", {}).get("resolution") == 300000]
    if not check("fixture: the 48h raw block got a 5m copy", r.returncode == 0 and len(e) == 1 and len(ds) == 1,
                 "exit %d, %d raw, %d 5m: %s" % (r.returncode, len(e), len(ds), r.stderr[-300:])):
        raise RuntimeError("no downsampled block")
    for d in [os.path.join(dsb, os.path.basename(e[0]))] + ds:
        shutil.copytree(d, os.path.join(bd, os.path.basename(d)))
        groups.setdefault(label_key({"cluster": "e"}), []).append(os.path.basename(d))
    # Marks, as a person puts them.
    marks = {os.path.basename(a[1]): "deletion-mark.json", os.path.basename(b[0]): "no-compact-mark.json"}
    for ulid, marker in marks.items():
        r = subprocess.run([orrery_bin, "tools", "bucket", "mark", "--objstore.config=" + ct.bucket_cfg(bd),
                            "--id=" + ulid, "--marker=" + marker, "--details=web_blocks test"],
                           capture_output=True, text=True, timeout=30)
        check("fixture: %s on %s" % (marker, ulid), r.returncode == 0, r.stderr)
    return bd, groups, marks


def overlapping(bd):
    """ULIDs overlapping another block of the same label set and resolution,
    blocks marked for deletion left out (as the compactor leaves them out)."""
    ms = [ct.meta(d) for d in sorted(glob.glob(os.path.join(bd, "*")))
          if not os.path.exists(os.path.join(d, "deletion-mark.json"))]
    out = set()
    for x in ms:
        for y in ms:
            if x is y:
                continue
            same = (x["thanos"]["labels"] == y["thanos"]["labels"]
                    and x["thanos"]["downsample"]["resolution"] == y["thanos"]["downsample"]["resolution"])
            if same and x["minTime"] < y["maxTime"] and y["minTime"] < x["maxTime"]:
                out.add(x["ulid"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--web-modules", required=True, help="web/node_modules")
    ap.add_argument("--artifacts", required=True, help="where the screenshots go")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.web_modules, "puppeteer-core")):
        log("web_blocks: %s/puppeteer-core is missing (scripts/bootstrap.sh runs npm ci in web/)"
            % args.web_modules)
        return 1
    ct.ARGS = argparse.Namespace(orrery=args.orrery, promtool=args.promtool)
    shutil.rmtree(args.artifacts, ignore_errors=True)
    os.makedirs(args.artifacts)
    work = tempfile.mkdtemp(prefix="orrery-webblocks-")
    try:
        run(args, work)
    except Exception as e:  # a setup failure is a failed check, with the logs kept
        check("setup", False, str(e))
    finally:
        stop_all()
        if not failed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("logs kept in " + work)
    log("web_blocks: %d check(s) failed: %s" % (len(failed), ", ".join(failed)) if failed
        else "web_blocks: all passed")
    return 1 if failed else 0


def run(args, work):
    t0 = time.monotonic()
    bd, groups, marks = make_bucket(work, args.orrery)
    cfg = ct.bucket_cfg(bd)
    dirs = sorted(os.path.basename(d) for d in glob.glob(os.path.join(bd, "*")))
    ovl = overlapping(bd)
    check("fixture: two blocks overlap, the deletion-marked one's overlap left out",
          len(ovl) == 2 and not ovl & set(u for u, m in marks.items() if m == "deletion-mark.json"),
          str(sorted(ovl)))
    log("bucket: %d blocks in %d groups, overlapping %s (made in %.1f s)"
        % (len(dirs), len(groups), sorted(ovl), time.monotonic() - t0))
    before = tree(bd)

    # ---- a bad bucket configuration is a CLI error
    for bad, what in (("type: NOPE\n", "unknown type"),
                      (ct.bucket_cfg(os.path.join(work, "no-such-dir")), "missing directory")):
        p = subprocess.run([args.orrery, "tools", "bucket", "web", "--objstore.config=" + bad,
                            "--http-address=127.0.0.1:%d" % free_port()],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        check("tools bucket web: a bad --objstore.config (%s) exits non-zero with the reason" % what,
              p.returncode not in (0, None) and p.stdout.strip() != "" and "listening" not in p.stdout,
              "exit %d: %s" % (p.returncode, p.stdout.strip()[-200:]))

    # ---- the two servers of the page
    web_port = free_port()
    web = start("bucket-web", [args.orrery, "tools", "bucket", "web", "--objstore.config=" + cfg,
                               "--http-address=127.0.0.1:%d" % web_port], work)
    base = "http://127.0.0.1:%d" % web_port
    cmp_port = free_port()
    cmp = start("compact", [args.orrery, "compact", "--wait", "--wait-interval=1h",
                            "--objstore.config=" + cfg, "--data-dir=" + os.path.join(work, "data-c"),
                            "--http-address=127.0.0.1:%d" % cmp_port, "--web.route-prefix=cmp/",
                            "--web.external-prefix=/ext/cmp", "--bucket-web-label=cluster"], work)
    base2 = "http://127.0.0.1:%d" % cmp_port
    wait_until("tools bucket web ready", lambda: http(base + "/-/ready")[0] == 200, procs)
    wait_until("the compactor's first iteration and its blocks page",
               lambda: re.search(r"^thanos_compact_iterations_total 1", http(base2 + "/metrics")[2].decode(), re.M)
               and http(base2 + "/cmp/api/v1/blocks")[0] == 200, procs)
    check("the compactor serving the page left the bucket unchanged", tree(bd) == before)

    # ---- /api/v1/blocks
    for name, b in (("tools bucket web", base), ("compact", base2 + "/cmp")):
        st, h, body = http(b + "/api/v1/blocks")
        j = json.loads(body)
        d = j.get("data") or {}
        check("%s: /api/v1/blocks has Thanos's shape" % name,
              st == 200 and h.get("Content-Type", "").startswith("application/json")
              and j.get("status") == "success" and set(d) == {"blocks", "label", "refreshedAt"}
              and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", d.get("refreshedAt", "")),
              "%s %s" % (st, body[:200]))
        blocks = {x["ulid"]: x for x in d.get("blocks", [])}
        check("%s: every block of the bucket, once" % name,
              sorted(blocks) == dirs and len(d["blocks"]) == len(dirs), "%s vs %s" % (sorted(blocks), dirs))
        bad = []
        for u in dirs:
            x = dict(blocks.get(u, {}))
            got_marks, size = x.pop("marks", None), x.pop("sizeBytes", None)
            m = ct.meta(os.path.join(bd, u))
            want_marks = {}
            for f, k in (("deletion-mark.json", "deletion"), ("no-compact-mark.json", "noCompact")):
                p = os.path.join(bd, u, f)
                if os.path.exists(p):
                    with open(p) as fh:
                        want_marks[k] = json.load(fh)
            if x != m or got_marks != want_marks or size != expected_size(os.path.join(bd, u), m):
                bad.append(u)
        check("%s: each block is its meta.json, with its marks and size" % name, not bad, " ".join(bad))
        check("%s: label is the flag's" % name, d.get("label") == ("" if name != "compact" else "cluster"),
              repr(d.get("label")))

    # ---- the page's paths, probes, metrics
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    opener = urllib.request.build_opener(NoRedirect)

    def location(url):
        try:
            opener.open(url, timeout=30)
            return 200, None
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Location")
    check("tools bucket web: / redirects to /blocks", location(base + "/") == (302, "/blocks"),
          str(location(base + "/")))
    for path in ("/cmp", "/"):
        check("compact: %s redirects to the external prefix's blocks page" % path,
              location(base2 + path) == (302, "/ext/cmp/blocks"), str(location(base2 + path)))
    st_root, _, _ = http(base2 + "/blocks")
    st_api_root, _, _ = http(base2 + "/api/v1/blocks")
    check("compact: the page and API are under the prefix, not at the root",
          http(base2 + "/cmp/blocks")[0] == 200 and st_root == 404 and st_api_root == 404,
          "%d %d" % (st_root, st_api_root))
    st_h, _, _ = http(base + "/-/healthy")
    st_m, _, metrics = http(base + "/metrics")
    check("tools bucket web: /-/healthy and /metrics", st_h == 200 and st_m == 200
          and b"process_resident_memory_bytes" in metrics, "%d %d" % (st_h, st_m))
    # Thanos's block fetcher metrics: every block loaded, the marked one counted
    # as marked-for-deletion too, at least one sync and no failure
    text = metrics.decode()
    fetcher = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^thanos_blocks_meta_(syncs_total|sync_failures_total|synced\{state="(?:loaded|marked-for-deletion|no-meta-json)"\}) (\S+)$',
        text, re.M)}
    want = {"syncs_total": None, "sync_failures_total": 0, 'synced{state="loaded"}': len(dirs),
            'synced{state="marked-for-deletion"}': 1, 'synced{state="no-meta-json"}': 0}
    check("tools bucket web: thanos_blocks_meta_* count the bucket's %d blocks" % len(dirs),
          set(fetcher) == set(want) and fetcher["syncs_total"] >= 1
          and all(fetcher[k] == v for k, v in want.items() if v is not None), str(fetcher))
    total = 0
    st, h, page = http(base + "/blocks", {"Accept-Encoding": "gzip"})
    total += len(page)
    html = gzip.decompress(page) if h.get("Content-Encoding") == "gzip" else page
    for f in re.findall(rb'(static/[a-zA-Z.]+)"', html):
        st, h, z = http(base + "/" + f.decode(), {"Accept-Encoding": "gzip"})
        check("/%s is served gzip" % f.decode(), st == 200 and h.get("Content-Encoding") == "gzip")
        total += len(z)
    log("compressed assets of the blocks page (blocks.html + %d files): %d bytes"
        % (len(re.findall(rb'static/', html)), total))

    # ---- the browser
    metas = {u: ct.meta(os.path.join(bd, u)) for u in dirs}
    e5 = [u for u in dirs if metas[u]["thanos"]["downsample"]["resolution"] == 300000]
    spec = {"base": base, "prefixed": base2 + "/cmp", "artifacts": args.artifacts,
            "chromium": args.chromium, "modules": args.web_modules,
            "profile": os.path.join(work, "chromium-profile"), "ulids": dirs,
            "groups": sorted(groups), "group_sizes": {k: len(v) for k, v in groups.items()},
            "cluster_titles": sorted({metas[u]["thanos"]["labels"]["cluster"] for u in dirs}),
            "overlapping": sorted(ovl), "deleted": [u for u, m in marks.items() if m == "deletion-mark.json"][0],
            "downsampled": e5[0] if e5 else "", "metas": metas,
            "filter": "cluster=b", "filter_count": len(groups[label_key({"cluster": "b", "env": "prod"})])}
    run_browser(args.node, os.path.join(HERE, "web_blocks.js"), spec)

    # ---- a clean SIGTERM, as every daemon
    for p in (web, cmp):
        os.kill(p.pid, signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        with open(p.logpath) as f:
            text = f.read()
        check("%s: SIGTERM stops it cleanly (exit 0, logfmt)" % p.name,
              rc == 0 and re.search(r'^ts=\S+ level=info .*msg=stopped', text, re.M) is not None,
              "exit %s; %s" % (rc, text.strip().splitlines()[-1:] if text.strip() else ""))
    check("the bucket is unchanged at the end", tree(bd) == before)
    log("screenshots: %s (whole run %.1f s)" % (args.artifacts, time.monotonic() - t0))


if __name__ == "__main__":
    sys.exit(main())
