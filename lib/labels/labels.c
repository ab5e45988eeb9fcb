/* labels.c: label sets (compare, hash, sort, copy, text form), name validity
 * and the label builder. Semantics follow Prometheus's model/labels package;
 * matchers live in matcher.c. */
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "labels.h"

int labels_cmp(const labels_set *a, const labels_set *b) {
  size_t n = a->n < b->n ? a->n : b->n;
  for (size_t i = 0; i < n; i++) {
    int c = strcmp(a->v[i].name, b->v[i].name);
    if (c) return c < 0 ? -1 : 1;
    c = strcmp(a->v[i].value, b->v[i].value);
    if (c) return c < 0 ? -1 : 1;
  }
  if (a->n == b->n) return 0;
  return a->n < b->n ? -1 : 1;
}

bool labels_equal(const labels_set *a, const labels_set *b) {
  if (a->n != b->n) return false;
  for (size_t i = 0; i < a->n; i++) {
    if (strcmp(a->v[i].name, b->v[i].name) || strcmp(a->v[i].value, b->v[i].value)) return false;
  }
  return true;
}

const char *labels_get(const labels_set *s, const char *name) {
  /* Sets are small: a binary search wins only past a dozen labels. */
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(s->v[mid].name, name);
    if (c == 0) return s->v[mid].value[0] ? s->v[mid].value : NULL;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

uint64_t labels_hash(const labels_set *s) {
  /* Same bytes as Prometheus's Labels.Hash: name 0xff value 0xff ..., xxh64
   * seed 0. Small sets hash from a stack buffer, big ones stream. */
  char buf[1024];
  size_t len = 0;
  for (size_t i = 0; i < s->n; i++) {
    size_t nl = strlen(s->v[i].name), vl = strlen(s->v[i].value);
    if (len + nl + vl + 2 > sizeof(buf)) goto stream;
    memcpy(buf + len, s->v[i].name, nl);
    len += nl;
    buf[len++] = (char)0xff;
    memcpy(buf + len, s->v[i].value, vl);
    len += vl;
    buf[len++] = (char)0xff;
  }
  return XXH64(buf, len, 0);
stream:;
  XXH64_state_t st;
  XXH64_reset(&st, 0);
  static const char sep = (char)0xff;
  for (size_t i = 0; i < s->n; i++) {
    XXH64_update(&st, s->v[i].name, strlen(s->v[i].name));
    XXH64_update(&st, &sep, 1);
    XXH64_update(&st, s->v[i].value, strlen(s->v[i].value));
    XXH64_update(&st, &sep, 1);
  }
  return XXH64_digest(&st);
}

static int label_name_cmp(const void *a, const void *b) {
  return strcmp(((const labels_label *)a)->name, ((const labels_label *)b)->name);
}

int labels_sort(labels_set *s) {
  if (s->n > 1) qsort(s->v, s->n, sizeof(*s->v), label_name_cmp);
  for (size_t i = 1; i < s->n; i++) {
    if (strcmp(s->v[i - 1].name, s->v[i].name) == 0) return ORR_EINVAL;
  }
  return 0;
}

/* Label sets up to this long keep their string lengths on the stack. */
#define LABELS_COPY_BATCH 32

int labels_copy(orr_arena *a, const labels_set *src, labels_set *dst) {
  /* One allocation: the array, then every string after it (a gateway
   * copies each series it receives; one call per string showed in its
   * profile). */
  size_t total = 0, nn[LABELS_COPY_BATCH], vn[LABELS_COPY_BATCH];
  bool lens = src->n <= LABELS_COPY_BATCH;
  for (size_t i = 0; i < src->n; i++) {
    size_t x = strlen(src->v[i].name) + 1, y = strlen(src->v[i].value) + 1;
    if (lens) nn[i] = x, vn[i] = y;
    total += x + y;
  }
  labels_label *v = NULL;
  if (src->n) {
    v = orr_arena_alloc(a, src->n * sizeof(*v) + total);
    if (!v) return ORR_ENOMEM;
    char *p = (char *)(v + src->n);
    for (size_t i = 0; i < src->n; i++) {
      size_t x = lens ? nn[i] : strlen(src->v[i].name) + 1;
      size_t y = lens ? vn[i] : strlen(src->v[i].value) + 1;
      memcpy(p, src->v[i].name, x);
      v[i].name = p;
      p += x;
      memcpy(p, src->v[i].value, y);
      v[i].value = p;
      p += y;
    }
  }
  dst->v = v;
  dst->n = src->n;
  return 0;
}

size_t labels__utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp, min;
  if ((c & 0xe0) == 0xc0) {
    len = 2, cp = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3, cp = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

bool labels__utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    size_t l = labels__utf8_len(p + i, n - i);
    if (!l) return false;
    i += l;
  }
  return true;
}

int labels__quote(orr_buf *out, const char *s, size_t n) {
  /* As Go's strconv.Quote, which Prometheus uses (%q): printable UTF-8
   * passes through; quotes, backslashes and control bytes are escaped;
   * invalid UTF-8 bytes become \xNN. Non-printable non-ASCII runes (rare in
   * label values) are passed through rather than \u-escaped. */
  const unsigned char *p = (const unsigned char *)s;
  orr_buf_putc(out, '"');
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c >= 0x80) {
      size_t l = labels__utf8_len(p + i, n - i);
      if (l) {
        orr_buf_append(out, p + i, l);
        i += l;
      } else {
        orr_buf_printf(out, "\\x%02x", c);
        i++;
      }
      continue;
    }
    switch (c) {
    case '"': orr_buf_puts(out, "\\\""); break;
    case '\\': orr_buf_puts(out, "\\\\"); break;
    case '\a': orr_buf_puts(out, "\\a"); break;
    case '\b': orr_buf_puts(out, "\\b"); break;
    case '\f': orr_buf_puts(out, "\\f"); break;
    case '\n': orr_buf_puts(out, "\\n"); break;
    case '\r': orr_buf_puts(out, "\\r"); break;
    case '\t': orr_buf_puts(out, "\\t"); break;
    case '\v': orr_buf_puts(out, "\\v"); break;
    default:
      if (c < 0x20 || c == 0x7f)
        orr_buf_printf(out, "\\x%02x", c);
      else
        orr_buf_putc(out, (char)c);
    }
    i++;
  }
  return orr_buf_putc(out, '"');
}

int labels_format(const labels_set *s, orr_buf *out) {
  const char *name = labels_get(s, LABELS_METRIC_NAME);
  if (name) orr_buf_puts(out, name);
  size_t others = s->n - (name ? 1 : 0);
  if (name && others == 0) return out->oom ? ORR_ENOMEM : 0;
  orr_buf_putc(out, '{');
  bool first = true;
  for (size_t i = 0; i < s->n; i++) {
    if (name && strcmp(s->v[i].name, LABELS_METRIC_NAME) == 0) continue;
    if (!first) orr_buf_puts(out, ", ");
    first = false;
    orr_buf_puts(out, s->v[i].name);
    orr_buf_putc(out, '=');
    labels__quote(out, s->v[i].value, strlen(s->v[i].value));
  }
  orr_buf_putc(out, '}');
  return out->oom ? ORR_ENOMEM : 0;
}

static bool name_char(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool labels_valid_name(const char *name, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    if (!name_char(name[i], i == 0, false)) return false;
  }
  return true;
}

bool labels_valid_metric_name(const char *name, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    if (!name_char(name[i], i == 0, true)) return false;
  }
  return true;
}

/* ---------------------------------------------------------------- builder */

void labels_builder_init(labels_builder *b, orr_arena *a, const labels_set *base) {
  b->arena = a;
  b->v = NULL;
  b->n = b->cap = 0;
  b->oom = 0;
  if (!base || base->n == 0) return;
  b->v = orr_arena_alloc(a, base->n * sizeof(*b->v));
  if (!b->v) {
    b->oom = 1; /* labels_builder_finish reports it */
    return;
  }
  memcpy(b->v, base->v, base->n * sizeof(*b->v));
  b->n = b->cap = base->n;
}

static labels_label *builder_find(labels_builder *b, const char *name) {
  for (size_t i = 0; i < b->n; i++) {
    if (strcmp(b->v[i].name, name) == 0) return &b->v[i];
  }
  return NULL;
}

int labels_builder_del(labels_builder *b, const char *name) {
  labels_label *l = builder_find(b, name);
  if (l) {
    *l = b->v[b->n - 1];
    b->n--;
  }
  return 0;
}

int labels_builder_set(labels_builder *b, const char *name, const char *value) {
  if (!value || !value[0]) return labels_builder_del(b, name);
  labels_label *l = builder_find(b, name);
  if (l) {
    l->value = value;
    return 0;
  }
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 8;
    labels_label *v = orr_arena_alloc(b->arena, cap * sizeof(*v));
    if (!v) {
      b->oom = 1;
      return ORR_ENOMEM;
    }
    if (b->n) memcpy(v, b->v, b->n * sizeof(*v));
    b->v = v;
    b->cap = cap;
  }
  b->v[b->n].name = name;
  b->v[b->n].value = value;
  b->n++;
  return 0;
}

int labels_builder_finish(labels_builder *b, labels_set *out) {
  out->v = b->v;
  out->n = b->n;
  if (b->oom) return ORR_ENOMEM;
  /* Names are unique by construction, so sorting cannot fail. */
  if (b->n > 1) qsort(out->v, out->n, sizeof(*out->v), label_name_cmp);
  return 0;
}
