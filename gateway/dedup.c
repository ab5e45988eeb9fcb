/* dedup.c: HA deduplication of one series' replicas for the gateway — the
 * penalty algorithm itself lives in lib/storeapi (dedup.c), shared with the
 * compactor's vertical compaction; here only the gateway's types. */
#include <stddef.h>
#include <string.h>

#include "gateway_int.h"
#include "storeapi.h"

/* promql_point and storeapi_point are the same (t, v) pair. */
_Static_assert(sizeof(promql_point) == sizeof(storeapi_point) &&
                   offsetof(promql_point, t) == offsetof(storeapi_point, t) &&
                   offsetof(promql_point, v) == offsetof(storeapi_point, v),
               "promql_point and storeapi_point differ");
_Static_assert(sizeof(gw__replica) == sizeof(storeapi_replica), "replica layouts differ");

bool gw__is_counter_func(const char *f) {
  return f && (!strcmp(f, "increase") || !strcmp(f, "rate") || !strcmp(f, "irate") ||
               !strcmp(f, "resets"));
}

long gw__dedup(const gw__replica *reps, size_t nrep, bool counter, int64_t mint, int64_t maxt,
               orr_arena *scratch, promql_point *out) {
  return storeapi_dedup_penalty((const storeapi_replica *)reps, nrep, counter, mint, maxt, scratch,
                                (storeapi_point *)out);
}
