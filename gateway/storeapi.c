/* storeapi.c: the gateway as a StoreAPI endpoint (Thanos's
 * querier-as-store), so gateways stack: Info aggregates the endpoints,
 * Series/LabelNames/LabelValues go through the fan-out.
 *
 * Design notes
 * 1. Series: no dedup at this level unless the request names
 *    without_replica_labels; then those labels are removed and the replicas
 *    merged (penalty), as the caller would have done itself. Without them,
 *    replica labels stay, so the gateway above can deduplicate.
 * 2. The fan-out gives decoded samples; they are re-encoded as XOR chunks of
 *    at most 120 samples. A client that falls behind (send returns
 *    ORR_EAGAIN) pauses the fan-out's output until the layer's resume(),
 *    and with it, through the merge's bound, the endpoints.
 * 3. A cancelled call cancels its fan-out; the call is finished from the
 *    fan-out's done, exactly once. */
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "tsdb.h"

typedef struct gw_storeapi gw__storeapi;

typedef struct sctx {
  storeapi_call *call;
  gw_op *op;
  bool cancelled;
  bool labels;
} sctx;

/* ---------------------------------------------------------------- loops */
/* Whether |c| comes from this very gateway (it is among its own endpoints);
 * then |c| is refused, so the endpoint never comes up instead of every
 * Series recursing into itself until the timeout. */
static bool refuse_loop(gw__storeapi *s, storeapi_call *c) {
  const char *id = storeapi_call_metadata(c, GW_ID_HEADER);
  if (!s->g || !id || strcmp(id, s->g->id)) return false;
  storeapi_call_finish(c, NET_GRPC_FAILED_PRECONDITION,
                       "query loop: this endpoint is the calling gateway itself (same "
                       GW_ID_HEADER "); remove it from --endpoint");
  return true;
}

/* ---------------------------------------------------------------- Info */
static void b_info(void *arg, storeapi_call *c) {
  gw__storeapi *s = arg;
  if (!s->g) {
    storeapi_call_finish(c, NET_GRPC_UNAVAILABLE, "the gateway is shutting down");
    return;
  }
  if (refuse_loop(s, c)) return;
  orr_arena *a = storeapi_call_arena(c);
  labels_set *sets;
  size_t n;
  int64_t mint, maxt;
  if (gw__info_union(s->g, a, &sets, &n, &mint, &maxt)) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  Thanos__Info__InfoResponse r;
  thanos__info__info_response__init(&r);
  Thanos__LabelSet **ls = orr_arena_calloc(a, n + 1, sizeof(*ls));
  Thanos__Info__StoreInfo *si = orr_arena_alloc(a, sizeof(*si));
  if (!ls || !si) goto oom;
  for (size_t i = 0; i < n; i++) {
    ls[i] = orr_arena_alloc(a, sizeof(**ls));
    if (!ls[i]) goto oom;
    thanos__label_set__init(ls[i]);
    if (storeapi_labels_to_proto(&sets[i], a, &ls[i]->labels)) goto oom;
    ls[i]->n_labels = sets[i].n;
  }
  r.label_sets = ls;
  r.n_label_sets = n;
  r.componenttype = "query";
  thanos__info__store_info__init(si);
  si->min_time = mint;
  si->max_time = maxt;
  si->supports_without_replica_labels = true;
  r.store = si;
  /* Thanos's field saying the Query API is served: a gateway above in
   * --query.mode=distributed pushes aggregations down to this one. */
  Thanos__Info__QueryAPIInfo qi = THANOS__INFO__QUERY_APIINFO__INIT;
  if (s->g->qapi) r.query = &qi;
  storeapi_call_reply_info(c, &r);
  return;
oom:
  storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

/* ---------------------------------------------------------------- Series */
/* The context of a Series or labels call, or NULL after finishing |c|
 * (shutting down, out of memory). */
static sctx *call_begin(gw__storeapi *s, storeapi_call *c) {
  if (!s->g) {
    storeapi_call_finish(c, NET_GRPC_UNAVAILABLE, "the gateway is shutting down");
    return NULL;
  }
  if (refuse_loop(s, c)) return NULL;
  sctx *x = calloc(1, sizeof(*x));
  if (!x) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  x->call = c;
  return x;
}

static int send_series(void *arg, const labels_set *ls, const promql_point *pts, size_t n) {
  sctx *x = arg;
  if (x->cancelled) return ORR_ECANCELED;
  orr_arena *a = orr_arena_new(0);
  if (!a) return ORR_ENOMEM;
  int rc = ORR_ENOMEM;
  Thanos__Series s;
  thanos__series__init(&s);
  if (storeapi_labels_to_proto(ls, a, &s.labels)) goto out;
  s.n_labels = ls->n;
  size_t nch = (n + TSDB_SAMPLES_PER_CHUNK - 1) / TSDB_SAMPLES_PER_CHUNK;
  s.chunks = orr_arena_calloc(a, nch + 1, sizeof(*s.chunks));
  if (!s.chunks) goto out;
  tsdb_xor_appender app;
  if (tsdb_xor_appender_init(&app)) {
    tsdb_xor_appender_free(&app);
    goto out;
  }
  for (size_t i = 0; i < n; i += TSDB_SAMPLES_PER_CHUNK) {
    size_t end = i + TSDB_SAMPLES_PER_CHUNK < n ? i + TSDB_SAMPLES_PER_CHUNK : n;
    tsdb_xor_appender_reset(&app);
    for (size_t j = i; j < end; j++)
      if (tsdb_xor_append(&app, pts[j].t, pts[j].v)) {
        tsdb_xor_appender_free(&app);
        goto out;
      }
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(&app, &len);
    Thanos__AggrChunk *ac = orr_arena_alloc(a, sizeof(*ac));
    Thanos__Chunk *raw = orr_arena_alloc(a, sizeof(*raw));
    uint8_t *d = orr_arena_alloc(a, len + 1);
    if (!ac || !raw || !d) {
      tsdb_xor_appender_free(&app);
      goto out;
    }
    memcpy(d, b, len);
    thanos__aggr_chunk__init(ac);
    thanos__chunk__init(raw);
    raw->type = THANOS__CHUNK__ENCODING__XOR;
    raw->data.data = d;
    raw->data.len = len;
    ac->min_time = pts[i].t;
    ac->max_time = pts[end - 1].t;
    ac->raw = raw;
    s.chunks[s.n_chunks++] = ac;
  }
  tsdb_xor_appender_free(&app);
  rc = storeapi_call_send_series(x->call, &s);
  if (rc == ORR_EAGAIN) {
    /* Kept, but the client is behind: stop pulling until resume(). */
    rc = 0;
    if (x->op) gw__op_pause(x->op);
  }
out:
  orr_arena_destroy(a);
  return rc;
}

static void send_warning(void *arg, const char *msg) {
  sctx *x = arg;
  if (!x->cancelled) storeapi_call_send_warning(x->call, msg);
}

static void series_done(void *arg, int err, const char *msg) {
  sctx *x = arg;
  if (err) storeapi_call_finish(x->call, net_grpc_status_from_err(err), msg);
  else storeapi_call_finish(x->call, NET_GRPC_OK, NULL);
  free(x);
}

static void b_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  gw__storeapi *s = arg;
  const Thanos__SeriesRequest *m = req->msg;
  sctx *x = call_begin(s, c);
  if (!x) return;
  storeapi_call_set_data(c, x);
  gw_select_req r = {0};
  r.matchers = req->matchers;
  r.nmatchers = req->nmatchers;
  r.mint = m->min_time;
  r.maxt = m->max_time;
  r.skip_chunks = m->skip_chunks;
  r.max_resolution_ms = m->max_resolution_window;
  r.partial_response = !(m->partial_response_disabled ||
                         m->partial_response_strategy == THANOS__PARTIAL_RESPONSE_STRATEGY__ABORT);
  if (m->query_hints) {
    r.step_ms = m->query_hints->step_millis;
    if (m->query_hints->func) r.func = m->query_hints->func->name;
    if (m->query_hints->grouping) {
      r.by = m->query_hints->grouping->by;
      r.grouping = (const char *const *)m->query_hints->grouping->labels;
      r.ngrouping = m->query_hints->grouping->n_labels;
    }
  }
  r.dedup = m->n_without_replica_labels > 0;
  gw_select_cb cb = {send_series, send_warning, series_done, x};
  int rc = gw__select_ex(s->g, &r, &cb, &x->op, (const char *const *)m->without_replica_labels,
                         m->n_without_replica_labels);
  if (rc) {
    storeapi_call_finish(c, net_grpc_status_from_err(rc), orr_strerror(rc));
    free(x);
  }
}

/* ---------------------------------------------------------------- labels */
static void labels_done(void *arg, int err, const char *msg, const char *const *values, size_t n,
                        const char *const *warnings, size_t nw) {
  sctx *x = arg;
  if (err || x->cancelled) {
    storeapi_call_finish(x->call, err ? net_grpc_status_from_err(err) : NET_GRPC_CANCELLED,
                         err ? msg : "canceled");
  } else if (x->labels) {
    Thanos__LabelValuesResponse r;
    thanos__label_values_response__init(&r);
    r.values = (char **)values;
    r.n_values = n;
    r.warnings = (char **)warnings;
    r.n_warnings = nw;
    storeapi_call_reply_label_values(x->call, &r);
  } else {
    Thanos__LabelNamesResponse r;
    thanos__label_names_response__init(&r);
    r.names = (char **)values;
    r.n_names = n;
    r.warnings = (char **)warnings;
    r.n_warnings = nw;
    storeapi_call_reply_label_names(x->call, &r);
  }
  free(x);
}

static void b_labels(gw__storeapi *s, storeapi_call *c, const storeapi_label_req *req) {
  sctx *x = call_begin(s, c);
  if (!x) return;
  x->labels = req->label != NULL;
  storeapi_call_set_data(c, x);
  gw_labels_req r = {0};
  r.name = req->label;
  r.start = req->start;
  r.end = req->end;
  r.matchers = req->matchers;
  r.nmatchers = req->nmatchers;
  r.dedup = req->nwithout > 0;
  r.partial_response = -1;
  r.limit = req->limit;
  int rc = gw__labels_ex(s->g, &r, labels_done, x, (const char *const *)req->without_replica_labels,
                         req->nwithout);
  if (rc) {
    storeapi_call_finish(c, net_grpc_status_from_err(rc), orr_strerror(rc));
    free(x);
  }
}

static void b_label_names(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  b_labels(arg, c, req);
}

static void b_label_values(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  b_labels(arg, c, req);
}

static void b_resume(void *arg, storeapi_call *c) {
  (void)arg;
  sctx *x = storeapi_call_data(c);
  if (x && x->op && !x->cancelled) gw__op_resume(x->op);
}

static void b_cancel(void *arg, storeapi_call *c) {
  (void)arg;
  sctx *x = storeapi_call_data(c);
  if (!x) {
    storeapi_call_finish(c, NET_GRPC_CANCELLED, "canceled");
    return;
  }
  x->cancelled = true;
  if (x->op) gw_op_cancel(x->op); /* done follows and finishes |c| */
}

int gw_storeapi_register(gw *g, net_grpc_server *grpc, orr_registry *reg, gw_storeapi **out) {
  gw__storeapi *s = calloc(1, sizeof(*s));
  if (!s) return ORR_ENOMEM;
  s->g = g;
  storeapi_backend b = {b_info, b_series, b_label_names, b_label_values, b_cancel, b_resume, s};
  int rc = storeapi_server_new(grpc, &b, reg, &s->srv);
  if (rc) {
    free(s);
    return rc;
  }
  g->sapi = s;
  *out = s;
  return 0;
}

void gw_storeapi_free(gw_storeapi *s) {
  if (!s) return;
  if (s->g) s->g->sapi = NULL;
  storeapi_server_free(s->srv);
  free(s);
}
