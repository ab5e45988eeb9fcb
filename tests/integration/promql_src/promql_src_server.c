/* promql_src_server.c: the --endpoint.promql backend (gateway/src_promql.c)
 * alone on a StoreAPI gRPC server, for tests until the gateway runs such
 * backends in-process: a gateway points --endpoint at it.
 *   promql_src_server <flag value> [timeout ms]
 * Prints "port N" on stdout once listening on 127.0.0.1; SIGTERM stops it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "storeapi.h"

static net_grpc_server *grpc;
static net_http_client *http;
static storeapi_server *sapi;
static uv_signal_t sig;

static void http_closed(void *arg) { (void)arg; }

static void grpc_closed(void *arg) {
  (void)arg;
  storeapi_server_free(sapi);
  net_http_client_close(http, http_closed, NULL);
  uv_close((uv_handle_t *)&sig, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_signal_stop(s);
  net_grpc_server_close(grpc, 1000, grpc_closed, NULL);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL[;name=value,...] [timeout_ms]\n", argv[0]);
    return 2;
  }
  uv_loop_t *loop = uv_default_loop();
  char err[512] = "";
  gw_promql_src *src = NULL;
  if (net_http_client_new(loop, NULL, &http)) return 1;
  gw_promql_src_config cfg = {argv[1], http, argc > 2 ? atoll(argv[2]) : 0, orr_registry_default()};
  if (gw_promql_src_new(&cfg, &src, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  storeapi_backend be;
  gw_promql_src_backend(src, &be);
  net_grpc_server_opts go = {0};
  if (net_grpc_server_new(loop, &go, &grpc) || storeapi_server_new(grpc, &be, NULL, &sapi) ||
      net_grpc_server_listen(grpc, "127.0.0.1", 0)) {
    fprintf(stderr, "cannot listen\n");
    return 1;
  }
  uv_signal_init(loop, &sig);
  uv_signal_start(&sig, on_signal, SIGTERM);
  printf("port %d\n", net_grpc_server_port(grpc));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  gw_promql_src_free(src);
  uv_loop_close(loop);
  return 0;
}
