/* tools_block.h: `orrery tools block ls|inspect|dump|verify` — offline
 * commands over local block directories (a Prometheus data dir or a
 * filesystem bucket). */
#ifndef ORR_TOOLS_BLOCK_H
#define ORR_TOOLS_BLOCK_H

#include "cli.h"

/* The `block` command of `orrery tools`, with its four subcommands. */
extern const cli_command tools_cmd_block;

#endif
