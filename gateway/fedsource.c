/* fedsource.c: --endpoint.federate — a /federate endpoint (a Prometheus,
 * another gateway, anything speaking the text format) scraped by the
 * gateway into a bounded in-memory head of XOR chunks, served as an
 * in-process StoreAPI source.
 *
 * Spec: URL[;name=value,...], the URL with its query (match[] selectors);
 * the labels after ';' are the source's external labels (none otherwise).
 * Labels are kept as exposed (honor_labels), timestamps as exposed (the
 * scrape's start when a line has none).
 *
 * Design notes
 * 1. Scrapes every --federate.interval (timeout: the interval); one at a
 *    time. A scrape is all or nothing, as Prometheus's: the body is parsed
 *    once to check it, then again to append; a failed scrape (connect
 *    error, HTTP status, a parse error) appends nothing.
 * 2. Staleness as Prometheus's scrape loop: a series the last scrape had
 *    and this one has not gets a stale marker (the special NaN) at this
 *    scrape's time; a failed scrape marks every series stale. A series
 *    comes back with its next sample. (Prometheus tracks staleness only
 *    for samples without explicit timestamps; federate answers always have
 *    them, and a gateway must still see a dead source's series end, so
 *    here every series is tracked.)
 * 3. Bounded: samples older than --federate.retention are dropped a chunk
 *    at a time (a series whose last chunk goes is forgotten); at most
 *    --federate.max-series series are held: new series past it are not
 *    kept, an error is logged once per scrape that hits it, and Series
 *    calls carry a warning until a scrape fits again. A sample not newer
 *    than the series' last one (the same sample federated again) is
 *    skipped.
 * 4. A Series call copies what matches into its own arena when it starts
 *    (labels extended by the external labels, chunk bytes), then streams
 *    from there with backpressure: scrapes may change the head meanwhile.
 * 5. Info fails (UNAVAILABLE, the scrape error) until a scrape succeeded
 *    once; afterwards it answers and the last scrape error, if any, shows
 *    as the endpoint's lastError while the head keeps serving.
 * 6. Parsing runs on the loop: a federate body is the last sample of each
 *    matched series, small next to what a query moves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expfmt.h"
#include "gateway_int.h"
#include "prom.h"
#include "tsdb.h"

#define CHUNK_SAMPLES 120        /* as Prometheus's head */
#define MAX_BODY (256u << 20)
#define STALE_NAN_BITS 0x7ff0000000000002ull

typedef struct fchunk {
  struct fchunk *next;
  int64_t mint, maxt;
  tsdb_xor_appender app;
} fchunk;

typedef struct fseries {
  struct fseries *hnext; /* hash chain */
  labels_set ls;         /* strings in |mem| */
  char *mem;
  uint64_t hash;
  fchunk *head, *tail;   /* oldest first */
  int64_t last_t;
  bool stale;            /* the last sample is a stale marker */
  uint64_t gen;          /* the last scrape that had it */
} fseries;

typedef struct gw_fed {
  gw__source base;
  char *url;               /* as given, password masked (for messages) */
  char *fetch_url;         /* percent-encoded where curl needs it */
  orr_arena *ext_arena;
  labels_set ext;
  uv_timer_t timer;
  prom_get_req *get;
  int64_t scrape_ms;       /* the scrape in flight's start */
  orr_series *bytes;       /* scraped body bytes (may be NULL) */
  /* the head */
  fseries **buckets;
  size_t nbuckets, nseries;
  uint64_t gen;
  orr_arena *scratch;
  /* state */
  bool ever_ok;
  char last_error[600];    /* the last scrape's error, "" when it worked */
  char limit_warning[300]; /* set while the last scrape went past max-series */
  bool closing, timer_closed;
  void (*done)(void *arg);
  void *done_arg;
} gw_fed;

static bool is_stale(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof(b));
  return b == STALE_NAN_BITS;
}

static double stale_nan(void) {
  uint64_t b = STALE_NAN_BITS;
  double v;
  memcpy(&v, &b, sizeof(v));
  return v;
}

/* ---------------------------------------------------------------- head */
static void series_free(fseries *s) {
  while (s->head) {
    fchunk *c = s->head;
    s->head = c->next;
    tsdb_xor_appender_free(&c->app);
    free(c);
  }
  free(s->mem);
  free(s);
}

static fseries *series_new(const labels_set *ls, uint64_t hash) {
  size_t bytes = 0;
  for (size_t i = 0; i < ls->n; i++)
    bytes += strlen(ls->v[i].name) + strlen(ls->v[i].value) + 2;
  fseries *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->mem = malloc(ls->n * sizeof(labels_label) + bytes + 1);
  if (!s->mem) {
    free(s);
    return NULL;
  }
  labels_label *v = (labels_label *)s->mem;
  char *p = s->mem + ls->n * sizeof(labels_label);
  for (size_t i = 0; i < ls->n; i++) {
    size_t nl = strlen(ls->v[i].name) + 1, vl = strlen(ls->v[i].value) + 1;
    memcpy(p, ls->v[i].name, nl);
    v[i].name = p;
    p += nl;
    memcpy(p, ls->v[i].value, vl);
    v[i].value = p;
    p += vl;
  }
  s->ls.v = v;
  s->ls.n = ls->n;
  s->hash = hash;
  s->last_t = INT64_MIN;
  return s;
}

static int head_grow(gw_fed *f) {
  size_t nb = f->nbuckets ? f->nbuckets * 2 : 1024;
  fseries **b = calloc(nb, sizeof(*b));
  if (!b) return ORR_ENOMEM;
  for (size_t i = 0; i < f->nbuckets; i++) {
    fseries *s = f->buckets[i];
    while (s) {
      fseries *n = s->hnext;
      s->hnext = b[s->hash & (nb - 1)];
      b[s->hash & (nb - 1)] = s;
      s = n;
    }
  }
  free(f->buckets);
  f->buckets = b;
  f->nbuckets = nb;
  return 0;
}

static fseries *head_find(gw_fed *f, const labels_set *ls, uint64_t hash) {
  if (!f->nbuckets) return NULL;
  for (fseries *s = f->buckets[hash & (f->nbuckets - 1)]; s; s = s->hnext)
    if (s->hash == hash && labels_equal(&s->ls, ls)) return s;
  return NULL;
}

/* Appends a sample (note 3: skipped unless newer than the last). */
static int series_append(fseries *s, int64_t t, double v) {
  if (t <= s->last_t) return 0;
  fchunk *c = s->tail;
  if (!c || tsdb_xor_appender_samples(&c->app) >= CHUNK_SAMPLES) {
    c = calloc(1, sizeof(*c));
    if (!c || tsdb_xor_appender_init(&c->app)) {
      if (c) tsdb_xor_appender_free(&c->app);
      free(c);
      return ORR_ENOMEM;
    }
    c->mint = t;
    if (s->tail)
      s->tail->next = c;
    else
      s->head = c;
    s->tail = c;
  }
  int rc = tsdb_xor_append(&c->app, t, v);
  if (rc) return rc;
  c->maxt = t;
  s->last_t = t;
  s->stale = is_stale(v);
  return 0;
}

/* Note 2: every series not seen by scrape |gen| (all with gen 0) gets a
 * stale marker at |t|. */
static void mark_stale(gw_fed *f, uint64_t gen, int64_t t) {
  for (size_t i = 0; i < f->nbuckets; i++)
    for (fseries *s = f->buckets[i]; s; s = s->hnext)
      if (!s->stale && (gen == 0 || s->gen != gen))
        series_append(s, t > s->last_t ? t : s->last_t + 1, stale_nan());
}

/* Note 3: drops chunks wholly before |cutoff|, and series left empty. */
static void apply_retention(gw_fed *f, int64_t cutoff) {
  for (size_t i = 0; i < f->nbuckets; i++) {
    fseries **pp = &f->buckets[i];
    while (*pp) {
      fseries *s = *pp;
      while (s->head && s->head->maxt < cutoff) {
        fchunk *c = s->head;
        s->head = c->next;
        tsdb_xor_appender_free(&c->app);
        free(c);
      }
      if (!s->head) {
        *pp = s->hnext;
        series_free(s);
        f->nseries--;
        continue;
      }
      pp = &s->hnext;
    }
  }
}

/* ---------------------------------------------------------------- scrape */
typedef struct append_ctx {
  gw_fed *f;
  int64_t dropped;
  int err;
} append_ctx;

static int check_sample(const expfmt_sample *s, void *arg) {
  (void)s;
  (void)arg;
  return 0;
}

static int append_sample(const expfmt_sample *smp, void *arg) {
  append_ctx *ax = arg;
  gw_fed *f = ax->f;
  uint64_t h = labels_hash(&smp->labels);
  fseries *s = head_find(f, &smp->labels, h);
  if (!s) {
    int64_t max = gw__config(f->base.g)->federate_max_series;
    if (max > 0 && (int64_t)f->nseries >= max) {
      ax->dropped++;
      return 0;
    }
    if (f->nseries >= f->nbuckets && head_grow(f)) return ORR_ENOMEM;
    if (!(s = series_new(&smp->labels, h))) return ORR_ENOMEM;
    s->hnext = f->buckets[h & (f->nbuckets - 1)];
    f->buckets[h & (f->nbuckets - 1)] = s;
    f->nseries++;
  }
  s->gen = f->gen;
  return series_append(s, smp->has_ts ? smp->ts : f->scrape_ms, smp->v);
}

static void scrape_failed(gw_fed *f, const char *why) {
  if (!f->last_error[0] || strcmp(f->last_error, why) != 0)
    orr_log_warn("federate scrape failed; its series are stale", "url", f->url, "err", why,
                 NULL);
  snprintf(f->last_error, sizeof(f->last_error), "%s", why);
  mark_stale(f, 0, f->scrape_ms);
}

static void maybe_freed(gw_fed *f);

static void got_scrape(void *owner, int result, int status, orr_buf *body, const char *err,
                       void *arg) {
  gw_fed *f = owner;
  (void)arg;
  f->get = NULL;
  if (f->closing) {
    maybe_freed(f);
    return;
  }
  const gw_config *cfg = gw__config(f->base.g);
  char why[600];
  if (result == 0 && f->bytes) orr_counter_add(f->bytes, (double)body->len);
  if (result) {
    snprintf(why, sizeof(why), "scrape %s: %s%s%s", f->url,
             result == ORR_ETIMEOUT ? "timed out" : orr_strerror(result),
             err && err[0] ? ": " : "", err ? err : "");
    scrape_failed(f, why);
  } else if (status != 200) {
    snprintf(why, sizeof(why), "scrape %s: HTTP %d", f->url, status);
    scrape_failed(f, why);
  } else {
    char perr[300] = "";
    const char *data = body->data ? body->data : "";
    int rc = expfmt_parse(data, body->len, f->scratch, check_sample, NULL, perr, sizeof(perr));
    if (rc) {
      snprintf(why, sizeof(why), "scrape %s: not the text exposition format: %s", f->url,
               perr[0] ? perr : orr_strerror(rc));
      scrape_failed(f, why);
    } else {
      f->gen++;
      append_ctx ax = {f, 0, 0};
      rc = expfmt_parse(data, body->len, f->scratch, append_sample, &ax, perr, sizeof(perr));
      mark_stale(f, f->gen, f->scrape_ms);
      if (rc) {
        snprintf(why, sizeof(why), "scrape %s: %s", f->url, orr_strerror(rc));
        scrape_failed(f, why);
      } else {
        if (f->last_error[0]) orr_log_info("federate scrape works again", "url", f->url, NULL);
        f->last_error[0] = 0;
        f->ever_ok = true;
      }
      if (ax.dropped > 0) {
        snprintf(f->limit_warning, sizeof(f->limit_warning),
                 "federate source %s: more series than --federate.max-series=%lld; %lld series "
                 "of the last scrape were not kept",
                 f->url, (long long)cfg->federate_max_series, (long long)ax.dropped);
        orr_log_error("federate source over --federate.max-series: new series not kept", "url",
                      f->url, "max_series", ORR_LOG_INT(cfg->federate_max_series), "dropped",
                      ORR_LOG_INT(ax.dropped), NULL);
      } else {
        f->limit_warning[0] = 0;
      }
    }
  }
  orr_arena_reset(f->scratch);
  apply_retention(f, orr_now_ms() - cfg->federate_retention_ms);
}

static void on_timer(uv_timer_t *t) {
  gw_fed *f = t->data;
  if (f->closing || f->get) return; /* one scrape at a time */
  f->scrape_ms = orr_now_ms();
  net_http_client *http = gw__http(f->base.g);
  int64_t timeout = gw__config(f->base.g)->federate_interval_ms;
  int rc = http ? prom_get_auth(http, gw__config(f->base.g)->http_client, f->fetch_url, "",
                                MAX_BODY, timeout, got_scrape, f, NULL, &f->get)
               : ORR_ENOMEM;
  if (rc == ORR_EIO)
    scrape_failed(f, "cannot start the scrape: a secret file of --endpoint.http-client is unreadable");
  else if (rc)
    scrape_failed(f, "cannot start the scrape: out of memory");
}

/* ---------------------------------------------------------------- calls */
typedef struct fcall {
  storeapi_call *c;
  Thanos__Series *out; /* copied at the start (note 4) */
  size_t n, next;
} fcall;

/* labels_cmp's order over the proto labels (sorted names): name then
 * value, pairwise, the shorter set first. */
static int cmp_series(const void *a, const void *b) {
  const Thanos__Series *x = a, *y = b;
  size_t n = x->n_labels < y->n_labels ? x->n_labels : y->n_labels;
  for (size_t i = 0; i < n; i++) {
    int c = strcmp(x->labels[i]->name, y->labels[i]->name);
    if (c) return c;
    c = strcmp(x->labels[i]->value, y->labels[i]->value);
    if (c) return c;
  }
  return x->n_labels < y->n_labels ? -1 : x->n_labels > y->n_labels;
}

static bool series_matches(const fseries *s, labels_matcher *const *ms, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *v = labels_get(&s->ls, labels_matcher_name(ms[i]));
    if (!v) v = "";
    if (!labels_matcher_matches(ms[i], v, strlen(v))) return false;
  }
  return true;
}

static void pump(fcall *fc) {
  while (fc->next < fc->n) {
    int rc = storeapi_call_send_series(fc->c, &fc->out[fc->next++]);
    if (rc == ORR_EAGAIN) return; /* resume() goes on */
    if (rc) {
      storeapi_call_finish(fc->c, rc == ORR_ECANCELED ? NET_GRPC_CANCELLED : NET_GRPC_INTERNAL,
                           orr_strerror(rc));
      return;
    }
  }
  storeapi_call_finish(fc->c, NET_GRPC_OK, NULL);
}

static void be_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  gw_fed *f = arg;
  orr_arena *a = storeapi_call_arena(c);
  fcall *fc = orr_arena_calloc(a, 1, sizeof(*fc));
  if (!fc) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  fc->c = c;
  storeapi_call_set_data(c, fc);
  labels_matcher **ms;
  size_t nms;
  if (!storeapi_split_external(&f->ext, req->matchers, req->nmatchers, a, &ms, &nms)) {
    storeapi_call_finish(c, NET_GRPC_OK, NULL);
    return;
  }
  if (f->limit_warning[0] && storeapi_call_send_warning(c, f->limit_warning) == ORR_ECANCELED) {
    storeapi_call_finish(c, NET_GRPC_CANCELLED, "cancelled");
    return;
  }
  const Thanos__SeriesRequest *m = req->msg;
  size_t cap = 0;
  for (size_t i = 0; i < f->nbuckets; i++)
    for (fseries *s = f->buckets[i]; s; s = s->hnext) cap += series_matches(s, ms, nms);
  fc->out = orr_arena_calloc(a, cap ? cap : 1, sizeof(*fc->out));
  if (!fc->out) goto oom;
  for (size_t i = 0; i < f->nbuckets; i++) {
    for (fseries *s = f->buckets[i]; s; s = s->hnext) {
      if (!series_matches(s, ms, nms)) continue;
      size_t nc = 0;
      for (fchunk *ch = s->head; ch; ch = ch->next)
        nc += ch->maxt >= m->min_time && ch->mint <= m->max_time;
      if (nc == 0) continue;
      Thanos__Series *o = &fc->out[fc->n];
      thanos__series__init(o);
      labels_set ls;
      if (storeapi_labels_extend(&s->ls, &f->ext, m->without_replica_labels,
                                 m->n_without_replica_labels, a, &ls) ||
          storeapi_labels_to_proto(&ls, a, &o->labels))
        goto oom;
      o->n_labels = ls.n;
      if (!m->skip_chunks) {
        Thanos__AggrChunk **pc = orr_arena_calloc(a, nc, sizeof(*pc));
        Thanos__AggrChunk *ac = orr_arena_calloc(a, nc, sizeof(*ac));
        Thanos__Chunk *raw = orr_arena_calloc(a, nc, sizeof(*raw));
        if (!pc || !ac || !raw) goto oom;
        size_t k = 0;
        for (fchunk *ch = s->head; ch; ch = ch->next) {
          if (ch->maxt < m->min_time || ch->mint > m->max_time) continue;
          size_t len;
          const uint8_t *b = tsdb_xor_bytes(&ch->app, &len);
          uint8_t *cp = orr_arena_alloc(a, len ? len : 1);
          if (!cp) goto oom;
          memcpy(cp, b, len);
          thanos__aggr_chunk__init(&ac[k]);
          thanos__chunk__init(&raw[k]);
          ac[k].min_time = ch->mint;
          ac[k].max_time = ch->maxt;
          raw[k].type = THANOS__CHUNK__ENCODING__XOR;
          raw[k].data.data = cp;
          raw[k].data.len = len;
          ac[k].raw = &raw[k];
          pc[k] = &ac[k];
          k++;
        }
        o->chunks = pc;
        o->n_chunks = k;
      }
      fc->n++;
    }
  }
  qsort(fc->out, fc->n, sizeof(*fc->out), cmp_series);
  if (m->limit > 0 && (int64_t)fc->n > m->limit) fc->n = (size_t)m->limit;
  pump(fc);
  return;
oom:
  storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

static void be_resume(void *arg, storeapi_call *c) {
  (void)arg;
  fcall *fc = storeapi_call_data(c);
  if (fc) pump(fc);
}

static void be_cancel(void *arg, storeapi_call *c) {
  (void)arg;
  storeapi_call_finish(c, NET_GRPC_CANCELLED, "cancelled");
}

static void be_labels(gw_fed *f, storeapi_call *c, const storeapi_label_req *req, bool names) {
  orr_arena *a = storeapi_call_arena(c);
  labels_matcher **ms;
  size_t nms;
  bool match = storeapi_split_external(&f->ext, req->matchers, req->nmatchers, a, &ms, &nms);
  size_t cap = f->ext.n + 1;
  for (size_t i = 0; match && i < f->nbuckets; i++)
    for (fseries *s = f->buckets[i]; s; s = s->hnext) cap += names ? s->ls.n : 1;
  char **v = orr_arena_calloc(a, cap, sizeof(char *));
  if (!v) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  size_t k = 0;
  const char *ev = names ? NULL : labels_get(&f->ext, req->label);
  for (size_t i = 0; match && !ev && i < f->nbuckets; i++) {
    for (fseries *s = f->buckets[i]; s; s = s->hnext) {
      if (!s->head || s->tail->maxt < req->start || s->head->mint > req->end ||
          !series_matches(s, ms, nms))
        continue;
      if (!names) {
        const char *x = labels_get(&s->ls, req->label);
        if (x && !(v[k++] = orr_arena_strdup(a, x))) goto oom;
        continue;
      }
      for (size_t j = 0; j < s->ls.n; j++)
        if (!labels_get(&f->ext, s->ls.v[j].name) && !(v[k++] = orr_arena_strdup(a, s->ls.v[j].name)))
          goto oom;
    }
  }
  if (match && ev) v[k++] = (char *)ev;
  if (match && names && k > 0)
    for (size_t j = 0; j < f->ext.n; j++) v[k++] = (char *)f->ext.v[j].name;
  /* without_replica_labels */
  size_t w = 0;
  for (size_t i = 0; i < k; i++) {
    bool drop = false;
    for (size_t d = 0; names && d < req->nwithout; d++) drop |= !strcmp(v[i], req->without_replica_labels[d]);
    if (!drop) v[w++] = v[i];
  }
  storeapi_call_reply_labels(c, names, v, w, req->limit);
  return;
oom:
  storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

static void be_label_names(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  be_labels(arg, c, req, true);
}
static void be_label_values(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  be_labels(arg, c, req, false);
}

static void be_info(void *arg, storeapi_call *c) {
  gw_fed *f = arg;
  if (!f->ever_ok && f->nseries == 0) {
    storeapi_call_finish(c, NET_GRPC_UNAVAILABLE,
                         f->last_error[0] ? f->last_error : "waiting for the first scrape");
    return;
  }
  orr_arena *a = storeapi_call_arena(c);
  int64_t mint = INT64_MAX;
  for (size_t i = 0; i < f->nbuckets; i++)
    for (fseries *s = f->buckets[i]; s; s = s->hnext)
      if (s->head && s->head->mint < mint) mint = s->head->mint;
  if (mint == INT64_MAX) mint = orr_now_ms() - gw__config(f->base.g)->federate_retention_ms;
  Thanos__Info__InfoResponse r = THANOS__INFO__INFO_RESPONSE__INIT;
  Thanos__Info__StoreInfo st = THANOS__INFO__STORE_INFO__INIT;
  Thanos__LabelSet ls = THANOS__LABEL_SET__INIT, *lsp = &ls;
  if (f->ext.n) {
    if (storeapi_labels_to_proto(&f->ext, a, &ls.labels)) {
      storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    ls.n_labels = f->ext.n;
    r.label_sets = &lsp;
    r.n_label_sets = 1;
  }
  r.componenttype = "federate";
  st.min_time = mint;
  st.max_time = INT64_MAX;
  st.supports_without_replica_labels = 1;
  r.store = &st;
  storeapi_call_reply_info(c, &r);
}

/* ---------------------------------------------------------------- lifecycle */
static const char *source_error(gw__source *s) {
  gw_fed *f = (gw_fed *)s;
  if (f->last_error[0]) return f->last_error;
  return f->limit_warning[0] ? f->limit_warning : NULL;
}

static void maybe_freed(gw_fed *f) {
  if (!f->closing || !f->timer_closed || f->get) return;
  void (*done)(void *) = f->done;
  void *arg = f->done_arg;
  for (size_t i = 0; i < f->nbuckets; i++) {
    fseries *s = f->buckets[i];
    while (s) {
      fseries *n = s->hnext;
      series_free(s);
      s = n;
    }
  }
  free(f->buckets);
  orr_arena_destroy(f->scratch);
  orr_arena_destroy(f->ext_arena);
  free(f->url);
  free(f->fetch_url);
  free(f);
  if (done) done(arg);
}

static void timer_closed(uv_handle_t *h) {
  gw_fed *f = h->data;
  f->timer_closed = true;
  maybe_freed(f);
}

static void source_close(gw__source *s, void (*done)(void *arg), void *arg) {
  gw_fed *f = (gw_fed *)s;
  f->closing = true;
  f->done = done;
  f->done_arg = arg;
  if (f->get) prom_get_cancel(f->get);
  uv_timer_stop(&f->timer);
  uv_close((uv_handle_t *)&f->timer, timer_closed);
}

/* The URL with the bytes curl refuses in a URL (blanks, quotes, braces...)
 * percent-encoded, so that match[]={job=~"x.+"} may be written as is: '+'
 * too, which a query string would otherwise read as a blank (a selector
 * means the regex operator; %2B and %20 written out stay as they are). */
static char *fetch_url(const char *url) {
  orr_buf b = {0};
  const char *query = strchr(url, '?');
  for (const char *p = url; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= 0x20 || c >= 0x7f || strchr("\"{}|\\^`<>", c) || (c == '+' && query && p > query))
      orr_buf_printf(&b, "%%%02X", c);
    else
      orr_buf_putc(&b, (char)c);
  }
  char *s = b.oom ? NULL : strndup(b.data ? b.data : "", b.len);
  orr_buf_free(&b);
  return s;
}

static int check(const char *spec, char *err, size_t errlen) {
  orr_arena *a = orr_arena_new(256);
  if (!a) return ORR_ENOMEM;
  labels_set ls;
  bool have;
  int rc = gw__source_spec_labels(spec, a, NULL, &ls, &have, err, errlen);
  orr_arena_destroy(a);
  return rc;
}

static int source_open(gw *g, const char *spec, gw__source **out, char *err, size_t errlen) {
  gw_fed *f = calloc(1, sizeof(*f));
  if (!f) return ORR_ENOMEM;
  f->base.g = g;
  f->ext_arena = orr_arena_new(512);
  f->scratch = orr_arena_new(0);
  char *url = NULL;
  bool have;
  int rc = f->ext_arena && f->scratch
               ? gw__source_spec_labels(spec, f->ext_arena, &url, &f->ext, &have, err, errlen)
               : ORR_ENOMEM;
  char shown[2048]; /* messages, /api/v1/stores and metric labels show no password */
  if (rc == 0 && (!(f->url = strdup(net_url_redacted(url, shown, sizeof shown))) ||
                  !(f->fetch_url = fetch_url(url))))
    rc = ORR_ENOMEM;
  if (rc) {
    orr_arena_destroy(f->ext_arena);
    orr_arena_destroy(f->scratch);
    free(f->url);
    free(f->fetch_url);
    free(f);
    return rc;
  }
  snprintf(f->last_error, sizeof(f->last_error), "waiting for the first scrape of %s", f->url);
  f->bytes = gw__source_bytes_counter(g, "federate", f->url);
  storeapi_backend be = {be_info, be_series, be_label_names, be_label_values,
                         be_cancel, be_resume, f};
  f->base.be = be;
  f->base.close = source_close;
  f->base.last_error = source_error;
  uv_timer_init(gw__loop(g), &f->timer);
  f->timer.data = f;
  uint64_t iv = (uint64_t)gw__config(g)->federate_interval_ms;
  uv_timer_start(&f->timer, on_timer, 0, iv);
  *out = &f->base;
  return 0;
}

const gw__source_kind gw__source_federate = {"federate", check, source_open};
