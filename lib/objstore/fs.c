/* fs.c: the FILESYSTEM backend — objects are files under the configured
 * directory. Writes go to "<key>.tmp-<16 hex>", are fsynced and renamed into
 * place (then the directory is fsynced), so a crash leaves either the old
 * state or the whole object; such temporary files are never listed. Listing
 * follows S3's delimiter semantics: a subdirectory is a "dir/" entry only
 * when some object lies below it. */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "objstore_int.h"

#define FS_CHUNK (256 * 1024)

/* ------------------------------------------------------- descriptor cache
 * A store's ranged reads hit the same few index and chunk files of every
 * block again and again; opening the file each time costs a path walk, an
 * open and a close per read, a fixed cost per block per query. So ranged
 * reads (read_range, view_range) of immutable block files — "index" and
 * "chunks/<n>", which Thanos writes once and never rewrites — keep their
 * read-only descriptor open here, keyed by path, LRU, refcounted so that an
 * evicted descriptor is closed only when its last reader is done.
 *
 * The rule that keeps a cached descriptor honest: each use fstat()s it
 * (needed anyway for the range's size; no path lookup) and drops it when
 * its link count is 0 — the file was unlinked, or replaced by a rename,
 * which unlinks the old inode — then reopens the path. A put or delete
 * through this bucket drops its path too. Everything else (meta.json, marks,
 * whole-object streams, attributes, listing) never uses the cache, so a
 * deleted block cannot look alive to listing or a whole read. */
#define FS_FD_CACHE 128

typedef struct fs_fd {
  char *path;
  uint64_t hash, used; /* FNV-1a of path; LRU tick */
  int fd, refs;        /* refs: the table's (1 while cached) plus readers' */
} fs_fd;

typedef struct fs_state {
  pthread_mutex_t mu;
  fs_fd *v[FS_FD_CACHE];
  uint64_t tick;
} fs_state;

static uint64_t path_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Whether |path| names an immutable block file: ".../index" or
 * ".../chunks/<digits>". */
static int is_block_file(const char *path) {
  const char *base = strrchr(path, '/');
  if (!base) return 0;
  if (!strcmp(base + 1, "index")) return 1;
  if (!base[1] || base - path < 7 || memcmp(base - 7, "/chunks", 7) != 0) return 0;
  for (const char *c = base + 1; *c; c++)
    if (*c < '0' || *c > '9') return 0;
  return 1;
}

static void fd_unref_locked(fs_fd *e) {
  if (--e->refs > 0) return;
  close(e->fd);
  free(e->path);
  free(e);
}

/* Gives up a reader's reference taken by fd_get. */
static void fd_put(objstore_bucket *b, fs_fd *e) {
  fs_state *s = b->impl;
  pthread_mutex_lock(&s->mu);
  fd_unref_locked(e);
  pthread_mutex_unlock(&s->mu);
}

/* Drops |path| from the cache (a put or delete touched it, or it went
 * stale); readers holding it keep theirs until fd_put. */
static void fd_forget(objstore_bucket *b, const char *path) {
  fs_state *s = b->impl;
  if (!s) return;
  uint64_t h = path_hash(path);
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < FS_FD_CACHE; i++)
    if (s->v[i] && s->v[i]->hash == h && !strcmp(s->v[i]->path, path)) {
      fd_unref_locked(s->v[i]);
      s->v[i] = NULL;
    }
  pthread_mutex_unlock(&s->mu);
}

/* A referenced cached entry for |path| whose file is still linked, or NULL;
 * |st| gets its fstat. */
static fs_fd *fd_lookup(objstore_bucket *b, const char *path, struct stat *st) {
  fs_state *s = b->impl;
  uint64_t h = path_hash(path);
  fs_fd *e = NULL;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < FS_FD_CACHE; i++)
    if (s->v[i] && s->v[i]->hash == h && !strcmp(s->v[i]->path, path)) {
      e = s->v[i];
      e->refs++;
      e->used = ++s->tick;
      break;
    }
  pthread_mutex_unlock(&s->mu);
  if (!e) return NULL;
  if (fstat(e->fd, st) == 0 && st->st_nlink > 0 && S_ISREG(st->st_mode)) return e;
  fd_put(b, e);
  fd_forget(b, path); /* unlinked or replaced: reopen the path */
  return NULL;
}

/* Caches the freshly opened |fd| of |path| (which it now owns) and returns
 * it referenced; NULL (fd untouched, caller closes) without memory. */
static fs_fd *fd_insert(objstore_bucket *b, const char *path, int fd) {
  fs_state *s = b->impl;
  fs_fd *e = calloc(1, sizeof *e);
  if (!e || !(e->path = strdup(path))) {
    free(e);
    return NULL;
  }
  e->hash = path_hash(path);
  e->fd = fd;
  e->refs = 2; /* the table's and the caller's */
  pthread_mutex_lock(&s->mu);
  int slot = 0;
  for (int i = 0; i < FS_FD_CACHE; i++) {
    if (!s->v[i]) {
      slot = i;
      break;
    }
    if (s->v[i]->used < s->v[slot]->used) slot = i;
  }
  if (s->v[slot]) fd_unref_locked(s->v[slot]); /* evict the least recently used */
  e->used = ++s->tick;
  s->v[slot] = e;
  pthread_mutex_unlock(&s->mu);
  return e;
}

static const char *root(objstore_bucket *b) { return b->cfg.directory; }

static int path_of(objstore_bucket *b, const char *key, char *buf, size_t len) {
  int n = snprintf(buf, len, "%s/%s", root(b), key);
  return n < 0 || (size_t)n >= len ? ORR_EINVAL : 0;
}

/* Whether |name| is a leftover of an interrupted put: "*.tmp-" + 16 hex. */
static int is_tmp_name(const char *name) {
  size_t n = strlen(name);
  if (n < 21 || memcmp(name + n - 21, ".tmp-", 5) != 0) return 0;
  for (size_t i = n - 16; i < n; i++)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return 0;
  return 1;
}

int objstore__fs_open(objstore_bucket *b, char *err, size_t errlen) {
  /* strip trailing slashes so that paths join cleanly ("/" stays "") */
  size_t n = strlen(b->cfg.directory);
  while (n > 1 && b->cfg.directory[n - 1] == '/') b->cfg.directory[--n] = '\0';
  fs_state *s = calloc(1, sizeof *s);
  if (!s) return ORR_ENOMEM;
  pthread_mutex_init(&s->mu, NULL);
  b->impl = s;
  return 0;
}

static int fs_check(objstore_bucket *b, char *err, size_t errlen) {
  struct stat st;
  if (stat(root(b), &st) != 0)
    return objstore__err(errno == ENOENT ? ORR_ENOTFOUND : ORR_EIO, err, errlen,
                         "objstore: directory \"%s\" %s", root(b),
                         errno == ENOENT ? "does not exist" : strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return objstore__err(ORR_EINVAL, err, errlen, "objstore: \"%s\" is not a directory", root(b));
  if (access(root(b), W_OK | X_OK) != 0)
    return objstore__err(ORR_EIO, err, errlen, "objstore: directory \"%s\": %s", root(b),
                         strerror(errno));
  return 0;
}

static int fs_errno(objstore_bucket *b, const char *op, const char *key, int e, char *err,
                    size_t errlen) {
  int rc = e == ENOENT || e == ENOTDIR || e == EISDIR ? ORR_ENOTFOUND : ORR_EIO;
  return objstore__err(rc, err, errlen, "objstore: filesystem %s dir=%s key=%s: %s", op, root(b),
                       key, rc == ORR_ENOTFOUND ? "object not found" : strerror(e));
}

/* Opens object |key| for reading the range |offset|/|length| (0: to the
 * end): |*fd| and the range's end in |*end|, clamped to the file's size.
 * With |cached| non-NULL a block file's descriptor may come from (or go to)
 * the cache: then |*cached| is set and the caller gives it back with fd_put
 * instead of closing |*fd|; otherwise |*cached| is NULL and the caller
 * closes |*fd|. */
static int fs_open_range(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                         int *fd, uint64_t *end, fs_fd **cached, char *err, size_t errlen) {
  char path[4096];
  struct stat st;
  fs_fd *e = NULL;
  int use_cache = cached && b->impl && is_block_file(key);
  if (cached) *cached = NULL;
  if (path_of(b, key, path, sizeof path)) return ORR_EINVAL;
  if (use_cache && (e = fd_lookup(b, path, &st)) != NULL) {
    *fd = e->fd;
  } else {
    if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return fs_errno(b, "get", key, errno, err, errlen);
  }
  int rc = 0;
  if (!e && fstat(*fd, &st) != 0)
    rc = fs_errno(b, "get", key, errno, err, errlen);
  else if (!S_ISREG(st.st_mode))
    rc = fs_errno(b, "get", key, ENOENT, err, errlen);
  else if (offset > (uint64_t)st.st_size)
    rc = objstore__err(ORR_ERANGE, err, errlen,
                       "objstore: filesystem get dir=%s key=%s: offset %llu beyond size %llu",
                       root(b), key, (unsigned long long)offset, (unsigned long long)st.st_size);
  if (rc) {
    if (e)
      fd_put(b, e);
    else
      close(*fd);
    *fd = -1;
    return rc;
  }
  if (use_cache && !e) e = fd_insert(b, path, *fd);
  if (cached) *cached = e;
  uint64_t size = (uint64_t)st.st_size;
  *end = length && length < size - offset ? offset + length : size;
  return 0;
}

/* Gives back what fs_open_range opened. */
static void fs_release(objstore_bucket *b, int fd, fs_fd *cached) {
  if (cached)
    fd_put(b, cached);
  else
    close(fd);
}

/* preads [pos, end) of |fd| into |dst|; |*got| short when the file ends
 * first (truncated meanwhile). */
static int fs_pread_all(objstore_bucket *b, const char *key, int fd, char *dst, uint64_t pos,
                        uint64_t end, size_t *got, char *err, size_t errlen) {
  *got = 0;
  while (pos < end) {
    size_t want = end - pos < (1u << 30) ? (size_t)(end - pos) : (1u << 30);
    ssize_t n = pread(fd, dst + *got, want, (off_t)pos);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fs_errno(b, "get", key, errno, err, errlen);
    if (n == 0) break;
    pos += (uint64_t)n;
    *got += (size_t)n;
  }
  return 0;
}

static int fs_get_stream(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                         objstore_body_fn fn, void *arg, char *err, size_t errlen) {
  int fd;
  uint64_t end;
  int rc = fs_open_range(b, key, offset, length, &fd, &end, NULL, err, errlen);
  if (rc) return rc;
  char *buf = malloc(FS_CHUNK);
  if (!buf) {
    rc = ORR_ENOMEM;
    goto out;
  }
  for (uint64_t pos = offset; pos < end;) {
    size_t want = end - pos < FS_CHUNK ? (size_t)(end - pos) : FS_CHUNK, got;
    if ((rc = fs_pread_all(b, key, fd, buf, pos, pos + want, &got, err, errlen)) != 0) goto out;
    if (got == 0) break; /* truncated meanwhile */
    pos += got;
    if ((rc = fn(buf, got, arg)) != 0) {
      objstore__err(rc, err, errlen, "objstore: filesystem get dir=%s key=%s: %s", root(b), key,
                    orr_strerror(rc));
      goto out;
    }
  }
out:
  free(buf);
  close(fd);
  return rc;
}

/* A ranged read straight into the caller's buffer (no staging copy). */
static int fs_read_range(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                         orr_buf *out, char *err, size_t errlen) {
  int fd;
  uint64_t end;
  fs_fd *cached;
  int rc = fs_open_range(b, key, offset, length, &fd, &end, &cached, err, errlen);
  if (rc) return rc;
  size_t got = 0;
  if (end > offset) {
    if (end - offset > SIZE_MAX / 2 || orr_buf_reserve(out, (size_t)(end - offset)) != 0)
      rc = ORR_ENOMEM;
    else
      rc = fs_pread_all(b, key, fd, out->data + out->len, offset, end, &got, err, errlen);
  }
  if (rc == 0 && out->data) out->data[out->len += got] = '\0';
  fs_release(b, fd, cached);
  return rc;
}

/* A large range is mapped (MAP_POPULATE: the page cache's pages are mapped
 * in one call instead of a fault each), a small one read: a mapping costs
 * two system calls and, on unmapping, a TLB flush on every CPU running one
 * of our threads. The mapping ends at the file's size at open, so only a
 * file truncated in place while mapped could fault; bucket writers replace
 * objects by rename, which leaves the mapped file as it was. The mapping
 * holds its own reference to the file, so a cached descriptor is given back
 * right after mmap. */
static int fs_view_range(objstore_bucket *b, const char *key, uint64_t offset, uint64_t length,
                         objstore_view *v, char *err, size_t errlen) {
  int fd;
  uint64_t end;
  fs_fd *cached;
  int rc = fs_open_range(b, key, offset, length, &fd, &end, &cached, err, errlen);
  if (rc) return rc;
  if (end - offset >= OBJSTORE_MAP_MIN && end - offset < SIZE_MAX / 2) {
    static long page;
    if (!page) page = sysconf(_SC_PAGESIZE);
    uint64_t at = offset - offset % (uint64_t)page;
    size_t ml = (size_t)(end - at);
    void *m = mmap(NULL, ml, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)at);
    if (m != MAP_FAILED) {
      v->map__ = m;
      v->maplen__ = ml;
      v->data = (const char *)m + (offset - at);
      v->len = (size_t)(end - offset);
      fs_release(b, fd, cached);
      return 0;
    }
    /* e.g. out of address space: read it instead */
  }
  size_t got = 0;
  if (end > offset) {
    if (end - offset > SIZE_MAX / 2 || orr_buf_reserve(&v->buf__, (size_t)(end - offset)) != 0)
      rc = ORR_ENOMEM;
    else
      rc = fs_pread_all(b, key, fd, v->buf__.data, offset, end, &got, err, errlen);
  }
  if (v->buf__.data) v->buf__.data[v->buf__.len = got] = '\0';
  v->data = v->buf__.data;
  v->len = got;
  fs_release(b, fd, cached);
  return rc;
}

/* mkdir -p of |path|'s parent directories below the root. */
static int make_parents(char *path, size_t root_len) {
  for (char *p = path + root_len + 1; (p = strchr(p, '/')) != NULL; p++) {
    *p = '\0';
    int r = mkdir(path, 0755);
    int e = errno;
    *p = '/';
    if (r != 0 && e != EEXIST) {
      errno = e;
      return -1;
    }
  }
  return 0;
}

static int fsync_parent(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) return 0;
  *slash = '\0';
  int fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = fsync(fd);
  close(fd);
  return r;
}

typedef int (*fs_source_fn)(void *src, char *buf, size_t cap, size_t *n);

/* Writes |src| to a temporary file, fsyncs it and renames it to |key|. */
static int fs_put_from(objstore_bucket *b, const char *key, fs_source_fn read_src, void *src,
                       char *err, size_t errlen) {
  char path[4096], tmp[4200];
  uint64_t rnd = 0;
  int fd = -1, rc = 0;
  char *buf = NULL;
  if (path_of(b, key, path, sizeof path)) return ORR_EINVAL;
  if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd = orr_mono_ns() ^ (uint64_t)getpid();
  snprintf(tmp, sizeof tmp, "%s.tmp-%016llx", path, (unsigned long long)rnd);
  if (make_parents(path, strlen(root(b))) != 0) goto fail;
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) goto fail;
  if (!(buf = malloc(FS_CHUNK))) {
    rc = ORR_ENOMEM;
    goto out;
  }
  for (;;) {
    size_t n = 0;
    if ((rc = read_src(src, buf, FS_CHUNK, &n)) != 0) {
      objstore__err(rc, err, errlen, "objstore: filesystem put dir=%s key=%s: reading source: %s",
                    root(b), key, strerror(errno));
      goto out;
    }
    if (n == 0) break;
    for (size_t off = 0; off < n;) {
      ssize_t w = write(fd, buf + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) goto fail;
      off += (size_t)w;
    }
  }
  if (fsync(fd) != 0) goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) goto fail;
  fd_forget(b, path);
  if (fsync_parent(path) != 0) goto fail;
  tmp[0] = '\0';
  goto out;
fail:
  rc = objstore__err(ORR_EIO, err, errlen, "objstore: filesystem put dir=%s key=%s: %s", root(b),
                     key, strerror(errno));
out:
  if (fd >= 0) close(fd);
  if (tmp[0] && rc != 0) unlink(tmp);
  free(buf);
  return rc;
}

typedef struct mem_src {
  const char *p;
  size_t left;
} mem_src;

static int read_mem(void *arg, char *buf, size_t cap, size_t *n) {
  mem_src *m = arg;
  *n = m->left < cap ? m->left : cap;
  memcpy(buf, m->p, *n);
  m->p += *n;
  m->left -= *n;
  return 0;
}

static int read_fd(void *arg, char *buf, size_t cap, size_t *n) {
  int fd = *(int *)arg;
  for (;;) {
    ssize_t r = read(fd, buf, cap);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ORR_EIO;
    *n = (size_t)r;
    return 0;
  }
}

static int fs_put(objstore_bucket *b, const char *key, const void *data, size_t len, char *err,
                  size_t errlen) {
  mem_src m = {data, len};
  return fs_put_from(b, key, read_mem, &m, err, errlen);
}

static int fs_put_file(objstore_bucket *b, const char *key, const char *path, char *err,
                       size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return objstore__err(errno == ENOENT ? ORR_ENOTFOUND : ORR_EIO, err, errlen,
                         "objstore: filesystem put dir=%s key=%s: %s: %s", root(b), key, path,
                         strerror(errno));
  int rc = fs_put_from(b, key, read_fd, &fd, err, errlen);
  close(fd);
  return rc;
}

static int fs_del(objstore_bucket *b, const char *key, char *err, size_t errlen) {
  char path[4096];
  struct stat st;
  if (path_of(b, key, path, sizeof path)) return ORR_EINVAL;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return fs_errno(b, "delete", key, ENOENT, err, errlen);
  fd_forget(b, path);
  if (unlink(path) != 0) return fs_errno(b, "delete", key, errno, err, errlen);
  /* remove parent directories left empty, as Thanos does, up to the root */
  size_t rl = strlen(root(b));
  for (char *slash; (slash = strrchr(path, '/')) != NULL && (size_t)(slash - path) > rl;) {
    *slash = '\0';
    if (rmdir(path) != 0) break;
  }
  return 0;
}

static int fs_attributes(objstore_bucket *b, const char *key, objstore_attrs *out, char *err,
                         size_t errlen) {
  char path[4096];
  struct stat st;
  if (path_of(b, key, path, sizeof path)) return ORR_EINVAL;
  if (stat(path, &st) != 0) return fs_errno(b, "attributes", key, errno, err, errlen);
  if (!S_ISREG(st.st_mode)) return fs_errno(b, "attributes", key, ENOENT, err, errlen);
  out->size = (uint64_t)st.st_size;
  out->last_modified_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
  return 0;
}

/* ---------------------------------------------------------------- listing */

typedef struct name_list {
  char **v;
  size_t n, cap;
} name_list;

static int names_add(name_list *l, const char *s) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **v = realloc(l->v, cap * sizeof *v);
    if (!v) return ORR_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  if (!(l->v[l->n] = strdup(s))) return ORR_ENOMEM;
  l->n++;
  return 0;
}

static void names_free(name_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks |path| (the directory of key prefix |rel|, "" or ending in "/").
 * With |all| adds every object below; otherwise returns 1 at the first
 * object found (|out| NULL). Returns 0/1 or ORR_E*. */
static int walk(const char *path, const char *rel, name_list *out, int depth) {
  if (depth > 64) return 0;
  DIR *d = opendir(path);
  if (!d) return errno == ENOENT || errno == ENOTDIR ? 0 : ORR_EIO;
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (!strcmp(n, ".") || !strcmp(n, "..") || is_tmp_name(n)) continue;
    char child[4096], crel[4096];
    if ((size_t)snprintf(child, sizeof child, "%s/%s", path, n) >= sizeof child) continue;
    struct stat st;
    if (stat(child, &st) != 0) continue; /* deleted meanwhile */
    if (S_ISDIR(st.st_mode)) {
      snprintf(crel, sizeof crel, "%s%s/", rel, n);
      rc = walk(child, crel, out, depth + 1);
    } else if (S_ISREG(st.st_mode)) {
      snprintf(crel, sizeof crel, "%s%s", rel, n);
      rc = out ? names_add(out, crel) : 1;
    }
    if (rc != 0) break;
  }
  closedir(d);
  return rc;
}

static int fs_iter(objstore_bucket *b, const char *dir, unsigned flags, objstore_iter_fn fn,
                   void *arg, char *err, size_t errlen) {
  char path[4096];
  name_list names = {0};
  int rc = 0;
  snprintf(path, sizeof path, "%s/%s", root(b), dir);
  size_t pl = strlen(path);
  if (pl > 1 && path[pl - 1] == '/') path[pl - 1] = '\0';
  if (flags & OBJSTORE_ITER_RECURSIVE) {
    rc = walk(path, dir, &names, 0);
  } else {
    DIR *d = opendir(path);
    if (!d && errno != ENOENT && errno != ENOTDIR) rc = ORR_EIO;
    struct dirent *de;
    while (d && rc == 0 && (de = readdir(d)) != NULL) {
      const char *n = de->d_name;
      if (!strcmp(n, ".") || !strcmp(n, "..") || is_tmp_name(n)) continue;
      char child[4096], name[4096];
      if ((size_t)snprintf(child, sizeof child, "%s/%s", path, n) >= sizeof child) continue;
      struct stat st;
      if (stat(child, &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        snprintf(name, sizeof name, "%s%s/", dir, n);
        int has = walk(child, name, NULL, 0);
        if (has < 0) rc = has;
        else if (has) rc = names_add(&names, name);
      } else if (S_ISREG(st.st_mode)) {
        snprintf(name, sizeof name, "%s%s", dir, n);
        rc = names_add(&names, name);
      }
    }
    if (d) closedir(d);
  }
  if (rc < 0) {
    if (rc == ORR_EIO)
      objstore__err(rc, err, errlen, "objstore: filesystem iter dir=%s prefix=%s: %s", root(b), dir,
                    strerror(errno));
    goto out;
  }
  rc = 0;
  if (names.n > 1) qsort(names.v, names.n, sizeof *names.v, cmp_names);
  for (size_t i = 0; i < names.n && rc == 0; i++) rc = fn(names.v[i], arg);
out:
  names_free(&names);
  return rc;
}

static void fs_close(objstore_bucket *b) {
  fs_state *s = b->impl;
  if (!s) return;
  /* no reader may be left at close: every cached entry holds only the
   * table's reference */
  for (int i = 0; i < FS_FD_CACHE; i++)
    if (s->v[i]) fd_unref_locked(s->v[i]);
  pthread_mutex_destroy(&s->mu);
  free(s);
  b->impl = NULL;
}

const objstore__ops objstore__fs_ops = {
    "FILESYSTEM", fs_check, fs_get_stream, fs_put_file, fs_put, fs_del, fs_attributes, fs_iter,
    fs_close, fs_read_range, fs_view_range,
};
