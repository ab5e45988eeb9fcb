/* base: the ground every orrery module stands on — error codes, per-request
 * arenas, growable buffers, the logfmt/JSON logger, Prometheus durations and
 * timestamps, CRC32C, command-line flags, signals, the metrics registry and
 * the loader of the libraries opened on first use.
 * Depends on nothing but libc (and libuv for signals). Prefix: orr_. */
#ifndef ORR_BASE_H
#define ORR_BASE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ORR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ORR_SENTINEL __attribute__((sentinel))
#define ORR_NODISCARD __attribute__((warn_unused_result))
#else
#define ORR_PRINTF(f, a)
#define ORR_SENTINEL
#define ORR_NODISCARD
#endif

/* ---------------------------------------------------------------- errors
 * Every fallible function returns int: 0 on success or a negative ORR_E* code
 * from this one table. Details go to the log or to a caller-supplied buffer. */
#define ORR_ERRNO_MAP(X)                                   \
  X(NOMEM, "out of memory")                                \
  X(INVAL, "invalid argument")                             \
  X(IO, "i/o error")                                       \
  X(CORRUPT, "corrupt data")                               \
  X(NOTFOUND, "not found")                                 \
  X(EXISTS, "already exists")                              \
  X(RANGE, "value out of range")                           \
  X(TIMEOUT, "timed out")                                  \
  X(CANCELED, "canceled")                                  \
  X(LIMIT, "limit exceeded")                               \
  X(PROTO, "protocol error")                               \
  X(UNSUPPORTED, "not supported")                          \
  X(EOF, "end of data")                                    \
  X(AGAIN, "resource temporarily unavailable")             \
  X(CLOSED, "closed")                                      \
  X(UNAVAILABLE, "unavailable")                            \
  X(INTERNAL, "internal error")

enum {
  ORR_OK = 0,
  ORR__EBASE = -1000, /* keep clear of -errno values */
#define ORR__ERRNO_ENUM(name, s) ORR_E##name,
  ORR_ERRNO_MAP(ORR__ERRNO_ENUM)
#undef ORR__ERRNO_ENUM
  ORR__EMAX
};

/* Returns a static description of |err| (an ORR_E* code, or a negative errno). */
const char *orr_strerror(int err);
/* Returns the symbolic name of |err| ("ORR_ENOMEM"), static. */
const char *orr_err_name(int err);

/* ---------------------------------------------------------------- arena
 * A bump allocator for one request: many allocations, one free. Memory is
 * 16-byte aligned. Large allocations get their own block. */
typedef struct orr_arena orr_arena;

/* Returns a new arena whose blocks are at least |block_size| bytes (0: 64 KiB),
 * or NULL on OOM. Caller frees with orr_arena_destroy(). */
orr_arena *orr_arena_new(size_t block_size);
void orr_arena_destroy(orr_arena *a);
/* Frees everything allocated so far but keeps the first block for reuse. */
void orr_arena_reset(orr_arena *a);
/* Returns |n| bytes owned by the arena, or NULL on OOM or overflow. */
void *orr_arena_alloc(orr_arena *a, size_t n);
/* As orr_arena_alloc, zeroed; |n| * |size| is checked for overflow. */
void *orr_arena_calloc(orr_arena *a, size_t n, size_t size);
/* Copies |n| bytes of |s| and a NUL; returns NULL on OOM. */
char *orr_arena_strndup(orr_arena *a, const char *s, size_t n);
char *orr_arena_strdup(orr_arena *a, const char *s);
char *orr_arena_sprintf(orr_arena *a, const char *fmt, ...) ORR_PRINTF(2, 3);
/* Bytes handed out and bytes reserved from the system. */
size_t orr_arena_used(const orr_arena *a);
size_t orr_arena_reserved(const orr_arena *a);

/* 1 in AddressSanitizer builds, where caches of freed memory keep nothing
 * (a use after free stays visible), else 0. */
#if defined(__SANITIZE_ADDRESS__)
#define ORR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ORR_ASAN 1
#endif
#endif
#ifndef ORR_ASAN
#define ORR_ASAN 0
#endif

/* ---------------------------------------------------------------- small blocks
 * malloc for the small objects a fan-out makes and frees for every
 * endpoint of every query: blocks up to 2 KiB come from per-thread free
 * lists by size class (small.c), larger ones from malloc. A block must be
 * freed (or realloc'd) with these, on any thread. Sanitizer builds use
 * malloc itself; orr__small_pool_* is the pool in every build (tests). */
void *orr_small_malloc(size_t size);
void *orr_small_calloc(size_t nmemb, size_t size);
void *orr_small_realloc(void *ptr, size_t size);
void orr_small_free(void *ptr);
void *orr__small_pool_malloc(size_t size);
void *orr__small_pool_calloc(size_t nmemb, size_t size);
void *orr__small_pool_realloc(void *ptr, size_t size);
void orr__small_pool_free(void *ptr);

/* ---------------------------------------------------------------- buffers
 * A growable byte buffer. Zero-initialise ({0}) to get an empty buffer;
 * data is always NUL-terminated when len > 0 or after any append. A failed
 * append sets |oom| and leaves the content unchanged; later appends are no-ops
 * until orr_buf_reset(), so callers may check once at the end. */
typedef struct orr_buf {
  char *data;
  size_t len;
  size_t cap;
  int oom;
} orr_buf;

void orr_buf_free(orr_buf *b);
void orr_buf_reset(orr_buf *b); /* len = 0, oom = 0, keeps capacity */
/* Ensures room for |n| more bytes; returns 0 or ORR_ENOMEM. */
int orr_buf_reserve(orr_buf *b, size_t n);
int orr_buf_append(orr_buf *b, const void *p, size_t n);
int orr_buf_puts(orr_buf *b, const char *s);
int orr_buf_putc(orr_buf *b, char c);
int orr_buf_printf(orr_buf *b, const char *fmt, ...) ORR_PRINTF(2, 3);
int orr_buf_vprintf(orr_buf *b, const char *fmt, va_list ap);
int orr_buf_put_be16(orr_buf *b, uint16_t v);
int orr_buf_put_be32(orr_buf *b, uint32_t v);
int orr_buf_put_be64(orr_buf *b, uint64_t v);
int orr_buf_put_uvarint(orr_buf *b, uint64_t v);
int orr_buf_put_varint(orr_buf *b, int64_t v); /* zig-zag, as Go's binary.PutVarint */
/* Detaches and returns the data (caller frees with free()); |b| becomes empty. */
char *orr_buf_steal(orr_buf *b, size_t *len);

/* Bounds-checked big-endian/varint decoding over a byte range. Every getter
 * returns 0 or ORR_ECORRUPT when fewer bytes remain than it needs; on error
 * the decoder's position is unspecified and |err| latches the first error. */
typedef struct orr_dec {
  const uint8_t *p;
  const uint8_t *end;
  int err;
} orr_dec;

static inline orr_dec orr_dec_make(const void *p, size_t n) {
  orr_dec d;
  d.p = (const uint8_t *)p;
  d.end = d.p + n;
  d.err = 0;
  return d;
}
static inline size_t orr_dec_left(const orr_dec *d) { return (size_t)(d->end - d->p); }
int orr_dec_u8(orr_dec *d, uint8_t *v);
int orr_dec_be16(orr_dec *d, uint16_t *v);
int orr_dec_be32(orr_dec *d, uint32_t *v);
int orr_dec_be64(orr_dec *d, uint64_t *v);
int orr_dec_uvarint(orr_dec *d, uint64_t *v);
int orr_dec_varint(orr_dec *d, int64_t *v);
/* Borrows |n| bytes from the input into |*out|. */
int orr_dec_bytes(orr_dec *d, size_t n, const uint8_t **out);
int orr_dec_skip(orr_dec *d, size_t n);

/* Appends |s| JSON-escaped (without quotes) to |b|. */
int orr_buf_json_escape(orr_buf *b, const char *s, size_t n);
/* Appends the UTF-8 encoding of the code point |c| (at most U+10FFFF). */
void orr_buf_put_utf8(orr_buf *b, uint32_t c);

/* The escapes of a JSON string decoded byte by byte, for readers fed in
 * pieces, as Go's encoding/json decodes them: a UTF-16 surrogate that is
 * not half of a pair becomes U+FFFD. Zero it once; it is ready for the
 * next string after each closing quote. */
typedef struct orr_json_unescape {
  uint32_t hex;          /* the \u digits so far */
  int hex_n;
  uint32_t hi_surrogate; /* a \uD8xx waiting for its low half, or 0 */
} orr_json_unescape;
/* Each byte of a string outside an escape, the backslash that starts one
 * and the closing quote included, before the reader takes it: writes a
 * high surrogate left waiting as U+FFFD to |out| unless |c| is '\\'. */
void orr_json_unescape_plain(orr_json_unescape *u, orr_buf *out, unsigned char c);
/* The byte after a backslash: 0 when the escape is decoded into |out|, 1
 * when it is 'u' (feed the four hex digits to orr_json_unescape_hex), or
 * ORR_ECORRUPT when it is no JSON escape. */
int orr_json_unescape_esc(orr_json_unescape *u, orr_buf *out, unsigned char c);
/* A digit of \uXXXX: 1 while more are wanted, 0 after the fourth (the code
 * point decoded into |out|, or a high surrogate kept for its low half), or
 * ORR_ECORRUPT when |c| is no hex digit. */
int orr_json_unescape_hex(orr_json_unescape *u, orr_buf *out, unsigned char c);

/* ---------------------------------------------------------------- logging
 * logfmt (default) or JSON lines on stderr:
 *   ts=2026-11-25T11:20:39.123Z level=info caller=http_server.c:88 msg="listening" address=127.0.0.1:9090
 * Values are given as key/value string pairs terminated by NULL; use
 * ORR_LOG_INT()/ORR_LOG_DBL() to format numbers in place. Thread-safe. */
typedef enum { ORR_LOG_DEBUG = 0, ORR_LOG_INFO, ORR_LOG_WARN, ORR_LOG_ERROR } orr_log_level;
typedef enum { ORR_LOG_LOGFMT = 0, ORR_LOG_JSON } orr_log_format;

/* Parses "debug|info|warn|error" / "logfmt|json"; returns 0 or ORR_EINVAL. */
int orr_log_parse_level(const char *s, orr_log_level *out);
int orr_log_parse_format(const char *s, orr_log_format *out);
void orr_log_setup(orr_log_level level, orr_log_format format);
/* Redirects output (default stderr); |f| is borrowed until the next call. */
void orr_log_set_output(FILE *f);
int orr_log_enabled(orr_log_level level);
void orr__log(orr_log_level level, const char *file, int line, const char *msg, ...) ORR_SENTINEL;
#define orr_log(level, ...) \
  do { \
    if (orr_log_enabled(level)) orr__log((level), __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
#define orr_log_debug(...) orr_log(ORR_LOG_DEBUG, __VA_ARGS__)
#define orr_log_info(...) orr_log(ORR_LOG_INFO, __VA_ARGS__)
#define orr_log_warn(...) orr_log(ORR_LOG_WARN, __VA_ARGS__)
#define orr_log_error(...) orr_log(ORR_LOG_ERROR, __VA_ARGS__)
const char *orr__fmt_i64(char *buf, long long v);
const char *orr__fmt_dbl(char *buf, double v);
#define ORR_LOG_INT(v) orr__fmt_i64((char[24]){0}, (long long)(v))
#define ORR_LOG_DBL(v) orr__fmt_dbl((char[32]){0}, (double)(v))

/* ---------------------------------------------------------------- time
 * Timestamps are int64 milliseconds since the Unix epoch, as in Prometheus. */
int64_t orr_now_ms(void);
/* Monotonic clock in nanoseconds, for measuring durations. */
uint64_t orr_mono_ns(void);
/* Parses a Prometheus duration ("1h30m", "500ms", "2d", "1y"; units
 * y w d h m s ms, each at most once, largest first) into milliseconds.
 * Returns 0, or ORR_EINVAL for a malformed one, ORR_ERANGE on overflow. */
int orr_parse_duration(const char *s, size_t n, int64_t *ms);
/* Formats |ms| as Prometheus does ("1h30m", "0s", "1d", "1w", "1y"). Returns
 * |out| (at least 48 bytes). */
char *orr_format_duration(int64_t ms, char *out, size_t outlen);
/* Parses a time as the Prometheus API accepts it: RFC3339 (with optional
 * fractional seconds and zone) or unix seconds with a fraction ("1.5").
 * Returns 0 or ORR_EINVAL / ORR_ERANGE. */
int orr_parse_time(const char *s, int64_t *ms);
/* Parses a time flag as Thanos's --min-time/--max-time: a duration relative
 * to now, before it with a leading '-' ("-2w") or after it ("1h"), else
 * what orr_parse_time() takes. Returns 0 or ORR_EINVAL / ORR_ERANGE. */
int orr_parse_time_flag(const char *s, int64_t *ms);
/* Formats as RFC3339 with milliseconds in UTC ("2026-11-25T11:20:39.123Z"). */
char *orr_format_rfc3339(int64_t ms, char *out, size_t outlen);

/* ---------------------------------------------------------------- files */
/* Removes |path|: a file, or a directory and everything below it (links
 * are removed, not followed). A missing path, or an entry that goes away
 * meanwhile, is fine. Returns 0, or ORR_EIO when something could not be
 * removed (what could be is removed all the same). */
int orr_remove_tree(const char *path);

/* ---------------------------------------------------------------- crc32c
 * Castagnoli CRC as used by the Prometheus TSDB; SSE4.2 when the CPU has it.
 * Pass 0 as |crc| to start; feed the result back to continue. */
uint32_t orr_crc32c(uint32_t crc, const void *p, size_t n);

/* ---------------------------------------------------------------- flags
 * GNU long flags with Prometheus/Thanos names: "--name=value", "--name value",
 * "--bool", "--no-bool"; repeatable flags collect every value. */
typedef enum {
  ORR_FLAG_STRING = 0,  /* const char ** */
  ORR_FLAG_BOOL,        /* int * */
  ORR_FLAG_INT,         /* int64_t * */
  ORR_FLAG_DURATION,    /* int64_t * (milliseconds) */
  ORR_FLAG_FLOAT,       /* double * */
  ORR_FLAG_BYTES,       /* int64_t * ("512MiB", "1GB", "1024") */
  ORR_FLAG_STRINGS,     /* orr_strings * (repeatable) */
  /* const char **, as ORR_FLAG_STRING, for values that hold a secret (an
   * inline bucket or HTTP client config with keys or passwords): whatever
   * shows flags (/api/v1/status/flags) prints "<secret>" instead. */
  ORR_FLAG_SECRET,
} orr_flag_type;

typedef struct orr_strings {
  const char **v;
  size_t n;
} orr_strings;
void orr_strings_free(orr_strings *s);

typedef struct orr_flag {
  const char *name;   /* without the leading "--" */
  orr_flag_type type;
  void *dst;          /* see orr_flag_type */
  const char *def;    /* default as text, parsed before argv; NULL: none */
  const char *help;
  const char *placeholder; /* shown in help, e.g. "<addr>"; NULL: from type */
} orr_flag;

/* Parses |argv| against |flags| (terminated by an entry with name NULL).
 * Positional arguments are returned in |*rest| (argv order, may be NULL);
 * "--" ends flags. On an unknown flag or a bad value writes one line to |err|
 * and returns ORR_EINVAL; "--help"/"-h" returns ORR_EEOF (caller prints help).
 * Strings point into argv or into storage freed by orr_flags_free(). */
int orr_flags_parse(const orr_flag *flags, int argc, char **argv, orr_strings *rest, char *err,
                    size_t errlen);
void orr_flags_help(FILE *out, const char *usage, const orr_flag *flags);
/* Releases the storage orr_flags_parse allocated for |flags|' values. */
void orr_flags_free(const orr_flag *flags);
/* Parses a byte size ("512MiB", "1GB", "100KB", "1024"). */
int orr_parse_bytes(const char *s, int64_t *out);

/* ---------------------------------------------------------------- metrics
 * A registry of counters, gauges and histograms, with labels, rendered in the
 * Prometheus text format 0.0.4. Updates are lock-free (atomics); adding series
 * takes a mutex. Metric objects live as long as their registry. */
typedef struct orr_registry orr_registry;
typedef struct orr_metric orr_metric; /* a family: name, help, type, label names */
typedef struct orr_series orr_series; /* one labelled child */

orr_registry *orr_registry_new(void);
void orr_registry_destroy(orr_registry *r);
/* The process-wide registry every daemon serves at /metrics. */
orr_registry *orr_registry_default(void);

/* |label_names| is a NULL-terminated array or NULL for none; names are copied.
 * Returns NULL on OOM or an invalid name. */
orr_metric *orr_counter_new(orr_registry *r, const char *name, const char *help,
                            const char *const *label_names);
orr_metric *orr_gauge_new(orr_registry *r, const char *name, const char *help,
                          const char *const *label_names);
/* |bounds| ascending upper bounds (the +Inf bucket is implied); copied. */
orr_metric *orr_histogram_new(orr_registry *r, const char *name, const char *help,
                              const char *const *label_names, const double *bounds,
                              size_t nbounds);
/* Returns the child for these label values (same count as label names),
 * creating it; NULL on OOM. Cache the result on hot paths. */
orr_series *orr_metric_with(orr_metric *m, const char *const *label_values);
/* The child of a metric without labels. */
orr_series *orr_metric_series(orr_metric *m);
void orr_counter_add(orr_series *s, double v);
void orr_counter_inc(orr_series *s);
void orr_gauge_set(orr_series *s, double v);
void orr_gauge_add(orr_series *s, double v);
void orr_histogram_observe(orr_series *s, double v);
/* A gauge whose value is computed at render time by |fn(arg)|. */
int orr_gauge_func_new(orr_registry *r, const char *name, const char *help,
                       double (*fn)(void *arg), void *arg);
/* Appends the text exposition of every metric (sorted by name) to |out|. */
int orr_registry_render(orr_registry *r, orr_buf *out);
/* Registers process_* metrics (cpu, rss, fds, start time) on |r|. */
int orr_register_process_metrics(orr_registry *r);

/* ---------------------------------------------------------------- libraries opened on first use
 * libcurl, libsnappy, OpenSSL and libcrypt are not linked: a shim
 * (curl_dl.c, snappy_dl.c, openssl_dl.c, crypt_dl.c) defines the functions the project calls, and
 * the first call opens the library (dl.c) and forwards to it. A shim lists
 * its functions once, X(name, return type, (parameters), (arguments)):
 *
 *   #define FUNCS(X) X(snappy_max_compressed_length, size_t, (size_t n), (n))
 *   ORR_DL_SHIM(FUNCS, "libsnappy.so.1", "libsnappy", "install libsnappy1v5")
 *
 * (curl_dl.c spells the parts of ORR_DL_SHIM out: it adds variadic
 * functions of its own to the table.)
 *
 * A missing library or function is an installation error, reported where
 * it is first needed: "orrery: cannot load <name> (<the loader's reason>):
 * <help>" on stderr, and the process exits 1. */

/* A function pointer of no particular type; cast back to the function's own
 * type before the call (ISO C allows that round trip, and dlsym's void *
 * is converted to it once, in dl.c). */
typedef void (*orr_dl_fn)(void);

typedef struct orr_dl_lib {
  const char *soname;      /* what dlopen opens: "libsnappy.so.1" */
  const char *name;        /* the library in the error: "libsnappy" */
  const char *help;        /* the error's end: "install libsnappy1v5" */
  const char *const *syms; /* the functions' names ... */
  orr_dl_fn *fns;          /* ... and where they go, once loaded */
  size_t n;
  pthread_mutex_t mu;      /* one load at a time */
  atomic_bool loaded;      /* |fns| are set (release/acquire) */
} orr_dl_lib;

#define ORR_DL_LIB(soname, name, help, syms, fns)                                     \
  {(soname), (name), (help), (syms), (fns), sizeof(syms) / sizeof((syms)[0]),         \
   PTHREAD_MUTEX_INITIALIZER, false}
#define ORR_DL_INDEX(name, ret, params, args) orr__dl_##name,
#define ORR_DL_NAME(name, ret, params, args) #name,
/* Defines |name| to forward to the library; the shim's orr_dl_lib is named
 * orr__dl_lib. */
#define ORR_DL_DEFINE(name, ret, params, args)                                \
  ret name params {                                                           \
    return ((ret(*) params)orr_dl_get(&orr__dl_lib, orr__dl_##name)) args;   \
  }

/* A whole shim: the table of FUNCS, its orr_dl_lib and a definition per
 * function. At file scope, without a semicolon. */
#define ORR_DL_SHIM(FUNCS, soname, name, help)                                           \
  enum { FUNCS(ORR_DL_INDEX) orr__dl_n };                                                \
  static const char *const orr__dl_syms[] = {FUNCS(ORR_DL_NAME)};                         \
  static orr_dl_fn orr__dl_fns[orr__dl_n];                                                \
  static orr_dl_lib orr__dl_lib = ORR_DL_LIB(soname, name, help, orr__dl_syms, orr__dl_fns); \
  FUNCS(ORR_DL_DEFINE)

/* Opens |lib| and looks up all its functions, or exits 1 as said above.
 * Called by orr_dl_get() the first time. */
void orr__dl_load(orr_dl_lib *lib);
/* Function |i| of |lib|, opening the library on the first call (from any
 * thread). */
static inline orr_dl_fn orr_dl_get(orr_dl_lib *lib, size_t i) {
  if (!atomic_load_explicit(&lib->loaded, memory_order_acquire)) orr__dl_load(lib);
  return lib->fns[i];
}

/* Formats |v| as Go's strconv.FormatFloat(v, 'g'/-1 shortest round-trip) does
 * in Prometheus output ("1e-05", "123.456", "NaN", "+Inf"). Returns length. */
int orr_format_float(double v, char *out, size_t outlen);
/* Formats |v| as Prometheus's JSON API writes sample values: Go's
 * strconv.FormatFloat(v, 'f', -1, 64), or 'e' when |v| < 1e-6 or >= 1e21
 * ("0.1", "1000000", "1e-07", "1e+21", "NaN", "+Inf"). Returns length;
 * an |outlen| of 48 always suffices. */
int orr_format_float_json(double v, char *out, size_t outlen);
/* The shortest decimal that reads back as |v| (positive and finite), and of
 * those the closest to |v|, ties to even (Ryu; float_ryu.c): returns the
 * digits as an integer without trailing zeros: the decimal result × 10^|*exp10|. */
uint64_t orr__float_shortest(double v, int *exp10);

#ifdef __cplusplus
}
#endif
#endif /* ORR_BASE_H */
