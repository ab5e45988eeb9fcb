/* store_fixture.c: writes a bucket of blocks with the tsdb writer for the
 * store's memory test and benchmark: NBLOCKS consecutive 2h blocks, each
 * with NSERIES series {__name__="fixture_metric", instance="i-<n>",
 * job="job-<n % 10>"} of SAMPLES samples, and a thanos section
 * (external labels {fixture="1"}, or RESOLUTION for downsampled blocks of
 * aggregate chunks). Usage: store_fixture DIR NSERIES NBLOCKS [SAMPLES] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s DIR NSERIES NBLOCKS [SAMPLES]\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  long nseries = atol(argv[2]), nblocks = atol(argv[3]);
  long nsamples = argc > 4 ? atol(argv[4]) : 8;
  const int64_t h2 = 2 * 3600 * 1000, base = 1700000000000LL;
  labels_label ext_l[1] = {{"fixture", "1"}};
  tsdb_meta thanos;
  memset(&thanos, 0, sizeof thanos);
  thanos.has_thanos = true;
  thanos.thanos.version = 1;
  thanos.thanos.labels = (labels_set){ext_l, 1};
  thanos.thanos.source = "fixture";
  tsdb_sample *s = calloc((size_t)nsamples, sizeof(*s));
  for (long b = 0; b < nblocks; b++) {
    tsdb_block_writer_opts o = {0};
    o.fixed_range = true;
    o.min_time = base + b * h2;
    o.max_time = o.min_time + h2;
    o.thanos = &thanos;
    tsdb_block_writer *w;
    char err[512];
    if (tsdb_block_writer_open(dir, &o, &w, err, sizeof err)) {
      fprintf(stderr, "open: %s\n", err);
      return 1;
    }
    for (long i = 0; i < nseries; i++) {
      char inst[32], job[16];
      snprintf(inst, sizeof inst, "i-%08ld", i);
      snprintf(job, sizeof job, "job-%ld", i % 10);
      labels_label l[3] = {{"__name__", "fixture_metric"}, {"instance", inst}, {"job", job}};
      labels_set ls = {l, 3};
      for (long k = 0; k < nsamples; k++) {
        s[k].t = o.min_time + k * (h2 / nsamples);
        s[k].v = (double)((i * 31 + k * 7 + b) % 1000);
      }
      int rc = tsdb_block_writer_add_samples(w, &ls, s, (size_t)nsamples);
      if (rc) {
        fprintf(stderr, "add: %s\n", orr_strerror(rc));
        return 1;
      }
    }
    tsdb_ulid u;
    if (tsdb_block_writer_commit(w, &u, err, sizeof err)) {
      fprintf(stderr, "commit: %s\n", err);
      return 1;
    }
    char id[TSDB_ULID_STRLEN + 1];
    tsdb_ulid_format(&u, id);
    printf("%s\n", id);
    fflush(stdout);
  }
  free(s);
  return 0;
}
