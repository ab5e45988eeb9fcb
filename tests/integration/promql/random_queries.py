#!/usr/bin/env python3
"""random_queries.py [--seed S] [N]: random well-typed (and now and then
ill-typed) PromQL over gen_data.py's dataset, printed in queries.txt's format.
promql_diff.py --random N uses it to hunt for mismatches beyond queries.txt;
a mismatch it finds belongs in queries.txt as a regression query.
"""
import argparse
import random

T0, END = 1700000000, 1700010800

SELECTORS = [
    'http_requests_total', 'http_requests_total{job="frontend"}', 'http_requests_total{code=~"5.."}',
    'http_requests_total{method="POST",instance!="10.0.0.1:8080"}', 'node_cpu_seconds_total',
    'node_cpu_seconds_total{mode="idle"}', 'temperature_celsius', 'temperature_celsius{location="dc2"}',
    'queue_length', 'batch_progress', 'up', 'build_info', 'scrape_gaps', 'special_values',
    'special_values{kind=~"int|frac|neg|nan|posinf"}', 'node_memory_MemAvailable_bytes',
    'http_request_duration_seconds_count', 'http_request_duration_seconds_sum', 'label_escapes',
    'job:http_requests:rate5m', 'service_info', 'stale_gauge', 'stale_gauge{case=~"flap|gap"}',
    'stale_counter_total',
]
COUNTERS = ['http_requests_total', 'http_requests_total{job="api-server"}', 'node_cpu_seconds_total',
            'http_request_duration_seconds_count', 'http_requests_total{instance="10.0.0.2:8080"}',
            'stale_counter_total']
LABELS = ["job", "instance", "code", "method", "location", "sensor", "queue", "priority", "mode",
          "cpu", "kind", "task", "handler", "le", "__name__", "nonexistent"]
WINDOWS = ["30s", "1m", "2m", "5m", "7m30s", "10m", "1h"]
STEPS = ["15s", "30s", "1m", "45s", "5m", ""]
RANGE_FNS = ["rate", "increase", "irate", "delta", "idelta", "deriv", "changes", "resets",
             "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
             "last_over_time", "present_over_time", "stddev_over_time", "stdvar_over_time",
             "absent_over_time"]
VEC_FNS = ["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn", "sin", "cos", "tan",
           "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "deg", "rad",
           "timestamp", "sort", "sort_desc", "absent", "year", "month", "day_of_month", "day_of_week",
           "day_of_year", "days_in_month", "hour", "minute", "histogram_count", "histogram_sum"]
AGGS = ["sum", "avg", "count", "min", "max", "group", "stddev", "stdvar"]
ARITH = ["+", "-", "*", "/", "%", "^", "atan2"]
CMP = ["==", "!=", ">", "<", ">=", "<="]
SETOPS = ["and", "or", "unless"]


class Gen:
    def __init__(self, rnd):
        self.r = rnd

    def pick(self, xs):
        return self.r.choice(xs)

    def labels(self, lo=0, hi=3):
        return ", ".join(self.r.sample(LABELS, self.r.randint(lo, hi)))

    def modifiers(self, e):
        r = self.r.random()
        if r < 0.1:
            e += " offset %s" % self.pick(["1m", "5m", "-5m", "30m", "-1h"])
        elif r < 0.15:
            e += " @ %s" % self.pick(["start()", "end()", str(T0 + 3600), str(T0 + 5400.5)])
        return e

    def scalar(self, d):
        r = self.r.random()
        if d <= 0 or r < 0.5:
            return self.pick(["0", "1", "2", "0.5", "-1", "10", "1e3", "NaN", "Inf", "-Inf", "0.25"])
        if r < 0.7:
            return "scalar(%s)" % self.vector(d - 1)
        if r < 0.8:
            return "time()"
        return "(%s %s %s)" % (self.scalar(d - 1), self.pick(ARITH + [c + " bool" for c in CMP]),
                               self.scalar(d - 1))

    def rangevec(self, d):
        if d > 0 and self.r.random() < 0.25:
            return "(%s)[%s:%s]" % (self.vector(d - 1), self.pick(WINDOWS[:6]), self.pick(STEPS))
        return self.modifiers("%s[%s]" % (self.pick(SELECTORS), self.pick(WINDOWS)))

    def vector(self, d):
        r = self.r.random()
        if d <= 0 or r < 0.15:
            return self.modifiers(self.pick(SELECTORS))
        if r < 0.35:
            f = self.pick(RANGE_FNS)
            if f in ("rate", "increase", "irate", "resets") and self.r.random() < 0.6:
                return "%s(%s[%s])" % (f, self.pick(COUNTERS), self.pick(WINDOWS))
            return "%s(%s)" % (f, self.rangevec(d - 1))
        if r < 0.42:
            c = self.r.random()
            if c < 0.3:
                return "quantile_over_time(%s, %s)" % (self.pick(["0", "0.5", "0.9", "1", "1.5"]),
                                                       self.rangevec(d - 1))
            if c < 0.6:
                return "holt_winters(%s, %s, %s)" % (self.rangevec(d - 1), self.pick(["0.1", "0.5", "0.9"]),
                                                     self.pick(["0.1", "0.5", "0.9"]))
            return "predict_linear(%s, %s)" % (self.rangevec(d - 1), self.pick(["60", "-300", "3600"]))
        if r < 0.55:
            f = self.pick(VEC_FNS + ["clamp", "clamp_min", "clamp_max", "round", "label_replace",
                                     "label_join"])
            v = self.vector(d - 1)
            if f == "clamp":
                return "clamp(%s, %s, %s)" % (v, self.scalar(0), self.scalar(0))
            if f in ("clamp_min", "clamp_max"):
                return "%s(%s, %s)" % (f, v, self.scalar(d - 1))
            if f == "round":
                return "round(%s%s)" % (v, self.pick(["", ", 0.1", ", 5", ", 0.25"]))
            if f == "label_replace":
                return 'label_replace(%s, "%s", "%s", "%s", "%s")' % (
                    v, self.pick(["dst", "job", "x"]), self.pick(["$1", "${1}_y", "", "z"]),
                    self.pick(LABELS), self.pick(["(.*)", "(.).*", "10.*", "(a|b)c?", ".+"]))
            if f == "label_join":
                return 'label_join(%s, "%s", "%s", %s)' % (
                    v, self.pick(["dst", "job"]), self.pick(["-", "", ","]),
                    ", ".join('"%s"' % l for l in self.r.sample(LABELS, self.r.randint(1, 3))))
            return "%s(%s)" % (f, v)
        if r < 0.72:
            a = self.pick(AGGS + ["topk", "bottomk", "quantile", "count_values"])
            v = self.vector(d - 1)
            grp = ""
            if self.r.random() < 0.7:
                grp = " %s (%s)" % (self.pick(["by", "without"]), self.labels())
            if a in ("topk", "bottomk"):
                return "%s%s (%s, %s)" % (a, grp, self.pick(["1", "2", "3", "0", "100"]), v)
            if a == "quantile":
                return "quantile%s (%s, %s)" % (grp, self.pick(["0", "0.5", "0.99", "1", "-1"]), v)
            if a == "count_values":
                return 'count_values%s ("%s", %s)' % (grp, self.pick(["value", "job", "le"]), v)
            return "%s%s (%s)" % (a, grp, v)
        if r < 0.78:
            return "histogram_quantile(%s, sum by (%s) (rate(http_request_duration_seconds_bucket[%s])))" % (
                self.pick(["0", "0.5", "0.9", "0.99", "1"]), self.pick(["le", "le, job", "le, handler",
                                                                       "le, instance, job, handler"]),
                self.pick(WINDOWS[1:5]))
        if r < 0.85:
            v = self.vector(d - 1)
            s = self.scalar(d - 1)
            op = self.pick(ARITH + CMP + [c + " bool" for c in CMP])
            return "(%s %s %s)" % (v, op, s) if self.r.random() < 0.5 else "(%s %s %s)" % (s, op, v)
        # vector op vector
        op = self.pick(ARITH + CMP + SETOPS + [c + " bool" for c in CMP])
        m = ""
        c = self.r.random()
        if c < 0.35:
            m = " on(%s)" % self.labels(0, 2)
        elif c < 0.6:
            m = " ignoring(%s)" % self.labels(1, 3)
        if m and op not in SETOPS and self.r.random() < 0.3:
            m += " %s(%s)" % (self.pick(["group_left", "group_right"]), self.labels(0, 2))
        return "(%s %s%s %s)" % (self.vector(d - 1), op, m, self.vector(d - 1))


def generate(n, seed):
    rnd = random.Random(seed)
    g = Gen(rnd)
    out = []
    for _ in range(n):
        e = g.vector(rnd.randint(1, 4)) if rnd.random() < 0.92 else g.scalar(2)
        if rnd.random() < 0.6:
            t = rnd.choice([T0 + 3600, T0 + 5401, T0 + 7230, END, rnd.randint(T0 - 600, END + 600)])
            out.append("instant %d %s" % (t, e))
        else:
            s = rnd.randint(T0 - 600, END - 600)
            end = rnd.randint(s, min(END + 600, s + 4 * 3600))
            out.append("range %d %d %d %s" % (s, end, rnd.choice([15, 60, 97, 300, 601]), e))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, nargs="?", default=100)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print("\n".join(generate(a.n, a.seed)))


if __name__ == "__main__":
    main()
