/* metrics.c: the metrics registry — counters, gauges, histograms with
 * labels, gauges computed at render time, process_* metrics — and its
 * rendering in the Prometheus text format 0.0.4 as client_golang writes it.
 *
 * Design notes
 * 1. A registry owns metric families; a family owns its series (children).
 *    Nothing is freed before orr_registry_destroy(), so an orr_series pointer
 *    stays valid for the registry's lifetime and may be cached.
 * 2. Values are updated without locks: doubles live in _Atomic uint64_t as
 *    their bit patterns and are added to by compare-and-swap. Histogram
 *    buckets hold per-bucket (not cumulative) counts; rendering accumulates
 *    them and reports _count as their sum, so the +Inf bucket always equals
 *    _count even while observations race with a scrape.
 * 3. Mutexes guard only structure: the registry's list of families (r->mu)
 *    and each family's hash table of series (m->mu). Lock order: r->mu, then
 *    m->mu.
 * 4. Output order is client_golang's: families by name; within a family,
 *    series by their label values compared in label-name order; labels are
 *    written sorted by name, histogram "le" last. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base.h"

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } metric_type;

struct orr_series {
  orr_series *hnext; /* hash chain */
  orr_metric *m;
  uint64_t hash;
  char **values;          /* nlabels copies */
  _Atomic uint64_t value; /* counter/gauge value or histogram sum, as double bits */
  _Atomic uint64_t *buckets; /* histogram: nbounds + 1 counts, the last is +Inf */
};

struct orr_metric {
  orr_metric *next; /* registry list */
  char *name;
  char *help;
  metric_type type;
  size_t nlabels;
  char **label_names;
  size_t *order; /* label indexes sorted by name */
  double *bounds;
  size_t nbounds;
  double (*fn)(void *arg); /* computed at render time; no series then */
  void *arg;
  pthread_mutex_t mu;
  orr_series **table;
  size_t tcap, nseries;
};

struct orr_registry {
  pthread_mutex_t mu;
  orr_metric *metrics;
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

/* ---------------------------------------------------------------- atomics */

static double bits_to_double(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof(d));
  return d;
}

static uint64_t double_to_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof(u));
  return u;
}

static void atomic_add_double(_Atomic uint64_t *p, double v) {
  uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(p, &old, double_to_bits(bits_to_double(old) + v),
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

/* ---------------------------------------------------------------- registry */

orr_registry *orr_registry_new(void) {
  orr_registry *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  pthread_mutex_init(&r->mu, NULL);
  return r;
}

static void series_free(orr_series *s, size_t nlabels) {
  if (!s) return;
  for (size_t i = 0; s->values && i < nlabels; i++) free(s->values[i]);
  free(s->values);
  free((void *)s->buckets);
  free(s);
}

static void metric_free(orr_metric *m) {
  if (!m) return;
  for (size_t i = 0; i < m->tcap; i++) {
    orr_series *s = m->table[i];
    while (s) {
      orr_series *n = s->hnext;
      series_free(s, m->nlabels);
      s = n;
    }
  }
  free(m->table);
  for (size_t i = 0; m->label_names && i < m->nlabels; i++) free(m->label_names[i]);
  free(m->label_names);
  free(m->order);
  free(m->bounds);
  free(m->name);
  free(m->help);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

void orr_registry_destroy(orr_registry *r) {
  if (!r) return;
  orr_metric *m = r->metrics;
  while (m) {
    orr_metric *n = m->next;
    metric_free(m);
    m = n;
  }
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static orr_registry *g_default;
static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;
static void default_init(void) { g_default = orr_registry_new(); }

orr_registry *orr_registry_default(void) {
  pthread_once(&g_default_once, default_init);
  return g_default;
}

/* ---------------------------------------------------------------- families */

static int valid_metric_name(const char *s) {
  if (!s || !*s) return 0;
  for (const char *p = s; *p; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
             (p != s && c >= '0' && c <= '9');
    if (!ok) return 0;
  }
  return 1;
}

static int valid_label_name(const char *s) {
  if (!s || !*s || strncmp(s, "__", 2) == 0) return 0;
  for (const char *p = s; *p; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
             (p != s && c >= '0' && c <= '9');
    if (!ok) return 0;
  }
  return 1;
}

static size_t count_names(const char *const *names) {
  size_t n = 0;
  while (names && names[n]) n++;
  return n;
}

static const orr_metric *sort_ctx_metric; /* qsort has no context argument */
static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

static int cmp_label_index(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return strcmp(sort_ctx_metric->label_names[x], sort_ctx_metric->label_names[y]);
}

/* Is |m| the same family as the one described? (Re-registration of an
 * identical metric returns the existing one.) */
static int same_family(const orr_metric *m, metric_type type, const char *const *labels,
                       size_t nlabels, const double *bounds, size_t nbounds) {
  if (m->type != type || m->nlabels != nlabels || m->fn || m->nbounds != nbounds) return 0;
  for (size_t i = 0; i < nlabels; i++)
    if (strcmp(m->label_names[i], labels[i]) != 0) return 0;
  for (size_t i = 0; i < nbounds; i++)
    if (m->bounds[i] != bounds[i]) return 0;
  return 1;
}

static orr_series *series_new(orr_metric *m, const char *const *values, uint64_t hash);
static uint64_t hash_values(const char *const *values, size_t n);

/* Creates (or finds the identical) family; NULL on OOM, an invalid name or
 * a conflicting family of the same name. */
static orr_metric *family_new(orr_registry *r, const char *name, const char *help,
                              metric_type type, const char *const *labels, const double *bounds,
                              size_t nbounds, double (*fn)(void *), void *arg) {
  size_t nlabels = count_names(labels);
  if (!r || !valid_metric_name(name)) return NULL;
  for (size_t i = 0; i < nlabels; i++) {
    if (!valid_label_name(labels[i])) return NULL;
    if (type == M_HISTOGRAM && strcmp(labels[i], "le") == 0) return NULL;
    for (size_t j = 0; j < i; j++)
      if (strcmp(labels[i], labels[j]) == 0) return NULL;
  }
  for (size_t i = 0; i < nbounds; i++)
    if (isnan(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) return NULL;
  if (nbounds && isinf(bounds[nbounds - 1]) && bounds[nbounds - 1] > 0) nbounds--; /* implied */

  pthread_mutex_lock(&r->mu);
  orr_metric *m = NULL;
  for (orr_metric *e = r->metrics; e; e = e->next) {
    if (strcmp(e->name, name) == 0) {
      m = fn == NULL && same_family(e, type, labels, nlabels, bounds, nbounds) ? e : NULL;
      pthread_mutex_unlock(&r->mu);
      return m;
    }
  }
  m = calloc(1, sizeof(*m));
  if (!m) goto fail;
  pthread_mutex_init(&m->mu, NULL);
  m->type = type;
  m->fn = fn;
  m->arg = arg;
  m->name = strdup(name);
  m->help = strdup(help ? help : "");
  m->nlabels = nlabels;
  m->label_names = calloc(nlabels ? nlabels : 1, sizeof(char *));
  m->order = calloc(nlabels ? nlabels : 1, sizeof(size_t));
  m->bounds = calloc(nbounds ? nbounds : 1, sizeof(double));
  m->nbounds = nbounds;
  if (!m->name || !m->help || !m->label_names || !m->order || !m->bounds) goto fail;
  for (size_t i = 0; i < nlabels; i++) {
    if (!(m->label_names[i] = strdup(labels[i]))) goto fail;
    m->order[i] = i;
  }
  if (nbounds) memcpy(m->bounds, bounds, nbounds * sizeof(double));
  pthread_mutex_lock(&sort_mu);
  sort_ctx_metric = m;
  qsort(m->order, nlabels, sizeof(size_t), cmp_label_index);
  pthread_mutex_unlock(&sort_mu);
  /* A metric without labels always has its one series, as in client_golang. */
  if (nlabels == 0 && !fn && !series_new(m, NULL, hash_values(NULL, 0))) goto fail;
  m->next = r->metrics;
  r->metrics = m;
  pthread_mutex_unlock(&r->mu);
  return m;
fail:
  pthread_mutex_unlock(&r->mu);
  metric_free(m);
  return NULL;
}

orr_metric *orr_counter_new(orr_registry *r, const char *name, const char *help,
                            const char *const *label_names) {
  return family_new(r, name, help, M_COUNTER, label_names, NULL, 0, NULL, NULL);
}

orr_metric *orr_gauge_new(orr_registry *r, const char *name, const char *help,
                          const char *const *label_names) {
  return family_new(r, name, help, M_GAUGE, label_names, NULL, 0, NULL, NULL);
}

orr_metric *orr_histogram_new(orr_registry *r, const char *name, const char *help,
                              const char *const *label_names, const double *bounds,
                              size_t nbounds) {
  return family_new(r, name, help, M_HISTOGRAM, label_names, bounds, nbounds, NULL, NULL);
}

static int func_new(orr_registry *r, const char *name, const char *help, metric_type type,
                    double (*fn)(void *), void *arg) {
  if (!fn) return ORR_EINVAL;
  if (!valid_metric_name(name)) return ORR_EINVAL;
  orr_metric *m = family_new(r, name, help, type, NULL, NULL, 0, fn, arg);
  if (m) return 0;
  /* Distinguish a name clash from OOM for the caller. */
  int exists = 0;
  pthread_mutex_lock(&r->mu);
  for (orr_metric *e = r->metrics; e; e = e->next) exists |= strcmp(e->name, name) == 0;
  pthread_mutex_unlock(&r->mu);
  return exists ? ORR_EEXISTS : ORR_ENOMEM;
}

int orr_gauge_func_new(orr_registry *r, const char *name, const char *help,
                       double (*fn)(void *arg), void *arg) {
  return func_new(r, name, help, M_GAUGE, fn, arg);
}

/* ---------------------------------------------------------------- series */

static uint64_t hash_values(const char *const *values, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a, with a separator per value */
  for (size_t i = 0; i < n; i++) {
    for (const char *p = values[i]; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  return h;
}

/* Adds a series to |m|; the caller holds m->mu (or owns |m| exclusively). */
static orr_series *series_new(orr_metric *m, const char *const *values, uint64_t hash) {
  if (m->nseries >= m->tcap / 2) {
    size_t ncap = m->tcap ? m->tcap * 2 : 8;
    orr_series **nt = calloc(ncap, sizeof(*nt));
    if (!nt) return NULL;
    for (size_t i = 0; i < m->tcap; i++) {
      orr_series *s = m->table[i];
      while (s) {
        orr_series *n = s->hnext;
        s->hnext = nt[s->hash & (ncap - 1)];
        nt[s->hash & (ncap - 1)] = s;
        s = n;
      }
    }
    free(m->table);
    m->table = nt;
    m->tcap = ncap;
  }
  orr_series *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->m = m;
  s->hash = hash;
  atomic_init(&s->value, double_to_bits(0));
  s->values = calloc(m->nlabels ? m->nlabels : 1, sizeof(char *));
  if (!s->values) goto fail;
  for (size_t i = 0; i < m->nlabels; i++)
    if (!(s->values[i] = strdup(values[i] ? values[i] : ""))) goto fail;
  if (m->type == M_HISTOGRAM) {
    s->buckets = calloc(m->nbounds + 1, sizeof(*s->buckets));
    if (!s->buckets) goto fail;
    for (size_t i = 0; i <= m->nbounds; i++) atomic_init(&s->buckets[i], 0);
  }
  s->hnext = m->table[hash & (m->tcap - 1)];
  m->table[hash & (m->tcap - 1)] = s;
  m->nseries++;
  return s;
fail:
  series_free(s, m->nlabels);
  return NULL;
}

orr_series *orr_metric_with(orr_metric *m, const char *const *values) {
  if (!m || m->fn) return NULL;
  for (size_t i = 0; i < m->nlabels; i++)
    if (!values || !values[i]) return NULL;
  uint64_t h = hash_values(values, m->nlabels);
  pthread_mutex_lock(&m->mu);
  orr_series *s = m->tcap ? m->table[h & (m->tcap - 1)] : NULL;
  for (; s; s = s->hnext) {
    if (s->hash != h) continue;
    size_t i = 0;
    while (i < m->nlabels && strcmp(s->values[i], values[i]) == 0) i++;
    if (i == m->nlabels) break;
  }
  if (!s) s = series_new(m, values, h);
  pthread_mutex_unlock(&m->mu);
  return s;
}

orr_series *orr_metric_series(orr_metric *m) {
  if (!m || m->nlabels) return NULL;
  return orr_metric_with(m, NULL);
}

void orr_counter_add(orr_series *s, double v) {
  if (!s || !(v >= 0)) return; /* counters only go up; NaN is refused too */
  atomic_add_double(&s->value, v);
}

void orr_counter_inc(orr_series *s) { orr_counter_add(s, 1); }

void orr_gauge_set(orr_series *s, double v) {
  if (s) atomic_store_explicit(&s->value, double_to_bits(v), memory_order_relaxed);
}

void orr_gauge_add(orr_series *s, double v) {
  if (s) atomic_add_double(&s->value, v);
}

void orr_histogram_observe(orr_series *s, double v) {
  if (!s || s->m->type != M_HISTOGRAM) return;
  const orr_metric *m = s->m;
  /* First bucket whose upper bound is >= v (NaN lands in +Inf, as in Go). */
  size_t lo = 0, hi = m->nbounds;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->bounds[mid] >= v) hi = mid;
    else lo = mid + 1;
  }
  if (isnan(v)) lo = m->nbounds;
  atomic_fetch_add_explicit(&s->buckets[lo], 1, memory_order_relaxed);
  atomic_add_double(&s->value, v);
}

/* ---------------------------------------------------------------- rendering */

static void put_escaped(orr_buf *b, const char *s, int quote) {
  for (; *s; s++) {
    if (*s == '\\') orr_buf_puts(b, "\\\\");
    else if (*s == '\n') orr_buf_puts(b, "\\n");
    else if (quote && *s == '"') orr_buf_puts(b, "\\\"");
    else orr_buf_putc(b, *s);
  }
}

/* client_golang writes 0 (and -0) as "0", everything else as 'g' shortest. */
static const char *fmt_value(double v, char *tmp, size_t len) {
  if (v == 0) snprintf(tmp, len, "0");
  else orr_format_float(v, tmp, len);
  return tmp;
}

static void put_sample(orr_buf *b, const orr_metric *m, const char *suffix, const orr_series *s,
                       const char *le, const char *value) {
  orr_buf_puts(b, m->name);
  orr_buf_puts(b, suffix);
  if ((s && m->nlabels) || le) {
    orr_buf_putc(b, '{');
    int first = 1;
    for (size_t k = 0; s && k < m->nlabels; k++) {
      size_t i = m->order[k];
      if (!first) orr_buf_putc(b, ',');
      first = 0;
      orr_buf_puts(b, m->label_names[i]);
      orr_buf_puts(b, "=\"");
      put_escaped(b, s->values[i], 1);
      orr_buf_putc(b, '"');
    }
    if (le) {
      if (!first) orr_buf_putc(b, ',');
      orr_buf_puts(b, "le=\"");
      orr_buf_puts(b, le);
      orr_buf_putc(b, '"');
    }
    orr_buf_putc(b, '}');
  }
  orr_buf_putc(b, ' ');
  orr_buf_puts(b, value);
  orr_buf_putc(b, '\n');
}

static int cmp_series(const void *a, const void *b) {
  const orr_series *x = *(orr_series *const *)a, *y = *(orr_series *const *)b;
  const orr_metric *m = x->m;
  for (size_t k = 0; k < m->nlabels; k++) {
    int c = strcmp(x->values[m->order[k]], y->values[m->order[k]]);
    if (c) return c;
  }
  return 0;
}

static int cmp_metric(const void *a, const void *b) {
  return strcmp((*(orr_metric *const *)a)->name, (*(orr_metric *const *)b)->name);
}

static void render_series(orr_buf *b, const orr_metric *m, const orr_series *s) {
  char v[40];
  if (m->type != M_HISTOGRAM) {
    double x = bits_to_double(atomic_load_explicit(&s->value, memory_order_relaxed));
    put_sample(b, m, "", s, NULL, fmt_value(x, v, sizeof(v)));
    return;
  }
  uint64_t cum = 0;
  for (size_t i = 0; i <= m->nbounds; i++) {
    cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    char le[40];
    if (i == m->nbounds) snprintf(le, sizeof(le), "+Inf");
    else fmt_value(m->bounds[i], le, sizeof(le));
    snprintf(v, sizeof(v), "%llu", (unsigned long long)cum);
    put_sample(b, m, "_bucket", s, le, v);
  }
  double sum = bits_to_double(atomic_load_explicit(&s->value, memory_order_relaxed));
  put_sample(b, m, "_sum", s, NULL, fmt_value(sum, v, sizeof(v)));
  snprintf(v, sizeof(v), "%llu", (unsigned long long)cum);
  put_sample(b, m, "_count", s, NULL, v);
}

int orr_registry_render(orr_registry *r, orr_buf *out) {
  int rc = 0;
  orr_metric **ms = NULL;
  orr_series **ss = NULL;
  size_t nm = 0, cap = 0;
  pthread_mutex_lock(&r->mu);
  for (orr_metric *m = r->metrics; m; m = m->next) nm++;
  ms = malloc((nm ? nm : 1) * sizeof(*ms));
  if (!ms) {
    rc = ORR_ENOMEM;
    goto out;
  }
  nm = 0;
  for (orr_metric *m = r->metrics; m; m = m->next) ms[nm++] = m;
  qsort(ms, nm, sizeof(*ms), cmp_metric);
  for (size_t i = 0; i < nm; i++) {
    orr_metric *m = ms[i];
    if (m->fn) {
      char tmp[40];
      fmt_value(m->fn(m->arg), tmp, sizeof(tmp));
      orr_buf_printf(out, "# HELP %s ", m->name);
      put_escaped(out, m->help, 0);
      orr_buf_printf(out, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
      put_sample(out, m, "", NULL, NULL, tmp);
      continue;
    }
    pthread_mutex_lock(&m->mu);
    size_t n = 0;
    if (m->nseries > cap) {
      orr_series **nss = realloc(ss, m->nseries * sizeof(*ss));
      if (!nss) {
        pthread_mutex_unlock(&m->mu);
        rc = ORR_ENOMEM;
        goto out;
      }
      ss = nss;
      cap = m->nseries;
    }
    for (size_t k = 0; k < m->tcap; k++)
      for (orr_series *s = m->table[k]; s; s = s->hnext) ss[n++] = s;
    pthread_mutex_unlock(&m->mu);
    /* Series are never removed, so the pointers stay valid unlocked. */
    if (n == 0) continue; /* a family without children is not exposed */
    qsort(ss, n, sizeof(*ss), cmp_series);
    orr_buf_printf(out, "# HELP %s ", m->name);
    put_escaped(out, m->help, 0);
    orr_buf_printf(out, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
    for (size_t k = 0; k < n; k++) render_series(out, m, ss[k]);
  }
  if (out->oom) rc = ORR_ENOMEM;
out:
  pthread_mutex_unlock(&r->mu);
  free(ms);
  free(ss);
  return rc;
}

/* ---------------------------------------------------------------- process */

/* Fields of /proc/self/stat after the command name: index 0 is "state"
 * (field 3 of proc(5)). Returns 0 or ORR_EIO. */
static int proc_stat(unsigned long long *f, size_t nf) {
  char buf[1024];
  FILE *fp = fopen("/proc/self/stat", "r");
  if (!fp) return ORR_EIO;
  size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
  fclose(fp);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (!p) return ORR_EIO;
  p += 2;
  for (size_t i = 0; i < nf; i++) {
    while (*p == ' ') p++;
    if (i == 0) { /* state is a letter */
      f[i] = (unsigned char)*p;
      while (*p && *p != ' ') p++;
      continue;
    }
    char *end;
    f[i] = strtoull(p, &end, 10);
    if (end == p) {
      /* Negative fields (priority, nice) parse through strtoull fine;
       * anything else means the format is not what we expect. */
      return ORR_EIO;
    }
    p = end;
  }
  return 0;
}

enum { ST_UTIME = 11, ST_STIME = 12, ST_STARTTIME = 19, ST_VSIZE = 20, ST_RSS = 21, ST_N = 22 };

static double proc_cpu_seconds(void *arg) {
  unsigned long long f[ST_N];
  if (proc_stat(f, ST_N)) return 0;
  return (double)(f[ST_UTIME] + f[ST_STIME]) / (double)sysconf(_SC_CLK_TCK);
}

static double proc_rss(void *arg) {
  unsigned long long f[ST_N];
  if (proc_stat(f, ST_N)) return 0;
  return (double)f[ST_RSS] * (double)sysconf(_SC_PAGESIZE);
}

static double proc_vsize(void *arg) {
  unsigned long long f[ST_N];
  if (proc_stat(f, ST_N)) return 0;
  return (double)f[ST_VSIZE];
}

static double proc_start_time(void *arg) {
  unsigned long long f[ST_N];
  if (proc_stat(f, ST_N)) return 0;
  FILE *fp = fopen("/proc/stat", "r");
  if (!fp) return 0;
  char line[256];
  unsigned long long btime = 0;
  while (fgets(line, sizeof(line), fp))
    if (sscanf(line, "btime %llu", &btime) == 1) break;
  fclose(fp);
  return (double)btime + (double)f[ST_STARTTIME] / (double)sysconf(_SC_CLK_TCK);
}

static double proc_open_fds(void *arg) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  double n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static double rlimit_value(int which) {
  struct rlimit rl;
  if (getrlimit(which, &rl) != 0) return 0;
  /* procfs reads "unlimited" as the largest uint64. */
  if (rl.rlim_cur == RLIM_INFINITY) return 18446744073709551615.0;
  return (double)rl.rlim_cur;
}

static double proc_max_fds(void *arg) { return rlimit_value(RLIMIT_NOFILE); }
static double proc_max_vsize(void *arg) { return rlimit_value(RLIMIT_AS); }

int orr_register_process_metrics(orr_registry *r) {
  static const struct {
    const char *name, *help;
    metric_type type;
    double (*fn)(void *);
  } pm[] = {
      {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", M_COUNTER,
       proc_cpu_seconds},
      {"process_max_fds", "Maximum number of open file descriptors.", M_GAUGE, proc_max_fds},
      {"process_open_fds", "Number of open file descriptors.", M_GAUGE, proc_open_fds},
      {"process_resident_memory_bytes", "Resident memory size in bytes.", M_GAUGE, proc_rss},
      {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
       M_GAUGE, proc_start_time},
      {"process_virtual_memory_bytes", "Virtual memory size in bytes.", M_GAUGE, proc_vsize},
      {"process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.",
       M_GAUGE, proc_max_vsize},
  };
  for (size_t i = 0; i < sizeof(pm) / sizeof(pm[0]); i++) {
    int rc = func_new(r, pm[i].name, pm[i].help, pm[i].type, pm[i].fn, NULL);
    if (rc == ORR_EEXISTS) continue; /* registered before: keep the first */
    if (rc) return rc;
  }
  return 0;
}
