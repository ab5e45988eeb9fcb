/* dedup.c (lib/storeapi): HA deduplication of one series' replicas — Thanos's
 * penalty algorithm (pkg/dedup/iter.go) over decoded samples, with the
 * counter-aware value adjustment for rate/increase/irate/resets. Shared by
 * the gateway (query-time dedup) and the compactor (vertical compaction).
 *
 * Design notes
 * 1. The replicas form a left-deep tree of two-input nodes, ((r0 r1) r2)...,
 *    as Thanos folds them; a node and a leaf share one iterator interface
 *    (next, seek, at, adjust).
 * 2. A node stays on the replica it used last: the other one is sought past
 *    lastT + 1 + penalty, the penalty being 5000 ms before any delta is known
 *    and then twice the last observed step. Only when the current replica
 *    has a gap longer than that does the other one win.
 * 3. Seek never moves an iterator backwards; an exhausted iterator stays
 *    exhausted.
 * 4. Counter mode: when a node switches replicas, every live leaf below it
 *    whose current value is lower than the last value emitted adds the
 *    difference to all its later values. Stale markers (a NaN with a fixed
 *    bit pattern) are never adjusted, so they reach PromQL intact. */
#include <math.h>
#include <string.h>

#include "storeapi_int.h"

typedef struct it_node {
  bool leaf;
  bool counter;
  /* leaf */
  const storeapi_point *pts;
  size_t n;
  long i; /* current index; -1 before the first next */
  double adj;
  /* node */
  struct it_node *a, *b, *lastit;
  bool aok, bok, use_a;
  int64_t last_t, pen_a, pen_b;
} it_node;

static bool is_stale(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof(b));
  return b == 0x7ff0000000000002ull;
}

static bool it_next(it_node *it);

static int64_t it_at_t(const it_node *it) {
  if (it->leaf) return it->pts[it->i].t;
  return it->use_a ? it_at_t(it->a) : it_at_t(it->b);
}

static double it_at_v(const it_node *it) {
  if (it->leaf) {
    double v = it->pts[it->i].v;
    return is_stale(v) ? v : v + it->adj;
  }
  return it_at_v(it->lastit);
}

static void it_adjust(it_node *it, double last) {
  if (it->leaf) {
    if (!it->counter) return;
    double v = it_at_v(it);
    if (last > v) it->adj += last - v; /* NaN compares false: nothing */
    return;
  }
  if (it->aok) it_adjust(it->a, last);
  if (it->bok) it_adjust(it->b, last);
}

static bool it_seek(it_node *it, int64_t t) {
  if (it->leaf) {
    if (it->i < 0) it->i = 0;
    while ((size_t)it->i < it->n && it->pts[it->i].t < t) it->i++;
    return (size_t)it->i < it->n;
  }
  /* As Thanos: step with next so that gaps are not jumped over. */
  for (;;) {
    int64_t ts = it_at_t(it);
    if (ts >= t) return it->use_a ? it_seek(it->a, ts) : it_seek(it->b, ts);
    if (!it_next(it)) return false;
  }
}

static bool it_next(it_node *it) {
  if (it->leaf) {
    if ((size_t)(it->i + 1) >= it->n) {
      it->i = (long)it->n;
      return false;
    }
    it->i++;
    return true;
  }
  /* As Thanos: the value last emitted (through lastIter), when there was one. */
  bool had_last = (it->use_a ? it->aok : it->bok) && (it->lastit == it->a ? it->aok : it->bok);
  double last_v = had_last ? it_at_v(it->lastit) : 0;
  bool last_use_a = it->use_a;
  bool ok;
  const int64_t initial_penalty = 5000;

  if (it->aok) it->aok = it_seek(it->a, it->last_t + 1 + it->pen_a);
  if (it->bok) it->bok = it_seek(it->b, it->last_t + 1 + it->pen_b);
  if (!it->aok) {
    it->use_a = false;
    if (it->bok) {
      it->last_t = it_at_t(it->b);
      it->lastit = it->b;
      it->pen_b = 0;
    }
    ok = it->bok;
  } else if (!it->bok) {
    it->use_a = true;
    it->last_t = it_at_t(it->a);
    it->lastit = it->a;
    it->pen_a = 0;
    ok = true;
  } else {
    int64_t ta = it_at_t(it->a), tb = it_at_t(it->b);
    it->use_a = ta <= tb;
    if (it->use_a) {
      it->pen_b = it->last_t != INT64_MIN ? 2 * (ta - it->last_t) : initial_penalty;
      it->pen_a = 0;
      it->last_t = ta;
      it->lastit = it->a;
    } else {
      it->pen_a = it->last_t != INT64_MIN ? 2 * (tb - it->last_t) : initial_penalty;
      it->pen_b = 0;
      it->last_t = tb;
      it->lastit = it->b;
    }
    ok = true;
  }
  if (it->use_a != last_use_a && had_last) it_adjust(it, last_v);
  return ok;
}

long storeapi_dedup_penalty(const storeapi_replica *reps, size_t nrep, bool counter, int64_t mint,
                            int64_t maxt, orr_arena *scratch, storeapi_point *out) {
  if (nrep == 0) return 0;
  it_node *nodes = orr_arena_calloc(scratch, 2 * nrep, sizeof(*nodes));
  if (!nodes) return ORR_ENOMEM;
  for (size_t i = 0; i < nrep; i++) {
    it_node *l = &nodes[i];
    l->leaf = true;
    l->counter = counter;
    l->pts = reps[i].pts;
    l->n = reps[i].n;
    l->i = -1;
  }
  it_node *root = &nodes[0];
  for (size_t i = 1; i < nrep; i++) {
    it_node *d = &nodes[nrep + i];
    d->a = root;
    d->b = &nodes[i];
    d->aok = it_next(d->a);
    d->bok = it_next(d->b);
    d->last_t = INT64_MIN;
    d->lastit = d->a;
    root = d;
  }
  long k = 0;
  if (nrep == 1) {
    for (size_t i = 0; i < reps[0].n; i++)
      if (reps[0].pts[i].t >= mint && reps[0].pts[i].t <= maxt) out[k++] = reps[0].pts[i];
    return k;
  }
  int64_t prev = INT64_MIN;
  while (it_next(root)) {
    int64_t t = it_at_t(root);
    if (t > maxt) break;
    if (t < mint || (k > 0 && t <= prev)) continue;
    out[k].t = t;
    out[k].v = it_at_v(root);
    prev = t;
    k++;
  }
  return k;
}
