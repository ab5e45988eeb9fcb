/* compact.h: `orrery compact` — the only process that rewrites the bucket.
 * It groups blocks by external labels and resolution, compacts them
 * (2h → 8h → 2d → 14d), merges HA replicas vertically, downsamples raw data
 * to 5m and 1h aggregate chunks, applies retention per resolution, and
 * deletes through deletion marks after a delay.
 *
 * Exposes: the command (cli_cmd_compact, cmd.c: its flags, Thanos compact's
 * names and defaults) and the bucket tools built on its catalogue
 * (inspect.c). Internals: compact_int.h (catalogue, marks, planner),
 * compact_run.h (one iteration). */
#ifndef ORR_COMPACT_H
#define ORR_COMPACT_H

#include <stdio.h>

#include "cli.h"
#include "objstore.h"

/* `orrery tools bucket inspect`: writes a table of the bucket's blocks
 * (ULID, time range, level, resolution, series, samples, size, marks,
 * labels) to |out|. Returns 0 or an ORR_E* code with |err| set. */
int compact_bucket_inspect(objstore_bucket *b, FILE *out, char *err, size_t errlen);
/* `orrery tools bucket mark`: puts <id>/<marker> (deletion-mark.json or
 * no-compact-mark.json) in Thanos's format. ORR_EINVAL for a bad id or
 * marker, ORR_ENOTFOUND when the block has no meta.json. */
int compact_bucket_mark(objstore_bucket *b, const char *id, const char *marker,
                        const char *details, char *err, size_t errlen);

#endif
