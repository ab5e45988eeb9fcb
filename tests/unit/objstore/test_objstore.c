/* test_objstore.c: the filesystem backend (put/get/ranges/listing/delete,
 * crash leftovers, failed overwrites, the descriptor cache), the config parser's table of good and
 * bad configs, the S3 XML scanner, and the async API. The S3 request tests are in
 * test_objstore_s3.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "objstore.h"
#include "objstore_int.h"

void test_s3_sigv4_headers(void **state);
void test_s3_errors_and_retries(void **state);
void test_s3_stream_backpressure(void **state);
void test_s3_concurrent(void **state);
int s3_fake_setup(void **state);
int s3_fake_teardown(void **state);

/* ---------------------------------------------------------------- helpers */

static char g_dir[256];

static objstore_bucket *open_fs(const char *dir, const char *prefix) {
  char yaml[1024], err[512] = "";
  objstore_config cfg;
  objstore_bucket *b = NULL;
  snprintf(yaml, sizeof yaml, "type: FILESYSTEM\nconfig:\n  directory: %s\n%s%s\n", dir,
           prefix ? "prefix: " : "", prefix ? prefix : "");
  assert_int_equal(objstore_config_parse(yaml, strlen(yaml), &cfg, err, sizeof err), 0);
  assert_int_equal(objstore_open(&cfg, &b, err, sizeof err), 0);
  objstore_config_free(&cfg);
  return b;
}

typedef struct names {
  char buf[4096];
} names;

static int join_name(const char *name, void *arg) {
  names *n = arg;
  size_t l = strlen(n->buf);
  snprintf(n->buf + l, sizeof n->buf - l, "%s%s", l ? " " : "", name);
  return 0;
}

static const char *list(objstore_bucket *b, const char *dir, unsigned flags, names *n) {
  char err[512] = "";
  n->buf[0] = '\0';
  int rc = objstore_iter(b, dir, flags, join_name, n, err, sizeof err);
  if (rc) fail_msg("iter %s: %s", dir, err);
  return n->buf;
}

static void put_str(objstore_bucket *b, const char *key, const char *s) {
  char err[512] = "";
  int rc = objstore_put(b, key, s, strlen(s), err, sizeof err);
  if (rc) fail_msg("put %s: %s", key, err);
}

static int setup_dir(void **state) {
  snprintf(g_dir, sizeof g_dir, "/tmp/objstore-test-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  return 0;
}

static int teardown_dir(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd);
}

/* ---------------------------------------------------------------- filesystem */

static void test_fs_put_get_list(void **state) {
  objstore_bucket *b = open_fs(g_dir, NULL);
  char err[512] = "";
  names n;
  assert_int_equal(objstore_check(b, err, sizeof err), 0);
  put_str(b, "01ABC/meta.json", "{\"ulid\":\"01ABC\"}");
  put_str(b, "01ABC/chunks/000001", "0123456789");
  put_str(b, "01ABC/index", "idx");
  put_str(b, "a.txt", "x");
  put_str(b, "z", "");

  /* one level, directories as "dir/", lexical order as S3 ("a.txt" < "a/") */
  assert_string_equal(list(b, "", 0, &n), "01ABC/ a.txt z");
  assert_string_equal(list(b, "01ABC", 0, &n), "01ABC/chunks/ 01ABC/index 01ABC/meta.json");
  assert_string_equal(list(b, "01ABC/", 0, &n), "01ABC/chunks/ 01ABC/index 01ABC/meta.json");
  assert_string_equal(list(b, "", OBJSTORE_ITER_RECURSIVE, &n),
                      "01ABC/chunks/000001 01ABC/index 01ABC/meta.json a.txt z");
  assert_string_equal(list(b, "nope", 0, &n), "");

  orr_buf out = {0};
  assert_int_equal(objstore_get(b, "01ABC/chunks/000001", 100, &out, err, sizeof err), 0);
  assert_int_equal(out.len, 10);
  assert_memory_equal(out.data, "0123456789", 10);
  orr_buf_reset(&out);
  assert_int_equal(objstore_get_range(b, "01ABC/chunks/000001", 3, 4, &out, err, sizeof err), 0);
  assert_int_equal(out.len, 4);
  assert_memory_equal(out.data, "3456", 4);
  orr_buf_reset(&out);
  /* a range past the end returns what there is */
  assert_int_equal(objstore_get_range(b, "01ABC/chunks/000001", 8, 100, &out, err, sizeof err), 0);
  assert_int_equal(out.len, 2);
  orr_buf_reset(&out);
  assert_int_equal(objstore_get_range(b, "01ABC/chunks/000001", 11, 1, &out, err, sizeof err),
                   ORR_ERANGE);
  /* more than max_bytes */
  assert_int_equal(objstore_get(b, "01ABC/chunks/000001", 5, &out, err, sizeof err), ORR_ELIMIT);
  orr_buf_reset(&out);
  assert_int_equal(objstore_get(b, "z", 5, &out, err, sizeof err), 0);
  assert_int_equal(out.len, 0);

  /* not found is distinguishable, and says what failed */
  assert_int_equal(objstore_get(b, "01ABC/nope", 100, &out, err, sizeof err), ORR_ENOTFOUND);
  char want[600];
  snprintf(want, sizeof want, "objstore: filesystem get dir=%s key=01ABC/nope: object not found",
           g_dir);
  assert_string_equal(err, want);
  /* a directory is not an object */
  assert_int_equal(objstore_get(b, "01ABC/chunks", 100, &out, err, sizeof err), ORR_ENOTFOUND);

  int ex = -1;
  assert_int_equal(objstore_exists(b, "01ABC/index", &ex, err, sizeof err), 0);
  assert_int_equal(ex, 1);
  assert_int_equal(objstore_exists(b, "01ABC/nope", &ex, err, sizeof err), 0);
  assert_int_equal(ex, 0);
  objstore_attrs at;
  int64_t before = orr_now_ms();
  assert_int_equal(objstore_attributes(b, "01ABC/chunks/000001", &at, err, sizeof err), 0);
  assert_int_equal(at.size, 10);
  assert_true(at.last_modified_ms > before - 60000 && at.last_modified_ms <= before + 1000);

  /* overwrite */
  put_str(b, "z", "zz");
  orr_buf_reset(&out);
  assert_int_equal(objstore_get(b, "z", 5, &out, err, sizeof err), 0);
  assert_int_equal(out.len, 2);

  /* delete: the emptied directories go too, the listing follows */
  assert_int_equal(objstore_delete(b, "01ABC/chunks/000001", err, sizeof err), 0);
  assert_string_equal(list(b, "01ABC", 0, &n), "01ABC/index 01ABC/meta.json");
  char path[600];
  struct stat st;
  snprintf(path, sizeof path, "%s/01ABC/chunks", g_dir);
  assert_int_not_equal(stat(path, &st), 0);
  assert_int_equal(objstore_delete(b, "01ABC/chunks/000001", err, sizeof err), ORR_ENOTFOUND);
  orr_buf_free(&out);
  objstore_close(b);
}

static void test_fs_put_file_and_stream(void **state) {
  objstore_bucket *b = open_fs(g_dir, NULL);
  char err[512] = "", src[300];
  snprintf(src, sizeof src, "%s/src.bin", g_dir);
  FILE *f = fopen(src, "wb");
  assert_non_null(f);
  for (int i = 0; i < 700000; i++) fputc(i % 251, f);
  fclose(f);
  assert_int_equal(objstore_put_file(b, "big/obj", src, err, sizeof err), 0);
  orr_buf out = {0};
  assert_int_equal(objstore_get(b, "big/obj", 1 << 20, &out, err, sizeof err), 0);
  assert_int_equal(out.len, 700000);
  for (size_t i = 0; i < out.len; i++)
    if ((unsigned char)out.data[i] != i % 251) fail_msg("byte %zu differs", i);
  orr_buf_free(&out);
  assert_int_equal(objstore_put_file(b, "big/x", "/nonexistent/file", err, sizeof err),
                   ORR_ENOTFOUND);
  objstore_close(b);
}

static void test_fs_crash_leftovers(void **state) {
  objstore_bucket *b = open_fs(g_dir, NULL);
  char path[600], err[512] = "";
  names n;
  put_str(b, "blk/meta.json", "{}");
  /* what a crash in the middle of a put leaves behind */
  snprintf(path, sizeof path, "%s/blk/index.tmp-0123456789abcdef", g_dir);
  FILE *f = fopen(path, "w");
  fputs("half", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/only.tmp-fedcba9876543210", g_dir);
  f = fopen(path, "w");
  fclose(f);
  assert_string_equal(list(b, "blk", 0, &n), "blk/meta.json");
  assert_string_equal(list(b, "", OBJSTORE_ITER_RECURSIVE, &n), "blk/meta.json");
  assert_string_equal(list(b, "", 0, &n), "blk/");
  int ex = 1;
  assert_int_equal(objstore_exists(b, "blk/index", &ex, err, sizeof err), 0);
  assert_int_equal(ex, 0);
  /* a directory holding nothing but leftovers is not listed */
  snprintf(path, sizeof path, "%s/empty", g_dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/empty/x.tmp-0000000000000000", g_dir);
  f = fopen(path, "w");
  fclose(f);
  assert_string_equal(list(b, "", 0, &n), "blk/");
  objstore_close(b);
}

/* Every entry of |dir| (leftovers included), space-separated, sorted. */
static const char *raw_entries(const char *dir, names *n) {
  struct dirent **ents;
  int k = scandir(dir, &ents, NULL, alphasort);
  assert_true(k >= 0);
  n->buf[0] = '\0';
  for (int i = 0; i < k; i++) {
    if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, "..")) join_name(ents[i]->d_name, n);
    free(ents[i]);
  }
  free(ents);
  return n->buf;
}

static void expect_old_object(objstore_bucket *b, const char *old) {
  char err[512] = "", dir[600];
  names n;
  orr_buf out = {0};
  assert_int_equal(objstore_get(b, "blk/index", 1 << 20, &out, err, sizeof err), 0);
  assert_int_equal(out.len, strlen(old));
  assert_memory_equal(out.data, old, out.len);
  orr_buf_free(&out);
  assert_string_equal(list(b, "", OBJSTORE_ITER_RECURSIVE, &n), "blk/index");
  /* and the failed write left nothing behind, not even a temporary file */
  snprintf(dir, sizeof dir, "%s/blk", g_dir);
  assert_string_equal(raw_entries(dir, &n), "index");
}

/* An overwrite that fails midway leaves the old object whole and nothing
 * partial visible (the write goes to a temporary file renamed into place):
 * the disk fills up after 64 KiB of a 700 KB object (RLIMIT_FSIZE gives
 * EFBIG as a full disk gives ENOSPC), and a source that cannot be read. */
static void test_fs_failed_overwrite(void **state) {
  objstore_bucket *b = open_fs(g_dir, NULL);
  char err[512] = "";
  const char *old = "the old index, whole";
  put_str(b, "blk/index", old);

  size_t big = 700000;
  char *data = malloc(big);
  assert_non_null(data);
  memset(data, 'n', big);
  struct rlimit saved, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
  lim = saved;
  lim.rlim_cur = 64 * 1024;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  int rc = objstore_put(b, "blk/index", data, big, err, sizeof err);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
  signal(SIGXFSZ, prev);
  free(data);
  assert_int_equal(rc, ORR_EIO);
  assert_non_null(strstr(err, "key=blk/index"));
  expect_old_object(b, old);

  /* put_file from a directory: the first read fails (EISDIR) */
  assert_int_equal(objstore_put_file(b, "blk/index", g_dir, err, sizeof err), ORR_EIO);
  expect_old_object(b, old);

  /* and an overwrite that succeeds replaces it */
  put_str(b, "blk/index", "new");
  expect_old_object(b, "new");
  objstore_close(b);
}

static void test_fs_keys_and_prefix(void **state) {
  objstore_bucket *b = open_fs(g_dir, "tenant/a/");
  char err[512] = "";
  names n;
  static const char *const bad[] = {"../x", "/abs", "a//b", "a/./b", "a/../../b", "a/", "", ".", ".."};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(objstore_put(b, bad[i], "x", 1, err, sizeof err), ORR_EINVAL);
    assert_non_null(strstr(err, "invalid key"));
  }
  put_str(b, "d/k", "v");
  assert_string_equal(list(b, "", 0, &n), "d/");
  assert_string_equal(list(b, "d", OBJSTORE_ITER_RECURSIVE, &n), "d/k");
  char path[600];
  struct stat st;
  snprintf(path, sizeof path, "%s/tenant/a/d/k", g_dir);
  assert_int_equal(stat(path, &st), 0);
  objstore_close(b);
  objstore_bucket *root = open_fs(g_dir, NULL);
  assert_string_equal(list(root, "", 0, &n), "tenant/");
  objstore_close(root);
}

static void test_fs_check_missing_dir(void **state) {
  char dir[300], err[512] = "";
  snprintf(dir, sizeof dir, "%s/missing", g_dir);
  objstore_bucket *b = open_fs(dir, NULL);
  assert_int_equal(objstore_check(b, err, sizeof err), ORR_ENOTFOUND);
  char want[400];
  snprintf(want, sizeof want, "objstore: directory \"%s\" does not exist", dir);
  assert_string_equal(err, want);
  objstore_close(b);
}

/* The daemons' start-up check: one call loads, opens and checks; each
 * refusal is one line and no bucket; success hands over a usable bucket. */
static void test_open_checked(void **state) {
  char err[512] = "", yaml[600];
  objstore_bucket *b = (objstore_bucket *)1;
  assert_int_equal(objstore_open_checked(NULL, "type: FILESYSTEM\nconfig:\n  direktory: /x\n", &b,
                                         err, sizeof err),
                   ORR_EINVAL);
  assert_null(b);
  assert_non_null(strstr(err, "direktory"));
  snprintf(yaml, sizeof yaml, "type: FILESYSTEM\nconfig:\n  directory: %s/missing\n", g_dir);
  assert_int_equal(objstore_open_checked(NULL, yaml, &b, err, sizeof err), ORR_ENOTFOUND);
  assert_null(b);
  assert_non_null(strstr(err, "does not exist"));
  assert_int_not_equal(objstore_open_checked("/nonexistent/bucket.yml", NULL, &b, err, sizeof err), 0);
  assert_null(b);
  assert_true(err[0] != 0);
  snprintf(yaml, sizeof yaml, "type: FILESYSTEM\nconfig:\n  directory: %s\n", g_dir);
  err[0] = 0;
  assert_int_equal(objstore_open_checked(NULL, yaml, &b, err, sizeof err), 0);
  assert_non_null(b);
  assert_string_equal(objstore_type_name(b), "FILESYSTEM");
  put_str(b, "a/b", "hello");
  objstore_close(b);
}

/* ---------------------------------------------------------------- async */

static int g_async_done;
static void async_done(objstore_op *op, void *arg) { g_async_done++; }

static void test_async_ops(void **state) {
  objstore_bucket *b = open_fs(g_dir, NULL);
  uv_loop_t loop;
  uv_loop_init(&loop);
  objstore_op put = {.kind = OBJSTORE_OP_PUT, .key = "async/k", .data = "payload", .len = 7,
                     .done = async_done};
  g_async_done = 0;
  assert_int_equal(objstore_async(&loop, b, &put), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(g_async_done, 1);
  assert_int_equal(put.result, 0);
  objstore_op get = {.kind = OBJSTORE_OP_GET_RANGE, .key = "async/k", .offset = 3, .length = 3,
                     .done = async_done};
  objstore_op miss = {.kind = OBJSTORE_OP_EXISTS, .key = "async/none", .done = async_done};
  objstore_op bad = {.kind = OBJSTORE_OP_GET, .key = "async/none", .max_bytes = 10,
                     .done = async_done};
  assert_int_equal(objstore_async(&loop, b, &get), 0);
  assert_int_equal(objstore_async(&loop, b, &miss), 0);
  assert_int_equal(objstore_async(&loop, b, &bad), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(g_async_done, 4);
  assert_int_equal(get.result, 0);
  assert_int_equal(get.out.len, 3);
  assert_memory_equal(get.out.data, "loa", 3);
  assert_int_equal(miss.result, 0);
  assert_int_equal(miss.exists, 0);
  assert_int_equal(bad.result, ORR_ENOTFOUND);
  assert_non_null(strstr(bad.err, "key=async/none: object not found"));
  orr_buf_free(&get.out);
  orr_buf_free(&bad.out);
  uv_loop_close(&loop);
  objstore_close(b);
}

/* ---------------------------------------------------------------- config */

typedef struct cfg_case {
  const char *yaml;
  const char *err; /* NULL: parses */
} cfg_case;

static void test_config_table(void **state) {
  static const cfg_case cases[] = {
      {"type: FILESYSTEM\nconfig:\n  directory: /data/bucket\n", NULL},
      {"type: filesystem\nconfig:\n  directory: ./b\nprefix: /x/y/\n", NULL},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: 127.0.0.1:9000\n  insecure: true\n", NULL},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: s3.eu-west-1.amazonaws.com\n"
       "  access_key: AK\n  secret_key: SK\n  part_size: 16777216\n  list_objects_version: v1\n"
       "  put_user_metadata:\n    a: b\n  http_config:\n    idle_conn_timeout: 1m30s\n"
       "    response_header_timeout: 2m\n    insecure_skip_verify: false\n"
       "    tls_config:\n      ca_file: /etc/ca.pem\n  trace:\n    enable: false\n",
       NULL},
      {"type: S3\nconfig:\n  bukcet: b\n  endpoint: e\n",
       "objstore config: unknown key \"bukcet\" in config (S3)"},
      {"type: S3\nconfig:\n  endpoint: e\n", "objstore config: missing \"bucket\" in config (S3)"},
      {"type: S3\nconfig:\n  bucket: b\n", "objstore config: missing \"endpoint\" in config (S3)"},
      {"type: S3\n", "objstore config: missing \"bucket\" in config (S3)"},
      {"type: GCS\nconfig:\n  bucket: b\n",
       "objstore config: type \"GCS\" is not supported (FILESYSTEM, S3)"},
      {"config:\n  directory: /d\n", "objstore config: missing \"type\" (FILESYSTEM, S3)"},
      {"type: FILESYSTEM\nconfig:\n  dir: /d\n",
       "objstore config: unknown key \"dir\" in config (FILESYSTEM)"},
      {"type: FILESYSTEM\n", "objstore config: missing \"directory\" in config (FILESYSTEM)"},
      {"type: FILESYSTEM\nconfig:\n  directory: /d\nextra: 1\n",
       "objstore config: unknown key \"extra\" at the top level"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  http_config:\n    idle_timeout: 1s\n",
       "objstore config: unknown key \"idle_timeout\" in config.http_config (S3)"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  http_config:\n    tls_config:\n"
       "      ca: x\n",
       "objstore config: unknown key \"ca\" in config.http_config.tls_config (S3)"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  insecure: maybe\n",
       "objstore config: config.insecure: cannot parse \"maybe\" as a boolean (S3)"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  part_size: 1024\n",
       "objstore config: config.part_size 1024 is below the S3 minimum of 5 MiB (S3)"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  bucket_lookup_type: dns\n",
       "objstore config: config.bucket_lookup_type \"dns\" is not auto, virtual-hosted or path (S3)"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  list_objects_version: v3\n",
       "objstore config: config.list_objects_version: \"v3\" is not v1 or v2 (S3)"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  access_key: a\n",
       "objstore config: \"access_key\" is set but \"secret_key\" is missing in config (S3)"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: http://e\n",
       "objstore config: config.endpoint \"http://e\" must be host[:port], without a scheme or path "
       "(S3)"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  http_config:\n"
       "    idle_conn_timeout: soon\n",
       "objstore config: config.http_config.idle_conn_timeout: not a valid duration \"soon\" (S3)"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\n  sse_config:\n    type: SSE-S3\n",
       "objstore config: \"sse_config\" is not supported (S3)"},
      {"type: S3\nconfig: [1, 2]\n", "objstore config: config: expected a map (S3)"},
      {"type: [S3]\n", "objstore config: type: expected a value, not a list"},
      {"- a\n- b\n", "objstore config: expected a map with \"type\" and \"config\""},
      {"", "objstore config: empty configuration"},
      {"type: S3\nconfig:\n  bucket: b\n  endpoint: e\nprefix: ../x\n",
       "objstore config: prefix \"../x\" is not a valid key prefix"},
      {"type: S3\n  bad: [\n", "objstore config: invalid YAML: mapping values are not allowed in "
                              "this context at line 2 column 6"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    objstore_config c;
    char err[512] = "";
    int rc = objstore_config_parse(cases[i].yaml, strlen(cases[i].yaml), &c, err, sizeof err);
    if (cases[i].err) {
      if (rc != ORR_EINVAL) fail_msg("case %zu: rc %d, want ORR_EINVAL", i, rc);
      if (strcmp(err, cases[i].err) != 0) fail_msg("case %zu: got  %s\nwant %s", i, err, cases[i].err);
    } else {
      if (rc != 0) fail_msg("case %zu: %s", i, err);
      objstore_config_free(&c);
    }
  }
}

static void test_config_values(void **state) {
  objstore_config c;
  char err[512] = "";
  const char *y =
      "type: S3\nconfig:\n  bucket: thanos\n  endpoint: s3.eu-west-1.amazonaws.com\n"
      "  access_key: AK\n  secret_key: SK\n  http_config:\n    idle_conn_timeout: 1m30s\n"
      "    response_header_timeout: 30s\nprefix: /team/x/\n";
  assert_int_equal(objstore_config_parse(y, strlen(y), &c, err, sizeof err), 0);
  assert_int_equal(c.type, OBJSTORE_S3);
  assert_string_equal(c.bucket, "thanos");
  assert_string_equal(c.region, "eu-west-1"); /* from the AWS endpoint */
  assert_int_equal(c.virtual_host, 1);        /* auto on AWS */
  assert_int_equal(c.insecure, 0);
  assert_int_equal(c.part_size, 64 * 1024 * 1024);
  assert_int_equal(c.list_version, 2);
  assert_int_equal(c.idle_conn_timeout_ms, 90000);
  assert_int_equal(c.response_header_timeout_ms, 30000);
  assert_string_equal(c.prefix, "team/x");
  objstore_config_free(&c);

  y = "type: s3\nconfig:\n  bucket: b.dotted\n  endpoint: minio:9000\n  insecure: true\n";
  assert_int_equal(objstore_config_parse(y, strlen(y), &c, err, sizeof err), 0);
  assert_string_equal(c.region, "us-east-1");
  assert_int_equal(c.virtual_host, 0); /* auto elsewhere: path style */
  assert_int_equal(c.insecure, 1);
  objstore_config_free(&c);

  y = "type: S3\nconfig:\n  bucket: b.dotted\n  endpoint: s3.amazonaws.com\n";
  assert_int_equal(objstore_config_parse(y, strlen(y), &c, err, sizeof err), 0);
  assert_int_equal(c.virtual_host, 0); /* a dotted bucket over https */
  objstore_config_free(&c);

  y = "type: S3\nconfig:\n  bucket: b\n  endpoint: minio:9000\n  region: eu-central-1\n"
      "  bucket_lookup_type: virtual-hosted\n";
  assert_int_equal(objstore_config_parse(y, strlen(y), &c, err, sizeof err), 0);
  assert_string_equal(c.region, "eu-central-1");
  assert_int_equal(c.virtual_host, 1);
  objstore_config_free(&c);

  /* load: exactly one source, and a file */
  assert_int_equal(objstore_config_load(NULL, NULL, &c, err, sizeof err), ORR_EINVAL);
  assert_string_equal(err, "objstore config: no bucket configured (--objstore.config-file or "
                           "--objstore.config)");
  assert_int_equal(objstore_config_load("/nonexistent.yaml", NULL, &c, err, sizeof err), ORR_EIO);
  assert_string_equal(err, "objstore config: cannot read /nonexistent.yaml: No such file or directory");
  char path[300];
  snprintf(path, sizeof path, "%s/b.yaml", g_dir);
  FILE *f = fopen(path, "w");
  fputs("type: FILESYSTEM\nconfig:\n  directory: /x\n", f);
  fclose(f);
  assert_int_equal(objstore_config_load(path, NULL, &c, err, sizeof err), 0);
  assert_string_equal(c.directory, "/x");
  objstore_config_free(&c);
}

/* ---------------------------------------------------------------- XML */

static void test_xml_list(void **state) {
  static const char v2[] =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>d/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>"
      "<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
      "<Contents><Key>d/a&amp;b &lt;1&gt; &#233;&#x41;</Key><LastModified>2026-11-25T11:20:39.123Z"
      "</LastModified><ETag>&quot;abc&quot;</ETag><Size>1234567890123</Size>"
      "<StorageClass>STANDARD</StorageClass></Contents>"
      "<Contents><Key>d/z</Key><Size>0</Size><Owner><ID>x</ID></Owner></Contents>"
      "<CommonPrefixes><Prefix>d/sub/</Prefix></CommonPrefixes>"
      "<NextContinuationToken>tok+/=</NextContinuationToken>"
      "</ListBucketResult>";
  orr_arena *a = orr_arena_new(0);
  s3__list_page p;
  assert_int_equal(s3__xml_parse_list(v2, sizeof v2 - 1, a, &p), 0);
  assert_int_equal(p.n, 3);
  assert_string_equal(p.v[0].name, "d/a&b <1> \xc3\xa9" "A");
  assert_int_equal(p.v[0].size, 1234567890123ull);
  assert_int_equal(p.v[0].is_prefix, 0);
  assert_string_equal(p.v[1].name, "d/z");
  assert_string_equal(p.v[2].name, "d/sub/");
  assert_int_equal(p.v[2].is_prefix, 1);
  assert_int_equal(p.truncated, 1);
  assert_string_equal(p.next_token, "tok+/=");

  static const char v1[] =
      "<ListBucketResult><IsTruncated>false</IsTruncated><Marker></Marker>"
      "<Contents><Key>k</Key><Size>5</Size></Contents><NextMarker>k</NextMarker>"
      "</ListBucketResult>";
  assert_int_equal(s3__xml_parse_list(v1, sizeof v1 - 1, a, &p), 0);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.truncated, 0);
  assert_string_equal(p.next_token, "k");

  static const char empty[] = "<ListBucketResult/>";
  assert_int_equal(s3__xml_parse_list(empty, sizeof empty - 1, a, &p), 0);
  assert_int_equal(p.n, 0);

  static const char *const bad[] = {
      "<Error><Code>x</Code></Error>",                               /* other root */
      "<ListBucketResult><Contents><Key>k</Key>",                     /* unterminated */
      "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>", /* no key */
      "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Key>a&bogus;</Key></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Key>a&#0;</Key></Contents></ListBucketResult>",
      "<ListBucketResult></Other>",
      "<ListBucketResult></ListBucketResult><ListBucketResult></ListBucketResult>",
      "text<ListBucketResult/>",
      "",
      "<ListBucketResult><![CDATA[x]]></ListBucketResult>",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (s3__xml_parse_list(bad[i], strlen(bad[i]), a, &p) != ORR_ECORRUPT)
      fail_msg("bad[%zu] accepted", i);
  /* nesting deeper than the scanner's limit is refused, not overflowed */
  orr_buf deep = {0};
  orr_buf_puts(&deep, "<ListBucketResult>");
  for (int i = 0; i < 40; i++) orr_buf_puts(&deep, "<a>");
  assert_int_equal(s3__xml_parse_list(deep.data, deep.len, a, &p), ORR_ECORRUPT);
  orr_buf_free(&deep);
  orr_arena_destroy(a);
}

static void test_xml_error_and_multipart(void **state) {
  static const char e[] =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
      "<Message>The specified key does not exist.</Message><Key>a/b</Key>"
      "<RequestId>1</RequestId></Error>";
  char code[64], msg[256], out[256];
  assert_int_equal(s3__xml_parse_error(e, sizeof e - 1, code, sizeof code, msg, sizeof msg), 0);
  assert_string_equal(code, "NoSuchKey");
  assert_string_equal(msg, "The specified key does not exist.");
  /* truncation into small buffers */
  assert_int_equal(s3__xml_parse_error(e, sizeof e - 1, code, 4, msg, 4), 0);
  assert_string_equal(code, "NoS");
  assert_int_equal(s3__xml_parse_error("<X/>", 4, code, sizeof code, msg, sizeof msg), ORR_ECORRUPT);
  assert_int_equal(s3__xml_parse_error("not xml", 7, code, sizeof code, msg, sizeof msg),
                   ORR_ECORRUPT);

  static const char init[] =
      "<?xml version=\"1.0\"?><InitiateMultipartUploadResult xmlns=\"x\"><Bucket>b</Bucket>"
      "<Key>k</Key><UploadId>VXBsb2FkIElE-1</UploadId></InitiateMultipartUploadResult>";
  assert_int_equal(s3__xml_find(init, sizeof init - 1, "InitiateMultipartUploadResult/UploadId",
                                out, sizeof out),
                   0);
  assert_string_equal(out, "VXBsb2FkIElE-1");
  assert_int_equal(s3__xml_find(init, sizeof init - 1, "InitiateMultipartUploadResult/Nope", out,
                                sizeof out),
                   ORR_ENOTFOUND);
  assert_int_equal(s3__xml_find(init, sizeof init - 1, "InitiateMultipartUploadResult/UploadId",
                                out, 4),
                   ORR_ELIMIT);

  static const char done[] =
      "<CompleteMultipartUploadResult><Location>http://h/b/k</Location><Bucket>b</Bucket>"
      "<Key>k</Key><ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>"
      "</CompleteMultipartUploadResult>";
  assert_int_equal(
      s3__xml_find(done, sizeof done - 1, "CompleteMultipartUploadResult/ETag", out, sizeof out), 0);
  assert_string_equal(out, "\"3858f62230ac3c915f300c664312c11f-9\"");
  assert_int_equal(s3__xml_find(done, sizeof done - 1, "CompleteMultipartUploadResult/Location",
                                out, sizeof out),
                   0);
  assert_string_equal(out, "http://h/b/k");
  /* a 200 answer to CompleteMultipartUpload may still be an error */
  static const char late[] = "<Error><Code>InternalError</Code><Message>try again</Message></Error>";
  assert_int_equal(s3__xml_parse_error(late, sizeof late - 1, code, sizeof code, msg, sizeof msg), 0);
  assert_string_equal(code, "InternalError");
}

static void test_parse_time(void **state) {
  int64_t ms;
  assert_int_equal(s3__parse_time("2026-11-25T11:20:39.123Z", &ms), 0);
  assert_int_equal(ms, 1795605639123LL);
  assert_int_equal(s3__parse_time("Wed, 25 Nov 2026 11:20:39 GMT", &ms), 0);
  assert_int_equal(ms, 1795605639000LL);
  assert_int_equal(s3__parse_time("yesterday", &ms), ORR_EINVAL);
}

/* ---------------------------------------------------------------- descriptor cache */

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

static const char *range_str(objstore_bucket *b, const char *key, uint64_t off, uint64_t len,
                             orr_buf *out) {
  char err[512] = "";
  out->len = 0;
  int rc = objstore_get_range(b, key, off, len, out, err, sizeof err);
  if (rc) fail_msg("get_range %s: %s", key, err);
  return out->data ? out->data : "";
}

/* Replaces |key|'s file behind the bucket's back, as another process's put
 * would: a new file renamed over it. */
static void replace_raw(const char *key, const char *s) {
  char path[512], tmp[600];
  snprintf(path, sizeof path, "%s/%s", g_dir, key);
  snprintf(tmp, sizeof tmp, "%s.new", path);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fputs(s, f);
  fclose(f);
  assert_int_equal(rename(tmp, path), 0);
}

/* Ranged reads of a block's chunk file reuse one descriptor (also for a
 * mapped view); a replace by rename, by this bucket or another writer, and an
 * unlink are seen at the next read; a non-block object is never cached. */
static void test_fs_fd_cache(void **state) {
  objstore_bucket *b = open_fs(g_dir, NULL);
  orr_buf out = {0};
  char err[512] = "";
  size_t big = 2 * OBJSTORE_MAP_MIN;
  char *blob = malloc(big);
  assert_non_null(blob);
  for (size_t i = 0; i < big; i++) blob[i] = (char)('a' + i % 26);
  assert_int_equal(objstore_put(b, "01B/chunks/000001", blob, big, err, sizeof err), 0);
  put_str(b, "01B/meta.json", "meta-v1");
  int before = count_fds();
  for (int i = 0; i < 20; i++) {
    assert_string_equal(range_str(b, "01B/chunks/000001", 26, 3, &out), "abc");
    objstore_view v = {0};
    assert_int_equal(objstore_get_view(b, "01B/chunks/000001", 1, big - 1, &v, err, sizeof err), 0);
    assert_int_equal(v.len, big - 1);
    assert_non_null(v.map__); /* mapped through the cached descriptor */
    assert_memory_equal(v.data, blob + 1, big - 1);
    objstore_view_release(&v);
    assert_string_equal(range_str(b, "01B/meta.json", 0, 0, &out), "meta-v1");
  }
  assert_int_equal(count_fds(), before + 1);

  /* replaced behind our back: the cached descriptor is stale and reopened */
  replace_raw("01B/chunks/000001", "new-chunks");
  assert_string_equal(range_str(b, "01B/chunks/000001", 4, 6, &out), "chunks");
  replace_raw("01B/meta.json", "meta-v2");
  assert_string_equal(range_str(b, "01B/meta.json", 0, 0, &out), "meta-v2");
  /* replaced through this bucket */
  put_str(b, "01B/chunks/000001", "third");
  assert_string_equal(range_str(b, "01B/chunks/000001", 0, 0, &out), "third");
  assert_int_equal(count_fds(), before + 1);

  /* unlinked by another process: gone for reads and listing */
  char path[512];
  snprintf(path, sizeof path, "%s/01B/chunks/000001", g_dir);
  assert_int_equal(unlink(path), 0);
  out.len = 0;
  assert_int_equal(objstore_get_range(b, "01B/chunks/000001", 0, 0, &out, err, sizeof err),
                   ORR_ENOTFOUND);
  names n;
  assert_string_equal(list(b, "01B/", OBJSTORE_ITER_RECURSIVE, &n), "01B/meta.json");
  assert_int_equal(count_fds(), before);

  /* deleted through this bucket: the descriptor goes with it */
  put_str(b, "01B/index", "idx");
  assert_string_equal(range_str(b, "01B/index", 0, 0, &out), "idx");
  assert_int_equal(count_fds(), before + 1);
  assert_int_equal(objstore_delete(b, "01B/index", err, sizeof err), 0);
  assert_int_equal(count_fds(), before);

  assert_string_equal(range_str(b, "01B/meta.json", 0, 0, &out), "meta-v2");
  put_str(b, "01B/index", "idx2");
  assert_string_equal(range_str(b, "01B/index", 0, 0, &out), "idx2");
  objstore_close(b);
  assert_int_equal(count_fds(), before); /* closing the bucket closes the cache */
  orr_buf_free(&out);
  free(blob);
}

#define CACHE_FILES 160 /* more than the cache holds: readers race evictions */
#define CACHE_THREADS 4

static objstore_bucket *g_cache_b;

static void *cache_reader(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  orr_buf out = {0};
  char err[512], key[64], want[64];
  long bad = 0;
  for (int i = 0; i < 2000; i++) {
    int f = (int)(rand_r(&seed) % CACHE_FILES);
    snprintf(key, sizeof key, "01C/chunks/%06d", f);
    snprintf(want, sizeof want, "chunk-%06d", f);
    out.len = 0;
    if (objstore_get_range(g_cache_b, key, 0, 0, &out, err, sizeof err) != 0 ||
        strcmp(out.data, want) != 0)
      bad++;
  }
  orr_buf_free(&out);
  return (void *)bad;
}

/* Several threads read many chunk files at once through one bucket, so
 * entries are evicted while other readers hold them. */
static void test_fs_fd_cache_concurrent(void **state) {
  g_cache_b = open_fs(g_dir, NULL);
  char key[64], val[64];
  for (int f = 0; f < CACHE_FILES; f++) {
    snprintf(key, sizeof key, "01C/chunks/%06d", f);
    snprintf(val, sizeof val, "chunk-%06d", f);
    put_str(g_cache_b, key, val);
  }
  int before = count_fds();
  pthread_t t[CACHE_THREADS];
  for (int i = 0; i < CACHE_THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, cache_reader, (void *)(uintptr_t)(i + 1)), 0);
  for (int i = 0; i < CACHE_THREADS; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    assert_int_equal((long)bad, 0);
  }
  assert_true(count_fds() <= before + 128);
  objstore_close(g_cache_b);
  assert_int_equal(count_fds(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fs_put_get_list, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_fs_put_file_and_stream, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_fs_crash_leftovers, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_fs_failed_overwrite, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_fs_keys_and_prefix, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_fs_check_missing_dir, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_open_checked, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_fs_fd_cache, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_fs_fd_cache_concurrent, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_async_ops, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_table, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_values, setup_dir, teardown_dir),
      cmocka_unit_test(test_xml_list),
      cmocka_unit_test(test_xml_error_and_multipart),
      cmocka_unit_test(test_parse_time),
      cmocka_unit_test_setup_teardown(test_s3_sigv4_headers, s3_fake_setup, s3_fake_teardown),
      cmocka_unit_test_setup_teardown(test_s3_errors_and_retries, s3_fake_setup, s3_fake_teardown),
      cmocka_unit_test_setup_teardown(test_s3_stream_backpressure, s3_fake_setup,
                                      s3_fake_teardown),
      cmocka_unit_test_setup_teardown(test_s3_concurrent, s3_fake_setup, s3_fake_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
