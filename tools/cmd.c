/* cmd.c: `orrery tools …` — offline commands: inspect, dump and
 * verify blocks (local or in the bucket), evaluate PromQL over local block
 * directories. */
#include "tools.h"

static const cli_command *const tools_cmds[] = {&tools_cmd_block, &tools_cmd_query,
                                                &tools_cmd_bucket, NULL};
const cli_command cli_cmd_tools = {
    "tools", "Offline tools for blocks and PromQL.", NULL, 0, NULL, NULL, tools_cmds,
};
