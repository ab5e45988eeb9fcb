/* merge.c: the k-way merge of series streams sorted by labels, joining
 * series with equal labels and keeping identical chunks once (HA pairs
 * answering the same data, or the same block reachable twice).
 *
 * Design notes
 * 1. Each input is a FIFO of pushed series; next() picks the smallest head by
 *    a linear scan (k is the number of endpoints, small) and only when every
 *    open input has a head, so the order is final.
 * 2. A merged series borrows the chunks of the messages it was made of and
 *    owns those messages; they are freed with it.
 * 3. Each input's series labels must be unique and ascending; a series lower
 *    than its input's previous one is refused. */
#include <stdlib.h>
#include <string.h>

#include "storeapi_int.h"

typedef struct node {
  struct node *next;
  Thanos__Series *s;
  labels_set lset;
} node;

typedef struct input {
  node *head, *tail;
  size_t n;
  bool closed;
  orr_arena *last_a[2]; /* alternating copies of the last pushed labels */
  int last_i;
  labels_set last;
  bool has_last;
} input;

struct storeapi_merge {
  input *in;
  size_t k;
};

int storeapi_merge_new(size_t ninputs, storeapi_merge **out) {
  storeapi_merge *m = calloc(1, sizeof(*m));
  if (!m) return ORR_ENOMEM;
  m->k = ninputs;
  m->in = calloc(ninputs ? ninputs : 1, sizeof(input));
  if (!m->in) {
    free(m);
    return ORR_ENOMEM;
  }
  for (size_t i = 0; i < ninputs; i++) {
    m->in[i].last_a[0] = orr_arena_new(4096);
    m->in[i].last_a[1] = orr_arena_new(4096);
    if (!m->in[i].last_a[0] || !m->in[i].last_a[1]) {
      m->k = i + 1;
      storeapi_merge_free(m);
      return ORR_ENOMEM;
    }
  }
  *out = m;
  return 0;
}

static void node_free(node *n) {
  thanos__series__free_unpacked(n->s, NULL);
  free(n->lset.v);
  free(n);
}

void storeapi_merge_free(storeapi_merge *m) {
  if (!m) return;
  for (size_t i = 0; i < m->k; i++) {
    for (node *n = m->in[i].head, *nx; n; n = nx) {
      nx = n->next;
      node_free(n);
    }
    orr_arena_destroy(m->in[i].last_a[0]);
    orr_arena_destroy(m->in[i].last_a[1]);
  }
  free(m->in);
  free(m);
}

int storeapi_merge_push(storeapi_merge *m, size_t i, Thanos__Series *s) {
  input *in = &m->in[i];
  node *n = calloc(1, sizeof(*n));
  if (!n || in->closed) {
    free(n);
    thanos__series__free_unpacked(s, NULL);
    return n ? ORR_EINVAL : ORR_ENOMEM;
  }
  n->s = s;
  n->lset.v = calloc(s->n_labels ? s->n_labels : 1, sizeof(labels_label));
  if (!n->lset.v) {
    node_free(n);
    return ORR_ENOMEM;
  }
  for (size_t j = 0; j < s->n_labels; j++) {
    n->lset.v[j].name = s->labels[j]->name ? s->labels[j]->name : "";
    n->lset.v[j].value = s->labels[j]->value ? s->labels[j]->value : "";
  }
  n->lset.n = s->n_labels;
  if (labels_sort(&n->lset) || (in->has_last && labels_cmp(&n->lset, &in->last) <= 0)) {
    node_free(n);
    return ORR_EINVAL;
  }
  in->last_i ^= 1;
  orr_arena_reset(in->last_a[in->last_i]);
  if (labels_copy(in->last_a[in->last_i], &n->lset, &in->last)) {
    in->has_last = false;
    node_free(n);
    return ORR_ENOMEM;
  }
  in->has_last = true;
  if (in->tail)
    in->tail->next = n;
  else
    in->head = n;
  in->tail = n;
  in->n++;
  return 0;
}

void storeapi_merge_close(storeapi_merge *m, size_t i) { m->in[i].closed = true; }

size_t storeapi_merge_buffered(const storeapi_merge *m, size_t i) { return m->in[i].n; }

static bool chunk_eq(const Thanos__Chunk *a, const Thanos__Chunk *b) {
  if (!a || !b) return a == b;
  return a->type == b->type && a->data.len == b->data.len &&
         (a->data.len == 0 || memcmp(a->data.data, b->data.data, a->data.len) == 0);
}

static bool aggr_eq(const Thanos__AggrChunk *a, const Thanos__AggrChunk *b) {
  return a->min_time == b->min_time && a->max_time == b->max_time && chunk_eq(a->raw, b->raw) &&
         chunk_eq(a->count, b->count) && chunk_eq(a->sum, b->sum) && chunk_eq(a->min, b->min) &&
         chunk_eq(a->max, b->max) && chunk_eq(a->counter, b->counter);
}

static int aggr_cmp(const void *pa, const void *pb) {
  const Thanos__AggrChunk *a = *(Thanos__AggrChunk *const *)pa;
  const Thanos__AggrChunk *b = *(Thanos__AggrChunk *const *)pb;
  if (a->min_time != b->min_time) return a->min_time < b->min_time ? -1 : 1;
  if (a->max_time != b->max_time) return a->max_time < b->max_time ? -1 : 1;
  return 0;
}

/* Range, then bytes: a total order, so the output does not depend on the
 * order of inputs and identical chunks end up next to each other. */
static int aggr_cmp_full(const void *pa, const void *pb) {
  int c = aggr_cmp(pa, pb);
  if (c) return c;
  const Thanos__Chunk *a = (*(Thanos__AggrChunk *const *)pa)->raw;
  const Thanos__Chunk *b = (*(Thanos__AggrChunk *const *)pb)->raw;
  if (!a || !b) return a ? 1 : b ? -1 : 0;
  if (a->type != b->type) return a->type < b->type ? -1 : 1;
  size_t n = a->data.len < b->data.len ? a->data.len : b->data.len;
  c = n ? memcmp(a->data.data, b->data.data, n) : 0;
  if (c) return c;
  return a->data.len < b->data.len ? -1 : a->data.len > b->data.len;
}

void storeapi_merged_free(storeapi_merged *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nowned; i++) thanos__series__free_unpacked(s->owned[i], NULL);
  free(s->owned);
  free(s->series.chunks);
  free(s->lset.v);
  free(s);
}

int storeapi_merge_next(storeapi_merge *m, storeapi_merged **out) {
  *out = NULL;
  const labels_set *min = NULL;
  size_t open = 0;
  for (size_t i = 0; i < m->k; i++) {
    input *in = &m->in[i];
    if (!in->head) {
      if (!in->closed) return ORR_EAGAIN;
      continue;
    }
    open++;
    if (!min || labels_cmp(&in->head->lset, min) < 0) min = &in->head->lset;
  }
  if (!open) return ORR_EEOF;
  /* By value: the node holding it is freed below; its label array is not. */
  labels_set minv = *min;
  min = &minv;

  storeapi_merged *r = calloc(1, sizeof(*r));
  if (!r) return ORR_ENOMEM;
  thanos__series__init(&r->series);
  size_t nown = 0, nchunks = 0;
  for (size_t i = 0; i < m->k; i++)
    if (m->in[i].head && labels_equal(&m->in[i].head->lset, min)) {
      nown++;
      nchunks += m->in[i].head->s->n_chunks;
    }
  r->owned = calloc(nown, sizeof(*r->owned));
  r->series.chunks = calloc(nchunks ? nchunks : 1, sizeof(*r->series.chunks));
  if (!r->owned || !r->series.chunks) {
    storeapi_merged_free(r);
    return ORR_ENOMEM;
  }
  /* Pop the equal heads; the first one's labels become the result's. */
  size_t npop = 0;
  for (size_t i = 0; i < m->k; i++) {
    input *in = &m->in[i];
    if (!in->head || !labels_equal(&in->head->lset, min)) continue;
    node *n = in->head;
    in->head = n->next;
    if (!in->head) in->tail = NULL;
    in->n--;
    for (size_t j = 0; j < n->s->n_chunks; j++) r->series.chunks[r->series.n_chunks++] = n->s->chunks[j];
    r->owned[r->nowned++] = n->s;
    if (npop == 0) {
      r->series.labels = n->s->labels;
      r->series.n_labels = n->s->n_labels;
      r->lset = n->lset; /* takes the node's label array */
      min = &r->lset;   /* |minv| may be a node freed below */
      free(n);
    } else {
      free(n->lset.v);
      free(n);
    }
    npop++;
  }
  if (nown > 1 && r->series.n_chunks > 1) {
    qsort(r->series.chunks, r->series.n_chunks, sizeof(*r->series.chunks), aggr_cmp_full);
    size_t w = 1;
    for (size_t j = 1; j < r->series.n_chunks; j++) {
      bool dup = false;
      /* Equal ranges sort together: compare with the run of equal ranges. */
      for (size_t k = w; k-- > 0;) {
        if (aggr_cmp(&r->series.chunks[k], &r->series.chunks[j]) != 0) break;
        if (aggr_eq(r->series.chunks[k], r->series.chunks[j])) {
          dup = true;
          break;
        }
      }
      if (!dup) r->series.chunks[w++] = r->series.chunks[j];
    }
    r->series.n_chunks = w;
  }
  *out = r;
  return 0;
}
