/* selectors.c: lists the vector and matrix selectors of a query with the
 * exact time range of samples each one needs, as Prometheus 2.42's engine
 * computes it before selecting (getTimeRangesForSelector, populateSeries's
 * SelectHints), so that data can be fetched before an I/O-free evaluation. */
#include <string.h>

#include "promql_int.h"

typedef struct walker {
  orr_arena *arena;
  const promql_select_params *p;
  const promql_expr **path; /* ancestors of the node being visited, root first */
  size_t depth;
  promql_selector *v;
  size_t n, cap;
  int rc;
} walker;

/* int64 arithmetic that wraps as Go's does (timestamps from @ may sit at
 * the ends of the range). */
static int64_t wsub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t wadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

static int64_t resolve_at(const promql_select_params *p, promql_at at, int64_t at_ms) {
  if (at == PROMQL_AT_START) return p->start_ms;
  if (at == PROMQL_AT_END) return p->end_ms;
  return at_ms;
}

static void add_selector(walker *w, const promql_expr *vs, int64_t eval_range) {
  const promql_select_params *p = w->p;
  promql_selector s;
  memset(&s, 0, sizeof(s));
  s.node = vs;
  s.matchers = vs->u.vs.matchers;
  s.nmatchers = vs->u.vs.nmatchers;
  s.offset_ms = vs->u.vs.offset_ms;
  s.at = vs->u.vs.at;
  s.at_ms = resolve_at(p, vs->u.vs.at, vs->u.vs.at_ms);
  s.range_ms = eval_range;

  /* Offsets and ranges of the enclosing subqueries add up; an @ on a
   * subquery restarts the sum from that subquery (subqueryTimes). */
  int64_t subq_offset = 0, subq_range = 0, step = 0;
  bool subq_ts_set = false;
  int64_t subq_ts = 0;
  for (size_t i = 0; i < w->depth; i++) {
    const promql_expr *n = w->path[i];
    if (n->kind != PROMQL_NODE_SUBQUERY) continue;
    subq_offset = wadd(subq_offset, n->u.subquery.offset_ms);
    subq_range = wadd(subq_range, n->u.subquery.range_ms);
    if (n->u.subquery.at != PROMQL_AT_NONE) {
      subq_offset = n->u.subquery.offset_ms;
      subq_range = n->u.subquery.range_ms;
      subq_ts = resolve_at(p, n->u.subquery.at, n->u.subquery.at_ms);
      subq_ts_set = true;
    }
    step = n->u.subquery.step_ms ? n->u.subquery.step_ms : p->default_subquery_step_ms;
  }
  int64_t start = p->start_ms, end = p->end_ms;
  if (subq_ts_set) start = end = subq_ts;
  if (s.at != PROMQL_AT_NONE) {
    start = end = s.at_ms;
  } else {
    start = wsub(wsub(start, subq_offset), subq_range);
    end = wsub(end, subq_offset);
  }
  start = wsub(start, eval_range == 0 ? p->lookback_ms : eval_range);
  s.start_ms = wsub(start, s.offset_ms);
  s.end_ms = wsub(end, s.offset_ms);
  s.step_ms = step ? step : p->step_ms;

  /* The function or aggregation right above, through anything but a binary
   * operator (extractFuncFromPath); grouping only from the direct parent. */
  for (size_t i = w->depth; i > 0; i--) {
    const promql_expr *n = w->path[i - 1];
    if (n->kind == PROMQL_NODE_AGGREGATE) {
      s.func = promql_aggop_str(n->u.agg.op);
      break;
    }
    if (n->kind == PROMQL_NODE_CALL) {
      s.func = n->u.call.func->name;
      break;
    }
    if (n->kind == PROMQL_NODE_BINARY) break;
  }
  if (w->depth > 0 && w->path[w->depth - 1]->kind == PROMQL_NODE_AGGREGATE) {
    const promql_expr *a = w->path[w->depth - 1];
    s.by = !a->u.agg.without;
    s.grouping = a->u.agg.grouping;
    s.ngrouping = a->u.agg.ngrouping;
  }

  if (w->n == w->cap) {
    size_t nc = w->cap ? w->cap * 2 : 8;
    promql_selector *nv = orr_arena_calloc(w->arena, nc, sizeof(*nv));
    if (!nv) {
      w->rc = ORR_ENOMEM;
      return;
    }
    if (w->n) memcpy(nv, w->v, w->n * sizeof(*nv));
    w->v = nv;
    w->cap = nc;
  }
  w->v[w->n++] = s;
}

static void walk(walker *w, const promql_expr *e) {
  if (w->rc || !e) return;
  if (e->kind == PROMQL_NODE_VECTOR_SELECTOR) {
    add_selector(w, e, 0);
    return;
  }
  if (w->depth >= 2 * PROMQL_MAX_DEPTH + 8) {
    w->rc = ORR_ELIMIT;
    return;
  }
  w->path[w->depth++] = e;
  switch (e->kind) {
    case PROMQL_NODE_MATRIX_SELECTOR:
      add_selector(w, e->u.ms.vs, e->u.ms.range_ms);
      break;
    case PROMQL_NODE_SUBQUERY:
      walk(w, e->u.subquery.expr);
      break;
    case PROMQL_NODE_CALL:
      for (size_t i = 0; i < e->u.call.nargs; i++) walk(w, e->u.call.args[i]);
      break;
    case PROMQL_NODE_AGGREGATE:
      walk(w, e->u.agg.expr);
      walk(w, e->u.agg.param);
      break;
    case PROMQL_NODE_BINARY:
      walk(w, e->u.binary.lhs);
      walk(w, e->u.binary.rhs);
      break;
    case PROMQL_NODE_UNARY:
      walk(w, e->u.unary.expr);
      break;
    case PROMQL_NODE_PAREN:
    case PROMQL_NODE_STEP_INVARIANT:
      walk(w, e->u.paren.expr);
      break;
    default:
      break;
  }
  w->depth--;
}

int promql_selectors(orr_arena *a, const promql_expr *root, const promql_select_params *p,
                     promql_selector **out, size_t *n) {
  walker w;
  memset(&w, 0, sizeof(w));
  w.arena = a;
  w.p = p;
  /* The parser bounds the height; the engine may wrap nodes in
   * step-invariant markers, at most doubling it. */
  w.path = orr_arena_calloc(a, 2 * PROMQL_MAX_DEPTH + 8, sizeof(*w.path));
  if (!w.path) return ORR_ENOMEM;
  walk(&w, root);
  if (w.rc) return w.rc;
  *out = w.v;
  *n = w.n;
  return 0;
}

void promql_selectors_time_range(const promql_selector *sels, size_t n, int64_t *mint,
                                 int64_t *maxt) {
  if (n == 0) {
    *mint = *maxt = 0;
    return;
  }
  *mint = INT64_MAX;
  *maxt = INT64_MIN;
  for (size_t i = 0; i < n; i++) {
    if (sels[i].start_ms < *mint) *mint = sels[i].start_ms;
    if (sels[i].end_ms > *maxt) *maxt = sels[i].end_ms;
  }
}
