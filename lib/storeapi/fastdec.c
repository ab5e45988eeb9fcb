/* fastdec.c: a hand-written decoder for Thanos__SeriesResponse, the message
 * a gateway's Series calls receive by the thousand. protobuf-c's generic
 * unpack scans each message twice through its descriptors (a fifth of the
 * gateway's instructions at a 1,000-endpoint fan-out), and has_nul_label
 * (client.c) then walked the bytes a third time. This decoder reads the
 * bytes once, by hand, and notes a NUL in a label on the way.
 *
 * Design notes:
 * 1. It builds exactly what protobuf-c's unpack builds: the same structs,
 *    initialised from the generated *__INIT values (so absent strings are
 *    protobuf_c_empty_string, absent bytes {0, NULL}, absent submessages
 *    NULL, unknown_fields empty), every string, bytes buffer, submessage and
 *    repeated array a piece of its own from the caller's allocator, repeated
 *    arrays exactly n pointers long, empty bytes as {0, NULL}, empty strings
 *    as a one-byte piece. protobuf-c's free_unpacked, and every consumer
 *    that takes pieces over, cannot tell the two decoders apart.
 * 2. It handles only the canonical encoding: one-byte tags of known fields
 *    with their proper wire types, each singular field (and the oneof) at
 *    most once, repeated fields in any order. On anything else — a repeated
 *    singular field (protobuf-c merges or replaces), an unknown field, the
 *    oneof's SeriesBatch, a wire type or varint it does not take, a length
 *    past the end, out of memory — it declines: it frees what it built and
 *    returns NULL, and the caller unpacks with protobuf-c, so the answer
 *    for every input is protobuf-c's by construction
 *    (fuzz_storeapi_fastdec checks it).
 * 3. Varints mean what protobuf-c makes of them: 64-bit fields take the
 *    value (orr_dec_uvarint: at most 10 bytes; a tenth byte above 1
 *    overflows and declines),
 *    the enum takes the low 32 bits. Lengths are read as protobuf-c reads
 *    them: at most 5 bytes and INT_MAX.
 * 4. A decoder builds its message so that it is valid for free_unpacked at
 *    every step; on a decline it frees it that way. A Series collects its
 *    labels and chunks in pointer vectors (on the stack while small) and
 *    moves them to exact-size arrays at its end. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storeapi_int.h"

enum { WT_VARINT = 0, WT_LEN = 2 };


typedef struct fd_ctx {
  ProtobufCAllocator *a;
  bool nul; /* a label name or value holds a NUL byte */
} fd_ctx;

/* What protobuf-c uses for a NULL allocator: malloc and free. */
static void *sys_alloc(void *data, size_t n) {
  (void)data;
  return malloc(n);
}

static void sys_free(void *data, void *p) {
  (void)data;
  free(p);
}

static ProtobufCAllocator sys_allocator = {sys_alloc, sys_free, NULL};

static void *fd_alloc(fd_ctx *d, size_t n) { return d->a->alloc(d->a->allocator_data, n); }

/* A one-byte tag: its field number and wire type. */
static bool rd_tag(orr_dec *in, unsigned *field, unsigned *wt) {
  uint8_t b = *in->p;
  if (b & 0x80) return false;
  in->p++;
  *field = b >> 3;
  *wt = b & 7;
  return true;
}

/* |sub| covers the next |n| bytes of |in|, which moves past them. */
static bool rd_span(orr_dec *in, uint64_t n, orr_dec *sub) {
  if (n > INT_MAX || n > (uint64_t)(in->end - in->p)) return false;
  *sub = orr_dec_make(in->p, (size_t)n);
  in->p += n;
  return true;
}

/* A length-delimited field's bytes: |*sub| covers them and |in| moves past. */
static bool rd_len(orr_dec *in, orr_dec *sub) {
  if (in->p < in->end && !(*in->p & 0x80)) return rd_span(in, *in->p++, sub);
  uint64_t n = 0;
  for (unsigned i = 0; i < 5; i++) {
    if (in->p == in->end) return false;
    uint8_t b = *in->p++;
    n |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) return rd_span(in, n, sub);
  }
  return false;
}

/* A string field as protobuf-c keeps it: a NUL-terminated piece. When
 * |nul| is set, a NUL byte inside the string sets it to true. */
static bool dec_string(fd_ctx *d, orr_dec *in, char **out, bool *nul) {
  orr_dec s;
  if (!rd_len(in, &s)) return false;
  size_t n = (size_t)(s.end - s.p);
  char *c = fd_alloc(d, n + 1);
  if (!c) return false;
  memcpy(c, s.p, n);
  c[n] = 0;
  if (nul && !*nul && memchr(c, 0, n)) *nul = true;
  *out = c;
  return true;
}

/* A bytes field as protobuf-c keeps it: {0, NULL} when empty. */
static bool dec_bytes(fd_ctx *d, orr_dec *in, ProtobufCBinaryData *out) {
  orr_dec s;
  if (!rd_len(in, &s)) return false;
  size_t n = (size_t)(s.end - s.p);
  if (n) {
    if (!(out->data = fd_alloc(d, n))) return false;
    memcpy(out->data, s.p, n);
  }
  out->len = n;
  return true;
}

/* Whether field |f| was seen before; marks it seen. */
static bool seen_twice(unsigned *seen, unsigned f) {
  unsigned bit = 1u << f;
  if (*seen & bit) return true;
  *seen |= bit;
  return false;
}

/* ---- Label {string name = 1; string value = 2} */

static bool label_field(fd_ctx *d, orr_dec *in, Thanos__Label *l, unsigned *seen) {
  unsigned f, wt;
  if (!rd_tag(in, &f, &wt) || wt != WT_LEN || (f != 1 && f != 2) || seen_twice(seen, f))
    return false;
  return dec_string(d, in, f == 1 ? &l->name : &l->value, &d->nul);
}

static Thanos__Label *dec_label(fd_ctx *d, orr_dec *in) {
  Thanos__Label *l = fd_alloc(d, sizeof(*l));
  if (!l) return NULL;
  *l = (Thanos__Label)THANOS__LABEL__INIT;
  unsigned seen = 0;
  while (in->p < in->end) {
    if (!label_field(d, in, l, &seen)) {
      thanos__label__free_unpacked(l, d->a);
      return NULL;
    }
  }
  return l;
}

/* ---- Chunk {Encoding type = 1; bytes data = 2; uint64 hash = 3} */

static bool chunk_field(fd_ctx *d, orr_dec *in, Thanos__Chunk *c, unsigned *seen) {
  unsigned f, wt;
  uint64_t v;
  if (!rd_tag(in, &f, &wt) || f < 1 || f > 3 || seen_twice(seen, f)) return false;
  if (f == 2) return wt == WT_LEN && dec_bytes(d, in, &c->data);
  if (wt != WT_VARINT || orr_dec_uvarint(in, &v)) return false;
  if (f == 1)
    c->type = (Thanos__Chunk__Encoding)(int32_t)(uint32_t)v; /* the low 32 bits, as protobuf-c */
  else
    c->hash = v;
  return true;
}

static Thanos__Chunk *dec_chunk(fd_ctx *d, orr_dec *in) {
  Thanos__Chunk *c = fd_alloc(d, sizeof(*c));
  if (!c) return NULL;
  *c = (Thanos__Chunk)THANOS__CHUNK__INIT;
  unsigned seen = 0;
  while (in->p < in->end) {
    if (!chunk_field(d, in, c, &seen)) {
      thanos__chunk__free_unpacked(c, d->a);
      return NULL;
    }
  }
  return c;
}

/* ---- AggrChunk {int64 min_time = 1; int64 max_time = 2; Chunk raw = 3,
 * count = 4, sum = 5, min = 6, max = 7, counter = 8} */

static Thanos__Chunk **aggr_slot(Thanos__AggrChunk *c, unsigned f) {
  switch (f) {
  case 3: return &c->raw;
  case 4: return &c->count;
  case 5: return &c->sum;
  case 6: return &c->min;
  case 7: return &c->max;
  default: return &c->counter;
  }
}

static bool aggr_field(fd_ctx *d, orr_dec *in, Thanos__AggrChunk *c, unsigned *seen) {
  unsigned f, wt;
  uint64_t v;
  if (!rd_tag(in, &f, &wt) || f < 1 || f > 8 || seen_twice(seen, f)) return false;
  if (f <= 2) {
    if (wt != WT_VARINT || orr_dec_uvarint(in, &v)) return false;
    *(f == 1 ? &c->min_time : &c->max_time) = (int64_t)v;
    return true;
  }
  orr_dec sub;
  if (wt != WT_LEN || !rd_len(in, &sub)) return false;
  return (*aggr_slot(c, f) = dec_chunk(d, &sub)) != NULL;
}

static Thanos__AggrChunk *dec_aggr(fd_ctx *d, orr_dec *in) {
  Thanos__AggrChunk *c = fd_alloc(d, sizeof(*c));
  if (!c) return NULL;
  *c = (Thanos__AggrChunk)THANOS__AGGR_CHUNK__INIT;
  unsigned seen = 0;
  while (in->p < in->end) {
    if (!aggr_field(d, in, c, &seen)) {
      thanos__aggr_chunk__free_unpacked(c, d->a);
      return NULL;
    }
  }
  return c;
}

/* ---- Series {repeated Label labels = 1; repeated AggrChunk chunks = 2} */

#define FD_INLINE 32

/* A Series' elements while it is read (note 4). */
typedef struct fd_vec {
  void **v;
  size_t n, cap;
  void *inl[FD_INLINE];
} fd_vec;

static void vec_init(fd_vec *x) {
  x->v = x->inl;
  x->n = 0;
  x->cap = FD_INLINE;
}

static bool vec_push(fd_vec *x, void *e) {
  if (x->n == x->cap) {
    if (x->cap > SIZE_MAX / 2 / sizeof(void *)) return false;
    void **nv = malloc(2 * x->cap * sizeof(void *));
    if (!nv) return false;
    memcpy(nv, x->v, x->n * sizeof(void *));
    if (x->v != x->inl) free(x->v);
    x->v = nv;
    x->cap *= 2;
  }
  x->v[x->n++] = e;
  return true;
}

/* Frees the elements (as messages) and the vector's memory. */
static void vec_drop(fd_ctx *d, fd_vec *x) {
  for (size_t i = 0; i < x->n; i++) protobuf_c_message_free_unpacked(x->v[i], d->a);
  if (x->v != x->inl) free(x->v);
}

/* Moves the elements to an exact-size piece at |*arr| (left NULL when
 * there are none, as protobuf-c leaves it) with their count at |*n|. */
static bool vec_move(fd_ctx *d, fd_vec *x, void ***arr, size_t *n) {
  if (!x->n) return true;
  void **a = fd_alloc(d, x->n * sizeof(void *));
  if (!a) return false;
  memcpy(a, x->v, x->n * sizeof(void *));
  *arr = a;
  *n = x->n;
  if (x->v != x->inl) free(x->v);
  vec_init(x);
  return true;
}

static bool series_field(fd_ctx *d, orr_dec *in, fd_vec *labels, fd_vec *chunks) {
  unsigned f, wt;
  orr_dec sub;
  if (!rd_tag(in, &f, &wt) || wt != WT_LEN || (f != 1 && f != 2) || !rd_len(in, &sub))
    return false;
  void *e = f == 1 ? (void *)dec_label(d, &sub) : (void *)dec_aggr(d, &sub);
  if (!e) return false;
  if (vec_push(f == 1 ? labels : chunks, e)) return true;
  protobuf_c_message_free_unpacked(e, d->a);
  return false;
}

static bool series_body(fd_ctx *d, orr_dec *in, Thanos__Series *s) {
  fd_vec labels, chunks;
  vec_init(&labels);
  vec_init(&chunks);
  bool ok = true;
  while (ok && in->p < in->end) ok = series_field(d, in, &labels, &chunks);
  ok = ok && vec_move(d, &labels, (void ***)&s->labels, &s->n_labels) &&
       vec_move(d, &chunks, (void ***)&s->chunks, &s->n_chunks);
  vec_drop(d, &labels);
  vec_drop(d, &chunks);
  return ok;
}

static Thanos__Series *dec_series(fd_ctx *d, orr_dec *in) {
  Thanos__Series *s = fd_alloc(d, sizeof(*s));
  if (!s) return NULL;
  *s = (Thanos__Series)THANOS__SERIES__INIT;
  if (series_body(d, in, s)) return s;
  thanos__series__free_unpacked(s, d->a);
  return NULL;
}

/* ---- Hints {string type_url = 1; bytes value = 2} */

static bool hints_field(fd_ctx *d, orr_dec *in, Thanos__Hints *h, unsigned *seen) {
  unsigned f, wt;
  if (!rd_tag(in, &f, &wt) || wt != WT_LEN || (f != 1 && f != 2) || seen_twice(seen, f))
    return false;
  return f == 1 ? dec_string(d, in, &h->type_url, NULL) : dec_bytes(d, in, &h->value);
}

static Thanos__Hints *dec_hints(fd_ctx *d, orr_dec *in) {
  Thanos__Hints *h = fd_alloc(d, sizeof(*h));
  if (!h) return NULL;
  *h = (Thanos__Hints)THANOS__HINTS__INIT;
  unsigned seen = 0;
  while (in->p < in->end) {
    if (!hints_field(d, in, h, &seen)) {
      thanos__hints__free_unpacked(h, d->a);
      return NULL;
    }
  }
  return h;
}

/* ---- SeriesResponse {oneof result {Series series = 1; string warning = 2;
 * Hints hints = 3; SeriesBatch batch = 4}}: batch declines. */

static bool response_field(fd_ctx *d, orr_dec *in, Thanos__SeriesResponse *r) {
  unsigned f, wt;
  orr_dec sub;
  if (!rd_tag(in, &f, &wt) || wt != WT_LEN || f < 1 || f > 3 ||
      r->result_case != THANOS__SERIES_RESPONSE__RESULT__NOT_SET)
    return false;
  if (f == 2) {
    if (!dec_string(d, in, &r->warning, NULL)) return false;
  } else {
    if (!rd_len(in, &sub)) return false;
    if (f == 1 ? !(r->series = dec_series(d, &sub)) : !(r->hints = dec_hints(d, &sub)))
      return false;
  }
  r->result_case = (Thanos__SeriesResponse__ResultCase)f;
  return true;
}

Thanos__SeriesResponse *storeapi__series_response_fast(ProtobufCAllocator *a,
                                                       const uint8_t *msg, size_t len,
                                                       bool *nul) {
  if (!a) a = &sys_allocator;
  fd_ctx d = {a, false};
  orr_dec in = orr_dec_make(msg, len);
  Thanos__SeriesResponse *r = fd_alloc(&d, sizeof(*r));
  if (!r) return NULL;
  *r = (Thanos__SeriesResponse)THANOS__SERIES_RESPONSE__INIT;
  while (in.p < in.end) {
    if (!response_field(&d, &in, r)) {
      thanos__series_response__free_unpacked(r, a);
      return NULL;
    }
  }
  *nul = d.nul;
  return r;
}
