/* cmd.c: `orrery compact` — compaction, downsampling, retention
 * and deletion in the bucket. Its flags (Thanos compact's names and
 * defaults). The compactor serves HTTP (metrics) but no gRPC. */
#include "compact.h"

static struct {
  const char *data_dir;
  const char *objstore_file;
  const char *objstore;
  int64_t consistency_delay_ms;
  int64_t retention_raw_ms;
  int64_t retention_5m_ms;
  int64_t retention_1h_ms;
  int wait;
  int64_t wait_interval_ms;
  int downsampling_disable;
  int64_t delete_delay_ms;
  int64_t compact_concurrency;
  int64_t downsample_concurrency;
  orr_strings replica_labels;
  const char *dedup_func;
} opt;

static const orr_flag flags[] = {
    {"data-dir", ORR_FLAG_STRING, &opt.data_dir, "./data",
     "Data directory in which to cache blocks and process compactions.", NULL},
    CLI_OBJSTORE_FLAGS(&opt.objstore_file, &opt.objstore),
    {"consistency-delay", ORR_FLAG_DURATION, &opt.consistency_delay_ms, "30m",
     "Minimum age of fresh (non-compacted) blocks before they are being processed.", NULL},
    {"retention.resolution-raw", ORR_FLAG_DURATION, &opt.retention_raw_ms, "0d",
     "How long to retain raw samples in the bucket. 0d: forever.", NULL},
    {"retention.resolution-5m", ORR_FLAG_DURATION, &opt.retention_5m_ms, "0d",
     "How long to retain samples of resolution 1 (5 minutes) in the bucket. 0d: forever.", NULL},
    {"retention.resolution-1h", ORR_FLAG_DURATION, &opt.retention_1h_ms, "0d",
     "How long to retain samples of resolution 2 (1 hour) in the bucket. 0d: forever.", NULL},
    {"wait", ORR_FLAG_BOOL, &opt.wait, "false",
     "Do not exit after all compactions have been processed and wait for new work.", NULL},
    {"wait-interval", ORR_FLAG_DURATION, &opt.wait_interval_ms, "5m",
     "Wait interval between consecutive compaction runs and bucket refreshes (with --wait).", NULL},
    {"downsampling.disable", ORR_FLAG_BOOL, &opt.downsampling_disable, "false",
     "Disables downsampling. Not recommended: querying long time ranges without non-downsampled "
     "data is not efficient.", NULL},
    {"delete-delay", ORR_FLAG_DURATION, &opt.delete_delay_ms, "48h",
     "Time before a block marked for deletion is deleted from the bucket.", NULL},
    {"compact.concurrency", ORR_FLAG_INT, &opt.compact_concurrency, "1",
     "Number of goroutines to use when compacting groups.", NULL},
    {"downsample.concurrency", ORR_FLAG_INT, &opt.downsample_concurrency, "1",
     "Number of goroutines to use when downsampling blocks.", NULL},
    {"deduplication.replica-label", ORR_FLAG_STRINGS, &opt.replica_labels, NULL,
     "Label to treat as a replica indicator of blocks that can be deduplicated (vertical "
     "compaction). Repeatable.", "<label>"},
    {"deduplication.func", ORR_FLAG_STRING, &opt.dedup_func, "",
     "Deduplication algorithm for merging overlapping blocks: \"\" (one-to-one merge) or "
     "\"penalty\".", "<func>"},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static int run(int argc, char **argv) { return cli_not_implemented(argv[0]); }

const cli_command cli_cmd_compact = {
    "compact",
    "Compactor: compaction, downsampling, retention and deletion of blocks in the bucket.",
    NULL,
    CLI_LOG | CLI_HTTP,
    flags,
    run,
    NULL,
};
