/* fuzz_index.c: arbitrary bytes as an index v2 file: open, then read every
 * symbol, label name and value, label index, postings list and series, and
 * run a few selections. Anything but a clean error or success is a bug.
 * Includes tsdb_int.h for the CRC switch. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb_int.h"

static labels_matcher *ms[4];

static void init_matchers(void) {
  char err[64];
  if (ms[0]) return;
  ms[0] = labels_matcher_new(LABELS_MATCH_EQ, "__name__", "m1", err, sizeof(err));
  ms[1] = labels_matcher_new(LABELS_MATCH_RE, "job", "a|b", err, sizeof(err));
  ms[2] = labels_matcher_new(LABELS_MATCH_NEQ, "instance", "i-1", err, sizeof(err));
  ms[3] = labels_matcher_new(LABELS_MATCH_RE, "instance", "", err, sizeof(err));
}

static void one(const uint8_t *data, size_t size);

/* Each input runs twice: as is, and with CRC checks off so that mutations
 * reach the section parsers behind the CRCs. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_matchers();
  tsdb__index_verify_crc = true;
  one(data, size);
  tsdb__index_verify_crc = false;
  one(data, size);
  tsdb__index_verify_crc = true;
  return 0;
}

static void one(const uint8_t *data, size_t size) {
  /* A private copy so that reads past the end are caught by ASan. */
  uint8_t *b = malloc(size ? size : 1);
  if (!b) return;
  memcpy(b, data, size);
  tsdb_index_reader *r;
  char err[256];
  if (tsdb_index_open_bytes(b, size, &r, err, sizeof(err)) != 0) {
    free(b);
    return;
  }
  orr_arena *a = orr_arena_new(0);
  const char **names;
  size_t nn;
  if (tsdb_index_label_names(r, a, &names, &nn) == 0) {
    for (size_t i = 0; i < nn; i++) {
      const char **vals;
      size_t nv;
      if (tsdb_index_label_index_values(r, names[i], a, &vals, &nv) == 0) {
      }
      if (tsdb_index_label_values(r, names[i], a, &vals, &nv) != 0) continue;
      for (size_t k = 0; k < nv && k < 64; k++) {
        tsdb_postings *p;
        uint64_t *refs;
        size_t np;
        if (tsdb_index_postings(r, names[i], &vals[k], 1, a, &p) == 0)
          tsdb_postings_expand(p, a, &refs, &np);
      }
    }
  }
  tsdb_postings *all;
  if (tsdb_index_all_postings(r, a, &all) == 0) {
    int n = 0;
    while (tsdb_postings_next(all) && n++ < 4096) {
      labels_set ls;
      tsdb_index_chunk_meta *c;
      size_t nc;
      tsdb_index_series(r, tsdb_postings_at(all), a, &ls, &c, &nc);
    }
  }
  for (uint32_t i = 0; i < tsdb_index_num_symbols(r) && i < 4096; i++) {
    const char *s;
    size_t sl;
    tsdb_index_symbol(r, i, &s, &sl);
  }
  for (size_t i = 0; i < 4; i++) {
    tsdb_postings *p;
    uint64_t *refs;
    size_t np;
    if (ms[i] && tsdb_index_select(r, &ms[i], 4 - i, a, &p) == 0)
      tsdb_postings_expand(p, a, &refs, &np);
  }
  orr_arena_destroy(a);
  tsdb_index_close(r);
  free(b);
}
