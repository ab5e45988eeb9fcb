/* queryapi.c: the gateway's Query API — Thanos's thanos.Query gRPC service
 * (Query, QueryRange): PromQL evaluated here over the fan-out, the result
 * streamed back one series per message. A gateway above in
 * --query.mode=distributed pushes the aggregations this gateway can answer
 * alone down to it (pushdown.c), so only aggregated series cross between
 * regions; a Thanos querier's distributed engine can use it the same way.
 *
 * NOTES ON THE DESIGN OF ONE CALL (struct qcall)
 *  States: FETCHING (one gw__select_ex per selector, and this gateway's own
 *  pushdowns, so stacks deeper than two work) → EVALUATING (uv work:
 *  promql_query_exec) → SENDING (warnings, one message per series, the
 *  stats; paused while the call's send queue is full) → finished.
 *  1. Series and partials are fed on the loop thread only (the fan-out's
 *     callbacks run there); the worker touches the query only after every
 *     fetch ended. Decoded samples count against --query.max-samples.
 *  2. The request's fields follow Thanos's server: time_seconds 0 is now;
 *     replica_labels, when given, replace --query.replica-label; enableDedup
 *     and enablePartialResponse are the HTTP API's dedup and
 *     partial_response; lookback_delta_seconds > 0 replaces the lookback;
 *     timeout_seconds shortens --query.timeout. storeMatchers and shard_info
 *     are refused (INVALID_ARGUMENT) rather than ignored: ignoring them would
 *     answer over more data than asked. A queryPlan is ignored: the text in
 *     |query| is always sent with it.
 *  3. Errors as Thanos's server gives them: a failed evaluation is ABORTED
 *     with the engine's message, except an instant query under partial
 *     response, whose error becomes a warning of an empty answer. Timeouts
 *     are DEADLINE_EXCEEDED, so a gateway above reports a timeout.
 *  4. A cancel (client gone, deadline, shutdown) cancels the fetches, the
 *     pushdowns and the evaluation (promql_query_params.cancel); the call is
 *     finished exactly once, when nothing in flight refers to it.
 *  5. QueryResponse and QueryRangeResponse have the same fields and numbers,
 *     so one encoder writes both. */
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"

typedef struct qcall {
  gw_queryapi *s;
  gw *g;
  net_grpc_call *call;
  orr_arena *a;
  bool range;
  bool partial;
  promql_query *q;
  promql_query_params p;
  gw_op **ops; /* one per selector, NULL once done */
  size_t nops, running;
  gw__push *push;
  int64_t samples;
  int err;           /* first fetch error */
  char msg[1024];
  volatile int cancel;
  bool cancelled;    /* on_cancel ran */
  bool evaluating;
  uv_work_t work;
  promql_result res;
  promql_errinfo einfo;
  int exec_rc;
  size_t next;       /* SENDING: the next warning, then series, to send */
  bool stats_sent;
  orr_arena *scratch;
} qcall;

static void qc_free(qcall *c) {
  gw__push_free(c->push);
  if (c->q) promql_query_free(c->q);
  orr_arena_destroy(c->scratch);
  orr_arena_destroy(c->a);
  free(c->ops);
  free(c);
}

static void qc_finish(qcall *c, int status, const char *msg) {
  net_grpc_call_finish(c->call, status, msg);
  qc_free(c);
}

/* ---------------------------------------------------------------- sending */
static int pack_send(qcall *c, const Thanos__QueryResponse *r) {
  size_t n = thanos__query_response__get_packed_size(r);
  uint8_t *b = orr_arena_alloc(c->scratch, n + 1);
  if (!b) return ORR_ENOMEM;
  thanos__query_response__pack(r, b);
  return net_grpc_call_send(c->call, b, n);
}

static int send_warning(qcall *c, const char *w) {
  Thanos__QueryResponse r;
  thanos__query_response__init(&r);
  r.result_case = THANOS__QUERY_RESPONSE__RESULT_WARNINGS;
  r.warnings = (char *)w;
  return pack_send(c, &r);
}

static int send_series(qcall *c, const labels_set *ls, const promql_point *pts, size_t n) {
  PrometheusCopy__TimeSeries ts;
  prometheus_copy__time_series__init(&ts);
  if (ls && ls->n) {
    if (storeapi_labels_to_proto(ls, c->scratch, &ts.labels)) return ORR_ENOMEM;
    ts.n_labels = ls->n;
  }
  ts.samples = orr_arena_calloc(c->scratch, n + 1, sizeof(*ts.samples));
  PrometheusCopy__Sample *sv = orr_arena_calloc(c->scratch, n + 1, sizeof(*sv));
  if (!ts.samples || !sv) return ORR_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    prometheus_copy__sample__init(&sv[i]);
    sv[i].timestamp = pts[i].t;
    sv[i].value = pts[i].v;
    ts.samples[i] = &sv[i];
  }
  ts.n_samples = n;
  Thanos__QueryResponse r;
  thanos__query_response__init(&r);
  r.result_case = THANOS__QUERY_RESPONSE__RESULT_TIMESERIES;
  r.timeseries = &ts;
  return pack_send(c, &r);
}

/* Sends what is left (note 5); returns on a full queue (on_writable comes
 * back here) and finishes the call at the end. */
static void qc_pump(qcall *c) {
  const promql_result *res = &c->res;
  size_t nw = res->nwarnings;
  size_t ns = res->type == PROMQL_TYPE_SCALAR                            ? 1
              : res->type == PROMQL_TYPE_VECTOR || res->type == PROMQL_TYPE_MATRIX ? res->nseries
                                                                        : 0;
  for (;;) {
    orr_arena_reset(c->scratch);
    int rc;
    if (c->next < nw) {
      rc = send_warning(c, res->warnings[c->next]);
    } else if (c->next < nw + ns) {
      size_t i = c->next - nw;
      if (res->type == PROMQL_TYPE_SCALAR) {
        promql_point pt = {res->t, res->scalar};
        rc = send_series(c, NULL, &pt, 1);
      } else {
        const promql_series *s = &res->series[i];
        rc = send_series(c, &s->labels, s->points, s->npoints);
      }
    } else if (!c->stats_sent) {
      Thanos__QueryResponse r;
      Thanos__QueryStats st;
      thanos__query_response__init(&r);
      thanos__query_stats__init(&st);
      st.samples_total = c->samples;
      r.stats = &st;
      rc = pack_send(c, &r);
      if (rc == 0) c->stats_sent = true;
      if (rc == 0) continue;
    } else {
      qc_finish(c, NET_GRPC_OK, NULL);
      return;
    }
    if (rc == ORR_EAGAIN) return;
    if (rc == ORR_ECANCELED || c->cancelled) {
      qc_finish(c, NET_GRPC_CANCELLED, "canceled");
      return;
    }
    if (rc) {
      qc_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, orr_strerror(rc));
      return;
    }
    c->next++;
  }
}

static void on_writable(net_grpc_call *call, void *arg) {
  (void)call;
  qcall *c = arg;
  if (!c->evaluating && c->q && c->next != (size_t)-1) qc_pump(c);
}

/* ---------------------------------------------------------------- evaluating */
static void qc_work(uv_work_t *w) {
  qcall *c = w->data;
  c->exec_rc = promql_query_exec(c->q, &c->res, &c->einfo);
}

/* A failed query (note 3). */
static void qc_fail(qcall *c, int rc, const char *msg) {
  if (c->cancelled || rc == ORR_ECANCELED) {
    qc_finish(c, NET_GRPC_CANCELLED, "canceled");
    return;
  }
  if (rc == ORR_ETIMEOUT) {
    qc_finish(c, NET_GRPC_DEADLINE_EXCEEDED, msg);
    return;
  }
  if (rc == ORR_ENOMEM) {
    qc_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (!c->range && c->partial) { /* Thanos: the error as a warning, no series */
    memset(&c->res, 0, sizeof(c->res));
    c->res.type = PROMQL_TYPE_VECTOR;
    const char **w = orr_arena_alloc(c->a, sizeof(*w));
    if (w && (*w = orr_arena_strdup(c->a, msg))) {
      c->res.warnings = w;
      c->res.nwarnings = 1;
    }
    c->next = 0;
    qc_pump(c);
    return;
  }
  qc_finish(c, NET_GRPC_ABORTED, msg);
}

static void qc_after_work(uv_work_t *w, int status) {
  qcall *c = w->data;
  c->evaluating = false;
  if (status == UV_ECANCELED) c->exec_rc = ORR_ECANCELED;
  if (c->exec_rc) {
    const char *m = c->exec_rc == ORR_ETIMEOUT ? "query timed out in expression evaluation"
                                               : c->einfo.msg;
    qc_fail(c, c->exec_rc, m[0] ? m : orr_strerror(c->exec_rc));
    return;
  }
  c->next = 0;
  qc_pump(c);
}

/* Every fetch and pushdown ended: evaluate, or fail. */
static void qc_fetched(qcall *c) {
  if (c->running || gw__push_running(c->push)) return;
  if (c->cancelled || c->cancel) {
    qc_fail(c, ORR_ECANCELED, "canceled");
    return;
  }
  if (c->err) {
    if (c->err == ORR_ELIMIT) {
      qc_fail(c, ORR_ELIMIT,
              "query processing would load too many samples into memory in query execution");
    } else if (c->err == ORR_ETIMEOUT || c->err == ORR_ENOMEM) {
      qc_fail(c, c->err, c->err == ORR_ETIMEOUT ? "query timed out in expression evaluation"
                                                : "out of memory");
    } else {
      char m[1100];
      snprintf(m, sizeof(m), "expanding series: %s", c->msg);
      qc_fail(c, c->err, m);
    }
    return;
  }
  c->work.data = c;
  c->evaluating = true;
  if (uv_queue_work(gw__loop(c->g), &c->work, qc_work, qc_after_work)) {
    c->evaluating = false;
    qc_finish(c, NET_GRPC_INTERNAL, "cannot queue the evaluation");
  }
}

static void qc_error(qcall *c, int err, const char *msg) {
  if (c->err || !err) return;
  c->err = err;
  snprintf(c->msg, sizeof(c->msg), "%s", msg ? msg : orr_strerror(err));
  c->cancel = 1;
  for (size_t i = 0; i < c->nops; i++)
    if (c->ops[i]) gw_op_cancel(c->ops[i]);
  gw__push_cancel(c->push);
}

/* ---------------------------------------------------------------- fetching */
typedef struct qsel {
  qcall *c;
  size_t i;
} qsel;

static int on_series(void *arg, const labels_set *ls, const promql_point *pts, size_t n) {
  qsel *x = arg;
  qcall *c = x->c;
  if (c->cancel) return ORR_ECANCELED;
  c->samples += (int64_t)n;
  if (c->samples > c->s->cfg.max_samples) return ORR_ELIMIT;
  return promql_query_add_series(c->q, x->i, ls, pts, n);
}

static void on_warning(void *arg, const char *msg) {
  qsel *x = arg;
  if (promql_query_add_warning(x->c->q, msg)) qc_error(x->c, ORR_ENOMEM, "out of memory");
}

static void on_done(void *arg, int err, const char *msg) {
  qsel *x = arg;
  qcall *c = x->c;
  c->ops[x->i] = NULL;
  c->running--;
  if (err && err != ORR_ECANCELED) qc_error(c, err, msg);
  qc_fetched(c);
}

static int push_partial(void *arg, const promql_expr *node, const labels_set *ls,
                        const promql_point *pts, size_t n) {
  qcall *c = arg;
  if (c->cancel) return ORR_ECANCELED;
  c->samples += (int64_t)n;
  if (c->samples > c->s->cfg.max_samples) return ORR_ELIMIT;
  return promql_query_add_partial(c->q, node, ls, pts, n);
}

static void push_warning(void *arg, const char *msg) {
  qcall *c = arg;
  if (promql_query_add_warning(c->q, msg)) qc_error(c, ORR_ENOMEM, "out of memory");
}

/* A pushed-down part ended: a failure is a warning under partial response,
 * else the call's error (as promql.c does for the HTTP API). */
static void push_done(void *arg, const char *url, int err, const char *msg) {
  (void)url;
  qcall *c = arg;
  if (err && err != ORR_ECANCELED) {
    if (err == ORR_ELIMIT || err == ORR_ENOMEM || !c->partial)
      qc_error(c, err, msg);
    else if (promql_query_add_warning(c->q, msg))
      qc_error(c, ORR_ENOMEM, "out of memory");
  }
  qc_fetched(c);
}

static const gw__push_cb qc_push_cb = {push_partial, push_warning, push_done};

static void on_cancel(net_grpc_call *call, int status, void *arg) {
  (void)call;
  (void)status;
  qcall *c = arg;
  c->cancelled = true;
  c->cancel = 1;
  if (c->evaluating) return; /* qc_after_work finishes */
  if (c->q && !c->running && !gw__push_running(c->push) && c->next != (size_t)-1) {
    qc_finish(c, NET_GRPC_CANCELLED, "canceled"); /* was sending */
    return;
  }
  for (size_t i = 0; i < c->nops; i++)
    if (c->ops[i]) gw_op_cancel(c->ops[i]);
  gw__push_cancel(c->push);
}

/* ---------------------------------------------------------------- the call */
/* The request's fields, decoded from either message (note 2). */
typedef struct qreq {
  const char *query;
  int64_t start_ms, end_ms, step_ms;
  int64_t timeout_s, max_res_s, lookback_s;
  char **rl;
  size_t nrl;
  bool dedup, partial;
  size_t nstore_matchers;
  const Thanos__ShardInfo *shard;
  int engine;
} qreq;

static void handle(net_grpc_call *call, const uint8_t *msg, size_t len, void *arg, bool range) {
  gw_queryapi *s = arg;
  if (!s->g) {
    net_grpc_call_finish(call, NET_GRPC_UNAVAILABLE, "the gateway is shutting down");
    return;
  }
  const char *id = net_grpc_call_metadata(call, GW_ID_HEADER);
  if (id && !strcmp(id, s->g->id)) {
    net_grpc_call_finish(call, NET_GRPC_FAILED_PRECONDITION,
                         "query loop: this endpoint is the calling gateway itself (same "
                         GW_ID_HEADER "); remove it from --endpoint");
    return;
  }
  qreq r = {0};
  Thanos__QueryRequest *qi = NULL;
  Thanos__QueryRangeRequest *qr = NULL;
  if (range) {
    if (!(qr = thanos__query_range_request__unpack(NULL, len, msg))) goto bad;
    r.query = qr->query;
    r.start_ms = qr->start_time_seconds * 1000;
    r.end_ms = qr->end_time_seconds * 1000;
    r.step_ms = qr->interval_seconds * 1000;
    r.timeout_s = qr->timeout_seconds;
    r.max_res_s = qr->max_resolution_seconds;
    r.lookback_s = qr->lookback_delta_seconds;
    r.rl = qr->replica_labels;
    r.nrl = qr->n_replica_labels;
    r.dedup = qr->enablededup;
    r.partial = qr->enablepartialresponse;
    r.nstore_matchers = qr->n_storematchers;
    r.shard = qr->shard_info;
    r.engine = qr->engine;
  } else {
    if (!(qi = thanos__query_request__unpack(NULL, len, msg))) goto bad;
    r.query = qi->query;
    r.start_ms = r.end_ms = qi->time_seconds ? qi->time_seconds * 1000 : orr_now_ms();
    r.timeout_s = qi->timeout_seconds;
    r.max_res_s = qi->max_resolution_seconds;
    r.lookback_s = qi->lookback_delta_seconds;
    r.rl = qi->replica_labels;
    r.nrl = qi->n_replica_labels;
    r.dedup = qi->enablededup;
    r.partial = qi->enablepartialresponse;
    r.nstore_matchers = qi->n_storematchers;
    r.shard = qi->shard_info;
    r.engine = qi->engine;
  }
  const char *why = NULL;
  if (r.engine < 0 || r.engine > 2) why = "invalid engine parameter";
  else if (r.nstore_matchers) why = "storeMatchers are not supported by this endpoint";
  else if (r.shard && r.shard->total_shards > 1) why = "shard_info is not supported by this endpoint";
  else if (range && r.step_ms <= 0)
    why = "zero or negative query resolution step widths are not accepted. Try a positive integer";
  else if (range && r.end_ms < r.start_ms) why = "end timestamp must not be before start time";
  else if (range && (r.end_ms - r.start_ms) / r.step_ms > PROMQL_MAX_POINTS_PER_SERIES)
    why = "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
          "resolution (?step=XX)";
  if (why) {
    net_grpc_call_finish(call, NET_GRPC_INVALID_ARGUMENT, why);
    goto out;
  }
  qcall *c = calloc(1, sizeof(*c));
  orr_arena *a = orr_arena_new(0);
  orr_arena *scratch = orr_arena_new(0);
  if (!c || !a || !scratch) {
    free(c);
    orr_arena_destroy(a);
    orr_arena_destroy(scratch);
    net_grpc_call_finish(call, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    goto out;
  }
  c->s = s;
  c->g = s->g;
  c->call = call;
  c->a = a;
  c->scratch = scratch;
  c->range = range;
  c->partial = r.partial;
  c->next = (size_t)-1; /* not sending yet */
  net_grpc_call_set_callbacks(call, on_writable, on_cancel, c);
  c->p.range = range;
  c->p.start_ms = r.start_ms;
  c->p.end_ms = r.end_ms;
  c->p.step_ms = r.step_ms;
  c->p.lookback_ms = r.lookback_s > 0 ? r.lookback_s * 1000 : s->cfg.lookback_ms;
  c->p.max_samples = s->cfg.max_samples;
  int64_t timeout_ms = s->cfg.timeout_ms;
  if (r.timeout_s > 0 && r.timeout_s * 1000 < timeout_ms) timeout_ms = r.timeout_s * 1000;
  c->p.timeout_ms = timeout_ms;
  c->p.cancel = &c->cancel;
  /* The rest of the request outlives the message: copy what is kept. */
  const char **rl = NULL;
  if (r.nrl) {
    rl = orr_arena_calloc(a, r.nrl + 1, sizeof(*rl));
    for (size_t i = 0; rl && i < r.nrl; i++)
      if (!(rl[i] = orr_arena_strdup(a, r.rl[i]))) rl = NULL;
    if (!rl) {
      qc_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      goto out;
    }
  }
  promql_errinfo e;
  int rc = promql_query_new(a, r.query ? r.query : "", r.query ? strlen(r.query) : 0, &c->p,
                            &c->q, &e);
  if (rc) {
    c->q = NULL;
    qc_finish(c, rc == ORR_ENOMEM ? NET_GRPC_RESOURCE_EXHAUSTED : NET_GRPC_INVALID_ARGUMENT,
              rc == ORR_ENOMEM ? "out of memory" : e.msg);
    goto out;
  }
  gw__push_opts po = {0};
  po.dedup = r.dedup;
  po.rl = rl;
  po.nrl = r.nrl;
  po.partial = r.partial;
  po.max_res_ms = r.max_res_s * 1000;
  po.timeout_ms = timeout_ms;
  if (gw__push_plan(c->g, c->q, &c->p, &po, &qc_push_cb, c, a, &c->push)) {
    qc_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    goto out;
  }
  size_t n;
  const promql_selector *sels = promql_query_selectors(c->q, &n);
  c->ops = calloc(n + 1, sizeof(*c->ops));
  qsel *xs = orr_arena_calloc(a, n + 1, sizeof(*xs));
  if (!c->ops || !xs) {
    qc_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    goto out;
  }
  c->nops = n;
  for (size_t i = 0; i < n; i++) {
    const promql_selector *sel = &sels[i];
    gw_select_req sr;
    gw__select_req_init(&sr, sel);
    sr.dedup = r.dedup;
    sr.partial_response = r.partial;
    sr.max_resolution_ms = r.max_res_s * 1000;
    sr.max_samples = s->cfg.max_samples;
    sr.timeout_ms = timeout_ms;
    gw__push_exclude(c->push, i, &sr.exclude, &sr.nexclude);
    xs[i].c = c;
    xs[i].i = i;
    gw_select_cb cb = {on_series, on_warning, on_done, &xs[i]};
    rc = gw__select_ex(c->g, &sr, &cb, &c->ops[i], rl, r.nrl);
    if (rc) {
      qc_error(c, rc, orr_strerror(rc));
      break;
    }
    c->running++;
  }
  /* After an error nothing is pushed (qc_fetched could free |c| from
   * inside gw__push_start). Done callbacks never run from inside
   * gw__select_ex; with every select started, a pushdown ending at once
   * leaves c->running > 0. Nothing at all in flight: go on now. */
  if (c->push && !c->err) gw__push_start(c->push);
  if (!c->running && !gw__push_running(c->push)) qc_fetched(c);
out:
  if (qi) thanos__query_request__free_unpacked(qi, NULL);
  if (qr) thanos__query_range_request__free_unpacked(qr, NULL);
  return;
bad:
  net_grpc_call_finish(call, NET_GRPC_INTERNAL, "cannot decode the request");
}

static void h_query(net_grpc_call *call, const uint8_t *msg, size_t len, void *arg) {
  handle(call, msg, len, arg, false);
}

static void h_query_range(net_grpc_call *call, const uint8_t *msg, size_t len, void *arg) {
  handle(call, msg, len, arg, true);
}

int gw_queryapi_register(gw *g, net_grpc_server *grpc, const gw_queryapi_config *cfg,
                         gw_queryapi **out) {
  gw_queryapi *s = calloc(1, sizeof(*s));
  if (!s) return ORR_ENOMEM;
  s->g = g;
  s->cfg = *cfg;
  if (s->cfg.timeout_ms <= 0) s->cfg.timeout_ms = PROMQL_DEFAULT_TIMEOUT_MS;
  if (s->cfg.max_samples <= 0) s->cfg.max_samples = PROMQL_DEFAULT_MAX_SAMPLES;
  if (s->cfg.lookback_ms <= 0) s->cfg.lookback_ms = PROMQL_DEFAULT_LOOKBACK_MS;
  int rc = net_grpc_server_register(grpc, STOREAPI_PATH_QUERY, NET_GRPC_SERVER_STREAMING, h_query,
                                    s);
  if (!rc)
    rc = net_grpc_server_register(grpc, STOREAPI_PATH_QUERY_RANGE, NET_GRPC_SERVER_STREAMING,
                                  h_query_range, s);
  if (rc) {
    free(s);
    return rc;
  }
  g->qapi = s;
  *out = s;
  return 0;
}

void gw_queryapi_free(gw_queryapi *s) {
  if (!s) return;
  if (s->g) s->g->qapi = NULL;
  free(s);
}
