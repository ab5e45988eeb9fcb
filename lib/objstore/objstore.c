/* objstore.c: the bucket handle — opening a backend from a config, key
 * validation and the config prefix, the blocking entry points that
 * dispatch to the backend, and the async API over the libuv thread pool. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "objstore_int.h"

int objstore__err(int rc, char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

int objstore_key_valid(const char *key) {
  if (!key || !*key || *key == '/') return ORR_EINVAL;
  const char *seg = key;
  for (;;) {
    const char *slash = strchr(seg, '/');
    size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
    if (n == 0 && slash) return ORR_EINVAL; /* "a//b" */
    if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.')) return ORR_EINVAL;
    if (!slash) break;
    seg = slash + 1;
    if (!*seg) return ORR_EINVAL; /* a key does not end in "/" */
  }
  for (const char *p = key; *p; p++)
    if ((unsigned char)*p < 0x20) return ORR_EINVAL;
  return 0;
}

static char *dup_or_null(const char *s, int *oom) {
  if (!s) return NULL;
  char *d = strdup(s);
  if (!d) *oom = 1;
  return d;
}

static int config_copy(objstore_config *dst, const objstore_config *src) {
  int oom = 0;
  *dst = *src;
  dst->prefix = dup_or_null(src->prefix ? src->prefix : "", &oom);
  dst->directory = dup_or_null(src->directory, &oom);
  dst->bucket = dup_or_null(src->bucket, &oom);
  dst->endpoint = dup_or_null(src->endpoint, &oom);
  dst->region = dup_or_null(src->region ? src->region : "us-east-1", &oom);
  dst->access_key = dup_or_null(src->access_key, &oom);
  dst->secret_key = dup_or_null(src->secret_key, &oom);
  dst->ca_file = dup_or_null(src->ca_file, &oom);
  dst->cert_file = dup_or_null(src->cert_file, &oom);
  dst->key_file = dup_or_null(src->key_file, &oom);
  dst->server_name = dup_or_null(src->server_name, &oom);
  if (oom) {
    objstore_config_free(dst);
    return ORR_ENOMEM;
  }
  return 0;
}

int objstore_open(const objstore_config *cfg, objstore_bucket **out, char *err, size_t errlen) {
  *out = NULL;
  objstore_bucket *b = calloc(1, sizeof *b);
  if (!b) return ORR_ENOMEM;
  int rc = config_copy(&b->cfg, cfg);
  if (rc) {
    free(b);
    return rc;
  }
  if (cfg->type == OBJSTORE_FILESYSTEM) {
    b->ops = &objstore__fs_ops;
    rc = objstore__fs_open(b, err, errlen);
  } else if (cfg->type == OBJSTORE_S3) {
    b->ops = &objstore__s3_ops;
    rc = objstore__s3_open(b, err, errlen);
  } else {
    rc = objstore__err(ORR_EINVAL, err, errlen, "objstore: no bucket type configured");
  }
  if (rc) {
    objstore_config_free(&b->cfg);
    free(b);
    return rc;
  }
  *out = b;
  return 0;
}

void objstore_close(objstore_bucket *b) {
  if (!b) return;
  if (b->ops && b->ops->close) b->ops->close(b);
  objstore_config_free(&b->cfg);
  free(b);
}

const char *objstore_type_name(const objstore_bucket *b) { return b->ops->name; }
const char *objstore_name(const objstore_bucket *b) {
  return b->cfg.type == OBJSTORE_S3 ? b->cfg.bucket : b->cfg.directory;
}

int objstore_check(objstore_bucket *b, char *err, size_t errlen) {
  return b->ops->check(b, err, errlen);
}

int objstore_open_checked(const char *file, const char *text, objstore_bucket **out, char *err,
                          size_t errlen) {
  objstore_config oc;
  objstore_bucket *b = NULL;
  *out = NULL;
  if (errlen) err[0] = 0;
  int rc = objstore_config_load(file, text, &oc, err, errlen);
  if (rc) return rc;
  rc = objstore_open(&oc, &b, err, errlen);
  objstore_config_free(&oc);
  if (rc == 0) rc = objstore_check(b, err, errlen);
  if (rc) {
    objstore_close(b);
    if (errlen && !err[0]) snprintf(err, errlen, "%s", orr_strerror(rc));
    return rc;
  }
  *out = b;
  return 0;
}

/* The full key (prefix + key) into |buf|; validates |key|. */
static int full_key(objstore_bucket *b, const char *op, const char *key, char *buf, size_t len,
                    char *err, size_t errlen) {
  if (objstore_key_valid(key) != 0)
    return objstore__err(ORR_EINVAL, err, errlen, "objstore: %s %s: invalid key \"%s\"",
                         b->ops->name[0] == 'S' ? "s3" : "filesystem", op, key ? key : "");
  const char *p = b->cfg.prefix;
  int n = snprintf(buf, len, "%s%s%s", p, *p ? "/" : "", key);
  if (n < 0 || (size_t)n >= len)
    return objstore__err(ORR_EINVAL, err, errlen, "objstore: %s: key too long", op);
  return 0;
}

#define KEYBUF 2048

typedef struct collect_ctx {
  orr_buf *out;
  size_t max, got;
} collect_ctx;

static int collect_body(const char *data, size_t n, void *arg) {
  collect_ctx *c = arg;
  if (c->got + n > c->max) return ORR_ELIMIT;
  c->got += n;
  return orr_buf_append(c->out, data, n);
}

int objstore_get(objstore_bucket *b, const char *key, size_t max_bytes, orr_buf *out, char *err,
                 size_t errlen) {
  char k[KEYBUF];
  int rc = full_key(b, "get", key, k, sizeof k, err, errlen);
  if (rc) return rc;
  collect_ctx c = {out, max_bytes ? max_bytes : SIZE_MAX, 0};
  rc = b->ops->get_stream(b, k, 0, 0, collect_body, &c, err, errlen);
  if (rc == ORR_ELIMIT)
    objstore__err(rc, err, errlen, "objstore: %s get %s: object larger than %zu bytes",
                  b->cfg.type == OBJSTORE_S3 ? "s3" : "filesystem", key, max_bytes);
  return rc;
}

int objstore_get_range(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                       orr_buf *out, char *err, size_t errlen) {
  char k[KEYBUF];
  int rc = full_key(b, "get", key, k, sizeof k, err, errlen);
  if (rc) return rc;
  if (b->ops->read_range) return b->ops->read_range(b, k, offset, length, out, err, errlen);
  collect_ctx c = {out, SIZE_MAX, 0};
  if (length && length < SIZE_MAX && orr_buf_reserve(out, (size_t)length) != 0) return ORR_ENOMEM;
  return b->ops->get_stream(b, k, offset, length, collect_body, &c, err, errlen);
}

int objstore_get_view(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                      objstore_view *v, char *err, size_t errlen) {
  *v = (objstore_view){0};
  char k[KEYBUF];
  int rc = full_key(b, "get", key, k, sizeof k, err, errlen);
  if (rc) return rc;
  if (b->ops->view_range) return b->ops->view_range(b, k, offset, length, v, err, errlen);
  collect_ctx c = {&v->buf__, SIZE_MAX, 0};
  if (length && length < SIZE_MAX && orr_buf_reserve(&v->buf__, (size_t)length) != 0)
    return ORR_ENOMEM;
  rc = b->ops->get_stream(b, k, offset, length, collect_body, &c, err, errlen);
  v->data = v->buf__.data;
  v->len = v->buf__.len;
  return rc;
}

void objstore_view_release(objstore_view *v) {
  if (v->map__) munmap(v->map__, v->maplen__);
  orr_buf_free(&v->buf__);
  *v = (objstore_view){0};
}

int objstore_get_stream(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                        objstore_body_fn fn, void *arg, char *err, size_t errlen) {
  char k[KEYBUF];
  int rc = full_key(b, "get", key, k, sizeof k, err, errlen);
  if (rc) return rc;
  return b->ops->get_stream(b, k, offset, length, fn, arg, err, errlen);
}

int objstore_put_file(objstore_bucket *b, const char *key, const char *path, char *err,
                      size_t errlen) {
  char k[KEYBUF];
  int rc = full_key(b, "put", key, k, sizeof k, err, errlen);
  if (rc) return rc;
  return b->ops->put_file(b, k, path, err, errlen);
}

int objstore_put(objstore_bucket *b, const char *key, const void *data, size_t len, char *err,
                 size_t errlen) {
  char k[KEYBUF];
  int rc = full_key(b, "put", key, k, sizeof k, err, errlen);
  if (rc) return rc;
  return b->ops->put(b, k, data, len, err, errlen);
}

int objstore_delete(objstore_bucket *b, const char *key, char *err, size_t errlen) {
  char k[KEYBUF];
  int rc = full_key(b, "delete", key, k, sizeof k, err, errlen);
  if (rc) return rc;
  return b->ops->del(b, k, err, errlen);
}

int objstore_attributes(objstore_bucket *b, const char *key, objstore_attrs *out, char *err,
                        size_t errlen) {
  char k[KEYBUF];
  int rc = full_key(b, "attributes", key, k, sizeof k, err, errlen);
  if (rc) return rc;
  return b->ops->attributes(b, k, out, err, errlen);
}

int objstore_exists(objstore_bucket *b, const char *key, int *exists, char *err, size_t errlen) {
  objstore_attrs a;
  *exists = 0;
  int rc = objstore_attributes(b, key, &a, err, errlen);
  if (rc == ORR_ENOTFOUND) {
    if (err && errlen) err[0] = '\0';
    return 0;
  }
  if (rc == 0) *exists = 1;
  return rc;
}

typedef struct strip_ctx {
  size_t skip;
  objstore_iter_fn fn;
  void *arg;
} strip_ctx;

static int strip_prefix(const char *name, void *arg) {
  strip_ctx *s = arg;
  if (strlen(name) <= s->skip) return 0;
  return s->fn(name + s->skip, s->arg);
}

int objstore_iter(objstore_bucket *b, const char *dir, unsigned flags, objstore_iter_fn fn,
                  void *arg, char *err, size_t errlen) {
  char d[KEYBUF];
  const char *p = b->cfg.prefix;
  if (!dir) dir = "";
  while (*dir == '/') dir++;
  size_t n = strlen(dir);
  while (n > 0 && dir[n - 1] == '/') n--;
  if (n) {
    char tmp[KEYBUF];
    if (n >= sizeof tmp) return objstore__err(ORR_EINVAL, err, errlen, "objstore: iter: dir too long");
    memcpy(tmp, dir, n);
    tmp[n] = '\0';
    if (objstore_key_valid(tmp) != 0)
      return objstore__err(ORR_EINVAL, err, errlen, "objstore: iter: invalid directory \"%s\"", dir);
  }
  int w = snprintf(d, sizeof d, "%s%s%.*s%s", p, *p ? "/" : "", (int)n, dir, n ? "/" : "");
  if (w < 0 || (size_t)w >= sizeof d)
    return objstore__err(ORR_EINVAL, err, errlen, "objstore: iter: dir too long");
  strip_ctx s = {*p ? strlen(p) + 1 : 0, fn, arg};
  return b->ops->iter(b, d, flags, *p ? strip_prefix : fn, *p ? (void *)&s : arg, err, errlen);
}

/* ---------------------------------------------------------------- async */

static void async_work(uv_work_t *w) {
  objstore_op *op = w->data;
  objstore_bucket *b = op->bucket__;
  char *e = op->err;
  size_t el = sizeof op->err;
  e[0] = '\0';
  switch (op->kind) {
  case OBJSTORE_OP_GET: op->result = objstore_get(b, op->key, op->max_bytes, &op->out, e, el); break;
  case OBJSTORE_OP_GET_RANGE:
    op->result = objstore_get_range(b, op->key, op->offset, op->length, &op->out, e, el);
    break;
  case OBJSTORE_OP_PUT: op->result = objstore_put(b, op->key, op->data, op->len, e, el); break;
  case OBJSTORE_OP_PUT_FILE: op->result = objstore_put_file(b, op->key, op->path, e, el); break;
  case OBJSTORE_OP_DELETE: op->result = objstore_delete(b, op->key, e, el); break;
  case OBJSTORE_OP_EXISTS: op->result = objstore_exists(b, op->key, &op->exists, e, el); break;
  case OBJSTORE_OP_ATTRIBUTES: op->result = objstore_attributes(b, op->key, &op->attrs, e, el); break;
  case OBJSTORE_OP_CHECK: op->result = objstore_check(b, e, el); break;
  default: op->result = objstore__err(ORR_EINVAL, e, el, "objstore: unknown async op"); break;
  }
}

static void async_after(uv_work_t *w, int status) {
  objstore_op *op = w->data;
  if (status == UV_ECANCELED) {
    op->result = ORR_ECANCELED;
    snprintf(op->err, sizeof op->err, "objstore: operation canceled");
  }
  op->done(op, op->arg);
}

int objstore_async(uv_loop_t *loop, objstore_bucket *b, objstore_op *op) {
  op->bucket__ = b;
  op->work__.data = op;
  return uv_queue_work(loop, &op->work__, async_work, async_after);
}
