/* fuzz_base_float.c: orr_format_float and orr_format_float_json (Ryu's
 * digits) read back as the same double and never use more than Go's
 * shortest form could; the SSE4.2 and table CRC32C paths agree on the same
 * bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

uint32_t orr__crc32c_sw(uint32_t crc, const void *p, size_t n);
uint32_t orr__crc32c_hw(uint32_t crc, const void *p, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (orr__crc32c_sw(0, data, size) != orr__crc32c_hw(0, data, size)) abort();
  if (size > 3 && orr__crc32c_sw(0x5a5a5a5au, data + 3, size - 3) !=
                      orr__crc32c_hw(0x5a5a5a5au, data + 3, size - 3))
    abort();
  for (size_t off = 0; off + 8 <= size; off += 8) {
    double d;
    memcpy(&d, data + off, 8);
    char out[64];
    int n = orr_format_float(d, out, sizeof(out));
    if (n <= 0 || n > 24 || (size_t)n != strlen(out)) abort();
    if (isnan(d)) {
      if (strcmp(out, "NaN") != 0) abort();
      continue;
    }
    double back = strtod(out[0] == '+' ? out + 1 : out, NULL);
    if (memcmp(&back, &d, 8) != 0) abort();
    /* Go's %g shape: an exponent, when present, has a sign and 2+ digits. */
    const char *e = strchr(out, 'e');
    if (e && (!(e[1] == '+' || e[1] == '-') || strlen(e + 2) < 2)) abort();
    /* The JSON layout (Ryu's digits, 'f' or 'e') reads back too. */
    n = orr_format_float_json(d, out, sizeof(out));
    if (n <= 0 || n > 48 || (size_t)n != strlen(out)) abort();
    back = strtod(out, NULL);
    if (memcmp(&back, &d, 8) != 0) abort();
  }
  return 0;
}
