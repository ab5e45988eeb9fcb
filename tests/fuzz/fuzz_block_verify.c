/* fuzz_block_verify.c: arbitrary bytes as a block — a 4-byte big-endian
 * length, that many bytes of index, the rest as chunk segment 000001 —
 * written to a scratch block directory, then verified in full and read
 * through a selection of every sample. With the index CRC checks on and off,
 * so mutations reach the series walk and chunk checks behind the CRCs.
 * Anything but a clean report or success is a bug. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb_int.h"

static char dir[64];

static void put(const char *name, const void *p, size_t n) {
  char path[128];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) abort();
  if (n && write(fd, p, n) != (ssize_t)n) abort();
  close(fd);
}

static void cleanup(void) {
  static const char *const files[] = {"index", "chunks/000001", "meta.json", "meta.json.tmp"};
  char path[128];
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
    unlink(path);
  }
  snprintf(path, sizeof(path), "%s/chunks", dir);
  rmdir(path);
  rmdir(dir);
}

static void setup(void) {
  if (dir[0]) return;
  atexit(cleanup);
  snprintf(dir, sizeof(dir), "/tmp/fuzz_block_verify_XXXXXX");
  if (!mkdtemp(dir)) abort();
  char c[96];
  snprintf(c, sizeof(c), "%s/chunks", dir);
  mkdir(c, 0755);
  static const char meta[] =
      "{\"ulid\":\"01M8989AJBWZWQ1JHK9S7TG363\",\"minTime\":1700000000000,\"maxTime\":1700000030001,"
      "\"stats\":{\"numSamples\":5,\"numSeries\":3,\"numChunks\":3},"
      "\"compaction\":{\"level\":1,\"sources\":[\"01M8989AJBWZWQ1JHK9S7TG363\"]},\"version\":1}";
  put("meta.json", meta, sizeof(meta) - 1);
}

static void read_all(void) {
  char err[512];
  tsdb_block *b;
  if (tsdb_block_open(dir, &b, err, sizeof(err)) != 0) return;
  orr_arena *a = orr_arena_new(0);
  tsdb_series_set *ss;
  if (a && tsdb_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &ss) == 0) {
    const tsdb_series *s;
    while (tsdb_series_set_next(ss, &s) == 1) {
      tsdb_series_iter it;
      tsdb_series_iter_init(&it, s);
      while (tsdb_series_iter_next(&it) == 1) {
      }
    }
    tsdb_series_set_close(ss);
  }
  const char **v;
  size_t n;
  if (a) tsdb_block_label_names(b, NULL, 0, a, &v, &n);
  orr_arena_destroy(a);
  tsdb_block_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  if (size < 4) return 0;
  uint32_t ilen = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
  if (ilen > size - 4) ilen = (uint32_t)(size - 4);
  put("index", data + 4, ilen);
  put("chunks/000001", data + 4 + ilen, size - 4 - ilen);
  for (int crc = 1; crc >= 0; crc--) {
    tsdb__index_verify_crc = crc;
    tsdb_verify_stats st;
    tsdb_block_verify(dir, NULL, NULL, &st);
    read_all();
  }
  tsdb__index_verify_crc = true;
  return 0;
}
