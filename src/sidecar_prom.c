/* sidecar_prom.c: reading Prometheus's own answers for the sidecar — the
 * external labels in its configuration (YAML inside JSON), its block
 * duration flags and its lowest timestamp. No I/O. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "sidecar.h"

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

int sidecar_parse_config(const char *body, size_t len, orr_arena *a, labels_set *out, char *err,
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

int sidecar_parse_flags(const char *body, size_t len, char *minb, char *maxb, size_t cap) {
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

int sidecar_parse_lowest_ts(const char *body, size_t len, int64_t *ms) {
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

int sidecar_url_escape(orr_buf *b, const char *s) {
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
