/* block.c: `orrery tools block ls|inspect|dump|verify` over local
 * block directories — listing like `promtool tsdb list`, analysis like
 * `promtool tsdb analyze`, dumps in `promtool tsdb dump`'s line format, and
 * full verification of blocks and of overlaps between them. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "promql.h"
#include "tools.h"
#include "tsdb.h"

/* ---------------------------------------------------------------- helpers */

static int usage(const char *path, const char *fmt, ...) ORR_PRINTF(2, 3);
static int usage(const char *path, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", path);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 2;
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_block_dir(const char *p) {
  char m[4096];
  snprintf(m, sizeof(m), "%s/meta.json", p);
  struct stat st;
  return stat(m, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory of a FILESYSTEM bucket configuration (`directory:`), from
 * the file or the inline YAML. Returns NULL (reason in |err|) otherwise. */
static char *bucket_dir(const char *file, const char *inline_, char *err, size_t errlen) {
  orr_buf b = {0};
  if (file) {
    FILE *f = fopen(file, "r");
    if (!f) {
      snprintf(err, errlen, "%s: %s", file, strerror(errno));
      return NULL;
    }
    char tmp[4096];
    size_t k;
    while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0) orr_buf_append(&b, tmp, k);
    fclose(f);
  } else {
    orr_buf_puts(&b, inline_);
  }
  char *res = NULL;
  const char *s = b.data ? b.data : "";
  const char *t = strstr(s, "type:");
  if (!t) {
    snprintf(err, errlen, "bucket configuration has no type");
    goto out;
  }
  t += 5;
  while (*t == ' ' || *t == '"' || *t == '\'') t++;
  if (strncasecmp(t, "FILESYSTEM", 10) != 0) {
    snprintf(err, errlen, "only FILESYSTEM buckets are supported by tools block");
    goto out;
  }
  const char *d = strstr(s, "directory:");
  if (!d) {
    snprintf(err, errlen, "FILESYSTEM bucket configuration has no directory");
    goto out;
  }
  d += 10;
  while (*d == ' ' || *d == '"' || *d == '\'') d++;
  size_t n = strcspn(d, "\"'\r\n");
  while (n > 0 && d[n - 1] == ' ') n--;
  res = strndup(d, n);
out:
  orr_buf_free(&b);
  return res;
}

/* Resolves the single directory a command works on: the positional argument
 * or the bucket configuration. Caller frees. */
static char *target_dir(int argc, char **argv, const char *file, const char *inline_,
                        int *status) {
  char err[512];
  if (argc > 2) {
    *status = usage(argv[0], "expected one directory, got %d arguments", argc - 1);
    return NULL;
  }
  if (argc == 2) {
    if (!is_dir(argv[1])) {
      *status = usage(argv[0], "%s: not a directory", argv[1]);
      return NULL;
    }
    return strdup(argv[1]);
  }
  if (file || inline_) {
    char *d = bucket_dir(file, inline_, err, sizeof(err));
    if (!d) *status = usage(argv[0], "%s", err);
    return d;
  }
  *status = usage(argv[0], "expected a directory of blocks (or --objstore.config-file)");
  return NULL;
}

static void fmt_time(int64_t ms, char *out, size_t n) { orr_format_rfc3339(ms, out, n); }

static void fmt_size(uint64_t b, bool human, char *out, size_t n) {
  if (!human) {
    snprintf(out, n, "%" PRIu64, b);
    return;
  }
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)b;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(out, n, "%" PRIu64 "B", b);
  else
    snprintf(out, n, "%.1f%s", v, units[u]);
}

/* Appends Go's strconv.Quote of |s| using the labels module's formatting. */
static void put_quoted(orr_buf *out, const char *s) {
  labels_label l = {"x", s};
  labels_set one = {&l, 1};
  orr_buf t = {0};
  labels_format(&one, &t); /* {x="..."} */
  if (t.data && t.len >= 5) orr_buf_append(out, t.data + 3, t.len - 4);
  orr_buf_free(&t);
}

/* Prometheus's labels.String(): {a="1", b="2"} in label order. */
static void put_labels(orr_buf *out, const labels_set *ls) {
  orr_buf_putc(out, '{');
  for (size_t i = 0; i < ls->n; i++) {
    if (i) orr_buf_puts(out, ", ");
    orr_buf_puts(out, ls->v[i].name);
    orr_buf_putc(out, '=');
    put_quoted(out, ls->v[i].value);
  }
  orr_buf_putc(out, '}');
}

/* ---------------------------------------------------------------- ls */
static struct {
  const char *objstore_file, *objstore, *output;
  int human;
} ls_opt;
static const orr_flag ls_flags[] = {
    CLI_OBJSTORE_FLAGS(&ls_opt.objstore_file, &ls_opt.objstore),
    {"output", ORR_FLAG_STRING, &ls_opt.output, "table", "Output format: table or json.", NULL},
    {"human-readable", ORR_FLAG_BOOL, &ls_opt.human, "false",
     "Print sizes in human-readable units.", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

enum { LS_COLS = 13 };
static const char *const ls_head[LS_COLS] = {
    "BLOCK ULID", "MIN TIME", "MAX TIME", "MIN TIME (MS)", "MAX TIME (MS)", "DURATION",
    "NUM SAMPLES", "NUM CHUNKS", "NUM SERIES", "LEVEL", "RESOLUTION", "SIZE", "LABELS"};

static int run_ls(int argc, char **argv) {
  int status = 0;
  bool json = false;
  if (ls_opt.output && strcmp(ls_opt.output, "json") == 0)
    json = true;
  else if (ls_opt.output && strcmp(ls_opt.output, "table") != 0)
    return usage(argv[0], "invalid value \"%s\" for --output: must be table or json",
                 ls_opt.output);
  char *dir = target_dir(argc, argv, ls_opt.objstore_file, ls_opt.objstore, &status);
  if (!dir) return status;
  orr_arena *a = orr_arena_new(0);
  tsdb_block_entry *e = NULL;
  size_t n = 0;
  char err[512];
  int rc = a ? tsdb_block_list(dir, a, &e, &n, err, sizeof(err)) : ORR_ENOMEM;
  if (rc) {
    fprintf(stderr, "%s: %s\n", argv[0], rc == ORR_ENOMEM ? "out of memory" : err);
    status = 1;
    goto out;
  }
  /* Rows as strings, then aligned like Go's tabwriter (two spaces). */
  char *(*rows)[LS_COLS] = calloc(n + 1, sizeof(*rows));
  size_t width[LS_COLS];
  for (int c = 0; c < LS_COLS; c++) width[c] = strlen(ls_head[c]);
  size_t nr = 0;
  orr_buf js = {0};
  if (json) orr_buf_putc(&js, '[');
  for (size_t i = 0; rows && i < n; i++) {
    if (!e[i].meta_ok) {
      fprintf(stderr, "%s: %s\n", argv[0], e[i].err);
      status = 1;
      continue;
    }
    const tsdb_meta *m = &e[i].meta;
    char ulid[TSDB_ULID_STRLEN + 1], t0[48], t1[48], dur[48], sz[32], res[48];
    tsdb_ulid_format(&m->ulid, ulid);
    fmt_time(m->min_time, t0, sizeof(t0));
    fmt_time(m->max_time, t1, sizeof(t1));
    orr_format_duration(m->max_time - m->min_time, dur, sizeof(dur));
    fmt_size(e[i].size_bytes, ls_opt.human, sz, sizeof(sz));
    int64_t resol = m->has_thanos ? m->thanos.downsample_resolution : 0;
    if (resol)
      orr_format_duration(resol, res, sizeof(res));
    else
      snprintf(res, sizeof(res), "0s");
    orr_buf lb = {0};
    if (m->has_thanos) put_labels(&lb, &m->thanos.labels);
    else orr_buf_puts(&lb, "{}");
    if (json) {
      orr_buf_printf(&js,
                     "%s\n  {\"ulid\": \"%s\", \"minTime\": %" PRId64 ", \"maxTime\": %" PRId64
                     ", \"minTimeRFC3339\": \"%s\", \"maxTimeRFC3339\": \"%s\", "
                     "\"numSamples\": %" PRIu64 ", \"numChunks\": %" PRIu64
                     ", \"numSeries\": %" PRIu64 ", \"level\": %d, \"resolution\": %" PRId64
                     ", \"sizeBytes\": %" PRIu64 ", \"labels\": {",
                     nr ? "," : "", ulid, m->min_time, m->max_time, t0, t1, m->num_samples,
                     m->num_chunks, m->num_series, m->level, resol, e[i].size_bytes);
      for (size_t k = 0; m->has_thanos && k < m->thanos.labels.n; k++) {
        orr_buf_printf(&js, "%s\"", k ? ", " : "");
        orr_buf_json_escape(&js, m->thanos.labels.v[k].name, strlen(m->thanos.labels.v[k].name));
        orr_buf_puts(&js, "\": \"");
        orr_buf_json_escape(&js, m->thanos.labels.v[k].value,
                            strlen(m->thanos.labels.v[k].value));
        orr_buf_putc(&js, '"');
      }
      orr_buf_puts(&js, "}}");
    }
    char *cells[LS_COLS] = {
        orr_arena_strdup(a, ulid), orr_arena_strdup(a, t0), orr_arena_strdup(a, t1),
        orr_arena_sprintf(a, "%" PRId64, m->min_time), orr_arena_sprintf(a, "%" PRId64, m->max_time),
        orr_arena_strdup(a, dur), orr_arena_sprintf(a, "%" PRIu64, m->num_samples),
        orr_arena_sprintf(a, "%" PRIu64, m->num_chunks),
        orr_arena_sprintf(a, "%" PRIu64, m->num_series), orr_arena_sprintf(a, "%d", m->level),
        orr_arena_strdup(a, res), orr_arena_strdup(a, sz),
        orr_arena_strdup(a, lb.data ? lb.data : "{}")};
    orr_buf_free(&lb);
    for (int c = 0; c < LS_COLS; c++) {
      rows[nr][c] = cells[c] ? cells[c] : "";
      if (strlen(rows[nr][c]) > width[c]) width[c] = strlen(rows[nr][c]);
    }
    nr++;
  }
  if (json) {
    orr_buf_puts(&js, nr ? "\n]\n" : "]\n");
    fwrite(js.data, 1, js.len, stdout);
  } else {
    for (int c = 0; c < LS_COLS; c++)
      printf("%-*s%s", c < LS_COLS - 1 ? (int)width[c] : 0, ls_head[c], c < LS_COLS - 1 ? "  " : "\n");
    for (size_t r = 0; r < nr; r++)
      for (int c = 0; c < LS_COLS; c++)
        printf("%-*s%s", c < LS_COLS - 1 ? (int)width[c] : 0, rows[r][c],
               c < LS_COLS - 1 ? "  " : "\n");
  }
  orr_buf_free(&js);
  free(rows);
out:
  orr_arena_destroy(a);
  free(dir);
  return status;
}

/* ---------------------------------------------------------------- inspect */
static struct {
  int64_t limit;
} inspect_opt;
static const orr_flag inspect_flags[] = {
    {"limit", ORR_FLAG_INT, &inspect_opt.limit, "20", "How many items to show in each list.",
     NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

typedef struct stat_row {
  const char *key;
  uint64_t n;
} stat_row;

static int row_cmp(const void *x, const void *y) {
  const stat_row *a = x, *b = y;
  if (a->n != b->n) return a->n < b->n ? 1 : -1;
  return strcmp(a->key, b->key);
}

static void print_top(const char *title, stat_row *v, size_t n, int64_t limit) {
  qsort(v, n, sizeof(*v), row_cmp);
  printf("\n%s:\n", title);
  for (size_t i = 0; i < n && (int64_t)i < limit; i++) printf("%" PRIu64 " %s\n", v[i].n, v[i].key);
}

static int count_postings(const tsdb_index_reader *ix, const char *name, const char *value,
                          orr_arena *a, uint64_t *out) {
  tsdb_postings *p;
  int rc = tsdb_index_postings(ix, name, &value, 1, a, &p);
  if (rc) return rc;
  uint64_t n = 0;
  while (tsdb_postings_next(p)) n++;
  *out = n;
  return 0;
}

static int run_inspect(int argc, char **argv) {
  if (argc != 2) return usage(argv[0], "expected one block directory");
  if (!is_block_dir(argv[1])) return usage(argv[0], "%s: not a block directory (no meta.json)", argv[1]);
  if (inspect_opt.limit <= 0) return usage(argv[0], "--limit must be positive");
  char err[1024];
  tsdb_block *b;
  int rc = tsdb_block_open(argv[1], &b, err, sizeof(err));
  if (rc) {
    fprintf(stderr, "%s: %s\n", argv[0], err);
    return 1;
  }
  int status = 0;
  orr_arena *a = orr_arena_new(0), *tmp = orr_arena_new(0);
  const tsdb_index_reader *ix = tsdb_block_index(b);
  const tsdb_meta *m = tsdb_block_meta(b);
  const char **names;
  size_t nnames;
  stat_row *card = NULL, *lens = NULL, *pairs = NULL, *metrics = NULL;
  size_t npairs = 0, cpairs = 0, nmetrics = 0;
  uint64_t entries = 0, nseries = 0;
  if (!a || !tmp || (rc = tsdb_block_label_names(b, NULL, 0, a, &names, &nnames)) != 0) goto fail;
  card = calloc(nnames + 1, sizeof(*card));
  lens = calloc(nnames + 1, sizeof(*lens));
  if (!card || !lens) goto fail;
  for (size_t i = 0; i < nnames; i++) {
    const char **vals;
    size_t nv;
    if ((rc = tsdb_block_label_values(b, names[i], NULL, 0, a, &vals, &nv)) != 0) goto fail;
    card[i] = (stat_row){names[i], nv};
    lens[i] = (stat_row){names[i], 0};
    bool is_name = strcmp(names[i], LABELS_METRIC_NAME) == 0;
    if (is_name && !(metrics = calloc(nv + 1, sizeof(*metrics)))) goto fail;
    for (size_t j = 0; j < nv; j++) {
      lens[i].n += strlen(vals[j]);
      uint64_t cnt;
      orr_arena_reset(tmp);
      if ((rc = count_postings(ix, names[i], vals[j], tmp, &cnt)) != 0) goto fail;
      entries += cnt;
      if (is_name) metrics[nmetrics++] = (stat_row){vals[j], cnt};
      if (npairs == cpairs) {
        size_t nc = cpairs ? cpairs * 2 : 256;
        stat_row *np = realloc(pairs, nc * sizeof(*np));
        if (!np) goto fail;
        pairs = np;
        cpairs = nc;
      }
      pairs[npairs++] = (stat_row){orr_arena_sprintf(a, "%s=%s", names[i], vals[j]), cnt};
    }
  }
  {
    tsdb_postings *p;
    if ((rc = tsdb_index_all_postings(ix, a, &p)) != 0) goto fail;
    while (tsdb_postings_next(p)) nseries++;
  }
  char ulid[TSDB_ULID_STRLEN + 1], dur[48], t0[48], t1[48];
  tsdb_ulid_format(&m->ulid, ulid);
  orr_format_duration(m->max_time - m->min_time, dur, sizeof(dur));
  fmt_time(m->min_time, t0, sizeof(t0));
  fmt_time(m->max_time, t1, sizeof(t1));
  printf("Block ID: %s\n", ulid);
  printf("Time range: %s - %s (%" PRId64 " - %" PRId64 ")\n", t0, t1, m->min_time, m->max_time);
  printf("Duration: %s\n", dur);
  printf("Series: %" PRIu64 "\n", nseries);
  printf("Label names: %zu\n", nnames);
  printf("Postings (unique label pairs): %zu\n", npairs);
  printf("Postings entries (total label pairs): %" PRIu64 "\n", entries);
  stat_row *byname = calloc(nnames + 1, sizeof(*byname));
  if (!byname) goto fail;
  memcpy(byname, card, nnames * sizeof(*card));
  printf("\nLabel names with value counts:\n");
  for (size_t i = 0; i < nnames; i++) printf("%s: %" PRIu64 "\n", byname[i].key, byname[i].n);
  free(byname);
  print_top("Most common label pairs", pairs, npairs, inspect_opt.limit);
  print_top("Label names with highest cumulative label value length", lens, nnames,
            inspect_opt.limit);
  print_top("Highest cardinality labels", card, nnames, inspect_opt.limit);
  print_top("Highest cardinality metric names", metrics, nmetrics, inspect_opt.limit);
  goto out;
fail:
  fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1],
          rc == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(rc ? rc : ORR_ENOMEM));
  status = 1;
out:
  free(card);
  free(lens);
  free(pairs);
  free(metrics);
  orr_arena_destroy(a);
  orr_arena_destroy(tmp);
  tsdb_block_close(b);
  return status;
}

/* ---------------------------------------------------------------- dump */
static struct {
  orr_strings match;
  const char *min_time, *max_time;
} dump_opt;
static const orr_flag dump_flags[] = {
    {"match", ORR_FLAG_STRINGS, &dump_opt.match, NULL,
     "Series selector (default: every series).", "<selector>"},
    {"min-time", ORR_FLAG_STRING, &dump_opt.min_time, NULL,
     "Minimum timestamp to dump: milliseconds (as promtool), RFC3339 or unix seconds with a "
     "fraction.", "<time>"},
    {"max-time", ORR_FLAG_STRING, &dump_opt.max_time, NULL,
     "Maximum timestamp to dump (inclusive), as --min-time.", "<time>"},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* An integer is milliseconds (promtool's flags); anything else goes through
 * the API time parser. */
static int parse_ms(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (*s && *end == '\0' && errno == 0) {
    *out = v;
    return 0;
  }
  return orr_parse_time(s, out);
}

/* One block's selection in a dump: its current series, if any. */
typedef struct dump_src {
  const char *dir;
  tsdb_block *b;
  orr_arena *a;
  tsdb_series_set *ss;
  const tsdb_series *cur; /* NULL: drained */
  tsdb_series_iter it;
  int have; /* it holds an unread sample */
  bool in;  /* holds the series being merged */
} dump_src;

static int dump_advance(dump_src *d, char *err, size_t errlen) {
  int rc = tsdb_series_set_next(d->ss, &d->cur);
  if (rc < 0) {
    snprintf(err, errlen, "%s", tsdb_series_set_error(d->ss));
    return rc;
  }
  if (rc == 0) d->cur = NULL;
  return 0;
}

static int dump_sample(dump_src *d, char *err, size_t errlen) {
  int rc = tsdb_series_iter_next(&d->it);
  if (rc < 0) {
    orr_buf fl = {0};
    labels_format(&d->cur->labels, &fl);
    snprintf(err, errlen, "%s/chunks: series %s: %s", d->dir, fl.data ? fl.data : "{}",
             rc == ORR_EUNSUPPORTED ? "chunk encoding not supported by dump"
                                    : "undecodable chunk");
    orr_buf_free(&fl);
    return rc;
  }
  d->have = rc;
  return 0;
}

/* Dumps the blocks |e| (sorted by minTime) as Prometheus's querier reads
 * them: series in label order across blocks; the samples of a series from
 * all blocks merged by time, a timestamp seen in several blocks printed
 * once (from the earliest block). */
static int dump_blocks(const tsdb_block_entry *e, size_t n, labels_matcher *const *ms, size_t nms,
                       int64_t mint, int64_t maxt, char *err, size_t errlen) {
  dump_src *src = calloc(n + 1, sizeof(*src));
  orr_buf out = {0}, lb = {0};
  int rc = 0;
  if (!src) return ORR_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    src[i].dir = e[i].dir;
    if ((rc = tsdb_block_open(e[i].dir, &src[i].b, err, errlen)) != 0) goto out;
    if (!(src[i].a = orr_arena_new(0))) {
      rc = ORR_ENOMEM;
      goto out;
    }
    rc = tsdb_block_select(src[i].b, ms, nms, mint, maxt, src[i].a, &src[i].ss);
    if (rc) {
      snprintf(err, errlen, "%s/index: %s", e[i].dir,
               rc == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(rc));
      goto out;
    }
    if ((rc = dump_advance(&src[i], err, errlen)) != 0) goto out;
  }
  for (;;) {
    /* The smallest current series, and every block holding it. */
    const labels_set *min = NULL;
    for (size_t i = 0; i < n; i++)
      if (src[i].cur && (!min || labels_cmp(&src[i].cur->labels, min) < 0))
        min = &src[i].cur->labels;
    if (!min) break;
    orr_buf_reset(&lb);
    put_labels(&lb, min);
    for (size_t i = 0; i < n; i++) {
      src[i].in = src[i].cur && labels_equal(&src[i].cur->labels, min);
      if (!src[i].in) continue;
      tsdb_series_iter_init(&src[i].it, src[i].cur);
      if ((rc = dump_sample(&src[i], err, errlen)) != 0) goto out;
    }
    for (;;) {
      size_t pick = n;
      for (size_t i = 0; i < n; i++)
        if (src[i].in && src[i].have && (pick == n || src[i].it.t < src[pick].it.t)) pick = i;
      if (pick == n) break;
      int64_t t = src[pick].it.t;
      char v[40];
      orr_format_float(src[pick].it.v, v, sizeof(v));
      orr_buf_append(&out, lb.data, lb.len);
      orr_buf_printf(&out, " %s %" PRId64 "\n", v, t);
      for (size_t i = 0; i < n; i++) /* drop the same timestamp elsewhere */
        while (src[i].in && src[i].have && src[i].it.t == t)
          if ((rc = dump_sample(&src[i], err, errlen)) != 0) goto out;
      if (out.len >= (1 << 20)) {
        fwrite(out.data, 1, out.len, stdout);
        orr_buf_reset(&out);
      }
    }
    if (out.oom || lb.oom) {
      rc = ORR_ENOMEM;
      snprintf(err, errlen, "out of memory");
      goto out;
    }
    for (size_t i = 0; i < n; i++)
      if (src[i].in && (rc = dump_advance(&src[i], err, errlen)) != 0) goto out;
  }
out:
  if (out.len) fwrite(out.data, 1, out.len, stdout);
  orr_buf_free(&out);
  orr_buf_free(&lb);
  for (size_t i = 0; i < n; i++) {
    tsdb_series_set_close(src[i].ss);
    orr_arena_destroy(src[i].a);
    tsdb_block_close(src[i].b);
  }
  free(src);
  return rc;
}

static int block_min_cmp(const void *x, const void *y) {
  const tsdb_block_entry *a = x, *b = y;
  if (a->meta.min_time != b->meta.min_time) return a->meta.min_time < b->meta.min_time ? -1 : 1;
  return strcmp(a->dir, b->dir);
}

static int run_dump(int argc, char **argv) {
  if (argc != 2) return usage(argv[0], "expected one directory (a block or a directory of blocks)");
  if (!is_dir(argv[1])) return usage(argv[0], "%s: not a directory", argv[1]);
  int64_t mint = INT64_MIN, maxt = INT64_MAX;
  if (dump_opt.min_time && parse_ms(dump_opt.min_time, &mint))
    return usage(argv[0], "invalid value \"%s\" for --min-time", dump_opt.min_time);
  if (dump_opt.max_time && parse_ms(dump_opt.max_time, &maxt))
    return usage(argv[0], "invalid value \"%s\" for --max-time", dump_opt.max_time);
  if (dump_opt.match.n > 1) return usage(argv[0], "only one --match is supported");
  orr_arena *a = orr_arena_new(0);
  if (!a) return 1;
  promql_ast *ast = NULL;
  labels_matcher *const *ms = NULL;
  size_t nms = 0;
  int status = 0;
  char err[1024] = "";
  if (dump_opt.match.n == 1) {
    promql_error perr;
    const char *q = dump_opt.match.v[0];
    if (promql_parse_metric_selector(a, q, strlen(q), &ast, &perr) != 0) {
      status = usage(argv[0], "invalid value \"%s\" for --match: %s", q, perr.msg);
      goto out;
    }
    promql_expr *root = promql_ast_root(ast);
    ms = root->u.vs.matchers;
    nms = root->u.vs.nmatchers;
  }
  tsdb_block_entry *e = NULL;
  size_t n = 0;
  if (is_block_dir(argv[1])) {
    e = orr_arena_calloc(a, 1, sizeof(*e));
    e->dir = argv[1];
    e->meta_ok = true;
    n = 1;
  } else {
    int rc = tsdb_block_list(argv[1], a, &e, &n, err, sizeof(err));
    if (rc) {
      fprintf(stderr, "%s: %s\n", argv[0], err);
      status = 1;
      goto out;
    }
    qsort(e, n, sizeof(*e), block_min_cmp);
  }
  /* Blocks that can hold samples in range. */
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!e[i].meta_ok) {
      fprintf(stderr, "%s: %s\n", argv[0], e[i].err);
      status = 1;
      goto out;
    }
    if (n > 1 && (e[i].meta.max_time <= mint || e[i].meta.min_time > maxt)) continue;
    e[k++] = e[i];
  }
  if (dump_blocks(e, k, ms, nms, mint, maxt, err, sizeof(err)) != 0) {
    fflush(stdout);
    fprintf(stderr, "%s: %s\n", argv[0], err);
    status = 1;
  }
  if (fflush(stdout) != 0) status = 1;
out:
  promql_ast_free(ast);
  orr_arena_destroy(a);
  return status;
}

/* ---------------------------------------------------------------- verify */
static struct {
  orr_strings ids;
} verify_opt;
static const orr_flag verify_flags[] = {
    {"id", ORR_FLAG_STRINGS, &verify_opt.ids, NULL,
     "In a directory of blocks, verify only this block ULID. Repeatable.", "<ulid>"},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static void print_problem(void *arg, const char *msg) {
  (void)arg;
  printf("%s\n", msg);
}

static bool wanted(const char *dir) {
  if (verify_opt.ids.n == 0) return true;
  const char *base = strrchr(dir, '/');
  base = base ? base + 1 : dir;
  for (size_t i = 0; i < verify_opt.ids.n; i++)
    if (strcasecmp(base, verify_opt.ids.v[i]) == 0) return true;
  return false;
}

/* Reports blocks of |parent| with the same external labels and resolution
 * whose [minTime, maxTime) ranges overlap; returns how many pairs. */
static uint64_t check_overlaps(const char *parent, orr_arena *a) {
  tsdb_block_entry *e;
  size_t n;
  char err[512];
  if (tsdb_block_list(parent, a, &e, &n, err, sizeof(err)) != 0) return 0;
  qsort(e, n, sizeof(*e), block_min_cmp);
  uint64_t found = 0;
  for (size_t i = 0; i < n; i++) {
    if (!e[i].meta_ok) continue;
    for (size_t j = i + 1; j < n; j++) {
      if (!e[j].meta_ok) continue;
      if (e[j].meta.min_time >= e[i].meta.max_time) break;
      const tsdb_meta *x = &e[i].meta, *y = &e[j].meta;
      labels_set none = {0};
      const labels_set *lx = x->has_thanos ? &x->thanos.labels : &none;
      const labels_set *ly = y->has_thanos ? &y->thanos.labels : &none;
      int64_t rx = x->has_thanos ? x->thanos.downsample_resolution : 0;
      int64_t ry = y->has_thanos ? y->thanos.downsample_resolution : 0;
      if (!labels_equal(lx, ly) || rx != ry) continue;
      char ux[TSDB_ULID_STRLEN + 1], uy[TSDB_ULID_STRLEN + 1];
      tsdb_ulid_format(&x->ulid, ux);
      tsdb_ulid_format(&y->ulid, uy);
      printf("%s: blocks %s [%" PRId64 ", %" PRId64 ") and %s [%" PRId64 ", %" PRId64
             ") overlap by %" PRId64 "ms\n",
             parent, ux, x->min_time, x->max_time, uy, y->min_time, y->max_time,
             (x->max_time < y->max_time ? x->max_time : y->max_time) - y->min_time);
      found++;
    }
  }
  return found;
}

static int run_verify(int argc, char **argv) {
  if (argc < 2) return usage(argv[0], "expected one or more block directories");
  for (int i = 1; i < argc; i++)
    if (!is_dir(argv[i])) return usage(argv[0], "%s: not a directory", argv[i]);
  orr_arena *a = orr_arena_new(0);
  if (!a) return 1;
  /* Blocks to check, and the directories holding them (for overlaps). */
  const char **blocks = NULL, **parents = NULL;
  size_t nb = 0, np = 0, cap = 0;
  int status = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    tsdb_block_entry *e = NULL;
    size_t n = 0;
    char err[512];
    const char *parent;
    if (is_block_dir(arg)) {
      e = orr_arena_calloc(a, 1, sizeof(*e));
      e->dir = arg;
      n = 1;
      const char *sl = strrchr(arg, '/');
      parent = sl ? orr_arena_strndup(a, arg, (size_t)(sl - arg)) : ".";
      if (parent && !*parent) parent = "/";
    } else {
      if (tsdb_block_list(arg, a, &e, &n, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", argv[0], err);
        status = 1;
        goto out;
      }
      parent = arg;
    }
    if (nb + n + 1 > cap || np + 1 > cap) {
      size_t nc = (cap + n + 1) * 2;
      const char **b2 = orr_arena_alloc(a, nc * sizeof(*b2));
      const char **p2 = orr_arena_alloc(a, nc * sizeof(*p2));
      if (!b2 || !p2) {
        status = 1;
        goto out;
      }
      if (nb) memcpy(b2, blocks, nb * sizeof(*b2));
      if (np) memcpy(p2, parents, np * sizeof(*p2));
      blocks = b2;
      parents = p2;
      cap = nc;
    }
    for (size_t k = 0; k < n; k++)
      if (wanted(e[k].dir)) blocks[nb++] = e[k].dir;
    bool seen = false;
    for (size_t k = 0; k < np; k++) seen = seen || strcmp(parents[k], parent) == 0;
    if (!seen) parents[np++] = parent;
  }
  if (nb == 0) {
    status = usage(argv[0], "no blocks found");
    goto out;
  }
  uint64_t problems = 0, series = 0, chunks = 0, samples = 0;
  size_t bad_blocks = 0;
  for (size_t i = 0; i < nb; i++) {
    tsdb_verify_stats st;
    int rc = tsdb_block_verify(blocks[i], print_problem, NULL, &st);
    if (rc == ORR_ENOMEM) {
      fprintf(stderr, "%s: %s: out of memory\n", argv[0], blocks[i]);
      status = 1;
      goto out;
    }
    problems += st.problems;
    series += st.series;
    chunks += st.chunks;
    samples += st.samples;
    if (st.problems) bad_blocks++;
  }
  uint64_t overlaps = 0;
  for (size_t i = 0; i < np; i++) overlaps += check_overlaps(parents[i], a);
  if (problems || overlaps) {
    printf("%zu of %zu blocks have problems (%" PRIu64 " problems), %" PRIu64
           " overlapping block pairs\n", bad_blocks, nb, problems, overlaps);
    status = 1;
  } else {
    printf("%zu blocks verified: %" PRIu64 " series, %" PRIu64 " chunks, %" PRIu64
           " samples, no problems\n", nb, series, chunks, samples);
  }
out:
  orr_arena_destroy(a);
  return status;
}

/* ---------------------------------------------------------------- table */
static const cli_command block_ls = {
    "ls", "List the blocks in a directory of blocks (Prometheus data dir or filesystem bucket).",
    "[<dir>]", CLI_LOG, ls_flags, run_ls, NULL,
};
static const cli_command block_inspect = {
    "inspect", "Analyze a block: label names, value counts, highest cardinalities.",
    "<block-dir>", CLI_LOG, inspect_flags, run_inspect, NULL,
};
static const cli_command block_dump = {
    "dump", "Dump the samples of a block or a directory of blocks, as promtool tsdb dump.",
    "<block-dir>", CLI_LOG, dump_flags, run_dump, NULL,
};
static const cli_command block_verify = {
    "verify", "Verify blocks in full (CRCs, order, chunks, stats) and overlaps between them.",
    "<block-dir>...", CLI_LOG, verify_flags, run_verify, NULL,
};

static const cli_command *const block_cmds[] = {&block_ls, &block_inspect, &block_dump,
                                                &block_verify, NULL};
const cli_command tools_cmd_block = {
    "block", "Inspect, dump and verify blocks.", NULL, 0, NULL, NULL, block_cmds,
};
