/* net_int.h: layouts and helpers shared inside the net module (not part of
 * its public face, net.h). One section per piece of work, as in net.h; tests
 * and fuzz targets of the module may include it. */
#ifndef ORR_NET_INT_H
#define ORR_NET_INT_H

#include "net.h"

/* ================================================================ HTTP server */
#include <http_parser.h>
#include <zlib.h>

/* The request parser: http-parser callbacks assemble one request at a time
 * into a net__http_msg, enforcing the size limits. No I/O: bytes in, events
 * out, so it can be fuzzed. After NET__HP_READY the parser is paused; the
 * caller takes the message, and the bytes it did not consume belong to the
 * next request (pipelining). */
typedef struct net__http_msg {
  orr_arena *arena; /* owns this struct and every string below */
  const char *method;
  char *target;     /* raw request target */
  char *path;       /* decoded path */
  net_http_kv *headers;
  size_t nheaders;
  net_http_kv *params; /* body form params, then query params */
  size_t nparams;
  char *body;
  size_t body_len;
  unsigned short http_major, http_minor;
  bool keep_alive;
  uint64_t start_ns;
} net__http_msg;

enum { NET__HP_MORE = 0, NET__HP_READY, NET__HP_ERROR };

typedef struct net__http_parse {
  http_parser p;
  size_t max_header, max_url, max_body;
  orr_arena *arena;  /* arena of the request being assembled, or NULL */
  orr_buf url, field, value, body;
  orr_buf hdrs;      /* array of net_http_kv, copied into the arena at the end */
  size_t header_bytes;
  bool in_message;   /* saw the first byte of a request */
  bool headers_done;
  bool last_was_value;
  bool expect_continue; /* the request awaits "100 Continue" before its body */
  uint64_t start_ns;
  int err_status;    /* on NET__HP_ERROR: 400, 413, 414, 431 */
  const char *err_msg;
  net__http_msg *ready;
} net__http_parse;

void net__http_parse_init(net__http_parse *ps, size_t max_header, size_t max_url,
                          size_t max_body);
/* Frees everything the parser holds (including an untaken message). */
void net__http_parse_free(net__http_parse *ps);
/* Feeds |len| bytes; returns how many were consumed and sets *event. After
 * NET__HP_ERROR the parser is dead (err_status/err_msg say why). */
size_t net__http_parse_feed(net__http_parse *ps, const char *data, size_t len, int *event);
/* Takes the finished message (caller frees with orr_arena_destroy(msg->arena))
 * and unpauses the parser. */
net__http_msg *net__http_parse_take(net__http_parse *ps);

/* URL decoding as Go's net/url: |plus_space| turns '+' into ' ' (query).
 * Writes at most |n| bytes to |out|, NUL-terminates, sets *outlen; returns 0
 * or ORR_EINVAL for a bad %-escape. |out| may equal |in|. */
int net__url_unescape(const char *in, size_t n, bool plus_space, char *out, size_t *outlen);
/* Appends the pairs of |q| (a=b&c=d) to |kv| (an orr_buf of net_http_kv),
 * strings in |a|; pairs with ';' or bad escapes are skipped as Go does. */
int net__parse_query(orr_arena *a, const char *q, size_t n, orr_buf *kv);
/* Appends the value parts of a multipart/form-data |body| to |kv| (an
 * orr_buf of net_http_kv, strings in |a|) as Go's ParseMultipartForm (see
 * http_multipart.c). |content_type| is the request's header (borrowed).
 * Returns 0, ORR_EINVAL (not multipart/form-data, no boundary, a syntax
 * error or a limit: |kv| is left as it was) or ORR_ENOMEM. */
#define NET__MULTIPART_MAX_PARTS 1000
#define NET__MULTIPART_MAX_HEADERS 10000
int net__parse_multipart(orr_arena *a, const char *content_type, const char *body, size_t n,
                         orr_buf *kv);

/* Router lookup without I/O. Returns 200 and the route's handler, name and
 * path variables (in |a|), 404, or 405 with *allow the NET_HTTP_* set. */
typedef struct net__http_route_match {
  net_http_handler handler;
  void *arg;
  const char *name;
  net_http_kv *vars;
  size_t nvars;
  unsigned allow;
} net__http_route_match;
int net__http_router_match(const net_http_router *r, const char *method, const char *path,
                           orr_arena *a, net__http_route_match *m);
/* Sets the route data net_http_req_route()/var() return. */
void net__http_req_set_route(net_http_req *req, const char *name, net_http_kv *vars,
                             size_t nvars);

/* ================================================================ TLS */
#include <sys/types.h>

/* One connection's TLS state (tls.c): an SSL over two memory BIOs. The
 * owner feeds ciphertext it read (net__tls_feed), takes plaintext
 * (net__tls_read, which drives the handshake), encrypts with
 * net__tls_write, and sends whatever net__tls_pending_out() reports —
 * after every feed and read too (handshake records, session tickets,
 * alerts). */
typedef struct net__tls {
  struct ssl_st *ssl;
  struct bio_st *rbio, *wbio;
  const char *alpn; /* static: "h2", "http/1.1" */
  char peer[64];    /* "ip:port" for logs */
  unsigned server : 1, handshake_done : 1, failed : 1, logged : 1, shut : 1;
} net__tls;

/* |alpn| is static; |peer| is copied (for logs); |host| is the name dialled
 * (client only: checked against the certificate unless the context names
 * another). Returns 0 or ORR_ENOMEM. */
int net__tls_new(net_tls_ctx *ctx, const char *alpn, const char *peer, const char *host,
                 net__tls **out);
void net__tls_free(net__tls *t);
int net__tls_feed(net__tls *t, const void *p, size_t n);
/* Advances the handshake: 0 once done, ORR_EAGAIN while it needs more
 * bytes, ORR_EPROTO when it failed (logged once). */
int net__tls_handshake(net__tls *t);
/* Plaintext bytes read (> 0), 0 when none now, ORR_ECLOSED at the peer's
 * close_notify, ORR_EPROTO on failure (logged once). */
ssize_t net__tls_read(net__tls *t, void *out, size_t cap);
/* Encrypts all of |p|. Returns 0 or ORR_EPROTO. */
int net__tls_write(net__tls *t, const void *p, size_t n);
/* Queues a close_notify (once, after a handshake). */
void net__tls_shutdown(net__tls *t);
size_t net__tls_pending_out(const net__tls *t);
/* Moves up to |cap| bytes of ciphertext out; returns how many. */
size_t net__tls_take_out(net__tls *t, void *out, size_t cap);

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
 *     runs once both close callbacks ran and the session is deleted.
 *  4. An idle connection costs little: reads go through one buffer per
 *     thread (nghttp2 consumes every byte inside the read callback), and the
 *     write buffer is freed whenever nothing is left to send.
 *  5. Output goes out with one write(2) when the socket takes it all; only
 *     the rest waits for a uv_write (note 1). An owner without ops->tick
 *     (the client) gets a pass after reading only when nghttp2 has output
 *     (a WINDOW_UPDATE, an ACK) or the session is over: a response read
 *     costs no idle pass and no empty nghttp2_session_mem_send.
 *  6. When a loop writes to many connections at once (a gateway's fan-out
 *     to a thousand endpoints), the write(2)s beyond the first few of a
 *     millisecond go to one writer thread: on loopback a write also runs
 *     the receiver's TCP input, so it was a third of the loop's time at
 *     such a fan-out, and now runs beside the reading of the answers. A
 *     handed-off write counts as the write in flight (|writing|). */
typedef struct net__h2_conn net__h2_conn;
/* A write handed to the writer thread (h2_conn.c, note 6). */
typedef struct net__h2_witem {
  struct net__h2_witem *next;
  struct net__h2_wq *q; /* the loop's completion queue */
  int fd;
  const char *data;
  size_t len, sent;
  int err; /* errno of a failed send, 0 */
} net__h2_witem;
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
  unsigned tls_failed : 1; /* the TLS handshake (or a record) failed */
  unsigned in_writer : 1;  /* |wi| is with the writer thread (note 6) */
  unsigned close_tcp : 1;  /* closing: the socket closes once |wi| is back */
  int pending_closes;
  uint64_t write_start_ms; /* uv_now() when the write in flight started */
  /* TLS (NULL: plaintext, and nothing below is used). Ciphertext read is
   * fed to the SSL and the plaintext it yields to nghttp2 in the same read
   * callback; nghttp2's output is pulled only once the handshake is done,
   * encrypted, and |tout| carries the ciphertext of the write in flight. */
  net__tls *tls;
  orr_buf tout;
  net__h2_witem wi;
};

/* Initialises both handles on |loop|. Returns 0 or a libuv error. */
int net__h2_conn_init(uv_loop_t *loop, net__h2_conn *h, const net__h2_ops *ops, void *owner);
/* Speaks TLS on the connection (before net__h2_conn_start): |tls| is
 * taken, freed with the connection. */
void net__h2_conn_set_tls(net__h2_conn *h, net__tls *tls);
/* Starts reading and writing once the socket is connected/accepted. */
int net__h2_conn_start(net__h2_conn *h);
/* Asks for ops->tick and a flush on the next loop iteration. */
void net__h2_conn_kick(net__h2_conn *h);
/* The same, only when the session has output or is over (note 5). */
void net__h2_conn_kick_output(net__h2_conn *h);
/* Writes the session's output now if the connection is idle (connected,
 * no write in flight) and its owner has no tick, else net__h2_conn_kick. */
void net__h2_conn_flush(net__h2_conn *h);
/* Closes the connection (idempotent); |err| is kept in h->err if it is the
 * first reason. */
void net__h2_conn_close(net__h2_conn *h, int err);
/* For tests (note 6): how many writes per millisecond of a loop stay
 * inline (0: every write goes to the writer thread), and how many writes
 * the writer thread was given so far. */
void net__h2_set_inline_writes(int n);
/* For tests: the writer thread sends at most |n| bytes of a write (as if
 * the socket were full; the loop sends the rest). 0: no limit. */
void net__h2_set_writer_max(size_t n);
size_t net__h2_writer_writes(void);
/* For tests (h2_conn.c note 7): the writer sends with send(2) (0) or
 * through its io_uring if it has one (1, the default); how many sends went
 * through the ring so far. */
void net__h2_set_writer_ring(int on);
size_t net__h2_writer_ring_sends(void);
/* The allocator for the gRPC client's sessions (h2_mem.c), or NULL (malloc)
 * in sanitizer builds; net__h2_mem_pool() is the pool in every build (tests). */
nghttp2_mem *net__h2_mem(void);
nghttp2_mem *net__h2_mem_pool(void);

/* For fuzzing and tests: a server connection of |s| without a socket. Feed
 * the client's bytes with nghttp2_session_mem_recv((*out)->session, ...) and
 * take the server's with nghttp2_session_mem_send(); handlers run as usual
 * (deferred work runs from the loop). End it with net__h2_conn_close() and
 * run the loop until it is freed. Returns 0 or ORR_ENOMEM. */
int net__grpc_server_fake_conn(net_grpc_server *s, net__h2_conn **out);
/* The same for a client: calls started afterwards go to this connection
 * (feed it the server's bytes) until it closes. Returns 0 or ORR_ENOMEM. */
int net__grpc_client_fake_conn(net_grpc_client *c, net__h2_conn **out);

/* ================================================================ YAML (web and client config) */
#include <yaml.h>

/* One YAML document being read strictly (yaml_walk.c). |what| prefixes
 * every message ("web config"); errors name the key and line, never a
 * value. Zero-initialise, set what/err/errlen, net__yaml_load(), walk,
 * net__yaml_free(). */
typedef struct net__yaml {
  const char *what;
  char *err;
  size_t errlen;
  yaml_document_t doc;
  bool loaded;
} net__yaml;

int net__yaml_err(net__yaml *y, const char *fmt, ...) ORR_PRINTF(2, 3);
int net__yaml_load(net__yaml *y, const char *text, size_t len);
void net__yaml_free(net__yaml *y);
yaml_node_t *net__yaml_root(net__yaml *y);
yaml_node_t *net__yaml_node(net__yaml *y, int id);
bool net__yaml_is_null(const yaml_node_t *n);
size_t net__yaml_line(const yaml_node_t *n);
/* A scalar as a string ("" for null), or NULL after an error. */
const char *net__yaml_str(net__yaml *y, yaml_node_t *n, const char *where, const char *key);
int net__yaml_bool(net__yaml *y, yaml_node_t *n, const char *where, const char *key, bool *out);
int net__yaml_unknown(net__yaml *y, yaml_node_t *k, const char *type);
int net__yaml_want_map(net__yaml *y, yaml_node_t *n, const char *where);
const char *net__yaml_key(yaml_node_t *k);
/* Appends |ch| as it goes inside a double-quoted YAML string ("\"", "\\",
 * control bytes as \xNN). */
void net__yaml_put_char(orr_buf *b, char ch);

#define NET__YAML_PAIRS(y, map, k, v)                                                     \
  for (yaml_node_pair_t *pair__ = (map)->data.mapping.pairs.start;                        \
       pair__ < (map)->data.mapping.pairs.top; pair__++)                                  \
    for (yaml_node_t *k = net__yaml_node((y), pair__->key),                               \
                     *v = net__yaml_node((y), pair__->value), *once__ = k;                \
         once__; once__ = NULL)

/* Reads a whole small file (at most |max| bytes) into |*out| (NUL-terminated,
 * caller frees). Returns 0, ORR_EIO (errno's text in |err| with |path|),
 * ORR_ELIMIT or ORR_ENOMEM. */
int net__read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                   size_t errlen);

/* ================================================================ read buffer */
/* One read buffer per thread, shared by every connection of the thread
 * that hands its bytes on before the read callback returns: the HTTP
 * server's TLS connections (the SSL copies the ciphertext at once, note 6
 * of http_server.c) and the HTTP/2 connections (nghttp2 consumes all it is
 * given, gRPC note 4; with TLS the plaintext is read back into the same
 * buffer once the SSL has taken the ciphertext). libuv calls one read
 * callback at a time per thread, so one buffer serves them all. */
#define NET__RBUF_SIZE (64 * 1024)
/* The calling thread's buffer of NET__RBUF_SIZE bytes, allocated on first
 * use and freed when the thread exits; NULL when out of memory (the alloc
 * callback then gives libuv an empty buffer: the read callback sees
 * UV_ENOBUFS). */
char *net__thread_rbuf(void);

#endif /* ORR_NET_INT_H */
