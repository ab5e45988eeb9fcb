/* float.c: Go-compatible float formatting, strconv.FormatFloat(v, 'g', -1, 64):
 * the shortest decimal that reads back as the same double, laid out as Go's
 * %g does for the shortest precision (exponent form when exp < -4 or >= 6). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

static const uint64_t pow10_u64[18] = {1ull,
                                       10ull,
                                       100ull,
                                       1000ull,
                                       10000ull,
                                       100000ull,
                                       1000000ull,
                                       10000000ull,
                                       100000000ull,
                                       1000000000ull,
                                       10000000000ull,
                                       100000000000ull,
                                       1000000000000ull,
                                       10000000000000ull,
                                       100000000000000ull,
                                       1000000000000000ull,
                                       10000000000000000ull,
                                       100000000000000000ull};

/* Does m * 10^e read back as |v|? */
static int reads_back(uint64_t m, int e, double v) {
  char buf[48];
  snprintf(buf, sizeof(buf), "%llue%d", (unsigned long long)m, e);
  return strtod(buf, NULL) == v;
}

/* Shortest round-trip digits of a positive finite |v|: |m| has |*nd| digits
 * and v ≈ 0.d1d2… × 10^|*dp|. For each precision the correctly rounded
 * candidate is tried first; when the rounding interval is lopsided (at powers
 * of two) the candidate one unit beside it may be the only one that reads
 * back, and it is then the one Go picks. */
static uint64_t shortest(double v, int *nd, int *dp) {
  for (int p = 1; p <= 17; p++) {
    char buf[48];
    snprintf(buf, sizeof(buf), "%.*e", p - 1, v);
    uint64_t m = 0;
    const char *q = buf;
    for (; *q && *q != 'e'; q++)
      if (*q >= '0' && *q <= '9') m = m * 10 + (uint64_t)(*q - '0');
    int e10 = atoi(q + 1); /* v ≈ d.ddd × 10^e10 */
    int e = e10 - (p - 1);  /* v ≈ m × 10^e */
    uint64_t cand[3] = {m, m - 1, m + 1};
    for (int k = 0; k < 3; k++) {
      uint64_t c = cand[k];
      int ce = e;
      if (k == 1 && m == pow10_u64[p - 1]) { /* 1000 - 1 unit at p digits is 9999e-1 */
        c = m * 10 - 1;
        ce = e - 1;
      }
      if (c == 0) continue;
      if (reads_back(c, ce, v)) {
        int digits = 0;
        while (c % 10 == 0) {
          c /= 10;
          ce++;
        }
        for (uint64_t t = c; t; t /= 10) digits++;
        *nd = digits;
        *dp = ce + digits;
        return c;
      }
    }
  }
  /* Unreachable: 17 significant digits always round-trip. */
  *nd = 17;
  *dp = 0;
  return 0;
}

int orr_format_float(double v, char *out, size_t outlen) {
  char buf[64];
  size_t n = 0;
  if (isnan(v)) {
    n = (size_t)snprintf(buf, sizeof(buf), "NaN");
  } else if (isinf(v)) {
    n = (size_t)snprintf(buf, sizeof(buf), v > 0 ? "+Inf" : "-Inf");
  } else if (v == 0) {
    n = (size_t)snprintf(buf, sizeof(buf), signbit(v) ? "-0" : "0");
  } else {
    int nd, dp;
    if (v < 0) buf[n++] = '-';
    uint64_t m = shortest(fabs(v), &nd, &dp);
    char d[24];
    snprintf(d, sizeof(d), "%llu", (unsigned long long)m);
    int exp = dp - 1;
    if (exp < -4 || exp >= 6) {
      buf[n++] = d[0];
      if (nd > 1) {
        buf[n++] = '.';
        memcpy(buf + n, d + 1, (size_t)nd - 1);
        n += (size_t)nd - 1;
      }
      n += (size_t)snprintf(buf + n, sizeof(buf) - n, "e%c%02d", exp < 0 ? '-' : '+',
                            exp < 0 ? -exp : exp);
    } else {
      if (dp > 0) {
        for (int i = 0; i < dp; i++) buf[n++] = i < nd ? d[i] : '0';
      } else {
        buf[n++] = '0';
      }
      if (nd > dp) {
        buf[n++] = '.';
        for (int i = dp < 0 ? dp : 0; i < 0; i++) buf[n++] = '0';
        for (int i = dp > 0 ? dp : 0; i < nd; i++) buf[n++] = d[i];
      }
      buf[n] = 0;
    }
  }
  if (outlen) snprintf(out, outlen, "%s", buf);
  return (int)n;
}
