/* fn_vector.c: functions over instant vectors and scalars for one step —
 * math, clamping, rounding, dates (UTC), label_replace/label_join, absent,
 * sort, histogram_quantile over classic buckets — as Prometheus 2.42's
 * functions.go. Native-histogram functions return nothing. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "promql_int.h"

static const char *str_arg(const promql_expr *call, size_t i) {
  const promql_expr *e = call->u.call.args[i];
  while (e->kind == PROMQL_NODE_PAREN || e->kind == PROMQL_NODE_STEP_INVARIANT) e = e->u.paren.expr;
  return e->kind == PROMQL_NODE_STRING ? e->u.string.val : "";
}

static int push(promql__ev *ev, promql__vec *out, const labels_set *ls, double v) {
  promql__sample s = {{NULL, 0}, v, 0, 0};
  if (ls) s.ls = *ls;
  return promql__vec_push(ev->a, out, &s) ? promql__ev_oom(ev) : 0;
}

static int simple(promql__ev *ev, promql__vec *in, promql__vec *out, double (*f)(double)) {
  for (size_t i = 0; i < in->n; i++) {
    labels_set ls;
    if (promql__drop_name(ev->a, &in->s[i].ls, &ls)) return promql__ev_oom(ev);
    int rc = push(ev, out, &ls, f(in->s[i].v));
    if (rc) return rc;
  }
  return 0;
}

static double f_abs(double v) { return fabs(v); }
/* Go's amd64 math.Log takes the exponent bits of a subnormal without
 * normalising it (ln 5e-324 = -1023 ln 2 there); Prometheus answers that. */
static double go_log(double v) {
  if (v > 0 && v < 2.2250738585072014e-308) {
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    b = (b & 0x000fffffffffffffULL) | (0x3feULL << 52);
    double f;
    memcpy(&f, &b, sizeof(f));
    return log(f) + -1022.0 * M_LN2;
  }
  return log(v);
}
static double f_ln(double v) { return go_log(v); }
static double f_log10(double v) {
  if (v > 0 && v < 2.2250738585072014e-308) return go_log(v) * (1 / M_LN10);
  return log10(v);
}

/* As Go computes log2: frexp, then log of the fraction. */
static double f_log2(double v) {
  int e;
  double frac = frexp(v, &e);
  if (frac == 0.5) return (double)(e - 1);
  return log(frac) * 1.44269504088896340735992468100189213742664595415299 + (double)e;
}

/* Hyperbolic functions through exp for large arguments, as Go evaluates
 * them (so they overflow to Inf where Prometheus's do). */
static double f_sinh(double v) {
  double x = fabs(v), r;
  if (x > 21)
    r = exp(x) * 0.5;
  else if (x > 0.5) {
    double ex = exp(x);
    r = (ex - 1 / ex) * 0.5;
  } else {
    return sinh(v);
  }
  return v < 0 ? -r : r;
}
static double f_cosh(double v) {
  double x = fabs(v);
  if (x > 21) return exp(x) * 0.5;
  double ex = exp(x);
  return (ex + 1 / ex) * 0.5;
}
static double f_tanh(double v) {
  double z = fabs(v);
  if (z > 0.5 * 88.029691931113054295988) return v < 0 ? -1 : 1;
  if (z >= 0.625) {
    double s2 = exp(2 * z);
    z = 1 - 2 / (s2 + 1);
    return v < 0 ? -z : z;
  }
  return tanh(v);
}
static double f_sgn(double v) { return v < 0 ? -1 : v > 0 ? 1 : v; }
static double f_deg(double v) { return v * 180 / M_PI; }
static double f_rad(double v) { return v * M_PI / 180; }

typedef struct math_fn {
  const char *name;
  double (*f)(double);
} math_fn;

static const math_fn math_fns[] = {
    {"abs", f_abs},     {"ceil", ceil},   {"floor", floor}, {"exp", exp},     {"sqrt", sqrt},
    {"ln", f_ln},        {"log2", f_log2}, {"log10", f_log10}, {"sin", sin},     {"cos", cos},
    {"tan", tan},       {"asin", asin},   {"acos", acos},   {"atan", atan},   {"sinh", f_sinh},
    {"cosh", f_cosh},     {"tanh", f_tanh},   {"asinh", asinh}, {"acosh", acosh}, {"atanh", atanh},
    {"deg", f_deg},     {"rad", f_rad},   {"sgn", f_sgn},   {NULL, NULL},
};

/* ---------------------------------------------------------------- dates */
typedef struct civil {
  int64_t year;
  int month, day, hour, minute, wday, yday;
} civil;

static int64_t to_i64(double v) {
  /* Go's int64(float) on amd64: out of range and NaN give MinInt64. */
  if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0)) return INT64_MIN;
  return (int64_t)v;
}

/* Calendar fields of a unix time as Go's time package derives them: via
 * "absolute" seconds since year -292277022399 with wrapping arithmetic, so
 * that out-of-range inputs (NaN, Inf) give the same years as Prometheus. */
static bool go_leap(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

static civil to_civil(int64_t secs) {
  static const int before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};
  civil c;
  uint64_t abs = (uint64_t)secs + (uint64_t)62135596800LL + (uint64_t)9223371966579724800ULL;
  c.hour = (int)(abs % 86400 / 3600);
  c.minute = (int)(abs % 3600 / 60);
  c.wday = (int)((abs + 86400ULL) % 604800 / 86400);
  uint64_t d = abs / 86400;
  uint64_t n = d / 146097, y = 400 * n;
  d -= 146097 * n;
  n = d / 36524;
  n -= n >> 2;
  y += 100 * n;
  d -= 36524 * n;
  n = d / 1461;
  y += 4 * n;
  d -= 1461 * n;
  n = d / 365;
  n -= n >> 2;
  y += n;
  d -= 365 * n;
  c.year = (int64_t)y + -292277022399LL;
  c.yday = (int)d + 1;
  int day = (int)d;
  if (go_leap(c.year)) {
    if (day > 31 + 29 - 1) {
      day--;
    } else if (day == 31 + 29 - 1) {
      c.month = 2;
      c.day = 29;
      return c;
    }
  }
  int month = day / 31, begin;
  if (day >= before[month + 1]) {
    month++;
    begin = before[month];
  } else {
    begin = before[month];
  }
  c.month = month + 1;
  c.day = day - begin + 1;
  return c;
}

static double date_part(const char *name, int64_t secs) {
  civil c = to_civil(secs);
  if (!strcmp(name, "day_of_month")) return c.day;
  if (!strcmp(name, "day_of_week")) return c.wday;
  if (!strcmp(name, "day_of_year")) return c.yday;
  if (!strcmp(name, "hour")) return c.hour;
  if (!strcmp(name, "minute")) return c.minute;
  if (!strcmp(name, "month")) return c.month;
  if (!strcmp(name, "year")) return (double)c.year;
  /* days_in_month */
  static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return dim[c.month - 1] + (c.month == 2 && go_leap(c.year) ? 1 : 0);
}

static bool is_date_fn(const char *n) {
  return !strcmp(n, "day_of_month") || !strcmp(n, "day_of_week") || !strcmp(n, "day_of_year") ||
         !strcmp(n, "days_in_month") || !strcmp(n, "hour") || !strcmp(n, "minute") ||
         !strcmp(n, "month") || !strcmp(n, "year");
}

/* ---------------------------------------------------------------- label_replace */
typedef struct lr_state {
  pcre2_code *re;
  pcre2_match_data *md;
} lr_state;

/* Go's Regexp.Expand over |src| with the match offsets |ov|. */
static void expand(orr_buf *dst, const char *tmpl, const char *src, const PCRE2_SIZE *ov,
                   uint32_t nov, pcre2_code *re) {
  const char *t = tmpl;
  while (*t) {
    const char *d = strchr(t, '$');
    if (!d) break;
    orr_buf_append(dst, t, (size_t)(d - t));
    t = d + 1;
    if (*t == '$') {
      orr_buf_putc(dst, '$');
      t++;
      continue;
    }
    const char *s = t;
    bool brace = false;
    if (*s == '{') {
      brace = true;
      s++;
    }
    size_t i = 0;
    while (s[i] && (((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
                    s[i] == '_' || (unsigned char)s[i] >= 0x80))
      i++;
    if (i == 0 || (brace && s[i] != '}')) {
      orr_buf_putc(dst, '$');
      continue;
    }
    char name[256];
    size_t nl = i < sizeof(name) - 1 ? i : sizeof(name) - 1;
    memcpy(name, s, nl);
    name[nl] = 0;
    t = s + i + (brace ? 1 : 0);
    long num = 0;
    for (size_t k = 0; k < nl; k++) {
      if (name[k] < '0' || name[k] > '9' || num >= 100000000) {
        num = -1;
        break;
      }
      num = num * 10 + (name[k] - '0');
    }
    if (name[0] == '0' && nl > 1) num = -1;
    if (num < 0) {
      int n = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
      if (n < 0) continue;
      num = n;
    }
    if ((uint32_t)num < nov && ov[2 * num] != PCRE2_UNSET)
      orr_buf_append(dst, src + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
  }
  orr_buf_puts(dst, t);
}

static int label_replace(promql__ev *ev, const promql_expr *call, void **state, promql__vec *in,
                         promql__vec *out) {
  const char *dst = str_arg(call, 1), *repl = str_arg(call, 2), *src = str_arg(call, 3),
             *rx = str_arg(call, 4);
  lr_state *st = *state;
  if (!st) {
    char err[256];
    labels_matcher *m = labels_matcher_new(LABELS_MATCH_RE, "x", rx, err, sizeof(err));
    if (!m) return promql__ev_errorf(ev, "invalid regular expression in label_replace(): %s", rx);
    labels_matcher_free(m);
    if (!labels_valid_name(dst, strlen(dst)))
      return promql__ev_errorf(ev, "invalid destination label name in label_replace(): %s", dst);
    orr_buf pat = {0};
    orr_buf_puts(&pat, "^(?:");
    orr_buf_puts(&pat, rx);
    orr_buf_puts(&pat, ")$");
    if (pat.oom) return promql__ev_oom(ev);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat.data, pat.len,
                                   PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_UCP, &ec, &eo, NULL);
    orr_buf_free(&pat);
    if (!re) return promql__ev_errorf(ev, "invalid regular expression in label_replace(): %s", rx);
    st = malloc(sizeof(*st));
    if (!st) {
      pcre2_code_free(re);
      return promql__ev_oom(ev);
    }
    st->re = re;
    st->md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!st->md) {
      pcre2_code_free(re);
      free(st);
      return promql__ev_oom(ev);
    }
    *state = st;
  }
  for (size_t i = 0; i < in->n; i++) {
    promql__sample s = in->s[i];
    const char *sv = labels_get(&s.ls, src);
    if (!sv) sv = "";
    int rc = pcre2_match(st->re, (PCRE2_SPTR)sv, strlen(sv), 0, 0, st->md, NULL);
    if (rc > 0) {
      PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
      uint32_t nov = pcre2_get_ovector_count(st->md);
      orr_buf r = {0};
      expand(&r, repl, sv, ov, nov, st->re);
      char *val = orr_arena_strndup(ev->a, r.data ? r.data : "", r.len);
      orr_buf_free(&r);
      if (!val) return promql__ev_oom(ev);
      labels_builder b;
      labels_builder_init(&b, ev->a, &s.ls);
      labels_builder_del(&b, dst);
      if (*val) labels_builder_set(&b, dst, val);
      if (labels_builder_finish(&b, &s.ls)) return promql__ev_oom(ev);
    }
    if (promql__vec_push(ev->a, out, &s)) return promql__ev_oom(ev);
  }
  return 0;
}

void promql__vector_fn_free(const promql_expr *call, void *state) {
  (void)call;
  lr_state *st = state;
  if (!st) return;
  pcre2_match_data_free(st->md);
  pcre2_code_free(st->re);
  free(st);
}

static int label_join(promql__ev *ev, const promql_expr *call, promql__vec *in, promql__vec *out) {
  const char *dst = str_arg(call, 1), *sep = str_arg(call, 2);
  size_t na = call->u.call.nargs;
  for (size_t i = 3; i < na; i++) {
    const char *src = str_arg(call, i);
    if (!labels_valid_name(src, strlen(src)))
      return promql__ev_errorf(ev, "invalid source label name in label_join(): %s", src);
  }
  if (!labels_valid_name(dst, strlen(dst)))
    return promql__ev_errorf(ev, "invalid destination label name in label_join(): %s", dst);
  for (size_t i = 0; i < in->n; i++) {
    promql__sample s = in->s[i];
    orr_buf j = {0};
    for (size_t k = 3; k < na; k++) {
      if (k > 3) orr_buf_puts(&j, sep);
      const char *v = labels_get(&s.ls, str_arg(call, k));
      if (v) orr_buf_puts(&j, v);
    }
    char *val = orr_arena_strndup(ev->a, j.data ? j.data : "", j.len);
    orr_buf_free(&j);
    if (!val) return promql__ev_oom(ev);
    labels_builder b;
    labels_builder_init(&b, ev->a, &s.ls);
    labels_builder_set(&b, dst, val);
    if (labels_builder_finish(&b, &s.ls)) return promql__ev_oom(ev);
    if (promql__vec_push(ev->a, out, &s)) return promql__ev_oom(ev);
  }
  return 0;
}

/* ---------------------------------------------------------------- absent */
int promql__absent_labels(orr_arena *a, const promql_expr *arg, labels_set *out) {
  out->v = NULL;
  out->n = 0;
  labels_matcher *const *ms;
  size_t n;
  if (arg->kind == PROMQL_NODE_VECTOR_SELECTOR) {
    ms = arg->u.vs.matchers;
    n = arg->u.vs.nmatchers;
  } else if (arg->kind == PROMQL_NODE_MATRIX_SELECTOR) {
    ms = arg->u.ms.vs->u.vs.matchers;
    n = arg->u.ms.vs->u.vs.nmatchers;
  } else {
    return 0;
  }
  labels_builder b;
  labels_builder_init(&b, a, NULL);
  const char **empty = orr_arena_alloc(a, (n ? n : 1) * sizeof(*empty));
  if (!empty) return ORR_ENOMEM;
  size_t ne = 0;
  labels_set cur = {NULL, 0};
  for (size_t i = 0; i < n; i++) {
    const char *nm = labels_matcher_name(ms[i]);
    if (!strcmp(nm, LABELS_METRIC_NAME)) continue;
    bool has = false;
    for (size_t k = 0; k < b.n; k++)
      if (!strcmp(b.v[k].name, nm)) has = true;
    /* Copies: the matchers die with the AST, the result outlives it. */
    if (labels_matcher_type(ms[i]) == LABELS_MATCH_EQ && !has) {
      char *cn = orr_arena_strdup(a, nm), *cv = orr_arena_strdup(a, labels_matcher_value(ms[i]));
      if (!cn || !cv) return ORR_ENOMEM;
      labels_builder_set(&b, cn, cv);
    }
    else
      empty[ne++] = nm;
  }
  for (size_t i = 0; i < ne; i++) labels_builder_del(&b, empty[i]);
  (void)cur;
  return labels_builder_finish(&b, out);
}

/* ---------------------------------------------------------------- histogram_quantile */
typedef struct bucket {
  double ub, count;
} bucket;

static bool bucket_less(const void *a, const void *b) {
  return ((const bucket *)a)->ub < ((const bucket *)b)->ub;
}

static double bucket_quantile(double q, bucket *b, size_t n) {
  if (isnan(q)) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  promql__sort(b, n, sizeof(*b), bucket_less);
  if (!(isinf(b[n - 1].ub) && b[n - 1].ub > 0)) return NAN;
  /* coalesceBuckets */
  bucket last = b[0];
  size_t k = 0;
  for (size_t i = 1; i < n; i++) {
    if (b[i].ub == last.ub) {
      last.count += b[i].count;
    } else {
      b[k++] = last;
      last = b[i];
    }
  }
  b[k++] = last;
  n = k;
  /* ensureMonotonic */
  double max = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (b[i].count > max)
      max = b[i].count;
    else if (b[i].count < max)
      b[i].count = max;
  }
  if (n < 2) return NAN;
  double obs = b[n - 1].count;
  if (obs == 0) return NAN;
  double rank = q * obs;
  /* sort.Search over the first n-1 buckets */
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t h = (lo + hi) / 2;
    if (!(b[h].count >= rank))
      lo = h + 1;
    else
      hi = h;
  }
  size_t i = lo;
  if (i == n - 1) return b[n - 2].ub;
  if (i == 0 && b[0].ub <= 0) return b[0].ub;
  double start = 0, end = b[i].ub, count = b[i].count;
  if (i > 0) {
    start = b[i - 1].ub;
    count -= b[i - 1].count;
    rank -= b[i - 1].count;
  }
  return start + (end - start) * (rank / count);
}

/* Go's strconv.ParseFloat, closely enough for le values. */
static bool parse_go_float(const char *s, double *out) {
  if (!*s || *s == ' ' || *s == '\t' || *s == '\n') return false;
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity")) {
    *out = *s == '-' ? -INFINITY : INFINITY;
    return true;
  }
  if (!strcasecmp(p, "nan")) {
    if (p != s) return false;
    *out = NAN;
    return true;
  }
  for (const char *c = p; *c; c++)
    if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' ||
          *c == '-' || *c == 'x' || *c == 'X' || *c == 'p' || *c == 'P' ||
          ((*c | 32) >= 'a' && (*c | 32) <= 'f')))
      return false;
  char *end;
  *out = strtod(s, &end);
  return *end == 0;
}

/* Buckets belong to one histogram when all their labels but le agree, the
 * metric name included: Prometheus 2.42 keys them so and drops the name only
 * from the result. Two histograms whose buckets differ only in the name thus
 * give two results with one label set, which range_eval rejects ("vector
 * cannot contain metrics with the same labelset") as Prometheus does; keying
 * without the name would merge their buckets into one answer instead. */
static uint64_t bucket_group_key(const labels_set *ls) { return promql__hash_without(ls, "le"); }

static int histogram_quantile(promql__ev *ev, double q, promql__vec *in, promql__vec *out) {
  typedef struct grp {
    uint64_t sig;
    labels_set ls;
    bucket *b;
    size_t n, cap;
  } grp;
  grp *g = orr_arena_alloc(ev->a, (in->n ? in->n : 1) * sizeof(grp));
  if (!g) return promql__ev_oom(ev);
  size_t ng = 0;
  for (size_t i = 0; i < in->n; i++) {
    const char *le = labels_get(&in->s[i].ls, "le");
    double ub;
    if (!le || !parse_go_float(le, &ub)) continue;
    uint64_t sig = bucket_group_key(&in->s[i].ls);
    size_t k;
    for (k = 0; k < ng; k++)
      if (g[k].sig == sig) break;
    if (k == ng) {
      g[k].sig = sig;
      labels_builder b;
      labels_builder_init(&b, ev->a, &in->s[i].ls);
      labels_builder_del(&b, LABELS_METRIC_NAME);
      labels_builder_del(&b, "le");
      if (labels_builder_finish(&b, &g[k].ls)) return promql__ev_oom(ev);
      g[k].b = NULL;
      g[k].n = g[k].cap = 0;
      ng++;
    }
    if (g[k].n == g[k].cap) {
      size_t nc = g[k].cap ? g[k].cap * 2 : 16;
      bucket *nb = orr_arena_alloc(ev->a, nc * sizeof(*nb));
      if (!nb) return promql__ev_oom(ev);
      if (g[k].n) memcpy(nb, g[k].b, g[k].n * sizeof(*nb));
      g[k].b = nb;
      g[k].cap = nc;
    }
    g[k].b[g[k].n].ub = ub;
    g[k].b[g[k].n].count = in->s[i].v;
    g[k].n++;
  }
  for (size_t k = 0; k < ng; k++) {
    int rc = push(ev, out, &g[k].ls, bucket_quantile(q, g[k].b, g[k].n));
    if (rc) return rc;
  }
  return 0;
}

/* ---------------------------------------------------------------- sort */
static bool sort_less(const void *a, const void *b) {
  const promql__sample *x = a, *y = b;
  if (isnan(y->v)) return true;
  return y->v > x->v;
}
static bool sort_desc_less(const void *a, const void *b) {
  const promql__sample *x = a, *y = b;
  if (isnan(y->v)) return true;
  return y->v < x->v;
}

/* ---------------------------------------------------------------- dispatch */
int promql__vector_fn(promql__ev *ev, const promql_expr *call, void **state, promql__vec *args,
                      int64_t ts, promql__vec *out) {
  const char *name = call->u.call.func->name;
  size_t na = call->u.call.nargs;
  for (const math_fn *m = math_fns; m->name; m++)
    if (!strcmp(m->name, name)) return simple(ev, &args[0], out, m->f);
  if (!strcmp(name, "time")) return push(ev, out, NULL, (double)ts / 1000);
  if (!strcmp(name, "pi")) return push(ev, out, NULL, M_PI);
  if (!strcmp(name, "vector")) return args[0].n ? push(ev, out, NULL, args[0].s[0].v) : 0;
  if (!strcmp(name, "scalar")) return push(ev, out, NULL, args[0].n == 1 ? args[0].s[0].v : NAN);
  if (!strcmp(name, "timestamp")) {
    for (size_t i = 0; i < args[0].n; i++) {
      labels_set ls;
      if (promql__drop_name(ev->a, &args[0].s[i].ls, &ls)) return promql__ev_oom(ev);
      int rc = push(ev, out, &ls, (double)args[0].s[i].t / 1000);
      if (rc) return rc;
    }
    return 0;
  }
  if (!strcmp(name, "round")) {
    double to = na > 1 && args[1].n ? args[1].s[0].v : 1;
    double inv = 1.0 / to;
    for (size_t i = 0; i < args[0].n; i++) {
      labels_set ls;
      if (promql__drop_name(ev->a, &args[0].s[i].ls, &ls)) return promql__ev_oom(ev);
      int rc = push(ev, out, &ls, floor(args[0].s[i].v * inv + 0.5) / inv);
      if (rc) return rc;
    }
    return 0;
  }
  if (!strcmp(name, "clamp") || !strcmp(name, "clamp_min") || !strcmp(name, "clamp_max")) {
    double lo = -INFINITY, hi = INFINITY;
    bool has_lo = false, has_hi = false;
    if (!strcmp(name, "clamp")) {
      if (!args[1].n || !args[2].n) return 0;
      lo = args[1].s[0].v;
      hi = args[2].s[0].v;
      if (hi < lo) return 0;
      has_lo = has_hi = true;
    } else if (!strcmp(name, "clamp_min")) {
      if (!args[1].n) return 0;
      lo = args[1].s[0].v;
      has_lo = true;
    } else {
      if (!args[1].n) return 0;
      hi = args[1].s[0].v;
      has_hi = true;
    }
    for (size_t i = 0; i < args[0].n; i++) {
      labels_set ls;
      if (promql__drop_name(ev->a, &args[0].s[i].ls, &ls)) return promql__ev_oom(ev);
      double v = args[0].s[i].v;
      if (has_lo && has_hi)
        v = promql__go_max(lo, promql__go_min(hi, v));
      else if (has_lo)
        v = promql__go_max(lo, v);
      else
        v = promql__go_min(hi, v);
      int rc = push(ev, out, &ls, v);
      if (rc) return rc;
    }
    return 0;
  }
  if (is_date_fn(name)) {
    if (na == 0) return push(ev, out, NULL, date_part(name, ts / 1000));
    for (size_t i = 0; i < args[0].n; i++) {
      labels_set ls;
      if (promql__drop_name(ev->a, &args[0].s[i].ls, &ls)) return promql__ev_oom(ev);
      int rc = push(ev, out, &ls, date_part(name, to_i64(args[0].s[i].v)));
      if (rc) return rc;
    }
    return 0;
  }
  if (!strcmp(name, "label_replace")) return label_replace(ev, call, state, &args[0], out);
  if (!strcmp(name, "label_join")) return label_join(ev, call, &args[0], out);
  if (!strcmp(name, "absent")) {
    if (args[0].n) return 0;
    labels_set ls;
    if (promql__absent_labels(ev->a, call->u.call.args[0], &ls)) return promql__ev_oom(ev);
    return push(ev, out, &ls, 1);
  }
  if (!strcmp(name, "sort") || !strcmp(name, "sort_desc")) {
    size_t n = args[0].n;
    size_t base = out->n;
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
      if (promql__vec_push(ev->a, out, &args[0].s[i])) return promql__ev_oom(ev);
    promql__sort(out->s + base, n, sizeof(promql__sample),
                 name[4] == '_' ? sort_desc_less : sort_less);
    return 0;
  }
  if (!strcmp(name, "histogram_quantile"))
    return args[0].n ? histogram_quantile(ev, args[0].s[0].v, &args[1], out) : 0;
  /* histogram_count, histogram_sum, histogram_fraction: native histograms
   * only, which we do not store: no result. */
  return 0;
}
