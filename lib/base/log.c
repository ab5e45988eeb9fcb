/* log.c: structured logging, logfmt or JSON lines, one write per record so
 * that lines from several threads never interleave. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
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

/* logfmt quotes a value that is empty or holds a space, '=', '"' or a
 * control character; inside quotes, '"' and '\' are escaped. */
static void logfmt_value(orr_buf *b, const char *v) {
  int quote = *v == 0;
  for (const char *p = v; *p && !quote; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= ' ' || c == '=' || c == '"' || c == 0x7f) quote = 1;
  }
  if (!quote) {
    orr_buf_puts(b, v);
    return;
  }
  orr_buf_putc(b, '"');
  orr_buf_json_escape(b, v, strlen(v));
  orr_buf_putc(b, '"');
}

static void json_pair(orr_buf *b, const char *k, const char *v, int first) {
  if (!first) orr_buf_putc(b, ',');
  orr_buf_putc(b, '"');
  orr_buf_json_escape(b, k, strlen(k));
  orr_buf_puts(b, "\":\"");
  orr_buf_json_escape(b, v, strlen(v));
  orr_buf_putc(b, '"');
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
    orr_buf_putc(&b, '{');
    json_pair(&b, "ts", ts, 1);
    json_pair(&b, "level", level_names[level], 0);
    json_pair(&b, "caller", caller, 0);
    json_pair(&b, "msg", msg, 0);
    for (;;) {
      const char *k = va_arg(ap, const char *);
      if (!k) break;
      const char *v = va_arg(ap, const char *);
      json_pair(&b, k, v ? v : "", 0);
    }
    orr_buf_puts(&b, "}\n");
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
