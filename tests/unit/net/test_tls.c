/* test_tls.c: tls.c without sockets — contexts from files (option errors as
 * a user would see them), handshakes between two in-memory connections
 * (ALPN, server name, every client_auth_type, min versions, cipher names),
 * data both ways, and a reload that changes the certificate of new
 * connections only. Certificates come from tests/integration/tls/mkcerts.sh
 * (the openssl command), made once into a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net_int.h"

static char dir[256];
static uv_loop_t loop;

static const char *F(const char *name) {
  static char bufs[8][320];
  static int i;
  char *b = bufs[i++ % 8];
  snprintf(b, 320, "%s/%s", dir, name);
  return b;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/orrery-test-tls-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "bash '%s' '%s/c' >/dev/null 2>&1", MKCERTS, dir);
  if (system(cmd) != 0) return -1;
  strcat(dir, "/c");
  uv_loop_init(&loop);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  char cmd[600];
  dir[strlen(dir) - 2] = '\0';
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static net_tls_ctx *server(const char *cert, const char *key, const char *ca, const char *auth,
                           const char *minv) {
  net_tls_server_opts o = {.cert_file = F(cert), .key_file = F(key),
                           .client_ca_file = ca ? F(ca) : NULL, .client_auth_type = auth,
                           .min_version = minv};
  net_tls_ctx *t = NULL;
  char err[256];
  int rc = net_tls_ctx_new_server(&o, &loop, &t, err, sizeof(err));
  if (rc) fprintf(stderr, "server ctx: %s\n", err);
  assert_int_equal(rc, 0);
  return t;
}

static net_tls_ctx *client(const char *ca, const char *cert, const char *key, const char *name) {
  net_tls_client_opts o = {.ca_file = F(ca), .cert_file = cert ? F(cert) : NULL,
                           .key_file = key ? F(key) : NULL, .server_name = name};
  net_tls_ctx *t = NULL;
  char err[256];
  int rc = net_tls_ctx_new_client(&o, &loop, &t, err, sizeof(err));
  if (rc) fprintf(stderr, "client ctx: %s\n", err);
  assert_int_equal(rc, 0);
  return t;
}

/* Moves the bytes each side has to send to the other until neither has
 * any; returns 0 once both handshakes are done, -1 when one side failed. */
static int pump(net__tls *c, net__tls *s) {
  char buf[65536];
  for (int round = 0; round < 20; round++) {
    (void)net__tls_handshake(c);
    (void)net__tls_handshake(s);
    /* TLS 1.3: a server that refuses the client's certificate says so
     * after the client finished; a read surfaces the alert */
    if (c->handshake_done) (void)net__tls_read(c, buf, sizeof(buf));
    if (s->handshake_done) (void)net__tls_read(s, buf, sizeof(buf));
    size_t moved = 0, n;
    while ((n = net__tls_take_out(c, buf, sizeof(buf))) > 0) {
      moved += n;
      assert_int_equal(net__tls_feed(s, buf, n), 0);
    }
    while ((n = net__tls_take_out(s, buf, sizeof(buf))) > 0) {
      moved += n;
      assert_int_equal(net__tls_feed(c, buf, n), 0);
    }
    if (c->failed || s->failed) return -1;
    if (moved == 0 && c->handshake_done && s->handshake_done) return 0;
  }
  return c->failed || s->failed || !c->handshake_done || !s->handshake_done ? -1 : 0;
}

typedef struct pair {
  net__tls *c, *s;
} pair;

static int connect_pair(net_tls_ctx *cc, net_tls_ctx *sc, const char *host, pair *p) {
  assert_int_equal(net__tls_new(cc, "h2", "127.0.0.1:1", host, &p->c), 0);
  assert_int_equal(net__tls_new(sc, "h2", "127.0.0.1:2", NULL, &p->s), 0);
  return pump(p->c, p->s);
}

static void pair_free(pair *p) {
  net__tls_free(p->c);
  net__tls_free(p->s);
}

static void expect(net_tls_ctx *cc, net_tls_ctx *sc, const char *host, int ok) {
  pair p;
  int rc = connect_pair(cc, sc, host, &p);
  if (ok) assert_int_equal(rc, 0);
  else assert_int_equal(rc, -1);
  pair_free(&p);
}

static void test_option_errors(void **state) {
  (void)state;
  net_tls_ctx *t = NULL;
  char err[256];
  net_tls_server_opts o = {.cert_file = F("server.crt")};
  assert_int_equal(net_tls_ctx_new_server(&o, &loop, &t, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "certificate and a key"));
  o.key_file = F("server.key");
  o.min_version = "TLS14";
  assert_int_equal(net_tls_ctx_new_server(&o, &loop, &t, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "TLS14"));
  o.min_version = NULL;
  o.client_auth_type = "RequireClientCert";
  assert_int_equal(net_tls_ctx_new_server(&o, &loop, &t, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "client_auth_type"));
  o.client_auth_type = "NoClientCert";
  o.client_ca_file = F("ca.crt");
  assert_int_equal(net_tls_ctx_new_server(&o, &loop, &t, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "without a Client Auth Policy"));
  o.client_ca_file = NULL;
  o.client_auth_type = "RequireAndVerifyClientCert";
  assert_int_equal(net_tls_ctx_new_server(&o, &loop, &t, err, sizeof(err)), ORR_EINVAL);
  o.client_auth_type = NULL;
  const char *bad[] = {"TLS_NOT_A_SUITE"};
  o.cipher_suites = bad;
  o.ncipher_suites = 1;
  assert_int_equal(net_tls_ctx_new_server(&o, &loop, &t, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "TLS_NOT_A_SUITE"));
  o.ncipher_suites = 0;
  o.key_file = F("client.key"); /* not the certificate's key */
  assert_int_equal(net_tls_ctx_new_server(&o, &loop, &t, err, sizeof(err)), ORR_EINVAL);
  o.key_file = F("missing.key");
  assert_int_equal(net_tls_ctx_new_server(&o, &loop, &t, err, sizeof(err)), ORR_EINVAL);
  assert_non_null(strstr(err, "missing.key"));
  assert_null(t);
  net_tls_client_opts co = {.cert_file = F("client.crt")};
  assert_int_equal(net_tls_ctx_new_client(&co, &loop, &t, err, sizeof(err)), ORR_EINVAL);
}

static void test_handshake_data_alpn(void **state) {
  (void)state;
  net_tls_ctx *sc = server("server.crt", "server.key", NULL, NULL, NULL);
  net_tls_ctx *cc = client("ca.crt", NULL, NULL, NULL);
  pair p;
  assert_int_equal(connect_pair(cc, sc, "localhost", &p), 0);
  const unsigned char *alpn;
  unsigned alen;
  SSL_get0_alpn_selected(p.c->ssl, &alpn, &alen);
  assert_int_equal(alen, 2);
  assert_memory_equal(alpn, "h2", 2);
  /* 100 KiB one way, then an answer */
  static char big[100 * 1024], got[100 * 1024 + 16];
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (char)(i * 7);
  assert_int_equal(net__tls_write(p.c, big, sizeof(big)), 0);
  char buf[65536];
  size_t n, have = 0;
  while ((n = net__tls_take_out(p.c, buf, sizeof(buf))) > 0) net__tls_feed(p.s, buf, n);
  ssize_t r;
  while ((r = net__tls_read(p.s, got + have, sizeof(got) - have)) > 0) have += (size_t)r;
  assert_int_equal(have, sizeof(big));
  assert_memory_equal(got, big, sizeof(big));
  assert_int_equal(net__tls_write(p.s, "pong", 4), 0);
  while ((n = net__tls_take_out(p.s, buf, sizeof(buf))) > 0) net__tls_feed(p.c, buf, n);
  r = net__tls_read(p.c, got, sizeof(got));
  assert_int_equal(r, 4);
  assert_memory_equal(got, "pong", 4);
  /* close_notify reads as ORR_ECLOSED */
  net__tls_shutdown(p.s);
  while ((n = net__tls_take_out(p.s, buf, sizeof(buf))) > 0) net__tls_feed(p.c, buf, n);
  assert_int_equal(net__tls_read(p.c, got, sizeof(got)), ORR_ECLOSED);
  pair_free(&p);
  net_tls_ctx_unref(cc);
  net_tls_ctx_unref(sc);
}

static void test_server_name(void **state) {
  (void)state;
  net_tls_ctx *sc = server("server.crt", "server.key", NULL, NULL, NULL);
  net_tls_ctx *cc = client("ca.crt", NULL, NULL, NULL);
  expect(cc, sc, "localhost", 1);
  expect(cc, sc, "127.0.0.1", 1);  /* IP SAN */
  expect(cc, sc, "other.example", 0);
  expect(cc, sc, "127.0.0.2", 0);
  net_tls_ctx *named = client("ca.crt", NULL, NULL, "orrery.test");
  expect(named, sc, "10.1.2.3", 1); /* the configured name wins over the host */
  net_tls_ctx *otherca = client("otherca.crt", NULL, NULL, NULL);
  expect(otherca, sc, "localhost", 0);
  net_tls_client_opts skip = {.ca_file = F("otherca.crt"), .insecure_skip_verify = true};
  net_tls_ctx *sk;
  char err[256];
  assert_int_equal(net_tls_ctx_new_client(&skip, &loop, &sk, err, sizeof(err)), 0);
  expect(sk, sc, "anything", 1);
  net_tls_ctx_unref(sk);
  net_tls_ctx_unref(otherca);
  net_tls_ctx_unref(named);
  net_tls_ctx_unref(cc);
  net_tls_ctx_unref(sc);
}

static void test_client_auth_types(void **state) {
  (void)state;
  net_tls_ctx *none = client("ca.crt", NULL, NULL, NULL);
  net_tls_ctx *good = client("ca.crt", "client.crt", "client.key", NULL);
  net_tls_ctx *other = client("ca.crt", "otherclient.crt", "otherclient.key", NULL);
  net_tls_ctx *expired = client("ca.crt", "expired.crt", "expired.key", NULL);
  static const struct {
    const char *auth;
    int none, good, other, expired;
  } t[] = {
      {"NoClientCert", 1, 1, 1, 1},
      {"RequestClientCert", 1, 1, 1, 1},
      {"RequireAnyClientCert", 0, 1, 1, 1},
      {"VerifyClientCertIfGiven", 1, 1, 0, 0},
      {"RequireAndVerifyClientCert", 0, 1, 0, 0},
      {NULL /* Thanos: a client CA requires and verifies */, 0, 1, 0, 0},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    int needs_ca = !t[i].auth || strstr(t[i].auth, "Verify") != NULL;
    net_tls_ctx *sc = server("server.crt", "server.key", needs_ca ? "ca.crt" : NULL, t[i].auth, NULL);
    expect(none, sc, "localhost", t[i].none);
    expect(good, sc, "localhost", t[i].good);
    expect(other, sc, "localhost", t[i].other);
    expect(expired, sc, "localhost", t[i].expired);
    net_tls_ctx_unref(sc);
  }
  net_tls_ctx_unref(none);
  net_tls_ctx_unref(good);
  net_tls_ctx_unref(other);
  net_tls_ctx_unref(expired);
}

static void test_versions_and_ciphers(void **state) {
  (void)state;
  net_tls_ctx *cc = client("ca.crt", NULL, NULL, NULL);
  net_tls_ctx *s13 = server("server.crt", "server.key", NULL, NULL, "1.3");
  pair p;
  assert_int_equal(connect_pair(cc, s13, "localhost", &p), 0);
  assert_int_equal(SSL_version(p.s->ssl), TLS1_3_VERSION);
  pair_free(&p);
  /* a client capped at TLS 1.2 cannot reach a TLS13 server */
  net__tls *c, *s;
  assert_int_equal(net__tls_new(cc, "h2", "x", "localhost", &c), 0);
  SSL_set_max_proto_version(c->ssl, TLS1_2_VERSION);
  assert_int_equal(net__tls_new(s13, "h2", "x", NULL, &s), 0);
  assert_int_equal(pump(c, s), -1);
  net__tls_free(c);
  net__tls_free(s);
  /* Go's cipher names, the CHACHA20 shorthand too; the EC key picks ECDSA */
  const char *suites[] = {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
                          "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"};
  net_tls_server_opts o = {.cert_file = F("server.crt"), .key_file = F("server.key"),
                           .min_version = "TLS12", .cipher_suites = suites, .ncipher_suites = 2};
  net_tls_ctx *s12;
  char err[256];
  assert_int_equal(net_tls_ctx_new_server(&o, &loop, &s12, err, sizeof(err)), 0);
  assert_int_equal(net__tls_new(cc, "h2", "x", "localhost", &c), 0);
  SSL_set_max_proto_version(c->ssl, TLS1_2_VERSION);
  assert_int_equal(net__tls_new(s12, "h2", "x", NULL, &s), 0);
  assert_int_equal(pump(c, s), 0);
  assert_string_equal(SSL_CIPHER_standard_name(SSL_get_current_cipher(s->ssl)),
                      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
  net__tls_free(c);
  net__tls_free(s);
  net_tls_ctx_unref(s12);
  net_tls_ctx_unref(s13);
  net_tls_ctx_unref(cc);
}

/* The serial of the certificate |c|'s peer presented, hex, in |out|. */
static const char *peer_serial(net__tls *c, char *out, size_t n) {
  X509 *x = SSL_get1_peer_certificate(c->ssl);
  assert_non_null(x);
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *h = BN_bn2hex(bn);
  snprintf(out, n, "%s", h);
  OPENSSL_free(h);
  BN_free(bn);
  X509_free(x);
  return out;
}

static void copy(const char *from, const char *to) {
  char cmd[800];
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s.tmp' && mv '%s.tmp' '%s'", F(from), F(to), F(to), F(to));
  assert_int_equal(system(cmd), 0);
}

static void test_reload(void **state) {
  (void)state;
  copy("server.crt", "live.crt");
  copy("server.key", "live.key");
  net_tls_ctx *sc = server("live.crt", "live.key", NULL, NULL, NULL);
  net_tls_ctx *cc = client("ca.crt", NULL, NULL, NULL);
  pair old;
  assert_int_equal(connect_pair(cc, sc, "localhost", &old), 0);
  char s1[128], s2[128];
  peer_serial(old.c, s1, sizeof(s1));
  /* a broken file: the reload fails and the old certificate stays */
  copy("client.key", "live.key");
  char err[256] = "";
  assert_int_equal(net_tls_ctx_reload(sc, err, sizeof(err)), ORR_EINVAL);
  assert_true(err[0] != '\0');
  expect(cc, sc, "localhost", 1);
  /* the new pair: new connections get it, the old one still works */
  copy("server2.key", "live.key");
  copy("server2.crt", "live.crt");
  uint64_t before = net_tls_ctx_reloads(sc);
  assert_int_equal(net_tls_ctx_reload_all(err, sizeof(err)), 0);
  assert_int_equal(net_tls_ctx_reloads(sc), before + 1);
  pair fresh;
  assert_int_equal(connect_pair(cc, sc, "localhost", &fresh), 0);
  assert_string_not_equal(peer_serial(fresh.c, s2, sizeof(s2)), s1);
  assert_string_equal(peer_serial(old.c, s2, sizeof(s2)), s1);
  char buf[4096];
  size_t n;
  assert_int_equal(net__tls_write(old.c, "still", 5), 0);
  while ((n = net__tls_take_out(old.c, buf, sizeof(buf))) > 0) net__tls_feed(old.s, buf, n);
  assert_int_equal(net__tls_read(old.s, buf, sizeof(buf)), 5);
  pair_free(&fresh);
  pair_free(&old);
  net_tls_ctx_unref(cc);
  net_tls_ctx_unref(sc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_option_errors),      cmocka_unit_test(test_handshake_data_alpn),
      cmocka_unit_test(test_server_name),        cmocka_unit_test(test_client_auth_types),
      cmocka_unit_test(test_versions_and_ciphers), cmocka_unit_test(test_reload),
  };
  orr_log_setup(ORR_LOG_ERROR, ORR_LOG_LOGFMT);
  return cmocka_run_group_tests(tests, setup, teardown);
}
