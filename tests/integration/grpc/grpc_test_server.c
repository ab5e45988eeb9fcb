/* grpc_test_server.c: the orrery.test.Echo service on our gRPC server, for
 * interop tests driven by @grpc/grpc-js (tests/node/grpc_node_client.js).
 * Prints "listening port=N" on stdout when ready, logs every cancel, prints a
 * stats line (with VmHWM) on SIGUSR1, and on SIGTERM/SIGINT prints it and
 * shuts down gracefully. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "orrery_test.pb-c.h"

static struct {
  int started, finished, cancelled, deadline;
  int64_t stream_bytes;
} stats;

static uv_loop_t *loop;
static net_grpc_server *server;

/* ---------------------------------------------------------------- Unary */

typedef struct unary_job {
  net_grpc_call *call;
  uv_timer_t timer;
  Orrery__Test__EchoRequest *req;
  int cancelled;
} unary_job;

static void job_free(uv_handle_t *h) {
  unary_job *j = h->data;
  orrery__test__echo_request__free_unpacked(j->req, NULL);
  free(j);
}

static void unary_answer(unary_job *j) {
  Orrery__Test__EchoRequest *req = j->req;
  if (req->status != 0) {
    stats.finished++;
    net_grpc_call_finish(j->call, req->status, req->message);
    return;
  }
  Orrery__Test__EchoReply rep = ORRERY__TEST__ECHO_REPLY__INIT;
  rep.payload = req->payload;
  size_t n = orrery__test__echo_reply__get_packed_size(&rep);
  uint8_t *buf = malloc(n ? n : 1);
  orrery__test__echo_reply__pack(&rep, buf);
  int rc = net_grpc_call_send(j->call, buf, n);
  free(buf);
  stats.finished++;
  net_grpc_call_finish(j->call, rc ? NET_GRPC_INTERNAL : NET_GRPC_OK, rc ? orr_strerror(rc) : NULL);
}

static void unary_timer(uv_timer_t *t) {
  unary_job *j = t->data;
  unary_answer(j);
  uv_close((uv_handle_t *)&j->timer, job_free);
}

static void on_cancel_log(net_grpc_call *call, int status, const char *what) {
  stats.cancelled++;
  if (status == NET_GRPC_DEADLINE_EXCEEDED) stats.deadline++;
  orr_log_info("call cancelled", "path", net_grpc_call_path(call), "kind", what, "status",
               net_grpc_status_name(status), NULL);
}

static void unary_cancel(net_grpc_call *call, int status, void *arg) {
  unary_job *j = arg;
  on_cancel_log(call, status, "unary");
  net_grpc_call_finish(call, NET_GRPC_CANCELLED, NULL);
  uv_close((uv_handle_t *)&j->timer, job_free);
}

static void h_unary(net_grpc_call *call, const uint8_t *msg, size_t len, void *arg) {
  stats.started++;
  Orrery__Test__EchoRequest *req = orrery__test__echo_request__unpack(NULL, len, msg);
  if (!req) {
    net_grpc_call_finish(call, NET_GRPC_INVALID_ARGUMENT, "cannot decode EchoRequest");
    return;
  }
  unary_job *j = calloc(1, sizeof(*j));
  j->call = call;
  j->req = req;
  uv_timer_init(loop, &j->timer);
  j->timer.data = j;
  if (req->delay_ms > 0) {
    net_grpc_call_set_callbacks(call, NULL, unary_cancel, j);
    uv_timer_start(&j->timer, unary_timer, (uint64_t)req->delay_ms, 0);
    return;
  }
  unary_answer(j);
  uv_close((uv_handle_t *)&j->timer, job_free);
}

/* ---------------------------------------------------------------- Stream */

typedef struct stream_job {
  net_grpc_call *call;
  uv_timer_t timer;
  int64_t count, seq;
  int32_t size, interval_ms;
  uint8_t *payload;
  int waiting; /* for on_writable */
} stream_job;

static void sjob_free(uv_handle_t *h) {
  stream_job *j = h->data;
  free(j->payload);
  free(j);
}

static void stream_pump(net_grpc_call *call, void *arg);

static void stream_timer(uv_timer_t *t) { stream_pump(((stream_job *)t->data)->call, t->data); }

/* Sends until the queue is full (then on_writable calls again), the interval
 * timer is due, or the stream is complete. */
static void stream_pump(net_grpc_call *call, void *arg) {
  stream_job *j = arg;
  j->waiting = 0;
  Orrery__Test__Chunk ch = ORRERY__TEST__CHUNK__INIT;
  ch.payload.data = j->payload;
  ch.payload.len = (size_t)j->size;
  uint8_t *buf = malloc(j->size + 32);
  while (j->count == 0 || j->seq < j->count) {
    ch.seq = j->seq;
    size_t n = orrery__test__chunk__pack(&ch, buf);
    int rc = net_grpc_call_send(call, buf, n);
    if (rc == ORR_EAGAIN) {
      j->waiting = 1;
      free(buf);
      return;
    }
    if (rc) {
      free(buf);
      stats.finished++;
      net_grpc_call_finish(call, NET_GRPC_INTERNAL, orr_strerror(rc));
      uv_close((uv_handle_t *)&j->timer, sjob_free);
      return;
    }
    stats.stream_bytes += (int64_t)n;
    j->seq++;
    if (j->interval_ms > 0 && (j->count == 0 || j->seq < j->count)) {
      uv_timer_start(&j->timer, stream_timer, (uint64_t)j->interval_ms, 0);
      free(buf);
      return;
    }
  }
  free(buf);
  stats.finished++;
  net_grpc_call_finish(call, NET_GRPC_OK, NULL);
  uv_close((uv_handle_t *)&j->timer, sjob_free);
}

static void stream_cancel(net_grpc_call *call, int status, void *arg) {
  stream_job *j = arg;
  on_cancel_log(call, status, "stream");
  net_grpc_call_finish(call, NET_GRPC_CANCELLED, NULL);
  uv_close((uv_handle_t *)&j->timer, sjob_free);
}

static void h_stream(net_grpc_call *call, const uint8_t *msg, size_t len, void *arg) {
  stats.started++;
  Orrery__Test__StreamRequest *req = orrery__test__stream_request__unpack(NULL, len, msg);
  if (!req || req->size < 0 || req->size > (16 << 20)) {
    if (req) orrery__test__stream_request__free_unpacked(req, NULL);
    net_grpc_call_finish(call, NET_GRPC_INVALID_ARGUMENT, "bad StreamRequest");
    return;
  }
  stream_job *j = calloc(1, sizeof(*j));
  j->call = call;
  j->count = req->count;
  j->size = req->size;
  j->interval_ms = req->interval_ms;
  j->payload = malloc((size_t)j->size + 1);
  for (int32_t i = 0; i < j->size; i++) j->payload[i] = (uint8_t)('a' + i % 26);
  uv_timer_init(loop, &j->timer);
  j->timer.data = j;
  net_grpc_call_set_callbacks(call, stream_pump, stream_cancel, j);
  int32_t delay = req->delay_ms;
  orrery__test__stream_request__free_unpacked(req, NULL);
  if (delay > 0)
    uv_timer_start(&j->timer, stream_timer, (uint64_t)delay, 0);
  else
    stream_pump(call, j);
}

/* ---------------------------------------------------------------- main */

static long vmhwm_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof(line), f))
    if (strncmp(line, "VmHWM:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kb;
}

static uv_signal_t sigterm, sigint, sigusr1;

static void closed(void *arg) {
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigusr1, NULL);
}

static void print_stats(void) {
  printf("stats started=%d finished=%d cancelled=%d deadline=%d stream_bytes=%lld vmhwm_kb=%ld\n",
         stats.started, stats.finished, stats.cancelled, stats.deadline,
         (long long)stats.stream_bytes, vmhwm_kb());
  fflush(stdout);
}

static void on_usr1(uv_signal_t *s, int signum) { print_stats(); }

static void on_signal(uv_signal_t *s, int signum) {
  print_stats();
  uv_signal_stop(&sigusr1);
  uv_signal_stop(&sigterm);
  uv_signal_stop(&sigint);
  if (server) net_grpc_server_close(server, 2000, closed, NULL);
  server = NULL;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int64_t port = 0, max_recv = 0;
  orr_flag flags[] = {
      {"host", ORR_FLAG_STRING, &host, "127.0.0.1", "address to listen on", NULL},
      {"port", ORR_FLAG_INT, &port, "0", "port to listen on (0: any free port)", NULL},
      {"max-recv-bytes", ORR_FLAG_BYTES, &max_recv, "4MiB", "largest request message", NULL},
      {NULL, 0, NULL, NULL, NULL, NULL},
  };
  char err[256];
  if (orr_flags_parse(flags, argc, argv, NULL, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();
  net_grpc_server_opts o = {.max_recv_msg = (size_t)max_recv};
  if (net_grpc_server_new(loop, &o, &server) ||
      net_grpc_server_register(server, "/orrery.test.Echo/Unary", NET_GRPC_UNARY, h_unary, NULL) ||
      net_grpc_server_register(server, "/orrery.test.Echo/Stream", NET_GRPC_SERVER_STREAMING,
                               h_stream, NULL)) {
    fprintf(stderr, "cannot set up the server\n");
    return 1;
  }
  int rc = net_grpc_server_listen(server, host, (int)port);
  if (rc) {
    fprintf(stderr, "listen: %s\n", orr_strerror(rc));
    return 1;
  }
  uv_signal_init(loop, &sigterm);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_init(loop, &sigusr1);
  uv_signal_start(&sigusr1, on_usr1, SIGUSR1);
  printf("listening port=%d\n", net_grpc_server_port(server));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  orr_flags_free(flags);
  return 0;
}
