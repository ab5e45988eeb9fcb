/* prom: talking to one Prometheus server over its HTTP API — readers of its
 * answers (external labels, flags, lowest timestamp, streamed
 * /api/v1/series), a GET helper, and prom_source: a StoreAPI backend over
 * that server (remote read with chunks passed through), served over gRPC by
 * the sidecar and in-process by the gateway (--endpoint.prometheus).
 * Prefix: prom_. Depends on base, labels, net, storeapi, jansson, yaml. */
#ifndef ORR_PROM_H
#define ORR_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "labels.h"
#include "net.h"
#include "storeapi.h"

/* ================================================================ answers (answers.c, no I/O) */
/* Parses the body of /api/v1/status/config: global.external_labels of the
 * YAML in data.yaml, sorted, strings in |a|. Returns 0 (possibly empty),
 * ORR_EINVAL with a reason in |err|, or ORR_ENOMEM. */
int prom_parse_config(const char *body, size_t len, orr_arena *a, labels_set *out, char *err,
                         size_t errlen);
/* Parses the body of /api/v1/status/flags: the two block durations (the text
 * Prometheus shows). Returns 0 or ORR_EINVAL. */
int prom_parse_flags(const char *body, size_t len, char *minb, char *maxb, size_t cap);
/* Finds prometheus_tsdb_lowest_timestamp in a /metrics text. Returns 0 with
 * |*ms| set, or ORR_ENOTFOUND. */
int prom_parse_lowest_ts(const char *body, size_t len, int64_t *ms);
/* An incremental reader of /api/v1/series answers ({"status":"success",
 * "data":[{"name":"value",...},...]}) fed arbitrary pieces of the body: each
 * series' labels go to |emit| (unsorted; borrowed until it returns) as soon
 * as its object closes, so the answer is never held whole. |emit| returns 0
 * or a negative code that stops the reader (returned by feed). */
typedef int (*prom_series_emit_fn)(const labels_set *ls, void *arg);
typedef struct prom_series_json {
  prom_series_emit_fn emit;
  void *arg;
  int state;          /* tokenizer state */
  int depth;          /* containers open */
  uint64_t arrays;    /* bit d: the container at depth d+1 is an array */
  int expect_key;     /* in an object, the next string is a key */
  int key_is_data;    /* at depth 1, the last key was "data" */
  int data_depth;     /* depth of the data array, 0 until it opens */
  int have_name;      /* in a series object, a name waits for its value */
  orr_json_unescape esc; /* the string's escapes */
  orr_buf str;        /* the string being read */
  orr_buf lbuf;       /* the current series' strings, NUL-separated */
  size_t *offs;       /* name/value offsets into lbuf */
  size_t noffs, capoffs;
  int done;           /* the top-level value closed */
  int err;
} prom_series_json;

void prom_series_json_init(prom_series_json *p, prom_series_emit_fn emit, void *arg);
void prom_series_json_free(prom_series_json *p);
/* Returns 0, ORR_ECORRUPT (not the shape above), ORR_ELIMIT (a string over
 * 1 MiB, nesting over 60), ORR_ENOMEM or |emit|'s error. Errors latch. */
int prom_series_json_feed(prom_series_json *p, const char *data, size_t n);
/* At the end of the body: 0 when the whole answer was read, else ORR_ECORRUPT. */
int prom_series_json_end(prom_series_json *p);

/* Appends |s| percent-encoded for a URL query. */
int prom_url_escape(orr_buf *b, const char *s);

/* ================================================================ GET (source.c) */
/* One GET of |base_url| + |pathq| (its path and query), the body collected
 * up to |max| bytes; |cb| runs once from the loop with the curl result (0 or
 * ORR_E*), the HTTP status, the body (borrowed until return) and curl's
 * error text. |timeout_ms| 0: none. Returns 0 or ORR_ENOMEM (no callback). */
typedef struct prom_get_req prom_get_req;
typedef void (*prom_get_fn)(void *owner, int result, int status, orr_buf *body, const char *err,
                            void *arg);
int prom_get(net_http_client *http, const char *base_url, const char *pathq, size_t max,
             int64_t timeout_ms, prom_get_fn cb, void *owner, void *arg, prom_get_req **out);
/* As prom_get, with Prometheus's HTTP client settings (authorization,
 * TLS; borrowed for the call, NULL: none). A secret file that cannot be
 * read fails it with ORR_EIO (logged without its content; no callback). */
int prom_get_auth(net_http_client *http, const net_http_client_config *client,
                  const char *base_url, const char *pathq, size_t max, int64_t timeout_ms,
                  prom_get_fn cb, void *owner, void *arg, prom_get_req **out);
/* Applies |client| (may be NULL) to |r|: 0, or an error logged without
 * any secret. */
int prom_apply_client_config(const net_http_client_config *client, net_http_client_req *r);
/* |cb| follows with ORR_ECANCELED. */
void prom_get_cancel(prom_get_req *g);

/* ================================================================ source (source.c) */
/* StoreAPI over one Prometheus: Info (the external labels and min time set
 * below, max time unbounded), Series through remote read, or
 * /api/v1/series for skip_chunks, LabelNames/LabelValues through its API;
 * matchers on external labels are decided here (Thanos's sidecar). The
 * owner learns the external labels and time range (from
 * /api/v1/status/config and /metrics, or from flags) and sets them. */
typedef struct prom_source prom_source;
typedef struct prom_source_opts {
  net_http_client *http;  /* borrowed until prom_source_free */
  const char *url;        /* "http://127.0.0.1:9090" (copied) */
  const char *component;  /* Info's component type (static); NULL: "sidecar" */
  orr_series *rr_bytes;   /* remote-read body bytes; may be NULL */
  /* Authorization and TLS for every request (--prometheus.http-client),
   * borrowed until prom_source_free; NULL: none. */
  const net_http_client_config *client;
} prom_source_opts;

int prom_source_new(const prom_source_opts *o, prom_source **out);
/* Frees |s|; every call must have ended. NULL is a no-op. */
void prom_source_free(prom_source *s);
/* The backend (its arg is |s|) for storeapi_server_new or
 * storeapi_client_new_local. */
storeapi_backend prom_source_backend(prom_source *s);
/* Replaces the external labels (copied). 0 or ORR_ENOMEM. */
int prom_source_set_external_labels(prom_source *s, const labels_set *ls);
/* Borrowed until the next set. */
const labels_set *prom_source_external_labels(const prom_source *s);
/* The oldest time served (Info's min_time; Series start no earlier). */
void prom_source_set_min_time(prom_source *s, int64_t mint);
int64_t prom_source_min_time(const prom_source *s);

#endif /* ORR_PROM_H */
