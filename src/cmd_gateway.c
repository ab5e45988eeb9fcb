/* cmd_gateway.c: `orrery gateway` — the Prometheus HTTP API and /federate
 * over every StoreAPI endpoint: fan-out, merge, HA deduplication, PromQL.
 * Its flags (Thanos query's names and defaults where one exists). */
#include "cli.h"

static struct {
  orr_strings endpoints;
  orr_strings sd_files;
  int64_t sd_interval_ms;
  int64_t sd_dns_interval_ms;
  orr_strings replica_labels;
  int64_t timeout_ms;
  int64_t max_concurrent;
  int64_t max_samples;
  int64_t lookback_delta_ms;
  int partial_response;
  int auto_downsampling;
  int64_t store_response_timeout_ms;
} opt;

static const orr_flag flags[] = {
    {"endpoint", ORR_FLAG_STRINGS, &opt.endpoints, NULL,
     "Address of a StoreAPI server (sidecar, store, another gateway), host:port; "
     "dns+host:port and dnssrv+name resolve through DNS. Repeatable.", "<endpoint>"},
    {"store.sd-files", ORR_FLAG_STRINGS, &opt.sd_files, NULL,
     "Path to a file SD file (JSON/YAML, Prometheus file_sd format) listing endpoints. Repeatable.",
     "<path>"},
    {"store.sd-interval", ORR_FLAG_DURATION, &opt.sd_interval_ms, "5m",
     "Refresh interval to re-read file SD files (they are also watched).", NULL},
    {"store.sd-dns-interval", ORR_FLAG_DURATION, &opt.sd_dns_interval_ms, "30s",
     "Interval between DNS resolutions of endpoints.", NULL},
    {"query.replica-label", ORR_FLAG_STRINGS, &opt.replica_labels, NULL,
     "Label to treat as a replica indicator along which data is deduplicated. Repeatable.",
     "<label>"},
    {"query.timeout", ORR_FLAG_DURATION, &opt.timeout_ms, "2m",
     "Maximum time to process a query by the gateway.", NULL},
    {"query.max-concurrent", ORR_FLAG_INT, &opt.max_concurrent, "20",
     "Maximum number of queries processed concurrently.", NULL},
    {"query.max-samples", ORR_FLAG_INT, &opt.max_samples, "50000000",
     "Maximum number of samples a single query can load into memory.", NULL},
    {"query.lookback-delta", ORR_FLAG_DURATION, &opt.lookback_delta_ms, "5m",
     "The maximum lookback duration for retrieving metrics during expression evaluations.", NULL},
    {"query.partial-response", ORR_FLAG_BOOL, &opt.partial_response, "true",
     "Enable partial response for queries if no partial_response param is specified.", NULL},
    {"query.auto-downsampling", ORR_FLAG_BOOL, &opt.auto_downsampling, "false",
     "Enable automatic adjustment (step / 5) to what source of data should be used in store "
     "gateways if no max_source_resolution param is specified.", NULL},
    {"store.response-timeout", ORR_FLAG_DURATION, &opt.store_response_timeout_ms, "0ms",
     "If an endpoint sends no data for this long it is ignored (partial response) or the query "
     "fails. 0 disables the timeout.", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* The lead wires this to the shared daemon (src/daemon.c). */
static int run(int argc, char **argv) { return cli_not_implemented(argv[0]); }

const cli_command cli_cmd_gateway = {
    "gateway",
    "Query gateway: the Prometheus HTTP API over every StoreAPI endpoint, with HA deduplication.",
    NULL,
    CLI_LOG | CLI_HTTP | CLI_GRPC,
    flags,
    run,
    NULL,
};
