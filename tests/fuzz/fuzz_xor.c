/* fuzz_xor.c: decodes arbitrary bytes as an XOR chunk; whatever decodes must
 * re-encode into a chunk that decodes to the same samples, bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tsdb_xor_iter it;
  tsdb_xor_iter_init(&it, data, size);
  tsdb_xor_appender app;
  if (tsdb_xor_appender_init(&app)) return 0;
  int rc;
  while ((rc = tsdb_xor_iter_next(&it)) == 1) {
    if (tsdb_xor_append(&app, it.t, it.v)) abort();
  }
  if (rc < 0 && rc != ORR_ECORRUPT) abort();
  size_t len;
  const uint8_t *b = tsdb_xor_bytes(&app, &len);
  tsdb_xor_iter a, c;
  tsdb_xor_iter_init(&a, data, size);
  tsdb_xor_iter_init(&c, b, len);
  for (;;) {
    int ra = tsdb_xor_iter_next(&a), rb = tsdb_xor_iter_next(&c);
    if (ra != 1) {
      if (rb != 0) abort(); /* the re-encoded chunk ends where decoding stopped */
      break;
    }
    if (rb != 1 || a.t != c.t || memcmp(&a.v, &c.v, sizeof(a.v)) != 0) abort();
  }
  /* the array decoder sees the same samples and the same outcome */
  uint16_t total;
  if (tsdb_xor_num_samples(data, size, &total) == 0) {
    tsdb_sample *out = malloc(((size_t)total + 1) * sizeof(*out));
    if (!out) return 0;
    int k = tsdb_xor_decode(data, size, out, total);
    tsdb_xor_iter_init(&a, data, size);
    int i = 0, ra;
    while ((ra = tsdb_xor_iter_next(&a)) == 1) {
      if (k >= 0 && (a.t != out[i].t || memcmp(&a.v, &out[i].v, sizeof(a.v)) != 0)) abort();
      i++;
    }
    if ((ra < 0) != (k < 0) || (k >= 0 && k != i)) abort();
    /* the two-chunk decoder, with the input as both chunks: the same
     * samples, or an error exactly when decode fails */
    tsdb_sample *out2 = malloc(((size_t)total + 1) * sizeof(*out2));
    if (out2) {
      int k1 = -1, k2 = -1;
      int r2 = tsdb_xor_decode2(data, size, out, total, &k1, data, size, out2, total, &k2);
      if ((r2 < 0) != (k < 0)) abort();
      if (r2 == 0 && (k1 != k || k2 != k || memcmp(out, out2, (size_t)k * sizeof(*out)) != 0))
        abort();
      free(out2);
    }
    free(out);
  }
  /* seek never fails where next succeeded */
  tsdb_xor_iter_init(&it, data, size);
  (void)tsdb_xor_iter_seek(&it, size ? (int64_t)data[0] << 40 : 0);
  tsdb_xor_appender_free(&app);
  return 0;
}
