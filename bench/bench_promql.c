/* bench_promql.c: writes a block of 100k series (counters, classic
 * histograms, gauges) sampled every 15s over a few hours, then times query
 * classes through the PromQL engine, single-threaded, reading the block.
 * Usage: bench_promql [--dir DIR] [--series N] [--hours H] [--reps R]
 *                     [--generate-only] [--no-generate] [--list]
 * bench/bench_promql.sh runs Prometheus 2.42 on the same block and prints
 * the ratios. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "promql.h"
#include "tsdb.h"

#define T0 ((int64_t)1700000000000 / 7200000 * 7200000) /* aligned to 2h */
#define STEP 15000

typedef struct gen_series {
  labels_set ls;
  int kind; /* 0 counter, 1 bucket, 2 gauge */
  double le;
  unsigned seed;
} gen_series;

static int cmp_series(const void *a, const void *b) {
  return labels_cmp(&((const gen_series *)a)->ls, &((const gen_series *)b)->ls);
}

static labels_set mk(orr_arena *a, int n, ...) {
  va_list ap;
  labels_set s;
  s.v = orr_arena_alloc(a, (size_t)n * sizeof(labels_label));
  s.n = (size_t)n;
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    s.v[i].name = orr_arena_strdup(a, va_arg(ap, const char *));
    s.v[i].value = orr_arena_strdup(a, va_arg(ap, const char *));
  }
  va_end(ap);
  labels_sort(&s);
  return s;
}

static unsigned rnd(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 16) & 0x7fff;
}

static int generate(const char *dir, int nseries, int hours) {
  orr_arena *a = orr_arena_new(0);
  /* Per (job, instance): 4 counters, 12 buckets, 4 gauges = 20 series. */
  int groups = nseries / 20;
  gen_series *gs = calloc((size_t)groups * 20, sizeof(*gs));
  static const char *codes[] = {"200", "404", "500", "503"};
  static const char *les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                              "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
  static const char *modes[] = {"idle", "system", "user", "iowait"};
  size_t n = 0;
  for (int g = 0; g < groups; g++) {
    char job[32], inst[32];
    snprintf(job, sizeof(job), "job-%d", g % 10);
    snprintf(inst, sizeof(inst), "inst-%05d", g / 10);
    for (int c = 0; c < 4; c++) {
      gs[n].ls = mk(a, 4, "__name__", "http_requests_total", "job", job, "instance", inst, "code",
                    codes[c]);
      gs[n].kind = 0;
      gs[n].seed = (unsigned)n;
      n++;
    }
    for (int b = 0; b < 12; b++) {
      gs[n].ls = mk(a, 4, "__name__", "request_duration_seconds_bucket", "job", job, "instance",
                    inst, "le", les[b]);
      gs[n].kind = 1;
      gs[n].le = (double)b;
      gs[n].seed = (unsigned)g;
      n++;
    }
    for (int m = 0; m < 4; m++) {
      gs[n].ls = mk(a, 4, "__name__", "node_cpu_seconds", "job", job, "instance", inst, "mode",
                    modes[m]);
      gs[n].kind = 2;
      gs[n].seed = (unsigned)n * 7u;
      n++;
    }
  }
  qsort(gs, n, sizeof(*gs), cmp_series);
  tsdb_block_writer *w;
  char err[512];
  if (tsdb_block_writer_open(dir, NULL, &w, err, sizeof(err))) {
    fprintf(stderr, "open writer: %s\n", err);
    return 1;
  }
  size_t ns = (size_t)hours * 3600 * 1000 / STEP;
  tsdb_sample *s = malloc(ns * sizeof(*s));
  for (size_t i = 0; i < n; i++) {
    unsigned seed = gs[i].seed;
    double v = 0;
    for (size_t k = 0; k < ns; k++) {
      s[k].t = T0 + (int64_t)k * STEP;
      if (gs[i].kind == 0) {
        v += rnd(&seed) % 100;
      } else if (gs[i].kind == 1) {
        /* Cumulative bucket: the same random walk for every le of a group,
         * scaled by the bucket index, so buckets stay monotonic. */
        unsigned s2 = seed + (unsigned)k * 2654435761u;
        v += (double)(rnd(&s2) % 50) * (gs[i].le + 1);
      } else {
        v = (double)(rnd(&seed) % 10000) / 100;
      }
      s[k].v = v;
    }
    if (tsdb_block_writer_add_samples(w, &gs[i].ls, s, ns)) {
      fprintf(stderr, "add series failed\n");
      tsdb_block_writer_abort(w);
      return 1;
    }
  }
  tsdb_ulid id;
  if (tsdb_block_writer_commit(w, &id, err, sizeof(err))) {
    fprintf(stderr, "commit: %s\n", err);
    return 1;
  }
  free(s);
  free(gs);
  orr_arena_destroy(a);
  return 0;
}

/* ---------------------------------------------------------------- storage */
typedef struct blocks {
  tsdb_block *b[64];
  size_t n;
  orr_arena *scratch;
} blocks;

static int open_blocks(const char *dir, blocks *bs) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *de;
  while ((de = readdir(d)) && bs->n < 64) {
    char p[4096], m[4200];
    struct stat st;
    if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp")) continue;
    if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= sizeof(p)) continue;
    snprintf(m, sizeof(m), "%s/meta.json", p);
    if (stat(m, &st) != 0) continue;
    char err[512];
    if (tsdb_block_open(p, &bs->b[bs->n], err, sizeof(err)) == 0) bs->n++;
  }
  closedir(d);
  return bs->n ? 0 : -1;
}

static int blocks_select(void *ctx, const promql_selector *sel, promql_emit_fn emit, void *arg,
                         char *err, size_t errlen) {
  blocks *bs = ctx;
  static promql_point *pts;
  static size_t cap;
  (void)err;
  (void)errlen;
  for (size_t i = 0; i < bs->n; i++) {
    orr_arena_reset(bs->scratch);
    tsdb_series_set *ss;
    int rc = tsdb_block_select(bs->b[i], sel->matchers, sel->nmatchers, sel->start_ms,
                               sel->end_ms, bs->scratch, &ss);
    if (rc) return rc;
    const tsdb_series *s;
    while (tsdb_series_set_next(ss, &s) == 1) {
      tsdb_series_iter it;
      tsdb_series_iter_init(&it, s);
      size_t n = 0;
      while (tsdb_series_iter_next(&it) == 1) {
        if (n == cap) {
          cap = cap ? cap * 2 : 1024;
          pts = realloc(pts, cap * sizeof(*pts));
        }
        pts[n].t = it.t;
        pts[n].v = it.v;
        n++;
      }
      if (n && (rc = emit(arg, &s->labels, pts, n))) break;
    }
    tsdb_series_set_close(ss);
    if (rc) return rc;
  }
  return 0;
}

static const struct {
  const char *cls, *q;
} queries[] = {
    {"selector", "http_requests_total{code=\"500\"}"},
    {"rate", "rate(http_requests_total[5m])"},
    {"sum_by_rate", "sum by (job) (rate(http_requests_total[5m]))"},
    {"histogram_quantile",
     "histogram_quantile(0.9, sum by (job, le) (rate(request_duration_seconds_bucket[5m])))"},
    {"binop_matching",
     "sum by (job, instance) (rate(http_requests_total{code=~\"5..\"}[5m])) / on(job, instance) "
     "group_left sum by (job, instance) (rate(http_requests_total[5m]))"},
    {"topk", "topk(10, node_cpu_seconds{mode=\"user\"})"},
    {"subquery", "max_over_time(rate(http_requests_total{job=\"job-1\"}[5m])[30m:1m])"},
};

int main(int argc, char **argv) {
  const char *dir = "/tmp/bench_promql";
  int nseries = 100000, hours = 3, reps = 3;
  bool gen_only = false, no_gen = false, list = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--series") && i + 1 < argc) nseries = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--hours") && i + 1 < argc) hours = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--generate-only")) gen_only = true;
    else if (!strcmp(argv[i], "--no-generate")) no_gen = true;
    else if (!strcmp(argv[i], "--list")) list = true;
    else {
      fprintf(stderr, "usage: %s [--dir DIR] [--series N] [--hours H] [--reps R] "
                      "[--generate-only|--no-generate]\n", argv[0]);
      return 2;
    }
  }
  if (list) {
    /* For bench_promql.sh: the evaluation end time and the queries. */
    printf("END %lld\n", (long long)(T0 + (int64_t)hours * 3600000 - STEP));
    for (size_t qi = 0; qi < sizeof(queries) / sizeof(queries[0]); qi++)
      printf("Q %s\t%s\n", queries[qi].cls, queries[qi].q);
    return 0;
  }
  if (!no_gen) {
    mkdir(dir, 0755);
    uint64_t t0 = orr_mono_ns();
    if (generate(dir, nseries, hours)) return 1;
    fprintf(stderr, "generated %d series x %dh at 15s in %.1fs under %s\n", nseries, hours,
            (double)(orr_mono_ns() - t0) / 1e9, dir);
  }
  if (gen_only) return 0;
  blocks bs = {{0}, 0, orr_arena_new(0)};
  if (open_blocks(dir, &bs)) {
    fprintf(stderr, "no blocks under %s\n", dir);
    return 1;
  }
  int64_t end = T0 + (int64_t)hours * 3600000 - STEP;
  printf("%-20s %12s %12s %10s\n", "class", "instant_ms", "range_ms", "series");
  for (size_t qi = 0; qi < sizeof(queries) / sizeof(queries[0]); qi++) {
    double best[2] = {1e300, 1e300};
    size_t nser = 0;
    for (int mode = 0; mode < 2; mode++) {
      for (int r = 0; r < reps; r++) {
        orr_arena *a = orr_arena_new(0);
        promql_query_params p;
        memset(&p, 0, sizeof(p));
        p.range = mode == 1;
        p.start_ms = mode ? end - 3600000 : end;
        p.end_ms = end;
        p.step_ms = 60000;
        promql_storage st = {&bs, blocks_select, false, false};
        promql_result res;
        promql_errinfo e;
        uint64_t t0 = orr_mono_ns();
        int rc = promql_eval(a, queries[qi].q, strlen(queries[qi].q), &p, &st, &res, &e);
        double ms = (double)(orr_mono_ns() - t0) / 1e6;
        if (rc) {
          fprintf(stderr, "%s: %s\n", queries[qi].cls, e.msg);
          return 1;
        }
        nser = res.nseries;
        if (ms < best[mode]) best[mode] = ms;
        orr_arena_destroy(a);
      }
    }
    printf("%-20s %12.1f %12.1f %10zu\n", queries[qi].cls, best[0], best[1], nser);
  }
  for (size_t i = 0; i < bs.n; i++) tsdb_block_close(bs.b[i]);
  orr_arena_destroy(bs.scratch);
  return 0;
}
