/* test_float.c: orr_format_float against Go's strconv.FormatFloat(v, 'g',
 * -1, 64), including the values where shortest-digit search and the %e/%f
 * switch are easy to get wrong; and Ryu (float_ryu.c) on a large sample of
 * doubles against glibc's correctly rounded round trip and the formatter it
 * replaced (float_ref.c). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "float_ref.h"
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

/* --- Ryu against glibc on a large sample ------------------------------- */

typedef struct {
  long checked, full_scan;
} sample_stats;

/* Does the decimal m × 10^e read back as |v|? */
static int reads_back(uint64_t m, int e, double v) {
  char buf[48];
  snprintf(buf, sizeof(buf), "%llue%d", (unsigned long long)m, e);
  return strtod(buf, NULL) == v;
}

/* glibc's correctly rounded p-digit decimal of |v| > 0 as m × 10^e. */
static uint64_t rounded(double v, int p, int *e) {
  char buf[48];
  snprintf(buf, sizeof(buf), "%.*e", p - 1, v);
  uint64_t m = 0;
  const char *q = buf;
  for (; *q && *q != 'e'; q++)
    if (*q >= '0' && *q <= '9') m = m * 10 + (uint64_t)(*q - '0');
  *e = atoi(q + 1) - (p - 1);
  return m;
}

/* Checks one finite double; |full_scan| also searches %.{1..17}g for the
 * shortest correctly rounded string that reads back (17 snprintf/strtod
 * trips, so only for part of the sample). */
static void check_sample(double d, int full_scan, sample_stats *st) {
  char out[64], ref[64];
  st->checked++;
  /* (a) both layouts read back bit-exact (strtod takes "+Inf"/"-0" too). */
  orr_format_float(d, out, sizeof(out));
  double back = strtod(out, NULL);
  if (memcmp(&back, &d, sizeof(d)) != 0) fail_msg("%a: \"%s\" reads back as %a", d, out, back);
  /* (c) the same text as the formatter Ryu replaced, in both layouts. */
  ref_format_float(d, ref, sizeof(ref));
  if (strcmp(out, ref) != 0) fail_msg("%a: 'g' \"%s\", previously \"%s\"", d, out, ref);
  orr_format_float_json(d, out, sizeof(out));
  ref_format_float_json(d, ref, sizeof(ref));
  if (strcmp(out, ref) != 0) fail_msg("%a: json \"%s\", previously \"%s\"", d, out, ref);
  back = strtod(out, NULL);
  if (memcmp(&back, &d, sizeof(d)) != 0) fail_msg("%a: json \"%s\" reads back as %a", d, out, back);
  if (d == 0 || isinf(d)) return;

  /* (b) shortest. Ryu's nd digits; no decimal of nd - 1 digits reads back:
   * shorter ones are nd - 1 digit decimals too (padded with zeros), and of
   * those only the two around |d| can lie in its rounding interval — the
   * correctly rounded one and its neighbour on the other side. */
  double a = fabs(d);
  int e10;
  uint64_t m = orr__float_shortest(a, &e10);
  if (m == 0 || m % 10 == 0) fail_msg("%a: digits %llu", d, (unsigned long long)m);
  if (!reads_back(m, e10, a)) fail_msg("%a: %llue%d does not read back", d, (unsigned long long)m, e10);
  int nd = 0;
  for (uint64_t t = m; t; t /= 10) nd++;
  if (nd > 17) fail_msg("%a: %d digits", d, nd);
  if (nd > 1) {
    int e;
    uint64_t r = rounded(a, nd - 1, &e);
    uint64_t pow = 1;
    for (int i = 0; i < nd - 2; i++) pow *= 10;
    /* Below 100…0 the neighbour is 99…9 one place down. */
    int below = r == pow ? reads_back(r * 10 - 1, e - 1, a) : reads_back(r - 1, e, a);
    if (reads_back(r, e, a) || reads_back(r + 1, e, a) || below)
      fail_msg("%a: %llue%d has %d digits, one fewer reads back (near %llue%d)", d,
               (unsigned long long)m, e10, nd, (unsigned long long)r, e);
  }
  if (full_scan) {
    st->full_scan++;
    int p = 1;
    for (; p <= 17; p++) {
      char buf[48];
      snprintf(buf, sizeof(buf), "%.*g", p, a);
      if (strtod(buf, NULL) == a) break;
    }
    if (nd > p) fail_msg("%a: %d digits, %%.%dg reads back", d, nd, p);
  }
}

static uint64_t xorshift(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static double from_bits(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof(d));
  return d;
}

/* Checks |d|, its negation and the doubles either side. */
static void check_around(double d, sample_stats *st) {
  double n[3] = {nextafter(d, -INFINITY), d, nextafter(d, INFINITY)};
  for (int i = 0; i < 3; i++) {
    if (isnan(n[i])) continue;
    check_sample(n[i], 1, st);
    check_sample(-n[i], 0, st);
  }
}

/* Every power of 2 and of 10, subnormals, the edges of the exponent range
 * and of both layouts' thresholds, each with its neighbours; then random bit
 * patterns and random values shaped like samples (short decimals, ratios).
 * ORR_FLOAT_SAMPLES sets the random count (default 120,000 of each kind,
 * about a second; the 20,000,000 run is in the commit message). */
static void test_ryu_sample(void **state) {
  (void)state;
  sample_stats st = {0, 0};
  for (int e = -1074; e <= 1023; e++) check_around(ldexp(1, e), &st);
  for (int e = -323; e <= 308; e++) {
    char buf[16];
    snprintf(buf, sizeof(buf), "1e%d", e);
    check_around(strtod(buf, NULL), &st);
  }
  for (uint64_t u = 1; u <= 5000; u++) check_sample(from_bits(u), 1, &st); /* smallest subnormals */
  const double edges[] = {DBL_MIN, DBL_MAX, DBL_TRUE_MIN, from_bits(0x000fffffffffffffull),
                          9007199254740992.0, 1e-6, 1e-5, 1e-4, 1e6, 1e21, 1e15, 1e16, 1e17,
                          0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 5e-324, 1.7976931348623157e308};
  for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) check_around(edges[i], &st);
  check_sample(0.0, 1, &st);
  check_sample(-0.0, 1, &st);
  check_sample(INFINITY, 1, &st);
  check_sample(-INFINITY, 1, &st);

  long n = 120000;
  const char *env = getenv("ORR_FLOAT_SAMPLES");
  if (env && *env) n = atol(env);
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (long i = 0; i < n; i++) {
    double d = from_bits(xorshift(&x));
    if (!isnan(d)) check_sample(d, i % 64 == 0, &st);
    /* Sample-like: k/10^j, counters over a window, fractions in [0, 1). */
    uint64_t r = xorshift(&x);
    static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e9, 1e12};
    switch (r % 3) {
    case 0: d = (double)(r >> 40) / p10[(r >> 8) % 9]; break;
    case 1: d = (double)(r >> 44) / (double)(((r >> 8) % 600) + 1); break;
    default: d = (double)(r >> 11) / 9007199254740992.0; break;
    }
    check_sample(d, i % 64 == 1, &st);
  }
  print_message("ryu sample: %ld doubles checked, %ld with the full %%.{1..17}g scan\n", st.checked,
                st.full_scan);
}

int test_float_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_round_trip_and_truncation),
      cmocka_unit_test(test_json_table),
      cmocka_unit_test(test_ryu_sample),
  };
  return cmocka_run_group_tests_name("base_float", tests, NULL, NULL);
}
