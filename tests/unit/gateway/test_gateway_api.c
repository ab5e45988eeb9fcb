/* test_api.c: the /federate body as Prometheus 2.42's federation
 * handler writes it — families, label order and escaping, the implicit
 * instance="" external label, Go 'g' floats, millisecond timestamps. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway.h"

static labels_set mk(labels_label *v, size_t n) {
  labels_set s = {v, n};
  return s;
}

/* Two families out of order, a label needing every escape, a series with
 * its own instance (no instance="" added), special values. */
static void test_federate_body(void **state) {
  (void)state;
  labels_label a[] = {{"__name__", "up"}, {"job", "x"}, {"region", "eu"}};
  labels_label b[] = {{"__name__", "a_metric"}, {"instance", "h:1"}, {"path", "a\\b\"c\nd"}};
  labels_label c[] = {{"__name__", "up"}, {"job", "a"}, {"region", "us"}};
  labels_label d[] = {{"__name__", "a_metric"}, {"instance", "h:0"}};
  gw_federate_sample s[] = {
      {mk(a, 3), 1700000000123, 1},
      {mk(b, 3), 1700000000000, 1e-05},
      {mk(c, 3), 1700000000456, NAN},
      {mk(d, 2), -5, -INFINITY},
  };
  orr_buf out = {0};
  assert_int_equal(gw_federate_write(s, 4, &out), 0);
  assert_string_equal(out.data,
                      "# TYPE a_metric untyped\n"
                      "a_metric{instance=\"h:0\"} -Inf -5\n"
                      "a_metric{instance=\"h:1\",path=\"a\\\\b\\\"c\\nd\"} 1e-05 1700000000000\n"
                      "# TYPE up untyped\n"
                      "up{job=\"a\",region=\"us\",instance=\"\"} NaN 1700000000456\n"
                      "up{job=\"x\",region=\"eu\",instance=\"\"} 1 1700000000123\n");
  orr_buf_free(&out);
}

/* Nameless series and empty label values are left out, as Prometheus does;
 * large and fractional values use the shortest 'g' form. */
static void test_federate_nameless_and_floats(void **state) {
  (void)state;
  labels_label a[] = {{"job", "x"}};
  labels_label b[] = {{"__name__", "m"}, {"empty", ""}, {"k", "v"}};
  labels_label c[] = {{"__name__", "m"}, {"k", "w"}};
  gw_federate_sample s[] = {
      {mk(a, 1), 1, 1},
      {mk(b, 3), 2, 123456789012345678.0},
      {mk(c, 2), 3, 0.1},
  };
  orr_buf out = {0};
  assert_int_equal(gw_federate_write(s, 3, &out), 0);
  assert_string_equal(out.data,
                      "# TYPE m untyped\n"
                      "m{k=\"v\",instance=\"\"} 1.2345678901234568e+17 2\n"
                      "m{k=\"w\",instance=\"\"} 0.1 3\n");
  orr_buf_free(&out);
  orr_buf empty = {0};
  assert_int_equal(gw_federate_write(NULL, 0, &empty), 0);
  assert_int_equal(empty.len, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_federate_body),
      cmocka_unit_test(test_federate_nameless_and_floats),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
