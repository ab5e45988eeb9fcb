/* chunk_segment.c: a block's chunks/ directory — numbered segment files of
 * chunks with lengths and CRC32C checksums (tsdb/docs/format/chunks.md).
 * The reader mmaps every segment and checks each chunk it hands out; the
 * writer appends chunks, cutting a new segment at the size limit.
 *
 * Design notes:
 *  1. A reference is (segment index << 32) | offset, the index counting the
 *     directory's numbered files in order from 0 (file 000001 is index 0).
 *  2. Nothing is trusted: every length is checked against the bytes that
 *     remain, every chunk's CRC is verified before its bytes are returned.
 *  3. The writer's states: no segment open -> segment open (header written,
 *     n bytes in it) -> closed. A chunk that would take a non-empty segment
 *     past the size limit first cuts (fsync + close, open the next file). Its
 *     first error latches and is returned by every later call and by close. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb.h"
#include "tsdb_int.h"

typedef struct segment {
  const uint8_t *p;
  size_t len;
  void *map; /* NULL for borrowed bytes */
  char name[64];
} segment;

struct tsdb_chunk_reader {
  segment *segs;
  size_t nseg;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) ORR_PRINTF(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int check_header(const segment *s, char *err, size_t errlen) {
  if (s->len < TSDB__SEGMENT_HEADER_LEN) {
    set_err(err, errlen, "%s: invalid segment header: %zu bytes", s->name, s->len);
    return ORR_ECORRUPT;
  }
  if (be32(s->p) != TSDB__SEGMENT_MAGIC) {
    set_err(err, errlen, "%s: invalid magic number %08x", s->name, be32(s->p));
    return ORR_ECORRUPT;
  }
  if (s->p[4] != TSDB__SEGMENT_V1) {
    set_err(err, errlen, "%s: invalid chunk format version %u", s->name, s->p[4]);
    return ORR_ECORRUPT;
  }
  return 0;
}

void tsdb_chunk_reader_close(tsdb_chunk_reader *r) {
  if (!r) return;
  for (size_t i = 0; i < r->nseg; i++) {
    if (r->segs[i].map) munmap(r->segs[i].map, r->segs[i].len);
  }
  free(r->segs);
  free(r);
}

size_t tsdb_chunk_reader_segments(const tsdb_chunk_reader *r) { return r->nseg; }

int tsdb_chunk_reader_open_bytes(const uint8_t *const *segs, const size_t *lens, size_t nseg,
                                 tsdb_chunk_reader **out, char *err, size_t errlen) {
  *out = NULL;
  tsdb_chunk_reader *r = calloc(1, sizeof(*r));
  if (!r || (nseg && !(r->segs = calloc(nseg, sizeof(*r->segs))))) {
    free(r);
    set_err(err, errlen, "out of memory");
    return ORR_ENOMEM;
  }
  for (size_t i = 0; i < nseg; i++) {
    segment *s = &r->segs[i];
    s->p = segs[i];
    s->len = lens[i];
    snprintf(s->name, sizeof(s->name), "segment %zu", i);
    r->nseg++;
    int rc = check_header(s, err, errlen);
    if (rc) {
      tsdb_chunk_reader_close(r);
      return rc;
    }
  }
  *out = r;
  return 0;
}

/* Segment files are the directory entries whose names are decimal numbers;
 * Prometheus ignores anything else there too. */
static int seq_name(const char *name, unsigned long *seq) {
  if (!*name) return 0;
  unsigned long v = 0;
  for (const char *c = name; *c; c++) {
    if (*c < '0' || *c > '9' || v > 0xffffffffu) return 0;
    v = v * 10 + (unsigned long)(*c - '0');
  }
  *seq = v;
  return 1;
}

typedef struct seq_entry {
  unsigned long seq;
  char name[64];
} seq_entry;

static int seq_cmp(const void *a, const void *b) {
  unsigned long x = ((const seq_entry *)a)->seq, y = ((const seq_entry *)b)->seq;
  return x < y ? -1 : x > y;
}

/* Lists |dir|'s segment files in order into |*out| (caller frees). */
static int list_segments(const char *dir, seq_entry **out, size_t *n, char *err, size_t errlen) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) {
    set_err(err, errlen, "%s: %s", dir, strerror(errno));
    return errno == ENOENT ? ORR_ENOTFOUND : ORR_EIO;
  }
  seq_entry *v = NULL;
  size_t cnt = 0, cap = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d))) {
    unsigned long seq;
    size_t len = strlen(e->d_name);
    if (!seq_name(e->d_name, &seq) || len >= sizeof(v->name)) continue;
    if (cnt == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      seq_entry *nv = realloc(v, ncap * sizeof(*nv));
      if (!nv) {
        rc = ORR_ENOMEM;
        set_err(err, errlen, "out of memory");
        goto out;
      }
      v = nv;
      cap = ncap;
    }
    v[cnt].seq = seq;
    /* the length was checked above; a copy of exactly it (snprintf here made
     * gcc -O0 warn of a truncation that cannot happen) */
    memcpy(v[cnt].name, e->d_name, len + 1);
    cnt++;
  }
  if (cnt > 1) qsort(v, cnt, sizeof(*v), seq_cmp);
  *out = v;
  *n = cnt;
  v = NULL;
out:
  free(v);
  closedir(d);
  return rc;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int tsdb_segment_names(const char *cdir, orr_arena *a, const char ***out, size_t *n) {
  DIR *d = opendir(cdir);
  if (!d) return ORR_EIO;
  const char **v = NULL;
  size_t nv = 0, cap = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (nv == cap) {
      size_t nc = cap ? cap * 2 : 8;
      const char **nvp = orr_arena_calloc(a, nc, sizeof(*nvp));
      if (!nvp) {
        rc = ORR_ENOMEM;
        break;
      }
      if (nv) memcpy(nvp, v, nv * sizeof(*v));
      v = nvp;
      cap = nc;
    }
    if (!(v[nv++] = orr_arena_strdup(a, e->d_name))) {
      rc = ORR_ENOMEM;
      break;
    }
  }
  closedir(d);
  if (rc) return rc;
  if (nv > 1) qsort(v, nv, sizeof(*v), cmp_name);
  *out = v;
  *n = nv;
  return 0;
}

int tsdb_chunk_reader_open(const char *dir, tsdb_chunk_reader **out, char *err, size_t errlen) {
  seq_entry *files = NULL;
  size_t nfiles = 0;
  tsdb_chunk_reader *r = NULL;
  int rc = list_segments(dir, &files, &nfiles, err, errlen);
  if (rc) goto out;
  r = calloc(1, sizeof(*r));
  if (!r || (nfiles && !(r->segs = calloc(nfiles, sizeof(*r->segs))))) {
    rc = ORR_ENOMEM;
    set_err(err, errlen, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < nfiles; i++) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
    segment *s = &r->segs[r->nseg];
    snprintf(s->name, sizeof(s->name), "%s", files[i].name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      set_err(err, errlen, "%s: %s", path, strerror(errno));
      if (fd >= 0) close(fd);
      rc = ORR_EIO;
      goto out;
    }
    s->len = (size_t)st.st_size;
    if (s->len > 0) {
      void *m = mmap(NULL, s->len, PROT_READ, MAP_SHARED, fd, 0);
      if (m == MAP_FAILED) {
        set_err(err, errlen, "%s: mmap: %s", path, strerror(errno));
        close(fd);
        rc = ORR_EIO;
        goto out;
      }
      s->map = m;
      s->p = m;
    }
    close(fd);
    r->nseg++;
    rc = check_header(s, err, errlen);
    if (rc) {
      /* name the path, not just the file */
      char msg[512];
      snprintf(msg, sizeof(msg), "%s/%s", dir, err && errlen ? err : "");
      set_err(err, errlen, "%s", msg);
      goto out;
    }
  }
  *out = r;
  r = NULL;
out:
  free(files);
  tsdb_chunk_reader_close(r);
  return rc;
}

/* Parses the chunk at |off| of |s|: fills |c| and the offset just past it. */
static int parse_chunk(const segment *s, uint64_t off, tsdb_chunk *c, uint64_t *next, char *err,
                       size_t errlen) {
  if (off < TSDB__SEGMENT_HEADER_LEN || off >= s->len) {
    set_err(err, errlen, "%s: offset %llu: outside the segment (%zu bytes)", s->name,
            (unsigned long long)off, s->len);
    return ORR_ECORRUPT;
  }
  orr_dec d = orr_dec_make(s->p + off, s->len - (size_t)off);
  uint64_t len;
  if (orr_dec_uvarint(&d, &len) || len > 0xffffffffu) {
    set_err(err, errlen, "%s: offset %llu: bad chunk length", s->name, (unsigned long long)off);
    return ORR_ECORRUPT;
  }
  if (orr_dec_left(&d) < 1 || orr_dec_left(&d) - 1 < TSDB__CHUNK_CRC_LEN ||
      orr_dec_left(&d) - 1 - TSDB__CHUNK_CRC_LEN < len) {
    set_err(err, errlen, "%s: offset %llu: chunk of %llu bytes runs past the end of the segment",
            s->name, (unsigned long long)off, (unsigned long long)len);
    return ORR_ECORRUPT;
  }
  const uint8_t *body = d.p; /* encoding byte + data */
  uint32_t want = be32(body + 1 + len);
  uint32_t got = orr_crc32c(0, body, (size_t)len + 1);
  if (want != got) {
    set_err(err, errlen, "%s: offset %llu: checksum mismatch (stored %08x, computed %08x)",
            s->name, (unsigned long long)off, want, got);
    return ORR_ECORRUPT;
  }
  c->mint = c->maxt = 0;
  c->enc = body[0];
  c->data = (uint8_t *)(body + 1);
  c->len = (size_t)len;
  *next = (uint64_t)(body + 1 + len + TSDB__CHUNK_CRC_LEN - s->p);
  return 0;
}

void tsdb__chunk_reader_release(const tsdb_chunk_reader *r) {
  for (size_t i = 0; r && i < r->nseg; i++)
    if (r->segs[i].map) madvise(r->segs[i].map, r->segs[i].len, MADV_DONTNEED);
}

int tsdb_chunk_reader_get(const tsdb_chunk_reader *r, uint64_t ref, tsdb_chunk *chunk, char *err,
                          size_t errlen) {
  uint64_t seg = ref >> 32, off = ref & 0xffffffffu, next;
  if (seg >= r->nseg) {
    set_err(err, errlen, "chunk ref %llu: segment index %llu out of range (%zu segments)",
            (unsigned long long)ref, (unsigned long long)seg, r->nseg);
    return ORR_ENOTFOUND;
  }
  return parse_chunk(&r->segs[seg], off, chunk, &next, err, errlen);
}

int tsdb_chunk_reader_walk(const tsdb_chunk_reader *r, size_t seg,
                           int (*fn)(void *arg, uint64_t ref, const tsdb_chunk *c), void *arg,
                           char *err, size_t errlen) {
  if (seg >= r->nseg) return ORR_ENOTFOUND;
  const segment *s = &r->segs[seg];
  uint64_t off = TSDB__SEGMENT_HEADER_LEN;
  while (off < s->len) {
    tsdb_chunk c;
    uint64_t next;
    int rc = parse_chunk(s, off, &c, &next, err, errlen);
    if (rc) return rc;
    rc = fn(arg, ((uint64_t)seg << 32) | off, &c);
    if (rc) return rc;
    off = next;
  }
  return 0;
}

/* ---------------------------------------------------------------- writer */

#define WBUF_SIZE (1u << 20)

struct tsdb_chunk_writer {
  char *dir;
  int dirfd;
  int fd;               /* current segment, -1 before the first */
  unsigned long file_no; /* number of the current file */
  uint32_t seg_index;    /* its index among the directory's segments */
  uint64_t n;            /* bytes in the current segment, buffered included */
  uint64_t seg_size;
  uint8_t *buf;
  size_t blen;
  int err;
  char errmsg[256];
};

static int wfail(tsdb_chunk_writer *w, int rc, const char *what) {
  if (!w->err) {
    w->err = rc;
    snprintf(w->errmsg, sizeof(w->errmsg), "%s/%06lu: %s: %s", w->dir, w->file_no, what,
             strerror(errno));
  }
  return w->err;
}

static int flush_buf(tsdb_chunk_writer *w) {
  size_t off = 0;
  while (off < w->blen) {
    ssize_t k = write(w->fd, w->buf + off, w->blen - off);
    if (k < 0) {
      if (errno == EINTR) continue;
      return wfail(w, ORR_EIO, "write");
    }
    off += (size_t)k;
  }
  w->blen = 0;
  return 0;
}

static int wput(tsdb_chunk_writer *w, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    if (w->blen == WBUF_SIZE && flush_buf(w)) return w->err;
    size_t k = WBUF_SIZE - w->blen < n ? WBUF_SIZE - w->blen : n;
    memcpy(w->buf + w->blen, b, k);
    w->blen += k;
    b += k;
    n -= k;
  }
  w->n += (uint64_t)(b - (const uint8_t *)p);
  return 0;
}

/* Flushes, fsyncs and closes the current segment. */
static int finish_segment(tsdb_chunk_writer *w) {
  if (w->fd < 0) return 0;
  int rc = flush_buf(w);
  if (!rc && fsync(w->fd) != 0) rc = wfail(w, ORR_EIO, "fsync");
  close(w->fd);
  w->fd = -1;
  return rc;
}

static int cut(tsdb_chunk_writer *w, bool first) {
  if (finish_segment(w)) return w->err;
  char name[32];
  w->file_no++;
  if (!first) w->seg_index++;
  snprintf(name, sizeof(name), "%06lu", w->file_no);
  w->fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (w->fd < 0) return wfail(w, ORR_EIO, "create");
  uint8_t hdr[TSDB__SEGMENT_HEADER_LEN] = {0};
  hdr[0] = (uint8_t)(TSDB__SEGMENT_MAGIC >> 24);
  hdr[1] = (uint8_t)(TSDB__SEGMENT_MAGIC >> 16);
  hdr[2] = (uint8_t)(TSDB__SEGMENT_MAGIC >> 8);
  hdr[3] = (uint8_t)TSDB__SEGMENT_MAGIC;
  hdr[4] = TSDB__SEGMENT_V1;
  w->n = 0;
  return wput(w, hdr, sizeof(hdr));
}

int tsdb_chunk_writer_open(const char *dir, uint64_t segment_size, tsdb_chunk_writer **out,
                           char *err, size_t errlen) {
  *out = NULL;
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    set_err(err, errlen, "%s: mkdir: %s", dir, strerror(errno));
    return ORR_EIO;
  }
  seq_entry *files = NULL;
  size_t nfiles = 0;
  int rc = list_segments(dir, &files, &nfiles, err, errlen);
  if (rc) return rc;
  tsdb_chunk_writer *w = calloc(1, sizeof(*w));
  if (!w || !(w->buf = malloc(WBUF_SIZE)) || !(w->dir = strdup(dir))) {
    if (w) free(w->buf);
    free(w);
    free(files);
    set_err(err, errlen, "out of memory");
    return ORR_ENOMEM;
  }
  w->fd = -1;
  w->seg_size = segment_size ? segment_size : TSDB_SEGMENT_DEFAULT_SIZE;
  w->file_no = nfiles ? files[nfiles - 1].seq : 0;
  w->seg_index = (uint32_t)nfiles; /* the first new file's index */
  free(files);
  w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w->dirfd < 0) {
    set_err(err, errlen, "%s: %s", dir, strerror(errno));
    free(w->buf);
    free(w->dir);
    free(w);
    return ORR_EIO;
  }
  *out = w;
  return 0;
}

int tsdb_chunk_writer_add(tsdb_chunk_writer *w, const tsdb_chunk *c, uint64_t *ref) {
  if (w->err) return w->err;
  if (c->len > 0xffffffffu) return ORR_ERANGE;
  uint64_t need = TSDB__CHUNK_LEN_MAX_BYTES + 1 + (uint64_t)c->len + TSDB__CHUNK_CRC_LEN;
  if (w->fd < 0) {
    if (cut(w, true)) return w->err;
  } else if (w->n > TSDB__SEGMENT_HEADER_LEN && w->n + need > w->seg_size) {
    if (cut(w, false)) return w->err;
  }
  if (w->n > 0xffffffffu) { /* an offset must fit 32 bits */
    errno = EFBIG;
    return wfail(w, ORR_ERANGE, "segment too large");
  }
  *ref = ((uint64_t)w->seg_index << 32) | w->n;
  uint8_t hdr[TSDB__CHUNK_LEN_MAX_BYTES + 1];
  size_t h = 0;
  uint64_t len = c->len;
  while (len >= 0x80) {
    hdr[h++] = (uint8_t)(len | 0x80);
    len >>= 7;
  }
  hdr[h++] = (uint8_t)len;
  hdr[h++] = c->enc;
  uint32_t crc = orr_crc32c(0, &c->enc, 1);
  crc = orr_crc32c(crc, c->data, c->len);
  uint8_t sum[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
  if (wput(w, hdr, h) || wput(w, c->data, c->len) || wput(w, sum, sizeof(sum))) return w->err;
  return 0;
}

int tsdb_chunk_writer_close(tsdb_chunk_writer *w, char *err, size_t errlen) {
  if (!w) return 0;
  finish_segment(w);
  if (!w->err && fsync(w->dirfd) != 0) wfail(w, ORR_EIO, "fsync dir");
  close(w->dirfd);
  int rc = w->err;
  if (rc) set_err(err, errlen, "%s", w->errmsg);
  free(w->buf);
  free(w->dir);
  free(w);
  return rc;
}
