/* http_server.c: the HTTP/1.1 server's socket layer on libuv — connections,
 * timeouts, response writing (whole, chunked streaming with backpressure,
 * gzip) and graceful drain. Parsing is in http_parse.c.
 *
 * Design notes
 * 1. A connection is in one of four states:
 *      IDLE    no byte of a request yet; idle timer (keep-alive timeout)
 *      READING a request started; header timer from its first byte, then the
 *              body timer once the headers are complete
 *      ACTIVE  a request is with its handler; no timer; bytes that arrive
 *              are only buffered (pipelining), up to the read buffer
 *      ENDING  the last response is queued; the socket is shut down for
 *              writing once it is flushed (flush timer: the larger of the
 *              idle and body timeouts), remaining input is discarded until
 *              EOF or a short linger timeout, then the connection is closed
 *    IDLE → READING on a request's first byte, READING → ACTIVE when it is
 *    complete, ACTIVE → IDLE (or ENDING) when the handler finishes it.
 * 2. Reading is on whenever the read buffer has room and the connection is
 *    not closing; the buffer is a fixed size per connection, so input never
 *    buffers beyond it. Unparsed bytes always sit at the buffer's start.
 * 3. A request is allocated in its own arena and outlives its connection if
 *    the client goes away: it is then detached (req->c == NULL, gone), its
 *    on_gone callback runs, and whatever it writes is dropped. It is freed
 *    only when the handler finishes it.
 * 4. The connection struct is freed in the close callback of the last of its
 *    two handles (tcp, timer); libuv calls pending write callbacks (with
 *    UV_ECANCELED) before that.
 * 5. Shutdown completes (done callback) when the listener, every connection
 *    and the grace timer are closed and every request is finished.
 * 6. With TLS (net_http_server_set_tls), the socket carries ciphertext:
 *    reads go through one buffer per thread into the connection's SSL and
 *    plaintext is pulled into rbuf while it has room (so note 2 still bounds
 *    input: what does not fit waits inside the SSL, and reading stops);
 *    writes are encrypted into one uv_write each, counted in wqueued by
 *    their plaintext size. Without TLS nothing of this runs. */
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "net_int.h"

#define READ_BUF_SIZE (16u * 1024u)
#define LINGER_MS 1000u

typedef enum { C_IDLE = 0, C_READING, C_ACTIVE, C_ENDING } conn_state;

typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shut;
  net_http_server *srv;
  struct conn *prev, *next;
  net__http_parse ps;
  net_http_req *req; /* the ACTIVE request */
  char *rbuf;
  size_t rlen;
  size_t wqueued; /* bytes handed to uv_write and not yet called back */
  conn_state state;
  int handles; /* open handles; freed at 0 */
  bool closing;
  bool reading;
  bool in_process;
  bool close_after; /* close once the current response is done */
  bool body_timer;  /* the timer now runs the body timeout */
  bool eof;         /* the client sent FIN */
  bool served;      /* a request was dispatched on this connection */
  char remote[64];
  net__tls *tls;    /* NULL: plaintext */
} conn;

struct net_http_server {
  uv_loop_t *loop;
  net_http_config cfg;
  net_http_handler handler;
  void *arg;
  uv_tcp_t listener;
  uv_timer_t grace;
  bool listening, listener_open, listener_used, grace_open, draining, done_called;
  int port;
  conn *conns;
  size_t nconns, nreqs;
  void (*done)(net_http_server *s, void *arg);
  void *done_arg;
  time_t date_sec;
  char date[40];
  time_t drop_logged;
  uint64_t dropped;
  net_tls_ctx *tls;
};

enum { R_NONE = 0, R_STREAM, R_DONE };

struct net_http_req {
  net__http_msg *msg;
  net_http_server *srv;
  conn *c; /* NULL once the connection is gone */
  bool gone;
  void (*gone_cb)(net_http_req *, void *);
  void *gone_arg;
  const char *route;
  net_http_kv *vars;
  size_t nvars;
  orr_buf hdrs; /* extra response headers, "Name: value\r\n"... */
  int rstate;
  int status;
  bool head, gzip_ok, gzip, chunked, want_drain, z_init;
  bool busy; /* inside a response call: it reports a closed client itself */
  void (*drain_cb)(net_http_req *, void *);
  void *drain_arg;
  z_stream z;
  uint64_t bytes_out;
};

typedef struct wreq {
  uv_write_t w;
  conn *c;
  size_t len;
  char *owned; /* a body written without copying, freed with the request */
  char data[];
} wreq;

static void conn_process(conn *c);
static void update_reading(conn *c);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void conn_close(conn *c);
static void maybe_done(net_http_server *s);
static void on_listener_closed(uv_handle_t *h);

void net_http_config_default(net_http_config *c) {
  memset(c, 0, sizeof(*c));
  c->max_header_bytes = 1u << 20;
  c->max_url_bytes = 64u << 10;
  c->max_body_bytes = 16u << 20;
  c->header_timeout_ms = 10000;
  c->body_timeout_ms = 60000;
  c->idle_timeout_ms = 120000;
  c->write_high_water = 1u << 20;
  c->gzip_min_bytes = 1024;
}

const char *net_http_status_text(int status) {
  switch (status) {
#define X(num, name, string) \
  case num: return #string;
    HTTP_STATUS_MAP(X)
#undef X
  case 499: return "Client Closed Request";
  }
  return "Unknown";
}

/* ---------------------------------------------------------------- writing */

static void on_write(uv_write_t *w, int status) {
  wreq *wr = (wreq *)w;
  conn *c = wr->c;
  c->wqueued -= wr->len;
  free(wr->owned);
  free(wr);
  if (status < 0) {
    conn_close(c);
    return;
  }
  net_http_req *req = c->req;
  if (req && req->want_drain && c->wqueued <= c->srv->cfg.write_high_water / 2) {
    req->want_drain = false;
    if (req->drain_cb) req->drain_cb(req, req->drain_arg);
  }
}

/* Writes out the ciphertext the connection's SSL holds, as one write
 * counted as |plain| bytes of output (note 6). Returns 0, ORR_ECLOSED or
 * ORR_ENOMEM (the connection is then closed). */
static int tls_send(conn *c, size_t plain) {
  size_t n = net__tls_pending_out(c->tls);
  if (n == 0) return 0;
  wreq *wr = malloc(sizeof(*wr) + n);
  if (!wr) {
    conn_close(c);
    return ORR_ENOMEM;
  }
  wr->c = c;
  wr->len = plain;
  wr->owned = NULL;
  n = net__tls_take_out(c->tls, wr->data, n);
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)n);
  c->wqueued += plain;
  if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
    c->wqueued -= plain;
    free(wr);
    conn_close(c);
    return ORR_ECLOSED;
  }
  return 0;
}

/* conn_write_owned over TLS: encrypts the pieces and |owned| (freed). */
static int tls_write(conn *c, const uv_buf_t *pieces, size_t n, char *owned, size_t olen) {
  size_t plain = olen;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    plain += pieces[i].len;
    rc = net__tls_write(c->tls, pieces[i].base, pieces[i].len);
  }
  if (rc == 0 && olen) rc = net__tls_write(c->tls, owned, olen);
  free(owned);
  if (rc) {
    conn_close(c);
    return ORR_ECLOSED;
  }
  return tls_send(c, plain);
}

/* Queues the concatenation of |n| pieces (copied), followed by |owned|
 * (|olen| bytes, taken: freed with free() once written or on failure), as
 * one write. Returns 0, ORR_ECLOSED or ORR_ENOMEM (the connection is then
 * closed). */
static int conn_write_owned(conn *c, const uv_buf_t *pieces, size_t n, char *owned, size_t olen) {
  if (c->closing) {
    free(owned);
    return ORR_ECLOSED;
  }
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len += pieces[i].len;
  if (len + olen == 0) {
    free(owned);
    return 0;
  }
  if (c->tls) return tls_write(c, pieces, n, owned, olen);
  wreq *wr = malloc(sizeof(*wr) + len);
  if (!wr) {
    free(owned);
    conn_close(c);
    return ORR_ENOMEM;
  }
  wr->c = c;
  wr->len = len + olen;
  wr->owned = owned;
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(wr->data + off, pieces[i].base, pieces[i].len);
    off += pieces[i].len;
  }
  uv_buf_t b[2] = {uv_buf_init(wr->data, (unsigned)len), uv_buf_init(owned, (unsigned)olen)};
  c->wqueued += wr->len;
  int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, b, olen ? 2 : 1, on_write);
  if (rc < 0) {
    c->wqueued -= wr->len;
    free(wr->owned);
    free(wr);
    conn_close(c);
    return ORR_ECLOSED;
  }
  return 0;
}

static int conn_write(conn *c, const uv_buf_t *pieces, size_t n) {
  return conn_write_owned(c, pieces, n, NULL, 0);
}

static const char *http_date(net_http_server *s) {
  time_t now = time(NULL);
  if (now != s->date_sec) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    s->date_sec = now;
  }
  return s->date;
}

/* ---------------------------------------------------------------- closing */

static void on_handle_closed(uv_handle_t *h) {
  conn *c = h->data;
  if (--c->handles > 0) return;
  net_http_server *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  net__http_parse_free(&c->ps);
  net__tls_free(c->tls);
  free(c->rbuf);
  free(c);
  s->nconns--;
  maybe_done(s);
}

/* Detaches the active request: it is gone, and learns so. */
static void conn_detach_req(conn *c) {
  net_http_req *req = c->req;
  if (!req) return;
  c->req = NULL;
  req->c = NULL;
  req->gone = true;
  req->want_drain = false;
  if (req->gone_cb && !req->busy) req->gone_cb(req, req->gone_arg);
}

static void conn_close(conn *c) {
  if (c->closing) return;
  c->closing = true;
  c->reading = false;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  conn_detach_req(c);
}

static void on_timer(uv_timer_t *t) {
  conn *c = t->data;
  if (c->state == C_READING)
    orr_log_debug("http request timed out", "remote", c->remote, "phase",
                  c->body_timer ? "body" : "headers", NULL);
  conn_close(c);
}

static void timer_start(conn *c, uint64_t ms) {
  if (c->closing) return;
  if (ms == 0) uv_timer_stop(&c->timer);
  else uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_shutdown(uv_shutdown_t *sh, int status) {
  conn *c = sh->data;
  if (c->closing) return;
  if (status < 0 || c->eof) {
    conn_close(c);
    return;
  }
  /* Linger: read and discard until EOF so that unread input does not turn
   * our close into a reset that could destroy the response in flight. */
  timer_start(c, LINGER_MS);
}

/* Queued output is followed by a FIN; the connection closes after. */
static void conn_end(conn *c) {
  if (c->closing || c->state == C_ENDING) return;
  c->state = C_ENDING;
  c->rlen = 0;
  /* a client that stops reading cannot hold the connection for ever */
  uint64_t flush_ms = c->srv->cfg.idle_timeout_ms > c->srv->cfg.body_timeout_ms
                          ? c->srv->cfg.idle_timeout_ms
                          : c->srv->cfg.body_timeout_ms;
  timer_start(c, flush_ms);
  if (c->tls) {
    net__tls_shutdown(c->tls);
    if (tls_send(c, 0) != 0) return;
  }
  c->shut.data = c;
  if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    conn_close(c);
    return;
  }
  if (!c->eof) update_reading(c);
}

/* ---------------------------------------------------------------- reading */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  conn *c = h->data;
  if (c->tls) {
    /* Ciphertext goes into the thread's read buffer, handed to the SSL at
     * once (note 6). Out of memory: an empty buffer, and on_read closes the
     * connection on UV_ENOBUFS. */
    char *rb = net__thread_rbuf();
    *buf = uv_buf_init(rb, rb ? NET__RBUF_SIZE : 0);
    return;
  }
  if (c->state == C_ENDING) {
    /* discarding: reuse the whole buffer */
    *buf = uv_buf_init(c->rbuf, READ_BUF_SIZE);
    return;
  }
  *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(READ_BUF_SIZE - c->rlen));
}

static void update_reading(conn *c) {
  if (c->closing) return;
  bool want = c->rlen < READ_BUF_SIZE || c->state == C_ENDING;
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

static void send_error(conn *c, int status, const char *msg) {
  char body[256], head[512];
  int bn = snprintf(body, sizeof(body), "%d %s: %s\n", status, net_http_status_text(status),
                    msg ? msg : "");
  if (bn < 0) bn = 0;
  if ((size_t)bn >= sizeof(body)) bn = (int)sizeof(body) - 1;
  int hn = snprintf(head, sizeof(head),
                    "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: %d\r\nConnection: close\r\n\r\n",
                    status, net_http_status_text(status), http_date(c->srv), bn);
  uv_buf_t b[2] = {uv_buf_init(head, (unsigned)hn), uv_buf_init(body, (unsigned)bn)};
  if (conn_write(c, b, 2) == 0) conn_end(c);
}

static bool accepts_gzip(const net__http_msg *m) {
  for (size_t i = 0; i < m->nheaders; i++) {
    if (strcasecmp(m->headers[i].name, "Accept-Encoding") != 0) continue;
    const char *p = m->headers[i].value;
    while (*p) {
      while (*p == ' ' || *p == '\t' || *p == ',') p++;
      const char *tok = p;
      while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t') p++;
      size_t tn = (size_t)(p - tok);
      bool q0 = false;
      while (*p && *p != ',') {
        /* a q=0 parameter refuses the coding */
        if ((*p == 'q' || *p == 'Q') && p[1] == '=') {
          const char *v = p + 2;
          q0 = v[0] == '0' && (v[1] == '\0' || v[1] == ',' || v[1] == ' ' ||
                               (v[1] == '.' && strspn(v + 2, "0") == strcspn(v + 2, ", ;")));
        }
        p++;
      }
      if (!q0 && ((tn == 4 && strncasecmp(tok, "gzip", 4) == 0) || (tn == 1 && *tok == '*')))
        return true;
    }
  }
  return false;
}

static void dispatch(conn *c) {
  net_http_server *s = c->srv;
  net__http_msg *m = net__http_parse_take(&c->ps);
  net_http_req *req = orr_arena_calloc(m->arena, 1, sizeof(*req));
  if (!req) {
    orr_arena_destroy(m->arena);
    send_error(c, 500, "out of memory");
    return;
  }
  req->msg = m;
  req->srv = s;
  req->c = c;
  req->head = strcmp(m->method, "HEAD") == 0;
  req->gzip_ok = accepts_gzip(m);
  c->req = req;
  c->served = true;
  c->state = C_ACTIVE;
  c->body_timer = false;
  uv_timer_stop(&c->timer);
  if (!m->keep_alive || s->draining) c->close_after = true;
  s->nreqs++;
  s->handler(req, s->arg);
}

/* Moves plaintext from the SSL into rbuf while it has room, and sends what
 * the SSL wants to send (handshake, tickets, alerts). Returns 0, UV_EOF at
 * the client's close_notify, or UV_EPROTO when TLS failed (logged). */
static int tls_pull(conn *c) {
  int rc = 0;
  while (c->rlen < READ_BUF_SIZE) {
    ssize_t n = net__tls_read(c->tls, c->rbuf + c->rlen, READ_BUF_SIZE - c->rlen);
    if (n > 0) {
      c->rlen += (size_t)n;
      continue;
    }
    if (n == ORR_ECLOSED) rc = UV_EOF;
    else if (n < 0) rc = UV_EPROTO;
    break;
  }
  if (!c->closing && tls_send(c, 0) != 0) return UV_EPROTO;
  return rc;
}

/* Parses buffered input while no request is active. */
static void conn_process(conn *c) {
  if (c->in_process) return;
  c->in_process = true;
  net_http_server *s = c->srv;
  while (!c->closing && c->state != C_ACTIVE && c->state != C_ENDING) {
    /* pipelined requests may still wait inside the SSL */
    if (c->tls && c->rlen < READ_BUF_SIZE && tls_pull(c) == UV_EPROTO) {
      conn_close(c);
      break;
    }
    if (c->closing || c->rlen == 0) break;
    int ev;
    size_t n = net__http_parse_feed(&c->ps, c->rbuf, c->rlen, &ev);
    if (n > c->rlen) n = c->rlen;
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
    if (c->state == C_IDLE && (c->ps.in_message || ev != NET__HP_MORE)) {
      c->state = C_READING;
      /* the first request's header timer runs from the accept */
      if (c->served) timer_start(c, s->cfg.header_timeout_ms);
    }
    if (ev == NET__HP_ERROR) {
      orr_log_debug("bad http request", "remote", c->remote, "status",
                    ORR_LOG_INT(c->ps.err_status), "err", c->ps.err_msg, NULL);
      send_error(c, c->ps.err_status, c->ps.err_msg);
      break;
    }
    if (c->state == C_READING && c->ps.headers_done && !c->body_timer) {
      c->body_timer = true;
      timer_start(c, s->cfg.body_timeout_ms);
      if (ev == NET__HP_MORE && c->ps.expect_continue) {
        /* the client waits for this before it sends the body */
        uv_buf_t b = uv_buf_init("HTTP/1.1 100 Continue\r\n\r\n", 25);
        conn_write(c, &b, 1);
      }
    }
    if (ev == NET__HP_READY) {
      dispatch(c);
      continue;
    }
    if (n == 0) break;
  }
  update_reading(c);
  c->in_process = false;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  conn *c = st->data;
  if (c->closing) return;
  if (c->tls && nread > 0) {
    if (c->state == C_ENDING) return; /* lingering: discard */
    if (net__tls_feed(c->tls, buf->base, (size_t)nread) != 0) {
      conn_close(c);
      return;
    }
    int rc = tls_pull(c);
    if (c->closing) return;
    if (rc == UV_EPROTO) {
      /* the alert goes out, then the connection ends */
      if (c->state == C_IDLE || c->state == C_READING) {
        c->rlen = 0;
        conn_end(c);
      } else {
        conn_close(c);
      }
      return;
    }
    if (rc == 0) {
      if (c->state != C_ACTIVE) conn_process(c);
      else update_reading(c);
      return;
    }
    nread = UV_EOF; /* close_notify: as the client's FIN */
  }
  if (nread < 0) {
    if (nread == UV_EOF && c->state == C_ACTIVE) {
      /* The client finished sending: like Go, the request is cancelled,
       * but a response it still writes is sent before the connection closes. */
      net_http_req *req = c->req;
      c->close_after = true;
      c->eof = true;
      uv_read_stop(st);
      c->reading = false;
      if (req && !req->gone) {
        req->gone = true;
        if (req->gone_cb && !req->busy) req->gone_cb(req, req->gone_arg);
      }
      return;
    }
    conn_close(c);
    return;
  }
  if (nread == 0) return;
  if (c->state == C_ENDING) return; /* lingering: discard */
  c->rlen += (size_t)nread;
  if (c->state != C_ACTIVE) conn_process(c);
  else update_reading(c);
}

/* Called when the active request is finished and its output queued. */
static void conn_response_done(conn *c) {
  c->req = NULL;
  if (c->closing) return;
  if (c->close_after || c->srv->draining) {
    conn_end(c);
    return;
  }
  c->state = C_IDLE;
  timer_start(c, c->srv->cfg.idle_timeout_ms);
  if (!c->in_process) conn_process(c);
  else update_reading(c);
}

static void free_handle(uv_handle_t *h) { free(h); }

/* Accepts and closes at once (else the listener keeps firing); logs at most
 * once a second. */
static void drop_connection(net_http_server *s, uv_stream_t *ls, const char *why) {
  uv_tcp_t *t = malloc(sizeof(*t));
  if (!t || uv_tcp_init(s->loop, t) != 0) {
    free(t);
    return;
  }
  uv_accept(ls, (uv_stream_t *)t);
  uv_close((uv_handle_t *)t, free_handle);
  s->dropped++;
  time_t now = time(NULL);
  if (now != s->drop_logged) {
    s->drop_logged = now;
    orr_log_warn("http connection refused", "reason", why, "connections", ORR_LOG_INT(s->nconns),
                 "dropped_total", ORR_LOG_INT(s->dropped), NULL);
  }
}

static void on_connection(uv_stream_t *ls, int status) {
  net_http_server *s = ls->data;
  if (status < 0) {
    orr_log_warn("http accept failed", "err", uv_strerror(status), NULL);
    return;
  }
  bool full = s->cfg.max_connections && s->nconns >= s->cfg.max_connections;
  conn *c = full ? NULL : calloc(1, sizeof(*c));
  char *rbuf = full ? NULL : malloc(READ_BUF_SIZE);
  if (!c || !rbuf) {
    free(c);
    free(rbuf);
    drop_connection(s, ls, full ? "too many connections" : "out of memory");
    return;
  }
  c->srv = s;
  c->rbuf = rbuf;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles = 2;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  net__http_parse_init(&c->ps, s->cfg.max_header_bytes, s->cfg.max_url_bytes,
                       s->cfg.max_body_bytes);
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  /* as Go's listener: dead peers of long requests are found */
  uv_tcp_keepalive(&c->tcp, 1, 15);
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    char ip[48] = "";
    int port = 0;
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
      snprintf(c->remote, sizeof(c->remote), "[%s]:%d", ip, port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
      snprintf(c->remote, sizeof(c->remote), "%s:%d", ip, port);
    }
  }
  if (s->tls && net__tls_new(s->tls, "http/1.1", c->remote, NULL, &c->tls) != 0) {
    conn_close(c);
    return;
  }
  /* as Go's ReadHeaderTimeout: a new connection gets the header timeout
   * for its first request, a kept-alive one the idle timeout */
  timer_start(c, s->cfg.header_timeout_ms);
  update_reading(c);
}

/* ---------------------------------------------------------------- server */

int net_http_server_new(uv_loop_t *loop, const net_http_config *cfg, net_http_handler handler,
                        void *arg, net_http_server **out) {
  if (!loop || !handler || !out) return ORR_EINVAL;
  net_http_server *s = calloc(1, sizeof(*s));
  if (!s) return ORR_ENOMEM;
  s->loop = loop;
  if (cfg) s->cfg = *cfg;
  else net_http_config_default(&s->cfg);
  if (s->cfg.write_high_water == 0) s->cfg.write_high_water = 1u << 20;
  s->handler = handler;
  s->arg = arg;
  s->port = -1;
  *out = s;
  return 0;
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss) {
  const char *colon = strrchr(addr, ':');
  if (!colon) return ORR_EINVAL;
  char host[256];
  size_t hn = (size_t)(colon - addr);
  if (hn >= sizeof(host)) return ORR_EINVAL;
  memcpy(host, addr, hn);
  host[hn] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || end == colon + 1 || port < 0 || port > 65535) return ORR_EINVAL;
  if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') {
    host[hn - 1] = '\0';
    return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : ORR_EINVAL;
  }
  if (hn == 0) strcpy(host, "0.0.0.0");
  else if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0) return 0;
  return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : ORR_EINVAL;
}

int net_http_server_listen(net_http_server *s, const char *addr) {
  if (s->listener_used || s->draining) return ORR_EINVAL;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  int rc = parse_addr(addr, &ss);
  if (rc != 0) return rc;
  uv_tcp_init(s->loop, &s->listener);
  s->listener.data = s;
  s->listener_open = true;
  s->listener_used = true;
  int e = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
  if (e == 0) e = uv_listen((uv_stream_t *)&s->listener, 4096, on_connection);
  if (e != 0) {
    /* closed on a later loop turn: shut the server down before freeing it */
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    return e; /* libuv's -errno: the caller logs "address already in use" */
  }
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) == 0)
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  s->listening = true;
  return 0;
}

int net_http_server_port(const net_http_server *s) { return s->port; }

size_t net_http_server_connections(const net_http_server *s) { return s->nconns; }

static void on_grace_closed(uv_handle_t *h) {
  net_http_server *s = h->data;
  s->grace_open = false;
  if (!s->done_called) {
    s->done_called = true;
    if (s->done) s->done(s, s->done_arg);
  }
}

static void maybe_done(net_http_server *s) {
  if (!s->draining || s->done_called || s->listener_open) return;
  if (s->nconns > 0 || s->nreqs > 0) return;
  if (s->grace_open && !uv_is_closing((uv_handle_t *)&s->grace))
    uv_close((uv_handle_t *)&s->grace, on_grace_closed);
}

static void on_listener_closed(uv_handle_t *h) {
  net_http_server *s = h->data;
  s->listener_open = false;
  maybe_done(s);
}

static void on_grace(uv_timer_t *t) {
  net_http_server *s = t->data;
  if (s->nconns > 0)
    orr_log_warn("http shutdown grace period over, closing connections", "connections",
                 ORR_LOG_INT(s->nconns), NULL);
  for (conn *c = s->conns; c; c = c->next) conn_close(c);
  maybe_done(s);
}

void net_http_server_shutdown(net_http_server *s, uint64_t grace_ms,
                              void (*done)(net_http_server *s, void *arg), void *arg) {
  if (s->draining) return;
  s->draining = true;
  s->done = done;
  s->done_arg = arg;
  uv_timer_init(s->loop, &s->grace);
  s->grace.data = s;
  s->grace_open = true;
  if (s->listener_open && !uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  s->listening = false;
  for (conn *c = s->conns; c; c = c->next) {
    if (c->state == C_IDLE && !c->req) conn_close(c);
    else c->close_after = true;
  }
  uv_timer_start(&s->grace, on_grace, grace_ms, 0);
  maybe_done(s);
}

void net_http_server_free(net_http_server *s) {
  if (!s) return;
  net_tls_ctx_unref(s->tls);
  free(s);
}

void net_http_server_set_tls(net_http_server *s, net_tls_ctx *tls) {
  net_tls_ctx *old = s->tls;
  s->tls = net_tls_ctx_ref(tls);
  net_tls_ctx_unref(old);
}

/* ---------------------------------------------------------------- request */

const char *net_http_req_method(const net_http_req *req) { return req->msg->method; }
const char *net_http_req_path(const net_http_req *req) { return req->msg->path; }
const char *net_http_req_target(const net_http_req *req) { return req->msg->target; }

const net_http_kv *net_http_req_params(const net_http_req *req, size_t *n) {
  *n = req->msg->nparams;
  return req->msg->params;
}

const char *net_http_req_param(const net_http_req *req, const char *name) {
  for (size_t i = 0; i < req->msg->nparams; i++)
    if (strcmp(req->msg->params[i].name, name) == 0) return req->msg->params[i].value;
  return NULL;
}

const char *net_http_req_header(const net_http_req *req, const char *name) {
  for (size_t i = 0; i < req->msg->nheaders; i++)
    if (strcasecmp(req->msg->headers[i].name, name) == 0) return req->msg->headers[i].value;
  return NULL;
}

const net_http_kv *net_http_req_headers(const net_http_req *req, size_t *n) {
  *n = req->msg->nheaders;
  return req->msg->headers;
}

const char *net_http_req_body(const net_http_req *req, size_t *len) {
  if (len) *len = req->msg->body_len;
  return req->msg->body;
}

orr_arena *net_http_req_arena(net_http_req *req) { return req->msg->arena; }
uint64_t net_http_req_start_ns(const net_http_req *req) { return req->msg->start_ns; }
const char *net_http_req_remote(const net_http_req *req) { return req->c ? req->c->remote : ""; }
bool net_http_req_gone(const net_http_req *req) { return req->gone; }

void net_http_req_on_gone(net_http_req *req, void (*cb)(net_http_req *req, void *arg), void *arg) {
  req->gone_cb = cb;
  req->gone_arg = arg;
}

const char *net_http_req_route(const net_http_req *req) { return req->route; }

const char *net_http_req_var(const net_http_req *req, const char *name) {
  for (size_t i = 0; i < req->nvars; i++)
    if (strcmp(req->vars[i].name, name) == 0) return req->vars[i].value;
  return NULL;
}

void net__http_req_set_route(net_http_req *req, const char *name, net_http_kv *vars,
                             size_t nvars) {
  req->route = name;
  req->vars = vars;
  req->nvars = nvars;
}

/* ---------------------------------------------------------------- response */

static bool has_crlf(const char *s) { return strpbrk(s, "\r\n") != NULL; }

int net_http_resp_header(net_http_req *req, const char *name, const char *value) {
  if (req->rstate != R_NONE || has_crlf(name) || has_crlf(value) || !*name) return ORR_EINVAL;
  orr_buf_printf(&req->hdrs, "%s: %s\r\n", name, value);
  return req->hdrs.oom ? ORR_ENOMEM : 0;
}

static bool has_resp_header(const net_http_req *req, const char *name) {
  size_t n = strlen(name);
  const char *p = req->hdrs.data;
  const char *end = p ? p + req->hdrs.len : NULL;
  while (p && p < end) {
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') return true;
    p = strstr(p, "\r\n");
    if (p) p += 2;
  }
  return false;
}

static bool status_has_body(int status) {
  return !(status < 200 || status == 204 || status == 304);
}

/* Writes the status line and headers to |h|. |clen| < 0: streaming. */
static void build_head(net_http_req *req, orr_buf *h, int status, const char *ctype,
                       long long clen) {
  conn *c = req->c;
  orr_buf_printf(h, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, net_http_status_text(status),
                 http_date(req->srv));
  if (ctype && status_has_body(status)) orr_buf_printf(h, "Content-Type: %s\r\n", ctype);
  if (req->gzip) orr_buf_puts(h, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
  if (clen >= 0) {
    if (status_has_body(status)) orr_buf_printf(h, "Content-Length: %lld\r\n", clen);
  } else if (req->chunked) {
    orr_buf_puts(h, "Transfer-Encoding: chunked\r\n");
  }
  if (c->close_after || c->srv->draining) orr_buf_puts(h, "Connection: close\r\n");
  else if (req->msg->http_minor == 0 && req->msg->http_major == 1)
    orr_buf_puts(h, "Connection: keep-alive\r\n");
  if (req->hdrs.len) orr_buf_append(h, req->hdrs.data, req->hdrs.len);
  orr_buf_puts(h, "\r\n");
}

static void req_finish(net_http_req *req) {
  net_http_server *s = req->srv;
  conn *c = req->c;
  req->rstate = R_DONE;
  if (s->cfg.on_complete) s->cfg.on_complete(req, req->status, req->bytes_out, s->cfg.on_complete_arg);
  if (req->z_init) deflateEnd(&req->z);
  orr_buf_free(&req->hdrs);
  orr_arena_destroy(req->msg->arena); /* frees req too */
  s->nreqs--;
  if (c) conn_response_done(c);
  else maybe_done(s);
}

static int gzip_whole(const void *in, size_t n, orr_buf *out) {
  z_stream z;
  memset(&z, 0, sizeof(z));
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return ORR_ENOMEM;
  size_t bound = deflateBound(&z, (uLong)n);
  int rc = orr_buf_reserve(out, bound);
  if (rc == 0) {
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)bound;
    rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : ORR_EINTERNAL;
    out->len = z.total_out;
  }
  deflateEnd(&z);
  return rc;
}

/* Sends the head and |out| (taken) for a whole response. */
static void send_whole(net_http_req *req, const char *ctype, char *out, size_t outlen) {
  conn *c = req->c;
  if (!c) {
    free(out);
    return;
  }
  if (!status_has_body(req->status)) outlen = 0;
  orr_buf head = {0};
  build_head(req, &head, req->status, ctype, (long long)outlen);
  if (head.oom) {
    free(out);
    conn_close(c);
  } else {
    if (req->head) outlen = 0;
    uv_buf_t b = uv_buf_init(head.data, (unsigned)head.len);
    if (conn_write_owned(c, &b, 1, outlen ? out : NULL, outlen) == 0) req->bytes_out = outlen;
    if (!outlen) free(out);
  }
  orr_buf_free(&head);
}

/* Bodies this large are compressed on the thread pool, not on the loop. */
#define ASYNC_GZIP_BYTES (128u * 1024u)

typedef struct gzip_job {
  uv_work_t work;
  net_http_req *req;
  char *in;
  size_t inlen;
  const char *ctype; /* in the request's arena */
  orr_buf out;
  int rc;
} gzip_job;

static void gzip_job_run(uv_work_t *w) {
  gzip_job *j = w->data;
  j->rc = gzip_whole(j->in, j->inlen, &j->out);
}

static void gzip_job_done(uv_work_t *w, int status) {
  gzip_job *j = w->data;
  net_http_req *req = j->req;
  if (status == 0 && j->rc == 0) {
    free(j->in);
    size_t n;
    char *z = orr_buf_steal(&j->out, &n);
    req->gzip = true;
    send_whole(req, j->ctype, z, n);
  } else {
    orr_buf_free(&j->out);
    send_whole(req, j->ctype, j->in, j->inlen);
  }
  free(j);
  req_finish(req);
}

/* The whole-body response; takes |body| (malloc'd, may be NULL if |len| is 0). */
static void respond_owned(net_http_req *req, int status, const char *ctype, char *body,
                          size_t len) {
  assert(req->rstate == R_NONE);
  req->status = status;
  req->busy = true; /* the handler is done with it: no gone callback from now */
  req->rstate = R_DONE;
  if (req->c && req->gzip_ok && !req->head && status_has_body(status) &&
      len >= req->srv->cfg.gzip_min_bytes && len > 0 && len <= UINT32_MAX &&
      !has_resp_header(req, "Content-Encoding")) {
    if (len >= ASYNC_GZIP_BYTES) {
      gzip_job *j = calloc(1, sizeof(*j));
      const char *ct = ctype ? orr_arena_strdup(req->msg->arena, ctype) : NULL;
      if (j && (ct || !ctype)) {
        j->work.data = j;
        j->req = req;
        j->in = body;
        j->inlen = len;
        j->ctype = ct;
        if (uv_queue_work(req->srv->loop, &j->work, gzip_job_run, gzip_job_done) == 0) return;
      }
      free(j);
    }
    orr_buf z = {0};
    if (gzip_whole(body, len, &z) == 0) {
      free(body);
      body = orr_buf_steal(&z, &len);
      req->gzip = true;
    } else {
      orr_buf_free(&z);
    }
  }
  send_whole(req, ctype, body, len);
  req_finish(req);
}

void net_http_respond(net_http_req *req, int status, const char *content_type, const void *body,
                      size_t len) {
  char *copy = malloc(len + 1);
  if (!copy) {
    respond_owned(req, 500, "text/plain; charset=utf-8", NULL, 0);
    return;
  }
  if (len) memcpy(copy, body, len);
  respond_owned(req, status, content_type, copy, len);
}

void net_http_respond_buf(net_http_req *req, int status, const char *content_type, orr_buf *body) {
  if (body->oom) {
    orr_buf_free(body);
    net_http_respond(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
    return;
  }
  size_t len = 0;
  char *data = body->data ? orr_buf_steal(body, &len) : NULL;
  if (!data) len = 0;
  respond_owned(req, status, content_type, data, len);
}

void net_http_respondf(net_http_req *req, int status, const char *fmt, ...) {
  orr_buf b = {0};
  va_list ap;
  va_start(ap, fmt);
  orr_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  net_http_respond_buf(req, status, "text/plain; charset=utf-8", &b);
}

int net_http_stream_begin(net_http_req *req, int status, const char *content_type,
                          void (*on_drain)(net_http_req *req, void *arg), void *arg) {
  if (req->rstate != R_NONE) return ORR_EINVAL;
  req->rstate = R_STREAM;
  req->status = status;
  req->busy = true;
  req->drain_cb = on_drain;
  req->drain_arg = arg;
  conn *c = req->c;
  if (!c) {
    req->busy = false;
    return 0;
  }
  bool http11 = req->msg->http_major == 1 && req->msg->http_minor >= 1;
  req->chunked = http11;
  if (!http11) c->close_after = true; /* close-delimited body */
  if (req->gzip_ok && status_has_body(status) && !req->head &&
      !has_resp_header(req, "Content-Encoding")) {
    memset(&req->z, 0, sizeof(req->z));
    if (deflateInit2(&req->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) == Z_OK) {
      req->z_init = true;
      req->gzip = true;
    }
  }
  orr_buf head = {0};
  build_head(req, &head, status, content_type, -1);
  int rc = head.oom ? ORR_ENOMEM : 0;
  if (rc == 0) {
    uv_buf_t b = uv_buf_init(head.data, (unsigned)head.len);
    conn_write(c, &b, 1);
  } else {
    conn_close(c);
  }
  orr_buf_free(&head);
  req->busy = false;
  return 0;
}

/* Sends |n| bytes of body as one chunk (or raw for HTTP/1.0). */
static int send_body(net_http_req *req, const void *p, size_t n) {
  conn *c = req->c;
  if (n == 0) return 0;
  char pre[24];
  int pn = req->chunked ? snprintf(pre, sizeof(pre), "%zx\r\n", n) : 0;
  uv_buf_t b[3] = {uv_buf_init(pre, (unsigned)pn), uv_buf_init((char *)p, (unsigned)n),
                   uv_buf_init("\r\n", req->chunked ? 2 : 0)};
  int rc = conn_write(c, b, 3);
  if (rc == 0) req->bytes_out += n;
  return rc;
}

/* Runs |in| through the compressor with |flush| and sends what comes out. */
static int send_deflated(net_http_req *req, const void *in, size_t n, int flush) {
  unsigned char out[16384];
  orr_buf acc = {0};
  req->z.next_in = (Bytef *)in;
  req->z.avail_in = (uInt)n;
  int rc = 0;
  for (;;) {
    req->z.next_out = out;
    req->z.avail_out = sizeof(out);
    int zr = deflate(&req->z, flush);
    if (zr == Z_STREAM_ERROR) {
      rc = ORR_EINTERNAL;
      break;
    }
    size_t got = sizeof(out) - req->z.avail_out;
    if (got && orr_buf_append(&acc, out, got) != 0) {
      rc = ORR_ENOMEM;
      break;
    }
    if (req->z.avail_out != 0 && req->z.avail_in == 0) break;
    if (zr == Z_STREAM_END) break;
  }
  if (rc == 0) rc = send_body(req, acc.data, acc.len);
  orr_buf_free(&acc);
  return rc;
}

static int stream_status(net_http_req *req, int rc) {
  if (rc != 0) return rc == ORR_ENOMEM ? rc : ORR_ECLOSED;
  if (!req->c || req->gone) return ORR_ECLOSED;
  if (req->c->wqueued > req->srv->cfg.write_high_water) {
    req->want_drain = true;
    return ORR_EAGAIN;
  }
  return 0;
}

int net_http_stream_write(net_http_req *req, const void *data, size_t len) {
  if (req->rstate != R_STREAM) return ORR_EINVAL;
  if (!req->c) return ORR_ECLOSED;
  if (req->head) return stream_status(req, 0);
  int rc = 0;
  const char *p = data;
  req->busy = true;
  while (rc == 0 && len > 0 && req->c) {
    size_t n = len > (1u << 30) ? (1u << 30) : len;
    rc = req->z_init ? send_deflated(req, p, n, Z_NO_FLUSH) : send_body(req, p, n);
    p += n;
    len -= n;
  }
  req->busy = false;
  return stream_status(req, rc);
}

int net_http_stream_flush(net_http_req *req) {
  if (req->rstate != R_STREAM) return ORR_EINVAL;
  if (!req->c) return ORR_ECLOSED;
  req->busy = true;
  int rc = req->z_init ? send_deflated(req, NULL, 0, Z_SYNC_FLUSH) : 0;
  req->busy = false;
  return stream_status(req, rc);
}

void net_http_stream_end(net_http_req *req) {
  assert(req->rstate == R_STREAM);
  req->busy = true;
  if (req->c && !req->head) {
    int rc = 0;
    if (req->z_init) rc = send_deflated(req, NULL, 0, Z_FINISH);
    if (rc == 0 && req->c && req->chunked) {
      uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
      conn_write(req->c, &b, 1);
    }
  }
  req_finish(req);
}
