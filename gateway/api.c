/* api.c: the gateway's Prometheus HTTP API routes — parameter parsing
 * and validation with Prometheus 2.42's messages, /api/v1/series, labels and
 * label values over the fan-out, status endpoints, and the empty bodies
 * Thanos gives for rules, alerts, metadata and exemplars. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gateway_int.h"
#include "web.h"

/* Prometheus's minTime/maxTime in milliseconds (the API's defaults). */
#define GW_MIN_TIME_MS ((int64_t)-9223309901257974 * 1000)
#define GW_MAX_TIME_MS ((int64_t)9223309901257974 * 1000)

/* ================================================================ helpers */
/* Go's strconv.ParseFloat syntax, near enough: no leading space, all consumed. */
static bool parse_go_float(const char *s, double *out) {
  if (!*s || *s == ' ' || *s == '\t' || *s == '\n') return false;
  char *end;
  errno = 0;
  double d = strtod(s, &end);
  if (*end) return false;
  if (errno == ERANGE && !isinf(d)) d = 0; /* underflow: Go gives the denormal/0 */
  *out = d;
  return true;
}

/* Go's int64(f) on amd64: NaN and values out of range give INT64_MIN. */
static int64_t go_int64(double f) {
  if (isnan(f) || f >= 9223372036854775808.0 || f < -9223372036854775808.0) return INT64_MIN;
  return (int64_t)f;
}

/* Two's-complement wrapping as Go's int64 arithmetic (C's signed overflow is
 * undefined, so go through uint64). */
static int64_t wrap64(uint64_t u) { return u > (uint64_t)INT64_MAX ? -(int64_t)(~u) - 1 : (int64_t)u; }

/* A float timestamp as Prometheus's parseTime makes it a time.Time:
 * math.Modf, the fraction rounded to ms, int64 conversions (Modf(±Inf) is
 * (±Inf, NaN)), then time.Unix's normalisation, all wrapping. */
static void go_unix_time(double t, int64_t *sec, int64_t *nsec) {
  double ip, frac;
  if (isinf(t)) {
    ip = t;
    frac = NAN;
  } else {
    frac = modf(t, &ip); /* NaN: both NaN */
  }
  frac = round(frac * 1000) / 1000;
  int64_t s = go_int64(ip), ns = go_int64(frac * 1e9);
  if (ns < 0 || ns >= 1000000000) {
    int64_t n = ns / 1000000000;
    s = wrap64((uint64_t)s + (uint64_t)n);
    ns -= n * 1000000000;
    if (ns < 0) {
      ns += 1000000000;
      s = wrap64((uint64_t)s - 1);
    }
  }
  *sec = s;
  *nsec = ns;
}

/* Prometheus accepts any float (NaN, ±Inf, 1e18) as a timestamp. A query
 * evaluates at t.UnixNano()/1e6 (timeMilliseconds, wrapping in int64 beyond
 * the year 2262), so time=1e18 evaluates at -6930898827.444 and NaN or Inf
 * at -9223372036.854 there too. */
static int parse_time_as(const char *s, bool from_time, int64_t *ms) {
  if (!s || !*s) return ORR_EINVAL;
  double f;
  if (parse_go_float(s, &f) && !(errno == ERANGE && isinf(f))) {
    int64_t sec, ns;
    go_unix_time(f, &sec, &ns);
    *ms = from_time ? wrap64((uint64_t)sec * 1000u + (uint64_t)(ns / 1000000))
                    : wrap64((uint64_t)sec * 1000000000u + (uint64_t)ns) / 1000000;
    return 0;
  }
  return orr_parse_time(s, ms) == 0 ? 0 : ORR_EINVAL;
}

int gw_api__parse_time(const char *s, int64_t *ms) { return parse_time_as(s, false, ms); }

/* The same for /series and /labels, which take timestamp.FromTime(t):
 * t.Unix()*1000 + ms of the nanoseconds, wrapping. */
static int parse_time_from_time(const char *s, int64_t *ms) { return parse_time_as(s, true, ms); }

int gw_api__parse_duration_ns(const char *s, int64_t *ns, bool *overflow) {
  *overflow = false;
  double d;
  if (s && parse_go_float(s, &d)) {
    double t = d * 1e9;
    if (t > 9223372036854775807.0 || t < -9223372036854775808.0) {
      *overflow = true;
      return ORR_EINVAL;
    }
    *ns = isnan(t) ? INT64_MIN : (int64_t)t;
    return 0;
  }
  int64_t ms;
  if (s && *s && orr_parse_duration(s, strlen(s), &ms) == 0) {
    if (ms > INT64_MAX / 1000000) {
      *overflow = true;
      return ORR_EINVAL;
    }
    *ns = ms * 1000000;
    return 0;
  }
  return ORR_EINVAL;
}

int gw_api__parse_bool(const char *s, bool *out) {
  static const char *t[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *f[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (size_t i = 0; i < 6; i++) {
    if (!strcmp(s, t[i])) return *out = true, 0;
    if (!strcmp(s, f[i])) return *out = false, 0;
  }
  return ORR_EINVAL;
}

void gw_api__quote(orr_buf *b, const char *s) {
  orr_buf_putc(b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': orr_buf_puts(b, "\\\""); break;
      case '\\': orr_buf_puts(b, "\\\\"); break;
      case '\a': orr_buf_puts(b, "\\a"); break;
      case '\b': orr_buf_puts(b, "\\b"); break;
      case '\f': orr_buf_puts(b, "\\f"); break;
      case '\n': orr_buf_puts(b, "\\n"); break;
      case '\r': orr_buf_puts(b, "\\r"); break;
      case '\t': orr_buf_puts(b, "\\t"); break;
      case '\v': orr_buf_puts(b, "\\v"); break;
      default:
        if (*p < 0x20 || *p == 0x7f)
          orr_buf_printf(b, "\\x%02x", *p);
        else
          orr_buf_putc(b, (char)*p);
    }
  }
  orr_buf_putc(b, '"');
}

void gw_api__errorf(net_http_req *req, const char *type, const char *fmt, ...) {
  orr_buf m = {0};
  va_list ap;
  va_start(ap, fmt);
  orr_buf_vprintf(&m, fmt, ap);
  va_end(ap);
  net_http_respond_api_error(req, type, m.oom ? "out of memory" : (m.data ? m.data : ""));
  orr_buf_free(&m);
}

/* A time parameter with a default, as parseTimeParam. Responds on error. */
static int time_param(net_http_req *req, const char *name, int64_t def, int64_t *out) {
  const char *v = net_http_req_param(req, name);
  if (!v || !*v) {
    *out = def;
    return 0;
  }
  if (parse_time_from_time(v, out)) {
    orr_buf q = {0};
    gw_api__quote(&q, v);
    gw_api__errorf(req, "bad_data",
                   "invalid parameter \"%s\": Invalid time value for '%s': cannot parse %s to a "
                   "valid timestamp",
                   name, name, q.data ? q.data : "\"\"");
    orr_buf_free(&q);
    return ORR_EINVAL;
  }
  return 0;
}

/* Thanos's dedup and partial_response parameters. Responds on error. */
int gw_api__thanos_params(gw_api *api, net_http_req *req, bool *dedup, int *partial) {
  *dedup = true;
  *partial = api->cfg.partial_response ? 1 : 0;
  const char *names[] = {"dedup", "partial_response"};
  for (int i = 0; i < 2; i++) {
    const char *v = net_http_req_param(req, names[i]);
    if (!v || !*v) continue;
    bool b;
    if (gw_api__parse_bool(v, &b)) {
      orr_buf q = {0};
      gw_api__quote(&q, v);
      gw_api__errorf(req, "bad_data", "'%s' parameter: strconv.ParseBool: parsing %s: invalid syntax",
                     names[i], q.data ? q.data : "\"\"");
      orr_buf_free(&q);
      return ORR_EINVAL;
    }
    if (i == 0)
      *dedup = b;
    else
      *partial = b ? 1 : 0;
  }
  return 0;
}

/* Thanos's max_source_resolution: a duration, or "auto" (and, with
 * --query.auto-downsampling, no value) for |auto_ms|; "raw" is taken as 0s
 * too. Responds on error. */
int gw_api__max_source_resolution(gw_api *api, net_http_req *req, int64_t auto_ms,
                                  int64_t *out_ms) {
  static const char name[] = "max_source_resolution";
  const char *v = net_http_req_param(req, name);
  bool given = v && *v;
  *out_ms = 0;
  if (api->cfg.auto_downsampling || (given && !strcmp(v, "auto"))) *out_ms = auto_ms;
  if (!given || !strcmp(v, "auto") || !strcmp(v, "raw")) return 0;
  int64_t ns;
  bool ovf;
  if (gw_api__parse_duration_ns(v, &ns, &ovf)) {
    orr_buf q = {0};
    gw_api__quote(&q, v);
    gw_api__errorf(req, "bad_data", "'%s' parameter: cannot parse %s to a valid duration%s", name,
                   q.data ? q.data : "\"\"", ovf ? ". It overflows int64" : "");
    orr_buf_free(&q);
    return ORR_EINVAL;
  }
  if (ns < 0) {
    gw_api__errorf(req, "bad_data", "negative '%s' is not accepted. Try a positive integer", name);
    return ORR_EINVAL;
  }
  *out_ms = ns / 1000000;
  return 0;
}

static void respond_json(net_http_req *req, orr_buf *b) {
  if (b->oom) {
    orr_buf_free(b);
    net_http_respond_api_error(req, "internal", "out of memory");
    return;
  }
  net_http_respond_buf(req, 200, "application/json", b);
}

static void write_warnings(orr_buf *b, const char *const *w, size_t n) {
  if (!n) return;
  orr_buf_puts(b, ",\"warnings\":[");
  for (size_t i = 0; i < n; i++) {
    orr_buf_puts(b, i ? ",\"" : "\"");
    orr_buf_json_escape(b, w[i], strlen(w[i]));
    orr_buf_putc(b, '"');
  }
  orr_buf_putc(b, ']');
}

/* ================================================================ series */
/* /api/v1/series and the labels APIs keep what the fan-out yields in
 * growable arrays, then sort, deduplicate and answer. */
typedef struct collect {
  labels_set *sets; /* series */
  size_t nsets, cap;
  const char **vals; /* labels */
  size_t nvals, vcap;
} collect;

/* Responds with the fan-out's error as the API's JSON. */
static void respond_fanout_error(gw_api__fanout *f) {
  int err = f->err ? f->err : ORR_ECANCELED;
  const char *msg = f->err ? f->msg : "canceled";
  if (err == ORR_ENOMEM)
    net_http_respond_api_error(f->req, "internal", "out of memory");
  else if (err == ORR_ETIMEOUT)
    net_http_respond_api_error(f->req, "timeout", msg);
  else if (err == ORR_ECANCELED)
    net_http_respond_api_error(f->req, "canceled", msg);
  else
    net_http_respond_api_error(f->req, "execution", msg);
}

/* Closes the data array of |b| (NULL: the error was answered), adds the
 * warnings, answers, and frees the request. */
static void collect_end(gw_api__fanout *f, orr_buf *b) {
  if (b) {
    orr_buf_putc(b, ']');
    write_warnings(b, f->warnings, f->nwarnings);
    orr_buf_putc(b, '}');
    respond_json(f->req, b);
  }
  collect *c = f->arg;
  free(c->sets);
  free(c->vals);
  free(c);
  gw_api__fanout_free(f);
}

static int series_on_series(gw_api__fanout *f, size_t sel, const labels_set *ls,
                            const promql_point *pts, size_t npts) {
  (void)sel;
  (void)pts;
  (void)npts;
  collect *c = f->arg;
  if (c->nsets == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 256;
    labels_set *ns = realloc(c->sets, nc * sizeof(*ns));
    if (!ns) return ORR_ENOMEM;
    c->sets = ns;
    c->cap = nc;
  }
  if (labels_copy(f->a, ls, &c->sets[c->nsets])) return ORR_ENOMEM;
  c->nsets++;
  return 0;
}

static int cmp_sets(const void *a, const void *b) { return labels_cmp(a, b); }

static void series_finish(gw_api__fanout *f) {
  collect *c = f->arg;
  if (f->err || f->cancelled) {
    respond_fanout_error(f);
  } else {
    /* Several calls may yield the same series: keep it once. */
    if (f->ncalls > 1 && c->nsets > 1) {
      qsort(c->sets, c->nsets, sizeof(*c->sets), cmp_sets);
      size_t w = 1;
      for (size_t i = 1; i < c->nsets; i++)
        if (!labels_equal(&c->sets[w - 1], &c->sets[i])) c->sets[w++] = c->sets[i];
      c->nsets = w;
    }
    orr_buf b = {0};
    orr_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
    for (size_t i = 0; i < c->nsets; i++) {
      orr_buf_puts(&b, i ? ",{" : "{");
      const labels_set *s = &c->sets[i];
      for (size_t j = 0; j < s->n; j++) {
        orr_buf_puts(&b, j ? ",\"" : "\"");
        orr_buf_json_escape(&b, s->v[j].name, strlen(s->v[j].name));
        orr_buf_puts(&b, "\":\"");
        orr_buf_json_escape(&b, s->v[j].value, strlen(s->v[j].value));
        orr_buf_putc(&b, '"');
      }
      orr_buf_putc(&b, '}');
    }
    collect_end(f, &b);
    return;
  }
  collect_end(f, NULL);
}

static const gw_api__fanout_cb series_cb = {.series = series_on_series, .finish = series_finish};

/* The parameters series and labels share (start, end, dedup,
 * partial_response; match[] is gw_api__fanout_match_start's) and a fan-out
 * with a collect as its argument. Responds on error and returns NULL. */
static gw_api__fanout *begin(gw_api *api, net_http_req *req, const gw_api__fanout_cb *cb,
                             int64_t *start, int64_t *end, bool *dedup, int *partial) {
  if (time_param(req, "start", GW_MIN_TIME_MS, start) ||
      time_param(req, "end", GW_MAX_TIME_MS, end) ||
      gw_api__thanos_params(api, req, dedup, partial))
    return NULL;
  collect *c = calloc(1, sizeof(*c));
  gw_api__fanout *f = NULL;
  if (!c || gw_api__fanout_new(api, req, cb, c, &f)) {
    free(c);
    net_http_respond_api_error(req, "internal", "out of memory");
    return NULL;
  }
  return f;
}

static void drop_fanout(gw_api__fanout *f) {
  free(f->arg);
  gw_api__fanout_free(f);
}

/* A bad match[] (or no memory to plan): Prometheus's error, then free. */
static void bad_match(gw_api__fanout *f, int rc, const char *msg) {
  net_http_req *req = f->req;
  drop_fanout(f);
  if (rc == ORR_ENOMEM)
    net_http_respond_api_error(req, "internal", "out of memory");
  else
    net_http_respond_api_error(req, "bad_data", msg);
}

static void handle_series(net_http_req *req, void *arg) {
  gw_api *api = arg;
  size_t np;
  const net_http_kv *kv = net_http_req_params(req, &np);
  bool any = false;
  for (size_t i = 0; i < np && !any; i++) any = !strcmp(kv[i].name, "match[]");
  if (!any) {
    net_http_respond_api_error(req, "bad_data", "no match[] parameter provided");
    return;
  }
  int64_t start, end;
  bool dedup;
  int partial;
  gw_api__fanout *f = begin(api, req, &series_cb, &start, &end, &dedup, &partial);
  if (!f) return;
  gw_select_req sr;
  memset(&sr, 0, sizeof(sr));
  sr.mint = start;
  sr.maxt = end;
  sr.func = "series";
  sr.skip_chunks = true;
  sr.dedup = dedup;
  sr.partial_response = partial;
  gw_api__fanout_match_start(f, GW_MATCH_PREFIX | GW_MATCH_NONEMPTY, &sr, NULL, bad_match);
}

/* ================================================================ labels */
static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int labels_on_values(gw_api__fanout *f, const char *const *values, size_t n) {
  collect *c = f->arg;
  if (c->nvals + n > c->vcap) {
    size_t nc = c->vcap ? c->vcap : 64;
    while (nc < c->nvals + n) nc *= 2;
    const char **nv = realloc(c->vals, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    c->vals = nv;
    c->vcap = nc;
  }
  for (size_t i = 0; i < n; i++)
    if (!(c->vals[c->nvals++] = orr_arena_strdup(f->a, values[i]))) return ORR_ENOMEM;
  return 0;
}

static void labels_finish(gw_api__fanout *f) {
  collect *c = f->arg;
  if (f->err || f->cancelled) {
    respond_fanout_error(f);
  } else {
    if (c->nvals > 1) {
      qsort(c->vals, c->nvals, sizeof(*c->vals), cmp_str);
      size_t w = 1;
      for (size_t i = 1; i < c->nvals; i++)
        if (strcmp(c->vals[w - 1], c->vals[i])) c->vals[w++] = c->vals[i];
      c->nvals = w;
    }
    orr_buf b = {0};
    orr_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
    for (size_t i = 0; i < c->nvals; i++) {
      orr_buf_puts(&b, i ? ",\"" : "\"");
      orr_buf_json_escape(&b, c->vals[i], strlen(c->vals[i]));
      orr_buf_putc(&b, '"');
    }
    collect_end(f, &b);
    return;
  }
  collect_end(f, NULL);
}

static const gw_api__fanout_cb labels_cb = {.values = labels_on_values, .finish = labels_finish};

static void labels_common(gw_api *api, net_http_req *req, const char *name) {
  int64_t start, end;
  bool dedup;
  int partial;
  gw_api__fanout *f = begin(api, req, &labels_cb, &start, &end, &dedup, &partial);
  if (!f) return;
  gw_labels_req lr;
  memset(&lr, 0, sizeof(lr));
  lr.name = name ? orr_arena_strdup(f->a, name) : NULL;
  lr.start = start;
  lr.end = end;
  lr.dedup = dedup;
  lr.partial_response = partial;
  if (name && !lr.name) {
    drop_fanout(f);
    net_http_respond_api_error(req, "internal", "out of memory");
    return;
  }
  /* 2.42's labels APIs report match[] errors without the parameter's name. */
  gw_api__fanout_match_start(f, GW_MATCH_NONEMPTY, NULL, &lr, bad_match);
}

static void handle_labels(net_http_req *req, void *arg) { labels_common(arg, req, NULL); }

static void handle_label_values(net_http_req *req, void *arg) {
  const char *name = net_http_req_var(req, "name");
  if (!name) name = "";
  if (!labels_valid_name(name, strlen(name))) {
    orr_buf q = {0};
    gw_api__quote(&q, name);
    gw_api__errorf(req, "bad_data", "invalid label name: %s", q.data ? q.data : "\"\"");
    orr_buf_free(&q);
    return;
  }
  labels_common(arg, req, name);
}

/* ================================================================ status */
static void handle_buildinfo(net_http_req *req, void *arg) {
  (void)arg;
  const cli_build_info *b = cli_build();
  const char *keys[] = {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"};
  const char *vals[] = {b->version, b->revision, b->branch, b->build_user, b->build_date,
                        b->compiler};
  orr_buf out = {0};
  orr_buf_puts(&out, "{\"status\":\"success\",\"data\":{");
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    orr_buf_printf(&out, "%s\"%s\":\"", i ? "," : "", keys[i]);
    orr_buf_json_escape(&out, vals[i], strlen(vals[i]));
    orr_buf_putc(&out, '"');
  }
  orr_buf_puts(&out, "}}");
  respond_json(req, &out);
}

typedef struct flag_kv {
  const char *name;
  char *value;
} flag_kv;

static int cmp_flag(const void *a, const void *b) {
  return strcmp(((const flag_kv *)a)->name, ((const flag_kv *)b)->name);
}

static char *flag_value(orr_arena *a, const orr_flag *f) {
  char d[64];
  switch (f->type) {
    case ORR_FLAG_STRING: {
      const char *s = *(const char **)f->dst;
      return orr_arena_strdup(a, s ? s : "");
    }
    case ORR_FLAG_SECRET: { /* as Prometheus shows a secret */
      const char *s = *(const char **)f->dst;
      return orr_arena_strdup(a, s && *s ? "<secret>" : "");
    }
    case ORR_FLAG_BOOL: return orr_arena_strdup(a, *(int *)f->dst ? "true" : "false");
    case ORR_FLAG_INT:
    case ORR_FLAG_BYTES: return orr_arena_sprintf(a, "%lld", (long long)*(int64_t *)f->dst);
    case ORR_FLAG_DURATION:
      return orr_arena_strdup(a, orr_format_duration(*(int64_t *)f->dst, d, sizeof(d)));
    case ORR_FLAG_FLOAT: orr_format_float(*(double *)f->dst, d, sizeof(d)); return orr_arena_strdup(a, d);
    case ORR_FLAG_STRINGS: {
      /* As kingpin's accumulator prints a []string: "[a b]". */
      const orr_strings *s = f->dst;
      orr_buf b = {0};
      orr_buf_putc(&b, '[');
      for (size_t i = 0; i < s->n; i++) {
        if (i) orr_buf_putc(&b, ' ');
        /* A password in a source URL (--endpoint.prometheus=http://u:p@h)
         * shows as xxxxx, as Go's URL.Redacted. */
        size_t n = strlen(s->v[i]) + 1; /* the redacted form is never longer */
        char *red = orr_arena_alloc(a, n);
        orr_buf_puts(&b, red ? net_url_redacted(s->v[i], red, n) : "");
      }
      orr_buf_putc(&b, ']');
      char *r = b.oom ? NULL : orr_arena_strdup(a, b.data);
      orr_buf_free(&b);
      return r;
    }
  }
  return orr_arena_strdup(a, "");
}

static void handle_flags(net_http_req *req, void *arg) {
  gw_api *api = arg;
  orr_arena *a = net_http_req_arena(req);
  const cli_common *c = cli_common_options();
  size_t nf = 0;
  for (const orr_flag *f = api->cfg.flags; f && f->name; f++) nf++;
  flag_kv *kv = orr_arena_calloc(a, nf + 7, sizeof(*kv));
  if (!kv) {
    net_http_respond_api_error(req, "internal", "out of memory");
    return;
  }
  size_t n = 0;
  char d[64];
  static const char *levels[] = {"debug", "info", "warn", "error"};
  kv[n++] = (flag_kv){"log.level", (char *)levels[c->log_level & 3]};
  kv[n++] = (flag_kv){"log.format", (char *)(c->log_format == ORR_LOG_JSON ? "json" : "logfmt")};
  kv[n++] = (flag_kv){"http-address", (char *)(c->http_address ? c->http_address : "")};
  kv[n++] = (flag_kv){"http.config", (char *)(c->http_config ? c->http_config : "")};
  kv[n++] = (flag_kv){"http-grace-period",
                      orr_arena_strdup(a, orr_format_duration(c->http_grace_period_ms, d, sizeof(d)))};
  kv[n++] = (flag_kv){"grpc-address", (char *)(c->grpc_address ? c->grpc_address : "")};
  kv[n++] = (flag_kv){"grpc-grace-period",
                      orr_arena_strdup(a, orr_format_duration(c->grpc_grace_period_ms, d, sizeof(d)))};
  for (const orr_flag *f = api->cfg.flags; f && f->name; f++)
    kv[n++] = (flag_kv){f->name, flag_value(a, f)};
  qsort(kv, n, sizeof(*kv), cmp_flag);
  orr_buf b = {0};
  orr_buf_puts(&b, "{\"status\":\"success\",\"data\":{");
  for (size_t i = 0; i < n; i++) {
    const char *v = kv[i].value ? kv[i].value : "";
    orr_buf_puts(&b, i ? ",\"" : "\"");
    orr_buf_json_escape(&b, kv[i].name, strlen(kv[i].name));
    orr_buf_puts(&b, "\":\"");
    orr_buf_json_escape(&b, v, strlen(v));
    orr_buf_putc(&b, '"');
  }
  orr_buf_puts(&b, "}}");
  respond_json(req, &b);
}

static void handle_stores(net_http_req *req, void *arg) {
  gw_api *api = arg;
  orr_buf b = {0};
  if (gw_endpoints_json(api->cfg.core, &b)) b.oom = 1;
  respond_json(req, &b);
}

/* Bodies Thanos's querier gives when it has no rules, alerts, metadata or
 * exemplars to show (Grafana calls some of these). */
static void handle_empty(net_http_req *req, void *arg) {
  const char *body = arg;
  net_http_respond(req, 200, "application/json", body, strlen(body));
}

/* ================================================================ registration */
int gw_api_register(net_http_router *r, const gw_api_config *cfg, gw_api **out) {
  gw_api *api = calloc(1, sizeof(*api));
  if (!api) return ORR_ENOMEM;
  api->cfg = *cfg;
  if (api->cfg.timeout_ms <= 0) api->cfg.timeout_ms = PROMQL_DEFAULT_TIMEOUT_MS;
  if (api->cfg.max_samples <= 0) api->cfg.max_samples = PROMQL_DEFAULT_MAX_SAMPLES;
  if (api->cfg.lookback_ms <= 0) api->cfg.lookback_ms = PROMQL_DEFAULT_LOOKBACK_MS;
  if (api->cfg.max_concurrent <= 0) api->cfg.max_concurrent = 20;
  const unsigned gp = NET_HTTP_GET | NET_HTTP_POST;
  static const char rules[] = "{\"status\":\"success\",\"data\":{\"groups\":[]}}";
  static const char alerts[] = "{\"status\":\"success\",\"data\":{\"alerts\":[]}}";
  static const char metadata[] = "{\"status\":\"success\",\"data\":{}}";
  static const char exemplars[] = "{\"status\":\"success\",\"data\":[]}";
  struct {
    unsigned m;
    const char *pattern, *name;
    net_http_handler h;
    void *arg;
  } routes[] = {
      {gp, "/api/v1/query", "query", gw_api__handle_query, api},
      {gp, "/api/v1/query_range", "query_range", gw_api__handle_query_range, api},
      {gp, "/api/v1/series", "series", handle_series, api},
      {gp, "/api/v1/labels", "labels", handle_labels, api},
      {NET_HTTP_GET, "/api/v1/label/:name/values", "label_values", handle_label_values, api},
      {gp, "/api/v1/status/buildinfo", "buildinfo", handle_buildinfo, api},
      {NET_HTTP_GET, "/api/v1/status/flags", "flags", handle_flags, api},
      {NET_HTTP_GET, "/api/v1/stores", "stores", handle_stores, api},
      {gp, "/api/v1/query_exemplars", "query_exemplars", handle_empty, (void *)exemplars},
      {NET_HTTP_GET, "/api/v1/metadata", "metadata", handle_empty, (void *)metadata},
      {NET_HTTP_GET, "/api/v1/rules", "rules", handle_empty, (void *)rules},
      {NET_HTTP_GET, "/api/v1/alerts", "alerts", handle_empty, (void *)alerts},
      {gp, "/federate", "federate", gw_api__handle_federate, api},
  };
  const char *prefix = cfg->route_prefix ? cfg->route_prefix : "";
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
    char pat[WEB_PREFIX_MAX + 64];
    snprintf(pat, sizeof(pat), "%s%s", prefix, routes[i].pattern);
    int rc = net_http_router_add(r, routes[i].m, pat, routes[i].name, routes[i].h, routes[i].arg);
    if (rc) {
      free(api);
      return rc;
    }
  }
  *out = api;
  return 0;
}

void gw_api_free(gw_api *api) { free(api); }
