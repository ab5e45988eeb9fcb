/* float_ryu.h: what float_ryu.c and its table generator gen_pow5.c share —
 * the widths of the power-of-5 tables and the integer approximations of
 * logarithms that index them (gen_pow5.c checks each against exact big
 * integers over the range float_ryu.c uses, and fails the build if one is
 * off). Internal to lib/base. */
#ifndef ORR_FLOAT_RYU_H
#define ORR_FLOAT_RYU_H

#include <stdint.h>

/* Each table entry is a 125-bit approximation kept in two 64-bit words
 * (low, high): 5^i's top 125 bits for the multiplications that scale a
 * double with a negative binary exponent, and 2^(bits(5^i) - 1 + 125) / 5^i
 * rounded up for those with a non-negative one. 125 bits leave enough
 * headroom over the 55-bit operands (4 × 53-bit mantissa + 2) that the
 * truncated products are the exact floors (the paper's section 3.3). */
#define RYU_POW5_BITS 125
#define RYU_POW5_INV_BITS 125
/* 5^325 covers the smallest subnormal (binary exponent -1076 less the
 * decimal exponent chosen for it); 5^341 the largest double's 10^-308. */
#define RYU_POW5_N 326
#define RYU_POW5_INV_N 342

/* The number of bits of 5^e: floor(e × log2 5) + 1 (checked for e in [0, 400]). */
static inline uint32_t ryu_pow5_bits(uint32_t e) { return ((e * 1217359u) >> 19) + 1; }
/* floor(e × log10 2) (checked for e in [0, 1100]). */
static inline uint32_t ryu_log10_pow2(uint32_t e) { return (e * 78913u) >> 18; }
/* floor(e × log10 5) (checked for e in [0, 1100]). */
static inline uint32_t ryu_log10_pow5(uint32_t e) { return (e * 732923u) >> 20; }

#endif /* ORR_FLOAT_RYU_H */
