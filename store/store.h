/* store.h: `orrery store` — the store gateway. It serves every block in the
 * bucket over StoreAPI: it syncs the bucket's block list (time partition,
 * label sharding, consistency delay, deletion marks), keeps a small local
 * index-header per block, and answers Series, LabelNames and LabelValues with
 * ranged reads of postings, series and chunks through bounded caches and
 * per-request limits.
 *
 * Exposes: the command (cli_cmd_store, cmd.c: its flags, Thanos store's
 * names and defaults). */
#ifndef ORR_STORE_H
#define ORR_STORE_H

#include "cli.h"

#endif
