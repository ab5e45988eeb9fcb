/* fuzz_promql_api_reader.c: the query API's matrix reader (promql.h, "API
 * reader") fed arbitrary bytes in pieces sized by the first input byte;
 * every series handed out has sorted, NUL-terminated labels and points in
 * strictly increasing time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "promql.h"

static int check(const labels_set *ls, const promql_api_point *pts, size_t n, void *arg) {
  size_t *total = arg;
  for (size_t i = 0; i < ls->n; i++) {
    *total += strlen(ls->v[i].name) + strlen(ls->v[i].value);
    if (i && strcmp(ls->v[i - 1].name, ls->v[i].name) >= 0) abort();
  }
  for (size_t i = 1; i < n; i++)
    if (pts[i - 1].t >= pts[i].t) abort();
  *total += n;
  return *total > (1u << 24) ? ORR_ELIMIT : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t piece = (size_t)data[0] + 1;
  data++, size--;
  size_t total = 0;
  promql_api_reader *r;
  if (promql_api_reader_new(check, &total, 100000, &r)) return 0;
  int rc = 0;
  for (size_t off = 0; off < size && rc == 0; off += piece)
    rc = promql_api_reader_feed(r, (const char *)data + off, size - off < piece ? size - off : piece);
  if (rc == 0) promql_api_reader_end(r);
  (void)promql_api_reader_message(r);
  promql_api_reader_free(r);
  return 0;
}
