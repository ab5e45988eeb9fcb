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
 * 2. Series stream (Thanos's blockSeriesClient and loser-tree merge):
 *    every block's postings are expanded first (the series limit holds
 *    before any series is read); then each block is a cursor that reads
 *    STORE_SERIES_BATCH series entries and their chunks at a time (ranges
 *    merged, fetched concurrently), and a k-way merge over the cursors
 *    encodes each series (equal label sets of several blocks joined:
 *    chunks by time, identical ones once) as soon as it is the smallest
 *    head, handing the messages to the call (q->emit, which blocks while
 *    the client is behind). So a call holds a batch per block, not its
 *    answer.
 *    a. Answer order is the order of the labels as answered: with the
 *       block's external labels added and the replica labels dropped.
 *    b. Adding a block's constant external labels keeps the index order
 *       of two series unless one's labels are a prefix of the other's
 *       ({a="1"} < {a="1",c="1"}, but with ext {d="x"} the order flips).
 *       Such series form a run after their root, so a batch releases
 *       only closed runs, sorted; an open run is carried into the next.
 *    c. A block whose own series carry an external label or a dropped
 *       replica label can reorder or join its series arbitrarily: it is
 *       read whole and sorted (held against the pool like any batch).
 * 3. A chunk is passed as stored: XOR chunks as `raw`, aggregate chunks of
 *    downsampled blocks split into the aggregates the request asks for.
 * 5. The pool (--chunk-pool-size) counts what a call holds: read buffers
 *    while they are read (series entries) or pointed into (chunks), the
 *    query's arena (postings) and each cursor's batch arena (series,
 *    labels, chunk refs), and the encoded messages until they are sent. */
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
/* Series entries a block's cursor reads at once (note 2; Thanos reads
 * 10,000 a batch), and the encoded answer handed to the call at once. */
#define STORE_SERIES_BATCH 4096
#define STORE_EMIT_BYTES (128u * 1024)

enum { D_POSTINGS = 0, D_SERIES, D_CHUNKS };

/* ---------------------------------------------------------------- fetching */
typedef struct part {
  uint64_t start, end; /* byte range of the object */
  objstore_view data;  /* its bytes: mapped or read (objstore_get_view) */
  int64_t counted; /* bytes taken from the pool for it */
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
    /* A view: on the filesystem bucket large ranges are mapped, not
     * copied (the warm path reads the page cache in place). */
    p->rc = objstore_get_view(j->q->bucket, j->key, p->start, p->end - p->start, &p->data,
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

/* The pool (--chunk-pool-size) bounds the bytes every query in flight holds
 * (note 5): the buffers of its reads, its arenas (postings, the series and
 * labels of each block's current batch) and its answer messages queued for
 * the client. Taken before the memory is. */
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

/* The pool follows the arenas the query holds: |held| bytes now. */
static int pool_arenas(store_query *q, int64_t held) {
  int64_t d = held - q->pool_arena;
  q->pool_arena = held;
  if (d < 0) {
    pool_give(q, -d);
    return 0;
  }
  return pool_take(q, d);
}

/* Reads |n| parts of object |file| of block |b| (concurrently when more than
 * one), counting bytes against the limit and the pool first; the pool gets
 * them back from parts_free (or whoever takes the buffers over). */
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
  for (size_t i = 0; i < n; i++) parts[i].counted = (int64_t)(parts[i].end - parts[i].start);
  int prc = pool_take(q, (int64_t)total);
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

static void parts_free(store_query *q, part *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    pool_give(q, p[i].counted);
    objstore_view_release(&p[i].data);
  }
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
  tsdb_symbol_memo *memo; /* the cursor's, for its batch arena; or NULL */
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
  if (parts) parts_free(q, parts, nparts);
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
/* A chunk as stored in its segment file (bytes borrowed from a read
 * buffer the batch keeps). */
typedef struct qchunk {
  int64_t mint, maxt;
  const uint8_t *data;
  size_t len;
  uint8_t enc;
} qchunk;

typedef struct qseries {
  labels_set raw;  /* as in the index */
  labels_set lset; /* answered: external labels added, replica labels dropped */
  tsdb_index_chunk_meta *chks; /* overlapping the query's range */
  size_t nchks;
  qchunk *cks; /* chks' bytes, once read */
  const store_block *b;
} qseries;

/* The cache key of series |ref| of |b| ("<ulid>\x01<ref>", as snprintf
 * would write it: snprintf per series showed in a warm query's profile)
 * into |kb| (64 bytes); returns its length. */
static size_t series_key(char *kb, const store_block *b, uint64_t ref) {
  size_t n = strlen(b->id);
  memcpy(kb, b->id, n);
  kb[n++] = '\x01';
  char d[20];
  size_t k = 0;
  do {
    d[k++] = (char)('0' + ref % 10);
    ref /= 10;
  } while (ref);
  while (k) kb[n++] = d[--k];
  kb[n] = '\0';
  return n;
}

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
  /* Cached entries, one after the other in |cbuf|: |coff|/|clen| (0: a miss).
   * The buffer serves every batch of the query (no regrowing). */
  size_t *coff = malloc((n ? n : 1) * sizeof(*coff)), *clen = malloc((n ? n : 1) * sizeof(*clen));
  orr_buf cbuf = q->series_buf;
  q->series_buf = (orr_buf){0};
  orr_buf_reset(&cbuf);
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
  /* The cache first, KEY_RUN keys a lookup. */
  enum { KEY_RUN = 256 };
  char (*keyb)[64] = malloc(KEY_RUN * sizeof(*keyb));
  if (!keyb) {
    rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t r0 = 0; r0 < n; r0 += KEY_RUN) {
    size_t m = n - r0 < KEY_RUN ? n - r0 : KEY_RUN;
    const char *keys[KEY_RUN];
    size_t kl[KEY_RUN];
    for (size_t i = 0; i < m; i++) {
      kl[i] = series_key(keyb[i], b, refs[r0 + i]);
      keys[i] = keyb[i];
    }
    store_cache_get_series(q->cache, keys, kl, m, &cbuf, coff + r0, clen + r0);
  }
  free(keyb);
  for (size_t i = 0; i < n; i++) {
    if (clen[i]) continue;
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
    objstore_view extra = {0};
    int64_t extra_pool = 0;
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
    int r = tsdb_index_header_series_memo(b->hdr, bytes, avail, refs[i], a, qb->memo, &ls,
                                          &s->chks, &s->nchks, &need);
    if (r == ORR_EAGAIN && !from_cache) {
      /* Longer than estimated: read it whole. */
      part one = {.start = refs[i] * 16, .end = refs[i] * 16 + need};
      rc = fetch_parts(q, b, "index", &one, 1, D_SERIES);
      extra = one.data;
      extra_pool = one.counted;
      if (rc) {
        pool_give(q, extra_pool);
        objstore_view_release(&extra);
        goto out;
      }
      bytes = (const uint8_t *)extra.data;
      avail = extra.len;
      r = tsdb_index_header_series_memo(b->hdr, bytes, avail, refs[i], a, qb->memo, &ls,
                                        &s->chks, &s->nchks, &need);
    }
    if (r == 0 && !from_cache) {
      /* Cache the entry's exact bytes: uvarint length, body, CRC. */
      orr_dec d = orr_dec_make(bytes, avail);
      uint64_t len;
      if (orr_dec_uvarint(&d, &len) == 0) {
        char kb[64];
        size_t kl = series_key(kb, b, refs[i]);
        store_cache_put(q->cache, STORE_CACHE_SERIES, kb, kl, bytes,
                        (size_t)(d.p - bytes) + (size_t)len + 4);
      }
    }
    pool_give(q, extra_pool);
    objstore_view_release(&extra);
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
    s->raw = ls;
    s->b = b;
    s->cks = NULL;
    k++;
  }
  *out = v;
  *nout = k;
out:
  if (parts) parts_free(q, parts, nparts);
  if (cbuf.oom)
    orr_buf_free(&cbuf);
  else
    q->series_buf = cbuf;
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

/* Read buffers a batch's chunks point into, held until the batch is gone. */
typedef struct bufkeep {
  objstore_view *v;
  size_t n, cap;
  int64_t pool; /* bytes of them taken from the pool */
} bufkeep;

static int bufkeep_add(bufkeep *k, objstore_view *b, int64_t counted) {
  if (k->n == k->cap) {
    size_t nc = k->cap ? k->cap * 2 : 8;
    objstore_view *nv = realloc(k->v, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    k->v = nv;
    k->cap = nc;
  }
  k->v[k->n++] = *b;
  *b = (objstore_view){0};
  k->pool += counted;
  return 0;
}

static void bufkeep_clear(store_query *q, bufkeep *k) {
  for (size_t i = 0; i < k->n; i++) objstore_view_release(&k->v[i]);
  k->n = 0;
  pool_give(q, k->pool);
  k->pool = 0;
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

/* Reads the chunks of |ss| (|n| series of block |qb|) into their |cks|
 * (arrays from |a|), pointing into read buffers that |keep| takes over. */
static int block_chunks(qblock *qb, qseries *ss, size_t n, orr_arena *a, bufkeep *keep) {
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
    ss[i].cks = orr_arena_alloc(a, (ss[i].nchks ? ss[i].nchks : 1) * sizeof(*ss[i].cks));
    if (!ss[i].cks) {
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
      int r = parse_chunk(bytes, avail, &enc, &data, &len, &need);
      if (r == ORR_EAGAIN) {
        part one = {.start = st[i], .end = st[i] + need};
        rc = fetch_parts(q, b, file, &one, 1, D_CHUNKS);
        const uint8_t *eb = (const uint8_t *)one.data.data;
        size_t el = one.data.len;
        if (bufkeep_add(keep, &one.data, one.counted)) {
          pool_give(q, one.counted);
          objstore_view_release(&one.data);
          if (!rc) rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
        }
        if (rc) goto out;
        r = parse_chunk(eb, el, &enc, &data, &len, &need);
      }
      if (r) {
        rc = fail(q, NET_GRPC_INTERNAL, ORR_ECORRUPT,
                  "store: block %s: chunk %s offset %" PRIu64 ": %s", b->id, file, st[i],
                  r == ORR_EAGAIN ? "cut short" : "corrupt (length or CRC32C)");
        goto out;
      }
      qseries *s = cr[s0 + i].s;
      size_t ci = cr[s0 + i].ci;
      s->cks[ci] = (qchunk){s->chks[ci].mint, s->chks[ci].maxt, data, len, enc};
    }
    if (q->m) orr_histogram_observe(q->m->fetched[D_CHUNKS], (double)m);
    /* The chunks point into the parts: the batch keeps them. */
    for (size_t i = 0; i < nparts; i++) {
      if (bufkeep_add(keep, &parts[i].data, parts[i].counted)) {
        rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
        goto out;
      }
      parts[i].counted = 0;
    }
    parts_free(q, parts, nparts);
    parts = NULL;
    s0 = s1;
  }
out:
  if (parts) parts_free(q, parts, nparts);
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

/* ---------------------------------------------------------------- streaming
 * Note 2: each block is a cursor over its postings that reads series and
 * chunks a batch at a time and yields its series in answer order; a k-way
 * merge joins the cursors and each series is encoded and handed to the
 * call (q->emit) as soon as no block can add to it. */
typedef struct cursor {
  qblock *qb;
  uint64_t *refs;
  size_t nrefs, next; /* postings; the next to read */
  bool whole;         /* note 2c: read and sorted at once */
  orr_arena *a;       /* the batch: series, labels, chunk refs */
  qseries *ss;        /* released: in answer order */
  size_t n, at;
  qseries *carry; /* read, not released (an open run, note 2b), in |a| */
  size_t ncarry;
  tsdb_symbol_memo *memo; /* label strings decoded into |a| (qb->memo) */
  bufkeep keep; /* chunk bytes of the batch */
} cursor;

static int qseries_cmp(const void *x, const void *y) {
  return labels_cmp(&((const qseries *)x)->lset, &((const qseries *)y)->lset);
}

/* |y| extends |x|: |x|'s labels are a proper prefix of |y|'s. */
static bool extends(const labels_set *x, const labels_set *y) {
  if (y->n <= x->n) return false;
  for (size_t i = 0; i < x->n; i++)
    if (strcmp(x->v[i].name, y->v[i].name) || strcmp(x->v[i].value, y->v[i].value)) return false;
  return true;
}

static int64_t cursors_held(store_query *q, cursor *cs, size_t nc) {
  int64_t h = (int64_t)orr_arena_reserved(q->a);
  for (size_t i = 0; i < nc; i++)
    if (cs[i].a) h += (int64_t)orr_arena_reserved(cs[i].a);
  return h;
}

static void cursor_free(store_query *q, cursor *c) {
  bufkeep_clear(q, &c->keep);
  free(c->keep.v);
  c->keep = (bufkeep){0};
  if (c->a) orr_arena_destroy(c->a);
  c->a = NULL;
}

static int qs_push(orr_arena *a, qseries **v, size_t *n, size_t *cap, const qseries *add,
                   size_t nadd) {
  if (*n + nadd > *cap) {
    size_t nc = (*n + nadd) * 2;
    qseries *nv = orr_arena_alloc(a, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    if (*n) memcpy(nv, *v, *n * sizeof(*nv));
    *v = nv;
    *cap = nc;
  }
  if (nadd) memcpy(*v + *n, add, nadd * sizeof(*add));
  *n += nadd;
  return 0;
}

/* Reads |c|'s next batch once the last one is answered: series entries
 * (with the carried open run first), cut after the last closed run, sorted,
 * then their chunks. Leaves c->n == 0 only when the block is done. */
static int cursor_fill(store_query *q, cursor *c, cursor *all, size_t nall, int64_t *nchunks) {
  while (c->at == c->n && (c->next < c->nrefs || c->ncarry)) {
    orr_arena *na = orr_arena_new(0);
    if (!na) return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    /* Symbols are shared within a batch's arena only. */
    if (!c->memo && !(c->memo = malloc(sizeof(*c->memo)))) {
      orr_arena_destroy(na);
      return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    }
    tsdb_symbol_memo_reset(c->memo);
    c->qb->memo = c->memo;
    qseries *v = NULL;
    size_t nv = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < c->ncarry && rc == 0; i++) {
      qseries s = c->carry[i];
      tsdb_index_chunk_meta *chks = orr_arena_alloc(na, (s.nchks ? s.nchks : 1) * sizeof(*chks));
      if (!chks || labels_copy(na, &c->carry[i].raw, &s.raw) ||
          labels_copy(na, &c->carry[i].lset, &s.lset)) {
        rc = ORR_ENOMEM;
        break;
      }
      memcpy(chks, c->carry[i].chks, s.nchks * sizeof(*chks));
      s.chks = chks;
      rc = qs_push(na, &v, &nv, &cap, &s, 1);
    }
    /* The answered batch is done with. */
    c->ncarry = 0;
    c->carry = NULL;
    c->ss = NULL;
    c->n = c->at = 0;
    cursor_free(q, c);
    c->a = na;
    if (rc) return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, rc, "out of memory");
    size_t root = 0;
    for (;;) {
      size_t m = c->nrefs - c->next;
      if (!c->whole && m > STORE_SERIES_BATCH) m = STORE_SERIES_BATCH;
      qseries *ss;
      size_t nss;
      if (m) {
        if ((rc = block_series(c->qb, c->refs + c->next, m, na, &ss, &nss)) != 0) return rc;
        c->next += m;
        if (nv == 0) { /* mostly: no open run before */
          v = ss;
          nv = cap = nss;
        } else if (qs_push(na, &v, &nv, &cap, ss, nss)) {
          return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
        }
      }
      if (c->whole || c->next >= c->nrefs) {
        root = nv;
        break;
      }
      /* Note 2b: the last run may go on in the next batch. */
      root = 0;
      for (size_t i = 1; i < nv; i++)
        if (!extends(&v[root].raw, &v[i].raw)) root = i;
      if (root > 0) break;
    }
    if ((rc = pool_arenas(q, cursors_held(q, all, nall))) != 0) return rc;
    c->carry = v + root;
    c->ncarry = nv - root;
    /* Mostly in order already (no prefix runs, note 2b): one pass says so
     * for a fraction of a sort's comparisons. */
    size_t unsorted = 1;
    while (unsorted < root && labels_cmp(&v[unsorted - 1].lset, &v[unsorted].lset) <= 0) unsorted++;
    if (unsorted < root) qsort(v, root, sizeof(*v), qseries_cmp);
    if (!q->skip_chunks) {
      for (size_t i = 0; i < root; i++) *nchunks += (int64_t)v[i].nchks;
      int64_t slimit = q->cfg->request_samples_limit;
      if (slimit > 0 && *nchunks * SAMPLES_PER_CHUNK > slimit) {
        if (q->m) orr_counter_inc(q->m->dropped_samples);
        return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ELIMIT,
                    "exceeded samples limit (--store.limits.request-samples): limit %" PRId64
                    " violated (got %" PRId64 ")", slimit, *nchunks * SAMPLES_PER_CHUNK);
      }
      if ((rc = block_chunks(c->qb, v, root, na, &c->keep)) != 0) return rc;
      if ((rc = pool_arenas(q, cursors_held(q, all, nall))) != 0) return rc;
    }
    c->ss = v;
    c->n = root;
    c->at = 0;
  }
  return 0;
}

/* ---- encoding: SeriesResponse{series: Series} written directly (the
 * field numbers of lib/storeapi/proto; proto3: zero scalars and empty
 * strings and bytes left out, as protobuf-c packs them). */
typedef struct osub {
  uint8_t field; /* AggrChunk field: 3 raw, 4 count, 5 sum, 6 min, 7 max, 8 counter */
  uint8_t type;  /* storepb Chunk.Encoding */
  const uint8_t *data;
  size_t len;
} osub;

typedef struct ochunk {
  int64_t mint, maxt;
  osub sub[5];
  int nsub;
} ochunk;

static size_t uvlen(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static uint8_t *put_uv(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* A length-delimited field's bytes with its tag and length. */
static size_t ld(size_t n) { return 1 + uvlen(n) + n; }

static uint8_t storepb_enc(uint8_t enc) {
  /* storepb encodings are the TSDB's shifted by one (XOR: 1 → 0). */
  return enc >= 1 && enc <= 3 ? (uint8_t)(enc - 1) : 0;
}

static bool wants(const store_query *q, Thanos__Aggr ag) {
  if (q->naggrs == 0) return true;
  for (size_t i = 0; i < q->naggrs; i++)
    if (q->aggrs[i] == ag) return true;
  return false;
}

/* Note 3: |o| from a chunk as stored. */
static int chunk_out(store_query *q, const store_block *b, const qchunk *c, ochunk *o) {
  o->mint = c->mint;
  o->maxt = c->maxt;
  o->nsub = 0;
  if (c->enc != TSDB_ENC_AGGR) {
    o->sub[o->nsub++] = (osub){3, storepb_enc(c->enc), c->data, c->len};
    return 0;
  }
  static const struct {
    Thanos__Aggr ag;
    tsdb_aggr_type t;
    uint8_t field;
  } map[] = {{THANOS__AGGR__COUNT, TSDB_AGGR_COUNT, 4}, {THANOS__AGGR__SUM, TSDB_AGGR_SUM, 5},
             {THANOS__AGGR__MIN, TSDB_AGGR_MIN, 6},     {THANOS__AGGR__MAX, TSDB_AGGR_MAX, 7},
             {THANOS__AGGR__COUNTER, TSDB_AGGR_COUNTER, 8}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    if (!wants(q, map[i].ag)) continue;
    tsdb_aggr_sub sub;
    int rc = tsdb_aggr_get(c->data, c->len, map[i].t, &sub);
    if (rc == ORR_ENOTFOUND) {
      if (q->naggrs == 0) continue;
      return fail(q, NET_GRPC_INTERNAL, rc, "store: block %s: aggregate %s not found", b->id,
                  tsdb_aggr_name(map[i].t));
    }
    if (rc) return fail(q, NET_GRPC_INTERNAL, rc, "store: block %s: bad aggregate chunk", b->id);
    o->sub[o->nsub++] = (osub){map[i].field, storepb_enc(sub.enc), sub.data, sub.len};
  }
  return 0;
}

static size_t sub_size(const osub *s) {
  return (s->type ? 1 + uvlen(s->type) : 0) + (s->len ? ld(s->len) : 0);
}

static size_t ochunk_size(const ochunk *o) {
  size_t n = (o->mint ? 1 + uvlen((uint64_t)o->mint) : 0) +
             (o->maxt ? 1 + uvlen((uint64_t)o->maxt) : 0);
  for (int i = 0; i < o->nsub; i++) n += ld(sub_size(&o->sub[i]));
  return n;
}

static size_t label_size(const labels_label *l, size_t *nl, size_t *vl) {
  *nl = strlen(l->name);
  *vl = strlen(l->value);
  return (*nl ? ld(*nl) : 0) + (*vl ? ld(*vl) : 0);
}

static int qchunk_cmp(const void *x, const void *y) {
  const qchunk *a = *(const qchunk *const *)x, *b = *(const qchunk *const *)y;
  if (a->mint != b->mint) return a->mint < b->mint ? -1 : 1;
  return a->maxt < b->maxt ? -1 : a->maxt > b->maxt;
}

static bool qchunk_eq(const qchunk *a, const qchunk *b) {
  return a->mint == b->mint && a->maxt == b->maxt && a->enc == b->enc && a->len == b->len &&
         (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

typedef struct ostate {
  orr_buf out;        /* messages, each after its length (4 bytes, host order) */
  const qchunk **cv;  /* scratch: the joined series' chunks */
  ochunk *ov;
  size_t cap;
} ostate;

/* Hands the encoded messages to the call (it takes the buffer over). */
static int flush(store_query *q, ostate *o) {
  if (o->out.len == 0) return 0;
  int rc = q->emit(q->emit_arg, &o->out);
  o->out = (orr_buf){0};
  if (rc == ORR_ECANCELED) return fail(q, NET_GRPC_CANCELLED, rc, "cancelled");
  if (rc) return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, rc, "out of memory");
  return 0;
}

/* Appends the series joined from |g| (|ng| equal label sets, note 2). */
static int encode_series(store_query *q, ostate *o, qseries *const *g, size_t ng) {
  size_t nch = 0;
  for (size_t i = 0; i < ng; i++) nch += q->skip_chunks ? 0 : g[i]->nchks;
  if (nch > o->cap) {
    size_t nc = nch * 2;
    const qchunk **cv = realloc(o->cv, nc * sizeof(*cv));
    if (cv) o->cv = cv;
    ochunk *ov = realloc(o->ov, nc * sizeof(*ov));
    if (ov) o->ov = ov;
    if (!cv || !ov) return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    o->cap = nc;
  }
  size_t c = 0;
  for (size_t i = 0; i < ng && !q->skip_chunks; i++)
    for (size_t j = 0; j < g[i]->nchks; j++) o->cv[c++] = &g[i]->cks[j];
  if (ng > 1 && c > 1) {
    qsort(o->cv, c, sizeof(*o->cv), qchunk_cmp);
    size_t u = 1;
    for (size_t y = 1; y < c; y++)
      if (!qchunk_eq(o->cv[y], o->cv[u - 1])) o->cv[u++] = o->cv[y];
    c = u;
  }
  const labels_set *ls = &g[0]->lset;
  size_t body = 0, nl, vl;
  for (size_t i = 0; i < ls->n; i++) body += ld(label_size(&ls->v[i], &nl, &vl));
  for (size_t i = 0; i < c; i++) {
    const store_block *b = g[0]->b;
    for (size_t x = 0; x < ng; x++)
      if (o->cv[i] >= g[x]->cks && o->cv[i] < g[x]->cks + g[x]->nchks) b = g[x]->b;
    int rc = chunk_out(q, b, o->cv[i], &o->ov[i]);
    if (rc) return rc;
    body += ld(ochunk_size(&o->ov[i]));
  }
  size_t msg = ld(body);
  if (msg > UINT32_MAX) return fail(q, NET_GRPC_INTERNAL, ORR_ERANGE, "series message too large");
  /* Buffers of STORE_EMIT_BYTES come from the heap and go back to it. */
  if (o->out.len && o->out.len + 4 + msg >= STORE_EMIT_BYTES) {
    int rc = flush(q, o);
    if (rc) return rc;
  }
  if (!o->out.cap && orr_buf_reserve(&o->out, STORE_EMIT_BYTES - 1))
    return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
  if (orr_buf_reserve(&o->out, 4 + msg))
    return fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
  uint8_t *p = (uint8_t *)o->out.data + o->out.len, *p0 = p;
  uint32_t m32 = (uint32_t)msg;
  memcpy(p, &m32, 4);
  p += 4;
  *p++ = 0x0a; /* SeriesResponse.series */
  p = put_uv(p, body);
  for (size_t i = 0; i < ls->n; i++) {
    *p++ = 0x0a; /* Series.labels */
    p = put_uv(p, label_size(&ls->v[i], &nl, &vl));
    if (nl) {
      *p++ = 0x0a;
      p = put_uv(p, nl);
      memcpy(p, ls->v[i].name, nl);
      p += nl;
    }
    if (vl) {
      *p++ = 0x12;
      p = put_uv(p, vl);
      memcpy(p, ls->v[i].value, vl);
      p += vl;
    }
  }
  for (size_t i = 0; i < c; i++) {
    const ochunk *oc = &o->ov[i];
    *p++ = 0x12; /* Series.chunks */
    p = put_uv(p, ochunk_size(oc));
    if (oc->mint) {
      *p++ = 0x08;
      p = put_uv(p, (uint64_t)oc->mint);
    }
    if (oc->maxt) {
      *p++ = 0x10;
      p = put_uv(p, (uint64_t)oc->maxt);
    }
    for (int k = 0; k < oc->nsub; k++) {
      const osub *s = &oc->sub[k];
      *p++ = (uint8_t)(s->field << 3 | 2);
      p = put_uv(p, sub_size(s));
      if (s->type) {
        *p++ = 0x08;
        p = put_uv(p, s->type);
      }
      if (s->len) {
        *p++ = 0x12;
        p = put_uv(p, s->len);
        memcpy(p, s->data, s->len);
        p += s->len;
      }
    }
  }
  o->out.len += (size_t)(p - p0);
  return 0;
}

/* Note 2c: a block whose labels the answer changes beyond adding external
 * labels (an external or dropped replica label also in its series) may
 * reorder or join its own series: it is read whole and sorted. */
static bool reorders(store_query *q, const store_block *b) {
  if (b->ext.n == 0 && q->ndrop == 0) return false;
  const char **names;
  size_t n;
  if (tsdb_index_label_names(tsdb_index_header_reader(b->hdr), q->a, &names, &n)) return true;
  for (size_t i = 0; i < n; i++) {
    if (labels_get(&b->ext, names[i])) return true;
    for (size_t j = 0; j < q->ndrop; j++)
      if (strcmp(q->drop[j], names[i]) == 0) return true;
  }
  return false;
}

/* ---- the merge's heap of cursor indices, smallest head first */
static const labels_set *head(const cursor *cs, size_t i) { return &cs[i].ss[cs[i].at].lset; }

static bool head_less(const cursor *cs, size_t a, size_t b) {
  int c = labels_cmp(head(cs, a), head(cs, b));
  return c < 0 || (c == 0 && a < b); /* blocks in their order (chunks by time) */
}

static void heap_push(const cursor *cs, size_t *h, size_t *n, size_t i) {
  size_t k = (*n)++;
  while (k > 0 && head_less(cs, i, h[(k - 1) / 2])) {
    h[k] = h[(k - 1) / 2];
    k = (k - 1) / 2;
  }
  h[k] = i;
}

static size_t heap_pop(const cursor *cs, size_t *h, size_t *n) {
  size_t top = h[0], last = h[--(*n)], k = 0;
  for (;;) {
    size_t c = 2 * k + 1;
    if (c >= *n) break;
    if (c + 1 < *n && head_less(cs, h[c + 1], h[c])) c++;
    if (!head_less(cs, h[c], last)) break;
    h[k] = h[c];
    k = c;
  }
  if (*n) h[k] = last;
  return top;
}

static int series_call(store_query *q) {
  qblock *qbs = orr_arena_calloc(q->a, q->nblocks ? q->nblocks : 1, sizeof(*qbs));
  cursor *cs = calloc(q->nblocks ? q->nblocks : 1, sizeof(*cs));
  size_t gcap = q->nblocks ? q->nblocks : 1;
  qseries **g = calloc(gcap, sizeof(*g));
  ostate o = {0};
  size_t nc = 0, ng = 0, nh = 0, *heap = NULL, *popped = NULL;
  int rc = 0;
  if (!qbs || !cs || !g) {
    rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    goto out;
  }
  int64_t limit = q->cfg->request_series_limit;
  /* Note 1: a lone positive matcher gives the exact count before any read. */
  int64_t bound = 0;
  for (size_t i = 0; i < q->nblocks; i++) {
    qbs[i] = (qblock){.q = q, .b = q->blocks[i]};
    if (split_matchers(q, &qbs[i])) {
      rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
      goto out;
    }
    if (limit > 0 && qbs[i].match && qbs[i].nms == 1) {
      int64_t c = matcher_bound(&qbs[i], qbs[i].ms[0], q->a);
      if (c > 0) bound += c;
    }
  }
  if (limit > 0 && bound > limit) {
    if (q->m) orr_counter_inc(q->m->dropped_series);
    rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ELIMIT,
              "exceeded series limit (--store.limits.request-series): limit %" PRId64
              " violated (got %" PRId64 ")", limit, bound);
    goto out;
  }
  /* Every block's postings first: the series limit holds before any series
   * is read. */
  int64_t nseries = 0, nchunks = 0;
  for (size_t i = 0; i < q->nblocks; i++) {
    qblock *qb = &qbs[i];
    if (!qb->match) continue;
    if (q->cancelled && atomic_load(q->cancelled)) {
      rc = fail(q, NET_GRPC_CANCELLED, ORR_ECANCELED, "cancelled");
      goto out;
    }
    cursor *c = &cs[nc];
    c->qb = qb;
    if ((rc = block_postings(qb, q->a, &c->refs, &c->nrefs)) != 0) goto out;
    nseries += (int64_t)c->nrefs;
    if (limit > 0 && nseries > limit) {
      if (q->m) orr_counter_inc(q->m->dropped_series);
      rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ELIMIT,
                "exceeded series limit (--store.limits.request-series): limit %" PRId64
                " violated (got %" PRId64 ")", limit, nseries);
      goto out;
    }
    if ((rc = pool_arenas(q, cursors_held(q, cs, nc))) != 0) goto out;
    if (c->nrefs == 0) continue;
    c->whole = reorders(q, qb->b);
    nc++;
  }
  if (q->m) orr_histogram_observe(q->m->series_blocks_queried, (double)q->nblocks);
  for (size_t i = 0; i < nc; i++)
    if ((rc = cursor_fill(q, &cs[i], cs, nc, &nchunks)) != 0) goto out;
  /* The k-way merge: a binary heap of the cursors by their heads. */
  if (!(heap = malloc((nc ? nc : 1) * sizeof(*heap))) ||
      !(popped = malloc((nc ? nc : 1) * sizeof(*popped)))) {
    rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < nc; i++)
    if (cs[i].at < cs[i].n) heap_push(cs, heap, &nh, i);
  int64_t sent = 0;
  while (nh) {
    const labels_set *min = &cs[heap[0]].ss[cs[heap[0]].at].lset;
    size_t npop = 0;
    ng = 0;
    while (nh && (npop == 0 || labels_equal(head(cs, heap[0]), min))) {
      size_t i = heap_pop(cs, heap, &nh);
      popped[npop++] = i;
      do {
        if (ng == gcap) { /* a whole-read block joins its own series */
          qseries **ngv = realloc(g, gcap * 2 * sizeof(*g));
          if (!ngv) {
            rc = fail(q, NET_GRPC_RESOURCE_EXHAUSTED, ORR_ENOMEM, "out of memory");
            goto out;
          }
          g = ngv;
          gcap *= 2;
        }
        g[ng++] = &cs[i].ss[cs[i].at++];
      } while (cs[i].whole && cs[i].at < cs[i].n && labels_equal(head(cs, i), min));
    }
    if ((rc = encode_series(q, &o, g, ng)) != 0) goto out;
    sent++;
    if (q->limit > 0 && sent >= q->limit) break;
    /* |min| is gone with a refilled batch: the heads come back after. */
    for (size_t k = 0; k < npop; k++) {
      cursor *c = &cs[popped[k]];
      if (c->at == c->n && (rc = cursor_fill(q, c, cs, nc, &nchunks)) != 0) goto out;
      if (c->at < c->n) heap_push(cs, heap, &nh, popped[k]);
    }
  }
  rc = flush(q, &o);
out:
  orr_buf_free(&o.out);
  free(o.cv);
  free(o.ov);
  for (size_t i = 0; cs && i < nc; i++) {
    cursor_free(q, &cs[i]);
    free(cs[i].memo);
  }
  free(cs);
  free(g);
  free(heap);
  free(popped);
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
    if ((rc = pool_arenas(q, (int64_t)orr_arena_reserved(q->a))) != 0) return rc;
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
  orr_buf_free(&q->series_buf);
  if (q->m && !q->labels_call)
    orr_histogram_observe(q->m->get_all_duration, (double)(orr_mono_ns() - t0) / 1e9);
}
