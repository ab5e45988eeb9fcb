/* cmd.c: `orrery gateway` — the Prometheus HTTP API and /federate
 * over every StoreAPI endpoint: fan-out, merge, HA deduplication, PromQL.
 * Its flags (Thanos query's names and defaults where one exists). */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon.h"
#include "gateway.h"
#include "web.h"

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
  int64_t replica_timeout_ms;
  int64_t max_series;
  orr_strings prometheus, federate; /* --endpoint.<kind>: in-process sources */
  int64_t federate_interval_ms, federate_retention_ms, federate_max_series;
  /* gRPC client TLS (Thanos query's --grpc-client-*) */
  int tls_secure, tls_skip_verify;
  const char *tls_cert, *tls_key, *tls_ca, *tls_server_name;
  const char *endpoint_config_file, *endpoint_config;
  orr_strings promql;
  int64_t promql_timeout_ms;
  const char *route_prefix, *external_prefix; /* --web.* */
  const char *http_client_file, *http_client; /* --endpoint.http-client(-file) */
  const char *query_mode; /* --query.mode */
} opt;

static const orr_flag flags[] = {
    {"endpoint", ORR_FLAG_STRINGS, &opt.endpoints, NULL,
     "Address of a StoreAPI server (sidecar, store, another gateway), host:port; "
     "dns+host:port and dnssrv+name resolve through DNS. Repeatable.", "<endpoint>"},
    {"endpoint.prometheus", ORR_FLAG_STRINGS, &opt.prometheus, NULL,
     "A plain Prometheus read through remote read (/api/v1/read, chunks passed through) with "
     "no sidecar beside it: URL[;name=value,...]. The external labels are the server's "
     "(/api/v1/status/config, asked again every 30s) unless given after the ';' "
     "(\"http://prom-eu:9090;region=eu,replica=a\"); its time range starts at "
     "prometheus_tsdb_lowest_timestamp. In --store.sd-files, write the target as "
     "prometheus+URL[;labels]. Repeatable.", "<url>"},
    {"endpoint.promql", ORR_FLAG_STRINGS, &opt.promql, NULL,
     "A source that offers only the Prometheus HTTP query API (a managed Prometheus-compatible "
     "service): URL[;name=value,...], the labels after ';' its external labels "
     "(\"https://prom.example.com;region=ap\"). Raw samples are read with an instant query "
     "of a range selector. In --store.sd-files, write the target as promql+URL[;labels]. "
     "Repeatable.", "<url>"},
    {"endpoint.promql-timeout", ORR_FLAG_DURATION, &opt.promql_timeout_ms, "2m",
     "Longest wait for one answer of an --endpoint.promql source; past it the source's part "
     "fails with an error naming it (a warning with partial response).", NULL},
    {"endpoint.federate", ORR_FLAG_STRINGS, &opt.federate, NULL,
     "A /federate endpoint scraped every --federate.interval into a bounded in-memory head "
     "(honor_labels: labels as exposed): the URL with its match[] selectors, "
     "URL[;name=value,...] (\"http://h:9090/federate?match[]=up;region=us\"); the labels "
     "after ';' are the source's external labels. In --store.sd-files, write the target as "
     "federate+URL[;labels]. Repeatable.", "<url>"},
    {"endpoint.http-client-file", ORR_FLAG_STRING, &opt.http_client_file, NULL,
     "Path to a YAML file with Prometheus's HTTP client settings (basic_auth, authorization, "
     "tls_config, as in a scrape config) used for every request of every --endpoint.prometheus, "
     "--endpoint.federate and --endpoint.promql source (and their file SD forms). The same shape "
     "as the sidecar's --prometheus.http-client-file.", "<file>"},
    {"endpoint.http-client", ORR_FLAG_SECRET, &opt.http_client, NULL,
     "Alternative to --endpoint.http-client-file: the YAML content itself.", "<content>"},
    {"federate.interval", ORR_FLAG_DURATION, &opt.federate_interval_ms, "15s",
     "How often each --endpoint.federate source is scraped.", NULL},
    {"federate.retention", ORR_FLAG_DURATION, &opt.federate_retention_ms, "2h",
     "How long samples scraped from --endpoint.federate sources are kept in memory.", NULL},
    {"federate.max-series", ORR_FLAG_INT, &opt.federate_max_series, "100000",
     "Series one --endpoint.federate source may hold in memory; the scrape that would go past "
     "it keeps what it has, logs an error and queries over the source get a warning. "
     "0 disables.", NULL},
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
    {"query.max-series", ORR_FLAG_INT, &opt.max_series, "500000",
     "Maximum number of series one selector of a query may receive from its endpoints "
     "(counted before deduplication). The endpoint whose series goes past it fails its part: "
     "a warning naming it with partial response, an error without. 500000 is beyond what a "
     "dashboard can draw or a person read (VictoriaMetrics' default limit of unique series "
     "per query is 300000) and keeps a runaway endpoint's series bookkeeping near 100 MB. "
     "0 disables.", NULL},
    {"query.lookback-delta", ORR_FLAG_DURATION, &opt.lookback_delta_ms, "5m",
     "The maximum lookback duration for retrieving metrics during expression evaluations.", NULL},
    {"query.mode", ORR_FLAG_STRING, &opt.query_mode, "local",
     "PromQL query mode (Thanos's flag). local: raw series are read from every endpoint. "
     "distributed: endpoints whose Info advertises the Query API (other gateways, Thanos "
     "queriers) are asked to evaluate the aggregations they can answer alone over gRPC "
     "thanos.Query, so only aggregated series cross between regions; the answer is the "
     "same (see docs/stacking.md for which expressions are pushed down).", "local|distributed"},
    {"query.partial-response", ORR_FLAG_BOOL, &opt.partial_response, "true",
     "Enable partial response for queries if no partial_response param is specified.", NULL},
    {"query.auto-downsampling", ORR_FLAG_BOOL, &opt.auto_downsampling, "false",
     "Enable automatic adjustment (step / 5) to what source of data should be used in store "
     "gateways if no max_source_resolution param is specified.", NULL},
    {"store.response-timeout", ORR_FLAG_DURATION, &opt.store_response_timeout_ms, "0ms",
     "If an endpoint sends no data for this long it is ignored (partial response) or the query "
     "fails. 0 disables the timeout.", NULL},
    {"store.replica-timeout", ORR_FLAG_DURATION, &opt.replica_timeout_ms, "2s",
     "Replica groups are endpoints whose external labels are equal without the "
     "--query.replica-label labels. Once one member has sent its whole answer to a "
     "deduplicated query, a sibling still streaming gets this long (or as long as that member "
     "took, if longer) before it is dropped: a warning naming it with partial response, an "
     "error naming it without. So a hung replica costs seconds, not --query.timeout. "
     "0 disables.", NULL},
    {"grpc-client-tls-secure", ORR_FLAG_BOOL, &opt.tls_secure, "false",
     "Use TLS when talking to the gRPC server", NULL},
    {"grpc-client-tls-skip-verify", ORR_FLAG_BOOL, &opt.tls_skip_verify, "false",
     "Disable TLS certificate verification i.e self signed, signed by fake CA", NULL},
    {"grpc-client-tls-cert", ORR_FLAG_STRING, &opt.tls_cert, "",
     "TLS Certificates to use to identify this client to the server", NULL},
    {"grpc-client-tls-key", ORR_FLAG_STRING, &opt.tls_key, "",
     "TLS Key for the client's certificate", NULL},
    {"grpc-client-tls-ca", ORR_FLAG_STRING, &opt.tls_ca, "",
     "TLS CA Certificates to use to verify gRPC servers", NULL},
    {"grpc-client-server-name", ORR_FLAG_STRING, &opt.tls_server_name, "",
     "Server name to verify the hostname on the returned gRPC certificates. See "
     "https://tools.ietf.org/html/rfc4366#section-3.1", NULL},
    {"web.route-prefix", ORR_FLAG_STRING, &opt.route_prefix, "",
     "Path under which the API and the web UI are served (\"/orrery\": /orrery/graph, "
     "/orrery/api/v1/query); the root when empty.", "<path>"},
    {"web.external-prefix", ORR_FLAG_STRING, &opt.external_prefix, "",
     "Path prefix a reverse proxy in front adds (and strips): redirects of the web UI go "
     "there. Defaults to --web.route-prefix.", "<path>"},
    {"endpoint.sd-config-file", ORR_FLAG_STRING, &opt.endpoint_config_file, "",
     "Path to Config File with endpoint definitions: endpoints: [{address: host:port, "
     "tls_config: {ca_file, cert_file, key_file, server_name, insecure_skip_verify}}]. An "
     "entry without tls_config is reached in plaintext.", "<file-path>"},
    {"endpoint.sd-config", ORR_FLAG_STRING, &opt.endpoint_config, "",
     "Alternative to 'endpoint.sd-config-file' flag (mutually exclusive). Content of Config "
     "File with endpoint definitions", "<content>"},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* gRPC client TLS: the default context from --grpc-client-tls-* and the
 * per-endpoint ones from --endpoint.sd-config, held for the process life
 * (each endpoint's client takes its own reference). */
static struct {
  net_tls_ctx *def;
  gw_endpoint_tls *per;
  size_t nper;
  const char **addrs; /* --endpoint values, then the config file's */
  size_t naddrs;
  orr_arena *a;
} ctls;

static int client_tls_ctx(uv_loop_t *loop, const net_tls_client_opts *o, const char *what,
                          net_tls_ctx **out) {
  char err[256] = "";
  if (net_tls_ctx_new_client(o, loop, out, err, sizeof(err)) != 0) {
    orr_log_error("cannot set up gRPC client TLS", "for", what, "err", err, NULL);
    return 1;
  }
  return 0;
}

/* Reads --grpc-client-tls-* and --endpoint.sd-config(-file). Returns 0, or
 * 1 after logging. */
static int client_tls_setup(uv_loop_t *loop) {
  ctls.a = orr_arena_new(0);
  if (!ctls.a) return 1;
  if (opt.tls_secure) {
    net_tls_client_opts o = {.ca_file = opt.tls_ca,
                             .cert_file = opt.tls_cert,
                             .key_file = opt.tls_key,
                             .server_name = opt.tls_server_name,
                             .insecure_skip_verify = opt.tls_skip_verify != 0};
    if (client_tls_ctx(loop, &o, "--grpc-client-tls-*", &ctls.def)) return 1;
  }
  const char *file = opt.endpoint_config_file && *opt.endpoint_config_file
                         ? opt.endpoint_config_file : NULL;
  const char *text = opt.endpoint_config && *opt.endpoint_config ? opt.endpoint_config : NULL;
  ctls.addrs = orr_arena_calloc(ctls.a, opt.endpoints.n + 1, sizeof(char *));
  if (!ctls.addrs) return 1;
  for (size_t i = 0; i < opt.endpoints.n; i++) ctls.addrs[ctls.naddrs++] = opt.endpoints.v[i];
  if (!file && !text) return 0;
  if (file && text) {
    orr_log_error("--endpoint.sd-config-file and --endpoint.sd-config are mutually exclusive",
                  NULL);
    return 1;
  }
  size_t len = text ? strlen(text) : 0;
  char *data = NULL;
  if (file) {
    orr_buf b = {0};
    FILE *f = fopen(file, "rb");
    if (!f) {
      orr_log_error("cannot read the endpoint config", "file", file, NULL);
      return 1;
    }
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) orr_buf_append(&b, chunk, got);
    fclose(f);
    if (b.oom) return 1;
    data = orr_buf_steal(&b, &len);
    text = data ? data : "";
  }
  gw_endpoint_cfg *ec;
  size_t n;
  char err[512] = "";
  int rc = gw_endpoint_config_parse(text, len, ctls.a, &ec, &n, err, sizeof(err));
  free(data);
  if (rc) {
    orr_log_error("cannot use the endpoint config", "err", err[0] ? err : orr_strerror(rc), NULL);
    return 1;
  }
  const char **addrs = orr_arena_calloc(ctls.a, ctls.naddrs + n + 1, sizeof(char *));
  ctls.per = orr_arena_calloc(ctls.a, n + 1, sizeof(*ctls.per));
  if (!addrs || !ctls.per) return 1;
  memcpy(addrs, ctls.addrs, ctls.naddrs * sizeof(char *));
  ctls.addrs = addrs;
  for (size_t i = 0; i < n; i++) {
    ctls.addrs[ctls.naddrs++] = ec[i].address;
    ctls.per[i].address = ec[i].address;
    if (ec[i].has_tls && client_tls_ctx(loop, &ec[i].tls, ec[i].address, &ctls.per[i].tls))
      return 1;
    ctls.nper++;
  }
  return 0;
}

static void client_tls_free(void) {
  net_tls_ctx_unref(ctls.def);
  for (size_t i = 0; i < ctls.nper; i++) net_tls_ctx_unref(ctls.per[i].tls);
  orr_arena_destroy(ctls.a);
  memset(&ctls, 0, sizeof(ctls));
}

/* The gateway core (gateway.h): endpoints and fan-out, and its own StoreAPI
 * on --grpc-address. Set up by core_start(), closed by core_shutdown(). */
static struct {
  gw *g;
  net_grpc_server *grpc;
  gw_storeapi *sapi;
  gw_queryapi *qapi;
  bool closing, closed; /* gw_close called; its callback ran */
} core;

static void core_closed(void *arg) {
  (void)arg;
  core.closed = true;
}

static void core_grpc_closed(void *arg) {
  (void)arg;
  gw_storeapi_free(core.sapi);
  core.sapi = NULL;
  gw_queryapi_free(core.qapi);
  core.qapi = NULL;
}

/* Shutdown hook: the gRPC server and the core close at once (the HTTP API
 * has drained); calls in flight end CANCELLED/UNAVAILABLE. */
static void core_shutdown(daemon_ctx *d, void *arg) {
  (void)d;
  (void)arg;
  if (core.grpc) net_grpc_server_close(core.grpc, 0, core_grpc_closed, NULL);
  core.grpc = NULL;
  if (core.g) {
    core.closing = true;
    gw_close(core.g, core_closed, NULL);
  }
  core.g = NULL;
  client_tls_free();
}

/* Creates and starts the core from the flags, listens for StoreAPI gRPC.
 * Returns 0, or 1 after logging why. */
/* SIGHUP: the file SD files are read again at once. */
static int core_reload(daemon_ctx *d, void *arg, char *err, size_t errlen) {
  (void)d;
  (void)arg;
  return gw_reload(core.g, err, errlen);
}

/* --endpoint plus every --endpoint.<kind>=SPEC as "<kind>+SPEC" (the form
 * gw_config and file SD take), in |a|. NULL on OOM. */
static const char **all_endpoints(orr_arena *a, const char *const *grpc, size_t ngrpc,
                                  size_t *n) {
  static const struct {
    const char *kind;
    const orr_strings *v;
  } kinds[] = {{"prometheus", &opt.prometheus},
               {"promql", &opt.promql},
               {"federate", &opt.federate}};
  size_t total = ngrpc;
  for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) total += kinds[k].v->n;
  const char **v = orr_arena_calloc(a, total + 1, sizeof(*v));
  if (!v) return NULL;
  size_t m = 0;
  for (size_t i = 0; i < ngrpc; i++) v[m++] = grpc[i];
  for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
    for (size_t i = 0; i < kinds[k].v->n; i++)
      if (!(v[m++] = orr_arena_sprintf(a, "%s+%s", kinds[k].kind, kinds[k].v->v[i]))) return NULL;
  *n = m;
  return v;
}

/* --endpoint.http-client(-file): parsed once at start (a bad one stops the
 * gateway with one line naming the key, never a secret); borrowed by the
 * core's sources until run() returns. */
static struct {
  net_http_client_config c;
  bool has;
} hc;


static void free_http_client(void) {
  if (hc.has) net_http_client_config_free(&hc.c);
  hc.has = false;
}

static void gateway_ready(void *arg) { daemon_set_ready(arg, true); }

static int core_start(daemon_ctx *d) {
  const cli_common *c = cli_common_options();
  gw_config gc = {0};
  gc.loop = daemon_loop(d);
  if (client_tls_setup(gc.loop)) {
    client_tls_free();
    return 1;
  }
  gc.federate_interval_ms = opt.federate_interval_ms;
  gc.federate_retention_ms = opt.federate_retention_ms;
  gc.federate_max_series = opt.federate_max_series;
  orr_arena *ea = orr_arena_new(0);
  gc.endpoints = ea ? all_endpoints(ea, ctls.addrs, ctls.naddrs, &gc.nendpoints) : NULL;
  if (!gc.endpoints) {
    orr_arena_destroy(ea);
    client_tls_free();
    orr_log_error("cannot start the gateway", "err", orr_strerror(ORR_ENOMEM), NULL);
    return 1;
  }
  gc.client_tls = ctls.def;
  gc.endpoint_tls = ctls.per;
  gc.nendpoint_tls = ctls.nper;
  gc.sd_files = opt.sd_files.v;
  gc.nsd_files = opt.sd_files.n;
  gc.sd_interval_ms = opt.sd_interval_ms;
  gc.dns_interval_ms = opt.sd_dns_interval_ms;
  gc.replica_labels = opt.replica_labels.v;
  gc.nreplica_labels = opt.replica_labels.n;
  gc.partial_response = opt.partial_response != 0;
  gc.store_response_timeout_ms = opt.store_response_timeout_ms;
  gc.query_timeout_ms = opt.timeout_ms;
  gc.replica_timeout_ms = opt.replica_timeout_ms;
  gc.max_series = opt.max_series;
  gc.registry = orr_registry_default();
  gc.promql_timeout_ms = opt.promql_timeout_ms;
  gc.http_client = hc.has ? &hc.c : NULL;
  if (strcmp(opt.query_mode, "local") && strcmp(opt.query_mode, "distributed")) {
    orr_log_error("bad --query.mode: want local or distributed", "value", opt.query_mode, NULL);
    orr_arena_destroy(ea);
    client_tls_free();
    return 1;
  }
  gc.query_mode_distributed = !strcmp(opt.query_mode, "distributed");
  char err[256] = "";
  int rc = gw_new(&gc, &core.g, err, sizeof(err));
  orr_arena_destroy(ea); /* gw_new copied them */
  if (rc) {
    orr_log_error("cannot start the gateway", "err", err[0] ? err : orr_strerror(rc), NULL);
    return 1;
  }
  const char *addr = c->grpc_address ? c->grpc_address : "0.0.0.0:10901";
  const char *colon = strrchr(addr, ':');
  char host[256];
  size_t hl = colon ? (size_t)(colon - addr) : 0;
  if (hl > 1 && addr[0] == '[' && addr[hl - 1] == ']')
    snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), addr + 1);
  else
    snprintf(host, sizeof(host), "%.*s", (int)hl, addr);
  if (!host[0]) snprintf(host, sizeof(host), "0.0.0.0");
  net_grpc_server_opts go = {0};
  go.registry = orr_registry_default();
  go.write_timeout_ms = c->grpc_write_timeout_ms > 0 ? c->grpc_write_timeout_ms : -1;
  if (daemon_grpc_server_tls(gc.loop, c->grpc_tls_cert, c->grpc_tls_key, c->grpc_tls_client_ca,
                             c->grpc_tls_min_version, &go.tls))
    return 1;
  int grc = net_grpc_server_new(gc.loop, &go, &core.grpc);
  net_tls_ctx_unref(go.tls); /* the server holds its own reference */
  gw_queryapi_config qc = {opt.timeout_ms, opt.max_samples, opt.lookback_delta_ms};
  if (!colon || grc ||
      gw_storeapi_register(core.g, core.grpc, orr_registry_default(), &core.sapi) ||
      gw_queryapi_register(core.g, core.grpc, &qc, &core.qapi) ||
      (rc = net_grpc_server_listen(core.grpc, host, atoi(colon + 1))) != 0 || gw_start(core.g) ||
      daemon_on_shutdown(d, core_shutdown, NULL) || daemon_on_reload(d, core_reload, NULL)) {
    orr_log_error("cannot listen for gRPC", "address", addr, "err", orr_strerror(rc), NULL);
    return 1;
  }
  orr_log_info("listening for StoreAPI gRPC", "address", addr, "port",
               ORR_LOG_INT(net_grpc_server_port(core.grpc)), NULL);
  return 0;
}

/* The gateway: the daemon endpoints, the core with its StoreAPI, and the
 * Prometheus HTTP API with /federate. */
static int run(int argc, char **argv) {
  (void)argc;
  (void)argv;
  const cli_common *c = cli_common_options();
  char route_prefix[WEB_PREFIX_MAX], external_prefix[WEB_PREFIX_MAX];
  if (web_prefix(opt.route_prefix, route_prefix, sizeof(route_prefix)) ||
      web_prefix(opt.external_prefix, external_prefix, sizeof(external_prefix))) {
    orr_log_error("bad --web.route-prefix or --web.external-prefix: a URL path of at most 254 "
                  "bytes without ?, #, * or :", "route_prefix", opt.route_prefix,
                  "external_prefix", opt.external_prefix, NULL);
    return 1;
  }
#ifdef __GLIBC__
  /* A query's buffers (its arena blocks, the decoded samples, the series
   * arrays) stay in the heap when freed, for the next query: glibc would
   * otherwise return the heap's top to the system at each free and map
   * every large buffer afresh, and each of those pages then costs the next
   * query a page fault (about 30% of the gateway's CPU on a 20k-series
   * selector). The heap goes back to the system once the gateway is quiet
   * (gw__trim_soon). */
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
#endif
  daemon_config cfg = {.component = "gateway",
                       .http_address = c->http_address,
                       .http_grace_period_ms = c->http_grace_period_ms};
  daemon_ctx *d = NULL;
  if (net_http_client_config_load("--endpoint.http-client(-file)", opt.http_client_file,
                                  opt.http_client, &hc.c, &hc.has))
    return 1;
  int rc = daemon_new(&cfg, &d);
  if (rc != 0) {
    free_http_client();
    orr_log_error("cannot start the gateway", "err", orr_strerror(rc), NULL);
    return 1;
  }
  if (core_start(d) != 0) {
    daemon_free(d);
    free_http_client();
    return 1;
  }
  /* The HTTP API and /federate (gw_api_*, gateway.h). */
  gw_api_config ac = {core.g,           daemon_loop(d),           opt.timeout_ms,
                      opt.max_samples,  opt.lookback_delta_ms,    opt.max_concurrent,
                      opt.partial_response != 0, flags,
                      opt.auto_downsampling != 0, route_prefix};
  gw_api *api = NULL;
  rc = gw_api_register(daemon_router(d), &ac, &api);
  /* The web UI: the query page at / and /graph, the stores and status pages
   * (web/index.html + app.js); under a prefix, "/" goes to the graph page,
   * as Prometheus's does. */
  static const char *const pages[] = {"/", "/graph", "/stores", "/status", NULL};
  static web_site site = {"index.html", pages, "/graph", ""};
  if (rc == 0) rc = web_register(daemon_router(d), &site, route_prefix, external_prefix);
  if (rc != 0) {
    orr_log_error("cannot add the HTTP API", "err", orr_strerror(rc), NULL);
    daemon_free(d);
    return 1;
  }
  /* Ready once the first Info round is over (gw_on_first_round): a query
   * right after /-/ready includes every endpoint that answers Info. */
  gw_on_first_round(core.g, gateway_ready, d);
  int status = daemon_run(d);
  /* The in-process sources close over several loop turns after gw_close
   * (their local clients, then their shared HTTP client): let them finish
   * before daemon_free closes whatever handle is left under them. */
  while (core.closing && !core.closed && uv_run(daemon_loop(d), UV_RUN_ONCE)) {
  }
  daemon_free(d);
  gw_api_free(api);
  free_http_client();
  return status;
}

const cli_command cli_cmd_gateway = {
    "gateway",
    "Query gateway: the Prometheus HTTP API over every StoreAPI endpoint, with HA deduplication.",
    NULL,
    CLI_LOG | CLI_HTTP | CLI_GRPC,
    flags,
    run,
    NULL,
};
