/* fuzz_web_headers.c: arbitrary bytes as the web UI's outside inputs — an
 * Accept-Encoding header (web_accepts_gzip) and a --web.*-prefix value
 * (web_prefix). A header naming neither gzip nor * never accepts gzip;
 * a prefix is refused or normalised to "" or "/..." without a trailing
 * slash or any of ?#*:. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web.h"

static bool has_gzip(const char *s) {
  for (; *s; s++)
    if (strncasecmp(s, "gzip", 4) == 0) return true;
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  if (web_accepts_gzip(s) && !has_gzip(s) && !strchr(s, '*')) abort();
  char out[WEB_PREFIX_MAX];
  if (web_prefix(s, out, sizeof(out)) == 0) {
    size_t n = strlen(out);
    if (n && (out[0] != '/' || out[n - 1] == '/' || strpbrk(out, "?#*:"))) abort();
  }
  free(s);
  return 0;
}
