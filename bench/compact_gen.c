/* compact_gen.c: writes a level-1 block for the compaction benchmark:
 * NSERIES series {__name__="bench_metric", instance="i<n>", job="j<n%10>"}
 * with CHUNKS XOR chunks of 120 samples 15 s apart from T0_MS (a counter
 * with jitter, so chunks differ), meta.json's range [T0, T0 + CHUNKS*30m).
 * Usage: bench_compact_gen PARENT T0_MS NSERIES CHUNKS. Prints the ULID. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

#define SAMPLES 120
#define STEP_MS 15000

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s PARENT T0_MS NSERIES CHUNKS\n", argv[0]);
    return 2;
  }
  int64_t t0 = strtoll(argv[2], NULL, 10);
  long nseries = strtol(argv[3], NULL, 10), nchunks = strtol(argv[4], NULL, 10);
  if (nseries <= 0 || nchunks <= 0) return 2;
  tsdb_block_writer_opts o = {.fixed_range = true, .min_time = t0,
                              .max_time = t0 + nchunks * SAMPLES * STEP_MS};
  tsdb_block_writer *w;
  char err[512];
  if (tsdb_block_writer_open(argv[1], &o, &w, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  /* Series in label order: instance names zero-padded so that numeric order
   * is label order. */
  tsdb_sample *s = calloc((size_t)(nchunks * SAMPLES), sizeof(*s));
  uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)t0;
  for (long i = 0; i < nseries; i++) {
    double v = (double)(i % 1000);
    for (long k = 0; k < nchunks * SAMPLES; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      v += (double)(x % 100);
      s[k] = (tsdb_sample){t0 + k * STEP_MS, v};
    }
    char inst[32], job[16];
    snprintf(inst, sizeof(inst), "i%09ld", i);
    snprintf(job, sizeof(job), "j%ld", i % 10);
    labels_label l[] = {{"__name__", "bench_metric"}, {"instance", inst}, {"job", job}};
    labels_set ls = {l, 3};
    if (tsdb_block_writer_add_samples(w, &ls, s, (size_t)(nchunks * SAMPLES))) {
      fprintf(stderr, "add_samples failed\n");
      return 1;
    }
  }
  free(s);
  tsdb_ulid u;
  if (tsdb_block_writer_commit(w, &u, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, id);
  puts(id);
  return 0;
}
