/* gateway_int.h: what the gateway's files share — the endpoint table, the
 * HA dedup of decoded replicas, file SD parsing, endpoint pruning and the
 * HTTP API's helpers. Not for use outside gateway/ (and its unit tests). */
#ifndef ORR_GATEWAY_INT_H
#define ORR_GATEWAY_INT_H

#include <pthread.h>

#include "gateway.h"
#include "storeapi.h"

/* ---------------------------------------------------------------- dedup */
/* One replica's samples, ascending by t. */
typedef struct gw__replica {
  const promql_point *pts;
  size_t n;
} gw__replica;

/* Whether |func| (a selector's hint) makes dedup counter-aware (Thanos:
 * increase, rate, irate, resets). */
bool gw__is_counter_func(const char *func);
/* Merges |nrep| replicas into |out| (room for the sum of their counts) with
 * Thanos's penalty algorithm, keeping samples with mint <= t <= maxt; with
 * |counter|, values are raised after a replica switch so that no false reset
 * appears (stale markers are kept bit for bit). |scratch| holds the iterator
 * tree (2 * nrep nodes). Returns the number of samples written, or
 * ORR_ENOMEM when |scratch| cannot. */
long gw__dedup(const gw__replica *reps, size_t nrep, bool counter, int64_t mint, int64_t maxt,
               orr_arena *scratch, promql_point *out);

/* ---------------------------------------------------------------- file SD */
/* Parses a Prometheus file_sd document (JSON, or YAML when it does not start
 * with '[') and appends each target "host:port" (copied into |a|) to
 * |*out|/|*n| (grown with realloc; caller frees the array). Returns 0,
 * ORR_EINVAL (malformed: |err| says why) or ORR_ENOMEM. */
int gw__sd_parse(const char *data, size_t len, orr_arena *a, const char ***out, size_t *n,
                 char *err, size_t errlen);

/* Parses a DNS answer (RFC 1035 message, names possibly compressed) and
 * returns every SRV record as "target:port" (malloc'd strings in a malloc'd
 * array; caller frees both). Returns 0, ORR_ECORRUPT or ORR_ENOMEM. */
int gw__srv_parse(const uint8_t *msg, size_t n, char ***out, size_t *nout);

/* ---------------------------------------------------------------- pruning */
/* Thanos's LabelSetsMatch: true when |nsets| is 0 or some set has, for every
 * matcher whose name it holds, a value the matcher accepts. */
bool gw__labelsets_match(labels_matcher *const *ms, size_t nms, const labels_set *sets,
                         size_t nsets);

/* ---------------------------------------------------------------- sources */
/* A source the gateway runs in-process instead of calling a StoreAPI server
 * (a plain Prometheus, a /federate endpoint, a query API): a storeapi_backend
 * behind storeapi_client_new_local(), so the endpoint table, pruning, dedup,
 * partial response and /api/v1/stores treat it as any endpoint.
 *
 * Its address in the table (flags, file SD targets) is "<kind>+<spec>",
 * e.g. "prometheus+http://h:9090;region=eu"; cmd.c turns --endpoint.<kind>=
 * <spec> into that. The endpoint shows as its URL (gw__source_name) under
 * the component <kind> until its Info answers (the backend's Info should
 * give <kind> as its component type). */
typedef struct gw__source gw__source;
struct gw__source {
  storeapi_backend be; /* be.arg is the source's own */
  gw *g;
  /* Stops the source and frees it, then calls |done(arg)|; called once,
   * after the local client closed (no call is in flight). */
  void (*close)(gw__source *s, void (*done)(void *arg), void *arg);
  /* May be NULL. After a successful Info: an error to show as the
   * endpoint's lastError while it stays up and serving (a federate source
   * whose last scrape failed still serves its head), or NULL. Borrowed
   * until the next call into the source. */
  const char *(*last_error)(gw__source *s);
};

typedef struct gw__source_kind {
  const char *kind; /* "prometheus": the address prefix "prometheus+", the component */
  /* Checks |spec| (the address without "<kind>+") without I/O: 0, or
   * ORR_EINVAL with the reason in |err|. */
  int (*check)(const char *spec, char *err, size_t errlen);
  /* Creates and starts the source (loop thread). 0, ORR_EINVAL (|err|) or
   * ORR_ENOMEM; on success |*out|->be and ->close are set. */
  int (*open)(gw *g, const char *spec, gw__source **out, char *err, size_t errlen);
} gw__source_kind;

/* The kind of an address "<kind>+<spec>" with |*spec| pointing after the
 * '+', or NULL (a StoreAPI host:port, dns+, dnssrv+). sources.c. */
const gw__source_kind *gw__source_kind_of(const char *address, const char **spec);
/* The URL a source shows as: |spec| up to its first ';' (copied with
 * malloc; caller frees). NULL on OOM. */
char *gw__source_name(const char *spec);
/* The HTTP client the sources share (created on first use, closed with the
 * gateway; borrowed). NULL on OOM. Loop thread. */
net_http_client *gw__http(gw *g);
/* The gateway's configuration and loop (borrowed for |g|'s life). */
const gw_config *gw__config(const gw *g);
uv_loop_t *gw__loop(const gw *g);
/* The common spec form URL[;name=value,...] (prometheus.c): the URL (into
 * |a|; |url| may be NULL) and the labels after ';' (sorted, in |a|; |*have|
 * says whether there was a ';'). The URL must be http:// or https:// with a
 * host. Returns 0, ORR_EINVAL (|err|: why) or ORR_ENOMEM. */
int gw__source_spec_labels(const char *spec, orr_arena *a, char **url, labels_set *ls,
                           bool *have, char *err, size_t errlen);


/* --endpoint.promql=URL[;name=value,...] (src_promql.c; the source kind "promql"): a source that
 * offers only the Prometheus HTTP query API. Series are read as raw samples
 * (an instant query of a range selector) and sent as XOR chunks; labels
 * through /api/v1/labels and /api/v1/label/<n>/values. The external labels
 * are those after ';'. Errors name the URL. */
typedef struct gw_promql_src gw_promql_src;
typedef struct gw_promql_src_config {
  const char *flag;        /* "http://host:9090;region=eu" (copied) */
  net_http_client *http;   /* borrowed until gw_promql_src_free */
  int64_t timeout_ms;      /* one HTTP request's limit; 0: 2m */
  orr_registry *registry;  /* per-source bytes and request counts; may be NULL */
  const net_http_client_config *client; /* --endpoint.http-client; borrowed; NULL: none */
} gw_promql_src_config;
/* Splits a flag value into its URL (trailing '/' removed) and sorted
 * external labels, allocated in |a|. Returns 0, ORR_EINVAL (|err| says
 * why) or ORR_ENOMEM. */
int gw_promql_src_parse(const char *flag, orr_arena *a, char **url, labels_set *ext, char *err,
                        size_t errlen);
/* Returns 0, ORR_EINVAL (a bad flag: |err| says why) or ORR_ENOMEM. Caller
 * frees with gw_promql_src_free() once no call of its backend is left. */
int gw_promql_src_new(const gw_promql_src_config *cfg, gw_promql_src **out, char *err,
                      size_t errlen);
void gw_promql_src_free(gw_promql_src *s);
/* Fills |out| with the backend's functions, |s| their argument. */
void gw_promql_src_backend(gw_promql_src *s, storeapi_backend *out);
/* Aggregation pushdown (pushdown.c): POSTs /api/v1/query_range of |query|
 * (start, end, step in ms) to the source; each series of the answer goes to
 * |fn| (labels as the source gave them, borrowed until return), the
 * answer's warnings (naming the URL) to |warn| (may be NULL), then |done|
 * runs once with 0, ORR_ECANCELED, ORR_ETIMEOUT or ORR_EUNAVAILABLE and a
 * message naming the URL. The bytes count in the source's
 * received_bytes_total. Returns 0 (|*out| valid until done) or ORR_ENOMEM
 * (done will not run). Loop thread. */
typedef struct gw_promql_src_op gw_promql_src_op;
int gw_promql_src_query_range(gw_promql_src *s, const char *query, int64_t start, int64_t end,
                              int64_t step, promql_api_series_fn fn,
                              void (*warn)(void *arg, const char *msg),
                              void (*done)(void *arg, int err, const char *msg), void *arg,
                              gw_promql_src_op **out);
/* The selector {..} the source is asked for |ms|: matchers on its external
 * labels decided here (ORR_ENOTFOUND: one does not match), the rest written
 * out, __name__=~".+" added when all of them match "". Appended to |out|;
 * scratch in |a|. Returns 0, ORR_ENOTFOUND or ORR_ENOMEM. */
int gw_promql_src_selector_text(const gw_promql_src *s, labels_matcher *const *ms, size_t n,
                                orr_arena *a, orr_buf *out);
/* Cancels it (done follows with ORR_ECANCELED). */
void gw_promql_src_op_cancel(gw_promql_src_op *op);
const char *gw_promql_src_url(const gw_promql_src *s); /* borrowed; its password masked */
const labels_set *gw_promql_src_labels(const gw_promql_src *s); /* borrowed */

/* ---------------------------------------------------------------- endpoints */
/* An endpoint; the state below the mutex line is guarded by gw->mu (the loop
 * thread writes it, gw_endpoints() reads it from any thread). */
typedef struct gw__endpoint {
  char *address; /* "host:port", or "<kind>+<spec>" for a source */
  char *name;    /* as /api/v1/stores shows it: the address, or a source's URL */
  char *host;    /* NULL for a source */
  int port;
  const gw__source_kind *kind; /* NULL: a StoreAPI server */
  gw__source *src;
  storeapi_client *client;
  int refs;          /* fan-outs using |client| (loop thread) */
  bool wanted;       /* still discovered (reconcile) */
  struct storeapi_unary *info_call; /* the Info call in flight, NULL when none */
  bool supports_wrl; /* Info: supports_without_replica_labels */
  bool query_api;    /* Info: serves thanos.Query (a pushdown target, pushdown.c) */
  int64_t next_info_ms; /* 0: never asked */
  unsigned seq;         /* order of addition: spreads the Info calls */
  struct gw *g;
  /* The children of the per-endpoint metrics for a Series call ending OK
   * (requests, duration, series received), found once: looking three up
   * by their label values for every endpoint of every query showed in the
   * profile of a wide fan-out. NULL until the first such call. */
  orr_series *m_series_ok[3];
  /* guarded by g->mu */
  orr_arena *state; /* component, label sets, last error */
  const char *component;
  labels_set *label_sets;
  size_t nlabel_sets;
  char *label_sets_text; /* "{a=\"b\"},{c=\"d\"}" for messages */
  int64_t min_time, max_time;
  int64_t last_check_ms;
  const char *last_error;
  bool up;
} gw__endpoint;

/* Per-endpoint metrics (loop thread; no-ops without a registry):
 * orrery_gateway_endpoint_requests_total{endpoint,kind,method,code},
 * orrery_gateway_endpoint_request_duration_seconds{endpoint,kind,method}
 * and orrery_gateway_endpoint_series_received_total{endpoint,kind}, where
 * |endpoint| is the display name and |kind| "storeapi" or the source kind.
 * |method| is static ("Series", "LabelNames", "LabelValues", and
 * "Query"/"QueryRange" of a pushdown to an endpoint serving thanos.Query). */
void gw__endpoint_observe(gw *g, gw__endpoint *e, const char *method, int status,
                          int64_t took_ms, int64_t series);
/* A counter child of a source's own metric family, created on first use:
 * orrery_gateway_source_read_bytes_total{endpoint,kind} (remote-read and
 * scrape bodies). NULL without a registry. */
orr_series *gw__source_bytes_counter(gw *g, const char *kind, const char *name);

/* The query-API source behind |e| (borrowed while |e| is referenced), or
 * NULL when |e| is not an --endpoint.promql one. src_promql.c. */
gw_promql_src *gw__promql_src_of(const gw__endpoint *e);

/* ---------------------------------------------------------------- pushdown */
/* Aggregation pushdown to query-API sources and, in distributed mode, to
 * endpoints serving thanos.Query (pushdown.c; design notes there): one
 * PromQL request's plan and its calls. Loop thread. */
typedef struct gw__push gw__push;
typedef struct gw__push_cb {
  /* One series of a pushed node's partial result (borrowed until return);
   * non-zero stops that source's answer. */
  int (*partial)(void *arg, const promql_expr *node, const labels_set *ls,
                 const promql_point *pts, size_t n);
  /* A warning of a source's answer (borrowed). */
  void (*warning)(void *arg, const char *msg);
  /* One source's query ended: 0, or an error (|msg| names the source). */
  void (*done)(void *arg, const char *url, int err, const char *msg);
} gw__push_cb;
/* What of a request a pushed query carries on (its gRPC form asks S to do
 * the same). */
typedef struct gw__push_opts {
  bool dedup;              /* the request deduplicates */
  const char *const *rl;   /* along these replica labels; NULL: --query.replica-label */
  size_t nrl;
  bool partial;            /* partial response (the request's, else the default) */
  int64_t max_res_ms;      /* max_source_resolution; 0: raw */
  int64_t timeout_ms;      /* one pushed query's limit; 0: --query.timeout */
} gw__push_opts;
/* Plans the pushdowns of |q| (prepared with |qp|; |o| copied, its replica
 * labels borrowed for |*out|'s life).
 * Sets |*out| to NULL when nothing is pushed; otherwise the caller fetches
 * each selector without gw__push_exclude's endpoints, runs gw__push_start
 * and frees with gw__push_free once gw__push_running is 0. |cb| and |arg|
 * are borrowed for |*out|'s life; scratch and texts in |a|. Returns 0 or
 * ORR_ENOMEM. */
int gw__push_plan(gw *g, promql_query *q, const promql_query_params *qp, const gw__push_opts *o,
                  const gw__push_cb *cb, void *arg, orr_arena *a, gw__push **out);
/* Zeroes |r| and fills what the engine's selector decides: matchers, time
 * range, step and the hints (function, grouping); the caller adds the
 * request's options (dedup, partial response, resolution, limits). */
void gw__select_req_init(gw_select_req *r, const promql_selector *sel);
/* The endpoint addresses selector |sel| must not be fetched from (borrowed). */
void gw__push_exclude(const gw__push *p, size_t sel, const char *const **ex, size_t *n);
/* Sends every planned query; each ends in cb->done (maybe at once). 0. */
int gw__push_start(gw__push *p);
/* Queries not yet done (0 for NULL). */
size_t gw__push_running(const gw__push *p);
/* Cancels what runs (cb->done follows for each). NULL is a no-op. */
void gw__push_cancel(gw__push *p);
/* Releases the endpoints and frees; NULL is a no-op. */
void gw__push_free(gw__push *p);

/* Request metadata naming the calling gateway: a gateway that receives its
 * own id is among its own endpoints (a query loop) and refuses the call. */
#define GW_ID_HEADER "x-orrery-gateway-id"

struct gw {
  gw_config cfg; /* strings copied into |cfg_arena| */
  char id[33];   /* random, per process start (GW_ID_HEADER) */
  const char *md[3]; /* GW_ID_HEADER, id, NULL: sent on every call */
  int64_t trim_due_ms; /* gw__trim_soon: malloc_trim at the next quiet tick after this */
  int busy;            /* HTTP API requests admitted and not finished (gw__busy) */
  void (*first_round_cb)(void *arg); /* gw_on_first_round, until it ran */
  void *first_round_arg;
  bool first_round_done;
  int64_t first_round_deadline_ms;
  orr_arena *cfg_arena;
  uv_loop_t *loop;
  pthread_mutex_t mu;
  gw__endpoint **eps;
  size_t neps, capeps;
  unsigned ep_seq; /* the next endpoint's seq */
  uv_timer_t tick;
  bool closing;
  /* discovery */
  int64_t *sd_mtime_ns;
  int64_t sd_next_ms;
  const char **dns_targets; /* resolved "ip:port" for dns+ endpoints (malloc'd) */
  size_t ndns_targets;
  const char **sd_targets;
  size_t nsd_targets;
  orr_arena *sd_arena, *dns_arena;
  const char **dns_acc; /* the DNS round in flight */
  size_t ndns_acc;
  orr_arena *dns_acc_a;
  int64_t dns_next_ms;
  int dns_pending;
  int pending_closes;
  void (*on_closed)(void *arg);
  void *on_closed_arg;
  struct gw_storeapi *sapi;
  struct gw_queryapi *qapi; /* thanos.Query served (queryapi.c): Info advertises it */
  net_http_client *http; /* the sources' (gw__http) */
  bool http_closing;
  int nsources;          /* sources open or closing: |g| outlives them */
  int nlive;             /* endpoints not yet freed, clients closing included */
  orr_metric *m_ep_requests, *m_ep_duration, *m_ep_series, *m_src_bytes, *m_ep_rx;
  struct gw_op *ops; /* fan-outs in flight (proxy.c) */
  struct gw__lop *lops; /* labels fan-outs in flight (proxy.c) */
  uv_timer_t optimer;
  /* sync bridge */
  uv_async_t async;
  pthread_mutex_t qmu;
  struct gw__sync *queue;
  /* metrics (NULL without cfg.registry): endpoints answering Info (Thanos's
   * thanos_store_nodes_grpc_connections, without its labels), endpoints
   * known, endpoint failures turned into partial-response warnings */
  orr_series *m_up, *m_known, *m_partial;
};

/* Counts one endpoint failure turned into a warning (partial response). */
void gw__count_partial(gw *g);

struct gw_storeapi {
  gw *g; /* NULL after gw_close() */
  storeapi_server *srv;
};

struct gw_queryapi {
  gw *g; /* NULL after gw_close(): calls answer UNAVAILABLE */
  gw_queryapi_config cfg;
};

/* Fan-out targets: up endpoints that may hold data for the range and
 * matchers, each with a reference taken (release with gw__targets_release).
 * Loop thread. Returns 0 or ORR_ENOMEM. */
int gw__targets(gw *g, int64_t mint, int64_t maxt, labels_matcher *const *ms, size_t nms,
                gw__endpoint ***out, size_t *n);
void gw__targets_release(gw *g, gw__endpoint **eps, size_t n);
/* gw__targets without the endpoints whose address is in |exclude|. */
int gw__targets_ex(gw *g, int64_t mint, int64_t maxt, labels_matcher *const *ms, size_t nms,
                   const char *const *exclude, size_t nexclude, gw__endpoint ***out, size_t *n);
/* Copies an endpoint's label-set text into |a| (thread-safe). */
const char *gw__endpoint_lsets_text(gw *g, gw__endpoint *e, orr_arena *a);
/* The endpoint's replica group in |a|: its label sets without the labels
 * |rl|, as text (equal text: the same group); NULL when it has no label
 * sets (or out of memory) — then it is in no group. Thread-safe. */
const char *gw__endpoint_group(gw *g, gw__endpoint *e, char *const *rl, size_t nrl,
                               orr_arena *a);
/* Gives freed heap back to the system (malloc_trim) from the tick, once the
 * gateway is quiet: at least GW_TRIM_QUIET_MS after the last big request or
 * fan-out, with no fan-out and no API request in flight. glibc keeps freed
 * memory in its arenas otherwise; trimming while queries keep coming would
 * make each of them fault its pages in again (endpoints.c). Loop thread. */
void gw__trim_soon(gw *g);
/* An HTTP API request was admitted (+1) or finished (-1): no trim while
 * one runs, its evaluation included. Loop thread. */
void gw__busy(gw *g, int delta);
/* Union of the up endpoints' label sets and time range (for Info), in |a|. */
int gw__info_union(gw *g, orr_arena *a, labels_set **sets, size_t *n, int64_t *mint,
                   int64_t *maxt);
/* gw_select / gw_labels with the replica labels given (|nrl| may be 0)
 * instead of --query.replica-label: the gateway's StoreAPI forwards a
 * request's without_replica_labels this way. |rl| NULL: the flags'. */
int gw__select_ex(gw *g, const gw_select_req *req, const gw_select_cb *cb, gw_op **out,
                  const char *const *rl, size_t nrl);
int gw__labels_ex(gw *g, const gw_labels_req *req, gw_labels_fn fn, void *arg,
                  const char *const *rl, size_t nrl);
/* Stops/restarts handing series to the caller of a fan-out (the gateway's
 * StoreAPI when its client is behind); meanwhile the merge fills and the
 * endpoints are paused. */
void gw__op_pause(gw_op *op);
void gw__op_resume(gw_op *op);
/* proxy.c: the op timer and the sync bridge's async handle. */
int gw__ops_init(gw *g);
void gw__ops_close(gw *g, uv_close_cb cb);
int gw__sync_init(gw *g);
void gw__sync_close(gw *g, uv_close_cb cb);

/* ---------------------------------------------------------------- HTTP API */
/* What api.c, promql.c and federate.c share. Prefix gw_api__. */
struct gw_api {
  gw_api_config cfg;
  int64_t running;  /* requests holding a slot (fetching or evaluating) */
  struct gw_api__fanout *wait_head, *wait_tail; /* requests over max_concurrent, FIFO */
};

/* One request's fan-out (fanout.c; design notes there): admission under
 * --query.max-concurrent, its gw_select/gw_labels calls, a few at a time,
 * the first error, cancel-all on error or when the client leaves. Loop
 * thread only. */
typedef struct gw_api__fanout gw_api__fanout;
typedef struct gw_api__fanout_cb {
  /* A series of call |sel| (the index given to gw_api__fanout_select, or
   * of the planned call for match[]); borrowed until return. Non-zero
   * stops the request with that error. May be NULL. */
  int (*series)(gw_api__fanout *f, size_t sel, const labels_set *ls, const promql_point *pts,
                size_t n);
  /* Label names or values of one labels call (borrowed). May be NULL. */
  int (*values)(gw_api__fanout *f, const char *const *v, size_t n);
  /* A partial-response warning (borrowed); NULL: kept once in f->warnings. */
  void (*warning)(gw_api__fanout *f, const char *msg);
  /* Admitted: add the calls now (NULL when they were added before). */
  void (*start)(gw_api__fanout *f);
  /* Every call ended: f->err/f->msg hold the first error (0 when none),
   * f->cancelled/f->gone why it stopped early. Runs once; the owner
   * responds and (now or later) frees |f|. Required. */
  void (*finish)(gw_api__fanout *f);
  /* The client went away (after the calls were cancelled). May be NULL. */
  void (*gone)(gw_api__fanout *f);
} gw_api__fanout_cb;

struct gw_api__fanout {
  gw_api *api;
  net_http_req *req;            /* borrowed until the owner responds */
  orr_arena *a;                 /* the request's arena, freed with |f| */
  const gw_api__fanout_cb *cb;  /* borrowed for |f|'s life */
  void *arg;                    /* the owner's */
  promql_ast **asts;            /* match[] (gw_api__fanout_match_start), freed with |f| */
  size_t nasts;
  struct gw_api__fcall *calls;
  size_t ncalls, capcalls, next, running;
  labels_matcher **owned;       /* union matchers the plan built */
  size_t nowned, capowned;
  const char **warnings;        /* unique, in |a| */
  size_t nwarnings, wcap;
  int err;
  char msg[1024];
  bool gone, cancelled, queued, counted, finished, pumping;
  uint64_t deadline_ns;         /* orr_mono_ns clock: arrival + --query.timeout */
  struct gw_api__fanout *wnext; /* admission queue */
};

/* Creates the fan-out of |req| (its deadline: arrival + the API's timeout;
 * set f->deadline_ns to change it). Returns 0 or ORR_ENOMEM. Caller frees
 * with gw_api__fanout_free() once finish ran (or before starting it). */
int gw_api__fanout_new(gw_api *api, net_http_req *req, const gw_api__fanout_cb *cb, void *arg,
                       gw_api__fanout **out);
/* Adds one call before the start (|r| copied; its matchers and grouping
 * borrowed until finish). Returns 0, ORR_EINVAL (after the start) or ORR_ENOMEM. */
int gw_api__fanout_select(gw_api__fanout *f, const gw_select_req *r, size_t sel);
int gw_api__fanout_labels(gw_api__fanout *f, const gw_labels_req *r);
/* Parses |f->req|'s match[] (gw_api__parse_match with |flags|) into
 * f->asts, adds the calls — |st| (or, when NULL, |lt|) with each planned
 * matcher set, selectors unioned where exact; labels without match[]: one
 * call — and starts (gw_api__fanout_start). Many selectors are parsed and
 * planned on a worker thread (fanout.c note 6). On a bad selector or no
 * memory |bad(f, rc, msg)| runs instead, on the loop, perhaps before this
 * returns: rc ORR_EINVAL (|msg| Prometheus's error) or ORR_ENOMEM; it
 * responds and frees |f|. |st|/|lt| are copied; their strings borrowed. */
typedef void (*gw_api__fanout_bad_fn)(gw_api__fanout *f, int rc, const char *msg);
void gw_api__fanout_match_start(gw_api__fanout *f, unsigned flags, const gw_select_req *st,
                                const gw_labels_req *lt, gw_api__fanout_bad_fn bad);
/* Takes a slot (or queues for one), then runs cb->start and the calls;
 * finish may run before this returns. */
void gw_api__fanout_start(gw_api__fanout *f);
/* Records the first error and cancels the calls in flight. */
void gw_api__fanout_fail(gw_api__fanout *f, int err, const char *msg);
/* Cancels the calls in flight; no more start. */
void gw_api__fanout_cancel(gw_api__fanout *f);
/* Adds a warning once (copied). 0 or ORR_ENOMEM. */
int gw_api__fanout_warn(gw_api__fanout *f, const char *msg);
/* Gives the slot back (the next queued request starts) and frees
 * everything of |f|. NULL is a no-op. */
void gw_api__fanout_free(gw_api__fanout *f);

/* Parses a time parameter as Prometheus's parseTime (unix seconds with a
 * fraction, RFC3339, or its min/max time strings). 0 or ORR_EINVAL. */
int gw_api__parse_time(const char *s, int64_t *ms);
/* Parses a duration parameter as Prometheus's parseDuration (float seconds
 * or a Prometheus duration) into nanoseconds. 0 or ORR_EINVAL (|overflow|
 * set when the float form overflows int64 nanoseconds). */
int gw_api__parse_duration_ns(const char *s, int64_t *ns, bool *overflow);
/* Go's strconv.ParseBool. 0 or ORR_EINVAL. */
int gw_api__parse_bool(const char *s, bool *out);
/* Appends |s| quoted as Go's %q does. */
void gw_api__quote(orr_buf *b, const char *s);
/* Responds {"status":"error",...} with printf-style text. Finishes |req|. */
void gw_api__errorf(net_http_req *req, const char *type, const char *fmt, ...) ORR_PRINTF(3, 4);
/* Parses every match[] of |kv| into metric selectors (|*asts| from |a|,
 * each AST freed by the caller with promql_ast_free, also after an error).
 * Returns 0, ORR_ENOMEM, or ORR_EINVAL with Prometheus's error in |msg|:
 * prefixed 'invalid parameter "match[]": ' with GW_MATCH_PREFIX; with
 * GW_MATCH_NONEMPTY a selector whose every matcher matches the empty
 * string is an error (the series and labels APIs; /federate's
 * ParseMetricSelector does not check). No response is made: safe on any
 * thread. */
#define GW_MATCH_PREFIX 1u
#define GW_MATCH_NONEMPTY 2u
int gw_api__parse_match(const net_http_kv *kv, size_t np, orr_arena *a, promql_ast ***asts,
                        size_t *n, unsigned flags, char *msg, size_t msglen);

/* Thanos's dedup and partial_response parameters (defaults: true, the
 * flag). On a bad value responds and returns ORR_EINVAL. */
int gw_api__thanos_params(gw_api *api, net_http_req *req, bool *dedup, int *partial);
/* Thanos's max_source_resolution in ms (0: raw) into *out_ms; |auto_ms| is
 * "auto"'s value (step / 5 for ranges, 0 for instant queries), also used
 * with --query.auto-downsampling when the parameter is absent. Responds
 * with a 400 on a bad value. 0 or ORR_EINVAL. */
int gw_api__max_source_resolution(gw_api *api, net_http_req *req, int64_t auto_ms,
                                  int64_t *out_ms);

/* Handlers (arg: the gw_api). */
void gw_api__handle_query(net_http_req *req, void *arg);       /* promql.c */
void gw_api__handle_query_range(net_http_req *req, void *arg); /* promql.c */
void gw_api__handle_federate(net_http_req *req, void *arg);    /* federate.c */

#endif /* ORR_GATEWAY_INT_H */
