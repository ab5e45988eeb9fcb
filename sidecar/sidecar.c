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
 * 2. Every StoreAPI call copies the external labels it needs into its arena,
 *    so a refresh may replace them at any time.
 * 3. A Series call pulls from one streaming source (remote read, or
 *    /api/v1/series parsed as it arrives for skip_chunks) and stops pulling
 *    when the service layer answers ORR_EAGAIN, until resume(): the sidecar
 *    never holds a whole response.
 * 4. Shutdown: the daemon drains HTTP, our hook closes gRPC gracefully (calls
 *    in flight get the grace period), then the HTTP client; we run the loop
 *    until they are closed. Nothing starts an HTTP request once shutting_down
 *    is set, except Series/label calls still in flight.
 * 5. A Series call holds one of the HTTP client's connections to Prometheus
 *    (16) for as long as its client is slow to read (note 3). So that one
 *    client (an IP address) cannot take them all, it may have at most
 *    CLIENT_SHARE Series calls reading from Prometheus; its further calls
 *    wait in its FIFO and start, in order, as its earlier ones end. A client
 *    that reads nothing is cut off by the gRPC server's write timeout, which
 *    ends its calls and so frees its share. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "sidecar_int.h"
#include "storeapi.h"

enum { S_WAIT_READY = 0, S_CONFIG, S_FLAGS, S_MINTIME, S_READY, S_STOPPED };

/* Note 5: half of the HTTP client's 16 connections per host. */
#define CLIENT_SHARE 8

typedef struct scall scall;
/* One client's Series calls reading from Prometheus, and those waiting. */
typedef struct client_share {
  struct client_share *next;
  int active;
  scall *wait_head, *wait_tail;
  char ip[64];
} client_share;

struct sidecar {
  sidecar_config cfg;
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
  client_share *clients; /* note 5 */
  orr_series *rr_bytes, *prom_up, *heartbeat;
  int pending_closes;
  bool shutting_down;
};

/* ---------------------------------------------------------------- HTTP GET */
typedef void (*get_fn)(sidecar *sc, int result, int status, orr_buf *body, const char *err,
                       void *arg);
typedef struct get_req {
  sidecar *sc;
  net_http_client_req *req;
  orr_buf body;
  get_fn cb;
  void *arg;
} get_req;

static void get_done(net_http_client_req *r, int result, void *arg) {
  get_req *g = arg;
  g->cb(g->sc, result, net_http_client_status(r), &g->body, net_http_client_error(r), g->arg);
  orr_buf_free(&g->body);
  free(g);
}

/* GET |pathq| (with its query) on Prometheus; |cb| runs once from the loop. */
static int prom_get(sidecar *sc, const char *pathq, size_t max, int64_t timeout_ms, get_fn cb,
                    void *arg, get_req **out) {
  get_req *g = calloc(1, sizeof(*g));
  if (!g) return ORR_ENOMEM;
  g->sc = sc;
  g->cb = cb;
  g->arg = arg;
  orr_buf url = {0};
  size_t bl = strlen(sc->cfg.prometheus_url);
  while (bl > 0 && sc->cfg.prometheus_url[bl - 1] == '/') bl--;
  orr_buf_append(&url, sc->cfg.prometheus_url, bl);
  orr_buf_puts(&url, pathq);
  int rc = url.oom ? ORR_ENOMEM : net_http_client_req_new(sc->http, "GET", url.data, &g->req);
  orr_buf_free(&url);
  if (rc) {
    free(g);
    return rc;
  }
  net_http_client_req_collect(g->req, &g->body, max);
  net_http_client_req_callbacks(g->req, NULL, NULL, get_done, g);
  if (timeout_ms > 0) net_http_client_req_timeouts(g->req, timeout_ms, 0);
  if (out) *out = g;
  net_http_client_start(g->req);
  return 0;
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
  if (m < sc->limit_min_time) m = sc->limit_min_time;
  sc->min_time = m;
}

static void got_metrics(sidecar *sc, int result, int status, orr_buf *body, const char *err,
                        void *arg) {
  int64_t ts;
  if (result == 0 && status == 200 && sidecar_parse_lowest_ts(body->data, body->len, &ts) == 0 &&
      ts < orr_now_ms() + 365LL * 86400000)
    sc->lowest_ts = ts;
  update_min_time(sc);
  if (sc->state == S_MINTIME) become_ready(sc);
}

static void got_flags(sidecar *sc, int result, int status, orr_buf *body, const char *err,
                      void *arg) {
  char mn[64], mx[64];
  if (result != 0 || status != 200 || sidecar_parse_flags(body->data, body->len, mn, mx, 64)) {
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

static int set_labels_from(sidecar *sc, orr_buf *body, char *err, size_t errlen) {
  orr_arena *a = orr_arena_new(4096);
  if (!a) return ORR_ENOMEM;
  labels_set ls;
  int rc = sidecar_parse_config(body->data ? body->data : "", body->len, a, &ls, err, errlen);
  if (rc) {
    orr_arena_destroy(a);
    return rc;
  }
  orr_arena_destroy(sc->ext_arena);
  sc->ext_arena = a;
  sc->ext = ls;
  return 0;
}

static void got_config(sidecar *sc, int result, int status, orr_buf *body, const char *err,
                       void *arg) {
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

static void got_ready(sidecar *sc, int result, int status, orr_buf *body, const char *err,
                      void *arg) {
  if (result == 0 && status == 200) {
    orr_log_info("Prometheus is ready", "url", sc->cfg.prometheus_url, NULL);
    /* As Thanos: with uploads, Prometheus's flags are checked first. */
    sc->state = sc->uploads ? S_FLAGS : S_CONFIG;
    step(sc);
    return;
  }
  if (timed_out(sc)) {
    char msg[256];
    char dur[48];
    snprintf(msg, sizeof(msg), "Prometheus at %s did not become ready within %s",
             sc->cfg.prometheus_url, orr_format_duration(sc->cfg.ready_timeout_ms, dur, sizeof(dur)));
    fail_start(sc, msg);
    return;
  }
  char st[16];
  snprintf(st, sizeof(st), "%d", status);
  orr_log_info("waiting for Prometheus to be ready", "url", sc->cfg.prometheus_url, "status",
               result ? "none" : st, "err", result ? (err && err[0] ? err : orr_strerror(result)) : "",
               NULL);
  retry_later(sc, sc->backoff_ms);
  sc->backoff_ms = sc->backoff_ms * 2 > 5000 ? 5000 : sc->backoff_ms * 2;
}

static void step(sidecar *sc) {
  if (sc->shutting_down) return;
  int rc = 0;
  switch (sc->state) {
  case S_WAIT_READY: rc = prom_get(sc, "/-/ready", 4096, 5000, got_ready, NULL, NULL); break;
  case S_CONFIG:
    rc = prom_get(sc, "/api/v1/status/config", 64u << 20, 5000, got_config, NULL, NULL);
    break;
  case S_FLAGS:
    rc = prom_get(sc, "/api/v1/status/flags", 1u << 20, 5000, got_flags, NULL, NULL);
    break;
  case S_MINTIME: rc = prom_get(sc, "/metrics", 64u << 20, 5000, got_metrics, NULL, NULL); break;
  case S_READY: refresh(sc); break;
  default: break;
  }
  if (rc) fail_start(sc, "cannot start an HTTP request to Prometheus");
}

/* ---------------------------------------------------------------- refresh */
static void refreshed_config(sidecar *sc, int result, int status, orr_buf *body, const char *err,
                             void *arg) {
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
  prom_get(sc, "/api/v1/status/config", 64u << 20, 5000, refreshed_config, NULL, NULL);
  prom_get(sc, "/metrics", 64u << 20, 5000, got_metrics, NULL, NULL);
  uv_timer_start(&sc->timer, on_timer, 30000, 0);
}

/* ---------------------------------------------------------------- calls */
enum { K_SERIES_RR = 1, K_SERIES_JSON, K_LABELS };

struct scall {
  sidecar *sc;
  storeapi_call *c;
  int kind;
  storeapi_rr *rr;
  get_req *get;
  orr_arena *tmp; /* per series message */
  labels_set ext;
  char *const *drop;
  size_t ndrop;
  net_http_client_req *sreq; /* K_SERIES_JSON: the /api/v1/series request */
  sidecar_series_json sj;
  bool sj_init;
  int http_status;
  orr_buf errbody;
  json_t *json; /* label answers */
  bool blocked;
  int64_t limit, sent; /* SeriesRequest.limit (0: none) and series sent */
  bool limited;        /* stopped at the limit: the call ends OK */
  const char *label; /* LabelValues */
  bool names;
  /* Series, note 5: the request to start (kept while it waits) and the
   * client's share it holds a place in or waits for. */
  storeapi_rr_opts rr_opts;
  char *sj_pathq;
  client_share *share;
  bool holds_share, waiting;
  scall *wait_next;
};

static scall *scall_new(sidecar *sc, storeapi_call *c, int kind) {
  orr_arena *a = storeapi_call_arena(c);
  scall *s = orr_arena_calloc(a, 1, sizeof(*s));
  if (!s || labels_copy(a, &sc->ext, &s->ext)) return NULL;
  s->sc = sc;
  s->c = c;
  s->kind = kind;
  storeapi_call_set_data(c, s);
  return s;
}

static void share_release_slot(sidecar *sc, client_share *sh);

static void scall_finish(scall *s, int status, const char *msg) {
  client_share *share = s->holds_share ? s->share : NULL;
  if (share) {
    s->holds_share = false;
    share->active--;
  }
  orr_arena_destroy(s->tmp);
  s->tmp = NULL;
  if (s->json) json_decref(s->json);
  s->json = NULL;
  if (s->sj_init) sidecar_series_json_free(&s->sj);
  s->sj_init = false;
  orr_buf_free(&s->errbody);
  sidecar *sc = s->sc;
  storeapi_call_finish(s->c, status, msg); /* |s| may be gone */
  if (share) share_release_slot(sc, share);
}

static void be_info(void *arg, storeapi_call *c) {
  sidecar *sc = arg;
  orr_arena *a = storeapi_call_arena(c);
  Thanos__Info__InfoResponse *r = orr_arena_calloc(a, 1, sizeof(*r));
  Thanos__LabelSet *ls = orr_arena_calloc(a, 1, sizeof(*ls));
  Thanos__Info__StoreInfo *st = orr_arena_calloc(a, 1, sizeof(*st));
  Thanos__Info__TSDBInfo *ti = orr_arena_calloc(a, 1, sizeof(*ti));
  Thanos__LabelSet **lsp = orr_arena_calloc(a, 1, sizeof(*lsp));
  Thanos__Info__TSDBInfo **tip = orr_arena_calloc(a, 1, sizeof(*tip));
  labels_set ext;
  if (!r || !ls || !st || !ti || !lsp || !tip || labels_copy(a, &sc->ext, &ext)) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  thanos__info__info_response__init(r);
  thanos__label_set__init(ls);
  thanos__info__store_info__init(st);
  thanos__info__tsdbinfo__init(ti);
  if (storeapi_labels_to_proto(&ext, a, &ls->labels)) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  ls->n_labels = ext.n;
  lsp[0] = ls;
  r->label_sets = lsp;
  r->n_label_sets = 1;
  r->componenttype = "sidecar";
  st->min_time = sc->min_time;
  st->max_time = INT64_MAX;
  st->supports_without_replica_labels = 1;
  ti->labels = ls;
  ti->min_time = sc->min_time;
  ti->max_time = INT64_MAX;
  tip[0] = ti;
  st->tsdb_infos = tip;
  st->n_tsdb_infos = 1;
  r->store = st;
  storeapi_call_reply_info(c, r);
}

/* Thanos's matchesExternalLabels: a matcher on an external label is decided
 * here; the others go to Prometheus. Returns false when one does not match. */
static bool split_ext_matchers(const labels_set *ext, labels_matcher **ms, size_t n, orr_arena *a,
                               labels_matcher ***rest, size_t *nrest) {
  labels_matcher **r = orr_arena_calloc(a, n ? n : 1, sizeof(*r));
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *v = labels_get(ext, labels_matcher_name(ms[i]));
    if (!v) {
      if (r) r[k++] = ms[i];
      continue;
    }
    if (!labels_matcher_matches(ms[i], v, strlen(v))) return false;
  }
  *rest = r;
  *nrest = r ? k : 0;
  return true;
}

/* ---- skip_chunks: /api/v1/series, parsed as it streams in */
static int sj_emit(const labels_set *ls, void *arg) {
  scall *s = arg;
  if (s->limit > 0 && s->sent >= s->limit) {
    s->limited = true;
    return ORR_ELIMIT; /* stops the transfer; sj_done ends the call OK */
  }
  orr_arena_reset(s->tmp);
  labels_set sl = *ls, out;
  Thanos__Series ser = THANOS__SERIES__INIT;
  if (labels_sort(&sl) || storeapi_labels_extend(&sl, &s->ext, s->drop, s->ndrop, s->tmp, &out) ||
      storeapi_labels_to_proto(&out, s->tmp, &ser.labels))
    return ORR_ECORRUPT;
  ser.n_labels = out.n;
  int rc = storeapi_call_send_series(s->c, &ser);
  s->sent++;
  if (rc == ORR_EAGAIN) {
    s->blocked = true; /* the rest of this piece is queued; later ones wait */
    return 0;
  }
  return rc;
}

static int sj_headers(net_http_client_req *r, int status, void *arg) {
  scall *s = arg;
  s->http_status = status;
  return 0;
}

static int sj_body(net_http_client_req *r, const char *data, size_t n, void *arg) {
  scall *s = arg;
  if (s->http_status != 200) {
    size_t room = s->errbody.len < 400 ? 400 - s->errbody.len : 0;
    orr_buf_append(&s->errbody, data, n < room ? n : room);
    return 0;
  }
  if (s->blocked) return NET_HTTP_CLIENT_PAUSE;
  return sidecar_series_json_feed(&s->sj, data, n);
}

static void sj_done(net_http_client_req *r, int result, void *arg) {
  scall *s = arg;
  s->sreq = NULL;
  char msg[600];
  if (storeapi_call_cancelled(s->c) || result == ORR_ECANCELED) {
    scall_finish(s, NET_GRPC_CANCELLED, "cancelled");
  } else if (s->limited) {
    scall_finish(s, NET_GRPC_OK, NULL);
  } else if (result) {
    snprintf(msg, sizeof(msg), "series request to Prometheus failed: %s %s", orr_strerror(result),
             net_http_client_error(r));
    scall_finish(s, NET_GRPC_UNKNOWN, msg);
  } else if (s->http_status != 200) {
    snprintf(msg, sizeof(msg), "series request to Prometheus failed with code %d; msg %.*s",
             s->http_status, (int)s->errbody.len, s->errbody.data ? s->errbody.data : "");
    scall_finish(s, NET_GRPC_UNKNOWN, msg);
  } else if (sidecar_series_json_end(&s->sj)) {
    scall_finish(s, NET_GRPC_UNKNOWN, "series request to Prometheus: unexpected answer");
  } else {
    scall_finish(s, NET_GRPC_OK, NULL);
  }
}

static int sj_start(sidecar *sc, scall *s, const char *pathq) {
  orr_buf url = {0};
  size_t bl = strlen(sc->cfg.prometheus_url);
  while (bl > 0 && sc->cfg.prometheus_url[bl - 1] == '/') bl--;
  orr_buf_append(&url, sc->cfg.prometheus_url, bl);
  orr_buf_puts(&url, pathq);
  int rc = url.oom ? ORR_ENOMEM : net_http_client_req_new(sc->http, "GET", url.data, &s->sreq);
  orr_buf_free(&url);
  if (rc) return rc;
  sidecar_series_json_init(&s->sj, sj_emit, s);
  s->sj_init = true;
  net_http_client_req_callbacks(s->sreq, sj_headers, sj_body, sj_done, s);
  net_http_client_start(s->sreq);
  return 0;
}

static int rr_series(const Prometheus__ChunkedSeries *cs, void *arg) {
  scall *s = arg;
  orr_arena_reset(s->tmp);
  Thanos__Series ser;
  int rc = storeapi_series_from_chunked(cs, &s->ext, s->drop, s->ndrop, s->tmp, &ser);
  if (rc) return rc;
  if (s->limit > 0 && s->sent >= s->limit) {
    s->limited = true;
    return ORR_ELIMIT; /* stops the transfer; rr_done ends the call OK */
  }
  rc = storeapi_call_send_series(s->c, &ser);
  s->sent++;
  if (rc == ORR_EAGAIN) {
    s->blocked = true;
    return NET_HTTP_CLIENT_PAUSE;
  }
  return rc;
}

static void rr_done(int result, const char *message, void *arg) {
  scall *s = arg;
  s->rr = NULL;
  if (storeapi_call_cancelled(s->c) || result == ORR_ECANCELED) {
    scall_finish(s, NET_GRPC_CANCELLED, "cancelled");
  } else if (result && !s->limited) {
    char msg[700];
    snprintf(msg, sizeof(msg), "query Prometheus: %s", message);
    scall_finish(s, NET_GRPC_UNKNOWN, msg);
  } else {
    scall_finish(s, NET_GRPC_OK, NULL);
  }
}

static int add_range_params(orr_buf *q, int64_t start, int64_t end) {
  if (start == 0 && end == 0) return 0;
  /* Clamp to what Prometheus can parse (its API takes about ±292 years). */
  const int64_t lo = -9223372036854LL, hi = 9223372036854LL;
  if (start < lo) start = lo;
  if (end > hi) end = hi;
  return orr_buf_printf(q, "&start=%" PRId64 ".%03d&end=%" PRId64 ".%03d",
                        start / 1000 - (start % 1000 < 0), (int)(((start % 1000) + 1000) % 1000),
                        end / 1000 - (end % 1000 < 0), (int)(((end % 1000) + 1000) % 1000));
}

static int add_match_param(orr_buf *q, labels_matcher **ms, size_t n) {
  if (n == 0) return 0;
  orr_buf sel = {0};
  orr_buf_putc(&sel, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) orr_buf_putc(&sel, ',');
    labels_matcher_format(ms[i], &sel);
  }
  orr_buf_putc(&sel, '}');
  orr_buf_puts(q, "&match[]=");
  int rc = sel.oom ? ORR_ENOMEM : sidecar_url_escape(q, sel.data);
  orr_buf_free(&sel);
  return rc;
}

/* ---- note 5: each client's share of the connections to Prometheus */
static client_share *share_get(sidecar *sc, const char *ip) {
  for (client_share *sh = sc->clients; sh; sh = sh->next)
    if (strcmp(sh->ip, ip) == 0) return sh;
  client_share *sh = calloc(1, sizeof(*sh));
  if (!sh) return NULL;
  snprintf(sh->ip, sizeof(sh->ip), "%s", ip);
  sh->next = sc->clients;
  sc->clients = sh;
  return sh;
}

static void share_maybe_free(sidecar *sc, client_share *sh) {
  if (sh->active > 0 || sh->wait_head) return;
  for (client_share **p = &sc->clients; *p; p = &(*p)->next)
    if (*p == sh) {
      *p = sh->next;
      break;
    }
  free(sh);
}

static int series_start(scall *s) {
  if (s->kind == K_SERIES_JSON) return sj_start(s->sc, s, s->sj_pathq);
  return storeapi_rr_start(s->sc->http, &s->rr_opts, &s->rr);
}

/* A place in |sh| was given back: its next waiting calls start. */
static void share_release_slot(sidecar *sc, client_share *sh) {
  while (sh->wait_head && sh->active < CLIENT_SHARE) {
    scall *w = sh->wait_head;
    sh->wait_head = w->wait_next;
    if (!sh->wait_head) sh->wait_tail = NULL;
    w->wait_next = NULL;
    w->waiting = false;
    w->holds_share = true;
    sh->active++;
    int rc = series_start(w);
    if (rc) {
      /* give the place back here, not through scall_finish (no recursion) */
      w->holds_share = false;
      sh->active--;
      scall_finish(w, NET_GRPC_INTERNAL, orr_strerror(rc));
    }
  }
  share_maybe_free(sc, sh);
}

/* Starts |s| now, or queues it behind its client's earlier calls. */
static void series_admit(sidecar *sc, scall *s) {
  client_share *sh = share_get(sc, storeapi_call_peer(s->c));
  if (!sh) {
    scall_finish(s, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  s->share = sh;
  if (sh->active >= CLIENT_SHARE) {
    orr_log_debug("client at its share of Prometheus connections; Series call waits", "peer",
                  sh->ip, "active", ORR_LOG_INT(sh->active), NULL);
    s->waiting = true;
    if (sh->wait_tail)
      sh->wait_tail->wait_next = s;
    else
      sh->wait_head = s;
    sh->wait_tail = s;
    return;
  }
  sh->active++;
  s->holds_share = true;
  int rc = series_start(s);
  if (rc) scall_finish(s, NET_GRPC_INTERNAL, orr_strerror(rc));
}

/* A waiting call was cancelled: it leaves the queue. */
static void share_unwait(sidecar *sc, scall *s) {
  client_share *sh = s->share;
  scall *prev = NULL;
  for (scall *w = sh->wait_head; w; prev = w, w = w->wait_next) {
    if (w != s) continue;
    if (prev)
      prev->wait_next = w->wait_next;
    else
      sh->wait_head = w->wait_next;
    if (sh->wait_tail == w) sh->wait_tail = prev;
    break;
  }
  s->waiting = false;
  s->wait_next = NULL;
  scall_finish(s, NET_GRPC_CANCELLED, "cancelled");
  share_maybe_free(sc, sh);
}

static void be_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  sidecar *sc = arg;
  scall *s = scall_new(sc, c, K_SERIES_RR);
  if (!s) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  labels_matcher **ms;
  size_t nms;
  if (!split_ext_matchers(&s->ext, req->matchers, req->nmatchers, storeapi_call_arena(c), &ms,
                          &nms)) {
    storeapi_call_finish(c, NET_GRPC_OK, NULL);
    return;
  }
  if (nms == 0) {
    storeapi_call_finish(c, NET_GRPC_INVALID_ARGUMENT,
                         "no matchers specified (excluding external labels)");
    return;
  }
  s->limit = req->msg->limit;
  s->drop = req->msg->without_replica_labels;
  s->ndrop = req->msg->n_without_replica_labels;
  s->tmp = orr_arena_new(0);
  if (!s->tmp) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  int64_t mint = req->msg->min_time, maxt = req->msg->max_time;
  if (mint < sc->min_time) mint = sc->min_time;
  if (req->msg->skip_chunks) {
    s->kind = K_SERIES_JSON;
    orr_buf q = {0};
    orr_buf_puts(&q, "/api/v1/series?");
    add_match_param(&q, ms, nms);
    add_range_params(&q, mint, maxt);
    s->sj_pathq = q.oom ? NULL : orr_arena_strdup(storeapi_call_arena(c), q.data);
    orr_buf_free(&q);
    if (!s->sj_pathq) {
      scall_finish(s, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
  } else {
    storeapi_rr_opts o = {0};
    o.base_url = sc->cfg.prometheus_url;
    o.mint = mint;
    o.maxt = maxt;
    o.matchers = ms;
    o.nmatchers = nms;
    o.on_series = rr_series;
    o.on_done = rr_done;
    o.arg = s;
    o.bytes_counter = sc->rr_bytes;
    s->rr_opts = o;
  }
  series_admit(sc, s);
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void got_labels(sidecar *sc, int result, int status, orr_buf *body, const char *err,
                       void *arg) {
  scall *s = arg;
  s->get = NULL;
  if (storeapi_call_cancelled(s->c)) {
    scall_finish(s, NET_GRPC_CANCELLED, "cancelled");
    return;
  }
  char msg[512];
  if (result || status != 200) {
    snprintf(msg, sizeof(msg), "label request to Prometheus failed: %s (HTTP %d) %.200s",
             result ? orr_strerror(result) : "bad status", status,
             body->data && !result ? body->data : "");
    scall_finish(s, NET_GRPC_UNKNOWN, msg);
    return;
  }
  json_t *j = json_loadb(body->data, body->len, 0, NULL);
  json_t *d = j ? json_object_get(j, "data") : NULL;
  if (!json_is_array(d)) {
    json_decref(j);
    scall_finish(s, NET_GRPC_UNKNOWN, "label request to Prometheus: unexpected answer");
    return;
  }
  s->json = j;
  orr_arena *a = storeapi_call_arena(s->c);
  size_t n = json_array_size(d);
  char **v = orr_arena_calloc(a, n + s->ext.n + 1, sizeof(char *));
  if (!v) {
    scall_finish(s, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *x = json_string_value(json_array_get(d, i));
    if (!x) continue;
    bool drop = false;
    for (size_t w = 0; s->names && w < s->ndrop; w++) drop |= strcmp(x, s->drop[w]) == 0;
    if (!drop) v[k++] = (char *)x;
  }
  if (s->names) {
    for (size_t i = 0; i < s->ext.n; i++) {
      bool drop = false;
      for (size_t w = 0; w < s->ndrop; w++) drop |= strcmp(s->ext.v[i].name, s->drop[w]) == 0;
      if (!drop) v[k++] = (char *)s->ext.v[i].name;
    }
  }
  qsort(v, k, sizeof(char *), str_cmp);
  size_t u = 0;
  for (size_t i = 0; i < k; i++)
    if (u == 0 || strcmp(v[u - 1], v[i]) != 0) v[u++] = v[i];
  if (s->limit > 0 && (int64_t)u > s->limit) u = (size_t)s->limit;
  if (s->names) {
    Thanos__LabelNamesResponse r = THANOS__LABEL_NAMES_RESPONSE__INIT;
    r.names = v;
    r.n_names = u;
    storeapi_call_reply_label_names(s->c, &r);
  } else {
    Thanos__LabelValuesResponse r = THANOS__LABEL_VALUES_RESPONSE__INIT;
    r.values = v;
    r.n_values = u;
    storeapi_call_reply_label_values(s->c, &r);
  }
  json_decref(j);
}

static void be_labels(sidecar *sc, storeapi_call *c, const storeapi_label_req *req, bool names) {
  scall *s = scall_new(sc, c, K_LABELS);
  if (!s) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  s->names = names;
  s->limit = req->limit;
  s->drop = req->without_replica_labels;
  s->ndrop = req->nwithout;
  labels_matcher **ms;
  size_t nms;
  bool match = split_ext_matchers(&s->ext, req->matchers, req->nmatchers, storeapi_call_arena(c),
                                  &ms, &nms);
  if (!names) {
    const char *ev = labels_get(&s->ext, req->label);
    Thanos__LabelValuesResponse r = THANOS__LABEL_VALUES_RESPONSE__INIT;
    char *vals[1] = {(char *)ev};
    if (ev && match) {
      r.values = vals;
      r.n_values = 1;
    }
    if (ev || !match) {
      storeapi_call_reply_label_values(c, &r);
      return;
    }
    if (!labels_valid_name(req->label, strlen(req->label))) {
      storeapi_call_finish(c, NET_GRPC_INVALID_ARGUMENT, "invalid label name");
      return;
    }
  } else if (!match) {
    Thanos__LabelNamesResponse r = THANOS__LABEL_NAMES_RESPONSE__INIT;
    storeapi_call_reply_label_names(c, &r);
    return;
  }
  orr_buf q = {0};
  if (names)
    orr_buf_puts(&q, "/api/v1/labels?");
  else
    orr_buf_printf(&q, "/api/v1/label/%s/values?", req->label);
  add_match_param(&q, ms, nms);
  add_range_params(&q, req->start, req->end);
  int rc = q.oom ? ORR_ENOMEM : prom_get(sc, q.data, 256u << 20, 0, got_labels, s, &s->get);
  orr_buf_free(&q);
  if (rc) scall_finish(s, NET_GRPC_INTERNAL, orr_strerror(rc));
}

static void be_label_names(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  be_labels(arg, c, req, true);
}
static void be_label_values(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  be_labels(arg, c, req, false);
}

static void be_cancel(void *arg, storeapi_call *c) {
  scall *s = storeapi_call_data(c);
  if (!s) return; /* calls without state finished synchronously */
  if (s->waiting) {
    share_unwait(arg, s);
  } else if (s->rr) {
    storeapi_rr_cancel(s->rr); /* rr_done finishes */
  } else if (s->sreq) {
    net_http_client_cancel(s->sreq); /* sj_done finishes */
  } else if (s->get) {
    net_http_client_cancel(s->get->req); /* the GET callback finishes */
  }
}

static void be_resume(void *arg, storeapi_call *c) {
  scall *s = storeapi_call_data(c);
  if (!s || !s->blocked) return;
  s->blocked = false;
  if (s->rr)
    storeapi_rr_resume(s->rr);
  else if (s->sreq)
    net_http_client_resume(s->sreq);
}

/* ---------------------------------------------------------------- shipper */
uv_loop_t *sidecar_loop(sidecar *sc) { return sc->loop; }
const sidecar_config *sidecar_cfg(const sidecar *sc) { return &sc->cfg; }
const labels_set *sidecar_external_labels(const sidecar *sc) { return &sc->ext; }
net_http_client *sidecar_http(sidecar *sc) { return sc->http; }
void **sidecar_shipper_slot(sidecar *sc) { return &sc->shipper; }
void sidecar_set_min_time(sidecar *sc, int64_t mint) {
  sc->min_time = mint < sc->limit_min_time ? sc->limit_min_time : mint;
}

/* ---------------------------------------------------------------- main */
static int parse_min_time(const char *s, int64_t *out) {
  int64_t d;
  if (s[0] == '-' && orr_parse_duration(s + 1, strlen(s + 1), &d) == 0) {
    *out = orr_now_ms() - d;
    return 0;
  }
  if (orr_parse_duration(s, strlen(s), &d) == 0) {
    *out = orr_now_ms() + d;
    return 0;
  }
  if (strcmp(s, "0000-01-01T00:00:00Z") == 0) { /* Thanos's default: year 0 */
    *out = -62167219200000LL;
    return 0;
  }
  return orr_parse_time(s, out);
}

static void on_closed(void *arg) {
  sidecar *sc = arg;
  sc->pending_closes--;
}
static void on_timer_closed(uv_handle_t *h) { on_closed(h->data); }

/* The HTTP client outlives the gRPC server: Series calls in flight during
 * the grace period still read from Prometheus. */
static void on_grpc_closed(void *arg) {
  sidecar *sc = arg;
  sc->pending_closes--;
  net_http_client_close(sc->http, on_closed, sc);
  sc->http = NULL;
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
  sc->lowest_ts = INT64_MIN;
  sc->backoff_ms = 500;
  sc->uploads = cfg->bucket != NULL;
  if (parse_min_time(cfg->min_time, &sc->limit_min_time)) {
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
  storeapi_backend be = {be_info, be_series, be_label_names, be_label_values,
                         be_cancel, be_resume, sc};
  if (daemon_grpc_server_tls(sc->loop, cfg->grpc_tls_cert, cfg->grpc_tls_key,
                             cfg->grpc_tls_client_ca, cfg->grpc_tls_min_version, &go.tls)) {
    daemon_free(sc->d);
    goto out;
  }
  int grc = net_grpc_server_new(sc->loop, &go, &sc->grpc);
  net_tls_ctx_unref(go.tls); /* the server holds its own reference */
  if (net_http_client_new(sc->loop, NULL, &sc->http) || grc ||
      storeapi_server_new(sc->grpc, &be, reg, &sc->store) ||
      daemon_on_shutdown(sc->d, on_shutdown, sc) || daemon_on_reload(sc->d, on_reload, sc)) {
    orr_log_error("cannot set up the sidecar", NULL);
    daemon_free(sc->d);
    goto out;
  }
  sc->start_ns = orr_mono_ns();
  orr_log_info("waiting for Prometheus", "url", cfg->prometheus_url, NULL);
  step(sc);
  status = daemon_run(sc->d);
  /* Let the gRPC server's graceful close and the client close complete. */
  while (sc->pending_closes > 0 && uv_run(sc->loop, UV_RUN_ONCE)) {
  }
  if (sc->exit_code) status = sc->exit_code;
  daemon_free(sc->d);
  storeapi_server_free(sc->store);
out:
  while (sc->clients) { /* every call ended: the shares are empty */
    client_share *n = sc->clients->next;
    free(sc->clients);
    sc->clients = n;
  }
  orr_arena_destroy(sc->ext_arena);
  free(sc);
  return status;
}
