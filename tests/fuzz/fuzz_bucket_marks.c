/* fuzz_bucket_marks.c: arbitrary bytes as the block markers the store and
 * the compactor read from the bucket (deletion-mark.json,
 * no-compact-mark.json); a parsed marker must encode again. */
#include <stdint.h>
#include <stdlib.h>

#include "bucket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  orr_arena *a = orr_arena_new(0);
  char err[256];
  bucket_deletion_mark dm;
  bucket_no_compact_mark nc;
  orr_buf b = {0};
  if (bucket_deletion_mark_parse((const char *)data, size, a, &dm, err, sizeof err) == 0 &&
      bucket_deletion_mark_encode(&dm, &b) != 0)
    abort();
  if (bucket_no_compact_mark_parse((const char *)data, size, a, &nc, err, sizeof err) == 0 &&
      bucket_no_compact_mark_encode(&nc, &b) != 0)
    abort();
  orr_buf_free(&b);
  orr_arena_destroy(a);
  return 0;
}
