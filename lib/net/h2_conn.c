/* h2_conn.c: moves bytes between a uv_tcp_t and an nghttp2 session for the
 * gRPC server and client; the invariants are in net_int.h (gRPC section).
 * No gRPC knowledge here: the owner's nghttp2 callbacks do the protocol. */
#include <errno.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "net_int.h"

/* nghttp2 hands out at most one DATA frame (16 KiB + header) per
 * mem_send call; collect this much before starting a write. */
#define H2_WRITE_BATCH (64 * 1024)
/* Write buffers up to this size are kept between writes; larger ones are
 * freed when the connection has nothing more to send (net_int.h note 4). */
#define H2_KEEP_OUT 4096

/* Note 6: a loop's writes beyond this many in one millisecond (one loop
 * pass, usually) go to the writer thread; a small fan-out, and every
 * connection of a quiet loop, writes inline with no thread hop. */
#define H2_INLINE_WRITES 8
/* The writer reports completions to a loop at least every this many. */
#define H2_WRITER_REPORT 64

static void h2_flush(net__h2_conn *h);
static void h2_handle_closed(uv_handle_t *handle);
static int h2_write_rest(net__h2_conn *h, const char *p, size_t n);
static void h2_write_done(net__h2_conn *h);

/* ---------------------------------------------------------------- note 6: the writer thread
 * One thread for the process takes handed-off writes from one queue and
 * sends each with non-blocking send(2); a loop learns of its finished
 * writes through its h2_wq (one async handle, open only while writes of
 * that loop are out). What the socket did not take goes back to the loop,
 * which sends the rest with uv_write as for an inline write; a connection
 * closed meanwhile closes its socket only once its write is back, so the
 * writer never sends to a descriptor that was closed (and maybe reused). */
typedef struct net__h2_wq {
  uv_async_t async; /* first: the handle's data is the queue */
  uv_loop_t *loop;
  pthread_mutex_t mu;
  net__h2_witem *done; /* finished writes, for the loop (under |mu|) */
  int inflight;        /* loop thread only */
  int closing;
} h2_wq;

static atomic_int w_inline = H2_INLINE_WRITES; /* tests set 0: every write goes */
static atomic_size_t w_count;                     /* writes handed off so far */
static atomic_size_t w_max = SIZE_MAX;            /* tests: a socket that takes this much */
static pthread_once_t w_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t w_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t w_cv = PTHREAD_COND_INITIALIZER;
static net__h2_witem *w_head, *w_tail;
static int w_ok;

/* The loop thread's side: its write budget (per uv_now millisecond) and
 * the queue of its writes out, if any. A loop runs on one thread. */
static _Thread_local struct {
  uv_loop_t *loop;
  uint64_t ms;
  int left;
  h2_wq *q;
} tl;

/* How much of |it| the next send may take: what is left, within the test
 * limit |max| (0: nothing). */
static size_t w_want(const net__h2_witem *it, size_t max) {
  if (it->sent >= it->len || it->sent >= max) return 0;
  size_t want = it->len - it->sent;
  return want < max - it->sent ? want : max - it->sent;
}

static void w_send(net__h2_witem *it) {
  size_t max = atomic_load_explicit(&w_max, memory_order_relaxed);
  for (size_t want; (want = w_want(it, max)) > 0;) {
    ssize_t n = send(it->fd, it->data + it->sent, want, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      it->sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    it->err = n < 0 ? errno : EIO;
    break;
  }
}

/* ---------------------------------------------------------------- note 7: the writer's ring
 * The writer sends a batch of writes (to as many sockets) with one
 * io_uring_enter(2) instead of a send(2) each: on this project's VMs a
 * system call's entry and exit cost about a microsecond, and sending a
 * thousand 150-byte requests to loopback sockets took 3.6-3.9 us a send
 * through the ring against 5.9-6.6 us with send(2) (measured by hand).
 * Each send is non-blocking (MSG_DONTWAIT: the kernel completes it at once
 * with what the socket took, or -EAGAIN, and never parks it), so the
 * writer waits for nothing but its own batch, and a peer that stops
 * reading stalls no one: what its socket did not take goes back to the
 * loop as before. Without io_uring (an old kernel, a seccomp filter that
 * refuses it, ORRERY_IO_URING=0 in the environment) the writer uses
 * send(2). The ring is the writer's alone (one thread submits and reaps)
 * and lives as long as the process. */
#define W_RING 256

static struct {
  int fd; /* -1: send(2) */
  unsigned *sq_tail, *sq_array, sq_mask;
  unsigned *cq_head, *cq_tail, cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
} wr = {.fd = -1};
static atomic_int w_ring_on = 1;      /* tests set 0: send(2) */
static atomic_size_t w_ring_count;    /* sends submitted through the ring so far */

static void w_ring_setup(void) {
  const char *env = getenv("ORRERY_IO_URING");
  if (env && strcmp(env, "0") == 0) return;
  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
  int fd = (int)syscall(__NR_io_uring_setup, W_RING, &p);
  if (fd < 0 && errno == EINVAL) { /* a kernel before 6.0 lacks some flag */
    memset(&p, 0, sizeof(p));
    fd = (int)syscall(__NR_io_uring_setup, W_RING, &p);
  }
  if (fd < 0) {
    orr_log_debug("writer thread: no io_uring, sends with send(2)", "err", strerror(errno), NULL);
    return;
  }
  size_t sl = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cl = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (!(p.features & IORING_FEAT_SINGLE_MMAP) || p.sq_entries < W_RING) {
    close(fd);
    return;
  }
  char *q = mmap(NULL, sl > cl ? sl : cl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                 IORING_OFF_SQ_RING);
  if (q == MAP_FAILED) {
    close(fd);
    return;
  }
  void *e = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (e == MAP_FAILED) {
    munmap(q, sl > cl ? sl : cl);
    close(fd);
    return;
  }
  wr.sq_tail = (unsigned *)(q + p.sq_off.tail);
  wr.sq_array = (unsigned *)(q + p.sq_off.array);
  wr.sq_mask = *(unsigned *)(q + p.sq_off.ring_mask);
  wr.cq_head = (unsigned *)(q + p.cq_off.head);
  wr.cq_tail = (unsigned *)(q + p.cq_off.tail);
  wr.cq_mask = *(unsigned *)(q + p.cq_off.ring_mask);
  wr.cqes = (struct io_uring_cqe *)(q + p.cq_off.cqes);
  wr.sqes = e;
  wr.fd = fd;
}

/* Sends what each of |v|'s |n| (at most W_RING) writes has left, one send
 * per write, as w_send's first try would. Returns -1 if the ring failed
 * (then it is not used again; the writes whose outcome is unknown fail
 * with EIO, so their connections close rather than risk a byte sent
 * twice), else 0. */
static int w_send_ring(net__h2_witem **v, int n) {
  size_t max = atomic_load_explicit(&w_max, memory_order_relaxed);
  unsigned tail = *wr.sq_tail; /* only this thread moves it */
  int m = 0;
  for (int i = 0; i < n; i++) {
    net__h2_witem *it = v[i];
    size_t want = w_want(it, max);
    if (want == 0) continue;
    if (want > UINT32_MAX) want = UINT32_MAX;
    unsigned idx = tail & wr.sq_mask;
    struct io_uring_sqe *e = &wr.sqes[idx];
    memset(e, 0, sizeof(*e));
    e->opcode = IORING_OP_SEND;
    e->fd = it->fd;
    e->addr = (uint64_t)(uintptr_t)(it->data + it->sent);
    e->len = (uint32_t)want;
    e->msg_flags = MSG_NOSIGNAL | MSG_DONTWAIT;
    e->user_data = (uint64_t)(uintptr_t)it;
    wr.sq_array[idx] = idx;
    it->err = -1; /* until its completion is in */
    tail++;
    m++;
  }
  if (m == 0) return 0;
  __atomic_store_n(wr.sq_tail, tail, __ATOMIC_RELEASE);
  atomic_fetch_add_explicit(&w_ring_count, (size_t)m, memory_order_relaxed);
  int done = 0, submit = m;
  while (done < m) {
    long r = syscall(__NR_io_uring_enter, wr.fd, (unsigned)submit, (unsigned)(m - done),
                     IORING_ENTER_GETEVENTS, NULL, 0);
    if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) {
      orr_log_error("writer thread: io_uring_enter failed, back to send(2)", "err",
                    strerror(errno), NULL);
      for (int i = 0; i < n; i++)
        if (v[i]->err == -1) v[i]->err = EIO;
      wr.fd = -1;
      return -1;
    }
    if (r > 0) submit -= (int)r;
    unsigned h = *wr.cq_head, t = __atomic_load_n(wr.cq_tail, __ATOMIC_ACQUIRE);
    for (; h != t; h++, done++) {
      const struct io_uring_cqe *c = &wr.cqes[h & wr.cq_mask];
      net__h2_witem *it = (net__h2_witem *)(uintptr_t)c->user_data;
      it->err = 0;
      if (c->res > 0) it->sent += (size_t)c->res; /* short: the socket is full */
      else if (c->res == -EINTR) w_send(it);
      else if (c->res != -EAGAIN) it->err = c->res < 0 ? -c->res : EIO;
    }
    __atomic_store_n(wr.cq_head, h, __ATOMIC_RELEASE);
  }
  return 0;
}

/* Hands |list| (finished, all for |q|) to its loop. The async is sent
 * under the queue's lock: the loop closes (and frees) the queue only after
 * taking the last item under that lock, so never while this runs. */
static void w_report(h2_wq *q, net__h2_witem *list, net__h2_witem *last) {
  pthread_mutex_lock(&q->mu);
  last->next = q->done;
  q->done = list;
  uv_async_send(&q->async);
  pthread_mutex_unlock(&q->mu);
}

static void *w_main(void *arg) {
  (void)arg;
  w_ring_setup();
  for (;;) {
    pthread_mutex_lock(&w_mu);
    while (!w_head) pthread_cond_wait(&w_cv, &w_mu);
    net__h2_witem *batch = w_head;
    w_head = w_tail = NULL;
    pthread_mutex_unlock(&w_mu);
    /* Consecutive writes of one loop are reported together. */
    net__h2_witem *run = NULL, *last = NULL;
    int nrun = 0;
    while (batch) {
      net__h2_witem *v[W_RING];
      int n = 0;
      while (batch && n < W_RING) {
        v[n++] = batch;
        batch = batch->next;
      }
      if (wr.fd < 0 || !atomic_load_explicit(&w_ring_on, memory_order_relaxed) ||
          w_send_ring(v, n))
        for (int i = 0; i < n; i++)
          if (!v[i]->err) w_send(v[i]);
      for (int i = 0; i < n; i++) {
        net__h2_witem *it = v[i];
        if (run && (run->q != it->q || nrun == H2_WRITER_REPORT)) {
          w_report(run->q, run, last);
          run = NULL;
          nrun = 0;
        }
        it->next = run;
        if (!run) last = it;
        run = it;
        nrun++;
      }
    }
    if (run) w_report(run->q, run, last);
  }
  return NULL;
}

static void w_start(void) {
  pthread_attr_t at;
  sigset_t all, old;
  pthread_t t;
  if (pthread_attr_init(&at)) return;
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 64 * 1024);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the loops */
  w_ok = pthread_create(&t, &at, w_main, NULL) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&at);
}

static void wq_closed(uv_handle_t *hd) {
  h2_wq *q = hd->data;
  pthread_mutex_destroy(&q->mu);
  free(q);
}

/* A handed-off write of |h| is back (loop thread). */
static void h2_written(net__h2_conn *h) {
  net__h2_witem *it = &h->wi;
  h->in_writer = 0;
  if (h->closing) {
    if (h->close_tcp) {
      h->close_tcp = 0;
      uv_close((uv_handle_t *)&h->tcp, h2_handle_closed);
    }
    return;
  }
  if (it->err) {
    net__h2_conn_close(h, ORR_EIO);
    return;
  }
  if (it->sent < it->len) /* the socket was full: the rest as note 5 */
    h2_write_rest(h, it->data + it->sent, it->len - it->sent);
  else
    h2_write_done(h);
}

static void wq_async(uv_async_t *a) {
  h2_wq *q = a->data;
  pthread_mutex_lock(&q->mu);
  net__h2_witem *it = q->done;
  q->done = NULL;
  pthread_mutex_unlock(&q->mu);
  while (it) {
    net__h2_witem *next = it->next;
    q->inflight--;
    h2_written((net__h2_conn *)((char *)it - offsetof(net__h2_conn, wi)));
    it = next;
  }
  if (q->inflight == 0 && !q->closing) {
    q->closing = 1;
    if (tl.q == q) tl.q = NULL;
    uv_close((uv_handle_t *)&q->async, wq_closed);
  }
}

/* The queue for |loop|'s writes, NULL when writes of another loop of this
 * thread are out (then this one writes inline). */
static h2_wq *wq_get(uv_loop_t *loop) {
  if (tl.q && uv_is_closing((uv_handle_t *)&tl.q->async) && !tl.q->closing)
    tl.q = NULL; /* closed with its loop (daemon_free's walk): left */
  if (tl.q) return tl.q->loop == loop ? tl.q : NULL;
  if (pthread_once(&w_once, w_start) || !w_ok) return NULL;
  h2_wq *q = calloc(1, sizeof(*q));
  if (!q) return NULL;
  if (uv_async_init(loop, &q->async, wq_async)) {
    free(q);
    return NULL;
  }
  pthread_mutex_init(&q->mu, NULL);
  q->async.data = q;
  q->loop = loop;
  tl.q = q;
  return q;
}

/* Hands |b| to the writer thread when this loop is past its inline budget;
 * returns 1 if it did (|b| then stays untouched until h2_written). */
static int h2_offload(net__h2_conn *h, orr_buf *b) {
  uv_loop_t *loop = h->tcp.loop;
  uint64_t now = uv_now(loop);
  if (tl.loop != loop || tl.ms != now) {
    tl.loop = loop;
    tl.ms = now;
    tl.left = atomic_load_explicit(&w_inline, memory_order_relaxed);
  }
  if (tl.left > 0) {
    tl.left--;
    return 0;
  }
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&h->tcp, &fd)) return 0;
  h2_wq *q = wq_get(loop);
  if (!q) return 0;
  h->wi = (net__h2_witem){.q = q, .fd = fd, .data = b->data, .len = b->len};
  h->in_writer = 1;
  q->inflight++;
  atomic_fetch_add_explicit(&w_count, 1, memory_order_relaxed);
  pthread_mutex_lock(&w_mu);
  if (w_tail)
    w_tail->next = &h->wi;
  else
    w_head = &h->wi;
  w_tail = &h->wi;
  pthread_cond_signal(&w_cv);
  pthread_mutex_unlock(&w_mu);
  return 1;
}

void net__h2_set_inline_writes(int n) { atomic_store(&w_inline, n < 0 ? 0 : n); }

void net__h2_set_writer_max(size_t n) { atomic_store(&w_max, n ? n : SIZE_MAX); }

size_t net__h2_writer_writes(void) { return atomic_load(&w_count); }

void net__h2_set_writer_ring(int on) { atomic_store(&w_ring_on, on != 0); }

size_t net__h2_writer_ring_sends(void) { return atomic_load(&w_ring_count); }

/* ---------------------------------------------------------------- connection */

static void h2_handle_closed(uv_handle_t *handle) {
  net__h2_conn *h = handle->data;
  if (--h->pending_closes > 0) return;
  if (h->session) {
    nghttp2_session_del(h->session);
    h->session = NULL;
  }
  orr_buf_free(&h->out);
  orr_buf_free(&h->tout);
  if (h->tls && h->tls->failed) h->tls_failed = 1;
  net__tls_free(h->tls);
  h->tls = NULL;
  h->ops->closed(h);
}

void net__h2_conn_close(net__h2_conn *h, int err) {
  if (!h->err) h->err = err;
  if (h->closing) return;
  h->closing = 1;
  h->pending_closes = 2;
  if (h->in_writer)
    h->close_tcp = 1; /* note 6: once the write is back */
  else
    uv_close((uv_handle_t *)&h->tcp, h2_handle_closed);
  uv_close((uv_handle_t *)&h->idle, h2_handle_closed);
}

static void h2_idle_cb(uv_idle_t *idle) {
  net__h2_conn *h = idle->data;
  uv_idle_stop(idle);
  h->idle_on = 0;
  if (h->closing) return;
  if (h->ops->tick) h->ops->tick(h);
  if (!h->closing) h2_flush(h);
}

void net__h2_conn_kick(net__h2_conn *h) {
  if (h->closing || h->idle_on) return;
  h->idle_on = 1;
  uv_idle_start(&h->idle, h2_idle_cb);
}

void net__h2_conn_flush(net__h2_conn *h) {
  if (h->closing) return;
  /* An owner with tick work gets it first, from the idle handle. */
  if (h->ops->tick || h->idle_on || h->writing || !h->connected || !h->session) {
    net__h2_conn_kick(h); /* then, or once the write or the connect is done */
    return;
  }
  h2_flush(h);
}

void net__h2_conn_kick_output(net__h2_conn *h) {
  if (h->closing || h->idle_on || !h->session) return;
  if (nghttp2_session_want_write(h->session) || !nghttp2_session_want_read(h->session))
    net__h2_conn_kick(h);
}

int net__h2_conn_init(uv_loop_t *loop, net__h2_conn *h, const net__h2_ops *ops, void *owner) {
  memset(h, 0, sizeof(*h));
  h->ops = ops;
  h->owner = owner;
  int rc = uv_tcp_init(loop, &h->tcp);
  if (rc) return rc;
  uv_idle_init(loop, &h->idle);
  h->tcp.data = h;
  h->idle.data = h;
  h->wreq.data = h;
  return 0;
}

/* The write in flight is out (inline or from the writer thread). As after
 * a read (note 5), an owner without tick work gets a pass only when nghttp2
 * has more output or the session is over; an idle connection keeps no
 * large write buffer (note 4). */
static void h2_write_done(net__h2_conn *h) {
  h->writing = 0;
  h->out.len = 0;
  h->tout.len = 0;
  if (h->out.cap > H2_KEEP_OUT) orr_buf_free(&h->out);
  if (h->ops->tick || h->tls)
    net__h2_conn_kick(h);
  else
    net__h2_conn_kick_output(h);
}

static void h2_write_cb(uv_write_t *req, int status) {
  net__h2_conn *h = req->data;
  if (h->closing) {
    h->writing = 0;
    return;
  }
  if (status < 0) {
    h->writing = 0;
    net__h2_conn_close(h, ORR_EIO);
    return;
  }
  h2_write_done(h);
}

/* Sends |p|/|n| (what the socket did not take) with uv_write: the write in
 * flight until h2_write_cb. Returns 0, or -1 when the connection closed. */
static int h2_write_rest(net__h2_conn *h, const char *p, size_t n) {
  uv_buf_t ub = uv_buf_init((char *)p, (unsigned)n);
  if (uv_write(&h->wreq, (uv_stream_t *)&h->tcp, &ub, 1, h2_write_cb)) {
    net__h2_conn_close(h, ORR_EIO);
    return -1;
  }
  h->writing = 1;
  return 0;
}

/* Note 1 and 5: sends |b| with one write(2) when the socket takes it all
 * (the common case: a gRPC request or a small answer). Only what the socket
 * does not take goes through uv_write, whose request completes a loop turn
 * later and re-arms the epoll watcher (an epoll_ctl per write): with a
 * connection per endpoint, that was one syscall and one more loop pass per
 * endpoint and query. Returns 1 when all of |b| is out (|b| may be reused),
 * 0 when a write is in flight, -1 when the connection is closing. */
static int h2_send(net__h2_conn *h, orr_buf *b) {
  if (h2_offload(h, b)) {
    h->writing = 1;
    h->write_start_ms = uv_now(h->tcp.loop);
    return 0;
  }
  uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
  int n = uv_try_write((uv_stream_t *)&h->tcp, &ub, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
  if (n < 0) {
    net__h2_conn_close(h, ORR_EIO);
    return -1;
  }
  if ((size_t)n == b->len) return 1;
  if (h2_write_rest(h, b->data + n, b->len - (size_t)n)) return -1;
  h->write_start_ms = uv_now(h->tcp.loop);
  return 0;
}

/* The TLS side of h2_flush: nghttp2's output (once the handshake is done)
 * is encrypted, and everything the SSL has to send goes out in one write. */
static void h2_flush_tls(net__h2_conn *h) {
  h->out.len = 0;
  if (h->tls->handshake_done) {
    while (h->out.len < H2_WRITE_BATCH) {
      const uint8_t *data;
      ssize_t n = nghttp2_session_mem_send(h->session, &data);
      if (n < 0) {
        net__h2_conn_close(h, ORR_EPROTO);
        return;
      }
      if (n == 0) break;
      if (orr_buf_append(&h->out, data, (size_t)n)) {
        net__h2_conn_close(h, ORR_ENOMEM);
        return;
      }
    }
    if (h->out.len && net__tls_write(h->tls, h->out.data, h->out.len)) {
      net__h2_conn_close(h, ORR_EPROTO);
      return;
    }
    h->out.len = 0;
  }
  size_t pend = net__tls_pending_out(h->tls);
  if (pend > 0) {
    h->tout.len = 0;
    if (orr_buf_reserve(&h->tout, pend)) {
      net__h2_conn_close(h, ORR_ENOMEM);
      return;
    }
    h->tout.len = net__tls_take_out(h->tls, h->tout.data, pend);
    /* All out at once: another pass sends what is left, if anything. */
    if (h2_send(h, &h->tout) > 0) net__h2_conn_kick(h);
    return;
  }
  if (h->out.cap > H2_KEEP_OUT) orr_buf_free(&h->out);
  if (h->tout.cap > H2_KEEP_OUT) orr_buf_free(&h->tout);
  if (h->tls->failed) {
    net__h2_conn_close(h, ORR_EPROTO); /* the alert is out */
    return;
  }
  if (h->tls->handshake_done && !nghttp2_session_want_read(h->session) &&
      !nghttp2_session_want_write(h->session))
    net__h2_conn_close(h, 0);
}

static void h2_flush(net__h2_conn *h) {
  if (h->writing || h->closing || !h->connected || !h->session) return;
  if (h->tls) {
    h2_flush_tls(h);
    return;
  }
  h->out.len = 0;
  while (h->out.len < H2_WRITE_BATCH) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(h->session, &data);
    if (n < 0) {
      net__h2_conn_close(h, ORR_EPROTO);
      return;
    }
    if (n == 0) break;
    if (orr_buf_append(&h->out, data, (size_t)n)) {
      net__h2_conn_close(h, ORR_ENOMEM);
      return;
    }
  }
  if (h->out.len > 0) {
    int rc = h2_send(h, &h->out);
    if (rc <= 0) return; /* closed, or a write in flight */
    if (h->out.len >= H2_WRITE_BATCH) {
      net__h2_conn_kick(h); /* a full batch went out: nghttp2 may have more */
      return;
    }
    /* All of nghttp2's output is out: fall through to the idle checks. */
    h->out.len = 0;
  }
  /* Nothing to send: the session is over once it wants neither direction
   * (GOAWAY exchanged and every stream closed). An idle connection keeps no
   * large write buffer. */
  if (h->out.cap > H2_KEEP_OUT) orr_buf_free(&h->out);
  if (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session))
    net__h2_conn_close(h, 0);
}

static void h2_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  /* Note 4: nghttp2_session_mem_recv() consumes all it is given before the
   * read callback returns, so every connection of a thread reads into the
   * thread's buffer. Out of memory: an empty one (UV_ENOBUFS in h2_read_cb). */
  char *rb = net__thread_rbuf();
  *buf = uv_buf_init(rb, rb ? NET__RBUF_SIZE : 0);
}

/* Ciphertext in, plaintext to nghttp2 (the read buffer is free again once
 * the SSL has copied the ciphertext). A TLS failure (logged by tls.c) sends
 * its alert, then closes the connection (h2_flush_tls). */
static void h2_read_tls(net__h2_conn *h, char *p, size_t n) {
  if (net__tls_feed(h->tls, p, n)) {
    net__h2_conn_close(h, ORR_ENOMEM);
    return;
  }
  /* |p| is the thread's read buffer (h2_alloc_cb), free again. */
  for (;;) {
    ssize_t got = net__tls_read(h->tls, p, NET__RBUF_SIZE);
    if (got == 0) break;
    if (got == ORR_ECLOSED) {
      net__h2_conn_close(h, ORR_ECLOSED);
      return;
    }
    if (got < 0) {
      h->err = ORR_EPROTO;
      break;
    }
    ssize_t rv = nghttp2_session_mem_recv(h->session, (const uint8_t *)p, (size_t)got);
    if (rv < 0) {
      net__h2_conn_close(h, ORR_EPROTO);
      return;
    }
  }
  net__h2_conn_kick(h);
}

static void h2_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  net__h2_conn *h = stream->data;
  if (h->closing) return;
  if (nread < 0) {
    net__h2_conn_close(h, nread == UV_EOF       ? ORR_ECLOSED
                          : nread == UV_ENOBUFS ? ORR_ENOMEM
                                                : ORR_EIO);
    return;
  }
  if (nread == 0) return;
  if (h->tls) {
    h2_read_tls(h, buf->base, (size_t)nread);
    return;
  }
  ssize_t rv = nghttp2_session_mem_recv(h->session, (const uint8_t *)buf->base, (size_t)nread);
  if (rv < 0) {
    /* Fatal (bad preface, flooding, callback failure): nghttp2 may have
     * queued a GOAWAY, but the peer is not worth waiting for. */
    net__h2_conn_close(h, ORR_EPROTO);
    return;
  }
  /* Note 5: without owner work, a pass only when there is output. */
  if (h->ops->tick)
    net__h2_conn_kick(h);
  else
    net__h2_conn_kick_output(h);
}

void net__h2_conn_set_tls(net__h2_conn *h, net__tls *tls) { h->tls = tls; }

int net__h2_conn_start(net__h2_conn *h) {
  h->connected = 1;
  /* a client's ClientHello goes out with the first flush */
  if (h->tls && !h->tls->server && net__tls_handshake(h->tls) == ORR_EPROTO) return ORR_EPROTO;
  uv_tcp_nodelay(&h->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&h->tcp, h2_alloc_cb, h2_read_cb);
  if (rc) return rc;
  net__h2_conn_kick(h);
  return 0;
}
