/* http_client_config.c: Prometheus's HTTP client settings in YAML
 * (basic_auth, authorization, bearer_token(_file), tls_config), parsed
 * strictly and applied to a request: TLS options and the Authorization
 * header. Secret files are read per request, as Prometheus does, so a
 * rotated token or password is picked up without a restart. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_int.h"

#define HCC_MAX_SECRET (64u * 1024)

static int set(char **dst, const char *s) {
  free(*dst);
  *dst = NULL;
  if (!*s) return 0;
  return (*dst = strdup(s)) ? 0 : ORR_ENOMEM;
}

typedef struct field {
  const char *name;
  size_t off;
} field;

/* Reads the string keys of |m| listed in |fields| into |c|'s members. */
static int parse_fields(net__yaml *y, yaml_node_t *m, const char *where, const field *fields,
                        size_t nf, net_http_client_config *c, bool *insecure) {
  int rc;
  if (net__yaml_is_null(m)) return 0;
  if ((rc = net__yaml_want_map(y, m, where))) return rc;
  NET__YAML_PAIRS(y, m, k, v) {
    const char *key = net__yaml_key(k);
    if (insecure && !strcmp(key, "insecure_skip_verify")) {
      if ((rc = net__yaml_bool(y, v, where, key, insecure))) return rc;
      continue;
    }
    size_t i;
    for (i = 0; i < nf; i++)
      if (!strcmp(key, fields[i].name)) break;
    if (i == nf) return net__yaml_unknown(y, k, where);
    const char *s = net__yaml_str(y, v, where, key);
    if (!s) return ORR_EINVAL;
    if ((rc = set((char **)((char *)c + fields[i].off), s))) return rc;
  }
  return 0;
}

#define F(name, member) {name, offsetof(net_http_client_config, member)}

int net_http_client_config_parse(const char *text, size_t len, net_http_client_config *c,
                                 char *err, size_t errlen) {
  memset(c, 0, sizeof(*c));
  if (err && errlen) err[0] = 0;
  net__yaml y = {.what = "http client config", .err = err, .errlen = errlen};
  int rc = net__yaml_load(&y, text, len);
  if (rc) goto out;
  yaml_node_t *root = net__yaml_root(&y);
  if (!root || net__yaml_is_null(root)) goto out;
  if ((rc = net__yaml_want_map(&y, root, ""))) goto out;
  static const field basic[] = {F("username", username), F("password", password),
                                F("password_file", password_file)};
  static const field authz[] = {F("type", auth_type), F("credentials", credentials),
                                F("credentials_file", credentials_file)};
  static const field tls[] = {F("ca_file", ca_file), F("cert_file", cert_file),
                              F("key_file", key_file), F("server_name", server_name)};
  bool has_bearer = false, has_authz = false;
  NET__YAML_PAIRS(&y, root, k, v) {
    const char *key = net__yaml_key(k);
    if (!strcmp(key, "basic_auth")) {
      rc = parse_fields(&y, v, "basic_auth", basic, 3, c, NULL);
    } else if (!strcmp(key, "authorization")) {
      has_authz = true;
      rc = parse_fields(&y, v, "authorization", authz, 3, c, NULL);
    } else if (!strcmp(key, "tls_config")) {
      rc = parse_fields(&y, v, "tls_config", tls, 4, c, &c->insecure_skip_verify);
    } else if (!strcmp(key, "bearer_token") || !strcmp(key, "bearer_token_file")) {
      /* Thanos's (and older Prometheus's) names for authorization's */
      const char *s = net__yaml_str(&y, v, "", key);
      if (!s) {
        rc = ORR_EINVAL;
      } else if (*s) {
        has_bearer = true;
        rc = set(key[12] ? &c->credentials_file : &c->credentials, s);
      }
    } else {
      rc = net__yaml_unknown(&y, k, "http client config");
    }
    if (rc) goto out;
  }
  /* Prometheus's checks (config.HTTPClientConfig.Validate). */
  if (has_bearer && has_authz) {
    rc = net__yaml_err(&y, "%s: at most one of bearer_token, bearer_token_file & authorization "
                           "must be configured", y.what);
    goto out;
  }
  if (c->credentials && c->credentials_file) {
    rc = net__yaml_err(&y, "%s: at most one of authorization credentials & credentials_file must "
                           "be configured", y.what);
    goto out;
  }
  if (c->password && c->password_file) {
    rc = net__yaml_err(&y, "%s: at most one of basic_auth password & password_file must be "
                           "configured", y.what);
    goto out;
  }
  if ((c->username || c->password || c->password_file) && (c->credentials || c->credentials_file)) {
    rc = net__yaml_err(&y, "%s: at most one of basic_auth, authorization & bearer_token must be "
                           "configured", y.what);
    goto out;
  }
  if (c->auth_type && !strcasecmp(c->auth_type, "Basic")) {
    rc = net__yaml_err(&y, "%s: authorization.type: authorization type cannot be set to \"basic\", "
                           "use \"basic_auth\" instead", y.what);
    goto out;
  }
  if (!c->auth_type && (c->credentials || c->credentials_file) && !(c->auth_type = strdup("Bearer")))
    rc = ORR_ENOMEM;
  if (!rc && ((c->cert_file != NULL) != (c->key_file != NULL)))
    rc = net__yaml_err(&y, "%s: tls_config: cert_file and key_file must be given together", y.what);
out:
  net__yaml_free(&y);
  if (rc) net_http_client_config_free(c);
  return rc;
}

void net_http_client_config_free(net_http_client_config *c) {
  char **secrets[] = {&c->password, &c->credentials};
  for (size_t i = 0; i < 2; i++)
    if (*secrets[i]) OPENSSL_cleanse(*secrets[i], strlen(*secrets[i]));
  free(c->username);
  free(c->password);
  free(c->password_file);
  free(c->auth_type);
  free(c->credentials);
  free(c->credentials_file);
  free(c->ca_file);
  free(c->cert_file);
  free(c->key_file);
  free(c->server_name);
  memset(c, 0, sizeof(*c));
}

/* A secret file's content without its trailing newline (Prometheus trims
 * surrounding spaces). Caller cleanses and frees. */
static int read_secret(const char *path, const char *what, char **out, char *err, size_t errlen) {
  size_t len;
  char sub[300];
  int rc = net__read_file(path, HCC_MAX_SECRET, out, &len, sub, sizeof sub);
  if (rc) {
    if (err && errlen) snprintf(err, errlen, "%s: %s", what, sub);
    return rc == ORR_ENOMEM ? rc : ORR_EIO;
  }
  char *s = *out;
  while (len && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
                 s[len - 1] == '\t'))
    s[--len] = 0;
  size_t lead = strspn(s, " \t\r\n");
  memmove(s, s + lead, len - lead + 1);
  return 0;
}

int net_http_client_config_apply(const net_http_client_config *c, net_http_client_req *r,
                                 char *err, size_t errlen) {
  int rc = 0;
  if (c->ca_file || c->cert_file || c->key_file || c->server_name || c->insecure_skip_verify) {
    net_http_client_tls t = {c->ca_file, c->cert_file, c->key_file, c->insecure_skip_verify,
                             c->server_name};
    if ((rc = net_http_client_req_tls(r, &t))) return rc;
  }
  char *secret = NULL;
  orr_buf h = {0};
  if (c->username || c->password || c->password_file) {
    if (c->password_file &&
        (rc = read_secret(c->password_file, "basic_auth.password_file", &secret, err, errlen)))
      return rc;
    const char *pw = secret ? secret : c->password ? c->password : "";
    orr_buf up = {0};
    orr_buf_printf(&up, "%s:%s", c->username ? c->username : "", pw);
    size_t enc = 4 * ((up.len + 2) / 3) + 1;
    if (!up.oom && orr_buf_reserve(&h, 6 + enc) == 0) {
      memcpy(h.data, "Basic ", 6);
      int n = EVP_EncodeBlock((unsigned char *)h.data + 6, (const unsigned char *)up.data,
                              (int)up.len);
      h.len = 6 + (size_t)n;
      h.data[h.len] = 0;
    } else {
      h.oom = 1;
    }
    if (up.data) OPENSSL_cleanse(up.data, up.cap);
    orr_buf_free(&up);
  } else if (c->credentials || c->credentials_file) {
    if (c->credentials_file &&
        (rc = read_secret(c->credentials_file, "authorization.credentials_file", &secret, err,
                          errlen)))
      return rc;
    orr_buf_printf(&h, "%s %s", c->auth_type ? c->auth_type : "Bearer",
                   secret ? secret : c->credentials);
  }
  if (h.data && !h.oom && (strchr(h.data, '\n') || strchr(h.data, '\r'))) {
    if (err && errlen) snprintf(err, errlen, "authorization: a line break in the credentials");
    rc = ORR_EINVAL;
  } else if (h.oom) {
    rc = ORR_ENOMEM;
  } else if (h.data) {
    rc = net_http_client_req_header(r, "Authorization", h.data);
  }
  if (secret) {
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
  }
  if (h.data) OPENSSL_cleanse(h.data, h.cap);
  orr_buf_free(&h);
  return rc;
}

static void put(orr_buf *b, const char *indent, const char *key, const char *v, bool secret) {
  if (!v) return;
  orr_buf_printf(b, "%s%s: ", indent, key);
  if (secret) {
    orr_buf_puts(b, "<secret>\n");
    return;
  }
  orr_buf_putc(b, '"');
  for (const char *p = v; *p; p++) {
    net__yaml_put_char(b, *p);
  }
  orr_buf_puts(b, "\"\n");
}

int net_http_client_config_dump(const net_http_client_config *c, orr_buf *b) {
  if (c->username || c->password || c->password_file) {
    orr_buf_puts(b, "basic_auth:\n");
    put(b, "  ", "username", c->username, false);
    put(b, "  ", "password", c->password, true);
    put(b, "  ", "password_file", c->password_file, false);
  }
  if (c->credentials || c->credentials_file) {
    orr_buf_puts(b, "authorization:\n");
    put(b, "  ", "type", c->auth_type, false);
    put(b, "  ", "credentials", c->credentials, true);
    put(b, "  ", "credentials_file", c->credentials_file, false);
  }
  orr_buf_puts(b, "tls_config:\n");
  put(b, "  ", "ca_file", c->ca_file, false);
  put(b, "  ", "cert_file", c->cert_file, false);
  put(b, "  ", "key_file", c->key_file, false);
  put(b, "  ", "server_name", c->server_name, false);
  orr_buf_printf(b, "  insecure_skip_verify: %s\n", c->insecure_skip_verify ? "true" : "false");
  return b->oom ? ORR_ENOMEM : 0;
}

char *net_url_redacted(const char *url, char *out, size_t cap) {
  if (!cap) return out;
  const char *scheme = strstr(url, "://");
  const char *auth = scheme ? scheme + 3 : url;
  size_t hostlen = strcspn(auth, "/?#");
  const char *at = NULL;
  for (const char *p = auth; p < auth + hostlen; p++)
    if (*p == '@') at = p; /* the last '@' ends the userinfo */
  const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
  if (!colon) {
    snprintf(out, cap, "%s", url);
    return out;
  }
  snprintf(out, cap, "%.*sxxxxx%s", (int)(colon + 1 - url), url, at);
  return out;
}

int net_http_client_config_load(const char *flag, const char *file, const char *text,
                                net_http_client_config *c, bool *has) {
  char err[512] = "";
  char *data = NULL;
  size_t len = 0;
  *has = false;
  if (file && !file[0]) file = NULL;
  if (text && !text[0]) text = NULL;
  if (!file && !text) return 0;
  if (file && text) {
    orr_log_error("flags are mutually exclusive", "flags", flag, NULL);
    return ORR_EINVAL;
  }
  if (file) {
    if (net__read_file(file, 1u << 20, &data, &len, err, sizeof err)) {
      orr_log_error("cannot read the HTTP client config file", "flag", flag, "err", err, NULL);
      return ORR_EINVAL;
    }
    text = data;
  } else {
    len = strlen(text);
  }
  int rc = net_http_client_config_parse(text, len, c, err, sizeof err);
  free(data);
  if (rc) {
    orr_log_error("bad HTTP client config", "flag", flag, "err",
                  err[0] ? err : orr_strerror(rc), NULL);
    return ORR_EINVAL;
  }
  *has = true;
  return 0;
}
