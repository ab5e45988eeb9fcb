/* fuzz_prom_series_json.c: the sidecar's incremental /api/v1/series
 * reader fed arbitrary bytes in pieces sized by the first input byte; the
 * emitted label sets must hold NUL-terminated strings. */
#include <stdint.h>
#include <string.h>

#include "sidecar_int.h"

static int emit(const labels_set *ls, void *arg) {
  size_t *total = arg;
  for (size_t i = 0; i < ls->n; i++) *total += strlen(ls->v[i].name) + strlen(ls->v[i].value);
  return *total > (1u << 24) ? ORR_ELIMIT : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t piece = (size_t)data[0] + 1;
  data++, size--;
  size_t total = 0;
  prom_series_json p;
  prom_series_json_init(&p, emit, &total);
  int rc = 0;
  for (size_t off = 0; off < size && rc == 0; off += piece)
    rc = prom_series_json_feed(&p, (const char *)data + off, size - off < piece ? size - off : piece);
  if (rc == 0) prom_series_json_end(&p);
  prom_series_json_free(&p);
  return 0;
}
