/* cmd_tools.c: `orrery tools …` — offline commands: inspect, dump and
 * verify blocks (local or in the bucket), evaluate PromQL over local block
 * directories. */
#include "cli.h"
#include "tools_block.h"

/* ---- tools block ls|inspect|dump|verify: tools_block.c */

/* ---- tools query: tools_query.c */
extern const cli_command tools_cmd_query;

/* ---- tools bucket ls|put|get|rm|check: tools_bucket.c */
extern const cli_command tools_cmd_bucket;

static const cli_command *const tools_cmds[] = {&tools_cmd_block, &tools_cmd_query,
                                                &tools_cmd_bucket, NULL};
const cli_command cli_cmd_tools = {
    "tools", "Offline tools for blocks and PromQL.", NULL, 0, NULL, NULL, tools_cmds,
};
