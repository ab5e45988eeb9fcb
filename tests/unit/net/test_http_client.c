/* test_http_client.c: the HTTP client (libcurl multi on libuv) against a real
 * HTTP/1.1 server — http_client_server.py, started on a free loopback port
 * for the whole run and killed by PID at the end. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net.h"

static pid_t g_pid = -1;
static char g_base[64];
static int g_key;

/* ---------------------------------------------------------------- server */

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static int can_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

/* Runs |argv| with stdout and stderr on /dev/null; returns its exit status. */
static int run_quiet(char *const argv[]) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Starts the test server on a free port (HTTPS with |cert|/|key|), waits
 * until it accepts and writes its base URL; returns its PID or -1. */
static pid_t start_server(const char *cert, const char *key, char *base, size_t n) {
  int port = free_port();
  if (port <= 0) return -1;
  char ports[16];
  snprintf(ports, sizeof(ports), "%d", port);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    /* the server dies with us even if we crash; its stdout is not ours */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    execlp("python3", "python3", HTTP_CLIENT_SERVER_PY, ports, cert, key, (char *)NULL);
    _exit(127);
  }
  /* readiness: poll the port until the server accepts (10 s at most) */
  for (int i = 0; i < 1000; i++) {
    if (can_connect(port)) {
      snprintf(base, n, "%s://127.0.0.1:%d", cert ? "https" : "http", port);
      return pid;
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return -1;
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  return -1;
}

static void stop_server(pid_t *pid) {
  if (*pid > 0) {
    kill(*pid, SIGTERM);
    waitpid(*pid, NULL, 0);
  }
  *pid = -1;
}

static int group_setup(void **state) {
  g_pid = start_server(NULL, NULL, g_base, sizeof(g_base));
  return g_pid > 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  stop_server(&g_pid);
  return 0;
}

/* ---------------------------------------------------------------- fixture */

typedef struct env {
  uv_loop_t loop;
  net_http_client *c;
  int closed;
} env;

static int make_env(void **state, long max_host) {
  env *e = calloc(1, sizeof(*e));
  net_http_client_opts o = {.max_host_connections = max_host};
  if (!e || uv_loop_init(&e->loop) != 0) return -1;
  if (net_http_client_new(&e->loop, &o, &e->c) != 0) return -1;
  *state = e;
  return 0;
}
static int setup(void **state) { return make_env(state, 0); }
static int setup_cap8(void **state) { return make_env(state, 8); }

static void on_closed(void *arg) { ((env *)arg)->closed++; }

static int teardown(void **state) {
  env *e = *state;
  if (e->c) net_http_client_close(e->c, on_closed, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&e->loop); /* UV_EBUSY: a handle was leaked */
  int closed = e->closed;
  free(e);
  return rc == 0 && closed == 1 ? 0 : -1;
}

static double now_ms(void) { return (double)orr_mono_ns() / 1e6; }

/* Runs the loop until *flag is set or |ms| pass; returns *flag. */
static int run_until(env *e, const int *flag, double ms) {
  double end = now_ms() + ms;
  while (!*flag && now_ms() < end) uv_run(&e->loop, UV_RUN_ONCE);
  return *flag;
}

/* Runs the loop for |ms| (to see that nothing more happens). */
static void on_stop_timer(uv_timer_t *t) { *(int *)t->data = 1; }
static void run_for(env *e, uint64_t ms) {
  uv_timer_t t;
  int fired = 0;
  uv_timer_init(&e->loop, &t);
  t.data = &fired;
  uv_timer_start(&t, on_stop_timer, ms, 0);
  while (!fired) uv_run(&e->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* Byte i of every body the server makes is i % 251. */
static int check_pattern(const char *p, size_t n, uint64_t off) {
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)p[i] != (unsigned char)((off + i) % 251)) return 0;
  }
  return 1;
}

/* ---------------------------------------------------------------- results */

typedef struct res {
  int done;
  int rc;
  int status;
  int attempts;
  orr_buf body;
  char err[256];
  char conn_id[32], accepted[32], arrivals[256], chunked[8], auth[512], attempt_hdr[16];
  char body_len_hdr[32], ctype[64], sig_ok[8], req_ctype[64];
  double t_done;
  /* streaming */
  size_t pieces;
  double t_first_piece;
  int cancel_in_body;
  size_t body_calls_after_cancel;
} res;

static void copy_hdr(net_http_client_req *r, const char *name, char *dst, size_t n) {
  const char *v = net_http_client_header(r, name);
  snprintf(dst, n, "%s", v ? v : "");
}

static void on_done(net_http_client_req *r, int rc, void *arg) {
  res *s = arg;
  s->done++;
  s->rc = rc;
  s->status = net_http_client_status(r);
  s->attempts = net_http_client_attempts(r);
  s->t_done = now_ms();
  snprintf(s->err, sizeof(s->err), "%s", net_http_client_error(r));
  copy_hdr(r, "x-conn-id", s->conn_id, sizeof(s->conn_id));
  copy_hdr(r, "X-ACCEPTED", s->accepted, sizeof(s->accepted));
  copy_hdr(r, "X-Arrivals", s->arrivals, sizeof(s->arrivals));
  copy_hdr(r, "X-Chunked", s->chunked, sizeof(s->chunked));
  copy_hdr(r, "X-Echo-Authorization", s->auth, sizeof(s->auth));
  copy_hdr(r, "X-Attempt", s->attempt_hdr, sizeof(s->attempt_hdr));
  copy_hdr(r, "X-Body-Len", s->body_len_hdr, sizeof(s->body_len_hdr));
  copy_hdr(r, "Content-Length", s->ctype, sizeof(s->ctype));
  copy_hdr(r, "X-Sig-Ok", s->sig_ok, sizeof(s->sig_ok));
  copy_hdr(r, "X-Content-Type", s->req_ctype, sizeof(s->req_ctype));
}

static net_http_client_req *mk(env *e, const char *method, const char *path, res *s) {
  char url[256];
  net_http_client_req *r = NULL;
  snprintf(url, sizeof(url), "%s%s", g_base, path);
  assert_int_equal(net_http_client_req_new(e->c, method, url, &r), 0);
  net_http_client_req_callbacks(r, NULL, NULL, on_done, s);
  net_http_client_req_collect(r, &s->body, 64u << 20);
  return r;
}

/* Starts |r| and runs the loop until its on_done. */
static void run_req(env *e, net_http_client_req *r, res *s) {
  assert_int_equal(net_http_client_start(r), 0);
  assert_true(run_until(e, &s->done, 60000));
  assert_int_equal(s->done, 1);
}

/* ---------------------------------------------------------------- tests */

static void test_get_whole_body(void **state) {
  env *e = *state;
  res s = {0};
  net_http_client_req *r = mk(e, "GET", "/bytes?n=100000", &s);
  run_req(e, r, &s);
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(s.body.len, 100000);
  assert_true(check_pattern(s.body.data, s.body.len, 0));
  assert_string_equal(s.ctype, "100000"); /* looked up as "Content-Length" */
  assert_true(s.conn_id[0] != '\0');      /* looked up as "x-conn-id" */
  orr_buf_free(&s.body);
}

static void test_head_and_404(void **state) {
  env *e = *state;
  res s = {0}, t = {0};
  run_req(e, mk(e, "HEAD", "/bytes?n=5000", &s), &s);
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(s.body.len, 0);
  assert_string_equal(s.ctype, "5000");
  run_req(e, mk(e, "GET", "/nope", &t), &t);
  assert_int_equal(t.rc, 0);
  assert_int_equal(t.status, 404);
  assert_memory_equal(t.body.data, "not found", 9);
  orr_buf_free(&s.body);
  orr_buf_free(&t.body);
}

static int on_body_append(net_http_client_req *r, const char *p, size_t n, void *arg) {
  res *s = arg;
  if (s->pieces++ == 0) s->t_first_piece = now_ms();
  if (s->cancel_in_body) {
    if (s->cancel_in_body > 1) s->body_calls_after_cancel++;
    s->cancel_in_body++;
    net_http_client_cancel(r);
    return 0;
  }
  return orr_buf_append(&s->body, p, n);
}

static void test_stream_50mb(void **state) {
  env *e = *state;
  res s = {0};
  const size_t n = 50u << 20;
  net_http_client_req *r = mk(e, "GET", "/bytes?n=52428800", &s);
  net_http_client_req_collect(r, NULL, 0);
  net_http_client_req_callbacks(r, NULL, on_body_append, on_done, &s);
  double t0 = now_ms();
  run_req(e, r, &s);
  double dt = now_ms() - t0;
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(s.body.len, n);
  assert_true(s.pieces > 100); /* streamed, not handed over at once */
  assert_true(check_pattern(s.body.data, s.body.len, 0));
  printf("# 50 MiB streamed in %.0f ms (%.0f MiB/s), %zu pieces\n", dt, 50.0 / (dt / 1000.0),
         s.pieces);
  orr_buf_free(&s.body);
}

/* Backpressure: the consumer queues at most |limit| bytes and drains them on
 * a timer; when full, on_body pauses the transfer and the drain resumes it. */
typedef struct slow_consumer {
  res s;
  net_http_client_req *r;
  orr_buf q;
  size_t q_off;
  size_t limit, max_queued;
  uint64_t consumed;
  int paused, pauses, bad, calls_while_paused;
  uv_timer_t drain;
} slow_consumer;

static int on_body_queue(net_http_client_req *r, const char *p, size_t n, void *arg) {
  slow_consumer *sc = arg;
  size_t queued = sc->q.len - sc->q_off;
  if (sc->paused) sc->calls_while_paused++; /* the client ignored the pause */
  if (queued > 0 && queued + n > sc->limit) {
    sc->paused = 1;
    sc->pauses++;
    return NET_HTTP_CLIENT_PAUSE;
  }
  if (orr_buf_append(&sc->q, p, n) != 0) return ORR_ENOMEM;
  queued += n;
  if (queued > sc->max_queued) sc->max_queued = queued;
  return 0;
}

static void on_done_sc(net_http_client_req *r, int rc, void *arg) {
  slow_consumer *sc = arg;
  on_done(r, rc, &sc->s);
  sc->r = NULL;
}

static void on_drain(uv_timer_t *t) {
  slow_consumer *sc = t->data;
  size_t queued = sc->q.len - sc->q_off;
  size_t k = queued < 32768 ? queued : 32768;
  if (k > 0 && !check_pattern(sc->q.data + sc->q_off, k, sc->consumed)) sc->bad = 1;
  sc->consumed += k;
  sc->q_off += k;
  if (sc->q_off == sc->q.len) {
    sc->q.len = 0;
    sc->q_off = 0;
  }
  if (sc->paused && sc->r && sc->q.len - sc->q_off < sc->limit / 2) {
    sc->paused = 0;
    net_http_client_resume(sc->r);
  }
}

static void test_pause_backpressure(void **state) {
  env *e = *state;
  slow_consumer *sc = calloc(1, sizeof(*sc));
  const uint64_t n = 8u << 20;
  sc->limit = 256 * 1024;
  sc->r = mk(e, "GET", "/bytes?n=8388608", &sc->s);
  net_http_client_req_collect(sc->r, NULL, 0);
  net_http_client_req_callbacks(sc->r, NULL, on_body_queue, on_done_sc, sc);
  uv_timer_init(&e->loop, &sc->drain);
  sc->drain.data = sc;
  uv_timer_start(&sc->drain, on_drain, 1, 1);
  assert_int_equal(net_http_client_start(sc->r), 0);
  double end = now_ms() + 60000;
  while ((!sc->s.done || sc->q.len > sc->q_off) && now_ms() < end) uv_run(&e->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&sc->drain, NULL);
  uv_run(&e->loop, UV_RUN_NOWAIT);
  assert_int_equal(sc->s.done, 1);
  assert_int_equal(sc->s.rc, 0);
  assert_int_equal(sc->consumed, n);
  assert_false(sc->bad);
  assert_true(sc->pauses > 0);
  assert_int_equal(sc->calls_while_paused, 0);
  assert_true(sc->max_queued <= sc->limit);
  printf("# backpressure: %d pauses, at most %zu bytes queued (limit %zu)\n", sc->pauses,
         sc->max_queued, sc->limit);
  orr_buf_free(&sc->q);
  orr_buf_free(&sc->s.body);
  free(sc);
}

static void test_slow_stream(void **state) {
  env *e = *state;
  res s = {0};
  net_http_client_req *r = mk(e, "GET", "/slow?n=20000&chunk=2000&ms=30", &s);
  net_http_client_req_collect(r, NULL, 0);
  net_http_client_req_callbacks(r, NULL, on_body_append, on_done, &s);
  run_req(e, r, &s);
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.body.len, 20000);
  assert_true(check_pattern(s.body.data, s.body.len, 0));
  assert_true(s.pieces >= 5);
  /* pieces reach us as they are sent: the first long before the last */
  assert_true(s.t_done - s.t_first_piece > 150);
  orr_buf_free(&s.body);
}

static void test_timeout(void **state) {
  env *e = *state;
  res s = {0};
  net_http_client_req *r = mk(e, "GET", "/hold", &s);
  net_http_client_req_timeouts(r, 300, 0);
  double t0 = now_ms();
  run_req(e, r, &s);
  double dt = now_ms() - t0;
  assert_int_equal(s.rc, ORR_ETIMEOUT);
  assert_true(s.err[0] != '\0');
  assert_true(dt >= 290 && dt < 1300);
  printf("# timeout 300 ms fired after %.0f ms\n", dt);
}

static void test_connect_error(void **state) {
  env *e = *state;
  res s = {0};
  char url[64];
  net_http_client_req *r;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/", free_port()); /* nobody listens */
  assert_int_equal(net_http_client_req_new(e->c, "GET", url, &r), 0);
  net_http_client_req_callbacks(r, NULL, NULL, on_done, &s);
  run_req(e, r, &s);
  assert_int_equal(s.rc, ORR_EIO);
  assert_true(strlen(s.err) > 0);
  assert_int_equal(s.status, 0);
}

static void on_cancel_timer(uv_timer_t *t) {
  net_http_client_cancel(t->data);
  net_http_client_cancel(t->data); /* twice is fine */
}

static void test_cancel_held(void **state) {
  env *e = *state;
  res s = {0};
  uv_timer_t t;
  net_http_client_req *r = mk(e, "GET", "/hold", &s);
  uv_timer_init(&e->loop, &t);
  t.data = r;
  uv_timer_start(&t, on_cancel_timer, 50, 0);
  run_req(e, r, &s);
  assert_int_equal(s.rc, ORR_ECANCELED);
  uv_close((uv_handle_t *)&t, NULL);
  run_for(e, 100);
  assert_int_equal(s.done, 1);
}

static void test_cancel_in_body(void **state) {
  env *e = *state;
  res s = {.cancel_in_body = 1};
  net_http_client_req *r = mk(e, "GET", "/bytes?n=10000000", &s);
  net_http_client_req_collect(r, NULL, 0);
  net_http_client_req_callbacks(r, NULL, on_body_append, on_done, &s);
  run_req(e, r, &s);
  assert_int_equal(s.rc, ORR_ECANCELED);
  assert_int_equal(s.body_calls_after_cancel, 0);
  run_for(e, 50);
  assert_int_equal(s.done, 1);
}

static void test_cancel_before_and_at_start(void **state) {
  env *e = *state;
  res s = {0}, t = {0};
  net_http_client_req *r = mk(e, "GET", "/bytes?n=10", &s);
  net_http_client_cancel(r); /* never started */
  net_http_client_req *q = mk(e, "GET", "/bytes?n=10", &t);
  assert_int_equal(net_http_client_start(q), 0);
  net_http_client_cancel(q); /* same loop turn */
  assert_int_equal(s.done + t.done, 0); /* never called from inside cancel */
  assert_true(run_until(e, &t.done, 5000));
  run_for(e, 50);
  assert_int_equal(s.done, 1);
  assert_int_equal(s.rc, ORR_ECANCELED);
  assert_int_equal(t.done, 1);
  assert_int_equal(t.rc, ORR_ECANCELED);
}

/* A request started from inside another one's body callback (inside curl). */
typedef struct nested {
  env *e;
  res a, b;
  int started;
} nested;

static int on_body_start_other(net_http_client_req *r, const char *p, size_t n, void *arg) {
  nested *ns = arg;
  if (!ns->started++) {
    net_http_client_req *q = mk(ns->e, "GET", "/bytes?n=3000", &ns->b);
    assert_int_equal(net_http_client_start(q), 0);
  }
  return orr_buf_append(&ns->a.body, p, n);
}

static void on_done_nested(net_http_client_req *r, int rc, void *arg) {
  on_done(r, rc, &((nested *)arg)->a);
}

static void test_start_inside_callback(void **state) {
  env *e = *state;
  nested ns = {.e = e};
  net_http_client_req *r = mk(e, "GET", "/bytes?n=200000", &ns.a);
  net_http_client_req_collect(r, NULL, 0);
  net_http_client_req_callbacks(r, NULL, on_body_start_other, on_done_nested, &ns);
  assert_int_equal(net_http_client_start(r), 0);
  assert_true(run_until(e, &ns.a.done, 10000));
  assert_true(run_until(e, &ns.b.done, 10000));
  assert_int_equal(ns.a.rc, 0);
  assert_int_equal(ns.a.body.len, 200000);
  assert_int_equal(ns.b.rc, 0);
  assert_int_equal(ns.b.body.len, 3000);
  assert_true(check_pattern(ns.b.body.data, 3000, 0));
  orr_buf_free(&ns.a.body);
  orr_buf_free(&ns.b.body);
}

static int on_body_pause(net_http_client_req *r, const char *p, size_t n, void *arg) {
  ((res *)arg)->pieces++;
  return NET_HTTP_CLIENT_PAUSE;
}

static void test_cancel_paused(void **state) {
  env *e = *state;
  res s = {0};
  uv_timer_t t;
  net_http_client_req *r = mk(e, "GET", "/bytes?n=1000000", &s);
  net_http_client_req_collect(r, NULL, 0);
  net_http_client_req_callbacks(r, NULL, on_body_pause, on_done, &s);
  uv_timer_init(&e->loop, &t);
  t.data = r;
  uv_timer_start(&t, on_cancel_timer, 100, 0);
  run_req(e, r, &s);
  assert_int_equal(s.rc, ORR_ECANCELED);
  assert_true(s.pieces >= 1);
  uv_close((uv_handle_t *)&t, NULL);
  run_for(e, 50);
  assert_int_equal(s.done, 1);
}

static int on_headers_abort(net_http_client_req *r, int status, void *arg) {
  return status == 200 ? ORR_EPROTO : 0;
}

static void test_headers_abort(void **state) {
  env *e = *state;
  res s = {0};
  net_http_client_req *r = mk(e, "GET", "/bytes?n=1000", &s);
  net_http_client_req_callbacks(r, on_headers_abort, NULL, on_done, &s);
  run_req(e, r, &s);
  assert_int_equal(s.rc, ORR_EPROTO);
  assert_int_equal(s.body.len, 0);
}

static void test_retry_delay(void **state) {
  net_http_client_retry p = {.max_attempts = 10, .min_delay_ms = 50, .max_delay_ms = 1000};
  for (int n = 1; n <= 8; n++) {
    int64_t base = 50ll << (n - 1);
    for (uint64_t rnd = 0; rnd < 2000; rnd += 7) {
      int64_t d = net_http_client_retry_delay_ms(&p, n, rnd * 0x9e3779b97f4a7c15ull);
      if (base >= 1000) {
        assert_int_equal(d, 1000);
      } else {
        assert_true(d >= base && d < 2 * base && d <= 1000);
      }
    }
  }
}

static char *unique_key(char *buf, size_t n) {
  snprintf(buf, n, "k%d-%d", (int)getpid(), ++g_key);
  return buf;
}

static void test_retry_success(void **state) {
  env *e = *state;
  res s = {0};
  char path[128], key[32];
  net_http_client_retry p = {.max_attempts = 5, .min_delay_ms = 50, .max_delay_ms = 1000};
  snprintf(path, sizeof(path), "/flaky?key=%s&fails=2", unique_key(key, sizeof(key)));
  net_http_client_req *r = mk(e, "GET", path, &s);
  net_http_client_req_retry(r, &p);
  run_req(e, r, &s);
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(s.attempts, 3);
  double a0, a1, a2;
  assert_int_equal(sscanf(s.arrivals, "%lf,%lf,%lf", &a0, &a1, &a2), 3);
  double g1 = a1 - a0, g2 = a2 - a1;
  printf("# retry gaps seen by the server: %.1f ms, %.1f ms\n", g1, g2);
  /* delays are drawn from [50,100) then [100,200): increasing */
  assert_true(g1 >= 49 && g1 < 100 + 50);
  assert_true(g2 >= 99 && g2 < 200 + 50);
  assert_memory_equal(s.body.data, s.arrivals, strlen(s.arrivals));
  orr_buf_free(&s.body);
}

static void test_retry_give_up(void **state) {
  env *e = *state;
  res s = {0};
  char path[128], key[32];
  net_http_client_retry p = {.max_attempts = 3, .min_delay_ms = 10, .max_delay_ms = 20};
  snprintf(path, sizeof(path), "/flaky?key=%s&fails=10", unique_key(key, sizeof(key)));
  net_http_client_req *r = mk(e, "GET", path, &s);
  net_http_client_req_retry(r, &p);
  run_req(e, r, &s);
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.status, 500);
  assert_int_equal(s.attempts, 3);
  assert_string_equal(s.attempt_hdr, "3");
  assert_int_equal(s.body.len, 6);
  assert_memory_equal(s.body.data, "fail 3", 6);
  orr_buf_free(&s.body);
}

static void test_retry_after(void **state) {
  env *e = *state;
  res s = {0};
  char path[128], key[32];
  net_http_client_retry p = {.max_attempts = 3, .min_delay_ms = 10, .max_delay_ms = 50};
  snprintf(path, sizeof(path), "/flaky?key=%s&fails=1&status=503&retry_after=1",
           unique_key(key, sizeof(key)));
  net_http_client_req *r = mk(e, "GET", path, &s);
  net_http_client_req_retry(r, &p);
  run_req(e, r, &s);
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(s.attempts, 2);
  double a0, a1;
  assert_int_equal(sscanf(s.arrivals, "%lf,%lf", &a0, &a1), 2);
  assert_true(a1 - a0 >= 990 && a1 - a0 < 2000);
  orr_buf_free(&s.body);
}

static void test_retry_connect_error_and_429(void **state) {
  env *e = *state;
  res s = {0}, t = {0};
  char url[64], path[128], key[32];
  net_http_client_req *r;
  net_http_client_retry p = {.max_attempts = 3, .min_delay_ms = 10, .max_delay_ms = 20};
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/", free_port());
  assert_int_equal(net_http_client_req_new(e->c, "GET", url, &r), 0);
  net_http_client_req_callbacks(r, NULL, NULL, on_done, &s);
  net_http_client_req_retry(r, &p);
  run_req(e, r, &s);
  assert_int_equal(s.rc, ORR_EIO);
  assert_int_equal(s.attempts, 3);
  snprintf(path, sizeof(path), "/flaky?key=%s&fails=1&status=429", unique_key(key, sizeof(key)));
  r = mk(e, "GET", path, &t);
  net_http_client_req_retry(r, &p);
  run_req(e, r, &t);
  assert_int_equal(t.status, 200);
  assert_int_equal(t.attempts, 2);
  orr_buf_free(&t.body);
}

static void test_retry_budget(void **state) {
  env *e = *state;
  res s = {0};
  net_http_client_retry p = {.max_attempts = 20, .min_delay_ms = 10, .max_delay_ms = 20,
                             .max_elapsed_ms = 700};
  net_http_client_req *r = mk(e, "GET", "/hold", &s);
  net_http_client_req_timeouts(r, 200, 0); /* per attempt */
  net_http_client_req_retry(r, &p);
  double t0 = now_ms();
  run_req(e, r, &s);
  double dt = now_ms() - t0;
  assert_int_equal(s.rc, ORR_ETIMEOUT);
  assert_true(s.attempts >= 3 && s.attempts <= 4);
  assert_true(dt >= 600 && dt < 1000);
  printf("# retry budget 700 ms: %d attempts, %.0f ms\n", s.attempts, dt);
}

static void test_retry_not_after_cancel(void **state) {
  env *e = *state;
  res s = {0};
  uv_timer_t t;
  char path[128], key[32];
  net_http_client_retry p = {.max_attempts = 5, .min_delay_ms = 400, .max_delay_ms = 1000};
  snprintf(path, sizeof(path), "/flaky?key=%s&fails=10", unique_key(key, sizeof(key)));
  net_http_client_req *r = mk(e, "GET", path, &s);
  net_http_client_req_retry(r, &p);
  uv_timer_init(&e->loop, &t);
  t.data = r;
  uv_timer_start(&t, on_cancel_timer, 200, 0); /* during the first backoff */
  run_req(e, r, &s);
  assert_int_equal(s.rc, ORR_ECANCELED);
  assert_int_equal(s.attempts, 1);
  uv_close((uv_handle_t *)&t, NULL);
  run_for(e, 50);
  assert_int_equal(s.done, 1);
}

/* An upload reader of |len| pattern bytes in odd pieces; pauses now and then. */
typedef struct reader {
  uint64_t len, off;
  int calls, rewinds, pause_every;
  net_http_client_req *r;
  uv_timer_t resume;
  env *e;
} reader;

static void on_resume_timer(uv_timer_t *t) {
  reader *rd = t->data;
  net_http_client_resume(rd->r);
}

static int rd_read(net_http_client_req *r, char *buf, size_t cap, size_t *nread, void *arg) {
  reader *rd = arg;
  rd->calls++;
  if (rd->pause_every && rd->calls % rd->pause_every == 0) {
    uv_timer_start(&rd->resume, on_resume_timer, 1, 0);
    return NET_HTTP_CLIENT_PAUSE;
  }
  size_t n = cap < 7777 ? cap : 7777;
  if (n > rd->len - rd->off) n = (size_t)(rd->len - rd->off);
  for (size_t i = 0; i < n; i++) buf[i] = (char)((rd->off + i) % 251);
  rd->off += n;
  *nread = n;
  return 0;
}

static int rd_rewind(net_http_client_req *r, void *arg) {
  reader *rd = arg;
  rd->rewinds++;
  rd->off = 0;
  return 0;
}

static void test_post_bytes(void **state) {
  env *e = *state;
  res s = {0};
  size_t n = 1u << 20;
  char *body = malloc(n);
  for (size_t i = 0; i < n; i++) body[i] = (char)(i % 251);
  net_http_client_req *r = mk(e, "POST", "/echo", &s);
  net_http_client_req_body(r, body, n);
  assert_int_equal(net_http_client_req_header(r, "X-Test", "yes"), 0);
  run_req(e, r, &s);
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(s.body.len, n);
  assert_memory_equal(s.body.data, body, n);
  assert_string_equal(s.chunked, "0");
  assert_string_equal(s.req_ctype, ""); /* curl's form content type is not sent */
  free(body);
  orr_buf_free(&s.body);
}

static void post_reader(env *e, int64_t len_arg, const char *want_chunked) {
  res s = {0};
  reader rd = {.len = 3000000, .pause_every = 10};
  uv_timer_init(&e->loop, &rd.resume);
  rd.resume.data = &rd;
  rd.r = mk(e, "PUT", "/echo", &s);
  net_http_client_req_body_reader(rd.r, len_arg, rd_read, rd_rewind, &rd);
  run_req(e, rd.r, &s);
  uv_close((uv_handle_t *)&rd.resume, NULL);
  uv_run(&e->loop, UV_RUN_NOWAIT); /* |rd| lives on this stack */
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(s.body.len, rd.len);
  assert_true(check_pattern(s.body.data, s.body.len, 0));
  assert_string_equal(s.chunked, want_chunked);
  orr_buf_free(&s.body);
}

static void test_post_reader_known_length(void **state) { post_reader(*state, 3000000, "0"); }
static void test_post_reader_unknown_length(void **state) { post_reader(*state, -1, "1"); }

static void test_retry_post_rewinds_reader(void **state) {
  env *e = *state;
  res s = {0};
  char path[128], key[32];
  reader rd = {.len = 100000};
  net_http_client_retry p = {.max_attempts = 4, .min_delay_ms = 10, .max_delay_ms = 20};
  snprintf(path, sizeof(path), "/flaky?key=%s&fails=2", unique_key(key, sizeof(key)));
  net_http_client_req *r = mk(e, "POST", path, &s);
  net_http_client_req_body_reader(r, (int64_t)rd.len, rd_read, rd_rewind, &rd);
  net_http_client_req_retry(r, &p);
  run_req(e, r, &s);
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(s.attempts, 3);
  assert_true(rd.rewinds >= 2);
  assert_string_equal(s.body_len_hdr, "100000");
  assert_int_equal(s.body.len, 100000);
  assert_true(check_pattern(s.body.data, s.body.len, 0));
  orr_buf_free(&s.body);
}

static int only_503(const net_http_client_req *r, int result, int status, void *arg) {
  ++*(int *)arg;
  return status == 503;
}

static void test_retry_predicate_and_bodies(void **state) {
  env *e = *state;
  res s = {0}, t = {0}, u = {0};
  char path[128], key[32];
  int asked = 0;
  net_http_client_retry p = {.max_attempts = 3, .min_delay_ms = 10, .max_delay_ms = 20,
                             .should_retry = only_503, .arg = &asked};
  /* the predicate says no to a 500 */
  snprintf(path, sizeof(path), "/flaky?key=%s&fails=1&status=500", unique_key(key, sizeof(key)));
  net_http_client_req *r = mk(e, "GET", path, &s);
  net_http_client_req_retry(r, &p);
  run_req(e, r, &s);
  assert_int_equal(s.status, 500);
  assert_int_equal(s.attempts, 1);
  assert_true(asked >= 1);
  /* a bytes body is sent again in full */
  snprintf(path, sizeof(path), "/flaky?key=%s&fails=1&status=503", unique_key(key, sizeof(key)));
  r = mk(e, "POST", path, &t);
  net_http_client_req_body(r, "0123456789", 10);
  net_http_client_req_retry(r, &p);
  run_req(e, r, &t);
  assert_int_equal(t.status, 200);
  assert_int_equal(t.attempts, 2);
  assert_string_equal(t.body_len_hdr, "10");
  assert_memory_equal(t.body.data, "0123456789", 10);
  /* a reader that cannot rewind is not retried once read */
  reader rd = {.len = 1000};
  snprintf(path, sizeof(path), "/flaky?key=%s&fails=1&status=503", unique_key(key, sizeof(key)));
  r = mk(e, "POST", path, &u);
  net_http_client_req_body_reader(r, (int64_t)rd.len, rd_read, NULL, &rd);
  net_http_client_req_retry(r, &p);
  run_req(e, r, &u);
  assert_int_equal(u.status, 503);
  assert_int_equal(u.attempts, 1);
  orr_buf_free(&s.body);
  orr_buf_free(&t.body);
  orr_buf_free(&u.body);
}

static void test_max_body_limit(void **state) {
  env *e = *state;
  res s = {0}, t = {0};
  net_http_client_req *r = mk(e, "GET", "/bytes?n=2000000", &s);
  net_http_client_req_collect(r, &s.body, 1000000);
  run_req(e, r, &s);
  assert_int_equal(s.rc, ORR_ELIMIT); /* known from Content-Length */
  assert_int_equal(s.body.len, 0);
  r = mk(e, "GET", "/bytes?n=2000000&chunked=1", &t);
  net_http_client_req_collect(r, &t.body, 1000000);
  run_req(e, r, &t);
  assert_int_equal(t.rc, ORR_ELIMIT); /* found out while streaming */
  assert_true(t.body.len <= 1000000);
  orr_buf_free(&s.body);
  orr_buf_free(&t.body);
}

/* 20 sequential requests, each started from the previous one's on_done. */
typedef struct chain {
  env *e;
  int n, done_all, failures;
  res s[20];
} chain;

static void on_done_chain(net_http_client_req *r, int rc, void *arg);

static void chain_next(chain *ch) {
  net_http_client_req *r = mk(ch->e, "GET", "/bytes?n=1000", &ch->s[ch->n]);
  net_http_client_req_callbacks(r, NULL, NULL, on_done_chain, ch);
  assert_int_equal(net_http_client_start(r), 0);
}

static void on_done_chain(net_http_client_req *r, int rc, void *arg) {
  chain *ch = arg;
  on_done(r, rc, &ch->s[ch->n]);
  if (rc != 0 || ch->s[ch->n].status != 200 || ch->s[ch->n].body.len != 1000) ch->failures++;
  if (++ch->n == 20) ch->done_all = 1;
  else chain_next(ch);
}

static void test_connection_reuse(void **state) {
  env *e = *state;
  chain *ch = calloc(1, sizeof(*ch));
  ch->e = e;
  chain_next(ch);
  assert_true(run_until(e, &ch->done_all, 30000));
  assert_int_equal(ch->failures, 0);
  /* one TCP connection served all 20: the same connection id, and the
   * server accepted no other connection meanwhile */
  for (int i = 1; i < 20; i++) {
    assert_string_equal(ch->s[i].conn_id, ch->s[0].conn_id);
    assert_string_equal(ch->s[i].accepted, ch->s[0].accepted);
  }
  for (int i = 0; i < 20; i++) orr_buf_free(&ch->s[i].body);
  free(ch);
}

static void test_concurrent_100(void **state) {
  env *e = *state;
  res *s = calloc(100, sizeof(*s));
  int done = 0;
  char ids[100][32];
  for (int i = 0; i < 100; i++) {
    net_http_client_req *r = mk(e, "GET", "/bytes?n=10000&delay_ms=10", &s[i]);
    assert_int_equal(net_http_client_start(r), 0);
  }
  double end = now_ms() + 60000;
  while (done < 100 && now_ms() < end) {
    uv_run(&e->loop, UV_RUN_ONCE);
    done = 0;
    for (int i = 0; i < 100; i++) done += s[i].done;
  }
  int nids = 0;
  for (int i = 0; i < 100; i++) {
    assert_int_equal(s[i].done, 1);
    assert_int_equal(s[i].rc, 0);
    assert_int_equal(s[i].status, 200);
    assert_int_equal(s[i].body.len, 10000);
    int seen = 0;
    for (int j = 0; j < nids; j++) seen |= strcmp(ids[j], s[i].conn_id) == 0;
    if (!seen) snprintf(ids[nids++], sizeof(ids[0]), "%s", s[i].conn_id);
    orr_buf_free(&s[i].body);
  }
  printf("# 100 concurrent requests over %d connections (cap 8)\n", nids);
  assert_true(nids >= 2 && nids <= 8);
  free(s);
}

static void test_close_in_flight(void **state) {
  env *e = *state;
  res s[6];
  memset(s, 0, sizeof(s));
  for (int i = 0; i < 5; i++) assert_int_equal(net_http_client_start(mk(e, "GET", "/hold", &s[i])), 0);
  mk(e, "GET", "/hold", &s[5]); /* never started */
  run_for(e, 100);
  net_http_client_close(e->c, on_closed, e);
  e->c = NULL;
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(s[i].done, 1);
    assert_int_equal(s[i].rc, ORR_ECANCELED);
  }
}

static void test_sigv4_passed_to_curl(void **state) {
  env *e = *state;
  res s = {0};
  net_http_client_req *r = mk(e, "PUT", "/echo", &s);
  net_http_client_req_body(r, "hello", 5);
  assert_int_equal(
      net_http_client_req_aws_sigv4(r, "aws:amz:us-east-1:s3", "AKIDEXAMPLE", "secretkey"), 0);
  run_req(e, r, &s);
  assert_int_equal(s.status, 200);
  assert_non_null(strstr(s.auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
  assert_non_null(strstr(s.auth, "/us-east-1/s3/aws4_request"));
  assert_non_null(strstr(s.auth, "Signature="));
  assert_string_equal(s.sig_ok, "1"); /* the server checked it, payload hash included */
  assert_memory_equal(s.body.data, "hello", 5);
  orr_buf_free(&s.body);
}

static void test_sigv4_reader_unsigned_payload(void **state) {
  env *e = *state;
  res s = {0};
  reader rd = {.len = 50000};
  net_http_client_req *r = mk(e, "PUT", "/echo", &s);
  net_http_client_req_body_reader(r, (int64_t)rd.len, rd_read, rd_rewind, &rd);
  assert_int_equal(net_http_client_req_header(r, "x-amz-content-sha256", "UNSIGNED-PAYLOAD"), 0);
  assert_int_equal(
      net_http_client_req_aws_sigv4(r, "aws:amz:us-east-1:s3", "AKIDEXAMPLE", "secretkey"), 0);
  run_req(e, r, &s);
  assert_int_equal(s.status, 200);
  assert_string_equal(s.sig_ok, "1");
  assert_int_equal(s.body.len, rd.len);
  orr_buf_free(&s.body);
}

static void test_tls(void **state) {
  env *e = *state;
  char dir[] = "/tmp/orr-httpc-XXXXXX", cert[64], key[64], base[64], url[128];
  assert_non_null(mkdtemp(dir));
  snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
  snprintf(key, sizeof(key), "%s/key.pem", dir);
  char *gen[] = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                 "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                 "subjectAltName=IP:127.0.0.1", NULL};
  if (run_quiet(gen) != 0) {
    rmdir(dir);
    skip(); /* no openssl command */
  }
  pid_t pid = start_server(cert, key, base, sizeof(base));
  assert_true(pid > 0);
  snprintf(url, sizeof(url), "%s/bytes?n=70000", base);
  /* verified against the CA file; refused without it; accepted unverified */
  net_http_client_tls with_ca = {.ca_file = cert}, insecure = {.insecure_skip_verify = true};
  const net_http_client_tls *cfg[3] = {&with_ca, NULL, &insecure};
  res s[3];
  memset(s, 0, sizeof(s));
  for (int i = 0; i < 3; i++) {
    net_http_client_req *r;
    assert_int_equal(net_http_client_req_new(e->c, "GET", url, &r), 0);
    net_http_client_req_callbacks(r, NULL, NULL, on_done, &s[i]);
    net_http_client_req_collect(r, &s[i].body, 1 << 20);
    if (cfg[i]) assert_int_equal(net_http_client_req_tls(r, cfg[i]), 0);
    run_req(e, r, &s[i]);
  }
  stop_server(&pid);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  assert_int_equal(s[0].rc, 0);
  assert_int_equal(s[0].status, 200);
  assert_int_equal(s[0].body.len, 70000);
  assert_true(check_pattern(s[0].body.data, 70000, 0));
  assert_int_equal(s[1].rc, ORR_EIO);
  assert_true(strlen(s[1].err) > 0);
  assert_int_equal(s[2].rc, 0);
  assert_int_equal(s[2].body.len, 70000);
  for (int i = 0; i < 3; i++) orr_buf_free(&s[i].body);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_retry_delay),
      cmocka_unit_test_setup_teardown(test_get_whole_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_head_and_404, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_50mb, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pause_backpressure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slow_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connect_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_held, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_in_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_before_and_at_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_paused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_headers_abort, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_inside_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_success, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_give_up, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_connect_error_and_429, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_not_after_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_budget, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_reader_known_length, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_reader_unknown_length, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_post_rewinds_reader, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_predicate_and_bodies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_body_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_reuse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_100, setup_cap8, teardown),
      cmocka_unit_test_setup_teardown(test_close_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sigv4_passed_to_curl, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sigv4_reader_unsigned_payload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
