/* fuzz_compact_web_entry.c: arbitrary bytes as the objects of one block the
 * blocks page reads from the bucket — meta.json, deletion-mark.json and
 * no-compact-mark.json, split at NUL bytes (a missing part: no marker). An
 * entry is a JSON object with a "marks" object and a "sizeBytes" integer
 * not below 0; anything else is ORR_ECORRUPT with no entry. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compact_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  const char *part[3] = {NULL, NULL, NULL};
  size_t len[3] = {0, 0, 0};
  for (int i = 0; i < 3 && p <= end; i++) {
    const char *z = memchr(p, 0, (size_t)(end - p));
    part[i] = p;
    len[i] = (size_t)((z ? z : end) - p);
    if (!z) break;
    p = z + 1;
  }
  compact_web_objects o = {part[0], len[0], part[1], len[1], part[2], len[2], size};
  json_t *out = NULL;
  bool has_files;
  char err[256];
  int rc = compact__web_entry(&o, &out, &has_files, err, sizeof(err));
  if (rc == 0) {
    json_t *sz = json_object_get(out, "sizeBytes");
    if (!json_is_object(out) || !json_is_object(json_object_get(out, "marks")) ||
        !json_is_integer(sz) || json_integer_value(sz) < 0)
      abort();
    char *s = json_dumps(out, JSON_COMPACT);
    if (!s) abort();
    free(s);
  } else if (out || (rc != ORR_ECORRUPT && rc != ORR_ENOMEM)) {
    abort();
  }
  json_decref(out);
  return 0;
}
