/* webconfig.c: Prometheus's web configuration file (--http.config) —
 * the strict parser, and the basic-auth check with its cache.
 *
 * Design notes
 * 1. A parsed configuration is immutable and reference-counted: a reload
 *    swaps in a new one while bcrypt jobs of the old one finish on the
 *    thread pool holding their reference.
 * 2. The success cache belongs to one configuration and is touched on the
 *    loop thread only (lookup before the job, insert after it). Its keys
 *    are SHA-256(len-prefixed user, password, stored hash): a changed hash
 *    in a new file can never hit an old entry, and no password is kept.
 * 3. Every failure costs one bcrypt of the configured cost (an unknown user
 *    is checked against a dummy setting of the highest cost in the file),
 *    failures are not cached, and every failure answers the same 401: the
 *    answer and its time say nothing about which users exist.
 * 4. Requests with the same credentials while their bcrypt runs wait for
 *    that one check instead of starting their own (a dashboard opening ten
 *    panels at once costs one bcrypt, not ten). */
#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_int.h"

#define WC_CACHE_CAP 1024
#define WC_MAX_FILE (1u << 20)

typedef struct wc_user {
  char *name;
  char *hash;
} wc_user;

struct net_webconfig {
  atomic_int refs;
  bool has_tls;
  net_webconfig_tls tls;
  char *strs[6];  /* owned strings behind tls's const pointers */
  char **ciphers, **curves;
  bool http2;     /* accepted, not used: the server speaks HTTP/1.1 */
  net_http_kv *headers;
  size_t nheaders;
  wc_user *users;
  size_t nusers;
  char dummy[64]; /* bcrypt setting for unknown users */
  /* success cache and checks in flight (loop thread only) */
  uint8_t (*cache)[32];
  size_t cache_n, cache_next;
  struct wc_job *inflight;
};

/* The headers Prometheus lets a web config set, with their allowed values
 * (exporter-toolkit's list; NULL: any value). */
static const struct {
  const char *name;
  const char *values[3];
} allowed_headers[] = {
    {"Strict-Transport-Security", {NULL}},
    {"X-Content-Type-Options", {"nosniff", NULL}},
    {"X-Frame-Options", {"deny", "sameorigin", NULL}},
    {"X-XSS-Protection", {NULL}},
    {"Content-Security-Policy", {NULL}},
};

/* Go's crypto/tls CipherSuites() names: the ones Prometheus 2.42 accepts. */
static const char *const go_ciphers[] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    NULL,
};
static const char *const go_curves[] = {"CurveP256", "CurveP384", "CurveP521", "X25519", NULL};
static const char *const go_versions[] = {"TLS10", "TLS11", "TLS12", "TLS13", NULL};
static const char *const go_client_auth[] = {"NoClientCert", "RequestClientCert",
                                             "RequireAnyClientCert", "VerifyClientCertIfGiven",
                                             "RequireAndVerifyClientCert", NULL};

static bool in_list(const char *const *list, const char *s) {
  for (; *list; list++)
    if (!strcmp(*list, s)) return true;
  return false;
}

static void free_strv(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

static void wc_free(net_webconfig *c) {
  for (size_t i = 0; i < 6; i++) free(c->strs[i]);
  free_strv(c->ciphers);
  free_strv(c->curves);
  for (size_t i = 0; i < c->nheaders; i++) {
    free((char *)c->headers[i].name);
    free((char *)c->headers[i].value);
  }
  free(c->headers);
  for (size_t i = 0; i < c->nusers; i++) {
    free(c->users[i].name);
    if (c->users[i].hash) OPENSSL_cleanse(c->users[i].hash, strlen(c->users[i].hash));
    free(c->users[i].hash);
  }
  free(c->users);
  if (c->cache) OPENSSL_cleanse(c->cache, WC_CACHE_CAP * sizeof(*c->cache));
  free(c->cache);
  free(c);
}

net_webconfig *net_webconfig_acquire(net_webconfig *c) {
  if (c) atomic_fetch_add(&c->refs, 1);
  return c;
}

void net_webconfig_release(net_webconfig *c) {
  if (c && atomic_fetch_sub(&c->refs, 1) == 1) wc_free(c);
}

/* ---------------------------------------------------------------- parsing */

/* A list of strings, each in |allowed|; *out is NULL-terminated. */
static int parse_strv(net__yaml *y, yaml_node_t *n, const char *key, const char *const *allowed,
                      const char *bad_fmt, char ***out, size_t *count) {
  *out = NULL;
  *count = 0;
  if (net__yaml_is_null(n)) return 0;
  if (n->type != YAML_SEQUENCE_NODE)
    return net__yaml_err(y, "%s: line %zu: tls_server_config.%s: expected a list", y->what,
                         net__yaml_line(n), key);
  size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  char **v = calloc(len + 1, sizeof(*v));
  if (!v) return ORR_ENOMEM;
  *out = v;
  for (size_t i = 0; i < len; i++) {
    yaml_node_t *it = net__yaml_node(y, n->data.sequence.items.start[i]);
    const char *s = net__yaml_str(y, it, "tls_server_config", key);
    if (!s) return ORR_EINVAL;
    if (!in_list(allowed, s))
      return net__yaml_err(y, "%s: line %zu: tls_server_config.%s: %s: %.100s", y->what,
                           net__yaml_line(it), key, bad_fmt, s);
    if (!(v[i] = strdup(s))) return ORR_ENOMEM;
    (*count)++;
  }
  return 0;
}

static int readable(net__yaml *y, yaml_node_t *n, const char *key, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return net__yaml_err(y, "%s: line %zu: tls_server_config.%s: cannot read \"%.200s\": %s",
                         y->what, net__yaml_line(n), key, path, strerror(errno));
  fclose(f);
  return 0;
}

static int parse_tls(net__yaml *y, yaml_node_t *m, net_webconfig *c) {
  int rc;
  if (net__yaml_is_null(m)) return 0;
  if ((rc = net__yaml_want_map(y, m, "tls_server_config"))) return rc;
  static const char *const keys[] = {"cert_file", "key_file", "client_ca_file",
                                     "client_auth_type", "min_version", "max_version"};
  yaml_node_t *where[6] = {0};
  c->tls.prefer_server_cipher_suites = true;
  NET__YAML_PAIRS(y, m, k, v) {
    const char *key = net__yaml_key(k);
    size_t i;
    for (i = 0; i < 6; i++)
      if (!strcmp(key, keys[i])) break;
    if (i < 6) {
      const char *s = net__yaml_str(y, v, "tls_server_config", key);
      if (!s) return ORR_EINVAL;
      free(c->strs[i]);
      if (!(c->strs[i] = strdup(s))) return ORR_ENOMEM;
      where[i] = v;
    } else if (!strcmp(key, "cipher_suites")) {
      free_strv(c->ciphers);
      if ((rc = parse_strv(y, v, key, go_ciphers, "unknown cipher", &c->ciphers,
                           &c->tls.ncipher_suites)))
        return rc;
    } else if (!strcmp(key, "curve_preferences")) {
      free_strv(c->curves);
      if ((rc = parse_strv(y, v, key, go_curves, "unknown curve", &c->curves,
                           &c->tls.ncurve_preferences)))
        return rc;
    } else if (!strcmp(key, "prefer_server_cipher_suites")) {
      if ((rc = net__yaml_bool(y, v, "tls_server_config", key,
                               &c->tls.prefer_server_cipher_suites)))
        return rc;
    } else {
      return net__yaml_unknown(y, k, "tls_server_config");
    }
  }
  const char *cert = c->strs[0] ? c->strs[0] : "", *key = c->strs[1] ? c->strs[1] : "";
  const char *ca = c->strs[2] ? c->strs[2] : "", *auth = c->strs[3] ? c->strs[3] : "";
  /* As exporter-toolkit: no cert, key, CA nor client auth means plain HTTP. */
  if (!*cert && !*key && !*ca && !*auth) return 0;
  if (!*cert)
    return net__yaml_err(y, "%s: tls_server_config: missing cert_file", y->what);
  if (!*key) return net__yaml_err(y, "%s: tls_server_config: missing key_file", y->what);
  if ((rc = readable(y, where[0], "cert_file", cert))) return rc;
  if ((rc = readable(y, where[1], "key_file", key))) return rc;
  if (*ca && (rc = readable(y, where[2], "client_ca_file", ca))) return rc;
  if (!*auth) auth = "NoClientCert";
  if (!in_list(go_client_auth, auth))
    return net__yaml_err(y, "%s: line %zu: tls_server_config.client_auth_type: Invalid ClientAuth: "
                            "%.100s",
                         y->what, net__yaml_line(where[3]), auth);
  if (*ca && !strcmp(auth, "NoClientCert"))
    return net__yaml_err(y,
                         "%s: tls_server_config: Client CA's have been configured without a "
                         "Client Auth Policy (client_auth_type)",
                         y->what);
  if (!*ca && (!strcmp(auth, "RequireAndVerifyClientCert") ||
               !strcmp(auth, "VerifyClientCertIfGiven")))
    return net__yaml_err(y, "%s: tls_server_config: client_auth_type %s needs client_ca_file",
                         y->what, auth);
  const char *minv = c->strs[4] && *c->strs[4] ? c->strs[4] : "TLS12";
  const char *maxv = c->strs[5] && *c->strs[5] ? c->strs[5] : "TLS13";
  if (!in_list(go_versions, minv))
    return net__yaml_err(y, "%s: line %zu: tls_server_config.min_version: unknown TLS version: %.50s",
                         y->what, net__yaml_line(where[4]), minv);
  if (!in_list(go_versions, maxv))
    return net__yaml_err(y, "%s: line %zu: tls_server_config.max_version: unknown TLS version: %.50s",
                         y->what, net__yaml_line(where[5]), maxv);
  if (strcmp(minv, maxv) > 0)
    return net__yaml_err(y, "%s: tls_server_config: min_version %s is above max_version %s",
                         y->what, minv, maxv);
  c->has_tls = true;
  c->tls.cert_file = cert;
  c->tls.key_file = key;
  c->tls.client_ca_file = *ca ? ca : NULL;
  c->tls.client_auth_type = auth;
  c->tls.min_version = minv;
  c->tls.max_version = maxv;
  c->tls.cipher_suites = (const char *const *)c->ciphers;
  c->tls.curve_preferences = (const char *const *)c->curves;
  return 0;
}

static int parse_headers(net__yaml *y, yaml_node_t *m, net_webconfig *c) {
  int rc;
  if (net__yaml_is_null(m)) return 0;
  if ((rc = net__yaml_want_map(y, m, "http_server_config.headers"))) return rc;
  size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
  c->headers = calloc(n ? n : 1, sizeof(*c->headers));
  if (!c->headers) return ORR_ENOMEM;
  NET__YAML_PAIRS(y, m, k, v) {
    const char *name = net__yaml_key(k);
    size_t i, na = sizeof allowed_headers / sizeof *allowed_headers;
    for (i = 0; i < na; i++)
      if (!strcmp(name, allowed_headers[i].name)) break;
    if (i == na)
      return net__yaml_err(y, "%s: line %zu: http_server_config.headers: HTTP header \"%.100s\" "
                              "can not be configured",
                           y->what, net__yaml_line(k), name);
    const char *val = net__yaml_str(y, v, "http_server_config.headers", name);
    if (!val) return ORR_EINVAL;
    if (strpbrk(val, "\r\n"))
      return net__yaml_err(y, "%s: line %zu: http_server_config.headers.%s: a line break in the "
                              "value",
                           y->what, net__yaml_line(v), name);
    if (allowed_headers[i].values[0]) {
      bool ok = false;
      for (size_t j = 0; allowed_headers[i].values[j]; j++)
        if (!strcmp(val, allowed_headers[i].values[j])) ok = true;
      if (!ok)
        return net__yaml_err(y, "%s: line %zu: http_server_config.headers: invalid value for %s. "
                                "Expected one of: [\"%s\"%s%s%s], but got: \"%.100s\"",
                             y->what, net__yaml_line(v), name, allowed_headers[i].values[0],
                             allowed_headers[i].values[1] ? " \"" : "",
                             allowed_headers[i].values[1] ? allowed_headers[i].values[1] : "",
                             allowed_headers[i].values[1] ? "\"" : "", val);
    }
    /* a blank value leaves the header unset, as Prometheus documents */
    if (!*val) continue;
    for (size_t j = 0; j < c->nheaders; j++)
      if (!strcmp(c->headers[j].name, name))
        return net__yaml_err(y, "%s: line %zu: http_server_config.headers: %s given twice",
                             y->what, net__yaml_line(k), name);
    net_http_kv *h = &c->headers[c->nheaders];
    h->name = strdup(name);
    h->value = strdup(val);
    if (!h->name || !h->value) {
      free((char *)h->name);
      free((char *)h->value);
      return ORR_ENOMEM;
    }
    h->value_len = strlen(val);
    c->nheaders++;
  }
  return 0;
}

static int parse_http(net__yaml *y, yaml_node_t *m, net_webconfig *c) {
  int rc;
  c->http2 = true;
  if (net__yaml_is_null(m)) return 0;
  if ((rc = net__yaml_want_map(y, m, "http_server_config"))) return rc;
  NET__YAML_PAIRS(y, m, k, v) {
    const char *key = net__yaml_key(k);
    if (!strcmp(key, "http2")) {
      if ((rc = net__yaml_bool(y, v, "http_server_config", key, &c->http2))) return rc;
    } else if (!strcmp(key, "headers")) {
      if (c->headers)
        return net__yaml_err(y, "%s: line %zu: http_server_config.headers given twice", y->what,
                             net__yaml_line(k));
      if ((rc = parse_headers(y, v, c))) return rc;
    } else {
      return net__yaml_unknown(y, k, "http_server_config");
    }
  }
  return 0;
}

/* "$2a$|$2b$|$2y$", two-digit cost 04..31, '$', 53 characters of bcrypt's
 * base64: the hashes libcrypt's bcrypt checks. Returns the cost or -1. */
static int bcrypt_cost(const char *h) {
  static const char alphabet[] =
      "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' || !strchr("aby", h[2]) || h[3] != '$')
    return -1;
  if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' || h[6] != '$') return -1;
  int cost = (h[4] - '0') * 10 + (h[5] - '0');
  if (cost < 4 || cost > 31) return -1;
  for (int i = 7; i < 60; i++)
    if (!h[i] || !strchr(alphabet, h[i])) return -1;
  return cost;
}

static int parse_users(net__yaml *y, yaml_node_t *m, net_webconfig *c, int *max_cost) {
  int rc;
  if (net__yaml_is_null(m)) return 0;
  if ((rc = net__yaml_want_map(y, m, "basic_auth_users"))) return rc;
  size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
  c->users = calloc(n ? n : 1, sizeof(*c->users));
  if (!c->users) return ORR_ENOMEM;
  NET__YAML_PAIRS(y, m, k, v) {
    const char *name = net__yaml_str(y, k, "basic_auth_users", "(user name)");
    if (!name) return ORR_EINVAL;
    /* The hash is a <secret> to Prometheus: messages name the user only. */
    const char *hash = net__yaml_str(y, v, "basic_auth_users", name);
    if (!hash) return ORR_EINVAL;
    for (size_t j = 0; j < c->nusers; j++)
      if (!strcmp(c->users[j].name, name))
        return net__yaml_err(y, "%s: line %zu: basic_auth_users: user \"%.100s\" given twice",
                             y->what, net__yaml_line(k), name);
    int cost = bcrypt_cost(hash);
    if (cost < 0)
      return net__yaml_err(y,
                           "%s: line %zu: basic_auth_users: the password of user \"%.100s\" is "
                           "not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31)",
                           y->what, net__yaml_line(v), name);
    if (cost > *max_cost) *max_cost = cost;
    wc_user *u = &c->users[c->nusers];
    u->name = strdup(name);
    u->hash = strdup(hash);
    if (!u->name || !u->hash) {
      free(u->name);
      free(u->hash);
      return ORR_ENOMEM;
    }
    c->nusers++;
  }
  return 0;
}

/* The bcrypt setting unknown users are checked against: random salt, the
 * highest cost in the file, so their check costs what a known user's does. */
static int make_dummy(net_webconfig *c, int cost) {
  unsigned char rnd[16];
  if (RAND_bytes(rnd, sizeof rnd) != 1) return ORR_EINTERNAL;
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$2b$", (unsigned long)cost, (const char *)rnd, sizeof rnd, setting,
                        sizeof setting))
    return ORR_EINTERNAL;
  /* setting is "$2b$NN$" + 22 salt characters; pad to a hash's length */
  snprintf(c->dummy, sizeof c->dummy, "%.29s%s", setting, "...............................");
  return 0;
}

int net_webconfig_parse(const char *text, size_t len, net_webconfig **out, char *err,
                        size_t errlen) {
  if (err && errlen) err[0] = 0;
  *out = NULL;
  net__yaml y = {.what = "web config", .err = err, .errlen = errlen};
  net_webconfig *c = calloc(1, sizeof(*c));
  if (!c) return ORR_ENOMEM;
  atomic_init(&c->refs, 1);
  c->http2 = true;
  c->tls.prefer_server_cipher_suites = true;
  int rc = net__yaml_load(&y, text, len);
  if (rc) goto out;
  yaml_node_t *root = net__yaml_root(&y);
  int max_cost = 4; /* the dummy takes the highest cost of the users */
  if (root && !net__yaml_is_null(root)) {
    if ((rc = net__yaml_want_map(&y, root, ""))) goto out;
    bool seen[3] = {0};
    static const char *const top[] = {"tls_server_config", "http_server_config",
                                      "basic_auth_users"};
    NET__YAML_PAIRS(&y, root, k, v) {
      const char *key = net__yaml_key(k);
      int i;
      for (i = 0; i < 3; i++)
        if (!strcmp(key, top[i])) break;
      if (i == 3) {
        rc = net__yaml_unknown(&y, k, "web config");
        goto out;
      }
      if (seen[i]) {
        rc = net__yaml_err(&y, "%s: line %zu: %s given twice", y.what, net__yaml_line(k), key);
        goto out;
      }
      seen[i] = true;
      rc = i == 0 ? parse_tls(&y, v, c) : i == 1 ? parse_http(&y, v, c)
                                                 : parse_users(&y, v, c, &max_cost);
      if (rc) goto out;
    }
  }
  if (c->nusers) {
    c->cache = calloc(WC_CACHE_CAP, sizeof(*c->cache));
    if (!c->cache) {
      rc = ORR_ENOMEM;
      goto out;
    }
    if ((rc = make_dummy(c, max_cost))) {
      net__yaml_err(&y, "%s: cannot make a bcrypt salt", y.what);
      goto out;
    }
  }
out:
  net__yaml_free(&y);
  if (rc) {
    if (rc == ORR_ENOMEM && err && errlen && !err[0]) snprintf(err, errlen, "web config: out of memory");
    wc_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

int net_webconfig_load(const char *path, net_webconfig **out, char *err, size_t errlen) {
  char *text;
  size_t len;
  *out = NULL;
  int rc = net__read_file(path, WC_MAX_FILE, &text, &len, err, errlen);
  if (rc) return rc;
  char sub[512] = "";
  rc = net_webconfig_parse(text, len, out, sub, sizeof sub);
  free(text);
  if (rc && err && errlen) snprintf(err, errlen, "%s (%s)", sub, path);
  return rc;
}

const net_webconfig_tls *net_webconfig_tls_config(const net_webconfig *c) {
  return c && c->has_tls ? &c->tls : NULL;
}

const net_http_kv *net_webconfig_headers(const net_webconfig *c, size_t *n) {
  *n = c ? c->nheaders : 0;
  return c ? c->headers : NULL;
}

size_t net_webconfig_users(const net_webconfig *c) { return c ? c->nusers : 0; }

static void dump_str(orr_buf *b, const char *indent, const char *key, const char *v) {
  if (!v || !*v) return;
  orr_buf_printf(b, "%s%s: ", indent, key);
  /* double-quoted YAML: enough escaping for paths and header values */
  orr_buf_putc(b, '"');
  for (const char *p = v; *p; p++) {
    net__yaml_put_char(b, *p);
  }
  orr_buf_puts(b, "\"\n");
}

int net_webconfig_dump(const net_webconfig *c, orr_buf *b) {
  if (c->has_tls) {
    orr_buf_puts(b, "tls_server_config:\n");
    dump_str(b, "  ", "cert_file", c->tls.cert_file);
    dump_str(b, "  ", "key_file", c->tls.key_file);
    dump_str(b, "  ", "client_auth_type", c->tls.client_auth_type);
    dump_str(b, "  ", "client_ca_file", c->tls.client_ca_file);
    dump_str(b, "  ", "min_version", c->tls.min_version);
    dump_str(b, "  ", "max_version", c->tls.max_version);
    if (c->tls.ncipher_suites) {
      orr_buf_puts(b, "  cipher_suites:\n");
      for (size_t i = 0; i < c->tls.ncipher_suites; i++)
        orr_buf_printf(b, "  - %s\n", c->tls.cipher_suites[i]);
    }
    orr_buf_printf(b, "  prefer_server_cipher_suites: %s\n",
                   c->tls.prefer_server_cipher_suites ? "true" : "false");
    if (c->tls.ncurve_preferences) {
      orr_buf_puts(b, "  curve_preferences:\n");
      for (size_t i = 0; i < c->tls.ncurve_preferences; i++)
        orr_buf_printf(b, "  - %s\n", c->tls.curve_preferences[i]);
    }
  }
  orr_buf_printf(b, "http_server_config:\n  http2: %s\n", c->http2 ? "true" : "false");
  if (c->nheaders) {
    orr_buf_puts(b, "  headers:\n");
    for (size_t i = 0; i < c->nheaders; i++)
      dump_str(b, "    ", c->headers[i].name, c->headers[i].value);
  }
  if (c->nusers) {
    orr_buf_puts(b, "basic_auth_users:\n");
    for (size_t i = 0; i < c->nusers; i++) {
      orr_buf_puts(b, "  \"");
      for (const char *p = c->users[i].name; *p; p++) {
        net__yaml_put_char(b, *p);
      }
      orr_buf_puts(b, "\": <secret>\n");
    }
  }
  return b->oom ? ORR_ENOMEM : 0;
}

/* ---------------------------------------------------------------- basic auth */

static int b64val(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+') return 62;
  if (ch == '/') return 63;
  return -1;
}

/* Standard base64 with padding, strictly (Go's StdEncoding as
 * Request.BasicAuth uses). Returns the decoded length or -1. */
static long b64_decode(const char *s, size_t n, char *out, size_t cap) {
  if (n % 4) return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int j = 0; j < 4; j++) {
      unsigned char ch = (unsigned char)s[i + j];
      if (ch == '=' && i + 4 == n && j >= 2) {
        v[j] = 0;
        pad++;
        continue;
      }
      if (pad || (v[j] = b64val(ch)) < 0) return -1;
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    if (pad == 1 && (w & 0xff)) return -1;    /* non-canonical trailing bits */
    if (pad == 2 && (w & 0xffff)) return -1;
    if (o + 3 - (size_t)pad >= cap) return -1;
    out[o++] = (char)(w >> 16);
    if (pad < 2) out[o++] = (char)(w >> 8);
    if (pad < 1) out[o++] = (char)w;
  }
  out[o] = 0;
  return (long)o;
}

int net_webconfig_parse_basic(const char *h, char *buf, size_t cap, const char **user,
                              const char **pass) {
  if (!h || strncasecmp(h, "Basic ", 6) != 0) return ORR_EINVAL;
  const char *s = h + 6;
  long n = b64_decode(s, strlen(s), buf, cap);
  if (n < 0) return ORR_EINVAL;
  if (memchr(buf, 0, (size_t)n)) return ORR_EINVAL; /* crypt takes C strings */
  char *colon = memchr(buf, ':', (size_t)n);
  if (!colon) return ORR_EINVAL;
  *colon = 0;
  *user = buf;
  *pass = colon + 1;
  return 0;
}

static const wc_user *find_user(const net_webconfig *c, const char *user) {
  for (size_t i = 0; i < c->nusers; i++)
    if (!strcmp(c->users[i].name, user)) return &c->users[i];
  return NULL;
}

static void cache_key(const char *user, const char *pass, const char *hash, uint8_t out[32]) {
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  unsigned int len = 32;
  uint64_t l;
  memset(out, 0, 32);
  if (!m) return;
  EVP_DigestInit_ex(m, EVP_sha256(), NULL);
  const char *parts[3] = {user, pass, hash};
  for (int i = 0; i < 3; i++) {
    l = strlen(parts[i]);
    EVP_DigestUpdate(m, &l, sizeof l);
    EVP_DigestUpdate(m, parts[i], l);
  }
  EVP_DigestFinal_ex(m, out, &len);
  EVP_MD_CTX_free(m);
}

static bool cache_has(const net_webconfig *c, const uint8_t key[32]) {
  bool hit = false;
  for (size_t i = 0; i < c->cache_n; i++) hit |= CRYPTO_memcmp(c->cache[i], key, 32) == 0;
  return hit;
}

static void cache_put(net_webconfig *c, const uint8_t key[32]) {
  if (cache_has(c, key)) return;
  memcpy(c->cache[c->cache_next], key, 32);
  c->cache_next = (c->cache_next + 1) % WC_CACHE_CAP;
  if (c->cache_n < WC_CACHE_CAP) c->cache_n++;
}

/* bcrypt of |pass| under |hash|'s setting, compared in constant time. Also
 * run for unknown users (against the dummy), whose result is discarded. */
static bool bcrypt_ok(const char *pass, const char *hash) {
  struct crypt_data *cd = calloc(1, sizeof(*cd));
  if (!cd) return false;
  bool ok = false;
  char *r = crypt_rn(pass, hash, cd, sizeof(*cd));
  size_t hl = strlen(hash);
  if (r && r[0] != '*' && strlen(r) == hl) ok = CRYPTO_memcmp(r, hash, hl) == 0;
  OPENSSL_cleanse(cd, sizeof(*cd));
  free(cd);
  return ok;
}

/* The slow part: whether |user| exists and |pass| matches. Thread-safe. */
static bool check_slow(const net_webconfig *c, const char *user, const char *pass) {
  const wc_user *u = find_user(c, user);
  bool ok = bcrypt_ok(pass, u ? u->hash : c->dummy);
  return u && ok;
}

bool net_webconfig_verify(net_webconfig *c, const char *user, const char *pass) {
  if (!c->nusers) return true;
  const wc_user *u = find_user(c, user);
  uint8_t key[32];
  cache_key(user, pass, u ? u->hash : c->dummy, key);
  if (u && cache_has(c, key)) return true;
  bool ok = check_slow(c, user, pass);
  if (ok) cache_put(c, key);
  return ok;
}

typedef struct wc_waiter {
  net_http_req *req;
  void (*done)(net_http_req *req, bool ok, void *arg);
  void *arg;
  struct wc_waiter *next;
} wc_waiter;

typedef struct wc_job {
  uv_work_t work;
  net_webconfig *c;
  net_http_req *req;
  void (*done)(net_http_req *req, bool ok, void *arg);
  void *arg;
  wc_waiter *waiters; /* same credentials, arrived while this one ran */
  struct wc_job *next; /* c->inflight */
  uint8_t key[32];
  bool ok;
  char buf[]; /* user\0pass\0 */
} wc_job;

static void job_work(uv_work_t *w) {
  wc_job *j = w->data;
  const char *user = j->buf, *pass = j->buf + strlen(j->buf) + 1;
  j->ok = check_slow(j->c, user, pass);
}

static void job_after(uv_work_t *w, int status) {
  wc_job *j = w->data;
  bool ok = status == 0 && j->ok;
  if (ok) cache_put(j->c, j->key);
  size_t len = strlen(j->buf);
  OPENSSL_cleanse(j->buf, len + 1 + strlen(j->buf + len + 1));
  for (wc_job **p = &j->c->inflight; *p; p = &(*p)->next)
    if (*p == j) {
      *p = j->next;
      break;
    }
  j->done(j->req, ok, j->arg);
  for (wc_waiter *wt = j->waiters, *next; wt; wt = next) {
    next = wt->next;
    wt->done(wt->req, ok, wt->arg);
    free(wt);
  }
  net_webconfig_release(j->c);
  free(j);
}

void net_webconfig_check(net_webconfig *c, uv_loop_t *loop, net_http_req *req,
                         void (*done)(net_http_req *req, bool ok, void *arg), void *arg) {
  if (!c || !c->nusers) {
    done(req, true, arg);
    return;
  }
  const char *h = net_http_req_header(req, "Authorization");
  size_t hl = h ? strlen(h) : 0;
  if (!h || hl > 16384) {
    done(req, false, arg);
    return;
  }
  char *buf = malloc(hl + 1);
  const char *user, *pass;
  if (!buf || net_webconfig_parse_basic(h, buf, hl + 1, &user, &pass) != 0) {
    free(buf);
    done(req, false, arg);
    return;
  }
  const wc_user *u = find_user(c, user);
  uint8_t key[32];
  cache_key(user, pass, u ? u->hash : c->dummy, key);
  if (u && cache_has(c, key)) {
    OPENSSL_cleanse(buf, hl);
    free(buf);
    done(req, true, arg);
    return;
  }
  for (wc_job *f = c->inflight; f; f = f->next) {
    if (CRYPTO_memcmp(f->key, key, 32) != 0) continue;
    wc_waiter *w = calloc(1, sizeof(*w));
    if (!w) break; /* run a check of its own */
    OPENSSL_cleanse(buf, hl);
    free(buf);
    *w = (wc_waiter){req, done, arg, f->waiters};
    f->waiters = w;
    return;
  }
  size_t ul = strlen(user), pl = strlen(pass);
  wc_job *j = calloc(1, sizeof(*j) + ul + pl + 2);
  if (!j) {
    OPENSSL_cleanse(buf, hl);
    free(buf);
    done(req, false, arg);
    return;
  }
  memcpy(j->buf, user, ul + 1);
  memcpy(j->buf + ul + 1, pass, pl + 1);
  OPENSSL_cleanse(buf, hl);
  free(buf);
  memcpy(j->key, key, 32);
  j->c = net_webconfig_acquire(c);
  j->req = req;
  j->done = done;
  j->arg = arg;
  j->work.data = j;
  j->next = c->inflight;
  c->inflight = j;
  if (uv_queue_work(loop, &j->work, job_work, job_after) != 0) {
    /* no pool: check here, on the loop, rather than let anyone in */
    job_work(&j->work);
    job_after(&j->work, 0);
  }
}

void net_webconfig_respond_unauthorized(net_http_req *req) {
  net_http_resp_header(req, "WWW-Authenticate", "Basic");
  net_http_respond(req, 401, "text/plain; charset=utf-8", "Unauthorized\n", 13);
}
