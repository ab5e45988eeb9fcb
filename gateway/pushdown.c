/* pushdown.c: aggregation pushdown — which aggregations of a PromQL query
 * a source can evaluate itself with a provably equal result, the query
 * each is asked, and the partial results fed back to the engine
 * (promql_query_add_partial). Two kinds of target: query-API sources
 * (--endpoint.promql, asked /api/v1/query_range over HTTP) and, with
 * --query.mode=distributed, StoreAPI endpoints whose Info advertises the
 * Query API (another orrery gateway, a Thanos querier), asked over gRPC
 * thanos.Query/Query or QueryRange — so a global gateway over regional
 * ones moves only aggregated series between datacenters.
 *
 * NOTES ON THE DESIGN
 * 1. A node is pushed to a target S only when all of this holds:
 *    a. it is sum, min, max, count or group with `by` (never `without`):
 *       these merge exactly from disjoint parts (sum/count add, min/max
 *       take the extreme, group is 1), see promql_query_add_partial; or
 *       topk/bottomk by with a number literal for k: the global top k of a
 *       group is among the union of each part's own top k of it, so the
 *       gateway picks again over what the sources picked;
 *    b. its argument is a range function over one matrix selector, e.g.
 *       rate(x[5m]) (other arguments number literals; no @, no negative
 *       offset, not absent_over_time): what such a function gives does not
 *       depend on the lookback delta or the step, so the source computes
 *       exactly what the gateway would from the same raw samples;
 *    c. it is evaluated at the query's own steps (not under a subquery);
 *       when the request deduplicates, either S is asked to deduplicate
 *       itself along the same replica labels (a gRPC target: the request's
 *       replica_labels and enableDedup; S holds every replica it merges,
 *       by 1d), or (a query-API source, which cannot be asked) every
 *       --query.replica-label is one of S's external labels: then it is
 *       constant over S's series, and dropping it merges none of them;
 *    d. the series S holds cannot be held by any other endpoint the
 *       selector reaches: every other such endpoint has, in each of its
 *       label sets, one of S's external labels (not a replica label, when
 *       deduplicating) with another value (the gateway sets external labels
 *       on every series an endpoint sends, so such series never have equal
 *       label sets and are never merged). An endpoint whose labels are not
 *       known yet defeats this. A gRPC endpoint's external labels here are
 *       those all of its label sets share with one value (a regional
 *       gateway over sidecars {region=eu,replica=a}, {region=eu,replica=b}
 *       has {region=eu});
 *    e. for a gRPC target, the query's start, end and step (and
 *       max_source_resolution) are whole seconds: the Query API carries
 *       seconds only.
 * 2. S is asked `op by (G') (f(sel[range] offset o))` over the query's start,
 *    end and step (an instant query: start = end, step 1s, which
 *    Prometheus evaluates as the instant query; a gRPC target gets Query
 *    at that time instead), where G' is the `by` list without S's external
 *    labels and sel is the selector as src_promql.c writes it (matchers on
 *    external labels decided in the gateway) or, for a gRPC target, as the
 *    query wrote it (S decides them over its own endpoints). The
 *    external labels named in `by` (all of them for topk and bottomk,
 *    whose series keep their labels) are set on each series of the answer —
 *    the grouping the gateway would have made, since they are constant
 *    over S's series (replica labels are not set when deduplicating: the
 *    raw path drops them).
 * 3. The node's selector is then fetched from every other endpoint only
 *    (gw_select_req.exclude), and the engine merges the partials into the
 *    node's result. A pushed source that fails is a warning (partial
 *    response) or the query's error, naming the source, as on the raw path.
 * 4. Endpoint references taken while planning are held until the request
 *    is freed, so a source cannot go away under its query.
 *
 * --query.mode follows Thanos's flag: "local" (the default) reads raw series
 * from every StoreAPI endpoint; "distributed" treats endpoints advertising
 * the Query API as remote engines. Thanos's distributed engine sends such
 * an engine whole subtrees it can answer alone; this planner sends the
 * aggregations of 1a–1e and reads the rest raw, so the answer is always the
 * one local mode gives. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"

typedef struct push_op {
  gw__push *push;
  const promql_expr *node;
  gw_promql_src *src;  /* a query-API source, or */
  gw__endpoint *ep;    /* a gRPC endpoint serving thanos.Query */
  const char *url;     /* the source's URL or the endpoint's address */
  const labels_set *ext;
  labels_label *add; /* S's external labels named in `by` */
  size_t nadd;
  const char *query;
  gw_promql_src_op *op;
  storeapi_query_call *qcall;
  int failed; /* a gRPC answer's series could not be taken (ORR_E*) */
  int64_t started_ms, nseries; /* for the endpoint's request metrics */
  bool running;
} push_op;

struct gw__push {
  gw *g;
  orr_arena *a;
  const gw__push_cb *cb;
  void *arg;
  int64_t start, end, step;
  bool instant;
  bool grpc_ok; /* gRPC targets allowed: distributed mode, whole seconds (note 1e) */
  gw__push_opts o;
  const char *const *rl; /* replica labels when deduplicating, else none */
  size_t nrl;
  gw__endpoint **eps; /* references held (note 4) */
  size_t neps, capeps;
  push_op *ops;
  size_t nops, capops;
  /* per selector of the query: endpoint addresses left out */
  const char ***exclude;
  size_t *nexclude;
  size_t nsels;
  size_t running;
  bool cancelled;
};

/* ---------------------------------------------------------------- planning */
static const promql_expr *unparen(const promql_expr *e) {
  while (e && e->kind == PROMQL_NODE_PAREN) e = e->u.paren.expr;
  return e;
}

/* Note 1b: the matrix selector of |e| when it is f(<numbers>, sel[r]). */
static const promql_expr *range_call_selector(const promql_expr *e) {
  e = unparen(e);
  if (!e || e->kind != PROMQL_NODE_CALL) return NULL;
  const promql_function *f = e->u.call.func;
  if (f->return_type != PROMQL_TYPE_VECTOR || !strcmp(f->name, "absent_over_time")) return NULL;
  const promql_expr *ms = NULL;
  for (size_t i = 0; i < e->u.call.nargs; i++) {
    const promql_expr *a = unparen(e->u.call.args[i]);
    if (a->kind == PROMQL_NODE_NUMBER) continue;
    if (a->kind != PROMQL_NODE_MATRIX_SELECTOR || ms) return NULL;
    ms = a;
  }
  if (!ms) return NULL;
  const promql_expr *vs = ms->u.ms.vs;
  if (vs->u.vs.at != PROMQL_AT_NONE || vs->u.vs.offset_ms < 0) return NULL;
  return ms;
}

static bool is_replica(const gw__push *p, const char *name) {
  for (size_t i = 0; i < p->nrl; i++)
    if (!strcmp(p->rl[i], name)) return true;
  return false;
}

/* Note 1d: whether every label set of |o| has one of |ext|'s labels (not a
 * replica label) with another value. Caller holds g->mu. */

static bool distinct_from(const gw__push *p, const labels_set *ext, const gw__endpoint *o) {
  if (o->nlabel_sets == 0) return false;
  for (size_t i = 0; i < o->nlabel_sets; i++) {
    bool differs = false;
    for (size_t j = 0; j < ext->n && !differs; j++) {
      if (is_replica(p, ext->v[j].name)) continue;
      const char *v = labels_get(&o->label_sets[i], ext->v[j].name);
      differs = v && strcmp(v, ext->v[j].value) != 0;
    }
    if (!differs) return false;
  }
  return true;
}

/* Note 1d: the labels every label set of |e| has with one value (in |a|),
 * or NULL on OOM. Caller holds g->mu. */
static const labels_set *shared_labels(orr_arena *a, const gw__endpoint *e) {
  labels_set *out = orr_arena_calloc(a, 1, sizeof(*out));
  if (!out) return NULL;
  if (!e->nlabel_sets) return out;
  const labels_set *first = &e->label_sets[0];
  out->v = orr_arena_calloc(a, first->n ? first->n : 1, sizeof(*out->v));
  if (!out->v) return NULL;
  for (size_t i = 0; i < first->n; i++) {
    bool all = true;
    for (size_t k = 1; k < e->nlabel_sets && all; k++) {
      const char *v = labels_get(&e->label_sets[k], first->v[i].name);
      all = v && !strcmp(v, first->v[i].value);
    }
    if (!all) continue;
    labels_label *l = &out->v[out->n++];
    l->name = orr_arena_strdup(a, first->v[i].name);
    l->value = orr_arena_strdup(a, first->v[i].value);
    if (!l->name || !l->value) return NULL;
  }
  return out;
}

static bool in_by(const promql_expr *agg, const char *name) {
  for (size_t i = 0; i < agg->u.agg.ngrouping; i++)
    if (!strcmp(agg->u.agg.grouping[i], name)) return true;
  return false;
}

/* Note 2: the query S is asked for |agg|. */
static int build_query(gw__push *p, const promql_expr *agg, const promql_expr *ms,
                       const push_op *o, const char **out) {
  const promql_expr *call = unparen(agg->u.agg.expr);
  const labels_set *ext = o->ext;
  orr_buf b = {0};
  orr_buf_printf(&b, "%s by (", promql_aggop_str(agg->u.agg.op));
  bool first = true;
  for (size_t i = 0; i < agg->u.agg.ngrouping; i++) {
    const char *g = agg->u.agg.grouping[i];
    if (labels_get(ext, g)) continue;
    orr_buf_printf(&b, "%s%s", first ? "" : ", ", g);
    first = false;
  }
  orr_buf_puts(&b, ") (");
  int rc = 0;
  if (agg->u.agg.param) { /* topk, bottomk: k, a number (note 1a) */
    rc = promql_expr_format(unparen(agg->u.agg.param), &b);
    orr_buf_puts(&b, ", ");
  }
  orr_buf_printf(&b, "%s(", call->u.call.func->name);
  for (size_t i = 0; i < call->u.call.nargs && !rc; i++) {
    const promql_expr *a = unparen(call->u.call.args[i]);
    if (i) orr_buf_puts(&b, ", ");
    if (a != ms || !o->src) { /* a gRPC target decides its matchers itself */
      rc = promql_expr_format(a, &b);
      continue;
    }
    const promql_expr *vs = ms->u.ms.vs;
    rc = gw_promql_src_selector_text(o->src, vs->u.vs.matchers, vs->u.vs.nmatchers, p->a, &b);
    orr_buf_printf(&b, "[%" PRId64 "ms]", ms->u.ms.range_ms);
    if (vs->u.vs.offset_ms > 0) orr_buf_printf(&b, " offset %" PRId64 "ms", vs->u.vs.offset_ms);
  }
  orr_buf_puts(&b, "))");
  if (!rc && b.oom) rc = ORR_ENOMEM;
  if (!rc && !(*out = orr_arena_strndup(p->a, b.data, b.len))) rc = ORR_ENOMEM;
  orr_buf_free(&b);
  return rc;
}

static int add_op(gw__push *p, const promql_expr *agg, const promql_expr *ms, gw_promql_src *src,
                  gw__endpoint *ep, const labels_set *ext) {
  if (p->nops == p->capops) {
    size_t nc = p->capops ? p->capops * 2 : 4;
    push_op *v = realloc(p->ops, nc * sizeof(*v));
    if (!v) return ORR_ENOMEM;
    p->ops = v;
    p->capops = nc;
  }
  push_op *o = &p->ops[p->nops];
  memset(o, 0, sizeof(*o));
  o->push = p;
  o->node = agg;
  o->src = src;
  o->ep = ep;
  o->url = src ? gw_promql_src_url(src) : ep->address;
  o->ext = ext;
  int rc = build_query(p, agg, ms, o, &o->query);
  if (rc) return rc;
  o->add = orr_arena_calloc(p->a, ext->n ? ext->n : 1, sizeof(*o->add));
  if (!o->add) return ORR_ENOMEM;
  /* topk and bottomk keep every label of their input series (note 2). */
  bool all = agg->u.agg.op == PROMQL_AGG_TOPK || agg->u.agg.op == PROMQL_AGG_BOTTOMK;
  for (size_t i = 0; i < ext->n; i++)
    if ((all || in_by(agg, ext->v[i].name)) && !is_replica(p, ext->v[i].name))
      o->add[o->nadd++] = ext->v[i];
  p->nops++;
  return 0;
}

static int exclude(gw__push *p, size_t sel, const char *address) {
  const char **v = orr_arena_alloc(p->a, (p->nexclude[sel] + 1) * sizeof(*v));
  if (!v) return ORR_ENOMEM;
  if (p->nexclude[sel]) memcpy(v, p->exclude[sel], p->nexclude[sel] * sizeof(*v));
  v[p->nexclude[sel]++] = address;
  p->exclude[sel] = v;
  return 0;
}

/* One aggregation node: plans its pushes (note 1). */
static int plan_node(gw__push *p, const promql_expr *agg, const promql_selector *sels,
                     size_t nsels) {
  if (!promql_aggregate_mergeable(agg)) return 0;
  if (agg->u.agg.param && unparen(agg->u.agg.param)->kind != PROMQL_NODE_NUMBER) return 0;
  const promql_expr *ms = range_call_selector(agg->u.agg.expr);
  if (!ms) return 0;
  size_t si = nsels;
  for (size_t i = 0; i < nsels; i++)
    if (sels[i].node == ms->u.ms.vs) si = i;
  if (si == nsels) return 0;
  const promql_selector *sel = &sels[si];
  gw__endpoint **eps;
  size_t n;
  if (gw__targets(p->g, sel->start_ms, sel->end_ms, sel->matchers, sel->nmatchers, &eps, &n))
    return ORR_ENOMEM;
  /* Room to keep every reference until the request ends (note 4). */
  if (p->neps + n > p->capeps) {
    size_t nc = p->neps + n + 8;
    gw__endpoint **v = realloc(p->eps, nc * sizeof(*v));
    if (!v) {
      gw__targets_release(p->g, eps, n);
      return ORR_ENOMEM;
    }
    p->eps = v;
    p->capeps = nc;
  }
  memcpy(p->eps + p->neps, eps, n * sizeof(*eps));
  p->neps += n;
  free(eps);
  eps = p->eps + p->neps - n;
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    gw_promql_src *src = gw__promql_src_of(eps[i]);
    const labels_set *ext = NULL;
    bool ok = true;
    if (src) {
      ext = gw_promql_src_labels(src);
      for (size_t k = 0; k < p->nrl && ok; k++) ok = labels_get(ext, p->rl[k]) != NULL;
      pthread_mutex_lock(&p->g->mu);
    } else {
      if (!p->grpc_ok) continue; /* note 1e, or --query.mode=local */
      pthread_mutex_lock(&p->g->mu);
      ok = eps[i]->query_api && eps[i]->up;
      if (ok && !(ext = shared_labels(p->a, eps[i]))) rc = ORR_ENOMEM;
      ok = ok && !rc;
    }
    for (size_t j = 0; j < n && ok; j++)
      if (j != i) ok = distinct_from(p, ext, eps[j]);
    pthread_mutex_unlock(&p->g->mu);
    if (!ok) continue;
    rc = add_op(p, agg, ms, src, src ? NULL : eps[i], ext);
    if (rc == ORR_ENOTFOUND) { /* a matcher on its external labels fails: the raw path's */
      rc = 0;
      continue;
    }
    if (!rc) rc = exclude(p, si, eps[i]->address);
  }
  return rc;
}

/* Walks |e| for aggregation nodes evaluated at the query's steps (1c). */
static int walk(gw__push *p, const promql_expr *e, const promql_selector *sels, size_t nsels,
                int depth) {
  if (!e || depth > 2 * PROMQL_MAX_DEPTH + 8) return 0;
  int rc = 0;
  switch (e->kind) {
    case PROMQL_NODE_AGGREGATE:
      if ((rc = plan_node(p, e, sels, nsels))) return rc;
      if ((rc = walk(p, e->u.agg.param, sels, nsels, depth + 1))) return rc;
      return walk(p, e->u.agg.expr, sels, nsels, depth + 1);
    case PROMQL_NODE_CALL:
      for (size_t i = 0; i < e->u.call.nargs && !rc; i++)
        rc = walk(p, e->u.call.args[i], sels, nsels, depth + 1);
      return rc;
    case PROMQL_NODE_BINARY:
      if ((rc = walk(p, e->u.binary.lhs, sels, nsels, depth + 1))) return rc;
      return walk(p, e->u.binary.rhs, sels, nsels, depth + 1);
    case PROMQL_NODE_UNARY: return walk(p, e->u.unary.expr, sels, nsels, depth + 1);
    case PROMQL_NODE_PAREN: return walk(p, e->u.paren.expr, sels, nsels, depth + 1);
    default: return 0; /* selectors, literals; subqueries have steps of their own */
  }
}

int gw__push_plan(gw *g, promql_query *q, const promql_query_params *qp, const gw__push_opts *o,
                  const gw__push_cb *cb, void *arg, orr_arena *a, gw__push **out) {
  *out = NULL;
  size_t nsels;
  const promql_selector *sels = promql_query_selectors(q, &nsels);
  if (!nsels) return 0;
  gw__push *p = calloc(1, sizeof(*p));
  if (!p) return ORR_ENOMEM;
  p->g = g;
  p->a = a;
  p->cb = cb;
  p->arg = arg;
  p->start = qp->start_ms;
  p->end = qp->range ? qp->end_ms : qp->start_ms;
  p->step = qp->range ? qp->step_ms : 1000;
  p->instant = !qp->range;
  p->o = *o;
  p->nsels = nsels;
  if (o->dedup && o->rl) { /* note 1c */
    p->rl = o->rl;
    p->nrl = o->nrl;
  } else if (o->dedup) {
    p->rl = gw_replica_labels(g, &p->nrl);
  }
  /* time_seconds 0 would mean "now" to the Query API. */
  p->grpc_ok = gw__config(g)->query_mode_distributed && p->start > 0 && p->start % 1000 == 0 &&
               p->end % 1000 == 0 && p->step % 1000 == 0 && o->max_res_ms % 1000 == 0;
  p->exclude = orr_arena_calloc(a, nsels, sizeof(*p->exclude));
  p->nexclude = orr_arena_calloc(a, nsels, sizeof(*p->nexclude));
  int rc = !p->exclude || !p->nexclude ? ORR_ENOMEM : 0;
  /* A step under 1ms is the engine's error to give, not the source's. */
  if (!rc && p->step > 0) rc = walk(p, promql_query_expr(q), sels, nsels, 0);
  if (rc || !p->nops) {
    gw__push_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

void gw__push_exclude(const gw__push *p, size_t sel, const char *const **ex, size_t *n) {
  *ex = NULL;
  *n = 0;
  if (!p || sel >= p->nsels) return;
  *ex = p->exclude[sel];
  *n = p->nexclude[sel];
}

/* ---------------------------------------------------------------- running */
static int got_series(const labels_set *ls, const promql_api_point *pts, size_t n, void *arg) {
  push_op *o = arg;
  gw__push *p = o->push;
  if (p->cancelled) return ORR_ECANCELED;
  labels_builder b;
  labels_builder_init(&b, p->a, ls);
  for (size_t i = 0; i < o->nadd; i++) labels_builder_set(&b, o->add[i].name, o->add[i].value);
  labels_set out;
  if (labels_builder_finish(&b, &out)) return ORR_ENOMEM;
  promql_point *v = malloc((n ? n : 1) * sizeof(*v));
  if (!v) return ORR_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    /* Only points on the query's steps (the engine's cursors step on
     * them): a source that answers others is not Prometheus's API. */
    if (pts[i].t < p->start || pts[i].t > p->end || (pts[i].t - p->start) % p->step) continue;
    v[k].t = pts[i].t;
    v[k++].v = pts[i].v;
  }
  int rc = k ? p->cb->partial(p->arg, o->node, &out, v, k) : 0;
  free(v);
  return rc;
}

static void op_warn(void *arg, const char *msg) {
  push_op *o = arg;
  o->push->cb->warning(o->push->arg, msg);
}

/* ---- gRPC targets (thanos.Query) */
static int grpc_series(const PrometheusCopy__TimeSeries *ts, void *arg) {
  push_op *o = arg;
  gw__push *p = o->push;
  if (p->cancelled) return ORR_ECANCELED;
  orr_arena *a = orr_arena_new(0);
  promql_api_point *pts = malloc((ts->n_samples ? ts->n_samples : 1) * sizeof(*pts));
  labels_set ls;
  int rc = ORR_ENOMEM;
  if (a && pts && !storeapi_labels_from_proto(ts->labels, ts->n_labels, a, &ls)) {
    for (size_t i = 0; i < ts->n_samples; i++) {
      pts[i].t = ts->samples[i]->timestamp;
      pts[i].v = ts->samples[i]->value;
    }
    rc = got_series(&ls, pts, ts->n_samples, o);
    o->nseries++;
  }
  free(pts);
  orr_arena_destroy(a);
  if (rc) o->failed = rc;
  return rc;
}

static void grpc_warning(const char *msg, void *arg) {
  push_op *o = arg;
  char m[1200];
  snprintf(m, sizeof(m), "%s: %s", o->url, msg);
  o->push->cb->warning(o->push->arg, m);
}

static void op_done(void *arg, int err, const char *msg);

static void grpc_done(int status, const char *message, void *arg) {
  push_op *o = arg;
  int err = 0;
  char m[1200] = "";
  if (o->failed) {
    err = o->failed;
    snprintf(m, sizeof(m), "query %s: %s", o->url, orr_strerror(err));
  } else if (status != NET_GRPC_OK) {
    err = status == NET_GRPC_CANCELLED     ? ORR_ECANCELED
          : status == NET_GRPC_DEADLINE_EXCEEDED ? ORR_ETIMEOUT
                                                 : ORR_EUNAVAILABLE;
    /* The raw path's wording (proxy.c), so a user sees the same. */
    snprintf(m, sizeof(m), "query Addr: %s: rpc error: code = %s desc = %s", o->url,
             net_grpc_status_name(status), message ? message : "");
  }
  o->qcall = NULL;
  gw__endpoint_observe(o->push->g, o->ep, o->push->instant ? "Query" : "QueryRange", status,
                       orr_now_ms() - o->started_ms, o->nseries);
  op_done(o, err, m);
}

/* The fields QueryRequest and QueryRangeRequest share, set alike for both.
 * protobuf-c gives them two unrelated struct types, so a macro rather than a
 * function serves both. */
#define PUSH_SET_COMMON(r, o, p, to_s, dedup)                                                    \
  do {                                                                                             \
    (r).query = (char *)(o)->query;                                                                \
    (r).timeout_seconds = (to_s);                                                                  \
    (r).max_resolution_seconds = (p)->o.max_res_ms / 1000;                                         \
    (r).replica_labels = (char **)(p)->rl;                                                         \
    (r).n_replica_labels = (dedup) ? (p)->nrl : 0;                                                 \
    (r).enablededup = (dedup);                                                                     \
    (r).enablepartialresponse = (p)->o.partial;                                                    \
  } while (0)

static int grpc_start(push_op *o) {
  gw__push *p = o->push;
  int64_t to_ms = p->o.timeout_ms > 0 ? p->o.timeout_ms : gw__config(p->g)->query_timeout_ms;
  int64_t to_s = (to_ms + 999) / 1000;
  bool dedup = p->o.dedup && p->nrl > 0; /* none to merge along: no dedup (note 1c) */
  o->started_ms = orr_now_ms();
  if (p->instant) {
    Thanos__QueryRequest r;
    thanos__query_request__init(&r);
    PUSH_SET_COMMON(r, o, p, to_s, dedup);
    r.time_seconds = p->start / 1000;
    return storeapi_client_query(o->ep->client, &r, NULL, to_ms, grpc_series, grpc_warning,
                                 grpc_done, o, &o->qcall);
  }
  Thanos__QueryRangeRequest r;
  thanos__query_range_request__init(&r);
  PUSH_SET_COMMON(r, o, p, to_s, dedup);
  r.start_time_seconds = p->start / 1000;
  r.end_time_seconds = p->end / 1000;
  r.interval_seconds = p->step / 1000;
  return storeapi_client_query(o->ep->client, NULL, &r, to_ms, grpc_series, grpc_warning,
                               grpc_done, o, &o->qcall);
}

static void op_done(void *arg, int err, const char *msg) {
  push_op *o = arg;
  gw__push *p = o->push;
  o->running = false;
  o->op = NULL;
  p->running--;
  p->cb->done(p->arg, o->url, err, msg);
}

int gw__push_start(gw__push *p) {
  for (size_t i = 0; i < p->nops; i++) p->ops[i].running = true;
  p->running = p->nops;
  for (size_t i = 0; i < p->nops; i++) {
    push_op *o = &p->ops[i];
    if (p->cancelled) {
      op_done(o, ORR_ECANCELED, "cancelled");
      continue;
    }
    int rc = o->src ? gw_promql_src_query_range(o->src, o->query, p->start, p->end, p->step,
                                                got_series, op_warn, op_done, o, &o->op)
                    : grpc_start(o);
    if (rc) op_done(o, rc, orr_strerror(rc));
  }
  return 0;
}

size_t gw__push_running(const gw__push *p) { return p ? p->running : 0; }

void gw__push_cancel(gw__push *p) {
  if (!p) return;
  p->cancelled = true;
  for (size_t i = 0; i < p->nops; i++)
    if (p->ops[i].running && p->ops[i].op) gw_promql_src_op_cancel(p->ops[i].op);
    else if (p->ops[i].running && p->ops[i].qcall) storeapi_client_query_cancel(p->ops[i].qcall);
}

void gw__push_free(gw__push *p) {
  if (!p) return;
  gw__targets_release(p->g, p->eps, p->neps);
  free(p->ops);
  free(p);
}
