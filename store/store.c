/* store.c: the store gateway daemon — bucket sync on a thread of its own,
 * the loaded blocks with their index-headers, and the StoreAPI backend that
 * hands each call to a worker thread (query.c) and streams the answer.
 *
 * NOTES ON THE DESIGN
 * 1. Block lifecycle: LISTED (meta.json read, filters passed) → LOADING
 *    (index-header built from ranged reads into <data-dir>/<ulid>/ if
 *    missing, opened; a corrupt one is rebuilt once) → LOADED (in the set,
 *    acquired by queries) → DROPPED (gone from the bucket or filtered out:
 *    removed from the set; freed, and its local directory removed, when the
 *    last query releases it). A block that fails to load is retried by the
 *    next sync and never fails the others.
 * 2. The set is an array of acquired pointers swapped under |mu|; a query
 *    takes its blocks (acquire) under the lock once, so a sync never waits
 *    for a query and a query never sees a half-loaded block.
 * 3. Threads: the loop thread owns gRPC and the calls; the sync thread owns
 *    loading; each call's work runs on the libuv pool (uv_queue_work) and
 *    touches nothing of the loop's. At most --store.grpc.series-max-concurrency
 *    Series calls run at once; the others wait in arrival order.
 * 4. The store is ready (/-/ready, gRPC listening) after the first sync.
 * 5. Lazy index-headers (--store.enable-index-header-lazy-reader): loading
 *    a block builds and validates its header, then closes it (|hdr| NULL).
 *    A query pins each block it takes (take_blocks, on the loop) and its
 *    worker maps the header of every pinned block under the block's
 *    |hdr_mu| before the query runs (rebuilt from the bucket if the file is
 *    gone); the query's end unpins (on the loop). A timer on the loop
 *    unmaps, under |hdr_mu|, the header of a block nobody pins that has
 *    been idle for the timeout. So a header is never
 *    unmapped under a query, and never mapped for a block no query wants.
 *    Without the flag every block's header stays mapped from load to free.
 * 6. A Series answer streams: the worker hands buffers of packed messages
 *    to its call's queue (emit: it waits while more than OUT_QUEUE_BYTES
 *    are queued) and wakes the loop (st->out); the loop sends them and,
 *    when gRPC pushes back (ORR_EAGAIN), waits for resume. The queued
 *    bytes count against --chunk-pool-size until sent. The call finishes
 *    once the worker is done and its queue is empty. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "store_int.h"

typedef struct scall scall;

/* Note 6: bound of a call's queued answer (beside gRPC's own send queue). */
#define OUT_QUEUE_BYTES (512u * 1024)

struct store {
  store_config cfg;
  daemon_ctx *d;
  uv_loop_t *loop;
  objstore_bucket *bucket;
  net_grpc_server *grpc;
  storeapi_server *sapi;
  store_cache *cache;
  store_metrics m;
  atomic_int_least64_t pool_used;
  pthread_mutex_t mu; /* guards blocks/nblocks */
  store_block **blocks;
  size_t nblocks;
  /* sync thread */
  pthread_t sync_th;
  bool sync_running;
  pthread_mutex_t sync_mu;
  pthread_cond_t sync_cv;
  bool stop;
  uv_async_t synced_async;
  atomic_bool first_sync_done;
  bool ready;
  /* Series calls */
  net_handoff out; /* note 6: calls with answer buffers to send */
  int64_t active;
  scall *pend_head, *pend_tail;
  int pending_closes;
  int exit_code;
  orr_series *blocks_loaded, *block_loads, *block_load_failures, *block_drops;
  bucket_fetch_metrics fetch; /* thanos_blocks_meta_* */
  orr_series *lazy_loads, *lazy_load_failures, *lazy_unloads, *lazy_unload_failures;
  orr_series *lazy_load_duration;
  uv_timer_t idle_timer; /* note 5 */
  bool idle_timer_on;
};

/* ---------------------------------------------------------------- blocks */
void store_block_acquire(store_block *b) { atomic_fetch_add(&b->refs, 1); }

void store_block_release(store_block *b) {
  if (!b || atomic_fetch_sub(&b->refs, 1) != 1) return;
  tsdb_index_header_close(b->hdr);
  /* A dropped block's directory goes with its last reader (note 5: a lazy
   * header may still be mapped for a query that took the block before). */
  if (b->remove_dir && b->dir) orr_remove_tree(b->dir);
  free(b->dir);
  pthread_mutex_destroy(&b->hdr_mu);
  orr_arena_destroy(b->arena);
  free(b);
}

typedef struct range_ctx {
  objstore_bucket *bucket;
  char key[64];
} range_ctx;

static int read_range(void *arg, uint64_t off, uint64_t len, orr_buf *out, char *err,
                      size_t errlen) {
  range_ctx *r = arg;
  return objstore_get_range(r->bucket, r->key, off, len, out, err, errlen);
}

/* Opens |b|'s index-header into |*out|, building it from the bucket first
 * when it is missing and rebuilding it once when it is unusable. Returns 0
 * or an ORR_E* code with |err| set. Blocking (worker or sync thread). */
static int open_header(store *st, store_block *b, tsdb_index_header **out, char *err,
                       size_t errlen) {
  range_ctx rc = {st->bucket, ""};
  snprintf(rc.key, sizeof rc.key, "%s/index", b->id);
  char path[4200];
  snprintf(path, sizeof path, "%s/index-header", b->dir);
  int r = ORR_ENOTFOUND;
  for (int attempt = 0; attempt < 2; attempt++) {
    r = tsdb_index_header_open(path, st->cfg.posting_offsets_sampling, out, err, errlen);
    if (r == 0) return 0;
    if (r != ORR_ENOTFOUND) {
      orr_log_warn("index-header unusable; rebuilding", "block", b->id, "err", err, NULL);
      unlink(path);
    }
    if (attempt == 1) break;
    if (mkdir(b->dir, 0755) && errno != EEXIST) {
      snprintf(err, errlen, "mkdir %.600s: %s", b->dir, strerror(errno));
      return ORR_EIO;
    }
    if ((r = tsdb_index_header_write(read_range, &rc, b->index_size, path, err, errlen)) != 0)
      return r;
  }
  return r;
}

/* Note 5: a query takes |b|; its header stays mapped until the unpin.
 * Pins, unpins and the unloader all run on the loop thread, so the count
 * needs no lock; a worker maps only a pinned block's header. */
static void block_pin(store_block *b) {
  if (b->lazy) b->hdr_users++;
}

static void block_unpin(store_block *b) {
  if (!b->lazy) return;
  b->hdr_users--;
  b->hdr_idle_since_ns = orr_mono_ns();
}

/* Maps the header of pinned |b| if it is not (worker thread). 0 or an
 * ORR_E* code with |err| set. */
static int block_map(store *st, store_block *b, char *err, size_t errlen) {
  if (!b->lazy) return 0;
  int rc = 0;
  pthread_mutex_lock(&b->hdr_mu);
  if (!b->hdr) {
    uint64_t t0 = orr_mono_ns();
    rc = open_header(st, b, &b->hdr, err, errlen);
    orr_counter_inc(st->lazy_loads);
    if (rc) {
      orr_counter_inc(st->lazy_load_failures);
      b->hdr = NULL;
    } else {
      orr_histogram_observe(st->lazy_load_duration, (double)(orr_mono_ns() - t0) / 1e9);
    }
  }
  pthread_mutex_unlock(&b->hdr_mu);
  return rc;
}

/* The end of a query: unpin and release its blocks. */
static void release_query_blocks(store_block **v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    block_unpin(v[i]);
    store_block_release(v[i]);
  }
  free(v);
}

/* Note 1: LOADING. Returns the block (refs 1) or NULL with |err| set. */
static store_block *load_block(store *st, const bucket_block_meta *bm, char *err, size_t errlen) {
  store_block *b = calloc(1, sizeof(*b));
  if (!b || !(b->arena = orr_arena_new(4096))) {
    free(b);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&b->hdr_mu, NULL);
  atomic_init(&b->refs, 1);
  b->ulid = bm->ulid;
  tsdb_ulid_format(&b->ulid, b->id);
  /* Copy the meta's strings we keep into the block's arena. */
  b->meta = bm->meta;
  b->meta.sources = NULL;
  b->meta.nsources = 0;
  b->meta.parents = NULL;
  b->meta.nparents = 0;
  b->meta.hints = NULL;
  b->meta.nhints = 0;
  b->meta.thanos.segment_files = NULL;
  b->meta.thanos.nsegment_files = 0;
  b->meta.thanos.files = NULL;
  b->meta.thanos.nfiles = 0;
  b->meta.thanos.source = NULL;
  if (labels_copy(b->arena, &bm->meta.thanos.labels, &b->ext)) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  b->meta.thanos.labels = b->ext;
  b->resolution = bm->meta.has_thanos ? bm->meta.thanos.downsample_resolution : 0;
  range_ctx rc = {st->bucket, ""};
  snprintf(rc.key, sizeof rc.key, "%s/index", b->id);
  objstore_attrs at;
  if (objstore_attributes(st->bucket, rc.key, &at, err, errlen)) goto fail;
  b->index_size = at.size;
  size_t dl = strlen(st->cfg.data_dir) + 1 + TSDB_ULID_STRLEN + 1;
  if (!(b->dir = malloc(dl))) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  snprintf(b->dir, dl, "%s/%s", st->cfg.data_dir, b->id);
  if (open_header(st, b, &b->hdr, err, errlen)) goto fail;
  if (st->cfg.lazy_reader) {
    /* Note 5: built and validated; mapped again by the first query. */
    tsdb_index_header_close(b->hdr);
    b->hdr = NULL;
    b->lazy = true;
    b->hdr_idle_since_ns = orr_mono_ns();
  }
  return b;
fail:
  store_block_release(b);
  return NULL;
}

typedef struct load_job {
  store *st;
  bucket_block_meta **todo;
  size_t n;
  atomic_size_t next;
  store_block **out; /* per todo entry, NULL on failure */
} load_job;

static void *load_worker(void *arg) {
  load_job *j = arg;
  for (;;) {
    size_t i = atomic_fetch_add(&j->next, 1);
    if (i >= j->n) break;
    char err[768] = "";
    uint64_t t0 = orr_mono_ns();
    j->out[i] = load_block(j->st, j->todo[i], err, sizeof err);
    char id[TSDB_ULID_STRLEN + 1];
    tsdb_ulid_format(&j->todo[i]->ulid, id);
    if (!j->out[i]) {
      orr_counter_inc(j->st->block_load_failures);
      orr_log_error("cannot load block", "block", id, "err", err, NULL);
    } else {
      orr_counter_inc(j->st->block_loads);
      orr_log_debug("loaded block", "block", id, "elapsed_ms",
                    ORR_LOG_INT((orr_mono_ns() - t0) / 1000000), NULL);
    }
  }
  return NULL;
}

static int ulid_ptr_cmp(const void *a, const void *b) {
  return tsdb_ulid_cmp(&(*(store_block *const *)a)->ulid, &(*(store_block *const *)b)->ulid);
}

static store_block *find_loaded(store_block **v, size_t n, const tsdb_ulid *u) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = tsdb_ulid_cmp(&v[mid]->ulid, u);
    if (c == 0) return v[mid];
    if (c < 0) lo = mid + 1; else hi = mid;
  }
  return NULL;
}

/* Label sharding (Thanos's LabelShardedMetaFilter): a block is left out
 * unless its external labels plus __block_id=<ULID> come out of the relabel
 * rules non-empty. Runs before the other filters, as in Thanos, so that
 * deduplication only weighs this shard's blocks. Returns 0 or ORR_ENOMEM. */
static int shard_filter(const labels_relabel *rl, bucket_block_meta *metas, size_t n, orr_arena *a) {
  for (size_t i = 0; i < n; i++) {
    bucket_block_meta *m = &metas[i];
    if (m->status != BUCKET_META_OK || m->filtered) continue;
    char *id = orr_arena_alloc(a, TSDB_ULID_STRLEN + 1);
    if (!id) return ORR_ENOMEM;
    tsdb_ulid_format(&m->ulid, id);
    labels_builder b;
    labels_set in, out;
    labels_builder_init(&b, a, &m->meta.thanos.labels);
    labels_builder_set(&b, "__block_id", id);
    if (labels_builder_finish(&b, &in)) return ORR_ENOMEM;
    int kept = labels_relabel_apply(rl, a, &in, &out);
    if (kept < 0) return kept;
    if (!kept || out.n == 0) m->filtered = "label-excluded";
  }
  return 0;
}

/* One sync: list, read metas, filter, load the new blocks, swap the set. */
static int sync_once(store *st) {
  uint64_t t0 = orr_mono_ns();
  orr_counter_inc(st->fetch.syncs); /* attempts, as Thanos counts them */
  orr_arena *a = orr_arena_new(0);
  char err[768] = "";
  tsdb_ulid *ids;
  size_t n;
  bucket_block_meta *metas;
  int rc = a ? 0 : ORR_ENOMEM;
  if (rc == 0) rc = bucket_list_blocks(st->bucket, a, &ids, &n, err, sizeof err);
  if (rc == 0)
    rc = bucket_fetch_metas(st->bucket, ids, n, (int)st->cfg.meta_fetch_concurrency, a, &metas);
  if (rc == 0 && st->cfg.relabel) rc = shard_filter(st->cfg.relabel, metas, n, a);
  if (rc == 0) {
    bucket_filter_opts fo = {.min_time = st->cfg.min_time, .max_time = st->cfg.max_time,
                             .consistency_delay_ms = st->cfg.consistency_delay_ms,
                             .ignore_deletion_marks_delay_ms = st->cfg.ignore_deletion_marks_delay_ms,
                             .dedup = true};
    rc = bucket_filter(st->bucket, metas, n, &fo, a);
  }
  if (rc) {
    orr_counter_inc(st->fetch.sync_failures);
    orr_log_error("bucket sync failed", "bucket", objstore_name(st->bucket), "err",
                  err[0] ? err : orr_strerror(rc), NULL);
    orr_arena_destroy(a);
    return rc;
  }
  bucket_synced_gauge_set(&st->fetch.synced, metas, n, 0);
  /* Current set (acquired copies). */
  pthread_mutex_lock(&st->mu);
  size_t nold = st->nblocks;
  store_block **old = calloc(nold ? nold : 1, sizeof(*old));
  for (size_t i = 0; old && i < nold; i++) {
    old[i] = st->blocks[i];
    store_block_acquire(old[i]);
  }
  pthread_mutex_unlock(&st->mu);
  bucket_block_meta **todo = calloc(n ? n : 1, sizeof(*todo));
  store_block **keep = calloc(n ? n : 1, sizeof(*keep));
  size_t ntodo = 0, nkeep = 0;
  if (!old || !todo || !keep) rc = ORR_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (metas[i].status != BUCKET_META_OK) {
      if (metas[i].status != BUCKET_META_MISSING) {
        char id[TSDB_ULID_STRLEN + 1];
        tsdb_ulid_format(&metas[i].ulid, id);
        orr_log_warn("cannot read block meta", "block", id, "err", metas[i].err, NULL);
      }
      continue;
    }
    if (metas[i].filtered) continue;
    store_block *have = find_loaded(old, nold, &metas[i].ulid);
    if (have) {
      store_block_acquire(have);
      keep[nkeep++] = have;
    } else {
      todo[ntodo++] = &metas[i];
    }
  }
  if (rc == 0 && ntodo) {
    load_job j = {.st = st, .todo = todo, .n = ntodo, .out = calloc(ntodo, sizeof(store_block *))};
    atomic_init(&j.next, 0);
    if (!j.out) {
      rc = ORR_ENOMEM;
    } else {
      size_t nt = st->cfg.block_sync_concurrency > 1 ? (size_t)st->cfg.block_sync_concurrency : 1;
      if (nt > ntodo) nt = ntodo;
      pthread_t *th = calloc(nt, sizeof(*th));
      size_t started = 0;
      for (size_t i = 1; th && i < nt; i++)
        if (pthread_create(&th[started], NULL, load_worker, &j) == 0) started++;
      load_worker(&j);
      for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
      free(th);
      for (size_t i = 0; i < ntodo; i++)
        if (j.out[i]) keep[nkeep++] = j.out[i];
      free(j.out);
    }
  }
  if (rc == 0) {
    qsort(keep, nkeep, sizeof(*keep), ulid_ptr_cmp);
    pthread_mutex_lock(&st->mu);
    store_block **prev = st->blocks;
    size_t nprev = st->nblocks;
    st->blocks = keep;
    st->nblocks = nkeep;
    keep = NULL;
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < nprev; i++) {
      if (!find_loaded(st->blocks, st->nblocks, &prev[i]->ulid)) {
        orr_log_info("dropping block", "block", prev[i]->id, NULL);
        orr_counter_inc(st->block_drops);
        prev[i]->remove_dir = true; /* by the last release */
      }
      store_block_release(prev[i]);
    }
    free(prev);
    orr_gauge_set(st->blocks_loaded, (double)st->nblocks);
    orr_histogram_observe(st->fetch.sync_duration, (double)(orr_mono_ns() - t0) / 1e9);
  }
  for (size_t i = 0; i < nold; i++) store_block_release(old[i]);
  free(old);
  for (size_t i = 0; keep && i < nkeep; i++) store_block_release(keep[i]);
  free(keep);
  free(todo);
  orr_arena_destroy(a);
  /* Building index-headers left large freed buffers in malloc's arenas. */
  malloc_trim(0);
  return rc;
}

static void *sync_thread(void *arg) {
  store *st = arg;
  for (;;) {
    sync_once(st);
    if (!atomic_exchange(&st->first_sync_done, true)) uv_async_send(&st->synced_async);
    pthread_mutex_lock(&st->sync_mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = st->cfg.sync_interval_ms > 0 ? st->cfg.sync_interval_ms : 180000;
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    while (!st->stop && pthread_cond_timedwait(&st->sync_cv, &st->sync_mu, &ts) == 0) {
    }
    bool stop = st->stop;
    pthread_mutex_unlock(&st->sync_mu);
    if (stop) break;
  }
  return NULL;
}

/* Acquired blocks overlapping [mint, maxt] at a resolution the request
 * accepts; a finer block is left out where a coarser accepted one covers
 * its whole range (Thanos fills gaps of the coarsest with finer ones). */
static store_block **take_blocks(store *st, int64_t mint, int64_t maxt, int64_t max_res,
                                 size_t *n) {
  pthread_mutex_lock(&st->mu);
  store_block **v = calloc(st->nblocks ? st->nblocks : 1, sizeof(*v));
  size_t k = 0;
  for (size_t i = 0; v && i < st->nblocks; i++) {
    store_block *b = st->blocks[i];
    if (b->meta.max_time <= mint || b->meta.min_time > maxt) continue;
    if (b->resolution > max_res) continue;
    bool covered = false;
    for (size_t j = 0; j < st->nblocks && !covered; j++) {
      store_block *o = st->blocks[j];
      covered = o != b && o->resolution > b->resolution && o->resolution <= max_res &&
                o->meta.min_time <= b->meta.min_time && o->meta.max_time >= b->meta.max_time &&
                labels_equal(&o->ext, &b->ext);
    }
    if (covered) continue;
    store_block_acquire(b);
    block_pin(b);
    v[k++] = b;
  }
  pthread_mutex_unlock(&st->mu);
  *n = k;
  return v;
}

/* ---------------------------------------------------------------- calls */
typedef struct outbuf {
  struct outbuf *next;
  orr_buf b;
  size_t off; /* sent up to */
} outbuf;

struct scall {
  store *st;
  storeapi_call *c;
  uv_work_t work;
  store_query q;
  atomic_bool cancelled;
  bool queued, running, blocked, streams, worker_done;
  scall *next;
  /* note 6: |mu| guards the queue; |cur| is the loop's */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  outbuf *oh, *ot, *cur;
  size_t obytes; /* queued, |cur| included */
  net_handoff_item ready; /* on st->out */
};

static void start_next(store *st);

static void outbuf_free(store *st, outbuf *o) {
  atomic_fetch_sub(&st->pool_used, (int64_t)o->b.len);
  orr_buf_free(&o->b);
  free(o);
}

static void scall_done(scall *s, int status, const char *msg) {
  store *st = s->st;
  bool series = !s->q.labels_call;
  if (s->streams) {
    net_handoff_remove(&st->out, &s->ready);
    if (s->cur) outbuf_free(st, s->cur);
    while (s->oh) {
      outbuf *o = s->oh;
      s->oh = o->next;
      outbuf_free(st, o);
    }
    s->cur = s->ot = NULL;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    s->streams = false;
  }
  release_query_blocks(s->q.blocks, s->q.nblocks);
  s->q.blocks = NULL;
  atomic_fetch_sub(&st->pool_used, s->q.pool_reserved);
  orr_arena_destroy(s->q.a);
  s->q.a = NULL;
  storeapi_call_finish(s->c, status, msg);
  if (series) {
    st->active--;
    start_next(st);
  }
}

/* Note 6, on the worker: queues |buf| (taken over) for the loop. */
static int call_emit(void *arg, orr_buf *buf) {
  scall *s = arg;
  store *st = s->st;
  outbuf *o = malloc(sizeof(*o));
  if (!o) {
    orr_buf_free(buf);
    return ORR_ENOMEM;
  }
  o->next = NULL;
  o->b = *buf;
  o->off = 0;
  *buf = (orr_buf){0};
  atomic_fetch_add(&st->pool_used, (int64_t)o->b.len);
  pthread_mutex_lock(&s->mu);
  while (s->obytes >= OUT_QUEUE_BYTES && !atomic_load(&s->cancelled))
    pthread_cond_wait(&s->cv, &s->mu);
  if (atomic_load(&s->cancelled)) {
    pthread_mutex_unlock(&s->mu);
    outbuf_free(st, o);
    return ORR_ECANCELED;
  }
  if (s->ot)
    s->ot->next = o;
  else
    s->oh = o;
  s->ot = o;
  s->obytes += o->b.len;
  pthread_mutex_unlock(&s->mu);
  net_handoff_push(&st->out, &s->ready);
  return 0;
}

/* Stops the worker of |s| (waiting in call_emit or between reads). */
static void stop_worker(scall *s) {
  atomic_store(&s->cancelled, true);
  if (!s->streams) return;
  pthread_mutex_lock(&s->mu);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* Note 6, on the loop: sends what is queued until gRPC pushes back. */
static void pump(scall *s) {
  store *st = s->st;
  while (!s->blocked) {
    if (!s->cur) {
      pthread_mutex_lock(&s->mu);
      s->cur = s->oh;
      if (s->cur) {
        s->oh = s->cur->next;
        if (!s->oh) s->ot = NULL;
      }
      pthread_mutex_unlock(&s->mu);
      if (!s->cur) break;
    }
    outbuf *o = s->cur;
    while (o->off < o->b.len) {
      uint32_t len;
      memcpy(&len, o->b.data + o->off, 4);
      const char *m = o->b.data + o->off + 4;
      o->off += 4 + (size_t)len;
      int rc = storeapi_call_send_packed(s->c, m, len);
      if (rc == ORR_EAGAIN) { /* kept: wait for resume */
        s->blocked = true;
        break;
      }
      if (rc) {
        stop_worker(s);
        if (!s->running)
          scall_done(s, rc == ORR_ECANCELED ? NET_GRPC_CANCELLED : NET_GRPC_INTERNAL,
                     orr_strerror(rc));
        return;
      }
    }
    if (o->off < o->b.len) break;
    pthread_mutex_lock(&s->mu);
    s->obytes -= o->b.len;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    s->cur = NULL;
    outbuf_free(st, o);
  }
  if (s->worker_done && !s->blocked && !s->cur) scall_done(s, NET_GRPC_OK, NULL);
}

static void on_out(net_handoff_item *it, void *arg) {
  (void)arg;
  pump((scall *)((char *)it - offsetof(scall, ready)));
}

static void work_cb(uv_work_t *w) {
  scall *s = w->data;
  for (size_t i = 0; i < s->q.nblocks; i++) {
    char err[600] = "";
    if (block_map(s->st, s->q.blocks[i], err, sizeof err)) {
      s->q.status = NET_GRPC_INTERNAL;
      snprintf(s->q.err, sizeof s->q.err, "block %s: load index-header: %s", s->q.blocks[i]->id,
               err);
      return;
    }
  }
  store_query_run(&s->q);
}

static void after_cb(uv_work_t *w, int status) {
  scall *s = w->data;
  s->running = false;
  if (atomic_load(&s->cancelled) || storeapi_call_cancelled(s->c)) {
    scall_done(s, NET_GRPC_CANCELLED, "cancelled");
    return;
  }
  if (s->q.status != NET_GRPC_OK) {
    if (s->q.status == NET_GRPC_RESOURCE_EXHAUSTED || s->q.status == NET_GRPC_UNAVAILABLE ||
        s->q.status == NET_GRPC_INTERNAL)
      orr_log_warn("request failed", "err", s->q.err, NULL);
    scall_done(s, s->q.status, s->q.err);
    return;
  }
  if (!s->q.labels_call) {
    s->worker_done = true;
    pump(s);
    return;
  }
  /* The reply releases the call and |s| with it: keep what is freed after. */
  store_block **blocks = s->q.blocks;
  size_t nblocks = s->q.nblocks;
  orr_arena *qa = s->q.a;
  atomic_fetch_sub(&s->st->pool_used, s->q.pool_reserved);
  if (s->q.names) {
    Thanos__LabelNamesResponse r = THANOS__LABEL_NAMES_RESPONSE__INIT;
    r.names = s->q.strs;
    r.n_names = s->q.nstrs;
    storeapi_call_reply_label_names(s->c, &r);
  } else {
    Thanos__LabelValuesResponse r = THANOS__LABEL_VALUES_RESPONSE__INIT;
    r.values = s->q.strs;
    r.n_values = s->q.nstrs;
    storeapi_call_reply_label_values(s->c, &r);
  }
  release_query_blocks(blocks, nblocks);
  orr_arena_destroy(qa);
}

static void run_call(scall *s) {
  store *st = s->st;
  s->running = true;
  s->work.data = s;
  int rc = uv_queue_work(st->loop, &s->work, work_cb, after_cb);
  if (rc) {
    s->running = false;
    scall_done(s, NET_GRPC_INTERNAL, uv_strerror(rc));
  }
}

static void start_next(store *st) {
  while (st->pend_head &&
         (st->cfg.series_max_concurrency <= 0 || st->active < st->cfg.series_max_concurrency)) {
    scall *s = st->pend_head;
    st->pend_head = s->next;
    if (!st->pend_head) st->pend_tail = NULL;
    s->queued = false;
    st->active++;
    run_call(s);
  }
}

static scall *scall_new(store *st, storeapi_call *c) {
  orr_arena *ca = storeapi_call_arena(c);
  scall *s = orr_arena_calloc(ca, 1, sizeof(*s));
  if (!s || !(s->q.a = orr_arena_new(0))) return NULL;
  s->st = st;
  s->c = c;
  atomic_init(&s->cancelled, false);
  s->q.st = st;
  s->q.bucket = st->bucket;
  s->q.cache = st->cache;
  s->q.m = &st->m;
  s->q.cfg = &st->cfg;
  s->q.pool_used = &st->pool_used;
  s->q.cancelled = &s->cancelled;
  storeapi_call_set_data(c, s);
  return s;
}

static void be_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  store *st = arg;
  scall *s = scall_new(st, c);
  if (!s) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  const Thanos__SeriesRequest *m = req->msg;
  store_query *q = &s->q;
  q->mint = m->min_time;
  q->maxt = m->max_time;
  q->matchers = req->matchers;
  q->nmatchers = req->nmatchers;
  q->skip_chunks = m->skip_chunks;
  q->aggrs = m->aggregates;
  q->naggrs = m->n_aggregates;
  q->drop = m->without_replica_labels;
  q->ndrop = m->n_without_replica_labels;
  q->limit = m->limit;
  q->blocks = take_blocks(st, q->mint, q->maxt,
                          m->max_resolution_window > 0 ? m->max_resolution_window : 0, &q->nblocks);
  if (!q->blocks) {
    orr_arena_destroy(q->a);
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->streams = true;
  q->emit = call_emit;
  q->emit_arg = s;
  s->queued = true;
  if (st->pend_tail)
    st->pend_tail->next = s;
  else
    st->pend_head = s;
  st->pend_tail = s;
  start_next(st);
}

static void be_labels(store *st, storeapi_call *c, const storeapi_label_req *req, bool names) {
  scall *s = scall_new(st, c);
  if (!s) {
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  store_query *q = &s->q;
  q->labels_call = true;
  q->names = names;
  q->label = req->label;
  q->mint = req->start;
  q->maxt = req->end;
  if (q->mint == 0 && q->maxt == 0) {
    q->mint = INT64_MIN;
    q->maxt = INT64_MAX;
  }
  q->matchers = req->matchers;
  q->nmatchers = req->nmatchers;
  q->drop = req->without_replica_labels;
  q->ndrop = req->nwithout;
  q->limit = req->limit;
  q->blocks = take_blocks(st, q->mint, q->maxt, INT64_MAX, &q->nblocks);
  if (!q->blocks) {
    orr_arena_destroy(q->a);
    storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  run_call(s);
}

static void be_label_names(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  be_labels(arg, c, req, true);
}
static void be_label_values(void *arg, storeapi_call *c, const storeapi_label_req *req) {
  be_labels(arg, c, req, false);
}

static void be_cancel(void *arg, storeapi_call *c) {
  store *st = arg;
  scall *s = storeapi_call_data(c);
  if (!s) return;
  stop_worker(s);
  if (s->running) return; /* after_cb finishes */
  if (s->queued) {
    scall **pp = &st->pend_head;
    scall *prev = NULL;
    while (*pp && *pp != s) {
      prev = *pp;
      pp = &(*pp)->next;
    }
    if (*pp) {
      *pp = s->next;
      if (st->pend_tail == s) st->pend_tail = prev;
    }
    s->queued = false;
    st->active++; /* scall_done gives it back */
    scall_done(s, NET_GRPC_CANCELLED, "cancelled");
    return;
  }
  if (s->blocked) scall_done(s, NET_GRPC_CANCELLED, "cancelled");
}

static void be_resume(void *arg, storeapi_call *c) {
  scall *s = storeapi_call_data(c);
  if (!s || !s->blocked) return;
  s->blocked = false;
  pump(s);
}

static void be_info(void *arg, storeapi_call *c) {
  store *st = arg;
  orr_arena *a = storeapi_call_arena(c);
  Thanos__Info__InfoResponse *r = orr_arena_calloc(a, 1, sizeof(*r));
  Thanos__Info__StoreInfo *si = orr_arena_calloc(a, 1, sizeof(*si));
  if (!r || !si) goto oom;
  thanos__info__info_response__init(r);
  thanos__info__store_info__init(si);
  r->componenttype = "store";
  int64_t mint = INT64_MAX, maxt = INT64_MIN;
  pthread_mutex_lock(&st->mu);
  size_t n = st->nblocks;
  Thanos__LabelSet **sets = orr_arena_calloc(a, n ? n : 1, sizeof(*sets));
  Thanos__Info__TSDBInfo **tis = orr_arena_calloc(a, n ? n : 1, sizeof(*tis));
  labels_set *seen = orr_arena_calloc(a, n ? n : 1, sizeof(*seen));
  size_t k = 0;
  bool oom = !sets || !tis || !seen;
  for (size_t i = 0; !oom && i < n; i++) {
    store_block *b = st->blocks[i];
    if (b->meta.min_time < mint) mint = b->meta.min_time;
    if (b->meta.max_time > maxt) maxt = b->meta.max_time;
    size_t j = 0;
    while (j < k && !labels_equal(&seen[j], &b->ext)) j++;
    if (j == k) {
      Thanos__LabelSet *ls = orr_arena_calloc(a, 1, sizeof(*ls));
      Thanos__Info__TSDBInfo *ti = orr_arena_calloc(a, 1, sizeof(*ti));
      if (!ls || !ti || labels_copy(a, &b->ext, &seen[k])) {
        oom = true;
        break;
      }
      thanos__label_set__init(ls);
      thanos__info__tsdbinfo__init(ti);
      if (storeapi_labels_to_proto(&seen[k], a, &ls->labels)) {
        oom = true;
        break;
      }
      ls->n_labels = seen[k].n;
      ti->labels = ls;
      ti->min_time = b->meta.min_time;
      ti->max_time = b->meta.max_time;
      sets[k] = ls;
      tis[k] = ti;
      k++;
    } else {
      if (b->meta.min_time < tis[j]->min_time) tis[j]->min_time = b->meta.min_time;
      if (b->meta.max_time > tis[j]->max_time) tis[j]->max_time = b->meta.max_time;
    }
  }
  pthread_mutex_unlock(&st->mu);
  if (oom) goto oom;
  r->label_sets = sets;
  r->n_label_sets = k;
  si->min_time = mint;
  si->max_time = maxt;
  si->supports_without_replica_labels = 1;
  si->tsdb_infos = tis;
  si->n_tsdb_infos = k;
  r->store = si;
  storeapi_call_reply_info(c, r);
  return;
oom:
  storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

/* Note 5: unmaps the headers nobody pinned for the idle timeout. */
static void on_idle_timer(uv_timer_t *t) {
  store *st = t->data;
  uint64_t now = orr_mono_ns(), idle = (uint64_t)st->cfg.lazy_idle_timeout_ms * 1000000;
  pthread_mutex_lock(&st->mu);
  for (size_t i = 0; i < st->nblocks; i++) {
    store_block *b = st->blocks[i];
    /* Unpinned: no worker maps it, so the lock is free (trylock: the loop
     * never waits on a worker's load). */
    if (b->hdr_users > 0 || now - b->hdr_idle_since_ns < idle) continue;
    if (pthread_mutex_trylock(&b->hdr_mu) != 0) continue;
    if (b->hdr) {
      tsdb_index_header_close(b->hdr);
      b->hdr = NULL;
      orr_counter_inc(st->lazy_unloads);
      orr_log_debug("unloaded idle index-header", "block", b->id, NULL);
    }
    pthread_mutex_unlock(&b->hdr_mu);
  }
  pthread_mutex_unlock(&st->mu);
}

/* ---------------------------------------------------------------- main */
static void on_synced(uv_async_t *h) {
  store *st = h->data;
  if (st->ready || st->stop) return;
  const char *addr = st->cfg.grpc_address;
  const char *colon = strrchr(addr, ':');
  char host[256];
  size_t hl = colon ? (size_t)(colon - addr) : 0;
  if (hl > 1 && addr[0] == '[' && addr[hl - 1] == ']')
    snprintf(host, sizeof host, "%.*s", (int)(hl - 2), addr + 1);
  else
    snprintf(host, sizeof host, "%.*s", (int)hl, addr);
  if (!host[0]) snprintf(host, sizeof host, "0.0.0.0");
  int rc = colon ? net_grpc_server_listen(st->grpc, host, atoi(colon + 1)) : ORR_EINVAL;
  if (rc) {
    orr_log_error("cannot listen for gRPC", "address", addr, "err", orr_strerror(rc), NULL);
    st->exit_code = 1;
    daemon_stop(st->d);
    return;
  }
  st->ready = true;
  pthread_mutex_lock(&st->mu);
  size_t n = st->nblocks;
  pthread_mutex_unlock(&st->mu);
  orr_log_info("listening for StoreAPI gRPC", "address", addr, "port",
               ORR_LOG_INT(net_grpc_server_port(st->grpc)), "blocks", ORR_LOG_INT(n), NULL);
  daemon_set_ready(st->d, true);
}

static void on_closed(void *arg) {
  store *st = arg;
  st->pending_closes--;
}
static void on_handle_closed(uv_handle_t *h) { on_closed(h->data); }

static void stop_sync(store *st) {
  pthread_mutex_lock(&st->sync_mu);
  st->stop = true;
  pthread_cond_broadcast(&st->sync_cv);
  pthread_mutex_unlock(&st->sync_mu);
  if (st->sync_running) {
    pthread_join(st->sync_th, NULL);
    st->sync_running = false;
  }
}

static void on_shutdown(daemon_ctx *d, void *arg) {
  store *st = arg;
  stop_sync(st);
  st->pending_closes = 3;
  if (st->idle_timer_on) {
    st->pending_closes++;
    uv_close((uv_handle_t *)&st->idle_timer, on_handle_closed);
    st->idle_timer_on = false;
  }
  uv_close((uv_handle_t *)&st->synced_async, on_handle_closed);
  net_handoff_close(&st->out, on_handle_closed);
  net_grpc_server_close(st->grpc, st->ready ? st->cfg.grpc_grace_ms : 0, on_closed, st);
  st->grpc = NULL;
}

static const double bytes_buckets[] = {1024, 16384, 131072, 1048576, 8388608, 67108864, 536870912};
static const double count_buckets[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
static const double sec_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

static int register_metrics(store *st, orr_registry *reg) {
  const char *dt[] = {"data_type", NULL};
  orr_metric *f = orr_histogram_new(reg, "thanos_bucket_store_series_data_fetched",
                                    "Number of items of a data type retrieved to fulfil a single "
                                    "Store API series request.", dt, count_buckets, 7);
  orr_metric *fb = orr_histogram_new(reg, "thanos_bucket_store_series_data_size_fetched_bytes",
                                     "Size in bytes of items of a data type retrieved to fulfil a "
                                     "single Store API series request.", dt, bytes_buckets, 7);
  const char *rs[] = {"reason", NULL};
  orr_metric *dr = orr_counter_new(reg, "thanos_bucket_store_queries_dropped_total",
                                   "Number of queries that were dropped due to the limit.", rs);
  orr_metric *bq = orr_histogram_new(reg, "thanos_bucket_store_series_blocks_queried",
                                     "Number of blocks in a bucket store that were touched to "
                                     "satisfy a query.", NULL, count_buckets, 7);
  orr_metric *gd = orr_histogram_new(reg, "thanos_bucket_store_series_get_all_duration_seconds",
                                     "Time it takes until all per-block prepares and loads for a "
                                     "query are finished.", NULL, sec_buckets, 12);
  orr_metric *bl = orr_gauge_new(reg, "thanos_bucket_store_blocks_loaded",
                                 "Number of currently loaded blocks.", NULL);
  orr_metric *ld = orr_counter_new(reg, "thanos_bucket_store_block_loads_total",
                                   "Total number of remote block loading attempts.", NULL);
  orr_metric *lf = orr_counter_new(reg, "thanos_bucket_store_block_load_failures_total",
                                   "Total number of failed remote block loading attempts.", NULL);
  orr_metric *bd = orr_counter_new(reg, "thanos_bucket_store_block_drops_total",
                                   "Total number of local blocks that were dropped.", NULL);
  orr_metric *ll = orr_counter_new(reg, "thanos_bucket_store_indexheader_lazy_load_total",
                                   "Total number of index-header lazy load operations.", NULL);
  orr_metric *llf = orr_counter_new(reg, "thanos_bucket_store_indexheader_lazy_load_failed_total",
                                    "Total number of failed index-header lazy load operations.",
                                    NULL);
  orr_metric *lu = orr_counter_new(reg, "thanos_bucket_store_indexheader_lazy_unload_total",
                                   "Total number of index-header lazy unload operations.", NULL);
  orr_metric *luf = orr_counter_new(reg,
                                    "thanos_bucket_store_indexheader_lazy_unload_failed_total",
                                    "Total number of failed index-header lazy unload operations.",
                                    NULL);
  static const double load_buckets[] = {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};
  orr_metric *lld = orr_histogram_new(reg, "thanos_bucket_store_indexheader_lazy_load_duration_seconds",
                                      "Duration of the index-header lazy loading in seconds.", NULL,
                                      load_buckets, 9);
  if (!f || !fb || !dr || !bq || !gd || !bl || !ld || !lf || !bd || !ll || !llf || !lu ||
      !luf || !lld || bucket_fetch_metrics_init(&st->fetch, reg))
    return ORR_ENOMEM;
  st->lazy_loads = orr_metric_series(ll);
  st->lazy_load_failures = orr_metric_series(llf);
  st->lazy_unloads = orr_metric_series(lu);
  st->lazy_unload_failures = orr_metric_series(luf);
  st->lazy_load_duration = orr_metric_series(lld);
  const char *types[] = {"postings", "series", "chunks"};
  for (int i = 0; i < 3; i++) {
    const char *v[] = {types[i]};
    st->m.fetched[i] = orr_metric_with(f, v);
    st->m.fetched_bytes[i] = orr_metric_with(fb, v);
  }
  const char *r1[] = {"series"}, *r2[] = {"samples"}, *r3[] = {"bytes"}, *r4[] = {"chunk_pool"};
  st->m.dropped_series = orr_metric_with(dr, r1);
  st->m.dropped_samples = orr_metric_with(dr, r2);
  st->m.dropped_bytes = orr_metric_with(dr, r3);
  st->m.dropped_pool = orr_metric_with(dr, r4);
  st->m.series_blocks_queried = orr_metric_series(bq);
  st->m.get_all_duration = orr_metric_series(gd);
  st->blocks_loaded = orr_metric_series(bl);
  st->block_loads = orr_metric_series(ld);
  st->block_load_failures = orr_metric_series(lf);
  st->block_drops = orr_metric_series(bd);
  return 0;
}

static int open_bucket(const store_config *cfg, objstore_bucket **out) {
  const char *file = cfg->objstore_file && cfg->objstore_file[0] ? cfg->objstore_file : NULL;
  const char *text = cfg->objstore && cfg->objstore[0] ? cfg->objstore : NULL;
  char err[768] = "";
  int rc = objstore_open_checked(file, text, out, err, sizeof err);
  if (rc) orr_log_error("cannot use the bucket", "err", err[0] ? err : orr_strerror(rc), NULL);
  return rc;
}

int store_main(const store_config *cfg) {
  store *st = calloc(1, sizeof(*st));
  if (!st) return 1;
  int status = 1;
  st->cfg = *cfg;
  pthread_mutex_init(&st->mu, NULL);
  pthread_mutex_init(&st->sync_mu, NULL);
  pthread_cond_init(&st->sync_cv, NULL);
  atomic_init(&st->pool_used, 0);
  atomic_init(&st->first_sync_done, false);
  if (mkdir(cfg->data_dir, 0755) && errno != EEXIST) {
    orr_log_error("cannot create --data-dir", "dir", cfg->data_dir, "err", strerror(errno), NULL);
    goto out;
  }
  if (open_bucket(cfg, &st->bucket)) goto out;
  /* Large buffers (index-header tables, merged reads) go straight back to
   * the system when freed: a fixed threshold stops glibc from raising it
   * after the first frees and keeping such buffers in the heap. A batch's
   * arrays (4096 series: a few hundred kB) stay below it, so a warm query
   * reuses the heap rather than mapping and faulting them in each batch. */
  mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
  /* ... and the heap is not trimmed after every query (each trim costs the
   * next query its page faults); syncs trim once they are done. */
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  /* Workers block on the bucket (note 3): size the pool for the calls
   * allowed at once, unless the operator chose. */
  if (!getenv("UV_THREADPOOL_SIZE")) {
    char n[16];
    int64_t t = cfg->series_max_concurrency > 0 ? cfg->series_max_concurrency + 4 : 24;
    snprintf(n, sizeof n, "%d", (int)(t > 128 ? 128 : t));
    setenv("UV_THREADPOOL_SIZE", n, 1);
  }
  orr_registry *reg = orr_registry_default();
  if (register_metrics(st, reg) || store_cache_new(cfg->index_cache_size, reg, &st->cache)) {
    orr_log_error("cannot set up metrics", NULL);
    goto out;
  }
  if (cfg->memcached_address) {
    store_memcached *mc;
    if (store_memcached_new(cfg->memcached_address, cfg->memcached_timeout_ms, &mc)) {
      orr_log_error("--index-cache.config: bad memcached address (want ipv4:port)", "address",
                    cfg->memcached_address, NULL);
      goto out;
    }
    store_cache_use_memcached(st->cache, mc);
    orr_log_info("index cache in memcached", "address", cfg->memcached_address, NULL);
  }
  daemon_config dc = {"store", cfg->http_address, cfg->http_grace_ms, NULL};
  if (daemon_new(&dc, &st->d)) goto out;
  st->loop = daemon_loop(st->d);
  net_grpc_server_opts go = {0};
  go.registry = reg;
  storeapi_backend be = {be_info, be_series, be_label_names, be_label_values,
                         be_cancel, be_resume, st};
  if (daemon_grpc_server_tls(st->loop, cfg->grpc_tls_cert, cfg->grpc_tls_key,
                             cfg->grpc_tls_client_ca, cfg->grpc_tls_min_version, &go.tls)) {
    daemon_free(st->d);
    goto out;
  }
  int grc = net_grpc_server_new(st->loop, &go, &st->grpc);
  net_tls_ctx_unref(go.tls); /* the server holds its own reference */
  if (uv_async_init(st->loop, &st->synced_async, on_synced) ||
      net_handoff_init(st->loop, &st->out, on_out, st) || grc ||
      storeapi_server_new(st->grpc, &be, reg, &st->sapi) ||
      daemon_on_shutdown(st->d, on_shutdown, st)) {
    orr_log_error("cannot set up the store", NULL);
    daemon_free(st->d);
    goto out;
  }
  st->synced_async.data = st;
  if (cfg->lazy_reader && cfg->lazy_idle_timeout_ms > 0) {
    /* Checked at a tenth of the timeout, as Thanos's reader pool does. */
    uint64_t every = (uint64_t)cfg->lazy_idle_timeout_ms / 10;
    if (every < 10) every = 10;
    if (uv_timer_init(st->loop, &st->idle_timer) == 0) {
      st->idle_timer.data = st;
      st->idle_timer_on = true; /* closed by on_shutdown */
      if (uv_timer_start(&st->idle_timer, on_idle_timer, every, every))
        orr_log_warn("cannot start the index-header idle timer; headers stay mapped", NULL);
    }
  }
  orr_log_info("starting store", "bucket", objstore_name(st->bucket), "type",
               objstore_type_name(st->bucket), "data_dir", cfg->data_dir, NULL);
  if (pthread_create(&st->sync_th, NULL, sync_thread, st) != 0) {
    orr_log_error("cannot start the sync thread", NULL);
    daemon_free(st->d);
    goto out;
  }
  st->sync_running = true;
  status = daemon_run(st->d);
  stop_sync(st);
  while (st->pending_closes > 0 && uv_run(st->loop, UV_RUN_ONCE)) {
  }
  if (st->exit_code) status = st->exit_code;
  daemon_free(st->d);
  storeapi_server_free(st->sapi);
out:
  stop_sync(st);
  for (size_t i = 0; i < st->nblocks; i++) store_block_release(st->blocks[i]);
  free(st->blocks);
  store_cache_free(st->cache);
  objstore_close(st->bucket);
  free(st);
  return status;
}
