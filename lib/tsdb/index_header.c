/* index_header.c: Thanos's binary index-header (format version 1) — the
 * part of a block's index a store gateway keeps locally: the symbol table
 * and the postings offset table, copied byte for byte from the index with
 * ranged reads, behind a 14-byte header and before a 20-byte TOC:
 *
 *   magic 0xBAAAD792 <4b> | version 1 <1b> | index version 2 <1b> |
 *   offset of the index's postings offset table <8b> (where the last
 *   postings list ends) | symbol table | postings offset table |
 *   TOC: symbols offset <8b>, postings offset table offset <8b>, CRC32C <4b>
 *
 * NOTES
 * 1. The file is written to <path>.tmp, fsynced and renamed, then the
 *    directory is fsynced: a reader sees a whole header or none.
 * 2. It is read through the index reader over the mmapped file (same
 *    validation; every 32nd symbol and every Nth postings offset of a name
 *    kept in memory, N chosen per open: Thanos's
 *    --store.index-header-posting-offsets-in-mem-sampling, default 32). Validating touches every page of the two tables once; the pages
 *    are then released from the process (MADV_DONTNEED on a shared file
 *    mapping keeps them in the page cache only), so a store's RSS holds the
 *    samples, not the tables.
 * 3. Postings lists and series are not in the header; the header gives the
 *    byte range of a list in the index for a ranged read. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb_int.h"

#define HDR_LEN 14
#define HDR_TOC_LEN 20

struct tsdb_index_header {
  void *map;
  size_t n;
  uint64_t last_end; /* the index's postings offset table offset */
  tsdb_index_reader *r;
};

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* Reads the section (len <4b> | body | CRC <4b>) at |off| of the index into
 * |out| (appended). */
static int read_section(tsdb_read_range_fn rd, void *arg, uint64_t off, uint64_t limit,
                        const char *what, orr_buf *out, char *err, size_t errlen) {
  orr_buf lb = {0};
  int rc = rd(arg, off, 4, &lb, err, errlen);
  if (rc == 0 && lb.len != 4) {
    snprintf(err, errlen, "index %s at offset %llu: cut short", what, (unsigned long long)off);
    rc = ORR_ECORRUPT;
  }
  uint64_t len = rc == 0 ? be32((const uint8_t *)lb.data) : 0;
  orr_buf_free(&lb);
  if (rc) return rc;
  if (off + 8 + len > limit) {
    snprintf(err, errlen, "index %s at offset %llu: length %llu beyond end of file", what,
             (unsigned long long)off, (unsigned long long)len);
    return ORR_ECORRUPT;
  }
  size_t before = out->len;
  if ((rc = rd(arg, off, len + 8, out, err, errlen)) != 0) return rc;
  if (out->len - before != len + 8) {
    snprintf(err, errlen, "index %s at offset %llu: cut short", what, (unsigned long long)off);
    return ORR_ECORRUPT;
  }
  const uint8_t *p = (const uint8_t *)out->data + before + 4;
  if (orr_crc32c(0, p, len) != be32(p + len)) {
    snprintf(err, errlen, "index %s at offset %llu: CRC32C mismatch", what,
             (unsigned long long)off);
    return ORR_ECORRUPT;
  }
  return 0;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int tsdb_index_header_write(tsdb_read_range_fn rd, void *arg, uint64_t index_size,
                            const char *path, char *err, size_t errlen) {
  orr_buf toc = {0}, b = {0};
  char *tmp = NULL;
  int fd = -1, rc;
  if (index_size < TSDB__INDEX_HEADER_LEN + TSDB__INDEX_TOC_LEN) {
    snprintf(err, errlen, "index of %llu bytes is too short", (unsigned long long)index_size);
    return ORR_ECORRUPT;
  }
  if ((rc = rd(arg, index_size - TSDB__INDEX_TOC_LEN, TSDB__INDEX_TOC_LEN, &toc, err, errlen)))
    goto out;
  const uint8_t *t = (const uint8_t *)toc.data;
  if (toc.len != TSDB__INDEX_TOC_LEN || orr_crc32c(0, t, 48) != be32(t + 48)) {
    snprintf(err, errlen, "index TOC: %s", toc.len != TSDB__INDEX_TOC_LEN ? "cut short"
                                                                          : "CRC32C mismatch");
    rc = ORR_ECORRUPT;
    goto out;
  }
  uint64_t sym = be64(t), pot = be64(t + 40);
  uint64_t limit = index_size - TSDB__INDEX_TOC_LEN;
  if (sym < TSDB__INDEX_HEADER_LEN || pot < TSDB__INDEX_HEADER_LEN || sym >= limit || pot >= limit) {
    snprintf(err, errlen, "index TOC: section offsets outside the file");
    rc = ORR_ECORRUPT;
    goto out;
  }
  orr_buf_put_be32(&b, TSDB_INDEX_HEADER_MAGIC);
  orr_buf_putc(&b, 1);                /* index-header format version */
  orr_buf_putc(&b, TSDB__INDEX_V2);   /* the index's version */
  orr_buf_put_be64(&b, pot);
  if (b.oom) goto oom;
  if ((rc = read_section(rd, arg, sym, limit, "symbol table", &b, err, errlen))) goto out;
  uint64_t hpot = b.len;
  if ((rc = read_section(rd, arg, pot, limit, "postings offset table", &b, err, errlen))) goto out;
  size_t tstart = b.len;
  orr_buf_put_be64(&b, HDR_LEN);
  orr_buf_put_be64(&b, hpot);
  if (b.oom) goto oom;
  orr_buf_put_be32(&b, orr_crc32c(0, b.data + tstart, 16));
  if (b.oom) goto oom;
  size_t pl = strlen(path);
  if (!(tmp = malloc(pl + 5))) goto oom;
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp", 5);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write_all(fd, b.data, b.len) || fsync(fd)) {
    snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
    rc = ORR_EIO;
    goto out;
  }
  close(fd);
  fd = -1;
  if (rename(tmp, path)) {
    snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
    rc = ORR_EIO;
    goto out;
  }
  char *dcopy = strdup(path);
  if (dcopy) {
    int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    free(dcopy);
  }
  rc = 0;
  goto out;
oom:
  rc = ORR_ENOMEM;
  snprintf(err, errlen, "index-header: out of memory");
out:
  if (fd >= 0) close(fd);
  if (rc && tmp) unlink(tmp);
  free(tmp);
  orr_buf_free(&toc);
  orr_buf_free(&b);
  return rc;
}

static int open_common(tsdb_index_header *h, const uint8_t *p, size_t n, uint32_t sampling,
                       char *err, size_t errlen) {
  if (n < HDR_LEN + HDR_TOC_LEN) {
    snprintf(err, errlen, "index-header: file of %zu bytes is too short", n);
    return ORR_ECORRUPT;
  }
  if (be32(p) != TSDB_INDEX_HEADER_MAGIC) {
    snprintf(err, errlen, "index-header: bad magic %08x", be32(p));
    return ORR_ECORRUPT;
  }
  if (p[4] != 1 || p[5] != TSDB__INDEX_V2) {
    snprintf(err, errlen, "index-header: version %u for index version %u not supported", p[4],
             p[5]);
    return ORR_EUNSUPPORTED;
  }
  h->last_end = be64(p + 6);
  const uint8_t *t = p + n - HDR_TOC_LEN;
  if (orr_crc32c(0, t, 16) != be32(t + 16) && tsdb__index_verify_crc) {
    snprintf(err, errlen, "index-header TOC: CRC32C mismatch");
    return ORR_ECORRUPT;
  }
  uint64_t sym = be64(t), pot = be64(t + 8);
  if (sym < HDR_LEN || pot < HDR_LEN || sym >= n - HDR_TOC_LEN || pot >= n - HDR_TOC_LEN) {
    snprintf(err, errlen, "index-header TOC: section offsets outside the file");
    return ORR_ECORRUPT;
  }
  /* The tables' offsets in the header are not the index's, but postings
   * offsets refer to the index: they may reach the postings table's start. */
  return tsdb__index_open_tables(p, n - HDR_TOC_LEN, sym, pot, h->last_end, sampling, &h->r, err,
                                 errlen);
}

int tsdb_index_header_open_bytes(const void *p, size_t n, uint32_t sampling,
                                 tsdb_index_header **out, char *err, size_t errlen) {
  tsdb_index_header *h = calloc(1, sizeof(*h));
  if (!h) return ORR_ENOMEM;
  int rc = open_common(h, p, n, sampling, err, errlen);
  if (rc) {
    tsdb_index_header_close(h);
    return rc;
  }
  h->n = n;
  *out = h;
  return 0;
}

int tsdb_index_header_open(const char *path, uint32_t sampling, tsdb_index_header **out,
                           char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "open %s: %s", path, strerror(errno));
    return errno == ENOENT ? ORR_ENOTFOUND : ORR_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size == 0) {
    snprintf(err, errlen, "index-header %s: %s", path, st.st_size == 0 ? "empty" : strerror(errno));
    close(fd);
    return ORR_ECORRUPT;
  }
  size_t n = (size_t)st.st_size;
  void *m = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    snprintf(err, errlen, "mmap %s: %s", path, strerror(errno));
    return ORR_EIO;
  }
  tsdb_index_header *h = calloc(1, sizeof(*h));
  if (!h) {
    munmap(m, n);
    return ORR_ENOMEM;
  }
  h->map = m;
  h->n = n;
  int rc = open_common(h, m, n, sampling, err, errlen);
  if (rc) {
    tsdb_index_header_close(h);
    return rc;
  }
  madvise(m, n, MADV_DONTNEED); /* note 2 */
  *out = h;
  return 0;
}

void tsdb_index_header_close(tsdb_index_header *h) {
  if (!h) return;
  tsdb_index_close(h->r);
  if (h->map) munmap(h->map, h->n);
  free(h);
}

const tsdb_index_reader *tsdb_index_header_reader(const tsdb_index_header *h) { return h->r; }
uint64_t tsdb_index_header_size(const tsdb_index_header *h) { return h->n; }

int tsdb_index_header_postings_range(const tsdb_index_header *h, const char *name,
                                     const char *value, uint64_t *start, uint64_t *end) {
  return tsdb__index_postings_span(h->r, name, value, h->last_end, start, end);
}

int tsdb_index_header_series(const tsdb_index_header *h, const uint8_t *p, size_t avail,
                             uint64_t ref, orr_arena *a, labels_set *lset,
                             tsdb_index_chunk_meta **chks, size_t *nchks, size_t *need) {
  return tsdb__index_decode_series(h->r, p, avail, ref, a, NULL, lset, chks, nchks, need);
}

void tsdb_symbol_memo_reset(tsdb_symbol_memo *m) { memset(m->ref, 0, sizeof m->ref); }

int tsdb_index_header_series_memo(const tsdb_index_header *h, const uint8_t *p, size_t avail,
                                  uint64_t ref, orr_arena *a, tsdb_symbol_memo *memo,
                                  labels_set *lset, tsdb_index_chunk_meta **chks, size_t *nchks,
                                  size_t *need) {
  return tsdb__index_decode_series(h->r, p, avail, ref, a, memo, lset, chks, nchks, need);
}

int tsdb_postings_list_decode(const uint8_t *p, size_t n, orr_arena *a, uint64_t **refs,
                              size_t *cnt) {
  if (n < 12) return tsdb__corrupt("postings list: %zu bytes", n);
  uint64_t len = be32(p);
  if (len + 8 > n || len < 4) return tsdb__corrupt("postings list: length %llu beyond %zu bytes",
                                                   (unsigned long long)len, n);
  const uint8_t *body = p + 4;
  if (orr_crc32c(0, body, len) != be32(body + len) && tsdb__index_verify_crc)
    return tsdb__corrupt("postings list: CRC32C mismatch");
  uint64_t k = be32(body);
  if (k * 4 != len - 4) return tsdb__corrupt("postings list: %llu bytes for %llu entries",
                                             (unsigned long long)len, (unsigned long long)k);
  uint64_t *v = orr_arena_alloc(a, (k ? k : 1) * sizeof(*v));
  if (!v) return ORR_ENOMEM;
  for (uint64_t i = 0; i < k; i++) {
    v[i] = be32(body + 4 + 4 * i);
    if (i && v[i] <= v[i - 1]) return tsdb__corrupt("postings list: entry %llu not increasing",
                                                    (unsigned long long)i);
  }
  *refs = v;
  *cnt = (size_t)k;
  return 0;
}

int tsdb_postings_list_open(const uint8_t *p, size_t n, bool verify, orr_arena *a,
                            tsdb_postings **out) {
  if (n < 12) return tsdb__corrupt("postings list: %zu bytes", n);
  uint64_t len = be32(p);
  if (len + 8 > n || len < 4) return tsdb__corrupt("postings list: length %llu beyond %zu bytes",
                                                   (unsigned long long)len, n);
  const uint8_t *body = p + 4;
  uint64_t k = be32(body);
  if (k * 4 != len - 4) return tsdb__corrupt("postings list: %llu bytes for %llu entries",
                                             (unsigned long long)len, (unsigned long long)k);
  if (verify) {
    if (orr_crc32c(0, body, len) != be32(body + len) && tsdb__index_verify_crc)
      return tsdb__corrupt("postings list: CRC32C mismatch");
    for (uint64_t i = 1; i < k; i++)
      if (be32(body + 4 + 4 * i) <= be32(body + 4 * i))
        return tsdb__corrupt("postings list: entry %llu not increasing", (unsigned long long)i);
  }
  *out = tsdb__postings_be32(a, body + 4, (size_t)k);
  return *out ? 0 : ORR_ENOMEM;
}
