/* relabel.c: Prometheus 2.42 relabel_configs — the YAML list parsed with
 * libyaml, validated as Prometheus's Config.Validate does, applied as its
 * relabel.Process does.
 *
 * Design notes:
 *  1. Each rule sees the labels the previous rule produced; a keep/drop
 *     (keepequal/dropequal) that does not pass ends the run with "dropped".
 *  2. The regex is a =~ matcher (matcher.c: RE2 syntax checks, anchored as
 *     ^(?:re)$, PCRE2 under match limits); replace and labelmap read its
 *     capture groups through labels__regex_submatch and expand the
 *     replacement as Go's regexp.Expand: $1 ${1} $name ${name} $$, the
 *     longest run of [A-Za-z0-9_] after $ is the name ("$1x" is the group
 *     named "1x", i.e. empty), a malformed $ stays literal.
 *  3. Go's regexp reads invalid UTF-8 bytes as U+FFFD; we match (and expand
 *     from) a copy with each such byte replaced by U+FFFD, so an expansion
 *     carries U+FFFD where Go would copy the raw byte.
 *  4. hashmod: md5 of the joined source values; the last 8 bytes of the sum
 *     as a big-endian uint64, modulo |modulus| (Prometheus's definition).
 *  5. lowercase/uppercase fold ASCII letters only (Go folds all of Unicode).
 *  6. Unknown keys are refused (Prometheus loads its config strictly). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "labels.h"

typedef enum {
  A_REPLACE = 0,
  A_KEEP,
  A_DROP,
  A_HASHMOD,
  A_LABELMAP,
  A_LABELDROP,
  A_LABELKEEP,
  A_LOWERCASE,
  A_UPPERCASE,
  A_KEEPEQUAL,
  A_DROPEQUAL,
} action;

static const char *const action_names[] = {"replace",   "keep",      "drop",      "hashmod",
                                           "labelmap",  "labeldrop", "labelkeep", "lowercase",
                                           "uppercase", "keepequal", "dropequal"};

#define DEFAULT_REGEX "(.*)"
#define DEFAULT_SEP ";"
#define DEFAULT_REPL "$1"
#define MAX_GROUPS 64 /* capture groups readable by $n; more count as unset */

typedef struct rule {
  char **src;
  size_t nsrc;
  bool has_src; /* source_labels given (even empty) */
  char *sep;
  labels_matcher *re;
  bool has_regex; /* regex given: Go compares the compiled pointer with the default's */
  uint64_t modulus;
  char *target;
  char *replacement;
  action act;
} rule;

struct labels_relabel {
  rule *r;
  size_t n;
};

static int fail(char *err, size_t errlen, const char *fmt, ...) ORR_PRINTF(3, 4);
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return ORR_EINVAL;
}

static void rule_free(rule *r) {
  for (size_t i = 0; i < r->nsrc; i++) free(r->src[i]);
  free(r->src);
  free(r->sep);
  labels_matcher_free(r->re);
  free(r->target);
  free(r->replacement);
}

void labels_relabel_free(labels_relabel *rl) {
  if (!rl) return;
  for (size_t i = 0; i < rl->n; i++) rule_free(&rl->r[i]);
  free(rl->r);
  free(rl);
}

size_t labels_relabel_len(const labels_relabel *rl) { return rl ? rl->n : 0; }

/* ---------------------------------------------------------------- parsing */

static bool is_null(const yaml_node_t *n) {
  if (!n) return true;
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const char *v = (const char *)n->data.scalar.value;
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* The string of a scalar field (null: Go's zero value ""), or NULL with an error. */
static const char *str_field(const yaml_node_t *n, const char *key, char *err, size_t errlen) {
  if (n->type != YAML_SCALAR_NODE) {
    fail(err, errlen, "relabel config: %s: expected a string, not a %s", key,
         n->type == YAML_MAPPING_NODE ? "map" : "list");
    return NULL;
  }
  return is_null(n) ? "" : (const char *)n->data.scalar.value;
}

/* |s| must not contain NUL: label strings are C strings here. */
static int set_str(char **dst, const yaml_node_t *n, const char *key, char *err, size_t errlen) {
  const char *v = str_field(n, key, err, errlen);
  if (!v) return ORR_EINVAL;
  if (strlen(v) != n->data.scalar.length)
    return fail(err, errlen, "relabel config: %s: contains a NUL byte", key);
  char *d = strdup(v);
  if (!d) return ORR_ENOMEM;
  free(*dst);
  *dst = d;
  return 0;
}

/* Go's relabelTarget: ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$ — i.e. a
 * non-empty run of letters, '_', digits after the first element, and $name /
 * ${name} references, starting with a letter, '_' or a reference. */
static bool w(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
static bool valid_target(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9')) return false;
  while (*s) {
    if (*s == '$') {
      s++;
      if (*s == '{') {
        s++;
        if (!w(*s)) return false;
        while (w(*s)) s++;
        if (*s != '}') return false;
        s++;
      } else {
        if (!w(*s)) return false;
        while (w(*s)) s++;
      }
    } else if (w(*s)) {
      s++;
    } else {
      return false;
    }
  }
  return true;
}

static bool valid_name(const char *s) { return labels_valid_name(s, strlen(s)); }

static int validate(const rule *c, char *err, size_t errlen) {
  const char *an = action_names[c->act];
  if (c->act == A_HASHMOD && c->modulus == 0)
    return fail(err, errlen, "relabel configuration for hashmod requires non-zero modulus");
  if ((c->act == A_REPLACE || c->act == A_HASHMOD || c->act == A_LOWERCASE || c->act == A_UPPERCASE ||
       c->act == A_KEEPEQUAL || c->act == A_DROPEQUAL) &&
      !*c->target)
    return fail(err, errlen, "relabel configuration for %s action requires 'target_label' value", an);
  if ((c->act == A_REPLACE || c->act == A_LOWERCASE || c->act == A_UPPERCASE || c->act == A_KEEPEQUAL ||
       c->act == A_DROPEQUAL) &&
      !valid_target(c->target))
    return fail(err, errlen, "\"%s\" is invalid 'target_label' for %s action", c->target, an);
  if ((c->act == A_LOWERCASE || c->act == A_UPPERCASE || c->act == A_KEEPEQUAL ||
       c->act == A_DROPEQUAL) &&
      !valid_name(c->target))
    return fail(err, errlen, "\"%s\" is invalid 'target_label' for %s action", c->target, an);
  if ((c->act == A_KEEPEQUAL || c->act == A_DROPEQUAL) && strcmp(c->replacement, DEFAULT_REPL))
    return fail(err, errlen, "'replacement' can not be set for %s action", an);
  if (c->act == A_LABELMAP && !valid_target(c->replacement))
    return fail(err, errlen, "\"%s\" is invalid 'replacement' for %s action", c->replacement, an);
  if (c->act == A_HASHMOD && !valid_name(c->target))
    return fail(err, errlen, "\"%s\" is invalid 'target_label' for %s action", c->target, an);
  if ((c->act == A_KEEPEQUAL || c->act == A_DROPEQUAL) &&
      (c->has_regex || c->modulus || strcmp(c->sep, DEFAULT_SEP) || strcmp(c->replacement, DEFAULT_REPL)))
    return fail(err, errlen,
                "%s action requires only 'source_labels' and `target_label`, and no other fields", an);
  if ((c->act == A_LABELDROP || c->act == A_LABELKEEP) &&
      (c->has_src || *c->target || c->modulus || strcmp(c->sep, DEFAULT_SEP) ||
       strcmp(c->replacement, DEFAULT_REPL)))
    return fail(err, errlen, "%s action requires only 'regex', and no other fields", an);
  return 0;
}

static int parse_rule(yaml_document_t *doc, yaml_node_t *map, rule *c, char *err, size_t errlen) {
  int rc = 0;
  unsigned seen = 0; /* fields given: a key twice is refused, as yaml.v2 strict does */
  const char *regex = DEFAULT_REGEX;
  c->act = A_REPLACE;
  if (!(c->sep = strdup(DEFAULT_SEP)) || !(c->target = strdup("")) ||
      !(c->replacement = strdup(DEFAULT_REPL)))
    return ORR_ENOMEM;
  if (is_null(map)) goto build; /* "- " : a rule of defaults */
  if (map->type != YAML_MAPPING_NODE)
    return fail(err, errlen, "relabel config: each rule must be a map of fields");
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key);
    yaml_node_t *v = yaml_document_get_node(doc, p->value);
    const char *key = k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
    if (!v) return fail(err, errlen, "relabel config: %s: no value", key);
    static const char *const fields[] = {"source_labels", "separator", "regex", "modulus",
                                         "target_label", "replacement", "action"};
    for (unsigned f = 0; f < sizeof fields / sizeof *fields; f++) {
      if (strcmp(key, fields[f])) continue;
      if (seen & (1u << f))
        return fail(err, errlen, "field %s already set in type relabel.plain", key);
      seen |= 1u << f;
    }
    if (!strcmp(key, "source_labels")) {
      c->has_src = true;
      if (is_null(v)) continue;
      if (v->type != YAML_SEQUENCE_NODE)
        return fail(err, errlen, "relabel config: source_labels: expected a list of label names");
      size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
      if (n) {
        c->src = calloc(n, sizeof(*c->src));
        if (!c->src) return ORR_ENOMEM;
      }
      for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *e = yaml_document_get_node(doc, *it);
        char *s = NULL;
        if (!e) return fail(err, errlen, "relabel config: source_labels: bad item");
        if ((rc = set_str(&s, e, "source_labels", err, errlen))) return rc;
        c->src[c->nsrc++] = s;
        if (!valid_name(s)) return fail(err, errlen, "\"%s\" is not a valid label name", s);
      }
    } else if (!strcmp(key, "separator")) {
      if ((rc = set_str(&c->sep, v, key, err, errlen))) return rc;
    } else if (!strcmp(key, "regex")) {
      if (is_null(v)) continue;
      const char *s = str_field(v, key, err, errlen);
      if (!s) return ORR_EINVAL;
      if (strlen(s) != v->data.scalar.length)
        return fail(err, errlen, "relabel config: regex: contains a NUL byte");
      regex = s;
      c->has_regex = true;
    } else if (!strcmp(key, "modulus")) {
      const char *s = str_field(v, key, err, errlen);
      if (!s) return ORR_EINVAL;
      char *end;
      errno = 0;
      unsigned long long m = strtoull(s, &end, 10);
      if (*s && (errno || *end || *s == '-' || *s == '+'))
        return fail(err, errlen, "relabel config: modulus: cannot unmarshal \"%s\" into uint64", s);
      c->modulus = *s ? (uint64_t)m : 0;
    } else if (!strcmp(key, "target_label")) {
      if ((rc = set_str(&c->target, v, key, err, errlen))) return rc;
    } else if (!strcmp(key, "replacement")) {
      if ((rc = set_str(&c->replacement, v, key, err, errlen))) return rc;
    } else if (!strcmp(key, "action")) {
      const char *s = str_field(v, key, err, errlen);
      if (!s) return ORR_EINVAL;
      size_t i = 0;
      for (; i < sizeof action_names / sizeof *action_names; i++)
        if (!strcasecmp(s, action_names[i])) break;
      if (i == sizeof action_names / sizeof *action_names) {
        if (!*s) return fail(err, errlen, "relabel action cannot be empty");
        return fail(err, errlen, "unknown relabel action \"%s\"", s);
      }
      c->act = (action)i;
    } else {
      return fail(err, errlen, "field %s not found in type relabel.plain", key);
    }
  }
build:;
  char rerr[256];
  c->re = labels_matcher_new(LABELS_MATCH_RE, "", regex, rerr, sizeof rerr);
  if (!c->re) {
    if (!strcmp(rerr, "out of memory")) return ORR_ENOMEM;
    return fail(err, errlen, "%s", rerr);
  }
  return 0;
}

int labels_relabel_parse(const char *yaml, size_t len, labels_relabel **out, char *err,
                         size_t errlen) {
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc = 0;
  *out = NULL;
  if (err && errlen) err[0] = 0;
  labels_relabel *rl = calloc(1, sizeof(*rl));
  if (!rl) return ORR_ENOMEM;
  if (!yaml_parser_initialize(&parser)) {
    free(rl);
    return ORR_ENOMEM;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
  if (!yaml_parser_load(&parser, &doc)) {
    rc = fail(err, errlen, "relabel config: invalid YAML: %s at line %zu column %zu",
              parser.problem ? parser.problem : "error", parser.problem_mark.line + 1,
              parser.problem_mark.column + 1);
    yaml_parser_delete(&parser);
    free(rl);
    return rc;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (is_null(root)) goto out; /* no rules */
  if (root->type != YAML_SEQUENCE_NODE) {
    rc = fail(err, errlen, "relabel config: expected a list of relabel rules");
    goto out;
  }
  size_t n = (size_t)(root->data.sequence.items.top - root->data.sequence.items.start);
  rl->r = calloc(n ? n : 1, sizeof(*rl->r));
  if (!rl->r) {
    rc = ORR_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    yaml_node_t *item = yaml_document_get_node(&doc, root->data.sequence.items.start[i]);
    rule *c = &rl->r[rl->n++];
    rc = parse_rule(&doc, item, c, err, errlen);
    if (rc == 0) rc = validate(c, err, errlen);
    if (rc) goto out;
  }
out:
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (rc) {
    if (rc == ORR_ENOMEM && err && errlen) snprintf(err, errlen, "out of memory");
    labels_relabel_free(rl);
    return rc;
  }
  *out = rl;
  return 0;
}

/* ---------------------------------------------------------------- applying */

/* |s| as Go's regexp sees it: invalid UTF-8 bytes become U+FFFD (note 3). */
static const char *as_utf8(orr_arena *a, const char *s, size_t n, size_t *outlen) {
  *outlen = n;
  if (labels__utf8_valid(s, n)) return s;
  char *o = orr_arena_alloc(a, n * 3 + 1);
  if (!o) return NULL;
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, k = 0;
  while (i < n) {
    size_t l = p[i] < 0x80 ? 1 : labels__utf8_len(p + i, n - i);
    if (l) {
      memcpy(o + k, p + i, l);
      k += l;
      i += l;
    } else {
      memcpy(o + k, "\xef\xbf\xbd", 3);
      k += 3;
      i++;
    }
  }
  o[k] = 0;
  *outlen = k;
  return o;
}

/* Appends the template |t| expanded with the groups of |src| (note 2). */
static void expand(orr_buf *out, const char *t, const labels_matcher *re, const char *src,
                   const size_t *ov, size_t npairs) {
  while (*t) {
    const char *d = strchr(t, '$');
    if (!d) {
      orr_buf_puts(out, t);
      return;
    }
    orr_buf_append(out, t, (size_t)(d - t));
    t = d + 1;
    if (*t == '$') {
      orr_buf_putc(out, '$');
      t++;
      continue;
    }
    bool brace = *t == '{';
    const char *nm = brace ? t + 1 : t;
    size_t l = 0;
    while (w(nm[l])) l++;
    if (l == 0 || (brace && nm[l] != '}')) {
      orr_buf_putc(out, '$'); /* malformed: the $ is literal text */
      continue;
    }
    t = nm + l + (brace ? 1 : 0);
    long num = 0;
    for (size_t i = 0; i < l; i++) {
      if (nm[i] < '0' || nm[i] > '9' || num >= 100000000) {
        num = -1;
        break;
      }
      num = num * 10 + (nm[i] - '0');
    }
    if (nm[0] == '0' && l > 1) num = -1; /* no leading zeros */
    long g = num >= 0 ? num : labels__regex_named_group(re, nm, l, ov, npairs);
    if (g >= 0 && (size_t)g < npairs && ov[2 * g] != SIZE_MAX)
      orr_buf_append(out, src + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
  }
}

/* Expands |tmpl| for a match of |re| on |val|; returns an arena string, NULL
 * on OOM. */
static char *expand_str(orr_arena *a, const char *tmpl, const labels_matcher *re, const char *val,
                        const size_t *ov, size_t npairs) {
  orr_buf b = {0};
  expand(&b, tmpl, re, val, ov, npairs);
  char *s = b.oom ? NULL : orr_arena_strndup(a, b.data ? b.data : "", b.len);
  orr_buf_free(&b);
  return s;
}

static bool re_match(const labels_matcher *re, orr_arena *a, const char *s, bool *oom) {
  size_t n;
  const char *u = as_utf8(a, s, strlen(s), &n);
  if (!u) {
    *oom = true;
    return false;
  }
  return labels_matcher_matches(re, u, n);
}

/* One rule on |in|; returns 1 kept (|*out| set), 0 dropped, ORR_ENOMEM. */
static int apply_rule(const rule *c, orr_arena *a, const labels_set *in, labels_set *out) {
  orr_buf vb = {0};
  for (size_t i = 0; i < c->nsrc; i++) {
    if (i) orr_buf_puts(&vb, c->sep);
    const char *v = labels_get(in, c->src[i]);
    if (v) orr_buf_puts(&vb, v);
  }
  char *val = vb.oom ? NULL : orr_arena_strndup(a, vb.data ? vb.data : "", vb.len);
  orr_buf_free(&vb);
  if (!val) return ORR_ENOMEM;
  labels_builder b;
  labels_builder_init(&b, a, in);
  bool oom = false;
  int kept = 1;
  switch (c->act) {
  case A_KEEP:
  case A_DROP: {
    bool m = re_match(c->re, a, val, &oom);
    if (m == (c->act == A_DROP)) kept = 0;
    break;
  }
  case A_KEEPEQUAL:
  case A_DROPEQUAL: {
    const char *t = labels_get(in, c->target);
    bool eq = !strcmp(t ? t : "", val);
    if (eq == (c->act == A_DROPEQUAL)) kept = 0;
    break;
  }
  case A_REPLACE: {
    size_t n, ov[2 * MAX_GROUPS];
    const char *u = as_utf8(a, val, strlen(val), &n);
    if (!u) return ORR_ENOMEM;
    int np = labels__regex_submatch(c->re, u, n, ov, MAX_GROUPS);
    if (np < 0) return np;
    if (np == 0) break; /* no match: no replacement */
    char *target = expand_str(a, c->target, c->re, u, ov, (size_t)np);
    char *res = expand_str(a, c->replacement, c->re, u, ov, (size_t)np);
    if (!target || !res) return ORR_ENOMEM;
    if (!valid_name(target) || !*res) {
      labels_builder_del(&b, c->target);
      break;
    }
    labels_builder_set(&b, target, res);
    break;
  }
  case A_LOWERCASE:
  case A_UPPERCASE:
    for (char *p = val; *p; p++) {
      if (c->act == A_LOWERCASE && *p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
      if (c->act == A_UPPERCASE && *p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    }
  {
    char *t = orr_arena_strdup(a, c->target);
    if (!t) return ORR_ENOMEM;
    labels_builder_set(&b, t, val);
    break;
  }
  case A_HASHMOD: {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(val, strlen(val), md, &mdlen, EVP_md5(), NULL) || mdlen != 16) return ORR_ENOMEM;
    uint64_t h = 0;
    for (int i = 8; i < 16; i++) h = (h << 8) | md[i];
    char *s = orr_arena_sprintf(a, "%llu", (unsigned long long)(h % c->modulus));
    char *t = orr_arena_strdup(a, c->target);
    if (!s || !t) return ORR_ENOMEM;
    labels_builder_set(&b, t, s);
    break;
  }
  case A_LABELMAP:
    for (size_t i = 0; i < in->n; i++) {
      const char *name = in->v[i].name;
      size_t n, ov[2 * MAX_GROUPS];
      const char *u = as_utf8(a, name, strlen(name), &n);
      if (!u) return ORR_ENOMEM;
      int np = labels__regex_submatch(c->re, u, n, ov, MAX_GROUPS);
      if (np < 0) return np;
      if (np == 0) continue;
      char *res = expand_str(a, c->replacement, c->re, u, ov, (size_t)np);
      if (!res) return ORR_ENOMEM;
      labels_builder_set(&b, res, in->v[i].value);
    }
    break;
  case A_LABELDROP:
  case A_LABELKEEP:
    for (size_t i = 0; i < in->n; i++) {
      bool m = re_match(c->re, a, in->v[i].name, &oom);
      if (m == (c->act == A_LABELDROP)) labels_builder_del(&b, in->v[i].name);
    }
    break;
  }
  if (oom) return ORR_ENOMEM;
  if (!kept) return 0;
  if (labels_builder_finish(&b, out)) return ORR_ENOMEM;
  return 1;
}

int labels_relabel_apply(const labels_relabel *rl, orr_arena *a, const labels_set *in,
                         labels_set *out) {
  labels_set cur = *in;
  for (size_t i = 0; rl && i < rl->n; i++) {
    labels_set next;
    int rc = apply_rule(&rl->r[i], a, &cur, &next);
    if (rc <= 0) {
      out->v = NULL;
      out->n = 0;
      return rc;
    }
    cur = next;
  }
  *out = cur;
  return 1;
}
