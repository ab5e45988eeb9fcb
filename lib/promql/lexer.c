/* lexer.c: the PromQL lexer. It restates the state machine of Prometheus
 * 2.42's lexer (which byte means what inside braces, brackets or neither, and
 * the exact error texts) so that the same inputs fail the same way. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "promql_int.h"

#define R_EOF (-1)

typedef struct lexer_ext {
  promql__lexer *l;
  size_t width; /* width of the last rune read */
} lexer_ext;

void promql__lex_init(promql__lexer *l, const char *in, size_t n) {
  memset(l, 0, sizeof(*l));
  l->in = in;
  l->n = n;
}

static bool is_space(int32_t r) { return r == ' ' || r == '\t' || r == '\n' || r == '\r'; }
static bool is_digit(int32_t r) { return r >= '0' && r <= '9'; }
static bool is_alpha(int32_t r) {
  return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
}
static bool is_alnum(int32_t r) { return is_alpha(r) || is_digit(r); }

static int32_t next(lexer_ext *x) {
  promql__lexer *l = x->l;
  if (l->pos >= l->n) {
    x->width = 0;
    return R_EOF;
  }
  unsigned char c = (unsigned char)l->in[l->pos];
  if (c < 0x80) {
    x->width = 1;
    l->pos++;
    return c;
  }
  size_t w;
  uint32_t r = promql__utf8_decode((const unsigned char *)l->in + l->pos, l->n - l->pos, &w);
  x->width = w;
  l->pos += w;
  return (int32_t)r;
}

static void backup(lexer_ext *x) { x->l->pos -= x->width; }

static int32_t peek(lexer_ext *x) {
  int32_t r = next(x);
  backup(x);
  return r;
}

static bool accept(lexer_ext *x, const char *valid) {
  int32_t r = next(x);
  if (r > 0 && r < 128 && memchr(valid, (int)r, strlen(valid))) return true;
  backup(x);
  return false;
}

static void accept_run(lexer_ext *x, const char *valid) {
  while (accept(x, valid)) {
  }
}

static void emit(lexer_ext *x, promql__token *t, promql__tok type) {
  promql__lexer *l = x->l;
  t->type = type;
  t->pos = l->start;
  t->len = l->pos - l->start;
  l->start = l->pos;
}

/* Ends the scan with an ERROR token at the start of the current item. */
static void fail(lexer_ext *x, promql__token *t, const char *msg) {
  promql__lexer *l = x->l;
  snprintf(l->errmsg, sizeof(l->errmsg), "%s", msg);
  t->type = PROMQL_T_ERROR;
  t->pos = l->start;
  t->len = 0;
  l->done = true;
  l->last = *t;
}

static void fail_rune(lexer_ext *x, promql__token *t, const char *prefix, int32_t r) {
  orr_buf b = {0};
  orr_buf_puts(&b, prefix);
  promql__quote_rune(&b, r < 0 ? 0xFFFD : (uint32_t)r);
  fail(x, t, b.oom ? prefix : b.data);
  orr_buf_free(&b);
}

static void fail_U(lexer_ext *x, promql__token *t, const char *prefix, int32_t r,
                   const char *suffix) {
  orr_buf b = {0};
  orr_buf_puts(&b, prefix);
  promql__fmt_U(&b, r < 0 ? 0xFFFD : (uint32_t)r);
  orr_buf_puts(&b, suffix);
  fail(x, t, b.oom ? prefix : b.data);
  orr_buf_free(&b);
}

static void fail_text(lexer_ext *x, promql__token *t, const char *prefix) {
  promql__lexer *l = x->l;
  orr_buf b = {0};
  orr_buf_puts(&b, prefix);
  promql__quote(&b, l->in + l->start, l->pos - l->start);
  fail(x, t, b.oom ? prefix : b.data);
  orr_buf_free(&b);
}

/* Scans a number in any of the forms PromQL's lexer accepts; returns false
 * when it is directly followed by a letter or digit (maybe a duration). */
static bool scan_number(lexer_ext *x) {
  const char *digits = "0123456789";
  if (accept(x, "0") && accept(x, "xX")) digits = "0123456789abcdefABCDEF";
  accept_run(x, digits);
  if (accept(x, ".")) accept_run(x, digits);
  if (accept(x, "eE")) {
    accept(x, "+-");
    accept_run(x, "0123456789");
  }
  return !is_alnum(peek(x));
}

static bool accept_remaining_duration(lexer_ext *x) {
  if (!accept(x, "smhdwy")) return false;
  accept(x, "s"); /* ms; bad pairs like "hs" fail when the duration is parsed */
  while (accept(x, "0123456789")) {
    while (accept(x, "0123456789")) {
    }
    if (!accept(x, "smhdw")) return false;
    accept(x, "s");
  }
  return !is_alnum(next(x));
}

static void lex_comment(lexer_ext *x, promql__token *t) {
  x->l->pos += 1;
  int32_t r;
  do {
    r = next(x);
  } while (r != '\r' && r != '\n' && r != R_EOF);
  backup(x);
  emit(x, t, PROMQL_T_COMMENT);
}

static void skip_spaces(lexer_ext *x) {
  while (is_space(peek(x))) next(x);
  x->l->start = x->l->pos;
}

static int digit_val(int32_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 16;
}

/* After a backslash inside a quoted string; returns false after an error. */
static bool lex_escape(lexer_ext *x, promql__token *t, int32_t quote) {
  int n;
  uint32_t base, max;
  int32_t ch = next(x);
  switch (ch) {
    case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
      return true;
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
      n = 3, base = 8, max = 255;
      break;
    case 'x':
      ch = next(x);
      n = 2, base = 16, max = 255;
      break;
    case 'u':
      ch = next(x);
      n = 4, base = 16, max = 0x10FFFF;
      break;
    case 'U':
      ch = next(x);
      n = 8, base = 16, max = 0x10FFFF;
      break;
    case R_EOF:
      fail(x, t, "escape sequence not terminated");
      return false;
    default:
      if (ch == quote) return true;
      fail_U(x, t, "unknown escape sequence ", ch, "");
      return false;
  }
  uint32_t v = 0;
  while (n > 0) {
    uint32_t d = (uint32_t)digit_val(ch);
    if (d >= base) {
      if (ch == R_EOF) {
        fail(x, t, "escape sequence not terminated");
      } else {
        fail_U(x, t, "illegal character ", ch, " in escape sequence");
      }
      return false;
    }
    v = v * base + d;
    n--;
    if (n > 0) ch = next(x);
  }
  if (v > max || (v >= 0xD800 && v < 0xE000)) {
    fail(x, t, "escape sequence is an invalid Unicode code point");
    return false;
  }
  return true;
}

static void lex_string(lexer_ext *x, promql__token *t, int32_t quote) {
  for (;;) {
    int32_t r = next(x);
    if (r == '\\') {
      if (!lex_escape(x, t, quote)) return;
      continue;
    }
    if (r == 0xFFFD) {
      fail(x, t, "invalid UTF-8 rune");
      return;
    }
    if (r == R_EOF || r == '\n') {
      fail(x, t, "unterminated quoted string");
      return;
    }
    if (r == quote) break;
  }
  emit(x, t, PROMQL_T_STRING);
}

static void lex_raw_string(lexer_ext *x, promql__token *t) {
  for (;;) {
    int32_t r = next(x);
    if (r == 0xFFFD) {
      fail(x, t, "invalid UTF-8 rune");
      return;
    }
    if (r == R_EOF) {
      fail(x, t, "unterminated raw string");
      return;
    }
    if (r == '`') break;
  }
  emit(x, t, PROMQL_T_STRING);
}

static const struct {
  const char *word;
  promql__tok tok;
} keywords[] = {
    {"and", PROMQL_T_LAND},
    {"or", PROMQL_T_LOR},
    {"unless", PROMQL_T_LUNLESS},
    {"atan2", PROMQL_T_ATAN2},
    {"sum", PROMQL_T_SUM},
    {"avg", PROMQL_T_AVG},
    {"count", PROMQL_T_COUNT},
    {"min", PROMQL_T_MIN},
    {"max", PROMQL_T_MAX},
    {"group", PROMQL_T_GROUP},
    {"stddev", PROMQL_T_STDDEV},
    {"stdvar", PROMQL_T_STDVAR},
    {"topk", PROMQL_T_TOPK},
    {"bottomk", PROMQL_T_BOTTOMK},
    {"count_values", PROMQL_T_COUNT_VALUES},
    {"quantile", PROMQL_T_QUANTILE},
    {"offset", PROMQL_T_OFFSET},
    {"by", PROMQL_T_BY},
    {"without", PROMQL_T_WITHOUT},
    {"on", PROMQL_T_ON},
    {"ignoring", PROMQL_T_IGNORING},
    {"group_left", PROMQL_T_GROUP_LEFT},
    {"group_right", PROMQL_T_GROUP_RIGHT},
    {"bool", PROMQL_T_BOOL},
    {"start", PROMQL_T_START},
    {"end", PROMQL_T_END},
    {"inf", PROMQL_T_NUMBER},
    {"nan", PROMQL_T_NUMBER},
};

const char *promql__tok_str(promql__tok t) {
  switch (t) {
    case PROMQL_T_LEFT_PAREN: return "(";
    case PROMQL_T_RIGHT_PAREN: return ")";
    case PROMQL_T_LEFT_BRACE: return "{";
    case PROMQL_T_RIGHT_BRACE: return "}";
    case PROMQL_T_LEFT_BRACKET: return "[";
    case PROMQL_T_RIGHT_BRACKET: return "]";
    case PROMQL_T_COMMA: return ",";
    case PROMQL_T_EQL: return "=";
    case PROMQL_T_COLON: return ":";
    case PROMQL_T_SUB: return "-";
    case PROMQL_T_ADD: return "+";
    case PROMQL_T_MUL: return "*";
    case PROMQL_T_MOD: return "%";
    case PROMQL_T_DIV: return "/";
    case PROMQL_T_EQLC: return "==";
    case PROMQL_T_NEQ: return "!=";
    case PROMQL_T_LTE: return "<=";
    case PROMQL_T_LSS: return "<";
    case PROMQL_T_GTE: return ">=";
    case PROMQL_T_GTR: return ">";
    case PROMQL_T_EQL_REGEX: return "=~";
    case PROMQL_T_NEQ_REGEX: return "!~";
    case PROMQL_T_POW: return "^";
    case PROMQL_T_AT: return "@";
    default: break;
  }
  for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
    if (keywords[i].tok == t && t != PROMQL_T_NUMBER) return keywords[i].word;
  }
  return NULL;
}

static void lex_keyword_or_identifier(lexer_ext *x, promql__token *t) {
  promql__lexer *l = x->l;
  for (;;) {
    int32_t r = next(x);
    if (is_alnum(r) || r == ':') continue;
    backup(x);
    break;
  }
  const char *word = l->in + l->start;
  size_t n = l->pos - l->start;
  char first = (char)(word[0] | 0x20); /* keywords start with a letter */
  for (size_t i = 0; n <= 12 && i < sizeof(keywords) / sizeof(keywords[0]); i++) {
    if (keywords[i].word[0] == first && strlen(keywords[i].word) == n &&
        strncasecmp(keywords[i].word, word, n) == 0) {
      emit(x, t, keywords[i].tok);
      return;
    }
  }
  emit(x, t, memchr(word, ':', n) ? PROMQL_T_METRIC_IDENTIFIER : PROMQL_T_IDENTIFIER);
}

/* Inside {...}: keywords are plain identifiers. Returns true when a token
 * was produced. */
static bool lex_inside_braces(lexer_ext *x, promql__token *t) {
  promql__lexer *l = x->l;
  if (l->pos < l->n && l->in[l->pos] == '#') {
    lex_comment(x, t);
    return true;
  }
  int32_t r = next(x);
  if (r == R_EOF) {
    fail(x, t, "unexpected end of input inside braces");
  } else if (is_space(r)) {
    skip_spaces(x);
    return false;
  } else if (is_alpha(r)) {
    while (is_alnum(next(x))) {
    }
    backup(x);
    emit(x, t, PROMQL_T_IDENTIFIER);
  } else if (r == ',') {
    emit(x, t, PROMQL_T_COMMA);
  } else if (r == '"' || r == '\'') {
    lex_string(x, t, r);
  } else if (r == '`') {
    lex_raw_string(x, t);
  } else if (r == '=') {
    if (next(x) == '~') {
      emit(x, t, PROMQL_T_EQL_REGEX);
    } else {
      backup(x);
      emit(x, t, PROMQL_T_EQL);
    }
  } else if (r == '!') {
    int32_t nr = next(x);
    if (nr == '~') {
      emit(x, t, PROMQL_T_NEQ_REGEX);
    } else if (nr == '=') {
      emit(x, t, PROMQL_T_NEQ);
    } else {
      fail_rune(x, t, "unexpected character after '!' inside braces: ", nr);
    }
  } else if (r == '{') {
    fail_rune(x, t, "unexpected left brace ", r);
  } else if (r == '}') {
    emit(x, t, PROMQL_T_RIGHT_BRACE);
    l->brace_open = false;
  } else {
    fail_rune(x, t, "unexpected character inside braces: ", r);
  }
  return true;
}

static void lex_duration(lexer_ext *x, promql__token *t) {
  if (scan_number(x)) {
    fail(x, t, "missing unit character in duration");
    return;
  }
  if (!accept_remaining_duration(x)) {
    fail_text(x, t, "bad duration syntax: ");
    return;
  }
  backup(x);
  emit(x, t, PROMQL_T_DURATION);
}

static void lex_number_or_duration(lexer_ext *x, promql__token *t) {
  if (scan_number(x)) {
    emit(x, t, PROMQL_T_NUMBER);
    return;
  }
  if (accept_remaining_duration(x)) {
    backup(x);
    emit(x, t, PROMQL_T_DURATION);
    return;
  }
  fail_text(x, t, "bad number or duration syntax: ");
}

void promql__lex_next(promql__lexer *l, promql__token *t) {
  lexer_ext x = {l, 0};
  if (l->done) {
    *t = l->last;
    return;
  }
  if (l->want_duration) {
    l->want_duration = false;
    lex_duration(&x, t);
    return;
  }
  for (;;) {
    if (l->brace_open) {
      if (lex_inside_braces(&x, t)) return;
      continue;
    }
    if (l->pos < l->n && l->in[l->pos] == '#') {
      lex_comment(&x, t);
      return;
    }
    int32_t r = next(&x);
    switch (r) {
      case R_EOF:
        if (l->paren_depth != 0) {
          fail(&x, t, "unclosed left parenthesis");
        } else if (l->bracket_open) {
          fail(&x, t, "unclosed left bracket");
        } else {
          emit(&x, t, PROMQL_T_EOF);
          l->done = true;
          l->last = *t;
        }
        return;
      case ',': emit(&x, t, PROMQL_T_COMMA); return;
      case '*': emit(&x, t, PROMQL_T_MUL); return;
      case '/': emit(&x, t, PROMQL_T_DIV); return;
      case '%': emit(&x, t, PROMQL_T_MOD); return;
      case '+': emit(&x, t, PROMQL_T_ADD); return;
      case '-': emit(&x, t, PROMQL_T_SUB); return;
      case '^': emit(&x, t, PROMQL_T_POW); return;
      case '@': emit(&x, t, PROMQL_T_AT); return;
      case '=': {
        int32_t n2 = peek(&x);
        if (n2 == '=') {
          next(&x);
          emit(&x, t, PROMQL_T_EQLC);
        } else if (n2 == '~') {
          fail_rune(&x, t, "unexpected character after '=': ", n2);
        } else {
          emit(&x, t, PROMQL_T_EQL);
        }
        return;
      }
      case '!': {
        int32_t n2 = next(&x);
        if (n2 == '=') {
          emit(&x, t, PROMQL_T_NEQ);
        } else {
          fail_rune(&x, t, "unexpected character after '!': ", n2);
        }
        return;
      }
      case '<':
        if (peek(&x) == '=') {
          next(&x);
          emit(&x, t, PROMQL_T_LTE);
        } else {
          emit(&x, t, PROMQL_T_LSS);
        }
        return;
      case '>':
        if (peek(&x) == '=') {
          next(&x);
          emit(&x, t, PROMQL_T_GTE);
        } else {
          emit(&x, t, PROMQL_T_GTR);
        }
        return;
      case '"':
      case '\'':
        lex_string(&x, t, r);
        return;
      case '`':
        lex_raw_string(&x, t);
        return;
      case '(':
        emit(&x, t, PROMQL_T_LEFT_PAREN);
        l->paren_depth++;
        return;
      case ')':
        emit(&x, t, PROMQL_T_RIGHT_PAREN);
        l->paren_depth--;
        if (l->paren_depth < 0) fail_rune(&x, t, "unexpected right parenthesis ", r);
        return;
      case '{':
        emit(&x, t, PROMQL_T_LEFT_BRACE);
        l->brace_open = true;
        return;
      case '[':
        if (l->bracket_open) {
          fail_rune(&x, t, "unexpected left bracket ", r);
          return;
        }
        l->got_colon = false;
        emit(&x, t, PROMQL_T_LEFT_BRACKET);
        if (is_space(peek(&x))) skip_spaces(&x);
        l->bracket_open = true;
        l->want_duration = true;
        return;
      case ']':
        if (!l->bracket_open) {
          fail_rune(&x, t, "unexpected right bracket ", r);
          return;
        }
        emit(&x, t, PROMQL_T_RIGHT_BRACKET);
        l->bracket_open = false;
        return;
      default:
        break;
    }
    if (is_space(r)) {
      skip_spaces(&x);
      continue;
    }
    if (is_digit(r) || (r == '.' && is_digit(peek(&x)))) {
      backup(&x);
      lex_number_or_duration(&x, t);
      return;
    }
    if (is_alpha(r) || r == ':') {
      if (!l->bracket_open) {
        backup(&x);
        lex_keyword_or_identifier(&x, t);
        return;
      }
      if (l->got_colon) {
        fail_rune(&x, t, "unexpected colon ", r);
        return;
      }
      emit(&x, t, PROMQL_T_COLON);
      l->got_colon = true;
      return;
    }
    fail_rune(&x, t, "unexpected character: ", r);
    return;
  }
}

/* Item.desc() of Prometheus: fixed tokens print as themselves, the others
 * with their kind ("identifier \"foo\""). */
void promql__token_desc(const promql__lexer *l, const promql__token *t, orr_buf *out) {
  const char *val = l->in + t->pos;
  size_t n = t->len;
  switch (t->type) {
    case PROMQL_T_EOF:
      orr_buf_puts(out, "end of input");
      return;
    case PROMQL_T_ERROR:
      orr_buf_puts(out, "error ");
      orr_buf_puts(out, l->errmsg);
      return;
    case PROMQL_T_IDENTIFIER:
      orr_buf_puts(out, "identifier ");
      promql__quote(out, val, n);
      return;
    case PROMQL_T_METRIC_IDENTIFIER:
      orr_buf_puts(out, "metric identifier ");
      promql__quote(out, val, n);
      return;
    case PROMQL_T_STRING:
    case PROMQL_T_NUMBER:
    case PROMQL_T_DURATION:
    case PROMQL_T_COMMENT:
      orr_buf_puts(out, t->type == PROMQL_T_STRING     ? "string "
                        : t->type == PROMQL_T_NUMBER   ? "number "
                        : t->type == PROMQL_T_DURATION ? "duration "
                                                       : "comment ");
      if (n > 10) {
        /* %.10q: the first ten runes, quoted, then "..." */
        size_t cut = 0;
        for (int runes = 0; runes < 10 && cut < n; runes++) {
          size_t w;
          promql__utf8_decode((const unsigned char *)val + cut, n - cut, &w);
          cut += w;
        }
        promql__quote(out, val, cut);
        orr_buf_puts(out, "...");
      } else {
        promql__quote(out, val, n);
      }
      return;
    default:
      break;
  }
  if (t->type == PROMQL_T_AT) {
    /* Prometheus has no fixed text for "@" and prints its yacc number. */
    orr_buf_puts(out, "\"<Item 57385>\" <op:@>");
  } else if (t->type > PROMQL_T_KEYWORDS_START && t->type < PROMQL_T_KEYWORDS_END) {
    orr_buf_putc(out, '<');
    orr_buf_append(out, val, n);
    orr_buf_putc(out, '>');
  } else if (t->type > PROMQL_T_OPERATORS_START && t->type < PROMQL_T_OPERATORS_END) {
    orr_buf_puts(out, "<op:");
    orr_buf_append(out, val, n);
    orr_buf_putc(out, '>');
  } else if (t->type > PROMQL_T_AGGREGATORS_START && t->type < PROMQL_T_AGGREGATORS_END) {
    orr_buf_puts(out, "<aggr:");
    orr_buf_append(out, val, n);
    orr_buf_putc(out, '>');
  } else {
    promql__quote(out, val, n);
  }
}
