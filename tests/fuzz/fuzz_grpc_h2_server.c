/* fuzz_grpc_h2_server.c (target fuzz_h2_server): arbitrary bytes as the
 * client side of an HTTP/2 connection, fed into a gRPC server session in
 * memory (nghttp2_session_mem_recv, output drained with mem_send; no
 * sockets), with unary and streaming handlers registered. No crash, no leak:
 * every call is released once the connection is closed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

static uv_loop_t loop;
static net_grpc_server *srv;
static int handled; /* handlers started, shown with FUZZ_VERBOSE=1 */

static void h_unary(net_grpc_call *c, const uint8_t *req, size_t len, void *arg) {
  handled++;
  (void)net_grpc_call_metadata(c, "x-any");
  net_grpc_call_send(c, req, len);
  net_grpc_call_finish(c, len ? NET_GRPC_OK : NET_GRPC_INVALID_ARGUMENT, "empty\n request %");
}

static void on_cancel(net_grpc_call *c, int status, void *arg) { net_grpc_call_finish(c, 0, NULL); }

static void pump(net_grpc_call *c, void *arg) {
  static const uint8_t buf[3000];
  for (int i = 0; i < 50; i++)
    if (net_grpc_call_send(c, buf, sizeof(buf)) == ORR_EAGAIN) return;
  net_grpc_call_finish(c, NET_GRPC_OK, NULL);
}

static void h_stream(net_grpc_call *c, const uint8_t *req, size_t len, void *arg) {
  handled++;
  if (len > 0 && req[0] == 'h') {
    /* Hang until cancelled (deadline, RST_STREAM or connection end). */
    net_grpc_call_set_callbacks(c, NULL, on_cancel, NULL);
    return;
  }
  net_grpc_call_set_callbacks(c, pump, on_cancel, NULL);
  pump(c, NULL);
}

static void setup(void) {
  uv_loop_init(&loop);
  net_grpc_server_opts o = {.max_recv_msg = 4096, .send_queue_bytes = 8192};
  if (net_grpc_server_new(&loop, &o, &srv) ||
      net_grpc_server_register(srv, "/f.S/U", NET_GRPC_UNARY, h_unary, NULL) ||
      net_grpc_server_register(srv, "/f.S/S", NET_GRPC_SERVER_STREAMING, h_stream, NULL))
    abort();
}

static void drain(net__h2_conn *h) {
  for (int i = 0; i < 1000 && !h->closing; i++) {
    const uint8_t *out;
    ssize_t n = nghttp2_session_mem_send(h->session, &out);
    if (n <= 0) break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (!srv) setup();
  net__h2_conn *h;
  if (net__grpc_server_fake_conn(srv, &h)) abort();
  int dead = nghttp2_session_mem_recv(h->session, (const uint8_t *)magic, sizeof(magic) - 1) < 0;
  /* Feed in pieces so deferred work (writable notifications) interleaves. */
  size_t pos = 0;
  while (!dead && pos < size) {
    size_t piece = size - pos < 97 ? size - pos : 97;
    if (nghttp2_session_mem_recv(h->session, data + pos, piece) < 0) dead = 1;
    pos += piece;
    drain(h);
    uv_run(&loop, UV_RUN_NOWAIT);
    drain(h);
  }
  net__h2_conn_close(h, ORR_ECLOSED);
  uv_run(&loop, UV_RUN_DEFAULT); /* runs until the connection and its calls are freed */
  if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "handlers started so far: %d\n", handled);
  return 0;
}
