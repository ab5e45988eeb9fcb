/* bench_fmtfloat.c: nanoseconds per value of orr_format_float_json (Ryu,
 * lib/base/float_ryu.c) and of the formatter it replaced (glibc %.*e and
 * strtod round trips, tests/unit/base/float_ref.c), on values whose shortest
 * form has 17 digits, on short sample-like decimals, and on random bit
 * patterns. The two run alternately, round after round; the median round is
 * printed. Times are the thread's CPU time, which a loaded machine disturbs
 * less than wall time. Exits 1 if the two ever write different text.
 *
 * Usage: bench_fmtfloat [VALUES per set, default 200000] [ROUNDS, default 5] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"
#include "float_ref.h"

static uint64_t xorshift(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Times |fn| over |v|; |sink| keeps the work from being optimised away. */
static double time_ns(int (*fn)(double, char *, size_t), const double *v, size_t n, size_t *sink) {
  char out[64];
  double t0 = now_ns();
  for (size_t i = 0; i < n; i++) *sink += (size_t)fn(v[i], out, sizeof(out)) + (unsigned char)out[1];
  return (now_ns() - t0) / (double)n;
}

static int digits_of(double v) {
  int e;
  int nd = 0;
  for (uint64_t m = orr__float_shortest(fabs(v), &e); m; m /= 10) nd++;
  return nd;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? (size_t)atol(argv[1]) : 200000;
  int rounds = argc > 2 ? atoi(argv[2]) : 5;
  if (n == 0 || rounds <= 0) {
    fprintf(stderr, "usage: bench_fmtfloat [VALUES] [ROUNDS]\n");
    return 2;
  }
  const char *names[3] = {"17-digit values", "short decimals (k/1000)", "random bit patterns"};
  double *sets[3];
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int s = 0; s < 3; s++) {
    sets[s] = malloc(n * sizeof(double));
    if (!sets[s]) return 1;
    for (size_t i = 0; i < n;) {
      uint64_t r = xorshift(&x);
      double d;
      if (s == 0) { /* rates and ratios: random in [0, 1000) with 17 digits */
        d = (double)(r >> 11) / 9007199254740992.0 * 1000;
        if (digits_of(d) != 17) continue;
      } else if (s == 1) {
        d = (double)(r % 10000000) / 1000;
      } else {
        memcpy(&d, &r, sizeof(d));
        if (isnan(d) || isinf(d)) continue;
      }
      sets[s][i++] = d;
    }
  }
  /* The same text first. */
  for (int s = 0; s < 3; s++)
    for (size_t i = 0; i < n; i++) {
      char a[64], b[64];
      orr_format_float_json(sets[s][i], a, sizeof(a));
      ref_format_float_json(sets[s][i], b, sizeof(b));
      if (strcmp(a, b) != 0) {
        fprintf(stderr, "bench_fmtfloat: %a: \"%s\", previously \"%s\"\n", sets[s][i], a, b);
        return 1;
      }
    }
  size_t sink = 0;
  double *tn = malloc((size_t)rounds * sizeof(double)), *to = malloc((size_t)rounds * sizeof(double));
  if (!tn || !to) return 1;
  printf("%-26s %12s %14s %8s   (CPU ns per value; %zu values, median of %d alternating rounds)\n",
         "values", "ryu ns", "previous ns", "speedup", n, rounds);
  for (int s = 0; s < 3; s++) {
    for (int r = 0; r < rounds; r++) {
      tn[r] = time_ns(orr_format_float_json, sets[s], n, &sink);
      to[r] = time_ns(ref_format_float_json, sets[s], n, &sink);
    }
    qsort(tn, (size_t)rounds, sizeof(double), cmp_dbl);
    qsort(to, (size_t)rounds, sizeof(double), cmp_dbl);
    double a = tn[rounds / 2], b = to[rounds / 2];
    printf("%-26s %12.1f %14.1f %7.1fx\n", names[s], a, b, b / a);
  }
  if (sink == 42) printf("\n"); /* never; keeps |sink| live */
  for (int s = 0; s < 3; s++) free(sets[s]);
  free(tn);
  free(to);
  return 0;
}
