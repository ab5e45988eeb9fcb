/* cmd.c: `orrery store` — the store gateway: serves every block in
 * the bucket over StoreAPI with ranged reads and bounded caches.
 * Its flags (Thanos store's names and defaults). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static struct {
  const char *data_dir;
  const char *objstore_file;
  const char *objstore;
  int64_t index_cache_size;
  int64_t chunk_pool_size;
  int64_t series_sample_limit;
  int64_t request_series, request_samples, downloaded_bytes;
  const char *index_cache_config, *index_cache_config_file;
  int64_t series_max_concurrency;
  int64_t meta_fetch_concurrency;
  int64_t sync_block_duration_ms;
  int64_t block_sync_concurrency;
  const char *min_time;
  const char *max_time;
  const char *relabel_file;
  const char *relabel;
  int64_t consistency_delay_ms;
  int64_t ignore_deletion_marks_delay_ms;
  int64_t posting_offsets_sampling;
  int lazy_reader;
  int64_t lazy_idle_timeout_ms;
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
    {"store.limits.request-series", ORR_FLAG_INT, &opt.request_series, "0",
     "The maximum series allowed for a single Series request. The Series call fails if this "
     "limit is exceeded. 0 means no limit.", NULL},
    {"store.limits.request-samples", ORR_FLAG_INT, &opt.request_samples, "0",
     "The maximum samples allowed for a single Series request (estimated as 120 per chunk). "
     "0 means no limit.", NULL},
    {"store.grpc.downloaded-bytes-limit", ORR_FLAG_BYTES, &opt.downloaded_bytes, "0",
     "Maximum amount of downloaded (either fetched or touched) bytes in a single Series/"
     "LabelNames/LabelValues call. 0 means no limit.", NULL},
    {"index-cache.config-file", ORR_FLAG_STRING, &opt.index_cache_config_file, NULL,
     "Path to a YAML file with the index cache configuration (type: IN-MEMORY|MEMCACHED).",
     "<file-path>"},
    {"index-cache.config", ORR_FLAG_STRING, &opt.index_cache_config, NULL,
     "Alternative to --index-cache.config-file: the YAML content itself.", "<content>"},
    {"block-meta-fetch-concurrency", ORR_FLAG_INT, &opt.meta_fetch_concurrency, "32",
     "Number of goroutines to use when fetching block metadata from object storage.", NULL},
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
    {"store.index-header-posting-offsets-in-mem-sampling", ORR_FLAG_INT,
     &opt.posting_offsets_sampling, "32",
     "Controls what is the ratio of postings offsets that the store will hold in memory. Larger "
     "value will keep less offsets, which will increase CPU cycles needed for query touching "
     "those postings. It's meant for setups that want low baseline memory pressure and where "
     "less traffic is expected. On the contrary, smaller value will increase baseline memory "
     "usage, but improve latency slightly. 1 will keep all in memory.", NULL},
    {"store.enable-index-header-lazy-reader", ORR_FLAG_BOOL, &opt.lazy_reader, "false",
     "If true, Store Gateway will lazy memory map index-header only once the block is required "
     "by a query.", NULL},
    {"store.index-header-lazy-reader-idle-timeout", ORR_FLAG_DURATION, &opt.lazy_idle_timeout_ms,
     "5m", "If index-header lazy reader is enabled and this idle timeout setting is > 0, memory "
     "map-ed index-headers will be automatically released after 'idle timeout' inactivity.",
     NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* --min-time/--max-time: Thanos's defaults (year 0, year 9999) stand for
 * no limit; else RFC3339 or a duration relative to now (-2w). */
static int parse_time_flag(const char *s, int64_t *out) {
  if (strcmp(s, "0000-01-01T00:00:00Z") == 0) {
    *out = INT64_MIN;
    return 0;
  }
  if (strcmp(s, "9999-12-31T23:59:59Z") == 0) {
    *out = INT64_MAX;
    return 0;
  }
  return orr_parse_time_flag(s, out);
}

/* The value after |key| in |text| (first list item for a list), unquoted,
 * into |out|; 0 when found. */
static int yaml_scalar(const char *text, const char *key, char *out, size_t cap) {
  const char *m = strstr(text, key);
  if (!m) return -1;
  m += strlen(key);
  while (*m == ' ' || *m == '\t' || *m == '[' || *m == '\n' || *m == '-' || *m == '"' || *m == '\'')
    m++;
  size_t k = 0;
  while (m[k] && !strchr(",]\"'\n \t", m[k]) && k + 1 < cap) {
    out[k] = m[k];
    k++;
  }
  out[k] = 0;
  return k ? 0 : -1;
}

static char memcached_addr[128];

/* The index cache YAML (Thanos's): type IN-MEMORY with config.max_size, or
 * MEMCACHED with config.addresses (the first is used) and config.timeout.
 * A small reader of those keys, enough for Thanos's documented shape. */
static int parse_cache_config(const char *text, int64_t *size, store_config *cfg) {
  if (strstr(text, "MEMCACHED") || strstr(text, "memcached")) {
    char t[64];
    if (yaml_scalar(text, "addresses:", memcached_addr, sizeof memcached_addr)) {
      orr_log_error("--index-cache.config: MEMCACHED needs config.addresses", NULL);
      return -1;
    }
    cfg->memcached_address = memcached_addr;
    cfg->memcached_timeout_ms = 500;
    if (yaml_scalar(text, "timeout:", t, sizeof t) == 0 &&
        orr_parse_duration(t, strlen(t), &cfg->memcached_timeout_ms)) {
      orr_log_error("--index-cache.config: bad timeout", "value", t, NULL);
      return -1;
    }
    return 0;
  }
  const char *t = strstr(text, "type:");
  if (!t) {
    orr_log_error("--index-cache.config: no type", NULL);
    return -1;
  }
  t += 5;
  while (*t == ' ' || *t == '"' || *t == '\'') t++;
  if (strncmp(t, "IN-MEMORY", 9) == 0 || strncmp(t, "in-memory", 9) == 0) {
    const char *m = strstr(text, "max_size:");
    if (m) {
      m += 9;
      while (*m == ' ' || *m == '"' || *m == '\'') m++;
      char v[64];
      size_t k = 0;
      while (m[k] && m[k] != '\n' && m[k] != '"' && m[k] != '\'' && k + 1 < sizeof v) {
        v[k] = m[k];
        k++;
      }
      v[k] = 0;
      if (orr_parse_bytes(v, size)) {
        orr_log_error("--index-cache.config: bad max_size", "value", v, NULL);
        return -1;
      }
    }
    return 0;
  }
  orr_log_error("--index-cache.config: unsupported type (IN-MEMORY or MEMCACHED)", NULL);
  return -1;
}

/* Reads and parses --selector.relabel-config(-file) into |*out| (NULL when
 * neither is given; caller frees with labels_relabel_free). Returns 0 or -1
 * after logging why. */
static int load_relabel(labels_relabel **out) {
  bool has_file = opt.relabel_file && opt.relabel_file[0], has_text = opt.relabel && opt.relabel[0];
  *out = NULL;
  if (!has_file && !has_text) return 0;
  if (has_file && has_text) {
    orr_log_error("give only one of --selector.relabel-config-file and --selector.relabel-config",
                  NULL);
    return -1;
  }
  orr_buf b = {0};
  if (has_file) {
    FILE *f = fopen(opt.relabel_file, "rb");
    if (!f) {
      orr_log_error("cannot read --selector.relabel-config-file", "file", opt.relabel_file, "err",
                    strerror(errno), NULL);
      return -1;
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) orr_buf_append(&b, chunk, n);
    fclose(f);
  } else {
    orr_buf_puts(&b, opt.relabel);
  }
  char err[512] = "";
  int rc = b.oom ? ORR_ENOMEM : labels_relabel_parse(b.data ? b.data : "", b.len, out, err, sizeof err);
  orr_buf_free(&b);
  if (rc) {
    orr_log_error("bad --selector.relabel-config", "err", err[0] ? err : orr_strerror(rc), NULL);
    return -1;
  }
  return 0;
}

static int run(int argc, char **argv) {
  const cli_common *c = cli_common_options();
  store_config cfg = {0};
  if (parse_time_flag(opt.min_time, &cfg.min_time) || parse_time_flag(opt.max_time, &cfg.max_time)) {
    orr_log_error("bad --min-time/--max-time: want RFC3339 or a duration relative to now (-2w)",
                  NULL);
    return 1;
  }
  if (!(opt.objstore_file && opt.objstore_file[0]) && !(opt.objstore && opt.objstore[0])) {
    orr_log_error("no bucket: give --objstore.config-file or --objstore.config", NULL);
    return 1;
  }
  cfg.index_cache_size = opt.index_cache_size;
  const char *cc = opt.index_cache_config;
  char *file_text = NULL;
  if (opt.index_cache_config_file && opt.index_cache_config_file[0]) {
    FILE *f = fopen(opt.index_cache_config_file, "rb");
    if (!f) {
      orr_log_error("cannot read --index-cache.config-file", "file", opt.index_cache_config_file,
                    NULL);
      return 1;
    }
    file_text = calloc(1, 65536);
    if (file_text) fread(file_text, 1, 65535, f);
    fclose(f);
    cc = file_text;
  }
  if (cc && cc[0] && parse_cache_config(cc, &cfg.index_cache_size, &cfg)) {
    free(file_text);
    return 1;
  }
  free(file_text);
  if (opt.posting_offsets_sampling < 1 || opt.posting_offsets_sampling > UINT32_MAX) {
    orr_log_error("--store.index-header-posting-offsets-in-mem-sampling must be at least 1",
                  "value", ORR_LOG_INT(opt.posting_offsets_sampling), NULL);
    return 1;
  }
  if (opt.lazy_idle_timeout_ms < 0) {
    orr_log_error("--store.index-header-lazy-reader-idle-timeout must not be negative", NULL);
    return 1;
  }
  cfg.posting_offsets_sampling = (uint32_t)opt.posting_offsets_sampling;
  cfg.lazy_reader = opt.lazy_reader != 0;
  cfg.lazy_idle_timeout_ms = opt.lazy_idle_timeout_ms;
  cfg.data_dir = opt.data_dir;
  cfg.objstore_file = opt.objstore_file;
  cfg.objstore = opt.objstore;
  cfg.chunk_pool_size = opt.chunk_pool_size;
  cfg.request_series_limit = opt.request_series;
  cfg.request_samples_limit = opt.request_samples > 0 ? opt.request_samples : opt.series_sample_limit;
  cfg.downloaded_bytes_limit = opt.downloaded_bytes;
  cfg.series_max_concurrency = opt.series_max_concurrency;
  cfg.sync_interval_ms = opt.sync_block_duration_ms;
  cfg.block_sync_concurrency = opt.block_sync_concurrency;
  cfg.meta_fetch_concurrency = opt.meta_fetch_concurrency;
  cfg.consistency_delay_ms = opt.consistency_delay_ms;
  cfg.ignore_deletion_marks_delay_ms = opt.ignore_deletion_marks_delay_ms;
  cfg.http_address = c->http_address;
  cfg.http_grace_ms = c->http_grace_period_ms;
  cfg.grpc_address = c->grpc_address;
  cfg.grpc_grace_ms = c->grpc_grace_period_ms;
  cfg.grpc_tls_cert = c->grpc_tls_cert;
  cfg.grpc_tls_key = c->grpc_tls_key;
  cfg.grpc_tls_client_ca = c->grpc_tls_client_ca;
  cfg.grpc_tls_min_version = c->grpc_tls_min_version;
  labels_relabel *relabel = NULL;
  if (load_relabel(&relabel)) return 1;
  cfg.relabel = relabel;
  int status = store_main(&cfg);
  labels_relabel_free(relabel);
  return status;
}

const cli_command cli_cmd_store = {
    "store",
    "Store gateway: StoreAPI over every block in the bucket.",
    NULL,
    CLI_LOG | CLI_HTTP | CLI_GRPC,
    flags,
    run,
    NULL,
};
