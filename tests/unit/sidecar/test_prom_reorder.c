/* test_prom_reorder.c: lib/prom/reorder.c — series sorted by Prometheus's
 * labels come out sorted by their labels with external labels added
 * (StoreAPI's order), holding only the prefix runs that can swap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reorder.h"
#include "storeapi.h"

typedef struct out {
  orr_arena *a;
  labels_set *v;
  size_t *idx;
  size_t n, cap;
} out;

static int collect(void *arg, const labels_set *final, const void *msg, size_t len) {
  out *o = arg;
  assert_int_equal(len, sizeof(size_t));
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 64;
    o->v = realloc(o->v, o->cap * sizeof(*o->v));
    o->idx = realloc(o->idx, o->cap * sizeof(*o->idx));
    assert_non_null(o->v);
    assert_non_null(o->idx);
  }
  assert_int_equal(labels_copy(o->a, final, &o->v[o->n]), 0);
  memcpy(&o->idx[o->n], msg, sizeof(size_t));
  o->n++;
  return 0;
}

/* "n1=v1,n2=v2" (names sorted) into |a|. */
static labels_set parse(orr_arena *a, const char *s) {
  labels_set ls = {0};
  ls.v = orr_arena_calloc(a, 16, sizeof(labels_label));
  char *cp = orr_arena_strdup(a, s), *save = NULL;
  for (char *t = strtok_r(cp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(t, '=');
    *eq = 0;
    ls.v[ls.n++] = (labels_label){t, eq + 1};
  }
  assert_int_equal(labels_sort(&ls), 0);
  return ls;
}

static int cmp_sets(const void *x, const void *y) { return labels_cmp(x, y); }

/* Feeds |in| (sorted here by their own labels) with |ext|; checks the output
 * is strictly sorted by final labels and has each input once. Returns the
 * most series held at once. */
static size_t run(labels_set *in, size_t n, const labels_set *ext, out *o) {
  qsort(in, n, sizeof(*in), cmp_sets);
  prom_reorder r;
  prom_reorder_init(&r, ext, collect, o);
  orr_arena *t = orr_arena_new(0);
  for (size_t i = 0; i < n; i++) {
    labels_set fin;
    assert_int_equal(storeapi_labels_extend(&in[i], ext, NULL, 0, t, &fin), 0);
    assert_int_equal(prom_reorder_add(&r, &in[i], &fin, &i, sizeof(i)), 0);
    orr_arena_reset(t);
  }
  assert_int_equal(prom_reorder_flush(&r), 0);
  size_t held = r.max_held;
  prom_reorder_free(&r);
  orr_arena_destroy(t);
  assert_int_equal(o->n, n);
  char *seen = calloc(n ? n : 1, 1);
  for (size_t i = 0; i < o->n; i++) {
    assert_true(o->idx[i] < n);
    assert_false(seen[o->idx[i]]);
    seen[o->idx[i]] = 1;
    if (i) assert_true(labels_cmp(&o->v[i - 1], &o->v[i]) < 0);
  }
  free(seen);
  return held;
}

static void out_free(out *o) {
  free(o->v);
  free(o->idx);
  orr_arena_destroy(o->a);
  memset(o, 0, sizeof(*o));
}

static void test_flip(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  out o = {.a = orr_arena_new(0)};
  labels_set ext = parse(a, "region=eu");
  labels_set in[] = {
      parse(a, "__name__=x,job=j"),
      parse(a, "__name__=x,job=j,quantile=0.5"),
      parse(a, "__name__=x,job=j,quantile=0.9"),
      parse(a, "__name__=y,job=j"),
  };
  run(in, 4, &ext, &o);
  /* B={x,job} sorted before A={x,job,quantile}; with region it follows them */
  assert_string_equal(labels_get(&o.v[0], "quantile"), "0.5");
  assert_string_equal(labels_get(&o.v[1], "quantile"), "0.9");
  assert_null(labels_get(&o.v[2], "quantile"));
  assert_string_equal(labels_get(&o.v[2], "__name__"), "x");
  assert_string_equal(labels_get(&o.v[3], "__name__"), "y");
  out_free(&o);
  orr_arena_destroy(a);
}

/* A run longer than PROM_REORDER_MAX behind one held prefix, and a chain of
 * nested prefixes: what is held stays the chain, not the run. */
static void test_long_run(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  out o = {.a = orr_arena_new(0)};
  labels_set ext = parse(a, "region=eu,zone=z1");
  size_t n = PROM_REORDER_MAX + 1000, k = 0;
  labels_set *in = calloc(n + 8, sizeof(*in));
  char buf[128];
  in[k++] = parse(a, "__name__=x,job=j");
  for (size_t i = 0; i + 1 < n; i++) {
    snprintf(buf, sizeof buf, "__name__=x,job=j,quantile=%06zu", i);
    in[k++] = parse(a, buf);
  }
  in[k++] = parse(a, "__name__=y");
  in[k++] = parse(a, "__name__=y,a=1");
  in[k++] = parse(a, "__name__=y,a=1,b=1");
  in[k++] = parse(a, "__name__=y,a=1,b=1,c=1");
  in[k++] = parse(a, "__name__=y,a=1,b=1,c=1,s=2");
  in[k++] = parse(a, "__name__=y,a=1,b=2");
  size_t held = run(in, k, &ext, &o);
  assert_true(held <= 6);
  free(in);
  out_free(&o);
  orr_arena_destroy(a);
}

/* Series whose last label sorts after every external name stream unheld;
 * others are held one series at most and keep their order. */
static void test_no_flip(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  out o = {.a = orr_arena_new(0)};
  labels_set ext = parse(a, "cluster=c");
  labels_set in[] = {
      parse(a, "__name__=x,instance=i,job=j"),
      parse(a, "__name__=x,instance=i,job=k"),
      parse(a, "__name__=x,instance=i,job=k,quantile=1"),
      parse(a, "__name__=y,instance=i,job=j"),
  };
  assert_int_equal(run(in, 4, &ext, &o), 0);
  out_free(&o);
  o.a = orr_arena_new(0);
  labels_set ext2 = parse(a, "region=eu");
  labels_set in2[] = {
      parse(a, "__name__=x,job=a"),
      parse(a, "__name__=x,job=b"),
      parse(a, "__name__=x,job=c,zz=1"),
  };
  assert_true(run(in2, 3, &ext2, &o) <= 1);
  for (size_t i = 0; i < 3; i++) assert_int_equal(o.idx[i], i);
  /* no external labels: passed through as given */
  out_free(&o);
  o.a = orr_arena_new(0);
  labels_set none = {0};
  assert_int_equal(run(in2, 3, &none, &o), 0);
  out_free(&o);
  orr_arena_destroy(a);
}

/* Random sets over names around the external ones: always sorted output. */
static void test_random(void **state) {
  (void)state;
  const char *names[] = {"__name__", "a", "job", "m", "quantile", "s", "zz"};
  orr_arena *a = orr_arena_new(0);
  labels_set ext = parse(a, "le_ext=1,region=eu");
  srand(7);
  for (int round = 0; round < 200; round++) {
    out o = {.a = orr_arena_new(0)};
    size_t n = 0;
    labels_set in[64];
    char buf[256];
    for (int i = 0; i < 64; i++) {
      size_t len = 0;
      buf[0] = 0;
      for (size_t j = 0; j < 7; j++)
        if (rand() % 2)
          len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s=%d", len ? "," : "",
                                  names[j], rand() % 2);
      labels_set ls = parse(a, buf);
      bool dup = false;
      for (size_t k = 0; k < n; k++) dup |= labels_equal(&in[k], &ls);
      if (!dup) in[n++] = ls;
    }
    run(in, n, &ext, &o);
    out_free(&o);
  }
  orr_arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flip),
      cmocka_unit_test(test_long_run),
      cmocka_unit_test(test_no_flip),
      cmocka_unit_test(test_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
