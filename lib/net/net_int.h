/* net_int.h: layouts and helpers shared inside the net module (not part of
 * its public face, net.h). One section per piece of work, as in net.h; tests
 * and fuzz targets of the module may include it. */
#ifndef ORR_NET_INT_H
#define ORR_NET_INT_H

#include "net.h"

/* ================================================================ HTTP server */

/* ================================================================ HTTP client */

/* ================================================================ gRPC */
#include <nghttp2/nghttp2.h>

/* An HTTP/2 connection: an nghttp2 session over a uv_tcp_t, shared by the
 * gRPC server and client (h2_conn.c). The owner embeds it and drives the
 * session through its nghttp2 callbacks; this layer moves bytes.
 *  1. At most one uv_write is in flight, holding at most ~64 KiB more than
 *     nghttp2 produced in one go: output memory is bounded, and when the
 *     socket is slow nghttp2 keeps the rest (the peer's window bounds it).
 *  2. Owner work that must not run inside nghttp2 callbacks (notifying
 *     writers, delivering completions) is deferred to ops->tick, which runs
 *     from an idle handle before each flush: net__h2_conn_kick() asks for it.
 *  3. The connection ends (peer EOF, socket error, fatal protocol error, or
 *     nothing left to read or write) by closing both handles; ops->closed
 *     runs once both close callbacks ran and the session is deleted. */
typedef struct net__h2_conn net__h2_conn;
typedef struct net__h2_ops {
  void (*tick)(net__h2_conn *h);   /* deferred owner work; may submit frames */
  void (*closed)(net__h2_conn *h); /* last callback; the owner may free |h| */
} net__h2_ops;

struct net__h2_conn {
  uv_tcp_t tcp;
  uv_idle_t idle;
  uv_write_t wreq;
  nghttp2_session *session; /* created by the owner */
  const net__h2_ops *ops;
  void *owner;
  orr_buf out;   /* bytes handed to the in-flight write */
  int err;       /* why the connection ended (0: orderly) */
  unsigned connected : 1, writing : 1, closing : 1, idle_on : 1;
  int pending_closes;
  char rbuf[64 * 1024];
};

/* Initialises both handles on |loop|. Returns 0 or a libuv error. */
int net__h2_conn_init(uv_loop_t *loop, net__h2_conn *h, const net__h2_ops *ops, void *owner);
/* Starts reading and writing once the socket is connected/accepted. */
int net__h2_conn_start(net__h2_conn *h);
/* Asks for ops->tick and a flush on the next loop iteration. */
void net__h2_conn_kick(net__h2_conn *h);
/* Closes the connection (idempotent); |err| is kept in h->err if it is the
 * first reason. */
void net__h2_conn_close(net__h2_conn *h, int err);

#endif /* ORR_NET_INT_H */
