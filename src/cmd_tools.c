/* cmd_tools.c: `orrery tools …` — offline commands: inspect, dump and
 * verify blocks (local or in the bucket), evaluate PromQL over local block
 * directories. */
#include "cli.h"

static int run(int argc, char **argv) { return cli_not_implemented(argv[0]); }

/* ---- tools block ls */
static struct {
  const char *objstore_file, *objstore, *output;
} ls_opt;
static const orr_flag ls_flags[] = {
    CLI_OBJSTORE_FLAGS(&ls_opt.objstore_file, &ls_opt.objstore),
    {"output", ORR_FLAG_STRING, &ls_opt.output, "table", "Output format: table or json.", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
static const cli_command block_ls = {
    "ls", "List the blocks in the bucket.", NULL, CLI_LOG, ls_flags, run, NULL,
};

/* ---- tools block inspect */
static struct {
  const char *objstore_file, *objstore, *output;
  orr_strings selector;
} inspect_opt;
static const orr_flag inspect_flags[] = {
    CLI_OBJSTORE_FLAGS(&inspect_opt.objstore_file, &inspect_opt.objstore),
    {"selector", ORR_FLAG_STRINGS, &inspect_opt.selector, NULL,
     "Only blocks whose external labels match this name=\"value\" selector. Repeatable.",
     "<name=\"value\">"},
    {"output", ORR_FLAG_STRING, &inspect_opt.output, "table", "Output format: table or json.",
     NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
static const cli_command block_inspect = {
    "inspect", "Show the blocks of the bucket with their meta.json details.", NULL, CLI_LOG,
    inspect_flags, run, NULL,
};

/* ---- tools block dump */
static struct {
  orr_strings match;
  const char *min_time, *max_time;
} dump_opt;
static const orr_flag dump_flags[] = {
    {"match", ORR_FLAG_STRINGS, &dump_opt.match, "{__name__=~\".+\"}",
     "Series selector. Repeatable.", "<selector>"},
    {"min-time", ORR_FLAG_STRING, &dump_opt.min_time, NULL,
     "Minimum timestamp to dump (RFC3339 or unix seconds).", "<time>"},
    {"max-time", ORR_FLAG_STRING, &dump_opt.max_time, NULL,
     "Maximum timestamp to dump (RFC3339 or unix seconds).", "<time>"},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
static const cli_command block_dump = {
    "dump", "Dump the samples of a local block directory.", "<block-dir>", CLI_LOG, dump_flags,
    run, NULL,
};

/* ---- tools block verify */
static struct {
  const char *objstore_file, *objstore;
  orr_strings ids;
} verify_opt;
static const orr_flag verify_flags[] = {
    CLI_OBJSTORE_FLAGS(&verify_opt.objstore_file, &verify_opt.objstore),
    {"id", ORR_FLAG_STRINGS, &verify_opt.ids, NULL,
     "Block ULID to verify; all blocks if none. Repeatable.", "<ulid>"},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
static const cli_command block_verify = {
    "verify", "Verify blocks in the bucket (index, chunks, overlaps).", NULL, CLI_LOG,
    verify_flags, run, NULL,
};

static const cli_command *const block_cmds[] = {&block_ls, &block_inspect, &block_dump,
                                                &block_verify, NULL};
static const cli_command block = {
    "block", "Inspect, dump and verify blocks.", NULL, 0, NULL, NULL, block_cmds,
};

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

static const cli_command *const tools_cmds[] = {&block, &query, NULL};
const cli_command cli_cmd_tools = {
    "tools", "Offline tools for blocks and PromQL.", NULL, 0, NULL, NULL, tools_cmds,
};
