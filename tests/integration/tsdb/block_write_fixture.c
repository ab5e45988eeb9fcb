/* block_write_fixture.c: writes a block with orrery's block writer from a
 * deterministic set of series (counters, gauges, NaN, stale NaN, irregular
 * timestamps) and prints what it wrote, one sample a line:
 *   <ulid>                                    (first line)
 *   <labels as JSON object>\t<t ms>\t<value bits hex>
 * so a test can compare Prometheus's answers with exactly these samples.
 * Usage: block_write_fixture PARENT_DIR [T0_MS] */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

#define NSERIES 120
#define STALE_NAN_BITS 0x7ff0000000000002ull

static double from_bits(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof(d));
  return d;
}

typedef struct fseries {
  char name[32], inst[16], job[8];
  labels_label l[3];
  labels_set ls;
} fseries;

static int cmp(const void *x, const void *y) {
  return labels_cmp(&((const fseries *)x)->ls, &((const fseries *)y)->ls);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: block_write_fixture PARENT_DIR [T0_MS]\n");
    return 2;
  }
  int64_t t0 = argc > 2 ? strtoll(argv[2], NULL, 10) : (int64_t)1700000000000;
  static fseries fs[NSERIES];
  for (int i = 0; i < NSERIES; i++) {
    fseries *f = &fs[i];
    if (i % 2)
      snprintf(f->name, sizeof(f->name), "fixture_gauge_%d", i % 4);
    else
      snprintf(f->name, sizeof(f->name), i % 4 ? "fixture_errors_total" : "fixture_requests_total");
    snprintf(f->inst, sizeof(f->inst), "host-%02d:9100", i / 4);
    snprintf(f->job, sizeof(f->job), "%s", i % 3 ? "node" : "api");
    f->l[0] = (labels_label){"__name__", f->name};
    f->l[1] = (labels_label){"instance", f->inst};
    f->l[2] = (labels_label){"job", f->job};
  }
  for (int i = 0; i < NSERIES; i++) fs[i].ls = (labels_set){fs[i].l, 3};
  qsort(fs, NSERIES, sizeof(fs[0]), cmp);
  for (int i = 0; i < NSERIES; i++) {
    fs[i].l[0].value = fs[i].name;
    fs[i].l[1].value = fs[i].inst;
    fs[i].l[2].value = fs[i].job;
    fs[i].ls.v = fs[i].l;
  }

  tsdb_block_writer *w;
  char err[512];
  if (tsdb_block_writer_open(argv[1], NULL, &w, err, sizeof(err)) != 0) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  orr_buf out = {0};
  size_t cap = 2000;
  tsdb_sample *s = calloc(cap, sizeof(*s));
  for (int i = 0; i < NSERIES; i++) {
    /* 1.5 hours at ~10s with jitter; some series start late or stop early. */
    size_t n = 0;
    int64_t t = t0 + (i % 5) * 60000 + i;
    double acc = 0;
    size_t len = 300 + (size_t)(i % 7) * 40;
    for (size_t k = 0; k < len && n < cap; k++) {
      t += 10000 + (int64_t)((k * 2654435761u + (unsigned)i) % 2000) - 1000;
      double v;
      if (strstr(fs[i].name, "total")) {
        acc += (double)((k * 31 + (size_t)i) % 17) * 0.25;
        if (k == len / 2 && i % 3 == 0) acc = 0; /* a counter reset */
        v = acc;
      } else {
        v = sin((double)k * 0.1 + i) * 1234.5678 + (double)i / 3.0;
        if (k % 50 == 7) v = NAN;
        if (k % 77 == 11) v = -1e-300;
        if (k % 91 == 13) v = 1.7976931348623157e308;
      }
      if (k % 113 == 100) v = from_bits(STALE_NAN_BITS);
      s[n].t = t;
      s[n].v = v;
      n++;
    }
    if (tsdb_block_writer_add_samples(w, &fs[i].ls, s, n) != 0) {
      fprintf(stderr, "add series %d failed\n", i);
      tsdb_block_writer_abort(w);
      return 1;
    }
    for (size_t k = 0; k < n; k++) {
      uint64_t bits;
      memcpy(&bits, &s[k].v, sizeof(bits));
      orr_buf_printf(&out, "{\"__name__\": \"%s\", \"instance\": \"%s\", \"job\": \"%s\"}\t%" PRId64
                     "\t%016" PRIx64 "\n", fs[i].name, fs[i].inst, fs[i].job, s[k].t, bits);
    }
  }
  free(s);
  tsdb_ulid u;
  if (tsdb_block_writer_commit(w, &u, err, sizeof(err)) != 0) {
    fprintf(stderr, "commit: %s\n", err);
    return 1;
  }
  char name[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, name);
  printf("%s\n", name);
  fwrite(out.data, 1, out.len, stdout);
  orr_buf_free(&out);
  return 0;
}
