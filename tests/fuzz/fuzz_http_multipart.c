/* fuzz_http_multipart.c: arbitrary multipart/form-data bodies (and
 * Content-Type headers) through the form parser of the HTTP server. Input:
 * the Content-Type value, a NUL byte, then the body. Nothing may crash,
 * leak, or read outside the body; a failure must leave the list untouched. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  if (!nul) return 0;
  size_t ctl = (size_t)(nul - data);
  orr_arena *a = orr_arena_new(0);
  if (!a) return 0;
  char *ct = orr_arena_strndup(a, (const char *)data, ctl);
  /* the body is copied so that reads past its end are caught by ASan */
  size_t bl = size - ctl - 1;
  char *body = malloc(bl ? bl : 1);
  if (ct && body) {
    memcpy(body, nul + 1, bl);
    orr_buf kv = {0};
    net_http_kv pre = {"a", "1", 1};
    orr_buf_append(&kv, &pre, sizeof(pre));
    int rc = net__parse_multipart(a, ct, body, bl, &kv);
    if (rc != 0 && kv.len != sizeof(pre)) __builtin_trap();
    volatile size_t sink = 0;
    const net_http_kv *p = (const net_http_kv *)kv.data;
    for (size_t i = 0; i < kv.len / sizeof(*p); i++) sink += strlen(p[i].name) + p[i].value_len;
    (void)sink;
    orr_buf_free(&kv);
  }
  free(body);
  orr_arena_destroy(a);
  return 0;
}
