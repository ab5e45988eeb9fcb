/* fuzz_aggr_chunk.c: arbitrary bytes as a Thanos aggregate chunk: every
 * aggregate is looked up and, when XOR, iterated to its end. */
#include <stdlib.h>

#include "tsdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int t = 0; t < TSDB_AGGR_NUM; t++) {
    tsdb_aggr_sub sub;
    int rc = tsdb_aggr_get(data, size, (tsdb_aggr_type)t, &sub);
    if (rc == 0) {
      /* the sub-chunk lies inside the input */
      if (sub.data < data || sub.data + sub.len > data + size) abort();
    } else if (rc != ORR_ENOTFOUND && rc != ORR_ECORRUPT) {
      abort();
    }
    tsdb_xor_iter it;
    if (tsdb_aggr_iter_init(&it, data, size, (tsdb_aggr_type)t) == 0) {
      while (tsdb_xor_iter_next(&it) == 1) {
      }
    }
  }
  return 0;
}
