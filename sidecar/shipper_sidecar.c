/* shipper_sidecar.c: the shipper inside `orrery sidecar` — runs the
 * shipper's worker on the bucket the sidecar checked at start (borrowed from
 * sidecar_config.bucket), keeps its external labels and the served min time
 * fresh. */
#include <stdatomic.h>
#include <stdlib.h>

#include "objstore.h"
#include "sidecar_int.h"

/* Loop-side state: |labels_timer| copies the sidecar's (refreshed) external
 * labels into the shipper; |synced| brings each sync's min time back to the
 * loop (sidecar_set_min_time is a loop-thread call). Freed when both handles
 * are closed, after the worker was joined. */
typedef struct ship_state {
  sidecar *sc;
  objstore_bucket *bucket; /* borrowed from the sidecar's config */
  shipper *sh;
  uv_timer_t labels_timer;
  uv_async_t synced;
  _Atomic int64_t min_time;
  _Atomic int have_min_time;
  int open_handles;
} ship_state;

static void on_sync(int rc, const shipper_sync_stats *st, void *arg) {
  ship_state *ss = arg;
  (void)rc; /* the worker logged a failure */
  atomic_store(&ss->min_time, st->min_time);
  atomic_store(&ss->have_min_time, 1);
  uv_async_send(&ss->synced);
}

static void on_synced(uv_async_t *h) {
  ship_state *ss = h->data;
  if (atomic_load(&ss->have_min_time)) sidecar_set_min_time(ss->sc, atomic_load(&ss->min_time));
}

static void on_labels_timer(uv_timer_t *t) {
  ship_state *ss = t->data;
  const labels_set *ext = sidecar_external_labels(ss->sc);
  if (shipper_set_labels(ss->sh, ext) != 0)
    orr_log_warn("shipper: cannot copy the external labels", "err", orr_strerror(ORR_ENOMEM), NULL);
}

int sidecar_shipper_start(sidecar *sc) {
  const sidecar_config *cfg = sidecar_cfg(sc);
  char err[512] = "";
  ship_state *ss = calloc(1, sizeof(*ss));
  if (!ss) return ORR_ENOMEM;
  ss->sc = sc;
  ss->bucket = cfg->bucket;
  int rc;
  shipper_config c = {0};
  c.tsdb_path = cfg->tsdb_path;
  c.bucket = ss->bucket;
  c.labels = sidecar_external_labels(sc);
  c.source = "sidecar";
  c.upload_compacted = cfg->upload_compacted;
  c.on_sync = on_sync;
  c.sync_arg = ss;
  if ((rc = shipper_new(&c, &ss->sh, err, sizeof(err))) != 0) {
    orr_log_error("cannot create the shipper", "err", err, NULL);
    free(ss);
    return rc;
  }
  uv_loop_t *loop = sidecar_loop(sc);
  uv_async_init(loop, &ss->synced, on_synced);
  ss->synced.data = ss;
  uv_timer_init(loop, &ss->labels_timer);
  ss->labels_timer.data = ss;
  ss->open_handles = 2;
  *sidecar_shipper_slot(sc) = ss;
  if ((rc = shipper_start(ss->sh)) != 0) return rc; /* stop() cleans up */
  /* The sidecar refreshes Prometheus's external labels every 30 s. */
  uv_timer_start(&ss->labels_timer, on_labels_timer, 10000, 10000);
  orr_log_info("starting shipper", "bucket", objstore_name(ss->bucket), "type",
               objstore_type_name(ss->bucket), "upload_compacted",
               cfg->upload_compacted ? "true" : "false", NULL);
  return 0;
}

static void on_closed(uv_handle_t *h) {
  ship_state *ss = h->data;
  if (--ss->open_handles > 0) return;
  shipper_free(ss->sh);
  free(ss);
}

void sidecar_shipper_stop(sidecar *sc) {
  void **slot = sidecar_shipper_slot(sc);
  ship_state *ss = *slot;
  if (!ss) return;
  *slot = NULL;
  /* Joins the worker: an upload stops before its next object, so shutdown
   * waits at most for the object being put (bounded by objstore's request
   * timeouts and retries); the next start uploads that block again. */
  shipper_stop(ss->sh);
  uv_timer_stop(&ss->labels_timer);
  uv_close((uv_handle_t *)&ss->labels_timer, on_closed);
  uv_close((uv_handle_t *)&ss->synced, on_closed);
}
