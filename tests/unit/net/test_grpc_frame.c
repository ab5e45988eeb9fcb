/* test_grpc_frame.c: gRPC bytes without I/O — message prefix, the
 * incremental deframer over every split, grpc-timeout values,
 * grpc-message percent-encoding and the status table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net.h"

static void test_status_names(void **state) {
  assert_string_equal(net_grpc_status_name(NET_GRPC_OK), "OK");
  assert_string_equal(net_grpc_status_name(4), "DEADLINE_EXCEEDED");
  assert_string_equal(net_grpc_status_name(8), "RESOURCE_EXHAUSTED");
  assert_string_equal(net_grpc_status_name(12), "UNIMPLEMENTED");
  assert_string_equal(net_grpc_status_name(16), "UNAUTHENTICATED");
  assert_string_equal(net_grpc_status_name(17), "UNKNOWN");
  assert_int_equal(NET_GRPC_UNAVAILABLE, 14);
  assert_int_equal(net_grpc_status_from_err(ORR_ETIMEOUT), NET_GRPC_DEADLINE_EXCEEDED);
  assert_int_equal(net_grpc_status_from_err(ORR_ELIMIT), NET_GRPC_RESOURCE_EXHAUSTED);
  assert_int_equal(net_grpc_status_from_err(0), NET_GRPC_OK);
}

static void test_frame_append(void **state) {
  orr_buf b = {0};
  assert_int_equal(net_grpc_frame_append(&b, "hello", 5), 0);
  assert_int_equal(b.len, 10);
  assert_memory_equal(b.data, "\0\0\0\0\5hello", 10);
  assert_int_equal(net_grpc_frame_append(&b, NULL, 0), 0);
  assert_int_equal(b.len, 15);
  assert_memory_equal(b.data + 10, "\0\0\0\0\0", 5);
  orr_buf_free(&b);
}

/* Feeds |in| split at every point (and byte by byte), collecting messages
 * joined by '|'. */
static void collect(const uint8_t *in, size_t n, size_t split, orr_buf *out, int *err) {
  net_grpc_deframer d;
  net_grpc_deframer_init(&d, 1024, 0);
  size_t pos = 0;
  *err = 0;
  while (pos < n) {
    size_t end = split == 0 ? pos + 1 : (pos < split ? split : n);
    const uint8_t *p = in + pos;
    size_t left = end - pos;
    while (left > 0) {
      size_t used;
      const uint8_t *msg;
      size_t mlen;
      int rc = net_grpc_deframer_feed(&d, p, left, &used, &msg, &mlen);
      if (rc) {
        *err = rc;
        net_grpc_deframer_free(&d);
        return;
      }
      assert_true(used <= left);
      if (msg) {
        orr_buf_append(out, msg, mlen);
        orr_buf_putc(out, '|');
      }
      assert_true(used > 0 || msg);
      p += used;
      left -= used;
    }
    pos = end;
  }
  assert_true(net_grpc_deframer_idle(&d));
  net_grpc_deframer_free(&d);
}

static void test_deframer_splits(void **state) {
  orr_buf in = {0};
  net_grpc_frame_append(&in, "abc", 3);
  net_grpc_frame_append(&in, "", 0);
  char big[700];
  memset(big, 'x', sizeof(big));
  net_grpc_frame_append(&in, big, sizeof(big));
  net_grpc_frame_append(&in, "z", 1);
  orr_buf want = {0};
  orr_buf_puts(&want, "abc||");
  orr_buf_append(&want, big, sizeof(big));
  orr_buf_puts(&want, "|z|");
  for (size_t split = 0; split <= in.len; split++) {
    orr_buf got = {0};
    int err;
    collect((const uint8_t *)in.data, in.len, split, &got, &err);
    assert_int_equal(err, 0);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    orr_buf_free(&got);
  }
  orr_buf_free(&in);
  orr_buf_free(&want);
}

static void test_deframer_too_large(void **state) {
  net_grpc_deframer d;
  net_grpc_deframer_init(&d, 10, 0);
  const uint8_t in[] = {0, 0, 0, 0, 11, 'a'};
  size_t used;
  const uint8_t *msg;
  size_t mlen;
  /* Split in the prefix: the error shows once the length is known. */
  assert_int_equal(net_grpc_deframer_feed(&d, in, 3, &used, &msg, &mlen), 0);
  assert_int_equal(net_grpc_deframer_feed(&d, in + 3, 3, &used, &msg, &mlen), ORR_ELIMIT);
  assert_int_equal(d.status, NET_GRPC_RESOURCE_EXHAUSTED);
  /* Latched. */
  assert_int_equal(net_grpc_deframer_feed(&d, in, 1, &used, &msg, &mlen), ORR_ELIMIT);
  net_grpc_deframer_free(&d);
  /* Exactly the limit passes. */
  net_grpc_deframer_init(&d, 1, 0);
  const uint8_t ok[] = {0, 0, 0, 0, 1, 'q'};
  assert_int_equal(net_grpc_deframer_feed(&d, ok, sizeof(ok), &used, &msg, &mlen), 0);
  assert_non_null(msg);
  assert_int_equal(mlen, 1);
  net_grpc_deframer_free(&d);
}

static void test_deframer_compressed(void **state) {
  const uint8_t in[] = {1, 0, 0, 0, 1, 'a'};
  size_t used;
  const uint8_t *msg;
  size_t mlen;
  net_grpc_deframer d;
  net_grpc_deframer_init(&d, 0, 0);
  assert_int_equal(net_grpc_deframer_feed(&d, in, sizeof(in), &used, &msg, &mlen),
                   ORR_EUNSUPPORTED);
  assert_int_equal(d.status, NET_GRPC_INTERNAL);
  net_grpc_deframer_free(&d);
  net_grpc_deframer_init(&d, 0, 1);
  assert_int_equal(net_grpc_deframer_feed(&d, in, sizeof(in), &used, &msg, &mlen),
                   ORR_EUNSUPPORTED);
  assert_int_equal(d.status, NET_GRPC_UNIMPLEMENTED);
  net_grpc_deframer_free(&d);
  const uint8_t bad[] = {7, 0, 0, 0, 0};
  net_grpc_deframer_init(&d, 0, 0);
  assert_int_equal(net_grpc_deframer_feed(&d, bad, sizeof(bad), &used, &msg, &mlen),
                   ORR_ECORRUPT);
  assert_int_equal(d.status, NET_GRPC_INTERNAL);
  net_grpc_deframer_free(&d);
}

static void test_deframer_partial(void **state) {
  net_grpc_deframer d;
  net_grpc_deframer_init(&d, 0, 0);
  const uint8_t in[] = {0, 0, 0, 0, 3, 'a', 'b'};
  size_t used;
  const uint8_t *msg;
  size_t mlen;
  assert_int_equal(net_grpc_deframer_feed(&d, in, sizeof(in), &used, &msg, &mlen), 0);
  assert_null(msg);
  assert_int_equal(used, sizeof(in));
  assert_false(net_grpc_deframer_idle(&d));
  assert_int_equal(net_grpc_deframer_feed(&d, (const uint8_t *)"cde", 3, &used, &msg, &mlen), 0);
  assert_int_equal(used, 1);
  assert_int_equal(mlen, 3);
  assert_memory_equal(msg, "abc", 3);
  assert_true(net_grpc_deframer_idle(&d));
  net_grpc_deframer_free(&d);
}

static int64_t tmo(const char *s) {
  int64_t ns = -42;
  int rc = net_grpc_timeout_parse(s, strlen(s), &ns);
  return rc ? -1 : ns;
}

static void test_timeout(void **state) {
  assert_int_equal(tmo("1H"), 3600LL * 1000000000LL);
  assert_int_equal(tmo("2M"), 120LL * 1000000000LL);
  assert_int_equal(tmo("5S"), 5000000000LL);
  assert_int_equal(tmo("100m"), 100000000LL);
  assert_int_equal(tmo("7u"), 7000LL);
  assert_int_equal(tmo("99999999n"), 99999999LL);
  assert_int_equal(tmo("0m"), 0);
  assert_int_equal(tmo("99999999H"), INT64_MAX); /* saturates */
  assert_int_equal(tmo("123456789n"), -1); /* 9 digits */
  assert_int_equal(tmo("m"), -1);
  assert_int_equal(tmo("10"), -1);
  assert_int_equal(tmo("10x"), -1);
  assert_int_equal(tmo("1 S"), -1);
  assert_int_equal(tmo("-1S"), -1);
  assert_int_equal(tmo(""), -1);
  char b[16];
  assert_string_equal(net_grpc_timeout_format(1, b, sizeof(b)), "1n");
  assert_string_equal(net_grpc_timeout_format(99999999, b, sizeof(b)), "99999999n");
  assert_string_equal(net_grpc_timeout_format(100000000, b, sizeof(b)), "100000u");
  assert_string_equal(net_grpc_timeout_format(100000001, b, sizeof(b)), "100001u");
  assert_string_equal(net_grpc_timeout_format(5000LL * 1000000, b, sizeof(b)), "5000000u");
  assert_string_equal(net_grpc_timeout_format(3600LL * 1000000000LL * 1000, b, sizeof(b)),
                      "3600000S");
  assert_string_equal(net_grpc_timeout_format(INT64_MAX, b, sizeof(b)), "2562048H");
  /* Round trip never shortens a deadline. */
  for (int64_t ns = 1; ns < INT64_MAX / 7; ns = ns * 7 + 3) {
    net_grpc_timeout_format(ns, b, sizeof(b));
    assert_true(strlen(b) <= 9);
    assert_true(tmo(b) >= ns);
  }
}

static void enc(const char *in, const char *want) {
  orr_buf b = {0};
  assert_int_equal(net_grpc_message_encode(&b, in, strlen(in)), 0);
  assert_string_equal(b.data, want);
  orr_buf d = {0};
  assert_int_equal(net_grpc_message_decode(&d, b.data, b.len), 0);
  assert_string_equal(d.data, in);
  orr_buf_free(&b);
  orr_buf_free(&d);
}

static void test_message_encoding(void **state) {
  enc("plain text", "plain text");
  enc("100% sure", "100%25 sure");
  enc("line\nbreak", "line%0Abreak");
  enc("caf\xc3\xa9 \xe2\x9c\x93", "caf%C3%A9 %E2%9C%93");
  enc("", "");
  /* Malformed escapes are kept as they are. */
  orr_buf d = {0};
  net_grpc_message_decode(&d, "a%zzb%4", 7);
  assert_string_equal(d.data, "a%zzb%4");
  orr_buf_reset(&d);
  net_grpc_message_decode(&d, "%e2%9c%93", 9);
  assert_string_equal(d.data, "\xe2\x9c\x93");
  orr_buf_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_names),       cmocka_unit_test(test_frame_append),
      cmocka_unit_test(test_deframer_splits),    cmocka_unit_test(test_deframer_too_large),
      cmocka_unit_test(test_deframer_compressed), cmocka_unit_test(test_deframer_partial),
      cmocka_unit_test(test_timeout),            cmocka_unit_test(test_message_encoding),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
