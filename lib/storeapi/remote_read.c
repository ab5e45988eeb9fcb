/* remote_read.c: Prometheus remote read for the sidecar — the
 * snappy-compressed ReadRequest, the STREAMED_XOR_CHUNKS frame reader (no
 * I/O) and the streaming HTTP call that ties them to net_http_client.
 *
 * Design notes
 * 1. Frames are parsed as the body arrives; a frame split across pieces is
 *    copied into one buffer (at most max_frame bytes), one whole in a piece
 *    is read in place.
 * 2. Flow control: when on_series asks to pause, the rest of the current
 *    piece is still handed out (the caller queues it), and every later piece
 *    is refused with NET_HTTP_CLIENT_PAUSE until storeapi_rr_resume(). So at
 *    most one piece beyond the paused point is ever buffered downstream. */
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storeapi_int.h"

void storeapi_frames_init(storeapi_frames *f, size_t max_frame) {
  memset(f, 0, sizeof(*f));
  f->max_frame = max_frame ? max_frame : STOREAPI_FRAME_DEFAULT_MAX;
}

void storeapi_frames_free(storeapi_frames *f) { orr_buf_free(&f->data); }

static int frames_fail(storeapi_frames *f, int err, const char *msg) {
  f->err = err;
  f->errmsg = msg;
  return err;
}

static int frame_done(storeapi_frames *f, const uint8_t *data, size_t len, const uint8_t **frame,
                      size_t *flen) {
  if (orr_crc32c(0, data, len) != f->crc)
    return frames_fail(f, ORR_ECORRUPT, "remote read frame: CRC32 mismatch");
  *frame = data;
  *flen = len;
  f->hdr_len = 0;
  f->vlen = 0;
  f->have_hdr = 0;
  f->need = 0;
  f->consumed = 1;
  return 0;
}

int storeapi_frames_feed(storeapi_frames *f, const uint8_t *p, size_t n, size_t *used,
                         const uint8_t **frame, size_t *len) {
  *used = 0;
  *frame = NULL;
  *len = 0;
  if (f->err) return f->err;
  if (f->consumed) {
    orr_buf_reset(&f->data);
    f->consumed = 0;
  }
  size_t i = 0;
  while (!f->have_hdr && i < n) {
    f->hdr[f->hdr_len++] = p[i++];
    if (!f->vlen) {
      if (!(f->hdr[f->hdr_len - 1] & 0x80)) {
        f->vlen = f->hdr_len;
      } else if (f->hdr_len == 10) {
        *used = i;
        return frames_fail(f, ORR_ECORRUPT, "remote read frame: bad length varint");
      }
    }
    if (f->vlen && f->hdr_len == f->vlen + 4) {
      orr_dec d = orr_dec_make(f->hdr, f->hdr_len);
      uint64_t l;
      uint32_t crc;
      if (orr_dec_uvarint(&d, &l) || orr_dec_be32(&d, &crc)) {
        *used = i;
        return frames_fail(f, ORR_ECORRUPT, "remote read frame: bad length varint");
      }
      if (l > f->max_frame) {
        *used = i;
        return frames_fail(f, ORR_ELIMIT, "remote read frame: larger than the read limit");
      }
      f->need = (size_t)l;
      f->crc = crc;
      f->have_hdr = 1;
    }
  }
  if (!f->have_hdr) {
    *used = i;
    return 0;
  }
  size_t left = n - i;
  if (f->data.len == 0 && left >= f->need) {
    const uint8_t *data = p + i;
    *used = i + f->need;
    static const uint8_t empty[1];
    return frame_done(f, f->need ? data : empty, f->need, frame, len);
  }
  size_t take = f->need - f->data.len;
  if (take > left) take = left;
  if (f->data.len == 0 && orr_buf_reserve(&f->data, f->need + 1)) {
    *used = i;
    return frames_fail(f, ORR_ENOMEM, "out of memory");
  }
  orr_buf_append(&f->data, p + i, take);
  *used = i + take;
  if (f->data.len == f->need) return frame_done(f, (const uint8_t *)f->data.data, f->need, frame, len);
  return 0;
}

int storeapi_frames_end(storeapi_frames *f) {
  if (f->err) return f->err;
  if (f->hdr_len == 0 && !f->have_hdr) return 0;
  return frames_fail(f, ORR_ECORRUPT, "remote read: truncated frame at end of body");
}

int storeapi_remote_read_request(int64_t mint, int64_t maxt, labels_matcher *const *ms, size_t n,
                                 orr_buf *out) {
  int rc = ORR_ENOMEM;
  Prometheus__LabelMatcher *pm = calloc(n ? n : 1, sizeof(*pm));
  Prometheus__LabelMatcher **pp = calloc(n ? n : 1, sizeof(*pp));
  uint8_t *raw = NULL;
  if (!pm || !pp) goto out;
  for (size_t i = 0; i < n; i++) {
    prometheus__label_matcher__init(&pm[i]);
    pm[i].type = (Prometheus__LabelMatcher__Type)labels_matcher_type(ms[i]);
    pm[i].name = (char *)labels_matcher_name(ms[i]);
    pm[i].value = (char *)labels_matcher_value(ms[i]);
    pp[i] = &pm[i];
  }
  Prometheus__Query q = PROMETHEUS__QUERY__INIT;
  q.start_timestamp_ms = mint;
  q.end_timestamp_ms = maxt;
  q.matchers = pp;
  q.n_matchers = n;
  Prometheus__Query *qs[1] = {&q};
  Prometheus__ReadRequest__ResponseType types[1] = {
      PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS};
  Prometheus__ReadRequest rr = PROMETHEUS__READ_REQUEST__INIT;
  rr.queries = qs;
  rr.n_queries = 1;
  rr.accepted_response_types = types;
  rr.n_accepted_response_types = 1;
  size_t rawlen = prometheus__read_request__get_packed_size(&rr);
  raw = malloc(rawlen ? rawlen : 1);
  if (!raw) goto out;
  prometheus__read_request__pack(&rr, raw);
  size_t clen = snappy_max_compressed_length(rawlen);
  if (orr_buf_reserve(out, clen + 1)) goto out;
  if (snappy_compress((const char *)raw, rawlen, out->data + out->len, &clen) != SNAPPY_OK) {
    rc = ORR_EINTERNAL;
    goto out;
  }
  out->len += clen;
  rc = 0;
out:
  free(raw);
  free(pp);
  free(pm);
  return rc;
}

/* ---------------------------------------------------------------- the call */
#define RR_CT_STREAMED "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"

struct storeapi_rr {
  net_http_client_req *req;
  storeapi_rr_opts o;
  orr_buf body;
  storeapi_frames frames;
  orr_arena *scratch;
  bool paused;
  int status;    /* HTTP status; != 200 collects the body for the message */
  orr_buf errbody;
  char msg[512];
};

static int rr_headers(net_http_client_req *req, int status, void *arg) {
  storeapi_rr *r = arg;
  r->status = status;
  if (status != 200) return 0;
  const char *ct = net_http_client_header(req, "Content-Type");
  if (!ct || strncmp(ct, RR_CT_STREAMED, strlen(RR_CT_STREAMED)) != 0) {
    snprintf(r->msg, sizeof(r->msg), "not supported remote read content type: %s", ct ? ct : "");
    return ORR_EUNSUPPORTED;
  }
  return 0;
}

static int rr_frame(storeapi_rr *r, const uint8_t *data, size_t len) {
  orr_arena_reset(r->scratch);
  ProtobufCAllocator al = storeapi_arena_allocator(r->scratch);
  Prometheus__ChunkedReadResponse *m = prometheus__chunked_read_response__unpack(&al, len, data);
  if (!m) {
    snprintf(r->msg, sizeof(r->msg), "remote read: cannot decode ChunkedReadResponse frame");
    return ORR_ECORRUPT;
  }
  for (size_t i = 0; i < m->n_chunked_series; i++) {
    int rc = r->o.on_series(m->chunked_series[i], r->o.arg);
    if (rc == NET_HTTP_CLIENT_PAUSE)
      r->paused = true;
    else if (rc < 0)
      return rc;
  }
  return 0;
}

static int rr_body(net_http_client_req *req, const char *data, size_t n, void *arg) {
  storeapi_rr *r = arg;
  if (r->status != 200) {
    size_t room = r->errbody.len < 400 ? 400 - r->errbody.len : 0;
    orr_buf_append(&r->errbody, data, n < room ? n : room);
    return 0;
  }
  if (r->paused) return NET_HTTP_CLIENT_PAUSE;
  if (r->o.bytes_counter) orr_counter_add(r->o.bytes_counter, (double)n);
  const uint8_t *p = (const uint8_t *)data;
  while (n > 0) {
    size_t used;
    const uint8_t *frame;
    size_t flen;
    int rc = storeapi_frames_feed(&r->frames, p, n, &used, &frame, &flen);
    if (rc) {
      snprintf(r->msg, sizeof(r->msg), "%s", r->frames.errmsg);
      return rc;
    }
    p += used;
    n -= used;
    if (frame && (rc = rr_frame(r, frame, flen)) != 0) return rc;
  }
  return 0;
}

static void rr_free(storeapi_rr *r) {
  storeapi_frames_free(&r->frames);
  orr_arena_destroy(r->scratch);
  orr_buf_free(&r->body);
  orr_buf_free(&r->errbody);
  free((char *)r->o.base_url);
  free(r);
}

static void rr_done(net_http_client_req *req, int result, void *arg) {
  storeapi_rr *r = arg;
  r->req = NULL;
  if (result == 0 && r->status != 200) {
    result = ORR_EIO;
    snprintf(r->msg, sizeof(r->msg), "remote read: request failed with code %d; msg %.*s",
             r->status, (int)r->errbody.len, r->errbody.data ? r->errbody.data : "");
  } else if (result == 0) {
    result = storeapi_frames_end(&r->frames);
    if (result) snprintf(r->msg, sizeof(r->msg), "%s", r->frames.errmsg);
  } else if (!r->msg[0]) {
    snprintf(r->msg, sizeof(r->msg), "remote read: %s%s%s", orr_strerror(result),
             net_http_client_error(req)[0] ? ": " : "", net_http_client_error(req));
  }
  r->o.on_done(result, result ? r->msg : "", r->o.arg);
  rr_free(r);
}

int storeapi_rr_start(net_http_client *http, const storeapi_rr_opts *o, storeapi_rr **out) {
  storeapi_rr *r = calloc(1, sizeof(*r));
  if (!r) return ORR_ENOMEM;
  r->o = *o;
  r->o.base_url = NULL;
  storeapi_frames_init(&r->frames, o->max_frame);
  r->scratch = orr_arena_new(0);
  char *url = NULL;
  int rc = ORR_ENOMEM;
  if (!r->scratch) goto fail;
  size_t bl = strlen(o->base_url);
  while (bl > 0 && o->base_url[bl - 1] == '/') bl--;
  if (asprintf(&url, "%.*s/api/v1/read", (int)bl, o->base_url) < 0) {
    url = NULL;
    goto fail;
  }
  r->o.base_url = strdup(o->base_url);
  if (!r->o.base_url) goto fail;
  if ((rc = storeapi_remote_read_request(o->mint, o->maxt, o->matchers, o->nmatchers, &r->body)))
    goto fail;
  if ((rc = net_http_client_req_new(http, "POST", url, &r->req))) goto fail;
  if (o->client_config) {
    char err[300] = "";
    if ((rc = net_http_client_config_apply(o->client_config, r->req, err, sizeof err))) {
      orr_log_warn("remote read: cannot apply the HTTP client config", "err", err, NULL);
      net_http_client_req_free(r->req);
      goto fail;
    }
  }
  if ((rc = net_http_client_req_header(r->req, "Content-Encoding", "snappy")) ||
      (rc = net_http_client_req_header(r->req, "Content-Type", "application/x-protobuf")) ||
      (rc = net_http_client_req_header(r->req, "X-Prometheus-Remote-Read-Version", "0.1.0"))) {
    net_http_client_req_free(r->req);
    goto fail;
  }
  net_http_client_req_body(r->req, r->body.data, r->body.len);
  if (o->timeout_ms > 0) net_http_client_req_timeouts(r->req, o->timeout_ms, 0);
  net_http_client_req_callbacks(r->req, rr_headers, rr_body, rr_done, r);
  free(url);
  if (out) *out = r;
  net_http_client_start(r->req); /* errors arrive through rr_done */
  return 0;
fail:
  free(url);
  rr_free(r);
  return rc;
}

void storeapi_rr_pause(storeapi_rr *r) { r->paused = true; }

void storeapi_rr_resume(storeapi_rr *r) {
  if (!r->paused) return;
  r->paused = false;
  if (r->req) net_http_client_resume(r->req);
}

void storeapi_rr_cancel(storeapi_rr *r) {
  if (r->req) net_http_client_cancel(r->req);
}
