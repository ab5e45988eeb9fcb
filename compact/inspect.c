/* inspect.c: the bucket tools the compactor's catalogue makes easy —
 * `orrery tools bucket inspect` (a table of blocks) and `orrery tools
 * bucket mark` (Thanos's deletion / no-compact marks). */
#include <stdio.h>
#include <string.h>

#include "compact.h"
#include "compact_int.h"

static void fmt_time(int64_t ms, char *out, size_t n) {
  orr_format_rfc3339(ms, out, n);
}

int compact_bucket_inspect(objstore_bucket *b, FILE *out, char *err, size_t errlen) {
  compact_catalogue c;
  int rc = compact_catalogue_load(b, true, &c, err, errlen);
  if (rc) {
    compact_catalogue_free(&c);
    return rc;
  }
  fprintf(out, "%-26s  %-24s  %-24s  %-9s  %5s  %10s  %8s  %12s  %12s  %-10s  %s\n", "ULID", "FROM",
          "UNTIL", "RANGE", "LEVEL", "RESOLUTION", "SERIES", "SAMPLES", "SIZE", "MARKS",
          "LABELS");
  for (size_t i = 0; i < c.n; i++) {
    const compact_block *bl = &c.v[i];
    char from[64] = "-", until[64] = "-", range[48] = "-", res[48] = "-";
    orr_buf labels = {0};
    if (bl->has_meta) {
      fmt_time(bl->meta.min_time, from, sizeof(from));
      fmt_time(bl->meta.max_time, until, sizeof(until));
      orr_format_duration(bl->meta.max_time - bl->meta.min_time, range, sizeof(range));
      int64_t r = bl->meta.has_thanos ? bl->meta.thanos.downsample_resolution : 0;
      if (r == 0) snprintf(res, sizeof(res), "raw");
      else orr_format_duration(r, res, sizeof(res));
      if (bl->meta.has_thanos) labels_format(&bl->meta.thanos.labels, &labels);
      else orr_buf_puts(&labels, "{}");
    } else {
      orr_buf_puts(&labels, "(no meta.json: partial upload)");
    }
    char marks[32] = "";
    if (bl->deletion_marked) strcat(marks, "deletion");
    if (bl->no_compact) strcat(marks, marks[0] ? ",no-compact" : "no-compact");
    if (!marks[0]) strcpy(marks, "-");
    fprintf(out, "%-26s  %-24s  %-24s  %-9s  %5d  %10s  %8llu  %12llu  %12llu  %-10s  %.*s\n",
            bl->id, from, until, range, bl->has_meta ? bl->meta.level : 0, res,
            (unsigned long long)bl->meta.num_series, (unsigned long long)bl->meta.num_samples,
            (unsigned long long)bl->size_bytes, marks, (int)labels.len,
            labels.data ? (const char *)labels.data : "");
    orr_buf_free(&labels);
  }
  compact_catalogue_free(&c);
  return 0;
}

int compact_bucket_mark(objstore_bucket *b, const char *id, const char *marker,
                        const char *details, char *err, size_t errlen) {
  tsdb_ulid u;
  if (!id || strlen(id) != TSDB_ULID_STRLEN || tsdb_ulid_parse(id, strlen(id), &u) != 0) {
    snprintf(err, errlen, "--id: not a ULID: \"%s\"", id ? id : "");
    return ORR_EINVAL;
  }
  if (!marker || (strcmp(marker, COMPACT_DELETION_MARK) != 0 &&
                  strcmp(marker, COMPACT_NO_COMPACT_MARK) != 0)) {
    snprintf(err, errlen, "--marker: want %s or %s", COMPACT_DELETION_MARK,
             COMPACT_NO_COMPACT_MARK);
    return ORR_EINVAL;
  }
  char key[64];
  snprintf(key, sizeof(key), "%s/meta.json", id);
  int exists = 0;
  int rc = objstore_exists(b, key, &exists, err, errlen);
  if (rc) return rc;
  if (!exists) {
    snprintf(err, errlen, "block %s not found in the bucket (no meta.json)", id);
    return ORR_ENOTFOUND;
  }
  return compact_mark(b, id, marker, "manual", details, orr_now_ms() / 1000, err, errlen);
}
