/* merge.c: the k-way merge of series streams sorted by labels, joining
 * series with equal labels and keeping identical chunks once (HA pairs
 * answering the same data, or the same block reachable twice).
 *
 * Design notes
 * 1. Each input is a FIFO of pushed series. The inputs that have a head
 *    sit in a binary min-heap ordered by (head labels, input index); next()
 *    yields only when every open input has a head (|nwait|, the open inputs
 *    without one, is 0), so the order is final. A fan-out has an input per
 *    endpoint: with a thousand endpoints a linear scan per yielded series
 *    made the merge O(k²) and most of the gateway's time (perf).
 * 2. The heads equal to the smallest are popped in input order (as the
 *    linear scan did), so the result does not depend on the heap's shape.
 * 3. A merged series borrows the chunks of the messages it was made of and
 *    owns those messages; they are freed with it.
 * 4. Each input's series labels must be unique and ascending; a series lower
 *    than its input's previous one is refused. The previous one is the
 *    input's tail while it has one; only when next() takes the last node of
 *    an input still open are its labels copied (into a small arena made
 *    then). A fan-out's inputs mostly close before they drain, so they
 *    cost no copy and no arena (and an allocation of over 1 KiB per
 *    endpoint and query took glibc's slow path).
 * 5. A node is one allocation with its label array; a merged series one
 *    with its owned and chunk pointers and its labels: a fan-out over a
 *    thousand one-series endpoints made five allocations per series. Both
 *    are lib/base's small blocks (orr_small_*): a fan-out makes and frees
 *    one of each per endpoint and query in a burst. */
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
  orr_arena *last_a; /* |last|'s strings (note 4), or NULL */
  labels_set last;    /* the labels of the last node taken, when no tail */
  bool has_last;
} input;

struct storeapi_merge {
  input *in;
  size_t k;
  size_t *heap; /* input indices with a head (note 1) */
  size_t nheap;
  size_t nwait; /* open inputs without a head */
  size_t *eq;   /* scratch: the inputs popped by one next() */
  ProtobufCAllocator *alloc; /* the pushed series' (NULL: malloc's) */
};

/* ---------------------------------------------------------------- heap */
static int head_cmp(const storeapi_merge *m, size_t a, size_t b) {
  int c = labels_cmp(&m->in[a].head->lset, &m->in[b].head->lset);
  return c ? c : (a < b ? -1 : a > b);
}

static void heap_up(storeapi_merge *m, size_t i) {
  size_t x = m->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (head_cmp(m, m->heap[p], x) <= 0) break;
    m->heap[i] = m->heap[p];
    i = p;
  }
  m->heap[i] = x;
}

static void heap_push(storeapi_merge *m, size_t i) {
  m->heap[m->nheap++] = i;
  heap_up(m, m->nheap - 1);
}

/* Bottom-up (Floyd): the hole left at the root moves down along the
 * smaller children to a leaf, one comparison per level, and the last
 * element, which belongs near the bottom, sifts up from there — about half
 * the comparisons of sifting it down from the root (two per level). Each
 * comparison is a label-set comparison, and a fan-out pops once per series
 * from a heap of one input per endpoint. The order is the same: head_cmp
 * is total. */
static size_t heap_pop(storeapi_merge *m) {
  size_t top = m->heap[0], n = --m->nheap;
  if (n == 0) return top;
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && head_cmp(m, m->heap[c + 1], m->heap[c]) < 0) c++;
    m->heap[i] = m->heap[c];
    i = c;
  }
  m->heap[i] = m->heap[n];
  heap_up(m, i);
  return top;
}

int storeapi_merge_new(size_t ninputs, storeapi_merge **out) {
  storeapi_merge *m = calloc(1, sizeof(*m));
  if (!m) return ORR_ENOMEM;
  m->k = ninputs;
  m->nwait = ninputs;
  m->in = calloc(ninputs ? ninputs : 1, sizeof(input));
  m->heap = malloc((ninputs ? ninputs : 1) * sizeof(size_t));
  m->eq = malloc((ninputs ? ninputs : 1) * sizeof(size_t));
  if (!m->in || !m->heap || !m->eq) {
    storeapi_merge_free(m);
    return ORR_ENOMEM;
  }
  *out = m;
  return 0;
}

static void node_free(const storeapi_merge *m, node *n) {
  thanos__series__free_unpacked(n->s, m->alloc);
  orr_small_free(n);
}

void storeapi_merge_set_allocator(storeapi_merge *m, const ProtobufCAllocator *a) {
  m->alloc = (ProtobufCAllocator *)a;
}

void storeapi_merge_free(storeapi_merge *m) {
  if (!m) return;
  for (size_t i = 0; m->in && i < m->k; i++) {
    for (node *n = m->in[i].head, *nx; n; n = nx) {
      nx = n->next;
      node_free(m, n);
    }
    orr_arena_destroy(m->in[i].last_a);
  }
  free(m->in);
  free(m->heap);
  free(m->eq);
  free(m);
}

int storeapi_merge_push(storeapi_merge *m, size_t i, Thanos__Series *s) {
  input *in = &m->in[i];
  node *n = in->closed ? NULL : orr_small_calloc(1, sizeof(*n) + s->n_labels * sizeof(labels_label));
  if (!n) {
    thanos__series__free_unpacked(s, m->alloc);
    return in->closed ? ORR_EINVAL : ORR_ENOMEM;
  }
  n->s = s;
  n->lset.v = (labels_label *)(n + 1); /* note 5 */
  for (size_t j = 0; j < s->n_labels; j++) {
    n->lset.v[j].name = s->labels[j]->name ? s->labels[j]->name : "";
    n->lset.v[j].value = s->labels[j]->value ? s->labels[j]->value : "";
  }
  n->lset.n = s->n_labels;
  const labels_set *prev = in->tail ? &in->tail->lset : in->has_last ? &in->last : NULL;
  if (labels_sort(&n->lset) || (prev && labels_cmp(&n->lset, prev) <= 0)) {
    node_free(m, n);
    return ORR_EINVAL;
  }
  in->n++;
  if (in->tail) {
    in->tail->next = n;
    in->tail = n;
    return 0;
  }
  in->head = in->tail = n;
  m->nwait--; /* |in| is open: it was waited for */
  heap_push(m, i);
  return 0;
}

void storeapi_merge_close(storeapi_merge *m, size_t i) {
  input *in = &m->in[i];
  if (in->closed) return;
  in->closed = true;
  if (!in->head) m->nwait--;
}

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
  for (size_t i = 0; i < s->nowned; i++)
    thanos__series__free_unpacked(s->owned[i], (ProtobufCAllocator *)s->alloc);
  orr_small_free(s); /* note 5: the arrays are part of it */
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

int storeapi_merge_next(storeapi_merge *m, storeapi_merged **out) {
  *out = NULL;
  if (m->nwait) return ORR_EAGAIN;
  if (!m->nheap) return ORR_EEOF;
  /* The heads equal to the smallest, in input order (note 2). They stay
   * in their inputs until the allocation below succeeded. */
  const labels_set *min = &m->in[m->heap[0]].head->lset;
  size_t nown = 0, nchunks = 0;
  m->eq[nown++] = heap_pop(m);
  while (m->nheap && labels_equal(&m->in[m->heap[0]].head->lset, min))
    m->eq[nown++] = heap_pop(m);
  if (nown > 1) qsort(m->eq, nown, sizeof(*m->eq), cmp_size);
  for (size_t e = 0; e < nown; e++) nchunks += m->in[m->eq[e]].head->s->n_chunks;
  size_t nl = m->in[m->eq[0]].head->lset.n;
  storeapi_merged *r = orr_small_calloc(1, sizeof(*r) + (nown + nchunks) * sizeof(void *) +
                                     nl * sizeof(labels_label));
  if (!r) {
    for (size_t e = 0; e < nown; e++) heap_push(m, m->eq[e]);
    return ORR_ENOMEM;
  }
  thanos__series__init(&r->series);
  r->alloc = m->alloc;
  r->owned = (Thanos__Series **)(r + 1); /* note 5 */
  r->series.chunks = (Thanos__AggrChunk **)(r->owned + nown);
  r->lset.v = (labels_label *)(r->series.chunks + nchunks);
  /* Pop the equal heads; the first one's labels become the result's. */
  for (size_t e = 0; e < nown; e++) {
    input *in = &m->in[m->eq[e]];
    node *n = in->head;
    in->head = n->next;
    in->n--;
    if (in->head) {
      heap_push(m, m->eq[e]);
    } else {
      in->tail = NULL;
      if (!in->closed) {
        m->nwait++;
        /* Note 4: the order check needs these labels after |n| is gone. */
        if (!in->last_a && !(in->last_a = orr_arena_new(512))) {
          in->has_last = false;
        } else {
          orr_arena_reset(in->last_a);
          in->has_last = labels_copy(in->last_a, &n->lset, &in->last) == 0;
        }
      }
    }
    for (size_t j = 0; j < n->s->n_chunks; j++) r->series.chunks[r->series.n_chunks++] = n->s->chunks[j];
    r->owned[r->nowned++] = n->s;
    if (e == 0) {
      r->series.labels = n->s->labels;
      r->series.n_labels = n->s->n_labels;
      memcpy(r->lset.v, n->lset.v, nl * sizeof(labels_label));
      r->lset.n = nl;
    }
    orr_small_free(n);
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
