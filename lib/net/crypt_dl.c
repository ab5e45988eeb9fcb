/* crypt_dl.c: libcrypt, loaded on first use.
 *
 * Only basic_auth_users of --http.config needs bcrypt, yet linking libcrypt
 * made every orrery process map and relocate it at exec (~0.25 ms of wall
 * time per `orrery tools query`, measured on trivial programs with and
 * without it). So orrery does not link it: this file defines the two
 * functions of <crypt.h> that webconfig.c calls, and the first call opens
 * libcrypt.so.1 (libxcrypt; LGPL, so it stays a shared library) with dlopen
 * and forwards to it. A missing libcrypt is a clear error where it is
 * needed: the loader's reason on stderr and exit status 1 (the Debian
 * package names libcrypt1 in Depends explicitly). */
#include <crypt.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define ORR__CRYPT_SONAME "libcrypt.so.1"

/* X(name, return type, parameters, arguments) */
#define ORR__CRYPT_FUNCS(X)                                                                     \
  X(crypt_rn, char *, (const char *phrase, const char *setting, void *data, int size),          \
    (phrase, setting, data, size))                                                              \
  X(crypt_gensalt_rn, char *,                                                                   \
    (const char *prefix, unsigned long count, const char *rbytes, int nrbytes, char *output,    \
     int output_size),                                                                          \
    (prefix, count, rbytes, nrbytes, output, output_size))

static struct {
#define ORR__CRYPT_FIELD(name, ret, params, args) ret(*name) params;
  ORR__CRYPT_FUNCS(ORR__CRYPT_FIELD)
#undef ORR__CRYPT_FIELD
} orr__crypt;

static pthread_once_t orr__crypt_once = PTHREAD_ONCE_INIT;

static void orr__crypt_fail(const char *why) {
  fprintf(stderr, "orrery: cannot load libcrypt (%s): install libcrypt1\n",
          why ? why : "unknown error");
  exit(1);
}

static void orr__crypt_load(void) {
  void *h = dlopen(ORR__CRYPT_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!h) orr__crypt_fail(dlerror());
  /* dlsym's void * becomes a function pointer through a union: ISO C has
   * no conversion between the two, POSIX guarantees the representation. */
#define ORR__CRYPT_LOAD(name, ret, params, args) \
  {                                              \
    union {                                      \
      void *obj;                                 \
      ret(*fn) params;                           \
    } u = {.obj = dlsym(h, #name)};              \
    if (!u.obj) orr__crypt_fail(dlerror());      \
    orr__crypt.name = u.fn;                      \
  }
  ORR__CRYPT_FUNCS(ORR__CRYPT_LOAD)
#undef ORR__CRYPT_LOAD
}

#define ORR__CRYPT_DEFINE(name, ret, params, args)     \
  ret name params {                                    \
    pthread_once(&orr__crypt_once, orr__crypt_load);   \
    return orr__crypt.name args;                       \
  }
ORR__CRYPT_FUNCS(ORR__CRYPT_DEFINE)
#undef ORR__CRYPT_DEFINE
