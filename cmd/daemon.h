/* daemon.h: the scaffold every orrery component runs in — one libuv loop, the
 * HTTP server with /metrics, /-/healthy and /-/ready, HTTP metrics, the web
 * configuration (--http.config: basic auth, headers, TLS; re-read on SIGHUP)
 * and SIGTERM/SIGINT handling with a graceful drain. */
#ifndef ORR_DAEMON_H
#define ORR_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "net.h"

typedef struct daemon_config {
  const char *component;        /* "sidecar": for logs */
  const char *http_address;     /* "host:port" to listen on */
  int64_t http_grace_period_ms; /* in-flight requests get this long on shutdown */
  const net_http_config *http;  /* server limits; NULL: defaults (copied) */
} daemon_config;

typedef struct daemon_ctx daemon_ctx;

/* The --http.config file (Prometheus's web configuration: TLS, basic auth,
 * response headers) every daemon_new of this process applies to its HTTP
 * server; NULL or "" for none. The path is copied. The file is loaded once
 * here to check it: a bad one logs one error naming the key and returns
 * ORR_EINVAL (the command exits 1); 0 otherwise. Not thread-safe: call
 * before daemon_new. */
int daemon_set_http_config_file(const char *path);

/* Creates the loop, router and HTTP server (not yet listening) and registers
 * the HTTP and process metrics on orr_registry_default(). The logger must be
 * set up. |cfg| is copied (its strings too). Returns 0, ORR_EINVAL or
 * ORR_ENOMEM; caller frees *out with daemon_free() after daemon_run(). */
int daemon_new(const daemon_config *cfg, daemon_ctx **out);
/* The loop every component's I/O runs on (borrowed). */
uv_loop_t *daemon_loop(daemon_ctx *d);
/* The HTTP server (borrowed), e.g. for net_http_server_set_tls() before
 * daemon_run(). */
net_http_server *daemon_http_server(daemon_ctx *d);
/* The router, for the component's own routes (borrowed). Add routes before
 * daemon_run() or from the loop thread. */
net_http_router *daemon_router(daemon_ctx *d);
/* /-/ready answers 503 until the component says it is ready. Thread-safe. */
void daemon_set_ready(daemon_ctx *d, bool ready);
/* Registers |fn(d, arg)|, run on the loop thread after the HTTP server has
 * drained, in registration order: close the component's handles there.
 * Returns 0 or ORR_ENOMEM. */
int daemon_on_shutdown(daemon_ctx *d, void (*fn)(daemon_ctx *d, void *arg), void *arg);
/* Registers |fn(d, arg, err, errlen)|, run on the loop thread on SIGHUP, in
 * registration order: re-read the component's configuration files (file SD,
 * ...). |fn| returns 0, or an ORR_E* code with one line in |err| — the
 * component keeps its previous settings for that part. The daemon logs
 * "Reloading configuration file" and then "Completed loading of
 * configuration file" or "Error reloading config" (with the first error),
 * and sets orrery_config_last_reload_successful. SIGHUP never stops the
 * process. Returns 0 or ORR_ENOMEM. */
int daemon_on_reload(daemon_ctx *d, int (*fn)(daemon_ctx *d, void *arg, char *err, size_t errlen),
                     void *arg);
/* Listens, logs "listening", and runs the loop until shutdown (a first
 * SIGTERM/SIGINT or daemon_stop()): drains HTTP for the grace period, runs
 * the shutdown hooks, stops the loop. A second signal exits the process at
 * once (status 1). Returns the exit status: 0 after a clean shutdown, 1 if
 * the address could not be bound. */
int daemon_run(daemon_ctx *d);
/* Starts the shutdown as a first signal would (at once if daemon_run has
 * not started yet). Thread-safe. */
void daemon_stop(daemon_ctx *d);
/* The bound HTTP port once daemon_run() is listening, else -1. */
int daemon_http_port(const daemon_ctx *d);
/* The gRPC server's TLS context from Thanos's --grpc-server-tls-* flags
 * (|client_ca| set: client certificates required and verified). *out is
 * NULL when neither |cert| nor |key| is given (plaintext). Returns 0, or 1
 * after logging why (one of cert/key missing, unreadable file, bad
 * version). Caller releases *out with net_tls_ctx_unref(). */
int daemon_grpc_server_tls(uv_loop_t *loop, const char *cert, const char *key,
                           const char *client_ca, const char *min_version, net_tls_ctx **out);
/* Frees the daemon; the loop is closed (handles the component left open are
 * closed first). */
void daemon_free(daemon_ctx *d);

#endif /* ORR_DAEMON_H */
