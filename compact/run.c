/* run.c: one compactor iteration over the bucket — clean failed uploads,
 * delete blocks marked long enough ago, mark blocks a compacted block
 * replaces, compact every group (halting a group with unexpected overlaps,
 * never the others), apply retention.
 *
 * NOTES ON THE DESIGN
 * 1. The bucket is the only state. A compaction is: download the planned
 *    blocks to <data-dir>/compact, compact them locally (tmp dir + rename),
 *    verify, upload (meta.json last), then put deletion marks on the
 *    sources. A crash anywhere leaves either no new block (at worst a
 *    partial one without meta.json, invisible to readers and removed once
 *    48h old) or a whole new block whose sources are not all marked yet.
 * 2. So, before planning, every block whose sources are all among the
 *    sources of another (non-marked) block of higher level — or of the same
 *    level with equal sources and a smaller ULID — is marked for deletion
 *    (Thanos's garbage collection). A sample is then in exactly one
 *    readable, unmarked block; between an upload and the marks, readers
 *    that drop blocks whose sources another block covers (lib/bucket's
 *    dedup filter, Thanos's) see each sample once too.
 * 3. A group whose blocks overlap without vertical compaction (no
 *    --deduplication.replica-label) is halted: an error log line names the
 *    group and the blocks, thanos_compact_halted becomes 1, and the
 *    iteration goes on with the other groups and with retention.
 * 4. Compaction planning, downsampling and retention see one view of the
 *    bucket (in_view), as Thanos's compactor plans all three over the metas
 *    its fetcher's filters left: a block with a meta.json, not too fresh
 *    for --consistency-delay (an uploader may still be writing beside it),
 *    not marked for deletion. Downsampling reloads the bucket before each
 *    pass and applies the same view again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bucket.h"
#include "compact_run.h"

/* ---------------------------------------------------------------- metrics */

static struct {
  orr_series *halted, *iterations, *blocks_cleaned, *partial_deleted;
  orr_metric *group_compactions, *group_failures, *group_runs, *marked, *downsamples;
  bucket_synced_gauge synced; /* thanos_blocks_meta_synced{state} */
} M;
static uv_once_t metrics_once = UV_ONCE_INIT;

static void metrics_init(void) {
  orr_registry *r = orr_registry_default();
  static const char *const group_l[] = {"group", NULL};
  static const char *const mark_l[] = {"marker", "reason", NULL};
  orr_metric *m = orr_gauge_new(r, "thanos_compact_halted",
                                "Set to 1 if the compactor halted due to an unexpected error.", NULL);
  M.halted = m ? orr_metric_series(m) : NULL;
  if (M.halted) orr_gauge_set(M.halted, 0);
  m = orr_counter_new(r, "thanos_compact_iterations_total",
                      "Total number of iterations that were executed successfully.", NULL);
  M.iterations = m ? orr_metric_series(m) : NULL;
  m = orr_counter_new(r, "thanos_compact_blocks_cleaned_total",
                      "Total number of blocks deleted in compactor.", NULL);
  M.blocks_cleaned = m ? orr_metric_series(m) : NULL;
  m = orr_counter_new(r, "thanos_compact_aborted_partial_uploads_deletion_attempts_total",
                      "Total number of started deletions of blocks that are assumed aborted and "
                      "only partially uploaded.",
                      NULL);
  M.partial_deleted = m ? orr_metric_series(m) : NULL;
  M.group_compactions = orr_counter_new(
      r, "thanos_compact_group_compactions_total",
      "Total number of group compaction attempts that resulted in a new block.", group_l);
  M.group_failures = orr_counter_new(r, "thanos_compact_group_compactions_failures_total",
                                     "Total number of failed group compactions.", group_l);
  M.group_runs = orr_counter_new(r, "thanos_compact_group_compaction_runs_started_total",
                                 "Total number of group compaction attempts.", group_l);
  M.marked = orr_counter_new(r, "thanos_compact_blocks_marked_total",
                             "Total number of blocks marked in compactor.", mark_l);
  M.downsamples = orr_counter_new(r, "thanos_compact_downsample_total",
                                  "Total number of downsampling attempts.", group_l);
  /* As Thanos, the marks the compactor makes are exported at 0 from the
   * start, so dashboards and alerts see the series before the first mark. */
  static const char *const marks[][2] = {{COMPACT_DELETION_MARK, "compaction"},
                                         {COMPACT_DELETION_MARK, "retention"}};
  for (size_t i = 0; M.marked && i < sizeof(marks) / sizeof(marks[0]); i++)
    (void)orr_metric_with(M.marked, marks[i]);
  bucket_synced_gauge_init(&M.synced, r);
}

void compact_metrics_init(void) { uv_once(&metrics_once, metrics_init); }

static void inc_group(orr_metric *m, const char *group) {
  const char *v[] = {group};
  orr_series *s = m ? orr_metric_with(m, v) : NULL;
  if (s) orr_counter_inc(s);
}

/* ---------------------------------------------------------------- helpers */

/* Whether block |b| is in the compactor's view at |now_ms| (note 4). */
static bool in_view(const compact_config *cfg, const compact_block *b, int64_t now_ms) {
  return b->has_meta && !b->deletion_marked &&
         !bucket_too_fresh(&b->meta, cfg->consistency_delay_ms, now_ms);
}

static int mkdir_p(const char *path) {
  char buf[4096 + 2];
  if (strlen(path) >= 4096) return ORR_EINVAL;
  snprintf(buf, sizeof(buf), "%s/", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return ORR_EIO;
    *p = '/';
  }
  return 0;
}

static int mark(const compact_config *cfg, compact_block *b, const char *marker,
                const char *reason, const char *details) {
  char err[512] = "";
  int rc = compact_mark(cfg->bucket, b->id, marker, reason, details, orr_now_ms() / 1000, err,
                        sizeof(err));
  if (rc) {
    orr_log_error("failed to mark block", "id", b->id, "marker", marker, "err", err, NULL);
    return rc;
  }
  if (strcmp(marker, COMPACT_DELETION_MARK) == 0) {
    b->deletion_marked = true;
    b->deletion_time_s = orr_now_ms() / 1000;
  }
  const char *v[] = {marker, reason};
  orr_series *s = M.marked ? orr_metric_with(M.marked, v) : NULL;
  if (s) orr_counter_inc(s);
  orr_log_info("marked block", "id", b->id, "marker", marker, "reason", reason, NULL);
  return 0;
}

static bool has_source(const tsdb_meta *m, const tsdb_ulid *u) {
  for (size_t i = 0; i < m->nsources; i++)
    if (tsdb_ulid_cmp(&m->sources[i], u) == 0) return true;
  return false;
}

/* Whether |big| replaces |small| (note 2). */
static bool replaces(const compact_block *big, const compact_block *small) {
  if (big == small || !big->has_meta || big->deletion_marked) return false;
  const tsdb_meta *bm = &big->meta, *sm = &small->meta;
  /* Only within a resolution: a 5m copy never replaces its raw block. */
  int64_t br = bm->has_thanos ? bm->thanos.downsample_resolution : 0;
  int64_t sr = sm->has_thanos ? sm->thanos.downsample_resolution : 0;
  if (br != sr) return false;
  for (size_t i = 0; i < sm->nsources; i++)
    if (!has_source(bm, &sm->sources[i])) return false;
  if (bm->level > sm->level) return true;
  /* Equal sources: the smaller ULID stays, as lib/bucket's dedup filter
   * (what the store serves) keeps it. */
  return bm->level == sm->level && bm->nsources == sm->nsources &&
         tsdb_ulid_cmp(&bm->ulid, &sm->ulid) < 0;
}

/* ---------------------------------------------------------------- compaction of a plan */

typedef struct group {
  char *key;
  labels_set labels;
  int64_t resolution;
  compact_block **v;
  size_t n, cap;
  bool halted;
  int rc;         /* compact_group's result */
  orr_arena *a;   /* this group's allocations while groups run in parallel */
} group;

static int group_push(group *g, compact_block *b) {
  if (g->n == g->cap) {
    size_t nc = g->cap ? g->cap * 2 : 16;
    compact_block **nv = realloc(g->v, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    g->v = nv;
    g->cap = nc;
  }
  g->v[g->n++] = b;
  return 0;
}

/* Compacts blocks |plan| (|np| of group |g|) into one; on success the
 * sources are marked and |g| holds the new block instead. */
static int compact_plan(const compact_config *cfg, group *g, compact_block **plan, size_t np) {
  char err[1024] = "";
  char local[4096 + 16];
  snprintf(local, sizeof(local), "%s/compact", cfg->data_dir);
  const char **dirs = calloc(np, sizeof(*dirs));
  int rc = dirs ? 0 : ORR_ENOMEM;
  orr_buf ids = {0};
  for (size_t i = 0; rc == 0 && i < np; i++) {
    orr_buf_printf(&ids, "%s%s", i ? "," : "", plan[i]->id);
    char *d = orr_arena_sprintf(g->a, "%s/%s", local, plan[i]->id);
    if (!d) {
      rc = ORR_ENOMEM;
      break;
    }
    dirs[i] = d;
    orr_remove_tree(d);
    rc = compact_download(cfg->bucket, plan[i]->id, local, err, sizeof(err));
    if (rc) orr_log_error("download failed", "group", g->key, "id", plan[i]->id, "err", err, NULL);
  }
  inc_group(M.group_runs, g->key);
  tsdb_meta th;
  memset(&th, 0, sizeof(th));
  th.has_thanos = true;
  th.thanos.labels = g->labels;
  th.thanos.downsample_resolution = g->resolution;
  th.thanos.source = "compactor";
  /* The penalty dedup keeps state along a series: it needs each replica's
   * whole series (lib/tsdb compact.c note 5). */
  tsdb_compact_opts o = {.thanos = &th, .merge = cfg->merge, .merge_arg = cfg->merge_arg,
                         .merge_whole_series = cfg->merge == compact_merge_penalty};
  tsdb_compact_result res;
  memset(&res, 0, sizeof(res));
  uint64_t t0 = orr_mono_ns();
  if (rc == 0) {
    orr_log_info("compacting blocks", "group", g->key, "blocks", ids.oom ? "" : (char *)ids.data,
                 NULL);
    rc = tsdb_compact(local, dirs, np, &o, &res, err, sizeof(err));
    if (rc) orr_log_error("compaction failed", "group", g->key, "err", err, NULL);
  }
  uint64_t t_compact = orr_mono_ns() - t0;
  char id[TSDB_ULID_STRLEN + 1] = "";
  char *newdir = NULL;
  if (rc == 0 && !res.empty) {
    tsdb_ulid_format(&res.ulid, id);
    newdir = orr_arena_sprintf(g->a, "%s/%s", local, id);
    tsdb_verify_stats st;
    if (!newdir) {
      rc = ORR_ENOMEM;
    } else if ((rc = tsdb_block_verify(newdir, NULL, NULL, &st)) != 0) {
      orr_log_error("compacted block fails verification; not uploaded", "group", g->key, "id", id,
                    "problems", ORR_LOG_INT(st.problems), NULL);
    } else if ((rc = compact_upload(cfg->bucket, newdir, err, sizeof(err))) != 0) {
      orr_log_error("upload of compacted block failed", "group", g->key, "id", id, "err", err,
                    NULL);
    }
  }
  compact_block *nb = NULL;
  if (rc == 0 && !res.empty) {
    /* Into the group: the planner sees the new block next round. */
    if ((nb = orr_arena_calloc(g->a, 1, sizeof(*nb))) != NULL) {
      memcpy(nb->id, id, sizeof(nb->id));
      char merr[256];
      if (tsdb_meta_read_dir(newdir, g->a, &nb->meta, merr, sizeof(merr)) == 0)
        nb->has_meta = true;
    }
  }
  if (rc == 0) {
    for (size_t i = 0; i < np; i++) mark(cfg, plan[i], COMPACT_DELETION_MARK, "compaction", "");
    inc_group(M.group_compactions, g->key);
    orr_log_info("compacted blocks", "group", g->key, "new", res.empty ? "(empty)" : id,
                 "sources", ids.oom ? "" : (char *)ids.data, "series",
                 ORR_LOG_INT(res.num_series), "samples", ORR_LOG_INT(res.num_samples),
                 "chunks_copied", ORR_LOG_INT(res.chunks_copied), "chunks_reencoded",
                 ORR_LOG_INT(res.chunks_reencoded), "compact_ms", ORR_LOG_INT(t_compact / 1000000u),
                 "duration_ms", ORR_LOG_INT((orr_mono_ns() - t0) / 1000000u), NULL);
    /* The group now holds the new block instead of the sources. */
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++)
      if (!g->v[i]->deletion_marked) g->v[k++] = g->v[i];
    g->n = k;
    if (nb && nb->has_meta) group_push(g, nb);
    else if (!res.empty) rc = ORR_EAGAIN; /* planning again needs a fresh catalogue */
  } else {
    inc_group(M.group_failures, g->key);
  }
  for (size_t i = 0; dirs && i < np; i++)
    if (dirs[i]) orr_remove_tree(dirs[i]);
  if (newdir) orr_remove_tree(newdir);
  free(dirs);
  orr_buf_free(&ids);
  return rc;
}

static int compact_group(const compact_config *cfg, group *g) {
  if (g->n > 1 && cfg->nreplica == 0) {
    const tsdb_meta **ms = calloc(g->n, sizeof(*ms));
    if (!ms) return ORR_ENOMEM;
    for (size_t i = 0; i < g->n; i++) ms[i] = &g->v[i]->meta;
    size_t a, b;
    bool ov = compact__overlap(ms, g->n, &a, &b);
    free(ms);
    if (ov) {
      char r[256];
      snprintf(r, sizeof(r), "%s [%lld, %lld) overlaps %s [%lld, %lld)", g->v[a]->id,
               (long long)g->v[a]->meta.min_time, (long long)g->v[a]->meta.max_time, g->v[b]->id,
               (long long)g->v[b]->meta.min_time, (long long)g->v[b]->meta.max_time);
      orr_log_error("critical error detected; halting compaction of this group: overlapping "
                    "blocks and no --deduplication.replica-label (vertical compaction) set",
                    "group", g->key, "blocks", r, NULL);
      if (M.halted) orr_gauge_set(M.halted, 1);
      g->halted = true;
      return ORR_ECORRUPT;
    }
  }
  for (;;) {
    const tsdb_meta **ms = calloc(g->n + 1, sizeof(*ms));
    bool *ex = calloc(g->n + 1, sizeof(*ex));
    size_t *idx = calloc(g->n + 1, sizeof(*idx));
    size_t np = 0;
    if (ms && ex && idx) {
      for (size_t i = 0; i < g->n; i++) {
        ms[i] = &g->v[i]->meta;
        ex[i] = g->v[i]->no_compact;
      }
      compact__plan(ms, ex, g->n, cfg->ranges, cfg->nranges, idx, &np);
    }
    compact_block **plan = np ? calloc(np, sizeof(*plan)) : NULL;
    for (size_t i = 0; plan && i < np; i++) plan[i] = g->v[idx[i]];
    free(ms);
    free(ex);
    free(idx);
    if (np == 0) return 0;
    if (!plan) return ORR_ENOMEM;
    int rc = compact_plan(cfg, g, plan, np);
    free(plan);
    if (rc) return rc == ORR_EAGAIN ? 0 : rc;
  }
}

/* --compact.concurrency groups and --downsample.concurrency blocks run on
 * that many threads. A group (a downsampling) touches only its own blocks,
 * arena and local directories; the bucket, logging and metrics are
 * thread-safe. */
typedef struct pool {
  void (*fn)(void *arg, size_t i);
  void *arg;
  size_t n, next;
  uv_mutex_t mu;
} pool;

static void pool_worker(void *arg) {
  pool *p = arg;
  for (;;) {
    uv_mutex_lock(&p->mu);
    size_t i = p->next++;
    uv_mutex_unlock(&p->mu);
    if (i >= p->n) return;
    p->fn(p->arg, i);
  }
}

/* Runs fn(arg, i) for every i < |n| on up to |threads| threads (the calling
 * thread is one of them), each taking the next i. Returns 0 or ORR_ENOMEM
 * (nothing ran). */
static int run_parallel(int64_t threads, size_t n, void (*fn)(void *arg, size_t i), void *arg) {
  size_t nt = threads > 1 ? (size_t)threads : 1;
  if (nt > n) nt = n;
  pool p;
  memset(&p, 0, sizeof(p));
  p.fn = fn;
  p.arg = arg;
  p.n = n;
  if (uv_mutex_init(&p.mu) != 0) return ORR_ENOMEM;
  uv_thread_t *th = calloc(nt + 1, sizeof(*th));
  size_t started = 0;
  for (size_t i = 1; th && i < nt; i++)
    if (uv_thread_create(&th[started], pool_worker, &p) == 0) started++;
  pool_worker(&p);
  for (size_t i = 0; i < started; i++) uv_thread_join(&th[i]);
  free(th);
  uv_mutex_destroy(&p.mu);
  return 0;
}

typedef struct groups_job {
  const compact_config *cfg;
  group *groups;
} groups_job;

static void group_one(void *arg, size_t i) {
  groups_job *j = arg;
  j->groups[i].rc = compact_group(j->cfg, &j->groups[i]);
}

static int run_groups(const compact_config *cfg, group *groups, size_t ng) {
  /* Every group's counters exist (at 0) once the group does, as Thanos's
   * grouper creates them: a dashboard shows the groups before any run. */
  for (size_t i = 0; i < ng; i++) {
    const char *v[] = {groups[i].key};
    orr_metric *ms[] = {M.group_compactions, M.group_failures, M.group_runs, M.downsamples};
    for (size_t k = 0; k < sizeof(ms) / sizeof(ms[0]); k++)
      if (ms[k]) (void)orr_metric_with(ms[k], v);
  }
  groups_job j = {cfg, groups};
  return run_parallel(cfg->concurrency, ng, group_one, &j);
}

/* ---------------------------------------------------------------- downsampling */

static bool all_sources_in(const tsdb_meta *m, const compact_catalogue *cat, size_t n,
                           int64_t res) {
  for (size_t i = 0; i < m->nsources; i++) {
    bool found = false;
    for (size_t j = 0; j < n && !found; j++) {
      const compact_block *o = &cat->v[j];
      if (!o->has_meta || o->deletion_marked || !o->meta.has_thanos ||
          o->meta.thanos.downsample_resolution != res)
        continue;
      found = has_source(&o->meta, &m->sources[i]);
    }
    if (!found) return false;
  }
  return true;
}

/* CPU time of the calling thread (the downsampling bench reports MB/s per
 * core from it: on a shared machine wall time also counts other work). */
static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Downsamples block |b| to |res| and uploads the result. */
static int downsample_block(const compact_config *cfg, compact_block *b, int64_t res,
                            const char *gkey) {
  char err[1024] = "";
  char local[4096 + 16];
  snprintf(local, sizeof(local), "%s/compact", cfg->data_dir);
  char dir[4096 + 64];
  snprintf(dir, sizeof(dir), "%s/%s", local, b->id);
  orr_remove_tree(dir);
  inc_group(M.downsamples, gkey);
  orr_log_info("downsampling block", "group", gkey, "id", b->id, "resolution", ORR_LOG_INT(res),
               NULL);
  uint64_t t0 = orr_mono_ns();
  int rc = compact_download(cfg->bucket, b->id, local, err, sizeof(err));
  tsdb_compact_result r;
  memset(&r, 0, sizeof(r));
  tsdb_meta th;
  memset(&th, 0, sizeof(th));
  th.has_thanos = true;
  th.thanos.labels = b->meta.has_thanos ? b->meta.thanos.labels : (labels_set){NULL, 0};
  th.thanos.source = "compactor";
  uint64_t t1 = orr_mono_ns(), c1 = thread_cpu_ns();
  if (rc == 0) rc = tsdb_downsample(local, dir, res, &th, &r, err, sizeof(err));
  uint64_t t_ds = orr_mono_ns() - t1, c_ds = thread_cpu_ns() - c1;
  char id[TSDB_ULID_STRLEN + 1] = "";
  char ndir[4096 + 64] = "";
  if (rc == 0 && !r.empty) {
    tsdb_ulid_format(&r.ulid, id);
    snprintf(ndir, sizeof(ndir), "%s/%s", local, id);
    tsdb_verify_stats st;
    if ((rc = tsdb_block_verify(ndir, NULL, NULL, &st)) != 0)
      snprintf(err, sizeof(err), "downsampled block fails verification (%llu problems)",
               (unsigned long long)st.problems);
    else
      rc = compact_upload(cfg->bucket, ndir, err, sizeof(err));
  }
  if (rc)
    orr_log_error("downsampling failed", "group", gkey, "id", b->id, "err", err, NULL);
  else
    orr_log_info("downsampled block", "group", gkey, "from", b->id, "to",
                 r.empty ? "(empty)" : id, "resolution", ORR_LOG_INT(res), "series",
                 ORR_LOG_INT(r.num_series), "downsample_ms", ORR_LOG_INT(t_ds / 1000000u),
                 "downsample_cpu_ms", ORR_LOG_INT(c_ds / 1000000u), "duration_ms",
                 ORR_LOG_INT((orr_mono_ns() - t0) / 1000000u), NULL);
  orr_remove_tree(dir);
  if (ndir[0]) orr_remove_tree(ndir);
  return rc;
}

typedef struct ds_job {
  const compact_config *cfg;
  compact_block *b;
  int64_t to;
  const char *key;
  int rc;
} ds_job;

static void downsample_one(void *arg, size_t i) {
  ds_job *j = &((ds_job *)arg)[i];
  j->rc = downsample_block(j->cfg, j->b, j->to, j->key);
}

/* Thanos's rule: a raw block spanning >= 40h whose sources are not all in
 * 5m blocks gets a 5m copy; a 5m block spanning >= 10d likewise a 1h one.
 * Two passes, so that a new 5m block can be downsampled again at once. */
static void downsample_all(const compact_config *cfg, compact_catalogue *cat, char **halted,
                           size_t nhalted, compact_iteration_stats *st) {
  for (int pass = 0; pass < 2; pass++) {
    int64_t from = pass == 0 ? COMPACT_RES_RAW : COMPACT_RES_5M;
    int64_t to = pass == 0 ? COMPACT_RES_5M : COMPACT_RES_1H;
    int64_t span = pass == 0 ? COMPACT_DOWNSAMPLE_RAW_SPAN_MS : COMPACT_DOWNSAMPLE_5M_SPAN_MS;
    {
      /* What compaction (pass 0) or pass 0 (pass 1) made is in the bucket:
       * reload. */
      compact_catalogue fresh;
      char err[512] = "";
      if (compact_catalogue_load(cfg->bucket, false, &fresh, err, sizeof(err)) != 0) {
        orr_log_error("cannot read the bucket", "err", err, NULL);
        compact_catalogue_free(&fresh);
        st->errors++;
        return;
      }
      compact_catalogue_free(cat);
      *cat = fresh;
    }
    size_t n = cat->n, nj = 0;
    int64_t now = orr_now_ms();
    ds_job *jobs = calloc(n + 1, sizeof(*jobs));
    if (!jobs) {
      st->errors++;
      return;
    }
    for (size_t i = 0; i < n; i++) {
      compact_block *b = &cat->v[i];
      if (!in_view(cfg, b, now)) continue;
      int64_t res = b->meta.has_thanos ? b->meta.thanos.downsample_resolution : 0;
      if (res != from || b->meta.max_time - b->meta.min_time < span) continue;
      if (all_sources_in(&b->meta, cat, n, to)) continue;
      labels_set ls;
      char *key = compact__group_key(cat->a, &b->meta, cfg->replica_labels, cfg->nreplica, &ls);
      bool skip = false;
      for (size_t h = 0; key && h < nhalted; h++)
        if (strcmp(halted[h], key) == 0) skip = true;
      if (!key || skip) continue;
      jobs[nj++] = (ds_job){cfg, b, to, key, 0};
    }
    /* --downsample.concurrency blocks at a time (as Thanos's): each has its
     * own local directories; the bucket, log and metrics are shared. */
    if (run_parallel(cfg->downsample_concurrency, nj, downsample_one, jobs) != 0) {
      st->errors++;
    } else {
      for (size_t i = 0; i < nj; i++) {
        if (jobs[i].rc != 0) st->errors++;
        else st->downsampled++;
      }
    }
    free(jobs);
  }
}

/* ---------------------------------------------------------------- iteration */

int compact_iteration(const compact_config *cfg, compact_iteration_stats *st) {
  compact_metrics_init();
  memset(st, 0, sizeof(*st));
  char err[1024] = "";
  char local[4096 + 16];
  snprintf(local, sizeof(local), "%s/compact", cfg->data_dir);
  orr_remove_tree(local); /* leftovers of a crash: the bucket is the state */
  if (mkdir_p(local) != 0) {
    orr_log_error("cannot create the data directory", "dir", local, "err", strerror(errno), NULL);
    return ORR_EIO;
  }
  compact_catalogue cat;
  int rc = compact_catalogue_load(cfg->bucket, false, &cat, err, sizeof(err));
  if (rc) {
    orr_log_error("cannot read the bucket", "err", err, NULL);
    compact_catalogue_free(&cat);
    return rc;
  }
  int64_t now = orr_now_ms();
  /* thanos_blocks_meta_synced, as Thanos's compactor counts its view (its
   * filters' order: consistency delay, then deletion marks); no-compact
   * blocks are also loaded. */
  size_t synced[BUCKET_NSTATES] = {0};
  for (size_t i = 0; i < cat.n; i++) {
    const compact_block *b = &cat.v[i];
    synced[b->corrupt ? BUCKET_STATE_CORRUPTED_META
           : !b->has_meta ? BUCKET_STATE_NO_META
           : bucket_too_fresh(&b->meta, cfg->consistency_delay_ms, now) ? BUCKET_STATE_TOO_FRESH
           : b->deletion_marked ? BUCKET_STATE_MARKED_FOR_DELETION
                                : BUCKET_STATE_LOADED]++;
    if (in_view(cfg, b, now) && b->no_compact) synced[BUCKET_STATE_MARKED_FOR_NO_COMPACT]++;
  }
  bucket_synced_gauge_set_counts(&M.synced, synced);
  /* Groups point into cat.v: it is never reallocated (new blocks live in
   * their group's arena). */
  size_t base_n = cat.n;

  /* Failed uploads and blocks whose deletion delay passed. */
  for (size_t i = 0; i < base_n; i++) {
    compact_block *b = &cat.v[i];
    bool partial = !b->has_meta && !b->corrupt && now - tsdb_ulid_time(&b->meta.ulid) > COMPACT_PARTIAL_AGE_MS;
    bool due = b->deletion_marked && now / 1000 - b->deletion_time_s >= cfg->delete_delay_ms / 1000;
    if (!partial && !due) continue;
    if ((rc = compact_delete_block(cfg->bucket, b->id, err, sizeof(err))) != 0) {
      orr_log_error("failed to delete block", "id", b->id, "err", err, NULL);
      st->errors++;
      continue;
    }
    orr_log_info(partial ? "deleted aborted partial upload" : "deleted block", "id", b->id, NULL);
    if (partial && M.partial_deleted) orr_counter_inc(M.partial_deleted);
    if (!partial && M.blocks_cleaned) orr_counter_inc(M.blocks_cleaned);
    b->has_meta = false;
    b->deletion_marked = true;
    st->deleted++;
  }
  /* Garbage: blocks a compacted block replaces (note 2). */
  for (size_t i = 0; i < base_n; i++) {
    compact_block *b = &cat.v[i];
    if (!b->has_meta || b->deletion_marked) continue;
    for (size_t j = 0; j < base_n; j++)
      if (replaces(&cat.v[j], b)) {
        if (mark(cfg, b, COMPACT_DELETION_MARK, "compaction", "replaced by a compacted block") == 0)
          st->marked++;
        break;
      }
  }

  /* Groups. */
  group *groups = NULL;
  size_t ng = 0, capg = 0;
  for (size_t i = 0; i < base_n; i++) {
    compact_block *b = &cat.v[i];
    if (!in_view(cfg, b, now)) continue;
    labels_set ls;
    char *key = compact__group_key(cat.a, &b->meta, cfg->replica_labels, cfg->nreplica, &ls);
    if (!key) {
      rc = ORR_ENOMEM;
      break;
    }
    size_t g = 0;
    while (g < ng && strcmp(groups[g].key, key) != 0) g++;
    if (g == ng) {
      if (ng == capg) {
        size_t nc = capg ? capg * 2 : 8;
        group *nv = realloc(groups, nc * sizeof(*nv));
        if (!nv) {
          rc = ORR_ENOMEM;
          break;
        }
        groups = nv;
        capg = nc;
      }
      memset(&groups[ng], 0, sizeof(groups[ng]));
      if (!(groups[ng].a = orr_arena_new(0))) {
        rc = ORR_ENOMEM;
        break;
      }
      groups[ng].key = key;
      groups[ng].labels = ls;
      groups[ng].resolution = b->meta.has_thanos ? b->meta.thanos.downsample_resolution : 0;
      ng++;
    }
    if ((rc = group_push(&groups[g], b)) != 0) break;
  }
  char **halted = calloc(ng + 1, sizeof(*halted));
  size_t nhalted = 0;
  if (rc == 0) rc = run_groups(cfg, groups, ng);
  for (size_t g = 0; rc == 0 && g < ng; g++) {
    int grc = groups[g].rc;
    if (groups[g].halted) {
      st->halted++;
      if (halted) halted[nhalted++] = groups[g].key;
    } else if (grc) {
      st->errors++;
    }
    if (grc == ORR_ENOMEM) rc = grc;
  }
  st->groups = ng;
  /* Group keys live in cat.a, which downsampling may replace: copy. */
  for (size_t h = 0; halted && h < nhalted; h++) halted[h] = strdup(halted[h]);
  for (size_t g = 0; g < ng; g++) {
    free(groups[g].v);
    orr_arena_destroy(groups[g].a);
  }
  free(groups);
  groups = NULL;
  ng = 0;
  if (rc == 0 && cfg->downsampling) downsample_all(cfg, &cat, halted, nhalted, st);
  for (size_t h = 0; halted && h < nhalted; h++) free(halted[h]);
  free(halted);

  /* Retention per resolution. */
  for (size_t i = 0; rc == 0 && i < cat.n; i++) {
    compact_block *b = &cat.v[i];
    if (!in_view(cfg, b, now)) continue;
    int64_t res = b->meta.has_thanos ? b->meta.thanos.downsample_resolution : 0;
    int64_t ret = res == COMPACT_RES_1H ? cfg->retention_ms[2]
                  : res == COMPACT_RES_5M ? cfg->retention_ms[1]
                                          : cfg->retention_ms[0];
    if (ret > 0 && now > b->meta.max_time + ret) {
      if (mark(cfg, b, COMPACT_DELETION_MARK, "retention", "block exceeds retention") == 0)
        st->marked++;
    }
  }
  for (size_t g = 0; g < ng; g++) {
    free(groups[g].v);
    orr_arena_destroy(groups[g].a);
  }
  free(groups);
  compact_catalogue_free(&cat);
  if (rc == 0 && st->errors == 0 && st->halted == 0 && M.iterations)
    orr_counter_inc(M.iterations);
  if (rc) return rc;
  return st->errors || st->halted ? ORR_EAGAIN : 0;
}
