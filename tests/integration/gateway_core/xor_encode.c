/* xor_encode.c: a helper for the gateway integration test — encodes the
 * samples given as arguments ("t:v", "t:stale") into one XOR chunk with
 * lib/tsdb and prints it as hex on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

int main(int argc, char **argv) {
  tsdb_xor_appender a;
  if (tsdb_xor_appender_init(&a)) return 1;
  for (int i = 1; i < argc; i++) {
    char *colon = strchr(argv[i], ':');
    if (!colon) return 2;
    long long t = strtoll(argv[i], NULL, 10);
    double v;
    if (!strcmp(colon + 1, "stale")) {
      unsigned long long bits = 0x7ff0000000000002ull;
      memcpy(&v, &bits, sizeof(v));
    } else {
      v = strtod(colon + 1, NULL);
    }
    if (tsdb_xor_append(&a, t, v)) return 3;
  }
  size_t len;
  const uint8_t *b = tsdb_xor_bytes(&a, &len);
  for (size_t i = 0; i < len; i++) printf("%02x", b[i]);
  printf("\n");
  tsdb_xor_appender_free(&a);
  return 0;
}
