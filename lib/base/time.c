/* time.c: clocks, Prometheus durations (model.ParseDuration/Duration.String
 * of prometheus/common as shipped with Prometheus 2.42) and the timestamps
 * the Prometheus HTTP API accepts (web/api/v1 parseTime). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base.h"

int64_t orr_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t orr_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- durations
 * Prometheus keeps a duration as Go's time.Duration (int64 nanoseconds), so
 * the largest duration it accepts is floor((2^63-1) / 1e6) milliseconds
 * (about 292 years); anything above is "duration out of range". */
#define DUR_MAX_MS INT64_C(9223372036854)

static const struct {
  const char *name;
  int64_t ms;
} dur_units[] = {
    {"y", INT64_C(365) * 24 * 3600 * 1000},
    {"w", INT64_C(7) * 24 * 3600 * 1000},
    {"d", INT64_C(24) * 3600 * 1000},
    {"h", INT64_C(3600) * 1000},
    {"m", INT64_C(60) * 1000},
    {"s", 1000},
    {"ms", 1},
};
#define DUR_NUNITS (sizeof(dur_units) / sizeof(dur_units[0]))

int orr_parse_duration(const char *s, size_t n, int64_t *ms) {
  if (n == 1 && s[0] == '0') { /* a bare "0" needs no unit */
    *ms = 0;
    return 0;
  }
  if (n == 0) return ORR_EINVAL;
  size_t i = 0;
  int next_unit = 0; /* units must appear in the table's order, each once */
  int64_t total = 0;
  int overflow = 0;
  while (i < n) {
    if (s[i] < '0' || s[i] > '9') return ORR_EINVAL;
    int64_t v = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      if (v > DUR_MAX_MS) continue; /* saturated: out of range anyway */
      v = v * 10 + (s[i] - '0');
    }
    if (i == n) return ORR_EINVAL; /* number without a unit */
    int u;
    if (s[i] == 'm' && i + 1 < n && s[i + 1] == 's') {
      u = 6; /* "ms"; a minute is always followed by a digit or the end */
      i += 2;
    } else {
      for (u = 0; u < 6; u++)
        if (s[i] == dur_units[u].name[0]) break;
      if (u == 6) return ORR_EINVAL;
      i++;
    }
    if (u < next_unit) return ORR_EINVAL;
    next_unit = u + 1;
    /* Syntax errors win over range errors, as in Prometheus where the
     * regular expression is matched before the numbers are looked at. */
    if (overflow || v > DUR_MAX_MS / dur_units[u].ms) {
      overflow = 1;
      continue;
    }
    total += v * dur_units[u].ms;
    if (total > DUR_MAX_MS) overflow = 1;
  }
  if (overflow) return ORR_ERANGE;
  *ms = total;
  return 0;
}

char *orr_format_duration(int64_t ms, char *out, size_t outlen) {
  char tmp[64];
  size_t len = 0;
  if (ms == 0) {
    snprintf(out, outlen, "0s");
    return out;
  }
  /* Prometheus 2.42 renders negative durations as ""; newer versions put a
   * "-" in front of the absolute value, which is what we do. */
  uint64_t left = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
  if (ms < 0) tmp[len++] = '-';
  for (size_t u = 0; u < DUR_NUNITS; u++) {
    uint64_t mult = (uint64_t)dur_units[u].ms;
    /* Years and weeks only when they divide evenly: "90d" reads better
     * than "12w6d". */
    if (u < 2 && left % mult != 0) continue;
    uint64_t v = left / mult;
    if (v == 0) continue;
    len += (size_t)snprintf(tmp + len, sizeof(tmp) - len, "%llu%s", (unsigned long long)v,
                            dur_units[u].name);
    left -= v * mult;
  }
  snprintf(out, outlen, "%s", tmp);
  return out;
}

/* ---------------------------------------------------------------- timestamps */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m) {
  static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly |n| digits at |*p|; returns -1 if they are not all digits. */
static int digits(const char **p, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  *p += n;
  return v;
}

/* RFC3339 with optional fractional seconds as Go's time.Parse(RFC3339Nano)
 * accepts it: a four-digit year, 'T', seconds 0-59, '.' or ',' before the
 * fraction (digits beyond nanoseconds are ignored), then 'Z' or +hh:mm. */
static int parse_rfc3339(const char *s, int64_t *ms) {
  const char *p = s;
  int year = digits(&p, 4);
  if (year < 0 || *p++ != '-') return ORR_EINVAL;
  int mon = digits(&p, 2);
  if (mon < 1 || mon > 12 || *p++ != '-') return ORR_EINVAL;
  int day = digits(&p, 2);
  if (day < 1 || day > days_in_month(year, mon) || *p++ != 'T') return ORR_EINVAL;
  int hh = digits(&p, 2);
  if (hh < 0 || hh > 23 || *p++ != ':') return ORR_EINVAL;
  int mm = digits(&p, 2);
  if (mm < 0 || mm > 59 || *p++ != ':') return ORR_EINVAL;
  int ss = digits(&p, 2);
  if (ss < 0 || ss > 59) return ORR_EINVAL;
  int64_t nsec = 0;
  if ((*p == '.' || *p == ',') && p[1] >= '0' && p[1] <= '9') {
    p++;
    int nd = 0;
    for (; *p >= '0' && *p <= '9'; p++, nd++)
      if (nd < 9) nsec = nsec * 10 + (*p - '0');
    for (; nd < 9; nd++) nsec *= 10;
  }
  int64_t offset = 0;
  if (*p == 'Z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int neg = *p++ == '-';
    int oh = digits(&p, 2);
    if (oh < 0 || oh > 23 || *p++ != ':') return ORR_EINVAL;
    int om = digits(&p, 2);
    if (om < 0 || om > 59) return ORR_EINVAL;
    offset = (int64_t)(oh * 3600 + om * 60) * (neg ? -1 : 1);
  } else {
    return ORR_EINVAL;
  }
  if (*p) return ORR_EINVAL;
  int64_t secs = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss - offset;
  *ms = secs * 1000 + nsec / 1000000;
  return 0;
}

/* Go's strconv.ParseFloat decimal syntax, strictly (strtod alone would also
 * take leading blanks, "0x1.8", "nan(…)"): [+-](digits[.digits]|.digits)[e[+-]digits]
 * or inf/infinity/nan. Returns 1 if |s| is such a number, with its value. */
static int parse_go_float(const char *s, double *out) {
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
    *out = *s == '-' ? -INFINITY : INFINITY;
    return 1;
  }
  if (p == s && strcasecmp(p, "nan") == 0) {
    *out = NAN;
    return 1;
  }
  int nd = 0;
  for (; *p >= '0' && *p <= '9'; p++) nd++;
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++) nd++;
  if (nd == 0) return 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
  }
  if (*p) return 0;
  *out = strtod(s, NULL);
  return 1;
}

/* Prometheus's minTime/maxTime ("the beginning and end of time") as the API
 * formats them; Go's parser cannot read years outside 0000-9999, so the API
 * matches these two strings literally. */
#define MIN_TIME_STR "-292273086-05-16T16:47:06Z"
#define MAX_TIME_STR "292277025-08-18T07:12:54.999999999Z"
#define MIN_TIME_MS (-INT64_C(9223309901257974) * 1000)
#define MAX_TIME_MS (INT64_C(9223309901257974) * 1000 + 999)

int orr_parse_time(const char *s, int64_t *ms) {
  double f;
  if (parse_go_float(s, &f)) {
    if (isnan(f)) return ORR_EINVAL;
    if (isinf(f) || fabs(f) >= 9.2e15) return ORR_ERANGE; /* would overflow ms */
    /* As Prometheus: split off the fraction, round it to milliseconds, then
     * go through nanoseconds (time.Unix normalises a negative remainder). */
    double ip;
    double frac = modf(f, &ip);
    frac = round(frac * 1000) / 1000;
    int64_t sec = (int64_t)ip;
    int64_t nsec = (int64_t)(frac * 1e9);
    sec += nsec / 1000000000;
    nsec %= 1000000000;
    if (nsec < 0) {
      nsec += 1000000000;
      sec--;
    }
    *ms = sec * 1000 + nsec / 1000000;
    return 0;
  }
  if (parse_rfc3339(s, ms) == 0) return 0;
  if (strcmp(s, MIN_TIME_STR) == 0) {
    *ms = MIN_TIME_MS;
    return 0;
  }
  if (strcmp(s, MAX_TIME_STR) == 0) {
    *ms = MAX_TIME_MS;
    return 0;
  }
  return ORR_EINVAL;
}

int orr_parse_time_flag(const char *s, int64_t *ms) {
  int64_t d;
  if (s[0] == '-' && orr_parse_duration(s + 1, strlen(s + 1), &d) == 0) {
    *ms = orr_now_ms() - d;
    return 0;
  }
  if (orr_parse_duration(s, strlen(s), &d) == 0) {
    *ms = orr_now_ms() + d;
    return 0;
  }
  return orr_parse_time(s, ms);
}

char *orr_format_rfc3339(int64_t ms, char *out, size_t outlen) {
  time_t s = (time_t)(ms / 1000);
  int64_t frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    s -= 1;
  }
  struct tm tm;
  gmtime_r(&s, &tm);
  snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
  return out;
}
