/* store_int.h: what the store gateway's files share — the configuration,
 * the loaded blocks (store.c: bucket sync, index-headers), the query
 * execution on worker threads (query.c: postings, series and chunks by
 * ranged reads, limits), and the index cache (cache.c). Not for use outside
 * store/ (and its unit tests). */
#ifndef ORR_STORE_INT_H
#define ORR_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bucket.h"
#include "labels.h"
#include "objstore.h"
#include "storeapi.h"
#include "store.h"
#include "tsdb.h"

typedef struct store_config {
  const char *data_dir;
  const char *objstore_file, *objstore;
  const char *index_cache_config; /* --index-cache.config(-file) text, or NULL */
  int64_t index_cache_size;
  const char *memcached_address; /* type: MEMCACHED: the first of config.addresses */
  int64_t memcached_timeout_ms;
  int64_t chunk_pool_size;
  int64_t request_series_limit, request_samples_limit, downloaded_bytes_limit;
  int64_t series_max_concurrency;
  int64_t sync_interval_ms;
  int64_t block_sync_concurrency, meta_fetch_concurrency;
  int64_t min_time, max_time;
  int64_t consistency_delay_ms, ignore_deletion_marks_delay_ms;
  const char *http_address, *grpc_address;
  int64_t http_grace_ms, grpc_grace_ms;
  /* --grpc-server-tls-*; no cert and key: plaintext */
  const char *grpc_tls_cert, *grpc_tls_key, *grpc_tls_client_ca, *grpc_tls_min_version;
  /* --selector.relabel-config: a block is served when its external labels
   * plus __block_id survive these rules non-empty; NULL: every block.
   * Borrowed for the store's life. */
  const labels_relabel *relabel;
  /* --store.index-header-posting-offsets-in-mem-sampling (>= 1). */
  uint32_t posting_offsets_sampling;
  /* --store.enable-index-header-lazy-reader and its idle timeout (0: never
   * unloaded once loaded). */
  bool lazy_reader;
  int64_t lazy_idle_timeout_ms;
} store_config;

/* ---------------------------------------------------------------- blocks
 * A loaded block: its meta.json and index-header, shared by the block set
 * and the queries reading it (acquire/release: a block dropped by a sync is
 * freed when the last query reading it releases it). Immutable once loaded. */
typedef struct store_block {
  atomic_int refs;
  tsdb_ulid ulid;
  char id[TSDB_ULID_STRLEN + 1];
  orr_arena *arena; /* meta's strings */
  tsdb_meta meta;
  labels_set ext;   /* meta.thanos.labels */
  int64_t resolution;
  uint64_t index_size;
  /* NULL while a lazy block's header is unloaded (store.c note 5): a query
   * reads it only while the block is pinned for it, which loads it. */
  tsdb_index_header *hdr;
  /* Lazy reader state (store.c note 5): |hdr| changes under |hdr_mu|;
   * the pin count and idle time belong to the loop thread. */
  bool lazy;
  bool remove_dir; /* dropped from the set: its directory goes on free */
  char *dir;       /* <data-dir>/<ulid> */
  pthread_mutex_t hdr_mu;
  int hdr_users;
  uint64_t hdr_idle_since_ns;
} store_block;

void store_block_acquire(store_block *b);
void store_block_release(store_block *b);

/* ---------------------------------------------------------------- index cache
 * Postings lists and series entries by (block, key), LRU by bytes, shared
 * by every query; thread-safe. Postings are stored compressed (delta
 * uvarint, then snappy). */
typedef struct store_cache store_cache;
typedef enum { STORE_CACHE_POSTINGS = 0, STORE_CACHE_SERIES, STORE_CACHE_NTYPES } store_cache_type;

/* |max_bytes| 0: a cache that stores nothing. Registers
 * thanos_store_index_cache_* metrics on |reg| (may be NULL). */
int store_cache_new(int64_t max_bytes, orr_registry *reg, store_cache **out);
void store_cache_free(store_cache *c);
/* ---- memcached (memcached.c): thread-safe, blocking with a timeout */
typedef struct store_memcached store_memcached;
/* |address| "host:port" (IPv4). 0, ORR_EINVAL or ORR_ENOMEM. */
int store_memcached_new(const char *address, int64_t timeout_ms, store_memcached **out);
void store_memcached_free(store_memcached *m);
/* A hit appends the value stored for |key| to |out|; any failure is a miss. */
bool store_memcached_get(store_memcached *m, char type, const void *key, size_t klen,
                         orr_buf *out);
void store_memcached_set(store_memcached *m, char type, const void *key, size_t klen,
                         const void *val, size_t vlen);
/* The cache keeps its items in |m| instead of its own memory (takes
 * ownership of |m|). */
void store_cache_use_memcached(store_cache *c, store_memcached *m);

/* Looks up |key| (|klen| bytes) of |type|; on a hit appends the stored
 * value to |out| (postings: decoded back to the index's list bytes) and
 * returns true. */
bool store_cache_get(store_cache *c, store_cache_type type, const void *key, size_t klen,
                     orr_buf *out);
/* Series entries |keys[i]| (|klens[i]| bytes each), |n| of them, looked up
 * at once: each hit is appended to |out|, at |off[i]| for |len[i]| bytes
 * (|len[i]| 0: a miss). Returns the hits. One lock for a run of keys, and
 * the table's memory fetched ahead of the walk: a warm query looks up every
 * series it answers. */
size_t store_cache_get_series(store_cache *c, const char *const *keys, const size_t *klens,
                              size_t n, orr_buf *out, size_t *off, size_t *len);
/* Stores a copy of |val|; postings are compressed first. Items larger than
 * a tenth of the cache are not stored. */
void store_cache_put(store_cache *c, store_cache_type type, const void *key, size_t klen,
                     const void *val, size_t vlen);

/* ---------------------------------------------------------------- store */
typedef struct store store;

/* Metrics a query updates (Thanos's bucket-store names). */
typedef struct store_metrics {
  orr_series *fetched[3], *fetched_bytes[3]; /* postings, series, chunks */
  orr_series *dropped_series, *dropped_samples, *dropped_bytes, *dropped_pool;
  orr_series *series_blocks_queried, *get_all_duration;
  orr_series *chunk_pool_bytes;
} store_metrics;

/* ---- queries (query.c): run on a worker thread, blocking on the bucket */
typedef struct store_query {
  /* in */
  store *st;
  objstore_bucket *bucket;
  store_cache *cache;
  store_metrics *m;
  const store_config *cfg;
  atomic_int_least64_t *pool_used; /* chunk pool bytes in use */
  store_block **blocks; /* acquired by the caller, released by it */
  size_t nblocks;
  int64_t mint, maxt;
  labels_matcher **matchers;
  size_t nmatchers;
  bool skip_chunks;
  const Thanos__Aggr *aggrs;
  size_t naggrs;
  char *const *drop;
  size_t ndrop;
  int64_t limit;
  /* labels calls */
  bool labels_call, names;
  const char *label;
  atomic_bool *cancelled;
  /* Series answers stream: |emit| (run on the worker) takes over |buf|,
   * packed SeriesResponse messages each after its length (4 bytes, host
   * order), for the call to send; it blocks while the client is behind and
   * returns 0, ORR_ECANCELED (stop) or ORR_ENOMEM. */
  int (*emit)(void *arg, orr_buf *buf);
  void *emit_arg;
  /* out: names/values of a labels call, from |a| */
  orr_arena *a;
  char **strs;
  size_t nstrs;
  int64_t pool_reserved; /* bytes to return to the pool when the call ends */
  int64_t pool_arena;    /* of which the arenas' */
  int status;            /* a gRPC status; message in |err| */
  char err[768];
  uint64_t stats_bytes;
  orr_buf series_buf; /* cached series entries of a batch, kept for the next */
} store_query;

/* Runs |q| (Series, or LabelNames/LabelValues when q->labels_call). */
void store_query_run(store_query *q);

#endif /* ORR_STORE_INT_H */
