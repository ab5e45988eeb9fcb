/* grpc_frame.c: the bytes of gRPC over HTTP/2 without any I/O — the 5-byte
 * message prefix and an incremental deframer, grpc-timeout values,
 * grpc-message percent-encoding, and the status code table. */
#include <string.h>

#include "net.h"

const char *net_grpc_status_name(int code) {
  switch (code) {
#define NET__GRPC_STATUS_CASE(name, v) \
  case v: return #name;
    NET_GRPC_STATUS_MAP(NET__GRPC_STATUS_CASE)
#undef NET__GRPC_STATUS_CASE
  }
  return "UNKNOWN";
}

int net_grpc_status_from_err(int err) {
  switch (err) {
  case 0: return NET_GRPC_OK;
  case ORR_EINVAL: return NET_GRPC_INVALID_ARGUMENT;
  case ORR_ENOTFOUND: return NET_GRPC_NOT_FOUND;
  case ORR_EEXISTS: return NET_GRPC_ALREADY_EXISTS;
  case ORR_ERANGE: return NET_GRPC_OUT_OF_RANGE;
  case ORR_ETIMEOUT: return NET_GRPC_DEADLINE_EXCEEDED;
  case ORR_ECANCELED: return NET_GRPC_CANCELLED;
  case ORR_ELIMIT: return NET_GRPC_RESOURCE_EXHAUSTED;
  case ORR_ENOMEM: return NET_GRPC_RESOURCE_EXHAUSTED;
  case ORR_EUNSUPPORTED: return NET_GRPC_UNIMPLEMENTED;
  case ORR_EUNAVAILABLE: return NET_GRPC_UNAVAILABLE;
  case ORR_ECLOSED: return NET_GRPC_UNAVAILABLE;
  case ORR_ECORRUPT: return NET_GRPC_DATA_LOSS;
  case ORR_EIO: return NET_GRPC_UNAVAILABLE;
  default: return err < 0 ? NET_GRPC_INTERNAL : NET_GRPC_UNKNOWN;
  }
}

/* ---------------------------------------------------------------- framing */

int net_grpc_frame_append(orr_buf *out, const void *msg, size_t len) {
  if (len > UINT32_MAX) return ORR_ERANGE;
  int rc = orr_buf_reserve(out, NET_GRPC_PREFIX_LEN + len);
  if (rc) return rc;
  orr_buf_putc(out, 0);
  orr_buf_put_be32(out, (uint32_t)len);
  return orr_buf_append(out, msg, len);
}

void net_grpc_deframer_init(net_grpc_deframer *d, size_t max_msg, int encoding_set) {
  memset(d, 0, sizeof(*d));
  d->max_msg = max_msg ? max_msg : NET_GRPC_DEFAULT_MAX_RECV;
  d->encoding_set = encoding_set;
}

void net_grpc_deframer_free(net_grpc_deframer *d) { orr_buf_free(&d->msg); }

int net_grpc_deframer_idle(const net_grpc_deframer *d) { return d->prefix_len == 0; }

static int deframer_fail(net_grpc_deframer *d, int status, const char *msg, int err) {
  d->status = status;
  d->errmsg = msg;
  return err;
}

static int deframer_err(const net_grpc_deframer *d) {
  switch (d->status) {
  case NET_GRPC_RESOURCE_EXHAUSTED: return ORR_ELIMIT;
  case NET_GRPC_UNIMPLEMENTED: return ORR_EUNSUPPORTED;
  default: return ORR_ECORRUPT;
  }
}

/* Checks the prefix once it is complete; sets |need|. */
static int deframer_prefix(net_grpc_deframer *d) {
  uint8_t flag = d->prefix[0];
  uint32_t len = (uint32_t)d->prefix[1] << 24 | (uint32_t)d->prefix[2] << 16 |
                 (uint32_t)d->prefix[3] << 8 | d->prefix[4];
  if (flag > 1)
    return deframer_fail(d, NET_GRPC_INTERNAL, "grpc: invalid message flag", ORR_ECORRUPT);
  if (flag == 1) {
    /* As gRPC: a compressed flag without grpc-encoding is a protocol error;
     * with an encoding we do not implement it is UNIMPLEMENTED. */
    if (!d->encoding_set)
      return deframer_fail(d, NET_GRPC_INTERNAL,
                           "grpc: compressed flag set with identity or empty encoding",
                           ORR_EUNSUPPORTED);
    return deframer_fail(d, NET_GRPC_UNIMPLEMENTED, "grpc: compression is not supported",
                         ORR_EUNSUPPORTED);
  }
  if (len > d->max_msg)
    return deframer_fail(d, NET_GRPC_RESOURCE_EXHAUSTED,
                         "grpc: received message larger than max", ORR_ELIMIT);
  d->need = len;
  return 0;
}

int net_grpc_deframer_feed(net_grpc_deframer *d, const uint8_t *p, size_t n, size_t *used,
                           const uint8_t **msg, size_t *msg_len) {
  size_t off = 0;
  int rc;
  *msg = NULL;
  *msg_len = 0;
  *used = 0;
  if (d->status) return deframer_err(d);
  if (d->prefix_len == 0 && d->msg.len == 0) {
    /* Fast path: a whole message in the input is handed out in place. */
    if (n >= NET_GRPC_PREFIX_LEN) {
      memcpy(d->prefix, p, NET_GRPC_PREFIX_LEN);
      if ((rc = deframer_prefix(d))) return rc;
      if (n - NET_GRPC_PREFIX_LEN >= d->need) {
        *msg = p + NET_GRPC_PREFIX_LEN;
        *msg_len = d->need;
        *used = NET_GRPC_PREFIX_LEN + d->need;
        d->need = 0;
        return 0;
      }
      d->prefix_len = NET_GRPC_PREFIX_LEN;
      off = NET_GRPC_PREFIX_LEN;
    }
  }
  while (d->prefix_len < NET_GRPC_PREFIX_LEN && off < n) {
    d->prefix[d->prefix_len++] = p[off++];
    if (d->prefix_len == NET_GRPC_PREFIX_LEN && (rc = deframer_prefix(d))) {
      *used = off;
      return rc;
    }
  }
  if (d->prefix_len < NET_GRPC_PREFIX_LEN) {
    *used = off;
    return 0;
  }
  size_t want = d->need - d->msg.len;
  size_t take = n - off < want ? n - off : want;
  if (take > 0 && orr_buf_append(&d->msg, p + off, take)) {
    d->msg.oom = 0;
    *used = off;
    return ORR_ENOMEM;
  }
  off += take;
  *used = off;
  if (d->msg.len == d->need) {
    /* Complete: hand it out and start over. The buffer keeps its content
     * until the next call, which resets it first. */
    *msg = d->msg.len ? (const uint8_t *)d->msg.data : (const uint8_t *)"";
    *msg_len = d->msg.len;
    d->prefix_len = 0;
    d->need = 0;
    d->msg.len = 0; /* data stays readable until the next append */
  }
  return 0;
}

/* ---------------------------------------------------------------- headers */

int net_grpc_timeout_parse(const char *s, size_t n, int64_t *ns) {
  if (n < 2 || n > 9) return ORR_EINVAL;
  int64_t v = 0;
  for (size_t i = 0; i + 1 < n; i++) {
    if (s[i] < '0' || s[i] > '9') return ORR_EINVAL;
    v = v * 10 + (s[i] - '0');
  }
  int64_t mul;
  switch (s[n - 1]) {
  case 'H': mul = 3600LL * 1000000000LL; break;
  case 'M': mul = 60LL * 1000000000LL; break;
  case 'S': mul = 1000000000LL; break;
  case 'm': mul = 1000000LL; break;
  case 'u': mul = 1000LL; break;
  case 'n': mul = 1; break;
  default: return ORR_EINVAL;
  }
  *ns = v > INT64_MAX / mul ? INT64_MAX : v * mul;
  return 0;
}

char *net_grpc_timeout_format(int64_t ns, char *out, size_t outlen) {
  static const struct {
    char unit;
    int64_t ns;
  } units[] = {{'n', 1},
               {'u', 1000LL},
               {'m', 1000000LL},
               {'S', 1000000000LL},
               {'M', 60LL * 1000000000LL},
               {'H', 3600LL * 1000000000LL}};
  if (ns < 1) ns = 1;
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    int64_t v = ns / units[i].ns + (ns % units[i].ns != 0);
    if (v <= 99999999 || i + 1 == sizeof(units) / sizeof(units[0])) {
      if (v > 99999999) v = 99999999;
      /* By hand: snprintf was ~1 µs of every call a gateway makes, once
       * per endpoint and query. Truncated to |outlen| as snprintf would. */
      char tmp[16];
      size_t n = 0;
      do tmp[n++] = (char)('0' + v % 10);
      while ((v /= 10) > 0);
      char buf[16];
      size_t k = 0;
      while (n) buf[k++] = tmp[--n];
      buf[k++] = units[i].unit;
      buf[k] = '\0';
      if (outlen) {
        size_t c = k < outlen ? k : outlen - 1;
        memcpy(out, buf, c);
        out[c] = '\0';
      }
      return out;
    }
  }
  return out; /* not reached */
}

int net_grpc_message_encode(orr_buf *out, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      orr_buf_putc(out, (char)c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      orr_buf_append(out, e, 3);
    }
  }
  if (n == 0) orr_buf_append(out, "", 0);
  return out->oom ? ORR_ENOMEM : 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int net_grpc_message_decode(orr_buf *out, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
        (lo = hexval(s[i + 2])) >= 0) {
      orr_buf_putc(out, (char)(hi << 4 | lo));
      i += 2;
    } else {
      orr_buf_putc(out, s[i]);
    }
  }
  if (n == 0) orr_buf_append(out, "", 0);
  return out->oom ? ORR_ENOMEM : 0;
}
