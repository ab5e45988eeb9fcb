/* http_router.c: maps method and path to a handler — exact paths, ":var"
 * segments, a trailing "*rest" — with 404 and 405 (Allow) answers, and the
 * Prometheus API's JSON error response. Matching does no I/O. */
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

typedef struct route {
  unsigned methods;
  char *pattern;
  char *name;
  net_http_handler handler;
  void *arg;
} route;

struct net_http_router {
  route *routes;
  size_t n, cap;
};

static const char *const method_names[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS",
                                           "PATCH"};

unsigned net_http_method_bit(const char *method) {
  for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
    if (strcmp(method, method_names[i]) == 0) return 1u << i;
  return 0;
}

net_http_router *net_http_router_new(void) { return calloc(1, sizeof(net_http_router)); }

void net_http_router_free(net_http_router *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) {
    free(r->routes[i].pattern);
    free(r->routes[i].name);
  }
  free(r->routes);
  free(r);
}

/* A pattern starts with '/'; variables name a whole segment; "*var" only last. */
static bool pattern_ok(const char *p) {
  if (p[0] != '/') return false;
  for (const char *s = p + 1;;) {
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n > 0 && (s[0] == ':' || s[0] == '*') && n == 1) return false;
    if (n > 0 && s[0] == '*' && e) return false;
    if (!e) return true;
    s = e + 1;
  }
}

int net_http_router_add(net_http_router *r, unsigned methods, const char *pattern,
                        const char *name, net_http_handler handler, void *arg) {
  if (!r || !pattern || !handler || !methods || !pattern_ok(pattern)) return ORR_EINVAL;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    route *nr = realloc(r->routes, cap * sizeof(*nr));
    if (!nr) return ORR_ENOMEM;
    r->routes = nr;
    r->cap = cap;
  }
  route *rt = &r->routes[r->n];
  rt->methods = methods;
  rt->pattern = strdup(pattern);
  rt->name = strdup(name ? name : pattern);
  rt->handler = handler;
  rt->arg = arg;
  if (!rt->pattern || !rt->name) {
    free(rt->pattern);
    free(rt->name);
    return ORR_ENOMEM;
  }
  r->n++;
  return 0;
}

/* Matches |path| against |pat|; on success stores variables in |vars| (an
 * orr_buf of net_http_kv, strings in |a|) when |a| is non-NULL. */
static int match(const char *pat, const char *path, orr_arena *a, orr_buf *vars, bool *ok) {
  *ok = false;
  if (path[0] != '/') return 0;
  const char *p = pat + 1, *s = path + 1;
  for (;;) {
    const char *pe = strchr(p, '/');
    size_t pn = pe ? (size_t)(pe - p) : strlen(p);
    if (pn > 0 && p[0] == '*') {
      if (a) {
        net_http_kv kv = {orr_arena_strndup(a, p + 1, pn - 1), orr_arena_strdup(a, s), strlen(s)};
        if (!kv.name || !kv.value || orr_buf_append(vars, &kv, sizeof(kv)) != 0)
          return ORR_ENOMEM;
      }
      *ok = true;
      return 0;
    }
    const char *se = strchr(s, '/');
    size_t sn = se ? (size_t)(se - s) : strlen(s);
    if (pn > 0 && p[0] == ':') {
      if (sn == 0) return 0;
      if (a) {
        net_http_kv kv = {orr_arena_strndup(a, p + 1, pn - 1), orr_arena_strndup(a, s, sn), sn};
        if (!kv.name || !kv.value || orr_buf_append(vars, &kv, sizeof(kv)) != 0)
          return ORR_ENOMEM;
      }
    } else if (pn != sn || memcmp(p, s, pn) != 0) {
      return 0;
    }
    if (!pe || !se) {
      *ok = !pe && !se;
      return 0;
    }
    p = pe + 1;
    s = se + 1;
  }
}

int net__http_router_match(const net_http_router *r, const char *method, const char *path,
                           orr_arena *a, net__http_route_match *m) {
  memset(m, 0, sizeof(*m));
  unsigned bit = net_http_method_bit(method);
  for (size_t i = 0; i < r->n; i++) {
    const route *rt = &r->routes[i];
    bool ok;
    if (match(rt->pattern, path, NULL, NULL, &ok) != 0 || !ok) continue;
    if (!(rt->methods & bit)) {
      m->allow |= rt->methods;
      continue;
    }
    orr_buf vars = {0};
    int rc = match(rt->pattern, path, a, &vars, &ok);
    if (rc == 0) {
      m->nvars = vars.len / sizeof(net_http_kv);
      m->vars = orr_arena_alloc(a, vars.len + 1);
      if (!m->vars) rc = ORR_ENOMEM;
      else if (vars.len) memcpy(m->vars, vars.data, vars.len);
    }
    orr_buf_free(&vars);
    if (rc != 0) return rc;
    m->handler = rt->handler;
    m->arg = rt->arg;
    m->name = rt->name;
    return 200;
  }
  return m->allow ? 405 : 404;
}

void net_http_router_handle(net_http_req *req, void *arg) {
  net_http_router *r = arg;
  net__http_route_match m;
  int rc = net__http_router_match(r, net_http_req_method(req), net_http_req_path(req),
                                  net_http_req_arena(req), &m);
  if (rc == 200) {
    net__http_req_set_route(req, m.name, m.vars, m.nvars);
    m.handler(req, m.arg);
    return;
  }
  if (rc == 405) {
    char allow[128] = "";
    for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
      if (!(m.allow & (1u << i))) continue;
      if (allow[0]) strcat(allow, ", ");
      strcat(allow, method_names[i]);
    }
    net_http_resp_header(req, "Allow", allow);
    net_http_respond(req, 405, "text/plain; charset=utf-8", "Method Not Allowed\n", 19);
    return;
  }
  if (rc == 404) {
    net_http_respond(req, 404, "text/plain; charset=utf-8", "404 page not found\n", 19);
    return;
  }
  net_http_respond(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
}

int net_http_api_error_status(const char *t) {
  if (!t) return 500;
  if (strcmp(t, "bad_data") == 0) return 400;
  if (strcmp(t, "execution") == 0) return 422;
  if (strcmp(t, "canceled") == 0 || strcmp(t, "timeout") == 0) return 503;
  if (strcmp(t, "not_found") == 0) return 404;
  return 500; /* internal, unavailable and anything else, as Prometheus 2.42 */
}

void net_http_respond_api_error(net_http_req *req, const char *error_type, const char *msg) {
  orr_buf b = {0};
  const char *t = error_type ? error_type : "internal";
  const char *e = msg ? msg : "";
  orr_buf_puts(&b, "{\"status\":\"error\",\"errorType\":\"");
  orr_buf_json_escape(&b, t, strlen(t));
  orr_buf_puts(&b, "\",\"error\":\"");
  orr_buf_json_escape(&b, e, strlen(e));
  orr_buf_puts(&b, "\"}");
  net_http_respond_buf(req, net_http_api_error_status(t), "application/json", &b);
}
