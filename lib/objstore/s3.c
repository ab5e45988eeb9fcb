/* s3.c: the S3 backend — requests signed with curl's SigV4 on a private
 * loop thread (one net_http_client per bucket), blocking calls that post to
 * it, streamed GETs with bounded buffering, and uploads streamed from files
 * (single PUT or multipart with abort on failure).
 *
 * NOTES ON THE DESIGN
 * 1. Threads: the bucket's thread runs |loop| and owns |client| and every
 *    net_http_client_req. Callers build an s3_call, push it on |queue| under
 *    |mu| and uv_async_send; the loop thread starts it. Everything a caller
 *    and the loop share in an s3_call (the stream buffer, flags, state and
 *    results) is read and written under |mu|; the caller waits on |cond|.
 * 2. States of a call: QUEUED (on |queue|) → RUNNING (on |active|, its req
 *    in curl) → FINISHED (off both lists; the caller owns it again and frees
 *    it). A caller asks for resume/cancel by setting a flag and sending the
 *    async; the loop acts on the flags of RUNNING calls only.
 * 3. Upload bodies are read by pread from the file region on the loop
 *    thread (the bucket's own thread, never a daemon's), rewound on retry.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net.h"
#include "objstore_int.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_COLLECT_MAX (64u * 1024 * 1024)
#define S3_ERRBODY_MAX (64u * 1024)

typedef enum { CALL_QUEUED = 1, CALL_RUNNING, CALL_FINISHED } call_state;

typedef struct s3_impl s3_impl;
typedef struct s3_call s3_call;
struct s3_call {
  s3_impl *s;
  s3_call *next; /* on queue or active (under mu) */
  call_state state;
  uv_cond_t cond;
  /* request: set by the caller before queueing, read-only afterwards */
  const char *method;
  char url[4096];
  char sha[65]; /* x-amz-content-sha256 */
  const char *range; /* "bytes=a-b" or NULL */
  const char *ctype;
  const void *req_body;
  size_t req_body_len;
  int has_body;
  int fd; /* >= 0: body read from this file region */
  uint64_t file_off, file_len, file_pos;
  int streaming;     /* body into sbuf with backpressure, else collected */
  int short_timeout; /* a small request: total time limited */
  int64_t timeout_ms; /* > 0: the total time limit of each attempt instead */
  int max_attempts;
  /* shared under mu */
  orr_buf sbuf; /* streamed body not yet taken by the caller */
  int paused, want_resume, want_cancel;
  /* results, valid once FINISHED */
  int result, status, attempts;
  orr_buf body; /* the collected body, or the error body when streaming */
  char etag[256];
  char last_modified[64];
  int64_t content_length;
  char curl_err[256];
  net_http_client_req *req; /* loop thread only */
};

struct s3_impl {
  uv_thread_t thread;
  uv_loop_t loop;
  uv_async_t async;
  net_http_client *client;
  uv_mutex_t mu;
  s3_call *queue, *queue_tail; /* under mu */
  s3_call *active;             /* under mu */
  int stopping;                /* under mu */
  char base[600];              /* "http://host:port/bucket" or "https://bucket.host" */
  char sigv4[128];             /* "aws:amz:us-east-1:s3" */
  net_http_client_tls tls;
  int max_host_conns;
  int64_t header_timeout_ms, connect_timeout_ms;
  int started, start_rc; /* under mu */
  uv_cond_t start_cond;
  const objstore_config *cfg;
};

static s3_impl *impl(objstore_bucket *b) { return b->impl; }

/* ---------------------------------------------------------------- loop thread */

static int on_headers(net_http_client_req *r, int status, void *arg) {
  s3_call *c = arg;
  const char *v;
  uv_mutex_lock(&c->s->mu);
  c->status = status;
  if ((v = net_http_client_header(r, "ETag"))) snprintf(c->etag, sizeof c->etag, "%s", v);
  if ((v = net_http_client_header(r, "Last-Modified")))
    snprintf(c->last_modified, sizeof c->last_modified, "%s", v);
  if ((v = net_http_client_header(r, "Content-Length"))) c->content_length = strtoll(v, NULL, 10);
  uv_mutex_unlock(&c->s->mu);
  return 0;
}

static int on_body(net_http_client_req *r, const char *data, size_t n, void *arg) {
  s3_call *c = arg;
  int rc = 0;
  uv_mutex_lock(&c->s->mu);
  if (c->status < 200 || c->status > 299) {
    if (c->body.len + n <= S3_ERRBODY_MAX) orr_buf_append(&c->body, data, n);
  } else if (c->sbuf.len >= OBJSTORE_STREAM_BUF) {
    c->paused = 1;
    rc = NET_HTTP_CLIENT_PAUSE;
  } else if (orr_buf_append(&c->sbuf, data, n) != 0) {
    rc = ORR_ENOMEM;
  } else {
    uv_cond_signal(&c->cond);
  }
  uv_mutex_unlock(&c->s->mu);
  return rc;
}

static int on_read(net_http_client_req *r, char *buf, size_t cap, size_t *nread, void *arg) {
  s3_call *c = arg;
  uint64_t left = c->file_len - c->file_pos;
  size_t want = left < cap ? (size_t)left : cap;
  *nread = 0;
  while (want > 0) {
    ssize_t got = pread(c->fd, buf, want, (off_t)(c->file_off + c->file_pos));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ORR_EIO;
    if (got == 0) return ORR_EIO; /* the file shrank under us */
    c->file_pos += (uint64_t)got;
    *nread = (size_t)got;
    break;
  }
  return 0;
}

static int on_rewind(net_http_client_req *r, void *arg) {
  s3_call *c = arg;
  c->file_pos = 0;
  return 0;
}

/* Unlinks |c| from the list at |*head|. */
static void list_remove(s3_call **head, s3_call *c) {
  for (s3_call **p = head; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      c->next = NULL;
      return;
    }
}

static void on_done(net_http_client_req *r, int result, void *arg) {
  s3_call *c = arg;
  s3_impl *s = c->s;
  uv_mutex_lock(&s->mu);
  c->result = result;
  c->attempts = net_http_client_attempts(r);
  if (c->status == 0) c->status = net_http_client_status(r);
  snprintf(c->curl_err, sizeof c->curl_err, "%s", net_http_client_error(r));
  c->req = NULL;
  list_remove(&s->active, c);
  c->state = CALL_FINISHED;
  uv_cond_broadcast(&c->cond);
  uv_mutex_unlock(&s->mu);
}

/* Starts |c| on the loop thread; on failure finishes it at once. */
static void start_call(s3_impl *s, s3_call *c) {
  net_http_client_req *r = NULL;
  int rc = net_http_client_req_new(s->client, c->method, c->url, &r);
  if (rc == 0) {
    rc |= net_http_client_req_header(r, "x-amz-content-sha256", c->sha);
    if (c->range) rc |= net_http_client_req_header(r, "Range", c->range);
    if (c->ctype) rc |= net_http_client_req_header(r, "Content-Type", c->ctype);
    /* curl 7.88 signs every header of the request list, also the empty
     * "Expect:" the HTTP client uses to suppress 100-continue, which is then
     * not sent; S3 would look for a signed header that is absent. Sending
     * the real header keeps what is signed and what is sent the same. */
    if (c->fd >= 0 || c->has_body) rc |= net_http_client_req_header(r, "Expect", "100-continue");
    rc |= net_http_client_req_aws_sigv4(r, s->sigv4, s->cfg->access_key ? s->cfg->access_key : "",
                                        s->cfg->secret_key ? s->cfg->secret_key : "");
    if (!s->cfg->insecure) rc |= net_http_client_req_tls(r, &s->tls);
    if (rc) rc = ORR_ENOMEM;
  }
  if (rc != 0) {
    if (r) net_http_client_req_free(r);
    uv_mutex_lock(&s->mu);
    c->result = rc;
    c->state = CALL_FINISHED;
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&s->mu);
    return;
  }
  if (c->fd >= 0) {
    c->file_pos = 0;
    net_http_client_req_body_reader(r, (int64_t)c->file_len, on_read, on_rewind, c);
  } else if (c->has_body) {
    net_http_client_req_body(r, c->req_body, c->req_body_len);
  }
  int64_t total = c->timeout_ms > 0 ? c->timeout_ms : c->short_timeout ? s->header_timeout_ms : 0;
  net_http_client_req_timeouts(r, total, s->connect_timeout_ms);
  net_http_client_retry retry;
  memset(&retry, 0, sizeof retry);
  retry.max_attempts = c->max_attempts;
  retry.min_delay_ms = 100;
  retry.max_delay_ms = 5000;
  net_http_client_req_retry(r, &retry);
  net_http_client_req_callbacks(r, on_headers, c->streaming ? on_body : NULL, on_done, c);
  if (!c->streaming) net_http_client_req_collect(r, &c->body, S3_COLLECT_MAX);
  uv_mutex_lock(&s->mu);
  c->req = r;
  c->state = CALL_RUNNING;
  c->next = s->active;
  s->active = c;
  uv_mutex_unlock(&s->mu);
  net_http_client_start(r); /* a failure comes back through on_done */
}

static void on_client_closed(void *arg) {
  s3_impl *s = arg;
  s->client = NULL;
  uv_close((uv_handle_t *)&s->async, NULL);
}

static void on_async(uv_async_t *a) {
  s3_impl *s = a->data;
  uv_mutex_lock(&s->mu);
  s3_call *q = s->queue;
  s->queue = s->queue_tail = NULL;
  int stopping = s->stopping;
  /* act on resume/cancel requests of running calls */
  net_http_client_req *resume[64], *cancel[64];
  size_t nr = 0, nc = 0;
  int more = 0; /* flags left for the next turn when the arrays are full */
  for (s3_call *c = s->active; c; c = c->next) {
    if (c->want_cancel && c->req) {
      if (nc == 64) {
        more = 1;
        continue;
      }
      c->want_cancel = 0;
      cancel[nc++] = c->req;
    } else if (c->want_resume && c->req) {
      if (nr == 64) {
        more = 1;
        continue;
      }
      c->want_resume = 0;
      resume[nr++] = c->req;
    }
  }
  uv_mutex_unlock(&s->mu);
  if (more) uv_async_send(&s->async);
  for (size_t i = 0; i < nr; i++) net_http_client_resume(resume[i]);
  for (size_t i = 0; i < nc; i++) net_http_client_cancel(cancel[i]);
  while (q) {
    s3_call *next = q->next;
    q->next = NULL;
    start_call(s, q);
    q = next;
  }
  if (stopping && s->client) net_http_client_close(s->client, on_client_closed, s);
}

static void s3_thread(void *arg) {
  s3_impl *s = arg;
  net_http_client_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.max_host_connections = s->max_host_conns;
  int rc = net_http_client_new(&s->loop, &opts, &s->client);
  uv_mutex_lock(&s->mu);
  s->started = 1;
  s->start_rc = rc;
  uv_cond_signal(&s->start_cond);
  uv_mutex_unlock(&s->mu);
  if (rc != 0) {
    uv_close((uv_handle_t *)&s->async, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return;
  }
  uv_run(&s->loop, UV_RUN_DEFAULT);
}

int objstore__s3_open(objstore_bucket *b, char *err, size_t errlen) {
  const objstore_config *cfg = &b->cfg;
  s3_impl *s = calloc(1, sizeof *s);
  if (!s) return ORR_ENOMEM;
  s->cfg = cfg;
  const char *scheme = cfg->insecure ? "http" : "https";
  if (cfg->virtual_host)
    snprintf(s->base, sizeof s->base, "%s://%s.%s", scheme, cfg->bucket, cfg->endpoint);
  else
    snprintf(s->base, sizeof s->base, "%s://%s/%s", scheme, cfg->endpoint, cfg->bucket);
  snprintf(s->sigv4, sizeof s->sigv4, "aws:amz:%s:s3", cfg->region);
  s->tls.ca_file = cfg->ca_file && *cfg->ca_file ? cfg->ca_file : NULL;
  s->tls.cert_file = cfg->cert_file && *cfg->cert_file ? cfg->cert_file : NULL;
  s->tls.key_file = cfg->key_file && *cfg->key_file ? cfg->key_file : NULL;
  s->tls.insecure_skip_verify = cfg->insecure_skip_verify != 0;
  s->tls.server_name = cfg->server_name && *cfg->server_name ? cfg->server_name : NULL;
  s->header_timeout_ms = cfg->response_header_timeout_ms;
  s->connect_timeout_ms = cfg->tls_handshake_timeout_ms;
  s->max_host_conns = cfg->max_conns_per_host > 0 ? cfg->max_conns_per_host : 16;
  int rc = ORR_EINTERNAL;
  if (uv_loop_init(&s->loop) != 0) goto fail_loop;
  if (uv_async_init(&s->loop, &s->async, on_async) != 0) goto fail_async;
  s->async.data = s;
  uv_mutex_init(&s->mu);
  uv_cond_init(&s->start_cond);
  b->impl = s;
  if (uv_thread_create(&s->thread, s3_thread, s) != 0) goto fail_thread;
  uv_mutex_lock(&s->mu);
  while (!s->started) uv_cond_wait(&s->start_cond, &s->mu);
  rc = s->start_rc;
  uv_mutex_unlock(&s->mu);
  if (rc != 0) {
    uv_thread_join(&s->thread);
    uv_loop_close(&s->loop);
    goto fail_started;
  }
  return 0;
fail_thread:
  uv_close((uv_handle_t *)&s->async, NULL);
  uv_run(&s->loop, UV_RUN_DEFAULT);
fail_async:
  uv_loop_close(&s->loop);
fail_started:
  uv_mutex_destroy(&s->mu);
  uv_cond_destroy(&s->start_cond);
fail_loop:
  free(s);
  b->impl = NULL;
  return objstore__err(rc ? rc : ORR_EINTERNAL, err, errlen,
                       "objstore: s3: cannot start the client thread");
}

static void s3_close(objstore_bucket *b) {
  s3_impl *s = impl(b);
  if (!s) return;
  uv_mutex_lock(&s->mu);
  s->stopping = 1;
  uv_mutex_unlock(&s->mu);
  uv_async_send(&s->async);
  uv_thread_join(&s->thread);
  uv_loop_close(&s->loop);
  uv_mutex_destroy(&s->mu);
  uv_cond_destroy(&s->start_cond);
  free(s);
  b->impl = NULL;
}

/* ---------------------------------------------------------------- caller side */

static void call_init(s3_impl *s, s3_call *c, const char *method) {
  memset(c, 0, sizeof *c);
  c->s = s;
  c->method = method;
  c->fd = -1;
  c->max_attempts = 1 + (s->cfg->max_retries > 0 ? s->cfg->max_retries : 0);
  snprintf(c->sha, sizeof c->sha, "%s", EMPTY_SHA256);
  uv_cond_init(&c->cond);
}

static void call_free(s3_call *c) {
  uv_cond_destroy(&c->cond);
  orr_buf_free(&c->sbuf);
  orr_buf_free(&c->body);
}

/* Queues |c| (under mu). */
static void call_post(s3_impl *s, s3_call *c) {
  uv_mutex_lock(&s->mu);
  c->state = CALL_QUEUED;
  c->next = NULL;
  if (s->queue_tail) s->queue_tail->next = c;
  else s->queue = c;
  s->queue_tail = c;
  uv_mutex_unlock(&s->mu);
  uv_async_send(&s->async);
}

/* Runs |c| to completion (not streaming). */
static void call_run(s3_impl *s, s3_call *c) {
  call_post(s, c);
  uv_mutex_lock(&s->mu);
  while (c->state != CALL_FINISHED) uv_cond_wait(&c->cond, &s->mu);
  uv_mutex_unlock(&s->mu);
}

/* Appends |s| percent-encoded as S3's canonical URI wants (unreserved kept,
 * "/" kept when |keep_slash|). */
static void uri_encode(orr_buf *out, const char *str, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
    unsigned char ch = *p;
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
      orr_buf_putc(out, (char)ch);
    } else {
      char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
      orr_buf_append(out, e, 3);
    }
  }
}

/* Sets c->url to base + "/" + key + "?" + query. |query| is a NULL-ended
 * list of name, value pairs already in sorted (canonical) order. */
static int call_url(s3_impl *s, s3_call *c, const char *key, const char *const *query) {
  orr_buf u = {0};
  orr_buf_puts(&u, s->base);
  orr_buf_putc(&u, '/');
  if (key) uri_encode(&u, key, 1);
  for (int i = 0; query && query[i]; i += 2) {
    orr_buf_putc(&u, i == 0 ? '?' : '&');
    uri_encode(&u, query[i], 0);
    orr_buf_putc(&u, '=');
    uri_encode(&u, query[i + 1], 0);
  }
  int rc = u.oom || u.len >= sizeof c->url ? ORR_EINVAL : 0;
  if (!rc) memcpy(c->url, u.data, u.len + 1);
  orr_buf_free(&u);
  return rc;
}

static void sha256_hex(const void *data, size_t n, char out[65]) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The host:port part of the endpoint for messages. */
static const char *endpoint(s3_impl *s) { return s->cfg->endpoint; }

/* The short reason of a curl error: "Connection refused" out of "Failed to
 * connect to 127.0.0.1 port 1 after 0 ms: Connection refused". */
static const char *short_reason(const char *curl_err) {
  if (strstr(curl_err, "Connection refused") || strstr(curl_err, "Couldn't connect"))
    return "Connection refused";
  const char *p = strrchr(curl_err, ':');
  return p && p[1] == ' ' && p[2] ? p + 2 : (*curl_err ? curl_err : "connection error");
}

/* Formats the error of a finished call: "objstore: s3 OP bucket=B key=K: ...".
 * Returns the ORR_E* code for it (0 for a 2xx). */
static int call_error(s3_impl *s, s3_call *c, const char *op, const char *key, char *err,
                      size_t errlen) {
  const char *bucket = s->cfg->bucket;
  const char *k = key ? key : "";
  const char *what = strcmp(op, "list") == 0 ? "prefix" : "key";
  if (c->result != 0 && c->status == 0) {
    if (c->result == ORR_EIO)
      return objstore__err(ORR_EIO, err, errlen,
                           "objstore: s3 %s bucket=%s %s=%s: cannot reach S3 endpoint %s: %s "
                           "(after %d attempts)",
                           op, bucket, what, k, endpoint(s), short_reason(c->curl_err), c->attempts);
    if (c->result == ORR_ETIMEOUT)
      return objstore__err(ORR_ETIMEOUT, err, errlen,
                           "objstore: s3 %s bucket=%s %s=%s: timed out talking to %s (after %d "
                           "attempts)",
                           op, bucket, what, k, endpoint(s), c->attempts);
    return objstore__err(c->result, err, errlen, "objstore: s3 %s bucket=%s %s=%s: %s%s%s", op,
                         bucket, what, k, orr_strerror(c->result), *c->curl_err ? ": " : "",
                         c->curl_err);
  }
  if (c->result != 0 && c->status >= 200 && c->status <= 299)
    return objstore__err(c->result, err, errlen, "objstore: s3 %s bucket=%s %s=%s: %s", op,
                         bucket, what, k, orr_strerror(c->result));
  if (c->status >= 200 && c->status <= 299) return 0;
  char code[128] = "", msg[512] = "";
  s3__xml_parse_error(c->body.data, c->body.len, code, sizeof code, msg, sizeof msg);
  int rc;
  if (c->status == 404 && strcmp(code, "NoSuchBucket") != 0 && strcmp(code, "NoSuchUpload") != 0)
    rc = ORR_ENOTFOUND;
  else if (c->status == 416) rc = ORR_ERANGE;
  else if (c->status >= 500 || c->status == 429) rc = ORR_EUNAVAILABLE;
  else if (c->status == 404) rc = ORR_EUNAVAILABLE;
  else rc = ORR_EINVAL;
  if (!*code) {
    const char *t = net_http_status_text(c->status);
    snprintf(code, sizeof code, "%s", c->status == 404 ? "NotFound" : t);
  }
  return objstore__err(rc, err, errlen, "objstore: s3 %s bucket=%s %s=%s: %s%s%s (HTTP %d)", op,
                       bucket, what, k, code, *msg ? ": " : "", msg, c->status);
}

/* ---------------------------------------------------------------- operations */

static int s3_get_stream(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                         objstore_body_fn fn, void *arg, char *err, size_t errlen) {
  s3_impl *s = impl(b);
  s3_call c;
  char range[64];
  call_init(s, &c, "GET");
  int rc = call_url(s, &c, key, NULL);
  if (rc) {
    call_free(&c);
    return objstore__err(rc, err, errlen, "objstore: s3 get bucket=%s key=%s: key too long",
                         s->cfg->bucket, key);
  }
  if (offset || length) {
    if (length)
      snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)offset,
               (unsigned long long)(offset + length - 1));
    else
      snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)offset);
    c.range = range;
  }
  c.streaming = 1;
  call_post(s, &c);
  int user_rc = 0;
  orr_buf take = {0};
  uv_mutex_lock(&s->mu);
  for (;;) {
    while (c.sbuf.len == 0 && c.state != CALL_FINISHED) uv_cond_wait(&c.cond, &s->mu);
    if (c.sbuf.len == 0) break; /* finished and drained */
    orr_buf tmp = take;
    take = c.sbuf;
    c.sbuf = tmp;
    orr_buf_reset(&c.sbuf);
    int kick = 0;
    if (c.paused && c.state == CALL_RUNNING) {
      c.paused = 0;
      c.want_resume = 1;
      kick = 1;
    }
    uv_mutex_unlock(&s->mu);
    if (kick) uv_async_send(&s->async);
    if (user_rc == 0) user_rc = fn(take.data, take.len, arg);
    uv_mutex_lock(&s->mu);
    if (user_rc != 0 && c.state == CALL_RUNNING) {
      c.want_cancel = 1;
      uv_mutex_unlock(&s->mu);
      uv_async_send(&s->async);
      uv_mutex_lock(&s->mu);
      while (c.state != CALL_FINISHED) uv_cond_wait(&c.cond, &s->mu);
      break;
    }
  }
  uv_mutex_unlock(&s->mu);
  orr_buf_free(&take);
  if (user_rc != 0) {
    rc = objstore__err(user_rc, err, errlen, "objstore: s3 get bucket=%s key=%s: %s",
                       s->cfg->bucket, key, orr_strerror(user_rc));
  } else {
    rc = call_error(s, &c, "get", key, err, errlen);
  }
  call_free(&c);
  return rc;
}

static int s3_put(objstore_bucket *b, const char *key, const void *data, size_t len, char *err,
                  size_t errlen) {
  s3_impl *s = impl(b);
  s3_call c;
  call_init(s, &c, "PUT");
  int rc = call_url(s, &c, key, NULL);
  if (rc == 0) {
    c.req_body = data;
    c.req_body_len = len;
    c.has_body = 1;
    c.ctype = "application/octet-stream";
    sha256_hex(data, len, c.sha);
    call_run(s, &c);
    rc = call_error(s, &c, "put", key, err, errlen);
  }
  call_free(&c);
  return rc;
}

/* PUT of the file region |off|..|off|+|len| to |url|-with-query. */
static int put_region(s3_impl *s, const char *key, const char *const *query, int fd, uint64_t off,
                      uint64_t len, char *etag, size_t etaglen, const char *op, char *err,
                      size_t errlen) {
  s3_call c;
  call_init(s, &c, "PUT");
  int rc = call_url(s, &c, key, query);
  if (rc == 0) {
    c.fd = fd;
    c.file_off = off;
    c.file_len = len;
    c.ctype = "application/octet-stream";
    snprintf(c.sha, sizeof c.sha, "UNSIGNED-PAYLOAD");
    call_run(s, &c);
    rc = call_error(s, &c, op, key, err, errlen);
    if (rc == 0 && etag) snprintf(etag, etaglen, "%s", c.etag);
  }
  call_free(&c);
  return rc;
}

static void abort_upload(s3_impl *s, const char *key, const char *upload_id) {
  s3_call c;
  const char *q[] = {"uploadId", upload_id, NULL};
  call_init(s, &c, "DELETE");
  c.short_timeout = 1;
  if (call_url(s, &c, key, q) == 0) {
    call_run(s, &c);
    char e[512];
    if (call_error(s, &c, "abort multipart upload", key, e, sizeof e) != 0)
      orr_log_warn("objstore: aborting a multipart upload failed", "err", e, NULL);
  }
  call_free(&c);
}

static void xml_escape(orr_buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '&') orr_buf_puts(b, "&amp;");
    else if (*s == '<') orr_buf_puts(b, "&lt;");
    else if (*s == '>') orr_buf_puts(b, "&gt;");
    else if (*s == '"') orr_buf_puts(b, "&quot;");
    else orr_buf_putc(b, *s);
  }
}

static int multipart(s3_impl *s, const char *key, int fd, uint64_t size, char *err,
                     size_t errlen) {
  uint64_t part = (uint64_t)s->cfg->part_size;
  uint64_t nparts = (size + part - 1) / part;
  char upload_id[1024];
  int rc;
  if (nparts > 10000)
    return objstore__err(ORR_EINVAL, err, errlen,
                         "objstore: s3 put bucket=%s key=%s: %llu parts exceed S3's 10000 "
                         "(raise part_size)",
                         s->cfg->bucket, key, (unsigned long long)nparts);
  {
    s3_call c;
    const char *q[] = {"uploads", "", NULL};
    call_init(s, &c, "POST");
    c.short_timeout = 1;
    c.ctype = "application/octet-stream";
    rc = call_url(s, &c, key, q);
    if (rc == 0) {
      call_run(s, &c);
      rc = call_error(s, &c, "create multipart upload", key, err, errlen);
      if (rc == 0 && s3__xml_find(c.body.data, c.body.len, "InitiateMultipartUploadResult/UploadId",
                                  upload_id, sizeof upload_id) != 0)
        rc = objstore__err(ORR_EPROTO, err, errlen,
                           "objstore: s3 create multipart upload bucket=%s key=%s: no UploadId "
                           "in the response",
                           s->cfg->bucket, key);
    }
    call_free(&c);
    if (rc) return rc;
  }
  orr_buf xml = {0};
  orr_buf_puts(&xml, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
  for (uint64_t i = 0; i < nparts && rc == 0; i++) {
    char num[24], etag[256];
    snprintf(num, sizeof num, "%llu", (unsigned long long)(i + 1));
    const char *q[] = {"partNumber", num, "uploadId", upload_id, NULL};
    uint64_t off = i * part, len = size - off < part ? size - off : part;
    rc = put_region(s, key, q, fd, off, len, etag, sizeof etag, "upload part", err, errlen);
    if (rc == 0) {
      orr_buf_printf(&xml, "<Part><PartNumber>%s</PartNumber><ETag>", num);
      xml_escape(&xml, etag);
      orr_buf_puts(&xml, "</ETag></Part>");
    }
  }
  orr_buf_puts(&xml, "</CompleteMultipartUpload>");
  if (rc == 0 && xml.oom) rc = ORR_ENOMEM;
  if (rc == 0) {
    s3_call c;
    const char *q[] = {"uploadId", upload_id, NULL};
    call_init(s, &c, "POST");
    c.ctype = "application/xml";
    c.req_body = xml.data;
    c.req_body_len = xml.len;
    c.has_body = 1;
    sha256_hex(xml.data, xml.len, c.sha);
    rc = call_url(s, &c, key, q);
    if (rc == 0) {
      call_run(s, &c);
      rc = call_error(s, &c, "complete multipart upload", key, err, errlen);
      char code[128], msg[512];
      /* S3 may answer 200 with an <Error> document */
      if (rc == 0 && s3__xml_parse_error(c.body.data, c.body.len, code, sizeof code, msg,
                                         sizeof msg) == 0)
        rc = objstore__err(ORR_EUNAVAILABLE, err, errlen,
                           "objstore: s3 complete multipart upload bucket=%s key=%s: %s: %s",
                           s->cfg->bucket, key, code, msg);
    }
    call_free(&c);
  }
  orr_buf_free(&xml);
  if (rc != 0) abort_upload(s, key, upload_id);
  return rc;
}

static int s3_put_file(objstore_bucket *b, const char *key, const char *path, char *err,
                       size_t errlen) {
  s3_impl *s = impl(b);
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return objstore__err(errno == ENOENT ? ORR_ENOTFOUND : ORR_EIO, err, errlen,
                         "objstore: s3 put bucket=%s key=%s: %s: %s", s->cfg->bucket, key, path,
                         strerror(errno));
  int rc;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = objstore__err(ORR_EIO, err, errlen, "objstore: s3 put bucket=%s key=%s: %s: not a file",
                       s->cfg->bucket, key, path);
  } else if ((uint64_t)st.st_size <= (uint64_t)s->cfg->part_size) {
    rc = put_region(s, key, NULL, fd, 0, (uint64_t)st.st_size, NULL, 0, "put", err, errlen);
  } else {
    rc = multipart(s, key, fd, (uint64_t)st.st_size, err, errlen);
  }
  close(fd);
  return rc;
}

static int s3_del(objstore_bucket *b, const char *key, char *err, size_t errlen) {
  s3_impl *s = impl(b);
  objstore_attrs a;
  /* S3 deletes a missing key silently; Thanos reports it as not found */
  int rc = b->ops->attributes(b, key, &a, err, errlen);
  if (rc == ORR_ENOTFOUND)
    return objstore__err(rc, err, errlen,
                         "objstore: s3 delete bucket=%s key=%s: NoSuchKey: The specified key "
                         "does not exist. (HTTP 404)",
                         s->cfg->bucket, key);
  if (rc) return rc;
  s3_call c;
  call_init(s, &c, "DELETE");
  c.short_timeout = 1;
  rc = call_url(s, &c, key, NULL);
  if (rc == 0) {
    call_run(s, &c);
    rc = call_error(s, &c, "delete", key, err, errlen);
  }
  call_free(&c);
  return rc;
}

static int s3_attributes(objstore_bucket *b, const char *key, objstore_attrs *out, char *err,
                         size_t errlen) {
  s3_impl *s = impl(b);
  s3_call c;
  call_init(s, &c, "HEAD");
  c.short_timeout = 1;
  int rc = call_url(s, &c, key, NULL);
  if (rc == 0) {
    call_run(s, &c);
    rc = call_error(s, &c, "attributes", key, err, errlen);
    if (rc == 0) {
      out->size = c.content_length > 0 ? (uint64_t)c.content_length : 0;
      out->last_modified_ms = 0;
      if (*c.last_modified) s3__parse_time(c.last_modified, &out->last_modified_ms);
    }
  }
  call_free(&c);
  return rc;
}

/* One ListObjects page into |page| (strings in |arena|). */
static int list_page(s3_impl *s, const char *prefix, const char *delim, const char *token,
                     int max_keys, orr_arena *arena, s3__list_page *page, int attempts, char *err,
                     size_t errlen) {
  s3_call c;
  char mk[16];
  const char *q[12];
  int n = 0;
  snprintf(mk, sizeof mk, "%d", max_keys);
  /* canonical order: names sorted */
  if (s->cfg->list_version == 1) {
    if (*delim) q[n++] = "delimiter", q[n++] = delim;
    if (token) q[n++] = "marker", q[n++] = token;
    q[n++] = "max-keys", q[n++] = mk;
    q[n++] = "prefix", q[n++] = prefix;
  } else {
    if (token) q[n++] = "continuation-token", q[n++] = token;
    if (*delim) q[n++] = "delimiter", q[n++] = delim;
    q[n++] = "list-type", q[n++] = "2";
    q[n++] = "max-keys", q[n++] = mk;
    q[n++] = "prefix", q[n++] = prefix;
  }
  q[n] = NULL;
  call_init(s, &c, "GET");
  c.short_timeout = 1;
  if (attempts > 0) c.max_attempts = attempts;
  int rc = call_url(s, &c, NULL, q);
  if (rc == 0) {
    call_run(s, &c);
    rc = call_error(s, &c, "list", prefix, err, errlen);
    if (rc == 0 && s3__xml_parse_list(c.body.data, c.body.len, arena, page) != 0)
      rc = objstore__err(ORR_EPROTO, err, errlen,
                         "objstore: s3 list bucket=%s prefix=%s: malformed ListBucketResult",
                         s->cfg->bucket, prefix);
  }
  call_free(&c);
  return rc;
}

static int cmp_entries(const void *a, const void *b) {
  return strcmp(((const s3__list_entry *)a)->name, ((const s3__list_entry *)b)->name);
}

static int s3_iter(objstore_bucket *b, const char *dir, unsigned flags, objstore_iter_fn fn,
                   void *arg, char *err, size_t errlen) {
  s3_impl *s = impl(b);
  orr_arena *arena = orr_arena_new(0);
  if (!arena) return ORR_ENOMEM;
  int rc = 0;
  char *token = NULL;
  const char *delim = flags & OBJSTORE_ITER_RECURSIVE ? "" : "/";
  for (;;) {
    s3__list_page page;
    orr_arena_reset(arena);
    rc = list_page(s, dir, delim, token, 1000, arena, &page, 0, err, errlen);
    if (rc) break;
    /* a page holds objects and common prefixes in two lists: merge them */
    if (page.n > 1) qsort(page.v, page.n, sizeof *page.v, cmp_entries);
    for (size_t i = 0; i < page.n && rc == 0; i++) {
      if (!strcmp(page.v[i].name, dir)) continue; /* the "directory" object itself */
      rc = fn(page.v[i].name, arg);
    }
    if (rc || !page.truncated) break;
    const char *next = page.next_token;
    if (!next && s->cfg->list_version == 1 && page.n > 0) next = page.v[page.n - 1].name;
    if (!next) {
      rc = objstore__err(ORR_EPROTO, err, errlen,
                         "objstore: s3 list bucket=%s prefix=%s: truncated listing without a "
                         "continuation token",
                         s->cfg->bucket, dir);
      break;
    }
    free(token);
    if (!(token = strdup(next))) {
      rc = ORR_ENOMEM;
      break;
    }
  }
  free(token);
  orr_arena_destroy(arena);
  return rc;
}

static int s3_check(objstore_bucket *b, char *err, size_t errlen) {
  s3_impl *s = impl(b);
  orr_arena *arena = orr_arena_new(0);
  if (!arena) return ORR_ENOMEM;
  s3__list_page page;
  char e[1024] = "";
  s3_call c;
  /* one listing of at most one key, with one retry */
  call_init(s, &c, "GET");
  c.max_attempts = 2; /* bounded: at most two attempts of 15 s each */
  c.timeout_ms = 15000;
  const char *q[] = {"list-type", "2", "max-keys", "1", "prefix", "", NULL};
  const char *q1[] = {"max-keys", "1", "prefix", "", NULL};
  int rc = call_url(s, &c, NULL, s->cfg->list_version == 1 ? q1 : q);
  if (rc == 0) {
    call_run(s, &c);
    rc = call_error(s, &c, "list", "", e, sizeof e);
  }
  if (rc == 0) {
    if (s3__xml_parse_list(c.body.data, c.body.len, arena, &page) != 0)
      rc = objstore__err(ORR_EPROTO, err, errlen,
                         "objstore: S3 endpoint %s answered a listing of bucket \"%s\" with no "
                         "ListBucketResult",
                         endpoint(s), s->cfg->bucket);
  } else if (c.status == 0) {
    if (c.result == ORR_ETIMEOUT)
      objstore__err(rc, err, errlen, "objstore: cannot reach S3 endpoint %s: timed out",
                    endpoint(s));
    else
      objstore__err(rc, err, errlen, "objstore: cannot reach S3 endpoint %s: %s", endpoint(s),
                    short_reason(c.curl_err));
  } else {
    char code[128] = "", msg[512] = "";
    s3__xml_parse_error(c.body.data, c.body.len, code, sizeof code, msg, sizeof msg);
    if (!strcmp(code, "NoSuchBucket") || (c.status == 404 && !*code))
      objstore__err(rc, err, errlen, "objstore: bucket \"%s\" does not exist (NoSuchBucket)",
                    s->cfg->bucket);
    else if (c.status == 403)
      objstore__err(rc, err, errlen, "objstore: access denied (%s)%s%s", *code ? code : "HTTP 403",
                    *msg ? ": " : "", msg);
    else
      objstore__err(rc, err, errlen, "%s", e);
  }
  call_free(&c);
  orr_arena_destroy(arena);
  return rc;
}

const objstore__ops objstore__s3_ops = {
    "S3", s3_check, s3_get_stream, s3_put_file, s3_put, s3_del, s3_attributes, s3_iter, s3_close,
    NULL, NULL, /* ranged reads go through get_stream */
};
