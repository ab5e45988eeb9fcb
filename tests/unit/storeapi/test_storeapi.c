/* test_storeapi.c: StoreAPI conversions, the remote-read frame reader
 * (pieces, CRC mismatch, truncation, limits), the ReadRequest encoding and
 * the k-way merge with identical-chunk dedup — all without I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <snappy-c.h>

#include "storeapi.h"

/* ---------------------------------------------------------------- conversions */
static void test_matchers_from_proto(void **state) {
  orr_arena *a = orr_arena_new(0);
  Thanos__LabelMatcher m1 = THANOS__LABEL_MATCHER__INIT, m2 = THANOS__LABEL_MATCHER__INIT;
  m1.type = THANOS__LABEL_MATCHER__TYPE__EQ, m1.name = "__name__", m1.value = "up";
  m2.type = THANOS__LABEL_MATCHER__TYPE__RE, m2.name = "job", m2.value = "a|b";
  Thanos__LabelMatcher *pm[2] = {&m1, &m2};
  labels_matcher **ms;
  char err[256] = "";
  assert_int_equal(storeapi_matchers_from_proto(pm, 2, a, &ms, err, sizeof(err)), 0);
  assert_int_equal(labels_matcher_type(ms[1]), LABELS_MATCH_RE);
  assert_true(labels_matcher_matches(ms[1], "b", 1));
  assert_false(labels_matcher_matches(ms[1], "ab", 2)); /* anchored */
  Thanos__LabelMatcher **back;
  assert_int_equal(storeapi_matchers_to_proto(ms, 2, a, &back), 0);
  assert_string_equal(back[1]->value, "a|b");
  assert_int_equal(back[1]->type, THANOS__LABEL_MATCHER__TYPE__RE);
  storeapi_matchers_free(ms, 2);

  m2.value = "(";
  assert_int_equal(storeapi_matchers_from_proto(pm, 2, a, &ms, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "bad matcher job=~\"(\""));
  assert_non_null(strstr(err, "missing closing )"));
  m2.value = "x";
  m2.type = (Thanos__LabelMatcher__Type)7;
  assert_int_equal(storeapi_matchers_from_proto(pm, 2, a, &ms, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "unrecognized label matcher type 7"));
  orr_arena_destroy(a);
}

static void test_labels_extend(void **state) {
  orr_arena *a = orr_arena_new(0);
  labels_label sv[] = {{"__name__", "up"}, {"job", "x"}, {"region", "series"}};
  labels_label ev[] = {{"region", "eu"}, {"replica", "a"}};
  labels_set s = {sv, 3}, e = {ev, 2}, out;
  assert_int_equal(storeapi_labels_extend(&s, &e, NULL, 0, a, &out), 0);
  orr_buf b = {0};
  labels_format(&out, &b);
  /* External labels win over a series label of the same name. */
  assert_string_equal(b.data, "up{job=\"x\", region=\"eu\", replica=\"a\"}");
  char *drop[] = {"replica"};
  assert_int_equal(storeapi_labels_extend(&s, &e, drop, 1, a, &out), 0);
  orr_buf_reset(&b);
  labels_format(&out, &b);
  assert_string_equal(b.data, "up{job=\"x\", region=\"eu\"}");
  orr_buf_free(&b);
  orr_arena_destroy(a);
}

static void test_series_from_chunked(void **state) {
  orr_arena *a = orr_arena_new(0);
  Prometheus__Label l1 = PROMETHEUS__LABEL__INIT, l2 = PROMETHEUS__LABEL__INIT;
  l1.name = "job", l1.value = "x";
  l2.name = "__name__", l2.value = "up"; /* unsorted on purpose */
  Prometheus__Label *pl[] = {&l1, &l2};
  Prometheus__Chunk c = PROMETHEUS__CHUNK__INIT;
  uint8_t bytes[] = {0, 1, 2, 3};
  c.min_time_ms = 10, c.max_time_ms = 20, c.type = PROMETHEUS__CHUNK__ENCODING__XOR;
  c.data.data = bytes, c.data.len = 4;
  Prometheus__Chunk *pc[] = {&c};
  Prometheus__ChunkedSeries cs = PROMETHEUS__CHUNKED_SERIES__INIT;
  cs.labels = pl, cs.n_labels = 2, cs.chunks = pc, cs.n_chunks = 1;
  labels_label ev[] = {{"region", "eu"}};
  labels_set e = {ev, 1};
  Thanos__Series s;
  assert_int_equal(storeapi_series_from_chunked(&cs, &e, NULL, 0, a, &s), 0);
  assert_int_equal(s.n_labels, 3);
  assert_string_equal(s.labels[0]->name, "__name__");
  assert_string_equal(s.labels[1]->name, "job");
  assert_string_equal(s.labels[2]->value, "eu");
  assert_int_equal(s.n_chunks, 1);
  assert_int_equal(s.chunks[0]->raw->type, THANOS__CHUNK__ENCODING__XOR);
  assert_ptr_equal(s.chunks[0]->raw->data.data, bytes); /* passed through */
  assert_int_equal(s.chunks[0]->min_time, 10);
  assert_int_equal(s.chunks[0]->max_time, 20);
  c.type = PROMETHEUS__CHUNK__ENCODING__UNKNOWN;
  assert_int_equal(storeapi_series_from_chunked(&cs, &e, NULL, 0, a, &s), ORR_EUNSUPPORTED);
  orr_arena_destroy(a);
}

/* ---------------------------------------------------------------- frames */
static void put_frame(orr_buf *b, const void *data, size_t n) {
  orr_buf_put_uvarint(b, n);
  orr_buf_put_be32(b, orr_crc32c(0, data, n));
  orr_buf_append(b, data, n);
}

/* Feeds |b| in pieces of |piece| bytes; collects frames into |out| joined by '|'. */
static int feed_all(const orr_buf *b, size_t piece, orr_buf *out, storeapi_frames *f) {
  size_t off = 0;
  while (off < b->len) {
    size_t n = b->len - off < piece ? b->len - off : piece;
    const uint8_t *p = (const uint8_t *)b->data + off;
    while (n > 0) {
      size_t used;
      const uint8_t *fr;
      size_t flen;
      int rc = storeapi_frames_feed(f, p, n, &used, &fr, &flen);
      if (rc) return rc;
      p += used, n -= used, off += used;
      if (fr) {
        orr_buf_append(out, fr, flen);
        orr_buf_putc(out, '|');
      }
    }
  }
  return storeapi_frames_end(f);
}

static void test_frames_pieces(void **state) {
  orr_buf b = {0};
  char big[300];
  memset(big, 'z', sizeof(big));
  put_frame(&b, "hello", 5);
  put_frame(&b, "", 0);
  put_frame(&b, big, sizeof(big)); /* two-byte varint */
  put_frame(&b, "end", 3);
  size_t pieces[] = {1, 2, 3, 7, 64, 100000};
  for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
    storeapi_frames f;
    storeapi_frames_init(&f, 0);
    orr_buf out = {0};
    assert_int_equal(feed_all(&b, pieces[i], &out, &f), 0);
    assert_int_equal(out.len, 5 + 1 + 0 + 1 + 300 + 1 + 3 + 1);
    assert_memory_equal(out.data, "hello||", 7);
    assert_memory_equal(out.data + out.len - 4, "end|", 4);
    orr_buf_free(&out);
    storeapi_frames_free(&f);
  }
  orr_buf_free(&b);
}

static void test_frames_errors(void **state) {
  orr_buf b = {0}, out = {0};
  storeapi_frames f;
  /* CRC mismatch. */
  put_frame(&b, "hello", 5);
  b.data[b.len - 1] ^= 1;
  storeapi_frames_init(&f, 0);
  assert_int_equal(feed_all(&b, 3, &out, &f), ORR_ECORRUPT);
  assert_string_equal(f.errmsg, "remote read frame: CRC32 mismatch");
  /* Errors latch. */
  size_t used;
  const uint8_t *fr;
  size_t flen;
  assert_int_equal(storeapi_frames_feed(&f, (const uint8_t *)"x", 1, &used, &fr, &flen), ORR_ECORRUPT);
  storeapi_frames_free(&f);

  /* Truncated in the data, in the CRC and in the varint (the first frame
   * takes 7 bytes, the second's varint 2 and its CRC 4). */
  for (size_t i = 0; i < 3; i++) {
    orr_buf_reset(&b);
    put_frame(&b, "ok", 2);
    char big[200] = {0};
    put_frame(&b, big, sizeof(big));
    size_t full = b.len;
    b.len = i == 0 ? full - 3 : i == 1 ? 10 : 8;
    storeapi_frames_init(&f, 0);
    orr_buf_reset(&out);
    assert_int_equal(feed_all(&b, 4, &out, &f), ORR_ECORRUPT);
    assert_string_equal(f.errmsg, "remote read: truncated frame at end of body");
    assert_memory_equal(out.data, "ok|", 3); /* the whole first frame came out */
    storeapi_frames_free(&f);
  }

  /* Over the limit. */
  orr_buf_reset(&b);
  put_frame(&b, "0123456789", 10);
  storeapi_frames_init(&f, 8);
  assert_int_equal(feed_all(&b, 100, &out, &f), ORR_ELIMIT);
  storeapi_frames_free(&f);

  /* A varint longer than 10 bytes. */
  orr_buf_reset(&b);
  for (int i = 0; i < 11; i++) orr_buf_putc(&b, (char)0xff);
  storeapi_frames_init(&f, 0);
  assert_int_equal(feed_all(&b, 100, &out, &f), ORR_ECORRUPT);
  assert_string_equal(f.errmsg, "remote read frame: bad length varint");
  storeapi_frames_free(&f);
  orr_buf_free(&b);
  orr_buf_free(&out);
}

static void test_read_request(void **state) {
  char err[128];
  labels_matcher *ms[2] = {labels_matcher_new(LABELS_MATCH_EQ, "__name__", "up", err, sizeof(err)),
                           labels_matcher_new(LABELS_MATCH_NRE, "job", "a.*", err, sizeof(err))};
  orr_buf b = {0};
  assert_int_equal(storeapi_remote_read_request(1000, 2000, ms, 2, &b), 0);
  size_t ulen;
  assert_int_equal(snappy_uncompressed_length(b.data, b.len, &ulen), SNAPPY_OK);
  char *raw = malloc(ulen);
  assert_int_equal(snappy_uncompress(b.data, b.len, raw, &ulen), SNAPPY_OK);
  Prometheus__ReadRequest *rr = prometheus__read_request__unpack(NULL, ulen, (uint8_t *)raw);
  assert_non_null(rr);
  assert_int_equal(rr->n_queries, 1);
  assert_int_equal(rr->queries[0]->start_timestamp_ms, 1000);
  assert_int_equal(rr->queries[0]->end_timestamp_ms, 2000);
  assert_int_equal(rr->queries[0]->n_matchers, 2);
  assert_int_equal(rr->queries[0]->matchers[1]->type, PROMETHEUS__LABEL_MATCHER__TYPE__NRE);
  assert_string_equal(rr->queries[0]->matchers[1]->value, "a.*");
  assert_int_equal(rr->n_accepted_response_types, 1);
  assert_int_equal(rr->accepted_response_types[0],
                   PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS);
  prometheus__read_request__free_unpacked(rr, NULL);
  free(raw);
  orr_buf_free(&b);
  labels_matcher_free(ms[0]);
  labels_matcher_free(ms[1]);
}

/* ---------------------------------------------------------------- merge */
/* A heap-allocated series as the client would unpack it: labels "k=v,..." and
 * chunks "min:max:data;...". */
static Thanos__Series *mk(const char *labels, const char *chunks) {
  Thanos__Series s = THANOS__SERIES__INIT;
  Thanos__Label lv[8], *lp[8];
  char lb[256];
  snprintf(lb, sizeof(lb), "%s", labels);
  for (char *save, *t = strtok_r(lb, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(t, '=');
    *eq = 0;
    thanos__label__init(&lv[s.n_labels]);
    lv[s.n_labels].name = t;
    lv[s.n_labels].value = eq + 1;
    lp[s.n_labels] = &lv[s.n_labels];
    s.n_labels++;
  }
  s.labels = lp;
  Thanos__AggrChunk av[8], *ap[8];
  Thanos__Chunk cv[8];
  char cb[256];
  snprintf(cb, sizeof(cb), "%s", chunks);
  for (char *save, *t = strtok_r(cb, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
    size_t i = s.n_chunks++;
    thanos__aggr_chunk__init(&av[i]);
    thanos__chunk__init(&cv[i]);
    char data[32];
    long long mn, mx;
    sscanf(t, "%lld:%lld:%31s", &mn, &mx, data);
    av[i].min_time = mn, av[i].max_time = mx;
    cv[i].data.data = (uint8_t *)strdup(data);
    cv[i].data.len = strlen(data);
    av[i].raw = &cv[i];
    ap[i] = &av[i];
  }
  s.chunks = ap;
  /* Round trip through the wire so the result is one heap message. */
  size_t n = thanos__series__get_packed_size(&s);
  uint8_t *buf = malloc(n + 1);
  thanos__series__pack(&s, buf);
  Thanos__Series *out = thanos__series__unpack(NULL, n, buf);
  free(buf);
  for (size_t i = 0; i < s.n_chunks; i++) free(cv[i].data.data);
  return out;
}

static char *fmt_merged(const storeapi_merged *m) {
  static char out[512];
  size_t o = 0;
  for (size_t i = 0; i < m->series.n_labels; i++)
    o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s=%s", i ? "," : "", m->series.labels[i]->name,
                          m->series.labels[i]->value);
  o += (size_t)snprintf(out + o, sizeof(out) - o, " ");
  for (size_t i = 0; i < m->series.n_chunks; i++) {
    const Thanos__AggrChunk *c = m->series.chunks[i];
    o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%lld:%lld:%.*s", i ? ";" : "",
                          (long long)c->min_time, (long long)c->max_time, (int)c->raw->data.len,
                          (const char *)c->raw->data.data);
  }
  return out;
}

static void test_merge(void **state) {
  storeapi_merge *m;
  storeapi_merged *r;
  assert_int_equal(storeapi_merge_new(3, &m), 0);
  assert_int_equal(storeapi_merge_next(m, &r), ORR_EAGAIN);
  /* Replicas a and b hold the same chunks of x plus one each; c has y only. */
  assert_int_equal(storeapi_merge_push(m, 0, mk("a=1,n=x", "0:9:A;10:19:B")), 0);
  assert_int_equal(storeapi_merge_push(m, 1, mk("a=1,n=x", "10:19:B;20:29:C")), 0);
  assert_int_equal(storeapi_merge_next(m, &r), ORR_EAGAIN); /* input 2 may still hold a smaller one */
  assert_int_equal(storeapi_merge_push(m, 2, mk("a=1,n=y", "0:9:Y")), 0);
  assert_int_equal(storeapi_merge_buffered(m, 2), 1);
  assert_int_equal(storeapi_merge_next(m, &r), 0);
  assert_string_equal(fmt_merged(r), "a=1,n=x 0:9:A;10:19:B;20:29:C");
  storeapi_merged_free(r);
  /* Same range, different bytes: both kept. */
  assert_int_equal(storeapi_merge_push(m, 0, mk("a=1,n=y", "0:9:Z")), 0);
  assert_int_equal(storeapi_merge_next(m, &r), ORR_EAGAIN); /* input 1 is open and empty */
  storeapi_merge_close(m, 1);
  assert_int_equal(storeapi_merge_next(m, &r), 0);
  assert_string_equal(fmt_merged(r), "a=1,n=y 0:9:Y;0:9:Z");
  storeapi_merged_free(r);
  /* Out of order within an input. */
  assert_int_equal(storeapi_merge_push(m, 0, mk("a=1,n=a", "0:1:Q")), ORR_EINVAL);
  assert_int_equal(storeapi_merge_push(m, 0, mk("a=2", "0:1:Q")), 0);
  storeapi_merge_close(m, 0);
  assert_int_equal(storeapi_merge_next(m, &r), ORR_EAGAIN);
  storeapi_merge_close(m, 2);
  assert_int_equal(storeapi_merge_next(m, &r), 0);
  assert_string_equal(fmt_merged(r), "a=2 0:1:Q");
  storeapi_merged_free(r);
  assert_int_equal(storeapi_merge_next(m, &r), ORR_EEOF);
  /* Series left buffered are freed with the merge. */
  storeapi_merge_free(m);
  assert_int_equal(storeapi_merge_new(1, &m), 0);
  assert_int_equal(storeapi_merge_push(m, 0, mk("a=1", "0:1:Q")), 0);
  storeapi_merge_free(m);
}


/* Series in storeapi_msg_allocator's blocks (what a gRPC client hands over):
 * copies outlive their source, parts are freed one by one in any order, a
 * merge set to the allocator frees them, and a chunk array grown with
 * storeapi_msg_alloc is freed with the series (under ASan any mismatched
 * or double free fails). */
static Thanos__Series *mk_msg(const char *labels, const char *chunks) {
  Thanos__Series *src = mk(labels, chunks);
  Thanos__Series *c = storeapi_series_copy(src);
  thanos__series__free_unpacked(src, NULL);
  assert_non_null(c);
  return c;
}

static void test_merge_msg_allocator(void **state) {
  (void)state;
  storeapi_merge *m;
  storeapi_merged *r;
  assert_int_equal(storeapi_merge_new(2, &m), 0);
  storeapi_merge_set_allocator(m, &storeapi_msg_allocator);
  Thanos__Series *a = mk_msg("a=1,n=x,r=0", "0:9:A");
  /* Drop a label (as the gateway strips replica labels) and grow the chunk
   * array from another message's chunks (as it joins a split series). */
  protobuf_c_message_free_unpacked(&a->labels[2]->base,
                                   (ProtobufCAllocator *)&storeapi_msg_allocator);
  a->n_labels = 2;
  Thanos__Series *b = mk_msg("a=1,n=x", "10:19:B");
  Thanos__AggrChunk **v = storeapi_msg_alloc(4 * sizeof(*v));
  assert_non_null(v);
  v[0] = a->chunks[0];
  v[1] = b->chunks[0];
  storeapi_msg_free(a->chunks);
  a->chunks = v;
  a->n_chunks = 2;
  b->n_chunks = 0;
  storeapi_series_free(b);
  assert_int_equal(storeapi_merge_push(m, 0, a), 0);
  assert_int_equal(storeapi_merge_push(m, 1, mk_msg("a=1,n=x", "20:29:C")), 0);
  assert_int_equal(storeapi_merge_push(m, 1, mk_msg("a=1,n=y", "0:9:Y")), 0);
  storeapi_merge_close(m, 0);
  assert_int_equal(storeapi_merge_next(m, &r), 0);
  assert_string_equal(fmt_merged(r), "a=1,n=x 0:9:A;10:19:B;20:29:C");
  storeapi_merged_free(r);
  /* Out of order: refused and freed with the allocator. */
  assert_int_equal(storeapi_merge_push(m, 1, mk_msg("a=1,n=a", "0:1:Q")), ORR_EINVAL);
  /* Left buffered: freed with the merge. */
  storeapi_merge_free(m);
  /* Many copies, freed in reverse order. */
  Thanos__Series *many[64];
  for (int i = 0; i < 64; i++) {
    char lb[32];
    snprintf(lb, sizeof(lb), "i=%02d", i);
    many[i] = mk_msg(lb, "0:1:Q");
    assert_string_equal(many[i]->labels[0]->value + 0, lb + 2);
  }
  for (int i = 63; i >= 0; i--) storeapi_series_free(many[i]);
  storeapi_series_free(NULL);
}


/* Many inputs (a wide fan-out) fed in a scrambled order, next() asked after
 * every push: each series comes out once, in order, only when every open
 * input could not hold a smaller one, with the chunks of every input that
 * had it (identical ones kept once). */
static void test_merge_wide(void **state) {
  enum { K = 200, V = 100 };
  storeapi_merge *m;
  assert_int_equal(storeapi_merge_new(K, &m), 0);
  int next_v[K]; /* the next value input i pushes, V: done */
  for (int i = 0; i < K; i++) {
    next_v[i] = 0;
    while (next_v[i] < V && (next_v[i] * 7 + i) % 5) next_v[i]++;
  }
  int out_v[V], nout = 0, open = K;
  unsigned lcg = 12345;
  while (open) {
    lcg = lcg * 1103515245u + 12345u;
    int i = (int)((lcg >> 8) % K);
    if (next_v[i] == V) continue;
    char lb[32], cb[32];
    snprintf(lb, sizeof(lb), "s=%03d", next_v[i]);
    /* Odd inputs send one shared chunk per value: kept once. */
    snprintf(cb, sizeof(cb), "%d:%d:%s%03d", next_v[i], next_v[i], i % 2 ? "d" : "e", i % 2 ? 0 : i);
    assert_int_equal(storeapi_merge_push(m, (size_t)i, mk(lb, cb)), 0);
    do next_v[i]++;
    while (next_v[i] < V && (next_v[i] * 7 + i) % 5);
    if (next_v[i] == V) {
      storeapi_merge_close(m, (size_t)i);
      open--;
    }
    storeapi_merged *r;
    int rc;
    while ((rc = storeapi_merge_next(m, &r)) == 0) {
      int v = atoi(r->series.labels[0]->value);
      /* Every open input has passed |v|: none can send it any more. */
      for (int j = 0; j < K; j++) assert_true(next_v[j] > v);
      assert_true(nout == 0 || v > out_v[nout - 1]);
      out_v[nout++] = v;
      /* The inputs that had |v|: i ≡ -7v (mod 5); one "d000" for the odd
       * ones, an "eNNN" for each even one, sorted by bytes. */
      char want[512] = "", got[512] = "";
      size_t w = 0, g = 0;
      bool odd = false;
      for (int j = 0; j < K; j++)
        if ((v * 7 + j) % 5 == 0 && j % 2) odd = true;
      if (odd) w += (size_t)snprintf(want + w, sizeof(want) - w, "d000;");
      for (int j = 0; j < K; j += 2)
        if ((v * 7 + j) % 5 == 0) w += (size_t)snprintf(want + w, sizeof(want) - w, "e%03d;", j);
      for (size_t c = 0; c < r->series.n_chunks; c++)
        g += (size_t)snprintf(got + g, sizeof(got) - g, "%.*s;", (int)r->series.chunks[c]->raw->data.len,
                              (const char *)r->series.chunks[c]->raw->data.data);
      assert_string_equal(got, want);
      storeapi_merged_free(r);
    }
    assert_int_equal(rc, open ? ORR_EAGAIN : ORR_EEOF);
  }
  assert_int_equal(nout, V);
  storeapi_merge_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matchers_from_proto), cmocka_unit_test(test_labels_extend),
      cmocka_unit_test(test_series_from_chunked), cmocka_unit_test(test_frames_pieces),
      cmocka_unit_test(test_frames_errors),       cmocka_unit_test(test_read_request),
      cmocka_unit_test(test_merge), cmocka_unit_test(test_merge_msg_allocator),               cmocka_unit_test(test_merge_wide),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
