/* compact_run.h: one iteration of the compactor over the bucket (run.c),
 * driven by cmd.c once (one-shot) or every --wait-interval (--wait). */
#ifndef ORR_COMPACT_RUN_H
#define ORR_COMPACT_RUN_H

#include <uv.h>

#include "compact_int.h"

typedef struct compact_config {
  objstore_bucket *bucket;
  const char *data_dir;
  int64_t consistency_delay_ms, delete_delay_ms;
  int64_t retention_ms[3]; /* raw, 5m, 1h; 0: forever */
  const char *const *replica_labels;
  size_t nreplica;
  tsdb_merge_fn merge; /* NULL: 1:1 merge of identical samples */
  void *merge_arg;
  bool downsampling; /* not --downsampling.disable */
  int64_t concurrency; /* --compact.concurrency: groups at a time */
  int64_t downsample_concurrency; /* --downsample.concurrency: blocks at a time */
  int64_t ranges[8];
  size_t nranges;
} compact_config;

typedef struct compact_iteration_stats {
  size_t groups, halted, errors, marked, deleted, downsampled;
} compact_iteration_stats;

/* The penalty merge (a tsdb_merge_fn) for --deduplication.func=penalty. */
int compact_merge_penalty(void *arg, const tsdb_sample *const *in, const size_t *nin, size_t n,
                          tsdb_sample **out, size_t *nout);
/* Registers the thanos_compact_* metrics (idempotent). */
void compact_metrics_init(void);
/* Runs one iteration. Returns 0 when everything went through, ORR_EAGAIN
 * when a group was halted or an operation failed (details logged; the
 * other groups were still processed), another ORR_E* code when the bucket
 * could not be read. */
int compact_iteration(const compact_config *cfg, compact_iteration_stats *st);

#endif /* ORR_COMPACT_RUN_H */
