/* test_api_reader.c: promql_api_reader over Prometheus 2.42's answer shapes
 * (matrix, series list, error), fed whole and byte by byte, its values as
 * Prometheus writes them, and the bodies it must refuse with a reason. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promql.h"

/* What the reader handed out, as text: "{a=1,b=2}:t=v,t=v;" per series. */
typedef struct seen {
  char text[4096];
  int stop_after; /* return ORR_ECANCELED after this many series (0: never) */
  int n;
} seen;

static int collect(const labels_set *ls, const promql_api_point *pts, size_t n, void *arg) {
  seen *s = arg;
  size_t l = strlen(s->text);
  l += (size_t)snprintf(s->text + l, sizeof(s->text) - l, "{");
  for (size_t i = 0; i < ls->n; i++)
    l += (size_t)snprintf(s->text + l, sizeof(s->text) - l, "%s%s=%s", i ? "," : "",
                          ls->v[i].name, ls->v[i].value);
  l += (size_t)snprintf(s->text + l, sizeof(s->text) - l, "}:");
  for (size_t i = 0; i < n; i++)
    l += (size_t)snprintf(s->text + l, sizeof(s->text) - l, "%s%lld=%g", i ? "," : "",
                          (long long)pts[i].t, pts[i].v);
  snprintf(s->text + l, sizeof(s->text) - l, ";");
  s->n++;
  return s->stop_after && s->n >= s->stop_after ? ORR_ECANCELED : 0;
}

/* Feeds |body| in pieces of |piece| bytes; returns end()'s code (or the
 * first feed error) and fills |s|, |msg|. */
static int run(const char *body, size_t piece, seen *s, char *msg, size_t msglen) {
  promql_api_reader *r;
  assert_int_equal(promql_api_reader_new(collect, s, 0, &r), 0);
  size_t n = strlen(body);
  int rc = 0;
  for (size_t off = 0; off < n && !rc; off += piece)
    rc = promql_api_reader_feed(r, body + off, n - off < piece ? n - off : piece);
  if (!rc) rc = promql_api_reader_end(r);
  snprintf(msg, msglen, "%s", promql_api_reader_message(r));
  promql_api_reader_free(r);
  return rc;
}

/* The answer of /api/v1/query?query=m[1m] from Prometheus 2.42 (shape and
 * number formats as it writes them), series unsorted, keys of one series
 * in the other order, an escaped label value. */
static const char matrix[] =
    "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
    "{\"metric\":{\"__name__\":\"m\",\"job\":\"b\\\"q\\u00e9\"},"
    "\"values\":[[1700000000,\"1\"],[1700000000.5,\"NaN\"],[1700000001.001,\"+Inf\"],"
    "[1700000002,\"-Inf\"],[1700000003,\"1e-07\"]]},"
    "{\"values\":[[-1.5,\"-2.5\"]],\"metric\":{\"job\":\"a\",\"__name__\":\"m\"}}"
    "]},\"warnings\":[\"w1\"]}\n";

static void test_matrix(void **state) {
  (void)state;
  for (size_t piece = 1; piece <= sizeof(matrix); piece = piece * 3 + 1) {
    seen s = {0};
    char msg[256];
    assert_int_equal(run(matrix, piece, &s, msg, sizeof(msg)), 0);
    assert_string_equal(s.text, "{__name__=m,job=b\"q\xc3\xa9}:1700000000000=1,1700000000500=nan,"
                                "1700000001001=inf,1700000002000=-inf,1700000003000=1e-07;"
                                "{__name__=m,job=a}:-1500=-2.5;");
  }
  promql_api_reader *r;
  seen s = {0};
  assert_int_equal(promql_api_reader_new(collect, &s, 0, &r), 0);
  assert_int_equal(promql_api_reader_feed(r, matrix, strlen(matrix)), 0);
  assert_int_equal(promql_api_reader_end(r), 0);
  size_t nw;
  const char *const *w = promql_api_reader_warnings(r, &nw);
  assert_int_equal(nw, 1);
  assert_string_equal(w[0], "w1");
  promql_api_reader_free(r);
}

static void test_series_list_and_empty(void **state) {
  (void)state;
  seen s = {0};
  char msg[256];
  assert_int_equal(run("{\"status\":\"success\",\"data\":[{\"__name__\":\"up\",\"job\":\"p\"},{}]}",
                       7, &s, msg, sizeof(msg)),
                   0);
  assert_string_equal(s.text, "{__name__=up,job=p}:;{}:;");
  promql_api_reader *r;
  assert_int_equal(promql_api_reader_new(collect, &s, 0, &r), 0);
  assert_false(promql_api_reader_series_list(r));
  assert_int_equal(promql_api_reader_feed(r, "{\"status\":\"success\",\"data\":[]}", 30), 0);
  assert_int_equal(promql_api_reader_end(r), 0);
  assert_true(promql_api_reader_series_list(r));
  promql_api_reader_free(r);
  memset(&s, 0, sizeof(s));
  assert_int_equal(run("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}",
                       1, &s, msg, sizeof(msg)),
                   0);
  assert_string_equal(s.text, "");
}

static void test_error_answer(void **state) {
  (void)state;
  seen s = {0};
  char msg[256];
  assert_int_equal(run("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:2: parse "
                       "error: unexpected \\\"}\\\"\"}",
                       5, &s, msg, sizeof(msg)),
                   ORR_EUNAVAILABLE);
  assert_string_equal(msg, "bad_data: 1:2: parse error: unexpected \"}\"");
}

static void test_refused(void **state) {
  (void)state;
  static const struct {
    const char *body;
    int rc;
    const char *msg;
  } cases[] = {
      {"<html><body>Login</body></html>", ORR_ECORRUPT, "not JSON (the answer does not start with '{') at byte 0"},
      {"", ORR_ECORRUPT, "empty answer at byte 0"},
      {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{}",
       ORR_ECORRUPT, "truncated JSON"},
      {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}", ORR_ECORRUPT,
       "resultType vector, want matrix"},
      {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
       "\"values\":[[2,\"1\"],[1,\"1\"]]}]}}",
       ORR_ECORRUPT, "points out of time order"},
      {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
       "\"values\":[[1,\"x\"]]}]}}",
       ORR_ECORRUPT, "bad point value"},
      {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
       "\"values\":[[1,1]]}]}}",
       ORR_ECORRUPT, "bad point value"},
      {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"a\":1}}]}}",
       ORR_ECORRUPT, "a label value is not a string"},
      {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"a\":\"1\",\"a\":\"2\"}}]}}",
       ORR_ECORRUPT, "a series has a label twice"},
      {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}} x", ORR_ECORRUPT,
       "data after the JSON value"},
      {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
       "\"histograms\":[]}]}}",
       ORR_EUNSUPPORTED, "native histograms are not supported"},
      {"{\"status\":01}", ORR_ECORRUPT, "not JSON"},
      {"{\"data\":{\"resultType\":\"matrix\",\"result\":[]}}", ORR_ECORRUPT, "no status"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    seen s = {0};
    char msg[256];
    int rc = run(cases[i].body, 3, &s, msg, sizeof(msg));
    if (rc != cases[i].rc || !strstr(msg, cases[i].msg)) {
      print_error("case %zu: rc %d msg %s\n", i, rc, msg);
      fail();
    }
  }
}

static void test_consumer_stops(void **state) {
  (void)state;
  seen s = {.stop_after = 1};
  char msg[256];
  assert_int_equal(run(matrix, 4096, &s, msg, sizeof(msg)), ORR_ECANCELED);
  assert_int_equal(s.n, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matrix),        cmocka_unit_test(test_series_list_and_empty),
      cmocka_unit_test(test_error_answer),  cmocka_unit_test(test_refused),
      cmocka_unit_test(test_consumer_stops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
