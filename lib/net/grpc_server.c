/* grpc_server.c: the gRPC server — h2c connections accepted on a libuv
 * listener, one nghttp2 server session each, unary and server-streaming
 * methods with deadlines, cancellation and bounded per-call send queues.
 *
 * NOTES ON THE DESIGN OF A SERVER CALL
 *  1. A call is created when a stream's request HEADERS begin and lives in
 *     its own arena (the struct itself too). It is released (timer closed,
 *     arena destroyed) once BOTH the stream is closed (or its connection is
 *     gone) AND the handler has called net_grpc_call_finish() — or the
 *     handler was never started. Either order works.
 *  2. The handler starts once the request's END_STREAM arrived with exactly
 *     one whole message. Errors before that (unknown method, bad message,
 *     too large) answer trailers-only and no handler ever runs.
 *  3. "responded" means the final status is queued: by finish(), by a
 *     deadline, or by a request error. After it nothing more is queued.
 *     "cancelled" means the call ended before finish() (RST_STREAM from the
 *     peer, deadline, connection loss): on_cancel runs once, sends fail with
 *     ORR_ECANCELED, and finish() only releases.
 *  4. Response bytes wait in the call's queue (at most send_queue_bytes plus
 *     one message) until nghttp2's data provider copies them out, which it
 *     does only while the peer's stream and connection windows are open. A
 *     send beyond the bound returns ORR_EAGAIN and on_writable follows once
 *     the queue is down to half, from the connection's tick (never from
 *     inside nghttp2). So a slow reader holds the handler back instead of
 *     growing memory.
 *  5. Headers go out with the first message or, for a call that finishes
 *     without messages, together with the status (trailers-only).
 *  6. A client that stops reading must not hold a call (and whatever the
 *     handler holds upstream) for ever: a sweep timer resets each call whose
 *     queue has waited write_timeout_ms without nghttp2 taking a byte
 *     (RST_STREAM CANCEL, on_cancel with DEADLINE_EXCEEDED at once, as the
 *     RST may itself wait behind a full socket), and closes a connection
 *     whose socket write has not completed for as long.
 *  7. Memory comes back after a burst: a connection's allocations are small
 *     and interleaved with everything else on the heap, so free() alone
 *     returns little to the system; after GRPC_TRIM_AFTER connections have
 *     closed, the next sweep calls malloc_trim(), which releases every free
 *     page of the heap (glibc). */
#include <assert.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

#define GRPC_DEFAULT_QUEUE (256 * 1024)
#define GRPC_DEFAULT_WRITE_TIMEOUT_MS 60000
#define GRPC_TRIM_AFTER 64 /* closed connections (note 7) */

typedef struct grpc_method {
  struct grpc_method *next;
  char *path;
  net_grpc_kind kind;
  net_grpc_handler_fn fn;
  void *arg;
  /* Metric children for this method (NULL without a registry); handled
   * ones are looked up once per status code. */
  orr_series *started, *seconds;
  orr_series *handled[NET_GRPC_UNAUTHENTICATED + 1];
} grpc_method;

typedef struct grpc_metrics {
  orr_metric *started, *handled, *seconds;
} grpc_metrics;

typedef struct srv_conn srv_conn;

struct net_grpc_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t grace;
  uv_timer_t sweep; /* note 6 */
  net_grpc_server_opts opts;
  nghttp2_session_callbacks *cbs;
  grpc_method *methods;
  grpc_metrics metrics;
  srv_conn *conns;
  int port;
  int listening;
  int closing;
  int grace_closing;
  int pending; /* handles (listener, grace timer) and connections still open */
  unsigned closed_since_trim; /* note 7 */
  void (*on_closed)(void *arg);
  void *closed_arg;
};

struct srv_conn {
  net__h2_conn h;
  net_grpc_server *srv;
  srv_conn *prev, *next;
  net_grpc_call *calls;
  char peer[64]; /* the client's IP address, "" unknown */
};

typedef struct grpc_md {
  struct grpc_md *next;
  const char *name, *value;
} grpc_md;

typedef struct grpc_chunk {
  struct grpc_chunk *next;
  size_t len, off;
  uint8_t data[];
} grpc_chunk;

struct net_grpc_call {
  orr_arena *arena;
  net_grpc_server *srv; /* NULL once detached */
  srv_conn *conn;       /* NULL once the stream is closed or the connection gone */
  net_grpc_call *prev, *next;
  int32_t stream_id;
  uv_timer_t timer;
  const char *path, *method, *content_type;
  grpc_md *md;
  uint64_t deadline_ns;
  int64_t timeout_ms;
  const grpc_method *m;
  net_grpc_kind kind;
  net_grpc_deframer df;
  const uint8_t *req;
  size_t req_len;
  int nreq;
  size_t queue_limit;
  grpc_chunk *q_head, *q_tail;
  size_t q_bytes;
  int nsent;
  int status;
  const char *status_msg; /* percent-encoded, or NULL */
  net_grpc_call_fn on_writable;
  net_grpc_cancel_fn on_cancel;
  void *cb_arg;
  uint64_t start_ns; /* when the handler started */
  uint64_t progress_ms; /* uv_now() when the queue last moved (note 6) */
  const char *peer;
  unsigned accounted : 1; /* counted in grpc_server_handled_total */
  unsigned headers_sent : 1, eof : 1, responded : 1, cancelled : 1, handler_done : 1,
      stream_closed : 1, want_writable : 1, notify_writable : 1, timer_on : 1, bad_request : 1,
      stalled : 1;
};

/* ---------------------------------------------------------------- call life */

#ifndef NDEBUG
/* Checks the invariants of the notes above on a live call. */
static void assert_call_state(const net_grpc_call *c) {
  size_t queued = 0;
  for (const grpc_chunk *k = c->q_head; k; k = k->next) {
    assert(k->off < k->len || k->len == 0);
    queued += k->len - k->off;
  }
  assert(queued == c->q_bytes);
  assert(!c->q_head || c->headers_sent);           /* note 5 */
  assert(!c->cancelled || c->responded);           /* note 3 */
  assert(c->conn || c->stream_closed);             /* detached means closed */
  assert(!(c->handler_done && c->stream_closed));  /* note 1: else released */
  assert(!c->eof || c->responded);
}
#else
#define assert_call_state(c) ((void)0)
#endif

static void call_timer_closed(uv_handle_t *t) {
  net_grpc_call *c = t->data;
  grpc_chunk *k = c->q_head;
  while (k) {
    grpc_chunk *n = k->next;
    free(k);
    k = n;
  }
  net_grpc_deframer_free(&c->df);
  orr_arena_destroy(c->arena);
}

static void call_unlink(net_grpc_call *c) {
  if (!c->conn) return;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->conn->calls = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->conn = NULL;
}

static void call_release(net_grpc_call *c) {
  call_unlink(c);
  uv_close((uv_handle_t *)&c->timer, call_timer_closed);
}

static void call_maybe_release(net_grpc_call *c) {
  if (c->handler_done && c->stream_closed) call_release(c);
}

/* Frees queued messages. A message partly handed to nghttp2 stays when
 * |keep_partial|, so the peer never sees half a message before the status. */
static void queue_clear(net_grpc_call *c, int keep_partial) {
  grpc_chunk *k = c->q_head;
  if (keep_partial && k && k->off > 0) {
    grpc_chunk *rest = k->next;
    k->next = NULL;
    c->q_tail = k;
    c->q_bytes = k->len - k->off;
    for (k = rest; k;) {
      grpc_chunk *n = k->next;
      free(k);
      k = n;
    }
    return;
  }
  while (k) {
    grpc_chunk *n = k->next;
    free(k);
    k = n;
  }
  c->q_head = c->q_tail = NULL;
  c->q_bytes = 0;
}

/* Counts the outcome of a call whose handler started, once. The server is
 * alive here: only calls still attached to a connection get here. */
static void call_account(net_grpc_call *c, int status) {
  if (c->accounted || !c->start_ns || !c->m || !c->m->started) return;
  c->accounted = 1;
  grpc_method *m = (grpc_method *)c->m;
  int code = status >= 0 && status <= NET_GRPC_UNAUTHENTICATED ? status : NET_GRPC_UNKNOWN;
  if (!m->handled[code]) {
    const char *svc_end = strrchr(m->path, '/');
    char svc[256];
    snprintf(svc, sizeof(svc), "%.*s", (int)(svc_end - m->path - 1), m->path + 1);
    const char *v[] = {m->kind == NET_GRPC_UNARY ? "unary" : "server_stream", svc, svc_end + 1,
                       net_grpc_status_name(code)};
    m->handled[code] = orr_metric_with(c->srv->metrics.handled, v);
  }
  if (m->handled[code]) orr_counter_inc(m->handled[code]);
  if (m->seconds) orr_histogram_observe(m->seconds, (double)(orr_mono_ns() - c->start_ns) / 1e9);
}

/* Marks |c| cancelled and tells the handler, as the last thing the caller
 * does with |c| (the handler may finish, and so release, it). */
static void call_cancel_notify(net_grpc_call *c, int status) {
  if (c->cancelled || c->handler_done) {
    call_maybe_release(c);
    return;
  }
  c->cancelled = 1;
  if (c->timer_on) {
    uv_timer_stop(&c->timer);
    c->timer_on = 0;
  }
  orr_log_debug("grpc call cancelled", "path", c->path ? c->path : "", "status",
                net_grpc_status_name(status), NULL);
  if (c->on_cancel)
    c->on_cancel(c, status, c->cb_arg); /* may release |c| */
  else
    call_maybe_release(c);
}

/* ---------------------------------------------------------------- response */

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

static ssize_t call_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *flags, nghttp2_data_source *source,
                            void *user_data);

static int call_submit_headers(net_grpc_call *c, int with_body) {
  nghttp2_session *s = c->conn->h.session;
  char code[16];
  snprintf(code, sizeof(code), "%d", c->status);
  nghttp2_nv nv[4] = {NV(":status", "200"), NV("content-type", "application/grpc")};
  size_t n = 2;
  nghttp2_data_provider prov;
  prov.source.ptr = c;
  prov.read_callback = call_read_cb;
  if (!with_body) {
    nghttp2_nv st = NV("grpc-status", code);
    nv[n++] = st;
    if (c->status_msg && *c->status_msg) {
      nghttp2_nv m = NV("grpc-message", c->status_msg);
      nv[n++] = m;
    }
  }
  c->headers_sent = 1;
  return nghttp2_submit_response(s, c->stream_id, nv, n, with_body ? &prov : NULL);
}

static ssize_t call_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *flags, nghttp2_data_source *source,
                            void *user_data) {
  net_grpc_call *c = source->ptr;
  size_t n = 0;
  assert_call_state(c);
  while (n < length && c->q_head) {
    grpc_chunk *k = c->q_head;
    size_t take = k->len - k->off;
    if (take > length - n) take = length - n;
    memcpy(buf + n, k->data + k->off, take);
    k->off += take;
    n += take;
    if (k->off == k->len) {
      c->q_head = k->next;
      if (!c->q_head) c->q_tail = NULL;
      free(k);
    }
  }
  c->q_bytes -= n;
  if (n > 0) c->progress_ms = uv_now(c->srv->loop);
  if (c->want_writable && c->q_bytes <= c->queue_limit / 2 && !c->notify_writable) {
    c->notify_writable = 1;
    net__h2_conn_kick(&c->conn->h);
  }
  if (c->q_head || !c->eof) return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
  /* Queue drained after finish: end DATA without END_STREAM, then trailers. */
  *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
  char code[16];
  snprintf(code, sizeof(code), "%d", c->status);
  nghttp2_nv nv[2] = {NV("grpc-status", code)};
  size_t nnv = 1;
  if (c->status_msg && *c->status_msg) {
    nghttp2_nv m = NV("grpc-message", c->status_msg);
    nv[nnv++] = m;
  }
  if (nghttp2_submit_trailer(session, stream_id, nv, nnv) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
  return (ssize_t)n;
}

/* Queues the final status (see note 3). |drop| discards queued messages. */
static void call_respond(net_grpc_call *c, int status, const char *msg, int drop) {
  if (c->responded) return;
  if (c->conn) call_account(c, status);
  c->responded = 1;
  c->status = status;
  if (c->timer_on) {
    uv_timer_stop(&c->timer);
    c->timer_on = 0;
  }
  if (msg && *msg) {
    orr_buf b = {0};
    net_grpc_message_encode(&b, msg, strlen(msg));
    c->status_msg = b.oom ? NULL : orr_arena_strndup(c->arena, b.data, b.len);
    orr_buf_free(&b);
  }
  if (!c->conn) return;
  if (drop) queue_clear(c, 1);
  int rc;
  if (!c->headers_sent) {
    rc = call_submit_headers(c, 0);
  } else {
    c->eof = 1;
    rc = nghttp2_session_resume_data(c->conn->h.session, c->stream_id);
    if (rc == NGHTTP2_ERR_INVALID_ARGUMENT) rc = 0; /* not deferred: provider runs anyway */
  }
  if (rc) orr_log_warn("grpc: cannot submit status", "err", nghttp2_strerror(rc), NULL);
  net__h2_conn_kick(&c->conn->h);
  assert_call_state(c);
}

static void call_deadline_cb(uv_timer_t *t) {
  net_grpc_call *c = t->data;
  c->timer_on = 0;
  if (c->responded) return;
  orr_log_debug("grpc call deadline exceeded", "path", c->path ? c->path : "", NULL);
  call_respond(c, NET_GRPC_DEADLINE_EXCEEDED, "deadline exceeded", 1);
  if (!c->handler_done) call_cancel_notify(c, NET_GRPC_DEADLINE_EXCEEDED);
}

/* ---------------------------------------------------------------- public call API */

void net_grpc_call_set_callbacks(net_grpc_call *c, net_grpc_call_fn on_writable,
                                 net_grpc_cancel_fn on_cancel, void *arg) {
  c->on_writable = on_writable;
  c->on_cancel = on_cancel;
  c->cb_arg = arg;
}

int net_grpc_call_send(net_grpc_call *c, const void *msg, size_t len) {
  if (c->cancelled) return ORR_ECANCELED;
  if (c->handler_done || c->responded) return ORR_EINVAL;
  if (c->kind == NET_GRPC_UNARY && c->nsent >= 1) return ORR_EINVAL;
  if (len > UINT32_MAX) return ORR_ERANGE;
  if (c->q_bytes > 0 && c->q_bytes + NET_GRPC_PREFIX_LEN + len > c->queue_limit) {
    c->want_writable = 1;
    return ORR_EAGAIN;
  }
  grpc_chunk *k = malloc(sizeof(*k) + NET_GRPC_PREFIX_LEN + len);
  if (!k) return ORR_ENOMEM;
  k->next = NULL;
  k->off = 0;
  k->len = NET_GRPC_PREFIX_LEN + len;
  if (!c->q_head) c->progress_ms = uv_now(c->srv->loop); /* the wait starts now */
  k->data[0] = 0;
  k->data[1] = (uint8_t)(len >> 24);
  k->data[2] = (uint8_t)(len >> 16);
  k->data[3] = (uint8_t)(len >> 8);
  k->data[4] = (uint8_t)len;
  if (len) memcpy(k->data + NET_GRPC_PREFIX_LEN, msg, len);
  if (c->q_tail)
    c->q_tail->next = k;
  else
    c->q_head = k;
  c->q_tail = k;
  c->q_bytes += k->len;
  c->nsent++;
  int rc;
  if (!c->headers_sent) {
    rc = call_submit_headers(c, 1);
  } else {
    rc = nghttp2_session_resume_data(c->conn->h.session, c->stream_id);
    if (rc == NGHTTP2_ERR_INVALID_ARGUMENT) rc = 0;
  }
  if (rc) {
    orr_log_warn("grpc: cannot submit data", "err", nghttp2_strerror(rc), NULL);
    return ORR_EINTERNAL;
  }
  net__h2_conn_kick(&c->conn->h);
  assert_call_state(c);
  return 0;
}

int net_grpc_call_finish(net_grpc_call *c, int status, const char *message) {
  int rc = 0;
  if (c->cancelled)
    rc = ORR_ECANCELED;
  else
    call_respond(c, status, message, 0);
  c->handler_done = 1;
  c->on_writable = NULL;
  c->on_cancel = NULL;
  call_maybe_release(c);
  return rc;
}

orr_arena *net_grpc_call_arena(net_grpc_call *c) { return c->arena; }
const char *net_grpc_call_path(const net_grpc_call *c) { return c->path ? c->path : ""; }
uint64_t net_grpc_call_deadline_ns(const net_grpc_call *c) { return c->deadline_ns; }
int net_grpc_call_cancelled(const net_grpc_call *c) { return c->cancelled; }
const char *net_grpc_call_peer(const net_grpc_call *c) { return c->peer ? c->peer : ""; }

const char *net_grpc_call_metadata(const net_grpc_call *c, const char *name) {
  for (const grpc_md *m = c->md; m; m = m->next)
    if (strcmp(m->name, name) == 0) return m->value;
  return NULL;
}

/* ---------------------------------------------------------------- request */

static const grpc_method *server_find(const net_grpc_server *s, const char *path) {
  for (const grpc_method *m = s->methods; m; m = m->next)
    if (strcmp(m->path, path) == 0) return m;
  return NULL;
}

/* The request headers are complete: route and arm the deadline. */
static void call_headers_done(net_grpc_call *c) {
  if (!c->method || strcmp(c->method, "POST") != 0 || !c->path) {
    call_respond(c, NET_GRPC_INTERNAL, "grpc: bad request method or path", 1);
    c->bad_request = 1;
    return;
  }
  if (!c->content_type || strncmp(c->content_type, "application/grpc", 16) != 0 ||
      (c->content_type[16] != 0 && c->content_type[16] != '+' && c->content_type[16] != ';')) {
    call_respond(c, NET_GRPC_INTERNAL, "grpc: invalid content-type", 1);
    c->bad_request = 1;
    return;
  }
  c->m = server_find(c->srv, c->path);
  if (!c->m) {
    char *msg = orr_arena_sprintf(c->arena, "unknown method %s", c->path);
    call_respond(c, NET_GRPC_UNIMPLEMENTED, msg, 1);
    c->bad_request = 1;
    return;
  }
  c->kind = c->m->kind;
  if (c->timeout_ms >= 0) {
    c->deadline_ns = orr_mono_ns() + (uint64_t)c->timeout_ms * 1000000u;
    uv_timer_start(&c->timer, call_deadline_cb, (uint64_t)c->timeout_ms, 0);
    c->timer_on = 1;
  }
}

/* The request's END_STREAM arrived: start the handler (note 2). */
static void call_request_end(net_grpc_call *c) {
  if (c->responded) return;
  if (!net_grpc_deframer_idle(&c->df)) {
    call_respond(c, NET_GRPC_INTERNAL, "grpc: request ends inside a message", 1);
    return;
  }
  if (c->nreq != 1) {
    call_respond(c, NET_GRPC_UNIMPLEMENTED,
                 "grpc: request cardinality violation: want exactly one request message", 1);
    return;
  }
  const grpc_method *m = c->m;
  c->handler_done = 0;
  c->start_ns = orr_mono_ns();
  if (m->started) orr_counter_inc(m->started);
  m->fn(c, c->req, c->req_len, m->arg);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                            void *user_data) {
  srv_conn *conn = user_data;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  orr_arena *a = orr_arena_new(4096);
  net_grpc_call *c = a ? orr_arena_calloc(a, 1, sizeof(*c)) : NULL;
  if (!c) {
    orr_arena_destroy(a);
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_INTERNAL_ERROR);
    return 0;
  }
  c->arena = a;
  c->srv = conn->srv;
  c->conn = conn;
  c->stream_id = frame->hd.stream_id;
  c->timeout_ms = -1;
  c->handler_done = 1; /* until a handler starts */
  c->queue_limit = conn->srv->opts.send_queue_bytes;
  c->peer = orr_arena_strdup(a, conn->peer);
  net_grpc_deframer_init(&c->df, conn->srv->opts.max_recv_msg, 0);
  uv_timer_init(conn->srv->loop, &c->timer);
  c->timer.data = c;
  c->next = conn->calls;
  if (conn->calls) conn->calls->prev = c;
  conn->calls = c;
  nghttp2_session_set_stream_user_data(session, c->stream_id, c);
  return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  net_grpc_call *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!c) return 0;
  char *v = orr_arena_strndup(c->arena, (const char *)value, valuelen);
  if (!v) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const char *n = (const char *)name;
#define IS(s) (namelen == sizeof(s) - 1 && memcmp(n, s, namelen) == 0)
  if (IS(":path")) {
    c->path = v;
  } else if (IS(":method")) {
    c->method = v;
  } else if (n[0] == ':') {
    /* :scheme, :authority */
  } else if (IS("content-type")) {
    c->content_type = v;
  } else if (IS("grpc-timeout")) {
    int64_t ns;
    if (net_grpc_timeout_parse(v, valuelen, &ns) == 0) {
      int64_t ms = ns / 1000000 + (ns % 1000000 != 0);
      c->timeout_ms = ms;
    }
  } else if (IS("grpc-encoding")) {
    if (strcmp(v, "identity") != 0) c->df.encoding_set = 1;
  } else {
    grpc_md *m = orr_arena_alloc(c->arena, sizeof(*m));
    char *nm = orr_arena_strndup(c->arena, n, namelen);
    if (!m || !nm) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    m->name = nm;
    m->value = v;
    m->next = c->md;
    c->md = m;
  }
#undef IS
  return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  net_grpc_call *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!c) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    call_headers_done(c);
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !c->bad_request) call_request_end(c);
  return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data) {
  net_grpc_call *c = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!c || c->responded || c->bad_request) return 0;
  while (len > 0) {
    size_t used;
    const uint8_t *msg;
    size_t mlen;
    int rc = net_grpc_deframer_feed(&c->df, data, len, &used, &msg, &mlen);
    if (rc) {
      call_respond(c, c->df.status ? c->df.status : NET_GRPC_INTERNAL,
                   c->df.errmsg ? c->df.errmsg : orr_strerror(rc), 1);
      return 0;
    }
    data += used;
    len -= used;
    if (msg) {
      if (++c->nreq > 1) {
        call_respond(c, NET_GRPC_UNIMPLEMENTED,
                     "grpc: request cardinality violation: want exactly one request message", 1);
        return 0;
      }
      uint8_t *copy = orr_arena_alloc(c->arena, mlen ? mlen : 1);
      if (!copy) {
        call_respond(c, NET_GRPC_RESOURCE_EXHAUSTED, "grpc: out of memory", 1);
        return 0;
      }
      memcpy(copy, msg, mlen);
      c->req = copy;
      c->req_len = mlen;
    }
  }
  return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
  net_grpc_call *c = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!c) return 0;
  nghttp2_session_set_stream_user_data(session, stream_id, NULL);
  call_unlink(c);
  c->stream_closed = 1;
  queue_clear(c, 0);
  if (c->timer_on) {
    uv_timer_stop(&c->timer);
    c->timer_on = 0;
  }
  if (!c->responded) call_account(c, NET_GRPC_CANCELLED);
  c->responded = 1;
  /* Released here if finished or never started; else the handler hears of
   * it unless a deadline already told it. */
  call_cancel_notify(c, NET_GRPC_CANCELLED); /* last use of |c| */
  return 0;
}

/* ---------------------------------------------------------------- connections */

static void conn_tick(net__h2_conn *h) {
  srv_conn *conn = h->owner;
  net_grpc_call *c = conn->calls;
  while (c) {
    net_grpc_call *next = c->next;
    assert_call_state(c);
    if (c->notify_writable) {
      c->notify_writable = 0;
      if (c->want_writable && !c->cancelled && !c->responded) {
        c->want_writable = 0;
        if (c->on_writable) c->on_writable(c, c->cb_arg); /* may finish |c| */
      }
    }
    c = next;
  }
}

static void server_maybe_done(net_grpc_server *s);

/* Note 6: the client took nothing of |c|'s queue for the write timeout. */
static void call_stall_reset(net_grpc_call *c, int64_t timeout_ms) {
  srv_conn *conn = c->conn;
  orr_log_warn("grpc: stream stalled, the client read nothing for the write timeout; resetting it",
               "peer", c->peer ? c->peer : "", "path", c->path ? c->path : "", "queued_bytes",
               ORR_LOG_INT((int64_t)c->q_bytes), "write_timeout_ms", ORR_LOG_INT(timeout_ms), NULL);
  c->stalled = 1;
  if (!c->responded) call_account(c, NET_GRPC_DEADLINE_EXCEEDED);
  c->responded = 1;
  c->eof = 0; /* no trailers: the stream ends with the reset */
  queue_clear(c, 0);
  if (c->timer_on) {
    uv_timer_stop(&c->timer);
    c->timer_on = 0;
  }
  nghttp2_submit_rst_stream(conn->h.session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
  net__h2_conn_kick(&conn->h);
  call_cancel_notify(c, NET_GRPC_DEADLINE_EXCEEDED); /* last use of |c| */
}

static void server_sweep_cb(uv_timer_t *t) {
  net_grpc_server *s = t->data;
  if (s->closed_since_trim >= GRPC_TRIM_AFTER) {
    s->closed_since_trim = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
  }
  int64_t limit = s->opts.write_timeout_ms;
  if (limit <= 0) return;
  uint64_t now = uv_now(s->loop);
  for (srv_conn *conn = s->conns, *cn; conn; conn = cn) {
    cn = conn->next;
    if (conn->h.closing) continue;
    if (conn->h.writing && now - conn->h.write_start_ms > (uint64_t)limit) {
      orr_log_warn("grpc: connection stalled, the client read nothing for the write timeout; "
                   "closing it", "peer", conn->peer, "write_timeout_ms", ORR_LOG_INT(limit), NULL);
      net__h2_conn_close(&conn->h, ORR_ETIMEOUT);
      continue;
    }
    for (net_grpc_call *c = conn->calls, *n; c; c = n) {
      n = c->next;
      if (c->q_head && !c->stalled && now - c->progress_ms > (uint64_t)limit)
        call_stall_reset(c, limit);
    }
  }
}

static void conn_closed(net__h2_conn *h) {
  srv_conn *conn = h->owner;
  net_grpc_server *s = conn->srv;
  int status = h->err == ORR_ECANCELED ? NET_GRPC_UNAVAILABLE : NET_GRPC_CANCELLED;
  while (conn->calls) {
    net_grpc_call *c = conn->calls;
    call_unlink(c);
    c->stream_closed = 1;
    queue_clear(c, 0);
    if (c->timer_on) {
      uv_timer_stop(&c->timer);
      c->timer_on = 0;
    }
    if (!c->responded) call_account(c, status);
    c->responded = 1;
    call_cancel_notify(c, status); /* or release: see on_stream_close */
  }
  if (conn->prev)
    conn->prev->next = conn->next;
  else
    s->conns = conn->next;
  if (conn->next) conn->next->prev = conn->prev;
  free(conn);
  s->pending--;
  s->closed_since_trim++;
  server_maybe_done(s);
}

static const net__h2_ops conn_ops = {conn_tick, conn_closed};

static srv_conn *conn_new(net_grpc_server *s) {
  srv_conn *conn = calloc(1, sizeof(*conn));
  if (!conn) return NULL;
  conn->srv = s;
  if (net__h2_conn_init(s->loop, &conn->h, &conn_ops, conn)) {
    free(conn);
    return NULL;
  }
  conn->next = s->conns;
  if (s->conns) s->conns->prev = conn;
  s->conns = conn;
  s->pending++;
  return conn;
}

static int conn_session(srv_conn *conn) {
  net_grpc_server *s = conn->srv;
  if (nghttp2_session_server_new(&conn->h.session, s->cbs, conn)) return ORR_ENOMEM;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->opts.max_concurrent_streams}};
  return nghttp2_submit_settings(conn->h.session, NGHTTP2_FLAG_NONE, iv, 1) ? ORR_ENOMEM : 0;
}

static void on_connection(uv_stream_t *listener, int status) {
  net_grpc_server *s = listener->data;
  if (status < 0 || s->closing) return;
  srv_conn *conn = conn_new(s);
  if (!conn) return;
  if (uv_accept(listener, (uv_stream_t *)&conn->h.tcp) || conn_session(conn)) {
    net__h2_conn_close(&conn->h, ORR_EIO);
    return;
  }
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char addr[80] = "";
  if (uv_tcp_getpeername(&conn->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, conn->peer, sizeof(conn->peer));
      snprintf(addr, sizeof(addr), "[%s]:%d", conn->peer,
               ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, conn->peer, sizeof(conn->peer));
      snprintf(addr, sizeof(addr), "%s:%d", conn->peer,
               ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
  }
  if (s->opts.tls) {
    net__tls *t;
    if (net__tls_new(s->opts.tls, "h2", addr, NULL, &t)) {
      net__h2_conn_close(&conn->h, ORR_ENOMEM);
      return;
    }
    net__h2_conn_set_tls(&conn->h, t);
  }
  if (net__h2_conn_start(&conn->h)) net__h2_conn_close(&conn->h, ORR_EIO);
}

int net__grpc_server_fake_conn(net_grpc_server *s, net__h2_conn **out) {
  srv_conn *conn = conn_new(s);
  if (!conn) return ORR_ENOMEM;
  if (conn_session(conn)) {
    net__h2_conn_close(&conn->h, ORR_ENOMEM);
    return ORR_ENOMEM;
  }
  *out = &conn->h;
  return 0;
}

/* ---------------------------------------------------------------- server */

int net_grpc_server_new(uv_loop_t *loop, const net_grpc_server_opts *opts, net_grpc_server **out) {
  net_grpc_server *s = calloc(1, sizeof(*s));
  if (!s) return ORR_ENOMEM;
  s->loop = loop;
  s->port = -1;
  if (opts) s->opts = *opts;
  if (!s->opts.max_recv_msg) s->opts.max_recv_msg = NET_GRPC_DEFAULT_MAX_RECV;
  if (!s->opts.send_queue_bytes) s->opts.send_queue_bytes = GRPC_DEFAULT_QUEUE;
  if (!s->opts.max_concurrent_streams) s->opts.max_concurrent_streams = 100;
  if (!s->opts.write_timeout_ms) s->opts.write_timeout_ms = GRPC_DEFAULT_WRITE_TIMEOUT_MS;
  if (s->opts.registry) {
    /* Registering again (a second server) returns the same families. */
    static const char *const lbl[] = {"grpc_type", "grpc_service", "grpc_method", NULL};
    static const char *const lbl_code[] = {"grpc_type", "grpc_service", "grpc_method",
                                           "grpc_code", NULL};
    static const double buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
    s->metrics.started = orr_counter_new(s->opts.registry, "grpc_server_started_total",
                                         "Total number of RPCs started on the server.", lbl);
    s->metrics.handled = orr_counter_new(
        s->opts.registry, "grpc_server_handled_total",
        "Total number of RPCs completed on the server, regardless of success or failure.",
        lbl_code);
    s->metrics.seconds = orr_histogram_new(
        s->opts.registry, "grpc_server_handling_seconds",
        "Histogram of response latency (seconds) of gRPC that had been application-level "
        "handled by the server.",
        lbl, buckets, sizeof(buckets) / sizeof(buckets[0]));
    if (!s->metrics.started || !s->metrics.handled || !s->metrics.seconds) {
      nghttp2_session_callbacks_del(s->cbs);
      free(s);
      return ORR_EEXISTS; /* a clashing family of that name, or OOM */
    }
  }
  if (nghttp2_session_callbacks_new(&s->cbs)) {
    free(s);
    return ORR_ENOMEM;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(s->cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, on_stream_close);
  net_tls_ctx_ref(s->opts.tls);
  uv_timer_init(loop, &s->sweep);
  s->sweep.data = s;
  uint64_t every = 1000;
  if (s->opts.write_timeout_ms > 0 && (uint64_t)s->opts.write_timeout_ms / 5 < every)
    every = (uint64_t)s->opts.write_timeout_ms / 5 < 10 ? 10 : (uint64_t)s->opts.write_timeout_ms / 5;
  uv_timer_start(&s->sweep, server_sweep_cb, every, every);
  uv_unref((uv_handle_t *)&s->sweep); /* never keeps the loop alive */
  *out = s;
  return 0;
}

int net_grpc_server_register(net_grpc_server *s, const char *path, net_grpc_kind kind,
                             net_grpc_handler_fn fn, void *arg) {
  if (server_find(s, path)) return ORR_EEXISTS;
  grpc_method *m = calloc(1, sizeof(*m));
  if (!m || !(m->path = strdup(path))) {
    free(m);
    return ORR_ENOMEM;
  }
  m->kind = kind;
  m->fn = fn;
  m->arg = arg;
  const char *svc_end = strrchr(path, '/');
  if (s->metrics.started && svc_end && svc_end > path + 1 && path[0] == '/') {
    char svc[256];
    snprintf(svc, sizeof(svc), "%.*s", (int)(svc_end - path - 1), path + 1);
    const char *v[] = {kind == NET_GRPC_UNARY ? "unary" : "server_stream", svc, svc_end + 1};
    m->started = orr_metric_with(s->metrics.started, v);
    m->seconds = orr_metric_with(s->metrics.seconds, v);
  }
  m->next = s->methods;
  s->methods = m;
  return 0;
}

int net_grpc_server_listen(net_grpc_server *s, const char *host, int port) {
  struct sockaddr_storage ss;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
    return ORR_EINVAL;
  int rc = uv_tcp_init(s->loop, &s->listener);
  if (rc) return rc;
  s->listener.data = s;
  s->listening = 1;
  s->pending++;
  if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0)) ||
      (rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection)))
    return rc;
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) == 0)
    s->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  return 0;
}

int net_grpc_server_port(const net_grpc_server *s) { return s->port; }

static void server_free(net_grpc_server *s) {
  grpc_method *m = s->methods;
  while (m) {
    grpc_method *n = m->next;
    free(m->path);
    free(m);
    m = n;
  }
  nghttp2_session_callbacks_del(s->cbs);
  net_tls_ctx_unref(s->opts.tls);
  void (*cb)(void *) = s->on_closed;
  void *arg = s->closed_arg;
  free(s);
  if (cb) cb(arg);
}

static void server_handle_closed(uv_handle_t *h) {
  net_grpc_server *s = h->data;
  s->pending--;
  server_maybe_done(s);
}

static void server_maybe_done(net_grpc_server *s) {
  if (!s->closing) return;
  if (!s->conns && !s->grace_closing) {
    s->grace_closing = 1;
    uv_close((uv_handle_t *)&s->grace, server_handle_closed); /* stops it too */
    return;
  }
  if (s->pending == 0) server_free(s);
}

static void server_grace_cb(uv_timer_t *t) {
  net_grpc_server *s = t->data;
  for (srv_conn *c = s->conns; c; c = c->next) net__h2_conn_close(&c->h, ORR_ECANCELED);
}

void net_grpc_server_close(net_grpc_server *s, int64_t grace_ms, void (*on_closed)(void *arg),
                           void *arg) {
  s->closing = 1;
  s->on_closed = on_closed;
  s->closed_arg = arg;
  if (s->listening) uv_close((uv_handle_t *)&s->listener, server_handle_closed);
  s->pending++;
  uv_close((uv_handle_t *)&s->sweep, server_handle_closed);
  uv_timer_init(s->loop, &s->grace);
  s->grace.data = s;
  s->pending++;
  for (srv_conn *c = s->conns; c; c = c->next) {
    if (c->h.closing || !c->h.session) continue;
    nghttp2_submit_goaway(c->h.session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->h.session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    net__h2_conn_kick(&c->h);
  }
  uv_timer_start(&s->grace, server_grace_cb, grace_ms > 0 ? (uint64_t)grace_ms : 0, 0);
  server_maybe_done(s);
}
