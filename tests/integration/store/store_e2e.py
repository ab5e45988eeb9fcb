#!/usr/bin/env python3
"""store_e2e.py MODE: `orrery store` end to end, on 127.0.0.1 with free ports;
every process started here is stopped by PID on every exit path.

Modes:
  timeline  A gateway over a sidecar beside Prometheus holding the recent
            block and a store holding every block (overlapping the
            sidecar's range): range queries over the whole timeline equal a
            reference Prometheus holding all blocks (no gap, no double
            counting).
  serving   Limits (series, samples, downloaded bytes: a RESOURCE_EXHAUSTED
            naming the flag, before the fetch), the index cache (a repeated
            query reads no postings or series from the bucket, per the
            metrics), a block with a corrupt index and a block with a
            corrupt chunk file (errors for those, the others served),
            Info/labels through the gateway, /metrics names; the lazy
            index-header reader (unmapped when idle, mapped again by a
            query, same answers) and thanos_blocks_meta_synced{state}.
  memcached The index cache in a real memcached (--index-cache.config
            type: MEMCACHED): a repeated query reads no postings or series
            from the bucket; with memcached stopped the same query still
            answers the same (from the bucket).
  sharding  Label sharding (--selector.relabel-config): every block twice,
            as region=eu and region=us, under fresh ULIDs; two stores with
            hashmod (modulus 2) on __block_id keeping shard 0 and 1 serve
            disjoint sets whose union is every block (the split computed
            here with hashlib's md5, Prometheus's definition), a gateway
            over both answers as one store over all; a keep on region=eu
            serves only the eu blocks.
  s3        The store over s3rver: answers as over the filesystem; with
            s3rver stopped mid-way a query fails naming the bucket (a
            warning with partial response); after s3rver is back queries
            work again without a restart.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "promql"))
sys.path.insert(0, os.path.join(HERE, ".."))
import promql_diff as pd  # noqa: E402
from portpick import free_port  # noqa: E402

FAILS = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILS.append(what)


def get(base, path, params=()):
    url = base + path + ("?" + urllib.parse.urlencode(list(params)) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(base, name, labels=""):
    """Sum of the samples of |name| whose label text contains |labels|."""
    _, body = get(base, "/metrics")
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def start_store(orrery, work, bucket_yaml, extra=(), name="store"):
    http, grpc = free_port(), free_port()
    st = pd.Daemon([orrery, "store", "--objstore.config=" + bucket_yaml,
                    "--data-dir=" + os.path.join(work, name + "-data"),
                    "--http-address=127.0.0.1:%d" % http, "--grpc-address=127.0.0.1:%d" % grpc]
                   + list(extra), work, name)
    st.base = "http://127.0.0.1:%d" % http
    st.wait_url(st.base + "/-/ready", lambda b: True)
    st.grpc = grpc
    return st


def start_gateway(orrery, work, endpoints, n_up, extra=()):
    http, grpc = free_port(), free_port()
    gw = pd.Daemon([orrery, "gateway", "--http-address=127.0.0.1:%d" % http,
                    "--grpc-address=127.0.0.1:%d" % grpc]
                   + ["--endpoint=127.0.0.1:%d" % p for p in endpoints] + list(extra),
                   work, "gateway-%d" % http)
    gw.base = "http://127.0.0.1:%d" % http

    def up(body):
        groups = json.loads(body).get("data") or {}
        st = [e for g in groups.values() for e in g]
        return sum(1 for e in st if e.get("lastError") is None and e.get("minTime") is not None) >= n_up

    gw.wait_url(gw.base + "/-/ready", lambda b: True)
    gw.wait_url(gw.base + "/api/v1/stores", up)
    return gw


def set_ext_labels(block_dir, labels):
    p = os.path.join(block_dir, "meta.json")
    with open(p) as f:
        m = json.load(f)
    m["thanos"] = {"version": 1, "labels": labels, "downsample": {"resolution": 0},
                   "source": "sidecar"}
    with open(p, "w") as f:
        json.dump(m, f, indent="\t")


def block_dirs(blocks):
    out = []
    for b in sorted(os.listdir(blocks)):
        if os.path.isfile(os.path.join(blocks, b, "meta.json")):
            with open(os.path.join(blocks, b, "meta.json")) as f:
                out.append((json.load(f)["minTime"], b))
    return [b for _, b in sorted(out)]


def results(body, drop=()):
    """The answer's warnings and series (sorted), without the labels in |drop|."""
    d = json.loads(body)
    if d.get("status") != "success":
        return d
    res = []
    for r in d["data"]["result"]:
        r["metric"] = {k: v for k, v in r["metric"].items() if k not in drop}
        res.append(json.dumps(r, sort_keys=True))
    return {"warnings": d.get("warnings"), "result": sorted(res)}


RANGE = [("start", "1700000000"), ("end", "1700010800"), ("step", "60")]
TIMELINE_QUERIES = [
    "sum(count_over_time(up[2m]))",
    "sum by (job) (rate(http_requests_total[5m]))",
    "count_over_time(temperature_celsius[10m])",
    "max(temperature_celsius)",
    "up",
]


def mode_timeline(a, work):
    blocks = pd.make_blocks(a.promtool, work)
    names = block_dirs(blocks)
    check(len(names) >= 2, "promtool wrote %d blocks (want at least 2)" % len(names))
    ext = {"cluster": "eu1"}
    for b in names:
        set_ext_labels(os.path.join(blocks, b), ext)
    # The reference: every block in one Prometheus.
    ref_data = os.path.join(work, "ref-data")
    shutil.copytree(blocks, ref_data)
    ref = pd.Prometheus(a.prometheus, ref_data, work)
    procs = [ref]
    try:
        # The live side: a Prometheus with only the newest block, external
        # labels as the bucket's, behind a sidecar.
        live_data = os.path.join(work, "live-data")
        os.makedirs(live_data)
        shutil.copytree(os.path.join(blocks, names[-1]), os.path.join(live_data, names[-1]))
        cfg = os.path.join(work, "live.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1h\n  external_labels:\n    cluster: eu1\n"
                    "scrape_configs: []\n")
        pport = free_port()
        live = pd.Daemon([a.prometheus, "--config.file=" + cfg, "--storage.tsdb.path=" + live_data,
                          "--storage.tsdb.retention.time=100y",
                          "--web.listen-address=127.0.0.1:%d" % pport], work, "live-prometheus")
        procs.append(live)
        live.wait_url("http://127.0.0.1:%d/-/ready" % pport, lambda b: True)
        shttp, sgrpc = free_port(), free_port()
        sc = pd.Daemon([a.orrery, "sidecar", "--prometheus.url=http://127.0.0.1:%d" % pport,
                        "--http-address=127.0.0.1:%d" % shttp,
                        "--grpc-address=127.0.0.1:%d" % sgrpc], work, "sidecar")
        procs.append(sc)
        sc.wait_url("http://127.0.0.1:%d/-/ready" % shttp, lambda b: True)
        # The bucket: every block (the newest overlaps the sidecar's).
        bdir = os.path.join(work, "bucket")
        os.makedirs(bdir)
        yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
        pd.upload_blocks(a.orrery, blocks, yaml)
        st = start_store(a.orrery, work, yaml)
        procs.append(st)
        gw = start_gateway(a.orrery, work, [sgrpc, st.grpc], 2)
        procs.append(gw)
        ref.wait_ready()
        _, body = get(gw.base, "/api/v1/stores")
        info = {e["name"]: (e["minTime"], e["maxTime"]) for g in json.loads(body)["data"].values() for e in g}
        check(len(info) == 2, "gateway sees sidecar and store: %s" % info)
        for q in TIMELINE_QUERIES:
            _, pb = get(ref.base, "/api/v1/query_range", [("query", q)] + RANGE)
            _, ob = get(gw.base, "/api/v1/query_range", [("query", q)] + RANGE)
            # The reference has no external labels: compare without ours.
            pr, orr = results(pb), results(ob, drop=("cluster",))
            check(pr == orr and "result" in pr and pr["result"],
                  "timeline %s: gateway(sidecar+store) == Prometheus(all blocks)" % q
                  + ("" if pr == orr else "\n  prometheus %s\n  orrery     %s" % (str(pr)[:400], str(orr)[:400])))
        # A gateway is ready once its first Info round is over: a query sent
        # right after /-/ready (no wait for /api/v1/stores) already fans out
        # to the store.
        http3, grpc3 = free_port(), free_port()
        gw3 = pd.Daemon([a.orrery, "gateway", "--http-address=127.0.0.1:%d" % http3,
                         "--grpc-address=127.0.0.1:%d" % grpc3,
                         "--endpoint=127.0.0.1:%d" % st.grpc], work, "gateway-first-query")
        procs.append(gw3)
        gw3.base = "http://127.0.0.1:%d" % http3
        # Polled without a pause, so the query follows readiness at once.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get(gw3.base, "/-/ready")[0] == 200:
                    break
            except OSError:
                pass  # not listening yet
            if gw3.proc.poll() is not None:
                raise RuntimeError("gateway exited; log: %s" % gw3.logpath)
        _, ob = get(gw3.base, "/api/v1/query_range", [("query", TIMELINE_QUERIES[0])] + RANGE)
        _, pb = get(ref.base, "/api/v1/query_range", [("query", TIMELINE_QUERIES[0])] + RANGE)
        pr, orr = results(pb), results(ob, drop=("cluster",))
        check(pr == orr and "result" in pr and pr["result"],
              "the first query right after the gateway's /-/ready has the store's series"
              + ("" if pr == orr else "\n  prometheus %s\n  orrery     %s" % (str(pr)[:300], str(orr)[:300])))
        # The store alone covers the old part: the sidecar alone leaves a gap.
        gw2 = start_gateway(a.orrery, work, [sgrpc], 1)
        procs.append(gw2)
        _, ob = get(gw2.base, "/api/v1/query_range", [("query", TIMELINE_QUERIES[0])] + RANGE)
        _, pb = get(ref.base, "/api/v1/query_range", [("query", TIMELINE_QUERIES[0])] + RANGE)
        check(results(ob) != results(pb), "the sidecar alone does not cover the timeline (control)")
    finally:
        for p in reversed(procs):
            p.stop()


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(rng):
    return rng.choice("01") + "".join(rng.choice(CROCKFORD) for _ in range(25))


def hashmod(value, modulus):
    """Prometheus's hashmod: the last 8 bytes of the md5 sum, big-endian, mod."""
    import hashlib
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


def served_blocks(st, data_dir):
    """The blocks a store serves: its thanos_bucket_store_blocks_loaded and
    the block folders of its data dir."""
    ids = sorted(d for d in os.listdir(data_dir) if len(d) == 26) if os.path.isdir(data_dir) else []
    return int(metric(st.base, "thanos_bucket_store_blocks_loaded")), ids


def mode_sharding(a, work):
    import random
    rng = random.Random()
    blocks = pd.make_blocks(a.promtool, work)
    names = block_dirs(blocks)
    # Every block twice (region eu and us) under fresh ULIDs (also its
    # compaction.sources, so no copy is a duplicate of another), drawn until
    # both hashmod shards get some blocks.
    sharded = os.path.join(work, "sharded")
    while True:
        ids = [new_ulid(rng) for _ in range(2 * len(names))]
        if len({hashmod(i, 2) for i in ids}) == 2 and len(set(ids)) == len(ids):
            break
    region = {}
    for k, b in enumerate(names):
        for j, r in enumerate(("eu", "us")):
            nid = ids[2 * k + j]
            dst = os.path.join(sharded, nid)
            shutil.copytree(os.path.join(blocks, b), dst)
            mp = os.path.join(dst, "meta.json")
            with open(mp) as f:
                m = json.load(f)
            m["ulid"] = nid
            m.setdefault("compaction", {})["sources"] = [nid]
            with open(mp, "w") as f:
                json.dump(m, f, indent="\t")
            set_ext_labels(dst, {"region": r})
            region[nid] = r
    bdir = os.path.join(work, "bucket")
    os.makedirs(bdir)
    yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
    pd.upload_blocks(a.orrery, sharded, yaml)
    everything = sorted(ids)
    want = {0: sorted(i for i in ids if hashmod(i, 2) == 0), 1: sorted(i for i in ids if hashmod(i, 2) == 1)}
    shard_cfg = ("- action: hashmod\n  source_labels: [__block_id]\n  modulus: 2\n  target_label: shard\n"
                 "- action: keep\n  source_labels: [shard]\n  regex: '%d'\n")
    procs = []
    try:
        st_all = start_store(a.orrery, work, yaml, [], "store-all")
        procs.append(st_all)
        shards = []
        for k in (0, 1):
            cfgf = os.path.join(work, "shard%d.yml" % k)
            with open(cfgf, "w") as f:
                f.write(shard_cfg % k)
            # shard 0 reads its rules from a file, shard 1 from the flag's text
            flag = (["--selector.relabel-config-file=" + cfgf] if k == 0
                    else ["--selector.relabel-config=" + shard_cfg % k])
            st = start_store(a.orrery, work, yaml, flag, "store-shard%d" % k)
            procs.append(st)
            shards.append(st)
        n_all, dirs_all = served_blocks(st_all, os.path.join(work, "store-all-data"))
        check(n_all == len(everything) and dirs_all == everything,
              "unsharded store serves all %d blocks (%d, %s)" % (len(everything), n_all, dirs_all))
        got = {}
        for k in (0, 1):
            n, dirs = served_blocks(shards[k], os.path.join(work, "store-shard%d-data" % k))
            got[k] = dirs
            check(n == len(want[k]) and dirs == want[k],
                  "shard %d serves exactly the blocks whose md5 hashmod 2 is %d: %s (want %s, loaded %d)"
                  % (k, k, dirs, want[k], n))
        check(not set(got[0]) & set(got[1]) and sorted(got[0] + got[1]) == everything,
              "the shards are disjoint and together serve every block")
        gw_all = start_gateway(a.orrery, work, [st_all.grpc], 1)
        procs.append(gw_all)
        gw_sh = start_gateway(a.orrery, work, [shards[0].grpc, shards[1].grpc], 2)
        procs.append(gw_sh)
        for q in TIMELINE_QUERIES + ["count by (region) (up)"]:
            _, pb = get(gw_all.base, "/api/v1/query_range", [("query", q)] + RANGE)
            _, ob = get(gw_sh.base, "/api/v1/query_range", [("query", q)] + RANGE)
            one, two = results(pb), results(ob)
            check(one == two and "result" in one and one["result"],
                  "%s: gateway over both shards == one store over all blocks" % q
                  + ("" if one == two else "\n  all    %s\n  shards %s" % (str(one)[:400], str(two)[:400])))
        for p in reversed(procs):
            p.stop()
        procs = []
        eu = start_store(a.orrery, work, yaml,
                         ["--selector.relabel-config=- {action: keep, source_labels: [region], regex: eu}"],
                         "store-eu")
        procs.append(eu)
        n, dirs = served_blocks(eu, os.path.join(work, "store-eu-data"))
        want_eu = sorted(i for i in ids if region[i] == "eu")
        check(n == len(want_eu) and dirs == want_eu, "keep region=eu serves the eu blocks only: %s" % dirs)
        gw = start_gateway(a.orrery, work, [eu.grpc], 1)
        procs.append(gw)
        _, body = get(gw.base, "/api/v1/query", [("query", "count by (region) (up)"), ("time", "1700003600")])
        regions = sorted(r["metric"].get("region", "") for r in json.loads(body)["data"]["result"])
        check(regions == ["eu"], "through a gateway only region=eu is seen: %s" % regions)
        # A bad config: the store refuses to start, naming Prometheus's reason.
        r = subprocess.run([a.orrery, "store", "--objstore.config=" + yaml,
                            "--data-dir=" + os.path.join(work, "bad-data"),
                            "--http-address=127.0.0.1:%d" % free_port(), "--grpc-address=127.0.0.1:%d" % free_port(),
                            "--selector.relabel-config=- {action: hashmod, source_labels: [a], target_label: b}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        check(r.returncode != 0 and "requires non-zero modulus" in r.stdout,
              "a hashmod without modulus: exit %d, %s" % (r.returncode, r.stdout.strip()[-200:]))
    finally:
        for p in reversed(procs):
            p.stop()


def corrupt_file(path, off_from_end=None, off=None):
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        i = off if off is not None else len(data) - off_from_end
        data[i] ^= 0xFF
        f.seek(0)
        f.write(data)


def mode_serving(a, work):
    blocks = pd.make_blocks(a.promtool, work)
    names = block_dirs(blocks)
    bdir = os.path.join(work, "bucket")
    os.makedirs(bdir)
    yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
    pd.upload_blocks(a.orrery, blocks, yaml)
    procs = []
    try:
        # ---- limits: each names its flag and fails before the fetch
        st = start_store(a.orrery, work, yaml, ["--store.limits.request-series=5"], "store-limit")
        procs.append(st)
        gw = start_gateway(a.orrery, work, [st.grpc], 1)
        procs.append(gw)
        fetched0 = metric(st.base, "thanos_bucket_store_series_data_fetched_count", 'data_type="series"')
        code, body = get(gw.base, "/api/v1/query", [("query", '{__name__=~".+"}'), ("time", "1700003600"),
                                                      ("partial_response", "false")])
        check(code != 200 and "exceeded series limit" in body and "request-series" in body,
              "series limit: error names the limit (%d %s)" % (code, body[:300]))
        check(metric(st.base, "thanos_bucket_store_series_data_fetched_count", 'data_type="series"') == fetched0,
              "series limit: no series were read before failing")
        check(metric(st.base, "thanos_bucket_store_queries_dropped_total", 'reason="series"') >= 1,
              "series limit: thanos_bucket_store_queries_dropped_total{reason=series}")
        code, body = get(gw.base, "/api/v1/query", [("query", 'up{job="api-server"}'), ("time", "1700003600")])
        check(code == 200 and '"status":"success"' in body, "under the series limit a query works")
        code, body = get(gw.base, "/api/v1/query", [("query", '{__name__=~".+"}'), ("time", "1700003600")])
        check(code == 200 and "exceeded series limit" in body and "warnings" in body,
              "series limit with partial response: a warning")
        for p in reversed(procs):
            p.stop()
        procs = []
        st = start_store(a.orrery, work, yaml, ["--store.limits.request-samples=100"], "store-samples")
        procs.append(st)
        gw = start_gateway(a.orrery, work, [st.grpc], 1)
        procs.append(gw)
        code, body = get(gw.base, "/api/v1/query_range", [("query", "temperature_celsius")] + RANGE +
                         [("partial_response", "false")])
        check(code != 200 and "exceeded samples limit" in body and "request-samples" in body,
              "samples limit: error names the limit (%s)" % body[:300])
        for p in reversed(procs):
            p.stop()
        procs = []
        st = start_store(a.orrery, work, yaml, ["--store.grpc.downloaded-bytes-limit=2KB"], "store-bytes")
        procs.append(st)
        gw = start_gateway(a.orrery, work, [st.grpc], 1)
        procs.append(gw)
        code, body = get(gw.base, "/api/v1/query_range", [("query", "http_requests_total")] + RANGE +
                         [("partial_response", "false")])
        check(code != 200 and "exceeded bytes limit" in body and "downloaded-bytes-limit" in body,
              "bytes limit: error names the limit (%s)" % body[:300])
        for p in reversed(procs):
            p.stop()
        procs = []

        # ---- cache: a repeated query reads no postings or series
        st = start_store(a.orrery, work, yaml, [], "store-cache")
        procs.append(st)
        gw = start_gateway(a.orrery, work, [st.grpc], 1)
        procs.append(gw)
        q = [("query", 'rate(http_requests_total{job="api-server"}[5m])')] + RANGE
        code, first = get(gw.base, "/api/v1/query_range", q)
        if code != 200 or '"warnings"' in first or '"result":[]' in first:
            # Seen once in many runs: the gateway's first answer came without
            # the store's series. Shown, then asked again: what is checked
            # here is the store's cache.
            print("note: first answer %d %s" % (code, first[:300]))
            code, first = get(gw.base, "/api/v1/query_range", q)
        p1 = metric(st.base, "thanos_bucket_store_series_data_fetched_count", 'data_type="postings"')
        s1 = metric(st.base, "thanos_bucket_store_series_data_fetched_count", 'data_type="series"')
        h1 = metric(st.base, "thanos_store_index_cache_hits_total")
        code2, second = get(gw.base, "/api/v1/query_range", q)
        p2 = metric(st.base, "thanos_bucket_store_series_data_fetched_count", 'data_type="postings"')
        s2 = metric(st.base, "thanos_bucket_store_series_data_fetched_count", 'data_type="series"')
        h2 = metric(st.base, "thanos_store_index_cache_hits_total")
        check(p1 > 0 and s1 > 0, "cold query read postings and series (%g, %g)" % (p1, s1))
        check(p2 == p1 and s2 == s1 and h2 > h1 and first == second,
              "warm query read no postings or series (postings %g->%g, series %g->%g, hits %g->%g)"
              % (p1, p2, s1, s2, h1, h2))
        for name in ["thanos_bucket_store_blocks_loaded", "thanos_bucket_store_series_data_size_fetched_bytes_sum",
                     "thanos_store_index_cache_requests_total", "thanos_blocks_meta_syncs_total"]:
            check(metric(st.base, name) > 0, "/metrics has %s" % name)
        check(metric(st.base, "thanos_bucket_store_blocks_loaded") == len(names),
              "thanos_bucket_store_blocks_loaded = %d" % len(names))
        code, body = get(gw.base, "/api/v1/label/job/values")
        check('"api-server"' in body and '"node"' in body, "label values through the store: %s" % body[:200])
        code, body = get(gw.base, "/api/v1/series", [("match[]", 'up{job="api-server"}'), ("start", "1700000000"),
                                                     ("end", "1700010800")])
        check(code == 200 and body.count('"__name__":"up"') >= 2, "series through the store")
        for p in reversed(procs):
            p.stop()
        procs = []

        # ---- corruption: a block with a bad index is skipped at load; one
        # with a bad chunk file fails the queries that read it, naming it.
        bad_index = os.path.join(work, "bad-index")
        os.makedirs(bad_index)
        shutil.copytree(os.path.join(blocks, names[0]), os.path.join(bad_index, "01ARZ3NDEKTSV4RRFFQ69G5FAV"))
        m = os.path.join(bad_index, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "meta.json")
        with open(m) as f:
            meta = json.load(f)
        meta["ulid"] = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
        meta["compaction"]["sources"] = ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]
        with open(m, "w") as f:
            json.dump(meta, f)
        corrupt_file(os.path.join(bad_index, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "index"), off_from_end=10)
        pd.upload_blocks(a.orrery, bad_index, yaml)
        corrupt_file(os.path.join(bdir, names[-1], "chunks", "000001"), off=20)
        st = start_store(a.orrery, work, yaml, [], "store-corrupt")
        procs.append(st)
        gw = start_gateway(a.orrery, work, [st.grpc], 1)
        procs.append(gw)
        check(metric(st.base, "thanos_bucket_store_block_load_failures_total") >= 1,
              "corrupt index: block load failure counted")
        check(metric(st.base, "thanos_bucket_store_blocks_loaded") == len(names),
              "corrupt index: the other %d blocks loaded" % len(names))
        first_max = json.load(open(os.path.join(blocks, names[0], "meta.json")))["maxTime"] // 1000
        code, body = get(gw.base, "/api/v1/query", [("query", "count(up)"), ("time", str(first_max - 600))])
        check(code == 200 and '"status":"success"' in body and '"warnings"' not in body,
              "corrupt blocks: a query over the good block is answered (%s)" % body[:200])
        last_min = json.load(open(os.path.join(blocks, names[-1], "meta.json")))["minTime"] // 1000
        code, body = get(gw.base, "/api/v1/query_range", [("query", '{__name__=~".+"}'), ("start", str(last_min)),
                                                         ("end", str(last_min + 3600)), ("step", "60"),
                                                         ("partial_response", "false")])
        check(code != 200 and names[-1] in body and "chunk" in body,
              "corrupt chunk: the query reading it fails naming the block (%s)" % body[:300])
        code, body = get(st.base, "/-/healthy")
        check(code == 200, "the store is still healthy")
        for p in reversed(procs):
            p.stop()
        procs = []
        serving_lazy(a, work, yaml, names, procs)
        serving_meta_states(a, work, blocks, names, procs)
    finally:
        for p in reversed(procs):
            p.stop()


def wait_for(what, cond, timeout=60):
    """Polls |cond| until true (no fixed sleeps beyond the 20 ms poll)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    check(False, "timed out waiting for " + what)
    return False


LAZY = "thanos_bucket_store_indexheader_lazy_"


def serving_lazy(a, work, yaml, names, procs):
    """--store.enable-index-header-lazy-reader: no header mapped after the
    sync, mapped by the first query, unmapped after the idle timeout, mapped
    again by the next query with the same answers; many queries racing the
    unloader all answer the same."""
    ref = start_store(a.orrery, work, yaml, [], "store-eager")
    procs.append(ref)
    gw_ref = start_gateway(a.orrery, work, [ref.grpc], 1)
    procs.append(gw_ref)
    qs = [[("query", q)] + RANGE for q in TIMELINE_QUERIES]
    want = [results(get(gw_ref.base, "/api/v1/query_range", q)[1]) for q in qs]
    check(all(w.get("result") for w in want), "eager store answers the timeline queries")
    st = start_store(a.orrery, work, yaml, ["--store.enable-index-header-lazy-reader",
                                            "--store.index-header-lazy-reader-idle-timeout=300ms"],
                     "store-lazy")
    procs.append(st)
    gw = start_gateway(a.orrery, work, [st.grpc], 1)
    procs.append(gw)
    check(metric(st.base, "thanos_bucket_store_blocks_loaded") == len(names),
          "lazy: %d blocks loaded" % len(names))
    loads0 = metric(st.base, LAZY + "load_total")
    check(loads0 == 0, "lazy: no index-header mapped by the sync (%g loads)" % loads0)
    got = [results(get(gw.base, "/api/v1/query_range", q)[1]) for q in qs]
    check(got == want, "lazy: first answers equal the eager store's"
          + ("" if got == want else "\n  eager %s\n  lazy  %s" % (str(want)[:600], str(got)[:600])))
    loads1 = metric(st.base, LAZY + "load_total")
    check(loads1 >= 1 and metric(st.base, LAZY + "load_failed_total") == 0,
          "lazy: the queries mapped headers (%g loads, none failed)" % loads1)
    check(metric(st.base, LAZY + "load_duration_seconds_count") == loads1,
          "lazy: %sload_duration_seconds observed each load" % LAZY)
    wait_for("idle headers to be unmapped",
             lambda: metric(st.base, LAZY + "unload_total") >= loads1)
    unloads = metric(st.base, LAZY + "unload_total")
    check(unloads == loads1, "lazy: every mapped header unmapped after the idle timeout (%g of %g)"
          % (unloads, loads1))
    got = [results(get(gw.base, "/api/v1/query_range", q)[1]) for q in qs]
    loads2 = metric(st.base, LAZY + "load_total")
    check(got == want and loads2 > loads1,
          "lazy: after unloading the same answers, headers mapped again (%g -> %g loads)" % (loads1, loads2)
          + ("" if got == want else "\n  eager %s\n  lazy  %s" % (str(want)[:600], str(got)[:600])))
    # Queries racing the unloader (timeout 300 ms, checked every 30 ms): in
    # each round 4 threads start their queries at random points around the
    # moment the headers the last queries used go idle; between rounds the
    # test waits (polling) until the unloader has run.
    import concurrent.futures
    import random
    rng = random.Random()
    bad = []

    def burst(k):
        time.sleep(rng.uniform(0.2, 0.45))  # jitter, not synchronisation
        for j in range(3):
            i = (k + j) % len(qs)
            r = results(get(gw.base, "/api/v1/query_range", qs[i])[1])
            if r != want[i]:
                bad.append(str(r)[:300])
        return 3

    total = rounds = 0
    for _ in range(4):
        u0 = metric(st.base, LAZY + "unload_total")
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
            total += sum(ex.map(burst, range(4)))
        if wait_for("the unloader after a round", lambda: metric(st.base, LAZY + "unload_total") > u0):
            rounds += 1
    loads3, unloads3 = metric(st.base, LAZY + "load_total"), metric(st.base, LAZY + "unload_total")
    check(not bad and rounds == 4 and loads3 > loads2,
          "lazy: %d queries in 4 rounds racing the unloader all answered the same (loads %g, unloads %g)%s"
          % (total, loads3, unloads3, "" if not bad else ": " + bad[0]))
    check(metric(st.base, LAZY + "unload_failed_total") == 0, "lazy: no unload failed")
    for p in reversed(procs):
        p.stop()
    del procs[:]


def ulid_at(ms, rng):
    t = ""
    for _ in range(10):
        t = CROCKFORD[ms & 31] + t
        ms >>= 5
    return t + "".join(rng.choice(CROCKFORD) for _ in range(16))


def serving_meta_states(a, work, blocks, names, procs):
    """thanos_blocks_meta_synced{state}: a bucket with two good blocks, a
    duplicate, a deletion-marked block, a too-fresh block, a time-excluded
    and a label-excluded one, a block without meta.json and one with a
    corrupt meta.json."""
    import random
    rng = random.Random(11)
    now = int(time.time() * 1000)
    day = 86400 * 1000
    bdir = os.path.join(work, "bucket-states")
    os.makedirs(bdir)
    ids = {}

    def put(src, key, ms, sources=None, edit=None):
        u = ulid_at(ms, rng)
        ids[key] = u
        dst = os.path.join(bdir, u)
        shutil.copytree(os.path.join(blocks, src), dst)
        mp = os.path.join(dst, "meta.json")
        with open(mp) as f:
            m = json.load(f)
        m["ulid"] = u
        m.setdefault("compaction", {})["sources"] = sources or [u]
        if edit:
            edit(m)
        with open(mp, "w") as f:
            json.dump(m, f)
        return u

    a0 = put(names[0], "a", now - 3 * day)
    put(names[1], "b", now - 3 * day + 1)
    put(names[0], "dup", now - 2 * day, sources=[a0])  # same sources, greater ULID
    m = put(names[1], "marked", now - 2 * day)
    with open(os.path.join(bdir, m, "deletion-mark.json"), "w") as f:
        json.dump({"id": m, "deletion_time": now // 1000 - 2 * 86400, "version": 1}, f)
    put(names[0], "fresh", now)  # younger than --consistency-delay
    put(names[1], "old", now - 2 * day, edit=lambda m: m.update(minTime=946684800000, maxTime=946692000000))
    lab = put(names[0], "sharded-out", now - 2 * day)
    nometa = put(names[1], "nometa", now - 2 * day)
    os.unlink(os.path.join(bdir, nometa, "meta.json"))
    bad = put(names[1], "badmeta", now - 2 * day)
    with open(os.path.join(bdir, bad, "meta.json"), "w") as f:
        f.write("{not json")
    yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
    st = start_store(a.orrery, work, yaml, ["--consistency-delay=30m", "--min-time=2020-01-01T00:00:00Z",
                                            "--selector.relabel-config=- {action: drop, source_labels: "
                                            "[__block_id], regex: %s}" % lab], "store-states")
    procs.append(st)
    want = {"loaded": 2, "duplicate": 1, "marked-for-deletion": 1, "too-fresh": 1, "time-excluded": 1,
            "label-excluded": 1, "no-meta-json": 1, "corrupted-meta-json": 1, "failed": 0,
            "marked-for-no-compact": 0}
    got = {k: metric(st.base, "thanos_blocks_meta_synced", 'state="%s"' % k) for k in want}
    check(got == want, "thanos_blocks_meta_synced by state: %s (want %s)" % (got, want))
    check(metric(st.base, "thanos_bucket_store_blocks_loaded") == 2, "the two good blocks are served")
    check(metric(st.base, "thanos_blocks_meta_syncs_total") >= 1 and
          metric(st.base, "thanos_blocks_meta_sync_failures_total") == 0 and
          metric(st.base, "thanos_blocks_meta_sync_duration_seconds_count") >= 1,
          "thanos_blocks_meta_syncs_total, _sync_failures_total, _sync_duration_seconds")
    for p in reversed(procs):
        p.stop()
    del procs[:]


def mode_memcached(a, work):
    mc_bin = shutil.which("memcached")
    if not mc_bin:
        print("memcached is not installed (scripts/bootstrap.sh installs it)")
        sys.exit(1)
    blocks = pd.make_blocks(a.promtool, work)
    bdir = os.path.join(work, "bucket")
    os.makedirs(bdir)
    yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
    pd.upload_blocks(a.orrery, blocks, yaml)
    port = free_port()
    mc = pd.Daemon([mc_bin, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64", "-u", "root"],
                   work, "memcached")
    procs = [mc]
    try:
        import socket
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)  # polling memcached's port
        cfg = "type: MEMCACHED\nconfig:\n  addresses: [\"127.0.0.1:%d\"]\n  timeout: 200ms\n" % port
        st = start_store(a.orrery, work, yaml, ["--index-cache.config=" + cfg], "store-mc")
        procs.append(st)
        gw = start_gateway(a.orrery, work, [st.grpc], 1)
        procs.append(gw)
        q = [("query", 'sum by (code) (rate(http_requests_total{job="api-server"}[5m]))')] + RANGE
        _, first = get(gw.base, "/api/v1/query_range", q)
        f = lambda t: metric(st.base, "thanos_bucket_store_series_data_fetched_count", 'data_type="%s"' % t)
        p1, s1 = f("postings"), f("series")
        _, second = get(gw.base, "/api/v1/query_range", q)
        p2, s2 = f("postings"), f("series")
        hits = metric(st.base, "thanos_store_index_cache_hits_total")
        check(p1 > 0 and s1 > 0 and p2 == p1 and s2 == s1 and hits > 0 and first == second,
              "memcached: the repeated query read no postings or series (postings %g->%g, series %g->%g, "
              "hits %g)" % (p1, p2, s1, s2, hits))
        mc.stop()
        procs.remove(mc)
        t0 = time.monotonic()
        code, third = get(gw.base, "/api/v1/query_range", q)
        check(code == 200 and results(third) == results(first),
              "memcached stopped: the same answer, from the bucket, in %.2f s" % (time.monotonic() - t0))
        check(f("postings") > p2, "memcached stopped: postings read from the bucket again")
    finally:
        for p in reversed(procs):
            p.stop()


def mode_s3(a, work):
    s3rver = os.path.join(a.node_dir, "node_modules", ".bin", "s3rver")
    if not os.path.exists(s3rver):
        print("s3rver is not installed (%s)" % s3rver)
        sys.exit(1)
    blocks = pd.make_blocks(a.promtool, work)
    port = free_port()
    sdata = os.path.join(work, "s3data")
    os.makedirs(sdata)
    procs = []

    def start_s3():
        d = pd.Daemon(["node", "--openssl-legacy-provider", s3rver, "-d", sdata, "-a", "127.0.0.1",
                       "-p", str(port), "--silent", "--configure-bucket", "bkt"], work, "s3rver")
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.05)  # polling s3rver's readiness
        return d

    s3 = start_s3()
    try:
        yaml = ("type: S3\nconfig:\n  bucket: bkt\n  endpoint: 127.0.0.1:%d\n  insecure: true\n"
                "  access_key: S3RVER\n  secret_key: S3RVER\n  max_retries: 1\n" % port)
        pd.upload_blocks(a.orrery, blocks, yaml)
        ref_data = os.path.join(work, "ref-data")
        shutil.copytree(blocks, ref_data)
        ref = pd.Prometheus(a.prometheus, ref_data, work)
        procs.append(ref)
        st = start_store(a.orrery, work, yaml, ["--index-cache-size=0"], "store-s3")
        procs.append(st)
        gw = start_gateway(a.orrery, work, [st.grpc], 1)
        procs.append(gw)
        ref.wait_ready()
        for q in TIMELINE_QUERIES:
            _, pb = get(ref.base, "/api/v1/query_range", [("query", q)] + RANGE)
            _, ob = get(gw.base, "/api/v1/query_range", [("query", q)] + RANGE)
            check(results(pb) == results(ob), "s3: %s equals Prometheus" % q)
        s3.stop()
        code, body = get(gw.base, "/api/v1/query_range", [("query", "rate(http_requests_total[5m])")] + RANGE)
        check(code == 200 and "warnings" in body and "bkt" in body,
              "s3rver stopped: a warning naming the bucket (%s)" % body[:400])
        code, body = get(gw.base, "/api/v1/query_range", [("query", "rate(http_requests_total[5m])")] + RANGE +
                         [("partial_response", "false")])
        check(code != 200 and "bkt" in body, "s3rver stopped, no partial response: an error naming the bucket")
        s3 = start_s3()
        ok = False
        end = time.monotonic() + 30
        while time.monotonic() < end and not ok:
            _, pb = get(ref.base, "/api/v1/query_range", [("query", "rate(http_requests_total[5m])")] + RANGE)
            _, ob = get(gw.base, "/api/v1/query_range", [("query", "rate(http_requests_total[5m])")] + RANGE)
            ok = results(pb) == results(ob)
            if not ok:
                time.sleep(0.2)  # s3rver may take a moment to accept again
        check(ok, "s3rver back: queries work again without a restart")
    finally:
        for p in reversed(procs):
            p.stop()
        s3.stop()


def mode_ordering(a, work):
    """Series order with external labels (query.c note 2): a series whose
    labels are a prefix of others' sorts after them once the block's
    external label is added; a run of 5001 such series crosses a read batch;
    a block whose series carry its external label's name is read whole.
    The gateway fails a query whose stream is out of order, so success with
    every series is what shows the order."""
    om = os.path.join(work, "order.om")
    t0 = 1700000000
    with open(om, "w") as f:
        f.write("# TYPE order_metric gauge\n")
        for i, ls in enumerate(["", '{a="1"}', '{a="1",b="2"}', '{b="1"}']):
            for t in (t0, t0 + 60):
                f.write("order_metric%s %d %d\n" % (ls, i, t))
        f.write("# TYPE wide gauge\n")
        for t in (t0, t0 + 60):
            f.write("wide 1 %d\n" % t)
            for i in range(5000):
                f.write('wide{i="%05d"} 1 %d\n' % (i, t))
        f.write("# EOF\n")
    blocks = os.path.join(work, "order-blocks")
    r = subprocess.run([a.promtool, "tsdb", "create-blocks-from", "openmetrics", om, blocks],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(r.returncode == 0, "promtool wrote the ordering blocks (%s)" % r.stdout[-200:])
    names = block_dirs(blocks)
    procs = []
    try:
        for ext, want in [({"zone": "z"}, 4), ({"a": "x", "zone": "z"}, 3)]:
            for b in names:
                set_ext_labels(os.path.join(blocks, b), ext)
            bdir = os.path.join(work, "bucket-" + "-".join(sorted(ext)))
            os.makedirs(bdir)
            yaml = "type: FILESYSTEM\nconfig:\n  directory: %s\n" % bdir
            pd.upload_blocks(a.orrery, blocks, yaml)
            st = start_store(a.orrery, work, yaml, [], "store-order-" + "-".join(sorted(ext)))
            procs.append(st)
            gw = start_gateway(a.orrery, work, [st.grpc], 1)
            procs.append(gw)
            at = [("time", str(t0 + 60)), ("partial_response", "false")]
            # A gateway just up may still leave the store out of a query (the
            # store sees no Series call; seen under load): wait until one
            # reaches it. An out-of-order stream is an error, never empty.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                code, body = get(gw.base, "/api/v1/query", [("query", "count(order_metric)")] + at)
                if code != 200 or '"result":[]' not in body:
                    break
                time.sleep(0.2)
            code, body = get(gw.base, "/api/v1/query", [("query", "order_metric")] + at)
            res = json.loads(body).get("data", {}).get("result", []) if code == 200 else []
            got = sorted(json.dumps(r["metric"], sort_keys=True) for r in res)
            check(code == 200 and len(got) == want,
                  "ext %s: order_metric answers %d series (%d %s)" % (ext, want, code, body[:300]))
            code, body = get(gw.base, "/api/v1/query", [("query", "count(wide)")] + at)
            check(code == 200 and '"5001"' in body,
                  "ext %s: a prefix run of 5001 series across batches (%d %s)" % (ext, code, body[:300]))
            for p in reversed(procs):
                p.stop()
            procs = []
    finally:
        for p in reversed(procs):
            p.stop()



def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["timeline", "serving", "memcached", "s3", "sharding", "ordering"])
    ap.add_argument("--orrery", required=True)
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--node-dir", default=os.path.join(HERE, "..", "..", "node"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="store_e2e.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    try:
        {"timeline": mode_timeline, "serving": mode_serving, "memcached": mode_memcached,
         "s3": mode_s3, "sharding": mode_sharding, "ordering": mode_ordering}[a.mode](a, work)
        # Under sanitizers, a report in any daemon's log is a failure.
        for name in sorted(os.listdir(work)):
            if name.endswith(".log"):
                with open(os.path.join(work, name), errors="replace") as f:
                    text = f.read()
                for pat in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                    if pat in text:
                        i = text.index(pat)
                        check(False, "%s: sanitizer report: %s" % (name, text[i:i + 300]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
