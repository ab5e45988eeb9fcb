/* fanout_fake_stores.c: N lightweight StoreAPI endpoints in one process for
 * bench/fanout_width.sh — each its own gRPC server on 127.0.0.1 (a port of
 * its own), with the external label store="sNNNN" and one series,
 * up{job="fake", store="sNNNN"}, sampled every 15 s over the 10 minutes up
 * to --t0. So a gateway over them answers count(up) with N, and what it
 * spends grows only with the number of endpoints.
 *
 * Two implementations of the same endpoints: by default a small raw HTTP/2
 * gRPC server (below, "raw mode": answers encoded once, so the fakes' own
 * CPU stays out of the way of the gateway's on a small machine); with --lib
 * the library's gRPC server and StoreAPI server, as a sidecar serves (what
 * the bench measured before the raw mode; run it to see the library
 * server's cost per call).
 *
 * Usage: bench_fanout_fake_stores [--lib] N T0_MS SD_FILE
 * Writes SD_FILE (file SD JSON, every endpoint's address) once every
 * server listens, then serves until SIGTERM/SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/resource.h>

#include "storeapi.h"
#include "tsdb.h"

typedef struct fake {
  net_grpc_server *grpc;
  storeapi_server *sapi;
  char store[16];
} fake;

static const uint8_t *chunk;
static size_t chunk_len;
static int64_t chunk_mint, chunk_maxt;

/* The series's labels, sorted by name as a StoreAPI server sends them. */
static const char *const series_names[] = {"__name__", "job", "store"};

/* Whether a Series request for [mint, maxt] with the matchers |ms| selects
 * the series of the endpoint |store|. */
static bool series_selected(const char *store, int64_t mint, int64_t maxt,
                            labels_matcher *const *ms, size_t nms) {
  const char *values[] = {"up", "fake", store};
  bool match = maxt >= chunk_mint && mint <= chunk_maxt;
  for (size_t i = 0; match && i < nms; i++) {
    const char *v = "";
    for (size_t j = 0; j < 3; j++)
      if (!strcmp(labels_matcher_name(ms[i]), series_names[j])) v = values[j];
    match = labels_matcher_matches(ms[i], v, strlen(v));
  }
  return match;
}

/* An endpoint's answers, as both modes send them: its Info (the external
 * label store=|store|) and its one series (the external label is part of
 * it). The messages point into the struct and at |store|. */
typedef struct fake_msgs {
  Thanos__Label il, *ilp;
  Thanos__LabelSet ls, *lsp;
  Thanos__Info__StoreInfo si;
  Thanos__Info__InfoResponse info;
  Thanos__Label sl[3], *slp[3];
  Thanos__Chunk raw;
  Thanos__AggrChunk ac, *ap;
  Thanos__Series series;
} fake_msgs;

static void fake_msgs_init(fake_msgs *m, const char *store) {
  thanos__label__init(&m->il);
  m->il.name = "store", m->il.value = (char *)store;
  m->ilp = &m->il;
  thanos__label_set__init(&m->ls);
  m->ls.labels = &m->ilp, m->ls.n_labels = 1;
  m->lsp = &m->ls;
  thanos__info__store_info__init(&m->si);
  m->si.min_time = chunk_mint, m->si.max_time = chunk_maxt;
  m->si.supports_without_replica_labels = 1;
  thanos__info__info_response__init(&m->info);
  m->info.label_sets = &m->lsp, m->info.n_label_sets = 1;
  m->info.componenttype = "store";
  m->info.store = &m->si;
  const char *values[] = {"up", "fake", store};
  for (size_t j = 0; j < 3; j++) {
    thanos__label__init(&m->sl[j]);
    m->sl[j].name = (char *)series_names[j], m->sl[j].value = (char *)values[j];
    m->slp[j] = &m->sl[j];
  }
  thanos__chunk__init(&m->raw);
  m->raw.type = THANOS__CHUNK__ENCODING__XOR;
  m->raw.data.data = (uint8_t *)chunk, m->raw.data.len = chunk_len;
  thanos__aggr_chunk__init(&m->ac);
  m->ac.min_time = chunk_mint, m->ac.max_time = chunk_maxt, m->ac.raw = &m->raw;
  m->ap = &m->ac;
  thanos__series__init(&m->series);
  m->series.labels = m->slp, m->series.n_labels = 3;
  m->series.chunks = &m->ap, m->series.n_chunks = 1;
}

static void be_info(void *arg, storeapi_call *c) {
  fake *f = arg;
  fake_msgs m;
  fake_msgs_init(&m, f->store);
  storeapi_call_reply_info(c, &m.info);
}

static void be_series(void *arg, storeapi_call *c, const storeapi_series_req *req) {
  fake *f = arg;
  if (series_selected(f->store, req->msg->min_time, req->msg->max_time, req->matchers,
                      req->nmatchers)) {
    fake_msgs m;
    fake_msgs_init(&m, f->store);
    /* One small message into an empty queue is always taken. */
    if (storeapi_call_send_series(c, &m.series) == ORR_ENOMEM) {
      storeapi_call_finish(c, NET_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
  }
  storeapi_call_finish(c, NET_GRPC_OK, NULL);
}

static void be_cancel(void *arg, storeapi_call *c) {
  (void)arg;
  storeapi_call_finish(c, NET_GRPC_CANCELLED, "cancelled");
}

static uv_signal_t sigterm, sigint;
static fake *fakes;
static int nfakes, closing_left;

static void closed_one(void *arg) {
  (void)arg;
  closing_left--;
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  (void)s;
  uv_signal_stop(&sigterm);
  uv_signal_stop(&sigint);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_close((uv_handle_t *)&sigint, NULL);
  closing_left = nfakes;
  for (int i = 0; i < nfakes; i++) net_grpc_server_close(fakes[i].grpc, 0, closed_one, NULL);
}

/* ---------------------------------------------------------------- raw mode
 *
 * The default endpoints: each answers over HTTP/2 as a gRPC server must (the
 * gateway's ordinary client talks to them), but with what a fixed answer
 * lets a harness skip: the three response frames of each method are encoded
 * once per endpoint at start (HPACK literals without indexing, so the
 * gateway's decoder state never depends on them), a request's stream id is
 * patched in, and a Series request is unpacked and matched only when its
 * bytes differ from the last one the endpoint saw. Per call: the request's
 * header block through nghttp2's HPACK decoder (its state must follow the
 * client's encoder), one read and one write per batch of frames, no
 * allocation once a connection's buffers have grown. Flow control is kept:
 * a DATA frame waits for the peer's connection and stream windows, and the
 * request bytes are given back with WINDOW_UPDATEs. A protocol error closes
 * the connection (the bench then fails on a wrong answer). */
#include <nghttp2/nghttp2.h>

#define RAW_MAX_STREAMS 32
#define RAW_FRAME_MAX 16384 /* the peer's SETTINGS_MAX_FRAME_SIZE is at least this */

enum { K_NONE, K_SERIES, K_INFO, K_UNIMPL };

typedef struct raw_ans {
  uint8_t hdr[64]; /* response header block */
  size_t hdr_len;
  uint8_t *msg; /* the gRPC-framed message, or NULL */
  size_t msg_len;
  uint8_t trl[64]; /* trailer block */
  size_t trl_len;
} raw_ans;

typedef struct raw_ep {
  uv_tcp_t lis;
  char store[16];
  raw_ans series_hit, series_miss, info, unimpl;
  orr_buf last_req; /* the last Series request body, and what it matched */
  int last_match, have_last;
} raw_ep;

typedef struct raw_stream {
  int32_t id;
  int kind;
  int ended;   /* request complete, answer pending (windows) */
  int64_t win; /* send window */
  orr_buf body;
} raw_stream;

typedef struct raw_conn {
  uv_tcp_t tcp;
  raw_ep *ep;
  nghttp2_hd_inflater *inf;
  size_t preface_seen;
  orr_buf in;     /* bytes of an incomplete frame */
  orr_buf hblock; /* a header block awaiting CONTINUATION */
  int32_t hstream;
  int hend_stream;
  int64_t conn_win;
  int32_t peer_init_win;
  uint32_t unacked; /* request bytes not yet given back */
  orr_buf out, wbuf; /* being built; in flight */
  uv_write_t wreq;
  int writing, closing;
  raw_stream st[RAW_MAX_STREAMS];
} raw_conn;

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void put_frame_hdr(uint8_t *p, size_t len, uint8_t type, uint8_t flags, int32_t id) {
  p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
  p[3] = type, p[4] = flags;
  p[5] = (uint8_t)((uint32_t)id >> 24 & 0x7f), p[6] = (uint8_t)(id >> 16), p[7] = (uint8_t)(id >> 8),
  p[8] = (uint8_t)id;
}

static int out_frame(raw_conn *c, uint8_t type, uint8_t flags, int32_t id, const void *pl,
                     size_t len) {
  uint8_t h[9];
  put_frame_hdr(h, len, type, flags, id);
  if (orr_buf_append(&c->out, h, 9)) return ORR_ENOMEM;
  return len ? orr_buf_append(&c->out, pl, len) : 0;
}

/* HPACK literal header field without indexing (RFC 7541 6.2.2), the name
 * either a static-table index (|idx| > 0) or literal. */
static size_t hpack_int(uint8_t *p, unsigned prefix_bits, uint8_t first, size_t v) {
  size_t max = (1u << prefix_bits) - 1, n = 0;
  if (v < max) {
    p[n++] = first | (uint8_t)v;
    return n;
  }
  p[n++] = first | (uint8_t)max;
  v -= max;
  while (v >= 128) p[n++] = (uint8_t)(v % 128 + 128), v /= 128;
  p[n++] = (uint8_t)v;
  return n;
}

static void hpack_lit(uint8_t *blk, size_t *len, unsigned idx, const char *name,
                      const char *value) {
  uint8_t *p = blk + *len;
  size_t n = hpack_int(p, 4, 0x00, idx);
  if (!idx) {
    n += hpack_int(p + n, 7, 0x00, strlen(name));
    memcpy(p + n, name, strlen(name)), n += strlen(name);
  }
  n += hpack_int(p + n, 7, 0x00, strlen(value));
  memcpy(p + n, value, strlen(value)), n += strlen(value);
  *len += n;
}

/* :status 200 (static index 8) and content-type (31): the response
 * headers of every answer. */
static void ans_init(raw_ans *a, int grpc_status, const char *grpc_message) {
  a->hdr_len = 0;
  a->hdr[a->hdr_len++] = 0x88;
  hpack_lit(a->hdr, &a->hdr_len, 31, NULL, "application/grpc");
  a->trl_len = 0;
  char st[8];
  snprintf(st, sizeof(st), "%d", grpc_status);
  hpack_lit(a->trl, &a->trl_len, 0, "grpc-status", st);
  if (grpc_message) hpack_lit(a->trl, &a->trl_len, 0, "grpc-message", grpc_message);
}

static int ans_msg(raw_ans *a, const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  if (n + 5 > RAW_FRAME_MAX) return ORR_EINVAL;
  if (!(a->msg = malloc(n + 5))) return ORR_ENOMEM;
  a->msg[0] = 0;
  a->msg[1] = (uint8_t)(n >> 24), a->msg[2] = (uint8_t)(n >> 16), a->msg[3] = (uint8_t)(n >> 8),
  a->msg[4] = (uint8_t)n;
  protobuf_c_message_pack(m, a->msg + 5);
  a->msg_len = n + 5;
  return 0;
}

static int raw_ep_init(raw_ep *e, int i) {
  snprintf(e->store, sizeof(e->store), "s%05d", i);
  ans_init(&e->series_hit, 0, NULL);
  ans_init(&e->series_miss, 0, NULL);
  ans_init(&e->info, 0, NULL);
  ans_init(&e->unimpl, 12, "method not served by this fake");
  fake_msgs m;
  fake_msgs_init(&m, e->store);
  int rc = ans_msg(&e->info, &m.info.base);
  if (rc) return rc;
  Thanos__SeriesResponse sr = THANOS__SERIES_RESPONSE__INIT;
  sr.result_case = THANOS__SERIES_RESPONSE__RESULT_SERIES;
  sr.series = &m.series;
  return ans_msg(&e->series_hit, &sr.base);
}

/* Whether the Series request |body| (gRPC-framed) selects the endpoint's
 * series, unpacked only when it differs from the last. */
static int series_matches(raw_ep *e, const orr_buf *body) {
  if (e->have_last && e->last_req.len == body->len &&
      memcmp(e->last_req.data, body->data, body->len) == 0)
    return e->last_match;
  int match = 0;
  const uint8_t *p = (const uint8_t *)body->data;
  if (body->len >= 5 && p[0] == 0) {
    Thanos__SeriesRequest *rq = thanos__series_request__unpack(NULL, body->len - 5, p + 5);
    orr_arena *a = orr_arena_new(4096);
    labels_matcher **ms = NULL;
    char err[256];
    if (rq && a &&
        !storeapi_matchers_from_proto(rq->matchers, rq->n_matchers, a, &ms, err, sizeof(err))) {
      match = series_selected(e->store, rq->min_time, rq->max_time, ms, rq->n_matchers);
      storeapi_matchers_free(ms, rq->n_matchers);
    }
    orr_arena_destroy(a);
    if (rq) thanos__series_request__free_unpacked(rq, NULL);
  }
  e->last_req.len = 0;
  e->have_last = !orr_buf_append(&e->last_req, body->data, body->len);
  e->last_match = match;
  return match;
}

static void raw_flush(raw_conn *c);

static void raw_closed(uv_handle_t *h) {
  raw_conn *c = h->data;
  if (c->inf) nghttp2_hd_inflate_del(c->inf);
  orr_buf_free(&c->in);
  orr_buf_free(&c->hblock);
  orr_buf_free(&c->out);
  orr_buf_free(&c->wbuf);
  for (int i = 0; i < RAW_MAX_STREAMS; i++) orr_buf_free(&c->st[i].body);
  free(c);
}

static void raw_close(raw_conn *c, const char *why) {
  if (c->closing) return;
  c->closing = 1;
  if (why) fprintf(stderr, "fake %s: closing a connection: %s\n", c->ep->store, why);
  uv_close((uv_handle_t *)&c->tcp, raw_closed);
}

static raw_stream *find_stream(raw_conn *c, int32_t id) {
  for (int i = 0; i < RAW_MAX_STREAMS; i++)
    if (c->st[i].kind != K_NONE && c->st[i].id == id) return &c->st[i];
  return NULL;
}

/* Sends the answer of an ended stream if the windows allow; frees it. */
static int answer(raw_conn *c, raw_stream *s) {
  raw_ans *a = s->kind == K_INFO ? &c->ep->info : s->kind == K_UNIMPL ? &c->ep->unimpl : NULL;
  if (s->kind == K_SERIES) a = series_matches(c->ep, &s->body) ? &c->ep->series_hit : &c->ep->series_miss;
  if (a->msg && ((int64_t)a->msg_len > c->conn_win || (int64_t)a->msg_len > s->win))
    return 0; /* a WINDOW_UPDATE brings it back here */
  int rc = out_frame(c, 1, 0x4, s->id, a->hdr, a->hdr_len);
  if (!rc && a->msg) {
    rc = out_frame(c, 0, 0, s->id, a->msg, a->msg_len);
    c->conn_win -= (int64_t)a->msg_len;
  }
  if (!rc) rc = out_frame(c, 1, 0x5, s->id, a->trl, a->trl_len);
  s->kind = K_NONE;
  s->body.len = 0;
  return rc;
}

static int retry_pending(raw_conn *c) {
  for (int i = 0; i < RAW_MAX_STREAMS; i++)
    if (c->st[i].kind != K_NONE && c->st[i].ended) {
      int rc = answer(c, &c->st[i]);
      if (rc) return rc;
    }
  return 0;
}

static int request_ended(raw_conn *c, raw_stream *s) {
  s->ended = 1;
  return answer(c, s);
}

/* A complete header block of stream |id|: the :path picks the answer. */
static int on_headers(raw_conn *c, int32_t id, const uint8_t *blk, size_t len, int end_stream) {
  int kind = K_UNIMPL;
  for (;;) {
    nghttp2_nv nv;
    int fl = 0;
    ssize_t n = nghttp2_hd_inflate_hd2(c->inf, &nv, &fl, blk, len, 1);
    if (n < 0) return ORR_EPROTO;
    blk += n, len -= (size_t)n;
    if (fl & NGHTTP2_HD_INFLATE_EMIT && nv.namelen == 5 && !memcmp(nv.name, ":path", 5)) {
      if (nv.valuelen == strlen(STOREAPI_PATH_SERIES) &&
          !memcmp(nv.value, STOREAPI_PATH_SERIES, nv.valuelen))
        kind = K_SERIES;
      else if (nv.valuelen == strlen(STOREAPI_PATH_INFO) &&
               !memcmp(nv.value, STOREAPI_PATH_INFO, nv.valuelen))
        kind = K_INFO;
    }
    if (fl & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(c->inf);
      break;
    }
    if (n == 0 && !(fl & NGHTTP2_HD_INFLATE_EMIT)) return ORR_EPROTO;
  }
  if (id <= 0 || !(id & 1)) return ORR_EPROTO;
  if (find_stream(c, id)) return 0; /* trailers from the client: ignored */
  raw_stream *s = NULL;
  for (int i = 0; i < RAW_MAX_STREAMS && !s; i++)
    if (c->st[i].kind == K_NONE) s = &c->st[i];
  if (!s) return ORR_EPROTO; /* beyond SETTINGS_MAX_CONCURRENT_STREAMS */
  s->id = id, s->kind = kind, s->ended = 0, s->win = c->peer_init_win, s->body.len = 0;
  return end_stream ? request_ended(c, s) : 0;
}

static int give_back(raw_conn *c, uint32_t n) {
  c->unacked += n;
  if (c->unacked < 16384) return 0;
  uint8_t w[4] = {(uint8_t)(c->unacked >> 24), (uint8_t)(c->unacked >> 16),
                  (uint8_t)(c->unacked >> 8), (uint8_t)c->unacked};
  c->unacked = 0;
  return out_frame(c, 8, 0, 0, w, 4);
}

/* One frame; returns 0 or an error (the connection closes). */
static int on_frame(raw_conn *c, uint8_t type, uint8_t flags, int32_t id, const uint8_t *p,
                    size_t len) {
  if (c->hstream && type != 9) return ORR_EPROTO; /* CONTINUATION expected */
  switch (type) {
  case 0: { /* DATA */
    int rc = give_back(c, (uint32_t)len);
    if (rc) return rc;
    if (flags & 0x8) {
      if (len < 1 || p[0] >= len) return ORR_EPROTO;
      len -= 1 + p[0], p++;
    }
    raw_stream *s = find_stream(c, id);
    if (!s || s->ended) return 0; /* reset or closed: dropped */
    /* Each stream's window is the initial one: a request longer than it
     * would need stream WINDOW_UPDATEs, which StoreAPI requests never do. */
    if (s->body.len + len > 65535) return ORR_EPROTO;
    if (orr_buf_append(&s->body, p, len)) return ORR_ENOMEM;
    return flags & 0x1 ? request_ended(c, s) : 0;
  }
  case 1: /* HEADERS */
  case 9: /* CONTINUATION */
    if (type == 1) {
      if (flags & 0x8) {
        if (len < 1 || p[0] >= len) return ORR_EPROTO;
        len -= 1 + p[0], p++;
      }
      if (flags & 0x20) {
        if (len < 5) return ORR_EPROTO;
        p += 5, len -= 5;
      }
      if (flags & 0x4) return on_headers(c, id, p, len, flags & 0x1);
      c->hstream = id, c->hend_stream = flags & 0x1, c->hblock.len = 0;
    } else if (id != c->hstream) {
      return ORR_EPROTO;
    }
    if (orr_buf_append(&c->hblock, p, len)) return ORR_ENOMEM;
    if (type == 9 && flags & 0x4) {
      int32_t hid = c->hstream;
      c->hstream = 0;
      return on_headers(c, hid, (const uint8_t *)c->hblock.data, c->hblock.len, c->hend_stream);
    }
    return 0;
  case 3: { /* RST_STREAM */
    raw_stream *s = find_stream(c, id);
    if (s) s->kind = K_NONE, s->body.len = 0;
    return 0;
  }
  case 4: /* SETTINGS */
    if (flags & 0x1) return 0;
    if (len % 6) return ORR_EPROTO;
    for (size_t i = 0; i < len; i += 6) {
      uint16_t k = (uint16_t)(p[i] << 8 | p[i + 1]);
      uint32_t v = (uint32_t)p[i + 2] << 24 | (uint32_t)p[i + 3] << 16 | (uint32_t)p[i + 4] << 8 | p[i + 5];
      if (k == 4) { /* INITIAL_WINDOW_SIZE: applies to open streams too */
        for (int j = 0; j < RAW_MAX_STREAMS; j++) c->st[j].win += (int64_t)v - c->peer_init_win;
        c->peer_init_win = (int32_t)v;
      }
    }
    {
      int rc = out_frame(c, 4, 0x1, 0, NULL, 0);
      return rc ? rc : retry_pending(c);
    }
  case 6: /* PING */
    if (len != 8) return ORR_EPROTO;
    return flags & 0x1 ? 0 : out_frame(c, 6, 0x1, 0, p, 8);
  case 7: /* GOAWAY: the client is done */
    return ORR_ECLOSED;
  case 8: { /* WINDOW_UPDATE */
    if (len != 4) return ORR_EPROTO;
    uint32_t inc = ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) & 0x7fffffff;
    if (id == 0) {
      c->conn_win += inc;
    } else {
      raw_stream *s = find_stream(c, id);
      if (s) s->win += inc;
    }
    return retry_pending(c);
  }
  default: /* PRIORITY, PUSH_PROMISE (never from a client), extensions */
    return 0;
  }
}

/* Parses every complete frame of |p|; keeps an incomplete tail in |in|. */
static int raw_input(raw_conn *c, const uint8_t *p, size_t n) {
  if (c->preface_seen < 24) {
    size_t k = 24 - c->preface_seen < n ? 24 - c->preface_seen : n;
    if (memcmp(p, preface + c->preface_seen, k)) return ORR_EPROTO;
    c->preface_seen += k, p += k, n -= k;
  }
  while (n >= 9) {
    size_t len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
    if (len > RAW_FRAME_MAX) return ORR_EPROTO; /* we announce the default */
    if (n < 9 + len) break;
    int32_t id = (int32_t)(((uint32_t)p[5] << 24 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 8 | p[8]) & 0x7fffffff);
    int rc = on_frame(c, p[3], p[4], id, p + 9, len);
    if (rc) return rc;
    p += 9 + len, n -= 9 + len;
  }
  c->in.len = 0;
  return n ? orr_buf_append(&c->in, p, n) : 0;
}

static char raw_rbuf[64 * 1024];

static void raw_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b) {
  (void)h, (void)sug;
  *b = uv_buf_init(raw_rbuf, sizeof(raw_rbuf));
}

static void raw_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  raw_conn *c = st->data;
  if (c->closing) return;
  if (nread < 0) {
    raw_close(c, NULL);
    return;
  }
  int rc;
  if (c->in.len) { /* rare: a frame split across reads */
    if ((rc = orr_buf_append(&c->in, b->base, (size_t)nread)) == 0) {
      orr_buf tail = c->in;
      memset(&c->in, 0, sizeof(c->in));
      rc = raw_input(c, (const uint8_t *)tail.data, tail.len);
      orr_buf_free(&tail);
    }
  } else {
    rc = raw_input(c, (const uint8_t *)b->base, (size_t)nread);
  }
  if (rc) {
    raw_close(c, rc == ORR_ECLOSED ? NULL : orr_strerror(rc));
    return;
  }
  raw_flush(c);
}

static void raw_written(uv_write_t *w, int status) {
  raw_conn *c = w->data;
  c->writing = 0;
  c->wbuf.len = 0;
  if (c->closing) return;
  if (status < 0) {
    raw_close(c, uv_strerror(status));
    return;
  }
  raw_flush(c);
}

/* Everything built goes out in one write(2) when the socket takes it. */
static void raw_flush(raw_conn *c) {
  if (c->writing || c->closing || !c->out.len) return;
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    raw_close(c, uv_strerror(n));
    return;
  }
  if ((size_t)n == c->out.len) {
    c->out.len = 0;
    return;
  }
  orr_buf t = c->wbuf; /* swap: |out| goes in flight, builds continue in the other */
  c->wbuf = c->out;
  c->out = t;
  c->out.len = 0;
  b = uv_buf_init(c->wbuf.data + n, (unsigned)(c->wbuf.len - (size_t)n));
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, raw_written)) {
    raw_close(c, "write failed");
    return;
  }
  c->writing = 1;
}

static void raw_accept(uv_stream_t *lis, int status) {
  raw_ep *e = lis->data;
  if (status < 0) return;
  raw_conn *c = calloc(1, sizeof(*c));
  if (!c) return;
  c->ep = e;
  c->conn_win = 65535;
  c->peer_init_win = 65535;
  uv_tcp_init(lis->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(lis, (uv_stream_t *)&c->tcp) || nghttp2_hd_inflate_new(&c->inf)) {
    raw_close(c, "accept failed");
    return;
  }
  for (int i = 0; i < RAW_MAX_STREAMS; i++) c->st[i].kind = K_NONE;
  uv_tcp_nodelay(&c->tcp, 1);
  /* Our SETTINGS: SETTINGS_MAX_CONCURRENT_STREAMS (3). */
  uint8_t set[6] = {0, 3, 0, 0, 0, RAW_MAX_STREAMS};
  if (out_frame(c, 4, 0, 0, set, sizeof(set)) ||
      uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read)) {
    raw_close(c, "start failed");
    return;
  }
  raw_flush(c);
}

static raw_ep *raw_eps;

static void raw_on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_stop(s->loop);
}

int main(int argc, char **argv) {
  int lib = argc > 1 && !strcmp(argv[1], "--lib");
  if (lib) argc--, argv++;
  if (argc != 4) {
    fprintf(stderr, "usage: %s [--lib] N T0_MS SD_FILE\n", argv[0]);
    return 2;
  }
  nfakes = atoi(argv[1]);
  int64_t t0 = strtoll(argv[2], NULL, 10);
  if (nfakes <= 0 || nfakes > 100000) {
    fprintf(stderr, "N: want 1..100000\n");
    return 2;
  }
  /* A listener and a connection per endpoint. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  tsdb_xor_appender app;
  if (tsdb_xor_appender_init(&app)) return 1;
  chunk_mint = t0 - 600000;
  chunk_maxt = t0;
  for (int64_t t = chunk_mint; t <= chunk_maxt; t += 15000)
    if (tsdb_xor_append(&app, t, 1)) return 1;
  chunk = tsdb_xor_bytes(&app, &chunk_len);

  uv_loop_t *loop = uv_default_loop();
  fakes = calloc((size_t)nfakes, sizeof(*fakes));
  if (!fakes) return 1;
  FILE *sd = NULL;
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
  if (!(sd = fopen(tmp, "w"))) {
    perror(tmp);
    return 1;
  }
  fputs("[{\"targets\": [", sd);
  if (!lib) {
    if (!(raw_eps = calloc((size_t)nfakes, sizeof(*raw_eps)))) return 1;
    for (int i = 0; i < nfakes; i++) {
      raw_ep *e = &raw_eps[i];
      struct sockaddr_in sa;
      struct sockaddr_storage got;
      int glen = sizeof(got), rc;
      uv_ip4_addr("127.0.0.1", 0, &sa);
      if ((rc = raw_ep_init(e, i)) || (rc = uv_tcp_init(loop, &e->lis)) ||
          (rc = uv_tcp_bind(&e->lis, (const struct sockaddr *)&sa, 0)) ||
          (e->lis.data = e, rc = uv_listen((uv_stream_t *)&e->lis, 64, raw_accept)) ||
          (rc = uv_tcp_getsockname(&e->lis, (struct sockaddr *)&got, &glen))) {
        fprintf(stderr, "endpoint %d: %s\n", i, rc < 0 ? uv_strerror(rc) : orr_strerror(rc));
        return 1;
      }
      fprintf(sd, "%s\"127.0.0.1:%d\"", i ? ", " : "", ntohs(((struct sockaddr_in *)&got)->sin_port));
    }
  }
  for (int i = 0; lib && i < nfakes; i++) {
    fake *f = &fakes[i];
    snprintf(f->store, sizeof(f->store), "s%05d", i);
    storeapi_backend be = {be_info, be_series, NULL, NULL, be_cancel, NULL, f};
    int rc;
    if ((rc = net_grpc_server_new(loop, NULL, &f->grpc)) ||
        (rc = storeapi_server_new(f->grpc, &be, NULL, &f->sapi)) ||
        (rc = net_grpc_server_listen(f->grpc, "127.0.0.1", 0))) {
      fprintf(stderr, "endpoint %d: %s\n", i, orr_strerror(rc));
      return 1;
    }
    fprintf(sd, "%s\"127.0.0.1:%d\"", i ? ", " : "", net_grpc_server_port(f->grpc));
  }
  fputs("]}]\n", sd);
  if (fclose(sd) || rename(tmp, argv[3])) {
    perror(argv[3]);
    return 1;
  }
  uv_signal_init(loop, &sigterm);
  uv_signal_init(loop, &sigint);
  if (!lib) {
    /* A harness: the process exits with its connections. */
    uv_signal_start(&sigterm, raw_on_signal, SIGTERM);
    uv_signal_start(&sigint, raw_on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
  }
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_run(loop, UV_RUN_DEFAULT);
  for (int i = 0; i < nfakes; i++) storeapi_server_free(fakes[i].sapi);
  free(fakes);
  tsdb_xor_appender_free(&app);
  uv_loop_close(loop);
  return 0;
}
