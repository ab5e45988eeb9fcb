/* fanout.c: one HTTP request's fan-out, shared by /api/v1/series, the
 * labels APIs, /federate and PromQL — admission under
 * --query.max-concurrent, the request's gw_select/gw_labels calls (match[]
 * selectors unioned where that is exact), a bounded number of them in
 * flight, the first error, cancel-all on error or when the client leaves,
 * and the request's arena.
 *
 * NOTES ON THE DESIGN
 * 1. States: QUEUED (over --query.max-concurrent, FIFO) → RUNNING (calls
 *    started at most GW_FANOUT_PARALLEL at a time, in order) → FINISHED
 *    (cb->finish ran, exactly once) → freed by the owner with
 *    gw_api__fanout_free(), which gives the slot back. The PromQL path
 *    frees only after evaluating, so the slot covers evaluation too.
 * 2. match[] selectors are planned into calls (plan()): selectors whose
 *    matchers are equal but for one equality matcher on the same label are
 *    unioned into one call whose matcher on that label is an alternation
 *    of the (regex-quoted) literals. That is exact — {L="a",R} ∪ {L="b",R}
 *    is {L=~"a|b",R}, also for "" (absent) — so nothing needs filtering
 *    afterwards, and an alternation of literals is a set lookup here, in
 *    Prometheus and in Thanos. Batches hold at most GW_FANOUT_BATCH_VALUES
 *    literals: 50,000 `up{instance="…"}` become 49 calls, not 50,000
 *    fan-outs each with its own merge.
 * 3. The first error cancels every select in flight and starts no more
 *    calls; cb->finish sees it in f->err / f->msg. The client leaving does
 *    the same with f->gone set, then cb->gone (the owner's own cleanup).
 * 4. Every call's deadline is the request's: arrival + timeout.
 * 5. A request that used more than GW_FANOUT_TRIM_BYTES or many calls
 *    gives the freed heap back to the system once the gateway is quiet
 *    (gw__trim_soon; admitted requests count as busy, gw__busy).
 * 6. More than GW_FANOUT_INLINE_MATCH match[] selectors are parsed and
 *    planned on a worker thread (gw_api__fanout_match_start): 50,000 of
 *    them took the loop for about half a second (seconds under ASan),
 *    during which no other request was served. The worker touches only
 *    the fan-out's arena, ASTs, calls and owned matchers, which nothing on
 *    the loop reads before the start (a client leaving meanwhile cancels
 *    no call: none has started). Up to that many, the thread hop (~0.1 ms)
 *    would cost more than it frees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"

#define GW_FANOUT_PARALLEL 8
#define GW_FANOUT_BATCH_VALUES 1024
#define GW_FANOUT_TRIM_BYTES ((size_t)16 << 20)
#define GW_FANOUT_INLINE_MATCH 64

typedef struct gw_api__fcall {
  gw_api__fanout *f;
  size_t sel;
  bool labels;
  gw_select_req sr;
  gw_labels_req lr;
  gw_op *op; /* a select in flight */
} gw_api__fcall;

/* ---------------------------------------------------------------- lifecycle */
static void on_gone(net_http_req *req, void *arg) {
  (void)req;
  gw_api__fanout *f = arg;
  f->gone = true;
  gw_api__fanout_cancel(f);
  if (f->cb->gone) f->cb->gone(f);
}

int gw_api__fanout_new(gw_api *api, net_http_req *req, const gw_api__fanout_cb *cb, void *arg,
                       gw_api__fanout **out) {
  gw_api__fanout *f = calloc(1, sizeof(*f));
  if (!f) return ORR_ENOMEM;
  if (!(f->a = orr_arena_new(0))) {
    free(f);
    return ORR_ENOMEM;
  }
  f->api = api;
  f->req = req;
  f->cb = cb;
  f->arg = arg;
  f->deadline_ns = net_http_req_start_ns(req) + (uint64_t)api->cfg.timeout_ms * 1000000u;
  net_http_req_on_gone(req, on_gone, f);
  if (net_http_req_gone(req)) f->gone = f->cancelled = true;
  *out = f;
  return 0;
}

static void release_slot(gw_api *api) {
  api->running--;
  gw__busy(api->cfg.core, -1);
  while (api->wait_head && api->running < api->cfg.max_concurrent) {
    gw_api__fanout *w = api->wait_head;
    api->wait_head = w->wnext;
    if (!api->wait_head) api->wait_tail = NULL;
    w->queued = false;
    w->counted = true;
    api->running++;
    gw__busy(api->cfg.core, 1);
    gw_api__fanout_start(w);
  }
}

void gw_api__fanout_free(gw_api__fanout *f) {
  if (!f) return;
  if (f->queued) { /* never admitted: leave the queue */
    gw_api__fanout **pp = &f->api->wait_head, *prev = NULL;
    while (*pp && *pp != f) prev = *pp, pp = &(*pp)->wnext;
    if (*pp) {
      *pp = f->wnext;
      if (f->api->wait_tail == f) f->api->wait_tail = prev;
    }
  }
  bool trim = orr_arena_reserved(f->a) > GW_FANOUT_TRIM_BYTES || f->nasts > 1024;
  for (size_t i = 0; i < f->nasts; i++) promql_ast_free(f->asts[i]);
  for (size_t i = 0; i < f->nowned; i++) labels_matcher_free(f->owned[i]);
  free(f->owned);
  free(f->calls);
  gw_api *api = f->api;
  bool counted = f->counted;
  orr_arena_destroy(f->a);
  free(f);
  if (trim) gw__trim_soon(api->cfg.core);
  if (counted) release_slot(api);
}

/* ---------------------------------------------------------------- errors */
int gw_api__fanout_warn(gw_api__fanout *f, const char *msg) {
  for (size_t i = 0; i < f->nwarnings; i++)
    if (!strcmp(f->warnings[i], msg)) return 0;
  if (f->nwarnings == f->wcap) {
    size_t nc = f->wcap ? f->wcap * 2 : 8;
    const char **nw = orr_arena_alloc(f->a, nc * sizeof(*nw));
    if (!nw) return ORR_ENOMEM;
    if (f->nwarnings) memcpy(nw, f->warnings, f->nwarnings * sizeof(*nw));
    f->warnings = nw;
    f->wcap = nc;
  }
  if (!(f->warnings[f->nwarnings] = orr_arena_strdup(f->a, msg))) return ORR_ENOMEM;
  f->nwarnings++;
  return 0;
}

static void cancel_running(gw_api__fanout *f) {
  for (size_t i = 0; i < f->next; i++)
    if (f->calls[i].op) gw_op_cancel(f->calls[i].op);
}

void gw_api__fanout_fail(gw_api__fanout *f, int err, const char *msg) {
  if (f->err) return;
  f->err = err;
  snprintf(f->msg, sizeof(f->msg), "%s", msg && *msg ? msg : orr_strerror(err));
  cancel_running(f);
}

void gw_api__fanout_cancel(gw_api__fanout *f) {
  f->cancelled = true;
  cancel_running(f);
}

/* ---------------------------------------------------------------- calls */
static gw_api__fcall *add_call(gw_api__fanout *f) {
  if (f->ncalls == f->capcalls) {
    size_t nc = f->capcalls ? f->capcalls * 2 : 8;
    gw_api__fcall *v = realloc(f->calls, nc * sizeof(*v));
    if (!v) return NULL;
    f->calls = v;
    f->capcalls = nc;
  }
  gw_api__fcall *c = &f->calls[f->ncalls++];
  memset(c, 0, sizeof(*c));
  c->f = f;
  return c;
}

int gw_api__fanout_select(gw_api__fanout *f, const gw_select_req *r, size_t sel) {
  if (f->next) return ORR_EINVAL; /* calls are added before any starts */
  gw_api__fcall *c = add_call(f);
  if (!c) return ORR_ENOMEM;
  c->sr = *r;
  c->sel = sel;
  return 0;
}

int gw_api__fanout_labels(gw_api__fanout *f, const gw_labels_req *r) {
  if (f->next) return ORR_EINVAL;
  gw_api__fcall *c = add_call(f);
  if (!c) return ORR_ENOMEM;
  c->lr = *r;
  c->labels = true;
  return 0;
}

static void pump(gw_api__fanout *f);

static void call_ended(gw_api__fcall *c, int err, const char *msg) {
  gw_api__fanout *f = c->f;
  c->op = NULL;
  f->running--;
  /* A select we cancelled ends ECANCELED: not an error of its own. */
  if (err && (err != ORR_ECANCELED || !f->cancelled)) gw_api__fanout_fail(f, err, msg);
  if (f->err) cancel_running(f); /* also after a callback's own error */
  pump(f);
}

static int sel_series(void *arg, const labels_set *ls, const promql_point *pts, size_t n) {
  gw_api__fcall *c = arg;
  gw_api__fanout *f = c->f;
  if (f->err) return f->err;
  if (f->cancelled) return ORR_ECANCELED;
  int rc = f->cb->series ? f->cb->series(f, c->sel, ls, pts, n) : 0;
  if (rc && !f->err && rc != ORR_ECANCELED) {
    f->err = rc;
    snprintf(f->msg, sizeof(f->msg), "%s", orr_strerror(rc));
  }
  return rc;
}

static void sel_warning(void *arg, const char *msg) {
  gw_api__fcall *c = arg;
  gw_api__fanout *f = c->f;
  if (f->cb->warning) f->cb->warning(f, msg);
  else if (gw_api__fanout_warn(f, msg) && !f->err) f->err = ORR_ENOMEM;
}

static void sel_done(void *arg, int err, const char *msg) { call_ended(arg, err, msg); }

static void labels_done(void *arg, int err, const char *msg, const char *const *values, size_t n,
                        const char *const *warnings, size_t nw) {
  gw_api__fcall *c = arg;
  gw_api__fanout *f = c->f;
  if (!err && !f->err && !f->cancelled) {
    for (size_t i = 0; i < nw; i++) sel_warning(c, warnings[i]);
    int rc = f->cb->values ? f->cb->values(f, values, n) : 0;
    if (rc && !f->err) f->err = rc;
  }
  call_ended(c, err, msg);
}

/* Starts calls while there is room; finishes when none is left running. */
static void pump(gw_api__fanout *f) {
  if (f->pumping) return; /* a call failing to start from inside pump */
  f->pumping = true;
  while (!f->err && !f->cancelled && f->running < GW_FANOUT_PARALLEL && f->next < f->ncalls) {
    gw_api__fcall *c = &f->calls[f->next++];
    uint64_t now = orr_mono_ns();
    int64_t left = f->deadline_ns > now ? (int64_t)((f->deadline_ns - now) / 1000000) : 1;
    if (left < 1) left = 1;
    int rc;
    f->running++;
    if (c->labels) {
      c->lr.timeout_ms = left;
      rc = gw_labels(f->api->cfg.core, &c->lr, labels_done, c);
    } else {
      c->sr.timeout_ms = left;
      gw_select_cb cb = {sel_series, sel_warning, sel_done, c};
      rc = gw_select(f->api->cfg.core, &c->sr, &cb, &c->op);
    }
    if (rc) {
      c->op = NULL;
      f->running--;
      gw_api__fanout_fail(f, rc, orr_strerror(rc));
    }
  }
  f->pumping = false;
  if (f->running == 0 && !f->finished &&
      (f->next == f->ncalls || f->err || f->cancelled)) {
    f->finished = true;
    f->cb->finish(f); /* may free |f| */
  }
}

void gw_api__fanout_start(gw_api__fanout *f) {
  if (!f->counted && !f->queued) {
    gw_api *api = f->api;
    if (api->running >= api->cfg.max_concurrent) {
      f->queued = true;
      f->wnext = NULL;
      if (api->wait_tail) api->wait_tail->wnext = f;
      else api->wait_head = f;
      api->wait_tail = f;
      return;
    }
    api->running++;
    gw__busy(api->cfg.core, 1);
    f->counted = true;
  }
  if (f->cb->start && !f->cancelled) f->cb->start(f);
  pump(f);
}

/* ---------------------------------------------------------------- match[] */
/* One candidate grouping of a selector: pivot matcher |mi| (an equality),
 * |key| = pivot's label name and the other matchers, canonical. */
typedef struct cand {
  const char *key;
  size_t klen;
  size_t sel, mi;
  size_t count; /* selectors sharing the key */
} cand;

static int cmp_cand(const void *pa, const void *pb) {
  const cand *a = pa, *b = pb;
  size_t n = a->klen < b->klen ? a->klen : b->klen;
  int c = memcmp(a->key, b->key, n);
  if (c) return c;
  if (a->klen != b->klen) return a->klen < b->klen ? -1 : 1;
  return a->sel < b->sel ? -1 : a->sel > b->sel;
}

static int cmp_strp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "name\1type\1value\2" of every matcher but |skip|, sorted, after the
 * pivot's name. */
static int make_key(orr_arena *a, labels_matcher *const *ms, size_t n, size_t skip, cand *c) {
  const char *parts[64];
  if (n > 64) return ORR_EINVAL; /* not grouped */
  size_t np = 0;
  orr_buf b = {0};
  for (size_t i = 0; i < n; i++) {
    if (i == skip) continue;
    orr_buf_reset(&b);
    orr_buf_printf(&b, "%s\1%d\1%s\2", labels_matcher_name(ms[i]), (int)labels_matcher_type(ms[i]),
                   labels_matcher_value(ms[i]));
    if (b.oom || !(parts[np++] = orr_arena_strndup(a, b.data, b.len))) {
      orr_buf_free(&b);
      return ORR_ENOMEM;
    }
  }
  qsort(parts, np, sizeof(*parts), cmp_strp);
  orr_buf_reset(&b);
  orr_buf_puts(&b, labels_matcher_name(ms[skip]));
  orr_buf_putc(&b, '\3');
  for (size_t i = 0; i < np; i++) orr_buf_puts(&b, parts[i]);
  int rc = ORR_ENOMEM;
  if (!b.oom && (c->key = orr_arena_strndup(a, b.data ? b.data : "", b.len))) {
    c->klen = b.len;
    rc = 0;
  }
  orr_buf_free(&b);
  return rc;
}

/* Appends |s| as a regex literal (RE2 and PCRE2 take an escaped
 * punctuation character literally). */
static void quote_meta(orr_buf *b, const char *s) {
  for (; *s; s++) {
    if (strchr("\\.+*?()|[]{}^$", *s)) orr_buf_putc(b, '\\');
    orr_buf_putc(b, *s);
  }
}

/* A matcher set of one planned call, borrowed from the ASTs or built here. */
typedef struct mset {
  labels_matcher **ms;
  size_t n;
} mset;

static int own(gw_api__fanout *f, labels_matcher *m) {
  if (f->nowned == f->capowned) {
    size_t nc = f->capowned ? f->capowned * 2 : 16;
    labels_matcher **v = realloc(f->owned, nc * sizeof(*v));
    if (!v) return ORR_ENOMEM;
    f->owned = v;
    f->capowned = nc;
  }
  f->owned[f->nowned++] = m;
  return 0;
}

/* The union call of group |g| (selectors of |cs|[lo..hi), one pivot each),
 * values [vlo, vhi) of the sorted unique |vals|. */
static int union_set(gw_api__fanout *f, const cand *c0, const char **vals, size_t nv, mset *out) {
  labels_matcher *const *ms = promql_ast_root(f->asts[c0->sel])->u.vs.matchers;
  size_t n = promql_ast_root(f->asts[c0->sel])->u.vs.nmatchers;
  out->ms = orr_arena_calloc(f->a, n, sizeof(*out->ms));
  if (!out->ms) return ORR_ENOMEM;
  out->n = 0;
  for (size_t i = 0; i < n; i++)
    if (i != c0->mi) out->ms[out->n++] = ms[i];
  orr_buf re = {0};
  for (size_t i = 0; i < nv; i++) {
    if (i) orr_buf_putc(&re, '|');
    quote_meta(&re, vals[i]);
  }
  if (re.oom) {
    orr_buf_free(&re);
    return ORR_ENOMEM;
  }
  char err[128];
  labels_matcher *m = labels_matcher_new(LABELS_MATCH_RE, labels_matcher_name(ms[c0->mi]),
                                         re.data ? re.data : "", err, sizeof(err));
  orr_buf_free(&re);
  if (!m) return ORR_ENOMEM;
  if (own(f, m)) {
    labels_matcher_free(m);
    return ORR_ENOMEM;
  }
  out->ms[out->n++] = m;
  return 0;
}

/* Plans f->asts into matcher sets (note 2). */
static int plan(gw_api__fanout *f, mset **out, size_t *nout) {
  orr_arena *tmp = orr_arena_new(0);
  if (!tmp) return ORR_ENOMEM;
  int rc = ORR_ENOMEM;
  size_t ncand = 0, cap = 0;
  cand *cs = NULL;
  mset *sets = orr_arena_calloc(f->a, f->nasts + 1, sizeof(*sets));
  size_t *best = orr_arena_calloc(tmp, f->nasts + 1, sizeof(*best));
  if (!sets || !best) goto out;
  for (size_t i = 0; i < f->nasts; i++) {
    const promql_expr *e = promql_ast_root(f->asts[i]);
    for (size_t j = 0; j < e->u.vs.nmatchers; j++) {
      if (labels_matcher_type(e->u.vs.matchers[j]) != LABELS_MATCH_EQ) continue;
      if (ncand == cap) {
        cap = cap ? cap * 2 : 64;
        cand *v = realloc(cs, cap * sizeof(*v));
        if (!v) goto out;
        cs = v;
      }
      cand *c = &cs[ncand];
      c->sel = i;
      c->mi = j;
      c->count = 0;
      int r = make_key(tmp, e->u.vs.matchers, e->u.vs.nmatchers, j, c);
      if (r == ORR_ENOMEM) goto out;
      if (r == 0) ncand++;
    }
  }
  if (ncand) qsort(cs, ncand, sizeof(*cs), cmp_cand);
  /* Group sizes, then each selector's largest group. */
  for (size_t i = 0; i < ncand;) {
    size_t j = i;
    while (j < ncand && cs[j].klen == cs[i].klen && !memcmp(cs[j].key, cs[i].key, cs[i].klen)) j++;
    for (size_t k = i; k < j; k++) cs[k].count = j - i;
    i = j;
  }
  for (size_t i = 0; i < f->nasts; i++) best[i] = SIZE_MAX;
  for (size_t k = 0; k < ncand; k++) {
    size_t s = cs[k].sel;
    if (best[s] == SIZE_MAX || cs[k].count > cs[best[s]].count) best[s] = k;
  }
  /* Walk the groups again, keeping only each selector's chosen candidate. */
  size_t nsets = 0;
  const char **vals = orr_arena_calloc(tmp, f->nasts + 1, sizeof(*vals));
  if (!vals) goto out;
  for (size_t i = 0; i < ncand;) {
    size_t j = i;
    while (j < ncand && cs[j].klen == cs[i].klen && !memcmp(cs[j].key, cs[i].key, cs[i].klen)) j++;
    size_t nv = 0;
    const cand *c0 = NULL;
    for (size_t k = i; k < j; k++) {
      if (best[cs[k].sel] != k) continue;
      if (!c0) c0 = &cs[k];
      const promql_expr *e = promql_ast_root(f->asts[cs[k].sel]);
      vals[nv++] = labels_matcher_value(e->u.vs.matchers[cs[k].mi]);
    }
    if (nv == 1) { /* alone: its own matchers */
      const promql_expr *e = promql_ast_root(f->asts[c0->sel]);
      sets[nsets].ms = (labels_matcher **)e->u.vs.matchers;
      sets[nsets++].n = e->u.vs.nmatchers;
      best[c0->sel] = SIZE_MAX - 1; /* planned */
    } else if (nv > 1) {
      qsort(vals, nv, sizeof(*vals), cmp_strp);
      size_t u = 0;
      for (size_t k = 0; k < nv; k++)
        if (!u || strcmp(vals[u - 1], vals[k])) vals[u++] = vals[k];
      for (size_t k = 0; k < u; k += GW_FANOUT_BATCH_VALUES) {
        size_t m = u - k < GW_FANOUT_BATCH_VALUES ? u - k : GW_FANOUT_BATCH_VALUES;
        if (union_set(f, c0, vals + k, m, &sets[nsets++])) goto out;
      }
      for (size_t k = i; k < j; k++)
        if (best[cs[k].sel] == k) best[cs[k].sel] = SIZE_MAX - 1;
    }
    i = j;
  }
  /* Selectors without an equality matcher go alone. */
  for (size_t i = 0; i < f->nasts; i++) {
    if (best[i] == SIZE_MAX - 1) continue;
    const promql_expr *e = promql_ast_root(f->asts[i]);
    sets[nsets].ms = (labels_matcher **)e->u.vs.matchers;
    sets[nsets++].n = e->u.vs.nmatchers;
  }
  *out = sets;
  *nout = nsets;
  rc = 0;
out:
  free(cs);
  orr_arena_destroy(tmp);
  return rc;
}

/* One call per planned set: a select from |st| or, when NULL, labels from |lt|. */
static int match(gw_api__fanout *f, const gw_select_req *st, const gw_labels_req *lt) {
  if (!st && !f->nasts) return gw_api__fanout_labels(f, lt);
  mset *sets;
  size_t n;
  int rc = plan(f, &sets, &n);
  for (size_t i = 0; !rc && i < n; i++) {
    gw_select_req sr;
    gw_labels_req lr;
    if (st) sr = *st, sr.matchers = sets[i].ms, sr.nmatchers = sets[i].n;
    else lr = *lt, lr.matchers = sets[i].ms, lr.nmatchers = sets[i].n;
    rc = st ? gw_api__fanout_select(f, &sr, i) : gw_api__fanout_labels(f, &lr);
  }
  return rc;
}

/* ---------------------------------------------------------------- parsing */
static size_t count_match(const net_http_kv *kv, size_t np) {
  size_t cnt = 0;
  for (size_t i = 0; i < np; i++)
    if (!strcmp(kv[i].name, "match[]")) cnt++;
  return cnt;
}

int gw_api__parse_match(const net_http_kv *kv, size_t np, orr_arena *a, promql_ast ***asts,
                        size_t *n, unsigned flags, char *msg, size_t msglen) {
  const char *pfx = flags & GW_MATCH_PREFIX ? "invalid parameter \"match[]\": " : "";
  size_t cnt = count_match(kv, np);
  *asts = cnt ? orr_arena_calloc(a, cnt, sizeof(**asts)) : NULL;
  *n = 0;
  if (cnt && !*asts) {
    snprintf(msg, msglen, "out of memory");
    return ORR_ENOMEM;
  }
  for (size_t i = 0; i < np; i++) {
    if (strcmp(kv[i].name, "match[]")) continue;
    promql_error pe;
    promql_ast *ast = NULL;
    int rc = promql_parse_metric_selector(a, kv[i].value, kv[i].value_len, &ast, &pe);
    if (rc) {
      if (rc == ORR_ENOMEM)
        snprintf(msg, msglen, "out of memory");
      else
        snprintf(msg, msglen, "%s%s", pfx, pe.msg);
      return rc == ORR_ENOMEM ? rc : ORR_EINVAL;
    }
    (*asts)[(*n)++] = ast;
  }
  /* Every set needs a matcher that does not match the empty string. */
  for (size_t i = 0; (flags & GW_MATCH_NONEMPTY) && i < *n; i++) {
    const promql_expr *e = promql_ast_root((*asts)[i]);
    bool ok = false;
    for (size_t j = 0; j < e->u.vs.nmatchers && !ok; j++)
      ok = !labels_matcher_matches_empty(e->u.vs.matchers[j]);
    if (!ok) {
      snprintf(msg, msglen, "%smatch[] must contain at least one non-empty matcher", pfx);
      return ORR_EINVAL;
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- preparing */
/* Parsing and planning match[] off the loop (note 6). */
typedef struct prep {
  uv_work_t w;
  gw_api__fanout *f;
  const net_http_kv *kv; /* the request's, read on the loop before */
  size_t nkv;
  unsigned flags;
  bool labels;
  gw_select_req st;
  gw_labels_req lt;
  gw_api__fanout_bad_fn bad;
  int rc;
  char msg[1024];
} prep;

static void prep_run(prep *p) {
  gw_api__fanout *f = p->f;
  p->rc = gw_api__parse_match(p->kv, p->nkv, f->a, &f->asts, &f->nasts, p->flags, p->msg,
                              sizeof(p->msg));
  if (!p->rc) p->rc = p->labels ? match(f, NULL, &p->lt) : match(f, &p->st, NULL);
}

static void prep_end(prep *p) {
  gw_api__fanout *f = p->f;
  if (p->rc) {
    if (p->rc != ORR_EINVAL) p->rc = ORR_ENOMEM; /* planning fails only for memory */
    p->bad(f, p->rc, p->msg);
  } else {
    gw_api__fanout_start(f);
  }
  free(p);
}

static void prep_work(uv_work_t *w) { prep_run(w->data); }

static void prep_after(uv_work_t *w, int status) {
  (void)status; /* never cancelled: uv_cancel is not called on it */
  prep_end(w->data);
}

void gw_api__fanout_match_start(gw_api__fanout *f, unsigned flags, const gw_select_req *st,
                                const gw_labels_req *lt, gw_api__fanout_bad_fn bad) {
  prep *p = calloc(1, sizeof(*p));
  if (!p) {
    bad(f, ORR_ENOMEM, "out of memory");
    return;
  }
  p->f = f;
  p->kv = net_http_req_params(f->req, &p->nkv);
  p->flags = flags;
  p->labels = st == NULL;
  if (st) p->st = *st;
  else p->lt = *lt;
  p->bad = bad;
  p->w.data = p;
  if (count_match(p->kv, p->nkv) > GW_FANOUT_INLINE_MATCH &&
      uv_queue_work(f->api->cfg.loop, &p->w, prep_work, prep_after) == 0)
    return;
  prep_run(p);
  prep_end(p);
}
