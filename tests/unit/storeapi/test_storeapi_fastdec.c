/* test_storeapi_fastdec.c: the fast SeriesResponse decoder (fastdec.c)
 * gives what protobuf-c's unpack gives — the same structs field by field,
 * the same pieces (count and bytes) from the caller's allocator — or
 * declines, and then storeapi__series_response_decode (what a Series call
 * uses) still gives protobuf-c's answer. A NUL in a label is flagged on
 * either path; truncated input is rejected without a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pbc_same.h"
#include "storeapi_int.h"

/* ---- an allocator that counts the pieces and bytes alive */
typedef struct counted {
  ProtobufCAllocator a;
  long pieces, bytes;
} counted;

static void *cnt_alloc(void *data, size_t n) {
  counted *c = data;
  size_t *p = malloc(sizeof(size_t) * 2 + n);
  if (!p) return NULL;
  p[0] = n;
  c->pieces++;
  c->bytes += (long)n;
  return p + 2;
}

static void cnt_free(void *data, void *q) {
  counted *c = data;
  if (!q) return;
  size_t *p = (size_t *)q - 2;
  c->pieces--;
  c->bytes -= (long)p[0];
  free(p);
}

static void cnt_init(counted *c) {
  c->a.alloc = cnt_alloc;
  c->a.free = cnt_free;
  c->a.allocator_data = c;
  c->pieces = c->bytes = 0;
}

/* ---- helpers */
typedef struct buf {
  uint8_t *p;
  size_t n;
} buf;

static buf pack(const Thanos__SeriesResponse *r) {
  buf b;
  b.n = thanos__series_response__get_packed_size(r);
  b.p = malloc(b.n ? b.n : 1);
  assert_non_null(b.p);
  thanos__series_response__pack(r, b.p);
  return b;
}

/* Decodes |b| both ways with counted allocators: the fast decoder must
 * succeed exactly when |fast| is set and then match protobuf-c in fields,
 * pieces and bytes. Returns protobuf-c's message (malloc'd; caller frees
 * with thanos__series_response__free_unpacked(NULL)) and the NUL verdict. */
static Thanos__SeriesResponse *both(buf b, bool fast, bool *nul) {
  counted cf, cr;
  cnt_init(&cf);
  cnt_init(&cr);
  bool n = false;
  Thanos__SeriesResponse *f = storeapi__series_response_fast(&cf.a, b.p, b.n, &n);
  Thanos__SeriesResponse *r = thanos__series_response__unpack(&cr.a, b.n, b.p);
  assert_non_null(r);
  if (fast) {
    assert_non_null(f);
    assert_true(pbc_same(&f->base, &r->base));
    assert_int_equal(cf.pieces, cr.pieces);
    assert_int_equal(cf.bytes, cr.bytes);
    thanos__series_response__free_unpacked(f, &cf.a);
  } else {
    assert_null(f);
  }
  assert_int_equal(cf.pieces, 0); /* nothing left behind, declined or freed */
  thanos__series_response__free_unpacked(r, &cr.a);
  assert_int_equal(cr.pieces, 0);
  /* What a Series call makes of it, through the fallback when declined. */
  Thanos__SeriesResponse *d = storeapi__series_response_decode(NULL, b.p, b.n, nul);
  assert_non_null(d);
  Thanos__SeriesResponse *ref = thanos__series_response__unpack(NULL, b.n, b.p);
  assert_true(pbc_same(&d->base, &ref->base));
  thanos__series_response__free_unpacked(ref, NULL);
  return d;
}

static Thanos__Chunk mk_chunk(int type, const char *data, size_t len, uint64_t hash) {
  Thanos__Chunk c = THANOS__CHUNK__INIT;
  c.type = type;
  c.data.data = (uint8_t *)data;
  c.data.len = len;
  c.hash = hash;
  return c;
}

/* ---- tests */
static void test_typical_series(void **state) {
  (void)state;
  Thanos__Label l[3] = {THANOS__LABEL__INIT, THANOS__LABEL__INIT, THANOS__LABEL__INIT};
  l[0].name = "__name__", l[0].value = "up";
  l[1].name = "instance", l[1].value = "a:9090";
  l[2].name = "job", l[2].value = "node";
  Thanos__Label *lp[3] = {&l[0], &l[1], &l[2]};
  Thanos__Chunk raw0 = mk_chunk(0, "\x00\x01\x02\x03", 4, 0xdeadbeefcafe1234u);
  Thanos__Chunk raw1 = mk_chunk(0, "\x05\x06", 2, UINT64_MAX);
  Thanos__AggrChunk c[2] = {THANOS__AGGR_CHUNK__INIT, THANOS__AGGR_CHUNK__INIT};
  c[0].min_time = 1000, c[0].max_time = 60000, c[0].raw = &raw0;
  c[1].min_time = 60001, c[1].max_time = 120000, c[1].raw = &raw1;
  Thanos__AggrChunk *cp[2] = {&c[0], &c[1]};
  Thanos__Series s = THANOS__SERIES__INIT;
  s.n_labels = 3, s.labels = lp, s.n_chunks = 2, s.chunks = cp;
  Thanos__SeriesResponse r = THANOS__SERIES_RESPONSE__INIT;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_SERIES, r.series = &s;
  buf b = pack(&r);
  bool nul = true;
  Thanos__SeriesResponse *d = both(b, true, &nul);
  assert_false(nul);
  assert_int_equal(d->result_case, THANOS__SERIES_RESPONSE__RESULT_SERIES);
  assert_int_equal(d->series->n_labels, 3);
  assert_string_equal(d->series->labels[1]->value, "a:9090");
  assert_int_equal(d->series->n_chunks, 2);
  assert_int_equal(d->series->chunks[1]->max_time, 120000);
  assert_true(d->series->chunks[0]->raw->hash == 0xdeadbeefcafe1234u);
  assert_true(d->series->chunks[1]->raw->hash == UINT64_MAX);
  assert_memory_equal(d->series->chunks[0]->raw->data.data, "\x00\x01\x02\x03", 4);
  assert_null(d->series->chunks[0]->count);
  thanos__series_response__free_unpacked(d, NULL);
  free(b.p);
}

static void test_aggr_chunks(void **state) {
  (void)state;
  Thanos__Label l = THANOS__LABEL__INIT;
  l.name = "job", l.value = "x";
  Thanos__Label *lp = &l;
  Thanos__Chunk cnt = mk_chunk(0, "\x01", 1, 0), sum = mk_chunk(0, "\x02\x02", 2, 0),
                mn = mk_chunk(0, "\x03", 1, 0), mx = mk_chunk(0, "\x04", 1, 0),
                ctr = mk_chunk(0, "\x05", 1, 9), hist = mk_chunk(2, "\x06", 1, 0);
  Thanos__AggrChunk c[2] = {THANOS__AGGR_CHUNK__INIT, THANOS__AGGR_CHUNK__INIT};
  c[0].min_time = -3600000, c[0].max_time = 7200000;
  c[0].count = &cnt, c[0].sum = &sum, c[0].min = &mn, c[0].max = &mx, c[0].counter = &ctr;
  c[1].raw = &hist;
  Thanos__AggrChunk *cp[2] = {&c[0], &c[1]};
  Thanos__Series s = THANOS__SERIES__INIT;
  s.n_labels = 1, s.labels = &lp, s.n_chunks = 2, s.chunks = cp;
  Thanos__SeriesResponse r = THANOS__SERIES_RESPONSE__INIT;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_SERIES, r.series = &s;
  buf b = pack(&r);
  bool nul;
  Thanos__SeriesResponse *d = both(b, true, &nul);
  Thanos__AggrChunk *a = d->series->chunks[0];
  assert_int_equal(a->min_time, -3600000);
  assert_null(a->raw);
  assert_int_equal(a->sum->data.len, 2);
  assert_int_equal(a->counter->hash, 9);
  assert_int_equal(d->series->chunks[1]->raw->type, THANOS__CHUNK__ENCODING__FLOAT_HISTOGRAM);
  assert_int_equal(d->series->chunks[1]->min_time, 0);
  thanos__series_response__free_unpacked(d, NULL);
  free(b.p);
}

static void test_warning_and_hints(void **state) {
  (void)state;
  Thanos__SeriesResponse r = THANOS__SERIES_RESPONSE__INIT;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_WARNING, r.warning = "store a: partial";
  buf b = pack(&r);
  bool nul;
  Thanos__SeriesResponse *d = both(b, true, &nul);
  assert_false(nul);
  assert_int_equal(d->result_case, THANOS__SERIES_RESPONSE__RESULT_WARNING);
  assert_string_equal(d->warning, "store a: partial");
  thanos__series_response__free_unpacked(d, NULL);
  free(b.p);

  Thanos__Hints h = THANOS__HINTS__INIT;
  h.type_url = "type.googleapis.com/thanos.store.SeriesResponseHints";
  h.value.data = (uint8_t *)"\x0a\x01x", h.value.len = 3;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_HINTS, r.hints = &h;
  b = pack(&r);
  d = both(b, true, &nul);
  assert_int_equal(d->result_case, THANOS__SERIES_RESPONSE__RESULT_HINTS);
  assert_int_equal(d->hints->value.len, 3);
  thanos__series_response__free_unpacked(d, NULL);
  free(b.p);

  /* Hints with nothing set, and a warning that is empty on the wire. */
  static const uint8_t empty_hints[] = {0x1a, 0x00}, empty_warning[] = {0x12, 0x00};
  d = both((buf){(uint8_t *)empty_hints, 2}, true, &nul);
  assert_ptr_equal(d->hints->type_url, protobuf_c_empty_string);
  assert_null(d->hints->value.data);
  thanos__series_response__free_unpacked(d, NULL);
  d = both((buf){(uint8_t *)empty_warning, 2}, true, &nul);
  assert_string_equal(d->warning, "");
  thanos__series_response__free_unpacked(d, NULL);
  /* An empty message: no result. */
  d = both((buf){(uint8_t *)"", 0}, true, &nul);
  assert_int_equal(d->result_case, THANOS__SERIES_RESPONSE__RESULT__NOT_SET);
  thanos__series_response__free_unpacked(d, NULL);
}

static void test_empty_labels(void **state) {
  (void)state;
  /* series { labels {name "a" value ""} labels {value "v"} labels {}
   *          chunks {raw {data ""}} }: strings present but empty are pieces
   * of their own, absent ones protobuf_c_empty_string, empty bytes NULL. */
  static const uint8_t m[] = {0x0a, 0x16, 0x0a, 0x05, 0x0a, 0x01, 'a',  0x12,
                              0x00, 0x0a, 0x03, 0x12, 0x01, 'v',  0x0a, 0x00,
                              0x12, 0x06, 0x1a, 0x04, 0x12, 0x00, 0x12, 0x00};
  static const uint8_t fixed[] = {0x0a, 0x14, 0x0a, 0x05, 0x0a, 0x01, 'a', 0x12,
                                  0x00, 0x0a, 0x03, 0x12, 0x01, 'v',  0x0a, 0x00,
                                  0x12, 0x04, 0x1a, 0x02, 0x12, 0x00};
  bool nul;
  Thanos__SeriesResponse *d = both((buf){(uint8_t *)fixed, sizeof(fixed)}, true, &nul);
  Thanos__Series *s = d->series;
  assert_int_equal(s->n_labels, 3);
  assert_string_equal(s->labels[0]->value, "");
  assert_ptr_not_equal(s->labels[0]->value, protobuf_c_empty_string);
  assert_ptr_equal(s->labels[1]->name, protobuf_c_empty_string);
  assert_ptr_equal(s->labels[2]->name, protobuf_c_empty_string);
  assert_ptr_equal(s->labels[2]->value, protobuf_c_empty_string);
  assert_null(s->chunks[0]->raw->data.data);
  assert_int_equal(s->chunks[0]->raw->data.len, 0);
  thanos__series_response__free_unpacked(d, NULL);
  /* The same with a field the chunk does not have (field 2 of Chunk given
   * twice): declined, protobuf-c's answer still. */
  d = both((buf){(uint8_t *)m, sizeof(m)}, false, &nul);
  thanos__series_response__free_unpacked(d, NULL);
  /* A Series with no labels and no chunks: arrays NULL. */
  static const uint8_t bare[] = {0x0a, 0x00};
  d = both((buf){(uint8_t *)bare, 2}, true, &nul);
  assert_null(d->series->labels);
  assert_null(d->series->chunks);
  thanos__series_response__free_unpacked(d, NULL);
}

static void test_nul_label(void **state) {
  (void)state;
  /* series { labels {name "job" value "a\0b"} } */
  static const uint8_t m[] = {0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x03, 'j', 'o',
                              'b',  0x12, 0x03, 'a',  0x00, 'b'};
  bool nul = false;
  Thanos__SeriesResponse *d = both((buf){(uint8_t *)m, sizeof(m)}, true, &nul);
  assert_true(nul); /* series_msg refuses it: "a label name or value holds a NUL byte" */
  thanos__series_response__free_unpacked(d, NULL);
  /* A NUL in the name, on the fallback path (the name given twice). */
  static const uint8_t m2[] = {0x0a, 0x0b, 0x0a, 0x09, 0x0a, 0x01, 'x',
                               0x0a, 0x02, 'a',  0x00, 0x12, 0x00};
  nul = false;
  d = both((buf){(uint8_t *)m2, sizeof(m2)}, false, &nul);
  assert_true(nul);
  thanos__series_response__free_unpacked(d, NULL);
  /* NULs outside labels are no label's: chunk data, a warning. */
  static const uint8_t m3[] = {0x0a, 0x08, 0x12, 0x06, 0x1a, 0x04, 0x12, 0x02, 0x00, 0x00};
  d = both((buf){(uint8_t *)m3, sizeof(m3)}, true, &nul);
  assert_false(nul);
  thanos__series_response__free_unpacked(d, NULL);
  static const uint8_t m4[] = {0x12, 0x02, 'a', 0x00};
  d = both((buf){(uint8_t *)m4, sizeof(m4)}, true, &nul);
  assert_false(nul);
  thanos__series_response__free_unpacked(d, NULL);
}

static void test_duplicates_decline(void **state) {
  (void)state;
  bool nul;
  /* Label.name twice: protobuf-c keeps the last. */
  static const uint8_t name2[] = {0x0a, 0x0d, 0x0a, 0x0b, 0x0a, 0x01, 'a', 0x0a,
                                  0x01, 'b',  0x12, 0x03, 'v',  'v',  'v'};
  Thanos__SeriesResponse *d = both((buf){(uint8_t *)name2, sizeof(name2)}, false, &nul);
  assert_string_equal(d->series->labels[0]->name, "b");
  thanos__series_response__free_unpacked(d, NULL);
  /* AggrChunk.raw twice: protobuf-c merges the two. */
  static const uint8_t raw2[] = {0x0a, 0x10, 0x12, 0x0e, 0x1a, 0x05, 0x12, 0x01, 0x01,
                                 0x18, 0x07, 0x1a, 0x05, 0x12, 0x01, 0x02, 0x08, 0x01};
  d = both((buf){(uint8_t *)raw2, sizeof(raw2)}, false, &nul);
  assert_int_equal(d->series->chunks[0]->raw->data.data[0], 2);
  assert_int_equal(d->series->chunks[0]->raw->type, 1);
  thanos__series_response__free_unpacked(d, NULL);
  /* The oneof twice (a warning, then a series): protobuf-c keeps the last. */
  static const uint8_t oneof2[] = {0x12, 0x01, 'w', 0x0a, 0x00};
  d = both((buf){(uint8_t *)oneof2, sizeof(oneof2)}, false, &nul);
  assert_int_equal(d->result_case, THANOS__SERIES_RESPONSE__RESULT_SERIES);
  thanos__series_response__free_unpacked(d, NULL);
  /* A varint singular twice (AggrChunk.min_time), an unknown field, a
   * SeriesBatch, a two-byte tag: all declined, protobuf-c decides. */
  static const uint8_t mint2[] = {0x0a, 0x06, 0x12, 0x04, 0x08, 0x01, 0x08, 0x02};
  d = both((buf){(uint8_t *)mint2, sizeof(mint2)}, false, &nul);
  assert_int_equal(d->series->chunks[0]->min_time, 2);
  thanos__series_response__free_unpacked(d, NULL);
  static const uint8_t unknown[] = {0x0a, 0x00, 0x48, 0x05};
  d = both((buf){(uint8_t *)unknown, sizeof(unknown)}, false, &nul);
  assert_int_equal(d->base.n_unknown_fields, 1);
  thanos__series_response__free_unpacked(d, NULL);
  static const uint8_t batch[] = {0x22, 0x02, 0x0a, 0x00};
  d = both((buf){(uint8_t *)batch, sizeof(batch)}, false, &nul);
  assert_int_equal(d->result_case, THANOS__SERIES_RESPONSE__RESULT_BATCH);
  thanos__series_response__free_unpacked(d, NULL);
  static const uint8_t longtag[] = {0x8a, 0x00, 0x00};
  d = both((buf){(uint8_t *)longtag, sizeof(longtag)}, false, &nul);
  assert_int_equal(d->result_case, THANOS__SERIES_RESPONSE__RESULT_SERIES);
  thanos__series_response__free_unpacked(d, NULL);
}

/* More labels and chunks than a Series' vectors hold inline (note 4). */
static void test_many(void **state) {
  (void)state;
  enum { N = 100 };
  Thanos__Label l[N], *lp[N];
  Thanos__Chunk raw[N];
  Thanos__AggrChunk c[N], *cp[N];
  char names[N][8];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof(names[i]), "l%03d", i);
    l[i] = (Thanos__Label)THANOS__LABEL__INIT;
    l[i].name = names[i], l[i].value = i % 3 ? names[i] : "";
    lp[i] = &l[i];
    raw[i] = mk_chunk(0, names[i], 4, (uint64_t)i);
    c[i] = (Thanos__AggrChunk)THANOS__AGGR_CHUNK__INIT;
    c[i].min_time = i * 1000, c[i].max_time = i * 1000 + 999, c[i].raw = &raw[i];
    cp[i] = &c[i];
  }
  Thanos__Series s = THANOS__SERIES__INIT;
  s.n_labels = N, s.labels = lp, s.n_chunks = N, s.chunks = cp;
  Thanos__SeriesResponse r = THANOS__SERIES_RESPONSE__INIT;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_SERIES, r.series = &s;
  buf b = pack(&r);
  bool nul;
  Thanos__SeriesResponse *d = both(b, true, &nul);
  assert_int_equal(d->series->n_labels, N);
  assert_string_equal(d->series->labels[N - 1]->name, "l099");
  assert_int_equal(d->series->chunks[N - 1]->raw->hash, N - 1);
  thanos__series_response__free_unpacked(d, NULL);
  /* A bad last chunk: the vectors' elements are freed on the decline. */
  b.p[b.n - 1] = 0x80;
  counted cf;
  cnt_init(&cf);
  assert_null(storeapi__series_response_fast(&cf.a, b.p, b.n, &nul));
  assert_int_equal(cf.pieces, 0);
  free(b.p);
}

static void test_truncated(void **state) {
  (void)state;
  Thanos__Label l = THANOS__LABEL__INIT;
  l.name = "instance", l.value = "host:9100";
  Thanos__Label *lp = &l;
  Thanos__Chunk raw = mk_chunk(0, "\x01\x02\x03\x04\x05\x06\x07\x08", 8, (uint64_t)1 << 40);
  Thanos__AggrChunk c = THANOS__AGGR_CHUNK__INIT;
  c.min_time = 1, c.max_time = 1700000000000, c.raw = &raw;
  Thanos__AggrChunk *cp = &c;
  Thanos__Series s = THANOS__SERIES__INIT;
  s.n_labels = 1, s.labels = &lp, s.n_chunks = 1, s.chunks = &cp;
  Thanos__SeriesResponse r = THANOS__SERIES_RESPONSE__INIT;
  r.result_case = THANOS__SERIES_RESPONSE__RESULT_SERIES, r.series = &s;
  buf b = pack(&r);
  for (size_t n = 1; n < b.n; n++) {
    counted cf;
    cnt_init(&cf);
    bool nul = false;
    /* Every proper prefix cuts the outer series field: both reject it. */
    assert_null(storeapi__series_response_fast(&cf.a, b.p, n, &nul));
    assert_int_equal(cf.pieces, 0);
    assert_null(storeapi__series_response_decode(NULL, b.p, n, &nul));
    /* Inside, every prefix of the series' body is a message or garbage. */
    buf in = {b.p + 2, n > 2 ? n - 2 : 0};
    Thanos__SeriesResponse *f = storeapi__series_response_fast(&cf.a, in.p, in.n, &nul);
    Thanos__SeriesResponse *p = thanos__series_response__unpack(NULL, in.n, in.p);
    if (f) {
      assert_non_null(p);
      assert_true(pbc_same(&f->base, &p->base));
      thanos__series_response__free_unpacked(f, &cf.a);
    }
    if (p) thanos__series_response__free_unpacked(p, NULL);
    assert_int_equal(cf.pieces, 0);
  }
  free(b.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_typical_series), cmocka_unit_test(test_aggr_chunks),
      cmocka_unit_test(test_warning_and_hints), cmocka_unit_test(test_empty_labels),
      cmocka_unit_test(test_nul_label), cmocka_unit_test(test_duplicates_decline),
      cmocka_unit_test(test_many),        cmocka_unit_test(test_truncated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
