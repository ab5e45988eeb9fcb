/* fuzz_base_flags.c: the flags parser over arbitrary argument vectors
 * (arguments are the input split at newlines). Errors are one line;
 * positional arguments are exactly the input's non-flag arguments. */
#include <stdlib.h>
#include <string.h>

#include "base.h"

static struct {
  const char *s;
  int b;
  int64_t i, d, by;
  double f;
  orr_strings many;
} o;

static const orr_flag flags[] = {
    {"str", ORR_FLAG_STRING, &o.s, "x", "", NULL},
    {"bool", ORR_FLAG_BOOL, &o.b, "true", "", NULL},
    {"int", ORR_FLAG_INT, &o.i, "5", "", NULL},
    {"dur", ORR_FLAG_DURATION, &o.d, "2m", "", NULL},
    {"bytes", ORR_FLAG_BYTES, &o.by, "1KiB", "", NULL},
    {"float", ORR_FLAG_FLOAT, &o.f, "0.5", "", NULL},
    {"many", ORR_FLAG_STRINGS, &o.many, "def", "", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *buf = malloc(size + 1);
  char **argv = malloc((size + 3) * sizeof(char *));
  if (!buf || !argv) goto out;
  memcpy(buf, data, size);
  buf[size] = 0;
  int argc = 0;
  argv[argc++] = "prog";
  for (char *p = buf;;) {
    argv[argc++] = p;
    char *nl = strchr(p, '\n');
    if (!nl) break;
    *nl = 0;
    p = nl + 1;
  }
  argv[argc] = NULL;
  orr_strings rest;
  char err[256];
  int rc = orr_flags_parse(flags, argc, argv, &rest, err, sizeof(err));
  if (rc == 0) {
    for (size_t k = 0; k < rest.n; k++) {
      const char *r = rest.v[k];
      if (r < buf || r > buf + size) abort(); /* points into argv */
    }
    if (o.many.n == 0) abort(); /* default or given values */
    orr_strings_free(&rest);
    orr_flags_free(flags);
  } else if (rc == ORR_EINVAL) {
    if (!err[0] || strchr(err, '\n')) abort(); /* one line */
    if (rest.n || rest.v) abort();
  } else if (rc != ORR_EEOF) {
    abort();
  }
out:
  free(buf);
  free(argv);
  return 0;
}
