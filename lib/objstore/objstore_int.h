/* objstore_int.h: what the objstore files share — the backend interface a
 * bucket dispatches to, error formatting, and the S3 XML scanner (s3_xml.c,
 * pure bytes, fuzzed). */
#ifndef ORR_OBJSTORE_INT_H
#define ORR_OBJSTORE_INT_H

#include "objstore.h"

/* One backend. Keys given here already carry the config's prefix. Each
 * function has the contract of the public one of the same name. */
typedef struct objstore__ops {
  const char *name; /* "FILESYSTEM", "S3" */
  int (*check)(objstore_bucket *b, char *err, size_t errlen);
  int (*get_stream)(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                    objstore_body_fn fn, void *arg, char *err, size_t errlen);
  int (*put_file)(objstore_bucket *b, const char *key, const char *path, char *err, size_t errlen);
  int (*put)(objstore_bucket *b, const char *key, const void *data, size_t len, char *err,
             size_t errlen);
  int (*del)(objstore_bucket *b, const char *key, char *err, size_t errlen);
  int (*attributes)(objstore_bucket *b, const char *key, objstore_attrs *out, char *err,
                    size_t errlen);
  /* |dir| is "" or ends in "/"; names are full keys (prefix included). */
  int (*iter)(objstore_bucket *b, const char *dir, unsigned flags, objstore_iter_fn fn, void *arg,
              char *err, size_t errlen);
  void (*close)(objstore_bucket *b);
  /* Optional (NULL: read through get_stream). Appends the range to |out|
   * with one copy (read_range), or makes |v| a view of it (view_range). */
  int (*read_range)(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                    orr_buf *out, char *err, size_t errlen);
  int (*view_range)(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                    objstore_view *v, char *err, size_t errlen);
} objstore__ops;

struct objstore_bucket {
  const objstore__ops *ops;
  objstore_config cfg; /* owned copy */
  void *impl;          /* the backend's state */
};

extern const objstore__ops objstore__fs_ops;
extern const objstore__ops objstore__s3_ops;
int objstore__fs_open(objstore_bucket *b, char *err, size_t errlen);
int objstore__s3_open(objstore_bucket *b, char *err, size_t errlen);

/* snprintf into |err| when it is not NULL; returns |rc|. */
int objstore__err(int rc, char *err, size_t errlen, const char *fmt, ...) ORR_PRINTF(4, 5);

/* ---------------------------------------------------------------- S3 XML
 * A small, bounds-checked scanner for the few S3 response documents we read.
 * It reports elements and their text (entities decoded); it does not
 * validate the document beyond what these need. */

/* Events: |depth| is 1 for the root element; |path| holds the names from the
 * root ("ListBucketResult/Contents/Key"). For TEXT, |text|/|n| is the decoded
 * text of a leaf element (borrowed for the call). Return nonzero to stop. */
typedef enum { S3_XML_START = 1, S3_XML_TEXT, S3_XML_END } s3__xml_event;
typedef int (*s3__xml_fn)(s3__xml_event ev, const char *path, int depth, const char *text,
                          size_t n, void *arg);
/* Scans |p|/|n|. Returns 0, ORR_ECORRUPT for malformed XML, ORR_ELIMIT for
 * too deep nesting or a too long path, ORR_ENOMEM, or what |fn| stopped with. */
int s3__xml_scan(const char *p, size_t n, s3__xml_fn fn, void *arg);

/* One listing page. Strings are owned by |arena|. */
typedef struct s3__list_entry {
  const char *name;
  uint64_t size;
  int is_prefix;
} s3__list_entry;
typedef struct s3__list_page {
  s3__list_entry *v;
  size_t n, cap;
  int truncated;
  const char *next_token; /* NextContinuationToken (v2) or NextMarker (v1), or NULL */
} s3__list_page;
/* Parses a ListBucketResult (v1 or v2). Returns 0, ORR_ECORRUPT (also when
 * the root is not ListBucketResult) or ORR_ENOMEM. */
int s3__xml_parse_list(const char *p, size_t n, orr_arena *arena, s3__list_page *out);
/* Parses an <Error> document: Code and Message into the buffers (truncated,
 * NUL-terminated). Returns 0 or ORR_ECORRUPT when it is not one. */
int s3__xml_parse_error(const char *p, size_t n, char *code, size_t codelen, char *msg,
                        size_t msglen);
/* Text of the element at |path| ("InitiateMultipartUploadResult/UploadId")
 * into |out| (NUL-terminated). Returns 0, ORR_ENOTFOUND, ORR_ELIMIT (longer
 * than |outlen| - 1) or ORR_ECORRUPT. */
int s3__xml_find(const char *p, size_t n, const char *path, char *out, size_t outlen);
/* Parses an RFC 3339 / ISO 8601 time "2026-11-25T11:20:39.123Z" or an HTTP
 * date "Wed, 25 Nov 2026 11:20:39 GMT" into unix ms; 0 or ORR_EINVAL. */
int s3__parse_time(const char *s, int64_t *ms);

#endif
