/* server.c: the StoreAPI service layer — decodes and validates requests,
 * hands them to a backend, streams Series responses with flow control and
 * counts calls. A call comes from net_grpc_server, or from an in-process
 * client (local.c): then |lc| is set and responses go to that client's
 * callbacks without encoding (one branch per send; the gRPC path is as
 * before).
 *
 * Design notes
 * 1. A call is ACTIVE (backend working) → FINISHING (backend finished while
 *    messages were still queued here) → released. CANCELLED can happen in
 *    either state; in ACTIVE the backend's cancel() is told and must finish.
 * 2. The layer holds the messages net_grpc refused with ORR_EAGAIN in a FIFO
 *    |pending|. While it is non-empty every send is queued and answered
 *    ORR_EAGAIN, so a backend that stops pulling on the first ORR_EAGAIN
 *    leaves at most the messages of one source piece here.
 * 3. on_writable drains |pending|; when it is empty the backend's resume()
 *    runs (if a send was refused), or the deferred finish happens. */
#include <stdlib.h>
#include <string.h>

#include "storeapi_int.h"

enum {
  M_SERIES = STOREAPI__M_SERIES,
  M_LABEL_NAMES = STOREAPI__M_LABEL_NAMES,
  M_LABEL_VALUES = STOREAPI__M_LABEL_VALUES,
  M_INFO = STOREAPI__M_INFO,
  M_COUNT
};
static const char *const method_names[M_COUNT] = {"Series", "LabelNames", "LabelValues", "Info"};

struct storeapi_server {
  storeapi_backend be;
  orr_metric *requests, *duration;
  orr_series *sent;
  orr_series *dur[M_COUNT];
};

typedef struct pending_msg {
  struct pending_msg *next;
  size_t len;
  uint8_t data[];
} pending_msg;

struct storeapi_call {
  storeapi_server *s;
  net_grpc_call *gc;     /* NULL for a local call */
  storeapi__lcall *lc;   /* the in-process client's call (local.c), else NULL */
  orr_arena *a;          /* the call's arena */
  int method;
  uint64_t start_ns;
  pending_msg *head, *tail;
  bool cancelled, finishing, want_resume;
  int fin_status;
  char *fin_msg;
  void *data;
  labels_matcher **ms;
  size_t nms;
};

int storeapi__pack(const ProtobufCMessage *m, orr_buf *out) {
  size_t n = protobuf_c_message_get_packed_size(m);
  if (orr_buf_reserve(out, n + 1)) return ORR_ENOMEM;
  protobuf_c_message_pack(m, (uint8_t *)out->data + out->len);
  out->len += n;
  return 0;
}

static void free_pending(storeapi_call *c) {
  while (c->head) {
    pending_msg *p = c->head;
    c->head = p->next;
    free(p);
  }
  c->tail = NULL;
}

static void release(storeapi_call *c, int status, const char *msg) {
  storeapi_server *s = c->s;
  free_pending(c);
  storeapi_matchers_free(c->ms, c->nms);
  c->ms = NULL;
  c->nms = 0;
  if (s->requests) {
    const char *lv[] = {method_names[c->method], net_grpc_status_name(status), NULL};
    orr_series *r = orr_metric_with(s->requests, lv);
    if (r) orr_counter_inc(r);
  }
  if (s->dur[c->method])
    orr_histogram_observe(s->dur[c->method], (double)(orr_mono_ns() - c->start_ns) / 1e9);
  if (c->lc) {
    storeapi__local_release(c->lc, status, msg); /* |c| lives until the local call is freed */
    return;
  }
  net_grpc_call_finish(c->gc, status, msg); /* frees c (arena) */
}

static void on_writable(net_grpc_call *gc, void *arg) {
  storeapi_call *c = arg;
  while (c->head) {
    int rc = net_grpc_call_send(gc, c->head->data, c->head->len);
    if (rc == ORR_EAGAIN) return;
    pending_msg *p = c->head;
    c->head = p->next;
    if (!c->head) c->tail = NULL;
    free(p);
    if (rc != 0) {
      free_pending(c);
      break;
    }
    if (c->s->sent) orr_counter_inc(c->s->sent);
  }
  if (c->finishing) {
    release(c, c->fin_status, c->fin_msg);
    return;
  }
  if (c->want_resume && !c->cancelled) {
    c->want_resume = false;
    if (c->s->be.resume) c->s->be.resume(c->s->be.arg, c);
  }
}

static void on_cancel(net_grpc_call *gc, int status, void *arg) {
  storeapi_call *c = arg;
  c->cancelled = true;
  free_pending(c);
  if (c->finishing) {
    release(c, c->fin_status, c->fin_msg);
    return;
  }
  if (c->s->be.cancel) c->s->be.cancel(c->s->be.arg, c);
}

static storeapi_call *call_new(storeapi_server *s, net_grpc_call *gc, int method) {
  storeapi_call *c = orr_arena_calloc(net_grpc_call_arena(gc), 1, sizeof(*c));
  if (!c) return NULL;
  c->s = s;
  c->gc = gc;
  c->a = net_grpc_call_arena(gc);
  c->method = method;
  c->start_ns = orr_mono_ns();
  net_grpc_call_set_callbacks(gc, on_writable, on_cancel, c);
  return c;
}

static void series_call(storeapi_server *s, storeapi_call *c, const uint8_t *req, size_t len);
static void labels_call(storeapi_server *s, storeapi_call *c, const uint8_t *req, size_t len,
                        int method);
static void info_call(storeapi_server *s, storeapi_call *c);

static void h_series(net_grpc_call *gc, const uint8_t *req, size_t len, void *arg) {
  storeapi_server *s = arg;
  storeapi_call *c = call_new(s, gc, M_SERIES);
  if (!c) {
    net_grpc_call_finish(gc, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  series_call(s, c, req, len);
}

static void series_call(storeapi_server *s, storeapi_call *c, const uint8_t *req, size_t len) {
  ProtobufCAllocator al = storeapi_arena_allocator(c->a);
  Thanos__SeriesRequest *m = thanos__series_request__unpack(&al, len, req);
  if (!m) {
    release(c, NET_GRPC_INVALID_ARGUMENT, "cannot decode SeriesRequest");
    return;
  }
  char err[512];
  int rc = storeapi_matchers_from_proto(m->matchers, m->n_matchers, c->a, &c->ms, err,
                                        sizeof(err));
  if (rc) {
    release(c, rc == ORR_EINVAL ? NET_GRPC_INVALID_ARGUMENT : NET_GRPC_RESOURCE_EXHAUSTED,
            rc == ORR_EINVAL ? err : "out of memory");
    return;
  }
  c->nms = m->n_matchers;
  if (m->min_time > m->max_time) {
    release(c, NET_GRPC_INVALID_ARGUMENT, "min_time is after max_time");
    return;
  }
  if (!s->be.series) {
    release(c, NET_GRPC_UNIMPLEMENTED, "Series is not served here");
    return;
  }
  storeapi_series_req r = {m, c->ms, c->nms};
  s->be.series(s->be.arg, c, &r);
}

static void h_labels(net_grpc_call *gc, const uint8_t *req, size_t len, int method,
                     storeapi_server *s) {
  storeapi_call *c = call_new(s, gc, method);
  if (!c) {
    net_grpc_call_finish(gc, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  labels_call(s, c, req, len, method);
}

static void labels_call(storeapi_server *s, storeapi_call *c, const uint8_t *req, size_t len,
                        int method) {
  ProtobufCAllocator al = storeapi_arena_allocator(c->a);
  storeapi_label_req r = {0};
  Thanos__LabelMatcher **pm;
  size_t npm;
  if (method == M_LABEL_NAMES) {
    Thanos__LabelNamesRequest *m = thanos__label_names_request__unpack(&al, len, req);
    if (!m) {
      release(c, NET_GRPC_INVALID_ARGUMENT, "cannot decode LabelNamesRequest");
      return;
    }
    r.start = m->start, r.end = m->end, r.limit = m->limit;
    r.without_replica_labels = m->without_replica_labels;
    r.nwithout = m->n_without_replica_labels;
    pm = m->matchers, npm = m->n_matchers;
  } else {
    Thanos__LabelValuesRequest *m = thanos__label_values_request__unpack(&al, len, req);
    if (!m) {
      release(c, NET_GRPC_INVALID_ARGUMENT, "cannot decode LabelValuesRequest");
      return;
    }
    if (!m->label || !m->label[0]) {
      release(c, NET_GRPC_INVALID_ARGUMENT, "label name parameter cannot be empty");
      return;
    }
    r.label = m->label;
    r.start = m->start, r.end = m->end, r.limit = m->limit;
    r.without_replica_labels = m->without_replica_labels;
    r.nwithout = m->n_without_replica_labels;
    pm = m->matchers, npm = m->n_matchers;
  }
  char err[512];
  int rc = storeapi_matchers_from_proto(pm, npm, c->a, &c->ms, err, sizeof(err));
  if (rc) {
    release(c, rc == ORR_EINVAL ? NET_GRPC_INVALID_ARGUMENT : NET_GRPC_RESOURCE_EXHAUSTED,
            rc == ORR_EINVAL ? err : "out of memory");
    return;
  }
  c->nms = npm;
  r.matchers = c->ms;
  r.nmatchers = c->nms;
  void (*fn)(void *, storeapi_call *, const storeapi_label_req *) =
      method == M_LABEL_NAMES ? s->be.label_names : s->be.label_values;
  if (!fn) {
    release(c, NET_GRPC_UNIMPLEMENTED, "method is not served here");
    return;
  }
  fn(s->be.arg, c, &r);
}

static void h_label_names(net_grpc_call *gc, const uint8_t *req, size_t len, void *arg) {
  h_labels(gc, req, len, M_LABEL_NAMES, arg);
}
static void h_label_values(net_grpc_call *gc, const uint8_t *req, size_t len, void *arg) {
  h_labels(gc, req, len, M_LABEL_VALUES, arg);
}

static void h_info(net_grpc_call *gc, const uint8_t *req, size_t len, void *arg) {
  storeapi_server *s = arg;
  storeapi_call *c = call_new(s, gc, M_INFO);
  if (!c) {
    net_grpc_call_finish(gc, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  info_call(s, c);
}

static void info_call(storeapi_server *s, storeapi_call *c) {
  if (!s->be.info) {
    release(c, NET_GRPC_UNIMPLEMENTED, "Info is not served here");
    return;
  }
  s->be.info(s->be.arg, c);
}

static const double duration_buckets[] = {0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

int storeapi_server_new(net_grpc_server *grpc, const storeapi_backend *backend, orr_registry *reg,
                        storeapi_server **out) {
  storeapi_server *s = calloc(1, sizeof(*s));
  if (!s) return ORR_ENOMEM;
  s->be = *backend;
  if (reg) {
    static const char *const req_labels[] = {"method", "status", NULL};
    static const char *const dur_labels[] = {"method", NULL};
    s->requests = orr_counter_new(reg, "orrery_storeapi_requests_total",
                                  "StoreAPI calls answered, by method and gRPC status.", req_labels);
    s->duration = orr_histogram_new(reg, "orrery_storeapi_request_duration_seconds",
                                    "Time from a StoreAPI request to its last response.",
                                    dur_labels, duration_buckets,
                                    sizeof(duration_buckets) / sizeof(duration_buckets[0]));
    orr_metric *sent = orr_counter_new(reg, "orrery_storeapi_series_sent_total",
                                       "Series messages sent in Series responses.", NULL);
    if (!s->requests || !s->duration || !sent) {
      free(s);
      return ORR_ENOMEM;
    }
    s->sent = orr_metric_series(sent);
    for (int i = 0; i < M_COUNT; i++) {
      const char *lv[] = {method_names[i], NULL};
      s->dur[i] = orr_metric_with(s->duration, lv);
    }
  }
  int rc;
  if ((rc = net_grpc_server_register(grpc, STOREAPI_PATH_SERIES, NET_GRPC_SERVER_STREAMING,
                                     h_series, s)) ||
      (rc = net_grpc_server_register(grpc, STOREAPI_PATH_LABEL_NAMES, NET_GRPC_UNARY,
                                     h_label_names, s)) ||
      (rc = net_grpc_server_register(grpc, STOREAPI_PATH_LABEL_VALUES, NET_GRPC_UNARY,
                                     h_label_values, s)) ||
      (rc = net_grpc_server_register(grpc, STOREAPI_PATH_INFO, NET_GRPC_UNARY, h_info, s))) {
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void storeapi_server_free(storeapi_server *s) { free(s); }

storeapi_server *storeapi__server_local(const storeapi_backend *backend) {
  storeapi_server *s = calloc(1, sizeof(*s));
  if (s) s->be = *backend;
  return s;
}

storeapi_call *storeapi__call_local(storeapi_server *s, storeapi__lcall *lc, orr_arena *a,
                                    int method) {
  storeapi_call *c = orr_arena_calloc(a, 1, sizeof(*c));
  if (!c) return NULL;
  c->s = s;
  c->lc = lc;
  c->a = a;
  c->method = method;
  c->start_ns = orr_mono_ns();
  return c;
}

void storeapi__call_dispatch(storeapi_call *c, const uint8_t *req, size_t len) {
  switch (c->method) {
  case M_SERIES: series_call(c->s, c, req, len); break;
  case M_INFO: info_call(c->s, c); break;
  default: labels_call(c->s, c, req, len, c->method); break;
  }
}

void storeapi__call_mark_cancelled(storeapi_call *c) { c->cancelled = true; }

void storeapi__call_cancel(storeapi_call *c) {
  c->cancelled = true;
  if (c->s->be.cancel) c->s->be.cancel(c->s->be.arg, c);
}

void storeapi__call_resume(storeapi_call *c) {
  if (c->cancelled) return;
  if (c->s->be.resume) c->s->be.resume(c->s->be.arg, c);
}

orr_arena *storeapi_call_arena(storeapi_call *c) { return c->a; }
void storeapi_call_set_data(storeapi_call *c, void *data) { c->data = data; }
void *storeapi_call_data(const storeapi_call *c) { return c->data; }
bool storeapi_call_cancelled(const storeapi_call *c) { return c->cancelled; }
const char *storeapi_call_peer(const storeapi_call *c) {
  return c->lc ? "local" : net_grpc_call_peer(c->gc);
}

static int send_packed(storeapi_call *c, const uint8_t *data, size_t len) {
  if (c->cancelled) return ORR_ECANCELED;
  if (!c->head) {
    int rc = net_grpc_call_send(c->gc, data, len);
    if (rc == 0) {
      if (c->s->sent) orr_counter_inc(c->s->sent);
      return 0;
    }
    if (rc != ORR_EAGAIN) return rc;
  }
  pending_msg *p = malloc(sizeof(*p) + len);
  if (!p) return ORR_ENOMEM;
  p->next = NULL;
  p->len = len;
  memcpy(p->data, data, len);
  if (c->tail)
    c->tail->next = p;
  else
    c->head = p;
  c->tail = p;
  c->want_resume = true;
  return ORR_EAGAIN;
}

static int send_response(storeapi_call *c, const Thanos__SeriesResponse *r) {
  if (c->lc) return c->cancelled ? ORR_ECANCELED : storeapi__local_send(c->lc, r);
  orr_buf b = {0};
  int rc = storeapi__pack(&r->base, &b);
  if (rc == 0) rc = send_packed(c, (const uint8_t *)b.data, b.len);
  orr_buf_free(&b);
  return rc;
}

int storeapi_call_send_series(storeapi_call *c, const Thanos__Series *s) {
  Thanos__SeriesResponse r = THANOS__SERIES_RESPONSE__INIT;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_SERIES;
  r.series = (Thanos__Series *)s;
  return send_response(c, &r);
}

int storeapi_call_send_packed(storeapi_call *c, const void *msg, size_t len) {
  if (c->lc) { /* an in-process client takes messages, not bytes */
    if (c->cancelled) return ORR_ECANCELED;
    Thanos__SeriesResponse *r = thanos__series_response__unpack(NULL, len, msg);
    if (!r) return ORR_ENOMEM;
    int rc = storeapi__local_send(c->lc, r);
    thanos__series_response__free_unpacked(r, NULL);
    return rc;
  }
  return send_packed(c, msg, len);
}

int storeapi_call_send_warning(storeapi_call *c, const char *warning) {
  Thanos__SeriesResponse r = THANOS__SERIES_RESPONSE__INIT;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_WARNING;
  r.warning = (char *)warning;
  return send_response(c, &r);
}

static void reply(storeapi_call *c, const ProtobufCMessage *m) {
  if (c->lc) {
    if (!c->cancelled) storeapi__local_reply(c->lc, m);
    release(c, c->cancelled ? NET_GRPC_CANCELLED : NET_GRPC_OK,
            c->cancelled ? orr_strerror(ORR_ECANCELED) : NULL);
    return;
  }
  orr_buf b = {0};
  int rc = storeapi__pack(m, &b);
  if (rc == 0 && !c->cancelled) rc = net_grpc_call_send(c->gc, b.data, b.len);
  orr_buf_free(&b);
  if (c->cancelled) rc = ORR_ECANCELED;
  release(c, rc == 0 ? NET_GRPC_OK : net_grpc_status_from_err(rc),
          rc == 0 ? NULL : orr_strerror(rc));
}

void storeapi_call_reply_info(storeapi_call *c, const Thanos__Info__InfoResponse *r) {
  reply(c, &r->base);
}
void storeapi_call_reply_label_names(storeapi_call *c, const Thanos__LabelNamesResponse *r) {
  reply(c, &r->base);
}
void storeapi_call_reply_label_values(storeapi_call *c, const Thanos__LabelValuesResponse *r) {
  reply(c, &r->base);
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void storeapi_call_reply_labels(storeapi_call *c, bool names, char **v, size_t n, int64_t limit) {
  qsort(v, n, sizeof(char *), str_cmp);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (u == 0 || strcmp(v[u - 1], v[i]) != 0) v[u++] = v[i];
  if (limit > 0 && (int64_t)u > limit) u = (size_t)limit;
  if (names) {
    Thanos__LabelNamesResponse r = THANOS__LABEL_NAMES_RESPONSE__INIT;
    r.names = v;
    r.n_names = u;
    storeapi_call_reply_label_names(c, &r);
  } else {
    Thanos__LabelValuesResponse r = THANOS__LABEL_VALUES_RESPONSE__INIT;
    r.values = v;
    r.n_values = u;
    storeapi_call_reply_label_values(c, &r);
  }
}

void storeapi_call_finish(storeapi_call *c, int status, const char *message) {
  if (c->head && !c->cancelled) {
    c->finishing = true;
    c->fin_status = status;
    c->fin_msg = message ? orr_arena_strdup(storeapi_call_arena(c), message) : NULL;
    return;
  }
  release(c, status, message);
}

const char *storeapi_call_metadata(const storeapi_call *c, const char *name) {
  if (c->lc) return storeapi__local_metadata(c->lc, name);
  return net_grpc_call_metadata(c->gc, name);
}
