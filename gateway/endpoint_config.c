/* endpoint_config.c: the endpoint config file of --endpoint.sd-config-file /
 * --endpoint.sd-config (Thanos query's flags): a list of endpoint addresses,
 * each with its own TLS settings, so one gateway reaches endpoints with
 * different CAs and some in plaintext:
 *
 *   endpoints:
 *     - address: sidecar-eu.example:10901
 *       tls_config: {ca_file: eu-ca.pem, cert_file: gw.pem, key_file: gw-key.pem,
 *                    server_name: sidecar-eu, insecure_skip_verify: false}
 *     - address: 127.0.0.1:10911          # no tls_config: plaintext
 *
 * tls_config takes Prometheus's tls_config keys (min_version too). Unknown
 * keys are refused, as Go's strict YAML decoding in Thanos does; `strict`
 * is accepted (every endpoint here is kept while unhealthy anyway) and
 * `group: true` is refused (not supported). */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "gateway.h"

typedef struct ectx {
  yaml_document_t *doc;
  orr_arena *a;
  char *err;
  size_t errlen;
} ectx;

#define EFAIL(x, ...)                                                       \
  do {                                                                      \
    if ((x)->errlen) {                                                      \
      int n__ = snprintf((x)->err, (x)->errlen, "endpoint config: ");       \
      if (n__ > 0 && (size_t)n__ < (x)->errlen)                             \
        snprintf((x)->err + n__, (x)->errlen - (size_t)n__, __VA_ARGS__);   \
    }                                                                       \
    return ORR_EINVAL;                                                      \
  } while (0)

static const char *key_of(yaml_node_t *k) {
  return k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
}

/* A scalar copied into the arena; NULL with the error set. */
static int scalar(ectx *x, yaml_node_t *n, const char *where, const char **out) {
  if (!n || n->type != YAML_SCALAR_NODE) EFAIL(x, "%s: want a string", where);
  const char *v = (const char *)n->data.scalar.value;
  size_t len = n->data.scalar.length;
  if (memchr(v, '\0', len)) EFAIL(x, "%s: NUL byte in value", where);
  *out = orr_arena_strndup(x->a, v, len);
  return *out ? 0 : ORR_ENOMEM;
}

static int boolean(ectx *x, yaml_node_t *n, const char *where, bool *out) {
  const char *v;
  int rc = scalar(x, n, where, &v);
  if (rc) return rc;
  if (!strcmp(v, "true")) *out = true;
  else if (!strcmp(v, "false")) *out = false;
  else EFAIL(x, "%s: want true or false, got %.40s", where, v);
  return 0;
}

static int parse_tls(ectx *x, yaml_node_t *m, net_tls_client_opts *o) {
  if (m->type == YAML_SCALAR_NODE && m->data.scalar.length == 0) return 0; /* tls_config: */
  if (m->type != YAML_MAPPING_NODE) EFAIL(x, "tls_config: want a mapping");
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
    const char *name = key_of(k);
    int rc;
    if (!strcmp(name, "ca_file")) rc = scalar(x, v, "tls_config.ca_file", &o->ca_file);
    else if (!strcmp(name, "cert_file")) rc = scalar(x, v, "tls_config.cert_file", &o->cert_file);
    else if (!strcmp(name, "key_file")) rc = scalar(x, v, "tls_config.key_file", &o->key_file);
    else if (!strcmp(name, "server_name"))
      rc = scalar(x, v, "tls_config.server_name", &o->server_name);
    else if (!strcmp(name, "min_version"))
      rc = scalar(x, v, "tls_config.min_version", &o->min_version);
    else if (!strcmp(name, "insecure_skip_verify"))
      rc = boolean(x, v, "tls_config.insecure_skip_verify", &o->insecure_skip_verify);
    else EFAIL(x, "tls_config: unknown field %.60s", name);
    if (rc) return rc;
  }
  if ((o->cert_file && *o->cert_file) != (o->key_file && *o->key_file))
    EFAIL(x, "tls_config: cert_file and key_file go together");
  return 0;
}

static int parse_endpoint(ectx *x, yaml_node_t *m, gw_endpoint_cfg *e) {
  if (m->type != YAML_MAPPING_NODE) EFAIL(x, "endpoints: each entry is a mapping");
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
    const char *name = key_of(k);
    int rc = 0;
    bool b;
    if (!strcmp(name, "address")) {
      rc = scalar(x, v, "address", &e->address);
    } else if (!strcmp(name, "tls_config")) {
      if (!v) EFAIL(x, "tls_config: want a mapping");
      e->has_tls = true;
      rc = parse_tls(x, v, &e->tls);
    } else if (!strcmp(name, "strict")) {
      rc = boolean(x, v, "strict", &b);
    } else if (!strcmp(name, "group")) {
      rc = boolean(x, v, "group", &b);
      if (rc == 0 && b) EFAIL(x, "group: endpoint groups are not supported");
    } else {
      EFAIL(x, "unknown field %.60s", name);
    }
    if (rc) return rc;
  }
  if (!e->address || !*e->address) EFAIL(x, "an endpoint has no address");
  const char *colon = strrchr(e->address, ':');
  if (!colon || colon == e->address || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
      atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535 || strlen(colon + 1) > 5)
    EFAIL(x, "address %.80s: want host:port", e->address);
  return 0;
}

int gw_endpoint_config_parse(const char *yaml, size_t len, orr_arena *a, gw_endpoint_cfg **out,
                             size_t *n, char *err, size_t errlen) {
  *out = NULL;
  *n = 0;
  if (errlen) err[0] = '\0';
  yaml_parser_t parser;
  yaml_document_t doc;
  ectx x = {&doc, a, err, errlen};
  if (!yaml_parser_initialize(&parser)) return ORR_ENOMEM;
  yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
  if (!yaml_parser_load(&parser, &doc)) {
    if (errlen)
      snprintf(err, errlen, "endpoint config: YAML error at line %zu: %s",
               parser.problem_mark.line + 1, parser.problem ? parser.problem : "malformed");
    yaml_parser_delete(&parser);
    return ORR_EINVAL;
  }
  int rc = 0;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  yaml_node_t *list = NULL;
  if (!root) goto done; /* empty: no endpoints */
  if (root->type != YAML_MAPPING_NODE) {
    if (errlen) snprintf(err, errlen, "endpoint config: want a mapping with endpoints");
    rc = ORR_EINVAL;
    goto done;
  }
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
       p++) {
    const char *name = key_of(yaml_document_get_node(&doc, p->key));
    if (strcmp(name, "endpoints") != 0) {
      if (errlen) snprintf(err, errlen, "endpoint config: unknown field %.60s", name);
      rc = ORR_EINVAL;
      goto done;
    }
    list = yaml_document_get_node(&doc, p->value);
  }
  if (!list || (list->type == YAML_SCALAR_NODE && list->data.scalar.length == 0)) goto done;
  if (list->type != YAML_SEQUENCE_NODE) {
    if (errlen) snprintf(err, errlen, "endpoint config: endpoints: want a list");
    rc = ORR_EINVAL;
    goto done;
  }
  size_t cnt = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
  gw_endpoint_cfg *v = orr_arena_calloc(a, cnt + 1, sizeof(*v));
  if (!v) {
    rc = ORR_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < cnt && rc == 0; i++) {
    yaml_node_t *item = yaml_document_get_node(&doc, list->data.sequence.items.start[i]);
    if (!item) {
      if (errlen) snprintf(err, errlen, "endpoint config: endpoints: bad entry");
      rc = ORR_EINVAL;
      break;
    }
    rc = parse_endpoint(&x, item, &v[i]);
    for (size_t j = 0; rc == 0 && j < i; j++)
      if (!strcmp(v[j].address, v[i].address)) {
        if (errlen)
          snprintf(err, errlen, "endpoint config: address %.80s listed twice", v[i].address);
        rc = ORR_EINVAL;
      }
  }
  if (rc == 0) {
    *out = v;
    *n = cnt;
  }
done:
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return rc;
}
