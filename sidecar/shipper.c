/* shipper.c: uploads the finished blocks of a Prometheus TSDB directory to the
 * bucket from a worker thread, in ULID order, meta.json last, and records each
 * upload in <tsdb>/thanos.shipper.json (Thanos's shipper behaviour). */
#include "sidecar_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "bucket.h"
#include "tsdb.h"

/* DESIGN NOTES
 *
 * A block moves through these states, as seen from the bucket:
 *   LOCAL      in <tsdb>/<ULID>, not in the state file, no <ULID>/meta.json
 *              in the bucket (there may be chunks/index objects left by an
 *              interrupted upload: without meta.json they are not a block);
 *   STAGED     hard-linked into <tsdb>/thanos/upload/<ULID>/ (Prometheus may
 *              now delete its directory: the links keep the inodes);
 *   SHIPPED    <ULID>/meta.json is in the bucket (put last);
 *   RECORDED   the ULID is in the state file.
 *
 * Invariants:
 * 1. meta.json is put only after every chunk segment and the index were put
 *    successfully, so a reader never sees a partial block as whole. A failed
 *    chunk or index put deletes what this attempt put (best effort); a failed
 *    meta.json put deletes nothing (the object may still appear, as on S3
 *    after a 503), as Thanos.
 * 2. A block is uploaded only if <ULID>/meta.json is not in the bucket: a
 *    crash between SHIPPED and RECORDED makes the next sync record it without
 *    uploading again. Nothing is uploaded twice, nothing is lost: the state
 *    file is only an optimisation over that existence check.
 * 3. The state file is rewritten atomically (tmp, fsync, rename, fsync dir)
 *    after every block that became RECORDED, and lists only blocks still
 *    present locally (as Thanos rebuilds it).
 * 4. Blocks are considered in ULID order (Thanos sorts by minTime; for the
 *    level-1 blocks Prometheus cuts one after another both orders agree) and
 *    a sync stops at the first failed upload, so blocks are shipped in order;
 *    the failed one is retried by the next sync (the worker retries with
 *    backoff). Empty blocks (no samples) are never shipped, as Thanos.
 * 5. Only one sync runs at a time (sync_mu). The worker thread owns the
 *    timer; the daemon's loop never waits on the bucket.
 * 6. Uploads stream from the staged files (objstore_put_file); only meta.json
 *    is built in memory.
 * 7. Compacted blocks (level > 1, only with upload_compacted) are shipped
 *    only if they overlap no block of the bucket with the same external
 *    labels; otherwise the sync fails with the overlap named (Thanos checks
 *    the bucket's blocks among themselves too; we check the new block only).
 */

struct shipper {
  char *tsdb_path;
  char *source;
  objstore_bucket *bucket;
  bool upload_compacted;
  int64_t interval_ms;
  int (*before_put)(const char *key, void *arg);
  void *hook_arg;
  void (*on_sync)(int rc, const shipper_sync_stats *st, void *arg);
  void *sync_arg;
  /* test-only knobs from the environment */
  int64_t put_delay_ms;
  bool kill_after_meta;

  uv_mutex_t sync_mu; /* held for a whole sync */
  bool cleaned;       /* leftover staging dirs removed (under sync_mu) */

  uv_mutex_t mu; /* guards everything below */
  uv_cond_t cond;
  orr_arena *labels_arena;
  labels_set labels;
  bool started, stopping, trigger;
  uint64_t syncs_done;
  uv_thread_t thread;
};

/* ---------------------------------------------------------------- metrics */

static struct {
  orr_series *uploads, *upload_failures, *dir_syncs, *dir_sync_failures, *bytes;
  orr_series *compacted_done;
} M;
static uv_once_t metrics_once = UV_ONCE_INIT;
static uv_once_t compacted_once = UV_ONCE_INIT;

static orr_series *counter(const char *name, const char *help) {
  orr_metric *m = orr_counter_new(orr_registry_default(), name, help, NULL);
  return m ? orr_metric_series(m) : NULL;
}

static void metrics_init(void) {
  M.dir_syncs = counter("thanos_shipper_dir_syncs_total", "Total number of dir syncs");
  M.dir_sync_failures =
      counter("thanos_shipper_dir_sync_failures_total", "Total number of failed dir syncs");
  M.uploads = counter("thanos_shipper_uploads_total", "Total number of uploaded blocks");
  M.upload_failures =
      counter("thanos_shipper_upload_failures_total", "Total number of block upload failures");
  M.bytes = counter("orrery_shipper_uploaded_bytes_total",
                    "Total bytes of block objects the shipper put in the bucket");
}

static void compacted_init(void) {
  orr_metric *m = orr_gauge_new(
      orr_registry_default(), "thanos_shipper_upload_compacted_done",
      "If 1 it means shipper uploaded all compacted blocks from the filesystem.", NULL);
  M.compacted_done = m ? orr_metric_series(m) : NULL;
}

static void inc(orr_series *s, double v) {
  if (s) orr_counter_add(s, v);
}

#ifndef NDEBUG
static void assert_shipper_state(shipper *s) {
  /* Called with mu held. */
  if (s->stopping && !s->started) abort();
  if (!s->labels_arena) abort();
  if (s->labels.n && !s->labels.v) abort();
}
#else
#define assert_shipper_state(s) ((void)0)
#endif

/* ---------------------------------------------------------------- files */

/* mkdir -p for |path| (modified in place and restored). */
static int mkdir_p(char *path, mode_t mode) {
  for (char *p = path + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      int rc = mkdir(path, mode);
      *p = c;
      if (rc != 0 && errno != EEXIST) return ORR_EIO;
      if (c == '\0') return 0;
    }
  }
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ORR_EIO;
  int rc = fsync(fd) == 0 ? 0 : ORR_EIO;
  close(fd);
  return rc;
}

/* ---------------------------------------------------------------- state file */

/* Reads the ULIDs recorded in <tsdb>/thanos.shipper.json into |*out| (from
 * |a|). A missing file is empty; an unreadable or malformed one is logged and
 * read as empty (it is only an optimisation, see note 2). |*valid| is set
 * when the file was read as it is. */
static int state_read(const shipper *s, orr_arena *a, tsdb_ulid **out, size_t *n, bool *valid) {
  *out = NULL;
  *n = 0;
  *valid = false;
  char *path = orr_arena_sprintf(a, "%s/%s", s->tsdb_path, SHIPPER_STATE_FILE);
  if (!path) return ORR_ENOMEM;
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);
  if (!root) {
    if (access(path, F_OK) != 0 && errno == ENOENT) return 0;
    orr_log_warn("reading meta file failed, will override it", "file", path, "err",
                 jerr.text, NULL);
    return 0;
  }
  int rc = 0;
  json_t *ver = json_object_get(root, "version");
  json_t *up = json_object_get(root, "uploaded");
  if (!json_is_integer(ver) || json_integer_value(ver) != 1 ||
      (up && !json_is_array(up) && !json_is_null(up))) {
    orr_log_warn("reading meta file failed, will override it", "file", path, "err",
                 "unexpected version or shape", NULL);
    goto out;
  }
  size_t cnt = json_is_array(up) ? json_array_size(up) : 0;
  tsdb_ulid *v = cnt ? orr_arena_calloc(a, cnt, sizeof(*v)) : NULL;
  if (cnt && !v) {
    rc = ORR_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < cnt; i++) {
    json_t *e = json_array_get(up, i);
    const char *str = json_string_value(e);
    if (!str || tsdb_ulid_parse(str, strlen(str), &v[i]) != 0) {
      orr_log_warn("reading meta file failed, will override it", "file", path, "err",
                   "bad ULID in uploaded", NULL);
      goto out;
    }
  }
  *out = v;
  *n = cnt;
  *valid = true;
out:
  json_decref(root);
  return rc;
}

/* Writes the state file atomically with |ids| (Thanos's encoding: version,
 * then uploaded, tab-indented, trailing newline). */
static int state_write(const shipper *s, const tsdb_ulid *const *ids, size_t n, char *err,
                       size_t errlen) {
  orr_buf b = {0};
  char path[4096], tmp[4200];
  int rc = 0, fd = -1;
  snprintf(path, sizeof(path), "%s/%s", s->tsdb_path, SHIPPER_STATE_FILE);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  orr_buf_puts(&b, "{\n\t\"version\": 1,\n\t\"uploaded\": ");
  if (n == 0) orr_buf_puts(&b, "[]");
  for (size_t i = 0; i < n; i++) {
    char u[TSDB_ULID_STRLEN + 1];
    tsdb_ulid_format(ids[i], u);
    orr_buf_printf(&b, "%s\n\t\t\"%s\"", i ? "," : "[", u);
  }
  if (n) orr_buf_puts(&b, "\n\t]");
  orr_buf_puts(&b, "\n}\n");
  if (b.oom) {
    rc = ORR_ENOMEM;
    goto out;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) goto io;
  for (size_t off = 0; off < b.len;) {
    ssize_t w = write(fd, b.data + off, b.len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) goto io;
    off += (size_t)w;
  }
  if (fsync(fd) != 0) goto io;
  if (close(fd) != 0) {
    fd = -1;
    goto io;
  }
  fd = -1;
  if (rename(tmp, path) != 0) goto io;
  if (fsync_dir(s->tsdb_path) != 0) goto io;
  goto out;
io:
  snprintf(err, errlen, "write %s/%s: %s", s->tsdb_path, SHIPPER_STATE_FILE, strerror(errno));
  rc = ORR_EIO;
  if (fd >= 0) close(fd);
  unlink(tmp);
out:
  orr_buf_free(&b);
  return rc;
}

/* ---------------------------------------------------------------- upload */

/* Sleeps |ms| unless the shipper is stopping; returns ORR_ECANCELED then. */
static int pause_ms(shipper *s, int64_t ms) {
  uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
  int rc = 0;
  uv_mutex_lock(&s->mu);
  while (!s->stopping) {
    uint64_t now = uv_hrtime();
    if (now >= end) break;
    (void)uv_cond_timedwait(&s->cond, &s->mu, end - now);
  }
  if (s->stopping) rc = ORR_ECANCELED;
  uv_mutex_unlock(&s->mu);
  return rc;
}

static bool stopping(shipper *s) {
  uv_mutex_lock(&s->mu);
  bool r = s->stopping;
  uv_mutex_unlock(&s->mu);
  return r;
}

/* bucket_upload_block's hooks: the test-only slow put, the stop flag, the
 * fault hook, and the stats and metrics per object. */
typedef struct upload_ctx {
  shipper *s;
  shipper_sync_stats *st;
} upload_ctx;

static int before_put(const char *key, void *arg, char *err, size_t errlen) {
  upload_ctx *c = arg;
  shipper *s = c->s;
  int rc;
  if ((s->put_delay_ms > 0 && pause_ms(s, s->put_delay_ms) != 0) || stopping(s)) {
    snprintf(err, errlen, "upload %s: shipper stopping", key);
    return ORR_ECANCELED;
  }
  if (s->before_put && (rc = s->before_put(key, s->hook_arg)) < 0) {
    snprintf(err, errlen, "upload %s: fault injected: %s", key, orr_strerror(rc));
    return rc;
  }
  return 0;
}

static void on_put(const char *key, uint64_t bytes, void *arg) {
  (void)key;
  upload_ctx *c = arg;
  c->st->objects++;
  c->st->bytes += bytes;
  inc(M.bytes, (double)bytes);
}

/* Hard-links <src>/chunks/\*, index and meta.json into |dst| (Thanos's
 * staging). The chunk segment names go to |*names| (sorted, from |a|). */
static int stage_block(const char *src, const char *dst, orr_arena *a, const char ***names,
                       size_t *n, char *err, size_t errlen) {
  char *p = orr_arena_sprintf(a, "%s/chunks", dst);
  char *sc = orr_arena_sprintf(a, "%s/chunks", src);
  if (!p || !sc) return ORR_ENOMEM;
  if (mkdir_p(p, 0750) != 0) {
    snprintf(err, errlen, "create upload dir %s: %s", p, strerror(errno));
    return ORR_EIO;
  }
  const char **v = NULL;
  size_t nv = 0;
  int rc = tsdb_segment_names(sc, a, &v, &nv);
  if (rc) {
    snprintf(err, errlen, "read chunk dir %s: %s", sc, rc == ORR_EIO ? strerror(errno) : orr_strerror(rc));
    return rc;
  }
  for (size_t i = 0; i < nv + 2; i++) {
    const char *rel = i < nv ? orr_arena_sprintf(a, "chunks/%s", v[i])
                             : (i == nv ? "index" : "meta.json");
    char *from = rel ? orr_arena_sprintf(a, "%s/%s", src, rel) : NULL;
    char *to = rel ? orr_arena_sprintf(a, "%s/%s", dst, rel) : NULL;
    if (!from || !to) return ORR_ENOMEM;
    if (link(from, to) != 0) {
      snprintf(err, errlen, "hard link block file %s: %s", from, strerror(errno));
      return ORR_EIO;
    }
  }
  *names = v;
  *n = nv;
  return 0;
}

/* Uploads block |be| (directory name |id|) as note 1 says, from its staged
 * copy, with bucket_upload_block (which also removes what a failed chunk or
 * index put left). */
static int upload_block(shipper *s, const tsdb_block_entry *be, const char *id,
                        const labels_set *lset, orr_arena *a, shipper_sync_stats *st, char *err,
                        size_t errlen) {
  const char **segs = NULL;
  size_t nseg = 0;
  int rc;
  char *updir = orr_arena_sprintf(a, "%s/thanos/upload/%s", s->tsdb_path, id);
  if (!updir) return ORR_ENOMEM;
  orr_log_info("upload new block", "id", id, NULL);
  uint64_t t0 = orr_mono_ns();

  if (orr_remove_tree(updir) != 0) {
    snprintf(err, errlen, "clean upload directory %s: %s", updir, strerror(errno));
    return ORR_EIO;
  }
  if ((rc = stage_block(be->dir, updir, a, &segs, &nseg, err, errlen)) != 0) goto out;

  /* meta.json with the thanos section, from the staged copy. */
  tsdb_meta m;
  char merr[256] = "";
  if ((rc = tsdb_meta_read_dir(updir, a, &m, merr, sizeof(merr))) != 0) {
    snprintf(err, errlen, "read meta.json of %s: %s", id, merr[0] ? merr : orr_strerror(rc));
    goto out;
  }
  if (lset->n == 0) {
    snprintf(err, errlen, "empty external labels are not allowed for Thanos block.");
    rc = ORR_EINVAL;
    goto out;
  }
  if (!m.has_thanos) m.thanos.downsample_resolution = 0;
  m.has_thanos = true;
  m.thanos.labels = *lset;
  m.thanos.source = s->source;
  m.thanos.segment_files = segs;
  m.thanos.nsegment_files = nseg;

  upload_ctx ctx = {s, st};
  bucket_upload_opts o = {before_put, on_put, &ctx};
  bucket_upload_stats us;
  if ((rc = bucket_upload_block(s->bucket, updir, &m, &o, &us, err, errlen)) != 0) goto out;
  if (s->kill_after_meta) {
    orr_log_warn("ORRERY_SHIPPER_TEST_KILL_AFTER_META: killing the process after meta.json",
                 "id", id, NULL);
    raise(SIGKILL);
  }
  orr_log_info("uploaded block", "id", id, "objects", ORR_LOG_INT(us.objects), "bytes",
               ORR_LOG_INT(us.bytes), "duration_ms",
               ORR_LOG_INT((orr_mono_ns() - t0) / 1000000u), NULL);
out:
  if (orr_remove_tree(updir) != 0)
    orr_log_error("failed to clean upload directory", "dir", updir, "err", strerror(errno),
                  NULL);
  return rc;
}

/* ---------------------------------------------------------------- overlaps
 * With --shipper.upload-compacted, a compacted block is shipped only if it
 * overlaps no block of the bucket with the same external labels (as Thanos's
 * lazy overlap checker): the bucket's metas are read once per sync, when the
 * first compacted block needs them. */
typedef struct bucket_blocks {
  orr_arena *a;
  const labels_set *lset;
  tsdb_block_desc *v;
  size_t n, cap;
  bool synced;
  char *err;
  size_t errlen;
  objstore_bucket *bucket;
} bucket_blocks;

static int collect_block(const char *name, void *arg) {
  bucket_blocks *bb = arg;
  size_t nl = strlen(name);
  tsdb_ulid u;
  if (nl != TSDB_ULID_STRLEN + 1 || name[nl - 1] != '/' ||
      tsdb_ulid_parse(name, TSDB_ULID_STRLEN, &u) != 0)
    return 0;
  char key[TSDB_ULID_STRLEN + 16];
  snprintf(key, sizeof(key), "%.*smeta.json", (int)(nl), name);
  orr_buf body = {0};
  char merr[256];
  int rc = objstore_get(bb->bucket, key, 1u << 20, &body, merr, sizeof(merr));
  if (rc == ORR_ENOTFOUND) return 0; /* a partial upload, not a block */
  if (rc) {
    snprintf(bb->err, bb->errlen, "get all block meta: %s", merr);
    orr_buf_free(&body);
    return rc;
  }
  tsdb_meta m;
  rc = tsdb_meta_parse(body.data ? body.data : "", body.len, bb->a, &m, merr, sizeof(merr));
  orr_buf_free(&body);
  if (rc) {
    snprintf(bb->err, bb->errlen, "get all block meta: %s: %s", key, merr);
    return rc;
  }
  if (!labels_equal(&m.thanos.labels, bb->lset)) return 0;
  if (bb->n == bb->cap) {
    size_t ncap = bb->cap ? bb->cap * 2 : 64;
    tsdb_block_desc *nv = orr_arena_calloc(bb->a, ncap, sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    if (bb->n) memcpy(nv, bb->v, bb->n * sizeof(*nv));
    bb->v = nv;
    bb->cap = ncap;
  }
  bb->v[bb->n++] = (tsdb_block_desc){m.ulid, m.min_time, m.max_time};
  return 0;
}

/* 0 when |m| overlaps no bucket block of the same labels; ORR_EEXISTS with
 * the overlapping block in |err| otherwise, or the listing's error. */
static int check_overlap(bucket_blocks *bb, const tsdb_meta *m, char *err, size_t errlen) {
  if (!bb->synced) {
    char id[TSDB_ULID_STRLEN + 1];
    tsdb_ulid_format(&m->ulid, id);
    orr_log_info("gathering all existing blocks from the remote bucket for check", "id", id,
                 NULL);
    bb->err = err;
    bb->errlen = errlen;
    char lerr[512] = "";
    int rc = objstore_iter(bb->bucket, "", 0, collect_block, bb, lerr, sizeof(lerr));
    if (rc) {
      if (!err[0]) snprintf(err, errlen, "get all block meta: %s", lerr);
      return rc;
    }
    bb->synced = true;
  }
  for (size_t i = 0; i < bb->n; i++) {
    const tsdb_block_desc *o = &bb->v[i];
    if (tsdb_ulid_cmp(&o->ulid, &m->ulid) != 0 && o->min_time < m->max_time &&
        m->min_time < o->max_time) {
      char a[TSDB_ULID_STRLEN + 1], b[TSDB_ULID_STRLEN + 1];
      tsdb_ulid_format(&m->ulid, a);
      tsdb_ulid_format(&o->ulid, b);
      snprintf(err, errlen,
               "shipping compacted block %s is blocked; overlap spotted: [%lld, %lld) with %s "
               "[%lld, %lld)",
               a, (long long)m->min_time, (long long)m->max_time, b, (long long)o->min_time,
               (long long)o->max_time);
      return ORR_EEXISTS;
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- sync */

static int sync_locked(shipper *s, shipper_sync_stats *st, char *err, size_t errlen) {
  orr_arena *a = orr_arena_new(0);
  if (!a) return ORR_ENOMEM;
  int rc = 0;
  char lerr[512] = "";
  tsdb_ulid *old = NULL;
  size_t nold = 0;
  bool old_valid = false;
  tsdb_block_entry *blocks = NULL;
  size_t nblocks = 0;
  labels_set lset = {0};
  bucket_blocks bb = {a, &lset, NULL, 0, 0, false, NULL, 0, s->bucket};

  if (!s->cleaned) {
    /* Staging dirs left by a crash (their blocks may be gone since). */
    char *up = orr_arena_sprintf(a, "%s/thanos/upload", s->tsdb_path);
    if (up && orr_remove_tree(up) != 0)
      orr_log_warn("failed to clean upload directory", "dir", up, NULL);
    s->cleaned = true;
  }
  uv_mutex_lock(&s->mu);
  rc = labels_copy(a, &s->labels, &lset);
  uv_mutex_unlock(&s->mu);
  if (rc) goto out;
  if ((rc = state_read(s, a, &old, &nold, &old_valid)) != 0) goto out;
  if ((rc = tsdb_block_list(s->tsdb_path, a, &blocks, &nblocks, lerr, sizeof(lerr))) != 0) {
    snprintf(err, errlen, "read dir: %s", lerr[0] ? lerr : orr_strerror(rc));
    goto out;
  }
  const tsdb_ulid **rec = nblocks ? orr_arena_calloc(a, nblocks, sizeof(*rec)) : NULL;
  if (nblocks && !rec) {
    rc = ORR_ENOMEM;
    goto out;
  }
  size_t nrec = 0;
  st->min_time = INT64_MAX;
  for (size_t i = 0; i < nblocks; i++)
    if (blocks[i].meta_ok && blocks[i].meta.min_time < st->min_time)
      st->min_time = blocks[i].meta.min_time;
  if (st->min_time == INT64_MAX) st->min_time = 0;
  /* Pass 1: what the state file already records and still exists. */
  bool *done = nblocks ? orr_arena_calloc(a, nblocks, sizeof(*done)) : NULL;
  if (nblocks && !done) {
    rc = ORR_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nblocks; i++) {
    if (!blocks[i].meta_ok) continue;
    for (size_t j = 0; j < nold; j++)
      if (tsdb_ulid_cmp(&old[j], &blocks[i].meta.ulid) == 0) {
        done[i] = true;
        break;
      }
  }
  bool dirty = !old_valid;
  size_t nkept = 0;
  for (size_t i = 0; i < nblocks; i++) nkept += done[i];
  if (nkept != nold) dirty = true;

  /* Pass 2: in ULID order, record or upload each new block. */
  for (size_t i = 0; i < nblocks && rc == 0; i++) {
    tsdb_block_entry *be = &blocks[i];
    if (done[i] || !be->meta_ok) continue;
    char id[TSDB_ULID_STRLEN + 1];
    tsdb_ulid_format(&be->meta.ulid, id);
    if (be->meta.num_samples == 0) {
      orr_log_debug("ignoring empty block", "block", id, NULL);
      continue;
    }
    if (be->meta.level > 1 && !s->upload_compacted) continue;
    char key[TSDB_ULID_STRLEN + 16];
    snprintf(key, sizeof(key), "%s/meta.json", id);
    int exists = 0;
    if ((rc = objstore_exists(s->bucket, key, &exists, lerr, sizeof(lerr))) != 0) {
      snprintf(err, errlen, "check exists %s: %s", key, lerr);
      break;
    }
    if (!exists && be->meta.level > 1) {
      if ((rc = check_overlap(&bb, &be->meta, lerr, sizeof(lerr))) != 0) {
        snprintf(err, errlen,
                 "found overlap or error during sync, cannot upload compacted block: %s", lerr);
        orr_log_error("shipping failed", "block", id, "err", err, NULL);
        break;
      }
      /* What we ship now is a bucket block for the next compacted one. */
      if (bb.n == bb.cap) bb.synced = false;
      else bb.v[bb.n++] = (tsdb_block_desc){be->meta.ulid, be->meta.min_time, be->meta.max_time};
    }
    if (!exists) {
      if ((rc = upload_block(s, be, id, &lset, a, st, lerr, sizeof(lerr))) != 0) {
        snprintf(err, errlen, "upload %s: %s", id, lerr);
        if (rc == ORR_ECANCELED) { /* shutdown: the next start uploads it again */
          orr_log_info("upload interrupted by shutdown", "block", id, NULL);
          break;
        }
        orr_log_error("shipping failed", "block", id, "err", lerr, NULL);
        st->failed++;
        inc(M.upload_failures, 1);
        break;
      }
      st->uploaded++;
      inc(M.uploads, 1);
    } else {
      orr_log_info("block already in the bucket, recording it", "block", id, NULL);
      st->recorded++;
    }
    done[i] = true;
    /* Note 3: record at once, so a crash after this repeats nothing. */
    nrec = 0;
    for (size_t j = 0; j < nblocks; j++)
      if (done[j]) rec[nrec++] = &blocks[j].meta.ulid;
    int wrc = state_write(s, rec, nrec, lerr, sizeof(lerr));
    if (wrc) orr_log_warn("updating meta file failed", "err", lerr, NULL);
    dirty = wrc != 0;
  }
  if (dirty) {
    nrec = 0;
    for (size_t j = 0; j < nblocks; j++)
      if (done[j]) rec[nrec++] = &blocks[j].meta.ulid;
    int wrc = state_write(s, rec, nrec, lerr, sizeof(lerr));
    if (wrc) orr_log_warn("updating meta file failed", "err", lerr, NULL);
  }
out:
  inc(M.dir_syncs, 1);
  if (rc && rc != ORR_ECANCELED) {
    inc(M.dir_sync_failures, 1);
    if (err && errlen && !err[0]) snprintf(err, errlen, "sync: %s", orr_strerror(rc));
  } else if (s->upload_compacted && M.compacted_done) {
    orr_gauge_set(M.compacted_done, 1);
  }
  orr_arena_destroy(a);
  return rc;
}

int shipper_sync(shipper *s, shipper_sync_stats *st, char *err, size_t errlen) {
  shipper_sync_stats local;
  if (!st) st = &local;
  memset(st, 0, sizeof(*st));
  if (err && errlen) err[0] = '\0';
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof(dummy);
    err[0] = '\0';
  }
  uv_mutex_lock(&s->sync_mu);
  int rc = sync_locked(s, st, err, errlen);
  uv_mutex_unlock(&s->sync_mu);
  return rc;
}

/* ---------------------------------------------------------------- worker */

static void worker(void *arg) {
  shipper *s = arg;
  int64_t backoff_ms = 0;
  uv_mutex_lock(&s->mu);
  while (!s->stopping) {
    s->trigger = false;
    uv_mutex_unlock(&s->mu);
    char err[1024];
    shipper_sync_stats st;
    int rc = shipper_sync(s, &st, err, sizeof(err));
    if (rc != 0 && rc != ORR_ECANCELED) {
      backoff_ms = backoff_ms ? backoff_ms * 2 : 1000;
      if (backoff_ms > s->interval_ms) backoff_ms = s->interval_ms;
      orr_log_warn("shipper sync failed, retrying", "err", err, "retry_in_ms",
                   ORR_LOG_INT(backoff_ms), NULL);
    } else {
      backoff_ms = 0;
    }
    if (s->on_sync) s->on_sync(rc, &st, s->sync_arg);
    uv_mutex_lock(&s->mu);
    s->syncs_done++;
    uv_cond_broadcast(&s->cond);
    uint64_t wait_ns = (uint64_t)(backoff_ms ? backoff_ms : s->interval_ms) * 1000000u;
    uint64_t end = uv_hrtime() + wait_ns;
    while (!s->stopping && !s->trigger) {
      uint64_t now = uv_hrtime();
      if (now >= end) break;
      (void)uv_cond_timedwait(&s->cond, &s->mu, end - now);
    }
  }
  uv_mutex_unlock(&s->mu);
}

int shipper_start(shipper *s) {
  uv_mutex_lock(&s->mu);
  if (s->started) {
    uv_mutex_unlock(&s->mu);
    return ORR_EINVAL;
  }
  s->started = true;
  s->stopping = false;
  int rc = uv_thread_create(&s->thread, worker, s);
  if (rc) s->started = false;
  assert_shipper_state(s);
  uv_mutex_unlock(&s->mu);
  return rc ? ORR_EIO : 0;
}

void shipper_trigger(shipper *s) {
  uv_mutex_lock(&s->mu);
  s->trigger = true;
  uv_cond_broadcast(&s->cond);
  uv_mutex_unlock(&s->mu);
}

uint64_t shipper_wait_syncs(shipper *s, uint64_t n, int64_t timeout_ms) {
  uint64_t end = uv_hrtime() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
  uv_mutex_lock(&s->mu);
  while (s->syncs_done < n) {
    uint64_t now = uv_hrtime();
    if (now >= end) break;
    (void)uv_cond_timedwait(&s->cond, &s->mu, end - now);
  }
  uint64_t r = s->syncs_done;
  uv_mutex_unlock(&s->mu);
  return r;
}

void shipper_stop(shipper *s) {
  uv_mutex_lock(&s->mu);
  if (!s->started) {
    uv_mutex_unlock(&s->mu);
    return;
  }
  s->stopping = true;
  uv_cond_broadcast(&s->cond);
  uv_mutex_unlock(&s->mu);
  uv_thread_join(&s->thread);
  uv_mutex_lock(&s->mu);
  s->started = false;
  s->stopping = false;
  uv_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- setup */

int shipper_set_labels(shipper *s, const labels_set *labels) {
  orr_arena *a = orr_arena_new(4096);
  labels_set copy = {0};
  if (!a) return ORR_ENOMEM;
  if (labels && labels_copy(a, labels, &copy) != 0) {
    orr_arena_destroy(a);
    return ORR_ENOMEM;
  }
  uv_mutex_lock(&s->mu);
  orr_arena *old = s->labels_arena;
  s->labels_arena = a;
  s->labels = copy;
  uv_mutex_unlock(&s->mu);
  orr_arena_destroy(old);
  return 0;
}

static int64_t env_duration(const char *name) {
  const char *v = getenv(name);
  int64_t ms = 0;
  if (!v || !*v) return 0;
  if (orr_parse_duration(v, strlen(v), &ms) != 0) {
    orr_log_warn("ignoring malformed test-only variable", "name", name, "value", v, NULL);
    return 0;
  }
  return ms;
}

int shipper_new(const shipper_config *cfg, shipper **out, char *err, size_t errlen) {
  *out = NULL;
  if (!cfg->tsdb_path || !*cfg->tsdb_path || !cfg->bucket) {
    snprintf(err, errlen, "shipper: the TSDB path and a bucket are required");
    return ORR_EINVAL;
  }
  shipper *s = calloc(1, sizeof(*s));
  if (!s) return ORR_ENOMEM;
  s->tsdb_path = strdup(cfg->tsdb_path);
  s->source = strdup(cfg->source ? cfg->source : "sidecar");
  if (!s->tsdb_path || !s->source) goto oom;
  /* "dir/" and "dir" name the same directory; keys are built with "/". */
  size_t tl = strlen(s->tsdb_path);
  while (tl > 1 && s->tsdb_path[tl - 1] == '/') s->tsdb_path[--tl] = '\0';
  s->bucket = cfg->bucket;
  s->upload_compacted = cfg->upload_compacted;
  s->interval_ms = cfg->interval_ms > 0 ? cfg->interval_ms : SHIPPER_INTERVAL_MS;
  s->before_put = cfg->before_put;
  s->hook_arg = cfg->hook_arg;
  s->on_sync = cfg->on_sync;
  s->sync_arg = cfg->sync_arg;
  int64_t iv = env_duration("ORRERY_SHIPPER_TEST_INTERVAL");
  if (iv > 0) s->interval_ms = iv;
  s->put_delay_ms = env_duration("ORRERY_SHIPPER_TEST_PUT_DELAY");
  const char *k = getenv("ORRERY_SHIPPER_TEST_KILL_AFTER_META");
  s->kill_after_meta = k && strcmp(k, "1") == 0;
  if (uv_mutex_init(&s->sync_mu) != 0) goto oom_nomutex;
  if (uv_mutex_init(&s->mu) != 0) {
    uv_mutex_destroy(&s->sync_mu);
    goto oom_nomutex;
  }
  if (uv_cond_init(&s->cond) != 0) {
    uv_mutex_destroy(&s->mu);
    uv_mutex_destroy(&s->sync_mu);
    goto oom_nomutex;
  }
  if (!(s->labels_arena = orr_arena_new(4096))) {
    shipper_free(s);
    return ORR_ENOMEM;
  }
  if (cfg->labels && shipper_set_labels(s, cfg->labels) != 0) {
    shipper_free(s);
    return ORR_ENOMEM;
  }
  uv_once(&metrics_once, metrics_init);
  if (s->upload_compacted) uv_once(&compacted_once, compacted_init);
  *out = s;
  return 0;
oom_nomutex:
oom:
  free(s->tsdb_path);
  free(s->source);
  free(s);
  return ORR_ENOMEM;
}

void shipper_free(shipper *s) {
  if (!s) return;
  shipper_stop(s);
  uv_cond_destroy(&s->cond);
  uv_mutex_destroy(&s->mu);
  uv_mutex_destroy(&s->sync_mu);
  orr_arena_destroy(s->labels_arena);
  free(s->tsdb_path);
  free(s->source);
  free(s);
}
