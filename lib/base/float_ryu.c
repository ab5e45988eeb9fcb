/* float_ryu.c: the shortest decimal that reads back as a given double, by
 * Ryu (Ulf Adams, "Ryu: Fast Float-to-String Conversion", PLDI 2018),
 * written here from the paper. float.c lays the digits out.
 *
 * The idea, for a positive finite double v = m2 × 2^e2:
 *  1. Every real in the half-open gaps to v's neighbours reads back as v
 *     (strtod rounds to nearest, ties to even, so the gap ends belong to v
 *     when m2 is even). Scaled by 4 so that the ends are integers, they are
 *     mm = 4·m2 - 1 or - 2 (the gap below a power of two is half as wide)
 *     and mp = 4·m2 + 2, around mv = 4·m2, all times 2^(e2 - 2).
 *  2. Pick a decimal exponent e10 and compute vm, vr, vp = floor(mm, mv, mp
 *     × 2^(e2-2) / 10^e10) with one 64 × 128-bit multiplication each, by a
 *     tabled power of 5 or its reciprocal (float_pow5.h, made exactly by
 *     gen_pow5.c at build time). e10 is chosen one digit short of where the
 *     interval [vm, vp] would be narrower than 10, so at least one digit is
 *     left to remove and the first removed digit is known for rounding.
 *  3. Remove trailing digits while a shorter number still fits in the
 *     interval; round vr on the last removed digit, so the shortest output is
 *     also the one closest to v (ties to even) — what Go's strconv prints.
 *  Exact ends need care: when vm (or vp, or vr) has no fraction dropped,
 *  an end that does not read back as v must stay out and an exact tie must
 *  round to even. Those cases are rare and found with divisibility tests
 *  (a power of 5 dividing the mantissa when e2 >= 0, a power of 2 when
 *  e2 < 0); the common path skips the bookkeeping. */
#include <stdbool.h>
#include <string.h>

#include "base.h"
#include "float_ryu.h"
#include "float_pow5.h"

__extension__ typedef unsigned __int128 u128;

/* floor(m × mul / 2^j), mul the 128-bit table entry (low, high); j >= 64
 * for every entry float_ryu.c uses, and the sum below cannot overflow since
 * m < 2^55 and mul < 2^126. */
static inline uint64_t mul_shift(uint64_t m, const uint64_t mul[2], uint32_t j) {
  u128 lo = (u128)m * mul[0];
  u128 hi = (u128)m * mul[1];
  return (uint64_t)(((lo >> 64) + hi) >> (j - 64));
}

static inline bool pow5_divides(uint64_t x, uint32_t q) {
  uint32_t n = 0;
  while (x % 5 == 0) {
    x /= 5;
    if (++n >= q) return true;
  }
  return n >= q;
}

static inline bool pow2_divides(uint64_t x, uint32_t q) { return q < 64 && (x & ((1ull << q) - 1)) == 0; }

uint64_t orr__float_shortest(double v, int *exp10) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof(bits));
  uint64_t frac = bits & ((1ull << 52) - 1);
  int32_t bexp = (int32_t)((bits >> 52) & 0x7ff);
  int32_t e2;
  uint64_t m2;
  /* e2 includes the -2 of the scaling by 4 below: v = mv × 2^e2. */
  if (bexp == 0) { /* subnormal */
    e2 = 1 - 1023 - 52 - 2;
    m2 = frac;
  } else {
    e2 = bexp - 1023 - 52 - 2;
    m2 = (1ull << 52) | frac;
  }
  /* strtod's ties go to the even mantissa: then the gap ends read back as v. */
  bool even = (m2 & 1) == 0;
  uint64_t mv = 4 * m2;
  uint64_t mp = mv + 2;
  /* At a power of two the next double down is half as far (not so for the
   * smallest normal exponent, whose neighbour below is a subnormal). */
  uint64_t mm = mv - 1 - (frac != 0 || bexp <= 1);

  uint64_t vr, vp, vm;
  int32_t e10;
  /* Whether vm and vr are exact so far (every dropped digit a zero). */
  bool vm_tz = false, vr_tz = false;
  if (e2 >= 0) {
    /* e10 = q = max(0, floor(e2·log10 2) - 1): v / 10^q = mv × 2^(e2-q) / 5^q. */
    uint32_t q = ryu_log10_pow2((uint32_t)e2);
    if (e2 > 3) q--;
    e10 = (int32_t)q;
    uint32_t j = RYU_POW5_INV_BITS + ryu_pow5_bits(q) - 1 - (uint32_t)e2 + q;
    vr = mul_shift(mv, ryu_pow5_inv[q], j);
    vp = mul_shift(mp, ryu_pow5_inv[q], j);
    vm = mul_shift(mm, ryu_pow5_inv[q], j);
    /* Exact when 5^q divides the operand (2^(e2-q) is whole); 5^24 > 2^56 >
     * mp, so from q = 24 on nothing is. */
    if (q < 24) {
      vr_tz = pow5_divides(mv, q);
      if (even) vm_tz = pow5_divides(mm, q);
      else if (pow5_divides(mp, q)) vp--; /* the upper end does not read back */
    }
  } else {
    /* e10 = q + e2 with q = max(0, floor(-e2·log10 5) - 1):
     * v / 10^e10 = mv × 5^(-e2-q) / 2^q. */
    uint32_t q = ryu_log10_pow5((uint32_t)-e2);
    if (-e2 > 1) q--;
    e10 = (int32_t)q + e2;
    uint32_t i = (uint32_t)-e2 - q;
    /* ryu_pow5[i] is 5^i × 2^-k. */
    int32_t k = (int32_t)ryu_pow5_bits(i) - RYU_POW5_BITS;
    uint32_t j = (uint32_t)((int32_t)q - k);
    vr = mul_shift(mv, ryu_pow5[i], j);
    vp = mul_shift(mp, ryu_pow5[i], j);
    vm = mul_shift(mm, ryu_pow5[i], j);
    /* Exact when 2^q divides the operand. */
    vr_tz = pow2_divides(mv, q);
    if (even) vm_tz = pow2_divides(mm, q);
    else if (pow2_divides(mp, q)) vp--;
  }

  int32_t removed = 0;
  uint64_t out;
  if (vm_tz || vr_tz) {
    /* Some value is exact (integers, short binary fractions): track
     * exactness digit by digit for exact ties and an admissible lower end. */
    uint32_t last = 0;
    while (vp / 10 > vm / 10) {
      vm_tz &= vm % 10 == 0;
      vr_tz &= last == 0;
      last = (uint32_t)(vr % 10);
      vr /= 10;
      vp /= 10;
      vm /= 10;
      removed++;
    }
    /* An exact, admissible lower end may be shorter still. */
    if (vm_tz) {
      while (vm % 10 == 0) {
        vr_tz &= last == 0;
        last = (uint32_t)(vr % 10);
        vr /= 10;
        vp /= 10;
        vm /= 10;
        removed++;
      }
    }
    if (vr_tz && last == 5 && vr % 2 == 0) last = 4; /* exactly halfway: to even */
    out = vr + ((vr == vm && (!even || !vm_tz)) || last >= 5);
  } else {
    /* Common: nothing is exact, so no ties; two digits at a time first. */
    bool round_up = false;
    if (vp / 100 > vm / 100) {
      round_up = vr % 100 >= 50;
      vr /= 100;
      vp /= 100;
      vm /= 100;
      removed += 2;
    }
    while (vp / 10 > vm / 10) {
      round_up = vr % 10 >= 5;
      vr /= 10;
      vp /= 10;
      vm /= 10;
      removed++;
    }
    /* vm itself lies below the interval: never print it. */
    out = vr + (vr == vm || round_up);
  }
  /* Rounding up can end in a zero (…9 + 1); keep the digits minimal. */
  while (out % 10 == 0) {
    out /= 10;
    removed++;
  }
  *exp10 = e10 + removed;
  return out;
}
