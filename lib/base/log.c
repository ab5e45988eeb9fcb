/* log.c: structured logging, logfmt or JSON lines, one write per record so
 * that lines from several threads never interleave. The shapes are go-kit's
 * (as Prometheus and Thanos log): logfmt keys in call order; JSON objects
 * with keys sorted (go-kit marshals a map), HTML characters left alone. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

static orr_log_level g_level = ORR_LOG_INFO;
static orr_log_format g_format = ORR_LOG_LOGFMT;
static FILE *g_out;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int orr_log_parse_level(const char *s, orr_log_level *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (orr_log_level)i;
      return 0;
    }
  }
  return ORR_EINVAL;
}

int orr_log_parse_format(const char *s, orr_log_format *out) {
  if (strcmp(s, "logfmt") == 0) {
    *out = ORR_LOG_LOGFMT;
    return 0;
  }
  if (strcmp(s, "json") == 0) {
    *out = ORR_LOG_JSON;
    return 0;
  }
  return ORR_EINVAL;
}

void orr_log_setup(orr_log_level level, orr_log_format format) {
  g_level = level;
  g_format = format;
}

void orr_log_set_output(FILE *f) {
  pthread_mutex_lock(&g_mu);
  g_out = f;
  pthread_mutex_unlock(&g_mu);
}

int orr_log_enabled(orr_log_level level) { return level >= g_level; }

const char *orr__fmt_i64(char *buf, long long v) {
  snprintf(buf, 24, "%lld", v);
  return buf;
}

const char *orr__fmt_dbl(char *buf, double v) {
  orr_format_float(v, buf, 32);
  return buf;
}

/* Escapes |v| inside double quotes as go-logfmt and encoding/json (with
 * HTML escaping off) both do: \\ \" \n \r \t, other control bytes as \u00XX. */
static void put_quoted(orr_buf *b, const char *v) {
  static const char hex[] = "0123456789abcdef";
  orr_buf_putc(b, '"');
  for (const char *p = v; *p; p++) {
    unsigned char c = (unsigned char)*p;
    switch (c) {
    case '"': orr_buf_puts(b, "\\\""); break;
    case '\\': orr_buf_puts(b, "\\\\"); break;
    case '\n': orr_buf_puts(b, "\\n"); break;
    case '\r': orr_buf_puts(b, "\\r"); break;
    case '\t': orr_buf_puts(b, "\\t"); break;
    default:
      if (c < 0x20) {
        char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        orr_buf_puts(b, u);
      } else {
        orr_buf_putc(b, (char)c);
      }
    }
  }
  orr_buf_putc(b, '"');
}

/* go-logfmt quotes a value that holds a space, '=', '"' or a control
 * character; an empty value stays empty ("key="), and "null" is quoted so
 * that it is not read as a nil. */
static void logfmt_value(orr_buf *b, const char *v) {
  int quote = strcmp(v, "null") == 0;
  for (const char *p = v; *p && !quote; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= ' ' || c == '=' || c == '"' || c == 0x7f) quote = 1;
  }
  if (quote) put_quoted(b, v);
  else orr_buf_puts(b, v);
}

typedef struct {
  const char *k, *v;
  int seq;
} log_pair;

static int cmp_pair(const void *a, const void *b) {
  const log_pair *x = a, *y = b;
  int c = strcmp(x->k, y->k);
  return c ? c : x->seq - y->seq;
}

/* One JSON object with the keys sorted; a repeated key keeps its last value,
 * as in a Go map. */
static void json_record(orr_buf *b, log_pair *pairs, int n) {
  qsort(pairs, (size_t)n, sizeof(*pairs), cmp_pair);
  orr_buf_putc(b, '{');
  int first = 1;
  for (int i = 0; i < n; i++) {
    if (i + 1 < n && strcmp(pairs[i].k, pairs[i + 1].k) == 0) continue;
    if (!first) orr_buf_putc(b, ',');
    first = 0;
    put_quoted(b, pairs[i].k);
    orr_buf_putc(b, ':');
    put_quoted(b, pairs[i].v);
  }
  orr_buf_puts(b, "}\n");
}

void orr__log(orr_log_level level, const char *file, int line, const char *msg, ...) {
  char ts[40], caller[96];
  orr_format_rfc3339(orr_now_ms(), ts, sizeof(ts));
  const char *base = strrchr(file, '/');
  snprintf(caller, sizeof(caller), "%s:%d", base ? base + 1 : file, line);
  orr_buf b = {0};
  va_list ap;
  va_start(ap, msg);
  if (g_format == ORR_LOG_JSON) {
    log_pair small[32], *pairs = small;
    int n = 0, cap = 32;
    pairs[n++] = (log_pair){"ts", ts, 0};
    pairs[n++] = (log_pair){"level", level_names[level], 1};
    pairs[n++] = (log_pair){"caller", caller, 2};
    pairs[n++] = (log_pair){"msg", msg, 3};
    for (;;) {
      const char *k = va_arg(ap, const char *);
      if (!k) break;
      const char *v = va_arg(ap, const char *);
      if (n == cap) {
        log_pair *np = malloc(sizeof(*np) * (size_t)cap * 2);
        if (!np) break; /* keep what fits rather than lose the record */
        memcpy(np, pairs, sizeof(*np) * (size_t)n);
        if (pairs != small) free(pairs);
        pairs = np;
        cap *= 2;
      }
      pairs[n] = (log_pair){k, v ? v : "", n};
      n++;
    }
    json_record(&b, pairs, n);
    if (pairs != small) free(pairs);
  } else {
    orr_buf_puts(&b, "ts=");
    orr_buf_puts(&b, ts);
    orr_buf_puts(&b, " level=");
    orr_buf_puts(&b, level_names[level]);
    orr_buf_puts(&b, " caller=");
    logfmt_value(&b, caller);
    orr_buf_puts(&b, " msg=");
    logfmt_value(&b, msg);
    for (;;) {
      const char *k = va_arg(ap, const char *);
      if (!k) break;
      const char *v = va_arg(ap, const char *);
      orr_buf_putc(&b, ' ');
      orr_buf_puts(&b, k);
      orr_buf_putc(&b, '=');
      logfmt_value(&b, v ? v : "");
    }
    orr_buf_putc(&b, '\n');
  }
  va_end(ap);
  if (!b.oom) {
    pthread_mutex_lock(&g_mu);
    FILE *out = g_out ? g_out : stderr;
    fwrite(b.data, 1, b.len, out);
    fflush(out);
    pthread_mutex_unlock(&g_mu);
  }
  orr_buf_free(&b);
}
