/* sidecar_int.h: what the sidecar's files share — the daemon's hooks for the
 * shipper and the shipper (shipper.c: uploads every finished block of a Prometheus TSDB directory to
 * the bucket: chunks, index, then meta.json with the thanos section; records
 * uploads in thanos.shipper.json; crash-safe). Not for use outside sidecar/
 * (and its unit tests). */
#ifndef ORR_SIDECAR_INT_H
#define ORR_SIDECAR_INT_H

#include "objstore.h"
#include "prom.h"
#include "sidecar.h"

/* ---- the shipper inside the daemon (shipper_sidecar.c) */
/* Called once on the loop thread after Prometheus is ready and its external
 * labels are known, when uploads are configured. Returns 0 or an ORR_E*
 * code (the sidecar then exits 1). */
int sidecar_shipper_start(sidecar *sc);
/* Called on the loop thread at shutdown, before the loop's last run; the
 * shipper closes its handles there. */
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

/* ================================================================ blocks
 * Prometheus's persisted blocks read by the sidecar itself (blocks.c,
 * --tsdb.read-blocks): a StoreAPI backend over |src| that answers the part
 * of a Series call before the newest block's end from the block files and
 * the rest through |src|'s remote read. Loop thread only. */
typedef struct sidecar_blocks sidecar_blocks;
/* Each may be NULL. */
typedef struct sidecar_blocks_metrics {
  orr_series *calls;    /* Series calls read (in part) from the blocks */
  orr_series *listings; /* listings of the directory that found a change */
  orr_series *blocks;   /* blocks read (0: every call through remote read) */
} sidecar_blocks_metrics;
/* Lists |dir| now and every second; |on_min_time| (may be NULL) gets the
 * oldest block time after each listing that changed it. |src| is borrowed
 * until sidecar_blocks_free, |m| copied. Returns 0 or ORR_ENOMEM. */
int sidecar_blocks_new(uv_loop_t *loop, const char *dir, prom_source *src,
                       void (*on_min_time)(void *arg, int64_t mint), void *arg,
                       const sidecar_blocks_metrics *m, sidecar_blocks **out);
/* The backend (its arg is |bs|) for storeapi_server_new. */
storeapi_backend sidecar_blocks_backend(sidecar_blocks *bs);
/* Prometheus accepts out-of-order samples: every call goes to |src|. */
void sidecar_blocks_set_ooo(sidecar_blocks *bs, bool ooo);
/* Closes the handles once every call ended (after the gRPC server closed);
 * |on_closed| runs from the loop, then free with sidecar_blocks_free. */
void sidecar_blocks_close(sidecar_blocks *bs, void (*on_closed)(void *arg), void *arg);
void sidecar_blocks_free(sidecar_blocks *bs);

/* ================================================================ shipper */
typedef struct shipper shipper;

/* The default sync interval, as Thanos's sidecar. */
#define SHIPPER_INTERVAL_MS ((int64_t)30 * 1000)
/* The state file in the TSDB directory, in Thanos's shape. */
#define SHIPPER_STATE_FILE "thanos.shipper.json"

/* What one sync did. */
typedef struct shipper_sync_stats {
  int uploaded;      /* blocks uploaded by this sync */
  int recorded;      /* blocks found already in the bucket, only recorded */
  int failed;        /* blocks whose upload failed (0 or 1: a sync stops there) */
  uint64_t bytes;    /* bytes of objects put */
  uint64_t objects;  /* objects put */
  /* The oldest minTime of the local blocks, 0 when there is none (Thanos's
   * shipper Timestamps(): the sidecar serves from there). */
  int64_t min_time;
} shipper_sync_stats;

typedef struct shipper_config {
  const char *tsdb_path;   /* Prometheus's data directory (copied) */
  objstore_bucket *bucket; /* borrowed until shipper_free() */
  /* External labels for the thanos section (copied; shipper_set_labels
   * replaces them). A block is not uploaded while they are empty. */
  const labels_set *labels;
  const char *source;    /* thanos.source; NULL: "sidecar" (copied) */
  bool upload_compacted; /* also blocks of compaction level > 1 */
  int64_t interval_ms;   /* between syncs; 0: SHIPPER_INTERVAL_MS */
  /* Fault injection for tests: called on the syncing thread before each
   * object is uploaded, with its key; a negative return fails that object's
   * upload with that code. NULL: none. */
  int (*before_put)(const char *key, void *arg);
  void *hook_arg;
  /* Called on the worker thread after each of its syncs with the result and
   * what the sync did (borrowed for the call). NULL: none. */
  void (*on_sync)(int rc, const shipper_sync_stats *st, void *arg);
  void *sync_arg;
} shipper_config;


/* Creates a shipper (no thread yet). Registers the shipper metrics on
 * orr_registry_default() (once per process). Test-only environment
 * variables, read here: ORRERY_SHIPPER_TEST_INTERVAL (a duration overriding
 * the interval), ORRERY_SHIPPER_TEST_PUT_DELAY (a duration slept before each
 * object, to make uploads slow), ORRERY_SHIPPER_TEST_KILL_AFTER_META=1
 * (SIGKILL the process right after a meta.json was put, before the state
 * file is written). Returns 0, ORR_EINVAL (|err| says why) or ORR_ENOMEM;
 * caller frees with shipper_free(). */
int shipper_new(const shipper_config *cfg, shipper **out, char *err, size_t errlen);
/* Replaces the external labels (copied). Thread-safe. 0 or ORR_ENOMEM. */
int shipper_set_labels(shipper *s, const labels_set *labels);
/* One sync on the calling thread (blocking; never on a daemon's loop).
 * Serialised with the worker's syncs. Returns 0, or the code of the first
 * failure with one line in |err| (the block and objstore's message); the
 * failed block is retried by the next sync. |st| may be NULL. */
int shipper_sync(shipper *s, shipper_sync_stats *st, char *err, size_t errlen);
/* Starts the worker thread: a sync at once, then every interval; after a
 * failed sync, retries with backoff (1 s doubling, at most the interval).
 * Returns 0 or ORR_EINVAL (already started) / ORR_EIO. */
int shipper_start(shipper *s);
/* Asks the worker for a sync now. Thread-safe. */
void shipper_trigger(shipper *s);
/* Waits until the worker finished at least |n| syncs (counting from start)
 * or |timeout_ms| passed; returns the number finished. Thread-safe. */
uint64_t shipper_wait_syncs(shipper *s, uint64_t n, int64_t timeout_ms);
/* Stops the worker: an upload in progress stops before its next object
 * (the object being put finishes first); joins the thread. Safe to call
 * when not started, and twice. */
void shipper_stop(shipper *s);
/* Stops (if needed) and frees |s|. NULL is ignored. */
void shipper_free(shipper *s);

#endif /* ORR_SIDECAR_INT_H */
