/* test_float.c: orr_format_float against Go's strconv.FormatFloat(v, 'g',
 * -1, 64), including the values where shortest-digit search and the %e/%f
 * switch are easy to get wrong. */
#include <math.h>
#include <stdlib.h>

#include "test_base.h"

static void assert_float(double v, const char *want) {
  char out[64];
  int n = orr_format_float(v, out, sizeof(out));
  if (strcmp(out, want) != 0) fail_msg("format(%.17g) = \"%s\", want \"%s\"", v, out, want);
  assert_int_equal(n, (int)strlen(want));
}

static void test_table(void **state) {
  (void)state;
  assert_float(0, "0");
  assert_float(-0.0, "-0");
  assert_float(1, "1");
  assert_float(-1, "-1");
  assert_float(0.1, "0.1");
  assert_float(0.3, "0.3");
  assert_float(0.1 + 0.2, "0.30000000000000004");
  assert_float(123.456, "123.456");
  assert_float(100000, "100000");
  assert_float(999999, "999999");
  assert_float(999999.5, "999999.5");
  assert_float(1e6, "1e+06");
  assert_float(1234567, "1.234567e+06");
  assert_float(123456789, "1.23456789e+08");
  assert_float(1e20, "1e+20");
  assert_float(1e21, "1e+21");
  assert_float(0.0001, "0.0001");
  assert_float(0.000123, "0.000123");
  assert_float(1e-5, "1e-05");
  assert_float(2.5e-5, "2.5e-05");
  assert_float(1.5e300, "1.5e+300");
  assert_float(5e-324, "5e-324");
  assert_float(1.7976931348623157e308, "1.7976931348623157e+308");
  assert_float(2.2250738585072014e-308, "2.2250738585072014e-308");
  assert_float(9007199254740993.0, "9.007199254740992e+15");
  assert_float(1764069639.123, "1.764069639123e+09");
  assert_float(0.005, "0.005");
  assert_float(-2.5, "-2.5");
  assert_float(NAN, "NaN");
  assert_float(INFINITY, "+Inf");
  assert_float(-INFINITY, "-Inf");
}

static void test_round_trip_and_truncation(void **state) {
  (void)state;
  /* Every output reads back as the same double. */
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double d;
    memcpy(&d, &x, sizeof(d));
    if (isnan(d) || isinf(d)) continue;
    char out[64];
    orr_format_float(d, out, sizeof(out));
    double back = strtod(out, NULL);
    assert_memory_equal(&back, &d, sizeof(d));
  }
  /* A short buffer gets a truncated, terminated string; the length returned
   * is the full one, as snprintf's. */
  char small[4];
  assert_int_equal(orr_format_float(123456.5, small, sizeof(small)), 8);
  assert_string_equal(small, "123");
  assert_int_equal(orr_format_float(1, NULL, 0), 1);
}

static void assert_json(double v, const char *want) {
  char out[64];
  int n = orr_format_float_json(v, out, sizeof(out));
  if (strcmp(out, want) != 0) fail_msg("json(%.17g) = \"%s\", want \"%s\"", v, out, want);
  assert_int_equal(n, (int)strlen(want));
}

/* Prometheus's JSON sample values: 'f' form between 1e-6 and 1e21, else 'e'. */
static void test_json_table(void **state) {
  (void)state;
  assert_json(0, "0");
  assert_json(1, "1");
  assert_json(1e6, "1000000");
  assert_json(1234567.25, "1234567.25");
  assert_json(0.1 + 0.2, "0.30000000000000004");
  assert_json(1e-6, "0.000001");
  assert_json(9.99e-7, "9.99e-07");
  assert_json(-2.5e-10, "-2.5e-10");
  assert_json(1e20, "100000000000000000000");
  assert_json(1e21, "1e+21");
  assert_json(1.7976931348623157e308, "1.7976931348623157e+308");
  assert_json(5e-324, "5e-324");
  assert_json(NAN, "NaN");
  assert_json(INFINITY, "+Inf");
  assert_json(-INFINITY, "-Inf");
  assert_json(1700000000.123, "1700000000.123");
}

int test_float_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_round_trip_and_truncation),
      cmocka_unit_test(test_json_table),
  };
  return cmocka_run_group_tests_name("base_float", tests, NULL, NULL);
}
