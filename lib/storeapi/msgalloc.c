/* msgalloc.c: the allocator Series messages from a gRPC peer are unpacked
 * with. protobuf-c allocates every field of a message on its own (a series
 * with a few labels and one chunk is about 15 mallocs and as many frees),
 * and at a wide fan-out (1,000 endpoints, one small series each) those
 * allocations and glibc's slow paths behind them were a tenth of the
 * gateway's CPU. Here a call's messages are cut from shared blocks: every
 * piece starts with a pointer to its block, which counts the pieces alive
 * (plus one while it is the call's current block), so any piece can be
 * freed on its own, in any order, after the call ended, by anyone holding
 * storeapi_msg_allocator. Pieces larger than half a block get a block of
 * their own. A block freed last frees its memory: a message kept (the
 * gateway keeps series until merged) keeps its block, at most MSG_BLK of
 * memory beyond what it uses. Blocks are lib/base's small blocks
 * (orr_small_*): a fan-out makes and frees one per endpoint and query, a
 * burst glibc's per-thread cache does not hold (callgrind: a malloc of
 * such a block cost about 700 instructions at 1,000 endpoints). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storeapi_int.h"

typedef struct msg_blk {
  atomic_size_t refs; /* pieces alive, +1 while a pool's current block */
  size_t used, cap;
  size_t pad_; /* the pieces after it stay 16-byte aligned */
} msg_blk;

#define MSG_HDR ((size_t)16) /* before each piece: its block */
/* A pool block with its header is 2 KiB, one small-block class. */
#define MSG_BLK ((size_t)2048 - sizeof(msg_blk))

static void blk_unref(msg_blk *b) {
  if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) orr_small_free(b);
}

static void *piece(msg_blk *b, size_t off) {
  char *p = (char *)(b + 1) + off;
  memcpy(p, &b, sizeof(b));
  return p + MSG_HDR;
}

static void *solo_alloc(void *data, size_t n) {
  (void)data;
  if (n > SIZE_MAX - sizeof(msg_blk) - MSG_HDR) return NULL;
  msg_blk *b = orr_small_malloc(sizeof(*b) + MSG_HDR + n);
  if (!b) return NULL;
  atomic_init(&b->refs, 1);
  b->used = b->cap = MSG_HDR + n;
  return piece(b, 0);
}

static void msg_free(void *data, void *p) {
  (void)data;
  if (!p) return;
  msg_blk *b;
  memcpy(&b, (char *)p - MSG_HDR, sizeof(b));
  blk_unref(b);
}

const ProtobufCAllocator storeapi_msg_allocator = {solo_alloc, msg_free, NULL};

static void *pool_alloc(void *data, size_t n) {
  storeapi__msg_pool *pl = data;
  if (n > MSG_BLK / 2) return solo_alloc(NULL, n);
  size_t need = MSG_HDR + ((n + 15) & ~(size_t)15);
  msg_blk *b = pl->cur;
  if (!b || b->cap - b->used < need) {
    storeapi__msg_pool_release(pl);
    if (!(b = orr_small_malloc(sizeof(*b) + MSG_BLK))) return NULL;
    atomic_init(&b->refs, 1);
    b->used = 0;
    b->cap = MSG_BLK;
    pl->cur = b;
  }
  void *p = piece(b, b->used);
  b->used += need;
  atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
  return p;
}

void storeapi__msg_pool_init(storeapi__msg_pool *pl) {
  pl->cur = NULL;
  pl->a.alloc = pool_alloc;
  pl->a.free = msg_free;
  pl->a.allocator_data = pl;
}

void storeapi__msg_pool_release(storeapi__msg_pool *pl) {
  if (pl->cur) blk_unref(pl->cur);
  pl->cur = NULL;
}

void *storeapi_msg_alloc(size_t n) { return solo_alloc(NULL, n); }

void storeapi_msg_free(void *p) { msg_free(NULL, p); }

void storeapi_series_free(Thanos__Series *s) {
  if (s) thanos__series__free_unpacked(s, (ProtobufCAllocator *)&storeapi_msg_allocator);
}

Thanos__Series *storeapi_series_copy(const Thanos__Series *s) {
  size_t len = thanos__series__get_packed_size(s);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return NULL;
  thanos__series__pack(s, buf);
  storeapi__msg_pool pl;
  storeapi__msg_pool_init(&pl);
  Thanos__Series *c = thanos__series__unpack(&pl.a, len, buf);
  storeapi__msg_pool_release(&pl);
  free(buf);
  return c;
}

Thanos__AggrChunk *storeapi_aggr_chunk_copy(const Thanos__AggrChunk *c) {
  size_t len = thanos__aggr_chunk__get_packed_size(c);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return NULL;
  thanos__aggr_chunk__pack(c, buf);
  Thanos__AggrChunk *o =
      thanos__aggr_chunk__unpack((ProtobufCAllocator *)&storeapi_msg_allocator, len, buf);
  free(buf);
  return o;
}
