/* cmd.c: `orrery store` — the store gateway: serves every block in
 * the bucket over StoreAPI with ranged reads and bounded caches.
 * Its flags (Thanos store's names and defaults). */
#include "store.h"

static struct {
  const char *data_dir;
  const char *objstore_file;
  const char *objstore;
  int64_t index_cache_size;
  int64_t chunk_pool_size;
  int64_t series_sample_limit;
  int64_t series_max_concurrency;
  int64_t sync_block_duration_ms;
  int64_t block_sync_concurrency;
  const char *min_time;
  const char *max_time;
  const char *relabel_file;
  const char *relabel;
  int64_t consistency_delay_ms;
  int64_t ignore_deletion_marks_delay_ms;
} opt;

static const orr_flag flags[] = {
    {"data-dir", ORR_FLAG_STRING, &opt.data_dir, "./data",
     "Local data directory for caching purposes (index-header, in-mem cache items).", NULL},
    CLI_OBJSTORE_FLAGS(&opt.objstore_file, &opt.objstore),
    {"index-cache-size", ORR_FLAG_BYTES, &opt.index_cache_size, "250MB",
     "Maximum size of items held in the in-memory index cache.", NULL},
    {"chunk-pool-size", ORR_FLAG_BYTES, &opt.chunk_pool_size, "2GB",
     "Maximum size of concurrently allocatable bytes reserved strictly to reuse for chunks in "
     "memory.", NULL},
    {"store.grpc.series-sample-limit", ORR_FLAG_INT, &opt.series_sample_limit, "0",
     "Maximum amount of samples returned via a single Series call. 0 means no limit.", NULL},
    {"store.grpc.series-max-concurrency", ORR_FLAG_INT, &opt.series_max_concurrency, "20",
     "Maximum number of concurrent Series calls.", NULL},
    {"sync-block-duration", ORR_FLAG_DURATION, &opt.sync_block_duration_ms, "3m",
     "Repeat interval for syncing the blocks between local and remote view.", NULL},
    {"block-sync-concurrency", ORR_FLAG_INT, &opt.block_sync_concurrency, "20",
     "Number of goroutines to use when constructing index-cache.json blocks from object storage.",
     NULL},
    {"min-time", ORR_FLAG_STRING, &opt.min_time, "0000-01-01T00:00:00Z",
     "Start of time range limit to serve: RFC3339 or a duration relative to now (-1d).", NULL},
    {"max-time", ORR_FLAG_STRING, &opt.max_time, "9999-12-31T23:59:59Z",
     "End of time range limit to serve: RFC3339 or a duration relative to now (-1d).", NULL},
    {"selector.relabel-config-file", ORR_FLAG_STRING, &opt.relabel_file, NULL,
     "Path to a YAML file with relabeling configuration that selects blocks by their external "
     "labels (label sharding).", "<file-path>"},
    {"selector.relabel-config", ORR_FLAG_STRING, &opt.relabel, NULL,
     "Alternative to --selector.relabel-config-file: the YAML content itself.", "<content>"},
    {"consistency-delay", ORR_FLAG_DURATION, &opt.consistency_delay_ms, "0s",
     "Minimum age of all blocks before they are being read.", NULL},
    {"ignore-deletion-marks-delay", ORR_FLAG_DURATION, &opt.ignore_deletion_marks_delay_ms, "24h",
     "Duration after which blocks marked for deletion are filtered out while fetching blocks.",
     NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static int run(int argc, char **argv) { return cli_not_implemented(argv[0]); }

const cli_command cli_cmd_store = {
    "store",
    "Store gateway: StoreAPI over every block in the bucket.",
    NULL,
    CLI_LOG | CLI_HTTP | CLI_GRPC,
    flags,
    run,
    NULL,
};
