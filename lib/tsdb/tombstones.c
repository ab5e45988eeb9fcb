/* tombstones.c: the block "tombstones" file (deleted time ranges per series:
 * magic 0x0130BA30, version 1, entries of series ref uvarint, mint and maxt
 * varint, CRC32C over the entries) and the interval sets that apply them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb_int.h"

/* ---------------------------------------------------------------- intervals */
int tsdb_intervals_add(tsdb_intervals *s, tsdb_interval iv) {
  if (iv.maxt < iv.mint) return 0;
  /* First interval that ends at or after iv.mint - 1 (touching counts). */
  size_t i = 0;
  while (i < s->n && iv.mint != INT64_MIN && s->v[i].maxt < iv.mint - 1) i++;
  /* Last interval that starts at or before iv.maxt + 1. */
  size_t j = i;
  while (j < s->n && (iv.maxt == INT64_MAX || s->v[j].mint <= iv.maxt + 1)) j++;
  if (j > i) {
    if (s->v[i].mint < iv.mint) iv.mint = s->v[i].mint;
    if (s->v[j - 1].maxt > iv.maxt) iv.maxt = s->v[j - 1].maxt;
    s->v[i] = iv;
    memmove(&s->v[i + 1], &s->v[j], (s->n - j) * sizeof(*s->v));
    s->n -= j - i - 1;
    return 0;
  }
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 4;
    tsdb_interval *nv = realloc(s->v, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    s->v = nv;
    s->cap = nc;
  }
  memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
  s->v[i] = iv;
  s->n++;
  return 0;
}

void tsdb_intervals_free(tsdb_intervals *s) {
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}

bool tsdb_intervals_contains(const tsdb_intervals *s, int64_t t) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->v[mid].maxt < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->n && s->v[lo].mint <= t;
}

size_t tsdb_intervals_apply(const tsdb_intervals *s, int64_t *ts, double *vals, size_t n) {
  size_t k = 0, iv = 0;
  for (size_t i = 0; i < n; i++) {
    while (iv < s->n && s->v[iv].maxt < ts[i]) iv++;
    if (iv < s->n && s->v[iv].mint <= ts[i]) continue;
    ts[k] = ts[i];
    if (vals) vals[k] = vals[i];
    k++;
  }
  return k;
}

/* ---------------------------------------------------------------- tombstones */
static size_t find_ref(const tsdb_tombstones *t, uint64_t ref) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->v[mid].ref < ref)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int tsdb_tombstones_add(tsdb_tombstones *t, uint64_t ref, tsdb_interval iv) {
  if (iv.maxt < iv.mint) return 0; /* deletes nothing: no entry */
  size_t i = find_ref(t, ref);
  if (i == t->n || t->v[i].ref != ref) {
    if (t->n == t->cap) {
      size_t nc = t->cap ? t->cap * 2 : 16;
      tsdb_tombstone *nv = realloc(t->v, nc * sizeof(*nv));
      if (!nv) return ORR_ENOMEM;
      t->v = nv;
      t->cap = nc;
    }
    memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(*t->v));
    memset(&t->v[i], 0, sizeof(t->v[i]));
    t->v[i].ref = ref;
    t->n++;
  }
  return tsdb_intervals_add(&t->v[i].ivs, iv);
}

const tsdb_intervals *tsdb_tombstones_get(const tsdb_tombstones *t, uint64_t ref) {
  size_t i = find_ref(t, ref);
  return i < t->n && t->v[i].ref == ref ? &t->v[i].ivs : NULL;
}

void tsdb_tombstones_free(tsdb_tombstones *t) {
  for (size_t i = 0; i < t->n; i++) tsdb_intervals_free(&t->v[i].ivs);
  free(t->v);
  t->v = NULL;
  t->n = t->cap = 0;
}

int tsdb_tombstones_decode(const void *p, size_t n, tsdb_tombstones *t) {
  const uint8_t *b = p;
  if (n < 4 + 1 + 4) return tsdb__corrupt("tombstones: file of %zu bytes is too short", n);
  orr_dec d = orr_dec_make(b, n - 4);
  uint32_t magic, crc;
  uint8_t ver;
  orr_dec_be32(&d, &magic);
  orr_dec_u8(&d, &ver);
  if (magic != TSDB__TOMBSTONE_MAGIC)
    return tsdb__corrupt("tombstones: bad magic %08x at offset 0", magic);
  /* The CRC skips the magic and the version byte. */
  orr_dec c = orr_dec_make(b + n - 4, 4);
  orr_dec_be32(&c, &crc);
  uint32_t got = orr_crc32c(0, d.p, orr_dec_left(&d));
  if (crc != got)
    return tsdb__corrupt("tombstones: CRC32C mismatch at offset %zu (stored %08x, computed %08x)",
                         n - 4, crc, got);
  if (ver != TSDB__TOMBSTONE_V1) return ORR_EUNSUPPORTED;
  while (orr_dec_left(&d) > 0) {
    size_t at = (size_t)(d.p - b);
    uint64_t ref;
    int64_t mint, maxt;
    if (orr_dec_uvarint(&d, &ref) || orr_dec_varint(&d, &mint) || orr_dec_varint(&d, &maxt))
      return tsdb__corrupt("tombstones: truncated entry at offset %zu", at);
    if (tsdb_tombstones_add(t, ref, (tsdb_interval){mint, maxt})) return ORR_ENOMEM;
  }
  return 0;
}

int tsdb_tombstones_encode(const tsdb_tombstones *t, orr_buf *out) {
  size_t start = out->len;
  orr_buf_put_be32(out, TSDB__TOMBSTONE_MAGIC);
  orr_buf_putc(out, TSDB__TOMBSTONE_V1);
  for (size_t i = 0; i < t->n; i++)
    for (size_t j = 0; j < t->v[i].ivs.n; j++) {
      orr_buf_put_uvarint(out, t->v[i].ref);
      orr_buf_put_varint(out, t->v[i].ivs.v[j].mint);
      orr_buf_put_varint(out, t->v[i].ivs.v[j].maxt);
    }
  if (out->oom) return ORR_ENOMEM;
  uint32_t crc = orr_crc32c(0, out->data + start + 5, out->len - start - 5);
  orr_buf_put_be32(out, crc);
  return out->oom ? ORR_ENOMEM : 0;
}

/* Reads the whole of |path| into |b|; ORR_ENOTFOUND when missing. */
int tsdb__read_file(const char *path, orr_buf *b) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? ORR_ENOTFOUND : ORR_EIO;
  char tmp[65536];
  for (;;) {
    ssize_t k = read(fd, tmp, sizeof(tmp));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      close(fd);
      return ORR_EIO;
    }
    if (k == 0) break;
    if (orr_buf_append(b, tmp, (size_t)k)) {
      close(fd);
      return ORR_ENOMEM;
    }
  }
  close(fd);
  return 0;
}

/* Writes |n| bytes to <dir>/<name> via <name>.tmp, fsync, rename, fsync dir. */
int tsdb__write_file_atomic(const char *dir, const char *name, const void *p, size_t n) {
  char path[4096], tmp[4096];
  if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
      snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= (int)sizeof(tmp))
    return ORR_EINVAL;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return ORR_EIO;
  const char *c = p;
  size_t done = 0;
  while (done < n) {
    ssize_t k = write(fd, c + done, n - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    done += (size_t)k;
  }
  int rc = done == n && fsync(fd) == 0 ? 0 : ORR_EIO;
  if (close(fd) != 0) rc = ORR_EIO;
  if (rc == 0 && rename(tmp, path) != 0) rc = ORR_EIO;
  if (rc != 0) {
    unlink(tmp);
    return rc;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

int tsdb_tombstones_read_dir(const char *dir, tsdb_tombstones *t) {
  char path[4096];
  if (snprintf(path, sizeof(path), "%s/tombstones", dir) >= (int)sizeof(path)) return ORR_EINVAL;
  orr_buf b = {0};
  int rc = tsdb__read_file(path, &b);
  if (rc == ORR_ENOTFOUND) rc = 0;
  else if (rc == 0) rc = tsdb_tombstones_decode(b.data ? b.data : "", b.len, t);
  orr_buf_free(&b);
  return rc;
}

int tsdb_tombstones_write_dir(const char *dir, const tsdb_tombstones *t) {
  orr_buf b = {0};
  int rc = tsdb_tombstones_encode(t, &b);
  if (rc == 0) rc = tsdb__write_file_atomic(dir, "tombstones", b.data, b.len);
  orr_buf_free(&b);
  return rc;
}
