/* fuzz_expfmt_parse.c: arbitrary bytes as a /metrics or /federate body.
 * The parse ends with 0 or ORR_EINVAL and a "line N: ..." message; every
 * sample it delivered has a valid metric name, sorted unique label names
 * and NUL-free strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expfmt.h"

static int check(const expfmt_sample *s, void *arg) {
  (void)arg;
  const char *name = labels_get(&s->labels, "__name__");
  if (!name || !labels_valid_metric_name(name, strlen(name))) abort();
  for (size_t i = 0; i < s->labels.n; i++) {
    if (!s->labels.v[i].name || !s->labels.v[i].value) abort();
    if (i && strcmp(s->labels.v[i - 1].name, s->labels.v[i].name) >= 0) abort();
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  orr_arena *a = orr_arena_new(0);
  if (!a) return 0;
  char err[256];
  int rc = expfmt_parse((const char *)data, size, a, check, NULL, err, sizeof(err));
  if (rc == ORR_EINVAL && strncmp(err, "line ", 5) != 0) abort();
  if (rc != 0 && rc != ORR_EINVAL && rc != ORR_ENOMEM) abort();
  orr_arena_destroy(a);
  return 0;
}
