/* xor.c: Prometheus's XOR chunk encoding (Gorilla-style delta-of-delta
 * timestamps and XORed values), bit-exact with chunkenc in Prometheus 2.42,
 * plus the head's chunk-cutting rule and a whole-series encoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"
#include "tsdb_int.h"

/* ---------------------------------------------------------------- encoder */

#define XOR_HEADER_LEN 2

int tsdb_xor_appender_init(tsdb_xor_appender *a) {
  memset(a, 0, sizeof(*a));
  a->cap = 128;
  a->data = calloc(1, a->cap);
  if (!a->data) return ORR_ENOMEM;
  a->len = XOR_HEADER_LEN;
  tsdb_xor_appender_reset(a);
  return 0;
}

void tsdb_xor_appender_free(tsdb_xor_appender *a) {
  free(a->data);
  memset(a, 0, sizeof(*a));
}

void tsdb_xor_appender_reset(tsdb_xor_appender *a) {
  if (a->data) memset(a->data, 0, a->len > XOR_HEADER_LEN ? a->len : XOR_HEADER_LEN);
  a->len = XOR_HEADER_LEN;
  a->num = 0;
  a->t = 0;
  a->tdelta = 0;
  a->vbits = 0;
  a->leading = 0xff;
  a->trailing = 0;
  a->free_bits = 0;
}

/* Makes room for |n| more bytes. Invariant: bytes [len, cap) are zero, so
 * bits can be ORed in 8 bytes at a time. */
static int reserve(tsdb_xor_appender *a, size_t n) {
  if (a->len + n <= a->cap) return 0;
  size_t cap = a->cap ? a->cap : 128;
  while (cap < a->len + n) cap *= 2;
  uint8_t *d = realloc(a->data, cap);
  if (!d) return ORR_ENOMEM;
  memset(d + a->cap, 0, cap - a->cap);
  a->data = d;
  a->cap = cap;
  return 0;
}

static inline void or_be64(uint8_t *p, uint64_t x) {
  uint64_t cur;
  memcpy(&cur, p, 8);
  cur |= __builtin_bswap64(x);
  memcpy(p, &cur, 8);
}

/* Writes the low |nb| (<= 64) bits of |v|, most significant first. Room
 * must have been reserved: at most nb/8 + 2 new bytes.
 *
 * Prometheus's bstream writes whole bytes of a multi-bit write with
 * writeByte, which on a byte boundary appends the byte *and* an empty one
 * after it. The empty byte is filled by the next write, but a chunk that
 * ends right after such a write keeps it as a trailing 0x00. We mirror
 * that: a write of a multiple of 8 bits (>= 8) that starts on a byte
 * boundary leaves an empty byte (free_bits == 8) behind. */
static inline __attribute__((always_inline)) void put_bits(tsdb_xor_appender *a, uint64_t v,
                                                          unsigned nb) {
  int eager = nb >= 8 && nb % 8 == 0 && (a->free_bits == 0 || a->free_bits == 8);
  uint64_t pos = (uint64_t)a->len * 8 - a->free_bits; /* next bit to write */
  if (nb < 64) v &= ((uint64_t)1 << nb) - 1;
  if (nb > 56) { /* two writes keep each within one 8-byte window */
    uint64_t hi = v >> 32;
    or_be64(a->data + (pos >> 3), (hi << (64 - (nb - 32))) >> (pos & 7));
    pos += nb - 32;
    v &= 0xffffffffull;
    nb = 32;
  }
  or_be64(a->data + (pos >> 3), (v << (64 - nb)) >> (pos & 7));
  pos += nb;
  a->len = (size_t)((pos + 7) >> 3);
  a->free_bits = (uint8_t)(a->len * 8 - pos);
  if (eager) {
    a->len++; /* the byte is already zero */
    a->free_bits = 8;
  }
}

/* Starts a byte-aligned write (first two samples): drops the empty byte
 * the previous write left, if any. */
static void begin_bytes(tsdb_xor_appender *a) {
  if (a->free_bits == 8) a->len--;
  a->free_bits = 0;
}

/* Ends a byte-aligned write: like bstream's writeByte, leaves an empty byte. */
static void end_bytes(tsdb_xor_appender *a) {
  a->len++; /* already zero */
  a->free_bits = 8;
}

/* Byte-aligned writes for the first two samples (free_bits is 0 there). */
static void put_uvarint(tsdb_xor_appender *a, uint64_t v) {
  while (v >= 0x80) {
    a->data[a->len++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  a->data[a->len++] = (uint8_t)v;
}

/* True when |x| is representable in the |nbits|-bit dod bucket; the range
 * is -(2^(n-1) - 1) .. 2^(n-1), as Prometheus's bitRange. */
static int bit_range(int64_t x, unsigned nbits) {
  int64_t half = (int64_t)1 << (nbits - 1);
  return -(half - 1) <= x && x <= half;
}

static inline __attribute__((always_inline)) void put_value(tsdb_xor_appender *a,
                                                           uint64_t vbits) {
  uint64_t delta = vbits ^ a->vbits;
  if (delta == 0) {
    put_bits(a, 0, 1);
    return;
  }
  unsigned leading = (unsigned)__builtin_clzll(delta);
  unsigned trailing = (unsigned)__builtin_ctzll(delta);
  if (leading >= 32) leading = 31; /* 5 bits to store it */
  if (a->leading != 0xff && leading >= a->leading && trailing >= a->trailing) {
    /* Fits the previous window: control bits 10 and the window's bits. */
    put_bits(a, 0x2, 2);
    put_bits(a, delta >> a->trailing, 64u - a->leading - a->trailing);
    return;
  }
  a->leading = (uint8_t)leading;
  a->trailing = (uint8_t)trailing;
  unsigned sig = 64 - leading - trailing; /* 1..64; 64 is written as 0 */
  put_bits(a, 0x3, 2);
  put_bits(a, leading, 5);
  put_bits(a, sig & 63, 6);
  put_bits(a, delta >> trailing, sig);
}

int tsdb_xor_append(tsdb_xor_appender *a, int64_t t, double v) {
  if (a->num == TSDB_XOR_MAX_SAMPLES) return ORR_ERANGE;
  /* Worst case: 4 + 64 dod bits and 2 + 5 + 6 + 64 value bits, or two
   * 10-byte varints and 8 value bytes; plus 8 for the 8-byte OR window. */
  if (!a->data && tsdb_xor_appender_init(a)) return ORR_ENOMEM;
  if (reserve(a, 40)) return ORR_ENOMEM;
  uint64_t vbits;
  memcpy(&vbits, &v, sizeof(vbits));
  uint64_t tdelta = 0;
  if (a->num == 0) {
    /* zig-zag varint timestamp, then the value's 64 bits */
    begin_bytes(a);
    put_uvarint(a, ((uint64_t)t << 1) ^ (uint64_t)(t >> 63));
    for (int i = 7; i >= 0; i--) a->data[a->len++] = (uint8_t)(vbits >> (i * 8));
    end_bytes(a);
  } else if (a->num == 1) {
    tdelta = (uint64_t)t - (uint64_t)a->t;
    begin_bytes(a);
    put_uvarint(a, tdelta);
    end_bytes(a);
    put_value(a, vbits);
  } else {
    tdelta = (uint64_t)t - (uint64_t)a->t;
    int64_t dod = (int64_t)(tdelta - a->tdelta);
    if (dod == 0) {
      put_bits(a, 0, 1);
    } else if (bit_range(dod, 14)) {
      put_bits(a, 0x2, 2);
      put_bits(a, (uint64_t)dod, 14);
    } else if (bit_range(dod, 17)) {
      put_bits(a, 0x6, 3);
      put_bits(a, (uint64_t)dod, 17);
    } else if (bit_range(dod, 20)) {
      put_bits(a, 0xe, 4);
      put_bits(a, (uint64_t)dod, 20);
    } else {
      put_bits(a, 0xf, 4);
      put_bits(a, (uint64_t)dod, 64);
    }
    put_value(a, vbits);
  }
  a->t = t;
  a->vbits = vbits;
  a->tdelta = tdelta;
  a->num++;
  a->data[0] = (uint8_t)(a->num >> 8);
  a->data[1] = (uint8_t)a->num;
  return 0;
}

const uint8_t *tsdb_xor_bytes(const tsdb_xor_appender *a, size_t *len) {
  static const uint8_t empty[XOR_HEADER_LEN] = {0, 0};
  if (!a->data) {
    *len = XOR_HEADER_LEN;
    return empty;
  }
  *len = a->len;
  return a->data;
}

/* ---------------------------------------------------------------- decoder
 * The iterator keeps a bit position into the chunk. A read peeks 64 bits
 * starting at a byte with one unaligned big-endian load and shifts out the
 * bits before the position, which leaves at least 57 valid bits: usually
 * enough for a whole sample (dod and value) from one load. While 32 or
 * more bytes remain past the position (a sample is at most 145 bits) the
 * loads need no bounds checks; near the end a checked variant of the same
 * code reads byte by byte and verifies every length. */

#define FAST_MARGIN 32 /* bytes: 19 for a sample + 8 for a load + slack */
#define PEEK_BITS 57   /* valid bits of one peek at least */

static inline uint64_t load_be64(const uint8_t *p) {
  uint64_t x;
  memcpy(&x, p, 8);
  return __builtin_bswap64(x);
}

/* 64 bits at bit |pos|, left-aligned; bytes past the end read as zero. */
static inline uint64_t peek(const tsdb_xor_iter *it, uint64_t pos, int checked) {
  size_t i = (size_t)(pos >> 3);
  uint64_t x;
  if (!checked) {
    x = load_be64(it->base + i);
  } else {
    size_t len = (size_t)(it->end - it->base);
    if (i + 8 <= len) {
      x = load_be64(it->base + i);
    } else {
      x = 0;
      for (size_t k = 0; i + k < len; k++) x |= (uint64_t)it->base[i + k] << (56 - 8 * k);
    }
  }
  return x << (pos & 7);
}

static int corrupt(tsdb_xor_iter *it) {
  it->err = ORR_ECORRUPT;
  return ORR_ECORRUPT;
}

/* By the number of leading ones of a dod prefix (0..3): bits consumed in
 * all and payload bits. */
static const uint8_t dod_consume[4] = {1, 16, 20, 24};
static const uint8_t dod_size[4] = {0, 14, 17, 20};

/* Decodes one value at it->pos, given |w| = peek(pos) (|used| bits of it
 * already consumed by the caller, |used| <= 24). */
static inline __attribute__((always_inline)) int read_value(tsdb_xor_iter *it, uint64_t w,
                                                            unsigned used, int checked) {
  uint64_t pos = it->pos;
  uint64_t limit = (uint64_t)(it->end - it->base) * 8;
  if (used > 24) {
    w = peek(it, pos, checked);
    used = 0;
  } else {
    w <<= used;
  }
  unsigned avail = PEEK_BITS - used;
  unsigned top = (unsigned)(w >> 62), ctl, m;
  if (top < 2) { /* 0: the same value */
    ctl = 1;
    m = 0;
  } else if (top == 2) { /* 10: the previous window */
    ctl = 2;
    m = 64u - it->leading - it->trailing;
  } else { /* 11: 5 bits of leading zeros, 6 of length (0 means 64) */
    unsigned lead = (unsigned)(w >> 57) & 31;
    m = (unsigned)(w >> 51) & 63;
    if (m == 0) m = 64;
    if (checked && pos + 13 > limit) return corrupt(it);
    if (lead + m > 64) return corrupt(it); /* no encoder writes this */
    it->leading = (uint8_t)lead;
    it->trailing = (uint8_t)(64 - lead - m);
    ctl = 13;
  }
  if (checked && pos + ctl + m > limit) return corrupt(it);
  uint64_t bits;
  if (__builtin_expect(ctl + m <= avail, 1)) {
    bits = ((w << ctl) >> (63 - m)) >> 1; /* m may be 0 */
  } else {
    uint64_t at = pos + ctl;
    if (m <= PEEK_BITS) {
      bits = peek(it, at, checked) >> (64 - m);
    } else {
      unsigned r = m - 32;
      bits = (peek(it, at, checked) >> 32) << r;
      bits |= peek(it, at + 32, checked) >> (64 - r);
    }
  }
  it->vbits ^= bits << it->trailing; /* trailing <= 63 */
  it->pos = pos + ctl + m;
  memcpy(&it->v, &it->vbits, sizeof(it->v));
  it->read++;
  return 1;
}

/* Decodes sample 3 onwards: a delta of delta, then a value; |w| is
 * peek(it->pos). */
static inline __attribute__((always_inline)) int read_sample_w(tsdb_xor_iter *it, uint64_t w,
                                                               int checked) {
  uint64_t pos = it->pos;
  uint64_t limit = (uint64_t)(it->end - it->base) * 8;
  unsigned ones = (unsigned)__builtin_clzll(~w | 0x0fffffffffffffffull);
  uint64_t dod;
  unsigned used;
  if (ones < 4) {
    unsigned sz = dod_size[ones];
    used = dod_consume[ones];
    if (checked && pos + used > limit) return corrupt(it);
    dod = ((w << (ones + 1)) >> (63 - sz)) >> 1; /* 0 when sz is 0 */
    /* Payloads above 2^(sz-1) are negative; 2^(sz-1) itself is not. */
    if (dod > (((uint64_t)1 << sz) >> 1)) dod -= (uint64_t)1 << sz;
  } else {
    used = 68;
    if (checked && pos + used > limit) return corrupt(it);
    dod = (peek(it, pos + 4, checked) >> 32) << 32;
    dod |= peek(it, pos + 36, checked) >> 32;
  }
  it->tdelta += dod;
  it->t = (int64_t)((uint64_t)it->t + it->tdelta);
  it->pos = pos + used;
  return read_value(it, w, used, checked);
}

static inline __attribute__((always_inline)) int read_sample(tsdb_xor_iter *it, int checked) {
  return read_sample_w(it, peek(it, it->pos, checked), checked);
}

void tsdb_xor_iter_init(tsdb_xor_iter *it, const uint8_t *p, size_t n) {
  memset(it, 0, sizeof(*it));
  it->base = p;
  it->end = n ? p + n : p; /* p may be NULL when n is 0 */
  if (n < XOR_HEADER_LEN) {
    it->err = ORR_ECORRUPT;
    return;
  }
  it->total = (uint16_t)((p[0] << 8) | p[1]);
  it->pos = XOR_HEADER_LEN * 8;
}

int tsdb_xor_num_samples(const uint8_t *p, size_t n, uint16_t *count) {
  if (n < XOR_HEADER_LEN) return ORR_ECORRUPT;
  *count = (uint16_t)((p[0] << 8) | p[1]);
  return 0;
}

static int read_uvarint(tsdb_xor_iter *it, uint64_t *out) {
  size_t at = (size_t)(it->pos >> 3); /* byte-aligned here */
  orr_dec d = orr_dec_make(it->base + at, (size_t)(it->end - it->base) - at);
  if (orr_dec_uvarint(&d, out)) return corrupt(it);
  it->pos = (uint64_t)(d.p - it->base) * 8;
  return 0;
}

int tsdb_xor_iter_next(tsdb_xor_iter *it) {
  if (__builtin_expect(it->read >= 2 && it->read < it->total && !it->err, 1)) {
    if ((it->pos >> 3) + FAST_MARGIN <= (uint64_t)(it->end - it->base)) return read_sample(it, 0);
    return read_sample(it, 1);
  }
  if (it->err) return it->err;
  if (it->read == it->total) return 0;
  if (it->read == 0) {
    uint64_t zz;
    if (read_uvarint(it, &zz)) return ORR_ECORRUPT;
    size_t at = (size_t)(it->pos >> 3);
    if ((size_t)(it->end - it->base) - at < 8) return corrupt(it);
    it->t = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
    it->vbits = load_be64(it->base + at);
    it->pos += 64;
    memcpy(&it->v, &it->vbits, sizeof(it->v));
    it->read = 1;
    return 1;
  }
  /* read == 1: the first delta, byte-aligned, then the bit stream. */
  if (read_uvarint(it, &it->tdelta)) return ORR_ECORRUPT;
  it->t = (int64_t)((uint64_t)it->t + it->tdelta);
  return read_value(it, peek(it, it->pos, 1), 0, 1);
}

int tsdb_xor_iter_seek(tsdb_xor_iter *it, int64_t t) {
  if (it->err) return it->err;
  while (it->read == 0 || it->t < t) {
    int rc = tsdb_xor_iter_next(it);
    if (rc <= 0) return rc;
  }
  return 1;
}

/* Samples that repeat the previous one's interval and value take two zero
 * bits each (delta of delta 0, value unchanged). A constant series at a
 * steady interval is almost only these: up, *_info, a counter at rest, a
 * rule's output (evaluated exactly on its interval), and any of them
 * Prometheus scrapes, as it aligns scrape times within 2 ms of the interval
 * to it (since 2020; 2.42 has it, tuned by the hidden flag
 * --scrape.timestamp-tolerance). The zero bits before the next set bit of
 * one peek (|w|, at it->pos) are a run of them, read at once: at most as
 * many as the chunk still holds, and as the bits up to |limit| hold (bits
 * past a chunk's end are no samples). They go to out[*k...], *k counting
 * them. Returns 0 when there are none, 1 when
 * they were read (it->t, ->pos and ->read advanced), 2 when one was past
 * |maxt|: the samples up to and including it are written and the decode
 * stops there (the iterator is left as it was). */
#define RUN_BELOW ((uint64_t)1 << 60) /* a peek below this starts two or more */
static inline __attribute__((always_inline)) int repeat_run(tsdb_xor_iter *it, uint64_t w,
                                                            uint64_t limit, tsdb_sample *out,
                                                            int *k, int64_t maxt) {
  if (__builtin_expect(w >= RUN_BELOW, 1)) return 0;
  out += *k;
  unsigned run = (unsigned)__builtin_clzll(w | 1) >> 1;
  if (run > PEEK_BITS / 2) run = PEEK_BITS / 2;
  if (run > (unsigned)(it->total - it->read)) run = (unsigned)(it->total - it->read);
  if (run > (limit - it->pos) / 2) run = (unsigned)((limit - it->pos) / 2);
  uint64_t t = (uint64_t)it->t;
  double v = it->v;
  for (unsigned j = 0; j < run; j++) {
    t += it->tdelta;
    out[j].t = (int64_t)t;
    out[j].v = v;
    if ((int64_t)t > maxt) {
      *k += (int)j + 1;
      return 2;
    }
  }
  it->t = (int64_t)t;
  it->pos += 2 * (uint64_t)run;
  it->read = (uint16_t)(it->read + run);
  *k += (int)run;
  return run > 0;
}

/* Chunks up to this size are decoded from a copy followed by FAST_MARGIN
 * zero bytes, so that the fast path runs to the last sample instead of
 * leaving the last 32 bytes (an eighth of a typical chunk) to the checked
 * path; it then checks after each sample that it has not run past the
 * chunk. */
#define PAD_MAX 2048

/* tsdb_xor_decode, stopping after the first sample past |maxt| (INT64_MAX:
 * never; the comparison then folds away). */
static inline __attribute__((always_inline)) int decode_upto(const uint8_t *p, size_t n,
                                                             tsdb_sample *out, size_t cap,
                                                             int64_t maxt) {
  uint8_t padded[PAD_MAX + FAST_MARGIN];
  bool pad = n <= PAD_MAX;
  if (pad && n > 0) {
    memcpy(padded, p, n);
    memset(padded + n, 0, FAST_MARGIN);
    p = padded;
  }
  tsdb_xor_iter it;
  tsdb_xor_iter_init(&it, p, n);
  if (it.err) return it.err;
  if (it.total > cap) return ORR_ERANGE;
  int rc, k = 0;
  /* The first two samples and (unpadded) the last few bytes take the
   * general path; the bulk runs the inlined fast path on this local
   * iterator, whose fields the compiler keeps in registers (next() must
   * store them). */
  while ((rc = tsdb_xor_iter_next(&it)) == 1) {
    out[k].t = it.t;
    out[k].v = it.v;
    k++;
    if (it.t > maxt) return k;
    if (it.read < 2) continue;
    /* A copy whose address never escapes, so that it can live in
     * registers (the project builds with -fno-strict-aliasing, and the
     * stores to |out| could otherwise alias it). */
    tsdb_xor_iter st = it;
    size_t len = (size_t)(st.end - st.base);
    const uint64_t limit = (uint64_t)len * 8;
    if (pad) {
      /* Each sample starts at most at bit len*8, so its reads stay within
       * the FAST_MARGIN zero bytes past the chunk. */
      while (st.read < st.total) {
        uint64_t w = peek(&st, st.pos, 0);
        int run = repeat_run(&st, w, limit, out, &k, maxt);
        if (run == 2) return k;
        if (run) continue;
        if (read_sample_w(&st, w, 0) != 1) return st.err;
        if (st.pos > limit) return ORR_ECORRUPT;
        out[k].t = st.t;
        out[k].v = st.v;
        k++;
        if (st.t > maxt) return k;
      }
    } else {
      while (st.read < st.total && (st.pos >> 3) + FAST_MARGIN <= len) {
        uint64_t w = peek(&st, st.pos, 0);
        int run = repeat_run(&st, w, limit, out, &k, maxt);
        if (run == 2) return k;
        if (run) continue;
        if (read_sample_w(&st, w, 0) != 1) return st.err;
        out[k].t = st.t;
        out[k].v = st.v;
        k++;
        if (st.t > maxt) return k;
      }
    }
    it = st;
  }
  return rc < 0 ? rc : k;
}

int tsdb_xor_decode(const uint8_t *p, size_t n, tsdb_sample *out, size_t cap) {
  return decode_upto(p, n, out, cap, INT64_MAX);
}

int tsdb_xor_decode_upto(const uint8_t *p, size_t n, tsdb_sample *out, size_t cap, int64_t maxt) {
  return decode_upto(p, n, out, cap, maxt);
}

/* The first two samples of a padded chunk (general path) into |out|;
 * returns how many (0..2) or an error. */
static int decode_head(tsdb_xor_iter *it, tsdb_sample *out) {
  int k = 0;
  while (it->read < 2 && it->read < it->total) {
    int rc = tsdb_xor_iter_next(it);
    if (rc < 0) return rc;
    if (rc == 0) break;
    out[k].t = it->t;
    out[k].v = it->v;
    k++;
  }
  return k;
}

int tsdb_xor_decode2(const uint8_t *p1, size_t n1, tsdb_sample *out1, size_t cap1, int *k1,
                     const uint8_t *p2, size_t n2, tsdb_sample *out2, size_t cap2, int *k2) {
  *k1 = *k2 = 0;
  if (n1 > PAD_MAX || n2 > PAD_MAX || n1 < XOR_HEADER_LEN || n2 < XOR_HEADER_LEN) {
    int a = tsdb_xor_decode(p1, n1, out1, cap1);
    if (a < 0) return a;
    int b = tsdb_xor_decode(p2, n2, out2, cap2);
    if (b < 0) return b;
    *k1 = a;
    *k2 = b;
    return 0;
  }
  uint8_t pa[PAD_MAX + FAST_MARGIN], pb[PAD_MAX + FAST_MARGIN];
  memcpy(pa, p1, n1);
  memset(pa + n1, 0, FAST_MARGIN);
  memcpy(pb, p2, n2);
  memset(pb + n2, 0, FAST_MARGIN);
  tsdb_xor_iter a, b;
  tsdb_xor_iter_init(&a, pa, n1);
  tsdb_xor_iter_init(&b, pb, n2);
  if (a.total > cap1 || b.total > cap2) return ORR_ERANGE;
  int ka = decode_head(&a, out1), kb = decode_head(&b, out2);
  if (ka < 0) return ka;
  if (kb < 0) return kb;
  /* Two independent chains of loads and shifts, interleaved: each sample's
   * position depends on the previous one's bits, so one chunk alone keeps
   * the core waiting on that latency. Padding as in tsdb_xor_decode. */
  const uint64_t la = (uint64_t)n1 * 8, lb = (uint64_t)n2 * 8;
  tsdb_xor_iter sa = a, sb = b;
  while (sa.read < sa.total && sb.read < sb.total) {
    if (read_sample(&sa, 0) != 1) return sa.err;
    if (read_sample(&sb, 0) != 1) return sb.err;
    if (sa.pos > la || sb.pos > lb) return ORR_ECORRUPT;
    out1[ka].t = sa.t;
    out1[ka].v = sa.v;
    ka++;
    out2[kb].t = sb.t;
    out2[kb].v = sb.v;
    kb++;
  }
  while (sa.read < sa.total) {
    if (read_sample(&sa, 0) != 1) return sa.err;
    if (sa.pos > la) return ORR_ECORRUPT;
    out1[ka].t = sa.t;
    out1[ka].v = sa.v;
    ka++;
  }
  while (sb.read < sb.total) {
    if (read_sample(&sb, 0) != 1) return sb.err;
    if (sb.pos > lb) return ORR_ECORRUPT;
    out2[kb].t = sb.t;
    out2[kb].v = sb.v;
    kb++;
  }
  *k1 = ka;
  *k2 = kb;
  return 0;
}

/* ---------------------------------------------------------------- cutting */

void tsdb_chunk_cutter_init(tsdb_chunk_cutter *c, int64_t chunk_range) {
  memset(c, 0, sizeof(*c));
  c->range = chunk_range;
}

/* The end of |t|'s chunk range (rangeForTimestamp; Go and C both truncate). */
static int64_t range_end(int64_t t, int64_t width) { return (t / width) * width + width; }

/* computeChunkEndTime: splits [start, max) into chunks of the rate seen so
 * far (|cur| is the last sample's time), 4x the samples already in. */
static int64_t chunk_end_time(int64_t start, int64_t cur, int64_t max) {
  int64_t n = (max - start) / ((cur - start + 1) * 4);
  if (n <= 1) return max;
  return start + (max - start) / n;
}

int tsdb_chunk_cutter_add(tsdb_chunk_cutter *c, int64_t t) {
  if (c->range <= 0) return ORR_EINVAL;
  if (c->n == 0) {
    c->min_t = c->max_t = t;
    c->next_at = range_end(t, c->range);
    c->n = 1;
    return 1;
  }
  if (t <= c->max_t) return ORR_EINVAL;
  if (c->n == TSDB_SAMPLES_PER_CHUNK / 4) c->next_at = chunk_end_time(c->min_t, c->max_t, c->next_at);
  if (t >= c->next_at || c->n >= 2 * TSDB_SAMPLES_PER_CHUNK) {
    c->min_t = c->max_t = t;
    c->next_at = range_end(t, c->range);
    c->n = 1;
    return 1;
  }
  c->max_t = t;
  c->n++;
  return 0;
}

void tsdb_chunks_free(tsdb_chunk *c, size_t n) {
  if (!c) return;
  for (size_t i = 0; i < n; i++) free(c[i].data);
  free(c);
}

int tsdb_xor_encode_series(const tsdb_sample *s, size_t n, int64_t chunk_range,
                           tsdb_chunk **out, size_t *nout) {
  tsdb_chunk_cutter cut;
  tsdb_xor_appender app;
  tsdb_chunk *chunks = NULL;
  size_t nchunks = 0, cap = 0;
  int rc = 0;
  *out = NULL;
  *nout = 0;
  tsdb_chunk_cutter_init(&cut, chunk_range);
  rc = tsdb_xor_appender_init(&app);
  if (rc) goto out;
  for (size_t i = 0; i <= n; i++) {
    int start = 1; /* past the last sample: flush the open chunk */
    if (i < n) {
      start = tsdb_chunk_cutter_add(&cut, s[i].t);
      if (start < 0) {
        rc = start;
        goto out;
      }
    }
    if (start && app.num > 0) {
      if (nchunks == cap) {
        size_t ncap = cap ? cap * 2 : 8;
        tsdb_chunk *nc = realloc(chunks, ncap * sizeof(*nc));
        if (!nc) {
          rc = ORR_ENOMEM;
          goto out;
        }
        chunks = nc;
        cap = ncap;
      }
      tsdb_chunk *c = &chunks[nchunks];
      c->enc = TSDB_ENC_XOR;
      c->len = app.len;
      c->data = malloc(app.len);
      if (!c->data) {
        rc = ORR_ENOMEM;
        goto out;
      }
      memcpy(c->data, app.data, app.len);
      c->mint = s[i - app.num].t;
      c->maxt = s[i - 1].t;
      nchunks++;
      tsdb_xor_appender_reset(&app);
    }
    if (i < n) {
      rc = tsdb_xor_append(&app, s[i].t, s[i].v);
      if (rc) goto out;
    }
  }
  *out = chunks;
  *nout = nchunks;
  chunks = NULL;
  nchunks = 0;
out:
  tsdb_xor_appender_free(&app);
  tsdb_chunks_free(chunks, nchunks);
  return rc;
}
