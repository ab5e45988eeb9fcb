/* test_objstore_s3.c: the S3 backend's requests against a fake S3 served
 * in-process by net's HTTP server on its own thread (127.0.0.1, port 0):
 * SigV4 headers on every request, the payload hash, error lines, retries on
 * 503, multipart and backpressure on streamed GETs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "net.h"
#include "objstore.h"

/* ---------------------------------------------------------------- fake S3 */

#define MAXREC 64
typedef struct rec {
  char method[8], target[512], auth[512], sha[80], date[32], range[64];
  size_t body_len;
} rec;

static struct {
  uv_thread_t thread;
  uv_loop_t loop;
  uv_async_t stop;
  net_http_server *srv;
  int port;
  uv_mutex_t mu;
  uv_cond_t cond;
  int ready;
  rec recs[MAXREC];
  int nrec;
  int fail_next; /* answer this many requests with 503 */
  char *big;     /* body of /bkt/big */
  size_t big_len;
} g;

static void copy_hdr(net_http_req *req, const char *name, char *dst, size_t len) {
  const char *v = net_http_req_header(req, name);
  snprintf(dst, len, "%s", v ? v : "");
}

/* 200 with |data|, or 206 with the part a "Range: bytes=a-b" asks for. */
static void respond_range(net_http_req *req, const char *data, size_t len) {
  const char *r = net_http_req_header(req, "Range");
  unsigned long long a, b;
  if (r && sscanf(r, "bytes=%llu-%llu", &a, &b) == 2 && a <= b && a < len) {
    if (b >= len) b = len - 1;
    net_http_respond(req, 206, "application/octet-stream", data + a, (size_t)(b - a + 1));
  } else if (r && sscanf(r, "bytes=%llu-", &a) == 1 && a < len) {
    net_http_respond(req, 206, "application/octet-stream", data + a, len - (size_t)a);
  } else {
    net_http_respond(req, 200, "application/octet-stream", data, len);
  }
}

static void handler(net_http_req *req, void *arg) {
  const char *m = net_http_req_method(req), *path = net_http_req_path(req);
  const char *target = net_http_req_target(req);
  size_t blen = 0;
  net_http_req_body(req, &blen);
  uv_mutex_lock(&g.mu);
  if (g.nrec < MAXREC) {
    rec *r = &g.recs[g.nrec++];
    snprintf(r->method, sizeof r->method, "%s", m);
    snprintf(r->target, sizeof r->target, "%s", target);
    copy_hdr(req, "Authorization", r->auth, sizeof r->auth);
    copy_hdr(req, "x-amz-content-sha256", r->sha, sizeof r->sha);
    copy_hdr(req, "x-amz-date", r->date, sizeof r->date);
    copy_hdr(req, "Range", r->range, sizeof r->range);
    r->body_len = blen;
  }
  int fail = g.fail_next > 0;
  if (fail) g.fail_next--;
  uv_mutex_unlock(&g.mu);
  if (fail) {
    net_http_respond(req, 503, "application/xml",
                     "<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                     "</Message></Error>", 86);
    return;
  }
  static const char nosuchkey[] =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The "
      "specified key does not exist.</Message></Error>";
  if (!strcmp(m, "PUT") && !strcmp(path, "/bkt/mpfail") && strstr(target, "partNumber=2")) {
    static const char r[] = "<Error><Code>InvalidPart</Code><Message>One or more of the "
                            "specified parts could not be found.</Message></Error>";
    net_http_respond(req, 400, "application/xml", r, sizeof r - 1);
  } else if (!strcmp(m, "PUT")) {
    net_http_resp_header(req, "ETag", "\"etag-1\"");
    net_http_respond(req, 200, NULL, "", 0);
  } else if (!strcmp(m, "POST") && strstr(target, "uploads=")) {
    static const char r[] = "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>k</Key>"
                            "<UploadId>UP-1</UploadId></InitiateMultipartUploadResult>";
    net_http_respond(req, 200, "application/xml", r, sizeof r - 1);
  } else if (!strcmp(m, "POST")) {
    static const char r[] = "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag>"
                            "</CompleteMultipartUploadResult>";
    net_http_respond(req, 200, "application/xml", r, sizeof r - 1);
  } else if (!strcmp(path, "/bkt/obj") && (!strcmp(m, "GET") || !strcmp(m, "HEAD"))) {
    net_http_resp_header(req, "Last-Modified", "Wed, 25 Nov 2026 11:20:39 GMT");
    respond_range(req, "hello world", 11);
  } else if (!strcmp(path, "/bkt/big") && !strcmp(m, "GET")) {
    respond_range(req, g.big, g.big_len);
  } else if (!strcmp(path, "/bkt/") && strstr(target, "continuation-token=T%2B2")) {
    static const char r[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                            "<Contents><Key>pg/d</Key><Size>1</Size></Contents>"
                            "</ListBucketResult>";
    net_http_respond(req, 200, "application/xml", r, sizeof r - 1);
  } else if (!strcmp(path, "/bkt/") && strstr(target, "prefix=pg%2F")) {
    static const char r[] = "<ListBucketResult><IsTruncated>true</IsTruncated>"
                            "<Contents><Key>pg/a</Key><Size>1</Size></Contents>"
                            "<Contents><Key>pg/c</Key><Size>1</Size></Contents>"
                            "<CommonPrefixes><Prefix>pg/b/</Prefix></CommonPrefixes>"
                            "<NextContinuationToken>T+2</NextContinuationToken>"
                            "</ListBucketResult>";
    net_http_respond(req, 200, "application/xml", r, sizeof r - 1);
  } else if (!strcmp(path, "/bkt") || !strcmp(path, "/bkt/")) {
    static const char r[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                            "<Contents><Key>b</Key><Size>1</Size></Contents>"
                            "<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes>"
                            "<Contents><Key>c</Key><Size>1</Size></Contents></ListBucketResult>";
    net_http_respond(req, 200, "application/xml", r, sizeof r - 1);
  } else if (!strcmp(m, "DELETE") && strstr(target, "uploadId=")) {
    net_http_respond(req, 204, NULL, "", 0);
  } else if (!strcmp(m, "HEAD")) {
    net_http_respond(req, 404, NULL, "", 0);
  } else {
    net_http_respond(req, 404, "application/xml", nosuchkey, sizeof nosuchkey - 1);
  }
}

static void on_stop(uv_async_t *a) {
  net_http_server_shutdown(g.srv, 0, NULL, NULL);
  uv_close((uv_handle_t *)a, NULL);
}

static void server_thread(void *arg) {
  uv_loop_init(&g.loop);
  uv_async_init(&g.loop, &g.stop, on_stop);
  net_http_server_new(&g.loop, NULL, handler, NULL, &g.srv);
  net_http_server_listen(g.srv, "127.0.0.1:0");
  uv_mutex_lock(&g.mu);
  g.port = net_http_server_port(g.srv);
  g.ready = 1;
  uv_cond_signal(&g.cond);
  uv_mutex_unlock(&g.mu);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  net_http_server_free(g.srv);
  uv_loop_close(&g.loop);
}

int s3_fake_setup(void **state) {
  memset(&g, 0, sizeof g);
  uv_mutex_init(&g.mu);
  uv_cond_init(&g.cond);
  g.big_len = 3 * 1024 * 1024 + 17;
  g.big = malloc(g.big_len);
  for (size_t i = 0; i < g.big_len; i++) g.big[i] = (char)(i * 7 % 253);
  uv_thread_create(&g.thread, server_thread, NULL);
  uv_mutex_lock(&g.mu);
  while (!g.ready) uv_cond_wait(&g.cond, &g.mu);
  uv_mutex_unlock(&g.mu);
  return g.port > 0 ? 0 : -1;
}

int s3_fake_teardown(void **state) {
  uv_async_send(&g.stop);
  uv_thread_join(&g.thread);
  free(g.big);
  uv_mutex_destroy(&g.mu);
  uv_cond_destroy(&g.cond);
  return 0;
}

static objstore_bucket *open_s3(const char *extra) {
  char yaml[1024], err[512] = "";
  objstore_config cfg;
  objstore_bucket *b = NULL;
  snprintf(yaml, sizeof yaml,
           "type: S3\nconfig:\n  bucket: bkt\n  endpoint: 127.0.0.1:%d\n  insecure: true\n"
           "  access_key: AKID\n  secret_key: SECRET\n  region: eu-test-1\n%s",
           g.port, extra ? extra : "");
  if (objstore_config_parse(yaml, strlen(yaml), &cfg, err, sizeof err)) fail_msg("%s", err);
  assert_int_equal(objstore_open(&cfg, &b, err, sizeof err), 0);
  objstore_config_free(&cfg);
  return b;
}

static rec last_rec(int back) {
  uv_mutex_lock(&g.mu);
  rec r = g.recs[g.nrec - 1 - back];
  uv_mutex_unlock(&g.mu);
  return r;
}

static void assert_signed(const rec *r) {
  /* AWS4-HMAC-SHA256 Credential=AKID/20261125/eu-test-1/s3/aws4_request,
   * SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=<64 hex> */
  if (strncmp(r->auth, "AWS4-HMAC-SHA256 Credential=AKID/", 33) != 0)
    fail_msg("%s %s: Authorization \"%s\"", r->method, r->target, r->auth);
  assert_non_null(strstr(r->auth, "/eu-test-1/s3/aws4_request"));
  assert_non_null(strstr(r->auth, "x-amz-content-sha256"));
  assert_non_null(strstr(r->auth, "x-amz-date"));
  const char *sig = strstr(r->auth, "Signature=");
  assert_non_null(sig);
  assert_int_equal(strlen(sig + 10), 64);
  assert_int_equal(strlen(r->date), 16); /* 20261125T112039Z */
  assert_true(r->sha[0] != '\0');
}

/* ---------------------------------------------------------------- tests */

static int join_name(const char *name, void *arg) {
  char *buf = arg;
  size_t l = strlen(buf);
  snprintf(buf + l, 256 - l, "%s%s", l ? " " : "", name);
  return 0;
}

void test_s3_sigv4_headers(void **state) {
  objstore_bucket *b = open_s3(NULL);
  char err[512] = "";
  orr_buf out = {0};

  assert_int_equal(objstore_put(b, "dir/k ey+1", "abc", 3, err, sizeof err), 0);
  rec r = last_rec(0);
  assert_string_equal(r.method, "PUT");
  assert_string_equal(r.target, "/bkt/dir/k%20ey%2B1");
  assert_signed(&r);
  /* the real SHA-256 of "abc" for a body from memory */
  assert_string_equal(r.sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_int_equal(r.body_len, 3);

  char path[] = "/tmp/objstore-s3-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "0123456789", 10), 10);
  close(fd);
  assert_int_equal(objstore_put_file(b, "f", path, err, sizeof err), 0);
  r = last_rec(0);
  assert_signed(&r);
  assert_string_equal(r.sha, "UNSIGNED-PAYLOAD"); /* streamed from the file */
  assert_int_equal(r.body_len, 10);

  assert_int_equal(objstore_get_range(b, "obj", 2, 3, &out, err, sizeof err), 0);
  r = last_rec(0);
  assert_signed(&r);
  assert_string_equal(r.range, "bytes=2-4");
  assert_int_equal(out.len, 3);
  assert_memory_equal(out.data, "llo", 3);
  assert_string_equal(r.sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  objstore_attrs at;
  assert_int_equal(objstore_attributes(b, "obj", &at, err, sizeof err), 0);
  assert_int_equal(at.size, 11);
  assert_int_equal(at.last_modified_ms, 1795605639000LL);
  r = last_rec(0);
  assert_signed(&r);
  assert_string_equal(r.method, "HEAD");

  /* listing: query in canonical order, entries merged in lexical order */
  char names[256] = "";
  assert_int_equal(objstore_iter(b, "", 0, join_name, names, err, sizeof err), 0);
  assert_string_equal(names, "a/ b c");
  r = last_rec(0);
  assert_signed(&r);
  assert_string_equal(r.target, "/bkt/?delimiter=%2F&list-type=2&max-keys=1000&prefix=");

  /* pagination through continuation tokens, each page in lexical order */
  names[0] = '\0';
  assert_int_equal(objstore_iter(b, "pg", 0, join_name, names, err, sizeof err), 0);
  assert_string_equal(names, "pg/a pg/b/ pg/c pg/d");
  r = last_rec(0);
  assert_signed(&r);
  assert_string_equal(r.target, "/bkt/?continuation-token=T%2B2&delimiter=%2F&list-type=2&"
                                "max-keys=1000&prefix=pg%2F");
  orr_buf_free(&out);
  unlink(path);
  objstore_close(b);
}

void test_s3_errors_and_retries(void **state) {
  objstore_bucket *b = open_s3("  max_retries: 2\n");
  char err[512] = "";
  orr_buf out = {0};
  assert_int_equal(objstore_get(b, "missing", 100, &out, err, sizeof err), ORR_ENOTFOUND);
  assert_string_equal(err, "objstore: s3 get bucket=bkt key=missing: NoSuchKey: The specified key "
                           "does not exist. (HTTP 404)");
  int ex = 1;
  assert_int_equal(objstore_exists(b, "missing", &ex, err, sizeof err), 0);
  assert_int_equal(ex, 0);
  assert_int_equal(objstore_delete(b, "missing", err, sizeof err), ORR_ENOTFOUND);

  /* two 503s, then success: retried within max_retries */
  uv_mutex_lock(&g.mu);
  g.fail_next = 2;
  int before = g.nrec;
  uv_mutex_unlock(&g.mu);
  assert_int_equal(objstore_get(b, "obj", 100, &out, err, sizeof err), 0);
  assert_int_equal(out.len, 11);
  uv_mutex_lock(&g.mu);
  assert_int_equal(g.nrec - before, 3);
  g.fail_next = 5;
  uv_mutex_unlock(&g.mu);
  /* beyond the retries: the last answer, with its code */
  assert_int_equal(objstore_put(b, "x", "1", 1, err, sizeof err), ORR_EUNAVAILABLE);
  assert_non_null(strstr(err, "objstore: s3 put bucket=bkt key=x: "));
  assert_non_null(strstr(err, "(HTTP 503)"));
  uv_mutex_lock(&g.mu);
  g.fail_next = 0;
  uv_mutex_unlock(&g.mu);

  /* multipart: parts from the file, then complete */
  objstore_close(b);
  b = open_s3("  part_size: 5242880\n");
  char path[] = "/tmp/objstore-s3-XXXXXX";
  int fd = mkstemp(path);
  assert_int_equal(ftruncate(fd, 11 * 1024 * 1024), 0);
  close(fd);
  uv_mutex_lock(&g.mu);
  before = g.nrec;
  uv_mutex_unlock(&g.mu);
  assert_int_equal(objstore_put_file(b, "mp", path, err, sizeof err), 0);
  uv_mutex_lock(&g.mu);
  assert_int_equal(g.nrec - before, 5); /* create, 3 parts, complete */
  assert_string_equal(g.recs[before].target, "/bkt/mp?uploads=");
  assert_string_equal(g.recs[before + 1].target, "/bkt/mp?partNumber=1&uploadId=UP-1");
  assert_int_equal(g.recs[before + 1].body_len, 5242880);
  assert_int_equal(g.recs[before + 3].body_len, 1048576);
  assert_string_equal(g.recs[before + 3].sha, "UNSIGNED-PAYLOAD");
  assert_string_equal(g.recs[before + 4].target, "/bkt/mp?uploadId=UP-1");
  uv_mutex_unlock(&g.mu);
  /* a part refused: the upload is aborted, the error names the part's request */
  assert_int_equal(objstore_put_file(b, "mpfail", path, err, sizeof err), ORR_EINVAL);
  assert_string_equal(err, "objstore: s3 upload part bucket=bkt key=mpfail: InvalidPart: One or "
                           "more of the specified parts could not be found. (HTTP 400)");
  rec last = last_rec(0);
  assert_string_equal(last.method, "DELETE");
  assert_string_equal(last.target, "/bkt/mpfail?uploadId=UP-1");
  unlink(path);
  orr_buf_free(&out);
  objstore_close(b);

  /* the start-up check against a closed port: one line */
  char yaml[512];
  objstore_config cfg;
  snprintf(yaml, sizeof yaml, "type: S3\nconfig:\n  bucket: bkt\n  endpoint: 127.0.0.1:1\n"
                              "  insecure: true\n");
  assert_int_equal(objstore_config_parse(yaml, strlen(yaml), &cfg, err, sizeof err), 0);
  assert_int_equal(objstore_open(&cfg, &b, err, sizeof err), 0);
  objstore_config_free(&cfg);
  assert_int_equal(objstore_check(b, err, sizeof err), ORR_EIO);
  assert_string_equal(err, "objstore: cannot reach S3 endpoint 127.0.0.1:1: Connection refused");
  objstore_close(b);
}

typedef struct stream_ctx {
  size_t total, max_piece;
  int bad;
} stream_ctx;

static int slow_consumer(const char *data, size_t n, void *arg) {
  stream_ctx *c = arg;
  for (size_t i = 0; i < n; i++)
    if (data[i] != (char)((c->total + i) * 7 % 253)) c->bad = 1;
  c->total += n;
  if (n > c->max_piece) c->max_piece = n;
  usleep(2000); /* a consumer slower than loopback: the buffer fills */
  return 0;
}

/* As slow_consumer, for a stream starting at byte 1000 of "big". */
static int slow_consumer_at_1000(const char *data, size_t n, void *arg) {
  stream_ctx *c = arg;
  for (size_t i = 0; i < n; i++)
    if (data[i] != (char)((1000 + c->total + i) * 7 % 253)) c->bad = 1;
  c->total += n;
  return 0;
}

static int stop_early(const char *data, size_t n, void *arg) {
  size_t *got = arg;
  *got += n;
  return *got > 100000 ? ORR_ECANCELED : 0;
}

void test_s3_stream_backpressure(void **state) {
  objstore_bucket *b = open_s3(NULL);
  char err[512] = "";
  stream_ctx c = {0};
  assert_int_equal(objstore_get_stream(b, "big", 0, 0, slow_consumer, &c, err, sizeof err), 0);
  assert_int_equal(c.total, g.big_len);
  assert_int_equal(c.bad, 0);
  /* what is buffered between the loop and the consumer stays bounded */
  assert_true(c.max_piece <= OBJSTORE_STREAM_BUF + 64 * 1024);
  size_t got = 0;
  assert_int_equal(objstore_get_stream(b, "big", 0, 0, stop_early, &got, err, sizeof err),
                   ORR_ECANCELED);
  assert_string_equal(err, "objstore: s3 get bucket=bkt key=big: canceled");
  /* the bucket is still usable afterwards */
  orr_buf out = {0};
  assert_int_equal(objstore_get(b, "obj", 100, &out, err, sizeof err), 0);
  orr_buf_free(&out);
  objstore_close(b);
}

/* Many threads share one bucket (its one loop thread and connection pool). */
typedef struct worker {
  uv_thread_t t;
  objstore_bucket *b;
  int failures;
} worker;

static void worker_run(void *arg) {
  worker *w = arg;
  char err[512];
  for (int i = 0; i < 20; i++) {
    orr_buf out = {0};
    if (objstore_get_range(w->b, "obj", 6, 5, &out, err, sizeof err) != 0 || out.len != 5 ||
        memcmp(out.data, "world", 5) != 0)
      w->failures++;
    orr_buf_free(&out);
    stream_ctx c = {0};
    if (i % 5 == 0 &&
        (objstore_get_stream(w->b, "big", 1000, 300000, slow_consumer_at_1000, &c, err,
                             sizeof err) != 0 ||
         c.total != 300000 || c.bad))
      w->failures++;
  }
}

void test_s3_concurrent(void **state) {
  objstore_bucket *b = open_s3(NULL);
  worker w[8];
  for (int i = 0; i < 8; i++) {
    w[i].b = b;
    w[i].failures = 0;
    assert_int_equal(uv_thread_create(&w[i].t, worker_run, &w[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    uv_thread_join(&w[i].t);
    assert_int_equal(w[i].failures, 0);
  }
  objstore_close(b);
}
