/* client.c: a StoreAPI client — Info, LabelNames, LabelValues (unary),
 * Series (streaming, with backpressure) and the Query API's Query and
 * QueryRange (streaming) — over net_grpc_client, decoding each response
 * with protobuf-c, or over an in-process backend (local.c). */
#include <stdlib.h>
#include <string.h>

#include "storeapi_int.h"

struct storeapi_client {
  net_grpc_client *g;    /* gRPC, or */
  storeapi__local *loc;  /* in-process */
  const char *const *md; /* sent with every call (borrowed), or NULL */
  orr_series *rx;        /* received message bytes (borrowed), or NULL */
};

/* A gRPC message of |len| bytes arrived: count it with its 5-byte prefix. */
static void count_rx(orr_series *rx, size_t len) {
  if (rx) orr_counter_add(rx, (double)len + 5);
}

typedef struct storeapi_unary unary_call;

int storeapi_client_new(uv_loop_t *loop, const char *host, int port, storeapi_client **out) {
  storeapi_client *c = calloc(1, sizeof(*c));
  if (!c) return ORR_ENOMEM;
  int rc = net_grpc_client_new(loop, host, port, &c->g);
  if (rc) {
    free(c);
    return rc;
  }
  *out = c;
  return 0;
}

int storeapi_client_new_local(uv_loop_t *loop, const storeapi_backend *b,
                              storeapi_client **out) {
  storeapi_client *c = calloc(1, sizeof(*c));
  if (!c) return ORR_ENOMEM;
  int rc = storeapi__local_new(loop, b, &c->loc);
  if (rc) {
    free(c);
    return rc;
  }
  *out = c;
  return 0;
}

bool storeapi_client_is_local(const storeapi_client *c) { return c->loc != NULL; }

int storeapi_client_new_tls(uv_loop_t *loop, const char *host, int port, net_tls_ctx *tls,
                            storeapi_client **out) {
  int rc = storeapi_client_new(loop, host, port, out);
  if (rc == 0 && tls) net_grpc_client_set_tls((*out)->g, tls);
  return rc;
}

void storeapi_client_close(storeapi_client *c, void (*on_closed)(void *arg), void *arg) {
  if (c->loc)
    storeapi__local_close(c->loc, on_closed, arg);
  else
    net_grpc_client_close(c->g, on_closed, arg);
  free(c);
}

static const ProtobufCMessageDescriptor *unary_desc(int kind) {
  return kind == 0   ? &thanos__info__info_response__descriptor
         : kind == 1 ? &thanos__label_names_response__descriptor
                     : &thanos__label_values_response__descriptor;
}

static int unary_msg(net_grpc_ccall *cc, const uint8_t *msg, size_t len, void *arg) {
  unary_call *u = arg;
  count_rx(u->rx, len);
  if (u->resp) protobuf_c_message_free_unpacked(u->resp, NULL);
  u->resp = protobuf_c_message_unpack(unary_desc(u->kind), NULL, len, msg);
  if (!u->resp) u->bad = 1;
  return 0;
}

static void unary_done(net_grpc_ccall *cc, int status, const char *message, void *arg) {
  unary_call *u = arg;
  if (status == NET_GRPC_OK && (u->bad || !u->resp)) {
    status = NET_GRPC_INTERNAL;
    message = u->bad ? "cannot decode response" : "no response message";
  }
  const void *r = status == NET_GRPC_OK ? u->resp : NULL;
  switch (u->kind) {
  case 0: ((storeapi_info_fn)u->cb)(status, message, r, u->arg); break;
  case 1: ((storeapi_label_names_fn)u->cb)(status, message, r, u->arg); break;
  default: ((storeapi_label_values_fn)u->cb)(status, message, r, u->arg); break;
  }
  if (u->resp) protobuf_c_message_free_unpacked(u->resp, NULL);
  free(u);
}

static int unary(storeapi_client *c, const char *path, int kind, const ProtobufCMessage *req,
                 int64_t timeout_ms, void *cb, void *arg, unary_call **out) {
  if (c->loc) {
    unary_call t = {0};
    t.kind = kind;
    t.cb = cb;
    t.arg = arg;
    static const int methods[] = {STOREAPI__M_INFO, STOREAPI__M_LABEL_NAMES,
                                  STOREAPI__M_LABEL_VALUES};
    unary_call *u = NULL;
    int rc = storeapi__local_call(c->loc, methods[kind], req, timeout_ms, NULL, &t, NULL, &u);
    if (rc == 0 && out) *out = u;
    return rc;
  }
  unary_call *u = calloc(1, sizeof(*u));
  orr_buf b = {0};
  if (!u || storeapi__pack(req, &b)) {
    free(u);
    orr_buf_free(&b);
    return ORR_ENOMEM;
  }
  u->kind = kind;
  u->cb = cb;
  u->arg = arg;
  u->rx = c->rx;
  net_grpc_call_opts o = {0};
  o.timeout_ms = timeout_ms;
  o.unary = 1;
  o.max_recv_msg = 64u << 20;
  o.metadata = c->md;
  int rc = net_grpc_client_call(c->g, path, b.data ? b.data : "", b.len, &o, unary_msg,
                                unary_done, u, &u->cc);
  orr_buf_free(&b);
  if (rc) free(u);
  else if (out) *out = u;
  return rc;
}

void storeapi_unary_cancel(storeapi_unary *u) {
  if (u->lc)
    storeapi__local_cancel(u->lc);
  else
    net_grpc_ccall_cancel(u->cc);
}

int storeapi_client_info(storeapi_client *c, int64_t timeout_ms, storeapi_info_fn cb, void *arg) {
  return storeapi_client_info_ex(c, timeout_ms, cb, arg, NULL);
}

int storeapi_client_info_ex(storeapi_client *c, int64_t timeout_ms, storeapi_info_fn cb, void *arg,
                            storeapi_unary **out) {
  Thanos__Info__InfoRequest req = THANOS__INFO__INFO_REQUEST__INIT;
  return unary(c, STOREAPI_PATH_INFO, 0, &req.base, timeout_ms, (void *)cb, arg,
               (unary_call **)out);
}

int storeapi_client_label_names(storeapi_client *c, const Thanos__LabelNamesRequest *req,
                                int64_t timeout_ms, storeapi_label_names_fn cb, void *arg) {
  return storeapi_client_label_names_ex(c, req, timeout_ms, cb, arg, NULL);
}

int storeapi_client_label_values(storeapi_client *c, const Thanos__LabelValuesRequest *req,
                                 int64_t timeout_ms, storeapi_label_values_fn cb, void *arg) {
  return storeapi_client_label_values_ex(c, req, timeout_ms, cb, arg, NULL);
}

int storeapi_client_label_names_ex(storeapi_client *c, const Thanos__LabelNamesRequest *req,
                                   int64_t timeout_ms, storeapi_label_names_fn cb, void *arg,
                                   storeapi_unary **out) {
  return unary(c, STOREAPI_PATH_LABEL_NAMES, 1, &req->base, timeout_ms, (void *)cb, arg,
               (unary_call **)out);
}

int storeapi_client_label_values_ex(storeapi_client *c, const Thanos__LabelValuesRequest *req,
                                    int64_t timeout_ms, storeapi_label_values_fn cb, void *arg,
                                    storeapi_unary **out) {
  return unary(c, STOREAPI_PATH_LABEL_VALUES, 2, &req->base, timeout_ms, (void *)cb, arg,
               (unary_call **)out);
}

/* Reads a protobuf varint at |*p|; false when it runs past |end|. */
static bool rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

/* Whether a label name or value on the path |top| → labels(1) →
 * Label.name(1)/value(2) holds a NUL byte: SeriesResponse.series(1) →
 * Series, QueryResponse.timeseries(2) → TimeSeries (|depth| 0 at the top).
 * protobuf-c hands strings over NUL-terminated, so a NUL inside a label
 * would silently cut it (and two series could merge). A Series response the
 * fast decoder (fastdec.c) takes has its verdict from that decoder. */
bool storeapi__has_nul_label(const uint8_t *p, const uint8_t *end, int depth, unsigned top) {
  while (p < end) {
    uint64_t key, len;
    if (!rd_varint(&p, end, &key)) return false;
    unsigned wt = key & 7, field = (unsigned)(key >> 3);
    if (wt == 0) {
      if (!rd_varint(&p, end, &len)) return false;
      continue;
    }
    if (wt == 1 || wt == 5) {
      p += wt == 1 ? 8 : 4;
      continue;
    }
    if (wt != 2 || !rd_varint(&p, end, &len) || len > (uint64_t)(end - p)) return false;
    if (depth < 2 && field == (depth ? 1u : top) &&
        storeapi__has_nul_label(p, p + len, depth + 1, top))
      return true;
    if (depth == 2 && (field == 1 || field == 2) && memchr(p, 0, len)) return true;
    p += len;
  }
  return false;
}

/* The refusal both decoders (series_msg, query_msg) share: a message protobuf-c
 * could not take (|r| NULL), or whose series result holds a NUL in a label
 * (|nul|), marks the call bad and cancels it; query_done/series_done then report
 * it. Returns true when the caller must drop the message (|r| is freed). */
static bool refuse_msg(net_grpc_ccall *cc, ProtobufCMessage *r, ProtobufCAllocator *a, bool nul,
                       int *bad, const char **why) {
  if (r && !nul) return false;
  if (r) {
    protobuf_c_message_free_unpacked(r, a);
    *why = "a label name or value holds a NUL byte";
  }
  *bad = 1;
  net_grpc_ccall_cancel(cc);
  return true;
}

/* Packs |req| and starts the call both the Series and Query APIs make (one
 * request, a stream of responses), with the client's metadata and limits. */
static int start_call(storeapi_client *c, const char *path, const ProtobufCMessage *req,
                      const storeapi_packed *packed, int64_t timeout_ms, net_grpc_msg_fn on_msg,
                      net_grpc_done_fn on_done, void *arg, net_grpc_ccall **cc) {
  orr_buf b = {0};
  const void *data = packed ? packed->data : NULL;
  size_t len = packed ? packed->len : 0;
  if (!packed) {
    if (storeapi__pack(req, &b)) {
      orr_buf_free(&b);
      return ORR_ENOMEM;
    }
    data = b.data;
    len = b.len;
  }
  net_grpc_call_opts o = {0};
  o.timeout_ms = timeout_ms;
  o.max_recv_msg = 64u << 20;
  o.metadata = c->md;
  int rc = net_grpc_client_call(c->g, path, data ? data : "", len, &o, on_msg, on_done, arg, cc);
  orr_buf_free(&b);
  return rc;
}

int storeapi_packed_init(storeapi_packed *p, const Thanos__SeriesRequest *req) {
  orr_buf b = {0};
  if (storeapi__pack(&req->base, &b)) {
    orr_buf_free(&b);
    return ORR_ENOMEM;
  }
  p->data = b.data;
  p->len = b.len;
  return 0;
}

void storeapi_packed_free(storeapi_packed *p) {
  free(p->data);
  p->data = NULL;
  p->len = 0;
}

Thanos__SeriesResponse *storeapi__series_response_decode(ProtobufCAllocator *a,
                                                         const uint8_t *msg, size_t len,
                                                         bool *nul) {
  *nul = false;
  Thanos__SeriesResponse *r = storeapi__series_response_fast(a, msg, len, nul);
  if (r) return r;
  r = thanos__series_response__unpack(a, len, msg);
  *nul = r && r->result_case == THANOS__SERIES_RESPONSE__RESULT_SERIES &&
         storeapi__has_nul_label(msg, msg + len, 0, 1);
  return r;
}

static int series_msg(net_grpc_ccall *cc, const uint8_t *msg, size_t len, void *arg) {
  storeapi_series_call *sc = arg;
  count_rx(sc->rx, len);
  if (sc->bad) return 0;
  bool nul;
  Thanos__SeriesResponse *r = storeapi__series_response_decode(&sc->pool.a, msg, len, &nul);
  if (refuse_msg(cc, r ? &r->base : NULL, &sc->pool.a, nul, &sc->bad, &sc->why)) return 0;
  int rc = sc->on_series(r, sc->arg);
  thanos__series_response__free_unpacked(r, &sc->pool.a);
  return rc == NET_GRPC_PAUSE ? NET_GRPC_PAUSE : 0;
}

static void series_done(net_grpc_ccall *cc, int status, const char *message, void *arg) {
  storeapi_series_call *sc = arg;
  if (sc->bad) {
    status = NET_GRPC_INTERNAL;
    message = sc->why ? sc->why : "cannot decode SeriesResponse";
  }
  sc->on_done(status, message, sc->arg);
  storeapi__msg_pool_release(&sc->pool);
  orr_small_free(sc);
}

int storeapi_client_series(storeapi_client *c, const Thanos__SeriesRequest *req,
                           int64_t timeout_ms, storeapi_series_fn on_series,
                           storeapi_done_fn on_done, void *arg, storeapi_series_call **out) {
  return storeapi_client_series_packed(c, req, NULL, timeout_ms, on_series, on_done, arg, out);
}

int storeapi_client_series_packed(storeapi_client *c, const Thanos__SeriesRequest *req,
                                  const storeapi_packed *packed, int64_t timeout_ms,
                                  storeapi_series_fn on_series, storeapi_done_fn on_done,
                                  void *arg, storeapi_series_call **out) {
  if (c->loc) {
    storeapi_series_call t = {0};
    t.on_series = on_series;
    t.on_done = on_done;
    t.arg = arg;
    return storeapi__local_call(c->loc, STOREAPI__M_SERIES, &req->base, timeout_ms, &t, NULL,
                                out, NULL);
  }
  storeapi_series_call *sc = orr_small_calloc(1, sizeof(*sc)); /* one per endpoint and query */
  if (!sc) return ORR_ENOMEM;
  sc->on_series = on_series;
  sc->on_done = on_done;
  sc->arg = arg;
  sc->rx = c->rx;
  storeapi__msg_pool_init(&sc->pool);
  int rc = start_call(c, STOREAPI_PATH_SERIES, &req->base, packed, timeout_ms, series_msg,
                      series_done, sc, &sc->cc);
  if (rc) {
    orr_small_free(sc);
    return rc;
  }
  if (out) *out = sc;
  return 0;
}

void storeapi_client_set_metadata(storeapi_client *c, const char *const *md) {
  c->md = md;
  if (c->loc) storeapi__local_set_metadata(c->loc, md);
}

void storeapi_client_series_resume(storeapi_series_call *sc) {
  if (sc->lc)
    storeapi__local_resume(sc->lc);
  else
    net_grpc_ccall_resume(sc->cc);
}

void storeapi_client_series_cancel(storeapi_series_call *sc) {
  if (sc->lc)
    storeapi__local_cancel(sc->lc);
  else
    net_grpc_ccall_cancel(sc->cc);
}

void storeapi_client_set_received_counter(storeapi_client *c, orr_series *bytes) { c->rx = bytes; }

/* ---------------------------------------------------------------- Query API */
struct storeapi_query_call {
  net_grpc_ccall *cc;
  storeapi_timeseries_fn on_series;
  storeapi_warning_fn on_warning;
  storeapi_done_fn on_done;
  void *arg;
  orr_series *rx;
  int bad;         /* an undecodable message arrived: the call was cancelled */
  const char *why;
};

/* QueryResponse and QueryRangeResponse have one layout (warnings = 1,
 * timeseries = 2, stats = 3): one decoder serves both. */
static int query_msg(net_grpc_ccall *cc, const uint8_t *msg, size_t len, void *arg) {
  storeapi_query_call *qc = arg;
  count_rx(qc->rx, len);
  if (qc->bad) return 0;
  Thanos__QueryResponse *r = thanos__query_response__unpack(NULL, len, msg);
  if (refuse_msg(cc, r ? &r->base : NULL, NULL,
                 r && r->result_case == THANOS__QUERY_RESPONSE__RESULT_TIMESERIES &&
                     storeapi__has_nul_label(msg, msg + len, 0, 2),
                 &qc->bad, &qc->why))
    return 0;
  int rc = 0;
  if (r->result_case == THANOS__QUERY_RESPONSE__RESULT_TIMESERIES)
    rc = qc->on_series(r->timeseries, qc->arg);
  else if (r->result_case == THANOS__QUERY_RESPONSE__RESULT_WARNINGS && qc->on_warning)
    qc->on_warning(r->warnings, qc->arg);
  thanos__query_response__free_unpacked(r, NULL);
  if (rc) net_grpc_ccall_cancel(cc);
  return 0;
}

static void query_done(net_grpc_ccall *cc, int status, const char *message, void *arg) {
  (void)cc;
  storeapi_query_call *qc = arg;
  if (qc->bad) {
    status = NET_GRPC_INTERNAL;
    message = qc->why ? qc->why : "cannot decode QueryResponse";
  }
  qc->on_done(status, message, qc->arg);
  free(qc);
}

int storeapi_client_query(storeapi_client *c, const Thanos__QueryRequest *inst,
                          const Thanos__QueryRangeRequest *range, int64_t timeout_ms,
                          storeapi_timeseries_fn on_series, storeapi_warning_fn on_warning,
                          storeapi_done_fn on_done, void *arg, storeapi_query_call **out) {
  if (c->loc || (!inst == !range)) return ORR_EINVAL;
  storeapi_query_call *qc = calloc(1, sizeof(*qc));
  if (!qc) return ORR_ENOMEM;
  qc->on_series = on_series;
  qc->on_warning = on_warning;
  qc->on_done = on_done;
  qc->arg = arg;
  qc->rx = c->rx;
  int rc = start_call(c, inst ? STOREAPI_PATH_QUERY : STOREAPI_PATH_QUERY_RANGE,
                      inst ? &inst->base : &range->base, NULL, timeout_ms, query_msg, query_done,
                      qc, &qc->cc);
  if (rc) {
    free(qc);
    return rc;
  }
  if (out) *out = qc;
  return 0;
}

void storeapi_client_query_cancel(storeapi_query_call *qc) { net_grpc_ccall_cancel(qc->cc); }
