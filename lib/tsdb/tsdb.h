/* tsdb: Prometheus TSDB blocks — XOR and aggregate chunks, chunk segment
 * files, index v2, postings, meta.json, tombstones, block reader and writer.
 * Byte-compatible with Prometheus 2.42 and Thanos. Prefix: tsdb_.
 * Depends on base and labels. */
#ifndef ORR_TSDB_H
#define ORR_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "labels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ chunks */
/* (section owned by the chunks work: XOR, aggregate chunks, segment files) */

/* ================================================================ index */
/* (section owned by the index work: index v2, postings, meta.json, tombstones) */

/* ---------------------------------------------------------------- errors
 * Corruption found by the index, meta and tombstones code returns
 * ORR_ECORRUPT and leaves a message naming the section and file offset in a
 * per-thread buffer. Returns that message (static, per thread; "" if none). */
const char *tsdb_index_last_error(void);

/* ---------------------------------------------------------------- postings
 * Iterators over strictly increasing series references. Every iterator is
 * allocated from the arena passed to its constructor and lives as long as
 * that arena; constructors return NULL on OOM. Iteration cannot fail:
 * postings lists are validated (length, order, CRC) when they are opened. */
typedef struct tsdb_postings tsdb_postings;

/* Advances; returns true when positioned on a value (read with _at). */
bool tsdb_postings_next(tsdb_postings *p);
/* Advances to the first value >= |v| (never moves backwards; when already on
 * a value >= |v| stays). Returns true when positioned on a value. */
bool tsdb_postings_seek(tsdb_postings *p, uint64_t v);
uint64_t tsdb_postings_at(const tsdb_postings *p);
tsdb_postings *tsdb_postings_empty(orr_arena *a);
/* |v| (sorted, unique) is borrowed for the iterator's life. */
tsdb_postings *tsdb_postings_from_array(orr_arena *a, const uint64_t *v, size_t n);
/* Values present in every one of |its| (n == 0: empty). |its| is copied; the
 * iterators themselves are consumed. */
tsdb_postings *tsdb_postings_intersect(orr_arena *a, tsdb_postings *const *its, size_t n);
/* Values present in any of |its| (k-way merge, duplicates dropped). */
tsdb_postings *tsdb_postings_merge(orr_arena *a, tsdb_postings *const *its, size_t n);
/* Values of |full| that are not in |drop|. */
tsdb_postings *tsdb_postings_without(orr_arena *a, tsdb_postings *full, tsdb_postings *drop);
/* Drains |p| into an array allocated from |a|; returns 0 or ORR_ENOMEM. */
int tsdb_postings_expand(tsdb_postings *p, orr_arena *a, uint64_t **out, size_t *n);

/* ---------------------------------------------------------------- index v2 reader
 * Reads a Prometheus index file (format v2) over mmapped bytes. The symbol
 * table is sampled (every 32nd symbol's offset kept in memory) and so is the
 * postings offset table (for each label name its first, every 32nd and last
 * value), as Prometheus does: memory is O(symbols/32 + label pairs/32).
 * A reader is immutable after open and may be shared by threads. */
typedef struct tsdb_index_reader tsdb_index_reader;

typedef struct tsdb_index_chunk_meta {
  int64_t mint, maxt; /* inclusive, milliseconds */
  uint64_t ref;       /* segment file index << 32 | offset in the segment */
} tsdb_index_chunk_meta;

typedef struct tsdb_index_toc {
  uint64_t symbols, series, label_indices, label_offset_table, postings, postings_offset_table;
} tsdb_index_toc;

/* Opens and validates the index file at |path| (mmapped read-only). On
 * failure returns ORR_EIO / ORR_ECORRUPT / ORR_EUNSUPPORTED / ORR_ENOMEM and
 * writes the reason to |err|. Caller frees with tsdb_index_close(). */
int tsdb_index_open(const char *path, tsdb_index_reader **out, char *err, size_t errlen);
/* As tsdb_index_open over |n| bytes at |p|, borrowed until close. */
int tsdb_index_open_bytes(const void *p, size_t n, tsdb_index_reader **out, char *err,
                          size_t errlen);
void tsdb_index_close(tsdb_index_reader *r);
void tsdb_index_get_toc(const tsdb_index_reader *r, tsdb_index_toc *toc);
uint32_t tsdb_index_num_symbols(const tsdb_index_reader *r);
/* Symbol number |idx| (v2 series refer to symbols by number): |*s| points into
 * the mapping (not NUL-terminated), valid until close. 0 or ORR_ECORRUPT. */
int tsdb_index_symbol(const tsdb_index_reader *r, uint32_t idx, const char **s, size_t *n);
/* Sorted label names (the all-postings name "" excluded), strings and array
 * from |a|. */
int tsdb_index_label_names(const tsdb_index_reader *r, orr_arena *a, const char ***names,
                           size_t *n);
/* Sorted values of label |name| (none: *n = 0), from |a|. */
int tsdb_index_label_values(const tsdb_index_reader *r, const char *name, orr_arena *a,
                            const char ***values, size_t *n);
/* Values of |name| from its label index section (the older, unused-by-
 * Prometheus section); ORR_ENOTFOUND when the index has none for |name|. */
int tsdb_index_label_index_values(const tsdb_index_reader *r, const char *name, orr_arena *a,
                                  const char ***values, size_t *n);
/* Union of the postings of |name|=|values[i]|; absent pairs contribute
 * nothing. The all-postings list is name "" value "". Iterator from |a|. */
int tsdb_index_postings(const tsdb_index_reader *r, const char *name, const char *const *values,
                        size_t nvalues, orr_arena *a, tsdb_postings **out);
/* Every series (the all-postings list). */
int tsdb_index_all_postings(const tsdb_index_reader *r, orr_arena *a, tsdb_postings **out);
/* Label set and chunk metas of series |ref| (= byte offset / 16). Strings,
 * label array and chunk array are allocated from |a|. ORR_ENOTFOUND when
 * |ref| is outside the series section; ORR_ECORRUPT on a bad entry. */
int tsdb_index_series(const tsdb_index_reader *r, uint64_t ref, orr_arena *a, labels_set *lset,
                      tsdb_index_chunk_meta **chks, size_t *nchks);

/* ---------------------------------------------------------------- selection
 * Series selected by all of |ms| (Prometheus 2.42 PostingsForMatchers): "="
 * and non-empty-matching "=~" intersect postings; "!=" / "!~" are
 * subtracted; a matcher that matches "" also selects series lacking the
 * label. No matcher: nothing. The iterator is allocated from |a|. */
int tsdb_index_select(const tsdb_index_reader *r, labels_matcher *const *ms, size_t n,
                      orr_arena *a, tsdb_postings **out);

/* ---------------------------------------------------------------- index v2 writer
 * Writes an index byte-identical to Prometheus 2.42's for the same symbols,
 * series and chunk metas. Order of calls: every symbol (strictly increasing;
 * Prometheus always has "" among them), then every series in label order,
 * then finish. The series section is streamed to the file; postings are built
 * by rescanning it in batches of label names, holding at most 12 bytes per
 * (label, series) pair of a batch and no batch larger than the series count
 * (unless one name alone is), plus 16 bytes per distinct label pair and the
 * symbols themselves. Temporary files |path|_tmp_p sit beside the index. */
typedef struct tsdb_index_writer tsdb_index_writer;

/* Creates (truncates) |path|. Caller frees with tsdb_index_writer_free(). */
int tsdb_index_writer_open(const char *path, tsdb_index_writer **out);
/* |s| is copied. ORR_EINVAL when not greater than the previous symbol or
 * after the first series. */
int tsdb_index_writer_add_symbol(tsdb_index_writer *w, const char *s, size_t n);
/* Adds a series; |lset| must sort after the previous one, every name and
 * value must be a symbol. Writes its reference to |*ref| (may be NULL).
 * Returns 0, ORR_EINVAL, ORR_EIO, ORR_ENOMEM or ORR_ELIMIT (index > 64 GiB). */
int tsdb_index_writer_add_series(tsdb_index_writer *w, const labels_set *lset,
                                 const tsdb_index_chunk_meta *chks, size_t nchks, uint64_t *ref);
/* Writes label indices, postings, the tables and the TOC, syncs and closes
 * the file. 0 or an error (the file is then incomplete). */
int tsdb_index_writer_finish(tsdb_index_writer *w);
/* Frees |w|; an unfinished index file and temporaries are removed. */
void tsdb_index_writer_free(tsdb_index_writer *w);

/* Convenience: writes an index for |n| series (sorted by labels_cmp) with
 * symbols computed from them (plus ""). |chks[i]|/|nchks[i]| may be NULL/0. */
int tsdb_index_write_file(const char *path, const labels_set *series,
                          tsdb_index_chunk_meta *const *chks, const size_t *nchks, size_t n);

/* ---------------------------------------------------------------- ULIDs */
typedef struct tsdb_ulid {
  uint8_t b[16]; /* 48-bit big-endian milliseconds, then 80 random bits */
} tsdb_ulid;
#define TSDB_ULID_STRLEN 26
/* New ULID for time |ms| with randomness from getrandom(). 0 or ORR_EIO. */
int tsdb_ulid_new(int64_t ms, tsdb_ulid *out);
/* Writes the 26-character Crockford base32 form and a NUL to |out| (27 bytes). */
void tsdb_ulid_format(const tsdb_ulid *u, char *out);
/* Parses 26 characters (case-insensitive); ORR_EINVAL when malformed or
 * overflowing. */
int tsdb_ulid_parse(const char *s, size_t n, tsdb_ulid *out);
int64_t tsdb_ulid_time(const tsdb_ulid *u);
int tsdb_ulid_cmp(const tsdb_ulid *a, const tsdb_ulid *b);

/* ---------------------------------------------------------------- meta.json
 * Prometheus BlockMeta (version 1) plus the optional Thanos section. */
typedef struct tsdb_block_desc {
  tsdb_ulid ulid;
  int64_t min_time, max_time;
} tsdb_block_desc;

typedef struct tsdb_meta_file {
  const char *rel_path;
  int64_t size_bytes; /* 0: omitted */
} tsdb_meta_file;

typedef struct tsdb_meta {
  tsdb_ulid ulid;
  int64_t min_time, max_time; /* [min_time, max_time) */
  uint64_t num_samples, num_series, num_chunks, num_tombstones;
  int level;
  tsdb_ulid *sources;
  size_t nsources;
  tsdb_block_desc *parents;
  size_t nparents;
  bool deletable, failed;
  const char **hints;
  size_t nhints;
  int version; /* 1 */
  bool has_thanos;
  struct {
    int version;       /* 0: omitted */
    labels_set labels; /* external labels, sorted */
    int64_t downsample_resolution;
    const char *source; /* "sidecar", "compactor", ... */
    const char **segment_files;
    size_t nsegment_files;
    tsdb_meta_file *files;
    size_t nfiles;
    int64_t index_series_max_size, index_chunk_max_size; /* index_stats; 0: omitted */
  } thanos;
} tsdb_meta;

/* Parses meta.json; strings and arrays from |a|. ORR_ECORRUPT (reason in
 * |err|) on malformed JSON, a bad ULID or a version other than 1. */
int tsdb_meta_parse(const char *json, size_t n, orr_arena *a, tsdb_meta *out, char *err,
                    size_t errlen);
/* Appends the JSON as Prometheus (tab-indented, Go field order, Go's HTML-safe
 * escaping) and Thanos write it, with a trailing newline. */
int tsdb_meta_encode(const tsdb_meta *m, orr_buf *out);
/* <dir>/meta.json: read, or write atomically (tmp file, fsync, rename, fsync dir). */
int tsdb_meta_read_dir(const char *dir, orr_arena *a, tsdb_meta *out, char *err, size_t errlen);
int tsdb_meta_write_dir(const char *dir, const tsdb_meta *m);

/* ---------------------------------------------------------------- tombstones */
typedef struct tsdb_interval {
  int64_t mint, maxt; /* inclusive */
} tsdb_interval;

/* A sorted set of disjoint, non-adjacent intervals (Prometheus Intervals). */
typedef struct tsdb_intervals {
  tsdb_interval *v;
  size_t n, cap;
} tsdb_intervals;

/* Adds |iv|, merging overlapping and adjacent intervals; 0 or ORR_ENOMEM. */
int tsdb_intervals_add(tsdb_intervals *s, tsdb_interval iv);
void tsdb_intervals_free(tsdb_intervals *s);
bool tsdb_intervals_contains(const tsdb_intervals *s, int64_t t);
/* Removes the samples whose timestamps are deleted, in place; |vals| may be
 * NULL. Returns the new count. |ts| must be sorted. */
size_t tsdb_intervals_apply(const tsdb_intervals *s, int64_t *ts, double *vals, size_t n);

typedef struct tsdb_tombstone {
  uint64_t ref;
  tsdb_intervals ivs;
} tsdb_tombstone;

/* Tombstones of a block, sorted by series ref. */
typedef struct tsdb_tombstones {
  tsdb_tombstone *v;
  size_t n, cap;
} tsdb_tombstones;

/* Adds deletion |iv| for series |ref|; 0 or ORR_ENOMEM. */
int tsdb_tombstones_add(tsdb_tombstones *t, uint64_t ref, tsdb_interval iv);
/* The intervals of |ref| or NULL. */
const tsdb_intervals *tsdb_tombstones_get(const tsdb_tombstones *t, uint64_t ref);
void tsdb_tombstones_free(tsdb_tombstones *t);
/* Decodes a whole tombstones file (magic, version, entries, CRC32C) into |t|
 * (which must be empty); ORR_ECORRUPT / ORR_EUNSUPPORTED / ORR_ENOMEM. */
int tsdb_tombstones_decode(const void *p, size_t n, tsdb_tombstones *t);
int tsdb_tombstones_encode(const tsdb_tombstones *t, orr_buf *out);
/* <dir>/tombstones: a missing file reads as empty; writing is atomic. */
int tsdb_tombstones_read_dir(const char *dir, tsdb_tombstones *t);
int tsdb_tombstones_write_dir(const char *dir, const tsdb_tombstones *t);

#ifdef __cplusplus
}
#endif
#endif /* ORR_TSDB_H */
