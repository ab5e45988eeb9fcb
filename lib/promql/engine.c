/* engine.c: the PromQL evaluator — query preparation, data feeding and the
 * step-wise evaluation of every node kind, as Prometheus 2.42's engine.go.
 *
 * Design notes
 * 1. A query owns an arena (the caller's); every value, label set and point
 *    array of the evaluation is allocated from it and freed with it.
 * 2. Instant vectors and scalars are evaluated over all steps at once into a
 *    matrix whose points lie on step timestamps (Prometheus's Matrix from
 *    rangeEval); an instant query is a range query of one step.
 * 3. Operators, aggregations and functions without a range argument run
 *    step by step over the vectors of their arguments (range_eval); the
 *    output series are gathered by label set in first-seen order, so an
 *    instant query keeps evaluation order.
 * 4. Range arguments (matrix selectors and subqueries) are windows
 *    [ref - range, ref] over a series' points, ref = (@ or step) - offset;
 *    windows slide with two cursors since ref never decreases.
 * 5. Samples in memory are counted against max_samples; the clock and the
 *    cancel flag are looked at every few hundred steps.
 * 6. State reused across steps: a range function's window slides with the
 *    two cursors of note 4 over points decoded once, and its value is
 *    recomputed from the window at each step in Prometheus's order (the
 *    Kahan sums of sum/avg/stddev_over_time and the extrapolation of rate
 *    are order-dependent in their low bits; windows are a few points, so a
 *    running sum would buy little and lose exactness). range_eval turns its
 *    arguments step-major a block of steps at a time (transpose), so a
 *    series is visited once per block rather than once per step; the step
 *    vectors keep series order. Aggregations reuse one table across steps.
 * 7. Parallelism (parallel.c): a range function over many series is split
 *    into shards of consecutive series; see "range functions in parallel".
 *    Answers never depend on the thread count: every float is computed by
 *    the same code from the same operands in the same order as with one
 *    thread, and results are merged in series order.
 * 8. Streaming: an aggregation of a range function over a selector, or of
 *    a plain vector selector, folds each value into its (group, step) cell
 *    as it is computed, steps split over threads, instead of building the
 *    function's matrix (the selector's step vectors) first; see "fused
 *    aggregation" for why the answer is unchanged. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "promql_int.h"

typedef struct sel_data {
  promql_series *s;
  size_t n, cap;
} sel_data;

struct promql_query {
  orr_arena *a;
  promql_ast *ast;
  promql_expr *root;
  promql_query_params p;
  promql_selector *sels;
  size_t nsels;
  sel_data *data;
  /* Partial results of aggregation nodes (promql_query_add_partial). */
  struct partial {
    const promql_expr *node;
    sel_data d;
  } *partials;
  size_t npartials, cappartials;
  const char **warnings;
  size_t nwarn, capwarn;
  pthread_mutex_t mu; /* feeding from several threads: arena and arrays */
  bool mu_init;
  struct fz_stream *stream; /* see "fused aggregation while loading" */
  /* Fed points past FEED_SLAB_AFTER bytes go to slabs (points_alloc). */
  size_t fed;
  char *slab;
  size_t slab_left;
};

/* ---------------------------------------------------------------- helpers */

const char *promql_errtype_name(promql_errtype t) {
  switch (t) {
    case PROMQL_ERR_BAD_DATA: return "bad_data";
    case PROMQL_ERR_EXECUTION: return "execution";
    case PROMQL_ERR_TIMEOUT: return "timeout";
    case PROMQL_ERR_CANCELED: return "canceled";
    case PROMQL_ERR_INTERNAL: return "internal";
    default: return "";
  }
}

static void set_err(promql_errinfo *err, promql_errtype t, const char *msg) {
  if (!err) return;
  err->type = t;
  snprintf(err->msg, sizeof(err->msg), "%s", msg);
}

int promql__ev_errorf(promql__ev *ev, const char *fmt, ...) {
  if (ev->err && ev->err->type == PROMQL_ERR_NONE) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->err->msg, sizeof(ev->err->msg), fmt, ap);
    va_end(ap);
    ev->err->type = PROMQL_ERR_EXECUTION;
  }
  return ORR_EINVAL;
}

int promql__ev_oom(promql__ev *ev) {
  if (ev->err && ev->err->type == PROMQL_ERR_NONE) set_err(ev->err, PROMQL_ERR_INTERNAL, "out of memory");
  return ORR_ENOMEM;
}

int promql__ev_check(promql__ev *ev) {
  if ((++ev->check_ctr & 255) != 0) return 0;
  if (ev->cancel && *ev->cancel) {
    if (ev->err && ev->err->type == PROMQL_ERR_NONE)
      set_err(ev->err, PROMQL_ERR_CANCELED, "query was canceled in expression evaluation");
    return ORR_ECANCELED;
  }
  if (ev->deadline_ns && orr_mono_ns() > ev->deadline_ns) {
    if (ev->err && ev->err->type == PROMQL_ERR_NONE)
      set_err(ev->err, PROMQL_ERR_TIMEOUT, "query timed out in expression evaluation");
    return ORR_ETIMEOUT;
  }
  return 0;
}

int promql__ev_add_samples(promql__ev *ev, int64_t n) {
  if (ev->cur_samples + n > ev->max_samples) {
    if (ev->err && ev->err->type == PROMQL_ERR_NONE)
      set_err(ev->err, PROMQL_ERR_EXECUTION,
              "query processing would load too many samples into memory in query execution");
    return ORR_ELIMIT;
  }
  ev->cur_samples += n;
  return 0;
}

int promql__vec_push(orr_arena *a, promql__vec *v, const promql__sample *s) {
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 16;
    promql__sample *ns = orr_arena_alloc(a, nc * sizeof(*ns));
    if (!ns) return ORR_ENOMEM;
    if (v->n) memcpy(ns, v->s, v->n * sizeof(*ns));
    v->s = ns;
    v->cap = nc;
  }
  v->s[v->n++] = *s;
  return 0;
}

static int mat_push(orr_arena *a, promql__mat *m, const promql_series *s) {
  if (m->n == m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 16;
    promql_series *ns = orr_arena_alloc(a, nc * sizeof(*ns));
    if (!ns) return ORR_ENOMEM;
    if (m->n) memcpy(ns, m->s, m->n * sizeof(*ns));
    m->s = ns;
    m->cap = nc;
  }
  m->s[m->n++] = *s;
  return 0;
}

int promql__drop_name(orr_arena *a, const labels_set *in, labels_set *out) {
  for (size_t i = 0; i < in->n; i++) {
    if (strcmp(in->v[i].name, LABELS_METRIC_NAME) != 0) continue;
    labels_label *v = in->n > 1 ? orr_arena_alloc(a, (in->n - 1) * sizeof(*v)) : NULL;
    if (in->n > 1 && !v) return ORR_ENOMEM;
    size_t k = 0;
    for (size_t j = 0; j < in->n; j++)
      if (j != i) v[k++] = in->v[j];
    out->v = v;
    out->n = k;
    return 0;
  }
  *out = *in;
  return 0;
}

bool promql__is_stale(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof(b));
  return b == 0x7ff0000000000002ULL;
}

double promql__go_max(double a, double b) {
  if (isinf(a) && a > 0) return a;
  if (isinf(b) && b > 0) return b;
  if (isnan(a) || isnan(b)) return NAN;
  if (a == 0 && a == b) return signbit(a) ? b : a;
  return a > b ? a : b;
}

double promql__go_min(double a, double b) {
  if (isinf(a) && a < 0) return a;
  if (isinf(b) && b < 0) return b;
  if (isnan(a) || isnan(b)) return NAN;
  if (a == 0 && a == b) return signbit(a) ? a : b;
  return a < b ? a : b;
}

static uint64_t mix(uint64_t h, const char *s) {
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return (h ^ 0xff) * 0x100000001b3ULL;
}

static uint64_t labels_h(const labels_set *ls) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < ls->n; i++) h = mix(mix(h, ls->v[i].name), ls->v[i].value);
  return h;
}

uint64_t promql__signature(const labels_set *ls, bool on, const char *const *names, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < ls->n; i++) {
    const char *nm = ls->v[i].name;
    bool listed = false;
    for (size_t j = 0; j < n; j++)
      if (strcmp(names[j], nm) == 0) {
        listed = true;
        break;
      }
    if (on ? !listed : (listed || strcmp(nm, LABELS_METRIC_NAME) == 0)) continue;
    h = mix(mix(h, nm), ls->v[i].value);
  }
  return h;
}

uint64_t promql__hash_without(const labels_set *ls, const char *skip) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < ls->n; i++)
    if (strcmp(ls->v[i].name, skip) != 0) h = mix(mix(h, ls->v[i].name), ls->v[i].value);
  return h;
}

/* Go's sort.Sort uses insertion sort below 13 elements; for more we use a
 * stable merge sort (ties may then be ordered differently from pdqsort). */
void promql__sort(void *base, size_t n, size_t size, bool (*less)(const void *, const void *)) {
  char *b = base;
  char tmp[64];
  if (size > sizeof(tmp)) return;
  if (n <= 12) {
    for (size_t i = 1; i < n; i++)
      for (size_t j = i; j > 0 && less(b + j * size, b + (j - 1) * size); j--) {
        memcpy(tmp, b + j * size, size);
        memcpy(b + j * size, b + (j - 1) * size, size);
        memcpy(b + (j - 1) * size, tmp, size);
      }
    return;
  }
  char *buf = malloc(n * size);
  if (!buf) return;
  for (size_t w = 1; w < n; w *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (less(b + j * size, b + i * size))
          memcpy(buf + (k++) * size, b + (j++) * size, size);
        else
          memcpy(buf + (k++) * size, b + (i++) * size, size);
      }
      while (i < mid) memcpy(buf + (k++) * size, b + (i++) * size, size);
      while (j < hi) memcpy(buf + (k++) * size, b + (j++) * size, size);
    }
    memcpy(b, buf, n * size);
  }
  free(buf);
}

/* ---------------------------------------------------------------- output map
 * Output series by label set, in first-seen order. */
typedef struct omap {
  promql__mat m;
  uint64_t *hs;  /* hash per series */
  uint32_t *tab; /* index + 1, 0 empty */
  size_t tabcap;
  size_t cap_points; /* initial point capacity */
  size_t max_points;
} omap;

static int omap_grow(orr_arena *a, omap *o) {
  size_t nc = o->tabcap ? o->tabcap * 2 : 64;
  uint32_t *nt = orr_arena_calloc(a, nc, sizeof(*nt));
  if (!nt) return ORR_ENOMEM;
  for (size_t i = 0; i < o->m.n; i++) {
    size_t k = o->hs[i] & (nc - 1);
    while (nt[k]) k = (k + 1) & (nc - 1);
    nt[k] = (uint32_t)(i + 1);
  }
  o->tab = nt;
  o->tabcap = nc;
  return 0;
}

/* Finds or adds the series with labels |ls|; returns its index or < 0. */
static long omap_get(orr_arena *a, omap *o, const labels_set *ls, uint64_t h) {
  if ((o->m.n + 1) * 2 > o->tabcap && omap_grow(a, o)) return ORR_ENOMEM;
  size_t k = h & (o->tabcap - 1);
  while (o->tab[k]) {
    size_t i = o->tab[k] - 1;
    if (o->hs[i] == h && labels_equal(&o->m.s[i].labels, ls)) return (long)i;
    k = (k + 1) & (o->tabcap - 1);
  }
  if (o->m.n == o->m.cap) {
    size_t nc = o->m.cap ? o->m.cap * 2 : 16;
    uint64_t *nh = orr_arena_alloc(a, nc * sizeof(*nh));
    if (!nh) return ORR_ENOMEM;
    if (o->m.n) memcpy(nh, o->hs, o->m.n * sizeof(*nh));
    o->hs = nh;
  }
  promql_series s = {*ls, NULL, 0};
  if (mat_push(a, &o->m, &s)) return ORR_ENOMEM;
  o->hs[o->m.n - 1] = h;
  o->tab[k] = (uint32_t)o->m.n;
  return (long)(o->m.n - 1);
}

static int series_append(orr_arena *a, promql_series *s, size_t *cap, size_t maxcap, int64_t t,
                         double v) {
  if (s->npoints == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    if (nc < s->npoints + 1) nc = s->npoints + 1;
    if (maxcap && nc > maxcap && maxcap > s->npoints) nc = maxcap;
    promql_point *np = orr_arena_alloc(a, nc * sizeof(*np));
    if (!np) return ORR_ENOMEM;
    if (s->npoints) memcpy(np, s->points, s->npoints * sizeof(*np));
    s->points = np;
    *cap = nc;
  }
  s->points[s->npoints].t = t;
  s->points[s->npoints].v = v;
  s->npoints++;
  return 0;
}

/* ---------------------------------------------------------------- values */
typedef struct val {
  promql_value_type type;
  promql__mat m; /* scalar (one series, no labels) / vector over steps */
  const char *str;
  size_t strlen;
} val;

typedef struct msrc {
  promql_series *s;
  size_t n;
  int64_t subq_points; /* points of a subquery's result, held in memory */
  int64_t range, offset;
  bool has_at;
  int64_t at;
} msrc;

static int eval(promql__ev *ev, const promql_expr *e, val *out);
static uint64_t agg_prep(void *ctx, size_t argi, const labels_set *ls);
static int inject_partials(promql__ev *ev, const promql_expr *e, val *arg);

static size_t nsteps(const promql__ev *ev) {
  if (ev->start > ev->end) return 0;
  return (size_t)((ev->end - ev->start) / ev->interval) + 1;
}

static int64_t mat_points(const promql__mat *m) {
  int64_t n = 0;
  for (size_t i = 0; i < m->n; i++) n += (int64_t)m->s[i].npoints;
  return n;
}

static const promql_expr *unwrap(const promql_expr *e) {
  while (e && (e->kind == PROMQL_NODE_PAREN || e->kind == PROMQL_NODE_STEP_INVARIANT))
    e = e->u.paren.expr;
  return e;
}

static int64_t resolve_at(const promql__ev *ev, promql_at at, int64_t at_ms) {
  if (at == PROMQL_AT_START) return ev->qstart;
  if (at == PROMQL_AT_END) return ev->qend;
  return at_ms;
}

static sel_data *find_data(promql__ev *ev, const promql_expr *vs) {
  struct promql_query *q = ev->q;
  for (size_t i = 0; i < q->nsels; i++)
    if (q->sels[i].node == vs) return &q->data[i];
  return NULL;
}

static int scalar_val(promql__ev *ev, double v, val *out) {
  memset(out, 0, sizeof(*out));
  out->type = PROMQL_TYPE_SCALAR;
  size_t n = nsteps(ev);
  promql_series s = {{NULL, 0}, NULL, 0};
  /* Count before allocating: a subquery of 1y:1ms has 3e10 steps, and the
   * limit, not the allocator, must say no (422 as Prometheus). */
  int rc = promql__ev_add_samples(ev, (int64_t)n);
  if (rc) return rc;
  if (n) {
    s.points = orr_arena_alloc(ev->a, n * sizeof(promql_point));
    if (!s.points) return promql__ev_oom(ev);
  }
  int64_t ts = ev->start;
  for (size_t i = 0; i < n; i++, ts += ev->interval) {
    s.points[i].t = ts;
    s.points[i].v = v;
  }
  s.npoints = n;
  if (mat_push(ev->a, &out->m, &s)) return promql__ev_oom(ev);
  return 0;
}

/* Vector selector over the steps. |ts_mode|: values are the samples'
 * timestamps in seconds (for timestamp()). */
static int eval_vs(promql__ev *ev, const promql_expr *e, bool ts_mode, val *out) {
  memset(out, 0, sizeof(*out));
  out->type = PROMQL_TYPE_VECTOR;
  sel_data *d = find_data(ev, e);
  if (!d) return 0;
  size_t steps = nsteps(ev);
  bool has_at = e->u.vs.at != PROMQL_AT_NONE;
  int64_t at = resolve_at(ev, e->u.vs.at, e->u.vs.at_ms);
  int64_t off = e->u.vs.offset_ms;
  promql_point *buf = NULL;
  /* One series holds at most what the sample limit leaves: the buffer is
   * no bigger, so a huge step count fails on the limit, not on malloc. */
  size_t cap = steps;
  int64_t left = ev->max_samples - ev->cur_samples;
  if (left < 0) left = 0;
  if (d->n && (uint64_t)cap > (uint64_t)left + 1) cap = (size_t)left + 1;
  if (d->n && cap) {
    buf = malloc(cap * sizeof(*buf));
    if (!buf) return promql__ev_oom(ev);
  }
  int rc = 0;
  for (size_t i = 0; i < d->n; i++) {
    const promql_series *in = &d->s[i];
    size_t idx = 0, np = 0;
    int64_t ts = ev->start;
    for (size_t st = 0; st < steps; st++, ts += ev->interval) {
      int64_t ref = (has_at ? at : ts) - off;
      while (idx < in->npoints && in->points[idx].t <= ref) idx++;
      if (idx == 0) continue;
      const promql_point *p = &in->points[idx - 1];
      if (p->t < ref - ev->lookback || promql__is_stale(p->v)) continue;
      if (np == cap) {
        rc = promql__ev_add_samples(ev, (int64_t)np + 1); /* over the limit */
        goto out;
      }
      buf[np].t = ts;
      buf[np].v = ts_mode ? (double)p->t / 1000.0 : p->v;
      np++;
    }
    if ((rc = promql__ev_check(ev))) goto out;
    if (!np) continue;
    if ((rc = promql__ev_add_samples(ev, (int64_t)np))) goto out;
    promql_series s = {in->labels, orr_arena_alloc(ev->a, np * sizeof(promql_point)), np};
    if (!s.points || mat_push(ev->a, &out->m, &s)) {
      rc = promql__ev_oom(ev);
      goto out;
    }
    memcpy(s.points, buf, np * sizeof(promql_point));
    out->m.s[out->m.n - 1].points = s.points;
  }
out:
  free(buf);
  return rc;
}

/* ---------------------------------------------------------------- range_eval */
typedef int (*step_fn)(promql__ev *ev, void *ctx, promql__vec *args, int64_t ts,
                       promql__vec *out);
typedef uint64_t (*prep_fn)(void *ctx, size_t argi, const labels_set *ls);

static int check_dups(promql__ev *ev, const promql__mat *m) {
  omap o;
  memset(&o, 0, sizeof(o));
  for (size_t i = 0; i < m->n; i++) {
    size_t before = o.m.n;
    long k = omap_get(ev->a, &o, &m->s[i].labels, labels_h(&m->s[i].labels));
    if (k < 0) return promql__ev_oom(ev);
    if (o.m.n == before)
      return promql__ev_errorf(ev, "vector cannot contain metrics with the same labelset");
  }
  return 0;
}

/* A block of steps of range_eval's arguments, series-major turned
 * step-major: for argument i and step k of the block, cell[i][k * stride ..]
 * holds ncell[i][k] (series, value) pairs in ascending series order — the
 * order in which a per-step scan of the series would meet them. */
typedef struct step_cell {
  size_t j;
  double v;
} step_cell;
typedef struct step_cells {
  step_cell **cell;
  size_t **ncell;
} step_cells;

/* Cells per argument and block: bounds the buffer (2 MB, one huge page:
 * 16 MB of fresh memory cost topk over 5000 series more page faults than
 * the passes a smaller block adds) and sets how many steps one pass over
 * the series covers. */
#define RANGE_EVAL_CELLS ((size_t)1 << 17)

static void step_cells_free(step_cells *tr, size_t n) {
  for (size_t i = 0; tr->cell && i < n; i++) {
    free(tr->cell[i]);
    free(tr->ncell[i]);
  }
  free(tr->cell);
  free(tr->ncell);
  memset(tr, 0, sizeof(*tr));
}

/* Fills |tr| with the steps [ts0, ts0 + blk * interval) and advances the
 * cursors |cur| past them. A point off the step grid stops its series for
 * good, as the per-step scan (which waits for a point equal to the step)
 * never moved past it either. */
static int transpose(promql__ev *ev, const val *args, size_t **cur, size_t n, int64_t ts0,
                     size_t blk, step_cells *tr) {
  size_t maxns = 0;
  for (size_t i = 0; i < n; i++)
    if (cur[i] && args[i].m.n > maxns) maxns = args[i].m.n;
  if (!tr->cell) {
    tr->cell = calloc(n ? n : 1, sizeof(*tr->cell));
    tr->ncell = calloc(n ? n : 1, sizeof(*tr->ncell));
    if (!tr->cell || !tr->ncell) return promql__ev_oom(ev);
    for (size_t i = 0; i < n; i++) {
      if (!cur[i]) continue;
      tr->cell[i] = malloc((blk * maxns > 0 ? blk * maxns : 1) * sizeof(step_cell));
      tr->ncell[i] = malloc(blk * sizeof(size_t));
      if (!tr->cell[i] || !tr->ncell[i]) return promql__ev_oom(ev);
    }
  }
  int64_t last = ts0 + (int64_t)(blk - 1) * ev->interval;
  for (size_t i = 0; i < n; i++) {
    if (!cur[i]) continue;
    step_cell *cell = tr->cell[i];
    size_t *nc = tr->ncell[i];
    memset(nc, 0, blk * sizeof(size_t));
    for (size_t j = 0; j < args[i].m.n; j++) {
      const promql_series *s = &args[i].m.s[j];
      size_t c = cur[i][j];
      while (c < s->npoints && s->points[c].t <= last) {
        int64_t d = s->points[c].t - ts0;
        if (d < 0 || d % ev->interval) break;
        size_t k = (size_t)(d / ev->interval);
        cell[k * maxns + nc[k]++] = (step_cell){j, s->points[c].v};
        c++;
      }
      cur[i][j] = c;
    }
  }
  return 0;
}

static int range_eval(promql__ev *ev, step_fn f, prep_fn prep, void *ctx,
                      const promql_expr *const *exprs, size_t n, val *out) {
  /* label_join() takes any number of arguments. */
  val *args = orr_arena_calloc(ev->a, n ? n : 1, sizeof(*args));
  size_t **cur = orr_arena_calloc(ev->a, n ? n : 1, sizeof(*cur));
  promql__vec *vecs = orr_arena_calloc(ev->a, n ? n : 1, sizeof(*vecs));
  uint64_t **hs = orr_arena_calloc(ev->a, n ? n : 1, sizeof(*hs));
  memset(out, 0, sizeof(*out));
  out->type = PROMQL_TYPE_VECTOR;
  if (!args || !cur || !vecs || !hs) return promql__ev_oom(ev);
  int rc = 0;
  /* Samples in memory as Prometheus's rangeEval counts them: the arguments'
   * matrices, plus at each step the input vectors and the results so far;
   * at the end the output replaces the arguments. */
  int64_t orig = ev->cur_samples;
  for (size_t i = 0; i < n; i++) {
    memset(&args[i], 0, sizeof(args[i]));
    memset(&vecs[i], 0, sizeof(vecs[i]));
    cur[i] = NULL;
    hs[i] = NULL;
    if (!exprs[i] || promql_expr_type(exprs[i]) == PROMQL_TYPE_STRING) continue;
    if ((rc = eval(ev, exprs[i], &args[i]))) return rc;
    if (prep == agg_prep && i == 1 && (rc = inject_partials(ev, ctx, &args[i]))) return rc;
    size_t ns = args[i].m.n;
    cur[i] = orr_arena_calloc(ev->a, ns ? ns : 1, sizeof(size_t));
    hs[i] = orr_arena_calloc(ev->a, ns ? ns : 1, sizeof(uint64_t));
    if (!cur[i] || !hs[i]) return promql__ev_oom(ev);
    if (prep)
      for (size_t j = 0; j < ns; j++) hs[i][j] = prep(ctx, i, &args[i].m.s[j].labels);
  }
  int64_t temp = ev->cur_samples, total = 0;
  size_t steps = nsteps(ev);
  omap o;
  memset(&o, 0, sizeof(o));
  size_t *pcap = NULL, pcapn = 0;
  promql__vec res;
  memset(&res, 0, sizeof(res));
  /* The step vectors come from a transposition by blocks of steps: one
   * pass over the series fills every step of the block (design note 6). */
  size_t maxns = 0;
  for (size_t i = 0; i < n; i++)
    if (cur[i] && args[i].m.n > maxns) maxns = args[i].m.n;
  size_t blk = maxns ? RANGE_EVAL_CELLS / maxns : steps;
  if (blk < 1) blk = 1;
  if (blk > steps) blk = steps;
  step_cells tr;
  memset(&tr, 0, sizeof(tr));
  int64_t ts = ev->start;
  for (size_t st = 0; st < steps; st++, ts += ev->interval) {
    if (st % blk == 0 && (rc = transpose(ev, args, cur, n, ts, blk, &tr))) goto out;
    ev->cur_samples = temp;
    for (size_t i = 0; i < n; i++) {
      if (!cur[i]) continue;
      vecs[i].n = 0;
      const step_cell *c = tr.cell[i] + (st % blk) * maxns;
      size_t nc = tr.ncell[i][st % blk];
      for (size_t x = 0; x < nc; x++) {
        if (ev->cur_samples >= ev->max_samples) {
          rc = promql__ev_add_samples(ev, 1);
          goto out;
        }
        ev->cur_samples++;
        promql__sample smp = {args[i].m.s[c[x].j].labels, c[x].v, ts, hs[i][c[x].j]};
        if (promql__vec_push(ev->a, &vecs[i], &smp)) {
          rc = promql__ev_oom(ev);
          goto out;
        }
      }
    }
    res.n = 0;
    if ((rc = f(ev, ctx, vecs, ts, &res))) goto out;
    if ((rc = promql__ev_check(ev))) goto out;
    for (size_t k = 0; k < res.n; k++) {
      long idx = omap_get(ev->a, &o, &res.s[k].ls, labels_h(&res.s[k].ls));
      if (idx < 0) {
        rc = promql__ev_oom(ev);
        goto out;
      }
      if ((size_t)idx >= pcapn) {
        size_t nc = pcapn ? pcapn * 2 : 64;
        while (nc <= (size_t)idx) nc *= 2;
        size_t *np = orr_arena_calloc(ev->a, nc, sizeof(size_t));
        if (!np) {
          rc = promql__ev_oom(ev);
          goto out;
        }
        if (pcapn) memcpy(np, pcap, pcapn * sizeof(size_t));
        pcap = np;
        pcapn = nc;
      }
      promql_series *s = &o.m.s[idx];
      if (s->npoints && s->points[s->npoints - 1].t == ts) {
        rc = promql__ev_errorf(ev, "vector cannot contain metrics with the same labelset");
        goto out;
      }
      if (series_append(ev->a, s, &pcap[idx], steps, ts, res.s[k].v)) {
        rc = promql__ev_oom(ev);
        goto out;
      }
    }
    ev->cur_samples += (int64_t)res.n;
    temp += (int64_t)res.n;
    total += (int64_t)res.n;
    if (ev->cur_samples > ev->max_samples) {
      rc = promql__ev_add_samples(ev, 1);
      goto out;
    }
  }
  ev->cur_samples = orig + total;
  out->m = o.m;
out:
  step_cells_free(&tr, n);
  return rc;
}

/* ---------------------------------------------------------------- range arguments */
/* |slide|: the range argument of a function that is not step-invariant
 * (predict_linear) under @. Prometheus then keeps the @-adjusted offset
 * while stepping, so the window moves with the step from the @ time (over
 * data fetched for the @ time only): emulated here. */
static int eval_msrc(promql__ev *ev, const promql_expr *e, bool slide, msrc *out) {
  e = unwrap(e);
  memset(out, 0, sizeof(*out));
  if (e->kind == PROMQL_NODE_MATRIX_SELECTOR) {
    const promql_expr *vs = e->u.ms.vs;
    out->range = e->u.ms.range_ms;
    out->offset = vs->u.vs.offset_ms;
    out->has_at = vs->u.vs.at != PROMQL_AT_NONE;
    out->at = resolve_at(ev, vs->u.vs.at, vs->u.vs.at_ms);
    sel_data *d = find_data(ev, vs);
    if (!d) return 0;
    out->s = d->s;
    out->n = d->n;
    return 0;
  }
  if (e->kind != PROMQL_NODE_SUBQUERY)
    return promql__ev_errorf(ev, "unexpected expression where a range vector is needed");
  int64_t off = e->u.subquery.offset_ms, rng = e->u.subquery.range_ms;
  int64_t step = e->u.subquery.step_ms ? e->u.subquery.step_ms : ev->default_step;
  out->range = rng;
  out->offset = off;
  out->has_at = e->u.subquery.at != PROMQL_AT_NONE;
  out->at = resolve_at(ev, e->u.subquery.at, e->u.subquery.at_ms);
  int64_t S = out->has_at ? out->at : ev->start, E = out->has_at ? out->at : ev->end;
  if (slide && out->has_at) E = out->at + (ev->end - ev->start);
  promql__ev sub = *ev;
  sub.interval = step;
  int64_t lo = S - off - rng;
  sub.start = step * (lo / step);
  if (sub.start < lo) sub.start += step;
  sub.end = E - off;
  val v;
  int rc = eval(&sub, e->u.subquery.expr, &v);
  ev->cur_samples = sub.cur_samples;
  ev->check_ctr = sub.check_ctr;
  if (rc) return rc;
  out->s = v.m.s;
  out->n = v.m.n;
  out->subq_points = mat_points(&v.m);
  return 0;
}

/* The window [ref - range, ref] of |s| given cursors; skips stale markers
 * by building a filtered copy once per series. */
static const promql_point *nonstale(promql__ev *ev, const promql_series *s, size_t *n) {
  size_t k = 0;
  for (size_t i = 0; i < s->npoints; i++)
    if (promql__is_stale(s->points[i].v)) k++;
  if (!k) {
    *n = s->npoints;
    return s->points;
  }
  promql_point *p = orr_arena_alloc(ev->a, (s->npoints - k + 1) * sizeof(*p));
  if (!p) return NULL;
  size_t j = 0;
  for (size_t i = 0; i < s->npoints; i++)
    if (!promql__is_stale(s->points[i].v)) p[j++] = s->points[i];
  *n = j;
  return p;
}

/* An instant query's range-vector result: each series' window at start. */
static int eval_matrix_top(promql__ev *ev, const promql_expr *e, promql__mat *out) {
  msrc m;
  int rc = eval_msrc(ev, e, false, &m);
  if (rc) return rc;
  memset(out, 0, sizeof(*out));
  int64_t ref = (m.has_at ? m.at : ev->start) - m.offset;
  for (size_t i = 0; i < m.n; i++) {
    size_t np;
    const promql_point *p = nonstale(ev, &m.s[i], &np);
    if (!p && m.s[i].npoints) return promql__ev_oom(ev);
    size_t lo = 0, hi;
    while (lo < np && p[lo].t < ref - m.range) lo++;
    hi = lo;
    while (hi < np && p[hi].t <= ref) hi++;
    if (hi == lo) continue;
    /* A subquery's points were counted when it was evaluated. */
    if (!m.subq_points && (rc = promql__ev_add_samples(ev, (int64_t)(hi - lo)))) return rc;
    promql_series s = {m.s[i].labels, (promql_point *)p + lo, hi - lo};
    if (mat_push(ev->a, out, &s)) return promql__ev_oom(ev);
  }
  return 0;
}

/* ---------------------------------------------------------------- range functions in parallel
 * (design note 7) A range function over many series runs in shards of
 * consecutive series on promql__parallel's threads. Each series' values
 * depend on its own points only, so a shard computes exactly what the
 * sequential loop below computes; the shards' outputs are then appended in
 * series order, so the matrix is the same, point for point and in the same
 * order, as the sequential one for any thread count. Two things of the
 * sequential loop are shared state and are replayed instead:
 * - the sample count: within one series cur_samples does not move, so the
 *   loop's per-step test (cur + window > max) is cur + largest window >
 *   max, and its end test uses the last step's window; both are replayed in
 *   series order from what each shard records. While they run, shards add
 *   their outputs to one counter and stop once it passes what the limit
 *   leaves — the replay fails then anyway (the last series to output would
 *   cross it) — so memory stays within --query.max-samples plus one series
 *   per thread;
 * - the arena: shards write to their own malloc'd buffers; only the merge,
 *   on the calling thread, allocates from the arena.
 * holt_winters (errors depend on the step), quantile_over_time (arena) and
 * absent_over_time stay sequential. */
#define RANGE_PAR_MIN_SERIES 512
#define RANGE_PAR_SHARDS_PER_THREAD 4

typedef struct rp_series {
  size_t off, nout; /* points[off, off + nout) of the shard */
  size_t maxwin, lastw;
} rp_series;

typedef struct rp_shard {
  size_t lo, hi; /* series [lo, hi) */
  promql_point *pts;
  size_t npts, cap;
  rp_series *ser;
  int rc;
} rp_shard;

typedef struct rp_job {
  const promql__ev *ev;
  const msrc *m;
  int fid;
  bool slide;
  double *const *other;
  size_t na, steps;
  int64_t left; /* outputs the sample limit leaves */
  atomic_int_least64_t outputs;
  atomic_int stop;
  rp_shard *sh;
} rp_job;

static bool range_par_ok(const promql__ev *ev, int fid, size_t nseries, size_t steps) {
  if (ev->threads < 2 || nseries < RANGE_PAR_MIN_SERIES) return false;
  /* A sub-evaluator of a huge subquery keeps the sequential loop, whose
   * buffer is capped by the sample limit. */
  if (steps > PROMQL_MAX_POINTS_PER_SERIES + 1) return false;
  return fid != promql__range_fn_id("holt_winters") &&
         fid != promql__range_fn_id("quantile_over_time") && fid != 0;
}

/* Shared by rp_run and fz_run: the series' points without its stale markers,
 * which range functions skip. |*p| is left alone when it has none, else points
 * at a copy in |*clean| (grown as needed, kept for the next series). */
static int drop_stale(const promql_point **p, size_t *np, promql_point **clean,
                      size_t *cleancap) {
  size_t nst = 0;
  for (size_t x = 0; x < *np; x++) nst += promql__is_stale((*p)[x].v);
  if (!nst) return 0;
  if (*cleancap < *np) {
    free(*clean);
    if (!(*clean = malloc(*np * sizeof(**clean)))) return ORR_ENOMEM;
    *cleancap = *np;
  }
  size_t w = 0;
  for (size_t x = 0; x < *np; x++)
    if (!promql__is_stale((*p)[x].v)) (*clean)[w++] = (*p)[x];
  *p = *clean;
  *np = w;
  return 0;
}

/* Shared by rp_run and fz_run: one step of range function |fid| over the
 * points |p|. Slides the window [*lo, *hi) to end at the step's reference time
 * (both only move forward across a series' steps), then evaluates the function
 * on it; true with *v when it gave a value. */
static bool range_step(const promql__ev *ev, const msrc *m, int fid, bool slide,
                       double *const *other, size_t na, const promql_point *p, size_t np,
                       size_t st, int64_t ts, size_t *lo, size_t *hi, size_t *maxwin,
                       double *argv, double *v) {
  int64_t ref = (m->has_at ? m->at + (slide ? ts - ev->start : 0) : ts) - m->offset;
  while (*lo < np && p[*lo].t < ref - m->range) (*lo)++;
  if (*hi < *lo) *hi = *lo;
  while (*hi < np && p[*hi].t <= ref) (*hi)++;
  if (*hi == *lo) return false;
  if (*hi - *lo > *maxwin) *maxwin = *hi - *lo;
  for (size_t x = 0; x < na && x <= PROMQL_FUNC_MAX_ARGS; x++)
    argv[x] = other[x] ? other[x][st] : 0;
  promql__win w = {p + *lo, *hi - *lo, m->has_at && !slide ? ev->start : ts, ref, m->range, argv};
  bool ok = false;
  /* No function that runs here uses |ev| (range_par_ok). */
  (void)promql__range_fn(NULL, fid, &w, v, &ok);
  return ok;
}

static void rp_run(void *arg, size_t k) {
  rp_job *j = arg;
  const promql__ev *ev = j->ev;
  const msrc *m = j->m;
  rp_shard *sh = &j->sh[k];
  promql_point *clean = NULL; /* a series without its stale markers */
  size_t cleancap = 0;
  double argv[PROMQL_FUNC_MAX_ARGS + 1];
  for (size_t i = sh->lo; i < sh->hi; i++) {
    if (atomic_load_explicit(&j->stop, memory_order_relaxed)) goto out; /* frees |clean| */
    if (((i - sh->lo) & 255) == 255) {
      if ((ev->cancel && *ev->cancel) || (ev->deadline_ns && orr_mono_ns() > ev->deadline_ns)) {
        sh->rc = ev->cancel && *ev->cancel ? ORR_ECANCELED : ORR_ETIMEOUT;
        atomic_store(&j->stop, 1);
        goto out;
      }
    }
    const promql_series *in = &m->s[i];
    const promql_point *p = in->points;
    size_t np = in->npoints;
    if (drop_stale(&p, &np, &clean, &cleancap)) goto oom;
    if (sh->cap - sh->npts < j->steps) {
      size_t nc = sh->cap ? sh->cap * 2 : j->steps * 16;
      while (nc - sh->npts < j->steps) nc *= 2;
      promql_point *npts = realloc(sh->pts, nc * sizeof(*npts));
      if (!npts) goto oom;
      sh->pts = npts;
      sh->cap = nc;
    }
    rp_series *rs = &sh->ser[i - sh->lo];
    rs->off = sh->npts;
    size_t lo = 0, hi = 0;
    int64_t ts = ev->start;
    for (size_t st = 0; st < j->steps; st++, ts += ev->interval) {
      double v;
      bool ok = range_step(ev, m, j->fid, j->slide, j->other, j->na, p, np, st, ts, &lo, &hi,
                           &rs->maxwin, argv, &v);
      rs->lastw = hi - lo;
      if (!ok) continue;
      sh->pts[sh->npts].t = ts;
      sh->pts[sh->npts].v = v;
      sh->npts++;
      rs->nout++;
    }
    if (rs->nout &&
        atomic_fetch_add(&j->outputs, (int_least64_t)rs->nout) + (int64_t)rs->nout > j->left) {
      atomic_store(&j->stop, 1); /* the replay fails on the limit */
      goto out;
    }
  }
  goto out;
oom:
  sh->rc = ORR_ENOMEM;
  atomic_store(&j->stop, 1);
out:
  free(clean);
}

static int eval_range_par(promql__ev *ev, const msrc *m, int fid, bool slide, double *const *other,
                          size_t na, size_t steps, bool keep_name, val *out) {
  size_t nsh = (size_t)ev->threads * RANGE_PAR_SHARDS_PER_THREAD;
  if (nsh > m->n) nsh = m->n;
  rp_job j;
  memset(&j, 0, sizeof(j));
  j.ev = ev;
  j.m = m;
  j.fid = fid;
  j.slide = slide;
  j.other = other;
  j.na = na;
  j.steps = steps;
  j.left = ev->max_samples - ev->cur_samples;
  atomic_init(&j.outputs, 0);
  atomic_init(&j.stop, 0);
  j.sh = calloc(nsh, sizeof(*j.sh));
  int rc = 0;
  if (!j.sh) return promql__ev_oom(ev);
  for (size_t k = 0; k < nsh; k++) {
    j.sh[k].lo = m->n * k / nsh;
    j.sh[k].hi = m->n * (k + 1) / nsh;
    j.sh[k].ser = calloc(j.sh[k].hi - j.sh[k].lo + 1, sizeof(rp_series));
    if (!j.sh[k].ser) {
      rc = promql__ev_oom(ev);
      goto out;
    }
  }
  promql__parallel(ev->threads, nsh, rp_run, &j);
  for (size_t k = 0; k < nsh; k++) {
    if (j.sh[k].rc == ORR_ENOMEM) {
      rc = promql__ev_oom(ev);
      goto out;
    }
    if (j.sh[k].rc) { /* canceled or timed out: the next check says which */
      ev->check_ctr = 255;
      if (!(rc = promql__ev_check(ev))) rc = promql__ev_errorf(ev, "query was interrupted");
      goto out;
    }
  }
  /* The replay, in series order (a stopped shard left zeros behind the
   * series where it stopped; the replay fails before reaching them). */
  for (size_t k = 0; k < nsh; k++) {
    const rp_shard *sh = &j.sh[k];
    for (size_t i = sh->lo; i < sh->hi; i++) {
      const rp_series *rs = &sh->ser[i - sh->lo];
      if (rs->maxwin && ev->cur_samples + (int64_t)rs->maxwin > ev->max_samples) {
        rc = promql__ev_add_samples(ev, (int64_t)rs->maxwin);
        goto out;
      }
      if (!rs->nout) continue;
      if (ev->cur_samples + (int64_t)rs->lastw + (int64_t)rs->nout > ev->max_samples) {
        rc = promql__ev_add_samples(ev, (int64_t)rs->lastw + (int64_t)rs->nout);
        goto out;
      }
      ev->cur_samples += (int64_t)rs->nout;
      promql_series s = {m->s[i].labels, orr_arena_alloc(ev->a, rs->nout * sizeof(promql_point)),
                         rs->nout};
      if (!s.points || (!keep_name && promql__drop_name(ev->a, &m->s[i].labels, &s.labels)) ||
          mat_push(ev->a, &out->m, &s)) {
        rc = promql__ev_oom(ev);
        goto out;
      }
      memcpy(s.points, sh->pts + rs->off, rs->nout * sizeof(promql_point));
    }
  }
  if (atomic_load(&j.stop)) /* stopped on the limit, yet the replay passed: cannot be */
    rc = promql__ev_add_samples(ev, ev->max_samples + 1);
out:
  for (size_t k = 0; k < nsh; k++) {
    free(j.sh[k].pts);
    free(j.sh[k].ser);
  }
  free(j.sh);
  return rc;
}

/* ---------------------------------------------------------------- calls */
typedef struct call_ctx {
  const promql_expr *call;
  void *state;
} call_ctx;

static int call_step(promql__ev *ev, void *ctx, promql__vec *args, int64_t ts, promql__vec *out) {
  call_ctx *c = ctx;
  return promql__vector_fn(ev, c->call, &c->state, args, ts, out);
}

static int eval_call(promql__ev *ev, const promql_expr *e, val *out) {
  const promql_function *f = e->u.call.func;
  size_t na = e->u.call.nargs;
  int rc;
  long mi = -1;
  for (size_t i = 0; i < na; i++) {
    const promql_expr *a = unwrap(e->u.call.args[i]);
    if (a->kind == PROMQL_NODE_MATRIX_SELECTOR || a->kind == PROMQL_NODE_SUBQUERY) {
      mi = (long)i;
      break;
    }
  }
  if (mi < 0) {
    if (strcmp(f->name, "timestamp") == 0 && unwrap(e->u.call.args[0])->kind ==
                                                 PROMQL_NODE_VECTOR_SELECTOR) {
      val v;
      int64_t orig = ev->cur_samples;
      if ((rc = eval_vs(ev, unwrap(e->u.call.args[0]), true, &v))) return rc;
      /* Prometheus selects step by step here: at each step the selected
       * samples and as many results are held, on top of earlier results. */
      size_t steps = nsteps(ev);
      int64_t *per = orr_arena_calloc(ev->a, steps ? steps : 1, sizeof(int64_t));
      if (!per) return promql__ev_oom(ev);
      for (size_t i = 0; i < v.m.n; i++)
        for (size_t k = 0; k < v.m.s[i].npoints; k++)
          per[(v.m.s[i].points[k].t - ev->start) / ev->interval]++;
      int64_t temp = orig;
      for (size_t st = 0; st < steps; st++) {
        if (temp + 2 * per[st] > ev->max_samples) return promql__ev_add_samples(ev, ev->max_samples);
        temp += per[st];
      }
      ev->cur_samples = temp;
      /* timestamp(selector): the samples' own times, names dropped. As in
       * Prometheus's step-by-step evaluation, series that share labels once
       * the name is gone are an error only where they meet at a step;
       * otherwise they are one series (a and b below are merged). */
      memset(out, 0, sizeof(*out));
      out->type = PROMQL_TYPE_VECTOR;
      for (size_t i = 0; i < v.m.n; i++) {
        labels_set ls;
        if (promql__drop_name(ev->a, &v.m.s[i].labels, &ls)) return promql__ev_oom(ev);
        v.m.s[i].labels = ls;
      }
      omap o;
      memset(&o, 0, sizeof(o));
      for (size_t i = 0; i < v.m.n; i++) {
        size_t before = o.m.n;
        long k = omap_get(ev->a, &o, &v.m.s[i].labels, labels_h(&v.m.s[i].labels));
        if (k < 0) return promql__ev_oom(ev);
        promql_series *a = &o.m.s[k];
        const promql_series *b = &v.m.s[i];
        if (o.m.n != before) {
          a->points = b->points;
          a->npoints = b->npoints;
          continue;
        }
        promql_point *mp = orr_arena_alloc(ev->a, (a->npoints + b->npoints) * sizeof(*mp));
        if (!mp) return promql__ev_oom(ev);
        size_t x = 0, y = 0, n = 0;
        while (x < a->npoints || y < b->npoints) {
          if (x < a->npoints && y < b->npoints && a->points[x].t == b->points[y].t)
            return promql__ev_errorf(ev, "vector cannot contain metrics with the same labelset");
          if (y == b->npoints || (x < a->npoints && a->points[x].t < b->points[y].t))
            mp[n++] = a->points[x++];
          else
            mp[n++] = b->points[y++];
        }
        a->points = mp;
        a->npoints = n;
      }
      out->m = o.m;
      return 0;
    }
    call_ctx c = {e, NULL};
    rc = range_eval(ev, call_step, NULL, &c, (const promql_expr *const *)e->u.call.args, na, out);
    promql__vector_fn_free(e, c.state);
    return rc;
  }

  /* A range argument: evaluate it, and the other (scalar) arguments. */
  double *other[PROMQL_FUNC_MAX_ARGS + 1];
  size_t steps = nsteps(ev);
  for (size_t i = 0; i < na && i <= PROMQL_FUNC_MAX_ARGS; i++) {
    other[i] = NULL;
    if ((long)i == mi) continue;
    if (promql_expr_type(e->u.call.args[i]) == PROMQL_TYPE_STRING) continue;
    val v;
    if ((rc = eval(ev, e->u.call.args[i], &v))) return rc;
    other[i] = orr_arena_calloc(ev->a, steps ? steps : 1, sizeof(double));
    if (!other[i]) return promql__ev_oom(ev);
    if (v.m.n)
      for (size_t k = 0; k < steps && k < v.m.s[0].npoints; k++) other[i][k] = v.m.s[0].points[k].v;
  }
  msrc m;
  bool slide = f->at_unsafe;
  if ((rc = eval_msrc(ev, e->u.call.args[mi], slide, &m))) return rc;
  memset(out, 0, sizeof(*out));
  out->type = PROMQL_TYPE_VECTOR;
  bool keep_name = strcmp(f->name, "last_over_time") == 0;
  int fid = promql__range_fn_id(f->name);
  bool absent = strcmp(f->name, "absent_over_time") == 0;
  if (!absent && range_par_ok(ev, fid, m.n, steps)) {
    rc = eval_range_par(ev, &m, fid, slide, other, na, steps, keep_name, out);
    if (m.subq_points) ev->cur_samples -= m.subq_points;
    if (rc) return rc;
    return check_dups(ev, &out->m);
  }
  /* A series' output is at most what the sample limit leaves, so the buffer
   * is no bigger: a subquery of 3e10 steps fails on the limit (422), not on
   * malloc. */
  size_t cap = steps;
  int64_t left = absent ? ev->max_samples : ev->max_samples - ev->cur_samples;
  if (left < 0) left = 0;
  if ((uint64_t)cap > (uint64_t)left + 1) cap = (size_t)left + 1;
  promql_point *buf = cap ? malloc(cap * sizeof(*buf)) : NULL;
  bool *found = absent && steps ? calloc(steps, sizeof(bool)) : NULL;
  if ((steps && !buf) || (absent && steps && !found)) {
    free(buf);
    free(found);
    return promql__ev_oom(ev);
  }
  double argv[PROMQL_FUNC_MAX_ARGS + 1];
  for (size_t i = 0; i < m.n && rc == 0; i++) {
    size_t np;
    const promql_point *p = nonstale(ev, &m.s[i], &np);
    if (!p && m.s[i].npoints) {
      rc = promql__ev_oom(ev);
      break;
    }
    size_t lo = 0, hi = 0, nout = 0, lastw = 0;
    int64_t ts = ev->start;
    for (size_t st = 0; st < steps; st++, ts += ev->interval) {
      int64_t ref = (m.has_at ? m.at + (slide ? ts - ev->start : 0) : ts) - m.offset;
      while (lo < np && p[lo].t < ref - m.range) lo++;
      if (hi < lo) hi = lo;
      while (hi < np && p[hi].t <= ref) hi++;
      lastw = hi - lo;
      if (hi == lo) continue;
      if ((rc = promql__ev_check(ev))) break;
      if (ev->cur_samples + (int64_t)(hi - lo) > ev->max_samples) {
        rc = promql__ev_add_samples(ev, (int64_t)(hi - lo));
        break;
      }
      if (absent) {
        /* Counted as one output per step, as Prometheus evaluates it. */
        found[st] = true;
        nout++;
        continue;
      }
      for (size_t k = 0; k < na && k <= PROMQL_FUNC_MAX_ARGS; k++)
        argv[k] = other[k] ? other[k][st] : 0;
      promql__win w = {p + lo, hi - lo, m.has_at && !slide ? ev->start : ts, ref, m.range, argv};
      double v;
      bool ok = false;
      if ((rc = promql__range_fn(ev, fid, &w, &v, &ok))) break;
      if (!ok) continue;
      if (nout == cap) {
        rc = promql__ev_add_samples(ev, (int64_t)ev->max_samples + 1); /* over the limit */
        break;
      }
      buf[nout].t = ts;
      buf[nout].v = v;
      nout++;
    }
    if (rc || !nout) continue;
    /* Prometheus checks a series' output while its last window is held. */
    if (ev->cur_samples + (int64_t)lastw + (int64_t)nout > ev->max_samples) {
      rc = promql__ev_add_samples(ev, (int64_t)lastw + (int64_t)nout);
      break;
    }
    ev->cur_samples += (int64_t)nout;
    if (absent) continue;
    promql_series s = {m.s[i].labels, orr_arena_alloc(ev->a, nout * sizeof(promql_point)), nout};
    if (!s.points) {
      rc = promql__ev_oom(ev);
      break;
    }
    memcpy(s.points, buf, nout * sizeof(promql_point));
    if (!keep_name && promql__drop_name(ev->a, &m.s[i].labels, &s.labels)) {
      rc = promql__ev_oom(ev);
      break;
    }
    if (mat_push(ev->a, &out->m, &s)) rc = promql__ev_oom(ev);
  }
  if (!rc && absent) {
    size_t nout = 0;
    int64_t ts = ev->start;
    for (size_t st = 0; st < steps; st++, ts += ev->interval)
      if (!found[st]) {
        if (nout == cap) {
          rc = promql__ev_add_samples(ev, (int64_t)ev->max_samples + 1);
          break;
        }
        buf[nout].t = ts;
        buf[nout].v = 1;
        nout++;
      }
    if (nout && !rc) {
      promql_series s = {{NULL, 0}, orr_arena_alloc(ev->a, nout * sizeof(promql_point)), nout};
      if (!s.points || promql__absent_labels(ev->a, e->u.call.args[0], &s.labels) ||
          mat_push(ev->a, &out->m, &s))
        rc = promql__ev_oom(ev);
      else
        memcpy(out->m.s[out->m.n - 1].points, buf, nout * sizeof(promql_point));
    }
  }
  free(buf);
  free(found);
  /* A subquery's points are released once the function is done. */
  if (m.subq_points) ev->cur_samples -= m.subq_points;
  if (rc) return rc;
  if (!absent && (rc = check_dups(ev, &out->m))) return rc;
  return 0;
}

/* ---------------------------------------------------------------- aggregations */
static uint64_t agg_prep(void *ctx, size_t argi, const labels_set *ls) {
  const promql_expr *e = ctx;
  return argi == 1 ? promql__agg_key(e, ls) : 0;
}

static int agg_step(promql__ev *ev, void *ctx, promql__vec *args, int64_t ts, promql__vec *out) {
  const promql_expr *e = ctx;
  (void)ts;
  double param = 0;
  if (e->u.agg.param && promql_expr_type(e->u.agg.param) != PROMQL_TYPE_STRING && args[0].n)
    param = args[0].s[0].v;
  return promql__aggregate(ev, e, param, &args[1], out);
}

bool promql_aggregate_mergeable(const promql_expr *e) {
  if (!e || e->kind != PROMQL_NODE_AGGREGATE || e->u.agg.without) return false;
  switch (e->u.agg.op) {
    case PROMQL_AGG_SUM:
    case PROMQL_AGG_MIN:
    case PROMQL_AGG_MAX:
    case PROMQL_AGG_COUNT:
    case PROMQL_AGG_GROUP:
    case PROMQL_AGG_TOPK:
    case PROMQL_AGG_BOTTOMK: return true;
    default: return false;
  }
}

static const sel_data *find_partials(const promql__ev *ev, const promql_expr *e) {
  const struct promql_query *q = ev->q;
  for (size_t i = 0; i < q->npartials; i++)
    if (q->partials[i].node == e) return &q->partials[i].d;
  return NULL;
}

/* topk and bottomk: the partials (each source's own top k per group) join
 * the node's input, and the node picks again over all of them. */
static int inject_partials(promql__ev *ev, const promql_expr *e, val *arg) {
  if (e->u.agg.op != PROMQL_AGG_TOPK && e->u.agg.op != PROMQL_AGG_BOTTOMK) return 0;
  const sel_data *d = find_partials(ev, e);
  if (!d) return 0;
  if (ev->start != ev->qstart || ev->end != ev->qend)
    return promql__ev_errorf(ev, "partial result of an aggregation not at the query's steps");
  for (size_t i = 0; i < d->n; i++)
    if (mat_push(ev->a, &arg->m, &d->s[i])) return promql__ev_oom(ev);
  return d->n ? check_dups(ev, &arg->m) : 0;
}

/* Two partial values of one group at one step, as aggregation() would have
 * folded them had it seen both parts. */
static double agg_combine(promql_aggop op, double x, double y) {
  switch (op) {
    case PROMQL_AGG_SUM:
    case PROMQL_AGG_COUNT: return x + y;
    case PROMQL_AGG_MIN: return (x > y || isnan(x)) ? y : x;
    case PROMQL_AGG_MAX: return (x < y || isnan(x)) ? y : x;
    default: return 1; /* group */
  }
}

/* Merges |p| into |s| step by step (both ascending, one point per step). */
static int merge_points(promql__ev *ev, promql_aggop op, promql_series *s, const promql_series *p) {
  size_t tot = s->npoints + p->npoints;
  promql_point *np = orr_arena_alloc(ev->a, (tot ? tot : 1) * sizeof(*np));
  if (!np) return promql__ev_oom(ev);
  size_t i = 0, j = 0, k = 0;
  while (i < s->npoints || j < p->npoints) {
    if (j == p->npoints || (i < s->npoints && s->points[i].t < p->points[j].t)) {
      np[k++] = s->points[i++];
    } else if (i == s->npoints || p->points[j].t < s->points[i].t) {
      np[k++] = p->points[j++];
    } else {
      np[k].t = s->points[i].t;
      np[k++].v = agg_combine(op, s->points[i++].v, p->points[j++].v);
    }
  }
  s->points = np;
  s->npoints = k;
  return 0;
}

/* The node's own result and its partials, merged per label set (design of
 * promql_query_add_partial). */
static int merge_partials(promql__ev *ev, const promql_expr *e, const sel_data *d, val *out) {
  if (ev->start != ev->qstart || ev->end != ev->qend)
    return promql__ev_errorf(ev, "partial result of an aggregation not at the query's steps");
  omap o;
  memset(&o, 0, sizeof(o));
  for (size_t i = 0; i < out->m.n; i++) {
    long k = omap_get(ev->a, &o, &out->m.s[i].labels, labels_h(&out->m.s[i].labels));
    if (k < 0) return promql__ev_oom(ev);
    o.m.s[k] = out->m.s[i];
  }
  for (size_t i = 0; i < d->n; i++) {
    const promql_series *p = &d->s[i];
    size_t before = o.m.n;
    long k = omap_get(ev->a, &o, &p->labels, labels_h(&p->labels));
    if (k < 0) return promql__ev_oom(ev);
    if (o.m.n != before) {
      o.m.s[k] = *p;
      if (e->u.agg.op == PROMQL_AGG_GROUP) { /* 1 wherever the group has a member */
        promql_point *np = orr_arena_alloc(ev->a, (p->npoints ? p->npoints : 1) * sizeof(*np));
        if (!np) return promql__ev_oom(ev);
        for (size_t j = 0; j < p->npoints; j++) np[j] = (promql_point){p->points[j].t, 1};
        o.m.s[k].points = np;
      }
      continue;
    }
    int rc = merge_points(ev, e->u.agg.op, &o.m.s[k], p);
    if (rc) return rc;
  }
  out->m = o.m;
  return 0;
}

static bool is_wrapped(const promql__ev *ev, const promql_expr *e);

/* ---------------------------------------------------------------- fused aggregation
 * (design note 8) sum/avg/count/min/max/group/stddev/stdvar of a range
 * function over a matrix selector — `sum by (job) (rate(x[5m]))` — or of a
 * vector selector — `count by (job) (x)`, each step's value the series'
 * latest sample within the lookback as eval_vs takes it — without the
 * function's matrix: each thread takes a contiguous range of steps,
 * walks every series in series order, computes the function's value at its
 * steps and folds it at once into its (group, step) accumulator. Why the
 * answer is the one of range_eval + promql__aggregate, bit for bit:
 * - a (group, step) cell is folded by one thread only, in series order,
 *   which is the order of the step's input vector (series without a value
 *   at the step are absent from it and skipped here); the fold is the same
 *   code path per op as aggregate()'s (first value assigned, then folded);
 * - at each step, groups are listed in the order of their first member in
 *   the step's vector (the smallest series index seen in the cell), and
 *   the output series are gathered across steps in first-seen order, as
 *   range_eval's output map does;
 * - group keys and labels are computed from the selector's labels: with
 *   __name__ not among by's labels the name does not enter either (with
 *   `without`, aggregate() drops it itself);
 * - the sample count is replayed: the function's per-series checks as in
 *   eval_range_par, then range_eval's per-step checks from the number of
 *   inputs and groups at each step; the count ends where range_eval ends.
 * The function's values are never held beyond one step of one series, so
 * memory is the accumulators (bounded: FUSED_MAX_CELLS) whatever the number
 * of series. */
#define FUSED_MAX_CELLS ((size_t)1 << 22)

typedef struct fz_cell {
  double value, mean, count;
  size_t first; /* series index of the first member; SIZE_MAX: empty */
} fz_cell;

typedef struct fz_part { /* one thread's steps [s0, s1) */
  size_t s0, s1;
  rp_series *ser; /* per series: nout and largest window over [s0, s1) */
  size_t *lastw;  /* per series: the window at the last step (last part only) */
  promql_point *clean;
  size_t cleancap;
  int rc;
} fz_part;

typedef struct fz_job {
  const promql__ev *ev;
  const msrc *m;
  bool vs;    /* a vector selector (m's offset, lookback), not a range function */
  int fid;
  bool slide;
  double *const *other;
  size_t na, steps, ngroups;
  size_t nser; /* series folded while loading (fz_stream) */
  promql_aggop op;
  const size_t *grp; /* group of each series */
  fz_cell **rows;   /* [group][step] */
  size_t *nin;       /* inputs per step */
  fz_part *parts;
  atomic_int stop;
} fz_job;

static void fz_fold(promql_aggop op, fz_cell *c, double v, size_t i) {
  if (c->first == SIZE_MAX) {
    c->first = i;
    c->value = v;
    c->mean = v;
    c->count = 1;
    if (op == PROMQL_AGG_STDVAR || op == PROMQL_AGG_STDDEV) c->value = 0;
    if (op == PROMQL_AGG_GROUP) c->value = 1;
    return;
  }
  switch (op) {
    case PROMQL_AGG_SUM: c->value += v; break;
    case PROMQL_AGG_AVG:
      c->count++;
      if (isinf(c->mean)) {
        if (isinf(v) && (c->mean > 0) == (v > 0)) break;
        if (!isinf(v) && !isnan(v)) break;
      }
      c->mean += v / c->count - c->mean / c->count;
      break;
    case PROMQL_AGG_MAX:
      if (c->value < v || isnan(c->value)) c->value = v;
      break;
    case PROMQL_AGG_MIN:
      if (c->value > v || isnan(c->value)) c->value = v;
      break;
    case PROMQL_AGG_COUNT: c->count++; break;
    case PROMQL_AGG_STDVAR:
    case PROMQL_AGG_STDDEV: {
      c->count++;
      double delta = v - c->mean;
      c->mean += delta / c->count;
      c->value += delta * (v - c->mean);
      break;
    }
    default: break;
  }
}

static double fz_value(promql_aggop op, const fz_cell *c) {
  switch (op) {
    case PROMQL_AGG_AVG: return c->mean;
    case PROMQL_AGG_COUNT: return c->count;
    case PROMQL_AGG_STDVAR: return c->value / c->count;
    case PROMQL_AGG_STDDEV: return sqrt(c->value / c->count);
    default: return c->value;
  }
}

/* A vector selector's series at the steps of |pt|, as eval_vs selects it:
 * the latest sample at or before the step within the lookback, none when
 * that sample is a stale marker. */
static void fz_run_vs(fz_job *j, fz_part *pt, const promql_point *p, size_t np, size_t i) {
  const promql__ev *ev = j->ev;
  rp_series *rs = &pt->ser[i];
  fz_cell *cells = j->rows[j->grp[i]];
  int64_t ts = ev->start + (int64_t)pt->s0 * ev->interval;
  int64_t ref = ts - j->m->offset;
  /* The first point after the first step's reference: a binary search, as
   * a part may start late in the series. */
  size_t lo = 0, hi = np;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (p[mid].t <= ref)
      lo = mid + 1;
    else
      hi = mid;
  }
  size_t idx = lo;
  for (size_t st = pt->s0; st < pt->s1; st++, ref += ev->interval) {
    while (idx < np && p[idx].t <= ref) idx++;
    if (idx == 0) continue;
    const promql_point *q = &p[idx - 1];
    if (q->t < ref - ev->lookback || promql__is_stale(q->v)) continue;
    rs->nout++;
    j->nin[st]++;
    fz_fold(j->op, &cells[st], q->v, i);
  }
}

/* Series |i| (points |p|) at the steps of |pt|, folded into its group's
 * cells; ORR_ENOMEM or 0. */
static int fz_series(fz_job *j, fz_part *pt, const promql_point *p, size_t np, size_t i) {
  if (j->vs) {
    fz_run_vs(j, pt, p, np, i);
    return 0;
  }
  const promql__ev *ev = j->ev;
  double argv[PROMQL_FUNC_MAX_ARGS + 1];
  if (drop_stale(&p, &np, &pt->clean, &pt->cleancap)) return ORR_ENOMEM;
  rp_series *rs = &pt->ser[i];
  fz_cell *cells = j->rows[j->grp[i]];
  size_t lo = 0, hi = 0, lastw = 0;
  int64_t ts = ev->start + (int64_t)pt->s0 * ev->interval;
  for (size_t st = pt->s0; st < pt->s1; st++, ts += ev->interval) {
    double v;
    bool ok = range_step(ev, j->m, j->fid, j->slide, j->other, j->na, p, np, st, ts, &lo, &hi,
                         &rs->maxwin, argv, &v);
    lastw = hi - lo;
    if (!ok) continue;
    rs->nout++;
    j->nin[st]++;
    fz_fold(j->op, &cells[st], v, i);
  }
  if (pt->lastw) pt->lastw[i] = lastw;
  return 0;
}

static void fz_run(void *arg, size_t k) {
  fz_job *j = arg;
  const promql__ev *ev = j->ev;
  const msrc *m = j->m;
  fz_part *pt = &j->parts[k];
  for (size_t i = 0; i < m->n; i++) {
    if ((i & 255) == 255) {
      if (atomic_load_explicit(&j->stop, memory_order_relaxed)) return;
      if ((ev->cancel && *ev->cancel) || (ev->deadline_ns && orr_mono_ns() > ev->deadline_ns)) {
        pt->rc = ev->cancel && *ev->cancel ? ORR_ECANCELED : ORR_ETIMEOUT;
        atomic_store(&j->stop, 1);
        return;
      }
    }
    if (fz_series(j, pt, m->s[i].points, m->s[i].npoints, i)) {
      pt->rc = ORR_ENOMEM;
      atomic_store(&j->stop, 1);
      return;
    }
  }
}

/* The first group of |ls| labels as aggregate() builds them. */
static int fz_group_labels(promql__ev *ev, const promql_expr *e, const labels_set *metric,
                           labels_set *out) {
  if (e->u.agg.without) {
    labels_builder b;
    labels_builder_init(&b, ev->a, metric);
    for (size_t j = 0; j < e->u.agg.ngrouping; j++) labels_builder_del(&b, e->u.agg.grouping[j]);
    labels_builder_del(&b, LABELS_METRIC_NAME);
    return labels_builder_finish(&b, out);
  }
  memset(out, 0, sizeof(*out));
  if (!e->u.agg.ngrouping) return 0;
  labels_label *v = orr_arena_alloc(ev->a, (metric->n ? metric->n : 1) * sizeof(*v));
  if (!v) return ORR_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < metric->n; i++)
    for (size_t j = 0; j < e->u.agg.ngrouping; j++)
      if (strcmp(metric->v[i].name, e->u.agg.grouping[j]) == 0) {
        v[n++] = metric->v[i];
        break;
      }
  out->v = v;
  out->n = n;
  return 0;
}

bool promql__fusion_off;

/* Whether |e| takes the fused path; |*call| is its range function call, or
 * its vector selector (|*is_vs|). */
static bool fused_ok(const promql__ev *ev, const promql_expr *e, const promql_expr **call,
                     long *mi, bool *is_vs) {
  switch (e->u.agg.op) {
    case PROMQL_AGG_SUM:
    case PROMQL_AGG_AVG:
    case PROMQL_AGG_COUNT:
    case PROMQL_AGG_MIN:
    case PROMQL_AGG_MAX:
    case PROMQL_AGG_GROUP:
    case PROMQL_AGG_STDDEV:
    case PROMQL_AGG_STDVAR: break;
    default: return false;
  }
  if (promql__fusion_off || find_partials(ev, e)) return false;
  const promql_expr *c = e->u.agg.expr;
  while (c->kind == PROMQL_NODE_PAREN) c = c->u.paren.expr;
  *is_vs = false;
  if (c->kind == PROMQL_NODE_VECTOR_SELECTOR) {
    /* Under @ the selector is step-invariant (wrapped): the usual path.
     * The selector keeps its name, so by (__name__) needs nothing more. */
    if ((ev->ninv && is_wrapped(ev, c)) || c->u.vs.at != PROMQL_AT_NONE) return false;
    *is_vs = true;
    *mi = -1;
    *call = c;
    return true;
  }
  if (c->kind != PROMQL_NODE_CALL || (ev->ninv && is_wrapped(ev, c))) return false;
  const char *name = c->u.call.func->name;
  int fid = promql__range_fn_id(name);
  if (!fid || fid == promql__range_fn_id("holt_winters") ||
      fid == promql__range_fn_id("quantile_over_time") || !strcmp(name, "absent_over_time"))
    return false;
  *mi = -1;
  for (size_t i = 0; i < c->u.call.nargs; i++) {
    const promql_expr *a = c->u.call.args[i];
    if (ev->ninv && is_wrapped(ev, a) && a->kind != PROMQL_NODE_NUMBER) return false;
    a = unwrap(a);
    if (a->kind == PROMQL_NODE_SUBQUERY) return false;
    if (a->kind == PROMQL_NODE_MATRIX_SELECTOR) *mi = (long)i;
    else if (a->kind != PROMQL_NODE_NUMBER) return false;
  }
  if (*mi < 0) return false;
  /* Names dropped from series of one name cannot collide (eval_call's
   * duplicate check); by (__name__) would see the dropped name. */
  bool keep_name = strcmp(name, "last_over_time") == 0;
  if (!keep_name) {
    for (size_t j = 0; j < e->u.agg.ngrouping; j++)
      if (!e->u.agg.without && strcmp(e->u.agg.grouping[j], LABELS_METRIC_NAME) == 0) return false;
    const promql_expr *vs = unwrap(c->u.call.args[*mi])->u.ms.vs;
    bool one_name = false;
    for (size_t k = 0; k < vs->u.vs.nmatchers; k++)
      if (labels_matcher_type(vs->u.vs.matchers[k]) == LABELS_MATCH_EQ &&
          strcmp(labels_matcher_name(vs->u.vs.matchers[k]), LABELS_METRIC_NAME) == 0)
        one_name = true;
    if (!one_name) return false;
  }
  *call = c;
  return true;
}

/* ---------------------------------------------------------------- fused aggregation while loading
 * promql_eval() over a storage that hands each series once, in label order
 * (promql_storage.ordered: the blocks' merged walk of `tools query`), need
 * not keep the points of a fused aggregation's selector at all: each series is folded as it arrives
 * (fz_series over every step, one part), and the evaluation later finds
 * the folded cells (stream_of) and only replays the count and gathers the
 * output (fz_finish). The answer is the fused one: the series arrive in the
 * order prepare_data would sort them into, each with index = its position,
 * so every fold sees the same operands in the same order. If the order is
 * not strictly ascending (overlapping blocks hand a series in parts) or the
 * groups outgrow FUSED_MAX_CELLS, the stream is dropped and the selector is
 * selected again, kept as usual. Streamed: the aggregation reached from
 * the root through parentheses, aggregations (topk over sum) and calls of
 * vector functions (histogram_quantile), in a query without @ or other
 * step-invariant parts, so it is evaluated once, at the query's steps. */
typedef struct fz_stream {
  const promql_expr *agg;
  size_t sel; /* the streamed selector */
  promql__ev ev;
  msrc m;
  double *other[PROMQL_FUNC_MAX_ARGS + 1];
  fz_job job;
  fz_part part;
  size_t n, cap; /* series folded; capacity of the per-series arrays */
  size_t ng, capg;
  uint64_t *keys;
  size_t *tab, tcap;
  size_t *grp;
  labels_set *replabels; /* in the query's arena */
  orr_arena *prev_a;     /* the previous series' labels */
  labels_set prev;
  bool failed;
} fz_stream;

static void stream_free(fz_stream *fs) {
  if (!fs) return;
  free(fs->keys);
  free(fs->tab);
  free(fs->grp);
  for (size_t g = 0; g < fs->ng; g++) free(fs->job.rows[g]);
  free(fs->job.rows);
  free(fs->job.nin);
  free(fs->part.ser);
  free(fs->part.lastw);
  free(fs->part.clean);
  orr_arena_destroy(fs->prev_a);
  free(fs);
}

static fz_stream *stream_of(const promql__ev *ev, const promql_expr *e) {
  fz_stream *fs = ev->q ? ev->q->stream : NULL;
  if (!fs || fs->agg != e) return NULL;
  return fs;
}

static int stream_group(orr_arena *a, fz_stream *fs, const labels_set *ls, size_t *g) {
  uint64_t key = promql__agg_key(fs->agg, ls);
  if ((fs->ng + 1) * 2 > fs->tcap) {
    size_t nc = fs->tcap ? fs->tcap * 2 : 64;
    size_t *nt = malloc(nc * sizeof(size_t));
    if (!nt) return ORR_ENOMEM;
    for (size_t i = 0; i < nc; i++) nt[i] = SIZE_MAX;
    for (size_t x = 0; x < fs->ng; x++) {
      size_t slot = (size_t)(fs->keys[x] * 0x9E3779B97F4A7C15ULL >> 11) & (nc - 1);
      while (nt[slot] != SIZE_MAX) slot = (slot + 1) & (nc - 1);
      nt[slot] = x;
    }
    free(fs->tab);
    fs->tab = nt;
    fs->tcap = nc;
  }
  size_t slot = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 11) & (fs->tcap - 1);
  while (fs->tab[slot] != SIZE_MAX && fs->keys[fs->tab[slot]] != key)
    slot = (slot + 1) & (fs->tcap - 1);
  if (fs->tab[slot] != SIZE_MAX) {
    *g = fs->tab[slot];
    return 0;
  }
  size_t steps = fs->job.steps;
  if ((fs->ng + 1) * steps > FUSED_MAX_CELLS) {
    fs->failed = true;
    return 0;
  }
  if (fs->ng == fs->capg) {
    size_t nc = fs->capg ? fs->capg * 2 : 16;
    uint64_t *nk = realloc(fs->keys, nc * sizeof(*nk));
    if (!nk) return ORR_ENOMEM;
    fs->keys = nk;
    fz_cell **nr = realloc(fs->job.rows, nc * sizeof(*nr));
    if (!nr) return ORR_ENOMEM;
    fs->job.rows = nr;
    labels_set *nl = orr_arena_alloc(a, nc * sizeof(*nl));
    if (!nl) return ORR_ENOMEM;
    if (fs->ng) memcpy(nl, fs->replabels, fs->ng * sizeof(*nl));
    fs->replabels = nl;
    fs->capg = nc;
  }
  if (labels_copy(a, ls, &fs->replabels[fs->ng])) return ORR_ENOMEM;
  /* A row per group: no copying as groups come (topk over 5000 of them). */
  if (!(fs->job.rows[fs->ng] = malloc(steps * sizeof(fz_cell)))) return ORR_ENOMEM;
  for (size_t x = 0; x < steps; x++) fs->job.rows[fs->ng][x].first = SIZE_MAX;
  fs->keys[fs->ng] = key;
  fs->tab[slot] = fs->ng;
  *g = fs->ng++;
  return 0;
}

/* One series of the streamed selector, under the query's lock. */
static int stream_add(promql_query *q, const labels_set *ls, const promql_point *pts, size_t n) {
  fz_stream *fs = q->stream;
  if (fs->failed) return 0;
  if (fs->n && labels_cmp(&fs->prev, ls) >= 0) {
    fs->failed = true;
    return 0;
  }
  orr_arena_reset(fs->prev_a);
  if (labels_copy(fs->prev_a, ls, &fs->prev)) return ORR_ENOMEM;
  size_t g;
  int rc = stream_group(q->a, fs, ls, &g);
  if (rc || fs->failed) return rc;
  if (fs->n == fs->cap) {
    size_t nc = fs->cap ? fs->cap * 2 : 1024;
    size_t *ngp = realloc(fs->grp, nc * sizeof(*ngp));
    if (!ngp) return ORR_ENOMEM;
    fs->grp = ngp;
    rp_series *ns = realloc(fs->part.ser, nc * sizeof(*ns));
    if (!ns) return ORR_ENOMEM;
    fs->part.ser = ns;
    size_t *nl = realloc(fs->part.lastw, nc * sizeof(*nl));
    if (!nl) return ORR_ENOMEM;
    fs->part.lastw = nl;
    fs->cap = nc;
  }
  fs->grp[fs->n] = g;
  memset(&fs->part.ser[fs->n], 0, sizeof(rp_series));
  fs->part.lastw[fs->n] = 0;
  fs->job.grp = fs->grp;
  fs->job.ngroups = fs->ng;
  if ((rc = fz_series(&fs->job, &fs->part, pts, n, fs->n))) return rc;
  fs->n++;
  fs->job.nser = fs->n;
  return 0;
}

static bool has_range_arg(const promql_expr *c) {
  for (size_t i = 0; i < c->u.call.nargs; i++) {
    const promql_expr *a = unwrap(c->u.call.args[i]);
    if (a->kind == PROMQL_NODE_MATRIX_SELECTOR || a->kind == PROMQL_NODE_SUBQUERY) return true;
  }
  return false;
}

/* The aggregation to stream, reached from |e| as the note above says, and
 * the steps it is evaluated at (|ev|'s, or a subquery's: a range function
 * of a subquery evaluates the subquery's expression once, at the steps
 * eval_msrc computes here the same way). */
static const promql_expr *stream_find(promql__ev *ev, const promql_expr *e, int depth) {
  if (!e || depth > 8) return NULL;
  const promql_expr *c, *x;
  long mi;
  bool vs;
  switch (e->kind) {
    case PROMQL_NODE_PAREN: return stream_find(ev, e->u.paren.expr, depth + 1);
    case PROMQL_NODE_AGGREGATE:
      if (fused_ok(ev, e, &c, &mi, &vs)) return e;
      return stream_find(ev, e->u.agg.expr, depth + 1);
    case PROMQL_NODE_CALL:
      if (has_range_arg(e)) {
        if (e->u.call.func->at_unsafe || promql__range_fn_id(e->u.call.func->name) == 0)
          return NULL;
        for (size_t i = 0; i < e->u.call.nargs; i++) {
          const promql_expr *a = unwrap(e->u.call.args[i]);
          if (a->kind != PROMQL_NODE_SUBQUERY || a->u.subquery.at != PROMQL_AT_NONE) continue;
          int64_t off = a->u.subquery.offset_ms, rng = a->u.subquery.range_ms;
          int64_t step = a->u.subquery.step_ms ? a->u.subquery.step_ms : ev->default_step;
          if (step <= 0) return NULL;
          promql__ev sub = *ev;
          sub.interval = step;
          int64_t lo = ev->start - off - rng;
          sub.start = step * (lo / step);
          if (sub.start < lo) sub.start += step;
          sub.end = ev->end - off;
          if ((x = stream_find(&sub, a->u.subquery.expr, depth + 1))) {
            *ev = sub;
            return x;
          }
          return NULL;
        }
        return NULL;
      }
      for (size_t i = 0; i < e->u.call.nargs; i++)
        if ((x = stream_find(ev, e->u.call.args[i], depth + 1))) return x;
      return NULL;
    default: return NULL;
  }
}

/* The fused evaluation's end, once every series is folded (by fz_run's
 * parts, or while loading): the sample count replayed, then the output
 * series gathered step by step. Group g's labels come from series rep[g] of
 * |m|, or are |replabels|[g]. Returns 0 or an error code. */
static int fz_finish(promql__ev *ev, const promql_expr *e, bool vs, size_t steps, int64_t orig,
                     const fz_job *j, const fz_part *parts, size_t nparts, size_t ng,
                     const msrc *m, const size_t *rep, const labels_set *replabels, val *out) {
  int rc = 0;
  size_t nser = m ? m->n : j->nser;
  if (!m && !replabels) return promql__ev_oom(ev);
  /* eval_call's (eval_vs's) sample count, replayed in series order. */
  for (size_t i = 0; i < nser; i++) {
    size_t maxwin = 0, nout = 0;
    for (size_t k = 0; k < nparts; k++) {
      if (parts[k].ser[i].maxwin > maxwin) maxwin = parts[k].ser[i].maxwin;
      nout += parts[k].ser[i].nout;
    }
    if (vs) {
      /* eval_vs adds each series' points once selected (its buffer's cap
       * fails no earlier: it is what the limit leaves, plus one). */
      if (nout && (rc = promql__ev_add_samples(ev, (int64_t)nout))) return rc;
      continue;
    }
    if (maxwin && ev->cur_samples + (int64_t)maxwin > ev->max_samples) {
      rc = promql__ev_add_samples(ev, (int64_t)maxwin);
      return rc;
    }
    if (!nout) continue;
    size_t lastw = parts[nparts - 1].lastw[i];
    if (ev->cur_samples + (int64_t)lastw + (int64_t)nout > ev->max_samples) {
      rc = promql__ev_add_samples(ev, (int64_t)lastw + (int64_t)nout);
      return rc;
    }
    ev->cur_samples += (int64_t)nout;
  }
  /* range_eval's steps: inputs, then outputs, gathered in first-seen order. */
  {
    int64_t temp = ev->cur_samples, total = 0;
    size_t *order = malloc((ng ? ng : 1) * sizeof(size_t));
    size_t *outidx = malloc((ng ? ng : 1) * sizeof(size_t));
    promql_point **pts = calloc(ng ? ng : 1, sizeof(*pts));
    if (!order || !outidx || !pts) {
      free(order);
      free(outidx);
      free(pts);
      rc = promql__ev_oom(ev);
      return rc;
    }
    for (size_t g = 0; g < ng; g++) outidx[g] = SIZE_MAX;
    int64_t ts = ev->start;
    for (size_t st = 0; st < steps && !rc; st++, ts += ev->interval) {
      if (temp + (int64_t)j->nin[st] > ev->max_samples) {
        rc = promql__ev_add_samples(ev, (int64_t)j->nin[st]);
        break;
      }
      size_t no = 0;
      for (size_t g = 0; g < ng; g++)
        if (j->rows[g][st].first != SIZE_MAX) order[no++] = g;
      /* Few groups: insertion sort by first member. */
      for (size_t x = 1; x < no; x++) {
        size_t g = order[x], y = x;
        while (y > 0 && j->rows[order[y - 1]][st].first > j->rows[g][st].first) {
          order[y] = order[y - 1];
          y--;
        }
        order[y] = g;
      }
      for (size_t x = 0; x < no; x++) {
        size_t g = order[x];
        if (outidx[g] == SIZE_MAX) {
          promql_series s;
          memset(&s, 0, sizeof(s));
          if (fz_group_labels(ev, e, replabels ? &replabels[g] : &m->s[rep[g]].labels, &s.labels) ||
              !(pts[g] = orr_arena_alloc(ev->a, steps * sizeof(promql_point))) ||
              mat_push(ev->a, &out->m, &s)) {
            rc = promql__ev_oom(ev);
            break;
          }
          out->m.s[out->m.n - 1].points = pts[g];
          outidx[g] = out->m.n - 1;
        }
        promql_series *s = &out->m.s[outidx[g]];
        s->points[s->npoints].t = ts;
        s->points[s->npoints].v = fz_value(e->u.agg.op, &j->rows[g][st]);
        s->npoints++;
      }
      if (rc) break;
      if (temp + (int64_t)j->nin[st] + (int64_t)no > ev->max_samples) {
        rc = promql__ev_add_samples(ev, 1 + ev->max_samples);
        break;
      }
      temp += (int64_t)no;
      total += (int64_t)no;
      if ((rc = promql__ev_check(ev))) break;
    }
    if (!rc) ev->cur_samples = orig + total;
    free(order);
    free(outidx);
    free(pts);
  }
  return rc;
}

/* 1: not fused (nothing done); 0 or an error code: done. */
static int eval_agg_fused(promql__ev *ev, const promql_expr *e, val *out) {
  const promql_expr *c;
  long mi;
  bool vs;
  size_t steps = nsteps(ev);
  fz_stream *fs = stream_of(ev, e);
  if (fs && (!fused_ok(ev, e, &c, &mi, &vs) || ev->start != fs->ev.start ||
             ev->end != fs->ev.end || ev->interval != fs->ev.interval))
    return promql__ev_errorf(ev, "internal: an aggregation folded while loading is evaluated "
                                 "at other steps");
  if (!fused_ok(ev, e, &c, &mi, &vs)) return 1;
  if (steps > PROMQL_MAX_POINTS_PER_SERIES + 1) return 1;
  msrc m;
  int rc;
  /* range_eval releases its arguments' samples at the end. */
  int64_t orig = ev->cur_samples;
  /* The other arguments are numbers: constant over the steps. */
  double *other[PROMQL_FUNC_MAX_ARGS + 1];
  double consts[PROMQL_FUNC_MAX_ARGS + 1];
  size_t na = vs ? 0 : c->u.call.nargs;
  for (size_t i = 0; i <= PROMQL_FUNC_MAX_ARGS; i++) other[i] = NULL;
  for (size_t i = 0; i < na && i <= PROMQL_FUNC_MAX_ARGS; i++) {
    if ((long)i == mi) continue;
    consts[i] = unwrap(c->u.call.args[i])->u.number.val;
  }
  /* Scalars as eval_call holds them: one value per step, counted while held. */
  for (size_t i = 0; i < na && i <= PROMQL_FUNC_MAX_ARGS; i++) {
    if ((long)i == mi) continue;
    if ((rc = promql__ev_add_samples(ev, (int64_t)steps))) return rc;
    other[i] = orr_arena_alloc(ev->a, (steps ? steps : 1) * sizeof(double));
    if (!other[i]) return promql__ev_oom(ev);
    for (size_t k = 0; k < steps; k++) other[i][k] = consts[i];
  }
  if (fs) {
    memset(&m, 0, sizeof(m));
    m.n = fs->n;
  } else if (vs) {
    memset(&m, 0, sizeof(m));
    m.offset = c->u.vs.offset_ms;
    sel_data *d = find_data(ev, c);
    if (d) {
      m.s = d->s;
      m.n = d->n;
    }
  } else if ((rc = eval_msrc(ev, c->u.call.args[mi], c->u.call.func->at_unsafe, &m))) {
    return rc;
  }
  memset(out, 0, sizeof(*out));
  out->type = PROMQL_TYPE_VECTOR;
  if (!m.n || !steps) return 0;
  if (fs) return fz_finish(ev, e, vs, steps, orig, &fs->job, &fs->part, 1, fs->ng, NULL, NULL,
                           fs->replabels, out);
  /* Groups, in series order (their index is only a slot: output order is
   * decided per step below). */
  size_t *grp = malloc(m.n * sizeof(size_t));
  size_t tcap = 64;
  while (tcap < m.n * 2) tcap *= 2;
  size_t *tab = malloc(tcap * sizeof(size_t));
  uint64_t *keys = malloc(m.n * sizeof(uint64_t));
  size_t *rep = malloc(m.n * sizeof(size_t)); /* a member of each group */
  fz_job j;
  memset(&j, 0, sizeof(j));
  fz_cell *cells = NULL;
  size_t nparts = 0;
  if (!grp || !tab || !keys || !rep) {
    rc = promql__ev_oom(ev);
    goto out;
  }
  for (size_t i = 0; i < tcap; i++) tab[i] = SIZE_MAX;
  size_t ng = 0;
  for (size_t i = 0; i < m.n; i++) {
    uint64_t key = promql__agg_key(e, &m.s[i].labels);
    size_t slot = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 11) & (tcap - 1);
    while (tab[slot] != SIZE_MAX && keys[tab[slot]] != key) slot = (slot + 1) & (tcap - 1);
    if (tab[slot] == SIZE_MAX) {
      keys[ng] = key;
      rep[ng] = i;
      tab[slot] = ng++;
    }
    grp[i] = tab[slot];
  }
  if (ng * steps > FUSED_MAX_CELLS) { /* the usual path, from the start */
    ev->cur_samples = orig;
    rc = 1;
    goto out;
  }
  j.ev = ev;
  j.m = &m;
  j.vs = vs;
  j.fid = vs ? 0 : promql__range_fn_id(c->u.call.func->name);
  j.slide = !vs && c->u.call.func->at_unsafe;
  j.other = other;
  j.na = na;
  j.steps = steps;
  j.ngroups = ng;
  j.op = e->u.agg.op;
  j.grp = grp;
  atomic_init(&j.stop, 0);
  nparts = (size_t)(ev->threads > 1 && m.n >= RANGE_PAR_MIN_SERIES ? ev->threads : 1);
  if (nparts > steps) nparts = steps;
  cells = malloc(ng * steps * sizeof(fz_cell));
  j.rows = malloc(ng * sizeof(*j.rows));
  j.nin = calloc(steps, sizeof(size_t));
  j.parts = calloc(nparts, sizeof(fz_part));
  if (!cells || !j.rows || !j.nin || !j.parts) {
    rc = promql__ev_oom(ev);
    goto out;
  }
  for (size_t x = 0; x < ng * steps; x++) cells[x].first = SIZE_MAX;
  for (size_t g = 0; g < ng; g++) j.rows[g] = cells + g * steps;
  for (size_t k = 0; k < nparts; k++) {
    j.parts[k].s0 = steps * k / nparts;
    j.parts[k].s1 = steps * (k + 1) / nparts;
    j.parts[k].ser = calloc(m.n, sizeof(rp_series));
    if (k == nparts - 1 && !vs) j.parts[k].lastw = calloc(m.n, sizeof(size_t));
    if (!j.parts[k].ser || (k == nparts - 1 && !vs && !j.parts[k].lastw)) {
      rc = promql__ev_oom(ev);
      goto out;
    }
  }
  promql__parallel(ev->threads, nparts, fz_run, &j);
  for (size_t k = 0; k < nparts; k++) {
    if (j.parts[k].rc == ORR_ENOMEM) {
      rc = promql__ev_oom(ev);
      goto out;
    }
    if (j.parts[k].rc) {
      ev->check_ctr = 255;
      if (!(rc = promql__ev_check(ev))) rc = promql__ev_errorf(ev, "query was interrupted");
      goto out;
    }
  }
  rc = fz_finish(ev, e, vs, steps, orig, &j, j.parts, nparts, ng, &m, rep, NULL, out);
out:
  for (size_t k = 0; j.parts && k < nparts; k++) {
    free(j.parts[k].ser);
    free(j.parts[k].lastw);
    free(j.parts[k].clean);
  }
  free(j.parts);
  free(cells);
  free(j.rows);
  free(j.nin);
  free(grp);
  free(tab);
  free(keys);
  free(rep);
  return rc;
}

static int eval_agg(promql__ev *ev, const promql_expr *e, val *out) {
  int frc = eval_agg_fused(ev, e, out);
  if (frc != 1) return frc;
  const promql_expr *ex[2] = {e->u.agg.param, e->u.agg.expr};
  int rc = range_eval(ev, agg_step, agg_prep, (void *)e, ex, 2, out);
  if (rc) return rc;
  struct promql_query *q = ev->q;
  if (e->u.agg.op == PROMQL_AGG_TOPK || e->u.agg.op == PROMQL_AGG_BOTTOMK) return 0;
  for (size_t i = 0; i < q->npartials; i++)
    if (q->partials[i].node == e) return merge_partials(ev, e, &q->partials[i].d, out);
  return 0;
}

/* ---------------------------------------------------------------- binary */
static uint64_t bin_prep(void *ctx, size_t argi, const labels_set *ls) {
  (void)argi;
  return promql__binop_sig(ctx, ls);
}

static int bin_step(promql__ev *ev, void *ctx, promql__vec *args, int64_t ts, promql__vec *out) {
  const promql_expr *e = ctx;
  (void)ts;
  promql_value_type lt = promql_expr_type(e->u.binary.lhs), rt = promql_expr_type(e->u.binary.rhs);
  if (lt == PROMQL_TYPE_SCALAR && rt == PROMQL_TYPE_SCALAR) {
    if (!args[0].n || !args[1].n) return 0;
    promql__sample s = {{NULL, 0}, promql__binop_ss(e->u.binary.op, args[0].s[0].v, args[1].s[0].v),
                        ts, 0};
    return promql__vec_push(ev->a, out, &s) ? promql__ev_oom(ev) : 0;
  }
  if (lt == PROMQL_TYPE_VECTOR && rt == PROMQL_TYPE_VECTOR)
    return promql__binop_vv(ev, e, &args[0], &args[1], out);
  if (lt == PROMQL_TYPE_VECTOR) {
    if (!args[1].n) return 0;
    return promql__binop_vs(ev, e->u.binary.op, &args[0], args[1].s[0].v, false,
                            e->u.binary.return_bool, out);
  }
  if (!args[0].n) return 0;
  return promql__binop_vs(ev, e->u.binary.op, &args[1], args[0].s[0].v, true,
                          e->u.binary.return_bool, out);
}

static int eval_binary(promql__ev *ev, const promql_expr *e, val *out) {
  const promql_expr *ex[2] = {e->u.binary.lhs, e->u.binary.rhs};
  int rc = range_eval(ev, bin_step, bin_prep, (void *)e, ex, 2, out);
  if (!rc && promql_expr_type(e) == PROMQL_TYPE_SCALAR) out->type = PROMQL_TYPE_SCALAR;
  return rc;
}

/* ---------------------------------------------------------------- step invariance
 * As Prometheus's preprocessExprHelper: which subtrees do not depend on the
 * step (selectors under @, literals), and where it wraps them. */
typedef struct ptrvec {
  const promql_expr **v;
  size_t n, cap;
  int oom;
} ptrvec;

static void pv_add(ptrvec *pv, const promql_expr *e) {
  if (pv->n == pv->cap) {
    size_t nc = pv->cap ? pv->cap * 2 : 8;
    const promql_expr **nv = realloc(pv->v, nc * sizeof(*nv));
    if (!nv) {
      pv->oom = 1;
      return;
    }
    pv->v = nv;
    pv->cap = nc;
  }
  pv->v[pv->n++] = e;
}

static bool invariant(const promql_expr *e, ptrvec *wraps) {
  switch (e->kind) {
    case PROMQL_NODE_VECTOR_SELECTOR: return e->u.vs.at != PROMQL_AT_NONE;
    case PROMQL_NODE_AGGREGATE: return invariant(e->u.agg.expr, wraps);
    case PROMQL_NODE_BINARY: {
      bool l = invariant(e->u.binary.lhs, wraps), r = invariant(e->u.binary.rhs, wraps);
      if (l && r) return true;
      if (l) pv_add(wraps, e->u.binary.lhs);
      if (r) pv_add(wraps, e->u.binary.rhs);
      return false;
    }
    case PROMQL_NODE_CALL: {
      size_t n = e->u.call.nargs;
      bool all = !e->u.call.func->at_unsafe;
      bool *each = calloc(n ? n : 1, sizeof(bool));
      if (!each) {
        wraps->oom = 1;
        return false;
      }
      for (size_t i = 0; i < n; i++) {
        each[i] = invariant(e->u.call.args[i], wraps);
        all = all && each[i];
      }
      if (!all)
        for (size_t i = 0; i < n; i++)
          if (each[i]) pv_add(wraps, e->u.call.args[i]);
      free(each);
      return all;
    }
    case PROMQL_NODE_MATRIX_SELECTOR: return invariant(e->u.ms.vs, wraps);
    case PROMQL_NODE_SUBQUERY:
      if (invariant(e->u.subquery.expr, wraps)) pv_add(wraps, e->u.subquery.expr);
      return e->u.subquery.at != PROMQL_AT_NONE;
    case PROMQL_NODE_PAREN:
    case PROMQL_NODE_STEP_INVARIANT:
    case PROMQL_NODE_UNARY: return invariant(e->kind == PROMQL_NODE_UNARY ? e->u.unary.expr : e->u.paren.expr, wraps);
    case PROMQL_NODE_STRING:
    case PROMQL_NODE_NUMBER: return true;
  }
  return false;
}

static int ptr_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (const promql_expr *const *)a, y = (uintptr_t) * (const promql_expr *const *)b;
  return x < y ? -1 : x > y;
}

static bool is_wrapped(const promql__ev *ev, const promql_expr *e) {
  size_t lo = 0, hi = ev->ninv;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if ((uintptr_t)ev->inv[m] < (uintptr_t)e)
      lo = m + 1;
    else
      hi = m;
  }
  return lo < ev->ninv && ev->inv[lo] == e;
}

/* A wrapped subtree in a range evaluation: once at the start, then the
 * value repeated at every step (counted as Prometheus counts it). */
static int eval_invariant(promql__ev *ev, const promql_expr *e, val *out) {
  promql__ev sub = *ev;
  sub.end = sub.start;
  int rc = eval(&sub, e, out);
  ev->cur_samples = sub.cur_samples;
  ev->check_ctr = sub.check_ctr;
  if (rc || out->type == PROMQL_TYPE_STRING) return rc;
  size_t steps = nsteps(ev);
  for (size_t i = 0; i < out->m.n; i++) {
    promql_series *s = &out->m.s[i];
    if (s->npoints != 1) continue;
    /* The limit first: 1y:1ms is 3e10 steps, a 422 and not an allocation
     * failure (Prometheus counts each step as it goes). */
    if (steps > 1 && (rc = promql__ev_add_samples(ev, (int64_t)(steps - 1)))) return rc;
    promql_point *np = orr_arena_alloc(ev->a, steps * sizeof(*np));
    if (!np) return promql__ev_oom(ev);
    int64_t ts = ev->start;
    for (size_t k = 0; k < steps; k++, ts += ev->interval) {
      np[k].t = ts;
      np[k].v = s->points[0].v;
    }
    s->points = np;
    s->npoints = steps;
  }
  return 0;
}

/* ---------------------------------------------------------------- eval */
static int eval(promql__ev *ev, const promql_expr *e, val *out) {
  int rc;
  memset(out, 0, sizeof(*out));
  if ((rc = promql__ev_check(ev))) return rc;
  if (ev->start != ev->end && e->kind != PROMQL_NODE_NUMBER && e->kind != PROMQL_NODE_STRING &&
      ev->ninv && is_wrapped(ev, e))
    return eval_invariant(ev, e, out);
  switch (e->kind) {
    case PROMQL_NODE_PAREN:
    case PROMQL_NODE_STEP_INVARIANT: return eval(ev, e->u.paren.expr, out);
    case PROMQL_NODE_NUMBER: return scalar_val(ev, e->u.number.val, out);
    case PROMQL_NODE_STRING:
      out->type = PROMQL_TYPE_STRING;
      out->str = e->u.string.val;
      out->strlen = e->u.string.len;
      return 0;
    case PROMQL_NODE_VECTOR_SELECTOR: return eval_vs(ev, e, false, out);
    case PROMQL_NODE_CALL:
      if ((rc = eval_call(ev, e, out))) return rc;
      out->type = promql_expr_type(e);
      return 0;
    case PROMQL_NODE_AGGREGATE: return eval_agg(ev, e, out);
    case PROMQL_NODE_BINARY: return eval_binary(ev, e, out);
    case PROMQL_NODE_UNARY:
      if ((rc = eval(ev, e->u.unary.expr, out))) return rc;
      if (e->u.unary.op == PROMQL_OP_SUB) {
        for (size_t i = 0; i < out->m.n; i++) {
          promql_series *s = &out->m.s[i];
          if (promql__drop_name(ev->a, &s->labels, &s->labels)) return promql__ev_oom(ev);
          /* Points may be shared with the selector data: copy before negating. */
          promql_point *np = orr_arena_alloc(ev->a, (s->npoints ? s->npoints : 1) * sizeof(*np));
          if (!np) return promql__ev_oom(ev);
          for (size_t k = 0; k < s->npoints; k++) {
            np[k].t = s->points[k].t;
            np[k].v = -s->points[k].v;
          }
          s->points = np;
        }
        if (out->type == PROMQL_TYPE_VECTOR && (rc = check_dups(ev, &out->m))) return rc;
      }
      return 0;
    case PROMQL_NODE_MATRIX_SELECTOR:
    case PROMQL_NODE_SUBQUERY:
      return promql__ev_errorf(ev, "range vector cannot be evaluated as an instant value");
  }
  return promql__ev_errorf(ev, "unknown expression");
}

/* ---------------------------------------------------------------- API */
int promql_query_new(orr_arena *a, const char *q, size_t n, const promql_query_params *p,
                     promql_query **out, promql_errinfo *err) {
  if (err) {
    err->type = PROMQL_ERR_NONE;
    err->msg[0] = 0;
  }
  promql_query *qq = orr_arena_calloc(a, 1, sizeof(*qq));
  if (!qq) return ORR_ENOMEM;
  qq->a = a;
  qq->p = *p;
  if (!qq->p.lookback_ms) qq->p.lookback_ms = PROMQL_DEFAULT_LOOKBACK_MS;
  if (!qq->p.max_samples) qq->p.max_samples = PROMQL_DEFAULT_MAX_SAMPLES;
  if (!qq->p.timeout_ms) qq->p.timeout_ms = PROMQL_DEFAULT_TIMEOUT_MS;
  if (!qq->p.default_subquery_step_ms) qq->p.default_subquery_step_ms = PROMQL_DEFAULT_SUBQUERY_STEP_MS;
  if (!qq->p.range) {
    qq->p.end_ms = qq->p.start_ms;
    qq->p.step_ms = 0;
  }
  promql_error perr;
  int rc = promql_parse(a, q, n, &qq->ast, &perr);
  if (rc) {
    if (rc == ORR_EINVAL)
      set_err(err, PROMQL_ERR_BAD_DATA, perr.msg);
    else
      set_err(err, PROMQL_ERR_INTERNAL, "out of memory");
    return rc;
  }
  qq->root = promql_ast_root(qq->ast);
  if (pthread_mutex_init(&qq->mu, NULL) != 0) {
    rc = ORR_ENOMEM;
    goto fail;
  }
  qq->mu_init = true;
  promql_select_params sp = {qq->p.start_ms, qq->p.end_ms, qq->p.step_ms, qq->p.lookback_ms,
                             qq->p.default_subquery_step_ms};
  if ((rc = promql_selectors(a, qq->root, &sp, &qq->sels, &qq->nsels))) goto fail;
  qq->data = orr_arena_calloc(a, qq->nsels ? qq->nsels : 1, sizeof(sel_data));
  if (!qq->data) {
    rc = ORR_ENOMEM;
    goto fail;
  }
  *out = qq;
  return 0;
fail:
  set_err(err, PROMQL_ERR_INTERNAL, "out of memory");
  if (qq->mu_init) pthread_mutex_destroy(&qq->mu);
  promql_ast_free(qq->ast);
  return rc;
}

void promql_query_free(promql_query *q) {
  if (!q) return;
  stream_free(q->stream);
  q->stream = NULL;
  promql_ast_free(q->ast);
  q->ast = NULL;
  if (q->mu_init) pthread_mutex_destroy(&q->mu);
  q->mu_init = false;
}

const promql_selector *promql_query_selectors(const promql_query *q, size_t *n) {
  *n = q->nsels;
  return q->sels;
}

const promql_expr *promql_query_expr(const promql_query *q) { return q->root; }

/* Room for |n| fed points, from the query's arena. A query that loads
 * much (a 55k-series selection is 160 MB of points) takes it in slabs
 * aligned to 2 MiB and marked for transparent huge pages: memory touched
 * for the first time costs a page fault per 4 KiB page otherwise, several
 * microseconds each in a VM — as long as the copying itself. The slab's
 * unaligned head is never touched, so costs address space only. */
#define FEED_SLAB_AFTER ((size_t)8 << 20)
#define FEED_SLAB ((size_t)8 << 20)
#define FEED_HUGE ((uintptr_t)2 << 20)

static promql_point *points_alloc(promql_query *q, size_t n) {
  size_t bytes = (n ? n : 1) * sizeof(promql_point);
  q->fed += bytes;
  if (q->fed < FEED_SLAB_AFTER || bytes > FEED_SLAB / 4) return orr_arena_alloc(q->a, bytes);
  if (q->slab_left < bytes) {
    char *raw = orr_arena_alloc(q->a, FEED_SLAB + FEED_HUGE);
    if (!raw) return NULL;
    q->slab = (char *)(((uintptr_t)raw + FEED_HUGE - 1) & ~(FEED_HUGE - 1));
    q->slab_left = FEED_SLAB;
#ifdef MADV_HUGEPAGE
    (void)madvise(q->slab, FEED_SLAB, MADV_HUGEPAGE); /* advice: failing changes nothing */
#endif
  }
  promql_point *p = (promql_point *)(void *)q->slab;
  q->slab += bytes;
  q->slab_left -= bytes;
  return p;
}

/* Appends a copy (in the query's arena) of one series to |d|. */
static int sel_data_push(promql_query *q, sel_data *d, const labels_set *ls,
                         const promql_point *pts, size_t npts) {
  promql_series s;
  if (labels_copy(q->a, ls, &s.labels)) return ORR_ENOMEM;
  s.points = points_alloc(q, npts);
  if (!s.points) return ORR_ENOMEM;
  if (npts) memcpy(s.points, pts, npts * sizeof(promql_point));
  s.npoints = npts;
  if (d->n == d->cap) {
    size_t nc = d->cap ? d->cap * 2 : 16;
    promql_series *ns = orr_arena_alloc(q->a, nc * sizeof(*ns));
    if (!ns) return ORR_ENOMEM;
    if (d->n) memcpy(ns, d->s, d->n * sizeof(*ns));
    d->s = ns;
    d->cap = nc;
  }
  d->s[d->n++] = s;
  return 0;
}

static int add_series_locked(promql_query *q, size_t sel, const labels_set *ls,
                             const promql_point *pts, size_t npts) {
  if (q->stream && q->stream->sel == sel) return stream_add(q, ls, pts, npts);
  return sel_data_push(q, &q->data[sel], ls, pts, npts);
}

static int add_partial_locked(promql_query *q, const promql_expr *agg, const labels_set *ls,
                              const promql_point *pts, size_t npts) {
  struct partial *p = NULL;
  for (size_t i = 0; i < q->npartials && !p; i++)
    if (q->partials[i].node == agg) p = &q->partials[i];
  if (!p) {
    if (q->npartials == q->cappartials) {
      size_t nc = q->cappartials ? q->cappartials * 2 : 4;
      struct partial *np = orr_arena_calloc(q->a, nc, sizeof(*np));
      if (!np) return ORR_ENOMEM;
      if (q->npartials) memcpy(np, q->partials, q->npartials * sizeof(*np));
      q->partials = np;
      q->cappartials = nc;
    }
    p = &q->partials[q->npartials++];
    p->node = agg;
  }
  return sel_data_push(q, &p->d, ls, pts, npts);
}

int promql_query_add_partial(promql_query *q, const promql_expr *agg, const labels_set *ls,
                             const promql_point *pts, size_t npts) {
  if (!promql_aggregate_mergeable(agg)) return ORR_EINVAL;
  for (size_t i = 1; i < npts; i++)
    if (pts[i].t <= pts[i - 1].t) return ORR_EINVAL;
  pthread_mutex_lock(&q->mu);
  int rc = add_partial_locked(q, agg, ls, pts, npts);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

int promql_query_add_series(promql_query *q, size_t sel, const labels_set *ls,
                            const promql_point *pts, size_t npts) {
  if (sel >= q->nsels) return ORR_EINVAL;
  pthread_mutex_lock(&q->mu);
  int rc = add_series_locked(q, sel, ls, pts, npts);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

static int add_warning_locked(promql_query *q, const char *msg) {
  if (q->nwarn == q->capwarn) {
    size_t nc = q->capwarn ? q->capwarn * 2 : 4;
    const char **nw = orr_arena_alloc(q->a, nc * sizeof(*nw));
    if (!nw) return ORR_ENOMEM;
    if (q->nwarn) memcpy(nw, q->warnings, q->nwarn * sizeof(*nw));
    q->warnings = nw;
    q->capwarn = nc;
  }
  const char *c = orr_arena_strdup(q->a, msg);
  if (!c) return ORR_ENOMEM;
  q->warnings[q->nwarn++] = c;
  return 0;
}

int promql_query_add_warning(promql_query *q, const char *msg) {
  pthread_mutex_lock(&q->mu);
  int rc = add_warning_locked(q, msg);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

static int series_cmp(const void *a, const void *b) {
  const promql_series *x = a, *y = b;
  return labels_cmp(&x->labels, &y->labels);
}

static int pt_cmp(const void *a, const void *b) {
  const promql_point *x = a, *y = b;
  return x->t < y->t ? -1 : x->t > y->t;
}

/* Sorts a selector's series by labels and merges equal ones (samples of
 * both, one per timestamp), as a merging querier over blocks does. */
/* Sorts |d| by labels by merging its ascending runs (natural merge sort,
 * stable). Each block's series come in index order, which is label order,
 * so a selection over k blocks is k runs: k - 1 linear merges instead of
 * qsort's full sort (a tenth of a 57k-series query's time). */
static int sort_runs(sel_data *d) {
  size_t nruns = 1;
  for (size_t i = 1; i < d->n; i++)
    if (series_cmp(&d->s[i - 1], &d->s[i]) > 0) nruns++;
  if (nruns == 1) return 0;
  if (nruns > 64) {
    qsort(d->s, d->n, sizeof(*d->s), series_cmp);
    return 0;
  }
  promql_series *tmp = malloc(d->n * sizeof(*tmp));
  if (!tmp) return ORR_ENOMEM;
  while (nruns > 1) {
    size_t i = 0, w = 0;
    nruns = 0;
    while (i < d->n) {
      size_t a0 = i, a1 = i + 1;
      while (a1 < d->n && series_cmp(&d->s[a1 - 1], &d->s[a1]) <= 0) a1++;
      size_t b1 = a1;
      if (b1 < d->n) {
        b1++;
        while (b1 < d->n && series_cmp(&d->s[b1 - 1], &d->s[b1]) <= 0) b1++;
      }
      size_t x = a0, y = a1;
      while (x < a1 || y < b1) {
        if (y == b1 || (x < a1 && series_cmp(&d->s[x], &d->s[y]) <= 0))
          tmp[w++] = d->s[x++];
        else
          tmp[w++] = d->s[y++];
      }
      nruns++;
      i = b1;
    }
    memcpy(d->s, tmp, d->n * sizeof(*tmp));
  }
  free(tmp);
  return 0;
}

static int prepare_data(orr_arena *a, sel_data *d) {
  if (d->n < 2) return 0;
  if (sort_runs(d)) return ORR_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < d->n; i++) {
    if (k && labels_equal(&d->s[k - 1].labels, &d->s[i].labels)) {
      promql_series *m = &d->s[k - 1];
      size_t tot = m->npoints + d->s[i].npoints;
      promql_point *np = orr_arena_alloc(a, (tot ? tot : 1) * sizeof(*np));
      if (!np) return ORR_ENOMEM;
      memcpy(np, m->points, m->npoints * sizeof(*np));
      memcpy(np + m->npoints, d->s[i].points, d->s[i].npoints * sizeof(*np));
      /* Blocks in time order: the second part starts after the first ends. */
      if (m->npoints && d->s[i].npoints && m->points[m->npoints - 1].t >= d->s[i].points[0].t)
        qsort(np, tot, sizeof(*np), pt_cmp);
      size_t w = 0;
      for (size_t j = 0; j < tot; j++)
        if (!w || np[w - 1].t != np[j].t) np[w++] = np[j];
      m->points = np;
      m->npoints = w;
      continue;
    }
    d->s[k++] = d->s[i];
  }
  d->n = k;
  return 0;
}

static int query_exec(promql_query *q, promql_result *res, promql_errinfo *err,
                      promql__agg_scratch *agg) {
  promql_errinfo local;
  if (!err) err = &local;
  err->type = PROMQL_ERR_NONE;
  err->msg[0] = 0;
  memset(res, 0, sizeof(*res));
  for (size_t i = 0; i < q->nsels; i++)
    if (prepare_data(q->a, &q->data[i])) {
      set_err(err, PROMQL_ERR_INTERNAL, "out of memory");
      return ORR_ENOMEM;
    }
  promql__ev ev;
  memset(&ev, 0, sizeof(ev));
  ev.a = q->a;
  ev.start = q->p.start_ms;
  ev.end = q->p.end_ms;
  ev.interval = q->p.range ? q->p.step_ms : 1;
  if (ev.interval <= 0) ev.interval = 1;
  ev.qstart = q->p.start_ms;
  ev.qend = q->p.end_ms;
  ev.lookback = q->p.lookback_ms;
  ev.max_samples = q->p.max_samples;
  ev.default_step = q->p.default_subquery_step_ms;
  ev.cancel = q->p.cancel;
  if (q->p.timeout_ms > 0) ev.deadline_ns = orr_mono_ns() + (uint64_t)q->p.timeout_ms * 1000000ULL;
  ev.q = q;
  ev.err = err;
  ev.check_ctr = 255; /* check at once */
  ev.agg = agg;
  ev.threads = promql__threads(q->p.parallelism);
  ptrvec wraps = {NULL, 0, 0, 0};
  if (invariant(q->root, &wraps)) pv_add(&wraps, q->root);
  if (wraps.oom) {
    free(wraps.v);
    set_err(err, PROMQL_ERR_INTERNAL, "out of memory");
    return ORR_ENOMEM;
  }
  if (wraps.n) {
    ev.inv = orr_arena_alloc(q->a, wraps.n * sizeof(*ev.inv));
    if (!ev.inv) {
      free(wraps.v);
      set_err(err, PROMQL_ERR_INTERNAL, "out of memory");
      return ORR_ENOMEM;
    }
    memcpy(ev.inv, wraps.v, wraps.n * sizeof(*ev.inv));
    qsort(ev.inv, wraps.n, sizeof(*ev.inv), ptr_cmp);
    ev.ninv = wraps.n;
  }
  free(wraps.v);
  int rc;
  promql_value_type t = promql_expr_type(q->root);
  if (q->p.range && q->p.step_ms <= 0) {
    /* A step below 1ms passes the API's checks and divides by zero in
     * Prometheus's evaluator; it answers with the recovered panic. */
    set_err(err, PROMQL_ERR_EXECUTION, "unexpected error: runtime error: integer divide by zero");
    return ORR_EINVAL;
  }
  res->warnings = q->warnings;
  res->nwarnings = q->nwarn;
  res->range = q->p.range;
  res->t = q->p.start_ms;
  if (q->p.range && (t != PROMQL_TYPE_SCALAR && t != PROMQL_TYPE_VECTOR)) {
    set_err(err, PROMQL_ERR_BAD_DATA, "");
    snprintf(err->msg, sizeof(err->msg),
             "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
             promql_value_type_doc(t));
    return ORR_EINVAL;
  }
  if (t == PROMQL_TYPE_MATRIX) {
    promql__mat m;
    if ((rc = eval_matrix_top(&ev, q->root, &m))) goto fail;
    if (m.n > 1) qsort(m.s, m.n, sizeof(*m.s), series_cmp);
    res->type = PROMQL_TYPE_MATRIX;
    res->series = m.s;
    res->nseries = m.n;
    return 0;
  }
  val v;
  if ((rc = eval(&ev, q->root, &v))) goto fail;
  if (t == PROMQL_TYPE_STRING) {
    res->type = PROMQL_TYPE_STRING;
    char *s = orr_arena_strndup(q->a, v.str ? v.str : "", v.strlen);
    if (!s) goto oom;
    res->str = s;
    res->strlen = v.strlen;
    return 0;
  }
  if (q->p.range) {
    if (v.m.n > 1) qsort(v.m.s, v.m.n, sizeof(*v.m.s), series_cmp);
    res->type = PROMQL_TYPE_MATRIX;
    res->series = v.m.s;
    res->nseries = v.m.n;
    return 0;
  }
  if (t == PROMQL_TYPE_SCALAR) {
    res->type = PROMQL_TYPE_SCALAR;
    res->scalar = v.m.n && v.m.s[0].npoints ? v.m.s[0].points[0].v : NAN;
    return 0;
  }
  res->type = PROMQL_TYPE_VECTOR;
  res->series = v.m.s;
  res->nseries = v.m.n;
  for (size_t i = 0; i < v.m.n; i++) {
    /* One point, at the evaluation time. */
    promql_point *p = orr_arena_alloc(q->a, sizeof(*p));
    if (!p) goto oom;
    p->t = q->p.start_ms;
    p->v = v.m.s[i].points[0].v;
    v.m.s[i].points = p;
    v.m.s[i].npoints = 1;
  }
  return 0;
oom:
  set_err(err, PROMQL_ERR_INTERNAL, "out of memory");
  return ORR_ENOMEM;
fail:
  if (err->type == PROMQL_ERR_NONE) set_err(err, PROMQL_ERR_INTERNAL, orr_strerror(rc));
  return rc;
}

int promql_query_exec(promql_query *q, promql_result *res, promql_errinfo *err) {
  promql__agg_scratch agg;
  memset(&agg, 0, sizeof(agg));
  int rc = query_exec(q, res, err, &agg);
  promql__agg_scratch_free(&agg);
  return rc;
}

/* Sets q->stream when the query has an aggregation to fold while loading;
 * 0 or ORR_ENOMEM (nothing streamed is not an error). */
static int stream_setup(promql_query *q) {
  if (promql__fusion_off || q->npartials || (q->p.range && q->p.step_ms <= 0)) return 0;
  /* Step-invariant literals (histogram_quantile's 0.9) are evaluated once
   * and repeated: nothing else may be wrapped, as a wrapped subtree is
   * evaluated at one step. */
  ptrvec wraps = {NULL, 0, 0, 0};
  bool any = invariant(q->root, &wraps) || wraps.oom;
  for (size_t i = 0; i < wraps.n && !any; i++) {
    const promql_expr *w = unwrap(wraps.v[i]);
    any = w->kind != PROMQL_NODE_NUMBER && w->kind != PROMQL_NODE_STRING;
  }
  if (any) {
    free(wraps.v);
    return 0;
  }
  /* fused_ok as the evaluation will ask it, with the same wrapped nodes. */
  if (wraps.n > 1) qsort(wraps.v, wraps.n, sizeof(*wraps.v), ptr_cmp);
  promql__ev ev;
  memset(&ev, 0, sizeof(ev));
  ev.inv = wraps.v;
  ev.ninv = wraps.n;
  ev.a = q->a;
  ev.q = q;
  ev.start = q->p.start_ms;
  ev.end = q->p.end_ms;
  if (!q->p.range) ev.end = ev.start;
  ev.interval = q->p.range ? q->p.step_ms : 1;
  ev.lookback = q->p.lookback_ms;
  ev.max_samples = q->p.max_samples;
  ev.default_step = q->p.default_subquery_step_ms;
  const promql_expr *agg = stream_find(&ev, q->root, 0);
  const promql_expr *c;
  long mi;
  bool vs;
  bool ok = agg && fused_ok(&ev, agg, &c, &mi, &vs);
  ev.inv = NULL;
  ev.ninv = 0;
  free(wraps.v);
  if (!ok) return 0;
  size_t steps = nsteps(&ev);
  if (!steps || steps > PROMQL_MAX_POINTS_PER_SERIES + 1) return 0;
  const promql_expr *sel = vs ? c : unwrap(c->u.call.args[mi])->u.ms.vs;
  if (sel->u.vs.at != PROMQL_AT_NONE) return 0;
  size_t si = SIZE_MAX;
  for (size_t i = 0; i < q->nsels; i++)
    if (q->sels[i].node == sel) si = i;
  if (si == SIZE_MAX) return 0;
  fz_stream *fs = calloc(1, sizeof(*fs));
  if (!fs || !(fs->prev_a = orr_arena_new(0))) {
    free(fs);
    return ORR_ENOMEM;
  }
  fs->agg = agg;
  fs->sel = si;
  fs->ev = ev;
  fs->m.offset = sel->u.vs.offset_ms;
  if (!vs) fs->m.range = unwrap(c->u.call.args[mi])->u.ms.range_ms;
  size_t na = vs ? 0 : c->u.call.nargs;
  for (size_t i = 0; i < na && i <= PROMQL_FUNC_MAX_ARGS; i++) {
    if ((long)i == mi) continue;
    double v = unwrap(c->u.call.args[i])->u.number.val;
    if (!(fs->other[i] = orr_arena_alloc(q->a, steps * sizeof(double)))) {
      stream_free(fs);
      return ORR_ENOMEM;
    }
    for (size_t k = 0; k < steps; k++) fs->other[i][k] = v;
  }
  fz_job *j = &fs->job;
  j->ev = &fs->ev;
  j->m = &fs->m;
  j->vs = vs;
  j->fid = vs ? 0 : promql__range_fn_id(c->u.call.func->name);
  j->slide = !vs && c->u.call.func->at_unsafe;
  j->other = fs->other;
  j->na = na;
  j->steps = steps;
  j->op = agg->u.agg.op;
  fs->part.s0 = 0;
  fs->part.s1 = steps;
  if (!(j->nin = calloc(steps, sizeof(size_t)))) {
    stream_free(fs);
    return ORR_ENOMEM;
  }
  q->stream = fs;
  return 0;
}

typedef struct emit_ctx {
  promql_query *q;
  size_t sel;
} emit_ctx;

static int emit_cb(void *arg, const labels_set *ls, const promql_point *pts, size_t n) {
  emit_ctx *c = arg;
  return promql_query_add_series(c->q, c->sel, ls, pts, n);
}

/* One selector's select (promql_eval): its outcome, kept per selector so
 * that the first failing selector in evaluation order is reported, however
 * the selections were scheduled. */
typedef struct sel_job {
  promql_query *q;
  const promql_storage *st;
  int rc;
  bool skipped; /* not started: another selection had failed */
  char msg[512];
} sel_job;

typedef struct sel_jobs {
  sel_job *v;
  atomic_bool failed; /* stop starting selections */
} sel_jobs;

static void select_one(sel_job *j, size_t i) {
  emit_ctx c = {j->q, i};
  j->msg[0] = 0;
  j->rc = j->st->select(j->st->ctx, &j->q->sels[i], emit_cb, &c, j->msg, sizeof(j->msg));
}

static void select_run(void *arg, size_t i) {
  sel_jobs *js = arg;
  if (atomic_load(&js->failed)) {
    /* The failure may be a later selector's (threads take selectors in
     * order but may start them out of it): promql_eval selects a skipped
     * one itself if no selector before it failed. */
    js->v[i].skipped = true;
    return;
  }
  select_one(&js->v[i], i);
  if (js->v[i].rc) atomic_store(&js->failed, true);
}

int promql_eval(orr_arena *a, const char *q, size_t n, const promql_query_params *p,
                const promql_storage *st, promql_result *res, promql_errinfo *err) {
  promql_query *qq;
  int rc = promql_query_new(a, q, n, p, &qq, err);
  if (rc) return rc;
  if (st->ordered && (rc = stream_setup(qq))) {
    set_err(err, PROMQL_ERR_INTERNAL, "out of memory");
    promql_query_free(qq);
    return rc;
  }
  sel_jobs js = {calloc(qq->nsels ? qq->nsels : 1, sizeof(sel_job)), false};
  if (!js.v) {
    set_err(err, PROMQL_ERR_INTERNAL, "out of memory");
    promql_query_free(qq);
    return ORR_ENOMEM;
  }
  for (size_t i = 0; i < qq->nsels; i++) js.v[i] = (sel_job){.q = qq, .st = st};
  /* Independent selectors are selected side by side when the storage
   * allows it (each selector's series still come from one thread, in the
   * storage's order; the query's lock serialises the feeding). */
  int threads = st->concurrent && qq->nsels > 1 ? promql__threads(p->parallelism) : 1;
  promql__parallel(threads, qq->nsels, select_run, &js);
  for (size_t i = 0; i < qq->nsels && !rc; i++) {
    sel_job *j = &js.v[i];
    if (j->skipped) select_one(j, i); /* every other selection is over */
    if (!j->rc && qq->stream && qq->stream->sel == i && qq->stream->failed) {
      /* Not foldable while loading: selected again, kept as usual (every
       * other selection is over). */
      stream_free(qq->stream);
      qq->stream = NULL;
      select_one(j, i);
    }
    if ((rc = j->rc))
      set_err(err, PROMQL_ERR_INTERNAL, j->msg[0] ? j->msg : orr_strerror(rc));
  }
  free(js.v);
  if (rc) {
    promql_query_free(qq);
    return rc;
  }
  rc = promql_query_exec(qq, res, err);
  promql_query_free(qq);
  return rc;
}

int promql_check_range_params(int64_t start_ms, int64_t end_ms, int64_t step_ms,
                              promql_errinfo *err) {
  if (end_ms < start_ms) {
    set_err(err, PROMQL_ERR_BAD_DATA,
            "invalid parameter \"end\": end timestamp must not be before start time");
    return ORR_EINVAL;
  }
  if (step_ms <= 0) {
    set_err(err, PROMQL_ERR_BAD_DATA,
            "invalid parameter \"step\": zero or negative query resolution step widths are not "
            "accepted. Try a positive integer");
    return ORR_EINVAL;
  }
  /* The API compares durations: (end - start) / step in whole steps. */
  if ((end_ms - start_ms) / step_ms > PROMQL_MAX_POINTS_PER_SERIES) {
    set_err(err, PROMQL_ERR_BAD_DATA,
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
            "resolution (?step=XX)");
    return ORR_EINVAL;
  }
  return 0;
}
