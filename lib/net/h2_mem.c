/* h2_mem.c: the allocator of the gRPC client's nghttp2 sessions — small
 * blocks kept on per-thread free lists by size class.
 *
 * A gateway opens a stream per endpoint and query, and nghttp2 allocates
 * about seven small objects per stream (the stream, the outbound item, the
 * copied header list, ...), frees them when the stream closes, and does so
 * for every endpoint in one burst: glibc's tcache (seven blocks per size)
 * overflows and most of those calls took malloc's slow path (callgrind:
 * ~5% of a thousand-endpoint query). Here a block of a class is popped
 * from and pushed to the thread's list for that class. A block is freed on
 * the thread that frees it (its own list): a session lives on one loop
 * thread, so in practice that is the thread that allocated it. Each list
 * keeps at most H2_MEM_KEEP blocks (the rest go back to malloc), so the
 * memory kept is bounded by the largest burst, at most ~10 MiB a thread,
 * and a thread's lists are freed when it exits (a thread-specific key).
 * Sanitizer builds use malloc directly (use-after-free stays visible). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

#if defined(__SANITIZE_ADDRESS__)
#define H2_MEM_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H2_MEM_POOL 0
#endif
#endif
#ifndef H2_MEM_POOL
#define H2_MEM_POOL 1
#endif

#define H2_MEM_CLASSES 5 /* 64, 128, 256, 512, 1024 bytes */
#define H2_MEM_BIG 255   /* not pooled: plain malloc */
#define H2_MEM_KEEP 2048 /* blocks kept per class and thread */

/* Sits before every block; 16 bytes keep the block's alignment. */
typedef union hdr {
  struct {
    uint32_t cls;
    uint32_t size; /* a big block's requested size (realloc) */
  } h;
  union hdr *next; /* on a free list */
  _Alignas(16) unsigned char pad[16];
} hdr;
_Static_assert(sizeof(hdr) == 16, "h2_mem header");

typedef struct freelist {
  hdr *head;
  size_t n;
} freelist;

static _Thread_local freelist h2_free[H2_MEM_CLASSES];

static _Thread_local bool h2_registered; /* the exit destructor is set */
static pthread_key_t h2_key;
static pthread_once_t h2_once = PTHREAD_ONCE_INIT;
static bool h2_key_ok;

/* Runs in the exiting thread: its lists go back to malloc. */
static void lists_free(void *unused) {
  (void)unused;
  for (unsigned c = 0; c < H2_MEM_CLASSES; c++) {
    while (h2_free[c].head) {
      union hdr *b = h2_free[c].head;
      h2_free[c].head = b->next;
      free(b);
    }
    h2_free[c].n = 0;
  }
}

static void key_make(void) { h2_key_ok = pthread_key_create(&h2_key, lists_free) == 0; }

static size_t class_size(unsigned c) { return (size_t)64 << c; }

static int class_of(size_t size) {
  for (unsigned c = 0; c < H2_MEM_CLASSES; c++)
    if (size <= class_size(c)) return (int)c;
  return -1;
}

static void *pool_malloc(size_t size, void *ud) {
  (void)ud;
  int c = class_of(size);
  hdr *b;
  if (c < 0) {
    if (size > UINT32_MAX - sizeof(hdr) || !(b = malloc(sizeof(hdr) + size))) return NULL;
    b->h.cls = H2_MEM_BIG;
    b->h.size = (uint32_t)size;
    return b + 1;
  }
  freelist *fl = &h2_free[c];
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

static void pool_free(void *ptr, void *ud) {
  (void)ud;
  if (!ptr) return;
  hdr *b = (hdr *)ptr - 1;
  uint32_t c = b->h.cls;
  if (c == H2_MEM_BIG || h2_free[c].n >= H2_MEM_KEEP) {
    free(b);
    return;
  }
  if (!h2_registered) {
    pthread_once(&h2_once, key_make);
    if (!h2_key_ok || pthread_setspecific(h2_key, &h2_registered)) {
      free(b); /* nothing would free the list at exit: keep none */
      return;
    }
    h2_registered = true;
  }
  freelist *fl = &h2_free[c];
  b->next = fl->head;
  fl->head = b;
  fl->n++;
}

static void *pool_calloc(size_t nmemb, size_t size, void *ud) {
  if (size && nmemb > SIZE_MAX / size) return NULL;
  void *p = pool_malloc(nmemb * size, ud);
  if (p) memset(p, 0, nmemb * size);
  return p;
}

static void *pool_realloc(void *ptr, size_t size, void *ud) {
  if (!ptr) return pool_malloc(size, ud);
  if (size == 0) {
    pool_free(ptr, ud);
    return NULL;
  }
  hdr *b = (hdr *)ptr - 1;
  size_t have = b->h.cls == H2_MEM_BIG ? b->h.size : class_size(b->h.cls);
  if (b->h.cls != H2_MEM_BIG && size <= have) return ptr;
  void *n = pool_malloc(size, ud);
  if (!n) return NULL;
  memcpy(n, ptr, have < size ? have : size);
  pool_free(ptr, ud);
  return n;
}

static nghttp2_mem h2_mem = {NULL, pool_malloc, pool_free, pool_calloc, pool_realloc};

nghttp2_mem *net__h2_mem_pool(void) { return &h2_mem; }

nghttp2_mem *net__h2_mem(void) {
  return H2_MEM_POOL ? &h2_mem : NULL; /* NULL: nghttp2's default, malloc */
}
