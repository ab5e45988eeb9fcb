/* local.c: the in-process StoreAPI client — each call goes straight to a
 * storeapi_backend on the same loop (no gRPC, no socket, responses handed
 * over as messages), for sources the gateway runs itself.
 *
 * Design notes
 * 1. A local call has two sides. The client side is done once its
 *    callback (on_done, or the unary callback) ran; the server side once
 *    the backend released the call (storeapi_call_finish or a reply). The
 *    call is freed (its two timers closed) only when both are done, so a
 *    backend may finish after the client cancelled, and the client may
 *    forget the call after its callback while the backend still works.
 * 2. Nothing reaches the client from inside a client call: the start, a
 *    resume and a cancel are done by the |kick| timer (0 ms) on the next
 *    loop turn, as the gRPC client defers its callbacks. Responses and the
 *    backend's finish reach the client from inside the backend's own
 *    callbacks, as a gRPC client gets them from its socket's.
 * 3. A cancel (client's, a timeout, the client closing) marks the server
 *    call cancelled at once, so a backend pushing in a loop sees
 *    ORR_ECANCELED on its next send; backend->cancel runs from the kick
 *    unless the backend finished first.
 * 4. The client is freed, and on_closed runs, when it was closed and its
 *    last call was freed. */
#include <stdlib.h>
#include <string.h>

#include "storeapi_int.h"

struct storeapi__local {
  uv_loop_t *loop;
  storeapi_server *srv; /* the backend, without gRPC or metrics */
  const char *const *md;
  storeapi__lcall *calls; /* doubly linked */
  size_t ncalls;
  bool closing;
  void (*on_closed)(void *arg);
  void *closed_arg;
  uv_timer_t closer; /* on_closed runs from the loop */
  bool closer_closed;
};

struct storeapi__lcall {
  storeapi__local *l;
  storeapi__lcall *prev, *next;
  int method;
  orr_arena *a;
  orr_buf req;              /* the packed request */
  storeapi_call *c;         /* the server side, once started */
  storeapi_series_call sh;  /* Series: the client's handle and callbacks */
  storeapi_unary uh;        /* the others */
  const ProtobufCMessage *resp; /* unary answer, borrowed during the release */
  uv_timer_t kick, deadline;
  int open_handles;
  bool started, server_done, client_done, paused, want_resume, cancel_req, cancel_told,
      freeing;
  int cancel_status;
  const char *cancel_msg; /* static */
};

static void client_maybe_closed(storeapi__local *l);

/* ---------------------------------------------------------------- freeing */
static void lcall_handle_closed(uv_handle_t *h) {
  storeapi__lcall *lc = h->data;
  if (--lc->open_handles > 0) return;
  storeapi__local *l = lc->l;
  orr_buf_free(&lc->req);
  orr_arena_destroy(lc->a);
  free(lc);
  l->ncalls--;
  client_maybe_closed(l);
}

/* Note 1: frees |lc| once both sides are done. */
static void lcall_maybe_free(storeapi__lcall *lc) {
  if (!lc->server_done || !lc->client_done || lc->freeing) return;
  lc->freeing = true;
  storeapi__local *l = lc->l;
  if (lc->prev)
    lc->prev->next = lc->next;
  else
    l->calls = lc->next;
  if (lc->next) lc->next->prev = lc->prev;
  uv_close((uv_handle_t *)&lc->kick, lcall_handle_closed);
  uv_close((uv_handle_t *)&lc->deadline, lcall_handle_closed);
}

/* The client's callback, once. */
static void deliver_done(storeapi__lcall *lc, int status, const char *msg) {
  if (lc->client_done) return;
  lc->client_done = true;
  uv_timer_stop(&lc->deadline);
  if (!msg) msg = "";
  if (lc->method == STOREAPI__M_SERIES) {
    lc->sh.on_done(status, msg, lc->sh.arg);
    return;
  }
  const void *r = status == NET_GRPC_OK ? lc->resp : NULL;
  if (status == NET_GRPC_OK && !r) {
    status = NET_GRPC_INTERNAL;
    msg = "no response message";
  }
  switch (lc->uh.kind) {
  case 0: ((storeapi_info_fn)lc->uh.cb)(status, msg, r, lc->uh.arg); break;
  case 1: ((storeapi_label_names_fn)lc->uh.cb)(status, msg, r, lc->uh.arg); break;
  default: ((storeapi_label_values_fn)lc->uh.cb)(status, msg, r, lc->uh.arg); break;
  }
}

/* ---------------------------------------------------------------- kick */
static void kick_cb(uv_timer_t *t) {
  storeapi__lcall *lc = t->data;
  if (lc->cancel_req) {
    deliver_done(lc, lc->cancel_status, lc->cancel_msg);
    if (!lc->started) {
      lc->started = true;
      lc->server_done = true; /* the backend never saw it */
    } else if (!lc->server_done && !lc->cancel_told) {
      lc->cancel_told = true;
      storeapi__call_cancel(lc->c); /* the backend finishes (now or later) */
    }
  } else if (!lc->started) {
    lc->started = true;
    lc->c = storeapi__call_local(lc->l->srv, lc, lc->a, lc->method);
    if (!lc->c) {
      lc->server_done = true;
      deliver_done(lc, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    } else {
      storeapi__call_dispatch(lc->c, (const uint8_t *)(lc->req.data ? lc->req.data : ""),
                              lc->req.len);
    }
  } else if (lc->want_resume && !lc->paused && !lc->server_done) {
    lc->want_resume = false;
    storeapi__call_resume(lc->c);
  }
  lcall_maybe_free(lc);
}

static void kick(storeapi__lcall *lc) { uv_timer_start(&lc->kick, kick_cb, 0, 0); }

static void request_cancel(storeapi__lcall *lc, int status, const char *msg) {
  if (lc->client_done || lc->cancel_req) return;
  lc->cancel_req = true;
  lc->cancel_status = status;
  lc->cancel_msg = msg;
  if (lc->c && !lc->server_done) storeapi__call_mark_cancelled(lc->c);
  kick(lc);
}

static void deadline_cb(uv_timer_t *t) {
  request_cancel(t->data, NET_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

/* ---------------------------------------------------------------- server side */
int storeapi__local_send(storeapi__lcall *lc, const Thanos__SeriesResponse *r) {
  if (lc->client_done || lc->cancel_req || lc->method != STOREAPI__M_SERIES)
    return ORR_ECANCELED;
  if (lc->sh.on_series(r, lc->sh.arg) == NET_GRPC_PAUSE) lc->paused = true;
  if (lc->cancel_req) return ORR_ECANCELED;
  if (lc->paused) {
    lc->want_resume = true;
    return ORR_EAGAIN;
  }
  return 0;
}

void storeapi__local_reply(storeapi__lcall *lc, const ProtobufCMessage *m) { lc->resp = m; }

void storeapi__local_release(storeapi__lcall *lc, int status, const char *msg) {
  lc->server_done = true;
  if (!lc->cancel_req) deliver_done(lc, status, msg);
  lc->resp = NULL;
  /* Freed from the kick: the backend may still be on its stack. */
  kick(lc);
}

const char *storeapi__local_metadata(storeapi__lcall *lc, const char *name) {
  for (const char *const *m = lc->l->md; m && m[0] && m[1]; m += 2)
    if (strcmp(m[0], name) == 0) return m[1];
  return NULL;
}

/* ---------------------------------------------------------------- client side */
int storeapi__local_new(uv_loop_t *loop, const storeapi_backend *b, storeapi__local **out) {
  storeapi__local *l = calloc(1, sizeof(*l));
  if (!l) return ORR_ENOMEM;
  l->loop = loop;
  l->srv = storeapi__server_local(b);
  if (!l->srv) {
    free(l);
    return ORR_ENOMEM;
  }
  *out = l;
  return 0;
}

void storeapi__local_set_metadata(storeapi__local *l, const char *const *md) { l->md = md; }

int storeapi__local_call(storeapi__local *l, int method, const ProtobufCMessage *req,
                         int64_t timeout_ms, const storeapi_series_call *series,
                         const storeapi_unary *unary, storeapi_series_call **sout,
                         storeapi_unary **uout) {
  if (l->closing) return ORR_EINVAL;
  storeapi__lcall *lc = calloc(1, sizeof(*lc));
  if (!lc) return ORR_ENOMEM;
  lc->l = l;
  lc->method = method;
  lc->a = orr_arena_new(0);
  if (!lc->a || storeapi__pack(req, &lc->req)) {
    orr_arena_destroy(lc->a);
    orr_buf_free(&lc->req);
    free(lc);
    return ORR_ENOMEM;
  }
  if (series) lc->sh = *series;
  if (unary) lc->uh = *unary;
  lc->sh.lc = lc;
  lc->uh.lc = lc;
  uv_timer_init(l->loop, &lc->kick);
  uv_timer_init(l->loop, &lc->deadline);
  lc->kick.data = lc;
  lc->deadline.data = lc;
  lc->open_handles = 2;
  lc->next = l->calls;
  if (l->calls) l->calls->prev = lc;
  l->calls = lc;
  l->ncalls++;
  if (timeout_ms > 0) uv_timer_start(&lc->deadline, deadline_cb, (uint64_t)timeout_ms, 0);
  kick(lc);
  if (sout) *sout = &lc->sh;
  if (uout) *uout = &lc->uh;
  return 0;
}

void storeapi__local_resume(storeapi__lcall *lc) {
  if (!lc->paused) return;
  lc->paused = false;
  if (lc->want_resume) kick(lc);
}

void storeapi__local_cancel(storeapi__lcall *lc) {
  request_cancel(lc, NET_GRPC_CANCELLED, "cancelled by the client");
}

static void closer_closed(uv_handle_t *h) {
  storeapi__local *l = h->data;
  l->closer_closed = true;
  client_maybe_closed(l);
}

static void client_maybe_closed(storeapi__local *l) {
  if (!l->closing || l->ncalls > 0 || !l->closer_closed) return;
  void (*cb)(void *) = l->on_closed;
  void *arg = l->closed_arg;
  storeapi_server_free(l->srv);
  free(l);
  if (cb) cb(arg);
}

void storeapi__local_close(storeapi__local *l, void (*on_closed)(void *arg), void *arg) {
  l->closing = true;
  l->on_closed = on_closed;
  l->closed_arg = arg;
  for (storeapi__lcall *lc = l->calls; lc; lc = lc->next)
    request_cancel(lc, NET_GRPC_CANCELLED, "client closed");
  /* on_closed from the loop, never from inside this call */
  uv_timer_init(l->loop, &l->closer);
  l->closer.data = l;
  uv_close((uv_handle_t *)&l->closer, closer_closed);
}
