/* test_chunks.c: XOR chunks (round trips, corruption), the head's chunk
 * cutting, aggregate chunks and segment files; and bit-exactness against a
 * block that Prometheus's promtool writes from an OpenMetrics file. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <float.h>

#include <cmocka.h>

#include "tsdb.h"

#define STALE_NAN_BITS 0x7ff0000000000002ull
#define HOUR_MS 3600000LL

static double from_bits(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof(d));
  return d;
}
static uint64_t to_bits(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof(b));
  return b;
}

/* A small deterministic PRNG (xorshift64*), so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}
static double rnd_unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* Encodes |n| samples into one chunk, decodes it, and checks every sample
 * bit for bit; returns the chunk size. */
static size_t roundtrip(const tsdb_sample *s, size_t n) {
  tsdb_xor_appender a;
  assert_int_equal(tsdb_xor_appender_init(&a), 0);
  for (size_t i = 0; i < n; i++) assert_int_equal(tsdb_xor_append(&a, s[i].t, s[i].v), 0);
  size_t len;
  const uint8_t *b = tsdb_xor_bytes(&a, &len);
  uint16_t cnt;
  assert_int_equal(tsdb_xor_num_samples(b, len, &cnt), 0);
  assert_int_equal(cnt, n);
  tsdb_xor_iter it;
  tsdb_xor_iter_init(&it, b, len);
  for (size_t i = 0; i < n; i++) {
    int rc = tsdb_xor_iter_next(&it);
    if (rc != 1) fail_msg("sample %zu of %zu: next returned %d", i, n, rc);
    if (it.t != s[i].t || to_bits(it.v) != to_bits(s[i].v))
      fail_msg("sample %zu: got (%lld, %016llx) want (%lld, %016llx)", i, (long long)it.t,
               (unsigned long long)to_bits(it.v), (long long)s[i].t,
               (unsigned long long)to_bits(s[i].v));
  }
  assert_int_equal(tsdb_xor_iter_next(&it), 0);
  assert_int_equal(tsdb_xor_iter_next(&it), 0);
  /* The array decoder agrees. */
  tsdb_sample *all = malloc((n ? n : 1) * sizeof(*all));
  assert_int_equal(tsdb_xor_decode(b, len, all, n), (int)n);
  for (size_t i = 0; i < n; i++)
    assert_true(all[i].t == s[i].t && to_bits(all[i].v) == to_bits(s[i].v));
  /* The decoder that stops after the first sample past maxt: the samples up
   * to and including that one, the same as the whole decode's, for maxt
   * before, at, between and after the samples' times (every sample on short
   * chunks, a few spread over long ones). */
  for (size_t j = 0; j < n; j += n < 64 ? 1 : n / 7 + 1) {
    int64_t t = s[j].t; /* the shapes reach INT64_MIN and INT64_MAX */
    int64_t maxts[3] = {t == INT64_MIN ? t : t - 1, t, t == INT64_MAX ? t : t + 1};
    for (int m = 0; m < 3; m++) {
      size_t want = n;
      for (size_t i = 0; i < n; i++)
        if (s[i].t > maxts[m]) {
          want = i + 1;
          break;
        }
      memset(all, 0, n * sizeof(*all));
      int got = tsdb_xor_decode_upto(b, len, all, n, maxts[m]);
      if (got != (int)want)
        fail_msg("decode_upto %lld of %zu samples: %d, want %zu", (long long)maxts[m], n, got, want);
      for (size_t i = 0; i < want; i++)
        assert_true(all[i].t == s[i].t && to_bits(all[i].v) == to_bits(s[i].v));
    }
  }
  if (n) assert_int_equal(tsdb_xor_decode_upto(b, len, all, n, INT64_MAX), (int)n);
  /* So does the two-chunk decoder, in both slots (the second slot behind a
   * one-sample chunk, so the two decodes run out of step). */
  tsdb_xor_appender one;
  assert_int_equal(tsdb_xor_appender_init(&one), 0);
  assert_int_equal(tsdb_xor_append(&one, 5, 1.5), 0);
  size_t olen;
  const uint8_t *ob = tsdb_xor_bytes(&one, &olen);
  tsdb_sample *two = malloc((n ? n : 1) * sizeof(*two)), first;
  int k1, k2;
  assert_int_equal(tsdb_xor_decode2(b, len, all, n, &k1, ob, olen, &first, 1, &k2), 0);
  assert_int_equal(k1, (int)n);
  assert_int_equal(k2, 1);
  assert_true(first.t == 5 && first.v == 1.5);
  assert_int_equal(tsdb_xor_decode2(ob, olen, &first, 1, &k1, b, len, two, n, &k2), 0);
  assert_int_equal(k2, (int)n);
  for (size_t i = 0; i < n; i++)
    assert_true(all[i].t == s[i].t && to_bits(all[i].v) == to_bits(s[i].v) &&
                two[i].t == s[i].t && to_bits(two[i].v) == to_bits(s[i].v));
  tsdb_xor_appender_free(&one);
  /* Every truncation of the chunk is detected, except dropping the empty
   * byte that Prometheus's bit stream leaves after a byte-aligned write. */
  size_t body = len;
  if (len > 2 && b[len - 1] == 0 && (n == 1 || (a.free_bits == 8))) body = len - 1;
  for (size_t cut = 0; cut < body; cut++) {
    tsdb_xor_iter_init(&it, b, cut);
    int rc;
    size_t got = 0;
    while ((rc = tsdb_xor_iter_next(&it)) == 1) got++;
    if (rc != ORR_ECORRUPT) fail_msg("truncated to %zu of %zu: rc %d after %zu", cut, len, rc, got);
    /* the array decoders too (they read a padded copy: it must not hide
     * the missing bytes); on long chunks every 64th cut and the last 40
     * (the padded fast path's margin is 32) */
    if (cut >= 2 && n > 0 && (len < 256 || cut % 64 == 0 || cut + 40 > body)) {
      if (tsdb_xor_decode(b, cut, all, n) != ORR_ECORRUPT)
        fail_msg("decode of %zu of %zu bytes did not fail", cut, len);
      if (tsdb_xor_decode2(b, len, two, n, &k1, b, cut, all, n, &k2) != ORR_ECORRUPT)
        fail_msg("decode2 of %zu of %zu bytes did not fail", cut, len);
    }
  }
  free(all);
  free(two);
  tsdb_xor_appender_free(&a);
  return len;
}

static void test_xor_roundtrip_shapes(void **state) {
  (void)state;
  enum { N = 2000 };
  static tsdb_sample s[N];
  int64_t t0 = 1700000000000LL;

  /* A counter scraped every 15 s with jitter. */
  double c = 0;
  for (int i = 0; i < N; i++) {
    s[i].t = t0 + i * 15000LL + (int64_t)(rnd() % 200) - 100;
    c += (double)(rnd() % 1000);
    s[i].v = c;
  }
  roundtrip(s, 120);
  roundtrip(s, N);

  /* A gauge with noise. */
  for (int i = 0; i < N; i++) {
    s[i].t = t0 + i * 15000LL;
    s[i].v = 50.0 + rnd_unit() * 10.0 - 5.0;
  }
  roundtrip(s, N);

  /* Constant value, regular timestamps: 1 bit + 1 bit per sample. */
  for (int i = 0; i < N; i++) {
    s[i].t = t0 + i * 1000LL;
    s[i].v = 42.0;
  }
  size_t len = roundtrip(s, N);
  assert_true(len < 2 + 10 + 8 + 3 + 1 + N / 4 + 2);

  /* Mostly repeats (the decoder reads runs of them at once): runs of 1 to
   * 69 samples repeating the interval and value, each broken by a new
   * value, a jittered interval, or both; short (every maxt of decode_upto
   * tried) and long. Then runs of 1 to 9 between random values, so that
   * the chunk outgrows the padded copy and the unpadded fast path reads
   * runs too. */
  for (int pass = 0; pass < 2; pass++) {
    int64_t tt = t0, iv = 15000;
    double v = 1;
    for (int i = 0; i < N;) {
      int run = 1 + (int)(rnd() % (pass ? 9 : 69));
      for (int j = 0; j < run && i < N; j++, i++) {
        tt += iv;
        s[i] = (tsdb_sample){tt, v};
      }
      switch (rnd() % 3) {
      case 0: v = pass ? from_bits(rnd()) : v + 1; break;
      case 1: iv += (int64_t)(rnd() % 5) - 2; break;
      default:
        v = pass ? from_bits(rnd()) : v * 2;
        iv += 1;
      }
    }
    if (!pass) roundtrip(s, 120);
    size_t rl = roundtrip(s, N);
    if (pass) assert_true(rl > 2048 + 32);
  }

  /* Irregular timestamps hitting every dod bucket, negative deltas, huge
   * jumps, and the bucket edges (+2^(n-1) is positive, -2^(n-1) is not in
   * the bucket). */
  static const int64_t dods[] = {0,      1,       -1,      8191,    8192,     -8191,
                                 -8192,  65535,   65536,   -65535,  -65536,   524287,
                                 524288, -524287, -524288, 1 << 22, -(1 << 22), 0};
  int64_t t = t0, delta = 15000;
  size_t k = 0;
  s[k++] = (tsdb_sample){t, 1};
  for (size_t r = 0; r < 3; r++) {
    for (size_t i = 0; i < sizeof(dods) / sizeof(dods[0]); i++) {
      delta += dods[i];
      t += delta;
      s[k] = (tsdb_sample){t, (double)k};
      k++;
    }
  }
  roundtrip(s, k);

  /* Negative first delta and extreme timestamps (wrapping arithmetic). */
  tsdb_sample ext[] = {{INT64_MAX, 1}, {INT64_MIN, 2}, {0, 3}, {INT64_MAX, 4}, {-5, 5}, {-3, 6}};
  roundtrip(ext, sizeof(ext) / sizeof(ext[0]));

  /* Special values, bit for bit. */
  double specials[] = {0.0,       -0.0,     NAN,          INFINITY,         -INFINITY,
                       from_bits(STALE_NAN_BITS), 1e-308,    5e-324,     DBL_MAX,
                       -1.5,      1.0,      from_bits(0x7ff8000000000001ull), 1.0};
  size_t ns = sizeof(specials) / sizeof(specials[0]);
  for (size_t i = 0; i < ns; i++) {
    s[i].t = t0 + (int64_t)i * 30000;
    s[i].v = specials[i];
  }
  roundtrip(s, ns);

  /* Random bits (every window shape), including leading zeros >= 32. */
  for (int i = 0; i < N; i++) {
    s[i].t = t0 + i * 10LL;
    uint64_t bits = rnd();
    switch (rnd() % 4) {
    case 0: bits >>= rnd() % 64; break;
    case 1: bits <<= rnd() % 64; break;
    case 2: bits = to_bits(s[i ? i - 1 : 0].v) ^ (1ull << (rnd() % 64)); break;
    default: break;
    }
    s[i].v = from_bits(bits);
  }
  roundtrip(s, N);

  /* Zero, one and two samples. */
  roundtrip(s, 0);
  roundtrip(s, 1);
  roundtrip(s, 2);
}

static void test_xor_known_bytes(void **state) {
  (void)state;
  /* Worked by hand from the format: count 3; t0 = 1000 (zig-zag varint
   * 2000 = d0 0f); v0 = 1.0 (3ff0000000000000); delta 1000 (e8 07);
   * v1 = 1.0 -> bit 0; t2 dod 0 -> bit 0; v2 = 2.0: xor 0x7ff0... ^ ...
   * 1.0 ^ 2.0 = 0x7ff0000000000000: leading 1, trailing 52, 11 significant
   * bits: 11 00001 001011 11111111111 -> then padding. */
  tsdb_xor_appender a = {0};
  assert_int_equal(tsdb_xor_append(&a, 1000, 1.0), 0);
  assert_int_equal(tsdb_xor_append(&a, 2000, 1.0), 0);
  assert_int_equal(tsdb_xor_append(&a, 3000, 2.0), 0);
  size_t len;
  const uint8_t *b = tsdb_xor_bytes(&a, &len);
  /* bits after the uvarint: 0 0 11 00001 001011 11111111111 (26 bits)
   * = 0011 0000 1001 0111 1111 1111 11(000000) -> 30 97 ff c0 */
  static const uint8_t want[] = {0x00, 0x03, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
                                 0xe8, 0x07, 0x30, 0x97, 0xff, 0xc0};
  assert_int_equal(len, sizeof(want));
  assert_memory_equal(b, want, sizeof(want));
  tsdb_sample out[3];
  assert_int_equal(tsdb_xor_decode(b, len, out, 3), 3);
  assert_int_equal(out[2].t, 3000);
  assert_true(out[2].v == 2.0);
  assert_int_equal(tsdb_xor_decode(b, len, out, 2), ORR_ERANGE);
  tsdb_xor_appender_free(&a);
}

static void test_xor_seek_and_limits(void **state) {
  (void)state;
  tsdb_xor_appender a;
  tsdb_xor_appender_init(&a);
  for (int i = 0; i < 100; i++) tsdb_xor_append(&a, i * 10, i);
  size_t len;
  const uint8_t *b = tsdb_xor_bytes(&a, &len);
  tsdb_xor_iter it;
  tsdb_xor_iter_init(&it, b, len);
  assert_int_equal(tsdb_xor_iter_seek(&it, 55), 1);
  assert_int_equal(it.t, 60);
  assert_int_equal(tsdb_xor_iter_seek(&it, 10), 1); /* never backwards */
  assert_int_equal(it.t, 60);
  assert_int_equal(tsdb_xor_iter_seek(&it, 991), 0);
  tsdb_xor_appender_reset(&a);
  for (int i = 0; i < TSDB_XOR_MAX_SAMPLES; i++) assert_int_equal(tsdb_xor_append(&a, i, 0), 0);
  assert_int_equal(tsdb_xor_append(&a, 1 << 20, 0), ORR_ERANGE);
  tsdb_xor_appender_free(&a);
  /* Header-only garbage: too short, and a count with no samples behind it. */
  static const uint8_t one[] = {0x00};
  tsdb_xor_iter_init(&it, one, 1);
  assert_int_equal(tsdb_xor_iter_next(&it), ORR_ECORRUPT);
  static const uint8_t lies[] = {0x00, 0x05, 0x02};
  tsdb_xor_iter_init(&it, lies, sizeof(lies));
  assert_int_equal(tsdb_xor_iter_next(&it), ORR_ECORRUPT);
  /* An impossible window (leading 31 + 40 significant bits > 64). */
  static const uint8_t bad[] = {0x00, 0x02, 0x02, 0, 0, 0, 0, 0, 0, 0, 0,
                                0x02, 0xff, 0xf4, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  tsdb_xor_iter_init(&it, bad, sizeof(bad));
  assert_int_equal(tsdb_xor_iter_next(&it), 1);
  assert_int_equal(tsdb_xor_iter_next(&it), ORR_ECORRUPT);
  assert_int_equal(tsdb_xor_iter_next(&it), ORR_ECORRUPT); /* latched */
}

static size_t cut_sizes(const int64_t *ts, size_t n, int64_t range, size_t *sizes) {
  tsdb_chunk_cutter c;
  tsdb_chunk_cutter_init(&c, range);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int rc = tsdb_chunk_cutter_add(&c, ts[i]);
    assert_true(rc >= 0);
    if (rc == 1) sizes[k++] = 0;
    sizes[k - 1]++;
  }
  return k;
}

static void test_cutter(void **state) {
  (void)state;
  static int64_t ts[8000];
  size_t sizes[200];
  int64_t t0 = 1700006400000LL; /* a multiple of 2h */
  /* 15 s scrapes: 120 samples (30 min) per chunk. */
  for (int i = 0; i < 480; i++) ts[i] = t0 + i * 15000LL;
  size_t k = cut_sizes(ts, 480, 2 * HOUR_MS, sizes);
  assert_int_equal(k, 4);
  for (size_t i = 0; i < k; i++) assert_int_equal(sizes[i], 120);
  /* 1 s scrapes: at 30 samples the chunk end is predicted as
   * start + 7200000 / (7200000 / (29001 * 4)) = start + 116129. */
  for (int i = 0; i < 7000; i++) ts[i] = t0 + i * 1000LL;
  k = cut_sizes(ts, 7000, 2 * HOUR_MS, sizes);
  assert_int_equal(sizes[0], 117);
  /* A chunk range boundary always cuts. */
  ts[0] = t0 - 1000;
  ts[1] = t0;
  k = cut_sizes(ts, 2, 2 * HOUR_MS, sizes);
  assert_int_equal(k, 2);
  /* A rate that jumps after the prediction: cut at 240 samples. */
  for (int i = 0; i < 31; i++) ts[i] = t0 + i * 60000LL;
  for (int i = 31; i < 1000; i++) ts[i] = ts[30] + (i - 30);
  k = cut_sizes(ts, 1000, 2 * HOUR_MS, sizes);
  assert_int_equal(sizes[0], 240);
  /* Out of order and duplicates are refused. */
  tsdb_chunk_cutter c;
  tsdb_chunk_cutter_init(&c, 1000);
  assert_int_equal(tsdb_chunk_cutter_add(&c, 5), 1);
  assert_int_equal(tsdb_chunk_cutter_add(&c, 5), ORR_EINVAL);
  assert_int_equal(tsdb_chunk_cutter_add(&c, 4), ORR_EINVAL);
  tsdb_chunk_cutter_init(&c, 0);
  assert_int_equal(tsdb_chunk_cutter_add(&c, 5), ORR_EINVAL);

  /* encode_series agrees with the cutter and the chunks decode back. */
  tsdb_sample s[1000];
  for (int i = 0; i < 1000; i++) s[i] = (tsdb_sample){ts[i], i * 0.5};
  tsdb_chunk *chunks;
  size_t nchunks;
  assert_int_equal(tsdb_xor_encode_series(s, 1000, 2 * HOUR_MS, &chunks, &nchunks), 0);
  assert_int_equal(nchunks, k);
  size_t at = 0;
  for (size_t i = 0; i < nchunks; i++) {
    assert_int_equal(chunks[i].enc, TSDB_ENC_XOR);
    assert_int_equal(chunks[i].mint, s[at].t);
    tsdb_sample out[300];
    int got = tsdb_xor_decode(chunks[i].data, chunks[i].len, out, 300);
    assert_int_equal(got, sizes[i]);
    for (int j = 0; j < got; j++) assert_true(out[j].t == s[at + (size_t)j].t);
    at += (size_t)got;
    assert_int_equal(chunks[i].maxt, s[at - 1].t);
  }
  assert_int_equal(at, 1000);
  tsdb_chunks_free(chunks, nchunks);
  s[5].t = s[4].t;
  assert_int_equal(tsdb_xor_encode_series(s, 1000, 2 * HOUR_MS, &chunks, &nchunks), ORR_EINVAL);
  assert_null(chunks);
}

static void test_aggr_chunk(void **state) {
  (void)state;
  tsdb_aggr_appender a;
  assert_int_equal(tsdb_aggr_appender_init(&a), 0);
  for (int i = 0; i < 10; i++) {
    int64_t t = 300000LL * i;
    tsdb_aggr_append(&a, TSDB_AGGR_COUNT, t, 20);
    tsdb_aggr_append(&a, TSDB_AGGR_SUM, t, 20.0 * i);
    tsdb_aggr_append(&a, TSDB_AGGR_MIN, t, i - 1.0);
    /* max absent */
    tsdb_aggr_append(&a, TSDB_AGGR_COUNTER, t, 100.0 * i);
  }
  tsdb_aggr_append(&a, TSDB_AGGR_COUNTER, 300000LL * 9 + 1, 901); /* the extra last sample */
  orr_buf b = {0};
  assert_int_equal(tsdb_aggr_appender_bytes(&a, &b), 0);
  const uint8_t *p = (const uint8_t *)b.data;
  /* Layout: uvarint(len(count)) 0x01 count-bytes ... */
  size_t clen;
  tsdb_xor_bytes(&a.sub[TSDB_AGGR_COUNT], &clen);
  assert_true(clen < 128);
  assert_int_equal(p[0], clen);
  assert_int_equal(p[1], TSDB_ENC_XOR);

  tsdb_aggr_sub sub;
  assert_int_equal(tsdb_aggr_get(p, b.len, TSDB_AGGR_MAX, &sub), ORR_ENOTFOUND);
  assert_int_equal(tsdb_aggr_get(p, b.len, TSDB_AGGR_COUNT, &sub), 0);
  assert_int_equal(sub.len, clen);
  static const double want_last[] = {20, 180, 8, 0, 901};
  static const int want_n[] = {10, 10, 10, 0, 11};
  for (int t = 0; t < TSDB_AGGR_NUM; t++) {
    tsdb_xor_iter it;
    int rc = tsdb_aggr_iter_init(&it, p, b.len, (tsdb_aggr_type)t);
    if (t == TSDB_AGGR_MAX) {
      assert_int_equal(rc, ORR_ENOTFOUND);
      continue;
    }
    assert_int_equal(rc, 0);
    int n = 0;
    double last = -1;
    while (tsdb_xor_iter_next(&it) == 1) {
      n++;
      last = it.v;
    }
    assert_int_equal(n, want_n[t]);
    assert_true(last == want_last[t]);
  }
  assert_string_equal(tsdb_aggr_name(TSDB_AGGR_COUNTER), "counter");
  /* Every truncation before the counter's end is corrupt or not found. */
  for (size_t cut = 0; cut < b.len; cut++) {
    int rc = tsdb_aggr_get(p, cut, TSDB_AGGR_COUNTER, &sub);
    assert_true(rc == ORR_ECORRUPT);
  }
  /* Encoding from parts gives the same bytes. */
  tsdb_aggr_sub subs[TSDB_AGGR_NUM];
  for (int t = 0; t < TSDB_AGGR_NUM; t++) {
    subs[t].enc = TSDB_ENC_XOR;
    subs[t].data = NULL;
    subs[t].len = 0;
    if (t != TSDB_AGGR_MAX) subs[t].data = tsdb_xor_bytes(&a.sub[t], &subs[t].len);
  }
  orr_buf b2 = {0};
  assert_int_equal(tsdb_aggr_encode(subs, &b2), 0);
  assert_int_equal(b2.len, b.len);
  assert_memory_equal(b2.data, b.data, b.len);
  orr_buf_free(&b);
  orr_buf_free(&b2);
  tsdb_aggr_appender_free(&a);
}

/* ---------------------------------------------------------------- segment files */

static char *make_tmpdir(void) {
  char tmpl[] = "/tmp/orrery-chunks-XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)n + 1);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void write_file(const char *path, const uint8_t *b, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  fclose(f);
}

typedef struct walk_acc {
  uint64_t refs[256];
  size_t n;
} walk_acc;

static int walk_cb(void *arg, uint64_t ref, const tsdb_chunk *c) {
  walk_acc *w = arg;
  (void)c;
  if (w->n < 256) w->refs[w->n++] = ref;
  return 0;
}

static void test_segment_write_read(void **state) {
  (void)state;
  char *tmp = make_tmpdir();
  char dir[300], err[512];
  snprintf(dir, sizeof(dir), "%s/chunks", tmp);
  tsdb_chunk_writer *w;
  assert_int_equal(tsdb_chunk_writer_open(dir, 300, &w, err, sizeof(err)), 0);
  enum { NC = 20 };
  tsdb_chunk chunks[NC];
  uint64_t refs[NC];
  tsdb_xor_appender apps[NC];
  for (int i = 0; i < NC; i++) {
    tsdb_xor_appender_init(&apps[i]);
    for (int j = 0; j < 10 + i * 3; j++) tsdb_xor_append(&apps[i], j * 15000, rnd_unit());
    chunks[i].enc = TSDB_ENC_XOR;
    chunks[i].data = (uint8_t *)tsdb_xor_bytes(&apps[i], &chunks[i].len);
    assert_int_equal(tsdb_chunk_writer_add(w, &chunks[i], &refs[i]), 0);
  }
  assert_int_equal(tsdb_chunk_writer_close(w, err, sizeof(err)), 0);
  /* The first chunk sits after the 8-byte header of the first segment; the
   * 300-byte limit made several segments. */
  assert_int_equal(refs[0], 8);
  assert_true((refs[NC - 1] >> 32) >= 2);

  tsdb_chunk_reader *r;
  assert_int_equal(tsdb_chunk_reader_open(dir, &r, err, sizeof(err)), 0);
  assert_int_equal(tsdb_chunk_reader_segments(r), (refs[NC - 1] >> 32) + 1);
  for (int i = 0; i < NC; i++) {
    tsdb_chunk c;
    assert_int_equal(tsdb_chunk_reader_get(r, refs[i], &c, err, sizeof(err)), 0);
    assert_int_equal(c.enc, TSDB_ENC_XOR);
    assert_int_equal(c.len, chunks[i].len);
    assert_memory_equal(c.data, chunks[i].data, c.len);
  }
  /* Walking visits every chunk in order. */
  walk_acc acc = {.n = 0};
  for (size_t s = 0; s < tsdb_chunk_reader_segments(r); s++)
    assert_int_equal(tsdb_chunk_reader_walk(r, s, walk_cb, &acc, err, sizeof(err)), 0);
  assert_int_equal(acc.n, NC);
  for (int i = 0; i < NC; i++) assert_true(acc.refs[i] == refs[i]);
  tsdb_chunk c;
  assert_int_equal(tsdb_chunk_reader_get(r, (uint64_t)99 << 32 | 8, &c, err, sizeof(err)),
                   ORR_ENOTFOUND);
  assert_int_equal(tsdb_chunk_reader_get(r, refs[0] + 1, &c, err, sizeof(err)), ORR_ECORRUPT);
  assert_int_equal(tsdb_chunk_reader_get(r, 3, &c, err, sizeof(err)), ORR_ECORRUPT);
  tsdb_chunk_reader_close(r);

  /* The first file's bytes: header, then uvarint len, 0x01, data, CRC. */
  char path[400];
  snprintf(path, sizeof(path), "%s/000001", dir);
  size_t flen;
  uint8_t *f = read_file(path, &flen);
  static const uint8_t hdr[] = {0x85, 0xbd, 0x40, 0xdd, 0x01, 0, 0, 0};
  assert_memory_equal(f, hdr, 8);
  assert_int_equal(f[8], chunks[0].len);
  assert_int_equal(f[9], 0x01);
  uint32_t crc = orr_crc32c(0, f + 9, chunks[0].len + 1);
  const uint8_t *cp = f + 10 + chunks[0].len;
  assert_int_equal(((uint32_t)cp[0] << 24 | (uint32_t)cp[1] << 16 | (uint32_t)cp[2] << 8 | cp[3]),
                   crc);

  /* Every single bit flip after the header is caught by length or CRC
   * checks (or lands in the segment's other chunks). */
  uint8_t *g = malloc(flen);
  for (size_t bit = 8 * 8; bit < flen * 8; bit++) {
    memcpy(g, f, flen);
    g[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    const uint8_t *segs[1] = {g};
    size_t lens[1] = {flen};
    assert_int_equal(tsdb_chunk_reader_open_bytes(segs, lens, 1, &r, err, sizeof(err)), 0);
    walk_acc wa = {.n = 0};
    int rc = tsdb_chunk_reader_walk(r, 0, walk_cb, &wa, err, sizeof(err));
    if (rc != ORR_ECORRUPT) fail_msg("bit %zu flipped: walk rc %d", bit, rc);
    assert_non_null(strstr(err, "segment 0: offset "));
    tsdb_chunk_reader_close(r);
  }
  /* Header damage and truncation. */
  memcpy(g, f, flen);
  g[0] ^= 1;
  write_file(path, g, flen);
  assert_int_equal(tsdb_chunk_reader_open(dir, &r, err, sizeof(err)), ORR_ECORRUPT);
  assert_non_null(strstr(err, "000001: invalid magic number"));
  memcpy(g, f, flen);
  g[4] = 2;
  write_file(path, g, flen);
  assert_int_equal(tsdb_chunk_reader_open(dir, &r, err, sizeof(err)), ORR_ECORRUPT);
  write_file(path, f, 5);
  assert_int_equal(tsdb_chunk_reader_open(dir, &r, err, sizeof(err)), ORR_ECORRUPT);
  write_file(path, f, flen - 1);
  assert_int_equal(tsdb_chunk_reader_open(dir, &r, err, sizeof(err)), 0);
  int rc = tsdb_chunk_reader_get(r, refs[0], &c, err, sizeof(err));
  /* refs[0] may still be whole; the last chunk of segment 0 is not. */
  (void)rc;
  walk_acc wa = {.n = 0};
  assert_int_equal(tsdb_chunk_reader_walk(r, 0, walk_cb, &wa, err, sizeof(err)), ORR_ECORRUPT);
  assert_non_null(strstr(err, "000001: offset "));
  assert_non_null(strstr(err, "past the end"));
  tsdb_chunk_reader_close(r);

  /* A second writer appends after the existing files. */
  write_file(path, f, flen);
  assert_int_equal(tsdb_chunk_writer_open(dir, 0, &w, err, sizeof(err)), 0);
  uint64_t ref;
  assert_int_equal(tsdb_chunk_writer_add(w, &chunks[0], &ref), 0);
  assert_int_equal(tsdb_chunk_writer_close(w, err, sizeof(err)), 0);
  assert_int_equal(ref >> 32, (refs[NC - 1] >> 32) + 1);
  assert_int_equal(tsdb_chunk_reader_open(dir, &r, err, sizeof(err)), 0);
  assert_int_equal(tsdb_chunk_reader_get(r, ref, &c, err, sizeof(err)), 0);
  assert_memory_equal(c.data, chunks[0].data, c.len);
  tsdb_chunk_reader_close(r);
  assert_int_equal(tsdb_chunk_reader_open("/nonexistent/chunks", &r, err, sizeof(err)),
                   ORR_ENOTFOUND);

  free(g);
  free(f);
  for (int i = 0; i < NC; i++) tsdb_xor_appender_free(&apps[i]);
  assert_int_equal(orr_remove_tree(tmp), 0);
  free(tmp);
}

/* ---------------------------------------------------------------- promtool */

typedef struct series {
  const char *name; /* label value of s= */
  tsdb_sample *s;
  size_t n;
} series;

/* Go's OpenMetrics parser: ms = int64(seconds_float * 1000). */
static int64_t go_ts_ms(const char *text) { return (int64_t)(strtod(text, NULL) * 1000.0); }

static void format_value(double v, char *out, size_t n) {
  if (isnan(v))
    snprintf(out, n, "NaN");
  else if (isinf(v))
    snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
  else
    snprintf(out, n, "%.17g", v);
}

static int find_block(const char *outdir, char *block, size_t n) {
  DIR *d = opendir(outdir);
  assert_non_null(d);
  struct dirent *e;
  int found = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(block, n, "%s/%s", outdir, e->d_name);
    found++;
  }
  closedir(d);
  return found;
}

typedef struct collect {
  tsdb_chunk c[512];
  uint64_t ref[512];
  size_t n;
} collect;

static int collect_cb(void *arg, uint64_t ref, const tsdb_chunk *c) {
  collect *k = arg;
  if (k->n >= 512) return -1;
  k->c[k->n] = *c;
  k->ref[k->n] = ref;
  k->n++;
  return 0;
}

static void test_promtool_block(void **state) {
  (void)state;
  if (access(PROMTOOL, X_OK) != 0) {
    print_message("promtool not found at %s\n", PROMTOOL);
    skip();
  }
  int64_t t0 = 1700006400000LL; /* a multiple of 4h: one block */
  enum { NA = 480, NB = 7000, NC = 1000, NF = 25, NSER = 6 };
  static tsdb_sample sa[NA], sb[NB], sc[NC], sf[NF];
  /* d: a single sample (the chunk ends in bstream's empty byte); e: two. */
  tsdb_sample sd[1] = {{t0 + 5, 1.0}}, se[2] = {{t0 + 7, 3.0}, {t0 + 15007, 3.0}};
  series ser[NSER] = {{"a", sa, NA}, {"b", sb, NB}, {"c", sc, NC},
                      {"d", sd, 1},  {"e", se, 2},  {"f", sf, NF}};
  /* f: gaps that need the 20-bit and 64-bit dod buckets, values with
   * arbitrary bits (every leading/trailing window). */
  static const int64_t gaps[] = {1000, 1000, 300000, 1000, 1200000, 50, 600000, 2, 100, 250000};
  sf[0].t = t0 + 11;
  for (int i = 0; i < NF; i++) {
    if (i) sf[i].t = sf[i - 1].t + gaps[i % 10] + (int64_t)(rnd() % 3);
    double v;
    do {
      v = from_bits(rnd());
    } while (isnan(v) || isinf(v));
    sf[i].v = (i % 5 == 0) ? v : (double)(i * 3);
  }
  char *tmp = make_tmpdir();
  char path[400], outdir[400], cmd[1200], line[256], tsbuf[64], vbuf[64];
  snprintf(path, sizeof(path), "%s/in.om", tmp);
  snprintf(outdir, sizeof(outdir), "%s/out", tmp);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("# HELP m test series\n# TYPE m gauge\n", f);
  /* a: 15 s scrapes with millisecond jitter, a noisy gauge with specials. */
  double specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e300, -2.5e-300};
  for (int i = 0; i < NA; i++) {
    int64_t ms = t0 + i * 15000LL + (int64_t)(rnd() % 400);
    double v = (i % 37 == 5) ? specials[(i / 37) % 7] : 100.0 + rnd_unit() * 20.0;
    sa[i].v = v;
    sa[i].t = ms;
  }
  /* b: 1 s scrapes, a counter with a reset. */
  double cnt = 0;
  for (int i = 0; i < NB; i++) {
    sb[i].t = t0 + i * 1000LL;
    cnt = (i == 3000) ? 0 : cnt + (double)(rnd() % 50);
    sb[i].v = cnt;
  }
  /* c: slow, then a burst (the 240-sample rule), then gaps of all sizes. */
  for (int i = 0; i < NC; i++) {
    if (i <= 30)
      sc[i].t = t0 + i * 60000LL;
    else if (i < 700)
      sc[i].t = sc[i - 1].t + 1 + (int64_t)(rnd() % 3);
    else
      sc[i].t = sc[i - 1].t + 1 + (int64_t)(rnd() % 9000);
    sc[i].v = (double)(i % 7);
  }
  assert_true(sc[NC - 1].t < t0 + 2 * HOUR_MS);
  assert_true(sf[NF - 1].t < t0 + 2 * HOUR_MS);
  for (int k = 0; k < NSER; k++) {
    for (size_t i = 0; i < ser[k].n; i++) {
      tsdb_sample *s = &ser[k].s[i];
      snprintf(tsbuf, sizeof(tsbuf), "%lld.%03lld", (long long)(s->t / 1000),
               (long long)(s->t % 1000));
      s->t = go_ts_ms(tsbuf); /* what promtool will store */
      format_value(s->v, vbuf, sizeof(vbuf));
      /* Go's ParseFloat("NaN") is math.NaN(), bits 0x7ff8000000000001. */
      s->v = isnan(s->v) ? from_bits(0x7ff8000000000001ull) : strtod(vbuf, NULL);
      snprintf(line, sizeof(line), "m{s=\"%s\"} %s %s\n", ser[k].name, vbuf, tsbuf);
      fputs(line, f);
    }
  }
  fputs("# EOF\n", f);
  fclose(f);
  snprintf(cmd, sizeof(cmd), "'%s' tsdb create-blocks-from openmetrics '%s' '%s' >'%s/log' 2>&1",
           PROMTOOL, path, outdir, tmp);
  int rc = system(cmd);
  if (rc != 0) {
    snprintf(cmd, sizeof(cmd), "cat '%s/log'", tmp);
    (void)system(cmd);
    fail_msg("promtool exited with %d", rc);
  }
  char block[700], chunks_dir[800], err[512];
  assert_int_equal(find_block(outdir, block, sizeof(block)), 1);
  snprintf(chunks_dir, sizeof(chunks_dir), "%s/chunks", block);
  tsdb_chunk_reader *r;
  assert_int_equal(tsdb_chunk_reader_open(chunks_dir, &r, err, sizeof(err)), 0);
  assert_int_equal(tsdb_chunk_reader_segments(r), 1);
  static collect got;
  got.n = 0;
  assert_int_equal(tsdb_chunk_reader_walk(r, 0, collect_cb, &got, err, sizeof(err)), 0);

  /* Chunks are laid out series by series in label order: a .. f.
   * Our cutting and encoding must reproduce every chunk byte for byte. */
  size_t at = 0;
  for (int k = 0; k < NSER; k++) {
    tsdb_chunk *mine;
    size_t nmine;
    /* promtool's block writer pretends blocks are twice as long (so it may
     * append across the whole block): its head's chunk range is 4h. */
    assert_int_equal(tsdb_xor_encode_series(ser[k].s, ser[k].n, 4 * HOUR_MS, &mine, &nmine), 0);
    size_t sample = 0;
    for (size_t i = 0; i < nmine; i++, at++) {
      if (at >= got.n) fail_msg("series %s: block has fewer chunks", ser[k].name);
      tsdb_chunk *theirs = &got.c[at];
      assert_int_equal(theirs->enc, TSDB_ENC_XOR);
      /* Decode Prometheus's chunk and compare with the samples written. */
      static tsdb_sample dec[300];
      int n = tsdb_xor_decode(theirs->data, theirs->len, dec, 300);
      if (n < 0) fail_msg("series %s chunk %zu: decode %d", ser[k].name, i, n);
      for (int j = 0; j < n; j++) {
        const tsdb_sample *want = &ser[k].s[sample + (size_t)j];
        if (dec[j].t != want->t) fail_msg("series %s sample %zu: t", ser[k].name, sample + j);
        if (isnan(want->v) ? !isnan(dec[j].v) : to_bits(dec[j].v) != to_bits(want->v))
          fail_msg("series %s sample %zu: v %g want %g", ser[k].name, sample + j, dec[j].v,
                   want->v);
      }
      if (theirs->len != mine[i].len || memcmp(theirs->data, mine[i].data, mine[i].len) != 0)
        fail_msg("series %s chunk %zu (%d samples): our bytes differ (len %zu vs %zu)",
                 ser[k].name, i, n, mine[i].len, theirs->len);
      sample += (size_t)n;
    }
    assert_int_equal(sample, ser[k].n);
    tsdb_chunks_free(mine, nmine);
  }
  assert_int_equal(at, got.n);
  /* Bytes re-encoded from the decoded samples of every chunk, NaN included. */
  for (size_t i = 0; i < got.n; i++) {
    static tsdb_sample dec[300];
    int n = tsdb_xor_decode(got.c[i].data, got.c[i].len, dec, 300);
    tsdb_xor_appender a;
    tsdb_xor_appender_init(&a);
    for (int j = 0; j < n; j++) tsdb_xor_append(&a, dec[j].t, dec[j].v);
    size_t len;
    const uint8_t *b = tsdb_xor_bytes(&a, &len);
    assert_int_equal(len, got.c[i].len);
    assert_memory_equal(b, got.c[i].data, len);
    tsdb_xor_appender_free(&a);
  }
  /* The one-sample chunk, spelled out: count 1, varint t, 8 value bytes and
   * the empty byte. */
  const tsdb_chunk *one = &got.c[got.n - 3];
  assert_int_equal(one->len, 2 + 6 + 8 + 1);
  assert_int_equal(one->data[one->len - 1], 0);
  print_message("promtool block: %zu chunks matched byte for byte\n", got.n);
  tsdb_chunk_reader_close(r);
  assert_int_equal(orr_remove_tree(tmp), 0);
  free(tmp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_xor_roundtrip_shapes), cmocka_unit_test(test_xor_known_bytes),
      cmocka_unit_test(test_xor_seek_and_limits),  cmocka_unit_test(test_cutter),
      cmocka_unit_test(test_aggr_chunk),           cmocka_unit_test(test_segment_write_read),
      cmocka_unit_test(test_promtool_block),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
