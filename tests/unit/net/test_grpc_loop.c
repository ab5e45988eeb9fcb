/* test_grpc_loop.c: our gRPC client against our gRPC server in one process
 * on one loop over 127.0.0.1 — unary, streaming, deadline, cancel, unknown
 * method, size limits, status messages, a paused client holding the server
 * back, connection failure, graceful shutdown and a client closed while its
 * connection is still being made. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "net_int.h"

/* ---------------------------------------------------------------- server side */

typedef struct srv_stats {
  int started, finished, cancelled;
  int last_cancel_status;
  int blocked;          /* a streaming handler is waiting for on_writable */
  int64_t bytes_queued; /* message bytes accepted by net_grpc_call_send */
  char last_md[64];
  int64_t last_left_ms; /* what was left of the last Echo's deadline, -1: none */
} srv_stats;

static srv_stats S;

typedef struct stream_job {
  net_grpc_call *call;
  int64_t left; /* messages left; < 0: until cancelled */
  size_t size;
  uv_timer_t timer;
  int done;
} stream_job;

static void stream_pump(net_grpc_call *call, void *arg);

static void on_cancel(net_grpc_call *call, int status, void *arg) {
  S.cancelled++;
  S.last_cancel_status = status;
  S.blocked = 0;
  assert_true(net_grpc_call_cancelled(call));
  assert_int_equal(net_grpc_call_finish(call, NET_GRPC_OK, NULL), ORR_ECANCELED);
}

static void stream_pump(net_grpc_call *call, void *arg) {
  stream_job *j = arg;
  static char buf[1 << 20];
  S.blocked = 0;
  while (j->left != 0) {
    int rc = net_grpc_call_send(call, buf, j->size);
    if (rc == ORR_EAGAIN) {
      S.blocked = 1;
      return; /* on_writable will call again */
    }
    assert_int_equal(rc, 0);
    S.bytes_queued += (int64_t)j->size;
    if (j->left > 0) j->left--;
  }
  S.finished++;
  net_grpc_call_finish(call, NET_GRPC_OK, NULL);
}

static void h_stream(net_grpc_call *call, const uint8_t *req, size_t len, void *arg) {
  S.started++;
  stream_job *j = orr_arena_calloc(net_grpc_call_arena(call), 1, sizeof(*j));
  char txt[64];
  snprintf(txt, sizeof(txt), "%.*s", (int)len, (const char *)req);
  long long count = 0, size = 0;
  assert_int_equal(sscanf(txt, "%lld %lld", &count, &size), 2);
  j->left = count;
  j->size = (size_t)size;
  net_grpc_call_set_callbacks(call, stream_pump, on_cancel, j);
  stream_pump(call, j);
}

static void h_echo(net_grpc_call *call, const uint8_t *req, size_t len, void *arg) {
  S.started++;
  const char *md = net_grpc_call_metadata(call, "x-test");
  snprintf(S.last_md, sizeof(S.last_md), "%s", md ? md : "");
  uint64_t dl = net_grpc_call_deadline_ns(call);
  S.last_left_ms = dl ? ((int64_t)dl - (int64_t)orr_mono_ns()) / 1000000 : -1;
  if (len > 7 && memcmp(req, "status:", 7) == 0) {
    /* "status:<code>:<message>" */
    char *s = orr_arena_strndup(net_grpc_call_arena(call), (const char *)req + 7, len - 7);
    int code = atoi(s);
    char *msg = strchr(s, ':');
    S.finished++;
    net_grpc_call_finish(call, code, msg ? msg + 1 : NULL);
    return;
  }
  assert_int_equal(net_grpc_call_send(call, req, len), 0);
  assert_int_equal(net_grpc_call_send(call, req, len), ORR_EINVAL); /* unary: one */
  S.finished++;
  net_grpc_call_finish(call, NET_GRPC_OK, NULL);
}

static void h_hang(net_grpc_call *call, const uint8_t *req, size_t len, void *arg) {
  S.started++;
  net_grpc_call_set_callbacks(call, NULL, on_cancel, NULL);
}

static void slow_done(uv_timer_t *t) {
  net_grpc_call *call = t->data;
  assert_int_equal(net_grpc_call_send(call, "late", 4), 0);
  S.finished++;
  assert_int_equal(net_grpc_call_finish(call, NET_GRPC_OK, NULL), 0);
  uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static void h_slow(net_grpc_call *call, const uint8_t *req, size_t len, void *arg) {
  S.started++;
  uv_timer_t *t = malloc(sizeof(*t));
  uv_timer_init(uv_default_loop(), t);
  t->data = call;
  uv_timer_start(t, slow_done, 100, 0);
}

/* ---------------------------------------------------------------- client side */

typedef struct result {
  int done;
  int status;
  char message[256];
  int msgs;
  int64_t bytes;
  char first[256];
  int pause_after;     /* pause once this many messages arrived (0: never) */
  int cancel_after;    /* cancel once this many messages arrived (0: never) */
  net_grpc_ccall *call;
} result;

static int on_msg(net_grpc_ccall *c, const uint8_t *msg, size_t len, void *arg) {
  result *r = arg;
  if (r->msgs == 0) snprintf(r->first, sizeof(r->first), "%.*s", (int)len, (const char *)msg);
  r->msgs++;
  r->bytes += (int64_t)len;
  if (r->cancel_after && r->msgs == r->cancel_after) net_grpc_ccall_cancel(c);
  if (r->pause_after && r->msgs == r->pause_after) return NET_GRPC_PAUSE;
  return 0;
}

static void on_done(net_grpc_ccall *c, int status, const char *message, void *arg) {
  result *r = arg;
  assert_int_equal(r->done, 0); /* exactly once */
  r->done = 1;
  r->status = status;
  snprintf(r->message, sizeof(r->message), "%s", message);
}

/* ---------------------------------------------------------------- fixture */

typedef struct fixture {
  uv_loop_t *loop;
  net_grpc_server *srv;
  net_grpc_client *cli;
  int port;
} fixture;

static orr_registry *registry;

static void watchdog(uv_timer_t *t) { fail_msg("test timed out waiting"); }

/* Runs the loop until |*flag| becomes non-zero (10 s at most). */
static void run_until(uv_loop_t *loop, const int *flag) {
  uv_timer_t wd;
  uv_timer_init(loop, &wd);
  uv_timer_start(&wd, watchdog, 10000, 0);
  while (!*flag) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&wd, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static int setup(void **state) {
  static fixture f;
  memset(&f, 0, sizeof(f));
  memset(&S, 0, sizeof(S));
  f.loop = uv_default_loop();
  registry = orr_registry_new();
  net_grpc_server_opts o = {.max_recv_msg = 64 * 1024, .registry = registry};
  assert_int_equal(net_grpc_server_new(f.loop, &o, &f.srv), 0);
  assert_int_equal(net_grpc_server_register(f.srv, "/t.S/Echo", NET_GRPC_UNARY, h_echo, NULL), 0);
  assert_int_equal(net_grpc_server_register(f.srv, "/t.S/Echo", NET_GRPC_UNARY, h_echo, NULL),
                   ORR_EEXISTS);
  assert_int_equal(
      net_grpc_server_register(f.srv, "/t.S/Stream", NET_GRPC_SERVER_STREAMING, h_stream, NULL), 0);
  assert_int_equal(
      net_grpc_server_register(f.srv, "/t.S/Hang", NET_GRPC_SERVER_STREAMING, h_hang, NULL), 0);
  assert_int_equal(net_grpc_server_register(f.srv, "/t.S/Slow", NET_GRPC_UNARY, h_slow, NULL), 0);
  assert_int_equal(net_grpc_server_listen(f.srv, "127.0.0.1", 0), 0);
  f.port = net_grpc_server_port(f.srv);
  assert_true(f.port > 0);
  assert_int_equal(net_grpc_client_new(f.loop, "127.0.0.1", f.port, &f.cli), 0);
  *state = &f;
  return 0;
}

static void set_flag(void *arg) { *(int *)arg = 1; }

static int teardown(void **state) {
  fixture *f = *state;
  int cli_closed = 0, srv_closed = 0;
  if (f->cli) net_grpc_client_close(f->cli, set_flag, &cli_closed);
  else cli_closed = 1;
  if (f->srv) net_grpc_server_close(f->srv, 1000, set_flag, &srv_closed);
  else srv_closed = 1;
  run_until(f->loop, &cli_closed);
  run_until(f->loop, &srv_closed);
  uv_run(f->loop, UV_RUN_NOWAIT);
  orr_registry_destroy(registry); /* every server that borrowed it is gone */
  registry = NULL;
  return 0;
}

static void call(fixture *f, const char *path, const char *req, const net_grpc_call_opts *o,
                 result *r) {
  assert_int_equal(net_grpc_client_call(f->cli, path, req, strlen(req), o, on_msg, on_done, r,
                                        &r->call),
                   0);
}

/* ---------------------------------------------------------------- tests */

static void test_unary(void **state) {
  fixture *f = *state;
  const char *md[] = {"x-test", "hello-md", NULL};
  net_grpc_call_opts o = {.unary = 1, .metadata = md, .timeout_ms = 5000};
  result r = {0}, r2 = {0};
  call(f, "/t.S/Echo", "ping", &o, &r);
  call(f, "/t.S/Echo", "pong", &o, &r2); /* multiplexed on the same connection */
  run_until(f->loop, &r.done);
  run_until(f->loop, &r2.done);
  assert_int_equal(r.status, NET_GRPC_OK);
  assert_string_equal(r.message, "");
  assert_int_equal(r.msgs, 1);
  assert_string_equal(r.first, "ping");
  assert_int_equal(r2.status, NET_GRPC_OK);
  assert_string_equal(r2.first, "pong");
  assert_string_equal(S.last_md, "hello-md");
}

/* The deadline the server gets: a timeout of 10 s or more goes out rounded
 * up to whole seconds (an HPACK-indexed value that a fan-out's calls
 * share), a shorter one exactly. */
static void test_timeout_sent(void **state) {
  fixture *f = *state;
  const int64_t tmo[] = {12345, 5000, 10000};
  /* 12,345 ms goes out as 13 s: the server has more left than we asked. */
  const int64_t lo[] = {12346, 4000, 9000}, hi[] = {13000, 5000, 10000};
  for (size_t i = 0; i < 3; i++) {
    net_grpc_call_opts o = {.unary = 1, .timeout_ms = tmo[i]};
    result r = {0};
    call(f, "/t.S/Echo", "t", &o, &r);
    run_until(f->loop, &r.done);
    assert_int_equal(r.status, NET_GRPC_OK);
    assert_in_range(S.last_left_ms, lo[i], hi[i]);
  }
}

static void test_many_concurrent(void **state) {
  /* More calls than the server's 100 concurrent streams, multiplexed on one
   * connection: nghttp2 queues the rest, every call completes once. */
  fixture *f = *state;
  enum { NU = 300, NS = 20 };
  static result ru[NU], rs[NS];
  memset(ru, 0, sizeof(ru));
  memset(rs, 0, sizeof(rs));
  net_grpc_call_opts o = {.unary = 1, .timeout_ms = 10000};
  char req[32];
  for (int i = 0; i < NS; i++) call(f, "/t.S/Stream", "200 3000", NULL, &rs[i]);
  for (int i = 0; i < NU; i++) {
    snprintf(req, sizeof(req), "req-%d", i);
    call(f, "/t.S/Echo", req, &o, &ru[i]);
  }
  for (int i = 0; i < NU; i++) run_until(f->loop, &ru[i].done);
  for (int i = 0; i < NS; i++) run_until(f->loop, &rs[i].done);
  for (int i = 0; i < NU; i++) {
    snprintf(req, sizeof(req), "req-%d", i);
    assert_int_equal(ru[i].status, NET_GRPC_OK);
    assert_string_equal(ru[i].first, req);
  }
  for (int i = 0; i < NS; i++) {
    assert_int_equal(rs[i].status, NET_GRPC_OK);
    assert_int_equal(rs[i].bytes, 200 * 3000);
  }
}

static void test_metrics(void **state) {
  fixture *f = *state;
  net_grpc_call_opts o = {.unary = 1};
  result r1 = {0}, r2 = {0}, r3 = {0};
  call(f, "/t.S/Echo", "a", &o, &r1);
  call(f, "/t.S/Echo", "status:5:gone", &o, &r2);
  r3.cancel_after = 1;
  call(f, "/t.S/Stream", "-1 10", NULL, &r3);
  run_until(f->loop, &r1.done);
  run_until(f->loop, &r2.done);
  run_until(f->loop, &r3.done);
  run_until(f->loop, &S.cancelled);
  orr_buf out = {0};
  assert_int_equal(orr_registry_render(registry, &out), 0);
  const char *want[] = {
      "grpc_server_started_total{grpc_method=\"Echo\",grpc_service=\"t.S\",grpc_type=\"unary\"} 2",
      "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Echo\",grpc_service=\"t.S\","
      "grpc_type=\"unary\"} 1",
      "grpc_server_handled_total{grpc_code=\"NOT_FOUND\",grpc_method=\"Echo\","
      "grpc_service=\"t.S\",grpc_type=\"unary\"} 1",
      "grpc_server_handled_total{grpc_code=\"CANCELLED\",grpc_method=\"Stream\","
      "grpc_service=\"t.S\",grpc_type=\"server_stream\"} 1",
      "grpc_server_handling_seconds_count{grpc_method=\"Echo\",grpc_service=\"t.S\","
      "grpc_type=\"unary\"} 2",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (!strstr(out.data, want[i])) fail_msg("missing %s in\n%s", want[i], out.data);
  orr_buf_free(&out);
}

static void test_status_message(void **state) {
  fixture *f = *state;
  result r = {0};
  call(f, "/t.S/Echo", "status:5:no such series: {job=\"a\"} 100% \xc3\xa9\n", NULL, &r);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_NOT_FOUND);
  assert_string_equal(r.message, "no such series: {job=\"a\"} 100% \xc3\xa9\n");
  assert_int_equal(r.msgs, 0);
}

static void test_unknown_method(void **state) {
  fixture *f = *state;
  result r = {0};
  call(f, "/t.S/Nope", "x", NULL, &r);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_UNIMPLEMENTED);
  assert_non_null(strstr(r.message, "/t.S/Nope"));
  assert_int_equal(S.started, 0);
}

static void test_streaming(void **state) {
  fixture *f = *state;
  result r = {0};
  call(f, "/t.S/Stream", "2000 1000", NULL, &r);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_OK);
  assert_int_equal(r.msgs, 2000);
  assert_int_equal(r.bytes, 2000 * 1000);
  assert_int_equal(S.finished, 1);
}

static void test_max_message(void **state) {
  fixture *f = *state;
  /* Request larger than the server's 64 KiB limit. */
  char *big = malloc(100 * 1024);
  memset(big, 'a', 100 * 1024 - 1);
  big[100 * 1024 - 1] = 0;
  result r = {0};
  call(f, "/t.S/Echo", big, NULL, &r);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_RESOURCE_EXHAUSTED);
  assert_int_equal(S.started, 0);
  /* Response larger than the client's limit. */
  result r2 = {0};
  net_grpc_call_opts o = {.max_recv_msg = 1000};
  call(f, "/t.S/Stream", "3 5000", &o, &r2);
  run_until(f->loop, &r2.done);
  assert_int_equal(r2.status, NET_GRPC_RESOURCE_EXHAUSTED);
  assert_int_equal(r2.msgs, 0);
  free(big);
}

static void test_deadline(void **state) {
  fixture *f = *state;
  result r = {0};
  net_grpc_call_opts o = {.timeout_ms = 150};
  uint64_t t0 = orr_mono_ns();
  call(f, "/t.S/Hang", "x", &o, &r);
  run_until(f->loop, &r.done);
  uint64_t took_ms = (orr_mono_ns() - t0) / 1000000;
  assert_int_equal(r.status, NET_GRPC_DEADLINE_EXCEEDED);
  assert_true(took_ms >= 140 && took_ms < 3000);
  run_until(f->loop, &S.cancelled);
  assert_int_equal(S.started, 1);
  /* The server's own timer or the client's RST: either way the handler is
   * told, and not twice. */
  assert_true(S.last_cancel_status == NET_GRPC_DEADLINE_EXCEEDED ||
              S.last_cancel_status == NET_GRPC_CANCELLED);
  assert_int_equal(S.cancelled, 1);
}

/* A peer that accepts and never answers (a hung replica): only the client's
 * own deadlines end its calls. Several calls on one client, the earliest
 * deadline submitted last, each end DEADLINE_EXCEEDED at its own deadline,
 * in deadline order; one that ends before its deadline is not touched by
 * the client's deadline timer afterwards. */
typedef struct silent {
  uv_tcp_t lst;
  uv_tcp_t conn[4];
  int nconn;
} silent;

static void silent_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char sink[4096];
  *b = uv_buf_init(sink, sizeof(sink));
}

static void silent_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {}

static void silent_accept(uv_stream_t *l, int status) {
  silent *sp = l->data;
  assert_int_equal(status, 0);
  assert_true(sp->nconn < 4);
  uv_tcp_t *c = &sp->conn[sp->nconn++];
  uv_tcp_init(l->loop, c);
  assert_int_equal(uv_accept(l, (uv_stream_t *)c), 0);
  uv_read_start((uv_stream_t *)c, silent_alloc, silent_read);
}

typedef struct timed {
  result r;
  uint64_t t0;
  int64_t took_ms;
  int order;
} timed;

static int done_seq;

static void timed_done(net_grpc_ccall *c, int status, const char *message, void *arg) {
  timed *t = arg;
  on_done(c, status, message, &t->r);
  t->took_ms = (int64_t)((orr_mono_ns() - t->t0) / 1000000);
  t->order = ++done_seq;
}

static void test_deadlines_silent_peer(void **state) {
  fixture *f = *state;
  silent sp = {0};
  uv_tcp_init(f->loop, &sp.lst);
  sp.lst.data = &sp;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&sp.lst, (const struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&sp.lst, 8, silent_accept), 0);
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  uv_tcp_getsockname(&sp.lst, (struct sockaddr *)&ss, &len);
  int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  net_grpc_client *c;
  assert_int_equal(net_grpc_client_new(f->loop, "127.0.0.1", port, &c), 0);
  static const int64_t tmo[] = {600, 400, 200, 30000};
  timed t[4];
  memset(t, 0, sizeof(t));
  done_seq = 0;
  uv_update_time(f->loop); /* deadlines count from the loop's clock */
  for (int i = 0; i < 4; i++) {
    net_grpc_call_opts o = {.timeout_ms = tmo[i]};
    t[i].t0 = orr_mono_ns();
    assert_int_equal(net_grpc_client_call(c, "/t.S/Echo", "x", 1, &o, on_msg, timed_done, &t[i],
                                          &t[i].r.call),
                     0);
  }
  /* The 30 s one is cancelled before its deadline. */
  net_grpc_ccall_cancel(t[3].r.call);
  run_until(f->loop, &t[3].r.done);
  assert_int_equal(t[3].r.status, NET_GRPC_CANCELLED);
  for (int i = 0; i < 3; i++) {
    run_until(f->loop, &t[i].r.done);
    assert_int_equal(t[i].r.status, NET_GRPC_DEADLINE_EXCEEDED);
    assert_true(t[i].took_ms >= tmo[i] - 10);
    assert_true(t[i].took_ms < tmo[i] + 1500);
  }
  assert_int_equal(t[3].order, 1);
  assert_int_equal(t[2].order, 2); /* 200 ms */
  assert_int_equal(t[1].order, 3); /* 400 ms */
  assert_int_equal(t[0].order, 4); /* 600 ms */
  int closed = 0;
  net_grpc_client_close(c, set_flag, &closed);
  run_until(f->loop, &closed);
  for (int i = 0; i < sp.nconn; i++) uv_close((uv_handle_t *)&sp.conn[i], NULL);
  uv_close((uv_handle_t *)&sp.lst, NULL);
  uv_run(f->loop, UV_RUN_NOWAIT);
}

static void test_server_deadline(void **state) {
  /* The server enforces grpc-timeout by itself: the header goes out as plain
   * metadata and the client has no local deadline, so DEADLINE_EXCEEDED can
   * only come from the server. */
  fixture *f = *state;
  result r = {0};
  const char *md[] = {"grpc-timeout", "200m", NULL};
  net_grpc_call_opts o = {.metadata = md};
  call(f, "/t.S/Hang", "x", &o, &r);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_DEADLINE_EXCEEDED);
  run_until(f->loop, &S.cancelled);
  assert_int_equal(S.last_cancel_status, NET_GRPC_DEADLINE_EXCEEDED);
  assert_int_equal(S.cancelled, 1);
}

static void test_cancel(void **state) {
  fixture *f = *state;
  result r = {0};
  r.cancel_after = 3;
  call(f, "/t.S/Stream", "-1 100", NULL, &r);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_CANCELLED);
  assert_int_equal(r.msgs, 3); /* nothing delivered after cancel */
  run_until(f->loop, &S.cancelled);
  assert_int_equal(S.last_cancel_status, NET_GRPC_CANCELLED);
  /* The connection is still good. */
  result r2 = {0};
  net_grpc_call_opts o = {.unary = 1};
  call(f, "/t.S/Echo", "after", &o, &r2);
  run_until(f->loop, &r2.done);
  assert_int_equal(r2.status, NET_GRPC_OK);
}

typedef struct stall_check {
  uv_timer_t t;
  int64_t last;
  int still;
  int stalled;
} stall_check;

/* Declares the server stalled once its handler is blocked and nothing more
 * was queued for 3 consecutive 100 ms checks. */
static void stall_tick(uv_timer_t *t) {
  stall_check *s = t->data;
  if (S.blocked && S.bytes_queued == s->last)
    s->still++;
  else
    s->still = 0;
  s->last = S.bytes_queued;
  if (s->still >= 3) {
    s->stalled = 1;
    uv_timer_stop(t);
  }
}

static void test_flow_control_paused_client(void **state) {
  fixture *f = *state;
  result r = {0};
  r.pause_after = 1;
  /* 32 MiB in 64 KiB messages. */
  call(f, "/t.S/Stream", "512 65536", NULL, &r);
  stall_check sc = {0};
  uv_timer_init(f->loop, &sc.t);
  sc.t.data = &sc;
  uv_timer_start(&sc.t, stall_tick, 100, 100);
  run_until(f->loop, &sc.stalled);
  /* Held back by the client's 1 MiB stream window plus the server's 256 KiB
   * queue and a message or two in flight — nowhere near 32 MiB. */
  assert_int_equal(r.msgs, 1);
  assert_true(S.bytes_queued < 2 * 1024 * 1024);
  assert_false(r.done);
  net_grpc_ccall_resume(r.call);
  run_until(f->loop, &r.done);
  uv_close((uv_handle_t *)&sc.t, NULL);
  uv_run(f->loop, UV_RUN_NOWAIT);
  assert_int_equal(r.status, NET_GRPC_OK);
  assert_int_equal(r.msgs, 512);
  assert_int_equal(r.bytes, 512LL * 65536);
}

typedef struct trailer_wait {
  uv_timer_t t;
  net_grpc_ccall *call;
  int seen;
} trailer_wait;

static void trailer_tick(uv_timer_t *t) {
  trailer_wait *w = t->data;
  if (net_grpc_ccall_metadata(w->call, "grpc-status")) {
    w->seen = 1;
    uv_timer_stop(t);
  }
}

static void test_pause_with_trailers_pending(void **state) {
  /* The whole response, trailers included, arrives while the client is
   * paused: the status waits until the held messages are delivered. */
  fixture *f = *state;
  result r = {0};
  r.pause_after = 1;
  call(f, "/t.S/Stream", "3 10", NULL, &r);
  trailer_wait w = {.call = NULL};
  run_until(f->loop, &S.finished);
  w.call = r.call;
  uv_timer_init(f->loop, &w.t);
  w.t.data = &w;
  uv_timer_start(&w.t, trailer_tick, 5, 5);
  run_until(f->loop, &w.seen);
  uv_close((uv_handle_t *)&w.t, NULL);
  uv_run(f->loop, UV_RUN_NOWAIT);
  assert_string_equal(net_grpc_ccall_metadata(r.call, "grpc-status"), "0");
  assert_int_equal(r.msgs, 1);
  assert_false(r.done);
  net_grpc_ccall_resume(r.call);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_OK);
  assert_int_equal(r.msgs, 3);
}

static void test_reconnect_after_restart(void **state) {
  /* The server goes away and comes back on the same port (by name this
   * time): the client opens a new connection for the next call. */
  fixture *f = *state;
  net_grpc_call_opts o = {.unary = 1};
  result r1 = {0};
  call(f, "/t.S/Echo", "one", &o, &r1);
  run_until(f->loop, &r1.done);
  assert_int_equal(r1.status, NET_GRPC_OK);
  int closed = 0;
  net_grpc_server_close(f->srv, 1000, set_flag, &closed);
  run_until(f->loop, &closed);
  assert_int_equal(net_grpc_server_new(f->loop, NULL, &f->srv), 0);
  assert_int_equal(net_grpc_server_register(f->srv, "/t.S/Echo", NET_GRPC_UNARY, h_echo, NULL), 0);
  assert_int_equal(net_grpc_server_listen(f->srv, "127.0.0.1", f->port), 0);
  result r2 = {0};
  call(f, "/t.S/Echo", "two", &o, &r2);
  run_until(f->loop, &r2.done);
  assert_int_equal(r2.status, NET_GRPC_OK);
  assert_string_equal(r2.first, "two");
  /* And by name. */
  net_grpc_client *byname;
  assert_int_equal(net_grpc_client_new(f->loop, "localhost", f->port, &byname), 0);
  result r3 = {0};
  assert_int_equal(
      net_grpc_client_call(byname, "/t.S/Echo", "three", 5, &o, on_msg, on_done, &r3, NULL), 0);
  run_until(f->loop, &r3.done);
  assert_int_equal(r3.status, NET_GRPC_OK);
  assert_string_equal(r3.first, "three");
  int cclosed = 0;
  net_grpc_client_close(byname, set_flag, &cclosed);
  run_until(f->loop, &cclosed);
}

/* Moves bytes between our client's in-memory connection and a raw nghttp2
 * server session. */
static void pump_raw(uv_loop_t *loop, net__h2_conn *h, nghttp2_session *raw) {
  for (int i = 0; i < 100; i++) {
    int moved = 0;
    const uint8_t *p;
    ssize_t n;
    uv_run(loop, UV_RUN_NOWAIT);
    while (!h->closing && (n = nghttp2_session_mem_send(h->session, &p)) > 0) {
      moved = 1;
      assert_int_equal(nghttp2_session_mem_recv(raw, p, (size_t)n), n);
    }
    while (!h->closing && (n = nghttp2_session_mem_send(raw, &p)) > 0) {
      moved = 1;
      assert_int_equal(nghttp2_session_mem_recv(h->session, p, (size_t)n), n);
    }
    if (!moved) return;
  }
}

static void test_refused_stream_retried(void **state) {
  /* A server that sends GOAWAY (last stream 0) after our request went out
   * never processed it: the call goes again, on a new connection — here to
   * the real server — and succeeds. */
  fixture *f = *state;
  net__h2_conn *h;
  assert_int_equal(net__grpc_client_fake_conn(f->cli, &h), 0);
  nghttp2_session_callbacks *cbs;
  nghttp2_session *raw;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_server_new(&raw, cbs, NULL);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_submit_settings(raw, NGHTTP2_FLAG_NONE, NULL, 0);
  result r = {0};
  net_grpc_call_opts o = {.unary = 1, .timeout_ms = 5000};
  call(f, "/t.S/Echo", "again", &o, &r);
  pump_raw(f->loop, h, raw);
  assert_false(r.done);
  assert_int_equal(S.started, 0); /* the real server has not seen it yet */
  nghttp2_submit_goaway(raw, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
  pump_raw(f->loop, h, raw);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_OK);
  assert_string_equal(r.first, "again");
  assert_int_equal(S.started, 1);
  nghttp2_session_del(raw);
}

static void test_paused_calls_do_not_block_others(void **state) {
  /* 20 paused streams each hold a full stream window (1 MiB): more than the
   * 16 MiB connection window, which is given back on receipt, so other
   * calls on the connection still go through. */
  fixture *f = *state;
  enum { NP = 20 };
  static result rp[NP];
  memset(rp, 0, sizeof(rp));
  for (int i = 0; i < NP; i++) {
    rp[i].pause_after = 1;
    call(f, "/t.S/Stream", "64 65536", NULL, &rp[i]);
  }
  stall_check sc = {0};
  uv_timer_init(f->loop, &sc.t);
  sc.t.data = &sc;
  uv_timer_start(&sc.t, stall_tick, 100, 100);
  run_until(f->loop, &sc.stalled);
  uv_close((uv_handle_t *)&sc.t, NULL);
  assert_true(S.bytes_queued > 16LL * 1024 * 1024); /* beyond the connection window */
  result r = {0};
  net_grpc_call_opts o = {.unary = 1};
  call(f, "/t.S/Echo", "through", &o, &r);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_OK);
  for (int i = 0; i < NP; i++) {
    assert_int_equal(rp[i].msgs, 1);
    assert_false(rp[i].done);
    net_grpc_ccall_resume(rp[i].call);
  }
  for (int i = 0; i < NP; i++) {
    run_until(f->loop, &rp[i].done);
    assert_int_equal(rp[i].status, NET_GRPC_OK);
    assert_int_equal(rp[i].bytes, 64LL * 65536);
  }
}

static void test_connection_refused(void **state) {
  fixture *f = *state;
  /* A port that was free a moment ago: a server we close at once. */
  net_grpc_server *tmp;
  assert_int_equal(net_grpc_server_new(f->loop, NULL, &tmp), 0);
  assert_int_equal(net_grpc_server_listen(tmp, "127.0.0.1", 0), 0);
  int port = net_grpc_server_port(tmp);
  int closed = 0;
  net_grpc_server_close(tmp, 0, set_flag, &closed);
  run_until(f->loop, &closed);
  net_grpc_client *c;
  assert_int_equal(net_grpc_client_new(f->loop, "127.0.0.1", port, &c), 0);
  result r = {0};
  assert_int_equal(net_grpc_client_call(c, "/t.S/Echo", "x", 1, NULL, on_msg, on_done, &r, NULL), 0);
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_UNAVAILABLE);
  int cclosed = 0;
  net_grpc_client_close(c, set_flag, &cclosed);
  run_until(f->loop, &cclosed);
}

static void test_graceful_shutdown(void **state) {
  fixture *f = *state;
  result r = {0};
  net_grpc_call_opts o = {.unary = 1};
  call(f, "/t.S/Slow", "x", &o, &r);
  run_until(f->loop, &S.started);
  int closed = 0;
  net_grpc_server_close(f->srv, 5000, set_flag, &closed);
  f->srv = NULL;
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_OK); /* the call in flight finished */
  assert_string_equal(r.first, "late");
  run_until(f->loop, &closed);
  /* A new call finds nobody listening. */
  result r2 = {0};
  call(f, "/t.S/Echo", "x", NULL, &r2);
  run_until(f->loop, &r2.done);
  assert_int_equal(r2.status, NET_GRPC_UNAVAILABLE);
}

static void test_shutdown_grace_expires(void **state) {
  fixture *f = *state;
  result r = {0};
  call(f, "/t.S/Hang", "x", NULL, &r);
  run_until(f->loop, &S.started);
  int closed = 0;
  net_grpc_server_close(f->srv, 100, set_flag, &closed);
  f->srv = NULL;
  run_until(f->loop, &r.done);
  run_until(f->loop, &closed);
  assert_int_equal(r.status, NET_GRPC_UNAVAILABLE);
  assert_int_equal(S.cancelled, 1);
  assert_int_equal(S.last_cancel_status, NET_GRPC_UNAVAILABLE);
}

static void test_client_close_cancels(void **state) {
  fixture *f = *state;
  result r = {0};
  call(f, "/t.S/Hang", "x", NULL, &r);
  run_until(f->loop, &S.started);
  int closed = 0;
  net_grpc_client_close(f->cli, set_flag, &closed);
  f->cli = NULL;
  run_until(f->loop, &r.done);
  assert_int_equal(r.status, NET_GRPC_CANCELLED);
  run_until(f->loop, &closed);
  run_until(f->loop, &S.cancelled);
}

/* Waits, without running |loop|, until it has an event to deliver (here
 * the threadpool's getaddrinfo done, signalled to the loop's wakeup fd);
 * fails the test after 10 s. */
static void await_loop_event(uv_loop_t *loop) {
  struct pollfd p = {.fd = uv_backend_fd(loop), .events = POLLIN};
  int r;
  do r = poll(&p, 1, 10000);
  while (r < 0 && errno == EINTR);
  assert_int_equal(r, 1);
}

/* Runs |loop| until no event is ready, so that the next one is new. */
static void drain_loop(uv_loop_t *loop) {
  struct pollfd p = {.fd = uv_backend_fd(loop), .events = POLLIN};
  for (int i = 0; i < 1000; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    if (poll(&p, 1, 0) == 0) return;
  }
  fail_msg("the loop never went quiet");
}

/* Closes a client whose only connection is still being made: |stage| 0
 * closes with getaddrinfo queued, 1 once the resolver's work is done but its
 * callback not yet run, 2 with uv_tcp_connect pending. The call ends once,
 * CANCELLED, and the client closes. */
static void close_while_connecting(fixture *f, const char *host, int stage) {
  net_grpc_client *c;
  drain_loop(f->loop); /* so that the next event is the resolver's */
  assert_int_equal(net_grpc_client_new(f->loop, host, f->port, &c), 0);
  result r = {0};
  assert_int_equal(net_grpc_client_call(c, "/t.S/Echo", "x", 1, NULL, on_msg, on_done, &r, NULL), 0);
  if (stage >= 1) await_loop_event(f->loop); /* the threadpool has resolved */
  if (stage == 2) uv_run(f->loop, UV_RUN_NOWAIT); /* on_resolved: connect starts */
  assert_int_equal(r.done, 0);
  int closed = 0;
  net_grpc_client_close(c, set_flag, &closed);
  run_until(f->loop, &closed);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.status, NET_GRPC_CANCELLED);
  assert_int_equal(S.started, 0);
}

static void test_client_close_while_resolving(void **state) {
  fixture *f = *state;
  close_while_connecting(f, "localhost", 0);
  close_while_connecting(f, "127.0.0.1", 0);
}

static void test_client_close_after_resolved(void **state) {
  fixture *f = *state;
  close_while_connecting(f, "localhost", 1);
  close_while_connecting(f, "127.0.0.1", 1);
}

static void test_client_close_while_connecting(void **state) {
  fixture *f = *state;
  close_while_connecting(f, "localhost", 2);
  close_while_connecting(f, "127.0.0.1", 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_sent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
      cmocka_unit_test_setup_teardown(test_status_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
      cmocka_unit_test_setup_teardown(test_streaming, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flow_control_paused_client, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pause_with_trailers_pending, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reconnect_after_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_stream_retried, setup, teardown),
      cmocka_unit_test_setup_teardown(test_paused_calls_do_not_block_others, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_graceful_shutdown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_grace_expires, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_close_cancels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_close_while_resolving, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_close_after_resolved, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_close_while_connecting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadlines_silent_peer, setup, teardown),
  };
  int failed = cmocka_run_group_tests_name("inline writes", tests, NULL, NULL);
  /* Again with every write of both ends handed to the writer thread
   * (h2_conn.c note 6): partial writes, closes while a write is out; its
   * sends go through its io_uring (note 7), which this machine must have. */
  net__h2_set_inline_writes(0);
  size_t before = net__h2_writer_writes(), ring = net__h2_writer_ring_sends();
  failed += cmocka_run_group_tests_name("writer thread, io_uring", tests, NULL, NULL);
  if (net__h2_writer_ring_sends() - ring < 100) {
    fprintf(stderr, "the writer's io_uring took %zu sends: no io_uring here?\n",
            net__h2_writer_ring_sends() - ring);
    failed++;
  }
  /* And with send(2), as without io_uring. */
  net__h2_set_writer_ring(0);
  ring = net__h2_writer_ring_sends();
  failed += cmocka_run_group_tests_name("writer thread, send(2)", tests, NULL, NULL);
  if (net__h2_writer_ring_sends() != ring) failed++;
  net__h2_set_writer_ring(1);
  /* And with a socket that takes only 100 bytes from it: the rest of
   * every longer write goes out from the loop (uv_write). */
  net__h2_set_writer_max(100);
  failed += cmocka_run_group_tests_name("writer thread, full socket", tests, NULL, NULL);
  if (net__h2_writer_writes() - before < 100) {
    fprintf(stderr, "the writer thread took %zu writes\n", net__h2_writer_writes() - before);
    failed++;
  }
  return failed;
}
