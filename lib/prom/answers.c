/* answers.c: reading Prometheus's own answers (sidecar, gateway) — the
 * external labels in its configuration (YAML inside JSON), its block
 * duration flags and its lowest timestamp. No I/O. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "prom.h"

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key) {
  if (!map || map->type != YAML_MAPPING_NODE) return NULL;
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key);
    if (k && k->type == YAML_SCALAR_NODE && strlen(key) == k->data.scalar.length &&
        memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
      return yaml_document_get_node(doc, p->value);
  }
  return NULL;
}

static int parse_yaml_labels(const char *yaml, size_t n, orr_arena *a, labels_set *out, char *err,
                             size_t errlen) {
  yaml_parser_t p;
  yaml_document_t doc;
  int rc = 0;
  out->v = NULL;
  out->n = 0;
  if (!yaml_parser_initialize(&p)) return ORR_ENOMEM;
  yaml_parser_set_input_string(&p, (const unsigned char *)yaml, n);
  if (!yaml_parser_load(&p, &doc)) {
    snprintf(err, errlen, "parse Prometheus config YAML: %s", p.problem ? p.problem : "error");
    yaml_parser_delete(&p);
    return ORR_EINVAL;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  yaml_node_t *el = map_get(&doc, map_get(&doc, root, "global"), "external_labels");
  if (el && el->type == YAML_MAPPING_NODE) {
    size_t cnt = (size_t)(el->data.mapping.pairs.top - el->data.mapping.pairs.start);
    out->v = orr_arena_calloc(a, cnt ? cnt : 1, sizeof(labels_label));
    if (!out->v) {
      rc = ORR_ENOMEM;
      goto out;
    }
    for (yaml_node_pair_t *pr = el->data.mapping.pairs.start; pr < el->data.mapping.pairs.top;
         pr++) {
      yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
      yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
      if (!k || !v || k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
        snprintf(err, errlen, "external_labels: not a map of strings");
        rc = ORR_EINVAL;
        goto out;
      }
      if (v->data.scalar.length == 0) continue; /* empty values are no labels */
      labels_label *l = &out->v[out->n++];
      l->name = orr_arena_strndup(a, (const char *)k->data.scalar.value, k->data.scalar.length);
      l->value = orr_arena_strndup(a, (const char *)v->data.scalar.value, v->data.scalar.length);
      if (!l->name || !l->value) {
        rc = ORR_ENOMEM;
        goto out;
      }
    }
    if (labels_sort(out)) {
      snprintf(err, errlen, "external_labels: duplicate label names");
      rc = ORR_EINVAL;
    }
  }
out:
  yaml_document_delete(&doc);
  yaml_parser_delete(&p);
  return rc;
}

int prom_parse_config(const char *body, size_t len, orr_arena *a, labels_set *out, char *err,
                         size_t errlen) {
  json_error_t je;
  json_t *j = json_loadb(body, len, 0, &je);
  if (!j) {
    snprintf(err, errlen, "parse /api/v1/status/config JSON: %s", je.text);
    return ORR_EINVAL;
  }
  const char *yaml = json_string_value(json_object_get(json_object_get(j, "data"), "yaml"));
  int rc;
  if (!yaml) {
    snprintf(err, errlen, "/api/v1/status/config: no data.yaml in the answer");
    rc = ORR_EINVAL;
  } else {
    rc = parse_yaml_labels(yaml, strlen(yaml), a, out, err, errlen);
  }
  json_decref(j);
  return rc;
}

int prom_parse_flags(const char *body, size_t len, char *minb, char *maxb, size_t cap) {
  json_t *j = json_loadb(body, len, 0, NULL);
  if (!j) return ORR_EINVAL;
  json_t *d = json_object_get(j, "data");
  const char *mn = json_string_value(json_object_get(d, "storage.tsdb.min-block-duration"));
  const char *mx = json_string_value(json_object_get(d, "storage.tsdb.max-block-duration"));
  int rc = ORR_EINVAL;
  if (mn && mx) {
    snprintf(minb, cap, "%s", mn);
    snprintf(maxb, cap, "%s", mx);
    rc = 0;
  }
  json_decref(j);
  return rc;
}

int prom_parse_lowest_ts(const char *body, size_t len, int64_t *ms) {
  static const char name[] = "prometheus_tsdb_lowest_timestamp ";
  const char *p = body, *end = body + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) nl = end;
    if ((size_t)(nl - p) > sizeof(name) - 1 && memcmp(p, name, sizeof(name) - 1) == 0) {
      char tmp[64];
      size_t n = (size_t)(nl - p) - (sizeof(name) - 1);
      if (n >= sizeof(tmp)) return ORR_ENOTFOUND;
      memcpy(tmp, p + sizeof(name) - 1, n);
      tmp[n] = 0;
      char *e;
      double v = strtod(tmp, &e);
      if (e == tmp || v != v || v > 9.2e18 || v < -9.2e18) return ORR_ENOTFOUND;
      *ms = (int64_t)v;
      return 0;
    }
    p = nl + 1;
  }
  return ORR_ENOTFOUND;
}

int prom_url_escape(orr_buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      orr_buf_putc(b, (char)c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      orr_buf_append(b, e, 3);
    }
  }
  return b->oom ? ORR_ENOMEM : 0;
}

/* ---------------------------------------------------------------- /api/v1/series, streaming */
enum { J_OUT = 0, J_STR, J_ESC, J_HEX };
#define J_MAX_STRING (1u << 20)
#define J_MAX_DEPTH 60

void prom_series_json_init(prom_series_json *p, prom_series_emit_fn emit, void *arg) {
  memset(p, 0, sizeof(*p));
  p->emit = emit;
  p->arg = arg;
}

void prom_series_json_free(prom_series_json *p) {
  orr_buf_free(&p->str);
  orr_buf_free(&p->lbuf);
  free(p->offs);
  p->offs = NULL;
}

static int j_fail(prom_series_json *p, int err) {
  p->err = err;
  return err;
}

static bool j_in_array(const prom_series_json *p) {
  return p->depth > 0 && (p->arrays >> (p->depth - 1)) & 1;
}

/* A whole string token arrived in p->str. */
static int j_string(prom_series_json *p) {
  if (p->str.oom) return ORR_ENOMEM;
  const char *s = p->str.data ? p->str.data : "";
  size_t n = p->str.len;
  bool key = !j_in_array(p) && p->expect_key;
  if (p->depth == 1 && key) p->key_is_data = n == 4 && memcmp(s, "data", 4) == 0;
  if (p->data_depth && p->depth == p->data_depth + 1 && !j_in_array(p)) {
    /* A label name or value inside a series object. */
    if (key != !p->have_name) return ORR_ECORRUPT;
    if (p->noffs == p->capoffs) {
      size_t nc = p->capoffs ? p->capoffs * 2 : 32;
      size_t *no = realloc(p->offs, nc * sizeof(*no));
      if (!no) return ORR_ENOMEM;
      p->offs = no;
      p->capoffs = nc;
    }
    p->offs[p->noffs++] = p->lbuf.len;
    orr_buf_append(&p->lbuf, s, n);
    orr_buf_putc(&p->lbuf, 0);
    if (p->lbuf.oom) return ORR_ENOMEM;
    p->have_name = key;
  }
  return 0;
}

static int j_open(prom_series_json *p, bool array) {
  if (p->depth >= J_MAX_DEPTH) return ORR_ELIMIT;
  if (p->depth == 0 && array) return ORR_ECORRUPT; /* the answer is an object */
  if (p->depth == 1 && array && p->key_is_data && !p->data_depth) p->data_depth = 2;
  if (p->data_depth && p->depth == p->data_depth && !array) {
    orr_buf_reset(&p->lbuf); /* a series begins */
    p->noffs = 0;
    p->have_name = 0;
  }
  if (array)
    p->arrays |= 1ull << p->depth;
  else
    p->arrays &= ~(1ull << p->depth);
  p->depth++;
  p->expect_key = !array;
  return 0;
}

static int j_close(prom_series_json *p, bool array) {
  if (p->depth == 0 || j_in_array(p) != array) return ORR_ECORRUPT;
  p->depth--;
  if (p->data_depth && p->depth == p->data_depth && !array) {
    if (p->have_name) return ORR_ECORRUPT;
    size_t nl = p->noffs / 2;
    labels_label stackv[64];
    labels_label *v = nl <= 64 ? stackv : calloc(nl, sizeof(*v));
    if (!v) return ORR_ENOMEM;
    for (size_t i = 0; i < nl; i++) {
      v[i].name = p->lbuf.data + p->offs[2 * i];
      v[i].value = p->lbuf.data + p->offs[2 * i + 1];
    }
    labels_set ls = {v, nl};
    int rc = p->emit(&ls, p->arg);
    if (v != stackv) free(v);
    if (rc) return rc;
  }
  if (p->data_depth && p->depth < p->data_depth) p->data_depth = -1; /* data closed */
  if (p->depth == 0) p->done = 1;
  p->expect_key = 0;
  return 0;
}

int prom_series_json_feed(prom_series_json *p, const char *data, size_t n) {
  if (p->err) return p->err;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)data[i];
    int rc = 0;
    switch (p->state) {
    case J_OUT:
      if (p->done && c != ' ' && c != '\n' && c != '\r' && c != '\t') return j_fail(p, ORR_ECORRUPT);
      switch (c) {
      case '"':
        orr_buf_reset(&p->str);
        p->state = J_STR;
        break;
      case '{': rc = j_open(p, false); break;
      case '[': rc = j_open(p, true); break;
      case '}': rc = j_close(p, false); break;
      case ']': rc = j_close(p, true); break;
      case ':': p->expect_key = 0; break;
      case ',': p->expect_key = !j_in_array(p); break;
      default:
        if (p->depth == 0 && c != ' ' && c != '\n' && c != '\r' && c != '\t') rc = ORR_ECORRUPT;
        break; /* numbers and literals are not used */
      }
      break;
    case J_STR:
      orr_json_unescape_plain(&p->esc, &p->str, c);
      if (c == '"') {
        p->state = J_OUT;
        rc = j_string(p);
      } else if (c == '\\') {
        p->state = J_ESC;
      } else if (p->str.len >= J_MAX_STRING) {
        rc = ORR_ELIMIT;
      } else {
        orr_buf_putc(&p->str, (char)c);
      }
      break;
    case J_ESC:
      rc = orr_json_unescape_esc(&p->esc, &p->str, c);
      if (rc >= 0) { /* 1: \u, its digits follow */
        p->state = rc ? J_HEX : J_STR;
        rc = 0;
      }
      break;
    case J_HEX:
      rc = orr_json_unescape_hex(&p->esc, &p->str, c);
      if (rc >= 0) { /* 1: more digits follow */
        p->state = rc ? J_HEX : J_STR;
        rc = 0;
      }
      break;
    }
    if (rc) return j_fail(p, rc);
  }
  return 0;
}

int prom_series_json_end(prom_series_json *p) {
  if (p->err) return p->err;
  if (!p->done || p->state != J_OUT || p->data_depth == 0) return j_fail(p, ORR_ECORRUPT);
  return 0;
}
