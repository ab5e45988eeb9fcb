/* upload.c: putting one local block directory into the bucket — chunk
 * segments, then the index, then meta.json last — for the sidecar's shipper
 * and the compactor alike.
 *
 * Invariants:
 * 1. meta.json is put only after every chunk segment and the index were put,
 *    so a reader (who treats a directory without meta.json as no block)
 *    never sees a partial block.
 * 2. A failed chunk or index put deletes what this attempt put, best effort,
 *    stopping at the first failed delete (the bucket is then likely down and
 *    every delete would wait out objstore's retries). What stays is harmless
 *    without meta.json and overwritten by the next attempt.
 * 3. A failed meta.json put deletes nothing: the object may still appear (as
 *    on S3 after a 503), and a block whose objects were deleted under its
 *    meta.json would be a corrupt block; Thanos does the same.
 * 4. A before_put hook returning ORR_ECANCELED (a shutdown) skips the
 *    clean-up: the next start uploads the block again. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bucket.h"

static int64_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

typedef struct upload {
  objstore_bucket *b;
  const bucket_upload_opts *o;
  bucket_upload_stats *st;
  const char **put; /* keys put by this attempt, for clean-up */
  size_t nput;
  char *err;
  size_t errlen;
} upload;

/* Puts one object, from |path| or from |data|/|len|. */
static int put_object(upload *u, const char *key, const char *path, const void *data, size_t len,
                      uint64_t size) {
  int rc;
  u->err[0] = '\0';
  if (u->o && u->o->before_put && (rc = u->o->before_put(key, u->o->arg, u->err, u->errlen)) < 0) {
    if (!u->err[0]) snprintf(u->err, u->errlen, "upload %s: %s", key, orr_strerror(rc));
    return rc;
  }
  uint64_t t0 = orr_mono_ns();
  rc = path ? objstore_put_file(u->b, key, path, u->err, u->errlen)
            : objstore_put(u->b, key, data, len, u->err, u->errlen);
  if (rc != 0) return rc;
  u->put[u->nput++] = key;
  u->st->objects++;
  u->st->bytes += size;
  if (u->o && u->o->on_put) u->o->on_put(key, size, u->o->arg);
  orr_log_debug("uploaded object", "key", key, "bytes", ORR_LOG_INT(size), "duration_ms",
                ORR_LOG_INT((orr_mono_ns() - t0) / 1000000u), NULL);
  return 0;
}

static void delete_orphans(upload *u) {
  char derr[256] = "";
  for (size_t i = 0; i < u->nput; i++) {
    int rc = objstore_delete(u->b, u->put[i], derr, sizeof(derr));
    if (rc != 0 && rc != ORR_ENOTFOUND) {
      orr_log_warn("clean-up of a failed upload stopped", "key", u->put[i], "err", derr, NULL);
      return;
    }
  }
}

int bucket_upload_block(objstore_bucket *b, const char *dir, const tsdb_meta *meta,
                        const bucket_upload_opts *o, bucket_upload_stats *st, char *err,
                        size_t errlen) {
  bucket_upload_stats local;
  if (!st) st = &local;
  memset(st, 0, sizeof(*st));
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  err[0] = '\0';
  orr_arena *a = orr_arena_new(0);
  orr_buf js = {0};
  if (!a) return ORR_ENOMEM;
  upload u = {b, o, st, NULL, 0, err, errlen};
  int rc = 0;
  tsdb_meta m;
  if (meta) {
    m = *meta;
  } else {
    char merr[256] = "";
    if ((rc = tsdb_meta_read_dir(dir, a, &m, merr, sizeof(merr))) != 0) {
      snprintf(err, errlen, "%s/meta.json: %s", dir, merr[0] ? merr : orr_strerror(rc));
      goto out;
    }
  }
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&m.ulid, id);
  size_t nseg = m.thanos.nsegment_files;
  m.has_thanos = true;
  m.thanos.nfiles = nseg + 2;
  m.thanos.files = orr_arena_calloc(a, nseg + 2, sizeof(*m.thanos.files));
  const char **keys = orr_arena_calloc(a, nseg + 2, sizeof(*keys));
  const char **paths = orr_arena_calloc(a, nseg + 1, sizeof(*paths));
  u.put = orr_arena_calloc(a, nseg + 2, sizeof(*u.put));
  if (!m.thanos.files || !keys || !paths || !u.put) {
    rc = ORR_ENOMEM;
    goto out;
  }
  /* Thanos's file list: chunks/NNNNNN and index with sizes, meta.json
   * without, sorted by path (which this order already is). */
  for (size_t i = 0; i <= nseg + 1; i++) {
    const char *rel = i < nseg ? orr_arena_sprintf(a, "chunks/%s", m.thanos.segment_files[i])
                               : (i == nseg ? "index" : BUCKET_META_FILE);
    keys[i] = rel ? orr_arena_sprintf(a, "%s/%s", id, rel) : NULL;
    if (!rel || !keys[i]) {
      rc = ORR_ENOMEM;
      goto out;
    }
    m.thanos.files[i].rel_path = rel;
    if (i <= nseg) {
      if (!(paths[i] = orr_arena_sprintf(a, "%s/%s", dir, rel))) {
        rc = ORR_ENOMEM;
        goto out;
      }
      int64_t sz = file_size(paths[i]);
      if (sz < 0) {
        snprintf(err, errlen, "stat %s: %s", paths[i], strerror(errno));
        rc = ORR_EIO;
        goto out;
      }
      m.thanos.files[i].size_bytes = sz;
    }
  }
  if ((rc = tsdb_meta_encode(&m, &js)) != 0 || js.oom) {
    rc = rc ? rc : ORR_ENOMEM;
    goto out;
  }
  /* Note 1: chunks, then index, then meta.json last. */
  for (size_t i = 0; i <= nseg; i++) {
    if ((rc = put_object(&u, keys[i], paths[i], NULL, 0,
                         (uint64_t)m.thanos.files[i].size_bytes)) != 0) {
      if (rc != ORR_ECANCELED) delete_orphans(&u); /* notes 2 and 4 */
      goto out;
    }
  }
  rc = put_object(&u, keys[nseg + 1], NULL, js.data, js.len, js.len); /* note 3 */
out:
  orr_buf_free(&js);
  orr_arena_destroy(a);
  return rc;
}
