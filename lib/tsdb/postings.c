/* postings.c: iterators over sorted series references and the set
 * operations selection is built from: intersect (driven by seek), k-way
 * merge (a binary heap), subtraction, and lists read from an index file. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tsdb_int.h"

static _Thread_local char tsdb__errmsg[256];

const char *tsdb_index_last_error(void) { return tsdb__errmsg; }

int tsdb__corrupt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tsdb__errmsg, sizeof(tsdb__errmsg), fmt, ap);
  va_end(ap);
  return ORR_ECORRUPT;
}

bool tsdb_postings_next(tsdb_postings *p) { return p->next(p); }
bool tsdb_postings_seek(tsdb_postings *p, uint64_t v) { return p->seek(p, v); }
uint64_t tsdb_postings_at(const tsdb_postings *p) { return p->cur; }

/* ---------------------------------------------------------------- empty */
static bool empty_next(tsdb_postings *p) { return false; }
static bool empty_seek(tsdb_postings *p, uint64_t v) { return false; }

tsdb_postings *tsdb_postings_empty(orr_arena *a) {
  tsdb_postings *p = orr_arena_calloc(a, 1, sizeof(*p));
  if (!p) return NULL;
  p->next = empty_next;
  p->seek = empty_seek;
  return p;
}

/* ---------------------------------------------------------------- arrays
 * |i| is the index of the next value to return; the current value is at i-1.
 * Seek gallops from the current position, then binary-searches. */
typedef struct {
  tsdb_postings base;
  const uint64_t *v;
  const uint8_t *be; /* big-endian uint32 list instead of v */
  size_t n, i;
} list_postings;

static inline uint64_t list_at(const list_postings *l, size_t i) {
  if (l->v) return l->v[i];
  const uint8_t *b = l->be + 4 * i;
  return (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
}

static bool list_next(tsdb_postings *p) {
  list_postings *l = (list_postings *)p;
  if (l->i >= l->n) {
    l->i = l->n + 1; /* exhausted: stays exhausted */
    return false;
  }
  p->cur = list_at(l, l->i++);
  return true;
}

static bool list_seek(tsdb_postings *p, uint64_t v) {
  list_postings *l = (list_postings *)p;
  if (l->i > 0 && l->i <= l->n && p->cur >= v) return true;
  if (l->i >= l->n) {
    l->i = l->n + 1;
    return false;
  }
  /* Find the first index >= i whose value is >= v. */
  size_t lo = l->i, step = 1, hi = lo;
  while (hi < l->n && list_at(l, hi) < v) {
    lo = hi + 1;
    hi += step;
    step *= 2;
  }
  if (hi > l->n) hi = l->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (list_at(l, mid) < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo >= l->n) {
    l->i = l->n + 1;
    return false;
  }
  p->cur = list_at(l, lo);
  l->i = lo + 1;
  return true;
}

tsdb_postings *tsdb_postings_from_array(orr_arena *a, const uint64_t *v, size_t n) {
  list_postings *l = orr_arena_calloc(a, 1, sizeof(*l));
  if (!l) return NULL;
  l->base.next = list_next;
  l->base.seek = list_seek;
  l->v = v;
  l->n = n;
  return &l->base;
}

tsdb_postings *tsdb__postings_be32(orr_arena *a, const uint8_t *p, size_t count) {
  list_postings *l = orr_arena_calloc(a, 1, sizeof(*l));
  if (!l) return NULL;
  l->base.next = list_next;
  l->base.seek = list_seek;
  l->be = p;
  l->n = count;
  return &l->base;
}

/* ---------------------------------------------------------------- intersect */
typedef struct {
  tsdb_postings base;
  tsdb_postings **its;
  size_t n;
  bool done;
} isect_postings;

/* All iterators are positioned; bring them to a common value >= target. */
static bool isect_align(isect_postings *x, uint64_t target) {
  for (;;) {
    bool moved = false;
    for (size_t i = 0; i < x->n; i++) {
      if (!x->its[i]->seek(x->its[i], target)) {
        x->done = true;
        return false;
      }
      if (x->its[i]->cur > target) {
        target = x->its[i]->cur;
        moved = true;
      }
    }
    if (!moved) {
      x->base.cur = target;
      return true;
    }
  }
}

static bool isect_next(tsdb_postings *p) {
  isect_postings *x = (isect_postings *)p;
  if (x->done) return false;
  if (!x->its[0]->next(x->its[0])) {
    x->done = true;
    return false;
  }
  return isect_align(x, x->its[0]->cur);
}

static bool isect_seek(tsdb_postings *p, uint64_t v) {
  isect_postings *x = (isect_postings *)p;
  if (x->done) return false;
  if (!x->its[0]->seek(x->its[0], v)) {
    x->done = true;
    return false;
  }
  return isect_align(x, x->its[0]->cur);
}

tsdb_postings *tsdb_postings_intersect(orr_arena *a, tsdb_postings *const *its, size_t n) {
  if (n == 0) return tsdb_postings_empty(a);
  if (n == 1) return its[0];
  isect_postings *x = orr_arena_calloc(a, 1, sizeof(*x));
  if (!x) return NULL;
  x->its = orr_arena_alloc(a, n * sizeof(*x->its));
  if (!x->its) return NULL;
  memcpy(x->its, its, n * sizeof(*its));
  x->n = n;
  x->base.next = isect_next;
  x->base.seek = isect_seek;
  return &x->base;
}

/* ---------------------------------------------------------------- merge
 * A min-heap of the positioned iterators keyed by their current value.
 * Before the first call the heap is not built (|started| false). */
typedef struct {
  tsdb_postings base;
  tsdb_postings **h; /* heap of live iterators */
  size_t n;
  bool started, done;
} merge_postings;

static void heap_down(tsdb_postings **h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && h[l]->cur < h[m]->cur) m = l;
    if (r < n && h[r]->cur < h[m]->cur) m = r;
    if (m == i) return;
    tsdb_postings *t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static void heap_build(merge_postings *m) {
  for (size_t i = m->n / 2; i-- > 0;) heap_down(m->h, m->n, i);
}

/* Advances the heap top with |adv| (next or seek), dropping exhausted ones. */
static void heap_advance_top(merge_postings *m, bool seek, uint64_t v) {
  tsdb_postings *t = m->h[0];
  bool ok = seek ? t->seek(t, v) : t->next(t);
  if (!ok) {
    m->h[0] = m->h[--m->n];
  }
  heap_down(m->h, m->n, 0);
}

static bool merge_start(merge_postings *m, bool seek, uint64_t v) {
  size_t k = 0;
  for (size_t i = 0; i < m->n; i++) {
    tsdb_postings *it = m->h[i];
    if (seek ? it->seek(it, v) : it->next(it)) m->h[k++] = it;
  }
  m->n = k;
  heap_build(m);
  m->started = true;
  if (m->n == 0) {
    m->done = true;
    return false;
  }
  m->base.cur = m->h[0]->cur;
  return true;
}

static bool merge_next(tsdb_postings *p) {
  merge_postings *m = (merge_postings *)p;
  if (m->done) return false;
  if (!m->started) return merge_start(m, false, 0);
  uint64_t prev = p->cur;
  while (m->n > 0 && m->h[0]->cur <= prev) heap_advance_top(m, false, 0);
  if (m->n == 0) {
    m->done = true;
    return false;
  }
  p->cur = m->h[0]->cur;
  return true;
}

static bool merge_seek(tsdb_postings *p, uint64_t v) {
  merge_postings *m = (merge_postings *)p;
  if (m->done) return false;
  if (!m->started) return merge_start(m, true, v);
  if (p->cur >= v) return true;
  while (m->n > 0 && m->h[0]->cur < v) heap_advance_top(m, true, v);
  if (m->n == 0) {
    m->done = true;
    return false;
  }
  p->cur = m->h[0]->cur;
  return true;
}

tsdb_postings *tsdb_postings_merge(orr_arena *a, tsdb_postings *const *its, size_t n) {
  if (n == 0) return tsdb_postings_empty(a);
  if (n == 1) return its[0];
  merge_postings *m = orr_arena_calloc(a, 1, sizeof(*m));
  if (!m) return NULL;
  m->h = orr_arena_alloc(a, n * sizeof(*m->h));
  if (!m->h) return NULL;
  memcpy(m->h, its, n * sizeof(*its));
  m->n = n;
  m->base.next = merge_next;
  m->base.seek = merge_seek;
  return &m->base;
}

/* ---------------------------------------------------------------- without */
typedef struct {
  tsdb_postings base;
  tsdb_postings *full, *drop;
  bool drop_live; /* |drop| may still hold values; its cur is valid when started */
  bool drop_started;
} without_postings;

/* |full| is positioned; skip its values present in |drop|. */
static bool without_settle(without_postings *w) {
  for (;;) {
    uint64_t v = w->full->cur;
    if (w->drop_live) {
      if (!w->drop_started || w->drop->cur < v) {
        w->drop_live = w->drop->seek(w->drop, v);
        w->drop_started = true;
      }
    }
    if (!w->drop_live || w->drop->cur != v) {
      w->base.cur = v;
      return true;
    }
    if (!w->full->next(w->full)) return false;
  }
}

static bool without_next(tsdb_postings *p) {
  without_postings *w = (without_postings *)p;
  if (!w->full->next(w->full)) return false;
  return without_settle(w);
}

static bool without_seek(tsdb_postings *p, uint64_t v) {
  without_postings *w = (without_postings *)p;
  if (!w->full->seek(w->full, v)) return false;
  return without_settle(w);
}

tsdb_postings *tsdb_postings_without(orr_arena *a, tsdb_postings *full, tsdb_postings *drop) {
  without_postings *w = orr_arena_calloc(a, 1, sizeof(*w));
  if (!w) return NULL;
  w->full = full;
  w->drop = drop;
  w->drop_live = true;
  w->base.next = without_next;
  w->base.seek = without_seek;
  return &w->base;
}

int tsdb_postings_expand(tsdb_postings *p, orr_arena *a, uint64_t **out, size_t *n) {
  size_t cap = 64, k = 0;
  uint64_t *v = orr_arena_alloc(a, cap * sizeof(*v));
  if (!v) return ORR_ENOMEM;
  while (p->next(p)) {
    if (k == cap) {
      uint64_t *nv = orr_arena_alloc(a, 2 * cap * sizeof(*v));
      if (!nv) return ORR_ENOMEM;
      memcpy(nv, v, k * sizeof(*v));
      v = nv;
      cap *= 2;
    }
    v[k++] = p->cur;
  }
  *out = v;
  *n = k;
  return 0;
}
