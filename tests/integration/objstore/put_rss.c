/* put_rss.c: uploads one file with objstore_put_file and prints the
 * process's peak RSS (VmHWM, kB) — the S3 integration test checks that a
 * multipart upload streams from disk. Usage: put_rss <config.yaml> <key> <file> */
#include <stdio.h>
#include <string.h>

#include "objstore.h"

static long vm_hwm_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: put_rss <config.yaml> <key> <file>\n");
    return 2;
  }
  objstore_config cfg;
  objstore_bucket *b = NULL;
  char err[1024];
  int rc = objstore_config_load(argv[1], NULL, &cfg, err, sizeof err);
  if (rc == 0) {
    rc = objstore_open(&cfg, &b, err, sizeof err);
    objstore_config_free(&cfg);
  }
  if (rc == 0) rc = objstore_put_file(b, argv[2], argv[3], err, sizeof err);
  objstore_close(b);
  if (rc) {
    fprintf(stderr, "put_rss: %s\n", err);
    return 1;
  }
  printf("%ld\n", vm_hwm_kb());
  return 0;
}
