/* storeapi_int.h: helpers shared by the storeapi module's files
 * (storeapi__ prefix); not for other modules. */
#ifndef ORR_STOREAPI_INT_H
#define ORR_STOREAPI_INT_H

#include "storeapi.h"

/* Packs |m| into |out| (appended). Returns 0 or ORR_ENOMEM. */
int storeapi__pack(const ProtobufCMessage *m, orr_buf *out);

/* ---- fastdec.c: SeriesResponse decoding */
/* Decodes |msg| as protobuf-c's thanos__series_response__unpack(|a|, ...)
 * would (|a| NULL: malloc), when it is in the canonical encoding the decoder handles; NULL when
 * it declines (anything else, or out of memory), having freed what it built.
 * |*nul| tells whether a label name or value of the series holds a NUL byte.
 * The caller frees the result with thanos__series_response__free_unpacked(|a|). */
Thanos__SeriesResponse *storeapi__series_response_fast(ProtobufCAllocator *a,
                                                       const uint8_t *msg, size_t len,
                                                       bool *nul);
/* client.c: what a Series call makes of one received message: the fast
 * decoder's result, or protobuf-c's when it declines (NULL when protobuf-c
 * rejects the message too), with |*nul| as above. */
Thanos__SeriesResponse *storeapi__series_response_decode(ProtobufCAllocator *a,
                                                         const uint8_t *msg, size_t len,
                                                         bool *nul);

/* client.c: whether a label name or value in |p|..|end| holds a NUL byte,
 * on the path |top| (1: SeriesResponse.series, 2: QueryResponse.timeseries)
 * → labels → name/value; |depth| is 0 at the top. */
bool storeapi__has_nul_label(const uint8_t *p, const uint8_t *end, int depth, unsigned top);

/* ---- the methods, as server.c counts them and local.c dispatches them */
enum {
  STOREAPI__M_SERIES = 0,
  STOREAPI__M_LABEL_NAMES,
  STOREAPI__M_LABEL_VALUES,
  STOREAPI__M_INFO
};

/* ---- client-side call handles (client.c for gRPC, local.c in-process):
 * exactly one of |cc| and |lc| is set. */
typedef struct storeapi__lcall storeapi__lcall;

/* msgalloc.c: a call's blocks (|a| allocates from them). */
typedef struct storeapi__msg_pool {
  ProtobufCAllocator a;
  struct msg_blk *cur;
} storeapi__msg_pool;
void storeapi__msg_pool_init(storeapi__msg_pool *pl);
/* Drops the current block (its pieces alive keep it). */
void storeapi__msg_pool_release(storeapi__msg_pool *pl);

struct storeapi_series_call {
  net_grpc_ccall *cc;
  storeapi__lcall *lc;
  storeapi_series_fn on_series;
  storeapi_done_fn on_done;
  void *arg;
  int bad;         /* an undecodable message arrived: the call was cancelled */
  const char *why; /* what was wrong with it */
  orr_series *rx;  /* the client's received bytes, or NULL */
  storeapi__msg_pool pool; /* the messages' blocks (gRPC calls) */
};

struct storeapi_unary {
  net_grpc_ccall *cc;
  storeapi__lcall *lc;
  int kind; /* 0 info, 1 names, 2 values */
  void *cb;
  void *arg;
  ProtobufCMessage *resp;
  int bad;
  orr_series *rx; /* the client's received bytes, or NULL */
};

/* ---- server.c for local.c: a backend's calls without gRPC */
/* A server with no gRPC and no metrics around |backend| (copied); caller
 * frees with storeapi_server_free(). NULL on OOM. */
storeapi_server *storeapi__server_local(const storeapi_backend *backend);
/* A call of |method| in |a| (borrowed until the local call is freed),
 * answering through |lc|. NULL on OOM. */
storeapi_call *storeapi__call_local(storeapi_server *s, storeapi__lcall *lc, orr_arena *a,
                                    int method);
/* Decodes and validates the packed request as for gRPC and hands it to the
 * backend (or finishes the call with the error). */
void storeapi__call_dispatch(storeapi_call *c, const uint8_t *req, size_t len);
/* Sends fail with ORR_ECANCELED from now on (the backend is told later). */
void storeapi__call_mark_cancelled(storeapi_call *c);
/* Tells the backend: cancel() / resume(). */
void storeapi__call_cancel(storeapi_call *c);
void storeapi__call_resume(storeapi_call *c);

/* ---- local.c for server.c: where a local call's answers go */
/* A Series response to the client's on_series. Returns 0, ORR_EAGAIN (the
 * client paused; the message was delivered) or ORR_ECANCELED. */
int storeapi__local_send(storeapi__lcall *lc, const Thanos__SeriesResponse *r);
/* A unary answer (borrowed until the release that follows). */
void storeapi__local_reply(storeapi__lcall *lc, const ProtobufCMessage *m);
/* The backend is done with the call: on_done gets |status|/|msg| (unless
 * the client went first). */
void storeapi__local_release(storeapi__lcall *lc, int status, const char *msg);
const char *storeapi__local_metadata(storeapi__lcall *lc, const char *name);

/* ---- local.c for client.c */
typedef struct storeapi__local storeapi__local;
int storeapi__local_new(uv_loop_t *loop, const storeapi_backend *b, storeapi__local **out);
void storeapi__local_close(storeapi__local *l, void (*on_closed)(void *arg), void *arg);
void storeapi__local_set_metadata(storeapi__local *l, const char *const *md);
/* Starts a call of |method| with the request |req|; the callbacks as in
 * storeapi_client_* (|series| for Series, |unary| for the others, filled
 * by the caller except cc/lc). |*sout|/|*uout| get the handles. Returns 0
 * or ORR_ENOMEM (no callback then). */
int storeapi__local_call(storeapi__local *l, int method, const ProtobufCMessage *req,
                         int64_t timeout_ms, const storeapi_series_call *series,
                         const storeapi_unary *unary, storeapi_series_call **sout,
                         storeapi_unary **uout);
void storeapi__local_resume(storeapi__lcall *lc);
void storeapi__local_cancel(storeapi__lcall *lc);

#endif
