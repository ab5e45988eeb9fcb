/* cache.c: the in-memory index cache — postings lists and series entries
 * by (block, key), least recently used first out (approximately: second
 * chance), bounded by bytes.
 *
 * NOTES
 * 1. One mutex guards the table and the LRU list; values are copied in and
 *    out, so no caller holds a reference into the cache.
 * 2. Postings are stored as delta uvarints compressed with snappy (a list
 *    of close series references shrinks about tenfold) and rebuilt into the
 *    index's list layout (length, count, big-endian entries, CRC32C) on a
 *    hit, so readers see the same bytes a ranged read gives.
 * 3. An item larger than a tenth of the cache is not stored: one wide query
 *    must not flush everything else.
 * 4. The table doubles when it holds more items than buckets: a warm query
 *    looks up every series entry it answers (hundreds of thousands), and
 *    each step along a chain is a cache miss.
 * 5. A hit only marks its item (|ref|); eviction gives a marked item at the
 *    tail a second chance (unmarked, moved to the head) instead of evicting
 *    it. So a hit touches no other item: moving every hit to the head cost
 *    a warm query a cache miss at each of its neighbours, per series. */
#include <pthread.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

typedef struct item {
  struct item *hnext;        /* hash chain */
  struct item *prev, *next;  /* LRU: head is the most recent */
  uint64_t hash;
  uint8_t type;
  bool ref; /* hit since it last reached the tail (note 5) */
  size_t klen, vlen;
  uint8_t data[];            /* key, then value */
} item;

struct store_cache {
  pthread_mutex_t mu;
  int64_t max_bytes, bytes;
  item **tab;
  size_t nbuckets, nitems;
  item *head, *tail;
  orr_series *requests[STORE_CACHE_NTYPES], *hits[STORE_CACHE_NTYPES];
  orr_series *items_added[STORE_CACHE_NTYPES], *evicted[STORE_CACHE_NTYPES];
  orr_series *size_bytes, *items_gauge;
  store_memcached *mc; /* when set, items live there */
};

void store_cache_use_memcached(store_cache *c, store_memcached *m) {
  store_memcached_free(c->mc);
  c->mc = m;
}

static const char *type_name[STORE_CACHE_NTYPES] = {"Postings", "Series"};

static uint64_t hash(uint8_t type, const void *k, size_t n) {
  uint64_t h = 1469598103934665603ull ^ type;
  const uint8_t *p = k;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

int store_cache_new(int64_t max_bytes, orr_registry *reg, store_cache **out) {
  store_cache *c = calloc(1, sizeof(*c));
  if (!c) return ORR_ENOMEM;
  pthread_mutex_init(&c->mu, NULL);
  c->max_bytes = max_bytes;
  c->nbuckets = 1u << 16;
  c->tab = calloc(c->nbuckets, sizeof(*c->tab));
  if (!c->tab) {
    free(c);
    return ORR_ENOMEM;
  }
  if (reg) {
    const char *ln[] = {"item_type", NULL};
    orr_metric *req = orr_counter_new(reg, "thanos_store_index_cache_requests_total",
                                      "Total number of items requests to the cache.", ln);
    orr_metric *hit = orr_counter_new(reg, "thanos_store_index_cache_hits_total",
                                      "Total number of items requests to the cache that were a hit.", ln);
    orr_metric *add = orr_counter_new(reg, "thanos_store_index_cache_items_added_total",
                                      "Total number of items that were added to the index cache.", ln);
    orr_metric *ev = orr_counter_new(reg, "thanos_store_index_cache_items_evicted_total",
                                     "Total number of items that were evicted from the index cache.", ln);
    orr_metric *sz = orr_gauge_new(reg, "thanos_store_index_cache_total_size_bytes",
                                   "Current byte size of items in the index cache.", NULL);
    orr_metric *it = orr_gauge_new(reg, "thanos_store_index_cache_items",
                                   "Current number of items in the index cache.", NULL);
    for (int t = 0; t < STORE_CACHE_NTYPES; t++) {
      const char *v[] = {type_name[t]};
      if (req) c->requests[t] = orr_metric_with(req, v);
      if (hit) c->hits[t] = orr_metric_with(hit, v);
      if (add) c->items_added[t] = orr_metric_with(add, v);
      if (ev) c->evicted[t] = orr_metric_with(ev, v);
    }
    if (sz) c->size_bytes = orr_metric_series(sz);
    if (it) c->items_gauge = orr_metric_series(it);
  }
  *out = c;
  return 0;
}

void store_cache_free(store_cache *c) {
  if (!c) return;
  store_memcached_free(c->mc);
  for (item *it = c->head; it;) {
    item *n = it->next;
    free(it);
    it = n;
  }
  free(c->tab);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static void lru_unlink(store_cache *c, item *it) {
  if (it->prev) it->prev->next = it->next; else c->head = it->next;
  if (it->next) it->next->prev = it->prev; else c->tail = it->prev;
  it->prev = it->next = NULL;
}

static void lru_push(store_cache *c, item *it) {
  it->next = c->head;
  it->prev = NULL;
  if (c->head) c->head->prev = it;
  c->head = it;
  if (!c->tail) c->tail = it;
}

/* Note 4: rehashes into twice the buckets (kept as is when out of memory). */
static void grow(store_cache *c) {
  size_t nb = c->nbuckets * 2;
  item **tab = calloc(nb, sizeof(*tab));
  if (!tab) return;
  for (size_t i = 0; i < c->nbuckets; i++)
    for (item *it = c->tab[i], *next; it; it = next) {
      next = it->hnext;
      item **pp = &tab[it->hash & (nb - 1)];
      it->hnext = *pp;
      *pp = it;
    }
  free(c->tab);
  c->tab = tab;
  c->nbuckets = nb;
}

static item **find_slot(store_cache *c, uint8_t type, uint64_t h, const void *k, size_t kl) {
  item **pp = &c->tab[h & (c->nbuckets - 1)];
  for (; *pp; pp = &(*pp)->hnext) {
    item *it = *pp;
    if (it->hash == h && it->type == type && it->klen == kl && memcmp(it->data, k, kl) == 0)
      return pp;
  }
  return pp;
}

static void remove_item(store_cache *c, item *it) {
  item **pp = find_slot(c, it->type, it->hash, it->data, it->klen);
  if (*pp == it) *pp = it->hnext;
  lru_unlink(c, it);
  c->bytes -= (int64_t)(sizeof(*it) + it->klen + it->vlen);
  c->nitems--;
  free(it);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Note 2: list bytes → delta uvarints → snappy. */
static int compress_postings(const uint8_t *p, size_t n, orr_buf *out) {
  if (n < 12) return ORR_EINVAL;
  uint32_t cnt = be32(p + 4);
  if ((size_t)cnt * 4 + 12 > n) return ORR_EINVAL;
  orr_buf raw = {0};
  orr_buf_put_uvarint(&raw, cnt);
  uint32_t prev = 0;
  for (uint32_t i = 0; i < cnt; i++) {
    uint32_t v = be32(p + 8 + 4 * i);
    orr_buf_put_uvarint(&raw, v - prev);
    prev = v;
  }
  size_t cl = snappy_max_compressed_length(raw.len);
  int rc = raw.oom ? ORR_ENOMEM : orr_buf_reserve(out, cl);
  if (rc == 0 && snappy_compress(raw.data, raw.len, out->data + out->len, &cl) != SNAPPY_OK)
    rc = ORR_EINTERNAL;
  if (rc == 0) out->len += cl;
  orr_buf_free(&raw);
  return rc;
}

static int decompress_postings(const uint8_t *p, size_t n, orr_buf *out) {
  size_t ul;
  if (snappy_uncompressed_length((const char *)p, n, &ul) != SNAPPY_OK) return ORR_ECORRUPT;
  char *raw = malloc(ul ? ul : 1);
  if (!raw) return ORR_ENOMEM;
  int rc = 0;
  if (snappy_uncompress((const char *)p, n, raw, &ul) != SNAPPY_OK) rc = ORR_ECORRUPT;
  orr_dec d = orr_dec_make(raw, ul);
  uint64_t cnt = 0;
  if (rc == 0 && orr_dec_uvarint(&d, &cnt)) rc = ORR_ECORRUPT;
  if (rc == 0 && cnt > ul) rc = ORR_ECORRUPT;
  size_t start = out->len;
  if (rc == 0) {
    orr_buf_put_be32(out, (uint32_t)(4 + 4 * cnt));
    orr_buf_put_be32(out, (uint32_t)cnt);
    uint64_t v = 0;
    for (uint64_t i = 0; i < cnt && rc == 0; i++) {
      uint64_t dv;
      if (orr_dec_uvarint(&d, &dv)) rc = ORR_ECORRUPT;
      v += dv;
      orr_buf_put_be32(out, (uint32_t)v);
    }
    if (rc == 0 && !out->oom)
      orr_buf_put_be32(out, orr_crc32c(0, out->data + start + 4, 4 + 4 * cnt));
    if (out->oom) rc = ORR_ENOMEM;
  }
  free(raw);
  return rc;
}

bool store_cache_get(store_cache *c, store_cache_type type, const void *key, size_t klen,
                     orr_buf *out) {
  if (!c || (c->max_bytes <= 0 && !c->mc)) return false;
  if (c->requests[type]) orr_counter_inc(c->requests[type]);
  orr_buf val = {0};
  bool found;
  if (c->mc) {
    found = store_memcached_get(c->mc, type == STORE_CACHE_POSTINGS ? 'P' : 'S', key, klen, &val);
  } else {
    uint64_t h = hash((uint8_t)type, key, klen);
    /* A series entry is copied once, straight to |out|; a postings list
     * is copied out and expanded outside the lock. */
    orr_buf *dst = type == STORE_CACHE_SERIES ? out : &val;
    size_t at = dst->len;
    pthread_mutex_lock(&c->mu);
    item *it = *find_slot(c, (uint8_t)type, h, key, klen);
    if (it) {
      it->ref = true;
      orr_buf_append(dst, it->data + it->klen, it->vlen);
    }
    pthread_mutex_unlock(&c->mu);
    found = it != NULL;
    if (found && dst == out) {
      if (out->oom) {
        out->len = at;
        return false;
      }
      if (c->hits[type]) orr_counter_inc(c->hits[type]);
      return true;
    }
  }
  if (!found || val.oom) {
    orr_buf_free(&val);
    return false;
  }
  bool ok = true;
  if (type == STORE_CACHE_POSTINGS)
    ok = decompress_postings((const uint8_t *)val.data, val.len, out) == 0;
  else
    ok = orr_buf_append(out, val.data, val.len) == 0;
  orr_buf_free(&val);
  if (ok && c->hits[type]) orr_counter_inc(c->hits[type]);
  return ok;
}

/* Keys a batch's lock covers: other queries wait at most this long. */
#define GET_RUN 512
#define PREFETCH_AHEAD 8

size_t store_cache_get_series(store_cache *c, const char *const *keys, const size_t *klens,
                              size_t n, orr_buf *out, size_t *off, size_t *len) {
  for (size_t i = 0; i < n; i++) len[i] = 0;
  if (!c || (c->max_bytes <= 0 && !c->mc)) return 0;
  size_t hits = 0;
  if (c->mc) {
    for (size_t i = 0; i < n; i++) {
      off[i] = out->len;
      if (store_cache_get(c, STORE_CACHE_SERIES, keys[i], klens[i], out)) {
        len[i] = out->len - off[i];
        hits += len[i] > 0;
      }
    }
    return hits;
  }
  uint64_t hs[GET_RUN];
  for (size_t r0 = 0; r0 < n && !out->oom; r0 += GET_RUN) {
    size_t r1 = n - r0 < GET_RUN ? n : r0 + GET_RUN;
    for (size_t i = r0; i < r1; i++) hs[i - r0] = hash(STORE_CACHE_SERIES, keys[i], klens[i]);
    pthread_mutex_lock(&c->mu);
    size_t mask = c->nbuckets - 1;
    for (size_t i = r0; i < r1 && i < r0 + PREFETCH_AHEAD; i++)
      __builtin_prefetch(&c->tab[hs[i - r0] & mask]);
    for (size_t i = r0; i < r1; i++) {
      /* Bucket heads PREFETCH_AHEAD keys on, their first item half as far. */
      if (i + PREFETCH_AHEAD < r1) __builtin_prefetch(&c->tab[hs[i + PREFETCH_AHEAD - r0] & mask]);
      if (i + PREFETCH_AHEAD / 2 < r1) {
        item *ahead = c->tab[hs[i + PREFETCH_AHEAD / 2 - r0] & mask];
        if (ahead) __builtin_prefetch(ahead);
      }
      off[i] = out->len;
      item *it = *find_slot(c, STORE_CACHE_SERIES, hs[i - r0], keys[i], klens[i]);
      if (!it) continue;
      it->ref = true;
      if (orr_buf_append(out, it->data + it->klen, it->vlen)) break;
      len[i] = it->vlen;
      hits += it->vlen > 0;
    }
    pthread_mutex_unlock(&c->mu);
  }
  if (out->oom) { /* the hits so far stay usable; the rest are misses */
    for (size_t i = 0; i < n; i++)
      if (len[i] && off[i] + len[i] > out->len) len[i] = 0;
  }
  if (c->requests[STORE_CACHE_SERIES]) orr_counter_add(c->requests[STORE_CACHE_SERIES], (double)n);
  if (hits && c->hits[STORE_CACHE_SERIES])
    orr_counter_add(c->hits[STORE_CACHE_SERIES], (double)hits);
  return hits;
}

void store_cache_put(store_cache *c, store_cache_type type, const void *key, size_t klen,
                     const void *val, size_t vlen) {
  if (!c || (c->max_bytes <= 0 && !c->mc)) return;
  orr_buf comp = {0};
  if (type == STORE_CACHE_POSTINGS) {
    if (compress_postings(val, vlen, &comp)) {
      orr_buf_free(&comp);
      return;
    }
    val = comp.data;
    vlen = comp.len;
  }
  if (c->mc) {
    store_memcached_set(c->mc, type == STORE_CACHE_POSTINGS ? 'P' : 'S', key, klen, val, vlen);
    if (c->items_added[type]) orr_counter_inc(c->items_added[type]);
    orr_buf_free(&comp);
    return;
  }
  size_t sz = sizeof(item) + klen + vlen;
  if ((int64_t)sz > c->max_bytes / 10) { /* note 3 */
    orr_buf_free(&comp);
    return;
  }
  item *it = malloc(sz);
  if (!it) {
    orr_buf_free(&comp);
    return;
  }
  it->hash = hash((uint8_t)type, key, klen);
  it->type = (uint8_t)type;
  it->ref = false;
  it->klen = klen;
  it->vlen = vlen;
  memcpy(it->data, key, klen);
  memcpy(it->data + klen, val, vlen);
  orr_buf_free(&comp);
  pthread_mutex_lock(&c->mu);
  item **pp = find_slot(c, it->type, it->hash, key, klen);
  if (*pp) remove_item(c, *pp);
  pp = find_slot(c, it->type, it->hash, key, klen);
  while (c->tail && c->bytes + (int64_t)sz > c->max_bytes) {
    item *t = c->tail;
    if (t->ref && t != c->head) { /* note 5: its second chance */
      t->ref = false;
      lru_unlink(c, t);
      lru_push(c, t);
      continue;
    }
    if (c->evicted[c->tail->type]) orr_counter_inc(c->evicted[c->tail->type]);
    remove_item(c, c->tail);
    pp = find_slot(c, it->type, it->hash, key, klen);
  }
  it->hnext = NULL;
  *pp = it;
  lru_push(c, it);
  c->bytes += (int64_t)sz;
  if (++c->nitems > c->nbuckets) grow(c);
  if (c->items_added[type]) orr_counter_inc(c->items_added[type]);
  if (c->size_bytes) orr_gauge_set(c->size_bytes, (double)c->bytes);
  if (c->items_gauge) orr_gauge_set(c->items_gauge, (double)c->nitems);
  pthread_mutex_unlock(&c->mu);
}
