/* test_crc32c.c: CRC-32C check values, incremental use, and agreement of
 * the SSE4.2 and table paths on random data at every alignment. */
#include <stdlib.h>

#include "test_base.h"

/* Internal entry points of crc32c.c. */
uint32_t orr__crc32c_sw(uint32_t crc, const void *p, size_t n);
uint32_t orr__crc32c_hw(uint32_t crc, const void *p, size_t n);
int orr__crc32c_hw_available(void);

static void test_vectors(void **state) {
  (void)state;
  assert_int_equal(orr_crc32c(0, "123456789", 9), 0xE3069283u);
  assert_int_equal(orr_crc32c(0, "", 0), 0);
  /* RFC 3720 (iSCSI) B.4 test patterns. */
  unsigned char buf[32];
  memset(buf, 0, sizeof(buf));
  assert_int_equal(orr_crc32c(0, buf, 32), 0x8A9136AAu);
  memset(buf, 0xff, sizeof(buf));
  assert_int_equal(orr_crc32c(0, buf, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; i++) buf[i] = (unsigned char)i;
  assert_int_equal(orr_crc32c(0, buf, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; i++) buf[i] = (unsigned char)(31 - i);
  assert_int_equal(orr_crc32c(0, buf, 32), 0x113FDB5Cu);
  assert_int_equal(orr__crc32c_sw(0, "123456789", 9), 0xE3069283u);
  assert_int_equal(orr__crc32c_hw(0, "123456789", 9), 0xE3069283u);
}

static void test_incremental(void **state) {
  (void)state;
  const char *s = "The quick brown fox jumps over the lazy dog";
  size_t n = strlen(s);
  uint32_t whole = orr_crc32c(0, s, n);
  for (size_t cut = 0; cut <= n; cut++) {
    uint32_t c = orr_crc32c(0, s, cut);
    c = orr_crc32c(c, s + cut, n - cut);
    assert_int_equal(c, whole);
  }
}

static void test_paths_agree(void **state) {
  (void)state;
  size_t n = 1 << 16;
  unsigned char *buf = malloc(n + 16);
  assert_non_null(buf);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < n + 16; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (unsigned char)x;
  }
  if (!orr__crc32c_hw_available()) print_message("no SSE4.2: comparing the table path with itself\n");
  for (size_t off = 0; off < 16; off++) {
    for (size_t len = 0; len < 300; len += 1 + len / 8) {
      assert_int_equal(orr__crc32c_hw(0, buf + off, len), orr__crc32c_sw(0, buf + off, len));
      assert_int_equal(orr__crc32c_hw(0x12345678, buf + off, len),
                       orr__crc32c_sw(0x12345678, buf + off, len));
    }
  }
  assert_int_equal(orr__crc32c_hw(0, buf + 3, n), orr__crc32c_sw(0, buf + 3, n));
  assert_int_equal(orr_crc32c(0, buf, n), orr__crc32c_sw(0, buf, n));
  free(buf);
}

int test_crc32c_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_incremental),
      cmocka_unit_test(test_paths_agree),
  };
  return cmocka_run_group_tests_name("base_crc32c", tests, NULL, NULL);
}
