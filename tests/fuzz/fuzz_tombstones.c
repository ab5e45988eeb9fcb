/* fuzz_tombstones.c: arbitrary bytes as a tombstones file. What decodes must
 * re-encode to a file that decodes to the same intervals. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tsdb_tombstones t = {0}, u = {0};
  if (tsdb_tombstones_decode(data, size, &t) == 0) {
    orr_buf b = {0};
    if (tsdb_tombstones_encode(&t, &b) != 0) abort();
    if (tsdb_tombstones_decode(b.data, b.len, &u) != 0) abort();
    if (u.n != t.n) abort();
    for (size_t i = 0; i < t.n; i++) {
      if (u.v[i].ref != t.v[i].ref || u.v[i].ivs.n != t.v[i].ivs.n) abort();
      if (memcmp(u.v[i].ivs.v, t.v[i].ivs.v, t.v[i].ivs.n * sizeof(tsdb_interval)) != 0) abort();
      for (size_t k = 1; k < t.v[i].ivs.n; k++)
        if (t.v[i].ivs.v[k].mint <= t.v[i].ivs.v[k - 1].maxt) abort();
    }
    orr_buf_free(&b);
  }
  tsdb_tombstones_free(&t);
  tsdb_tombstones_free(&u);
  return 0;
}
