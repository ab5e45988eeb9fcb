/* sidecar.h: `orrery sidecar` — runs beside one Prometheus. It serves that
 * Prometheus's data over StoreAPI (its persisted blocks read from
 * --tsdb.path, the head through remote read with chunks passed through
 * undecoded, advertising its external labels and time range) and
 * uploads every finished block to the bucket (the shipper: chunks, index,
 * then meta.json last; a state file makes it crash-safe).
 *
 * Exposes: sidecar_main() for the command (cmd.c). Files: sidecar.c (the
 * daemon, StoreAPI over remote read), blocks.c (the persisted blocks read
 * from --tsdb.path), prom.c (readers of Prometheus's API
 * answers, no I/O), shipper.c (block upload), shipper_sidecar.c (the shipper
 * inside the daemon), cmd.c (flags). */
#ifndef ORR_SIDECAR_H
#define ORR_SIDECAR_H

#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "labels.h"
#include "net.h"
#include "objstore.h"

typedef struct sidecar_config {
  const char *prometheus_url;
  /* --prometheus.http-client(-file): authorization and TLS for every
   * request to Prometheus, borrowed; NULL: none. */
  const net_http_client_config *prometheus_client;
  int64_t ready_timeout_ms;
  const char *tsdb_path;
  /* --tsdb.read-blocks: serve what Prometheus persisted in |tsdb_path|'s
   * blocks from the files, only the head through remote read. */
  bool read_blocks;
  /* The checked bucket (objstore_open_checked) the shipper uploads to,
   * borrowed until sidecar_main() returns; NULL: uploads are off. */
  objstore_bucket *bucket;
  bool upload_compacted;
  const char *min_time; /* RFC3339 or a duration relative to now ("-1d") */
  const char *http_address;
  int64_t http_grace_ms;
  const char *grpc_address;
  int64_t grpc_grace_ms;
  int64_t grpc_write_timeout_ms; /* --grpc-server-write-timeout; 0: never */
  /* --grpc-server-tls-*; no cert and key: plaintext */
  const char *grpc_tls_cert, *grpc_tls_key, *grpc_tls_client_ca, *grpc_tls_min_version;
} sidecar_config;

typedef struct sidecar sidecar;

/* Runs the sidecar until SIGTERM/SIGINT. Returns the exit status: 0 after a
 * clean shutdown, 1 when it refused to start (one line logged). */
int sidecar_main(const sidecar_config *cfg);

#endif
