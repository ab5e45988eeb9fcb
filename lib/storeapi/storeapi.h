/* storeapi: Thanos's StoreAPI (thanos.Store, thanos.info.Info) over our gRPC —
 * the protobuf-c messages, label/matcher conversions, a service layer that
 * plugs a backend into net_grpc_server, a client, Prometheus remote read
 * (STREAMED_XOR_CHUNKS) and the k-way merge of sorted series streams.
 * Prefix: storeapi_. Depends on base, labels, tsdb, net, protobuf-c, snappy. */
#ifndef ORR_STOREAPI_H
#define ORR_STOREAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "info.pb-c.h"
#include "labels.h"
#include "net.h"
#include "query.pb-c.h"
#include "remote.pb-c.h"
#include "rpc.pb-c.h"
#include "types.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STOREAPI_PATH_SERIES "/thanos.Store/Series"
#define STOREAPI_PATH_LABEL_NAMES "/thanos.Store/LabelNames"
#define STOREAPI_PATH_LABEL_VALUES "/thanos.Store/LabelValues"
#define STOREAPI_PATH_INFO "/thanos.info.Info/Info"
#define STOREAPI_PATH_QUERY "/thanos.Query/Query"
#define STOREAPI_PATH_QUERY_RANGE "/thanos.Query/QueryRange"

/* ================================================================ messages */
/* A protobuf-c allocator over |a| (free is a no-op): unpacked messages live
 * as long as the arena. */
ProtobufCAllocator storeapi_arena_allocator(orr_arena *a);

/* Converts proto matchers into compiled matchers (allocated in |a|'s
 * cleanup-free way: the caller frees each with labels_matcher_free, or all
 * at once with storeapi_matchers_free). A bad type, an empty/invalid name or
 * a regex that does not compile gives ORR_EINVAL and a one-line reason in
 * |err| ("bad matcher name=~\"(\": error parsing regexp: ..."). */
int storeapi_matchers_from_proto(Thanos__LabelMatcher *const *pm, size_t n, orr_arena *a,
                                 labels_matcher ***out, char *err, size_t errlen);
void storeapi_matchers_free(labels_matcher **ms, size_t n);
/* Fills proto matchers (strings borrowed from |ms|) in |a|. 0 or ORR_ENOMEM. */
int storeapi_matchers_to_proto(labels_matcher *const *ms, size_t n, orr_arena *a,
                               Thanos__LabelMatcher ***out);

/* Proto labels ↔ label set. from_proto borrows the strings, sorts, and fails
 * with ORR_EINVAL on duplicates; to_proto borrows |s|'s strings. */
int storeapi_labels_from_proto(Thanos__Label *const *pl, size_t n, orr_arena *a, labels_set *out);
int storeapi_labels_to_proto(const labels_set *s, orr_arena *a, Thanos__Label ***out);

/* Series labels extended by external labels as Thanos's ExtendSortedLabels:
 * an external label replaces a series label of the same name; the result is
 * sorted; labels named in |drop| (without_replica_labels) are removed after,
 * whichever side they came from: Prometheus's remote read already adds its
 * external labels to every series it returns.
 * Strings are borrowed. Returns 0, ORR_ENOMEM or ORR_EINVAL (duplicates). */
int storeapi_labels_extend(const labels_set *series, const labels_set *ext,
                           char *const *drop, size_t ndrop, orr_arena *a, labels_set *out);

/* Thanos's matchesExternalLabels: a matcher on one of the external labels
 * |ext| is decided here, against the label's value; the others go to
 * |*rest|/|*nrest| (in |a|) for the source to apply. Returns false when a
 * matcher on an external label does not match (the source has nothing for
 * the request); *rest is then untouched. On OOM *rest is NULL, *nrest 0. */
bool storeapi_split_external(const labels_set *ext, labels_matcher *const *ms, size_t n,
                             orr_arena *a, labels_matcher ***rest, size_t *nrest);

/* A remote-read ChunkedSeries as a StoreAPI Series: labels extended as above,
 * each chunk's bytes passed through undecoded (prompb encoding XOR=1 becomes
 * storepb XOR=0; other encodings shift the same way). Borrows |cs|'s bytes.
 * Returns 0, ORR_ENOMEM, ORR_EINVAL, or ORR_EUNSUPPORTED (UNKNOWN encoding). */
int storeapi_series_from_chunked(const Prometheus__ChunkedSeries *cs, const labels_set *ext,
                                 char *const *drop, size_t ndrop, orr_arena *a,
                                 Thanos__Series *out);

/* ================================================================ server */
/* The service layer: registers Series, LabelNames, LabelValues and Info on a
 * net_grpc_server and hands decoded, validated requests to a backend.
 *
 * A backend answers each call through its storeapi_call, now or later from
 * the loop thread, and ends it with storeapi_call_finish() exactly once (also
 * after on_cancel). Series responses are pushed one at a time with
 * storeapi_call_send_series(); when it returns ORR_EAGAIN the message was
 * kept but the client is behind: stop pulling from the source until the
 * backend's resume() runs. */
typedef struct storeapi_server storeapi_server;
typedef struct storeapi_call storeapi_call;

/* A Series request as the backend sees it: the decoded message (borrowed
 * from the call's arena) and its compiled matchers (freed by the layer when
 * the call is released). */
typedef struct storeapi_series_req {
  const Thanos__SeriesRequest *msg;
  labels_matcher **matchers;
  size_t nmatchers;
} storeapi_series_req;

typedef struct storeapi_label_req {
  const char *label; /* LabelValues only, else NULL */
  int64_t start, end;
  labels_matcher **matchers;
  size_t nmatchers;
  char *const *without_replica_labels;
  size_t nwithout;
  int64_t limit;
} storeapi_label_req;

typedef struct storeapi_backend {
  /* Each may be NULL: the method then answers UNIMPLEMENTED. */
  void (*info)(void *arg, storeapi_call *c);
  void (*series)(void *arg, storeapi_call *c, const storeapi_series_req *req);
  void (*label_names)(void *arg, storeapi_call *c, const storeapi_label_req *req);
  void (*label_values)(void *arg, storeapi_call *c, const storeapi_label_req *req);
  /* The client went away or the server is closing: stop, then finish |c|. */
  void (*cancel)(void *arg, storeapi_call *c);
  /* A Series call's queue drained after ORR_EAGAIN: push again. */
  void (*resume)(void *arg, storeapi_call *c);
  void *arg;
} storeapi_backend;

/* Registers the four methods on |grpc| for |backend| (copied). Counts calls
 * in |reg| (may be NULL): orrery_storeapi_requests_total{method,status},
 * orrery_storeapi_request_duration_seconds{method},
 * orrery_storeapi_series_sent_total. Returns 0, ORR_ENOMEM or ORR_EEXISTS.
 * Caller frees with storeapi_server_free() after the gRPC server closed. */
int storeapi_server_new(net_grpc_server *grpc, const storeapi_backend *backend,
                        orr_registry *reg, storeapi_server **out);
void storeapi_server_free(storeapi_server *s);

/* The per-call arena (freed when the call is released) and user pointer. */
orr_arena *storeapi_call_arena(storeapi_call *c);
void storeapi_call_set_data(storeapi_call *c, void *data);
void *storeapi_call_data(const storeapi_call *c);
bool storeapi_call_cancelled(const storeapi_call *c);
/* The client's IP address ("" unknown), borrowed until the call finishes. */
const char *storeapi_call_peer(const storeapi_call *c);
/* The value of request metadata |name| (lower case), borrowed for the
 * call's life, or NULL. */
const char *storeapi_call_metadata(const storeapi_call *c, const char *name);
/* Sends one Series message. Returns 0 (push more), ORR_EAGAIN (kept; wait for
 * resume), ORR_ECANCELED (call gone: finish it), ORR_ENOMEM. */
int storeapi_call_send_series(storeapi_call *c, const Thanos__Series *s);
/* As storeapi_call_send_series, for a SeriesResponse the backend packed
 * itself (|msg|, |len| bytes, copied). */
int storeapi_call_send_packed(storeapi_call *c, const void *msg, size_t len);
int storeapi_call_send_warning(storeapi_call *c, const char *warning);
/* Unary answers; each finishes the call with OK (|c| released). */
void storeapi_call_reply_info(storeapi_call *c, const Thanos__Info__InfoResponse *r);
void storeapi_call_reply_label_names(storeapi_call *c, const Thanos__LabelNamesResponse *r);
void storeapi_call_reply_label_values(storeapi_call *c, const Thanos__LabelValuesResponse *r);
/* Answers a LabelNames (|names|) or LabelValues call with the |n| strings
 * of |v|, sorted in place, each once, the first |limit| of them when
 * |limit| > 0 (the request's limit). The strings are borrowed until return. */
void storeapi_call_reply_labels(storeapi_call *c, bool names, char **v, size_t n, int64_t limit);
/* Ends the call with a gRPC status (NET_GRPC_*) and message (copied, may be
 * NULL) once the queued Series messages are out. Releases |c|. */
void storeapi_call_finish(storeapi_call *c, int status, const char *message);

/* What a source that adds external labels |ext| answers to a label call
 * without asking its backend: LabelValues of an external label (its value,
 * or nothing when |match| is false), an empty answer when a matcher on an
 * external label did not match (|match| false, from
 * storeapi_split_external), INVALID_ARGUMENT for a bad label name. Returns
 * true when |c| was answered (finished), false when the backend must be
 * asked. */
bool storeapi_labels_answer_external(storeapi_call *c, const storeapi_label_req *req,
                                     const labels_set *ext, bool names, bool match);

/* ================================================================ client */
/* A StoreAPI client over net_grpc_client (for the gateway). Every callback
 * runs on the loop; messages handed to callbacks are borrowed until return. */
typedef struct storeapi_client storeapi_client;

int storeapi_client_new(uv_loop_t *loop, const char *host, int port, storeapi_client **out);
/* An in-process client: its calls go straight to |backend| (copied; its
 * arg borrowed until on_closed) on |loop|, with no gRPC, no socket and no
 * encoding of responses (the request is packed and decoded once, so the
 * backend sees exactly what a gRPC call would give it). Behaves as the
 * gRPC client: every callback runs from the loop, never from inside the
 * call that started or cancelled a call; on_series returning
 * NET_GRPC_PAUSE makes the backend's storeapi_call_send_series() answer
 * ORR_EAGAIN (the message was delivered) and storeapi_client_series_resume()
 * runs backend->resume; cancel (and a timeout: DEADLINE_EXCEEDED) ends the
 * call for the client at once, makes later sends answer ORR_ECANCELED and
 * runs backend->cancel unless the backend finished first; the backend's
 * storeapi_call_finish() status and message reach on_done. The calls'
 * peer is "local"; storeapi_client_set_metadata() metadata reaches
 * storeapi_call_metadata(). storeapi_client_close() cancels what is still
 * in flight and calls |on_closed| once the backend finished every call, so
 * the backend may be freed there. Returns 0 or ORR_ENOMEM. */
int storeapi_client_new_local(uv_loop_t *loop, const storeapi_backend *backend,
                              storeapi_client **out);
/* Whether |c| was made by storeapi_client_new_local(). */
bool storeapi_client_is_local(const storeapi_client *c);
/* As storeapi_client_new, over TLS with |tls| (a client context; the client
 * takes a reference) when it is not NULL. */
int storeapi_client_new_tls(uv_loop_t *loop, const char *host, int port, net_tls_ctx *tls,
                            storeapi_client **out);
void storeapi_client_close(storeapi_client *c, void (*on_closed)(void *arg), void *arg);

/* |status| is a gRPC status; |resp| NULL unless OK. */
typedef void (*storeapi_info_fn)(int status, const char *message,
                                 const Thanos__Info__InfoResponse *resp, void *arg);
typedef void (*storeapi_label_names_fn)(int status, const char *message,
                                        const Thanos__LabelNamesResponse *resp, void *arg);
typedef void (*storeapi_label_values_fn)(int status, const char *message,
                                         const Thanos__LabelValuesResponse *resp, void *arg);
/* Each Series response; return 0 or NET_GRPC_PAUSE (resume with
 * storeapi_client_series_resume). |resp| is freed after the call, but with
 * a client from storeapi_client_new(_tls) (not _local, whose messages are
 * the backend's) the callback may take resp->series over: it sets the field
 * to NULL and frees the series with storeapi_series_free(s) (the message is
 * unpacked with storeapi_msg_allocator's blocks: every part of it, e.g. a
 * label, is freed with that allocator, never with free()). */
typedef int (*storeapi_series_fn)(const Thanos__SeriesResponse *resp, void *arg);
typedef void (*storeapi_done_fn)(int status, const char *message, void *arg);
typedef struct storeapi_series_call storeapi_series_call;

int storeapi_client_info(storeapi_client *c, int64_t timeout_ms, storeapi_info_fn cb, void *arg);
int storeapi_client_label_names(storeapi_client *c, const Thanos__LabelNamesRequest *req,
                                int64_t timeout_ms, storeapi_label_names_fn cb, void *arg);
int storeapi_client_label_values(storeapi_client *c, const Thanos__LabelValuesRequest *req,
                                 int64_t timeout_ms, storeapi_label_values_fn cb, void *arg);
/* The same, with |*out| (may be NULL) a handle of the call, valid until
 * |cb| returns, for storeapi_unary_cancel(): |cb| then follows with
 * CANCELLED (never from inside the cancel). */
typedef struct storeapi_unary storeapi_unary;
int storeapi_client_info_ex(storeapi_client *c, int64_t timeout_ms, storeapi_info_fn cb, void *arg,
                            storeapi_unary **out);
int storeapi_client_label_names_ex(storeapi_client *c, const Thanos__LabelNamesRequest *req,
                                   int64_t timeout_ms, storeapi_label_names_fn cb, void *arg,
                                   storeapi_unary **out);
int storeapi_client_label_values_ex(storeapi_client *c, const Thanos__LabelValuesRequest *req,
                                    int64_t timeout_ms, storeapi_label_values_fn cb, void *arg,
                                    storeapi_unary **out);
void storeapi_unary_cancel(storeapi_unary *u);
/* Starts a Series stream. |*out| (may be NULL) is valid until on_done. */
int storeapi_client_series(storeapi_client *c, const Thanos__SeriesRequest *req,
                           int64_t timeout_ms, storeapi_series_fn on_series,
                           storeapi_done_fn on_done, void *arg, storeapi_series_call **out);
/* A SeriesRequest packed once, for a fan-out that sends the same request
 * to many endpoints (packing it per endpoint cost ~6% of a thousand-endpoint
 * query). storeapi_packed_init() returns 0 or ORR_ENOMEM. */
typedef struct storeapi_packed {
  void *data;
  size_t len;
} storeapi_packed;
int storeapi_packed_init(storeapi_packed *p, const Thanos__SeriesRequest *req);
void storeapi_packed_free(storeapi_packed *p);
/* storeapi_client_series() sending |packed| (|req| packed by
 * storeapi_packed_init(); borrowed for the duration of the call only: the
 * bytes are copied) when it is not NULL; a local client takes |req|. */
int storeapi_client_series_packed(storeapi_client *c, const Thanos__SeriesRequest *req,
                                  const storeapi_packed *packed, int64_t timeout_ms,
                                  storeapi_series_fn on_series, storeapi_done_fn on_done,
                                  void *arg, storeapi_series_call **out);
/* Request metadata sent with every later call: name, value, ..., NULL
 * (borrowed until the client closes; NULL: none). */
void storeapi_client_set_metadata(storeapi_client *c, const char *const *md);
void storeapi_client_series_resume(storeapi_series_call *sc);
void storeapi_client_series_cancel(storeapi_series_call *sc);
/* Counts in |bytes| (borrowed until the client closes; NULL: none) every
 * response message the client receives, with its 5-byte gRPC prefix: what
 * crossed the network from this endpoint. A local client counts nothing. */
void storeapi_client_set_received_counter(storeapi_client *c, orr_series *bytes);

/* The Query API (thanos.Query, Thanos's querypb): the endpoint evaluates
 * PromQL itself. One of |inst| (Query) or |range| (QueryRange) is sent;
 * each series of the answer goes to |on_series| (borrowed until return;
 * non-zero cancels the call: on_done follows with CANCELLED), each warning
 * to |on_warning| (may be NULL), then |on_done| runs once with the gRPC
 * status. Returns 0 (|*out|, may be NULL, valid until on_done), ORR_EINVAL
 * for a local client (sources have no Query API) or ORR_ENOMEM. */
typedef struct storeapi_query_call storeapi_query_call;
typedef int (*storeapi_timeseries_fn)(const PrometheusCopy__TimeSeries *ts, void *arg);
typedef void (*storeapi_warning_fn)(const char *msg, void *arg);
int storeapi_client_query(storeapi_client *c, const Thanos__QueryRequest *inst,
                          const Thanos__QueryRangeRequest *range, int64_t timeout_ms,
                          storeapi_timeseries_fn on_series, storeapi_warning_fn on_warning,
                          storeapi_done_fn on_done, void *arg, storeapi_query_call **out);
void storeapi_client_query_cancel(storeapi_query_call *qc);

/* ================================================================ remote read */
/* The STREAMED_XOR_CHUNKS frame reader (no I/O): uvarint length, CRC32C of
 * the data (big-endian), the data. Fed arbitrary pieces; holds at most one
 * frame. Zero-initialise, then storeapi_frames_init(). */
#define STOREAPI_FRAME_DEFAULT_MAX (50u * 1024 * 1024) /* Prometheus's read limit */
typedef struct storeapi_frames {
  size_t max_frame;
  uint8_t hdr[14]; /* uvarint (<= 10) + CRC (4) */
  size_t hdr_len;
  size_t vlen;     /* length of the uvarint once complete, else 0 */
  int consumed;    /* the last frame was handed out: |data| is reset next call */
  size_t need;     /* data bytes of the current frame, once the header is in */
  int have_hdr;
  uint32_t crc;
  orr_buf data;    /* the current frame's data when split across pieces */
  int err;         /* latched error */
  const char *errmsg;
} storeapi_frames;

void storeapi_frames_init(storeapi_frames *f, size_t max_frame);
void storeapi_frames_free(storeapi_frames *f);
/* Consumes bytes of |p|/|n| up to the end of the first frame completed (or
 * all). |*used| gets the bytes consumed; on a complete frame |*frame|/|*len|
 * point at its data (borrowed until the next call), else *frame is NULL.
 * Returns 0, ORR_ECORRUPT (bad varint, CRC mismatch: f->errmsg says which),
 * ORR_ELIMIT (frame over max_frame), ORR_ENOMEM. Errors latch. */
int storeapi_frames_feed(storeapi_frames *f, const uint8_t *p, size_t n, size_t *used,
                         const uint8_t **frame, size_t *len);
/* At the end of the body: 0 when between frames, else ORR_ECORRUPT
 * ("truncated frame"). */
int storeapi_frames_end(storeapi_frames *f);

/* The snappy-compressed ReadRequest for one query (STREAMED_XOR_CHUNKS
 * accepted), appended to |out|. Returns 0, ORR_ENOMEM or ORR_EINTERNAL. */
int storeapi_remote_read_request(int64_t mint, int64_t maxt, labels_matcher *const *ms, size_t n,
                                 orr_buf *out);

/* A remote-read call to Prometheus over net_http_client, streaming: each
 * ChunkedSeries goes to |on_series| (unpacked into |scratch|, an arena the
 * reader resets between frames; borrowed until return). Returning
 * NET_HTTP_CLIENT_PAUSE from on_series pauses the transfer (the series was
 * consumed); resume with storeapi_rr_resume(). |on_done| runs once with 0 or
 * an ORR_E* code and a message. */
typedef struct storeapi_rr storeapi_rr;
typedef int (*storeapi_rr_series_fn)(const Prometheus__ChunkedSeries *cs, void *arg);
typedef void (*storeapi_rr_done_fn)(int result, const char *message, void *arg);
typedef struct storeapi_rr_opts {
  const char *base_url;  /* "http://127.0.0.1:9090" (copied) */
  int64_t mint, maxt;
  labels_matcher *const *matchers;
  size_t nmatchers;
  int64_t timeout_ms;    /* 0: none */
  size_t max_frame;      /* 0: STOREAPI_FRAME_DEFAULT_MAX */
  storeapi_rr_series_fn on_series;
  storeapi_rr_done_fn on_done;
  void *arg;
  orr_series *bytes_counter; /* remote-read body bytes; may be NULL */
  /* Authorization and TLS for Prometheus (--prometheus.http-client),
   * borrowed until on_done; NULL: none. */
  const net_http_client_config *client_config;
} storeapi_rr_opts;
/* Returns 0 (on_done will run) or an error (it will not). */
int storeapi_rr_start(net_http_client *http, const storeapi_rr_opts *o, storeapi_rr **out);
void storeapi_rr_pause(storeapi_rr *r);
void storeapi_rr_resume(storeapi_rr *r);
/* on_done follows with ORR_ECANCELED. */
void storeapi_rr_cancel(storeapi_rr *r);

/* ---- the allocator of Series messages from a gRPC client (msgalloc.c):
 * pieces cut from shared, counted blocks. Free any part of such a message
 * with it (protobuf_c_message_free_unpacked(m, &storeapi_msg_allocator)). */
extern const ProtobufCAllocator storeapi_msg_allocator;
/* thanos__series__free_unpacked(s, &storeapi_msg_allocator); NULL: nothing. */
void storeapi_series_free(Thanos__Series *s);
/* An owned copy of |s| in the allocator's blocks, or NULL. */
Thanos__Series *storeapi_series_copy(const Thanos__Series *s);
/* A copy of |c| whose pieces each have a block of their own (a chunk kept
 * longer than its message, e.g. joined into another series, then does not
 * keep the message's block alive), or NULL. */
Thanos__AggrChunk *storeapi_aggr_chunk_copy(const Thanos__AggrChunk *c);
/* One piece of |n| bytes in a block of its own (e.g. to grow an array of
 * such a message), or NULL; storeapi_msg_free frees any piece. */
void *storeapi_msg_alloc(size_t n);
void storeapi_msg_free(void *p);

/* ================================================================ merge */
/* A k-way merge of series streams each sorted by labels (labels_cmp):
 * series with equal labels are joined into one, their chunks ordered by
 * (min_time, max_time), identical chunks (same range and bytes) kept once.
 * Inputs are pushed asynchronously; next() yields only when every open input
 * has a series buffered or ended. */
typedef struct storeapi_merge storeapi_merge;
/* A merged series: |series| borrows from the inputs' messages it holds. */
typedef struct storeapi_merged {
  Thanos__Series series;
  labels_set lset;
  Thanos__Series **owned; /* input messages freed with the merged series */
  size_t nowned;
  const ProtobufCAllocator *alloc; /* theirs (storeapi_merge_set_allocator) */
} storeapi_merged;

int storeapi_merge_new(size_t ninputs, storeapi_merge **out);
void storeapi_merge_free(storeapi_merge *m);
/* The allocator the pushed series are freed with (default NULL: malloc's;
 * &storeapi_msg_allocator for series a client unpacked). Set before pushing. */
void storeapi_merge_set_allocator(storeapi_merge *m, const ProtobufCAllocator *a);
/* Takes ownership of |s| (freed with thanos__series__free_unpacked(s, the
 * merge's allocator)). 
 * Input |i| must push in sorted order: an out-of-order series gives
 * ORR_EINVAL (and |s| is freed). Returns 0, ORR_EINVAL or ORR_ENOMEM. */
int storeapi_merge_push(storeapi_merge *m, size_t i, Thanos__Series *s);
/* Input |i| has no more series. */
void storeapi_merge_close(storeapi_merge *m, size_t i);
/* Series buffered at input |i| (to pause a fast input). */
size_t storeapi_merge_buffered(const storeapi_merge *m, size_t i);
/* Yields the next merged series into |*out| (caller frees with
 * storeapi_merged_free). Returns 0, ORR_EAGAIN (an open input has nothing
 * buffered: push more), ORR_EEOF (all inputs closed and drained), ORR_ENOMEM. */
int storeapi_merge_next(storeapi_merge *m, storeapi_merged **out);
void storeapi_merged_free(storeapi_merged *s);

/* ================================================================ dedup
 * Thanos's penalty deduplication of one series' HA replicas (pkg/dedup):
 * stay on a replica until it has a gap longer than twice the last step;
 * with |counter|, a switch to a replica whose value is lower adds the
 * difference to its later values (no false counter reset). */
typedef struct storeapi_point {
  int64_t t;
  double v;
} storeapi_point;

/* One replica's samples, ascending by t (borrowed). */
typedef struct storeapi_replica {
  const storeapi_point *pts;
  size_t n;
} storeapi_replica;

/* Merges |nrep| replicas into |out| (room for the sum of their counts),
 * keeping samples with mint <= t <= maxt. Node state comes from |scratch|.
 * Returns the number of samples written, or ORR_ENOMEM. */
long storeapi_dedup_penalty(const storeapi_replica *reps, size_t nrep, bool counter, int64_t mint,
                            int64_t maxt, orr_arena *scratch, storeapi_point *out);

#ifdef __cplusplus
}
#endif
#endif /* ORR_STOREAPI_H */
