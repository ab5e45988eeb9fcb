/* src_promql.c: a source that offers only the Prometheus HTTP query API
 * (--endpoint.promql=URL: a managed Prometheus-compatible service, a
 * Prometheus behind a firewall that lets only its API out), served as a
 * storeapi_backend so it plugs into the gateway like any endpoint.
 *
 * Design notes
 * 1. Series(mint, maxt, matchers) asks for the raw samples: an instant
 *    query of the range selector {matchers}[<maxt-mint+1>ms] at time=maxt
 *    (POST /api/v1/query, form-encoded). A range selector at t covers
 *    (t - range, t], so the extra millisecond makes it [mint, maxt]. The
 *    answer is a matrix of raw samples, read as it arrives
 *    (promql_api_reader); each series becomes XOR chunks of at most
 *    CHUNK_SAMPLES samples in the call's arena. Prometheus's instant matrix
 *    is not promised sorted, so the call sends only once the answer is
 *    whole, sorted by labels (after the external labels are added).
 * 2. Stale markers are not visible through the query API (a range
 *    selector drops them), so a series that ended is seen to linger for
 *    the lookback delta after its last sample, where Prometheus would end
 *    it at the marker.
 * 3. skip_chunks (/api/v1/series) reads /api/v1/series with match[] and
 *    start/end; LabelNames and LabelValues read /api/v1/labels and
 *    /api/v1/label/<n>/values.
 * 4. Every failure (the source's JSON error, HTML, garbage, a timeout, a
 *    refused connection) ends the call with a gRPC status whose message
 *    names the source's URL, so the gateway's partial response turns it
 *    into a warning naming it.
 * 5. Matchers on the flag's external labels are decided here, as a sidecar
 *    does (Thanos's matchesExternalLabels); the rest go to the source. When
 *    none of those is one PromQL accepts alone (all match ""), the selector
 *    gets __name__=~".+" too.
 * 6. Aggregation pushdown (pushdown.c decides what and when) asks the
 *    source a query_range of a whole aggregation, outside any StoreAPI
 *    call (gw_promql_src_query_range): the same reader, errors and
 *    metrics, plus orrery_gateway_promql_source_pushdowns_total. */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "prom.h"
#include "promql.h"
#include "storeapi.h"
#include "tsdb.h"

#define CHUNK_SAMPLES 120
#define ERRBODY_MAX 200
#define LABELS_BODY_MAX (256u << 20)
/* Go's time.Duration, the range selector's type, holds about 292 years. */
#define MAX_RANGE_MS (250LL * 365 * 24 * 3600 * 1000)

typedef struct promql_kind_src promql_kind_src;

struct gw_promql_src {
  net_http_client *http;
  const net_http_client_config *client; /* --endpoint.http-client; may be NULL */
  char *url;        /* without trailing '/' */
  char *shown;      /* url with its password masked: messages and labels */
  orr_arena *arena; /* ext */
  labels_set ext;
  int64_t timeout_ms;
  orr_series *bytes, *req_ok, *req_err, *duration, *pushdowns;
};

enum { K_SERIES, K_SERIES_LIST, K_LABEL_NAMES, K_LABEL_VALUES, K_AGGREGATE };

typedef struct pcall {
  gw_promql_src *src;
  storeapi_call *c;
  orr_arena *a; /* the call's */
  int kind;
  net_http_client_req *req;
  promql_api_reader *rd;
  orr_buf form;
  orr_buf body;    /* label calls: the whole answer */
  char errbody[ERRBODY_MAX + 1];
  size_t nerrbody;
  int http_status;
  int fail_rc;     /* a reader or encoding error while reading */
  uint64_t start_ns;
  const char *what; /* "query", "series", "labels", "label values" for messages */
  /* series */
  char *const *drop;
  size_t ndrop;
  int64_t mint, maxt, limit;
  tsdb_xor_appender xa;
  Thanos__Series **out;
  size_t nout, capout, next;
  bool blocked, sending;
  /* label values */
  const char *label;
  /* K_AGGREGATE (no storeapi call): the caller's callbacks */
  promql_api_series_fn agg_series;
  void (*agg_done)(void *arg, int err, const char *msg);
  void (*agg_warn)(void *arg, const char *msg);
  void *agg_arg;
} pcall;

/* ---------------------------------------------------------------- the config */
int gw_promql_src_parse(const char *flag, orr_arena *a, char **url, labels_set *ext, char *err,
                        size_t errlen) {
  /* The spec form every in-process source takes (prometheus.c). */
  bool have;
  int rc = gw__source_spec_labels(flag, a, url, ext, &have, err, errlen);
  if (rc) return rc;
  size_t ul = strlen(*url);
  while (ul > 0 && (*url)[ul - 1] == '/') (*url)[--ul] = 0;
  return 0;
}

int gw_promql_src_new(const gw_promql_src_config *cfg, gw_promql_src **out, char *err,
                      size_t errlen) {
  gw_promql_src *s = calloc(1, sizeof(*s));
  if (!s) return ORR_ENOMEM;
  s->arena = orr_arena_new(0);
  if (!s->arena) {
    free(s);
    return ORR_ENOMEM;
  }
  char *url = NULL;
  int rc = gw_promql_src_parse(cfg->flag, s->arena, &url, &s->ext, err, errlen);
  if (rc) {
    gw_promql_src_free(s);
    return rc;
  }
  s->url = url;
  size_t ulen = strlen(url) + 1; /* the masked form is never longer */
  if (!(s->shown = orr_arena_alloc(s->arena, ulen))) {
    gw_promql_src_free(s);
    return ORR_ENOMEM;
  }
  net_url_redacted(url, s->shown, ulen);
  s->http = cfg->http;
  s->client = cfg->client;
  s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 120000;
  if (cfg->registry) {
    static const char *const l1[] = {"endpoint", NULL};
    static const char *const l2[] = {"endpoint", "result", NULL};
    orr_metric *b = orr_counter_new(cfg->registry, "orrery_gateway_promql_source_received_bytes_total",
                                    "Body bytes received from --endpoint.promql sources.", l1);
    orr_metric *q = orr_counter_new(cfg->registry, "orrery_gateway_promql_source_requests_total",
                                    "HTTP requests to --endpoint.promql sources by result "
                                    "(success, error).", l2);
    const char *v1[] = {s->shown}, *vok[] = {s->shown, "success"},
               *verr[] = {s->shown, "error"};
    s->bytes = b ? orr_metric_with(b, v1) : NULL;
    s->req_ok = q ? orr_metric_with(q, vok) : NULL;
    s->req_err = q ? orr_metric_with(q, verr) : NULL;
    static const double bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
    orr_metric *h = orr_histogram_new(cfg->registry,
                                      "orrery_gateway_promql_source_request_duration_seconds",
                                      "Time from sending a request to an --endpoint.promql source "
                                      "to the end of its answer.",
                                      l1, bounds, sizeof(bounds) / sizeof(bounds[0]));
    s->duration = h ? orr_metric_with(h, v1) : NULL;
    orr_metric *pd = orr_counter_new(cfg->registry, "orrery_gateway_promql_source_pushdowns_total",
                                     "Aggregations evaluated by an --endpoint.promql source "
                                     "itself (one query_range each) instead of read as raw "
                                     "samples.",
                                     l1);
    s->pushdowns = pd ? orr_metric_with(pd, v1) : NULL;
  }
  *out = s;
  return 0;
}

void gw_promql_src_free(gw_promql_src *s) {
  if (!s) return;
  orr_arena_destroy(s->arena);
  free(s);
}

const char *gw_promql_src_url(const gw_promql_src *s) { return s->shown; }
const labels_set *gw_promql_src_labels(const gw_promql_src *s) { return &s->ext; }

/* ---------------------------------------------------------------- helpers */
/* "name=<sec>.<ms>" as the API parses it, after a '&' unless first. */
static void form_time(orr_buf *b, const char *name, int64_t t) {
  uint64_t u = t < 0 ? (uint64_t)0 - (uint64_t)t : (uint64_t)t;
  orr_buf_printf(b, "%s%s=%s%" PRIu64 ".%03u", b->len ? "&" : "", name, t < 0 ? "-" : "",
                 u / 1000, (unsigned)(u % 1000));
}

/* Clamped to what the API can parse (about ±292 years around 1970). */
static int64_t clamp_api_time(int64_t t) {
  const int64_t lo = -9223372036854LL, hi = 9223372036854LL;
  return t < lo ? lo : t > hi ? hi : t;
}

/* The selector of note 5 (matchers on external labels already removed). */
static int selector(orr_buf *b, labels_matcher *const *ms, size_t n) {
  bool ok = false;
  for (size_t i = 0; i < n; i++) ok |= !labels_matcher_matches_empty(ms[i]);
  orr_buf_putc(b, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) orr_buf_putc(b, ',');
    labels_matcher_format(ms[i], b);
  }
  if (!ok) orr_buf_puts(b, n ? ",__name__=~\".+\"" : "__name__=~\".+\"");
  orr_buf_putc(b, '}');
  return b->oom ? ORR_ENOMEM : 0;
}

static void pcall_finish(pcall *p, int status, const char *msg) {
  if (p->rd) promql_api_reader_free(p->rd);
  p->rd = NULL;
  orr_buf_free(&p->form);
  orr_buf_free(&p->body);
  tsdb_xor_appender_free(&p->xa);
  free(p->out); /* the series themselves live in the call's arena */
  if (p->kind == K_AGGREGATE) {
    void (*done)(void *, int, const char *) = p->agg_done;
    void *arg = p->agg_arg;
    free(p);
    done(arg,
         status == NET_GRPC_OK          ? 0
         : status == NET_GRPC_CANCELLED ? ORR_ECANCELED
         : status == NET_GRPC_DEADLINE_EXCEEDED ? ORR_ETIMEOUT
                                                : ORR_EUNAVAILABLE,
         msg);
    return;
  }
  storeapi_call *c = p->c;
  storeapi_call_set_data(c, NULL);
  free(p);
  storeapi_call_finish(c, status, msg);
}

static pcall *pcall_new(gw_promql_src *s, storeapi_call *c, int kind, const char *what) {
  pcall *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->src = s;
  p->c = c;
  p->a = storeapi_call_arena(c);
  p->kind = kind;
  p->what = what;
  storeapi_call_set_data(c, p);
  return p;
}

/* ---------------------------------------------------------------- Info */
static void be_info(void *arg, storeapi_call *c) {
  gw_promql_src *s = arg;
  orr_arena *a = storeapi_call_arena(c);
  Thanos__Info__InfoResponse *r = orr_arena_calloc(a, 1, sizeof(*r));
  Thanos__LabelSet *ls = orr_arena_calloc(a, 1, sizeof(*ls));
  Thanos__Info__StoreInfo *st = orr_arena_calloc(a, 1, sizeof(*st));
  Thanos__LabelSet **lsp = orr_arena_calloc(a, 1, sizeof(*lsp));
  if (!r || !ls || !st || !lsp) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  thanos__info__info_response__init(r);
  thanos__label_set__init(ls);
  thanos__info__store_info__init(st);
  if (storeapi_labels_to_proto(&s->ext, a, &ls->labels)) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  ls->n_labels = s->ext.n;
  lsp[0] = ls;
  r->label_sets = lsp;
  r->n_label_sets = s->ext.n ? 1 : 0;
  /* Thanos's components are sidecar, store, query, rule, receive; a query
   * API source is none of them: "promql" says what it is. */
  r->componenttype = "promql";
  /* The query API does not say what time range it holds: all it can be
   * asked about (times it parses, about ±292 years around 1970). */
  st->min_time = clamp_api_time(INT64_MIN);
  st->max_time = clamp_api_time(INT64_MAX);
  st->supports_without_replica_labels = 1;
  r->store = st;
  storeapi_call_reply_info(c, r);
}

/* ---------------------------------------------------------------- HTTP */
static int http_headers(net_http_client_req *r, int status, void *arg) {
  (void)r;
  pcall *p = arg;
  p->http_status = status;
  return 0;
}

static int http_body(net_http_client_req *r, const char *data, size_t n, void *arg) {
  (void)r;
  pcall *p = arg;
  if (p->src->bytes) orr_counter_add(p->src->bytes, (double)n);
  if (p->nerrbody < ERRBODY_MAX) {
    size_t k = n < ERRBODY_MAX - p->nerrbody ? n : ERRBODY_MAX - p->nerrbody;
    memcpy(p->errbody + p->nerrbody, data, k);
    p->nerrbody += k;
  }
  if (p->rd) {
    int rc = promql_api_reader_feed(p->rd, data, n);
    if (rc) p->fail_rc = rc;
    return rc;
  }
  if (p->body.len + n > LABELS_BODY_MAX) return ORR_ELIMIT;
  return orr_buf_append(&p->body, data, n);
}

/* The start of a body for a message: printable ASCII, the rest '?'. */
static const char *errbody_text(pcall *p) {
  for (size_t i = 0; i < p->nerrbody; i++) {
    unsigned char ch = (unsigned char)p->errbody[i];
    if (ch < 0x20 || ch > 0x7e) p->errbody[i] = ' ';
  }
  p->errbody[p->nerrbody] = 0;
  return p->errbody;
}

/* Ends |p| with an error naming the source (note 4). */
static void fail_call(pcall *p, int code, const char *fmt, ...) ORR_PRINTF(3, 4);
static void fail_call(pcall *p, int code, const char *fmt, ...) {
  char detail[700], msg[1000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  snprintf(msg, sizeof(msg), "promql endpoint %s: %s: %s", p->src->shown, p->what, detail);
  if (p->src->req_err) orr_counter_inc(p->src->req_err);
  orr_log_warn("promql endpoint request failed", "endpoint", p->src->shown, "err", msg, NULL);
  pcall_finish(p, code, msg);
}

/* Whether the request came back whole and as a JSON answer of the API; when
 * not, the call is finished with the reason (note 4). */
static bool http_ok(pcall *p, net_http_client_req *r, int result) {
  if (p->src->duration && result != ORR_ECANCELED)
    orr_histogram_observe(p->src->duration, (double)(orr_mono_ns() - p->start_ns) / 1e9);
  if ((p->c && storeapi_call_cancelled(p->c)) || result == ORR_ECANCELED) {
    pcall_finish(p, NET_GRPC_CANCELLED, "cancelled");
    return false;
  }
  if (result == ORR_ETIMEOUT) {
    fail_call(p, NET_GRPC_DEADLINE_EXCEEDED, "no answer within %" PRId64 "ms", p->src->timeout_ms);
    return false;
  }
  if (result && !p->fail_rc) {
    const char *e = net_http_client_error(r);
    fail_call(p, NET_GRPC_UNAVAILABLE, "%s%s%s", orr_strerror(result), e && *e ? ": " : "",
              e ? e : "");
    return false;
  }
  if (p->rd) {
    int rc = p->fail_rc ? p->fail_rc : promql_api_reader_end(p->rd);
    if (rc == ORR_EUNAVAILABLE) {
      fail_call(p, NET_GRPC_UNKNOWN, "HTTP %d: %s", p->http_status,
                promql_api_reader_message(p->rd));
      return false;
    }
    if (rc && p->http_status != 200) {
      fail_call(p, NET_GRPC_UNKNOWN, "HTTP %d, not a Prometheus API answer: %s", p->http_status,
                errbody_text(p));
      return false;
    }
    if (rc == ORR_ELIMIT || rc == ORR_EUNSUPPORTED) {
      fail_call(p, NET_GRPC_RESOURCE_EXHAUSTED, "%s", promql_api_reader_message(p->rd));
      return false;
    }
    if (rc == ORR_ENOMEM) {
      fail_call(p, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return false;
    }
    if (rc) {
      fail_call(p, NET_GRPC_UNKNOWN, "not a Prometheus API answer (%s): %s",
                promql_api_reader_message(p->rd), errbody_text(p));
      return false;
    }
    if (promql_api_reader_series_list(p->rd) != (p->kind == K_SERIES_LIST)) {
      fail_call(p, NET_GRPC_UNKNOWN, "not a Prometheus API answer (data is %s): %s",
                p->kind == K_SERIES_LIST ? "not a list of series" : "not a matrix",
                errbody_text(p));
      return false;
    }
    return true;
  }
  if (p->http_status != 200) {
    json_t *j = json_loadb(p->body.data ? p->body.data : "", p->body.len, 0, NULL);
    const char *et = json_string_value(json_object_get(j, "errorType"));
    const char *em = json_string_value(json_object_get(j, "error"));
    if (em)
      fail_call(p, NET_GRPC_UNKNOWN, "HTTP %d: %s: %.500s", p->http_status, et ? et : "", em);
    else
      fail_call(p, NET_GRPC_UNKNOWN, "HTTP %d, not a Prometheus API answer: %s", p->http_status,
                errbody_text(p));
    json_decref(j);
    return false;
  }
  return true;
}

/* POSTs p->form to |path| of the source. Returns 0 or an ORR_E* code (the
 * call is not finished then). */
static int post(pcall *p, const char *path) {
  orr_buf url = {0};
  orr_buf_puts(&url, p->src->url);
  orr_buf_puts(&url, path);
  int rc = url.oom || p->form.oom ? ORR_ENOMEM
                                  : net_http_client_req_new(p->src->http, "POST", url.data, &p->req);
  orr_buf_free(&url);
  if (rc) return rc;
  if ((rc = prom_apply_client_config(p->src->client, p->req))) {
    net_http_client_req_free(p->req);
    p->req = NULL;
    return rc;
  }
  net_http_client_req_header(p->req, "Content-Type", "application/x-www-form-urlencoded");
  net_http_client_req_header(p->req, "Accept", "application/json");
  net_http_client_req_body(p->req, p->form.data, p->form.len);
  net_http_client_req_timeouts(p->req, p->src->timeout_ms, 0);
  p->start_ns = orr_mono_ns();
  return 0;
}

/* ---------------------------------------------------------------- Series */
static int series_cmp(const void *a, const void *b) {
  const Thanos__Series *x = *(Thanos__Series *const *)a, *y = *(Thanos__Series *const *)b;
  size_t n = x->n_labels < y->n_labels ? x->n_labels : y->n_labels;
  for (size_t i = 0; i < n; i++) {
    int c = strcmp(x->labels[i]->name, y->labels[i]->name);
    if (c) return c;
    c = strcmp(x->labels[i]->value, y->labels[i]->value);
    if (c) return c;
  }
  return x->n_labels < y->n_labels ? -1 : x->n_labels > y->n_labels;
}

/* One series of the answer: labels extended, XOR chunks, kept in the call's
 * arena until the whole answer is in (note 1). */
static int got_series(const labels_set *ls, const promql_api_point *pts, size_t n, void *arg) {
  pcall *p = arg;
  orr_arena *a = p->a;
  labels_set ext;
  Thanos__Series *s = orr_arena_calloc(a, 1, sizeof(*s));
  if (!s) return ORR_ENOMEM;
  thanos__series__init(s);
  int rc = storeapi_labels_extend(ls, &p->src->ext, p->drop, p->ndrop, a, &ext);
  if (rc) return rc;
  labels_set copy;
  if (labels_copy(a, &ext, &copy) || storeapi_labels_to_proto(&copy, a, &s->labels))
    return ORR_ENOMEM;
  s->n_labels = copy.n;
  size_t lo = 0;
  while (lo < n && pts[lo].t < p->mint) lo++;
  size_t hi = n;
  while (hi > lo && pts[hi - 1].t > p->maxt) hi--;
  if (p->kind == K_SERIES && hi == lo) return 0; /* nothing in range */
  if (p->kind == K_SERIES) {
    size_t nch = (hi - lo + CHUNK_SAMPLES - 1) / CHUNK_SAMPLES;
    s->chunks = orr_arena_calloc(a, nch, sizeof(*s->chunks));
    if (!s->chunks) return ORR_ENOMEM;
    for (size_t i = lo; i < hi; i += CHUNK_SAMPLES) {
      size_t e = i + CHUNK_SAMPLES < hi ? i + CHUNK_SAMPLES : hi;
      tsdb_xor_appender_reset(&p->xa);
      for (size_t k = i; k < e; k++)
        if ((rc = tsdb_xor_append(&p->xa, pts[k].t, pts[k].v)) != 0) return rc;
      size_t len;
      const uint8_t *bytes = tsdb_xor_bytes(&p->xa, &len);
      Thanos__AggrChunk *ac = orr_arena_calloc(a, 1, sizeof(*ac));
      Thanos__Chunk *ch = orr_arena_calloc(a, 1, sizeof(*ch));
      uint8_t *data = orr_arena_alloc(a, len ? len : 1);
      if (!ac || !ch || !data) return ORR_ENOMEM;
      thanos__aggr_chunk__init(ac);
      thanos__chunk__init(ch);
      memcpy(data, bytes, len);
      ch->type = THANOS__CHUNK__ENCODING__XOR;
      ch->data.data = data;
      ch->data.len = len;
      ac->min_time = pts[i].t;
      ac->max_time = pts[e - 1].t;
      ac->raw = ch;
      s->chunks[s->n_chunks++] = ac;
    }
  }
  if (p->nout == p->capout) {
    size_t nc = p->capout ? p->capout * 2 : 64;
    Thanos__Series **no = realloc(p->out, nc * sizeof(*no));
    if (!no) return ORR_ENOMEM;
    p->out = no;
    p->capout = nc;
  }
  p->out[p->nout++] = s;
  return 0;
}

/* Sends what is left, in order, until the client is behind (resume comes
 * back here) or all is out. */
static void series_pump(pcall *p) {
  size_t end = p->nout;
  if (p->limit > 0 && (int64_t)end > p->limit) end = (size_t)p->limit;
  p->sending = true;
  while (p->next < end) {
    int rc = storeapi_call_send_series(p->c, p->out[p->next++]);
    if (rc == ORR_EAGAIN) {
      p->blocked = true;
      return;
    }
    if (rc == ORR_ECANCELED) {
      pcall_finish(p, NET_GRPC_CANCELLED, "cancelled");
      return;
    }
    if (rc) {
      pcall_finish(p, NET_GRPC_RESOURCE_EXHAUSTED, orr_strerror(rc));
      return;
    }
  }
  pcall_finish(p, NET_GRPC_OK, NULL);
}

static void series_done(net_http_client_req *r, int result, void *arg) {
  pcall *p = arg;
  p->req = NULL;
  if (!http_ok(p, r, result)) return;
  if (p->src->req_ok) orr_counter_inc(p->src->req_ok);
  size_t nw = 0;
  const char *const *w = promql_api_reader_warnings(p->rd, &nw);
  for (size_t i = 0; i < nw; i++) {
    char msg[600];
    snprintf(msg, sizeof(msg), "promql endpoint %s: %.500s", p->src->shown, w[i]);
    storeapi_call_send_warning(p->c, msg);
  }
  promql_api_reader_free(p->rd);
  p->rd = NULL;
  qsort(p->out, p->nout, sizeof(*p->out), series_cmp);
  series_pump(p);
}

static void be_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  gw_promql_src *s = arg;
  const Thanos__SeriesRequest *m = req->msg;
  labels_matcher **ms;
  size_t nms;
  if (!storeapi_split_external(&s->ext, req->matchers, req->nmatchers, storeapi_call_arena(c),
                               &ms, &nms)) {
    storeapi_call_finish(c, NET_GRPC_OK, NULL);
    return;
  }
  pcall *p = pcall_new(s, c, m->skip_chunks ? K_SERIES_LIST : K_SERIES,
                       m->skip_chunks ? "series" : "query");
  if (!p) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  p->drop = m->without_replica_labels;
  p->ndrop = m->n_without_replica_labels;
  p->limit = m->limit;
  p->mint = m->min_time;
  p->maxt = m->max_time;
  if (p->maxt < p->mint) {
    pcall_finish(p, NET_GRPC_OK, NULL);
    return;
  }
  orr_buf sel = {0};
  int rc = selector(&sel, ms, nms);
  if (!rc && p->kind == K_SERIES) {
    /* Note 1: {sel}[maxt-mint+1 ms] at maxt, both clamped to what the
     * API takes. */
    int64_t t = clamp_api_time(p->maxt);
    int64_t from = p->mint < t - MAX_RANGE_MS ? t - MAX_RANGE_MS : p->mint;
    orr_buf q = {0};
    orr_buf_append(&q, sel.data, sel.len);
    orr_buf_printf(&q, "[%" PRId64 "ms]", t - from + 1);
    orr_buf_puts(&p->form, "query=");
    rc = q.oom ? ORR_ENOMEM : prom_url_escape(&p->form, q.data);
    orr_buf_free(&q);
    form_time(&p->form, "time", t);
    if (!rc) rc = tsdb_xor_appender_init(&p->xa);
  } else if (!rc) {
    orr_buf_puts(&p->form, "match[]=");
    rc = prom_url_escape(&p->form, sel.data);
    form_time(&p->form, "start", clamp_api_time(p->mint));
    form_time(&p->form, "end", clamp_api_time(p->maxt));
  }
  orr_buf_free(&sel);
  if (!rc) rc = promql_api_reader_new(got_series, p, 0, &p->rd);
  if (!rc) rc = post(p, p->kind == K_SERIES ? "/api/v1/query" : "/api/v1/series");
  if (rc) {
    pcall_finish(p, NET_GRPC_RESOURCE_EXHAUSTED, orr_strerror(rc));
    return;
  }
  net_http_client_req_callbacks(p->req, http_headers, http_body, series_done, p);
  net_http_client_start(p->req);
}

/* ---------------------------------------------------------------- labels */
static void labels_done(net_http_client_req *r, int result, void *arg) {
  pcall *p = arg;
  p->req = NULL;
  if (!http_ok(p, r, result)) return;
  json_t *j = json_loadb(p->body.data ? p->body.data : "", p->body.len, 0, NULL);
  json_t *d = j ? json_object_get(j, "data") : NULL;
  const char *st = json_string_value(json_object_get(j, "status"));
  if (!json_is_array(d) || !st || strcmp(st, "success") != 0) {
    const char *em = json_string_value(json_object_get(j, "error"));
    if (em)
      fail_call(p, NET_GRPC_UNKNOWN, "%.500s", em);
    else
      fail_call(p, NET_GRPC_UNKNOWN, "not a Prometheus API answer: %s", errbody_text(p));
    json_decref(j);
    return;
  }
  if (p->src->req_ok) orr_counter_inc(p->src->req_ok);
  bool names = p->kind == K_LABEL_NAMES;
  const labels_set *ext = &p->src->ext;
  size_t n = json_array_size(d);
  char **v = orr_arena_calloc(p->a, n + ext->n + 1, sizeof(char *));
  if (!v) {
    json_decref(j);
    pcall_finish(p, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *x = json_string_value(json_array_get(d, i));
    if (!x) continue;
    bool drop = false;
    for (size_t w = 0; names && w < p->ndrop; w++) drop |= strcmp(x, p->drop[w]) == 0;
    /* an external label replaces a series label of its name */
    if (names && labels_get(ext, x)) drop = true;
    if (!drop) v[k++] = orr_arena_strdup(p->a, x);
  }
  for (size_t i = 0; names && i < ext->n; i++) {
    bool drop = false;
    for (size_t w = 0; w < p->ndrop; w++) drop |= strcmp(ext->v[i].name, p->drop[w]) == 0;
    if (!drop) v[k++] = (char *)ext->v[i].name;
  }
  json_decref(j);
  for (size_t i = 0; i < k; i++)
    if (!v[i]) {
      pcall_finish(p, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
  storeapi_call *c = p->c;
  int64_t limit = p->limit;
  storeapi_call_set_data(c, NULL);
  orr_buf_free(&p->form);
  orr_buf_free(&p->body);
  free(p);
  storeapi_call_reply_labels(c, names, v, k, limit);
}

static void be_labels(gw_promql_src *s, storeapi_call *c, const storeapi_label_req *req,
                      bool names) {
  labels_matcher **ms;
  size_t nms;
  bool match = storeapi_split_external(&s->ext, req->matchers, req->nmatchers,
                                       storeapi_call_arena(c), &ms, &nms);
  if (storeapi_labels_answer_external(c, req, &s->ext, names, match)) return;
  pcall *p = pcall_new(s, c, names ? K_LABEL_NAMES : K_LABEL_VALUES,
                       names ? "labels" : "label values");
  if (!p) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  p->limit = req->limit;
  p->drop = req->without_replica_labels;
  p->ndrop = req->nwithout;
  orr_buf path = {0};
  if (names)
    orr_buf_puts(&path, "/api/v1/labels");
  else
    orr_buf_printf(&path, "/api/v1/label/%s/values", req->label);
  int rc = 0;
  if (nms) {
    orr_buf sel = {0};
    rc = selector(&sel, ms, nms);
    orr_buf_puts(&p->form, "match[]=");
    if (!rc) rc = prom_url_escape(&p->form, sel.data);
    orr_buf_free(&sel);
  }
  if (req->start || req->end) {
    form_time(&p->form, "start", clamp_api_time(req->start));
    form_time(&p->form, "end", clamp_api_time(req->end));
  }
  if (!rc) rc = path.oom ? ORR_ENOMEM : post(p, path.data);
  orr_buf_free(&path);
  if (rc) {
    pcall_finish(p, NET_GRPC_RESOURCE_EXHAUSTED, orr_strerror(rc));
    return;
  }
  net_http_client_req_callbacks(p->req, http_headers, http_body, labels_done, p);
  net_http_client_start(p->req);
}

static void be_label_names(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  be_labels(arg, c, req, true);
}

static void be_label_values(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  be_labels(arg, c, req, false);
}

/* ---------------------------------------------------------------- aggregation pushdown */
int gw_promql_src_selector_text(const gw_promql_src *s, labels_matcher *const *ms, size_t n,
                                orr_arena *a, orr_buf *out) {
  labels_matcher **rest;
  size_t nrest;
  if (!storeapi_split_external(&s->ext, ms, n, a, &rest, &nrest)) return ORR_ENOTFOUND;
  if (n && !rest) return ORR_ENOMEM;
  return selector(out, rest, nrest);
}

static void aggregate_done(net_http_client_req *r, int result, void *arg) {
  pcall *p = arg;
  p->req = NULL;
  if (!http_ok(p, r, result)) return;
  if (p->src->req_ok) orr_counter_inc(p->src->req_ok);
  size_t nw = 0;
  const char *const *w = promql_api_reader_warnings(p->rd, &nw);
  for (size_t i = 0; i < nw && p->agg_warn; i++) {
    char msg[600];
    snprintf(msg, sizeof(msg), "promql endpoint %s: %.500s", p->src->shown, w[i]);
    p->agg_warn(p->agg_arg, msg);
  }
  pcall_finish(p, NET_GRPC_OK, NULL);
}

int gw_promql_src_query_range(gw_promql_src *s, const char *query, int64_t start, int64_t end,
                              int64_t step, promql_api_series_fn fn,
                              void (*warn)(void *arg, const char *msg),
                              void (*done)(void *arg, int err, const char *msg), void *arg,
                              gw_promql_src_op **out) {
  pcall *p = calloc(1, sizeof(*p));
  if (!p) return ORR_ENOMEM;
  p->src = s;
  p->kind = K_AGGREGATE;
  p->what = "query_range";
  p->agg_series = fn;
  p->agg_done = done;
  p->agg_warn = warn;
  p->agg_arg = arg;
  if (s->pushdowns) orr_counter_inc(s->pushdowns);
  orr_log_debug("aggregation pushed down", "endpoint", s->shown, "query", query, NULL);
  orr_buf_puts(&p->form, "query=");
  int rc = prom_url_escape(&p->form, query);
  form_time(&p->form, "start", start);
  form_time(&p->form, "end", end);
  orr_buf_printf(&p->form, "&step=%" PRId64 ".%03d", step / 1000, (int)(step % 1000));
  if (!rc) rc = promql_api_reader_new(fn, arg, 0, &p->rd);
  if (!rc) rc = post(p, "/api/v1/query_range");
  if (rc) {
    if (p->rd) promql_api_reader_free(p->rd);
    orr_buf_free(&p->form);
    free(p);
    return rc;
  }
  net_http_client_req_callbacks(p->req, http_headers, http_body, aggregate_done, p);
  *out = (gw_promql_src_op *)p;
  net_http_client_start(p->req);
  return 0;
}

void gw_promql_src_op_cancel(gw_promql_src_op *op) {
  pcall *p = (pcall *)op;
  if (p && p->req) net_http_client_cancel(p->req); /* the done callback finishes */
}

/* ---------------------------------------------------------------- cancel, resume */
static void be_cancel(void *arg, storeapi_call *c) {
  (void)arg;
  pcall *p = storeapi_call_data(c);
  if (!p) return;
  if (p->req) {
    net_http_client_cancel(p->req); /* the done callback finishes */
  } else if (p->sending) {
    pcall_finish(p, NET_GRPC_CANCELLED, "cancelled");
  }
}

static void be_resume(void *arg, storeapi_call *c) {
  (void)arg;
  pcall *p = storeapi_call_data(c);
  if (!p || !p->blocked) return;
  p->blocked = false;
  series_pump(p);
}

void gw_promql_src_backend(gw_promql_src *s, storeapi_backend *out) {
  memset(out, 0, sizeof(*out));
  out->info = be_info;
  out->series = be_series;
  out->label_names = be_label_names;
  out->label_values = be_label_values;
  out->cancel = be_cancel;
  out->resume = be_resume;
  out->arg = s;
}

/* ---------------------------------------------------------------- the source kind */
/* "promql+URL[;labels]" (--endpoint.promql, file SD): the backend behind
 * the endpoint's local client (gateway_int.h, gw__source). */
struct promql_kind_src {
  gw__source base;
  gw_promql_src *s;
};

static int kind_check(const char *spec, char *err, size_t errlen) {
  orr_arena *a = orr_arena_new(256);
  if (!a) return ORR_ENOMEM;
  char *url;
  labels_set ext;
  int rc = gw_promql_src_parse(spec, a, &url, &ext, err, errlen);
  orr_arena_destroy(a);
  return rc;
}

/* No call is in flight (the local client closed first): free at once. */
static void kind_close(gw__source *b, void (*done)(void *arg), void *arg) {
  promql_kind_src *k = (promql_kind_src *)b;
  gw_promql_src_free(k->s);
  free(k);
  if (done) done(arg);
}

static int kind_open(gw *g, const char *spec, gw__source **out, char *err, size_t errlen) {
  promql_kind_src *k = calloc(1, sizeof(*k));
  net_http_client *http = gw__http(g);
  if (!k || !http) {
    free(k);
    return ORR_ENOMEM;
  }
  const gw_config *gc = gw__config(g);
  gw_promql_src_config cfg = {spec, http, gc->promql_timeout_ms, gc->registry, gc->http_client};
  int rc = gw_promql_src_new(&cfg, &k->s, err, errlen);
  if (rc) {
    free(k);
    return rc;
  }
  k->base.g = g;
  k->base.close = kind_close;
  gw_promql_src_backend(k->s, &k->base.be);
  *out = &k->base;
  return 0;
}

const gw__source_kind gw__source_promql = {"promql", kind_check, kind_open};

gw_promql_src *gw__promql_src_of(const gw__endpoint *e) {
  if (e->kind != &gw__source_promql || !e->src) return NULL;
  return ((const promql_kind_src *)e->src)->s;
}
