/* query.c: `orrery tools query` — evaluates a PromQL expression over
 * the local blocks under a directory and prints exactly the body that
 * Prometheus's /api/v1/query (or /api/v1/query_range) returns. */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools.h"
#include "promql.h"
#include "tsdb.h"

static struct {
  const char *blocks;
  const char *time, *start, *end, *step;
  int64_t lookback_ms;
  int64_t max_samples;
  int64_t timeout_ms;
  int64_t parallelism;
} opt;

static const orr_flag query_flags[] = {
    {"blocks", ORR_FLAG_STRING, &opt.blocks, NULL,
     "Directory of blocks (every subdirectory with a meta.json), or one block.", "<dir>"},
    {"time", ORR_FLAG_STRING, &opt.time, NULL,
     "Evaluation time of an instant query (RFC3339 or unix seconds); default now.", "<time>"},
    {"start", ORR_FLAG_STRING, &opt.start, NULL, "Start of a range query.", "<time>"},
    {"end", ORR_FLAG_STRING, &opt.end, NULL, "End of a range query.", "<time>"},
    {"step", ORR_FLAG_STRING, &opt.step, NULL,
     "Step of a range query (duration or float seconds).", "<duration>"},
    {"lookback-delta", ORR_FLAG_DURATION, &opt.lookback_ms, "5m",
     "How far back to look for the latest sample of a series.", NULL},
    {"max-samples", ORR_FLAG_INT, &opt.max_samples, "50000000",
     "Maximum number of samples a query may hold in memory.", NULL},
    {"timeout", ORR_FLAG_DURATION, &opt.timeout_ms, "2m", "Maximum evaluation time.", NULL},
    {"parallelism", ORR_FLAG_INT, &opt.parallelism, "0",
     "Threads one evaluation may use (range functions over many series); 0: the online CPUs. "
     "Answers are the same for any value.",
     NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static int usage(const char *path, const char *fmt, ...) ORR_PRINTF(2, 3);
static int usage(const char *path, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", path);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 2;
}

/* ---------------------------------------------------------------- memory */
/* A query's memory is fresh memory: on this kind of VM a page fault costs
 * several microseconds, and a query over 10k series touched ~2000 4 KiB
 * pages (a quarter of its time). One short-lived process, one query: the
 * heap grows once by 64 MiB, large buffers come from it too (no mmap and
 * munmap per buffer), nothing is trimmed, and the heap is marked for
 * transparent huge pages, so most of it faults in 2 MiB at a time where the
 * kernel allows it (THP "madvise" or "always"; "never" changes nothing). */
#define QUERY_HEAP_PAD (64u << 20)
#define QUERY_HUGE_PAGE ((uintptr_t)2 << 20)

static void *heap_head; /* see below; freed with the process */

static void heap_for_one_query(void) {
  if (!mallopt(M_MMAP_THRESHOLD, 256 << 20) || !mallopt(M_TRIM_THRESHOLD, 512 << 20) ||
      !mallopt(M_TOP_PAD, QUERY_HEAP_PAD))
    return;
  /* Larger than the heap's free top: the heap grows now, by the pad, and
   * the block is cut from the start of the heap's top chunk. Only when the
   * break moved by the pad is that so (not under a sanitizer's allocator,
   * not when a free chunk held the megabyte): otherwise nothing more. */
  uintptr_t brk0 = (uintptr_t)sbrk(0);
  void *p = malloc(1u << 20);
  if (!p) return;
  uintptr_t brk1 = (uintptr_t)sbrk(0), pv = (uintptr_t)p;
  uintptr_t lo = (pv + QUERY_HUGE_PAGE - 1) & ~(QUERY_HUGE_PAGE - 1);
  uintptr_t hi = brk1 & ~(QUERY_HUGE_PAGE - 1);
  bool grew = brk1 >= brk0 && brk1 - brk0 >= QUERY_HEAP_PAD && pv <= brk0 &&
              brk0 - pv < (1u << 20) && hi > lo;
  size_t head = (size_t)(lo - pv);
  /* Back into the top chunk, which then starts at |p|: nothing in [p, brk1)
   * is in use. */
  free(p);
  if (!grew || madvise((void *)lo, hi - lo, MADV_HUGEPAGE) != 0) return;
  /* malloc wrote the top chunk's header behind |p|'s megabyte; that one
   * 4 KiB page would keep its 2 MiB from being a huge page: dropped (free
   * memory; it reads as zeros, like fresh heap). */
  madvise((void *)lo, hi - lo, MADV_DONTNEED);
  /* The heap below the first huge page would still fault 4 KiB at a time:
   * a block that is never touched (so costs nothing) holds it until exit. */
  if (head > 4096) heap_head = malloc(head - 64);
}

/* ---------------------------------------------------------------- storage */
/* The blocks under --blocks: each one's meta.json is read at start, its
 * index and chunks are opened when a selection first needs its time range
 * (an instant query reads the newest block only; opening the others cost a
 * millisecond or more each). */
typedef struct blk {
  char *dir;
  tsdb_meta meta;
  tsdb_block *b; /* NULL until needed */
} blk;

typedef struct blocks {
  blk *v;
  size_t n;
  orr_arena *a;       /* the metas' strings */
  pthread_mutex_t mu; /* need_block: selectors are selected side by side */
  atomic_int active;  /* selections under way */
} blocks;

static bool has_meta(const char *dir) {
  char p[4096];
  struct stat st;
  if ((size_t)snprintf(p, sizeof(p), "%s/meta.json", dir) >= sizeof(p)) return false;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int block_cmp(const void *x, const void *y) {
  const blk *a = x, *b = y;
  int64_t ta = a->meta.min_time, tb = b->meta.min_time;
  if (ta != tb) return ta < tb ? -1 : 1;
  return strcmp(a->dir, b->dir);
}

static int open_blocks(const char *dir, blocks *bs, char *err, size_t errlen) {
  char **paths = NULL;
  size_t np = 0;
  int rc = 0;
  if (!(bs->a = orr_arena_new(0))) return ORR_ENOMEM;
  if (has_meta(dir)) {
    paths = malloc(sizeof(char *));
    if (!paths || !(paths[0] = strdup(dir))) {
      free(paths);
      return ORR_ENOMEM;
    }
    np = 1;
  } else {
    DIR *d = opendir(dir);
    if (!d) {
      snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
      return ORR_EIO;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
      const char *n = de->d_name;
      size_t l = strlen(n);
      size_t sl = strlen(TSDB_BLOCK_TMP_SUFFIX);
      if (n[0] == '.' || !strcmp(n, "wal") || !strcmp(n, "chunks_head")) continue;
      if (l >= sl && !strcmp(n + l - sl, TSDB_BLOCK_TMP_SUFFIX)) continue;
      char p[4096];
      if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, n) >= sizeof(p) || !has_meta(p)) continue;
      char **npaths = realloc(paths, (np + 1) * sizeof(char *));
      if (!npaths || !(npaths[np] = strdup(p))) {
        if (npaths) paths = npaths;
        rc = ORR_ENOMEM;
        break;
      }
      paths = npaths;
      np++;
    }
    closedir(d);
  }
  if (!rc && np) {
    bs->v = calloc(np, sizeof(*bs->v));
    if (!bs->v) rc = ORR_ENOMEM;
  }
  for (size_t i = 0; i < np; i++) {
    if (rc) {
      free(paths[i]);
      continue;
    }
    blk *k = &bs->v[bs->n];
    char msg[512] = "";
    rc = tsdb_meta_read_dir(paths[i], bs->a, &k->meta, msg, sizeof(msg));
    if (rc) {
      if (rc == ORR_ENOTFOUND)
        snprintf(err, errlen, "%s/meta.json: no such file", paths[i]);
      else
        snprintf(err, errlen, "%s/meta.json: %s", paths[i], msg[0] ? msg : orr_strerror(rc));
      free(paths[i]);
      continue;
    }
    k->dir = paths[i];
    bs->n++;
  }
  free(paths);
  /* In time order (then by directory), not readdir's: blocks_select joins a
   * series' parts in this order, and parts in time order need no sort. */
  if (!rc && bs->n > 1) qsort(bs->v, bs->n, sizeof(*bs->v), block_cmp);
  return rc;
}

/* The block of |k|, opened on first use (an open block is immutable and
 * read by every selection's threads). */
static int need_block(blocks *bs, blk *k, char *err, size_t errlen) {
  pthread_mutex_lock(&bs->mu);
  int rc = k->b ? 0 : tsdb_block_open(k->dir, &k->b, err, errlen);
  pthread_mutex_unlock(&bs->mu);
  return rc;
}

static void close_blocks(blocks *bs) {
  for (size_t i = 0; i < bs->n; i++) {
    tsdb_block_close(bs->v[i].b);
    free(bs->v[i].dir);
  }
  free(bs->v);
  orr_arena_destroy(bs->a);
}

/* One block's series, walked in label order beside the others'. */
typedef struct block_cursor {
  const tsdb_block *b;
  orr_arena *a;
  tsdb_series_set *ss;
  const tsdb_series *s; /* NULL: done */
} block_cursor;

static int cursor_next(block_cursor *c, char *err, size_t errlen) {
  int r = tsdb_series_set_next(c->ss, &c->s);
  if (r == 1) return 0;
  c->s = NULL;
  if (r < 0) snprintf(err, errlen, "%s", tsdb_series_set_error(c->ss));
  return r;
}

/* Appends the samples of |s| to |*pts|: each chunk decoded whole by the
 * batch decoder (twice the speed of the sample iterator), then the samples
 * outside [s->mint, s->maxt] or deleted dropped, as the iterator drops them. */
static int decode_series(const tsdb_block *b, const tsdb_series *s, promql_point **pts, size_t *n,
                         size_t *cap, char *err, size_t errlen) {
  _Static_assert(sizeof(promql_point) == sizeof(tsdb_sample) &&
                     offsetof(promql_point, v) == offsetof(tsdb_sample, v),
                 "promql_point and tsdb_sample share a layout");
  int rc = 0;
  for (size_t i = 0; i < s->nchunks && !rc; i++) {
    const tsdb_chunk *c = &s->chunks[i];
    uint16_t total;
    if (c->enc != TSDB_ENC_XOR) {
      rc = ORR_EUNSUPPORTED;
      break;
    }
    if ((rc = tsdb_xor_num_samples(c->data, c->len, &total))) break;
    if (*cap - *n < total) {
      size_t nc = *cap ? *cap : 256;
      while (nc - *n < total) nc *= 2;
      promql_point *np = realloc(*pts, nc * sizeof(*np));
      if (!np) return ORR_ENOMEM;
      *pts = np;
      *cap = nc;
    }
    promql_point *out = *pts + *n;
    /* Up to the series' maxt (the query's end): an instant query at a time
     * inside the chunk reads its head only. */
    int k = tsdb_xor_decode_upto(c->data, c->len, (tsdb_sample *)out, total, s->maxt);
    if (k < 0) {
      rc = k;
      break;
    }
    size_t w = 0;
    for (int j = 0; j < k; j++) {
      int64_t t = out[j].t;
      if (t < s->mint || t > s->maxt) continue;
      if (s->deleted && tsdb_intervals_contains(s->deleted, t)) continue;
      out[w++] = out[j];
    }
    *n += w;
  }
  if (rc < 0) snprintf(err, errlen, "read series of %s: %s", tsdb_block_dir(b), orr_strerror(rc));
  return rc;
}

/* The series of every block in one walk: each block lists its series in
 * label order, so the walk merges the blocks' lists and hands the engine
 * each series once, its blocks' samples joined (in the blocks' order).
 * Handing a series once per block made the engine sort the blocks' lists
 * together and copy every series a second time to join its parts. Parts
 * that overlap in time are handed one by one, as before, for the engine's
 * merge to order them.
 *
 * Two stages, on two threads when --parallelism allows: the walk (index
 * entries, chunk lookups, decoding) fills batches of series — labels and
 * samples copied out of the series sets' scratch memory — and a loader
 * thread hands each batch's series to the engine (which may fold them as
 * they come: promql_eval), batch after batch in the walk's order. The
 * engine sees the series in the same order, from one thread at a time,
 * whatever the thread count. Selections run side by side (one per
 * selector, promql_storage.concurrent); the k-th one under way gets a
 * loader thread only if the CPUs outnumber 2k - 1 (on two cores, the
 * second walks and loads on one thread: the cores are busy). */
#define LOAD_BATCH 512 /* series per batch */
#define LOAD_NBATCH 4  /* batches in flight */

typedef struct load_emit { /* one emit() call */
  labels_set labels;       /* in the batch's arena */
  size_t off, n;           /* the batch's points [off, off + n) */
} load_emit;

typedef struct load_batch {
  orr_arena *a;
  load_emit *em;
  size_t nem, capem;
  size_t nser;
  promql_point *pts;
  size_t npts, cap;
  bool full;
} load_batch;

typedef struct loader {
  promql_emit_fn emit;
  void *arg;
  load_batch batch[LOAD_NBATCH];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;   /* the walk filled its last batch */
  bool failed; /* the loader stopped on an error (rc) */
  int rc;
} loader;

/* Hands one batch to the engine (the loader's stage). */
static int load_batch_run(loader *l, const load_batch *lb) {
  for (size_t i = 0; i < lb->nem; i++) {
    const load_emit *e = &lb->em[i];
    int rc = l->emit(l->arg, &e->labels, lb->pts + e->off, e->n);
    if (rc) return rc;
  }
  return 0;
}

static void *loader_main(void *p) {
  loader *l = p;
  for (size_t bi = 0;; bi = (bi + 1) % LOAD_NBATCH) {
    load_batch *lb = &l->batch[bi];
    pthread_mutex_lock(&l->mu);
    while (!lb->full && !l->done) pthread_cond_wait(&l->cv, &l->mu);
    bool stop = !lb->full; /* done, and nothing left */
    pthread_mutex_unlock(&l->mu);
    if (stop) break;
    int rc = load_batch_run(l, lb);
    pthread_mutex_lock(&l->mu);
    lb->full = false;
    if (rc) {
      l->rc = rc;
      l->failed = true;
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (rc) break;
  }
  return NULL;
}

static int batch_add_emit(load_batch *lb, const labels_set *ls, size_t off, size_t n) {
  if (!n) return 0;
  if (lb->nem == lb->capem) {
    size_t nc = lb->capem ? lb->capem * 2 : 2 * LOAD_BATCH;
    load_emit *ne = realloc(lb->em, nc * sizeof(*ne));
    if (!ne) return ORR_ENOMEM;
    lb->em = ne;
    lb->capem = nc;
  }
  lb->em[lb->nem++] = (load_emit){*ls, off, n};
  return 0;
}

/* Read once: glibc reads /sys/devices/system/cpu/online at each sysconf
 * call. Set by run() before any thread starts. */
static long ncpu_online;

static long query_ncpu(void) {
  return opt.parallelism > 0 ? (long)opt.parallelism : ncpu_online;
}

static int blocks_select(void *ctx, const promql_selector *sel, promql_emit_fn emit, void *arg,
                         char *err, size_t errlen) {
  blocks *bs = ctx;
  int rc = 0;
  int active = atomic_fetch_add(&bs->active, 1) + 1;
  loader l;
  memset(&l, 0, sizeof(l));
  l.emit = emit;
  l.arg = arg;
  pthread_mutex_init(&l.mu, NULL);
  pthread_cond_init(&l.cv, NULL);
  bool threaded = false;
  pthread_t th;
  block_cursor *cur = calloc(bs->n ? bs->n : 1, sizeof(*cur));
  size_t *parts = calloc(bs->n + 1, sizeof(size_t)); /* where each block's part starts */
  size_t *who = calloc(bs->n ? bs->n : 1, sizeof(size_t));
  size_t nc = 0, bi = 0;
  if (!cur || !parts || !who) {
    rc = ORR_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < LOAD_NBATCH; i++)
    if (!(l.batch[i].a = orr_arena_new(0))) {
      rc = ORR_ENOMEM;
      goto out;
    }
  for (size_t i = 0; i < bs->n; i++) {
    const tsdb_meta *m = &bs->v[i].meta;
    /* Blocks hold [minTime, maxTime). */
    if (m->max_time <= sel->start_ms || m->min_time > sel->end_ms) continue;
    if ((rc = need_block(bs, &bs->v[i], err, errlen))) goto out;
    block_cursor *c = &cur[nc];
    c->b = bs->v[i].b;
    if (!(c->a = orr_arena_new(0))) {
      rc = ORR_ENOMEM;
      goto out;
    }
    nc++;
    rc = tsdb_block_select(c->b, sel->matchers, sel->nmatchers, sel->start_ms, sel->end_ms, c->a,
                           &c->ss);
    if (rc) {
      snprintf(err, errlen, "select from %s: %s", tsdb_block_dir(c->b), orr_strerror(rc));
      goto out;
    }
    if ((rc = cursor_next(c, err, errlen)) < 0) goto out;
  }
  /* A loader thread when a core is free for it: not when the query's other
   * selections, side by side with this one, keep the cores busy. */
  threaded = query_ncpu() > 2 * active - 1 && pthread_create(&th, NULL, loader_main, &l) == 0;
  for (bool more = true; more;) {
    /* Wait for the next batch to be free (the loader's turn is over). */
    load_batch *lb = &l.batch[bi];
    pthread_mutex_lock(&l.mu);
    while (lb->full && !l.failed) pthread_cond_wait(&l.cv, &l.mu);
    bool failed = l.failed;
    pthread_mutex_unlock(&l.mu);
    if (failed) break;
    orr_arena_reset(lb->a);
    lb->nser = lb->nem = lb->npts = 0;
    while (lb->nser < LOAD_BATCH) {
      /* The blocks at the smallest label set, in block order. */
      size_t nw = 0;
      for (size_t i = 0; i < nc; i++) {
        if (!cur[i].s) continue;
        int d = nw ? labels_cmp(&cur[i].s->labels, &cur[who[0]].s->labels) : -1;
        if (d < 0) nw = 0;
        if (d <= 0) who[nw++] = i;
      }
      if (!nw) {
        more = false;
        break;
      }
      size_t n = lb->npts;
      bool ascending = true;
      for (size_t k = 0; k < nw; k++) {
        parts[k] = n;
        const block_cursor *c = &cur[who[k]];
        if ((rc = decode_series(c->b, c->s, &lb->pts, &n, &lb->cap, err, errlen)) < 0) goto out;
        if (k && parts[k] > parts[0] && n > parts[k] && lb->pts[parts[k]].t <= lb->pts[parts[k] - 1].t)
          ascending = false;
      }
      parts[nw] = n;
      labels_set ls;
      if (labels_copy(lb->a, &cur[who[0]].s->labels, &ls)) {
        rc = ORR_ENOMEM;
        goto out;
      }
      if (ascending) {
        rc = batch_add_emit(lb, &ls, parts[0], n - parts[0]);
      } else {
        for (size_t k = 0; k < nw && !rc; k++)
          rc = batch_add_emit(lb, &ls, parts[k], parts[k + 1] - parts[k]);
      }
      if (rc) goto out;
      lb->npts = n;
      lb->nser++;
      for (size_t k = 0; k < nw; k++)
        if ((rc = cursor_next(&cur[who[k]], err, errlen)) < 0) goto out;
    }
    if (!lb->nem) continue;
    if (!threaded) {
      if ((rc = load_batch_run(&l, lb))) goto out;
      continue;
    }
    pthread_mutex_lock(&l.mu);
    lb->full = true;
    pthread_cond_broadcast(&l.cv);
    pthread_mutex_unlock(&l.mu);
    bi = (bi + 1) % LOAD_NBATCH;
  }
  rc = 0;
out:
  if (threaded) {
    pthread_mutex_lock(&l.mu);
    l.done = true;
    pthread_cond_broadcast(&l.cv);
    pthread_mutex_unlock(&l.mu);
    pthread_join(th, NULL);
  }
  atomic_fetch_sub(&bs->active, 1);
  /* The walk's error first; else the loader's (an emit's: no message). */
  if (!rc && l.failed) rc = l.rc;
  for (size_t i = 0; cur && i < nc; i++) {
    if (cur[i].ss) tsdb_series_set_close(cur[i].ss);
    orr_arena_destroy(cur[i].a);
  }
  for (size_t i = 0; i < LOAD_NBATCH; i++) {
    orr_arena_destroy(l.batch[i].a);
    free(l.batch[i].em);
    free(l.batch[i].pts);
  }
  pthread_mutex_destroy(&l.mu);
  pthread_cond_destroy(&l.cv);
  free(cur);
  free(parts);
  free(who);
  return rc;
}

/* ---------------------------------------------------------------- parameters */
/* Prometheus's parseDuration: float seconds, else a duration. Returns 0,
 * 1 (unparsable) or 2 (overflows int64 nanoseconds). */
static int parse_api_duration(const char *s, int64_t *ms, int64_t *ns_out, bool *positive) {
  char *end;
  double d = strtod(s, &end);
  if (*s && *end == 0 && s[0] != ' ') {
    double ns = d * 1e9;
    if (!(ns <= 9223372036854775807.0 && ns >= -9223372036854775808.0)) return 2;
    int64_t ins = (int64_t)ns;
    *ns_out = ins;
    *positive = ins > 0;
    *ms = ins / 1000000;
    return 0;
  }
  if (orr_parse_duration(s, strlen(s), ms) == 0) {
    *ns_out = *ms > INT64_MAX / 1000000 ? INT64_MAX : *ms * 1000000;
    *positive = *ms > 0;
    return 0;
  }
  return 1;
}

static int write_stdout(void *arg, orr_buf *b) {
  (void)arg;
  size_t n = fwrite(b->data, 1, b->len, stdout);
  int rc = n == b->len ? 0 : ORR_EIO;
  orr_buf_reset(b);
  return rc;
}

static int print_error(promql_errtype t, const char *msg) {
  orr_buf b = {0};
  promql_json_writer w = {&b, 0, NULL, NULL, 0};
  promql_json_write_error(&w, t, msg);
  if (b.data) fwrite(b.data, 1, b.len, stdout);
  fputc('\n', stdout);
  orr_buf_free(&b);
  return 1;
}

static int run(int argc, char **argv) {
  if (argc != 2) return usage(argv[0], "expected one PromQL expression");
  if (!opt.blocks) return usage(argv[0], "--blocks is required");
  bool range = opt.start || opt.end || opt.step;
  if (range && opt.time) return usage(argv[0], "--time cannot be combined with --start/--end/--step");
  if (range && (!opt.start || !opt.end || !opt.step))
    return usage(argv[0], "a range query needs --start, --end and --step");

  promql_query_params p;
  memset(&p, 0, sizeof(p));
  p.range = range;
  p.lookback_ms = opt.lookback_ms;
  p.max_samples = opt.max_samples;
  p.timeout_ms = opt.timeout_ms ? opt.timeout_ms : -1;
  p.parallelism = opt.parallelism;
  char msg[1200];
  if (range) {
    if (orr_parse_time(opt.start, &p.start_ms)) {
      snprintf(msg, sizeof(msg), "invalid parameter \"start\": cannot parse \"%s\" to a valid timestamp",
               opt.start);
      return print_error(PROMQL_ERR_BAD_DATA, msg);
    }
    if (orr_parse_time(opt.end, &p.end_ms)) {
      snprintf(msg, sizeof(msg), "invalid parameter \"end\": cannot parse \"%s\" to a valid timestamp",
               opt.end);
      return print_error(PROMQL_ERR_BAD_DATA, msg);
    }
    promql_errinfo e;
    if (p.end_ms < p.start_ms)
      return print_error(PROMQL_ERR_BAD_DATA,
                         "invalid parameter \"end\": end timestamp must not be before start time");
    bool pos;
    int64_t step_ns = 0;
    int prc = parse_api_duration(opt.step, &p.step_ms, &step_ns, &pos);
    if (prc) {
      snprintf(msg, sizeof(msg),
               "invalid parameter \"step\": cannot parse \"%s\" to a valid duration%s", opt.step,
               prc == 2 ? ". It overflows int64" : "");
      return print_error(PROMQL_ERR_BAD_DATA, msg);
    }
    if (!pos)
      return print_error(PROMQL_ERR_BAD_DATA,
                         "invalid parameter \"step\": zero or negative query resolution step "
                         "widths are not accepted. Try a positive integer");
    /* The API divides durations in nanoseconds (sub-millisecond steps). */
    if (step_ns < 1000000) {
      int64_t span = p.end_ms - p.start_ms;
      if (span > INT64_MAX / 1000000 || span * 1000000 / step_ns > PROMQL_MAX_POINTS_PER_SERIES) {
        promql_check_range_params(0, (int64_t)PROMQL_MAX_POINTS_PER_SERIES + 1, 1, &e);
        return print_error(e.type, e.msg);
      }
    } else if (promql_check_range_params(p.start_ms, p.end_ms, p.step_ms, &e)) {
      return print_error(e.type, e.msg);
    }
  } else if (opt.time) {
    if (orr_parse_time(opt.time, &p.start_ms)) {
      snprintf(msg, sizeof(msg),
               "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"%s\" "
               "to a valid timestamp",
               opt.time);
      return print_error(PROMQL_ERR_BAD_DATA, msg);
    }
  } else {
    p.start_ms = orr_now_ms();
  }

  heap_for_one_query();
  ncpu_online = sysconf(_SC_NPROCESSORS_ONLN);
  if (p.parallelism <= 0) p.parallelism = ncpu_online > 0 ? ncpu_online : 1;
  /* Every thread of the query (the selections, side by side, and their
   * loaders, which allocate the engine's copies of the series) allocates
   * from the main heap, as the rest of the query, not from fresh
   * per-thread arenas. */
  if (query_ncpu() > 1) mallopt(M_ARENA_MAX, 1);
  int status = 1;
  blocks bs = {NULL, 0, NULL, PTHREAD_MUTEX_INITIALIZER, 0};
  orr_arena *a = orr_arena_new(0);
  char err[1024] = "";
  if (!a) {
    fprintf(stderr, "%s: out of memory\n", argv[0]);
    goto out;
  }
  if (open_blocks(opt.blocks, &bs, err, sizeof(err))) {
    fprintf(stderr, "%s: %s\n", argv[0], err);
    goto out;
  }
  /* Ordered: blocks_select hands the series in label order, once each (but
   * for a series whose blocks overlap in time, handed in parts: the engine
   * then selects that selector again and keeps its points); concurrent:
   * the selectors are selected side by side (the instant binop of
   * bench/engines_vs_prometheus.sh, two selections of 5000 series: 30.5 ->
   * 22.8 ms median wall on two cores). */
  promql_storage st = {&bs, blocks_select, true, true};
  promql_result res;
  promql_errinfo e;
  int rc = promql_eval(a, argv[1], strlen(argv[1]), &p, &st, &res, &e);
  if (rc) {
    /* 2.42 prefixes parse errors of instant queries only. */
    if (e.type == PROMQL_ERR_BAD_DATA && !range) {
      snprintf(msg, sizeof(msg), "invalid parameter \"query\": %s", e.msg);
      status = print_error(e.type, msg);
    } else {
      status = print_error(e.type ? e.type : PROMQL_ERR_INTERNAL, e.msg);
    }
    goto out;
  }
  /* Streamed: large matrices never sit whole in memory as text. */
  orr_buf b = {0};
  promql_json_writer w = {&b, 1 << 16, write_stdout, NULL, 0};
  if (promql_json_write_result(&w, &res)) {
    fprintf(stderr, "%s: cannot write the result: %s\n", argv[0], orr_strerror(w.err));
    orr_buf_free(&b);
    goto out;
  }
  orr_buf_free(&b);
  fputc('\n', stdout);
  status = fflush(stdout) == 0 ? 0 : 1;
out:
  close_blocks(&bs);
  orr_arena_destroy(a);
  return status;
}

const cli_command tools_cmd_query = {
    "query",
    "Evaluate a PromQL expression over local blocks; prints the Prometheus API's JSON body.",
    "<expr>",
    CLI_LOG,
    query_flags,
    run,
    NULL,
};
