/* compact.c: merges N blocks into one, streaming series in label order
 * across the inputs, as Prometheus 2.42's LeveledCompactor (populateBlock
 * with the compacting chunk series merger) does.
 *
 * NOTES ON THE DESIGN
 * 1. Streaming. The index writer needs every symbol before the first
 *    series: the symbols are the k-way merge of the inputs' (sorted) symbol
 *    tables, as Prometheus adds them, so nothing is scanned twice. Series are
 *    then taken from each input's all-postings list (ref order = label
 *    order) and merged by labels; one merged series at a time is in memory
 *    (its labels in the inputs' per-series scratch arenas, re-encoded chunk
 *    bytes malloc'ed and freed once written). Chunks go straight to the
 *    segment writer, the series straight to the index writer.
 * 2. Chunks of a series per input follow Prometheus's blockChunkSeriesSet:
 *    a chunk wholly inside a tombstone interval is dropped, one that a
 *    tombstone touches is re-encoded from its surviving samples, others are
 *    passed as they are. A series left without chunks is skipped.
 * 3. Merging across inputs is Prometheus's compactChunkIterator: chunks in
 *    (minTime, maxTime) order; a chunk overlapping no later one is emitted
 *    as is; identical chunks (same range and bytes) are kept once; a run of
 *    overlapping chunks is decoded, merged (|merge|) and re-encoded in XOR
 *    chunks of TSDB_SAMPLES_PER_CHUNK samples, the first emitted and the
 *    rest pushed back as one more source (it may overlap further chunks).
 *    Ties between equal (minTime, maxTime) go to the source listed first.
 * 4. Output lifecycle as the block writer: <parent>/<ulid>.tmp-for-creation,
 *    every file and directory fsynced, renamed into place, parent fsynced.
 *    A crash leaves at most the temporary directory.
 * 5. opts.merge_whole_series: the merge sees each input's whole series, not
 *    runs of overlapping chunks. A merge with state along the series (the
 *    penalty dedup's current replica and penalty) is not correct on pieces:
 *    a merged remainder and the next chunk of the same replica would count
 *    as two replicas, and the penalty skips the first samples of the later
 *    one (found by tests/integration/compact/ha_dedup.py: 2 samples lost at
 *    every such boundary).
 * 6. Downsampled blocks (aggregate chunks) that overlap — HA replicas'
 *    5m/1h blocks once a replica label is set — are merged whole series
 *    too, one aggregate at a time: for each window timestamp one lane's
 *    value is kept (the merge function picks it: the first listed for the
 *    1:1 merge, the penalty algorithm's replica for penalty, without
 *    counter adjustment, as Thanos's compactor dedups aggregates), so an
 *    overlapping window is never counted twice. Aggregates of windows
 *    that disagree between replicas may then come from different
 *    replicas, each a real value of its window. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tsdb_int.h"

/* ---------------------------------------------------------------- merge functions */

int tsdb_merge_chain(void *arg, const tsdb_sample *const *in, const size_t *nin, size_t n,
                     tsdb_sample **out, size_t *nout) {
  (void)arg;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += nin[i];
  tsdb_sample *o = malloc((total + 1) * sizeof(*o));
  size_t *pos = calloc(n + 1, sizeof(*pos));
  if (!o || !pos) {
    free(o);
    free(pos);
    return ORR_ENOMEM;
  }
  size_t k = 0;
  for (;;) {
    size_t best = n;
    for (size_t i = 0; i < n; i++)
      if (pos[i] < nin[i] && (best == n || in[i][pos[i]].t < in[best][pos[best]].t)) best = i;
    if (best == n) break;
    tsdb_sample s = in[best][pos[best]++];
    if (k > 0 && o[k - 1].t >= s.t) continue; /* same timestamp: the first wins */
    o[k++] = s;
  }
  free(pos);
  *out = o;
  *nout = k;
  return 0;
}

/* ---------------------------------------------------------------- state */

typedef struct input {
  tsdb_block *b;
  orr_arena *pa;  /* postings iterator */
  orr_arena *sa;  /* the current series (reset per series) */
  tsdb_postings *p;
  bool has;       /* positioned on a series */
  uint64_t ref;
  labels_set ls;
  tsdb_index_chunk_meta *chks;
  size_t nchks;
} input;

/* A list of chunks of one series, consumed front to back (note 3). */
typedef struct clist {
  tsdb_chunk *v;
  bool *owned; /* v[i].data malloc'ed by us */
  size_t n, i, cap;
} clist;

typedef struct compactor {
  const tsdb_compact_opts *o;
  input *in;
  size_t nin;
  clist *lists;
  size_t nlists, caplists;
  tsdb_chunk *outc; /* chunks of the series being written */
  bool *outowned;
  size_t noutc, capoutc;
  tsdb_index_chunk_meta *metas;
  size_t capmetas;
  tsdb_chunk_writer *cw;
  tsdb_index_writer *iw;
  tsdb_compact_result *res;
  uint64_t read_bytes; /* input chunk bytes since the last release */
  char *err;
  size_t errlen;
} compactor;

static int cfail(compactor *c, int rc, const char *fmt, ...) ORR_PRINTF(3, 4);
static int cfail(compactor *c, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, c->errlen, fmt, ap);
  va_end(ap);
  return rc;
}

static int clist_push(clist *l, tsdb_chunk ch, bool owned) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 8;
    tsdb_chunk *nv = realloc(l->v, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    l->v = nv;
    bool *no = realloc(l->owned, nc * sizeof(*no));
    if (!no) return ORR_ENOMEM;
    l->owned = no;
    l->cap = nc;
  }
  l->v[l->n] = ch;
  l->owned[l->n] = owned;
  l->n++;
  return 0;
}

/* Frees the chunks of |l| not yet handed on, and empties it. */
static void clist_clear(clist *l) {
  for (size_t i = l->i; i < l->n; i++)
    if (l->owned[i]) free(l->v[i].data);
  l->n = l->i = 0;
}

static void clists_free(compactor *c) {
  for (size_t i = 0; i < c->caplists; i++) {
    clist_clear(&c->lists[i]);
    free(c->lists[i].v);
    free(c->lists[i].owned);
  }
  free(c->lists);
}

static clist *new_list(compactor *c) {
  if (c->nlists == c->caplists) {
    size_t nc = c->caplists ? c->caplists * 2 : 8;
    clist *nv = realloc(c->lists, nc * sizeof(*nv));
    if (!nv) return NULL;
    memset(nv + c->caplists, 0, (nc - c->caplists) * sizeof(*nv));
    c->lists = nv;
    c->caplists = nc;
  }
  clist *l = &c->lists[c->nlists++];
  l->n = l->i = 0;
  return l;
}

static int out_push(compactor *c, tsdb_chunk ch, bool owned) {
  if (c->noutc == c->capoutc) {
    size_t nc = c->capoutc ? c->capoutc * 2 : 16;
    tsdb_chunk *nv = realloc(c->outc, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    c->outc = nv;
    bool *no = realloc(c->outowned, nc * sizeof(*no));
    if (!no) return ORR_ENOMEM;
    c->outowned = no;
    c->capoutc = nc;
  }
  c->outc[c->noutc] = ch;
  c->outowned[c->noutc] = owned;
  c->noutc++;
  return 0;
}

static void out_clear(compactor *c) {
  for (size_t i = 0; i < c->noutc; i++)
    if (c->outowned[i]) free(c->outc[i].data);
  c->noutc = 0;
}

/* ---------------------------------------------------------------- chunks */

/* Decodes an XOR chunk into a malloc'ed array. */
static int decode_chunk(const tsdb_chunk *ch, tsdb_sample **out, size_t *n) {
  if (ch->enc != TSDB_ENC_XOR) return ORR_EUNSUPPORTED;
  uint16_t cnt;
  int rc = tsdb_xor_num_samples(ch->data, ch->len, &cnt);
  if (rc) return rc;
  tsdb_sample *s = malloc(((size_t)cnt + 1) * sizeof(*s));
  if (!s) return ORR_ENOMEM;
  rc = tsdb_xor_decode(ch->data, ch->len, s, (size_t)cnt + 1);
  if (rc < 0) {
    free(s);
    return rc;
  }
  *out = s;
  *n = (size_t)rc;
  return 0;
}

/* Encodes |n| > 0 samples into one owned XOR chunk. */
static int encode_chunk(const tsdb_sample *s, size_t n, tsdb_chunk *out) {
  tsdb_xor_appender a;
  int rc = tsdb_xor_appender_init(&a);
  for (size_t i = 0; rc == 0 && i < n; i++) rc = tsdb_xor_append(&a, s[i].t, s[i].v);
  if (rc == 0) {
    size_t len;
    const uint8_t *p = tsdb_xor_bytes(&a, &len);
    uint8_t *d = malloc(len ? len : 1);
    if (!d) {
      rc = ORR_ENOMEM;
    } else {
      memcpy(d, p, len);
      *out = (tsdb_chunk){s[0].t, s[n - 1].t, TSDB_ENC_XOR, d, len};
    }
  }
  tsdb_xor_appender_free(&a);
  return rc;
}

static bool iv_overlaps(const tsdb_intervals *ivs, int64_t mint, int64_t maxt) {
  for (size_t i = 0; ivs && i < ivs->n; i++)
    if (ivs->v[i].mint <= maxt && mint <= ivs->v[i].maxt) return true;
  return false;
}

static bool iv_covers(const tsdb_intervals *ivs, int64_t mint, int64_t maxt) {
  for (size_t i = 0; ivs && i < ivs->n; i++)
    if (ivs->v[i].mint <= mint && maxt <= ivs->v[i].maxt) return true;
  return false;
}

/* Builds the chunk list of input |in|'s current series (note 2). */
static int input_chunks(compactor *c, input *in, clist *l) {
  const tsdb_intervals *ivs = tsdb_tombstones_get(tsdb_block_tombstones(in->b), in->ref);
  if (ivs && ivs->n == 0) ivs = NULL;
  char msg[256];
  for (size_t i = 0; i < in->nchks; i++) {
    const tsdb_index_chunk_meta *m = &in->chks[i];
    if (iv_covers(ivs, m->mint, m->maxt)) continue;
    tsdb_chunk ch;
    int rc = tsdb_chunk_reader_get(tsdb_block_chunks(in->b), m->ref, &ch, msg, sizeof(msg));
    if (rc) return cfail(c, rc, "%s: %s", tsdb_block_dir(in->b), msg);
    ch.mint = m->mint;
    ch.maxt = m->maxt;
    c->read_bytes += ch.len;
    if (!iv_overlaps(ivs, m->mint, m->maxt)) {
      if ((rc = clist_push(l, ch, false)) != 0) return cfail(c, rc, "out of memory");
      continue;
    }
    tsdb_sample *s;
    size_t n;
    if ((rc = decode_chunk(&ch, &s, &n)) != 0)
      return cfail(c, rc, "%s: series %llu: deleting from a chunk: %s", tsdb_block_dir(in->b),
                   (unsigned long long)in->ref, orr_strerror(rc));
    size_t k = 0;
    for (size_t j = 0; j < n; j++)
      if (!tsdb_intervals_contains(ivs, s[j].t)) s[k++] = s[j];
    tsdb_chunk nc;
    rc = k ? encode_chunk(s, k, &nc) : 0;
    free(s);
    if (rc) return cfail(c, rc, "re-encoding a chunk: %s", orr_strerror(rc));
    if (k && (rc = clist_push(l, nc, true)) != 0) {
      free(nc.data);
      return cfail(c, rc, "out of memory");
    }
    if (k) c->res->chunks_reencoded++;
  }
  return 0;
}

/* The list whose current chunk comes first by (minTime, maxTime); the
 * earlier list on ties. NULL when every list is drained. */
static clist *min_list(compactor *c) {
  clist *best = NULL;
  for (size_t i = 0; i < c->nlists; i++) {
    clist *l = &c->lists[i];
    if (l->i >= l->n) continue;
    const tsdb_chunk *a = &l->v[l->i];
    if (!best) {
      best = l;
      continue;
    }
    const tsdb_chunk *b = &best->v[best->i];
    if (a->mint < b->mint || (a->mint == b->mint && a->maxt < b->maxt)) best = l;
  }
  return best;
}

/* Takes the current chunk of |l| (ownership moves to the caller when
 * |*owned|). */
static tsdb_chunk take(clist *l, bool *owned) {
  *owned = l->owned[l->i];
  l->owned[l->i] = false;
  return l->v[l->i++];
}

/* Merges the overlapping run |run| (|nrun| chunks, ownership in |rown|)
 * into chunks of TSDB_SAMPLES_PER_CHUNK samples: the first to the output,
 * the rest as a new list. Frees the run. */
static int merge_run(compactor *c, tsdb_chunk *run, bool *rown, size_t nrun) {
  tsdb_sample **in = calloc(nrun, sizeof(*in));
  size_t *nin = calloc(nrun, sizeof(*nin));
  tsdb_sample *merged = NULL;
  size_t nmerged = 0;
  int rc = in && nin ? 0 : ORR_ENOMEM;
  for (size_t i = 0; rc == 0 && i < nrun; i++) rc = decode_chunk(&run[i], &in[i], &nin[i]);
  if (rc == ORR_EUNSUPPORTED) {
    cfail(c, rc, "overlapping chunks of encoding %u cannot be merged", run[0].enc);
  } else if (rc == 0) {
    tsdb_merge_fn fn = c->o->merge ? c->o->merge : tsdb_merge_chain;
    rc = fn(c->o->merge_arg, (const tsdb_sample *const *)in, nin, nrun, &merged, &nmerged);
    if (rc) cfail(c, rc, "merging overlapping chunks: %s", orr_strerror(rc));
  } else {
    cfail(c, rc, "decoding overlapping chunks: %s", orr_strerror(rc));
  }
  for (size_t i = 0; i < nrun; i++) {
    if (in) free(in[i]);
    if (rown[i]) free(run[i].data);
  }
  free(in);
  free(nin);
  if (rc) {
    free(merged);
    return rc;
  }
  clist *rest = NULL;
  for (size_t off = 0; rc == 0 && off < nmerged; off += TSDB_SAMPLES_PER_CHUNK) {
    size_t k = nmerged - off < TSDB_SAMPLES_PER_CHUNK ? nmerged - off : TSDB_SAMPLES_PER_CHUNK;
    tsdb_chunk ch;
    if ((rc = encode_chunk(merged + off, k, &ch)) != 0) break;
    c->res->chunks_reencoded++;
    if (off == 0) {
      rc = out_push(c, ch, true);
    } else {
      if (!rest && !(rest = new_list(c))) rc = ORR_ENOMEM;
      if (rc == 0) rc = clist_push(rest, ch, true);
    }
    if (rc) free(ch.data);
  }
  free(merged);
  if (rc) return cfail(c, rc, "re-encoding merged chunks: %s", orr_strerror(rc));
  return 0;
}

/* Runs note 3 over c->lists into c->outc. */
static int merge_lists(compactor *c) {
  tsdb_chunk *run = NULL;
  bool *rown = NULL;
  size_t nrun = 0, caprun = 0;
  int rc = 0;
  clist *l;
  while (rc == 0 && (l = min_list(c)) != NULL) {
    bool cown;
    tsdb_chunk cur = take(l, &cown);
    int64_t omax = cur.maxt;
    tsdb_chunk prev = cur;
    nrun = 0;
    clist *nx;
    while ((nx = min_list(c)) != NULL) {
      const tsdb_chunk *next = &nx->v[nx->i];
      if (next->mint > omax) break;
      bool nown;
      if (next->mint == prev.mint && next->maxt == prev.maxt && next->len == prev.len &&
          next->enc == prev.enc && memcmp(next->data, prev.data, next->len) == 0) {
        tsdb_chunk dup = take(nx, &nown);
        if (nown) free(dup.data);
        continue;
      }
      if (nrun + 2 > caprun) {
        size_t nc = caprun ? caprun * 2 : 8;
        tsdb_chunk *nr = realloc(run, nc * sizeof(*nr));
        bool *no = nr ? realloc(rown, nc * sizeof(*no)) : NULL;
        if (nr) run = nr;
        if (!no) {
          rc = cfail(c, ORR_ENOMEM, "out of memory");
          break;
        }
        rown = no;
        caprun = nc;
      }
      run[nrun] = take(nx, &nown);
      rown[nrun++] = nown;
      if (run[nrun - 1].maxt > omax) omax = run[nrun - 1].maxt;
      prev = run[nrun - 1];
    }
    if (rc) {
      if (cown) free(cur.data);
      for (size_t i = 0; i < nrun; i++)
        if (rown[i]) free(run[i].data);
      break;
    }
    if (nrun == 0) {
      c->res->chunks_copied++;
      if ((rc = out_push(c, cur, cown)) != 0) {
        if (cown) free(cur.data);
        rc = cfail(c, rc, "out of memory");
      }
      continue;
    }
    /* Prometheus merges the overlapping chunks with the first one last. */
    run[nrun] = cur;
    rown[nrun] = cown;
    rc = merge_run(c, run, rown, nrun + 1);
  }
  free(run);
  free(rown);
  return rc;
}

/* Note 6: overlapping downsampled (aggregate) series, lanes as in
 * merge_series. Each aggregate is merged on its own across the lanes with
 * |fn| (one value per timestamp: an overlapping window is taken from one
 * lane, never added up), then re-cut into aggregate chunks of at most
 * TSDB_DOWNSAMPLE_CHUNK_SAMPLES count windows; the other aggregates go with
 * the count windows they fall in, the counter ending with its last value
 * repeated (as downsample.c's note 2). Returns 1 or a negative ORR_E*. */
static int merge_aggr(compactor *c, const size_t *ord, size_t k, const size_t *lane, size_t nl,
                      tsdb_merge_fn fn) {
  tsdb_sample **in = calloc(nl, sizeof(*in)), *merged[TSDB_AGGR_NUM] = {0};
  size_t *nin = calloc(nl, sizeof(*nin)), *cap = calloc(nl, sizeof(*cap));
  size_t nmerged[TSDB_AGGR_NUM] = {0};
  int rc = in && nin && cap ? 0 : ORR_ENOMEM;
  for (int a = 0; rc == 0 && a < TSDB_AGGR_NUM; a++) {
    for (size_t j = 0; j < nl; j++) nin[j] = 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
      const clist *l = &c->lists[ord[i]];
      size_t j = lane[ord[i]];
      for (size_t x = l->i; rc == 0 && x < l->n; x++) {
        if (l->v[x].enc != TSDB_ENC_AGGR) {
          rc = ORR_EUNSUPPORTED;
          break;
        }
        tsdb_xor_iter it;
        int r = tsdb_aggr_iter_init(&it, l->v[x].data, l->v[x].len, (tsdb_aggr_type)a);
        if (r == ORR_ENOTFOUND) continue;
        if (r) {
          rc = r;
          break;
        }
        while ((r = tsdb_xor_iter_next(&it)) == 1) {
          /* strictly increasing: drops the counter's repeated last value */
          if (nin[j] > 0 && it.t <= in[j][nin[j] - 1].t) continue;
          if (nin[j] == cap[j]) {
            size_t nc = cap[j] ? cap[j] * 2 : 256;
            tsdb_sample *nv = realloc(in[j], nc * sizeof(*nv));
            if (!nv) {
              r = ORR_ENOMEM;
              break;
            }
            in[j] = nv;
            cap[j] = nc;
          }
          in[j][nin[j]++] = (tsdb_sample){it.t, it.v};
        }
        if (r < 0) rc = r;
      }
    }
    if (rc == 0) rc = fn(c->o->merge_arg, (const tsdb_sample *const *)in, nin, nl, &merged[a],
                         &nmerged[a]);
  }
  if (rc == ORR_EUNSUPPORTED) {
    rc = cfail(c, rc, "overlapping chunks mix aggregate and other encodings");
    goto out;
  }
  if (rc) {
    rc = cfail(c, rc, "merging overlapping aggregate chunks: %s", orr_strerror(rc));
    goto out;
  }
  size_t pos[TSDB_AGGR_NUM] = {0};
  const size_t per = TSDB_DOWNSAMPLE_CHUNK_SAMPLES;
  const size_t nw = nmerged[TSDB_AGGR_COUNT];
  for (size_t q0 = 0; rc == 0 && q0 < nw; q0 += per) {
    size_t q1 = nw - q0 < per ? nw : q0 + per;
    bool last = q1 == nw;
    int64_t maxt = merged[TSDB_AGGR_COUNT][q1 - 1].t;
    tsdb_aggr_appender app;
    rc = tsdb_aggr_appender_init(&app);
    for (int a = 0; rc == 0 && a < TSDB_AGGR_NUM; a++) {
      size_t n0 = pos[a];
      while (rc == 0 && pos[a] < nmerged[a] && (last || merged[a][pos[a]].t <= maxt)) {
        rc = tsdb_aggr_append(&app, (tsdb_aggr_type)a, merged[a][pos[a]].t, merged[a][pos[a]].v);
        pos[a]++;
      }
      if (rc == 0 && a == TSDB_AGGR_COUNTER && pos[a] > n0)
        rc = tsdb_aggr_append(&app, (tsdb_aggr_type)a, merged[a][pos[a] - 1].t,
                              merged[a][pos[a] - 1].v);
    }
    orr_buf b = {0};
    if (rc == 0) rc = tsdb_aggr_appender_bytes(&app, &b);
    if (rc == 0 && b.oom) rc = ORR_ENOMEM;
    tsdb_aggr_appender_free(&app);
    if (rc) {
      orr_buf_free(&b);
      rc = cfail(c, rc, "re-encoding merged aggregate chunks: %s", orr_strerror(rc));
      break;
    }
    size_t len;
    uint8_t *data = (uint8_t *)orr_buf_steal(&b, &len);
    tsdb_chunk ch = {merged[TSDB_AGGR_COUNT][q0].t, maxt, TSDB_ENC_AGGR, data, len};
    c->res->chunks_reencoded++;
    if ((rc = out_push(c, ch, true)) != 0) {
      free(ch.data);
      rc = cfail(c, rc, "out of memory");
    }
  }
  if (rc == 0) {
    /* the inputs' chunks are consumed */
    for (size_t i = 0; i < k; i++) {
      clist *l = &c->lists[ord[i]];
      for (; l->i < l->n; l->i++) {
        if (l->owned[l->i]) free(l->v[l->i].data);
        l->owned[l->i] = false;
      }
    }
    rc = 1;
  }
out:
  for (size_t j = 0; in && j < nl; j++) free(in[j]);
  for (int a = 0; a < TSDB_AGGR_NUM; a++) free(merged[a]);
  free(in);
  free(nin);
  free(cap);
  return rc;
}

/* Note 5: the whole-series merge (opts.merge_whole_series). Each list's
 * chunks are one input block's series in time order; lists disjoint in time
 * are chained into one lane (greedy, by first chunk: the same replica's
 * consecutive blocks), and when more than one lane remains the lanes are
 * decoded whole, merged once and re-encoded. With a single lane nothing
 * overlaps and merge_lists copies the chunks as they are. Returns 1 when
 * it merged, 0 when merge_lists should run, or a negative ORR_E* code. */
static int merge_series(compactor *c) {
  size_t n = 0;
  for (size_t i = 0; i < c->nlists; i++)
    if (c->lists[i].n > c->lists[i].i) n++;
  if (n < 2) return 0;
  size_t *ord = calloc(c->nlists, sizeof(*ord)), *lane = calloc(c->nlists, sizeof(*lane));
  int64_t *lmax = calloc(c->nlists, sizeof(*lmax));
  size_t nl = 0, k = 0;
  int rc = ord && lane && lmax ? 0 : ORR_ENOMEM;
  for (size_t i = 0; rc == 0 && i < c->nlists; i++)
    if (c->lists[i].n > c->lists[i].i) ord[k++] = i;
  /* insertion sort by first chunk's mint: a handful of lists */
  for (size_t i = 1; rc == 0 && i < k; i++)
    for (size_t j = i; j > 0; j--) {
      const clist *a = &c->lists[ord[j - 1]], *b = &c->lists[ord[j]];
      if (a->v[a->i].mint <= b->v[b->i].mint) break;
      size_t t = ord[j];
      ord[j] = ord[j - 1];
      ord[j - 1] = t;
    }
  for (size_t i = 0; rc == 0 && i < k; i++) {
    const clist *l = &c->lists[ord[i]];
    int64_t mint = l->v[l->i].mint, maxt = l->v[l->n - 1].maxt;
    size_t j = 0;
    while (j < nl && lmax[j] >= mint) j++;
    if (j == nl) nl++;
    lane[ord[i]] = j;
    lmax[j] = maxt;
  }
  tsdb_sample **in = NULL, *merged = NULL;
  size_t *nin = NULL, *cap = NULL, nmerged = 0;
  if (rc) {
    rc = cfail(c, rc, "out of memory");
    goto out;
  }
  if (nl < 2) goto out;
  if (c->lists[ord[0]].v[c->lists[ord[0]].i].enc == TSDB_ENC_AGGR) {
    rc = merge_aggr(c, ord, k, lane, nl, c->o->merge ? c->o->merge : tsdb_merge_chain);
    goto out;
  }
  in = calloc(nl, sizeof(*in));
  nin = calloc(nl, sizeof(*nin));
  cap = calloc(nl, sizeof(*cap));
  if (!in || !nin || !cap) rc = ORR_ENOMEM;
  /* lists in |ord| order: each lane gets its pieces in time order */
  for (size_t i = 0; rc == 0 && i < k; i++) {
    clist *l = &c->lists[ord[i]];
    size_t j = lane[ord[i]];
    for (; rc == 0 && l->i < l->n; l->i++) {
      tsdb_sample *s;
      size_t m;
      if ((rc = decode_chunk(&l->v[l->i], &s, &m)) != 0) break;
      if (nin[j] + m > cap[j]) {
        size_t nc = (nin[j] + m) * 2;
        tsdb_sample *nv = realloc(in[j], nc * sizeof(*nv));
        if (!nv) rc = ORR_ENOMEM;
        else in[j] = nv, cap[j] = nc;
      }
      if (rc == 0) {
        /* a block's own chunks may overlap: keep the lane strictly increasing */
        for (size_t x = 0; x < m; x++)
          if (nin[j] == 0 || s[x].t > in[j][nin[j] - 1].t) in[j][nin[j]++] = s[x];
      }
      free(s);
      if (l->owned[l->i]) free(l->v[l->i].data);
      l->owned[l->i] = false;
    }
  }
  if (rc == ORR_EUNSUPPORTED) {
    rc = cfail(c, rc, "overlapping chunks of a non-XOR encoding cannot be merged");
  } else if (rc == 0) {
    rc = c->o->merge(c->o->merge_arg, (const tsdb_sample *const *)in, nin, nl, &merged, &nmerged);
    if (rc) rc = cfail(c, rc, "merging overlapping series: %s", orr_strerror(rc));
  } else {
    rc = cfail(c, rc, "decoding overlapping chunks: %s", orr_strerror(rc));
  }
  for (size_t off = 0; rc == 0 && off < nmerged; off += TSDB_SAMPLES_PER_CHUNK) {
    size_t m = nmerged - off < TSDB_SAMPLES_PER_CHUNK ? nmerged - off : TSDB_SAMPLES_PER_CHUNK;
    tsdb_chunk ch;
    if ((rc = encode_chunk(merged + off, m, &ch)) != 0) {
      rc = cfail(c, rc, "re-encoding merged chunks: %s", orr_strerror(rc));
      break;
    }
    c->res->chunks_reencoded++;
    if ((rc = out_push(c, ch, true)) != 0) {
      free(ch.data);
      rc = cfail(c, rc, "out of memory");
    }
  }
  if (rc == 0) rc = 1;
out:
  for (size_t i = 0; in && i < nl; i++) free(in[i]);
  free(in);
  free(nin);
  free(cap);
  free(merged);
  free(ord);
  free(lane);
  free(lmax);
  return rc;
}

/* ---------------------------------------------------------------- inputs */

static int input_next(compactor *c, input *in) {
  orr_arena_reset(in->sa);
  in->has = false;
  if (!tsdb_postings_next(in->p)) return 0;
  in->ref = tsdb_postings_at(in->p);
  int rc = tsdb_index_series(tsdb_block_index(in->b), in->ref, in->sa, &in->ls, &in->chks,
                             &in->nchks);
  if (rc)
    return cfail(c, rc, "%s/index: series %llu: %s", tsdb_block_dir(in->b),
                 (unsigned long long)in->ref,
                 rc == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(rc));
  in->has = true;
  return 0;
}

/* Adds the merged symbol tables of the inputs to the index writer. */
static int add_symbols(compactor *c) {
  size_t *pos = calloc(c->nin, sizeof(*pos));
  const char **cur = calloc(c->nin, sizeof(*cur));
  size_t *curn = calloc(c->nin, sizeof(*curn));
  int rc = pos && cur && curn ? 0 : ORR_ENOMEM;
  const char *last = NULL;
  size_t lastn = 0;
  for (size_t i = 0; rc == 0 && i < c->nin; i++)
    if (tsdb_index_num_symbols(tsdb_block_index(c->in[i].b)) > 0)
      rc = tsdb_index_symbol(tsdb_block_index(c->in[i].b), 0, &cur[i], &curn[i]);
  while (rc == 0) {
    size_t best = c->nin;
    for (size_t i = 0; i < c->nin; i++) {
      if (pos[i] >= tsdb_index_num_symbols(tsdb_block_index(c->in[i].b))) continue;
      if (best == c->nin) {
        best = i;
        continue;
      }
      size_t m = curn[i] < curn[best] ? curn[i] : curn[best];
      int d = memcmp(cur[i], cur[best], m);
      if (d < 0 || (d == 0 && curn[i] < curn[best])) best = i;
    }
    if (best == c->nin) break;
    if (!last || lastn != curn[best] || memcmp(last, cur[best], lastn) != 0) {
      if ((rc = tsdb_index_writer_add_symbol(c->iw, cur[best], curn[best])) != 0) {
        cfail(c, rc, "index: adding a symbol: %s (input symbols out of order?)",
              orr_strerror(rc));
        break;
      }
      last = cur[best];
      lastn = curn[best];
    }
    const tsdb_index_reader *r = tsdb_block_index(c->in[best].b);
    if (++pos[best] < tsdb_index_num_symbols(r))
      rc = tsdb_index_symbol(r, (uint32_t)pos[best], &cur[best], &curn[best]);
  }
  if (rc == ORR_ECORRUPT) cfail(c, rc, "index symbols: %s", tsdb_index_last_error());
  else if (rc == ORR_ENOMEM) cfail(c, rc, "out of memory");
  free(pos);
  free(cur);
  free(curn);
  return rc;
}

/* Writes the series now in c->outc under |ls|. */
static int write_series(compactor *c, const labels_set *ls) {
  if (c->noutc == 0) return 0;
  if (c->noutc > c->capmetas) {
    tsdb_index_chunk_meta *nm = realloc(c->metas, c->noutc * sizeof(*nm));
    if (!nm) return cfail(c, ORR_ENOMEM, "out of memory");
    c->metas = nm;
    c->capmetas = c->noutc;
  }
  for (size_t i = 0; i < c->noutc; i++) {
    uint64_t ref;
    int rc = tsdb_chunk_writer_add(c->cw, &c->outc[i], &ref);
    if (rc) return cfail(c, rc, "chunks: writing a chunk: %s", orr_strerror(rc));
    c->metas[i] = (tsdb_index_chunk_meta){c->outc[i].mint, c->outc[i].maxt, ref};
    c->res->num_samples += tsdb__chunk_samples(&c->outc[i]);
  }
  int rc = tsdb_index_writer_add_series(c->iw, ls, c->metas, c->noutc, NULL);
  if (rc) return cfail(c, rc, "index: adding a series: %s", orr_strerror(rc));
  c->res->num_series++;
  c->res->num_chunks += c->noutc;
  return 0;
}

/* Whether the series in c->lists has aggregate chunks (note 6). */
static bool has_aggr(const compactor *c) {
  for (size_t i = 0; i < c->nlists; i++)
    if (c->lists[i].n > c->lists[i].i && c->lists[i].v[c->lists[i].i].enc == TSDB_ENC_AGGR)
      return true;
  return false;
}

static int series_loop(compactor *c) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < c->nin; i++) rc = input_next(c, &c->in[i]);
  while (rc == 0) {
    input *first = NULL;
    for (size_t i = 0; i < c->nin; i++)
      if (c->in[i].has && (!first || labels_cmp(&c->in[i].ls, &first->ls) < 0)) first = &c->in[i];
    if (!first) break;
    c->nlists = 0;
    for (size_t i = 0; rc == 0 && i < c->nin; i++) {
      input *in = &c->in[i];
      if (!in->has || (in != first && labels_cmp(&in->ls, &first->ls) != 0)) continue;
      clist *l = new_list(c);
      rc = l ? input_chunks(c, in, l) : cfail(c, ORR_ENOMEM, "out of memory");
    }
    if (rc == 0 && ((c->o->merge && c->o->merge_whole_series) || has_aggr(c)))
      rc = merge_series(c);
    if (rc == 0) rc = merge_lists(c);
    if (rc == 1) rc = 0;
    if (rc == 0) rc = write_series(c, &first->ls);
    out_clear(c);
    for (size_t i = 0; i < c->nlists; i++) clist_clear(&c->lists[i]);
    /* Advance every input that was on this series (|first| last: its
     * labels are the ones compared). */
    for (size_t i = 0; rc == 0 && i < c->nin; i++) {
      input *in = &c->in[i];
      if (in != first && in->has && labels_cmp(&in->ls, &first->ls) == 0) rc = input_next(c, in);
    }
    if (rc == 0) rc = input_next(c, first);
    if (c->read_bytes >= TSDB__RELEASE_BYTES) {
      for (size_t i = 0; i < c->nin; i++) tsdb__chunk_reader_release(tsdb_block_chunks(c->in[i].b));
      c->read_bytes = 0;
    }
  }
  return rc;
}

/* ---------------------------------------------------------------- output */

static int cmp_ulid(const void *a, const void *b) { return tsdb_ulid_cmp(a, b); }

static int write_meta(compactor *c, const char *tmpdir, orr_arena *a) {
  tsdb_meta m;
  memset(&m, 0, sizeof(m));
  m.ulid = c->res->ulid;
  m.version = 1;
  m.min_time = INT64_MAX;
  m.max_time = INT64_MIN;
  size_t nsrc = 0;
  for (size_t i = 0; i < c->nin; i++) nsrc += tsdb_block_meta(c->in[i].b)->nsources;
  m.sources = orr_arena_calloc(a, nsrc + 1, sizeof(*m.sources));
  m.parents = orr_arena_calloc(a, c->nin, sizeof(*m.parents));
  if (!m.sources || !m.parents) return cfail(c, ORR_ENOMEM, "out of memory");
  for (size_t i = 0; i < c->nin; i++) {
    const tsdb_meta *im = tsdb_block_meta(c->in[i].b);
    if (im->min_time < m.min_time) m.min_time = im->min_time;
    if (im->max_time > m.max_time) m.max_time = im->max_time;
    if (im->level > m.level) m.level = im->level;
    for (size_t j = 0; j < im->nsources; j++) m.sources[m.nsources++] = im->sources[j];
    m.parents[m.nparents++] = (tsdb_block_desc){im->ulid, im->min_time, im->max_time};
  }
  m.level++;
  qsort(m.sources, m.nsources, sizeof(*m.sources), cmp_ulid);
  size_t k = 0;
  for (size_t i = 0; i < m.nsources; i++)
    if (k == 0 || tsdb_ulid_cmp(&m.sources[k - 1], &m.sources[i]) != 0)
      m.sources[k++] = m.sources[i];
  m.nsources = k;
  m.num_samples = c->res->num_samples;
  m.num_series = c->res->num_series;
  m.num_chunks = c->res->num_chunks;
  if (c->o->thanos && c->o->thanos->has_thanos) {
    m.has_thanos = true;
    m.thanos.version = 1;
    m.thanos.labels = c->o->thanos->thanos.labels;
    m.thanos.downsample_resolution = c->o->thanos->thanos.downsample_resolution;
    m.thanos.source = c->o->thanos->thanos.source;
    char *cdir = orr_arena_sprintf(a, "%s/chunks", tmpdir);
    if (!cdir) return cfail(c, ORR_ENOMEM, "out of memory");
    int rc = tsdb_segment_names(cdir, a, &m.thanos.segment_files, &m.thanos.nsegment_files);
    if (rc) return cfail(c, rc, "listing %s: %s", cdir, orr_strerror(rc));
  }
  tsdb_tombstones none = {0};
  int rc = tsdb_tombstones_write_dir(tmpdir, &none);
  if (rc) return cfail(c, rc, "%s/tombstones: %s", tmpdir, orr_strerror(rc));
  if ((rc = tsdb_meta_write_dir(tmpdir, &m)) != 0)
    return cfail(c, rc, "%s/meta.json: %s", tmpdir, orr_strerror(rc));
  return 0;
}

int tsdb_compact(const char *parent, const char *const *dirs, size_t n,
                 const tsdb_compact_opts *o, tsdb_compact_result *res, char *err,
                 size_t errlen) {
  static const tsdb_compact_opts defaults;
  compactor c = {.o = o ? o : &defaults, .res = res, .err = err, .errlen = errlen};
  memset(res, 0, sizeof(*res));
  char tmpdir[4096 + 32], finaldir[4096], path[4096 + 64];
  tmpdir[0] = 0;
  orr_arena *a = orr_arena_new(0);
  int rc = ORR_ENOMEM;
  if (!a || !(c.in = calloc(n ? n : 1, sizeof(*c.in)))) {
    cfail(&c, rc, "out of memory");
    goto out;
  }
  if (n == 0) {
    rc = cfail(&c, ORR_EINVAL, "no block to compact");
    goto out;
  }
  char msg[512];
  for (size_t i = 0; i < n; i++) {
    input *in = &c.in[i];
    if ((rc = tsdb_block_open(dirs[i], &in->b, msg, sizeof(msg))) != 0) {
      cfail(&c, rc, "%s", msg);
      goto out;
    }
    c.nin++;
    if (!(in->pa = orr_arena_new(0)) || !(in->sa = orr_arena_new(0))) {
      rc = cfail(&c, ORR_ENOMEM, "out of memory");
      goto out;
    }
    if ((rc = tsdb_index_all_postings(tsdb_block_index(in->b), in->pa, &in->p)) != 0) {
      cfail(&c, rc, "%s/index: postings: %s", dirs[i],
            rc == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(rc));
      goto out;
    }
  }
  if ((rc = tsdb_ulid_new(orr_now_ms(), &res->ulid)) != 0) {
    cfail(&c, rc, "making a ULID: %s", orr_strerror(rc));
    goto out;
  }
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&res->ulid, id);
  snprintf(finaldir, sizeof(finaldir), "%s/%s", parent, id);
  snprintf(tmpdir, sizeof(tmpdir), "%s%s", finaldir, TSDB_BLOCK_TMP_SUFFIX);
  if (mkdir(tmpdir, 0777) != 0) {
    rc = cfail(&c, ORR_EIO, "mkdir %s: %s", tmpdir, strerror(errno));
    tmpdir[0] = 0;
    goto out;
  }
  snprintf(path, sizeof(path), "%s/chunks", tmpdir);
  msg[0] = 0;
  if ((rc = tsdb_chunk_writer_open(path, c.o->segment_size, &c.cw, msg, sizeof(msg))) != 0) {
    cfail(&c, rc, "%s: %s", path, msg[0] ? msg : orr_strerror(rc));
    goto out;
  }
  snprintf(path, sizeof(path), "%s/index", tmpdir);
  if ((rc = tsdb_index_writer_open(path, &c.iw)) != 0) {
    cfail(&c, rc, "%s: %s", path, orr_strerror(rc));
    goto out;
  }
  if ((rc = add_symbols(&c)) != 0) goto out;
  if ((rc = series_loop(&c)) != 0) goto out;
  msg[0] = 0;
  rc = tsdb_chunk_writer_close(c.cw, msg, sizeof(msg));
  c.cw = NULL;
  if (rc) {
    cfail(&c, rc, "%s/chunks: %s", tmpdir, msg[0] ? msg : orr_strerror(rc));
    goto out;
  }
  if ((rc = tsdb_index_writer_finish(c.iw)) != 0) {
    cfail(&c, rc, "%s/index: %s", tmpdir, orr_strerror(rc));
    goto out;
  }
  if (res->num_samples == 0) { /* Prometheus marks the inputs deletable, writes nothing */
    res->empty = true;
    goto out;
  }
  if ((rc = write_meta(&c, tmpdir, a)) != 0) goto out;
  snprintf(path, sizeof(path), "%s/chunks", tmpdir);
  if (tsdb__fsync_path(path, true) || tsdb__fsync_path(tmpdir, true)) {
    rc = cfail(&c, ORR_EIO, "fsync %s: %s", tmpdir, strerror(errno));
    goto out;
  }
  if (rename(tmpdir, finaldir) != 0) {
    rc = cfail(&c, ORR_EIO, "rename %s to %s: %s", tmpdir, finaldir, strerror(errno));
    goto out;
  }
  tmpdir[0] = 0;
  if (tsdb__fsync_path(parent, true)) {
    rc = cfail(&c, ORR_EIO, "fsync %s: %s", parent, strerror(errno));
    goto out;
  }
out:
  if (c.cw) tsdb_chunk_writer_close(c.cw, NULL, 0);
  if (c.iw) tsdb_index_writer_free(c.iw);
  if (tmpdir[0]) orr_remove_tree(tmpdir);
  out_clear(&c);
  free(c.outc);
  free(c.outowned);
  free(c.metas);
  clists_free(&c);
  for (size_t i = 0; i < c.nin; i++) {
    orr_arena_destroy(c.in[i].pa);
    orr_arena_destroy(c.in[i].sa);
    tsdb_block_close(c.in[i].b);
  }
  free(c.in);
  orr_arena_destroy(a);
  return rc;
}
