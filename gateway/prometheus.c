/* prometheus.c: --endpoint.prometheus — a plain Prometheus read by the
 * gateway itself, with no sidecar beside it: lib/prom's prom_source (remote
 * read, chunks passed through) behind the endpoint's local client, its
 * external labels and time range kept up to date here.
 *
 * Spec: URL[;name=value,...]. With labels after ';' they are the source's
 * external labels; without, the server's own (global.external_labels of
 * /api/v1/status/config). The time range starts at the server's
 * prometheus_tsdb_lowest_timestamp (/metrics), as Thanos's sidecar does.
 *
 * Design notes
 * 1. States: CONNECTING (no good answer yet) → UP (the config answered and
 *    parsed) ⇄ DOWN (a later refresh failed). Info answers only in UP;
 *    otherwise UNAVAILABLE with the last error ("GET .../api/v1/status/config:
 *    HTTP 404", "... not a Prometheus answer: ..."), which the endpoint table
 *    shows in /api/v1/stores while the other endpoints keep serving.
 * 2. The refresh asks the config and /metrics (5 s timeout each) every
 *    gw_config.source_refresh_ms when UP, every second otherwise.
 * 3. Close: the timer stops and closes, GETs in flight are cancelled; the
 *    source is freed once the timer closed and the last GET came back (no
 *    StoreAPI call is in flight: the local client closed first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "prom.h"

#define RETRY_MS 1000
#define GET_TIMEOUT_MS 5000

typedef struct gw_prom {
  gw__source base;
  prom_source *ps;
  storeapi_backend inner;
  char *url;
  char *shown; /* url with its password masked: messages and metric labels */
  orr_arena *flag_arena; /* labels given on the flag */
  labels_set flag_ext;
  bool have_flag_ext;
  uv_timer_t timer;
  bool up;
  char last_error[600];
  int inflight; /* GETs */
  prom_get_req *gets[2];
  bool closing, timer_closed;
  void (*done)(void *arg);
  void *done_arg;
} gw_prom;

/* ---------------------------------------------------------------- spec */
/* Splits |spec| into the URL and the labels after ';' (into |a|).
 * Returns 0 or ORR_EINVAL with the reason in |err|. */
static int parse_spec(const char *spec, orr_arena *a, char **url, labels_set *ls, bool *have,
                      char *err, size_t errlen) {
  size_t ul = strcspn(spec, ";");
  if (strncmp(spec, "http://", 7) != 0 && strncmp(spec, "https://", 8) != 0) {
    snprintf(err, errlen, "want an http:// or https:// URL, got \"%.*s\"", (int)ul, spec);
    return ORR_EINVAL;
  }
  const char *host = spec + (spec[4] == 's' ? 8 : 7);
  if ((size_t)(host - spec) >= ul || *host == '/' || *host == ';') {
    snprintf(err, errlen, "URL \"%.*s\" has no host", (int)ul, spec);
    return ORR_EINVAL;
  }
  if (url && !(*url = orr_arena_strndup(a, spec, ul))) return ORR_ENOMEM;
  *have = spec[ul] == ';';
  ls->v = NULL;
  ls->n = 0;
  if (!*have) return 0;
  const char *p = spec + ul + 1;
  size_t cap = 1;
  for (const char *q = p; *q; q++) cap += *q == ',';
  labels_label *v = orr_arena_calloc(a, cap, sizeof(*v));
  if (!v) return ORR_ENOMEM;
  size_t n = 0;
  while (*p) {
    size_t pl = strcspn(p, ",");
    const char *eq = memchr(p, '=', pl);
    if (!eq || eq == p || !labels_valid_name(p, (size_t)(eq - p))) {
      snprintf(err, errlen, "external labels: want name=value[,name=value...], got \"%.*s\"",
               (int)pl, p);
      return ORR_EINVAL;
    }
    v[n].name = orr_arena_strndup(a, p, (size_t)(eq - p));
    v[n].value = orr_arena_strndup(a, eq + 1, pl - (size_t)(eq - p) - 1);
    if (!v[n].name || !v[n].value) return ORR_ENOMEM;
    n++;
    p += pl;
    if (*p == ',') p++;
  }
  ls->v = v;
  ls->n = n;
  if (labels_sort(ls)) {
    snprintf(err, errlen, "external labels: a label name appears twice");
    return ORR_EINVAL;
  }
  return 0;
}

int gw__source_spec_labels(const char *spec, orr_arena *a, char **url, labels_set *ls,
                           bool *have, char *err, size_t errlen) {
  return parse_spec(spec, a, url, ls, have, err, errlen);
}

static int check(const char *spec, char *err, size_t errlen) {
  orr_arena *a = orr_arena_new(256);
  if (!a) return ORR_ENOMEM;
  labels_set ls;
  bool have;
  int rc = parse_spec(spec, a, NULL, &ls, &have, err, errlen);
  orr_arena_destroy(a);
  return rc;
}

/* ---------------------------------------------------------------- refresh */
static void refresh(gw_prom *p);
static void on_timer(uv_timer_t *t) { refresh(t->data); }

static void maybe_freed(gw_prom *p) {
  if (!p->closing || !p->timer_closed || p->inflight > 0) return;
  void (*done)(void *) = p->done;
  void *arg = p->done_arg;
  prom_source_free(p->ps);
  orr_arena_destroy(p->flag_arena);
  free(p->url);
  free(p->shown);
  free(p);
  if (done) done(arg);
}

static void set_down(gw_prom *p, const char *why) {
  if (p->up) orr_log_warn("Prometheus source down", "url", p->shown, "err", why, NULL);
  p->up = false;
  snprintf(p->last_error, sizeof(p->last_error), "%s", why);
}

static void got_config(void *owner, int result, int status, orr_buf *body, const char *err,
                       void *arg) {
  gw_prom *p = owner;
  (void)arg;
  p->gets[0] = NULL;
  p->inflight--;
  if (p->closing) {
    maybe_freed(p);
    return;
  }
  char why[600];
  if (result) {
    snprintf(why, sizeof(why), "GET %s/api/v1/status/config: %s%s%s", p->shown,
             orr_strerror(result), err && err[0] ? ": " : "", err ? err : "");
    set_down(p, why);
    return;
  }
  if (status != 200) {
    snprintf(why, sizeof(why), "GET %s/api/v1/status/config: HTTP %d (not a Prometheus?)", p->shown,
             status);
    set_down(p, why);
    return;
  }
  orr_arena *a = orr_arena_new(1024);
  labels_set ls;
  char perr[400] = "";
  int rc = a ? prom_parse_config(body->data ? body->data : "", body->len, a, &ls, perr,
                                 sizeof(perr))
             : ORR_ENOMEM;
  if (rc == 0) rc = prom_source_set_external_labels(p->ps, p->have_flag_ext ? &p->flag_ext : &ls);
  orr_arena_destroy(a);
  if (rc) {
    snprintf(why, sizeof(why), "GET %s/api/v1/status/config: not a Prometheus answer: %s",
             p->shown, perr[0] ? perr : orr_strerror(rc));
    set_down(p, why);
    return;
  }
  if (!p->up) {
    orr_buf lb = {0};
    labels_format(prom_source_external_labels(p->ps), &lb);
    orr_log_info("Prometheus source up", "url", p->shown, "external_labels",
                 lb.data ? lb.data : "{}", NULL);
    orr_buf_free(&lb);
  }
  p->up = true;
  p->last_error[0] = 0;
}

static void got_metrics(void *owner, int result, int status, orr_buf *body, const char *err,
                        void *arg) {
  gw_prom *p = owner;
  (void)arg;
  (void)err;
  p->gets[1] = NULL;
  p->inflight--;
  if (p->closing) {
    maybe_freed(p);
    return;
  }
  int64_t ts;
  if (result == 0 && status == 200 &&
      prom_parse_lowest_ts(body->data ? body->data : "", body->len, &ts) == 0 &&
      ts < orr_now_ms() + 365LL * 86400000)
    prom_source_set_min_time(p->ps, ts);
}

static void refresh(gw_prom *p) {
  if (p->closing) return;
  const net_http_client_config *hc = gw__config(p->base.g)->http_client;
  if (!p->gets[0] && prom_get_auth(gw__http(p->base.g), hc, p->url, "/api/v1/status/config",
                                   16u << 20, GET_TIMEOUT_MS, got_config, p, NULL,
                                   &p->gets[0]) == 0)
    p->inflight++;
  if (!p->gets[1] && prom_get_auth(gw__http(p->base.g), hc, p->url, "/metrics", 64u << 20,
                                   GET_TIMEOUT_MS, got_metrics, p, NULL, &p->gets[1]) == 0)
    p->inflight++;
  /* The next one: soon while not up (a GET still out is not repeated). */
  int64_t next = p->up ? gw__config(p->base.g)->source_refresh_ms : RETRY_MS;
  uv_timer_start(&p->timer, on_timer, (uint64_t)next, 0);
}

/* ---------------------------------------------------------------- backend */
static void be_info(void *arg, storeapi_call *c) {
  gw_prom *p = arg;
  if (!p->up) {
    storeapi_call_finish(c, NET_GRPC_UNAVAILABLE,
                         p->last_error[0] ? p->last_error : "waiting for the first answer");
    return;
  }
  p->inner.info(p->inner.arg, c);
}

static void be_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  gw_prom *p = arg;
  p->inner.series(p->inner.arg, c, req);
}
static void be_label_names(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  gw_prom *p = arg;
  p->inner.label_names(p->inner.arg, c, req);
}
static void be_label_values(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  gw_prom *p = arg;
  p->inner.label_values(p->inner.arg, c, req);
}
static void be_cancel(void *arg, storeapi_call *c) {
  gw_prom *p = arg;
  p->inner.cancel(p->inner.arg, c);
}
static void be_resume(void *arg, storeapi_call *c) {
  gw_prom *p = arg;
  p->inner.resume(p->inner.arg, c);
}

/* ---------------------------------------------------------------- lifecycle */
static void timer_closed(uv_handle_t *h) {
  gw_prom *p = h->data;
  p->timer_closed = true;
  maybe_freed(p);
}

static void source_close(gw__source *s, void (*done)(void *arg), void *arg) {
  gw_prom *p = (gw_prom *)s;
  p->closing = true;
  p->done = done;
  p->done_arg = arg;
  for (int i = 0; i < 2; i++)
    if (p->gets[i]) prom_get_cancel(p->gets[i]);
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, timer_closed);
}

static int source_open(gw *g, const char *spec, gw__source **out, char *err, size_t errlen) {
  net_http_client *http = gw__http(g);
  gw_prom *p = calloc(1, sizeof(*p));
  if (!p || !http) {
    free(p);
    return ORR_ENOMEM;
  }
  p->base.g = g;
  p->flag_arena = orr_arena_new(512);
  char *url = NULL;
  int rc = p->flag_arena ? parse_spec(spec, p->flag_arena, &url, &p->flag_ext, &p->have_flag_ext,
                                      err, errlen)
                         : ORR_ENOMEM;
  char shown[2048];
  if (rc == 0 && (!(p->url = strdup(url)) ||
                  !(p->shown = strdup(net_url_redacted(url, shown, sizeof shown)))))
    rc = ORR_ENOMEM;
  prom_source_opts po = {0};
  po.http = http;
  po.url = p->url;
  po.component = "prometheus";
  po.client = gw__config(g)->http_client;
  po.rr_bytes = rc == 0 ? gw__source_bytes_counter(g, "prometheus", p->shown) : NULL;
  if (rc == 0) rc = prom_source_new(&po, &p->ps);
  if (rc) {
    orr_arena_destroy(p->flag_arena);
    free(p->url);
    free(p->shown);
    free(p);
    return rc;
  }
  snprintf(p->last_error, sizeof(p->last_error), "waiting for the first answer from %s", p->shown);
  p->inner = prom_source_backend(p->ps);
  storeapi_backend be = {be_info, be_series, be_label_names, be_label_values,
                         be_cancel, be_resume, p};
  p->base.be = be;
  p->base.close = source_close;
  uv_timer_init(gw__loop(g), &p->timer);
  p->timer.data = p;
  refresh(p);
  *out = &p->base;
  return 0;
}

const gw__source_kind gw__source_prometheus = {"prometheus", check, source_open};
