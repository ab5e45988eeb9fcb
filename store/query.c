/* query.c: one Series, LabelNames or LabelValues call over the loaded
 * blocks, run on a worker thread: postings, series and chunks come from the
 * bucket by ranged reads (ranges merged across gaps up to 512 KiB, the parts
 * of one read fetched concurrently), through the index cache.
 *
 * NOTES
 * 1. Limits are checked before the memory they guard is spent: the series
 *    limit against the postings sizes the index-header gives (exact for a
 *    lone matcher: the lists of one label's values are disjoint) and again
 *    after intersecting; the samples limit against the chunks to fetch (120
 *    samples a chunk, as Thanos estimates); the downloaded-bytes limit and
 *    the chunk pool before each read.
 * 4. Postings are fetched lazily (Thanos's lazy expanded postings): a
 *    matcher whose lists are much larger than those of the narrowest
 *    positive matcher is not turned into postings; it filters the series
 *    read instead (a series' labels decide any matcher exactly), so a wide
 *    matcher such as pod!="" beside a narrow one costs no postings reads.
 * 2. Series of one block come in index (label) order; blocks' series are
 *    joined, sorted by their labels with the external labels added, and
 *    equal label sets merged (chunks by time, identical chunks once).
 * 3. A chunk is passed as stored: XOR chunks as `raw`, aggregate chunks of
 *    downsampled blocks split into the aggregates the request asks for. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define GAP_MAX (512u * 1024)           /* merge ranges across gaps up to this */
#define SERIES_EST (64u * 1024)          /* bytes read for a series of unknown size */
#define CHUNK_EST (16u * 1024)           /* bytes read for a chunk of unknown size */
#define SAMPLES_PER_CHUNK 120
#define FETCH_THREADS 8

enum { D_POSTINGS = 0, D_SERIES, D_CHUNKS };

/* ---------------------------------------------------------------- fetching */
typedef struct part {
  uint64_t start, end; /* byte range of the object */
  orr_buf data;
  int rc;
  char err[512];
} part;

typedef struct fetch_job {
  store_query *q;
  const char *key;
  part *parts;
  size_t n;
  atomic_size_t next;
} fetch_job;

static void *fetch_worker(void *arg) {
  fetch_job *j = arg;
  for (;;) {
    size_t i = atomic_fetch_add(&j->next, 1);
    if (i >= j->n) break;
    part *p = &j->parts[i];
    if (j->q->cancelled && atomic_load(j->q->cancelled)) {
      p->rc = ORR_ECANCELED;
      continue;
    }
    p->rc = objstore_get_range(j->q->bucket, j->key, p->start, p->end - p->start, &p->data,
                               p->err, sizeof p->err);
  }
  return NULL;
}

static int fail(store_query *q, int status, int rc, const char *fmt, ...) ORR_PRINTF(4, 5);
static int fail(store_query *q, int status, int rc, const char *fmt, ...) {
  if (q->status == NET_GRPC_OK) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->err, sizeof q->err, fmt, ap);
    va_end(ap);
    q->status = status;
  }
  return rc;
}

/* The pool (--chunk-pool-size) bounds the bytes every query in flight holds:
 * the buffers of its reads (released after each block) and its answer
 * (held until it is sent). Taken before the memory is. */
static int pool_take(store_query *q, int64_t bytes) {
  if (bytes <= 0) return 0;
  int64_t used = atomic_fetch_add(q->pool_used, bytes) + bytes;
  q->pool_reserved += bytes;
  if (q->cfg->chunk_pool_size > 0 && used > q->cfg->chunk_pool_size) {
    if (q->m) orr_counter_inc(q->m->dropped_pool);
    return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ELIMIT,
                "chunk pool exhausted (--chunk-pool-size %" PRId64 "): %" PRId64
                " bytes wanted by queries in flight", q->cfg->chunk_pool_size, used);
  }
  return 0;
}

static void pool_give(store_query *q, int64_t bytes) {
  if (bytes <= 0) return;
  atomic_fetch_sub(q->pool_used, bytes);
  q->pool_reserved -= bytes;
}

/* After a block: its read buffers are gone, its answer stays. */
static int pool_settle(store_query *q) {
  pool_give(q, q->pool_transient);
  q->pool_transient = 0;
  int64_t held = (int64_t)orr_arena_reserved(q->a);
  int rc = pool_take(q, held - q->pool_arena);
  q->pool_arena = held;
  return rc;
}

/* Reads |n| parts of object |file| of block |b| (concurrently when more than
 * one), counting bytes against the limit first. */
static int fetch_parts(store_query *q, store_block *b, const char *file, part *parts, size_t n,
                       int dtype) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += parts[i].end - parts[i].start;
  if (q->cfg->downloaded_bytes_limit > 0 &&
      q->stats_bytes + total > (uint64_t)q->cfg->downloaded_bytes_limit) {
    if (q->m) orr_counter_inc(q->m->dropped_bytes);
    return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ELIMIT,
                "exceeded bytes limit (--store.grpc.downloaded-bytes-limit): limit %" PRId64
                " violated (got at least %" PRIu64 ")",
                q->cfg->downloaded_bytes_limit, q->stats_bytes + total);
  }
  int64_t held = (int64_t)orr_arena_reserved(q->a);
  int prc = pool_take(q, held - q->pool_arena);
  q->pool_arena = held;
  if (prc) return prc;
  prc = pool_take(q, (int64_t)total);
  q->pool_transient += (int64_t)total;
  if (prc) return prc;
  char key[128];
  snprintf(key, sizeof key, "%s/%s", b->id, file);
  fetch_job j = {.q = q, .key = key, .parts = parts, .n = n};
  atomic_init(&j.next, 0);
  size_t nt = n > 1 ? (n < FETCH_THREADS ? n - 1 : FETCH_THREADS - 1) : 0;
  pthread_t th[FETCH_THREADS];
  size_t started = 0;
  for (size_t i = 0; i < nt; i++)
    if (pthread_create(&th[started], NULL, fetch_worker, &j) == 0) started++;
  fetch_worker(&j);
  for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
  uint64_t got = 0;
  for (size_t i = 0; i < n; i++) {
    if (parts[i].rc == ORR_ECANCELED)
      return fail(q, NET_GRPC_CANCELLED, ORR_ECANCELED, "cancelled");
    if (parts[i].rc)
      return fail(q, NET_GRPC_UNAVAILABLE, parts[i].rc,
                  "store: block %s: read %s of bucket %s: %s", b->id, file,
                  objstore_name(q->bucket), parts[i].err[0] ? parts[i].err
                                                             : orr_strerror(parts[i].rc));
    got += parts[i].data.len;
  }
  q->stats_bytes += got;
  if (q->m) {
    orr_histogram_observe(q->m->fetched_bytes[dtype], (double)got);
  }
  return 0;
}

static void parts_free(part *p, size_t n) {
  for (size_t i = 0; i < n; i++) orr_buf_free(&p[i].data);
  free(p);
}

/* Ranges (sorted by start) merged across gaps up to GAP_MAX into parts;
 * |idx[i]| gets the part of range i. Caller frees with parts_free. */
static part *merge_ranges(const uint64_t *start, const uint64_t *end, size_t n, size_t *idx,
                          size_t *nparts) {
  part *p = calloc(n ? n : 1, sizeof(*p));
  if (!p) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (k > 0 && start[i] <= p[k - 1].end + GAP_MAX) {
      if (end[i] > p[k - 1].end) p[k - 1].end = end[i];
    } else {
      p[k].start = start[i];
      p[k].end = end[i];
      k++;
    }
    idx[i] = k - 1;
  }
  *nparts = k;
  return p;
}

/* ---------------------------------------------------------------- postings */
typedef struct qblock {
  store_query *q;
  store_block *b;
  labels_matcher **ms; /* matchers left after the external labels */
  size_t nms;
  labels_matcher **post; /* of those, the ones applied to series labels (note 4) */
  size_t npost;
  bool match; /* false: an external label rejects the block */
} qblock;

static int src_values(void *arg, const char *name, orr_arena *a, const char ***v, size_t *n) {
  qblock *qb = arg;
  return tsdb_index_label_values(tsdb_index_header_reader(qb->b->hdr), name, a, v, n);
}

static size_t cache_key(char *buf, size_t cap, const store_block *b, const char *name,
                        const char *value) {
  int n = snprintf(buf, cap, "%s\x01%s\x01%s", b->id, name, value);
  return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static int src_postings(void *arg, const char *name, const char *const *values, size_t n,
                        orr_arena *a, tsdb_postings **out) {
  qblock *qb = arg;
  store_query *q = qb->q;
  tsdb_postings **its = orr_arena_alloc(a, (n ? n : 1) * sizeof(*its));
  uint64_t *st = calloc(n ? n : 1, sizeof(*st)), *en = calloc(n ? n : 1, sizeof(*en));
  size_t *vi = calloc(n ? n : 1, sizeof(*vi)), *idx = calloc(n ? n : 1, sizeof(*idx));
  part *parts = NULL;
  size_t nits = 0, nmiss = 0, nparts = 0;
  int rc = 0;
  char kb[4096];
  if (!its || !st || !en || !vi || !idx) {
    rc = ORR_ENOMEM;
    goto out;
  }
  /* Cached lists first; the others' ranges are sorted (table order). */
  for (size_t i = 0; i < n; i++) {
    uint64_t s, e;
    int r = tsdb_index_header_postings_range(qb->b->hdr, name, values[i], &s, &e);
    if (r == ORR_ENOTFOUND) continue;
    if (r) {
      rc = fail(q, NET_GRPC_INTERNAL, r, "store: block %s: index-header: %s", qb->b->id,
                orr_strerror(r));
      goto out;
    }
    size_t kl = cache_key(kb, sizeof kb, qb->b, name, values[i]);
    orr_buf cb = {0};
    if (kl && store_cache_get(q->cache, STORE_CACHE_POSTINGS, kb, kl, &cb)) {
      /* Checked when it was read; iterated in place (galloping seeks). */
      uint8_t *m = orr_arena_alloc(a, cb.len);
      r = m ? 0 : ORR_ENOMEM;
      if (m) {
        memcpy(m, cb.data, cb.len);
        r = tsdb_postings_list_open(m, cb.len, false, a, &its[nits]);
      }
      orr_buf_free(&cb);
      if (r == 0) {
        nits++;
        continue;
      }
      if (r == ORR_ENOMEM) {
        rc = r;
        goto out;
      }
    }
    orr_buf_free(&cb);
    st[nmiss] = s;
    en[nmiss] = e;
    vi[nmiss++] = i;
  }
  if (nmiss) {
    /* Values of a label come in table order, so ranges ascend; keep it so
     * even for a caller that passes them otherwise. */
    for (size_t i = 1; i < nmiss; i++) {
      for (size_t j = i; j > 0 && st[j - 1] > st[j]; j--) {
        uint64_t t = st[j]; st[j] = st[j - 1]; st[j - 1] = t;
        t = en[j]; en[j] = en[j - 1]; en[j - 1] = t;
        size_t u = vi[j]; vi[j] = vi[j - 1]; vi[j - 1] = u;
      }
    }
    if (!(parts = merge_ranges(st, en, nmiss, idx, &nparts))) {
      rc = ORR_ENOMEM;
      goto out;
    }
    if ((rc = fetch_parts(q, qb->b, "index", parts, nparts, D_POSTINGS)) != 0) goto out;
    if (q->m) orr_histogram_observe(q->m->fetched[D_POSTINGS], (double)nmiss);
    for (size_t i = 0; i < nmiss; i++) {
      part *p = &parts[idx[i]];
      uint64_t off = st[i] - p->start;
      if (off > p->data.len) off = p->data.len;
      const uint8_t *bytes = (const uint8_t *)p->data.data + off;
      size_t avail = p->data.len - off;
      /* The list (length, entries, CRC) outlives the read buffer. */
      size_t ll = avail >= 4 ? ((size_t)bytes[0] << 24 | (size_t)bytes[1] << 16 |
                                (size_t)bytes[2] << 8 | bytes[3]) + 8 : avail;
      if (ll > avail) ll = avail;
      uint8_t *m = orr_arena_alloc(a, ll ? ll : 1);
      if (!m) {
        rc = ORR_ENOMEM;
        goto out;
      }
      memcpy(m, bytes, ll);
      int r = tsdb_postings_list_open(m, ll, true, a, &its[nits]);
      if (r == ORR_ENOMEM) {
        rc = r;
        goto out;
      }
      if (r) {
        rc = fail(q, NET_GRPC_INTERNAL, r, "store: block %s: postings %s=%s: %s", qb->b->id, name,
                  values[vi[i]], tsdb_index_last_error());
        goto out;
      }
      nits++;
      size_t kl = cache_key(kb, sizeof kb, qb->b, name, values[vi[i]]);
      if (kl) store_cache_put(q->cache, STORE_CACHE_POSTINGS, kb, kl, m, ll);
    }
  }
  for (size_t i = 0; i < nits; i++)
    if (!its[i]) {
      rc = ORR_ENOMEM;
      goto out;
    }
  *out = tsdb_postings_merge(a, its, nits);
  if (!*out) rc = ORR_ENOMEM;
out:
  if (parts) parts_free(parts, nparts);
  free(st);
  free(en);
  free(vi);
  free(idx);
  if (rc == ORR_ENOMEM) fail(q, NET_GRPC_RESOURCE_EXHAUSTED, rc, "out of memory");
  return rc;
}

/* Series count of the lists |m| selects (no read: from the ranges): exact
 * for a positive matcher that rejects "" (one value per series). -1 when
 * the matcher is not of that kind. */
static int64_t matcher_bound(qblock *qb, const labels_matcher *m, orr_arena *a) {
  labels_match_type t = labels_matcher_type(m);
  if ((t != LABELS_MATCH_EQ && t != LABELS_MATCH_RE) || labels_matcher_matches_empty(m)) return -1;
  const char *name = labels_matcher_name(m);
  const char **vals;
  size_t nv;
  if (tsdb_index_label_values(tsdb_index_header_reader(qb->b->hdr), name, a, &vals, &nv)) return -1;
  int64_t total = 0;
  for (size_t i = 0; i < nv; i++) {
    if (!labels_matcher_matches(m, vals[i], strlen(vals[i]))) continue;
    uint64_t s, e;
    if (tsdb_index_header_postings_range(qb->b->hdr, name, vals[i], &s, &e)) continue;
    if (e - s >= 12) total += (int64_t)((e - s - 12) / 4);
  }
  return total;
}

/* Entries of the postings lists the selection would read for |m| (from
 * the header's ranges, no read): the values it accepts, or for a matcher
 * that accepts "" the values it rejects. */
static uint64_t list_entries(qblock *qb, const char *name, const char *value) {
  uint64_t s, e;
  if (tsdb_index_header_postings_range(qb->b->hdr, name, value, &s, &e)) return 0;
  return e - s >= 12 ? (e - s - 12) / 4 : 0;
}

static uint64_t fetch_cost(qblock *qb, const labels_matcher *m, orr_arena *a) {
  const char *name = labels_matcher_name(m);
  labels_match_type t = labels_matcher_type(m);
  bool empty = labels_matcher_matches_empty(m);
  if (t == LABELS_MATCH_EQ && !empty) return list_entries(qb, name, labels_matcher_value(m));
  if (t == LABELS_MATCH_NEQ && empty) return list_entries(qb, name, labels_matcher_value(m));
  const char *const *set;
  size_t nset = t == LABELS_MATCH_RE && !empty ? labels_matcher_set_values(m, &set) : 0;
  if (nset) {
    uint64_t c = 0;
    for (size_t i = 0; i < nset; i++) c += list_entries(qb, name, set[i]);
    return c;
  }
  const char **vals;
  size_t nv;
  if (tsdb_index_label_values(tsdb_index_header_reader(qb->b->hdr), name, a, &vals, &nv))
    return UINT64_MAX;
  uint64_t c = 0;
  for (size_t i = 0; i < nv; i++)
    if (labels_matcher_matches(m, vals[i], strlen(vals[i])) != empty)
      c += list_entries(qb, name, vals[i]);
  return c;
}

/* Note 4: keeps the narrowest positive matcher (and any not much wider)
 * for the postings; the others filter series. */
static int plan_lazy(qblock *qb, orr_arena *a) {
  if (qb->nms < 2) return 0;
  uint64_t *cost = orr_arena_alloc(a, qb->nms * sizeof(*cost));
  labels_matcher **keep = orr_arena_alloc(a, qb->nms * sizeof(*keep));
  qb->post = orr_arena_alloc(a, qb->nms * sizeof(*qb->post));
  if (!cost || !keep || !qb->post) return ORR_ENOMEM;
  uint64_t min = UINT64_MAX;
  size_t at = 0;
  for (size_t i = 0; i < qb->nms; i++) {
    cost[i] = fetch_cost(qb, qb->ms[i], a);
    labels_match_type t = labels_matcher_type(qb->ms[i]);
    bool positive = (t == LABELS_MATCH_EQ || t == LABELS_MATCH_RE) &&
                    !labels_matcher_matches_empty(qb->ms[i]);
    if (positive && cost[i] < min) {
      min = cost[i];
      at = i;
    }
  }
  if (min == UINT64_MAX) return 0; /* no positive matcher bounds the answer */
  size_t nk = 0;
  for (size_t i = 0; i < qb->nms; i++) {
    if (i != at && cost[i] > 4 * min && cost[i] > 1024)
      qb->post[qb->npost++] = qb->ms[i];
    else
      keep[nk++] = qb->ms[i];
  }
  qb->ms = keep;
  qb->nms = nk;
  return 0;
}

static int block_postings(qblock *qb, orr_arena *a, uint64_t **refs, size_t *n) {
  tsdb_postings_source src = {src_values, src_postings, qb};
  tsdb_postings *p;
  int rc = plan_lazy(qb, a);
  if (rc) return fail(qb->q, NET_GRPC_RESOURCE_EXHAUSTED, rc, "out of memory");
  if (qb->nms == 0) {
    const char *v = "";
    rc = src_postings(qb, "", &v, 1, a, &p);
  } else {
    rc = tsdb_select_postings(&src, qb->ms, qb->nms, a, &p);
  }
  if (rc) return rc;
  rc = tsdb_postings_expand(p, a, refs, n);
  if (rc == ORR_ENOMEM) fail(qb->q, NET_GRPC_RESOURCE_EXHAUSTED, rc, "out of memory");
  return rc;
}

/* ---------------------------------------------------------------- series */
typedef struct qseries {
  labels_set lset; /* with external labels */
  tsdb_index_chunk_meta *chks;
  size_t nchks;
  Thanos__AggrChunk **out;
  size_t nout;
  const store_block *b;
} qseries;

/* Reads the series entries |refs| of block |qb| (cache first) and decodes
 * them into |*out| (from |a|). Chunks outside the query's range are
 * dropped, and so are series left without any (label calls keep all). */
static int block_series(qblock *qb, const uint64_t *refs, size_t n, orr_arena *a, qseries **out,
                        size_t *nout) {
  store_query *q = qb->q;
  store_block *b = qb->b;
  /* Nothing here needs zeroing: fresh pages cost a fault each (perf). */
  qseries *v = orr_arena_alloc(a, (n ? n : 1) * sizeof(*v));
  uint64_t *st = malloc((n ? n : 1) * sizeof(*st)), *en = malloc((n ? n : 1) * sizeof(*en));
  size_t *mi = malloc((n ? n : 1) * sizeof(*mi)), *idx = malloc((n ? n : 1) * sizeof(*idx));
  /* Cached entries, one after the other in |cbuf|: |coff|/|clen| (0: a miss). */
  size_t *coff = malloc((n ? n : 1) * sizeof(*coff)), *clen = malloc((n ? n : 1) * sizeof(*clen));
  orr_buf cbuf = {0};
  part *parts = NULL;
  size_t nmiss = 0, nparts = 0, k = 0;
  int rc = 0;
  if (!v || !st || !en || !mi || !idx || !coff || !clen) {
    rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    goto out;
  }
  uint64_t est = b->meta.thanos.index_series_max_size > 0
                     ? (uint64_t)b->meta.thanos.index_series_max_size
                     : SERIES_EST;
  for (size_t i = 0; i < n; i++) {
    char kb[64];
    int kl = snprintf(kb, sizeof kb, "%s\x01%" PRIu64, b->id, refs[i]);
    coff[i] = cbuf.len;
    clen[i] = 0;
    if (store_cache_get(q->cache, STORE_CACHE_SERIES, kb, (size_t)kl, &cbuf)) {
      clen[i] = cbuf.len - coff[i];
      if (clen[i]) continue;
    }
    st[nmiss] = refs[i] * 16;
    en[nmiss] = i + 1 < n ? refs[i + 1] * 16 : st[nmiss] + est;
    if (en[nmiss] > st[nmiss] + est) en[nmiss] = st[nmiss] + est;
    if (en[nmiss] > b->index_size) en[nmiss] = b->index_size;
    mi[nmiss++] = i;
  }
  if (nmiss) {
    if (!(parts = merge_ranges(st, en, nmiss, idx, &nparts))) {
      rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
      goto out;
    }
    if ((rc = fetch_parts(q, b, "index", parts, nparts, D_SERIES)) != 0) goto out;
    if (q->m) orr_histogram_observe(q->m->fetched[D_SERIES], (double)nmiss);
  }
  size_t j = 0; /* next missing entry */
  for (size_t i = 0; i < n; i++) {
    const uint8_t *bytes;
    size_t avail;
    orr_buf extra = {0};
    bool from_cache = clen[i] > 0;
    if (from_cache) {
      bytes = (const uint8_t *)cbuf.data + coff[i];
      avail = clen[i];
    } else {
      part *p = &parts[idx[j++]];
      uint64_t off = refs[i] * 16 - p->start;
      if (off > p->data.len) off = p->data.len;
      bytes = (const uint8_t *)p->data.data + off;
      avail = p->data.len - off;
    }
    qseries *s = &v[k];
    labels_set ls;
    size_t need = 0;
    int r = tsdb_index_header_series(b->hdr, bytes, avail, refs[i], a, &ls, &s->chks, &s->nchks,
                                     &need);
    if (r == ORR_EAGAIN && !from_cache) {
      /* Longer than estimated: read it whole. */
      part one = {.start = refs[i] * 16, .end = refs[i] * 16 + need};
      if ((rc = fetch_parts(q, b, "index", &one, 1, D_SERIES)) != 0) {
        orr_buf_free(&one.data);
        goto out;
      }
      extra = one.data;
      bytes = (const uint8_t *)extra.data;
      avail = extra.len;
      r = tsdb_index_header_series(b->hdr, bytes, avail, refs[i], a, &ls, &s->chks, &s->nchks,
                                   &need);
    }
    if (r == 0 && !from_cache) {
      /* Cache the entry's exact bytes: uvarint length, body, CRC. */
      orr_dec d = orr_dec_make(bytes, avail);
      uint64_t len;
      if (orr_dec_uvarint(&d, &len) == 0) {
        char kb[64];
        int kl = snprintf(kb, sizeof kb, "%s\x01%" PRIu64, b->id, refs[i]);
        store_cache_put(q->cache, STORE_CACHE_SERIES, kb, (size_t)kl, bytes,
                        (size_t)(d.p - bytes) + (size_t)len + 4);
      }
    }
    orr_buf_free(&extra);
    if (r == ORR_ENOMEM) {
      rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, r, "out of memory");
      goto out;
    }
    if (r) {
      rc = fail(q, NET_GRPC_INTERNAL, ORR_ECORRUPT, "store: block %s: series %" PRIu64 ": %s",
                b->id, refs[i], r == ORR_EAGAIN ? "entry cut short" : tsdb_index_last_error());
      goto out;
    }
    if (qb->npost && !labels_matches_all(&ls, qb->post, qb->npost)) continue;
    /* Chunks overlapping the range (inclusive bounds on both sides). */
    size_t kc = 0;
    for (size_t c = 0; c < s->nchks; c++)
      if (s->chks[c].maxt >= q->mint && s->chks[c].mint <= q->maxt) s->chks[kc++] = s->chks[c];
    s->nchks = kc;
    if (kc == 0 && !q->labels_call) continue;
    if ((r = storeapi_labels_extend(&ls, &b->ext, q->drop, q->ndrop, a, &s->lset)) != 0) {
      rc = fail(q, NET_GRPC_INTERNAL, r, "store: block %s: series labels: %s", b->id,
                orr_strerror(r));
      goto out;
    }
    s->b = b;
    s->out = NULL;
    s->nout = 0;
    k++;
  }
  *out = v;
  *nout = k;
out:
  if (parts) parts_free(parts, nparts);
  orr_buf_free(&cbuf);
  free(coff);
  free(clen);
  free(st);
  free(en);
  free(mi);
  free(idx);
  return rc;
}

/* ---------------------------------------------------------------- chunks */
typedef struct cref {
  uint64_t ref;
  qseries *s;
  size_t ci; /* chunk index in s->chks */
} cref;

static int cref_cmp(const void *x, const void *y) {
  uint64_t a = ((const cref *)x)->ref, b = ((const cref *)y)->ref;
  return a < b ? -1 : a > b;
}

static bool wants(const store_query *q, Thanos__Aggr ag) {
  if (q->naggrs == 0) return true;
  for (size_t i = 0; i < q->naggrs; i++)
    if (q->aggrs[i] == ag) return true;
  return false;
}

static Thanos__Chunk *mk_chunk(orr_arena *a, uint8_t enc, const uint8_t *p, size_t n) {
  Thanos__Chunk *c = orr_arena_alloc(a, sizeof(*c));
  uint8_t *d = orr_arena_alloc(a, n ? n : 1);
  if (!c || !d) return NULL;
  thanos__chunk__init(c);
  /* storepb encodings are the TSDB's shifted by one (XOR: 1 → 0). */
  c->type = enc >= 1 && enc <= 3 ? (Thanos__Chunk__Encoding)(enc - 1) : THANOS__CHUNK__ENCODING__XOR;
  memcpy(d, p, n);
  c->data.data = d;
  c->data.len = n;
  return c;
}

/* Fills |ac| from a chunk as stored (|enc|, |p|/|n|). */
static int fill_chunk(store_query *q, const store_block *b, Thanos__AggrChunk *ac, uint8_t enc,
                      const uint8_t *p, size_t n) {
  orr_arena *a = q->a;
  if (enc != TSDB_ENC_AGGR) {
    return (ac->raw = mk_chunk(a, enc, p, n)) ? 0 : ORR_ENOMEM;
  }
  static const struct {
    Thanos__Aggr ag;
    tsdb_aggr_type t;
  } map[] = {{THANOS__AGGR__COUNT, TSDB_AGGR_COUNT}, {THANOS__AGGR__SUM, TSDB_AGGR_SUM},
             {THANOS__AGGR__MIN, TSDB_AGGR_MIN},     {THANOS__AGGR__MAX, TSDB_AGGR_MAX},
             {THANOS__AGGR__COUNTER, TSDB_AGGR_COUNTER}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    if (!wants(q, map[i].ag)) continue;
    tsdb_aggr_sub sub;
    int rc = tsdb_aggr_get(p, n, map[i].t, &sub);
    if (rc == ORR_ENOTFOUND) {
      if (q->naggrs == 0) continue;
      return fail(q, NET_GRPC_INTERNAL, rc, "store: block %s: aggregate %s not found", b->id,
                  tsdb_aggr_name(map[i].t));
    }
    if (rc) return fail(q, NET_GRPC_INTERNAL, rc, "store: block %s: bad aggregate chunk", b->id);
    Thanos__Chunk *c = mk_chunk(a, sub.enc, sub.data, sub.len);
    if (!c) return ORR_ENOMEM;
    switch (map[i].ag) {
      case THANOS__AGGR__COUNT: ac->count = c; break;
      case THANOS__AGGR__SUM: ac->sum = c; break;
      case THANOS__AGGR__MIN: ac->min = c; break;
      case THANOS__AGGR__MAX: ac->max = c; break;
      default: ac->counter = c; break;
    }
  }
  return 0;
}

/* Parses the chunk at |p| (|avail| bytes): uvarint length, encoding, data,
 * CRC32C. ORR_EAGAIN with |*need| when cut short. */
static int parse_chunk(const uint8_t *p, size_t avail, uint8_t *enc, const uint8_t **data,
                       size_t *len, size_t *need) {
  orr_dec d = orr_dec_make(p, avail);
  uint64_t l;
  if (orr_dec_uvarint(&d, &l)) {
    *need = 16;
    return avail >= 10 ? ORR_ECORRUPT : ORR_EAGAIN;
  }
  if (l > (1u << 30)) return ORR_ECORRUPT;
  size_t h = (size_t)(d.p - p);
  if (h + 1 + l + 4 > avail) {
    *need = h + 1 + (size_t)l + 4;
    return ORR_EAGAIN;
  }
  *enc = p[h];
  const uint8_t *crc = p + h + 1 + l;
  uint32_t want = (uint32_t)crc[0] << 24 | (uint32_t)crc[1] << 16 | (uint32_t)crc[2] << 8 | crc[3];
  if (orr_crc32c(0, p + h, (size_t)l + 1) != want) return ORR_ECORRUPT;
  *data = p + h + 1;
  *len = (size_t)l;
  return 0;
}

static int block_chunks(qblock *qb, qseries *ss, size_t n) {
  store_query *q = qb->q;
  store_block *b = qb->b;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += ss[i].nchks;
  if (total == 0) return 0;
  cref *cr = malloc(total * sizeof(*cr));
  uint64_t *st = malloc(total * sizeof(*st)), *en = malloc(total * sizeof(*en));
  size_t *idx = malloc(total * sizeof(*idx));
  part *parts = NULL;
  size_t nparts = 0;
  int rc = 0;
  if (!cr || !st || !en || !idx) {
    rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    goto out;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    ss[i].out = orr_arena_calloc(q->a, ss[i].nchks ? ss[i].nchks : 1, sizeof(*ss[i].out));
    if (!ss[i].out) {
      rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
      goto out;
    }
    for (size_t c = 0; c < ss[i].nchks; c++) cr[k++] = (cref){ss[i].chks[c].ref, &ss[i], c};
  }
  qsort(cr, total, sizeof(*cr), cref_cmp);
  uint64_t est = b->meta.thanos.index_chunk_max_size > 0
                     ? (uint64_t)b->meta.thanos.index_chunk_max_size + 16
                     : CHUNK_EST;
  /* Segment by segment: ranges within one file. */
  for (size_t s0 = 0; s0 < total;) {
    uint64_t seg = cr[s0].ref >> 32;
    size_t s1 = s0;
    while (s1 < total && cr[s1].ref >> 32 == seg) s1++;
    size_t m = s1 - s0;
    for (size_t i = 0; i < m; i++) {
      st[i] = cr[s0 + i].ref & 0xffffffffu;
      en[i] = i + 1 < m ? (cr[s0 + i + 1].ref & 0xffffffffu) : st[i] + est;
      if (en[i] > st[i] + est) en[i] = st[i] + est;
      if (en[i] <= st[i]) en[i] = st[i] + 16;
    }
    if (!(parts = merge_ranges(st, en, m, idx, &nparts))) {
      rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
      goto out;
    }
    char file[32];
    snprintf(file, sizeof file, "chunks/%06" PRIu64, seg + 1);
    if ((rc = fetch_parts(q, b, file, parts, nparts, D_CHUNKS)) != 0) goto out;
    for (size_t i = 0; i < m; i++) {
      part *p = &parts[idx[i]];
      uint64_t off = st[i] - p->start;
      if (off > p->data.len) off = p->data.len;
      const uint8_t *bytes = (const uint8_t *)p->data.data + off, *data = NULL;
      size_t avail = p->data.len - off, len = 0, need = 0;
      uint8_t enc = 0;
      orr_buf extra = {0};
      int r = parse_chunk(bytes, avail, &enc, &data, &len, &need);
      if (r == ORR_EAGAIN) {
        part one = {.start = st[i], .end = st[i] + need};
        if ((rc = fetch_parts(q, b, file, &one, 1, D_CHUNKS)) != 0) {
          orr_buf_free(&one.data);
          goto out;
        }
        extra = one.data;
        r = parse_chunk((const uint8_t *)extra.data, extra.len, &enc, &data, &len, &need);
      }
      if (r) {
        orr_buf_free(&extra);
        rc = fail(q, NET_GRPC_INTERNAL, ORR_ECORRUPT,
                  "store: block %s: chunk %s offset %" PRIu64 ": %s", b->id, file, st[i],
                  r == ORR_EAGAIN ? "cut short" : "corrupt (length or CRC32C)");
        goto out;
      }
      qseries *s = cr[s0 + i].s;
      size_t ci = cr[s0 + i].ci;
      Thanos__AggrChunk *ac = orr_arena_alloc(q->a, sizeof(*ac));
      if (!ac) r = ORR_ENOMEM;
      if (ac) {
        thanos__aggr_chunk__init(ac);
        ac->min_time = s->chks[ci].mint;
        ac->max_time = s->chks[ci].maxt;
        r = fill_chunk(q, b, ac, enc, data, len);
      }
      orr_buf_free(&extra);
      if (r) {
        rc = r == ORR_ENOMEM ? fail(q, NET_GRPC_RESOURCE_EXHAUSTED, r, "out of memory") : r;
        goto out;
      }
      s->out[ci] = ac;
    }
    if (q->m) orr_histogram_observe(q->m->fetched[D_CHUNKS], (double)m);
    parts_free(parts, nparts);
    parts = NULL;
    s0 = s1;
  }
  for (size_t i = 0; i < n; i++) ss[i].nout = ss[i].nchks;
out:
  if (parts) parts_free(parts, nparts);
  free(cr);
  free(st);
  free(en);
  free(idx);
  return rc;
}

/* ---------------------------------------------------------------- per block */
/* Thanos's matchesExternalLabels: matchers on a block's external labels are
 * decided here and left out of the index selection. */
static int split_matchers(store_query *q, qblock *qb) {
  qb->ms = orr_arena_calloc(q->a, q->nmatchers + 1, sizeof(*qb->ms));
  if (!qb->ms) return ORR_ENOMEM;
  qb->match = true;
  for (size_t i = 0; i < q->nmatchers; i++) {
    const char *v = labels_get(&qb->b->ext, labels_matcher_name(q->matchers[i]));
    if (!v) {
      qb->ms[qb->nms++] = q->matchers[i];
      continue;
    }
    if (!labels_matcher_matches(q->matchers[i], v, strlen(v))) qb->match = false;
  }
  return 0;
}

static int qseries_cmp(const void *x, const void *y) {
  const qseries *a = x, *b = y;
  int c = labels_cmp(&a->lset, &b->lset);
  if (c) return c;
  /* Equal labels: blocks in time order keep chunks mostly sorted. */
  return a->b->meta.min_time < b->b->meta.min_time ? -1 : a->b->meta.min_time > b->b->meta.min_time;
}

static int ac_cmp(const void *x, const void *y) {
  const Thanos__AggrChunk *a = *(Thanos__AggrChunk *const *)x, *b = *(Thanos__AggrChunk *const *)y;
  if (a->min_time != b->min_time) return a->min_time < b->min_time ? -1 : 1;
  return a->max_time < b->max_time ? -1 : a->max_time > b->max_time;
}

static bool chunk_eq(const Thanos__Chunk *a, const Thanos__Chunk *b) {
  if (!a || !b) return a == b;
  return a->type == b->type && a->data.len == b->data.len &&
         (a->data.len == 0 || memcmp(a->data.data, b->data.data, a->data.len) == 0);
}

static bool ac_eq(const Thanos__AggrChunk *a, const Thanos__AggrChunk *b) {
  return a->min_time == b->min_time && a->max_time == b->max_time && chunk_eq(a->raw, b->raw) &&
         chunk_eq(a->count, b->count) && chunk_eq(a->sum, b->sum) && chunk_eq(a->min, b->min) &&
         chunk_eq(a->max, b->max) && chunk_eq(a->counter, b->counter);
}

/* Every block's series joined (note 2) into q->series. */
static int assemble(store_query *q, qseries *all, size_t n) {
  if (n > 1) qsort(all, n, sizeof(*all), qseries_cmp);
  q->series = orr_arena_calloc(q->a, n ? n : 1, sizeof(*q->series));
  if (!q->series) return ORR_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1, nch = all[i].nout;
    while (j < n && labels_equal(&all[i].lset, &all[j].lset)) nch += all[j++].nout;
    Thanos__Series *s = orr_arena_alloc(q->a, sizeof(*s));
    Thanos__AggrChunk **cv = orr_arena_calloc(q->a, nch ? nch : 1, sizeof(*cv));
    if (!s || !cv) return ORR_ENOMEM;
    thanos__series__init(s);
    if (storeapi_labels_to_proto(&all[i].lset, q->a, &s->labels)) return ORR_ENOMEM;
    s->n_labels = all[i].lset.n;
    size_t c = 0;
    for (size_t x = i; x < j; x++)
      for (size_t y = 0; y < all[x].nout; y++)
        if (all[x].out[y]) cv[c++] = all[x].out[y];
    if (j - i > 1 && c > 1) {
      qsort(cv, c, sizeof(*cv), ac_cmp);
      size_t u = 1;
      for (size_t y = 1; y < c; y++)
        if (!ac_eq(cv[y], cv[u - 1])) cv[u++] = cv[y];
      c = u;
    }
    s->chunks = cv;
    s->n_chunks = c;
    q->series[k++] = s;
    i = j;
    if (q->limit > 0 && (int64_t)k >= q->limit) break;
  }
  q->nseries = k;
  return 0;
}

static int series_call(store_query *q) {
  qblock *qbs = orr_arena_calloc(q->a, q->nblocks ? q->nblocks : 1, sizeof(*qbs));
  if (!qbs) return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
  int64_t limit = q->cfg->request_series_limit;
  /* Note 1: a lone positive matcher gives the exact count before any read. */
  int64_t bound = 0;
  for (size_t i = 0; i < q->nblocks; i++) {
    qbs[i] = (qblock){.q = q, .b = q->blocks[i]};
    if (split_matchers(q, &qbs[i])) return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    if (limit > 0 && qbs[i].match && qbs[i].nms == 1) {
      int64_t c = matcher_bound(&qbs[i], qbs[i].ms[0], q->a);
      if (c > 0) bound += c;
    }
  }
  if (limit > 0 && bound > limit) {
    if (q->m) orr_counter_inc(q->m->dropped_series);
    return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ELIMIT,
                "exceeded series limit (--store.limits.request-series): limit %" PRId64
                " violated (got %" PRId64 ")", limit, bound);
  }
  qseries *all = NULL;
  size_t nall = 0, capall = 0;
  int64_t nseries = 0, nchunks = 0;
  int rc = 0;
  for (size_t i = 0; i < q->nblocks; i++) {
    qblock *qb = &qbs[i];
    if (!qb->match) continue;
    if (q->cancelled && atomic_load(q->cancelled))
      return fail(q, NET_GRPC_CANCELLED, ORR_ECANCELED, "cancelled");
    uint64_t *refs;
    size_t nrefs;
    if ((rc = block_postings(qb, q->a, &refs, &nrefs)) != 0) goto out;
    nseries += (int64_t)nrefs;
    if (limit > 0 && nseries > limit) {
      if (q->m) orr_counter_inc(q->m->dropped_series);
      rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ELIMIT,
                "exceeded series limit (--store.limits.request-series): limit %" PRId64
                " violated (got %" PRId64 ")", limit, nseries);
      goto out;
    }
    qseries *ss;
    size_t nss;
    if ((rc = block_series(qb, refs, nrefs, q->a, &ss, &nss)) != 0) goto out;
    for (size_t s = 0; s < nss; s++) nchunks += (int64_t)ss[s].nchks;
    int64_t slimit = q->cfg->request_samples_limit;
    if (!q->skip_chunks && slimit > 0 && nchunks * SAMPLES_PER_CHUNK > slimit) {
      if (q->m) orr_counter_inc(q->m->dropped_samples);
      rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ELIMIT,
                "exceeded samples limit (--store.limits.request-samples): limit %" PRId64
                " violated (got %" PRId64 ")", slimit, nchunks * SAMPLES_PER_CHUNK);
      goto out;
    }
    if (!q->skip_chunks && (rc = block_chunks(qb, ss, nss)) != 0) goto out;
    if (nall + nss > capall) {
      size_t nc = (nall + nss) * 2;
      qseries *na = realloc(all, nc * sizeof(*na));
      if (!na) {
        rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
        goto out;
      }
      all = na;
      capall = nc;
    }
    memcpy(all + nall, ss, nss * sizeof(*ss));
    nall += nss;
    if ((rc = pool_settle(q)) != 0) goto out;
  }
  if (q->m) orr_histogram_observe(q->m->series_blocks_queried, (double)q->nblocks);
  if ((rc = assemble(q, all, nall)) != 0)
    fail(q, NET_GRPC_RESOURCE_EXHAUSTED, rc, "out of memory");
  else
    rc = pool_settle(q);
out:
  free(all);
  return rc;
}

/* ---------------------------------------------------------------- labels */
static int str_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool dropped(const store_query *q, const char *name) {
  for (size_t i = 0; i < q->ndrop; i++)
    if (strcmp(q->drop[i], name) == 0) return true;
  return false;
}

static int push_str(store_query *q, char ***v, size_t *n, size_t *cap, const char *s) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    char **nv = orr_arena_alloc(q->a, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    if (*n) memcpy(nv, *v, *n * sizeof(*nv));
    *v = nv;
    *cap = nc;
  }
  (*v)[(*n)++] = (char *)s;
  return 0;
}

static int labels_call(store_query *q) {
  char **v = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  for (size_t i = 0; i < q->nblocks; i++) {
    qblock qb = {.q = q, .b = q->blocks[i]};
    if (split_matchers(q, &qb)) return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    if (!qb.match) continue;
    const labels_set *ext = &qb.b->ext;
    if (!q->names) {
      const char *ev = labels_get(ext, q->label);
      if (ev) {
        /* The block's series all carry it (the matchers still decide). */
        if (qb.nms == 0) {
          if ((rc = push_str(q, &v, &n, &cap, ev))) goto oom;
          continue;
        }
      }
    }
    if (qb.nms == 0) {
      const tsdb_index_reader *r = tsdb_index_header_reader(qb.b->hdr);
      const char **vals;
      size_t nv;
      rc = q->names ? tsdb_index_label_names(r, q->a, &vals, &nv)
                    : tsdb_index_label_values(r, q->label, q->a, &vals, &nv);
      if (rc) goto oom;
      for (size_t j = 0; j < nv; j++)
        if ((rc = push_str(q, &v, &n, &cap, vals[j]))) goto oom;
      if (q->names)
        for (size_t j = 0; j < ext->n; j++)
          if ((rc = push_str(q, &v, &n, &cap, ext->v[j].name))) goto oom;
      continue;
    }
    uint64_t *refs;
    size_t nrefs;
    if ((rc = block_postings(&qb, q->a, &refs, &nrefs)) != 0) return rc;
    qseries *ss;
    size_t nss;
    if ((rc = block_series(&qb, refs, nrefs, q->a, &ss, &nss)) != 0) return rc;
    if ((rc = pool_settle(q)) != 0) return rc;
    for (size_t s = 0; s < nss; s++) {
      for (size_t j = 0; j < ss[s].lset.n; j++) {
        const labels_label *l = &ss[s].lset.v[j];
        if (q->names)
          rc = push_str(q, &v, &n, &cap, l->name);
        else if (strcmp(l->name, q->label) == 0)
          rc = push_str(q, &v, &n, &cap, l->value);
        if (rc) goto oom;
      }
    }
  }
  if (n > 1) qsort(v, n, sizeof(*v), str_cmp);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (k > 0 && strcmp(v[k - 1], v[i]) == 0) continue;
    if (q->names && dropped(q, v[i])) continue;
    if (!q->names && !v[i][0]) continue;
    v[k++] = v[i];
    if (q->limit > 0 && (int64_t)k >= q->limit) break;
  }
  q->strs = v;
  q->nstrs = k;
  return 0;
oom:
  return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
}

void store_query_run(store_query *q) {
  uint64_t t0 = orr_mono_ns();
  q->status = NET_GRPC_OK;
  if (q->labels_call)
    labels_call(q);
  else
    series_call(q);
  if (q->m && !q->labels_call)
    orr_histogram_observe(q->m->get_all_duration, (double)(orr_mono_ns() - t0) / 1e9);
}
