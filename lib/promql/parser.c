/* parser.c: PromQL text → AST. A hand-written recursive-descent parser with
 * precedence climbing for the binary operators, restating the grammar of
 * Prometheus 2.42 (generated_parser.y, parse.go) and its error texts.
 *
 * Notes on matching Prometheus's yacc parser:
 *  1. Binary operators by increasing precedence: or < and unless < comparisons
 *     < + - < * / % atan2 < ^ (right-associative). Unary + and - bind like *
 *     (so -2^2 is -(2^2) and -a*b is (-a)*b); a unary sign on a number
 *     literal is folded into it, as Prometheus does. offset, @ and [..] bind
 *     tightest, to the expression right before them.
 *  2. Only the first error is reported (Prometheus reports errs[0]), so the
 *     parser stops at it. Semantic errors raised while parsing (duplicate
 *     offset, unknown function, ...) come in the order yacc would reduce.
 *  3. "unexpected X" errors carry the context of the innermost open grammar
 *     rule that has an error production in the yacc grammar: grouping
 *     labels, label matchers, offset, @, brackets, and an open aggregation
 *     ("in aggregation"); elsewhere none.
 *  4. Type checks (promql__check) run only on a tree without syntax errors.
 *  5. Nesting is limited to PROMQL_MAX_DEPTH (recursion and tree height). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql_int.h"

#define MAX_DURATION_MS 9223372036854LL /* Prometheus durations are int64 nanoseconds */

/* ---------------------------------------------------------------- errors */

void promql__errorf(promql__parser *p, promql_pos_range pos, const char *fmt, ...) {
  if (p->rc) return;
  p->rc = ORR_EINVAL;
  promql_error *e = &p->errbuf;
  memset(e, 0, sizeof(*e));
  e->pos = pos;
  int plen;
  if (pos.start > p->lex.n) {
    plen = snprintf(e->msg, sizeof(e->msg), "invalid position: parse error: ");
  } else {
    int line = 1;
    size_t last_nl = (size_t)-1;
    for (size_t i = 0; i < pos.start; i++) {
      if (p->lex.in[i] == '\n') {
        line++;
        last_nl = i;
      }
    }
    e->line = line;
    e->col = (int)(pos.start - last_nl); /* last_nl is -1 on the first line */
    plen = snprintf(e->msg, sizeof(e->msg), "%d:%d: parse error: ", e->line, e->col);
  }
  if (plen < 0 || (size_t)plen >= sizeof(e->msg)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg + plen, sizeof(e->msg) - (size_t)plen, fmt, ap);
  va_end(ap);
}

void promql__oom(promql__parser *p) {
  if (p->rc) return;
  p->rc = ORR_ENOMEM;
  snprintf(p->errbuf.msg, sizeof(p->errbuf.msg), "out of memory");
}

static promql_pos_range tok_range(const promql__token *t) {
  promql_pos_range r = {t->pos, t->pos + t->len};
  return r;
}

/* ---------------------------------------------------------------- tokens */

static const promql__token *la(promql__parser *p, int k) {
  while (p->nla <= k) {
    promql__token t;
    do {
      promql__lex_next(&p->lex, &t);
    } while (t.type == PROMQL_T_COMMENT);
    if (t.type == PROMQL_T_ERROR) {
      promql_pos_range r = {t.pos, p->lex.n};
      promql__errorf(p, r, "%s", p->lex.errmsg);
    }
    p->la[p->nla++] = t;
  }
  return &p->la[k];
}

static promql__tok la_type(promql__parser *p, int k) { return la(p, k)->type; }

static promql__token take(promql__parser *p) {
  promql__token t = *la(p, 0);
  p->la[0] = p->la[1];
  p->la[1] = p->la[2];
  p->nla--;
  switch (t.type) {
    case PROMQL_T_RIGHT_BRACE:
    case PROMQL_T_RIGHT_PAREN:
    case PROMQL_T_RIGHT_BRACKET:
    case PROMQL_T_DURATION:
    case PROMQL_T_NUMBER:
      p->last_closing = t.pos + t.len;
      break;
    default:
      break;
  }
  return t;
}

/* Prometheus's unexpected(): complains about the current lookahead. A lexer
 * error has been reported already and is not reported twice. */
static void unexpected(promql__parser *p, const char *context, const char *expected) {
  const promql__token *t = la(p, 0);
  if (p->rc) return;
  orr_buf b = {0};
  orr_buf_puts(&b, "unexpected ");
  promql__token_desc(&p->lex, t, &b);
  if (context) {
    orr_buf_puts(&b, " in ");
    orr_buf_puts(&b, context);
  }
  if (expected) {
    orr_buf_puts(&b, ", expected ");
    orr_buf_puts(&b, expected);
  }
  if (b.oom) {
    promql__oom(p);
  } else {
    promql__errorf(p, tok_range(t), "%s", b.data);
  }
  orr_buf_free(&b);
}

/* ---------------------------------------------------------------- allocation */

static promql_expr *new_node(promql__parser *p, promql_node_kind kind, size_t start, size_t end,
                             int child_height) {
  if (p->rc) return NULL;
  if (child_height + 1 > PROMQL_MAX_DEPTH) {
    promql_pos_range r = {start, end};
    promql__errorf(p, r, "expression nests too deeply (more than %d levels)", PROMQL_MAX_DEPTH);
    return NULL;
  }
  promql_expr *e = orr_arena_calloc(p->arena, 1, sizeof(*e));
  if (!e) {
    promql__oom(p);
    return NULL;
  }
  e->kind = kind;
  e->pos.start = start;
  e->pos.end = end;
  e->height = child_height + 1;
  return e;
}

/* Appends |item| to an arena-backed pointer array. */
static bool push(promql__parser *p, void ***arr, size_t *n, size_t *cap, void *item) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    void **na = orr_arena_calloc(p->arena, nc, sizeof(void *));
    if (!na) {
      promql__oom(p);
      return false;
    }
    if (*n) memcpy(na, *arr, *n * sizeof(void *));
    *arr = na;
    *cap = nc;
  }
  (*arr)[(*n)++] = item;
  return true;
}

static bool register_matcher(promql__parser *p, labels_matcher *m) {
  if (p->nmatchers == p->capmatchers) {
    size_t nc = p->capmatchers ? p->capmatchers * 2 : 8;
    labels_matcher **na = realloc(p->matchers, nc * sizeof(*na));
    if (!na) {
      labels_matcher_free(m);
      promql__oom(p);
      return false;
    }
    p->matchers = na;
    p->capmatchers = nc;
  }
  p->matchers[p->nmatchers++] = m;
  return true;
}

static char *tok_dup(promql__parser *p, const promql__token *t) {
  char *s = orr_arena_strndup(p->arena, p->lex.in + t->pos, t->len);
  if (!s) promql__oom(p);
  return s;
}

/* ---------------------------------------------------------------- literals */

/* Prometheus's parser.number(): strconv.ParseInt(s, 0, 64), else
 * strconv.ParseFloat(s, 64). Inputs are what the lexer accepts as numbers. */
static bool parse_number(promql__parser *p, const promql__token *t, double *out) {
  const char *s = p->lex.in + t->pos;
  size_t n = t->len;
  bool hex = n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  /* ParseInt with base prefix: 0x hex, leading 0 octal, else decimal. */
  {
    size_t i = 0;
    int base = 10;
    if (hex) {
      base = 16, i = 2;
    } else if (n > 1 && s[0] == '0') {
      base = 8, i = 1;
    }
    uint64_t v = 0;
    bool ok = i < n, overflow = false;
    for (; ok && i < n; i++) {
      int d;
      char c = s[i];
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
      else
        d = 99;
      if (d >= base) {
        ok = false;
        break;
      }
      if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) overflow = true;
      v = v * (uint64_t)base + (uint64_t)d;
    }
    if (ok && !overflow && v <= (uint64_t)INT64_MAX) {
      *out = (double)(int64_t)v;
      return true;
    }
  }
  /* ParseFloat. Hex floats need a 'p' exponent the lexer never lets through. */
  bool syntax = hex;
  char *buf = syntax ? NULL : orr_arena_strndup(p->arena, s, n);
  if (!syntax && !buf) {
    promql__oom(p);
    return false;
  }
  if (!syntax) {
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + n) {
      syntax = true;
    } else if (isinf(v) && !(n >= 3 && (buf[0] == 'i' || buf[0] == 'I'))) {
      orr_buf b = {0};
      orr_buf_puts(&b, "error parsing number: strconv.ParseFloat: parsing ");
      promql__quote(&b, s, n);
      orr_buf_puts(&b, ": value out of range");
      if (b.oom)
        promql__oom(p);
      else
        promql__errorf(p, tok_range(t), "%s", b.data);
      orr_buf_free(&b);
      return false;
    } else {
      *out = v;
      return true;
    }
  }
  orr_buf b = {0};
  orr_buf_puts(&b, "error parsing number: strconv.ParseFloat: parsing ");
  promql__quote(&b, s, n);
  orr_buf_puts(&b, ": invalid syntax");
  if (b.oom)
    promql__oom(p);
  else
    promql__errorf(p, tok_range(t), "%s", b.data);
  orr_buf_free(&b);
  return false;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void put_utf8(char *out, size_t *o, uint32_t r) {
  if (r < 0x80) {
    out[(*o)++] = (char)r;
  } else if (r < 0x800) {
    out[(*o)++] = (char)(0xC0 | (r >> 6));
    out[(*o)++] = (char)(0x80 | (r & 0x3F));
  } else if (r < 0x10000) {
    out[(*o)++] = (char)(0xE0 | (r >> 12));
    out[(*o)++] = (char)(0x80 | ((r >> 6) & 0x3F));
    out[(*o)++] = (char)(0x80 | (r & 0x3F));
  } else {
    out[(*o)++] = (char)(0xF0 | (r >> 18));
    out[(*o)++] = (char)(0x80 | ((r >> 12) & 0x3F));
    out[(*o)++] = (char)(0x80 | ((r >> 6) & 0x3F));
    out[(*o)++] = (char)(0x80 | (r & 0x3F));
  }
}

/* Prometheus's strutil.Unquote of a STRING token into the arena. Returns
 * false (error recorded) on a malformed escape. */
static bool unquote(promql__parser *p, const promql__token *t, char **out, size_t *outlen) {
  const char *s = p->lex.in + t->pos;
  size_t n = t->len;
  char quote = s[0];
  s++, n -= 2;
  /* Escapes never grow: every escape is at least as long as what it encodes. */
  char *o = orr_arena_alloc(p->arena, n + 1);
  if (!o) {
    promql__oom(p);
    return false;
  }
  size_t k = 0;
  if (quote == '`') {
    memcpy(o, s, n);
    k = n;
    goto done;
  }
  for (size_t i = 0; i < n;) {
    char c = s[i];
    if (c == quote || c == '\n') goto bad;
    if (c != '\\') {
      o[k++] = c;
      i++;
      continue;
    }
    if (i + 1 >= n) goto bad;
    c = s[i + 1];
    i += 2;
    switch (c) {
      case 'a': o[k++] = '\a'; break;
      case 'b': o[k++] = '\b'; break;
      case 'f': o[k++] = '\f'; break;
      case 'n': o[k++] = '\n'; break;
      case 'r': o[k++] = '\r'; break;
      case 't': o[k++] = '\t'; break;
      case 'v': o[k++] = '\v'; break;
      case '\\': o[k++] = '\\'; break;
      case '\'':
      case '"':
        if (c != quote) goto bad;
        o[k++] = c;
        break;
      case 'x':
      case 'u':
      case 'U': {
        size_t nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        if (n - i < nd) goto bad;
        uint32_t v = 0;
        for (size_t j = 0; j < nd; j++) {
          int h = hexval(s[i + j]);
          if (h < 0) goto bad;
          v = (v << 4) | (uint32_t)h;
        }
        i += nd;
        if (c == 'x') {
          o[k++] = (char)v;
        } else {
          if (v > 0x10FFFF) goto bad;
          if (v >= 0xD800 && v < 0xE000) v = 0xFFFD; /* as utf8.EncodeRune */
          put_utf8(o, &k, v);
        }
        break;
      }
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        uint32_t v = (uint32_t)(c - '0');
        if (n - i < 2) goto bad;
        for (size_t j = 0; j < 2; j++) {
          int d = s[i + j] - '0';
          if (d < 0 || d > 7) goto bad;
          v = (v << 3) | (uint32_t)d;
        }
        i += 2;
        if (v > 255) goto bad;
        o[k++] = (char)v;
        break;
      }
      default:
        goto bad;
    }
  }
done:
  o[k] = 0;
  *out = o;
  *outlen = k;
  return true;
bad: {
  orr_buf b = {0};
  orr_buf_puts(&b, "error unquoting string ");
  promql__quote(&b, p->lex.in + t->pos, t->len);
  orr_buf_puts(&b, ": invalid syntax");
  if (b.oom)
    promql__oom(p);
  else
    promql__errorf(p, tok_range(t), "%s", b.data);
  orr_buf_free(&b);
  return false;
}
}

/* Prometheus's parseDuration: model.ParseDuration, and not zero. */
static bool parse_duration(promql__parser *p, const promql__token *t, int64_t *ms) {
  const char *s = p->lex.in + t->pos;
  int rc = orr_parse_duration(s, t->len, ms);
  if (rc == ORR_EINVAL) {
    orr_buf b = {0};
    orr_buf_puts(&b, "not a valid duration string: ");
    promql__quote(&b, s, t->len);
    if (b.oom)
      promql__oom(p);
    else
      promql__errorf(p, tok_range(t), "%s", b.data);
    orr_buf_free(&b);
    return false;
  }
  if (rc != 0 || *ms > MAX_DURATION_MS || *ms < 0) {
    promql__errorf(p, tok_range(t), "duration out of range");
    return false;
  }
  if (*ms == 0) {
    promql__errorf(p, tok_range(t), "duration must be greater than 0");
    return false;
  }
  return true;
}

/* ---------------------------------------------------------------- grammar */

static promql_expr *parse_expr(promql__parser *p, int min_prec);

static bool is_aggregator(promql__tok t) {
  return t > PROMQL_T_AGGREGATORS_START && t < PROMQL_T_AGGREGATORS_END;
}

/* Tokens that may name a metric (the grammar's metric_identifier). */
static bool is_metric_identifier(promql__tok t) {
  switch (t) {
    case PROMQL_T_IDENTIFIER:
    case PROMQL_T_METRIC_IDENTIFIER:
    case PROMQL_T_BY:
    case PROMQL_T_WITHOUT:
    case PROMQL_T_LAND:
    case PROMQL_T_LOR:
    case PROMQL_T_LUNLESS:
    case PROMQL_T_OFFSET:
    case PROMQL_T_START:
    case PROMQL_T_END:
      return true;
    default:
      return is_aggregator(t);
  }
}

/* Tokens that may be a label in grouping options (the grammar's maybe_label). */
static bool is_maybe_label(promql__tok t) {
  switch (t) {
    case PROMQL_T_BOOL:
    case PROMQL_T_GROUP_LEFT:
    case PROMQL_T_GROUP_RIGHT:
    case PROMQL_T_IGNORING:
    case PROMQL_T_ON:
    case PROMQL_T_ATAN2:
      return true;
    case PROMQL_T_WITHOUT: /* not in the grammar's list */
      return false;
    default:
      return is_metric_identifier(t);
  }
}

static bool is_label(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool alpha = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

/* grouping_labels: "(" [label {"," label} [","]] ")". |*labels| is non-NULL
 * (possibly empty) on success. */
static bool parse_grouping_labels(promql__parser *p, const char ***labels, size_t *n) {
  size_t cap = 0;
  *labels = NULL;
  *n = 0;
  if (la_type(p, 0) != PROMQL_T_LEFT_PAREN) {
    unexpected(p, "grouping opts", "\"(\"");
    return false;
  }
  take(p);
  *labels = orr_arena_calloc(p->arena, 1, sizeof(char *));
  if (!*labels) {
    promql__oom(p);
    return false;
  }
  if (la_type(p, 0) == PROMQL_T_RIGHT_PAREN) {
    take(p);
    return !p->rc;
  }
  for (;;) {
    const promql__token *t = la(p, 0);
    if (p->rc) return false;
    if (!is_maybe_label(t->type)) {
      unexpected(p, "grouping opts", "label");
      return false;
    }
    if (!is_label(p->lex.in + t->pos, t->len)) {
      unexpected(p, "grouping opts", "label");
      return false;
    }
    promql__token lt = take(p);
    char *s = tok_dup(p, &lt);
    if (!s || !push(p, (void ***)labels, n, &cap, s)) return false;
    promql__tok next = la_type(p, 0);
    if (p->rc) return false;
    if (next == PROMQL_T_COMMA) {
      take(p);
      if (la_type(p, 0) == PROMQL_T_RIGHT_PAREN) {
        take(p);
        break;
      }
      continue;
    }
    if (next == PROMQL_T_RIGHT_PAREN) {
      take(p);
      break;
    }
    unexpected(p, "grouping opts", "\",\" or \")\"");
    return false;
  }
  return !p->rc;
}

static labels_matcher *new_matcher(promql__parser *p, const promql__token *name,
                                   const promql__token *op, const promql__token *val) {
  char *v;
  size_t vlen;
  if (!unquote(p, val, &v, &vlen)) return NULL;
  promql_pos_range r = {name->pos, val->pos + val->len};
  if (memchr(v, 0, vlen)) {
    promql__errorf(p, r, "label matcher values may not contain NUL bytes");
    return NULL;
  }
  labels_match_type mt = op->type == PROMQL_T_EQL         ? LABELS_MATCH_EQ
                         : op->type == PROMQL_T_NEQ       ? LABELS_MATCH_NEQ
                         : op->type == PROMQL_T_EQL_REGEX ? LABELS_MATCH_RE
                                                          : LABELS_MATCH_NRE;
  char *n = tok_dup(p, name);
  if (!n) return NULL;
  char errbuf[256] = {0};
  labels_matcher *m = labels_matcher_new(mt, n, v, errbuf, sizeof(errbuf));
  if (!m) {
    if (errbuf[0])
      promql__errorf(p, r, "%s", errbuf);
    else
      promql__oom(p);
    return NULL;
  }
  if (!register_matcher(p, m)) return NULL;
  return m;
}

/* vector_selector: [metric_identifier] ["{" matchers "}"]. */
static promql_expr *parse_vector_selector(promql__parser *p) {
  labels_matcher **ms = NULL;
  size_t n = 0, cap = 0;
  const char *name = "";
  size_t start = la(p, 0)->pos, end = start;
  if (p->rc) return NULL;
  if (la_type(p, 0) != PROMQL_T_LEFT_BRACE) {
    promql__token nt = take(p);
    name = tok_dup(p, &nt);
    if (!name) return NULL;
    end = nt.pos + nt.len;
  }
  if (la_type(p, 0) == PROMQL_T_LEFT_BRACE) {
    take(p);
    if (la_type(p, 0) == PROMQL_T_RIGHT_BRACE) {
      end = take(p).pos + 1;
    } else {
      for (;;) {
        if (p->rc) return NULL;
        if (la_type(p, 0) != PROMQL_T_IDENTIFIER) {
          unexpected(p, "label matching", "identifier or \"}\"");
          return NULL;
        }
        promql__token lname = take(p);
        promql__tok ot = la_type(p, 0);
        if (ot != PROMQL_T_EQL && ot != PROMQL_T_NEQ && ot != PROMQL_T_EQL_REGEX &&
            ot != PROMQL_T_NEQ_REGEX) {
          unexpected(p, "label matching", "label matching operator");
          return NULL;
        }
        promql__token op = take(p);
        if (la_type(p, 0) != PROMQL_T_STRING) {
          unexpected(p, "label matching", "string");
          return NULL;
        }
        promql__token val = take(p);
        labels_matcher *m = new_matcher(p, &lname, &op, &val);
        if (!m || !push(p, (void ***)&ms, &n, &cap, m)) return NULL;
        promql__tok next = la_type(p, 0);
        if (p->rc) return NULL;
        if (next == PROMQL_T_COMMA) {
          take(p);
          if (la_type(p, 0) == PROMQL_T_RIGHT_BRACE) {
            end = take(p).pos + 1;
            break;
          }
          continue;
        }
        if (next == PROMQL_T_RIGHT_BRACE) {
          end = take(p).pos + 1;
          break;
        }
        unexpected(p, "label matching", "\",\" or \"}\"");
        return NULL;
      }
    }
  }
  if (p->rc) return NULL;
  if (name[0]) {
    char errbuf[128];
    labels_matcher *m = labels_matcher_new(LABELS_MATCH_EQ, LABELS_METRIC_NAME, name, errbuf,
                                           sizeof(errbuf));
    if (!m) {
      promql__oom(p);
      return NULL;
    }
    if (!register_matcher(p, m) || !push(p, (void ***)&ms, &n, &cap, m)) return NULL;
  }
  promql_expr *e = new_node(p, PROMQL_NODE_VECTOR_SELECTOR, start, end, 0);
  if (!e) return NULL;
  e->u.vs.name = name;
  e->u.vs.matchers = ms;
  e->u.vs.nmatchers = n;
  return e;
}

static bool can_start_expr(promql__tok t) {
  switch (t) {
    case PROMQL_T_NUMBER:
    case PROMQL_T_STRING:
    case PROMQL_T_LEFT_PAREN:
    case PROMQL_T_LEFT_BRACE:
    case PROMQL_T_ADD:
    case PROMQL_T_SUB:
      return true;
    default:
      return is_metric_identifier(t);
  }
}

/* function_call_body: "(" [expr {"," expr}] ")"; trailing commas are refused. */
static bool parse_call_body(promql__parser *p, promql_expr ***args, size_t *n, int *height) {
  size_t cap = 0;
  *args = NULL;
  *n = 0;
  *height = 0;
  if (la_type(p, 0) != PROMQL_T_LEFT_PAREN) {
    unexpected(p, p->ctx, NULL);
    return false;
  }
  take(p);
  if (la_type(p, 0) == PROMQL_T_RIGHT_PAREN) {
    take(p);
    return !p->rc;
  }
  for (;;) {
    promql_expr *e = parse_expr(p, 0);
    if (!e || !push(p, (void ***)args, n, &cap, e)) return false;
    if (e->height > *height) *height = e->height;
    promql__tok next = la_type(p, 0);
    if (p->rc) return false;
    if (next == PROMQL_T_COMMA) {
      promql__token c = take(p);
      promql__tok after = la_type(p, 0);
      if (p->rc) return false;
      /* yacc reduces "args ," by default whenever no expression follows */
      if (!can_start_expr(after)) {
        promql__errorf(p, tok_range(&c), "trailing commas not allowed in function call args");
        return false;
      }
      continue;
    }
    if (next == PROMQL_T_RIGHT_PAREN) {
      take(p);
      return true;
    }
    unexpected(p, p->ctx, NULL);
    return false;
  }
}

static promql_expr *parse_call(promql__parser *p) {
  promql__token name = take(p);
  promql_expr **args;
  size_t n;
  int h;
  if (!parse_call_body(p, &args, &n, &h)) return NULL;
  const promql_function *f = promql_function_lookup(p->lex.in + name.pos, name.len);
  if (!f) {
    orr_buf b = {0};
    orr_buf_puts(&b, "unknown function with name ");
    promql__quote(&b, p->lex.in + name.pos, name.len);
    if (b.oom)
      promql__oom(p);
    else
      promql__errorf(p, tok_range(&name), "%s", b.data);
    orr_buf_free(&b);
    return NULL;
  }
  promql_expr *e = new_node(p, PROMQL_NODE_CALL, name.pos, p->last_closing, h);
  if (!e) return NULL;
  e->u.call.func = f;
  e->u.call.args = args;
  e->u.call.nargs = n;
  return e;
}

static promql_aggop aggop_of(promql__tok t) {
  switch (t) {
    case PROMQL_T_AVG: return PROMQL_AGG_AVG;
    case PROMQL_T_BOTTOMK: return PROMQL_AGG_BOTTOMK;
    case PROMQL_T_COUNT: return PROMQL_AGG_COUNT;
    case PROMQL_T_COUNT_VALUES: return PROMQL_AGG_COUNT_VALUES;
    case PROMQL_T_GROUP: return PROMQL_AGG_GROUP;
    case PROMQL_T_MAX: return PROMQL_AGG_MAX;
    case PROMQL_T_MIN: return PROMQL_AGG_MIN;
    case PROMQL_T_QUANTILE: return PROMQL_AGG_QUANTILE;
    case PROMQL_T_STDDEV: return PROMQL_AGG_STDDEV;
    case PROMQL_T_STDVAR: return PROMQL_AGG_STDVAR;
    case PROMQL_T_TOPK: return PROMQL_AGG_TOPK;
    default: return PROMQL_AGG_SUM;
  }
}

/* aggregate_expr: op [modifier] body | op body [modifier]. */
static promql_expr *parse_aggregate(promql__parser *p) {
  promql__token op = take(p);
  const char *saved_ctx = p->ctx;
  const char **grouping = NULL;
  size_t ngrouping = 0;
  bool without = false, have_modifier = false;
  promql_expr **args = NULL;
  size_t nargs = 0;
  int h = 0;
  p->ctx = "aggregation";
  promql__tok t = la_type(p, 0);
  if (t == PROMQL_T_BY || t == PROMQL_T_WITHOUT) {
    take(p);
    without = t == PROMQL_T_WITHOUT;
    have_modifier = true;
    if (!parse_grouping_labels(p, &grouping, &ngrouping)) return NULL;
  }
  if (!parse_call_body(p, &args, &nargs, &h)) return NULL;
  if (!have_modifier) {
    t = la_type(p, 0);
    if (t == PROMQL_T_BY || t == PROMQL_T_WITHOUT) {
      take(p);
      without = t == PROMQL_T_WITHOUT;
      if (!parse_grouping_labels(p, &grouping, &ngrouping)) return NULL;
    }
  }
  p->ctx = saved_ctx;
  if (p->rc) return NULL;
  promql_pos_range r = {op.pos, p->last_closing};
  promql_aggop aop = aggop_of(op.type);
  if (nargs == 0) {
    promql__errorf(p, r, "no arguments for aggregate expression provided");
    return NULL;
  }
  size_t want = promql_aggop_has_param(aop) ? 2 : 1;
  if (nargs != want) {
    promql__errorf(p, r,
                   "wrong number of arguments for aggregate expression provided, expected %zu, "
                   "got %zu",
                   want, nargs);
    return NULL;
  }
  promql_expr *e = new_node(p, PROMQL_NODE_AGGREGATE, r.start, r.end, h);
  if (!e) return NULL;
  e->u.agg.op = aop;
  e->u.agg.param = want == 2 ? args[0] : NULL;
  e->u.agg.expr = args[want - 1];
  e->u.agg.grouping = grouping;
  e->u.agg.ngrouping = ngrouping;
  e->u.agg.without = without;
  return e;
}

static promql_expr *parse_primary(promql__parser *p) {
  const promql__token *t = la(p, 0);
  if (p->rc) return NULL;
  switch (t->type) {
    case PROMQL_T_NUMBER: {
      promql__token nt = take(p);
      double v;
      if (!parse_number(p, &nt, &v)) return NULL;
      promql_expr *e = new_node(p, PROMQL_NODE_NUMBER, nt.pos, nt.pos + nt.len, 0);
      if (e) e->u.number.val = v;
      return e;
    }
    case PROMQL_T_STRING: {
      promql__token st = take(p);
      char *s;
      size_t n;
      if (!unquote(p, &st, &s, &n)) return NULL;
      promql_expr *e = new_node(p, PROMQL_NODE_STRING, st.pos, st.pos + st.len, 0);
      if (e) {
        e->u.string.val = s;
        e->u.string.len = n;
      }
      return e;
    }
    case PROMQL_T_LEFT_PAREN: {
      promql__token lp = take(p);
      promql_expr *inner = parse_expr(p, 0);
      if (!inner) return NULL;
      if (la_type(p, 0) != PROMQL_T_RIGHT_PAREN) {
        unexpected(p, p->ctx, NULL);
        return NULL;
      }
      promql__token rp = take(p);
      promql_expr *e = new_node(p, PROMQL_NODE_PAREN, lp.pos, rp.pos + 1, inner->height);
      if (e) e->u.paren.expr = inner;
      return e;
    }
    case PROMQL_T_LEFT_BRACE:
      return parse_vector_selector(p);
    case PROMQL_T_IDENTIFIER:
      if (la_type(p, 1) == PROMQL_T_LEFT_PAREN) return p->rc ? NULL : parse_call(p);
      return p->rc ? NULL : parse_vector_selector(p);
    default:
      break;
  }
  if (is_aggregator(t->type)) {
    promql__tok next = la_type(p, 1);
    if (p->rc) return NULL;
    if (next == PROMQL_T_LEFT_PAREN || next == PROMQL_T_BY || next == PROMQL_T_WITHOUT)
      return parse_aggregate(p);
    return parse_vector_selector(p);
  }
  if (is_metric_identifier(t->type)) return parse_vector_selector(p);
  unexpected(p, p->ctx, NULL);
  return NULL;
}

/* ---------------------------------------------------------------- postfix modifiers */

static promql_expr *parse_bracket(promql__parser *p, promql_expr *e) {
  promql__token lb = take(p);
  if (la_type(p, 0) != PROMQL_T_DURATION) {
    unexpected(p, "subquery selector", "duration");
    return NULL;
  }
  promql__token dt = take(p);
  int64_t range;
  if (!parse_duration(p, &dt, &range)) return NULL;
  promql__tok t = la_type(p, 0);
  if (p->rc) return NULL;
  if (t == PROMQL_T_RIGHT_BRACKET) {
    promql__token rb = take(p);
    promql_pos_range r = {lb.pos, rb.pos + rb.len};
    if (e->kind != PROMQL_NODE_VECTOR_SELECTOR) {
      promql__errorf(p, r, "ranges only allowed for vector selectors");
      return NULL;
    }
    if (e->u.vs.offset_ms != 0) {
      promql__errorf(p, r, "no offset modifiers allowed before range");
      return NULL;
    }
    if (e->u.vs.at == PROMQL_AT_TIMESTAMP) {
      promql__errorf(p, r, "no @ modifiers allowed before range");
      return NULL;
    }
    promql_expr *m = new_node(p, PROMQL_NODE_MATRIX_SELECTOR, e->pos.start, p->last_closing,
                              e->height);
    if (!m) return NULL;
    m->u.ms.vs = e;
    m->u.ms.range_ms = range;
    return m;
  }
  if (t != PROMQL_T_COLON) {
    unexpected(p, "subquery or range", "\":\" or \"]\"");
    return NULL;
  }
  take(p);
  int64_t step = 0;
  t = la_type(p, 0);
  if (p->rc) return NULL;
  if (t == PROMQL_T_DURATION) {
    promql__token st = take(p);
    if (!parse_duration(p, &st, &step)) return NULL;
    if (la_type(p, 0) != PROMQL_T_RIGHT_BRACKET) {
      unexpected(p, "subquery selector", "\"]\"");
      return NULL;
    }
  } else if (t != PROMQL_T_RIGHT_BRACKET) {
    unexpected(p, "subquery selector", "duration or \"]\"");
    return NULL;
  }
  promql__token rb = take(p);
  promql_expr *s = new_node(p, PROMQL_NODE_SUBQUERY, e->pos.start, rb.pos + 1, e->height);
  if (!s) return NULL;
  s->u.subquery.expr = e;
  s->u.subquery.range_ms = range;
  s->u.subquery.step_ms = step;
  return s;
}

static const char *const modifier_target_err =
    "modifier must be preceded by an instant vector selector or range vector selector or a "
    "subquery";

static promql_expr *parse_offset(promql__parser *p, promql_expr *e) {
  take(p);
  bool neg = false;
  if (la_type(p, 0) == PROMQL_T_SUB) {
    take(p);
    neg = true;
  }
  if (la_type(p, 0) != PROMQL_T_DURATION) {
    unexpected(p, "offset", "duration");
    return NULL;
  }
  promql__token dt = take(p);
  int64_t d;
  if (!parse_duration(p, &dt, &d)) return NULL;
  if (neg) d = -d;
  int64_t *target;
  switch (e->kind) {
    case PROMQL_NODE_VECTOR_SELECTOR: target = &e->u.vs.offset_ms; break;
    case PROMQL_NODE_MATRIX_SELECTOR: target = &e->u.ms.vs->u.vs.offset_ms; break;
    case PROMQL_NODE_SUBQUERY: target = &e->u.subquery.offset_ms; break;
    default:
      promql__errorf(p, e->pos, "offset %s", modifier_target_err);
      return NULL;
  }
  if (*target != 0) {
    promql__errorf(p, e->pos, "offset may not be set multiple times");
    return NULL;
  }
  *target = d;
  e->pos.end = p->last_closing;
  return e;
}

/* The @ modifier's slots of |e|, or NULL after an error (Prometheus's
 * getAtModifierVars). */
static bool at_slots(promql__parser *p, promql_expr *e, promql_at **at, int64_t **ms) {
  switch (e->kind) {
    case PROMQL_NODE_VECTOR_SELECTOR:
      *at = &e->u.vs.at, *ms = &e->u.vs.at_ms;
      break;
    case PROMQL_NODE_MATRIX_SELECTOR:
      *at = &e->u.ms.vs->u.vs.at, *ms = &e->u.ms.vs->u.vs.at_ms;
      break;
    case PROMQL_NODE_SUBQUERY:
      *at = &e->u.subquery.at, *ms = &e->u.subquery.at_ms;
      break;
    default:
      promql__errorf(p, e->pos, "@ %s", modifier_target_err);
      return false;
  }
  if (**at != PROMQL_AT_NONE) {
    promql__errorf(p, e->pos, "@ <timestamp> may not be set multiple times");
    return false;
  }
  return true;
}

/* timestamp.FromFloatSeconds: int64(math.Round(ts * 1000)); an out-of-range
 * conversion yields what Go yields on amd64 (the minimum int64). */
static int64_t from_float_seconds(double ts) {
  double r = round(ts * 1000.0);
  if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0)) return INT64_MIN;
  return (int64_t)r;
}

static promql_expr *parse_at(promql__parser *p, promql_expr *e) {
  take(p);
  promql__tok t = la_type(p, 0);
  if (p->rc) return NULL;
  if (t == PROMQL_T_START || t == PROMQL_T_END) {
    take(p);
    if (la_type(p, 0) != PROMQL_T_LEFT_PAREN) {
      unexpected(p, "@", "timestamp");
      return NULL;
    }
    take(p);
    if (la_type(p, 0) != PROMQL_T_RIGHT_PAREN) {
      unexpected(p, "@", "timestamp");
      return NULL;
    }
    take(p);
    promql_at *at;
    int64_t *ms;
    if (!at_slots(p, e, &at, &ms)) return NULL;
    *at = t == PROMQL_T_START ? PROMQL_AT_START : PROMQL_AT_END;
    e->pos.end = p->last_closing;
    return e;
  }
  bool neg = false;
  if (t == PROMQL_T_ADD || t == PROMQL_T_SUB) {
    take(p);
    neg = t == PROMQL_T_SUB;
    t = la_type(p, 0);
  }
  if (t != PROMQL_T_NUMBER) {
    unexpected(p, "@", "timestamp");
    return NULL;
  }
  promql__token nt = take(p);
  double ts;
  if (!parse_number(p, &nt, &ts)) return NULL;
  if (neg) ts = -ts;
  if (isinf(ts) || isnan(ts) || ts >= 9223372036854775808.0 || ts <= -9223372036854775808.0) {
    char b[400];
    if (isnan(ts))
      snprintf(b, sizeof(b), "NaN");
    else if (isinf(ts))
      snprintf(b, sizeof(b), ts > 0 ? "+Inf" : "-Inf");
    else
      snprintf(b, sizeof(b), "%f", ts);
    promql__errorf(p, e->pos, "timestamp out of bounds for @ modifier: %s", b);
    return NULL;
  }
  promql_at *at;
  int64_t *ms;
  if (!at_slots(p, e, &at, &ms)) return NULL;
  *at = PROMQL_AT_TIMESTAMP;
  *ms = from_float_seconds(ts);
  e->pos.end = p->last_closing;
  return e;
}

static promql_expr *parse_postfix(promql__parser *p, promql_expr *e) {
  while (e) {
    promql__tok t = la_type(p, 0);
    if (p->rc) return NULL;
    if (t == PROMQL_T_LEFT_BRACKET)
      e = parse_bracket(p, e);
    else if (t == PROMQL_T_OFFSET)
      e = parse_offset(p, e);
    else if (t == PROMQL_T_AT)
      e = parse_at(p, e);
    else
      break;
  }
  return e;
}

/* ---------------------------------------------------------------- operators */

#define PREC_POW 6

static int binop_prec(promql__tok t, promql_op *op) {
  switch (t) {
    case PROMQL_T_LOR: *op = PROMQL_OP_LOR; return 1;
    case PROMQL_T_LAND: *op = PROMQL_OP_LAND; return 2;
    case PROMQL_T_LUNLESS: *op = PROMQL_OP_LUNLESS; return 2;
    case PROMQL_T_EQLC: *op = PROMQL_OP_EQLC; return 3;
    case PROMQL_T_NEQ: *op = PROMQL_OP_NEQ; return 3;
    case PROMQL_T_GTR: *op = PROMQL_OP_GTR; return 3;
    case PROMQL_T_LSS: *op = PROMQL_OP_LSS; return 3;
    case PROMQL_T_GTE: *op = PROMQL_OP_GTE; return 3;
    case PROMQL_T_LTE: *op = PROMQL_OP_LTE; return 3;
    case PROMQL_T_ADD: *op = PROMQL_OP_ADD; return 4;
    case PROMQL_T_SUB: *op = PROMQL_OP_SUB; return 4;
    case PROMQL_T_MUL: *op = PROMQL_OP_MUL; return 5;
    case PROMQL_T_DIV: *op = PROMQL_OP_DIV; return 5;
    case PROMQL_T_MOD: *op = PROMQL_OP_MOD; return 5;
    case PROMQL_T_ATAN2: *op = PROMQL_OP_ATAN2; return 5;
    case PROMQL_T_POW: *op = PROMQL_OP_POW; return PREC_POW;
    default: return -1;
  }
}

/* unary_expr: ("+"|"-") expr, binding like "*"; or a primary with its
 * postfix modifiers. */
static promql_expr *parse_unary(promql__parser *p) {
  promql__tok t = la_type(p, 0);
  if (p->rc) return NULL;
  if (t != PROMQL_T_ADD && t != PROMQL_T_SUB) return parse_postfix(p, parse_primary(p));
  promql__token op = take(p);
  promql_expr *x = parse_expr(p, PREC_POW);
  if (!x) return NULL;
  if (x->kind == PROMQL_NODE_NUMBER) {
    if (t == PROMQL_T_SUB) x->u.number.val = -x->u.number.val;
    x->pos.start = op.pos;
    return x;
  }
  promql_expr *e = new_node(p, PROMQL_NODE_UNARY, op.pos, x->pos.end, x->height);
  if (!e) return NULL;
  e->u.unary.op = t == PROMQL_T_SUB ? PROMQL_OP_SUB : PROMQL_OP_ADD;
  e->u.unary.expr = x;
  return e;
}

/* bin_modifier: [bool] [(on|ignoring) labels [(group_left|group_right) [labels]]]. */
static bool parse_bin_modifier(promql__parser *p, bool *return_bool, promql_vector_matching *vm) {
  memset(vm, 0, sizeof(*vm));
  *return_bool = false;
  if (la_type(p, 0) == PROMQL_T_BOOL) {
    take(p);
    *return_bool = true;
  }
  promql__tok t = la_type(p, 0);
  if (t != PROMQL_T_ON && t != PROMQL_T_IGNORING) return !p->rc;
  take(p);
  vm->on = t == PROMQL_T_ON;
  if (!parse_grouping_labels(p, &vm->matching_labels, &vm->nmatching)) return false;
  t = la_type(p, 0);
  if (t != PROMQL_T_GROUP_LEFT && t != PROMQL_T_GROUP_RIGHT) return !p->rc;
  take(p);
  vm->card = t == PROMQL_T_GROUP_LEFT ? PROMQL_CARD_MANY_TO_ONE : PROMQL_CARD_ONE_TO_MANY;
  /* The labels are optional only before something that starts an
   * expression; anything else is an error about the missing "(". */
  promql__tok next = la_type(p, 0);
  if (p->rc) return false;
  if (next == PROMQL_T_LEFT_PAREN || !can_start_expr(next)) {
    if (!parse_grouping_labels(p, &vm->include, &vm->ninclude)) return false;
  }
  return !p->rc;
}

static promql_expr *parse_expr(promql__parser *p, int min_prec) {
  if (++p->depth > PROMQL_MAX_DEPTH) {
    const promql__token *t = la(p, 0);
    promql__errorf(p, tok_range(t), "expression nests too deeply (more than %d levels)",
                   PROMQL_MAX_DEPTH);
    p->depth--;
    return NULL;
  }
  promql_expr *lhs = parse_unary(p);
  while (lhs) {
    promql_op op;
    int prec = binop_prec(la_type(p, 0), &op);
    if (p->rc) {
      lhs = NULL;
      break;
    }
    if (prec < 0 || prec < min_prec) break;
    take(p);
    bool rb;
    promql_vector_matching vm;
    if (!parse_bin_modifier(p, &rb, &vm)) {
      lhs = NULL;
      break;
    }
    promql_expr *rhs = parse_expr(p, op == PROMQL_OP_POW ? prec : prec + 1);
    if (!rhs) {
      lhs = NULL;
      break;
    }
    int h = lhs->height > rhs->height ? lhs->height : rhs->height;
    promql_expr *e = new_node(p, PROMQL_NODE_BINARY, lhs->pos.start, rhs->pos.end, h);
    promql_vector_matching *m = e ? orr_arena_alloc(p->arena, sizeof(*m)) : NULL;
    if (!m) {
      if (e) promql__oom(p);
      lhs = NULL;
      break;
    }
    *m = vm;
    e->u.binary.op = op;
    e->u.binary.lhs = lhs;
    e->u.binary.rhs = rhs;
    e->u.binary.return_bool = rb;
    e->u.binary.matching = m;
    lhs = e;
  }
  p->depth--;
  return lhs;
}

/* ---------------------------------------------------------------- entry points */

static void parser_init(promql__parser *p, orr_arena *a, const char *q, size_t n) {
  memset(p, 0, sizeof(*p));
  p->arena = a;
  promql__lex_init(&p->lex, q, n);
}

static int parser_finish(promql__parser *p, promql_expr *root, promql_ast **out,
                         promql_error *err) {
  if (!p->rc && !root) promql__oom(p); /* cannot happen: every NULL records an error */
  if (!p->rc) {
    promql_ast *ast = calloc(1, sizeof(*ast));
    if (ast) {
      ast->root = root;
      ast->matchers = p->matchers;
      ast->nmatchers = p->nmatchers;
      *out = ast;
      return 0;
    }
    promql__oom(p);
  }
  for (size_t i = 0; i < p->nmatchers; i++) labels_matcher_free(p->matchers[i]);
  free(p->matchers);
  if (err) *err = p->errbuf;
  *out = NULL;
  return p->rc;
}

int promql_parse(orr_arena *a, const char *q, size_t n, promql_ast **out, promql_error *err) {
  promql__parser p;
  parser_init(&p, a, q, n);
  promql_expr *root = NULL;
  if (la_type(&p, 0) == PROMQL_T_EOF) {
    promql_pos_range r = {0, 0};
    promql__errorf(&p, r, "no expression found in input");
  } else if (!p.rc) {
    root = parse_expr(&p, 0);
    if (root && la_type(&p, 0) != PROMQL_T_EOF) unexpected(&p, NULL, NULL);
  }
  if (!p.rc) promql__check(&p, root);
  return parser_finish(&p, root, out, err);
}

int promql_parse_metric_selector(orr_arena *a, const char *q, size_t n, promql_ast **out,
                                 promql_error *err) {
  promql__parser p;
  parser_init(&p, a, q, n);
  promql_expr *root = NULL;
  promql__tok t = la_type(&p, 0);
  if (!p.rc) {
    if (t == PROMQL_T_LEFT_BRACE || is_metric_identifier(t)) {
      root = parse_vector_selector(&p);
      if (root && la_type(&p, 0) != PROMQL_T_EOF) unexpected(&p, NULL, NULL);
    } else {
      unexpected(&p, NULL, NULL);
    }
  }
  return parser_finish(&p, root, out, err);
}
