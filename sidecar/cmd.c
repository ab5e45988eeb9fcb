/* cmd.c: `orrery sidecar` — beside one Prometheus: serves its data
 * over StoreAPI through remote read and uploads its finished blocks.
 * Its flags (Thanos sidecar's names and defaults). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "objstore.h"
#include "sidecar.h"

static struct {
  const char *prometheus_url;
  const char *http_client_file, *http_client;
  int64_t ready_timeout_ms;
  const char *tsdb_path;
  int read_blocks;
  const char *objstore_file;
  const char *objstore;
  int upload_compacted;
  const char *min_time;
} opt;

static const orr_flag flags[] = {
    {"prometheus.url", ORR_FLAG_STRING, &opt.prometheus_url, "http://localhost:9090",
     "URL at which to reach Prometheus's API.", NULL},
    {"prometheus.http-client-file", ORR_FLAG_STRING, &opt.http_client_file, NULL,
     "Path to a YAML file with the HTTP client settings for Prometheus: basic_auth, "
     "authorization, tls_config (Prometheus's shapes; bearer_token(_file) as Thanos).",
     "<file-path>"},
    {"prometheus.http-client", ORR_FLAG_SECRET, &opt.http_client, NULL,
     "Alternative to --prometheus.http-client-file: the YAML content itself.", "<content>"},
    {"prometheus.ready_timeout", ORR_FLAG_DURATION, &opt.ready_timeout_ms, "10m",
     "Maximum time to wait for the Prometheus instance to start up.", NULL},
    {"tsdb.path", ORR_FLAG_STRING, &opt.tsdb_path, NULL, "Data directory of TSDB (default ./data).",
     NULL},
    {"tsdb.read-blocks", ORR_FLAG_BOOL, &opt.read_blocks, "true",
     "With --tsdb.path: read Prometheus's persisted blocks there directly and ask only its "
     "head through remote read (falls back to remote read for everything when Prometheus accepts "
     "out-of-order samples, or blocks overlap or have tombstones).", NULL},
    CLI_OBJSTORE_FLAGS(&opt.objstore_file, &opt.objstore),
    {"shipper.upload-compacted", ORR_FLAG_BOOL, &opt.upload_compacted, "false",
     "Also upload blocks compacted by Prometheus (level > 1); once, for migrations.", NULL},
    {"min-time", ORR_FLAG_STRING, &opt.min_time, "0000-01-01T00:00:00Z",
     "Start of time range limit to serve: RFC3339 or a duration relative to now (-1d).", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* A bad bucket configuration, an unreachable endpoint, a missing bucket or
 * refused credentials stop the sidecar at once with one error line, before
 * it waits for Prometheus (Thanos fails the same way at start). The checked
 * bucket is the one the shipper uploads to: the config is parsed once.
 * Returns 0 with |*out| NULL when uploads are off. */
static int open_bucket(objstore_bucket **out) {
  const char *file = opt.objstore_file && opt.objstore_file[0] ? opt.objstore_file : NULL;
  const char *text = opt.objstore && opt.objstore[0] ? opt.objstore : NULL;
  *out = NULL;
  if (!file && !text) return 0;
  char err[512] = "";
  int rc = objstore_open_checked(file, text, out, err, sizeof(err));
  if (rc) orr_log_error("cannot use the bucket", "err", err, NULL);
  return rc;
}

static int run(int argc, char **argv) {
  const cli_common *c = cli_common_options();
  objstore_bucket *bucket;
  net_http_client_config hc;
  bool has_hc;
  if (net_http_client_config_load("--prometheus.http-client(-file)", opt.http_client_file,
                                  opt.http_client, &hc, &has_hc) != 0)
    return 1;
  if (open_bucket(&bucket) != 0) {
    if (has_hc) net_http_client_config_free(&hc);
    return 1;
  }
  sidecar_config cfg = {0};
  cfg.prometheus_url = opt.prometheus_url;
  cfg.prometheus_client = has_hc ? &hc : NULL;
  cfg.ready_timeout_ms = opt.ready_timeout_ms;
  cfg.tsdb_path = opt.tsdb_path ? opt.tsdb_path : "./data";
  /* Without --tsdb.path the sidecar does as before: remote read only
   * (./data, the default, may be anything). */
  cfg.read_blocks = opt.read_blocks != 0 && opt.tsdb_path != NULL;
  cfg.bucket = bucket;
  cfg.upload_compacted = opt.upload_compacted != 0;
  cfg.min_time = opt.min_time;
  cfg.http_address = c->http_address;
  cfg.http_grace_ms = c->http_grace_period_ms;
  cfg.grpc_address = c->grpc_address;
  cfg.grpc_grace_ms = c->grpc_grace_period_ms;
  cfg.grpc_write_timeout_ms = c->grpc_write_timeout_ms;
  cfg.grpc_tls_cert = c->grpc_tls_cert;
  cfg.grpc_tls_key = c->grpc_tls_key;
  cfg.grpc_tls_client_ca = c->grpc_tls_client_ca;
  cfg.grpc_tls_min_version = c->grpc_tls_min_version;
  int status = sidecar_main(&cfg);
  objstore_close(bucket); /* the shipper was joined in sidecar_main */
  if (has_hc) net_http_client_config_free(&hc);
  return status;
}

const cli_command cli_cmd_sidecar = {
    "sidecar",
    "Sidecar for a Prometheus server: StoreAPI over its data, and block upload to the bucket.",
    NULL,
    CLI_LOG | CLI_HTTP | CLI_GRPC,
    flags,
    run,
    NULL,
};
