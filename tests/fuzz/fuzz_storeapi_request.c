/* fuzz_storeapi_request.c: StoreAPI request decoding as the service layer
 * does it — SeriesRequest (or LabelValues/LabelNames, by the first byte)
 * unpacked into an arena, then its matchers compiled. */
#include <stdint.h>
#include <stdlib.h>

#include "storeapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int kind = data[0] % 3;
  data++, size--;
  orr_arena *a = orr_arena_new(0);
  ProtobufCAllocator al = storeapi_arena_allocator(a);
  Thanos__LabelMatcher **pm = NULL;
  size_t n = 0;
  if (kind == 0) {
    Thanos__SeriesRequest *r = thanos__series_request__unpack(&al, size, data);
    if (r) pm = r->matchers, n = r->n_matchers;
  } else if (kind == 1) {
    Thanos__LabelValuesRequest *r = thanos__label_values_request__unpack(&al, size, data);
    if (r) pm = r->matchers, n = r->n_matchers;
  } else {
    Thanos__LabelNamesRequest *r = thanos__label_names_request__unpack(&al, size, data);
    if (r) pm = r->matchers, n = r->n_matchers;
  }
  if (pm && n <= 64) {
    labels_matcher **ms;
    char err[256];
    if (storeapi_matchers_from_proto(pm, n, a, &ms, err, sizeof(err)) == 0) {
      labels_set empty = {NULL, 0};
      labels_matches_all(&empty, ms, n);
      Thanos__LabelMatcher **back;
      storeapi_matchers_to_proto(ms, n, a, &back);
      storeapi_matchers_free(ms, n);
    }
  }
  orr_arena_destroy(a);
  return 0;
}
