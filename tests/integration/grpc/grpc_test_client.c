/* grpc_test_client.c: runs one named case of the orrery.test.Echo service
 * with our gRPC client against a grpc-js server
 * (tests/node/grpc_node_server.js) and prints the outcome as one JSON line:
 * {"case":..,"status":..,"message":..,"msgs":..,"bytes":..,"payload":..,
 *  "seq_ok":..,"elapsed_ms":..}. The driver asserts on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "orrery_test.pb-c.h"

typedef struct run {
  const char *name;
  uv_loop_t *loop;
  net_grpc_ccall *call;
  uv_timer_t resume_timer;
  int done, status, msgs, seq_ok, unary;
  int cancel_after, pause_after, resume_ms;
  int64_t bytes;
  orr_buf message, payload;
  uint64_t t0;
} run;

static void resume_cb(uv_timer_t *t) {
  run *r = t->data;
  net_grpc_ccall_resume(r->call);
}

static int on_msg(net_grpc_ccall *c, const uint8_t *msg, size_t len, void *arg) {
  run *r = arg;
  if (r->unary) {
    Orrery__Test__EchoReply *rep = orrery__test__echo_reply__unpack(NULL, len, msg);
    if (rep) {
      orr_buf_append(&r->payload, rep->payload.data, rep->payload.len);
      r->bytes += (int64_t)rep->payload.len;
      orrery__test__echo_reply__free_unpacked(rep, NULL);
    }
  } else {
    Orrery__Test__Chunk *ch = orrery__test__chunk__unpack(NULL, len, msg);
    if (!ch || ch->seq != r->msgs) r->seq_ok = 0;
    if (ch) {
      r->bytes += (int64_t)ch->payload.len;
      orrery__test__chunk__free_unpacked(ch, NULL);
    }
  }
  r->msgs++;
  if (r->cancel_after && r->msgs == r->cancel_after) net_grpc_ccall_cancel(c);
  if (r->pause_after && r->msgs == r->pause_after) {
    uv_timer_start(&r->resume_timer, resume_cb, (uint64_t)r->resume_ms, 0);
    return NET_GRPC_PAUSE;
  }
  return 0;
}

static void on_done(net_grpc_ccall *c, int status, const char *message, void *arg) {
  run *r = arg;
  r->done++;
  r->status = status;
  orr_buf_puts(&r->message, message);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *name = "unary";
  int64_t port = 0;
  orr_flag flags[] = {
      {"host", ORR_FLAG_STRING, &host, "127.0.0.1", "server address", NULL},
      {"port", ORR_FLAG_INT, &port, "0", "server port", NULL},
      {"case", ORR_FLAG_STRING, &name, "unary",
       "unary|stream|deadline|stream_deadline|cancel|status|paused|bulk|unimplemented", NULL},
      {NULL, 0, NULL, NULL, NULL, NULL},
  };
  char err[256];
  if (orr_flags_parse(flags, argc, argv, NULL, err, sizeof(err)) != 0 || port <= 0) {
    fprintf(stderr, "%s\n", port <= 0 ? "--port is required" : err);
    return 2;
  }
  run r = {.name = name, .seq_ok = 1};
  r.loop = uv_default_loop();
  uv_timer_init(r.loop, &r.resume_timer);
  r.resume_timer.data = &r;

  Orrery__Test__EchoRequest ereq = ORRERY__TEST__ECHO_REQUEST__INIT;
  Orrery__Test__StreamRequest sreq = ORRERY__TEST__STREAM_REQUEST__INIT;
  net_grpc_call_opts o = {.timeout_ms = 10000};
  const char *path = "/orrery.test.Echo/Unary";
  const char *md[] = {"x-orrery-case", name, NULL};
  o.metadata = md;
  int unary = 1;
  if (strcmp(name, "unary") == 0) {
    ereq.payload.data = (uint8_t *)"hello from orrery";
    ereq.payload.len = strlen("hello from orrery");
  } else if (strcmp(name, "deadline") == 0) {
    ereq.delay_ms = 5000;
    o.timeout_ms = 300;
  } else if (strcmp(name, "status") == 0) {
    ereq.status = NET_GRPC_FAILED_PRECONDITION;
    ereq.message = "bad: \xc3\xbc 100%\r\n{x=\"y\"} \xe2\x9c\x93";
  } else if (strcmp(name, "unimplemented") == 0) {
    path = "/orrery.test.Echo/Nope";
  } else {
    unary = 0;
    path = "/orrery.test.Echo/Stream";
    if (strcmp(name, "stream") == 0) {
      sreq.count = 1000;
      sreq.size = 1000;
    } else if (strcmp(name, "stream_deadline") == 0) {
      sreq.count = 0;
      sreq.size = 10;
      sreq.interval_ms = 10;
      o.timeout_ms = 300;
    } else if (strcmp(name, "cancel") == 0) {
      sreq.count = 0;
      sreq.size = 100;
      sreq.interval_ms = 5;
      r.cancel_after = 5;
    } else if (strcmp(name, "bulk") == 0) {
      /* Throughput: 100 MiB in 64 KiB messages, read as fast as possible. */
      sreq.count = 1600;
      sreq.size = 65536;
      o.timeout_ms = 60000;
    } else if (strcmp(name, "paused") == 0) {
      sreq.count = 200;
      sreq.size = 65536;
      r.pause_after = 1;
      r.resume_ms = 500;
    } else {
      fprintf(stderr, "unknown case %s\n", name);
      return 2;
    }
  }
  r.unary = unary;
  o.unary = unary;
  size_t n = unary ? orrery__test__echo_request__get_packed_size(&ereq)
                   : orrery__test__stream_request__get_packed_size(&sreq);
  uint8_t *req = malloc(n + 1);
  if (unary)
    orrery__test__echo_request__pack(&ereq, req);
  else
    orrery__test__stream_request__pack(&sreq, req);

  net_grpc_client *cli;
  if (net_grpc_client_new(r.loop, host, (int)port, &cli) != 0) return 1;
  r.t0 = orr_mono_ns();
  if (net_grpc_client_call(cli, path, req, n, &o, on_msg, on_done, &r, &r.call) != 0) return 1;
  free(req);
  while (!r.done) uv_run(r.loop, UV_RUN_ONCE);
  uint64_t elapsed = (orr_mono_ns() - r.t0) / 1000000;
  net_grpc_client_close(cli, NULL, NULL);
  uv_close((uv_handle_t *)&r.resume_timer, NULL);
  uv_run(r.loop, UV_RUN_DEFAULT);

  orr_buf out = {0};
  orr_buf_printf(&out, "{\"case\":\"%s\",\"status\":%d,\"message\":\"", name, r.status);
  orr_buf_json_escape(&out, r.message.data ? r.message.data : "", r.message.len);
  orr_buf_printf(&out, "\",\"msgs\":%d,\"bytes\":%lld,\"payload\":\"", r.msgs, (long long)r.bytes);
  orr_buf_json_escape(&out, r.payload.data ? r.payload.data : "", r.payload.len);
  orr_buf_printf(&out, "\",\"seq_ok\":%s,\"done_calls\":%d,\"elapsed_ms\":%llu}\n",
                 r.seq_ok ? "true" : "false", r.done, (unsigned long long)elapsed);
  fwrite(out.data, 1, out.len, stdout);
  orr_buf_free(&out);
  orr_buf_free(&r.message);
  orr_buf_free(&r.payload);
  uv_loop_close(r.loop);
  orr_flags_free(flags);
  return 0;
}
