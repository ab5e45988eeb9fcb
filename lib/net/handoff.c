/* handoff.c: worker threads hand items back to the loop (net.h, "loop
 * hand-off") — a mutex-guarded list of items and one uv_async_t that wakes
 * the loop to take them. The store's and the sidecar's Series workers use
 * it to say that a call has answer buffers to send. */
#include "net.h"

static void on_async(uv_async_t *a) {
  net_handoff *h = (net_handoff *)a; /* |async| is the first member */
  /* One at a time: a worker may list an item again (and rewrite its
   * |next|) while an earlier one is in |fn|, and |fn| may free the item. */
  for (;;) {
    pthread_mutex_lock(&h->mu);
    net_handoff_item *it = h->head;
    if (it) {
      h->head = it->next;
      it->listed = false;
    }
    pthread_mutex_unlock(&h->mu);
    if (!it) break;
    h->fn(it, h->arg);
  }
}

int net_handoff_init(uv_loop_t *loop, net_handoff *h, void (*fn)(net_handoff_item *it, void *arg),
                     void *arg) {
  h->head = NULL;
  h->closed = false;
  h->fn = fn;
  h->arg = arg;
  pthread_mutex_init(&h->mu, NULL);
  if (uv_async_init(loop, &h->async, on_async)) return ORR_EIO;
  h->async.data = arg;
  return 0;
}

void net_handoff_push(net_handoff *h, net_handoff_item *it) {
  pthread_mutex_lock(&h->mu);
  if (!it->listed && !h->closed) {
    it->listed = true;
    it->next = h->head;
    h->head = it;
    uv_async_send(&h->async);
  }
  pthread_mutex_unlock(&h->mu);
}

void net_handoff_remove(net_handoff *h, net_handoff_item *it) {
  pthread_mutex_lock(&h->mu);
  if (it->listed) {
    net_handoff_item **pp = &h->head;
    while (*pp && *pp != it) pp = &(*pp)->next;
    if (*pp) *pp = it->next;
    it->listed = false;
  }
  pthread_mutex_unlock(&h->mu);
}

void net_handoff_close(net_handoff *h, uv_close_cb on_close) {
  pthread_mutex_lock(&h->mu);
  h->closed = true;
  pthread_mutex_unlock(&h->mu);
  uv_close((uv_handle_t *)&h->async, on_close);
}

void net_handoff_destroy(net_handoff *h) { pthread_mutex_destroy(&h->mu); }
