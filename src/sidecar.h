/* sidecar.h: `orrery sidecar` — StoreAPI over one Prometheus (remote read
 * and its HTTP API) and the hook where block upload (the shipper) starts. */
#ifndef ORR_SIDECAR_H
#define ORR_SIDECAR_H

#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "labels.h"
#include "net.h"

typedef struct sidecar_config {
  const char *prometheus_url;
  int64_t ready_timeout_ms;
  const char *tsdb_path;
  const char *objstore_file; /* uploads are enabled when either is set */
  const char *objstore;
  bool upload_compacted;
  const char *min_time; /* RFC3339 or a duration relative to now ("-1d") */
  const char *http_address;
  int64_t http_grace_ms;
  const char *grpc_address;
  int64_t grpc_grace_ms;
} sidecar_config;

typedef struct sidecar sidecar;

/* Runs the sidecar until SIGTERM/SIGINT. Returns the exit status: 0 after a
 * clean shutdown, 1 when it refused to start (one line logged). */
int sidecar_main(const sidecar_config *cfg);

/* ---- for the shipper (src/shipper*.c) */
/* Called once on the loop thread after Prometheus is ready and its external
 * labels are known, when uploads are configured. Returns 0 or an ORR_E*
 * code (the sidecar then exits 1). A weak default in sidecar.c logs that
 * uploads are not built; the shipper's definition replaces it. */
int sidecar_shipper_start(sidecar *sc);
/* Called on the loop thread at shutdown, before the loop's last run; the
 * shipper closes its handles there. Weak default: nothing. */
void sidecar_shipper_stop(sidecar *sc);

uv_loop_t *sidecar_loop(sidecar *sc);
const sidecar_config *sidecar_cfg(const sidecar *sc);
/* The current external labels (borrowed until the next refresh on the loop;
 * copy what must outlive the current callback). */
const labels_set *sidecar_external_labels(const sidecar *sc);
/* The shared HTTP client of the loop (borrowed). */
net_http_client *sidecar_http(sidecar *sc);
/* As Thanos's UpdateTimestamps: the oldest time this sidecar serves, raised
 * to --min-time. Loop thread. */
void sidecar_set_min_time(sidecar *sc, int64_t mint);
/* A pointer the shipper may keep its state in. */
void **sidecar_shipper_slot(sidecar *sc);

/* ---- Prometheus API answers (sidecar_prom.c, no I/O) */
/* Parses the body of /api/v1/status/config: global.external_labels of the
 * YAML in data.yaml, sorted, strings in |a|. Returns 0 (possibly empty),
 * ORR_EINVAL with a reason in |err|, or ORR_ENOMEM. */
int sidecar_parse_config(const char *body, size_t len, orr_arena *a, labels_set *out, char *err,
                         size_t errlen);
/* Parses the body of /api/v1/status/flags: the two block durations (the text
 * Prometheus shows). Returns 0 or ORR_EINVAL. */
int sidecar_parse_flags(const char *body, size_t len, char *minb, char *maxb, size_t cap);
/* Finds prometheus_tsdb_lowest_timestamp in a /metrics text. Returns 0 with
 * |*ms| set, or ORR_ENOTFOUND. */
int sidecar_parse_lowest_ts(const char *body, size_t len, int64_t *ms);
/* An incremental reader of /api/v1/series answers ({"status":"success",
 * "data":[{"name":"value",...},...]}) fed arbitrary pieces of the body: each
 * series' labels go to |emit| (unsorted; borrowed until it returns) as soon
 * as its object closes, so the answer is never held whole. |emit| returns 0
 * or a negative code that stops the reader (returned by feed). */
typedef int (*sidecar_series_emit_fn)(const labels_set *ls, void *arg);
typedef struct sidecar_series_json {
  sidecar_series_emit_fn emit;
  void *arg;
  int state;          /* tokenizer state */
  int depth;          /* containers open */
  uint64_t arrays;    /* bit d: the container at depth d+1 is an array */
  int expect_key;     /* in an object, the next string is a key */
  int key_is_data;    /* at depth 1, the last key was "data" */
  int data_depth;     /* depth of the data array, 0 until it opens */
  int have_name;      /* in a series object, a name waits for its value */
  int hex_n;          /* \u digits read */
  uint32_t hex, hi_surrogate;
  orr_buf str;        /* the string being read */
  orr_buf lbuf;       /* the current series' strings, NUL-separated */
  size_t *offs;       /* name/value offsets into lbuf */
  size_t noffs, capoffs;
  int done;           /* the top-level value closed */
  int err;
} sidecar_series_json;

void sidecar_series_json_init(sidecar_series_json *p, sidecar_series_emit_fn emit, void *arg);
void sidecar_series_json_free(sidecar_series_json *p);
/* Returns 0, ORR_ECORRUPT (not the shape above), ORR_ELIMIT (a string over
 * 1 MiB, nesting over 60), ORR_ENOMEM or |emit|'s error. Errors latch. */
int sidecar_series_json_feed(sidecar_series_json *p, const char *data, size_t n);
/* At the end of the body: 0 when the whole answer was read, else ORR_ECORRUPT. */
int sidecar_series_json_end(sidecar_series_json *p);

/* Appends |s| percent-encoded for a URL query. */
int sidecar_url_escape(orr_buf *b, const char *s);

#endif
