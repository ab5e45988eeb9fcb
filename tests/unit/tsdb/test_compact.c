/* test_compact.c: tsdb_compact — disjoint blocks copied chunk for chunk,
 * identical replicas merged 1:1, interleaved overlaps merged and re-cut to
 * 120-sample chunks, tombstones applied, an empty result, meta.json's
 * compaction section, a custom merge function, and downsampling math
 * (windows, the five aggregates, counter resets, 5m -> 1h, chunk sizes). */
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

static char tmp[256];

static int setup(void **state) {
  (void)state;
  snprintf(tmp, sizeof(tmp), "/tmp/orr_test_compact_XXXXXX");
  assert_non_null(mkdtemp(tmp));
  return 0;
}
static int teardown(void **state) {
  (void)state;
  orr_remove_tree(tmp);
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

/* ---------------------------------------------------------------- downsampling */

static size_t read_aggr(const tsdb_chunk *c, tsdb_aggr_type t, tsdb_sample *out, size_t cap) {
  tsdb_xor_iter it;
  assert_int_equal(tsdb_aggr_iter_init(&it, c->data, c->len, t), 0);
  size_t n = 0;
  while (tsdb_xor_iter_next(&it) == 1) {
    assert_true(n < cap);
    out[n++] = (tsdb_sample){it.t, it.v};
  }
  return n;
}

static void test_downsample_windows(void **state) {
  (void)state;
  assert_int_equal(tsdb_downsample_window(0, 300000), 299999);
  assert_int_equal(tsdb_downsample_window(299999, 300000), 299999);
  assert_int_equal(tsdb_downsample_window(300000, 300000), 599999);
  /* 12 samples a minute apart: windows [0,5m) [5m,10m) [10m,15m);
   * values 1..12 with a counter reset at the 8th (value 1). */
  tsdb_sample s[12];
  double v[12] = {1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5};
  for (int i = 0; i < 12; i++) s[i] = (tsdb_sample){(int64_t)i * 60000, v[i]};
  tsdb_chunk *c;
  size_t n;
  assert_int_equal(tsdb_downsample_raw(s, 12, 300000, &c, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(c[0].enc, TSDB_ENC_AGGR);
  tsdb_sample o[16];
  assert_int_equal(read_aggr(&c[0], TSDB_AGGR_COUNT, o, 16), 3);
  assert_int_equal(o[0].t, 299999);
  assert_true(o[0].v == 5 && o[1].v == 5 && o[2].v == 2);
  /* the last window ends at the last sample (capped) */
  assert_int_equal(o[2].t, 11 * 60000);
  assert_int_equal(read_aggr(&c[0], TSDB_AGGR_SUM, o, 16), 3);
  assert_true(o[0].v == 15 && o[1].v == 6 + 7 + 1 + 2 + 3 && o[2].v == 9);
  assert_int_equal(read_aggr(&c[0], TSDB_AGGR_MIN, o, 16), 3);
  assert_true(o[0].v == 1 && o[1].v == 1 && o[2].v == 4);
  assert_int_equal(read_aggr(&c[0], TSDB_AGGR_MAX, o, 16), 3);
  assert_true(o[0].v == 5 && o[1].v == 7 && o[2].v == 5);
  /* counter: first raw sample, running totals at window ends (7 then a
   * reset adding 1, 2, 3: 7 + 3 = 10 at 10m-1; 10 + 2 = 12 at the end),
   * then the last raw value repeated at the last window's timestamp. */
  assert_int_equal(read_aggr(&c[0], TSDB_AGGR_COUNTER, o, 16), 5);
  assert_true(o[0].t == 0 && o[0].v == 1);
  assert_true(o[1].t == 299999 && o[1].v == 5);
  assert_true(o[2].t == 599999 && o[2].v == 10);
  assert_true(o[3].t == 11 * 60000 && o[3].v == 12);
  assert_true(o[4].t == 11 * 60000 && o[4].v == 5);
  assert_int_equal(c[0].mint, 299999);
  assert_int_equal(c[0].maxt, 11 * 60000);

  /* 5m -> 1h over those aggregates: one window; count sums the counts. */
  tsdb_chunk *h;
  size_t nh;
  assert_int_equal(tsdb_downsample_aggr(c, n, 3600000, &h, &nh), 0);
  assert_int_equal(nh, 1);
  assert_int_equal(read_aggr(&h[0], TSDB_AGGR_COUNT, o, 16), 1);
  assert_true(o[0].v == 12);
  assert_int_equal(read_aggr(&h[0], TSDB_AGGR_SUM, o, 16), 1);
  assert_true(o[0].v == 43);
  assert_int_equal(read_aggr(&h[0], TSDB_AGGR_MIN, o, 16), 1);
  assert_true(o[0].v == 1);
  assert_int_equal(read_aggr(&h[0], TSDB_AGGR_MAX, o, 16), 1);
  assert_true(o[0].v == 7);
  /* counter: first raw 1; the monotonic total (1, 5, 10, 12) has max 12;
   * then the last raw value 5 */
  size_t k = read_aggr(&h[0], TSDB_AGGR_COUNTER, o, 16);
  assert_int_equal(k, 3);
  assert_true(o[0].v == 1 && o[1].v == 12 && o[2].v == 5);
  tsdb_chunks_free(h, nh);
  tsdb_chunks_free(c, n);
}

static void test_downsample_chunks_and_stale(void **state) {
  (void)state;
  /* 48h of 15 s samples: 576 windows of 5m -> chunks of at most 140. */
  size_t n = 48 * 240;
  tsdb_sample *s = calloc(n, sizeof(*s));
  for (size_t i = 0; i < n; i++) s[i] = (tsdb_sample){(int64_t)i * 15000, (double)i};
  uint64_t stale = 0x7ff0000000000002ull;
  memcpy(&s[100].v, &stale, sizeof(double));
  tsdb_chunk *c;
  size_t nc;
  assert_int_equal(tsdb_downsample_raw(s, n, 300000, &c, &nc), 0);
  size_t windows = 0, counted = 0;
  tsdb_sample o[200];
  for (size_t i = 0; i < nc; i++) {
    size_t k = read_aggr(&c[i], TSDB_AGGR_COUNT, o, 200);
    assert_true(k <= TSDB_DOWNSAMPLE_CHUNK_SAMPLES);
    for (size_t j = 0; j < k; j++) counted += (size_t)o[j].v;
    windows += k;
    if (i > 0) assert_true(c[i].mint > c[i - 1].maxt);
  }
  assert_int_equal(windows, 576);
  assert_int_equal(counted, n - 1); /* the stale marker is not counted */
  tsdb_chunks_free(c, nc);
  free(s);
}

/* A block of one series "m" holding the 5m aggregates of |s| (|n| raw
 * samples). */
static char *make_aggr_block(const tsdb_sample *s, size_t n) {
  tsdb_chunk *c;
  size_t nc;
  assert_int_equal(tsdb_downsample_raw(s, n, 300000, &c, &nc), 0);
  tsdb_block_writer *w;
  char err[256];
  assert_int_equal(tsdb_block_writer_open(tmp, NULL, &w, err, sizeof(err)), 0);
  labels_label l[] = {{"__name__", "m"}};
  labels_set ls = {l, 1};
  assert_int_equal(tsdb_block_writer_add_chunks(w, &ls, c, nc), 0);
  tsdb_chunks_free(c, nc);
  tsdb_ulid u;
  assert_int_equal(tsdb_block_writer_commit(w, &u, err, sizeof(err)), 0);
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, id);
  char *dir = malloc(512);
  snprintf(dir, 512, "%s/%s", tmp, id);
  return dir;
}

/* Aggregate |t| of every chunk of the one series in |dir| into |o|
 * (strictly increasing timestamps: the counter's repeated last value of
 * each chunk is folded); returns how many. */
static size_t read_aggr_block(const char *dir, tsdb_aggr_type t, tsdb_sample *o, size_t cap) {
  tsdb_block *b;
  char err[256];
  assert_int_equal(tsdb_block_open(dir, &b, err, sizeof(err)), 0);
  orr_arena *a = orr_arena_new(0);
  tsdb_series_set *ss;
  assert_int_equal(tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss), 0);
  const tsdb_series *s;
  size_t n = 0, series = 0;
  while (tsdb_series_set_next(ss, &s) == 1) {
    series++;
    for (size_t i = 0; i < s->nchunks; i++) {
      assert_int_equal(s->chunks[i].enc, TSDB_ENC_AGGR);
      if (i > 0) assert_true(s->chunks[i].mint > s->chunks[i - 1].maxt);
      tsdb_xor_iter it;
      assert_int_equal(tsdb_aggr_iter_init(&it, s->chunks[i].data, s->chunks[i].len, t), 0);
      while (tsdb_xor_iter_next(&it) == 1) {
        if (n > 0 && it.t <= o[n - 1].t) continue;
        assert_true(n < cap);
        o[n++] = (tsdb_sample){it.t, it.v};
      }
    }
  }
  assert_int_equal(series, 1);
  tsdb_series_set_close(ss);
  orr_arena_destroy(a);
  tsdb_block_close(b);
  return n;
}

/* Two replicas' 5m blocks over the same 6h (one with an hour missing)
 * compacted vertically: every window once, counts and sums those of the
 * raw data (an overlapping window is never added up), whichever replica is
 * listed first; the counter never goes down. */
static void test_overlapping_aggregates(void **state) {
  (void)state;
  size_t n = 6 * 240, nb = 0;
  tsdb_sample *ra = calloc(n, sizeof(*ra)), *rb = calloc(n, sizeof(*rb));
  double rawsum = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t t = T0 + (int64_t)i * 15000;
    ra[i] = (tsdb_sample){t, (double)(i * 3)}; /* a counter */
    rawsum += ra[i].v;
    if (t < T0 + 2 * 3600000 || t >= T0 + 3 * 3600000) rb[nb++] = ra[i];
  }
  char *a = make_aggr_block(ra, n), *b = make_aggr_block(rb, nb);
  tsdb_sample o[200];
  for (int order = 0; order < 2; order++) {
    const char *dirs[2] = {order ? b : a, order ? a : b};
    tsdb_compact_result res;
    char *out = compact(dirs, 2, NULL, &res);
    assert_true(res.chunks_reencoded > 0);
    size_t k = read_aggr_block(out, TSDB_AGGR_COUNT, o, 200);
    assert_int_equal(k, 72); /* 6h of 5m windows, each once */
    double cnt = 0;
    for (size_t i = 0; i < k; i++) cnt += o[i].v;
    assert_true(cnt == (double)n);
    k = read_aggr_block(out, TSDB_AGGR_SUM, o, 200);
    double sum = 0;
    for (size_t i = 0; i < k; i++) sum += o[i].v;
    assert_true(sum == rawsum);
    k = read_aggr_block(out, TSDB_AGGR_COUNTER, o, 200);
    assert_true(k >= 72);
    for (size_t i = 1; i < k; i++) assert_true(o[i].v >= o[i - 1].v);
    assert_true(o[k - 1].v == ra[n - 1].v);
    free(out);
  }
  free(a);
  free(b);
  free(ra);
  free(rb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_disjoint_copied, setup, teardown),
      cmocka_unit_test_setup_teardown(test_identical_merged_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interleaved_recut, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tombstones, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(test_custom_merge, setup, teardown),
      cmocka_unit_test(test_downsample_windows),
      cmocka_unit_test(test_downsample_chunks_and_stale),
      cmocka_unit_test_setup_teardown(test_overlapping_aggregates, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
