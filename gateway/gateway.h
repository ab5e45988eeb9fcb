/* gateway.h: `orrery gateway` — the global query view. It discovers StoreAPI
 * endpoints (flags, file SD, DNS), keeps their health and advertised label
 * sets and time ranges, prunes them per request, fans out concurrently,
 * merges the series streams and removes HA replicas (penalty dedup). Over
 * that it serves the Prometheus HTTP API (query, query_range, series, labels,
 * status, Thanos's stores), /federate, and its own StoreAPI so gateways
 * stack across regions.
 *
 * Exposes: the core (gw_*: endpoints, select, labels, its StoreAPI) and the
 * HTTP API (gw_api_*) for the command (cmd.c) and the unit tests.
 * Besides StoreAPI servers it runs sources itself, each behind an in-process
 * StoreAPI client: plain Prometheus servers (remote read) and /federate
 * endpoints (scraped into an in-memory head).
 *
 * Files: endpoints.c (discovery, health, pruning), sources.c (the
 * in-process source kinds: prometheus.c, fedsource.c), proxy.c (fan-out, merge),
 * fanout.c (one HTTP request's fan-out: admission, calls, errors, cancel),
 * dedup.c (penalty dedup), storeapi.c (the gateway's StoreAPI), api.c
 * (HTTP API), promql.c (PromQL over the fan-out), federate.c, cmd.c (flags),
 * src_promql.c (--endpoint.promql: a source offering only the query API),
 * pushdown.c (aggregations pushed down to query-API sources and, in
 * distributed mode, to endpoints serving thanos.Query), queryapi.c (the
 * gateway's own thanos.Query service). */
#ifndef ORR_GATEWAY_H
#define ORR_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"
#include "labels.h"
#include "net.h"
#include "promql.h"

/* ================================================================ the core */
typedef struct gw gw;

typedef struct gw_config {
  uv_loop_t *loop;                  /* everything runs on it (borrowed) */
  const char *const *endpoints;     /* "host:port", "dns+host:port", "dnssrv+_svc._tcp.name",
                                     * or an in-process source "<kind>+<spec>":
                                     * "prometheus+http://h:9090;region=eu",
                                     * "federate+http://h:9090/federate?match[]=up" */
  size_t nendpoints;
  const char *const *sd_files;      /* file_sd JSON/YAML paths */
  size_t nsd_files;
  int64_t sd_interval_ms;           /* re-read SD files at least this often (0: 5m) */
  int64_t dns_interval_ms;          /* re-resolve dns+/dnssrv+ (0: 30s) */
  const char *const *replica_labels; /* --query.replica-label */
  size_t nreplica_labels;
  bool partial_response;            /* default when a request does not say */
  int64_t store_response_timeout_ms; /* an endpoint silent this long is dropped (label
                                      * calls: bounds the whole call); 0: off */
  int64_t query_timeout_ms;         /* overall deadline of one fan-out; 0: 2m */
  int64_t max_series;               /* --query.max-series: gw_select_req.max_series when a
                                     * request gives none; 0: unlimited */
  int64_t replica_timeout_ms;       /* hedging in a replica group (--store.replica-timeout,
                                     * see gw_select); 0: off */
  int64_t info_interval_ms;         /* Info poll period (0: 5s) */
  int64_t info_timeout_ms;          /* Info call timeout (0: 5s) */
  orr_registry *registry;           /* metrics; NULL: none */
  /* In-process sources (gateway_int.h, gw__source). */
  int64_t source_refresh_ms;        /* a plain Prometheus's external labels and time range
                                     * are asked again this often (0: 30s) */
  int64_t federate_interval_ms;     /* --federate.interval (0: 15s) */
  int64_t federate_retention_ms;    /* --federate.retention (0: 2h) */
  int64_t federate_max_series;      /* --federate.max-series per source (0: unlimited) */
  /* TLS toward endpoints (--grpc-client-tls-*): the default context, NULL
   * for plaintext; and per-address choices (--endpoint.sd-config), whose
   * |tls| NULL means plaintext for that address. Contexts are borrowed
   * until gw_close (each endpoint's client takes its own reference). */
  net_tls_ctx *client_tls;
  const struct gw_endpoint_tls *endpoint_tls;
  size_t nendpoint_tls;
  int64_t promql_timeout_ms;        /* --endpoint.promql-timeout: one request to a query-API
                                     * source (0: 2m) */
  /* --endpoint.http-client(-file): authorization and TLS for every HTTP
   * request of every in-process source; borrowed until gw_close's callback
   * and the sources' close; NULL: none. */
  const net_http_client_config *http_client;
  /* --query.mode=distributed (Thanos's flag): endpoints whose Info
   * advertises the Query API (gateways, Thanos queriers) are asked to
   * evaluate the aggregations they can answer alone (pushdown.c) instead
   * of sending raw series. false: "local", raw series from all. */
  bool query_mode_distributed;
} gw_config;

typedef struct gw_endpoint_tls {
  const char *address; /* "host:port" as in the endpoint list */
  net_tls_ctx *tls;    /* NULL: plaintext */
} gw_endpoint_tls;

/* One entry of the endpoint config file (--endpoint.sd-config-file,
 * endpoint_config.c): an address and, when |has_tls|, its TLS settings
 * (strings in the parse's arena). */
typedef struct gw_endpoint_cfg {
  const char *address;
  bool has_tls;
  net_tls_client_opts tls;
} gw_endpoint_cfg;

/* Parses an endpoint config file's bytes. Returns 0 with *out (in |a|) and
 * *n entries; ORR_EINVAL with one line "endpoint config: ..." in |err|; or
 * ORR_ENOMEM. */
int gw_endpoint_config_parse(const char *yaml, size_t len, orr_arena *a, gw_endpoint_cfg **out,
                             size_t *n, char *err, size_t errlen);

/* Creates the core; |cfg| is copied (strings too). Returns 0, ORR_EINVAL
 * (a malformed endpoint address: |err| says which) or ORR_ENOMEM. Caller
 * ends with gw_close(). */
int gw_new(const gw_config *cfg, gw **out, char *err, size_t errlen);
/* Starts discovery and the Info polls (loop thread). Returns 0 or ORR_ENOMEM. */
int gw_start(gw *g);
/* Calls |cb(arg)| once, on the loop, when the first Info round is over:
 * every endpoint discovered by then (flags, SD files; DNS names as far as
 * resolved) answered its first Info call or failed it, or the Info timeout
 * and a tick passed since gw_start. The daemon becomes ready then, so a
 * query sent right after /-/ready fans out to every endpoint that answers
 * Info (before, the first queries could leave a store out). */
void gw_on_first_round(gw *g, void (*cb)(void *arg), void *arg);
/* Reload (SIGHUP, loop thread after gw_start): re-reads every file SD file
 * now and reconciles the endpoints. Returns 0, or an ORR_E* code with the
 * first unreadable or unparsable file in |err|; the files that could be read
 * are used all the same. */
int gw_reload(gw *g, char *err, size_t errlen);
/* Cancels everything in flight, closes every client and handle, frees |g|,
 * then calls |on_closed(arg)| (may be NULL). Loop thread. */
void gw_close(gw *g, void (*on_closed)(void *arg), void *arg);
/* The replica labels (borrowed for |g|'s life). */
const char *const *gw_replica_labels(const gw *g, size_t *n);

/* ---------------------------------------------------------------- endpoints */
/* One endpoint as /api/v1/stores shows it. */
typedef struct gw_endpoint_info {
  const char *address;       /* "127.0.0.1:10901" */
  const char *component;     /* "sidecar", "store", "query", "rule", "receive", or "" (unknown yet) */
  labels_set *label_sets;    /* external label sets */
  size_t nlabel_sets;
  int64_t min_time, max_time; /* ms */
  int64_t last_check_ms;     /* wall clock of the last Info attempt; 0: never */
  const char *last_error;    /* NULL when the last Info succeeded */
  bool up;                   /* answering Info, used by queries */
} gw_endpoint_info;

/* A snapshot of every known endpoint, sorted by address, copied into |a|.
 * Thread-safe. Returns 0 or ORR_ENOMEM. */
int gw_endpoints(gw *g, orr_arena *a, gw_endpoint_info **out, size_t *n);
/* Appends the body of GET /api/v1/stores in Thanos's shape:
 * {"status":"success","data":{"sidecar":[{"name":..,"lastCheck":..,
 * "lastError":null,"labelSets":[{..}],"minTime":..,"maxTime":..}],...}}.
 * Thread-safe. Returns 0 or ORR_ENOMEM. */
int gw_endpoints_json(gw *g, orr_buf *out);

/* ---------------------------------------------------------------- select */
/* Fetching the series of one selector from every matching endpoint. */
typedef struct gw_select_req {
  labels_matcher *const *matchers; /* borrowed until done */
  size_t nmatchers;
  int64_t mint, maxt;              /* samples with mint <= t <= maxt */
  /* Hints (Prometheus SelectHints), passed on to the endpoints. */
  int64_t step_ms;
  const char *func;                /* "rate", "increase", ...: counter-aware dedup */
  bool by;
  const char *const *grouping;
  size_t ngrouping;
  int64_t max_resolution_ms;       /* max_source_resolution; 0: raw */
  bool skip_chunks;                /* labels only (/api/v1/series): series come with no points */
  bool dedup;                      /* merge HA replicas along the replica labels */
  int partial_response;            /* -1: the gateway's default; 0: off; 1: on */
  int64_t timeout_ms;              /* 0: the gateway's query timeout */
  int64_t max_samples;             /* decoded samples allowed; 0: unlimited */
  int64_t max_series;              /* series received from all endpoints (before
                                    * dedup); past it the endpoint that sent the
                                    * next one fails (--query.max-series); 0: unlimited */
  const char *const *exclude;      /* endpoint addresses not asked (their part of the
                                    * query was pushed down to them); borrowed */
  size_t nexclude;
} gw_select_req;

/* Callbacks of one fan-out (all on the loop thread). |series| gets each
 * output series as soon as the streaming merge has it, in label order
 * (labels sorted, replica labels removed when dedup is on; points ascending,
 * stale markers kept), borrowed until return; returning non-zero stops the
 * fan-out (done follows with that code). |warning| gets each partial-response
 * warning (borrowed until return), e.g. "receive series from Addr:
 * 127.0.0.1:10901 LabelSets: {replica=\"a\"}: rpc error: code =
 * DeadlineExceeded desc = ...". |done| runs exactly once with 0 or ORR_E*
 * and a one-line message naming the endpoint that failed (borrowed).
 * Either of series/warning may be NULL. */
typedef struct gw_select_cb {
  int (*series)(void *arg, const labels_set *ls, const promql_point *pts, size_t npts);
  void (*warning)(void *arg, const char *msg);
  void (*done)(void *arg, int err, const char *msg);
  void *arg;
} gw_select_cb;

typedef struct gw_op gw_op;

/* A hung replica never stalls a fan-out (the replica-group rule). With
 * dedup, endpoints whose external label sets are equal once the replica
 * labels are removed form a replica group (Thanos's notion: they hold the
 * same data). When one member has sent its whole answer, every sibling
 * still streaming gets replica_timeout_ms, or as long again as that member
 * took when that is longer, to finish; then it is cancelled and counts as
 * failed: a warning naming it under partial response ("... rpc error: code
 * = DeadlineExceeded desc = not finished 2s after its replica ... answered
 * (store.replica-timeout)"), else the fan-out fails with that message
 * (ORR_EUNAVAILABLE). A frozen Prometheus behind a sidecar thus costs a
 * query about 2 s with the default flags, not --query.timeout. The labels
 * calls (gw_labels) follow the same rule.
 *
 * Starts a fan-out (loop thread). |req| is copied except the matchers and
 * grouping (borrowed until done). Errors: ORR_ELIMIT when more than
 * max_samples samples would be decoded; ORR_ETIMEOUT past the deadline;
 * ORR_EUNAVAILABLE when an endpoint failed without partial response.
 * Returns 0 (done will run, never from inside this call) or ORR_ENOMEM (it
 * will not). |*out| (may be NULL) is valid until done. */
int gw_select(gw *g, const gw_select_req *req, const gw_select_cb *cb, gw_op **out);
/* Cancels a fan-out before done: done follows with ORR_ECANCELED. */
void gw_op_cancel(gw_op *op);

/* The same from any thread except the loop's (e.g. a PromQL worker): blocks
 * until done. The series/warning callbacks run on the loop thread while the
 * caller waits (so they may use what the caller owns, like a promql_query).
 * Returns done's code; |err| gets its message. */
int gw_select_sync(gw *g, const gw_select_req *req, const gw_select_cb *cb, char *err,
                   size_t errlen);

/* ---------------------------------------------------------------- labels */
typedef struct gw_labels_req {
  const char *name;                /* LabelValues of this label; NULL: LabelNames */
  int64_t start, end;              /* ms */
  labels_matcher *const *matchers; /* borrowed until done */
  size_t nmatchers;
  bool dedup;                      /* replica labels removed from names */
  int partial_response;            /* -1: default; 0; 1 */
  int64_t timeout_ms;              /* 0: the gateway's query timeout */
  int64_t limit;                   /* 0: none */
} gw_labels_req;

/* The union over endpoints, sorted and unique. The replica-group rule of
 * gw_select applies (a sibling still silent after the replica timeout is
 * abandoned: a warning naming it, or the error without partial response). Everything is borrowed until
 * the callback returns. */
typedef void (*gw_labels_fn)(void *arg, int err, const char *msg, const char *const *values,
                             size_t n, const char *const *warnings, size_t nwarnings);
/* Loop thread. Returns 0 (|fn| will run, never from inside this call) or
 * ORR_ENOMEM. */
int gw_labels(gw *g, const gw_labels_req *req, gw_labels_fn fn, void *arg);
/* From a non-loop thread, blocking: values and warnings are copied into |a|.
 * Returns 0 or the error, with the message in |err|. */
int gw_labels_sync(gw *g, const gw_labels_req *req, orr_arena *a, const char ***values,
                   size_t *n, const char ***warnings, size_t *nwarnings, char *err,
                   size_t errlen);

/* ---------------------------------------------------------------- StoreAPI */
/* Registers the gateway's own StoreAPI (Info: component "query", union of the
 * endpoints' label sets, min/max time; Series/LabelNames/LabelValues through
 * the fan-out) on |grpc|. Returns 0, ORR_ENOMEM or ORR_EEXISTS; caller frees
 * |*out| with gw_storeapi_free() after |grpc| closed (it may outlive |g|:
 * calls after gw_close() answer UNAVAILABLE). */
typedef struct gw_storeapi gw_storeapi;
int gw_storeapi_register(gw *g, net_grpc_server *grpc, orr_registry *reg, gw_storeapi **out);
void gw_storeapi_free(gw_storeapi *s);
/* ---------------------------------------------------------------- Query API */
/* Registers Thanos's thanos.Query service (Query, QueryRange: PromQL
 * evaluated here, each result series streamed back; queryapi.c) on |grpc|
 * and advertises it in Info (registered with gw_storeapi_register), so a
 * gateway above in --query.mode=distributed pushes aggregations down to
 * this one. |cfg| is copied (0 fields: the engine's defaults). Returns 0,
 * ORR_ENOMEM or ORR_EEXISTS; caller frees |*out| with gw_queryapi_free()
 * after |grpc| closed. */
typedef struct gw_queryapi_config {
  int64_t timeout_ms;  /* --query.timeout */
  int64_t max_samples; /* --query.max-samples */
  int64_t lookback_ms; /* --query.lookback-delta */
} gw_queryapi_config;
typedef struct gw_queryapi gw_queryapi;
int gw_queryapi_register(gw *g, net_grpc_server *grpc, const gw_queryapi_config *cfg,
                         gw_queryapi **out);
void gw_queryapi_free(gw_queryapi *s);

/* ================================================================ the HTTP API */
/* The Prometheus HTTP API (query, query_range, series, labels, status,
 * Thanos's stores), PromQL over the fan-out and /federate: api.c, promql.c,
 * federate.c. Prefix gw_api_. */
typedef struct gw_api_config {
  gw *core;                /* the fan-out (borrowed for the API's life) */
  uv_loop_t *loop;         /* the daemon's loop (borrowed) */
  int64_t timeout_ms;      /* --query.timeout (0: 2m) */
  int64_t max_samples;     /* --query.max-samples (0: 50M) */
  int64_t lookback_ms;     /* --query.lookback-delta (0: 5m) */
  int64_t max_concurrent;  /* --query.max-concurrent: queries evaluated at once (0: 20) */
  bool partial_response;   /* --query.partial-response */
  const orr_flag *flags;   /* the command's flags, for /api/v1/status/flags (borrowed) */
  bool auto_downsampling;  /* --query.auto-downsampling: no max_source_resolution means
                            * "auto" (step / 5) */
  const char *route_prefix; /* --web.route-prefix, normalised by web_prefix ("" or NULL:
                             * the root); borrowed */
} gw_api_config;

typedef struct gw_api gw_api;

/* Adds every API route, /federate included, to |r|. |cfg| is copied. On
 * success *out is freed with gw_api_free() after the HTTP server drained.
 * Returns 0, ORR_ENOMEM or the router's error. */
int gw_api_register(net_http_router *r, const gw_api_config *cfg, gw_api **out);
void gw_api_free(gw_api *api);



/* /federate's body for the given samples, as Prometheus 2.42 writes it in
 * text format 0.0.4 (sorts |s| in place by metric name then labels; skips
 * nameless series). Appends to |out|; returns 0 or ORR_ENOMEM. */
typedef struct gw_federate_sample {
  labels_set labels;
  int64_t t;
  double v;
} gw_federate_sample;
int gw_federate_write(gw_federate_sample *s, size_t n, orr_buf *out);

#endif /* ORR_GATEWAY_H */
