/* grpc_client.c: the gRPC client — one h2c connection per client (a new one
 * after the last is lost or sent GOAWAY), calls multiplexed on it, local
 * deadlines, cancellation, and receive backpressure through the HTTP/2 window.
 *
 * NOTES ON THE DESIGN OF A CLIENT CALL
 *  1. A call lives in its own arena from net_grpc_client_call() until its
 *     on_done has returned; then the arena is freed. The arena's first block
 *     stays under glibc's tcache limit (1 KiB): a gateway makes a call per
 *     endpoint and query, and larger blocks took malloc's slow path
 *     (consolidation) a thousand times per query.
 *  2. The session never updates windows by itself (no auto window update).
 *     The connection window is given back as soon as DATA arrives (as
 *     grpc-go does), so one paused call never stalls the others; a stream's
 *     window only once its bytes are fed to the call's deframer. While a
 *     call is paused, bytes that arrive are kept in |in| unconsumed, so the
 *     server can send at most one stream window (CLIENT_STREAM_WINDOW) more
 *     before it has to wait: memory per call stays bounded.
 *  3. "done" is decided once: by the stream's end (after every buffered
 *     message was delivered), a deadline, a cancel, a connection failure or a
 *     protocol error. Deciding detaches the call from its stream (RST_STREAM
 *     CANCEL if still open) and queues it; on_done runs from the client's
 *     idle handle, never from inside a user's call or an nghttp2 callback.
 *  4. A stream the server refused before answering anything (REFUSED_STREAM,
 *     also what nghttp2 reports for streams above a GOAWAY's last stream id)
 *     was not processed, so it is submitted once more, as gRPC clients do
 *     transparently — on a new connection if the old one takes no streams.
 *  5. Deadlines: one timer per client, armed for the earliest deadline of
 *     its calls; when it fires, every call past its deadline is done with
 *     DEADLINE_EXCEEDED and the timer is armed for the next one. A call that
 *     ends does not touch the timer (it may fire once for nothing; it does
 *     not hold the loop, uv_unref). A timer
 *     per call cost a handle to start, stop and close for every endpoint of
 *     every query.
 *  6. A client keeps the arena and request buffer of its last finished
 *     call (reset, one of each) for the next: a gateway makes a call per
 *     endpoint and query, and the four allocations and frees each call
 *     cost were glibc's slow path at a wide fan-out (its per-thread cache
 *     holds seven blocks of a size; a fan-out frees a thousand). Memory
 *     kept: about 1 KiB per endpoint. Sanitizer builds keep none. */
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

#define CLIENT_STREAM_WINDOW (1 << 20)
#define CLIENT_CONN_WINDOW (16 << 20)
#define CLIENT_MAX_MD 48 /* metadata pairs per call */
/* The first block of a call's arena (note 1): the call, its path and
 * metadata, and the response headers of a typical call. */
#define CLIENT_CALL_ARENA 896
/* Note 6: a request buffer up to this size is kept for the next call. */
#define CLIENT_KEEP_REQ 4096
#define CLIENT_KEEP (!ORR_ASAN)

typedef struct cli_conn cli_conn;

struct net_grpc_client {
  uv_loop_t *loop;
  uv_idle_t idle;
  uv_timer_t timer;   /* note 5 */
  uint64_t timer_due; /* uv_now() ms the timer fires at, 0: stopped */
  nghttp2_session_callbacks *cbs;
  char *host;
  char *authority;
  int port;
  cli_conn *conn;  /* the connection new calls go to, or NULL */
  cli_conn *conns; /* every connection still open */
  net_grpc_ccall *calls;            /* calls not yet done */
  net_grpc_ccall *done_head, *done_tail; /* done, on_done pending */
  int live;       /* calls allocated + connections + idle and timer handles open */
  int idle_on, closing, idle_closed;
  void (*on_closed)(void *arg);
  void *closed_arg;
  net_tls_ctx *tls; /* NULL: h2c */
  orr_arena *spare_arena; /* note 6: reset, or NULL */
  orr_buf spare_req;      /* note 6: empty, its memory kept */
};

struct cli_conn {
  net__h2_conn h;
  net_grpc_client *cli;
  cli_conn *prev, *next;
  uv_getaddrinfo_t gai;
  uv_connect_t creq;
  int gai_pending, h_closed;
};

typedef struct cli_md {
  struct cli_md *next;
  const char *name, *value;
} cli_md;

struct net_grpc_ccall {
  orr_arena *arena;
  net_grpc_client *cli;
  cli_conn *conn; /* NULL once detached from its stream */
  int32_t stream_id;
  net_grpc_ccall *prev, *next; /* in cli->calls while not done */
  net_grpc_ccall *dnext;       /* in the done queue */
  net_grpc_deframer df;
  orr_buf req; /* the framed request */
  size_t req_off;
  orr_buf in;  /* received bytes not yet fed to the deframer (note 2) */
  size_t in_off;
  cli_md *rmd; /* response headers and trailers */
  int http_status, grpc_status;
  const char *grpc_message;
  int nmsgs;
  int unary;
  int end_status;        /* status once the stream ended, awaiting drain */
  const char *end_msg;
  int status;            /* final */
  const char *message;
  net_grpc_msg_fn on_msg;
  net_grpc_done_fn on_done;
  void *arg;
  const char *path;      /* copies kept for a retry (note 4) */
  const char **md;       /* name, value, ..., NULL */
  uint64_t deadline;     /* uv_now() milliseconds, 0: none */
  int64_t timeout_ms;
  unsigned paused : 1, stream_ended : 1, done : 1, retried : 1, resubmit : 1;
};

static void cli_kick(net_grpc_client *cli);
static void cli_maybe_free(net_grpc_client *cli);
static int call_submit(net_grpc_ccall *c);

/* ---------------------------------------------------------------- completion */

static void call_free(net_grpc_ccall *c) {
  net_grpc_client *cli = c->cli;
  net_grpc_deframer_free(&c->df);
  orr_buf_free(&c->in);
  /* Note 6: the arena's first block holds |c|; once reset it is unused. */
  if (CLIENT_KEEP && !cli->closing && !cli->spare_req.data && !c->req.oom &&
      c->req.cap <= CLIENT_KEEP_REQ) {
    cli->spare_req = c->req;
    cli->spare_req.len = 0;
  } else {
    orr_buf_free(&c->req);
  }
  if (CLIENT_KEEP && !cli->closing && !cli->spare_arena) {
    orr_arena_reset(c->arena);
    cli->spare_arena = c->arena;
  } else {
    orr_arena_destroy(c->arena);
  }
  cli->live--;
  cli_maybe_free(cli);
}

/* Decides the call's outcome (note 3). */
static void call_done(net_grpc_ccall *c, int status, const char *msg) {
  if (c->done) return;
  c->done = 1;
  c->status = status;
  c->message = msg ? msg : "";
  if (c->conn) {
    nghttp2_session *s = c->conn->h.session;
    if (s && !c->stream_ended && c->stream_id > 0) {
      nghttp2_session_set_stream_user_data(s, c->stream_id, NULL);
      nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
      net__h2_conn_kick(&c->conn->h);
    }
    c->conn = NULL;
  }
  net_grpc_client *cli = c->cli;
  if (c->prev)
    c->prev->next = c->next;
  else
    cli->calls = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  if (cli->done_tail)
    cli->done_tail->dnext = c;
  else
    cli->done_head = c;
  cli->done_tail = c;
  cli_kick(cli);
}

static int status_from_http(int code) {
  switch (code) {
  case 400: return NET_GRPC_INTERNAL;
  case 401: return NET_GRPC_UNAUTHENTICATED;
  case 403: return NET_GRPC_PERMISSION_DENIED;
  case 404: return NET_GRPC_UNIMPLEMENTED;
  case 429:
  case 502:
  case 503:
  case 504: return NET_GRPC_UNAVAILABLE;
  default: return NET_GRPC_UNKNOWN;
  }
}

/* The stream ended and every buffered byte went through: decide. */
static void call_try_finish(net_grpc_ccall *c) {
  if (c->done || !c->stream_ended || c->paused || c->in.len > c->in_off) return;
  int st = c->end_status;
  const char *msg = c->end_msg;
  if (st == NET_GRPC_OK && !net_grpc_deframer_idle(&c->df)) {
    st = NET_GRPC_INTERNAL;
    msg = "grpc: stream ended inside a message";
  } else if (st == NET_GRPC_OK && c->unary && c->nmsgs != 1) {
    st = NET_GRPC_UNIMPLEMENTED;
    msg = c->nmsgs ? "grpc: too many response messages for a unary call"
                   : "grpc: no response message for a unary call";
  }
  call_done(c, st, msg);
}

/* Feeds |p|/|n| (from |c->in| when |held|) to the deframer and delivers
 * messages until paused or done; returns the bytes taken. Bytes are consumed
 * from the HTTP/2 windows (and |in_off| moved) before each delivery, so the
 * accounting is exact whatever on_msg does. */
static size_t call_feed(net_grpc_ccall *c, const uint8_t *p, size_t n, int held) {
  size_t off = 0;
  while (off < n && !c->paused && !c->done) {
    size_t used;
    const uint8_t *msg;
    size_t mlen;
    int rc = net_grpc_deframer_feed(&c->df, p + off, n - off, &used, &msg, &mlen);
    off += used;
    if (held) c->in_off += used;
    if (c->conn && c->conn->h.session && used > 0) {
      nghttp2_session_consume_stream(c->conn->h.session, c->stream_id, used);
      net__h2_conn_kick_output(&c->conn->h); /* a WINDOW_UPDATE, if due */
    }
    if (rc) {
      call_done(c, c->df.status ? c->df.status : NET_GRPC_INTERNAL,
                c->df.errmsg ? c->df.errmsg : orr_strerror(rc));
      break;
    }
    if (!msg) continue;
    if (++c->nmsgs > 1 && c->unary) {
      call_done(c, NET_GRPC_UNIMPLEMENTED, "grpc: too many response messages for a unary call");
      break;
    }
    int r = c->on_msg ? c->on_msg(c, msg, mlen, c->arg) : 0;
    if (r == NET_GRPC_PAUSE) c->paused = 1;
  }
  return off;
}

/* Delivers what was held while paused (from the idle handle). */
static void call_drain(net_grpc_ccall *c) {
  if (c->paused || c->done) return;
  if (c->in.len > c->in_off) {
    call_feed(c, (const uint8_t *)c->in.data + c->in_off, c->in.len - c->in_off, 1);
    if (c->in_off == c->in.len) c->in_off = c->in.len = 0;
  }
  call_try_finish(c);
}

/* ---------------------------------------------------------------- nghttp2 callbacks */

static ssize_t req_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                           size_t length, uint32_t *flags, nghttp2_data_source *source,
                           void *user_data) {
  net_grpc_ccall *c = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!c) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t n = c->req.len - c->req_off;
  if (n > length) n = length;
  memcpy(buf, c->req.data + c->req_off, n);
  c->req_off += n;
  if (c->req_off == c->req.len) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  net_grpc_ccall *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!c) return 0;
  const char *n = (const char *)name;
#define IS(s) (namelen == sizeof(s) - 1 && memcmp(n, s, namelen) == 0)
  if (IS(":status")) {
    c->http_status = atoi((const char *)value);
    return 0;
  }
  if (IS("grpc-status")) {
    int v = 0;
    size_t i;
    for (i = 0; i < valuelen && i < 4 && value[i] >= '0' && value[i] <= '9'; i++)
      v = v * 10 + (value[i] - '0');
    c->grpc_status = (i == valuelen && i > 0) ? v : NET_GRPC_UNKNOWN;
  }
  if (IS("grpc-message")) {
    orr_buf b = {0};
    net_grpc_message_decode(&b, (const char *)value, valuelen);
    c->grpc_message = b.oom ? "" : orr_arena_strndup(c->arena, b.data, b.len);
    orr_buf_free(&b);
  }
#undef IS
  cli_md *m = orr_arena_alloc(c->arena, sizeof(*m));
  if (!m) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  m->name = orr_arena_strndup(c->arena, n, namelen);
  m->value = orr_arena_strndup(c->arena, (const char *)value, valuelen);
  if (!m->name || !m->value) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  m->next = c->rmd;
  c->rmd = m;
  return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data) {
  nghttp2_session_consume_connection(session, len); /* note 2 */
  net_grpc_ccall *c = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!c) return 0; /* a call already done: its stream is being reset */
  if (c->http_status != 200 && !c->done) {
    /* Not a gRPC answer (a proxy's or a web server's error page): its body
     * holds no gRPC frames, so say what came instead of a framing error. */
    call_done(c, status_from_http(c->http_status),
              orr_arena_sprintf(c->arena, "unexpected HTTP status %d from a non-gRPC server",
                                c->http_status));
    return 0;
  }
  if (c->done) return 0;
  size_t used = 0;
  if (!c->paused && c->in.len == c->in_off) used = call_feed(c, data, len, 0);
  if (used < len && !c->done && orr_buf_append(&c->in, data + used, len - used))
    call_done(c, NET_GRPC_RESOURCE_EXHAUSTED, "grpc: out of memory");
  return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
  net_grpc_ccall *c = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!c) return 0;
  if (error_code == NGHTTP2_REFUSED_STREAM && !c->retried && c->http_status == 0 &&
      c->grpc_status < 0 && c->nmsgs == 0 && c->in.len == c->in_off &&
      net_grpc_deframer_idle(&c->df)) {
    /* Note 4: never processed; submit again from the idle handle. */
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    c->retried = 1;
    c->resubmit = 1;
    c->conn = NULL;
    c->stream_id = 0;
    cli_kick(c->cli);
    return 0;
  }
  c->stream_ended = 1;
  if (c->grpc_status >= 0) {
    c->end_status = c->grpc_status;
    c->end_msg = c->grpc_message ? c->grpc_message : "";
  } else if (error_code == NGHTTP2_REFUSED_STREAM) {
    c->end_status = NET_GRPC_UNAVAILABLE;
    c->end_msg = "stream refused by the server";
  } else if (error_code == NGHTTP2_CANCEL) {
    c->end_status = NET_GRPC_CANCELLED;
    c->end_msg = "stream cancelled by the server";
  } else if (error_code != NGHTTP2_NO_ERROR) {
    c->end_status = NET_GRPC_INTERNAL;
    c->end_msg = orr_arena_sprintf(c->arena, "stream reset by the server: %s",
                                   nghttp2_http2_strerror(error_code));
  } else if (c->http_status != 200) {
    c->end_status = status_from_http(c->http_status);
    c->end_msg = orr_arena_sprintf(c->arena, "unexpected HTTP status %d", c->http_status);
  } else {
    c->end_status = NET_GRPC_INTERNAL;
    c->end_msg = "server closed the stream without sending trailers";
  }
  if (!c->end_msg) c->end_msg = "";
  /* The stream is gone: nothing more is consumed for it. */
  c->conn = NULL;
  nghttp2_session_set_stream_user_data(session, stream_id, NULL);
  call_try_finish(c);
  return 0;
}

/* ---------------------------------------------------------------- connections */

static void conn_closed(net__h2_conn *h) {
  cli_conn *conn = h->owner;
  net_grpc_client *cli = conn->cli;
  conn->h_closed = 1;
  if (cli->conn == conn) cli->conn = NULL;
  const char *why = h->err == ORR_EUNAVAILABLE ? "connection failed" : "connection closed";
  if (h->tls_failed) why = "TLS handshake failed";
  for (net_grpc_ccall *c = cli->calls, *next; c; c = next) {
    next = c->next;
    if (c->conn != conn) continue;
    c->conn = NULL;
    if (c->stream_ended) {
      call_try_finish(c);
      continue;
    }
    c->stream_ended = 1;
    c->end_status = NET_GRPC_UNAVAILABLE;
    c->end_msg = why;
    call_done(c, NET_GRPC_UNAVAILABLE, why);
  }
  if (conn->gai_pending) return; /* freed by the resolver callback */
  if (conn->prev)
    conn->prev->next = conn->next;
  else
    cli->conns = conn->next;
  if (conn->next) conn->next->prev = conn->prev;
  free(conn);
  cli->live--;
  cli_maybe_free(cli);
}

static const net__h2_ops conn_ops = {NULL, conn_closed};

static void on_connect(uv_connect_t *req, int status) {
  cli_conn *conn = req->data;
  if (conn->h.closing) return;
  if (status < 0) {
    orr_log_debug("grpc connect failed", "address", conn->cli->authority, "err",
                  uv_strerror(status), NULL);
    net__h2_conn_close(&conn->h, ORR_EUNAVAILABLE);
    return;
  }
  net_grpc_client *cli = conn->cli;
  if (cli->tls) {
    net__tls *t;
    if (net__tls_new(cli->tls, "h2", cli->authority, cli->host, &t)) {
      net__h2_conn_close(&conn->h, ORR_EUNAVAILABLE);
      return;
    }
    net__h2_conn_set_tls(&conn->h, t);
  }
  if (net__h2_conn_start(&conn->h)) net__h2_conn_close(&conn->h, ORR_EUNAVAILABLE);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  cli_conn *conn = req->data;
  conn->gai_pending = 0;
  if (conn->h.closing) {
    /* Closed while resolving (uv_cancel comes too late once a worker has
     * the request). The handle is closing, so no connect: it would start
     * I/O on it and trip libuv's assertion in uv__stream_destroy. If the
     * close callbacks already ran, finish what conn_closed left to us;
     * otherwise conn_closed frees |conn| when they run. */
    uv_freeaddrinfo(res);
    if (conn->h_closed) conn_closed(&conn->h);
    return;
  }
  int rc = status;
  if (rc == 0) {
    /* One address is tried. IPv4 first: a name like "localhost" often lists
     * ::1 first while servers commonly listen on 0.0.0.0 only. */
    struct addrinfo *pick = res;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
      if (ai->ai_family == AF_INET) {
        pick = ai;
        break;
      }
    conn->creq.data = conn;
    rc = uv_tcp_connect(&conn->creq, &conn->h.tcp, pick->ai_addr, on_connect);
  }
  uv_freeaddrinfo(res);
  if (rc) net__h2_conn_close(&conn->h, ORR_EUNAVAILABLE);
}

static cli_conn *conn_new(net_grpc_client *cli, int resolve) {
  cli_conn *conn = calloc(1, sizeof(*conn));
  if (!conn) return NULL;
  conn->cli = cli;
  nghttp2_option *opt = NULL;
  if (net__h2_conn_init(cli->loop, &conn->h, &conn_ops, conn)) {
    free(conn);
    return NULL;
  }
  conn->next = cli->conns;
  if (cli->conns) cli->conns->prev = conn;
  cli->conns = conn;
  cli->live++;
  if (nghttp2_option_new(&opt)) goto fail;
  nghttp2_option_set_no_auto_window_update(opt, 1);
  int rc = nghttp2_session_client_new3(&conn->h.session, cli->cbs, conn, opt, net__h2_mem());
  nghttp2_option_del(opt);
  if (rc) goto fail;
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                 {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CLIENT_STREAM_WINDOW}};
  if (nghttp2_submit_settings(conn->h.session, NGHTTP2_FLAG_NONE, iv, 2) ||
      nghttp2_session_set_local_window_size(conn->h.session, NGHTTP2_FLAG_NONE, 0,
                                            CLIENT_CONN_WINDOW))
    goto fail;
  if (!resolve) return conn;
  char port[16];
  snprintf(port, sizeof(port), "%d", cli->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  conn->gai.data = conn;
  if (uv_getaddrinfo(cli->loop, &conn->gai, on_resolved, cli->host, port, &hints)) goto fail;
  conn->gai_pending = 1;
  return conn;
fail:
  /* Closing reports through conn_closed, which frees |conn|. */
  net__h2_conn_close(&conn->h, ORR_EUNAVAILABLE);
  return NULL;
}

int net__grpc_client_fake_conn(net_grpc_client *cli, net__h2_conn **out) {
  cli_conn *conn = conn_new(cli, 0);
  if (!conn) return ORR_ENOMEM;
  cli->conn = conn;
  *out = &conn->h;
  return 0;
}

/* ---------------------------------------------------------------- client */

static void cli_idle_closed(uv_handle_t *h) {
  net_grpc_client *cli = h->data;
  cli->idle_closed = 1;
  cli->live--;
  cli_maybe_free(cli);
}

static void cli_timer_closed(uv_handle_t *h) {
  net_grpc_client *cli = h->data;
  cli->live--;
  cli_maybe_free(cli);
}

static void cli_maybe_free(net_grpc_client *cli) {
  if (!cli->closing || cli->live > 0) return;
  void (*cb)(void *) = cli->on_closed;
  void *arg = cli->closed_arg;
  orr_arena_destroy(cli->spare_arena);
  orr_buf_free(&cli->spare_req);
  nghttp2_session_callbacks_del(cli->cbs);
  net_tls_ctx_unref(cli->tls);
  free(cli->host);
  free(cli->authority);
  free(cli);
  if (cb) cb(arg);
}

static void cli_idle_cb(uv_idle_t *idle) {
  net_grpc_client *cli = idle->data;
  uv_idle_stop(idle);
  cli->idle_on = 0;
  for (net_grpc_ccall *c = cli->calls, *next; c; c = next) {
    next = c->next;
    if (c->resubmit) {
      c->resubmit = 0;
      orr_log_debug("grpc call refused by the server, retrying", "path", c->path, NULL);
      if (call_submit(c)) call_done(c, NET_GRPC_UNAVAILABLE, "cannot retry a refused call");
      continue;
    }
    call_drain(c); /* may move |c| to the done queue */
  }
  bool delivered = cli->done_head != NULL;
  while (cli->done_head) {
    net_grpc_ccall *c = cli->done_head;
    cli->done_head = c->dnext;
    if (!cli->done_head) cli->done_tail = NULL;
    if (c->on_done) c->on_done(c, c->status, c->message, c->arg);
    call_free(c);
  }
  /* The turn that ran on_done must not then block in poll: a caller that
   * turns the loop once at a time until its callback set a flag (uv_run
   * UV_RUN_ONCE: tests, shutdown loops) gets control back. (A call's own
   * timer, closed after on_done, used to see to that.) */
  if (delivered && !cli->closing) cli_kick(cli);
  if (cli->closing && !cli->idle_on && !uv_is_closing((uv_handle_t *)&cli->idle)) {
    uv_close((uv_handle_t *)&cli->idle, cli_idle_closed);
    uv_close((uv_handle_t *)&cli->timer, cli_timer_closed);
  }
}

static void cli_kick(net_grpc_client *cli) {
  if (cli->idle_on || uv_is_closing((uv_handle_t *)&cli->idle)) return;
  cli->idle_on = 1;
  uv_idle_start(&cli->idle, cli_idle_cb);
}

int net_grpc_client_new(uv_loop_t *loop, const char *host, int port, net_grpc_client **out) {
  if (!host || !*host || port <= 0 || port > 65535) return ORR_EINVAL;
  net_grpc_client *cli = calloc(1, sizeof(*cli));
  if (!cli) return ORR_ENOMEM;
  cli->loop = loop;
  cli->port = port;
  cli->host = strdup(host);
  int v6 = strchr(host, ':') != NULL;
  size_t alen = strlen(host) + 16;
  cli->authority = malloc(alen);
  if (!cli->host || !cli->authority || nghttp2_session_callbacks_new(&cli->cbs)) {
    free(cli->host);
    free(cli->authority);
    free(cli);
    return ORR_ENOMEM;
  }
  snprintf(cli->authority, alen, v6 ? "[%s]:%d" : "%s:%d", host, port);
  nghttp2_session_callbacks_set_on_header_callback(cli->cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cli->cbs, on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cli->cbs, on_stream_close);
  uv_idle_init(loop, &cli->idle);
  cli->idle.data = cli;
  uv_timer_init(loop, &cli->timer);
  cli->timer.data = cli;
  /* A call in flight keeps the loop alive through its connection; an
   * armed timer alone (its calls ended) must not. */
  uv_unref((uv_handle_t *)&cli->timer);
  cli->live = 2; /* the idle and timer handles */
  *out = cli;
  return 0;
}

void net_grpc_client_set_tls(net_grpc_client *cli, net_tls_ctx *tls) {
  net_tls_ctx *old = cli->tls;
  cli->tls = net_tls_ctx_ref(tls);
  net_tls_ctx_unref(old);
}

void net_grpc_client_close(net_grpc_client *cli, void (*on_closed)(void *arg), void *arg) {
  cli->closing = 1;
  cli->on_closed = on_closed;
  cli->closed_arg = arg;
  while (cli->calls) call_done(cli->calls, NET_GRPC_CANCELLED, "client closed");
  for (cli_conn *conn = cli->conns; conn; conn = conn->next) {
    if (conn->gai_pending) uv_cancel((uv_req_t *)&conn->gai);
    net__h2_conn_close(&conn->h, ORR_ECANCELED);
  }
  cli->conn = NULL;
  cli_kick(cli);
}

static void cli_timer_cb(uv_timer_t *t);

/* Arms the client's timer for |due| (uv_now() ms) unless it fires sooner. */
static void cli_timer_arm(net_grpc_client *cli, uint64_t due) {
  if (cli->closing || (cli->timer_due && cli->timer_due <= due)) return;
  uint64_t now = uv_now(cli->loop);
  cli->timer_due = due;
  uv_timer_start(&cli->timer, cli_timer_cb, due > now ? due - now : 0, 0);
}

/* Note 5: ends the calls past their deadline, re-arms for the next one. */
static void cli_timer_cb(uv_timer_t *t) {
  net_grpc_client *cli = t->data;
  uint64_t now = uv_now(cli->loop), next = 0;
  cli->timer_due = 0;
  for (net_grpc_ccall *c = cli->calls, *nx; c; c = nx) {
    nx = c->next; /* call_done unlinks |c| */
    if (!c->deadline) continue;
    if (c->deadline <= now) call_done(c, NET_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
    else if (!next || c->deadline < next) next = c->deadline;
  }
  if (next) cli_timer_arm(cli, next);
}

/* Submits |c|'s request on the client's connection (a new one if there is
 * none or it takes no new streams). Returns 0, ORR_ENOMEM or
 * ORR_EUNAVAILABLE. */
static int call_submit(net_grpc_ccall *c) {
  net_grpc_client *cli = c->cli;
  if (cli->conn && (cli->conn->h.closing || (cli->conn->h.session &&
                                             !nghttp2_session_check_request_allowed(cli->conn->h.session))))
    cli->conn = NULL;
  if (!cli->conn && !(cli->conn = conn_new(cli, 1))) return ORR_ENOMEM;
  cli_conn *conn = cli->conn;
  nghttp2_nv nv[8 + 2 * CLIENT_MAX_MD];
  size_t n = 0;
  char tmo[16];
  /* Strings that outlive the session are not copied by nghttp2 (the
   * literals, and the authority: the client outlives its connections). */
#define ADDF(k, v, f)                                                                        \
  nv[n].name = (uint8_t *)(k), nv[n].namelen = strlen(k), nv[n].value = (uint8_t *)(v),      \
  nv[n].valuelen = strlen(v), nv[n].flags = (f), n++
#define ADD(k, v) ADDF(k, v, NGHTTP2_NV_FLAG_NONE)
#define STATIC (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)
  ADDF(":method", "POST", STATIC);
  ADDF(":scheme", cli->tls ? "https" : "http", STATIC);
  ADDF(":path", c->path, NGHTTP2_NV_FLAG_NO_COPY_NAME);
  ADDF(":authority", cli->authority, STATIC);
  ADDF("content-type", "application/grpc", STATIC);
  ADDF("te", "trailers", STATIC);
  ADDF("user-agent", "orrery-grpc/" ORRERY_VERSION, STATIC);
  if (c->deadline) {
    /* What is left of the deadline (all of it on the first submit). A
     * timeout of 10 s or more is sent rounded up to whole seconds and
     * indexed: a gateway's fan-out calls carry what is left of the query's
     * timeout (119,998 ms, then 119,997 ms, ...), which so becomes one
     * value that both ends' HPACK tables hold once, instead of a literal
     * name and value encoded on every call. The server may then run up to
     * a second (under 10%) past our deadline; we cancel the stream at the
     * deadline itself. A shorter timeout is sent exactly and not indexed. */
    int64_t left = c->retried ? (int64_t)(c->deadline - uv_now(cli->loop)) : c->timeout_ms;
    if (left < 1) left = 1;
    uint8_t fl = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_INDEX;
    if (left >= 10000) {
      left = (left + 999) / 1000 * 1000;
      fl = NGHTTP2_NV_FLAG_NO_COPY_NAME;
    }
    net_grpc_timeout_format(left * 1000000, tmo, sizeof(tmo));
    ADDF("grpc-timeout", tmo, fl);
  }
  for (const char **m = c->md; m && m[0] && m[1]; m += 2) ADD(m[0], m[1]);
#undef STATIC
#undef ADD
#undef ADDF
  nghttp2_data_provider prov;
  prov.source.ptr = NULL;
  prov.read_callback = req_read_cb;
  int32_t id = nghttp2_submit_request(conn->h.session, NULL, nv, n, &prov, c);
  if (id < 0) return id == NGHTTP2_ERR_NOMEM ? ORR_ENOMEM : ORR_EUNAVAILABLE;
  c->stream_id = id;
  c->conn = conn;
  c->req_off = 0;
  /* Out now, not from the idle handle: a gateway starts a call per
   * endpoint in one go, and the first requests then reach their endpoints
   * while the rest are being made, instead of all after the last. */
  net__h2_conn_flush(&conn->h);
  return 0;
}

int net_grpc_client_call(net_grpc_client *cli, const char *path, const void *req, size_t len,
                         const net_grpc_call_opts *opts, net_grpc_msg_fn on_msg,
                         net_grpc_done_fn on_done, void *arg, net_grpc_ccall **out) {
  static const net_grpc_call_opts no_opts;
  if (!opts) opts = &no_opts;
  if (cli->closing || !path || path[0] != '/') return ORR_EINVAL;
  size_t nmd = 0;
  for (const char *const *m = opts->metadata; m && m[0] && m[1]; m += 2) nmd++;
  if (nmd > CLIENT_MAX_MD) return ORR_EINVAL;
  orr_arena *a = cli->spare_arena ? cli->spare_arena : orr_arena_new(CLIENT_CALL_ARENA);
  cli->spare_arena = NULL;
  net_grpc_ccall *c = a ? orr_arena_calloc(a, 1, sizeof(*c)) : NULL;
  if (!c) {
    orr_arena_destroy(a);
    return ORR_ENOMEM;
  }
  c->arena = a;
  c->cli = cli;
  c->req = cli->spare_req; /* note 6 (empty, or no memory) */
  memset(&cli->spare_req, 0, sizeof(cli->spare_req));
  c->grpc_status = -1;
  c->unary = opts->unary;
  c->on_msg = on_msg;
  c->on_done = on_done;
  c->arg = arg;
  c->timeout_ms = opts->timeout_ms;
  if (opts->timeout_ms > 0) c->deadline = uv_now(cli->loop) + (uint64_t)opts->timeout_ms;
  net_grpc_deframer_init(&c->df, opts->max_recv_msg, 0);
  int rc = ORR_ENOMEM;
  c->path = orr_arena_strdup(a, path);
  c->md = orr_arena_calloc(a, 2 * nmd + 1, sizeof(char *));
  if (!c->path || !c->md) goto fail;
  for (size_t i = 0; i < 2 * nmd; i++)
    if (!(c->md[i] = orr_arena_strdup(a, opts->metadata[i]))) goto fail;
  if ((rc = net_grpc_frame_append(&c->req, req, len)) || (rc = call_submit(c))) goto fail;
  c->next = cli->calls;
  if (cli->calls) cli->calls->prev = c;
  cli->calls = c;
  cli->live++;
  if (c->deadline) cli_timer_arm(cli, c->deadline);
  if (out) *out = c;
  return 0;
fail:
  net_grpc_deframer_free(&c->df);
  orr_buf_free(&c->req);
  orr_arena_destroy(a);
  return rc;
}

void net_grpc_ccall_pause(net_grpc_ccall *c) { c->paused = 1; }

void net_grpc_ccall_resume(net_grpc_ccall *c) {
  if (!c->paused) return;
  c->paused = 0;
  cli_kick(c->cli);
}

void net_grpc_ccall_cancel(net_grpc_ccall *c) {
  call_done(c, NET_GRPC_CANCELLED, "cancelled by the client");
}

const char *net_grpc_ccall_metadata(const net_grpc_ccall *c, const char *name) {
  for (const cli_md *m = c->rmd; m; m = m->next)
    if (strcmp(m->name, name) == 0) return m->value;
  return NULL;
}
