/* tools.h: `orrery tools …` — offline commands that need no daemon:
 * inspect, dump and verify blocks in a local directory (a Prometheus data
 * dir or a filesystem bucket), evaluate PromQL over local block directories
 * (printing exactly Prometheus's API body), and read or write the bucket from
 * the command line.
 *
 * Exposes: the three command groups for `orrery tools` (cmd.c). Files:
 * block.c (block ls|inspect|dump|verify), query.c (query), bucket.c (bucket
 * ls|put|get|rm|check). */
#ifndef ORR_TOOLS_H
#define ORR_TOOLS_H

#include "cli.h"

extern const cli_command tools_cmd_block;  /* block.c */
extern const cli_command tools_cmd_query;  /* query.c */
extern const cli_command tools_cmd_bucket; /* bucket.c */

#endif
