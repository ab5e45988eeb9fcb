/* parse.c: the text exposition format 0.0.4 parser — one line at a time,
 * every length checked against what remains of the line, strings unescaped
 * into the caller's scratch arena. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expfmt.h"

/* Cap on labels per sample (Prometheus has none; this keeps one line's
 * bookkeeping bounded whatever the input). */
#define MAX_LABELS 1024

typedef struct line {
  const char *p, *end;
  size_t no;
} line;

static int fail(char *err, size_t errlen, size_t no, const char *fmt, ...) ORR_PRINTF(4, 5);
static int fail(char *err, size_t errlen, size_t no, const char *fmt, ...) {
  if (errlen) {
    int n = snprintf(err, errlen, "line %zu: ", no);
    if (n >= 0 && (size_t)n < errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return ORR_EINVAL;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static void skip_blanks(line *l) {
  while (l->p < l->end && is_blank(*l->p)) l->p++;
}
static bool name_start(char c, bool metric) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
}
static bool name_char(char c, bool metric) {
  return name_start(c, metric) || (c >= '0' && c <= '9');
}
/* A name at l->p: its length (0 when none). */
static size_t scan_name(const line *l, bool metric) {
  const char *q = l->p;
  if (q >= l->end || !name_start(*q, metric)) return 0;
  while (q < l->end && name_char(*q, metric)) q++;
  return (size_t)(q - l->p);
}
/* A token up to the next blank (the value or the timestamp). */
static size_t scan_token(const line *l) {
  const char *q = l->p;
  while (q < l->end && !is_blank(*q)) q++;
  return (size_t)(q - l->p);
}

/* Whether |s|/|n| is valid UTF-8 (no overlongs, no surrogates). */
static bool valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t k;
    unsigned min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      k = 1, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      k = 2, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      k = 3, min = 0x10000, c &= 0x07;
    } else {
      return false;
    }
    if (n - i <= k) return false;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return false;
      c = (c << 6) | (s[i + j] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    i += k + 1;
  }
  return true;
}

/* A Go strconv.ParseFloat-compatible float (decimal forms, Inf/NaN in any
 * case with an optional sign for Inf, hex floats with a p exponent). */
static int parse_float(const char *s, size_t n, double *out) {
  char buf[128];
  if (n == 0 || n >= sizeof(buf)) return ORR_EINVAL;
  memcpy(buf, s, n);
  buf[n] = 0;
  const char *b = buf;
  bool neg = false;
  if (*b == '+' || *b == '-') neg = *b++ == '-';
  if (!strcasecmp(b, "inf") || !strcasecmp(b, "infinity")) {
    *out = neg ? -INFINITY : INFINITY;
    return 0;
  }
  if (!strcasecmp(buf, "nan")) {
    *out = NAN;
    return 0;
  }
  /* Only digits, '.', exponents and hex digits: strtod's "nan(...)",
   * "infinity" spellings and leading blanks are not Go's. */
  for (const char *q = b; *q; q++) {
    char c = *q;
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' ||
          c == 'x' || c == 'X' || c == 'p' || c == 'P' || (c >= 'a' && c <= 'f') ||
          (c >= 'A' && c <= 'F')))
      return ORR_EINVAL;
  }
  bool hex = b[0] == '0' && (b[1] == 'x' || b[1] == 'X');
  if (hex && !strpbrk(b, "pP")) return ORR_EINVAL; /* Go wants the p exponent */
  if (!hex && strpbrk(b, "xXpPabcdfABCDF")) return ORR_EINVAL;
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (*end || end == buf) return ORR_EINVAL;
  /* Go: out of range is an error; strtod's ERANGE also covers underflow to
   * a denormal or 0, which Go accepts. */
  if (errno == ERANGE && isinf(v)) return ORR_EINVAL;
  *out = v;
  return 0;
}

static int parse_int64(const char *s, size_t n, int64_t *out) {
  char buf[32];
  if (n == 0 || n >= sizeof(buf)) return ORR_EINVAL;
  memcpy(buf, s, n);
  buf[n] = 0;
  const char *b = buf + (buf[0] == '+' || buf[0] == '-');
  if (!*b) return ORR_EINVAL;
  for (const char *q = b; *q; q++)
    if (*q < '0' || *q > '9') return ORR_EINVAL;
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  if (*end || errno == ERANGE) return ORR_EINVAL;
  *out = (int64_t)v;
  return 0;
}

/* "# HELP name ..." / "# TYPE name type" / any other comment. */
static int comment(line *l, char *err, size_t errlen) {
  l->p++; /* '#' */
  skip_blanks(l);
  size_t kw = scan_name(l, false);
  bool help = kw == 4 && !memcmp(l->p, "HELP", 4), type = kw == 4 && !memcmp(l->p, "TYPE", 4);
  if (!help && !type) return 0;
  l->p += 4;
  if (l->p < l->end && !is_blank(*l->p)) return 0; /* "#HELPER": a comment */
  skip_blanks(l);
  size_t nl = scan_name(l, true);
  if (nl == 0) return fail(err, errlen, l->no, "invalid metric name in comment");
  l->p += nl;
  if (l->p < l->end && !is_blank(*l->p))
    return fail(err, errlen, l->no, "invalid metric name in comment");
  skip_blanks(l);
  if (help) {
    if (!valid_utf8((const unsigned char *)l->p, (size_t)(l->end - l->p)))
      return fail(err, errlen, l->no, "invalid UTF-8 in HELP text");
    return 0;
  }
  size_t tl = scan_token(l);
  static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
  bool ok = false;
  for (size_t i = 0; i < 5 && !ok; i++) ok = strlen(types[i]) == tl && !memcmp(l->p, types[i], tl);
  if (!ok) return fail(err, errlen, l->no, "invalid metric type \"%.*s\"", (int)tl, l->p);
  l->p += tl;
  skip_blanks(l);
  if (l->p != l->end) return fail(err, errlen, l->no, "unexpected text after the metric type");
  return 0;
}

/* A quoted label value at l->p ('"' included), unescaped into |a|. */
static int label_value(line *l, orr_arena *a, const char **out, char *err, size_t errlen) {
  l->p++; /* '"' */
  const char *start = l->p;
  while (l->p < l->end && *l->p != '"') {
    if (*l->p == '\\') {
      if (l->p + 1 >= l->end) break;
      l->p++;
    }
    l->p++;
  }
  if (l->p >= l->end) return fail(err, errlen, l->no, "unterminated label value");
  size_t n = (size_t)(l->p - start);
  l->p++; /* '"' */
  char *v = orr_arena_alloc(a, n + 1);
  if (!v) return ORR_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    char c = start[i];
    if (c == '\\' && i + 1 < n) {
      char d = start[i + 1];
      if (d == '\\' || d == '"' || d == 'n') {
        v[k++] = d == 'n' ? '\n' : d;
        i++;
        continue;
      }
    }
    v[k++] = c; /* other escapes are kept as written (Prometheus does) */
  }
  v[k] = 0;
  if (!valid_utf8((const unsigned char *)v, k))
    return fail(err, errlen, l->no, "invalid UTF-8 label value");
  if (memchr(v, 0, k)) return fail(err, errlen, l->no, "NUL byte in a label value");
  *out = v;
  return 0;
}

static int sample(line *l, orr_arena *a, expfmt_sample_fn fn, void *arg, char *err,
                  size_t errlen) {
  size_t nl = scan_name(l, true);
  if (nl == 0) return fail(err, errlen, l->no, "invalid metric name");
  labels_label *v = orr_arena_alloc(a, 8 * sizeof(*v));
  size_t n = 0, cap = 8;
  if (!v) return ORR_ENOMEM;
  v[0].name = "__name__";
  if (!(v[0].value = orr_arena_strndup(a, l->p, nl))) return ORR_ENOMEM;
  n = 1;
  l->p += nl;
  const char *after_name = l->p;
  skip_blanks(l);
  if (l->p >= l->end || *l->p != '{') l->p = after_name; /* no labels */
  if (l->p < l->end && *l->p == '{') {
    l->p++;
    for (;;) {
      skip_blanks(l);
      if (l->p < l->end && *l->p == '}') {
        l->p++;
        break;
      }
      size_t ln = scan_name(l, false);
      if (ln == 0) return fail(err, errlen, l->no, "invalid label name");
      if (n == cap) {
        if (cap >= MAX_LABELS) return fail(err, errlen, l->no, "too many labels");
        labels_label *nv = orr_arena_alloc(a, 2 * cap * sizeof(*nv));
        if (!nv) return ORR_ENOMEM;
        memcpy(nv, v, n * sizeof(*v));
        v = nv;
        cap *= 2;
      }
      if (!(v[n].name = orr_arena_strndup(a, l->p, ln))) return ORR_ENOMEM;
      l->p += ln;
      skip_blanks(l);
      if (l->p >= l->end || *l->p != '=')
        return fail(err, errlen, l->no, "expected '=' after label name \"%s\"", v[n].name);
      l->p++;
      skip_blanks(l);
      if (l->p >= l->end || *l->p != '"')
        return fail(err, errlen, l->no, "expected a quoted value for label \"%s\"", v[n].name);
      int rc = label_value(l, a, &v[n].value, err, errlen);
      if (rc) return rc;
      n++;
      skip_blanks(l);
      if (l->p < l->end && *l->p == ',') {
        l->p++;
        continue;
      }
      if (l->p < l->end && *l->p == '}') {
        l->p++;
        break;
      }
      return fail(err, errlen, l->no, "expected ',' or '}' after a label");
    }
  }
  if (l->p >= l->end || !is_blank(*l->p))
    return fail(err, errlen, l->no, l->p >= l->end ? "missing value" : "expected a blank before the value");
  skip_blanks(l);
  expfmt_sample s;
  size_t vl = scan_token(l);
  if (parse_float(l->p, vl, &s.v))
    return fail(err, errlen, l->no, "invalid value \"%.*s\"", (int)(vl > 64 ? 64 : vl), l->p);
  l->p += vl;
  skip_blanks(l);
  s.has_ts = false;
  s.ts = 0;
  if (l->p < l->end) {
    size_t tl = scan_token(l);
    if (parse_int64(l->p, tl, &s.ts))
      return fail(err, errlen, l->no, "invalid timestamp \"%.*s\"", (int)(tl > 64 ? 64 : tl),
                  l->p);
    s.has_ts = true;
    l->p += tl;
    skip_blanks(l);
    if (l->p < l->end) return fail(err, errlen, l->no, "unexpected text after the timestamp");
  }
  s.labels.v = v;
  s.labels.n = n;
  if (labels_sort(&s.labels)) return fail(err, errlen, l->no, "duplicate label name");
  return fn(&s, arg);
}

int expfmt_parse(const char *data, size_t len, orr_arena *scratch, expfmt_sample_fn fn,
                 void *arg, char *err, size_t errlen) {
  if (errlen) err[0] = 0;
  const char *p = data, *end = data + len;
  size_t no = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    line l = {p, nl ? nl : end, ++no};
    p = nl ? nl + 1 : end;
    skip_blanks(&l);
    if (l.p == l.end) continue;
    if (memchr(l.p, 0, (size_t)(l.end - l.p))) return fail(err, errlen, no, "NUL byte");
    orr_arena_reset(scratch);
    int rc = *l.p == '#' ? comment(&l, err, errlen) : sample(&l, scratch, fn, arg, err, errlen);
    if (rc) return rc;
  }
  return 0;
}
