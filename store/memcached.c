/* memcached.c: the index cache's MEMCACHED backend (Thanos's
 * --index-cache.config type: MEMCACHED), speaking memcached's text protocol
 * over blocking sockets from the query worker threads.
 *
 * NOTES
 * 1. Keys: memcached's keys are at most 250 bytes without spaces, ours are
 *    any bytes; the memcached key is a hex digest of ours, and the value
 *    starts with our key so that a digest collision reads as a miss.
 * 2. Connections are pooled (a mutex-guarded stack); a connection that
 *    fails or times out (--index-cache.config timeout) is closed. After a
 *    failure the cache is skipped for a second, so memcached going away
 *    costs a query at most one timeout, then only the bucket reads it
 *    would have saved: it slows queries down, it never fails them.
 * 3. Sets use noreply: a query never waits for one. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include "store_int.h"

#define MC_MAX_CONNS 32
#define MC_MAX_ITEM (1000u * 1000) /* memcached's default item size limit, less room */

struct store_memcached {
  struct sockaddr_in addr;
  int timeout_ms;
  pthread_mutex_t mu;
  int idle[MC_MAX_CONNS];
  int nidle;
  atomic_int_least64_t down_until_ms;
};

int store_memcached_new(const char *address, int64_t timeout_ms, store_memcached **out) {
  const char *colon = strrchr(address, ':');
  if (!colon) return ORR_EINVAL;
  char host[64];
  snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
  store_memcached *m = calloc(1, sizeof(*m));
  if (!m) return ORR_ENOMEM;
  m->addr.sin_family = AF_INET;
  m->addr.sin_port = htons((uint16_t)atoi(colon + 1));
  if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
  if (inet_pton(AF_INET, host, &m->addr.sin_addr) != 1) {
    free(m);
    return ORR_EINVAL;
  }
  m->timeout_ms = timeout_ms > 0 ? (int)timeout_ms : 500;
  pthread_mutex_init(&m->mu, NULL);
  atomic_init(&m->down_until_ms, 0);
  *out = m;
  return 0;
}

void store_memcached_free(store_memcached *m) {
  if (!m) return;
  for (int i = 0; i < m->nidle; i++) close(m->idle[i]);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static void mark_down(store_memcached *m) {
  atomic_store(&m->down_until_ms, orr_now_ms() + 1000);
}

static int conn_get(store_memcached *m) {
  if (orr_now_ms() < atomic_load(&m->down_until_ms)) return -1;
  pthread_mutex_lock(&m->mu);
  int fd = m->nidle > 0 ? m->idle[--m->nidle] : -1;
  pthread_mutex_unlock(&m->mu);
  if (fd >= 0) return fd;
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int rc = connect(fd, (struct sockaddr *)&m->addr, sizeof m->addr);
  if (rc != 0 && errno == EINPROGRESS) {
    struct pollfd p = {fd, POLLOUT, 0};
    int err = 0;
    socklen_t el = sizeof err;
    rc = poll(&p, 1, m->timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 &&
                 err == 0
             ? 0
             : -1;
  }
  if (rc != 0) {
    close(fd);
    mark_down(m);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  struct timeval tv = {m->timeout_ms / 1000, (m->timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void conn_put(store_memcached *m, int fd, bool ok) {
  if (!ok) {
    close(fd);
    mark_down(m);
    return;
  }
  pthread_mutex_lock(&m->mu);
  if (m->nidle < MC_MAX_CONNS) {
    m->idle[m->nidle++] = fd;
    fd = -1;
  }
  pthread_mutex_unlock(&m->mu);
  if (fd >= 0) close(fd);
}

static bool send_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= (size_t)w;
  }
  return true;
}

/* Note 1: "o:<type><32 hex digits>". */
static void mc_key(char type, const void *key, size_t klen, char *out) {
  uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull;
  const uint8_t *p = key;
  for (size_t i = 0; i < klen; i++) {
    h1 = (h1 ^ p[i]) * 1099511628211ull;
    h2 = (h2 + p[i]) * 0xff51afd7ed558ccdull;
    h2 ^= h2 >> 29;
  }
  snprintf(out, 40, "o:%c%016llx%016llx", type, (unsigned long long)h1, (unsigned long long)h2);
}

bool store_memcached_get(store_memcached *m, char type, const void *key, size_t klen,
                         orr_buf *out) {
  char k[48], cmd[64];
  mc_key(type, key, klen, k);
  int fd = conn_get(m);
  if (fd < 0) return false;
  int cl = snprintf(cmd, sizeof cmd, "get %s\r\n", k);
  orr_buf r = {0};
  bool ok = send_all(fd, cmd, (size_t)cl), hit = false;
  size_t need = 0, hdr = 0;
  while (ok) {
    if (orr_buf_reserve(&r, 65536)) {
      ok = false;
      break;
    }
    ssize_t n = recv(fd, r.data + r.len, r.cap - r.len - 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    r.len += (size_t)n;
    r.data[r.len] = 0;
    if (!hdr) {
      char *eol = strstr(r.data, "\r\n");
      if (!eol) continue;
      if (strncmp(r.data, "END\r\n", 5) == 0) break; /* a miss */
      unsigned flags;
      unsigned long bytes;
      char kk[64];
      if (sscanf(r.data, "VALUE %63s %u %lu", kk, &flags, &bytes) != 3) {
        ok = false;
        break;
      }
      hdr = (size_t)(eol - r.data) + 2;
      need = hdr + bytes + 2 + 5; /* data, CRLF, END CRLF */
    }
    if (r.len >= need) {
      hit = true;
      break;
    }
  }
  conn_put(m, fd, ok);
  if (hit) {
    /* Note 1: the value is klen (4 bytes), our key, the cached bytes. */
    const uint8_t *v = (const uint8_t *)r.data + hdr;
    size_t vl = need - hdr - 7;
    uint32_t kl = vl >= 4 ? (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3]
                          : UINT32_MAX;
    hit = vl >= 4 && kl == klen && vl - 4 >= kl && memcmp(v + 4, key, klen) == 0 &&
          orr_buf_append(out, v + 4 + kl, vl - 4 - kl) == 0;
  }
  orr_buf_free(&r);
  return hit;
}

void store_memcached_set(store_memcached *m, char type, const void *key, size_t klen,
                         const void *val, size_t vlen) {
  if (4 + klen + vlen > MC_MAX_ITEM) return;
  char k[48];
  mc_key(type, key, klen, k);
  orr_buf b = {0};
  orr_buf_printf(&b, "set %s 0 0 %zu noreply\r\n", k, 4 + klen + vlen);
  orr_buf_put_be32(&b, (uint32_t)klen);
  orr_buf_append(&b, key, klen);
  orr_buf_append(&b, val, vlen);
  orr_buf_puts(&b, "\r\n");
  if (!b.oom) {
    int fd = conn_get(m);
    if (fd >= 0) conn_put(m, fd, send_all(fd, b.data, b.len));
  }
  orr_buf_free(&b);
}
