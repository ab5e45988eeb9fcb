/* reorder.c: see reorder.h. */
#include "reorder.h"

#include <stdlib.h>
#include <string.h>

struct prom_reorder_item {
  orr_arena *a;
  labels_set orig, final;
  void *msg;
  size_t len;
};

void prom_reorder_init(prom_reorder *r, const labels_set *ext, prom_reorder_emit_fn emit,
                       void *arg) {
  memset(r, 0, sizeof(*r));
  r->ext_max = ext && ext->n ? ext->v[ext->n - 1].name : NULL;
  r->emit = emit;
  r->arg = arg;
}

static void item_free(prom_reorder_item *it) {
  if (!it) return;
  orr_arena_destroy(it->a);
  free(it);
}

/* True while |b| may still sort after a later input than |n| once extended:
 * |b| a proper prefix of |n| and n's next label named <= ext_max. */
static bool is_open(const prom_reorder *r, const labels_set *b, const labels_set *n) {
  if (b->n >= n->n) return false;
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->v[i].name, n->v[i].name) != 0 || strcmp(b->v[i].value, n->v[i].value) != 0)
      return false;
  return strcmp(n->v[b->n].name, r->ext_max) <= 0;
}

/* True when a later input may have |n| as such a prefix. */
static bool may_be_prefix(const prom_reorder *r, const labels_set *n) {
  return n->n == 0 || strcmp(n->v[n->n - 1].name, r->ext_max) < 0;
}

static int release_front(prom_reorder *r) {
  prom_reorder_item *it = r->held[0];
  memmove(r->held, r->held + 1, (r->n - 1) * sizeof(*r->held));
  r->n--;
  int rc = r->emit(r->arg, &it->final, it->msg, it->len);
  item_free(it);
  return rc;
}

int prom_reorder_add(prom_reorder *r, const labels_set *orig, const labels_set *final,
                     const void *msg, size_t len) {
  if (!r->ext_max) return r->emit(r->arg, final, msg, len);
  /* What no later input can precede goes out first, from the front. */
  while (r->n > 0 && !is_open(r, &r->held[0]->orig, orig)) {
    int rc = release_front(r);
    if (rc) return rc;
  }
  if (!may_be_prefix(r, orig) && (r->n == 0 || labels_cmp(final, &r->held[0]->final) < 0))
    return r->emit(r->arg, final, msg, len);
  if (r->n >= PROM_REORDER_MAX) return ORR_ELIMIT;
  if (r->n == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 8;
    prom_reorder_item **h = realloc(r->held, nc * sizeof(*h));
    if (!h) return ORR_ENOMEM;
    r->held = h;
    r->cap = nc;
  }
  prom_reorder_item *it = calloc(1, sizeof(*it));
  if (!it) return ORR_ENOMEM;
  it->a = orr_arena_new(len + 512);
  it->len = len;
  it->msg = it->a ? orr_arena_alloc(it->a, len ? len : 1) : NULL;
  if (!it->msg || labels_copy(it->a, orig, &it->orig) || labels_copy(it->a, final, &it->final)) {
    item_free(it);
    return ORR_ENOMEM;
  }
  if (len) memcpy(it->msg, msg, len);
  size_t at = r->n; /* insertion from the back: inputs mostly arrive in order */
  while (at > 0 && labels_cmp(&r->held[at - 1]->final, final) > 0) at--;
  memmove(r->held + at + 1, r->held + at, (r->n - at) * sizeof(*r->held));
  r->held[at] = it;
  r->n++;
  if (r->n > r->max_held) r->max_held = r->n;
  return 0;
}

int prom_reorder_flush(prom_reorder *r) {
  while (r->n > 0) {
    int rc = release_front(r);
    if (rc) return rc;
  }
  return 0;
}

void prom_reorder_free(prom_reorder *r) {
  for (size_t i = 0; i < r->n; i++) item_free(r->held[i]);
  free(r->held);
  r->held = NULL;
  r->n = r->cap = 0;
}
