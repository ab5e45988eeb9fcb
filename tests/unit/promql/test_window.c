/* test_window.c: the engine's reuse of state across steps and its parallel
 * evaluation against naive evaluations, bit for bit, on random data with
 * NaN, ±Inf, stale markers, gaps and counter resets:
 * - a range query's sliding windows (two cursors per series) against one
 *   instant query per step, each of which finds its window afresh;
 * - range functions split over threads (parallelism 2..7) against one
 *   thread, for every range function and some aggregations over them;
 * - the sample limit: the parallel replay fails exactly where the
 *   sequential loop fails;
 * - aggregations of range functions evaluated fused (no matrix in
 *   between) against the same query through the matrix;
 * - aggregations of a vector selector evaluated fused against the same
 *   query through the step vectors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promql.h"
#include "promql_int.h"

/* Enough series for the parallel path (engine.c, RANGE_PAR_MIN_SERIES). */
#define NSERIES 600
#define NPOINTS 90
#define STEP_MS 15000

typedef struct tseries {
  labels_set ls;
  promql_point *p;
  size_t n;
} tseries;

typedef struct tdb {
  orr_arena *a;
  tseries s[NSERIES];
  /* Hand the series in label order (as `tools query` does: the engine then
   * folds a fused aggregation while loading) or in creation order (it keeps
   * the points and folds them on threads). */
  bool sorted;
  bool ordered; /* promql_storage.ordered: true and !sorted is a lie */
  size_t order[NSERIES];
} tdb;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static double stale_nan(void) {
  uint64_t bits = 0x7ff0000000000002ULL;
  double d;
  memcpy(&d, &bits, sizeof(d));
  return d;
}

static tdb *sort_db; /* qsort's context */
static int by_labels(const void *x, const void *y) {
  return labels_cmp(&sort_db->s[*(const size_t *)x].ls, &sort_db->s[*(const size_t *)y].ls);
}

/* Counters that reset, gauges with odd values; samples at jittered times
 * with gaps, so windows hold 0 to many points. */
static void fill(tdb *db) {
  db->a = orr_arena_new(0);
  for (size_t i = 0; i < NSERIES; i++) {
    char inst[32], grp[16];
    snprintf(inst, sizeof(inst), "i%zu", i);
    snprintf(grp, sizeof(grp), "g%zu", i % 7);
    labels_builder b;
    labels_builder_init(&b, db->a, NULL);
    labels_builder_set(&b, LABELS_METRIC_NAME, "m");
    labels_builder_set(&b, "group", orr_arena_strdup(db->a, grp));
    labels_builder_set(&b, "instance", orr_arena_strdup(db->a, inst));
    assert_int_equal(labels_builder_finish(&b, &db->s[i].ls), 0);
    promql_point *p = orr_arena_alloc(db->a, NPOINTS * sizeof(*p));
    size_t n = 0;
    int64_t t = (int64_t)(next_rand() % 20000);
    double c = (double)(next_rand() % 100);
    for (size_t k = 0; k < NPOINTS; k++) {
      t += 5000 + (int64_t)(next_rand() % 25000);
      if (next_rand() % 17 == 0) t += 400000; /* a gap longer than the windows */
      uint64_t r = next_rand() % 100;
      double v;
      if (i % 3 == 0) { /* a counter */
        c += (double)(next_rand() % 1000) / 8.0;
        if (r < 4) c = (double)(next_rand() % 10); /* reset */
        v = c;
      } else {
        v = ((double)(int64_t)(next_rand() % 2000000) - 1e6) / 3.0;
      }
      if (r == 90) v = NAN;
      if (r == 91) v = INFINITY;
      if (r == 92) v = -INFINITY;
      if (r == 93 || r == 94) v = stale_nan();
      if (r == 95) v = 1e300;
      p[n].t = t;
      p[n].v = v;
      n++;
    }
    db->s[i].p = p;
    db->s[i].n = n;
    db->order[i] = i;
  }
  sort_db = db;
  qsort(db->order, NSERIES, sizeof(db->order[0]), by_labels);
}

static int tdb_select(void *ctx, const promql_selector *sel, promql_emit_fn emit, void *arg,
                      char *err, size_t errlen) {
  tdb *db = ctx;
  (void)err;
  (void)errlen;
  for (size_t k = 0; k < NSERIES; k++) {
    tseries *s = &db->s[db->sorted ? db->order[k] : k];
    if (!labels_matches_all(&s->ls, sel->matchers, sel->nmatchers)) continue;
    size_t lo = 0, hi;
    while (lo < s->n && s->p[lo].t < sel->start_ms) lo++;
    hi = lo;
    while (hi < s->n && s->p[hi].t <= sel->end_ms) hi++;
    if (hi == lo) continue;
    int rc = emit(arg, &s->ls, s->p + lo, hi - lo);
    if (rc) return rc;
  }
  return 0;
}

static const int64_t T0 = 300000, T1 = 1800000;

static int run(tdb *db, orr_arena *a, const char *q, bool range, int64_t t, int64_t parallelism,
               int64_t max_samples, promql_result *res, promql_errinfo *err) {
  promql_query_params p;
  memset(&p, 0, sizeof(p));
  p.range = range;
  p.start_ms = range ? T0 : t;
  p.end_ms = range ? T1 : t;
  p.step_ms = STEP_MS;
  p.parallelism = parallelism;
  p.max_samples = max_samples;
  /* Parallel runs also select their selectors side by side. */
  promql_storage st = {db, tdb_select, db->ordered, parallelism != 1};
  return promql_eval(a, q, strlen(q), &p, &st, res, err);
}

/* Bit for bit, but any NaN equals any NaN: the API prints them all as
 * "NaN", and which payload an operation on two NaNs keeps is the
 * compiler's choice of operand order (x86 keeps the first's). */
static bool same_bits(double x, double y) {
  if (isnan(x) && isnan(y)) return true;
  return memcmp(&x, &y, sizeof(x)) == 0;
}

static const promql_series *find(const promql_result *r, const labels_set *ls) {
  for (size_t i = 0; i < r->nseries; i++)
    if (labels_equal(&r->series[i].labels, ls)) return &r->series[i];
  return NULL;
}

/* Equal results, series in the same order, values in the same bits. */
static void assert_same(const char *q, const promql_result *x, const promql_result *y) {
  if (x->nseries != y->nseries) fail_msg("%s: %zu vs %zu series", q, x->nseries, y->nseries);
  for (size_t i = 0; i < x->nseries; i++) {
    const promql_series *a = &x->series[i], *b = &y->series[i];
    if (!labels_equal(&a->labels, &b->labels)) fail_msg("%s: series %zu differs", q, i);
    if (a->npoints != b->npoints) fail_msg("%s: series %zu: %zu vs %zu points", q, i, a->npoints, b->npoints);
    for (size_t k = 0; k < a->npoints; k++)
      if (a->points[k].t != b->points[k].t || !same_bits(a->points[k].v, b->points[k].v))
        fail_msg("%s: series %zu point %zu: %.17g@%lld vs %.17g@%lld", q, i, k, a->points[k].v,
                 (long long)a->points[k].t, b->points[k].v, (long long)b->points[k].t);
  }
}

static const char *const queries[] = {
    "rate(m[1m])", "increase(m[2m])", "delta(m[90s])", "irate(m[1m])", "idelta(m[1m])",
    "deriv(m[2m])", "predict_linear(m[2m], 60)", "changes(m[3m])", "resets(m[3m])",
    "avg_over_time(m[2m])", "count_over_time(m[1m])", "sum_over_time(m[2m])",
    "max_over_time(m[2m])", "min_over_time(m[2m])", "stddev_over_time(m[2m])",
    "stdvar_over_time(m[2m])", "last_over_time(m[1m])", "present_over_time(m[1m])",
    "quantile_over_time(0.3, m[2m])", "holt_winters(m[3m], 0.5, 0.5)",
    "absent_over_time(m[1m])", "rate(m[1m] offset 30s)", "max_over_time(m[2m] @ 900)",
    "sum by (group) (rate(m[2m]))", "avg by (group) (sum_over_time(m[2m]))",
    "count(max_over_time(m[1m]))", "topk(3, rate(m[1m]))", "max by (group) (m)",
    "sum_over_time(rate(m[1m])[3m:30s])", "rate(m[1m]) + delta(m[90s])",
    "sum by (group) (rate(m[1m])) / sum by (group) (m offset 1m)",
};

/* Each step of a range query equals an instant query at that step. */
static void test_sliding_vs_instant(void **state) {
  tdb *db = *state;
  for (size_t qi = 0; qi < sizeof(queries) / sizeof(queries[0]); qi++) {
    const char *q = queries[qi];
    if (strstr(q, "topk")) continue; /* topk picks per step: series come and go */
    orr_arena *a = orr_arena_new(0);
    promql_result r;
    promql_errinfo err;
    if (run(db, a, q, true, 0, 1, 0, &r, &err)) fail_msg("%s: %s", q, err.msg);
    size_t seen = 0;
    /* Every third step: the windows of the others are as different. */
    for (int64_t t = T0; t <= T1; t += 3 * STEP_MS) {
      orr_arena *b = orr_arena_new(0);
      promql_result ir;
      if (run(db, b, q, false, t, 1, 0, &ir, &err)) fail_msg("%s @%lld: %s", q, (long long)t, err.msg);
      for (size_t i = 0; i < ir.nseries; i++) {
        const promql_series *s = find(&r, &ir.series[i].labels);
        if (!s) fail_msg("%s @%lld: series %zu missing in the range result", q, (long long)t, i);
        const promql_point *pt = NULL;
        for (size_t k = 0; k < s->npoints && !pt; k++)
          if (s->points[k].t == t) pt = &s->points[k];
        if (!pt || !same_bits(pt->v, ir.series[i].points[0].v))
          fail_msg("%s @%lld: %.17g in the range, %.17g instant", q, (long long)t,
                   pt ? pt->v : 0.0, ir.series[i].points[0].v);
        seen++;
      }
      orr_arena_destroy(b);
    }
    size_t total = 0;
    for (size_t i = 0; i < r.nseries; i++)
      for (size_t k = 0; k < r.series[i].npoints; k++) total += (r.series[i].points[k].t - T0) % (3 * STEP_MS) == 0;
    if (total != seen) fail_msg("%s: %zu range points, %zu instant ones", q, total, seen);
    orr_arena_destroy(a);
  }
}

/* Any thread count gives the single thread's answer, bit for bit. */
static void test_parallel_vs_sequential(void **state) {
  tdb *db = *state;
  for (size_t qi = 0; qi < sizeof(queries) / sizeof(queries[0]); qi++) {
    const char *q = queries[qi];
    for (int range = 0; range < 2; range++) {
      orr_arena *a = orr_arena_new(0);
      promql_result seq;
      promql_errinfo err;
      if (run(db, a, q, range, 1200000, 1, 0, &seq, &err)) fail_msg("%s: %s", q, err.msg);
      for (int64_t th = 2; th <= 5; th += 3) {
        orr_arena *b = orr_arena_new(0);
        promql_result par;
        if (run(db, b, q, range, 1200000, th, 0, &par, &err)) fail_msg("%s: %s", q, err.msg);
        assert_same(q, &seq, &par);
        orr_arena_destroy(b);
      }
      orr_arena_destroy(a);
    }
  }
}

/* The sample limit: for every limit around where the sequential loop starts
 * to fail, the parallel evaluation fails too, with the same error. */
static void test_parallel_limit(void **state) {
  tdb *db = *state;
  const char *q = "sum_over_time(m[2m])";
  orr_arena *a = orr_arena_new(0);
  promql_result r;
  promql_errinfo err;
  assert_int_equal(run(db, a, q, true, 0, 1, 0, &r, &err), 0);
  int64_t pts = 0;
  for (size_t i = 0; i < r.nseries; i++) pts += (int64_t)r.series[i].npoints;
  orr_arena_destroy(a);
  for (int64_t lim = pts / 2; lim < pts + 3000; lim += 211) {
    orr_arena *x = orr_arena_new(0), *y = orr_arena_new(0);
    promql_errinfo e1, e2;
    int r1 = run(db, x, q, true, 0, 1, lim, &r, &e1);
    int r2 = run(db, y, q, true, 0, 4, lim, &r, &e2);
    assert_int_equal(r1, r2);
    if (r1) {
      assert_int_equal(e1.type, e2.type);
      assert_string_equal(e1.msg, e2.msg);
    }
    orr_arena_destroy(x);
    orr_arena_destroy(y);
  }
}

/* Aggregations of a range function evaluated fused (engine.c, design note
 * 8) against the same query through the matrix: a regex on the name keeps
 * the engine off the fused path and changes nothing else. */
static const char *const fused[] = {
    "sum by (group) (rate(%s[2m]))", "avg by (group) (sum_over_time(%s[2m]))",
    "count(max_over_time(%s[1m]))", "min without (instance) (delta(%s[90s]))",
    "max by (group) (irate(%s[1m]))", "stddev by (group) (deriv(%s[2m]))",
    "stdvar(avg_over_time(%s[2m]))", "group by (group) (changes(%s[3m]))",
    "sum by (group) (predict_linear(%s[2m], 60))", "sum(count_over_time(%s[1m] offset 1m))",
    "sum by (__name__) (last_over_time(%s[1m]))", "avg without (group) (resets(%s[3m]))",
    "sum by (group) (stddev_over_time(%s[2m])) / 2", "histogram_quantile(0.5, sum by (le) (rate(%s[2m])))",
    "topk(2, sum by (group) (rate(%s[2m])))", "bottomk(1, (max by (group) (idelta(%s[1m]))))",
    "max_over_time(sum by (group) (rate(%s[2m]))[5m:30s])",
    "avg_over_time(count(irate(%s[1m]))[3m:45s] offset 1m)",
};

static void test_fused_vs_matrix(void **state) {
  tdb *db = *state;
  /* Unordered; in label order and said so (folded while loading); said to
   * be ordered but not (the engine selects again). */
  for (int mode = 0; mode < 3; mode++) {
  db->sorted = mode == 1;
  db->ordered = mode >= 1;
  for (size_t qi = 0; qi < sizeof(fused) / sizeof(fused[0]); qi++) {
    char q1[256], q2[256];
    snprintf(q1, sizeof(q1), fused[qi], "m");
    snprintf(q2, sizeof(q2), fused[qi], "{__name__=~\"m\"}");
    for (int range = 0; range < 2; range++)
      for (int64_t th = 1; th <= 4; th += 3) {
        orr_arena *a = orr_arena_new(0), *b = orr_arena_new(0);
        promql_result x, y;
        promql_errinfo err;
        if (run(db, a, q1, range, 1200000, th, 0, &x, &err)) fail_msg("%s: %s", q1, err.msg);
        if (run(db, b, q2, range, 1200000, th, 0, &y, &err)) fail_msg("%s: %s", q2, err.msg);
        assert_same(q1, &x, &y);
        orr_arena_destroy(a);
        orr_arena_destroy(b);
      }
  }
  /* The sample limit fails at the same limits on both paths. */
  const char *l1 = "sum by (group) (rate(m[1m]))", *l2 = "sum by (group) (rate({__name__=~\"m\"}[1m]))";
  for (int64_t lim = 100; lim < 40000; lim = lim * 5 / 4 + 7) {
    orr_arena *a = orr_arena_new(0), *b = orr_arena_new(0);
    promql_result x, y;
    promql_errinfo e1, e2;
    int r1 = run(db, a, l1, true, 0, 2, lim, &x, &e1);
    int r2 = run(db, b, l2, true, 0, 2, lim, &y, &e2);
    if (r1 != r2) fail_msg("limit %lld: fused %d, matrix %d", (long long)lim, r1, r2);
    if (r1) assert_string_equal(e1.msg, e2.msg);
    orr_arena_destroy(a);
    orr_arena_destroy(b);
  }
  }
  db->sorted = db->ordered = false;
}

/* Aggregations of a vector selector evaluated fused (the selector's
 * lookback folded per group and step) against the same query through the
 * step vectors (promql__fusion_off), one thread. Stale markers end a
 * series' value; NaN and Inf are folded as values. */
static const char *const fused_vs[] = {
    "count by (group) (%s)", "sum by (group) (%s)", "avg without (instance) (%s)",
    "min(%s)", "max by (group) (%s offset 1m)", "group by (group) (%s)",
    "stddev by (group) (%s)", "stdvar(%s offset -30s)", "count by (__name__) (%s)",
    "sum by (group) ((%s))", "count(%s) / 2", "topk(2, count by (group) (%s))",
    "histogram_quantile(0.5, sum by (le) (%s))", "label_replace(avg by (group) (%s), \"x\", \"y\", \"\", \"\")",
    "max_over_time(count by (group) (%s)[5m:30s])", "sum_over_time(sum(%s)[4m:])",
};

static void test_fused_vs_selector(void **state) {
  tdb *db = *state;
  /* Unordered; in label order and said so (folded while loading); said to
   * be ordered but not (the engine selects again). */
  for (int mode = 0; mode < 3; mode++) {
  db->sorted = mode == 1;
  db->ordered = mode >= 1;
  for (size_t qi = 0; qi < sizeof(fused_vs) / sizeof(fused_vs[0]); qi++) {
    char q1[256], q2[256];
    snprintf(q1, sizeof(q1), fused_vs[qi], "m");
    snprintf(q2, sizeof(q2), fused_vs[qi], "m");
    for (int range = 0; range < 2; range++)
      for (int64_t th = 1; th <= 5; th++) {
        if (th == 3 || th == 4) continue; /* 1, 2 and 5 threads */
        orr_arena *a = orr_arena_new(0), *b = orr_arena_new(0);
        promql_result x, y;
        promql_errinfo err;
        if (run(db, a, q1, range, 1200000, th, 0, &x, &err)) fail_msg("%s: %s", q1, err.msg);
        promql__fusion_off = true;
        int r2 = run(db, b, q2, range, 1200000, 1, 0, &y, &err);
        promql__fusion_off = false;
        if (r2) fail_msg("%s: %s", q2, err.msg);
        assert_same(q1, &x, &y);
        /* Not an empty comparison: the data has values at most steps (it
         * has no le label: histogram_quantile gives nothing on both paths). */
        if (!strstr(q1, "histogram_quantile")) assert_true(x.nseries > 0);
        orr_arena_destroy(a);
        orr_arena_destroy(b);
      }
  }
  /* The sample limit fails at the same limits on both paths. */
  const char *l1 = "count by (group) (m)";
  int fails = 0, passes = 0;
  for (int64_t lim = 100; lim < 80000; lim = lim * 5 / 4 + 7) {
    for (int64_t th = 1; th <= 5; th += 4) {
      orr_arena *a = orr_arena_new(0), *b = orr_arena_new(0);
      promql_result x, y;
      promql_errinfo e1, e2;
      int r1 = run(db, a, l1, true, 0, th, lim, &x, &e1);
      promql__fusion_off = true;
      int r2 = run(db, b, l1, true, 0, 1, lim, &y, &e2);
      promql__fusion_off = false;
      if (r1 != r2) fail_msg("limit %lld: fused %d, vectors %d", (long long)lim, r1, r2);
      if (r1) {
        assert_string_equal(e1.msg, e2.msg);
        fails++;
      } else {
        assert_same(l1, &x, &y);
        passes++;
      }
      orr_arena_destroy(a);
      orr_arena_destroy(b);
    }
  }
  assert_true(fails > 0 && passes > 0);
  }
  db->sorted = db->ordered = false;
}

static int setup(void **state) {
  static tdb db;
  fill(&db);
  *state = &db;
  return 0;
}

static int teardown(void **state) {
  tdb *db = *state;
  orr_arena_destroy(db->a);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sliding_vs_instant),
      cmocka_unit_test(test_parallel_vs_sequential),
      cmocka_unit_test(test_parallel_limit),
      cmocka_unit_test(test_fused_vs_matrix),
      cmocka_unit_test(test_fused_vs_selector),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
