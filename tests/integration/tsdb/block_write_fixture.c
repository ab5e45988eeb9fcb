/* block_write_fixture.c: writes a block with orrery's block writer from a
 * deterministic set of series (counters, gauges, NaN, stale NaN, irregular
 * timestamps) and prints what it wrote, one sample a line:
 *   <ulid>                                    (first line)
 *   <labels as JSON object>\t<t ms>\t<value bits hex>
 * so a test can compare Prometheus's answers with exactly these samples.
 * Usage: block_write_fixture PARENT_DIR [T0_MS]
 *
 * With --recut SRC_BLOCK PARENT_DIR RANGE_MS it instead decodes every series
 * of SRC_BLOCK, writes the samples again with orrery's writer cutting chunks
 * for RANGE_MS, and checks that every chunk (time range and bytes) equals
 * the source's: chunks are cut as Prometheus cuts them. Exit 0 when equal. */
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

static int recut(const char *src, const char *parent, int64_t range) {
  char err[1024];
  tsdb_block *b;
  if (tsdb_block_open(src, &b, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  tsdb_block_writer_opts o = {.chunk_range = range};
  tsdb_block_writer *w;
  if (tsdb_block_writer_open(parent, &o, &w, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  orr_arena *a = orr_arena_new(0);
  tsdb_series_set *ss;
  const tsdb_series *s;
  size_t cap = 1 << 16, nser = 0, nchk = 0;
  tsdb_sample *smp = malloc(cap * sizeof(*smp));
  int rc;
  if (tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss)) return 1;
  while ((rc = tsdb_series_set_next(ss, &s)) == 1) {
    size_t n = 0;
    tsdb_series_iter it;
    tsdb_series_iter_init(&it, s);
    while ((rc = tsdb_series_iter_next(&it)) == 1) {
      if (n == cap) smp = realloc(smp, (cap *= 2) * sizeof(*smp));
      smp[n++] = (tsdb_sample){it.t, it.v};
    }
    if (rc < 0 || tsdb_block_writer_add_samples(w, &s->labels, smp, n)) {
      fprintf(stderr, "reading or writing a series failed\n");
      return 1;
    }
    nser++;
  }
  tsdb_series_set_close(ss);
  tsdb_ulid u;
  if (tsdb_block_writer_commit(w, &u, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  char dir[4096], name[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, name);
  snprintf(dir, sizeof(dir), "%s/%s", parent, name);
  tsdb_block *nb;
  if (tsdb_block_open(dir, &nb, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  /* Walk both blocks side by side: same series, same chunks. */
  orr_arena *a2 = orr_arena_new(0);
  tsdb_series_set *s1, *s2;
  const tsdb_series *x, *y;
  int bad = 0;
  if (tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &s1) ||
      tsdb_block_select(nb, NULL, 0, INT64_MIN, INT64_MAX, a2, &s2))
    return 1;
  for (;;) {
    int r1 = tsdb_series_set_next(s1, &x), r2 = tsdb_series_set_next(s2, &y);
    if (r1 != r2) {
      fprintf(stderr, "series count differs\n");
      bad++;
      break;
    }
    if (r1 != 1) break;
    orr_buf lb = {0};
    labels_format(&x->labels, &lb);
    if (!labels_equal(&x->labels, &y->labels)) {
      fprintf(stderr, "series %s: labels differ\n", lb.data);
      bad++;
    } else if (x->nchunks != y->nchunks) {
      fprintf(stderr, "series %s: %zu chunks in the source, %zu recut\n", lb.data, x->nchunks,
              y->nchunks);
      bad++;
    } else {
      for (size_t i = 0; i < x->nchunks; i++) {
        const tsdb_chunk *c1 = &x->chunks[i], *c2 = &y->chunks[i];
        if (c1->mint != c2->mint || c1->maxt != c2->maxt || c1->len != c2->len ||
            memcmp(c1->data, c2->data, c1->len) != 0) {
          fprintf(stderr, "series %s chunk %zu: source [%lld, %lld] %zu bytes, recut [%lld, %lld] "
                  "%zu bytes\n", lb.data, i, (long long)c1->mint, (long long)c1->maxt, c1->len,
                  (long long)c2->mint, (long long)c2->maxt, c2->len);
          bad++;
          break;
        }
      }
    }
    nchk += x->nchunks;
    orr_buf_free(&lb);
    if (bad > 5) break;
  }
  printf("recut %zu series, %zu chunks: %d differences\n", nser, nchk, bad);
  tsdb_series_set_close(s1);
  tsdb_series_set_close(s2);
  tsdb_block_close(nb);
  tsdb_block_close(b);
  orr_arena_destroy(a);
  orr_arena_destroy(a2);
  free(smp);
  return bad ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--recut") == 0)
    return recut(argv[2], argv[3], strtoll(argv[4], NULL, 10));
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
