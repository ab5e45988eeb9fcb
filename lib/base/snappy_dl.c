/* snappy_dl.c: libsnappy, loaded on first use.
 *
 * libsnappy is C++: linking it brings libstdc++ and libgcc_s into every
 * orrery process, about 7 ms of dynamic loading and relocation at exec for
 * commands that never compress (`orrery --version`, `tools query`). So
 * orrery does not link it: this file defines snappy-c.h's functions, and the
 * first call opens libsnappy.so.1 with dlopen and forwards to it. Callers
 * include <snappy-c.h> as usual. A missing libsnappy is a clear error where
 * it is needed: the loader's reason on stderr and exit status 1 (the Debian
 * package names libsnappy1v5 in Depends explicitly). */
#include <snappy-c.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define ORR__SNAPPY_SONAME "libsnappy.so.1"

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

static struct {
#define ORR__SNAPPY_FIELD(name, ret, params, args) ret(*name) params;
  ORR__SNAPPY_FUNCS(ORR__SNAPPY_FIELD)
#undef ORR__SNAPPY_FIELD
} orr__snappy;

static pthread_once_t orr__snappy_once = PTHREAD_ONCE_INIT;

static void orr__snappy_fail(const char *why) {
  fprintf(stderr, "orrery: cannot load libsnappy (%s): install libsnappy1v5\n",
          why ? why : "unknown error");
  exit(1);
}

static void orr__snappy_load(void) {
  void *h = dlopen(ORR__SNAPPY_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!h) orr__snappy_fail(dlerror());
  /* dlsym's void * becomes a function pointer through a union: ISO C has
   * no conversion between the two, POSIX guarantees the representation. */
#define ORR__SNAPPY_LOAD(name, ret, params, args) \
  {                                               \
    union {                                       \
      void *obj;                                  \
      ret(*fn) params;                            \
    } u = {.obj = dlsym(h, #name)};               \
    if (!u.obj) orr__snappy_fail(dlerror());      \
    orr__snappy.name = u.fn;                      \
  }
  ORR__SNAPPY_FUNCS(ORR__SNAPPY_LOAD)
#undef ORR__SNAPPY_LOAD
}

#define ORR__SNAPPY_DEFINE(name, ret, params, args)      \
  ret name params {                                      \
    pthread_once(&orr__snappy_once, orr__snappy_load);   \
    return orr__snappy.name args;                        \
  }
ORR__SNAPPY_FUNCS(ORR__SNAPPY_DEFINE)
#undef ORR__SNAPPY_DEFINE
