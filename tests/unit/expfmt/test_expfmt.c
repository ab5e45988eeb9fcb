/* test_expfmt.c: the text exposition format 0.0.4 parser — what a
 * /federate answer looks like, the escapes and number forms of the format,
 * and the errors a bad body gives (with its line). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "expfmt.h"

/* Each sample as one line: {labels} value [ts]. */
static char got[4096];

static int collect(const expfmt_sample *s, void *arg) {
  (void)arg;
  orr_buf b = {0};
  labels_format(&s->labels, &b);
  char v[64];
  if (isnan(s->v))
    snprintf(v, sizeof(v), "NaN");
  else
    snprintf(v, sizeof(v), "%g", s->v);
  size_t n = strlen(got);
  snprintf(got + n, sizeof(got) - n, "%.*s %s", (int)b.len, b.data ? b.data : "", v);
  n = strlen(got);
  if (s->has_ts) snprintf(got + n, sizeof(got) - n, " @%lld", (long long)s->ts);
  n = strlen(got);
  snprintf(got + n, sizeof(got) - n, "\n");
  orr_buf_free(&b);
  return 0;
}

static int parse(const char *body, char *err, size_t errlen) {
  got[0] = 0;
  orr_arena *a = orr_arena_new(0);
  int rc = expfmt_parse(body, strlen(body), a, collect, NULL, err, errlen);
  orr_arena_destroy(a);
  return rc;
}

static void test_federate_body(void **state) {
  (void)state;
  char err[256];
  const char *body = "# TYPE up untyped\n"
                     "up{instance=\"127.0.0.1:9090\",job=\"prometheus\",region=\"eu\"} 1 1700000000123\n"
                     "# TYPE http_requests_total counter\n"
                     "http_requests_total{code=\"200\",job=\"api\"} 1027 1700000000000\n"
                     "http_requests_total{code=\"500\",job=\"api\"} 3 1700000000000";
  assert_int_equal(parse(body, err, sizeof(err)), 0);
  assert_string_equal(got,
                      "up{instance=\"127.0.0.1:9090\", job=\"prometheus\", "
                      "region=\"eu\"} 1 @1700000000123\n"
                      "http_requests_total{code=\"200\", job=\"api\"} 1027 "
                      "@1700000000000\n"
                      "http_requests_total{code=\"500\", job=\"api\"} 3 "
                      "@1700000000000\n");
}

static void test_forms(void **state) {
  (void)state;
  char err[256];
  const char *body = "# HELP m Help text with \\\\ and \\n escapes.\n"
                     "#   a comment of its own\n"
                     "\n"
                     "  \t\n"
                     "m{a=\"q\\\"uote\",b=\"back\\\\slash\",c=\"new\\nline\",d=\"keep\\t\",} +Inf\n"
                     "m{} -Inf -5\n"
                     "m\tNaN\t7\n"
                     "m{ x = \"1\" } -1.5e3\n"
                     "nm:sub 0x1p-2\n";
  assert_int_equal(parse(body, err, sizeof(err)), 0);
  assert_string_equal(got,
                      "m{a=\"q\\\"uote\", b=\"back\\\\slash\", c=\"new\\nline\", "
                      "d=\"keep\\\\t\"} inf\n"
                      "m -inf @-5\n"
                      "m NaN @7\n"
                      "m{x=\"1\"} -1500\n"
                      "nm:sub 0.25\n");
}

static void test_errors(void **state) {
  (void)state;
  static const struct {
    const char *body, *err;
  } cases[] = {
      {"<html><body>Not metrics</body></html>\n", "line 1: invalid metric name"},
      {"ok 1\n\n{a=\"b\"} 1\n", "line 3: invalid metric name"},
      {"# TYPE m gauges\n", "line 1: invalid metric type \"gauges\""},
      {"m 1 2 3\n", "line 1: unexpected text after the timestamp"},
      {"m 1 1.5\n", "line 1: invalid timestamp \"1.5\""},
      {"m one\n", "line 1: invalid value \"one\""},
      {"m\n", "line 1: missing value"},
      {"m{a=\"1\",a=\"2\"} 1\n", "line 1: duplicate label name"},
      {"m{a=\"1} 1\n", "line 1: unterminated label value"},
      {"m{a=1} 1\n", "line 1: expected a quoted value for label \"a\""},
      {"m{a=\"1\" b=\"2\"} 1\n", "line 1: expected ',' or '}' after a label"},
      {"m{a=\"\xff\"} 1\n", "line 1: invalid UTF-8 label value"},
      {"m{1a=\"x\"} 1\n", "line 1: invalid label name"},
      {"m nan(1)\n", "line 1: invalid value \"nan(1)\""},
      {"m 1e999\n", "line 1: invalid value \"1e999\""},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[256] = "";
    int rc = parse(cases[i].body, err, sizeof(err));
    if (rc != ORR_EINVAL || strcmp(err, cases[i].err) != 0)
      fail_msg("case %zu: rc %d err \"%s\", want \"%s\"", i, rc, err, cases[i].err);
  }
  /* Samples before the bad line were delivered. */
  char err[256];
  assert_int_equal(parse("a 1\nb 2\n!\n", err, sizeof(err)), ORR_EINVAL);
  assert_string_equal(got, "a 1\nb 2\n");
}

static int stop_at_two(const expfmt_sample *s, void *arg) {
  int *n = arg;
  (void)s;
  return ++*n == 2 ? ORR_ELIMIT : 0;
}

static void test_callback_stops(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  int n = 0;
  char err[64];
  const char *body = "a 1\nb 2\nc 3\n";
  assert_int_equal(expfmt_parse(body, strlen(body), a, stop_at_two, &n, err, sizeof(err)),
                   ORR_ELIMIT);
  assert_int_equal(n, 2);
  orr_arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_federate_body),
      cmocka_unit_test(test_forms),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_callback_stops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
