/* bench_xor.c: encodes and decodes XOR chunks for 10k series x 120 samples
 * (15 s scrapes: counters, gauges, constants) and prints ns/sample for each
 * (decoding both through the iterator and whole chunks into arrays),
 * bytes/sample, and the decode speed against Prometheus's published XOR
 * iterator figure (~22 ns/sample). Twice: with the timestamps a few
 * milliseconds off the interval, as scrapes are, and aligned to it, as
 * Prometheus writes scrapes within 2 ms of it (since 2020; 2.42 has it,
 * tuned by the hidden flag --scrape.timestamp-tolerance) and as rule
 * evaluations always are.
 * Usage: bench_xor [series] [rounds] */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb.h"

#define SAMPLES 120
#define PROM_NS_PER_SAMPLE 22.0

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 0x2545f4914f6cdd1dull;
}
/* CPU time of this thread: steadier than wall time on a shared machine. */
static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* A mix shaped like a real Prometheus: integer counters (requests,
 * bytes), CPU-seconds counters (fractional), integer gauges that change
 * now and then (memory), noisy float gauges (latency), constants (up). */
static void make_series(tsdb_sample *s, size_t idx, bool aligned) {
  int64_t t = 1700000000000LL + (int64_t)(rnd() % 15000);
  int kind = (int)(idx % 10);
  double v = kind == 4 ? 1e9 : 0;
  for (int i = 0; i < SAMPLES; i++) {
    /* scrape jitter of a few milliseconds, as seen in real scrapes */
    s[i].t = aligned ? t : t + (int64_t)(rnd() % 5) - 2;
    t += 15000;
    switch (kind) {
    case 0: case 1: case 2: case 3: /* integer counters */
      v += (double)(rnd() % 200);
      break;
    case 4: /* CPU seconds */
      v += 0.01 * (double)(rnd() % 1500);
      break;
    case 5: case 6: /* memory bytes: changes in pages, sometimes */
      if (i == 0 || rnd() % 3 == 0) v = 2e8 + 4096.0 * (double)(rnd() % 10000);
      break;
    case 7: /* latency */
      v = 0.05 + unit() * 0.01;
      break;
    default: /* up, build info */
      v = 1;
    }
    s[i].v = v;
  }
}

/* One data set: returns the number of series that did not decode back. */
static size_t run(size_t nseries, int rounds, bool aligned) {
  tsdb_sample *samples = malloc(nseries * SAMPLES * sizeof(*samples));
  uint8_t **chunks = calloc(nseries, sizeof(*chunks));
  size_t *lens = calloc(nseries, sizeof(*lens));
  if (!samples || !chunks || !lens) return nseries + 1;
  for (size_t i = 0; i < nseries; i++) make_series(samples + i * SAMPLES, i, aligned);

  double best_enc = 1e30, best_dec = 1e30, best_batch = 1e30;
  size_t total_bytes = 0;
  double checksum = 0;
  tsdb_xor_appender app;
  tsdb_xor_appender_init(&app);
  for (int r = 0; r < rounds; r++) {
    uint64_t t0 = cpu_ns();
    total_bytes = 0;
    for (size_t i = 0; i < nseries; i++) {
      tsdb_xor_appender_reset(&app);
      const tsdb_sample *s = samples + i * SAMPLES;
      for (int j = 0; j < SAMPLES; j++) tsdb_xor_append(&app, s[j].t, s[j].v);
      size_t len;
      const uint8_t *b = tsdb_xor_bytes(&app, &len);
      if (!chunks[i]) chunks[i] = malloc(len + 64);
      else if (len > lens[i]) chunks[i] = realloc(chunks[i], len + 64);
      memcpy(chunks[i], b, len);
      lens[i] = len;
      total_bytes += len;
    }
    uint64_t t1 = cpu_ns();
    double enc = (double)(t1 - t0) / (double)(nseries * SAMPLES);
    if (enc < best_enc) best_enc = enc;

    t0 = cpu_ns();
    for (size_t i = 0; i < nseries; i++) {
      tsdb_xor_iter it;
      tsdb_xor_iter_init(&it, chunks[i], lens[i]);
      while (tsdb_xor_iter_next(&it) == 1) checksum += it.v + (double)it.t;
    }
    t1 = cpu_ns();
    double dec = (double)(t1 - t0) / (double)(nseries * SAMPLES);
    if (dec < best_dec) best_dec = dec;

    /* Whole chunks into arrays, as a query engine would. */
    tsdb_sample out[SAMPLES];
    t0 = cpu_ns();
    for (size_t i = 0; i < nseries; i++) {
      int k = tsdb_xor_decode(chunks[i], lens[i], out, SAMPLES);
      checksum += out[k - 1].v;
    }
    t1 = cpu_ns();
    dec = (double)(t1 - t0) / (double)(nseries * SAMPLES);
    if (dec < best_batch) best_batch = dec;
  }
  /* Check once that everything decodes back. */
  size_t bad = 0;
  for (size_t i = 0; i < nseries; i++) {
    tsdb_sample out[SAMPLES];
    int n = tsdb_xor_decode(chunks[i], lens[i], out, SAMPLES);
    if (n != SAMPLES || memcmp(out, samples + i * SAMPLES, sizeof(out)) != 0) bad++;
  }
  printf("%s: series=%zu samples/series=%d rounds=%d (best round, thread CPU time)\n",
         aligned ? "timestamps aligned to the interval" : "timestamps 0-2 ms off the interval",
         nseries, SAMPLES, rounds);
  printf("encode: %.2f ns/sample\n", best_enc);
  printf("decode: %.2f ns/sample (Prometheus XOR iterator ~%.0f ns/sample: %.1fx)\n", best_dec,
         PROM_NS_PER_SAMPLE, PROM_NS_PER_SAMPLE / best_dec);
  printf("decode: %.2f ns/sample with tsdb_xor_decode() into an array (%.1fx)\n", best_batch,
         PROM_NS_PER_SAMPLE / best_batch);
  printf("size:   %.3f bytes/sample (%zu bytes)\n",
         (double)total_bytes / (double)(nseries * SAMPLES), total_bytes);
  printf("mismatched series: %zu (checksum %g)\n", bad, checksum);
  tsdb_xor_appender_free(&app);
  for (size_t i = 0; i < nseries; i++) free(chunks[i]);
  free(chunks);
  free(lens);
  free(samples);
  return bad;
}

int main(int argc, char **argv) {
  size_t nseries = argc > 1 ? (size_t)atol(argv[1]) : 10000;
  int rounds = argc > 2 ? atoi(argv[2]) : 5;
  size_t bad = run(nseries, rounds, false);
  bad += run(nseries, rounds, true);
  return bad ? 1 : 0;
}
