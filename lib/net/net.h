/* net: the networking core every daemon runs on, all on one libuv loop —
 * the HTTP/1.1 server and router, the HTTP client (libcurl multi driven by
 * libuv), gRPC over HTTP/2 (nghttp2), server and client, and TLS for the
 * HTTP server and gRPC (OpenSSL over memory BIOs).
 * Prefix: net_. Depends on base, libuv, http-parser, zlib, libcurl, nghttp2,
 * OpenSSL. */
#ifndef ORR_NET_H
#define ORR_NET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ loop hand-off */
/* Worker threads hand items (a call whose answer has buffers to send) back
 * to the loop (handoff.c): a worker pushes an item and wakes the loop; the
 * loop takes the listed items one at a time and calls |fn| for each. An
 * item is listed at most once, however often it is pushed before the loop
 * takes it. The net_handoff is embedded in its owner (it holds a libuv
 * handle) and a net_handoff_item in each item's struct, zeroed before its
 * first push; |fn| finds the item's struct from the item's address
 * (offsetof). */
typedef struct net_handoff_item {
  struct net_handoff_item *next;
  bool listed;
} net_handoff_item;

typedef struct net_handoff {
  uv_async_t async; /* first: the wake-up finds the net_handoff from it */
  pthread_mutex_t mu; /* guards |head|, |closed| and each item's fields */
  net_handoff_item *head;
  bool closed;
  void (*fn)(net_handoff_item *it, void *arg);
  void *arg;
} net_handoff;

/* On the loop: sets |h| up to call |fn(item, arg)| on |loop| for each item
 * pushed. Returns 0, or ORR_EIO if libuv cannot make the wake-up. |arg| is
 * borrowed until the close callback; it is also the handle's data there.
 * Whatever this returns, net_handoff_destroy() frees |h|'s mutex. */
int net_handoff_init(uv_loop_t *loop, net_handoff *h, void (*fn)(net_handoff_item *it, void *arg),
                     void *arg);
/* From any thread: lists |it| (if it is not listed already) and wakes the
 * loop; does nothing once |h| is closing. |it| is borrowed until |fn| is
 * called with it or net_handoff_remove() takes it off. */
void net_handoff_push(net_handoff *h, net_handoff_item *it);
/* On the loop: takes |it| off the list if it is listed, so that |fn| is
 * not called with it (before the item's struct is freed). */
void net_handoff_remove(net_handoff *h, net_handoff_item *it);
/* On the loop: no wake-up from now on (pushes are dropped); closes the
 * handle, then calls |on_close| with it (its data is |arg|). */
void net_handoff_close(net_handoff *h, uv_close_cb on_close);
/* Destroys the mutex: after the close callback has run, or after a failed
 * net_handoff_init(). */
void net_handoff_destroy(net_handoff *h);

/* ================================================================ HTTP server */
/* HTTP/1.1 server on the daemon's libuv loop (http_server.c), the request
 * parser it is built on (http_parse.c, no I/O) and a router with the
 * Prometheus API error shape (http_router.c).
 *
 * Lifecycle of one request: the server parses it, then calls the handler on
 * the loop thread with a net_http_req. The request stays valid until the
 * handler finishes the response — at once or later (after work on a thread
 * pool, from the loop thread) — with net_http_respond*() or
 * net_http_stream_end(). If the client goes away first, the request is
 * marked gone and its on_gone callback runs; the handler must still finish
 * it, which then frees it. Requests on one connection are handled one at a
 * time (pipelined requests wait their turn). */
typedef struct net_http_server net_http_server;
typedef struct net_http_req net_http_req;
typedef void (*net_http_handler)(net_http_req *req, void *arg);

/* A name/value pair of a request; strings are NUL-terminated and owned by the
 * request's arena. |value_len| counts bytes (a decoded value may hold NUL). */
typedef struct net_http_kv {
  const char *name;
  const char *value;
  size_t value_len;
} net_http_kv;

typedef struct net_http_config {
  size_t max_header_bytes;     /* request line + headers; over → 431 (default 1 MiB) */
  size_t max_url_bytes;        /* request target; over → 414 (default 64 KiB) */
  size_t max_body_bytes;       /* over → 413 (default 16 MiB) */
  uint64_t header_timeout_ms;  /* from a request's first byte to its last header (10 s) */
  uint64_t body_timeout_ms;    /* from the last header to the end of the body (60 s) */
  uint64_t idle_timeout_ms;    /* keep-alive connection with no request (120 s) */
  size_t write_high_water;     /* streaming: queued bytes that pause the writer (1 MiB) */
  size_t gzip_min_bytes;       /* whole bodies shorter than this are not gzipped (1 KiB) */
  size_t max_connections;      /* beyond, new connections are closed at once (0: no limit) */
  /* Called once per finished request, before it is freed (|req| readable);
   * |status| is the status sent, |bytes| the body bytes written (after
   * compression). For access logs and metrics. NULL: none. */
  void (*on_complete)(net_http_req *req, int status, uint64_t bytes, void *arg);
  void *on_complete_arg;
} net_http_config;

/* Fills |c| with the defaults above. */
void net_http_config_default(net_http_config *c);

/* Creates a server on |loop| calling |handler(req, arg)| for each request.
 * |cfg| is copied (NULL: defaults). Returns 0, ORR_EINVAL or ORR_ENOMEM;
 * on success *out is freed by net_http_server_free() after shutdown. */
int net_http_server_new(uv_loop_t *loop, const net_http_config *cfg, net_http_handler handler,
                        void *arg, net_http_server **out);
/* Listens on "host:port" ("[::1]:9090", ":9090" for all interfaces; port 0
 * picks a free one), once per server. Returns 0, ORR_EINVAL for a bad
 * address or a second call, or the negative errno of the failed bind or
 * listen (-EADDRINUSE: orr_strerror names it; nothing is logged here). Shut
 * the server down before freeing it, as after a successful listen. */
int net_http_server_listen(net_http_server *s, const char *addr);
/* The bound port after a successful listen, or -1. */
int net_http_server_port(const net_http_server *s);
/* Graceful drain: stops accepting, closes idle connections at once, lets
 * in-flight requests finish for up to |grace_ms|, then closes the remaining
 * connections (their requests are marked gone). |done(s, arg)| runs on the
 * loop once every connection is closed and every request finished; the
 * server may be freed from there. */
void net_http_server_shutdown(net_http_server *s, uint64_t grace_ms,
                              void (*done)(net_http_server *s, void *arg), void *arg);
/* Frees a server that was never listened on or whose shutdown completed. */
void net_http_server_free(net_http_server *s);
/* Connections currently open and requests not yet finished (for tests). */
size_t net_http_server_connections(const net_http_server *s);

/* ---- the request (all borrowed from |req|; valid until it is finished) */
const char *net_http_req_method(const net_http_req *req); /* "GET" */
const char *net_http_req_path(const net_http_req *req);   /* decoded path "/api/v1/query" */
const char *net_http_req_target(const net_http_req *req); /* raw request target */
/* Query and form parameters merged as Go's Request.ParseForm: values from an
 * application/x-www-form-urlencoded POST/PUT/PATCH body first, then the
 * URL query, in order of appearance; then the value parts of a
 * multipart/form-data body, as Go's FormValue sees them after
 * ParseMultipartForm (a malformed multipart body adds nothing). */
const net_http_kv *net_http_req_params(const net_http_req *req, size_t *n);
/* The first value of parameter |name|, or NULL (as Go's FormValue but NULL
 * for absent). */
const char *net_http_req_param(const net_http_req *req, const char *name);
/* Header lookup, case-insensitive; the first value or NULL. */
const char *net_http_req_header(const net_http_req *req, const char *name);
const net_http_kv *net_http_req_headers(const net_http_req *req, size_t *n);
/* The body (NUL-terminated; |*len| may be NULL). */
const char *net_http_req_body(const net_http_req *req, size_t *len);
/* The request's arena: freed when the response completes. */
orr_arena *net_http_req_arena(net_http_req *req);
/* Monotonic time (orr_mono_ns) when the request's first byte arrived. */
uint64_t net_http_req_start_ns(const net_http_req *req);
/* Remote address "ip:port" (borrowed; "" when unknown). */
const char *net_http_req_remote(const net_http_req *req);
/* Whether the client went away (reset, EOF, server forced close). */
bool net_http_req_gone(const net_http_req *req);
/* |cb(req, arg)| runs once, on the loop, when the client goes away before the
 * response is finished; the handler still finishes the request. It does not
 * run for a client lost before it was set (check net_http_req_gone()) nor
 * inside a net_http_respond/stream call (whose return value tells). */
void net_http_req_on_gone(net_http_req *req, void (*cb)(net_http_req *req, void *arg),
                          void *arg);
/* Route data set by the router: the matched route's name (NULL if none) and
 * the path variables of its pattern (":name" segments, a trailing "*rest"). */
const char *net_http_req_route(const net_http_req *req);
const char *net_http_req_var(const net_http_req *req, const char *name);

/* ---- the response */
/* Adds a response header; |name| and |value| are copied. Returns 0,
 * ORR_EINVAL (CR/LF in them, or the response already started) or ORR_ENOMEM. */
int net_http_resp_header(net_http_req *req, const char *name, const char *value);
/* Sends the whole response and finishes |req| (it is freed: do not touch it
 * afterwards). |body| is borrowed for the call. |content_type| may be NULL.
 * Gzipped when the client accepts it and |len| >= gzip_min_bytes (bodies
 * of 128 KiB and more on the libuv thread pool). Loop thread only, as every
 * net_http_* call: a handler whose work ran elsewhere comes back to the loop
 * (uv_queue_work's after-callback, uv_async) to respond. */
void net_http_respond(net_http_req *req, int status, const char *content_type, const void *body,
                      size_t len);
/* As net_http_respond, taking ownership of |body|'s data (no copy). */
void net_http_respond_buf(net_http_req *req, int status, const char *content_type, orr_buf *body);
/* printf-style text/plain response. */
void net_http_respondf(net_http_req *req, int status, const char *fmt, ...) ORR_PRINTF(3, 4);

/* Starts a streaming response (chunked, or close-delimited for HTTP/1.0),
 * gzipped when the client accepts it. |on_drain(req, arg)| runs when the
 * queued output falls back under the low-water mark after a write returned
 * ORR_EAGAIN. Returns 0 or ORR_EINVAL (already started). */
int net_http_stream_begin(net_http_req *req, int status, const char *content_type,
                          void (*on_drain)(net_http_req *req, void *arg), void *arg);
/* Queues |len| bytes (copied). Returns 0 when more may be written at once;
 * ORR_EAGAIN when the data was queued but the queue is over the high-water
 * mark (wait for on_drain); ORR_ECLOSED when the client is gone (data
 * dropped; finish with net_http_stream_end); ORR_ENOMEM. */
int net_http_stream_write(net_http_req *req, const void *data, size_t len);
/* Pushes out data held by the compressor (gzip sync flush). Same returns. */
int net_http_stream_flush(net_http_req *req);
/* Ends the stream and finishes |req| (freed). */
void net_http_stream_end(net_http_req *req);

/* Reason phrase for |status| ("Not Found"), "Unknown" for others. */
const char *net_http_status_text(int status);

/* ---- router */
typedef struct net_http_router net_http_router;
enum {
  NET_HTTP_GET = 1 << 0,
  NET_HTTP_POST = 1 << 1,
  NET_HTTP_PUT = 1 << 2,
  NET_HTTP_DELETE = 1 << 3,
  NET_HTTP_HEAD = 1 << 4,
  NET_HTTP_OPTIONS = 1 << 5,
  NET_HTTP_PATCH = 1 << 6,
};
/* Returns a new router (404 for unmatched paths), or NULL on OOM. Freed with
 * net_http_router_free(). */
net_http_router *net_http_router_new(void);
void net_http_router_free(net_http_router *r);
/* Adds a route. |pattern| is an exact path ("/metrics") or has ":var"
 * segments matching one non-empty segment ("/api/v1/label/:name/values") and
 * may end in a segment "*var" matching the rest of the path, possibly empty.
 * |methods| is a NET_HTTP_* set; a matching path with another method gets
 * 405 with an Allow header. |name| labels the route (metrics' handler label;
 * NULL: the pattern). Both strings are copied. Earlier routes win. Returns 0,
 * ORR_EINVAL for a bad pattern or ORR_ENOMEM. */
int net_http_router_add(net_http_router *r, unsigned methods, const char *pattern,
                        const char *name, net_http_handler handler, void *arg);
/* The server handler that dispatches to |r| (pass |r| as its arg). */
void net_http_router_handle(net_http_req *req, void *r);
/* NET_HTTP_* bit of a method name, 0 if unknown. */
unsigned net_http_method_bit(const char *method);

/* Prometheus API error: {"status":"error","errorType":"<type>","error":"<msg>"}
 * with the status Prometheus 2.42 uses for the type: bad_data 400,
 * execution 422, canceled and timeout 503, not_found 404, internal and
 * anything else (unavailable) 500. Finishes |req|. */
void net_http_respond_api_error(net_http_req *req, const char *error_type, const char *msg);
int net_http_api_error_status(const char *error_type);

/* ================================================================ HTTP client */
/* HTTP client (http_client.c): libcurl's multi interface driven by the
 * daemon's libuv loop. One client per loop; it owns the curl multi handle,
 * whose connection cache is shared by every request (keep-alive reuse, a cap
 * per host). Used for remote read, /federate scraping and S3.
 *
 * Lifecycle of one request: net_http_client_req_new() → setters →
 * net_http_client_start() → on_headers (once, final response only) →
 * on_body (zero or more pieces) → on_done (exactly once, also after a cancel,
 * a failed start or the client closing). The request is freed when on_done
 * returns; the caller must not use it afterwards. Everything runs on the
 * loop thread; callbacks are never called from inside net_http_client_start,
 * _cancel or _resume. */
typedef struct net_http_client net_http_client;
typedef struct net_http_client_req net_http_client_req;

typedef struct net_http_client_opts {
  long max_host_connections;  /* open connections per host; 0: 16 */
  long max_total_connections; /* 0: unlimited */
  const char *user_agent;     /* copied; NULL: "orrery/<version>" */
} net_http_client_opts;

/* Creates a client on |loop| (borrowed until the close callback). |opts| may
 * be NULL. Returns 0, ORR_ENOMEM or ORR_EINTERNAL (curl refused). Caller
 * frees with net_http_client_close(). */
int net_http_client_new(uv_loop_t *loop, const net_http_client_opts *opts,
                        net_http_client **out);
/* Cancels every request (each gets on_done with ORR_ECANCELED, also those
 * never started), closes all handles, then calls |cb| (may be NULL) and frees
 * the client. New requests fail with ORR_ECLOSED meanwhile. */
void net_http_client_close(net_http_client *c, void (*cb)(void *arg), void *arg);

/* Returned by on_body / an upload reader: stop until net_http_client_resume().
 * For on_body the piece was NOT consumed; it is delivered again (perhaps with
 * more bytes) after the resume. */
#define NET_HTTP_CLIENT_PAUSE 1

/* Called once the final response's headers are in (|status| 100..599).
 * Returns 0 to go on or a negative ORR_E* code to abort with it. */
typedef int (*net_http_client_headers_fn)(net_http_client_req *r, int status, void *arg);
/* Called with each piece of the body as it arrives; |data| is borrowed for
 * the call. Returns 0 (consumed), NET_HTTP_CLIENT_PAUSE, or a negative ORR_E*
 * code to abort the transfer with it. */
typedef int (*net_http_client_body_fn)(net_http_client_req *r, const char *data, size_t n,
                                       void *arg);
/* Called exactly once. |result|: 0 (a response arrived, whatever its status),
 * ORR_ETIMEOUT, ORR_ECANCELED, ORR_ELIMIT, ORR_EIO (see
 * net_http_client_error()), ORR_ECLOSED, ORR_ENOMEM, or a code a callback
 * aborted with. |r| is freed when this returns. */
typedef void (*net_http_client_done_fn)(net_http_client_req *r, int result, void *arg);
/* Upload reader: writes up to |cap| bytes to |buf| and sets *nread (0 at the
 * end). Returns 0, NET_HTTP_CLIENT_PAUSE (no data yet) or a negative ORR_E*
 * code to abort. */
typedef int (*net_http_client_read_fn)(net_http_client_req *r, char *buf, size_t cap,
                                       size_t *nread, void *arg);
/* Rewinds an upload reader to its first byte (for retries and for curl
 * resending on a reused connection that died). Returns 0 or ORR_E*. */
typedef int (*net_http_client_rewind_fn)(net_http_client_req *r, void *arg);

/* Retries of one request, each attempt on the same settings. An attempt is
 * retried only while nothing of its response has been handed to the caller:
 * a retryable status is decided before on_headers (and its body discarded),
 * a transport error before any on_headers. Never after a cancel. The delay
 * before retry n (1-based) is uniform in [d, 2d), d = min_delay * 2^(n-1),
 * capped at max_delay; a Retry-After (seconds or HTTP date) longer than that
 * is honoured up to max_retry_after. Waiting runs on a uv timer. */
typedef struct net_http_client_retry {
  int max_attempts;           /* including the first; <= 1: no retries */
  int64_t min_delay_ms;       /* 0: 100 ms */
  int64_t max_delay_ms;       /* 0: 10 s */
  int64_t max_retry_after_ms; /* 0: 60 s */
  /* Budget for all attempts and waits together (0: none): no attempt starts
   * after it, and each attempt's timeout is cut to what is left of it. */
  int64_t max_elapsed_ms;
  /* Returns nonzero to retry after |result| (0 or ORR_E*) with |status| (0
   * when none). NULL: net_http_client_retry_default. */
  int (*should_retry)(const net_http_client_req *r, int result, int status, void *arg);
  void *arg;
} net_http_client_retry;

/* Retries ORR_ETIMEOUT, ORR_EIO (connection errors), 5xx and 429. */
int net_http_client_retry_default(const net_http_client_req *r, int result, int status,
                                  void *arg);
/* The backoff before retry |n| (1-based) under |p| for a random |rnd|. */
int64_t net_http_client_retry_delay_ms(const net_http_client_retry *p, int n, uint64_t rnd);

/* Creates a request (method and URL are copied; method "HEAD" asks for no
 * body). Returns 0, ORR_EINVAL, ORR_ENOMEM or ORR_ECLOSED. The request belongs
 * to the client: start it, or free an unstarted one with
 * net_http_client_req_free(). */
int net_http_client_req_new(net_http_client *c, const char *method, const char *url,
                            net_http_client_req **out);
void net_http_client_req_free(net_http_client_req *r); /* only before start */
/* Adds a request header (copied). An empty |value| removes a header curl
 * would add. Returns 0 or ORR_ENOMEM. */
int net_http_client_req_header(net_http_client_req *r, const char *name, const char *value);
/* Body as bytes: |data| is borrowed until on_done. */
void net_http_client_req_body(net_http_client_req *r, const void *data, size_t len);
/* Body from a reader: |len| bytes, or -1 for unknown (sent chunked).
 * |rewind| may be NULL (then the request is not retried once it has read). */
void net_http_client_req_body_reader(net_http_client_req *r, int64_t len,
                                     net_http_client_read_fn read,
                                     net_http_client_rewind_fn rewind, void *arg);
/* Per attempt: total time (time paused included) and connect time in ms;
 * 0: no limit / curl's 300 s. */
void net_http_client_req_timeouts(net_http_client_req *r, int64_t total_ms, int64_t connect_ms);
/* AWS SigV4 signing by curl: |provider| as CURLOPT_AWS_SIGV4
 * ("aws:amz:us-east-1:s3"), the keys as CURLOPT_USERPWD; copied. curl hashes
 * a bytes body itself; with a reader body add the header
 * "x-amz-content-sha256" (the hex SHA-256, or UNSIGNED-PAYLOAD), else curl
 * signs the hash of an empty body. Returns 0 or ORR_ENOMEM. */
int net_http_client_req_aws_sigv4(net_http_client_req *r, const char *provider,
                                  const char *access_key, const char *secret_key);
/* TLS for https URLs (as Thanos' tls_config / insecure_skip_verify). */
typedef struct net_http_client_tls {
  const char *ca_file;       /* PEM CAs to verify the server with; NULL: system's */
  const char *cert_file;     /* client certificate (PEM) for mutual TLS, or NULL */
  const char *key_file;      /* its private key, or NULL */
  bool insecure_skip_verify; /* do not verify the server's certificate or name */
  const char *server_name;   /* name to verify (and send as SNI) instead of the URL's host */
} net_http_client_tls;
/* Sets TLS options; strings are copied. Returns 0 or ORR_ENOMEM. */
int net_http_client_req_tls(net_http_client_req *r, const net_http_client_tls *tls);
void net_http_client_req_callbacks(net_http_client_req *r, net_http_client_headers_fn on_headers,
                                   net_http_client_body_fn on_body,
                                   net_http_client_done_fn on_done, void *arg);
/* Collects the whole body into |out| (borrowed until on_done; on_body is then
 * not called). More than |max_bytes| stops the transfer with ORR_ELIMIT. */
void net_http_client_req_collect(net_http_client_req *r, orr_buf *out, size_t max_bytes);
/* |p| is copied; NULL: no retries. */
void net_http_client_req_retry(net_http_client_req *r, const net_http_client_retry *p);

/* Starts |r|. Returns 0, or an error after which on_done still runs (with
 * that error) — from the loop, not from inside this call. */
int net_http_client_start(net_http_client_req *r);
/* Cancels |r| at any point before on_done: on_done follows with ORR_ECANCELED
 * (unless it already completed in the same loop turn). Loop thread only. */
void net_http_client_cancel(net_http_client_req *r);
/* Resumes a transfer paused by NET_HTTP_CLIENT_PAUSE (either direction). */
void net_http_client_resume(net_http_client_req *r);

/* Response accessors, valid from on_headers until on_done returns. */
int net_http_client_status(const net_http_client_req *r); /* 0 before headers */
/* Case-insensitive lookup of a response header (first occurrence); the value
 * is borrowed like the request. NULL if absent. */
const char *net_http_client_header(const net_http_client_req *r, const char *name);
/* Iterates response headers: start with *it = 0; returns 0 at the end. */
int net_http_client_header_next(const net_http_client_req *r, size_t *it, const char **name,
                                size_t *name_len, const char **value);
/* Curl's error text for the last attempt ("" if none). */
const char *net_http_client_error(const net_http_client_req *r);
int net_http_client_attempts(const net_http_client_req *r); /* attempts started */
uint64_t net_http_client_body_bytes(const net_http_client_req *r); /* delivered */

/* ================================================================ TLS */
/* TLS for the HTTP server and gRPC (tls.c): OpenSSL over our libuv streams
 * through memory BIOs, never blocking the loop. A net_tls_ctx is built from
 * certificate files and reloads them when they change (checked every
 * minute; ORRERY_TLS_RELOAD_INTERVAL_MS overrides that for tests) and on
 * net_tls_ctx_reload() (SIGHUP): new connections get the new certificate,
 * connections in flight keep theirs. A failed handshake closes its
 * connection and is logged once, at warn, with the peer's address.
 * Contexts are reference-counted; loop thread only. */
typedef struct net_tls_ctx net_tls_ctx;

/* A server's settings, as Prometheus's web config tls_server_config names
 * them. Strings are borrowed for the call. */
typedef struct net_tls_server_opts {
  const char *cert_file;      /* PEM chain; required */
  const char *key_file;       /* PEM key; required */
  const char *client_ca_file; /* CA for client certificates; NULL: none */
  /* NoClientCert, RequestClientCert, RequireAnyClientCert,
   * VerifyClientCertIfGiven or RequireAndVerifyClientCert. NULL or "":
   * RequireAndVerifyClientCert when client_ca_file is set (Thanos's gRPC
   * server), else NoClientCert. A client_ca_file with NoClientCert is an
   * error, as in Prometheus. */
  const char *client_auth_type;
  /* "TLS10".."TLS13" (Prometheus) or "1.0".."1.3" (Thanos); NULL or "":
   * TLS12 (Prometheus's default). */
  const char *min_version;
  /* Go/IANA names ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), for TLS 1.2
   * and below as in Go; none: OpenSSL's defaults. */
  const char *const *cipher_suites;
  size_t ncipher_suites;
} net_tls_server_opts;

/* A client's settings, as Thanos's --grpc-client-tls-* flags and the
 * Prometheus tls_config. Strings are borrowed for the call. */
typedef struct net_tls_client_opts {
  const char *ca_file;     /* NULL: the system's CAs */
  const char *cert_file;   /* client certificate (with key_file); NULL: none */
  const char *key_file;
  const char *server_name; /* name to verify and send as SNI; NULL: the host dialled */
  bool insecure_skip_verify;
  const char *min_version; /* as the server's; NULL: TLS12 */
} net_tls_client_opts;

/* Build a context from the files, on |loop| (for the reload timer).
 * Returns 0 and *out (caller releases it with net_tls_ctx_unref), or
 * ORR_EINVAL with one line in |err| (bad option, unreadable file, key not
 * matching the certificate), or ORR_ENOMEM. */
int net_tls_ctx_new_server(const net_tls_server_opts *o, uv_loop_t *loop, net_tls_ctx **out,
                           char *err, size_t errlen);
int net_tls_ctx_new_client(const net_tls_client_opts *o, uv_loop_t *loop, net_tls_ctx **out,
                           char *err, size_t errlen);
/* Takes a reference (returns |t|); NULL is allowed. */
net_tls_ctx *net_tls_ctx_ref(net_tls_ctx *t);
/* Drops a reference; the last one frees the context (its timer closes on
 * the loop). NULL is allowed. */
void net_tls_ctx_unref(net_tls_ctx *t);
/* Reads the files again now. Returns 0, or ORR_EINVAL with one line in
 * |err| (may be NULL): the previous certificate stays in use. */
int net_tls_ctx_reload(net_tls_ctx *t, char *err, size_t errlen);
/* net_tls_ctx_reload() on every live context (SIGHUP). Returns 0 or the
 * first error (its line in |err|). */
int net_tls_ctx_reload_all(char *err, size_t errlen);
/* Successful reloads so far (for tests). */
uint64_t net_tls_ctx_reloads(const net_tls_ctx *t);

/* Serves HTTPS (ALPN http/1.1): every connection accepted from now on
 * speaks TLS with |tls|. Takes a reference, released with the server.
 * Call before listening. */
void net_http_server_set_tls(net_http_server *s, net_tls_ctx *tls);

/* ================================================================ web config */
/* Prometheus's web configuration file (webconfig.c; the --http.config flag,
 * the format of Prometheus 2.42's --web.config.file): tls_server_config,
 * http_server_config (headers; http2 is accepted and ignored: the server
 * speaks HTTP/1.1) and basic_auth_users (user: bcrypt hash). Parsed strictly
 * as Prometheus does: an unknown key or a bad value is an error naming it.
 *
 * Basic auth (Prometheus's exporter-toolkit rules): every request needs
 * valid credentials when users are configured; a missing or malformed
 * header, an unknown user or a wrong password all get the same 401 with
 * "WWW-Authenticate: Basic". bcrypt runs on libcrypt (crypt_rn) off the
 * loop; an unknown user is checked against a dummy hash of the same cost,
 * and the comparison is constant-time. Successful checks are cached (by the
 * SHA-256 of user, password and stored hash), so bcrypt's cost is paid once
 * per credential, not per request; failures are never cached. */
typedef struct net_webconfig net_webconfig;

typedef struct net_webconfig_tls {
  const char *cert_file, *key_file, *client_ca_file;
  const char *client_auth_type; /* Go's names; "NoClientCert" when unset */
  const char *min_version;      /* "TLS10".."TLS13"; "TLS12" when unset */
  const char *max_version;      /* "TLS13" when unset */
  const char *const *cipher_suites; /* Go's names (TLS_ECDHE_..._SHA256) */
  size_t ncipher_suites;
  const char *const *curve_preferences; /* CurveP256, CurveP384, CurveP521, X25519 */
  size_t ncurve_preferences;
  bool prefer_server_cipher_suites; /* default true */
} net_webconfig_tls;

/* Parses |text| (|len| bytes). |path_for_errors| prefixes messages (may be
 * NULL). Files named in tls_server_config must be readable. On error writes
 * one line to |err| naming the key (never a secret value) and returns
 * ORR_EINVAL (or ORR_ENOMEM). On success *out has one reference; release
 * with net_webconfig_release(). */
int net_webconfig_parse(const char *text, size_t len, net_webconfig **out, char *err,
                        size_t errlen);
/* Reads and parses the file at |path|; as net_webconfig_parse. */
int net_webconfig_load(const char *path, net_webconfig **out, char *err, size_t errlen);
net_webconfig *net_webconfig_acquire(net_webconfig *c);
void net_webconfig_release(net_webconfig *c); /* NULL is fine */
/* TLS settings, or NULL when the file has none (plain HTTP). Borrowed. */
const net_webconfig_tls *net_webconfig_tls_config(const net_webconfig *c);
/* The headers of http_server_config, in file order (borrowed). */
const net_http_kv *net_webconfig_headers(const net_webconfig *c, size_t *n);
/* Number of basic_auth_users. */
size_t net_webconfig_users(const net_webconfig *c);
/* The configuration rendered as YAML with every secret shown as <secret>
 * (as Prometheus's config dumps). Appends to |out|; 0 or ORR_ENOMEM. */
int net_webconfig_dump(const net_webconfig *c, orr_buf *out);

/* Checks |req| against |c| when it has users (loop thread of |loop|):
 * calls |done(req, ok, arg)| — at once for no users, a missing or malformed
 * header or a cached success, or after bcrypt ran on |loop|'s thread pool. |c| is held until |done| runs. With ok
 * false, answer with net_webconfig_respond_unauthorized(). */
void net_webconfig_check(net_webconfig *c, uv_loop_t *loop, net_http_req *req,
                         void (*done)(net_http_req *req, bool ok, void *arg), void *arg);
/* The pure part of the check, for tests and fuzzing: decodes an
 * Authorization header value ("Basic base64(user:pass)"). Returns 0 and
 * sets |user|/|pass| (NUL-terminated, in |buf| of |cap| bytes) or
 * ORR_EINVAL. */
int net_webconfig_parse_basic(const char *header, char *buf, size_t cap, const char **user,
                              const char **pass);
/* Whether |user|/|pass| are valid under |c|, synchronously (runs bcrypt on
 * a miss; for tests and tools). */
bool net_webconfig_verify(net_webconfig *c, const char *user, const char *pass);
/* 401, "WWW-Authenticate: Basic", body "Unauthorized\n" (Go's http.Error):
 * the same for every failure. Finishes |req|. */
void net_webconfig_respond_unauthorized(net_http_req *req);

/* ================================================================ HTTP client config */
/* Prometheus's HTTP client settings in YAML (http_client_config.c): for the
 * sidecar's --prometheus.http-client(-file) (Thanos's flag) and the remote
 * read / federate sources. Keys: basic_auth {username, password,
 * password_file}, authorization {type (default Bearer), credentials,
 * credentials_file}, bearer_token, bearer_token_file (Thanos's older
 * names), tls_config {ca_file, cert_file, key_file, server_name,
 * insecure_skip_verify}. Strict: unknown keys are errors. Secret files are
 * read at each request, as Prometheus does, so a rotated token is used at
 * once. */
typedef struct net_http_client_config {
  char *username, *password, *password_file;
  char *auth_type, *credentials, *credentials_file;
  char *ca_file, *cert_file, *key_file, *server_name;
  bool insecure_skip_verify;
} net_http_client_config;

/* Parses |text| into |*c| (zeroed first). Returns 0, ORR_EINVAL (one line in
 * |err| naming the key, never a secret) or ORR_ENOMEM. Free with
 * net_http_client_config_free(). */
int net_http_client_config_parse(const char *text, size_t len, net_http_client_config *c,
                                 char *err, size_t errlen);
void net_http_client_config_free(net_http_client_config *c);
/* The pair of flags --<flag>-file=FILE / --<flag>=YAML (the Prometheus and
 * Thanos habit): reads FILE or takes YAML and parses it into |*c|. Returns
 * 0 with |*has| false when both are NULL or empty, 0 with |*has| true once
 * parsed, or ORR_EINVAL after logging one line naming |flag| and the key
 * (never a value): both given, an unreadable file, a bad config. */
int net_http_client_config_load(const char *flag, const char *file, const char *text,
                                net_http_client_config *c, bool *has);
/* Applies |c| to |r| (TLS, Authorization header). |url_host| unused when
 * no server_name. Returns 0, ORR_EIO (a secret file could not be read:
 * the message in |err| names the file, not its content) or ORR_ENOMEM. */
int net_http_client_config_apply(const net_http_client_config *c, net_http_client_req *r,
                                 char *err, size_t errlen);
/* The configuration as YAML with secrets shown as <secret>; 0 or ORR_ENOMEM. */
int net_http_client_config_dump(const net_http_client_config *c, orr_buf *out);
/* |url| for logs and errors: a password in its userinfo becomes "xxxxx"
 * ("http://user:xxxxx@host/", as Go's URL.Redacted). Writes at most |cap|
 * bytes (truncated, NUL-terminated) to |out| and returns |out|. */
char *net_url_redacted(const char *url, char *out, size_t cap);

/* ================================================================ gRPC */
/* (section owned by the gRPC work) */

/* gRPC over HTTP/2 — cleartext (h2c, prior knowledge) or TLS with ALPN h2 —
 * server and client, on
 * one libuv loop with nghttp2. Only unary and server-streaming methods; no
 * compression (a compressed message is refused as gRPC does). Everything
 * here is called from the loop thread only. */

/* Status codes, as on the wire (grpc-status). */
#define NET_GRPC_STATUS_MAP(X)  \
  X(OK, 0)                      \
  X(CANCELLED, 1)               \
  X(UNKNOWN, 2)                 \
  X(INVALID_ARGUMENT, 3)        \
  X(DEADLINE_EXCEEDED, 4)       \
  X(NOT_FOUND, 5)               \
  X(ALREADY_EXISTS, 6)          \
  X(PERMISSION_DENIED, 7)       \
  X(RESOURCE_EXHAUSTED, 8)      \
  X(FAILED_PRECONDITION, 9)     \
  X(ABORTED, 10)                \
  X(OUT_OF_RANGE, 11)           \
  X(UNIMPLEMENTED, 12)          \
  X(INTERNAL, 13)               \
  X(UNAVAILABLE, 14)            \
  X(DATA_LOSS, 15)              \
  X(UNAUTHENTICATED, 16)

typedef enum {
#define NET__GRPC_STATUS_ENUM(name, v) NET_GRPC_##name = v,
  NET_GRPC_STATUS_MAP(NET__GRPC_STATUS_ENUM)
#undef NET__GRPC_STATUS_ENUM
} net_grpc_status;

/* Returns the upper-case name of |code| ("DEADLINE_EXCEEDED"), static;
 * "UNKNOWN" for codes outside the table. */
const char *net_grpc_status_name(int code);
/* Maps an ORR_E* code to the gRPC status a peer should see (ORR_ETIMEOUT →
 * DEADLINE_EXCEEDED, ORR_ELIMIT → RESOURCE_EXHAUSTED, ...). */
int net_grpc_status_from_err(int err);

/* ---- message framing (pure bytes, no I/O) */
#define NET_GRPC_PREFIX_LEN 5
#define NET_GRPC_DEFAULT_MAX_RECV (4u * 1024 * 1024)

/* Appends the 5-byte prefix (compressed flag 0, big-endian length) and |msg|
 * to |out|. Returns 0, ORR_ERANGE (len > 4 GiB - 1) or ORR_ENOMEM. */
int net_grpc_frame_append(orr_buf *out, const void *msg, size_t len);

/* An incremental deframer: fed arbitrary pieces of a stream's DATA bytes, it
 * yields whole messages. Zero-initialise, then net_grpc_deframer_init(). */
typedef struct net_grpc_deframer {
  size_t max_msg;       /* larger messages fail with RESOURCE_EXHAUSTED */
  int encoding_set;     /* grpc-encoding other than identity was sent */
  uint8_t prefix[NET_GRPC_PREFIX_LEN];
  size_t prefix_len;    /* bytes of |prefix| seen so far */
  size_t need;          /* payload length of the current message */
  orr_buf msg;          /* payload collected so far when split across pieces */
  int status;           /* gRPC status of the first error, or 0 */
  const char *errmsg;   /* static description of that error */
} net_grpc_deframer;

/* |max_msg| 0 means NET_GRPC_DEFAULT_MAX_RECV. |encoding_set| says whether a
 * grpc-encoding other than identity was negotiated. */
void net_grpc_deframer_init(net_grpc_deframer *d, size_t max_msg, int encoding_set);
void net_grpc_deframer_free(net_grpc_deframer *d);
/* Consumes bytes of |p|/|n| up to the end of the first message completed
 * (or all of them). |*used| gets the bytes consumed. When a message is
 * complete, |*msg|/|*msg_len| point at it (borrowed until the next call),
 * otherwise |*msg| is NULL. Returns 0, or ORR_ELIMIT (message larger than
 * max_msg; d->status = RESOURCE_EXHAUSTED), ORR_EUNSUPPORTED (compressed
 * message we cannot decode: INTERNAL without grpc-encoding, UNIMPLEMENTED
 * with one), ORR_ECORRUPT (bad flag byte: INTERNAL), ORR_ENOMEM. Errors
 * latch: every later call returns the same error. */
int net_grpc_deframer_feed(net_grpc_deframer *d, const uint8_t *p, size_t n, size_t *used,
                           const uint8_t **msg, size_t *msg_len);
/* Whether the deframer stands between messages (no partial message held). */
int net_grpc_deframer_idle(const net_grpc_deframer *d);

/* ---- header values */
/* Parses a grpc-timeout value ("100m", "5S": 1-8 digits then one of
 * H M S m u n) into nanoseconds, saturating at INT64_MAX. Returns 0 or
 * ORR_EINVAL. */
int net_grpc_timeout_parse(const char *s, size_t n, int64_t *ns);
/* Formats |ns| (> 0) as a grpc-timeout with at most 8 digits in the finest
 * unit that fits, rounding up. |out| must hold 16 bytes. Returns |out|. */
char *net_grpc_timeout_format(int64_t ns, char *out, size_t outlen);
/* Appends |s| percent-encoded as grpc-message wants (bytes outside
 * 0x20..0x7E and '%' become %XX). Returns 0 or ORR_ENOMEM. */
int net_grpc_message_encode(orr_buf *out, const char *s, size_t n);
/* Appends the decoding of a grpc-message value; malformed %-sequences are
 * kept verbatim. Returns 0 or ORR_ENOMEM. */
int net_grpc_message_decode(orr_buf *out, const char *s, size_t n);

/* ---- server */
typedef struct net_grpc_server net_grpc_server;
typedef struct net_grpc_call net_grpc_call; /* one server-side call */

typedef enum { NET_GRPC_UNARY = 0, NET_GRPC_SERVER_STREAMING } net_grpc_kind;

/* A method handler, called on the loop thread once the whole request message
 * arrived. |req|/|len| are borrowed from the call's arena (valid until the
 * call is finished). The handler must eventually call net_grpc_call_finish()
 * exactly once, now or later from the loop thread — also after a cancel. */
typedef void (*net_grpc_handler_fn)(net_grpc_call *call, const uint8_t *req, size_t len,
                                    void *arg);
/* Per-call notifications: |on_writable| after a send returned ORR_EAGAIN and
 * the queue drained; |on_cancel| once when the call ends before finish (peer
 * RST_STREAM, deadline, connection loss, shutdown), with the status the peer
 * was told (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE). */
typedef void (*net_grpc_call_fn)(net_grpc_call *call, void *arg);
typedef void (*net_grpc_cancel_fn)(net_grpc_call *call, int status, void *arg);

typedef struct net_grpc_server_opts {
  size_t max_recv_msg;     /* 0: NET_GRPC_DEFAULT_MAX_RECV */
  size_t send_queue_bytes; /* per call; send returns ORR_EAGAIN beyond. 0: 256 KiB */
  uint32_t max_concurrent_streams; /* per connection; 0: 100 */
  /* A call whose response waits in its queue while the client takes no byte
   * of it for this long (its flow-control window stays shut: the client
   * reads nothing) is reset (RST_STREAM CANCEL) and its handler's on_cancel
   * runs with DEADLINE_EXCEEDED at once; a connection whose socket write
   * does not complete for this long is closed. 0: 1 minute; negative:
   * never. */
  int64_t write_timeout_ms;
  /* Where to count calls as go-grpc-prometheus does (grpc_server_started_total,
   * grpc_server_handled_total, grpc_server_handling_seconds), borrowed for the
   * server's life; NULL: no metrics. */
  orr_registry *registry;
  /* Serve gRPC over TLS (ALPN h2) with this context; the server takes a
   * reference. NULL: plaintext (h2c). */
  net_tls_ctx *tls;
} net_grpc_server_opts;

/* Creates a server on |loop|; |opts| may be NULL. Caller frees with
 * net_grpc_server_close(). Returns 0, ORR_ENOMEM, or ORR_EEXISTS when the
 * registry holds another kind of metric under one of the names. */
int net_grpc_server_new(uv_loop_t *loop, const net_grpc_server_opts *opts, net_grpc_server **out);
/* Registers |path| ("/pkg.Service/Method", copied). Returns 0, ORR_EEXISTS
 * or ORR_ENOMEM. */
int net_grpc_server_register(net_grpc_server *s, const char *path, net_grpc_kind kind,
                             net_grpc_handler_fn fn, void *arg);
/* Listens on |host| (numeric IPv4/IPv6) and |port| (0: any free port); call
 * at most once. Returns 0, ORR_EINVAL or a negative errno from libuv. */
int net_grpc_server_listen(net_grpc_server *s, const char *host, int port);
/* The port actually bound (useful after listening on port 0), or -1. */
int net_grpc_server_port(const net_grpc_server *s);
/* Graceful shutdown: stops accepting, sends GOAWAY, lets calls in flight
 * finish for up to |grace_ms| and then cancels them (UNAVAILABLE). When every
 * connection is closed, frees the server and calls |on_closed(arg)| (may be
 * NULL). The server must not be used after this call. Calls not yet finished
 * by their handlers stay valid until net_grpc_call_finish(). */
void net_grpc_server_close(net_grpc_server *s, int64_t grace_ms, void (*on_closed)(void *arg),
                           void *arg);

/* Sets the per-call callbacks (either may be NULL); |arg| is borrowed. */
void net_grpc_call_set_callbacks(net_grpc_call *c, net_grpc_call_fn on_writable,
                                 net_grpc_cancel_fn on_cancel, void *arg);
/* Queues one response message (copied). Returns 0; ORR_EAGAIN when the call's
 * queue is full (nothing queued: wait for on_writable and send it again);
 * ORR_ECANCELED after a cancel; ORR_EINVAL after finish or a second message
 * of a unary call; ORR_ENOMEM. A message is always accepted into an empty
 * queue, so one larger than the queue still goes out. */
int net_grpc_call_send(net_grpc_call *c, const void *msg, size_t len);
/* Ends the call with |status| and |message| (may be NULL; copied; sent
 * percent-encoded as grpc-message) after the queued messages. Releases the
 * call: |c| must not be used afterwards. Returns 0, or ORR_ECANCELED if the
 * call had been cancelled (it is released all the same). */
int net_grpc_call_finish(net_grpc_call *c, int status, const char *message);
/* The call's arena, freed when the call is released. */
orr_arena *net_grpc_call_arena(net_grpc_call *c);
/* The method path, borrowed for the call's life. */
const char *net_grpc_call_path(const net_grpc_call *c);
/* The absolute deadline on orr_mono_ns()'s clock, or 0 for none. */
uint64_t net_grpc_call_deadline_ns(const net_grpc_call *c);
/* The value of request header |name| (lower case; "-bin" values are left
 * base64-encoded as sent), borrowed for the call's life, or NULL. */
const char *net_grpc_call_metadata(const net_grpc_call *c, const char *name);
/* Whether the call was cancelled (on_cancel has been or is being called). */
int net_grpc_call_cancelled(const net_grpc_call *c);
/* The client's IP address ("127.0.0.2", "::1"; "" when unknown), borrowed
 * for the call's life: for per-client limits and logs. */
const char *net_grpc_call_peer(const net_grpc_call *c);

/* ---- client */
typedef struct net_grpc_client net_grpc_client;
typedef struct net_grpc_ccall net_grpc_ccall; /* one client-side call */

/* Called for each response message, borrowed until return. Return 0 to go
 * on, or NET_GRPC_PAUSE to stop consuming: the HTTP/2 window then closes and
 * the server is held back until net_grpc_ccall_resume(). */
#define NET_GRPC_PAUSE 1
typedef int (*net_grpc_msg_fn)(net_grpc_ccall *c, const uint8_t *msg, size_t len, void *arg);
/* Called exactly once, always from the loop (never from inside the call that
 * started or cancelled the call), with the gRPC status and the decoded
 * grpc-message (borrowed until return, "" when none). The call is freed when
 * this returns. */
typedef void (*net_grpc_done_fn)(net_grpc_ccall *c, int status, const char *message, void *arg);

typedef struct net_grpc_call_opts {
  int64_t timeout_ms;             /* > 0: sent as grpc-timeout and enforced here */
  const char *const *metadata;    /* name, value, ..., NULL; or NULL */
  size_t max_recv_msg;            /* 0: NET_GRPC_DEFAULT_MAX_RECV */
  int unary;                      /* expect exactly one response message */
} net_grpc_call_opts;

/* Creates a client for |host|:|port| on |loop|; connects on the first call
 * and again after a connection is lost. Caller frees with
 * net_grpc_client_close(). Returns 0, ORR_EINVAL or ORR_ENOMEM. */
int net_grpc_client_new(uv_loop_t *loop, const char *host, int port, net_grpc_client **out);
/* Makes every connection opened from now on speak TLS (ALPN h2) with
 * |tls| (a client context), verifying the server as the context says (its
 * server name, else |host|). Takes a reference. */
void net_grpc_client_set_tls(net_grpc_client *c, net_tls_ctx *tls);
/* Fails every call in flight with CANCELLED, closes the connection and frees
 * the client; |on_closed(arg)| (may be NULL) runs once everything is closed. */
void net_grpc_client_close(net_grpc_client *c, void (*on_closed)(void *arg), void *arg);
/* Starts a call of |path| with the request |req|/|len| (copied). |opts| may be
 * NULL. |arg| is borrowed until on_done. On success |*out| (may be NULL) is
 * valid until on_done returns. Returns 0 or ORR_ENOMEM / ORR_EINVAL; on
 * failure no callback is ever called. A connection failure is reported
 * through on_done as UNAVAILABLE. */
int net_grpc_client_call(net_grpc_client *c, const char *path, const void *req, size_t len,
                         const net_grpc_call_opts *opts, net_grpc_msg_fn on_msg,
                         net_grpc_done_fn on_done, void *arg, net_grpc_ccall **out);
/* Stops/restarts consuming response messages (as returning NET_GRPC_PAUSE). */
void net_grpc_ccall_pause(net_grpc_ccall *c);
void net_grpc_ccall_resume(net_grpc_ccall *c);
/* Cancels: sends RST_STREAM(CANCEL); on_done follows with CANCELLED. */
void net_grpc_ccall_cancel(net_grpc_ccall *c);
/* Value of response header or trailer |name| (grpc-status and grpc-message
 * too, as sent), borrowed until on_done returns; NULL if not received (yet). */
const char *net_grpc_ccall_metadata(const net_grpc_ccall *c, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* ORR_NET_H */
