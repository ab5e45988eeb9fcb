/* fuzz_storeapi_series_response.c: SeriesResponse messages as a gRPC
 * client's Series call unpacks them — several (the input split at each
 * 0xFF byte) from one call's block pool (msgalloc.c), the series of every
 * other one taken over and its first label freed on its own (as the
 * gateway's proxy does), the responses freed, the pool dropped, then the
 * series taken freed last to first. Under ASan a piece freed twice, a
 * block freed while a piece lives, or a piece reaching past its block fails. */
#include <stdint.h>
#include <string.h>

#include "storeapi_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  storeapi__msg_pool pl;
  storeapi__msg_pool_init(&pl);
  Thanos__Series *kept[64];
  size_t nkept = 0;
  const uint8_t *p = data, *end = data + size;
  for (size_t k = 0; p <= end && k < 64; k++) {
    const uint8_t *e = memchr(p, 0xFF, (size_t)(end - p));
    if (!e) e = end;
    Thanos__SeriesResponse *r = thanos__series_response__unpack(&pl.a, (size_t)(e - p), p);
    if (r && r->result_case == THANOS__SERIES_RESPONSE__RESULT_SERIES && r->series && k % 2 == 0) {
      Thanos__Series *s = r->series;
      r->series = NULL;
      if (s->n_labels) {
        protobuf_c_message_free_unpacked(&s->labels[0]->base,
                                         (ProtobufCAllocator *)&storeapi_msg_allocator);
        memmove(s->labels, s->labels + 1, (s->n_labels - 1) * sizeof(*s->labels));
        s->n_labels--;
      }
      kept[nkept++] = s;
    }
    if (r) thanos__series_response__free_unpacked(r, &pl.a);
    p = e + 1;
  }
  storeapi__msg_pool_release(&pl);
  while (nkept) storeapi_series_free(kept[--nkept]);
  return 0;
}
