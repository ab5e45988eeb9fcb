/* printer.c: AST → PromQL text exactly as Prometheus 2.42's String() methods
 * print it (printer.go), plus the Go-compatible quoting (%q, %#U) that both
 * the printer and the parser's error messages need. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "promql_int.h"

/* ---------------------------------------------------------------- UTF-8 and quoting */

uint32_t promql__utf8_decode(const unsigned char *s, size_t n, size_t *width) {
  unsigned char b0 = s[0];
  *width = 1;
  if (b0 < 0x80) return b0;
  unsigned lo = 0x80, hi = 0xBF;
  size_t need;
  uint32_t r;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2, r = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3, r = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4, r = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0xFFFD;
  }
  if (n < need) return 0xFFFD;
  for (size_t i = 1; i < need; i++) {
    unsigned c = s[i];
    if (c < lo || c > hi) return 0xFFFD;
    lo = 0x80, hi = 0xBF;
    r = (r << 6) | (c & 0x3F);
  }
  *width = need;
  return r;
}

/* Go's unicode.IsPrint covers letters, marks, numbers, punctuation, symbols
 * and the ASCII space. Without Unicode tables we treat every assigned-looking
 * code point as printable and exclude the control, format, separator,
 * private-use and non-character ranges and the empty planes; unassigned code
 * points in the first three planes (which Go escapes) print literally. Both
 * forms parse back to the same string. */
bool promql__is_print(uint32_t r) {
  if (r < 0x20 || (r >= 0x7F && r <= 0xA0) || r == 0xAD) return false;
  if (r < 0x7F) return true;
  if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return false;
  if (r == 0x061C || r == 0x1680 || r == 0x180E) return false;
  if (r >= 0x2000 && r <= 0x200F) return false;
  if (r >= 0x2028 && r <= 0x202F) return false;
  if (r >= 0x205F && r <= 0x206F) return false;
  if (r == 0x3000 || r == 0xFEFF) return false;
  if (r >= 0xE000 && r <= 0xF8FF) return false;
  if (r >= 0xFFF9 && r <= 0xFFFB) return false;
  if ((r & 0xFFFE) == 0xFFFE) return false;
  if (r >= 0xFDD0 && r <= 0xFDEF) return false;
  /* Planes 3 to 16: only CJK extension G and the variation selectors
   * supplement are printable (Unicode 13, as Prometheus 2.42's Go). */
  if (r >= 0x3134B && r < 0xE0100) return false;
  if (r >= 0xE01F0) return false;
  return true;
}

static void put_utf8(orr_buf *out, uint32_t r) {
  char b[4];
  size_t n;
  if (r < 0x80) {
    b[0] = (char)r, n = 1;
  } else if (r < 0x800) {
    b[0] = (char)(0xC0 | (r >> 6)), b[1] = (char)(0x80 | (r & 0x3F)), n = 2;
  } else if (r < 0x10000) {
    b[0] = (char)(0xE0 | (r >> 12)), b[1] = (char)(0x80 | ((r >> 6) & 0x3F));
    b[2] = (char)(0x80 | (r & 0x3F)), n = 3;
  } else {
    b[0] = (char)(0xF0 | (r >> 18)), b[1] = (char)(0x80 | ((r >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((r >> 6) & 0x3F)), b[3] = (char)(0x80 | (r & 0x3F)), n = 4;
  }
  orr_buf_append(out, b, n);
}

static void escaped_rune(orr_buf *out, uint32_t r, char quote) {
  if (r == (uint32_t)quote || r == '\\') {
    orr_buf_putc(out, '\\');
    orr_buf_putc(out, (char)r);
    return;
  }
  if (promql__is_print(r)) {
    put_utf8(out, r);
    return;
  }
  switch (r) {
    case '\a': orr_buf_puts(out, "\\a"); return;
    case '\b': orr_buf_puts(out, "\\b"); return;
    case '\f': orr_buf_puts(out, "\\f"); return;
    case '\n': orr_buf_puts(out, "\\n"); return;
    case '\r': orr_buf_puts(out, "\\r"); return;
    case '\t': orr_buf_puts(out, "\\t"); return;
    case '\v': orr_buf_puts(out, "\\v"); return;
    default: break;
  }
  if (r < ' ' || r == 0x7F) {
    orr_buf_printf(out, "\\x%02x", (unsigned)r);
    return;
  }
  if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = 0xFFFD;
  if (r < 0x10000) {
    orr_buf_printf(out, "\\u%04x", (unsigned)r);
  } else {
    orr_buf_printf(out, "\\U%08x", (unsigned)r);
  }
}

void promql__quote(orr_buf *out, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  orr_buf_putc(out, '"');
  for (size_t i = 0; i < n;) {
    size_t w;
    uint32_t r = promql__utf8_decode(p + i, n - i, &w);
    if (w == 1 && r == 0xFFFD) {
      orr_buf_printf(out, "\\x%02x", (unsigned)p[i]);
    } else {
      escaped_rune(out, r, '"');
    }
    i += w;
  }
  orr_buf_putc(out, '"');
}

void promql__quote_rune(orr_buf *out, uint32_t r) {
  if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = 0xFFFD;
  orr_buf_putc(out, '\'');
  escaped_rune(out, r, '\'');
  orr_buf_putc(out, '\'');
}

void promql__fmt_U(orr_buf *out, uint32_t r) {
  orr_buf_printf(out, "U+%04X", (unsigned)r);
  if (r <= 0x10FFFF && promql__is_print(r)) {
    orr_buf_puts(out, " '");
    put_utf8(out, r);
    orr_buf_putc(out, '\'');
  }
}

/* ---------------------------------------------------------------- durations */

char *promql_format_duration(int64_t ms, char *out, size_t outlen) {
  static const struct {
    const char *unit;
    int64_t mult;
    bool exact;
  } units[] = {
      {"y", 1000LL * 60 * 60 * 24 * 365, true},
      {"w", 1000LL * 60 * 60 * 24 * 7, true},
      {"d", 1000LL * 60 * 60 * 24, false},
      {"h", 1000LL * 60 * 60, false},
      {"m", 1000LL * 60, false},
      {"s", 1000LL, false},
      {"ms", 1, false},
  };
  size_t len = 0;
  out[0] = 0;
  if (ms == 0) {
    snprintf(out, outlen, "0s");
    return out;
  }
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (units[i].exact && ms % units[i].mult != 0) continue;
    int64_t v = ms / units[i].mult;
    if (v > 0) {
      int w = snprintf(out + len, outlen - len, "%" PRId64 "%s", v, units[i].unit);
      if (w < 0 || (size_t)w >= outlen - len) break;
      len += (size_t)w;
      ms -= v * units[i].mult;
    }
  }
  return out;
}

/* ---------------------------------------------------------------- printing */

static void print_expr(const promql_expr *e, orr_buf *out);

static void print_labels(orr_buf *out, const char *const *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) orr_buf_puts(out, ", ");
    orr_buf_puts(out, v[i]);
  }
}

static void print_at_offset(orr_buf *out, promql_at at, int64_t at_ms, int64_t offset_ms) {
  char d[48];
  if (at == PROMQL_AT_TIMESTAMP) {
    orr_buf_printf(out, " @ %.3f", (double)at_ms / 1000.0);
  } else if (at == PROMQL_AT_START) {
    orr_buf_puts(out, " @ start()");
  } else if (at == PROMQL_AT_END) {
    orr_buf_puts(out, " @ end()");
  }
  if (offset_ms > 0) {
    orr_buf_printf(out, " offset %s", promql_format_duration(offset_ms, d, sizeof(d)));
  } else if (offset_ms < 0) {
    orr_buf_printf(out, " offset -%s", promql_format_duration(-offset_ms, d, sizeof(d)));
  }
}

static const char *match_op_str(labels_match_type t) {
  switch (t) {
    case LABELS_MATCH_EQ: return "=";
    case LABELS_MATCH_NEQ: return "!=";
    case LABELS_MATCH_RE: return "=~";
    case LABELS_MATCH_NRE: return "!~";
  }
  return "?";
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The selector without @ and offset: name{m1,m2} with the matchers as
 * Prometheus prints them — each as name op "value", sorted as strings,
 * leaving out the __name__ matcher that repeats the name. */
static void print_selector_body(const promql_expr *e, orr_buf *out) {
  size_t n = e->u.vs.nmatchers;
  char **strs = n ? calloc(n, sizeof(char *)) : NULL;
  size_t ns = 0;
  if (n && !strs) {
    out->oom = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const labels_matcher *m = e->u.vs.matchers[i];
    const char *name = labels_matcher_name(m), *val = labels_matcher_value(m);
    labels_match_type t = labels_matcher_type(m);
    if (t == LABELS_MATCH_EQ && strcmp(name, LABELS_METRIC_NAME) == 0 &&
        strcmp(val, e->u.vs.name) == 0)
      continue;
    orr_buf b = {0};
    orr_buf_puts(&b, name);
    orr_buf_puts(&b, match_op_str(t));
    promql__quote(&b, val, strlen(val));
    if (b.oom) {
      orr_buf_free(&b);
      out->oom = 1;
      goto out;
    }
    strs[ns++] = orr_buf_steal(&b, NULL);
  }
  orr_buf_puts(out, e->u.vs.name);
  if (ns) {
    qsort(strs, ns, sizeof(char *), cmp_str);
    orr_buf_putc(out, '{');
    for (size_t i = 0; i < ns; i++) {
      if (i) orr_buf_putc(out, ',');
      orr_buf_puts(out, strs[i]);
    }
    orr_buf_putc(out, '}');
  }
out:
  for (size_t i = 0; i < ns; i++) free(strs[i]);
  free(strs);
}

static void print_expr(const promql_expr *e, orr_buf *out) {
  char d[48];
  switch (e->kind) {
    case PROMQL_NODE_NUMBER: {
      char b[64];
      orr_format_float(e->u.number.val, b, sizeof(b));
      orr_buf_puts(out, b);
      break;
    }
    case PROMQL_NODE_STRING:
      promql__quote(out, e->u.string.val, e->u.string.len);
      break;
    case PROMQL_NODE_VECTOR_SELECTOR:
      print_selector_body(e, out);
      print_at_offset(out, e->u.vs.at, e->u.vs.at_ms, e->u.vs.offset_ms);
      break;
    case PROMQL_NODE_MATRIX_SELECTOR: {
      const promql_expr *vs = e->u.ms.vs;
      print_selector_body(vs, out);
      orr_buf_printf(out, "[%s]", promql_format_duration(e->u.ms.range_ms, d, sizeof(d)));
      print_at_offset(out, vs->u.vs.at, vs->u.vs.at_ms, vs->u.vs.offset_ms);
      break;
    }
    case PROMQL_NODE_SUBQUERY:
      print_expr(e->u.subquery.expr, out);
      orr_buf_printf(out, "[%s:", promql_format_duration(e->u.subquery.range_ms, d, sizeof(d)));
      if (e->u.subquery.step_ms != 0)
        orr_buf_puts(out, promql_format_duration(e->u.subquery.step_ms, d, sizeof(d)));
      orr_buf_putc(out, ']');
      print_at_offset(out, e->u.subquery.at, e->u.subquery.at_ms, e->u.subquery.offset_ms);
      break;
    case PROMQL_NODE_CALL:
      orr_buf_puts(out, e->u.call.func->name);
      orr_buf_putc(out, '(');
      for (size_t i = 0; i < e->u.call.nargs; i++) {
        if (i) orr_buf_puts(out, ", ");
        print_expr(e->u.call.args[i], out);
      }
      orr_buf_putc(out, ')');
      break;
    case PROMQL_NODE_AGGREGATE:
      orr_buf_puts(out, promql_aggop_str(e->u.agg.op));
      if (e->u.agg.without) {
        orr_buf_puts(out, " without (");
        print_labels(out, e->u.agg.grouping, e->u.agg.ngrouping);
        orr_buf_puts(out, ") ");
      } else if (e->u.agg.ngrouping > 0) {
        orr_buf_puts(out, " by (");
        print_labels(out, e->u.agg.grouping, e->u.agg.ngrouping);
        orr_buf_puts(out, ") ");
      }
      orr_buf_putc(out, '(');
      if (promql_aggop_has_param(e->u.agg.op) && e->u.agg.param) {
        print_expr(e->u.agg.param, out);
        orr_buf_puts(out, ", ");
      }
      print_expr(e->u.agg.expr, out);
      orr_buf_putc(out, ')');
      break;
    case PROMQL_NODE_BINARY: {
      const promql_vector_matching *vm = e->u.binary.matching;
      const promql_expr *lhs = e->u.binary.lhs;
      if (e->u.binary.op == PROMQL_OP_POW && lhs->kind == PROMQL_NODE_NUMBER &&
          isinf(lhs->u.number.val) && lhs->u.number.val > 0) {
        /* Prometheus prints "+Inf ^ x", which parses back as +(Inf ^ x);
         * "Inf" keeps the tree (the one place we differ from String()). */
        orr_buf_puts(out, "Inf");
      } else {
        print_expr(lhs, out);
      }
      orr_buf_putc(out, ' ');
      orr_buf_puts(out, promql_op_str(e->u.binary.op));
      if (e->u.binary.return_bool) orr_buf_puts(out, " bool");
      if (vm && (vm->nmatching > 0 || vm->on)) {
        orr_buf_puts(out, vm->on ? " on (" : " ignoring (");
        print_labels(out, vm->matching_labels, vm->nmatching);
        orr_buf_putc(out, ')');
        if (vm->card == PROMQL_CARD_MANY_TO_ONE || vm->card == PROMQL_CARD_ONE_TO_MANY) {
          orr_buf_puts(out, vm->card == PROMQL_CARD_MANY_TO_ONE ? " group_left (" : " group_right (");
          print_labels(out, vm->include, vm->ninclude);
          orr_buf_putc(out, ')');
        }
      }
      orr_buf_putc(out, ' ');
      print_expr(e->u.binary.rhs, out);
      break;
    }
    case PROMQL_NODE_UNARY:
      orr_buf_puts(out, promql_op_str(e->u.unary.op));
      print_expr(e->u.unary.expr, out);
      break;
    case PROMQL_NODE_PAREN:
      orr_buf_putc(out, '(');
      print_expr(e->u.paren.expr, out);
      orr_buf_putc(out, ')');
      break;
    case PROMQL_NODE_STEP_INVARIANT:
      print_expr(e->u.paren.expr, out);
      break;
  }
}

int promql_expr_format(const promql_expr *e, orr_buf *out) {
  if (out->oom) return ORR_ENOMEM;
  print_expr(e, out);
  return out->oom ? ORR_ENOMEM : 0;
}
