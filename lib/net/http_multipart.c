/* http_multipart.c: multipart/form-data request bodies read as Go's
 * Request.ParseMultipartForm does for FormValue, so a client that posts a
 * form as multipart (curl -F, browsers' FormData) gets what Prometheus gives.
 *
 * Design notes
 * 1. All or nothing: any syntax error, or a limit passed, leaves |kv| as it
 *    was (Go's ReadForm returns an error and FormValue then sees only the
 *    URL's parameters).
 * 2. Only value parts count: a part with a non-empty filename is a file
 *    (Go's Form.File), a part without a name or whose disposition is not
 *    form-data is skipped. A quoted-printable part is decoded, as Go's
 *    NextPart does.
 * 3. Limits, as Go 1.20's: at most NET__MULTIPART_MAX_PARTS parts and
 *    NET__MULTIPART_MAX_HEADERS part headers; the body itself is already
 *    bounded by the server's max_body_bytes, and values are copied at most
 *    once, so memory stays within twice the body.
 * 4. Line endings "\r\n" or bare "\n", as Go detects them on the first
 *    boundary line; the delimiter is newline + "--" + boundary followed by
 *    "--" (the end) or optional blanks and a newline. */
#include <string.h>
#include <strings.h>

#include "net_int.h"

static bool is_lwsp(char c) { return c == ' ' || c == '\t'; }

static bool is_tspecial(char c) { return strchr("()<>@,;:\\\"/[]?=", c) != NULL; }

static bool is_token_char(char c) {
  return (unsigned char)c > 0x20 && (unsigned char)c < 0x7f && !is_tspecial(c);
}

/* Reads the parameter |want| (case-insensitive) of a header value of the form
 * "type; a=b; c=\"d\"" (as Go's mime.ParseMediaType, without RFC 2231
 * continuations; the type is checked by header_type_is). Returns 1 with the
 * value (in |a|) in *out, 0 when the parameter is absent, -1 on a syntax
 * error or no memory. */
static int header_param(orr_arena *a, const char *v, size_t n, const char *want, char **out) {
  size_t i = 0;
  /* skip the media type / disposition type */
  while (i < n && v[i] != ';') i++;
  int found = 0;
  while (i < n) {
    if (v[i] != ';') return -1;
    i++;
    while (i < n && is_lwsp(v[i])) i++;
    if (i == n) break; /* a trailing ";" is accepted */
    size_t ks = i;
    while (i < n && is_token_char(v[i])) i++;
    size_t kl = i - ks;
    if (kl == 0 || i >= n || v[i] != '=') return -1;
    i++;
    char *val = orr_arena_alloc(a, n - i + 1);
    if (!val) return -1;
    size_t vl = 0;
    if (i < n && v[i] == '"') {
      i++;
      bool closed = false;
      while (i < n) {
        char c = v[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < n) c = v[i++];
        val[vl++] = c;
      }
      if (!closed) return -1;
    } else {
      while (i < n && is_token_char(v[i])) val[vl++] = v[i++];
      if (vl == 0) return -1;
    }
    val[vl] = 0;
    while (i < n && is_lwsp(v[i])) i++;
    if (kl == strlen(want) && strncasecmp(v + ks, want, kl) == 0) {
      if (found) return -1; /* Go: duplicate parameter name */
      found = 1;
      *out = val;
    }
  }
  return found;
}

/* The first token of a header value (before ";"), trimmed, compared
 * case-insensitively with |want|. */
static bool header_type_is(const char *v, size_t n, const char *want) {
  size_t s = 0, e = 0;
  while (s < n && is_lwsp(v[s])) s++;
  e = s;
  while (e < n && v[e] != ';') e++;
  while (e > s && is_lwsp(v[e - 1])) e--;
  return e - s == strlen(want) && strncasecmp(v + s, want, e - s) == 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Quoted-printable decoding in place of |s| (length *n): "=XX" and soft
 * line breaks ("=" at the end of a line). Returns 0 or -1 on a bad escape. */
static int qp_decode(char *s, size_t *n) {
  size_t o = 0, len = *n;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '=') {
      s[o++] = s[i];
      continue;
    }
    size_t j = i + 1;
    while (j < len && is_lwsp(s[j])) j++;
    if (j < len && (s[j] == '\n' || (s[j] == '\r' && j + 1 < len && s[j + 1] == '\n'))) {
      i = s[j] == '\r' ? j + 1 : j; /* soft line break */
      continue;
    }
    if (j == len) { /* "=" ending the body */
      i = len;
      continue;
    }
    if (i + 2 >= len) return -1;
    int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
    if (h < 0 || l < 0) return -1;
    s[o++] = (char)(h * 16 + l);
    i += 2;
  }
  *n = o;
  return 0;
}

/* The end of the line starting at |i| (index of its "\n", or |n|). */
static size_t line_end(const char *b, size_t n, size_t i) {
  const char *nl = memchr(b + i, '\n', n - i);
  return nl ? (size_t)(nl - b) : n;
}

/* Whether b[i..e) (a line without its "\n", maybe ending in "\r") is the
 * boundary line: "--" boundary, then "--" (|*final|) or only blanks. */
static bool boundary_line(const char *b, size_t i, size_t e, const char *dash, size_t dl,
                          bool *final) {
  if (e > i && b[e - 1] == '\r') e--;
  if (e - i < dl || memcmp(b + i, dash, dl) != 0) return false;
  size_t k = i + dl;
  *final = false;
  if (e - k >= 2 && b[k] == '-' && b[k + 1] == '-') {
    *final = true;
    k += 2;
  }
  while (k < e && is_lwsp(b[k])) k++;
  return k == e;
}

int net__parse_multipart(orr_arena *a, const char *content_type, const char *body, size_t n,
                         orr_buf *kv) {
  if (!content_type) return ORR_EINVAL;
  size_t ctl = strlen(content_type);
  if (!header_type_is(content_type, ctl, "multipart/form-data")) return ORR_EINVAL;
  char *boundary = NULL;
  if (header_param(a, content_type, ctl, "boundary", &boundary) != 1 || !boundary[0])
    return ORR_EINVAL;
  size_t bl = strlen(boundary);
  char *dash = orr_arena_alloc(a, bl + 3);
  if (!dash) return ORR_ENOMEM;
  dash[0] = dash[1] = '-';
  memcpy(dash + 2, boundary, bl + 1);
  size_t dl = bl + 2;

  size_t start_len = kv->len; /* note 1: rolled back on any error */
  size_t i = 0, parts = 0, headers = 0;
  bool final = false;
  /* The preamble: lines up to the first boundary line. */
  for (;;) {
    if (i >= n) goto bad;
    size_t e = line_end(body, n, i);
    if (e == n) goto bad; /* the boundary line needs its newline */
    if (boundary_line(body, i, e, dash, dl, &final)) {
      i = e + 1;
      break;
    }
    i = e + 1;
  }
  while (!final) {
    if (++parts > NET__MULTIPART_MAX_PARTS) goto bad;
    /* Part headers up to an empty line. */
    const char *disp = NULL, *cte = NULL;
    size_t displ = 0, ctel = 0;
    for (;;) {
      if (i >= n) goto bad;
      size_t e = line_end(body, n, i);
      if (e == n) goto bad;
      size_t le = e > i && body[e - 1] == '\r' ? e - 1 : e;
      if (le == i) {
        i = e + 1;
        break;
      }
      if (is_lwsp(body[i])) goto bad; /* continuation lines: none in form-data */
      if (++headers > NET__MULTIPART_MAX_HEADERS) goto bad;
      const char *colon = memchr(body + i, ':', le - i);
      if (!colon || colon == body + i) goto bad;
      size_t nl = (size_t)(colon - (body + i));
      size_t vs = (size_t)(colon - body) + 1;
      while (vs < le && is_lwsp(body[vs])) vs++;
      size_t ve = le;
      while (ve > vs && is_lwsp(body[ve - 1])) ve--;
      if (nl == 19 && strncasecmp(body + i, "Content-Disposition", 19) == 0) {
        disp = body + vs;
        displ = ve - vs;
      } else if (nl == 25 && strncasecmp(body + i, "Content-Transfer-Encoding", 25) == 0) {
        cte = body + vs;
        ctel = ve - vs;
      }
      i = e + 1;
    }
    /* The body up to newline + dash + (final | blanks newline); an empty
     * body has the delimiter line right at its start. */
    size_t bs = i, be = 0, next = 0;
    bool found = false;
    if (bs < n) {
      size_t e = line_end(body, n, bs);
      bool fin;
      if (boundary_line(body, bs, e, dash, dl, &fin) && (e < n || fin)) {
        be = bs;
        next = e < n ? e + 1 : n;
        final = fin;
        found = true;
      }
    }
    for (size_t k = i; !found && k < n;) {
      const char *nlp = memchr(body + k, '\n', n - k);
      if (!nlp) break;
      size_t nlpos = (size_t)(nlp - body);
      size_t e = line_end(body, n, nlpos + 1);
      bool fin;
      if (e < n && boundary_line(body, nlpos + 1, e, dash, dl, &fin)) {
        be = nlpos > bs && body[nlpos - 1] == '\r' ? nlpos - 1 : nlpos;
        if (be < bs) be = bs;
        next = e + 1;
        final = fin;
        found = true;
        break;
      }
      if (e == n && nlpos + 1 < n) {
        /* the final delimiter may end the body without a newline */
        if (boundary_line(body, nlpos + 1, n, dash, dl, &fin) && fin) {
          be = nlpos > bs && body[nlpos - 1] == '\r' ? nlpos - 1 : nlpos;
          next = n;
          final = true;
          found = true;
          break;
        }
      }
      k = nlpos + 1;
    }
    if (!found) goto bad;
    i = next;
    /* note 2: values only */
    char *name = NULL, *filename = NULL;
    if (!disp || !header_type_is(disp, displ, "form-data")) continue;
    int r1 = header_param(a, disp, displ, "name", &name);
    int r2 = header_param(a, disp, displ, "filename", &filename);
    if (r1 < 0 || r2 < 0) continue; /* Go: an unparsable disposition has no name */
    if (r1 == 0 || !name[0]) continue;
    if (r2 == 1 && filename[0]) continue;
    size_t vl = be - bs;
    char *val = orr_arena_alloc(a, vl + 1);
    if (!val) goto oom;
    memcpy(val, body + bs, vl);
    if (cte && header_type_is(cte, ctel, "quoted-printable") && qp_decode(val, &vl) != 0) goto bad;
    val[vl] = 0;
    net_http_kv e = {name, val, vl};
    if (orr_buf_append(kv, &e, sizeof(e)) != 0) goto oom;
  }
  return 0;
bad:
  kv->len = start_len;
  return ORR_EINVAL;
oom:
  kv->len = start_len;
  return ORR_ENOMEM;
}
