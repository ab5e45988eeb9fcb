/* store.h: `orrery store` — the store gateway. It serves every block in the
 * bucket over StoreAPI: it syncs the bucket's block list (time partition,
 * label sharding, consistency delay, deletion marks), keeps a small local
 * index-header per block, and answers Series, LabelNames and LabelValues with
 * ranged reads of postings, series and chunks through bounded caches and
 * per-request limits.
 *
 * Exposes: the command (cli_cmd_store, cmd.c: its flags, Thanos store's
 * names and defaults) and store_main (store.c), which runs the daemon. */
#ifndef ORR_STORE_H
#define ORR_STORE_H

#include "cli.h"

typedef struct store_config store_config; /* store_int.h */

/* Runs the store gateway until SIGTERM; returns the exit status (0 after a
 * clean shutdown, 1 when the bucket or the addresses cannot be used).
 * |cfg| is borrowed for the call. */
int store_main(const store_config *cfg);

#endif
