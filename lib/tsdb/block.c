/* block.c: the block reader — a block directory (meta.json, index, chunks/,
 * tombstones) opened once and read by many: series selection by matchers and
 * time range with tombstones applied, sample iteration, label names and
 * values, and the listing of the blocks under a directory.
 *
 * NOTES ON THE DESIGN
 * 1. A tsdb_block is immutable after open: the index and chunk readers are
 *    immutable, meta and tombstones are decoded once into the block's own
 *    arena. Threads may share a block; each selection has its own memory.
 * 2. A selection walks postings in reference order, which is label order
 *    (the index writes series sorted). Each series' labels and chunk list
 *    live in the set's scratch arena, reset before the next series, so a dump
 *    of a large block uses memory for one series at a time.
 * 3. A chunk is dropped when it lies outside [mint, maxt] or inside one
 *    deleted interval (intervals are merged, so one interval must cover it);
 *    samples are filtered again when iterating, as Prometheus does. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tsdb_int.h"

struct tsdb_block {
  char *dir;
  orr_arena *arena; /* meta strings */
  tsdb_meta meta;
  tsdb_index_reader *index;
  tsdb_chunk_reader *chunks;
  tsdb_tombstones tomb;
};

const char *tsdb_block_dir(const tsdb_block *b) { return b->dir; }
const tsdb_meta *tsdb_block_meta(const tsdb_block *b) { return &b->meta; }
const tsdb_index_reader *tsdb_block_index(const tsdb_block *b) { return b->index; }
const tsdb_chunk_reader *tsdb_block_chunks(const tsdb_block *b) { return b->chunks; }
const tsdb_tombstones *tsdb_block_tombstones(const tsdb_block *b) { return &b->tomb; }

void tsdb_block_close(tsdb_block *b) {
  if (!b) return;
  tsdb_index_close(b->index);
  tsdb_chunk_reader_close(b->chunks);
  tsdb_tombstones_free(&b->tomb);
  orr_arena_destroy(b->arena);
  free(b->dir);
  free(b);
}

int tsdb_block_open(const char *dir, tsdb_block **out, char *err, size_t errlen) {
  char path[4096], msg[512];
  int rc;
  *out = NULL;
  tsdb_block *b = calloc(1, sizeof(*b));
  if (!b || !(b->dir = strdup(dir)) || !(b->arena = orr_arena_new(4096))) {
    snprintf(err, errlen, "%s: out of memory", dir);
    rc = ORR_ENOMEM;
    goto out;
  }
  msg[0] = '\0';
  rc = tsdb_meta_read_dir(dir, b->arena, &b->meta, msg, sizeof(msg));
  if (rc) {
    if (rc == ORR_ENOTFOUND)
      snprintf(err, errlen, "%s/meta.json: no such file", dir);
    else
      snprintf(err, errlen, "%s/meta.json: %s", dir, msg[0] ? msg : orr_strerror(rc));
    goto out;
  }
  snprintf(path, sizeof(path), "%s/index", dir);
  msg[0] = '\0';
  rc = tsdb_index_open(path, &b->index, msg, sizeof(msg));
  if (rc) {
    snprintf(err, errlen, "%s: %s", path, msg[0] ? msg : orr_strerror(rc));
    goto out;
  }
  snprintf(path, sizeof(path), "%s/chunks", dir);
  msg[0] = '\0';
  rc = tsdb_chunk_reader_open(path, &b->chunks, msg, sizeof(msg));
  if (rc) {
    snprintf(err, errlen, "%s: %s", path, msg[0] ? msg : orr_strerror(rc));
    goto out;
  }
  rc = tsdb_tombstones_read_dir(dir, &b->tomb);
  if (rc) {
    snprintf(err, errlen, "%s/tombstones: %s", dir,
             rc == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(rc));
    goto out;
  }
  *out = b;
  b = NULL;
out:
  tsdb_block_close(b);
  return rc;
}

/* ---------------------------------------------------------------- selection */

struct tsdb_series_set {
  const tsdb_block *b;
  tsdb_postings *p;
  int64_t mint, maxt;
  orr_arena *scratch;
  tsdb_series cur;
  int err;
  char msg[512];
};

static void series_set_fail(tsdb_series_set *ss, int rc, const char *fmt, ...) ORR_PRINTF(3, 4);
static void series_set_fail(tsdb_series_set *ss, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ss->msg, sizeof(ss->msg), fmt, ap);
  va_end(ap);
  ss->err = rc;
}

int tsdb_block_select(const tsdb_block *b, labels_matcher *const *ms, size_t n, int64_t mint,
                      int64_t maxt, orr_arena *a, tsdb_series_set **out) {
  *out = NULL;
  tsdb_series_set *ss = orr_arena_calloc(a, 1, sizeof(*ss));
  if (!ss) return ORR_ENOMEM;
  int rc = n ? tsdb_index_select(b->index, ms, n, a, &ss->p) : tsdb_index_all_postings(b->index, a, &ss->p);
  if (rc) return rc;
  if (!(ss->scratch = orr_arena_new(0))) return ORR_ENOMEM;
  ss->b = b;
  ss->mint = mint;
  ss->maxt = maxt;
  *out = ss;
  return 0;
}

void tsdb_series_set_close(tsdb_series_set *ss) {
  if (!ss) return;
  orr_arena_destroy(ss->scratch);
  ss->scratch = NULL;
}

const char *tsdb_series_set_error(const tsdb_series_set *ss) { return ss->msg; }

/* Is [mint, maxt] inside one of |ivs|' intervals? */
static bool fully_deleted(const tsdb_intervals *ivs, int64_t mint, int64_t maxt) {
  if (!ivs) return false;
  for (size_t i = 0; i < ivs->n; i++)
    if (ivs->v[i].mint <= mint && maxt <= ivs->v[i].maxt) return true;
  return false;
}

int tsdb_series_set_next(tsdb_series_set *ss, const tsdb_series **s) {
  if (ss->err) return ss->err;
  const tsdb_block *b = ss->b;
  while (tsdb_postings_next(ss->p)) {
    uint64_t ref = tsdb_postings_at(ss->p);
    orr_arena_reset(ss->scratch);
    tsdb_series *cur = &ss->cur;
    memset(cur, 0, sizeof(*cur));
    tsdb_index_chunk_meta *metas;
    size_t nmetas;
    int rc = tsdb_index_series(b->index, ref, ss->scratch, &cur->labels, &metas, &nmetas);
    if (rc) {
      series_set_fail(ss, rc, "%s/index: series %llu: %s", b->dir, (unsigned long long)ref,
                      rc == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(rc));
      return rc;
    }
    cur->ref = ref;
    cur->deleted = tsdb_tombstones_get(&b->tomb, ref);
    cur->mint = ss->mint;
    cur->maxt = ss->maxt;
    cur->chunks = orr_arena_alloc(ss->scratch, (nmetas + 1) * sizeof(*cur->chunks));
    if (!cur->chunks) {
      series_set_fail(ss, ORR_ENOMEM, "%s: out of memory", b->dir);
      return ORR_ENOMEM;
    }
    for (size_t i = 0; i < nmetas; i++) {
      const tsdb_index_chunk_meta *m = &metas[i];
      if (m->maxt < ss->mint || m->mint > ss->maxt) continue;
      if (fully_deleted(cur->deleted, m->mint, m->maxt)) continue;
      tsdb_chunk *c = &cur->chunks[cur->nchunks];
      char msg[256] = "";
      rc = tsdb_chunk_reader_get(b->chunks, m->ref, c, msg, sizeof(msg));
      if (rc) {
        orr_buf lb = {0};
        labels_format(&cur->labels, &lb);
        series_set_fail(ss, ORR_ECORRUPT, "%s/chunks: series %s: chunk ref %llu: %s", b->dir,
                        lb.data ? lb.data : "{}", (unsigned long long)m->ref, msg);
        orr_buf_free(&lb);
        return ORR_ECORRUPT;
      }
      c->mint = m->mint;
      c->maxt = m->maxt;
      cur->nchunks++;
    }
    if (cur->nchunks == 0) continue;
    *s = cur;
    return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------- samples */

void tsdb_series_iter_init(tsdb_series_iter *it, const tsdb_series *s) {
  memset(it, 0, sizeof(*it));
  it->s = s;
}

int tsdb_series_iter_next(tsdb_series_iter *it) {
  if (it->err) return it->err;
  const tsdb_series *s = it->s;
  while (it->ci < s->nchunks) {
    const tsdb_chunk *c = &s->chunks[it->ci];
    if (!it->open) {
      if (c->enc != TSDB_ENC_XOR) return it->err = ORR_EUNSUPPORTED;
      tsdb_xor_iter_init(&it->xi, c->data, c->len);
      it->open = true;
    }
    int rc = tsdb_xor_iter_next(&it->xi);
    if (rc < 0) return it->err = rc;
    if (rc == 0 || it->xi.t > s->maxt) {
      it->open = false;
      it->ci++;
      continue;
    }
    if (it->xi.t < s->mint) continue;
    if (s->deleted && tsdb_intervals_contains(s->deleted, it->xi.t)) continue;
    it->t = it->xi.t;
    it->v = it->xi.v;
    return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------- labels */

static int str_cmp(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Sorts |v| and drops duplicates; returns the new count. */
static size_t sort_unique(const char **v, size_t n) {
  if (n == 0 || !v) return 0;
  qsort(v, n, sizeof(*v), str_cmp);
  size_t k = 1;
  for (size_t i = 1; i < n; i++)
    if (strcmp(v[i], v[k - 1]) != 0) v[k++] = v[i];
  return k;
}

/* Collects label names (|name| NULL) or the values of |name| over the
 * series matching |ms|. */
static int collect(const tsdb_block *b, const char *name, labels_matcher *const *ms, size_t n,
                   orr_arena *a, const char ***out, size_t *nout) {
  tsdb_postings *p;
  int rc = tsdb_index_select(b->index, ms, n, a, &p);
  if (rc) return rc;
  orr_arena *tmp = orr_arena_new(0);
  if (!tmp) return ORR_ENOMEM;
  const char **v = NULL;
  size_t nv = 0, cap = 0;
  while (tsdb_postings_next(p)) {
    labels_set ls;
    tsdb_index_chunk_meta *chks;
    size_t nchks;
    orr_arena_reset(tmp);
    if ((rc = tsdb_index_series(b->index, tsdb_postings_at(p), tmp, &ls, &chks, &nchks)) != 0)
      goto out;
    for (size_t i = 0; i < ls.n; i++) {
      const char *s;
      if (name) {
        if (strcmp(ls.v[i].name, name) != 0) continue;
        s = ls.v[i].value;
      } else {
        s = ls.v[i].name;
      }
      /* Keep only new strings: a sorted-unique pass every so often bounds memory. */
      if (nv == cap) {
        nv = sort_unique(v, nv);
        if (nv * 2 >= cap) {
          size_t ncap = cap ? cap * 2 : 64;
          const char **nvp = orr_arena_alloc(a, ncap * sizeof(*nvp));
          if (!nvp) {
            rc = ORR_ENOMEM;
            goto out;
          }
          if (nv) memcpy(nvp, v, nv * sizeof(*v));
          v = nvp;
          cap = ncap;
        }
      }
      const char **hit = nv ? bsearch(&s, v, nv, sizeof(*v), str_cmp) : NULL;
      if (hit) continue;
      if (!(v[nv++] = orr_arena_strdup(a, s))) {
        rc = ORR_ENOMEM;
        goto out;
      }
    }
  }
  nv = sort_unique(v, nv);
  if (!v && !(v = orr_arena_alloc(a, sizeof(*v)))) {
    rc = ORR_ENOMEM;
    goto out;
  }
  *out = v;
  *nout = nv;
out:
  orr_arena_destroy(tmp);
  return rc;
}

int tsdb_block_label_names(const tsdb_block *b, labels_matcher *const *ms, size_t n,
                           orr_arena *a, const char ***names, size_t *nnames) {
  if (n == 0) return tsdb_index_label_names(b->index, a, names, nnames);
  return collect(b, NULL, ms, n, a, names, nnames);
}

int tsdb_block_label_values(const tsdb_block *b, const char *name, labels_matcher *const *ms,
                            size_t n, orr_arena *a, const char ***values, size_t *nvalues) {
  if (n == 0) return tsdb_index_label_values(b->index, name, a, values, nvalues);
  return collect(b, name, ms, n, a, values, nvalues);
}

/* ---------------------------------------------------------------- listing */

static uint64_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
}

static uint64_t block_size(const char *dir) {
  char path[4096];
  uint64_t total = 0;
  static const char *const files[] = {"meta.json", "index", "tombstones"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
    total += file_size(path);
  }
  snprintf(path, sizeof(path), "%s/chunks", dir);
  DIR *d = opendir(path);
  if (!d) return total;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char p2[4096 + 256];
    snprintf(p2, sizeof(p2), "%s/%s", path, e->d_name);
    total += file_size(p2);
  }
  closedir(d);
  return total;
}

static int entry_cmp(const void *x, const void *y) {
  const tsdb_block_entry *a = x, *b = y;
  return strcmp(a->dir, b->dir);
}

int tsdb_block_list(const char *parent, orr_arena *a, tsdb_block_entry **out, size_t *n,
                    char *err, size_t errlen) {
  DIR *d = opendir(parent);
  if (!d) {
    snprintf(err, errlen, "%s: %s", parent, strerror(errno));
    return errno == ENOENT || errno == ENOTDIR ? ORR_ENOTFOUND : ORR_EIO;
  }
  tsdb_block_entry *v = NULL;
  size_t nv = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    tsdb_ulid u;
    if (strlen(e->d_name) != TSDB_ULID_STRLEN || tsdb_ulid_parse(e->d_name, TSDB_ULID_STRLEN, &u))
      continue;
    char *dir = orr_arena_sprintf(a, "%s/%s", parent, e->d_name);
    if (!dir) {
      rc = ORR_ENOMEM;
      goto out;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (nv == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      tsdb_block_entry *nvp = orr_arena_calloc(a, ncap, sizeof(*nvp));
      if (!nvp) {
        rc = ORR_ENOMEM;
        goto out;
      }
      if (nv) memcpy(nvp, v, nv * sizeof(*v));
      v = nvp;
      cap = ncap;
    }
    tsdb_block_entry *be = &v[nv++];
    memset(be, 0, sizeof(*be));
    be->dir = dir;
    char msg[512] = "";
    int mrc = tsdb_meta_read_dir(dir, a, &be->meta, msg, sizeof(msg));
    if (mrc == ORR_ENOMEM) {
      rc = mrc;
      goto out;
    }
    be->meta_ok = mrc == 0;
    if (mrc)
      be->err = orr_arena_sprintf(a, "%s/meta.json: %s", dir,
                                  mrc == ORR_ENOTFOUND ? "no such file"
                                                       : (msg[0] ? msg : orr_strerror(mrc)));
    be->size_bytes = block_size(dir);
  }
  if (nv > 1) qsort(v, nv, sizeof(*v), entry_cmp);
  *out = v;
  *n = nv;
out:
  closedir(d);
  return rc;
}
