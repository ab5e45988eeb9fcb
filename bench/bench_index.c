/* bench_index.c: writes an index of 1M series with realistic label sets
 * (__name__ among 100 metrics, instance among 1000, job and namespace derived
 * from the instance, pod among 10), then times selections through the reader.
 * Usage: bench_index [DIR] [SERIES_PER_METRIC_INSTANCE (pods, default 10)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tsdb.h"

#define NMETRIC 100
#define NINST 1000

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char **names(const char *fmt, int n) {
  char **v = malloc((size_t)n * sizeof(*v));
  for (int i = 0; i < n; i++) {
    v[i] = malloc(32);
    snprintf(v[i], 32, fmt, i);
  }
  qsort(v, (size_t)n, sizeof(*v), cmp_str);
  return v;
}

static long max_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/tmp";
  int npod = argc > 2 ? atoi(argv[2]) : 10;
  char path[4096];
  snprintf(path, sizeof(path), "%s/bench_index.%d", dir, (int)getpid());
  char **metric = names("metric_%d", NMETRIC), **inst = names("i-%d", NINST),
       **pod = names("pod-%d", npod);
  /* job and namespace are functions of the instance number, which we need
   * back from the sorted instance strings. */
  char job[NINST][16], ns[NINST][16];
  for (int i = 0; i < NINST; i++) {
    int num = atoi(inst[i] + 2);
    snprintf(job[i], sizeof(job[i]), "job-%d", num / 100);
    snprintf(ns[i], sizeof(ns[i]), "ns-%d", num % 5);
  }
  /* Symbols: every string, plus "" as Prometheus has. */
  size_t nsym = 0;
  const char **sym = malloc((NMETRIC + NINST * 3 + (size_t)npod + 16) * sizeof(*sym));
  sym[nsym++] = "";
  const char *lnames[] = {"__name__", "instance", "job", "namespace", "pod"};
  for (int i = 0; i < 5; i++) sym[nsym++] = lnames[i];
  for (int i = 0; i < NMETRIC; i++) sym[nsym++] = metric[i];
  for (int i = 0; i < NINST; i++) sym[nsym++] = inst[i];
  for (int i = 0; i < 10; i++) {
    static char jb[10][16];
    snprintf(jb[i], sizeof(jb[i]), "job-%d", i);
    sym[nsym++] = jb[i];
  }
  for (int i = 0; i < 5; i++) {
    static char nb[5][16];
    snprintf(nb[i], sizeof(nb[i]), "ns-%d", i);
    sym[nsym++] = nb[i];
  }
  for (int i = 0; i < npod; i++) sym[nsym++] = pod[i];
  qsort(sym, nsym, sizeof(*sym), cmp_str);

  uint64_t t0 = orr_mono_ns();
  tsdb_index_writer *w;
  if (tsdb_index_writer_open(path, &w) != 0) {
    fprintf(stderr, "cannot create %s\n", path);
    return 1;
  }
  for (size_t i = 0; i < nsym; i++)
    if (i == 0 || strcmp(sym[i], sym[i - 1]) != 0) tsdb_index_writer_add_symbol(w, sym[i], strlen(sym[i]));
  size_t nseries = 0;
  uint64_t cref = 8;
  for (int m = 0; m < NMETRIC; m++)
    for (int i = 0; i < NINST; i++)
      for (int p = 0; p < npod; p++) {
        labels_label l[5] = {{"__name__", metric[m]}, {"instance", inst[i]}, {"job", job[i]},
                             {"namespace", ns[i]}, {"pod", pod[p]}};
        labels_set ls = {l, 5};
        tsdb_index_chunk_meta c = {1700000000000LL, 1700007199000LL, cref};
        cref += 150;
        int rc = tsdb_index_writer_add_series(w, &ls, &c, 1, NULL);
        if (rc) {
          fprintf(stderr, "add_series: %s\n", orr_strerror(rc));
          return 1;
        }
        nseries++;
      }
  int rc = tsdb_index_writer_finish(w);
  tsdb_index_writer_free(w);
  if (rc) {
    fprintf(stderr, "finish: %s\n", orr_strerror(rc));
    return 1;
  }
  uint64_t t1 = orr_mono_ns();
  FILE *f = fopen(path, "rb");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  printf("write: %zu series in %.2f s, index %.1f MiB, max RSS so far %ld MiB\n", nseries,
         (double)(t1 - t0) / 1e9, (double)size / 1048576.0, max_rss_kib() / 1024);

  tsdb_index_reader *r;
  char err[256];
  t0 = orr_mono_ns();
  if (tsdb_index_open(path, &r, err, sizeof(err)) != 0) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  t1 = orr_mono_ns();
  printf("open: %.3f ms\n", (double)(t1 - t0) / 1e6);

  struct {
    const char *desc;
    labels_match_type t[3];
    const char *n[3], *v[3];
    size_t k;
  } sets[] = {
      {"{__name__=\"metric_1\"}", {LABELS_MATCH_EQ}, {"__name__"}, {"metric_1"}, 1},
      {"{job=\"job-1\", instance=~\"i-1.*\"}",
       {LABELS_MATCH_EQ, LABELS_MATCH_RE},
       {"job", "instance"},
       {"job-1", "i-1.*"},
       2},
      {"{__name__=~\"metric_1|metric_2|metric_3\", job!=\"job-0\"}",
       {LABELS_MATCH_RE, LABELS_MATCH_NEQ},
       {"__name__", "job"},
       {"metric_1|metric_2|metric_3", "job-0"},
       2},
      {"{__name__=\"metric_7\", instance=~\"i-4.*\", pod!~\"pod-[0-4]\"}",
       {LABELS_MATCH_EQ, LABELS_MATCH_RE, LABELS_MATCH_NRE},
       {"__name__", "instance", "pod"},
       {"metric_7", "i-4.*", "pod-[0-4]"},
       3},
      {"{namespace=\"ns-2\", pod=\"pod-3\"}",
       {LABELS_MATCH_EQ, LABELS_MATCH_EQ},
       {"namespace", "pod"},
       {"ns-2", "pod-3"},
       2},
  };
  orr_arena *a = orr_arena_new(1 << 20);
  for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
    labels_matcher *ms[3];
    for (size_t i = 0; i < sets[s].k; i++)
      ms[i] = labels_matcher_new(sets[s].t[i], sets[s].n[i], sets[s].v[i], err, sizeof(err));
    int reps = 0;
    size_t matched = 0;
    t0 = orr_mono_ns();
    do {
      tsdb_postings *p;
      uint64_t *refs;
      if (tsdb_index_select(r, ms, sets[s].k, a, &p) != 0 ||
          tsdb_postings_expand(p, a, &refs, &matched) != 0) {
        fprintf(stderr, "select failed\n");
        return 1;
      }
      orr_arena_reset(a);
      reps++;
      t1 = orr_mono_ns();
    } while (t1 - t0 < 500000000ull || reps < 3);
    printf("select %-62s %8zu series  %12.0f ns/selection (%d runs)\n", sets[s].desc, matched,
           (double)(t1 - t0) / reps, reps);
    for (size_t i = 0; i < sets[s].k; i++) labels_matcher_free(ms[i]);
  }
  orr_arena_destroy(a);
  tsdb_index_close(r);
  unlink(path);
  printf("max RSS %ld MiB\n", max_rss_kib() / 1024);
  return 0;
}
