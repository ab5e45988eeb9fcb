/* dl.c: opens a library the project does not link (libcurl, libsnappy,
 * OpenSSL, libcrypt: base.h, "libraries opened on first use") and looks up
 * the functions its shim forwards to, once, from whichever thread calls
 * first. */
#include <dlfcn.h>
#include <stdlib.h>

#include "base.h"

static void dl_fail(const orr_dl_lib *lib, const char *why) {
  fprintf(stderr, "orrery: cannot load %s (%s): %s\n", lib->name, why ? why : "unknown error",
          lib->help);
  exit(1);
}

void orr__dl_load(orr_dl_lib *lib) {
  pthread_mutex_lock(&lib->mu);
  if (atomic_load_explicit(&lib->loaded, memory_order_relaxed)) {
    pthread_mutex_unlock(&lib->mu);
    return;
  }
  void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
  if (!h) dl_fail(lib, dlerror());
  for (size_t i = 0; i < lib->n; i++) {
    /* dlsym's void * becomes a function pointer through a union: ISO C has
     * no conversion between the two, POSIX guarantees the representation. */
    union {
      void *obj;
      orr_dl_fn fn;
    } u = {.obj = dlsym(h, lib->syms[i])};
    if (!u.obj) dl_fail(lib, dlerror());
    lib->fns[i] = u.fn;
  }
  atomic_store_explicit(&lib->loaded, true, memory_order_release);
  pthread_mutex_unlock(&lib->mu);
}
