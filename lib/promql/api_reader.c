/* api_reader.c: the incremental reader of a Prometheus HTTP API matrix
 * answer (promql.h, "API reader"): a byte-at-a-time JSON tokenizer with a
 * grammar check, and a path tracker that keeps only the series being read.
 *
 * Design notes
 * 1. The tokenizer holds at most one token (a string up to MAX_STRING, a
 *    number or literal up to 64 bytes) and a stack of containers (at most
 *    MAX_DEPTH). Every byte either completes a token or changes the grammar
 *    state |want|; anything else is ECORRUPT with the byte offset.
 * 2. Each container on the stack has a role from its path: the root object,
 *    data, data.result, one series, its metric, its values, one point, the
 *    root's warnings, or SKIP (anything else, and everything under it).
 *    Only a series' labels and points are kept; they are handed out when
 *    the series object closes, and forgotten.
 * 3. Keys are matched by value, never by order: a series' "values" may come
 *    before its "metric". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql.h"

#define MAX_STRING (1u << 20)
#define MAX_DEPTH 64
#define MAX_WARNINGS 16
#define MAX_TOKEN 64

enum { W_VALUE, W_VALUE_OR_CLOSE, W_KEY, W_KEY_OR_CLOSE, W_COLON, W_COMMA_OR_CLOSE, W_DONE };
enum { T_NONE, T_STR, T_ESC, T_HEX, T_BARE };
enum { R_SKIP, R_ROOT, R_DATA, R_RESULT, R_SERIES, R_METRIC, R_VALUES, R_POINT, R_WARNINGS,
       R_SLIST };
enum { K_OTHER, K_STATUS, K_ERROR_TYPE, K_ERROR, K_DATA, K_WARNINGS, K_RESULT_TYPE, K_RESULT,
       K_METRIC, K_VALUES, K_HISTOGRAMS };

typedef struct frame {
  uint8_t array;
  uint8_t role;
  uint8_t key;  /* objects: the current key */
  uint8_t idx;  /* points: values seen */
} frame;

struct promql_api_reader {
  promql_api_series_fn fn;
  void *arg;
  size_t max_points;
  uint64_t off;   /* bytes consumed, for messages */
  int want;
  int tok;        /* T_*: a token being read */
  bool tok_key;   /* the string being read is an object key */
  orr_buf str;    /* the current string or bare token */
  orr_json_unescape esc; /* the string's escapes */
  frame stack[MAX_DEPTH];
  int depth;
  int err;
  char msg[256];
  /* the answer */
  char status[16];
  orr_buf error_type, error;
  bool have_data, matrix, have_result_type;
  char result_type[16];
  char *warnings[MAX_WARNINGS];
  size_t nwarnings;
  /* the series being read */
  orr_buf lbuf;   /* label names and values, NUL-terminated, in order */
  size_t *offs;
  size_t noffs, capoffs;
  orr_buf label_name; /* the metric's key awaiting its value */
  promql_api_point *pts;
  size_t npts, cappts;
  promql_api_point pt;
  bool has_metric;
  bool series_list; /* data is /api/v1/series' array of label sets */
};

int promql_api_reader_new(promql_api_series_fn fn, void *arg, size_t max_points,
                          promql_api_reader **out) {
  promql_api_reader *r = calloc(1, sizeof(*r));
  if (!r) return ORR_ENOMEM;
  r->fn = fn;
  r->arg = arg;
  r->max_points = max_points;
  r->want = W_VALUE;
  *out = r;
  return 0;
}

void promql_api_reader_free(promql_api_reader *r) {
  if (!r) return;
  orr_buf_free(&r->str);
  orr_buf_free(&r->error_type);
  orr_buf_free(&r->error);
  orr_buf_free(&r->lbuf);
  orr_buf_free(&r->label_name);
  for (size_t i = 0; i < r->nwarnings; i++) free(r->warnings[i]);
  free(r->offs);
  free(r->pts);
  free(r);
}

const char *promql_api_reader_message(const promql_api_reader *r) { return r->msg; }

bool promql_api_reader_series_list(const promql_api_reader *r) { return r->series_list; }

const char *const *promql_api_reader_warnings(const promql_api_reader *r, size_t *n) {
  *n = r->nwarnings;
  return (const char *const *)r->warnings;
}

static int fail(promql_api_reader *r, int err, const char *what) {
  if (!r->err) {
    r->err = err;
    if (err == ORR_ENOMEM)
      snprintf(r->msg, sizeof(r->msg), "out of memory");
    else
      snprintf(r->msg, sizeof(r->msg), "%s at byte %llu", what, (unsigned long long)r->off);
  }
  return r->err;
}

static int key_id(const char *s, size_t n, int role) {
  static const struct {
    int role;
    const char *name;
    int id;
  } keys[] = {
      {R_ROOT, "status", K_STATUS},       {R_ROOT, "errorType", K_ERROR_TYPE},
      {R_ROOT, "error", K_ERROR},         {R_ROOT, "data", K_DATA},
      {R_ROOT, "warnings", K_WARNINGS},   {R_DATA, "resultType", K_RESULT_TYPE},
      {R_DATA, "result", K_RESULT},       {R_SERIES, "metric", K_METRIC},
      {R_SERIES, "values", K_VALUES},     {R_SERIES, "histograms", K_HISTOGRAMS},
  };
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (keys[i].role == role && strlen(keys[i].name) == n && memcmp(keys[i].name, s, n) == 0)
      return keys[i].id;
  return K_OTHER;
}

static frame *top(promql_api_reader *r) { return r->depth ? &r->stack[r->depth - 1] : NULL; }

/* After a value ends inside the top container (or at the top level). */
static void value_done(promql_api_reader *r) {
  r->want = r->depth ? W_COMMA_OR_CLOSE : W_DONE;
}

static int put_copy(orr_buf *b, const char *s, size_t n, size_t max) {
  orr_buf_reset(b);
  orr_buf_append(b, s, n < max ? n : max);
  orr_buf_putc(b, 0);
  return b->oom ? ORR_ENOMEM : 0;
}

/* A complete scalar value (string, or a bare number/literal) in its parent. */
static int scalar(promql_api_reader *r, bool is_string, const char *s, size_t n) {
  frame *f = top(r);
  int role = f ? f->role : R_SKIP;
  if (!f) return fail(r, ORR_ECORRUPT, "the answer is not a JSON object");
  switch (role) {
  case R_ROOT:
    if (f->key == K_STATUS) {
      if (!is_string) return fail(r, ORR_ECORRUPT, "status is not a string");
      snprintf(r->status, sizeof(r->status), "%.*s", (int)(n < 15 ? n : 15), s);
    } else if (f->key == K_ERROR_TYPE && is_string) {
      if (put_copy(&r->error_type, s, n, 200)) return fail(r, ORR_ENOMEM, "");
    } else if (f->key == K_ERROR && is_string) {
      if (put_copy(&r->error, s, n, 1000)) return fail(r, ORR_ENOMEM, "");
    } else if (f->key == K_DATA && !(n == 4 && memcmp(s, "null", 4) == 0 && !is_string)) {
      return fail(r, ORR_ECORRUPT, "data is not an object");
    }
    break;
  case R_DATA:
    if (f->key == K_RESULT_TYPE) {
      if (!is_string) return fail(r, ORR_ECORRUPT, "resultType is not a string");
      r->have_result_type = true;
      r->matrix = n == 6 && memcmp(s, "matrix", 6) == 0;
      snprintf(r->result_type, sizeof(r->result_type), "%.*s", (int)(n < 15 ? n : 15), s);
    } else if (f->key == K_RESULT) {
      return fail(r, ORR_ECORRUPT, "result is not an array");
    }
    break;
  case R_RESULT: return fail(r, ORR_ECORRUPT, "a result element is not an object");
  case R_SERIES:
    if (f->key == K_METRIC || f->key == K_VALUES)
      return fail(r, ORR_ECORRUPT, "a series' metric or values has the wrong type");
    break;
  case R_METRIC: {
    if (!is_string) return fail(r, ORR_ECORRUPT, "a label value is not a string");
    if (r->noffs + 2 > r->capoffs) {
      size_t nc = r->capoffs ? r->capoffs * 2 : 32;
      size_t *no = realloc(r->offs, nc * sizeof(*no));
      if (!no) return fail(r, ORR_ENOMEM, "");
      r->offs = no;
      r->capoffs = nc;
    }
    r->offs[r->noffs++] = r->lbuf.len;
    orr_buf_append(&r->lbuf, r->label_name.data, r->label_name.len);
    orr_buf_putc(&r->lbuf, 0);
    r->offs[r->noffs++] = r->lbuf.len;
    orr_buf_append(&r->lbuf, s, n);
    orr_buf_putc(&r->lbuf, 0);
    if (r->lbuf.oom) return fail(r, ORR_ENOMEM, "");
    break;
  }
  case R_VALUES: return fail(r, ORR_ECORRUPT, "a point is not an array");
  case R_SLIST: return fail(r, ORR_ECORRUPT, "a series is not an object");
  case R_POINT: {
    char tmp[MAX_TOKEN + 1];
    if (n > MAX_TOKEN) return fail(r, ORR_ECORRUPT, "bad point");
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (f->idx == 0) {
      /* The timestamp: a JSON number of seconds ("1700000000.123"). */
      if (is_string || orr_parse_time(tmp, &r->pt.t) != 0)
        return fail(r, ORR_ECORRUPT, "bad point timestamp");
    } else if (f->idx == 1) {
      /* The value: a string as Go's FormatFloat writes it. strtod also
       * takes "NaN", "+Inf", "-Inf". */
      char *end = NULL;
      if (!is_string || n == 0) return fail(r, ORR_ECORRUPT, "bad point value");
      r->pt.v = strtod(tmp, &end);
      if (end != tmp + n) return fail(r, ORR_ECORRUPT, "bad point value");
    } else {
      return fail(r, ORR_ECORRUPT, "a point has more than two elements");
    }
    f->idx++;
    break;
  }
  case R_WARNINGS:
    if (is_string && r->nwarnings < MAX_WARNINGS) {
      char *w = malloc(n + 1);
      if (!w) return fail(r, ORR_ENOMEM, "");
      memcpy(w, s, n);
      w[n] = 0;
      r->warnings[r->nwarnings++] = w;
    }
    break;
  default: break;
  }
  return 0;
}

static int open_container(promql_api_reader *r, bool array) {
  frame *f = top(r);
  if (r->depth >= MAX_DEPTH) return fail(r, ORR_ELIMIT, "JSON nested too deep");
  frame nf = {array, R_SKIP, K_OTHER, 0};
  if (!f) {
    if (array) return fail(r, ORR_ECORRUPT, "the answer is not a JSON object");
    nf.role = R_ROOT;
  } else {
    switch (f->role) {
    case R_ROOT:
      if (f->key == K_DATA) {
        nf.role = array ? R_SLIST : R_DATA;
        r->series_list = array;
        r->have_data = true;
      } else if (f->key == K_WARNINGS && array) {
        nf.role = R_WARNINGS;
      } else if (f->key == K_STATUS) {
        return fail(r, ORR_ECORRUPT, "status is not a string");
      }
      break;
    case R_DATA:
      if (f->key == K_RESULT) {
        if (!array) return fail(r, ORR_ECORRUPT, "result is not an array");
        nf.role = R_RESULT;
      } else if (f->key == K_RESULT_TYPE) {
        return fail(r, ORR_ECORRUPT, "resultType is not a string");
      }
      break;
    case R_RESULT:
      if (array) return fail(r, ORR_ECORRUPT, "a result element is not an object");
      if (r->have_result_type && !r->matrix)
        return fail(r, ORR_ECORRUPT, "the result is not a matrix");
      nf.role = R_SERIES;
      orr_buf_reset(&r->lbuf);
      r->noffs = 0;
      r->npts = 0;
      r->has_metric = false;
      break;
    case R_SERIES:
      if (f->key == K_METRIC) {
        if (array) return fail(r, ORR_ECORRUPT, "a series' metric is not an object");
        if (r->has_metric) return fail(r, ORR_ECORRUPT, "a series has two metrics");
        r->has_metric = true;
        nf.role = R_METRIC;
      } else if (f->key == K_VALUES) {
        if (!array) return fail(r, ORR_ECORRUPT, "a series' values is not an array");
        nf.role = R_VALUES;
      } else if (f->key == K_HISTOGRAMS) {
        return fail(r, ORR_EUNSUPPORTED, "native histograms are not supported");
      }
      break;
    case R_METRIC: return fail(r, ORR_ECORRUPT, "a label value is not a string");
    case R_SLIST:
      if (array) return fail(r, ORR_ECORRUPT, "a series is not an object");
      nf.role = R_METRIC;
      orr_buf_reset(&r->lbuf);
      r->noffs = 0;
      r->npts = 0;
      r->has_metric = true;
      break;
    case R_VALUES:
      if (!array) return fail(r, ORR_ECORRUPT, "a point is not an array");
      nf.role = R_POINT;
      break;
    case R_POINT: return fail(r, ORR_ECORRUPT, "bad point");
    default: break;
    }
  }
  r->stack[r->depth++] = nf;
  r->want = array ? W_VALUE_OR_CLOSE : W_KEY_OR_CLOSE;
  return 0;
}

static int emit_series(promql_api_reader *r) {
  if (!r->has_metric) return fail(r, ORR_ECORRUPT, "a series has no metric");
  size_t nl = r->noffs / 2;
  labels_label stackv[32];
  labels_label *v = nl <= 32 ? stackv : calloc(nl, sizeof(*v));
  if (!v) return fail(r, ORR_ENOMEM, "");
  for (size_t i = 0; i < nl; i++) {
    v[i].name = r->lbuf.data + r->offs[2 * i];
    v[i].value = r->lbuf.data + r->offs[2 * i + 1];
  }
  labels_set ls = {v, nl};
  int rc = labels_sort(&ls) ? fail(r, ORR_ECORRUPT, "a series has a label twice") : 0;
  if (!rc) rc = r->fn(&ls, r->pts, r->npts, r->arg);
  if (v != stackv) free(v);
  if (rc && !r->err) fail(r, rc, "stopped by the consumer");
  return rc;
}

static int close_container(promql_api_reader *r) {
  frame *f = top(r);
  switch (f->role) {
  case R_POINT:
    if (f->idx != 2) return fail(r, ORR_ECORRUPT, "a point does not have two elements");
    if (r->npts > 0 && r->pts[r->npts - 1].t >= r->pt.t)
      return fail(r, ORR_ECORRUPT, "points out of time order");
    if (r->max_points && r->npts >= r->max_points)
      return fail(r, ORR_ELIMIT, "too many points in one series");
    if (r->npts == r->cappts) {
      size_t nc = r->cappts ? r->cappts * 2 : 256;
      promql_api_point *np = realloc(r->pts, nc * sizeof(*np));
      if (!np) return fail(r, ORR_ENOMEM, "");
      r->pts = np;
      r->cappts = nc;
    }
    r->pts[r->npts++] = r->pt;
    break;
  case R_SERIES:
  case R_METRIC: {
    int rc = f->role == R_SERIES || (r->depth >= 2 && r->stack[r->depth - 2].role == R_SLIST)
                 ? emit_series(r)
                 : 0;
    if (rc) return rc;
    break;
  }
  default: break;
  }
  r->depth--;
  value_done(r);
  return 0;
}

/* A complete string token in r->str: a key or a value. */
static int string_done(promql_api_reader *r) {
  if (r->str.oom) return fail(r, ORR_ENOMEM, "");
  const char *s = r->str.data ? r->str.data : "";
  size_t n = r->str.len;
  if (r->tok_key) {
    frame *f = top(r);
    if (f->role == R_METRIC) {
      if (put_copy(&r->label_name, s, n, MAX_STRING)) return fail(r, ORR_ENOMEM, "");
      r->label_name.len--; /* without the NUL */
    }
    f->key = (uint8_t)key_id(s, n, f->role);
    r->want = W_COLON;
    return 0;
  }
  int rc = scalar(r, true, s, n);
  if (rc) return rc;
  value_done(r);
  return 0;
}

static bool is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static bool bare_char(unsigned char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' ||
         (c >= 'a' && c <= 'z');
}

/* A bare token (number, true, false, null) ended before a delimiter. */
static int bare_done(promql_api_reader *r) {
  const char *s = r->str.data;
  size_t n = r->str.len;
  bool lit = (n == 4 && (memcmp(s, "true", 4) == 0 || memcmp(s, "null", 4) == 0)) ||
             (n == 5 && memcmp(s, "false", 5) == 0);
  if (!lit) {
    /* JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') {
      i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
      while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    } else {
      return fail(r, ORR_ECORRUPT, "not JSON");
    }
    if (i < n && s[i] == '.') {
      size_t d = ++i;
      while (i < n && s[i] >= '0' && s[i] <= '9') i++;
      if (i == d) return fail(r, ORR_ECORRUPT, "not JSON");
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
      i++;
      if (i < n && (s[i] == '+' || s[i] == '-')) i++;
      size_t d = i;
      while (i < n && s[i] >= '0' && s[i] <= '9') i++;
      if (i == d) return fail(r, ORR_ECORRUPT, "not JSON");
    }
    if (i != n) return fail(r, ORR_ECORRUPT, "not JSON");
  }
  int rc = scalar(r, false, s, n);
  if (rc) return rc;
  value_done(r);
  return 0;
}

/* One byte outside a string token. */
static int structural(promql_api_reader *r, unsigned char c) {
  if (is_ws(c)) return 0;
  switch (r->want) {
  case W_DONE: return fail(r, ORR_ECORRUPT, "data after the JSON value");
  case W_COLON:
    if (c != ':') return fail(r, ORR_ECORRUPT, "not JSON (want ':')");
    r->want = W_VALUE;
    return 0;
  case W_COMMA_OR_CLOSE: {
    frame *f = top(r);
    if (c == ',') {
      r->want = f->array ? W_VALUE : W_KEY;
      return 0;
    }
    if (c == (f->array ? ']' : '}')) return close_container(r);
    return fail(r, ORR_ECORRUPT, "not JSON (want ',' or a closing bracket)");
  }
  case W_KEY:
  case W_KEY_OR_CLOSE:
    if (c == '"') {
      orr_buf_reset(&r->str);
      r->tok = T_STR;
      r->tok_key = true;
      return 0;
    }
    if (c == '}' && r->want == W_KEY_OR_CLOSE) return close_container(r);
    return fail(r, ORR_ECORRUPT, "not JSON (want a key)");
  case W_VALUE:
  case W_VALUE_OR_CLOSE:
    if (c == ']' && r->want == W_VALUE_OR_CLOSE) return close_container(r);
    if (c == '"') {
      orr_buf_reset(&r->str);
      r->tok = T_STR;
      r->tok_key = false;
      return 0;
    }
    if (c == '{' || c == '[') return open_container(r, c == '[');
    if (bare_char(c)) {
      orr_buf_reset(&r->str);
      orr_buf_putc(&r->str, (char)c);
      r->tok = T_BARE;
      return 0;
    }
    return fail(r, ORR_ECORRUPT, r->depth ? "not JSON" : "not JSON (the answer does not start with '{')");
  }
  return fail(r, ORR_EINTERNAL, "bad state");
}

int promql_api_reader_feed(promql_api_reader *r, const char *data, size_t n) {
  if (r->err) return r->err;
  for (size_t i = 0; i < n; i++, r->off++) {
    unsigned char c = (unsigned char)data[i];
    int rc = 0;
    switch (r->tok) {
    case T_NONE: rc = structural(r, c); break;
    case T_BARE:
      if (bare_char(c)) {
        if (r->str.len >= MAX_TOKEN) {
          rc = fail(r, ORR_ECORRUPT, "not JSON");
          break;
        }
        orr_buf_putc(&r->str, (char)c);
        break;
      }
      r->tok = T_NONE;
      rc = bare_done(r);
      if (!rc) rc = structural(r, c);
      break;
    case T_STR:
      orr_json_unescape_plain(&r->esc, &r->str, c);
      if (c == '"') {
        r->tok = T_NONE;
        rc = string_done(r);
      } else if (c == '\\') {
        r->tok = T_ESC;
      } else if (c < 0x20) {
        rc = fail(r, ORR_ECORRUPT, "not JSON (control character in a string)");
      } else if (r->str.len >= MAX_STRING) {
        rc = fail(r, ORR_ELIMIT, "a string over 1 MiB");
      } else {
        orr_buf_putc(&r->str, (char)c);
      }
      break;
    case T_ESC:
      rc = orr_json_unescape_esc(&r->esc, &r->str, c);
      if (rc < 0) {
        rc = fail(r, ORR_ECORRUPT, "not JSON (bad escape)");
        break;
      }
      r->tok = rc ? T_HEX : T_STR; /* 1: \u, its digits follow */
      rc = 0;
      break;
    case T_HEX:
      rc = orr_json_unescape_hex(&r->esc, &r->str, c);
      if (rc < 0) {
        rc = fail(r, ORR_ECORRUPT, "not JSON (bad \\u escape)");
        break;
      }
      r->tok = rc ? T_HEX : T_STR; /* 1: more digits follow */
      rc = 0;
      break;
    default: break;
    }
    if (rc) return r->err ? r->err : rc;
  }
  return 0;
}

int promql_api_reader_end(promql_api_reader *r) {
  if (!r->err && r->tok == T_BARE && r->depth == 0) {
    r->tok = T_NONE;
    bare_done(r);
  }
  if (r->err) return r->err;
  if (r->want != W_DONE || r->tok != T_NONE)
    return fail(r, ORR_ECORRUPT, r->off ? "truncated JSON" : "empty answer");
  if (strcmp(r->status, "error") == 0) {
    r->err = ORR_EUNAVAILABLE;
    snprintf(r->msg, sizeof(r->msg), "%s: %s", r->error_type.data ? r->error_type.data : "",
             r->error.data ? r->error.data : "");
    return r->err;
  }
  if (strcmp(r->status, "success") != 0)
    return fail(r, ORR_ECORRUPT, "the answer has no status \"success\"");
  if (r->have_data && r->series_list) return 0;
  if (!r->have_data || !r->have_result_type) return fail(r, ORR_ECORRUPT, "the answer has no data");
  if (!r->matrix) {
    r->err = ORR_ECORRUPT;
    snprintf(r->msg, sizeof(r->msg), "resultType %s, want matrix", r->result_type);
    return r->err;
  }
  return 0;
}
