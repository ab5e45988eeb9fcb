/* index_reader.c: reads Prometheus index files (format v2) over mmapped
 * bytes: TOC, symbol table, series, postings and their offset tables, label
 * indices. Every length, offset and CRC32C is checked before use.
 *
 * NOTES ON THE DESIGN
 * 1. Open validates the TOC, the symbol table (whole CRC, every string) and
 *    the postings offset table (whole CRC, every entry, strictly sorted by
 *    name then value) and the label offset table when present. After open the
 *    reader is immutable: lookups touch only the mapping and arena memory of
 *    the caller, so threads may share a reader.
 * 2. In memory: the file offset of every symbol (an index file: 8 bytes a
 *    symbol, so a series' labels decode without scanning the table) or of
 *    every 32nd (an index-header, held by a store for many blocks), and for every label
 *    name the entries 0, N, 2N, ... and the last one of its postings offset
 *    table (value, position of the entry), N = 32 for an index and the
 *    caller's choice for an index-header (Thanos's
 *    --store.index-header-posting-offsets-in-mem-sampling). Lookups
 *    binary-search these and scan at most 31 strings or N-1 entries of the
 *    file.
 * 3. Series entries and postings lists are checked (bounds, CRC, order) each
 *    time they are read: they are too many to check at open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb_int.h"

bool tsdb__index_verify_crc = true;

/* 24 bytes: one is held per sampled postings offset of every loaded block,
 * the bulk of a store's heap after sync. */
typedef struct pt_sample {
  const uint8_t *val;
  uint64_t pos;  /* file offset of the table entry */
  uint32_t vlen;
  uint32_t k;    /* index of the entry among its name's entries (< the
                  * table's uint32 entry count) */
} pt_sample;

typedef struct pt_name {
  const uint8_t *name;
  uint32_t nlen;
  uint64_t nvalues;
  pt_sample *s; /* samples: entry 0, every pt_every-th, and the last */
  size_t ns, scap;
  bool tail; /* the last sample is a non-stride (last-value) entry */
} pt_name;

struct tsdb_index_reader {
  const uint8_t *b;
  size_t n;
  void *map; /* owned mapping, or NULL */
  size_t maplen;
  tsdb_index_toc toc;
  uint32_t nsym;
  uint64_t *sym_off; /* offset of symbols 0, k, 2k, ... (k = sym_every) */
  uint32_t sym_every; /* symbol offset sampling (note 2): 1 or TSDB__SYMBOL_FACTOR */
  uint64_t series_end;
  pt_name *names;
  size_t nnames;
  uint64_t lot_pos, lot_count; /* label offset table entries start, count */
  /* Postings offsets must lie below this: the file's size, or for an
   * index-header the size of the index it was copied from. */
  uint64_t poff_limit;
  uint32_t pt_every; /* postings offset sampling (note 2), >= 1 */
  uint64_t pot_end; /* end of the postings offset table's entries */
};

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
  size_t m = an < bn ? an : bn;
  int c = m ? memcmp(a, b, m) : 0;
  if (c) return c;
  return an < bn ? -1 : an > bn;
}

/* Checks a "len <4b> | body | CRC32 <4b>" section at |off| and returns its
 * body in |*body|/|*blen| (NULL and 0 on error: written on every path). */
static int read_section(const tsdb_index_reader *r, uint64_t off, const char *what,
                        const uint8_t **body, size_t *blen) {
  *body = NULL;
  *blen = 0;
  if (off > r->n || r->n - off < 8)
    return tsdb__corrupt("index %s at offset %llu: section header beyond end of file (%zu bytes)",
                         what, (unsigned long long)off, r->n);
  uint64_t len = be32(r->b + off);
  if (len > r->n - off - 8)
    return tsdb__corrupt("index %s at offset %llu: length %llu beyond end of file", what,
                         (unsigned long long)off, (unsigned long long)len);
  const uint8_t *p = r->b + off + 4;
  uint32_t want = be32(p + len), got = orr_crc32c(0, p, len);
  if (want != got && tsdb__index_verify_crc)
    return tsdb__corrupt("index %s at offset %llu: CRC32C mismatch (stored %08x, computed %08x)",
                         what, (unsigned long long)off, want, got);
  *body = p;
  *blen = (size_t)len;
  return 0;
}

/* Reads a uvarint-prefixed string. */
static int dec_str(orr_dec *d, const uint8_t **s, uint32_t *n) {
  uint64_t l;
  if (orr_dec_uvarint(d, &l) || l > orr_dec_left(d) || l > UINT32_MAX) return ORR_ECORRUPT;
  *s = d->p;
  *n = (uint32_t)l;
  d->p += l;
  return 0;
}

static int open_symbols(tsdb_index_reader *r) {
  const uint8_t *body;
  size_t blen;
  int rc = read_section(r, r->toc.symbols, "symbol table", &body, &blen);
  if (rc) return rc;
  orr_dec d = orr_dec_make(body, blen);
  uint32_t cnt;
  if (orr_dec_be32(&d, &cnt))
    return tsdb__corrupt("index symbol table at offset %llu: too short",
                         (unsigned long long)r->toc.symbols);
  if (cnt > blen)
    return tsdb__corrupt("index symbol table at offset %llu: %u symbols in %zu bytes",
                         (unsigned long long)r->toc.symbols, cnt, blen);
  if (r->sym_every == 0) r->sym_every = TSDB__SYMBOL_FACTOR;
  r->sym_off = calloc(cnt / r->sym_every + 1, sizeof(*r->sym_off));
  if (!r->sym_off) return ORR_ENOMEM;
  const uint8_t *prev = NULL;
  uint32_t prevn = 0;
  for (uint32_t i = 0; i < cnt; i++) {
    if (i % r->sym_every == 0) r->sym_off[i / r->sym_every] = (uint64_t)(d.p - r->b);
    const uint8_t *s;
    uint32_t sn;
    if (dec_str(&d, &s, &sn))
      return tsdb__corrupt("index symbol table: symbol %u at offset %llu overruns the table", i,
                           (unsigned long long)(d.p - r->b));
    if (prev && bytes_cmp(prev, prevn, s, sn) >= 0)
      return tsdb__corrupt("index symbol table: symbol %u at offset %llu out of order", i,
                           (unsigned long long)(s - r->b));
    prev = s;
    prevn = sn;
  }
  if (orr_dec_left(&d) != 0)
    return tsdb__corrupt("index symbol table at offset %llu: %zu trailing bytes",
                         (unsigned long long)r->toc.symbols, orr_dec_left(&d));
  r->nsym = cnt;
  return 0;
}

static int sample_push(pt_name *nm, const uint8_t *val, uint32_t vlen, uint64_t pos,
                       uint64_t k) {
  if (nm->ns == nm->scap) {
    size_t nc = nm->scap ? nm->scap * 2 : 4;
    pt_sample *ns = realloc(nm->s, nc * sizeof(*ns));
    if (!ns) return ORR_ENOMEM;
    nm->s = ns;
    nm->scap = nc;
  }
  nm->s[nm->ns++] = (pt_sample){.val = val, .pos = pos, .vlen = vlen, .k = (uint32_t)k};
  return 0;
}

/* Opens the offset table |what| at |off|: its body into |*d| (|*blen|
 * bytes) past the entry count |*cnt|. */
static int open_table(tsdb_index_reader *r, uint64_t off, const char *what, orr_dec *d,
                      size_t *blen, uint32_t *cnt) {
  const uint8_t *body;
  int rc = read_section(r, off, what, &body, blen);
  if (rc) return rc;
  *d = orr_dec_make(body, *blen);
  if (orr_dec_be32(d, cnt))
    return tsdb__corrupt("index %s at offset %llu: too short", what, (unsigned long long)off);
  return 0;
}

/* The table |what| at |off| must end where its entries do. */
static int table_end(const orr_dec *d, uint64_t off, const char *what) {
  if (orr_dec_left(d) != 0)
    return tsdb__corrupt("index %s at offset %llu: %zu trailing bytes", what,
                         (unsigned long long)off, orr_dec_left(d));
  return 0;
}

static int open_postings_table(tsdb_index_reader *r) {
  uint64_t off = r->toc.postings_offset_table;
  orr_dec d;
  size_t blen;
  uint32_t cnt;
  int rc = open_table(r, off, "postings offset table", &d, &blen, &cnt);
  if (rc) return rc;
  if (cnt > blen)
    return tsdb__corrupt("index postings offset table at offset %llu: %u entries in %zu bytes",
                         (unsigned long long)off, cnt, blen);
  size_t cap = 0;
  const uint8_t *pn = NULL, *pv = NULL;
  uint32_t pnl = 0, pvl = 0;
  pt_name *cur = NULL;
  for (uint32_t i = 0; i < cnt; i++) {
    uint64_t pos = (uint64_t)(d.p - r->b), keys, poff;
    const uint8_t *name, *val;
    uint32_t nl, vl;
    if (orr_dec_uvarint(&d, &keys) || keys != 2 || dec_str(&d, &name, &nl) ||
        dec_str(&d, &val, &vl) || orr_dec_uvarint(&d, &poff))
      return tsdb__corrupt("index postings offset table: bad entry %u at offset %llu", i,
                           (unsigned long long)pos);
    if (poff > r->poff_limit)
      return tsdb__corrupt("index postings offset table: entry %u at offset %llu points past "
                           "the end of file", i, (unsigned long long)pos);
    int nc = pn ? bytes_cmp(pn, pnl, name, nl) : -1;
    if (nc > 0 || (nc == 0 && bytes_cmp(pv, pvl, val, vl) >= 0))
      return tsdb__corrupt("index postings offset table: entry %u at offset %llu out of order", i,
                           (unsigned long long)pos);
    if (nc != 0) {
      if (r->nnames == cap) {
        size_t ncap = cap ? cap * 2 : 16;
        pt_name *nn = realloc(r->names, ncap * sizeof(*nn));
        if (!nn) return ORR_ENOMEM;
        r->names = nn;
        cap = ncap;
      }
      cur = &r->names[r->nnames++];
      memset(cur, 0, sizeof(*cur));
      cur->name = name;
      cur->nlen = nl;
    }
    /* Keep entries 0, N, 2N, ... and the last one: a non-stride entry
     * replaces the previous one when that was not a stride entry. */
    uint64_t k = cur->nvalues;
    if (k % r->pt_every != 0 && cur->tail) {
      cur->s[cur->ns - 1] = (pt_sample){.val = val, .pos = pos, .vlen = vl, .k = (uint32_t)k};
    } else {
      if (sample_push(cur, val, vl, pos, k)) return ORR_ENOMEM;
      cur->tail = k % r->pt_every != 0;
    }
    cur->nvalues++;
    pn = name;
    pnl = nl;
    pv = val;
    pvl = vl;
  }
  if ((rc = table_end(&d, off, "postings offset table"))) return rc;
  r->pot_end = (uint64_t)(d.p - r->b);
  /* Give back the growth slack: these arrays live as long as the block. */
  for (size_t i = 0; i < r->nnames; i++) {
    pt_name *nm = &r->names[i];
    if (nm->ns < nm->scap) {
      pt_sample *fit = realloc(nm->s, nm->ns * sizeof(*fit));
      if (fit) {
        nm->s = fit;
        nm->scap = nm->ns;
      }
    }
  }
  if (r->nnames && r->nnames < cap) {
    pt_name *fit = realloc(r->names, r->nnames * sizeof(*fit));
    if (fit) r->names = fit;
  }
  return 0;
}

static int open_label_offset_table(tsdb_index_reader *r) {
  uint64_t off = r->toc.label_offset_table;
  orr_dec d;
  size_t blen;
  uint32_t cnt;
  int rc = open_table(r, off, "label offset table", &d, &blen, &cnt);
  if (rc) return rc;
  r->lot_pos = (uint64_t)(d.p - r->b);
  for (uint32_t i = 0; i < cnt; i++) {
    uint64_t pos = (uint64_t)(d.p - r->b), keys, loff;
    const uint8_t *name;
    uint32_t nl;
    int bad = orr_dec_uvarint(&d, &keys) || keys == 0 || keys > blen;
    for (uint64_t k = 0; !bad && k < keys; k++) bad = dec_str(&d, &name, &nl) != 0;
    if (bad || orr_dec_uvarint(&d, &loff) || loff > r->n)
      return tsdb__corrupt("index label offset table: bad entry %u at offset %llu", i,
                           (unsigned long long)pos);
  }
  if ((rc = table_end(&d, off, "label offset table"))) return rc;
  r->lot_count = cnt;
  return 0;
}

static int open_common(tsdb_index_reader *r, char *err, size_t errlen) {
  int rc;
  tsdb__corrupt("%s", "");
  if (r->n < TSDB__INDEX_HEADER_LEN + TSDB__INDEX_TOC_LEN) {
    rc = tsdb__corrupt("index: file of %zu bytes is too short for header and TOC", r->n);
    goto out;
  }
  if (be32(r->b) != TSDB__INDEX_MAGIC) {
    rc = tsdb__corrupt("index: bad magic %08x at offset 0", be32(r->b));
    goto out;
  }
  if (r->b[4] != TSDB__INDEX_V2) {
    snprintf(err, errlen, "index: format version %u not supported (only 2)", r->b[4]);
    return ORR_EUNSUPPORTED;
  }
  const uint8_t *t = r->b + r->n - TSDB__INDEX_TOC_LEN;
  uint32_t want = be32(t + 48), got = orr_crc32c(0, t, 48);
  if (want != got && tsdb__index_verify_crc) {
    rc = tsdb__corrupt("index TOC at offset %zu: CRC32C mismatch (stored %08x, computed %08x)",
                       r->n - TSDB__INDEX_TOC_LEN, want, got);
    goto out;
  }
  orr_dec d = orr_dec_make(t, 48);
  uint64_t v[6];
  for (int i = 0; i < 6; i++) orr_dec_be64(&d, &v[i]);
  r->toc = (tsdb_index_toc){v[0], v[1], v[2], v[3], v[4], v[5]};
  uint64_t toc_at = r->n - TSDB__INDEX_TOC_LEN;
  for (int i = 0; i < 6; i++) {
    if (v[i] > toc_at || (v[i] != 0 && v[i] < TSDB__INDEX_HEADER_LEN)) {
      rc = tsdb__corrupt("index TOC: section offset %llu (entry %d) outside the file",
                         (unsigned long long)v[i], i);
      goto out;
    }
  }
  if (r->toc.symbols == 0 || r->toc.postings_offset_table == 0) {
    rc = tsdb__corrupt("index TOC: no symbol table or postings offset table");
    goto out;
  }
  /* Series end where the next non-empty section starts. */
  r->series_end = toc_at;
  uint64_t after[] = {r->toc.label_indices, r->toc.postings, r->toc.label_offset_table,
                      r->toc.postings_offset_table};
  for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++)
    if (after[i] > r->toc.series && after[i] < r->series_end) r->series_end = after[i];
  r->poff_limit = r->n;
  r->pt_every = TSDB__SYMBOL_FACTOR;
  if ((rc = open_symbols(r)) != 0) goto out;
  if ((rc = open_postings_table(r)) != 0) goto out;
  if (r->toc.label_offset_table && (rc = open_label_offset_table(r)) != 0) goto out;
  return 0;
out:
  if (rc == ORR_ECORRUPT)
    snprintf(err, errlen, "%s", tsdb_index_last_error());
  else
    snprintf(err, errlen, "index: %s", orr_strerror(rc));
  return rc;
}

void tsdb_index_close(tsdb_index_reader *r) {
  if (!r) return;
  for (size_t i = 0; i < r->nnames; i++) free(r->names[i].s);
  free(r->names);
  free(r->sym_off);
  if (r->map) munmap(r->map, r->maplen);
  free(r);
}

int tsdb_index_open_bytes(const void *p, size_t n, tsdb_index_reader **out, char *err,
                          size_t errlen) {
  tsdb_index_reader *r = calloc(1, sizeof(*r));
  if (!r) return ORR_ENOMEM;
  r->b = p;
  r->n = n;
  r->sym_every = 1;
  int rc = open_common(r, err, errlen);
  if (rc) {
    tsdb_index_close(r);
    return rc;
  }
  *out = r;
  return 0;
}

int tsdb__index_open_tables(const void *p, size_t n, uint64_t symbols, uint64_t pot,
                            uint64_t poff_limit, uint32_t sampling, tsdb_index_reader **out,
                            char *err, size_t errlen) {
  if (sampling == 0) {
    snprintf(err, errlen, "index-header: postings offset sampling must be at least 1");
    return ORR_EINVAL;
  }
  tsdb_index_reader *r = calloc(1, sizeof(*r));
  if (!r) return ORR_ENOMEM;
  r->pt_every = sampling;
  r->b = p;
  r->n = n;
  r->toc.symbols = symbols;
  r->toc.postings_offset_table = pot;
  r->poff_limit = poff_limit;
  tsdb__corrupt("%s", "");
  int rc = open_symbols(r);
  if (rc == 0) rc = open_postings_table(r);
  if (rc) {
    if (rc == ORR_ECORRUPT)
      snprintf(err, errlen, "%s", tsdb_index_last_error());
    else
      snprintf(err, errlen, "index-header: %s", orr_strerror(rc));
    tsdb_index_close(r);
    return rc;
  }
  *out = r;
  return 0;
}

int tsdb_index_open(const char *path, tsdb_index_reader **out, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "open %s: %s", path, strerror(errno));
    return errno == ENOENT ? ORR_ENOTFOUND : ORR_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(err, errlen, "stat %s: %s", path, strerror(errno));
    close(fd);
    return ORR_EIO;
  }
  size_t n = (size_t)st.st_size;
  void *m = NULL;
  if (n > 0) {
    m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      snprintf(err, errlen, "mmap %s: %s", path, strerror(errno));
      close(fd);
      return ORR_EIO;
    }
  }
  close(fd);
  tsdb_index_reader *r = calloc(1, sizeof(*r));
  if (!r) {
    if (m) munmap(m, n);
    return ORR_ENOMEM;
  }
  r->b = m ? m : (const uint8_t *)"";
  r->n = n;
  r->map = m;
  r->maplen = n;
  r->sym_every = 1;
  int rc = open_common(r, err, errlen);
  if (rc) {
    tsdb_index_close(r);
    return rc;
  }
  *out = r;
  return 0;
}

void tsdb_index_get_toc(const tsdb_index_reader *r, tsdb_index_toc *toc) { *toc = r->toc; }
uint32_t tsdb_index_num_symbols(const tsdb_index_reader *r) { return r->nsym; }

static int sym_lookup(const tsdb_index_reader *r, uint64_t idx, const uint8_t **s, uint32_t *n) {
  if (idx >= r->nsym) return tsdb__corrupt("index: symbol reference %llu out of range (%u symbols)",
                                           (unsigned long long)idx, r->nsym);
  uint64_t start = r->sym_off[idx / r->sym_every];
  /* The table was validated at open: every string lies inside it. */
  orr_dec d = orr_dec_make(r->b + start, r->n - start);
  for (uint64_t i = idx % r->sym_every;; i--) {
    if (dec_str(&d, s, n)) return tsdb__corrupt("index: symbol %llu unreadable",
                                                (unsigned long long)idx);
    if (i == 0) return 0;
  }
}

int tsdb_index_symbol(const tsdb_index_reader *r, uint32_t idx, const char **s, size_t *n) {
  const uint8_t *p;
  uint32_t l;
  int rc = sym_lookup(r, idx, &p, &l);
  if (rc) return rc;
  *s = (const char *)p;
  *n = l;
  return 0;
}

static const pt_name *find_name(const tsdb_index_reader *r, const char *name, size_t nl) {
  size_t lo = 0, hi = r->nnames;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = bytes_cmp(r->names[mid].name, r->names[mid].nlen, (const uint8_t *)name, nl);
    if (c == 0) return &r->names[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* Decodes the postings offset table entry at |pos| (validated at open). */
static void pt_entry(const tsdb_index_reader *r, uint64_t *pos, const uint8_t **val, uint32_t *vl,
                     uint64_t *poff) {
  orr_dec d = orr_dec_make(r->b + *pos, r->n - *pos);
  uint64_t keys;
  const uint8_t *name;
  uint32_t nl;
  /* The table was validated at open; defaults keep a decoder error (not
   * expected) from leaving the outputs unset. */
  *val = (const uint8_t *)"";
  *vl = 0;
  orr_dec_uvarint(&d, &keys);
  dec_str(&d, &name, &nl);
  dec_str(&d, val, vl);
  orr_dec_uvarint(&d, poff);
  *pos = (uint64_t)(d.p - r->b);
}

int tsdb_index_label_names(const tsdb_index_reader *r, orr_arena *a, const char ***names,
                           size_t *n) {
  const char **v = orr_arena_alloc(a, (r->nnames + 1) * sizeof(*v));
  if (!v) return ORR_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < r->nnames; i++) {
    if (r->names[i].nlen == 0) continue;
    v[k] = orr_arena_strndup(a, (const char *)r->names[i].name, r->names[i].nlen);
    if (!v[k++]) return ORR_ENOMEM;
  }
  *names = v;
  *n = k;
  return 0;
}

int tsdb_index_label_values(const tsdb_index_reader *r, const char *name, orr_arena *a,
                            const char ***values, size_t *n) {
  const pt_name *nm = find_name(r, name, strlen(name));
  *n = 0;
  *values = NULL;
  if (!nm) return 0;
  const char **v = orr_arena_alloc(a, nm->nvalues * sizeof(*v) + 1);
  if (!v) return ORR_ENOMEM;
  uint64_t pos = nm->s[0].pos;
  for (uint64_t i = 0; i < nm->nvalues; i++) {
    const uint8_t *val;
    uint32_t vl;
    uint64_t poff;
    pt_entry(r, &pos, &val, &vl, &poff);
    if (!(v[i] = orr_arena_strndup(a, (const char *)val, vl))) return ORR_ENOMEM;
  }
  *values = v;
  *n = nm->nvalues;
  return 0;
}

/* Finds the postings offset of |name|=|value| and the position of the next
 * table entry; ORR_ENOTFOUND when absent. */
static int find_postings_pos(const tsdb_index_reader *r, const pt_name *nm, const char *value,
                             uint64_t *poff, uint64_t *next_pos) {
  size_t vl = strlen(value);
  /* Greatest sample <= value. */
  size_t lo = 0, hi = nm->ns;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (bytes_cmp(nm->s[mid].val, nm->s[mid].vlen, (const uint8_t *)value, vl) <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return ORR_ENOTFOUND;
  const pt_sample *s = &nm->s[lo - 1];
  uint64_t pos = s->pos;
  for (uint64_t k = s->k; k < nm->nvalues && k < (uint64_t)s->k + r->pt_every; k++) {
    const uint8_t *val;
    uint32_t l;
    pt_entry(r, &pos, &val, &l, poff);
    int c = bytes_cmp(val, l, (const uint8_t *)value, vl);
    if (c == 0) {
      if (next_pos) *next_pos = pos;
      return 0;
    }
    if (c > 0) break;
  }
  return ORR_ENOTFOUND;
}

static int find_postings(const tsdb_index_reader *r, const pt_name *nm, const char *value,
                         uint64_t *poff) {
  return find_postings_pos(r, nm, value, poff, NULL);
}

/* Opens the postings list at |off|: checks length, CRC and order. */
static int open_list(const tsdb_index_reader *r, uint64_t off, orr_arena *a, tsdb_postings **out) {
  const uint8_t *body;
  size_t blen;
  int rc = read_section(r, off, "postings list", &body, &blen);
  if (rc) return rc;
  if (blen < 4 || (uint64_t)be32(body) * 4 != blen - 4)
    return tsdb__corrupt("index postings list at offset %llu: %zu bytes for %u entries",
                         (unsigned long long)off, blen, blen >= 4 ? be32(body) : 0);
  size_t cnt = (blen - 4) / 4;
  const uint8_t *p = body + 4;
  for (size_t i = 1; i < cnt; i++) {
    if (be32(p + 4 * i) <= be32(p + 4 * (i - 1)))
      return tsdb__corrupt("index postings list at offset %llu: entry %zu not increasing",
                           (unsigned long long)off, i);
  }
  *out = tsdb__postings_be32(a, p, cnt);
  return *out ? 0 : ORR_ENOMEM;
}

int tsdb__index_postings_span(const tsdb_index_reader *r, const char *name, const char *value,
                              uint64_t last_end, uint64_t *start, uint64_t *end) {
  const pt_name *nm = find_name(r, name, strlen(name));
  if (!nm) return ORR_ENOTFOUND;
  int rc = find_postings_pos(r, nm, value, start, end);
  if (rc) return rc;
  /* |*end| holds the position of the next table entry: its offset ends
   * this list (lists are written in table order). */
  uint64_t pos = *end;
  if (pos >= r->pot_end) {
    *end = last_end;
  } else {
    const uint8_t *val;
    uint32_t vl;
    pt_entry(r, &pos, &val, &vl, end);
  }
  if (*end <= *start) *end = last_end > *start ? last_end : *start + 8;
  return 0;
}

int tsdb_index_postings(const tsdb_index_reader *r, const char *name, const char *const *values,
                        size_t nvalues, orr_arena *a, tsdb_postings **out) {
  const pt_name *nm = find_name(r, name, strlen(name));
  if (!nm || nvalues == 0) {
    *out = tsdb_postings_empty(a);
    return *out ? 0 : ORR_ENOMEM;
  }
  tsdb_postings **its = orr_arena_alloc(a, nvalues * sizeof(*its));
  if (!its) return ORR_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < nvalues; i++) {
    uint64_t poff;
    int rc = find_postings(r, nm, values[i], &poff);
    if (rc == ORR_ENOTFOUND) continue;
    if (rc) return rc;
    if ((rc = open_list(r, poff, a, &its[k])) != 0) return rc;
    k++;
  }
  *out = tsdb_postings_merge(a, its, k);
  return *out ? 0 : ORR_ENOMEM;
}

int tsdb_index_all_postings(const tsdb_index_reader *r, orr_arena *a, tsdb_postings **out) {
  const char *v = "";
  return tsdb_index_postings(r, "", &v, 1, a, out);
}

int tsdb_index_label_index_values(const tsdb_index_reader *r, const char *name, orr_arena *a,
                                  const char ***values, size_t *n) {
  if (!r->lot_count) return ORR_ENOTFOUND;
  orr_dec d = orr_dec_make(r->b + r->lot_pos, r->n - r->lot_pos);
  size_t want = strlen(name);
  for (uint64_t i = 0; i < r->lot_count; i++) {
    uint64_t keys, loff;
    const uint8_t *nm = NULL;
    uint32_t nl = 0;
    orr_dec_uvarint(&d, &keys);
    for (uint64_t k = 0; k < keys; k++) dec_str(&d, &nm, &nl);
    orr_dec_uvarint(&d, &loff);
    if (keys != 1 || bytes_cmp(nm, nl, (const uint8_t *)name, want) != 0) continue;
    const uint8_t *body;
    size_t blen;
    int rc = read_section(r, loff, "label index", &body, &blen);
    if (rc) return rc;
    if (blen < 8 || be32(body) != 1 || (uint64_t)be32(body + 4) * 4 != blen - 8)
      return tsdb__corrupt("index label index at offset %llu: bad header",
                           (unsigned long long)loff);
    size_t cnt = (blen - 8) / 4;
    const char **v = orr_arena_alloc(a, cnt * sizeof(*v) + 1);
    if (!v) return ORR_ENOMEM;
    for (size_t j = 0; j < cnt; j++) {
      const uint8_t *s;
      uint32_t sl;
      if ((rc = sym_lookup(r, be32(body + 8 + 4 * j), &s, &sl)) != 0) return rc;
      if (!(v[j] = orr_arena_strndup(a, (const char *)s, sl))) return ORR_ENOMEM;
    }
    *values = v;
    *n = cnt;
    return 0;
  }
  return ORR_ENOTFOUND;
}

int tsdb_index_series(const tsdb_index_reader *r, uint64_t ref, orr_arena *a, labels_set *lset,
                      tsdb_index_chunk_meta **chks, size_t *nchks) {
  if (ref > UINT64_MAX / 16) return ORR_ENOTFOUND;
  uint64_t off = ref * 16;
  if (r->toc.series == 0 || off < r->toc.series || off >= r->series_end) return ORR_ENOTFOUND;
  int rc = tsdb__index_decode_series(r, r->b + off, r->series_end - off, ref, a, NULL, lset, chks,
                                     nchks, NULL);
  if (rc == ORR_EAGAIN)
    rc = tsdb__corrupt("index series %llu at offset %llu: length beyond the series section",
                       (unsigned long long)ref, (unsigned long long)off);
  return rc;
}

/* Symbol |idx| as a string in |a|, through |memo| when given. */
static const char *sym_string(const tsdb_index_reader *r, uint64_t idx, orr_arena *a,
                              tsdb_symbol_memo *memo, int *rc) {
  size_t slot = 0;
  if (memo) {
    slot = (size_t)((idx * 0x9E3779B97F4A7C15ull) >> 32) % TSDB_SYMBOL_MEMO_SLOTS;
    if (memo->ref[slot] == idx + 1) return memo->s[slot];
  }
  const uint8_t *s;
  uint32_t sl;
  if ((*rc = sym_lookup(r, idx, &s, &sl)) != 0) return NULL;
  const char *c = orr_arena_strndup(a, (const char *)s, sl);
  if (!c) {
    *rc = ORR_ENOMEM;
    return NULL;
  }
  if (memo) {
    memo->ref[slot] = idx + 1;
    memo->s[slot] = c;
  }
  return c;
}

int tsdb__index_decode_series(const tsdb_index_reader *r, const uint8_t *p, size_t avail,
                              uint64_t ref, orr_arena *a, tsdb_symbol_memo *memo,
                              labels_set *lset,
                              tsdb_index_chunk_meta **chks, size_t *nchks, size_t *need) {
  uint64_t off = ref * 16;
  orr_dec d = orr_dec_make(p, avail);
  uint64_t len = 0;
  if (orr_dec_uvarint(&d, &len)) {
    if (avail >= 10)
      return tsdb__corrupt("index series %llu at offset %llu: bad length",
                           (unsigned long long)ref, (unsigned long long)off);
    if (need) *need = 14; /* the length itself was cut */
    return ORR_EAGAIN;
  }
  if (len > (1u << 30))
    return tsdb__corrupt("index series %llu at offset %llu: length %llu too large",
                         (unsigned long long)ref, (unsigned long long)off,
                         (unsigned long long)len);
  if (len + 4 > orr_dec_left(&d)) {
    if (need) *need = (size_t)(d.p - p) + (size_t)len + 4;
    return ORR_EAGAIN;
  }
  const uint8_t *body = d.p;
  uint32_t want = be32(body + len), got = orr_crc32c(0, body, len);
  if (want != got && tsdb__index_verify_crc)
    return tsdb__corrupt("index series %llu at offset %llu: CRC32C mismatch (stored %08x, "
                         "computed %08x)", (unsigned long long)ref, (unsigned long long)off,
                         want, got);
  d = orr_dec_make(body, len);
  uint64_t nl, nc;
  if (orr_dec_uvarint(&d, &nl) || nl > len / 2)
    return tsdb__corrupt("index series %llu at offset %llu: bad label count",
                         (unsigned long long)ref, (unsigned long long)off);
  labels_label *lv = orr_arena_alloc(a, nl * sizeof(*lv) + 1);
  if (!lv) return ORR_ENOMEM;
  for (uint64_t i = 0; i < nl; i++) {
    uint64_t ni, vi;
    int rc = 0;
    if (orr_dec_uvarint(&d, &ni) || orr_dec_uvarint(&d, &vi))
      return tsdb__corrupt("index series %llu at offset %llu: truncated labels",
                           (unsigned long long)ref, (unsigned long long)off);
    if (!(lv[i].name = sym_string(r, ni, a, memo, &rc))) return rc;
    if (!(lv[i].value = sym_string(r, vi, a, memo, &rc))) return rc;
  }
  if (orr_dec_uvarint(&d, &nc) || nc > len)
    return tsdb__corrupt("index series %llu at offset %llu: bad chunk count",
                         (unsigned long long)ref, (unsigned long long)off);
  tsdb_index_chunk_meta *cv = orr_arena_alloc(a, nc * sizeof(*cv) + 1);
  if (!cv) return ORR_ENOMEM;
  int64_t t0 = 0, ref0 = 0;
  for (uint64_t i = 0; i < nc; i++) {
    uint64_t dmin = 0, dmax = 0, uref = 0;
    int64_t mint = 0, sref = 0;
    int bad;
    if (i == 0) {
      bad = orr_dec_varint(&d, &mint) || orr_dec_uvarint(&d, &dmax) || orr_dec_uvarint(&d, &uref);
      sref = (int64_t)uref;
    } else {
      int64_t dref = 0;
      bad = orr_dec_uvarint(&d, &dmin) || orr_dec_uvarint(&d, &dmax) || orr_dec_varint(&d, &dref);
      mint = (int64_t)((uint64_t)t0 + dmin);
      sref = (int64_t)((uint64_t)ref0 + (uint64_t)dref);
    }
    if (bad)
      return tsdb__corrupt("index series %llu at offset %llu: truncated chunk meta %llu",
                           (unsigned long long)ref, (unsigned long long)off,
                           (unsigned long long)i);
    cv[i].mint = mint;
    cv[i].maxt = (int64_t)((uint64_t)mint + dmax);
    cv[i].ref = (uint64_t)sref;
    t0 = cv[i].maxt;
    ref0 = sref;
  }
  lset->v = lv;
  lset->n = nl;
  *chks = cv;
  *nchks = nc;
  return 0;
}
