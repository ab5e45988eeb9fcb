/* web: the web UI every daemon serves — the files of web/ built into the
 * binary (gzip-compressed at build time by cmake/embed_assets.cmake), the
 * handlers that serve them (gzip as stored, inflated for a client that does
 * not take gzip, strong ETags) and the paths of a site under Prometheus's
 * --web.route-prefix / --web.external-prefix. The gateway serves the query,
 * stores and status pages (index.html); the compactor and `orrery tools
 * bucket web` the blocks page (blocks.html). Each page's URLs are relative,
 * so it works under any prefix.
 * Prefix: web_. Depends on base, net, zlib. */
#ifndef ORR_WEB_H
#define ORR_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "base.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest normalised prefix, its NUL included. */
#define WEB_PREFIX_MAX 256

/* Normalises a --web.*-prefix value into |out| (|n| bytes): "" or "/a/b",
 * no trailing slash, as Prometheus and Thanos do. Returns 0 or ORR_EINVAL
 * (too long, or one of ?#*: in it). */
int web_prefix(const char *in, char *out, size_t n);

/* Whether |accept_encoding| (a request's Accept-Encoding, may be NULL) lists
 * gzip or * with a q other than 0. */
bool web_accepts_gzip(const char *accept_encoding);

/* One site: the pages one daemon serves. The caller fills the first three
 * members; web_register fills the rest. */
typedef struct web_site {
  const char *page;          /* the built-in file every page path serves: "index.html" */
  const char *const *paths;  /* page paths, NULL-terminated: "/", "/graph", ... */
  const char *home;          /* the page "/" and the bare prefix redirect to: "/graph" */
  char redirect[WEB_PREFIX_MAX + 32]; /* <external prefix><home> */
} web_site;

/* Adds |site|'s pages and the built-in files (<prefix>/static/<file>) to
 * |r|, under |route_prefix| (--web.route-prefix; NULL or "": the root).
 * Under a prefix, the prefix itself and "/" redirect to <external
 * prefix><home>, where the external prefix (--web.external-prefix, the path
 * a reverse proxy strips) defaults to the route prefix; at the root, "/"
 * redirects there unless it is one of the pages. |site| is borrowed until
 * |r| is freed. Returns 0, ORR_EINVAL for a bad prefix or a page file not
 * built in, or ORR_ENOMEM. */
int web_register(net_http_router *r, web_site *site, const char *route_prefix,
                 const char *external_prefix);

#ifdef __cplusplus
}
#endif
#endif /* ORR_WEB_H */
