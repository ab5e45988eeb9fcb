/* fuzz_net_webconfig.c: arbitrary bytes as a web config (--http.config), an
 * HTTP client config or an Authorization header, chosen by the first byte.
 * Each is refused with one line naming its kind, or parsed into something
 * whose dump hides every secret. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

static void check_err(int rc, const char *err, const char *prefix) {
  if (rc == ORR_ENOMEM) return;
  if (rc != ORR_EINVAL) abort();
  if (strncmp(err, prefix, strlen(prefix)) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  char err[512];
  err[0] = 0;
  switch (data[0] % 3) {
    case 0: {
      net_webconfig *c = NULL;
      int rc = net_webconfig_parse(text, len, &c, err, sizeof err);
      if (rc) {
        check_err(rc, err, "web config: ");
        if (c) abort();
        break;
      }
      orr_buf b = {0};
      if (net_webconfig_dump(c, &b) == 0 && b.data && net_webconfig_users(c)) {
        /* the users come last; every hash shows as <secret> */
        const char *u = strstr(b.data, "\nbasic_auth_users:\n");
        if (!u) abort();
        size_t lines = 0;
        for (const char *l = u + 19; *l; lines++) {
          const char *e = strchr(l, '\n');
          if (!e || e - l < 10 || memcmp(e - 10, ": <secret>", 10) != 0) abort();
          l = e + 1;
        }
        if (lines != net_webconfig_users(c)) abort();
      }
      orr_buf_free(&b);
      size_t nh;
      const net_http_kv *h = net_webconfig_headers(c, &nh);
      for (size_t i = 0; i < nh; i++)
        if (strpbrk(h[i].value, "\r\n")) abort();
      net_webconfig_release(c);
      break;
    }
    case 1: {
      net_http_client_config c;
      int rc = net_http_client_config_parse(text, len, &c, err, sizeof err);
      if (rc) {
        check_err(rc, err, "http client config: ");
        break;
      }
      orr_buf b = {0};
      if (net_http_client_config_dump(&c, &b) == 0 && b.data) {
        /* secrets are printed as <secret>, whatever they are */
        if (c.password && !strstr(b.data, "  password: <secret>\n")) abort();
        if (c.credentials && !strstr(b.data, "  credentials: <secret>\n")) abort();
      }
      orr_buf_free(&b);
      net_http_client_config_free(&c);
      break;
    }
    default: {
      char *h = malloc(len + 1), buf[4096];
      if (!h) return 0;
      memcpy(h, text, len);
      h[len] = 0;
      const char *u, *p;
      if (net_webconfig_parse_basic(h, buf, sizeof buf, &u, &p) == 0) {
        if (strlen(u) + strlen(p) + 1 >= sizeof buf) abort();
      }
      free(h);
      break;
    }
  }
  return 0;
}
