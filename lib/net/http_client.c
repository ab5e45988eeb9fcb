/* http_client.c: the HTTP client — libcurl's multi interface driven by the
 * libuv loop (a uv_poll_t per socket curl watches, one uv_timer_t for curl's
 * timeouts), with streaming bodies, backpressure, cancellation and retries. */

/* NOTES ON THE DESIGN
 *
 * States of a request (r->state):
 *   NEW      created, not yet handed to curl; on c->reqs.
 *   RUNNING  its easy handle is in the multi handle (one attempt).
 *   BACKOFF  between two attempts; r->retry_timer runs.
 *   DONE     on_done runs; the request is freed when it returns.
 * NEW → RUNNING (start, or the idle handle when started inside a callback);
 * RUNNING → BACKOFF (attempt failed, retry allowed) → RUNNING (timer);
 * any → DONE (finish()).
 *
 * Invariants:
 *  1. Every request on c->reqs gets on_done exactly once, from finish(),
 *     which unlinks it from c->reqs and c->pending first.
 *  2. finish(), curl_multi_add/remove_handle and curl_easy_pause run only
 *     outside curl calls (c->in_curl == 0). What a callback asks for inside
 *     curl (cancel, resume, start) is queued on c->pending and done by the
 *     idle handle; so no user callback runs from inside our own API calls.
 *  3. uv handles are embedded in the struct that owns them and freed in their
 *     close callbacks; c->open_handles counts handles not yet closed. A
 *     closing client is freed when no request is left, the multi handle is
 *     cleaned up and open_handles drops to zero.
 *  4. A response reaches the caller only when it is final: a retryable
 *     status sets r->discard before on_headers, and its body is dropped. Once
 *     r->delivered is set the request is never retried.
 *  5. Per-attempt state (status, headers, discard, abort_rc, errbuf) is reset
 *     before each retry; settings on the easy handle are set once.
 */

#include <assert.h>
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net.h"

enum { REQ_NEW = 0, REQ_RUNNING, REQ_BACKOFF, REQ_DONE };
enum { PEND_START = 1, PEND_CANCEL = 2, PEND_RESUME = 4, PEND_FAIL = 8 };
enum { BODY_NONE = 0, BODY_BYTES, BODY_READER };

/* Body bytes of a retryable response that we read (to keep the connection)
 * before giving up on it and closing the connection instead. */
#define NET__HC_DISCARD_MAX (64 * 1024)

typedef struct net__hc_sock {
  uv_poll_t poll; /* poll.data = this */
  net_http_client *c;
  curl_socket_t fd;
  struct net__hc_sock *prev, *next; /* c->socks */
} net__hc_sock;

struct net_http_client_req {
  net_http_client *c;
  net_http_client_req *prev, *next;   /* c->reqs */
  net_http_client_req *pprev, *pnext; /* c->pending, when pending != 0 */
  unsigned pending;
  int state;
  int fail_rc; /* PEND_FAIL */
  CURL *easy;
  bool configured;
  char *method, *url;
  struct curl_slist *headers;
  bool has_expect, has_ctype;
  /* request body */
  int body_kind;
  const char *body;
  size_t body_len;
  int64_t reader_len;
  net_http_client_read_fn read;
  net_http_client_rewind_fn rewind;
  void *reader_arg;
  bool reader_used; /* read since the last rewind */
  int64_t total_ms, connect_ms;
  char *sigv4, *userpwd;
  char *ca_file, *cert_file, *key_file, *server_name;
  bool tls_insecure;
  net_http_client_headers_fn on_headers;
  net_http_client_body_fn on_body;
  net_http_client_done_fn on_done;
  void *arg;
  orr_buf *collect;
  size_t collect_max;
  bool has_retry;
  net_http_client_retry retry;
  int attempts;
  uint64_t start_ns; /* first attempt */
  uv_timer_t retry_timer; /* initialised on the first retry */
  bool timer_init;
  bool canceled;
  bool paused;
  bool delivered;
  uint64_t body_bytes;
  /* per attempt */
  int status;
  bool headers_done;
  bool discard;
  size_t discarded;
  int abort_rc;
  orr_buf hdrs; /* "Name: value\0" per header line of the final response */
  char errbuf[CURL_ERROR_SIZE];
};

struct net_http_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer; /* curl's timeout */
  uv_idle_t idle;   /* runs c->pending */
  int in_curl;
  int open_handles;
  bool closing, multi_cleaned;
  void (*close_cb)(void *arg);
  void *close_arg;
  net_http_client_req *reqs;
  net_http_client_req *pending_head, *pending_tail;
  net__hc_sock *socks;
  char *user_agent;
  uint64_t rng;
};

static void net__hc_finish(net_http_client_req *r, int rc);

/* Checks the invariants of the design notes that one request can show. */
#ifndef NDEBUG
static void net__hc_assert_req_state(const net_http_client_req *r) {
  const net_http_client *c = r->c;
  assert(r->state >= REQ_NEW && r->state <= REQ_DONE);
  /* 1: on the pending list exactly when flagged; DONE is off every list */
  assert(!r->pending == (r->pprev == NULL && r->pnext == NULL && c->pending_head != r));
  if (r->state == REQ_DONE) assert(!r->pending && !r->prev && !r->next && c->reqs != r);
  /* BACKOFF waits on its timer; RUNNING is one attempt in curl */
  if (r->state == REQ_BACKOFF) assert(r->timer_init && uv_is_active((uv_handle_t *)&r->retry_timer));
  if (r->state == REQ_RUNNING) assert(r->attempts >= 1 && r->configured);
  /* 4: what was delivered is final */
  assert(!(r->delivered && r->discard));
  if (r->has_retry) assert(r->attempts <= r->retry.max_attempts);
}
#else
#define net__hc_assert_req_state(r) ((void)0)
#endif
static void net__hc_maybe_free(net_http_client *c);
static void net__hc_check_info(net_http_client *c);

/* ---------------------------------------------------------------- helpers */

static uint64_t net__hc_rand(net_http_client *c) {
  /* splitmix64: jitter only, no need for anything stronger */
  uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void net__hc_handle_closed(uv_handle_t *h) {
  net_http_client *c = h->data;
  c->open_handles--;
  net__hc_maybe_free(c);
}

static void net__hc_pending_unlink(net_http_client_req *r) {
  net_http_client *c = r->c;
  if (!r->pending) return;
  if (r->pprev) r->pprev->pnext = r->pnext;
  else c->pending_head = r->pnext;
  if (r->pnext) r->pnext->pprev = r->pprev;
  else c->pending_tail = r->pprev;
  r->pprev = r->pnext = NULL;
  r->pending = 0;
}

static void net__hc_on_idle(uv_idle_t *h);

static void net__hc_queue(net_http_client_req *r, unsigned what) {
  net_http_client *c = r->c;
  if (!r->pending) {
    r->pprev = c->pending_tail;
    r->pnext = NULL;
    if (c->pending_tail) c->pending_tail->pnext = r;
    else c->pending_head = r;
    c->pending_tail = r;
  }
  r->pending |= what;
  uv_idle_start(&c->idle, net__hc_on_idle);
}

static bool net__hc_rewindable(const net_http_client_req *r) {
  return r->body_kind != BODY_READER || !r->reader_used || r->rewind != NULL;
}

/* ---------------------------------------------------------------- curl → uv */

static void net__hc_sock_closed(uv_handle_t *h) {
  net__hc_sock *sk = h->data;
  net_http_client *c = sk->c;
  free(sk);
  c->open_handles--;
  net__hc_maybe_free(c);
}

static void net__hc_sock_close(net_http_client *c, net__hc_sock *sk) {
  if (sk->prev) sk->prev->next = sk->next;
  else c->socks = sk->next;
  if (sk->next) sk->next->prev = sk->prev;
  uv_close((uv_handle_t *)&sk->poll, net__hc_sock_closed);
}

static void net__hc_action(net_http_client *c, curl_socket_t fd, int flags) {
  int running = 0;
  c->in_curl++;
  curl_multi_socket_action(c->multi, fd, flags, &running);
  c->in_curl--;
  net__hc_check_info(c);
}

static void net__hc_on_poll(uv_poll_t *p, int status, int events) {
  net__hc_sock *sk = p->data;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  net__hc_action(sk->c, sk->fd, flags);
}

static int net__hc_on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  net_http_client *c = userp;
  net__hc_sock *sk = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (sk) {
      net__hc_sock_close(c, sk);
      curl_multi_assign(c->multi, s, NULL);
    }
    return 0;
  }
  if (!sk) {
    sk = calloc(1, sizeof(*sk));
    if (!sk) return -1;
    if (uv_poll_init_socket(c->loop, &sk->poll, s) != 0) {
      free(sk);
      return -1;
    }
    sk->poll.data = sk;
    sk->c = c;
    sk->fd = s;
    sk->next = c->socks;
    if (c->socks) c->socks->prev = sk;
    c->socks = sk;
    c->open_handles++;
    curl_multi_assign(c->multi, s, sk);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  if (uv_poll_start(&sk->poll, ev, net__hc_on_poll) != 0) return -1;
  return 0;
}

static void net__hc_on_timer(uv_timer_t *t) {
  net__hc_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int net__hc_on_curl_timer(CURLM *m, long timeout_ms, void *userp) {
  net_http_client *c = userp;
  if (timeout_ms < 0) uv_timer_stop(&c->timer);
  else uv_timer_start(&c->timer, net__hc_on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ---------------------------------------------------------------- curl callbacks */

/* The final response's headers are in. Returns false to abort the transfer. */
static bool net__hc_headers_complete(net_http_client_req *r) {
  r->headers_done = true;
  if (r->has_retry && !r->canceled && !r->c->closing && r->attempts < r->retry.max_attempts &&
      net__hc_rewindable(r)) {
    int (*pred)(const net_http_client_req *, int, int, void *) =
        r->retry.should_retry ? r->retry.should_retry : net_http_client_retry_default;
    if (pred(r, 0, r->status, r->retry.arg)) {
      r->discard = true;
      return true;
    }
  }
  r->delivered = true;
  if (r->collect) {
    const char *cl = net_http_client_header(r, "content-length");
    if (cl && strtoull(cl, NULL, 10) > r->collect_max) {
      r->abort_rc = ORR_ELIMIT;
      return false;
    }
  }
  if (r->on_headers) {
    int rc = r->on_headers(r, r->status, r->arg);
    if (rc < 0) {
      r->abort_rc = rc;
      return false;
    }
  }
  return !r->canceled;
}

static size_t net__hc_on_header(char *buf, size_t size, size_t nitems, void *ud) {
  net_http_client_req *r = ud;
  size_t n = size * nitems, len = n;
  if (r->canceled || r->abort_rc) return 0;
  if (r->headers_done) return n; /* trailers */
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) len--;
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    /* a status line starts a new header block (1xx, then the final one) */
    orr_buf_reset(&r->hdrs);
    r->status = 0;
    const char *sp = memchr(buf, ' ', len);
    if (sp && (size_t)(buf + len - sp) >= 4) {
      int st = 0;
      for (int i = 1; i <= 3 && sp[i] >= '0' && sp[i] <= '9'; i++) st = st * 10 + (sp[i] - '0');
      r->status = st;
    }
    return n;
  }
  if (len == 0) {
    if (r->status >= 100 && r->status < 200) return n; /* interim response */
    return net__hc_headers_complete(r) ? n : 0;
  }
  while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t')) len--;
  orr_buf_append(&r->hdrs, buf, len);
  orr_buf_putc(&r->hdrs, '\0');
  if (r->hdrs.oom) {
    r->abort_rc = ORR_ENOMEM;
    return 0;
  }
  return n;
}

static size_t net__hc_on_write(char *p, size_t size, size_t nmemb, void *ud) {
  net_http_client_req *r = ud;
  size_t n = size * nmemb;
  if (n == 0) return 0;
  if (r->canceled || r->abort_rc) return 0;
  if (!r->headers_done && !net__hc_headers_complete(r)) return 0;
  if (r->discard) {
    r->discarded += n;
    return r->discarded > NET__HC_DISCARD_MAX ? 0 : n;
  }
  if (r->collect) {
    if (r->collect->len + n > r->collect_max) {
      r->abort_rc = ORR_ELIMIT;
      return 0;
    }
    if (orr_buf_append(r->collect, p, n) != 0) {
      r->abort_rc = ORR_ENOMEM;
      return 0;
    }
  } else if (r->on_body) {
    int rc = r->on_body(r, p, n, r->arg);
    if (r->canceled) return 0;
    if (rc == NET_HTTP_CLIENT_PAUSE) {
      r->paused = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    if (rc < 0) {
      r->abort_rc = rc;
      return 0;
    }
  }
  r->body_bytes += n;
  return n;
}

static size_t net__hc_on_read(char *buf, size_t size, size_t nitems, void *ud) {
  net_http_client_req *r = ud;
  size_t cap = size * nitems;
  if (r->canceled || r->abort_rc) return CURL_READFUNC_ABORT;
  size_t got = 0;
  r->reader_used = true;
  int rc = r->read(r, buf, cap, &got, r->reader_arg);
  if (r->canceled) return CURL_READFUNC_ABORT;
  if (rc == NET_HTTP_CLIENT_PAUSE) {
    r->paused = true;
    return CURL_READFUNC_PAUSE;
  }
  if (rc < 0 || got > cap) {
    r->abort_rc = rc < 0 ? rc : ORR_EINVAL;
    return CURL_READFUNC_ABORT;
  }
  return got;
}

static int net__hc_on_seek(void *ud, curl_off_t off, int origin) {
  net_http_client_req *r = ud;
  if (origin != SEEK_SET || off < 0) return CURL_SEEKFUNC_CANTSEEK;
  if (off != 0 || !r->rewind) return CURL_SEEKFUNC_CANTSEEK;
  if (r->rewind(r, r->reader_arg) != 0) return CURL_SEEKFUNC_FAIL;
  r->reader_used = false;
  return CURL_SEEKFUNC_OK;
}

/* ---------------------------------------------------------------- attempts */

#define NET__HC_SETOPT(e, opt, val) \
  do { \
    if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK) goto fail; \
  } while (0)

/* CURLOPT_SSL_CTX_FUNCTION for tls_config.server_name (OpenSSL backend). */
static CURLcode net__hc_ssl_ctx(CURL *e, void *ssl_ctx, void *arg) {
  (void)e;
  X509_VERIFY_PARAM *p = SSL_CTX_get0_param((SSL_CTX *)ssl_ctx);
  if (!p || X509_VERIFY_PARAM_set1_host(p, (const char *)arg, 0) != 1) return CURLE_SSL_CERTPROBLEM;
  return CURLE_OK;
}

/* Sets every option of |r| on its easy handle; once per request. */
static int net__hc_configure(net_http_client_req *r) {
  CURL *e = r->easy;
  net_http_client *c = r->c;
  if (!r->has_expect && r->body_kind != BODY_NONE) {
    /* curl would wait up to a second for "100 Continue" before sending */
    struct curl_slist *h = curl_slist_append(r->headers, "Expect:");
    if (!h) return ORR_ENOMEM;
    r->headers = h;
  }
  if (!r->has_ctype && r->body_kind == BODY_BYTES) {
    /* curl would label bytes from CURLOPT_POSTFIELDS as a form */
    struct curl_slist *h = curl_slist_append(r->headers, "Content-Type:");
    if (!h) return ORR_ENOMEM;
    r->headers = h;
  }
  NET__HC_SETOPT(e, CURLOPT_URL, r->url);
  NET__HC_SETOPT(e, CURLOPT_PRIVATE, (void *)r);
  NET__HC_SETOPT(e, CURLOPT_NOSIGNAL, 1L);
  NET__HC_SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
  NET__HC_SETOPT(e, CURLOPT_ERRORBUFFER, r->errbuf);
  NET__HC_SETOPT(e, CURLOPT_HEADERFUNCTION, net__hc_on_header);
  NET__HC_SETOPT(e, CURLOPT_HEADERDATA, (void *)r);
  NET__HC_SETOPT(e, CURLOPT_WRITEFUNCTION, net__hc_on_write);
  NET__HC_SETOPT(e, CURLOPT_WRITEDATA, (void *)r);
  NET__HC_SETOPT(e, CURLOPT_USERAGENT, c->user_agent);
  NET__HC_SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
  if (r->total_ms > 0) NET__HC_SETOPT(e, CURLOPT_TIMEOUT_MS, (long)r->total_ms);
  if (r->connect_ms > 0) NET__HC_SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_ms);
  if (r->headers) NET__HC_SETOPT(e, CURLOPT_HTTPHEADER, r->headers);
  if (r->body_kind == BODY_BYTES) {
    /* from memory: curl resends it itself, and SigV4 signs its hash */
    NET__HC_SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    NET__HC_SETOPT(e, CURLOPT_POSTFIELDS, r->body_len ? r->body : "");
    if (strcmp(r->method, "POST") != 0) NET__HC_SETOPT(e, CURLOPT_CUSTOMREQUEST, r->method);
  } else if (r->body_kind == BODY_READER) {
    curl_off_t len = (curl_off_t)r->reader_len;
    NET__HC_SETOPT(e, CURLOPT_UPLOAD, 1L);
    NET__HC_SETOPT(e, CURLOPT_READFUNCTION, net__hc_on_read);
    NET__HC_SETOPT(e, CURLOPT_READDATA, (void *)r);
    NET__HC_SETOPT(e, CURLOPT_SEEKFUNCTION, net__hc_on_seek);
    NET__HC_SETOPT(e, CURLOPT_SEEKDATA, (void *)r);
    NET__HC_SETOPT(e, CURLOPT_INFILESIZE_LARGE, len);
    if (strcmp(r->method, "PUT") != 0) NET__HC_SETOPT(e, CURLOPT_CUSTOMREQUEST, r->method);
  } else if (strcmp(r->method, "GET") == 0) {
    NET__HC_SETOPT(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(r->method, "HEAD") == 0) {
    NET__HC_SETOPT(e, CURLOPT_NOBODY, 1L);
  } else if (strcmp(r->method, "POST") == 0) {
    NET__HC_SETOPT(e, CURLOPT_POSTFIELDS, "");
    NET__HC_SETOPT(e, CURLOPT_POSTFIELDSIZE, 0L);
  } else {
    NET__HC_SETOPT(e, CURLOPT_CUSTOMREQUEST, r->method);
  }
  if (r->ca_file) NET__HC_SETOPT(e, CURLOPT_CAINFO, r->ca_file);
  if (r->cert_file) NET__HC_SETOPT(e, CURLOPT_SSLCERT, r->cert_file);
  if (r->key_file) NET__HC_SETOPT(e, CURLOPT_SSLKEY, r->key_file);
  if (r->tls_insecure) {
    NET__HC_SETOPT(e, CURLOPT_SSL_VERIFYPEER, 0L);
    NET__HC_SETOPT(e, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (r->server_name) {
    /* tls_config.server_name: OpenSSL checks the certificate against it
     * during verification, in place of curl's check of the URL's host. */
    NET__HC_SETOPT(e, CURLOPT_SSL_VERIFYHOST, 0L);
    NET__HC_SETOPT(e, CURLOPT_SSL_CTX_FUNCTION, net__hc_ssl_ctx);
    NET__HC_SETOPT(e, CURLOPT_SSL_CTX_DATA, (void *)r->server_name);
  }
  if (r->sigv4) {
    NET__HC_SETOPT(e, CURLOPT_AWS_SIGV4, r->sigv4);
    NET__HC_SETOPT(e, CURLOPT_USERPWD, r->userpwd);
  }
  r->configured = true;
  return 0;
fail:
  return ORR_EINTERNAL;
}

/* Hands |r|'s easy handle to curl for one attempt. Outside curl only. */
static int net__hc_add(net_http_client_req *r) {
  if (!r->configured) {
    int rc = net__hc_configure(r);
    if (rc != 0) return rc;
  }
  if (r->attempts == 0) r->start_ns = orr_mono_ns();
  if (r->has_retry && r->retry.max_elapsed_ms > 0) {
    /* the attempt may use what is left of the budget, at most total_ms */
    int64_t left = r->retry.max_elapsed_ms - (int64_t)((orr_mono_ns() - r->start_ns) / 1000000);
    if (r->total_ms > 0 && r->total_ms < left) left = r->total_ms;
    if (curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)(left > 1 ? left : 1)) != CURLE_OK)
      return ORR_EINTERNAL;
  }
  r->attempts++;
  r->state = REQ_RUNNING;
  if (curl_multi_add_handle(r->c->multi, r->easy) != CURLM_OK) {
    r->state = REQ_NEW;
    return ORR_EINTERNAL;
  }
  net__hc_assert_req_state(r);
  return 0;
}

static void net__hc_on_retry_timer(uv_timer_t *t) {
  net_http_client_req *r = t->data;
  int rc = net__hc_add(r);
  if (rc != 0) net__hc_finish(r, rc);
}

/* Waits before the next attempt of |r|, whose last attempt ended with |rc|.
 * Returns false when it cannot (then the caller finishes |r|). */
static bool net__hc_schedule_retry(net_http_client_req *r) {
  net_http_client *c = r->c;
  int64_t delay = net_http_client_retry_delay_ms(&r->retry, r->attempts, net__hc_rand(c));
  curl_off_t ra = 0;
  if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) {
    int64_t cap = r->retry.max_retry_after_ms > 0 ? r->retry.max_retry_after_ms : 60000;
    int64_t ra_ms = ra > cap / 1000 ? cap : (int64_t)ra * 1000;
    if (ra_ms > delay) delay = ra_ms;
  }
  if (r->retry.max_elapsed_ms > 0 &&
      (int64_t)((orr_mono_ns() - r->start_ns) / 1000000) + delay >= r->retry.max_elapsed_ms)
    return false; /* the budget ends before the next attempt could start */
  if (r->body_kind == BODY_READER && r->reader_used) {
    if (!r->rewind || r->rewind(r, r->reader_arg) != 0) return false;
    r->reader_used = false;
  }
  if (!r->timer_init) {
    if (uv_timer_init(c->loop, &r->retry_timer) != 0) return false;
    r->retry_timer.data = r;
    r->timer_init = true;
    c->open_handles++;
  }
  char url[512];
  orr_log_debug("http client retry", "url", net_url_redacted(r->url, url, sizeof url), "attempt",
                ORR_LOG_INT(r->attempts),
                "status", ORR_LOG_INT(r->status), "delay_ms", ORR_LOG_INT(delay), NULL);
  r->status = 0;
  r->headers_done = false;
  r->discard = false;
  r->discarded = 0;
  r->abort_rc = 0;
  r->paused = false;
  r->errbuf[0] = '\0';
  orr_buf_reset(&r->hdrs);
  r->state = REQ_BACKOFF;
  uv_timer_start(&r->retry_timer, net__hc_on_retry_timer, (uint64_t)delay, 0);
  net__hc_assert_req_state(r);
  return true;
}

/* Curl finished an attempt of |r| with |cc|. Outside curl. */
static void net__hc_attempt_done(net_http_client_req *r, CURLcode cc) {
  net_http_client *c = r->c;
  net__hc_assert_req_state(r);
  curl_multi_remove_handle(c->multi, r->easy);
  r->state = REQ_NEW; /* not in curl; finish() or a retry follows */
  r->paused = false;
  int rc;
  if (r->canceled) rc = ORR_ECANCELED;
  else if (r->abort_rc) rc = r->abort_rc;
  else if (cc == CURLE_OK) rc = 0;
  else if (cc == CURLE_OPERATION_TIMEDOUT) rc = ORR_ETIMEOUT;
  else if (cc == CURLE_OUT_OF_MEMORY) rc = ORR_ENOMEM;
  else rc = ORR_EIO;
  if (cc != CURLE_OK && r->errbuf[0] == '\0') {
    snprintf(r->errbuf, sizeof(r->errbuf), "%s", curl_easy_strerror(cc));
  }
  bool retry = false;
  if (!r->canceled && !c->closing && r->has_retry) {
    if (r->discard) {
      retry = true;
    } else if (rc != 0 && !r->delivered && r->abort_rc == 0 &&
               r->attempts < r->retry.max_attempts && net__hc_rewindable(r)) {
      int (*pred)(const net_http_client_req *, int, int, void *) =
          r->retry.should_retry ? r->retry.should_retry : net_http_client_retry_default;
      retry = pred(r, rc, r->status, r->retry.arg) != 0;
    }
  }
  if (retry && net__hc_schedule_retry(r)) return;
  if (r->discard) {
    /* a retryable status we could not retry after all: report it as is */
    rc = 0;
  }
  net__hc_finish(r, rc);
}

static void net__hc_check_info(net_http_client *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    CURLcode cc = m->data.result;
    char *priv = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
    net_http_client_req *r = (net_http_client_req *)(void *)priv;
    if (r && r->state == REQ_RUNNING) net__hc_attempt_done(r, cc);
  }
}

/* ---------------------------------------------------------------- finishing */

static void net__hc_req_free_mem(net_http_client_req *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  orr_buf_free(&r->hdrs);
  free(r->method);
  free(r->url);
  free(r->sigv4);
  free(r->ca_file);
  free(r->cert_file);
  free(r->key_file);
  free(r->server_name);
  if (r->userpwd) {
    memset(r->userpwd, 0, strlen(r->userpwd));
    free(r->userpwd);
  }
}

static void net__hc_req_timer_closed(uv_handle_t *h) {
  net_http_client_req *r = h->data;
  net_http_client *c = r->c;
  free(r);
  c->open_handles--;
  net__hc_maybe_free(c);
}

static void net__hc_unlink(net_http_client_req *r) {
  net_http_client *c = r->c;
  if (r->prev) r->prev->next = r->next;
  else c->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

/* Frees a request that is off every list. */
static void net__hc_req_destroy(net_http_client_req *r) {
  net__hc_req_free_mem(r);
  if (r->timer_init) {
    uv_close((uv_handle_t *)&r->retry_timer, net__hc_req_timer_closed);
  } else {
    free(r);
  }
}

/* Ends |r| with |rc|: on_done, then free. Outside curl only (invariant 2). */
static void net__hc_finish(net_http_client_req *r, int rc) {
  net_http_client *c = r->c;
  if (r->state == REQ_DONE) return;
  if (r->state == REQ_RUNNING) curl_multi_remove_handle(c->multi, r->easy);
  if (r->timer_init) uv_timer_stop(&r->retry_timer);
  r->state = REQ_DONE;
  net__hc_pending_unlink(r);
  net__hc_unlink(r);
  net__hc_assert_req_state(r);
  if (r->on_done) r->on_done(r, rc, r->arg);
  net__hc_req_destroy(r);
}

/* ---------------------------------------------------------------- pending work */

static void net__hc_close_step(net_http_client *c) {
  if (c->multi_cleaned || c->reqs) return;
  c->multi_cleaned = true;
  c->in_curl++;
  curl_multi_cleanup(c->multi);
  c->in_curl--;
  c->multi = NULL;
  while (c->socks) net__hc_sock_close(c, c->socks);
  uv_idle_stop(&c->idle);
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, net__hc_handle_closed);
  uv_close((uv_handle_t *)&c->idle, net__hc_handle_closed);
}

static void net__hc_on_idle(uv_idle_t *h) {
  net_http_client *c = h->data;
  bool resumed = false;
  net_http_client_req *r;
  while ((r = c->pending_head) != NULL) {
    unsigned what = r->pending;
    net__hc_pending_unlink(r);
    if (what & PEND_FAIL) {
      net__hc_finish(r, r->fail_rc);
    } else if (r->canceled) {
      net__hc_finish(r, ORR_ECANCELED);
    } else if ((what & PEND_START) && r->state == REQ_NEW) {
      int rc = c->closing ? ORR_ECLOSED : net__hc_add(r);
      if (rc != 0) net__hc_finish(r, rc);
    } else if ((what & PEND_RESUME) && r->state == REQ_RUNNING && r->paused) {
      r->paused = false;
      c->in_curl++;
      curl_easy_pause(r->easy, CURLPAUSE_CONT);
      c->in_curl--;
      resumed = true;
    }
  }
  if (resumed) net__hc_check_info(c);
  if (c->closing) net__hc_close_step(c);
  else if (!c->pending_head) uv_idle_stop(&c->idle);
}

static void net__hc_maybe_free(net_http_client *c) {
  if (!c->closing || !c->multi_cleaned || c->open_handles > 0) return;
  void (*cb)(void *) = c->close_cb;
  void *arg = c->close_arg;
  free(c->user_agent);
  free(c);
  if (cb) cb(arg);
}

/* ---------------------------------------------------------------- client API */

static void net__hc_global_init(void) {
  /* once per process: curl_global_init is not thread-safe */
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

int net_http_client_new(uv_loop_t *loop, const net_http_client_opts *opts,
                        net_http_client **out) {
  static uv_once_t once = UV_ONCE_INIT;
  net_http_client_opts def = {0};
  int rc = ORR_ENOMEM;
  *out = NULL;
  if (!opts) opts = &def;
  uv_once(&once, net__hc_global_init);
  net_http_client *c = calloc(1, sizeof(*c));
  if (!c) return ORR_ENOMEM;
  c->loop = loop;
  c->rng = orr_mono_ns() ^ (uint64_t)(uintptr_t)c;
  c->user_agent = strdup(opts->user_agent ? opts->user_agent : "orrery/" ORRERY_VERSION);
  if (!c->user_agent) goto fail;
  c->multi = curl_multi_init();
  if (!c->multi) goto fail;
  long per_host = opts->max_host_connections > 0 ? opts->max_host_connections : 16;
  rc = ORR_EINTERNAL;
  if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, net__hc_on_socket) != CURLM_OK ||
      curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, (void *)c) != CURLM_OK ||
      curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, net__hc_on_curl_timer) != CURLM_OK ||
      curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, (void *)c) != CURLM_OK ||
      curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host) != CURLM_OK ||
      curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                        opts->max_total_connections > 0 ? opts->max_total_connections : 0L) !=
          CURLM_OK)
    goto fail;
  if (uv_timer_init(loop, &c->timer) != 0 || uv_idle_init(loop, &c->idle) != 0) goto fail;
  c->timer.data = c;
  c->idle.data = c;
  c->open_handles = 2;
  *out = c;
  return 0;
fail:
  /* uv_timer_init/uv_idle_init cannot fail on unix; nothing to close here */
  if (c->multi) curl_multi_cleanup(c->multi);
  free(c->user_agent);
  free(c);
  return rc;
}

void net_http_client_close(net_http_client *c, void (*cb)(void *arg), void *arg) {
  if (c->closing) return;
  c->closing = true;
  c->close_cb = cb;
  c->close_arg = arg;
  for (net_http_client_req *r = c->reqs; r; r = r->next) {
    r->canceled = true;
    net__hc_queue(r, PEND_CANCEL);
  }
  uv_idle_start(&c->idle, net__hc_on_idle);
}

/* ---------------------------------------------------------------- request API */

int net_http_client_req_new(net_http_client *c, const char *method, const char *url,
                            net_http_client_req **out) {
  *out = NULL;
  if (!method || !*method || !url || !*url) return ORR_EINVAL;
  if (c->closing) return ORR_ECLOSED;
  net_http_client_req *r = calloc(1, sizeof(*r));
  if (!r) return ORR_ENOMEM;
  r->c = c;
  r->method = strdup(method);
  r->url = strdup(url);
  r->easy = curl_easy_init();
  if (!r->method || !r->url || !r->easy) {
    net__hc_req_free_mem(r);
    free(r);
    return ORR_ENOMEM;
  }
  r->next = c->reqs;
  if (c->reqs) c->reqs->prev = r;
  c->reqs = r;
  *out = r;
  return 0;
}

void net_http_client_req_free(net_http_client_req *r) {
  if (!r || r->state != REQ_NEW || r->pending) return;
  net_http_client *c = r->c;
  net__hc_unlink(r);
  net__hc_req_destroy(r);
  if (c->closing) uv_idle_start(&c->idle, net__hc_on_idle); /* may be the last one */
}

int net_http_client_req_header(net_http_client_req *r, const char *name, const char *value) {
  orr_buf line = {0};
  /* curl: "Name:" removes a header, "Name;" sends it empty */
  orr_buf_printf(&line, "%s:%s%s", name, value && *value ? " " : "", value ? value : "");
  if (line.oom) return ORR_ENOMEM;
  struct curl_slist *h = curl_slist_append(r->headers, line.data);
  orr_buf_free(&line);
  if (!h) return ORR_ENOMEM;
  r->headers = h;
  if (strcasecmp(name, "Expect") == 0) r->has_expect = true;
  if (strcasecmp(name, "Content-Type") == 0) r->has_ctype = true;
  return 0;
}

void net_http_client_req_body(net_http_client_req *r, const void *data, size_t len) {
  r->body_kind = BODY_BYTES;
  r->body = data;
  r->body_len = len;
}

void net_http_client_req_body_reader(net_http_client_req *r, int64_t len,
                                     net_http_client_read_fn read,
                                     net_http_client_rewind_fn rewind, void *arg) {
  r->body_kind = BODY_READER;
  r->reader_len = len < 0 ? -1 : len;
  r->read = read;
  r->rewind = rewind;
  r->reader_arg = arg;
}

void net_http_client_req_timeouts(net_http_client_req *r, int64_t total_ms, int64_t connect_ms) {
  r->total_ms = total_ms;
  r->connect_ms = connect_ms;
}

int net_http_client_req_aws_sigv4(net_http_client_req *r, const char *provider,
                                  const char *access_key, const char *secret_key) {
  orr_buf up = {0};
  orr_buf_printf(&up, "%s:%s", access_key, secret_key);
  char *sig = strdup(provider);
  if (up.oom || !sig) {
    free(sig);
    orr_buf_free(&up);
    return ORR_ENOMEM;
  }
  free(r->sigv4);
  free(r->userpwd);
  r->sigv4 = sig;
  r->userpwd = orr_buf_steal(&up, NULL);
  return 0;
}

/* Replaces *dst by a copy of |s| (NULL stays NULL); false on OOM. */
static bool net__hc_set_str(char **dst, const char *s) {
  char *d = NULL;
  if (s && !(d = strdup(s))) return false;
  free(*dst);
  *dst = d;
  return true;
}

int net_http_client_req_tls(net_http_client_req *r, const net_http_client_tls *tls) {
  if (!net__hc_set_str(&r->ca_file, tls->ca_file) ||
      !net__hc_set_str(&r->cert_file, tls->cert_file) ||
      !net__hc_set_str(&r->key_file, tls->key_file) ||
      !net__hc_set_str(&r->server_name, tls->server_name && *tls->server_name ? tls->server_name : NULL))
    return ORR_ENOMEM;
  r->tls_insecure = tls->insecure_skip_verify;
  return 0;
}

void net_http_client_req_callbacks(net_http_client_req *r, net_http_client_headers_fn on_headers,
                                   net_http_client_body_fn on_body,
                                   net_http_client_done_fn on_done, void *arg) {
  r->on_headers = on_headers;
  r->on_body = on_body;
  r->on_done = on_done;
  r->arg = arg;
}

void net_http_client_req_collect(net_http_client_req *r, orr_buf *out, size_t max_bytes) {
  r->collect = out;
  r->collect_max = max_bytes;
}

void net_http_client_req_retry(net_http_client_req *r, const net_http_client_retry *p) {
  r->has_retry = p != NULL && p->max_attempts > 1;
  if (p) r->retry = *p;
}

int net_http_client_start(net_http_client_req *r) {
  net_http_client *c = r->c;
  int rc = 0;
  if (r->state != REQ_NEW || r->attempts > 0 || r->pending) return ORR_EINVAL;
  if (r->body_kind == BODY_READER && !r->read) rc = ORR_EINVAL;
  else if (c->closing) rc = ORR_ECLOSED;
  else if (c->in_curl) {
    net__hc_queue(r, PEND_START);
    return 0;
  } else {
    rc = net__hc_add(r);
  }
  if (rc != 0) {
    r->fail_rc = rc;
    net__hc_queue(r, PEND_FAIL);
  }
  return rc;
}

void net_http_client_cancel(net_http_client_req *r) {
  if (r->state == REQ_DONE || r->canceled) return;
  r->canceled = true;
  net__hc_queue(r, PEND_CANCEL);
}

void net_http_client_resume(net_http_client_req *r) {
  if (r->state != REQ_RUNNING || !r->paused || r->canceled) return;
  net__hc_queue(r, PEND_RESUME);
}

/* ---------------------------------------------------------------- accessors */

int net_http_client_status(const net_http_client_req *r) {
  return r->headers_done ? r->status : 0;
}

int net_http_client_header_next(const net_http_client_req *r, size_t *it, const char **name,
                                size_t *name_len, const char **value) {
  while (*it < r->hdrs.len) {
    const char *line = r->hdrs.data + *it;
    size_t ll = strlen(line);
    *it += ll + 1;
    const char *colon = memchr(line, ':', ll);
    if (!colon || colon == line) continue; /* folded or malformed line */
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    *name = line;
    *name_len = (size_t)(colon - line);
    *value = v;
    return 1;
  }
  return 0;
}

const char *net_http_client_header(const net_http_client_req *r, const char *name) {
  size_t it = 0, nl, want = strlen(name);
  const char *n, *v;
  while (net_http_client_header_next(r, &it, &n, &nl, &v)) {
    if (nl == want && strncasecmp(n, name, nl) == 0) return v;
  }
  return NULL;
}

const char *net_http_client_error(const net_http_client_req *r) { return r->errbuf; }

int net_http_client_attempts(const net_http_client_req *r) { return r->attempts; }

uint64_t net_http_client_body_bytes(const net_http_client_req *r) { return r->body_bytes; }

/* ---------------------------------------------------------------- retries */

int net_http_client_retry_default(const net_http_client_req *r, int result, int status,
                                  void *arg) {
  if (result == ORR_ETIMEOUT || result == ORR_EIO) return 1;
  return result == 0 && (status >= 500 || status == 429);
}

int64_t net_http_client_retry_delay_ms(const net_http_client_retry *p, int n, uint64_t rnd) {
  int64_t lo = p->min_delay_ms > 0 ? p->min_delay_ms : 100;
  int64_t hi = p->max_delay_ms > 0 ? p->max_delay_ms : 10000;
  if (hi < lo) hi = lo;
  int64_t d = lo;
  for (int i = 1; i < n && d < hi; i++) d *= 2;
  if (d >= hi) return hi;
  int64_t delay = d + (int64_t)(rnd % (uint64_t)d);
  return delay > hi ? hi : delay;
}
