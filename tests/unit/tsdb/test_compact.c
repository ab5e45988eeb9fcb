/* test_compact.c: tsdb_compact — disjoint blocks copied chunk for chunk,
 * identical replicas merged 1:1, interleaved overlaps merged and re-cut to
 * 120-sample chunks, tombstones applied, an empty result, meta.json's
 * compaction section, and a custom merge function. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsdb.h"

#define T0 ((int64_t)1700006400000)
#define NSER 5

static void rm_rf(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char p[4096];
      snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
      struct stat st;
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_rf(p);
      else unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static char tmp[256];

static int setup(void **state) {
  (void)state;
  snprintf(tmp, sizeof(tmp), "/tmp/orr_test_compact_XXXXXX");
  assert_non_null(mkdtemp(tmp));
  return 0;
}
static int teardown(void **state) {
  (void)state;
  rm_rf(tmp);
  return 0;
}

static double val(int s, int64_t t) { return (double)((t / 1000) % 997) + s; }

/* A block of NSER series "m{i="<s>"}" with samples at t0, t0+step, ... < t1
 * (timestamps with (t / 1000) % skipmod == 0 left out when skipmod). */
static char *make_block(int64_t t0, int64_t t1, int64_t step, int skipmod) {
  tsdb_block_writer *w;
  char err[256];
  assert_int_equal(tsdb_block_writer_open(tmp, NULL, &w, err, sizeof(err)), 0);
  size_t cap = (size_t)((t1 - t0) / step) + 1;
  tsdb_sample *s = calloc(cap, sizeof(*s));
  for (int sr = 0; sr < NSER; sr++) {
    size_t n = 0;
    for (int64_t t = t0; t < t1; t += step) {
      if (skipmod && (t / 1000) % skipmod == 0) continue;
      s[n++] = (tsdb_sample){t, val(sr, t)};
    }
    char v[8];
    snprintf(v, sizeof(v), "%d", sr);
    labels_label l[] = {{"__name__", "m"}, {"i", v}};
    labels_set ls = {l, 2};
    assert_int_equal(tsdb_block_writer_add_samples(w, &ls, s, n), 0);
  }
  free(s);
  tsdb_ulid u;
  assert_int_equal(tsdb_block_writer_commit(w, &u, err, sizeof(err)), 0);
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, id);
  char *dir = malloc(512);
  snprintf(dir, 512, "%s/%s", tmp, id);
  return dir;
}

typedef struct got {
  size_t series, samples, chunks, max_chunk;
  bool sorted;
  int64_t first, last;
} got;

static got read_block(const char *dir) {
  tsdb_block *b;
  char err[256];
  assert_int_equal(tsdb_block_open(dir, &b, err, sizeof(err)), 0);
  orr_arena *a = orr_arena_new(0);
  tsdb_series_set *ss;
  assert_int_equal(tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss), 0);
  got g = {0};
  g.sorted = true;
  g.first = INT64_MAX;
  const tsdb_series *s;
  int rc;
  while ((rc = tsdb_series_set_next(ss, &s)) == 1) {
    g.series++;
    g.chunks += s->nchunks;
    for (size_t i = 0; i < s->nchunks; i++) {
      uint16_t n;
      assert_int_equal(tsdb_xor_num_samples(s->chunks[i].data, s->chunks[i].len, &n), 0);
      if (n > g.max_chunk) g.max_chunk = n;
    }
    tsdb_series_iter it;
    tsdb_series_iter_init(&it, s);
    int64_t prev = INT64_MIN;
    int sr = atoi(labels_get(&s->labels, "i"));
    while (tsdb_series_iter_next(&it) == 1) {
      if (it.t <= prev) g.sorted = false;
      assert_true(it.v == val(sr, it.t));
      prev = it.t;
      g.samples++;
      if (it.t < g.first) g.first = it.t;
      if (it.t > g.last) g.last = it.t;
    }
  }
  assert_int_equal(rc, 0);
  tsdb_series_set_close(ss);
  orr_arena_destroy(a);
  tsdb_block_close(b);
  return g;
}

static char *compact(const char *const *dirs, size_t n, const tsdb_compact_opts *o,
                     tsdb_compact_result *res) {
  char err[512] = "";
  int rc = tsdb_compact(tmp, dirs, n, o, res, err, sizeof(err));
  if (rc) fprintf(stderr, "compact: %s\n", err);
  assert_int_equal(rc, 0);
  if (res->empty) return NULL;
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&res->ulid, id);
  char *dir = malloc(512);
  snprintf(dir, 512, "%s/%s", tmp, id);
  assert_int_equal(tsdb_block_verify(dir, NULL, NULL, NULL), 0);
  return dir;
}

static void test_disjoint_copied(void **state) {
  (void)state;
  int64_t h2 = 7200000;
  char *a = make_block(T0, T0 + h2, 15000, 0);
  char *b = make_block(T0 + h2, T0 + 2 * h2, 15000, 0);
  const char *dirs[] = {a, b};
  tsdb_compact_result res;
  char *out = compact(dirs, 2, NULL, &res);
  assert_int_equal(res.chunks_reencoded, 0);
  assert_int_equal(res.num_series, NSER);
  assert_int_equal(res.num_samples, 2 * NSER * 480);
  got g = read_block(out);
  assert_int_equal(g.samples, 2 * NSER * 480);
  assert_true(g.sorted);
  orr_arena *ar = orr_arena_new(0);
  tsdb_meta m;
  char err[256];
  assert_int_equal(tsdb_meta_read_dir(out, ar, &m, err, sizeof(err)), 0);
  assert_int_equal(m.level, 2);
  assert_int_equal(m.nsources, 2);
  assert_int_equal(m.nparents, 2);
  assert_int_equal(m.min_time, T0);
  assert_int_equal(m.num_samples, 2 * NSER * 480);
  orr_arena_destroy(ar);
  free(a);
  free(b);
  free(out);
}

static void test_identical_merged_once(void **state) {
  (void)state;
  char *a = make_block(T0, T0 + 7200000, 15000, 0);
  char *b = make_block(T0, T0 + 7200000, 15000, 0);
  const char *dirs[] = {a, b};
  tsdb_compact_result res;
  char *out = compact(dirs, 2, NULL, &res);
  assert_int_equal(res.chunks_reencoded, 0); /* identical chunks: kept once */
  got g = read_block(out);
  assert_int_equal(g.samples, NSER * 480);
  free(a);
  free(b);
  free(out);
}

static void test_interleaved_recut(void **state) {
  (void)state;
  /* 15 s samples and 10 s samples over the same hour: union of timestamps. */
  char *a = make_block(T0, T0 + 3600000, 15000, 0);
  char *b = make_block(T0, T0 + 3600000, 10000, 0);
  const char *dirs[] = {a, b};
  tsdb_compact_result res;
  char *out = compact(dirs, 2, NULL, &res);
  /* timestamps: multiples of 10 s or 15 s in an hour: 360 + 240 - 120 */
  got g = read_block(out);
  assert_int_equal(g.samples, NSER * 480);
  assert_true(g.sorted);
  assert_int_equal(g.max_chunk, 120);
  assert_int_equal(g.chunks, NSER * 4);
  free(a);
  free(b);
  free(out);
}

static void test_tombstones(void **state) {
  (void)state;
  char *a = make_block(T0, T0 + 3600000, 15000, 0);
  tsdb_tombstones t = {0};
  /* series refs: look them up through the index */
  tsdb_block *b;
  char err[256];
  assert_int_equal(tsdb_block_open(a, &b, err, sizeof(err)), 0);
  orr_arena *ar = orr_arena_new(0);
  tsdb_postings *p;
  assert_int_equal(tsdb_index_all_postings(tsdb_block_index(b), ar, &p), 0);
  size_t k = 0;
  while (tsdb_postings_next(p)) {
    uint64_t ref = tsdb_postings_at(p);
    if (k == 0) tsdb_tombstones_add(&t, ref, (tsdb_interval){INT64_MIN, INT64_MAX});
    else tsdb_tombstones_add(&t, ref, (tsdb_interval){T0, T0 + 60000 - 1}); /* first 4 */
    k++;
  }
  orr_arena_destroy(ar);
  tsdb_block_close(b);
  assert_int_equal(tsdb_tombstones_write_dir(a, &t), 0);
  tsdb_tombstones_free(&t);
  const char *dirs[] = {a};
  tsdb_compact_result res;
  char *out = compact(dirs, 1, NULL, &res);
  got g = read_block(out);
  assert_int_equal(g.series, NSER - 1);
  assert_int_equal(g.samples, (NSER - 1) * (240 - 4));
  assert_int_equal(g.first, T0 + 60000);
  free(a);
  free(out);
}

static void test_empty(void **state) {
  (void)state;
  char *a = make_block(T0, T0 + 600000, 15000, 0);
  tsdb_tombstones t = {0};
  for (uint64_t ref = 0; ref < 4096; ref++)
    tsdb_tombstones_add(&t, ref, (tsdb_interval){INT64_MIN, INT64_MAX});
  assert_int_equal(tsdb_tombstones_write_dir(a, &t), 0);
  tsdb_tombstones_free(&t);
  const char *dirs[] = {a};
  tsdb_compact_result res;
  assert_null(compact(dirs, 1, NULL, &res));
  assert_true(res.empty);
  free(a);
}

static int calls;
static int first_only(void *arg, const tsdb_sample *const *in, const size_t *nin, size_t n,
                      tsdb_sample **out, size_t *nout) {
  (void)arg;
  (void)n;
  calls++;
  /* keep the run listed last (Prometheus passes the earliest chunk last) */
  *out = malloc(nin[n - 1] * sizeof(**out) + 1);
  memcpy(*out, in[n - 1], nin[n - 1] * sizeof(**out));
  *nout = nin[n - 1];
  return 0;
}

static void test_custom_merge(void **state) {
  (void)state;
  char *a = make_block(T0, T0 + 3600000, 15000, 0);
  char *b = make_block(T0, T0 + 3600000, 10000, 0);
  const char *dirs[] = {a, b};
  tsdb_compact_result res;
  tsdb_compact_opts o = {.merge = first_only};
  calls = 0;
  char *out = compact(dirs, 2, &o, &res);
  assert_true(calls > 0);
  got g = read_block(out);
  assert_true(g.samples < NSER * 480);
  free(a);
  free(b);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_disjoint_copied, setup, teardown),
      cmocka_unit_test_setup_teardown(test_identical_merged_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interleaved_recut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tombstones, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(test_custom_merge, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
