/* test_store.c: the store's index cache — postings come back as the
 * index's list bytes after compression, series bytes unchanged, the least
 * recently used items go first when over the byte budget, oversized items
 * are not stored, a zero-sized cache stores nothing, and the metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_int.h"

/* A postings list as the index stores it. */
static void make_list(orr_buf *b, uint32_t first, uint32_t step, uint32_t n) {
  orr_buf_put_be32(b, 4 + 4 * n);
  size_t body = b->len;
  orr_buf_put_be32(b, n);
  for (uint32_t i = 0; i < n; i++) orr_buf_put_be32(b, first + i * step);
  orr_buf_put_be32(b, orr_crc32c(0, b->data + body, 4 + 4 * n));
}

static void test_postings_roundtrip(void **state) {
  orr_registry *reg = orr_registry_new();
  store_cache *c;
  assert_int_equal(store_cache_new(1 << 20, reg, &c), 0);
  orr_buf l = {0}, got = {0};
  make_list(&l, 16, 3, 5000);
  store_cache_put(c, STORE_CACHE_POSTINGS, "b\x01job\x01x", 7, l.data, l.len);
  assert_true(store_cache_get(c, STORE_CACHE_POSTINGS, "b\x01job\x01x", 7, &got));
  assert_int_equal(got.len, l.len);
  assert_memory_equal(got.data, l.data, l.len);
  orr_arena *a = orr_arena_new(0);
  uint64_t *refs;
  size_t n;
  assert_int_equal(tsdb_postings_list_decode((const uint8_t *)got.data, got.len, a, &refs, &n), 0);
  assert_int_equal(n, 5000);
  assert_int_equal(refs[4999], 16 + 4999 * 3);
  orr_buf_reset(&got);
  assert_false(store_cache_get(c, STORE_CACHE_POSTINGS, "b\x01job\x01y", 7, &got));
  assert_false(store_cache_get(c, STORE_CACHE_SERIES, "b\x01job\x01x", 7, &got)); /* type is part of the key */
  orr_buf m = {0};
  assert_int_equal(orr_registry_render(reg, &m), 0);
  assert_non_null(strstr(m.data, "thanos_store_index_cache_hits_total{item_type=\"Postings\"} 1"));
  assert_non_null(strstr(m.data, "thanos_store_index_cache_requests_total{item_type=\"Postings\"} 2"));
  /* Compressed: 5000 entries of step 3 take far less than 20 kB. */
  char *sz = strstr(m.data, "thanos_store_index_cache_total_size_bytes ");
  assert_non_null(sz);
  assert_true(atof(sz + strlen("thanos_store_index_cache_total_size_bytes ")) < 2000);
  orr_buf_free(&m);
  orr_arena_destroy(a);
  orr_buf_free(&l);
  orr_buf_free(&got);
  store_cache_free(c);
  orr_registry_destroy(reg);
}

static void test_lru_by_bytes(void **state) {
  store_cache *c;
  assert_int_equal(store_cache_new(20000, NULL, &c), 0);
  char val[1500];
  memset(val, 'v', sizeof val);
  char key[16];
  for (int i = 0; i < 20; i++) {
    snprintf(key, sizeof key, "k%02d", i);
    store_cache_put(c, STORE_CACHE_SERIES, key, 3, val, sizeof val);
    if (i >= 1) { /* keep k00 recently used */
      orr_buf b = {0};
      assert_true(store_cache_get(c, STORE_CACHE_SERIES, "k00", 3, &b));
      assert_int_equal(b.len, sizeof val);
      orr_buf_free(&b);
    }
  }
  orr_buf b = {0};
  assert_true(store_cache_get(c, STORE_CACHE_SERIES, "k00", 3, &b));
  orr_buf_reset(&b);
  assert_true(store_cache_get(c, STORE_CACHE_SERIES, "k19", 3, &b));
  orr_buf_reset(&b);
  assert_false(store_cache_get(c, STORE_CACHE_SERIES, "k01", 3, &b)); /* evicted first */
  /* More than a tenth of the cache: not stored. */
  static char big[3000];
  store_cache_put(c, STORE_CACHE_SERIES, "big", 3, big, sizeof big);
  assert_false(store_cache_get(c, STORE_CACHE_SERIES, "big", 3, &b));
  /* A replaced value wins. */
  store_cache_put(c, STORE_CACHE_SERIES, "k19", 3, "new", 3);
  assert_true(store_cache_get(c, STORE_CACHE_SERIES, "k19", 3, &b));
  assert_int_equal(b.len, 3);
  assert_memory_equal(b.data, "new", 3);
  orr_buf_free(&b);
  store_cache_free(c);
  assert_int_equal(store_cache_new(0, NULL, &c), 0);
  store_cache_put(c, STORE_CACHE_SERIES, "k", 1, "v", 1);
  assert_false(store_cache_get(c, STORE_CACHE_SERIES, "k", 1, &b));
  store_cache_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_postings_roundtrip),
      cmocka_unit_test(test_lru_by_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
