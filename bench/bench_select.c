/* bench_select.c: writes a block of N series x 2h at 15s with the block
 * writer, then times a full selection with sample iteration, a narrow
 * matcher selection and a full verification.
 * Usage: bench_select [NSERIES (default 10000)] [DIR (default: a temp dir)] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

static double secs(uint64_t ns) { return (double)ns / 1e9; }

int main(int argc, char **argv) {
  size_t nseries = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
  char tmpl[] = "/tmp/orr_bench_select_XXXXXX";
  const char *parent = argc > 2 ? argv[2] : mkdtemp(tmpl);
  if (!parent) return 1;
  const size_t nsamples = 480; /* 2h at 15s */
  tsdb_sample *s = calloc(nsamples, sizeof(*s));
  char err[512];
  tsdb_block_writer *w;
  if (tsdb_block_writer_open(parent, NULL, &w, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  uint64_t t0 = orr_mono_ns();
  /* Series sorted by label: name m<k>, instance i<%06d>. */
  char name[32], inst[32];
  labels_label l[2] = {{"__name__", name}, {"instance", inst}};
  labels_set ls = {l, 2};
  size_t per = nseries / 10 ? nseries / 10 : 1;
  for (size_t i = 0; i < nseries; i++) {
    snprintf(name, sizeof(name), "m%zu", i / per);
    snprintf(inst, sizeof(inst), "i%06zu", i % per);
    for (size_t k = 0; k < nsamples; k++) {
      s[k].t = 1700000000000 + (int64_t)k * 15000;
      s[k].v = (i % 2) ? (double)(k * 3) : sin((double)k) * 100;
    }
    if (tsdb_block_writer_add_samples(w, &ls, s, nsamples)) return 1;
  }
  tsdb_ulid u;
  if (tsdb_block_writer_commit(w, &u, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  uint64_t t1 = orr_mono_ns();
  char dir[4096], us[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, us);
  snprintf(dir, sizeof(dir), "%s/%s", parent, us);
  double total = (double)nseries * (double)nsamples;
  printf("write:  %zu series, %.0f samples in %.2fs (%.1f M samples/s)\n", nseries, total,
         secs(t1 - t0), total / secs(t1 - t0) / 1e6);

  tsdb_block *b;
  if (tsdb_block_open(dir, &b, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  orr_arena *a = orr_arena_new(0);
  tsdb_series_set *ss;
  const tsdb_series *se;
  t0 = orr_mono_ns();
  if (tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss)) return 1;
  size_t n = 0;
  double sum = 0;
  while (tsdb_series_set_next(ss, &se) == 1) {
    tsdb_series_iter it;
    tsdb_series_iter_init(&it, se);
    while (tsdb_series_iter_next(&it) == 1) {
      sum += it.v;
      n++;
    }
  }
  tsdb_series_set_close(ss);
  t1 = orr_mono_ns();
  printf("select all + decode: %zu samples in %.2fs (%.1f M samples/s) [%g]\n", n, secs(t1 - t0),
         (double)n / secs(t1 - t0) / 1e6, sum);

  char emsg[128];
  labels_matcher *m = labels_matcher_new(LABELS_MATCH_RE, "instance", "i00001.", emsg, sizeof(emsg));
  t0 = orr_mono_ns();
  int reps = 100;
  size_t hits = 0;
  for (int r = 0; r < reps; r++) {
    orr_arena_reset(a);
    if (tsdb_block_select(b, &m, 1, INT64_MIN, INT64_MAX, a, &ss)) return 1;
    while (tsdb_series_set_next(ss, &se) == 1) hits++;
    tsdb_series_set_close(ss);
  }
  t1 = orr_mono_ns();
  printf("select instance=~\"i00001.\": %zu series, %.3f ms per selection\n", hits / (size_t)reps,
         secs(t1 - t0) * 1e3 / reps);
  labels_matcher_free(m);
  orr_arena_destroy(a);
  tsdb_block_close(b);

  tsdb_verify_stats st;
  t0 = orr_mono_ns();
  int rc = tsdb_block_verify(dir, NULL, NULL, &st);
  t1 = orr_mono_ns();
  printf("verify: rc %d, %llu problems, %llu samples in %.2fs\n", rc,
         (unsigned long long)st.problems, (unsigned long long)st.samples, secs(t1 - t0));
  free(s);
  if (argc <= 2) { /* our own temp dir: remove it */
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", parent);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", parent);
  }
  /* Every sample written must come back, and the block must verify. */
  if (n != (size_t)total || rc != 0 || st.problems != 0) {
    fprintf(stderr, "bench_select: read %zu of %.0f samples, verify rc %d, %llu problems\n", n, total,
            rc, (unsigned long long)st.problems);
    return 1;
  }
  return 0;
}
