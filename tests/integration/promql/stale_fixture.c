/* stale_fixture.c: writes one block of series with staleness markers (which
 * promtool's OpenMetrics import cannot make) into PARENT_DIR with orrery's
 * block writer, for promql_diff's queries on stale_gauge / stale_counter_total.
 * Usage: promql_stale_fixture PARENT_DIR   (T0 = 1700000000 s, as gen_data.py) */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

#define T0_MS INT64_C(1700000000000)
#define END_MS (T0_MS + INT64_C(3) * 3600 * 1000)
#define STALE_NAN_BITS UINT64_C(0x7ff0000000000002)
#define MAX_SAMPLES 2000

static double stale_nan(void) {
  uint64_t b = STALE_NAN_BITS;
  double d;
  memcpy(&d, &b, sizeof(d));
  return d;
}

static int64_t sec(int64_t s) { return T0_MS + s * 1000; }

/* One series: fills |s| and returns the number of samples. */
typedef size_t (*fill_fn)(tsdb_sample *s);

static size_t fill_counter_gap(tsdb_sample *s) {
  size_t n = 0;
  double acc = 0;
  for (int64_t t = sec(0); t <= END_MS; t += 15000) {
    if (t > sec(3015) && t < sec(3600)) continue;
    acc += 10;
    if (t == sec(7200)) acc = 3; /* a reset after the gap */
    s[n++] = (tsdb_sample){t, t == sec(3015) ? stale_nan() : acc};
  }
  return n;
}

static size_t fill_flap(tsdb_sample *s) {
  size_t n = 0;
  int k = 0;
  for (int64_t t = sec(5); t <= END_MS; t += 15000, k++)
    s[n++] = (tsdb_sample){t, k % 4 == 3 ? stale_nan() : (double)(k % 11) - 3.5};
  return n;
}

static size_t fill_gap(tsdb_sample *s) {
  size_t n = 0;
  int k = 0;
  for (int64_t t = sec(0); t <= END_MS; t += 15000, k++) {
    if (t > sec(3015) && t < sec(3600)) continue;
    s[n++] = (tsdb_sample){t, t == sec(3015) ? stale_nan() : 100.0 + k * 0.5};
  }
  return n;
}

static size_t fill_last_is_stale(tsdb_sample *s) {
  size_t n = 0;
  for (int64_t t = sec(0); t <= sec(1800); t += 60000) s[n++] = (tsdb_sample){t, 7.25};
  s[n++] = (tsdb_sample){sec(1830), stale_nan()};
  return n;
}

static size_t fill_nan(tsdb_sample *s) {
  size_t n = 0;
  int k = 0;
  for (int64_t t = sec(0); t <= END_MS; t += 15000, k++) {
    double v = k % 5 == 4 ? NAN : (double)k;
    if (k % 40 == 39) v = stale_nan();
    s[n++] = (tsdb_sample){t, v};
  }
  return n;
}

static size_t fill_only(tsdb_sample *s) {
  s[0] = (tsdb_sample){sec(100), 42};
  s[1] = (tsdb_sample){sec(160), stale_nan()};
  return 2;
}

static size_t fill_stops(tsdb_sample *s) {
  size_t n = 0;
  int k = 0;
  for (int64_t t = sec(0); t <= sec(5400); t += 15000, k++) s[n++] = (tsdb_sample){t, (double)k};
  s[n++] = (tsdb_sample){sec(5415), stale_nan()};
  return n;
}

int main(int argc, char **argv) {
  /* In label order: the writer wants series sorted. */
  static const struct {
    const char *name, *kase;
    fill_fn fill;
  } series[] = {
      {"stale_counter_total", "gap", fill_counter_gap},
      {"stale_gauge", "flap", fill_flap},
      {"stale_gauge", "gap", fill_gap},
      {"stale_gauge", "last_is_stale", fill_last_is_stale},
      {"stale_gauge", "nan", fill_nan},
      {"stale_gauge", "only", fill_only},
      {"stale_gauge", "stops", fill_stops},
  };
  if (argc != 2) {
    fprintf(stderr, "usage: promql_stale_fixture PARENT_DIR\n");
    return 2;
  }
  char err[512];
  tsdb_block_writer *w;
  if (tsdb_block_writer_open(argv[1], NULL, &w, err, sizeof(err)) != 0) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  tsdb_sample *s = calloc(MAX_SAMPLES, sizeof(*s));
  if (!s) {
    tsdb_block_writer_abort(w);
    return 1;
  }
  for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
    labels_label l[2] = {{"__name__", series[i].name}, {"case", series[i].kase}};
    labels_set ls = {l, 2};
    size_t n = series[i].fill(s);
    if (tsdb_block_writer_add_samples(w, &ls, s, n) != 0) {
      fprintf(stderr, "adding %s{case=\"%s\"} failed\n", series[i].name, series[i].kase);
      tsdb_block_writer_abort(w);
      free(s);
      return 1;
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
  return 0;
}
