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

#include <stdarg.h>

#include "base.h"

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

/* The functions forwarded, then the three variadic ones (called below). */
enum {
  NET__CURL_FUNCS(ORR_DL_INDEX) orr__dl_curl_easy_setopt,
  orr__dl_curl_easy_getinfo,
  orr__dl_curl_multi_setopt,
  NET__CURL_N
};
static const char *const net__curl_syms[] = {NET__CURL_FUNCS(ORR_DL_NAME) "curl_easy_setopt",
                                             "curl_easy_getinfo", "curl_multi_setopt"};
static orr_dl_fn net__curl_fns[NET__CURL_N];
static orr_dl_lib orr__dl_lib =
    ORR_DL_LIB("libcurl.so.4", "libcurl", "HTTP and S3 clients need it; install libcurl4",
               net__curl_syms, net__curl_fns);

NET__CURL_FUNCS(ORR_DL_DEFINE)

/* The variadic setters: |opt| / CURLOPTTYPE_OBJECTPOINT gives the type of
 * the one argument after it (curl.h's CURLOPTTYPE_* ranges, the same for
 * easy and multi options). */
#define NET__CURL_FORWARD_SETOPT(fn, handle, opt, ap)                                \
  do {                                                                               \
    long t_ = (long)(opt) / CURLOPTTYPE_OBJECTPOINT * CURLOPTTYPE_OBJECTPOINT;       \
    if (t_ == CURLOPTTYPE_LONG) return fn(handle, opt, va_arg(ap, long));            \
    if (t_ == CURLOPTTYPE_FUNCTIONPOINT)                                             \
      return fn(handle, opt, va_arg(ap, orr_dl_fn));                                 \
    if (t_ == CURLOPTTYPE_OFF_T) return fn(handle, opt, va_arg(ap, curl_off_t));     \
    return fn(handle, opt, va_arg(ap, void *)); /* object, string, slist, blob */    \
  } while (0)

static CURLcode net__curl_easy_setopt_v(CURL *h, CURLoption opt, va_list ap) {
  CURLcode (*fn)(CURL *, CURLoption, ...) =
      (CURLcode(*)(CURL *, CURLoption, ...))orr_dl_get(&orr__dl_lib, orr__dl_curl_easy_setopt);
  NET__CURL_FORWARD_SETOPT(fn, h, opt, ap);
}

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...) {
  va_list ap;
  va_start(ap, opt);
  CURLcode rc = net__curl_easy_setopt_v(h, opt, ap);
  va_end(ap);
  return rc;
}

static CURLMcode net__curl_multi_setopt_v(CURLM *m, CURLMoption opt, va_list ap) {
  CURLMcode (*fn)(CURLM *, CURLMoption, ...) =
      (CURLMcode(*)(CURLM *, CURLMoption, ...))orr_dl_get(&orr__dl_lib, orr__dl_curl_multi_setopt);
  NET__CURL_FORWARD_SETOPT(fn, m, opt, ap);
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...) {
  va_list ap;
  va_start(ap, opt);
  CURLMcode rc = net__curl_multi_setopt_v(m, opt, ap);
  va_end(ap);
  return rc;
}

/* curl_easy_getinfo's one argument is always a pointer to the result. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...) {
  CURLcode (*fn)(CURL *, CURLINFO, ...) =
      (CURLcode(*)(CURL *, CURLINFO, ...))orr_dl_get(&orr__dl_lib, orr__dl_curl_easy_getinfo);
  va_list ap;
  va_start(ap, info);
  void *out = va_arg(ap, void *);
  va_end(ap);
  return fn(h, info, out);
}
