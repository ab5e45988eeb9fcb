/* fuzz_s3_xml.c: arbitrary bytes as S3 response XML through the scanner and
 * every parser built on it (listing, error, element lookup): no crash, no
 * read out of bounds, and parsed listings hold named entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objstore_int.h"

static int check_event(s3__xml_event ev, const char *path, int depth, const char *text, size_t n,
                       void *arg) {
  int *open = arg;
  if (depth < 1 || strlen(path) == 0) abort();
  if (ev == S3_XML_START) ++*open;
  if (ev == S3_XML_END) --*open;
  if (ev == S3_XML_TEXT && (!text || strlen(text) > n)) abort();
  if (*open < 0) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data;
  int open = 0;
  if (s3__xml_scan(p, size, check_event, &open) == 0 && open != 0) abort();
  orr_arena *a = orr_arena_new(0);
  s3__list_page page;
  if (s3__xml_parse_list(p, size, a, &page) == 0) {
    for (size_t i = 0; i < page.n; i++)
      if (!page.v[i].name) abort();
  }
  orr_arena_destroy(a);
  char code[32], msg[64], out[48];
  s3__xml_parse_error(p, size, code, sizeof code, msg, sizeof msg);
  if (strlen(code) >= sizeof code || strlen(msg) >= sizeof msg) abort();
  if (s3__xml_find(p, size, "InitiateMultipartUploadResult/UploadId", out, sizeof out) == 0 &&
      strlen(out) >= sizeof out)
    abort();
  return 0;
}
