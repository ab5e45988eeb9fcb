/* small.c: orr_small_*, blocks kept on per-thread free lists by size class.
 *
 * A gateway's fan-out makes and frees the same few small objects for every
 * endpoint of every query, in one burst (a thousand of a size): nghttp2's
 * stream state, a call's bookkeeping, the merge's series, decoded samples.
 * glibc's tcache keeps seven blocks of a size, so most of those calls took
 * malloc's slow path (callgrind: a malloc of 2 KiB after a burst of frees
 * cost about 700 instructions with its consolidation). Here a block of a
 * class is popped from and pushed to the calling thread's list for that
 * class. A block is freed onto the list of the thread that frees it, so a
 * thread that only frees (rare here: a loop allocates and frees its own)
 * keeps what its lists hold. Each list keeps at most keep_of(class) blocks
 * (2,048, and 2 MiB of the largest class; the rest go back to malloc), so
 * the memory kept is bounded by the largest burst, about 6 MiB a thread,
 * and a thread's lists are freed when it exits (a thread-specific key).
 * Larger blocks are malloc's, behind the same 16-byte header.
 * Sanitizer builds use malloc directly (use-after-free stays visible);
 * orr__small_pool_* is the pool in every build (tests). */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define SMALL_POOL (!ORR_ASAN)

#define CLASSES 6       /* 64, 128, 256, 512, 1024, 2048 bytes */
#define BIG 255         /* not pooled: plain malloc */
#define KEEP 2048       /* blocks kept per class and thread, */
#define KEEP_BYTES (2u << 20) /* and at most this much of one class */

/* Sits before every block; 16 bytes keep the block's alignment. */
typedef union hdr {
  struct {
    uint32_t cls;
    uint32_t size; /* a big block's requested size (realloc) */
  } h;
  union hdr *next; /* on a free list */
  _Alignas(16) unsigned char pad[16];
} hdr;
_Static_assert(sizeof(hdr) == 16, "small block header");

typedef struct freelist {
  hdr *head;
  size_t n;
} freelist;

static _Thread_local freelist lists[CLASSES];

static _Thread_local bool registered; /* the exit destructor is set */
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool key_ok;

/* Runs in the exiting thread: its lists go back to malloc. */
static void lists_free(void *unused) {
  (void)unused;
  for (unsigned c = 0; c < CLASSES; c++) {
    while (lists[c].head) {
      hdr *b = lists[c].head;
      lists[c].head = b->next;
      free(b);
    }
    lists[c].n = 0;
  }
}

static void key_make(void) { key_ok = pthread_key_create(&key, lists_free) == 0; }

static size_t class_size(unsigned c) { return (size_t)64 << c; }

static size_t keep_of(unsigned c) {
  size_t k = KEEP_BYTES / class_size(c);
  return k < KEEP ? k : KEEP;
}

static int class_of(size_t size) {
  for (unsigned c = 0; c < CLASSES; c++)
    if (size <= class_size(c)) return (int)c;
  return -1;
}

void *orr__small_pool_malloc(size_t size) {
  int c = class_of(size);
  hdr *b;
  if (c < 0) {
    if (size > UINT32_MAX - sizeof(hdr) || !(b = malloc(sizeof(hdr) + size))) return NULL;
    b->h.cls = BIG;
    b->h.size = (uint32_t)size;
    return b + 1;
  }
  freelist *fl = &lists[c];
  if (fl->head) {
    b = fl->head;
    fl->head = b->next;
    fl->n--;
  } else if (!(b = malloc(sizeof(hdr) + class_size((unsigned)c)))) {
    return NULL;
  }
  b->h.cls = (uint32_t)c;
  b->h.size = 0;
  return b + 1;
}

void orr__small_pool_free(void *ptr) {
  if (!ptr) return;
  hdr *b = (hdr *)ptr - 1;
  uint32_t c = b->h.cls;
  if (c == BIG || lists[c].n >= keep_of(c)) {
    free(b);
    return;
  }
  if (!registered) {
    pthread_once(&once, key_make);
    if (!key_ok || pthread_setspecific(key, &registered)) {
      free(b); /* nothing would free the list at exit: keep none */
      return;
    }
    registered = true;
  }
  freelist *fl = &lists[c];
  b->next = fl->head;
  fl->head = b;
  fl->n++;
}

void *orr__small_pool_calloc(size_t nmemb, size_t size) {
  if (size && nmemb > SIZE_MAX / size) return NULL;
  void *p = orr__small_pool_malloc(nmemb * size);
  if (p) memset(p, 0, nmemb * size);
  return p;
}

void *orr__small_pool_realloc(void *ptr, size_t size) {
  if (!ptr) return orr__small_pool_malloc(size);
  if (size == 0) {
    orr__small_pool_free(ptr);
    return NULL;
  }
  hdr *b = (hdr *)ptr - 1;
  size_t have = b->h.cls == BIG ? b->h.size : class_size(b->h.cls);
  if (b->h.cls != BIG && size <= have) return ptr;
  void *n = orr__small_pool_malloc(size);
  if (!n) return NULL;
  memcpy(n, ptr, have < size ? have : size);
  orr__small_pool_free(ptr);
  return n;
}

void *orr_small_malloc(size_t size) {
  return SMALL_POOL ? orr__small_pool_malloc(size) : malloc(size ? size : 1);
}

void *orr_small_calloc(size_t nmemb, size_t size) {
  return SMALL_POOL ? orr__small_pool_calloc(nmemb, size) : calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *orr_small_realloc(void *ptr, size_t size) {
  if (SMALL_POOL) return orr__small_pool_realloc(ptr, size);
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, size);
}

void orr_small_free(void *ptr) {
  if (SMALL_POOL) orr__small_pool_free(ptr);
  else free(ptr);
}
