/* promql.c: /api/v1/query and /api/v1/query_range over the fan-out —
 * prepare the query, fetch every selector concurrently through gw_select,
 * evaluate on a worker thread and stream the JSON body back.
 *
 * NOTES ON THE DESIGN OF ONE QUERY (struct gq)
 *  States: QUEUED (over --query.max-concurrent, FIFO) → FETCHING (one
 *  gw_select per selector through the request's fan-out, fanout.c) →
 *  EVALUATING (uv work:
 *  promql_query_exec, then the JSON writer) → RESPONDING → CLOSING (the
 *  timer and async handles close; the struct is freed in the last close
 *  callback).
 *  1. Series are fed into the promql_query on the loop thread only (the
 *     fan-out's callbacks run there), so the query's arena needs no lock;
 *     the worker touches the query only after every fetch finished.
 *  2. Decoded samples are counted while feeding; past --query.max-samples
 *     the fetch stops with Prometheus's "too many samples" error.
 *  3. One deadline, min(--query.timeout, timeout=), from the request's
 *     arrival: a uv timer cancels the fetches and the evaluation (through
 *     promql_query_params.cancel) and the answer becomes errorType timeout.
 *  4. The client going away cancels the same way; the request is finished
 *     (freed) only once nothing refers to it.
 *  5. The body is written on the worker thread. A body that fits one
 *     writer flush is answered whole (Content-Length, gzip by the server);
 *     larger ones are handed to the loop in pieces through a mutex-guarded
 *     queue and uv_async, and the worker waits while the queue or the
 *     connection is over its high-water mark — memory stays bounded by
 *     the result, not by the result plus its JSON.
 *  6. A small instant query (few samples and series fetched, a small tree,
 *     no subquery) is evaluated and written on the loop thread: its
 *     evaluation costs microseconds, the worker hand-off and back two
 *     wake-ups (~0.1 ms, a sixth of an instant `up`). Bounded work only:
 *     the loop is never held by a query whose cost the bounds do not cap. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"

#define GQ_FLUSH_AT ((size_t)256 * 1024)
#define GQ_QUEUE_MAX ((size_t)1024 * 1024)

typedef struct gq_chunk {
  struct gq_chunk *next;
  char *data;
  size_t len;
} gq_chunk;

typedef struct gq gq;

struct gq {
  gw_api *api;
  net_http_req *req; /* NULL once finished */
  orr_arena *a;
  promql_query *query;
  promql_query_params p;
  bool dedup;
  int partial;
  int64_t max_res_ms; /* max_source_resolution (0: raw) */
  gw_api__fanout *f;        /* the fetch; freed (slot given back) in gq_end */
  gw__push *push;           /* aggregations pushed down (pushdown.c); NULL: none */
  bool fetch_done;          /* the fan-out finished; evaluation waits for |push| too */
  int64_t samples;
  size_t nseries;     /* fed so far: with |samples|, whether to evaluate inline */
  bool inline_eval;   /* evaluated on the loop (note 6): flushes never wait */
  volatile int cancel;
  bool timed_out, gone;
  /* evaluation (worker) */
  uv_work_t work;
  promql_result res;
  promql_errinfo einfo;
  int exec_rc;
  int write_rc;
  orr_buf body;     /* the writer's buffer (worker) */
  orr_buf whole;    /* the body when it fit one flush */
  size_t flushes;
  /* hand-off to the loop */
  uv_mutex_t mu;
  uv_cond_t cond;
  gq_chunk *head, *tail;
  size_t queued_bytes;
  bool blocked;     /* the connection is over its high-water mark */
  bool stop;        /* client gone: the worker stops writing */
  bool started;     /* stream begun */
  uv_async_t async;
  uv_timer_t timer;
  int open_handles;
};

/* ---------------------------------------------------------------- teardown */
void gw__select_req_init(gw_select_req *r, const promql_selector *sel) {
  memset(r, 0, sizeof(*r));
  r->matchers = sel->matchers;
  r->nmatchers = sel->nmatchers;
  r->mint = sel->start_ms;
  r->maxt = sel->end_ms;
  r->step_ms = sel->step_ms;
  r->func = sel->func;
  r->by = sel->by;
  r->grouping = sel->grouping;
  r->ngrouping = sel->ngrouping;
}

static void gq_handle_closed(uv_handle_t *h) {
  gq *q = h->data;
  if (--q->open_handles > 0) return;
  gq_chunk *c = q->head;
  while (c) {
    gq_chunk *n = c->next;
    free(c->data);
    free(c);
    c = n;
  }
  orr_buf_free(&q->body);
  orr_buf_free(&q->whole);
  uv_cond_destroy(&q->cond);
  uv_mutex_destroy(&q->mu);
  gw__push_free(q->push);
  if (q->query) promql_query_free(q->query);
  orr_arena_destroy(q->a);
  free(q);
}

/* The request was finished: close the handles, free when they are closed. */
static void gq_end(gq *q) {
  q->req = NULL;
  gw_api__fanout *f = q->f;
  q->f = NULL;
  uv_timer_stop(&q->timer);
  uv_close((uv_handle_t *)&q->timer, gq_handle_closed);
  uv_close((uv_handle_t *)&q->async, gq_handle_closed);
  gw_api__fanout_free(f); /* the next queued request may start */
}

static void gq_respond_error(gq *q, promql_errtype t, const char *msg) {
  net_http_respond_api_error(q->req, promql_errtype_name(t), msg);
  gq_end(q);
}

/* ---------------------------------------------------------------- cancel */
static void gq_cancel_all(gq *q) {
  q->cancel = 1;
  if (q->f) gw_api__fanout_cancel(q->f);
  gw__push_cancel(q->push);
  uv_mutex_lock(&q->mu);
  if (q->gone) q->stop = true;
  uv_cond_broadcast(&q->cond);
  uv_mutex_unlock(&q->mu);
}

static void gq_on_timer(uv_timer_t *t) {
  gq *q = t->data;
  q->timed_out = true;
  gq_cancel_all(q);
}

static void gq_on_gone(gw_api__fanout *f) {
  gq *q = f->arg;
  q->gone = true;
  gq_cancel_all(q);
}

/* ---------------------------------------------------------------- streaming */
static void gq_on_drain(net_http_req *req, void *arg) {
  (void)req;
  gq *q = arg;
  uv_mutex_lock(&q->mu);
  q->blocked = false;
  uv_cond_broadcast(&q->cond);
  uv_mutex_unlock(&q->mu);
}

/* Writes the queued pieces to the connection (loop thread). */
static void gq_pump(gq *q) {
  uv_mutex_lock(&q->mu);
  gq_chunk *c = q->head;
  q->head = q->tail = NULL;
  uv_mutex_unlock(&q->mu);
  size_t done = 0;
  bool blocked = false, gone = false;
  while (c) {
    gq_chunk *n = c->next;
    if (q->req && !gone) {
      if (!q->started) {
        if (net_http_stream_begin(q->req, 200, "application/json", gq_on_drain, q) == 0)
          q->started = true;
        else
          gone = true;
      }
      if (q->started && !gone) {
        int rc = net_http_stream_write(q->req, c->data, c->len);
        if (rc == ORR_EAGAIN)
          blocked = true;
        else if (rc)
          gone = true;
      }
    }
    done += c->len;
    free(c->data);
    free(c);
    c = n;
  }
  uv_mutex_lock(&q->mu);
  q->queued_bytes -= done;
  if (blocked) q->blocked = true;
  if (gone) q->stop = true;
  uv_cond_broadcast(&q->cond);
  uv_mutex_unlock(&q->mu);
}

static void gq_on_async(uv_async_t *h) { gq_pump(h->data); }

/* The JSON writer's flush, on the worker thread. */
static int gq_flush(void *arg, orr_buf *buf) {
  gq *q = arg;
  if (q->flushes++ == 0 && buf->len < GQ_FLUSH_AT) {
    /* The writer's last flush, and its first: the whole body. */
    q->whole = *buf;
    memset(buf, 0, sizeof(*buf));
    return 0;
  }
  gq_chunk *c = malloc(sizeof(*c));
  if (!c) return ORR_ENOMEM;
  c->next = NULL;
  c->data = orr_buf_steal(buf, &c->len);
  uv_mutex_lock(&q->mu);
  while (!q->inline_eval && !q->stop && (q->queued_bytes > GQ_QUEUE_MAX || q->blocked))
    uv_cond_wait(&q->cond, &q->mu);
  if (q->stop) {
    uv_mutex_unlock(&q->mu);
    free(c->data);
    free(c);
    return ORR_ECLOSED;
  }
  if (q->tail)
    q->tail->next = c;
  else
    q->head = c;
  q->tail = c;
  q->queued_bytes += c->len;
  uv_mutex_unlock(&q->mu);
  if (!q->inline_eval) uv_async_send(&q->async); /* inline: gq_after_work pumps */
  return 0;
}

/* ---------------------------------------------------------------- evaluation */
static void gq_work(uv_work_t *w) {
  gq *q = w->data;
  q->exec_rc = promql_query_exec(q->query, &q->res, &q->einfo);
  if (q->exec_rc) return;
  promql_json_writer jw = {&q->body, GQ_FLUSH_AT, gq_flush, q, 0};
  q->write_rc = promql_json_write_result(&jw, &q->res);
}

static void gq_after_work(uv_work_t *w, int status) {
  gq *q = w->data;
  gq_pump(q);
  if (status == UV_ECANCELED) q->exec_rc = ORR_ECANCELED;
  if (q->exec_rc) {
    if (q->timed_out || q->exec_rc == ORR_ETIMEOUT) {
      gq_respond_error(q, PROMQL_ERR_TIMEOUT, "query timed out in expression evaluation");
    } else if (q->exec_rc == ORR_ECANCELED) {
      gq_respond_error(q, PROMQL_ERR_CANCELED, "query was canceled in expression evaluation");
    } else if (q->exec_rc == ORR_ENOMEM) {
      gq_respond_error(q, PROMQL_ERR_INTERNAL, "out of memory");
    } else {
      gq_respond_error(q, q->einfo.type ? q->einfo.type : PROMQL_ERR_EXECUTION, q->einfo.msg);
    }
    return;
  }
  if (q->started) {
    net_http_stream_end(q->req);
    gq_end(q);
    return;
  }
  if (q->write_rc) {
    gq_respond_error(q, PROMQL_ERR_INTERNAL, orr_strerror(q->write_rc));
    return;
  }
  /* The writer's final newline-free body, whole. */
  net_http_respond_buf(q->req, 200, "application/json", &q->whole);
  gq_end(q);
}

/* ---------------------------------------------------------------- fetching */
#define GQ_INLINE_SAMPLES 4096
#define GQ_INLINE_SERIES 1024
#define GQ_INLINE_NODES 32

/* Counts |e|'s nodes into |*n| (stopping past GQ_INLINE_NODES); false when
 * it holds a subquery (its cost is its steps', not the samples'). */
static bool gq_tree_small(const promql_expr *e, int *n) {
  if (!e) return true;
  if (++*n > GQ_INLINE_NODES) return false;
  switch (e->kind) {
    case PROMQL_NODE_SUBQUERY: return false;
    case PROMQL_NODE_MATRIX_SELECTOR: return gq_tree_small(e->u.ms.vs, n);
    case PROMQL_NODE_CALL:
      for (size_t i = 0; i < e->u.call.nargs; i++)
        if (!gq_tree_small(e->u.call.args[i], n)) return false;
      return true;
    case PROMQL_NODE_AGGREGATE:
      return gq_tree_small(e->u.agg.expr, n) && gq_tree_small(e->u.agg.param, n);
    case PROMQL_NODE_BINARY:
      return gq_tree_small(e->u.binary.lhs, n) && gq_tree_small(e->u.binary.rhs, n);
    case PROMQL_NODE_UNARY: return gq_tree_small(e->u.unary.expr, n);
    case PROMQL_NODE_PAREN:
    case PROMQL_NODE_STEP_INVARIANT: return gq_tree_small(e->u.paren.expr, n);
    default: return true;
  }
}

/* Note 6: cheap enough to evaluate on the loop. */
static bool gq_small(const gq *q) {
  if (q->p.range || q->samples > GQ_INLINE_SAMPLES || q->nseries > GQ_INLINE_SERIES) return false;
  int n = 0;
  return gq_tree_small(promql_query_expr(q->query), &n);
}

static void gq_fetched(gw_api__fanout *f) {
  gq *q = f->arg;
  q->fetch_done = true;
  if (f->err || q->cancel || f->cancelled) gw__push_cancel(q->push);
  if (gw__push_running(q->push)) return; /* gq_push_done comes back here */
  if (f->err || q->cancel || f->cancelled) {
    if (q->timed_out)
      gq_respond_error(q, PROMQL_ERR_TIMEOUT, "query timed out in expression evaluation");
    else if (f->err == ORR_ELIMIT)
      gq_respond_error(q, PROMQL_ERR_EXECUTION,
                       "query processing would load too many samples into memory in query "
                       "execution");
    else if (f->err == ORR_ETIMEOUT)
      gq_respond_error(q, PROMQL_ERR_TIMEOUT, "query timed out in expression evaluation");
    else if (f->err == ORR_ENOMEM)
      gq_respond_error(q, PROMQL_ERR_INTERNAL, "out of memory");
    else if (q->gone || f->err == ORR_ECANCELED || !f->err)
      gq_respond_error(q, PROMQL_ERR_CANCELED, "query was canceled in expression evaluation");
    else {
      char m[1100];
      snprintf(m, sizeof(m), "expanding series: %s", f->msg);
      gq_respond_error(q, PROMQL_ERR_EXECUTION, m);
    }
    return;
  }
  q->work.data = q;
  if (gq_small(q)) {
    q->inline_eval = true;
    gq_work(&q->work);
    gq_after_work(&q->work, 0);
    return;
  }
  int rc = uv_queue_work(q->api->cfg.loop, &q->work, gq_work, gq_after_work);
  if (rc) gq_respond_error(q, PROMQL_ERR_INTERNAL, "cannot queue the evaluation");
}

static int gq_on_series(gw_api__fanout *f, size_t sel, const labels_set *ls,
                        const promql_point *pts, size_t npts) {
  gq *q = f->arg;
  if (q->cancel) return ORR_ECANCELED;
  q->samples += (int64_t)npts;
  q->nseries++;
  if (q->samples > q->api->cfg.max_samples) return ORR_ELIMIT;
  return promql_query_add_series(q->query, sel, ls, pts, npts);
}

static void gq_on_warning(gw_api__fanout *f, const char *msg) {
  gq *q = f->arg;
  if (promql_query_add_warning(q->query, msg) && !f->err) f->err = ORR_ENOMEM;
}

/* ---------------------------------------------------------------- pushdown */
static int gq_push_partial(void *arg, const promql_expr *node, const labels_set *ls,
                           const promql_point *pts, size_t npts) {
  gq *q = arg;
  if (q->cancel) return ORR_ECANCELED;
  q->samples += (int64_t)npts;
  q->nseries++;
  if (q->samples > q->api->cfg.max_samples) return ORR_ELIMIT;
  return promql_query_add_partial(q->query, node, ls, pts, npts);
}

/* A pushed-down query ended: its failure is what the raw path's would be
 * (a warning under partial response, else the query's error). */
static void gq_push_done(void *arg, const char *url, int err, const char *msg) {
  (void)url;
  gq *q = arg;
  gw_api__fanout *f = q->f;
  if (err && err != ORR_ECANCELED) {
    int partial = q->partial < 0 ? q->api->cfg.partial_response : q->partial;
    if (err == ORR_ELIMIT || err == ORR_ENOMEM || !partial) {
      gw_api__fanout_fail(f, err, msg);
    } else if (promql_query_add_warning(q->query, msg)) {
      gw_api__fanout_fail(f, ORR_ENOMEM, "out of memory");
    }
  }
  if (q->fetch_done && !gw__push_running(q->push)) gq_fetched(f);
}

static void gq_push_warning(void *arg, const char *msg) {
  gq *q = arg;
  if (promql_query_add_warning(q->query, msg)) gw_api__fanout_fail(q->f, ORR_ENOMEM, "out of memory");
}

static const gw__push_cb gq_push_cb = {gq_push_partial, gq_push_warning, gq_push_done};

/* Admitted: the pushdowns, and one gw_select per selector of the query. */
static void gq_start_fetch(gw_api__fanout *f) {
  gq *q = f->arg;
  size_t n;
  const promql_selector *sels = promql_query_selectors(q->query, &n);
  gw__push_opts po = {0};
  po.dedup = q->dedup;
  po.partial = q->partial < 0 ? q->api->cfg.partial_response : q->partial;
  po.max_res_ms = q->max_res_ms;
  po.timeout_ms = q->p.timeout_ms;
  if (gw__push_plan(q->api->cfg.core, q->query, &q->p, &po, &gq_push_cb, q, q->a, &q->push)) {
    gw_api__fanout_fail(f, ORR_ENOMEM, "out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const promql_selector *sel = &sels[i];
    gw_select_req r;
    gw__select_req_init(&r, sel);
    r.dedup = q->dedup;
    r.partial_response = q->partial;
    r.max_resolution_ms = q->max_res_ms;
    r.max_samples = q->api->cfg.max_samples;
    gw__push_exclude(q->push, i, &r.exclude, &r.nexclude);
    int rc = gw_api__fanout_select(f, &r, i);
    if (rc) {
      gw_api__fanout_fail(f, rc, orr_strerror(rc));
      return;
    }
  }
  if (q->push) gw__push_start(q->push);
}

static const gw_api__fanout_cb gq_fanout_cb = {.series = gq_on_series,
                                               .warning = gq_on_warning,
                                               .start = gq_start_fetch,
                                               .finish = gq_fetched,
                                               .gone = gq_on_gone};

/* ---------------------------------------------------------------- handlers */
static void quoted_err(net_http_req *req, const char *param, const char *what, const char *v,
                       const char *tail) {
  orr_buf b = {0};
  gw_api__quote(&b, v ? v : "");
  gw_api__errorf(req, "bad_data", "invalid parameter \"%s\": %scannot parse %s to a valid %s",
                 param, tail ? tail : "", b.data ? b.data : "\"\"", what);
  orr_buf_free(&b);
}

static void handle(net_http_req *req, gw_api *api, bool range) {
  promql_query_params p;
  memset(&p, 0, sizeof(p));
  p.range = range;
  p.lookback_ms = api->cfg.lookback_ms;
  p.max_samples = api->cfg.max_samples;
  int64_t auto_res_ns = 0; /* the step, for max_source_resolution=auto */
  if (range) {
    const char *s = net_http_req_param(req, "start");
    const char *e = net_http_req_param(req, "end");
    if (gw_api__parse_time(s, &p.start_ms))
      { quoted_err(req, "start", "timestamp", s, NULL); return; }
    if (gw_api__parse_time(e, &p.end_ms)) { quoted_err(req, "end", "timestamp", e, NULL); return; }
    if (p.end_ms < p.start_ms)
      { net_http_respond_api_error(
          req, "bad_data", "invalid parameter \"end\": end timestamp must not be before start time"); return; }
    const char *st = net_http_req_param(req, "step");
    int64_t step_ns;
    bool ovf;
    if (gw_api__parse_duration_ns(st, &step_ns, &ovf)) {
      if (ovf) {
        orr_buf b = {0};
        gw_api__quote(&b, st);
        gw_api__errorf(req, "bad_data",
                       "invalid parameter \"step\": cannot parse %s to a valid duration. It "
                       "overflows int64",
                       b.data);
        orr_buf_free(&b);
        return;
      }
      { quoted_err(req, "step", "duration", st, NULL); return; }
    }
    if (step_ns <= 0)
      { net_http_respond_api_error(req, "bad_data",
                                        "invalid parameter \"step\": zero or negative query "
                                        "resolution step widths are not accepted. Try a positive "
                                        "integer"); return; }
    /* Go divides durations in nanoseconds; time.Sub saturates. */
    int64_t span_ms = p.end_ms - p.start_ms;
    int64_t span_ns = span_ms > INT64_MAX / 1000000 ? INT64_MAX : span_ms * 1000000;
    if (span_ns / step_ns > PROMQL_MAX_POINTS_PER_SERIES) {
      net_http_respond_api_error(req, "bad_data",
                                 "exceeded maximum resolution of 11,000 points per timeseries. "
                                 "Try decreasing the query resolution (?step=XX)");
      return;
    }
    /* A step under 1 ms becomes 0: the engine then fails as Prometheus's does. */
    p.step_ms = step_ns / 1000000;
    auto_res_ns = step_ns;
  } else {
    const char *t = net_http_req_param(req, "time");
    if (!t || !*t) {
      p.start_ms = orr_now_ms();
    } else if (gw_api__parse_time(t, &p.start_ms)) {
      { quoted_err(req, "time", "timestamp", t, "Invalid time value for 'time': "); return; }
    }
    p.end_ms = p.start_ms;
  }
  int64_t timeout_ms = api->cfg.timeout_ms;
  const char *to = net_http_req_param(req, "timeout");
  if (to && *to) {
    int64_t ns;
    bool ovf;
    if (gw_api__parse_duration_ns(to, &ns, &ovf)) {
      if (ovf) {
        orr_buf b = {0};
        gw_api__quote(&b, to);
        gw_api__errorf(req, "bad_data",
                       "invalid parameter \"timeout\": cannot parse %s to a valid duration. It "
                       "overflows int64",
                       b.data);
        orr_buf_free(&b);
        return;
      }
      { quoted_err(req, "timeout", "duration", to, NULL); return; }
    }
    int64_t ms = ns / 1000000;
    if (ms < 1) ms = 1;
    if (ms < timeout_ms) timeout_ms = ms;
  }
  /* Thanos's parameters. */
  bool dedup;
  int partial;
  if (gw_api__thanos_params(api, req, &dedup, &partial)) return;
  /* Downsampled blocks: "auto" is step / 5 for ranges (Thanos), raw for
   * instant queries (Thanos's default instant max_source_resolution, 0s).
   * replicaLabels[] is accepted; per-request replica labels are not served. */
  int64_t max_res_ms;
  if (gw_api__max_source_resolution(api, req, range ? auto_res_ns / 5 / 1000000 : 0, &max_res_ms))
    return;

  gq *q = calloc(1, sizeof(*q));
  orr_arena *a = orr_arena_new(0);
  if (!q || !a) {
    free(q);
    orr_arena_destroy(a);
    { net_http_respond_api_error(req, "internal", "out of memory"); return; }
  }
  q->api = api;
  q->req = req;
  q->a = a;
  q->dedup = dedup;
  q->partial = partial;
  q->max_res_ms = max_res_ms;
  p.timeout_ms = timeout_ms;
  p.cancel = &q->cancel;
  q->p = p;
  uv_mutex_init(&q->mu);
  uv_cond_init(&q->cond);
  uv_timer_init(api->cfg.loop, &q->timer);
  uv_async_init(api->cfg.loop, &q->async, gq_on_async);
  q->timer.data = q;
  q->async.data = q;
  q->open_handles = 2;

  const char *qs = net_http_req_param(req, "query");
  size_t qn = 0;
  if (qs) {
    size_t np;
    const net_http_kv *kv = net_http_req_params(req, &np);
    for (size_t i = 0; i < np; i++)
      if (!strcmp(kv[i].name, "query")) {
        qn = kv[i].value_len;
        break;
      }
  } else {
    qs = "";
  }
  promql_errinfo e;
  int rc = promql_query_new(a, qs, qn, &q->p, &q->query, &e);
  if (rc) {
    q->query = NULL;
    if (rc == ORR_ENOMEM) { gq_respond_error(q, PROMQL_ERR_INTERNAL, "out of memory"); return; }
    char m[1100];
    /* 2.42 prefixes parse errors of instant queries only. */
    if (!range && e.type == PROMQL_ERR_BAD_DATA &&
        strncmp(e.msg, "invalid expression type", 23) != 0)
      snprintf(m, sizeof(m), "invalid parameter \"query\": %s", e.msg);
    else
      snprintf(m, sizeof(m), "%s", e.msg);
    { gq_respond_error(q, e.type ? e.type : PROMQL_ERR_BAD_DATA, m); return; }
  }
  if (gw_api__fanout_new(api, req, &gq_fanout_cb, q, &q->f)) {
    q->f = NULL;
    gq_respond_error(q, PROMQL_ERR_INTERNAL, "out of memory");
    return;
  }
  /* The deadline counts from the request's arrival. */
  q->f->deadline_ns = net_http_req_start_ns(req) + (uint64_t)timeout_ms * 1000000u;
  uint64_t age_ms = (orr_mono_ns() - net_http_req_start_ns(req)) / 1000000;
  uint64_t left = (uint64_t)timeout_ms > age_ms ? (uint64_t)timeout_ms - age_ms : 1;
  uv_timer_start(&q->timer, gq_on_timer, left, 0);
  if (q->f->gone) {
    q->gone = true;
    q->cancel = 1;
  }
  gw_api__fanout_start(q->f);
}

void gw_api__handle_query(net_http_req *req, void *arg) { handle(req, arg, false); }
void gw_api__handle_query_range(net_http_req *req, void *arg) { handle(req, arg, true); }
