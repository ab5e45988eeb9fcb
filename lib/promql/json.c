/* json.c: the bodies of Prometheus's /api/v1/query and /api/v1/query_range
 * (2.42) written byte for byte, through a writer that can flush as it goes
 * so large matrices stream. Points use jsoniter's encoders (timestamps as
 * seconds with the milliseconds verbatim); scalars and strings use their
 * encoding/json MarshalJSON (shortest float seconds, 'f' values). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql_int.h"

static void put_u64(orr_buf *b, uint64_t u) {
  char tmp[24];
  int i = (int)sizeof(tmp);
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  orr_buf_append(b, tmp + i, sizeof(tmp) - (size_t)i);
}

int promql_json_timestamp(orr_buf *b, int64_t t) {
  uint64_t u = (uint64_t)t;
  if (t < 0) {
    orr_buf_putc(b, '-');
    u = (uint64_t)0 - u;
  }
  put_u64(b, u / 1000);
  unsigned frac = (unsigned)(u % 1000);
  if (frac) {
    char f[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10), (char)('0' + frac % 10)};
    orr_buf_append(b, f, 4);
  }
  return b->oom ? ORR_ENOMEM : 0;
}

int promql_format_float_f(orr_buf *b, double v) {
  if (isnan(v)) return orr_buf_puts(b, "NaN");
  if (isinf(v)) return orr_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
  if (v == 0) return orr_buf_puts(b, signbit(v) ? "-0" : "0");
  /* Shortest digits that round-trip (Ryu), then positional notation. */
  bool neg = v < 0;
  int e10;
  uint64_t m = orr__float_shortest(fabs(v), &e10);
  char tmp[20];
  int k = (int)sizeof(tmp);
  do {
    tmp[--k] = (char)('0' + m % 10);
    m /= 10;
  } while (m);
  const char *digits = tmp + k;
  size_t nd = sizeof(tmp) - (size_t)k;
  int exp = e10 + (int)nd - 1; /* of the first digit */
  if (neg) orr_buf_putc(b, '-');
  if (exp < 0) {
    orr_buf_puts(b, "0.");
    for (int i = -1; i > exp; i--) orr_buf_putc(b, '0');
    orr_buf_append(b, digits, nd);
  } else if ((size_t)exp + 1 >= nd) {
    orr_buf_append(b, digits, nd);
    for (size_t i = nd; i < (size_t)exp + 1; i++) orr_buf_putc(b, '0');
  } else {
    orr_buf_append(b, digits, (size_t)exp + 1);
    orr_buf_putc(b, '.');
    orr_buf_append(b, digits + exp + 1, nd - (size_t)exp - 1);
  }
  return b->oom ? ORR_ENOMEM : 0;
}

static int maybe_flush(promql_json_writer *w) {
  if (w->err) return w->err;
  if (w->buf->oom) return w->err = ORR_ENOMEM;
  size_t at = w->flush_at ? w->flush_at : 65536;
  if (w->flush && w->buf->len >= at) {
    int rc = w->flush(w->arg, w->buf);
    if (rc) w->err = rc;
  }
  return w->err;
}

static int finish(promql_json_writer *w) {
  if (w->err) return w->err;
  if (w->buf->oom) return w->err = ORR_ENOMEM;
  if (w->flush && w->buf->len) {
    int rc = w->flush(w->arg, w->buf);
    if (rc) w->err = rc;
  }
  return w->err;
}

static void str(orr_buf *b, const char *s, size_t n) {
  orr_buf_putc(b, '"');
  orr_buf_json_escape(b, s, n);
  orr_buf_putc(b, '"');
}

/* Bytes that orr_buf_json_escape rewrites (Go's encoding/json set). */
static bool needs_escape(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&') return true;
  }
  return false;
}

static void metric(orr_buf *b, const labels_set *ls) {
  orr_buf_puts(b, "{\"metric\":{");
  for (size_t i = 0; i < ls->n; i++) {
    const char *name = ls->v[i].name, *value = ls->v[i].value;
    size_t nl = strlen(name), vl = strlen(value);
    /* The common label, nothing to escape: one copy each, straight into
     * the buffer (a 20k-series instant selector prints 100k of them). */
    if (!needs_escape(name, nl) && !needs_escape(value, vl) && !orr_buf_reserve(b, nl + vl + 6)) {
      char *p = b->data + b->len;
      if (i) *p++ = ',';
      *p++ = '"';
      memcpy(p, name, nl);
      p += nl;
      *p++ = '"';
      *p++ = ':';
      *p++ = '"';
      memcpy(p, value, vl);
      p += vl;
      *p++ = '"';
      *p = '\0';
      b->len = (size_t)(p - b->data);
      continue;
    }
    if (i) orr_buf_putc(b, ',');
    str(b, name, nl);
    orr_buf_putc(b, ':');
    str(b, value, vl);
  }
  orr_buf_putc(b, '}');
}

static void point(orr_buf *b, const promql_point *p) {
  char f[64];
  orr_buf_putc(b, '[');
  promql_json_timestamp(b, p->t);
  orr_buf_puts(b, ",\"");
  double v = p->v;
  /* Integral values below 2^53 print as their digits in every format; the
   * common case for counters, so skip the general formatter. */
  if (v == floor(v) && fabs(v) < 9007199254740992.0 && !(v == 0 && signbit(v))) {
    if (v < 0) orr_buf_putc(b, '-');
    put_u64(b, (uint64_t)fabs(v));
  } else {
    orr_format_float_json(v, f, sizeof(f));
    orr_buf_puts(b, f);
  }
  orr_buf_puts(b, "\"]");
}

static void seconds(orr_buf *b, int64_t t) {
  char f[64];
  orr_format_float_json((double)t / 1000, f, sizeof(f));
  orr_buf_puts(b, f);
}

int promql_json_write_result(promql_json_writer *w, const promql_result *r) {
  orr_buf *b = w->buf;
  orr_buf_puts(b, "{\"status\":\"success\",\"data\":{\"resultType\":\"");
  orr_buf_puts(b, promql_value_type_name(r->type));
  orr_buf_puts(b, "\",\"result\":");
  switch (r->type) {
    case PROMQL_TYPE_SCALAR:
      orr_buf_putc(b, '[');
      seconds(b, r->t);
      orr_buf_puts(b, ",\"");
      promql_format_float_f(b, r->scalar);
      orr_buf_puts(b, "\"]");
      break;
    case PROMQL_TYPE_STRING:
      orr_buf_putc(b, '[');
      seconds(b, r->t);
      orr_buf_putc(b, ',');
      str(b, r->str ? r->str : "", r->strlen);
      orr_buf_putc(b, ']');
      break;
    case PROMQL_TYPE_VECTOR:
    case PROMQL_TYPE_MATRIX:
      orr_buf_putc(b, '[');
      for (size_t i = 0; i < r->nseries; i++) {
        const promql_series *s = &r->series[i];
        if (i) orr_buf_putc(b, ',');
        metric(b, &s->labels);
        if (r->type == PROMQL_TYPE_VECTOR) {
          orr_buf_puts(b, ",\"value\":");
          if (s->npoints) point(b, &s->points[0]);
        } else {
          orr_buf_puts(b, ",\"values\":[");
          for (size_t k = 0; k < s->npoints; k++) {
            if (k) orr_buf_putc(b, ',');
            point(b, &s->points[k]);
            if ((k & 1023) == 1023 && maybe_flush(w)) return w->err;
          }
          orr_buf_putc(b, ']');
        }
        orr_buf_putc(b, '}');
        if (maybe_flush(w)) return w->err;
      }
      orr_buf_putc(b, ']');
      break;
    default: orr_buf_puts(b, "null"); break;
  }
  orr_buf_putc(b, '}');
  if (r->nwarnings) {
    orr_buf_puts(b, ",\"warnings\":[");
    for (size_t i = 0; i < r->nwarnings; i++) {
      if (i) orr_buf_putc(b, ',');
      str(b, r->warnings[i], strlen(r->warnings[i]));
    }
    orr_buf_putc(b, ']');
  }
  orr_buf_putc(b, '}');
  return finish(w);
}

int promql_json_write_error(promql_json_writer *w, promql_errtype type, const char *msg) {
  orr_buf *b = w->buf;
  orr_buf_puts(b, "{\"status\":\"error\",\"errorType\":\"");
  orr_buf_puts(b, promql_errtype_name(type));
  orr_buf_puts(b, "\",\"error\":");
  str(b, msg, strlen(msg));
  orr_buf_putc(b, '}');
  return finish(w);
}
