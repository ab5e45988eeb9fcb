/* http_parse.c: the HTTP/1.1 request parser without I/O — http-parser
 * callbacks assemble one request at a time (method, target, decoded path,
 * headers, body, Go-style form/query parameters) and enforce size limits.
 *
 * Design notes
 * 1. One request is assembled at a time into its own arena; on
 *    message-complete the parser pauses so that bytes of a pipelined next
 *    request stay unconsumed until the caller has finished with this one.
 * 2. Fragments of the URL, header names and values arrive split across
 *    feeds; they are gathered in growable buffers and copied into the arena
 *    when complete. Every byte counted against a limit is counted before it
 *    is stored, so a connection's parser memory is bounded by the limits.
 * 3. After an error the parser is dead; the caller answers err_status and
 *    closes the connection. */
#include <string.h>
#include <strings.h>

#include "net_int.h"

#define PS(p) ((net__http_parse *)(p)->data)

/* Each header costs ~60 bytes of bookkeeping whatever its size; a count
 * limit keeps a flood of tiny headers from multiplying max_header. */
#define MAX_HEADERS 1024

/* Records the error; the callback's nonzero return stops the parser. -1,
 * because 1 and 2 from on_headers_complete mean "no body" and "upgrade". */
static int fail(net__http_parse *ps, int status, const char *msg) {
  ps->err_status = status;
  ps->err_msg = msg;
  return -1;
}

static int start_arena(net__http_parse *ps) {
  if (ps->arena) return 0;
  ps->arena = orr_arena_new(4096);
  return ps->arena ? 0 : -1;
}

static int on_message_begin(http_parser *p) {
  net__http_parse *ps = PS(p);
  ps->in_message = true;
  ps->start_ns = orr_mono_ns();
  if (start_arena(ps) != 0) return fail(ps, 500, "out of memory");
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  net__http_parse *ps = PS(p);
  if (ps->url.len + len > ps->max_url) return fail(ps, 414, "request URI too long");
  ps->header_bytes += len;
  if (ps->header_bytes > ps->max_header) return fail(ps, 431, "request headers too large");
  if (orr_buf_append(&ps->url, at, len) != 0) return fail(ps, 500, "out of memory");
  return 0;
}

/* Copies the gathered header into the arena's header list. */
static int commit_header(net__http_parse *ps) {
  if (!ps->last_was_value) return 0;
  ps->last_was_value = false;
  const char *v = ps->value.data ? ps->value.data : "";
  size_t vn = ps->value.len;
  while (vn > 0 && (v[0] == ' ' || v[0] == '\t')) v++, vn--;
  while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) vn--;
  net_http_kv kv;
  kv.name = orr_arena_strndup(ps->arena, ps->field.data ? ps->field.data : "", ps->field.len);
  kv.value = orr_arena_strndup(ps->arena, v, vn);
  kv.value_len = vn;
  orr_buf_reset(&ps->field);
  orr_buf_reset(&ps->value);
  if (!kv.name || !kv.value || orr_buf_append(&ps->hdrs, &kv, sizeof(kv)) != 0) return -1;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  net__http_parse *ps = PS(p);
  ps->header_bytes += len;
  if (ps->header_bytes > ps->max_header) return fail(ps, 431, "request headers too large");
  if (commit_header(ps) != 0) return fail(ps, 500, "out of memory");
  if (ps->hdrs.len / sizeof(net_http_kv) >= MAX_HEADERS)
    return fail(ps, 431, "too many request headers");
  if (orr_buf_append(&ps->field, at, len) != 0) return fail(ps, 500, "out of memory");
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  net__http_parse *ps = PS(p);
  ps->header_bytes += len;
  if (ps->header_bytes > ps->max_header) return fail(ps, 431, "request headers too large");
  ps->last_was_value = true;
  if (orr_buf_append(&ps->value, at, len) != 0) return fail(ps, 500, "out of memory");
  return 0;
}

static int on_headers_complete(http_parser *p) {
  net__http_parse *ps = PS(p);
  if (commit_header(ps) != 0) return fail(ps, 500, "out of memory");
  if (p->method == HTTP_CONNECT) return fail(ps, 400, "CONNECT is not supported");
  /* http-parser reports "no Content-Length" as ULLONG_MAX. */
  if (p->content_length != (uint64_t)-1 && p->content_length > ps->max_body)
    return fail(ps, 413, "request body too large");
  ps->headers_done = true;
  const net_http_kv *h = (const net_http_kv *)ps->hdrs.data;
  for (size_t i = 0; i < ps->hdrs.len / sizeof(*h); i++)
    if (strcasecmp(h[i].name, "Expect") == 0 && strcasecmp(h[i].value, "100-continue") == 0 &&
        p->http_minor >= 1 && (p->content_length != (uint64_t)-1 || (p->flags & F_CHUNKED)) &&
        p->content_length != 0)
      ps->expect_continue = true;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  net__http_parse *ps = PS(p);
  if (ps->body.len + len > ps->max_body) return fail(ps, 413, "request body too large");
  if (orr_buf_append(&ps->body, at, len) != 0) return fail(ps, 500, "out of memory");
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int net__url_unescape(const char *in, size_t n, bool plus_space, char *out, size_t *outlen) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= n) return ORR_EINVAL;
      int h = hexval((unsigned char)in[i + 1]), l = hexval((unsigned char)in[i + 2]);
      if (h < 0 || l < 0) return ORR_EINVAL;
      out[o++] = (char)(h * 16 + l);
      i += 2;
    } else if (c == '+' && plus_space) {
      out[o++] = ' ';
    } else {
      out[o++] = c;
    }
  }
  out[o] = '\0';
  *outlen = o;
  return 0;
}

int net__parse_query(orr_arena *a, const char *q, size_t n, orr_buf *kv) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && q[j] != '&') j++;
    const char *pair = q + i;
    size_t plen = j - i;
    i = j + 1;
    if (plen == 0 || memchr(pair, ';', plen)) continue; /* Go: ';' is an error, skipped */
    const char *eq = memchr(pair, '=', plen);
    size_t klen = eq ? (size_t)(eq - pair) : plen;
    size_t vlen = eq ? plen - klen - 1 : 0;
    char *k = orr_arena_alloc(a, klen + 1);
    char *v = orr_arena_alloc(a, vlen + 1);
    if (!k || !v) return ORR_ENOMEM;
    size_t kn, vn;
    if (net__url_unescape(pair, klen, true, k, &kn) != 0) continue;
    if (net__url_unescape(eq ? eq + 1 : "", vlen, true, v, &vn) != 0) continue;
    net_http_kv e = {k, v, vn};
    if (orr_buf_append(kv, &e, sizeof(e)) != 0) return ORR_ENOMEM;
  }
  return 0;
}

static const char *find_header(const net_http_kv *h, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(h[i].name, name) == 0) return h[i].value;
  return NULL;
}

/* Whether |ct| is application/x-www-form-urlencoded (parameters ignored). */
static bool is_form(const char *ct) {
  if (!ct) return false;
  static const char form[] = "application/x-www-form-urlencoded";
  size_t n = strlen(form);
  if (strncasecmp(ct, form, n) != 0) return false;
  return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

static int build_msg(net__http_parse *ps) {
  http_parser *p = &ps->p;
  orr_arena *a = ps->arena;
  net__http_msg *m = orr_arena_calloc(a, 1, sizeof(*m));
  if (!m) return fail(ps, 500, "out of memory");
  m->arena = a;
  m->method = http_method_str((enum http_method)p->method);
  m->http_major = p->http_major;
  m->http_minor = p->http_minor;
  m->keep_alive = http_should_keep_alive(p) != 0 && !p->upgrade;
  m->start_ns = ps->start_ns;
  m->nheaders = ps->hdrs.len / sizeof(net_http_kv);
  m->headers = orr_arena_alloc(a, ps->hdrs.len + 1);
  m->target = orr_arena_strndup(a, ps->url.data ? ps->url.data : "", ps->url.len);
  m->body = orr_arena_strndup(a, ps->body.data ? ps->body.data : "", ps->body.len);
  m->body_len = ps->body.len;
  if (!m->headers || !m->target || !m->body) return fail(ps, 500, "out of memory");
  if (ps->hdrs.len) memcpy(m->headers, ps->hdrs.data, ps->hdrs.len);

  /* Split the target into path and query: origin-form "/p?q", absolute-form
   * "http://h/p?q", or "*". */
  const char *t = m->target;
  size_t tlen = ps->url.len;
  const char *path = t, *query = NULL;
  size_t plen = tlen, qlen = 0;
  if (t[0] != '/') {
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (tlen == 1 && t[0] == '*') {
      plen = 1;
    } else if (http_parser_parse_url(t, tlen, 0, &u) != 0) {
      return fail(ps, 400, "malformed request target");
    } else {
      path = (u.field_set & (1 << UF_PATH)) ? t + u.field_data[UF_PATH].off : "/";
      plen = (u.field_set & (1 << UF_PATH)) ? u.field_data[UF_PATH].len : 1;
      if (u.field_set & (1 << UF_QUERY)) {
        query = t + u.field_data[UF_QUERY].off;
        qlen = u.field_data[UF_QUERY].len;
      }
    }
  } else {
    const char *qm = memchr(t, '?', tlen);
    if (qm) {
      plen = (size_t)(qm - t);
      query = qm + 1;
      qlen = tlen - plen - 1;
    }
    const char *hash = query ? memchr(query, '#', qlen) : memchr(t, '#', plen);
    if (hash) {
      if (query) qlen = (size_t)(hash - query);
      else plen = (size_t)(hash - t);
    }
  }
  m->path = orr_arena_alloc(a, plen + 1);
  if (!m->path) return fail(ps, 500, "out of memory");
  size_t dn;
  if (net__url_unescape(path, plen, false, m->path, &dn) != 0 || memchr(m->path, '\0', dn))
    return fail(ps, 400, "malformed escape in path");

  /* Parameters as Go's ParseForm: POST/PUT/PATCH form body first, then the
   * URL query. */
  orr_buf kv = {0};
  int rc = 0;
  if ((p->method == HTTP_POST || p->method == HTTP_PUT || p->method == HTTP_PATCH) &&
      is_form(find_header(m->headers, m->nheaders, "Content-Type")))
    rc = net__parse_query(a, m->body, m->body_len, &kv);
  if (rc == 0 && query) rc = net__parse_query(a, query, qlen, &kv);
  /* A multipart/form-data body's values come after the URL's, as Go's
   * FormValue sees them (ParseMultipartForm appends them to r.Form); a body
   * that does not parse adds nothing, as there. */
  const char *ct = find_header(m->headers, m->nheaders, "Content-Type");
  if (rc == 0 && m->body_len && ct && strncasecmp(ct, "multipart/", 10) == 0) {
    rc = net__parse_multipart(a, ct, m->body, m->body_len, &kv);
    if (rc == ORR_EINVAL) rc = 0;
  }
  if (rc == 0) {
    m->nparams = kv.len / sizeof(net_http_kv);
    m->params = orr_arena_alloc(a, kv.len + 1);
    if (!m->params) rc = ORR_ENOMEM;
    else if (kv.len) memcpy(m->params, kv.data, kv.len);
  }
  orr_buf_free(&kv);
  if (rc != 0) return fail(ps, 500, "out of memory");
  ps->ready = m;
  ps->arena = NULL; /* now owned by the message */
  return 0;
}

static int on_message_complete(http_parser *p) {
  net__http_parse *ps = PS(p);
  if (build_msg(ps) != 0) return 1;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
  .on_message_begin = on_message_begin,
  .on_url = on_url,
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
};

static void reset_request(net__http_parse *ps) {
  orr_buf_reset(&ps->url);
  orr_buf_reset(&ps->field);
  orr_buf_reset(&ps->value);
  orr_buf_reset(&ps->body);
  orr_buf_reset(&ps->hdrs);
  ps->header_bytes = 0;
  ps->in_message = false;
  ps->headers_done = false;
  ps->last_was_value = false;
  ps->expect_continue = false;
}

void net__http_parse_init(net__http_parse *ps, size_t max_header, size_t max_url,
                          size_t max_body) {
  memset(ps, 0, sizeof(*ps));
  /* Our own limits apply; http-parser's global one must not be lower. */
  http_parser_set_max_header_size(0x7fffffffu);
  http_parser_init(&ps->p, HTTP_REQUEST);
  ps->p.data = ps;
  ps->max_header = max_header;
  ps->max_url = max_url;
  ps->max_body = max_body;
}

void net__http_parse_free(net__http_parse *ps) {
  orr_buf_free(&ps->url);
  orr_buf_free(&ps->field);
  orr_buf_free(&ps->value);
  orr_buf_free(&ps->body);
  orr_buf_free(&ps->hdrs);
  orr_arena_destroy(ps->arena);
  ps->arena = NULL;
  if (ps->ready) orr_arena_destroy(ps->ready->arena);
  ps->ready = NULL;
}

size_t net__http_parse_feed(net__http_parse *ps, const char *data, size_t len, int *event) {
  if (ps->err_status) {
    *event = NET__HP_ERROR;
    return 0;
  }
  if (ps->ready) {
    *event = NET__HP_READY;
    return 0;
  }
  size_t n = http_parser_execute(&ps->p, &settings, data, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&ps->p);
  if (e == HPE_PAUSED && ps->ready) {
    *event = NET__HP_READY;
    return n;
  }
  if (e != HPE_OK || ps->err_status) {
    if (!ps->err_status) {
      ps->err_status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
      ps->err_msg = http_errno_description(e);
    }
    *event = NET__HP_ERROR;
    return n;
  }
  *event = NET__HP_MORE;
  return n;
}

net__http_msg *net__http_parse_take(net__http_parse *ps) {
  net__http_msg *m = ps->ready;
  ps->ready = NULL;
  reset_request(ps);
  http_parser_pause(&ps->p, 0);
  return m;
}
