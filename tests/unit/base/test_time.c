/* test_time.c: Prometheus durations (parse and format) and the timestamps
 * the HTTP API accepts. Expected values follow prometheus/common's
 * model.ParseDuration/Duration.String and web/api/v1's parseTime. */
#include "test_base.h"

#define S(x) (x), strlen(x)

static int64_t dur(const char *s) {
  int64_t ms = -12345;
  int rc = orr_parse_duration(S(s), &ms);
  if (rc) fail_msg("parse_duration(%s) = %s", s, orr_err_name(rc));
  return ms;
}

static void test_parse_duration(void **state) {
  (void)state;
  assert_int_equal(dur("0"), 0);
  assert_int_equal(dur("0s"), 0);
  assert_int_equal(dur("1ms"), 1);
  assert_int_equal(dur("1s"), 1000);
  assert_int_equal(dur("1m"), 60000);
  assert_int_equal(dur("1h30m"), 5400000);
  assert_int_equal(dur("2d"), 2 * 86400000LL);
  assert_int_equal(dur("1w"), 7 * 86400000LL);
  assert_int_equal(dur("1y"), 365 * 86400000LL);
  assert_int_equal(dur("1y2w3d4h5m6s7ms"),
                   365 * 86400000LL + 14 * 86400000LL + 3 * 86400000LL + 4 * 3600000LL +
                       5 * 60000LL + 6000 + 7);
  assert_int_equal(dur("1m30s500ms"), 90500);
  assert_int_equal(dur("90m"), 5400000); /* no carrying required */
  assert_int_equal(dur("007s"), 7000);
  assert_int_equal(dur("1m1ms"), 60001);
  /* Largest value Go's int64 nanoseconds hold. */
  assert_int_equal(dur("9223372036854ms"), 9223372036854LL);
  assert_int_equal(dur("292y"), 292 * 365 * 86400000LL);
}

static void test_parse_duration_errors(void **state) {
  (void)state;
  int64_t ms = 77;
  const char *bad[] = {"",    "1",   "s",    "1x",    "1.5h", "-1s",  "1h1h", "1s1m",
                       "1ms1s", "1m1y", " 1s", "1s ",   "1S",   "1hm", "h1",   "1d1w",
                       "0x10s", "1 s", "+1s",  "1µs",   "1us",  "1ns",  "ms",   "1mss"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = orr_parse_duration(S(bad[i]), &ms);
    if (rc != ORR_EINVAL) fail_msg("\"%s\" gave %s", bad[i], orr_err_name(rc));
  }
  assert_int_equal(ms, 77); /* untouched on error */
  assert_int_equal(orr_parse_duration(S("9223372036855ms"), &ms), ORR_ERANGE);
  assert_int_equal(orr_parse_duration(S("293y"), &ms), ORR_ERANGE);
  assert_int_equal(orr_parse_duration(S("292y30w"), &ms), ORR_ERANGE);
  assert_int_equal(orr_parse_duration(S("99999999999999999999999s"), &ms), ORR_ERANGE);
  /* A syntax error wins over a range error. */
  assert_int_equal(orr_parse_duration(S("99999999999999999999999s1x"), &ms), ORR_EINVAL);
  /* Length-delimited: the rest of the string is not looked at. */
  assert_int_equal(orr_parse_duration("5mXYZ", 2, &ms), 0);
  assert_int_equal(ms, 300000);
}

static void assert_fmt(int64_t ms, const char *want) {
  char out[48];
  assert_string_equal(orr_format_duration(ms, out, sizeof(out)), want);
}

static void test_format_duration(void **state) {
  (void)state;
  assert_fmt(0, "0s");
  assert_fmt(1, "1ms");
  assert_fmt(100, "100ms");
  assert_fmt(1000, "1s");
  assert_fmt(90500, "1m30s500ms");
  assert_fmt(5400000, "1h30m");
  assert_fmt(86400000, "1d");
  assert_fmt(7 * 86400000LL, "1w");
  assert_fmt(365 * 86400000LL, "1y");
  /* Years and weeks only when exact: 90d, not 12w6d. */
  assert_fmt(90 * 86400000LL, "90d");
  assert_fmt(14 * 86400000LL, "2w");
  assert_fmt(400 * 86400000LL, "400d");
  assert_fmt(730 * 86400000LL, "2y");
  assert_fmt(7 * 86400000LL + 1000, "7d1s");
  assert_fmt(-5400000, "-1h30m");
  char out[48];
  orr_format_duration(INT64_MIN, out, sizeof(out));
  assert_int_equal(out[0], '-');
  orr_format_duration(INT64_MAX, out, sizeof(out));
  assert_true(strlen(out) < 48);
  /* Round trip through the parser for a spread of values. */
  for (int64_t ms = 0; ms < 9000000000000LL; ms = ms * 3 + 7) {
    int64_t back;
    orr_format_duration(ms, out, sizeof(out));
    assert_int_equal(orr_parse_duration(out, strlen(out), &back), 0);
    assert_true(back == ms);
  }
}

static int64_t ts(const char *s) {
  int64_t ms = -12345;
  int rc = orr_parse_time(s, &ms);
  if (rc) fail_msg("parse_time(%s) = %s", s, orr_err_name(rc));
  return ms;
}

static void test_parse_time(void **state) {
  (void)state;
  assert_int_equal(ts("0"), 0);
  assert_int_equal(ts("1"), 1000);
  assert_int_equal(ts("1.5"), 1500);
  assert_int_equal(ts("1.0625"), 1063); /* fraction rounded to ms, half away from zero */
  assert_int_equal(ts("-1.0625"), -1063);
  assert_int_equal(ts("1.0004"), 1000);
  assert_int_equal(ts("1.9999"), 2000);
  assert_int_equal(ts("-1.5"), -1500);
  assert_int_equal(ts("-0.0005"), -1);
  assert_int_equal(ts("1e3"), 1000000);
  assert_int_equal(ts(".5"), 500);
  assert_int_equal(ts("5."), 5000);
  assert_int_equal(ts("+2"), 2000);
  assert_int_equal(ts("1795605639.123"), 1795605639123LL);
  assert_int_equal(ts("1970-01-01T00:00:00Z"), 0);
  assert_int_equal(ts("2026-11-25T11:20:39.123Z"), 1795605639123LL);
  assert_int_equal(ts("2026-11-25T11:20:39Z"), 1795605639000LL);
  assert_int_equal(ts("2026-11-25T11:20:39.1239Z"), 1795605639123LL); /* truncated */
  assert_int_equal(ts("2026-11-25T11:20:39.123456789123Z"), 1795605639123LL);
  assert_int_equal(ts("2026-11-25T11:20:39,5Z"), 1795605639500LL);
  assert_int_equal(ts("2026-11-25T12:20:39.123+01:00"), 1795605639123LL);
  assert_int_equal(ts("2026-11-25T06:50:39.123-04:30"), 1795605639123LL);
  assert_int_equal(ts("1969-12-31T23:59:59.999Z"), -1);
  assert_int_equal(ts("2024-02-29T00:00:00Z"), 1709164800000LL);
  assert_int_equal(ts("0000-01-01T00:00:00Z"), -62167219200000LL);
  assert_int_equal(ts("9999-12-31T23:59:59Z"), 253402300799000LL);
  /* Prometheus's beginning and end of time, as its API formats them. */
  assert_true(ts("-292273086-05-16T16:47:06Z") == -9223309901257974000LL);
  assert_true(ts("292277025-08-18T07:12:54.999999999Z") == 9223309901257974999LL);
}

static void test_parse_time_errors(void **state) {
  (void)state;
  int64_t ms;
  const char *bad[] = {"",
                       "abc",
                       " 1",
                       "1 ",
                       "0x10",
                       "1e",
                       ".",
                       "NaN",
                       "2026-11-25",
                       "2026-11-25T11:20:39",
                       "2026-11-25 11:20:39Z",
                       "2026-11-25t11:20:39Z",
                       "2026-11-25T11:20:39z",
                       "2026-13-01T00:00:00Z",
                       "2026-02-29T00:00:00Z",
                       "2026-11-31T00:00:00Z",
                       "2026-11-25T24:00:00Z",
                       "2026-11-25T11:60:00Z",
                       "2026-11-25T11:20:60Z",
                       "2026-11-25T11:20:39.Z",
                       "2026-11-25T11:20:39+0100",
                       "2026-11-25T11:20:39+01:00x",
                       "26-11-25T11:20:39Z",
                       "12026-11-25T11:20:39Z"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = orr_parse_time(bad[i], &ms);
    if (rc != ORR_EINVAL) fail_msg("\"%s\" gave %s", bad[i], orr_err_name(rc));
  }
  assert_int_equal(orr_parse_time("1e300", &ms), ORR_ERANGE);
  assert_int_equal(orr_parse_time("-1e300", &ms), ORR_ERANGE);
  assert_int_equal(orr_parse_time("Inf", &ms), ORR_ERANGE);
  assert_int_equal(orr_parse_time("-inf", &ms), ORR_ERANGE);
}

/* Thanos's --min-time/--max-time: relative to now, before or after it,
 * else a time. */
static void test_parse_time_flag(void **state) {
  (void)state;
  int64_t v, t0 = orr_now_ms();
  assert_int_equal(orr_parse_time_flag("-2h", &v), 0);
  int64_t t1 = orr_now_ms();
  assert_true(v >= t0 - 7200000 && v <= t1 - 7200000);
  t0 = orr_now_ms();
  assert_int_equal(orr_parse_time_flag("1d", &v), 0);
  t1 = orr_now_ms();
  assert_true(v >= t0 + 86400000 && v <= t1 + 86400000);
  assert_int_equal(orr_parse_time_flag("2023-11-14T22:13:20Z", &v), 0);
  assert_int_equal(v, 1700000000000LL);
  assert_int_equal(orr_parse_time_flag("0000-01-01T00:00:00Z", &v), 0);
  assert_int_equal(v, -62167219200000LL);
  assert_int_equal(orr_parse_time_flag("1700000000.5", &v), 0);
  assert_int_equal(v, 1700000000500LL);
  assert_int_equal(orr_parse_time_flag("-", &v), ORR_EINVAL);
  assert_int_equal(orr_parse_time_flag("yesterday", &v), ORR_EINVAL);
}

static void test_format_rfc3339(void **state) {
  (void)state;
  char out[40];
  assert_string_equal(orr_format_rfc3339(0, out, sizeof(out)), "1970-01-01T00:00:00.000Z");
  assert_string_equal(orr_format_rfc3339(1795605639123LL, out, sizeof(out)),
                      "2026-11-25T11:20:39.123Z");
  assert_string_equal(orr_format_rfc3339(-1, out, sizeof(out)), "1969-12-31T23:59:59.999Z");
  int64_t back;
  assert_int_equal(orr_parse_time(orr_format_rfc3339(1709164800001LL, out, sizeof(out)), &back), 0);
  assert_true(back == 1709164800001LL);
  /* Clocks move forward. */
  int64_t now = orr_now_ms();
  assert_true(now > 1700000000000LL);
  uint64_t a = orr_mono_ns(), b = orr_mono_ns();
  assert_true(b >= a);
}

int test_time_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_duration),     cmocka_unit_test(test_parse_duration_errors),
      cmocka_unit_test(test_format_duration),    cmocka_unit_test(test_parse_time),
      cmocka_unit_test(test_parse_time_errors),  cmocka_unit_test(test_format_rfc3339),
      cmocka_unit_test(test_parse_time_flag),
  };
  return cmocka_run_group_tests_name("base_time", tests, NULL, NULL);
}
