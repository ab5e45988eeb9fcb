/* gen_block.c: writes a valid level-1 block of any size quickly, for the
 * shipper's integration tests: NSERIES series, each with CHUNKS XOR chunks of
 * 120 random samples (15 s apart) from T0_MS; the chunks are encoded once and
 * shared by every series, so a 1 GB block costs little more than the writes.
 * Usage: shipper_gen_block PARENT T0_MS NSERIES CHUNKS [SEGMENT_BYTES]
 * Prints the block's ULID. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

#define SAMPLES 120
#define STEP_MS 15000

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s PARENT T0_MS NSERIES CHUNKS [SEGMENT_BYTES]\n", argv[0]);
    return 2;
  }
  const char *parent = argv[1];
  int64_t t0 = strtoll(argv[2], NULL, 10);
  long nseries = strtol(argv[3], NULL, 10), nchunks = strtol(argv[4], NULL, 10);
  tsdb_block_writer_opts o = {0};
  if (argc > 5) o.segment_size = strtoull(argv[5], NULL, 10);
  if (nseries <= 0 || nchunks <= 0) return 2;

  tsdb_chunk *chunks = calloc((size_t)nchunks, sizeof(*chunks));
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (long k = 0; k < nchunks; k++) {
    tsdb_xor_appender a;
    if (tsdb_xor_appender_init(&a)) return 1;
    int64_t ct = t0 + k * SAMPLES * STEP_MS;
    for (int j = 0; j < SAMPLES; j++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
      double v = (double)(x >> 11) / 1e6;
      if (tsdb_xor_append(&a, ct + (int64_t)j * STEP_MS, v)) return 1;
    }
    size_t len;
    const uint8_t *p = tsdb_xor_bytes(&a, &len);
    chunks[k].mint = ct;
    chunks[k].maxt = ct + (SAMPLES - 1) * STEP_MS;
    chunks[k].enc = TSDB_ENC_XOR;
    chunks[k].data = malloc(len);
    memcpy(chunks[k].data, p, len);
    chunks[k].len = len;
    tsdb_xor_appender_free(&a);
  }

  tsdb_block_writer *w;
  char err[512];
  if (tsdb_block_writer_open(parent, &o, &w, err, sizeof(err))) {
    fprintf(stderr, "open: %s\n", err);
    return 1;
  }
  for (long i = 0; i < nseries; i++) {
    char id[24];
    snprintf(id, sizeof(id), "%08ld", i);
    labels_label l[2] = {{"__name__", "shipper_gen"}, {"series", id}};
    labels_set ls = {l, 2};
    if (tsdb_block_writer_add_chunks(w, &ls, chunks, (size_t)nchunks)) {
      fprintf(stderr, "add series %ld failed\n", i);
      tsdb_block_writer_abort(w);
      return 1;
    }
  }
  tsdb_ulid u;
  if (tsdb_block_writer_commit(w, &u, err, sizeof(err))) {
    fprintf(stderr, "commit: %s\n", err);
    return 1;
  }
  char s[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&u, s);
  printf("%s\n", s);
  for (long k = 0; k < nchunks; k++) free(chunks[k].data);
  free(chunks);
  return 0;
}
