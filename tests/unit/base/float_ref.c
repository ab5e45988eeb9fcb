/* float_ref.c: the float formatter lib/base had before Ryu (float_ryu.c),
 * kept verbatim as the oracle test_float.c compares with and the baseline
 * bench_fmtfloat times: shortest digits found by printing with glibc's
 * correctly rounded %.*e at 15, 16 and 17 digits and reading back with
 * strtod, then the same layout rules. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "float_ref.h"

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

/* Shortest round-trip digits of a positive finite |v|: returns the digits
 * as an integer with |*nd| digits, v ≈ 0.d1d2… × 10^|*dp|.
 *
 * Only three precisions need trying. If the shortest decimal D that reads
 * back as v has at most 15 digits, then %.15e of v is D padded with zeros
 * (every decimal of 15 or fewer digits survives a trip through a double,
 * DBL_DIG), so stripping zeros gives D. Otherwise the shortest has 16 or 17
 * digits, and among those Go picks the one closest to v: the correctly
 * rounded one, or — when the rounding interval is lopsided at a power of
 * two — the candidate one unit beside it. 17 digits always read back.
 * Subnormals carry fewer bits, so the DBL_DIG argument does not hold for
 * them: every precision from 1 up is tried instead. */
static uint64_t shortest(double v, int *nd, int *dp) {
  int subnormal = v < DBL_MIN;
  for (int p = subnormal ? 1 : 15; p <= 17; p++) {
    char buf[48];
    snprintf(buf, sizeof(buf), "%.*e", p - 1, v);
    uint64_t m = 0;
    const char *q = buf;
    for (; *q && *q != 'e'; q++)
      if (*q >= '0' && *q <= '9') m = m * 10 + (uint64_t)(*q - '0');
    int e = atoi(q + 1) - (p - 1); /* v ≈ m × 10^e */
    uint64_t cand[3] = {m, m - 1, m + 1};
    for (int j = 0; j < (p == 15 && !subnormal ? 1 : 3); j++) {
      uint64_t c = cand[j];
      int ce = e;
      if (j == 1 && m == pow10_u64[p - 1]) { /* 1000 - 1 unit at p digits is 9999e-1 */
        c = m * 10 - 1;
        ce = e - 1;
      }
      /* The correctly rounded candidate is |buf| itself. */
      if (j == 0 ? strtod(buf, NULL) != v : !reads_back(c, ce, v)) continue;
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
  /* Unreachable: 17 significant digits always read back. */
  *nd = 1;
  *dp = 1;
  return 0;
}

/* Lays out |v| with the shortest round-trip digits: mode 'g' as Go's %g,
 * mode 'j' as Prometheus's JSON values ('f', or 'e' outside [1e-6, 1e21)). */
static int layout(double v, int mode, char *out, size_t outlen) {
  char buf[400];
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
    int exp_form;
    if (mode == 'g') {
      exp_form = exp < -4 || exp >= 6;
    } else { /* 'j': Prometheus's JSON rule, 'e' below 1e-6 and from 1e21 */
      double a = fabs(v);
      exp_form = a < 1e-6 || a >= 1e21;
    }
    if (exp_form) {
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

int ref_format_float(double v, char *out, size_t outlen) { return layout(v, 'g', out, outlen); }

int ref_format_float_json(double v, char *out, size_t outlen) { return layout(v, 'j', out, outlen); }
