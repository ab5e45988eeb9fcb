/* source.c: a StoreAPI backend over one Prometheus's HTTP API — Series
 * through remote read (STREAMED_XOR_CHUNKS, chunks passed through) or
 * /api/v1/series for skip_chunks, LabelNames/LabelValues through its label
 * endpoints, Info from the external labels and time range its owner keeps
 * up to date. The sidecar serves it over gRPC; the gateway runs it
 * in-process for --endpoint.prometheus.
 *
 * Design notes
 * 1. Every call copies the external labels it needs into its arena, so the
 *    owner may replace them at any time (prom_source_set_external_labels).
 * 2. A Series call pulls from one streaming source (remote read, or
 *    /api/v1/series parsed as it arrives for skip_chunks) and stops pulling
 *    when the service layer answers ORR_EAGAIN, until resume(): the source
 *    never holds a whole response.
 * 3. A Series call holds one of the HTTP client's connections to Prometheus
 *    (16) for as long as its client is slow to read (note 2). So that one
 *    client (an IP address; "local" for an in-process client) cannot take
 *    them all, it may have at most CLIENT_SHARE Series calls reading from
 *    Prometheus; its further calls wait in its FIFO and start, in order, as
 *    its earlier ones end. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "reorder.h"

/* Note 3: half of the HTTP client's 16 connections per host. */
#define CLIENT_SHARE 8

typedef struct scall scall;
/* One client's Series calls reading from Prometheus, and those waiting. */
typedef struct client_share {
  struct client_share *next;
  int active;
  scall *wait_head, *wait_tail;
  char ip[64];
} client_share;

struct prom_source {
  net_http_client *http;
  char *url;
  const char *component;
  orr_arena *ext_arena;
  labels_set ext;
  int64_t min_time;
  client_share *clients; /* note 3 */
  orr_series *rr_bytes;
  const net_http_client_config *client; /* borrowed; may be NULL */
};

enum { K_SERIES_RR = 1, K_SERIES_JSON, K_LABELS };

struct scall {
  prom_source *sc;
  storeapi_call *c;
  int kind;
  storeapi_rr *rr;
  prom_get_req *get;
  orr_arena *tmp; /* per series message */
  labels_set ext;
  char *const *drop;
  size_t ndrop;
  net_http_client_req *sreq; /* K_SERIES_JSON: the /api/v1/series request */
  prom_series_json sj;
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
  bool ro_overflow; /* more than PROM_REORDER_MAX series held */
  prom_reorder ro; /* K_SERIES_RR: order after external labels (reorder.h) */
  bool ro_init;
};

static scall *scall_new(prom_source *sc, storeapi_call *c, int kind) {
  orr_arena *a = storeapi_call_arena(c);
  scall *s = orr_arena_calloc(a, 1, sizeof(*s));
  if (!s || labels_copy(a, &sc->ext, &s->ext)) return NULL;
  s->sc = sc;
  s->c = c;
  s->kind = kind;
  storeapi_call_set_data(c, s);
  return s;
}

static void share_release_slot(prom_source *sc, client_share *sh);

static void scall_finish(scall *s, int status, const char *msg) {
  client_share *share = s->holds_share ? s->share : NULL;
  if (share) {
    s->holds_share = false;
    share->active--;
  }
  orr_arena_destroy(s->tmp);
  s->tmp = NULL;
  if (s->ro_init) prom_reorder_free(&s->ro);
  s->ro_init = false;
  if (s->json) json_decref(s->json);
  s->json = NULL;
  if (s->sj_init) prom_series_json_free(&s->sj);
  s->sj_init = false;
  orr_buf_free(&s->errbody);
  prom_source *sc = s->sc;
  storeapi_call_finish(s->c, status, msg); /* |s| may be gone */
  if (share) share_release_slot(sc, share);
}

static void be_info(void *arg, storeapi_call *c) {
  prom_source *sc = arg;
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
  r->componenttype = (char *)sc->component;
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

/* Sends one series the reorder released (reorder.h); EAGAIN pauses. */
static int rr_emit(void *arg, const labels_set *final, const void *msg, size_t len) {
  scall *s = arg;
  (void)final;
  if (s->limit > 0 && s->sent >= s->limit) {
    s->limited = true;
    return ORR_ELIMIT; /* stops the transfer; rr_done ends the call OK */
  }
  int rc = storeapi_call_send_packed(s->c, msg, len);
  s->sent++;
  if (rc == ORR_EAGAIN) {
    s->blocked = true; /* queued; the transfer pauses after this series */
    return 0;
  }
  return rc;
}

/* External labels may swap prefix-related series (reorder.h): |ser| goes
 * through the call's reorder, |orig| (Prometheus's labels, any order; those
 * named as external labels are skipped) is what Prometheus sorted by. */
static int reorder_add(scall *s, const labels_set *orig, const Thanos__Series *ser) {
  if (!s->ro_init) {
    prom_reorder_init(&s->ro, &s->ext, rr_emit, s);
    s->ro_init = true;
  }
  labels_set o = {0}, final = {0};
  o.v = orr_arena_calloc(s->tmp, orig->n ? orig->n : 1, sizeof(labels_label));
  final.v = orr_arena_calloc(s->tmp, ser->n_labels ? ser->n_labels : 1, sizeof(labels_label));
  if (!o.v || !final.v) return ORR_ENOMEM;
  for (size_t i = 0; i < orig->n; i++)
    if (!labels_get(&s->ext, orig->v[i].name)) o.v[o.n++] = orig->v[i];
  if (labels_sort(&o)) return ORR_ECORRUPT;
  for (size_t i = 0; i < ser->n_labels; i++)
    final.v[final.n++] = (labels_label){ser->labels[i]->name, ser->labels[i]->value};
  Thanos__SeriesResponse r = THANOS__SERIES_RESPONSE__INIT;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_SERIES;
  r.series = (Thanos__Series *)ser;
  size_t len = thanos__series_response__get_packed_size(&r);
  uint8_t *buf = orr_arena_alloc(s->tmp, len ? len : 1);
  if (!buf) return ORR_ENOMEM;
  thanos__series_response__pack(&r, buf);
  int rc = prom_reorder_add(&s->ro, &o, &final, buf, len);
  if (rc == ORR_ELIMIT && !s->limited) s->ro_overflow = true;
  return rc;
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
  if (s->ext.n) return reorder_add(s, &sl, &ser); /* sj_body pauses when blocked */
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
  return prom_series_json_feed(&s->sj, data, n);
}

static void sj_done(net_http_client_req *r, int result, void *arg) {
  scall *s = arg;
  s->sreq = NULL;
  char msg[600];
  if (storeapi_call_cancelled(s->c) || result == ORR_ECANCELED) {
    scall_finish(s, NET_GRPC_CANCELLED, "cancelled");
  } else if (s->ro_overflow) {
    scall_finish(s, NET_GRPC_RESOURCE_EXHAUSTED,
                 "series request to Prometheus: too many series to reorder after adding "
                 "external labels");
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
  } else if (prom_series_json_end(&s->sj)) {
    scall_finish(s, NET_GRPC_UNKNOWN, "series request to Prometheus: unexpected answer");
  } else if (s->ro_init && (result = prom_reorder_flush(&s->ro)) != 0 && !s->limited) {
    scall_finish(s, NET_GRPC_INTERNAL, orr_strerror(result));
  } else {
    scall_finish(s, NET_GRPC_OK, NULL);
  }
}

static int sj_start(prom_source *sc, scall *s, const char *pathq) {
  orr_buf url = {0};
  size_t bl = strlen(sc->url);
  while (bl > 0 && sc->url[bl - 1] == '/') bl--;
  orr_buf_append(&url, sc->url, bl);
  orr_buf_puts(&url, pathq);
  int rc = url.oom ? ORR_ENOMEM : net_http_client_req_new(sc->http, "GET", url.data, &s->sreq);
  orr_buf_free(&url);
  if (!rc && (rc = prom_apply_client_config(sc->client, s->sreq)) != 0)
    net_http_client_req_free(s->sreq);
  if (rc) return rc;
  prom_series_json_init(&s->sj, sj_emit, s);
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
  if (s->ext.n == 0) {
    if (s->limit > 0 && s->sent >= s->limit) {
      s->limited = true;
      return ORR_ELIMIT; /* stops the transfer; rr_done ends the call OK */
    }
    rc = storeapi_call_send_series(s->c, &ser);
    s->sent++;
  } else {
    /* Prometheus sorts by its stored labels and then adds its external
     * labels itself (remote read does): without them, the order it sorted by. */
    labels_set orig = {0};
    orig.v = orr_arena_calloc(s->tmp, cs->n_labels ? cs->n_labels : 1, sizeof(labels_label));
    if (!orig.v) return ORR_ENOMEM;
    for (size_t i = 0; i < cs->n_labels; i++)
      orig.v[orig.n++] = (labels_label){cs->labels[i]->name, cs->labels[i]->value};
    rc = reorder_add(s, &orig, &ser);
    if (rc == 0 && s->blocked) return NET_HTTP_CLIENT_PAUSE;
    return rc;
  }
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
  } else if (s->ro_overflow) {
    scall_finish(s, NET_GRPC_RESOURCE_EXHAUSTED,
                 "query Prometheus: too many series to reorder after adding external labels");
  } else if (!result && s->ro_init && (result = prom_reorder_flush(&s->ro)) != 0 &&
             !s->limited) {
    scall_finish(s, NET_GRPC_INTERNAL, orr_strerror(result));
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
  int rc = sel.oom ? ORR_ENOMEM : prom_url_escape(q, sel.data);
  orr_buf_free(&sel);
  return rc;
}

/* ---- note 5: each client's share of the connections to Prometheus */
static client_share *share_get(prom_source *sc, const char *ip) {
  for (client_share *sh = sc->clients; sh; sh = sh->next)
    if (strcmp(sh->ip, ip) == 0) return sh;
  client_share *sh = calloc(1, sizeof(*sh));
  if (!sh) return NULL;
  snprintf(sh->ip, sizeof(sh->ip), "%s", ip);
  sh->next = sc->clients;
  sc->clients = sh;
  return sh;
}

static void share_maybe_free(prom_source *sc, client_share *sh) {
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
static void share_release_slot(prom_source *sc, client_share *sh) {
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
static void series_admit(prom_source *sc, scall *s) {
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
static void share_unwait(prom_source *sc, scall *s) {
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
  prom_source *sc = arg;
  scall *s = scall_new(sc, c, K_SERIES_RR);
  if (!s) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  labels_matcher **ms;
  size_t nms;
  if (!storeapi_split_external(&s->ext, req->matchers, req->nmatchers, storeapi_call_arena(c),
                               &ms, &nms)) {
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
    o.base_url = sc->url;
    o.client_config = sc->client;
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

static void got_labels(void *owner, int result, int status, orr_buf *body, const char *err,
                       void *arg) {
  scall *s = arg;
  (void)owner;
  (void)err;
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
  storeapi_call_reply_labels(s->c, s->names, v, k, s->limit);
  json_decref(j);
}

static void be_labels(prom_source *sc, storeapi_call *c, const storeapi_label_req *req, bool names) {
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
  bool match = storeapi_split_external(&s->ext, req->matchers, req->nmatchers,
                                       storeapi_call_arena(c), &ms, &nms);
  if (storeapi_labels_answer_external(c, req, &s->ext, names, match)) return;
  orr_buf q = {0};
  if (names)
    orr_buf_puts(&q, "/api/v1/labels?");
  else
    orr_buf_printf(&q, "/api/v1/label/%s/values?", req->label);
  add_match_param(&q, ms, nms);
  add_range_params(&q, req->start, req->end);
  int rc = q.oom ? ORR_ENOMEM : prom_get_auth(sc->http, sc->client, sc->url, q.data, 256u << 20, 0, got_labels, sc, s, &s->get);
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
    prom_get_cancel(s->get); /* the GET callback finishes */
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


/* ---------------------------------------------------------------- the source */
int prom_source_new(const prom_source_opts *o, prom_source **out) {
  prom_source *sc = calloc(1, sizeof(*sc));
  if (!sc) return ORR_ENOMEM;
  sc->http = o->http;
  sc->url = strdup(o->url);
  sc->client = o->client;
  sc->component = o->component ? o->component : "sidecar";
  sc->rr_bytes = o->rr_bytes;
  sc->min_time = INT64_MIN;
  if (!sc->url) {
    free(sc);
    return ORR_ENOMEM;
  }
  *out = sc;
  return 0;
}

void prom_source_free(prom_source *sc) {
  if (!sc) return;
  while (sc->clients) { /* every call ended: the shares are empty */
    client_share *n = sc->clients->next;
    free(sc->clients);
    sc->clients = n;
  }
  orr_arena_destroy(sc->ext_arena);
  free(sc->url);
  free(sc);
}

storeapi_backend prom_source_backend(prom_source *sc) {
  storeapi_backend be = {be_info, be_series, be_label_names, be_label_values,
                         be_cancel, be_resume, sc};
  return be;
}

int prom_source_set_external_labels(prom_source *sc, const labels_set *ls) {
  orr_arena *a = orr_arena_new(1024);
  labels_set cp;
  if (!a || labels_copy(a, ls, &cp)) {
    orr_arena_destroy(a);
    return ORR_ENOMEM;
  }
  orr_arena_destroy(sc->ext_arena);
  sc->ext_arena = a;
  sc->ext = cp;
  return 0;
}

const labels_set *prom_source_external_labels(const prom_source *sc) { return &sc->ext; }

void prom_source_set_min_time(prom_source *sc, int64_t mint) { sc->min_time = mint; }
int64_t prom_source_min_time(const prom_source *sc) { return sc->min_time; }

/* ---------------------------------------------------------------- HTTP GET */
struct prom_get_req {
  net_http_client_req *req;
  orr_buf body;
  prom_get_fn cb;
  void *owner, *arg;
};

static void get_done(net_http_client_req *r, int result, void *arg) {
  prom_get_req *g = arg;
  g->cb(g->owner, result, net_http_client_status(r), &g->body, net_http_client_error(r), g->arg);
  orr_buf_free(&g->body);
  free(g);
}

int prom_apply_client_config(const net_http_client_config *client, net_http_client_req *r) {
  if (!client) return 0;
  char err[300] = "";
  int rc = net_http_client_config_apply(client, r, err, sizeof err);
  if (rc) orr_log_warn("cannot apply the Prometheus HTTP client config", "err", err, NULL);
  return rc;
}

int prom_get(net_http_client *http, const char *base_url, const char *pathq, size_t max,
             int64_t timeout_ms, prom_get_fn cb, void *owner, void *arg, prom_get_req **out) {
  return prom_get_auth(http, NULL, base_url, pathq, max, timeout_ms, cb, owner, arg, out);
}

int prom_get_auth(net_http_client *http, const net_http_client_config *client,
                  const char *base_url, const char *pathq, size_t max, int64_t timeout_ms,
                  prom_get_fn cb, void *owner, void *arg, prom_get_req **out) {
  prom_get_req *g = calloc(1, sizeof(*g));
  if (!g) return ORR_ENOMEM;
  g->cb = cb;
  g->owner = owner;
  g->arg = arg;
  orr_buf url = {0};
  size_t bl = strlen(base_url);
  while (bl > 0 && base_url[bl - 1] == '/') bl--;
  orr_buf_append(&url, base_url, bl);
  orr_buf_puts(&url, pathq);
  int rc = url.oom ? ORR_ENOMEM : net_http_client_req_new(http, "GET", url.data, &g->req);
  orr_buf_free(&url);
  if (!rc && (rc = prom_apply_client_config(client, g->req)) != 0) net_http_client_req_free(g->req);
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

void prom_get_cancel(prom_get_req *g) { net_http_client_cancel(g->req); }
