/* curl_dl.c: libcurl, loaded on first use.
 *
 * libcurl links some twenty-five shared libraries (GnuTLS, Kerberos, LDAP,
 * libssh2, librtmp, libidn2, brotli, ...); the dynamic loader mapping and
 * relocating them at exec took about 12 ms of every orrery process, also of
 * the short ones that never speak HTTP (`orrery --version`, `tools query`).
 * So orrery does not link libcurl: this file defines the curl_* functions
 * the project calls, and the first call opens libcurl.so.4 with dlopen and
 * forwards to it. Callers include <curl/curl.h> and call curl as usual.
 *
 * A missing libcurl is a clear error where it is needed: the process prints
 * the loader's reason and exits 1 (the Debian package depends on libcurl4
 * explicitly, since ${shlibs:Depends} no longer sees it).
 *
 * curl_easy_setopt and curl_multi_setopt are variadic; the option number
 * says the argument's type (CURLOPTTYPE_*: long, object pointer, function
 * pointer, curl_off_t, blob pointer), as in libcurl itself, so the argument
 * is read with its own type and passed on. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define NET__CURL_SONAME "libcurl.so.4"

/* X(name, return type, parameters): the non-variadic functions forwarded. */
#define NET__CURL_FUNCS(X)                                                                   \
  X(curl_global_init, CURLcode, (long flags), (flags))                                       \
  X(curl_easy_init, CURL *, (void), ())                                                      \
  X(curl_easy_cleanup, void, (CURL * h), (h))                                                \
  X(curl_easy_pause, CURLcode, (CURL * h, int mask), (h, mask))                              \
  X(curl_easy_strerror, const char *, (CURLcode c), (c))                                     \
  X(curl_multi_init, CURLM *, (void), ())                                                    \
  X(curl_multi_cleanup, CURLMcode, (CURLM * m), (m))                                         \
  X(curl_multi_add_handle, CURLMcode, (CURLM * m, CURL * h), (m, h))                         \
  X(curl_multi_remove_handle, CURLMcode, (CURLM * m, CURL * h), (m, h))                      \
  X(curl_multi_assign, CURLMcode, (CURLM * m, curl_socket_t s, void *p), (m, s, p))          \
  X(curl_multi_info_read, CURLMsg *, (CURLM * m, int *left), (m, left))                      \
  X(curl_multi_socket_action, CURLMcode, (CURLM * m, curl_socket_t s, int ev, int *running), \
    (m, s, ev, running))                                                                     \
  X(curl_slist_append, struct curl_slist *, (struct curl_slist * l, const char *s), (l, s))  \
  X(curl_slist_free_all, void, (struct curl_slist * l), (l))

typedef void (*net__curl_fnptr)(void);

static struct {
#define NET__CURL_FIELD(name, ret, params, args) ret(*name) params;
  NET__CURL_FUNCS(NET__CURL_FIELD)
#undef NET__CURL_FIELD
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
} net__curl;

static pthread_once_t net__curl_once = PTHREAD_ONCE_INIT;

static void net__curl_fail(const char *why) {
  fprintf(stderr,
          "orrery: cannot load libcurl (%s): HTTP and S3 clients need it; install libcurl4\n",
          why ? why : "unknown error");
  exit(1);
}

static void *net__curl_sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (!p) net__curl_fail(dlerror());
  return p;
}

static void net__curl_load(void) {
  void *h = dlopen(NET__CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!h) net__curl_fail(dlerror());
  /* dlsym's void * becomes a function pointer through a union: ISO C has
   * no conversion between the two, POSIX guarantees the representation. */
#define NET__CURL_LOAD(name, ret, params, args)   \
  {                                                \
    union {                                        \
      void *obj;                                   \
      ret(*fn) params;                             \
    } u = {.obj = net__curl_sym(h, #name)};        \
    net__curl.name = u.fn;                         \
  }
  NET__CURL_FUNCS(NET__CURL_LOAD)
#undef NET__CURL_LOAD
  union {
    void *obj;
    CURLcode (*fn)(CURL *, CURLoption, ...);
  } es = {.obj = net__curl_sym(h, "curl_easy_setopt")};
  union {
    void *obj;
    CURLcode (*fn)(CURL *, CURLINFO, ...);
  } eg = {.obj = net__curl_sym(h, "curl_easy_getinfo")};
  union {
    void *obj;
    CURLMcode (*fn)(CURLM *, CURLMoption, ...);
  } ms = {.obj = net__curl_sym(h, "curl_multi_setopt")};
  net__curl.easy_setopt = es.fn;
  net__curl.easy_getinfo = eg.fn;
  net__curl.multi_setopt = ms.fn;
}

static void net__curl_need(void) { pthread_once(&net__curl_once, net__curl_load); }

#define NET__CURL_DEFINE(name, ret, params, args) \
  ret name params {                               \
    net__curl_need();                             \
    return net__curl.name args;                   \
  }
NET__CURL_FUNCS(NET__CURL_DEFINE)
#undef NET__CURL_DEFINE

/* The variadic setters: |opt| / CURLOPTTYPE_OBJECTPOINT gives the type of
 * the one argument after it (curl.h's CURLOPTTYPE_* ranges, the same for
 * easy and multi options). */
#define NET__CURL_FORWARD_SETOPT(fn, handle, opt, ap)                                \
  do {                                                                               \
    long t_ = (long)(opt) / CURLOPTTYPE_OBJECTPOINT * CURLOPTTYPE_OBJECTPOINT;       \
    if (t_ == CURLOPTTYPE_LONG) return fn(handle, opt, va_arg(ap, long));            \
    if (t_ == CURLOPTTYPE_FUNCTIONPOINT)                                             \
      return fn(handle, opt, va_arg(ap, net__curl_fnptr));                           \
    if (t_ == CURLOPTTYPE_OFF_T) return fn(handle, opt, va_arg(ap, curl_off_t));     \
    return fn(handle, opt, va_arg(ap, void *)); /* object, string, slist, blob */    \
  } while (0)

static CURLcode net__curl_easy_setopt_v(CURL *h, CURLoption opt, va_list ap) {
  NET__CURL_FORWARD_SETOPT(net__curl.easy_setopt, h, opt, ap);
}

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...) {
  net__curl_need();
  va_list ap;
  va_start(ap, opt);
  CURLcode rc = net__curl_easy_setopt_v(h, opt, ap);
  va_end(ap);
  return rc;
}

static CURLMcode net__curl_multi_setopt_v(CURLM *m, CURLMoption opt, va_list ap) {
  NET__CURL_FORWARD_SETOPT(net__curl.multi_setopt, m, opt, ap);
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...) {
  net__curl_need();
  va_list ap;
  va_start(ap, opt);
  CURLMcode rc = net__curl_multi_setopt_v(m, opt, ap);
  va_end(ap);
  return rc;
}

/* curl_easy_getinfo's one argument is always a pointer to the result. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...) {
  net__curl_need();
  va_list ap;
  va_start(ap, info);
  void *out = va_arg(ap, void *);
  va_end(ap);
  return net__curl.easy_getinfo(h, info, out);
}
