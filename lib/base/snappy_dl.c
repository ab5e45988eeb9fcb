/* snappy_dl.c: libsnappy, loaded on first use.
 *
 * libsnappy is C++: linking it brings libstdc++ and libgcc_s into every
 * orrery process, about 7 ms of dynamic loading and relocation at exec for
 * commands that never compress (`orrery --version`, `tools query`). So
 * orrery does not link it: this file defines snappy-c.h's functions, and the
 * first call opens libsnappy.so.1 with dlopen (dl.c) and forwards to it. Callers
 * include <snappy-c.h> as usual. A missing libsnappy is a clear error where
 * it is needed: the loader's reason on stderr and exit status 1 (the Debian
 * package names libsnappy1v5 in Depends explicitly). */
#include <snappy-c.h>

#include "base.h"

/* X(name, return type, parameters, arguments) */
#define ORR__SNAPPY_FUNCS(X)                                                                    \
  X(snappy_compress, snappy_status, (const char *in, size_t n, char *out, size_t *out_n),      \
    (in, n, out, out_n))                                                                        \
  X(snappy_uncompress, snappy_status, (const char *in, size_t n, char *out, size_t *out_n),    \
    (in, n, out, out_n))                                                                        \
  X(snappy_max_compressed_length, size_t, (size_t n), (n))                                      \
  X(snappy_uncompressed_length, snappy_status, (const char *in, size_t n, size_t *result),     \
    (in, n, result))                                                                            \
  X(snappy_validate_compressed_buffer, snappy_status, (const char *in, size_t n), (in, n))

ORR_DL_SHIM(ORR__SNAPPY_FUNCS, "libsnappy.so.1", "libsnappy", "install libsnappy1v5")
