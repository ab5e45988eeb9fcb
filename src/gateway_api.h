/* gateway_api.h: the gateway's HTTP face — the Prometheus HTTP API (query,
 * query_range, series, labels, status, Thanos's stores), PromQL over the
 * fan-out (gateway_promql.c) and /federate (gateway_federate.c). Prefix:
 * gw_api_ (public), gw_api__ (shared by the three files). */
#ifndef ORR_GATEWAY_API_H
#define ORR_GATEWAY_API_H

#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "gateway.h"
#include "net.h"
#include "promql.h"

typedef struct gw_api_config {
  gw *core;                /* the fan-out (borrowed for the API's life) */
  uv_loop_t *loop;         /* the daemon's loop (borrowed) */
  int64_t timeout_ms;      /* --query.timeout (0: 2m) */
  int64_t max_samples;     /* --query.max-samples (0: 50M) */
  int64_t lookback_ms;     /* --query.lookback-delta (0: 5m) */
  int64_t max_concurrent;  /* --query.max-concurrent: queries evaluated at once (0: 20) */
  bool partial_response;   /* --query.partial-response */
  const orr_flag *flags;   /* the command's flags, for /api/v1/status/flags (borrowed) */
} gw_api_config;

typedef struct gw_api gw_api;

/* Adds every API route, /federate included, to |r|. |cfg| is copied. On
 * success *out is freed with gw_api_free() after the HTTP server drained.
 * Returns 0, ORR_ENOMEM or the router's error. */
int gw_api_register(net_http_router *r, const gw_api_config *cfg, gw_api **out);
void gw_api_free(gw_api *api);

/* ---------------------------------------------------------------- shared */
struct gw_api {
  gw_api_config cfg;
  int64_t running;  /* queries being evaluated */
  struct gw_api__waiter *wait_head, *wait_tail; /* queries over max_concurrent, FIFO */
};

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
/* Parses every match[] of |req| into metric selectors (ASTs appended to
 * |asts|, freed by the caller with promql_ast_free); on a bad one responds
 * with Prometheus's error (prefixed 'invalid parameter "match[]": ' when
 * |prefix|) and returns ORR_EINVAL (|req| finished). */
int gw_api__parse_matchers(net_http_req *req, orr_arena *a, promql_ast ***asts, size_t *n,
                           bool prefix);

/* Handlers (arg: the gw_api). */
void gw_api__handle_query(net_http_req *req, void *arg);       /* gateway_promql.c */
void gw_api__handle_query_range(net_http_req *req, void *arg); /* gateway_promql.c */
void gw_api__handle_federate(net_http_req *req, void *arg);    /* gateway_federate.c */

/* /federate's body for the given samples, as Prometheus 2.42 writes it in
 * text format 0.0.4 (sorts |s| in place by metric name then labels; skips
 * nameless series). Appends to |out|; returns 0 or ORR_ENOMEM. */
typedef struct gw_federate_sample {
  labels_set labels;
  int64_t t;
  double v;
} gw_federate_sample;
int gw_federate_write(gw_federate_sample *s, size_t n, orr_buf *out);

#endif /* ORR_GATEWAY_API_H */
