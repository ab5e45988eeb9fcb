/* aggr_chunk.c: Thanos's downsampling aggregate chunk (AggrChunk, chunk
 * encoding 0xff): five optional sub-chunks — count, sum, min, max, counter —
 * each as uvarint(len(data)), encoding byte, data; absent as one 0 byte. */
#include <string.h>

#include "tsdb.h"
#include "tsdb_int.h"

const char *tsdb_aggr_name(tsdb_aggr_type t) {
  static const char *const names[TSDB_AGGR_NUM] = {"count", "sum", "min", "max", "counter"};
  return (unsigned)t < TSDB_AGGR_NUM ? names[t] : "<unknown>";
}

int tsdb_aggr_encode(const tsdb_aggr_sub *subs, orr_buf *out) {
  for (int i = 0; i < TSDB_AGGR_NUM; i++) {
    const tsdb_aggr_sub *s = &subs[i];
    if (!s->data || s->len == 0) {
      orr_buf_put_uvarint(out, 0);
      continue;
    }
    orr_buf_put_uvarint(out, s->len);
    orr_buf_putc(out, (char)s->enc);
    orr_buf_append(out, s->data, s->len);
  }
  return out->oom ? ORR_ENOMEM : 0;
}

int tsdb_aggr_get(const uint8_t *p, size_t n, tsdb_aggr_type t, tsdb_aggr_sub *sub) {
  if ((unsigned)t >= TSDB_AGGR_NUM) return ORR_EINVAL;
  orr_dec d = orr_dec_make(p, n);
  for (int i = 0; i <= (int)t; i++) {
    uint64_t len;
    if (orr_dec_uvarint(&d, &len)) return ORR_ECORRUPT;
    if (len == 0) {
      /* Absent. (Thanos's Get also demands one more byte after the last
       * entry; we accept a chunk that ends here.) */
      if (i == (int)t) return ORR_ENOTFOUND;
      continue;
    }
    if (len >= orr_dec_left(&d)) return ORR_ECORRUPT; /* encoding byte + len */
    const uint8_t *enc, *data;
    orr_dec_bytes(&d, 1, &enc);
    orr_dec_bytes(&d, (size_t)len, &data);
    if (i == (int)t) {
      sub->enc = enc[0];
      sub->data = data;
      sub->len = (size_t)len;
      return 0;
    }
  }
  return ORR_ENOTFOUND; /* not reached */
}

int tsdb_aggr_iter_init(tsdb_xor_iter *it, const uint8_t *p, size_t n, tsdb_aggr_type t) {
  tsdb_aggr_sub sub;
  tsdb_xor_iter_init(it, NULL, 0);
  int rc = tsdb_aggr_get(p, n, t, &sub);
  if (rc) return rc;
  if (sub.enc != TSDB_ENC_XOR) return ORR_EUNSUPPORTED;
  tsdb_xor_iter_init(it, sub.data, sub.len);
  return it->err;
}

int tsdb_aggr_appender_init(tsdb_aggr_appender *a) {
  memset(a, 0, sizeof(*a));
  for (int i = 0; i < TSDB_AGGR_NUM; i++) {
    if (tsdb_xor_appender_init(&a->sub[i])) return ORR_ENOMEM;
  }
  return 0;
}

void tsdb_aggr_appender_free(tsdb_aggr_appender *a) {
  for (int i = 0; i < TSDB_AGGR_NUM; i++) tsdb_xor_appender_free(&a->sub[i]);
}

int tsdb_aggr_append(tsdb_aggr_appender *a, tsdb_aggr_type t, int64_t ts, double v) {
  if ((unsigned)t >= TSDB_AGGR_NUM) return ORR_EINVAL;
  return tsdb_xor_append(&a->sub[t], ts, v);
}

int tsdb_aggr_appender_bytes(const tsdb_aggr_appender *a, orr_buf *out) {
  tsdb_aggr_sub subs[TSDB_AGGR_NUM];
  for (int i = 0; i < TSDB_AGGR_NUM; i++) {
    subs[i].enc = TSDB_ENC_XOR;
    subs[i].data = NULL;
    subs[i].len = 0;
    if (a->sub[i].num > 0) subs[i].data = tsdb_xor_bytes(&a->sub[i], &subs[i].len);
  }
  return tsdb_aggr_encode(subs, out);
}
