/* block_writer.c: writes a complete Prometheus block (chunks/, index,
 * meta.json, tombstones) from series given in label order, in a temporary
 * directory renamed into place only once everything is on disk.
 *
 * NOTES ON THE DESIGN
 * 1. States: OPEN (the directory <parent>/<ulid>.tmp-for-creation exists,
 *    chunks are streamed into chunks/ as series arrive) -> COMMITTED (renamed
 *    to <parent>/<ulid>) or ABORTED (temporary directory removed). Any error
 *    while OPEN latches: later adds fail and only abort/commit-fails remain.
 * 2. Series labels and chunk metas are kept (in the writer's arena) until
 *    commit, because the index needs every symbol before the first series.
 * 3. Rename is the commit point: before it, every file and chunks/ and the
 *    temporary directory are fsynced; after it the parent is fsynced. A crash
 *    leaves at worst a *.tmp-for-creation directory, which readers ignore
 *    (tsdb_block_list only takes ULID-named directories), as Prometheus does.
 * 4. Chunks are cut by tsdb_xor_encode_series with the chunk range of the
 *    options (default TSDB_BLOCK_CHUNK_RANGE = 2h: the head's chunk range is
 *    its min block duration), so a block holds the chunks Prometheus's head
 *    would have cut for the same samples. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb_int.h"

typedef struct wseries {
  labels_set lset;
  tsdb_index_chunk_meta *chks;
  size_t nchks;
} wseries;

struct tsdb_block_writer {
  char *parent;
  char tmpdir[4096], finaldir[4096];
  tsdb_ulid ulid;
  tsdb_block_writer_opts o;
  orr_arena *arena;
  tsdb_chunk_writer *cw;
  wseries *series;
  size_t nseries, cap;
  uint64_t nsamples, nchunks;
  int64_t min_t, max_t; /* over all samples (inclusive) */
  int err;
  char msg[512];
};

/* Invariants of an OPEN writer (note 1), checked in debug builds. */
static void assert_writer_state(const tsdb_block_writer *w) {
  assert(w->tmpdir[0] && w->finaldir[0]);
  assert(w->nseries <= w->cap);
  assert(w->err || w->cw != NULL);
  assert(w->nseries == 0 || w->min_t <= w->max_t);
  (void)w;
}

static int wfail(tsdb_block_writer *w, int rc, const char *fmt, ...) ORR_PRINTF(3, 4);
static int wfail(tsdb_block_writer *w, int rc, const char *fmt, ...) {
  if (w->err) return w->err;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
  va_end(ap);
  w->err = rc;
  return rc;
}

int tsdb__fsync_path(const char *path, bool dir) {
  int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return ORR_EIO;
  int rc = fsync(fd) == 0 ? 0 : ORR_EIO;
  close(fd);
  return rc;
}

int tsdb_block_writer_open(const char *parent, const tsdb_block_writer_opts *o,
                           tsdb_block_writer **out, char *err, size_t errlen) {
  *out = NULL;
  tsdb_block_writer *w = calloc(1, sizeof(*w));
  if (!w || !(w->arena = orr_arena_new(0)) || !(w->parent = strdup(parent))) {
    snprintf(err, errlen, "%s: out of memory", parent);
    if (w) orr_arena_destroy(w->arena);
    free(w);
    return ORR_ENOMEM;
  }
  if (o) w->o = *o;
  if (w->o.chunk_range <= 0) w->o.chunk_range = TSDB_BLOCK_CHUNK_RANGE;
  w->min_t = INT64_MAX;
  w->max_t = INT64_MIN;
  int rc = tsdb_ulid_new(orr_now_ms(), &w->ulid);
  char name[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&w->ulid, name);
  if (rc == 0 && (snprintf(w->finaldir, sizeof(w->finaldir), "%s/%s", parent, name) >=
                      (int)sizeof(w->finaldir) ||
                  snprintf(w->tmpdir, sizeof(w->tmpdir), "%s%s", w->finaldir,
                           TSDB_BLOCK_TMP_SUFFIX) >= (int)sizeof(w->tmpdir)))
    rc = ORR_EINVAL;
  if (rc) {
    snprintf(err, errlen, "%s: cannot make a block name: %s", parent, orr_strerror(rc));
    goto fail;
  }
  if (mkdir(w->tmpdir, 0777) != 0) {
    snprintf(err, errlen, "mkdir %s: %s", w->tmpdir, strerror(errno));
    rc = ORR_EIO;
    goto fail;
  }
  char cdir[4096 + 16];
  snprintf(cdir, sizeof(cdir), "%s/chunks", w->tmpdir);
  char msg[256] = "";
  rc = tsdb_chunk_writer_open(cdir, w->o.segment_size, &w->cw, msg, sizeof(msg));
  if (rc) {
    snprintf(err, errlen, "%s: %s", cdir, msg[0] ? msg : orr_strerror(rc));
    orr_remove_tree(w->tmpdir);
    goto fail;
  }
  *out = w;
  return 0;
fail:
  orr_arena_destroy(w->arena);
  free(w->parent);
  free(w);
  return rc;
}

/* Records the series (labels copied) with room for |n| chunk metas. */
static int push_series(tsdb_block_writer *w, const labels_set *lset, size_t n, wseries **out) {
  if (w->err) return w->err;
  assert_writer_state(w);
  if (lset->n == 0) return wfail(w, ORR_EINVAL, "series without labels");
  if (w->nseries > 0 && labels_cmp(&w->series[w->nseries - 1].lset, lset) >= 0)
    return wfail(w, ORR_EINVAL, "series not in label order (or repeated)");
  if (w->nseries == w->cap) {
    size_t ncap = w->cap ? w->cap * 2 : 256;
    wseries *nv = realloc(w->series, ncap * sizeof(*nv));
    if (!nv) return wfail(w, ORR_ENOMEM, "out of memory");
    w->series = nv;
    w->cap = ncap;
  }
  wseries *s = &w->series[w->nseries];
  memset(s, 0, sizeof(*s));
  if (labels_copy(w->arena, lset, &s->lset) ||
      !(s->chks = orr_arena_alloc(w->arena, (n + 1) * sizeof(*s->chks))))
    return wfail(w, ORR_ENOMEM, "out of memory");
  *out = s;
  return 0;
}

/* Writes |c| to chunks/ and records its meta in |s|. */
static int add_chunk(tsdb_block_writer *w, wseries *s, const tsdb_chunk *c) {
  uint64_t ref;
  int rc = tsdb_chunk_writer_add(w->cw, c, &ref);
  if (rc) return wfail(w, rc, "%s/chunks: writing a chunk: %s", w->tmpdir, orr_strerror(rc));
  s->chks[s->nchks++] = (tsdb_index_chunk_meta){c->mint, c->maxt, ref};
  w->nchunks++;
  if (c->mint < w->min_t) w->min_t = c->mint;
  if (c->maxt > w->max_t) w->max_t = c->maxt;
  return 0;
}

int tsdb_block_writer_add_samples(tsdb_block_writer *w, const labels_set *lset,
                                  const tsdb_sample *s, size_t n) {
  if (w->err) return w->err;
  if (n == 0) return 0;
  tsdb_chunk *chunks;
  size_t nchunks;
  int rc = tsdb_xor_encode_series(s, n, w->o.chunk_range, &chunks, &nchunks);
  if (rc) return wfail(w, rc, "encoding samples: %s", orr_strerror(rc));
  wseries *ws;
  rc = push_series(w, lset, nchunks, &ws);
  for (size_t i = 0; rc == 0 && i < nchunks; i++) rc = add_chunk(w, ws, &chunks[i]);
  tsdb_chunks_free(chunks, nchunks);
  if (rc) return rc;
  w->nsamples += n;
  w->nseries++;
  return 0;
}

/* Samples in a chunk, from its header (aggregate chunks: the count aggregate). */
uint64_t tsdb__chunk_samples(const tsdb_chunk *c) {
  uint16_t k = 0;
  if (c->enc == TSDB_ENC_XOR) {
    tsdb_xor_num_samples(c->data, c->len, &k);
  } else if (c->enc == TSDB_ENC_AGGR) {
    tsdb_aggr_sub sub;
    if (tsdb_aggr_get(c->data, c->len, TSDB_AGGR_COUNT, &sub) == 0 && sub.enc == TSDB_ENC_XOR)
      tsdb_xor_num_samples(sub.data, sub.len, &k);
  }
  return k;
}

int tsdb_block_writer_add_chunks(tsdb_block_writer *w, const labels_set *lset,
                                 const tsdb_chunk *c, size_t n) {
  if (w->err) return w->err;
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (c[i].mint > c[i].maxt || (i > 0 && c[i].mint <= c[i - 1].maxt))
      return wfail(w, ORR_EINVAL, "chunks not sorted or overlapping");
  wseries *ws;
  int rc = push_series(w, lset, n, &ws);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rc = add_chunk(w, ws, &c[i]);
    w->nsamples += tsdb__chunk_samples(&c[i]);
  }
  if (rc) return rc;
  w->nseries++;
  return 0;
}

static void writer_free(tsdb_block_writer *w) {
  orr_arena_destroy(w->arena);
  free(w->series);
  free(w->parent);
  free(w);
}

void tsdb_block_writer_abort(tsdb_block_writer *w) {
  if (!w) return;
  if (w->cw) tsdb_chunk_writer_close(w->cw, NULL, 0);
  orr_remove_tree(w->tmpdir);
  writer_free(w);
}

static int write_index(tsdb_block_writer *w) {
  char path[4096 + 16];
  snprintf(path, sizeof(path), "%s/index", w->tmpdir);
  labels_set *ls = malloc((w->nseries + 1) * sizeof(*ls));
  tsdb_index_chunk_meta **chks = malloc((w->nseries + 1) * sizeof(*chks));
  size_t *nchks = malloc((w->nseries + 1) * sizeof(*nchks));
  int rc = ORR_ENOMEM;
  if (ls && chks && nchks) {
    for (size_t i = 0; i < w->nseries; i++) {
      ls[i] = w->series[i].lset;
      chks[i] = w->series[i].chks;
      nchks[i] = w->series[i].nchks;
    }
    rc = tsdb_index_write_file(path, ls, chks, nchks, w->nseries);
  }
  free(ls);
  free(chks);
  free(nchks);
  if (rc)
    return wfail(w, rc, "%s: %s", path,
                 rc == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(rc));
  return 0;
}

int tsdb_block_writer_commit(tsdb_block_writer *w, tsdb_ulid *ulid, char *err, size_t errlen) {
  char msg[256] = "";
  assert_writer_state(w);
  int rc = tsdb_chunk_writer_close(w->cw, msg, sizeof(msg));
  w->cw = NULL;
  if (rc) wfail(w, rc, "%s/chunks: %s", w->tmpdir, msg[0] ? msg : orr_strerror(rc));
  if (!w->err && w->nseries == 0 && !w->o.fixed_range)
    wfail(w, ORR_EINVAL, "no series and no time range: nothing to write");
  if (!w->err) write_index(w);
  if (!w->err) {
    tsdb_meta m;
    memset(&m, 0, sizeof(m));
    m.ulid = w->ulid;
    if (w->o.fixed_range) {
      m.min_time = w->o.min_time;
      m.max_time = w->o.max_time;
    } else {
      m.min_time = w->min_t;
      m.max_time = w->max_t + 1;
    }
    m.num_samples = w->nsamples;
    m.num_series = w->nseries;
    m.num_chunks = w->nchunks;
    m.level = 1;
    m.sources = &w->ulid;
    m.nsources = 1;
    m.version = 1;
    if (w->o.thanos && w->o.thanos->has_thanos) {
      m.has_thanos = true;
      m.thanos = w->o.thanos->thanos;
    }
    tsdb_tombstones none = {0};
    if ((rc = tsdb_tombstones_write_dir(w->tmpdir, &none)) != 0)
      wfail(w, rc, "%s/tombstones: %s", w->tmpdir, orr_strerror(rc));
    else if ((rc = tsdb_meta_write_dir(w->tmpdir, &m)) != 0)
      wfail(w, rc, "%s/meta.json: %s", w->tmpdir, orr_strerror(rc));
  }
  if (!w->err) {
    char cdir[4096 + 16];
    snprintf(cdir, sizeof(cdir), "%s/chunks", w->tmpdir);
    if (tsdb__fsync_path(cdir, true) || tsdb__fsync_path(w->tmpdir, true))
      wfail(w, ORR_EIO, "fsync %s: %s", w->tmpdir, strerror(errno));
  }
  if (!w->err && rename(w->tmpdir, w->finaldir) != 0)
    wfail(w, ORR_EIO, "rename %s to %s: %s", w->tmpdir, w->finaldir, strerror(errno));
  if (!w->err && tsdb__fsync_path(w->parent, true))
    wfail(w, ORR_EIO, "fsync %s: %s", w->parent, strerror(errno));
  rc = w->err;
  if (rc) {
    snprintf(err, errlen, "%s", w->msg);
    orr_remove_tree(w->tmpdir);
  } else if (ulid) {
    *ulid = w->ulid;
  }
  writer_free(w);
  return rc;
}
