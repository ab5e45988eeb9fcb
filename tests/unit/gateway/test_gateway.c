/* test_gateway.c: unit tests of the gateway core — the penalty dedup (gaps,
 * counters, identical replicas, stale markers, ties), pruning of endpoints by
 * external labels and time, and file SD parsing and reload. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway_int.h"

#define STALE_BITS 0x7ff0000000000002ull

static double stale_nan(void) {
  double v;
  uint64_t b = STALE_BITS;
  memcpy(&v, &b, sizeof(v));
  return v;
}

static long run_dedup(const promql_point *a, size_t na, const promql_point *b, size_t nb,
                      bool counter, promql_point *out) {
  orr_arena *ar = orr_arena_new(0);
  gw__replica r[2] = {{a, na}, {b, nb}};
  long k = gw__dedup(r, 2, counter, INT64_MIN, INT64_MAX, ar, out);
  orr_arena_destroy(ar);
  return k;
}

static void test_identical_replicas(void **state) {
  (void)state;
  promql_point a[20];
  for (int i = 0; i < 20; i++) a[i] = (promql_point){i * 15000, i * 1.5};
  promql_point out[40];
  long k = run_dedup(a, 20, a, 20, false, out);
  assert_int_equal(k, 20);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(out[i].t, a[i].t);
    assert_true(out[i].v == a[i].v);
  }
}

/* A scrapes every 10 s with a gap from 40 s to 70 s; B every 10 s offset by
 * 5 s. The output stays on A until its gap, moves to B, and stays on B
 * (A is sought past B's last time plus twice the step, so it never wins
 * back while B keeps going). */
static void test_penalty_gap(void **state) {
  (void)state;
  promql_point a[] = {{0, 0}, {10000, 1}, {20000, 2}, {30000, 3}, {80000, 8}, {90000, 9}, {100000, 10}};
  promql_point b[11];
  for (int i = 0; i < 11; i++) b[i] = (promql_point){5000 + i * 10000, 100 + i};
  promql_point out[40];
  long k = run_dedup(a, 7, b, 11, false, out);
  int64_t want[] = {0, 10000, 20000, 30000, 55000, 65000, 75000, 85000, 95000, 105000};
  assert_int_equal(k, 10);
  for (int i = 0; i < 10; i++) assert_int_equal(out[i].t, want[i]);
  assert_true(out[3].v == 3);
  assert_true(out[4].v == 105); /* B's sample at 55 s */
  /* Symmetric: B first by argument order gives the same samples, since A's
   * first sample is the earliest. */
  k = run_dedup(b, 11, a, 7, false, out);
  assert_int_equal(k, 10);
  for (int i = 0; i < 10; i++) assert_int_equal(out[i].t, want[i]);
}

/* The initial penalty (5 s): replicas a second apart never both appear. */
static void test_initial_penalty(void **state) {
  (void)state;
  promql_point a[] = {{1000, 1}, {31000, 2}, {61000, 3}};
  promql_point b[] = {{0, 10}, {30000, 20}, {60000, 30}};
  promql_point out[10];
  long k = run_dedup(a, 3, b, 3, false, out);
  assert_int_equal(k, 3);
  assert_int_equal(out[0].t, 0);
  assert_int_equal(out[1].t, 30000);
  assert_int_equal(out[2].t, 60000);
}

/* Replica B restarted (its counter is lower): after switching to it, its
 * values are raised so that rate() sees no reset; without the counter hint
 * they are passed unchanged. */
static void test_counter_adjust(void **state) {
  (void)state;
  promql_point a[] = {{0, 10}, {10000, 20}, {20000, 30}};
  promql_point b[] = {{5000, 12}, {65000, 5}, {75000, 15}};
  promql_point out[10];
  long k = run_dedup(a, 3, b, 3, true, out);
  assert_int_equal(k, 5);
  assert_int_equal(out[3].t, 65000);
  assert_true(out[3].v == 30); /* 5 + (30 - 5) */
  assert_true(out[4].v == 40);
  for (long i = 1; i < k; i++) assert_true(out[i].v >= out[i - 1].v);
  k = run_dedup(a, 3, b, 3, false, out);
  assert_int_equal(k, 5);
  assert_true(out[3].v == 5);
  assert_true(out[4].v == 15);
  assert_true(gw__is_counter_func("rate"));
  assert_true(gw__is_counter_func("increase"));
  assert_true(gw__is_counter_func("irate"));
  assert_true(gw__is_counter_func("resets"));
  assert_false(gw__is_counter_func("sum"));
  assert_false(gw__is_counter_func(NULL));
}

/* Stale markers keep their exact bits, also through a counter adjustment
 * (a stale marker as the last value adjusts nothing: NaN compares false). */
static void test_stale_markers(void **state) {
  (void)state;
  promql_point a[] = {{0, 10}, {10000, 20}, {20000, 0}};
  a[2].v = stale_nan();
  promql_point b[] = {{5000, 1}, {65000, 2}, {75000, 0}};
  b[2].v = stale_nan();
  promql_point out[10];
  long k = run_dedup(a, 3, b, 3, true, out);
  assert_int_equal(k, 5);
  uint64_t bits;
  memcpy(&bits, &out[2].v, sizeof(bits));
  assert_int_equal(out[2].t, 20000);
  assert_true(bits == STALE_BITS);
  memcpy(&bits, &out[4].v, sizeof(bits));
  assert_int_equal(out[4].t, 75000);
  assert_true(bits == STALE_BITS);
  /* As Thanos: the very first pick compares the replicas' first values,
   * and b's 1 below a's 10 raised b by 9 from then on. */
  assert_true(out[3].v == 11);
}

static void test_three_replicas_and_range(void **state) {
  (void)state;
  /* Each replica takes over after the previous one stopped for longer than
   * twice its last step (a's 40 s gap makes c wait until 140 s); the output
   * is clipped to [10 s, 150 s]. */
  promql_point a[] = {{0, 1}, {10000, 2}, {20000, 3}};
  promql_point b[] = {{60000, 4}, {70000, 5}};
  promql_point c[] = {{150000, 6}, {160000, 7}};
  gw__replica r[3] = {{a, 3}, {b, 2}, {c, 2}};
  promql_point out[10];
  orr_arena *ar = orr_arena_new(0);
  long k = gw__dedup(r, 3, false, 10000, 150000, ar, out);
  orr_arena_destroy(ar);
  int64_t want[] = {10000, 20000, 60000, 70000, 150000};
  assert_int_equal(k, 5);
  for (int i = 0; i < 5; i++) assert_int_equal(out[i].t, want[i]);
  /* A replica whose next sample falls inside the penalty is skipped: b's
   * 20 s sample comes 10 s after a's last, under the 20 s penalty. */
  promql_point b2[] = {{20000, 9}, {30000, 9}};
  gw__replica r2[2] = {{a, 2}, {b2, 2}};
  ar = orr_arena_new(0);
  k = gw__dedup(r2, 2, false, INT64_MIN, INT64_MAX, ar, out);
  orr_arena_destroy(ar);
  assert_int_equal(k, 2);
}

/* Both replicas hold a sample at the same timestamp (identical scrape
 * times, different values): as Thanos's dedupSeriesIterator (useA = ta <=
 * tb), the first replica of the fold wins every tie, so the output carries
 * its values, in counter mode too (no switch, so no adjustment). Swapping
 * the arguments swaps whose values appear; with three replicas the first
 * still wins. Values that differ per replica make a changed tie-break
 * visible, which identical replicas (test_identical_replicas) cannot. */
static void test_tie_break(void **state) {
  (void)state;
  promql_point a[6], b[6], c[6];
  for (int i = 0; i < 6; i++) {
    a[i] = (promql_point){i * 10000, 100 + i};
    b[i] = (promql_point){i * 10000, 200 + i};
    c[i] = (promql_point){i * 10000, 300 + i};
  }
  promql_point out[20];
  for (int counter = 0; counter < 2; counter++) {
    long k = run_dedup(a, 6, b, 6, counter, out);
    assert_int_equal(k, 6);
    for (int i = 0; i < 6; i++) {
      assert_int_equal(out[i].t, i * 10000);
      assert_true(out[i].v == 100 + i);
    }
    /* b's counter is the higher one here: still b's values, unadjusted. */
    k = run_dedup(b, 6, a, 6, counter, out);
    assert_int_equal(k, 6);
    for (int i = 0; i < 6; i++) assert_true(out[i].v == 200 + i);
  }
  gw__replica r[3] = {{c, 6}, {a, 6}, {b, 6}};
  orr_arena *ar = orr_arena_new(0);
  long k = gw__dedup(r, 3, false, INT64_MIN, INT64_MAX, ar, out);
  orr_arena_destroy(ar);
  assert_int_equal(k, 6);
  for (int i = 0; i < 6; i++) assert_true(out[i].v == 300 + i);
}

/* ---------------------------------------------------------------- pruning */
static labels_matcher *mk(labels_match_type t, const char *n, const char *v) {
  labels_matcher *m = labels_matcher_new(t, n, v, NULL, 0);
  assert_non_null(m);
  return m;
}

static void test_labelsets_match(void **state) {
  (void)state;
  labels_label l1[] = {{"region", "eu"}, {"replica", "a"}};
  labels_label l2[] = {{"region", "us"}, {"replica", "b"}};
  labels_set sets[2] = {{l1, 2}, {l2, 2}};
  labels_matcher *eu = mk(LABELS_MATCH_EQ, "region", "eu");
  labels_matcher *asia = mk(LABELS_MATCH_EQ, "region", "asia");
  labels_matcher *job = mk(LABELS_MATCH_EQ, "job", "x");
  labels_matcher *re = mk(LABELS_MATCH_RE, "region", "u.");
  assert_true(gw__labelsets_match(&eu, 1, sets, 2));
  assert_true(gw__labelsets_match(&eu, 1, sets + 1, 0)); /* no label sets: always */
  assert_false(gw__labelsets_match(&eu, 1, sets + 1, 1));
  assert_false(gw__labelsets_match(&asia, 1, sets, 2));
  assert_true(gw__labelsets_match(&job, 1, sets, 2)); /* name held by no set */
  assert_true(gw__labelsets_match(&re, 1, sets + 1, 1));
  labels_matcher *both[2] = {eu, re};
  assert_false(gw__labelsets_match(both, 2, sets, 2));
  labels_matcher_free(eu);
  labels_matcher_free(asia);
  labels_matcher_free(job);
  labels_matcher_free(re);
}

static gw__endpoint *fake_ep(gw *g, const char *addr, int64_t mint, int64_t maxt,
                             labels_label *l, size_t nl, bool up) {
  gw__endpoint *e = calloc(1, sizeof(*e));
  e->g = g;
  e->address = strdup(addr);
  e->name = strdup(addr);
  e->state = orr_arena_new(0);
  e->label_sets = orr_arena_calloc(e->state, 1, sizeof(labels_set));
  e->label_sets[0].v = l;
  e->label_sets[0].n = nl;
  e->nlabel_sets = nl ? 1 : 0;
  e->min_time = mint;
  e->max_time = maxt;
  e->up = up;
  e->wanted = true;
  e->component = "sidecar";
  return e;
}

static void test_targets_pruning(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  gw_config cfg = {0};
  cfg.loop = &loop;
  gw *g = NULL;
  char err[128];
  assert_int_equal(gw_new(&cfg, &g, err, sizeof(err)), 0);
  labels_label eu[] = {{"region", "eu"}};
  labels_label us[] = {{"region", "us"}};
  gw__endpoint *e[4];
  e[0] = fake_ep(g, "10.0.0.1:1", 0, 1000, eu, 1, true);
  e[1] = fake_ep(g, "10.0.0.2:1", 2000, 3000, eu, 1, true);
  e[2] = fake_ep(g, "10.0.0.3:1", 0, 3000, us, 1, true);
  e[3] = fake_ep(g, "10.0.0.4:1", 0, 3000, eu, 1, false); /* down */
  g->eps = e;
  g->neps = 4;
  labels_matcher *m = mk(LABELS_MATCH_EQ, "region", "eu");
  gw__endpoint **t;
  size_t n;
  assert_int_equal(gw__targets(g, 500, 900, &m, 1, &t, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(t[0]->address, "10.0.0.1:1");
  gw__targets_release(g, t, n);
  assert_int_equal(gw__targets(g, 0, 5000, &m, 1, &t, &n), 0);
  assert_int_equal(n, 2);
  gw__targets_release(g, t, n);
  assert_int_equal(gw__targets(g, 1001, 1999, NULL, 0, &t, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(t[0]->address, "10.0.0.3:1");
  gw__targets_release(g, t, n);
  /* The /api/v1/stores body lists every endpoint, down ones too. */
  orr_buf b = {0};
  assert_int_equal(gw_endpoints_json(g, &b), 0);
  assert_non_null(strstr(b.data, "\"sidecar\":[{\"name\":\"10.0.0.1:1\""));
  assert_non_null(strstr(b.data, "\"labelSets\":[{\"region\":\"eu\"}],\"minTime\":0,\"maxTime\":1000"));
  assert_non_null(strstr(b.data, "10.0.0.4:1"));
  orr_buf_free(&b);
  labels_matcher_free(m);
  for (int i = 0; i < 4; i++) {
    orr_arena_destroy(e[i]->state);
    free(e[i]->address);
    free(e[i]->name);
    free(e[i]);
  }
  g->eps = NULL;
  g->neps = 0;
  /* gw_close needs the handles gw_start makes. */
  assert_int_equal(gw_start(g), 0);
  gw_close(g, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---------------------------------------------------------------- file SD */
static void test_sd_parse(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  const char **t = NULL;
  size_t n = 0;
  char err[256];
  const char *js = " [{\"targets\": [\"127.0.0.1:10901\", \"h:2\"], \"labels\": {\"x\": \"y\"}},"
                   " {\"targets\": [\"[::1]:3\"]}]";
  assert_int_equal(gw__sd_parse(js, strlen(js), a, &t, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 3);
  assert_string_equal(t[0], "127.0.0.1:10901");
  assert_string_equal(t[2], "[::1]:3");
  free(t);
  t = NULL;
  n = 0;
  const char *ym = "- targets:\n    - 127.0.0.1:1\n    - 'h:2'\n  labels:\n    a: b\n"
                   "- labels: {c: d}\n  targets: [x:3]\n";
  assert_int_equal(gw__sd_parse(ym, strlen(ym), a, &t, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 3);
  assert_string_equal(t[0], "127.0.0.1:1");
  assert_string_equal(t[1], "h:2");
  assert_string_equal(t[2], "x:3");
  free(t);
  t = NULL;
  n = 0;
  const char *bad = "[{\"targets\": \"x\"}]";
  assert_int_equal(gw__sd_parse(bad, strlen(bad), a, &t, &n, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "targets"));
  const char *bad2 = "[{\"targets\": [";
  assert_int_equal(gw__sd_parse(bad2, strlen(bad2), a, &t, &n, err, sizeof(err)), ORR_EINVAL);
  const char *bad3 = "targets: [a:1]\n";
  assert_int_equal(gw__sd_parse(bad3, strlen(bad3), a, &t, &n, err, sizeof(err)), ORR_EINVAL);
  free(t);
  orr_arena_destroy(a);
}

static void write_file(const char *path, const char *s) {
  char tmp[512];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fputs(s, f);
  fclose(f);
  assert_int_equal(rename(tmp, path), 0);
}

static bool has_endpoint(gw *g, const char *addr, bool want_error) {
  orr_arena *a = orr_arena_new(0);
  gw_endpoint_info *v;
  size_t n;
  bool found = false;
  assert_int_equal(gw_endpoints(g, a, &v, &n), 0);
  for (size_t i = 0; i < n; i++)
    if (!strcmp(v[i].address, addr) && (!want_error || v[i].last_error)) found = true;
  orr_arena_destroy(a);
  return found;
}

static void run_until(uv_loop_t *loop, gw *g, const char *addr, bool present, bool want_error) {
  uint64_t start = orr_mono_ns();
  while (has_endpoint(g, addr, want_error) != present) {
    assert_true(orr_mono_ns() - start < 20ull * 1000000000);
    uv_run(loop, UV_RUN_ONCE);
  }
}

/* Targets come from the SD file; rewriting the file replaces them; an
 * endpoint that does not answer Info is listed down with its error. */
static void test_sd_reload(void **state) {
  (void)state;
  char dir[] = "/tmp/gw_sd_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof(path), "%s/targets.json", dir);
  write_file(path, "[{\"targets\": [\"127.0.0.1:1\"]}]");
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *files[] = {path};
  gw_config cfg = {0};
  cfg.loop = &loop;
  cfg.sd_files = files;
  cfg.nsd_files = 1;
  cfg.info_timeout_ms = 500;
  gw *g = NULL;
  char err[128];
  assert_int_equal(gw_new(&cfg, &g, err, sizeof(err)), 0);
  assert_int_equal(gw_start(g), 0);
  run_until(&loop, g, "127.0.0.1:1", true, true);
  write_file(path, "- targets: ['127.0.0.1:2']\n");
  run_until(&loop, g, "127.0.0.1:2", true, false);
  run_until(&loop, g, "127.0.0.1:1", false, false);
  gw_close(g, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  unlink(path);
  rmdir(dir);
}

/* An SRV answer as res_query returns it: the question, then two SRV records
 * (one target written out, one compressed against the question's name). */
static void test_srv_parse(void **state) {
  (void)state;
  static const uint8_t msg[] = {
      0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
      5, '_', 'g', 'r', 'p', 'c', 4, '_', 't', 'c', 'p', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
      3, 'c', 'o', 'm', 0, 0, 33, 0, 1,
      /* answer 1: store-0.example.com:10901 */
      0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 27, 0, 0, 0, 5, 0x2a, 0x95,
      7, 's', 't', 'o', 'r', 'e', '-', '0', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o',
      'm', 0,
      /* answer 2: store-1 + pointer to "example.com" (offset 23), port 10902 */
      0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 16, 0, 0, 0, 5, 0x2a, 0x96,
      7, 's', 't', 'o', 'r', 'e', '-', '1', 0xc0, 23};
  char **v;
  size_t n;
  assert_int_equal(gw__srv_parse(msg, sizeof(msg), &v, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(v[0], "store-0.example.com:10901");
  assert_string_equal(v[1], "store-1.example.com:10902");
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
  /* Truncated anywhere: an error, never a read past the end. */
  for (size_t cut = 0; cut < sizeof(msg) - 1; cut++) {
    int rc = gw__srv_parse(msg, cut, &v, &n);
    if (rc == 0) {
      assert_true(n < 2);
      for (size_t i = 0; i < n; i++) free(v[i]);
      free(v);
    } else {
      assert_int_equal(rc, ORR_ECORRUPT);
    }
  }
  /* A pointer loop is refused. */
  uint8_t loop[] = {0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 33, 0, 1};
  assert_int_equal(gw__srv_parse(loop, sizeof(loop), &v, &n), ORR_ECORRUPT);
}

/* ---------------------------------------------------------------- bridge */
typedef struct loop_thread {
  uv_loop_t loop;
  gw *g;
  uv_async_t stop;
  uv_thread_t th;
} loop_thread;

static void stop_cb(uv_async_t *h) {
  loop_thread *lt = h->data;
  gw_close(lt->g, NULL, NULL);
  uv_close((uv_handle_t *)h, NULL);
}

static void run_loop(void *arg) {
  loop_thread *lt = arg;
  uv_run(&lt->loop, UV_RUN_DEFAULT);
}

static int count_series(void *arg, const labels_set *ls, const promql_point *p, size_t n) {
  (void)ls;
  (void)p;
  (void)n;
  (*(int *)arg)++;
  return 0;
}

static void never_done(void *arg, int err, const char *msg) {
  (void)arg;
  (void)err;
  (void)msg;
}

/* With no endpoints, a blocking select from another thread ends with no
 * series and no error; labels come back empty. */
static void test_sync_bridge(void **state) {
  (void)state;
  loop_thread lt;
  memset(&lt, 0, sizeof(lt));
  uv_loop_init(&lt.loop);
  gw_config cfg = {0};
  cfg.loop = &lt.loop;
  char err[256] = "";
  assert_int_equal(gw_new(&cfg, &lt.g, err, sizeof(err)), 0);
  assert_int_equal(gw_start(lt.g), 0);
  uv_async_init(&lt.loop, &lt.stop, stop_cb);
  lt.stop.data = &lt;
  assert_int_equal(uv_thread_create(&lt.th, run_loop, &lt), 0);
  int n = 0;
  gw_select_req r = {0};
  r.mint = 0;
  r.maxt = 1000;
  r.partial_response = -1;
  gw_select_cb cb = {count_series, NULL, never_done, &n};
  assert_int_equal(gw_select_sync(lt.g, &r, &cb, err, sizeof(err)), 0);
  assert_int_equal(n, 0);
  orr_arena *a = orr_arena_new(0);
  const char **vals, **warns;
  size_t nv = 9, nw = 9;
  gw_labels_req lr = {0};
  lr.end = 1000;
  lr.partial_response = -1;
  assert_int_equal(gw_labels_sync(lt.g, &lr, a, &vals, &nv, &warns, &nw, err, sizeof(err)), 0);
  assert_int_equal(nv, 0);
  assert_int_equal(nw, 0);
  orr_arena_destroy(a);
  uv_async_send(&lt.stop);
  uv_thread_join(&lt.th);
  assert_int_equal(uv_loop_close(&lt.loop), 0);
}

static void test_bad_endpoint_flag(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *eps[] = {"127.0.0.1"};
  gw_config cfg = {0};
  cfg.loop = &loop;
  cfg.endpoints = eps;
  cfg.nendpoints = 1;
  gw *g = NULL;
  char err[128];
  assert_int_equal(gw_new(&cfg, &g, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "127.0.0.1"));
  uv_loop_close(&loop);
}

/* In-process sources: "<kind>+<spec>" addresses, their display names and
 * the URL[;labels] spec; a bad one refused by gw_new with the reason. */
static void test_source_specs(void **state) {
  (void)state;
  const char *spec;
  const gw__source_kind *k = gw__source_kind_of("prometheus+http://h:9090;region=eu", &spec);
  assert_non_null(k);
  assert_string_equal(k->kind, "prometheus");
  assert_string_equal(spec, "http://h:9090;region=eu");
  k = gw__source_kind_of("federate+http://h/federate?match[]={a=\"b\"}", &spec);
  assert_non_null(k);
  assert_string_equal(k->kind, "federate");
  assert_null(gw__source_kind_of("127.0.0.1:10901", &spec));
  assert_null(gw__source_kind_of("dns+prometheus:9090", &spec));
  assert_null(gw__source_kind_of("prometheushttp://x", &spec));
  char *name = gw__source_name("http://h:9090/federate?match[]=up;region=eu,replica=a");
  assert_string_equal(name, "http://h:9090/federate?match[]=up");
  free(name);
  /* /api/v1/stores and the endpoint labels show no password */
  name = gw__source_name("http://prom:s3cret@h:9090;region=eu");
  assert_string_equal(name, "http://prom:xxxxx@h:9090");
  free(name);

  orr_arena *a = orr_arena_new(0);
  char *url, err[256];
  labels_set ls;
  bool have;
  assert_int_equal(gw__source_spec_labels("https://h:1/p;replica=a,region=eu", a, &url, &ls, &have,
                                          err, sizeof(err)), 0);
  assert_string_equal(url, "https://h:1/p");
  assert_true(have);
  assert_int_equal(ls.n, 2);
  assert_string_equal(ls.v[0].name, "region"); /* sorted */
  assert_string_equal(ls.v[1].value, "a");
  assert_int_equal(gw__source_spec_labels("http://h:1", a, &url, &ls, &have, err, sizeof(err)), 0);
  assert_false(have);
  assert_int_equal(ls.n, 0);
  static const struct {
    const char *spec, *err;
  } bad[] = {
      {"ftp://h", "want an http:// or https:// URL, got \"ftp://h\""},
      {"http://", "URL \"http://\" has no host"},
      {"http://h;region", "external labels: want name=value[,name=value...], got \"region\""},
      {"http://h;1x=a", "external labels: want name=value[,name=value...], got \"1x=a\""},
      {"http://h;a=1,a=2", "external labels: a label name appears twice"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = 0;
    assert_int_equal(gw__source_spec_labels(bad[i].spec, a, &url, &ls, &have, err, sizeof(err)),
                     ORR_EINVAL);
    assert_string_equal(err, bad[i].err);
  }
  orr_arena_destroy(a);

  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *eps[] = {"127.0.0.1:1", "federate+localhost:9090/federate"};
  gw_config cfg = {0};
  cfg.loop = &loop;
  cfg.endpoints = eps;
  cfg.nendpoints = 2;
  gw *g = NULL;
  assert_int_equal(gw_new(&cfg, &g, err, sizeof(err)), ORR_EINVAL);
  assert_string_equal(err, "endpoint federate+localhost:9090/federate: want an http:// or "
                           "https:// URL, got \"localhost:9090/federate\"");
  uv_loop_close(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identical_replicas),
      cmocka_unit_test(test_penalty_gap),
      cmocka_unit_test(test_initial_penalty),
      cmocka_unit_test(test_counter_adjust),
      cmocka_unit_test(test_stale_markers),
      cmocka_unit_test(test_three_replicas_and_range),
      cmocka_unit_test(test_tie_break),
      cmocka_unit_test(test_labelsets_match),
      cmocka_unit_test(test_targets_pruning),
      cmocka_unit_test(test_sd_parse),
      cmocka_unit_test(test_sd_reload),
      cmocka_unit_test(test_srv_parse),
      cmocka_unit_test(test_sync_bridge),
      cmocka_unit_test(test_bad_endpoint_flag),
      cmocka_unit_test(test_source_specs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
