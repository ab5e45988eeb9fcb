/* test_shipper.c: the shipper against a FILESYSTEM bucket — blocks written by
 * the tsdb block writer into a temporary TSDB dir, synced, and compared with
 * what lands in the bucket; faults injected between objects. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "base.h"
#include "labels.h"
#include "objstore.h"
#include "sidecar_int.h"
#include "tsdb.h"

typedef struct fx {
  char root[256];
  char tsdb[300];
  char bucket_dir[300];
  objstore_bucket *bucket;
  labels_set ext;
  labels_label ext_v[2];
} fx;


static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  orr_buf b = {0};
  char tmp[65536];
  size_t r;
  while ((r = fread(tmp, 1, sizeof(tmp), f)) > 0) orr_buf_append(&b, tmp, r);
  fclose(f);
  orr_buf_putc(&b, '\0');
  if (n) *n = b.len - 1;
  return b.data;
}

static bool exists(const char *fmt, ...) ORR_PRINTF(1, 2);
static bool exists(const char *fmt, ...) {
  char p[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p, sizeof(p), fmt, ap);
  va_end(ap);
  return access(p, F_OK) == 0;
}

static int open_bucket(fx *f) {
  objstore_config cfg;
  char yaml[512], err[512];
  snprintf(yaml, sizeof(yaml), "type: FILESYSTEM\nconfig:\n  directory: %s\n", f->bucket_dir);
  assert_int_equal(objstore_config_parse(yaml, strlen(yaml), &cfg, err, sizeof(err)), 0);
  int rc = objstore_open(&cfg, &f->bucket, err, sizeof(err));
  objstore_config_free(&cfg);
  return rc;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  snprintf(f->root, sizeof(f->root), "/tmp/test_shipper.XXXXXX");
  assert_non_null(mkdtemp(f->root));
  snprintf(f->tsdb, sizeof(f->tsdb), "%s/tsdb", f->root);
  snprintf(f->bucket_dir, sizeof(f->bucket_dir), "%s/bucket", f->root);
  assert_int_equal(mkdir(f->tsdb, 0755), 0);
  assert_int_equal(mkdir(f->bucket_dir, 0755), 0);
  /* What Prometheus keeps beside its blocks: never uploaded. */
  char p[512];
  snprintf(p, sizeof(p), "%s/wal", f->tsdb);
  mkdir(p, 0755);
  snprintf(p, sizeof(p), "%s/chunks_head", f->tsdb);
  mkdir(p, 0755);
  assert_int_equal(open_bucket(f), 0);
  f->ext_v[0] = (labels_label){"cluster", "eu-1"};
  f->ext_v[1] = (labels_label){"replica", "a"};
  f->ext.v = f->ext_v;
  f->ext.n = 2;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  objstore_close(f->bucket);
  orr_remove_tree(f->root);
  free(f);
  return 0;
}

/* Writes a level-|level| block of |nseries| series with |nsamples| samples
 * each from |t0| into the TSDB dir; small segments give several chunk files. */
static void write_block(fx *f, int64_t t0, int nseries, int nsamples, int level, char *id) {
  tsdb_block_writer_opts o = {0};
  o.segment_size = 4096;
  tsdb_block_writer *w;
  char err[512];
  assert_int_equal(tsdb_block_writer_open(f->tsdb, &o, &w, err, sizeof(err)), 0);
  tsdb_sample *s = calloc((size_t)nsamples, sizeof(*s));
  for (int i = 0; i < nseries; i++) {
    char name[32], inst[32];
    snprintf(name, sizeof(name), "metric");
    snprintf(inst, sizeof(inst), "i%05d", i);
    labels_label lv[2] = {{"__name__", name}, {"instance", inst}};
    labels_set ls = {lv, 2};
    for (int j = 0; j < nsamples; j++) {
      s[j].t = t0 + j * 15000;
      s[j].v = (double)(i * 1000 + j) + 0.5 * j;
    }
    assert_int_equal(tsdb_block_writer_add_samples(w, &ls, s, (size_t)nsamples), 0);
  }
  free(s);
  tsdb_ulid u;
  assert_int_equal(tsdb_block_writer_commit(w, &u, err, sizeof(err)), 0);
  tsdb_ulid_format(&u, id);
  if (level != 1) {
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", f->tsdb, id);
    orr_arena *a = orr_arena_new(0);
    tsdb_meta m;
    assert_int_equal(tsdb_meta_read_dir(dir, a, &m, err, sizeof(err)), 0);
    m.level = level;
    assert_int_equal(tsdb_meta_write_dir(dir, &m), 0);
    orr_arena_destroy(a);
  }
}

static shipper *new_shipper(fx *f, bool compacted) {
  shipper_config c = {0};
  c.tsdb_path = f->tsdb;
  c.bucket = f->bucket;
  c.labels = &f->ext;
  c.upload_compacted = compacted;
  shipper *s;
  char err[256];
  assert_int_equal(shipper_new(&c, &s, err, sizeof(err)), 0);
  return s;
}

/* Every local file of block |id| but meta.json equals the bucket's copy. */
static void assert_block_in_bucket(fx *f, const char *id) {
  char dir[600], p1[900], p2[900];
  snprintf(dir, sizeof(dir), "%s/%s/chunks", f->tsdb, id);
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  int nseg = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(p1, sizeof(p1), "%s/%s", dir, e->d_name);
    snprintf(p2, sizeof(p2), "%s/%s/chunks/%s", f->bucket_dir, id, e->d_name);
    size_t n1, n2;
    char *a = slurp(p1, &n1), *b = slurp(p2, &n2);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
    nseg++;
  }
  closedir(d);
  assert_true(nseg >= 1);
  snprintf(p1, sizeof(p1), "%s/%s/index", f->tsdb, id);
  snprintf(p2, sizeof(p2), "%s/%s/index", f->bucket_dir, id);
  size_t n1, n2;
  char *a = slurp(p1, &n1), *b = slurp(p2, &n2);
  assert_non_null(b);
  assert_int_equal(n1, n2);
  assert_memory_equal(a, b, n1);
  free(a);
  free(b);

  /* meta.json: the local one plus the thanos section. */
  orr_arena *ar = orr_arena_new(0);
  tsdb_meta lm, bm;
  char err[256];
  snprintf(p1, sizeof(p1), "%s/%s", f->tsdb, id);
  assert_int_equal(tsdb_meta_read_dir(p1, ar, &lm, err, sizeof(err)), 0);
  snprintf(p2, sizeof(p2), "%s/%s/meta.json", f->bucket_dir, id);
  size_t mn;
  char *mj = slurp(p2, &mn);
  assert_non_null(mj);
  assert_int_equal(tsdb_meta_parse(mj, mn, ar, &bm, err, sizeof(err)), 0);
  assert_int_equal(tsdb_ulid_cmp(&lm.ulid, &bm.ulid), 0);
  assert_int_equal(lm.min_time, bm.min_time);
  assert_int_equal(lm.max_time, bm.max_time);
  assert_int_equal(lm.num_samples, bm.num_samples);
  assert_int_equal(lm.num_series, bm.num_series);
  assert_int_equal(lm.num_chunks, bm.num_chunks);
  assert_int_equal(lm.level, bm.level);
  assert_true(bm.has_thanos);
  assert_true(labels_equal(&bm.thanos.labels, &f->ext));
  assert_string_equal(bm.thanos.source, "sidecar");
  assert_int_equal(bm.thanos.downsample_resolution, 0);
  assert_int_equal(bm.thanos.nsegment_files, (size_t)nseg);
  assert_int_equal(bm.thanos.nfiles, (size_t)nseg + 2);
  for (int i = 0; i < nseg; i++) {
    char rel[64];
    snprintf(rel, sizeof(rel), "chunks/%s", bm.thanos.segment_files[i]);
    assert_string_equal(bm.thanos.files[i].rel_path, rel);
    snprintf(p1, sizeof(p1), "%s/%s/%s", f->tsdb, id, rel);
    struct stat st;
    assert_int_equal(stat(p1, &st), 0);
    assert_int_equal(bm.thanos.files[i].size_bytes, st.st_size);
  }
  assert_string_equal(bm.thanos.files[nseg].rel_path, "index");
  assert_int_equal(bm.thanos.files[nseg].size_bytes, n1);
  assert_string_equal(bm.thanos.files[nseg + 1].rel_path, "meta.json");
  assert_int_equal(bm.thanos.files[nseg + 1].size_bytes, 0);
  /* As Thanos writes it: no thanos version, resolution 0 spelled out. */
  assert_non_null(strstr(mj, "\"downsample\": {\n\t\t\t\"resolution\": 0\n\t\t}"));
  assert_non_null(strstr(mj, "\"source\": \"sidecar\""));
  assert_null(strstr(mj, "\"version\": 1,\n\t\t\"labels\""));
  free(mj);
  orr_arena_destroy(ar);
}

static char *state_file(fx *f) {
  char p[512];
  snprintf(p, sizeof(p), "%s/thanos.shipper.json", f->tsdb);
  return slurp(p, NULL);
}

static void assert_state(fx *f, const char *const *ids, size_t n) {
  orr_buf want = {0};
  orr_buf_puts(&want, "{\n\t\"version\": 1,\n\t\"uploaded\": ");
  if (!n) orr_buf_puts(&want, "[]");
  for (size_t i = 0; i < n; i++) orr_buf_printf(&want, "%s\n\t\t\"%s\"", i ? "," : "[", ids[i]);
  if (n) orr_buf_puts(&want, "\n\t]");
  orr_buf_puts(&want, "\n}\n");
  char *got = state_file(f);
  assert_non_null(got);
  assert_string_equal(got, want.data);
  free(got);
  orr_buf_free(&want);
}

static double metric(const char *name) {
  orr_buf b = {0};
  orr_registry_render(orr_registry_default(), &b);
  char key[128];
  snprintf(key, sizeof(key), "\n%s ", name);
  const char *p = b.data ? strstr(b.data, key) : NULL;
  double v = p ? strtod(p + strlen(key), NULL) : 0; /* not registered yet: 0 */
  orr_buf_free(&b);
  return v;
}

/* ---------------------------------------------------------------- tests */

static void test_sync_uploads_level1_once(void **state) {
  fx *f = *state;
  char a[32], b[32], c[32], empty_dir[512];
  int64_t t0 = 1700000000000;
  write_block(f, t0, 40, 240, 1, a);
  write_block(f, t0 + 7200000, 40, 240, 1, b);
  write_block(f, t0, 10, 100, 2, c); /* compacted by Prometheus: not shipped */
  /* A ULID-named dir without meta.json, and a block being written. */
  snprintf(empty_dir, sizeof(empty_dir), "%s/01HZZZZZZZZZZZZZZZZZZZZZZZ", f->tsdb);
  assert_int_equal(mkdir(empty_dir, 0755), 0);
  snprintf(empty_dir, sizeof(empty_dir), "%s/01HZZZZZZZZZZZZZZZZZZZZZZY.tmp-for-creation",
           f->tsdb);
  assert_int_equal(mkdir(empty_dir, 0755), 0);

  double up0 = metric("thanos_shipper_uploads_total");
  double syncs0 = metric("thanos_shipper_dir_syncs_total");
  double bytes0 = metric("orrery_shipper_uploaded_bytes_total");
  shipper *s = new_shipper(f, false);
  shipper_sync_stats st;
  char err[512];
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.uploaded, 2);
  assert_int_equal(st.failed, 0);
  assert_true(st.objects >= 6);
  assert_block_in_bucket(f, a);
  assert_block_in_bucket(f, b);
  assert_false(exists("%s/%s", f->bucket_dir, c));
  assert_false(exists("%s/01HZZZZZZZZZZZZZZZZZZZZZZZ", f->bucket_dir));
  const char *ids[2] = {a, b};
  if (strcmp(a, b) > 0) ids[0] = b, ids[1] = a;
  assert_state(f, ids, 2);
  /* The staging dirs are gone; wal and chunks_head were not touched. */
  assert_false(exists("%s/thanos/upload/%s", f->tsdb, a));
  assert_false(exists("%s/wal/meta.json", f->bucket_dir));
  assert_int_equal(metric("thanos_shipper_uploads_total"), up0 + 2);
  assert_int_equal(metric("thanos_shipper_dir_syncs_total"), syncs0 + 1);
  assert_int_equal(metric("orrery_shipper_uploaded_bytes_total"), bytes0 + (double)st.bytes);

  /* A second sync uploads nothing: meta.json is the same file. */
  char mp[600];
  snprintf(mp, sizeof(mp), "%s/%s/meta.json", f->bucket_dir, a);
  struct stat before, after;
  assert_int_equal(stat(mp, &before), 0);
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.uploaded, 0);
  assert_int_equal(st.objects, 0);
  assert_int_equal(stat(mp, &after), 0);
  assert_int_equal(before.st_ino, after.st_ino);
  assert_int_equal(metric("thanos_shipper_uploads_total"), up0 + 2);
  assert_state(f, ids, 2);

  /* Prometheus deletes block a (retention): the state file forgets it. */
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/%s", f->tsdb, a);
  orr_remove_tree(dir);
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.objects, 0);
  const char *ids_b[1] = {b};
  assert_state(f, ids_b, 1);
  shipper_free(s);
}

static void test_upload_compacted(void **state) {
  fx *f = *state;
  char a[32], c[32];
  write_block(f, 1700000000000, 5, 50, 1, a);
  write_block(f, 1700000000000 - 86400000, 5, 50, 3, c);
  shipper *s = new_shipper(f, true);
  shipper_sync_stats st;
  char err[512];
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.uploaded, 2);
  assert_block_in_bucket(f, a);
  assert_block_in_bucket(f, c);
  assert_int_equal(metric("thanos_shipper_upload_compacted_done"), 1);
  shipper_free(s);
}

/* As Thanos: a compacted block overlapping a bucket block of the same
 * external labels is not shipped; blocks of other labels do not count. */
static void test_upload_compacted_overlap(void **state) {
  fx *f = *state;
  char x[32], c[32], dir[600], err[1024];
  int64_t t0 = 1700000000000;
  write_block(f, t0, 5, 50, 1, x);
  shipper *s = new_shipper(f, true);
  shipper_sync_stats st;
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.uploaded, 1);
  snprintf(dir, sizeof(dir), "%s/%s", f->tsdb, x);
  orr_remove_tree(dir); /* Prometheus compacted x into c */
  write_block(f, t0 - 600000, 5, 200, 2, c);
  assert_int_not_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "overlap spotted"));
  assert_non_null(strstr(err, x));
  assert_false(exists("%s/%s", f->bucket_dir, c));
  /* The same bucket seen by a sidecar with other external labels. */
  labels_label other_v[1] = {{"cluster", "us-2"}};
  labels_set other = {other_v, 1};
  assert_int_equal(shipper_set_labels(s, &other), 0);
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.uploaded, 1);
  assert_true(exists("%s/%s/meta.json", f->bucket_dir, c));
  shipper_free(s);
}

static void test_meta_in_bucket_is_recorded_not_uploaded(void **state) {
  fx *f = *state;
  char a[32], b[32];
  write_block(f, 1700000000000, 5, 50, 1, a);
  write_block(f, 1700000000000 + 7200000, 5, 50, 1, b);
  /* As after a crash between the meta.json upload and the state file. */
  char key[64], err[512];
  snprintf(key, sizeof(key), "%s/meta.json", a);
  const char *marker = "{\"uploaded-before-crash\": true}\n";
  assert_int_equal(objstore_put(f->bucket, key, marker, strlen(marker), err, sizeof(err)), 0);
  shipper *s = new_shipper(f, false);
  shipper_sync_stats st;
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.recorded, 1);
  assert_int_equal(st.uploaded, 1);
  char p[600];
  snprintf(p, sizeof(p), "%s/%s/meta.json", f->bucket_dir, a);
  char *got = slurp(p, NULL);
  assert_string_equal(got, marker);
  free(got);
  assert_false(exists("%s/%s/index", f->bucket_dir, a));
  assert_block_in_bucket(f, b);
  const char *ids[2] = {a, b};
  if (strcmp(a, b) > 0) ids[0] = b, ids[1] = a;
  assert_state(f, ids, 2);
  shipper_free(s);
}

/* Fault injection: before |fail_key_suffix| is put, the bucket directory is
 * replaced by a regular file (root ignores permissions, so read-only would
 * not fail), making that put and every later one fail. */
typedef struct fault {
  fx *f;
  const char *suffix;
  int hits;
  int armed;
  char last_key[128];
} fault;

static int fault_hook(const char *key, void *arg) {
  fault *ft = arg;
  snprintf(ft->last_key, sizeof(ft->last_key), "%s", key);
  size_t kl = strlen(key), sl = strlen(ft->suffix);
  if (ft->armed && kl >= sl && strcmp(key + kl - sl, ft->suffix) == 0) {
    char moved[600];
    snprintf(moved, sizeof(moved), "%s.moved", ft->f->bucket_dir);
    assert_int_equal(rename(ft->f->bucket_dir, moved), 0);
    int fd = open(ft->f->bucket_dir, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    ft->hits++;
    ft->armed = 0;
  }
  return 0;
}

static void restore_bucket(fx *f) {
  char moved[600];
  snprintf(moved, sizeof(moved), "%s.moved", f->bucket_dir);
  assert_int_equal(unlink(f->bucket_dir), 0);
  assert_int_equal(rename(moved, f->bucket_dir), 0);
}

static void fault_midway(fx *f, const char *suffix) {
  char a[32], b[32];
  write_block(f, 1700000000000, 40, 240, 1, a);
  write_block(f, 1700000000000 + 7200000, 40, 240, 1, b);
  const char *first = strcmp(a, b) < 0 ? a : b, *second = strcmp(a, b) < 0 ? b : a;
  fault ft = {f, suffix, 0, 1, ""};
  shipper_config c = {0};
  c.tsdb_path = f->tsdb;
  c.bucket = f->bucket;
  c.labels = &f->ext;
  c.before_put = fault_hook;
  c.hook_arg = &ft;
  shipper *s;
  char err[1024];
  assert_int_equal(shipper_new(&c, &s, err, sizeof(err)), 0);
  double fail0 = metric("thanos_shipper_upload_failures_total");
  double sfail0 = metric("thanos_shipper_dir_sync_failures_total");
  shipper_sync_stats st;
  int rc = shipper_sync(s, &st, err, sizeof(err));
  assert_int_equal(ft.hits, 1);
  assert_int_not_equal(rc, 0);
  assert_int_equal(st.failed, 1);
  assert_int_equal(st.uploaded, 0);
  /* The error line names the block and what objstore said. */
  assert_non_null(strstr(err, first));
  assert_non_null(strstr(err, "objstore"));
  assert_int_equal(metric("thanos_shipper_upload_failures_total"), fail0 + 1);
  assert_int_equal(metric("thanos_shipper_dir_sync_failures_total"), sfail0 + 1);
  restore_bucket(f);
  /* No meta.json: readers do not see the partial block; the second block
   * was not attempted (order); nothing recorded. */
  assert_false(exists("%s/%s/meta.json", f->bucket_dir, first));
  assert_false(exists("%s/%s", f->bucket_dir, second));
  assert_state(f, NULL, 0);
  assert_false(exists("%s/thanos/upload/%s", f->tsdb, first));

  /* The next sync completes both. */
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.uploaded, 2);
  assert_block_in_bucket(f, a);
  assert_block_in_bucket(f, b);
  const char *ids[2] = {first, second};
  assert_state(f, ids, 2);
  shipper_free(s);
}

static void test_bucket_fails_before_index(void **state) { fault_midway(*state, "/index"); }
static void test_bucket_fails_before_meta(void **state) { fault_midway(*state, "/meta.json"); }
static void test_bucket_fails_between_chunks(void **state) {
  fault_midway(*state, "/chunks/000002");
}

/* Prometheus deletes the block while it is being uploaded (retention or
 * its own compaction): the staged hard links keep the upload whole. */
typedef struct del_ctx {
  fx *f;
  char id[32];
  char copy[600];
  int done;
} del_ctx;

static int delete_hook(const char *key, void *arg) {
  del_ctx *d = arg;
  if (!d->done && strstr(key, "/chunks/000001")) {
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/%s", d->f->tsdb, d->id);
    /* Keep a reference copy to compare with, then delete. */
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", dir, d->copy);
    assert_int_equal(system(cmd), 0);
    orr_remove_tree(dir);
    d->done = 1;
  }
  return 0;
}

static void test_block_deleted_during_upload(void **state) {
  fx *f = *state;
  del_ctx d = {f, "", "", 0};
  write_block(f, 1700000000000, 40, 240, 1, d.id);
  snprintf(d.copy, sizeof(d.copy), "%s/copy", f->root);
  shipper_config c = {0};
  c.tsdb_path = f->tsdb;
  c.bucket = f->bucket;
  c.labels = &f->ext;
  c.before_put = delete_hook;
  c.hook_arg = &d;
  shipper *s;
  char err[512];
  assert_int_equal(shipper_new(&c, &s, err, sizeof(err)), 0);
  shipper_sync_stats st;
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(d.done, 1);
  assert_int_equal(st.uploaded, 1);
  /* Compare against the copy, moved into the TSDB dir's place. */
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/%s", f->tsdb, d.id);
  assert_int_equal(rename(d.copy, dir), 0);
  assert_block_in_bucket(f, d.id);
  shipper_free(s);
}

static void test_empty_blocks_and_labels(void **state) {
  fx *f = *state;
  /* An empty block (no samples) is ignored, as Thanos. */
  tsdb_block_writer_opts o = {0};
  o.fixed_range = true;
  o.min_time = 1700000000000;
  o.max_time = o.min_time + 7200000;
  tsdb_block_writer *w;
  char err[512];
  assert_int_equal(tsdb_block_writer_open(f->tsdb, &o, &w, err, sizeof(err)), 0);
  tsdb_ulid u;
  assert_int_equal(tsdb_block_writer_commit(w, &u, err, sizeof(err)), 0);
  shipper *s = new_shipper(f, false);
  shipper_sync_stats st;
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.objects, 0);
  assert_state(f, NULL, 0);

  /* Without external labels nothing is uploaded; with them it is. */
  char a[32];
  write_block(f, 1700000000000, 3, 30, 1, a);
  labels_set none = {0};
  assert_int_equal(shipper_set_labels(s, &none), 0);
  assert_int_not_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "empty external labels"));
  assert_false(exists("%s/%s", f->bucket_dir, a));
  assert_int_equal(shipper_set_labels(s, &f->ext), 0);
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.uploaded, 1);
  assert_block_in_bucket(f, a);
  shipper_free(s);
}

static void test_worker_thread(void **state) {
  fx *f = *state;
  char a[32], b[32];
  write_block(f, 1700000000000, 5, 50, 1, a);
  /* Leftovers of a crash in the staging area are removed. */
  char stale[600];
  snprintf(stale, sizeof(stale), "%s/thanos/upload/01HAAAAAAAAAAAAAAAAAAAAAAA/chunks", f->tsdb);
  char cmd[800];
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", stale);
  assert_int_equal(system(cmd), 0);
  shipper_config c = {0};
  c.tsdb_path = f->tsdb;
  c.bucket = f->bucket;
  c.labels = &f->ext;
  c.interval_ms = 3600 * 1000; /* only the start and triggers sync here */
  shipper *s;
  char err[256];
  assert_int_equal(shipper_new(&c, &s, err, sizeof(err)), 0);
  assert_int_equal(shipper_start(s), 0);
  assert_int_equal(shipper_start(s), ORR_EINVAL);
  assert_true(shipper_wait_syncs(s, 1, 20000) >= 1);
  assert_block_in_bucket(f, a);
  assert_false(exists("%s/thanos/upload/01HAAAAAAAAAAAAAAAAAAAAAAA", f->tsdb));
  write_block(f, 1700000000000 + 7200000, 5, 50, 1, b);
  shipper_trigger(s);
  assert_true(shipper_wait_syncs(s, 2, 20000) >= 2);
  assert_block_in_bucket(f, b);
  shipper_stop(s);
  shipper_stop(s);
  shipper_free(s);
}

/* shipper_stop during a slow upload: the worker stops before its next
 * object, no meta.json appears, the staging dir is gone, and the next
 * shipper completes the block. */
typedef struct stop_ctx {
  uv_sem_t first_put;
  int calls;
} stop_ctx;

static int stop_hook(const char *key, void *arg) {
  stop_ctx *sc = arg;
  if (sc->calls++ == 0) uv_sem_post(&sc->first_put);
  return 0;
}

static void test_stop_during_upload(void **state) {
  fx *f = *state;
  char a[32];
  write_block(f, 1700000000000, 40, 240, 1, a);
  stop_ctx sc = {0};
  assert_int_equal(uv_sem_init(&sc.first_put, 0), 0);
  setenv("ORRERY_SHIPPER_TEST_PUT_DELAY", "2s", 1);
  shipper_config c = {0};
  c.tsdb_path = f->tsdb;
  c.bucket = f->bucket;
  c.labels = &f->ext;
  c.before_put = stop_hook;
  c.hook_arg = &sc;
  shipper *s;
  char err[512];
  assert_int_equal(shipper_new(&c, &s, err, sizeof(err)), 0);
  unsetenv("ORRERY_SHIPPER_TEST_PUT_DELAY");
  double fail0 = metric("thanos_shipper_upload_failures_total");
  assert_int_equal(shipper_start(s), 0);
  uv_sem_wait(&sc.first_put);
  uint64_t t0 = orr_mono_ns();
  shipper_stop(s);
  /* Only the object being put is waited for, not the next 2 s pause. */
  assert_true(orr_mono_ns() - t0 < 1000u * 1000000u);
  assert_true(sc.calls < 4);
  assert_false(exists("%s/%s/meta.json", f->bucket_dir, a));
  assert_false(exists("%s/thanos/upload/%s", f->tsdb, a));
  assert_int_equal(metric("thanos_shipper_upload_failures_total"), fail0);
  assert_state(f, NULL, 0);
  shipper_free(s);
  s = new_shipper(f, false);
  shipper_sync_stats st;
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.uploaded, 1);
  assert_block_in_bucket(f, a);
  shipper_free(s);
  uv_sem_destroy(&sc.first_put);
}

/* Uploads stream from disk: a block with a 256 MiB chunk segment (sparse;
 * the shipper does not decode chunks) raises the peak RSS by far less. */
static long vm_hwm_kb(void) {
  FILE *fp = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (fp && fgets(line, sizeof(line), fp))
    if (strncmp(line, "VmHWM:", 6) == 0) v = strtol(line + 6, NULL, 10);
  if (fp) fclose(fp);
  return v;
}

static void test_large_segment_streams(void **state) {
  fx *f = *state;
  char a[32];
  write_block(f, 1700000000000, 2, 20, 1, a);
  char p[600];
  snprintf(p, sizeof(p), "%s/%s/chunks/000001", f->tsdb, a);
  const off_t big = (off_t)256 << 20;
  assert_int_equal(truncate(p, big), 0);
  long before = vm_hwm_kb();
  shipper *s = new_shipper(f, false);
  shipper_sync_stats st;
  char err[512];
  assert_int_equal(shipper_sync(s, &st, err, sizeof(err)), 0);
  assert_int_equal(st.uploaded, 1);
  assert_true(st.bytes > (uint64_t)big);
  long after = vm_hwm_kb();
  print_message("VmHWM before %ld kB, after uploading %lld MiB: %ld kB\n", before,
                (long long)(st.bytes >> 20), after);
  assert_true(after - before < 32 * 1024);
  struct stat sb;
  snprintf(p, sizeof(p), "%s/%s/chunks/000001", f->bucket_dir, a);
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(sb.st_size, big);
  shipper_free(s);
}

int main(void) {
  orr_log_setup(ORR_LOG_WARN, ORR_LOG_LOGFMT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sync_uploads_level1_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upload_compacted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upload_compacted_overlap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_meta_in_bucket_is_recorded_not_uploaded, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bucket_fails_before_index, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bucket_fails_before_meta, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bucket_fails_between_chunks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_block_deleted_during_upload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_blocks_and_labels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_during_upload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_segment_streams, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
