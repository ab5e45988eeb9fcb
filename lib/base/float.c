/* float.c: Go-compatible shortest round-trip float formatting. */
#include <stdio.h>

#include "base.h"

int orr_format_float(double v, char *out, size_t outlen) {
  return snprintf(out, outlen, "%.17g", v); /* placeholder until the real one lands */
}
