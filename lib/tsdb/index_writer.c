/* index_writer.c: writes Prometheus index files (format v2) byte for byte as
 * Prometheus 2.42's index.Writer does: same section order, padding, postings
 * order, tables and CRCs, so that an index we write for Prometheus's series
 * and chunk refs is identical to Prometheus's own.
 *
 * NOTES ON THE DESIGN
 * 1. Stages: SYMBOLS (symbols kept in memory, encoded as in the file) ->
 *    SERIES (each series padded to 16 bytes and streamed through a 1 MiB
 *    buffer; the symbol table is written when the first series arrives) ->
 *    DONE (finish). A call out of stage returns ORR_EINVAL.
 * 2. finish() builds postings as Prometheus does: it rereads the series
 *    section from the file (mmap), first for the all-postings list, then
 *    once per batch of label names whose series counts add up to at most the
 *    number of series. A batch holds 20 bytes per (label, series) pair (name,
 *    value, ref and two permutation arrays), ordered by two stable counting
 *    passes (value symbol, then name). Postings go to
 *    the temporary file |path|_tmp_p and are copied after the label indices.
 * 3. The postings offset table is kept in memory as 16 bytes per label pair
 *    (name symbol, value symbol, offset); strings come from the symbols.
 * 4. Sections with a length prefix are written through the buffer with a
 *    placeholder that is patched in the buffer or with pwrite once flushed. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tsdb_int.h"

#define WBUF_FLUSH (1u << 20)
#define ALL_SYM UINT32_MAX /* name/value "" of the all-postings list when "" is no symbol */

typedef struct fwriter {
  int fd;
  orr_buf b;
  uint64_t pos; /* bytes written so far, including those in |b| */
  uint32_t crc; /* running CRC32C of the current section */
  int err;
} fwriter;

typedef struct pt_entry {
  uint32_t name, value;
  uint64_t off; /* in the postings temporary file */
} pt_entry;

enum { ST_SYMBOLS = 0, ST_SERIES, ST_DONE, ST_FAILED };

struct tsdb_index_writer {
  char *path, *tmp_path;
  fwriter f, fp;
  int stage;
  orr_buf syms;       /* symbols encoded as in the file */
  uint64_t *sym_off;  /* offset of each symbol in |syms| */
  uint32_t nsym, symcap;
  uint32_t *name_count; /* per symbol: series carrying it as a label name */
  uint32_t *last;       /* previous series' (name, value) symbol pairs */
  size_t nlast, lastcap;
  orr_buf scratch;
  uint64_t nseries;
  tsdb_index_toc toc;
  pt_entry *pt;
  size_t npt, ptcap;
};

/* Checks the invariants of the notes above (debug builds). */
static void assert_writer_state(const tsdb_index_writer *w) {
#ifndef NDEBUG
  assert(w->stage >= ST_SYMBOLS && w->stage <= ST_FAILED);
  assert(w->nsym <= w->symcap);
  assert(w->f.b.len <= w->f.pos);
  assert(w->stage == ST_SYMBOLS || w->stage == ST_FAILED || w->name_count != NULL);
  assert(w->stage != ST_SYMBOLS || w->nseries == 0);
  assert(w->nlast <= w->lastcap);
#else
  (void)w;
#endif
}

/* ---------------------------------------------------------------- file writer */
static int fw_flush(fwriter *f) {
  size_t done = 0;
  while (!f->err && done < f->b.len) {
    ssize_t k = write(f->fd, f->b.data + done, f->b.len - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) f->err = ORR_EIO;
    else done += (size_t)k;
  }
  orr_buf_reset(&f->b);
  return f->err;
}

static void fw_write(fwriter *f, const void *p, size_t n) {
  if (f->err) return;
  f->crc = orr_crc32c(f->crc, p, n);
  if (orr_buf_append(&f->b, p, n)) {
    f->err = ORR_ENOMEM;
    return;
  }
  f->pos += n;
  if (f->pos > 16ull * UINT32_MAX) f->err = ORR_ELIMIT;
  if (f->b.len >= WBUF_FLUSH) fw_flush(f);
}

static void fw_be32(fwriter *f, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  fw_write(f, b, 4);
}

static void fw_be64(fwriter *f, uint64_t v) {
  fw_be32(f, (uint32_t)(v >> 32));
  fw_be32(f, (uint32_t)v);
}

static void fw_uvarint(fwriter *f, uint64_t v) {
  uint8_t b[10];
  size_t n = 0;
  while (v >= 0x80) {
    b[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b[n++] = (uint8_t)v;
  fw_write(f, b, n);
}

static void fw_str(fwriter *f, const char *s, size_t n) {
  fw_uvarint(f, n);
  fw_write(f, s, n);
}

static void fw_pad(fwriter *f, unsigned align) {
  static const uint8_t zero[16];
  unsigned r = (unsigned)(f->pos % align);
  if (r) fw_write(f, zero, align - r);
}

/* Writes 4 bytes at |pos|, in the buffer or already in the file. */
static void fw_patch_be32(fwriter *f, uint64_t pos, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  if (f->err) return;
  uint64_t flushed = f->pos - f->b.len;
  if (pos >= flushed) {
    memcpy(f->b.data + (pos - flushed), b, 4);
  } else if (pwrite(f->fd, b, 4, (off_t)pos) != 4) {
    f->err = ORR_EIO;
  }
}

/* A "len <4b> | body | CRC32C" section: begin returns the len position. */
static uint64_t sec_begin(fwriter *f) {
  uint64_t at = f->pos;
  fw_be32(f, 0);
  f->crc = 0;
  return at;
}

static void sec_end(fwriter *f, uint64_t at) {
  uint64_t len = f->pos - at - 4;
  uint32_t crc = f->crc;
  if (len > UINT32_MAX && !f->err) f->err = ORR_ELIMIT;
  fw_patch_be32(f, at, (uint32_t)len);
  fw_be32(f, crc);
}

/* ---------------------------------------------------------------- symbols */
static void sym_get(const tsdb_index_writer *w, uint32_t i, const char **s, size_t *n) {
  orr_dec d = orr_dec_make(w->syms.data + w->sym_off[i], w->syms.len - w->sym_off[i]);
  uint64_t l = 0;
  orr_dec_uvarint(&d, &l);
  *s = (const char *)d.p;
  *n = (size_t)l;
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn) {
  size_t m = an < bn ? an : bn;
  int c = m ? memcmp(a, b, m) : 0;
  if (c) return c;
  return an < bn ? -1 : an > bn;
}

static int sym_find(const tsdb_index_writer *w, const char *s, size_t n, uint32_t *idx) {
  uint32_t lo = 0, hi = w->nsym;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const char *ms;
    size_t ml;
    sym_get(w, mid, &ms, &ml);
    int c = cmp_bytes(ms, ml, s, n);
    if (c == 0) {
      *idx = mid;
      return 0;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return ORR_ENOTFOUND;
}

int tsdb_index_writer_open(const char *path, tsdb_index_writer **out) {
  tsdb_index_writer *w = calloc(1, sizeof(*w));
  if (!w) return ORR_ENOMEM;
  w->f.fd = w->fp.fd = -1;
  size_t pl = strlen(path);
  w->path = malloc(pl + 1);
  w->tmp_path = malloc(pl + 8);
  if (!w->path || !w->tmp_path) goto nomem;
  memcpy(w->path, path, pl + 1);
  memcpy(w->tmp_path, path, pl);
  memcpy(w->tmp_path + pl, "_tmp_p", 7);
  w->f.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (w->f.fd < 0) {
    tsdb_index_writer_free(w);
    return ORR_EIO;
  }
  fw_be32(&w->f, TSDB__INDEX_MAGIC);
  uint8_t v = TSDB__INDEX_V2;
  fw_write(&w->f, &v, 1);
  if (w->f.err) goto nomem;
  *out = w;
  return 0;
nomem:
  tsdb_index_writer_free(w);
  return ORR_ENOMEM;
}

int tsdb_index_writer_add_symbol(tsdb_index_writer *w, const char *s, size_t n) {
  assert_writer_state(w);
  if (w->stage != ST_SYMBOLS) return ORR_EINVAL;
  if (w->nsym > 0) {
    const char *ps;
    size_t pn;
    sym_get(w, w->nsym - 1, &ps, &pn);
    if (cmp_bytes(ps, pn, s, n) >= 0) return ORR_EINVAL;
  }
  if (w->nsym == UINT32_MAX - 1) return ORR_ELIMIT;
  if (w->nsym == w->symcap) {
    uint32_t nc = w->symcap ? w->symcap * 2 : 1024;
    uint64_t *no = realloc(w->sym_off, (size_t)nc * sizeof(*no));
    if (!no) return ORR_ENOMEM;
    w->sym_off = no;
    w->symcap = nc;
  }
  w->sym_off[w->nsym] = w->syms.len;
  if (orr_buf_put_uvarint(&w->syms, n) || orr_buf_append(&w->syms, s, n)) return ORR_ENOMEM;
  w->nsym++;
  return 0;
}

/* Writes the symbol table and moves to the series stage. */
static int finish_symbols(tsdb_index_writer *w) {
  w->toc.symbols = w->f.pos;
  uint64_t at = sec_begin(&w->f);
  fw_be32(&w->f, w->nsym);
  fw_write(&w->f, w->syms.data ? w->syms.data : "", w->syms.len);
  sec_end(&w->f, at);
  w->toc.series = w->f.pos;
  w->name_count = calloc((size_t)w->nsym + 1, sizeof(*w->name_count));
  if (!w->name_count) return ORR_ENOMEM;
  w->stage = ST_SERIES;
  return w->f.err;
}

int tsdb_index_writer_add_series(tsdb_index_writer *w, const labels_set *lset,
                                 const tsdb_index_chunk_meta *chks, size_t nchks, uint64_t *ref) {
  int rc;
  assert_writer_state(w);
  if (w->stage == ST_SYMBOLS && (rc = finish_symbols(w)) != 0) {
    w->stage = ST_FAILED;
    return rc;
  }
  if (w->stage != ST_SERIES) return ORR_EINVAL;
  if (lset->n > w->lastcap) {
    size_t nc = lset->n * 2;
    uint32_t *nl = realloc(w->last, 2 * nc * sizeof(*nl));
    if (!nl) return ORR_ENOMEM;
    w->last = nl;
    w->lastcap = nc;
  }
  /* Resolve symbols and check the order against the previous series. */
  uint32_t *cur = malloc((2 * lset->n + 1) * sizeof(*cur));
  if (!cur) return ORR_ENOMEM;
  for (size_t i = 0; i < lset->n; i++) {
    if (sym_find(w, lset->v[i].name, strlen(lset->v[i].name), &cur[2 * i]) ||
        sym_find(w, lset->v[i].value, strlen(lset->v[i].value), &cur[2 * i + 1])) {
      free(cur);
      return ORR_EINVAL;
    }
    if (i > 0 && cur[2 * i] <= cur[2 * i - 2]) { /* names sorted and unique */
      free(cur);
      return ORR_EINVAL;
    }
  }
  int c = 0;
  size_t m = 2 * (lset->n < w->nlast ? lset->n : w->nlast);
  for (size_t i = 0; i < m && c == 0; i++) c = cur[i] < w->last[i] ? -1 : cur[i] > w->last[i];
  if (c == 0) c = lset->n < w->nlast ? -1 : lset->n > w->nlast;
  if (c <= 0) {
    free(cur);
    return ORR_EINVAL;
  }
  fw_pad(&w->f, 16);
  uint64_t off = w->f.pos;
  orr_buf *s = &w->scratch;
  orr_buf_reset(s);
  orr_buf_put_uvarint(s, lset->n);
  for (size_t i = 0; i < 2 * lset->n; i++) orr_buf_put_uvarint(s, cur[i]);
  orr_buf_put_uvarint(s, nchks);
  int64_t t0 = 0, ref0 = 0;
  for (size_t i = 0; i < nchks; i++) {
    if (i == 0) {
      orr_buf_put_varint(s, chks[0].mint);
    } else {
      orr_buf_put_uvarint(s, (uint64_t)chks[i].mint - (uint64_t)t0);
    }
    orr_buf_put_uvarint(s, (uint64_t)chks[i].maxt - (uint64_t)chks[i].mint);
    if (i == 0)
      orr_buf_put_uvarint(s, chks[0].ref);
    else
      orr_buf_put_varint(s, (int64_t)(chks[i].ref - (uint64_t)ref0));
    t0 = chks[i].maxt;
    ref0 = (int64_t)chks[i].ref;
  }
  if (s->oom) {
    free(cur);
    return ORR_ENOMEM;
  }
  fw_uvarint(&w->f, s->len);
  uint32_t crc = orr_crc32c(0, s->data, s->len);
  fw_write(&w->f, s->data, s->len);
  fw_be32(&w->f, crc);
  if (w->f.err) {
    free(cur);
    w->stage = ST_FAILED;
    return w->f.err;
  }
  for (size_t i = 0; i < lset->n; i++) w->name_count[cur[2 * i]]++;
  memcpy(w->last, cur, 2 * lset->n * sizeof(*cur));
  w->nlast = lset->n;
  free(cur);
  w->nseries++;
  if (ref) *ref = off / 16;
  return 0;
}

/* ---------------------------------------------------------------- postings */
static int pt_push(tsdb_index_writer *w, uint32_t name, uint32_t value, uint64_t off) {
  if (w->npt == w->ptcap) {
    size_t nc = w->ptcap ? w->ptcap * 2 : 1024;
    pt_entry *np = realloc(w->pt, nc * sizeof(*np));
    if (!np) return ORR_ENOMEM;
    w->pt = np;
    w->ptcap = nc;
  }
  w->pt[w->npt++] = (pt_entry){name, value, off};
  return 0;
}

static int write_posting(tsdb_index_writer *w, uint32_t name, uint32_t value, const uint32_t *refs,
                         size_t n) {
  fw_pad(&w->fp, 4);
  if (pt_push(w, name, value, w->fp.pos)) return ORR_ENOMEM;
  uint64_t at = sec_begin(&w->fp);
  fw_be32(&w->fp, (uint32_t)n);
  for (size_t i = 0; i < n; i++) fw_be32(&w->fp, refs[i]);
  sec_end(&w->fp, at);
  return w->fp.err;
}

/* Walks the series section: calls |fn| for each series with its ref and its
 * label symbol pairs. */
typedef struct series_scan {
  const uint8_t *b;   /* mapping of the file from offset 0 */
  uint64_t from, to;  /* series section */
} series_scan;

static int scan_next(const series_scan *sc, uint64_t *pos, uint32_t *ref, orr_dec *labels) {
  while (*pos < sc->to && sc->b[*pos] == 0) (*pos)++;
  if (*pos >= sc->to) return 0;
  orr_dec d = orr_dec_make(sc->b + *pos, sc->to - *pos);
  uint64_t len;
  if (orr_dec_uvarint(&d, &len) || len + 4 > orr_dec_left(&d)) return ORR_EINTERNAL;
  *ref = (uint32_t)(*pos / 16);
  *labels = orr_dec_make(d.p, len);
  *pos = (uint64_t)(d.p - sc->b) + len + 4;
  return 1;
}

/* Stable counting sort of |n| items by key[i] < nkeys; |perm| receives the
 * order. |cnt| has nkeys + 1 zeroed slots and is left zeroed. */
static void counting_order(const uint32_t *key, const uint32_t *in, uint32_t *out, size_t n,
                           uint32_t *cnt, uint32_t nkeys) {
  for (size_t i = 0; i < n; i++) cnt[key[in[i]] + 1]++;
  for (uint32_t k = 0; k < nkeys; k++) cnt[k + 1] += cnt[k];
  for (size_t i = 0; i < n; i++) out[cnt[key[in[i]]]++] = in[i];
  memset(cnt, 0, ((size_t)nkeys + 1) * sizeof(*cnt));
}

static int write_postings(tsdb_index_writer *w, const series_scan *sc) {
  int rc = ORR_ENOMEM;
  uint32_t *refs = malloc((w->nseries + 1) * sizeof(*refs));
  uint32_t *names = malloc(((size_t)w->nsym + 1) * sizeof(*names));
  uint32_t *cnt = calloc((size_t)w->nsym + 2, sizeof(*cnt));
  uint32_t *e_name = NULL, *e_val = NULL, *e_ref = NULL, *o1 = NULL, *o2 = NULL;
  if (!refs || !names || !cnt) goto out;
  /* All postings. */
  uint64_t pos = sc->from;
  size_t n = 0;
  uint32_t ref;
  orr_dec d;
  while ((rc = scan_next(sc, &pos, &ref, &d)) == 1) refs[n++] = ref;
  if (rc < 0) goto out;
  uint32_t empty;
  bool has_empty = sym_find(w, "", 0, &empty) == 0;
  if (!has_empty) empty = ALL_SYM;
  if ((rc = write_posting(w, empty, empty, refs, n)) != 0) goto out;
  uint64_t max_postings = n;
  size_t nnames = 0;
  for (uint32_t i = 0; i < w->nsym; i++)
    if (w->name_count[i]) names[nnames++] = i;
  size_t cap = 0;
  for (size_t ni = 0; ni < nnames;) {
    size_t lo = ni;
    uint64_t c = 0;
    while (ni < nnames && w->name_count[names[ni]] + c <= max_postings) c += w->name_count[names[ni++]];
    if (ni == lo) c = w->name_count[names[ni++]]; /* cannot happen; keeps progress */
    if (c > cap) {
      free(e_name), free(e_val), free(e_ref), free(o1), free(o2);
      e_name = malloc(c * sizeof(*e_name));
      e_val = malloc(c * sizeof(*e_val));
      e_ref = malloc(c * sizeof(*e_ref));
      o1 = malloc(c * sizeof(*o1));
      o2 = malloc(c * sizeof(*o2));
      rc = ORR_ENOMEM;
      if (!e_name || !e_val || !e_ref || !o1 || !o2) goto out;
      cap = c;
    }
    uint32_t first = names[lo], lastn = names[ni - 1];
    size_t k = 0;
    pos = sc->from;
    while ((rc = scan_next(sc, &pos, &ref, &d)) == 1) {
      uint64_t nl, nm, vl;
      orr_dec_uvarint(&d, &nl);
      for (uint64_t i = 0; i < nl; i++) {
        orr_dec_uvarint(&d, &nm);
        orr_dec_uvarint(&d, &vl);
        if (nm < first || nm > lastn || !w->name_count[nm]) continue;
        /* names of this batch are exactly the used names in [first, lastn] */
        if (k == cap) {
          rc = ORR_EINTERNAL;
          goto out;
        }
        e_name[k] = (uint32_t)nm;
        e_val[k] = (uint32_t)vl;
        e_ref[k] = ref;
        k++;
      }
    }
    if (rc < 0) goto out;
    for (size_t i = 0; i < k; i++) o1[i] = (uint32_t)i;
    counting_order(e_val, o1, o2, k, cnt, w->nsym);
    counting_order(e_name, o2, o1, k, cnt, w->nsym);
    /* Emit one postings list per (name, value) run; refs are increasing
     * within a run because both passes were stable over scan order. */
    for (size_t i = 0; i < k;) {
      size_t j = i;
      uint32_t nm = e_name[o1[i]], vl = e_val[o1[i]];
      while (j < k && e_name[o1[j]] == nm && e_val[o1[j]] == vl) {
        refs[j - i] = e_ref[o1[j]];
        j++;
      }
      if ((rc = write_posting(w, nm, vl, refs, j - i)) != 0) goto out;
      i = j;
    }
  }
  rc = w->fp.err;
out:
  free(refs), free(names), free(cnt);
  free(e_name), free(e_val), free(e_ref), free(o1), free(o2);
  return rc;
}

static void sym_or_empty(const tsdb_index_writer *w, uint32_t i, const char **s, size_t *n) {
  if (i == ALL_SYM) {
    *s = "";
    *n = 0;
  } else {
    sym_get(w, i, s, n);
  }
}

static int copy_tmp(tsdb_index_writer *w) {
  if (fw_flush(&w->fp)) return w->fp.err;
  if (fw_flush(&w->f)) return w->f.err;
  char buf[1 << 16];
  off_t at = 0;
  for (;;) {
    ssize_t k = pread(w->fp.fd, buf, sizeof(buf), at);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return ORR_EIO;
    if (k == 0) break;
    at += k;
    fw_write(&w->f, buf, (size_t)k);
    if (w->f.err) return w->f.err;
  }
  return (uint64_t)at == w->fp.pos ? 0 : ORR_EIO;
}

int tsdb_index_writer_finish(tsdb_index_writer *w) {
  int rc;
  void *map = MAP_FAILED;
  uint64_t maplen = 0;
  uint64_t *li_off = NULL;
  uint32_t *li_name = NULL;
  size_t nli = 0;
  assert_writer_state(w);
  if (w->stage == ST_SYMBOLS && (rc = finish_symbols(w)) != 0) goto out;
  if (w->stage != ST_SERIES) return ORR_EINVAL;
  w->toc.label_indices = w->f.pos;
  if ((rc = fw_flush(&w->f)) != 0) goto out;
  w->fp.fd = open(w->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  rc = ORR_EIO;
  if (w->fp.fd < 0) goto out;
  maplen = w->toc.label_indices;
  map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, w->f.fd, 0);
  if (map == MAP_FAILED) goto out;
  series_scan sc = {map, w->toc.series, w->toc.label_indices};
  if ((rc = write_postings(w, &sc)) != 0) goto out;

  /* Label indices: one per name, values in postings order. */
  rc = ORR_ENOMEM;
  li_off = malloc((w->npt + 1) * sizeof(*li_off));
  li_name = malloc((w->npt + 1) * sizeof(*li_name));
  if (!li_off || !li_name) goto out;
  for (size_t i = 0; i < w->npt;) {
    const char *ns;
    size_t nl;
    sym_or_empty(w, w->pt[i].name, &ns, &nl);
    size_t j = i;
    while (j < w->npt && w->pt[j].name == w->pt[i].name) j++;
    if (nl > 0) {
      fw_pad(&w->f, 4);
      li_off[nli] = w->f.pos;
      li_name[nli++] = w->pt[i].name;
      uint64_t at = sec_begin(&w->f);
      fw_be32(&w->f, 1);
      fw_be32(&w->f, (uint32_t)(j - i));
      for (size_t k = i; k < j; k++) fw_be32(&w->f, w->pt[k].value);
      sec_end(&w->f, at);
    }
    i = j;
  }
  /* Postings, copied from the temporary file after 4-byte alignment. */
  w->toc.postings = w->f.pos;
  fw_pad(&w->f, 4);
  uint64_t postings_start = w->f.pos;
  if ((rc = copy_tmp(w)) != 0) goto out;

  w->toc.label_offset_table = w->f.pos;
  uint64_t at = sec_begin(&w->f);
  fw_be32(&w->f, (uint32_t)nli);
  for (size_t i = 0; i < nli; i++) {
    const char *ns;
    size_t nl;
    sym_get(w, li_name[i], &ns, &nl);
    fw_uvarint(&w->f, 1);
    fw_str(&w->f, ns, nl);
    fw_uvarint(&w->f, li_off[i]);
  }
  sec_end(&w->f, at);

  w->toc.postings_offset_table = w->f.pos;
  at = sec_begin(&w->f);
  fw_be32(&w->f, (uint32_t)w->npt);
  for (size_t i = 0; i < w->npt; i++) {
    const char *s;
    size_t sl;
    fw_uvarint(&w->f, 2);
    sym_or_empty(w, w->pt[i].name, &s, &sl);
    fw_str(&w->f, s, sl);
    sym_or_empty(w, w->pt[i].value, &s, &sl);
    fw_str(&w->f, s, sl);
    fw_uvarint(&w->f, w->pt[i].off + postings_start);
  }
  sec_end(&w->f, at);

  w->f.crc = 0;
  fw_be64(&w->f, w->toc.symbols);
  fw_be64(&w->f, w->toc.series);
  fw_be64(&w->f, w->toc.label_indices);
  fw_be64(&w->f, w->toc.label_offset_table);
  fw_be64(&w->f, w->toc.postings);
  fw_be64(&w->f, w->toc.postings_offset_table);
  fw_be32(&w->f, w->f.crc);
  if ((rc = fw_flush(&w->f)) != 0) goto out;
  rc = fsync(w->f.fd) == 0 ? 0 : ORR_EIO;
out:
  if (map != MAP_FAILED) munmap(map, maplen);
  free(li_off);
  free(li_name);
  if (w->fp.fd >= 0) {
    close(w->fp.fd);
    w->fp.fd = -1;
    unlink(w->tmp_path);
  }
  if (rc == 0) {
    rc = close(w->f.fd) == 0 ? 0 : ORR_EIO;
    w->f.fd = -1;
  }
  w->stage = rc == 0 ? ST_DONE : ST_FAILED;
  return rc;
}

void tsdb_index_writer_free(tsdb_index_writer *w) {
  if (!w) return;
  if (w->f.fd >= 0) {
    close(w->f.fd);
    if (w->stage != ST_DONE) unlink(w->path);
  }
  if (w->fp.fd >= 0) {
    close(w->fp.fd);
    unlink(w->tmp_path);
  }
  orr_buf_free(&w->f.b);
  orr_buf_free(&w->fp.b);
  orr_buf_free(&w->syms);
  orr_buf_free(&w->scratch);
  free(w->sym_off);
  free(w->name_count);
  free(w->last);
  free(w->pt);
  free(w->path);
  free(w->tmp_path);
  free(w);
}

/* ---------------------------------------------------------------- convenience */
static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int tsdb_index_write_file(const char *path, const labels_set *series,
                          tsdb_index_chunk_meta *const *chks, const size_t *nchks, size_t n) {
  size_t total = 1;
  for (size_t i = 0; i < n; i++) total += 2 * series[i].n;
  const char **all = malloc(total * sizeof(*all));
  if (!all) return ORR_ENOMEM;
  size_t k = 0;
  all[k++] = "";
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < series[i].n; j++) {
      all[k++] = series[i].v[j].name;
      all[k++] = series[i].v[j].value;
    }
  qsort(all, k, sizeof(*all), cmp_cstr);
  tsdb_index_writer *w;
  int rc = tsdb_index_writer_open(path, &w);
  if (rc) {
    free(all);
    return rc;
  }
  for (size_t i = 0; i < k && rc == 0; i++)
    if (i == 0 || strcmp(all[i], all[i - 1]) != 0)
      rc = tsdb_index_writer_add_symbol(w, all[i], strlen(all[i]));
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = tsdb_index_writer_add_series(w, &series[i], chks ? chks[i] : NULL, nchks ? nchks[i] : 0,
                                      NULL);
  if (rc == 0) rc = tsdb_index_writer_finish(w);
  tsdb_index_writer_free(w);
  free(all);
  return rc;
}
