/* compact_int.h: the compactor's internals shared by its files — the block
 * catalogue (what the bucket holds), groups, the planner, the bucket
 * operations (download, upload, marks) and one compaction iteration.
 * Prefix: compact_ (compact__ for planner helpers tested directly). */
#ifndef ORR_COMPACT_INT_H
#define ORR_COMPACT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"
#include "labels.h"
#include "objstore.h"
#include "tsdb.h"

#define COMPACT_DELETION_MARK "deletion-mark.json"
#define COMPACT_NO_COMPACT_MARK "no-compact-mark.json"
/* Blocks without meta.json whose ULID is older than this are failed uploads. */
#define COMPACT_PARTIAL_AGE_MS ((int64_t)48 * 3600 * 1000)
#define COMPACT_RES_RAW 0
#define COMPACT_RES_5M ((int64_t)300000)
#define COMPACT_RES_1H ((int64_t)3600000)
/* Blocks spanning at least this long get downsampled (Thanos's values). */
#define COMPACT_DOWNSAMPLE_RAW_SPAN_MS ((int64_t)40 * 3600 * 1000)
#define COMPACT_DOWNSAMPLE_5M_SPAN_MS ((int64_t)10 * 24 * 3600 * 1000)

/* Waits |ms| on |cond| (taking |mu|, which guards *stop), waking early once
 * *stop is set; returns *stop. The --wait loop (cmd.c) and the blocks page's
 * refresher (web.c) both sleep so, to stop at once on shutdown. */
bool compact__wait_or_stop(uv_mutex_t *mu, uv_cond_t *cond, const bool *stop, int64_t ms);

/* ---------------------------------------------------------------- catalogue */

/* One block of the bucket. */
typedef struct compact_block {
  char id[TSDB_ULID_STRLEN + 1];
  tsdb_meta meta;          /* strings from the catalogue's arena */
  bool has_meta;           /* false: partial (no meta.json) or corrupt */
  bool corrupt;            /* meta.json unreadable: left alone */
  bool deletion_marked;    /* deletion-mark.json present */
  int64_t deletion_time_s; /* from the mark */
  bool no_compact;         /* no-compact-mark.json present */
  uint64_t size_bytes;     /* objects' total size (inspect only) */
} compact_block;

typedef struct compact_catalogue {
  orr_arena *a;
  compact_block *v;
  size_t n, cap;
} compact_catalogue;

/* Lists every block directory of |b| and reads its meta.json and marks.
 * With |sizes| also sums object sizes. Returns 0 or an ORR_E* code (|err|).
 * Caller frees with compact_catalogue_free(). */
int compact_catalogue_load(objstore_bucket *b, bool sizes, compact_catalogue *c, char *err,
                           size_t errlen);
void compact_catalogue_free(compact_catalogue *c);

/* ---------------------------------------------------------------- marks */

/* Writes <id>/<marker> (deletion-mark.json or no-compact-mark.json) in
 * Thanos's JSON ({"id","deletion_time"|"no_compact_time","version":1,
 * "details", "reason"}) with time |now_s|. */
int compact_mark(objstore_bucket *b, const char *id, const char *marker, const char *reason,
                 const char *details, int64_t now_s, char *err, size_t errlen);
/* Deletes every object of block |id|: meta.json first (the block stops
 * being a block for readers), the deletion mark last. */
int compact_delete_block(objstore_bucket *b, const char *id, char *err, size_t errlen);
/* Downloads block |id| into <dir>/<id> (dir must exist). */
int compact_download(objstore_bucket *b, const char *id, const char *dir, char *err,
                     size_t errlen);
/* Uploads the local block at |dir| as <id>/: chunk segments, index, then
 * meta.json (rewritten with Thanos's file list) last. A failed chunk or index
 * put removes what was put. */
int compact_upload(objstore_bucket *b, const char *dir, char *err, size_t errlen);

/* ---------------------------------------------------------------- groups and plan */

/* The group key: "<resolution>@<labels>" with the labels (minus |drop|)
 * formatted as {a="1",b="2"}; from |a|. The labels themselves go to |out|
 * (from |a|). */
char *compact__group_key(orr_arena *a, const tsdb_meta *m, const char *const *drop, size_t ndrop,
                         labels_set *out);

/* Prometheus/Thanos's plan over |n| metas of one group (any order): the
 * indexes of the blocks to compact next into |out| (room for |n|), their
 * count in |*nout| (0: nothing to do). |ranges| ascending (ms). Blocks with
 * |excluded[i]| (no-compact-mark) are never chosen. Order of |out|: by
 * minTime. */
void compact__plan(const tsdb_meta *const *metas, const bool *excluded, size_t n,
                   const int64_t *ranges, size_t nranges, size_t *out, size_t *nout);
/* Whether blocks |idx| (|n| of |metas|) have overlapping time ranges; when
 * so, the first pair goes to |*a|, |*b|. */
bool compact__overlap(const tsdb_meta *const *metas, size_t n, size_t *a, size_t *b);

/* The blocks page (web.c): one block's entry of /api/v1/blocks from the
 * bytes of its objects — meta.json as it is, plus "marks" (the markers'
 * JSON, {"error": ...} for an unreadable one) and "sizeBytes" (meta.json's
 * thanos.files, else |listed_size|). |deletion| / |no_compact| NULL: no
 * such marker. */
typedef struct compact_web_objects {
  const char *meta;
  size_t meta_len;
  const char *deletion;
  size_t deletion_len;
  const char *no_compact;
  size_t no_compact_len;
  uint64_t listed_size;
} compact_web_objects;
struct json_t;
/* Returns 0 with a new JSON object in |*out| (caller releases it with
 * json_decref) and |*has_files| telling whether meta.json listed its files
 * (else the caller lists the block for its size); ORR_ECORRUPT with |err|
 * when meta.json is not a JSON object; ORR_ENOMEM. */
int compact__web_entry(const compact_web_objects *o, struct json_t **out, bool *has_files,
                       char *err, size_t errlen);

#endif /* ORR_COMPACT_INT_H */
