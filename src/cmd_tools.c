/* cmd_tools.c: `orrery tools …` — offline commands: inspect, dump and
 * verify blocks (local or in the bucket), evaluate PromQL over local block
 * directories. */
#include "cli.h"
#include "tools_block.h"

static int run(int argc, char **argv) { return cli_not_implemented(argv[0]); }

/* ---- tools block ls|inspect|dump|verify: tools_block.c */

/* ---- tools query */
static struct {
  orr_strings paths;
  const char *time, *start, *end;
  int64_t step_ms;
  int64_t lookback_delta_ms;
} query_opt;
static const orr_flag query_flags[] = {
    {"path", ORR_FLAG_STRINGS, &query_opt.paths, NULL,
     "Local block directory, or a directory of blocks. Repeatable.", "<dir>"},
    {"time", ORR_FLAG_STRING, &query_opt.time, NULL,
     "Evaluation time for an instant query (RFC3339 or unix seconds); default now.", "<time>"},
    {"start", ORR_FLAG_STRING, &query_opt.start, NULL,
     "Start of a range query (RFC3339 or unix seconds).", "<time>"},
    {"end", ORR_FLAG_STRING, &query_opt.end, NULL, "End of a range query (RFC3339 or unix seconds).",
     "<time>"},
    {"step", ORR_FLAG_DURATION, &query_opt.step_ms, "1m", "Step of a range query.", NULL},
    {"query.lookback-delta", ORR_FLAG_DURATION, &query_opt.lookback_delta_ms, "5m",
     "The maximum lookback duration for retrieving metrics during expression evaluations.", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
static const cli_command query = {
    "query", "Evaluate a PromQL expression over local blocks.", "<expr>", CLI_LOG, query_flags,
    run, NULL,
};

static const cli_command *const tools_cmds[] = {&tools_cmd_block, &query, NULL};
const cli_command cli_cmd_tools = {
    "tools", "Offline tools for blocks and PromQL.", NULL, 0, NULL, NULL, tools_cmds,
};
