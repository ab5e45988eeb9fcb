/* test_plan.c: the compaction planner (Prometheus 2.42's plan: overlapping
 * blocks first, then aligned ranges leaving the newest block alone, then
 * tombstones) and group keys (replica labels dropped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "compact_int.h"

#define H ((int64_t)3600 * 1000)
static const int64_t RANGES[] = {2 * H, 6 * H, 24 * H};

static tsdb_meta mk(int64_t mint, int64_t maxt) {
  tsdb_meta m;
  memset(&m, 0, sizeof(m));
  m.min_time = mint;
  m.max_time = maxt;
  m.num_series = 100;
  return m;
}

/* Plans over |n| metas and returns the chosen indexes sorted as given. */
static size_t plan(tsdb_meta *ms, size_t n, const bool *ex, size_t *out) {
  const tsdb_meta *p[16];
  for (size_t i = 0; i < n; i++) p[i] = &ms[i];
  size_t k;
  compact__plan(p, ex, n, RANGES, 3, out, &k);
  return k;
}

static void test_newest_left_alone(void **state) {
  (void)state;
  size_t out[16];
  /* Three 2h blocks in [0, 6h): the newest is left alone; the other two
   * neither fill the window nor end before the newest remaining one
   * starts -> nothing yet. */
  tsdb_meta ms[] = {mk(0, 2 * H), mk(2 * H, 4 * H), mk(4 * H, 6 * H)};
  assert_int_equal(plan(ms, 3, NULL, out), 0);
  /* With a later block in the next window, [0,2h) and [2h,4h) end before
   * the newest remaining block ([6h,8h)) starts -> compacted. */
  tsdb_meta ms3[] = {mk(0, 2 * H), mk(2 * H, 4 * H), mk(6 * H, 8 * H), mk(8 * H, 10 * H)};
  assert_int_equal(plan(ms3, 4, NULL, out), 2);
  assert_int_equal(out[0], 0);
  assert_int_equal(out[1], 1);
  /* Four: the three filling [0, 6h) go together. */
  tsdb_meta ms4[] = {mk(6 * H, 8 * H), mk(0, 2 * H), mk(2 * H, 4 * H), mk(4 * H, 6 * H)};
  assert_int_equal(plan(ms4, 4, NULL, out), 3);
  assert_int_equal(out[0], 1);
  assert_int_equal(out[1], 2);
  assert_int_equal(out[2], 3);
  /* One block alone: nothing. Two: the newest is alone, nothing. */
  assert_int_equal(plan(ms, 1, NULL, out), 0);
  assert_int_equal(plan(ms, 2, NULL, out), 0);
}

static void test_window_not_filled(void **state) {
  (void)state;
  size_t out[16];
  /* Blocks ending at 4h-1 whose newest remaining starts at 2h: the window
   * [0, 6h) is neither full nor ended before it -> nothing (Prometheus's
   * highTime is the newest remaining block's minTime). */
  tsdb_meta ms[] = {mk(0, 2 * H - 1), mk(2 * H, 4 * H - 1), mk(4 * H, 6 * H - 1)};
  assert_int_equal(plan(ms, 3, NULL, out), 0);
}

static void test_overlap_first(void **state) {
  (void)state;
  size_t out[16];
  tsdb_meta ms[] = {mk(0, 2 * H), mk(2 * H, 4 * H), mk(3 * H, 5 * H), mk(10 * H, 12 * H),
                    mk(12 * H, 14 * H)};
  assert_int_equal(plan(ms, 5, NULL, out), 2);
  assert_int_equal(out[0], 1);
  assert_int_equal(out[1], 2);
  const tsdb_meta *p[] = {&ms[0], &ms[1], &ms[2]};
  size_t a, b;
  assert_true(compact__overlap(p, 3, &a, &b));
  assert_int_equal(a, 1);
  assert_int_equal(b, 2);
  assert_false(compact__overlap(p, 2, &a, &b));
}

static void test_excluded_and_tombstones(void **state) {
  (void)state;
  size_t out[16];
  tsdb_meta ms[] = {mk(6 * H, 8 * H), mk(0, 2 * H), mk(2 * H, 4 * H), mk(4 * H, 6 * H)};
  bool ex[] = {false, false, true, false};
  /* The no-compact block [2h,4h) splits the full window [0,6h): [0,2h) and
   * [4h,6h) are alone on their sides, so nothing is compacted (before,
   * the two were compacted into one block across the gap). */
  assert_int_equal(plan(ms, 4, ex, out), 0);
  /* A 24h block with > 5% tombstones is rewritten alone. */
  tsdb_meta big[] = {mk(0, 24 * H), mk(24 * H, 26 * H)};
  big[0].num_tombstones = 10;
  assert_int_equal(plan(big, 2, NULL, out), 1);
  assert_int_equal(out[0], 0);
  big[0].num_tombstones = 5;
  assert_int_equal(plan(big, 2, NULL, out), 0);
}

/* Thanos's planner: a no-compact-marked block splits its window; the
 * blocks on either side are compacted among themselves, never across it,
 * and the windows stay those the unmarked bucket would have. */
static void test_no_compact_splits_window(void **state) {
  (void)state;
  size_t out[16];
  /* Six 1h blocks filling [0,6h) and a newer one; [3h,4h) marked: first
   * [0,3h) (three blocks), and with those replaced, [4h,6h). */
  tsdb_meta ms[] = {mk(0, H),         mk(H, 2 * H),     mk(2 * H, 3 * H), mk(3 * H, 4 * H),
                    mk(4 * H, 5 * H), mk(5 * H, 6 * H), mk(6 * H, 7 * H)};
  bool ex[] = {false, false, false, true, false, false, false};
  assert_int_equal(plan(ms, 7, ex, out), 3);
  assert_int_equal(out[0], 0);
  assert_int_equal(out[1], 1);
  assert_int_equal(out[2], 2);
  tsdb_meta after[] = {mk(0, 3 * H), mk(3 * H, 4 * H), mk(4 * H, 5 * H), mk(5 * H, 6 * H),
                       mk(6 * H, 7 * H)};
  bool ex2[] = {false, true, false, false, false};
  assert_int_equal(plan(after, 5, ex2, out), 2);
  assert_int_equal(out[0], 2);
  assert_int_equal(out[1], 3);
  /* Then the window holds [0,3h) | marked | [4h,6h): no run of two left. */
  tsdb_meta done[] = {mk(0, 3 * H), mk(3 * H, 4 * H), mk(4 * H, 6 * H), mk(6 * H, 7 * H)};
  bool ex3[] = {false, true, false, false};
  assert_int_equal(plan(done, 4, ex3, out), 0);
  /* The marked block still counts for the window: [0,1h) [1h,2h) and a
   * marked [2h,6h) span the whole 6h window, so the two unmarked ones are
   * compacted now (without it they would wait: not full, and not ended
   * before the newest remaining block). */
  tsdb_meta span[] = {mk(0, H), mk(H, 2 * H), mk(2 * H, 6 * H), mk(6 * H, 7 * H)};
  bool ex4[] = {false, false, true, false};
  assert_int_equal(plan(span, 4, ex4, out), 2);
  assert_int_equal(out[0], 0);
  assert_int_equal(out[1], 1);
  assert_int_equal(plan(span, 4, NULL, out), 3);
  /* A marked newest block is the one left alone (the unmarked [6h,7h)
   * is not): [0,1h) and [1h,2h) end before [6h,7h) starts -> compacted;
   * with [6h,7h) marked instead, it still counts as the newest remaining. */
  tsdb_meta newest[] = {mk(0, H), mk(H, 2 * H), mk(6 * H, 7 * H), mk(7 * H, 8 * H)};
  bool ex5[] = {false, false, false, true};
  assert_int_equal(plan(newest, 4, ex5, out), 2);
  bool ex5b[] = {false, false, true, false};
  assert_int_equal(plan(newest, 4, ex5b, out), 2);
  assert_int_equal(out[0], 0);
  assert_int_equal(out[1], 1);
  /* Overlaps are looked for among unmarked blocks only. */
  tsdb_meta ov[] = {mk(0, 2 * H), mk(H, 3 * H), mk(10 * H, 12 * H)};
  bool ex6[] = {false, true, false};
  assert_int_equal(plan(ov, 3, ex6, out), 0);
  assert_int_equal(plan(ov, 3, NULL, out), 2);
}

static void test_group_key(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  labels_label l[] = {{"cluster", "eu"}, {"replica", "r1"}};
  tsdb_meta m = mk(0, 1);
  m.has_thanos = true;
  m.thanos.labels = (labels_set){l, 2};
  m.thanos.downsample_resolution = 300000;
  labels_set out;
  const char *drop[] = {"replica"};
  char *k = compact__group_key(a, &m, drop, 1, &out);
  assert_string_equal(k, "300000@{cluster=\"eu\"}");
  assert_int_equal(out.n, 1);
  k = compact__group_key(a, &m, NULL, 0, &out);
  assert_string_equal(k, "300000@{cluster=\"eu\", replica=\"r1\"}");
  orr_arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_newest_left_alone), cmocka_unit_test(test_window_not_filled),
      cmocka_unit_test(test_overlap_first), cmocka_unit_test(test_excluded_and_tombstones),
      cmocka_unit_test(test_no_compact_splits_window),
      cmocka_unit_test(test_group_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
