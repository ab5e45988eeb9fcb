/* fn_range.c: functions over a range of samples — rate/increase/delta
 * (extrapolatedRate), irate/idelta, deriv/predict_linear, holt_winters,
 * changes/resets and the *_over_time family — with Prometheus 2.42's
 * arithmetic order (Kahan-Neumaier sums where 2.42 has them), so that
 * results agree to the last bits. */
#include <math.h>
#include <string.h>

#include "promql_int.h"


static double extrapolated_rate(const promql__win *w, bool counter, bool rate, bool *ok) {
  const promql_point *p = w->p;
  size_t n = w->n;
  if (n < 2) {
    *ok = false;
    return 0;
  }
  int64_t range_start = w->ref - w->range, range_end = w->ref;
  double result = p[n - 1].v - p[0].v;
  if (counter) {
    double prev = p[0].v;
    for (size_t i = 1; i < n; i++) {
      if (p[i].v < prev) result += prev;
      prev = p[i].v;
    }
  }
  double to_start = (double)(p[0].t - range_start) / 1000;
  double to_end = (double)(range_end - p[n - 1].t) / 1000;
  double sampled = (double)(p[n - 1].t - p[0].t) / 1000;
  double avg = sampled / (double)(n - 1);
  if (counter && result > 0 && p[0].v >= 0) {
    double to_zero = sampled * (p[0].v / result);
    if (to_zero < to_start) to_start = to_zero;
  }
  double threshold = avg * 1.1;
  double interval = sampled;
  if (to_start < threshold)
    interval += to_start;
  else
    interval += avg / 2;
  if (to_end < threshold)
    interval += to_end;
  else
    interval += avg / 2;
  double factor = interval / sampled;
  if (rate) factor /= (double)w->range / 1000;
  *ok = true;
  return result * factor;
}

static double instant_value(const promql__win *w, bool rate, bool *ok) {
  *ok = false;
  if (w->n < 2) return 0;
  const promql_point *last = &w->p[w->n - 1], *prev = &w->p[w->n - 2];
  double r = last->v - prev->v;
  if (rate && last->v < prev->v) r = last->v;
  int64_t iv = last->t - prev->t;
  if (iv == 0) return 0;
  if (rate) r /= (double)iv / 1000;
  *ok = true;
  return r;
}

/* Kahan-Neumaier summation step (kahanSumInc). */
static double kahan_inc(double inc, double sum, double *c) {
  double t = sum + inc;
  if (fabs(sum) >= fabs(inc))
    *c += (sum - t) + inc;
  else
    *c += (inc - t) + sum;
  return t;
}

static void linreg(const promql_point *p, size_t n, int64_t icept, double *slope,
                   double *intercept) {
  double N = 0, sx = 0, sy = 0, sxy = 0, sx2 = 0, cx = 0, cy = 0, cxy = 0, cx2 = 0;
  double inity = p[0].v;
  bool consty = true;
  for (size_t i = 0; i < n; i++) {
    if (consty && i > 0 && p[i].v != inity) consty = false;
    N += 1.0;
    double x = (double)(p[i].t - icept) / 1e3;
    sx = kahan_inc(x, sx, &cx);
    sy = kahan_inc(p[i].v, sy, &cy);
    sxy = kahan_inc(x * p[i].v, sxy, &cxy);
    sx2 = kahan_inc(x * x, sx2, &cx2);
  }
  if (consty) {
    if (isinf(inity)) {
      *slope = NAN;
      *intercept = NAN;
      return;
    }
    *slope = 0;
    *intercept = inity;
    return;
  }
  sx = sx + cx;
  sy = sy + cy;
  sxy = sxy + cxy;
  sx2 = sx2 + cx2;
  double cov = sxy - sx * sy / N;
  double var = sx2 - sx * sx / N;
  *slope = cov / var;
  *intercept = sy / N - *slope * sx / N;
}

static double trend(size_t i, double tf, double s0, double s1, double b) {
  if (i == 0) return b;
  double x = tf * (s1 - s0);
  double y = (1 - tf) * b;
  return x + y;
}

enum {
  RF_NONE = 0,
  RF_RATE,
  RF_INCREASE,
  RF_DELTA,
  RF_IRATE,
  RF_IDELTA,
  RF_DERIV,
  RF_PREDICT_LINEAR,
  RF_HOLT_WINTERS,
  RF_CHANGES,
  RF_RESETS,
  RF_AVG_OVER_TIME,
  RF_COUNT_OVER_TIME,
  RF_SUM_OVER_TIME,
  RF_MAX_OVER_TIME,
  RF_MIN_OVER_TIME,
  RF_STDDEV_OVER_TIME,
  RF_STDVAR_OVER_TIME,
  RF_LAST_OVER_TIME,
  RF_PRESENT_OVER_TIME,
  RF_ABSENT_OVER_TIME,
  RF_QUANTILE_OVER_TIME,
};
static const char *const rf_names[] = {
    NULL,
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "holt_winters",
    "changes",
    "resets",
    "avg_over_time",
    "count_over_time",
    "sum_over_time",
    "max_over_time",
    "min_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
    "quantile_over_time",
};

int promql__range_fn_id(const char *name) {
  for (int i = 1; i < (int)(sizeof(rf_names) / sizeof(rf_names[0])); i++)
    if (!strcmp(rf_names[i], name)) return i;
  return RF_NONE;
}

int promql__range_fn(promql__ev *ev, int id, const promql__win *w, double *out, bool *ok) {
  const promql_point *p = w->p;
  size_t n = w->n;
  *ok = true;
  if (id == RF_RATE) {
    *out = extrapolated_rate(w, true, true, ok);
  } else if (id == RF_INCREASE) {
    *out = extrapolated_rate(w, true, false, ok);
  } else if (id == RF_DELTA) {
    *out = extrapolated_rate(w, false, false, ok);
  } else if (id == RF_IRATE) {
    *out = instant_value(w, true, ok);
  } else if (id == RF_IDELTA) {
    *out = instant_value(w, false, ok);
  } else if (id == RF_DERIV) {
    if (n < 2) {
      *ok = false;
      return 0;
    }
    double s, i;
    linreg(p, n, p[0].t, &s, &i);
    *out = s;
  } else if (id == RF_PREDICT_LINEAR) {
    if (n < 2) {
      *ok = false;
      return 0;
    }
    double s, i;
    linreg(p, n, w->ts, &s, &i);
    *out = s * w->args[1] + i;
  } else if (id == RF_HOLT_WINTERS) {
    double sf = w->args[1], tf = w->args[2];
    if (sf <= 0 || sf >= 1)
      return promql__ev_errorf(ev, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf);
    if (tf <= 0 || tf >= 1)
      return promql__ev_errorf(ev, "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf);
    if (n < 2) {
      *ok = false;
      return 0;
    }
    double s0 = 0, s1 = p[0].v, b = p[1].v - p[0].v;
    for (size_t i = 1; i < n; i++) {
      double x = sf * p[i].v;
      b = trend(i - 1, tf, s0, s1, b);
      double y = (1 - sf) * (s1 + b);
      s0 = s1;
      s1 = x + y;
    }
    *out = s1;
  } else if (id == RF_CHANGES) {
    double c = 0, prev = p[0].v;
    for (size_t i = 1; i < n; i++) {
      double cur = p[i].v;
      if (cur != prev && !(isnan(cur) && isnan(prev))) c++;
      prev = cur;
    }
    *out = c;
  } else if (id == RF_RESETS) {
    double c = 0, prev = p[0].v;
    for (size_t i = 1; i < n; i++) {
      if (p[i].v < prev) c++;
      prev = p[i].v;
    }
    *out = c;
  } else if (id == RF_AVG_OVER_TIME) {
    double mean = 0, count = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
      count++;
      double v = p[i].v;
      if (isinf(mean)) {
        if (isinf(v) && (mean > 0) == (v > 0)) continue;
        if (!isinf(v) && !isnan(v)) continue;
      }
      mean = kahan_inc(v / count - mean / count, mean, &c);
    }
    *out = isinf(mean) ? mean : mean + c;
  } else if (id == RF_COUNT_OVER_TIME) {
    *out = (double)n;
  } else if (id == RF_SUM_OVER_TIME) {
    double s = 0, c = 0;
    for (size_t i = 0; i < n; i++) s = kahan_inc(p[i].v, s, &c);
    *out = isinf(s) ? s : s + c;
  } else if (id == RF_MAX_OVER_TIME) {
    double m = p[0].v;
    for (size_t i = 0; i < n; i++)
      if (p[i].v > m || isnan(m)) m = p[i].v;
    *out = m;
  } else if (id == RF_MIN_OVER_TIME) {
    double m = p[0].v;
    for (size_t i = 0; i < n; i++)
      if (p[i].v < m || isnan(m)) m = p[i].v;
    *out = m;
  } else if (id == RF_STDDEV_OVER_TIME || id == RF_STDVAR_OVER_TIME) {
    double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
    for (size_t i = 0; i < n; i++) {
      count++;
      double delta = p[i].v - (mean + cmean);
      mean = kahan_inc(delta / count, mean, &cmean);
      aux = kahan_inc(delta * (p[i].v - (mean + cmean)), aux, &caux);
    }
    *out = id == RF_STDDEV_OVER_TIME ? sqrt((aux + caux) / count) : (aux + caux) / count;
  } else if (id == RF_LAST_OVER_TIME) {
    *out = p[n - 1].v;
  } else if (id == RF_PRESENT_OVER_TIME || id == RF_ABSENT_OVER_TIME) {
    *out = 1;
  } else if (id == RF_QUANTILE_OVER_TIME) {
    promql__sample *v = orr_arena_alloc(ev->a, n * sizeof(*v));
    if (!v) return promql__ev_oom(ev);
    for (size_t i = 0; i < n; i++) {
      memset(&v[i], 0, sizeof(v[i]));
      v[i].v = p[i].v;
    }
    *out = promql__quantile(w->args[0], v, n);
  } else {
    /* Native-histogram functions (histogram_*) and anything else: no value. */
    *ok = false;
  }
  return 0;
}
