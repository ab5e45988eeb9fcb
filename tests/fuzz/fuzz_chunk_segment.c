/* fuzz_chunk_segment.c: arbitrary bytes as a chunk segment file through the
 * reader: every chunk is walked (and its XOR samples decoded), and the
 * refs named by the input's first bytes are read directly. */
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int visit(void *arg, uint64_t ref, const tsdb_chunk *c) {
  const tsdb_chunk_reader *r = arg;
  tsdb_chunk again;
  char err[256];
  /* what the walk found, a direct read finds too */
  if (tsdb_chunk_reader_get(r, ref, &again, err, sizeof(err)) != 0) abort();
  if (again.data != c->data || again.len != c->len || again.enc != c->enc) abort();
  if (c->enc == TSDB_ENC_XOR) {
    tsdb_xor_iter it;
    tsdb_xor_iter_init(&it, c->data, c->len);
    while (tsdb_xor_iter_next(&it) == 1) {
    }
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *segs[1] = {data};
  size_t lens[1] = {size};
  tsdb_chunk_reader *r;
  char err[256];
  int rc = tsdb_chunk_reader_open_bytes(segs, lens, 1, &r, err, sizeof(err));
  if (rc) {
    if (rc != ORR_ECORRUPT || !err[0]) abort();
    return 0;
  }
  rc = tsdb_chunk_reader_walk(r, 0, visit, r, err, sizeof(err));
  if (rc && rc != ORR_ECORRUPT) abort();
  for (size_t i = 0; i + 4 <= size && i < 64; i += 4) {
    uint64_t off = (uint64_t)data[i] << 8 | data[i + 1];
    uint64_t ref = (uint64_t)(data[i + 2] & 1) << 32 | off;
    tsdb_chunk c;
    rc = tsdb_chunk_reader_get(r, ref, &c, err, sizeof(err));
    if (rc == 0 && (c.data < data || c.data + c.len > data + size)) abort();
  }
  tsdb_chunk_reader_close(r);
  return 0;
}
