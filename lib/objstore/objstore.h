/* objstore: the bucket — object storage on a local directory (FILESYSTEM) or
 * S3 (SigV4-signed by libcurl), configured with Thanos's objstore YAML.
 * Prefix: objstore_. Depends on base, net, libyaml, libcurl. */
#ifndef ORR_OBJSTORE_H
#define ORR_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* DESIGN NOTES
 *
 * 1. Two APIs over one implementation. The blocking API (objstore_get, _put_file,
 *    _iter, ...) is the implementation; it is thread-safe and meant for worker
 *    threads (shipper, compactor, store gateway's fetchers). The async API
 *    (objstore_async_*) runs one blocking operation on the libuv thread pool
 *    (uv_queue_work) and calls back on the caller's loop: a daemon's loop never
 *    waits on the bucket.
 * 2. S3 requests do not run on the caller's thread: a bucket of type S3 owns a
 *    private thread with its own libuv loop and one net_http_client (a curl
 *    multi), so every caller shares one connection pool. A blocking call posts
 *    its request to that loop (uv_async) and waits on a condition variable. A
 *    blocking call must therefore never be made from that private loop — it is
 *    never exposed to callers, so this cannot happen.
 * 3. Streaming GETs keep memory bounded: the private loop buffers at most
 *    OBJSTORE_STREAM_BUF bytes per request and pauses curl beyond; the caller's
 *    thread drains the buffer into its body callback and resumes the transfer.
 * 4. Uploads never hold a whole file: objects up to part_size go out as one
 *    PUT read from the file; larger ones as a multipart upload whose parts are
 *    read from their file region (pread) and re-read on retry. A failed
 *    multipart upload is aborted, so no object appears; a single PUT is atomic
 *    on S3. The filesystem backend writes "<key>.tmp-<random>", fsyncs and
 *    renames, so a crash never leaves a half object under the real name; such
 *    leftovers are never listed.
 * 5. Errors: every operation returns 0 or an ORR_E* code (ORR_ENOTFOUND for a
 *    missing object, distinguishable by callers) and, when |err| is not NULL,
 *    writes one line naming what failed, e.g.
 *    "objstore: s3 get bucket=B key=K: NoSuchKey: The specified key does not exist. (HTTP 404)".
 * 6. Keys are relative, "/"-separated, without "." or ".." segments, empty
 *    segments or a leading "/"; the config's prefix is prepended to every key
 *    and stripped from listed names.
 */

typedef struct objstore_bucket objstore_bucket;

/* Bytes buffered per streaming GET before the transfer is paused. */
#define OBJSTORE_STREAM_BUF (256u * 1024)

/* ---------------------------------------------------------------- config */

typedef enum { OBJSTORE_FILESYSTEM = 1, OBJSTORE_S3 } objstore_type;

/* A parsed bucket configuration; strings are owned by the config. */
typedef struct objstore_config {
  objstore_type type;
  char *prefix; /* "" or "a/b" (no leading/trailing "/") */
  /* FILESYSTEM */
  char *directory;
  /* S3 */
  char *bucket;
  char *endpoint; /* host[:port] */
  char *region;   /* "" in the YAML: us-east-1 */
  char *access_key;
  char *secret_key;
  int insecure;          /* http:// instead of https:// */
  int virtual_host;      /* resolved from bucket_lookup_type */
  int64_t part_size;     /* bytes; default 64 MiB, at least 5 MiB */
  int list_version;      /* 1 or 2 */
  int64_t idle_conn_timeout_ms;       /* default 90 s */
  int64_t response_header_timeout_ms; /* default 2 min; per request attempt */
  int64_t tls_handshake_timeout_ms;   /* connect timeout, default 10 s */
  int insecure_skip_verify;
  char *ca_file, *cert_file, *key_file;
  char *server_name; /* tls_config.server_name: the name the certificate must carry */
  int max_retries; /* attempts after the first; default 10 as minio-go (the check: 1) */
  int max_conns_per_host; /* http_config.max_conns_per_host; 0: 16 */
} objstore_config;

/* Parses Thanos objstore YAML (type: FILESYSTEM|S3, config: {...}, prefix:).
 * Returns 0 with |*out| filled (free with objstore_config_free), or
 * ORR_EINVAL with one line in |err| naming the offending key, e.g.
 * `objstore config: unknown key "bukcet" in config (S3)`. */
int objstore_config_parse(const char *yaml, size_t len, objstore_config *out, char *err,
                          size_t errlen);
/* Reads the YAML from |file| or takes |text| (exactly one must be non-NULL
 * and non-empty, as the --objstore.config-file / --objstore.config flags).
 * Same returns as objstore_config_parse, ORR_EIO for an unreadable file. */
int objstore_config_load(const char *file, const char *text, objstore_config *out, char *err,
                         size_t errlen);
void objstore_config_free(objstore_config *c);

/* ---------------------------------------------------------------- bucket */

/* Opens a bucket from |cfg| (copied). For S3 starts the private loop thread.
 * Returns 0, ORR_EINVAL (bad config, |err| says why), ORR_EIO or ORR_ENOMEM.
 * Caller frees with objstore_close(). Nothing is contacted here; see
 * objstore_check(). */
int objstore_open(const objstore_config *cfg, objstore_bucket **out, char *err, size_t errlen);
/* Stops the private thread and frees |b|. Every operation on |b| must have
 * returned (and every async op's done run) before. NULL is ignored. */
void objstore_close(objstore_bucket *b);
/* "FILESYSTEM" or "S3", and the bucket's name (directory or S3 bucket). */
const char *objstore_type_name(const objstore_bucket *b);
const char *objstore_name(const objstore_bucket *b);

/* Start-up check for daemons: the bucket is reachable and exists, with few
 * bounded retries. Returns 0 or an ORR_E* code with one line in |err|:
 * "cannot reach S3 endpoint 127.0.0.1:1: Connection refused",
 * "bucket "x" does not exist (NoSuchBucket)",
 * "access denied (InvalidAccessKeyId): ...", or for FILESYSTEM
 * "directory "/d" does not exist". */
int objstore_check(objstore_bucket *b, char *err, size_t errlen);

/* The start-up check every daemon that uses a bucket runs once (sidecar,
 * store, compact): loads the config from |file| or |text| (as
 * objstore_config_load), opens the bucket and checks it (objstore_check).
 * Returns 0 with |*out| set — caller owns it and frees with objstore_close(),
 * usually after handing it (borrowed) to the component's workers — or an
 * ORR_E* code with one line in |err| (a bad key, an unreadable file, an
 * unreachable endpoint, a missing bucket, refused credentials) and |*out|
 * NULL. Blocking: call it before the loop runs. */
int objstore_open_checked(const char *file, const char *text, objstore_bucket **out, char *err,
                          size_t errlen);

/* ---- blocking operations (any thread except the bucket's own). Every one
 * returns 0 or an ORR_E* code with one line in |err| (may be NULL). */

/* Reads the whole object into |out| (appended). More than |max_bytes| →
 * ORR_ELIMIT. Missing → ORR_ENOTFOUND. */
int objstore_get(objstore_bucket *b, const char *key, size_t max_bytes, orr_buf *out, char *err,
                 size_t errlen);
/* Reads |length| bytes at |offset| into |out| (appended); fewer when the
 * object ends first. |length| 0 reads to the end. */
int objstore_get_range(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                       orr_buf *out, char *err, size_t errlen);
/* A read-only view of a byte range (objstore_get_view): |data|/|len| are
 * valid until objstore_view_release. The rest is the view's backing. */
typedef struct objstore_view {
  const char *data;
  size_t len;
  void *map__; /* a mapping of the object's file, or NULL */
  size_t maplen__;
  orr_buf buf__; /* or the bytes, read */
} objstore_view;
/* Reads |length| bytes at |offset| (fewer when the object ends first;
 * |length| 0: to the end) as a view. On the FILESYSTEM bucket a range of
 * OBJSTORE_MAP_MIN bytes or more is mapped from the object's file: no copy,
 * and pages the page cache holds cost no read (so a repeated read of the
 * same range is cheap); a smaller one is read straight into the view's
 * buffer. Other backends read into the buffer. Caller releases |v| with
 * objstore_view_release, also after an error. */
#define OBJSTORE_MAP_MIN (64u * 1024)
int objstore_get_view(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                      objstore_view *v, char *err, size_t errlen);
void objstore_view_release(objstore_view *v);
/* Body callback of a streaming get: |data| borrowed for the call; returns 0
 * or a negative ORR_E* code to stop the transfer with it. Runs on the calling
 * thread; while it runs, at most OBJSTORE_STREAM_BUF more bytes are read. */
typedef int (*objstore_body_fn)(const char *data, size_t n, void *arg);
/* Streams |length| bytes at |offset| (0/0: the whole object) to |fn|. */
int objstore_get_stream(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                        objstore_body_fn fn, void *arg, char *err, size_t errlen);
/* Uploads the file at |path| as |key|, streamed from disk. */
int objstore_put_file(objstore_bucket *b, const char *key, const char *path, char *err,
                      size_t errlen);
/* Uploads |len| bytes of |data| (borrowed for the call) as |key|. */
int objstore_put(objstore_bucket *b, const char *key, const void *data, size_t len, char *err,
                 size_t errlen);
/* Deletes |key|; missing → ORR_ENOTFOUND (as Thanos's Delete). */
int objstore_delete(objstore_bucket *b, const char *key, char *err, size_t errlen);
/* Sets |*exists| to 1 or 0; returns 0 unless the question could not be answered. */
int objstore_exists(objstore_bucket *b, const char *key, int *exists, char *err, size_t errlen);

typedef struct objstore_attrs {
  uint64_t size;
  int64_t last_modified_ms; /* unix ms */
} objstore_attrs;
int objstore_attributes(objstore_bucket *b, const char *key, objstore_attrs *out, char *err,
                        size_t errlen);

/* Called per entry of a listing, in lexical order; |name| is the key (or a
 * "dir/" entry), borrowed for the call. Returns 0 to go on, or nonzero to stop
 * (objstore_iter then returns that value). */
typedef int (*objstore_iter_fn)(const char *name, void *arg);
enum { OBJSTORE_ITER_RECURSIVE = 1 };
/* Lists keys under |dir| ("" for the root, "a/b/" or "a/b": a "/" is added)
 * as Thanos's Iter: the objects directly in it and its subdirectories as
 * "dir/sub/" entries; with OBJSTORE_ITER_RECURSIVE every object below it.
 * Directories holding no object (filesystem) are not listed. */
int objstore_iter(objstore_bucket *b, const char *dir, unsigned flags, objstore_iter_fn fn,
                  void *arg, char *err, size_t errlen);

/* ---------------------------------------------------------------- async
 * One blocking operation on the libuv thread pool of |loop|; |done| runs on
 * |loop|'s thread with the result. The op struct is borrowed until done.
 * Streaming GETs and listings are blocking only: run them on a worker
 * thread (their callbacks run there). An op occupies one pool thread while
 * it waits, so a daemon sizes UV_THREADPOOL_SIZE for its bucket concurrency. */
typedef enum {
  OBJSTORE_OP_GET = 1,    /* key, max_bytes → out */
  OBJSTORE_OP_GET_RANGE,  /* key, offset, length → out */
  OBJSTORE_OP_PUT,        /* key, data, len */
  OBJSTORE_OP_PUT_FILE,   /* key, path */
  OBJSTORE_OP_DELETE,     /* key */
  OBJSTORE_OP_EXISTS,     /* key → exists */
  OBJSTORE_OP_ATTRIBUTES, /* key → attrs */
  OBJSTORE_OP_CHECK,
} objstore_op_kind;

typedef struct objstore_op objstore_op;
struct objstore_op {
  objstore_op_kind kind;
  const char *key;
  size_t max_bytes;
  uint64_t offset, length;
  const void *data;
  size_t len;
  const char *path;
  orr_buf out; /* GET results (caller frees) */
  int exists;
  objstore_attrs attrs;
  int result;
  char err[512];
  void (*done)(objstore_op *op, void *arg);
  void *arg;
  /* private */
  uv_work_t work__;
  objstore_bucket *bucket__;
};
/* Queues |op| (filled by the caller). Returns 0 or a libuv error; on success
 * op->done runs later on |loop|. */
int objstore_async(uv_loop_t *loop, objstore_bucket *b, objstore_op *op);

/* ---------------------------------------------------------------- helpers */
/* Whether |key| is a valid object key (see note 6); 0 or ORR_EINVAL. */
int objstore_key_valid(const char *key);

#ifdef __cplusplus
}
#endif
#endif /* ORR_OBJSTORE_H */
