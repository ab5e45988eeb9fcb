/* meta.c: block meta.json (Prometheus BlockMeta version 1 with the Thanos
 * section) parsed with jansson and written in Go's encoding/json layout, and
 * ULIDs (48-bit milliseconds + 80 random bits, Crockford base32). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "tsdb_int.h"

/* ---------------------------------------------------------------- ULID */
static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int tsdb_ulid_new(int64_t ms, tsdb_ulid *out) {
  uint64_t t = (uint64_t)ms;
  for (int i = 0; i < 6; i++) out->b[i] = (uint8_t)(t >> (8 * (5 - i)));
  size_t got = 0;
  while (got < 10) {
    ssize_t k = getrandom(out->b + 6 + got, 10 - got, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return ORR_EIO;
    got += (size_t)k;
  }
  return 0;
}

/* Bit |i| (0 = most significant) of the 130-bit number 00 || b. */
static int ulid_bit(const tsdb_ulid *u, int i) {
  i -= 2;
  if (i < 0) return 0;
  return (u->b[i / 8] >> (7 - i % 8)) & 1;
}

void tsdb_ulid_format(const tsdb_ulid *u, char *out) {
  for (int c = 0; c < TSDB_ULID_STRLEN; c++) {
    int v = 0;
    for (int k = 0; k < 5; k++) v = v << 1 | ulid_bit(u, 5 * c + k);
    out[c] = crockford[v];
  }
  out[TSDB_ULID_STRLEN] = '\0';
}

int tsdb_ulid_parse(const char *s, size_t n, tsdb_ulid *out) {
  if (n != TSDB_ULID_STRLEN) return ORR_EINVAL;
  tsdb_ulid u;
  memset(&u, 0, sizeof(u));
  for (int c = 0; c < TSDB_ULID_STRLEN; c++) {
    char ch = s[c];
    if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
    const char *p = ch ? strchr(crockford, ch) : NULL;
    if (!p) return ORR_EINVAL;
    int v = (int)(p - crockford);
    if (c == 0 && v > 7) return ORR_EINVAL; /* would overflow 128 bits */
    for (int k = 0; k < 5; k++) {
      int bit = 5 * c + k - 2;
      if (bit < 0) continue;
      if ((v >> (4 - k)) & 1) u.b[bit / 8] |= (uint8_t)(1u << (7 - bit % 8));
    }
  }
  *out = u;
  return 0;
}

int64_t tsdb_ulid_time(const tsdb_ulid *u) {
  uint64_t t = 0;
  for (int i = 0; i < 6; i++) t = t << 8 | u->b[i];
  return (int64_t)t;
}

int tsdb_ulid_cmp(const tsdb_ulid *a, const tsdb_ulid *b) { return memcmp(a->b, b->b, 16); }

/* ---------------------------------------------------------------- parsing */
typedef struct pctx {
  orr_arena *a;
  char *err;
  size_t errlen;
} pctx;

static int perr(pctx *c, const char *what) {
  snprintf(c->err, c->errlen, "meta.json: %s", what);
  return tsdb__corrupt("meta.json: %s", what);
}

static int get_int(pctx *c, json_t *o, const char *key, int64_t *out, bool required) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) {
    if (required) return perr(c, key);
    return 0;
  }
  if (!json_is_integer(v)) return perr(c, key);
  *out = (int64_t)json_integer_value(v);
  return 0;
}

static int get_u64(pctx *c, json_t *o, const char *key, uint64_t *out) {
  int64_t v = 0;
  int rc = get_int(c, o, key, &v, false);
  if (rc == 0 && v < 0) return perr(c, key);
  *out = (uint64_t)v;
  return rc;
}

static int get_bool(pctx *c, json_t *o, const char *key, bool *out) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) return perr(c, key);
  *out = json_is_true(v);
  return 0;
}

static int get_str(pctx *c, json_t *o, const char *key, const char **out) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) return perr(c, key);
  *out = orr_arena_strndup(c->a, json_string_value(v), json_string_length(v));
  return *out ? 0 : ORR_ENOMEM;
}

static int get_ulid(pctx *c, json_t *v, tsdb_ulid *u) {
  if (!json_is_string(v) || tsdb_ulid_parse(json_string_value(v), json_string_length(v), u))
    return perr(c, "bad ulid");
  return 0;
}

/* Returns the array at |key| (NULL if absent), checking its type. */
static int get_array(pctx *c, json_t *o, const char *key, json_t **arr, size_t *n) {
  json_t *v = json_object_get(o, key);
  *arr = NULL;
  *n = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_array(v)) return perr(c, key);
  *arr = v;
  *n = json_array_size(v);
  return 0;
}

static int parse_strings(pctx *c, json_t *o, const char *key, const char ***out, size_t *n) {
  json_t *arr;
  int rc = get_array(c, o, key, &arr, n);
  if (rc || !*n) return rc;
  const char **v = orr_arena_calloc(c->a, *n, sizeof(*v));
  if (!v) return ORR_ENOMEM;
  for (size_t i = 0; i < *n; i++) {
    json_t *e = json_array_get(arr, i);
    if (!json_is_string(e)) return perr(c, key);
    if (!(v[i] = orr_arena_strndup(c->a, json_string_value(e), json_string_length(e))))
      return ORR_ENOMEM;
  }
  *out = v;
  return 0;
}

static int label_cmp(const void *x, const void *y) {
  return strcmp(((const labels_label *)x)->name, ((const labels_label *)y)->name);
}

static int parse_thanos(pctx *c, json_t *t, tsdb_meta *m) {
  int rc;
  int64_t v = 0;
  if (!json_is_object(t)) return perr(c, "thanos");
  m->has_thanos = true;
  if ((rc = get_int(c, t, "version", &v, false)) != 0) return rc;
  if (v != 0 && v != 1) return perr(c, "unsupported thanos version");
  m->thanos.version = (int)v;
  json_t *l = json_object_get(t, "labels");
  if (l && !json_is_null(l)) {
    if (!json_is_object(l)) return perr(c, "thanos.labels");
    size_t n = json_object_size(l), i = 0;
    labels_label *lv = orr_arena_calloc(c->a, n + 1, sizeof(*lv));
    if (!lv) return ORR_ENOMEM;
    const char *k;
    json_t *e;
    json_object_foreach(l, k, e) {
      if (!json_is_string(e)) return perr(c, "thanos.labels");
      lv[i].name = orr_arena_strdup(c->a, k);
      lv[i].value = orr_arena_strndup(c->a, json_string_value(e), json_string_length(e));
      if (!lv[i].name || !lv[i].value) return ORR_ENOMEM;
      i++;
    }
    qsort(lv, n, sizeof(*lv), label_cmp);
    m->thanos.labels.v = lv;
    m->thanos.labels.n = n;
  }
  json_t *ds = json_object_get(t, "downsample");
  if (ds && !json_is_null(ds)) {
    if (!json_is_object(ds)) return perr(c, "thanos.downsample");
    if ((rc = get_int(c, ds, "resolution", &m->thanos.downsample_resolution, false)) != 0)
      return rc;
  }
  if ((rc = get_str(c, t, "source", &m->thanos.source)) != 0) return rc;
  if ((rc = parse_strings(c, t, "segment_files", &m->thanos.segment_files,
                          &m->thanos.nsegment_files)) != 0)
    return rc;
  json_t *arr;
  size_t n;
  if ((rc = get_array(c, t, "files", &arr, &n)) != 0) return rc;
  if (n) {
    m->thanos.files = orr_arena_calloc(c->a, n, sizeof(*m->thanos.files));
    if (!m->thanos.files) return ORR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
      json_t *f = json_array_get(arr, i);
      if (!json_is_object(f)) return perr(c, "thanos.files");
      if ((rc = get_str(c, f, "rel_path", &m->thanos.files[i].rel_path)) != 0 ||
          (rc = get_int(c, f, "size_bytes", &m->thanos.files[i].size_bytes, false)) != 0)
        return rc;
      if (!m->thanos.files[i].rel_path) return perr(c, "thanos.files.rel_path");
    }
    m->thanos.nfiles = n;
  }
  json_t *is = json_object_get(t, "index_stats");
  if (is && !json_is_null(is)) {
    if (!json_is_object(is)) return perr(c, "thanos.index_stats");
    if ((rc = get_int(c, is, "series_max_size", &m->thanos.index_series_max_size, false)) != 0 ||
        (rc = get_int(c, is, "chunk_max_size", &m->thanos.index_chunk_max_size, false)) != 0)
      return rc;
  }
  return 0;
}

static int parse_root(pctx *c, json_t *root, tsdb_meta *m) {
  int rc;
  if (!json_is_object(root)) return perr(c, "not a JSON object");
  if ((rc = get_ulid(c, json_object_get(root, "ulid"), &m->ulid)) != 0) return rc;
  if ((rc = get_int(c, root, "minTime", &m->min_time, false)) != 0 ||
      (rc = get_int(c, root, "maxTime", &m->max_time, false)) != 0)
    return rc;
  int64_t v = 0;
  if ((rc = get_int(c, root, "version", &v, false)) != 0) return rc;
  if (v != 1) return perr(c, "unexpected meta file version");
  m->version = 1;
  json_t *st = json_object_get(root, "stats");
  if (st && !json_is_null(st)) {
    if (!json_is_object(st)) return perr(c, "stats");
    if ((rc = get_u64(c, st, "numSamples", &m->num_samples)) != 0 ||
        (rc = get_u64(c, st, "numSeries", &m->num_series)) != 0 ||
        (rc = get_u64(c, st, "numChunks", &m->num_chunks)) != 0 ||
        (rc = get_u64(c, st, "numTombstones", &m->num_tombstones)) != 0)
      return rc;
  }
  json_t *cp = json_object_get(root, "compaction");
  if (cp && !json_is_null(cp)) {
    if (!json_is_object(cp)) return perr(c, "compaction");
    if ((rc = get_int(c, cp, "level", &v, false)) != 0) return rc;
    if (v < 0 || v > 1000000) return perr(c, "compaction.level");
    m->level = (int)v;
    json_t *arr;
    size_t n;
    if ((rc = get_array(c, cp, "sources", &arr, &n)) != 0) return rc;
    if (n) {
      if (!(m->sources = orr_arena_calloc(c->a, n, sizeof(*m->sources)))) return ORR_ENOMEM;
      for (size_t i = 0; i < n; i++)
        if ((rc = get_ulid(c, json_array_get(arr, i), &m->sources[i])) != 0) return rc;
      m->nsources = n;
    }
    if ((rc = get_array(c, cp, "parents", &arr, &n)) != 0) return rc;
    if (n) {
      if (!(m->parents = orr_arena_calloc(c->a, n, sizeof(*m->parents)))) return ORR_ENOMEM;
      for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(arr, i);
        if (!json_is_object(p)) return perr(c, "compaction.parents");
        if ((rc = get_ulid(c, json_object_get(p, "ulid"), &m->parents[i].ulid)) != 0 ||
            (rc = get_int(c, p, "minTime", &m->parents[i].min_time, false)) != 0 ||
            (rc = get_int(c, p, "maxTime", &m->parents[i].max_time, false)) != 0)
          return rc;
      }
      m->nparents = n;
    }
    if ((rc = get_bool(c, cp, "deletable", &m->deletable)) != 0 ||
        (rc = get_bool(c, cp, "failed", &m->failed)) != 0 ||
        (rc = parse_strings(c, cp, "hints", &m->hints, &m->nhints)) != 0)
      return rc;
  }
  json_t *t = json_object_get(root, "thanos");
  if (t && !json_is_null(t)) return parse_thanos(c, t, m);
  return 0;
}

int tsdb_meta_parse(const char *json, size_t n, orr_arena *a, tsdb_meta *out, char *err,
                    size_t errlen) {
  json_error_t je;
  memset(out, 0, sizeof(*out));
  json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    snprintf(err, errlen, "meta.json: line %d: %s", je.line, je.text);
    return tsdb__corrupt("meta.json: line %d: %s", je.line, je.text);
  }
  pctx c = {a, err, errlen};
  int rc = parse_root(&c, root, out);
  json_decref(root);
  if (rc == ORR_ENOMEM) snprintf(err, errlen, "meta.json: out of memory");
  return rc;
}

int tsdb_meta_read_dir(const char *dir, orr_arena *a, tsdb_meta *out, char *err, size_t errlen) {
  char path[4096];
  if (snprintf(path, sizeof(path), "%s/meta.json", dir) >= (int)sizeof(path)) return ORR_EINVAL;
  orr_buf b = {0};
  int rc = tsdb__read_file(path, &b);
  if (rc) {
    snprintf(err, errlen, "read %s: %s", path, orr_strerror(rc));
  } else {
    rc = tsdb_meta_parse(b.data ? b.data : "", b.len, a, out, err, errlen);
  }
  orr_buf_free(&b);
  return rc;
}

/* ---------------------------------------------------------------- writing */
/* Appends |s| as a JSON string the way Go's encoding/json does: HTML-safe
 * (<, >, & as \u003c ...), U+2028/2029 escaped, invalid UTF-8 as U+FFFD. */
static void go_quote(orr_buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  orr_buf_putc(b, '"');
  while (*p) {
    unsigned c = *p;
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        orr_buf_putc(b, '\\');
        orr_buf_putc(b, (char)c);
      } else if (c == '\n') {
        orr_buf_puts(b, "\\n");
      } else if (c == '\r') {
        orr_buf_puts(b, "\\r");
      } else if (c == '\t') {
        orr_buf_puts(b, "\\t");
      } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
        char e[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        orr_buf_puts(b, e);
      } else {
        orr_buf_putc(b, (char)c);
      }
      p++;
      continue;
    }
    /* Decode one UTF-8 sequence; invalid ones become U+FFFD. */
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    uint32_t cp = len == 4 ? c & 7 : len == 3 ? c & 15 : c & 31;
    bool ok = len >= 2 && c < 0xF5 && c != 0xC0 && c != 0xC1;
    for (size_t k = 1; ok && k < len; k++) {
      if ((p[k] & 0xC0) != 0x80) ok = false;
      else cp = cp << 6 | (p[k] & 63u);
    }
    if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
               (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
      ok = false;
    if (!ok) {
      orr_buf_puts(b, "\\ufffd");
      p++;
      continue;
    }
    if (cp == 0x2028 || cp == 0x2029)
      orr_buf_printf(b, "\\u%04x", cp);
    else
      orr_buf_append(b, p, len);
    p += len;
  }
  orr_buf_putc(b, '"');
}

static void ind(orr_buf *b, int depth) {
  orr_buf_putc(b, '\n');
  for (int i = 0; i < depth; i++) orr_buf_putc(b, '\t');
}

/* Emits `"key": ` after a comma when |*first| is false. */
static void key(orr_buf *b, int depth, bool *first, const char *k) {
  if (!*first) orr_buf_putc(b, ',');
  *first = false;
  ind(b, depth);
  go_quote(b, k);
  orr_buf_puts(b, ": ");
}

static void put_ulid(orr_buf *b, const tsdb_ulid *u) {
  char s[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(u, s);
  orr_buf_printf(b, "\"%s\"", s);
}

int tsdb_meta_encode(const tsdb_meta *m, orr_buf *b) {
  bool f = true, g;
  orr_buf_putc(b, '{');
  key(b, 1, &f, "ulid");
  put_ulid(b, &m->ulid);
  key(b, 1, &f, "minTime");
  orr_buf_printf(b, "%lld", (long long)m->min_time);
  key(b, 1, &f, "maxTime");
  orr_buf_printf(b, "%lld", (long long)m->max_time);
  key(b, 1, &f, "stats");
  g = true;
  orr_buf_putc(b, '{');
  const struct { const char *k; uint64_t v; } st[] = {{"numSamples", m->num_samples},
                                                      {"numSeries", m->num_series},
                                                      {"numChunks", m->num_chunks},
                                                      {"numTombstones", m->num_tombstones}};
  for (size_t i = 0; i < 4; i++) {
    if (!st[i].v) continue;
    key(b, 2, &g, st[i].k);
    orr_buf_printf(b, "%llu", (unsigned long long)st[i].v);
  }
  if (!g) ind(b, 1);
  orr_buf_putc(b, '}');
  key(b, 1, &f, "compaction");
  g = true;
  orr_buf_putc(b, '{');
  key(b, 2, &g, "level");
  orr_buf_printf(b, "%d", m->level);
  if (m->nsources) {
    key(b, 2, &g, "sources");
    orr_buf_putc(b, '[');
    for (size_t i = 0; i < m->nsources; i++) {
      if (i) orr_buf_putc(b, ',');
      ind(b, 3);
      put_ulid(b, &m->sources[i]);
    }
    ind(b, 2);
    orr_buf_putc(b, ']');
  }
  if (m->deletable) {
    key(b, 2, &g, "deletable");
    orr_buf_puts(b, "true");
  }
  if (m->nparents) {
    key(b, 2, &g, "parents");
    orr_buf_putc(b, '[');
    for (size_t i = 0; i < m->nparents; i++) {
      bool h = true;
      if (i) orr_buf_putc(b, ',');
      ind(b, 3);
      orr_buf_putc(b, '{');
      key(b, 4, &h, "ulid");
      put_ulid(b, &m->parents[i].ulid);
      key(b, 4, &h, "minTime");
      orr_buf_printf(b, "%lld", (long long)m->parents[i].min_time);
      key(b, 4, &h, "maxTime");
      orr_buf_printf(b, "%lld", (long long)m->parents[i].max_time);
      ind(b, 3);
      orr_buf_putc(b, '}');
    }
    ind(b, 2);
    orr_buf_putc(b, ']');
  }
  if (m->failed) {
    key(b, 2, &g, "failed");
    orr_buf_puts(b, "true");
  }
  if (m->nhints) {
    key(b, 2, &g, "hints");
    orr_buf_putc(b, '[');
    for (size_t i = 0; i < m->nhints; i++) {
      if (i) orr_buf_putc(b, ',');
      ind(b, 3);
      go_quote(b, m->hints[i]);
    }
    ind(b, 2);
    orr_buf_putc(b, ']');
  }
  ind(b, 1);
  orr_buf_putc(b, '}');
  key(b, 1, &f, "version");
  orr_buf_printf(b, "%d", m->version ? m->version : 1);
  if (m->has_thanos) {
    key(b, 1, &f, "thanos");
    g = true;
    orr_buf_putc(b, '{');
    if (m->thanos.version) {
      key(b, 2, &g, "version");
      orr_buf_printf(b, "%d", m->thanos.version);
    }
    key(b, 2, &g, "labels");
    orr_buf_putc(b, '{');
    bool h = true;
    for (size_t i = 0; i < m->thanos.labels.n; i++) {
      key(b, 3, &h, m->thanos.labels.v[i].name);
      go_quote(b, m->thanos.labels.v[i].value);
    }
    if (!h) ind(b, 2);
    orr_buf_putc(b, '}');
    key(b, 2, &g, "downsample");
    orr_buf_putc(b, '{');
    h = true;
    key(b, 3, &h, "resolution");
    orr_buf_printf(b, "%lld", (long long)m->thanos.downsample_resolution);
    ind(b, 2);
    orr_buf_putc(b, '}');
    key(b, 2, &g, "source");
    go_quote(b, m->thanos.source ? m->thanos.source : "");
    if (m->thanos.nsegment_files) {
      key(b, 2, &g, "segment_files");
      orr_buf_putc(b, '[');
      for (size_t i = 0; i < m->thanos.nsegment_files; i++) {
        if (i) orr_buf_putc(b, ',');
        ind(b, 3);
        go_quote(b, m->thanos.segment_files[i]);
      }
      ind(b, 2);
      orr_buf_putc(b, ']');
    }
    if (m->thanos.nfiles) {
      key(b, 2, &g, "files");
      orr_buf_putc(b, '[');
      for (size_t i = 0; i < m->thanos.nfiles; i++) {
        if (i) orr_buf_putc(b, ',');
        ind(b, 3);
        orr_buf_putc(b, '{');
        h = true;
        key(b, 4, &h, "rel_path");
        go_quote(b, m->thanos.files[i].rel_path);
        if (m->thanos.files[i].size_bytes) {
          key(b, 4, &h, "size_bytes");
          orr_buf_printf(b, "%lld", (long long)m->thanos.files[i].size_bytes);
        }
        ind(b, 3);
        orr_buf_putc(b, '}');
      }
      ind(b, 2);
      orr_buf_putc(b, ']');
    }
    if (m->thanos.index_series_max_size || m->thanos.index_chunk_max_size) {
      key(b, 2, &g, "index_stats");
      orr_buf_putc(b, '{');
      h = true;
      if (m->thanos.index_series_max_size) {
        key(b, 3, &h, "series_max_size");
        orr_buf_printf(b, "%lld", (long long)m->thanos.index_series_max_size);
      }
      if (m->thanos.index_chunk_max_size) {
        key(b, 3, &h, "chunk_max_size");
        orr_buf_printf(b, "%lld", (long long)m->thanos.index_chunk_max_size);
      }
      ind(b, 2);
      orr_buf_putc(b, '}');
    }
    ind(b, 1);
    orr_buf_putc(b, '}');
  }
  ind(b, 0);
  orr_buf_puts(b, "}\n");
  return b->oom ? ORR_ENOMEM : 0;
}

int tsdb_meta_write_dir(const char *dir, const tsdb_meta *m) {
  orr_buf b = {0};
  int rc = tsdb_meta_encode(m, &b);
  if (rc == 0) rc = tsdb__write_file_atomic(dir, "meta.json", b.data, b.len);
  orr_buf_free(&b);
  return rc;
}
