/* binop.c: binary operators for one evaluation step — arithmetic,
 * comparisons (with and without bool), set operators and vector matching
 * (on/ignoring, group_left/group_right) with Prometheus 2.42's errors. */
#include <math.h>
#include <string.h>

#include "promql_int.h"

static bool drops_name(promql_op op) {
  switch (op) {
    case PROMQL_OP_ADD:
    case PROMQL_OP_SUB:
    case PROMQL_OP_MUL:
    case PROMQL_OP_DIV:
    case PROMQL_OP_POW:
    case PROMQL_OP_MOD: return true; /* not atan2, as in 2.42 */
    default: return false;
  }
}

/* vectorElemBinop: the value and whether to keep the element. */
static double elem(promql_op op, double l, double r, bool *keep) {
  *keep = true;
  switch (op) {
    case PROMQL_OP_ADD: return l + r;
    case PROMQL_OP_SUB: return l - r;
    case PROMQL_OP_MUL: return l * r;
    case PROMQL_OP_DIV: return l / r;
    case PROMQL_OP_POW: return pow(l, r);
    case PROMQL_OP_MOD: return fmod(l, r);
    case PROMQL_OP_ATAN2: return atan2(l, r);
    case PROMQL_OP_EQLC: *keep = l == r; return l;
    case PROMQL_OP_NEQ: *keep = l != r; return l;
    case PROMQL_OP_GTR: *keep = l > r; return l;
    case PROMQL_OP_LSS: *keep = l < r; return l;
    case PROMQL_OP_GTE: *keep = l >= r; return l;
    case PROMQL_OP_LTE: *keep = l <= r; return l;
    default: *keep = false; return 0;
  }
}

double promql__binop_ss(promql_op op, double l, double r) {
  bool keep;
  double v = elem(op, l, r, &keep);
  if (promql_op_is_comparison(op)) return keep ? 1 : 0;
  return v;
}

int promql__binop_vs(promql__ev *ev, promql_op op, promql__vec *lhs, double rhs, bool swap,
                     bool return_bool, promql__vec *out) {
  for (size_t i = 0; i < lhs->n; i++) {
    promql__sample s = lhs->s[i];
    double lv = s.v, rv = rhs;
    if (swap) {
      lv = rhs;
      rv = s.v;
    }
    bool keep;
    double v = elem(op, lv, rv, &keep);
    if (promql_op_is_comparison(op) && swap) v = rv;
    if (return_bool) {
      v = keep ? 1 : 0;
      keep = true;
    }
    if (!keep) continue;
    s.v = v;
    if ((drops_name(op) || return_bool) && promql__drop_name(ev->a, &s.ls, &s.ls))
      return promql__ev_oom(ev);
    if (promql__vec_push(ev->a, out, &s)) return promql__ev_oom(ev);
  }
  return 0;
}

uint64_t promql__binop_sig(const promql_expr *e, const labels_set *ls) {
  const promql_vector_matching *m = e->u.binary.matching;
  if (!m) return 0;
  return promql__signature(ls, m->on, m->matching_labels, m->nmatching);
}

/* A small open-addressing set/map keyed by signature. */
typedef struct sigmap {
  uint64_t *k;
  long *v; /* -1 empty */
  size_t cap;
} sigmap;

static int sm_init(orr_arena *a, sigmap *m, size_t n) {
  size_t c = 16;
  while (c < n * 2 + 2) c *= 2;
  m->k = orr_arena_alloc(a, c * sizeof(*m->k));
  m->v = orr_arena_alloc(a, c * sizeof(*m->v));
  if (!m->k || !m->v) return ORR_ENOMEM;
  for (size_t i = 0; i < c; i++) m->v[i] = -1;
  m->cap = c;
  return 0;
}

/* Returns the slot for |k| (empty when v[slot] == -1). */
static size_t sm_slot(const sigmap *m, uint64_t k) {
  size_t i = (size_t)(k * 0x9E3779B97F4A7C15ULL >> 7) & (m->cap - 1);
  while (m->v[i] != -1 && m->k[i] != k) i = (i + 1) & (m->cap - 1);
  return i;
}

/* Go's labels.Labels.String(): {a="1", b="2"} with __name__ inside. */
static void fmt_labels(const labels_set *ls, char *out, size_t n) {
  orr_buf b = {0};
  orr_buf_putc(&b, '{');
  for (size_t i = 0; i < ls->n; i++) {
    if (i) orr_buf_puts(&b, ", ");
    orr_buf_puts(&b, ls->v[i].name);
    orr_buf_putc(&b, '=');
    promql__quote(&b, ls->v[i].value, strlen(ls->v[i].value));
  }
  orr_buf_putc(&b, '}');
  snprintf(out, n, "%s", b.data ? b.data : "{}");
  orr_buf_free(&b);
}

/* Labels of |ls| restricted as MatchLabels(on, names...). */
static int match_labels(orr_arena *a, const labels_set *ls, bool on, const char *const *names,
                        size_t n, labels_set *out) {
  labels_label *v = orr_arena_alloc(a, (ls->n ? ls->n : 1) * sizeof(*v));
  if (!v) return ORR_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < ls->n; i++) {
    bool listed = false;
    for (size_t j = 0; j < n; j++)
      if (strcmp(names[j], ls->v[i].name) == 0) listed = true;
    if (on ? listed : (!listed && strcmp(ls->v[i].name, LABELS_METRIC_NAME) != 0)) v[k++] = ls->v[i];
  }
  out->v = v;
  out->n = k;
  return 0;
}

static int result_metric(orr_arena *a, const labels_set *l, const labels_set *r, promql_op op,
                         const promql_vector_matching *m, labels_set *out) {
  labels_builder b;
  labels_builder_init(&b, a, l);
  if (drops_name(op)) labels_builder_del(&b, LABELS_METRIC_NAME);
  if (m->card == PROMQL_CARD_ONE_TO_ONE) {
    if (m->on) {
      for (size_t i = 0; i < l->n; i++) {
        bool keep = false;
        for (size_t j = 0; j < m->nmatching; j++)
          if (strcmp(m->matching_labels[j], l->v[i].name) == 0) keep = true;
        if (!keep) labels_builder_del(&b, l->v[i].name);
      }
    } else {
      for (size_t j = 0; j < m->nmatching; j++) labels_builder_del(&b, m->matching_labels[j]);
    }
  }
  for (size_t j = 0; j < m->ninclude; j++) {
    const char *v = labels_get(r, m->include[j]);
    if (v && *v)
      labels_builder_set(&b, m->include[j], v);
    else
      labels_builder_del(&b, m->include[j]);
  }
  return labels_builder_finish(&b, out);
}

static uint64_t lhash(const labels_set *ls) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < ls->n; i++) {
    for (const char *s = ls->v[i].name; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
    for (const char *s = ls->v[i].value; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    h = (h ^ 0xfe) * 0x100000001b3ULL;
  }
  return h;
}

int promql__binop_vv(promql__ev *ev, const promql_expr *e, promql__vec *lhs, promql__vec *rhs,
                     promql__vec *out) {
  const promql_vector_matching *m = e->u.binary.matching;
  promql_op op = e->u.binary.op;
  orr_arena *a = ev->a;
  sigmap sm;
  if (op == PROMQL_OP_LAND || op == PROMQL_OP_LUNLESS) {
    if (op == PROMQL_OP_LAND && (!lhs->n || !rhs->n)) return 0;
    if (op == PROMQL_OP_LUNLESS && (!lhs->n || !rhs->n)) {
      for (size_t i = 0; i < lhs->n; i++)
        if (promql__vec_push(a, out, &lhs->s[i])) return promql__ev_oom(ev);
      return 0;
    }
    if (sm_init(a, &sm, rhs->n)) return promql__ev_oom(ev);
    for (size_t i = 0; i < rhs->n; i++) {
      size_t k = sm_slot(&sm, rhs->s[i].h);
      sm.k[k] = rhs->s[i].h;
      sm.v[k] = (long)i;
    }
    for (size_t i = 0; i < lhs->n; i++) {
      bool found = sm.v[sm_slot(&sm, lhs->s[i].h)] != -1;
      if (found == (op == PROMQL_OP_LAND) && promql__vec_push(a, out, &lhs->s[i]))
        return promql__ev_oom(ev);
    }
    return 0;
  }
  if (op == PROMQL_OP_LOR) {
    if (sm_init(a, &sm, lhs->n)) return promql__ev_oom(ev);
    for (size_t i = 0; i < lhs->n; i++) {
      size_t k = sm_slot(&sm, lhs->s[i].h);
      sm.k[k] = lhs->s[i].h;
      sm.v[k] = (long)i;
      if (promql__vec_push(a, out, &lhs->s[i])) return promql__ev_oom(ev);
    }
    for (size_t i = 0; i < rhs->n; i++)
      if (sm.v[sm_slot(&sm, rhs->s[i].h)] == -1 && promql__vec_push(a, out, &rhs->s[i]))
        return promql__ev_oom(ev);
    return 0;
  }

  /* Nothing can match: no result, and no matching errors either. */
  if (!lhs->n || !rhs->n) return 0;
  bool swapped = m->card == PROMQL_CARD_ONE_TO_MANY;
  promql__vec *L = swapped ? rhs : lhs, *R = swapped ? lhs : rhs;
  if (sm_init(a, &sm, R->n)) return promql__ev_oom(ev);
  for (size_t i = 0; i < R->n; i++) {
    size_t k = sm_slot(&sm, R->s[i].h);
    if (sm.v[k] != -1) {
      labels_set ml;
      char a1[512], a2[512], a3[512];
      if (match_labels(a, &R->s[i].ls, m->on, m->matching_labels, m->nmatching, &ml))
        return promql__ev_oom(ev);
      fmt_labels(&ml, a1, sizeof(a1));
      fmt_labels(&R->s[i].ls, a2, sizeof(a2));
      fmt_labels(&R->s[sm.v[k]].ls, a3, sizeof(a3));
      return promql__ev_errorf(ev,
                               "found duplicate series for the match group %s on the %s hand-side "
                               "of the operation: [%s, %s];many-to-many matching not allowed: "
                               "matching labels must be unique on one side",
                               a1, swapped ? "left" : "right", a2, a3);
    }
    sm.k[k] = R->s[i].h;
    sm.v[k] = (long)i;
  }
  /* What has been output so far, to refuse what Prometheus refuses: for
   * one-to-one, each matching signature once; for many-to-one, each
   * (result labels, signature) pair once. One set serves both, keyed by the
   * signature or by the pair's hash. */
  sigmap seen;
  if (sm_init(a, &seen, L->n)) return promql__ev_oom(ev);
  for (size_t i = 0; i < L->n; i++) {
    const promql__sample *ls = &L->s[i];
    long ri = sm.v[sm_slot(&sm, ls->h)];
    if (ri == -1) continue;
    const promql__sample *rs = &R->s[ri];
    double vl = ls->v, vr = rs->v;
    if (swapped) {
      vl = rs->v;
      vr = ls->v;
    }
    bool keep;
    double v = elem(op, vl, vr, &keep);
    if (e->u.binary.return_bool) {
      v = keep ? 1 : 0;
    } else if (!keep) {
      continue;
    }
    promql__sample o = {{NULL, 0}, v, ls->t, 0};
    if (result_metric(a, &ls->ls, &rs->ls, op, m, &o.ls)) return promql__ev_oom(ev);
    if (e->u.binary.return_bool && promql__drop_name(a, &o.ls, &o.ls)) return promql__ev_oom(ev);
    bool one = m->card == PROMQL_CARD_ONE_TO_ONE;
    uint64_t key = one ? ls->h : lhash(&o.ls) ^ (ls->h * 0x9E3779B97F4A7C15ULL);
    size_t k = sm_slot(&seen, key);
    if (seen.v[k] != -1)
      return promql__ev_errorf(ev, one ? "multiple matches for labels: many-to-one matching must "
                                         "be explicit (group_left/group_right)"
                                       : "multiple matches for labels: grouping labels must "
                                         "ensure unique matches");
    seen.k[k] = key;
    seen.v[k] = 1;
    if (promql__vec_push(a, out, &o)) return promql__ev_oom(ev);
  }
  return 0;
}
