/* tsdb_int.h: layouts and helpers shared by the files of the tsdb module
 * (not part of its public face, tsdb.h). Formats' magic numbers, versions and
 * CRC conventions live here. Prefix: tsdb__. */
#ifndef ORR_TSDB_INT_H
#define ORR_TSDB_INT_H

#include "tsdb.h"

/* ================================================================ chunks */
/* (section owned by the chunks work) */
#define TSDB__SEGMENT_MAGIC 0x85BD40DDu
#define TSDB__SEGMENT_V1 1
#define TSDB__SEGMENT_HEADER_LEN 8 /* magic, version, 3 bytes padding */
#define TSDB__CHUNK_LEN_MAX_BYTES 5 /* uvarint of a 32-bit length */
#define TSDB__CHUNK_CRC_LEN 4

/* ================================================================ index */
/* (section owned by the index work) */
#define TSDB__INDEX_MAGIC 0xBAAAD700u
#define TSDB__INDEX_V1 1
#define TSDB__INDEX_V2 2
#define TSDB__INDEX_TOC_LEN (6 * 8 + 4)
#define TSDB__INDEX_HEADER_LEN 5 /* magic, version */
#define TSDB__SYMBOL_FACTOR 32   /* symbols / postings offsets sampled in memory */
#define TSDB__TOMBSTONE_MAGIC 0x0130BA30u
#define TSDB__TOMBSTONE_V1 1

/* True except in fuzz targets, which turn CRC checks of the index reader off
 * for some inputs so that mutated files reach the parsers behind them; every
 * structural check stays on. */
extern bool tsdb__index_verify_crc;

/* Records a corruption message for tsdb_index_last_error() and returns
 * ORR_ECORRUPT. */
int tsdb__corrupt(const char *fmt, ...) ORR_PRINTF(1, 2);

/* A postings iterator: concrete iterators embed this first. |cur| is valid
 * after next/seek returned true. */
struct tsdb_postings {
  bool (*next)(tsdb_postings *p);
  bool (*seek)(tsdb_postings *p, uint64_t v);
  uint64_t cur;
};

/* Iterator over a validated big-endian uint32 list (postings section body);
 * |p| is borrowed for the iterator's life. */
tsdb_postings *tsdb__postings_be32(orr_arena *a, const uint8_t *p, size_t count);

/* Reads the whole of |path| into |b|: 0, ORR_ENOTFOUND, ORR_EIO, ORR_ENOMEM. */
int tsdb__read_file(const char *path, orr_buf *b);
/* Writes <dir>/<name> atomically (<name>.tmp, fsync, rename, fsync dir). */
int tsdb__write_file_atomic(const char *dir, const char *name, const void *p, size_t n);

/* fsync of a file or directory: 0 or ORR_EIO (errno kept). */
int tsdb__fsync_path(const char *path, bool dir);
/* Drops the pages of |r|'s mapped segments from the process (they are
 * clean file pages: the next access faults them in from the page cache),
 * so that a pass over a whole block does not keep it all resident. */
void tsdb__chunk_reader_release(const tsdb_chunk_reader *r);
/* Series between two releases in whole-block passes (verification), and
 * chunk bytes read between two releases (compaction, downsampling). */
#define TSDB__RELEASE_EVERY 4096
#define TSDB__RELEASE_BYTES ((uint64_t)32 << 20)
/* Samples in a chunk, from its header (aggregate chunks: the count aggregate). */
uint64_t tsdb__chunk_samples(const tsdb_chunk *c);
/* ---- index-header support (index_reader.c) */
/* Opens a reader over just a symbol table at |symbols| and a postings
 * offset table at |pot| within |n| bytes at |p| (borrowed until close):
 * the index-header's copies. Postings offsets may reach |poff_limit| (the
 * original index's size). Every |sampling|-th postings offset table entry
 * of a name is kept in memory (index_reader.c note 2). Same returns as
 * tsdb_index_open_bytes, and ORR_EINVAL when |sampling| is 0. */
int tsdb__index_open_tables(const void *p, size_t n, uint64_t symbols, uint64_t pot,
                            uint64_t poff_limit, uint32_t sampling, tsdb_index_reader **out,
                            char *err, size_t errlen);
/* The byte range [*start, *end) of the index that holds the postings list of
 * |name|=|value| (length, entries, CRC, maybe padding): up to the next list's
 * offset, or |last_end| for the last list. ORR_ENOTFOUND when absent. */
int tsdb__index_postings_span(const tsdb_index_reader *r, const char *name, const char *value,
                              uint64_t last_end, uint64_t *start, uint64_t *end);
/* Decodes the series entry at |p| (|avail| bytes; series |ref| for messages)
 * with symbols from |r|. ORR_EAGAIN when the entry runs past |avail|:
 * |*need| (when not NULL) gets the bytes needed, or an estimate when even
 * the length was cut. Else as tsdb_index_series. */
int tsdb__index_decode_series(const tsdb_index_reader *r, const uint8_t *p, size_t avail,
                              uint64_t ref, orr_arena *a, tsdb_symbol_memo *memo,
                              labels_set *lset,
                              tsdb_index_chunk_meta **chks, size_t *nchks, size_t *need);

#endif /* ORR_TSDB_INT_H */
