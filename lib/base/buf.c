/* buf.c: growable byte buffers and the bounds-checked decoder. */
#include <stdlib.h>
#include <string.h>

#include "base.h"

void orr_buf_free(orr_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
}

void orr_buf_reset(orr_buf *b) {
  b->len = 0;
  b->oom = 0;
  if (b->data) b->data[0] = 0;
}

int orr_buf_reserve(orr_buf *b, size_t n) {
  if (b->oom) return ORR_ENOMEM;
  if (n > SIZE_MAX - b->len - 1) goto oom;
  size_t need = b->len + n + 1; /* room for the NUL */
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) {
      cap = need;
      break;
    }
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (!p) goto oom;
  b->data = p;
  b->cap = cap;
  return 0;
oom:
  b->oom = 1;
  return ORR_ENOMEM;
}

int orr_buf_append(orr_buf *b, const void *p, size_t n) {
  int rc = orr_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = 0;
  return 0;
}

int orr_buf_puts(orr_buf *b, const char *s) { return orr_buf_append(b, s, strlen(s)); }

int orr_buf_putc(orr_buf *b, char c) { return orr_buf_append(b, &c, 1); }

int orr_buf_vprintf(orr_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  char small[256];
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  int rc;
  if (n < 0) {
    rc = ORR_EINVAL;
  } else if ((size_t)n < sizeof(small)) {
    rc = orr_buf_append(b, small, (size_t)n);
  } else if ((rc = orr_buf_reserve(b, (size_t)n)) == 0) {
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
  }
  va_end(ap2);
  return rc;
}

int orr_buf_printf(orr_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = orr_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int orr_buf_put_be16(orr_buf *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  return orr_buf_append(b, x, 2);
}

int orr_buf_put_be32(orr_buf *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  return orr_buf_append(b, x, 4);
}

int orr_buf_put_be64(orr_buf *b, uint64_t v) {
  uint8_t x[8];
  for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (56 - 8 * i));
  return orr_buf_append(b, x, 8);
}

int orr_buf_put_uvarint(orr_buf *b, uint64_t v) {
  uint8_t x[10];
  size_t n = 0;
  while (v >= 0x80) {
    x[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  x[n++] = (uint8_t)v;
  return orr_buf_append(b, x, n);
}

int orr_buf_put_varint(orr_buf *b, int64_t v) {
  uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
  return orr_buf_put_uvarint(b, u);
}

char *orr_buf_steal(orr_buf *b, size_t *len) {
  char *p = b->data;
  if (len) *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
  return p;
}

int orr_buf_json_escape(orr_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[7];
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    default:
      /* Go's encoding/json also escapes <, >, & as \u003c etc. */
      if (c < 0x20 || c == '<' || c == '>' || c == '&') {
        u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
        u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = 0;
        esc = u;
      }
    }
    if (esc) {
      orr_buf_append(b, s + start, i - start);
      orr_buf_puts(b, esc);
      start = i + 1;
    }
  }
  orr_buf_append(b, s + start, n - start);
  return b->oom ? ORR_ENOMEM : 0;
}

void orr_buf_put_utf8(orr_buf *b, uint32_t c) {
  char u[4];
  if (c < 0x80) {
    orr_buf_putc(b, (char)c);
  } else if (c < 0x800) {
    u[0] = (char)(0xC0 | (c >> 6)), u[1] = (char)(0x80 | (c & 0x3F));
    orr_buf_append(b, u, 2);
  } else if (c < 0x10000) {
    u[0] = (char)(0xE0 | (c >> 12)), u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    u[2] = (char)(0x80 | (c & 0x3F));
    orr_buf_append(b, u, 3);
  } else {
    u[0] = (char)(0xF0 | (c >> 18)), u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((c >> 6) & 0x3F)), u[3] = (char)(0x80 | (c & 0x3F));
    orr_buf_append(b, u, 4);
  }
}

/* ---- JSON string escapes, decoded */

void orr_json_unescape_plain(orr_json_unescape *u, orr_buf *out, unsigned char c) {
  if (u->hi_surrogate && c != '\\') {
    orr_buf_put_utf8(out, 0xFFFD);
    u->hi_surrogate = 0;
  }
}

int orr_json_unescape_esc(orr_json_unescape *u, orr_buf *out, unsigned char c) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  const char *f = c ? strchr(from, c) : NULL;
  if (c == 'u') {
    u->hex = 0;
    u->hex_n = 0;
    return 1;
  }
  if (!f) return ORR_ECORRUPT;
  if (u->hi_surrogate) {
    orr_buf_put_utf8(out, 0xFFFD);
    u->hi_surrogate = 0;
  }
  orr_buf_putc(out, to[f - from]);
  return 0;
}

int orr_json_unescape_hex(orr_json_unescape *u, orr_buf *out, unsigned char c) {
  int d = c >= '0' && c <= '9'   ? c - '0'
          : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                 : -1;
  if (d < 0) return ORR_ECORRUPT;
  u->hex = u->hex * 16 + (uint32_t)d;
  if (++u->hex_n < 4) return 1;
  uint32_t cp = u->hex;
  if (cp >= 0xD800 && cp < 0xDC00) {
    if (u->hi_surrogate) orr_buf_put_utf8(out, 0xFFFD);
    u->hi_surrogate = cp;
    return 0;
  }
  if (cp >= 0xDC00 && cp < 0xE000 && u->hi_surrogate) {
    orr_buf_put_utf8(out, 0x10000 + ((u->hi_surrogate - 0xD800) << 10) + (cp - 0xDC00));
    u->hi_surrogate = 0;
    return 0;
  }
  if (u->hi_surrogate) orr_buf_put_utf8(out, 0xFFFD);
  u->hi_surrogate = 0;
  orr_buf_put_utf8(out, cp >= 0xD800 && cp < 0xE000 ? 0xFFFD : cp);
  return 0;
}

/* ---- decoder */

static int dec_fail(orr_dec *d) {
  if (!d->err) d->err = ORR_ECORRUPT;
  d->p = d->end;
  return ORR_ECORRUPT;
}

int orr_dec_u8(orr_dec *d, uint8_t *v) {
  if (d->err || orr_dec_left(d) < 1) return dec_fail(d);
  *v = *d->p++;
  return 0;
}

int orr_dec_be16(orr_dec *d, uint16_t *v) {
  if (d->err || orr_dec_left(d) < 2) return dec_fail(d);
  *v = (uint16_t)((d->p[0] << 8) | d->p[1]);
  d->p += 2;
  return 0;
}

int orr_dec_be32(orr_dec *d, uint32_t *v) {
  if (d->err || orr_dec_left(d) < 4) return dec_fail(d);
  *v = ((uint32_t)d->p[0] << 24) | ((uint32_t)d->p[1] << 16) | ((uint32_t)d->p[2] << 8) | d->p[3];
  d->p += 4;
  return 0;
}

int orr_dec_be64(orr_dec *d, uint64_t *v) {
  if (d->err || orr_dec_left(d) < 8) return dec_fail(d);
  uint64_t x = 0;
  for (int i = 0; i < 8; i++) x = (x << 8) | d->p[i];
  *v = x;
  d->p += 8;
  return 0;
}

int orr_dec_uvarint(orr_dec *d, uint64_t *v) {
  if (d->err) return dec_fail(d);
  uint64_t x = 0;
  unsigned shift = 0;
  for (int i = 0; i < 10; i++) {
    if (d->p >= d->end) return dec_fail(d);
    uint8_t c = *d->p++;
    if (c < 0x80) {
      if (i == 9 && c > 1) return dec_fail(d); /* overflows 64 bits */
      *v = x | ((uint64_t)c << shift);
      return 0;
    }
    x |= (uint64_t)(c & 0x7f) << shift;
    shift += 7;
  }
  return dec_fail(d);
}

int orr_dec_varint(orr_dec *d, int64_t *v) {
  uint64_t u;
  int rc = orr_dec_uvarint(d, &u);
  if (rc) return rc;
  *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
  return 0;
}

int orr_dec_bytes(orr_dec *d, size_t n, const uint8_t **out) {
  if (d->err || orr_dec_left(d) < n) return dec_fail(d);
  *out = d->p;
  d->p += n;
  return 0;
}

int orr_dec_skip(orr_dec *d, size_t n) {
  if (d->err || orr_dec_left(d) < n) return dec_fail(d);
  d->p += n;
  return 0;
}
