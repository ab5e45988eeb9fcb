/* store_fixture.c: writes a bucket of blocks with the tsdb writer for the
 * store's memory test and benchmark: NBLOCKS consecutive 2h blocks, each
 * with NSERIES series {__name__="fixture_metric", instance="i-<n>",
 * job="job-<n % 10>"} of SAMPLES samples, and a thanos section
 * (external labels {fixture="1"}). With RESOLUTION (ms) > 0 the blocks are
 * downsampled ones: one aggregate chunk a series (count, sum, min, max and
 * counter of each RESOLUTION window, at the window's last sample), as the
 * compactor writes them. Sample k of series i in block b is at
 * min + k * (2h / SAMPLES) with value (i * 31 + k * 7 + b) % 1000.
 * Usage: store_fixture DIR NSERIES NBLOCKS [SAMPLES [RESOLUTION]] */
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
  int64_t res = argc > 5 ? atoll(argv[5]) : 0;
  const int64_t h2 = 2 * 3600 * 1000, base = 1700000000000LL;
  labels_label ext_l[1] = {{"fixture", "1"}};
  tsdb_meta thanos;
  memset(&thanos, 0, sizeof thanos);
  thanos.has_thanos = true;
  thanos.thanos.version = 1;
  thanos.thanos.labels = (labels_set){ext_l, 1};
  thanos.thanos.source = "fixture";
  thanos.thanos.downsample_resolution = res;
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
      int rc;
      if (res > 0) {
        tsdb_aggr_appender ag;
        orr_buf cb = {0};
        rc = tsdb_aggr_appender_init(&ag);
        int64_t first_at = -1;
        for (long k0 = 0; rc == 0 && k0 < nsamples;) {
          int64_t wend = (s[k0].t / res + 1) * res;
          double cnt = 0, sum = 0, mn = s[k0].v, mx = s[k0].v;
          long k = k0;
          for (; k < nsamples && s[k].t < wend; k++) {
            cnt++;
            sum += s[k].v;
            if (s[k].v < mn) mn = s[k].v;
            if (s[k].v > mx) mx = s[k].v;
          }
          int64_t at = s[k - 1].t;
          if (first_at < 0) first_at = at;
          rc = tsdb_aggr_append(&ag, TSDB_AGGR_COUNT, at, cnt);
          if (!rc) rc = tsdb_aggr_append(&ag, TSDB_AGGR_SUM, at, sum);
          if (!rc) rc = tsdb_aggr_append(&ag, TSDB_AGGR_MIN, at, mn);
          if (!rc) rc = tsdb_aggr_append(&ag, TSDB_AGGR_MAX, at, mx);
          if (!rc) rc = tsdb_aggr_append(&ag, TSDB_AGGR_COUNTER, at, s[k - 1].v);
          k0 = k;
        }
        if (!rc) rc = tsdb_aggr_appender_bytes(&ag, &cb);
        tsdb_chunk c = {first_at, s[nsamples - 1].t, TSDB_ENC_AGGR, (uint8_t *)cb.data, cb.len};
        if (!rc) rc = tsdb_block_writer_add_chunks(w, &ls, &c, 1);
        tsdb_aggr_appender_free(&ag);
        orr_buf_free(&cb);
      } else {
        rc = tsdb_block_writer_add_samples(w, &ls, s, (size_t)nsamples);
      }
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
