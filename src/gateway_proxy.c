/* gateway_proxy.c: the fan-out — one Series (or LabelNames/LabelValues)
 * call to every endpoint that may hold matching data, partial response and
 * timeouts, then merge and HA dedup of what came back; and the bridge that
 * lets a PromQL worker thread run a fan-out and wait for it.
 *
 * Design notes
 * 1. A fan-out (gw_op) moves FETCH → PROCESS → DONE. FETCH: every target
 *    streams its series into the op's arena (labels copied, replica labels
 *    removed when deduplicating, raw chunks copied undecoded); the chunk
 *    headers' sample counts are charged to max_samples as they arrive, so a
 *    query that would load too much fails early with ORR_ELIMIT. PROCESS (a
 *    worker thread): series are sorted by labels, equal ones grouped, each
 *    one's chunks split into non-overlapping lanes (as Thanos's overlap
 *    split), lanes decoded and merged — by the penalty algorithm when
 *    deduplicating, else by timestamp with duplicates dropped. DONE (loop):
 *    the series go to the caller in label order, then done.
 * 2. The gateway's op timer (every 50 ms while ops run) checks each op's
 *    overall deadline and, with --store.response-timeout, cancels a target
 *    silent for that long; the gRPC calls also carry the deadline.
 *    A failed target is a warning with partial response, else the op fails
 *    at once (the other targets are cancelled) naming it.
 * 3. Ops are linked in the gw; gw_close() cancels them and unlinks them
 *    (op->g = NULL): they finish through their calls' CANCELLED, touching
 *    only their targets' references, which outlive the gw. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "tsdb.h"

typedef struct rchunk {
  int64_t mint, maxt;
  const uint8_t *data;
  size_t len;
} rchunk;

typedef struct rseries {
  labels_set ls;
  rchunk *chunks;
  size_t nchunks;
  size_t order;
} rseries;

typedef struct outseries {
  labels_set ls;
  promql_point *pts;
  size_t n;
} outseries;

typedef struct target {
  struct gw_op *op;
  gw__endpoint *ep;
  storeapi_series_call *call;
  const char *lsets;
  int64_t last_msg_ms;
  bool live;
  bool timed_out; /* cancelled by the response timeout */
  bool deadline;  /* cancelled by the overall deadline */
} target;

enum { OP_FETCH, OP_PROCESS, OP_DONE };

struct gw_op {
  int state;
  gw_select_req req;
  gw_select_cb cb;
  orr_arena *a;
  char **replica; /* replica labels to strip (when dedup) */
  size_t nreplica;
  bool partial;
  int64_t deadline_ms, resp_timeout_ms;
  gw__endpoint **eps;
  size_t neps;
  target *t;
  size_t pending;
  rseries *rs;
  size_t nrs, caprs;
  int64_t samples;
  int err;
  char *errmsg;
  bool cancelled;
  gw *g; /* NULL once the gw closed */
  struct gw_op *prev, *next;
  uv_loop_t *loop;
  uv_work_t work;
  outseries *out;
  size_t nout;
};

static void op_fail(gw_op *op, int err, const char *msg);

/* ---------------------------------------------------------------- helpers */
static bool is_replica(char *const *rl, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(rl[i], name)) return true;
  return false;
}

/* Copies |src| into |a| without the labels named in |rl|. */
static int strip_copy(orr_arena *a, const labels_set *src, char *const *rl, size_t nrl,
                      labels_set *dst) {
  dst->v = orr_arena_calloc(a, src->n + 1, sizeof(labels_label));
  if (!dst->v) return ORR_ENOMEM;
  dst->n = 0;
  for (size_t i = 0; i < src->n; i++) {
    if (is_replica(rl, nrl, src->v[i].name)) continue;
    labels_label *l = &dst->v[dst->n++];
    l->name = orr_arena_strdup(a, src->v[i].name);
    l->value = orr_arena_strdup(a, src->v[i].value);
    if (!l->name || !l->value) return ORR_ENOMEM;
  }
  return 0;
}

static const char *grpc_code_name(int status) {
  /* Go's codes.Code String(): CamelCase. */
  static const char *names[] = {"OK", "Canceled", "Unknown", "InvalidArgument",
                                "DeadlineExceeded", "NotFound", "AlreadyExists",
                                "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
                                "Aborted", "OutOfRange", "Unimplemented", "Internal",
                                "Unavailable", "DataLoss", "Unauthenticated"};
  return status >= 0 && status <= 16 ? names[status] : "Unknown";
}

/* ---------------------------------------------------------------- finish */
static void op_free(gw_op *op) {
  gw__targets_release(NULL, op->eps, op->neps);
  free(op->t);
  free(op->rs);
  orr_arena_destroy(op->a);
  free(op);
}

static void op_unlink(gw_op *op) {
  gw *g = op->g;
  if (!g) return;
  if (op->prev) op->prev->next = op->next;
  else g->ops = op->next;
  if (op->next) op->next->prev = op->prev;
  op->g = NULL;
  if (!g->ops) uv_timer_stop(&g->optimer);
}

static void op_complete(gw_op *op) {
  op->state = OP_DONE;
  int err = op->err;
  if (!err && op->cancelled) err = ORR_ECANCELED;
  if (op->cb.done)
    op->cb.done(op->cb.arg, err, err ? (op->errmsg ? op->errmsg : orr_strerror(err)) : "");
  op_free(op);
}

/* ---------------------------------------------------------------- process */
static int cmp_rs(const void *pa, const void *pb) {
  const rseries *a = pa, *b = pb;
  int c = labels_cmp(&a->ls, &b->ls);
  if (c) return c;
  return a->order < b->order ? -1 : a->order > b->order;
}

static int cmp_chunk(const void *pa, const void *pb) {
  const rchunk *a = pa, *b = pb;
  if (a->mint != b->mint) return a->mint < b->mint ? -1 : 1;
  if (a->maxt != b->maxt) return a->maxt < b->maxt ? -1 : 1;
  return 0;
}

/* Decodes the chunks of one lane (non-overlapping, ascending) into |out|. */
static long decode_lane(rchunk **cs, size_t n, promql_point *out) {
  long k = 0;
  for (size_t i = 0; i < n; i++) {
    tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, cs[i]->data, cs[i]->len);
    int r;
    while ((r = tsdb_xor_iter_next(&it)) == 1) {
      if (k > 0 && it.t <= out[k - 1].t) continue;
      out[k].t = it.t;
      out[k].v = it.v;
      k++;
    }
    if (r < 0) return r;
  }
  return k;
}

/* One group of series with equal labels: rs[0..n). */
static int process_group(gw_op *op, rseries *rs, size_t n, orr_arena *scratch) {
  outseries *o = &op->out[op->nout];
  o->ls = rs[0].ls;
  o->pts = NULL;
  o->n = 0;
  if (op->req.skip_chunks) {
    op->nout++;
    return 0;
  }
  size_t total = 0, nch = 0;
  for (size_t i = 0; i < n; i++) {
    nch += rs[i].nchunks;
    for (size_t j = 0; j < rs[i].nchunks; j++) {
      uint16_t c = 0;
      if (tsdb_xor_num_samples(rs[i].chunks[j].data, rs[i].chunks[j].len, &c) == 0) total += c;
    }
  }
  if (nch == 0) return 0; /* a series without samples is not a series */
  /* Lanes: each series' chunks, greedily split so that a lane's chunks do
   * not overlap. */
  rchunk ***lanes = orr_arena_calloc(scratch, nch, sizeof(*lanes));
  size_t *lane_n = orr_arena_calloc(scratch, nch, sizeof(*lane_n));
  if (!lanes || !lane_n) return ORR_ENOMEM;
  size_t nl = 0;
  for (size_t i = 0; i < n; i++) {
    qsort(rs[i].chunks, rs[i].nchunks, sizeof(rchunk), cmp_chunk);
    size_t first = nl;
    for (size_t j = 0; j < rs[i].nchunks; j++) {
      rchunk *c = &rs[i].chunks[j];
      size_t l;
      for (l = first; l < nl; l++)
        if (lane_n[l] == 0 || lanes[l][lane_n[l] - 1]->maxt < c->mint) break;
      if (l == nl) {
        lanes[nl] = orr_arena_calloc(scratch, rs[i].nchunks, sizeof(rchunk *));
        if (!lanes[nl]) return ORR_ENOMEM;
        nl++;
      }
      lanes[l][lane_n[l]++] = c;
    }
  }
  gw__replica *reps = orr_arena_calloc(scratch, nl, sizeof(*reps));
  promql_point *buf = orr_arena_calloc(scratch, total + 1, sizeof(promql_point));
  o->pts = orr_arena_calloc(op->a, total + 1, sizeof(promql_point));
  if (!reps || !buf || !o->pts) return ORR_ENOMEM;
  size_t used = 0;
  for (size_t l = 0; l < nl; l++) {
    long k = decode_lane(lanes[l], lane_n[l], buf + used);
    if (k < 0) return (int)k;
    reps[l].pts = buf + used;
    reps[l].n = (size_t)k;
    used += (size_t)k;
  }
  long k;
  if (op->req.dedup || nl == 1) {
    k = gw__dedup(reps, nl, op->req.dedup && gw__is_counter_func(op->req.func), op->req.mint,
                  op->req.maxt, scratch, o->pts);
    if (k < 0) return (int)k;
  } else {
    /* Not deduplicating: the union by timestamp, the earliest lane winning
     * on equal timestamps (the chain merge of Prometheus's storage). */
    size_t *pos = orr_arena_calloc(scratch, nl, sizeof(size_t));
    if (!pos) return ORR_ENOMEM;
    size_t m = 0;
    for (;;) {
      size_t best = nl;
      for (size_t l = 0; l < nl; l++)
        if (pos[l] < reps[l].n && (best == nl || reps[l].pts[pos[l]].t < reps[best].pts[pos[best]].t))
          best = l;
      if (best == nl) break;
      promql_point p = reps[best].pts[pos[best]];
      for (size_t l = 0; l < nl; l++)
        while (pos[l] < reps[l].n && reps[l].pts[pos[l]].t == p.t) pos[l]++;
      if (p.t >= op->req.mint && p.t <= op->req.maxt) o->pts[m++] = p;
    }
    k = (long)m;
  }
  if (k == 0) return 0;
  o->n = (size_t)k;
  op->nout++;
  return 0;
}

static void work_cb(uv_work_t *w) {
  gw_op *op = w->data;
  if (op->cancelled || op->err) return;
  orr_arena *scratch = orr_arena_new(0);
  op->out = orr_arena_calloc(op->a, op->nrs + 1, sizeof(outseries));
  if (!scratch || !op->out) {
    op->err = ORR_ENOMEM;
    orr_arena_destroy(scratch);
    return;
  }
  qsort(op->rs, op->nrs, sizeof(rseries), cmp_rs);
  for (size_t i = 0; i < op->nrs && !op->cancelled;) {
    size_t j = i + 1;
    while (j < op->nrs && labels_equal(&op->rs[i].ls, &op->rs[j].ls)) j++;
    int rc = process_group(op, op->rs + i, j - i, scratch);
    orr_arena_reset(scratch);
    if (rc) {
      op->err = rc;
      op->errmsg = orr_arena_sprintf(op->a, "decoding series: %s", orr_strerror(rc));
      break;
    }
    i = j;
  }
  orr_arena_destroy(scratch);
}

static void after_work_cb(uv_work_t *w, int status) {
  gw_op *op = w->data;
  (void)status;
  for (size_t i = 0; !op->err && !op->cancelled && i < op->nout; i++) {
    if (!op->cb.series) break;
    int rc = op->cb.series(op->cb.arg, &op->out[i].ls, op->out[i].pts, op->out[i].n);
    if (rc) {
      op->err = rc;
      op->errmsg = orr_arena_sprintf(op->a, "series consumer stopped: %s", orr_strerror(rc));
    }
  }
  op_complete(op);
}

/* Always through the work queue (work_cb does nothing after an error), so
 * that done never runs inside gw_select(). */
static void fetch_finished(gw_op *op) {
  op_unlink(op);
  op->state = OP_PROCESS;
  op->work.data = op;
  if (uv_queue_work(op->loop, &op->work, work_cb, after_work_cb)) {
    op->err = ORR_EINTERNAL;
    op_complete(op);
  }
}

/* ---------------------------------------------------------------- fetch */
static void cancel_live(gw_op *op, bool deadline) {
  for (size_t i = 0; i < op->neps; i++) {
    target *t = &op->t[i];
    if (!t->live || !t->call) continue;
    if (deadline) t->deadline = true;
    storeapi_client_series_cancel(t->call);
  }
}

static void op_fail(gw_op *op, int err, const char *msg) {
  if (op->err) return;
  op->err = err;
  op->errmsg = orr_arena_strdup(op->a, msg);
  cancel_live(op, false);
}

static void warn(gw_op *op, const char *msg) {
  if (op->cb.warning) op->cb.warning(op->cb.arg, msg);
}

static int on_series(const Thanos__SeriesResponse *r, void *arg) {
  target *t = arg;
  gw_op *op = t->op;
  t->last_msg_ms = orr_now_ms();
  if (op->err || op->cancelled) return 0;
  if (r->result_case == THANOS__SERIES_RESPONSE__RESULT_WARNING) {
    const char *m = orr_arena_sprintf(op->a, "receive series from Addr: %s LabelSets: %s: %s",
                                      t->ep->address, t->lsets, r->warning);
    if (!m) op_fail(op, ORR_ENOMEM, "out of memory");
    else if (op->partial) warn(op, m);
    else op_fail(op, ORR_EUNAVAILABLE, m);
    return 0;
  }
  if (r->result_case != THANOS__SERIES_RESPONSE__RESULT_SERIES || !r->series) return 0;
  const Thanos__Series *s = r->series;
  orr_arena *tmp = orr_arena_new(1024);
  labels_set ls;
  if (!tmp || storeapi_labels_from_proto(s->labels, s->n_labels, tmp, &ls)) {
    orr_arena_destroy(tmp);
    const char *m = orr_arena_sprintf(op->a, "receive series from Addr: %s: invalid labels",
                                      t->ep->address);
    op_fail(op, ORR_EPROTO, m ? m : "invalid labels");
    return 0;
  }
  if (op->nrs == op->caprs) {
    size_t nc = op->caprs ? op->caprs * 2 : 64;
    rseries *nv = realloc(op->rs, nc * sizeof(*nv));
    if (!nv) {
      orr_arena_destroy(tmp);
      op_fail(op, ORR_ENOMEM, "out of memory");
      return 0;
    }
    op->rs = nv;
    op->caprs = nc;
  }
  rseries *o = &op->rs[op->nrs];
  memset(o, 0, sizeof(*o));
  o->order = op->nrs;
  int rc = strip_copy(op->a, &ls, op->req.dedup ? op->replica : NULL,
                      op->req.dedup ? op->nreplica : 0, &o->ls);
  orr_arena_destroy(tmp);
  if (rc) {
    op_fail(op, rc, "out of memory");
    return 0;
  }
  o->chunks = orr_arena_calloc(op->a, s->n_chunks + 1, sizeof(rchunk));
  if (!o->chunks) {
    op_fail(op, ORR_ENOMEM, "out of memory");
    return 0;
  }
  for (size_t i = 0; i < s->n_chunks; i++) {
    const Thanos__AggrChunk *c = s->chunks[i];
    const Thanos__Chunk *raw = c->raw;
    if (!raw || raw->type != THANOS__CHUNK__ENCODING__XOR) continue; /* aggregates: not yet */
    uint16_t ns = 0;
    if (tsdb_xor_num_samples(raw->data.data, raw->data.len, &ns)) continue;
    op->samples += ns;
    if (op->req.max_samples > 0 && op->samples > op->req.max_samples) {
      op_fail(op, ORR_ELIMIT,
              "query processing would load too many samples into memory in query execution");
      return 0;
    }
    rchunk *rc2 = &o->chunks[o->nchunks];
    rc2->mint = c->min_time;
    rc2->maxt = c->max_time;
    rc2->len = raw->data.len;
    uint8_t *d = orr_arena_alloc(op->a, raw->data.len + 1);
    if (!d) {
      op_fail(op, ORR_ENOMEM, "out of memory");
      return 0;
    }
    memcpy(d, raw->data.data, raw->data.len);
    rc2->data = d;
    o->nchunks++;
  }
  op->nrs++;
  return 0;
}

static void on_series_done(int status, const char *message, void *arg) {
  target *t = arg;
  gw_op *op = t->op;
  t->live = false;
  t->call = NULL;
  if (status != NET_GRPC_OK && !op->cancelled) {
    const char *code = grpc_code_name(status);
    const char *desc = message ? message : "";
    char buf[160];
    if (t->timed_out) {
      char d[48];
      code = "DeadlineExceeded";
      snprintf(buf, sizeof(buf), "no data received for %s (store.response-timeout)",
               orr_format_duration(op->resp_timeout_ms, d, sizeof(d)));
      desc = buf;
    } else if (t->deadline) {
      code = "DeadlineExceeded";
      desc = "context deadline exceeded";
    }
    const char *m = orr_arena_sprintf(op->a,
                                      "receive series from Addr: %s LabelSets: %s: rpc error: "
                                      "code = %s desc = %s",
                                      t->ep->address, t->lsets, code, desc);
    if (!m) m = "out of memory";
    if (op->partial && !op->err) {
      warn(op, m);
    } else {
      bool timeout = t->deadline || status == NET_GRPC_DEADLINE_EXCEEDED;
      op_fail(op, timeout ? ORR_ETIMEOUT : ORR_EUNAVAILABLE, m);
    }
  }
  if (--op->pending == 0) fetch_finished(op);
}

static void op_check(gw_op *op, int64_t now) {
  if (now >= op->deadline_ms) {
    cancel_live(op, true);
    return;
  }
  if (op->resp_timeout_ms > 0)
    for (size_t i = 0; i < op->neps; i++) {
      target *t = &op->t[i];
      if (t->live && t->call && !t->timed_out && !t->deadline &&
          now - t->last_msg_ms >= op->resp_timeout_ms) {
        t->timed_out = true;
        storeapi_client_series_cancel(t->call);
      }
    }
}

static void optimer_cb(uv_timer_t *h) {
  gw *g = h->data;
  int64_t now = orr_now_ms();
  for (gw_op *op = g->ops; op; op = op->next) op_check(op, now);
}

int gw__ops_init(gw *g) {
  if (uv_timer_init(g->loop, &g->optimer)) return ORR_ENOMEM;
  g->optimer.data = g;
  return 0;
}

void gw__ops_close(gw *g, uv_close_cb cb) {
  while (g->ops) {
    gw_op *op = g->ops;
    op_unlink(op);
    gw_op_cancel(op);
  }
  uv_timer_stop(&g->optimer);
  uv_close((uv_handle_t *)&g->optimer, cb);
}

static int build_request(gw_op *op, Thanos__SeriesRequest *r) {
  thanos__series_request__init(r);
  r->min_time = op->req.mint;
  r->max_time = op->req.maxt;
  if (storeapi_matchers_to_proto(op->req.matchers, op->req.nmatchers, op->a, &r->matchers))
    return ORR_ENOMEM;
  r->n_matchers = op->req.nmatchers;
  r->max_resolution_window = op->req.max_resolution_ms;
  r->partial_response_disabled = !op->partial;
  r->partial_response_strategy =
      op->partial ? THANOS__PARTIAL_RESPONSE_STRATEGY__WARN : THANOS__PARTIAL_RESPONSE_STRATEGY__ABORT;
  r->skip_chunks = op->req.skip_chunks;
  Thanos__QueryHints *qh = orr_arena_alloc(op->a, sizeof(*qh));
  if (!qh) return ORR_ENOMEM;
  thanos__query_hints__init(qh);
  qh->step_millis = op->req.step_ms;
  if (op->req.func) {
    Thanos__Func *f = orr_arena_alloc(op->a, sizeof(*f));
    if (!f) return ORR_ENOMEM;
    thanos__func__init(f);
    f->name = (char *)op->req.func;
    qh->func = f;
  }
  if (op->req.ngrouping || op->req.by) {
    Thanos__Grouping *gr = orr_arena_alloc(op->a, sizeof(*gr));
    if (!gr) return ORR_ENOMEM;
    thanos__grouping__init(gr);
    gr->by = op->req.by;
    gr->labels = (char **)op->req.grouping;
    gr->n_labels = op->req.ngrouping;
    qh->grouping = gr;
  }
  r->query_hints = qh;
  r->step = op->req.step_ms;
  if (op->req.dedup) {
    r->without_replica_labels = op->replica;
    r->n_without_replica_labels = op->nreplica;
  }
  return 0;
}

int gw_select(gw *g, const gw_select_req *req, const gw_select_cb *cb, gw_op **out) {
  return gw__select_ex(g, req, cb, out, NULL, 0);
}

int gw__select_ex(gw *g, const gw_select_req *req, const gw_select_cb *cb, gw_op **out,
                  const char *const *rl, size_t nrl) {
  gw_op *op = calloc(1, sizeof(*op));
  if (!op) return ORR_ENOMEM;
  op->a = orr_arena_new(0);
  if (!op->a) {
    free(op);
    return ORR_ENOMEM;
  }
  op->req = *req;
  op->cb = *cb;
  op->partial = req->partial_response < 0 ? g->cfg.partial_response : req->partial_response != 0;
  int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : g->cfg.query_timeout_ms;
  int64_t now = orr_now_ms();
  op->deadline_ms = now + timeout;
  op->resp_timeout_ms = g->cfg.store_response_timeout_ms;
  if (req->func && !(op->req.func = orr_arena_strdup(op->a, req->func))) goto oom;
  if (!rl) {
    rl = g->cfg.replica_labels;
    nrl = g->cfg.nreplica_labels;
  }
  op->nreplica = nrl;
  op->replica = orr_arena_calloc(op->a, op->nreplica + 1, sizeof(char *));
  if (!op->replica) goto oom;
  for (size_t i = 0; i < op->nreplica; i++)
    if (!(op->replica[i] = orr_arena_strdup(op->a, rl[i]))) goto oom;
  if (gw__targets(g, req->mint, req->maxt, req->matchers, req->nmatchers, &op->eps, &op->neps))
    goto oom;
  op->t = calloc(op->neps + 1, sizeof(target));
  if (!op->t) goto oom;
  Thanos__SeriesRequest sr;
  if (build_request(op, &sr)) goto oom;
  op->loop = g->loop;
  op->g = g;
  op->next = g->ops;
  if (g->ops) g->ops->prev = op;
  else uv_timer_start(&g->optimer, optimer_cb, 50, 50);
  g->ops = op;
  for (size_t i = 0; i < op->neps; i++) {
    target *t = &op->t[i];
    t->op = op;
    t->ep = op->eps[i];
    t->lsets = gw__endpoint_lsets_text(g, t->ep, op->a);
    t->last_msg_ms = now;
    if (!t->lsets) t->lsets = "";
    int rc = storeapi_client_series(t->ep->client, &sr, timeout, on_series, on_series_done, t,
                                    &t->call);
    if (rc) {
      const char *m = orr_arena_sprintf(op->a, "receive series from Addr: %s: %s",
                                        t->ep->address, orr_strerror(rc));
      if (op->partial) warn(op, m ? m : "out of memory");
      else op_fail(op, rc, m ? m : "out of memory");
      continue;
    }
    t->live = true;
    op->pending++;
  }
  if (out) *out = op;
  if (op->pending == 0) fetch_finished(op); /* completes through the work queue */
  return 0;
oom:
  op_free(op);
  return ORR_ENOMEM;
}

void gw_op_cancel(gw_op *op) {
  if (op->state == OP_DONE || op->cancelled) return;
  op->cancelled = true;
  if (op->state == OP_FETCH) cancel_live(op, false);
}

/* ================================================================ labels */
typedef struct lop lop;
typedef struct ltarget {
  lop *op;
  gw__endpoint *ep;
  const char *lsets;
} ltarget;

struct lop {
  gw_labels_req req;
  gw_labels_fn fn;
  void *arg;
  orr_arena *a;
  bool partial;
  char **replica;
  size_t nreplica;
  gw__endpoint **eps;
  size_t neps;
  ltarget *t;
  size_t pending;
  const char **vals;
  size_t nvals, capvals;
  const char **warns;
  size_t nwarns, capwarns;
  int err;
  char *errmsg;
  uv_work_t work;
  uv_loop_t *loop;
};

static int push_str(orr_arena *a, const char ***v, size_t *n, size_t *cap, const char *s) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    const char **nv = realloc(*v, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    *v = nv;
    *cap = nc;
  }
  if (!((*v)[*n] = orr_arena_strdup(a, s))) return ORR_ENOMEM;
  (*n)++;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void lwork(uv_work_t *w) {
  lop *op = w->data;
  if (op->err) return;
  qsort(op->vals, op->nvals, sizeof(char *), cmp_str);
  size_t k = 0;
  for (size_t i = 0; i < op->nvals; i++) {
    if (k && !strcmp(op->vals[k - 1], op->vals[i])) continue;
    if (!op->req.name && op->req.dedup && is_replica(op->replica, op->nreplica, op->vals[i]))
      continue;
    op->vals[k++] = op->vals[i];
  }
  op->nvals = k;
  if (op->req.limit > 0 && op->nvals > (size_t)op->req.limit) op->nvals = (size_t)op->req.limit;
}

static void lafter(uv_work_t *w, int status) {
  lop *op = w->data;
  (void)status;
  op->fn(op->arg, op->err, op->err ? op->errmsg : "", op->err ? NULL : op->vals,
         op->err ? 0 : op->nvals, op->warns, op->nwarns);
  gw__targets_release(NULL, op->eps, op->neps);
  free(op->t);
  free(op->vals);
  free(op->warns);
  orr_arena_destroy(op->a);
  free(op);
}

static void lfinish(lop *op) {
  op->work.data = op;
  if (uv_queue_work(op->loop, &op->work, lwork, lafter)) {
    op->err = ORR_EINTERNAL;
    lafter(&op->work, 0);
  }
}

static void lfail_or_warn(lop *op, ltarget *t, int status, const char *message) {
  const char *what = op->req.name ? "label values" : "label names";
  const char *m = orr_arena_sprintf(op->a,
                                    "receive %s from Addr: %s LabelSets: %s: rpc error: code = "
                                    "%s desc = %s",
                                    what, t->ep->address, t->lsets, grpc_code_name(status),
                                    message ? message : "");
  if (!m) m = "out of memory";
  if (op->partial) {
    if (push_str(op->a, &op->warns, &op->nwarns, &op->capwarns, m)) op->err = ORR_ENOMEM;
  } else if (!op->err) {
    op->err = status == NET_GRPC_DEADLINE_EXCEEDED ? ORR_ETIMEOUT : ORR_EUNAVAILABLE;
    op->errmsg = (char *)m;
  }
}

static void ltarget_done(lop *op, ltarget *t, int status, const char *message, char **v,
                         size_t n, char **w, size_t nw) {
  if (status != NET_GRPC_OK) {
    lfail_or_warn(op, t, status, message);
  } else {
    for (size_t i = 0; i < n; i++)
      if (push_str(op->a, &op->vals, &op->nvals, &op->capvals, v[i])) op->err = ORR_ENOMEM;
    for (size_t i = 0; i < nw; i++) {
      if (op->partial) {
        if (push_str(op->a, &op->warns, &op->nwarns, &op->capwarns, w[i])) op->err = ORR_ENOMEM;
      } else if (!op->err) {
        op->err = ORR_EUNAVAILABLE;
        op->errmsg = orr_arena_strdup(op->a, w[i]);
      }
    }
  }
  if (--op->pending == 0) lfinish(op);
}

static void on_names(int status, const char *message, const Thanos__LabelNamesResponse *r,
                     void *arg) {
  ltarget *t = arg;
  ltarget_done(t->op, t, status, message, r ? r->names : NULL, r ? r->n_names : 0,
               r ? r->warnings : NULL, r ? r->n_warnings : 0);
}

static void on_values(int status, const char *message, const Thanos__LabelValuesResponse *r,
                      void *arg) {
  ltarget *t = arg;
  ltarget_done(t->op, t, status, message, r ? r->values : NULL, r ? r->n_values : 0,
               r ? r->warnings : NULL, r ? r->n_warnings : 0);
}

int gw_labels(gw *g, const gw_labels_req *req, gw_labels_fn fn, void *arg) {
  return gw__labels_ex(g, req, fn, arg, NULL, 0);
}

int gw__labels_ex(gw *g, const gw_labels_req *req, gw_labels_fn fn, void *arg,
                  const char *const *rl, size_t nrl) {
  lop *op = calloc(1, sizeof(*op));
  if (!op) return ORR_ENOMEM;
  op->a = orr_arena_new(0);
  if (!op->a) {
    free(op);
    return ORR_ENOMEM;
  }
  op->req = *req;
  op->fn = fn;
  op->arg = arg;
  op->loop = g->loop;
  op->partial = req->partial_response < 0 ? g->cfg.partial_response : req->partial_response != 0;
  int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : g->cfg.query_timeout_ms;
  /* A unary answer is all an endpoint sends: the response timeout bounds it. */
  if (g->cfg.store_response_timeout_ms > 0 && g->cfg.store_response_timeout_ms < timeout)
    timeout = g->cfg.store_response_timeout_ms;
  if (req->name && !(op->req.name = orr_arena_strdup(op->a, req->name))) goto oom;
  if (!rl) {
    rl = g->cfg.replica_labels;
    nrl = g->cfg.nreplica_labels;
  }
  op->nreplica = nrl;
  op->replica = orr_arena_calloc(op->a, op->nreplica + 1, sizeof(char *));
  if (!op->replica) goto oom;
  for (size_t i = 0; i < op->nreplica; i++)
    if (!(op->replica[i] = orr_arena_strdup(op->a, rl[i]))) goto oom;
  if (gw__targets(g, req->start, req->end, req->matchers, req->nmatchers, &op->eps, &op->neps))
    goto oom;
  op->t = calloc(op->neps + 1, sizeof(ltarget));
  Thanos__LabelMatcher **pm = NULL;
  if (!op->t || storeapi_matchers_to_proto(req->matchers, req->nmatchers, op->a, &pm)) goto oom;
  Thanos__LabelNamesRequest nr;
  Thanos__LabelValuesRequest vr;
  thanos__label_names_request__init(&nr);
  thanos__label_values_request__init(&vr);
  nr.start = vr.start = req->start;
  nr.end = vr.end = req->end;
  nr.partial_response_disabled = vr.partial_response_disabled = !op->partial;
  nr.partial_response_strategy = vr.partial_response_strategy =
      op->partial ? THANOS__PARTIAL_RESPONSE_STRATEGY__WARN : THANOS__PARTIAL_RESPONSE_STRATEGY__ABORT;
  nr.matchers = vr.matchers = pm;
  nr.n_matchers = vr.n_matchers = req->nmatchers;
  if (req->dedup) {
    nr.without_replica_labels = vr.without_replica_labels = op->replica;
    nr.n_without_replica_labels = vr.n_without_replica_labels = op->nreplica;
  }
  nr.limit = vr.limit = req->limit;
  vr.label = (char *)op->req.name;
  for (size_t i = 0; i < op->neps; i++) {
    ltarget *t = &op->t[i];
    t->op = op;
    t->ep = op->eps[i];
    t->lsets = gw__endpoint_lsets_text(g, t->ep, op->a);
    if (!t->lsets) t->lsets = "";
    int rc = req->name ? storeapi_client_label_values(t->ep->client, &vr, timeout, on_values, t)
                       : storeapi_client_label_names(t->ep->client, &nr, timeout, on_names, t);
    if (rc) {
      lfail_or_warn(op, t, NET_GRPC_INTERNAL, orr_strerror(rc));
      continue;
    }
    op->pending++;
  }
  if (op->pending == 0) lfinish(op);
  return 0;
oom:
  gw__targets_release(NULL, op->eps, op->neps);
  free(op->t);
  orr_arena_destroy(op->a);
  free(op);
  return ORR_ENOMEM;
}

/* ================================================================ sync bridge */
/* A request from a thread other than the loop's: queued under qmu, started
 * by the async handle's callback on the loop, waited for on a condition. */
typedef struct gw__sync {
  struct gw__sync *next;
  gw *g;
  bool labels;
  gw_select_req sreq;
  gw_select_cb ucb; /* the caller's */
  gw_labels_req lreq;
  orr_arena *la;
  const char ***lvals;
  size_t *lnvals;
  const char ***lwarns;
  size_t *lnwarns;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  int rc;
  char err[512];
} gw__sync;

static void sync_signal(gw__sync *s, int rc, const char *msg) {
  pthread_mutex_lock(&s->mu);
  s->rc = rc;
  snprintf(s->err, sizeof(s->err), "%s", msg ? msg : "");
  s->done = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void sync_select_done(void *arg, int err, const char *msg) {
  gw__sync *s = arg;
  sync_signal(s, err, msg);
}

static int sync_series(void *arg, const labels_set *ls, const promql_point *p, size_t n) {
  gw__sync *s = arg;
  return s->ucb.series ? s->ucb.series(s->ucb.arg, ls, p, n) : 0;
}

static void sync_warning(void *arg, const char *msg) {
  gw__sync *s = arg;
  if (s->ucb.warning) s->ucb.warning(s->ucb.arg, msg);
}

static char **copy_strs(orr_arena *a, const char *const *v, size_t n) {
  char **o = orr_arena_calloc(a, n + 1, sizeof(char *));
  for (size_t i = 0; o && i < n; i++)
    if (!(o[i] = orr_arena_strdup(a, v[i]))) return NULL;
  return o;
}

static void sync_labels_done(void *arg, int err, const char *msg, const char *const *values,
                             size_t n, const char *const *warnings, size_t nw) {
  gw__sync *s = arg;
  if (!err) {
    *s->lvals = (const char **)copy_strs(s->la, values, n);
    *s->lnvals = n;
    if (!*s->lvals) err = ORR_ENOMEM;
  }
  *s->lwarns = (const char **)copy_strs(s->la, warnings, nw);
  *s->lnwarns = *s->lwarns ? nw : 0;
  sync_signal(s, err, msg);
}

static void async_cb(uv_async_t *h) {
  gw *g = h->data;
  pthread_mutex_lock(&g->qmu);
  gw__sync *q = g->queue;
  g->queue = NULL;
  pthread_mutex_unlock(&g->qmu);
  while (q) {
    gw__sync *s = q;
    q = q->next;
    int rc;
    if (s->labels) {
      rc = gw_labels(g, &s->lreq, sync_labels_done, s);
    } else {
      gw_select_cb cb = {sync_series, sync_warning, sync_select_done, s};
      rc = gw_select(g, &s->sreq, &cb, NULL);
    }
    if (rc) sync_signal(s, rc, orr_strerror(rc));
  }
}

int gw__sync_init(gw *g) {
  if (uv_async_init(g->loop, &g->async, async_cb)) return ORR_ENOMEM;
  g->async.data = g;
  return 0;
}

void gw__sync_close(gw *g, uv_close_cb cb) {
  pthread_mutex_lock(&g->qmu);
  gw__sync *q = g->queue;
  g->queue = NULL;
  pthread_mutex_unlock(&g->qmu);
  while (q) {
    gw__sync *s = q;
    q = q->next;
    sync_signal(s, ORR_ECANCELED, "the gateway is shutting down");
  }
  uv_close((uv_handle_t *)&g->async, cb);
}

static int sync_run(gw *g, gw__sync *s, char *err, size_t errlen) {
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->g = g;
  pthread_mutex_lock(&g->qmu);
  bool closing = g->closing;
  if (!closing) {
    s->next = g->queue;
    g->queue = s;
  }
  pthread_mutex_unlock(&g->qmu);
  if (closing) {
    s->rc = ORR_ECANCELED;
    snprintf(s->err, sizeof(s->err), "the gateway is shutting down");
  } else {
    uv_async_send(&g->async);
    pthread_mutex_lock(&s->mu);
    while (!s->done) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
  }
  if (err && errlen) snprintf(err, errlen, "%s", s->err);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  return s->rc;
}

int gw_select_sync(gw *g, const gw_select_req *req, const gw_select_cb *cb, char *err,
                   size_t errlen) {
  gw__sync s;
  memset(&s, 0, sizeof(s));
  s.sreq = *req;
  s.ucb = *cb;
  return sync_run(g, &s, err, errlen);
}

int gw_labels_sync(gw *g, const gw_labels_req *req, orr_arena *a, const char ***values,
                   size_t *n, const char ***warnings, size_t *nwarnings, char *err,
                   size_t errlen) {
  gw__sync s;
  memset(&s, 0, sizeof(s));
  s.labels = true;
  s.lreq = *req;
  s.la = a;
  *values = NULL;
  *n = 0;
  *warnings = NULL;
  *nwarnings = 0;
  s.lvals = values;
  s.lnvals = n;
  s.lwarns = warnings;
  s.lnwarns = nwarnings;
  return sync_run(g, &s, err, errlen);
}
