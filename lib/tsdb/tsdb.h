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

/* Chunk encodings, as the byte before a chunk's data in a segment file. */
typedef enum {
  TSDB_ENC_NONE = 0,
  TSDB_ENC_XOR = 1,
  TSDB_ENC_HISTOGRAM = 2,       /* native histograms: stored and passed, not decoded */
  TSDB_ENC_FLOAT_HISTOGRAM = 3,
  TSDB_ENC_AGGR = 0xff, /* Thanos downsampling aggregate chunk (ChunkEncAggr) */
} tsdb_chunk_enc;

typedef struct tsdb_sample {
  int64_t t; /* milliseconds */
  double v;
} tsdb_sample;

/* ---------------------------------------------------------------- XOR chunks
 * Bit-exact with Prometheus's chunkenc XOR: a 2-byte big-endian sample count,
 * the first timestamp (varint) and value (64 bits), the second timestamp's
 * delta (uvarint) and then delta-of-delta timestamps and XORed values in a
 * bit stream, padded to a byte. Values are kept bit for bit (stale NaN).
 * Like Prometheus's bstream, a chunk whose last write was whole bytes
 * starting on a byte boundary (e.g. a one-sample chunk) ends in an extra
 * 0x00 byte; encoders that omit it produce different bytes. */
#define TSDB_XOR_MAX_SAMPLES 65535

/* An encoder. Fields are private; zero-initialise or call _init. */
typedef struct tsdb_xor_appender {
  uint8_t *data; /* chunk bytes: count header + bit stream */
  size_t len, cap;
  int64_t t;       /* last timestamp */
  uint64_t tdelta; /* last timestamp delta */
  uint64_t vbits;  /* last value's bits */
  uint16_t num;
  uint8_t leading, trailing; /* leading 0xff: no window yet */
  uint8_t free_bits;         /* unused low bits of the last byte */
} tsdb_xor_appender;

/* Prepares an empty chunk; returns 0 or ORR_ENOMEM. Caller frees with
 * tsdb_xor_appender_free() (also after a failed init). */
int tsdb_xor_appender_init(tsdb_xor_appender *a);
void tsdb_xor_appender_free(tsdb_xor_appender *a);
/* Empties the chunk, keeping its memory. */
void tsdb_xor_appender_reset(tsdb_xor_appender *a);
/* Appends a sample. Timestamps should increase (the format stores any
 * order, as Prometheus's does). Returns 0, ORR_ENOMEM, or ORR_ERANGE when
 * the chunk already holds TSDB_XOR_MAX_SAMPLES. */
int tsdb_xor_append(tsdb_xor_appender *a, int64_t t, double v);
/* The chunk's bytes so far (borrowed until the next append/reset/free). */
const uint8_t *tsdb_xor_bytes(const tsdb_xor_appender *a, size_t *len);
static inline uint16_t tsdb_xor_appender_samples(const tsdb_xor_appender *a) { return a->num; }

/* A decoder over borrowed chunk bytes. Fields are private except t and v. */
typedef struct tsdb_xor_iter {
  int64_t t; /* current sample, valid after next() returned 1 */
  double v;
  const uint8_t *base, *end; /* the chunk */
  uint64_t pos;              /* next bit to read */
  uint16_t total, read;
  uint64_t tdelta, vbits;
  uint8_t leading, trailing;
  int err;
} tsdb_xor_iter;

/* Starts iterating over |n| bytes at |p|, borrowed while iterating. Chunks
 * shorter than the 2-byte header fail on the first next(). */
void tsdb_xor_iter_init(tsdb_xor_iter *it, const uint8_t *p, size_t n);
/* Advances: returns 1 with it->t/it->v set, 0 at the end, or ORR_ECORRUPT
 * when the bytes run out or are impossible (the error latches). */
int tsdb_xor_iter_next(tsdb_xor_iter *it);
/* Advances to the first sample with t >= |t| (staying when already there);
 * returns as next(). */
int tsdb_xor_iter_seek(tsdb_xor_iter *it, int64_t t);
/* Reads the sample count from a chunk's header; ORR_ECORRUPT when n < 2. */
int tsdb_xor_num_samples(const uint8_t *p, size_t n, uint16_t *count);
/* Decodes every sample into |out| (|cap| entries); returns the count (>= 0),
 * ORR_ECORRUPT, or ORR_ERANGE when |cap| is too small. */
int tsdb_xor_decode(const uint8_t *p, size_t n, tsdb_sample *out, size_t cap);
/* As tsdb_xor_decode, but stops after the first sample past |maxt| (that
 * sample included in the count): the samples after it are not read, nor
 * checked. An instant query over a chunk ending after its time decodes
 * only up to that time. */
int tsdb_xor_decode_upto(const uint8_t *p, size_t n, tsdb_sample *out, size_t cap, int64_t maxt);
/* Two chunks at once, as tsdb_xor_decode each (faster than two calls:
 * the two decodes overlap in the CPU). Returns 0 with |*k1| and |*k2|
 * samples decoded, or the first error. */
int tsdb_xor_decode2(const uint8_t *p1, size_t n1, tsdb_sample *out1, size_t cap1, int *k1,
                     const uint8_t *p2, size_t n2, tsdb_sample *out2, size_t cap2, int *k2);

/* ---------------------------------------------------------------- chunk cutting
 * Where Prometheus 2.42's head starts a new chunk, so that blocks we write
 * hold the chunks Prometheus would have written for the same samples. For
 * each sample of a series, in time order (head_append.go appendPreprocessor):
 *   - the first sample opens a chunk; a chunk opened at t must end before
 *     nextAt = (t / range) * range + range (the end of t's chunk range);
 *   - when the open chunk holds 30 samples (samplesPerChunk/4), nextAt is
 *     re-estimated so the rest of the range splits into equal chunks:
 *     n = (nextAt - min) / ((max - min + 1) * 4) with max the 30th sample's
 *     time; if n > 1, nextAt = min + (nextAt - min) / n (computeChunkEndTime);
 *   - a sample with t >= nextAt, or arriving when the chunk holds 240
 *     samples (2 * samplesPerChunk), opens a new chunk.
 * Prometheus's head uses range = the minimum block duration (2h);
 * promtool tsdb create-blocks-from uses twice its block duration (4h). */
#define TSDB_SAMPLES_PER_CHUNK 120

typedef struct tsdb_chunk_cutter {
  int64_t range;
  int64_t min_t, max_t, next_at;
  uint32_t n; /* samples in the open chunk; 0: none open */
} tsdb_chunk_cutter;

void tsdb_chunk_cutter_init(tsdb_chunk_cutter *c, int64_t chunk_range);
/* Accounts for a sample at |t|: returns 1 when it opens a new chunk, 0 when
 * it joins the open one, ORR_EINVAL when t is not after the previous sample
 * (Prometheus drops those) or the range is not positive. */
int tsdb_chunk_cutter_add(tsdb_chunk_cutter *c, int64_t t);

/* One encoded chunk with its time range (inclusive). */
typedef struct tsdb_chunk {
  int64_t mint, maxt;
  uint8_t enc; /* tsdb_chunk_enc */
  uint8_t *data; /* owned as the producing function says */
  size_t len;
} tsdb_chunk;

/* Encodes |n| samples (strictly increasing t) into XOR chunks cut as the
 * head does for |chunk_range|. On success |*out| holds |*nout| chunks; the
 * caller frees them with tsdb_chunks_free(). Returns 0, ORR_EINVAL (order),
 * or ORR_ENOMEM. */
int tsdb_xor_encode_series(const tsdb_sample *s, size_t n, int64_t chunk_range,
                           tsdb_chunk **out, size_t *nout);
/* Frees chunks (and their data) made by tsdb_xor_encode_series. */
void tsdb_chunks_free(tsdb_chunk *c, size_t n);

/* ---------------------------------------------------------------- aggregate chunks
 * Thanos's AggrChunk (encoding 0xff): up to five sub-chunks, in the order
 * count, sum, min, max, counter; each present one is uvarint(len(data)),
 * its encoding byte and its data; an absent one is a single 0 byte. */
typedef enum {
  TSDB_AGGR_COUNT = 0,
  TSDB_AGGR_SUM,
  TSDB_AGGR_MIN,
  TSDB_AGGR_MAX,
  TSDB_AGGR_COUNTER,
  TSDB_AGGR_NUM
} tsdb_aggr_type;

/* Returns "count", "sum", "min", "max", "counter" (static), or "<unknown>". */
const char *tsdb_aggr_name(tsdb_aggr_type t);

typedef struct tsdb_aggr_sub {
  uint8_t enc;         /* usually TSDB_ENC_XOR */
  const uint8_t *data; /* NULL or len 0: absent */
  size_t len;
} tsdb_aggr_sub;

/* Appends the aggregate chunk's bytes (without the 0xff encoding byte) made
 * of |subs| (TSDB_AGGR_NUM entries, borrowed) to |out|; 0 or ORR_ENOMEM. */
int tsdb_aggr_encode(const tsdb_aggr_sub *subs, orr_buf *out);
/* Finds aggregate |t| in |n| bytes at |p|: fills |*sub| (borrowing |p|) and
 * returns 0, ORR_ENOTFOUND when absent, ORR_ECORRUPT on a bad layout. */
int tsdb_aggr_get(const uint8_t *p, size_t n, tsdb_aggr_type t, tsdb_aggr_sub *sub);
/* Starts an XOR iterator over aggregate |t|; returns as tsdb_aggr_get, and
 * ORR_EUNSUPPORTED when that sub-chunk is not XOR. */
int tsdb_aggr_iter_init(tsdb_xor_iter *it, const uint8_t *p, size_t n, tsdb_aggr_type t);

/* Builds the five XOR sub-chunks side by side. Fields are private. */
typedef struct tsdb_aggr_appender {
  tsdb_xor_appender sub[TSDB_AGGR_NUM];
} tsdb_aggr_appender;

/* Returns 0 or ORR_ENOMEM; caller frees with tsdb_aggr_appender_free(). */
int tsdb_aggr_appender_init(tsdb_aggr_appender *a);
void tsdb_aggr_appender_free(tsdb_aggr_appender *a);
/* Appends one sample to aggregate |t| (the counter aggregate may hold more
 * samples than the others); returns as tsdb_xor_append. */
int tsdb_aggr_append(tsdb_aggr_appender *a, tsdb_aggr_type t, int64_t ts, double v);
/* Appends the aggregate chunk to |out|; aggregates without samples are
 * written as absent. Returns 0 or ORR_ENOMEM. */
int tsdb_aggr_appender_bytes(const tsdb_aggr_appender *a, orr_buf *out);

/* ---------------------------------------------------------------- chunk segment files
 * A block's chunks/ directory: files 000001, 000002, ... each starting with
 * magic 0x85BD40DD, version 1 and 3 zero bytes, then chunks as uvarint(len),
 * encoding byte, data, CRC32C(encoding + data) big-endian. A chunk reference
 * is (segment index << 32) | offset in that segment, index 0 being the first
 * file. Segments are at most 512 MiB (a larger single chunk gets a segment
 * of its own, as in Prometheus). */
#define TSDB_SEGMENT_DEFAULT_SIZE ((uint64_t)512 * 1024 * 1024)

typedef struct tsdb_chunk_reader tsdb_chunk_reader;

/* The names of the files in a block's chunks directory |cdir| (every entry
 * not starting with '.'), sorted, copied into |a| (the array too). Returns 0,
 * ORR_EIO (cannot read |cdir|) or ORR_ENOMEM. */
int tsdb_segment_names(const char *cdir, orr_arena *a, const char ***out, size_t *n);
/* Opens (mmaps) every segment file of |dir|. Returns 0, ORR_EIO,
 * ORR_ENOTFOUND (no such directory), ORR_ECORRUPT (a bad segment header) or ORR_ENOMEM
 * and writes the reason to |err|. Caller frees with tsdb_chunk_reader_close().
 * A reader is immutable after open and may be shared by threads. */
int tsdb_chunk_reader_open(const char *dir, tsdb_chunk_reader **out, char *err, size_t errlen);
/* As _open over |nseg| in-memory segments (borrowed until close), named
 * "segment <i>" in messages. */
int tsdb_chunk_reader_open_bytes(const uint8_t *const *segs, const size_t *lens, size_t nseg,
                                 tsdb_chunk_reader **out, char *err, size_t errlen);
void tsdb_chunk_reader_close(tsdb_chunk_reader *r);
size_t tsdb_chunk_reader_segments(const tsdb_chunk_reader *r);
/* Reads the chunk at |ref| with its length and CRC checked. On success
 * |*chunk| has enc, data (borrowed while the reader is open) and len (mint
 * and maxt are left 0: the index knows them). Returns 0, ORR_ENOTFOUND (no
 * such segment) or ORR_ECORRUPT with the file and offset in |err|. */
int tsdb_chunk_reader_get(const tsdb_chunk_reader *r, uint64_t ref, tsdb_chunk *chunk, char *err,
                          size_t errlen);
/* Walks every chunk of segment |seg| in file order; |fn| returns 0 to go
 * on, anything else stops the walk and is returned. Returns 0 at the end
 * or ORR_ECORRUPT (message in |err|). */
int tsdb_chunk_reader_walk(const tsdb_chunk_reader *r, size_t seg,
                           int (*fn)(void *arg, uint64_t ref, const tsdb_chunk *c), void *arg,
                           char *err, size_t errlen);

typedef struct tsdb_chunk_writer tsdb_chunk_writer;

/* Creates |dir| if needed and prepares to write segment files after the
 * last one present. |segment_size| 0 means TSDB_SEGMENT_DEFAULT_SIZE.
 * Returns 0, ORR_EIO or ORR_ENOMEM (reason in |err|). Caller ends with
 * tsdb_chunk_writer_close(). */
int tsdb_chunk_writer_open(const char *dir, uint64_t segment_size, tsdb_chunk_writer **out,
                           char *err, size_t errlen);
/* Writes one chunk (|c->enc|, |c->data|, |c->len|; borrowed) and returns its
 * reference in |*ref|. Cuts a new segment when the chunk would not fit.
 * Returns 0, ORR_EIO, ORR_ERANGE (len over 4 GiB) or ORR_ENOMEM. */
int tsdb_chunk_writer_add(tsdb_chunk_writer *w, const tsdb_chunk *c, uint64_t *ref);
/* Flushes, fsyncs and closes every segment and the directory, and frees
 * |w|. Returns 0 or the first error met (also from earlier adds). */
int tsdb_chunk_writer_close(tsdb_chunk_writer *w, char *err, size_t errlen);

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

/* The same selection over any source of label values and postings (the
 * store gateway's: index-header plus ranged reads). |label_values| gives
 * the sorted values of a label (strings and array from |a|); |postings| the
 * union of the postings of name=values[i] (absent pairs contribute
 * nothing; name "" value "" is every series). Either returns 0 or an error
 * that the selection returns. */
typedef struct tsdb_postings_source {
  int (*label_values)(void *arg, const char *name, orr_arena *a, const char ***values, size_t *n);
  int (*postings)(void *arg, const char *name, const char *const *values, size_t n, orr_arena *a,
                  tsdb_postings **out);
  void *arg;
} tsdb_postings_source;
int tsdb_select_postings(const tsdb_postings_source *src, labels_matcher *const *ms, size_t n,
                         orr_arena *a, tsdb_postings **out);

/* ---------------------------------------------------------------- index-header
 * Thanos's binary index-header, format version 1 (magic 0xBAAAD792): the
 * index's symbol table and postings offset table copied with ranged reads,
 * a header naming where the index's postings end, and a TOC. See
 * index_header.c for the layout. Lookups of symbols and label values go
 * through the index reader it holds (tsdb_index_header_reader); postings
 * lists and series are read from the index by the caller, in the ranges the
 * header gives. */
#define TSDB_INDEX_HEADER_MAGIC 0xBAAAD792u
typedef struct tsdb_index_header tsdb_index_header;

/* Reads |len| bytes at |off| of the index, appended to |out| (fewer only at
 * its end). Returns 0 or an ORR_E* code with one line in |err|. */
typedef int (*tsdb_read_range_fn)(void *arg, uint64_t off, uint64_t len, orr_buf *out, char *err,
                                  size_t errlen);
/* Builds the index-header of an index of |index_size| bytes read through
 * |rd| (three or five ranged reads: TOC, the two tables' lengths and
 * bodies, CRCs checked) and writes it to |path| (tmp name, fsync, rename,
 * fsync of the directory). Returns 0, ORR_ECORRUPT, ORR_EIO, ORR_ENOMEM or
 * |rd|'s error, with one line in |err|. */
int tsdb_index_header_write(tsdb_read_range_fn rd, void *arg, uint64_t index_size,
                            const char *path, char *err, size_t errlen);
/* Thanos's default --store.index-header-posting-offsets-in-mem-sampling. */
#define TSDB_INDEX_HEADER_SAMPLING 32
/* Opens (mmaps) and validates the index-header at |path|, keeping every
 * |sampling|-th entry of each label name's postings offsets in memory (the
 * first and last always; lookups scan the mapped table between them).
 * Returns 0, ORR_ENOTFOUND, ORR_EIO, ORR_ECORRUPT, ORR_EUNSUPPORTED,
 * ORR_EINVAL (|sampling| 0) or ORR_ENOMEM with one line in |err|. Caller
 * frees with tsdb_index_header_close(). Immutable after open; threads may
 * share it. */
int tsdb_index_header_open(const char *path, uint32_t sampling, tsdb_index_header **out,
                           char *err, size_t errlen);
/* As _open over |n| bytes at |p| (borrowed until close); for fuzzing. */
int tsdb_index_header_open_bytes(const void *p, size_t n, uint32_t sampling,
                                 tsdb_index_header **out, char *err, size_t errlen);
void tsdb_index_header_close(tsdb_index_header *h);
/* Symbols, label names and values (borrowed while |h| is open). The
 * reader has no series or postings: use the calls below for those. */
const tsdb_index_reader *tsdb_index_header_reader(const tsdb_index_header *h);
uint64_t tsdb_index_header_size(const tsdb_index_header *h);
/* The byte range [*start, *end) of the index holding the postings list of
 * |name|=|value| (it may hold padding after the list). ORR_ENOTFOUND when
 * the pair is absent. */
int tsdb_index_header_postings_range(const tsdb_index_header *h, const char *name,
                                     const char *value, uint64_t *start, uint64_t *end);
/* Decodes the series entry |ref| whose bytes start at |p| (|avail| bytes
 * read from offset ref * 16 of the index). Returns 0 (strings and arrays
 * from |a|), ORR_EAGAIN when the entry runs past |avail| (|*need| gets the
 * bytes to read, maybe an estimate), or ORR_ECORRUPT. */
int tsdb_index_header_series(const tsdb_index_header *h, const uint8_t *p, size_t avail,
                             uint64_t ref, orr_arena *a, labels_set *lset,
                             tsdb_index_chunk_meta **chks, size_t *nchks, size_t *need);
/* The symbols a run of tsdb_index_header_series_memo calls over one
 * index decoded, by reference (direct-mapped): names and values that many
 * series share (__name__, job) are looked up and copied once per run, not
 * per series. Its strings live in the arena those calls were given: reset
 * it with tsdb_symbol_memo_reset whenever that arena is reset or replaced. */
#define TSDB_SYMBOL_MEMO_SLOTS 512
typedef struct tsdb_symbol_memo {
  uint64_t ref[TSDB_SYMBOL_MEMO_SLOTS]; /* the symbol reference + 1; 0: empty */
  const char *s[TSDB_SYMBOL_MEMO_SLOTS];
} tsdb_symbol_memo;
void tsdb_symbol_memo_reset(tsdb_symbol_memo *m);
/* tsdb_index_header_series with label strings through |memo| (may be NULL):
 * the label sets may share strings with one another. */
int tsdb_index_header_series_memo(const tsdb_index_header *h, const uint8_t *p, size_t avail,
                                  uint64_t ref, orr_arena *a, tsdb_symbol_memo *memo,
                                  labels_set *lset, tsdb_index_chunk_meta **chks, size_t *nchks,
                                  size_t *need);
/* Decodes a postings list as stored (length, big-endian entries, CRC32C)
 * from |n| bytes at |p| (trailing bytes ignored) into |*refs| (from |a|).
 * 0, ORR_ECORRUPT or ORR_ENOMEM. */
int tsdb_postings_list_decode(const uint8_t *p, size_t n, orr_arena *a, uint64_t **refs,
                              size_t *cnt);
/* As _decode, but iterates over the list in place: |p| (|n| bytes) is
 * borrowed for the iterator's life. |verify| false skips the CRC and order
 * checks (for bytes already checked, e.g. from a cache). 0, ORR_ECORRUPT or
 * ORR_ENOMEM. */
int tsdb_postings_list_open(const uint8_t *p, size_t n, bool verify, orr_arena *a,
                            tsdb_postings **out);

/* ---------------------------------------------------------------- index v2 writer
 * Writes an index byte-identical to Prometheus 2.42's for the same symbols,
 * series and chunk metas. Order of calls: every symbol (strictly increasing;
 * Prometheus always has "" among them), then every series in label order,
 * then finish. The series section is streamed to the file; postings are built
 * by rescanning it (mmapped) in batches of label names whose series counts
 * add up to at most the number of series: 20 bytes per (label, series) pair
 * of a batch, so at most 20 bytes per series, plus 16 bytes per distinct
 * label pair, 12 bytes per symbol and the symbols themselves. The temporary
 * file |path|_tmp_p sits beside the index. */
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

/* Adds deletion |iv| for series |ref| (ignored when maxt < mint: it deletes
 * nothing); 0 or ORR_ENOMEM. */
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

/* ================================================================ block */
/* (section owned by the block work: block reader, writer, verification) */

/* ---------------------------------------------------------------- block reader
 * A block directory: meta.json, index, chunks/ and tombstones. Opened once,
 * immutable afterwards and shareable by threads; every selection borrows
 * chunk bytes from the block's mappings, so the block must outlive them. */
typedef struct tsdb_block tsdb_block;

/* Opens the block at |dir| (meta.json, index, chunks/, tombstones). Returns
 * 0, ORR_ENOTFOUND (no meta.json), ORR_ECORRUPT, ORR_EUNSUPPORTED, ORR_EIO
 * or ORR_ENOMEM with the block dir and file named in |err|. Caller frees
 * with tsdb_block_close(). */
int tsdb_block_open(const char *dir, tsdb_block **out, char *err, size_t errlen);
void tsdb_block_close(tsdb_block *b);
/* Borrowed while |b| is open. */
const char *tsdb_block_dir(const tsdb_block *b);
const tsdb_meta *tsdb_block_meta(const tsdb_block *b);
const tsdb_index_reader *tsdb_block_index(const tsdb_block *b);
const tsdb_chunk_reader *tsdb_block_chunks(const tsdb_block *b);
const tsdb_tombstones *tsdb_block_tombstones(const tsdb_block *b);

/* One selected series. Strings, arrays and the struct are the selection's
 * scratch memory; chunk data is borrowed from the block's mappings. */
typedef struct tsdb_series {
  uint64_t ref;               /* index series reference */
  labels_set labels;
  tsdb_chunk *chunks;         /* mint/maxt from the index, enc/data/len from the segment */
  size_t nchunks;
  const tsdb_intervals *deleted; /* tombstones of the series, or NULL */
  int64_t mint, maxt;         /* the selection's bounds (inclusive) */
} tsdb_series;

typedef struct tsdb_series_set tsdb_series_set;

/* Series matching all of |ms| (none: every series) whose chunks overlap
 * [|mint|, |maxt|] (inclusive, milliseconds), in label order. Chunks outside
 * the range or wholly deleted by tombstones are dropped, and so is a series
 * left without chunks. |ms| is borrowed until the set is drained. The set
 * is allocated from |a| and lives as long as |a| and |b|. Returns 0,
 * ORR_ENOMEM or ORR_ECORRUPT (a bad postings list; message in
 * tsdb_index_last_error()). The caller ends with tsdb_series_set_close(). */
int tsdb_block_select(const tsdb_block *b, labels_matcher *const *ms, size_t n, int64_t mint,
                      int64_t maxt, orr_arena *a, tsdb_series_set **out);
/* Advances: returns 1 with |*s| set (valid until the next call or close: a
 * series' memory is scratch, reused from one series to the next), 0 at the
 * end, or a negative error (ORR_ECORRUPT, ORR_ENOMEM) with the block dir,
 * file, offset and series in tsdb_series_set_error(). */
int tsdb_series_set_next(tsdb_series_set *ss, const tsdb_series **s);
const char *tsdb_series_set_error(const tsdb_series_set *ss);
/* Frees the set's scratch memory (the set itself lives in the arena). */
void tsdb_series_set_close(tsdb_series_set *ss);

/* Samples of one series, chunk after chunk, within its [mint, maxt] and
 * outside its deleted intervals. XOR chunks only (other encodings fail with
 * ORR_EUNSUPPORTED). Fields are private except t and v. */
typedef struct tsdb_series_iter {
  int64_t t;
  double v;
  const tsdb_series *s; /* borrowed while iterating */
  size_t ci;            /* current chunk */
  tsdb_xor_iter xi;
  bool open;
  int err;
} tsdb_series_iter;

void tsdb_series_iter_init(tsdb_series_iter *it, const tsdb_series *s);
/* Returns 1 with it->t/it->v set, 0 at the end, or ORR_ECORRUPT /
 * ORR_EUNSUPPORTED (latched). */
int tsdb_series_iter_next(tsdb_series_iter *it);

/* Label names of the series matching |ms| (n == 0: of the whole block),
 * sorted; strings and array from |a|. */
int tsdb_block_label_names(const tsdb_block *b, labels_matcher *const *ms, size_t n,
                           orr_arena *a, const char ***names, size_t *nnames);
/* Values of label |name| among the series matching |ms| (n == 0: the whole
 * block), sorted, as Prometheus's LabelValues with matchers. From |a|. */
int tsdb_block_label_values(const tsdb_block *b, const char *name, labels_matcher *const *ms,
                            size_t n, orr_arena *a, const char ***values, size_t *nvalues);

/* A block directory found under a parent directory. */
typedef struct tsdb_block_entry {
  const char *dir;  /* <parent>/<ulid> */
  tsdb_meta meta;
  bool meta_ok;     /* false: meta.json missing or unreadable (see err) */
  const char *err;
  uint64_t size_bytes; /* total size of the block's files */
} tsdb_block_entry;

/* Lists the blocks in |parent|: directories named by a ULID (temporaries
 * such as <ulid>.tmp-for-creation are skipped), sorted by ULID. Everything
 * from |a|. Returns 0, ORR_ENOTFOUND / ORR_EIO (reason in |err|) or ORR_ENOMEM. */
int tsdb_block_list(const char *parent, orr_arena *a, tsdb_block_entry **out, size_t *n,
                    char *err, size_t errlen);

/* ---------------------------------------------------------------- block writer
 * Writes a complete block from series given in label order, into
 * <parent>/<ulid>.tmp-for-creation, then fsyncs every file and the
 * directories and renames it to <parent>/<ulid>: a crash never leaves a
 * directory that looks like a whole block. Chunks are cut as Prometheus's
 * head cuts them for a chunk range of TSDB_BLOCK_CHUNK_RANGE (2h, the head's
 * default min block duration) unless the options say otherwise. */
#define TSDB_BLOCK_CHUNK_RANGE ((int64_t)2 * 60 * 60 * 1000)
#define TSDB_BLOCK_TMP_SUFFIX ".tmp-for-creation"

typedef struct tsdb_block_writer_opts {
  int64_t chunk_range;   /* 0: TSDB_BLOCK_CHUNK_RANGE */
  uint64_t segment_size; /* 0: TSDB_SEGMENT_DEFAULT_SIZE */
  /* When true, meta.json's minTime/maxTime are these; otherwise the first
   * sample and the last sample + 1, as Prometheus writes them. */
  bool fixed_range;
  int64_t min_time, max_time;
  /* NULL: no thanos section; else its has_thanos/thanos fields are copied. */
  const tsdb_meta *thanos;
} tsdb_block_writer_opts;

typedef struct tsdb_block_writer tsdb_block_writer;

/* Creates <parent>/<new ulid>.tmp-for-creation. |o| may be NULL (defaults)
 * and is copied (the thanos meta is borrowed until commit). Returns 0,
 * ORR_EIO or ORR_ENOMEM (reason in |err|). End with commit or abort. */
int tsdb_block_writer_open(const char *parent, const tsdb_block_writer_opts *o,
                           tsdb_block_writer **out, char *err, size_t errlen);
/* Adds a series with |n| samples (strictly increasing t; n == 0 adds
 * nothing). |lset| must sort after the previous series; it and |s| are
 * copied/borrowed only for the call. Returns 0, ORR_EINVAL, ORR_EIO or
 * ORR_ENOMEM; after an error only abort is possible. */
int tsdb_block_writer_add_samples(tsdb_block_writer *w, const labels_set *lset,
                                  const tsdb_sample *s, size_t n);
/* Adds a series with ready-made chunks (|c[i]|.mint/maxt/enc/data/len,
 * sorted and non-overlapping), borrowed for the call. */
int tsdb_block_writer_add_chunks(tsdb_block_writer *w, const labels_set *lset,
                                 const tsdb_chunk *c, size_t n);
/* Writes index, meta.json and an empty tombstones file, fsyncs and renames
 * the directory into place; frees |w| in every case. The ULID (and final
 * directory name) goes to |ulid| (may be NULL). On failure the temporary
 * directory is removed. Returns 0, ORR_EINVAL (no series and no fixed
 * range), ORR_EIO or ORR_ENOMEM (reason in |err|). */
int tsdb_block_writer_commit(tsdb_block_writer *w, tsdb_ulid *ulid, char *err, size_t errlen);
/* Removes the temporary directory and frees |w| (NULL is fine). */
void tsdb_block_writer_abort(tsdb_block_writer *w);

/* ---------------------------------------------------------------- verification */
typedef struct tsdb_verify_stats {
  uint64_t series, chunks, samples, postings, problems;
} tsdb_verify_stats;

/* Checks the block at |dir| in full: meta.json, every CRC (index TOC,
 * symbols, series, postings tables and lists, every chunk), series order,
 * postings order and targets, chunk refs, chunk time ranges against their
 * samples, chunk order within a series, samples within [minTime, maxTime),
 * and meta.json's stats. Each problem is passed to |report| as one line
 * naming the file, offset and series. Returns 0 when clean, ORR_ECORRUPT
 * when problems were reported (count in |st|), ORR_ENOMEM. |st| may be NULL. */
int tsdb_block_verify(const char *dir, void (*report)(void *arg, const char *msg), void *arg,
                      tsdb_verify_stats *st);

/* ---------------------------------------------------------------- compaction
 * Merges N blocks into one as Prometheus 2.42's LeveledCompactor does,
 * streaming: symbols are the merged symbol tables of the inputs; series
 * are merged in label order across the blocks one at a time; chunks that
 * overlap no other chunk of the series are copied byte for byte, and
 * overlapping ones are decoded, merged by |merge| and re-encoded into XOR
 * chunks of at most TSDB_SAMPLES_PER_CHUNK samples (Prometheus's compacting
 * chunk merger). Tombstones are applied (a chunk they touch is re-encoded).
 * Memory holds one merged series at a time plus the index writer's
 * postings batches, never the whole block. */

/* Merges |n| sorted sample runs (|in[i]|, |nin[i]| each; at least two)
 * into one strictly increasing run written to |*out| (malloc'ed, caller of
 * the merge frees). Returns 0 or a negative ORR_E* code. */
typedef int (*tsdb_merge_fn)(void *arg, const tsdb_sample *const *in, const size_t *nin, size_t n,
                             tsdb_sample **out, size_t *nout);

typedef struct tsdb_compact_opts {
  uint64_t segment_size;  /* 0: TSDB_SEGMENT_DEFAULT_SIZE */
  /* NULL: no thanos section; else its thanos labels, downsample resolution
   * and source are copied into the new meta.json (borrowed for the call). */
  const tsdb_meta *thanos;
  tsdb_merge_fn merge; /* NULL: tsdb_merge_chain */
  void *merge_arg;
  /* With |merge|: |merge| gets each input block's whole series (inputs
   * disjoint in time chained, as one replica's consecutive blocks) once per
   * series, instead of each run of overlapping chunks; series whose inputs
   * do not overlap are copied as they are. For merges that keep state along
   * the series, as the penalty dedup. */
  bool merge_whole_series;
} tsdb_compact_opts;

typedef struct tsdb_compact_result {
  tsdb_ulid ulid;  /* the new block: <parent>/<ulid> */
  bool empty;      /* no sample survived: nothing was written */
  uint64_t num_series, num_chunks, num_samples;
  uint64_t chunks_copied, chunks_reencoded;
} tsdb_compact_result;

/* Prometheus's chain merge: samples in time order, one per timestamp (the
 * run listed first wins a tie: identical replicas merge 1:1). */
int tsdb_merge_chain(void *arg, const tsdb_sample *const *in, const size_t *nin, size_t n,
                     tsdb_sample **out, size_t *nout);

/* Compacts the blocks at |dirs| (|n| >= 1, borrowed) into a new block under
 * |parent| (written in <ulid>.tmp-for-creation, fsynced, renamed). Its
 * meta.json has minTime/maxTime spanning the inputs, compaction level one
 * above the highest input, the union of their sources and the inputs as
 * parents (in the order given). When no sample survives nothing is written
 * and |res->empty| is set. Returns 0, ORR_ENOTFOUND / ORR_ECORRUPT (a bad
 * input), ORR_EUNSUPPORTED (overlapping non-XOR chunks), ORR_EIO or
 * ORR_ENOMEM with the reason in |err|. */
int tsdb_compact(const char *parent, const char *const *dirs, size_t n,
                 const tsdb_compact_opts *o, tsdb_compact_result *res, char *err, size_t errlen);

/* ---------------------------------------------------------------- downsampling
 * Thanos's downsampling into aggregate chunks (count, sum, min, max,
 * counter; see downsample.c's notes for windows and counter semantics). */
#define TSDB_DOWNSAMPLE_CHUNK_SAMPLES 140

/* The end (inclusive) of |t|'s window of |res| ms: t - t % res + res - 1. */
int64_t tsdb_downsample_window(int64_t t, int64_t res);
/* Raw samples (|n|, increasing t) into aggregate chunks of resolution
 * |res|; |*out| (|*nout| chunks) freed by the caller with tsdb_chunks_free.
 * Returns 0, ORR_EINVAL or ORR_ENOMEM. */
int tsdb_downsample_raw(const tsdb_sample *s, size_t n, int64_t res, tsdb_chunk **out,
                        size_t *nout);
/* Aggregate chunks (|n|, in time order, borrowed) into coarser ones of
 * resolution |res|; as tsdb_downsample_raw, ORR_EUNSUPPORTED for a non-
 * aggregate chunk, ORR_ECORRUPT for a bad one. */
int tsdb_downsample_aggr(const tsdb_chunk *c, size_t n, int64_t res, tsdb_chunk **out,
                         size_t *nout);
/* Downsamples the block at |dir| to resolution |res| into a new block under
 * |parent| (tmp dir, fsync, rename): same time range, level and sources,
 * thanos.downsample.resolution = |res|, labels and source from |thanos|
 * (may be NULL: kept). |out| as tsdb_compact's (empty: nothing written).
 * Returns 0 or an ORR_E* code with |err| set. */
int tsdb_downsample(const char *parent, const char *dir, int64_t res, const tsdb_meta *thanos,
                    tsdb_compact_result *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* ORR_TSDB_H */
