/* fanout_fake_stores.c: N lightweight StoreAPI endpoints in one process for
 * bench/fanout_width.sh — each its own gRPC server on 127.0.0.1 (a port of
 * its own), with the external label store="sNNNN" and one series,
 * up{job="fake", store="sNNNN"}, sampled every 15 s over the 10 minutes up
 * to --t0. So a gateway over them answers count(up) with N, and what it
 * spends grows only with the number of endpoints.
 *
 * Usage: bench_fanout_fake_stores N T0_MS SD_FILE
 * Writes SD_FILE (file SD JSON, every endpoint's address) once every
 * server listens, then serves until SIGTERM/SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "storeapi.h"
#include "tsdb.h"

typedef struct fake {
  net_grpc_server *grpc;
  storeapi_server *sapi;
  char store[16];
} fake;

static const uint8_t *chunk;
static size_t chunk_len;
static int64_t chunk_mint, chunk_maxt;

static void be_info(void *arg, storeapi_call *c) {
  fake *f = arg;
  Thanos__Label l = THANOS__LABEL__INIT, *lp = &l;
  l.name = "store", l.value = f->store;
  Thanos__LabelSet ls = THANOS__LABEL_SET__INIT, *lsp = &ls;
  ls.labels = &lp, ls.n_labels = 1;
  Thanos__Info__StoreInfo si = THANOS__INFO__STORE_INFO__INIT;
  si.min_time = chunk_mint, si.max_time = chunk_maxt;
  si.supports_without_replica_labels = 1;
  Thanos__Info__InfoResponse r = THANOS__INFO__INFO_RESPONSE__INIT;
  r.label_sets = &lsp, r.n_label_sets = 1;
  r.componenttype = "store";
  r.store = &si;
  storeapi_call_reply_info(c, &r);
}

static void be_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  fake *f = arg;
  /* Sorted by name, as a StoreAPI server sends them. */
  static const char *const names[] = {"__name__", "job", "store"};
  const char *values[] = {"up", "fake", f->store};
  bool match = req->msg->max_time >= chunk_mint && req->msg->min_time <= chunk_maxt;
  for (size_t i = 0; match && i < req->nmatchers; i++) {
    const char *v = "";
    for (size_t j = 0; j < 3; j++)
      if (!strcmp(labels_matcher_name(req->matchers[i]), names[j])) v = values[j];
    match = labels_matcher_matches(req->matchers[i], v, strlen(v));
  }
  if (match) {
    Thanos__Label l[3], *lp[3];
    for (size_t j = 0; j < 3; j++) {
      thanos__label__init(&l[j]);
      l[j].name = (char *)names[j], l[j].value = (char *)values[j];
      lp[j] = &l[j];
    }
    Thanos__Chunk raw = THANOS__CHUNK__INIT;
    raw.type = THANOS__CHUNK__ENCODING__XOR;
    raw.data.data = (uint8_t *)chunk, raw.data.len = chunk_len;
    Thanos__AggrChunk ac = THANOS__AGGR_CHUNK__INIT, *ap = &ac;
    ac.min_time = chunk_mint, ac.max_time = chunk_maxt, ac.raw = &raw;
    Thanos__Series s = THANOS__SERIES__INIT;
    s.labels = lp, s.n_labels = 3, s.chunks = &ap, s.n_chunks = 1;
    /* One small message into an empty queue is always taken. */
    if (storeapi_call_send_series(c, &s) == ORR_ENOMEM) {
      storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
  }
  storeapi_call_finish(c, NET_GRPC_OK, NULL);
}

static void be_cancel(void *arg, storeapi_call *c) {
  (void)arg;
  storeapi_call_finish(c, NET_GRPC_CANCELLED, "cancelled");
}

static uv_signal_t sigterm, sigint;
static fake *fakes;
static int nfakes, closing_left;

static void closed_one(void *arg) {
  (void)arg;
  closing_left--;
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  (void)s;
  uv_signal_stop(&sigterm);
  uv_signal_stop(&sigint);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_close((uv_handle_t *)&sigint, NULL);
  closing_left = nfakes;
  for (int i = 0; i < nfakes; i++) net_grpc_server_close(fakes[i].grpc, 0, closed_one, NULL);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s N T0_MS SD_FILE\n", argv[0]);
    return 2;
  }
  nfakes = atoi(argv[1]);
  int64_t t0 = strtoll(argv[2], NULL, 10);
  if (nfakes <= 0 || nfakes > 100000) {
    fprintf(stderr, "N: want 1..100000\n");
    return 2;
  }
  /* A listener and a connection per endpoint. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  tsdb_xor_appender app;
  if (tsdb_xor_appender_init(&app)) return 1;
  chunk_mint = t0 - 600000;
  chunk_maxt = t0;
  for (int64_t t = chunk_mint; t <= chunk_maxt; t += 15000)
    if (tsdb_xor_append(&app, t, 1)) return 1;
  chunk = tsdb_xor_bytes(&app, &chunk_len);

  uv_loop_t *loop = uv_default_loop();
  fakes = calloc((size_t)nfakes, sizeof(*fakes));
  if (!fakes) return 1;
  FILE *sd = NULL;
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
  if (!(sd = fopen(tmp, "w"))) {
    perror(tmp);
    return 1;
  }
  fputs("[{\"targets\": [", sd);
  for (int i = 0; i < nfakes; i++) {
    fake *f = &fakes[i];
    snprintf(f->store, sizeof(f->store), "s%05d", i);
    storeapi_backend be = {be_info, be_series, NULL, NULL, be_cancel, NULL, f};
    int rc;
    if ((rc = net_grpc_server_new(loop, NULL, &f->grpc)) ||
        (rc = storeapi_server_new(f->grpc, &be, NULL, &f->sapi)) ||
        (rc = net_grpc_server_listen(f->grpc, "127.0.0.1", 0))) {
      fprintf(stderr, "endpoint %d: %s\n", i, orr_strerror(rc));
      return 1;
    }
    fprintf(sd, "%s\"127.0.0.1:%d\"", i ? ", " : "", net_grpc_server_port(f->grpc));
  }
  fputs("]}]\n", sd);
  if (fclose(sd) || rename(tmp, argv[3])) {
    perror(argv[3]);
    return 1;
  }
  uv_signal_init(loop, &sigterm);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  for (int i = 0; i < nfakes; i++) storeapi_server_free(fakes[i].sapi);
  free(fakes);
  tsdb_xor_appender_free(&app);
  uv_loop_close(loop);
  return 0;
}
