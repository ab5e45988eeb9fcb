/* test_metrics.c: the registry and its text exposition, compared with what
 * client_golang writes for the same metrics; concurrent updates. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_base.h"

static char *render(orr_registry *r) {
  orr_buf b = {0};
  assert_int_equal(orr_registry_render(r, &b), 0);
  return orr_buf_steal(&b, NULL);
}

static void test_render_exact(void **state) {
  (void)state;
  orr_registry *r = orr_registry_new();
  assert_non_null(r);
  const char *const codes[] = {"method", "code", NULL};
  orr_metric *req = orr_counter_new(r, "http_requests_total", "Requests served.", codes);
  orr_metric *up = orr_gauge_new(r, "build_up", "Line one\nback\\slash \"quoted\"", NULL);
  const double bounds[] = {0.005, 0.5, 1, 1e6};
  const char *const hl[] = {"handler", NULL};
  orr_metric *lat =
      orr_histogram_new(r, "http_request_duration_seconds", "Latency.", hl, bounds, 4);
  assert_non_null(req);
  assert_non_null(up);
  assert_non_null(lat);

  orr_counter_add(orr_metric_with(req, (const char *const[]){"get", "200"}), 3);
  orr_counter_inc(orr_metric_with(req, (const char *const[]){"post", "200"}));
  orr_counter_add(orr_metric_with(req, (const char *const[]){"get", "500"}), 0.5);
  orr_counter_inc(orr_metric_with(req, (const char *const[]){"get", "a\"b\\c\nd"}));
  orr_gauge_set(orr_metric_series(up), 1e6);
  orr_gauge_add(orr_metric_series(up), 0.25);
  orr_series *h = orr_metric_with(lat, (const char *const[]){"/api"});
  orr_histogram_observe(h, 0.001);
  orr_histogram_observe(h, 0.005); /* upper bounds are inclusive */
  orr_histogram_observe(h, 0.7);
  orr_histogram_observe(h, 2e6);
  orr_metric_with(lat, (const char *const[]){"/"}); /* an empty child is shown too */

  char *text = render(r);
  const char *want =
      "# HELP build_up Line one\\nback\\\\slash \"quoted\"\n"
      "# TYPE build_up gauge\n"
      "build_up 1.00000025e+06\n"
      "# HELP http_request_duration_seconds Latency.\n"
      "# TYPE http_request_duration_seconds histogram\n"
      "http_request_duration_seconds_bucket{handler=\"/\",le=\"0.005\"} 0\n"
      "http_request_duration_seconds_bucket{handler=\"/\",le=\"0.5\"} 0\n"
      "http_request_duration_seconds_bucket{handler=\"/\",le=\"1\"} 0\n"
      "http_request_duration_seconds_bucket{handler=\"/\",le=\"1e+06\"} 0\n"
      "http_request_duration_seconds_bucket{handler=\"/\",le=\"+Inf\"} 0\n"
      "http_request_duration_seconds_sum{handler=\"/\"} 0\n"
      "http_request_duration_seconds_count{handler=\"/\"} 0\n"
      "http_request_duration_seconds_bucket{handler=\"/api\",le=\"0.005\"} 2\n"
      "http_request_duration_seconds_bucket{handler=\"/api\",le=\"0.5\"} 2\n"
      "http_request_duration_seconds_bucket{handler=\"/api\",le=\"1\"} 3\n"
      "http_request_duration_seconds_bucket{handler=\"/api\",le=\"1e+06\"} 3\n"
      "http_request_duration_seconds_bucket{handler=\"/api\",le=\"+Inf\"} 4\n"
      "http_request_duration_seconds_sum{handler=\"/api\"} 2.000000706e+06\n"
      "http_request_duration_seconds_count{handler=\"/api\"} 4\n"
      "# HELP http_requests_total Requests served.\n"
      "# TYPE http_requests_total counter\n"
      /* labels sorted by name (code before method), series by those values */
      "http_requests_total{code=\"200\",method=\"get\"} 3\n"
      "http_requests_total{code=\"200\",method=\"post\"} 1\n"
      "http_requests_total{code=\"500\",method=\"get\"} 0.5\n"
      "http_requests_total{code=\"a\\\"b\\\\c\\nd\",method=\"get\"} 1\n";
  assert_string_equal(text, want);
  free(text);
  orr_registry_destroy(r);
}

static double forty_two(void *arg) { return *(double *)arg; }

static void test_registration_rules(void **state) {
  (void)state;
  orr_registry *r = orr_registry_new();
  const char *const l1[] = {"a", NULL};
  const char *const l2[] = {"b", NULL};
  orr_metric *m = orr_counter_new(r, "x_total", "", l1);
  assert_non_null(m);
  /* The identical family again is the same object; a different one fails. */
  assert_ptr_equal(orr_counter_new(r, "x_total", "other help", l1), m);
  assert_null(orr_counter_new(r, "x_total", "", l2));
  assert_null(orr_gauge_new(r, "x_total", "", l1));
  /* Invalid names. */
  assert_null(orr_counter_new(r, "1x", "", NULL));
  assert_null(orr_counter_new(r, "a-b", "", NULL));
  assert_null(orr_counter_new(r, "", "", NULL));
  assert_null(orr_counter_new(r, "ok", "", (const char *const[]){"__x", NULL}));
  assert_null(orr_counter_new(r, "ok", "", (const char *const[]){"a:b", NULL}));
  assert_null(orr_counter_new(r, "ok", "", (const char *const[]){"a", "a", NULL}));
  assert_null(orr_histogram_new(r, "h", "", (const char *const[]){"le", NULL}, NULL, 0));
  assert_null(orr_histogram_new(r, "h", "", NULL, (const double[]){2, 1}, 2));
  assert_non_null(orr_counter_new(r, "ns:sub_total", "", NULL));
  /* Label values: wrong child requests. */
  assert_null(orr_metric_series(m)); /* m has labels */
  assert_null(orr_metric_with(m, (const char *const[]){NULL}));
  orr_series *s1 = orr_metric_with(m, (const char *const[]){"v"});
  assert_ptr_equal(orr_metric_with(m, (const char *const[]){"v"}), s1);
  /* Counters never go down. */
  orr_counter_add(s1, -5);
  orr_counter_add(s1, NAN);
  orr_counter_add(s1, 2);
  /* Gauge funcs. */
  double v = 42;
  assert_int_equal(orr_gauge_func_new(r, "answer", "The answer.", forty_two, &v), 0);
  assert_int_equal(orr_gauge_func_new(r, "answer", "The answer.", forty_two, &v), ORR_EEXISTS);
  assert_int_equal(orr_gauge_func_new(r, "x_total", "", forty_two, &v), ORR_EEXISTS);
  assert_int_equal(orr_gauge_func_new(r, "bad name", "", forty_two, &v), ORR_EINVAL);
  char *text = render(r);
  assert_string_equal(text,
                      "# HELP answer The answer.\n"
                      "# TYPE answer gauge\n"
                      "answer 42\n"
                      "# HELP ns:sub_total \n"
                      "# TYPE ns:sub_total counter\n"
                      "ns:sub_total 0\n"
                      "# HELP x_total \n"
                      "# TYPE x_total counter\n"
                      "x_total{a=\"v\"} 2\n");
  free(text);
  /* Values as client_golang writes them. */
  orr_metric *g = orr_gauge_new(r, "g", "", NULL);
  orr_series *gs = orr_metric_series(g);
  const struct {
    double v;
    const char *want;
  } vals[] = {{-0.0, "g 0\n"}, {NAN, "g NaN\n"}, {INFINITY, "g +Inf\n"}, {-INFINITY, "g -Inf\n"},
              {1e-7, "g 1e-07\n"}, {-1, "g -1\n"}, {123456, "g 123456\n"}};
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    orr_gauge_set(gs, vals[i].v);
    text = render(r);
    const char *line = strstr(text, "# TYPE g gauge\n");
    assert_non_null(line);
    assert_true(strncmp(line + strlen("# TYPE g gauge\n"), vals[i].want, strlen(vals[i].want)) == 0);
    free(text);
  }
  orr_registry_destroy(r);
}

#define THREADS 4
#define ITERS 100000

static void *hammer(void *arg) {
  orr_metric **ms = arg;
  orr_series *c = orr_metric_series(ms[0]);
  orr_series *h = orr_metric_series(ms[1]);
  char lv[8];
  for (int i = 0; i < ITERS; i++) {
    orr_counter_add(c, 0.5);
    orr_histogram_observe(h, (double)(i % 4));
    if (i % 1000 == 0) {
      snprintf(lv, sizeof(lv), "%d", i % 7);
      orr_counter_inc(orr_metric_with(ms[2], (const char *const[]){lv}));
    }
  }
  return NULL;
}

static void test_concurrent_updates(void **state) {
  (void)state;
  orr_registry *r = orr_registry_new();
  orr_metric *ms[3];
  ms[0] = orr_counter_new(r, "c_total", "", NULL);
  ms[1] = orr_histogram_new(r, "h", "", NULL, (const double[]){0.5, 1.5, 2.5}, 3);
  ms[2] = orr_counter_new(r, "l_total", "", (const char *const[]){"k", NULL});
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, hammer, ms), 0);
  /* Render while updates run: each rendering is well formed. */
  for (int i = 0; i < 20; i++) {
    char *text = render(r);
    assert_non_null(strstr(text, "# TYPE h histogram\n"));
    free(text);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  char *text = render(r);
  char want[128];
  snprintf(want, sizeof(want), "c_total %d\n", THREADS * ITERS / 2);
  assert_non_null(strstr(text, want));
  snprintf(want, sizeof(want), "h_bucket{le=\"0.5\"} %d\n", THREADS * ITERS / 4);
  assert_non_null(strstr(text, want));
  snprintf(want, sizeof(want), "h_bucket{le=\"+Inf\"} %d\nh_sum %d\nh_count %d\n", THREADS * ITERS,
           THREADS * ITERS / 4 * 6, THREADS * ITERS);
  assert_non_null(strstr(text, want));
  assert_non_null(strstr(text, "l_total{k=\"6\"}"));
  free(text);
  orr_registry_destroy(r);
}

static void test_process_metrics(void **state) {
  (void)state;
  orr_registry *r = orr_registry_new();
  assert_int_equal(orr_register_process_metrics(r), 0);
  assert_int_equal(orr_register_process_metrics(r), 0); /* idempotent */
  char *text = render(r);
  const char *names[] = {"process_cpu_seconds_total", "process_max_fds", "process_open_fds",
                         "process_resident_memory_bytes", "process_start_time_seconds",
                         "process_virtual_memory_bytes", "process_virtual_memory_max_bytes"};
  const char *prev = text;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char line[128];
    snprintf(line, sizeof(line), "\n%s ", names[i]);
    const char *p = strstr(text, line);
    if (!p) fail_msg("no %s in:\n%s", names[i], text);
    assert_true(p > prev); /* sorted by name */
    prev = p;
    double v = strtod(p + strlen(line), NULL);
    assert_true(v >= 0);
  }
  assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
  /* The values are plausible for this very process. */
  double start = strtod(strstr(text, "\nprocess_start_time_seconds ") + 28, NULL);
  double now = (double)orr_now_ms() / 1000;
  assert_true(start > now - 3600 && start <= now + 1);
  double rss = strtod(strstr(text, "\nprocess_resident_memory_bytes ") + 31, NULL);
  assert_true(rss > 100000);
  double fds = strtod(strstr(text, "\nprocess_open_fds ") + 18, NULL);
  assert_true(fds >= 3);
  free(text);
  orr_registry_destroy(r);
  assert_ptr_equal(orr_registry_default(), orr_registry_default());
  assert_non_null(orr_registry_default());
}

int test_metrics_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_render_exact),
      cmocka_unit_test(test_registration_rules),
      cmocka_unit_test(test_concurrent_updates),
      cmocka_unit_test(test_process_metrics),
  };
  return cmocka_run_group_tests_name("base_metrics", tests, NULL, NULL);
}
