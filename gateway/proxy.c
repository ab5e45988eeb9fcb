/* proxy.c: the fan-out — one Series (or LabelNames/LabelValues)
 * call to every endpoint that may hold matching data, partial response and
 * timeouts, the streaming merge and HA dedup of what comes back; and the
 * bridge that lets a thread other than the loop's run a fan-out and wait.
 *
 * Design notes
 * 1. A fan-out (gw_op) moves FETCH → DONE. Each target's series go, as they
 *    arrive, into one input of a storeapi_merge (k-way by labels, equal
 *    series joined, identical chunks kept once). Labels are first stripped of
 *    the replica labels when deduplicating. An endpoint that announced
 *    supports_without_replica_labels sends its series sorted that way and is
 *    streamed; another one is buffered whole, sorted, and pushed when it
 *    ends (Thanos's eager response set). Consecutive equal series from one
 *    endpoint are joined before the merge sees them.
 * 2. Whenever the merge can yield, each merged series is split into lanes of
 *    non-overlapping chunks (Thanos's overlap split), the lanes decoded and
 *    merged — by the penalty algorithm when deduplicating, else by timestamp
 *    with duplicates dropped — and handed to the caller at once.
 * 3. Memory: a streamed input with more than GW_MAX_BUFFERED series waiting
 *    in the merge is paused (NET_GRPC_PAUSE) until it drains to half; the
 *    chunk headers' sample counts are charged to max_samples on arrival, so
 *    a query that would load too much fails early with ORR_ELIMIT. What a
 *    target holds before the merge (its joined last series, or a whole
 *    eager answer) is counted in bytes and bounded by GW_TARGET_MAX_BYTES:
 *    one series repeated forever with tiny chunks fails that endpoint.
 * 4. The gateway's op timer (every 50 ms while ops run) checks each op's
 *    overall deadline and, with --store.response-timeout, cancels a target
 *    silent for that long (a paused target is not silent). A failed target
 *    is a warning with partial response (its input closes with what it
 *    sent), else the op fails at once naming it and the others are cancelled.
 * 6. What a peer sends is checked at the boundary, in on_series, before it
 *    is held: label names valid and non-empty, values valid UTF-8 (a NUL
 *    byte cannot reach us: protobuf-c stops a string there, so the client
 *    library refuses such a message), every XOR chunk decodable with
 *    timestamps never going backwards, at most req.max_series series, at most
 *    GW_TARGET_MAX_BYTES held. A violation fails that endpoint's part only
 *    (target_fail: a warning naming it with partial response, else the
 *    op fails naming it). Series that do not match the request's matchers
 *    are dropped with one warning naming the endpoint. Series without
 *    chunks carry nothing for a query that wants samples: counted, dropped.
 * 7. done runs from the loop through the work queue (a no-op work item), so
 *    never inside gw_select(). Ops are linked in the gw; gw_close() cancels
 *    and unlinks them (op->g = NULL): they finish through their calls'
 *    CANCELLED, touching only their targets' references.
 * 8. Every raw sample used to be decoded twice: by the arrival check (note
 *    6) and when the merged series is handed out. The check's samples of a
 *    streaming endpoint's raw chunks are now kept (|dc|, keyed by the
 *    chunk's data pointer, at most GW_DECODED_MAX_BYTES per op) once the
 *    series is held, and the hand-out takes them instead of decoding again.
 *    A key stays unique while its message lives: entries are taken or
 *    dropped when the merged series that owns the message is handed out
 *    (emit_merged), and the rest when the op ends. Eager endpoints hold
 *    their whole answer, so theirs are not kept.
 * 9. Series taken from a client's messages live in storeapi_msg_allocator's
 *    blocks (a dozen mallocs per series were a tenth of the CPU at a
 *    1,000-endpoint fan-out): every part of them is freed with it (held,
 *    the merge's allocator), copies from in-process sources are made in it
 *    too, and a joined series grows its chunk array with storeapi_msg_alloc. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include <string.h>

#include "gateway_int.h"
#include "tsdb.h"

#define GW_MAX_BUFFERED 64
/* Bytes one endpoint's answer may hold before the merge takes it (note 3).
 * Streaming endpoints (sidecars, stores, gateways: they announce
 * supports_without_replica_labels) hold one series at a time, so this is
 * a bound on one series' chunks — 64 MiB is about 40M samples — and on the
 * whole answer of an endpoint that cannot stream sorted. */
#define GW_TARGET_MAX_BYTES ((size_t)64 << 20)
/* Decoded samples kept from the arrival check (note 8), per op. */
#define GW_DECODED_MAX_BYTES ((size_t)64 << 20)

/* Note 8: a raw chunk's samples decoded by the arrival check. */
typedef struct dent {
  const uint8_t *key; /* the chunk's data; NULL: a free slot */
  tsdb_sample *pts;   /* orr_small_malloc'd */
  int n;
} dent;
/* The same, of the series being checked, by chunk index, until it is held. */
typedef struct dpend {
  size_t idx;
  tsdb_sample *pts; /* orr_small_malloc'd */
  int n;
} dpend;
/* A fan-out whose target held more gives the freed heap back (op_free). */
#define GW_TRIM_BYTES ((size_t)8 << 20)

typedef struct rchunk {
  int64_t mint, maxt;
  const uint8_t *data;
  size_t len;
  const uint8_t *count; /* averages of downsampled data: sum in |data| */
  size_t count_len;
} rchunk;

/* Which samples a downsampled (aggregate) chunk gives, from the selector's
 * function as Thanos's aggrsFromFunc: min/max/count/sum aggregates for
 * those aggregations and *_over_time, the counter for rate & co., and the
 * average (sum / count) otherwise. */
enum { AG_AVG = 0, AG_COUNT, AG_SUM, AG_MIN, AG_MAX, AG_COUNTER };

static int aggr_mode(const char *f) {
  if (!f) return AG_AVG;
  if (!strcmp(f, "min") || !strncmp(f, "min_", 4)) return AG_MIN;
  if (!strcmp(f, "max") || !strncmp(f, "max_", 4)) return AG_MAX;
  if (!strcmp(f, "count") || !strncmp(f, "count_", 6)) return AG_COUNT;
  if (!strncmp(f, "sum_", 4)) return AG_SUM;
  if (gw__is_counter_func(f)) return AG_COUNTER;
  return AG_AVG;
}

/* The XOR sub-chunk of |c| a sample stream comes from (NULL: none). */
static const Thanos__Chunk *pick_chunk(const Thanos__AggrChunk *c, int mode,
                                       const Thanos__Chunk **count) {
  *count = NULL;
  if (c->raw) return c->raw;
  switch (mode) {
  case AG_COUNT: return c->count;
  case AG_SUM: return c->sum;
  case AG_MIN: return c->min;
  case AG_MAX: return c->max;
  case AG_COUNTER: return c->counter;
  default:
    if (!c->sum || !c->count) return NULL;
    *count = c->count;
    return c->sum;
  }
}

/* A series held back from the merge (coalescing, or an eager endpoint). */
typedef struct held {
  labels_set ls;     /* stripped: strings of |s|, array malloc'd */
  Thanos__Series *s; /* owned (free_unpacked) */
  size_t cap_chunks; /* room in s->chunks once joined (0: as unpacked) */
} held;

/* A target's state under the replica-group rule (gateway.h), the same for
 * Series and labels targets. */
typedef struct hedge {
  const char *group; /* replica group (dedup only), NULL: none */
  bool open;         /* its call still runs */
  int64_t at_ms;     /* a sibling answered: abandoned at this time (0: not set) */
  int64_t set_ms;    /* when that was set */
  const char *by;    /* that sibling's address */
} hedge;

/* |hs[me]| answered: every open sibling of its group in |hs| (|n| of them,
 * |stride| bytes apart) gets the replica timeout |rt|, or as long as the
 * answer took since |start_ms| if that is longer. */
static void hedge_siblings(char *hs, size_t stride, size_t n, size_t me, const char *by,
                           int64_t start_ms, int64_t rt) {
  const hedge *m = (const hedge *)(hs + me * stride);
  if (!m->group || rt <= 0) return;
  int64_t now = orr_now_ms();
  int64_t grace = now - start_ms > rt ? now - start_ms : rt;
  for (size_t i = 0; i < n; i++) {
    hedge *o = (hedge *)(hs + i * stride);
    if (i == me || !o->open || o->at_ms || !o->group || strcmp(o->group, m->group)) continue;
    o->set_ms = now;
    o->at_ms = now + grace;
    o->by = by;
  }
}

/* The description of an abandoned sibling, in |buf|. */
static const char *hedge_desc(const hedge *h, char *buf, size_t n) {
  char d[48];
  snprintf(buf, n, "not finished %s after its replica %s answered (store.replica-timeout)",
           orr_format_duration(h->at_ms - h->set_ms, d, sizeof(d)), h->by);
  return buf;
}

typedef struct target {
  struct gw_op *op;
  size_t idx;
  gw__endpoint *ep;
  storeapi_series_call *call;
  const char *lsets;
  hedge h;
  int64_t last_msg_ms;
  bool live;
  bool eager;     /* buffer everything, sort at the end */
  bool paused;
  bool timed_out; /* cancelled by the response timeout */
  bool deadline;  /* cancelled by the overall deadline */
  bool hedged;    /* cancelled by the replica-group rule */
  const char *fail_desc; /* cancelled for what it sent (note 6): why */
  bool warned_mismatch;
  int64_t nseries;  /* series messages received */
  size_t bytes;     /* held here, not yet in the merge (note 3): the eager
                     * answer, or the streamed series being joined */
  held last;      /* streamed: the series held back for coalescing */
  held *buf;      /* eager: everything */
  size_t nbuf, capbuf;
} target;

enum { OP_FETCH, OP_DONE };

struct gw_op {
  int state;
  gw_select_req req;
  gw_select_cb cb;
  orr_arena *a;
  char **replica; /* replica labels to strip (when dedup) */
  size_t nreplica;
  bool partial;
  int64_t deadline_ms, resp_timeout_ms, replica_timeout_ms;
  int64_t start_ms;
  gw__endpoint **eps;
  size_t neps;
  target *t;
  size_t pending;
  storeapi_merge *m;
  orr_arena *scratch;
  tsdb_sample *check; /* check_series' decode buffer (malloc'd, |ncheck| room) */
  size_t ncheck;
  dent *dc; /* note 8: open addressing, |dc_cap| a power of two */
  size_t dc_cap, dc_n, dc_bytes;
  dpend *pend;
  size_t npend, cap_pend;
  int64_t samples;
  int64_t nseries; /* series received, all targets (req.max_series) */
  size_t peak_bytes; /* the most one target held (note 3) */
  int err;
  char *errmsg;
  bool cancelled, completing;
  bool consumer_paused; /* gw__op_pause: the caller is behind */
  size_t npaused;       /* targets paused: drain() looks for some to resume */
  bool merge_eof;
  gw *g; /* NULL once the gw closed */
  struct gw_op *prev, *next;
  uv_loop_t *loop;
  uv_idle_t defer; /* op_complete: never started, closed to run done */
};

static void op_fail(gw_op *op, int err, const char *msg);

/* Every change of t->paused goes through here: op->npaused lets drain()
 * skip its walk over the targets when none is paused (with a thousand
 * endpoints that walk, once per message, was O(endpoints²) per query). */
static void set_paused(target *t, bool paused) {
  if (t->paused == paused) return;
  t->paused = paused;
  if (paused) t->op->npaused++;
  else t->op->npaused--;
}

/* ---------------------------------------------------------------- helpers */
static bool is_replica(char *const *rl, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(rl[i], name)) return true;
  return false;
}

/* The replica labels of one fan-out: |rl| or, when NULL, the flags', copied
 * into |a|. 0 or ORR_ENOMEM. */
static int copy_replicas(gw *g, orr_arena *a, const char *const *rl, size_t nrl, char ***out,
                         size_t *n) {
  if (!rl) {
    rl = g->cfg.replica_labels;
    nrl = g->cfg.nreplica_labels;
  }
  *n = nrl;
  if (!(*out = orr_arena_calloc(a, nrl + 1, sizeof(char *)))) return ORR_ENOMEM;
  for (size_t i = 0; i < nrl; i++)
    if (!((*out)[i] = orr_arena_strdup(a, rl[i]))) return ORR_ENOMEM;
  return 0;
}

static const char *grpc_code_name(int status) {
  /* Go's codes.Code String(): CamelCase. */
  static const char *names[] = {"OK", "Canceled", "Unknown", "InvalidArgument",
                                "DeadlineExceeded", "NotFound", "AlreadyExists",
                                "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
                                "Aborted", "OutOfRange", "Unimplemented", "Internal",
                                "Unavailable", "DataLoss", "Unauthenticated"};
  return status >= 0 && status <= 16 ? names[status] : "Unknown";
}

static void held_free(held *h) {
  storeapi_series_free(h->s);
  orr_small_free(h->ls.v);
  memset(h, 0, sizeof(*h));
}

static int label_ptr_cmp(const void *pa, const void *pb) {
  return strcmp((*(Thanos__Label *const *)pa)->name, (*(Thanos__Label *const *)pb)->name);
}

/* Takes |s| (an unpacked message) over for the merge: the labels in
 * |strip| removed, the others sorted by name; its label set goes to |h|
 * (pointing into |s|). Taking the message saves a copy of every series
 * (perf: the copy was most of the gateway's time on wide selects). On an
 * error |s| is freed. Returns 0, ORR_EPROTO (duplicate label names) or
 * ORR_ENOMEM. */
static int held_take(Thanos__Series *s, char *const *strip, size_t nstrip, held *h) {
  memset(h, 0, sizeof(*h));
  h->s = s;
  size_t k = 0;
  for (size_t i = 0; i < s->n_labels; i++) {
    Thanos__Label *l = s->labels[i];
    if (!l->name) l->name = (char *)protobuf_c_empty_string;
    if (!l->value) l->value = (char *)protobuf_c_empty_string;
    if (nstrip && is_replica(strip, nstrip, l->name)) {
      thanos__label__free_unpacked(l, (ProtobufCAllocator *)&storeapi_msg_allocator);
      continue;
    }
    s->labels[k++] = l;
  }
  s->n_labels = k;
  /* Peers send labels sorted: one pass proves it (and that no name
   * repeats); only otherwise sort and look for duplicates. */
  bool ascending = true;
  for (size_t i = 1; i < k && ascending; i++)
    ascending = strcmp(s->labels[i - 1]->name, s->labels[i]->name) < 0;
  if (!ascending) qsort(s->labels, k, sizeof(*s->labels), label_ptr_cmp);
  h->ls.v = orr_small_malloc((k ? k : 1) * sizeof(labels_label));
  if (!h->ls.v) {
    held_free(h);
    return ORR_ENOMEM;
  }
  for (size_t i = 0; i < k; i++) {
    if (!ascending && i && strcmp(s->labels[i - 1]->name, s->labels[i]->name) == 0) {
      held_free(h);
      return ORR_EPROTO;
    }
    h->ls.v[i].name = s->labels[i]->name;
    h->ls.v[i].value = s->labels[i]->value;
  }
  h->ls.n = k;
  return 0;
}

static size_t dc_find(const gw_op *op, const uint8_t *k);
static int dc_put(gw_op *op, const uint8_t *k, tsdb_sample *pts, int n);
static void dc_del(gw_op *op, size_t i);

/* Note 8: the entry of chunk data |from| now goes by |to|. */
static void dc_rekey(gw_op *op, const uint8_t *from, const uint8_t *to) {
  size_t i = op->dc_n ? dc_find(op, from) : SIZE_MAX;
  if (i == SIZE_MAX) return;
  tsdb_sample *pts = op->dc[i].pts;
  int n = op->dc[i].n;
  op->dc[i].pts = NULL;
  op->dc[i].n = 0;
  dc_del(op, i);
  if (dc_put(op, to, pts, n)) {
    op->dc_bytes -= (size_t)n * sizeof(tsdb_sample);
    orr_small_free(pts);
  }
}

/* Appends |from|'s chunks to |into| (both owned messages). */
static int held_join(gw_op *op, held *into, held *from) {
  Thanos__Series *a = into->s, *b = from->s;
  size_t need = a->n_chunks + b->n_chunks + 1;
  if (need > into->cap_chunks) {
    /* Geometric: a series joined from many messages costs O(n), not O(n²). */
    size_t nc = into->cap_chunks ? into->cap_chunks : 8;
    while (nc < need) nc *= 2;
    Thanos__AggrChunk **v = storeapi_msg_alloc(nc * sizeof(*v)); /* note 9 */
    if (!v) return ORR_ENOMEM;
    if (a->n_chunks) memcpy(v, a->chunks, a->n_chunks * sizeof(*v));
    storeapi_msg_free(a->chunks);
    a->chunks = v;
    into->cap_chunks = nc;
  }
  /* Note 9: copies, as a chunk moved over would keep all of |from|'s
   * message block alive (a peer streaming a series one tiny chunk a
   * message held 2 KB a chunk). */
  Thanos__AggrChunk **v = a->chunks;
  for (size_t i = 0; i < b->n_chunks; i++) {
    Thanos__AggrChunk *c = storeapi_aggr_chunk_copy(b->chunks[i]);
    if (!c) return ORR_ENOMEM;
    if (b->chunks[i]->raw && c->raw) dc_rekey(op, b->chunks[i]->raw->data.data, c->raw->data.data);
    v[a->n_chunks++] = c;
  }
  held_free(from);
  return 0;
}

/* ---------------------------------------------------------------- output */
static int cmp_chunk(const void *pa, const void *pb) {
  const rchunk *a = pa, *b = pb;
  if (a->mint != b->mint) return a->mint < b->mint ? -1 : 1;
  if (a->maxt != b->maxt) return a->maxt < b->maxt ? -1 : 1;
  return 0;
}

/* ---- note 8: the check's decoded samples */
static size_t dc_slot(const gw_op *op, const uint8_t *k) {
  return (size_t)(((uintptr_t)k >> 4) * 0x9E3779B97F4A7C15ull >> 17) & (op->dc_cap - 1);
}

static size_t dc_find(const gw_op *op, const uint8_t *k) {
  if (!op->dc_n) return SIZE_MAX;
  for (size_t i = dc_slot(op, k);; i = (i + 1) & (op->dc_cap - 1)) {
    if (op->dc[i].key == k) return i;
    if (!op->dc[i].key) return SIZE_MAX;
  }
}

static int dc_put(gw_op *op, const uint8_t *k, tsdb_sample *pts, int n) {
  if ((op->dc_n + 1) * 2 > op->dc_cap) {
    size_t oc = op->dc_cap, nc = oc ? oc * 2 : 256;
    dent *old = op->dc, *nv = calloc(nc, sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    op->dc = nv;
    op->dc_cap = nc;
    for (size_t i = 0; i < oc; i++) {
      if (!old[i].key) continue;
      size_t j = dc_slot(op, old[i].key);
      while (nv[j].key) j = (j + 1) & (nc - 1);
      nv[j] = old[i];
    }
    free(old);
  }
  size_t i = dc_slot(op, k);
  while (op->dc[i].key) i = (i + 1) & (op->dc_cap - 1);
  op->dc[i] = (dent){k, pts, n};
  op->dc_n++;
  return 0;
}

/* Frees entry |i| and closes the gap (backward shift: no tombstones). */
static void dc_del(gw_op *op, size_t i) {
  size_t mask = op->dc_cap - 1;
  op->dc_bytes -= (size_t)op->dc[i].n * sizeof(tsdb_sample);
  orr_small_free(op->dc[i].pts);
  for (size_t j = i;;) {
    j = (j + 1) & mask;
    if (!op->dc[j].key) break;
    size_t h = dc_slot(op, op->dc[j].key);
    /* |j|'s entry may move to |i| unless its home lies in (i, j]. */
    if (i <= j ? (h > i && h <= j) : (h > i || h <= j)) continue;
    op->dc[i] = op->dc[j];
    i = j;
  }
  op->dc[i] = (dent){0};
  op->dc_n--;
}

static void pend_discard(gw_op *op) {
  for (size_t i = 0; i < op->npend; i++) {
    op->dc_bytes -= (size_t)op->pend[i].n * sizeof(tsdb_sample);
    orr_small_free(op->pend[i].pts);
  }
  op->npend = 0;
}

/* The series checked last is held as |own| (the same chunks, maybe a copy). */
static void pend_commit(gw_op *op, const Thanos__Series *own) {
  for (size_t i = 0; i < op->npend; i++) {
    const dpend *p = &op->pend[i];
    const Thanos__AggrChunk *c = p->idx < own->n_chunks ? own->chunks[p->idx] : NULL;
    if (!c || !c->raw || dc_find(op, c->raw->data.data) != SIZE_MAX ||
        dc_put(op, c->raw->data.data, p->pts, p->n)) {
      op->dc_bytes -= (size_t)p->n * sizeof(tsdb_sample);
      orr_small_free(p->pts);
    }
  }
  op->npend = 0;
}

/* |s| is about to be freed: its entries go. */
static void dc_forget_series(gw_op *op, const Thanos__Series *s) {
  for (size_t c = 0; op->dc_n && s && c < s->n_chunks; c++) {
    size_t i = s->chunks[c]->raw ? dc_find(op, s->chunks[c]->raw->data.data) : SIZE_MAX;
    if (i != SIZE_MAX) dc_del(op, i);
  }
}

/* The merged series |ms| was handed out: its messages' entries go. */
static void dc_forget(gw_op *op, const storeapi_merged *ms) {
  for (size_t m = 0; op->dc_n && m < ms->nowned; m++) dc_forget_series(op, ms->owned[m]);
}

static void dc_free(gw_op *op) {
  pend_discard(op);
  for (size_t i = 0; i < op->dc_cap; i++) orr_small_free(op->dc[i].pts);
  free(op->dc);
  free(op->pend);
}

/* decode_lane decodes raw chunks with tsdb_xor_decode straight into points. */
_Static_assert(sizeof(promql_point) == sizeof(tsdb_sample) &&
                   offsetof(promql_point, t) == offsetof(tsdb_sample, t) &&
                   offsetof(promql_point, v) == offsetof(tsdb_sample, v),
               "promql_point and tsdb_sample differ");

/* Decodes the chunks of one lane (non-overlapping, ascending) into |out|;
 * an average chunk yields sum / count at each of its timestamps. */
static long decode_lane(gw_op *op, rchunk **cs, size_t n, bool counter, promql_point *out) {
  long k = 0;
  /* Thanos's ApplyCounterResetsSeriesIterator: each downsampled chunk's
   * counter is a running total from its own first raw value and ends with
   * the last raw value repeated at its last timestamp; chained here into
   * one total that only goes up (a drop adds the new value, as a reset),
   * the repeated sample kept only to compare the next chunk with. */
  int64_t last_t = INT64_MIN;
  double last_v = 0, total = 0;
  for (size_t i = 0; i < n; i++) {
    if (!cs[i]->count && !counter) {
      /* Raw samples (the usual case): the bulk decoder straight into
       * |out|, then what does not go forward in time dropped in place.
       * |out| has room for every chunk's header count (emit_merged). */
      uint16_t ns = 0;
      if (tsdb_xor_num_samples(cs[i]->data, cs[i]->len, &ns)) return ORR_ECORRUPT;
      size_t di = dc_find(op, cs[i]->data); /* note 8 */
      int r;
      if (di != SIZE_MAX && op->dc[di].n <= (int)ns) {
        r = op->dc[di].n;
        memcpy(out + k, op->dc[di].pts, (size_t)r * sizeof(*out));
        dc_del(op, di);
      } else {
        r = tsdb_xor_decode(cs[i]->data, cs[i]->len, (tsdb_sample *)(out + k), ns);
      }
      if (r < 0) return r;
      long w = k;
      for (long j = k; j < k + r; j++) {
        if (w > 0 && out[j].t <= out[w - 1].t) continue;
        out[w++] = out[j];
      }
      k = w;
      continue;
    }
    tsdb_xor_iter it, ct;
    tsdb_xor_iter_init(&it, cs[i]->data, cs[i]->len);
    if (cs[i]->count) tsdb_xor_iter_init(&ct, cs[i]->count, cs[i]->count_len);
    int r;
    while ((r = tsdb_xor_iter_next(&it)) == 1) {
      double v = it.v;
      if (cs[i]->count) {
        int rc = tsdb_xor_iter_next(&ct);
        if (rc < 0) return rc;
        if (rc == 0 || ct.t != it.t) return ORR_ECORRUPT;
        v = it.v / ct.v;
      }
      if (counter) {
        if (isnan(v)) continue; /* stale markers: not a counter value */
        if (last_t == INT64_MIN) {
          total = v;
        } else if (it.t > last_t) {
          total += v >= last_v ? v - last_v : v;
        } else {
          last_v = v;
          continue;
        }
        last_t = it.t;
        last_v = v;
        v = total;
      }
      if (k > 0 && it.t <= out[k - 1].t) continue;
      out[k].t = it.t;
      out[k].v = v;
      k++;
    }
    if (r < 0) return r;
  }
  return k;
}

/* Turns one merged series into samples and hands it to the caller. */
static int emit_merged_samples(gw_op *op, const storeapi_merged *ms);
static int emit_merged(gw_op *op, const storeapi_merged *ms) {
  int rc = emit_merged_samples(op, ms);
  dc_forget(op, ms); /* note 8 */
  return rc;
}

static int emit_merged_samples(gw_op *op, const storeapi_merged *ms) {
  orr_arena *scratch = op->scratch;
  orr_arena_reset(scratch);
  const Thanos__Series *s = &ms->series;
  if (op->req.skip_chunks) {
    if (op->cb.series) return op->cb.series(op->cb.arg, &ms->lset, NULL, 0);
    return 0;
  }
  rchunk *cs = orr_arena_calloc(scratch, s->n_chunks + 1, sizeof(*cs));
  if (!cs) return ORR_ENOMEM;
  size_t nch = 0, total = 0;
  int mode = aggr_mode(op->req.func);
  bool aggr_counter = false; /* a counter aggregate among the chunks */
  for (size_t i = 0; i < s->n_chunks; i++) {
    const Thanos__AggrChunk *c = s->chunks[i];
    const Thanos__Chunk *cnt, *raw = pick_chunk(c, mode, &cnt);
    uint16_t ns = 0;
    if (!raw || raw->type != THANOS__CHUNK__ENCODING__XOR) continue; /* histograms: not ours */
    if (cnt && cnt->type != THANOS__CHUNK__ENCODING__XOR) continue;
    if (tsdb_xor_num_samples(raw->data.data, raw->data.len, &ns)) continue;
    if (c->max_time < op->req.mint || c->min_time > op->req.maxt) continue;
    cs[nch].mint = c->min_time;
    cs[nch].maxt = c->max_time;
    cs[nch].data = raw->data.data;
    cs[nch].len = raw->data.len;
    if (!c->raw && mode == AG_COUNTER) aggr_counter = true;
    if (cnt) {
      cs[nch].count = cnt->data.data;
      cs[nch].count_len = cnt->data.len;
    }
    total += ns;
    nch++;
  }
  if (nch == 0) return 0; /* a series without samples is not a series */
  /* Lanes: chunks greedily split so that a lane's chunks do not overlap. */
  if (nch > 1) qsort(cs, nch, sizeof(*cs), cmp_chunk);
  rchunk ***lanes = orr_arena_calloc(scratch, nch, sizeof(*lanes));
  size_t *lane_n = orr_arena_calloc(scratch, nch, sizeof(*lane_n));
  if (!lanes || !lane_n) return ORR_ENOMEM;
  size_t nl = 0;
  for (size_t j = 0; j < nch; j++) {
    size_t l;
    for (l = 0; l < nl; l++)
      if (lanes[l][lane_n[l] - 1]->maxt < cs[j].mint) break;
    if (l == nl) {
      if (!(lanes[nl] = orr_arena_calloc(scratch, nch, sizeof(rchunk *)))) return ORR_ENOMEM;
      nl++;
    }
    lanes[l][lane_n[l]++] = &cs[j];
  }
  /* Point buffers are written before they are read: not zeroed. */
  gw__replica *reps = orr_arena_calloc(scratch, nl, sizeof(*reps));
  promql_point *buf = orr_arena_alloc(scratch, (total + 1) * sizeof(promql_point));
  if (!reps || !buf) return ORR_ENOMEM;
  size_t used = 0;
  for (size_t l = 0; l < nl; l++) {
    /* Counter aggregates need the reset correction; raw chunks beside them
     * take it too so the lane's values stay one total (Thanos does the
     * same); raw-only series keep their values (resets() sees them). */
    long k = decode_lane(op, lanes[l], lane_n[l], aggr_counter, buf + used);
    if (k < 0) return (int)k;
    reps[l].pts = buf + used;
    reps[l].n = (size_t)k;
    used += (size_t)k;
  }
  if (nl == 1) {
    /* One lane (the usual case: one replica, chunks not overlapping): its
     * samples are ascending already, so the answer is the slice within
     * [mint, maxt], handed out in place — what the penalty merge of one
     * replica would copy out. */
    const promql_point *p = reps[0].pts, *e = p + reps[0].n;
    while (p < e && p->t < op->req.mint) p++;
    while (e > p && e[-1].t > op->req.maxt) e--;
    if (p == e || !op->cb.series) return 0;
    return op->cb.series(op->cb.arg, &ms->lset, p, (size_t)(e - p));
  }
  promql_point *out = orr_arena_alloc(scratch, (total + 1) * sizeof(promql_point));
  if (!out) return ORR_ENOMEM;
  long k;
  if (op->req.dedup) {
    k = gw__dedup(reps, nl, op->req.dedup && gw__is_counter_func(op->req.func), op->req.mint,
                  op->req.maxt, scratch, out);
    if (k < 0) return (int)k;
  } else {
    /* Not deduplicating: the union by timestamp, the earliest lane winning
     * on equal timestamps (the chain merge of Prometheus's storage). */
    size_t *pos = orr_arena_calloc(scratch, nl, sizeof(size_t));
    if (!pos) return ORR_ENOMEM;
    size_t m = 0;
    for (;;) {
      size_t best = nl;
      for (size_t l = 0; l < nl; l++)
        if (pos[l] < reps[l].n &&
            (best == nl || reps[l].pts[pos[l]].t < reps[best].pts[pos[best]].t))
          best = l;
      if (best == nl) break;
      promql_point p = reps[best].pts[pos[best]];
      for (size_t l = 0; l < nl; l++)
        while (pos[l] < reps[l].n && reps[l].pts[pos[l]].t == p.t) pos[l]++;
      if (p.t >= op->req.mint && p.t <= op->req.maxt) out[m++] = p;
    }
    k = (long)m;
  }
  if (k == 0 || !op->cb.series) return 0;
  return op->cb.series(op->cb.arg, &ms->lset, out, (size_t)k);
}

/* ---------------------------------------------------------------- finish */
/* What a select and a labels fan-out both end with: the targets'
 * references, the targets array, the arena and the op itself. */
static void release(gw__endpoint **eps, size_t neps, void *targets, orr_arena *a, void *op) {
  gw__targets_release(NULL, eps, neps);
  free(targets);
  orr_arena_destroy(a);
  free(op);
}

static void op_free(gw_op *op) {
  for (size_t i = 0; op->t && i < op->neps; i++) {
    held_free(&op->t[i].last);
    for (size_t j = 0; j < op->t[i].nbuf; j++) held_free(&op->t[i].buf[j]);
    free(op->t[i].buf);
  }
  storeapi_merge_free(op->m);
  orr_arena_destroy(op->scratch);
  free(op->check);
  dc_free(op);
  release(op->eps, op->neps, op->t, op->a, op);
}

/* The gw's lists of fan-outs in flight (select ops, labels ops), walked by
 * the op timer, which runs while either holds one. */
#define LIST_PUSH(head, x, prev, next) \
  do {                                 \
    (x)->prev = NULL;                  \
    (x)->next = (head);                \
    if (head) (head)->prev = (x);      \
    (head) = (x);                      \
  } while (0)
#define LIST_UNLINK(head, x, prev, next)     \
  do {                                       \
    if ((x)->prev) (x)->prev->next = (x)->next; \
    else (head) = (x)->next;                 \
    if ((x)->next) (x)->next->prev = (x)->prev; \
  } while (0)

static void optimer_cb(uv_timer_t *h);

static void optimer_update(gw *g) {
  if (!g->ops && !g->lops) uv_timer_stop(&g->optimer);
  else if (!uv_is_active((uv_handle_t *)&g->optimer))
    uv_timer_start(&g->optimer, optimer_cb, 50, 50);
}

static void op_unlink(gw_op *op) {
  gw *g = op->g;
  if (!g) return;
  LIST_UNLINK(g->ops, op, prev, next);
  op->g = NULL;
  optimer_update(g);
}

/* Done runs from the close callback of a never-started handle: after the
 * callback that completed the op has returned (a target's call may be
 * what is calling us), in this loop iteration, without a thread hop (a
 * no-op uv_queue_work cost two wake-ups, ~0.1 ms per query). */
static void after_done(uv_handle_t *h) {
  gw_op *op = h->data;
  op->state = OP_DONE;
  int err = op->err;
  if (!err && op->cancelled) err = ORR_ECANCELED;
  if (op->cb.done)
    op->cb.done(op->cb.arg, err, err ? (op->errmsg ? op->errmsg : orr_strerror(err)) : "");
  op_free(op);
}

/* Every target ended: done follows from the loop. */
static void op_complete(gw_op *op) {
  if (op->completing) return;
  op->completing = true;
  if (op->peak_bytes > GW_TRIM_BYTES && op->g) gw__trim_soon(op->g);
  op_unlink(op);
  uv_idle_init(op->loop, &op->defer); /* cannot fail */
  op->defer.data = op;
  uv_close((uv_handle_t *)&op->defer, after_done);
}

/* Yields what the merge can and resumes inputs that drained. */
static void drain(gw_op *op) {
  while (!op->err && !op->cancelled && !op->consumer_paused) {
    storeapi_merged *ms = NULL;
    int rc = storeapi_merge_next(op->m, &ms);
    if (rc == ORR_EAGAIN) break;
    if (rc == ORR_EEOF) {
      op->merge_eof = true;
      break;
    }
    if (rc) {
      op_fail(op, rc, "merging series: out of memory");
      break;
    }
    rc = emit_merged(op, ms);
    storeapi_merged_free(ms);
    if (rc) {
      const char *m = rc == ORR_ECORRUPT ? "decoding series: corrupt chunk"
                                         : orr_arena_sprintf(op->a, "series consumer stopped: %s",
                                                             orr_strerror(rc));
      op_fail(op, rc, m ? m : "out of memory");
    }
  }
  for (size_t i = 0; i < op->neps && op->npaused && !op->consumer_paused; i++) {
    target *t = &op->t[i];
    if (t->paused && t->live && t->call &&
        storeapi_merge_buffered(op->m, i) <= GW_MAX_BUFFERED / 2) {
      set_paused(t, false);
      t->last_msg_ms = orr_now_ms();
      storeapi_client_series_resume(t->call);
    }
  }
}

/* Completes once every target ended and the merge is drained (or failed). */
static void maybe_complete(gw_op *op) {
  if (op->pending == 0 && (op->err || op->cancelled || op->merge_eof)) op_complete(op);
}

void gw__op_pause(gw_op *op) { op->consumer_paused = true; }

void gw__op_resume(gw_op *op) {
  if (!op->consumer_paused) return;
  op->consumer_paused = false;
  drain(op);
  maybe_complete(op);
}

/* ---------------------------------------------------------------- fetch */
static void cancel_live(gw_op *op, bool deadline) {
  for (size_t i = 0; i < op->neps; i++) {
    target *t = &op->t[i];
    if (!t->live || !t->call) continue;
    if (deadline) t->deadline = true;
    if (t->paused) {
      set_paused(t, false);
      storeapi_client_series_resume(t->call);
    }
    storeapi_client_series_cancel(t->call);
  }
}

static void op_fail(gw_op *op, int err, const char *msg) {
  if (op->err) return;
  op->err = err;
  op->errmsg = orr_arena_strdup(op->a, msg);
  cancel_live(op, false);
}

static void warn(gw_op *op, const char *msg) {
  gw__count_partial(op->g);
  if (op->cb.warning) op->cb.warning(op->cb.arg, msg);
}

static int cmp_held(const void *pa, const void *pb) {
  return labels_cmp(&((const held *)pa)->ls, &((const held *)pb)->ls);
}

/* Pushes |h| (taken) into input |t|. */
static int push(target *t, held *h) {
  gw_op *op = t->op;
  Thanos__Series *s = h->s;
  h->s = NULL;
  held_free(h);
  int rc = storeapi_merge_push(op->m, t->idx, s);
  if (rc == ORR_EINVAL) {
    const char *m = orr_arena_sprintf(op->a, "receive series from Addr: %s LabelSets: %s: "
                                      "series out of order", t->ep->name, t->lsets);
    op_fail(op, ORR_EPROTO, m ? m : "series out of order");
  } else if (rc) {
    op_fail(op, rc, "out of memory");
  }
  return rc;
}

/* The target's stream ended (well or not): what it holds goes to the merge
 * and its input closes. */
static void target_flush(target *t) {
  gw_op *op = t->op;
  if (t->eager && !op->err && !op->cancelled) {
    if (t->nbuf) qsort(t->buf, t->nbuf, sizeof(held), cmp_held);
    size_t k = 0;
    for (size_t i = 0; i < t->nbuf; i++) {
      if (k && labels_equal(&t->buf[k - 1].ls, &t->buf[i].ls)) {
        if (held_join(op, &t->buf[k - 1], &t->buf[i])) op_fail(op, ORR_ENOMEM, "out of memory");
        continue;
      }
      if (k != i) {
        t->buf[k] = t->buf[i];
        memset(&t->buf[i], 0, sizeof(held));
      }
      k++;
    }
    t->nbuf = k;
    for (size_t i = 0; i < t->nbuf && !op->err; i++) push(t, &t->buf[i]);
  }
  if (t->last.s && !op->err && !op->cancelled) push(t, &t->last);
  storeapi_merge_close(op->m, t->idx);
}

/* Fails |t|'s part for what it sent (note 6): its call is cancelled and
 * on_series_done reports |why| naming it. */
static void target_fail(target *t, const char *why) {
  if (t->fail_desc) return;
  t->fail_desc = orr_arena_strdup(t->op->a, why);
  if (!t->fail_desc) t->fail_desc = "out of memory";
  if (t->live && t->call) {
    if (t->paused) {
      set_paused(t, false);
      storeapi_client_series_resume(t->call);
    }
    storeapi_client_series_cancel(t->call);
  }
}

static bool utf8_valid(const unsigned char *s) {
  while (*s) {
    unsigned c = *s;
    size_t n;
    uint32_t cp;
    if (c < 0x80) { s++; continue; }
    if ((c & 0xe0) == 0xc0) n = 1, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) n = 3, cp = c & 0x07;
    else return false;
    for (size_t i = 1; i <= n; i++) {
      if ((s[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    s += n + 1;
  }
  return true;
}

/* The series' labels as {a="b", ...} for a message (in |a|). */
static const char *series_text(orr_arena *a, const Thanos__Series *s) {
  orr_buf b = {0};
  orr_buf_putc(&b, '{');
  for (size_t i = 0; i < s->n_labels && i < 16; i++) {
    const char *n = s->labels[i]->name ? s->labels[i]->name : "";
    const char *v = s->labels[i]->value ? s->labels[i]->value : "";
    orr_buf_printf(&b, "%s%s=\"", i ? ", " : "", n);
    for (const unsigned char *p = (const unsigned char *)v; *p && p - (const unsigned char *)v < 200; p++)
      if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') orr_buf_printf(&b, "\\x%02x", *p);
      else orr_buf_putc(&b, (char)*p);
    orr_buf_putc(&b, '"');
  }
  orr_buf_putc(&b, '}');
  const char *r = b.oom ? "{...}" : orr_arena_strdup(a, b.data);
  orr_buf_free(&b);
  return r ? r : "{...}";
}

/* Whether |s| (as sent, replica labels included) matches the request. */
static bool series_matches(gw_op *op, const Thanos__Series *s) {
  for (size_t i = 0; i < op->req.nmatchers; i++) {
    const labels_matcher *m = op->req.matchers[i];
    const char *name = labels_matcher_name(m), *v = "";
    /* The endpoint removed these (without_replica_labels). */
    if (op->req.dedup && is_replica(op->replica, op->nreplica, name)) continue;
    for (size_t j = 0; j < s->n_labels; j++)
      if (s->labels[j]->name && !strcmp(s->labels[j]->name, name)) {
        v = s->labels[j]->value ? s->labels[j]->value : "";
        break;
      }
    if (!labels_matcher_matches(m, v, strlen(v))) return false;
  }
  return true;
}

/* Checks one series from a peer (note 6). Returns NULL, or why it is bad
 * (in op->a). */
static const char *check_series(gw_op *op, const Thanos__Series *s, int mode, bool keep,
                                int64_t *samples) {
  pend_discard(op);
  for (size_t i = 0; i < s->n_labels; i++) {
    const Thanos__Label *l = s->labels[i];
    const char *n = l->name ? l->name : "", *v = l->value ? l->value : "";
    if (!*n || !labels_valid_name(n, strlen(n)))
      return orr_arena_sprintf(op->a, "invalid label name \"%s\" in series %s",
                               utf8_valid((const unsigned char *)n) ? n : "?",
                               series_text(op->a, s));
    if (!utf8_valid((const unsigned char *)v))
      return orr_arena_sprintf(op->a, "label %s has a value that is not valid UTF-8 in series %s",
                               n, series_text(op->a, s));
  }
  for (size_t i = 0; i < s->n_chunks; i++) {
    const Thanos__Chunk *cnt, *raw = pick_chunk(s->chunks[i], mode, &cnt);
    if (!raw || raw->type != THANOS__CHUNK__ENCODING__XOR) continue;
    /* The bulk decoder (several times the iterator's speed): this is one
     * of the two decodes every sample takes in the gateway. */
    uint16_t ns = 0;
    int r = tsdb_xor_num_samples(raw->data.data, raw->data.len, &ns);
    if (r == 0 && (size_t)ns + 1 > op->ncheck) {
      size_t nc = op->ncheck ? op->ncheck : 256;
      while (nc < (size_t)ns + 1) nc *= 2;
      tsdb_sample *v = realloc(op->check, nc * sizeof(*v));
      if (!v) return "out of memory";
      op->check = v;
      op->ncheck = nc;
    }
    if (r == 0) r = tsdb_xor_decode(raw->data.data, raw->data.len, op->check, op->ncheck);
    if (r < 0)
      return orr_arena_sprintf(op->a, "corrupt XOR chunk %zu of series %s", i,
                               series_text(op->a, s));
    /* Equal timestamps stay allowed: a downsampled counter chunk ends
     * with the raw last value at its last sample's time (Thanos). */
    for (int j = 1; j < r; j++)
      if (op->check[j].t < op->check[j - 1].t)
        return orr_arena_sprintf(op->a,
                                 "timestamps go backwards inside a chunk (%lld after %lld) of "
                                 "series %s",
                                 (long long)op->check[j].t, (long long)op->check[j - 1].t,
                                 series_text(op->a, s));
    *samples += r;
    /* Note 8: kept for the hand-out, once the series is held. */
    size_t bytes = (size_t)r * sizeof(tsdb_sample);
    if (keep && r > 0 && !cnt && raw == s->chunks[i]->raw &&
        op->dc_bytes + bytes <= GW_DECODED_MAX_BYTES) {
      if (op->npend == op->cap_pend) {
        size_t nc = op->cap_pend ? op->cap_pend * 2 : 16;
        dpend *nv = realloc(op->pend, nc * sizeof(*nv));
        if (!nv) continue;
        op->pend = nv;
        op->cap_pend = nc;
      }
      tsdb_sample *pts = orr_small_malloc(bytes);
      if (!pts) continue;
      memcpy(pts, op->check, bytes);
      op->pend[op->npend++] = (dpend){i, pts, r};
      op->dc_bytes += bytes;
    }
  }
  return NULL;
}

static size_t held_bytes(const Thanos__Series *s) {
  size_t b = sizeof(*s) + 64 + s->n_labels * 96;
  for (size_t i = 0; i < s->n_chunks; i++) {
    const Thanos__AggrChunk *c = s->chunks[i];
    b += sizeof(*c) + 96;
    if (c->raw) b += sizeof(*c->raw) + c->raw->data.len;
    if (c->count) b += sizeof(*c->count) + c->count->data.len;
    if (c->sum) b += sizeof(*c->sum) + c->sum->data.len;
  }
  return b;
}

static int on_series(const Thanos__SeriesResponse *r, void *arg) {
  target *t = arg;
  gw_op *op = t->op;
  t->last_msg_ms = orr_now_ms();
  if (op->err || op->cancelled) return 0;
  if (r->result_case == THANOS__SERIES_RESPONSE__RESULT_WARNING) {
    const char *m = orr_arena_sprintf(op->a, "receive series from Addr: %s LabelSets: %s: %s",
                                      t->ep->name, t->lsets, r->warning);
    if (!m) op_fail(op, ORR_ENOMEM, "out of memory");
    else if (op->partial) warn(op, m);
    else op_fail(op, ORR_EUNAVAILABLE, m);
    return 0;
  }
  if (r->result_case != THANOS__SERIES_RESPONSE__RESULT_SERIES || !r->series) return 0;
  const Thanos__Series *s = r->series;
  if (t->fail_desc) return 0;
  if (op->req.max_series > 0 && ++op->nseries > op->req.max_series) {
    char m[160];
    snprintf(m, sizeof(m),
             "more than %lld series for one selector (--query.max-series); %lld from this endpoint",
             (long long)op->req.max_series, (long long)t->nseries + 1);
    target_fail(t, m);
    return 0;
  }
  t->nseries++;
  const char *bad = check_series(op, s, aggr_mode(op->req.func), !t->eager && !op->req.skip_chunks,
                                 &op->samples);
  if (bad) {
    target_fail(t, bad);
    return 0;
  }
  if (!s->n_chunks && !op->req.skip_chunks) return 0; /* nothing to query */
  if (s->n_labels && !series_matches(op, s)) {
    if (!t->warned_mismatch) {
      t->warned_mismatch = true;
      const char *m = orr_arena_sprintf(op->a,
                                        "receive series from Addr: %s LabelSets: %s: dropped "
                                        "series not matching the request's matchers, e.g. %s",
                                        t->ep->name, t->lsets, series_text(op->a, s));
      warn(op, m ? m : "out of memory");
    }
    return 0;
  }
  if (op->req.max_samples > 0 && op->samples > op->req.max_samples) {
    op_fail(op, ORR_ELIMIT,
            "query processing would load too many samples into memory in query execution");
    return 0;
  }
  held h;
  Thanos__Series *own;
  if (storeapi_client_is_local(t->ep->client)) {
    own = storeapi_series_copy(s); /* an in-process source's message stays its own */
  } else {
    ((Thanos__SeriesResponse *)r)->series = NULL; /* ours from here (storeapi_series_fn) */
    own = (Thanos__Series *)s;
  }
  int rc = own ? held_take(own, op->req.dedup ? op->replica : NULL,
                           op->req.dedup ? op->nreplica : 0, &h)
               : ORR_ENOMEM;
  if (rc == 0) pend_commit(op, own); /* note 8 */
  if (rc) {
    const char *m = orr_arena_sprintf(op->a, "receive series from Addr: %s LabelSets: %s: %s",
                                      t->ep->name, t->lsets,
                                      rc == ORR_EPROTO ? "invalid labels" : "out of memory");
    op_fail(op, rc, m ? m : "out of memory");
    return 0;
  }
  /* Eager: the whole answer is held; streamed: the series being joined. */
  size_t hb = held_bytes(h.s);
  bool joins = !t->eager && t->last.s && labels_equal(&t->last.ls, &h.ls);
  if ((t->eager || joins ? t->bytes : 0) + hb > GW_TARGET_MAX_BYTES) {
    dc_forget_series(op, h.s);
    held_free(&h);
    char m[160];
    snprintf(m, sizeof(m), "more than %zu MiB held for one answer before merging",
             GW_TARGET_MAX_BYTES >> 20);
    target_fail(t, m);
    return 0;
  }
  t->bytes = t->eager || joins ? t->bytes + hb : hb;
  if (t->bytes > op->peak_bytes) op->peak_bytes = t->bytes;
  if (t->eager) {
    if (t->nbuf == t->capbuf) {
      size_t nc = t->capbuf ? t->capbuf * 2 : 64;
      held *nv = realloc(t->buf, nc * sizeof(*nv));
      if (!nv) {
        held_free(&h);
        op_fail(op, ORR_ENOMEM, "out of memory");
        return 0;
      }
      t->buf = nv;
      t->capbuf = nc;
    }
    t->buf[t->nbuf++] = h;
    return 0;
  }
  /* Streamed: hold the latest series back until one with other labels
   * comes, joining equal neighbours. */
  if (t->last.s && labels_equal(&t->last.ls, &h.ls)) {
    if (held_join(op, &t->last, &h)) op_fail(op, ORR_ENOMEM, "out of memory");
    return 0;
  }
  if (t->last.s && push(t, &t->last)) {
    dc_forget_series(op, h.s);
    held_free(&h);
    return 0;
  }
  t->last = h;
  drain(op);
  if (!op->err && !op->cancelled && storeapi_merge_buffered(op->m, t->idx) >= GW_MAX_BUFFERED) {
    set_paused(t, true);
    return NET_GRPC_PAUSE;
  }
  return 0;
}


static void on_series_done(int status, const char *message, void *arg) {
  target *t = arg;
  gw_op *op = t->op;
  gw__endpoint_observe(op->g, t->ep, "Series", status, orr_now_ms() - op->start_ms, t->nseries);
  t->live = false;
  t->call = NULL;
  set_paused(t, false);
  if (status != NET_GRPC_OK && !op->cancelled) {
    const char *code = grpc_code_name(status);
    const char *desc = message ? message : "";
    char buf[160];
    if (t->timed_out) {
      char d[48];
      code = "DeadlineExceeded";
      snprintf(buf, sizeof(buf), "no data received for %s (store.response-timeout)",
               orr_format_duration(op->resp_timeout_ms, d, sizeof(d)));
      desc = buf;
    } else if (t->deadline) {
      code = "DeadlineExceeded";
      desc = "context deadline exceeded";
    } else if (t->fail_desc) {
      code = "Internal";
      desc = t->fail_desc;
    } else if (t->hedged) {
      code = "DeadlineExceeded";
      desc = hedge_desc(&t->h, buf, sizeof(buf));
    }
    const char *m = orr_arena_sprintf(op->a,
                                      "receive series from Addr: %s LabelSets: %s: rpc error: "
                                      "code = %s desc = %s",
                                      t->ep->name, t->lsets, code, desc);
    if (!m) m = "out of memory";
    if (op->partial && !op->err) {
      warn(op, m);
    } else {
      bool timeout = t->deadline || status == NET_GRPC_DEADLINE_EXCEEDED;
      op_fail(op, timeout ? ORR_ETIMEOUT : ORR_EUNAVAILABLE, m);
    }
  }
  t->h.open = false;
  if (status == NET_GRPC_OK && !op->cancelled)
    hedge_siblings((char *)&op->t[0].h, sizeof(target), op->neps, t->idx, t->ep->name,
                   op->start_ms, op->replica_timeout_ms);
  target_flush(t);
  op->pending--;
  drain(op);
  maybe_complete(op);
}

static void op_check(gw_op *op, int64_t now) {
  if (now >= op->deadline_ms) {
    cancel_live(op, true);
    return;
  }
  for (size_t i = 0; i < op->neps; i++) {
    target *t = &op->t[i];
    /* A paused target waits on us: it is not the one being slow. */
    if (t->h.at_ms && t->paused) t->h.at_ms += 50;
    if (t->live && t->call && t->h.at_ms && !t->hedged && now >= t->h.at_ms) {
      t->hedged = true;
      storeapi_client_series_cancel(t->call);
    }
  }
  if (op->resp_timeout_ms > 0)
    for (size_t i = 0; i < op->neps; i++) {
      target *t = &op->t[i];
      if (t->paused) t->last_msg_ms = now; /* waiting on us, not silent */
      if (t->live && t->call && !t->timed_out && !t->deadline &&
          now - t->last_msg_ms >= op->resp_timeout_ms) {
        t->timed_out = true;
        storeapi_client_series_cancel(t->call);
      }
    }
}

static void lops_check(gw *g, int64_t now);

static void optimer_cb(uv_timer_t *h) {
  gw *g = h->data;
  int64_t now = orr_now_ms();
  for (gw_op *op = g->ops; op; op = op->next) op_check(op, now);
  lops_check(g, now);
}

int gw__ops_init(gw *g) {
  if (uv_timer_init(g->loop, &g->optimer)) return ORR_ENOMEM;
  g->optimer.data = g;
  return 0;
}

static void lops_cancel_first(gw *g);

void gw__ops_close(gw *g, uv_close_cb cb) {
  while (g->ops) {
    gw_op *op = g->ops;
    op_unlink(op);
    gw_op_cancel(op);
  }
  /* Labels calls are cancelled; they end (CANCELLED) before the clients close. */
  while (g->lops) lops_cancel_first(g);
  uv_timer_stop(&g->optimer);
  uv_close((uv_handle_t *)&g->optimer, cb);
}

static int build_request(gw_op *op, Thanos__SeriesRequest *r) {
  thanos__series_request__init(r);
  r->min_time = op->req.mint;
  r->max_time = op->req.maxt;
  if (storeapi_matchers_to_proto(op->req.matchers, op->req.nmatchers, op->a, &r->matchers))
    return ORR_ENOMEM;
  r->n_matchers = op->req.nmatchers;
  r->max_resolution_window = op->req.max_resolution_ms;
  /* The aggregates downsampled blocks should send (raw blocks send raw). */
  static const Thanos__Aggr by_mode[][2] = {
      [AG_AVG] = {THANOS__AGGR__COUNT, THANOS__AGGR__SUM}, [AG_COUNT] = {THANOS__AGGR__COUNT},
      [AG_SUM] = {THANOS__AGGR__SUM}, [AG_MIN] = {THANOS__AGGR__MIN},
      [AG_MAX] = {THANOS__AGGR__MAX}, [AG_COUNTER] = {THANOS__AGGR__COUNTER}};
  int mode = aggr_mode(op->req.func);
  r->aggregates = (Thanos__Aggr *)by_mode[mode];
  r->n_aggregates = mode == AG_AVG ? 2 : 1;
  r->partial_response_disabled = !op->partial;
  r->partial_response_strategy =
      op->partial ? THANOS__PARTIAL_RESPONSE_STRATEGY__WARN : THANOS__PARTIAL_RESPONSE_STRATEGY__ABORT;
  r->skip_chunks = op->req.skip_chunks;
  Thanos__QueryHints *qh = orr_arena_alloc(op->a, sizeof(*qh));
  if (!qh) return ORR_ENOMEM;
  thanos__query_hints__init(qh);
  qh->step_millis = op->req.step_ms;
  if (op->req.func) {
    Thanos__Func *f = orr_arena_alloc(op->a, sizeof(*f));
    if (!f) return ORR_ENOMEM;
    thanos__func__init(f);
    f->name = (char *)op->req.func;
    qh->func = f;
  }
  if (op->req.ngrouping || op->req.by) {
    Thanos__Grouping *gr = orr_arena_alloc(op->a, sizeof(*gr));
    if (!gr) return ORR_ENOMEM;
    thanos__grouping__init(gr);
    gr->by = op->req.by;
    gr->labels = (char **)op->req.grouping;
    gr->n_labels = op->req.ngrouping;
    qh->grouping = gr;
  }
  r->query_hints = qh;
  r->step = op->req.step_ms;
  if (op->req.dedup) {
    r->without_replica_labels = op->replica;
    r->n_without_replica_labels = op->nreplica;
  }
  return 0;
}

int gw_select(gw *g, const gw_select_req *req, const gw_select_cb *cb, gw_op **out) {
  return gw__select_ex(g, req, cb, out, NULL, 0);
}

int gw__select_ex(gw *g, const gw_select_req *req, const gw_select_cb *cb, gw_op **out,
                  const char *const *rl, size_t nrl) {
  gw_op *op = calloc(1, sizeof(*op));
  if (!op) return ORR_ENOMEM;
  op->a = orr_arena_new(0);
  op->scratch = orr_arena_new(0);
  if (!op->a || !op->scratch) goto oom;
  op->req = *req;
  op->cb = *cb;
  op->loop = g->loop;
  op->partial = req->partial_response < 0 ? g->cfg.partial_response : req->partial_response != 0;
  int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : g->cfg.query_timeout_ms;
  int64_t now = orr_now_ms();
  op->deadline_ms = now + timeout;
  op->resp_timeout_ms = g->cfg.store_response_timeout_ms;
  op->replica_timeout_ms = g->cfg.replica_timeout_ms;
  if (op->req.max_series <= 0) op->req.max_series = g->cfg.max_series;
  op->start_ms = now;
  if (req->func && !(op->req.func = orr_arena_strdup(op->a, req->func))) goto oom;
  if (copy_replicas(g, op->a, rl, nrl, &op->replica, &op->nreplica)) goto oom;
  if (op->req.dedup && op->nreplica == 0) op->req.dedup = false; /* nothing to merge along */
  if (gw__targets_ex(g, req->mint, req->maxt, req->matchers, req->nmatchers, req->exclude,
                     req->nexclude, &op->eps, &op->neps))
    goto oom;
  op->t = calloc(op->neps + 1, sizeof(target));
  if (!op->t || storeapi_merge_new(op->neps, &op->m)) goto oom;
  storeapi_merge_set_allocator(op->m, &storeapi_msg_allocator); /* note 9 */
  Thanos__SeriesRequest sr;
  if (build_request(op, &sr)) goto oom;
  op->g = g;
  LIST_PUSH(g->ops, op, prev, next);
  optimer_update(g);
  storeapi_packed packed = {0};
  if (op->neps > 1 && storeapi_packed_init(&packed, &sr)) goto oom;
  op->pending = 1; /* held until every call started */
  for (size_t i = 0; i < op->neps; i++) {
    target *t = &op->t[i];
    t->op = op;
    t->idx = i;
    t->ep = op->eps[i];
    t->lsets = gw__endpoint_lsets_text(g, t->ep, op->a);
    if (op->req.dedup) t->h.group = gw__endpoint_group(g, t->ep, op->replica, op->nreplica, op->a);
    t->eager = op->req.dedup && !t->ep->supports_wrl;
    t->last_msg_ms = now;
    if (!t->lsets) t->lsets = "";
    int rc = storeapi_client_series_packed(t->ep->client, &sr, packed.data ? &packed : NULL,
                                           timeout, on_series, on_series_done, t, &t->call);
    if (rc) {
      const char *m = orr_arena_sprintf(op->a, "receive series from Addr: %s: %s",
                                        t->ep->name, orr_strerror(rc));
      if (op->partial) warn(op, m ? m : "out of memory");
      else op_fail(op, rc, m ? m : "out of memory");
      storeapi_merge_close(op->m, i);
      continue;
    }
    t->live = true;
    t->h.open = true;
    op->pending++;
  }
  storeapi_packed_free(&packed);
  if (out) *out = op;
  op->pending--;
  drain(op); /* inputs that failed to start are closed */
  maybe_complete(op);
  return 0;
oom:
  op_unlink(op);
  op_free(op);
  return ORR_ENOMEM;
}

void gw_op_cancel(gw_op *op) {
  if (op->state == OP_DONE || op->cancelled) return;
  op->cancelled = true;
  cancel_live(op, false);
  maybe_complete(op); /* every call may have ended already (paused consumer) */
}

/* ================================================================ labels */
/* A labels fan-out follows the replica-group rule too (gateway.h): a
 * sibling of a member that answered is abandoned after the replica
 * timeout and its call cancelled; the op stays allocated (|outstanding|)
 * until that call's CANCELLED arrives, then frees itself. */
typedef struct gw__lop lop;
typedef struct ltarget {
  lop *op;
  gw__endpoint *ep;
  const char *lsets;
  hedge h;
  storeapi_unary *call; /* until its callback ran */
  bool done;            /* answered or abandoned */
} ltarget;

struct gw__lop {
  gw *g; /* NULL once unlinked */
  struct gw__lop *lprev, *lnext;
  size_t outstanding;   /* calls whose callback has not run */
  bool released;        /* the caller was answered */
  int64_t start_ms, replica_timeout_ms;
  gw_labels_req req;
  gw_labels_fn fn;
  void *arg;
  orr_arena *a;
  bool partial;
  char **replica;
  size_t nreplica;
  gw__endpoint **eps;
  size_t neps;
  ltarget *t;
  size_t pending;
  const char **vals;
  size_t nvals, capvals;
  const char **warns;
  size_t nwarns, capwarns;
  int err;
  char *errmsg;
  uv_work_t work;
  uv_loop_t *loop;
};

static int push_str(orr_arena *a, const char ***v, size_t *n, size_t *cap, const char *s) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    const char **nv = realloc(*v, nc * sizeof(*nv));
    if (!nv) return ORR_ENOMEM;
    *v = nv;
    *cap = nc;
  }
  if (!((*v)[*n] = orr_arena_strdup(a, s))) return ORR_ENOMEM;
  (*n)++;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void lwork(uv_work_t *w) {
  lop *op = w->data;
  if (op->err) return;
  if (op->nvals) qsort(op->vals, op->nvals, sizeof(char *), cmp_str);
  size_t k = 0;
  for (size_t i = 0; i < op->nvals; i++) {
    if (k && !strcmp(op->vals[k - 1], op->vals[i])) continue;
    if (!op->req.name && op->req.dedup && is_replica(op->replica, op->nreplica, op->vals[i]))
      continue;
    op->vals[k++] = op->vals[i];
  }
  op->nvals = k;
  if (op->req.limit > 0 && op->nvals > (size_t)op->req.limit) op->nvals = (size_t)op->req.limit;
}

static void lop_free(lop *op) {
  free(op->vals);
  free(op->warns);
  release(op->eps, op->neps, op->t, op->a, op);
}

static void lop_unlink(lop *op) {
  gw *g = op->g;
  if (!g) return;
  LIST_UNLINK(g->lops, op, lprev, lnext);
  op->g = NULL;
  optimer_update(g);
}

static void lafter(uv_work_t *w, int status) {
  lop *op = w->data;
  (void)status;
  op->fn(op->arg, op->err, op->err ? op->errmsg : "", op->err ? NULL : op->vals,
         op->err ? 0 : op->nvals, op->warns, op->nwarns);
  op->released = true;
  if (op->outstanding == 0) lop_free(op);
}

static void lfinish(lop *op) {
  lop_unlink(op);
  op->work.data = op;
  if (uv_queue_work(op->loop, &op->work, lwork, lafter)) {
    op->err = ORR_EINTERNAL;
    lafter(&op->work, 0);
  }
}

static void lfail_or_warn(lop *op, ltarget *t, int status, const char *message) {
  const char *what = op->req.name ? "label values" : "label names";
  const char *m = orr_arena_sprintf(op->a,
                                    "receive %s from Addr: %s LabelSets: %s: rpc error: code = "
                                    "%s desc = %s",
                                    what, t->ep->name, t->lsets, grpc_code_name(status),
                                    message ? message : "");
  if (!m) m = "out of memory";
  if (op->partial) {
    gw__count_partial(op->g);
    if (push_str(op->a, &op->warns, &op->nwarns, &op->capwarns, m)) op->err = ORR_ENOMEM;
  } else if (!op->err) {
    op->err = status == NET_GRPC_DEADLINE_EXCEEDED ? ORR_ETIMEOUT : ORR_EUNAVAILABLE;
    op->errmsg = (char *)m;
  }
}


/* From the op timer: abandons siblings past their replica timeout. */
static void lop_check(lop *op, int64_t now) {
  for (size_t i = 0; i < op->neps; i++) {
    ltarget *t = &op->t[i];
    if (t->done || !t->h.at_ms || now < t->h.at_ms) continue;
    t->done = true;
    t->h.open = false;
    if (t->call) storeapi_unary_cancel(t->call);
    char m[200];
    lfail_or_warn(op, t, NET_GRPC_DEADLINE_EXCEEDED, hedge_desc(&t->h, m, sizeof(m)));
    if (--op->pending == 0) {
      lfinish(op);
      return;
    }
  }
}

static void lops_cancel_first(gw *g) {
  lop *op = g->lops;
  lop_unlink(op);
  for (size_t i = 0; i < op->neps; i++)
    if (op->t[i].call) storeapi_unary_cancel(op->t[i].call);
}

static void lops_check(gw *g, int64_t now) {
  for (lop *l = g->lops, *n; l; l = n) {
    n = l->lnext; /* |l| may finish and unlink */
    lop_check(l, now);
  }
}

static void ltarget_done(lop *op, ltarget *t, int status, const char *message, char **v,
                         size_t n, char **w, size_t nw) {
  gw__endpoint_observe(op->g, t->ep, op->req.name ? "LabelValues" : "LabelNames", status,
                       orr_now_ms() - op->start_ms, 0);
  op->outstanding--;
  t->call = NULL;
  if (t->done) { /* abandoned (lop_check): only the memory is left */
    if (op->released && op->outstanding == 0) lop_free(op);
    return;
  }
  t->done = true;
  t->h.open = false;
  if (status == NET_GRPC_OK)
    hedge_siblings((char *)&op->t[0].h, sizeof(ltarget), op->neps, (size_t)(t - op->t),
                   t->ep->name, op->start_ms, op->replica_timeout_ms);
  if (status != NET_GRPC_OK) {
    lfail_or_warn(op, t, status, message);
  } else {
    for (size_t i = 0; i < n; i++)
      if (push_str(op->a, &op->vals, &op->nvals, &op->capvals, v[i])) op->err = ORR_ENOMEM;
    for (size_t i = 0; i < nw; i++) {
      if (op->partial) {
        if (push_str(op->a, &op->warns, &op->nwarns, &op->capwarns, w[i])) op->err = ORR_ENOMEM;
      } else if (!op->err) {
        op->err = ORR_EUNAVAILABLE;
        op->errmsg = orr_arena_strdup(op->a, w[i]);
      }
    }
  }
  if (--op->pending == 0) lfinish(op);
}

static void on_names(int status, const char *message, const Thanos__LabelNamesResponse *r,
                     void *arg) {
  ltarget *t = arg;
  ltarget_done(t->op, t, status, message, r ? r->names : NULL, r ? r->n_names : 0,
               r ? r->warnings : NULL, r ? r->n_warnings : 0);
}

static void on_values(int status, const char *message, const Thanos__LabelValuesResponse *r,
                      void *arg) {
  ltarget *t = arg;
  ltarget_done(t->op, t, status, message, r ? r->values : NULL, r ? r->n_values : 0,
               r ? r->warnings : NULL, r ? r->n_warnings : 0);
}

int gw_labels(gw *g, const gw_labels_req *req, gw_labels_fn fn, void *arg) {
  return gw__labels_ex(g, req, fn, arg, NULL, 0);
}

int gw__labels_ex(gw *g, const gw_labels_req *req, gw_labels_fn fn, void *arg,
                  const char *const *rl, size_t nrl) {
  lop *op = calloc(1, sizeof(*op));
  if (!op) return ORR_ENOMEM;
  op->a = orr_arena_new(0);
  if (!op->a) {
    free(op);
    return ORR_ENOMEM;
  }
  op->req = *req;
  op->fn = fn;
  op->arg = arg;
  op->loop = g->loop;
  op->start_ms = orr_now_ms();
  op->replica_timeout_ms = g->cfg.replica_timeout_ms;
  op->partial = req->partial_response < 0 ? g->cfg.partial_response : req->partial_response != 0;
  int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : g->cfg.query_timeout_ms;
  /* A unary answer is all an endpoint sends: the response timeout bounds it. */
  if (g->cfg.store_response_timeout_ms > 0 && g->cfg.store_response_timeout_ms < timeout)
    timeout = g->cfg.store_response_timeout_ms;
  if (req->name && !(op->req.name = orr_arena_strdup(op->a, req->name))) goto oom;
  if (copy_replicas(g, op->a, rl, nrl, &op->replica, &op->nreplica)) goto oom;
  if (gw__targets(g, req->start, req->end, req->matchers, req->nmatchers, &op->eps, &op->neps))
    goto oom;
  op->t = calloc(op->neps + 1, sizeof(ltarget));
  Thanos__LabelMatcher **pm = NULL;
  if (!op->t || storeapi_matchers_to_proto(req->matchers, req->nmatchers, op->a, &pm)) goto oom;
  Thanos__LabelNamesRequest nr;
  Thanos__LabelValuesRequest vr;
  thanos__label_names_request__init(&nr);
  thanos__label_values_request__init(&vr);
  nr.start = vr.start = req->start;
  nr.end = vr.end = req->end;
  nr.partial_response_disabled = vr.partial_response_disabled = !op->partial;
  nr.partial_response_strategy = vr.partial_response_strategy =
      op->partial ? THANOS__PARTIAL_RESPONSE_STRATEGY__WARN : THANOS__PARTIAL_RESPONSE_STRATEGY__ABORT;
  nr.matchers = vr.matchers = pm;
  nr.n_matchers = vr.n_matchers = req->nmatchers;
  if (req->dedup) {
    nr.without_replica_labels = vr.without_replica_labels = op->replica;
    nr.n_without_replica_labels = vr.n_without_replica_labels = op->nreplica;
  }
  nr.limit = vr.limit = req->limit;
  vr.label = (char *)op->req.name;
  for (size_t i = 0; i < op->neps; i++) {
    ltarget *t = &op->t[i];
    t->op = op;
    t->ep = op->eps[i];
    t->lsets = gw__endpoint_lsets_text(g, t->ep, op->a);
    if (!t->lsets) t->lsets = "";
    if (req->dedup && op->nreplica)
      t->h.group = gw__endpoint_group(g, t->ep, op->replica, op->nreplica, op->a);
    int rc = req->name ? storeapi_client_label_values_ex(t->ep->client, &vr, timeout, on_values,
                                                         t, &t->call)
                       : storeapi_client_label_names_ex(t->ep->client, &nr, timeout, on_names, t,
                                                        &t->call);
    if (rc) {
      lfail_or_warn(op, t, NET_GRPC_INTERNAL, orr_strerror(rc));
      continue;
    }
    op->pending++;
    op->outstanding++;
    t->h.open = true;
  }
  /* Linked for the op timer (the replica-group rule). */
  op->g = g;
  LIST_PUSH(g->lops, op, lprev, lnext);
  optimer_update(g);
  if (op->pending == 0) lfinish(op);
  return 0;
oom:
  gw__targets_release(NULL, op->eps, op->neps);
  free(op->t);
  orr_arena_destroy(op->a);
  free(op);
  return ORR_ENOMEM;
}

/* ================================================================ sync bridge */
/* A request from a thread other than the loop's: queued under qmu, started
 * by the async handle's callback on the loop, waited for on a condition. */
typedef struct gw__sync {
  struct gw__sync *next;
  gw *g;
  bool labels;
  gw_select_req sreq;
  gw_select_cb ucb; /* the caller's */
  gw_labels_req lreq;
  orr_arena *la;
  const char ***lvals;
  size_t *lnvals;
  const char ***lwarns;
  size_t *lnwarns;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  int rc;
  char err[512];
} gw__sync;

static void sync_signal(gw__sync *s, int rc, const char *msg) {
  pthread_mutex_lock(&s->mu);
  s->rc = rc;
  snprintf(s->err, sizeof(s->err), "%s", msg ? msg : "");
  s->done = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void sync_select_done(void *arg, int err, const char *msg) {
  gw__sync *s = arg;
  sync_signal(s, err, msg);
}

static int sync_series(void *arg, const labels_set *ls, const promql_point *p, size_t n) {
  gw__sync *s = arg;
  return s->ucb.series ? s->ucb.series(s->ucb.arg, ls, p, n) : 0;
}

static void sync_warning(void *arg, const char *msg) {
  gw__sync *s = arg;
  if (s->ucb.warning) s->ucb.warning(s->ucb.arg, msg);
}

static char **copy_strs(orr_arena *a, const char *const *v, size_t n) {
  char **o = orr_arena_calloc(a, n + 1, sizeof(char *));
  for (size_t i = 0; o && i < n; i++)
    if (!(o[i] = orr_arena_strdup(a, v[i]))) return NULL;
  return o;
}

static void sync_labels_done(void *arg, int err, const char *msg, const char *const *values,
                             size_t n, const char *const *warnings, size_t nw) {
  gw__sync *s = arg;
  if (!err) {
    *s->lvals = (const char **)copy_strs(s->la, values, n);
    *s->lnvals = n;
    if (!*s->lvals) err = ORR_ENOMEM;
  }
  *s->lwarns = (const char **)copy_strs(s->la, warnings, nw);
  *s->lnwarns = *s->lwarns ? nw : 0;
  sync_signal(s, err, msg);
}

/* Takes the queue of calls from other threads. */
static gw__sync *take_queue(gw *g) {
  pthread_mutex_lock(&g->qmu);
  gw__sync *q = g->queue;
  g->queue = NULL;
  pthread_mutex_unlock(&g->qmu);
  return q;
}

static void async_cb(uv_async_t *h) {
  gw *g = h->data;
  gw__sync *q = take_queue(g);
  while (q) {
    gw__sync *s = q;
    q = q->next;
    int rc;
    if (s->labels) {
      rc = gw_labels(g, &s->lreq, sync_labels_done, s);
    } else {
      gw_select_cb cb = {sync_series, sync_warning, sync_select_done, s};
      rc = gw_select(g, &s->sreq, &cb, NULL);
    }
    if (rc) sync_signal(s, rc, orr_strerror(rc));
  }
}

int gw__sync_init(gw *g) {
  if (uv_async_init(g->loop, &g->async, async_cb)) return ORR_ENOMEM;
  g->async.data = g;
  return 0;
}

void gw__sync_close(gw *g, uv_close_cb cb) {
  gw__sync *q = take_queue(g);
  while (q) {
    gw__sync *s = q;
    q = q->next;
    sync_signal(s, ORR_ECANCELED, "the gateway is shutting down");
  }
  uv_close((uv_handle_t *)&g->async, cb);
}

static int sync_run(gw *g, gw__sync *s, char *err, size_t errlen) {
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->g = g;
  pthread_mutex_lock(&g->qmu);
  bool closing = g->closing;
  if (!closing) {
    s->next = g->queue;
    g->queue = s;
  }
  pthread_mutex_unlock(&g->qmu);
  if (closing) {
    s->rc = ORR_ECANCELED;
    snprintf(s->err, sizeof(s->err), "the gateway is shutting down");
  } else {
    uv_async_send(&g->async);
    pthread_mutex_lock(&s->mu);
    while (!s->done) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
  }
  if (err && errlen) snprintf(err, errlen, "%s", s->err);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  return s->rc;
}

int gw_select_sync(gw *g, const gw_select_req *req, const gw_select_cb *cb, char *err,
                   size_t errlen) {
  gw__sync s;
  memset(&s, 0, sizeof(s));
  s.sreq = *req;
  s.ucb = *cb;
  return sync_run(g, &s, err, errlen);
}

int gw_labels_sync(gw *g, const gw_labels_req *req, orr_arena *a, const char ***values,
                   size_t *n, const char ***warnings, size_t *nwarnings, char *err,
                   size_t errlen) {
  gw__sync s;
  memset(&s, 0, sizeof(s));
  s.labels = true;
  s.lreq = *req;
  s.la = a;
  *values = NULL;
  *n = 0;
  *warnings = NULL;
  *nwarnings = 0;
  s.lvals = values;
  s.lnvals = n;
  s.lwarns = warnings;
  s.lnwarns = nwarnings;
  return sync_run(g, &s, err, errlen);
}
