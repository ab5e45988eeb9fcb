/* rbuf.c: the read buffer of a thread's connections (net_int.h). */
#include <pthread.h>
#include <stdlib.h>

#include "net_int.h"

/* Allocated on first use, not static TLS: 64 KiB of _Thread_local arrays
 * made every process (and every thread it starts) clear them at start-up,
 * faulting in 16 pages, whether it ever reads a socket or not. The key's
 * destructor frees a thread's buffer when the thread exits. */
static _Thread_local char *rbuf;
static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;
static bool rbuf_key_ok;

static void rbuf_free(void *p) {
  free(p);
  rbuf = NULL;
}

static void rbuf_key_init(void) {
  rbuf_key_ok = pthread_key_create(&rbuf_key, rbuf_free) == 0;
}

char *net__thread_rbuf(void) {
  if (rbuf) return rbuf;
  pthread_once(&rbuf_once, rbuf_key_init);
  if (!rbuf_key_ok) return NULL;
  char *p = malloc(NET__RBUF_SIZE);
  if (!p) return NULL;
  if (pthread_setspecific(rbuf_key, p) != 0) {
    free(p);
    return NULL;
  }
  return rbuf = p;
}
