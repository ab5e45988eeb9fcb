/* test_block.c: the block writer and reader round trip (samples bit-exact,
 * stale NaNs included), selection by matchers and time range, tombstones,
 * temporary-directory behaviour, and verification catching corruption. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsdb.h"

#define STALE_NAN_BITS 0x7ff0000000000002ull
#define T0 ((int64_t)1700000000000)

static double from_bits(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof(d));
  return d;
}
static uint64_t to_bits(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof(b));
  return b;
}

static char *make_tmpdir(void) {
  char tmpl[] = "/tmp/orr_test_block_XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

/* ---------------------------------------------------------------- fixture
 * 60 series: metric m0..m2, job a/b, instance i0..i9; each with its own
 * sample pattern. Samples are a deterministic function of (series, index). */
#define NSERIES 60

typedef struct fseries {
  labels_label l[3];
  labels_set ls;
  char name[8], inst[8];
  tsdb_sample *s;
  size_t n;
} fseries;

static fseries fx[NSERIES];

static int fs_cmp(const void *x, const void *y) {
  return labels_cmp(&((const fseries *)x)->ls, &((const fseries *)y)->ls);
}

static void fixture_build(void) {
  for (int i = 0; i < NSERIES; i++) {
    fseries *f = &fx[i];
    snprintf(f->name, sizeof(f->name), "m%d", i % 3);
    snprintf(f->inst, sizeof(f->inst), "i%d", i / 6);
    f->l[0] = (labels_label){"__name__", f->name};
    f->l[1] = (labels_label){"instance", f->inst};
    f->l[2] = (labels_label){"job", (i / 3) % 2 ? "b" : "a"};
    f->ls = (labels_set){f->l, 3};
    /* 3 hours at an irregular ~15s step: several chunks, a 2h boundary. */
    f->n = 600 + (size_t)i * 3;
    f->s = calloc(f->n, sizeof(*f->s));
    int64_t t = T0 + i * 7;
    for (size_t k = 0; k < f->n; k++) {
      t += 15000 + (int64_t)((k * 7919 + (size_t)i) % 1000) - 500;
      f->s[k].t = t;
      if (k % 97 == 96)
        f->s[k].v = from_bits(STALE_NAN_BITS);
      else if (i % 3 == 0)
        f->s[k].v = (double)(k * (size_t)(i + 1)); /* counter */
      else
        f->s[k].v = sin((double)k / 10.0) * 1e3 + (double)i / 7.0; /* gauge */
    }
  }
  qsort(fx, NSERIES, sizeof(fx[0]), fs_cmp);
  /* labels point into the moved structs: fix them up */
  for (int i = 0; i < NSERIES; i++) {
    fx[i].l[0].value = fx[i].name;
    fx[i].l[1].value = fx[i].inst;
    fx[i].ls.v = fx[i].l;
  }
}

static void fixture_free(void) {
  for (int i = 0; i < NSERIES; i++) free(fx[i].s);
}

/* Writes the fixture as a block under |parent|; returns its directory. */
static char *write_fixture(const char *parent, const tsdb_block_writer_opts *o) {
  tsdb_block_writer *w;
  char err[512] = "";
  int rc = tsdb_block_writer_open(parent, o, &w, err, sizeof(err));
  if (rc) fail_msg("open: %s", err);
  for (int i = 0; i < NSERIES; i++)
    assert_int_equal(tsdb_block_writer_add_samples(w, &fx[i].ls, fx[i].s, fx[i].n), 0);
  tsdb_ulid u;
  rc = tsdb_block_writer_commit(w, &u, err, sizeof(err));
  if (rc) fail_msg("commit: %s", err);
  char name[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, name);
  char *dir = malloc(strlen(parent) + 40);
  sprintf(dir, "%s/%s", parent, name);
  return dir;
}

static int fixture_index(const labels_set *ls) {
  for (int i = 0; i < NSERIES; i++)
    if (labels_equal(&fx[i].ls, ls)) return i;
  return -1;
}

typedef struct collected {
  char lines[64][512];
  size_t n;
} collected;

static void collect_report(void *arg, const char *msg) {
  collected *c = arg;
  if (c->n < 64) snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s", msg);
  if (getenv("TEST_BLOCK_VERBOSE")) fprintf(stderr, "verify: %s\n", msg);
}

/* ---------------------------------------------------------------- tests */

static void test_roundtrip(void **state) {
  (void)state;
  char *parent = make_tmpdir();
  char *dir = write_fixture(parent, NULL);
  tsdb_block *b;
  char err[512] = "";
  int rc = tsdb_block_open(dir, &b, err, sizeof(err));
  if (rc) fail_msg("%s", err);

  const tsdb_meta *m = tsdb_block_meta(b);
  uint64_t total = 0;
  int64_t mint = INT64_MAX, maxt = INT64_MIN;
  for (int i = 0; i < NSERIES; i++) {
    total += fx[i].n;
    if (fx[i].s[0].t < mint) mint = fx[i].s[0].t;
    if (fx[i].s[fx[i].n - 1].t > maxt) maxt = fx[i].s[fx[i].n - 1].t;
  }
  assert_int_equal(m->num_series, NSERIES);
  assert_int_equal(m->num_samples, total);
  assert_int_equal(m->min_time, mint);
  assert_int_equal(m->max_time, maxt + 1);
  assert_int_equal(m->level, 1);
  assert_int_equal(m->nsources, 1);
  assert_int_equal(tsdb_ulid_cmp(&m->sources[0], &m->ulid), 0);
  assert_int_equal(m->version, 1);
  assert_false(m->has_thanos);

  orr_arena *a = orr_arena_new(0);
  tsdb_series_set *ss;
  assert_int_equal(tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss), 0);
  const tsdb_series *s;
  int k = 0;
  uint64_t chunks = 0;
  while ((rc = tsdb_series_set_next(ss, &s)) == 1) {
    assert_true(k < NSERIES);
    assert_true(labels_equal(&s->labels, &fx[k].ls)); /* label order */
    for (size_t c = 0; c < s->nchunks; c++) {
      /* head-style cutting: at most 240 samples, never across a 2h boundary */
      uint16_t cnt;
      assert_int_equal(tsdb_xor_num_samples(s->chunks[c].data, s->chunks[c].len, &cnt), 0);
      assert_true(cnt <= 240);
      assert_int_equal(s->chunks[c].mint / TSDB_BLOCK_CHUNK_RANGE,
                       s->chunks[c].maxt / TSDB_BLOCK_CHUNK_RANGE);
    }
    chunks += s->nchunks;
    tsdb_series_iter it;
    tsdb_series_iter_init(&it, s);
    size_t j = 0;
    while ((rc = tsdb_series_iter_next(&it)) == 1) {
      assert_true(j < fx[k].n);
      assert_int_equal(it.t, fx[k].s[j].t);
      assert_int_equal(to_bits(it.v), to_bits(fx[k].s[j].v)); /* stale NaN bits too */
      j++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(j, fx[k].n);
    k++;
  }
  assert_int_equal(rc, 0);
  assert_int_equal(k, NSERIES);
  assert_int_equal(chunks, m->num_chunks);
  assert_true(chunks > NSERIES * 4);
  tsdb_series_set_close(ss);

  /* Clean verification. */
  collected col = {0};
  tsdb_verify_stats st;
  assert_int_equal(tsdb_block_verify(dir, collect_report, &col, &st), 0);
  assert_int_equal(col.n, 0);
  assert_int_equal(st.series, NSERIES);
  assert_int_equal(st.samples, total);
  assert_int_equal(st.postings, NSERIES * 3);

  orr_arena_destroy(a);
  tsdb_block_close(b);
  orr_remove_tree(parent);
  free(dir);
  free(parent);
}

static labels_matcher *mk(labels_match_type t, const char *n, const char *v) {
  char err[128];
  labels_matcher *m = labels_matcher_new(t, n, v, err, sizeof(err));
  assert_non_null(m);
  return m;
}

static void test_matchers_and_labels(void **state) {
  (void)state;
  char *parent = make_tmpdir();
  char *dir = write_fixture(parent, NULL);
  tsdb_block *b;
  char err[512] = "";
  assert_int_equal(tsdb_block_open(dir, &b, err, sizeof(err)), 0);
  orr_arena *a = orr_arena_new(0);

  labels_matcher *ms[2] = {mk(LABELS_MATCH_EQ, "job", "a"), mk(LABELS_MATCH_RE, "__name__", "m0|m2")};
  tsdb_series_set *ss;
  assert_int_equal(tsdb_block_select(b, ms, 2, INT64_MIN, INT64_MAX, a, &ss), 0);
  const tsdb_series *s;
  int n = 0, rc;
  labels_set prev = {0};
  orr_arena *pa = orr_arena_new(0);
  while ((rc = tsdb_series_set_next(ss, &s)) == 1) {
    assert_string_equal(labels_get(&s->labels, "job"), "a");
    const char *nm = labels_get(&s->labels, "__name__");
    assert_true(!strcmp(nm, "m0") || !strcmp(nm, "m2"));
    if (n) assert_true(labels_cmp(&prev, &s->labels) < 0);
    labels_copy(pa, &s->labels, &prev);
    n++;
  }
  assert_int_equal(rc, 0);
  int want = 0;
  for (int i = 0; i < NSERIES; i++)
    if (!strcmp(fx[i].l[2].value, "a") && strcmp(fx[i].name, "m1")) want++;
  assert_int_equal(n, want);
  tsdb_series_set_close(ss);

  /* Label names and values, whole block and with matchers. */
  const char **v;
  size_t nv;
  assert_int_equal(tsdb_block_label_names(b, NULL, 0, a, &v, &nv), 0);
  assert_int_equal(nv, 3);
  assert_string_equal(v[0], "__name__");
  assert_string_equal(v[1], "instance");
  assert_string_equal(v[2], "job");
  assert_int_equal(tsdb_block_label_values(b, "instance", NULL, 0, a, &v, &nv), 0);
  assert_int_equal(nv, 10);
  /* instance i0 holds series 0..5: jobs a (0-2) and b (3-5) */
  labels_matcher *m2[1] = {mk(LABELS_MATCH_EQ, "instance", "i1")};
  assert_int_equal(tsdb_block_label_values(b, "job", m2, 1, a, &v, &nv), 0);
  assert_int_equal(nv, 2);
  labels_matcher *m3[1] = {mk(LABELS_MATCH_EQ, "__name__", "m1")};
  assert_int_equal(tsdb_block_label_values(b, "__name__", m3, 1, a, &v, &nv), 0);
  assert_int_equal(nv, 1);
  assert_string_equal(v[0], "m1");
  labels_matcher *m4[1] = {mk(LABELS_MATCH_EQ, "job", "nope")};
  assert_int_equal(tsdb_block_label_names(b, m4, 1, a, &v, &nv), 0);
  assert_int_equal(nv, 0);

  labels_matcher_free(ms[0]);
  labels_matcher_free(ms[1]);
  labels_matcher_free(m2[0]);
  labels_matcher_free(m3[0]);
  labels_matcher_free(m4[0]);
  orr_arena_destroy(pa);
  orr_arena_destroy(a);
  tsdb_block_close(b);
  orr_remove_tree(parent);
  free(dir);
  free(parent);
}

static void test_time_range(void **state) {
  (void)state;
  char *parent = make_tmpdir();
  char *dir = write_fixture(parent, NULL);
  tsdb_block *b;
  char err[512] = "";
  assert_int_equal(tsdb_block_open(dir, &b, err, sizeof(err)), 0);
  orr_arena *a = orr_arena_new(0);
  int64_t lo = T0 + 3600 * 1000, hi = T0 + 3600 * 1000 + 10 * 60 * 1000;
  tsdb_series_set *ss;
  assert_int_equal(tsdb_block_select(b, NULL, 0, lo, hi, a, &ss), 0);
  const tsdb_series *s;
  int rc, nseries = 0;
  while ((rc = tsdb_series_set_next(ss, &s)) == 1) {
    int k = fixture_index(&s->labels);
    assert_true(k >= 0);
    for (size_t c = 0; c < s->nchunks; c++) {
      assert_true(s->chunks[c].maxt >= lo);
      assert_true(s->chunks[c].mint <= hi);
    }
    size_t want = 0;
    for (size_t j = 0; j < fx[k].n; j++)
      if (fx[k].s[j].t >= lo && fx[k].s[j].t <= hi) want++;
    tsdb_series_iter it;
    tsdb_series_iter_init(&it, s);
    size_t got = 0;
    while ((rc = tsdb_series_iter_next(&it)) == 1) {
      assert_true(it.t >= lo && it.t <= hi);
      got++;
    }
    assert_int_equal(got, want);
    nseries++;
  }
  assert_int_equal(nseries, NSERIES);
  tsdb_series_set_close(ss);
  /* Entirely after the data: nothing. */
  assert_int_equal(tsdb_block_select(b, NULL, 0, T0 + 86400000, T0 + 2 * 86400000, a, &ss), 0);
  assert_int_equal(tsdb_series_set_next(ss, &s), 0);
  tsdb_series_set_close(ss);
  orr_arena_destroy(a);
  tsdb_block_close(b);
  orr_remove_tree(parent);
  free(dir);
  free(parent);
}

static void test_tombstones(void **state) {
  (void)state;
  char *parent = make_tmpdir();
  char *dir = write_fixture(parent, NULL);
  /* Find the refs of the first two series. */
  tsdb_block *b;
  char err[512] = "";
  assert_int_equal(tsdb_block_open(dir, &b, err, sizeof(err)), 0);
  orr_arena *a = orr_arena_new(0);
  tsdb_series_set *ss;
  const tsdb_series *s;
  assert_int_equal(tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss), 0);
  assert_int_equal(tsdb_series_set_next(ss, &s), 1);
  uint64_t ref0 = s->ref;
  int64_t c0_mint = s->chunks[0].mint, c0_maxt = s->chunks[0].maxt;
  size_t nchunks0 = s->nchunks;
  assert_int_equal(tsdb_series_set_next(ss, &s), 1);
  uint64_t ref1 = s->ref;
  tsdb_series_set_close(ss);
  tsdb_block_close(b);

  /* Series 0: its first chunk wholly deleted plus a middle range; series 1:
   * everything. */
  int64_t dlo = T0 + 5000000, dhi = T0 + 6000000;
  tsdb_tombstones t = {0};
  assert_int_equal(tsdb_tombstones_add(&t, ref0, (tsdb_interval){c0_mint, c0_maxt}), 0);
  assert_int_equal(tsdb_tombstones_add(&t, ref0, (tsdb_interval){dlo, dhi}), 0);
  assert_int_equal(tsdb_tombstones_add(&t, ref1, (tsdb_interval){INT64_MIN, INT64_MAX}), 0);
  assert_int_equal(tsdb_tombstones_write_dir(dir, &t), 0);
  tsdb_tombstones_free(&t);

  assert_int_equal(tsdb_block_open(dir, &b, err, sizeof(err)), 0);
  assert_int_equal(tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss), 0);
  assert_int_equal(tsdb_series_set_next(ss, &s), 1);
  assert_int_equal(s->ref, ref0);
  assert_int_equal(s->nchunks, nchunks0 - 1); /* wholly deleted chunk dropped */
  assert_non_null(s->deleted);
  size_t want = 0;
  for (size_t j = 0; j < fx[0].n; j++) {
    int64_t tt = fx[0].s[j].t;
    if (!(tt >= c0_mint && tt <= c0_maxt) && !(tt >= dlo && tt <= dhi)) want++;
  }
  tsdb_series_iter it;
  tsdb_series_iter_init(&it, s);
  size_t got = 0;
  int rc;
  while ((rc = tsdb_series_iter_next(&it)) == 1) {
    assert_false(it.t >= dlo && it.t <= dhi);
    got++;
  }
  assert_int_equal(rc, 0);
  assert_int_equal(got, want);
  /* Series 1 is gone: the next one is series 2. */
  assert_int_equal(tsdb_series_set_next(ss, &s), 1);
  assert_true(labels_equal(&s->labels, &fx[2].ls));
  tsdb_series_set_close(ss);
  tsdb_block_close(b);
  orr_arena_destroy(a);
  orr_remove_tree(parent);
  free(dir);
  free(parent);
}

static void test_tmp_dir_and_list(void **state) {
  (void)state;
  char *parent = make_tmpdir();
  tsdb_meta th;
  memset(&th, 0, sizeof(th));
  labels_label ext[1] = {{"replica", "r1"}};
  th.has_thanos = true;
  th.thanos.version = 1;
  th.thanos.labels = (labels_set){ext, 1};
  th.thanos.downsample_resolution = 0;
  th.thanos.source = "sidecar";
  tsdb_block_writer_opts o = {.thanos = &th};
  char *dir = write_fixture(parent, &o);

  /* A writer that is aborted leaves nothing behind. */
  tsdb_block_writer *w;
  char err[512] = "";
  assert_int_equal(tsdb_block_writer_open(parent, NULL, &w, err, sizeof(err)), 0);
  assert_int_equal(tsdb_block_writer_add_samples(w, &fx[0].ls, fx[0].s, fx[0].n), 0);
  /* While open, the temporary directory exists and is not listed. */
  orr_arena *a = orr_arena_new(0);
  tsdb_block_entry *e;
  size_t n;
  assert_int_equal(tsdb_block_list(parent, a, &e, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 1);
  assert_string_equal(e[0].dir, dir);
  assert_true(e[0].meta_ok);
  assert_true(e[0].meta.has_thanos);
  assert_string_equal(e[0].meta.thanos.source, "sidecar");
  assert_string_equal(labels_get(&e[0].meta.thanos.labels, "replica"), "r1");
  assert_true(e[0].size_bytes > 1000);
  int tmp_seen = 0;
  DIR *d = opendir(parent);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l > strlen(TSDB_BLOCK_TMP_SUFFIX) &&
        !strcmp(de->d_name + l - strlen(TSDB_BLOCK_TMP_SUFFIX), TSDB_BLOCK_TMP_SUFFIX))
      tmp_seen++;
  }
  closedir(d);
  assert_int_equal(tmp_seen, 1);
  tsdb_block_writer_abort(w);
  d = opendir(parent);
  int entries = 0;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.') entries++;
  closedir(d);
  assert_int_equal(entries, 1);

  /* A leftover temporary directory with a whole block inside (a crash just
   * before the rename) is still not a block. */
  char cmd[8192];
  snprintf(cmd, sizeof(cmd), "cp -r %s %s%s", dir, dir, TSDB_BLOCK_TMP_SUFFIX);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(tsdb_block_list(parent, a, &e, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 1);

  /* Out of order series are refused. */
  assert_int_equal(tsdb_block_writer_open(parent, NULL, &w, err, sizeof(err)), 0);
  assert_int_equal(tsdb_block_writer_add_samples(w, &fx[1].ls, fx[1].s, fx[1].n), 0);
  assert_int_equal(tsdb_block_writer_add_samples(w, &fx[0].ls, fx[0].s, fx[0].n), ORR_EINVAL);
  assert_int_not_equal(tsdb_block_writer_commit(w, NULL, err, sizeof(err)), 0);
  assert_int_equal(tsdb_block_list(parent, a, &e, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 1);

  orr_arena_destroy(a);
  orr_remove_tree(parent);
  free(dir);
  free(parent);
}

/* Flips one bit at |off| of |path| (off < 0: from the end). */
static void flip(const char *path, long off) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  struct stat st;
  fstat(fd, &st);
  if (off < 0) off += st.st_size;
  unsigned char c;
  assert_int_equal(pread(fd, &c, 1, off), 1);
  c ^= 0x10;
  assert_int_equal(pwrite(fd, &c, 1, off), 1);
  close(fd);
}

static bool any_line(const collected *c, const char *needle) {
  for (size_t i = 0; i < c->n; i++)
    if (strstr(c->lines[i], needle)) return true;
  return false;
}

static void test_verify_catches(void **state) {
  (void)state;
  char *parent = make_tmpdir();
  char path[4096];
  collected col;
  tsdb_verify_stats st;

  /* A bit flip inside a chunk. */
  char *dir = write_fixture(parent, NULL);
  snprintf(path, sizeof(path), "%s/chunks/000001", dir);
  flip(path, 200);
  memset(&col, 0, sizeof(col));
  assert_int_equal(tsdb_block_verify(dir, collect_report, &col, &st), ORR_ECORRUPT);
  assert_true(st.problems > 0);
  assert_true(any_line(&col, "chunks"));
  orr_remove_tree(dir);
  free(dir);

  /* A bit flip in the index series section (just after the header). */
  dir = write_fixture(parent, NULL);
  snprintf(path, sizeof(path), "%s/index", dir);
  tsdb_index_reader *r;
  char err[512];
  assert_int_equal(tsdb_index_open(path, &r, err, sizeof(err)), 0);
  tsdb_index_toc toc;
  tsdb_index_get_toc(r, &toc);
  tsdb_index_close(r);
  flip(path, (long)toc.series + 16 * 3 + 2);
  memset(&col, 0, sizeof(col));
  assert_int_equal(tsdb_block_verify(dir, collect_report, &col, &st), ORR_ECORRUPT);
  assert_true(any_line(&col, "/index"));
  orr_remove_tree(dir);
  free(dir);

  /* A bit flip in the index TOC. */
  dir = write_fixture(parent, NULL);
  snprintf(path, sizeof(path), "%s/index", dir);
  flip(path, -10);
  memset(&col, 0, sizeof(col));
  assert_int_equal(tsdb_block_verify(dir, collect_report, &col, &st), ORR_ECORRUPT);
  assert_true(any_line(&col, "TOC"));
  orr_remove_tree(dir);
  free(dir);

  /* A truncated chunk segment. */
  dir = write_fixture(parent, NULL);
  snprintf(path, sizeof(path), "%s/chunks/000001", dir);
  struct stat sb;
  stat(path, &sb);
  assert_int_equal(truncate(path, sb.st_size / 2), 0);
  memset(&col, 0, sizeof(col));
  assert_int_equal(tsdb_block_verify(dir, collect_report, &col, &st), ORR_ECORRUPT);
  assert_true(any_line(&col, "000001"));
  /* and the reader names it when selecting */
  tsdb_block *b;
  assert_int_equal(tsdb_block_open(dir, &b, err, sizeof(err)), 0);
  orr_arena *a = orr_arena_new(0);
  tsdb_series_set *ss;
  const tsdb_series *s;
  assert_int_equal(tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss), 0);
  int rc;
  while ((rc = tsdb_series_set_next(ss, &s)) == 1) {
  }
  assert_int_equal(rc, ORR_ECORRUPT);
  assert_non_null(strstr(tsdb_series_set_error(ss), dir));
  tsdb_series_set_close(ss);
  orr_arena_destroy(a);
  tsdb_block_close(b);
  orr_remove_tree(dir);
  free(dir);

  /* A truncated index: the open fails with the path in the message. */
  dir = write_fixture(parent, NULL);
  snprintf(path, sizeof(path), "%s/index", dir);
  stat(path, &sb);
  assert_int_equal(truncate(path, sb.st_size - 7), 0);
  memset(&col, 0, sizeof(col));
  assert_int_equal(tsdb_block_verify(dir, collect_report, &col, &st), ORR_ECORRUPT);
  assert_true(any_line(&col, "/index"));
  assert_int_not_equal(tsdb_block_open(dir, &b, err, sizeof(err)), 0);
  assert_non_null(strstr(err, path));
  orr_remove_tree(dir);
  free(dir);

  /* Wrong stats in meta.json. */
  dir = write_fixture(parent, NULL);
  a = orr_arena_new(0);
  tsdb_meta m;
  assert_int_equal(tsdb_meta_read_dir(dir, a, &m, err, sizeof(err)), 0);
  m.num_samples += 1;
  m.num_series -= 1;
  assert_int_equal(tsdb_meta_write_dir(dir, &m), 0);
  memset(&col, 0, sizeof(col));
  assert_int_equal(tsdb_block_verify(dir, collect_report, &col, &st), ORR_ECORRUPT);
  assert_int_equal(st.problems, 2);
  assert_true(any_line(&col, "numSamples"));
  assert_true(any_line(&col, "numSeries"));
  /* A maxTime that cuts off samples. */
  m.num_samples -= 1;
  m.num_series += 1;
  m.max_time -= 1000;
  assert_int_equal(tsdb_meta_write_dir(dir, &m), 0);
  memset(&col, 0, sizeof(col));
  assert_int_equal(tsdb_block_verify(dir, collect_report, &col, &st), ORR_ECORRUPT);
  assert_true(any_line(&col, "outside the block"));
  orr_arena_destroy(a);
  orr_remove_tree(dir);
  free(dir);

  orr_remove_tree(parent);
  free(parent);
}

static void test_ready_made_chunks(void **state) {
  (void)state;
  char *parent = make_tmpdir();
  tsdb_block_writer *w;
  char err[512] = "";
  tsdb_block_writer_opts o = {.fixed_range = true, .min_time = T0 - 1000, .max_time = T0 + 86400000};
  assert_int_equal(tsdb_block_writer_open(parent, &o, &w, err, sizeof(err)), 0);
  for (int i = 0; i < 3; i++) {
    tsdb_chunk *c;
    size_t nc;
    assert_int_equal(tsdb_xor_encode_series(fx[i].s, fx[i].n, 4 * 3600 * 1000, &c, &nc), 0);
    assert_int_equal(tsdb_block_writer_add_chunks(w, &fx[i].ls, c, nc), 0);
    tsdb_chunks_free(c, nc);
  }
  tsdb_ulid u;
  assert_int_equal(tsdb_block_writer_commit(w, &u, err, sizeof(err)), 0);
  char name[TSDB_ULID_STRLEN + 1], dir[4096];
  tsdb_ulid_format(&u, name);
  snprintf(dir, sizeof(dir), "%s/%s", parent, name);
  tsdb_block *b;
  assert_int_equal(tsdb_block_open(dir, &b, err, sizeof(err)), 0);
  assert_int_equal(tsdb_block_meta(b)->min_time, T0 - 1000);
  assert_int_equal(tsdb_block_meta(b)->num_samples, fx[0].n + fx[1].n + fx[2].n);
  tsdb_block_close(b);
  collected col = {0};
  assert_int_equal(tsdb_block_verify(dir, collect_report, &col, NULL), 0);
  orr_remove_tree(parent);
  free(parent);
}

int main(void) {
  fixture_build();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_matchers_and_labels),
      cmocka_unit_test(test_time_range),
      cmocka_unit_test(test_tombstones),
      cmocka_unit_test(test_tmp_dir_and_list),
      cmocka_unit_test(test_verify_catches),
      cmocka_unit_test(test_ready_made_chunks),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  fixture_free();
  return rc;
}
