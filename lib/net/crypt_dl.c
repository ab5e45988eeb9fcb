/* crypt_dl.c: libcrypt, loaded on first use.
 *
 * Only basic_auth_users of --http.config needs bcrypt, yet linking libcrypt
 * made every orrery process map and relocate it at exec (~0.25 ms of wall
 * time per `orrery tools query`, measured on trivial programs with and
 * without it). So orrery does not link it: this file defines the two
 * functions of <crypt.h> that webconfig.c calls, and the first call opens
 * libcrypt.so.1 (libxcrypt; LGPL, so it stays a shared library) with dlopen
 * (lib/base/dl.c) and forwards to it. A missing libcrypt is a clear error
 * where it is needed: the loader's reason on stderr and exit status 1 (the
 * Debian package names libcrypt1 in Depends explicitly). */
#include <crypt.h>

#include "base.h"

/* X(name, return type, parameters, arguments) */
#define ORR__CRYPT_FUNCS(X)                                                                     \
  X(crypt_rn, char *, (const char *phrase, const char *setting, void *data, int size),          \
    (phrase, setting, data, size))                                                              \
  X(crypt_gensalt_rn, char *,                                                                   \
    (const char *prefix, unsigned long count, const char *rbytes, int nrbytes, char *output,    \
     int output_size),                                                                          \
    (prefix, count, rbytes, nrbytes, output, output_size))

ORR_DL_SHIM(ORR__CRYPT_FUNCS, "libcrypt.so.1", "libcrypt", "install libcrypt1")
