/* yaml_walk.c: the small libyaml helpers the net module's strict YAML
 * parsers share (web config, HTTP client config): load a document, walk a
 * mapping, read scalars as Go's yaml.v2 would, and write errors that name
 * the key and its line — never the value, which may be a secret. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "net_int.h"

int net__yaml_err(net__yaml *y, const char *fmt, ...) {
  if (y->err && y->errlen && !y->err[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(y->err, y->errlen, fmt, ap);
    va_end(ap);
  }
  return ORR_EINVAL;
}

int net__yaml_load(net__yaml *y, const char *text, size_t len) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return ORR_ENOMEM;
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  int ok = yaml_parser_load(&p, &y->doc);
  if (!ok) {
    net__yaml_err(y, "%s: yaml: line %zu: %s", y->what, p.problem_mark.line + 1,
                  p.problem ? p.problem : "syntax error");
    yaml_parser_delete(&p);
    return ORR_EINVAL;
  }
  yaml_parser_delete(&p);
  y->loaded = true;
  return 0;
}

void net__yaml_free(net__yaml *y) {
  if (y->loaded) yaml_document_delete(&y->doc);
  y->loaded = false;
}

yaml_node_t *net__yaml_root(net__yaml *y) { return yaml_document_get_root_node(&y->doc); }

yaml_node_t *net__yaml_node(net__yaml *y, int id) { return yaml_document_get_node(&y->doc, id); }

bool net__yaml_is_null(const yaml_node_t *n) {
  if (!n) return true;
  if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  const char *v = (const char *)n->data.scalar.value;
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

size_t net__yaml_line(const yaml_node_t *n) { return n ? n->start_mark.line + 1 : 0; }

const char *net__yaml_str(net__yaml *y, yaml_node_t *n, const char *where, const char *key) {
  if (net__yaml_is_null(n)) return "";
  if (n->type != YAML_SCALAR_NODE) {
    net__yaml_err(y, "%s: line %zu: %s%s%s: expected a string, not a %s", y->what,
                  net__yaml_line(n), where, *where ? "." : "", key,
                  n->type == YAML_MAPPING_NODE ? "map" : "list");
    return NULL;
  }
  if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
    net__yaml_err(y, "%s: line %zu: %s%s%s: a NUL byte in the value", y->what, net__yaml_line(n),
                  where, *where ? "." : "", key);
    return NULL;
  }
  return (const char *)n->data.scalar.value;
}

int net__yaml_bool(net__yaml *y, yaml_node_t *n, const char *where, const char *key, bool *out) {
  /* the words yaml.v2 takes as booleans */
  static const char *const t[] = {"true", "yes", "on", "y"}, *const f[] = {"false", "no", "off", "n"};
  const char *v = n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
  if (net__yaml_is_null(n)) return *out = false, 0;
  for (size_t i = 0; v && i < sizeof t / sizeof *t; i++)
    if (!strcasecmp(v, t[i])) return *out = true, 0;
  for (size_t i = 0; v && i < sizeof f / sizeof *f; i++)
    if (!strcasecmp(v, f[i])) return *out = false, 0;
  return net__yaml_err(y, "%s: line %zu: %s.%s: expected a boolean (true or false)", y->what,
                       net__yaml_line(n), where, key);
}

int net__yaml_unknown(net__yaml *y, yaml_node_t *k, const char *type) {
  const char *name = k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
  return net__yaml_err(y, "%s: line %zu: field %.100s not found in %s", y->what,
                       net__yaml_line(k), name, type);
}

int net__yaml_want_map(net__yaml *y, yaml_node_t *n, const char *where) {
  if (n && n->type == YAML_MAPPING_NODE) return 0;
  return net__yaml_err(y, "%s: line %zu: %s: expected a map", y->what, net__yaml_line(n),
                       *where ? where : "top level");
}

const char *net__yaml_key(yaml_node_t *k) {
  return k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
}

void net__yaml_put_char(orr_buf *b, char ch) {
  unsigned char u = (unsigned char)ch;
  if (ch == '"' || ch == '\\') {
    orr_buf_putc(b, '\\');
    orr_buf_putc(b, ch);
  } else if (u < 0x20 || u == 0x7f) {
    orr_buf_printf(b, "\\x%02x", u);
  } else {
    orr_buf_putc(b, ch);
  }
}

int net__read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                   size_t errlen) {
  *out = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (err && errlen) snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return ORR_EIO;
  }
  orr_buf b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b.len + n > max) {
      fclose(f);
      orr_buf_free(&b);
      if (err && errlen) snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
      return ORR_ELIMIT;
    }
    orr_buf_append(&b, chunk, n);
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    orr_buf_free(&b);
    if (err && errlen) snprintf(err, errlen, "cannot read %s", path);
    return ORR_EIO;
  }
  orr_buf_putc(&b, 0);
  if (b.oom) {
    orr_buf_free(&b);
    return ORR_ENOMEM;
  }
  *len = b.len - 1;
  *out = b.data;
  return 0;
}
