/* bucket.c: the compactor's view of the bucket — the catalogue of blocks
 * (meta.json and marks), Thanos's deletion and no-compact marks, deleting a
 * block (meta.json first), and downloading / uploading a block (meta.json
 * last). Listing, meta.json fetching, the marks' JSON and the upload itself
 * are lib/bucket's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "bucket.h"
#include "compact_int.h"


/* ---------------------------------------------------------------- sizes */

typedef struct sizer {
  objstore_bucket *b;
  uint64_t total;
} sizer;

static int add_size(const char *name, void *arg) {
  sizer *s = arg;
  objstore_attrs at;
  if (objstore_attributes(s->b, name, &at, NULL, 0) == 0) s->total += at.size;
  return 0;
}

/* ---------------------------------------------------------------- catalogue */

int compact_catalogue_load(objstore_bucket *b, bool sizes, compact_catalogue *c, char *err,
                           size_t errlen) {
  memset(c, 0, sizeof(*c));
  if (!(c->a = orr_arena_new(0))) return ORR_ENOMEM;
  tsdb_ulid *ids;
  size_t n;
  int rc = bucket_list_blocks(b, c->a, &ids, &n, err, errlen);
  if (rc) return rc;
  bucket_block_meta *metas = NULL;
  if (n > 0 && (rc = bucket_fetch_metas(b, ids, n, 8, c->a, &metas)) != 0) return rc;
  if (!(c->v = calloc(n + 1, sizeof(*c->v)))) return ORR_ENOMEM;
  c->cap = n + 1;
  for (size_t i = 0; i < n; i++) {
    compact_block *bl = &c->v[c->n++];
    tsdb_ulid_format(&ids[i], bl->id);
    bl->meta.ulid = ids[i];
    switch (metas[i].status) {
    case BUCKET_META_OK:
      bl->meta = metas[i].meta;
      bl->has_meta = true;
      break;
    case BUCKET_META_MISSING:
      break;
    case BUCKET_META_CORRUPT:
      /* Left alone, as Thanos does: neither compacted nor deleted. */
      orr_log_warn("ignoring block with unreadable meta.json", "id", bl->id, "err",
                   metas[i].err ? metas[i].err : "", NULL);
      bl->corrupt = true;
      break;
    default:
      snprintf(err, errlen, "%s", metas[i].err ? metas[i].err : "reading meta.json failed");
      return ORR_EIO;
    }
    bucket_deletion_mark dm;
    rc = bucket_deletion_mark_read(b, &ids[i], c->a, &dm, err, errlen);
    if (rc == 0) {
      bl->deletion_marked = true;
      bl->deletion_time_s = dm.deletion_time;
    } else if (rc == ORR_ECORRUPT) {
      /* A corrupt mark still says "delete me": Thanos deletes after the delay. */
      bl->deletion_marked = true;
      bl->deletion_time_s = 0;
    } else if (rc != ORR_ENOTFOUND) {
      return rc;
    }
    bucket_no_compact_mark nm;
    rc = bucket_no_compact_mark_read(b, &ids[i], c->a, &nm, err, errlen);
    if (rc == 0 || rc == ORR_ECORRUPT) bl->no_compact = true;
    else if (rc != ORR_ENOTFOUND) return rc;
    rc = 0;
    if (sizes) {
      sizer sz = {b, 0};
      char dir[64];
      snprintf(dir, sizeof(dir), "%s/", bl->id);
      objstore_iter(b, dir, OBJSTORE_ITER_RECURSIVE, add_size, &sz, NULL, 0);
      bl->size_bytes = sz.total;
    }
  }
  if (err && errlen) err[0] = 0;
  return 0;
}

void compact_catalogue_free(compact_catalogue *c) {
  free(c->v);
  orr_arena_destroy(c->a);
  memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------- marks */

int compact_mark(objstore_bucket *b, const char *id, const char *marker, const char *reason,
                 const char *details, int64_t now_s, char *err, size_t errlen) {
  tsdb_ulid u;
  if (tsdb_ulid_parse(id, strlen(id), &u) != 0) return ORR_EINVAL;
  if (strcmp(marker, COMPACT_DELETION_MARK) == 0) {
    bucket_deletion_mark m = {u, now_s, BUCKET_MARK_VERSION, details && *details ? details : NULL};
    return bucket_deletion_mark_write(b, &m, err, errlen);
  }
  bucket_no_compact_mark m = {u, BUCKET_MARK_VERSION, details && *details ? details : NULL, now_s,
                              reason ? reason : "manual"};
  return bucket_no_compact_mark_write(b, &m, err, errlen);
}

typedef struct keys {
  char **v;
  size_t n, cap;
  int rc;
} keys;

static int collect_key(const char *name, void *arg) {
  keys *k = arg;
  if (k->n == k->cap) {
    size_t nc = k->cap ? k->cap * 2 : 16;
    char **nv = realloc(k->v, nc * sizeof(*nv));
    if (!nv) return k->rc = ORR_ENOMEM;
    k->v = nv;
    k->cap = nc;
  }
  if (!(k->v[k->n] = strdup(name))) return k->rc = ORR_ENOMEM;
  k->n++;
  return 0;
}

static void keys_free(keys *k) {
  for (size_t i = 0; i < k->n; i++) free(k->v[i]);
  free(k->v);
}

static int list_block(objstore_bucket *b, const char *id, keys *k, char *err, size_t errlen) {
  char dir[64];
  snprintf(dir, sizeof(dir), "%s/", id);
  int rc = objstore_iter(b, dir, OBJSTORE_ITER_RECURSIVE, collect_key, k, err, errlen);
  return k->rc ? k->rc : rc;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

int compact_delete_block(objstore_bucket *b, const char *id, char *err, size_t errlen) {
  char key[128];
  snprintf(key, sizeof(key), "%s/meta.json", id);
  int rc = objstore_delete(b, key, err, errlen);
  if (rc && rc != ORR_ENOTFOUND) return rc;
  keys k = {0};
  rc = list_block(b, id, &k, err, errlen);
  char *mark = NULL;
  for (size_t i = 0; rc == 0 && i < k.n; i++) {
    if (ends_with(k.v[i], "/" COMPACT_DELETION_MARK)) {
      mark = k.v[i];
      continue;
    }
    rc = objstore_delete(b, k.v[i], err, errlen);
    if (rc == ORR_ENOTFOUND) rc = 0;
  }
  if (rc == 0 && mark) {
    rc = objstore_delete(b, mark, err, errlen);
    if (rc == ORR_ENOTFOUND) rc = 0;
  }
  keys_free(&k);
  return rc;
}

/* ---------------------------------------------------------------- download / upload */

static int write_fd(const char *data, size_t n, void *arg) {
  FILE *f = arg;
  return fwrite(data, 1, n, f) == n ? 0 : ORR_EIO;
}

static int mkdirs_for(char *path) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    int r = mkdir(path, 0777);
    *p = '/';
    if (r != 0 && errno != EEXIST) return ORR_EIO;
  }
  return 0;
}

int compact_download(objstore_bucket *b, const char *id, const char *dir, char *err,
                     size_t errlen) {
  keys k = {0};
  int rc = list_block(b, id, &k, err, errlen);
  bool has_meta = false;
  for (size_t i = 0; rc == 0 && i < k.n; i++) {
    const char *rel = k.v[i] + strlen(id) + 1;
    if (strcmp(rel, COMPACT_DELETION_MARK) == 0 || strcmp(rel, COMPACT_NO_COMPACT_MARK) == 0)
      continue;
    if (strcmp(rel, "meta.json") == 0) has_meta = true;
    size_t pl = strlen(dir) + strlen(k.v[i]) + 2;
    char *path = malloc(pl);
    if (!path) {
      rc = ORR_ENOMEM;
      break;
    }
    snprintf(path, pl, "%s/%s", dir, k.v[i]);
    FILE *f = NULL;
    if (mkdirs_for(path) != 0 || !(f = fopen(path, "wb"))) {
      snprintf(err, errlen, "create %s: %s", path, strerror(errno));
      rc = ORR_EIO;
    } else {
      rc = objstore_get_stream(b, k.v[i], 0, 0, write_fd, f, err, errlen);
      if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        if (rc == 0) snprintf(err, errlen, "write %s: %s", path, strerror(errno));
        if (rc == 0) rc = ORR_EIO;
      }
      fclose(f);
    }
    free(path);
  }
  if (rc == 0 && !has_meta) {
    snprintf(err, errlen, "block %s has no meta.json (deleted meanwhile?)", id);
    rc = ORR_ENOTFOUND;
  }
  keys_free(&k);
  return rc;
}

/* ORRERY_COMPACT_TEST_PUT_DELAY (test-only, a duration): sleep before each
 * object put, so a test can stop the bucket in the middle of an upload. */
static int64_t put_delay_ms = -1;
static uv_once_t put_delay_once = UV_ONCE_INIT;

static void put_delay_init(void) {
  const char *v = getenv("ORRERY_COMPACT_TEST_PUT_DELAY");
  int64_t ms = 0;
  if (v && *v && orr_parse_duration(v, strlen(v), &ms) != 0) {
    orr_log_warn("ignoring malformed test-only variable", "name", "ORRERY_COMPACT_TEST_PUT_DELAY",
                 "value", v, NULL);
    ms = 0;
  }
  put_delay_ms = ms;
}

static int slow_put(const char *key, void *arg, char *err, size_t errlen) {
  (void)key;
  (void)arg;
  (void)err;
  (void)errlen;
  uv_sleep((unsigned)put_delay_ms);
  return 0;
}

int compact_upload(objstore_bucket *b, const char *dir, char *err, size_t errlen) {
  uv_once(&put_delay_once, put_delay_init);
  bucket_upload_opts o = {put_delay_ms > 0 ? slow_put : NULL, NULL, NULL};
  return bucket_upload_block(b, dir, NULL, &o, NULL, err, errlen);
}
