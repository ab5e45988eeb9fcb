/* config.c: Thanos objstore YAML (type: FILESYSTEM|S3, config: {...},
 * prefix:) parsed with libyaml into an objstore_config. Unknown keys are
 * refused by name, defaults follow Thanos (and minio-go for S3). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "objstore_int.h"

#define CFG_ERR(...) objstore__err(ORR_EINVAL, err, errlen, "objstore config: " __VA_ARGS__)

typedef struct cfg_ctx {
  yaml_document_t *doc;
  objstore_config *c;
  const char *type; /* for messages: "S3" */
  char *err;
  size_t errlen;
} cfg_ctx;

static int set_str(char **dst, const char *s) {
  char *d = strdup(s);
  if (!d) return ORR_ENOMEM;
  free(*dst);
  *dst = d;
  return 0;
}

/* The scalar value of |n| or NULL (with an error naming |where|.|key|). */
static const char *scalar(cfg_ctx *x, yaml_node_t *n, const char *where, const char *key) {
  char *err = x->err;
  size_t errlen = x->errlen;
  if (!n || n->type != YAML_SCALAR_NODE) {
    CFG_ERR("%s%s%s: expected a value, not a %s", where, *where ? "." : "", key,
            n && n->type == YAML_MAPPING_NODE ? "map" : "list");
    return NULL;
  }
  /* a plain null ("~", "null", empty) is Go's zero value */
  if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
    const char *v = (const char *)n->data.scalar.value;
    if (!strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"))
      return "";
  }
  return (const char *)n->data.scalar.value;
}

/* Parses a YAML boolean into |*out|; 0 or ORR_EINVAL (message in x->err).
 * |*out| is written on every path (0 on error), so a caller's flag is never
 * left unset. */
static int parse_bool(cfg_ctx *x, const char *v, const char *where, const char *key, int *out) {
  *out = 0;
  static const char *const t[] = {"true", "yes", "on", "y"}, *const f[] = {"false", "no", "off", "n", ""};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (!strcasecmp(v, t[i])) return *out = 1, 0;
  for (size_t i = 0; i < sizeof f / sizeof *f; i++)
    if (!strcasecmp(v, f[i])) return *out = 0, 0;
  char *err = x->err;
  size_t errlen = x->errlen;
  return CFG_ERR("%s.%s: cannot parse \"%s\" as a boolean (%s)", where, key, v, x->type);
}

/* Parses a non-negative integer ("" is 0) into |*out|; 0 or ORR_EINVAL
 * (message in x->err). |*out| is written on every path (0 on error). */
static int parse_int(cfg_ctx *x, const char *v, const char *where, const char *key, int64_t *out) {
  char *end;
  *out = 0;
  if (*v == '\0') return 0;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || *end || n < 0) {
    char *err = x->err;
    size_t errlen = x->errlen;
    return CFG_ERR("%s.%s: cannot parse \"%s\" as a non-negative integer (%s)", where, key, v,
                   x->type);
  }
  *out = n;
  return 0;
}

static int parse_dur(cfg_ctx *x, const char *v, const char *where, const char *key, int64_t *out) {
  if (*v == '\0') return 0; /* keep the default */
  if (orr_parse_duration(v, strlen(v), out) != 0) {
    char *err = x->err;
    size_t errlen = x->errlen;
    return CFG_ERR("%s.%s: not a valid duration \"%s\" (%s)", where, key, v, x->type);
  }
  return 0;
}

static int unknown(cfg_ctx *x, const char *where, const char *key) {
  char *err = x->err;
  size_t errlen = x->errlen;
  return CFG_ERR("unknown key \"%s\" in %s (%s)", key, where, x->type);
}

static int not_map(cfg_ctx *x, const char *where) {
  char *err = x->err;
  size_t errlen = x->errlen;
  return CFG_ERR("%s: expected a map (%s)", where, x->type);
}

#define FOR_PAIRS(x, map, k, v)                                                          \
  for (yaml_node_pair_t *pair__ = (map)->data.mapping.pairs.start;                       \
       pair__ < (map)->data.mapping.pairs.top; pair__++)                                 \
    for (yaml_node_t *k = yaml_document_get_node((x)->doc, pair__->key),                 \
                     *v = yaml_document_get_node((x)->doc, pair__->value), *once__ = k;  \
         once__; once__ = NULL)

static const char *key_name(yaml_node_t *k) {
  return k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
}

static int parse_tls(cfg_ctx *x, yaml_node_t *map) {
  const char *where = "config.http_config.tls_config";
  objstore_config *c = x->c;
  int rc;
  if (map->type == YAML_SCALAR_NODE && !*scalar(x, map, "", "")) return 0;
  if (map->type != YAML_MAPPING_NODE) return not_map(x, where);
  FOR_PAIRS(x, map, k, v) {
    const char *key = key_name(k), *val = scalar(x, v, where, key);
    if (!val) return ORR_EINVAL;
    if (!strcmp(key, "ca_file")) rc = set_str(&c->ca_file, val);
    else if (!strcmp(key, "cert_file")) rc = set_str(&c->cert_file, val);
    else if (!strcmp(key, "key_file")) rc = set_str(&c->key_file, val);
    else if (!strcmp(key, "server_name")) rc = set_str(&c->server_name, val);
    else if (!strcmp(key, "insecure_skip_verify"))
      rc = parse_bool(x, val, where, key, &c->insecure_skip_verify);
    else return unknown(x, where, key);
    if (rc) return rc;
  }
  return 0;
}

static int parse_http(cfg_ctx *x, yaml_node_t *map) {
  const char *where = "config.http_config";
  objstore_config *c = x->c;
  int64_t ignored;
  int rc, b;
  if (map->type == YAML_SCALAR_NODE && !*scalar(x, map, "", "")) return 0;
  if (map->type != YAML_MAPPING_NODE) return not_map(x, where);
  FOR_PAIRS(x, map, k, v) {
    const char *key = key_name(k);
    if (!strcmp(key, "tls_config")) {
      if ((rc = parse_tls(x, v))) return rc;
      continue;
    }
    const char *val = scalar(x, v, where, key);
    if (!val) return ORR_EINVAL;
    if (!strcmp(key, "idle_conn_timeout"))
      rc = parse_dur(x, val, where, key, &c->idle_conn_timeout_ms);
    else if (!strcmp(key, "response_header_timeout"))
      rc = parse_dur(x, val, where, key, &c->response_header_timeout_ms);
    else if (!strcmp(key, "tls_handshake_timeout"))
      rc = parse_dur(x, val, where, key, &c->tls_handshake_timeout_ms);
    else if (!strcmp(key, "expect_continue_timeout"))
      rc = parse_dur(x, val, where, key, &ignored); /* we never send Expect */
    else if (!strcmp(key, "insecure_skip_verify"))
      rc = parse_bool(x, val, where, key, &c->insecure_skip_verify);
    else if (!strcmp(key, "disable_compression"))
      rc = parse_bool(x, val, where, key, &b);
    else if (!strcmp(key, "max_idle_conns") || !strcmp(key, "max_idle_conns_per_host"))
      rc = parse_int(x, val, where, key, &ignored); /* curl's connection cache decides */
    else if (!strcmp(key, "max_conns_per_host")) {
      if (!(rc = parse_int(x, val, where, key, &ignored)))
        c->max_conns_per_host = ignored > 10000 ? 10000 : (int)ignored;
    }
    else return unknown(x, where, key);
    if (rc) return rc;
  }
  return 0;
}

/* minio-go's rule: virtual-hosted style for Amazon S3, Google Cloud Storage
 * and Aliyun OSS endpoints, path style for everything else; never for a
 * dotted bucket over https (the wildcard certificate would not match). */
static int auto_virtual_host(const objstore_config *c) {
  char host[256];
  snprintf(host, sizeof host, "%s", c->endpoint);
  char *colon = strchr(host, ':');
  if (colon) *colon = '\0';
  size_t n = strlen(host);
  int aws = n > 14 && !strcmp(host + n - 14, ".amazonaws.com") &&
            (!strncmp(host, "s3.", 3) || !strncmp(host, "s3-", 3));
  int other = !strcmp(host, "storage.googleapis.com") ||
              (n > 13 && !strcmp(host + n - 13, ".aliyuncs.com"));
  if (!aws && !other) return 0;
  if (!c->insecure && strchr(c->bucket, '.')) return 0;
  return 1;
}

/* The region of an AWS endpoint "s3.<region>.amazonaws.com" or
 * "s3-<region>.amazonaws.com", else us-east-1 (minio-go's default). */
static int default_region(objstore_config *c) {
  const char *h = c->endpoint;
  const char *suffix = strstr(h, ".amazonaws.com");
  if (suffix && (!strncmp(h, "s3.", 3) || !strncmp(h, "s3-", 3)) && suffix > h + 3) {
    const char *r = h + 3;
    if (!strncmp(r, "dualstack.", 10)) r += 10;
    if (suffix > r && !memchr(r, '.', (size_t)(suffix - r))) {
      char region[64];
      snprintf(region, sizeof region, "%.*s", (int)(suffix - r), r);
      return set_str(&c->region, region);
    }
  }
  return set_str(&c->region, "us-east-1");
}

static int parse_s3(cfg_ctx *x, yaml_node_t *map) {
  const char *where = "config";
  objstore_config *c = x->c;
  char *err = x->err;
  size_t errlen = x->errlen;
  const char *lookup = "auto";
  char lookup_buf[32] = "auto";
  int rc, b;
  int64_t i64;
  if (map) {
    FOR_PAIRS(x, map, k, v) {
      const char *key = key_name(k);
      if (!strcmp(key, "http_config")) {
        if ((rc = parse_http(x, v))) return rc;
        continue;
      }
      if (!strcmp(key, "trace") || !strcmp(key, "sse_config")) {
        if (v->type == YAML_MAPPING_NODE && v->data.mapping.pairs.start == v->data.mapping.pairs.top)
          continue;
        if (v->type == YAML_SCALAR_NODE && !*(const char *)v->data.scalar.value) continue;
        if (!strcmp(key, "trace")) continue; /* tracing of requests: ignored */
        return CFG_ERR("\"%s\" is not supported (S3)", key);
      }
      if (!strcmp(key, "put_user_metadata")) continue; /* ignored */
      const char *val = scalar(x, v, where, key);
      if (!val) return ORR_EINVAL;
      rc = 0;
      if (!strcmp(key, "bucket")) rc = set_str(&c->bucket, val);
      else if (!strcmp(key, "endpoint")) rc = set_str(&c->endpoint, val);
      else if (!strcmp(key, "region")) rc = set_str(&c->region, val);
      else if (!strcmp(key, "access_key")) rc = set_str(&c->access_key, val);
      else if (!strcmp(key, "secret_key")) rc = set_str(&c->secret_key, val);
      else if (!strcmp(key, "insecure")) rc = parse_bool(x, val, where, key, &c->insecure);
      else if (!strcmp(key, "bucket_lookup_type")) {
        snprintf(lookup_buf, sizeof lookup_buf, "%s", val);
        lookup = lookup_buf;
      } else if (!strcmp(key, "part_size")) {
        if (!(rc = parse_int(x, val, where, key, &i64)) && i64) c->part_size = i64;
      } else if (!strcmp(key, "max_retries")) {
        if (!(rc = parse_int(x, val, where, key, &i64)) && i64) c->max_retries = (int)i64;
      } else if (!strcmp(key, "list_objects_version")) {
        if (!*val || !strcmp(val, "v2")) c->list_version = 2;
        else if (!strcmp(val, "v1")) c->list_version = 1;
        else return CFG_ERR("config.list_objects_version: \"%s\" is not v1 or v2 (S3)", val);
      } else if (!strcmp(key, "signature_version2") || !strcmp(key, "aws_sdk_auth")) {
        if (!(rc = parse_bool(x, val, where, key, &b)) && b)
          return CFG_ERR("\"%s: true\" is not supported (S3)", key);
      } else if (!strcmp(key, "send_content_md5") || !strcmp(key, "disable_multipart")) {
        rc = parse_bool(x, val, where, key, &b);
        if (!rc && b && !strcmp(key, "disable_multipart")) c->part_size = INT64_MAX;
      } else if (!strcmp(key, "session_token") || !strcmp(key, "sts_endpoint")) {
        if (*val) return CFG_ERR("\"%s\" is not supported (S3)", key);
      } else {
        return unknown(x, where, key);
      }
      if (rc) return rc;
    }
  }
  if (!c->bucket || !*c->bucket) return CFG_ERR("missing \"bucket\" in config (S3)");
  if (!c->endpoint || !*c->endpoint) return CFG_ERR("missing \"endpoint\" in config (S3)");
  if (strstr(c->endpoint, "://") || strchr(c->endpoint, '/'))
    return CFG_ERR("config.endpoint \"%s\" must be host[:port], without a scheme or path (S3)",
                   c->endpoint);
  int has_ak = c->access_key && *c->access_key, has_sk = c->secret_key && *c->secret_key;
  if (has_ak != has_sk)
    return CFG_ERR("\"%s\" is set but \"%s\" is missing in config (S3)",
                   has_ak ? "access_key" : "secret_key", has_ak ? "secret_key" : "access_key");
  if (c->part_size < 5 * 1024 * 1024)
    return CFG_ERR("config.part_size %lld is below the S3 minimum of 5 MiB (S3)",
                   (long long)c->part_size);
  if (!strcmp(lookup, "auto") || !*lookup) c->virtual_host = auto_virtual_host(c);
  else if (!strcmp(lookup, "virtual-hosted")) c->virtual_host = 1;
  else if (!strcmp(lookup, "path")) c->virtual_host = 0;
  else
    return CFG_ERR("config.bucket_lookup_type \"%s\" is not auto, virtual-hosted or path (S3)",
                   lookup);
  if (!c->region || !*c->region) return default_region(c);
  return 0;
}

static int parse_fs(cfg_ctx *x, yaml_node_t *map) {
  objstore_config *c = x->c;
  char *err = x->err;
  size_t errlen = x->errlen;
  if (map) {
    FOR_PAIRS(x, map, k, v) {
      const char *key = key_name(k);
      if (strcmp(key, "directory") != 0) return unknown(x, "config", key);
      const char *val = scalar(x, v, "config", key);
      if (!val) return ORR_EINVAL;
      if (set_str(&c->directory, val)) return ORR_ENOMEM;
    }
  }
  if (!c->directory || !*c->directory) return CFG_ERR("missing \"directory\" in config (FILESYSTEM)");
  return 0;
}

/* Normalises a prefix: no leading/trailing "/", no empty, "." or ".." segments. */
static int set_prefix(objstore_config *c, const char *p, char *err, size_t errlen) {
  while (*p == '/') p++;
  size_t n = strlen(p);
  while (n > 0 && p[n - 1] == '/') n--;
  char *s = strndup(p, n);
  if (!s) return ORR_ENOMEM;
  free(c->prefix);
  c->prefix = s;
  if (n && objstore_key_valid(s) != 0) return CFG_ERR("prefix \"%s\" is not a valid key prefix", s);
  return 0;
}

int objstore_config_parse(const char *yaml, size_t len, objstore_config *out, char *err,
                          size_t errlen) {
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc = 0;
  memset(out, 0, sizeof *out);
  out->part_size = 64 * 1024 * 1024;
  out->list_version = 2;
  out->idle_conn_timeout_ms = 90000;
  out->response_header_timeout_ms = 120000;
  out->tls_handshake_timeout_ms = 10000;
  out->max_retries = 10;
  if (!yaml_parser_initialize(&parser)) return ORR_ENOMEM;
  yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
  if (!yaml_parser_load(&parser, &doc)) {
    rc = CFG_ERR("invalid YAML: %s at line %zu column %zu", parser.problem ? parser.problem : "error",
                 parser.problem_mark.line + 1, parser.problem_mark.column + 1);
    yaml_parser_delete(&parser);
    return rc;
  }
  cfg_ctx x = {&doc, out, "?", err, errlen};
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  yaml_node_t *type = NULL, *config = NULL, *prefix = NULL;
  char tbuf[32];
  if (!root || (root->type == YAML_SCALAR_NODE && !root->data.scalar.length)) {
    rc = CFG_ERR("empty configuration");
    goto out;
  }
  if (root->type != YAML_MAPPING_NODE) {
    rc = CFG_ERR("expected a map with \"type\" and \"config\"");
    goto out;
  }
  FOR_PAIRS(&x, root, k, v) {
    const char *key = key_name(k);
    if (!strcmp(key, "type")) type = v;
    else if (!strcmp(key, "config")) config = v;
    else if (!strcmp(key, "prefix")) prefix = v;
    else {
      rc = CFG_ERR("unknown key \"%s\" at the top level", key);
      goto out;
    }
  }
  const char *t = type ? scalar(&x, type, "", "type") : "";
  if (!t) {
    rc = ORR_EINVAL;
    goto out;
  }
  if (!*t) {
    rc = CFG_ERR("missing \"type\" (FILESYSTEM, S3)");
    goto out;
  }
  snprintf(tbuf, sizeof tbuf, "%s", t);
  for (char *p = tbuf; *p; p++) *p = (char)toupper((unsigned char)*p);
  if (config && config->type == YAML_SCALAR_NODE && !config->data.scalar.length) config = NULL;
  if (config && config->type != YAML_MAPPING_NODE) {
    x.type = tbuf;
    rc = not_map(&x, "config");
    goto out;
  }
  if (!strcmp(tbuf, "FILESYSTEM")) {
    out->type = OBJSTORE_FILESYSTEM;
    x.type = "FILESYSTEM";
    rc = parse_fs(&x, config);
  } else if (!strcmp(tbuf, "S3")) {
    out->type = OBJSTORE_S3;
    x.type = "S3";
    rc = parse_s3(&x, config);
  } else {
    rc = CFG_ERR("type \"%s\" is not supported (FILESYSTEM, S3)", t);
  }
  if (rc == 0) {
    const char *pv = prefix ? scalar(&x, prefix, "", "prefix") : "";
    rc = pv ? set_prefix(out, pv, err, errlen) : ORR_EINVAL;
  }
out:
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (rc != 0) objstore_config_free(out);
  return rc;
}

int objstore_config_load(const char *file, const char *text, objstore_config *out, char *err,
                         size_t errlen) {
  int has_file = file && *file, has_text = text && *text;
  memset(out, 0, sizeof *out);
  if (has_file == has_text)
    return CFG_ERR("%s", has_file ? "give only one of --objstore.config-file and --objstore.config"
                                  : "no bucket configured (--objstore.config-file or --objstore.config)");
  if (has_text) return objstore_config_parse(text, strlen(text), out, err, errlen);
  FILE *f = fopen(file, "rb");
  if (!f) return objstore__err(ORR_EIO, err, errlen, "objstore config: cannot read %s: %s", file,
                               strerror(errno));
  orr_buf b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) orr_buf_append(&b, chunk, n);
  int ioerr = ferror(f);
  fclose(f);
  int rc;
  if (b.oom) rc = ORR_ENOMEM;
  else if (ioerr) rc = objstore__err(ORR_EIO, err, errlen, "objstore config: cannot read %s", file);
  else rc = objstore_config_parse(b.data ? b.data : "", b.len, out, err, errlen);
  orr_buf_free(&b);
  return rc;
}

void objstore_config_free(objstore_config *c) {
  if (!c) return;
  free(c->prefix);
  free(c->directory);
  free(c->bucket);
  free(c->endpoint);
  free(c->region);
  free(c->access_key);
  free(c->secret_key);
  free(c->ca_file);
  free(c->server_name);
  free(c->cert_file);
  free(c->key_file);
  memset(c, 0, sizeof *c);
}
