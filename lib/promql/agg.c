/* agg.c: aggregation operators for one evaluation step (sum, avg, count,
 * min, max, group, stddev, stdvar, topk, bottomk, count_values, quantile)
 * with by/without, as Prometheus 2.42's aggregation(): same group order,
 * same incremental mean and variance, same heaps for topk/bottomk. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "promql_int.h"

uint64_t promql__agg_key(const promql_expr *e, const labels_set *ls) {
  return promql__signature(ls, !e->u.agg.without, e->u.agg.grouping, e->u.agg.ngrouping);
}

typedef struct group {
  labels_set ls;
  uint64_t key;
  double value, mean;
  double count;
  promql__sample *heap;
  size_t nheap, capheap;
  size_t slot; /* its slot in the scratch table, reset after the step */
} group;

/* vectorByValueHeap / vectorByReverseValueHeap Less. */
static bool less_val(const promql__sample *a, const promql__sample *b, bool reverse) {
  if (isnan(a->v)) return true;
  return reverse ? a->v > b->v : a->v < b->v;
}

static void hswap(promql__sample *h, size_t i, size_t j) {
  promql__sample t = h[i];
  h[i] = h[j];
  h[j] = t;
}

/* container/heap's up and down. */
static void heap_up(promql__sample *h, size_t j, bool rev) {
  while (j > 0) {
    size_t i = (j - 1) / 2;
    if (!less_val(&h[j], &h[i], rev)) break;
    hswap(h, i, j);
    j = i;
  }
}

static void heap_down(promql__sample *h, size_t i, size_t n, bool rev) {
  for (;;) {
    size_t j1 = 2 * i + 1;
    if (j1 >= n) break;
    size_t j = j1;
    if (j1 + 1 < n && less_val(&h[j1 + 1], &h[j1], rev)) j = j1 + 1;
    if (!less_val(&h[j], &h[i], rev)) break;
    hswap(h, i, j);
    i = j;
  }
}

static bool rev_less_topk(const void *a, const void *b) {
  /* sort.Reverse(vectorByValueHeap): Less(i, j) = heap.Less(j, i). */
  return less_val(b, a, false);
}
static bool rev_less_bottomk(const void *a, const void *b) { return less_val(b, a, true); }
static bool less_topk(const void *a, const void *b) { return less_val(a, b, false); }

double promql__quantile(double q, promql__sample *v, size_t n) {
  if (n == 0) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  promql__sort(v, n, sizeof(*v), less_topk);
  double N = (double)n;
  double rank = q * (N - 1);
  double lower = fmax(0, floor(rank));
  double upper = fmin(N - 1, lower + 1);
  double weight = rank - floor(rank);
  return v[(size_t)lower].v * (1 - weight) + v[(size_t)upper].v * weight;
}

int promql_format_float_f(orr_buf *b, double v);

static int aggregate(promql__ev *ev, const promql_expr *e, double param, promql__vec *in,
                     promql__vec *out) {
  orr_arena *a = ev->a;
  promql_aggop op = e->u.agg.op;
  bool without = e->u.agg.without;
  const char **grouping = e->u.agg.grouping;
  size_t ng = e->u.agg.ngrouping;
  int64_t k = 0;
  if (op == PROMQL_AGG_TOPK || op == PROMQL_AGG_BOTTOMK) {
    if (!(param <= 9223372036854775807.0 && param >= -9223372036854775808.0)) {
      char fb[64];
      orr_format_float(param, fb, sizeof(fb));
      return promql__ev_errorf(ev, "Scalar value %s overflows int64", fb);
    }
    k = param >= 9223372036854775807.0 ? INT64_MAX : (int64_t)param;
    if (k < 1) return 0;
  }
  const char *value_label = NULL;
  const char **grp2 = grouping;
  size_t ng2 = ng;
  if (op == PROMQL_AGG_COUNT_VALUES) {
    const promql_expr *p = e->u.agg.param;
    while (p->kind == PROMQL_NODE_PAREN || p->kind == PROMQL_NODE_STEP_INVARIANT) p = p->u.paren.expr;
    value_label = p->u.string.val;
    if (!labels_valid_name(value_label, strlen(value_label)) || strlen(value_label) != p->u.string.len) {
      orr_buf qb = {0};
      promql__quote(&qb, p->u.string.val, p->u.string.len);
      int rc = promql__ev_errorf(ev, "invalid label name %s", qb.data ? qb.data : "\"\"");
      orr_buf_free(&qb);
      return rc;
    }
    if (!without) {
      grp2 = orr_arena_alloc(a, (ng + 1) * sizeof(*grp2));
      if (!grp2) return promql__ev_oom(ev);
      if (ng) memcpy(grp2, grouping, ng * sizeof(*grp2));
      grp2[ng] = value_label;
      ng2 = ng + 1;
    }
  }
  size_t cap = 16;
  while (cap < in->n * 2 + 2) cap *= 2;
  promql__agg_scratch *sc = ev->agg;
  if (sc->tabcap < cap) {
    long *nt = malloc(cap * sizeof(long));
    if (!nt) return promql__ev_oom(ev);
    free(sc->tab);
    sc->tab = nt;
    sc->tabcap = cap;
    for (size_t i = 0; i < cap; i++) nt[i] = -1;
  }
  if (sc->groupcap < (in->n ? in->n : 1)) {
    group *ngr = malloc((in->n ? in->n : 1) * sizeof(group));
    if (!ngr) return promql__ev_oom(ev);
    free(sc->groups);
    sc->groups = ngr;
    sc->groupcap = in->n ? in->n : 1;
  }
  /* The table may be larger than this step needs: the mask stays |cap| so
   * probing is as before, and only slots below |cap| are ever set. Every
   * slot set is reset to -1 before returning (clear_slots). */
  long *tab = sc->tab;
  group *groups = sc->groups;
  size_t ngroups = 0;
  size_t result_size = (size_t)(k > (int64_t)in->n ? (int64_t)in->n : k);
  if (k == 0) result_size = 1;

  for (size_t si = 0; si < in->n; si++) {
    promql__sample s = in->s[si];
    labels_set metric = s.ls;
    uint64_t key = s.h;
    if (op == PROMQL_AGG_COUNT_VALUES) {
      orr_buf vb = {0};
      promql_format_float_f(&vb, s.v);
      char *vs = orr_arena_strdup(a, vb.data ? vb.data : "");
      orr_buf_free(&vb);
      if (!vs) return promql__ev_oom(ev);
      labels_builder b;
      labels_builder_init(&b, a, &s.ls);
      labels_builder_set(&b, value_label, vs);
      if (labels_builder_finish(&b, &metric)) return promql__ev_oom(ev);
      key = promql__signature(&metric, !without, grp2, ng2);
    }
    size_t slot = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 11) & (cap - 1);
    while (tab[slot] != -1 && groups[tab[slot]].key != key) slot = (slot + 1) & (cap - 1);
    if (tab[slot] == -1) {
      group *g = &groups[ngroups];
      memset(g, 0, sizeof(*g));
      g->key = key;
      g->slot = slot;
      tab[slot] = (long)ngroups++;
      sc->nused = ngroups;
      /* The group's labels. */
      if (without) {
        labels_builder b;
        labels_builder_init(&b, a, &metric);
        for (size_t j = 0; j < ng2; j++) labels_builder_del(&b, grp2[j]);
        labels_builder_del(&b, LABELS_METRIC_NAME);
        if (labels_builder_finish(&b, &g->ls)) return promql__ev_oom(ev);
      } else if (ng2 > 0) {
        labels_label *v = orr_arena_alloc(a, (metric.n ? metric.n : 1) * sizeof(*v));
        if (!v) return promql__ev_oom(ev);
        size_t n = 0;
        for (size_t i = 0; i < metric.n; i++)
          for (size_t j = 0; j < ng2; j++)
            if (strcmp(metric.v[i].name, grp2[j]) == 0) {
              v[n++] = metric.v[i];
              break;
            }
        g->ls.v = v;
        g->ls.n = n;
      }
      g->value = s.v;
      g->mean = s.v;
      g->count = 1;
      switch (op) {
        case PROMQL_AGG_STDVAR:
        case PROMQL_AGG_STDDEV: g->value = 0; break;
        case PROMQL_AGG_TOPK:
        case PROMQL_AGG_BOTTOMK:
        case PROMQL_AGG_QUANTILE:
          g->capheap = op == PROMQL_AGG_QUANTILE ? 4 : (result_size ? result_size : 1);
          g->heap = orr_arena_alloc(a, g->capheap * sizeof(promql__sample));
          if (!g->heap) return promql__ev_oom(ev);
          g->heap[0] = s;
          g->nheap = 1;
          break;
        case PROMQL_AGG_GROUP: g->value = 1; break;
        default: break;
      }
      continue;
    }
    group *g = &groups[tab[slot]];
    switch (op) {
      case PROMQL_AGG_SUM: g->value += s.v; break;
      case PROMQL_AGG_AVG:
        g->count++;
        if (isinf(g->mean)) {
          if (isinf(s.v) && (g->mean > 0) == (s.v > 0)) break;
          if (!isinf(s.v) && !isnan(s.v)) break;
        }
        g->mean += s.v / g->count - g->mean / g->count;
        break;
      case PROMQL_AGG_GROUP: break;
      case PROMQL_AGG_MAX:
        if (g->value < s.v || isnan(g->value)) g->value = s.v;
        break;
      case PROMQL_AGG_MIN:
        if (g->value > s.v || isnan(g->value)) g->value = s.v;
        break;
      case PROMQL_AGG_COUNT:
      case PROMQL_AGG_COUNT_VALUES: g->count++; break;
      case PROMQL_AGG_STDVAR:
      case PROMQL_AGG_STDDEV: {
        g->count++;
        double delta = s.v - g->mean;
        g->mean += delta / g->count;
        g->value += delta * (s.v - g->mean);
        break;
      }
      case PROMQL_AGG_TOPK:
      case PROMQL_AGG_BOTTOMK: {
        bool rev = op == PROMQL_AGG_BOTTOMK;
        bool take = (int64_t)g->nheap < k || isnan(g->heap[0].v) ||
                    (rev ? g->heap[0].v > s.v : g->heap[0].v < s.v);
        if (!take) break;
        if ((int64_t)g->nheap == k) {
          if (k == 1) {
            g->heap[0] = s;
            break;
          }
          /* heap.Pop: swap root and last, fix down, drop the last. */
          hswap(g->heap, 0, g->nheap - 1);
          heap_down(g->heap, 0, g->nheap - 1, rev);
          g->nheap--;
        }
        if (g->nheap == g->capheap) {
          size_t nc = g->capheap * 2;
          promql__sample *nh = orr_arena_alloc(a, nc * sizeof(*nh));
          if (!nh) return promql__ev_oom(ev);
          memcpy(nh, g->heap, g->nheap * sizeof(*nh));
          g->heap = nh;
          g->capheap = nc;
        }
        g->heap[g->nheap++] = s;
        heap_up(g->heap, g->nheap - 1, rev);
        break;
      }
      case PROMQL_AGG_QUANTILE:
        if (g->nheap == g->capheap) {
          size_t nc = g->capheap * 2;
          promql__sample *nh = orr_arena_alloc(a, nc * sizeof(*nh));
          if (!nh) return promql__ev_oom(ev);
          memcpy(nh, g->heap, g->nheap * sizeof(*nh));
          g->heap = nh;
          g->capheap = nc;
        }
        g->heap[g->nheap++] = s;
        break;
    }
  }

  for (size_t gi = 0; gi < ngroups; gi++) {
    group *g = &groups[gi];
    double v = g->value;
    switch (op) {
      case PROMQL_AGG_AVG: v = g->mean; break;
      case PROMQL_AGG_COUNT:
      case PROMQL_AGG_COUNT_VALUES: v = g->count; break;
      case PROMQL_AGG_STDVAR: v = g->value / g->count; break;
      case PROMQL_AGG_STDDEV: v = sqrt(g->value / g->count); break;
      case PROMQL_AGG_TOPK:
      case PROMQL_AGG_BOTTOMK:
        if (g->nheap > 1)
          promql__sort(g->heap, g->nheap, sizeof(promql__sample),
                       op == PROMQL_AGG_TOPK ? rev_less_topk : rev_less_bottomk);
        for (size_t i = 0; i < g->nheap; i++) {
          promql__sample o = g->heap[i];
          o.h = 0;
          if (promql__vec_push(a, out, &o)) return promql__ev_oom(ev);
        }
        continue;
      case PROMQL_AGG_QUANTILE: v = promql__quantile(param, g->heap, g->nheap); break;
      default: break;
    }
    promql__sample o = {g->ls, v, 0, 0};
    if (promql__vec_push(a, out, &o)) return promql__ev_oom(ev);
  }
  return 0;
}

int promql__aggregate(promql__ev *ev, const promql_expr *e, double param, promql__vec *in,
                      promql__vec *out) {
  int rc = aggregate(ev, e, param, in, out);
  promql__agg_scratch *sc = ev->agg;
  group *groups = sc->groups;
  for (size_t i = 0; i < sc->nused; i++) sc->tab[groups[i].slot] = -1;
  sc->nused = 0;
  return rc;
}

void promql__agg_scratch_free(promql__agg_scratch *s) {
  free(s->tab);
  free(s->groups);
  memset(s, 0, sizeof(*s));
}
