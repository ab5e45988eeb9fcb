/* fuzz_query_api.c: the Query API's decoding (gateway/queryapi.c,
 * lib/storeapi/client.c) — a QueryRequest or QueryRangeRequest as the
 * server unpacks it, or a QueryResponse as the client does, its series'
 * labels converted — by the first byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storeapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int kind = data[0] % 3;
  data++, size--;
  orr_arena *a = orr_arena_new(0);
  ProtobufCAllocator al = storeapi_arena_allocator(a);
  if (kind == 0) {
    Thanos__QueryRequest *r = thanos__query_request__unpack(&al, size, data);
    if (r && r->query) (void)strlen(r->query);
  } else if (kind == 1) {
    Thanos__QueryRangeRequest *r = thanos__query_range_request__unpack(&al, size, data);
    if (r && r->query) (void)strlen(r->query);
  } else {
    Thanos__QueryResponse *r = thanos__query_response__unpack(&al, size, data);
    if (r && r->result_case == THANOS__QUERY_RESPONSE__RESULT_TIMESERIES) {
      labels_set ls;
      double sum = 0;
      storeapi_labels_from_proto(r->timeseries->labels, r->timeseries->n_labels, a, &ls);
      for (size_t i = 0; i < r->timeseries->n_samples; i++)
        sum += r->timeseries->samples[i]->value + (double)r->timeseries->samples[i]->timestamp;
      (void)sum;
    }
  }
  orr_arena_destroy(a);
  return 0;
}
