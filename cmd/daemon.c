/* daemon.c: the scaffold every orrery component runs in — the loop, the HTTP
 * server with the standard endpoints and metrics, and signal-driven shutdown.
 *
 * Design notes
 * 1. States: NEW → RUNNING (daemon_run listening) → DRAINING (first signal or
 *    daemon_stop: HTTP drains for the grace period) → STOPPING (shutdown
 *    hooks ran, daemon handles closing, loop stopped) → daemon_run returns.
 * 2. Everything runs on the loop thread; only daemon_set_ready (atomic) and
 *    daemon_stop (uv_async) may be called from other threads.
 * 3. SIGHUP never stops a daemon (systemd's ExecReload and logrotate send
 *    it). It is ignored from daemon_new on (the component's own start-up
 *    checks run before the loop); while RUNNING it reloads as Prometheus
 *    does: "Reloading configuration file", each reload hook in turn, then
 *    "Completed loading of configuration file" or "Error reloading config"
 *    naming what failed — the daemon keeps running on its old settings.
 * 4. The web configuration (--http.config) wraps the router: its headers
 *    go on every response a handler makes (401s and 404s included), then
 *    basic auth guards every path. Prometheus 2.42 (exporter-toolkit)
 *    wraps its whole mux the same way, so /-/healthy, /-/ready and /metrics
 *    need credentials too when users are configured. Responses the HTTP
 *    parser makes before a request exists (400, 413, 431) carry no headers,
 *    as Go's net/http sends those without calling a handler.
 * 5. SIGHUP re-reads the web config (the first reload hook); a bad file is
 *    logged and the previous one stays in force. A request in flight keeps
 *    the configuration it started with (reference-counted). */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

typedef struct hook {
  void (*fn)(daemon_ctx *d, void *arg);
  void *arg;
} hook;

enum { D_NEW = 0, D_RUNNING, D_DRAINING, D_STOPPING };

struct daemon_ctx {
  uv_loop_t loop;
  char *component;
  char *http_address;
  int64_t grace_ms;
  net_http_config http_cfg;
  net_http_router *router;
  net_http_server *http;
  uv_signal_t sigterm, sigint;
  uv_async_t stop_async;
  atomic_bool ready;
  atomic_int port;
  int state;
  hook *hooks;
  size_t nhooks;
  uv_signal_t sighup;
  struct {
    int (*fn)(daemon_ctx *d, void *arg, char *err, size_t errlen);
    void *arg;
  } *reloads;
  size_t nreloads;
  orr_series *reload_ok, *reload_ts;
  char *web_config_file;  /* --http.config, or NULL */
  net_webconfig *webcfg;  /* in force, or NULL */
  orr_metric *requests_total, *request_duration;
};

/* Thanos's HTTP duration buckets. */
static const double duration_buckets[] = {0.001, 0.01, 0.1, 0.3, 0.6, 1,  3,
                                          6,     9,    20,  30,  60,  90, 120};

static void h_metrics(net_http_req *req, void *arg) {
  orr_buf b = {0};
  int rc = orr_registry_render(orr_registry_default(), &b);
  if (rc != 0) {
    orr_buf_free(&b);
    net_http_respondf(req, 500, "rendering metrics: %s\n", orr_strerror(rc));
    return;
  }
  net_http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static void h_healthy(net_http_req *req, void *arg) {
  net_http_respond(req, 200, "text/plain; charset=utf-8", "OK", 2);
}

static void h_ready(net_http_req *req, void *arg) {
  daemon_ctx *d = arg;
  if (atomic_load(&d->ready))
    net_http_respond(req, 200, "text/plain; charset=utf-8", "OK", 2);
  else
    net_http_respond(req, 503, "text/plain; charset=utf-8", "Service Unavailable", 19);
}

static void on_complete(net_http_req *req, int status, uint64_t bytes, void *arg) {
  daemon_ctx *d = arg;
  const char *handler = net_http_req_route(req);
  if (!handler) handler = "other";
  char code[16];
  snprintf(code, sizeof(code), "%d", status);
  const char *vals[] = {code, handler, net_http_req_method(req)};
  orr_series *s = orr_metric_with(d->requests_total, vals);
  if (s) orr_counter_inc(s);
  const char *hv[] = {handler};
  s = orr_metric_with(d->request_duration, hv);
  if (s) orr_histogram_observe(s, (double)(orr_mono_ns() - net_http_req_start_ns(req)) / 1e9);
}

static void on_stop_async(uv_async_t *a);

/* ---------------------------------------------------------------- web config */

static char *http_config_file; /* process-wide, from --http.config */

int daemon_set_http_config_file(const char *path) {
  free(http_config_file);
  http_config_file = NULL;
  if (!path || !*path) return 0;
  if (!(http_config_file = strdup(path))) return ORR_ENOMEM;
  char err[512];
  net_webconfig *c;
  int rc = net_webconfig_load(path, &c, err, sizeof err);
  if (rc) {
    orr_log_error("cannot load the web configuration (--http.config)", "err", err, NULL);
    return rc;
  }
  net_webconfig_release(c);
  return 0;
}

/* The settings of tls_server_config the TLS transport does not take are
 * refused, not ignored: max_version below TLS13 would otherwise still
 * allow TLS 1.3. curve_preferences and prefer_server_cipher_suites are
 * accepted and left to OpenSSL (logged once). */
static int check_tls(const net_webconfig *c, char *err, size_t errlen) {
  const net_webconfig_tls *t = net_webconfig_tls_config(c);
  if (!t) return 0;
  if (strcmp(t->max_version, "TLS13") != 0) {
    snprintf(err, errlen,
             "web config: tls_server_config.max_version %s: only TLS13 (the default) is supported",
             t->max_version);
    return ORR_EUNSUPPORTED;
  }
  return 0;
}

/* A server TLS context for |c|'s tls_server_config on |d|'s loop (*out NULL
 * when there is none). Returns 0 or an error with one line in |err|. */
static int web_tls_ctx(daemon_ctx *d, const net_webconfig *c, net_tls_ctx **out, char *err,
                       size_t errlen) {
  const net_webconfig_tls *t = net_webconfig_tls_config(c);
  *out = NULL;
  if (!t) return 0;
  if (t->ncurve_preferences || !t->prefer_server_cipher_suites)
    orr_log_warn("web config: curve_preferences and prefer_server_cipher_suites are left to "
                 "OpenSSL's defaults", "component", d->component, NULL);
  net_tls_server_opts o = {.cert_file = t->cert_file,
                           .key_file = t->key_file,
                           .client_ca_file = t->client_ca_file,
                           .client_auth_type = t->client_auth_type,
                           .min_version = t->min_version,
                           .cipher_suites = t->cipher_suites,
                           .ncipher_suites = t->ncipher_suites};
  char sub[400] = "";
  int rc = net_tls_ctx_new_server(&o, &d->loop, out, sub, sizeof sub);
  if (rc) snprintf(err, errlen, "web config: tls_server_config: %s", sub);
  return rc;
}

static bool same_str(const char *a, const char *b) {
  return (!a || !*a) ? (!b || !*b) : (b && !strcmp(a, b));
}

/* Whether two configurations have the same TLS settings (then the TLS
 * context in use stays: it re-reads its files by itself). */
static bool same_tls(const net_webconfig *a, const net_webconfig *b) {
  const net_webconfig_tls *x = net_webconfig_tls_config(a), *y = net_webconfig_tls_config(b);
  if (!x || !y) return x == y;
  if (!same_str(x->cert_file, y->cert_file) || !same_str(x->key_file, y->key_file) ||
      !same_str(x->client_ca_file, y->client_ca_file) ||
      !same_str(x->client_auth_type, y->client_auth_type) ||
      !same_str(x->min_version, y->min_version) || x->ncipher_suites != y->ncipher_suites)
    return false;
  for (size_t i = 0; i < x->ncipher_suites; i++)
    if (strcmp(x->cipher_suites[i], y->cipher_suites[i]) != 0) return false;
  return true;
}

static void auth_done(net_http_req *req, bool ok, void *arg) {
  daemon_ctx *d = arg;
  if (ok) net_http_router_handle(req, d->router);
  else net_webconfig_respond_unauthorized(req);
}

/* The server's handler: web config headers, basic auth, then the router. */
static void d_handle(net_http_req *req, void *arg) {
  daemon_ctx *d = arg;
  net_webconfig *c = d->webcfg;
  if (!c) {
    net_http_router_handle(req, d->router);
    return;
  }
  size_t nh;
  const net_http_kv *h = net_webconfig_headers(c, &nh);
  for (size_t i = 0; i < nh; i++) net_http_resp_header(req, h[i].name, h[i].value);
  net_webconfig_check(c, &d->loop, req, auth_done, d);
}

static int reload_web_config(daemon_ctx *d, void *arg, char *err, size_t errlen) {
  net_webconfig *c;
  int rc = net_webconfig_load(d->web_config_file, &c, err, errlen);
  if (rc) return rc;
  if ((net_webconfig_tls_config(c) != NULL) != (net_webconfig_tls_config(d->webcfg) != NULL)) {
    net_webconfig_release(c);
    snprintf(err, errlen, "web config: turning tls_server_config on or off needs a restart");
    return ORR_EINVAL;
  }
  if ((rc = check_tls(c, err, errlen))) {
    net_webconfig_release(c);
    return rc;
  }
  if (!same_tls(c, d->webcfg)) {
    /* new settings: connections accepted from now on use the new context,
     * those open keep theirs */
    net_tls_ctx *t;
    if ((rc = web_tls_ctx(d, c, &t, err, errlen))) {
      net_webconfig_release(c);
      return rc;
    }
    net_http_server_set_tls(d->http, t);
    net_tls_ctx_unref(t);
  }
  net_webconfig_release(d->webcfg);
  d->webcfg = c;
  return 0;
}

int daemon_new(const daemon_config *cfg, daemon_ctx **out) {
  if (!cfg || !cfg->http_address || !out) return ORR_EINVAL;
  /* A peer that closes its socket while we write must cost an EPIPE, not
   * the process (libuv leaves SIGPIPE at its default): every daemon. */
  signal(SIGPIPE, SIG_IGN);
  /* Until the loop's handler is installed, a SIGHUP must not kill either. */
  signal(SIGHUP, SIG_IGN);
  daemon_ctx *d = calloc(1, sizeof(*d));
  if (!d) return ORR_ENOMEM;
  int rc = ORR_ENOMEM;
  if (uv_loop_init(&d->loop) != 0) {
    free(d);
    return ORR_EIO;
  }
  d->component = strdup(cfg->component ? cfg->component : "orrery");
  d->http_address = strdup(cfg->http_address);
  d->grace_ms = cfg->http_grace_period_ms > 0 ? cfg->http_grace_period_ms : 0;
  atomic_store(&d->port, -1);
  if (cfg->http) d->http_cfg = *cfg->http;
  else net_http_config_default(&d->http_cfg);
  d->http_cfg.on_complete = on_complete;
  d->http_cfg.on_complete_arg = d;
  d->router = net_http_router_new();
  if (!d->component || !d->http_address || !d->router) goto fail;
  if (http_config_file) {
    char err[512];
    if (!(d->web_config_file = strdup(http_config_file))) goto fail;
    if ((rc = net_webconfig_load(http_config_file, &d->webcfg, err, sizeof err)) != 0 ||
        (rc = check_tls(d->webcfg, err, sizeof err)) != 0) {
      orr_log_error("cannot load the web configuration (--http.config)", "component",
                    d->component, "err", err, NULL);
      goto fail;
    }
    rc = ORR_ENOMEM;
    if (daemon_on_reload(d, reload_web_config, NULL) != 0) goto fail;
  }

  orr_registry *reg = orr_registry_default();
  static const char *const total_labels[] = {"code", "handler", "method", NULL};
  static const char *const dur_labels[] = {"handler", NULL};
  d->requests_total = orr_counter_new(reg, "http_requests_total",
                                      "Tracks the number of HTTP requests.", total_labels);
  d->request_duration = orr_histogram_new(
      reg, "http_request_duration_seconds", "Tracks the latencies for HTTP requests.", dur_labels,
      duration_buckets, sizeof(duration_buckets) / sizeof(duration_buckets[0]));
  if (!d->requests_total || !d->request_duration) goto fail;
  if ((rc = orr_register_process_metrics(reg)) != 0) goto fail;
  /* Prometheus's prometheus_config_last_reload_* under our namespace. */
  orr_metric *rok = orr_gauge_new(reg, "orrery_config_last_reload_successful",
                                  "Whether the last configuration reload attempt was successful.",
                                  NULL);
  orr_metric *rts = orr_gauge_new(reg, "orrery_config_last_reload_success_timestamp_seconds",
                                  "Timestamp of the last successful configuration reload.", NULL);
  if (!rok || !rts) goto fail;
  d->reload_ok = orr_metric_series(rok);
  d->reload_ts = orr_metric_series(rts);
  orr_gauge_set(d->reload_ok, 1);
  orr_gauge_set(d->reload_ts, (double)orr_now_ms() / 1000.0);
  rc = ORR_ENOMEM;

  if (net_http_router_add(d->router, NET_HTTP_GET, "/metrics", "metrics", h_metrics, d) != 0 ||
      net_http_router_add(d->router, NET_HTTP_GET | NET_HTTP_HEAD, "/-/healthy", "healthy",
                          h_healthy, d) != 0 ||
      net_http_router_add(d->router, NET_HTTP_GET | NET_HTTP_HEAD, "/-/ready", "ready", h_ready,
                          d) != 0)
    goto fail;
  if ((rc = net_http_server_new(&d->loop, &d->http_cfg, d_handle, d, &d->http)) != 0)
    goto fail;
  if (d->webcfg) {
    /* last: a TLS context holds a timer on the loop, nothing may fail after */
    char err[512] = "";
    net_tls_ctx *t;
    if ((rc = web_tls_ctx(d, d->webcfg, &t, err, sizeof err)) != 0) {
      orr_log_error("cannot load the web configuration (--http.config)", "component",
                    d->component, "err", err, NULL);
      net_http_server_free(d->http);
      goto fail;
    }
    if (t) {
      net_http_server_set_tls(d->http, t);
      net_tls_ctx_unref(t);
    }
  }
  /* Hidden, for bench/tls_vs_plaintext.sh: HTTPS on the HTTP port from
   * ORRERY_HTTP_TLS_CERT/_KEY. Users configure it with --http.config. */
  const char *tc = getenv("ORRERY_HTTP_TLS_CERT"), *tk = getenv("ORRERY_HTTP_TLS_KEY");
  if (!net_webconfig_tls_config(d->webcfg) && tc && tk) {
    net_tls_server_opts to = {.cert_file = tc, .key_file = tk};
    net_tls_ctx *tls;
    char err[256] = "";
    if (net_tls_ctx_new_server(&to, &d->loop, &tls, err, sizeof(err)) != 0) {
      orr_log_error("cannot set up HTTPS", "err", err, NULL);
      net_http_server_free(d->http);
      rc = ORR_EINVAL;
      goto fail;
    }
    net_http_server_set_tls(d->http, tls);
    net_tls_ctx_unref(tls);
  }
  /* daemon_stop() may come from any thread at any time after this */
  uv_async_init(&d->loop, &d->stop_async, on_stop_async);
  d->stop_async.data = d;
  *out = d;
  return 0;
fail:
  net_webconfig_release(d->webcfg);
  free(d->web_config_file);
  free(d->reloads);
  net_http_router_free(d->router);
  free(d->component);
  free(d->http_address);
  uv_loop_close(&d->loop);
  free(d);
  return rc;
}

net_http_server *daemon_http_server(daemon_ctx *d) { return d->http; }

int daemon_grpc_server_tls(uv_loop_t *loop, const char *cert, const char *key,
                           const char *client_ca, const char *min_version, net_tls_ctx **out) {
  *out = NULL;
  bool has_cert = cert && *cert, has_key = key && *key;
  if (!has_cert && !has_key) {
    if (client_ca && *client_ca) {
      orr_log_error("--grpc-server-tls-client-ca needs --grpc-server-tls-cert and --grpc-server-tls-key",
                    NULL);
      return 1;
    }
    return 0;
  }
  if (!has_cert || !has_key) {
    orr_log_error("gRPC server TLS needs both --grpc-server-tls-cert and --grpc-server-tls-key",
                  NULL);
    return 1;
  }
  net_tls_server_opts o = {.cert_file = cert,
                           .key_file = key,
                           .client_ca_file = client_ca,
                           .min_version = min_version && *min_version ? min_version : "1.3"};
  char err[256] = "";
  if (net_tls_ctx_new_server(&o, loop, out, err, sizeof(err)) != 0) {
    orr_log_error("cannot set up TLS for the gRPC server", "err", err, NULL);
    return 1;
  }
  orr_log_info("gRPC server speaks TLS", "cert", cert, "client_ca", client_ca ? client_ca : "",
               "min_version", o.min_version, NULL);
  return 0;
}

uv_loop_t *daemon_loop(daemon_ctx *d) { return &d->loop; }
net_http_router *daemon_router(daemon_ctx *d) { return d->router; }
void daemon_set_ready(daemon_ctx *d, bool ready) { atomic_store(&d->ready, ready); }
int daemon_http_port(const daemon_ctx *d) { return atomic_load(&d->port); }

int daemon_on_shutdown(daemon_ctx *d, void (*fn)(daemon_ctx *d, void *arg), void *arg) {
  hook *h = realloc(d->hooks, (d->nhooks + 1) * sizeof(*h));
  if (!h) return ORR_ENOMEM;
  d->hooks = h;
  d->hooks[d->nhooks].fn = fn;
  d->hooks[d->nhooks].arg = arg;
  d->nhooks++;
  return 0;
}

int daemon_on_reload(daemon_ctx *d, int (*fn)(daemon_ctx *d, void *arg, char *err, size_t errlen),
                     void *arg) {
  void *r = realloc(d->reloads, (d->nreloads + 1) * sizeof(*d->reloads));
  if (!r) return ORR_ENOMEM;
  d->reloads = r;
  d->reloads[d->nreloads].fn = fn;
  d->reloads[d->nreloads].arg = arg;
  d->nreloads++;
  return 0;
}

/* SIGHUP: every hook runs even when one fails (each reloads its own part). */
static void on_sighup(uv_signal_t *h, int signum) {
  daemon_ctx *d = h->data;
  (void)signum;
  if (d->state != D_RUNNING) {
    orr_log_info("received SIGHUP while shutting down, ignoring", "component", d->component, NULL);
    return;
  }
  orr_log_info("Reloading configuration file", "component", d->component, "signal", "SIGHUP",
               NULL);
  char err[512] = "", first[512] = "";
  int failed = 0;
  for (size_t i = 0; i < d->nreloads; i++) {
    err[0] = 0;
    int rc = d->reloads[i].fn(d, d->reloads[i].arg, err, sizeof(err));
    if (rc != 0 && !failed++)
      snprintf(first, sizeof(first), "%s", err[0] ? err : orr_strerror(rc));
  }
  /* TLS certificates are read again too (they are also checked for changes
   * every minute) */
  err[0] = 0;
  int trc = net_tls_ctx_reload_all(err, sizeof(err));
  if (trc != 0 && !failed++) snprintf(first, sizeof(first), "%s", err[0] ? err : orr_strerror(trc));
  if (failed) {
    orr_gauge_set(d->reload_ok, 0);
    orr_log_error("Error reloading config", "component", d->component, "err", first, NULL);
    return;
  }
  orr_gauge_set(d->reload_ok, 1);
  orr_gauge_set(d->reload_ts, (double)orr_now_ms() / 1000.0);
  orr_log_info("Completed loading of configuration file", "component", d->component, "hooks",
               ORR_LOG_INT((int64_t)d->nreloads), NULL);
}

static void on_http_drained(net_http_server *s, void *arg) {
  daemon_ctx *d = arg;
  d->state = D_STOPPING;
  orr_log_info("http server drained", "component", d->component, NULL);
  for (size_t i = 0; i < d->nhooks; i++) d->hooks[i].fn(d, d->hooks[i].arg);
  uv_close((uv_handle_t *)&d->sigterm, NULL);
  uv_close((uv_handle_t *)&d->sigint, NULL);
  uv_close((uv_handle_t *)&d->stop_async, NULL);
  uv_stop(&d->loop);
}

static void begin_shutdown(daemon_ctx *d, const char *why) {
  if (d->state != D_RUNNING) return;
  d->state = D_DRAINING;
  orr_log_info("received signal, shutting down", "component", d->component, "signal", why,
               "grace_period_ms", ORR_LOG_INT(d->grace_ms), NULL);
  atomic_store(&d->ready, false);
  net_http_server_shutdown(d->http, (uint64_t)d->grace_ms, on_http_drained, d);
}

static void on_signal(uv_signal_t *h, int signum) {
  daemon_ctx *d = h->data;
  const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
  if (d->state != D_RUNNING) {
    orr_log_warn("received second signal, exiting now", "signal", name, NULL);
    _exit(1);
  }
  begin_shutdown(d, name);
}

static void on_stop_async(uv_async_t *a) { begin_shutdown(a->data, "stop"); }

void daemon_stop(daemon_ctx *d) { uv_async_send(&d->stop_async); }

int daemon_run(daemon_ctx *d) {
  if (d->state != D_NEW) return 1;
  int rc = net_http_server_listen(d->http, d->http_address);
  if (rc != 0) {
    orr_log_error("cannot listen", "component", d->component, "address", d->http_address, "err",
                  orr_strerror(rc), NULL);
    return 1;
  }
  int port = net_http_server_port(d->http);
  atomic_store(&d->port, port);
  char addr[300];
  const char *colon = strrchr(d->http_address, ':');
  snprintf(addr, sizeof(addr), "%.*s:%d", (int)(colon - d->http_address), d->http_address, port);
  uv_signal_init(&d->loop, &d->sigterm);
  uv_signal_init(&d->loop, &d->sigint);
  d->sigterm.data = d->sigint.data = d;
  uv_signal_start(&d->sigterm, on_signal, SIGTERM);
  uv_signal_start(&d->sigint, on_signal, SIGINT);
  uv_signal_init(&d->loop, &d->sighup);
  d->sighup.data = d;
  uv_signal_start(&d->sighup, on_sighup, SIGHUP);
  uv_unref((uv_handle_t *)&d->sighup); /* never keeps the loop alive */
  d->state = D_RUNNING;
  orr_log_info("listening", "component", d->component, "address", addr, NULL);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  orr_log_info("stopped", "component", d->component, NULL);
  return 0;
}

static void close_any(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void daemon_free(daemon_ctx *d) {
  if (!d) return;
  /* Let pending close callbacks run, then close what is left. */
  uv_run(&d->loop, UV_RUN_NOWAIT);
  uv_walk(&d->loop, close_any, NULL);
  /* Closing the SIGHUP watcher restored the default action (terminate):
   * the process may still have work to do after daemon_free. */
  signal(SIGHUP, SIG_IGN);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  if (d->state == D_NEW || d->state == D_STOPPING) net_http_server_free(d->http);
  net_http_router_free(d->router);
  uv_loop_close(&d->loop);
  free(d->hooks);
  free(d->reloads);
  net_webconfig_release(d->webcfg);
  free(d->web_config_file);
  free(d->component);
  free(d->http_address);
  free(d);
}
