/* fuzz_objstore_config.c: arbitrary bytes as a Thanos objstore YAML config.
 * A config is either refused with one "objstore config: " line or parsed
 * into one whose required fields are set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  objstore_config c;
  char err[512];
  err[0] = '\0';
  int rc = objstore_config_parse((const char *)data, size, &c, err, sizeof err);
  if (rc == 0) {
    if (!c.prefix) abort();
    if (*c.prefix && objstore_key_valid(c.prefix) != 0) abort();
    if (c.type == OBJSTORE_FILESYSTEM) {
      if (!c.directory || !*c.directory) abort();
    } else if (c.type == OBJSTORE_S3) {
      if (!c.bucket || !*c.bucket || !c.endpoint || !*c.endpoint || !c.region || !*c.region)
        abort();
      if (c.part_size < 5 * 1024 * 1024 || (c.list_version != 1 && c.list_version != 2)) abort();
    } else {
      abort();
    }
    objstore_config_free(&c);
  } else if (rc == ORR_EINVAL) {
    if (strncmp(err, "objstore config: ", 17) != 0 || memchr(err, '\0', sizeof err) == NULL) abort();
  } else if (rc != ORR_ENOMEM) {
    abort();
  }
  return 0;
}
