/* filter.c: which listed blocks a reader of the bucket should see, as
 * Thanos's meta fetcher filters decide it, applied in Thanos's order: time
 * partition, consistency delay, deletion marks, de-duplication; and the
 * thanos_blocks_meta_synced gauge that counts the outcome by state. */
#include <stdio.h>
#include <string.h>

#include "bucket.h"

static bool whole_when_seen(const tsdb_meta *m) {
  /* Blocks the compactor or a repair wrote were uploaded whole before they
   * were listed (meta.json last): no need to wait for them. */
  const char *s = m->has_thanos ? m->thanos.source : NULL;
  return s && (strcmp(s, "compactor") == 0 || strcmp(s, "bucket.repair") == 0 ||
               strcmp(s, "blockrepair") == 0);
}

bool bucket_too_fresh(const tsdb_meta *m, int64_t consistency_delay_ms, int64_t now_ms) {
  return consistency_delay_ms > 0 && !whole_when_seen(m) &&
         tsdb_ulid_time(&m->ulid) > now_ms - consistency_delay_ms;
}

static bool ulid_in(const tsdb_ulid *v, size_t n, const tsdb_ulid *u) {
  for (size_t i = 0; i < n; i++)
    if (tsdb_ulid_cmp(&v[i], u) == 0) return true;
  return false;
}

/* Sources of a block: meta.compaction.sources, or the block itself when
 * the list is empty (an uploaded level-1 block always lists itself). */
static void sources(const bucket_block_meta *b, const tsdb_ulid **v, size_t *n) {
  if (b->meta.nsources) {
    *v = b->meta.sources;
    *n = b->meta.nsources;
  } else {
    *v = &b->meta.ulid;
    *n = 1;
  }
}

static bool subset(const bucket_block_meta *a, const bucket_block_meta *b) {
  const tsdb_ulid *av, *bv;
  size_t an, bn;
  sources(a, &av, &an);
  sources(b, &bv, &bn);
  if (an > bn) return false;
  for (size_t i = 0; i < an; i++)
    if (!ulid_in(bv, bn, &av[i])) return false;
  return true;
}

static int64_t resolution(const bucket_block_meta *b) {
  return b->meta.has_thanos ? b->meta.thanos.downsample_resolution : 0;
}

int bucket_filter(objstore_bucket *b, bucket_block_meta *metas, size_t n,
                  const bucket_filter_opts *o, orr_arena *a) {
  int64_t now = o->now_ms ? o->now_ms : orr_now_ms();
  for (size_t i = 0; i < n; i++) {
    bucket_block_meta *m = &metas[i];
    if (m->status != BUCKET_META_OK || m->filtered) continue;
    if (m->meta.max_time < o->min_time || m->meta.min_time > o->max_time) {
      m->filtered = "time";
      continue;
    }
    if (bucket_too_fresh(&m->meta, o->consistency_delay_ms, now)) {
      m->filtered = "consistency-delay";
      continue;
    }
    if (o->ignore_deletion_marks_delay_ms >= 0) {
      bucket_deletion_mark dm;
      char err[512] = "";
      int rc = bucket_deletion_mark_read(b, &m->ulid, a, &dm, err, sizeof err);
      if (rc == ORR_ENOMEM) return rc;
      if (rc == 0 && now - dm.deletion_time * 1000 > o->ignore_deletion_marks_delay_ms) {
        m->filtered = "deletion-mark";
        continue;
      }
      if (rc && rc != ORR_ENOTFOUND) {
        char id[TSDB_ULID_STRLEN + 1];
        tsdb_ulid_format(&m->ulid, id);
        orr_log_warn("cannot read deletion mark; keeping the block", "block", id, "err", err,
                     NULL);
      }
    }
  }
  if (!o->dedup) return 0;
  for (size_t i = 0; i < n; i++) {
    bucket_block_meta *x = &metas[i];
    if (x->status != BUCKET_META_OK || x->filtered) continue;
    for (size_t j = 0; j < n; j++) {
      bucket_block_meta *y = &metas[j];
      if (i == j || y->status != BUCKET_META_OK || (y->filtered && strcmp(y->filtered, "duplicate")))
        continue;
      if (resolution(x) != resolution(y) || !subset(x, y)) continue;
      /* Equal source sets: keep the smaller ULID. */
      if (subset(y, x) && tsdb_ulid_cmp(&x->ulid, &y->ulid) < 0) continue;
      x->filtered = "duplicate";
      break;
    }
  }
  return 0;
}

/* Thanos's label values (its block fetcher's "synced" states), by enum. */
static const char *const state_names[BUCKET_NSTATES] = {
    [BUCKET_STATE_LOADED] = "loaded",
    [BUCKET_STATE_FAILED] = "failed",
    [BUCKET_STATE_NO_META] = "no-meta-json",
    [BUCKET_STATE_CORRUPTED_META] = "corrupted-meta-json",
    [BUCKET_STATE_LABEL_EXCLUDED] = "label-excluded",
    [BUCKET_STATE_TIME_EXCLUDED] = "time-excluded",
    [BUCKET_STATE_TOO_FRESH] = "too-fresh",
    [BUCKET_STATE_DUPLICATE] = "duplicate",
    [BUCKET_STATE_MARKED_FOR_DELETION] = "marked-for-deletion",
    [BUCKET_STATE_MARKED_FOR_NO_COMPACT] = "marked-for-no-compact",
};

static int state_of(const bucket_block_meta *m) {
  switch (m->status) {
    case BUCKET_META_MISSING: return BUCKET_STATE_NO_META;
    case BUCKET_META_CORRUPT: return BUCKET_STATE_CORRUPTED_META;
    case BUCKET_META_FAILED: return BUCKET_STATE_FAILED;
    case BUCKET_META_OK: break;
  }
  const char *f = m->filtered;
  if (!f) return BUCKET_STATE_LOADED;
  if (!strcmp(f, "time")) return BUCKET_STATE_TIME_EXCLUDED;
  if (!strcmp(f, "consistency-delay")) return BUCKET_STATE_TOO_FRESH;
  if (!strcmp(f, "deletion-mark")) return BUCKET_STATE_MARKED_FOR_DELETION;
  if (!strcmp(f, "duplicate")) return BUCKET_STATE_DUPLICATE;
  return BUCKET_STATE_LABEL_EXCLUDED; /* the callers' label sharding */
}

const char *bucket_meta_state(const bucket_block_meta *m) { return state_names[state_of(m)]; }

int bucket_synced_gauge_init(bucket_synced_gauge *g, orr_registry *reg) {
  const char *labels[] = {"state", NULL};
  orr_metric *m = orr_gauge_new(reg, "thanos_blocks_meta_synced", "Number of block metadata synced",
                                labels);
  if (!m) return ORR_ENOMEM;
  for (int i = 0; i < BUCKET_NSTATES; i++) {
    const char *v[] = {state_names[i]};
    if (!(g->state[i] = orr_metric_with(m, v))) return ORR_ENOMEM;
    orr_gauge_set(g->state[i], 0);
  }
  return 0;
}

void bucket_synced_gauge_set(bucket_synced_gauge *g, const bucket_block_meta *metas, size_t n,
                             size_t no_compact) {
  size_t cnt[BUCKET_NSTATES] = {0};
  for (size_t i = 0; i < n; i++) cnt[state_of(&metas[i])]++;
  cnt[BUCKET_STATE_MARKED_FOR_NO_COMPACT] += no_compact;
  bucket_synced_gauge_set_counts(g, cnt);
}

int bucket_fetch_metrics_init(bucket_fetch_metrics *m, orr_registry *reg) {
  static const double sec_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  orr_metric *sy = orr_counter_new(reg, "thanos_blocks_meta_syncs_total",
                                   "Total blocks metadata synchronization attempts.", NULL);
  orr_metric *sf = orr_counter_new(reg, "thanos_blocks_meta_sync_failures_total",
                                   "Total blocks metadata synchronization failures.", NULL);
  orr_metric *sd = orr_histogram_new(reg, "thanos_blocks_meta_sync_duration_seconds",
                                     "Duration of the blocks metadata synchronization in seconds.",
                                     NULL, sec_buckets, sizeof(sec_buckets) / sizeof(*sec_buckets));
  if (!sy || !sf || !sd || !(m->syncs = orr_metric_series(sy)) ||
      !(m->sync_failures = orr_metric_series(sf)) || !(m->sync_duration = orr_metric_series(sd)))
    return ORR_ENOMEM;
  return bucket_synced_gauge_init(&m->synced, reg);
}

void bucket_synced_gauge_set_counts(bucket_synced_gauge *g, const size_t cnt[BUCKET_NSTATES]) {
  for (int i = 0; i < BUCKET_NSTATES; i++)
    if (g->state[i]) orr_gauge_set(g->state[i], (double)cnt[i]);
}
