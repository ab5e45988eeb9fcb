/* h2_mem.c: the allocator of the gRPC client's nghttp2 sessions, lib/base's
 * small blocks (orr_small_*, small.c). A gateway opens a stream per
 * endpoint and query, and nghttp2 allocates about seven small objects per
 * stream (the stream, the outbound item, the copied header list, ...),
 * frees them when the stream closes, and does so for every endpoint in one
 * burst, which glibc's per-thread cache does not hold. */
#include "net_int.h"

static void *pool_malloc(size_t size, void *ud) {
  (void)ud;
  return orr__small_pool_malloc(size);
}

static void pool_free(void *ptr, void *ud) {
  (void)ud;
  orr__small_pool_free(ptr);
}

static void *pool_calloc(size_t nmemb, size_t size, void *ud) {
  (void)ud;
  return orr__small_pool_calloc(nmemb, size);
}

static void *pool_realloc(void *ptr, size_t size, void *ud) {
  (void)ud;
  return orr__small_pool_realloc(ptr, size);
}

static nghttp2_mem h2_mem = {NULL, pool_malloc, pool_free, pool_calloc, pool_realloc};

nghttp2_mem *net__h2_mem_pool(void) { return &h2_mem; }

nghttp2_mem *net__h2_mem(void) {
  return ORR_ASAN ? NULL : &h2_mem; /* NULL: nghttp2's default, malloc */
}
