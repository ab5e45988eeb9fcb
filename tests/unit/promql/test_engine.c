/* test_engine.c: the PromQL engine against cases written in the spirit of
 * Prometheus's promql/testdata files (the cases are in
 * test_engine_cases.c), plus API-level checks: JSON bodies, limits,
 * cancellation, timeouts, range parameter validation. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "promql.h"

extern const char *const engine_cases[];

/* ---------------------------------------------------------------- loader */
typedef struct tseries {
  labels_set ls;
  promql_point *p;
  size_t n;
} tseries;

typedef struct tdb {
  orr_arena *a;
  tseries *s;
  size_t n, cap;
} tdb;

static int64_t dur(const char *s) {
  int64_t ms = 0;
  if (strcmp(s, "0") == 0) return 0;
  if (orr_parse_duration(s, strlen(s), &ms) != 0) {
    fail_msg("bad duration %s", s);
  }
  return ms;
}

/* Parses `name{a="b"}` into a label set (via the metric selector parser). */
static void parse_labels(orr_arena *a, const char *text, size_t n, labels_set *out) {
  promql_ast *ast;
  promql_error err;
  if (n == 2 && memcmp(text, "{}", 2) == 0) {
    out->v = NULL;
    out->n = 0;
    return;
  }
  if (promql_parse_metric_selector(a, text, n, &ast, &err) != 0)
    fail_msg("bad series %.*s: %s", (int)n, text, err.msg);
  const promql_expr *e = promql_ast_root(ast);
  labels_builder b;
  labels_builder_init(&b, a, NULL);
  for (size_t i = 0; i < e->u.vs.nmatchers; i++) {
    labels_matcher *m = e->u.vs.matchers[i];
    labels_builder_set(&b, orr_arena_strdup(a, labels_matcher_name(m)),
                       orr_arena_strdup(a, labels_matcher_value(m)));
  }
  assert_int_equal(labels_builder_finish(&b, out), 0);
  promql_ast_free(ast);
}

/* Splits a "series values" line: the series text ends at the last '}' or the
 * first space when there are no braces. */
static const char *split_series(const char *line, size_t *n) {
  const char *br = strchr(line, '{');
  const char *sp = strchr(line, ' ');
  if (br && (!sp || br < sp)) {
    /* find matching close brace outside quotes */
    const char *p = br;
    bool q = false;
    for (; *p; p++) {
      if (*p == '\\' && q && p[1]) {
        p++;
        continue;
      }
      if (*p == '"') q = !q;
      if (*p == '}' && !q) break;
    }
    *n = (size_t)(p - line + 1);
  } else {
    *n = sp ? (size_t)(sp - line) : strlen(line);
  }
  return line + *n;
}

static double parse_num(const char *t) {
  if (!strcmp(t, "NaN")) return NAN;
  if (!strcmp(t, "Inf") || !strcmp(t, "+Inf")) return INFINITY;
  if (!strcmp(t, "-Inf")) return -INFINITY;
  char *end;
  double v = strtod(t, &end);
  if (*end) fail_msg("bad number %s", t);
  return v;
}

/* Expands the test language's value notation: "1 2 _ stale 0+10x3 1-1x2 _x2 5x2". */
typedef struct tval {
  bool missing;
  double v;
} tval;

static size_t expand_values(const char *s, tval *out, size_t cap) {
  size_t n = 0;
  char tok[128];
  while (*s) {
    while (*s == ' ') s++;
    if (!*s) break;
    size_t l = 0;
    while (s[l] && s[l] != ' ') l++;
    assert_true(l < sizeof(tok));
    memcpy(tok, s, l);
    tok[l] = 0;
    s += l;
    char *x = strrchr(tok, 'x');
    if (x && x != tok && x[1] >= '0' && x[1] <= '9') {
      *x = 0;
      long times = strtol(x + 1, NULL, 10);
      if (!strcmp(tok, "_")) {
        for (long i = 0; i < times && n < cap; i++) out[n++].missing = true;
        continue;
      }
      /* a+b or a-b (b may be missing: "5x2" repeats) */
      char *op = NULL;
      for (char *c = tok + 1; *c; c++)
        if ((*c == '+' || *c == '-') && c[-1] != 'e' && c[-1] != 'E') {
          op = c;
          break;
        }
      double a, b = 0;
      if (op) {
        char sign = *op;
        *op = 0;
        a = parse_num(tok);
        b = parse_num(op + 1);
        if (sign == '-') b = -b;
      } else {
        a = parse_num(tok);
      }
      for (long i = 0; i <= times && n < cap; i++) {
        out[n].missing = false;
        out[n].v = a + b * (double)i;
        n++;
      }
      continue;
    }
    if (!strcmp(tok, "_")) {
      out[n++].missing = true;
    } else if (!strcmp(tok, "stale")) {
      uint64_t bits = 0x7ff0000000000002ULL;
      out[n].missing = false;
      memcpy(&out[n].v, &bits, sizeof(double));
      n++;
    } else {
      out[n].missing = false;
      out[n].v = parse_num(tok);
      n++;
    }
    if (n >= cap) break;
  }
  return n;
}

static void tdb_add(tdb *db, const char *line, int64_t interval) {
  size_t sl;
  const char *rest = split_series(line, &sl);
  tseries s;
  parse_labels(db->a, line, sl, &s.ls);
  tval *v = malloc(20000 * sizeof(*v));
  size_t n = expand_values(rest, v, 20000);
  s.p = orr_arena_alloc(db->a, (n ? n : 1) * sizeof(promql_point));
  s.n = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i].missing) continue;
    s.p[s.n].t = (int64_t)i * interval;
    s.p[s.n].v = v[i].v;
    s.n++;
  }
  free(v);
  if (db->n == db->cap) {
    db->cap = db->cap ? db->cap * 2 : 16;
    db->s = realloc(db->s, db->cap * sizeof(*db->s));
  }
  db->s[db->n++] = s;
}

static int tdb_select(void *ctx, const promql_selector *sel, promql_emit_fn emit, void *arg,
                      char *err, size_t errlen) {
  tdb *db = ctx;
  (void)err;
  (void)errlen;
  for (size_t i = 0; i < db->n; i++) {
    tseries *s = &db->s[i];
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

/* ---------------------------------------------------------------- runner */
typedef struct expect {
  labels_set ls;
  bool scalar;
  tval v[2000];
  size_t nv;
  bool matched;
} expect;

static bool close_enough(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (a == b) return true;
  double d = fabs(a - b), m = fmax(fabs(a), fabs(b));
  return d <= 1e-9 * m || d <= 1e-12;
}

static int ncases, nfailed;

static void report(const char *what, const char *expr, const char *fmt, ...) ORR_PRINTF(3, 4);
static void report(const char *what, const char *expr, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "FAIL %s: %s\n  ", what, expr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  nfailed++;
}

static void fmt_ls(const labels_set *ls, char *out, size_t n) {
  orr_buf b = {0};
  labels_format(ls, &b);
  snprintf(out, n, "%s", b.data ? b.data : "{}");
  orr_buf_free(&b);
}

typedef struct evalcmd {
  bool range, fail, ordered;
  int64_t at, start, end, step;
  const char *expr;
  const char *errsub;
  expect *ex;
  size_t nex;
} evalcmd;

static void run_eval(tdb *db, evalcmd *c) {
  ncases++;
  orr_arena *a = orr_arena_new(0);
  promql_query_params p;
  memset(&p, 0, sizeof(p));
  p.range = c->range;
  p.start_ms = c->range ? c->start : c->at;
  p.end_ms = c->range ? c->end : c->at;
  p.step_ms = c->step;
  promql_storage st = {db, tdb_select, false, false};
  promql_result res;
  promql_errinfo err;
  int rc = promql_eval(a, c->expr, strlen(c->expr), &p, &st, &res, &err);
  if (c->fail) {
    if (rc == 0)
      report("expected error", c->expr, "got success");
    else if (c->errsub && !strstr(err.msg, c->errsub))
      report("error text", c->expr, "got \"%s\", want \"%s\"", err.msg, c->errsub);
    goto out;
  }
  if (rc) {
    report("unexpected error", c->expr, "%s", err.msg);
    goto out;
  }
  if (res.type == PROMQL_TYPE_SCALAR) {
    if (c->nex != 1 || !c->ex[0].scalar || !close_enough(res.scalar, c->ex[0].v[0].v))
      report("scalar", c->expr, "got %.17g", res.scalar);
    goto out;
  }
  if (res.type == PROMQL_TYPE_STRING) {
    report("string", c->expr, "string results are not compared");
    goto out;
  }
  if (res.nseries != c->nex) {
    char buf[512] = "";
    if (res.nseries) fmt_ls(&res.series[0].labels, buf, sizeof(buf));
    report("series count", c->expr, "got %zu series (first %s), want %zu", res.nseries, buf,
           c->nex);
    goto out;
  }
  for (size_t i = 0; i < res.nseries; i++) {
    const promql_series *s = &res.series[i];
    expect *e = NULL;
    if (c->ordered) {
      e = &c->ex[i];
      if (!labels_equal(&e->ls, &s->labels)) e = NULL;
    } else {
      for (size_t k = 0; k < c->nex; k++)
        if (!c->ex[k].matched && labels_equal(&c->ex[k].ls, &s->labels)) {
          e = &c->ex[k];
          break;
        }
    }
    char buf[512];
    fmt_ls(&s->labels, buf, sizeof(buf));
    if (!e) {
      report("unexpected series", c->expr, "%s (index %zu)", buf, i);
      goto out;
    }
    e->matched = true;
    if (res.type == PROMQL_TYPE_VECTOR || !c->range) {
      if (res.type == PROMQL_TYPE_MATRIX) {
        /* instant matrix: expected values are the points in order */
        size_t k = 0;
        for (size_t j = 0; j < e->nv; j++) {
          if (e->v[j].missing) continue;
          if (k >= s->npoints || !close_enough(s->points[k].v, e->v[j].v)) {
            report("matrix value", c->expr, "%s point %zu", buf, k);
            goto out;
          }
          k++;
        }
        if (k != s->npoints) report("matrix points", c->expr, "%s: %zu points", buf, s->npoints);
        continue;
      }
      if (e->nv != 1 || !close_enough(s->points[0].v, e->v[0].v))
        report("value", c->expr, "%s = %.17g, want %.17g", buf, s->points[0].v,
               e->nv ? e->v[0].v : NAN);
      continue;
    }
    /* range: one expected value (or _) per step */
    size_t k = 0;
    int64_t t = c->start;
    for (size_t j = 0; j < e->nv; j++, t += c->step) {
      if (e->v[j].missing) continue;
      if (k >= s->npoints || s->points[k].t != t || !close_enough(s->points[k].v, e->v[j].v)) {
        report("range value", c->expr, "%s at %lld: got %s%.17g", buf, (long long)t,
               k < s->npoints ? "" : "nothing ", k < s->npoints ? s->points[k].v : 0);
        goto out;
      }
      k++;
    }
    if (k != s->npoints) report("range points", c->expr, "%s: %zu extra points", buf, s->npoints - k);
  }
out:
  orr_arena_destroy(a);
}

static void test_cases(void **state) {
  (void)state;
  tdb db = {orr_arena_new(0), NULL, 0, 0};
  int64_t interval = 0;
  bool in_load = false;
  evalcmd cur;
  bool have = false;
  expect *ex = malloc(64 * sizeof(expect));
  assert_non_null(ex);
  char line[4096];
  for (size_t li = 0;; li++) {
    const char *l = engine_cases[li];
    bool end = l == NULL;
    bool indented = !end && l[0] == ' ';
    if (have && (end || !indented)) {
      run_eval(&db, &cur);
      have = false;
    }
    if (end) break;
    snprintf(line, sizeof(line), "%s", l);
    char *s = line;
    while (*s == ' ') s++;
    if (!*s || *s == '#') continue;
    if (indented) {
      if (in_load) {
        tdb_add(&db, s, interval);
      } else if (have) {
        if (cur.fail) {
          cur.errsub = engine_cases[li] + (s - line);
          continue;
        }
        assert_true(cur.nex < 64);
        expect *e = &cur.ex[cur.nex++];
        memset(e, 0, sizeof(*e));
        if (*s == '{' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_') {
          if (!strncmp(s, "NaN", 3) || !strncmp(s, "Inf", 3)) goto scalar;
          size_t sl;
          const char *rest = split_series(s, &sl);
          parse_labels(db.a, s, sl, &e->ls);
          e->nv = expand_values(rest, e->v, 2000);
        } else {
        scalar:
          e->scalar = true;
          e->nv = expand_values(s, e->v, 2000);
        }
      }
      continue;
    }
    in_load = false;
    if (!strncmp(s, "load ", 5)) {
      interval = dur(s + 5);
      in_load = true;
    } else if (!strcmp(s, "clear")) {
      free(db.s);
      orr_arena_destroy(db.a);
      db.a = orr_arena_new(0);
      db.s = NULL;
      db.n = db.cap = 0;
    } else if (!strncmp(s, "eval", 4)) {
      memset(&cur, 0, sizeof(cur));
      cur.ex = ex;
      const char *w = s + 4;
      if (!strncmp(w, "_fail", 5)) {
        cur.fail = true;
        w += 5;
      } else if (!strncmp(w, "_ordered", 8)) {
        cur.ordered = true;
        w += 8;
      }
      char a1[64], a2[64], a3[64];
      int off = 0;
      const char *src = engine_cases[li] + (w - line);
      if (sscanf(w, " instant at %63s %n", a1, &off) == 1 && off) {
        cur.at = dur(a1);
      } else if (sscanf(w, " range from %63s to %63s step %63s %n", a1, a2, a3, &off) == 3 && off) {
        cur.range = true;
        cur.start = dur(a1);
        cur.end = dur(a2);
        cur.step = dur(a3);
      } else {
        fail_msg("bad eval line: %s", s);
      }
      cur.expr = src + off;
      have = true;
    } else {
      fail_msg("bad line: %s", s);
    }
  }
  free(ex);
  free(db.s);
  orr_arena_destroy(db.a);
  fprintf(stderr, "%d cases, %d failed\n", ncases, nfailed);
  assert_true(ncases >= 250);
  assert_int_equal(nfailed, 0);
}

/* ---------------------------------------------------------------- API level */
static tdb small_db(void) {
  tdb db = {orr_arena_new(0), NULL, 0, 0};
  tdb_add(&db, "up{job=\"a\",esc=\"q\\\"<&>\"} 1 1 1 1 1", 15000);
  tdb_add(&db, "up{job=\"b\"} 0.5 0.25 1e-7 1e21 NaN", 15000);
  return db;
}

static char *query_json(tdb *db, const char *q, bool range, int64_t s, int64_t e, int64_t step,
                        int64_t max_samples) {
  orr_arena *a = orr_arena_new(0);
  promql_query_params p;
  memset(&p, 0, sizeof(p));
  p.range = range;
  p.start_ms = s;
  p.end_ms = e;
  p.step_ms = step;
  p.max_samples = max_samples;
  promql_storage st = {db, tdb_select, false, false};
  promql_result res;
  promql_errinfo err;
  orr_buf b = {0};
  promql_json_writer w = {&b, 0, NULL, NULL, 0};
  if (promql_eval(a, q, strlen(q), &p, &st, &res, &err) == 0)
    promql_json_write_result(&w, &res);
  else
    promql_json_write_error(&w, err.type, err.msg);
  orr_arena_destroy(a);
  char *out = strdup(b.data ? b.data : "");
  orr_buf_free(&b);
  return out;
}

/* A subquery of 3e10 steps (1y:1ms) is refused by the sample limit with
 * Prometheus's 422 message, before anything is allocated for its steps (it
 * used to fail with "out of memory"). */
static void test_subquery_sample_limit(void **state) {
  (void)state;
  tdb db = small_db();
  static const char *const qs[] = {
      "max_over_time(vector(1)[1y:1ms])",
      "max_over_time((-vector(1))[1y:1ms])",
  };
  for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
    char *j = query_json(&db, qs[i], false, 60000, 60000, 0, 0);
    if (strcmp(j, "{\"status\":\"error\",\"errorType\":\"execution\",\"error\":\"query "
                  "processing would load too many samples into memory in query execution\"}"))
      fail_msg("%s: %s", qs[i], j);
    free(j);
  }
  free(db.s);
  orr_arena_destroy(db.a);
}

static void test_json(void **state) {
  (void)state;
  tdb db = small_db();
  char *j = query_json(&db, "up", false, 60000, 60000, 0, 0);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                         "{\"metric\":{\"__name__\":\"up\",\"esc\":\"q\\\"\\u003c\\u0026\\u003e\","
                         "\"job\":\"a\"},\"value\":[60,\"1\"]},"
                         "{\"metric\":{\"__name__\":\"up\",\"job\":\"b\"},\"value\":[60,\"NaN\"]}]}}");
  free(j);
  j = query_json(&db, "up{job=\"b\"}", true, 0, 45000, 15000, 0);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                         "{\"metric\":{\"__name__\":\"up\",\"job\":\"b\"},\"values\":[[0,\"0.5\"],"
                         "[15,\"0.25\"],[30,\"1e-07\"],[45,\"1e+21\"]]}]}}");
  free(j);
  j = query_json(&db, "up{job=\"b\"}", false, 1500, 1500, 0, 0);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                         "{\"metric\":{\"__name__\":\"up\",\"job\":\"b\"},\"value\":[1.500,\"0.5\"]}]}}");
  free(j);
  j = query_json(&db, "scalar(up{job=\"b\"}) * 1e-7", false, 1500, 1500, 0, 0);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
                         "[1.5,\"0.00000005\"]}}");
  free(j);
  j = query_json(&db, "\"a<b\"", false, 1000, 1000, 0, 0);
  assert_string_equal(j, "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":"
                         "[1,\"a\\u003cb\"]}}");
  free(j);
  j = query_json(&db, "up[30s]", false, 30000, 30000, 0, 0);
  assert_non_null(strstr(j, "\"resultType\":\"matrix\""));
  assert_non_null(strstr(j, "\"values\":[[0,\"1\"],[15,\"1\"],[30,\"1\"]]"));
  free(j);
  j = query_json(&db, "sum(", false, 0, 0, 0, 0);
  assert_string_equal(j, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":"
                         "\"1:5: parse error: unclosed left parenthesis\"}");
  free(j);
  j = query_json(&db, "up", false, 0, 0, 0, 1);
  assert_string_equal(j, "{\"status\":\"error\",\"errorType\":\"execution\",\"error\":\"query "
                         "processing would load too many samples into memory in query execution\"}");
  free(j);
  /* Prometheus's accounting: 2 selected + 2 in the step's input vector + 1
   * result must fit. */
  j = query_json(&db, "sum(up)", false, 60000, 60000, 0, 4);
  assert_non_null(strstr(j, "too many samples"));
  free(j);
  j = query_json(&db, "sum(up)", false, 60000, 60000, 0, 5);
  assert_non_null(strstr(j, "\"success\""));
  free(j);
  j = query_json(&db, "up[1m]", true, 0, 60000, 15000, 0);
  assert_non_null(strstr(j, "invalid expression type \\\"range vector\\\" for range query"));
  free(j);
  free(db.s);
  orr_arena_destroy(db.a);
}

static int flushes;
static int count_flush(void *arg, orr_buf *b) {
  orr_buf *sink = arg;
  orr_buf_append(sink, b->data, b->len);
  orr_buf_reset(b);
  flushes++;
  return 0;
}

static void test_json_streaming(void **state) {
  (void)state;
  tdb db = {orr_arena_new(0), NULL, 0, 0};
  char line[128];
  for (int i = 0; i < 200; i++) {
    snprintf(line, sizeof(line), "m{i=\"%03d\"} 0+1x100", i);
    tdb_add(&db, line, 15000);
  }
  orr_arena *a = orr_arena_new(0);
  promql_query_params p = {true, 0, 1500000, 15000, 0, 0, 0, 0, NULL, 0};
  promql_storage st = {&db, tdb_select, false, false};
  promql_result res;
  promql_errinfo err;
  assert_int_equal(promql_eval(a, "m", 1, &p, &st, &res, &err), 0);
  assert_int_equal(res.nseries, 200);
  orr_buf whole = {0}, buf = {0}, sink = {0};
  promql_json_writer w1 = {&whole, 0, NULL, NULL, 0};
  promql_json_writer w2 = {&buf, 4096, count_flush, &sink, 0};
  assert_int_equal(promql_json_write_result(&w1, &res), 0);
  assert_int_equal(promql_json_write_result(&w2, &res), 0);
  assert_true(flushes > 10);
  assert_int_equal(buf.len, 0);
  assert_int_equal(sink.len, whole.len);
  assert_memory_equal(sink.data, whole.data, whole.len);
  orr_buf_free(&whole);
  orr_buf_free(&buf);
  orr_buf_free(&sink);
  orr_arena_destroy(a);
  free(db.s);
  orr_arena_destroy(db.a);
}

static void test_cancel_and_timeout(void **state) {
  (void)state;
  tdb db = {orr_arena_new(0), NULL, 0, 0};
  tdb_add(&db, "m 0+1x2000", 15000);
  orr_arena *a = orr_arena_new(0);
  volatile int cancel = 1;
  promql_query_params p = {true, 0, 30000000, 15000, 0, 0, 0, 0, &cancel, 0};
  promql_storage st = {&db, tdb_select, false, false};
  promql_result res;
  promql_errinfo err;
  assert_int_equal(promql_eval(a, "sum_over_time(m[1h])", 20, &p, &st, &res, &err), ORR_ECANCELED);
  assert_int_equal(err.type, PROMQL_ERR_CANCELED);
  assert_string_equal(err.msg, "query was canceled in expression evaluation");
  /* A deadline already past when evaluation starts. */
  p.cancel = NULL;
  p.timeout_ms = 1;
  promql_query *q;
  const char *slow = "sum_over_time(m[1h:1s])";
  assert_int_equal(promql_query_new(a, slow, strlen(slow), &p, &q, &err), 0);
  size_t ns;
  const promql_selector *sels = promql_query_selectors(q, &ns);
  assert_int_equal(ns, 1);
  assert_int_equal(promql_query_add_series(q, 0, &db.s[0].ls, db.s[0].p, db.s[0].n), 0);
  (void)sels;
  assert_int_equal(promql_query_exec(q, &res, &err), ORR_ETIMEOUT);
  assert_int_equal(err.type, PROMQL_ERR_TIMEOUT);
  assert_string_equal(err.msg, "query timed out in expression evaluation");
  promql_query_free(q);
  orr_arena_destroy(a);
  free(db.s);
  orr_arena_destroy(db.a);
}

/* promql_query_add_partial: a node's own result and partials computed
 * elsewhere, merged per label set and step (aggregation pushdown). */
static void run_partial(const char *qs, const double *want_a, size_t nwant_a, double want_b) {
  orr_arena *a = orr_arena_new(0);
  promql_query_params p = {true, 0, 60000, 30000, 0, 0, 0, 0, NULL, 0};
  promql_query *q;
  promql_errinfo err;
  assert_int_equal(promql_query_new(a, qs, strlen(qs), &p, &q, &err), 0);
  labels_label la[] = {{"__name__", "m"}, {"i", "1"}, {"job", "a"}};
  labels_set ls = {la, 3};
  promql_point pts[] = {{0, 5}, {15000, 5}, {30000, 5}, {45000, 5}, {60000, 5}};
  assert_int_equal(promql_query_add_series(q, 0, &ls, pts, 5), 0);
  const promql_expr *agg = promql_query_expr(q);
  labels_label ja[] = {{"job", "a"}}, jb[] = {{"job", "b"}};
  labels_set lja = {ja, 1}, ljb = {jb, 1};
  promql_point pa[] = {{0, 3}, {30000, 7}, {60000, NAN}}, pb[] = {{30000, 2}};
  assert_int_equal(promql_query_add_partial(q, agg, &lja, pa, 3), 0);
  assert_int_equal(promql_query_add_partial(q, agg, &ljb, pb, 1), 0);
  promql_point bad[] = {{30000, 1}, {0, 1}};
  assert_int_equal(promql_query_add_partial(q, agg, &ljb, bad, 2), ORR_EINVAL);
  promql_result res;
  assert_int_equal(promql_query_exec(q, &res, &err), 0);
  assert_int_equal(res.nseries, 2);
  assert_string_equal(labels_get(&res.series[0].labels, "job"), "a");
  assert_int_equal(res.series[0].npoints, nwant_a);
  for (size_t i = 0; i < nwant_a; i++) {
    assert_int_equal(res.series[0].points[i].t, (int64_t)i * 30000);
    if (isnan(want_a[i]))
      assert_true(isnan(res.series[0].points[i].v));
    else
      assert_true(res.series[0].points[i].v == want_a[i]);
  }
  assert_string_equal(labels_get(&res.series[1].labels, "job"), "b");
  assert_int_equal(res.series[1].npoints, 1);
  assert_int_equal(res.series[1].points[0].t, 30000);
  assert_true(res.series[1].points[0].v == want_b);
  promql_query_free(q);
  orr_arena_destroy(a);
}

static void test_partials(void **state) {
  (void)state;
  const double mn[] = {3, 5, 5}, sm[] = {8, 12, NAN}, mx[] = {5, 7, 5}, gr[] = {1, 1, 1};
  const double cn[] = {4, 8, NAN}; /* counts add: 1 + 3, 1 + 7 */
  run_partial("min by (job) (m)", mn, 3, 2);
  run_partial("sum by (job) (m)", sm, 3, 2);
  run_partial("max by (job) (m)", mx, 3, 2);
  run_partial("count by (job) (m)", cn, 3, 2);
  run_partial("group by (job) (m)", gr, 3, 1);
  /* topk: the partials join the input and the node picks again. */
  {
    orr_arena *ta = orr_arena_new(0);
    promql_query_params rp = {true, 0, 60000, 30000, 0, 0, 0, 0, NULL, 0};
    promql_query *q;
    const char *qs = "topk by (job) (1, m)";
    promql_errinfo err;
    assert_int_equal(promql_query_new(ta, qs, strlen(qs), &rp, &q, &err), 0);
    labels_label l1[] = {{"__name__", "m"}, {"i", "1"}, {"job", "a"}};
    labels_label l2[] = {{"i", "2"}, {"job", "a"}};
    labels_set s1 = {l1, 3}, s2 = {l2, 2};
    promql_point p1[] = {{0, 5}, {30000, 5}, {60000, 5}}, p2[] = {{0, 9}, {60000, 1}};
    assert_int_equal(promql_query_add_series(q, 0, &s1, p1, 3), 0);
    assert_int_equal(promql_query_add_partial(q, promql_query_expr(q), &s2, p2, 2), 0);
    promql_result res;
    assert_int_equal(promql_query_exec(q, &res, &err), 0);
    assert_int_equal(res.nseries, 2);
    assert_string_equal(labels_get(&res.series[0].labels, "i"), "1");
    assert_int_equal(res.series[0].npoints, 2);
    assert_int_equal(res.series[0].points[0].t, 30000);
    assert_string_equal(labels_get(&res.series[1].labels, "i"), "2");
    assert_int_equal(res.series[1].npoints, 1);
    assert_true(res.series[1].points[0].v == 9);
    promql_query_free(q);
    orr_arena_destroy(ta);
  }
  /* Only sum, min, max, count, group, topk and bottomk by take partials. */
  orr_arena *a = orr_arena_new(0);
  promql_query_params p = {false, 0, 0, 0, 0, 0, 0, 0, NULL, 0};
  promql_errinfo err;
  const char *no[] = {"avg by (job) (m)", "sum without (i) (m)", "topk without (i) (1, m)", "m"};
  labels_label ja[] = {{"job", "a"}};
  labels_set lja = {ja, 1};
  promql_point pt = {0, 1};
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
    promql_query *q;
    assert_int_equal(promql_query_new(a, no[i], strlen(no[i]), &p, &q, &err), 0);
    assert_int_equal(promql_query_add_partial(q, promql_query_expr(q), &lja, &pt, 1), ORR_EINVAL);
    promql_query_free(q);
  }
  orr_arena_destroy(a);
}

static void test_range_params(void **state) {
  (void)state;
  promql_errinfo e;
  assert_int_equal(promql_check_range_params(0, 11000000, 1000, &e), 0);
  assert_int_equal(promql_check_range_params(0, 11001000, 1000, &e), ORR_EINVAL);
  assert_string_equal(e.msg, "exceeded maximum resolution of 11,000 points per timeseries. Try "
                             "decreasing the query resolution (?step=XX)");
  assert_int_equal(e.type, PROMQL_ERR_BAD_DATA);
  assert_int_equal(promql_check_range_params(10, 0, 1000, &e), ORR_EINVAL);
  assert_string_equal(e.msg, "invalid parameter \"end\": end timestamp must not be before start time");
  assert_int_equal(promql_check_range_params(0, 10, 0, &e), ORR_EINVAL);
  assert_non_null(strstr(e.msg, "zero or negative query resolution step widths"));
}

static void test_format_float_f(void **state) {
  (void)state;
  struct {
    double v;
    const char *s;
  } c[] = {{0.1, "0.1"},        {1e-7, "0.0000001"}, {1e21, "1000000000000000000000"},
           {-2.5, "-2.5"},      {NAN, "NaN"},        {INFINITY, "+Inf"},
           {-INFINITY, "-Inf"}, {123456.75, "123456.75"}, {5e-324, NULL}};
  for (size_t i = 0; c[i].s; i++) {
    orr_buf b = {0};
    promql_format_float_f(&b, c[i].v);
    assert_string_equal(b.data, c[i].s);
    orr_buf_free(&b);
  }
  orr_buf b = {0};
  promql_json_timestamp(&b, -1500);
  promql_json_timestamp(&b, 1700000000123);
  promql_json_timestamp(&b, 7);
  assert_string_equal(b.data, "-1.5001700000000.1230.007");
  orr_buf_free(&b);
}

typedef struct feeder {
  promql_query *q;
  size_t sel;
  tdb *db;
  int rc;
} feeder;

static void *feed_thread(void *arg) {
  feeder *f = arg;
  const promql_selector *sels;
  size_t n;
  sels = promql_query_selectors(f->q, &n);
  for (size_t i = 0; i < f->db->n && !f->rc; i++)
    if (labels_matches_all(&f->db->s[i].ls, sels[f->sel].matchers, sels[f->sel].nmatchers))
      f->rc = promql_query_add_series(f->q, f->sel, &f->db->s[i].ls, f->db->s[i].p, f->db->s[i].n);
  return NULL;
}

/* Selectors fed from several threads at once give the serial answer. */
static void test_concurrent_feeding(void **state) {
  (void)state;
  tdb db = {orr_arena_new(0), NULL, 0, 0};
  char line[128];
  for (int i = 0; i < 400; i++) {
    snprintf(line, sizeof(line), "%s{i=\"%03d\"} %d+%dx40", i % 2 ? "a" : "b", i / 2, i, i % 7);
    tdb_add(&db, line, 15000);
  }
  const char *q = "sum by (i) (rate(a[1m])) + on(i) sum by (i) (b) - on(i) max by (i) (a offset 1m)";
  char *want = query_json(&db, q, true, 0, 600000, 15000, 0);
  orr_arena *a = orr_arena_new(0);
  promql_query_params p = {true, 0, 600000, 15000, 0, 0, 0, 0, NULL, 0};
  promql_query *qq;
  promql_errinfo err;
  assert_int_equal(promql_query_new(a, q, strlen(q), &p, &qq, &err), 0);
  size_t n;
  promql_query_selectors(qq, &n);
  assert_int_equal(n, 3);
  pthread_t th[3];
  feeder f[3];
  for (size_t i = 0; i < 3; i++) {
    f[i] = (feeder){qq, i, &db, 0};
    assert_int_equal(pthread_create(&th[i], NULL, feed_thread, &f[i]), 0);
  }
  for (size_t i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(f[i].rc, 0);
  }
  promql_result res;
  assert_int_equal(promql_query_exec(qq, &res, &err), 0);
  orr_buf b = {0};
  promql_json_writer w = {&b, 0, NULL, NULL, 0};
  assert_int_equal(promql_json_write_result(&w, &res), 0);
  assert_string_equal(b.data, want);
  assert_true(res.nseries == 200);
  orr_buf_free(&b);
  free(want);
  promql_query_free(qq);
  orr_arena_destroy(a);
  free(db.s);
  orr_arena_destroy(db.a);
}

/* promql_storage.concurrent: the selectors are selected side by side, each
 * selector's series from one thread; the answer is the sequential one, and
 * of several failing selections the first in evaluation order is reported.
 * The storage holds each selection until every one has started: run one
 * after the other, they would wait for ever (the wait gives up after 10 s,
 * which fails the test). */
typedef struct gate_db {
  tdb *db;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started, want; /* selections started; how many to wait for */
  bool timed_out;
} gate_db;

static int gate_select(void *ctx, const promql_selector *sel, promql_emit_fn emit, void *arg,
                       char *err, size_t errlen) {
  gate_db *g = ctx;
  pthread_mutex_lock(&g->mu);
  g->started++;
  pthread_cond_broadcast(&g->cv);
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 10;
  while (g->started < g->want && !g->timed_out)
    if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) != 0) g->timed_out = true;
  pthread_mutex_unlock(&g->mu);
  /* Metrics named fail_*: the selection fails with the metric's name. */
  for (size_t i = 0; i < sel->nmatchers; i++) {
    const labels_matcher *m = sel->matchers[i];
    const char *v = labels_matcher_value(m);
    if (!strcmp(labels_matcher_name(m), "__name__") && !strncmp(v, "fail_", 5)) {
      snprintf(err, errlen, "cannot read %s", v);
      return ORR_EIO;
    }
  }
  return tdb_select(g->db, sel, emit, arg, err, errlen);
}

static int gate_eval(gate_db *g, const char *q, int want, char **json, promql_errinfo *err) {
  orr_arena *a = orr_arena_new(0);
  promql_query_params p = {true, 0, 600000, 15000, 0, 0, 0, 0, NULL, 3};
  promql_storage st = {g, gate_select, false, true};
  promql_result res;
  g->started = 0;
  g->want = want;
  g->timed_out = false;
  int rc = promql_eval(a, q, strlen(q), &p, &st, &res, err);
  if (!rc) {
    orr_buf b = {0};
    promql_json_writer w = {&b, 0, NULL, NULL, 0};
    assert_int_equal(promql_json_write_result(&w, &res), 0);
    *json = strndup(b.data, b.len);
    orr_buf_free(&b);
  }
  orr_arena_destroy(a);
  return rc;
}

static void test_concurrent_select(void **state) {
  (void)state;
  tdb db = {orr_arena_new(0), NULL, 0, 0};
  char line[128];
  for (int i = 0; i < 300; i++) {
    snprintf(line, sizeof(line), "%s{i=\"%03d\"} %d+%dx40", i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c",
             i / 3, i, i % 7);
    tdb_add(&db, line, 15000);
  }
  gate_db g = {&db, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false};
  const char *q = "sum by (i) (rate(a[1m])) + on(i) sum by (i) (b) - on(i) max by (i) (c offset 1m)";
  char *want = query_json(&db, q, true, 0, 600000, 15000, 0), *got = NULL;
  promql_errinfo err;
  /* Three selectors on three threads: all three are in the storage at once. */
  assert_int_equal(gate_eval(&g, q, 3, &got, &err), 0);
  assert_false(g.timed_out);
  assert_string_equal(got, want);
  free(got);
  free(want);
  /* The second and third fail: the second's error, whichever ended first. */
  q = "a + fail_b + fail_c";
  assert_int_equal(gate_eval(&g, q, 3, &got, &err), ORR_EIO);
  assert_false(g.timed_out);
  assert_int_equal(err.type, PROMQL_ERR_INTERNAL);
  assert_string_equal(err.msg, "cannot read fail_b");
  q = "fail_a + b";
  assert_int_equal(gate_eval(&g, q, 2, &got, &err), ORR_EIO);
  assert_string_equal(err.msg, "cannot read fail_a");
  free(db.s);
  orr_arena_destroy(db.a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),          cmocka_unit_test(test_json), cmocka_unit_test(test_subquery_sample_limit),
      cmocka_unit_test(test_json_streaming), cmocka_unit_test(test_cancel_and_timeout),
      cmocka_unit_test(test_range_params),   cmocka_unit_test(test_format_float_f),
      cmocka_unit_test(test_concurrent_feeding), cmocka_unit_test(test_concurrent_select),
      cmocka_unit_test(test_partials),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
