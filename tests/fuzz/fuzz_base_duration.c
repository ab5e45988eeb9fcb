/* fuzz_base_duration.c: Prometheus durations, API timestamps and byte
 * sizes. Whatever parses must format back to something that parses to the
 * same value, and the formatted duration is canonical. */
#include <stdlib.h>
#include <string.h>

#include "base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = 0;

  int64_t ms, back;
  char out[48], out2[48];
  if (orr_parse_duration((const char *)data, size, &ms) == 0) {
    if (ms < 0) abort();
    orr_format_duration(ms, out, sizeof(out));
    if (orr_parse_duration(out, strlen(out), &back) != 0 || back != ms) abort();
    orr_format_duration(back, out2, sizeof(out2));
    if (strcmp(out, out2) != 0) abort();
  }
  if (size >= 8) { /* any int64 formats, and reads back when in range */
    int64_t v;
    memcpy(&v, data, 8);
    orr_format_duration(v, out, sizeof(out));
    if (strlen(out) >= sizeof(out) - 1) abort();
    if (v >= 0 && orr_parse_duration(out, strlen(out), &back) == 0 && back != v) abort();
  }

  if (orr_parse_time(s, &ms) == 0) {
    /* Years 0000-9999 round-trip through RFC3339. */
    if (ms >= -62167219200000LL && ms <= 253402300799999LL) {
      char t[40];
      orr_format_rfc3339(ms, t, sizeof(t));
      if (orr_parse_time(t, &back) != 0 || back != ms) abort();
    }
  }

  int64_t bytes;
  (void)orr_parse_bytes(s, &bytes);
  free(s);
  return 0;
}
