/* web.c: the blocks page, served by `orrery compact --wait` and `orrery
 * tools bucket web` — /blocks (web/blocks.html, built in: lib/web) and
 * GET /api/v1/blocks, the answer Thanos's bucket web gives:
 *   {"status":"success","data":{"blocks":[...],"label":"...","refreshedAt":"..."}}
 * where each block is its meta.json as it is in the bucket, plus "marks"
 * ({"deletion": <deletion-mark.json>, "noCompact": <no-compact-mark.json>},
 * each only when there) and "sizeBytes" (the sizes in meta.json's
 * thanos.files, or of the block's objects when it has no file list).
 *
 * NOTES
 * 1. One refresher thread reads the bucket every --refresh (the first read
 *    at start) and swaps the finished answer in under |mu|: a request never
 *    waits on the bucket, and sees one whole refresh or the one before.
 * 2. A refresh that fails, or runs past --timeout, keeps the previous
 *    answer (logged). The objstore's calls block, so the timeout is checked
 *    between blocks. Until a refresh has succeeded the API answers 503 and,
 *    when asked (tools bucket web), /-/ready stays 503 too.
 * 3. Blocks without meta.json (partial uploads, blocks being deleted) and
 *    with an unreadable one are left out, as Thanos's block fetcher leaves
 *    them out; a refresh logs how many.
 * 4. Blocks are read by up to FETCH_THREADS threads at a time (three GETs
 *    each, and a listing when meta.json has no file list). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "bucket.h"
#include "compact.h"
#include "compact_int.h"
#include "web.h"

#define FETCH_THREADS 8
#define MAX_JSON_BYTES (16u << 20)

struct compact_web {
  compact_web_config cfg; /* label and prefixes copied below */
  char *label;
  daemon_ctx *d;
  web_site site;
  uv_thread_t thread;
  bool started;
  uv_mutex_t mu; /* guards everything below */
  uv_cond_t cond;
  bool stop;
  char *answer; /* the JSON of the last good refresh, NULL before one */
  size_t answer_len;
  /* cfg.metrics: every refresh is a sync (syncs NULL when not counted here) */
  bucket_fetch_metrics fetch;
};

/* ---------------------------------------------------------------- one block */

/* Parses |len| bytes of a JSON object. NULL (with |err|) when they are not. */
static json_t *parse_object(const char *what, const char *data, size_t len, char *err,
                            size_t errlen) {
  json_error_t je;
  json_t *j = json_loadb(data ? data : "", len, 0, &je);
  if (!j || !json_is_object(j)) {
    snprintf(err, errlen, "%s: %s", what, j ? "not a JSON object" : je.text);
    json_decref(j);
    return NULL;
  }
  return j;
}

/* A marker's entry: its JSON, or {"error": ...} when unreadable (an
 * unreadable marker still marks the block, as the compactor treats it). */
static json_t *mark_entry(const char *what, const char *data, size_t len) {
  char err[256];
  json_t *m = parse_object(what, data, len, err, sizeof(err));
  return m ? m : json_pack("{s:s}", "error", err);
}

int compact__web_entry(const compact_web_objects *o, json_t **out, bool *has_files, char *err,
                       size_t errlen) {
  *out = NULL;
  *has_files = false;
  json_t *meta = parse_object(BUCKET_META_FILE, o->meta, o->meta_len, err, errlen);
  if (!meta) return ORR_ECORRUPT;
  json_t *marks = json_object();
  if (marks && o->deletion)
    json_object_set_new(marks, "deletion",
                        mark_entry(BUCKET_DELETION_MARK_FILE, o->deletion, o->deletion_len));
  if (marks && o->no_compact)
    json_object_set_new(marks, "noCompact",
                        mark_entry(BUCKET_NO_COMPACT_MARK_FILE, o->no_compact, o->no_compact_len));
  /* The size: what meta.json's thanos.files says (Thanos's uploads and ours
   * list every file with its size), else the caller's listing. */
  uint64_t size = o->listed_size;
  json_t *files = json_object_get(json_object_get(meta, "thanos"), "files");
  if (json_is_array(files) && json_array_size(files) > 0) {
    *has_files = true;
    size = 0;
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
      json_t *sz = json_object_get(f, "size_bytes");
      if (json_is_integer(sz) && json_integer_value(sz) > 0)
        size += (uint64_t)json_integer_value(sz);
    }
  }
  if (!marks || json_object_set_new(meta, "marks", marks) != 0 ||
      json_object_set_new(meta, "sizeBytes", json_integer((json_int_t)(size & INT64_MAX))) != 0) {
    json_decref(meta);
    return ORR_ENOMEM;
  }
  *out = meta;
  return 0;
}

/* Reads object |key| into |buf|: 0, ORR_ENOTFOUND or the objstore's error. */
static int get(objstore_bucket *b, const char *id, const char *file, orr_buf *buf, char *err,
               size_t errlen) {
  char key[96];
  snprintf(key, sizeof(key), "%s/%s", id, file);
  return objstore_get(b, key, MAX_JSON_BYTES, buf, err, errlen);
}

typedef struct sizer {
  objstore_bucket *b;
  uint64_t total;
  int rc;
} sizer;

static bool is_mark(const char *key) {
  const char *base = strrchr(key, '/');
  base = base ? base + 1 : key;
  return strcmp(base, BUCKET_DELETION_MARK_FILE) == 0 ||
         strcmp(base, BUCKET_NO_COMPACT_MARK_FILE) == 0;
}

static int add_size(const char *name, void *arg) {
  sizer *s = arg;
  if (is_mark(name)) return 0; /* a mark is about the block, not of it */
  objstore_attrs at;
  int rc = objstore_attributes(s->b, name, &at, NULL, 0);
  if (rc == 0) s->total += at.size;
  else if (rc != ORR_ENOTFOUND) return s->rc = rc;
  return 0;
}

/* Block |id|'s entry of the answer in |*out|, or NULL when it is left out
 * (note 3; |*skipped| says why). Returns 0 or the bucket's error. */
static int read_block(objstore_bucket *b, const char *id, json_t **out, const char **skipped,
                      char *err, size_t errlen) {
  orr_buf meta = {0}, del = {0}, nc = {0};
  *out = NULL;
  int rc = get(b, id, BUCKET_META_FILE, &meta, err, errlen);
  if (rc == ORR_ENOTFOUND) {
    *skipped = "no-meta-json";
    rc = 0;
    goto out;
  }
  bool has_del = false, has_nc = false;
  if (rc == 0 && (rc = get(b, id, BUCKET_DELETION_MARK_FILE, &del, err, errlen)) == 0)
    has_del = true;
  if (rc == ORR_ENOTFOUND) rc = 0;
  if (rc == 0 && (rc = get(b, id, BUCKET_NO_COMPACT_MARK_FILE, &nc, err, errlen)) == 0)
    has_nc = true;
  if (rc == ORR_ENOTFOUND) rc = 0;
  if (rc) goto out;
  compact_web_objects o = {(const char *)meta.data, meta.len,
                           has_del ? (del.data ? (const char *)del.data : "") : NULL, del.len,
                           has_nc ? (nc.data ? (const char *)nc.data : "") : NULL, nc.len, 0};
  bool has_files;
  rc = compact__web_entry(&o, out, &has_files, err, errlen);
  if (rc == ORR_ECORRUPT) {
    orr_log_warn("blocks page: leaving out a block with unreadable meta.json", "id", id, "err",
                 err, NULL);
    *skipped = "corrupted-meta-json";
    rc = 0;
    goto out;
  }
  if (rc == 0 && !has_files) {
    char dir[64];
    snprintf(dir, sizeof(dir), "%s/", id);
    sizer sz = {b, 0, 0};
    rc = objstore_iter(b, dir, OBJSTORE_ITER_RECURSIVE, add_size, &sz, err, errlen);
    if (rc == 0 && sz.rc) {
      snprintf(err, errlen, "size of %s: %s", id, orr_strerror(sz.rc));
      rc = sz.rc;
    }
    if (rc == 0) json_object_set_new(*out, "sizeBytes", json_integer((json_int_t)sz.total));
  }
  if (rc) {
    json_decref(*out);
    *out = NULL;
  }
out:
  orr_buf_free(&meta);
  orr_buf_free(&del);
  orr_buf_free(&nc);
  return rc;
}

/* ---------------------------------------------------------------- a refresh */

typedef struct scan {
  compact_web *w;
  const tsdb_ulid *ids;
  size_t n, next, missing, corrupt, marked;
  json_t **out;
  uint64_t deadline_ns;
  uv_mutex_t mu;
  int rc;
  char err[512];
} scan;

static void scan_worker(void *arg) {
  scan *s = arg;
  for (;;) {
    uv_mutex_lock(&s->mu);
    size_t i = s->next++;
    if (s->rc == 0 && i < s->n && uv_hrtime() > s->deadline_ns) {
      s->rc = ORR_ETIMEOUT;
      snprintf(s->err, sizeof(s->err), "reading the bucket took longer than --timeout");
    }
    bool done = s->rc != 0 || i >= s->n;
    uv_mutex_unlock(&s->mu);
    uv_mutex_lock(&s->w->mu);
    bool stop = s->w->stop;
    uv_mutex_unlock(&s->w->mu);
    if (done || stop) return;
    char id[TSDB_ULID_STRLEN + 1], err[512] = "";
    tsdb_ulid_format(&s->ids[i], id);
    const char *skipped = NULL;
    int rc = read_block(s->w->cfg.bucket, id, &s->out[i], &skipped, err, sizeof(err));
    uv_mutex_lock(&s->mu);
    if (rc && s->rc == 0) {
      s->rc = rc;
      snprintf(s->err, sizeof(s->err), "%s", err[0] ? err : orr_strerror(rc));
    }
    if (skipped && strcmp(skipped, "no-meta-json") == 0) s->missing++;
    else if (skipped) s->corrupt++;
    else if (s->out[i] && json_object_get(json_object_get(s->out[i], "marks"), "deletion"))
      s->marked++;
    uv_mutex_unlock(&s->mu);
  }
}

/* Reads the bucket and builds the answer (note 1). Returns 0 with the JSON
 * in |*json| (caller frees with free()), or an error with |err|. */
static int refresh(compact_web *w, char **json, size_t *nblocks, size_t cnt[BUCKET_NSTATES],
                   char *err, size_t errlen) {
  orr_arena *a = orr_arena_new(0);
  if (!a) return ORR_ENOMEM;
  scan s = {.w = w};
  s.deadline_ns = uv_hrtime() + (uint64_t)w->cfg.timeout_ms * 1000000u;
  int rc = bucket_list_blocks(w->cfg.bucket, a, (tsdb_ulid **)&s.ids, &s.n, err, errlen);
  if (rc) {
    orr_arena_destroy(a);
    return rc;
  }
  if (!(s.out = calloc(s.n + 1, sizeof(*s.out)))) {
    orr_arena_destroy(a);
    return ORR_ENOMEM;
  }
  uv_mutex_init(&s.mu);
  uv_thread_t th[FETCH_THREADS];
  size_t nth = 0;
  for (; nth < FETCH_THREADS && nth < s.n; nth++)
    if (uv_thread_create(&th[nth], scan_worker, &s) != 0) break;
  if (nth == 0) scan_worker(&s); /* no thread could start: read here */
  for (size_t i = 0; i < nth; i++) uv_thread_join(&th[i]);
  uv_mutex_destroy(&s.mu);
  rc = s.rc;
  if (rc) snprintf(err, errlen, "%s", s.err);
  uv_mutex_lock(&w->mu);
  if (rc == 0 && w->stop) rc = ORR_ECANCELED; /* a shutdown: not a whole answer */
  uv_mutex_unlock(&w->mu);
  json_t *blocks = json_array();
  *nblocks = 0;
  for (size_t i = 0; i < s.n; i++) {
    if (!s.out[i]) continue;
    if (rc != 0 || !blocks) json_decref(s.out[i]);
    else if (json_array_append_new(blocks, s.out[i]) != 0) rc = ORR_ENOMEM; /* it released it */
    else (*nblocks)++;
  }
  free(s.out);
  orr_arena_destroy(a);
  /* Thanos's fetcher counts a block with a deletion mark as loaded, and
   * also under marked-for-deletion (its filter only counts, the page shows it) */
  cnt[BUCKET_STATE_LOADED] = *nblocks;
  cnt[BUCKET_STATE_NO_META] = s.missing;
  cnt[BUCKET_STATE_CORRUPTED_META] = s.corrupt;
  cnt[BUCKET_STATE_MARKED_FOR_DELETION] = s.marked;
  if (rc == 0 && (s.missing || s.corrupt))
    orr_log_info("blocks page: blocks left out", "no_meta_json", ORR_LOG_INT(s.missing),
                 "corrupted_meta_json", ORR_LOG_INT(s.corrupt), NULL);
  if (rc) {
    json_decref(blocks);
    return rc;
  }
  char at[64];
  orr_format_rfc3339(orr_now_ms(), at, sizeof(at));
  json_t *root = blocks ? json_pack("{s:s,s:{s:o,s:s,s:s}}", "status", "success", "data", "blocks",
                                    blocks, "label", w->label, "refreshedAt", at)
                        : NULL;
  *json = root ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  return *json ? 0 : ORR_ENOMEM;
}

bool compact__wait_or_stop(uv_mutex_t *mu, uv_cond_t *cond, const bool *stop, int64_t ms) {
  uv_mutex_lock(mu);
  uint64_t deadline = uv_hrtime() + (uint64_t)ms * 1000000u;
  while (!*stop) {
    uint64_t now = uv_hrtime();
    if (now >= deadline) break;
    uv_cond_timedwait(cond, mu, deadline - now);
  }
  bool stopped = *stop;
  uv_mutex_unlock(mu);
  return stopped;
}

static void refresher(void *arg) {
  compact_web *w = arg;
  for (;;) {
    char err[512] = "", *json = NULL;
    size_t nblocks = 0, cnt[BUCKET_NSTATES] = {0};
    uint64_t t0 = uv_hrtime();
    int rc = refresh(w, &json, &nblocks, cnt, err, sizeof(err));
    if (w->fetch.syncs && rc != ORR_ECANCELED) {
      orr_counter_inc(w->fetch.syncs);
      orr_histogram_observe(w->fetch.sync_duration, (double)(uv_hrtime() - t0) / 1e9);
      if (rc) orr_counter_inc(w->fetch.sync_failures);
      else bucket_synced_gauge_set_counts(&w->fetch.synced, cnt);
    }
    uv_mutex_lock(&w->mu);
    bool first = false;
    if (rc == 0) {
      first = !w->answer;
      free(w->answer);
      w->answer = json;
      w->answer_len = strlen(json);
    }
    uv_mutex_unlock(&w->mu);
    if (rc == 0) {
      orr_log_info("blocks page: bucket read", "blocks", ORR_LOG_INT(nblocks), "duration_ms",
                   ORR_LOG_INT((uv_hrtime() - t0) / 1000000u), NULL);
      if (first && w->cfg.set_ready) daemon_set_ready(w->d, true);
    } else if (rc != ORR_ECANCELED) {
      orr_log_error("blocks page: cannot read the bucket; the page keeps the previous view",
                    "err", err[0] ? err : orr_strerror(rc), NULL);
    }
    if (compact__wait_or_stop(&w->mu, &w->cond, &w->stop, w->cfg.refresh_ms)) return;
  }
}

/* ---------------------------------------------------------------- HTTP */

static void handle_blocks(net_http_req *req, void *arg) {
  compact_web *w = arg;
  orr_buf body = {0};
  uv_mutex_lock(&w->mu);
  int rc = w->answer ? orr_buf_append(&body, w->answer, w->answer_len) : ORR_EAGAIN;
  uv_mutex_unlock(&w->mu);
  if (rc == ORR_EAGAIN) {
    net_http_respond_api_error(req, "unavailable", "the bucket has not been read yet");
    return;
  }
  if (rc) {
    orr_buf_free(&body);
    net_http_respond_api_error(req, "internal", "out of memory");
    return;
  }
  net_http_resp_header(req, "Cache-Control", "no-store");
  net_http_respond_buf(req, 200, "application/json", &body);
}

static void on_shutdown(daemon_ctx *d, void *arg) {
  (void)d;
  compact_web *w = arg;
  uv_mutex_lock(&w->mu);
  w->stop = true;
  uv_cond_signal(&w->cond);
  uv_mutex_unlock(&w->mu);
}

int compact_web_check_prefixes(const char *prog, const char *route_prefix,
                               const char *external_prefix) {
  char prefix[WEB_PREFIX_MAX];
  if (web_prefix(route_prefix, prefix, sizeof(prefix)) ||
      web_prefix(external_prefix, prefix, sizeof(prefix))) {
    fprintf(stderr, "%s: --web.route-prefix, --web.external-prefix: want a URL path of at most "
            "254 bytes without ?, #, * or :\n", prog);
    return ORR_EINVAL;
  }
  return 0;
}

int compact_web_start(daemon_ctx *d, const compact_web_config *cfg, compact_web **out) {
  *out = NULL;
  if (cfg->refresh_ms <= 0 || cfg->timeout_ms <= 0) return ORR_EINVAL;
  compact_web *w = calloc(1, sizeof(*w));
  if (!w) return ORR_ENOMEM;
  w->cfg = *cfg;
  w->d = d;
  if (!(w->label = strdup(cfg->label ? cfg->label : ""))) {
    free(w);
    return ORR_ENOMEM;
  }
  uv_mutex_init(&w->mu);
  uv_cond_init(&w->cond);
  static const char *const pages[] = {"/blocks", NULL};
  w->site = (web_site){"blocks.html", pages, "/blocks", ""};
  char pat[WEB_PREFIX_MAX + 32];
  int rc = web_register(daemon_router(d), &w->site, cfg->route_prefix, cfg->external_prefix);
  if (rc == 0) {
    char rp[WEB_PREFIX_MAX];
    rc = web_prefix(cfg->route_prefix, rp, sizeof(rp));
    snprintf(pat, sizeof(pat), "%s/api/v1/blocks", rp);
    if (rc == 0)
      rc = net_http_router_add(daemon_router(d), NET_HTTP_GET | NET_HTTP_HEAD, pat, "blocks",
                               handle_blocks, w);
  }
  if (rc == 0 && cfg->metrics) rc = bucket_fetch_metrics_init(&w->fetch, cfg->metrics);
  if (rc == 0) rc = daemon_on_shutdown(d, on_shutdown, w);
  if (rc == 0 && uv_thread_create(&w->thread, refresher, w) != 0) rc = ORR_ENOMEM;
  if (rc) {
    compact_web_free(w);
    return rc;
  }
  w->started = true;
  *out = w;
  return 0;
}

void compact_web_free(compact_web *w) {
  if (!w) return;
  if (w->started) {
    on_shutdown(w->d, w);
    uv_thread_join(&w->thread);
  }
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->mu);
  free(w->answer);
  free(w->label);
  free(w);
}
