/* blocks.c: the sidecar reads Prometheus's persisted blocks itself
 * (--tsdb.read-blocks): a Series call's samples before the newest block's
 * end come from the block files in --tsdb.path, only the rest (the head)
 * through remote read. Remote read costs Prometheus more CPU than
 * answering the query itself, and us a curl transfer per query.
 *
 * Design notes
 * 1. The block set is a snapshot: the usable blocks, opened (mmapped), and
 *    B, the largest maxTime among them (exclusive). A snapshot is built on
 *    a worker thread by a refresh (at start, then every REFRESH_MS when the
 *    directory's mtime changed: a block appears by rename and goes by
 *    removal, both change it) and swapped in on the loop. Calls hold a
 *    reference to the snapshot they started with, so a block removed by
 *    Prometheus mid-query stays readable (its mappings stay valid).
 * 2. Usable blocks: directories named by a ULID with a readable meta.json
 *    (temporaries such as <ulid>.tmp-for-creation are skipped by
 *    tsdb_block_list), not a parent (compaction.parents) of another block
 *    present — Prometheus writes the compacted block before it deletes the
 *    parents, so both may be present for a while — and not marked
 *    deletable. When two usable blocks overlap in time, a block has
 *    tombstones, or Prometheus accepts out-of-order samples (an
 *    out_of_order_time_window in its config: old samples may then sit in
 *    the head, and overlapping blocks be written), the snapshot is not used:
 *    every call goes through remote read, as without --tsdb.path. We fall
 *    back rather than split conservatively: with out-of-order samples no
 *    time B separates what the blocks hold from what the head holds.
 * 3. A stale snapshot is still correct: without out-of-order samples the
 *    head holds nothing before the newest block's end, and remote read of
 *    [B, maxt] answers everything at or after B whatever blocks Prometheus
 *    wrote since; the blocks we read cover everything before B.
 * 4. A Series call with chunks and min time below B: a worker reads
 *    [mint, min(maxt, B-1)] from the snapshot's blocks, merging one series
 *    across blocks (chunks in time order), adds the external labels as
 *    remote read does (order restored by prom_reorder, reorder.h), and
 *    queues packed SeriesResponse messages for the loop (at most
 *    OUT_QUEUE_BYTES queued: the worker waits). With max time below B the
 *    loop sends them as they are. Otherwise the head part, [B, maxt], is
 *    asked of the remote-read source (prom_source, in-process) and both
 *    streams go through storeapi_merge: equal label sets become one series.
 *    Head chunks that start before B are cut at B (re-encoded), so no
 *    sample comes twice.
 *    A small call (note 6) runs the same code on the loop instead.
 * 5. Everything else — skip_chunks, LabelNames, LabelValues, Info, calls
 *    with min time at or after B — is the remote-read source's, unchanged.
 * 6. Inline: a call whose matchers are all equalities with values (the
 *    postings are a lookup and a lazy intersection, no label-value scan)
 *    selecting at most INLINE_SERIES series over at most INLINE_SPAN_MS is
 *    read on the loop: counted from the postings, stopping past the
 *    bound, before any chunk is read. Its output is a few hundred kB at
 *    most; the worker hand-off and back cost two wake-ups (~0.1 ms, the
 *    sixth of an instant `up` through the gateway). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "reorder.h"
#include "sidecar_int.h"
#include "tsdb.h"

#define REFRESH_MS 1000
#define OUT_QUEUE_BYTES (4u << 20)
#define OUT_BATCH_BYTES (256u << 10)
#define MERGE_BUFFERED 64
#define INLINE_SERIES 256
#define INLINE_SPAN_MS (6 * 3600 * 1000LL)

/* ---------------------------------------------------------------- snapshot */
typedef struct sblock {
  atomic_int refs;
  tsdb_ulid ulid;
  tsdb_block *b;
} sblock;

typedef struct snap {
  atomic_int refs;
  sblock **v; /* sorted by min time */
  size_t n;
  int64_t boundary; /* B: the largest maxTime (exclusive) */
  int64_t min_time;
  bool usable;      /* note 2 */
} snap;

static void sblock_release(sblock *b) {
  if (!b || atomic_fetch_sub(&b->refs, 1) != 1) return;
  tsdb_block_close(b->b);
  free(b);
}

static void snap_release(snap *s) {
  if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
  for (size_t i = 0; i < s->n; i++) sblock_release(s->v[i]);
  free(s->v);
  free(s);
}

struct sidecar_blocks {
  uv_loop_t *loop;
  char *dir;
  prom_source *src;
  storeapi_backend inner;
  storeapi_client *local; /* the head part of split calls (note 4) */
  void (*on_min_time)(void *arg, int64_t mint);
  void *min_arg;
  sidecar_blocks_metrics m;
  /* the loop's */
  snap *cur;
  bool ooo;
  uv_timer_t timer;
  uv_work_t refresh;
  bool refreshing, closing;
  int pending_closes;
  void (*on_closed)(void *arg);
  void *closed_arg;
  struct bcall *calls; /* active split calls, for cancel/resume */
  /* the refresh worker's */
  struct timespec mtime;
  bool have_mtime, force;
  snap *next; /* built by the worker, swapped in by the loop */
  char why[600]; /* why the last snapshot is not usable */
  char logged[600];
  net_handoff out; /* note 4: calls with output queued by their worker */
};

/* The open block of |u| in |old|, acquired, or NULL. */
static sblock *find_open(snap *old, const tsdb_ulid *u) {
  for (size_t i = 0; old && i < old->n; i++)
    if (tsdb_ulid_cmp(&old->v[i]->ulid, u) == 0) {
      atomic_fetch_add(&old->v[i]->refs, 1);
      return old->v[i];
    }
  return NULL;
}

static int sblock_cmp(const void *x, const void *y) {
  const tsdb_meta *a = tsdb_block_meta((*(sblock *const *)x)->b);
  const tsdb_meta *b = tsdb_block_meta((*(sblock *const *)y)->b);
  return a->min_time < b->min_time ? -1 : a->min_time > b->min_time;
}

/* Note 2, on a worker: a new snapshot from the directory, reusing the
 * blocks |old| has open. Sets |why| when it is not usable. */
static snap *build_snap(sidecar_blocks *bs, snap *old) {
  snap *s = calloc(1, sizeof(*s));
  orr_arena *a = orr_arena_new(0);
  tsdb_block_entry *e = NULL;
  size_t n = 0;
  char err[512] = "";
  if (!s || !a) goto fail;
  atomic_init(&s->refs, 1);
  s->boundary = INT64_MIN;
  s->min_time = INT64_MAX;
  bs->why[0] = 0;
  int rc = tsdb_block_list(bs->dir, a, &e, &n, err, sizeof err);
  if (rc == ORR_ENOTFOUND) n = 0;
  else if (rc) {
    snprintf(bs->why, sizeof bs->why, "cannot list the blocks: %.500s", err);
    goto out;
  }
  s->v = calloc(n ? n : 1, sizeof(*s->v));
  if (!s->v) goto fail;
  for (size_t i = 0; i < n; i++) {
    if (!e[i].meta_ok || e[i].meta.deletable) continue;
    bool parent = false;
    for (size_t j = 0; j < n && !parent; j++)
      for (size_t p = 0; j != i && e[j].meta_ok && p < e[j].meta.nparents; p++)
        if (tsdb_ulid_cmp(&e[j].meta.parents[p].ulid, &e[i].meta.ulid) == 0) parent = true;
    if (parent) continue;
    sblock *b = find_open(old, &e[i].meta.ulid);
    if (!b) {
      tsdb_block *tb;
      char berr[512] = "";
      rc = tsdb_block_open(e[i].dir, &tb, berr, sizeof berr);
      if (rc) {
        /* Removed between the listing and the open: Prometheus deleted a
         * parent. Anything else makes the set unusable. */
        struct stat st;
        if (rc == ORR_ENOTFOUND || stat(e[i].dir, &st) != 0) continue;
        snprintf(bs->why, sizeof bs->why, "cannot open block: %s", berr);
        goto out;
      }
      if (!(b = calloc(1, sizeof(*b)))) {
        tsdb_block_close(tb);
        goto fail;
      }
      atomic_init(&b->refs, 1);
      b->ulid = e[i].meta.ulid;
      b->b = tb;
    }
    s->v[s->n++] = b;
  }
  if (s->n > 1) qsort(s->v, s->n, sizeof(*s->v), sblock_cmp);
  for (size_t i = 0; i < s->n; i++) {
    const tsdb_meta *m = tsdb_block_meta(s->v[i]->b);
    char id[TSDB_ULID_STRLEN + 1];
    tsdb_ulid_format(&m->ulid, id);
    if (tsdb_block_tombstones(s->v[i]->b)->n > 0) {
      snprintf(bs->why, sizeof bs->why, "block %s has tombstones", id);
      goto out;
    }
    if (i > 0 && tsdb_block_meta(s->v[i - 1]->b)->max_time > m->min_time) {
      snprintf(bs->why, sizeof bs->why, "block %s overlaps the block before it", id);
      goto out;
    }
    if (m->max_time > s->boundary) s->boundary = m->max_time;
    if (m->min_time < s->min_time) s->min_time = m->min_time;
  }
  s->usable = s->n > 0;
out:
  orr_arena_destroy(a);
  return s;
fail:
  orr_arena_destroy(a);
  if (s) {
    s->usable = false;
    snprintf(bs->why, sizeof bs->why, "out of memory");
  }
  return s; /* NULL: out of memory, the old snapshot stays */
}

static void refresh_work(uv_work_t *w) {
  sidecar_blocks *bs = w->data;
  struct stat st;
  bs->next = NULL;
  if (stat(bs->dir, &st) == 0 && bs->have_mtime && !bs->force &&
      st.st_mtim.tv_sec == bs->mtime.tv_sec && st.st_mtim.tv_nsec == bs->mtime.tv_nsec)
    return;
  bs->mtime = st.st_mtim;
  bs->have_mtime = true;
  bs->force = false;
  bs->next = build_snap(bs, bs->cur); /* |cur| is only replaced on the loop, after */
}

static void refresh_after(uv_work_t *w, int status) {
  sidecar_blocks *bs = w->data;
  bs->refreshing = false;
  if (bs->next) {
    snap *old = bs->cur;
    bs->cur = bs->next;
    bs->next = NULL;
    snap_release(old);
    if (bs->m.listings) orr_counter_inc(bs->m.listings);
    if (bs->m.blocks) orr_gauge_set(bs->m.blocks, bs->cur->usable ? (double)bs->cur->n : 0);
    if (!bs->cur->usable && bs->why[0] && strcmp(bs->why, bs->logged) != 0) {
      orr_log_warn("not reading Prometheus's blocks; every Series call goes through remote read",
                   "reason", bs->why, NULL);
      snprintf(bs->logged, sizeof bs->logged, "%s", bs->why);
    } else if (bs->cur->usable && bs->logged[0]) {
      orr_log_info("reading Prometheus's blocks again", NULL);
      bs->logged[0] = 0;
    }
    if (bs->cur->usable && bs->on_min_time) bs->on_min_time(bs->min_arg, bs->cur->min_time);
  }
  (void)status;
  if (bs->closing && --bs->pending_closes == 0 && bs->on_closed) bs->on_closed(bs->closed_arg);
}

static void on_refresh_timer(uv_timer_t *t) {
  sidecar_blocks *bs = t->data;
  if (bs->refreshing || bs->closing) return;
  bs->refreshing = true;
  bs->refresh.data = bs;
  if (uv_queue_work(bs->loop, &bs->refresh, refresh_work, refresh_after)) bs->refreshing = false;
}

/* ---------------------------------------------------------------- calls */
typedef struct outbuf {
  struct outbuf *next;
  orr_buf b;
  size_t off;
} outbuf;

typedef struct bcall {
  sidecar_blocks *bs;
  storeapi_call *c;
  struct bcall *next, *prev; /* bs->calls */
  snap *sn;
  /* the worker's part */
  uv_work_t work;
  labels_set ext;
  labels_matcher **ms;
  size_t nms;
  char *const *drop;
  size_t ndrop;
  int64_t mint, maxt, limit;
  atomic_bool cancelled;
  bool inline_run; /* note 6: work_cb runs on the loop */
  int wstatus;
  char werr[700];
  orr_buf batch;
  int64_t sent_worker;
  /* the queue (|mu|) */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  outbuf *oh, *ot, *cur;
  size_t obytes;
  net_handoff_item ready; /* on bs->out */
  /* the loop's */
  bool running, worker_done, blocked, finished;
  bool merging; /* note 4: a head part */
  storeapi_merge *merge;
  bool blocks_closed;
  storeapi_series_call *hc;
  bool head_running, head_paused;
  int head_status;
  char *head_err;
  int64_t sent;
  int fin_status;
  const char *fin_msg;
  bool fin_pending;
} bcall;

static void wake_loop(bcall *s) { net_handoff_push(&s->bs->out, &s->ready); }

/* On the worker: queues the batch (note 4), waiting while the loop is
 * behind. 0 or ORR_ECANCELED / ORR_ENOMEM. */
static int flush_batch(bcall *s) {
  if (s->batch.oom) return ORR_ENOMEM;
  if (!s->batch.len) return 0;
  outbuf *o = malloc(sizeof(*o));
  if (!o) return ORR_ENOMEM;
  o->next = NULL;
  o->b = s->batch;
  o->off = 0;
  s->batch = (orr_buf){0};
  pthread_mutex_lock(&s->mu);
  while (!s->inline_run && s->obytes >= OUT_QUEUE_BYTES && !atomic_load(&s->cancelled))
    pthread_cond_wait(&s->cv, &s->mu);
  if (atomic_load(&s->cancelled)) {
    pthread_mutex_unlock(&s->mu);
    orr_buf_free(&o->b);
    free(o);
    return ORR_ECANCELED;
  }
  if (s->ot)
    s->ot->next = o;
  else
    s->oh = o;
  s->ot = o;
  s->obytes += o->b.len;
  pthread_mutex_unlock(&s->mu);
  if (!s->inline_run) wake_loop(s); /* inline: after_cb pumps */
  return 0;
}

/* The reorder's output: one packed SeriesResponse into the batch. */
static int batch_emit(void *arg, const labels_set *final, const void *msg, size_t len) {
  bcall *s = arg;
  (void)final;
  if (s->limit > 0 && !s->merging && s->sent_worker >= s->limit) return ORR_ELIMIT;
  s->sent_worker++;
  uint32_t l = (uint32_t)len;
  orr_buf_append(&s->batch, &l, 4);
  orr_buf_append(&s->batch, msg, len);
  if (s->batch.oom) return ORR_ENOMEM;
  return s->batch.len >= OUT_BATCH_BYTES ? flush_batch(s) : 0;
}

/* One series, merged across the blocks: packed with external labels. */
static int emit_series(bcall *s, prom_reorder *ro, orr_arena *a, const labels_set *stored,
                       const tsdb_series *const *parts, size_t nparts) {
  labels_set fin;
  int rc = storeapi_labels_extend(stored, &s->ext, s->drop, s->ndrop, a, &fin);
  if (rc) return rc;
  Thanos__Series ser = THANOS__SERIES__INIT;
  if ((rc = storeapi_labels_to_proto(&fin, a, &ser.labels)) != 0) return rc;
  ser.n_labels = fin.n;
  size_t nc = 0;
  for (size_t i = 0; i < nparts; i++) nc += parts[i]->nchunks;
  ser.chunks = orr_arena_calloc(a, nc ? nc : 1, sizeof(*ser.chunks));
  Thanos__AggrChunk *ac = orr_arena_calloc(a, nc ? nc : 1, sizeof(*ac));
  Thanos__Chunk *raw = orr_arena_calloc(a, nc ? nc : 1, sizeof(*raw));
  if (!ser.chunks || !ac || !raw) return ORR_ENOMEM;
  for (size_t i = 0; i < nparts; i++)
    for (size_t j = 0; j < parts[i]->nchunks; j++) {
      const tsdb_chunk *c = &parts[i]->chunks[j];
      thanos__aggr_chunk__init(&ac[ser.n_chunks]);
      thanos__chunk__init(&raw[ser.n_chunks]);
      /* storepb encodings are the TSDB's shifted by one (XOR: 1 -> 0) */
      raw[ser.n_chunks].type = c->enc >= 1 && c->enc <= 3 ? (Thanos__Chunk__Encoding)(c->enc - 1)
                                                          : THANOS__CHUNK__ENCODING__XOR;
      raw[ser.n_chunks].data.data = c->data;
      raw[ser.n_chunks].data.len = c->len;
      ac[ser.n_chunks].min_time = c->mint;
      ac[ser.n_chunks].max_time = c->maxt;
      ac[ser.n_chunks].raw = &raw[ser.n_chunks];
      ser.chunks[ser.n_chunks] = &ac[ser.n_chunks];
      ser.n_chunks++;
    }
  Thanos__SeriesResponse r = THANOS__SERIES_RESPONSE__INIT;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_SERIES;
  r.series = &ser;
  size_t len = thanos__series_response__get_packed_size(&r);
  uint8_t *buf = orr_arena_alloc(a, len ? len : 1);
  if (!buf) return ORR_ENOMEM;
  thanos__series_response__pack(&r, buf);
  if (s->ext.n == 0) return batch_emit(s, &fin, buf, len);
  /* Note 4: Prometheus's order without its external labels, as reorder.h
   * wants it. */
  labels_set o = {0};
  o.v = orr_arena_calloc(a, stored->n ? stored->n : 1, sizeof(labels_label));
  if (!o.v) return ORR_ENOMEM;
  for (size_t i = 0; i < stored->n; i++)
    if (!labels_get(&s->ext, stored->v[i].name)) o.v[o.n++] = stored->v[i];
  return prom_reorder_add(ro, &o, &fin, buf, len);
}

/* On the worker: the block part of the call (note 4). */
static void work_cb(uv_work_t *w) {
  bcall *s = w->data;
  snap *sn = s->sn;
  size_t nb = sn->n;
  orr_arena *qa = orr_arena_new(0), *a = orr_arena_new(0);
  tsdb_series_set **sets = calloc(nb ? nb : 1, sizeof(*sets));
  const tsdb_series **curs = calloc(nb ? nb : 1, sizeof(*curs));
  const tsdb_series **parts = calloc(nb ? nb : 1, sizeof(*parts));
  prom_reorder ro;
  prom_reorder_init(&ro, &s->ext, batch_emit, s);
  int rc = 0;
  if (!qa || !a || !sets || !curs || !parts) {
    rc = ORR_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nb; i++) {
    const tsdb_meta *m = tsdb_block_meta(sn->v[i]->b);
    if (m->max_time <= s->mint || m->min_time > s->maxt) continue;
    if ((rc = tsdb_block_select(sn->v[i]->b, s->ms, s->nms, s->mint, s->maxt, qa, &sets[i])) != 0) {
      snprintf(s->werr, sizeof s->werr, "select in block %s: %s", tsdb_block_dir(sn->v[i]->b),
               rc == ORR_ECORRUPT ? tsdb_index_last_error() : orr_strerror(rc));
      goto out;
    }
    if ((rc = tsdb_series_set_next(sets[i], &curs[i])) < 0) {
      snprintf(s->werr, sizeof s->werr, "%s", tsdb_series_set_error(sets[i]));
      goto out;
    }
    if (rc == 0) curs[i] = NULL;
    rc = 0;
  }
  for (;;) {
    if (atomic_load(&s->cancelled)) {
      rc = ORR_ECANCELED;
      goto out;
    }
    /* The smallest labels among the blocks' current series; a series in
     * several blocks is joined, its chunks in block (time) order. */
    const labels_set *min = NULL;
    for (size_t i = 0; i < nb; i++)
      if (curs[i] && (!min || labels_cmp(&curs[i]->labels, min) < 0)) min = &curs[i]->labels;
    if (!min) break;
    size_t np = 0;
    for (size_t i = 0; i < nb; i++)
      if (curs[i] && (&curs[i]->labels == min || labels_cmp(&curs[i]->labels, min) == 0))
        parts[np++] = curs[i];
    orr_arena_reset(a);
    rc = emit_series(s, &ro, a, min, parts, np);
    if (rc) {
      if (rc == ORR_ELIMIT && !s->merging && s->limit > 0 && s->sent_worker >= s->limit) rc = 0;
      else snprintf(s->werr, sizeof s->werr, "%s", orr_strerror(rc));
      goto done;
    }
    /* Advance every set that gave a part (their memory is reused then). */
    for (size_t i = 0; i < nb; i++) {
      bool used = false;
      for (size_t k = 0; k < np; k++) used |= parts[k] == curs[i];
      if (!used) continue;
      if ((rc = tsdb_series_set_next(sets[i], &curs[i])) < 0) {
        snprintf(s->werr, sizeof s->werr, "%s", tsdb_series_set_error(sets[i]));
        goto out;
      }
      if (rc == 0) curs[i] = NULL;
      rc = 0;
    }
  }
  rc = prom_reorder_flush(&ro);
  if (rc == ORR_ELIMIT && s->limit > 0 && s->sent_worker >= s->limit) rc = 0;
  else if (rc) snprintf(s->werr, sizeof s->werr, "%s", orr_strerror(rc));
done:
  if (!rc) rc = flush_batch(s);
out:
  prom_reorder_free(&ro);
  for (size_t i = 0; sets && i < nb; i++) tsdb_series_set_close(sets[i]);
  free(sets);
  free(curs);
  free(parts);
  orr_arena_destroy(a);
  orr_arena_destroy(qa);
  orr_buf_free(&s->batch);
  if (rc == ORR_ECANCELED) s->wstatus = NET_GRPC_CANCELLED;
  else if (rc == ORR_ENOMEM) s->wstatus = NET_GRPC_RESOURCE_EXHAUSTED;
  else if (rc) s->wstatus = NET_GRPC_INTERNAL;
  if (rc && !s->werr[0]) snprintf(s->werr, sizeof s->werr, "%s", orr_strerror(rc));
}

static void pump(bcall *s);

static void bcall_free_queue(bcall *s) {
  if (s->cur) {
    orr_buf_free(&s->cur->b);
    free(s->cur);
    s->cur = NULL;
  }
  while (s->oh) {
    outbuf *o = s->oh;
    s->oh = o->next;
    orr_buf_free(&o->b);
    free(o);
  }
  s->ot = NULL;
}

/* Ends the call once the worker and the head call are done. */
static void bcall_try_end(bcall *s) {
  if (!s->fin_pending || s->running || s->head_running || s->finished) return;
  sidecar_blocks *bs = s->bs;
  s->finished = true;
  net_handoff_remove(&bs->out, &s->ready);
  bcall_free_queue(s);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  if (s->merge) storeapi_merge_free(s->merge);
  s->merge = NULL;
  snap_release(s->sn);
  s->sn = NULL;
  if (s->prev)
    s->prev->next = s->next;
  else
    bs->calls = s->next;
  if (s->next) s->next->prev = s->prev;
  storeapi_call_finish(s->c, s->fin_status, s->fin_msg); /* |s| is in the call's arena */
}

static void bcall_end(bcall *s, int status, const char *msg) {
  if (s->fin_pending) {
    bcall_try_end(s);
    return;
  }
  s->fin_pending = true;
  s->fin_status = status;
  s->fin_msg = msg ? orr_arena_strdup(storeapi_call_arena(s->c), msg) : NULL;
  if (msg && !s->fin_msg) s->fin_msg = "out of memory";
  if (s->running) {
    atomic_store(&s->cancelled, true);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
  if (s->head_running && s->hc) storeapi_client_series_cancel(s->hc); /* on_done follows */
  bcall_try_end(s);
}

/* The next queued message of the worker, or NULL; *done when the queue
 * will give no more. */
static const char *next_msg(bcall *s, uint32_t *len) {
  for (;;) {
    if (!s->cur) {
      pthread_mutex_lock(&s->mu);
      s->cur = s->oh;
      if (s->cur) {
        s->oh = s->cur->next;
        if (!s->oh) s->ot = NULL;
      }
      pthread_mutex_unlock(&s->mu);
      if (!s->cur) return NULL;
    }
    outbuf *o = s->cur;
    if (o->off < o->b.len) {
      memcpy(len, o->b.data + o->off, 4);
      const char *m = o->b.data + o->off + 4;
      o->off += 4 + (size_t)*len;
      return m;
    }
    pthread_mutex_lock(&s->mu);
    s->obytes -= o->b.len;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    orr_buf_free(&o->b);
    free(o);
    s->cur = NULL;
  }
}

/* Direct mode: the worker's messages as they are. */
static void pump_direct(bcall *s) {
  while (!s->blocked) {
    uint32_t len;
    const char *m = next_msg(s, &len);
    if (!m) break;
    int rc = storeapi_call_send_packed(s->c, m, len);
    if (rc == ORR_EAGAIN) {
      s->blocked = true;
      return;
    }
    if (rc) {
      bcall_end(s, rc == ORR_ECANCELED ? NET_GRPC_CANCELLED : NET_GRPC_INTERNAL, orr_strerror(rc));
      return;
    }
  }
  if (s->worker_done && !s->blocked && !s->cur && !s->oh) {
    if (s->wstatus)
      bcall_end(s, s->wstatus, s->werr);
    else
      bcall_end(s, NET_GRPC_OK, NULL);
  }
}

/* Merge mode (note 4): block messages into input 0, the head's into 1. */
static void pump_merge(bcall *s) {
  while (!s->blocked && !s->fin_pending) {
    while (!s->blocks_closed && storeapi_merge_buffered(s->merge, 0) < MERGE_BUFFERED) {
      uint32_t len;
      const char *m = next_msg(s, &len);
      if (!m) {
        if (s->worker_done && !s->oh && !s->cur) {
          if (s->wstatus) {
            bcall_end(s, s->wstatus, s->werr);
            return;
          }
          storeapi_merge_close(s->merge, 0);
          s->blocks_closed = true;
        }
        break;
      }
      Thanos__SeriesResponse *r =
          thanos__series_response__unpack(NULL, len, (const uint8_t *)m);
      if (!r || !r->series) {
        if (r) thanos__series_response__free_unpacked(r, NULL);
        bcall_end(s, NET_GRPC_INTERNAL, "cannot decode a block series");
        return;
      }
      Thanos__Series *ser = r->series;
      r->series = NULL;
      r->result_case = THANOS__SERIES_RESPONSE__RESULT__NOT_SET;
      thanos__series_response__free_unpacked(r, NULL);
      int rc = storeapi_merge_push(s->merge, 0, ser);
      if (rc) {
        bcall_end(s, NET_GRPC_INTERNAL, orr_strerror(rc));
        return;
      }
    }
    if (s->head_paused && storeapi_merge_buffered(s->merge, 1) < MERGE_BUFFERED / 2) {
      s->head_paused = false;
      storeapi_client_series_resume(s->hc);
    }
    storeapi_merged *mg;
    int rc = storeapi_merge_next(s->merge, &mg);
    if (rc == ORR_EAGAIN) return;
    if (rc == ORR_EEOF) {
      if (s->head_status != NET_GRPC_OK)
        bcall_end(s, s->head_status, s->head_err);
      else
        bcall_end(s, NET_GRPC_OK, NULL);
      return;
    }
    if (rc) {
      bcall_end(s, NET_GRPC_INTERNAL, orr_strerror(rc));
      return;
    }
    if (s->limit > 0 && s->sent >= s->limit) {
      storeapi_merged_free(mg);
      bcall_end(s, NET_GRPC_OK, NULL);
      return;
    }
    rc = storeapi_call_send_series(s->c, &mg->series);
    storeapi_merged_free(mg);
    s->sent++;
    if (rc == ORR_EAGAIN) {
      s->blocked = true;
      return;
    }
    if (rc) {
      bcall_end(s, rc == ORR_ECANCELED ? NET_GRPC_CANCELLED : NET_GRPC_INTERNAL, orr_strerror(rc));
      return;
    }
  }
}

static void pump(bcall *s) {
  if (s->fin_pending) {
    bcall_try_end(s);
    return;
  }
  if (s->merging)
    pump_merge(s);
  else
    pump_direct(s);
}

static void on_out(net_handoff_item *it, void *arg) {
  (void)arg;
  pump((bcall *)((char *)it - offsetof(bcall, ready)));
}

static void after_cb(uv_work_t *w, int status) {
  bcall *s = w->data;
  (void)status;
  s->running = false;
  s->worker_done = true;
  pump(s);
}

/* ---- the head part (note 4) */
/* Cuts the chunks of |ser| that start before |b| (their samples before
 * |b| are in the blocks); drops those that end before it. */
static int cut_head(Thanos__Series *ser, int64_t b) {
  size_t k = 0;
  for (size_t i = 0; i < ser->n_chunks; i++) {
    Thanos__AggrChunk *c = ser->chunks[i];
    if (c->max_time < b) {
      thanos__aggr_chunk__free_unpacked(c, NULL);
      continue;
    }
    if (c->min_time < b) {
      if (!c->raw || c->raw->type != THANOS__CHUNK__ENCODING__XOR) return ORR_EUNSUPPORTED;
      tsdb_xor_iter it;
      tsdb_xor_appender ap;
      if (tsdb_xor_appender_init(&ap)) return ORR_ENOMEM;
      tsdb_xor_iter_init(&it, c->raw->data.data, c->raw->data.len);
      int rc;
      int64_t first = INT64_MAX;
      while ((rc = tsdb_xor_iter_next(&it)) == 1) {
        if (it.t < b) continue;
        if (first == INT64_MAX) first = it.t;
        if ((rc = tsdb_xor_append(&ap, it.t, it.v)) != 0) break;
      }
      if (rc < 0) {
        tsdb_xor_appender_free(&ap);
        return rc;
      }
      size_t n;
      const uint8_t *p = tsdb_xor_bytes(&ap, &n);
      uint8_t *cp = malloc(n ? n : 1);
      if (!cp) {
        tsdb_xor_appender_free(&ap);
        return ORR_ENOMEM;
      }
      memcpy(cp, p, n);
      tsdb_xor_appender_free(&ap);
      free(c->raw->data.data);
      c->raw->data.data = cp;
      c->raw->data.len = n;
      c->min_time = first == INT64_MAX ? b : first;
    }
    ser->chunks[k++] = c;
  }
  ser->n_chunks = k;
  return 0;
}

static int head_series(const Thanos__SeriesResponse *resp, void *arg) {
  bcall *s = arg;
  if (s->fin_pending || resp->result_case != THANOS__SERIES_RESPONSE__RESULT_SERIES) return 0;
  /* The local client's message is the backend's: copy it for the merge. */
  size_t len = thanos__series__get_packed_size(resp->series);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return 0;
  thanos__series__pack(resp->series, buf);
  Thanos__Series *ser = thanos__series__unpack(NULL, len, buf);
  free(buf);
  int rc = ser ? cut_head(ser, s->sn->boundary) : ORR_ENOMEM;
  if (!rc && ser->n_chunks == 0) {
    thanos__series__free_unpacked(ser, NULL);
    return 0;
  }
  if (!rc) rc = storeapi_merge_push(s->merge, 1, ser);
  else if (ser) thanos__series__free_unpacked(ser, NULL);
  if (rc) {
    s->head_status = NET_GRPC_INTERNAL;
    s->head_err = orr_arena_sprintf(storeapi_call_arena(s->c), "head series: %s", orr_strerror(rc));
    bcall_end(s, s->head_status, s->head_err);
    return 0;
  }
  pump(s);
  if (!s->fin_pending && storeapi_merge_buffered(s->merge, 1) >= MERGE_BUFFERED) {
    s->head_paused = true;
    return NET_GRPC_PAUSE;
  }
  return 0;
}

static void head_done(int status, const char *message, void *arg) {
  bcall *s = arg;
  s->head_running = false;
  s->hc = NULL;
  s->head_paused = false;
  if (!s->fin_pending) {
    s->head_status = status;
    if (status != NET_GRPC_OK)
      s->head_err = orr_arena_strdup(storeapi_call_arena(s->c), message ? message : "");
    storeapi_merge_close(s->merge, 1);
    pump(s);
  } else {
    bcall_try_end(s);
  }
}

/* Note 6: whether |s| selects few enough series to be read on the loop. */
static bool small_call(const bcall *s) {
  if (s->maxt - s->mint > INLINE_SPAN_MS) return false;
  for (size_t i = 0; i < s->nms; i++)
    if (labels_matcher_type(s->ms[i]) != LABELS_MATCH_EQ || !labels_matcher_value(s->ms[i])[0])
      return false;
  orr_arena *a = orr_arena_new(0);
  if (!a) return false;
  size_t n = 0;
  for (size_t i = 0; i < s->sn->n && n <= INLINE_SERIES; i++) {
    const tsdb_meta *m = tsdb_block_meta(s->sn->v[i]->b);
    if (m->max_time <= s->mint || m->min_time > s->maxt) continue;
    tsdb_postings *p;
    if (tsdb_index_select(tsdb_block_index(s->sn->v[i]->b), s->ms, s->nms, a, &p)) {
      n = SIZE_MAX; /* the worker reports it */
      break;
    }
    while (n <= INLINE_SERIES && tsdb_postings_next(p)) n++;
    orr_arena_reset(a);
  }
  orr_arena_destroy(a);
  return n <= INLINE_SERIES;
}

/* ---------------------------------------------------------------- backend */
static bcall *find_call(sidecar_blocks *bs, storeapi_call *c) {
  for (bcall *s = bs->calls; s; s = s->next)
    if (s->c == c) return s;
  return NULL;
}

static void be_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  sidecar_blocks *bs = arg;
  const Thanos__SeriesRequest *m = req->msg;
  snap *sn = bs->cur;
  int64_t mint = m->min_time, maxt = m->max_time;
  int64_t lo = prom_source_min_time(bs->src);
  if (mint < lo) mint = lo;
  if (bs->closing || bs->ooo || m->skip_chunks || !sn || !sn->usable || mint >= sn->boundary ||
      maxt < mint) {
    bs->inner.series(bs->inner.arg, c, req); /* note 5 */
    return;
  }
  orr_arena *a = storeapi_call_arena(c);
  bcall *s = orr_arena_calloc(a, 1, sizeof(*s));
  if (!s || labels_copy(a, prom_source_external_labels(bs->src), &s->ext)) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (!storeapi_split_external(&s->ext, req->matchers, req->nmatchers, a, &s->ms, &s->nms)) {
    storeapi_call_finish(c, NET_GRPC_OK, NULL);
    return;
  }
  if (s->nms == 0) {
    storeapi_call_finish(c, NET_GRPC_INVALID_ARGUMENT,
                         "no matchers specified (excluding external labels)");
    return;
  }
  s->bs = bs;
  s->c = c;
  s->sn = sn;
  atomic_fetch_add(&sn->refs, 1);
  s->drop = m->without_replica_labels;
  s->ndrop = m->n_without_replica_labels;
  s->limit = m->limit;
  s->mint = mint;
  s->maxt = maxt < sn->boundary ? maxt : sn->boundary - 1;
  s->merging = maxt >= sn->boundary;
  if (bs->m.calls) orr_counter_inc(bs->m.calls);
  atomic_init(&s->cancelled, false);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->next = bs->calls;
  if (bs->calls) bs->calls->prev = s;
  bs->calls = s;
  if (s->merging) {
    if (storeapi_merge_new(2, &s->merge)) {
      bcall_end(s, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    Thanos__SeriesRequest hr = *m;
    hr.min_time = sn->boundary;
    hr.limit = 0; /* applied to the merged stream */
    hr.max_time = maxt;
    s->head_running = true;
    if (storeapi_client_series(bs->local, &hr, 0, head_series, head_done, s, &s->hc)) {
      s->head_running = false;
      bcall_end(s, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
  }
  s->running = true;
  s->work.data = s;
  if (small_call(s)) {
    s->inline_run = true;
    work_cb(&s->work);
    after_cb(&s->work, 0);
    return;
  }
  if (uv_queue_work(bs->loop, &s->work, work_cb, after_cb)) {
    s->running = false;
    bcall_end(s, NET_GRPC_INTERNAL, "cannot queue the block read");
  }
}

static void be_cancel(void *arg, storeapi_call *c) {
  sidecar_blocks *bs = arg;
  bcall *s = find_call(bs, c);
  if (!s) {
    bs->inner.cancel(bs->inner.arg, c);
    return;
  }
  bcall_end(s, NET_GRPC_CANCELLED, "cancelled");
}

static void be_resume(void *arg, storeapi_call *c) {
  sidecar_blocks *bs = arg;
  bcall *s = find_call(bs, c);
  if (!s) {
    bs->inner.resume(bs->inner.arg, c);
    return;
  }
  s->blocked = false;
  pump(s);
}

static void be_info(void *arg, storeapi_call *c) {
  sidecar_blocks *bs = arg;
  bs->inner.info(bs->inner.arg, c);
}
static void be_label_names(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  sidecar_blocks *bs = arg;
  bs->inner.label_names(bs->inner.arg, c, req);
}
static void be_label_values(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  sidecar_blocks *bs = arg;
  bs->inner.label_values(bs->inner.arg, c, req);
}

/* ---------------------------------------------------------------- API */
int sidecar_blocks_new(uv_loop_t *loop, const char *dir, prom_source *src,
                       void (*on_min_time)(void *arg, int64_t mint), void *arg,
                       const sidecar_blocks_metrics *m, sidecar_blocks **out) {
  sidecar_blocks *bs = calloc(1, sizeof(*bs));
  if (!bs || !(bs->dir = strdup(dir))) {
    free(bs);
    return ORR_ENOMEM;
  }
  bs->loop = loop;
  bs->src = src;
  bs->inner = prom_source_backend(src);
  bs->on_min_time = on_min_time;
  bs->min_arg = arg;
  if (m) bs->m = *m;
  if (storeapi_client_new_local(loop, &bs->inner, &bs->local)) {
    free(bs->dir);
    free(bs);
    return ORR_ENOMEM;
  }
  net_handoff_init(loop, &bs->out, on_out, bs);
  uv_timer_init(loop, &bs->timer);
  bs->timer.data = bs;
  uv_timer_start(&bs->timer, on_refresh_timer, 0, REFRESH_MS);
  *out = bs;
  return 0;
}

storeapi_backend sidecar_blocks_backend(sidecar_blocks *bs) {
  storeapi_backend be = {be_info, be_series, be_label_names, be_label_values,
                         be_cancel, be_resume, bs};
  return be;
}

void sidecar_blocks_set_ooo(sidecar_blocks *bs, bool ooo) {
  if (ooo && !bs->ooo)
    orr_log_warn("Prometheus accepts out-of-order samples (tsdb.out_of_order_time_window); "
                 "not reading its blocks, every Series call goes through remote read", NULL);
  bs->ooo = ooo;
}

static void bs_handle_closed(uv_handle_t *h) {
  sidecar_blocks *bs = h->data;
  bs->pending_closes--;
  if (bs->pending_closes == 0 && bs->on_closed) bs->on_closed(bs->closed_arg);
}
static void bs_local_closed(void *arg) {
  sidecar_blocks *bs = arg;
  bs->pending_closes--;
  if (bs->pending_closes == 0 && bs->on_closed) bs->on_closed(bs->closed_arg);
}

void sidecar_blocks_close(sidecar_blocks *bs, void (*on_closed)(void *arg), void *arg) {
  bs->closing = true;
  bs->on_closed = on_closed;
  bs->closed_arg = arg;
  bs->pending_closes = 3 + (bs->refreshing ? 1 : 0);
  uv_timer_stop(&bs->timer);
  uv_close((uv_handle_t *)&bs->timer, bs_handle_closed);
  net_handoff_close(&bs->out, bs_handle_closed);
  storeapi_client_close(bs->local, bs_local_closed, bs);
}

void sidecar_blocks_free(sidecar_blocks *bs) {
  if (!bs) return;
  snap_release(bs->cur);
  net_handoff_destroy(&bs->out);
  free(bs->dir);
  free(bs);
}
