/* fuzz_grpc_h2_client.c (target fuzz_h2_client): arbitrary bytes as the
 * server side of an HTTP/2 connection, fed into our gRPC client in memory
 * while three calls are open (unary, a stream that pauses and resumes, a
 * stream with a small message limit). No crash, no leak, and every call
 * completes exactly once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

static uv_loop_t loop;

typedef struct res {
  net_grpc_ccall *call;
  int done, msgs, pause_at;
} res;

static int on_msg(net_grpc_ccall *c, const uint8_t *msg, size_t len, void *arg) {
  res *r = arg;
  if (r->done) abort(); /* nothing after completion */
  r->msgs++;
  return r->pause_at && r->msgs % r->pause_at == 0 ? NET_GRPC_PAUSE : 0;
}

static void on_done(net_grpc_ccall *c, int status, const char *message, void *arg) {
  res *r = arg;
  if (r->done++ || status < 0 || status > 16 || !message) abort();
}

static void closed_cb(void *arg) { *(int *)arg = 1; }

static void drain(net__h2_conn *h) {
  for (int i = 0; i < 100 && h->session && !h->closing; i++) {
    const uint8_t *out;
    if (nghttp2_session_mem_send(h->session, &out) <= 0) break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init++) uv_loop_init(&loop);
  net_grpc_client *cli;
  net__h2_conn *h;
  if (net_grpc_client_new(&loop, "127.0.0.1", 1, &cli) || net__grpc_client_fake_conn(cli, &h))
    abort();
  /* Stream ids 1, 3, 5, as in the seeds (tests/fuzz/corpus/fuzz_h2_client). */
  res r[3] = {{0}, {.pause_at = 2}, {0}};
  net_grpc_call_opts unary = {.unary = 1};
  net_grpc_call_opts small = {.max_recv_msg = 64};
  if (net_grpc_client_call(cli, "/f.S/U", "ping", 4, &unary, on_msg, on_done, &r[0], &r[0].call) ||
      net_grpc_client_call(cli, "/f.S/S", "5 10", 4, NULL, on_msg, on_done, &r[1], &r[1].call) ||
      net_grpc_client_call(cli, "/f.S/S", "2 100", 5, &small, on_msg, on_done, &r[2], &r[2].call))
    abort();
  drain(h);
  size_t pos = 0;
  int round = 0;
  while (pos < size && !h->closing) {
    size_t piece = size - pos < 101 ? size - pos : 101;
    if (nghttp2_session_mem_recv(h->session, data + pos, piece) < 0) break;
    pos += piece;
    drain(h);
    if (++round % 2 == 0 && !r[1].done) net_grpc_ccall_resume(r[1].call);
    uv_run(&loop, UV_RUN_NOWAIT);
    drain(h);
  }
  int closed = 0;
  net_grpc_client_close(cli, closed_cb, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (!closed) abort();
  for (int i = 0; i < 3; i++)
    if (r[i].done != 1) abort();
  return 0;
}
