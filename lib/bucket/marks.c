/* marks.c: the block markers Thanos keeps beside a block's files —
 * deletion-mark.json (the compactor deletes the block after a delay) and
 * no-compact-mark.json (the planner leaves the block alone) — parsed,
 * encoded as Thanos's json.Marshal writes them, read and written. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "bucket.h"

#define MARK_MAX_BYTES (1u << 20)

static int parse_common(const char *json, size_t n, const char *what, json_t **root,
                        tsdb_ulid *id, int *version, char *err, size_t errlen) {
  json_error_t je;
  *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je);
  if (!*root || !json_is_object(*root)) {
    snprintf(err, errlen, "%s: not a JSON object: %s", what, *root ? "" : je.text);
    return ORR_ECORRUPT;
  }
  json_t *v = json_object_get(*root, "id");
  if (!json_is_string(v) ||
      tsdb_ulid_parse(json_string_value(v), json_string_length(v), id) != 0) {
    snprintf(err, errlen, "%s: missing or bad \"id\"", what);
    return ORR_ECORRUPT;
  }
  v = json_object_get(*root, "version");
  if (!json_is_integer(v) || json_integer_value(v) != BUCKET_MARK_VERSION) {
    snprintf(err, errlen, "%s: unexpected version (want %d)", what, BUCKET_MARK_VERSION);
    return ORR_ECORRUPT;
  }
  *version = BUCKET_MARK_VERSION;
  return 0;
}

static int opt_str(json_t *root, const char *key, orr_arena *a, const char **out) {
  json_t *v = json_object_get(root, key);
  *out = NULL;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v)) return ORR_ECORRUPT;
  *out = orr_arena_strndup(a, json_string_value(v), json_string_length(v));
  return *out ? 0 : ORR_ENOMEM;
}

static int opt_int(json_t *root, const char *key, int64_t *out) {
  json_t *v = json_object_get(root, key);
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v)) return ORR_ECORRUPT;
  *out = (int64_t)json_integer_value(v);
  return 0;
}

int bucket_deletion_mark_parse(const char *json, size_t n, orr_arena *a, bucket_deletion_mark *out,
                               char *err, size_t errlen) {
  json_t *root = NULL;
  memset(out, 0, sizeof(*out));
  int rc = parse_common(json, n, "deletion-mark.json", &root, &out->id, &out->version, err, errlen);
  if (rc == 0 && (rc = opt_int(root, "deletion_time", &out->deletion_time)) != 0)
    snprintf(err, errlen, "deletion-mark.json: bad \"deletion_time\"");
  if (rc == 0 && (rc = opt_str(root, "details", a, &out->details)) == ORR_ECORRUPT)
    snprintf(err, errlen, "deletion-mark.json: bad \"details\"");
  if (root) json_decref(root);
  return rc;
}

int bucket_no_compact_mark_parse(const char *json, size_t n, orr_arena *a,
                                 bucket_no_compact_mark *out, char *err, size_t errlen) {
  json_t *root = NULL;
  memset(out, 0, sizeof(*out));
  int rc =
      parse_common(json, n, "no-compact-mark.json", &root, &out->id, &out->version, err, errlen);
  if (rc == 0 && (rc = opt_int(root, "no_compact_time", &out->no_compact_time)) != 0)
    snprintf(err, errlen, "no-compact-mark.json: bad \"no_compact_time\"");
  if (rc == 0 && (rc = opt_str(root, "details", a, &out->details)) == ORR_ECORRUPT)
    snprintf(err, errlen, "no-compact-mark.json: bad \"details\"");
  if (rc == 0 && (rc = opt_str(root, "reason", a, &out->reason)) == ORR_ECORRUPT)
    snprintf(err, errlen, "no-compact-mark.json: bad \"reason\"");
  if (root) json_decref(root);
  return rc;
}

/* Appends a JSON string as Go's encoding/json does (HTML-safe escaping). */
static void go_str(orr_buf *b, const char *s) {
  orr_buf_putc(b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': orr_buf_puts(b, "\\\""); break;
      case '\\': orr_buf_puts(b, "\\\\"); break;
      case '\n': orr_buf_puts(b, "\\n"); break;
      case '\r': orr_buf_puts(b, "\\r"); break;
      case '\t': orr_buf_puts(b, "\\t"); break;
      case '<': case '>': case '&': orr_buf_printf(b, "\\u%04x", *p); break;
      default:
        if (*p < 0x20)
          orr_buf_printf(b, "\\u%04x", *p);
        else
          orr_buf_putc(b, (char)*p);
    }
  }
  orr_buf_putc(b, '"');
}

int bucket_deletion_mark_encode(const bucket_deletion_mark *m, orr_buf *out) {
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&m->id, id);
  orr_buf_printf(out, "{\"id\":\"%s\",\"deletion_time\":%lld,\"version\":%d", id,
                 (long long)m->deletion_time, m->version ? m->version : BUCKET_MARK_VERSION);
  if (m->details && m->details[0]) {
    orr_buf_puts(out, ",\"details\":");
    go_str(out, m->details);
  }
  orr_buf_putc(out, '}');
  return out->oom ? ORR_ENOMEM : 0;
}

int bucket_no_compact_mark_encode(const bucket_no_compact_mark *m, orr_buf *out) {
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&m->id, id);
  orr_buf_printf(out, "{\"id\":\"%s\",\"version\":%d", id,
                 m->version ? m->version : BUCKET_MARK_VERSION);
  if (m->details && m->details[0]) {
    orr_buf_puts(out, ",\"details\":");
    go_str(out, m->details);
  }
  orr_buf_printf(out, ",\"no_compact_time\":%lld,\"reason\":", (long long)m->no_compact_time);
  go_str(out, m->reason ? m->reason : "");
  orr_buf_putc(out, '}');
  return out->oom ? ORR_ENOMEM : 0;
}

static int read_mark(objstore_bucket *b, const tsdb_ulid *id, const char *file, orr_buf *body,
                     char *err, size_t errlen) {
  char s[TSDB_ULID_STRLEN + 1], key[96];
  tsdb_ulid_format(id, s);
  snprintf(key, sizeof key, "%s/%s", s, file);
  return objstore_get(b, key, MARK_MAX_BYTES, body, err, errlen);
}

int bucket_deletion_mark_read(objstore_bucket *b, const tsdb_ulid *id, orr_arena *a,
                              bucket_deletion_mark *out, char *err, size_t errlen) {
  orr_buf body = {0};
  int rc = read_mark(b, id, BUCKET_DELETION_MARK_FILE, &body, err, errlen);
  if (rc == 0) rc = bucket_deletion_mark_parse(body.data ? body.data : "", body.len, a, out, err, errlen);
  orr_buf_free(&body);
  return rc;
}

int bucket_no_compact_mark_read(objstore_bucket *b, const tsdb_ulid *id, orr_arena *a,
                                bucket_no_compact_mark *out, char *err, size_t errlen) {
  orr_buf body = {0};
  int rc = read_mark(b, id, BUCKET_NO_COMPACT_MARK_FILE, &body, err, errlen);
  if (rc == 0)
    rc = bucket_no_compact_mark_parse(body.data ? body.data : "", body.len, a, out, err, errlen);
  orr_buf_free(&body);
  return rc;
}

static int write_mark(objstore_bucket *b, const tsdb_ulid *id, const char *file, orr_buf *body,
                      char *err, size_t errlen) {
  char s[TSDB_ULID_STRLEN + 1], key[96];
  tsdb_ulid_format(id, s);
  snprintf(key, sizeof key, "%s/%s", s, file);
  return objstore_put(b, key, body->data, body->len, err, errlen);
}

int bucket_deletion_mark_write(objstore_bucket *b, const bucket_deletion_mark *m, char *err,
                               size_t errlen) {
  orr_buf body = {0};
  int rc = bucket_deletion_mark_encode(m, &body);
  if (rc == 0) rc = write_mark(b, &m->id, BUCKET_DELETION_MARK_FILE, &body, err, errlen);
  orr_buf_free(&body);
  return rc;
}

int bucket_no_compact_mark_write(objstore_bucket *b, const bucket_no_compact_mark *m, char *err,
                                 size_t errlen) {
  orr_buf body = {0};
  int rc = bucket_no_compact_mark_encode(m, &body);
  if (rc == 0) rc = write_mark(b, &m->id, BUCKET_NO_COMPACT_MARK_FILE, &body, err, errlen);
  orr_buf_free(&body);
  return rc;
}
