/* arena.c: per-request bump allocator. Blocks are chained; an allocation
 * larger than a quarter block gets a block of its own so that a few large
 * buffers do not waste the tail of the current block. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define ARENA_ALIGN 16u
#define ARENA_DEFAULT_BLOCK (64u * 1024u)

typedef struct arena_block {
  struct arena_block *next;
  size_t size; /* usable bytes after the header */
  size_t used;
  _Alignas(16) unsigned char data[];
} arena_block;

struct orr_arena {
  arena_block *head;  /* current block; older blocks follow */
  arena_block *first; /* the block made with the arena, kept by reset */
  size_t block_size;
  size_t used;
  size_t reserved;
};

static arena_block *block_new(size_t size) {
  if (size > SIZE_MAX - sizeof(arena_block)) return NULL;
  arena_block *b = malloc(sizeof(arena_block) + size);
  if (!b) return NULL;
  b->next = NULL;
  b->size = size;
  b->used = 0;
  return b;
}

orr_arena *orr_arena_new(size_t block_size) {
  orr_arena *a = calloc(1, sizeof(*a));
  if (!a) return NULL;
  a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
  a->head = block_new(a->block_size);
  if (!a->head) {
    free(a);
    return NULL;
  }
  a->first = a->head;
  a->reserved = a->block_size;
  return a;
}

static void free_chain(arena_block *b) {
  while (b) {
    arena_block *n = b->next;
    free(b);
    b = n;
  }
}

void orr_arena_destroy(orr_arena *a) {
  if (!a) return;
  free_chain(a->head);
  free(a);
}

void orr_arena_reset(orr_arena *a) {
  /* Keep the first block only. It is not necessarily the tail of the chain:
   * dedicated large blocks are linked in right behind the current block. */
  arena_block *b = a->head;
  while (b) {
    arena_block *n = b->next;
    if (b != a->first) free(b);
    b = n;
  }
  a->first->used = 0;
  a->first->next = NULL;
  a->head = a->first;
  a->used = 0;
  a->reserved = a->first->size;
}

void *orr_arena_alloc(orr_arena *a, size_t n) {
  if (n == 0) n = 1;
  if (n > SIZE_MAX - ARENA_ALIGN) return NULL;
  size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  arena_block *b = a->head;
  if (b && b->size - b->used >= need) {
    void *p = b->data + b->used;
    b->used += need;
    a->used += need;
    return p;
  }
  if (need > a->block_size / 4) {
    /* Dedicated block, linked behind the current one so the current block's
     * free tail stays usable. */
    arena_block *big = block_new(need);
    if (!big) return NULL;
    big->used = need;
    if (b) {
      big->next = b->next;
      b->next = big;
    } else {
      a->head = big;
    }
    a->used += need;
    a->reserved += need;
    return big->data;
  }
  arena_block *nb = block_new(a->block_size);
  if (!nb) return NULL;
  nb->next = b;
  a->head = nb;
  a->reserved += nb->size;
  nb->used = need;
  a->used += need;
  return nb->data;
}

void *orr_arena_calloc(orr_arena *a, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  void *p = orr_arena_alloc(a, n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

char *orr_arena_strndup(orr_arena *a, const char *s, size_t n) {
  if (n == SIZE_MAX) return NULL;
  char *p = orr_arena_alloc(a, n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *orr_arena_strdup(orr_arena *a, const char *s) { return orr_arena_strndup(a, s, strlen(s)); }

char *orr_arena_sprintf(orr_arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = NULL;
  if (n >= 0) {
    p = orr_arena_alloc(a, (size_t)n + 1);
    if (p) vsnprintf(p, (size_t)n + 1, fmt, ap2);
  }
  va_end(ap2);
  return p;
}

size_t orr_arena_used(const orr_arena *a) { return a->used; }
size_t orr_arena_reserved(const orr_arena *a) { return a->reserved; }
