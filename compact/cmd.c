/* cmd.c: `orrery compact` — compaction, downsampling, retention
 * and deletion in the bucket. Its flags (Thanos compact's names and
 * defaults). The compactor serves HTTP (metrics and, with --wait, the
 * blocks page: web.c) but no gRPC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "compact.h"
#include "compact_int.h"
#include "compact_run.h"
#include "daemon.h"
#include "web.h"

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
  const char *ranges;
  int web_disable;
  const char *route_prefix, *external_prefix, *web_label;
  int64_t viewer_interval_ms, viewer_timeout_ms;
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
    {"compact.ranges", ORR_FLAG_STRING, &opt.ranges, "2h,8h,2d,14d",
     "Comma-separated compaction ranges, ascending; the first is the uploaded blocks' size.",
     "<durations>"},
    {"web.disable", ORR_FLAG_BOOL, &opt.web_disable, "false",
     "Disable the blocks page (/blocks, /api/v1/blocks) served with --wait.", NULL},
    {"web.route-prefix", ORR_FLAG_STRING, &opt.route_prefix, "",
     "Prefix for API and UI endpoints (\"/orrery\": /orrery/blocks).", "<path>"},
    {"web.external-prefix", ORR_FLAG_STRING, &opt.external_prefix, "",
     "Path prefix a reverse proxy in front adds (and strips): redirects of the blocks page go "
     "there. Defaults to --web.route-prefix.", "<path>"},
    {"bucket-web-label", ORR_FLAG_STRING, &opt.web_label, "",
     "External block label to use as group title in the blocks page.", "<label>"},
    {"block-viewer.global.sync-block-interval", ORR_FLAG_DURATION, &opt.viewer_interval_ms, "1m",
     "Repeat interval for syncing the blocks between the bucket and the blocks page.", NULL},
    {"block-viewer.global.sync-block-timeout", ORR_FLAG_DURATION, &opt.viewer_timeout_ms, "5m",
     "Maximum time for syncing the blocks between the bucket and the blocks page.", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

#define DOWNSAMPLE_RAW_MIN_MS ((int64_t)40 * 3600 * 1000)
#define DOWNSAMPLE_5M_MIN_MS ((int64_t)10 * 24 * 3600 * 1000)

static int parse_ranges(compact_config *cfg) {
  const char *p = opt.ranges;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    int64_t ms;
    if (cfg->nranges == sizeof(cfg->ranges) / sizeof(cfg->ranges[0]) ||
        orr_parse_duration(p, n, &ms) != 0 || ms <= 0 ||
        (cfg->nranges > 0 && ms <= cfg->ranges[cfg->nranges - 1]))
      return ORR_EINVAL;
    cfg->ranges[cfg->nranges++] = ms;
    p += n;
    if (*p == ',') p++;
  }
  return cfg->nranges > 0 ? 0 : ORR_EINVAL;
}

static objstore_bucket *open_bucket(void) {
  char err[512] = "";
  objstore_config oc;
  objstore_bucket *b = NULL;
  int rc = objstore_config_load(opt.objstore_file, opt.objstore, &oc, err, sizeof(err));
  if (rc == 0) {
    rc = objstore_open(&oc, &b, err, sizeof(err));
    objstore_config_free(&oc);
  }
  if (rc == 0) rc = objstore_check(b, err, sizeof(err));
  if (rc) {
    orr_log_error("cannot use the bucket", "err", err[0] ? err : orr_strerror(rc), NULL);
    objstore_close(b);
    return NULL;
  }
  return b;
}

/* --wait: iterations run on this worker thread; the daemon's loop serves
 * /metrics and the probes and never waits on the bucket. The thread starts
 * from the loop's first turn, i.e. once the HTTP address is bound: a
 * compactor that cannot listen (often: another one already runs there) exits
 * without touching the bucket and without a thread that nobody would stop
 * (the shutdown hook that joins it runs only after daemon_run listened). */
typedef struct waiter {
  compact_config *cfg;
  daemon_ctx *d;
  uv_timer_t start; /* fires on the loop's first turn */
  uv_thread_t thread;
  bool started;     /* |thread| runs; loop thread only */
  bool failed;      /* it could not be started; loop thread only */
  uv_mutex_t mu;
  uv_cond_t cond;
  bool stop;
} waiter;

static void wait_worker(void *arg) {
  waiter *w = arg;
  for (;;) {
    compact_iteration_stats st;
    int rc = compact_iteration(w->cfg, &st);
    orr_log_info("compaction iteration done", "groups", ORR_LOG_INT(st.groups), "halted",
                 ORR_LOG_INT(st.halted), "errors", ORR_LOG_INT(st.errors), "result",
                 rc ? orr_strerror(rc) : "ok", NULL);
    if (compact__wait_or_stop(&w->mu, &w->cond, &w->stop, opt.wait_interval_ms)) return;
  }
}

static void on_listening(uv_timer_t *t) {
  waiter *w = t->data;
  uv_close((uv_handle_t *)t, NULL);
  if (w->stop) return;
  if (uv_thread_create(&w->thread, wait_worker, w) != 0) {
    orr_log_error("cannot start the compaction thread", NULL);
    w->failed = true;
    daemon_stop(w->d);
    return;
  }
  w->started = true;
}

static void on_shutdown(daemon_ctx *d, void *arg) {
  (void)d;
  waiter *w = arg;
  uv_mutex_lock(&w->mu);
  w->stop = true;
  uv_cond_signal(&w->cond);
  uv_mutex_unlock(&w->mu);
  /* An iteration in progress finishes first (it leaves the bucket whole
   * either way; a kill would too, see run.c note 1). */
  if (w->started) uv_thread_join(&w->thread);
  w->started = false;
}

static int run_wait(compact_config *cfg) {
  const cli_common *c = cli_common_options();
  daemon_config dc = {"compact", c->http_address, c->http_grace_period_ms, NULL};
  daemon_ctx *d = NULL;
  if (daemon_new(&dc, &d) != 0) return 1;
  compact_web *web = NULL;
  if (!opt.web_disable) {
    compact_web_config wc = {cfg->bucket,         opt.web_label,     opt.viewer_interval_ms,
                             opt.viewer_timeout_ms, opt.route_prefix, opt.external_prefix,
                             false,               NULL /* the compactor counts its own syncs */};
    int rc = compact_web_start(d, &wc, &web);
    if (rc) {
      orr_log_error("cannot serve the blocks page", "err", orr_strerror(rc), NULL);
      daemon_free(d);
      return 1;
    }
  }
  waiter w = {.cfg = cfg, .d = d};
  uv_mutex_init(&w.mu);
  uv_cond_init(&w.cond);
  int status = 1;
  uv_timer_init(daemon_loop(d), &w.start);
  w.start.data = &w;
  if (uv_timer_start(&w.start, on_listening, 0, 0) == 0 &&
      daemon_on_shutdown(d, on_shutdown, &w) == 0) {
    daemon_set_ready(d, true);
    status = daemon_run(d); /* 1, and the loop never ran, when it cannot listen */
    if (w.failed) status = 1;
  }
  /* Not fired (daemon_run did not listen): it must not fire from
   * daemon_free's last turns of the loop either. */
  if (!uv_is_closing((uv_handle_t *)&w.start)) uv_close((uv_handle_t *)&w.start, NULL);
  compact_web_free(web);
  daemon_free(d);
  uv_cond_destroy(&w.cond);
  uv_mutex_destroy(&w.mu);
  return status;
}

static int run(int argc, char **argv) {
  (void)argc;
  compact_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  if (parse_ranges(&cfg) != 0) {
    fprintf(stderr, "%s: --compact.ranges: want ascending durations, e.g. 2h,8h,2d,14d\n",
            argv[0]);
    return 2;
  }
  if (opt.compact_concurrency < 1) {
    fprintf(stderr, "%s: --compact.concurrency must be at least 1\n", argv[0]);
    return 2;
  }
  if (opt.downsample_concurrency < 1) {
    fprintf(stderr, "%s: --downsample.concurrency must be at least 1\n", argv[0]);
    return 2;
  }
  if (compact_web_check_prefixes(argv[0], opt.route_prefix, opt.external_prefix)) return 2;
  if (opt.viewer_interval_ms <= 0 || opt.viewer_timeout_ms <= 0) {
    fprintf(stderr, "%s: --block-viewer.global.sync-block-interval and -timeout must be above "
            "0\n", argv[0]);
    return 2;
  }
  if (strcmp(opt.dedup_func, "") != 0 && strcmp(opt.dedup_func, "penalty") != 0) {
    fprintf(stderr, "%s: --deduplication.func: want \"\" or \"penalty\"\n", argv[0]);
    return 2;
  }
  if (!opt.downsampling_disable &&
      ((opt.retention_raw_ms > 0 && opt.retention_raw_ms < DOWNSAMPLE_RAW_MIN_MS) ||
       (opt.retention_5m_ms > 0 && opt.retention_5m_ms < DOWNSAMPLE_5M_MIN_MS))) {
    orr_log_error("raw resolution retention must be at least 40h and 5m resolution retention at "
                  "least 10d while downsampling is enabled, or downsampled blocks would never "
                  "be made from the data before it is deleted",
                  NULL);
    return 1;
  }
  cfg.data_dir = opt.data_dir;
  cfg.downsampling = !opt.downsampling_disable;
  cfg.concurrency = opt.compact_concurrency;
  cfg.downsample_concurrency = opt.downsample_concurrency;
  cfg.consistency_delay_ms = opt.consistency_delay_ms;
  cfg.delete_delay_ms = opt.delete_delay_ms;
  cfg.retention_ms[0] = opt.retention_raw_ms;
  cfg.retention_ms[1] = opt.retention_5m_ms;
  cfg.retention_ms[2] = opt.retention_1h_ms;
  cfg.replica_labels = opt.replica_labels.v;
  cfg.nreplica = opt.replica_labels.n;
  if (strcmp(opt.dedup_func, "penalty") == 0) {
    cfg.merge = compact_merge_penalty;
  }
  if (!(cfg.bucket = open_bucket())) return 1;
  compact_metrics_init();
  int status;
  if (opt.wait) {
    status = run_wait(&cfg);
  } else {
    compact_iteration_stats st;
    int rc = compact_iteration(&cfg, &st);
    orr_log_info("compaction done", "groups", ORR_LOG_INT(st.groups), "halted",
                 ORR_LOG_INT(st.halted), "errors", ORR_LOG_INT(st.errors), "marked",
                 ORR_LOG_INT(st.marked), "deleted", ORR_LOG_INT(st.deleted), "downsampled",
                 ORR_LOG_INT(st.downsampled), NULL);
    status = rc ? 1 : 0;
  }
  objstore_close(cfg.bucket);
  return status;
}

const cli_command cli_cmd_compact = {
    "compact",
    "Compactor: compaction, downsampling, retention and deletion of blocks in the bucket.",
    NULL,
    CLI_LOG | CLI_HTTP,
    flags,
    run,
    NULL,
};
