/* endpoints.c: the gateway's endpoint table — discovery from flags,
 * file SD (JSON/YAML, re-read on change) and DNS (dns+host:port), the Info
 * poll that marks endpoints up or down, pruning by time and external labels,
 * and the /api/v1/stores snapshot.
 *
 * Design notes
 * 1. The table lives on the loop thread; the fields an HTTP handler may read
 *    (component, label sets, times, last check/error, up) change only under
 *    gw->mu, so gw_endpoints() works from any thread.
 * 2. One timer ticks every second: it re-reads SD files whose mtime changed
 *    (or every sd_interval), re-resolves dns+/dnssrv+ names every dns_interval,
 *    reconciles the table with what was discovered, then starts the Info
 *    calls that are due (every info_interval, one in flight per endpoint).
 *    A new endpoint is asked at once; its second call comes after 1/8 to
 *    8/8 of the interval (by the order endpoints were added), so a
 *    thousand endpoints discovered together are polled a few hundred per
 *    tick, not all in one tick that stalls the queries running then.
 * 3. An endpoint is never used by a fan-out until an Info call succeeded; a
 *    failed Info marks it down (kept, with its last error) until one succeeds.
 * 4. An endpoint no longer discovered leaves the table at once but its
 *    client is closed only when no fan-out and no Info call holds it
 *    (|refs|, |info_call|).
 * 5. gw_close() frees the gw when its handles closed, the DNS round in
 *    flight (if any) came back and every endpoint is freed, its client
 *    closed (|nlive|): it cancels the Info calls in flight, and a fan-out
 *    holding an endpoint is cancelled by gw__ops_close. The daemon closes
 *    whatever handle is left once the gw is freed, and a client whose
 *    handles close without their callbacks is never freed. */
#include <arpa/nameser.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "gateway_int.h"

/* An endpoint address for a log line: a password in a source's URL shows
 * as xxxxx (net_url_redacted); the buffer lives until the statement ends. */
#define RED(addr) net_url_redacted((addr), (char[1024]){0}, 1024)

#define GW_TICK_MS 1000
/* Quiet time before freed heap goes back to the system (gw__trim_soon):
 * each page given back costs a page fault (about 20 µs on a VM) when the
 * next query touches it again, so back-to-back queries keep their heap. */
#define GW_TRIM_QUIET_MS 1000

/* ---------------------------------------------------------------- helpers */
/* Splits "host:port" / "[v6]:port". Returns 0 or ORR_EINVAL. */
static int split_hostport(const char *s, orr_arena *a, char **host, int *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || !colon[1]) return ORR_EINVAL;
  const char *h = s;
  size_t hl = (size_t)(colon - s);
  if (h[0] == '[') {
    if (hl < 3 || h[hl - 1] != ']') return ORR_EINVAL;
    h++;
    hl -= 2;
  }
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end || p <= 0 || p > 65535) return ORR_EINVAL;
  *host = orr_arena_strndup(a, h, hl);
  if (!*host) return ORR_ENOMEM;
  *port = (int)p;
  return 0;
}

bool gw__labelsets_match(labels_matcher *const *ms, size_t nms, const labels_set *sets,
                         size_t nsets) {
  if (nsets == 0) return true;
  for (size_t s = 0; s < nsets; s++) {
    bool ok = true;
    for (size_t i = 0; i < nms && ok; i++) {
      const char *name = labels_matcher_name(ms[i]);
      for (size_t j = 0; j < sets[s].n; j++) {
        if (strcmp(sets[s].v[j].name, name)) continue;
        const char *v = sets[s].v[j].value;
        if (!labels_matcher_matches(ms[i], v, strlen(v))) ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}

/* ---------------------------------------------------------------- file SD */
static int add_target(const char *t, size_t tl, orr_arena *a, const char ***out, size_t *n) {
  const char **nv = realloc(*out, (*n + 1) * sizeof(*nv));
  if (!nv) return ORR_ENOMEM;
  *out = nv;
  nv[*n] = orr_arena_strndup(a, t, tl);
  if (!nv[*n]) return ORR_ENOMEM;
  (*n)++;
  return 0;
}

static int sd_parse_json(const char *data, size_t len, orr_arena *a, const char ***out,
                         size_t *n, char *err, size_t errlen) {
  json_error_t je;
  json_t *root = json_loadb(data, len, 0, &je);
  if (!root) {
    snprintf(err, errlen, "line %d: %s", je.line, je.text);
    return ORR_EINVAL;
  }
  int rc = 0;
  if (!json_is_array(root)) {
    snprintf(err, errlen, "file SD: expected a list of target groups");
    rc = ORR_EINVAL;
    goto out;
  }
  size_t i;
  json_t *grp;
  json_array_foreach(root, i, grp) {
    json_t *ts = json_is_object(grp) ? json_object_get(grp, "targets") : NULL;
    if (!json_is_array(ts)) {
      snprintf(err, errlen, "file SD: group %zu has no \"targets\" list", i);
      rc = ORR_EINVAL;
      goto out;
    }
    size_t j;
    json_t *t;
    json_array_foreach(ts, j, t) {
      if (!json_is_string(t)) {
        snprintf(err, errlen, "file SD: group %zu: target %zu is not a string", i, j);
        rc = ORR_EINVAL;
        goto out;
      }
      if ((rc = add_target(json_string_value(t), json_string_length(t), a, out, n))) goto out;
    }
  }
out:
  json_decref(root);
  return rc;
}

/* YAML: a sequence of mappings; scalars of the sequence under a "targets"
 * key of a top-level group are the targets. */
static int sd_parse_yaml(const char *data, size_t len, orr_arena *a, const char ***out,
                         size_t *n, char *err, size_t errlen) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return ORR_ENOMEM;
  yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
  int rc = 0, depth = 0; /* depth of collections */
  bool expect_key = false, in_targets = false, next_is_targets = false, seen_root = false;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      snprintf(err, errlen, "line %zu: %s", p.problem_mark.line + 1,
               p.problem ? p.problem : "bad YAML");
      rc = ORR_EINVAL;
      break;
    }
    yaml_event_type_t type = ev.type;
    switch (type) {
    case YAML_SEQUENCE_START_EVENT:
      if (depth == 0) seen_root = true;
      if (next_is_targets) in_targets = true;
      next_is_targets = false;
      depth++;
      break;
    case YAML_SEQUENCE_END_EVENT:
      depth--;
      in_targets = false;
      if (depth == 2) expect_key = true;
      break;
    case YAML_MAPPING_START_EVENT:
      if (depth == 0) {
        snprintf(err, errlen, "file SD: expected a list of target groups");
        rc = ORR_EINVAL;
      }
      depth++;
      if (depth == 2) expect_key = true;
      next_is_targets = false;
      break;
    case YAML_MAPPING_END_EVENT:
      depth--;
      if (depth == 2) expect_key = true;
      break;
    case YAML_SCALAR_EVENT: {
      const char *v = (const char *)ev.data.scalar.value;
      size_t vl = ev.data.scalar.length;
      if (in_targets && depth == 3) {
        rc = add_target(v, vl, a, out, n);
      } else if (depth == 2 && expect_key) {
        next_is_targets = !strcmp(v, "targets");
        expect_key = false;
      } else if (depth == 2) {
        if (next_is_targets) {
          snprintf(err, errlen, "file SD: \"targets\" must be a list");
          rc = ORR_EINVAL;
        }
        next_is_targets = false;
        expect_key = true;
      }
      break;
    }
    default:
      break;
    }
    yaml_event_delete(&ev);
    if (rc || type == YAML_STREAM_END_EVENT) break;
  }
  yaml_parser_delete(&p);
  if (!rc && !seen_root && *n == 0) {
    /* An empty document is an empty list. */
  }
  return rc;
}

int gw__sd_parse(const char *data, size_t len, orr_arena *a, const char ***out, size_t *n,
                 char *err, size_t errlen) {
  size_t i = 0;
  while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
    i++;
  if (i < len && data[i] == '[')
    return sd_parse_json(data + i, len - i, a, out, n, err, errlen);
  return sd_parse_yaml(data, len, a, out, n, err, errlen);
}

/* ---------------------------------------------------------------- lifecycle */
static void tick_cb(uv_timer_t *t);

int gw_new(const gw_config *cfg, gw **out, char *err, size_t errlen) {
  gw *g = calloc(1, sizeof(*g));
  if (!g) return ORR_ENOMEM;
  int rc = ORR_ENOMEM;
  g->cfg = *cfg;
  g->loop = cfg->loop;
  {
    /* Unique enough among the gateways of one deployment. */
    uint64_t x = (uint64_t)orr_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)g;
    FILE *ur = fopen("/dev/urandom", "rb");
    uint64_t r2 = 0;
    if (ur) {
      if (fread(&r2, sizeof(r2), 1, ur) != 1) r2 = 0;
      fclose(ur);
    }
    snprintf(g->id, sizeof(g->id), "%016llx%016llx", (unsigned long long)x,
             (unsigned long long)r2);
    g->md[0] = GW_ID_HEADER;
    g->md[1] = g->id;
    g->md[2] = NULL;
  }
  g->cfg_arena = orr_arena_new(0);
  g->sd_arena = orr_arena_new(0);
  g->dns_arena = orr_arena_new(0);
  if (!g->cfg_arena || !g->sd_arena || !g->dns_arena) goto fail;
  pthread_mutex_init(&g->mu, NULL);
  pthread_mutex_init(&g->qmu, NULL);
  gw_endpoint_tls *etls = orr_arena_calloc(g->cfg_arena, cfg->nendpoint_tls + 1, sizeof(*etls));
  if (!etls) goto fail;
  for (size_t i = 0; i < cfg->nendpoint_tls; i++) {
    etls[i].tls = cfg->endpoint_tls[i].tls;
    if (!(etls[i].address = orr_arena_strdup(g->cfg_arena, cfg->endpoint_tls[i].address)))
      goto fail;
  }
  g->cfg.endpoint_tls = etls;
  const char **eps = orr_arena_calloc(g->cfg_arena, cfg->nendpoints + 1, sizeof(char *));
  const char **sds = orr_arena_calloc(g->cfg_arena, cfg->nsd_files + 1, sizeof(char *));
  const char **rls = orr_arena_calloc(g->cfg_arena, cfg->nreplica_labels + 1, sizeof(char *));
  g->sd_mtime_ns = orr_arena_calloc(g->cfg_arena, cfg->nsd_files + 1, sizeof(int64_t));
  if (!eps || !sds || !rls || !g->sd_mtime_ns) goto fail;
  for (size_t i = 0; i < cfg->nendpoints; i++) {
    const char *e = cfg->endpoints[i];
    if (!(eps[i] = orr_arena_strdup(g->cfg_arena, e))) goto fail;
    const char *spec;
    const gw__source_kind *k = gw__source_kind_of(e, &spec);
    if (k) {
      char why[256] = "";
      if (k->check(spec, why, sizeof(why))) {
        snprintf(err, errlen, "endpoint %s: %s", e, why);
        rc = ORR_EINVAL;
        goto fail;
      }
      continue;
    }
    char *h;
    int port;
    const char *hp = !strncmp(e, "dns+", 4) ? e + 4 : e;
    if (!strncmp(e, "dnssrv+", 7)) {
      if (!e[7]) {
        snprintf(err, errlen, "endpoint %s: want dnssrv+_service._tcp.name", e);
        rc = ORR_EINVAL;
        goto fail;
      }
      continue;
    }
    if (split_hostport(hp, g->cfg_arena, &h, &port)) {
      snprintf(err, errlen, "endpoint %s: want host:port", e);
      rc = ORR_EINVAL;
      goto fail;
    }
  }
  for (size_t i = 0; i < cfg->nsd_files; i++)
    if (!(sds[i] = orr_arena_strdup(g->cfg_arena, cfg->sd_files[i]))) goto fail;
  for (size_t i = 0; i < cfg->nreplica_labels; i++)
    if (!(rls[i] = orr_arena_strdup(g->cfg_arena, cfg->replica_labels[i]))) goto fail;
  g->cfg.endpoints = eps;
  g->cfg.sd_files = sds;
  g->cfg.replica_labels = rls;
  g->cfg.registry = cfg->registry;
  if (cfg->registry) {
    orr_metric *up = orr_gauge_new(cfg->registry, "thanos_store_nodes_grpc_connections",
                                   "Number of gRPC connection to Store APIs.", NULL);
    orr_metric *known = orr_gauge_new(cfg->registry, "orrery_gateway_endpoints",
                                      "Number of endpoints the gateway discovered.", NULL);
    orr_metric *part = orr_counter_new(
        cfg->registry, "orrery_gateway_partial_response_warnings_total",
        "Endpoint failures answered with a partial response and a warning.", NULL);
    if (!up || !known || !part || !(g->m_up = orr_metric_series(up)) ||
        !(g->m_known = orr_metric_series(known)) || !(g->m_partial = orr_metric_series(part)))
      goto fail;
  }
  if (g->cfg.sd_interval_ms <= 0) g->cfg.sd_interval_ms = 5 * 60 * 1000;
  if (g->cfg.dns_interval_ms <= 0) g->cfg.dns_interval_ms = 30 * 1000;
  if (g->cfg.query_timeout_ms <= 0) g->cfg.query_timeout_ms = 2 * 60 * 1000;
  if (g->cfg.info_interval_ms <= 0) g->cfg.info_interval_ms = 5000;
  if (g->cfg.info_timeout_ms <= 0) g->cfg.info_timeout_ms = 5000;
  if (g->cfg.source_refresh_ms <= 0) g->cfg.source_refresh_ms = 30000;
  if (cfg->registry) {
    static const char *const req_l[] = {"endpoint", "kind", "method", "code", NULL};
    static const char *const dur_l[] = {"endpoint", "kind", "method", NULL};
    static const char *const ep_l[] = {"endpoint", "kind", NULL};
    static const double buckets[] = {0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
    g->m_ep_requests = orr_counter_new(cfg->registry, "orrery_gateway_endpoint_requests_total",
                                       "Calls to an endpoint, by method and gRPC code.", req_l);
    g->m_ep_duration = orr_histogram_new(
        cfg->registry, "orrery_gateway_endpoint_request_duration_seconds",
        "Time from a call to an endpoint to its end.", dur_l, buckets,
        sizeof(buckets) / sizeof(buckets[0]));
    g->m_ep_series = orr_counter_new(cfg->registry, "orrery_gateway_endpoint_series_received_total",
                                     "Series messages received from an endpoint.", ep_l);
    g->m_src_bytes = orr_counter_new(cfg->registry, "orrery_gateway_source_read_bytes_total",
                                     "Bytes an in-process source read from its server (remote-read "
                                     "answers, scraped bodies).", ep_l);
    /* What crossed the network from each gRPC endpoint (Series and Query
     * answers alike): the measure of what aggregation pushdown saves
     * between a global gateway and its regions. */
    g->m_ep_rx = orr_counter_new(cfg->registry, "orrery_gateway_endpoint_received_bytes_total",
                                 "gRPC message bytes received from a StoreAPI endpoint (with "
                                 "their 5-byte prefix).", ep_l);
  }
  if (g->cfg.federate_interval_ms <= 0) g->cfg.federate_interval_ms = 15000;
  if (g->cfg.federate_retention_ms <= 0) g->cfg.federate_retention_ms = 2 * 3600 * 1000;
  *out = g;
  return 0;
fail:
  orr_arena_destroy(g->cfg_arena);
  orr_arena_destroy(g->sd_arena);
  orr_arena_destroy(g->dns_arena);
  free(g);
  return rc;
}

const char *const *gw_replica_labels(const gw *g, size_t *n) {
  *n = g->cfg.nreplica_labels;
  return g->cfg.replica_labels;
}

int gw_start(gw *g) {
  int rc = uv_timer_init(g->loop, &g->tick);
  if (rc) return ORR_ENOMEM;
  g->tick.data = g;
  if ((rc = gw__ops_init(g)) || (rc = gw__sync_init(g))) return rc;
  g->first_round_deadline_ms = orr_now_ms() + g->cfg.info_timeout_ms + GW_TICK_MS;
  uv_timer_start(&g->tick, tick_cb, 0, GW_TICK_MS);
  return 0;
}

static void maybe_free_gw(gw *g);

const gw_config *gw__config(const gw *g) { return &g->cfg; }
uv_loop_t *gw__loop(const gw *g) { return g->loop; }

net_http_client *gw__http(gw *g) {
  if (!g->http && net_http_client_new(g->loop, NULL, &g->http)) g->http = NULL;
  return g->http;
}

static void source_closed(void *arg) {
  gw *g = arg;
  g->nsources--;
  if (g->closing) maybe_free_gw(g);
}

/* The local client closed: no call is in flight on the source any more. */
static void source_client_closed(void *arg) {
  gw__source *src = arg;
  src->close(src, source_closed, src->g);
}

static void client_closed(void *arg) {
  gw *g = arg;
  g->nlive--;
  if (g->closing) maybe_free_gw(g);
}

static void endpoint_free(gw__endpoint *e) {
  gw *g = e->g;
  if (e->client && e->src) {
    storeapi_client_close(e->client, source_client_closed, e->src);
    g->nlive--; /* the source is counted by nsources */
  } else if (e->src) {
    e->src->close(e->src, source_closed, g);
    g->nlive--;
  } else if (e->client) {
    storeapi_client_close(e->client, client_closed, g);
  } else {
    g->nlive--;
  }
  orr_arena_destroy(e->state);
  free(e->address);
  free(e->name);
  free(e->host);
  free(e);
}

/* Frees |e| when nothing holds it any more (after it left the table). */
static void endpoint_maybe_free(gw__endpoint *e) {
  if (!e->wanted && e->refs == 0 && !e->info_call) endpoint_free(e);
}

/* Frees |g| once its handles closed and no DNS lookup is out. */
static void http_closed(void *arg) {
  gw *g = arg;
  g->http_closing = false;
  maybe_free_gw(g);
}

static void maybe_free_gw(gw *g) {
  if (g->pending_closes > 0 || g->dns_pending > 0 || g->nsources > 0 || g->nlive > 0 ||
      g->http_closing)
    return;
  if (g->http) { /* the sources are closed: their HTTP client goes last */
    g->http_closing = true;
    net_http_client_close(g->http, http_closed, g);
    g->http = NULL;
    return;
  }
  if (g->sapi) g->sapi->g = NULL; /* its calls now answer UNAVAILABLE */
  if (g->qapi) g->qapi->g = NULL;
  void (*cb)(void *) = g->on_closed;
  void *arg = g->on_closed_arg;
  free(g->eps);
  free(g->sd_targets);
  free(g->dns_targets);
  orr_arena_destroy(g->cfg_arena);
  orr_arena_destroy(g->sd_arena);
  orr_arena_destroy(g->dns_arena);
  pthread_mutex_destroy(&g->mu);
  pthread_mutex_destroy(&g->qmu);
  free(g);
  if (cb) cb(arg);
}

static void closed_one(uv_handle_t *h) {
  gw *g = h->data;
  g->pending_closes--;
  maybe_free_gw(g);
}

void gw_close(gw *g, void (*on_closed)(void *arg), void *arg) {
  pthread_mutex_lock(&g->qmu);
  g->closing = true;
  pthread_mutex_unlock(&g->qmu);
  g->on_closed = on_closed;
  g->on_closed_arg = arg;
  g->pending_closes = 3;
  uv_timer_stop(&g->tick);
  uv_close((uv_handle_t *)&g->tick, closed_one);
  gw__ops_close(g, closed_one);
  gw__sync_close(g, closed_one);
  /* An endpoint's client closes when no call of ours is in flight on it:
   * at once, or when the fan-out (cancelled above) or the Info call ends.
   * (Closing a net_grpc_client while it connects trips a libuv assertion,
   * so a client is never closed under a call.) */
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->neps; i++) {
    gw__endpoint *e = g->eps[i];
    e->wanted = false;
    /* Its callback follows from the loop (CANCELLED) and frees |e|. */
    if (e->info_call) storeapi_unary_cancel(e->info_call);
    endpoint_maybe_free(e);
  }
  g->neps = 0;
  pthread_mutex_unlock(&g->mu);
}

/* ---------------------------------------------------------------- table */
static gw__endpoint *find_ep(gw *g, const char *addr) {
  for (size_t i = 0; i < g->neps; i++)
    if (!strcmp(g->eps[i]->address, addr)) return g->eps[i];
  return NULL;
}

/* A source's endpoint: the source and its local client. */
static int add_source_ep(gw *g, gw__endpoint *e, const char *spec) {
  char why[512] = "";
  int rc = e->kind->open(g, spec, &e->src, why, sizeof(why));
  if (rc) {
    orr_log_warn("ignoring endpoint", "endpoint", RED(e->address), "err",
                 why[0] ? why : orr_strerror(rc), NULL);
    return rc;
  }
  e->src->g = g;
  g->nsources++;
  return storeapi_client_new_local(g->loop, &e->src->be, &e->client);
}

/* The TLS context for |addr|: its own from the endpoint config, else the
 * default (NULL: plaintext). */
static net_tls_ctx *endpoint_tls(const gw *g, const char *addr) {
  for (size_t i = 0; i < g->cfg.nendpoint_tls; i++)
    if (!strcmp(g->cfg.endpoint_tls[i].address, addr)) return g->cfg.endpoint_tls[i].tls;
  return g->cfg.client_tls;
}

static int add_ep(gw *g, const char *addr) {
  orr_arena *tmp = orr_arena_new(256);
  if (!tmp) return ORR_ENOMEM;
  char *host = NULL;
  const char *spec = NULL;
  const gw__source_kind *kind = gw__source_kind_of(addr, &spec);
  int port = 0, rc = kind ? 0 : split_hostport(addr, tmp, &host, &port);
  if (rc) {
    orr_log_warn("ignoring endpoint: want host:port", "endpoint", RED(addr), NULL);
    orr_arena_destroy(tmp);
    return 0;
  }
  if (kind) {
    char why[256] = "";
    if (kind->check(spec, why, sizeof(why))) {
      orr_log_warn("ignoring endpoint", "endpoint", RED(addr), "err", why, NULL);
      orr_arena_destroy(tmp);
      return 0;
    }
  }
  gw__endpoint *e = calloc(1, sizeof(*e));
  rc = ORR_ENOMEM;
  if (!e) goto out;
  e->g = g;
  g->nlive++;
  e->seq = g->ep_seq++;
  e->kind = kind;
  e->address = strdup(addr);
  e->name = kind ? gw__source_name(spec) : strdup(addr);
  e->host = host ? strdup(host) : NULL;
  e->port = port;
  e->state = orr_arena_new(1024);
  e->component = kind ? kind->kind : "";
  e->wanted = true;
  if (!e->address || !e->name || (host && !e->host) || !e->state) goto fail;
  if (kind) {
    if ((rc = add_source_ep(g, e, spec)) != 0) {
      if (rc == ORR_EINVAL) rc = 0; /* logged; the others go on */
      goto fail;
    }
    rc = ORR_ENOMEM;
  } else if (storeapi_client_new_tls(g->loop, e->host, e->port, endpoint_tls(g, addr),
                                     &e->client)) {
    goto fail;
  }
  storeapi_client_set_metadata(e->client, g->md);
  if (!kind && g->m_ep_rx) {
    const char *l[] = {e->name, "storeapi", NULL};
    storeapi_client_set_received_counter(e->client, orr_metric_with(g->m_ep_rx, l));
  }
  pthread_mutex_lock(&g->mu); /* gw_endpoints() reads the table from any thread */
  if (g->neps == g->capeps) {
    size_t nc = g->capeps ? 2 * g->capeps : 8;
    gw__endpoint **nv = realloc(g->eps, nc * sizeof(*nv));
    if (!nv) {
      pthread_mutex_unlock(&g->mu);
      goto fail;
    }
    g->eps = nv;
    g->capeps = nc;
  }
  g->eps[g->neps++] = e;
  pthread_mutex_unlock(&g->mu);
  orr_log_info("adding new endpoint", "address", RED(addr), NULL);
  rc = 0;
  goto out;
fail:
  if (e) endpoint_free(e);
out:
  orr_arena_destroy(tmp);
  return rc;
}

static bool in_list(const char *const *v, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(v[i], s)) return true;
  return false;
}

/* Sets the endpoint gauges from the table. */
static void count_up(gw *g) {
  if (!g->m_up) return;
  size_t up = 0;
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->neps; i++) up += g->eps[i]->up;
  size_t n = g->neps;
  pthread_mutex_unlock(&g->mu);
  orr_gauge_set(g->m_up, (double)up);
  orr_gauge_set(g->m_known, (double)n);
}

/* The table by address for one reconcile (open addressing, FNV-1a): with
 * a thousand endpoints from file SD, finding each target by a walk over
 * the table was a million strcmp every second (tick_cb in the profile). */
typedef struct ep_index {
  gw__endpoint **slot; /* NULL: the walk over the table (no memory) */
  size_t mask;
} ep_index;

static gw__endpoint **ep_index_slot(ep_index *x, const char *addr) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
    h = (h ^ *p) * 1099511628211ull;
  for (size_t i = (size_t)h & x->mask;; i = (i + 1) & x->mask)
    if (!x->slot[i] || !strcmp(x->slot[i]->address, addr)) return &x->slot[i];
}

/* Marks the endpoint of |addr| wanted, adding it when it is new. */
static void want(gw *g, ep_index *x, const char *addr) {
  gw__endpoint **slot = x->slot ? ep_index_slot(x, addr) : NULL;
  gw__endpoint *ep = slot ? *slot : find_ep(g, addr);
  if (ep) {
    ep->wanted = true;
    return;
  }
  size_t before = g->neps;
  add_ep(g, addr);
  if (slot && g->neps > before) *slot = g->eps[g->neps - 1];
}

/* Makes the table match flags + file SD + DNS. */
static void reconcile(gw *g) {
  ep_index x = {NULL, 0};
  size_t cap = 16, most = g->neps + g->cfg.nendpoints + g->nsd_targets + g->ndns_targets;
  while (cap < 2 * most) cap *= 2;
  if ((x.slot = calloc(cap, sizeof(*x.slot)))) x.mask = cap - 1;
  for (size_t i = 0; i < g->neps; i++) {
    g->eps[i]->wanted = false;
    if (x.slot) *ep_index_slot(&x, g->eps[i]->address) = g->eps[i];
  }
  for (size_t i = 0; i < g->cfg.nendpoints; i++)
    if (strncmp(g->cfg.endpoints[i], "dns+", 4)) want(g, &x, g->cfg.endpoints[i]);
  for (size_t i = 0; i < g->nsd_targets; i++) want(g, &x, g->sd_targets[i]);
  for (size_t i = 0; i < g->ndns_targets; i++) want(g, &x, g->dns_targets[i]);
  free(x.slot);
  size_t k = 0;
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->neps; i++) {
    gw__endpoint *e = g->eps[i];
    if (e->wanted) {
      g->eps[k++] = e;
      continue;
    }
    orr_log_info("removing endpoint", "address", RED(e->address), NULL);
    endpoint_maybe_free(e);
  }
  g->neps = k;
  pthread_mutex_unlock(&g->mu);
  count_up(g);
}

/* Re-reads the SD files when one changed (or |force|). Returns 0, or an
 * ORR_E* code with the first failure in |why| (may be NULL): the files
 * that could be read are used all the same. */
static int read_sd_files(gw *g, bool force, char *why, size_t whylen) {
  bool changed = force, parse_failed = false;
  int result = 0;
  for (size_t i = 0; i < g->cfg.nsd_files; i++) {
    struct stat st;
    int64_t m = 0;
    if (stat(g->cfg.sd_files[i], &st) == 0)
      m = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec + st.st_size;
    if (m != g->sd_mtime_ns[i]) changed = true;
    g->sd_mtime_ns[i] = m;
  }
  if (!changed) return 0;
  orr_arena *a = orr_arena_new(0);
  const char **ts = NULL;
  size_t n = 0;
  if (!a) return ORR_ENOMEM;
  for (size_t i = 0; i < g->cfg.nsd_files; i++) {
    FILE *f = fopen(g->cfg.sd_files[i], "rb");
    if (!f) {
      orr_log_warn("cannot read file SD", "file", g->cfg.sd_files[i], "err", strerror(errno),
                   NULL);
      if (!result && why) snprintf(why, whylen, "file SD %s: %s", g->cfg.sd_files[i], strerror(errno));
      if (!result) result = ORR_EIO;
      continue;
    }
    orr_buf b = {0};
    char chunk[4096];
    size_t r;
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) orr_buf_append(&b, chunk, r);
    fclose(f);
    char err[256] = "";
    size_t before = n;
    int rc = gw__sd_parse(b.data ? b.data : "", b.len, a, &ts, &n, err, sizeof(err));
    orr_buf_free(&b);
    if (rc) {
      n = before;
      orr_log_warn("cannot parse file SD", "file", g->cfg.sd_files[i], "err",
                   err[0] ? err : orr_strerror(rc), NULL);
      if (!result && why)
        snprintf(why, whylen, "file SD %s: %s", g->cfg.sd_files[i], err[0] ? err : orr_strerror(rc));
      if (!result) result = rc;
      parse_failed = true;
    }
  }
  if (parse_failed) {
    /* A file that does not parse (often one caught mid-write) keeps the
     * previous targets, as Prometheus's file SD does; a missing file
     * drops its targets. */
    free(ts);
    orr_arena_destroy(a);
    return result;
  }
  free(g->sd_targets);
  orr_arena_destroy(g->sd_arena);
  g->sd_targets = ts;
  g->nsd_targets = n;
  g->sd_arena = a;
  return result;
}

/* ---------------------------------------------------------------- DNS */
/* dns+host:port: A/AAAA through uv_getaddrinfo, every address an endpoint.
 * dnssrv+_svc._tcp.name: SRV through res_query on a worker thread, each
 * target:port an endpoint (the gRPC client resolves the target's name).
 * One round at a time: the results replace the previous round's when every
 * lookup of the round is back (g->dns_pending counts them). */
typedef struct dns_req {
  uv_getaddrinfo_t req;
  uv_work_t work;
  gw *g;
  int port;
  const char *srv_name;
  /* SRV results (worker thread), "target:port" */
  char **found;
  size_t nfound;
  int srv_err;
} dns_req;

static void dns_add(gw *g, const char *addr) {
  if (g->dns_acc_a && !in_list(g->dns_acc, g->ndns_acc, addr))
    add_target(addr, strlen(addr), g->dns_acc_a, &g->dns_acc, &g->ndns_acc);
}

static void maybe_free_gw(gw *g);

/* One lookup of the round is back. */
static void dns_finish_one(gw *g) {
  if (--g->dns_pending > 0) return;
  if (g->closing) {
    free(g->dns_acc);
    orr_arena_destroy(g->dns_acc_a);
    g->dns_acc = NULL;
    g->dns_acc_a = NULL;
    maybe_free_gw(g);
    return;
  }
  free(g->dns_targets);
  orr_arena_destroy(g->dns_arena);
  g->dns_targets = g->dns_acc;
  g->ndns_targets = g->ndns_acc;
  g->dns_arena = g->dns_acc_a;
  g->dns_acc = NULL;
  g->ndns_acc = 0;
  g->dns_acc_a = NULL;
  reconcile(g);
}

static void dns_done(uv_getaddrinfo_t *r, int status, struct addrinfo *res) {
  dns_req *d = r->data;
  gw *g = d->g;
  if (status == 0) {
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
      char ip[64], addr[96];
      if (ai->ai_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)ai->ai_addr, ip, sizeof(ip));
        snprintf(addr, sizeof(addr), "%s:%d", ip, d->port);
      } else if (ai->ai_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)ai->ai_addr, ip, sizeof(ip));
        snprintf(addr, sizeof(addr), "[%s]:%d", ip, d->port);
      } else {
        continue;
      }
      dns_add(g, addr);
    }
  } else {
    orr_log_warn("DNS lookup failed", "err", uv_strerror(status), NULL);
  }
  if (res) uv_freeaddrinfo(res);
  free(d);
  dns_finish_one(g);
}

/* Reads a possibly compressed domain name at |*off| of |msg| into |out|
 * (dotted, no trailing dot) and advances |*off| past it. 0 or ORR_ECORRUPT. */
static int dns_name(const uint8_t *msg, size_t n, size_t *off, char *out, size_t outlen) {
  size_t o = *off, w = 0;
  bool jumped = false;
  int hops = 0;
  for (;;) {
    if (o >= n) return ORR_ECORRUPT;
    uint8_t len = msg[o];
    if ((len & 0xc0) == 0xc0) {
      if (o + 1 >= n || ++hops > 32) return ORR_ECORRUPT;
      size_t ptr = ((size_t)(len & 0x3f) << 8) | msg[o + 1];
      if (!jumped) *off = o + 2;
      jumped = true;
      o = ptr;
      continue;
    }
    if (len & 0xc0) return ORR_ECORRUPT;
    if (len == 0) {
      if (!jumped) *off = o + 1;
      break;
    }
    if (o + 1 + len > n || w + len + 2 > outlen) return ORR_ECORRUPT;
    if (w) out[w++] = '.';
    memcpy(out + w, msg + o + 1, len);
    w += len;
    o += 1 + (size_t)len;
  }
  out[w] = 0;
  return 0;
}

int gw__srv_parse(const uint8_t *msg, size_t n, char ***out, size_t *nout) {
  *out = NULL;
  *nout = 0;
  if (n < 12) return ORR_ECORRUPT;
  size_t qd = ((size_t)msg[4] << 8) | msg[5], an = ((size_t)msg[6] << 8) | msg[7];
  size_t off = 12;
  char name[256];
  for (size_t i = 0; i < qd; i++) {
    if (dns_name(msg, n, &off, name, sizeof(name)) || off + 4 > n) return ORR_ECORRUPT;
    off += 4;
  }
  char **v = calloc(an + 1, sizeof(char *));
  if (!v) return ORR_ENOMEM;
  size_t k = 0;
  int rc = 0;
  for (size_t i = 0; i < an && !rc; i++) {
    if (dns_name(msg, n, &off, name, sizeof(name)) || off + 10 > n) {
      rc = ORR_ECORRUPT;
      break;
    }
    unsigned type = ((unsigned)msg[off] << 8) | msg[off + 1];
    size_t rdlen = ((size_t)msg[off + 8] << 8) | msg[off + 9];
    off += 10;
    if (off + rdlen > n) {
      rc = ORR_ECORRUPT;
      break;
    }
    if (type == 33 && rdlen >= 7) { /* SRV: priority, weight, port, target */
      unsigned port = ((unsigned)msg[off + 4] << 8) | msg[off + 5];
      size_t t = off + 6;
      if (dns_name(msg, n, &t, name, sizeof(name))) {
        rc = ORR_ECORRUPT;
        break;
      }
      char addr[300];
      snprintf(addr, sizeof(addr), "%s:%u", name, port);
      if (!(v[k] = strdup(addr))) rc = ORR_ENOMEM;
      else k++;
    }
    off += rdlen;
  }
  if (rc) {
    for (size_t i = 0; i < k; i++) free(v[i]);
    free(v);
    return rc;
  }
  *out = v;
  *nout = k;
  return 0;
}

static void srv_work(uv_work_t *w) {
  dns_req *d = w->data;
  uint8_t ans[8192];
  int n = res_query(d->srv_name, ns_c_in, ns_t_srv, ans, sizeof(ans));
  if (n < 0) {
    d->srv_err = ORR_ENOTFOUND;
    return;
  }
  d->srv_err = gw__srv_parse(ans, (size_t)n, &d->found, &d->nfound);
}

static void srv_done(uv_work_t *w, int status) {
  dns_req *d = w->data;
  gw *g = d->g;
  (void)status;
  if (d->srv_err)
    orr_log_warn("DNS SRV lookup failed", "name", d->srv_name, "err", orr_strerror(d->srv_err),
                 NULL);
  for (size_t i = 0; i < d->nfound; i++) {
    dns_add(g, d->found[i]);
    free(d->found[i]);
  }
  free(d->found);
  free(d);
  dns_finish_one(g);
}

static void resolve_dns(gw *g) {
  size_t want = 0;
  for (size_t i = 0; i < g->cfg.nendpoints; i++)
    if (!strncmp(g->cfg.endpoints[i], "dns+", 4) || !strncmp(g->cfg.endpoints[i], "dnssrv+", 7))
      want++;
  if (!want || g->dns_pending) return;
  g->dns_acc_a = orr_arena_new(0);
  g->dns_acc = NULL;
  g->ndns_acc = 0;
  g->dns_pending = 1; /* held while starting */
  for (size_t i = 0; i < g->cfg.nendpoints; i++) {
    const char *e = g->cfg.endpoints[i];
    bool srv = !strncmp(e, "dnssrv+", 7);
    if (strncmp(e, "dns+", 4) && !srv) continue;
    dns_req *d = calloc(1, sizeof(*d));
    if (!d) continue;
    d->g = g;
    if (srv) {
      d->srv_name = e + 7;
      d->work.data = d;
      g->dns_pending++;
      if (uv_queue_work(g->loop, &d->work, srv_work, srv_done)) {
        g->dns_pending--;
        free(d);
      }
      continue;
    }
    char *host;
    int port;
    if (split_hostport(e + 4, g->cfg_arena, &host, &port)) {
      free(d);
      continue;
    }
    d->port = port;
    d->req.data = d;
    struct addrinfo hints = {0};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    char pbuf[16];
    snprintf(pbuf, sizeof(pbuf), "%d", port);
    g->dns_pending++;
    if (uv_getaddrinfo(g->loop, &d->req, dns_done, host, pbuf, &hints)) {
      g->dns_pending--;
      free(d);
    }
  }
  dns_finish_one(g); /* the hold */
}

/* ---------------------------------------------------------------- Info */
static const char *component_name(const char *ct) {
  /* Thanos's ComponentType strings, lower case: "sidecar", "store", "query", ... */
  return ct && *ct ? ct : "";
}

/* gw_on_first_round's condition: every endpoint checked once (its Info
 * answered or failed), or the deadline passed. */
static void check_first_round(gw *g, int64_t now) {
  if (g->first_round_done) return;
  bool all = true;
  for (size_t i = 0; i < g->neps && all; i++)
    if (!g->eps[i]->last_check_ms) all = false;
  if (!all && now < g->first_round_deadline_ms) return;
  g->first_round_done = true;
  if (g->first_round_cb) g->first_round_cb(g->first_round_arg);
  g->first_round_cb = NULL;
}

void gw_on_first_round(gw *g, void (*cb)(void *arg), void *arg) {
  if (g->first_round_done) {
    cb(arg);
    return;
  }
  g->first_round_cb = cb;
  g->first_round_arg = arg;
}

static void info_done(int status, const char *message, const Thanos__Info__InfoResponse *r,
                      void *arg) {
  gw__endpoint *e = arg;
  gw *g = e->g;
  e->info_call = NULL;
  if (!e->wanted) {
    endpoint_maybe_free(e);
    return;
  }
  orr_arena *na = orr_arena_new(1024);
  if (!na) return;
  int64_t now = orr_now_ms();
  const char *errmsg = NULL;
  labels_set *sets = NULL;
  size_t nsets = 0;
  orr_buf txt = {0};
  if (status == NET_GRPC_OK && r) {
    nsets = r->n_label_sets;
    sets = orr_arena_calloc(na, nsets + 1, sizeof(*sets));
    for (size_t i = 0; sets && i < nsets; i++) {
      labels_set tmp;
      if (storeapi_labels_from_proto(r->label_sets[i]->labels, r->label_sets[i]->n_labels, na,
                                     &tmp) ||
          labels_copy(na, &tmp, &sets[i])) {
        errmsg = "invalid label set in Info";
        break;
      }
      if (i) orr_buf_putc(&txt, ',');
      labels_format(&sets[i], &txt);
    }
  } else {
    errmsg = orr_arena_sprintf(na, "rpc error: code = %s desc = %s",
                               net_grpc_status_name(status), message ? message : "");
  }
  pthread_mutex_lock(&g->mu);
  orr_arena *old = e->state;
  e->state = na;
  e->last_check_ms = now;
  if (errmsg) {
    /* Keep what we knew; only the error and the state change. */
    labels_set *keep = orr_arena_calloc(na, e->nlabel_sets + 1, sizeof(*keep));
    for (size_t i = 0; keep && i < e->nlabel_sets; i++) labels_copy(na, &e->label_sets[i], &keep[i]);
    e->label_sets = keep;
    e->label_sets_text = orr_arena_strdup(na, e->label_sets_text ? e->label_sets_text : "");
    e->component = orr_arena_strdup(na, e->component);
    e->last_error = orr_arena_strdup(na, errmsg);
    if (e->up) orr_log_warn("endpoint down", "address", RED(e->address), "err", errmsg, NULL);
    e->up = false;
  } else {
    e->label_sets = sets;
    e->nlabel_sets = nsets;
    e->label_sets_text = orr_arena_strndup(na, txt.data ? txt.data : "", txt.len);
    e->component = orr_arena_strdup(na, component_name(r->componenttype));
    e->supports_wrl = r->store && r->store->supports_without_replica_labels;
    /* A source's Info is its own; only a gRPC server serves thanos.Query. */
    e->query_api = r->query != NULL && !e->kind;
    e->min_time = r->store ? r->store->min_time : INT64_MIN;
    e->max_time = r->store ? r->store->max_time : INT64_MAX;
    e->last_error = NULL;
    const char *serr = e->src && e->src->last_error ? e->src->last_error(e->src) : NULL;
    if (serr) e->last_error = orr_arena_strdup(na, serr);
    if (!e->up) orr_log_info("endpoint up", "address", RED(e->address), "component", e->component, NULL);
    e->up = true;
  }
  pthread_mutex_unlock(&g->mu);
  count_up(g);
  orr_arena_destroy(old);
  orr_buf_free(&txt);
  check_first_round(g, now);
}

void gw__count_partial(gw *g) {
  if (g && g->m_partial) orr_counter_inc(g->m_partial);
}

static const char *ep_kind(const gw__endpoint *e) { return e->kind ? e->kind->kind : "storeapi"; }

void gw__endpoint_observe(gw *g, gw__endpoint *e, const char *method, int status,
                          int64_t took_ms, int64_t series) {
  if (!g || !g->m_ep_requests) return;
  const char *name = e->name ? e->name : e->address;
  const char *sl[] = {name, ep_kind(e), NULL};
  bool series_ok = status == NET_GRPC_OK && !strcmp(method, "Series");
  if (series_ok && e->m_series_ok[0]) { /* the children found before */
    orr_counter_inc(e->m_series_ok[0]);
    orr_histogram_observe(e->m_series_ok[1], (double)took_ms / 1000.0);
    if (series > 0 && !e->m_series_ok[2] && g->m_ep_series)
      e->m_series_ok[2] = orr_metric_with(g->m_ep_series, sl);
    if (series > 0) orr_counter_add(e->m_series_ok[2], (double)series);
    return;
  }
  const char *rl[] = {name, ep_kind(e), method, net_grpc_status_name(status), NULL};
  orr_series *r = orr_metric_with(g->m_ep_requests, rl);
  if (r) orr_counter_inc(r);
  const char *dl[] = {name, ep_kind(e), method, NULL};
  orr_series *d = g->m_ep_duration ? orr_metric_with(g->m_ep_duration, dl) : NULL;
  if (d) orr_histogram_observe(d, (double)took_ms / 1000.0);
  orr_series *n = series > 0 && g->m_ep_series ? orr_metric_with(g->m_ep_series, sl) : NULL;
  if (n) orr_counter_add(n, (double)series);
  if (series_ok && r) {
    e->m_series_ok[0] = r;
    e->m_series_ok[1] = d;
    e->m_series_ok[2] = n;
  }
}

orr_series *gw__source_bytes_counter(gw *g, const char *kind, const char *name) {
  const char *l[] = {name, kind, NULL};
  return g->m_src_bytes ? orr_metric_with(g->m_src_bytes, l) : NULL;
}

void gw__trim_soon(gw *g) { g->trim_due_ms = orr_now_ms() + GW_TRIM_QUIET_MS; }

void gw__busy(gw *g, int delta) {
  if (!g) return;
  g->busy += delta;
  /* Quiet from now on: the trim waits a full period after the last one. */
  if (g->trim_due_ms && g->busy == 0) gw__trim_soon(g);
}

static void tick_cb(uv_timer_t *t) {
  gw *g = t->data;
  int64_t now = orr_now_ms();
#ifdef __GLIBC__
  if (g->trim_due_ms && now >= g->trim_due_ms && !g->busy && !g->ops && !g->lops) {
    g->trim_due_ms = 0;
    malloc_trim(0);
  }
#endif
  bool force = now >= g->sd_next_ms;
  if (force) g->sd_next_ms = now + g->cfg.sd_interval_ms;
  read_sd_files(g, force, NULL, 0);
  if (now >= g->dns_next_ms) {
    g->dns_next_ms = now + g->cfg.dns_interval_ms;
    resolve_dns(g);
  }
  reconcile(g);
  for (size_t i = 0; i < g->neps; i++) {
    gw__endpoint *e = g->eps[i];
    if (e->info_call || now < e->next_info_ms) continue;
    int64_t every = g->cfg.info_interval_ms;
    e->next_info_ms = now + (e->next_info_ms ? every : every * (1 + e->seq % 8) / 8);
    /* On failure |info_call| stays NULL: the next tick tries again. */
    storeapi_client_info_ex(e->client, g->cfg.info_timeout_ms, info_done, e, &e->info_call);
  }
  check_first_round(g, now);
}

int gw_reload(gw *g, char *err, size_t errlen) {
  if (errlen) err[0] = 0;
  int rc = read_sd_files(g, true, err, errlen);
  size_t before = g->neps;
  /* One tick now: new endpoints are added and probed at once, not within
   * the next second. The SD files were just read, so it does not re-read. */
  tick_cb(&g->tick);
  if (rc == 0)
    orr_log_info("reloaded file SD", "files", ORR_LOG_INT((int64_t)g->cfg.nsd_files), "targets",
               ORR_LOG_INT((int64_t)g->nsd_targets), "endpoints_before",
               ORR_LOG_INT((int64_t)before), "endpoints", ORR_LOG_INT((int64_t)g->neps), NULL);
  return rc;
}

/* ---------------------------------------------------------------- queries */
int gw__targets(gw *g, int64_t mint, int64_t maxt, labels_matcher *const *ms, size_t nms,
                gw__endpoint ***out, size_t *n) {
  return gw__targets_ex(g, mint, maxt, ms, nms, NULL, 0, out, n);
}

int gw__targets_ex(gw *g, int64_t mint, int64_t maxt, labels_matcher *const *ms, size_t nms,
                   const char *const *exclude, size_t nexclude, gw__endpoint ***out, size_t *n) {
  gw__endpoint **v = calloc(g->neps + 1, sizeof(*v));
  if (!v) return ORR_ENOMEM;
  size_t k = 0;
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->neps; i++) {
    gw__endpoint *e = g->eps[i];
    if (!e->up) continue;
    if (e->min_time > maxt || e->max_time < mint) continue;
    if (!gw__labelsets_match(ms, nms, e->label_sets, e->nlabel_sets)) continue;
    bool excluded = false;
    for (size_t j = 0; j < nexclude && !excluded; j++) excluded = !strcmp(exclude[j], e->address);
    if (excluded) continue;
    e->refs++;
    v[k++] = e;
  }
  pthread_mutex_unlock(&g->mu);
  *out = v;
  *n = k;
  return 0;
}

void gw__targets_release(gw *g, gw__endpoint **eps, size_t n) {
  (void)g;
  for (size_t i = 0; i < n; i++) {
    eps[i]->refs--;
    endpoint_maybe_free(eps[i]);
  }
  free(eps);
}

const char *gw__endpoint_lsets_text(gw *g, gw__endpoint *e, orr_arena *a) {
  pthread_mutex_lock(&g->mu);
  const char *s = orr_arena_strdup(a, e->label_sets_text ? e->label_sets_text : "");
  pthread_mutex_unlock(&g->mu);
  return s;
}

const char *gw__endpoint_group(gw *g, gw__endpoint *e, char *const *rl, size_t nrl,
                               orr_arena *a) {
  orr_buf b = {0};
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < e->nlabel_sets; i++) {
    const labels_set *ls = &e->label_sets[i];
    orr_buf_putc(&b, '{');
    for (size_t j = 0; j < ls->n; j++) {
      bool replica = false;
      for (size_t k = 0; k < nrl && !replica; k++) replica = !strcmp(rl[k], ls->v[j].name);
      if (replica) continue;
      orr_buf_printf(&b, "%s\1%s\2", ls->v[j].name, ls->v[j].value);
    }
    orr_buf_putc(&b, '}');
  }
  pthread_mutex_unlock(&g->mu);
  const char *r = b.oom || !b.len ? NULL : orr_arena_strndup(a, b.data, b.len);
  orr_buf_free(&b);
  return r;
}

int gw__info_union(gw *g, orr_arena *a, labels_set **sets, size_t *n, int64_t *mint,
                   int64_t *maxt) {
  int rc = 0;
  size_t cap = 0, k = 0;
  labels_set *v = NULL;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  pthread_mutex_lock(&g->mu);
  for (size_t i = 0; i < g->neps; i++) cap += g->eps[i]->up ? g->eps[i]->nlabel_sets : 0;
  v = orr_arena_calloc(a, cap + 1, sizeof(*v));
  if (!v) rc = ORR_ENOMEM;
  for (size_t i = 0; !rc && i < g->neps; i++) {
    gw__endpoint *e = g->eps[i];
    if (!e->up) continue;
    if (e->min_time < lo) lo = e->min_time;
    if (e->max_time > hi) hi = e->max_time;
    for (size_t j = 0; j < e->nlabel_sets; j++) {
      bool dup = false;
      for (size_t m = 0; m < k && !dup; m++) dup = labels_equal(&v[m], &e->label_sets[j]);
      if (dup) continue;
      if (labels_copy(a, &e->label_sets[j], &v[k])) {
        rc = ORR_ENOMEM;
        break;
      }
      k++;
    }
  }
  pthread_mutex_unlock(&g->mu);
  if (lo == INT64_MAX) lo = hi = 0; /* no data: an empty range as Thanos */
  *sets = v;
  *n = k;
  *mint = lo;
  *maxt = hi;
  return rc;
}

/* ---------------------------------------------------------------- snapshot */
static int cmp_info(const void *a, const void *b) {
  return strcmp(((const gw_endpoint_info *)a)->address, ((const gw_endpoint_info *)b)->address);
}

int gw_endpoints(gw *g, orr_arena *a, gw_endpoint_info **out, size_t *n) {
  int rc = 0;
  pthread_mutex_lock(&g->mu);
  gw_endpoint_info *v = orr_arena_calloc(a, g->neps + 1, sizeof(*v));
  if (!v) rc = ORR_ENOMEM;
  for (size_t i = 0; !rc && i < g->neps; i++) {
    gw__endpoint *e = g->eps[i];
    gw_endpoint_info *o = &v[i];
    o->address = orr_arena_strdup(a, e->name ? e->name : e->address);
    o->component = orr_arena_strdup(a, e->component ? e->component : "");
    o->label_sets = orr_arena_calloc(a, e->nlabel_sets + 1, sizeof(labels_set));
    o->nlabel_sets = e->nlabel_sets;
    if (!o->address || !o->component || !o->label_sets) rc = ORR_ENOMEM;
    for (size_t j = 0; !rc && j < e->nlabel_sets; j++)
      if (labels_copy(a, &e->label_sets[j], &o->label_sets[j])) rc = ORR_ENOMEM;
    o->min_time = e->min_time;
    o->max_time = e->max_time;
    o->last_check_ms = e->last_check_ms;
    o->last_error = e->last_error ? orr_arena_strdup(a, e->last_error) : NULL;
    o->up = e->up;
  }
  size_t k = g->neps;
  pthread_mutex_unlock(&g->mu);
  if (rc) return rc;
  qsort(v, k, sizeof(*v), cmp_info);
  *out = v;
  *n = k;
  return 0;
}

static void json_str(orr_buf *b, const char *s) {
  orr_buf_putc(b, '"');
  orr_buf_json_escape(b, s, strlen(s));
  orr_buf_putc(b, '"');
}

int gw_endpoints_json(gw *g, orr_buf *out) {
  orr_arena *a = orr_arena_new(0);
  if (!a) return ORR_ENOMEM;
  gw_endpoint_info *v;
  size_t n;
  int rc = gw_endpoints(g, a, &v, &n);
  if (rc) goto out;
  orr_buf_puts(out, "{\"status\":\"success\",\"data\":{");
  bool *done = orr_arena_calloc(a, n + 1, sizeof(bool));
  if (!done) {
    rc = ORR_ENOMEM;
    goto out;
  }
  bool first_group = true;
  for (size_t i = 0; i < n; i++) {
    if (done[i]) continue;
    const char *comp = v[i].component[0] ? v[i].component : "unknown";
    if (!first_group) orr_buf_putc(out, ',');
    first_group = false;
    json_str(out, comp);
    orr_buf_puts(out, ":[");
    bool first = true;
    for (size_t j = i; j < n; j++) {
      const char *cj = v[j].component[0] ? v[j].component : "unknown";
      if (done[j] || strcmp(cj, comp)) continue;
      done[j] = true;
      gw_endpoint_info *e = &v[j];
      if (!first) orr_buf_putc(out, ',');
      first = false;
      char ts[64];
      orr_buf_puts(out, "{\"name\":");
      json_str(out, e->address);
      orr_buf_puts(out, ",\"lastCheck\":");
      if (e->last_check_ms) {
        orr_format_rfc3339(e->last_check_ms, ts, sizeof(ts));
        json_str(out, ts);
      } else {
        orr_buf_puts(out, "\"0001-01-01T00:00:00Z\"");
      }
      orr_buf_puts(out, ",\"lastError\":");
      if (e->last_error) json_str(out, e->last_error);
      else orr_buf_puts(out, "null");
      orr_buf_puts(out, ",\"labelSets\":[");
      for (size_t s = 0; s < e->nlabel_sets; s++) {
        orr_buf_puts(out, s ? ",{" : "{");
        for (size_t l = 0; l < e->label_sets[s].n; l++) {
          if (l) orr_buf_putc(out, ',');
          json_str(out, e->label_sets[s].v[l].name);
          orr_buf_putc(out, ':');
          json_str(out, e->label_sets[s].v[l].value);
        }
        orr_buf_putc(out, '}');
      }
      orr_buf_printf(out, "],\"minTime\":%lld,\"maxTime\":%lld}", (long long)e->min_time,
                     (long long)e->max_time);
    }
    orr_buf_putc(out, ']');
  }
  orr_buf_puts(out, "}}");
  if (out->oom) rc = ORR_ENOMEM;
out:
  orr_arena_destroy(a);
  return rc;
}
