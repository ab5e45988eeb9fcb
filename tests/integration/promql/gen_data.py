#!/usr/bin/env python3
"""gen_data.py OUT [--series-scale N]: the PromQL differential test's dataset,
an OpenMetrics file for `promtool tsdb create-blocks-from openmetrics`.

Deterministic (fixed seed): three hours from T0 = 1700000000 (2023-11-14
22:13:20 UTC) at 15 s - 60 s resolution. What each family is for:

  http_requests_total{job,instance,method,code}   counters, resets, one
        instance that goes away at T0+7200, one with fractional increments
  node_cpu_seconds_total{instance,cpu,mode}         fractional counters, 30 s
  node_memory_MemAvailable_bytes / _MemTotal_bytes  large gauges (same labels
        once the name is dropped: duplicate-series errors)
  temperature_celsius{location,sensor}              gauges up and down,
        negative, NaN every 10th gpu sample, 60 s
  queue_length{queue,priority}                      small integers: topk ties
  batch_progress{task}                              "import" stops at T0+5400,
        "export" starts at T0+3600 (lookback edges)
  http_request_duration_seconds{job,instance,handler} classic histograms
        (_bucket with +Inf, _sum, _count), one reset, one that stays empty
  special_values{kind}                              tiny, huge, subnormal,
        -0, +-Inf, NaN, integers and fractions
  build_info{job,instance,version,revision}, up{job,instance}   joins
  service_info{service,team,env,region}             label_replace/label_join
  job:http_requests:rate5m{job}                     a recording-rule name
  scrape_gaps{instance}                             irregular ms timestamps
        with gaps longer than the lookback delta
  label_escapes{v,i}                                label values that JSON
        and the text formats must escape
  request_duration_seconds{,2,3}_bucket{job,le}     histograms that differ
        only in the metric name (histogram_quantile's duplicate labelset)

--series-scale N (the benchmarks: bench/gateway_vs_prometheus.sh) gives the
http and cpu families N times more instances (60 more series per unit of
N); every other family is unchanged. N = 1 is the differential test's data.
"""
import argparse
import math
import random

T0 = 1700000000
HOURS = 3
END = T0 + HOURS * 3600


def fmt_val(v):
    if isinstance(v, str):
        return v
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15 and not (v == 0 and math.copysign(1, v) < 0):
        return "%d" % v
    return repr(v)


def fmt_ts(ms):
    return "%d.%03d" % (ms // 1000, ms % 1000)


def esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def lbls(d):
    return "{" + ",".join('%s="%s"' % (k, esc(v)) for k, v in d.items()) + "}"


class Out:
    def __init__(self, f):
        self.f = f
        self.lines = 0

    def family(self, name, typ):
        self.f.write("# TYPE %s %s\n" % (name, typ))

    def sample(self, name, labels, v, t_ms):
        self.f.write("%s%s %s %s\n" % (name, lbls(labels), fmt_val(v), fmt_ts(t_ms)))
        self.lines += 1


def steps(start_s, end_s, interval_s, jitter_ms=0, rnd=None):
    """Timestamps (ms) from start_s (inclusive) to end_s (inclusive)."""
    t = start_s * 1000
    while t <= end_s * 1000:
        j = rnd.randrange(-jitter_ms, jitter_ms + 1) if jitter_ms else 0
        yield t + j
        t += interval_s * 1000


def instances(n, port):
    return ["10.0.%d.%d:%d" % (i // 250, i % 250 + 1, port) for i in range(n)]


def gen(path, scale=1):
    rnd = random.Random(20231114)
    with open(path, "w") as f:
        o = Out(f)
        # ------------------------------------------------------------ counters
        o.family("http_requests", "counter")
        n_inst = 3 * scale
        for job in ("api-server", "frontend"):
            for ii, inst in enumerate(instances(n_inst, 8080)):
                for method in ("GET", "POST"):
                    for code in ("200", "404", "500"):
                        base = {"200": 10, "404": 1, "500": 0.2}[code]
                        if method == "POST":
                            base /= 4
                        lab = {"job": job, "instance": inst, "method": method, "code": code}
                        off = rnd.randrange(0, 15)
                        acc = float(rnd.randrange(0, 1000))
                        end = END
                        if job == "frontend" and ii == 2:
                            end = T0 + 7200  # the instance goes away
                        fractional = job == "api-server" and ii == 0 and method == "POST"
                        for k, t in enumerate(steps(T0 + off, end, 15)):
                            if k:
                                inc = rnd.uniform(0, 2 * base * 15)
                                acc += inc if fractional else round(inc)
                            # resets: one instance twice, another once
                            if job == "api-server" and ii == 1 and t // 1000 in range(T0 + 4000, T0 + 4015):
                                acc = float(rnd.randrange(0, 5))
                            if job == "api-server" and ii == 1 and code == "500" and \
                                    t // 1000 in range(T0 + 8000, T0 + 8015):
                                acc = 0.0
                            if job == "frontend" and ii == 0 and method == "GET" and \
                                    t // 1000 in range(T0 + 6000, T0 + 6015):
                                acc = 1.0
                            o.sample("http_requests_total", lab, acc, t)

        o.family("node_cpu_seconds", "counter")
        for inst in instances(3 * scale, 9100):
            for cpu in ("0", "1"):
                for mode in ("idle", "user", "system", "iowait"):
                    lab = {"instance": inst, "job": "node", "cpu": cpu, "mode": mode}
                    share = {"idle": 0.7, "user": 0.2, "system": 0.08, "iowait": 0.02}[mode]
                    acc = rnd.uniform(1000, 100000)
                    for k, t in enumerate(steps(T0 + 7, END, 30)):
                        if k:
                            acc += 30 * share * rnd.uniform(0.5, 1.5)
                        o.sample("node_cpu_seconds_total", lab, round(acc, 2), t)

        # ------------------------------------------------------------ gauges
        o.family("node_memory_MemAvailable_bytes", "gauge")
        for ii, inst in enumerate(instances(3, 9100)):
            lab = {"instance": inst, "job": "node"}
            v = 8e9 + ii * 1e9
            for t in steps(T0 + 3, END, 30):
                v = max(1e8, v + rnd.randrange(-50_000_000, 50_000_001, 4096))
                o.sample("node_memory_MemAvailable_bytes", lab, v, t)
        o.family("node_memory_MemTotal_bytes", "gauge")
        for ii, inst in enumerate(instances(3, 9100)):
            lab = {"instance": inst, "job": "node"}
            for t in steps(T0 + 3, END, 30):
                o.sample("node_memory_MemTotal_bytes", lab, 17179869184.0 * (1 + ii), t)

        o.family("temperature_celsius", "gauge")
        sensors = [("dc1", "cpu", 55, 10), ("dc1", "gpu", 70, 15), ("dc1", "outside", 2, 6),
                   ("dc2", "cpu", 50, 8), ("dc2", "freezer", -18, 1.5), ("dc2", "outside", -1, 4)]
        for loc, sensor, mid, amp in sensors:
            lab = {"location": loc, "sensor": sensor}
            for k, t in enumerate(steps(T0, END, 60)):
                v = mid + amp * math.sin((t / 1000 - T0) / 1800.0) + rnd.uniform(-0.5, 0.5)
                if sensor == "gpu" and k % 10 == 9:
                    v = float("nan")
                o.sample("temperature_celsius", lab, round(v, 3), t)

        o.family("queue_length", "gauge")
        for qi, q in enumerate(("q1", "q2", "q3", "q4", "q5", "q6")):
            lab = {"queue": q, "priority": "high" if qi < 3 else "low"}
            for k, t in enumerate(steps(T0, END, 15)):
                # a small set of integers: many ties; at whole hours all queues equal
                if (t // 1000 - T0) % 3600 < 15:
                    v = 5
                else:
                    v = rnd.choice((0, 1, 2, 3, 5, 5, 8)) * (1 if qi != 5 else -1)
                o.sample("queue_length", lab, v, t)

        o.family("batch_progress", "gauge")
        for task, a, b in (("import", T0, T0 + 5400), ("export", T0 + 3600, END)):
            for k, t in enumerate(steps(a, b, 30)):
                o.sample("batch_progress", {"job": "batch", "task": task}, k / 180.0, t)

        # ------------------------------------------------------------ histograms
        o.family("http_request_duration_seconds", "histogram")
        les = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
        bounds = [float(x) for x in les]
        for job in ("api-server", "frontend"):
            for ii, inst in enumerate(instances(2, 8080)):
                for handler in ("/api/v1/query", "/metrics"):
                    lab = {"job": job, "instance": inst, "handler": handler}
                    counts = [0] * len(les)
                    total = 0.0
                    empty = job == "frontend" and ii == 1 and handler == "/metrics"
                    scale_s = 0.05 if handler == "/metrics" else 0.4
                    for k, t in enumerate(steps(T0 + 5, END, 15)):
                        if job == "api-server" and ii == 1 and handler == "/metrics" and \
                                t // 1000 in range(T0 + 5000, T0 + 5015):
                            counts = [0] * len(les)
                            total = 0.0
                        if k and not empty:
                            for _ in range(rnd.randrange(5, 40)):
                                obs = rnd.expovariate(1 / scale_s)
                                total += obs
                                for bi, bnd in enumerate(bounds):
                                    if obs <= bnd:
                                        counts[bi] += 1
                        for bi, le in enumerate(les):
                            o.sample("http_request_duration_seconds_bucket", dict(lab, le=le), counts[bi], t)
                        o.sample("http_request_duration_seconds_sum", lab, round(total, 6), t)
                        o.sample("http_request_duration_seconds_count", lab, counts[-1], t)

        # ------------------------------------------------------------ special values
        o.family("special_values", "gauge")
        specials = [("tiny", 1e-300), ("huge", 1.5e300), ("subnormal", 5e-324),
                    ("max", 1.7976931348623157e308), ("negzero", "-0.0"),
                    ("posinf", float("inf")), ("neginf", float("-inf")), ("nan", float("nan")),
                    ("int", 42), ("frac", 0.1), ("neg", -7.5), ("e21", 1e21),
                    ("small", 1.25e-7), ("bigint", 123456789012345678), ("third", 1 / 3)]
        for kind, v in specials:
            for k, t in enumerate(steps(T0, END, 60)):
                if kind in ("int", "frac", "neg") and k % 2:
                    vv = v * 2
                else:
                    vv = v
                o.sample("special_values", {"kind": kind}, vv, t)

        # ------------------------------------------------------------ joins
        o.family("build_info", "gauge")
        for job in ("api-server", "frontend"):
            for ii, inst in enumerate(instances(3, 8080)):
                lab = {"job": job, "instance": inst, "version": "2.%d.0" % (ii % 2),
                       "revision": "abc%d" % ii}
                end = T0 + 7200 if job == "frontend" and ii == 2 else END
                for t in steps(T0 + 1, end, 60):
                    o.sample("build_info", lab, 1, t)
        o.family("up", "gauge")
        for job in ("api-server", "frontend"):
            for ii, inst in enumerate(instances(3, 8080)):
                for t in steps(T0 + 2, END, 15):
                    v = 0 if (job == "frontend" and ii == 2 and t > (T0 + 7200) * 1000) else 1
                    if job == "api-server" and ii == 1 and (T0 + 3000) * 1000 < t < (T0 + 3300) * 1000:
                        v = 0
                    o.sample("up", {"job": job, "instance": inst}, v, t)

        o.family("service_info", "gauge")
        for svc, team, env, region in (("checkout-api", "payments", "prod", "eu-west-1"),
                                       ("checkout-worker", "payments", "prod", "eu-west-1"),
                                       ("search-api", "discovery", "staging", "us-east-2"),
                                       ("search_indexer", "discovery", "prod", "us-east-2")):
            for t in steps(T0, END, 60):
                o.sample("service_info", {"service": svc, "team": team, "env": env, "region": region}, 1, t)

        o.family("job:http_requests:rate5m", "gauge")
        for job in ("api-server", "frontend"):
            for t in steps(T0, END, 60):
                o.sample("job:http_requests:rate5m", {"job": job},
                         round(rnd.uniform(20, 80), 4), t)

        o.family("scrape_gaps", "gauge")
        for inst in instances(2, 9200):
            t = T0 * 1000 + rnd.randrange(0, 1000)
            while t <= END * 1000:
                o.sample("scrape_gaps", {"instance": inst}, rnd.randrange(-100, 100) / 8, t)
                t += rnd.choice((10_000, 20_000, 45_000, 120_000, 400_000, 650_000)) + rnd.randrange(0, 999)

        o.family("label_escapes", "gauge")
        for i, v in enumerate(('quote"back\\slash', "new\nline", "unicod\u00e9 \u2603", "<html>&amp;",
                               "tab\there", "  spaces  ")):
            for t in steps(T0 + 10, END, 60):
                o.sample("label_escapes", {"v": v, "i": str(i)}, i - 2.5, t)

        # ------------------------------------------------------------ names only
        # Classic histograms whose buckets differ only in the metric name:
        # histogram_quantile keys buckets by the name too and drops it after,
        # so together they are a duplicate-labelset error. _seconds3 ends at
        # T0+1800 and _seconds2 starts at T0+3600: the same labels, never at
        # the same time. No rnd here: the families above stay as they were.
        for name, first, last, per in (("request_duration_seconds", T0, END, (1, 3, 4)),
                                       ("request_duration_seconds2", T0 + 3600, END, (2, 2, 5)),
                                       ("request_duration_seconds3", T0, T0 + 1800, (1, 1, 3))):
            o.family(name, "histogram")
            for k, t in enumerate(steps(first, last, 30)):
                for le, c in zip(("0.1", "0.5", "+Inf"), per):
                    o.sample(name + "_bucket", {"job": "checkout", "le": le}, k * c, t)
        return finish(f, o)


def finish(f, o):
    f.write("# EOF\n")
    return o.lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--series-scale", type=int, default=1)
    a = ap.parse_args()
    n = gen(a.out, a.series_scale)
    print("%d samples written to %s" % (n, a.out))


if __name__ == "__main__":
    main()
