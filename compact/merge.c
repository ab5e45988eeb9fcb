/* merge.c: --deduplication.func=penalty for vertical compaction — the
 * overlapping chunks of one series (from HA replicas) merged with Thanos's
 * penalty algorithm, the one the gateway uses at query time (lib/storeapi).
 *
 * Counter adjustment is off, as in Thanos's compactor: its penalty merge
 * for vertical compaction (pkg/dedup's NewChunkSeriesMerger, "without
 * handling counter reset") wraps every input in a no-op adjustable
 * iterator, whatever the series' name, because a block does not say which
 * series are counters and adjusting a gauge would change its values (a
 * name-suffix guess such as _total/_count/_sum/_bucket would be wrong both
 * ways, and Thanos does not make it). Only the querier, which knows the
 * PromQL function, adjusts. For HA replicas of one counter this loses
 * nothing: both scrape the same monotone value, so a switch never goes
 * down (tests/integration/compact/ha_dedup.py finds rate/increase/resets
 * over the compacted block equal to the gateway's, which adjusts); it
 * would only differ on a switch right across a real reset, where the
 * querier's adjustment hides the reset. The merge gets each replica's
 * whole series (run.c: merge_whole_series). */
#include <stdlib.h>

#include "compact_run.h"
#include "storeapi.h"

_Static_assert(sizeof(tsdb_sample) == sizeof(storeapi_point), "sample layouts differ");

int compact_merge_penalty(void *arg, const tsdb_sample *const *in, const size_t *nin, size_t n,
                          tsdb_sample **out, size_t *nout) {
  (void)arg;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += nin[i];
  storeapi_replica *reps = calloc(n + 1, sizeof(*reps));
  tsdb_sample *o = malloc((total + 1) * sizeof(*o));
  orr_arena *a = orr_arena_new(0);
  int rc = ORR_ENOMEM;
  if (reps && o && a) {
    for (size_t i = 0; i < n; i++) reps[i] = (storeapi_replica){(const storeapi_point *)in[i], nin[i]};
    long k = storeapi_dedup_penalty(reps, n, false, INT64_MIN, INT64_MAX, a, (storeapi_point *)o);
    if (k >= 0) {
      *out = o;
      *nout = (size_t)k;
      o = NULL;
      rc = 0;
    } else {
      rc = (int)k;
    }
  }
  free(reps);
  free(o);
  orr_arena_destroy(a);
  return rc;
}
