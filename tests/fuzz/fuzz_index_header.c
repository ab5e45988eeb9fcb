/* fuzz_index_header.c: arbitrary bytes as what the store gateway reads:
 * an index-header file (open, then every symbol, label name and value, and
 * postings range), and the same bytes as a postings list and a series entry
 * fetched by ranged reads. Anything but a clean error or success is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb_int.h"

static void one(const uint8_t *b, size_t size) {
  char err[256];
  orr_arena *a = orr_arena_new(0);
  uint64_t *refs;
  size_t cnt;
  tsdb_postings_list_decode(b, size, a, &refs, &cnt);
  tsdb_index_header *h;
  if (tsdb_index_header_open_bytes(b, size, TSDB_INDEX_HEADER_SAMPLING, &h, err, sizeof(err)) != 0) {
    orr_arena_destroy(a);
    return;
  }
  const tsdb_index_reader *r = tsdb_index_header_reader(h);
  for (uint32_t i = 0; i < tsdb_index_num_symbols(r) && i < 1000; i++) {
    const char *s;
    size_t n;
    tsdb_index_symbol(r, i, &s, &n);
  }
  const char **names;
  size_t nn;
  if (tsdb_index_label_names(r, a, &names, &nn) == 0) {
    for (size_t i = 0; i < nn && i < 50; i++) {
      const char **vals;
      size_t nv;
      if (tsdb_index_label_values(r, names[i], a, &vals, &nv) != 0) continue;
      for (size_t j = 0; j < nv && j < 100; j++) {
        uint64_t s, e;
        tsdb_index_header_postings_range(h, names[i], vals[j], &s, &e);
      }
    }
  }
  /* The header's own bytes as a series entry: symbols come from |h|. */
  labels_set ls;
  tsdb_index_chunk_meta *ch;
  size_t nch, need;
  tsdb_index_header_series(h, b, size, 1, a, &ls, &ch, &nch, &need);
  if (size > 14) tsdb_index_header_series(h, b + 14, size - 14, 1, a, &ls, &ch, &nch, &need);
  tsdb_index_header_close(h);
  orr_arena_destroy(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *b = malloc(size ? size : 1);
  if (!b) return 0;
  memcpy(b, data, size);
  tsdb__index_verify_crc = true;
  one(b, size);
  tsdb__index_verify_crc = false;
  one(b, size);
  tsdb__index_verify_crc = true;
  free(b);
  return 0;
}
