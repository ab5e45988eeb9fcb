/* federate.c: /federate over the global view — the latest sample of
 * every series matching any match[] within the lookback delta, deduplicated,
 * in text format 0.0.4 exactly as Prometheus 2.42's federation handler
 * writes it, so another Prometheus can scrape the gateway. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"

/* ---------------------------------------------------------------- the body */
static int is_stale_nan(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof(b));
  return b == 0x7ff0000000000002ull;
}

static const char *metric_name(const labels_set *s) {
  const char *n = labels_get(s, LABELS_METRIC_NAME);
  return n ? n : "";
}

static int cmp_sample(const void *a, const void *b) {
  const gw_federate_sample *x = a, *y = b;
  int c = strcmp(metric_name(&x->labels), metric_name(&y->labels));
  return c ? c : labels_cmp(&x->labels, &y->labels);
}

/* Label values escaped as the text format wants: \\, \" and \n. */
static void put_label_value(orr_buf *b, const char *v) {
  for (; *v; v++) {
    if (*v == '\\')
      orr_buf_puts(b, "\\\\");
    else if (*v == '"')
      orr_buf_puts(b, "\\\"");
    else if (*v == '\n')
      orr_buf_puts(b, "\\n");
    else
      orr_buf_putc(b, *v);
  }
}

int gw_federate_write(gw_federate_sample *s, size_t n, orr_buf *out) {
  if (n > 1) qsort(s, n, sizeof(*s), cmp_sample);
  const char *last = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *name = metric_name(&s[i].labels);
    if (!*name) continue; /* Prometheus ignores nameless metrics */
    if (!last || strcmp(last, name)) {
      orr_buf_printf(out, "# TYPE %s untyped\n", name);
      last = name;
    }
    orr_buf_puts(out, name);
    /* Series labels in order (empty values are unset), then the external
     * labels the series lacks: Prometheus always counts "instance" among
     * them, with an empty value when not configured. */
    bool has_instance = false;
    size_t k = 0;
    for (size_t j = 0; j < s[i].labels.n; j++) {
      const labels_label *l = &s[i].labels.v[j];
      if (!*l->value || !strcmp(l->name, LABELS_METRIC_NAME)) continue;
      if (!strcmp(l->name, "instance")) has_instance = true;
      orr_buf_puts(out, k++ ? "," : "{");
      orr_buf_puts(out, l->name);
      orr_buf_puts(out, "=\"");
      put_label_value(out, l->value);
      orr_buf_putc(out, '"');
    }
    if (!has_instance) orr_buf_puts(out, k++ ? ",instance=\"\"" : "{instance=\"\"");
    orr_buf_puts(out, "} ");
    char f[64];
    orr_format_float(s[i].v, f, sizeof(f));
    orr_buf_puts(out, f);
    orr_buf_printf(out, " %lld\n", (long long)s[i].t);
  }
  return out->oom ? ORR_ENOMEM : 0;
}

/* ---------------------------------------------------------------- the handler */
typedef struct fed {
  int64_t maxt;
  gw_federate_sample *s;
  size_t n, cap;
} fed;

static int fed_on_series(gw_api__fanout *f, size_t sel, const labels_set *ls,
                         const promql_point *pts, size_t npts) {
  (void)sel;
  fed *op = f->arg;
  /* The latest sample at or before the evaluation time. */
  size_t k = npts;
  while (k > 0 && pts[k - 1].t > op->maxt) k--;
  if (k == 0 || is_stale_nan(pts[k - 1].v)) return 0;
  if (op->n == op->cap) {
    size_t nc = op->cap ? op->cap * 2 : 1024;
    gw_federate_sample *ns = realloc(op->s, nc * sizeof(*ns));
    if (!ns) return ORR_ENOMEM;
    op->s = ns;
    op->cap = nc;
  }
  gw_federate_sample *s = &op->s[op->n];
  if (labels_copy(f->a, ls, &s->labels)) return ORR_ENOMEM;
  s->t = pts[k - 1].t;
  s->v = pts[k - 1].v;
  op->n++;
  return 0;
}

static void fed_finish(gw_api__fanout *f) {
  fed *op = f->arg;
  net_http_req *req = f->req;
  if (f->err || f->cancelled) {
    const char *m = f->err == ORR_ENOMEM ? "out of memory" : f->err ? f->msg : "canceled";
    net_http_respondf(req, 500, "%s\n", m);
  } else {
    /* Several calls may select the same series: keep it once. */
    if (f->ncalls > 1 && op->n > 1) {
      qsort(op->s, op->n, sizeof(*op->s), cmp_sample);
      size_t w = 1;
      for (size_t i = 1; i < op->n; i++)
        if (!labels_equal(&op->s[w - 1].labels, &op->s[i].labels)) op->s[w++] = op->s[i];
      op->n = w;
    }
    orr_buf b = {0};
    if (gw_federate_write(op->s, op->n, &b)) {
      orr_buf_free(&b);
      net_http_respondf(req, 500, "out of memory\n");
    } else {
      net_http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    }
  }
  free(op->s);
  free(op);
  gw_api__fanout_free(f);
}

static const gw_api__fanout_cb fed_cb = {.series = fed_on_series, .finish = fed_finish};

/* A bad match[]: Prometheus answers 400 with the parse error as text. */
static void fed_bad(gw_api__fanout *f, int rc, const char *msg) {
  net_http_req *req = f->req;
  free(f->arg);
  gw_api__fanout_free(f);
  if (rc == ORR_ENOMEM)
    net_http_respondf(req, 500, "out of memory\n");
  else
    net_http_respondf(req, 400, "%s\n", msg);
}

void gw_api__handle_federate(net_http_req *req, void *arg) {
  gw_api *api = arg;
  fed *op = calloc(1, sizeof(*op));
  gw_api__fanout *f = NULL;
  if (!op || gw_api__fanout_new(api, req, &fed_cb, op, &f)) {
    free(op);
    net_http_respondf(req, 500, "out of memory\n");
    return;
  }
  int64_t now = orr_now_ms();
  op->maxt = now;
  gw_select_req sr;
  memset(&sr, 0, sizeof(sr));
  sr.mint = now - api->cfg.lookback_ms;
  sr.maxt = now;
  sr.dedup = true;
  sr.partial_response = -1;
  gw_api__fanout_match_start(f, 0, &sr, NULL, fed_bad);
}
