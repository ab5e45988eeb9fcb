/* test_bucket.c: block listing and concurrent meta.json fetch (missing and
 * corrupt metas reported per block), marker JSON as Thanos writes it and
 * read back, and each filter (time, consistency delay, deletion mark delay,
 * sources-subset de-duplication). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bucket.h"

static char g_dir[256];
static objstore_bucket *g_b;

static int setup(void **state) {
  snprintf(g_dir, sizeof g_dir, "/tmp/orr_test_bucket.XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  char yaml[512], err[512] = "";
  snprintf(yaml, sizeof yaml, "type: FILESYSTEM\nconfig:\n  directory: %s\n", g_dir);
  objstore_config cfg;
  assert_int_equal(objstore_config_parse(yaml, strlen(yaml), &cfg, err, sizeof err), 0);
  assert_int_equal(objstore_open(&cfg, &g_b, err, sizeof err), 0);
  objstore_config_free(&cfg);
  return 0;
}

static int teardown(void **state) {
  objstore_close(g_b);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Puts a meta.json for a block made at |ms| with |srcs| sources (indices
 * into |ids|) and returns its ULID. */
static tsdb_ulid put_block(int64_t ms, int64_t mint, int64_t maxt, const tsdb_ulid *srcs,
                           size_t nsrcs, int64_t res, const char *source) {
  tsdb_meta m;
  memset(&m, 0, sizeof m);
  assert_int_equal(tsdb_ulid_new(ms, &m.ulid), 0);
  m.min_time = mint;
  m.max_time = maxt;
  m.version = 1;
  m.level = 1;
  tsdb_ulid self = m.ulid;
  m.sources = nsrcs ? (tsdb_ulid *)srcs : &self;
  m.nsources = nsrcs ? nsrcs : 1;
  m.has_thanos = true;
  m.thanos.version = 1;
  m.thanos.downsample_resolution = res;
  m.thanos.source = source;
  orr_buf b = {0};
  assert_int_equal(tsdb_meta_encode(&m, &b), 0);
  char id[TSDB_ULID_STRLEN + 1], key[64], err[512] = "";
  tsdb_ulid_format(&m.ulid, id);
  snprintf(key, sizeof key, "%s/meta.json", id);
  assert_int_equal(objstore_put(g_b, key, b.data, b.len, err, sizeof err), 0);
  orr_buf_free(&b);
  return m.ulid;
}

static bucket_block_meta *find(bucket_block_meta *v, size_t n, const tsdb_ulid *u) {
  for (size_t i = 0; i < n; i++)
    if (tsdb_ulid_cmp(&v[i].ulid, u) == 0) return &v[i];
  fail_msg("block not listed");
  return NULL;
}

static void test_list_fetch_filter(void **state) {
  int64_t now = orr_now_ms(), h = 3600 * 1000;
  char err[512] = "";
  tsdb_ulid a = put_block(now - 10 * h, 0, 2 * h, NULL, 0, 0, "sidecar");
  tsdb_ulid b = put_block(now - 9 * h, 2 * h, 4 * h, NULL, 0, 0, "sidecar");
  tsdb_ulid ab_src[2] = {a, b};
  tsdb_ulid ab = put_block(now - 8 * h, 0, 4 * h, ab_src, 2, 0, "compactor");
  tsdb_ulid ab5m = put_block(now - 8 * h, 0, 4 * h, ab_src, 2, 300000, "compactor");
  tsdb_ulid late = put_block(now - 60 * 1000, 100 * h, 102 * h, NULL, 0, 0, "sidecar");
  tsdb_ulid old = put_block(now - 20 * h, -100 * h, -98 * h, NULL, 0, 0, "sidecar");
  tsdb_ulid marked = put_block(now - 7 * h, 4 * h, 6 * h, NULL, 0, 0, "sidecar");
  tsdb_ulid fresh_mark = put_block(now - 7 * h, 6 * h, 8 * h, NULL, 0, 0, "sidecar");
  /* A directory without meta.json, one with a broken one, and a non-block. */
  tsdb_ulid partial, broken;
  assert_int_equal(tsdb_ulid_new(now - 5 * h, &partial), 0);
  assert_int_equal(tsdb_ulid_new(now - 5 * h, &broken), 0);
  char id[TSDB_ULID_STRLEN + 1], key[80];
  tsdb_ulid_format(&partial, id);
  snprintf(key, sizeof key, "%s/index", id);
  assert_int_equal(objstore_put(g_b, key, "x", 1, err, sizeof err), 0);
  tsdb_ulid_format(&broken, id);
  snprintf(key, sizeof key, "%s/meta.json", id);
  assert_int_equal(objstore_put(g_b, key, "{nope", 5, err, sizeof err), 0);
  assert_int_equal(objstore_put(g_b, "debug/metas/x.json", "{}", 2, err, sizeof err), 0);

  bucket_deletion_mark dm = {marked, (now - 48 * h) / 1000, 1, "test"};
  assert_int_equal(bucket_deletion_mark_write(g_b, &dm, err, sizeof err), 0);
  bucket_deletion_mark dm2 = {fresh_mark, (now - h) / 1000, 1, NULL};
  assert_int_equal(bucket_deletion_mark_write(g_b, &dm2, err, sizeof err), 0);

  orr_arena *ar = orr_arena_new(0);
  tsdb_ulid *ids;
  size_t n;
  assert_int_equal(bucket_list_blocks(g_b, ar, &ids, &n, err, sizeof err), 0);
  assert_int_equal(n, 10);
  for (size_t i = 1; i < n; i++) assert_true(tsdb_ulid_cmp(&ids[i - 1], &ids[i]) < 0);
  bucket_block_meta *metas;
  assert_int_equal(bucket_fetch_metas(g_b, ids, n, 4, ar, &metas), 0);
  assert_int_equal(find(metas, n, &partial)->status, BUCKET_META_MISSING);
  assert_int_equal(find(metas, n, &broken)->status, BUCKET_META_CORRUPT);
  assert_int_equal(find(metas, n, &ab)->status, BUCKET_META_OK);
  assert_int_equal(find(metas, n, &ab)->meta.nsources, 2);

  bucket_filter_opts o = {.min_time = -50 * h, .max_time = INT64_MAX, .consistency_delay_ms = 30 * 60 * 1000,
                          .ignore_deletion_marks_delay_ms = 24 * h, .dedup = true, .now_ms = now};
  assert_int_equal(bucket_filter(g_b, metas, n, &o, ar), 0);
  assert_string_equal(find(metas, n, &old)->filtered, "time");
  assert_string_equal(find(metas, n, &late)->filtered, "consistency-delay");
  assert_string_equal(find(metas, n, &marked)->filtered, "deletion-mark");
  assert_null(find(metas, n, &fresh_mark)->filtered);
  assert_string_equal(find(metas, n, &a)->filtered, "duplicate");
  assert_string_equal(find(metas, n, &b)->filtered, "duplicate");
  assert_null(find(metas, n, &ab)->filtered);
  assert_null(find(metas, n, &ab5m)->filtered); /* other resolution */
  orr_arena_destroy(ar);
}

static void test_marks_json(void **state) {
  tsdb_ulid u;
  assert_int_equal(tsdb_ulid_parse("01GZZZZZZZZZZZZZZZZZZZZZZZ", 26, &u), 0);
  bucket_deletion_mark dm = {u, 1700000000, 1, NULL};
  orr_buf b = {0};
  assert_int_equal(bucket_deletion_mark_encode(&dm, &b), 0);
  assert_string_equal(b.data,
                      "{\"id\":\"01GZZZZZZZZZZZZZZZZZZZZZZZ\",\"deletion_time\":1700000000,\"version\":1}");
  orr_buf_reset(&b);
  bucket_no_compact_mark nc = {u, 1, "a<b", 1700000001, "manual"};
  assert_int_equal(bucket_no_compact_mark_encode(&nc, &b), 0);
  assert_string_equal(b.data, "{\"id\":\"01GZZZZZZZZZZZZZZZZZZZZZZZ\",\"version\":1,\"details\":"
                              "\"a\\u003cb\",\"no_compact_time\":1700000001,\"reason\":\"manual\"}");
  char err[512] = "";
  assert_int_equal(bucket_no_compact_mark_write(g_b, &nc, err, sizeof err), 0);
  orr_arena *a = orr_arena_new(0);
  bucket_no_compact_mark back;
  assert_int_equal(bucket_no_compact_mark_read(g_b, &u, a, &back, err, sizeof err), 0);
  assert_string_equal(back.details, "a<b");
  assert_string_equal(back.reason, "manual");
  assert_int_equal(back.no_compact_time, 1700000001);
  bucket_deletion_mark dback;
  assert_int_equal(bucket_deletion_mark_read(g_b, &u, a, &dback, err, sizeof err), ORR_ENOTFOUND);
  const char *bad[] = {"{", "[]", "{\"id\":\"x\",\"version\":1}",
                       "{\"id\":\"01GZZZZZZZZZZZZZZZZZZZZZZZ\",\"version\":2}",
                       "{\"id\":\"01GZZZZZZZZZZZZZZZZZZZZZZZ\",\"version\":1,\"deletion_time\":\"x\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(bucket_deletion_mark_parse(bad[i], strlen(bad[i]), a, &dback, err, sizeof err),
                     ORR_ECORRUPT);
  orr_arena_destroy(a);
  orr_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_list_fetch_filter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_marks_json, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
