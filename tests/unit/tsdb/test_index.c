/* test_index.c: index v2 reader and writer, postings operations, matcher
 * selection, meta.json, ULIDs and tombstones — checked against blocks that
 * the real promtool (Prometheus 2.42) makes from a generated OpenMetrics file. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsdb.h"

/* ---------------------------------------------------------------- helpers */
/* The whole file, NUL-terminated (caller frees), its size in |*n|; NULL and
 * |*n| 0 when it cannot be read. */
static char *read_all(const char *path, size_t *n) {
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long l = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = l < 0 ? NULL : malloc((size_t)l + 1);
  if (!b) {
    fclose(f);
    return NULL;
  }
  size_t got = fread(b, 1, (size_t)l, f);
  fclose(f);
  b[got] = 0;
  *n = got;
  return b;
}

static void write_all(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

/* Runs argv with stdout and stderr to |log|; returns the exit status. */
static int run(const char *log, char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---------------------------------------------------------------- postings */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static size_t random_set(uint64_t *v, size_t max, uint64_t range, unsigned density) {
  size_t n = 0;
  for (uint64_t x = 0; x < range && n < max; x++)
    if (rnd() % 100 < density) v[n++] = x;
  return n;
}

static bool in(const uint64_t *v, size_t n, uint64_t x) {
  for (size_t i = 0; i < n; i++)
    if (v[i] == x) return true;
  return false;
}

static void test_postings_ops(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  for (int round = 0; round < 200; round++) {
    uint64_t s[4][300];
    size_t n[4];
    for (int k = 0; k < 4; k++) n[k] = random_set(s[k], 300, 300, (unsigned)(rnd() % 60));
    tsdb_postings *its[4];
    for (int k = 0; k < 4; k++) its[k] = tsdb_postings_from_array(a, s[k], n[k]);
    uint64_t *got;
    size_t ng;
    /* intersect of 3 */
    tsdb_postings *p = tsdb_postings_intersect(a, its, 3);
    assert_int_equal(tsdb_postings_expand(p, a, &got, &ng), 0);
    size_t k = 0;
    for (uint64_t x = 0; x < 300; x++)
      if (in(s[0], n[0], x) && in(s[1], n[1], x) && in(s[2], n[2], x)) {
        assert_true(k < ng);
        assert_int_equal(got[k++], x);
      }
    assert_int_equal(k, ng);
    /* merge of 4 */
    for (int j = 0; j < 4; j++) its[j] = tsdb_postings_from_array(a, s[j], n[j]);
    p = tsdb_postings_merge(a, its, 4);
    assert_int_equal(tsdb_postings_expand(p, a, &got, &ng), 0);
    k = 0;
    for (uint64_t x = 0; x < 300; x++)
      if (in(s[0], n[0], x) || in(s[1], n[1], x) || in(s[2], n[2], x) || in(s[3], n[3], x)) {
        assert_true(k < ng);
        assert_int_equal(got[k++], x);
      }
    assert_int_equal(k, ng);
    /* without */
    p = tsdb_postings_without(a, tsdb_postings_from_array(a, s[0], n[0]),
                              tsdb_postings_from_array(a, s[1], n[1]));
    assert_int_equal(tsdb_postings_expand(p, a, &got, &ng), 0);
    k = 0;
    for (uint64_t x = 0; x < 300; x++)
      if (in(s[0], n[0], x) && !in(s[1], n[1], x)) {
        assert_true(k < ng);
        assert_int_equal(got[k++], x);
      }
    assert_int_equal(k, ng);
    /* seek on a merge of intersections */
    for (int j = 0; j < 4; j++) its[j] = tsdb_postings_from_array(a, s[j], n[j]);
    tsdb_postings *i1 = tsdb_postings_intersect(a, its, 2);
    tsdb_postings *i2 = tsdb_postings_intersect(a, its + 2, 2);
    tsdb_postings *two[] = {i1, i2};
    p = tsdb_postings_merge(a, two, 2);
    uint64_t target = rnd() % 300;
    bool ok = tsdb_postings_seek(p, target);
    uint64_t want = UINT64_MAX;
    for (uint64_t x = target; x < 300 && want == UINT64_MAX; x++)
      if ((in(s[0], n[0], x) && in(s[1], n[1], x)) || (in(s[2], n[2], x) && in(s[3], n[3], x)))
        want = x;
    assert_int_equal(ok, want != UINT64_MAX);
    if (ok) {
      assert_int_equal(tsdb_postings_at(p), want);
      /* seeking backwards stays */
      assert_true(tsdb_postings_seek(p, 0));
      assert_int_equal(tsdb_postings_at(p), want);
    }
    orr_arena_reset(a);
  }
  tsdb_postings *e = tsdb_postings_intersect(a, NULL, 0);
  assert_false(tsdb_postings_next(e));
  orr_arena_destroy(a);
}

/* ---------------------------------------------------------------- test data
 * 12 metrics x 5 jobs x 6 slots = 360 series. instance is absent on some,
 * env only on even jobs, note only on metric_03 (with quotes and spaces),
 * pod unique to each series. */
#define NM 12
#define NJ 5
#define NS 6
#define NSERIES (NM * NJ * NS)
#define T0 1700006400LL /* aligned to 2h */

typedef struct data {
  orr_arena *a;
  labels_set series[NSERIES]; /* sorted as in the index */
  char dir[64];               /* temporary directory */
  char block[256];            /* promtool's block */
  char ulid[32];
} data;

static data D;

static void make_series(orr_arena *a, int m, int j, int s, labels_set *out) {
  labels_label *v = orr_arena_calloc(a, 8, sizeof(*v));
  size_t n = 0;
  v[n++] = (labels_label){"__name__", orr_arena_sprintf(a, "metric_%02d", m)};
  if (j % 2 == 0) v[n++] = (labels_label){"env", s % 2 ? "prod" : "dev"};
  if ((m + j + s) % 7 != 0)
    v[n++] = (labels_label){"instance", orr_arena_sprintf(a, "host-%d.example:9100", (m * 7 + s) % 23)};
  v[n++] = (labels_label){"job", orr_arena_sprintf(a, "job-%d", j)};
  if (m == 3) v[n++] = (labels_label){"note", s % 2 ? "say \"hi\" there" : "plain"};
  /* one value per series: more than 32 values exercises the sampled tables */
  v[n++] = (labels_label){"pod", orr_arena_sprintf(a, "pod-%d", (m * NJ + j) * NS + s)};
  v[n++] = (labels_label){"slot", orr_arena_sprintf(a, "s%d", s)};
  v[n++] = (labels_label){"zone", orr_arena_sprintf(a, "%s-%d", s < 3 ? "eu" : "us", (j + s) % 3)};
  out->v = v;
  out->n = n;
  assert_int_equal(labels_sort(out), 0);
}

static int cmp_set(const void *x, const void *y) { return labels_cmp(x, y); }

static void om_escape(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    if (*s == '\n') {
      fputs("\\n", f);
      continue;
    }
    fputc(*s, f);
  }
}

static int setup_data(void **state) {
  (void)state;
  D.a = orr_arena_new(0);
  snprintf(D.dir, sizeof(D.dir), "/tmp/orr_test_index.XXXXXX");
  if (!mkdtemp(D.dir)) return -1;
  char om[128];
  snprintf(om, sizeof(om), "%s/in.om", D.dir);
  FILE *f = fopen(om, "w");
  int i = 0;
  for (int m = 0; m < NM; m++) {
    fprintf(f, "# TYPE metric_%02d gauge\n", m);
    for (int j = 0; j < NJ; j++)
      for (int s = 0; s < NS; s++, i++) {
        make_series(D.a, m, j, s, &D.series[i]);
        /* a few long series get several chunks (120 samples per chunk) */
        int samples = i % 50 == 0 ? 300 : 3;
        for (int k = 0; k < samples; k++) {
          fprintf(f, "metric_%02d{", m);
          bool first = true;
          for (size_t l = 0; l < D.series[i].n; l++) {
            if (strcmp(D.series[i].v[l].name, "__name__") == 0) continue;
            fprintf(f, "%s%s=\"", first ? "" : ",", D.series[i].v[l].name);
            om_escape(f, D.series[i].v[l].value);
            fputc('"', f);
            first = false;
          }
          fprintf(f, "} %d %lld.%03d\n", i * 10 + k, T0 + k * 15, k % 7);
        }
      }
  }
  fprintf(f, "# EOF\n");
  fclose(f);
  qsort(D.series, NSERIES, sizeof(D.series[0]), cmp_set);

  char out[128], log[128];
  snprintf(out, sizeof(out), "%s/prom", D.dir);
  snprintf(log, sizeof(log), "%s/promtool.log", D.dir);
  char *argv[] = {PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", om, out, NULL};
  if (run(log, argv) != 0) {
    fprintf(stderr, "promtool failed, see %s\n", log);
    return -1;
  }
  DIR *d = opendir(out);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strlen(e->d_name) == 26) {
      memcpy(D.ulid, e->d_name, 27);
      snprintf(D.block, sizeof(D.block), "%s/%s", out, D.ulid);
    }
  if (d) closedir(d);
  return D.block[0] ? 0 : -1;
}

static int teardown_data(void **state) {
  (void)state;
  if (D.dir[0] && !getenv("KEEP")) orr_remove_tree(D.dir);
  orr_arena_destroy(D.a);
  return 0;
}

static size_t find_series(const labels_set *s) {
  size_t lo = 0, hi = NSERIES;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = labels_cmp(&D.series[mid], s);
    if (c == 0) return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return SIZE_MAX;
}

static tsdb_index_reader *open_prom_index(void) {
  char path[512], err[256];
  snprintf(path, sizeof(path), "%s/index", D.block);
  tsdb_index_reader *r = NULL;
  int rc = tsdb_index_open(path, &r, err, sizeof(err));
  if (rc) fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, 0);
  return r;
}

/* ---------------------------------------------------------------- reading Prometheus's index */
static void test_read_prometheus_index(void **state) {
  (void)state;
  tsdb_index_reader *r = open_prom_index();
  orr_arena *a = orr_arena_new(0);
  tsdb_postings *all;
  assert_int_equal(tsdb_index_all_postings(r, a, &all), 0);
  uint64_t *refs;
  size_t n;
  assert_int_equal(tsdb_postings_expand(all, a, &refs, &n), 0);
  assert_int_equal(n, NSERIES);
  /* Series come in label order and match the generated ones. */
  size_t multi = 0;
  for (size_t i = 0; i < n; i++) {
    labels_set ls;
    tsdb_index_chunk_meta *c;
    size_t nc;
    assert_int_equal(tsdb_index_series(r, refs[i], a, &ls, &c, &nc), 0);
    assert_true(labels_equal(&ls, &D.series[i]));
    assert_true(nc >= 1);
    if (nc > 1) multi++;
    for (size_t k = 0; k < nc; k++) {
      assert_true(c[k].mint <= c[k].maxt);
      assert_true(c[k].mint >= T0 * 1000 && c[k].maxt < (T0 + 7200) * 1000);
      if (k) assert_true(c[k].mint > c[k - 1].maxt && c[k].ref > c[k - 1].ref);
    }
  }
  assert_true(multi >= 5); /* the 300-sample series span 3 chunks */
  /* A ref outside the series section is not found. */
  labels_set ls;
  tsdb_index_chunk_meta *c;
  size_t nc;
  assert_int_equal(tsdb_index_series(r, 0, a, &ls, &c, &nc), ORR_ENOTFOUND);
  assert_int_equal(tsdb_index_series(r, UINT64_MAX / 8, a, &ls, &c, &nc), ORR_ENOTFOUND);

  /* Label names and values equal the generated ones. */
  const char **names;
  size_t nn;
  assert_int_equal(tsdb_index_label_names(r, a, &names, &nn), 0);
  const char *want_names[] = {"__name__", "env", "instance", "job", "note", "pod", "slot", "zone"};
  assert_int_equal(nn, 8);
  for (size_t i = 0; i < nn; i++) assert_string_equal(names[i], want_names[i]);
  for (size_t i = 0; i < nn; i++) {
    const char **vals, **lvals;
    size_t nv, nlv;
    assert_int_equal(tsdb_index_label_values(r, names[i], a, &vals, &nv), 0);
    assert_int_equal(tsdb_index_label_index_values(r, names[i], a, &lvals, &nlv), 0);
    assert_int_equal(nv, nlv);
    size_t distinct = 0;
    for (size_t k = 0; k < nv; k++) {
      assert_string_equal(vals[k], lvals[k]);
      if (k) assert_true(strcmp(vals[k - 1], vals[k]) < 0);
      /* Each value occurs in some series, and postings agree with a scan. */
      const char *v1[] = {vals[k]};
      tsdb_postings *p;
      assert_int_equal(tsdb_index_postings(r, names[i], v1, 1, a, &p), 0);
      uint64_t *pr;
      size_t np;
      assert_int_equal(tsdb_postings_expand(p, a, &pr, &np), 0);
      size_t cnt = 0;
      for (size_t s = 0; s < NSERIES; s++) {
        const char *v = labels_get(&D.series[s], names[i]);
        if (v && strcmp(v, vals[k]) == 0) cnt++;
      }
      assert_int_equal(np, cnt);
      distinct += cnt > 0;
    }
    assert_int_equal(distinct, nv);
  }
  const char **vals;
  size_t nv;
  assert_int_equal(tsdb_index_label_values(r, "nope", a, &vals, &nv), 0);
  assert_int_equal(nv, 0);
  assert_int_equal(tsdb_index_label_values(r, "__name__", a, &vals, &nv), 0);
  assert_int_equal(nv, NM);
  /* Symbols are sorted and start with "". */
  assert_true(tsdb_index_num_symbols(r) > 10);
  const char *s0;
  size_t s0n;
  assert_int_equal(tsdb_index_symbol(r, 0, &s0, &s0n), 0);
  assert_int_equal(s0n, 0);
  assert_int_equal(tsdb_index_symbol(r, tsdb_index_num_symbols(r), &s0, &s0n), ORR_ECORRUPT);
  orr_arena_destroy(a);
  tsdb_index_close(r);
}

/* ---------------------------------------------------------------- selection */
typedef struct mdef {
  labels_match_type t;
  const char *name, *value;
} mdef;

static const struct {
  mdef m[3];
  size_t n;
} cases[] = {
    {{{LABELS_MATCH_EQ, "__name__", "metric_03"}}, 1},
    {{{LABELS_MATCH_EQ, "__name__", "metric_03"}, {LABELS_MATCH_NEQ, "job", "job-1"}}, 2},
    {{{LABELS_MATCH_RE, "job", "job-1|job-3"}}, 1},
    {{{LABELS_MATCH_RE, "instance", "host-1.*"}}, 1},
    {{{LABELS_MATCH_RE, "__name__", "metric_0.*"}, {LABELS_MATCH_NRE, "instance", "host-1.*"}}, 2},
    {{{LABELS_MATCH_EQ, "instance", ""}}, 1},
    {{{LABELS_MATCH_EQ, "__name__", "metric_05"}, {LABELS_MATCH_EQ, "instance", ""}}, 2},
    {{{LABELS_MATCH_NEQ, "env", "prod"}}, 1},
    {{{LABELS_MATCH_RE, "env", "prod|"}}, 1},
    {{{LABELS_MATCH_NEQ, "env", ""}}, 1},
    {{{LABELS_MATCH_RE, "zone", ".*"}}, 1},
    {{{LABELS_MATCH_RE, "zone", ".+"}, {LABELS_MATCH_RE, "slot", "s[0-2]"}}, 2},
    {{{LABELS_MATCH_EQ, "nonexistent", "x"}}, 1},
    {{{LABELS_MATCH_NEQ, "nonexistent", "x"}, {LABELS_MATCH_EQ, "job", "job-2"}}, 2},
    {{{LABELS_MATCH_EQ, "__name__", "metric_01"}, {LABELS_MATCH_RE, "slot", "s[0-2]"}}, 2},
    {{{LABELS_MATCH_NRE, "job", "job-[0-3]"}}, 1},
    {{{LABELS_MATCH_RE, "note", ".*\"hi\".*"}}, 1},
    {{{LABELS_MATCH_NRE, "note", "plain"}, {LABELS_MATCH_RE, "zone", "eu-.*"}}, 2},
    {{{LABELS_MATCH_RE, "__name__", "metric_01|metric_07|metric_99"},
      {LABELS_MATCH_NEQ, "zone", "us-1"},
      {LABELS_MATCH_RE, "env", ""}},
     3},
    {{{LABELS_MATCH_RE, "instance", "host-(1|2)\\.example:9100"}, {LABELS_MATCH_NRE, "env", ".+"}},
     2},
    {{{LABELS_MATCH_EQ, "pod", "pod-77"}}, 1},
    {{{LABELS_MATCH_EQ, "pod", "pod-77x"}}, 1},
    {{{LABELS_MATCH_EQ, "pod", "pod-0"}}, 1},
    {{{LABELS_MATCH_EQ, "pod", "pod-99"}}, 1},
    {{{LABELS_MATCH_EQ, "pod", "pod-"}}, 1},
    {{{LABELS_MATCH_EQ, "pod", "zzz"}}, 1},
    {{{LABELS_MATCH_RE, "pod", "pod-1.*"}, {LABELS_MATCH_NEQ, "pod", "pod-123"}}, 2},
    {{{LABELS_MATCH_RE, "pod", "pod-(3|35|359|36)"}}, 1},
    {{{LABELS_MATCH_NRE, "pod", "pod-[0-2].*"}, {LABELS_MATCH_EQ, "job", "job-4"}}, 2},
};

static void check_selection(tsdb_index_reader *r) {
  orr_arena *a = orr_arena_new(0);
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    labels_matcher *ms[3];
    char err[128];
    for (size_t i = 0; i < cases[c].n; i++) {
      ms[i] = labels_matcher_new(cases[c].m[i].t, cases[c].m[i].name, cases[c].m[i].value, err,
                                 sizeof(err));
      assert_non_null(ms[i]);
    }
    bool want[NSERIES];
    size_t nwant = 0;
    for (size_t s = 0; s < NSERIES; s++) {
      want[s] = true;
      for (size_t i = 0; i < cases[c].n; i++) {
        const char *v = labels_get(&D.series[s], cases[c].m[i].name);
        if (!v) v = "";
        if (!labels_matcher_matches(ms[i], v, strlen(v))) want[s] = false;
      }
      nwant += want[s];
    }
    tsdb_postings *p;
    assert_int_equal(tsdb_index_select(r, ms, cases[c].n, a, &p), 0);
    uint64_t *refs;
    size_t n;
    assert_int_equal(tsdb_postings_expand(p, a, &refs, &n), 0);
    if (n != nwant) fprintf(stderr, "case %zu: got %zu series, want %zu\n", c, n, nwant);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++) {
      if (i) assert_true(refs[i] > refs[i - 1]);
      labels_set ls;
      tsdb_index_chunk_meta *ch;
      size_t nc;
      assert_int_equal(tsdb_index_series(r, refs[i], a, &ls, &ch, &nc), 0);
      size_t at = find_series(&ls);
      assert_true(at != SIZE_MAX);
      assert_true(want[at]);
    }
    for (size_t i = 0; i < cases[c].n; i++) labels_matcher_free(ms[i]);
    orr_arena_reset(a);
  }
  /* No matcher selects nothing, as in Prometheus. */
  tsdb_postings *p;
  assert_int_equal(tsdb_index_select(r, NULL, 0, a, &p), 0);
  assert_false(tsdb_postings_next(p));
  orr_arena_destroy(a);
}

static void test_select_prometheus_index(void **state) {
  (void)state;
  tsdb_index_reader *r = open_prom_index();
  check_selection(r);
  tsdb_index_close(r);
}

/* ---------------------------------------------------------------- writing */
/* Writes an index for Prometheus's series and chunk metas through the
 * writer API with Prometheus's own symbols. */
static void write_like_prometheus(tsdb_index_reader *pr, const char *path) {
  orr_arena *a = orr_arena_new(0);
  tsdb_index_writer *w;
  assert_int_equal(tsdb_index_writer_open(path, &w), 0);
  for (uint32_t i = 0; i < tsdb_index_num_symbols(pr); i++) {
    const char *s;
    size_t n;
    assert_int_equal(tsdb_index_symbol(pr, i, &s, &n), 0);
    assert_int_equal(tsdb_index_writer_add_symbol(w, s, n), 0);
  }
  tsdb_postings *all;
  assert_int_equal(tsdb_index_all_postings(pr, a, &all), 0);
  while (tsdb_postings_next(all)) {
    labels_set ls;
    tsdb_index_chunk_meta *c;
    size_t nc;
    uint64_t ref;
    assert_int_equal(tsdb_index_series(pr, tsdb_postings_at(all), a, &ls, &c, &nc), 0);
    assert_int_equal(tsdb_index_writer_add_series(w, &ls, c, nc, &ref), 0);
    assert_int_equal(ref, tsdb_postings_at(all));
  }
  assert_int_equal(tsdb_index_writer_finish(w), 0);
  tsdb_index_writer_free(w);
  orr_arena_destroy(a);
}

static void assert_same_file(const char *p1, const char *p2) {
  size_t n1, n2;
  char *b1 = read_all(p1, &n1), *b2 = read_all(p2, &n2);
  assert_non_null(b1);
  assert_non_null(b2);
  size_t i = 0;
  while (i < n1 && i < n2 && b1[i] == b2[i]) i++;
  if (i != n1 || n1 != n2)
    fprintf(stderr, "%s and %s differ at byte %zu (sizes %zu, %zu)\n", p1, p2, i, n1, n2);
  assert_int_equal(n1, n2);
  assert_int_equal(i, n1);
  free(b1);
  free(b2);
}

static void test_write_byte_identical(void **state) {
  (void)state;
  tsdb_index_reader *pr = open_prom_index();
  char mine[512], prom[512], mine2[512];
  snprintf(mine, sizeof(mine), "%s/index.mine", D.dir);
  snprintf(mine2, sizeof(mine2), "%s/index.mine2", D.dir);
  snprintf(prom, sizeof(prom), "%s/index", D.block);
  write_like_prometheus(pr, mine);
  assert_same_file(prom, mine);

  /* The convenience writer computes the same symbols from the series. */
  orr_arena *a = orr_arena_new(0);
  labels_set *ss = orr_arena_calloc(a, NSERIES, sizeof(*ss));
  tsdb_index_chunk_meta **cs = orr_arena_calloc(a, NSERIES, sizeof(*cs));
  size_t *ns = orr_arena_calloc(a, NSERIES, sizeof(*ns));
  tsdb_postings *all;
  assert_int_equal(tsdb_index_all_postings(pr, a, &all), 0);
  size_t k = 0;
  while (tsdb_postings_next(all)) {
    assert_int_equal(tsdb_index_series(pr, tsdb_postings_at(all), a, &ss[k], &cs[k], &ns[k]), 0);
    k++;
  }
  assert_int_equal(tsdb_index_write_file(mine2, ss, cs, ns, k), 0);
  assert_same_file(prom, mine2);

  /* Our index reads back the same through the reader and selection. */
  char err[256];
  tsdb_index_reader *r;
  assert_int_equal(tsdb_index_open(mine, &r, err, sizeof(err)), 0);
  check_selection(r);
  tsdb_index_close(r);
  orr_arena_destroy(a);
  tsdb_index_close(pr);
}

static void test_writer_misuse(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof(path), "%s/misuse", D.dir);
  tsdb_index_writer *w;
  assert_int_equal(tsdb_index_writer_open(path, &w), 0);
  assert_int_equal(tsdb_index_writer_add_symbol(w, "b", 1), 0);
  assert_int_equal(tsdb_index_writer_add_symbol(w, "a", 1), ORR_EINVAL);
  assert_int_equal(tsdb_index_writer_add_symbol(w, "c", 1), 0);
  labels_label l1[] = {{"b", "c"}}, l0[] = {{"b", "b"}}, lx[] = {{"b", "zz"}};
  labels_set s1 = {l1, 1}, s0 = {l0, 1}, sx = {lx, 1}, empty = {NULL, 0};
  assert_int_equal(tsdb_index_writer_add_series(w, &empty, NULL, 0, NULL), ORR_EINVAL);
  assert_int_equal(tsdb_index_writer_add_series(w, &s1, NULL, 0, NULL), 0);
  assert_int_equal(tsdb_index_writer_add_series(w, &s1, NULL, 0, NULL), ORR_EINVAL);
  assert_int_equal(tsdb_index_writer_add_series(w, &s0, NULL, 0, NULL), ORR_EINVAL);
  assert_int_equal(tsdb_index_writer_add_series(w, &sx, NULL, 0, NULL), ORR_EINVAL);
  assert_int_equal(tsdb_index_writer_add_symbol(w, "d", 1), ORR_EINVAL);
  assert_int_equal(tsdb_index_writer_finish(w), 0);
  tsdb_index_writer_free(w);
  char err[256];
  tsdb_index_reader *r;
  assert_int_equal(tsdb_index_open(path, &r, err, sizeof(err)), 0);
  orr_arena *a = orr_arena_new(0);
  const char *v[] = {"c"};
  tsdb_postings *p;
  assert_int_equal(tsdb_index_postings(r, "b", v, 1, a, &p), 0);
  assert_true(tsdb_postings_next(p));
  assert_false(tsdb_postings_next(p));
  orr_arena_destroy(a);
  tsdb_index_close(r);
  /* An unfinished writer removes its file. */
  assert_int_equal(tsdb_index_writer_open(path, &w), 0);
  tsdb_index_writer_free(w);
  assert_int_equal(access(path, F_OK), -1);
}

static void test_empty_index(void **state) {
  (void)state;
  char path[512], err[256];
  snprintf(path, sizeof(path), "%s/empty", D.dir);
  assert_int_equal(tsdb_index_write_file(path, NULL, NULL, NULL, 0), 0);
  tsdb_index_reader *r;
  assert_int_equal(tsdb_index_open(path, &r, err, sizeof(err)), 0);
  orr_arena *a = orr_arena_new(0);
  tsdb_postings *p;
  assert_int_equal(tsdb_index_all_postings(r, a, &p), 0);
  assert_false(tsdb_postings_next(p));
  const char **names;
  size_t n;
  assert_int_equal(tsdb_index_label_names(r, a, &names, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(tsdb_index_num_symbols(r), 1);
  char em[128];
  labels_matcher *m = labels_matcher_new(LABELS_MATCH_NEQ, "a", "b", em, sizeof(em));
  assert_int_equal(tsdb_index_select(r, &m, 1, a, &p), 0);
  assert_false(tsdb_postings_next(p));
  labels_matcher_free(m);
  orr_arena_destroy(a);
  tsdb_index_close(r);
}

/* ---------------------------------------------------------------- promtool accepts our block */
static void copy_file(const char *from, const char *to) {
  size_t n;
  char *b = read_all(from, &n);
  assert_non_null(b);
  write_all(to, b, n);
  free(b);
}

static void test_promtool_accepts_our_block(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  char err[256], p[512], q[512];
  tsdb_meta pm;
  assert_int_equal(tsdb_meta_read_dir(D.block, a, &pm, err, sizeof(err)), 0);
  char db[128], bd[256];
  snprintf(db, sizeof(db), "%s/db", D.dir);
  snprintf(bd, sizeof(bd), "%s/%s", db, D.ulid);
  mkdir(db, 0755);
  mkdir(bd, 0755);
  snprintf(p, sizeof(p), "%s/chunks", bd);
  mkdir(p, 0755);
  snprintf(p, sizeof(p), "%s/chunks/000001", D.block);
  snprintf(q, sizeof(q), "%s/chunks/000001", bd);
  copy_file(p, q);
  snprintf(q, sizeof(q), "%s/index", bd);
  tsdb_index_reader *pr = open_prom_index();
  write_like_prometheus(pr, q);
  tsdb_index_close(pr);
  pm.has_thanos = true;
  labels_label ext[] = {{"cluster", "eu<1>"}, {"replica", "a"}};
  pm.thanos.labels = (labels_set){ext, 2};
  pm.thanos.source = "sidecar";
  tsdb_meta_file files[] = {{"chunks/000001", 0}, {"index", 0}, {"meta.json", 0}};
  struct stat st;
  snprintf(p, sizeof(p), "%s/chunks/000001", bd);
  stat(p, &st);
  files[0].size_bytes = st.st_size;
  snprintf(p, sizeof(p), "%s/index", bd);
  stat(p, &st);
  files[1].size_bytes = st.st_size;
  pm.thanos.files = files;
  pm.thanos.nfiles = 3;
  assert_int_equal(tsdb_meta_write_dir(bd, &pm), 0);

  snprintf(p, sizeof(p), "%s/list.log", D.dir);
  char *list[] = {PROMTOOL, "tsdb", "list", db, NULL};
  assert_int_equal(run(p, list), 0);
  size_t n;
  char *out = read_all(p, &n);
  assert_non_null(strstr(out, D.ulid));
  char want[64];
  snprintf(want, sizeof(want), "%d", NSERIES);
  assert_non_null(strstr(out, want));
  free(out);
  snprintf(p, sizeof(p), "%s/analyze.log", D.dir);
  char *an[] = {PROMTOOL, "tsdb", "analyze", db, D.ulid, NULL};
  int rc = run(p, an);
  out = read_all(p, &n);
  if (rc != 0) fprintf(stderr, "%s", out);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "Series: 360\n"));
  assert_non_null(strstr(out, "Label names: 8"));
  free(out);
  orr_arena_destroy(a);
}

/* ---------------------------------------------------------------- corruption */
/* Opens |b| and reads everything; returns the first error. */
static int read_everything(const uint8_t *b, size_t n) {
  tsdb_index_reader *r;
  char err[256];
  int rc = tsdb_index_open_bytes(b, n, &r, err, sizeof(err));
  if (rc) return rc;
  orr_arena *a = orr_arena_new(0);
  const char **names;
  size_t nn;
  rc = tsdb_index_label_names(r, a, &names, &nn);
  for (size_t i = 0; rc == 0 && i < nn; i++) {
    const char **vals;
    size_t nv;
    rc = tsdb_index_label_values(r, names[i], a, &vals, &nv);
    if (rc == 0) rc = tsdb_index_label_index_values(r, names[i], a, &vals, &nv);
    if (rc == ORR_ENOTFOUND) rc = ORR_ECORRUPT; /* every name has one */
    for (size_t k = 0; rc == 0 && k < nv; k++) {
      tsdb_postings *p;
      uint64_t *refs;
      size_t np;
      rc = tsdb_index_postings(r, names[i], &vals[k], 1, a, &p);
      if (rc == 0) rc = tsdb_postings_expand(p, a, &refs, &np);
    }
  }
  tsdb_postings *all;
  if (rc == 0) rc = tsdb_index_all_postings(r, a, &all);
  while (rc == 0 && tsdb_postings_next(all)) {
    labels_set ls;
    tsdb_index_chunk_meta *c;
    size_t nc;
    rc = tsdb_index_series(r, tsdb_postings_at(all), a, &ls, &c, &nc);
  }
  for (uint32_t i = 0; rc == 0 && i < tsdb_index_num_symbols(r); i++) {
    const char *s;
    size_t sl;
    rc = tsdb_index_symbol(r, i, &s, &sl);
  }
  orr_arena_destroy(a);
  tsdb_index_close(r);
  return rc;
}

static void test_corrupt_index(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof(path), "%s/index", D.block);
  size_t n;
  uint8_t *orig = (uint8_t *)read_all(path, &n);
  assert_int_equal(read_everything(orig, n), 0);
  /* Truncations. */
  for (size_t l = 0; l < n; l += 1 + l / 64) {
    uint8_t *c = malloc(l + 1);
    memcpy(c, orig, l);
    assert_int_equal(read_everything(c, l), ORR_ECORRUPT);
    free(c);
  }
  /* Bit flips: a flip in a non-zero byte is always caught (zero bytes may
   * be padding, which no CRC covers, as in Prometheus). */
  uint8_t *c = malloc(n);
  size_t caught = 0, tried = 0;
  /* Every byte of the head (header, symbols, first series), then every
   * third byte, to keep the run short under sanitizers. */
  for (size_t i = 0; i < n; i += i < 2048 ? 1 : 3) {
    memcpy(c, orig, n);
    c[i] ^= (uint8_t)(1u << (i % 8));
    int rc = read_everything(c, n);
    if (i == 4) {
      assert_int_equal(rc, ORR_EUNSUPPORTED); /* the version byte */
      continue;
    }
    if (orig[i] != 0) {
      if (rc != ORR_ECORRUPT) fprintf(stderr, "flip at %zu not caught (rc %d)\n", i, rc);
      assert_int_equal(rc, ORR_ECORRUPT);
    } else {
      assert_true(rc == 0 || rc == ORR_ECORRUPT);
    }
    tried++;
    caught += rc == ORR_ECORRUPT;
  }
  assert_true(caught > tried / 2);
  assert_true(strlen(tsdb_index_last_error()) > 0);
  free(c);
  free(orig);
}

/* ---------------------------------------------------------------- meta.json and ULIDs */
static void test_meta_prometheus(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  char path[512], err[256];
  snprintf(path, sizeof(path), "%s/meta.json", D.block);
  size_t n;
  char *orig = read_all(path, &n);
  tsdb_meta m;
  assert_int_equal(tsdb_meta_parse(orig, n, a, &m, err, sizeof(err)), 0);
  char u[27];
  tsdb_ulid_format(&m.ulid, u);
  assert_string_equal(u, D.ulid);
  assert_int_equal(m.num_series, NSERIES);
  assert_int_equal(m.level, 1);
  assert_int_equal(m.nsources, 1);
  assert_int_equal(tsdb_ulid_cmp(&m.sources[0], &m.ulid), 0);
  assert_true(m.min_time == T0 * 1000);
  assert_false(m.has_thanos);
  /* Our encoding is Prometheus's plus a trailing newline. */
  orr_buf b = {0};
  assert_int_equal(tsdb_meta_encode(&m, &b), 0);
  assert_int_equal(b.len, n + 1);
  assert_memory_equal(b.data, orig, n);
  orr_buf_free(&b);
  free(orig);
  orr_arena_destroy(a);
}

static void test_meta_thanos_roundtrip(void **state) {
  (void)state;
  const char *in =
      "{\n\t\"ulid\": \"01HZZZZZZZZZZZZZZZZZZZZZZZ\",\n\t\"minTime\": -5,\n\t\"maxTime\": 7200000,\n"
      "\t\"stats\": {},\n\t\"compaction\": {\n\t\t\"level\": 2,\n\t\t\"sources\": [\n"
      "\t\t\t\"01BX5ZZKBKACTAV9WEVGEMMVRZ\",\n\t\t\t\"01BX5ZZKBKACTAV9WEVGEMMVS0\"\n\t\t],\n"
      "\t\t\"parents\": [\n\t\t\t{\n\t\t\t\t\"ulid\": \"01BX5ZZKBKACTAV9WEVGEMMVRZ\",\n"
      "\t\t\t\t\"minTime\": 0,\n\t\t\t\t\"maxTime\": 10\n\t\t\t}\n\t\t]\n\t},\n"
      "\t\"version\": 1,\n\t\"thanos\": {\n\t\t\"labels\": {\n\t\t\t\"a\": \"x\\u003cy\",\n"
      "\t\t\t\"b\": \"\\u2028\"\n\t\t},\n\t\t\"downsample\": {\n\t\t\t\"resolution\": 300000\n"
      "\t\t},\n\t\t\"source\": \"compactor\",\n\t\t\"segment_files\": [\n\t\t\t\"000001\"\n\t\t],\n"
      "\t\t\"files\": [\n\t\t\t{\n\t\t\t\t\"rel_path\": \"chunks/000001\",\n"
      "\t\t\t\t\"size_bytes\": 42\n\t\t\t},\n\t\t\t{\n\t\t\t\t\"rel_path\": \"meta.json\"\n"
      "\t\t\t}\n\t\t]\n\t}\n}\n";
  orr_arena *a = orr_arena_new(0);
  tsdb_meta m;
  char err[256];
  assert_int_equal(tsdb_meta_parse(in, strlen(in), a, &m, err, sizeof(err)), 0);
  assert_true(m.has_thanos);
  assert_int_equal(m.thanos.downsample_resolution, 300000);
  assert_string_equal(m.thanos.labels.v[0].value, "x<y");
  assert_int_equal(m.nparents, 1);
  assert_int_equal(m.thanos.nfiles, 2);
  assert_int_equal(m.thanos.files[0].size_bytes, 42);
  orr_buf b = {0};
  assert_int_equal(tsdb_meta_encode(&m, &b), 0);
  assert_string_equal(b.data, in);
  orr_buf_free(&b);
  /* Malformed inputs. */
  const char *bad[] = {"", "{", "[]", "{\"ulid\": 1, \"version\": 1}",
                       "{\"ulid\": \"01HZZZZZZZZZZZZZZZZZZZZZZZ\", \"version\": 2}",
                       "{\"ulid\": \"81HZZZZZZZZZZZZZZZZZZZZZZZ\", \"version\": 1}",
                       "{\"ulid\": \"01HZZZZZZZZZZZZZZZZZZZZZZZ\", \"version\": 1, \"thanos\": 3}",
                       "{\"ulid\": \"01HZZZZZZZZZZZZZZZZZZZZZZZ\", \"version\": 1, \"minTime\": \"x\"}"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(tsdb_meta_parse(bad[i], strlen(bad[i]), a, &m, err, sizeof(err)),
                     ORR_ECORRUPT);
  orr_arena_destroy(a);
}

static void test_ulid(void **state) {
  (void)state;
  tsdb_ulid u, v;
  char s[27];
  assert_int_equal(tsdb_ulid_parse("01BX5ZZKBKACTAV9WEVGEMMVRZ", 26, &u), 0);
  tsdb_ulid_format(&u, s);
  assert_string_equal(s, "01BX5ZZKBKACTAV9WEVGEMMVRZ");
  assert_int_equal(tsdb_ulid_parse("01bx5zzkbkactav9wevgemmvrz", 26, &v), 0);
  assert_int_equal(tsdb_ulid_cmp(&u, &v), 0);
  assert_int_equal(tsdb_ulid_time(&u), 1508808576371LL); /* oklog/ulid's example */
  assert_int_equal(tsdb_ulid_parse("01BX5ZZKBKACTAV9WEVGEMMVR", 25, &v), ORR_EINVAL);
  assert_int_equal(tsdb_ulid_parse("01BX5ZZKBKACTAV9WEVGEMMVRU", 26, &v), ORR_EINVAL);
  assert_int_equal(tsdb_ulid_parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ", 26, &v), ORR_EINVAL);
  assert_int_equal(tsdb_ulid_parse("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", 26, &v), 0);
  for (int i = 0; i < 16; i++) assert_int_equal(v.b[i], 0xff);
  assert_int_equal(tsdb_ulid_new(1700000000123LL, &u), 0);
  assert_int_equal(tsdb_ulid_new(1700000000124LL, &v), 0);
  assert_int_equal(tsdb_ulid_time(&u), 1700000000123LL);
  assert_true(tsdb_ulid_cmp(&u, &v) < 0);
  tsdb_ulid_format(&u, s);
  tsdb_ulid w;
  assert_int_equal(tsdb_ulid_parse(s, 26, &w), 0);
  assert_int_equal(tsdb_ulid_cmp(&u, &w), 0);
}

/* ---------------------------------------------------------------- tombstones */
static void test_tombstones(void **state) {
  (void)state;
  /* promtool writes an empty tombstones file; we read and rewrite it exactly. */
  char path[512];
  snprintf(path, sizeof(path), "%s/tombstones", D.block);
  size_t n;
  char *orig = read_all(path, &n);
  tsdb_tombstones t = {0};
  assert_int_equal(tsdb_tombstones_decode(orig, n, &t), 0);
  assert_int_equal(t.n, 0);
  orr_buf b = {0};
  assert_int_equal(tsdb_tombstones_encode(&t, &b), 0);
  assert_int_equal(b.len, n);
  assert_memory_equal(b.data, orig, n);
  free(orig);

  /* Intervals merge when they overlap or touch, as Prometheus's do. */
  assert_int_equal(tsdb_tombstones_add(&t, 7, (tsdb_interval){10, 20}), 0);
  assert_int_equal(tsdb_tombstones_add(&t, 7, (tsdb_interval){30, 40}), 0);
  assert_int_equal(tsdb_tombstones_add(&t, 7, (tsdb_interval){21, 25}), 0);
  assert_int_equal(tsdb_tombstones_add(&t, 3, (tsdb_interval){INT64_MIN, -1}), 0);
  assert_int_equal(tsdb_tombstones_add(&t, 3, (tsdb_interval){5, INT64_MAX}), 0);
  assert_int_equal(tsdb_tombstones_add(&t, 3, (tsdb_interval){-1, 6}), 0);
  const tsdb_intervals *iv = tsdb_tombstones_get(&t, 7);
  assert_non_null(iv);
  assert_int_equal(iv->n, 2);
  assert_int_equal(iv->v[0].mint, 10);
  assert_int_equal(iv->v[0].maxt, 25);
  assert_true(tsdb_intervals_contains(iv, 35));
  assert_false(tsdb_intervals_contains(iv, 26));
  iv = tsdb_tombstones_get(&t, 3);
  assert_int_equal(iv->n, 1);
  assert_true(iv->v[0].mint == INT64_MIN && iv->v[0].maxt == INT64_MAX);
  assert_null(tsdb_tombstones_get(&t, 4));
  int64_t ts[] = {5, 10, 15, 26, 29, 30, 41};
  double vals[] = {0, 1, 2, 3, 4, 5, 6};
  size_t k = tsdb_intervals_apply(tsdb_tombstones_get(&t, 7), ts, vals, 7);
  assert_int_equal(k, 4);
  assert_int_equal(ts[0], 5);
  assert_int_equal(ts[1], 26);
  assert_int_equal(ts[3], 41);
  assert_true(vals[3] == 6);

  orr_buf_reset(&b);
  assert_int_equal(tsdb_tombstones_encode(&t, &b), 0);
  tsdb_tombstones u = {0};
  assert_int_equal(tsdb_tombstones_decode(b.data, b.len, &u), 0);
  assert_int_equal(u.n, 2);
  assert_int_equal(tsdb_tombstones_get(&u, 7)->n, 2);
  tsdb_tombstones_free(&u);
  /* Every truncation and every bit flip is rejected. */
  for (size_t l = 0; l < b.len; l++) {
    tsdb_tombstones x = {0};
    assert_int_equal(tsdb_tombstones_decode(b.data, l, &x), ORR_ECORRUPT);
    tsdb_tombstones_free(&x);
  }
  for (size_t i = 0; i < b.len; i++) {
    if (i == 4) continue; /* version byte: not covered by the CRC */
    b.data[i] ^= 1;
    tsdb_tombstones x = {0};
    assert_int_equal(tsdb_tombstones_decode(b.data, b.len, &x), ORR_ECORRUPT);
    tsdb_tombstones_free(&x);
    b.data[i] ^= 1;
  }
  /* Files in a directory. */
  char dir[512];
  snprintf(dir, sizeof(dir), "%s/tomb", D.dir);
  mkdir(dir, 0755);
  tsdb_tombstones_free(&u);
  assert_int_equal(tsdb_tombstones_read_dir(dir, &u), 0); /* missing: empty */
  assert_int_equal(u.n, 0);
  assert_int_equal(tsdb_tombstones_write_dir(dir, &t), 0);
  assert_int_equal(tsdb_tombstones_read_dir(dir, &u), 0);
  assert_int_equal(u.n, 2);
  tsdb_tombstones_free(&u);
  tsdb_tombstones_free(&t);
  orr_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_postings_ops),
      cmocka_unit_test(test_read_prometheus_index),
      cmocka_unit_test(test_select_prometheus_index),
      cmocka_unit_test(test_write_byte_identical),
      cmocka_unit_test(test_writer_misuse),
      cmocka_unit_test(test_empty_index),
      cmocka_unit_test(test_promtool_accepts_our_block),
      cmocka_unit_test(test_corrupt_index),
      cmocka_unit_test(test_meta_prometheus),
      cmocka_unit_test(test_meta_thanos_roundtrip),
      cmocka_unit_test(test_ulid),
      cmocka_unit_test(test_tombstones),
  };
  return cmocka_run_group_tests(tests, setup_data, teardown_data);
}
