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

#ifdef __cplusplus
}
#endif
#endif /* ORR_TSDB_H */
