/* fuzz_storeapi_fastdec.c: the fast SeriesResponse decoder (fastdec.c)
 * against protobuf-c. For any input the fast decoder either declines, or
 * protobuf-c accepts it too and the two messages are the same: field by
 * field in memory (pbc_same.h: counts, default pointers, NULL bytes), the
 * same bytes when packed again, and the same NUL verdict as has_nul_label.
 * Both decode into a call's block pool (msgalloc.c) and are freed with
 * free_unpacked, so under ASan a piece the fast decoder made differently
 * (or leaked on a decline) fails too. Any mismatch aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pbc_same.h"
#include "storeapi_int.h"

static uint8_t *packed(const Thanos__SeriesResponse *r, size_t *n) {
  *n = thanos__series_response__get_packed_size(r);
  uint8_t *b = malloc(*n ? *n : 1);
  if (!b) abort();
  thanos__series_response__pack(r, b);
  return b;
}

static void check_same(const Thanos__SeriesResponse *fast, const Thanos__SeriesResponse *ref) {
  if (!pbc_same(&fast->base, &ref->base)) abort();
  size_t nf, nr;
  uint8_t *bf = packed(fast, &nf), *br = packed(ref, &nr);
  if (nf != nr || memcmp(bf, br, nf)) abort();
  free(bf);
  free(br);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  storeapi__msg_pool pl;
  storeapi__msg_pool_init(&pl);
  bool nul = false;
  Thanos__SeriesResponse *fast = storeapi__series_response_fast(&pl.a, data, size, &nul);
  Thanos__SeriesResponse *ref = thanos__series_response__unpack(&pl.a, size, data);
  if (fast) {
    if (!ref) abort(); /* accepted what protobuf-c rejects */
    check_same(fast, ref);
    bool ref_nul = ref->result_case == THANOS__SERIES_RESPONSE__RESULT_SERIES &&
                   storeapi__has_nul_label(data, data + size, 0, 1);
    if (nul != ref_nul) abort();
    thanos__series_response__free_unpacked(fast, &pl.a);
  }
  if (ref) thanos__series_response__free_unpacked(ref, &pl.a);
  storeapi__msg_pool_release(&pl);
  return 0;
}
