/* matcher.c: label matchers (=, !=, =~, !~) with Prometheus 2.42 semantics.
 * Regexes are written in Go's RE2 syntax; we check that syntax, translate the
 * few escapes whose meaning differs, and run them on PCRE2 (JIT when the
 * library has it) under match and depth limits.
 *
 * Design notes:
 *  1. A regex is anchored as Prometheus does, ^(?:re)$, where RE2's $ means
 *     end of text: we write \z (PCRE2's $ would also match before a final \n).
 *  2. Go regexps work on UTF-8 and read each invalid byte as U+FFFD. We
 *     compile with PCRE2_UTF and match with PCRE2_NO_UTF_CHECK after
 *     validating the subject ourselves; a subject that is not valid UTF-8 is
 *     matched as a copy with each invalid byte replaced by U+FFFD, which is
 *     what Go's regexp sees.
 *  3. Syntax RE2 rejects is rejected with Go's message text: backreferences,
 *     lookaround, atomic groups, possessive and stacked quantifiers, \C \K \G
 *     \X \R \h \e ..., conditionals, recursion, repeat counts over 1000.
 *  4. Go's \v is the vertical tab (PCRE2: vertical space class), Go's \s has
 *     no \v (PCRE2's has), Go's \1 is an error and \012 an octal escape,
 *     RE2 lets ^ $ \b \B \A \z be repeated (PCRE2 only inside a group),
 *     RE2 allows duplicate group names: those are translated. The unit test
 *     checks tables and random regexes against Prometheus (promtool).
 *  5. Fast paths (no PCRE2 call): a plain alternation of literals ("a|b|c",
 *     kept sorted for binary search), a literal prefix followed by ".*"
 *     (Prometheus 2.42's "." does not match \n, so neither does the tail),
 *     ".*" and ".+".
 *  6. A matcher is immutable after construction except for a cached match
 *     data pointer that is swapped atomically, so one matcher may be used
 *     from several threads. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "labels.h"

/* Limits on one match: backtracking steps and nesting depth. A match that
 * hits them counts as no match (the header documents it). */
#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 10000u
#define MAX_REPEAT 1000 /* RE2's limit on {n,m} */

typedef enum { FAST_NONE = 0, FAST_SET, FAST_PREFIX, FAST_ANY, FAST_NONEMPTY } fast_kind;

struct labels_matcher {
  labels_match_type type;
  char *name;
  char *value;
  size_t value_len;
  bool empty_matches; /* cached labels_matcher_matches(m, "", 0) */

  /* Regex state (=~ and !~ only). */
  fast_kind fast;
  char **set; /* FAST_SET: sorted, unique literals */
  size_t nset;
  size_t *set_len;
  char *prefix; /* FAST_PREFIX */
  size_t prefix_len;
  pcre2_code *code;
  _Atomic(pcre2_match_data *) md; /* one cached match data; others are made per call */
  pcre2_match_context *mctx;
};

static int jit_available(void) {
  static atomic_int cached = -1;
  int v = atomic_load(&cached);
  if (v < 0) {
    uint32_t jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    v = jit ? 1 : 0;
    atomic_store(&cached, v);
  }
  return v;
}

/* ---------------------------------------------------------------- RE2 syntax */

typedef struct translate {
  const char *re;
  size_t n;
  orr_buf *out;
  char *err;
  size_t errlen;
  /* RE2's nested-repeat limit (Go's repeatIsValid): along any path of the
   * parse tree the counts of nested {n,m} repetitions multiply to at most
   * MAX_REPEAT, each counting its max (its min when unbounded); x{0} ends
   * the path. "(a{1,100}){1,100}" is 10,000 copies of a: refused.
   * cost[d]: the largest product inside the group open at depth d over the
   * elements completed so far; elem: the product of the element being built
   * (its atom and the repetitions applied to it). */
  long *cost;
  long elem;
} translate;

/* The element being built is complete: it counts for its group. */
static void cost_fold(translate *t, int depth) {
  if (t->elem > t->cost[depth]) t->cost[depth] = t->elem;
  t->elem = 1;
}

static int syntax_error(translate *t, const char *what, const char *at, size_t len) {
  snprintf(t->err, t->errlen, "error parsing regexp: %s: `%.*s`", what, (int)len, at);
  return ORR_EINVAL;
}

/* Errors Go finds only after Prometheus wrapped the pattern in ^(?:re)$
 * (an unbalanced paren, or a construct that swallowed the wrapper's ")$")
 * quote the wrapped pattern, or its tail from |from|. */
static int wrapped_error(translate *t, const char *what, const char *from) {
  if (!from)
    snprintf(t->err, t->errlen, "error parsing regexp: %s: `^(?:%.*s)$`", what, (int)t->n, t->re);
  else
    snprintf(t->err, t->errlen, "error parsing regexp: %s: `%.*s)$`", what,
             (int)(t->re + t->n - from), from);
  return ORR_EINVAL;
}

static bool is_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_octal(char c) { return c >= '0' && c <= '7'; }

/* Decodes the (already validated) UTF-8 character at |p|; returns its
 * length, 0 at the end. */
static size_t utf8_decode(const char *p, const char *end, uint32_t *cp) {
  if (p >= end) return 0;
  unsigned char c = (unsigned char)*p;
  size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
  if ((size_t)(end - p) < len) return 0;
  uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1fu) : len == 3 ? (c & 0x0fu) : (c & 0x07u);
  for (size_t i = 1; i < len; i++) v = (v << 6) | ((unsigned char)p[i] & 0x3fu);
  *cp = v;
  return len;
}

/* Parses a repeat {n}, {n,} or {n,m} at |p|; returns its length or 0 when the
 * text is not a repeat (then RE2 and PCRE2 both take "{" literally). */
static size_t parse_repeat(const char *p, const char *end, long *lo, long *hi) {
  const char *s = p;
  if (s >= end || *s != '{') return 0;
  s++;
  long a = -1, b = -1;
  if (s >= end || *s < '0' || *s > '9') return 0;
  a = 0;
  while (s < end && *s >= '0' && *s <= '9') {
    if (a < 100000) a = a * 10 + (*s - '0');
    s++;
  }
  b = a;
  if (s < end && *s == ',') {
    s++;
    if (s < end && *s >= '0' && *s <= '9') {
      b = 0;
      while (s < end && *s >= '0' && *s <= '9') {
        if (b < 100000) b = b * 10 + (*s - '0');
        s++;
      }
    } else {
      b = -1;
    }
  }
  if (s >= end || *s != '}') return 0;
  *lo = a;
  *hi = b;
  return (size_t)(s + 1 - p);
}

/* Handles one escape at |p| (pointing at the backslash); appends its PCRE2
 * form and returns the number of bytes consumed, or 0 after writing an error.
 * |in_class| selects the rules inside [...]. */
/* Is |name| a Unicode class RE2 (Go 1.19) knows for \p: "Any", a general
 * category (exact case), or a script name? Scripts are checked by asking
 * PCRE2 for the same class, with RE2's spelling rules (a capital first,
 * then letters and '_') since PCRE2 also takes loose spellings. */
static bool re2_unicode_class(const char *name, size_t n) {
  static const char *const cats[] = {
      "Any", "C",  "Cc", "Cf", "Co", "Cs", "L",  "Ll", "Lm", "Lo", "Lt", "Lu", "M",  "Mc",
      "Me",  "Mn", "N",  "Nd", "Nl", "No", "P",  "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps",
      "S",   "Sc", "Sk", "Sm", "So", "Z",  "Zl", "Zp", "Zs"};
  if (n == 0 || n > 40) return false;
  for (size_t i = 0; i < sizeof(cats) / sizeof(cats[0]); i++) {
    if (strlen(cats[i]) == n && memcmp(cats[i], name, n) == 0) return true;
  }
  if (n < 2 || name[0] < 'A' || name[0] > 'Z') return false;
  for (size_t i = 1; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) return false;
  }
  char pat[64];
  snprintf(pat, sizeof(pat), "\\p{%.*s}", (int)n, name);
  int ec;
  PCRE2_SIZE eo;
  pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
  if (!code) return false;
  pcre2_code_free(code);
  return true;
}

static size_t translate_escape(translate *t, const char *p, const char *end, bool in_class) {
  if (p + 1 >= end) {
    /* In ^(?:re)$ a trailing backslash escapes the wrapper's ")". */
    wrapped_error(t, "missing closing )", NULL);
    return 0;
  }
  unsigned char c = (unsigned char)p[1];
  if (c < 0x80 && !is_alnum(c)) { /* escaped punctuation is literal in both */
    orr_buf_append(t->out, p, 2);
    return 2;
  }
  switch (c) {
  case '1': case '2': case '3': case '4': case '5': case '6': case '7':
    if (p + 2 >= end || !is_octal(p[2])) break; /* a backreference: unsupported */
    goto octal;
  case '0':
  octal: {
    unsigned v = 0;
    size_t i = 1, digits = 0;
    while (digits < 3 && p + i < end && is_octal(p[i])) {
      v = v * 8 + (unsigned)(p[i] - '0');
      i++, digits++;
    }
    orr_buf_printf(t->out, "\\x{%x}", v);
    return i;
  }
  case 'a': case 'f': case 'n': case 'r': case 't': case 'd': case 'D': case 'w': case 'W':
    orr_buf_append(t->out, p, 2);
    return 2;
  case 'v':
    orr_buf_puts(t->out, "\\x{0b}");
    return 2;
  case 's':
    orr_buf_puts(t->out, in_class ? "\\t\\n\\f\\r " : "[\\t\\n\\f\\r ]");
    return 2;
  case 'S':
    if (in_class) break; /* a negated class inside a class: no PCRE2 spelling */
    orr_buf_puts(t->out, "[^\\t\\n\\f\\r ]");
    return 2;
  case 'A': case 'z': case 'b': case 'B':
    if (in_class) break;
    /* RE2 lets assertions be repeated, PCRE2 only groups: wrap them. */
    orr_buf_puts(t->out, "(?:");
    orr_buf_append(t->out, p, 2);
    orr_buf_putc(t->out, ')');
    return 2;
  case 'x': {
    /* \xHH or \x{H...} */
    if (p + 2 < end && p[2] == '{') {
      const char *q = p + 3;
      while (q < end && *q != '}') {
        if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F')))
          break;
        q++;
      }
      if (q >= end || *q != '}' || q == p + 3) break;
      orr_buf_append(t->out, p, (size_t)(q + 1 - p));
      return (size_t)(q + 1 - p);
    }
    for (int i = 2; i < 4; i++) {
      if (p + i >= end || !strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) goto bad;
    }
    orr_buf_append(t->out, p, 4);
    return 4;
  }
  case 'p': case 'P': {
    /* \pL or \p{Name}: same spelling in both; RE2 knows fewer names. */
    if (p + 2 >= end) break;
    size_t len = 3;
    const char *name = p + 2;
    size_t nlen = 1;
    if (p[2] == '{') {
      const char *q = memchr(p + 3, '}', (size_t)(end - (p + 3)));
      if (!q) break;
      len = (size_t)(q + 1 - p);
      name = p + 3;
      nlen = (size_t)(q - name);
      if (nlen && *name == '^') { /* \p{^Greek} negates */
        name++;
        nlen--;
      }
    }
    if (!re2_unicode_class(name, nlen)) {
      syntax_error(t, "invalid character class range", p, len);
      return 0;
    }
    orr_buf_append(t->out, p, len);
    return len;
  }
  case 'Q': {
    if (in_class) break;
    /* \Q...\E: literal text; unterminated runs to the end, as in RE2. */
    const char *q = p + 2;
    const char *e = q;
    while (e + 1 < end && !(e[0] == '\\' && e[1] == 'E')) e++;
    /* Unterminated, it swallows the wrapper's ")$" in Prometheus. */
    if (e + 1 >= end) {
      wrapped_error(t, "missing closing )", NULL);
      return 0;
    }
    size_t litlen = (size_t)(e - q);
    for (size_t i = 0; i < litlen; i++) {
      unsigned char ch = (unsigned char)q[i];
      if (ch < 0x80 && !is_alnum(ch) && ch != ' ') orr_buf_putc(t->out, '\\');
      orr_buf_putc(t->out, (char)ch);
    }
    return (size_t)(e + 2 - p);
  }
  default:
    break;
  }
bad:;
  /* RE2 names the escape including a whole UTF-8 sequence. */
  size_t len = 2;
  if (c >= 0x80) {
    while (p + len < end && ((unsigned char)p[len] & 0xc0) == 0x80) len++;
  }
  syntax_error(t, "invalid escape sequence", p, len);
  return 0;
}

/* Translates the RE2 pattern into |t->out|; returns 0 or ORR_EINVAL.
 * t->cost has room for one more entry than the pattern has bytes. */
static int translate_re2_groups(translate *t) {
  const char *p = t->re, *end = t->re + t->n;
  const char *last_repeat = NULL; /* start of the previous repetition operator */
  bool operand = false;            /* is there something a repetition could apply to? */
  int depth = 0;                   /* open groups */
  if (!labels__utf8_valid(t->re, t->n)) return syntax_error(t, "invalid UTF-8", t->re, t->n);
  while (p < end) {
    char c = *p;
    const char *op = p;
    bool repeat = false;
    long atom_cost = 1;           /* a group's inner cost once it closes */
    long rep_lo = -1, rep_hi = -1; /* a {n,m} repetition's counts */
    if (c == '\\') {
      size_t k = translate_escape(t, p, end, false);
      if (!k) return ORR_EINVAL;
      p += k;
    } else if (c == '[') {
      /* A class: copy through to the matching ], checking escapes. */
      orr_buf_putc(t->out, '[');
      p++;
      if (p < end && *p == '^') orr_buf_putc(t->out, *p++);
      if (p < end && *p == ']') orr_buf_putc(t->out, *p++);
      bool closed = false;
      while (p < end) {
        if (*p == ']') {
          orr_buf_putc(t->out, *p++);
          closed = true;
          break;
        }
        if (*p == '\\') {
          size_t k = translate_escape(t, p, end, true);
          if (!k) return ORR_EINVAL;
          p += k;
          continue;
        }
        if (*p == '[' && p + 1 < end && p[1] == ':') {
          const char *q = p + 2;
          while (q + 1 < end && !(q[0] == ':' && q[1] == ']')) q++;
          if (q + 1 < end) {
            static const char *const posix =
                " alnum alpha ascii blank cntrl digit graph lower print punct space upper word"
                " xdigit ";
            const char *nm = p + 2;
            if (nm < q && *nm == '^') nm++;
            char key[16];
            size_t kl = (size_t)(q - nm);
            if (kl == 0 || kl > 10) goto bad_posix;
            key[0] = ' ';
            memcpy(key + 1, nm, kl);
            key[kl + 1] = ' ';
            key[kl + 2] = 0;
            if (!strstr(posix, key)) {
            bad_posix:
              return syntax_error(t, "invalid character class range", p, (size_t)(q + 2 - p));
            }
            orr_buf_append(t->out, p, (size_t)(q + 2 - p));
            p = q + 2;
            continue;
          }
        }
        if (*p != '\\' && *p != '[') {
          /* a range of two plain characters must be in order */
          uint32_t lo, hi;
          size_t l1 = utf8_decode(p, end, &lo);
          const char *r = p + l1;
          if (l1 && r + 1 < end && r[0] == '-' && r[1] != ']' && r[1] != '\\' && r[1] != '[') {
            size_t l2 = utf8_decode(r + 1, end, &hi);
            if (l2 && hi < lo)
              return syntax_error(t, "invalid character class range", p, l1 + 1 + l2);
          }
        }
        if (*p == '[') { /* literal [ inside a class: PCRE2 wants it escaped */
          orr_buf_puts(t->out, "\\[");
          p++;
          continue;
        }
        orr_buf_putc(t->out, *p++);
      }
      if (!closed) return wrapped_error(t, "missing closing ]", op);
    } else if (c == '(') {
      if (p + 1 < end && p[1] == '?') {
        /* (?:  (?flags)  (?flags:  (?P<name>  — everything else is Perl
         * syntax RE2 does not have. */
        const char *q = p + 2;
        if (q < end && *q == 'P' && q + 1 < end && q[1] == '<') {
          const char *r = memchr(q + 2, '>', (size_t)(end - (q + 2)));
          if (!r) return wrapped_error(t, "invalid named capture", p);
          bool ok = r > q + 2;
          for (const char *x = q + 2; x < r; x++) {
            if (!(is_alnum((unsigned char)*x) || *x == '_')) ok = false;
          }
          if (!ok) return syntax_error(t, "invalid named capture", p, (size_t)(r + 1 - p));
          orr_buf_append(t->out, p, (size_t)(r + 1 - p));
          p = r + 1;
          last_repeat = NULL;
          operand = false;
          cost_fold(t, depth);
          t->cost[++depth] = 1;
          continue;
        }
        bool neg = false, any = false;
        while (q < end) {
          char f = *q;
          if (f == 'i' || f == 'm' || f == 's' || f == 'U') {
            any = true;
            q++;
            continue;
          }
          if (f == '-' && !neg) {
            neg = true;
            q++;
            continue;
          }
          break;
        }
        if (q >= end) return wrapped_error(t, "missing closing )", NULL);
        if (*q == ')' && !any && !neg) { /* "(?)": RE2 accepts an empty flag group */
          p = q + 1;
          last_repeat = NULL;
          continue;
        }
        if ((*q != ':' && *q != ')') || (neg && q[-1] == '-')) {
          size_t l = (size_t)(q + 1 - p);
          if ((unsigned char)*q >= 0x80) {
            while (p + l < end && ((unsigned char)p[l] & 0xc0) == 0x80) l++;
          }
          return syntax_error(t, "invalid or unsupported Perl syntax", p, l);
        }
        orr_buf_append(t->out, p, (size_t)(q + 1 - p));
        p = q + 1;
        if (q[0] == ':') { /* a group opens; (?flags) changes nothing */
          operand = false;
          cost_fold(t, depth);
          t->cost[++depth] = 1;
        }
        last_repeat = NULL;
        continue;
      } else {
        orr_buf_putc(t->out, *p++);
        operand = false;
        last_repeat = NULL;
        cost_fold(t, depth);
        t->cost[++depth] = 1;
        continue;
      }
    } else if (c == ')') {
      if (depth == 0) return wrapped_error(t, "unexpected )", NULL);
      cost_fold(t, depth);
      atom_cost = t->cost[depth];
      depth--;
      orr_buf_putc(t->out, *p++);
    } else if (c == '*' || c == '+' || c == '?') {
      repeat = true;
      p++;
    } else if (c == '{') {
      long lo, hi;
      size_t k = parse_repeat(p, end, &lo, &hi);
      if (k) {
        if (lo > MAX_REPEAT || hi > MAX_REPEAT || (hi >= 0 && hi < lo))
          return syntax_error(t, "invalid repeat count", p, k);
        repeat = true;
        rep_lo = lo;
        rep_hi = hi;
        p += k;
      } else {
        orr_buf_puts(t->out, "\\{");
        p++;
      }
    } else if (c == '|') {
      orr_buf_putc(t->out, *p++);
      operand = false;
      last_repeat = NULL;
      cost_fold(t, depth);
      continue;
    } else if (c == '^' || c == '$') { /* repeatable in RE2, see \b */
      orr_buf_puts(t->out, "(?:");
      orr_buf_putc(t->out, *p++);
      orr_buf_putc(t->out, ')');
    } else {
      orr_buf_putc(t->out, *p++);
    }
    if (repeat) {
      if (p < end && *p == '?') p++; /* non-greedy */
      if (last_repeat) return syntax_error(t, "invalid nested repetition operator", last_repeat,
                                           (size_t)(p - last_repeat));
      if (!operand)
        return syntax_error(t, "missing argument to repetition operator", op, (size_t)(p - op));
      if (rep_lo >= 0) { /* {n,m}: as Go's repeatIsValid, checked when n or m >= 2 */
        long m = rep_hi == 0 ? 0 : rep_hi < 0 ? rep_lo : rep_hi;
        if (rep_hi == 0) {
          t->elem = 1; /* x{0}: nothing below counts */
        } else if (m > 0) {
          long prod = t->elem * m; /* both <= MAX_REPEAT: no overflow */
          if ((rep_lo >= 2 || rep_hi >= 2) && prod > MAX_REPEAT)
            return syntax_error(t, "invalid repeat count", op, (size_t)(p - op));
          t->elem = prod > MAX_REPEAT ? MAX_REPEAT + 1 : prod;
        }
      }
      orr_buf_append(t->out, op, (size_t)(p - op));
      last_repeat = op;
    } else {
      last_repeat = NULL;
      operand = true;
      cost_fold(t, depth);
      t->elem = atom_cost;
    }
  }
  if (depth > 0) return wrapped_error(t, "missing closing )", NULL);
  return t->out->oom ? ORR_ENOMEM : 0;
}

static int translate_re2(translate *t) {
  t->cost = calloc(t->n + 1, sizeof(*t->cost));
  if (!t->cost) return ORR_ENOMEM;
  t->cost[0] = 1;
  t->elem = 1;
  int rc = translate_re2_groups(t);
  free(t->cost);
  t->cost = NULL;
  return rc;
}

/* ---------------------------------------------------------------- fast paths */

/* Reads a literal run of |re| starting at |*pos|, stopping at an unescaped
 * "|" or the end; appends the unescaped bytes to |out|. Returns false when
 * something other than a literal byte or an escaped punctuation is found
 * (the position is then left there). */
static bool read_literal(const char *re, size_t n, size_t *pos, orr_buf *out) {
  size_t i = *pos;
  while (i < n && re[i] != '|') {
    unsigned char c = (unsigned char)re[i];
    if (c == '\\') {
      if (i + 1 >= n) break;
      unsigned char d = (unsigned char)re[i + 1];
      if (d >= 0x80 || is_alnum(d)) break;
      orr_buf_putc(out, (char)d);
      i += 2;
      continue;
    }
    if (strchr(".+*?()[]{}^$", c) && c) break;
    orr_buf_putc(out, (char)c);
    i++;
  }
  *pos = i;
  return true;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Detects "a|b|c" (FAST_SET), "lit.*" (FAST_PREFIX), ".+" (FAST_NONEMPTY).
 * Returns 0 (possibly with no fast path) or ORR_ENOMEM. Literals holding a NUL
 * byte (possible through \x00) are left to PCRE2. */
static int detect_fast(labels_matcher *m) {
  const char *re = m->value;
  size_t n = m->value_len;
  orr_buf lit = {0};
  int rc = 0;
  if (n == 2 && re[0] == '.' && re[1] == '+') {
    m->fast = FAST_NONEMPTY;
    return 0;
  }
  /* Prefix: a literal followed by exactly ".*". */
  if (n >= 2 && re[n - 2] == '.' && re[n - 1] == '*' && (n < 3 || re[n - 3] != '\\')) {
    size_t pos = 0;
    read_literal(re, n - 2, &pos, &lit);
    if (pos == n - 2 && !lit.oom && (lit.len == 0 || !memchr(lit.data, 0, lit.len))) {
      if (lit.len == 0) {
        m->fast = FAST_ANY; /* ".*" */
        goto out;
      }
      m->prefix = orr_buf_steal(&lit, &m->prefix_len);
      m->fast = FAST_PREFIX;
      goto out;
    }
    orr_buf_reset(&lit);
  }
  /* Alternation of literals. */
  size_t alts = 1;
  for (size_t i = 0; i < n; i++) {
    if (re[i] == '\\') {
      i++;
      continue;
    }
    if (re[i] == '|') alts++;
  }
  char **set = calloc(alts, sizeof(*set));
  size_t *lens = calloc(alts, sizeof(*lens));
  if (!set || !lens) {
    free(set);
    free(lens);
    rc = ORR_ENOMEM;
    goto out;
  }
  size_t pos = 0, k = 0;
  bool ok = true;
  for (;;) {
    orr_buf_reset(&lit);
    read_literal(re, n, &pos, &lit);
    if (lit.oom) {
      rc = ORR_ENOMEM;
      ok = false;
      break;
    }
    if ((pos < n && re[pos] != '|') || (lit.len && memchr(lit.data, 0, lit.len))) {
      ok = false;
      break;
    }
    set[k] = lit.len ? orr_buf_steal(&lit, &lens[k]) : strdup("");
    if (!set[k]) {
      rc = ORR_ENOMEM;
      ok = false;
      break;
    }
    k++;
    if (pos >= n) break;
    pos++; /* the | */
  }
  if (!ok) {
    for (size_t i = 0; i < k; i++) free(set[i]);
    free(set);
    free(lens);
    goto out;
  }
  qsort(set, k, sizeof(*set), cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < k; i++) {
    if (u && strcmp(set[u - 1], set[i]) == 0) {
      free(set[i]);
      continue;
    }
    set[u] = set[i];
    lens[u] = strlen(set[i]);
    u++;
  }
  m->set = set;
  m->set_len = lens;
  m->nset = u;
  m->fast = FAST_SET;
out:
  orr_buf_free(&lit);
  return rc;
}

/* ---------------------------------------------------------------- matcher */

static pcre2_code *compile(const char *pattern, uint32_t flags, char *err, size_t errlen) {
  int errcode = 0;
  PCRE2_SIZE erroff = 0;
  pcre2_code *code =
      pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, flags | PCRE2_DOLLAR_ENDONLY | PCRE2_DUPNAMES,
                    &errcode, &erroff, NULL);
  if (!code) {
    if (err && errlen) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(errcode, msg, sizeof(msg));
      snprintf(err, errlen, "error parsing regexp: %s", (const char *)msg);
    }
    return NULL;
  }
  if (jit_available()) pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* best effort */
  return code;
}

void labels_matcher_free(labels_matcher *m) {
  if (!m) return;
  free(m->name);
  free(m->value);
  for (size_t i = 0; i < m->nset; i++) free(m->set[i]);
  free(m->set);
  free(m->set_len);
  free(m->prefix);
  pcre2_code_free(m->code);
  pcre2_match_data_free(atomic_load(&m->md));
  pcre2_match_context_free(m->mctx);
  free(m);
}

labels_matcher *labels_matcher_new(labels_match_type type, const char *name, const char *value,
                                   char *err, size_t errlen) {
  char dummy[1];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  err[0] = 0;
  if (!name || !value || type > LABELS_MATCH_NRE) {
    snprintf(err, errlen, "invalid matcher");
    return NULL;
  }
  labels_matcher *m = calloc(1, sizeof(*m));
  orr_buf pat = {0};
  if (!m) goto oom;
  m->type = type;
  m->name = strdup(name);
  m->value = strdup(value);
  if (!m->name || !m->value) goto oom;
  m->value_len = strlen(value);
  if (type == LABELS_MATCH_RE || type == LABELS_MATCH_NRE) {
    orr_buf_puts(&pat, "^(?:");
    translate t = {value, m->value_len, &pat, err, errlen, NULL, 1};
    int rc = translate_re2(&t);
    if (rc == ORR_ENOMEM) goto oom;
    if (rc) goto fail;
    orr_buf_puts(&pat, ")\\z");
    if (pat.oom) goto oom;
    m->code = compile(pat.data, PCRE2_UTF, err, errlen);
    if (!m->code) goto fail;
    orr_buf_free(&pat);
    m->mctx = pcre2_match_context_create(NULL);
    if (!m->mctx) goto oom;
    pcre2_set_match_limit(m->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(m->mctx, DEPTH_LIMIT);
    if (detect_fast(m)) goto oom;
  }
  m->empty_matches = labels_matcher_matches(m, "", 0);
  return m;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  orr_buf_free(&pat);
  labels_matcher_free(m);
  return NULL;
}

labels_match_type labels_matcher_type(const labels_matcher *m) { return m->type; }
const char *labels_matcher_name(const labels_matcher *m) { return m->name; }
const char *labels_matcher_value(const labels_matcher *m) { return m->value; }

/* Copies |s| with each byte that is not part of valid UTF-8 replaced by
 * U+FFFD, as Go decodes it. Returns the copy (|buf| when it fits, else
 * malloc'ed; NULL on OOM) and its length. */
static char *sanitize_utf8(const char *s, size_t n, char *buf, size_t buflen, size_t *outlen) {
  size_t need = n * 3; /* every byte may become 3 */
  char *out = need <= buflen ? buf : malloc(need ? need : 1);
  if (!out) return NULL;
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, o = 0;
  while (i < n) {
    size_t l = p[i] < 0x80 ? 1 : labels__utf8_len(p + i, n - i);
    if (l) {
      memcpy(out + o, p + i, l);
      o += l;
      i += l;
    } else {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    }
  }
  *outlen = o;
  return out;
}

static bool run_pcre(labels_matcher *m, const char *s, size_t n) {
  char small[256];
  char *copy = NULL;
  if (!labels__utf8_valid(s, n)) {
    size_t cn;
    copy = sanitize_utf8(s, n, small, sizeof(small), &cn);
    if (!copy) return false;
    s = copy;
    n = cn;
  }
  pcre2_code *code = m->code;
  uint32_t opts = PCRE2_NO_UTF_CHECK;
  pcre2_match_data *md = atomic_exchange(&m->md, NULL);
  if (!md) md = pcre2_match_data_create(1, NULL);
  if (!md) {
    if (copy && copy != small) free(copy);
    return false;
  }
  int rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, opts, md, m->mctx);
  md = atomic_exchange(&m->md, md);
  pcre2_match_data_free(md); /* NULL unless another thread cached one meanwhile */
  if (copy && copy != small) free(copy);
  return rc >= 0;
}

static bool regex_matches(labels_matcher *m, const char *s, size_t n) {
  switch (m->fast) {
  case FAST_SET: {
    size_t lo = 0, hi = m->nset;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      size_t l = m->set_len[mid];
      int c = memcmp(m->set[mid], s, l < n ? l : n);
      if (c == 0) c = l < n ? -1 : (l > n ? 1 : 0);
      if (c == 0) return true;
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    return false;
  }
  case FAST_PREFIX:
    return n >= m->prefix_len && memcmp(s, m->prefix, m->prefix_len) == 0 &&
           !memchr(s + m->prefix_len, '\n', n - m->prefix_len);
  case FAST_ANY:
    return !memchr(s, '\n', n);
  case FAST_NONEMPTY:
    return n > 0 && !memchr(s, '\n', n);
  case FAST_NONE:
    break;
  }
  return run_pcre(m, s, n);
}

bool labels_matcher_matches(const labels_matcher *cm, const char *value, size_t n) {
  labels_matcher *m = (labels_matcher *)cm; /* only the atomic caches change */
  switch (m->type) {
  case LABELS_MATCH_EQ:
    return n == m->value_len && memcmp(value, m->value, n) == 0;
  case LABELS_MATCH_NEQ:
    return !(n == m->value_len && memcmp(value, m->value, n) == 0);
  case LABELS_MATCH_RE:
    return regex_matches(m, value, n);
  case LABELS_MATCH_NRE:
    return !regex_matches(m, value, n);
  }
  return false;
}

bool labels_matcher_matches_empty(const labels_matcher *m) { return m->empty_matches; }

size_t labels_matcher_set_values(const labels_matcher *m, const char *const **values) {
  if (m->type != LABELS_MATCH_RE || m->fast != FAST_SET) return 0;
  *values = (const char *const *)m->set;
  return m->nset;
}

const char *labels_matcher_prefix(const labels_matcher *m) {
  if (m->type != LABELS_MATCH_RE) return NULL;
  if (m->fast == FAST_PREFIX) return m->prefix;
  if (m->fast == FAST_ANY) return "";
  return NULL;
}

bool labels_matches_all(const labels_set *s, labels_matcher *const *ms, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *v = labels_get(s, ms[i]->name);
    if (!v) v = "";
    if (!labels_matcher_matches(ms[i], v, strlen(v))) return false;
  }
  return true;
}

int labels_matcher_format(const labels_matcher *m, orr_buf *out) {
  static const char *const ops[] = {"=", "!=", "=~", "!~"};
  orr_buf_puts(out, m->name);
  orr_buf_puts(out, ops[m->type]);
  labels__quote(out, m->value, m->value_len);
  return out->oom ? ORR_ENOMEM : 0;
}

/* ---------------------------------------------------------------- submatches
 * For relabeling: the whole regex (no fast path) with its capture groups. */

int labels__regex_submatch(const labels_matcher *m, const char *s, size_t n, size_t *ov,
                           size_t npairs) {
  if (!m->code || npairs == 0) return 0;
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(m->code, NULL);
  if (!md) return ORR_ENOMEM;
  int rc = pcre2_match(m->code, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, md, m->mctx);
  if (rc < 0) {
    pcre2_match_data_free(md);
    return 0; /* no match, or a limit was hit: counts as no match */
  }
  uint32_t have = pcre2_get_ovector_count(md);
  PCRE2_SIZE *v = pcre2_get_ovector_pointer(md);
  size_t k = have < npairs ? have : npairs;
  for (size_t i = 0; i < k; i++) {
    /* groups past |rc| are unset; PCRE2 marks them PCRE2_UNSET (SIZE_MAX) */
    ov[2 * i] = (int)i < rc ? v[2 * i] : SIZE_MAX;
    ov[2 * i + 1] = (int)i < rc ? v[2 * i + 1] : SIZE_MAX;
  }
  pcre2_match_data_free(md);
  return (int)k;
}

int labels__regex_named_group(const labels_matcher *m, const char *name, size_t len,
                              const size_t *ov, size_t npairs) {
  uint32_t count = 0, size = 0;
  PCRE2_SPTR table = NULL;
  if (!m->code) return -1;
  pcre2_pattern_info(m->code, PCRE2_INFO_NAMECOUNT, &count);
  pcre2_pattern_info(m->code, PCRE2_INFO_NAMEENTRYSIZE, &size);
  pcre2_pattern_info(m->code, PCRE2_INFO_NAMETABLE, &table);
  int best = -1;
  for (uint32_t i = 0; table && i < count; i++) {
    PCRE2_SPTR e = table + (size_t)i * size;
    int g = (e[0] << 8) | e[1];
    const char *nm = (const char *)e + 2;
    if (strlen(nm) != len || memcmp(nm, name, len) != 0) continue;
    if ((size_t)g >= npairs || ov[2 * g] == SIZE_MAX) continue;
    if (best < 0 || g < best) best = g; /* Go takes the first such group */
  }
  return best;
}
