/* test_mem.c: error table, arenas, growable buffers and the bounds-checked
 * decoder. */
#include <errno.h>
#include <stdlib.h>

#include "test_base.h"

static void test_errors(void **state) {
  (void)state;
  assert_string_equal(orr_strerror(0), "success");
  assert_string_equal(orr_strerror(ORR_ENOMEM), "out of memory");
  assert_string_equal(orr_strerror(ORR_EINTERNAL), "internal error");
  assert_string_equal(orr_strerror(-ENOENT), strerror(ENOENT));
  assert_string_equal(orr_err_name(ORR_ECORRUPT), "ORR_ECORRUPT");
  assert_string_equal(orr_err_name(ORR_EEOF), "ORR_EEOF");
  assert_string_equal(orr_err_name(0), "ORR_OK");
  assert_true(ORR_ENOMEM > -1000 && ORR_EINTERNAL < -900); /* clear of -errno */
}

static void test_arena_many(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(4096);
  assert_non_null(a);
  unsigned char *prev[1000];
  for (int i = 0; i < 1000; i++) {
    size_t n = (size_t)(i % 97) + 1;
    unsigned char *p = orr_arena_alloc(a, n);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, i & 0xff, n);
    prev[i] = p;
  }
  /* Nothing was overwritten by a later allocation. */
  for (int i = 0; i < 1000; i++) {
    size_t n = (size_t)(i % 97) + 1;
    for (size_t k = 0; k < n; k++) assert_int_equal(prev[i][k], i & 0xff);
  }
  assert_true(orr_arena_used(a) >= 1000);
  assert_true(orr_arena_reserved(a) >= orr_arena_used(a));
  orr_arena_destroy(a);
}

static void test_arena_big_and_reset(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(1024);
  assert_non_null(a);
  char *small = orr_arena_alloc(a, 10);
  /* A large allocation gets its own block and leaves the current block's
   * tail usable: the next small allocation follows the first one. */
  char *big = orr_arena_alloc(a, 100000);
  assert_non_null(big);
  memset(big, 7, 100000);
  char *small2 = orr_arena_alloc(a, 10);
  assert_ptr_equal(small2, small + 16);
  assert_true(orr_arena_reserved(a) >= 1024 + 100000);
  orr_arena_reset(a);
  assert_int_equal(orr_arena_used(a), 0);
  assert_int_equal(orr_arena_reserved(a), 1024); /* the first block only */
  char *again = orr_arena_alloc(a, 10);
  assert_ptr_equal(again, small); /* the first block is reused */
  /* Fill several blocks, reset, repeat: memory does not grow. */
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 100; i++) assert_non_null(orr_arena_alloc(a, 200));
    orr_arena_reset(a);
    assert_int_equal(orr_arena_reserved(a), 1024);
  }
  orr_arena_destroy(a);
}

static void test_arena_overflow_and_strings(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  assert_non_null(a);
  assert_null(orr_arena_alloc(a, SIZE_MAX));
  assert_null(orr_arena_alloc(a, SIZE_MAX - 8));
  assert_null(orr_arena_calloc(a, SIZE_MAX / 2, 3));
  int *z = orr_arena_calloc(a, 100, sizeof(int));
  assert_non_null(z);
  for (int i = 0; i < 100; i++) assert_int_equal(z[i], 0);
  assert_string_equal(orr_arena_strdup(a, "hello"), "hello");
  assert_string_equal(orr_arena_strndup(a, "hello", 3), "hel");
  assert_string_equal(orr_arena_sprintf(a, "%s-%d", "x", 42), "x-42");
  char longs[5000];
  memset(longs, 'a', sizeof(longs) - 1);
  longs[sizeof(longs) - 1] = 0;
  assert_string_equal(orr_arena_sprintf(a, "%s", longs), longs);
  assert_non_null(orr_arena_alloc(a, 0)); /* zero bytes still gives a pointer */
  orr_arena_destroy(a);
  orr_arena_destroy(NULL);
}

static void test_buf_appends(void **state) {
  (void)state;
  orr_buf b = {0};
  assert_int_equal(orr_buf_puts(&b, "abc"), 0);
  assert_int_equal(orr_buf_putc(&b, 'd'), 0);
  assert_int_equal(orr_buf_append(&b, "efg", 2), 0);
  assert_int_equal(b.len, 6);
  assert_string_equal(b.data, "abcdef");
  assert_int_equal(orr_buf_printf(&b, "-%d-%s", 12, "x"), 0);
  assert_string_equal(b.data, "abcdef-12-x");
  /* printf longer than the internal stack buffer */
  char longs[1000];
  memset(longs, 'z', sizeof(longs) - 1);
  longs[sizeof(longs) - 1] = 0;
  orr_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_string_equal(b.data, "");
  assert_int_equal(orr_buf_printf(&b, "<%s>", longs), 0);
  assert_int_equal(b.len, 1001);
  assert_int_equal(b.data[0], '<');
  assert_int_equal(b.data[1000], '>');
  assert_int_equal(b.data[1001], 0);
  size_t len;
  char *p = orr_buf_steal(&b, &len);
  assert_int_equal(len, 1001);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  free(p);
  orr_buf_free(&b);
}

static void test_buf_binary(void **state) {
  (void)state;
  orr_buf b = {0};
  orr_buf_put_be16(&b, 0x0102);
  orr_buf_put_be32(&b, 0x03040506);
  orr_buf_put_be64(&b, 0x0708090a0b0c0d0eull);
  static const unsigned char want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  assert_int_equal(b.len, sizeof(want));
  assert_memory_equal(b.data, want, sizeof(want));
  orr_buf_reset(&b);
  /* Go's binary.PutUvarint / PutVarint encodings. */
  orr_buf_put_uvarint(&b, 0);
  orr_buf_put_uvarint(&b, 127);
  orr_buf_put_uvarint(&b, 128);
  orr_buf_put_uvarint(&b, 300);
  orr_buf_put_varint(&b, -1);
  orr_buf_put_varint(&b, 1);
  orr_buf_put_varint(&b, -65);
  static const unsigned char vwant[] = {0x00, 0x7f, 0x80, 0x01, 0xac, 0x02, 0x01, 0x02, 0x81, 0x01};
  assert_int_equal(b.len, sizeof(vwant));
  assert_memory_equal(b.data, vwant, sizeof(vwant));
  orr_buf_reset(&b);
  orr_buf_put_uvarint(&b, UINT64_MAX);
  assert_int_equal(b.len, 10);
  assert_int_equal((unsigned char)b.data[9], 0x01);
  orr_buf_free(&b);
}

static void test_buf_oom_latch(void **state) {
  (void)state;
  orr_buf b = {0};
  orr_buf_puts(&b, "keep");
  assert_int_equal(orr_buf_reserve(&b, SIZE_MAX - 2), ORR_ENOMEM);
  assert_true(b.oom);
  /* Later appends do nothing and report the latched error. */
  assert_int_equal(orr_buf_puts(&b, "more"), ORR_ENOMEM);
  assert_int_equal(orr_buf_printf(&b, "%d", 5), ORR_ENOMEM);
  assert_int_equal(orr_buf_json_escape(&b, "x", 1), ORR_ENOMEM);
  assert_int_equal(b.len, 4);
  assert_string_equal(b.data, "keep");
  orr_buf_reset(&b);
  assert_false(b.oom);
  assert_int_equal(orr_buf_puts(&b, "ok"), 0);
  assert_string_equal(b.data, "ok");
  orr_buf_free(&b);
}

static void test_buf_json_escape(void **state) {
  (void)state;
  orr_buf b = {0};
  const char s[] = "a\"b\\c\nd\te\x01<&>";
  assert_int_equal(orr_buf_json_escape(&b, s, sizeof(s) - 1), 0);
  assert_string_equal(b.data, "a\\\"b\\\\c\\nd\\te\\u0001\\u003c\\u0026\\u003e");
  orr_buf_free(&b);
}

static void test_dec(void **state) {
  (void)state;
  static const unsigned char in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                     0xac, 0x02, 0x03, 'x', 'y'};
  orr_dec d = orr_dec_make(in, sizeof(in));
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  int64_t i64;
  const uint8_t *bytes;
  assert_int_equal(orr_dec_u8(&d, &u8), 0);
  assert_int_equal(u8, 1);
  assert_int_equal(orr_dec_be16(&d, &u16), 0);
  assert_int_equal(u16, 0x0203);
  assert_int_equal(orr_dec_be32(&d, &u32), 0);
  assert_int_equal(u32, 0x04050607);
  assert_int_equal(orr_dec_uvarint(&d, &u64), 0);
  assert_int_equal(u64, 300);
  assert_int_equal(orr_dec_varint(&d, &i64), 0);
  assert_int_equal(i64, -2);
  assert_int_equal(orr_dec_left(&d), 2);
  assert_int_equal(orr_dec_bytes(&d, 2, &bytes), 0);
  assert_memory_equal(bytes, "xy", 2);
  assert_int_equal(orr_dec_left(&d), 0);
  assert_int_equal(d.err, 0);
  /* Reading past the end fails and latches. */
  assert_int_equal(orr_dec_u8(&d, &u8), ORR_ECORRUPT);
  assert_int_equal(d.err, ORR_ECORRUPT);

  /* Every truncation of a well-formed input fails rather than reads over. */
  static const unsigned char be64[] = {0, 0, 0, 0, 0, 0, 1, 0};
  for (size_t n = 0; n < 8; n++) {
    unsigned char *copy = malloc(n ? n : 1); /* exact size, so ASan sees overreads */
    memcpy(copy, be64, n);
    orr_dec t = orr_dec_make(copy, n);
    assert_int_equal(orr_dec_be64(&t, &u64), ORR_ECORRUPT);
    t = orr_dec_make(copy, n);
    assert_int_equal(orr_dec_skip(&t, n + 1), ORR_ECORRUPT);
    free(copy);
  }
  orr_dec t = orr_dec_make(be64, 8);
  assert_int_equal(orr_dec_be64(&t, &u64), 0);
  assert_int_equal(u64, 256);
  static const unsigned char trunc_varint[] = {0x80, 0x80};
  t = orr_dec_make(trunc_varint, sizeof(trunc_varint));
  assert_int_equal(orr_dec_uvarint(&t, &u64), ORR_ECORRUPT);
  /* Once failed, later reads fail too even if bytes would remain. */
  t = orr_dec_make(in, sizeof(in));
  assert_int_equal(orr_dec_bytes(&t, 100, &bytes), ORR_ECORRUPT);
  assert_int_equal(orr_dec_u8(&t, &u8), ORR_ECORRUPT);
}

static void test_dec_varint_overflow(void **state) {
  (void)state;
  uint64_t v;
  static const unsigned char max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  orr_dec d = orr_dec_make(max, sizeof(max));
  assert_int_equal(orr_dec_uvarint(&d, &v), 0);
  assert_true(v == UINT64_MAX);
  /* Tenth byte above 1: more than 64 bits. */
  static const unsigned char over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  d = orr_dec_make(over, sizeof(over));
  assert_int_equal(orr_dec_uvarint(&d, &v), ORR_ECORRUPT);
  /* Eleven bytes with continuation bits. */
  static const unsigned char longv[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                        0x80, 0x80, 0x80, 0x80, 0x00};
  d = orr_dec_make(longv, sizeof(longv));
  assert_int_equal(orr_dec_uvarint(&d, &v), ORR_ECORRUPT);
  /* Round trip of signed values through the encoder. */
  int64_t vals[] = {0, 1, -1, 63, -64, 64, INT64_MAX, INT64_MIN};
  orr_buf b = {0};
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) orr_buf_put_varint(&b, vals[i]);
  d = orr_dec_make(b.data, b.len);
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    int64_t x;
    assert_int_equal(orr_dec_varint(&d, &x), 0);
    assert_true(x == vals[i]);
  }
  assert_int_equal(orr_dec_left(&d), 0);
  orr_buf_free(&b);
}

/* Decodes the inside of a JSON string |in| (no quotes) as a streaming
 * reader does, byte by byte; returns 0 or the first error. */
static int unescape(const char *in, orr_buf *out) {
  orr_json_unescape u = {0};
  int state = 0; /* 0: plain, 1: after '\\', 2: in \uXXXX */
  for (const char *p = in;; p++) {
    unsigned char c = (unsigned char)*p;
    if (state == 0) {
      orr_json_unescape_plain(&u, out, c ? c : '"'); /* the end is the closing quote */
      if (!c) return 0;
      if (c == '\\')
        state = 1;
      else
        orr_buf_putc(out, (char)c);
      continue;
    }
    if (!c) return ORR_ECORRUPT;
    int rc = state == 1 ? orr_json_unescape_esc(&u, out, c) : orr_json_unescape_hex(&u, out, c);
    if (rc < 0) return rc;
    state = rc ? 2 : 0;
  }
}

static void test_json_unescape(void **state) {
  (void)state;
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"plain", "plain"},
      {"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t", "a\"b\\c/d\b\f\n\r\t"},
      {"\\u00e9\\u00FC\\u0041\\u20ac", "\xc3\xa9\xc3\xbc" "A\xe2\x82\xac"},
      {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},         /* a pair: U+1F600 */
      {"\\ud800z", "\xef\xbf\xbdz"},                  /* a lone high half, then a byte */
      {"x\\ud800", "x\xef\xbf\xbd"},                  /* ... at the end of the string */
      {"\\ud800\\n", "\xef\xbf\xbd\n"},               /* ... before another escape */
      {"\\ud800\\ud801\\udc00", "\xef\xbf\xbd\xf0\x90\x90\x80"}, /* high, high, low */
      {"\\udc00", "\xef\xbf\xbd"},                    /* a lone low half */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    orr_buf b = {0};
    assert_int_equal(unescape(cases[i].in, &b), 0);
    assert_int_equal(b.len, strlen(cases[i].want));
    assert_memory_equal(b.data, cases[i].want, b.len);
    orr_buf_free(&b);
  }
  orr_buf b = {0};
  assert_int_equal(unescape("\\x", &b), ORR_ECORRUPT);
  orr_buf_reset(&b);
  assert_int_equal(unescape("\\u12g4", &b), ORR_ECORRUPT);
  orr_buf_free(&b);
}

int test_mem_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_arena_many),
      cmocka_unit_test(test_arena_big_and_reset),
      cmocka_unit_test(test_arena_overflow_and_strings),
      cmocka_unit_test(test_buf_appends),
      cmocka_unit_test(test_buf_binary),
      cmocka_unit_test(test_buf_oom_latch),
      cmocka_unit_test(test_buf_json_escape),
      cmocka_unit_test(test_json_unescape),
      cmocka_unit_test(test_dec),
      cmocka_unit_test(test_dec_varint_overflow),
  };
  return cmocka_run_group_tests_name("base_mem", tests, NULL, NULL);
}
