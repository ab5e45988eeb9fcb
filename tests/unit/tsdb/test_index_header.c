/* test_index_header.c: an index-header built with ranged reads of a block's
 * index answers like the index itself — label names and values, postings
 * (by the ranges it gives), series decoded from ranged bytes, selection by
 * matchers — records every range read, and rejects truncated or
 * bit-flipped headers with an error. Postings offset lookups give the same
 * answers whatever the in-memory sampling. */
#include <fcntl.h>
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

static char g_dir[128], g_index[256];

typedef struct rctx {
  int fd;
  int reads;
  uint64_t bytes;
} rctx;

static int rd(void *arg, uint64_t off, uint64_t len, orr_buf *out, char *err, size_t errlen) {
  rctx *c = arg;
  c->reads++;
  if (orr_buf_reserve(out, len)) return ORR_ENOMEM;
  ssize_t n = pread(c->fd, out->data + out->len, len, (off_t)off);
  if (n < 0) return ORR_EIO;
  out->len += (size_t)n;
  c->bytes += (uint64_t)n;
  return 0;
}

static int setup(void **state) {
  snprintf(g_dir, sizeof g_dir, "/tmp/orr_test_ih.XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  char err[256] = "";
  tsdb_block_writer *w;
  assert_int_equal(tsdb_block_writer_open(g_dir, NULL, &w, err, sizeof err), 0);
  /* 300 series: metric m0..m2, i000..i099: enough values for sampling. */
  for (int m = 0; m < 3; m++) {
    for (int i = 0; i < 100; i++) {
      char name[8], inst[8];
      snprintf(name, sizeof name, "m%d", m);
      snprintf(inst, sizeof inst, "i%03d", i);
      labels_label l[3] = {{"__name__", name}, {"instance", inst}, {"job", i % 2 ? "b" : "a"}};
      labels_set ls = {l, 3};
      tsdb_sample s[3] = {{1000, i}, {2000, m}, {3000, 1.5}};
      assert_int_equal(tsdb_block_writer_add_samples(w, &ls, s, 3), 0);
    }
  }
  tsdb_ulid u;
  assert_int_equal(tsdb_block_writer_commit(w, &u, err, sizeof err), 0);
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, id);
  snprintf(g_index, sizeof g_index, "%s/%s/index", g_dir, id);
  return 0;
}

static int teardown(void **state) {
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static uint64_t file_size(const char *p) {
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  return (uint64_t)st.st_size;
}

static void test_build_and_read(void **state) {
  char err[256] = "", hpath[300];
  snprintf(hpath, sizeof hpath, "%s/index-header", g_dir);
  rctx c = {open(g_index, O_RDONLY), 0, 0};
  assert_true(c.fd >= 0);
  uint64_t isz = file_size(g_index);
  assert_int_equal(tsdb_index_header_write(rd, &c, isz, hpath, err, sizeof err), 0);
  assert_true(c.reads <= 5);
  assert_true(c.bytes < isz); /* series and postings were not read */
  tsdb_index_header *h;
  assert_int_equal(tsdb_index_header_open(hpath, TSDB_INDEX_HEADER_SAMPLING, &h, err, sizeof err), 0);
  tsdb_index_reader *ir;
  assert_int_equal(tsdb_index_open(g_index, &ir, err, sizeof err), 0);
  orr_arena *a = orr_arena_new(0);
  const tsdb_index_reader *hr = tsdb_index_header_reader(h);
  const char **n1, **n2;
  size_t k1, k2;
  assert_int_equal(tsdb_index_label_names(hr, a, &n1, &k1), 0);
  assert_int_equal(tsdb_index_label_names(ir, a, &n2, &k2), 0);
  assert_int_equal(k1, 3);
  assert_int_equal(k1, k2);
  for (size_t i = 0; i < k1; i++) assert_string_equal(n1[i], n2[i]);
  assert_int_equal(tsdb_index_label_values(hr, "instance", a, &n1, &k1), 0);
  assert_int_equal(k1, 100);
  assert_string_equal(n1[77], "i077");

  /* Every pair's postings through the header's range equal the index's. */
  for (size_t i = 0; i < k1; i++) {
    uint64_t s, e;
    assert_int_equal(tsdb_index_header_postings_range(h, "instance", n1[i], &s, &e), 0);
    orr_buf b = {0};
    assert_int_equal(rd(&c, s, e - s, &b, err, sizeof err), 0);
    uint64_t *refs, *want;
    size_t cnt, wcnt;
    assert_int_equal(tsdb_postings_list_decode((const uint8_t *)b.data, b.len, a, &refs, &cnt), 0);
    tsdb_postings *p;
    const char *v = n1[i];
    assert_int_equal(tsdb_index_postings(ir, "instance", &v, 1, a, &p), 0);
    assert_int_equal(tsdb_postings_expand(p, a, &want, &wcnt), 0);
    assert_int_equal(cnt, wcnt);
    assert_int_equal(cnt, 3);
    for (size_t j = 0; j < cnt; j++) assert_int_equal(refs[j], want[j]);
    /* The series, read with a short range first (ORR_EAGAIN says how much). */
    orr_buf sb = {0};
    assert_int_equal(rd(&c, refs[0] * 16, 8, &sb, err, sizeof err), 0);
    labels_set ls, wls;
    tsdb_index_chunk_meta *ch, *wch;
    size_t nch, wnch, need = 0;
    assert_int_equal(tsdb_index_header_series(h, (const uint8_t *)sb.data, sb.len, refs[0], a, &ls,
                                              &ch, &nch, &need),
                     ORR_EAGAIN);
    assert_true(need > 8);
    orr_buf_reset(&sb);
    assert_int_equal(rd(&c, refs[0] * 16, need, &sb, err, sizeof err), 0);
    assert_int_equal(tsdb_index_header_series(h, (const uint8_t *)sb.data, sb.len, refs[0], a, &ls,
                                              &ch, &nch, &need), 0);
    assert_int_equal(tsdb_index_series(ir, refs[0], a, &wls, &wch, &wnch), 0);
    assert_true(labels_equal(&ls, &wls));
    assert_int_equal(nch, wnch);
    assert_int_equal(ch[0].ref, wch[0].ref);
    orr_buf_free(&sb);
    orr_buf_free(&b);
  }
  uint64_t s, e;
  assert_int_equal(tsdb_index_header_postings_range(h, "instance", "nope", &s, &e), ORR_ENOTFOUND);
  /* The all-postings list. */
  assert_int_equal(tsdb_index_header_postings_range(h, "", "", &s, &e), 0);
  orr_buf b = {0};
  assert_int_equal(rd(&c, s, e - s, &b, err, sizeof err), 0);
  uint64_t *refs;
  size_t cnt;
  assert_int_equal(tsdb_postings_list_decode((const uint8_t *)b.data, b.len, a, &refs, &cnt), 0);
  assert_int_equal(cnt, 300);
  orr_buf_free(&b);
  orr_arena_destroy(a);
  tsdb_index_close(ir);
  tsdb_index_header_close(h);
  close(c.fd);
}

static void test_corrupt(void **state) {
  char err[256] = "", hpath[300];
  snprintf(hpath, sizeof hpath, "%s/index-header", g_dir);
  rctx c = {open(g_index, O_RDONLY), 0, 0};
  assert_int_equal(tsdb_index_header_write(rd, &c, file_size(g_index), hpath, err, sizeof err), 0);
  close(c.fd);
  FILE *f = fopen(hpath, "rb");
  static uint8_t buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  tsdb_index_header *h;
  assert_int_equal(tsdb_index_header_open_bytes(buf, n, TSDB_INDEX_HEADER_SAMPLING, &h, err, sizeof err), 0);
  tsdb_index_header_close(h);
  /* Every truncation and every single-bit flip: an error or a valid open
   * (a flip in padding), never a crash. Flips are checked on a stride to
   * keep the test quick. */
  for (size_t l = 0; l < n; l += 7)
    assert_int_not_equal(tsdb_index_header_open_bytes(buf, l, TSDB_INDEX_HEADER_SAMPLING, &h, err, sizeof err), 0);
  int rejected = 0;
  for (size_t i = 0; i < n; i += 3) {
    buf[i] ^= 0x10;
    int rc = tsdb_index_header_open_bytes(buf, n, TSDB_INDEX_HEADER_SAMPLING, &h, err, sizeof err);
    if (rc == 0)
      tsdb_index_header_close(h);
    else
      rejected++;
    buf[i] ^= 0x10;
  }
  assert_true(rejected > 0);
  /* An index that is not one. */
  rctx bad = {open(hpath, O_RDONLY), 0, 0};
  assert_int_equal(tsdb_index_header_write(rd, &bad, n, hpath, err, sizeof err), ORR_ECORRUPT);
  close(bad.fd);
}

/* --store.index-header-posting-offsets-in-mem-sampling: every lookup gives
 * the same range at sampling 1, 2, 32 and 1000 (and odd ones), for every
 * value of every name (first and last included), for absent values before,
 * between and after them, and for a name with one value; 0 is refused. */
static void test_sampling(void **state) {
  char err[256] = "", dir[200], hpath[300], ipath[300];
  snprintf(dir, sizeof dir, "%s/sampling", g_dir);
  assert_int_equal(mkdir(dir, 0755), 0);
  tsdb_block_writer *w;
  assert_int_equal(tsdb_block_writer_open(dir, NULL, &w, err, sizeof err), 0);
  for (int i = 0; i < 1000; i++) {
    char v[8];
    snprintf(v, sizeof v, "v%04d", i);
    /* Added in series order: "solo" (one value, one series) only on the
     * first; "w" has two values, "x" one. */
    labels_label l[5] = {{"__name__", "s"}, {"solo", "only"}, {"v", v}, {"w", i % 2 ? "b" : "a"},
                         {"x", "x"}};
    labels_set ls = {i ? l + 1 : l, i ? 4 : 5};
    if (i > 0) l[1] = l[0];
    tsdb_sample smp = {1000, i};
    assert_int_equal(tsdb_block_writer_add_samples(w, &ls, &smp, 1), 0);
  }
  tsdb_ulid u;
  assert_int_equal(tsdb_block_writer_commit(w, &u, err, sizeof err), 0);
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, id);
  snprintf(ipath, sizeof ipath, "%s/%s/index", dir, id);
  snprintf(hpath, sizeof hpath, "%s/index-header", dir);
  rctx c = {open(ipath, O_RDONLY), 0, 0};
  assert_true(c.fd >= 0);
  assert_int_equal(tsdb_index_header_write(rd, &c, file_size(ipath), hpath, err, sizeof err), 0);
  close(c.fd);

  tsdb_index_header *h;
  assert_int_equal(tsdb_index_header_open(hpath, 0, &h, err, sizeof err), ORR_EINVAL);
  tsdb_index_header *ref;
  assert_int_equal(tsdb_index_header_open(hpath, 1, &ref, err, sizeof err), 0);
  orr_arena *a = orr_arena_new(0);
  const char **names;
  size_t nn;
  assert_int_equal(tsdb_index_label_names(tsdb_index_header_reader(ref), a, &names, &nn), 0);
  assert_int_equal(nn, 5);
  static const char *absent[] = {"", "0", "a0", "c", "v", "v0000a", "v0031a", "v0032a", "v05005",
                                 "v0999a", "v1000", "onlx", "onlyy", "w", "zzz", "\xff"};
  const uint32_t samplings[] = {2, 3, 31, 32, 33, 1000, 5000};
  for (size_t si = 0; si < sizeof samplings / sizeof samplings[0]; si++) {
    assert_int_equal(tsdb_index_header_open(hpath, samplings[si], &h, err, sizeof err), 0);
    const tsdb_index_reader *hr = tsdb_index_header_reader(h);
    size_t checked = 0;
    for (size_t i = 0; i < nn; i++) {
      const char **vals, **rvals;
      size_t nv, rnv;
      assert_int_equal(tsdb_index_label_values(hr, names[i], a, &vals, &nv), 0);
      assert_int_equal(tsdb_index_label_values(tsdb_index_header_reader(ref), names[i], a, &rvals,
                                               &rnv), 0);
      assert_int_equal(nv, rnv);
      for (size_t j = 0; j < nv; j++) {
        assert_string_equal(vals[j], rvals[j]);
        uint64_t s1, e1, s2, e2;
        assert_int_equal(tsdb_index_header_postings_range(ref, names[i], vals[j], &s1, &e1), 0);
        assert_int_equal(tsdb_index_header_postings_range(h, names[i], vals[j], &s2, &e2), 0);
        assert_int_equal(s1, s2);
        assert_int_equal(e1, e2);
        assert_true(e1 > s1);
        checked++;
      }
      for (size_t j = 0; j < sizeof absent / sizeof absent[0]; j++) {
        uint64_t s1, e1;
        int want = tsdb_index_header_postings_range(ref, names[i], absent[j], &s1, &e1);
        assert_int_equal(want, ORR_ENOTFOUND);
        assert_int_equal(tsdb_index_header_postings_range(h, names[i], absent[j], &s1, &e1),
                         ORR_ENOTFOUND);
      }
    }
    assert_int_equal(checked, 1000 + 2 + 1 + 1 + 1); /* v, w, x, solo, __name__ */
    uint64_t s, e;
    assert_int_equal(tsdb_index_header_postings_range(h, "nope", "x", &s, &e), ORR_ENOTFOUND);
    /* First and last values of the long name and the single one. */
    assert_int_equal(tsdb_index_header_postings_range(h, "v", "v0000", &s, &e), 0);
    assert_int_equal(tsdb_index_header_postings_range(h, "v", "v0999", &s, &e), 0);
    assert_int_equal(tsdb_index_header_postings_range(h, "solo", "only", &s, &e), 0);
    tsdb_index_header_close(h);
  }
  orr_arena_destroy(a);
  tsdb_index_header_close(ref);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_and_read),
      cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_sampling),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
