/* fuzz_remote_read_frames.c: the STREAMED_XOR_CHUNKS frame reader fed
 * arbitrary bytes in pieces sized by the first input byte; each frame is
 * decoded as a ChunkedReadResponse and converted to StoreAPI series. */
#include <stdint.h>
#include <string.h>

#include "storeapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t piece = (size_t)data[0] + 1;
  data++, size--;
  storeapi_frames f;
  storeapi_frames_init(&f, 1 << 20);
  orr_arena *a = orr_arena_new(0);
  labels_label ev[] = {{"region", "eu"}, {"replica", "a"}};
  labels_set ext = {ev, 2};
  char *drop[] = {"replica"};
  size_t off = 0;
  int rc = 0;
  while (off < size && rc == 0) {
    size_t n = size - off < piece ? size - off : piece;
    const uint8_t *p = data + off;
    while (n > 0 && rc == 0) {
      size_t used;
      const uint8_t *fr;
      size_t flen;
      rc = storeapi_frames_feed(&f, p, n, &used, &fr, &flen);
      if (used > n) __builtin_trap();
      p += used, n -= used, off += used;
      if (rc == 0 && !fr && used == 0) __builtin_trap(); /* no progress */
      if (fr) {
        orr_arena_reset(a);
        ProtobufCAllocator al = storeapi_arena_allocator(a);
        Prometheus__ChunkedReadResponse *m = prometheus__chunked_read_response__unpack(&al, flen, fr);
        for (size_t i = 0; m && i < m->n_chunked_series; i++) {
          Thanos__Series s;
          if (storeapi_series_from_chunked(m->chunked_series[i], &ext, drop, 1, a, &s) == 0) {
            for (size_t j = 1; j < s.n_labels; j++)
              if (strcmp(s.labels[j - 1]->name, s.labels[j]->name) >= 0) __builtin_trap();
          }
        }
      }
    }
  }
  if (rc == 0) storeapi_frames_end(&f);
  storeapi_frames_free(&f);
  orr_arena_destroy(a);
  return 0;
}
