/* test_webconfig.c: the web configuration parser (--http.config), basic-auth
 * checks (bcrypt via libcrypt, the success cache, the dummy hash for unknown
 * users) and the HTTP client config parser — with no socket. */
#include <crypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net.h"

static char g_dir[] = "/tmp/orr_webconfig_XXXXXX";
static char g_cert[300], g_key[300], g_ca[300];

/* bcrypt of |pw| at |cost| ("$2y$" as htpasswd writes). */
static void bcrypt_hash(const char *pw, int cost, char out[128]) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  struct crypt_data cd;
  memset(&cd, 0, sizeof cd);
  assert_non_null(crypt_gensalt_rn("$2y$", (unsigned long)cost, NULL, 0, setting, sizeof setting));
  char *h = crypt_rn(pw, setting, &cd, sizeof cd);
  assert_non_null(h);
  assert_int_equal(strlen(h), 60);
  snprintf(out, 128, "%s", h);
}

static int setup(void **st) {
  if (!mkdtemp(g_dir)) return -1;
  snprintf(g_cert, sizeof g_cert, "%s/server.crt", g_dir);
  snprintf(g_key, sizeof g_key, "%s/server.key", g_dir);
  snprintf(g_ca, sizeof g_ca, "%s/ca.crt", g_dir);
  const char *files[] = {g_cert, g_key, g_ca};
  for (int i = 0; i < 3; i++) {
    FILE *f = fopen(files[i], "w");
    if (!f) return -1;
    fputs("not checked by the parser\n", f);
    fclose(f);
  }
  return 0;
}

static int teardown(void **st) {
  unlink(g_cert);
  unlink(g_key);
  unlink(g_ca);
  rmdir(g_dir);
  return 0;
}

static net_webconfig *parse_ok(const char *yaml) {
  net_webconfig *c = NULL;
  char err[512] = "";
  int rc = net_webconfig_parse(yaml, strlen(yaml), &c, err, sizeof err);
  if (rc) fail_msg("unexpected error: %s\n%s", err, yaml);
  return c;
}

/* Parses |yaml|, expects ORR_EINVAL and an error containing |want|. */
static void parse_bad(const char *yaml, const char *want) {
  net_webconfig *c = NULL;
  char err[512] = "";
  int rc = net_webconfig_parse(yaml, strlen(yaml), &c, err, sizeof err);
  if (rc != ORR_EINVAL || !strstr(err, want) || strncmp(err, "web config: ", 12) != 0)
    fail_msg("want error with \"%s\", got rc %d \"%s\" for:\n%s", want, rc, err, yaml);
  assert_null(c);
}

static void test_full_config(void **st) {
  char hash[128], yaml[2048];
  bcrypt_hash("pw", 4, hash);
  snprintf(yaml, sizeof yaml,
           "tls_server_config:\n"
           "  cert_file: %s\n"
           "  key_file: %s\n"
           "  client_ca_file: %s\n"
           "  client_auth_type: RequireAndVerifyClientCert\n"
           "  min_version: TLS13\n"
           "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n"
           "  prefer_server_cipher_suites: false\n"
           "  curve_preferences: [X25519]\n"
           "http_server_config:\n"
           "  http2: false\n"
           "  headers:\n"
           "    X-Frame-Options: deny\n"
           "    Content-Security-Policy: \"default-src 'self'\"\n"
           "    X-XSS-Protection: ''\n"
           "basic_auth_users:\n"
           "  alice: %s\n",
           g_cert, g_key, g_ca, hash);
  net_webconfig *c = parse_ok(yaml);
  const net_webconfig_tls *t = net_webconfig_tls_config(c);
  assert_non_null(t);
  assert_string_equal(t->cert_file, g_cert);
  assert_string_equal(t->client_ca_file, g_ca);
  assert_string_equal(t->client_auth_type, "RequireAndVerifyClientCert");
  assert_string_equal(t->min_version, "TLS13");
  assert_string_equal(t->max_version, "TLS13");
  assert_int_equal(t->ncipher_suites, 2);
  assert_string_equal(t->cipher_suites[1], "TLS_AES_128_GCM_SHA256");
  assert_false(t->prefer_server_cipher_suites);
  assert_int_equal(t->ncurve_preferences, 1);
  size_t nh;
  const net_http_kv *h = net_webconfig_headers(c, &nh);
  assert_int_equal(nh, 2); /* a blank value leaves the header unset */
  assert_string_equal(h[0].name, "X-Frame-Options");
  assert_string_equal(h[1].value, "default-src 'self'");
  assert_int_equal(net_webconfig_users(c), 1);
  /* the dump shows <secret> for the hash, as Prometheus's config dumps */
  orr_buf b = {0};
  assert_int_equal(net_webconfig_dump(c, &b), 0);
  assert_non_null(strstr(b.data, "\"alice\": <secret>"));
  assert_null(strstr(b.data, hash));
  assert_null(strstr(b.data, "$2y$"));
  orr_buf_free(&b);
  net_webconfig_release(c);
}

static void test_defaults_and_empty(void **st) {
  net_webconfig *c = parse_ok("");
  assert_null(net_webconfig_tls_config(c));
  assert_int_equal(net_webconfig_users(c), 0);
  net_webconfig_release(c);
  /* no cert, key, CA nor auth type: plain HTTP, as exporter-toolkit */
  c = parse_ok("tls_server_config:\n  min_version: TLS13\n");
  assert_null(net_webconfig_tls_config(c));
  net_webconfig_release(c);
  char yaml[1024];
  snprintf(yaml, sizeof yaml, "tls_server_config:\n  cert_file: %s\n  key_file: %s\n", g_cert,
           g_key);
  c = parse_ok(yaml);
  const net_webconfig_tls *t = net_webconfig_tls_config(c);
  assert_string_equal(t->client_auth_type, "NoClientCert");
  assert_string_equal(t->min_version, "TLS12");
  assert_string_equal(t->max_version, "TLS13");
  assert_true(t->prefer_server_cipher_suites);
  assert_null(t->client_ca_file);
  net_webconfig_release(c);
}

static void test_strict_errors(void **st) {
  char yaml[1024];
  parse_bad("tls_server_config: {}\nfoo: 1\n", "line 2: field foo not found in web config");
  parse_bad("tls_server_config:\n  cert_fil: x\n", "field cert_fil not found in tls_server_config");
  parse_bad("http_server_config:\n  header: {}\n", "field header not found in http_server_config");
  parse_bad("http_server_config:\n  headers:\n    Server: x\n",
            "HTTP header \"Server\" can not be configured");
  parse_bad("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "invalid value for X-Frame-Options");
  parse_bad("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
            "invalid value for X-Content-Type-Options");
  parse_bad("http_server_config:\n  http2: maybe\n", "http_server_config.http2: expected a boolean");
  parse_bad("basic_auth_users: [a, b]\n", "basic_auth_users: expected a map");
  parse_bad("- 1\n", "top level: expected a map");
  parse_bad("a: [\n", "web config: yaml: line");
  parse_bad("tls_server_config:\n  key_file: k\n", "missing cert_file");
  snprintf(yaml, sizeof yaml, "tls_server_config:\n  cert_file: %s\n", g_cert);
  parse_bad(yaml, "missing key_file");
  snprintf(yaml, sizeof yaml, "tls_server_config:\n  cert_file: %s/nope.crt\n  key_file: %s\n",
           g_dir, g_key);
  parse_bad(yaml, "tls_server_config.cert_file: cannot read");
  snprintf(yaml, sizeof yaml,
           "tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_auth_type: Maybe\n",
           g_cert, g_key);
  parse_bad(yaml, "Invalid ClientAuth: Maybe");
  snprintf(yaml, sizeof yaml,
           "tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_ca_file: %s\n", g_cert,
           g_key, g_ca);
  parse_bad(yaml, "Client CA's have been configured without a Client Auth Policy");
  snprintf(yaml, sizeof yaml,
           "tls_server_config:\n  cert_file: %s\n  key_file: %s\n"
           "  client_auth_type: RequireAndVerifyClientCert\n",
           g_cert, g_key);
  parse_bad(yaml, "needs client_ca_file");
  snprintf(yaml, sizeof yaml,
           "tls_server_config:\n  cert_file: %s\n  key_file: %s\n  min_version: TLS14\n", g_cert,
           g_key);
  parse_bad(yaml, "min_version: unknown TLS version: TLS14");
  snprintf(yaml, sizeof yaml,
           "tls_server_config:\n  cert_file: %s\n  key_file: %s\n  cipher_suites: [RC4]\n",
           g_cert, g_key);
  parse_bad(yaml, "cipher_suites: unknown cipher: RC4");
  snprintf(yaml, sizeof yaml,
           "tls_server_config:\n  cert_file: %s\n  key_file: %s\n  min_version: TLS13\n"
           "  max_version: TLS12\n",
           g_cert, g_key);
  parse_bad(yaml, "min_version TLS13 is above max_version TLS12");
}

/* A bad hash is named by its user only: the file's values are <secret>. */
static void test_bad_hash_not_echoed(void **st) {
  const char *yaml = "basic_auth_users:\n  bob: plaintext-password-123\n";
  net_webconfig *c = NULL;
  char err[512] = "";
  assert_int_equal(net_webconfig_parse(yaml, strlen(yaml), &c, err, sizeof err), ORR_EINVAL);
  assert_non_null(strstr(err, "user \"bob\" is not a bcrypt hash"));
  assert_null(strstr(err, "plaintext-password-123"));
  parse_bad("basic_auth_users:\n  bob: $2x$10$abcdefghijklmnopqrstuv1234567890123456789012345678901\n",
            "not a bcrypt hash");
  parse_bad("basic_auth_users:\n  bob: $2y$03$abcdefghijklmnopqrstuv1234567890123456789012345678901\n",
            "not a bcrypt hash");
}

static void test_parse_basic(void **st) {
  char buf[256];
  const char *u, *p;
  /* "alice:pa:ss" */
  assert_int_equal(net_webconfig_parse_basic("Basic YWxpY2U6cGE6c3M=", buf, sizeof buf, &u, &p), 0);
  assert_string_equal(u, "alice");
  assert_string_equal(p, "pa:ss");
  assert_int_equal(net_webconfig_parse_basic("basic YWxpY2U6cGE6c3M=", buf, sizeof buf, &u, &p), 0);
  assert_int_equal(net_webconfig_parse_basic("Bearer YWxpY2U6cGE6c3M=", buf, sizeof buf, &u, &p),
                   ORR_EINVAL);
  assert_int_equal(net_webconfig_parse_basic("Basic YWxpY2U", buf, sizeof buf, &u, &p), ORR_EINVAL);
  assert_int_equal(net_webconfig_parse_basic("Basic YWxpY2U=", buf, sizeof buf, &u, &p),
                   ORR_EINVAL); /* "alice": no colon */
  assert_int_equal(net_webconfig_parse_basic("Basic YQBiOmM=", buf, sizeof buf, &u, &p),
                   ORR_EINVAL); /* "a\0b:c" */
  assert_int_equal(net_webconfig_parse_basic("Basic YWxp!2U6cA==", buf, sizeof buf, &u, &p),
                   ORR_EINVAL);
  assert_int_equal(net_webconfig_parse_basic(NULL, buf, sizeof buf, &u, &p), ORR_EINVAL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Median time of 3 verifies. */
static double time_verify(net_webconfig *c, const char *user, const char *pw, bool want) {
  double t[3];
  for (int i = 0; i < 3; i++) {
    double s = now_s();
    assert_int_equal(net_webconfig_verify(c, user, pw), want);
    t[i] = now_s() - s;
  }
  double a = t[0] < t[1] ? t[0] : t[1], b = t[0] < t[1] ? t[1] : t[0];
  return t[2] < a ? a : t[2] > b ? b : t[2];
}

static void test_verify_cache_and_timing(void **st) {
  char h1[128], h2[128], yaml[512];
  bcrypt_hash("right", 9, h1);
  bcrypt_hash("other", 9, h2);
  snprintf(yaml, sizeof yaml, "basic_auth_users:\n  alice: %s\n  bob: '%s'\n", h1, h2);
  net_webconfig *c = parse_ok(yaml);
  assert_int_equal(net_webconfig_users(c), 2);
  double wrong = time_verify(c, "alice", "wrong", false);
  double unknown = time_verify(c, "mallory", "wrong", false);
  assert_true(net_webconfig_verify(c, "alice", "right"));
  double cached = time_verify(c, "alice", "right", true);
  assert_true(net_webconfig_verify(c, "bob", "other"));
  assert_false(net_webconfig_verify(c, "bob", "right"));
  assert_false(net_webconfig_verify(c, "alice", "other"));
  assert_false(net_webconfig_verify(c, "alice", ""));
  assert_false(net_webconfig_verify(c, "", ""));
  print_message("bcrypt cost 9: wrong password %.1f ms, unknown user %.1f ms, cached %.3f ms\n",
                wrong * 1e3, unknown * 1e3, cached * 1e3);
  /* an unknown user costs a bcrypt too: no user enumeration by timing */
  assert_true(unknown > wrong * 0.25);
  /* a cached success costs no bcrypt */
  assert_true(cached < wrong * 0.2);
  net_webconfig_release(c);
  /* without users every request passes */
  c = parse_ok("http_server_config: {}\n");
  assert_true(net_webconfig_verify(c, "anyone", "anything"));
  net_webconfig_release(c);
}

/* ---------------------------------------------------------------- client config */

static void test_client_config(void **st) {
  net_http_client_config c;
  char err[512] = "";
  const char *y =
      "basic_auth:\n  username: sc\n  password: hunter2-secret\n"
      "tls_config:\n  ca_file: /ca.pem\n  cert_file: /c.pem\n  key_file: /k.pem\n"
      "  server_name: prom.example\n  insecure_skip_verify: false\n";
  assert_int_equal(net_http_client_config_parse(y, strlen(y), &c, err, sizeof err), 0);
  assert_string_equal(c.username, "sc");
  assert_string_equal(c.password, "hunter2-secret");
  assert_string_equal(c.server_name, "prom.example");
  orr_buf b = {0};
  assert_int_equal(net_http_client_config_dump(&c, &b), 0);
  assert_non_null(strstr(b.data, "password: <secret>"));
  assert_null(strstr(b.data, "hunter2-secret"));
  orr_buf_free(&b);
  net_http_client_config_free(&c);

  y = "authorization:\n  credentials_file: /run/token\n";
  assert_int_equal(net_http_client_config_parse(y, strlen(y), &c, err, sizeof err), 0);
  assert_string_equal(c.auth_type, "Bearer");
  assert_string_equal(c.credentials_file, "/run/token");
  net_http_client_config_free(&c);
  y = "bearer_token: tok-secret-1\n";
  assert_int_equal(net_http_client_config_parse(y, strlen(y), &c, err, sizeof err), 0);
  assert_string_equal(c.credentials, "tok-secret-1");
  net_http_client_config_free(&c);

  struct {
    const char *yaml, *want;
  } bad[] = {
      {"bearer_token: a\nauthorization:\n  credentials: b\n", "at most one of bearer_token"},
      {"authorization:\n  type: Basic\n  credentials: x\n", "cannot be set to \"basic\""},
      {"basic_auth:\n  password: a\n  password_file: /b\n", "password & password_file"},
      {"basic_auth:\n  username: a\nauthorization:\n  credentials: zz-secret\n",
       "at most one of basic_auth"},
      {"tls_config:\n  cert_file: /c\n", "cert_file and key_file"},
      {"tls_config:\n  ca: x\n", "field ca not found in tls_config"},
      {"proxy: x\n", "field proxy not found in http client config"},
      {"tls_config:\n  insecure_skip_verify: perhaps\n", "expected a boolean"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = 0;
    int rc = net_http_client_config_parse(bad[i].yaml, strlen(bad[i].yaml), &c, err, sizeof err);
    if (rc != ORR_EINVAL || !strstr(err, bad[i].want) || strstr(err, "secret"))
      fail_msg("want \"%s\", got %d \"%s\"", bad[i].want, rc, err);
  }
}

static void test_url_redacted(void **st) {
  char b[256];
  assert_string_equal(net_url_redacted("http://u:p4ss@h:9090/x?y", b, sizeof b),
                      "http://u:xxxxx@h:9090/x?y");
  assert_string_equal(net_url_redacted("https://u:a@b@h/", b, sizeof b), "https://u:xxxxx@h/");
  assert_string_equal(net_url_redacted("http://u@h/", b, sizeof b), "http://u@h/");
  assert_string_equal(net_url_redacted("http://h:9090/a@b", b, sizeof b), "http://h:9090/a@b");
  assert_string_equal(net_url_redacted("h:1", b, sizeof b), "h:1");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_config),
      cmocka_unit_test(test_defaults_and_empty),
      cmocka_unit_test(test_strict_errors),
      cmocka_unit_test(test_bad_hash_not_echoed),
      cmocka_unit_test(test_parse_basic),
      cmocka_unit_test(test_verify_cache_and_timing),
      cmocka_unit_test(test_client_config),
      cmocka_unit_test(test_url_redacted),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
