/* bucket.c: listing the bucket's block directories and reading their
 * meta.json with a small pool of threads (the bucket's blocking API is
 * thread-safe; each thread takes the next block from a shared counter). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"

/* A meta.json larger than this is not a meta.json (Thanos's are a few KiB,
 * compacted blocks with many sources some hundred KiB). */
#define META_MAX_BYTES (32u << 20)

typedef struct list_ctx {
  orr_arena *a;
  tsdb_ulid *v;
  size_t n, cap;
  int oom;
} list_ctx;

static int on_entry(const char *name, void *arg) {
  list_ctx *c = arg;
  size_t l = strlen(name);
  tsdb_ulid u;
  if (l != TSDB_ULID_STRLEN + 1 || name[l - 1] != '/' || tsdb_ulid_parse(name, TSDB_ULID_STRLEN, &u))
    return 0;
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 64;
    tsdb_ulid *nv = orr_arena_alloc(c->a, nc * sizeof(*nv));
    if (!nv) {
      c->oom = 1;
      return ORR_ENOMEM;
    }
    if (c->n) memcpy(nv, c->v, c->n * sizeof(*nv));
    c->v = nv;
    c->cap = nc;
  }
  c->v[c->n++] = u;
  return 0;
}

static int ulid_qcmp(const void *a, const void *b) { return tsdb_ulid_cmp(a, b); }

int bucket_list_blocks(objstore_bucket *b, orr_arena *a, tsdb_ulid **out, size_t *n, char *err,
                       size_t errlen) {
  list_ctx c = {a, NULL, 0, 0, 0};
  int rc = objstore_iter(b, "", 0, on_entry, &c, err, errlen);
  if (c.oom) return ORR_ENOMEM;
  if (rc) return rc;
  if (c.n > 1) qsort(c.v, c.n, sizeof(*c.v), ulid_qcmp);
  *out = c.v;
  *n = c.n;
  return 0;
}

typedef struct fetch_ctx {
  objstore_bucket *b;
  const tsdb_ulid *ids;
  size_t n;
  atomic_size_t next;
  orr_arena *a;
  pthread_mutex_t mu; /* guards |a| */
  bucket_block_meta *out;
  atomic_int oom;
} fetch_ctx;

static char *locked_strdup(fetch_ctx *c, const char *s) {
  pthread_mutex_lock(&c->mu);
  char *r = orr_arena_strdup(c->a, s);
  pthread_mutex_unlock(&c->mu);
  if (!r) atomic_store(&c->oom, 1);
  return r;
}

static void fetch_one(fetch_ctx *c, size_t i) {
  bucket_block_meta *r = &c->out[i];
  char id[TSDB_ULID_STRLEN + 1], key[64], err[512] = "";
  tsdb_ulid_format(&c->ids[i], id);
  snprintf(key, sizeof key, "%s/%s", id, BUCKET_META_FILE);
  r->ulid = c->ids[i];
  orr_buf body = {0};
  int rc = objstore_get(c->b, key, META_MAX_BYTES, &body, err, sizeof err);
  if (rc == ORR_ENOTFOUND) {
    r->status = BUCKET_META_MISSING;
    r->err = locked_strdup(c, "meta.json not found");
    goto out;
  }
  if (rc) {
    r->status = BUCKET_META_FAILED;
    r->err = locked_strdup(c, err[0] ? err : orr_strerror(rc));
    goto out;
  }
  /* The parser allocates from the shared arena, so it runs under the lock;
   * meta.json files are small: the GET is the slow part and runs unlocked. */
  pthread_mutex_lock(&c->mu);
  rc = tsdb_meta_parse(body.data ? body.data : "", body.len, c->a, &r->meta, err, sizeof err);
  pthread_mutex_unlock(&c->mu);
  if (rc == ORR_ENOMEM) {
    atomic_store(&c->oom, 1);
  } else if (rc) {
    r->status = BUCKET_META_CORRUPT;
    r->err = locked_strdup(c, err);
  } else if (tsdb_ulid_cmp(&r->meta.ulid, &c->ids[i]) != 0) {
    r->status = BUCKET_META_CORRUPT;
    r->err = locked_strdup(c, "meta.json names another block");
  } else {
    r->status = BUCKET_META_OK;
  }
out:
  orr_buf_free(&body);
}

static void *fetch_thread(void *arg) {
  fetch_ctx *c = arg;
  for (;;) {
    size_t i = atomic_fetch_add(&c->next, 1);
    if (i >= c->n) break;
    fetch_one(c, i);
  }
  return NULL;
}

int bucket_fetch_metas(objstore_bucket *b, const tsdb_ulid *ids, size_t n, int concurrency,
                       orr_arena *a, bucket_block_meta **out) {
  bucket_block_meta *res = orr_arena_calloc(a, n ? n : 1, sizeof(*res));
  if (!res) return ORR_ENOMEM;
  fetch_ctx c = {.b = b, .ids = ids, .n = n, .a = a, .out = res};
  atomic_init(&c.next, 0);
  atomic_init(&c.oom, 0);
  pthread_mutex_init(&c.mu, NULL);
  size_t nt = concurrency > 1 ? (size_t)concurrency : 1;
  if (nt > n) nt = n;
  pthread_t *th = nt > 1 ? calloc(nt, sizeof(*th)) : NULL;
  size_t started = 0;
  for (size_t i = 0; th && i < nt; i++) {
    if (pthread_create(&th[i], NULL, fetch_thread, &c) != 0) break;
    started++;
  }
  fetch_thread(&c); /* the caller works too (and alone when threads failed) */
  for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
  free(th);
  pthread_mutex_destroy(&c.mu);
  if (atomic_load(&c.oom)) return ORR_ENOMEM;
  *out = res;
  return 0;
}
