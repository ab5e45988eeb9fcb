/* net: the networking core every daemon runs on, all on one libuv loop —
 * the HTTP/1.1 server and router, the HTTP client (libcurl multi driven by
 * libuv), and gRPC over HTTP/2 (nghttp2), server and client.
 * Prefix: net_. Depends on base, libuv, http-parser, zlib, libcurl, nghttp2. */
#ifndef ORR_NET_H
#define ORR_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ HTTP server */
/* (section owned by the HTTP server work) */

/* ================================================================ HTTP client */
/* (section owned by the HTTP client work) */

/* ================================================================ gRPC */
/* (section owned by the gRPC work) */

#ifdef __cplusplus
}
#endif
#endif /* ORR_NET_H */
