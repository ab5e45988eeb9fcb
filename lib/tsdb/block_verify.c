/* block_verify.c: checks a block directory in full and reports every problem
 * found as one line naming the file, offset and series: CRCs, order of series
 * and postings, chunk references and time ranges, and meta.json's stats. */
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb_int.h"

/* Stop reporting the same kind of problem after this many lines. */
#define VERIFY_MAX_REPORTS 100

typedef struct vctx {
  const char *dir;
  void (*report)(void *arg, const char *msg);
  void *arg;
  tsdb_verify_stats st;
  tsdb_meta meta;
  bool meta_ok;
  tsdb_index_reader *index;
  tsdb_chunk_reader *chunks;
  /* From the walk of the series section: */
  uint64_t *refs; /* ascending */
  size_t nrefs, crefs;
  uint64_t *pair_off; /* per series: start of its pair hashes, then the end */
  size_t npo, cpo;
  uint64_t *pairs;    /* sorted label pair hashes of each series */
  size_t npairs, cpairs;
  uint64_t pair_total;
  int oom;
} vctx;

static void problem(vctx *c, const char *fmt, ...) ORR_PRINTF(2, 3);
static void problem(vctx *c, const char *fmt, ...) {
  c->st.problems++;
  if (c->st.problems > VERIFY_MAX_REPORTS) {
    if (c->st.problems == VERIFY_MAX_REPORTS + 1 && c->report)
      c->report(c->arg, "(more problems: only the first 100 are reported)");
    return;
  }
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (c->report) c->report(c->arg, msg);
}

static uint64_t pair_hash(const char *name, const char *value) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull;
  for (const char *p = value; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
  return h;
}

static int u64_cmp(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return a < b ? -1 : a > b;
}

static const char *fmt_labels(const labels_set *ls, orr_buf *b) {
  orr_buf_reset(b);
  labels_format(ls, b);
  return b->data ? b->data : "{}";
}

typedef struct walk_ctx {
  uint64_t n;
  const tsdb_chunk_reader *r;
} walk_ctx;

static int walk_chunk_cb(void *arg, uint64_t ref, const tsdb_chunk *ch) {
  (void)ref;
  (void)ch;
  walk_ctx *w = arg;
  /* Keep a whole-segment walk from keeping the segment resident. */
  if (++w->n % (16 * TSDB__RELEASE_EVERY) == 0) tsdb__chunk_reader_release(w->r);
  return 0;
}

/* Every chunk of every segment, for CRCs and framing. */
static void check_segments(vctx *c) {
  for (size_t s = 0; s < tsdb_chunk_reader_segments(c->chunks); s++) {
    walk_ctx w = {0, c->chunks};
    char msg[512] = "";
    int rc = tsdb_chunk_reader_walk(c->chunks, s, walk_chunk_cb, &w, msg, sizeof(msg));
    if (rc)
      problem(c, "%s/chunks/%s (after %llu good chunks)", c->dir, msg, (unsigned long long)w.n);
  }
}

/* Checks the samples of chunk |i| of a series against its meta. Returns the
 * number of samples. */
static uint64_t check_chunk(vctx *c, const char *lbl, size_t i, const tsdb_index_chunk_meta *m) {
  tsdb_chunk ch;
  char msg[512] = "";
  unsigned long long seg = m->ref >> 32, off = m->ref & 0xffffffffu;
  int rc = tsdb_chunk_reader_get(c->chunks, m->ref, &ch, msg, sizeof(msg));
  if (rc) {
    problem(c, "%s/chunks: series %s chunk %zu (ref %llu = segment %llu offset %llu): %s",
            c->dir, lbl, i, (unsigned long long)m->ref, seg, off, msg);
    return 0;
  }
  const uint8_t *data = ch.data;
  size_t len = ch.len;
  if (ch.enc == TSDB_ENC_AGGR) {
    /* Downsampled: check the count aggregate's timestamps. */
    tsdb_aggr_sub sub;
    if (tsdb_aggr_get(ch.data, ch.len, TSDB_AGGR_COUNT, &sub) != 0 || sub.enc != TSDB_ENC_XOR) {
      problem(c, "%s/chunks: series %s chunk %zu (segment %llu offset %llu): bad aggregate chunk",
              c->dir, lbl, i, seg, off);
      return 0;
    }
    data = sub.data;
    len = sub.len;
  } else if (ch.enc != TSDB_ENC_XOR) {
    return 0; /* histograms: CRC checked, not decoded */
  }
  tsdb_xor_iter it;
  tsdb_xor_iter_init(&it, data, len);
  uint64_t n = 0;
  int64_t first = 0, last = 0;
  bool order_ok = true;
  while ((rc = tsdb_xor_iter_next(&it)) == 1) {
    if (n == 0) first = it.t;
    else if (it.t <= last) order_ok = false;
    last = it.t;
    n++;
  }
  if (rc < 0) {
    problem(c, "%s/chunks: series %s chunk %zu (segment %llu offset %llu): undecodable XOR data "
            "after %llu samples", c->dir, lbl, i, seg, off, (unsigned long long)n);
    return n;
  }
  if (n == 0) {
    problem(c, "%s/chunks: series %s chunk %zu (segment %llu offset %llu): no samples", c->dir,
            lbl, i, seg, off);
    return 0;
  }
  if (!order_ok)
    problem(c, "%s/chunks: series %s chunk %zu (segment %llu offset %llu): timestamps not "
            "increasing", c->dir, lbl, i, seg, off);
  if (first != m->mint || last != m->maxt)
    problem(c, "%s/index: series %s chunk %zu: index says [%lld, %lld] but its samples span "
            "[%lld, %lld]", c->dir, lbl, i, (long long)m->mint, (long long)m->maxt,
            (long long)first, (long long)last);
  return n;
}

static int push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x) {
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 1024;
    uint64_t *nv = realloc(*v, ncap * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    *v = nv;
    *cap = ncap;
  }
  (*v)[(*n)++] = x;
  return 0;
}

static void check_series(vctx *c, uint64_t ref, const labels_set *ls,
                         const tsdb_index_chunk_meta *chks, size_t nchks, const labels_set *prev,
                         orr_buf *lb, orr_buf *pb) {
  const char *lbl = fmt_labels(ls, lb);
  uint64_t off = ref * 16;
  if (ls->n == 0) problem(c, "%s/index: series at offset %llu has no labels", c->dir,
                          (unsigned long long)off);
  for (size_t i = 0; i < ls->n; i++) {
    if (i > 0 && strcmp(ls->v[i - 1].name, ls->v[i].name) >= 0)
      problem(c, "%s/index: series %s at offset %llu: label names not sorted or repeated",
              c->dir, lbl, (unsigned long long)off);
    if (ls->v[i].value[0] == '\0')
      problem(c, "%s/index: series %s at offset %llu: label %s has an empty value", c->dir, lbl,
              (unsigned long long)off, ls->v[i].name);
  }
  if (prev && labels_cmp(prev, ls) >= 0)
    problem(c, "%s/index: series %s at offset %llu is not after the previous series %s", c->dir,
            lbl, (unsigned long long)off, fmt_labels(prev, pb));
  if (nchks == 0)
    problem(c, "%s/index: series %s at offset %llu has no chunks", c->dir, lbl,
            (unsigned long long)off);
  for (size_t i = 0; i < nchks; i++) {
    const tsdb_index_chunk_meta *m = &chks[i];
    if (m->mint > m->maxt)
      problem(c, "%s/index: series %s chunk %zu: minTime %lld after maxTime %lld", c->dir, lbl,
              i, (long long)m->mint, (long long)m->maxt);
    if (i > 0 && m->mint <= chks[i - 1].maxt)
      problem(c, "%s/index: series %s chunk %zu [%lld, %lld] overlaps or precedes chunk %zu "
              "[%lld, %lld]", c->dir, lbl, i, (long long)m->mint, (long long)m->maxt, i - 1,
              (long long)chks[i - 1].mint, (long long)chks[i - 1].maxt);
    if (c->meta_ok && (m->mint < c->meta.min_time || m->maxt >= c->meta.max_time))
      problem(c, "%s/index: series %s chunk %zu [%lld, %lld] outside the block's [%lld, %lld)",
              c->dir, lbl, i, (long long)m->mint, (long long)m->maxt,
              (long long)c->meta.min_time, (long long)c->meta.max_time);
    if (c->chunks) c->st.samples += check_chunk(c, lbl, i, m);
  }
  c->st.series++;
  c->st.chunks += nchks;
  if (c->chunks && c->st.series % TSDB__RELEASE_EVERY == 0) tsdb__chunk_reader_release(c->chunks);
}

/* Walks the series section entry by entry (16-byte aligned). */
static int walk_series(vctx *c, const uint8_t *b, size_t n) {
  tsdb_index_toc toc;
  tsdb_index_get_toc(c->index, &toc);
  if (toc.series == 0) return 0;
  uint64_t end = n - TSDB__INDEX_TOC_LEN;
  uint64_t after[] = {toc.label_indices, toc.postings, toc.label_offset_table,
                      toc.postings_offset_table};
  for (size_t i = 0; i < 4; i++)
    if (after[i] > toc.series && after[i] < end) end = after[i];
  orr_arena *a = orr_arena_new(0), *pa = orr_arena_new(0);
  orr_buf lb = {0}, pb = {0};
  labels_set prev = {0};
  bool have_prev = false;
  int rc = 0;
  if (!a || !pa) {
    rc = ORR_ENOMEM;
    goto out;
  }
  uint64_t off = toc.series;
  while (off < end) {
    off = (off + 15) & ~(uint64_t)15;
    if (off >= end) break;
    orr_dec d = orr_dec_make(b + off, end - off);
    uint64_t len;
    if (orr_dec_uvarint(&d, &len) || len > orr_dec_left(&d) || orr_dec_left(&d) - len < 4) {
      problem(c, "%s/index: series entry at offset %llu: length runs past the series section "
              "(ends at %llu); rest of the section not checked", c->dir, (unsigned long long)off,
              (unsigned long long)end);
      break;
    }
    uint64_t next = (uint64_t)(d.p - b) + len + 4;
    uint64_t ref = off / 16;
    labels_set ls;
    tsdb_index_chunk_meta *chks;
    size_t nchks;
    orr_arena_reset(a);
    int src = tsdb_index_series(c->index, ref, a, &ls, &chks, &nchks);
    if (src == ORR_ENOMEM) {
      rc = src;
      goto out;
    }
    if (src) {
      problem(c, "%s/index: %s", c->dir,
              src == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(src));
    } else {
      check_series(c, ref, &ls, chks, nchks, have_prev ? &prev : NULL, &lb, &pb);
      if (push_u64(&c->refs, &c->nrefs, &c->crefs, ref) ||
          push_u64(&c->pair_off, &c->npo, &c->cpo, c->npairs)) {
        rc = ORR_ENOMEM;
        goto out;
      }
      size_t start = c->npairs;
      for (size_t i = 0; i < ls.n; i++)
        if (push_u64(&c->pairs, &c->npairs, &c->cpairs, pair_hash(ls.v[i].name, ls.v[i].value))) {
          rc = ORR_ENOMEM;
          goto out;
        }
      if (c->npairs > start) qsort(c->pairs + start, c->npairs - start, sizeof(uint64_t), u64_cmp);
      c->pair_total += ls.n;
      /* Keep a copy of these labels as |prev|. */
      orr_arena_reset(pa);
      if (labels_copy(pa, &ls, &prev)) {
        rc = ORR_ENOMEM;
        goto out;
      }
      have_prev = true;
    }
    off = next;
  }
  if (push_u64(&c->pair_off, &c->npo, &c->cpo, c->npairs)) rc = ORR_ENOMEM;
out:
  orr_buf_free(&lb);
  orr_buf_free(&pb);
  orr_arena_destroy(a);
  orr_arena_destroy(pa);
  return rc;
}

static long find_ref(const vctx *c, uint64_t ref) {
  size_t lo = 0, hi = c->nrefs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->refs[mid] < ref) lo = mid + 1;
    else hi = mid;
  }
  return lo < c->nrefs && c->refs[lo] == ref ? (long)lo : -1;
}

static bool series_has_pair(const vctx *c, long i, uint64_t h) {
  size_t n = c->pair_off[i + 1] - c->pair_off[i];
  if (n == 0) return false;
  const uint64_t *p = c->pairs + c->pair_off[i];
  return bsearch(&h, p, n, sizeof(*p), u64_cmp) != NULL;
}

static int check_postings(vctx *c) {
  orr_arena *a = orr_arena_new(0), *la = orr_arena_new(0);
  int rc = 0;
  if (!a || !la) {
    rc = ORR_ENOMEM;
    goto out;
  }
  /* The all-postings list must list exactly the series. */
  tsdb_postings *p;
  uint64_t *all = NULL;
  size_t nall = 0;
  rc = tsdb_index_all_postings(c->index, a, &p);
  if (rc == 0) rc = tsdb_postings_expand(p, a, &all, &nall);
  if (rc == ORR_ENOMEM) goto out;
  if (rc) {
    problem(c, "%s/index: all-postings list: %s", c->dir, tsdb_index_last_error());
  } else {
    size_t extra = 0;
    for (size_t i = 0; i < nall; i++)
      if (find_ref(c, all[i]) < 0 && extra++ < 5)
        problem(c, "%s/index: all-postings list names series %llu (offset %llu), which is not a "
                "valid series entry", c->dir, (unsigned long long)all[i],
                (unsigned long long)all[i] * 16);
    if (nall != c->nrefs)
      problem(c, "%s/index: all-postings list has %zu entries but the series section %zu series",
              c->dir, nall, c->nrefs);
  }
  rc = 0;
  const char **names;
  size_t nnames;
  if ((rc = tsdb_index_label_names(c->index, a, &names, &nnames)) != 0) {
    if (rc == ORR_ENOMEM) goto out;
    problem(c, "%s/index: postings offset table: %s", c->dir, tsdb_index_last_error());
    rc = 0;
    goto out;
  }
  uint64_t entries = 0;
  for (size_t k = 0; k < nnames; k++) {
    orr_arena_reset(la);
    const char **vals;
    size_t nvals;
    if ((rc = tsdb_index_label_values(c->index, names[k], la, &vals, &nvals)) != 0) {
      if (rc == ORR_ENOMEM) goto out;
      problem(c, "%s/index: values of label %s: %s", c->dir, names[k], tsdb_index_last_error());
      rc = 0;
      continue;
    }
    const char **liv;
    size_t nliv;
    int lrc = tsdb_index_label_index_values(c->index, names[k], la, &liv, &nliv);
    if (lrc == ORR_ECORRUPT)
      problem(c, "%s/index: label index of %s: %s", c->dir, names[k], tsdb_index_last_error());
    for (size_t j = 0; j < nvals; j++) {
      tsdb_postings *lp;
      rc = tsdb_index_postings(c->index, names[k], &vals[j], 1, la, &lp);
      if (rc == ORR_ENOMEM) goto out;
      if (rc) {
        problem(c, "%s/index: postings of %s=\"%s\": %s", c->dir, names[k], vals[j],
                tsdb_index_last_error());
        rc = 0;
        continue;
      }
      uint64_t h = pair_hash(names[k], vals[j]);
      size_t bad = 0;
      while (tsdb_postings_next(lp)) {
        uint64_t ref = tsdb_postings_at(lp);
        entries++;
        c->st.postings++;
        long i = find_ref(c, ref);
        if (i < 0) {
          if (bad++ < 3)
            problem(c, "%s/index: postings of %s=\"%s\" name series %llu (offset %llu), which is "
                    "not a valid series entry", c->dir, names[k], vals[j],
                    (unsigned long long)ref, (unsigned long long)ref * 16);
        } else if (!series_has_pair(c, i, h)) {
          if (bad++ < 3)
            problem(c, "%s/index: postings of %s=\"%s\" name series %llu (offset %llu), which "
                    "does not have that label", c->dir, names[k], vals[j],
                    (unsigned long long)ref, (unsigned long long)ref * 16);
        }
      }
    }
  }
  if (entries < c->pair_total)
    problem(c, "%s/index: postings hold %llu entries but the series have %llu label pairs: "
            "some series are missing from postings", c->dir, (unsigned long long)entries,
            (unsigned long long)c->pair_total);
out:
  orr_arena_destroy(a);
  orr_arena_destroy(la);
  return rc;
}

int tsdb_block_verify(const char *dir, void (*report)(void *arg, const char *msg), void *arg,
                      tsdb_verify_stats *st) {
  vctx c;
  memset(&c, 0, sizeof(c));
  c.dir = dir;
  c.report = report;
  c.arg = arg;
  char path[4096], msg[512];
  int rc = 0;
  orr_arena *ma = orr_arena_new(4096);
  void *map = NULL;
  size_t maplen = 0;
  tsdb_tombstones tomb = {0};
  if (!ma) return ORR_ENOMEM;

  msg[0] = '\0';
  int mrc = tsdb_meta_read_dir(dir, ma, &c.meta, msg, sizeof(msg));
  if (mrc == ORR_ENOMEM) {
    rc = mrc;
    goto out;
  }
  if (mrc)
    problem(&c, "%s/meta.json: %s", dir, mrc == ORR_ENOTFOUND ? "no such file" : msg);
  c.meta_ok = mrc == 0;
  if (c.meta_ok && c.meta.min_time >= c.meta.max_time)
    problem(&c, "%s/meta.json: minTime %lld is not before maxTime %lld", dir,
            (long long)c.meta.min_time, (long long)c.meta.max_time);

  snprintf(path, sizeof(path), "%s/index", dir);
  msg[0] = '\0';
  int irc = tsdb_index_open(path, &c.index, msg, sizeof(msg));
  if (irc == ORR_ENOMEM) {
    rc = irc;
    goto out;
  }
  if (irc) problem(&c, "%s: %s", path, msg[0] ? msg : orr_strerror(irc));

  snprintf(path, sizeof(path), "%s/chunks", dir);
  msg[0] = '\0';
  int crc = tsdb_chunk_reader_open(path, &c.chunks, msg, sizeof(msg));
  if (crc == ORR_ENOMEM) {
    rc = crc;
    goto out;
  }
  if (crc) problem(&c, "%s: %s", path, msg[0] ? msg : orr_strerror(crc));

  int trc = tsdb_tombstones_read_dir(dir, &tomb);
  if (trc == ORR_ENOMEM) {
    rc = trc;
    goto out;
  }
  if (trc)
    problem(&c, "%s/tombstones: %s", dir,
            trc == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(trc));

  if (c.chunks) check_segments(&c);
  if (c.chunks) tsdb__chunk_reader_release(c.chunks);

  if (c.index) {
    snprintf(path, sizeof(path), "%s/index", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd >= 0 && fstat(fd, &sb) == 0 && sb.st_size > 0) {
      maplen = (size_t)sb.st_size;
      map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0);
      if (map == MAP_FAILED) map = NULL;
    }
    if (fd >= 0) close(fd);
    if (!map) {
      problem(&c, "%s: cannot map: %s", path, strerror(errno));
    } else {
      if ((rc = walk_series(&c, map, maplen)) != 0) goto out;
      if ((rc = check_postings(&c)) != 0) goto out;
    }
    /* Stats only mean something when the data they count is sound. */
    if (c.meta_ok && map && c.st.problems == 0) {
      if (c.meta.num_series != c.st.series)
        problem(&c, "%s/meta.json: stats.numSeries is %llu but the index holds %llu series", dir,
                (unsigned long long)c.meta.num_series, (unsigned long long)c.st.series);
      if (c.meta.num_chunks != c.st.chunks)
        problem(&c, "%s/meta.json: stats.numChunks is %llu but the index refers to %llu chunks",
                dir, (unsigned long long)c.meta.num_chunks, (unsigned long long)c.st.chunks);
      if (c.chunks && c.meta.num_samples != c.st.samples)
        problem(&c, "%s/meta.json: stats.numSamples is %llu but the chunks hold %llu samples",
                dir, (unsigned long long)c.meta.num_samples, (unsigned long long)c.st.samples);
    }
  }
out:
  if (map) munmap(map, maplen);
  tsdb_index_close(c.index);
  tsdb_chunk_reader_close(c.chunks);
  tsdb_tombstones_free(&tomb);
  orr_arena_destroy(ma);
  free(c.refs);
  free(c.pair_off);
  free(c.pairs);
  if (st) *st = c.st;
  if (rc) return rc;
  return c.st.problems ? ORR_ECORRUPT : 0;
}
