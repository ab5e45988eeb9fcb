/* bench_grpc_series.c: Series streams from a StoreAPI server with our gRPC
 * client, plaintext or over TLS, for bench/tls_vs_plaintext.sh: runs RUNS
 * calls one after the other, each streaming every series of
 * {__name__="fixture_metric"} in [MINT, MAXT], and prints one line
 * "series=<per call> bytes=<per call> seconds=<total> mib_per_s=<rate>".
 * Usage: bench_grpc_series HOST PORT RUNS MINT MAXT [CA CERT KEY]
 * Exit 1 when a call fails or the calls disagree on the series count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "rpc.pb-c.h"

typedef struct st {
  uv_loop_t *loop;
  net_grpc_client *c;
  uint8_t *req;
  size_t reqlen;
  int left, failed;
  long series, first_series;
  uint64_t bytes;
} st;

static void start_call(st *s);

static int on_msg(net_grpc_ccall *c, const uint8_t *msg, size_t len, void *arg) {
  (void)c;
  st *s = arg;
  s->bytes += len;
  /* SeriesResponse field 1 (series): tag 0x0a */
  if (len && msg[0] == 0x0a) s->series++;
  return 0;
}

static void on_done(net_grpc_ccall *c, int status, const char *message, void *arg) {
  (void)c;
  st *s = arg;
  if (status != NET_GRPC_OK) {
    fprintf(stderr, "bench_grpc_series: %s: %s\n", net_grpc_status_name(status), message);
    s->failed = 1;
  }
  if (s->first_series < 0) s->first_series = s->series;
  else if (s->series != s->first_series) s->failed = 1;
  s->series = 0;
  if (!s->failed && --s->left > 0) start_call(s);
  else net_grpc_client_close(s->c, NULL, NULL);
}

static void start_call(st *s) {
  net_grpc_call_opts o = {.timeout_ms = 600000};
  if (net_grpc_client_call(s->c, "/thanos.Store/Series", s->req, s->reqlen, &o, on_msg, on_done,
                           s, NULL)) {
    s->failed = 1;
    net_grpc_client_close(s->c, NULL, NULL);
  }
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s HOST PORT RUNS MINT MAXT [CA CERT KEY]\n", argv[0]);
    return 2;
  }
  orr_log_setup(ORR_LOG_WARN, ORR_LOG_LOGFMT);
  st s = {0};
  s.loop = uv_default_loop();
  s.left = atoi(argv[3]);
  s.first_series = -1;
  Thanos__LabelMatcher m = THANOS__LABEL_MATCHER__INIT;
  m.type = THANOS__LABEL_MATCHER__TYPE__EQ;
  m.name = "__name__";
  m.value = "fixture_metric";
  Thanos__LabelMatcher *ms[1] = {&m};
  Thanos__SeriesRequest r = THANOS__SERIES_REQUEST__INIT;
  r.min_time = atoll(argv[4]);
  r.max_time = atoll(argv[5]);
  r.n_matchers = 1;
  r.matchers = ms;
  s.reqlen = thanos__series_request__get_packed_size(&r);
  s.req = malloc(s.reqlen);
  thanos__series_request__pack(&r, s.req);
  if (net_grpc_client_new(s.loop, argv[1], atoi(argv[2]), &s.c)) return 1;
  if (argc >= 9) {
    net_tls_client_opts to = {.ca_file = argv[6], .cert_file = argv[7], .key_file = argv[8]};
    net_tls_ctx *tls;
    char err[256];
    if (net_tls_ctx_new_client(&to, s.loop, &tls, err, sizeof(err))) {
      fprintf(stderr, "bench_grpc_series: %s\n", err);
      return 1;
    }
    net_grpc_client_set_tls(s.c, tls);
    net_tls_ctx_unref(tls);
  }
  int runs = s.left;
  uint64_t t0 = orr_mono_ns();
  start_call(&s);
  uv_run(s.loop, UV_RUN_DEFAULT);
  double secs = (double)(orr_mono_ns() - t0) / 1e9;
  printf("series=%ld bytes=%llu seconds=%.3f mib_per_s=%.1f\n", s.first_series,
         (unsigned long long)(s.bytes / (uint64_t)(runs > 0 ? runs : 1)), secs,
         (double)s.bytes / 1048576.0 / secs);
  free(s.req);
  uv_loop_close(s.loop);
  return s.failed || s.first_series <= 0 ? 1 : 0;
}
