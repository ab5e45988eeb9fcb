/* fuzz_grpc_frame.c: the gRPC deframer fed arbitrary bytes at arbitrary
 * split points (the first bytes choose the limit and the splits), checked
 * against a one-shot feed; plus grpc-timeout and grpc-message round trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

/* Feeds |p|/|n| in pieces whose sizes come from |splits|; appends every
 * message (length-prefixed) to |out|. Returns the first error or 0. */
static int run(const uint8_t *p, size_t n, size_t max, int enc, const uint8_t *splits,
               size_t nsplits, orr_buf *out) {
  net_grpc_deframer d;
  net_grpc_deframer_init(&d, max, enc);
  size_t pos = 0, k = 0;
  int rc = 0;
  while (pos < n && rc == 0) {
    size_t piece = nsplits ? (size_t)splits[k++ % nsplits] + 1 : n;
    if (piece > n - pos) piece = n - pos;
    size_t off = 0;
    while (off < piece) {
      size_t used;
      const uint8_t *msg;
      size_t mlen;
      rc = net_grpc_deframer_feed(&d, p + pos + off, piece - off, &used, &msg, &mlen);
      if (rc) break;
      if (used > piece - off) abort();
      if (msg) {
        if (mlen > d.max_msg) abort();
        orr_buf_put_be32(out, (uint32_t)mlen);
        orr_buf_append(out, msg, mlen);
      } else if (used == 0) {
        abort(); /* no progress */
      }
      off += used;
    }
    pos += piece;
  }
  if (rc == 0 && pos == n) orr_buf_putc(out, net_grpc_deframer_idle(&d) ? 'I' : 'P');
  net_grpc_deframer_free(&d);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  size_t max = (size_t)data[0] * 64;
  int enc = data[1] & 1;
  size_t nsplits = data[2] % 16;
  if (nsplits > size - 3) nsplits = size - 3;
  const uint8_t *splits = data + 3;
  const uint8_t *p = data + 3 + nsplits;
  size_t n = size - 3 - nsplits;

  orr_buf a = {0}, b = {0};
  int ra = run(p, n, max, enc, splits, nsplits, &a);
  int rb = run(p, n, max, enc, NULL, 0, &b);
  /* However the bytes are split, the same messages come out (up to the
   * first error, which is the same too). */
  if (ra != rb) abort();
  if (ra == 0 && (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))) abort();
  orr_buf_free(&a);
  orr_buf_free(&b);

  /* grpc-timeout: anything parsed formats back to no shorter a timeout. */
  int64_t ns;
  if (net_grpc_timeout_parse((const char *)p, n < 12 ? n : 12, &ns) == 0 && ns > 0) {
    char t[16];
    int64_t back;
    net_grpc_timeout_format(ns, t, sizeof(t));
    if (net_grpc_timeout_parse(t, strlen(t), &back) != 0 || back < ns) abort();
  }
  /* grpc-message: encode then decode is the identity. */
  orr_buf e = {0}, dd = {0};
  net_grpc_message_encode(&e, (const char *)p, n);
  for (size_t i = 0; i < e.len; i++)
    if ((unsigned char)e.data[i] < 0x20 || (unsigned char)e.data[i] > 0x7e) abort();
  net_grpc_message_decode(&dd, e.data, e.len);
  if (dd.len != n || (n && memcmp(dd.data, p, n) != 0)) abort();
  orr_buf_reset(&dd);
  net_grpc_message_decode(&dd, (const char *)p, n); /* arbitrary input: no crash */
  orr_buf_free(&e);
  orr_buf_free(&dd);
  return 0;
}
