/* tls.c: TLS for the HTTP server and gRPC (server and client) over our libuv
 * streams — OpenSSL with memory BIOs, so OpenSSL never touches a socket and
 * never blocks: the owner feeds it the ciphertext it read and writes out the
 * ciphertext it produced. Contexts are built from files and reloaded when
 * the files change.
 *
 * Design notes
 * 1. A net_tls_ctx owns one SSL_CTX at a time. A reload builds a whole new
 *    SSL_CTX from the files and swaps it in only if that succeeded; an SSL
 *    holds a reference to the SSL_CTX it was made from, so connections in
 *    flight keep their certificate and new connections get the new one.
 * 2. Reloads happen when a file's (inode, size, mtime) changes, checked on a
 *    timer (every minute; ORRERY_TLS_RELOAD_INTERVAL_MS for tests), and on
 *    net_tls_ctx_reload() (SIGHUP). A failed reload is logged and the old
 *    certificate stays.
 * 3. A net_tls_ctx is reference-counted: the servers and clients that use
 *    one take a reference; the timer is closed with the last one.
 * 4. A connection's handshake failure (no client certificate, other CA,
 *    expired certificate, no common version) is logged once, at warn, with
 *    the peer address; the owner then closes the connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net_int.h"

#define RELOAD_INTERVAL_MS 60000

typedef enum {
  AUTH_NONE = 0,        /* NoClientCert */
  AUTH_REQUEST,         /* RequestClientCert */
  AUTH_REQUIRE_ANY,     /* RequireAnyClientCert */
  AUTH_VERIFY_IF_GIVEN, /* VerifyClientCertIfGiven */
  AUTH_REQUIRE_VERIFY,  /* RequireAndVerifyClientCert */
} client_auth;

typedef struct file_stamp {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  int ok;
} file_stamp;

struct net_tls_ctx {
  uv_loop_t *loop;
  uv_timer_t timer;
  int refs;
  int server;
  SSL_CTX *ssl_ctx;
  /* the options, copied */
  char *cert_file, *key_file, *ca_file, *server_name, *ciphers;
  int min_proto;
  client_auth auth;
  int skip_verify;
  file_stamp stamps[3]; /* cert, key, ca */
  uint64_t reloads;
  net_tls_ctx *next; /* every live context, for net_tls_ctx_reload_all */
};

static net_tls_ctx *all_ctxs;

/* ---------------------------------------------------------------- errors */

static void set_err(char *err, size_t errlen, const char *what, const char *file) {
  if (!err || !errlen) return;
  unsigned long e = ERR_peek_last_error();
  char ebuf[200] = "";
  if (e) ERR_error_string_n(e, ebuf, sizeof(ebuf));
  ERR_clear_error();
  if (file)
    snprintf(err, errlen, "%s %s%s%s", what, file, ebuf[0] ? ": " : "", ebuf);
  else
    snprintf(err, errlen, "%s%s%s", what, ebuf[0] ? ": " : "", ebuf);
}

/* ---------------------------------------------------------------- options */

/* Prometheus's web config says "TLS12"; Thanos's flag says "1.2". Both are
 * taken. Returns the OpenSSL version, or 0. */
static int parse_version(const char *s) {
  static const struct {
    const char *a, *b;
    int v;
  } t[] = {{"TLS10", "1.0", TLS1_VERSION},
           {"TLS11", "1.1", TLS1_1_VERSION},
           {"TLS12", "1.2", TLS1_2_VERSION},
           {"TLS13", "1.3", TLS1_3_VERSION}};
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    if (strcmp(s, t[i].a) == 0 || strcmp(s, t[i].b) == 0) return t[i].v;
  return 0;
}

static int parse_auth(const char *s, client_auth *out) {
  static const struct {
    const char *name;
    client_auth a;
  } t[] = {{"NoClientCert", AUTH_NONE},
           {"RequestClientCert", AUTH_REQUEST},
           {"RequireAnyClientCert", AUTH_REQUIRE_ANY},
           {"VerifyClientCertIfGiven", AUTH_VERIFY_IF_GIVEN},
           {"RequireAndVerifyClientCert", AUTH_REQUIRE_VERIFY}};
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    if (strcmp(s, t[i].name) == 0) {
      *out = t[i].a;
      return 0;
    }
  return ORR_EINVAL;
}

/* Go names cipher suites by their IANA names (with a few shorthands such as
 * TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305); OpenSSL knows the IANA name of each
 * of its ciphers. Builds an OpenSSL cipher list from the Go names. Like Go,
 * the list applies to TLS 1.0-1.2 only. Returns 0 or ORR_EINVAL. */
static int map_ciphers(const char *const *names, size_t n, char **out, char *err, size_t errlen) {
  *out = NULL;
  if (!n) return 0;
  SSL_CTX *probe = SSL_CTX_new(TLS_method());
  if (!probe) return ORR_ENOMEM;
  SSL_CTX_set_cipher_list(probe, "ALL:@SECLEVEL=0");
  STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(probe);
  orr_buf b = {0};
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const char *want = names[i];
    const char *found = NULL;
    for (int j = 0; j < sk_SSL_CIPHER_num(sk) && !found; j++) {
      const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, j);
      const char *std = SSL_CIPHER_standard_name(c);
      if (!std) continue;
      size_t wl = strlen(want);
      if (strcmp(std, want) == 0 ||
          /* Go's shorthand drops the hash of the CHACHA20 suites */
          (strncmp(std, want, wl) == 0 && strcmp(std + wl, "_SHA256") == 0 &&
           strstr(want, "CHACHA20_POLY1305")))
        found = SSL_CIPHER_get_name(c);
    }
    if (!found) {
      snprintf(err, errlen, "unknown cipher suite %s", want);
      rc = ORR_EINVAL;
      break;
    }
    if (b.len) orr_buf_puts(&b, ":");
    orr_buf_puts(&b, found);
  }
  SSL_CTX_free(probe);
  if (rc == 0 && b.oom) rc = ORR_ENOMEM;
  if (rc) {
    orr_buf_free(&b);
    return rc;
  }
  size_t len;
  *out = orr_buf_steal(&b, &len);
  return 0;
}

/* ---------------------------------------------------------------- building */

static int verify_accept_any(int ok, X509_STORE_CTX *x) {
  (void)ok;
  (void)x;
  return 1;
}

/* ALPN: the server picks the protocol its connection asked for (the SSL's
 * app data is the net__tls), if the client offers it; otherwise none. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  (void)arg;
  net__tls *t = SSL_get_app_data(ssl);
  if (!t || !t->alpn) return SSL_TLSEXT_ERR_NOACK;
  size_t wl = strlen(t->alpn);
  for (unsigned i = 0; i < inlen;) {
    unsigned l = in[i];
    if (i + 1 + l > inlen) break;
    if (l == wl && memcmp(in + i + 1, t->alpn, wl) == 0) {
      *out = in + i + 1;
      *outlen = (unsigned char)l;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + l;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *build(net_tls_ctx *t, char *err, size_t errlen) {
  SSL_CTX *c = SSL_CTX_new(t->server ? TLS_server_method() : TLS_client_method());
  if (!c) {
    set_err(err, errlen, "cannot create a TLS context", NULL);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(c, t->min_proto);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  /* no renegotiation, as Go (which never renegotiates as a server) */
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (t->ciphers && !SSL_CTX_set_cipher_list(c, t->ciphers)) {
    set_err(err, errlen, "cannot use the cipher suites", NULL);
    goto fail;
  }
  if (t->cert_file) {
    if (SSL_CTX_use_certificate_chain_file(c, t->cert_file) != 1) {
      set_err(err, errlen, "cannot load the certificate", t->cert_file);
      goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(c, t->key_file, SSL_FILETYPE_PEM) != 1) {
      set_err(err, errlen, "cannot load the key", t->key_file);
      goto fail;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
      set_err(err, errlen, "the key does not match the certificate", t->cert_file);
      goto fail;
    }
  }
  if (t->server) {
    if (t->ca_file) {
      STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca_file);
      if (!names || SSL_CTX_load_verify_locations(c, t->ca_file, NULL) != 1) {
        if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
        set_err(err, errlen, "cannot load the client CA", t->ca_file);
        goto fail;
      }
      SSL_CTX_set_client_CA_list(c, names);
    }
    switch (t->auth) {
    case AUTH_NONE: SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL); break;
    case AUTH_REQUEST: SSL_CTX_set_verify(c, SSL_VERIFY_PEER, verify_accept_any); break;
    case AUTH_REQUIRE_ANY:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_accept_any);
      break;
    case AUTH_VERIFY_IF_GIVEN: SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL); break;
    case AUTH_REQUIRE_VERIFY:
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
      break;
    }
    /* session resumption needs a session id context once clients are
     * verified */
    static const unsigned char sid[] = "orrery";
    SSL_CTX_set_session_id_context(c, sid, sizeof(sid) - 1);
    SSL_CTX_set_alpn_select_cb(c, alpn_select, NULL);
  } else {
    if (t->ca_file) {
      if (SSL_CTX_load_verify_locations(c, t->ca_file, NULL) != 1) {
        set_err(err, errlen, "cannot load the CA", t->ca_file);
        goto fail;
      }
    } else {
      SSL_CTX_set_default_verify_paths(c);
    }
    SSL_CTX_set_verify(c, t->skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
  }
  ERR_clear_error();
  return c;
fail:
  SSL_CTX_free(c);
  return NULL;
}

static void stamp(const char *path, file_stamp *s) {
  struct stat st;
  memset(s, 0, sizeof(*s));
  if (!path || stat(path, &st) != 0) return;
  s->ok = 1;
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  s->size = st.st_size;
  s->mtime = st.st_mtim;
}

static void stamp_all(net_tls_ctx *t, file_stamp out[3]) {
  stamp(t->cert_file, &out[0]);
  stamp(t->key_file, &out[1]);
  stamp(t->ca_file, &out[2]);
}

int net_tls_ctx_reload(net_tls_ctx *t, char *err, size_t errlen) {
  char e[256] = "";
  file_stamp now[3];
  stamp_all(t, now);
  SSL_CTX *c = build(t, e, sizeof(e));
  if (!c) {
    orr_log_error("cannot reload TLS certificates, keeping the previous ones", "err", e, NULL);
    if (err && errlen) snprintf(err, errlen, "%s", e);
    /* the same files are not retried until they change again */
    memcpy(t->stamps, now, sizeof(now));
    return ORR_EINVAL;
  }
  SSL_CTX_free(t->ssl_ctx); /* connections in flight hold their own reference */
  t->ssl_ctx = c;
  memcpy(t->stamps, now, sizeof(now));
  t->reloads++;
  orr_log_info("TLS certificates loaded", "cert", t->cert_file ? t->cert_file : "", NULL);
  return 0;
}

int net_tls_ctx_reload_all(char *err, size_t errlen) {
  int first = 0;
  for (net_tls_ctx *t = all_ctxs; t; t = t->next) {
    int rc = net_tls_ctx_reload(t, first ? NULL : err, first ? 0 : errlen);
    if (rc && !first) first = rc;
  }
  return first;
}

static void on_timer(uv_timer_t *tm) {
  net_tls_ctx *t = tm->data;
  file_stamp now[3];
  stamp_all(t, now);
  for (int i = 0; i < 3; i++) {
    file_stamp *a = &now[i], *b = &t->stamps[i];
    if (a->ok != b->ok || a->dev != b->dev || a->ino != b->ino || a->size != b->size ||
        a->mtime.tv_sec != b->mtime.tv_sec || a->mtime.tv_nsec != b->mtime.tv_nsec) {
      net_tls_ctx_reload(t, NULL, 0);
      return;
    }
  }
}

static char *dup_opt(const char *s) { return s && *s ? strdup(s) : NULL; }

static void ctx_destroy(net_tls_ctx *t) {
  SSL_CTX_free(t->ssl_ctx);
  free(t->cert_file);
  free(t->key_file);
  free(t->ca_file);
  free(t->server_name);
  free(t->ciphers);
  free(t);
}

static void on_timer_closed(uv_handle_t *h) { ctx_destroy(h->data); }

static int ctx_finish(net_tls_ctx *t, uv_loop_t *loop, net_tls_ctx **out, char *err,
                      size_t errlen) {
  if ((t->cert_file && !t->cert_file[0]) || (t->key_file && !t->key_file[0])) return ORR_EINVAL;
  stamp_all(t, t->stamps);
  t->ssl_ctx = build(t, err, errlen);
  if (!t->ssl_ctx) {
    ctx_destroy(t);
    return ORR_EINVAL;
  }
  t->loop = loop;
  t->refs = 1;
  uint64_t every = RELOAD_INTERVAL_MS;
  const char *env = getenv("ORRERY_TLS_RELOAD_INTERVAL_MS");
  if (env && atoll(env) > 0) every = (uint64_t)atoll(env);
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
  uv_timer_start(&t->timer, on_timer, every, every);
  uv_unref((uv_handle_t *)&t->timer);
  t->next = all_ctxs;
  all_ctxs = t;
  *out = t;
  return 0;
}

int net_tls_ctx_new_server(const net_tls_server_opts *o, uv_loop_t *loop, net_tls_ctx **out,
                           char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  *out = NULL;
  if (!o || !loop) return ORR_EINVAL;
  if (!o->cert_file || !*o->cert_file || !o->key_file || !*o->key_file) {
    snprintf(err, errlen, "a TLS server needs both a certificate and a key file");
    return ORR_EINVAL;
  }
  net_tls_ctx *t = calloc(1, sizeof(*t));
  if (!t) return ORR_ENOMEM;
  t->server = 1;
  /* Prometheus's web config defaults to TLS 1.2; Thanos's gRPC flag passes
   * its own default ("1.3") explicitly. */
  t->min_proto = TLS1_2_VERSION;
  if (o->min_version && *o->min_version && !(t->min_proto = parse_version(o->min_version))) {
    snprintf(err, errlen, "unknown TLS version %s (want TLS10, TLS11, TLS12 or TLS13)",
             o->min_version);
    free(t);
    return ORR_EINVAL;
  }
  int has_ca = o->client_ca_file && *o->client_ca_file;
  if (o->client_auth_type && *o->client_auth_type) {
    if (parse_auth(o->client_auth_type, &t->auth)) {
      snprintf(err, errlen, "invalid client_auth_type %s", o->client_auth_type);
      free(t);
      return ORR_EINVAL;
    }
    /* as Prometheus's exporter-toolkit: a CA without a policy that uses it
     * is a mistake */
    if (has_ca && t->auth == AUTH_NONE) {
      snprintf(err, errlen, "Client CA's have been configured without a Client Auth Policy");
      free(t);
      return ORR_EINVAL;
    }
  } else {
    /* Thanos: a client CA means client certificates are required */
    t->auth = has_ca ? AUTH_REQUIRE_VERIFY : AUTH_NONE;
  }
  if ((t->auth == AUTH_VERIFY_IF_GIVEN || t->auth == AUTH_REQUIRE_VERIFY) && !has_ca) {
    snprintf(err, errlen, "client_auth_type %s needs a client_ca_file", o->client_auth_type);
    free(t);
    return ORR_EINVAL;
  }
  int rc = map_ciphers(o->cipher_suites, o->ncipher_suites, &t->ciphers, err, errlen);
  if (rc) {
    free(t);
    return rc;
  }
  t->cert_file = dup_opt(o->cert_file);
  t->key_file = dup_opt(o->key_file);
  t->ca_file = dup_opt(o->client_ca_file);
  return ctx_finish(t, loop, out, err, errlen);
}

int net_tls_ctx_new_client(const net_tls_client_opts *o, uv_loop_t *loop, net_tls_ctx **out,
                           char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  *out = NULL;
  if (!o || !loop) return ORR_EINVAL;
  int has_cert = o->cert_file && *o->cert_file, has_key = o->key_file && *o->key_file;
  if (has_cert != has_key) {
    snprintf(err, errlen, "a client certificate needs both a certificate and a key file");
    return ORR_EINVAL;
  }
  net_tls_ctx *t = calloc(1, sizeof(*t));
  if (!t) return ORR_ENOMEM;
  t->min_proto = TLS1_2_VERSION;
  if (o->min_version && *o->min_version && !(t->min_proto = parse_version(o->min_version))) {
    snprintf(err, errlen, "unknown TLS version %s", o->min_version);
    free(t);
    return ORR_EINVAL;
  }
  t->skip_verify = o->insecure_skip_verify;
  t->cert_file = dup_opt(o->cert_file);
  t->key_file = dup_opt(o->key_file);
  t->ca_file = dup_opt(o->ca_file);
  t->server_name = dup_opt(o->server_name);
  return ctx_finish(t, loop, out, err, errlen);
}

net_tls_ctx *net_tls_ctx_ref(net_tls_ctx *t) {
  if (t) t->refs++;
  return t;
}

void net_tls_ctx_unref(net_tls_ctx *t) {
  if (!t || --t->refs > 0) return;
  for (net_tls_ctx **p = &all_ctxs; *p; p = &(*p)->next)
    if (*p == t) {
      *p = t->next;
      break;
    }
  /* A daemon tearing its loop down may have closed every handle already
   * (uv_walk), the timer too: then nothing of the loop refers to it. */
  if (uv_is_closing((uv_handle_t *)&t->timer)) ctx_destroy(t);
  else uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}

uint64_t net_tls_ctx_reloads(const net_tls_ctx *t) { return t->reloads; }

/* ---------------------------------------------------------------- connections */

int net__tls_new(net_tls_ctx *ctx, const char *alpn, const char *peer, const char *host,
                 net__tls **out) {
  *out = NULL;
  net__tls *t = calloc(1, sizeof(*t));
  if (!t) return ORR_ENOMEM;
  t->server = ctx->server;
  t->alpn = alpn;
  snprintf(t->peer, sizeof(t->peer), "%s", peer ? peer : "");
  t->ssl = SSL_new(ctx->ssl_ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    SSL_free(t->ssl);
    BIO_free(t->rbio);
    BIO_free(t->wbio);
    free(t);
    ERR_clear_error();
    return ORR_ENOMEM;
  }
  /* an empty read BIO means "wait for more", not EOF */
  BIO_set_mem_eof_return(t->rbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_app_data(t->ssl, t);
  if (t->server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (alpn) {
      unsigned char wire[32];
      size_t l = strlen(alpn);
      if (l < sizeof(wire) - 1) {
        wire[0] = (unsigned char)l;
        memcpy(wire + 1, alpn, l);
        SSL_set_alpn_protos(t->ssl, wire, (unsigned)(l + 1));
      }
    }
    /* Thanos/grpc-go: the server name is --grpc-client-server-name, else
     * the host dialled. It is sent as SNI (not for an IP address) and the
     * server's certificate must name it. */
    const char *name = ctx->server_name ? ctx->server_name : host;
    if (name && *name) {
      unsigned char ipbuf[16];
      int is_ip = inet_pton(AF_INET, name, ipbuf) == 1 || inet_pton(AF_INET6, name, ipbuf) == 1;
      if (!is_ip) SSL_set_tlsext_host_name(t->ssl, name);
      if (!ctx->skip_verify) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
        if (is_ip) X509_VERIFY_PARAM_set1_ip_asc(vp, name);
        else SSL_set1_host(t->ssl, name);
      }
    }
  }
  *out = t;
  return 0;
}

void net__tls_free(net__tls *t) {
  if (!t) return;
  SSL_free(t->ssl); /* frees both BIOs */
  free(t);
}

static void log_failure(net__tls *t, int ssl_err) {
  if (t->logged) return;
  t->logged = 1;
  char why[256] = "";
  long vr = SSL_get_verify_result(t->ssl);
  unsigned long e = ERR_peek_error();
  if (vr != X509_V_OK) snprintf(why, sizeof(why), "%s", X509_verify_cert_error_string(vr));
  else if (e) ERR_error_string_n(e, why, sizeof(why));
  else if (ssl_err == SSL_ERROR_SYSCALL) snprintf(why, sizeof(why), "connection closed");
  else snprintf(why, sizeof(why), "TLS error %d", ssl_err);
  ERR_clear_error();
  orr_log_warn(t->handshake_done ? "TLS connection failed" : "TLS handshake failed",
               t->server ? "client" : "server", t->peer[0] ? t->peer : "unknown", "err", why,
               NULL);
}

/* Returns 0, or ORR_EPROTO after logging. */
static int check_alpn(net__tls *t) {
  if (t->server || !t->alpn) return 0;
  const unsigned char *p;
  unsigned l;
  SSL_get0_alpn_selected(t->ssl, &p, &l);
  /* a server that does not speak ALPN is let through; one that chose
   * another protocol is not */
  if (l == 0 || (l == strlen(t->alpn) && memcmp(p, t->alpn, l) == 0)) return 0;
  if (!t->logged) {
    t->logged = 1;
    orr_log_warn("TLS handshake failed", "server", t->peer, "err",
                 "the server did not agree on the application protocol", "want", t->alpn, NULL);
  }
  t->failed = 1;
  return ORR_EPROTO;
}

int net__tls_feed(net__tls *t, const void *p, size_t n) {
  if (n && BIO_write(t->rbio, p, (int)n) != (int)n) return ORR_ENOMEM;
  return 0;
}

int net__tls_handshake(net__tls *t) {
  if (t->handshake_done) return 0;
  if (t->failed) return ORR_EPROTO;
  int r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    t->handshake_done = 1;
    return check_alpn(t);
  }
  int e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return ORR_EAGAIN;
  t->failed = 1;
  log_failure(t, e);
  return ORR_EPROTO;
}

ssize_t net__tls_read(net__tls *t, void *out, size_t cap) {
  if (t->failed) return ORR_EPROTO;
  if (!t->handshake_done) {
    int rc = net__tls_handshake(t);
    if (rc == ORR_EAGAIN) return 0;
    if (rc) return rc;
  }
  if (cap == 0) return 0;
  size_t got = 0;
  int r = SSL_read_ex(t->ssl, out, cap, &got);
  if (r == 1) return (ssize_t)got;
  int e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) return ORR_ECLOSED;
  t->failed = 1;
  /* TLS 1.3 clients learn that the server refused their certificate only
   * here, after their side of the handshake finished */
  log_failure(t, e);
  return ORR_EPROTO;
}

int net__tls_write(net__tls *t, const void *p, size_t n) {
  if (t->failed) return ORR_EPROTO;
  if (n == 0) return 0;
  size_t w = 0;
  /* the write BIO grows as needed: SSL_write takes everything at once */
  if (SSL_write_ex(t->ssl, p, n, &w) != 1 || w != n) {
    t->failed = 1;
    ERR_clear_error();
    return ORR_EPROTO;
  }
  return 0;
}

void net__tls_shutdown(net__tls *t) {
  if (t->failed || !t->handshake_done || t->shut) return;
  t->shut = 1;
  SSL_shutdown(t->ssl);
  ERR_clear_error();
}

size_t net__tls_pending_out(const net__tls *t) { return BIO_ctrl_pending(t->wbio); }

size_t net__tls_take_out(net__tls *t, void *out, size_t cap) {
  int r = BIO_read(t->wbio, out, (int)(cap > INT32_MAX ? INT32_MAX : cap));
  return r > 0 ? (size_t)r : 0;
}
