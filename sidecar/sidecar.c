/* sidecar.c: `orrery sidecar` — waits for Prometheus, learns its external
 * labels, then serves StoreAPI over its data: Series through remote read
 * (chunks passed through) or /api/v1/series, labels through its HTTP API.
 *
 * Design notes
 * 1. Start-up is a chain of HTTP calls on the loop: /-/ready (polled with
 *    backoff) → /api/v1/status/flags (only with uploads: block durations must
 *    match) → /api/v1/status/config (external labels; none → exit 1) →
 *    /metrics (lowest timestamp) → READY: gRPC listens, /-/ready answers
 *    200, the shipper hook starts, a 30 s refresh timer runs.
 * 2. The StoreAPI calls are lib/prom's prom_source (design notes there:
 *    labels copied per call, backpressure, each client's share of the
 *    connections to Prometheus), behind blocks.c with --tsdb.read-blocks
 *    (the persisted part of a Series call read from the block files); the
 *    sidecar keeps its external labels, out-of-order setting and min time
 *    up to date.
 * 4. Shutdown: the daemon drains HTTP, our hook closes gRPC gracefully (calls
 *    in flight get the grace period), then the HTTP client; we run the loop
 *    until they are closed. Nothing starts an HTTP request once shutting_down
 *    is set, except Series/label calls still in flight.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "sidecar_int.h"
#include "storeapi.h"

enum { S_WAIT_READY = 0, S_CONFIG, S_FLAGS, S_MINTIME, S_READY, S_STOPPED };

struct sidecar {
  sidecar_config cfg;
  char url_log[512]; /* cfg.prometheus_url with its password redacted, for logs */
  daemon_ctx *d;
  uv_loop_t *loop;
  net_http_client *http;
  net_grpc_server *grpc;
  storeapi_server *store;
  uv_timer_t timer; /* start-up retries, then the 30 s refresh */
  int state;
  int exit_code;
  bool uploads;
  uint64_t start_ns;
  int64_t backoff_ms;
  orr_arena *ext_arena;
  labels_set ext;
  int64_t limit_min_time; /* --min-time */
  int64_t min_time;
  int64_t lowest_ts;      /* from Prometheus's /metrics, INT64_MIN unknown */
  void *shipper;
  prom_source *src; /* the StoreAPI calls */
  sidecar_blocks *blocks; /* --tsdb.read-blocks, or NULL */
  int64_t blocks_min;     /* the oldest block's min time, INT64_MAX none */
  orr_series *rr_bytes, *prom_up, *heartbeat;
  int pending_closes;
  bool shutting_down;
};

/* ---------------------------------------------------------------- HTTP GET */
/* GET |pathq| (with its query) on Prometheus; |cb| runs once from the loop
 * with |sc| as its owner. */
static int sc_get(sidecar *sc, const char *pathq, size_t max, int64_t timeout_ms, prom_get_fn cb,
                  void *arg) {
  return prom_get_auth(sc->http, sc->cfg.prometheus_client, sc->cfg.prometheus_url, pathq, max,
                       timeout_ms, cb, sc, arg, NULL);
}

/* ---------------------------------------------------------------- start-up */
static void fail_start(sidecar *sc, const char *msg) {
  if (sc->shutting_down) return; /* answers cancelled by the shutdown */
  orr_log_error(msg, NULL);
  sc->exit_code = 1;
  sc->state = S_STOPPED;
  daemon_stop(sc->d);
}

static void step(sidecar *sc);
static void on_timer(uv_timer_t *t) { step(t->data); }

static void retry_later(sidecar *sc, int64_t ms) {
  if (sc->shutting_down) return;
  uv_timer_start(&sc->timer, on_timer, (uint64_t)ms, 0);
}

static bool timed_out(sidecar *sc) {
  return (int64_t)((orr_mono_ns() - sc->start_ns) / 1000000) > sc->cfg.ready_timeout_ms;
}

static void refresh(sidecar *sc);

static void become_ready(sidecar *sc) {
  if (sc->shutting_down) return;
  const char *addr = sc->cfg.grpc_address;
  const char *colon = strrchr(addr, ':');
  char host[256];
  if (!colon) {
    fail_start(sc, "bad --grpc-address: want host:port");
    return;
  }
  size_t hl = (size_t)(colon - addr);
  if (hl > 1 && addr[0] == '[' && addr[hl - 1] == ']') {
    snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), addr + 1);
  } else {
    snprintf(host, sizeof(host), "%.*s", (int)hl, addr);
  }
  if (!host[0]) snprintf(host, sizeof(host), "0.0.0.0");
  int rc = net_grpc_server_listen(sc->grpc, host, atoi(colon + 1));
  if (rc) {
    orr_log_error("cannot listen for gRPC", "address", addr, "err", orr_strerror(rc), NULL);
    sc->exit_code = 1;
    sc->state = S_STOPPED;
    daemon_stop(sc->d);
    return;
  }
  orr_log_info("listening for StoreAPI gRPC", "address", addr, "port",
               ORR_LOG_INT(net_grpc_server_port(sc->grpc)), NULL);
  sc->state = S_READY;
  daemon_set_ready(sc->d, true);
  if (sc->uploads && (rc = sidecar_shipper_start(sc)) != 0) {
    orr_log_error("cannot start the shipper", "err", orr_strerror(rc), NULL);
    sc->exit_code = 1;
    sc->state = S_STOPPED;
    daemon_stop(sc->d);
    return;
  }
  orr_log_info("starting sidecar", NULL);
  uv_timer_start(&sc->timer, on_timer, 30000, 0);
}

static void update_min_time(sidecar *sc) {
  int64_t m = sc->lowest_ts != INT64_MIN ? sc->lowest_ts : sc->limit_min_time;
  /* Info's min time includes what the blocks we read hold. */
  if (sc->lowest_ts != INT64_MIN && sc->blocks_min < m) m = sc->blocks_min;
  if (m < sc->limit_min_time) m = sc->limit_min_time;
  sc->min_time = m;
  prom_source_set_min_time(sc->src, m);
}

static void got_metrics(void *owner, int result, int status, orr_buf *body, const char *err,
                        void *arg) {
  sidecar *sc = owner;
  int64_t ts;
  if (result == 0 && status == 200 && prom_parse_lowest_ts(body->data, body->len, &ts) == 0 &&
      ts < orr_now_ms() + 365LL * 86400000)
    sc->lowest_ts = ts;
  update_min_time(sc);
  if (sc->state == S_MINTIME) become_ready(sc);
}

static void got_flags(void *owner, int result, int status, orr_buf *body, const char *err,
                      void *arg) {
  sidecar *sc = owner;
  char mn[64], mx[64];
  if (result != 0 || status != 200 || prom_parse_flags(body->data, body->len, mn, mx, 64)) {
    if (result == 0 && status == 404) {
      orr_log_warn("failed to check Prometheus flags, due to potentially older Prometheus. No "
                   "extra validation is done.", NULL);
    } else {
      orr_log_warn("failed to get Prometheus flags. Is Prometheus running? Retrying", "err",
                   result ? orr_strerror(result) : "bad answer", NULL);
      if (timed_out(sc)) {
        fail_start(sc, "fetch Prometheus flags: timed out");
        return;
      }
      retry_later(sc, 2000);
      return;
    }
  } else {
    int64_t a = 0, b = 0;
    orr_parse_duration(mn, strlen(mn), &a);
    orr_parse_duration(mx, strlen(mx), &b);
    if (a != b || strcmp(mn, mx) != 0) {
      char msg[512];
      snprintf(msg, sizeof(msg),
               "validate Prometheus flags: found that TSDB Max time is %s and Min time is %s. "
               "Compaction needs to be disabled (storage.tsdb.min-block-duration = "
               "storage.tsdb.max-block-duration)", mx, mn);
      fail_start(sc, msg);
      return;
    }
    if (a != 2 * 3600000)
      orr_log_warn("found that TSDB block time is not 2h. Only 2h block time is recommended.",
                   "block-time", mn, NULL);
  }
  sc->state = S_CONFIG;
  step(sc);
}

/* Whether Prometheus's config (the /api/v1/status/config answer, its YAML
 * in a JSON string) sets a non-zero tsdb out_of_order_time_window. */
static bool config_has_ooo(const orr_buf *body) {
  static const char key[] = "out_of_order_time_window:";
  if (!body->data) return false;
  const char *p = memmem(body->data, body->len, key, sizeof key - 1);
  if (!p) return false;
  p += sizeof key - 1;
  const char *end = body->data + body->len;
  while (p < end && *p == ' ') p++;
  size_t n = 0;
  while (p + n < end && p[n] != '\\' && p[n] != '"' && p[n] != ' ' && p[n] != '\n') n++;
  return !(n == 2 && memcmp(p, "0s", 2) == 0) && n > 0;
}

static int set_labels_from(sidecar *sc, orr_buf *body, char *err, size_t errlen) {
  orr_arena *a = orr_arena_new(4096);
  if (!a) return ORR_ENOMEM;
  labels_set ls;
  int rc = prom_parse_config(body->data ? body->data : "", body->len, a, &ls, err, errlen);
  if (rc) {
    orr_arena_destroy(a);
    return rc;
  }
  if (sc->blocks) sidecar_blocks_set_ooo(sc->blocks, config_has_ooo(body));
  if ((rc = prom_source_set_external_labels(sc->src, &ls)) != 0) {
    orr_arena_destroy(a);
    return rc;
  }
  orr_arena_destroy(sc->ext_arena);
  sc->ext_arena = a;
  sc->ext = ls;
  return 0;
}

static void got_config(void *owner, int result, int status, orr_buf *body, const char *err,
                       void *arg) {
  sidecar *sc = owner;
  char why[512] = "";
  int rc = result ? result : status != 200 ? ORR_EIO : set_labels_from(sc, body, why, sizeof(why));
  if (rc) {
    if (!why[0]) snprintf(why, sizeof(why), "%s (HTTP %d)", orr_strerror(rc), status);
    orr_log_warn("failed to fetch initial external labels. Is Prometheus running? Retrying", "err",
                 why, NULL);
    orr_gauge_set(sc->prom_up, 0);
    if (timed_out(sc)) {
      fail_start(sc, "initial external labels query: timed out");
      return;
    }
    retry_later(sc, 2000);
    return;
  }
  orr_gauge_set(sc->prom_up, 1);
  orr_gauge_set(sc->heartbeat, (double)orr_now_ms() / 1000.0);
  orr_buf lb = {0};
  labels_format(&sc->ext, &lb);
  orr_log_info("successfully loaded prometheus external labels", "external_labels",
               lb.data ? lb.data : "{}", NULL);
  orr_buf_free(&lb);
  if (sc->ext.n == 0) {
    fail_start(sc, "no external labels configured on Prometheus server, uniquely identifying "
                   "external labels must be configured; see "
                   "https://thanos.io/tip/thanos/storage.md#external-labels for details.");
    return;
  }
  sc->state = S_MINTIME;
  step(sc);
}

static void got_ready(void *owner, int result, int status, orr_buf *body, const char *err,
                      void *arg) {
  sidecar *sc = owner;
  if (result == 0 && status == 200) {
    orr_log_info("Prometheus is ready", "url", sc->url_log, NULL);
    /* As Thanos: with uploads, Prometheus's flags are checked first. */
    sc->state = sc->uploads ? S_FLAGS : S_CONFIG;
    step(sc);
    return;
  }
  if (timed_out(sc)) {
    char msg[640];
    char dur[48];
    snprintf(msg, sizeof(msg), "Prometheus at %s did not become ready within %s",
             sc->url_log, orr_format_duration(sc->cfg.ready_timeout_ms, dur, sizeof(dur)));
    fail_start(sc, msg);
    return;
  }
  char st[16];
  snprintf(st, sizeof(st), "%d", status);
  orr_log_info("waiting for Prometheus to be ready", "url", sc->url_log, "status",
               result ? "none" : st, "err", result ? (err && err[0] ? err : orr_strerror(result)) : "",
               NULL);
  retry_later(sc, sc->backoff_ms);
  sc->backoff_ms = sc->backoff_ms * 2 > 5000 ? 5000 : sc->backoff_ms * 2;
}

static void step(sidecar *sc) {
  if (sc->shutting_down) return;
  int rc = 0;
  switch (sc->state) {
  case S_WAIT_READY: rc = sc_get(sc, "/-/ready", 4096, 5000, got_ready, NULL); break;
  case S_CONFIG:
    rc = sc_get(sc, "/api/v1/status/config", 64u << 20, 5000, got_config, NULL);
    break;
  case S_FLAGS:
    rc = sc_get(sc, "/api/v1/status/flags", 1u << 20, 5000, got_flags, NULL);
    break;
  case S_MINTIME: rc = sc_get(sc, "/metrics", 64u << 20, 5000, got_metrics, NULL); break;
  case S_READY: refresh(sc); break;
  default: break;
  }
  if (rc) fail_start(sc, "cannot start an HTTP request to Prometheus");
}

/* ---------------------------------------------------------------- refresh */
static void refreshed_config(void *owner, int result, int status, orr_buf *body, const char *err,
                             void *arg) {
  sidecar *sc = owner;
  char why[512] = "";
  int rc = result ? result : status != 200 ? ORR_EIO : set_labels_from(sc, body, why, sizeof(why));
  if (rc) {
    orr_log_warn("heartbeat failed", "err", why[0] ? why : orr_strerror(rc), NULL);
    orr_gauge_set(sc->prom_up, 0);
  } else {
    orr_gauge_set(sc->prom_up, 1);
    orr_gauge_set(sc->heartbeat, (double)orr_now_ms() / 1000.0);
  }
}

static void refresh(sidecar *sc) {
  sc_get(sc, "/api/v1/status/config", 64u << 20, 5000, refreshed_config, NULL);
  sc_get(sc, "/metrics", 64u << 20, 5000, got_metrics, NULL);
  uv_timer_start(&sc->timer, on_timer, 30000, 0);
}

/* ---------------------------------------------------------------- shipper */
uv_loop_t *sidecar_loop(sidecar *sc) { return sc->loop; }
const sidecar_config *sidecar_cfg(const sidecar *sc) { return &sc->cfg; }
const labels_set *sidecar_external_labels(const sidecar *sc) { return &sc->ext; }
net_http_client *sidecar_http(sidecar *sc) { return sc->http; }
void **sidecar_shipper_slot(sidecar *sc) { return &sc->shipper; }
void sidecar_set_min_time(sidecar *sc, int64_t mint) {
  sc->min_time = mint < sc->limit_min_time ? sc->limit_min_time : mint;
  prom_source_set_min_time(sc->src, sc->min_time);
}

/* ---------------------------------------------------------------- main */
static void on_closed(void *arg) {
  sidecar *sc = arg;
  sc->pending_closes--;
}
static void on_timer_closed(uv_handle_t *h) { on_closed(h->data); }

/* The HTTP client outlives the gRPC server: Series calls in flight during
 * the grace period still read from Prometheus. The blocks' reader closes
 * between the two (its head calls use the client). */
static void close_http(void *arg) {
  sidecar *sc = arg;
  net_http_client_close(sc->http, on_closed, sc);
  sc->http = NULL;
}

static void on_grpc_closed(void *arg) {
  sidecar *sc = arg;
  sc->pending_closes--;
  if (sc->blocks)
    sidecar_blocks_close(sc->blocks, close_http, sc);
  else
    close_http(sc);
}

static void on_blocks_min_time(void *arg, int64_t mint) {
  sidecar *sc = arg;
  sc->blocks_min = mint;
  update_min_time(sc);
}

/* SIGHUP: a Prometheus reload often comes with ours (one ExecReload for
 * both), so ask Prometheus for its external labels and lowest timestamp now
 * rather than at the next 30 s refresh. The answer arrives later; a failure
 * is logged as a failed heartbeat. */
static int on_reload(daemon_ctx *d, void *arg, char *err, size_t errlen) {
  sidecar *sc = arg;
  (void)d;
  (void)err;
  (void)errlen;
  if (sc->state != S_READY || sc->shutting_down) return 0; /* start-up fetches them anyway */
  uv_timer_stop(&sc->timer);
  refresh(sc);
  return 0;
}

static void on_shutdown(daemon_ctx *d, void *arg) {
  sidecar *sc = arg;
  sc->shutting_down = true;
  sidecar_shipper_stop(sc);
  uv_timer_stop(&sc->timer);
  sc->pending_closes = 3;
  uv_close((uv_handle_t *)&sc->timer, on_timer_closed);
  orr_log_info("closing gRPC server", "grace_period_ms",
               ORR_LOG_INT(sc->state == S_READY ? sc->cfg.grpc_grace_ms : 0), NULL);
  net_grpc_server_close(sc->grpc, sc->state == S_READY ? sc->cfg.grpc_grace_ms : 0,
                        on_grpc_closed, sc);
  sc->grpc = NULL;
}

int sidecar_main(const sidecar_config *cfg) {
  sidecar *sc = calloc(1, sizeof(*sc));
  if (!sc) return 1;
  int status = 1;
  sc->cfg = *cfg;
  net_url_redacted(cfg->prometheus_url, sc->url_log, sizeof sc->url_log);
  sc->lowest_ts = INT64_MIN;
  sc->backoff_ms = 500;
  sc->uploads = cfg->bucket != NULL;
  if (orr_parse_time_flag(cfg->min_time, &sc->limit_min_time)) {
    orr_log_error("bad --min-time: want RFC3339 or a duration relative to now (-1d)", "value",
                  cfg->min_time, NULL);
    free(sc);
    return 1;
  }
  sc->min_time = sc->limit_min_time;
  orr_registry *reg = orr_registry_default();
  orr_metric *m = orr_counter_new(reg, "orrery_sidecar_remote_read_bytes_total",
                                  "Bytes of remote-read answers received from Prometheus.", NULL);
  orr_metric *up = orr_gauge_new(reg, "orrery_sidecar_prometheus_up",
                                 "Whether the last request to Prometheus's config succeeded.", NULL);
  orr_metric *hb = orr_gauge_new(reg, "orrery_sidecar_last_heartbeat_success_time_seconds",
                                 "Timestamp of the last successful heartbeat in seconds.", NULL);
  if (!m || !up || !hb) goto out;
  sc->rr_bytes = orr_metric_series(m);
  sc->prom_up = orr_metric_series(up);
  sc->heartbeat = orr_metric_series(hb);

  daemon_config dc = {"sidecar", cfg->http_address, cfg->http_grace_ms, NULL};
  if (daemon_new(&dc, &sc->d)) goto out;
  sc->loop = daemon_loop(sc->d);
  uv_timer_init(sc->loop, &sc->timer);
  sc->timer.data = sc;
  net_grpc_server_opts go = {0};
  go.registry = reg;
  go.write_timeout_ms = cfg->grpc_write_timeout_ms > 0 ? cfg->grpc_write_timeout_ms : -1;
  if (daemon_grpc_server_tls(sc->loop, cfg->grpc_tls_cert, cfg->grpc_tls_key,
                             cfg->grpc_tls_client_ca, cfg->grpc_tls_min_version, &go.tls)) {
    daemon_free(sc->d);
    goto out;
  }
  prom_source_opts po = {0};
  po.url = cfg->prometheus_url;
  po.component = "sidecar";
  po.rr_bytes = sc->rr_bytes;
  po.client = cfg->prometheus_client;
  if (net_http_client_new(sc->loop, NULL, &sc->http) == 0) {
    po.http = sc->http;
    if (prom_source_new(&po, &sc->src) == 0) prom_source_set_min_time(sc->src, sc->min_time);
  }
  storeapi_backend be = {0};
  bool blocks_failed = false;
  sc->blocks_min = INT64_MAX;
  if (sc->src) be = prom_source_backend(sc->src);
  if (sc->src && cfg->read_blocks && cfg->tsdb_path && cfg->tsdb_path[0]) {
    sidecar_blocks_metrics bm = {0};
    orr_metric *c1 = orr_counter_new(reg, "orrery_sidecar_block_series_calls_total",
                                     "Series calls answered (in part) from Prometheus's blocks, "
                                     "read from --tsdb.path.", NULL);
    orr_metric *c2 = orr_counter_new(reg, "orrery_sidecar_block_listings_total",
                                     "Listings of --tsdb.path that found a change.", NULL);
    orr_metric *g1 = orr_gauge_new(reg, "orrery_sidecar_blocks",
                                   "Prometheus blocks read from --tsdb.path (0: every Series "
                                   "call goes through remote read).", NULL);
    if (c1) bm.calls = orr_metric_series(c1);
    if (c2) bm.listings = orr_metric_series(c2);
    if (g1) bm.blocks = orr_metric_series(g1);
    if (sidecar_blocks_new(sc->loop, cfg->tsdb_path, sc->src, on_blocks_min_time, sc, &bm,
                           &sc->blocks) == 0)
      be = sidecar_blocks_backend(sc->blocks);
    else
      blocks_failed = true;
  }
  int grc = net_grpc_server_new(sc->loop, &go, &sc->grpc);
  net_tls_ctx_unref(go.tls); /* the server holds its own reference */
  if (!sc->http || !sc->src || blocks_failed || grc ||
      storeapi_server_new(sc->grpc, &be, reg, &sc->store) ||
      daemon_on_shutdown(sc->d, on_shutdown, sc) || daemon_on_reload(sc->d, on_reload, sc)) {
    orr_log_error("cannot set up the sidecar", NULL);
    daemon_free(sc->d);
    goto out;
  }
  sc->start_ns = orr_mono_ns();
  orr_log_info("waiting for Prometheus", "url", sc->url_log, NULL);
  step(sc);
  status = daemon_run(sc->d);
  /* Let the gRPC server's graceful close and the client close complete. */
  while (sc->pending_closes > 0 && uv_run(sc->loop, UV_RUN_ONCE)) {
  }
  if (sc->exit_code) status = sc->exit_code;
  daemon_free(sc->d);
  storeapi_server_free(sc->store);
out:
  sidecar_blocks_free(sc->blocks); /* closed with the gRPC server */
  prom_source_free(sc->src); /* every call ended */
  orr_arena_destroy(sc->ext_arena);
  free(sc);
  return status;
}
