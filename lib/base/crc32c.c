/* crc32c.c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as the
 * Prometheus TSDB uses for chunks, index sections and the WAL. The SSE4.2
 * crc32 instruction is used when the CPU has it (chosen once, at first call);
 * otherwise slicing-by-8 tables. Both give identical results. */
#include <pthread.h>
#include <string.h>

#include "base.h"

#define CRC32C_POLY 0x82F63B78u

/* Internal, also called by the unit test to check that both paths agree. */
uint32_t orr__crc32c_sw(uint32_t crc, const void *p, size_t n);
uint32_t orr__crc32c_hw(uint32_t crc, const void *p, size_t n);
int orr__crc32c_hw_available(void);

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t orr__crc32c_sw(uint32_t crc, const void *p, size_t n) {
  pthread_once(&table_once, table_init);
  const unsigned char *b = p;
  crc = ~crc;
  for (; n && ((uintptr_t)b & 7); n--) crc = (crc >> 8) ^ table[0][(crc ^ *b++) & 0xff];
  for (; n >= 8; n -= 8, b += 8) {
    /* Little-endian load, byte by byte so that it is portable and needs no
     * aligned casts; the compiler merges it into one load. */
    uint32_t lo = crc ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 24);
    uint32_t hi = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
    crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
          table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
          table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
  }
  for (; n; n--) crc = (crc >> 8) ^ table[0][(crc ^ *b++) & 0xff];
  return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) uint32_t orr__crc32c_hw(uint32_t crc, const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t c = ~crc;
  for (; n && ((uintptr_t)b & 7); n--) c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
  for (; n >= 8; n -= 8, b += 8) {
    uint64_t w;
    memcpy(&w, b, 8);
    c = __builtin_ia32_crc32di(c, w);
  }
  for (; n; n--) c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
  return ~(uint32_t)c;
}

int orr__crc32c_hw_available(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t orr__crc32c_hw(uint32_t crc, const void *p, size_t n) { return orr__crc32c_sw(crc, p, n); }
int orr__crc32c_hw_available(void) { return 0; }
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static crc_fn impl;
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void impl_init(void) { impl = orr__crc32c_hw_available() ? orr__crc32c_hw : orr__crc32c_sw; }

uint32_t orr_crc32c(uint32_t crc, const void *p, size_t n) {
  pthread_once(&impl_once, impl_init);
  return impl(crc, p, n);
}
