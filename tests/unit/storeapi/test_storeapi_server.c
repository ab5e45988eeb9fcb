/* test_storeapi_server.c: the StoreAPI service layer with our StoreAPI
 * client in one process over 127.0.0.1 — Info, LabelValues, request
 * validation, a Series stream held back by a pausing client (the backend
 * sees ORR_EAGAIN and resume) and a cancelled stream; then the same through
 * the in-process client (storeapi_client_new_local), plus its deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storeapi.h"

static uv_loop_t loop;
static net_grpc_server *gs;
static storeapi_server *ss;
static storeapi_client *cl;
static int use_local; /* the tests run twice: gRPC client, then local */

/* ---------------------------------------------------------------- backend */
typedef struct job {
  storeapi_call *c;
  int next, total;
} job;

static struct {
  int eagain, resumes, cancels, finished;
} B;

static void be_info(void *arg, storeapi_call *c) {
  Thanos__Info__InfoResponse r = THANOS__INFO__INFO_RESPONSE__INIT;
  r.componenttype = "test";
  storeapi_call_reply_info(c, &r);
}

static void pump(job *j) {
  static uint8_t chunk[4096];
  while (j->next < j->total) {
    char name[32];
    snprintf(name, sizeof(name), "%06d", j->next);
    Thanos__Label l = THANOS__LABEL__INIT, *lp = &l;
    l.name = "i", l.value = name;
    Thanos__Chunk raw = THANOS__CHUNK__INIT;
    raw.data.data = chunk, raw.data.len = sizeof(chunk);
    Thanos__AggrChunk ac = THANOS__AGGR_CHUNK__INIT, *ap = &ac;
    ac.min_time = j->next, ac.max_time = j->next + 1, ac.raw = &raw;
    Thanos__Series s = THANOS__SERIES__INIT;
    s.labels = &lp, s.n_labels = 1, s.chunks = &ap, s.n_chunks = 1;
    j->next++;
    int rc = storeapi_call_send_series(j->c, &s);
    if (rc == ORR_EAGAIN) {
      B.eagain++;
      return; /* resume() continues */
    }
    if (rc) {
      B.finished++;
      storeapi_call_finish(j->c, NET_GRPC_CANCELLED, "gone");
      return;
    }
  }
  B.finished++;
  storeapi_call_finish(j->c, NET_GRPC_OK, NULL);
}

static void be_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  job *j = orr_arena_calloc(storeapi_call_arena(c), 1, sizeof(*j));
  j->c = c;
  j->total = (int)req->msg->limit;
  storeapi_call_set_data(c, j);
  if (j->total < 0) return; /* hangs until cancelled */
  if (req->nmatchers != 1 || strcmp(labels_matcher_name(req->matchers[0]), "i") != 0) {
    storeapi_call_finish(c, NET_GRPC_FAILED_PRECONDITION, "want one matcher on i");
    return;
  }
  pump(j);
}

static void be_resume(void *arg, storeapi_call *c) {
  B.resumes++;
  pump(storeapi_call_data(c));
}

static void be_cancel(void *arg, storeapi_call *c) {
  B.cancels++;
  B.finished++;
  storeapi_call_finish(c, NET_GRPC_CANCELLED, "cancelled");
}

static void be_label_values(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  char *vals[] = {(char *)req->label, "b"};
  Thanos__LabelValuesResponse r = THANOS__LABEL_VALUES_RESPONSE__INIT;
  r.values = vals, r.n_values = 2;
  storeapi_call_reply_label_values(c, &r);
}

/* ---------------------------------------------------------------- client side */
static struct {
  int done, status, series, out_of_order, paused, cancel_after;
  char msg[256];
  char component[32];
  char values[64];
  storeapi_series_call *sc;
  uv_timer_t resume;
} C;

static void run_until_done(void) {
  for (int i = 0; !C.done && i < 1000000; i++) uv_run(&loop, UV_RUN_ONCE);
  assert_true(C.done);
}

static void on_info(int status, const char *message, const Thanos__Info__InfoResponse *r, void *arg) {
  C.done = 1;
  C.status = status;
  if (r) snprintf(C.component, sizeof(C.component), "%s", r->componenttype);
}

static void on_values(int status, const char *message, const Thanos__LabelValuesResponse *r,
                      void *arg) {
  C.done = 1;
  C.status = status;
  snprintf(C.msg, sizeof(C.msg), "%s", message);
  if (r && r->n_values == 2)
    snprintf(C.values, sizeof(C.values), "%s,%s", r->values[0], r->values[1]);
}

static void on_names(int status, const char *message, const Thanos__LabelNamesResponse *r,
                     void *arg) {
  C.done = 1;
  C.status = status;
}

static void on_resume(uv_timer_t *t) { storeapi_client_series_resume(C.sc); }

static int on_series(const Thanos__SeriesResponse *r, void *arg) {
  assert_int_equal(r->result_case, THANOS__SERIES_RESPONSE__RESULT_SERIES);
  char want[32];
  snprintf(want, sizeof(want), "%06d", C.series);
  if (strcmp(r->series->labels[0]->value, want) != 0) C.out_of_order++;
  C.series++;
  if (C.cancel_after && C.series == C.cancel_after) {
    storeapi_client_series_cancel(C.sc);
    return 0;
  }
  if (C.series % 500 == 0) {
    /* A slow reader: stop for a moment. */
    C.paused++;
    uv_timer_start(&C.resume, on_resume, 5, 0);
    return NET_GRPC_PAUSE;
  }
  return 0;
}

static void on_done(int status, const char *message, void *arg) {
  C.done = 1;
  C.status = status;
  snprintf(C.msg, sizeof(C.msg), "%s", message);
}

static int setup(void **state) {
  memset(&B, 0, sizeof(B));
  memset(&C, 0, sizeof(C));
  uv_loop_init(&loop);
  uv_timer_init(&loop, &C.resume);
  net_grpc_server_opts o = {0};
  o.send_queue_bytes = 64 * 1024;
  assert_int_equal(net_grpc_server_new(&loop, &o, &gs), 0);
  storeapi_backend be = {be_info, be_series, NULL, be_label_values, be_cancel, be_resume, NULL};
  assert_int_equal(storeapi_server_new(gs, &be, NULL, &ss), 0);
  assert_int_equal(net_grpc_server_listen(gs, "127.0.0.1", 0), 0);
  if (use_local) {
    assert_int_equal(storeapi_client_new_local(&loop, &be, &cl), 0);
    assert_true(storeapi_client_is_local(cl));
  } else {
    assert_int_equal(storeapi_client_new(&loop, "127.0.0.1", net_grpc_server_port(gs), &cl), 0);
  }
  return 0;
}

static int setup_local(void **state) {
  use_local = 1;
  return setup(state);
}

static void closed(void *arg) { (*(int *)arg)--; }

static int teardown(void **state) {
  int pending = 2;
  storeapi_client_close(cl, closed, &pending);
  net_grpc_server_close(gs, 1000, closed, &pending);
  uv_close((uv_handle_t *)&C.resume, NULL);
  while (pending > 0) uv_run(&loop, UV_RUN_ONCE);
  uv_run(&loop, UV_RUN_DEFAULT);
  storeapi_server_free(ss);
  assert_int_equal(uv_loop_close(&loop), 0);
  return 0;
}

static int series_call_t(int64_t limit, Thanos__LabelMatcher *m, int64_t timeout_ms) {
  Thanos__SeriesRequest req = THANOS__SERIES_REQUEST__INIT;
  Thanos__LabelMatcher *mp = m;
  req.matchers = &mp, req.n_matchers = 1, req.limit = limit;
  req.min_time = 0, req.max_time = 100;
  return storeapi_client_series(cl, &req, timeout_ms, on_series, on_done, NULL, &C.sc);
}

static int series_call(int64_t limit, Thanos__LabelMatcher *m) {
  return series_call_t(limit, m, 30000);
}

static void test_info_and_values(void **state) {
  assert_int_equal(storeapi_client_info(cl, 5000, on_info, NULL), 0);
  run_until_done();
  assert_int_equal(C.status, NET_GRPC_OK);
  assert_string_equal(C.component, "test");

  C.done = 0;
  Thanos__LabelValuesRequest lv = THANOS__LABEL_VALUES_REQUEST__INIT;
  lv.label = "job";
  assert_int_equal(storeapi_client_label_values(cl, &lv, 5000, on_values, NULL), 0);
  run_until_done();
  assert_int_equal(C.status, NET_GRPC_OK);
  assert_string_equal(C.values, "job,b");

  C.done = 0;
  lv.label = "";
  assert_int_equal(storeapi_client_label_values(cl, &lv, 5000, on_values, NULL), 0);
  run_until_done();
  assert_int_equal(C.status, NET_GRPC_INVALID_ARGUMENT);
  assert_string_equal(C.msg, "label name parameter cannot be empty");

  /* LabelNames has no backend here. */
  C.done = 0;
  Thanos__LabelNamesRequest ln = THANOS__LABEL_NAMES_REQUEST__INIT;
  assert_int_equal(storeapi_client_label_names(cl, &ln, 5000, on_names, NULL), 0);
  run_until_done();
  assert_int_equal(C.status, NET_GRPC_UNIMPLEMENTED);
}

static void test_bad_matcher(void **state) {
  Thanos__LabelMatcher m = THANOS__LABEL_MATCHER__INIT;
  m.type = THANOS__LABEL_MATCHER__TYPE__RE, m.name = "i", m.value = "[a-";
  assert_int_equal(series_call(10, &m), 0);
  run_until_done();
  assert_int_equal(C.status, NET_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(C.msg, "bad matcher i=~\"[a-\""));
  assert_int_equal(C.series, 0);
  assert_int_equal(B.finished, 0); /* the backend never saw it */
}

static void test_series_backpressure(void **state) {
  Thanos__LabelMatcher m = THANOS__LABEL_MATCHER__INIT;
  m.name = "i", m.value = "x", m.type = THANOS__LABEL_MATCHER__TYPE__NEQ;
  assert_int_equal(series_call(5000, &m), 0);
  run_until_done();
  assert_int_equal(C.status, NET_GRPC_OK);
  assert_int_equal(C.series, 5000);
  assert_int_equal(C.out_of_order, 0);
  assert_true(C.paused >= 9);
  /* 20 MB through a 64 KiB queue: the backend was held back and resumed. */
  assert_true(B.eagain > 0);
  assert_int_equal(B.resumes, B.eagain);
  assert_int_equal(B.finished, 1);
}

static void test_series_cancel(void **state) {
  Thanos__LabelMatcher m = THANOS__LABEL_MATCHER__INIT;
  m.name = "i", m.value = "x", m.type = THANOS__LABEL_MATCHER__TYPE__NEQ;
  C.cancel_after = 100;
  assert_int_equal(series_call(1000000, &m), 0);
  run_until_done();
  assert_int_equal(C.status, NET_GRPC_CANCELLED);
  if (use_local) {
    /* The backend's next send answered ORR_ECANCELED: it finished the call
     * itself, before it would have been told. */
    for (int i = 0; i < 100000 && B.finished == 0; i++) uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(B.finished, 1);
    assert_int_equal(C.series, 100);
    return;
  }
  /* The server side learns of it and the backend finishes the call. */
  for (int i = 0; i < 100000 && B.cancels == 0; i++) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(B.cancels, 1);
  assert_int_equal(B.finished, 1);
}

/* A backend that never answers: the client's deadline ends the call with
 * DEADLINE_EXCEEDED and the backend is told to stop. */
static void test_series_deadline(void **state) {
  Thanos__LabelMatcher m = THANOS__LABEL_MATCHER__INIT;
  m.name = "i", m.value = "x", m.type = THANOS__LABEL_MATCHER__TYPE__NEQ;
  assert_int_equal(series_call_t(-1, &m, 50), 0);
  run_until_done();
  assert_int_equal(C.status, NET_GRPC_DEADLINE_EXCEEDED);
  for (int i = 0; i < 100000 && B.cancels == 0; i++) uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(B.cancels, 1);
  assert_int_equal(B.finished, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_info_and_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_matcher, setup, teardown),
      cmocka_unit_test_setup_teardown(test_series_backpressure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_series_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_info_and_values, setup_local, teardown),
      cmocka_unit_test_setup_teardown(test_bad_matcher, setup_local, teardown),
      cmocka_unit_test_setup_teardown(test_series_backpressure, setup_local, teardown),
      cmocka_unit_test_setup_teardown(test_series_cancel, setup_local, teardown),
      cmocka_unit_test_setup_teardown(test_series_deadline, setup_local, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
