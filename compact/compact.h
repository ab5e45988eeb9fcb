/* compact.h: `orrery compact` — the only process that rewrites the bucket.
 * It groups blocks by external labels and resolution, compacts them
 * (2h → 8h → 2d → 14d), merges HA replicas vertically, downsamples raw data
 * to 5m and 1h aggregate chunks, applies retention per resolution, and
 * deletes through deletion marks after a delay.
 *
 * Exposes: the command (cli_cmd_compact, cmd.c: its flags, Thanos compact's
 * names and defaults), the bucket tools built on its catalogue
 * (inspect.c) and the blocks page (web.c: /blocks and /api/v1/blocks, for
 * `compact --wait` and `tools bucket web`). Internals: compact_int.h (catalogue, marks, planner),
 * compact_run.h (one iteration). */
#ifndef ORR_COMPACT_H
#define ORR_COMPACT_H

#include <stdio.h>

#include "cli.h"
#include "daemon.h"
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

/* The blocks page (web.c): /blocks and GET /api/v1/blocks (Thanos's bucket
 * web answer: every block's meta.json, with "marks" and "sizeBytes") on a
 * daemon, the bucket re-read every |refresh_ms| on a thread of its own. */
typedef struct compact_web_config {
  objstore_bucket *bucket;     /* borrowed until compact_web_free */
  const char *label;           /* external label whose value titles a group ("": none) */
  int64_t refresh_ms;          /* --refresh */
  int64_t timeout_ms;          /* --timeout: longest read of the bucket */
  const char *route_prefix;    /* --web.route-prefix (NULL or "": the root) */
  const char *external_prefix; /* --web.external-prefix (NULL or "": the route prefix) */
  bool set_ready;              /* /-/ready only once the bucket was read */
  /* Where to count the reads as Thanos's block fetcher does
   * (thanos_blocks_meta_syncs_total, _sync_failures_total,
   * _sync_duration_seconds, _synced{state}); NULL when the daemon counts its
   * own syncs under those names (compact --wait). */
  orr_registry *metrics;
} compact_web_config;
typedef struct compact_web compact_web;
/* Checks --web.route-prefix and --web.external-prefix before the daemon
 * starts, for `compact` and `tools bucket web` alike: 0, or ORR_EINVAL with a
 * line on stderr naming |prog|. */
int compact_web_check_prefixes(const char *prog, const char *route_prefix,
                               const char *external_prefix);

/* Adds the routes to |d|'s router and starts reading the bucket. |cfg| is
 * copied (its strings too). Call before daemon_run(); free with
 * compact_web_free() after it returned. Returns 0, ORR_EINVAL (a bad
 * prefix, a refresh or timeout not above 0) or ORR_ENOMEM. */
int compact_web_start(daemon_ctx *d, const compact_web_config *cfg, compact_web **out);
/* Stops the reader (waits for a read in progress) and frees |w| (NULL: no-op). */
void compact_web_free(compact_web *w);

#endif
