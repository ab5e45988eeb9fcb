/* s3_xml.c: the bounds-checked XML scanner for S3 responses (listings,
 * errors, multipart upload results) and the parsers built on it. Pure bytes,
 * no I/O: fuzzed by fuzz_s3_xml. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "objstore_int.h"

#define XML_MAX_DEPTH 16
#define XML_MAX_PATH 256

typedef struct xml_state {
  const char *p, *end;
  char path[XML_MAX_PATH];
  size_t plen;
  size_t name_at[XML_MAX_DEPTH]; /* offset of each open element's name in path */
  int depth;
  int had_child; /* the innermost open element has a child element */
  const char *text_start;
  orr_buf text;
} xml_state;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* XML name characters (ASCII subset, and any byte of a multibyte UTF-8
 * sequence); a name is never empty and holds no NUL. */
static int valid_name(const char *p, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == ':' || c == '-' || c == '.' || c >= 0x80))
      return 0;
  }
  return 1;
}

/* Appends the UTF-8 encoding of |cp| to |b|. */
static int put_utf8(orr_buf *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return ORR_ECORRUPT;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return orr_buf_append(b, u, n);
}

/* Decodes the character data |p|..|end| (entities) into |out| (reset first). */
static int decode_text(const char *p, const char *end, orr_buf *out) {
  orr_buf_reset(out);
  if (memchr(p, '\0', (size_t)(end - p))) return ORR_ECORRUPT; /* not a character of XML */
  if (orr_buf_reserve(out, (size_t)(end - p) + 1) != 0) return ORR_ENOMEM;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    if (!amp) {
      orr_buf_append(out, p, (size_t)(end - p));
      break;
    }
    orr_buf_append(out, p, (size_t)(amp - p));
    const char *semi = memchr(amp, ';', (size_t)(end - amp));
    if (!semi || semi - amp > 10) return ORR_ECORRUPT;
    const char *e = amp + 1;
    size_t en = (size_t)(semi - e);
    if (en == 2 && memcmp(e, "lt", 2) == 0) orr_buf_putc(out, '<');
    else if (en == 2 && memcmp(e, "gt", 2) == 0) orr_buf_putc(out, '>');
    else if (en == 3 && memcmp(e, "amp", 3) == 0) orr_buf_putc(out, '&');
    else if (en == 4 && memcmp(e, "quot", 4) == 0) orr_buf_putc(out, '"');
    else if (en == 4 && memcmp(e, "apos", 4) == 0) orr_buf_putc(out, '\'');
    else if (en >= 2 && e[0] == '#') {
      unsigned long cp = 0;
      int hex = e[1] == 'x' || e[1] == 'X';
      const char *d = e + 1 + hex;
      if (d >= semi) return ORR_ECORRUPT;
      for (; d < semi; d++) {
        int v;
        if (*d >= '0' && *d <= '9') v = *d - '0';
        else if (hex && *d >= 'a' && *d <= 'f') v = *d - 'a' + 10;
        else if (hex && *d >= 'A' && *d <= 'F') v = *d - 'A' + 10;
        else return ORR_ECORRUPT;
        cp = cp * (hex ? 16u : 10u) + (unsigned long)v;
        if (cp > 0x10FFFF) return ORR_ECORRUPT;
      }
      if (put_utf8(out, cp) != 0) return out->oom ? ORR_ENOMEM : ORR_ECORRUPT;
    } else {
      return ORR_ECORRUPT;
    }
    p = semi + 1;
  }
  if (orr_buf_putc(out, '\0') != 0) return ORR_ENOMEM;
  out->len--; /* keep the NUL out of the length */
  return out->oom ? ORR_ENOMEM : 0;
}

/* Finds |lit| from |p|; returns its start or NULL. */
static const char *find_lit(const char *p, const char *end, const char *lit) {
  size_t n = strlen(lit);
  while ((size_t)(end - p) >= n) {
    const char *c = memchr(p, lit[0], (size_t)(end - p) - n + 1);
    if (!c) return NULL;
    if (memcmp(c, lit, n) == 0) return c;
    p = c + 1;
  }
  return NULL;
}

/* Skips a tag's attributes up to its closing '>'; sets |*self_close|.
 * Returns the position after '>' or NULL. */
static const char *skip_attrs(const char *p, const char *end, int *self_close) {
  *self_close = 0;
  while (p < end) {
    char c = *p;
    if (c == '"' || c == '\'') {
      const char *q = memchr(p + 1, c, (size_t)(end - p - 1));
      if (!q) return NULL;
      p = q + 1;
    } else if (c == '/' && p + 1 < end && p[1] == '>') {
      *self_close = 1;
      return p + 2;
    } else if (c == '>') {
      return p + 1;
    } else if (c == '<') {
      return NULL;
    } else {
      p++;
    }
  }
  return NULL;
}

static int push(xml_state *s, const char *name, size_t n) {
  if (s->depth >= XML_MAX_DEPTH) return ORR_ELIMIT;
  size_t need = n + (s->depth ? 1 : 0);
  if (s->plen + need + 1 > sizeof s->path) return ORR_ELIMIT;
  if (s->depth) s->path[s->plen++] = '/';
  s->name_at[s->depth++] = s->plen;
  memcpy(s->path + s->plen, name, n);
  s->plen += n;
  s->path[s->plen] = '\0';
  return 0;
}

static void pop(xml_state *s) {
  s->depth--;
  size_t at = s->name_at[s->depth];
  s->plen = at > 0 ? at - 1 : 0;
  s->path[s->plen] = '\0';
}

static int scan(xml_state *s, s3__xml_fn fn, void *arg) {
  int rc, root_done = 0;
  while (s->p < s->end) {
    const char *lt = memchr(s->p, '<', (size_t)(s->end - s->p));
    if (!lt) {
      if (s->depth > 0) return ORR_ECORRUPT;
      for (; s->p < s->end; s->p++)
        if (!is_space(*s->p)) return ORR_ECORRUPT;
      break;
    }
    if (s->depth == 0) /* only whitespace outside the root */
      for (const char *q = s->p; q < lt; q++)
        if (!is_space(*q)) return ORR_ECORRUPT;
    const char *t = lt + 1;
    if (t >= s->end) return ORR_ECORRUPT;
    if (*t == '?') { /* declaration or processing instruction */
      const char *q = find_lit(t, s->end, "?>");
      if (!q) return ORR_ECORRUPT;
      s->p = q + 2;
      continue;
    }
    if (*t == '!') {
      if (s->end - t >= 3 && t[1] == '-' && t[2] == '-') {
        const char *q = find_lit(t + 3, s->end, "-->");
        if (!q) return ORR_ECORRUPT;
        s->p = q + 3;
        continue;
      }
      if (s->depth > 0) return ORR_ECORRUPT; /* CDATA is not used by S3 */
      int sc;
      const char *q = skip_attrs(t + 1, s->end, &sc); /* <!DOCTYPE ...> */
      if (!q) return ORR_ECORRUPT;
      s->p = q;
      continue;
    }
    if (*t == '/') { /* end tag */
      const char *name = t + 1, *q = name;
      while (q < s->end && *q != '>' && !is_space(*q)) q++;
      size_t n = (size_t)(q - name);
      while (q < s->end && is_space(*q)) q++;
      if (q >= s->end || *q != '>' || s->depth == 0) return ORR_ECORRUPT;
      size_t at = s->name_at[s->depth - 1];
      if (s->plen - at != n || memcmp(s->path + at, name, n) != 0) return ORR_ECORRUPT;
      if (!s->had_child) {
        if ((rc = decode_text(s->text_start, lt, &s->text)) != 0) return rc;
        if ((rc = fn(S3_XML_TEXT, s->path, s->depth, s->text.data ? s->text.data : "",
                     s->text.len, arg)) != 0)
          return rc;
      }
      if ((rc = fn(S3_XML_END, s->path, s->depth, NULL, 0, arg)) != 0) return rc;
      pop(s);
      s->had_child = 1;
      s->p = q + 1;
      if (s->depth == 0) root_done = 1;
      continue;
    }
    /* start tag */
    if (root_done) return ORR_ECORRUPT;
    const char *name = t, *q = t;
    while (q < s->end && *q != '>' && *q != '/' && !is_space(*q)) q++;
    size_t n = (size_t)(q - name);
    if (!valid_name(name, n)) return ORR_ECORRUPT;
    int self_close;
    const char *after = skip_attrs(q, s->end, &self_close);
    if (!after) return ORR_ECORRUPT;
    if ((rc = push(s, name, n)) != 0) return rc;
    if ((rc = fn(S3_XML_START, s->path, s->depth, NULL, 0, arg)) != 0) return rc;
    s->p = after;
    if (self_close) {
      if ((rc = fn(S3_XML_TEXT, s->path, s->depth, "", 0, arg)) != 0) return rc;
      if ((rc = fn(S3_XML_END, s->path, s->depth, NULL, 0, arg)) != 0) return rc;
      pop(s);
      s->had_child = 1;
      if (s->depth == 0) root_done = 1;
    } else {
      s->had_child = 0;
      s->text_start = after;
    }
  }
  if (s->depth != 0 || !root_done) return ORR_ECORRUPT;
  return 0;
}

int s3__xml_scan(const char *p, size_t n, s3__xml_fn fn, void *arg) {
  xml_state s;
  if (!p) return ORR_ECORRUPT; /* an empty response body */
  memset(&s, 0, sizeof s);
  s.p = p;
  s.end = p + n;
  int rc = scan(&s, fn, arg);
  orr_buf_free(&s.text);
  return rc;
}

/* ---------------------------------------------------------------- listing */

typedef struct list_ctx {
  orr_arena *a;
  s3__list_page *page;
  int rc;
} list_ctx;

static int parse_u64(const char *s, size_t n, uint64_t *v) {
  uint64_t x = 0;
  if (n == 0 || n > 20) return ORR_ECORRUPT;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return ORR_ECORRUPT;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (x > (UINT64_MAX - d) / 10) return ORR_ECORRUPT;
    x = x * 10 + d;
  }
  *v = x;
  return 0;
}

static int list_add(list_ctx *c, int is_prefix) {
  s3__list_page *pg = c->page;
  if (pg->n == pg->cap) {
    size_t cap = pg->cap ? pg->cap * 2 : 64;
    s3__list_entry *v = orr_arena_alloc(c->a, cap * sizeof *v);
    if (!v) return ORR_ENOMEM;
    if (pg->n) memcpy(v, pg->v, pg->n * sizeof *v);
    pg->v = v;
    pg->cap = cap;
  }
  s3__list_entry *e = &pg->v[pg->n++];
  e->name = NULL;
  e->size = 0;
  e->is_prefix = is_prefix;
  return 0;
}

static int list_cb(s3__xml_event ev, const char *path, int depth, const char *text, size_t n,
                   void *arg) {
  list_ctx *c = arg;
  s3__list_page *pg = c->page;
  if (depth == 1 && ev == S3_XML_START && strcmp(path, "ListBucketResult") != 0)
    return ORR_ECORRUPT;
  if (ev == S3_XML_START && depth == 2) {
    if (strcmp(path, "ListBucketResult/Contents") == 0) return list_add(c, 0);
    if (strcmp(path, "ListBucketResult/CommonPrefixes") == 0) return list_add(c, 1);
    return 0;
  }
  if (ev == S3_XML_END && depth == 2 && pg->n > 0 &&
      (strcmp(path, "ListBucketResult/Contents") == 0 ||
       strcmp(path, "ListBucketResult/CommonPrefixes") == 0)) {
    if (!pg->v[pg->n - 1].name) return ORR_ECORRUPT; /* an entry without its name */
    return 0;
  }
  if (ev != S3_XML_TEXT) return 0;
  if (depth == 3 && pg->n > 0) {
    s3__list_entry *e = &pg->v[pg->n - 1];
    if ((!e->is_prefix && strcmp(path, "ListBucketResult/Contents/Key") == 0) ||
        (e->is_prefix && strcmp(path, "ListBucketResult/CommonPrefixes/Prefix") == 0)) {
      if (!(e->name = orr_arena_strndup(c->a, text, n))) return ORR_ENOMEM;
    } else if (!e->is_prefix && strcmp(path, "ListBucketResult/Contents/Size") == 0) {
      return parse_u64(text, n, &e->size);
    }
  } else if (depth == 2) {
    if (strcmp(path, "ListBucketResult/IsTruncated") == 0) {
      pg->truncated = n == 4 && memcmp(text, "true", 4) == 0;
    } else if (strcmp(path, "ListBucketResult/NextContinuationToken") == 0 ||
               strcmp(path, "ListBucketResult/NextMarker") == 0) {
      if (n > 0 && !(pg->next_token = orr_arena_strndup(c->a, text, n))) return ORR_ENOMEM;
    }
  }
  return 0;
}

int s3__xml_parse_list(const char *p, size_t n, orr_arena *arena, s3__list_page *out) {
  memset(out, 0, sizeof *out);
  list_ctx c = {arena, out, 0};
  int rc = s3__xml_scan(p, n, list_cb, &c);
  return rc == ORR_ELIMIT ? ORR_ECORRUPT : rc;
}

/* ---------------------------------------------------------------- error, find */

typedef struct find_ctx {
  const char *path;
  char *out;
  size_t outlen;
  int found, rc;
  char *code, *msg;
  size_t codelen, msglen;
  int is_error;
} find_ctx;

static void copy_trunc(char *dst, size_t dstlen, const char *s, size_t n) {
  if (!dstlen) return;
  if (n >= dstlen) n = dstlen - 1;
  memcpy(dst, s, n);
  dst[n] = '\0';
}

static int error_cb(s3__xml_event ev, const char *path, int depth, const char *text, size_t n,
                    void *arg) {
  find_ctx *c = arg;
  if (depth == 1 && ev == S3_XML_START) {
    if (strcmp(path, "Error") != 0) return ORR_ECORRUPT;
    c->is_error = 1;
  }
  if (ev == S3_XML_TEXT && depth == 2) {
    if (strcmp(path, "Error/Code") == 0) copy_trunc(c->code, c->codelen, text, n);
    else if (strcmp(path, "Error/Message") == 0) copy_trunc(c->msg, c->msglen, text, n);
  }
  return 0;
}

int s3__xml_parse_error(const char *p, size_t n, char *code, size_t codelen, char *msg,
                        size_t msglen) {
  find_ctx c;
  memset(&c, 0, sizeof c);
  c.code = code;
  c.codelen = codelen;
  c.msg = msg;
  c.msglen = msglen;
  if (codelen) code[0] = '\0';
  if (msglen) msg[0] = '\0';
  int rc = s3__xml_scan(p, n, error_cb, &c);
  if (rc != 0 || !c.is_error) return ORR_ECORRUPT;
  return 0;
}

static int find_cb(s3__xml_event ev, const char *path, int depth, const char *text, size_t n,
                   void *arg) {
  find_ctx *c = arg;
  if (ev != S3_XML_TEXT || c->found || strcmp(path, c->path) != 0) return 0;
  c->found = 1;
  if (n >= c->outlen) {
    c->rc = ORR_ELIMIT;
    return 0;
  }
  memcpy(c->out, text, n);
  c->out[n] = '\0';
  return 0;
}

int s3__xml_find(const char *p, size_t n, const char *path, char *out, size_t outlen) {
  find_ctx c;
  memset(&c, 0, sizeof c);
  c.path = path;
  c.out = out;
  c.outlen = outlen;
  if (!outlen) return ORR_ELIMIT;
  out[0] = '\0';
  int rc = s3__xml_scan(p, n, find_cb, &c);
  if (rc != 0) return ORR_ECORRUPT;
  if (!c.found) return ORR_ENOTFOUND;
  return c.rc;
}

/* ---------------------------------------------------------------- time */

static int digits(const char *s, int n, int *v) {
  int x = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    x = x * 10 + (s[i] - '0');
  }
  *v = x;
  return 0;
}

int s3__parse_time(const char *s, int64_t *ms) {
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  struct tm tm;
  int Y, M, D, h, m, sec, frac = 0;
  memset(&tm, 0, sizeof tm);
  size_t n = strlen(s);
  if (n >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':') {
    if (digits(s, 4, &Y) || digits(s + 5, 2, &M) || digits(s + 8, 2, &D) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &m) || digits(s + 17, 2, &sec))
      return ORR_EINVAL;
    const char *p = s + 19;
    if (*p == '.') {
      int scale = 100;
      for (p++; *p >= '0' && *p <= '9'; p++) {
        frac += (*p - '0') * scale;
        scale /= 10;
      }
    }
    if (strcmp(p, "Z") != 0) return ORR_EINVAL;
  } else if (n == 29 && s[3] == ',' && s[4] == ' ' && strcmp(s + 25, " GMT") == 0) {
    if (digits(s + 5, 2, &D) || digits(s + 12, 4, &Y) || digits(s + 17, 2, &h) ||
        digits(s + 20, 2, &m) || digits(s + 23, 2, &sec))
      return ORR_EINVAL;
    const char *mp = NULL;
    for (int i = 0; i < 12; i++)
      if (memcmp(months + 3 * i, s + 8, 3) == 0) mp = months + 3 * i;
    if (!mp) return ORR_EINVAL;
    M = (int)((mp - months) / 3) + 1;
  } else {
    return ORR_EINVAL;
  }
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return ORR_EINVAL;
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  *ms = (int64_t)timegm(&tm) * 1000 + frac;
  return 0;
}
