/* test_log.c: the logger's logfmt and JSON lines, byte for byte (apart from
 * the timestamp, whose shape is checked). */
#include <stdlib.h>
#include <unistd.h>

#include "test_base.h"

static FILE *capture;

static int setup(void **state) {
  (void)state;
  capture = tmpfile();
  if (!capture) return -1;
  orr_log_set_output(capture);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  orr_log_set_output(NULL);
  orr_log_setup(ORR_LOG_INFO, ORR_LOG_LOGFMT);
  fclose(capture);
  return 0;
}

/* Returns what was logged since the last call (static buffer). */
static const char *captured(void) {
  static char text[8192];
  fflush(capture);
  long n = ftell(capture);
  rewind(capture);
  size_t got = fread(text, 1, n > 0 && (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1,
                     capture);
  text[got] = 0;
  rewind(capture);
  assert_int_equal(ftruncate(fileno(capture), 0), 0);
  return text;
}

/* Checks "2026-11-25T11:20:39.123Z" at |p|. */
static void assert_ts(const char *p) {
  static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  for (size_t i = 0; i < sizeof(shape) - 1; i++) {
    if (shape[i] == 'd')
      assert_true(p[i] >= '0' && p[i] <= '9');
    else
      assert_int_equal(p[i], shape[i]);
  }
}

static void test_logfmt(void **state) {
  (void)state;
  orr_log_setup(ORR_LOG_INFO, ORR_LOG_LOGFMT);
  /* One line per call: compilers disagree on __LINE__ inside a multi-line
   * macro invocation. */
  int line = __LINE__ + 1;
  orr_log_info("listening", "address", "127.0.0.1:9090", "n", ORR_LOG_INT(-42), "f", ORR_LOG_DBL(0.25), NULL);
  const char *got = captured();
  assert_true(strncmp(got, "ts=", 3) == 0);
  assert_ts(got + 3);
  char want[256];
  snprintf(want, sizeof(want),
           " level=info caller=test_log.c:%d msg=listening address=127.0.0.1:9090 n=-42 f=0.25\n",
           line);
  assert_string_equal(got + 3 + 24, want);
}

static void test_logfmt_quoting(void **state) {
  (void)state;
  orr_log_setup(ORR_LOG_DEBUG, ORR_LOG_LOGFMT);
  int line = __LINE__ + 1;
  orr_log_warn("two words", "empty", "", "eq", "a=b", "quote", "say \"hi\"", "nl", "x\ny", "back", "c:\\dir", "html", "<a&b>", "null", "null", "nil", NULL, NULL);
  const char *got = captured();
  char want[512];
  snprintf(want, sizeof(want),
           " level=warn caller=test_log.c:%d msg=\"two words\" empty= eq=\"a=b\" "
           "quote=\"say \\\"hi\\\"\" nl=\"x\\ny\" back=c:\\dir html=<a&b> null=\"null\" nil=\n",
           line);
  assert_string_equal(got + 3 + 24, want);
}

static void test_levels(void **state) {
  (void)state;
  orr_log_setup(ORR_LOG_WARN, ORR_LOG_LOGFMT);
  assert_false(orr_log_enabled(ORR_LOG_INFO));
  assert_true(orr_log_enabled(ORR_LOG_ERROR));
  orr_log_info("hidden", NULL);
  orr_log_debug("hidden", NULL);
  assert_string_equal(captured(), "");
  orr_log_error("shown", NULL);
  assert_non_null(strstr(captured(), " level=error "));
  orr_log_level lv;
  orr_log_format fmt;
  assert_int_equal(orr_log_parse_level("debug", &lv), 0);
  assert_int_equal(lv, ORR_LOG_DEBUG);
  assert_int_equal(orr_log_parse_level("warn", &lv), 0);
  assert_int_equal(lv, ORR_LOG_WARN);
  assert_int_equal(orr_log_parse_level("warning", &lv), ORR_EINVAL);
  assert_int_equal(orr_log_parse_level("INFO", &lv), ORR_EINVAL);
  assert_int_equal(orr_log_parse_format("json", &fmt), 0);
  assert_int_equal(fmt, ORR_LOG_JSON);
  assert_int_equal(orr_log_parse_format("logfmt", &fmt), 0);
  assert_int_equal(fmt, ORR_LOG_LOGFMT);
  assert_int_equal(orr_log_parse_format("text", &fmt), ORR_EINVAL);
}

static void test_json(void **state) {
  (void)state;
  orr_log_setup(ORR_LOG_INFO, ORR_LOG_JSON);
  int line = __LINE__ + 1;
  orr_log_info("msg \"q\"", "zeta", "1", "alpha", "a\\b\n<&>", "err", "\x01", NULL);
  const char *got = captured();
  /* go-kit marshals a map: keys come out sorted. */
  char want[512];
  snprintf(want, sizeof(want),
           "{\"alpha\":\"a\\\\b\\n<&>\",\"caller\":\"test_log.c:%d\",\"err\":\"\\u0001\","
           "\"level\":\"info\",\"msg\":\"msg \\\"q\\\"\",\"ts\":\"",
           line);
  size_t wl = strlen(want);
  assert_true(strncmp(got, want, wl) == 0);
  assert_ts(got + wl);
  assert_string_equal(got + wl + 24, "\",\"zeta\":\"1\"}\n");
}

static void test_json_many_and_duplicate_keys(void **state) {
  (void)state;
  orr_log_setup(ORR_LOG_INFO, ORR_LOG_JSON);
  /* More pairs than the logger's stack array, and a repeated key (the last
   * value wins, as in a Go map). */
  orr_log_info("m", "k00", "0", "k01", "1", "k02", "2", "k03", "3", "k04", "4", "k05", "5", "k06",
               "6", "k07", "7", "k08", "8", "k09", "9", "k10", "10", "k11", "11", "k12", "12",
               "k13", "13", "k14", "14", "k15", "15", "k16", "16", "k17", "17", "k18", "18", "k19",
               "19", "k20", "20", "k21", "21", "k22", "22", "k23", "23", "k24", "24", "k25", "25",
               "k26", "26", "k27", "27", "k28", "28", "k29", "29", "k30", "30", "k00", "last",
               NULL);
  const char *got = captured();
  assert_non_null(strstr(got, "\"k00\":\"last\",\"k01\":\"1\","));
  assert_null(strstr(got, "\"k00\":\"0\""));
  assert_non_null(strstr(got, "\"k30\":\"30\",\"level\":\"info\""));
  assert_int_equal(got[strlen(got) - 1], '\n');
}

int test_log_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logfmt),
      cmocka_unit_test(test_logfmt_quoting),
      cmocka_unit_test(test_levels),
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_json_many_and_duplicate_keys),
  };
  return cmocka_run_group_tests_name("base_log", tests, setup, teardown);
}
