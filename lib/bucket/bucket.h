/* bucket: the bucket's view of blocks — listing block directories, fetching
 * their meta.json concurrently, the block markers (deletion-mark.json,
 * no-compact-mark.json: Thanos's JSON, read and written) and the filters the
 * store gateway and the compactor apply to what they see (time partition,
 * consistency delay, deletion marks, sources-subset de-duplication), and
 * the upload of a local block (meta.json last) for the shipper and the
 * compactor.
 * Prefix: bucket_. Depends on base, labels, tsdb, objstore, jansson. */
#ifndef ORR_BUCKET_H
#define ORR_BUCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "objstore.h"
#include "tsdb.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUCKET_META_FILE "meta.json"
#define BUCKET_DELETION_MARK_FILE "deletion-mark.json"
#define BUCKET_NO_COMPACT_MARK_FILE "no-compact-mark.json"
#define BUCKET_MARK_VERSION 1

/* ---------------------------------------------------------------- listing */
/* The block directories at the bucket's top level: names that parse as a
 * ULID followed by "/". Sorted by ULID; array from |a|. Returns 0 or the
 * objstore's error (one line in |err|) or ORR_ENOMEM. */
int bucket_list_blocks(objstore_bucket *b, orr_arena *a, tsdb_ulid **out, size_t *n, char *err,
                       size_t errlen);

/* What reading one block's meta.json gave. */
typedef enum {
  BUCKET_META_OK = 0,
  BUCKET_META_MISSING,  /* no meta.json (a partial upload, or a block being deleted) */
  BUCKET_META_CORRUPT,  /* unparsable meta.json, or its ULID is not the directory's */
  BUCKET_META_FAILED,   /* the bucket failed to answer (err says why) */
} bucket_meta_status;

typedef struct bucket_block_meta {
  tsdb_ulid ulid;
  bucket_meta_status status;
  tsdb_meta meta;       /* valid when status == BUCKET_META_OK; strings from the arena */
  const char *err;      /* one line for the other statuses (arena), else NULL */
  /* Filled by bucket_filter: when |status| is OK and |filtered| is not NULL
   * the block is left out and this names the filter ("time", "consistency-delay",
   * "deletion-mark", "duplicate"; the store sets "label-excluded" before). */
  const char *filtered;
} bucket_block_meta;

/* Reads the meta.json of each of |ids| (|n|) with up to |concurrency|
 * threads (0 or 1: on the calling thread). |*out| gets |n| results in the
 * order of |ids|, from |a| (|a| is only used under a lock). Returns 0 (per
 * block failures are in the results) or ORR_ENOMEM. Blocking: never call
 * from a loop thread. */
int bucket_fetch_metas(objstore_bucket *b, const tsdb_ulid *ids, size_t n, int concurrency,
                       orr_arena *a, bucket_block_meta **out);

/* ---------------------------------------------------------------- markers */
/* <ulid>/deletion-mark.json: {"id":..., "deletion_time": unix seconds,
 * "version": 1, "details": optional}. */
typedef struct bucket_deletion_mark {
  tsdb_ulid id;
  int64_t deletion_time; /* unix seconds */
  int version;
  const char *details;   /* may be NULL */
} bucket_deletion_mark;

/* <ulid>/no-compact-mark.json: {"id", "version", "details", "no_compact_time"
 * (unix seconds), "reason"}. */
typedef struct bucket_no_compact_mark {
  tsdb_ulid id;
  int version;
  const char *details;    /* may be NULL */
  int64_t no_compact_time; /* unix seconds */
  const char *reason;     /* "manual", "index-size-exceeding", ... */
} bucket_no_compact_mark;

/* Parsers of a marker's JSON (strings from |a|). ORR_ECORRUPT with a reason
 * in |err| for malformed JSON, a missing id, or a version other than 1. */
int bucket_deletion_mark_parse(const char *json, size_t n, orr_arena *a, bucket_deletion_mark *out,
                               char *err, size_t errlen);
int bucket_no_compact_mark_parse(const char *json, size_t n, orr_arena *a,
                                 bucket_no_compact_mark *out, char *err, size_t errlen);
/* The JSON as Thanos writes it (json.Marshal: compact, Go field order,
 * details omitted when empty), appended to |out|. 0 or ORR_ENOMEM. */
int bucket_deletion_mark_encode(const bucket_deletion_mark *m, orr_buf *out);
int bucket_no_compact_mark_encode(const bucket_no_compact_mark *m, orr_buf *out);

/* Reads block |id|'s marker: 0, ORR_ENOTFOUND (no marker), ORR_ECORRUPT or
 * an objstore error, with one line in |err|. Blocking. */
int bucket_deletion_mark_read(objstore_bucket *b, const tsdb_ulid *id, orr_arena *a,
                              bucket_deletion_mark *out, char *err, size_t errlen);
int bucket_no_compact_mark_read(objstore_bucket *b, const tsdb_ulid *id, orr_arena *a,
                                bucket_no_compact_mark *out, char *err, size_t errlen);
/* Writes the marker for |m->id| (overwriting one there). Blocking. */
int bucket_deletion_mark_write(objstore_bucket *b, const bucket_deletion_mark *m, char *err,
                               size_t errlen);
int bucket_no_compact_mark_write(objstore_bucket *b, const bucket_no_compact_mark *m, char *err,
                                 size_t errlen);

/* ---------------------------------------------------------------- filters */
typedef struct bucket_filter_opts {
  /* Time partition: a block is kept when [min_time, max_time) overlaps
   * [min_time, max_time] of the options (milliseconds). */
  int64_t min_time, max_time;
  /* Blocks younger than this (by ULID time) are left out, unless made by
   * the compactor or a repair: those are whole when they appear. 0: off. */
  int64_t consistency_delay_ms;
  /* A deletion mark older than this leaves the block out; < 0: marks are
   * not read. */
  int64_t ignore_deletion_marks_delay_ms;
  /* Leave out a block whose sources are a subset of another block's of the
   * same resolution (equal sets: the greater ULID goes). */
  bool dedup;
  int64_t now_ms; /* 0: the clock */
} bucket_filter_opts;

/* Whether the consistency delay leaves out the block of |m| at |now_ms|:
 * its ULID time is less than |consistency_delay_ms| ago and the compactor or
 * a repair did not write it (those are whole when they appear). The store's
 * filter and the compactor's view of the bucket both ask this. */
bool bucket_too_fresh(const tsdb_meta *m, int64_t consistency_delay_ms, int64_t now_ms);

/* Applies the filters to the OK results of |metas|, setting |filtered|.
 * Reads deletion marks (blocking) when asked. Returns 0 or ORR_ENOMEM; a
 * deletion mark that cannot be read keeps the block (logged). */
int bucket_filter(objstore_bucket *b, bucket_block_meta *metas, size_t n,
                  const bucket_filter_opts *o, orr_arena *a);

/* ---------------------------------------------------------------- synced
 * thanos_blocks_meta_synced{state}: how many listed blocks are in each of
 * Thanos's block fetcher states after a sync. The states that match ours:
 * no-meta-json, corrupted-meta-json, failed (BUCKET_META_* statuses),
 * time-excluded, too-fresh, marked-for-deletion, duplicate, label-excluded
 * (the filters), loaded (passed them all); marked-for-no-compact is always
 * there, as in Thanos, and counts blocks a caller says so of. */
enum {
  BUCKET_STATE_LOADED = 0,
  BUCKET_STATE_FAILED,
  BUCKET_STATE_NO_META,
  BUCKET_STATE_CORRUPTED_META,
  BUCKET_STATE_LABEL_EXCLUDED,
  BUCKET_STATE_TIME_EXCLUDED,
  BUCKET_STATE_TOO_FRESH,
  BUCKET_STATE_DUPLICATE,
  BUCKET_STATE_MARKED_FOR_DELETION,
  BUCKET_STATE_MARKED_FOR_NO_COMPACT,
  BUCKET_NSTATES
};
/* Thanos's state name of |m| after bucket_filter (one of the above). */
const char *bucket_meta_state(const bucket_block_meta *m);

typedef struct bucket_synced_gauge {
  orr_series *state[BUCKET_NSTATES];
} bucket_synced_gauge;

/* Registers thanos_blocks_meta_synced{state} on |reg| with every state at
 * 0. Returns 0 or ORR_ENOMEM. */
int bucket_synced_gauge_init(bucket_synced_gauge *g, orr_registry *reg);
/* Sets every state to its count among |metas| (after bucket_filter);
 * |no_compact| more blocks count as marked-for-no-compact (Thanos counts
 * them in loaded too). */
void bucket_synced_gauge_set(bucket_synced_gauge *g, const bucket_block_meta *metas, size_t n,
                             size_t no_compact);
/* Sets every state to |cnt|[state] (for a caller with its own view of the
 * blocks, as the compactor's catalogue). */
void bucket_synced_gauge_set_counts(bucket_synced_gauge *g, const size_t cnt[BUCKET_NSTATES]);

/* Thanos's block fetcher metrics, for a reader of the bucket's block list
 * (the store's sync, tools bucket web's refresh): every read counts in
 * syncs (thanos_blocks_meta_syncs_total) and sync_duration (seconds), a
 * failed one in sync_failures, and synced is thanos_blocks_meta_synced. */
typedef struct bucket_fetch_metrics {
  orr_series *syncs, *sync_failures, *sync_duration;
  bucket_synced_gauge synced;
} bucket_fetch_metrics;
/* Registers them on |reg|. Returns 0 or ORR_ENOMEM. */
int bucket_fetch_metrics_init(bucket_fetch_metrics *m, orr_registry *reg);

/* ---------------------------------------------------------------- upload */
/* Hooks of one block upload; every member may be NULL. */
typedef struct bucket_upload_opts {
  /* Called before each object put with its key; a negative return ends the
   * upload with that code (fault injection, a stop flag, a test's slow
   * put), with one line the hook may write in |err| (else "upload <key>:
   * <code>"). ORR_ECANCELED leaves what was put (a shutdown); other codes
   * delete it. */
  int (*before_put)(const char *key, void *arg, char *err, size_t errlen);
  /* Called after each successful put with the object's size. */
  void (*on_put)(const char *key, uint64_t bytes, void *arg);
  void *arg;
} bucket_upload_opts;

typedef struct bucket_upload_stats {
  uint64_t objects, bytes; /* put by this attempt, also when it failed later */
} bucket_upload_stats;

/* Uploads the local block directory |dir| (chunks/<segment>..., index) as
 * <ulid>/ in |b|: the chunk segments in the order of
 * |meta->thanos.segment_files|, then the index, then meta.json last — built
 * from |meta| with Thanos's file list (sizes of chunks and index). |meta| is
 * borrowed for the call; NULL reads <dir>/meta.json as it is. A failed chunk
 * or index put deletes what this attempt put (best effort, not after
 * ORR_ECANCELED from the hook); a failed meta.json put deletes nothing.
 * |o| and |st| may be NULL. Returns 0 or the objstore's / hook's code with
 * one line in |err|. Blocking: never call from a loop thread. */
int bucket_upload_block(objstore_bucket *b, const char *dir, const tsdb_meta *meta,
                        const bucket_upload_opts *o, bucket_upload_stats *st, char *err,
                        size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* ORR_BUCKET_H */
