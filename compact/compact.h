/* compact.h: `orrery compact` — the only process that rewrites the bucket.
 * It groups blocks by external labels and resolution, compacts them
 * (2h → 8h → 2d → 14d), merges HA replicas vertically, downsamples raw data
 * to 5m and 1h aggregate chunks, applies retention per resolution, and
 * deletes through deletion marks after a delay.
 *
 * Exposes: the command (cli_cmd_compact, cmd.c: its flags, Thanos compact's
 * names and defaults). */
#ifndef ORR_COMPACT_H
#define ORR_COMPACT_H

#include "cli.h"

#endif
