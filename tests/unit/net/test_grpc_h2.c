/* test_grpc_h2.c: the gRPC server's HTTP/2 wire behaviour, byte-exact and
 * without sockets — a raw nghttp2 client session talks to a server
 * connection in memory (net__grpc_server_fake_conn). Covers what our own
 * client never sends: compressed messages, bad content-types, several
 * request messages, and the exact headers and trailers of responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net_int.h"

typedef struct stream_out {
  orr_buf headers;  /* "name: value\n" for every header and trailer, in order */
  orr_buf data;     /* DATA payload */
  int closed;
  uint32_t error_code;
} stream_out;

static stream_out outs[64]; /* by stream id; tests use fewer than 32 streams */

static int cli_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *ud) {
  stream_out *o = &outs[frame->hd.stream_id % 64];
  orr_buf_printf(&o->headers, "%.*s: %.*s\n", (int)namelen, name, (int)valuelen, value);
  return 0;
}

static int cli_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                       size_t len, void *ud) {
  orr_buf_append(&outs[id % 64].data, data, len);
  return 0;
}

static int cli_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
  outs[id % 64].closed = 1;
  outs[id % 64].error_code = code;
  return 0;
}

typedef struct body {
  const uint8_t *p;
  size_t n, off;
} body;

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
                         nghttp2_data_source *src, void *ud) {
  body *b = src->ptr;
  size_t n = b->n - b->off < len ? b->n - b->off : len;
  memcpy(buf, b->p + b->off, n);
  b->off += n;
  if (b->off == b->n) *fl |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* ---------------------------------------------------------------- server handlers */

static int handled;

static void h_echo(net_grpc_call *c, const uint8_t *req, size_t len, void *arg) {
  handled++;
  net_grpc_call_send(c, req, len);
  net_grpc_call_finish(c, NET_GRPC_OK, NULL);
}

static void h_fail(net_grpc_call *c, const uint8_t *req, size_t len, void *arg) {
  handled++;
  net_grpc_call_finish(c, NET_GRPC_NOT_FOUND, "gone: 100%\n");
}

/* Sends one message and holds the call open until it is cancelled. */
static int hold_cancel_status = -1;
static void hold_on_cancel(net_grpc_call *c, int status, void *arg) {
  hold_cancel_status = status;
  net_grpc_call_finish(c, NET_GRPC_CANCELLED, NULL);
}
static void h_hold(net_grpc_call *c, const uint8_t *req, size_t len, void *arg) {
  handled++;
  net_grpc_call_set_callbacks(c, NULL, hold_on_cancel, NULL);
  static const uint8_t msg[1000];
  net_grpc_call_send(c, msg, sizeof(msg));
}

/* ---------------------------------------------------------------- fixture */

typedef struct fx {
  uv_loop_t loop;
  net_grpc_server *srv;
  net__h2_conn *h;
  nghttp2_session *cli;
} fx;

static int64_t fx_write_timeout_ms; /* 0: the server's default */
static uint32_t fx_client_window = 65535;

static int setup(void **state) {
  static fx f;
  memset(&f, 0, sizeof(f));
  memset(outs, 0, sizeof(outs));
  handled = 0;
  uv_loop_init(&f.loop);
  net_grpc_server_opts o = {.max_recv_msg = 100, .write_timeout_ms = fx_write_timeout_ms};
  assert_int_equal(net_grpc_server_new(&f.loop, &o, &f.srv), 0);
  assert_int_equal(net_grpc_server_register(f.srv, "/t.S/Echo", NET_GRPC_UNARY, h_echo, NULL), 0);
  assert_int_equal(net_grpc_server_register(f.srv, "/t.S/Fail", NET_GRPC_UNARY, h_fail, NULL), 0);
  assert_int_equal(
      net_grpc_server_register(f.srv, "/t.S/Hold", NET_GRPC_SERVER_STREAMING, h_hold, NULL), 0);
  assert_int_equal(net__grpc_server_fake_conn(f.srv, &f.h), 0);
  nghttp2_session_callbacks *cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, cli_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cli_on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cli_on_close);
  nghttp2_session_client_new(&f.cli, cbs, NULL);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, fx_client_window}};
  nghttp2_submit_settings(f.cli, NGHTTP2_FLAG_NONE, iv, 1);
  *state = &f;
  return 0;
}

static void closed_cb(void *arg) { *(int *)arg = 1; }

static int teardown(void **state) {
  fx *f = *state;
  nghttp2_session_del(f->cli);
  net__h2_conn_close(f->h, ORR_ECLOSED);
  int closed = 0;
  net_grpc_server_close(f->srv, 0, closed_cb, &closed);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(closed);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  for (int i = 0; i < 64; i++) {
    orr_buf_free(&outs[i].headers);
    orr_buf_free(&outs[i].data);
  }
  return 0;
}

/* Moves bytes both ways and runs deferred work until nothing moves. */
static void pump(fx *f) {
  for (int round = 0; round < 1000; round++) {
    int moved = 0;
    const uint8_t *p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(f->cli, &p)) > 0) {
      moved = 1;
      assert_int_equal(nghttp2_session_mem_recv(f->h->session, p, (size_t)n), n);
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
    while ((n = nghttp2_session_mem_send(f->h->session, &p)) > 0) {
      moved = 1;
      assert_int_equal(nghttp2_session_mem_recv(f->cli, p, (size_t)n), n);
    }
    if (!moved) return;
  }
  fail_msg("pump does not settle");
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}

static int32_t request(fx *f, const char *path, const char *ctype, const char *encoding,
                       body *b) {
  nghttp2_nv nv[8] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", path),
                      NV(":authority", "test"), NV("te", "trailers")};
  size_t n = 5;
  if (ctype) {
    nghttp2_nv v = NV("content-type", ctype);
    nv[n++] = v;
  }
  if (encoding) {
    nghttp2_nv v = NV("grpc-encoding", encoding);
    nv[n++] = v;
  }
  nghttp2_data_provider prov = {.source.ptr = b, .read_callback = body_read};
  int32_t id = nghttp2_submit_request(f->cli, NULL, nv, n, b ? &prov : NULL, NULL);
  assert_true(id > 0);
  return id;
}

/* ---------------------------------------------------------------- tests */

static void timer_noop(uv_timer_t *t) { (void)t; }

/* A client whose window stays shut (it reads nothing) holds a call only
 * for the write timeout: then the stream is reset (RST_STREAM CANCEL) and
 * the handler's on_cancel hears DEADLINE_EXCEEDED. */
static void test_write_timeout_resets_stalled_stream(void **state) {
  fx *f = *state;
  hold_cancel_status = -1;
  uint8_t msg[5] = {0, 0, 0, 0, 0};
  body b = {msg, sizeof(msg), 0};
  int32_t id = request(f, "/t.S/Hold", "application/grpc", NULL, &b);
  pump(f);
  assert_int_equal(handled, 1);
  assert_int_equal(hold_cancel_status, -1); /* held, nothing sent: window 0 */
  assert_int_equal(outs[id].data.len, 0);
  /* Run the loop past the timeout (the sweep timer does not keep it alive). */
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  uv_timer_start(&t, timer_noop, 400, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  pump(f);
  assert_int_equal(hold_cancel_status, NET_GRPC_DEADLINE_EXCEEDED);
  assert_true(outs[id].closed);
  assert_int_equal(outs[id].error_code, NGHTTP2_CANCEL);
}

static int setup_stalled(void **state) {
  fx_write_timeout_ms = 100;
  fx_client_window = 0;
  int rc = setup(state);
  fx_write_timeout_ms = 0;
  fx_client_window = 65535;
  return rc;
}

static void test_unary_wire(void **state) {
  fx *f = *state;
  body b = {(const uint8_t *)"\0\0\0\0\3abc", 8, 0};
  int32_t id = request(f, "/t.S/Echo", "application/grpc", NULL, &b);
  pump(f);
  stream_out *o = &outs[id];
  assert_true(o->closed);
  assert_int_equal(o->error_code, 0);
  assert_string_equal(o->headers.data,
                      ":status: 200\ncontent-type: application/grpc\ngrpc-status: 0\n");
  assert_int_equal(o->data.len, 8);
  assert_memory_equal(o->data.data, "\0\0\0\0\3abc", 8);
}

static void test_trailers_only_with_message(void **state) {
  fx *f = *state;
  body b = {(const uint8_t *)"\0\0\0\0\0", 5, 0};
  int32_t id = request(f, "/t.S/Fail", "application/grpc+proto", NULL, &b);
  pump(f);
  stream_out *o = &outs[id];
  assert_string_equal(o->headers.data, ":status: 200\ncontent-type: application/grpc\n"
                                       "grpc-status: 5\ngrpc-message: gone: 100%25%0A\n");
  assert_int_equal(o->data.len, 0);
}

static void test_unknown_method_wire(void **state) {
  fx *f = *state;
  body b = {(const uint8_t *)"\0\0\0\0\0", 5, 0};
  int32_t id = request(f, "/t.S/Nope", "application/grpc", NULL, &b);
  pump(f);
  assert_non_null(strstr(outs[id].headers.data, "grpc-status: 12\n"));
  assert_int_equal(handled, 0);
}

static void test_compressed_without_encoding(void **state) {
  fx *f = *state;
  body b = {(const uint8_t *)"\1\0\0\0\3abc", 8, 0};
  int32_t id = request(f, "/t.S/Echo", "application/grpc", NULL, &b);
  pump(f);
  assert_non_null(strstr(outs[id].headers.data, "grpc-status: 13\n")); /* INTERNAL */
  assert_int_equal(handled, 0);
}

static void test_compressed_unknown_encoding(void **state) {
  fx *f = *state;
  body b = {(const uint8_t *)"\1\0\0\0\3abc", 8, 0};
  int32_t id = request(f, "/t.S/Echo", "application/grpc", "gzip", &b);
  pump(f);
  assert_non_null(strstr(outs[id].headers.data, "grpc-status: 12\n")); /* UNIMPLEMENTED */
  /* An uncompressed message is fine whatever the encoding header says. */
  body b2 = {(const uint8_t *)"\0\0\0\0\1z", 6, 0};
  int32_t id2 = request(f, "/t.S/Echo", "application/grpc", "gzip", &b2);
  pump(f);
  assert_non_null(strstr(outs[id2].headers.data, "grpc-status: 0\n"));
  assert_int_equal(handled, 1);
}

static void test_bad_content_type(void **state) {
  fx *f = *state;
  body b = {(const uint8_t *)"\0\0\0\0\0", 5, 0};
  int32_t id = request(f, "/t.S/Echo", "application/json", NULL, &b);
  pump(f);
  assert_non_null(strstr(outs[id].headers.data, "grpc-status: 13\n"));
  assert_int_equal(handled, 0);
}

static void test_two_request_messages(void **state) {
  fx *f = *state;
  body b = {(const uint8_t *)"\0\0\0\0\1a\0\0\0\0\1b", 12, 0};
  int32_t id = request(f, "/t.S/Echo", "application/grpc", NULL, &b);
  pump(f);
  assert_non_null(strstr(outs[id].headers.data, "grpc-status: 12\n"));
  assert_int_equal(handled, 0);
}

static void test_no_request_message(void **state) {
  fx *f = *state;
  int32_t id = request(f, "/t.S/Echo", "application/grpc", NULL, NULL);
  pump(f);
  assert_non_null(strstr(outs[id].headers.data, "grpc-status: 12\n"));
  assert_int_equal(handled, 0);
}

static void test_too_large_and_truncated(void **state) {
  fx *f = *state;
  static uint8_t big[5 + 101];
  big[4] = 101;
  body b = {big, sizeof(big), 0};
  int32_t id = request(f, "/t.S/Echo", "application/grpc", NULL, &b);
  body b2 = {(const uint8_t *)"\0\0\0\0\5ab", 7, 0};
  int32_t id2 = request(f, "/t.S/Echo", "application/grpc", NULL, &b2);
  pump(f);
  assert_non_null(strstr(outs[id].headers.data, "grpc-status: 8\n")); /* RESOURCE_EXHAUSTED */
  assert_non_null(strstr(outs[id2].headers.data, "grpc-status: 13\n"));
  assert_int_equal(handled, 0);
}

static void test_many_requests_one_connection(void **state) {
  fx *f = *state;
  body bs[12];
  int32_t ids[12];
  for (int i = 0; i < 12; i++) {
    bs[i] = (body){(const uint8_t *)"\0\0\0\0\2hi", 7, 0};
    ids[i] = request(f, "/t.S/Echo", "application/grpc", NULL, &bs[i]);
  }
  pump(f);
  for (int i = 0; i < 12; i++) {
    stream_out *o = &outs[ids[i]];
    assert_true(o->closed);
    assert_non_null(strstr(o->headers.data, "grpc-status: 0\n"));
  }
  assert_int_equal(handled, 12);
}

/* The client sessions' allocator (h2_mem.c): blocks of every size keep
 * their bytes through realloc across size classes and into malloc's
 * range, calloc zeroes a reused block, a freed block is reused. (Sanitizer
 * builds give sessions malloc, but test the pool here all the same.) */
static void test_h2_mem(void **state) {
  (void)state;
  nghttp2_mem *m = net__h2_mem_pool();
  enum { N = 3000 };
  static unsigned char *p[N];
  static size_t len[N];
  for (size_t i = 0; i < N; i++) {
    len[i] = 1 + (i * 37) % 1500; /* every class, and beyond 1024 */
    p[i] = m->malloc(len[i], m->mem_user_data);
    assert_non_null(p[i]);
    assert_int_equal((uintptr_t)p[i] % 16, 0);
    memset(p[i], (int)(i & 0xff), len[i]);
  }
  for (size_t i = 0; i < N; i++)
    for (size_t j = 0; j < len[i]; j++) assert_int_equal(p[i][j], i & 0xff);
  /* Grow each to twice (crossing classes and into malloc), then shrink. */
  for (size_t i = 0; i < N; i++) {
    unsigned char *q = m->realloc(p[i], 2 * len[i], m->mem_user_data);
    assert_non_null(q);
    for (size_t j = 0; j < len[i]; j++) assert_int_equal(q[j], i & 0xff);
    memset(q + len[i], 0xee, len[i]);
    p[i] = m->realloc(q, len[i] / 2 + 1, m->mem_user_data);
    assert_non_null(p[i]);
    for (size_t j = 0; j < len[i] / 2 + 1; j++) assert_int_equal(p[i][j], i & 0xff);
  }
  for (size_t i = 0; i < N; i++) m->free(p[i], m->mem_user_data);
  void *a = m->malloc(100, m->mem_user_data);
  m->free(a, m->mem_user_data);
  unsigned char *b = m->calloc(10, 10, m->mem_user_data);
  assert_ptr_equal(a, b); /* the block just freed */
  for (size_t j = 0; j < 100; j++) assert_int_equal(b[j], 0);
  m->free(b, m->mem_user_data);
  assert_null(m->calloc(SIZE_MAX / 2, 4, m->mem_user_data));
  m->free(NULL, m->mem_user_data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_h2_mem),
      cmocka_unit_test_setup_teardown(test_unary_wire, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trailers_only_with_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_method_wire, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compressed_without_encoding, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compressed_unknown_encoding, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_content_type, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_request_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_request_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_too_large_and_truncated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_requests_one_connection, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_timeout_resets_stalled_stream, setup_stalled,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
