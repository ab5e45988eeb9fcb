/* float.c: Go-compatible float formatting, strconv.FormatFloat(v, 'g', -1, 64):
 * the shortest decimal that reads back as the same double (float_ryu.c), laid
 * out as Go's %g does for the shortest precision (exponent form when exp < -4
 * or >= 6), or as Prometheus's JSON sample values. */
#include <math.h>
#include <string.h>

#include "base.h"

/* Writes the decimal digits of |m| (no leading zeros) to |d|; returns how many. */
static int digits(uint64_t m, char d[20]) {
  char tmp[20];
  int i = 20;
  do {
    tmp[--i] = (char)('0' + m % 10);
    m /= 10;
  } while (m);
  memcpy(d, tmp + i, (size_t)(20 - i));
  return 20 - i;
}

/* Lays out |v| with the shortest round-trip digits: mode 'g' as Go's %g,
 * mode 'j' as Prometheus's JSON values ('f', or 'e' outside [1e-6, 1e21)). */
static int layout(double v, int mode, char *out, size_t outlen) {
  char buf[64];
  size_t n = 0;
  if (isnan(v)) {
    memcpy(buf, "NaN", n = 3);
  } else if (isinf(v)) {
    memcpy(buf, v > 0 ? "+Inf" : "-Inf", n = 4);
  } else if (v == 0) {
    if (signbit(v)) buf[n++] = '-';
    buf[n++] = '0';
  } else {
    if (v < 0) buf[n++] = '-';
    int e10;
    char d[20];
    int nd = digits(orr__float_shortest(fabs(v), &e10), d);
    int dp = e10 + nd; /* v ≈ 0.d1d2… × 10^dp */
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
      /* Go's exponent: a sign and at least two digits. */
      buf[n++] = 'e';
      buf[n++] = exp < 0 ? '-' : '+';
      unsigned ae = (unsigned)(exp < 0 ? -exp : exp);
      if (ae >= 100) buf[n++] = (char)('0' + ae / 100);
      buf[n++] = (char)('0' + ae / 10 % 10);
      buf[n++] = (char)('0' + ae % 10);
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
    }
  }
  /* As snprintf: truncated and terminated, the full length returned. */
  if (outlen) {
    size_t c = n < outlen - 1 ? n : outlen - 1;
    memcpy(out, buf, c);
    out[c] = 0;
  }
  return (int)n;
}

int orr_format_float(double v, char *out, size_t outlen) { return layout(v, 'g', out, outlen); }

int orr_format_float_json(double v, char *out, size_t outlen) { return layout(v, 'j', out, outlen); }
