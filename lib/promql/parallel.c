/* parallel.c: the engine's fork-join helper — runs the shards of one
 * evaluation step (a range function over many series) on a few threads.
 *
 * Design notes
 * 1. No pool outlives a call: threads are created per parallel region and
 *    joined before it returns (creating one costs tens of microseconds,
 *    the regions worth splitting take tens of milliseconds). The calling
 *    thread works too, so threads = 1 runs everything inline.
 * 2. Shards are handed out in index order from a counter; which thread runs
 *    a shard is arbitrary, so a shard writes only to its own slot and the
 *    caller merges the slots in shard order afterwards. That order, not the
 *    schedule, decides every result: answers are the same for any thread
 *    count (the engine's exactness argument in engine.c, note 7).
 * 3. A thread that cannot be created is not an error: the threads that run
 *    take its shards. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "promql_int.h"

typedef struct fork_join {
  void (*fn)(void *arg, size_t shard);
  void *arg;
  size_t n;
  atomic_size_t next;
} fork_join;

static void *worker(void *p) {
  fork_join *fj = p;
  for (;;) {
    size_t i = atomic_fetch_add(&fj->next, 1);
    if (i >= fj->n) break;
    fj->fn(fj->arg, i);
  }
  return NULL;
}

int promql__threads(int64_t parallelism) {
  if (parallelism > 0) return parallelism > PROMQL_MAX_PARALLELISM ? PROMQL_MAX_PARALLELISM
                                                                   : (int)parallelism;
  /* Once per process: glibc reads /sys/devices/system/cpu/online at each
   * call (open, read, close on every query). */
  static atomic_long cached;
  long n = atomic_load_explicit(&cached, memory_order_relaxed);
  if (n < 1) {
    n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    atomic_store_explicit(&cached, n, memory_order_relaxed);
  }
  return n > PROMQL_MAX_PARALLELISM ? PROMQL_MAX_PARALLELISM : (int)n;
}

void promql__parallel(int threads, size_t n, void (*fn)(void *arg, size_t shard), void *arg) {
  fork_join fj = {fn, arg, n, 0};
  size_t nt = threads > 1 ? (size_t)threads : 1;
  if (nt > n) nt = n;
  pthread_t th[PROMQL_MAX_PARALLELISM];
  size_t started = 0;
  for (size_t i = 1; i < nt && i < PROMQL_MAX_PARALLELISM; i++)
    if (pthread_create(&th[started], NULL, worker, &fj) == 0) started++;
  worker(&fj);
  for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
}
