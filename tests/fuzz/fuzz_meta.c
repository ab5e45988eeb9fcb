/* fuzz_meta.c: arbitrary bytes as meta.json. What parses must encode, parse
 * again and encode to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  orr_arena *a = orr_arena_new(0);
  tsdb_meta m, m2;
  char err[256];
  if (tsdb_meta_parse((const char *)data, size, a, &m, err, sizeof(err)) == 0) {
    orr_buf b1 = {0}, b2 = {0};
    if (tsdb_meta_encode(&m, &b1) != 0) abort();
    if (tsdb_meta_parse(b1.data, b1.len, a, &m2, err, sizeof(err)) != 0) abort();
    if (tsdb_meta_encode(&m2, &b2) != 0) abort();
    if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0) abort();
    orr_buf_free(&b1);
    orr_buf_free(&b2);
  }
  orr_arena_destroy(a);
  return 0;
}
