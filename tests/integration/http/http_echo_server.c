/* http_echo_server.c: a small server on the daemon scaffold for the HTTP
 * integration tests (wrk load, slowloris, big streams, SIGTERM).
 * Usage: http_echo_server HOST:PORT [HEADER_TIMEOUT_MS [READY_DELAY_MS]]
 * Routes: /echo (GET, POST: method, path, parameters), /stream?n=&size=
 * (chunked, with backpressure), plus the daemon's /metrics, /-/healthy,
 * /-/ready. With ECHO_TLS_CERT and ECHO_TLS_KEY set it serves HTTPS
 * (ECHO_TLS_CLIENT_CA, ECHO_TLS_CLIENT_AUTH: client certificates). */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static void h_echo(net_http_req *req, void *arg) {
  orr_buf b = {0};
  orr_buf_printf(&b, "%s %s\n", net_http_req_method(req), net_http_req_path(req));
  size_t n;
  const net_http_kv *p = net_http_req_params(req, &n);
  for (size_t i = 0; i < n; i++) orr_buf_printf(&b, "%s=%s\n", p[i].name, p[i].value);
  net_http_respond_buf(req, 200, "text/plain; charset=utf-8", &b);
}

typedef struct stream_st {
  long i, n, size;
  char *piece;
} stream_st;

static void pump(net_http_req *req, void *arg) {
  stream_st *st = arg;
  while (st->i < st->n) {
    st->i++;
    int rc = net_http_stream_write(req, st->piece, (size_t)st->size);
    if (rc == ORR_EAGAIN) return; /* resumed by the drain callback */
    if (rc != 0) break;
  }
  net_http_stream_end(req);
}

static void gone(net_http_req *req, void *arg) { net_http_stream_end(req); }

static void h_stream(net_http_req *req, void *arg) {
  orr_arena *a = net_http_req_arena(req);
  stream_st *st = orr_arena_calloc(a, 1, sizeof(*st));
  const char *n = net_http_req_param(req, "n"), *size = net_http_req_param(req, "size");
  st->n = n ? atol(n) : 16;
  st->size = size ? atol(size) : 65536;
  if (st->size <= 0 || st->size > (1 << 24) || st->n < 0) {
    net_http_respond_api_error(req, "bad_data", "bad n or size");
    return;
  }
  st->piece = orr_arena_alloc(a, (size_t)st->size);
  memset(st->piece, 'x', (size_t)st->size);
  net_http_req_on_gone(req, gone, st);
  net_http_stream_begin(req, 200, "application/octet-stream", pump, st);
  pump(req, st);
}

/* Becomes ready after READY_DELAY_MS, as a component that loads state first;
 * the timer is closed by a shutdown hook. */
static uv_timer_t ready_timer;

static void on_ready_timer(uv_timer_t *t) {
  daemon_set_ready(t->data, true);
  orr_log_info("ready", NULL);
}

static void close_ready_timer(daemon_ctx *d, void *arg) {
  orr_log_info("shutdown hook", NULL);
  uv_close((uv_handle_t *)&ready_timer, NULL);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s HOST:PORT [HEADER_TIMEOUT_MS [READY_DELAY_MS]]\n", argv[0]);
    return 2;
  }
  orr_log_setup(ORR_LOG_INFO, ORR_LOG_LOGFMT);
  net_http_config hc;
  net_http_config_default(&hc);
  if (argc > 2) hc.header_timeout_ms = (uint64_t)atol(argv[2]);
  daemon_config cfg = {
    .component = "http_echo_server", .http_address = argv[1], .http_grace_period_ms = 5000,
    .http = &hc};
  daemon_ctx *d;
  if (daemon_new(&cfg, &d) != 0) return 1;
  net_http_router_add(daemon_router(d), NET_HTTP_GET | NET_HTTP_POST, "/echo", "echo", h_echo,
                      NULL);
  net_http_router_add(daemon_router(d), NET_HTTP_GET, "/stream", "stream", h_stream, NULL);
  uv_timer_init(daemon_loop(d), &ready_timer);
  ready_timer.data = d;
  uv_timer_start(&ready_timer, on_ready_timer, argc > 3 ? (uint64_t)atol(argv[3]) : 0, 0);
  daemon_on_shutdown(d, close_ready_timer, NULL);
  if (getenv("ECHO_TLS_CERT")) {
    net_tls_server_opts to = {.cert_file = getenv("ECHO_TLS_CERT"),
                              .key_file = getenv("ECHO_TLS_KEY"),
                              .client_ca_file = getenv("ECHO_TLS_CLIENT_CA"),
                              .client_auth_type = getenv("ECHO_TLS_CLIENT_AUTH")};
    net_tls_ctx *tls;
    char err[256];
    if (net_tls_ctx_new_server(&to, daemon_loop(d), &tls, err, sizeof(err)) != 0) {
      fprintf(stderr, "tls: %s\n", err);
      return 1;
    }
    net_http_server_set_tls(daemon_http_server(d), tls);
    net_tls_ctx_unref(tls);
  }
  int rc = daemon_run(d);
  daemon_free(d);
  return rc;
}
