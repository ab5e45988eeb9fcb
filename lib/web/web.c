/* web.c: the web UI's sites — a daemon's pages and the files built into
 * the binary (web_int.h), gzip-compressed as stored when the client accepts
 * it, inflated per request otherwise; strong ETags and revalidation; the
 * redirects of a site under a path prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "web.h"
#include "web_int.h"

static const web_asset *find_asset(const char *name) {
  for (size_t i = 0; i < web_nassets; i++)
    if (strcmp(web_assets[i].name, name) == 0) return &web_assets[i];
  return NULL;
}

bool web_accepts_gzip(const char *ae) {
  for (const char *p = ae; p && *p;) {
    p += strspn(p, " \t,");
    size_t n = strcspn(p, ",;");
    const char *end = p + strcspn(p, ",");
    if ((n >= 4 && strncasecmp(p, "gzip", 4) == 0 && (n == 4 || p[4] == ' ')) ||
        (n == 1 && *p == '*')) {
      const char *q = memchr(p, ';', (size_t)(end - p));
      if (!q) return true;
      const char *qv = strstr(q, "q=");
      if (!qv || qv > end || strtod(qv + 2, NULL) > 0) return true;
      return false;
    }
    p = end;
  }
  return false;
}

static void serve_asset(net_http_req *req, const web_asset *a) {
  net_http_resp_header(req, "ETag", a->etag);
  /* Revalidated on each load (a 304 is cheap), so an upgraded binary's page
   * is never mixed with an older cached script. */
  net_http_resp_header(req, "Cache-Control", "no-cache");
  net_http_resp_header(req, "Vary", "Accept-Encoding");
  net_http_resp_header(req, "X-Content-Type-Options", "nosniff");
  const char *inm = net_http_req_header(req, "If-None-Match");
  if (inm && (strstr(inm, a->etag) || strcmp(inm, "*") == 0)) {
    net_http_respond(req, 304, NULL, NULL, 0);
    return;
  }
  if (web_accepts_gzip(net_http_req_header(req, "Accept-Encoding"))) {
    net_http_resp_header(req, "Content-Encoding", "gzip");
    net_http_respond(req, 200, a->ctype, a->gz, a->gz_len);
    return;
  }
  orr_buf b = {0};
  if (orr_buf_reserve(&b, a->len + 1) != 0) {
    net_http_respond_api_error(req, "internal", "out of memory");
    return;
  }
  z_stream z;
  memset(&z, 0, sizeof(z));
  int ok = inflateInit2(&z, 15 + 16) == Z_OK;
  if (ok) {
    z.next_in = (Bytef *)a->gz;
    z.avail_in = (uInt)a->gz_len;
    z.next_out = (Bytef *)b.data;
    z.avail_out = (uInt)(a->len + 1);
    ok = inflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out == a->len;
    inflateEnd(&z);
  }
  if (!ok) {
    orr_buf_free(&b);
    net_http_respond_api_error(req, "internal", "cannot inflate a built-in asset");
    return;
  }
  b.len = a->len;
  net_http_respond_buf(req, 200, a->ctype, &b);
}

static void handle_page(net_http_req *req, void *arg) {
  const web_site *site = arg;
  const web_asset *a = find_asset(site->page);
  if (!a) {
    net_http_respondf(req, 404, "404 page not found\n");
    return;
  }
  serve_asset(req, a);
}

static void handle_static(net_http_req *req, void *arg) {
  (void)arg;
  const char *name = net_http_req_var(req, "file");
  const web_asset *a = name ? find_asset(name) : NULL;
  if (!a) {
    net_http_respondf(req, 404, "404 page not found\n");
    return;
  }
  serve_asset(req, a);
}

static void handle_redirect(net_http_req *req, void *arg) {
  const web_site *site = arg;
  net_http_resp_header(req, "Location", site->redirect);
  net_http_respondf(req, 302, "<a href=\"%s\">Found</a>.\n", site->redirect);
}

int web_prefix(const char *in, char *out, size_t n) {
  if (!in) in = "";
  while (*in == '/') in++;
  size_t len = strlen(in);
  while (len && in[len - 1] == '/') len--;
  if (len + 2 > n || len + 2 > WEB_PREFIX_MAX) return ORR_EINVAL;
  if (len == 0) {
    out[0] = 0;
    return 0;
  }
  out[0] = '/';
  memcpy(out + 1, in, len);
  out[len + 1] = 0;
  return strpbrk(out, "?#*:") ? ORR_EINVAL : 0;
}

int web_register(net_http_router *r, web_site *site, const char *route_prefix,
                 const char *external_prefix) {
  const unsigned m = NET_HTTP_GET | NET_HTTP_HEAD;
  char rp[WEB_PREFIX_MAX], ep[WEB_PREFIX_MAX], pat[WEB_PREFIX_MAX + 32];
  if (web_prefix(route_prefix, rp, sizeof(rp)) || web_prefix(external_prefix, ep, sizeof(ep)) ||
      !find_asset(site->page) || strlen(site->home) > 30)
    return ORR_EINVAL;
  /* As Prometheus: the external prefix defaults to the route prefix. */
  snprintf(site->redirect, sizeof(site->redirect), "%s%s", *ep ? ep : rp, site->home);
  int rc;
  bool root_is_page = false;
  for (const char *const *p = site->paths; *p; p++) {
    if (strlen(*p) > 30) return ORR_EINVAL;
    if (strcmp(*p, "/") == 0) root_is_page = true;
    snprintf(pat, sizeof(pat), "%s%s", rp, *p);
    if ((rc = net_http_router_add(r, m, pat, "web", handle_page, site))) return rc;
  }
  if (*rp) {
    /* The prefix without its slash: relative URLs would miss the prefix. */
    if ((rc = net_http_router_add(r, m, rp, "web", handle_redirect, site))) return rc;
  }
  if (*rp || !root_is_page) {
    if ((rc = net_http_router_add(r, m, "/", "web", handle_redirect, site))) return rc;
  }
  snprintf(pat, sizeof(pat), "%s/static/*file", rp);
  return net_http_router_add(r, m, pat, "static", handle_static, NULL);
}
