/* fuzz_endpoint_config.c: arbitrary bytes as an endpoint config file
 * (--endpoint.sd-config). A config is either refused with one
 * "endpoint config: " line, or parsed into entries that each have a
 * host:port address, listed once, whose TLS client certificate has both a
 * certificate and a key or neither. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  orr_arena *a = orr_arena_new(0);
  if (!a) return 0;
  gw_endpoint_cfg *e;
  size_t n;
  char err[512];
  err[0] = '\0';
  int rc = gw_endpoint_config_parse((const char *)data, size, a, &e, &n, err, sizeof err);
  if (rc == 0) {
    for (size_t i = 0; i < n; i++) {
      if (!e[i].address || !strrchr(e[i].address, ':')) abort();
      for (size_t j = 0; j < i; j++)
        if (!strcmp(e[i].address, e[j].address)) abort();
      int c = e[i].tls.cert_file && *e[i].tls.cert_file, k = e[i].tls.key_file && *e[i].tls.key_file;
      if (c != k) abort();
      if (!e[i].has_tls && (e[i].tls.ca_file || e[i].tls.cert_file || e[i].tls.server_name)) abort();
    }
  } else if (rc == ORR_EINVAL) {
    if (strncmp(err, "endpoint config: ", 17) != 0 || memchr(err, '\0', sizeof err) == NULL) abort();
  } else if (rc != ORR_ENOMEM) {
    abort();
  }
  orr_arena_destroy(a);
  return 0;
}
