/* downsample.c: Thanos's downsampling — raw series into 5m aggregate
 * chunks, 5m aggregates into 1h ones — and a whole block streamed through
 * it into a new block (same time range, level and sources; the thanos
 * section's resolution set).
 *
 * NOTES ON THE DESIGN
 * 1. Windows. A sample at t belongs to the window ending at
 *    t - t % res + res - 1, and each window emits one sample per aggregate
 *    at that end timestamp (capped at the last sample of the batch, so that
 *    batches never overlap): count, sum, min, max, and counter. Stale
 *    markers are skipped.
 * 2. Counter. Within a chunk the counter aggregate is a running total: the
 *    first value sets it, then a value lower than the previous one (a
 *    reset) adds itself, any other adds its difference. The chunk's counter
 *    starts with the first raw sample (at its own timestamp) and ends with
 *    the last raw value repeated at the last window's timestamp, so that a
 *    reader chaining chunks (Thanos's ApplyCounterResetsSeriesIterator) sees
 *    resets that fall between chunks.
 * 3. Chunks. A series' samples (stale markers dropped first) are cut into
 *    batches of about equal size, as many as Thanos's targetChunkCount
 *    gives: the windows the series' range could fill, scaled by how densely
 *    its samples fill it assuming one a minute, over
 *    TSDB_DOWNSAMPLE_CHUNK_SAMPLES (140) — at most 140 windows a chunk on
 *    average for data a minute apart or denser, fewer and longer chunks
 *    for sparser data, cut where Thanos's are; a batch is extended to
 *    the end of the window it stops in. 5m -> 1h batches whole input
 *    chunks.
 * 4. Streaming as compact.c: the output index takes the input's symbols,
 *    series are written one at a time in label order.
 * 5. Speed. The raw path is the hot one (every raw block): chunks are
 *    decoded two at a time (tsdb_xor_decode2), windows aggregated by a
 *    loop per window with no call per sample, and the five appenders
 *    reused from chunk to chunk. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tsdb_int.h"

static bool is_stale(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof(b));
  return b == 0x7ff0000000000002ull;
}

int64_t tsdb_downsample_window(int64_t t, int64_t res) {
  int64_t m = t % res;
  if (m < 0) m += res;
  return t - m + res - 1;
}

/* ---------------------------------------------------------------- aggregator */

typedef struct aggr {
  uint64_t total; /* samples seen by this aggregator */
  uint64_t count; /* in the current window */
  double sum, min, max;
  double counter, last;
} aggr;

static void aggr_reset(aggr *a) {
  a->count = 0;
  a->sum = 0;
  a->min = INFINITY;
  a->max = -INFINITY;
}

static void aggr_add(aggr *a, double v) {
  if (a->total > 0) a->counter += v < a->last ? v : v - a->last;
  else a->counter = v;
  a->last = v;
  a->sum += v;
  a->count++;
  a->total++;
  if (v < a->min) a->min = v;
  if (v > a->max) a->max = v;
}

typedef void (*emit_fn)(void *arg, int64_t t, const aggr *a);

/* Thanos's downsampleBatch: windows over |s| (|n| > 0); returns the last
 * window's timestamp (capped at the last sample). */
static int64_t downsample_batch(const tsdb_sample *s, size_t n, int64_t res, emit_fn emit,
                                void *arg) {
  aggr a = {0};
  aggr_reset(&a);
  int64_t next = -1, last_t = s[n - 1].t;
  bool started = false;
  for (size_t i = 0; i < n; i++) {
    if (is_stale(s[i].v)) continue;
    if (!started || s[i].t > next) {
      if (started) emit(arg, next, &a);
      aggr_reset(&a);
      next = tsdb_downsample_window(s[i].t, res);
      if (next > last_t) next = last_t;
      started = true;
    }
    aggr_add(&a, s[i].v);
  }
  if (started) emit(arg, next, &a);
  return next;
}

/* ---------------------------------------------------------------- raw -> aggregates */

typedef struct builder {
  tsdb_aggr_appender app;
  int64_t mint, maxt;
  int err;
} builder;

/* Pushes the builder's chunk to |*out|. */
static int builder_finish(builder *b, tsdb_chunk **out, size_t *nout, size_t *cap) {
  orr_buf buf = {0};
  int rc = tsdb_aggr_appender_bytes(&b->app, &buf);
  if (rc == 0 && buf.oom) rc = ORR_ENOMEM;
  if (rc == 0 && *nout == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    tsdb_chunk *nv = realloc(*out, nc * sizeof(*nv));
    if (!nv) rc = ORR_ENOMEM;
    else {
      *out = nv;
      *cap = nc;
    }
  }
  if (rc) {
    orr_buf_free(&buf);
    return rc;
  }
  size_t len;
  uint8_t *data = (uint8_t *)orr_buf_steal(&buf, &len);
  (*out)[(*nout)++] = (tsdb_chunk){b->mint, b->maxt, TSDB_ENC_AGGR, data, len};
  return 0;
}

/* Empties the builder for the next chunk, keeping its buffers. */
static void builder_reset(builder *b) {
  for (int k = 0; k < TSDB_AGGR_NUM; k++) tsdb_xor_appender_reset(&b->app.sub[k]);
  b->mint = INT64_MAX;
  b->maxt = INT64_MIN;
  b->err = 0;
}

/* How many chunks for |windows| output windows (note 3). */
static size_t target_chunks(size_t windows) {
  size_t x = 1;
  while (windows / x > TSDB_DOWNSAMPLE_CHUNK_SAMPLES) x++;
  return x;
}

/* Thanos's targetChunkCount (note 3): the windows [mint, maxt] could fill
 * at |outres|, scaled by how densely |count| samples at an assumed |inres|
 * fill the range (at most 1), then chunks of at most 140 on average. */
static size_t target_chunk_count(int64_t mint, int64_t maxt, int64_t inres, int64_t outres,
                                 size_t count) {
  double max_windows = (double)((maxt - mint) / outres), full = 1;
  if (maxt > mint) {
    full = (double)count / ((double)(maxt - mint) / (double)inres);
    if (full > 1) full = 1;
  }
  return target_chunks((size_t)(max_windows * full) + 1);
}

/* One batch of raw samples (note 1) into |b|: the counter's first raw
 * value, then per window its count, sum, min, max and running counter
 * (note 2), then the last raw value. The windows are walked by an inner
 * loop over their samples, with no call per sample: this is the hot loop
 * of downsampling. Sums run in sample order, so results are bit-identical
 * to a per-sample aggregator. Nothing is appended when every sample is
 * stale. */
static void raw_batch(const tsdb_sample *s, size_t n, int64_t res, builder *b) {
  size_t i = 0;
  while (i < n && is_stale(s[i].v)) i++;
  if (i == n) return;
  tsdb_xor_appender *ac = &b->app.sub[TSDB_AGGR_COUNT], *as = &b->app.sub[TSDB_AGGR_SUM],
                    *amin = &b->app.sub[TSDB_AGGR_MIN], *amax = &b->app.sub[TSDB_AGGR_MAX],
                    *actr = &b->app.sub[TSDB_AGGR_COUNTER];
  const int64_t last_t = s[n - 1].t;
  double counter = s[i].v, last = s[i].v;
  int rc = tsdb_xor_append(actr, s[i].t, s[i].v);
  bool first = true;
  int64_t end = 0;
  while (rc == 0 && i < n) {
    if (is_stale(s[i].v)) {
      i++;
      continue;
    }
    end = tsdb_downsample_window(s[i].t, res);
    if (end > last_t) end = last_t;
    uint64_t count = 0;
    double sum = 0, min = INFINITY, max = -INFINITY;
    if (first) { /* the counter starts at the first value (note 2) */
      double v = s[i++].v;
      sum += v;
      count = 1;
      if (v < min) min = v;
      if (v > max) max = v;
      first = false;
    }
    for (; i < n && s[i].t <= end; i++) {
      double v = s[i].v;
      if (is_stale(v)) continue;
      counter += v < last ? v : v - last;
      last = v;
      sum += v;
      count++;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (end < b->mint) b->mint = end;
    if (end > b->maxt) b->maxt = end;
    rc = tsdb_xor_append(ac, end, (double)count);
    if (rc == 0) rc = tsdb_xor_append(as, end, sum);
    if (rc == 0) rc = tsdb_xor_append(amin, end, min);
    if (rc == 0) rc = tsdb_xor_append(amax, end, max);
    if (rc == 0) rc = tsdb_xor_append(actr, end, counter);
  }
  /* the last raw value, at the last window's end (note 2) */
  if (rc == 0) rc = tsdb_xor_append(actr, end, last);
  if (rc && !b->err) b->err = rc;
}

int tsdb_downsample_raw(const tsdb_sample *s, size_t n, int64_t res, tsdb_chunk **out,
                        size_t *nout) {
  *out = NULL;
  *nout = 0;
  if (n == 0) return 0;
  if (res <= 0) return ORR_EINVAL;
  /* Thanos assumes raw data a minute apart for its chunk count. */
  size_t batch = n / target_chunk_count(s[0].t, s[n - 1].t, 60000, res, n) + 1, cap = 0;
  builder b;
  int rc = tsdb_aggr_appender_init(&b.app);
  while (n > 0 && rc == 0) {
    size_t j = batch < n ? batch : n;
    /* a batch ends with the window its last sample is in */
    int64_t cw = tsdb_downsample_window(s[j - 1].t, res);
    while (j < n && s[j].t <= cw) j++;
    builder_reset(&b);
    raw_batch(s, j, res, &b);
    rc = b.err;
    if (rc == 0 && b.mint != INT64_MAX) rc = builder_finish(&b, out, nout, &cap);
    s += j;
    n -= j;
  }
  tsdb_aggr_appender_free(&b.app);
  if (rc) {
    tsdb_chunks_free(*out, *nout);
    *out = NULL;
    *nout = 0;
  }
  return rc;
}

/* ---------------------------------------------------------------- aggregates -> aggregates */

typedef struct sbuf {
  tsdb_sample *v;
  size_t n, cap;
} sbuf;

static int sbuf_grow(sbuf *b) {
  size_t nc = b->cap ? b->cap * 2 : 256;
  tsdb_sample *nv = realloc(b->v, nc * sizeof(*nv));
  if (!nv) return ORR_ENOMEM;
  b->v = nv;
  b->cap = nc;
  return 0;
}

static int sbuf_push(sbuf *b, int64_t t, double v) {
  if (b->n == b->cap && sbuf_grow(b) != 0) return ORR_ENOMEM;
  b->v[b->n++] = (tsdb_sample){t, v};
  return 0;
}

/* Appends aggregate |t| of every chunk in |c| to |b|. */
static int expand(const tsdb_chunk *c, size_t n, tsdb_aggr_type t, sbuf *b) {
  b->n = 0;
  for (size_t i = 0; i < n; i++) {
    tsdb_xor_iter it;
    int rc = tsdb_aggr_iter_init(&it, c[i].data, c[i].len, t);
    if (rc == ORR_ENOTFOUND) continue;
    if (rc) return rc;
    while ((rc = tsdb_xor_iter_next(&it)) == 1)
      if ((rc = sbuf_push(b, it.t, it.v)) != 0) return rc;
    if (rc < 0) return rc;
  }
  return 0;
}

/* Thanos's ApplyCounterResetsSeriesIterator over the counter aggregates of
 * |c|: a monotonic total into |b|; the last raw value to |*last_raw|. */
static int expand_counter(const tsdb_chunk *c, size_t n, sbuf *b, double *last_raw) {
  b->n = 0;
  uint64_t total = 0;
  int64_t last_t = INT64_MIN;
  double last_v = 0, total_v = 0;
  for (size_t i = 0; i < n; i++) {
    tsdb_xor_iter it;
    int rc = tsdb_aggr_iter_init(&it, c[i].data, c[i].len, TSDB_AGGR_COUNTER);
    if (rc == ORR_ENOTFOUND) continue;
    if (rc) return rc;
    while ((rc = tsdb_xor_iter_next(&it)) == 1) {
      int64_t t = it.t;
      double v = it.v;
      if (isnan(v)) continue;
      if (total == 0) {
        total = 1;
        last_t = t;
        last_v = v;
        total_v = v;
        if ((rc = sbuf_push(b, t, total_v)) != 0) return rc;
      } else if (t > last_t) {
        total_v += v >= last_v ? v - last_v : v;
        last_t = t;
        last_v = v;
        total++;
        if ((rc = sbuf_push(b, t, total_v)) != 0) return rc;
      } else {
        last_v = v; /* the repeated last raw value (note 2) */
      }
    }
    if (rc < 0) return rc;
  }
  *last_raw = last_v;
  return 0;
}

typedef struct one {
  tsdb_aggr_appender *app;
  tsdb_aggr_type t;
  int64_t *mint, *maxt;
  int err;
} one;

static void emit_one(void *arg, int64_t t, const aggr *a) {
  one *o = arg;
  if (t < *o->mint) *o->mint = t;
  if (t > *o->maxt) *o->maxt = t;
  double v = o->t == TSDB_AGGR_COUNT || o->t == TSDB_AGGR_SUM ? a->sum
             : o->t == TSDB_AGGR_MIN                          ? a->min
                                                              : a->max;
  int rc = tsdb_aggr_append(o->app, o->t, t, v);
  if (rc && !o->err) o->err = rc;
}

static int aggr_batch(const tsdb_chunk *c, size_t n, int64_t res, sbuf *buf, tsdb_chunk **out,
                      size_t *nout, size_t *cap) {
  builder b = {.mint = INT64_MAX, .maxt = INT64_MIN};
  int rc = tsdb_aggr_appender_init(&b.app);
  static const tsdb_aggr_type plain[] = {TSDB_AGGR_COUNT, TSDB_AGGR_SUM, TSDB_AGGR_MIN,
                                         TSDB_AGGR_MAX};
  for (size_t k = 0; rc == 0 && k < 4; k++) {
    if ((rc = expand(c, n, plain[k], buf)) != 0 || buf->n == 0) break;
    one o = {&b.app, plain[k], &b.mint, &b.maxt, 0};
    downsample_batch(buf->v, buf->n, res, emit_one, &o);
    rc = o.err;
  }
  double last_raw = 0;
  if (rc == 0) rc = expand_counter(c, n, buf, &last_raw);
  if (rc == 0 && buf->n > 0) {
    rc = tsdb_aggr_append(&b.app, TSDB_AGGR_COUNTER, buf->v[0].t, buf->v[0].v);
    one o = {&b.app, TSDB_AGGR_COUNTER, &b.mint, &b.maxt, 0};
    int64_t last_t = rc ? 0 : downsample_batch(buf->v, buf->n, res, emit_one, &o);
    if (rc == 0) rc = o.err;
    if (rc == 0) rc = tsdb_aggr_append(&b.app, TSDB_AGGR_COUNTER, last_t, last_raw);
  }
  if (rc == 0 && b.mint != INT64_MAX) rc = builder_finish(&b, out, nout, cap);
  tsdb_aggr_appender_free(&b.app);
  return rc;
}

int tsdb_downsample_aggr(const tsdb_chunk *c, size_t n, int64_t res, tsdb_chunk **out,
                         size_t *nout) {
  *out = NULL;
  *nout = 0;
  if (n == 0) return 0;
  if (res <= 0) return ORR_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (c[i].enc != TSDB_ENC_AGGR) return ORR_EUNSUPPORTED;
  size_t windows = (size_t)((c[n - 1].maxt - c[0].mint) / res) + 1;
  size_t nchunks = target_chunks(windows);
  size_t batch = n / nchunks;
  if (batch == 0) batch = 1;
  sbuf buf = {0};
  size_t cap = 0;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i += batch) {
    size_t j = n - i < batch ? n - i : batch;
    rc = aggr_batch(c + i, j, res, &buf, out, nout, &cap);
  }
  free(buf.v);
  if (rc) {
    tsdb_chunks_free(*out, *nout);
    *out = NULL;
    *nout = 0;
  }
  return rc;
}

/* ---------------------------------------------------------------- a block */

int tsdb_downsample(const char *parent, const char *dir, int64_t res, const tsdb_meta *thanos,
                    tsdb_compact_result *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  tsdb_block *b = NULL;
  orr_arena *a = orr_arena_new(0), *ma = orr_arena_new(0);
  tsdb_chunk_writer *cw = NULL;
  tsdb_index_writer *iw = NULL;
  tsdb_series_set *ss = NULL;
  tsdb_index_chunk_meta *metas = NULL;
  size_t capm = 0;
  uint64_t read_bytes = 0; /* chunk bytes since the last release */
  sbuf samples = {0};
  char tmpdir[4096 + 32] = "", finaldir[4096], path[4096 + 64];
  int rc = a && ma ? 0 : ORR_ENOMEM;
  if (rc) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  if ((rc = tsdb_block_open(dir, &b, err, errlen)) != 0) goto out;
  const tsdb_meta *im = tsdb_block_meta(b);
  int64_t inres = im->has_thanos ? im->thanos.downsample_resolution : 0;
  if (inres >= res) {
    snprintf(err, errlen, "%s: resolution %lld is not below %lld", dir, (long long)inres,
             (long long)res);
    rc = ORR_EINVAL;
    goto out;
  }
  if ((rc = tsdb_ulid_new(orr_now_ms(), &out->ulid)) != 0) goto out;
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_ulid_format(&out->ulid, id);
  snprintf(finaldir, sizeof(finaldir), "%s/%s", parent, id);
  snprintf(tmpdir, sizeof(tmpdir), "%s%s", finaldir, TSDB_BLOCK_TMP_SUFFIX);
  if (mkdir(tmpdir, 0777) != 0) {
    snprintf(err, errlen, "mkdir %s: %s", tmpdir, strerror(errno));
    tmpdir[0] = 0;
    rc = ORR_EIO;
    goto out;
  }
  snprintf(path, sizeof(path), "%s/chunks", tmpdir);
  if ((rc = tsdb_chunk_writer_open(path, 0, &cw, err, errlen)) != 0) goto out;
  snprintf(path, sizeof(path), "%s/index", tmpdir);
  if ((rc = tsdb_index_writer_open(path, &iw)) != 0) {
    snprintf(err, errlen, "%s: %s", path, orr_strerror(rc));
    goto out;
  }
  const tsdb_index_reader *ir = tsdb_block_index(b);
  for (uint32_t i = 0; rc == 0 && i < tsdb_index_num_symbols(ir); i++) {
    const char *s;
    size_t n;
    if ((rc = tsdb_index_symbol(ir, i, &s, &n)) == 0) rc = tsdb_index_writer_add_symbol(iw, s, n);
  }
  if (rc) {
    snprintf(err, errlen, "%s/index: symbols: %s", dir, orr_strerror(rc));
    goto out;
  }
  if ((rc = tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss)) != 0) {
    snprintf(err, errlen, "%s: selecting series: %s", dir, orr_strerror(rc));
    goto out;
  }
  const tsdb_series *s;
  int more;
  while ((more = tsdb_series_set_next(ss, &s)) == 1) {
    tsdb_chunk *oc = NULL;
    size_t noc = 0;
    bool fast = inres == 0 && !s->deleted;
    for (size_t i = 0; fast && i < s->nchunks; i++)
      if (s->chunks[i].enc != TSDB_ENC_XOR) fast = false;
    if (fast) {
      /* Whole XOR chunks, nothing deleted: decode them straight, two at a
       * time (tsdb_xor_decode2), each at its offset from the headers. */
      size_t total = 0;
      for (size_t i = 0; rc == 0 && i < s->nchunks; i++) {
        uint16_t cnt;
        if ((rc = tsdb_xor_num_samples(s->chunks[i].data, s->chunks[i].len, &cnt)) == 0)
          total += cnt;
      }
      while (rc == 0 && samples.cap < total + 1) rc = sbuf_grow(&samples);
      samples.n = 0;
      for (size_t i = 0; rc == 0 && i < s->nchunks; i += 2) {
        const tsdb_chunk *c1 = &s->chunks[i];
        int k1 = 0, k2 = 0;
        if (i + 1 < s->nchunks) {
          const tsdb_chunk *c2 = &s->chunks[i + 1];
          uint16_t cnt1 = 0;
          tsdb_xor_num_samples(c1->data, c1->len, &cnt1);
          tsdb_sample *d1 = samples.v + samples.n, *d2 = d1 + cnt1;
          rc = tsdb_xor_decode2(c1->data, c1->len, d1, cnt1, &k1, c2->data, c2->len, d2,
                                samples.cap - samples.n - cnt1, &k2);
        } else {
          k1 = tsdb_xor_decode(c1->data, c1->len, samples.v + samples.n,
                               samples.cap - samples.n);
          if (k1 < 0) rc = k1;
        }
        if (rc == 0) samples.n += (size_t)k1 + (size_t)k2;
      }
      /* Thanos drops stale markers before it sizes the chunks; they are
       * rare, so look for one first (a read-only pass). */
      size_t stale = 0;
      for (size_t x = 0; rc == 0 && x < samples.n; x++) stale += is_stale(samples.v[x].v);
      if (stale) {
        size_t kept = 0;
        for (size_t x = 0; x < samples.n; x++)
          if (!is_stale(samples.v[x].v)) samples.v[kept++] = samples.v[x];
        samples.n = kept;
      }
      if (rc == 0) rc = tsdb_downsample_raw(samples.v, samples.n, res, &oc, &noc);
    } else if (inres == 0) {
      samples.n = 0;
      tsdb_series_iter it;
      tsdb_series_iter_init(&it, s);
      int r;
      while ((r = tsdb_series_iter_next(&it)) == 1)
        if (!is_stale(it.v) && (rc = sbuf_push(&samples, it.t, it.v)) != 0) break;
      if (rc == 0 && r < 0) rc = r;
      if (rc == 0) rc = tsdb_downsample_raw(samples.v, samples.n, res, &oc, &noc);
    } else {
      rc = tsdb_downsample_aggr(s->chunks, s->nchunks, res, &oc, &noc);
    }
    if (rc == 0 && noc > capm) {
      tsdb_index_chunk_meta *nm = realloc(metas, noc * sizeof(*nm));
      if (!nm) rc = ORR_ENOMEM;
      else {
        metas = nm;
        capm = noc;
      }
    }
    for (size_t i = 0; rc == 0 && i < noc; i++) {
      uint64_t ref;
      if ((rc = tsdb_chunk_writer_add(cw, &oc[i], &ref)) == 0) {
        metas[i] = (tsdb_index_chunk_meta){oc[i].mint, oc[i].maxt, ref};
        out->num_samples += tsdb__chunk_samples(&oc[i]);
      }
    }
    if (rc == 0 && noc > 0) {
      rc = tsdb_index_writer_add_series(iw, &s->labels, metas, noc, NULL);
      out->num_series++;
      out->num_chunks += noc;
    }
    tsdb_chunks_free(oc, noc);
    for (size_t i = 0; i < s->nchunks; i++) read_bytes += s->chunks[i].len;
    if (read_bytes >= TSDB__RELEASE_BYTES) {
      tsdb__chunk_reader_release(tsdb_block_chunks(b));
      read_bytes = 0;
    }
    if (rc) {
      snprintf(err, errlen, "%s: downsampling series %llu: %s", dir, (unsigned long long)s->ref,
               orr_strerror(rc));
      goto out;
    }
  }
  if (more < 0) {
    rc = more;
    snprintf(err, errlen, "%s", tsdb_series_set_error(ss));
    goto out;
  }
  rc = tsdb_chunk_writer_close(cw, err, errlen);
  cw = NULL;
  if (rc) goto out;
  if ((rc = tsdb_index_writer_finish(iw)) != 0) {
    snprintf(err, errlen, "%s/index: %s", tmpdir, orr_strerror(rc));
    goto out;
  }
  if (out->num_samples == 0) {
    out->empty = true;
    goto out;
  }
  /* meta.json: the source's range, level and sources; a new ULID. */
  tsdb_meta m = *im;
  m.ulid = out->ulid;
  m.num_samples = out->num_samples;
  m.num_series = out->num_series;
  m.num_chunks = out->num_chunks;
  m.num_tombstones = 0;
  m.has_thanos = true;
  m.thanos.version = 1;
  m.thanos.downsample_resolution = res;
  if (thanos && thanos->has_thanos) {
    m.thanos.labels = thanos->thanos.labels;
    m.thanos.source = thanos->thanos.source;
  }
  m.thanos.files = NULL;
  m.thanos.nfiles = 0;
  const char *seg[1] = {"000001"};
  m.thanos.segment_files = seg; /* refreshed below when there are more */
  m.thanos.nsegment_files = 1;
  snprintf(path, sizeof(path), "%s/chunks/000002", tmpdir);
  struct stat st;
  if (stat(path, &st) == 0) {
    /* more than one segment: list them */
    size_t nseg = 0;
    const char **segs = orr_arena_calloc(ma, 4096, sizeof(*segs));
    for (size_t i = 1; segs && i < 4096; i++) {
      snprintf(path, sizeof(path), "%s/chunks/%06zu", tmpdir, i);
      if (stat(path, &st) != 0) break;
      segs[nseg++] = orr_arena_sprintf(ma, "%06zu", i);
    }
    m.thanos.segment_files = segs;
    m.thanos.nsegment_files = nseg;
  }
  tsdb_tombstones none = {0};
  if ((rc = tsdb_tombstones_write_dir(tmpdir, &none)) != 0 ||
      (rc = tsdb_meta_write_dir(tmpdir, &m)) != 0) {
    snprintf(err, errlen, "%s: writing meta.json: %s", tmpdir, orr_strerror(rc));
    goto out;
  }
  snprintf(path, sizeof(path), "%s/chunks", tmpdir);
  if (tsdb__fsync_path(path, true) || tsdb__fsync_path(tmpdir, true) ||
      rename(tmpdir, finaldir) != 0) {
    snprintf(err, errlen, "committing %s: %s", finaldir, strerror(errno));
    rc = ORR_EIO;
    goto out;
  }
  tmpdir[0] = 0;
  if (tsdb__fsync_path(parent, true)) {
    snprintf(err, errlen, "fsync %s: %s", parent, strerror(errno));
    rc = ORR_EIO;
  }
out:
  if (ss) tsdb_series_set_close(ss);
  if (cw) tsdb_chunk_writer_close(cw, NULL, 0);
  if (iw) tsdb_index_writer_free(iw);
  if (tmpdir[0]) orr_remove_tree(tmpdir);
  free(metas);
  free(samples.v);
  tsdb_block_close(b);
  orr_arena_destroy(a);
  orr_arena_destroy(ma);
  return rc;
}
