// h2raw.js: a raw HTTP/2 gRPC client for fault tests — it writes frames
// itself (preface, SETTINGS, HEADERS with literal HPACK, one DATA frame per
// call) and can stop reading its socket entirely, as a hostile or stuck
// client does: no WINDOW_UPDATE, no ACK, nothing read from the kernel.
'use strict';
const net = require('net');

function frame(type, flags, stream, payload) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

// HPACK "literal header field without indexing — new name" (RFC 7541
// 6.2.2), lengths below 127.
function hpackLiteral(name, value) {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  if (n.length >= 127 || v.length >= 127) throw new Error('header too long for this encoder');
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

function varint(n) {
  const out = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}
function pbBytes(field, buf) { return Buffer.concat([varint((field << 3) | 2), varint(buf.length), buf]); }
function pbInt(field, n) { return Buffer.concat([varint(field << 3), varint(n)]); }

// thanos.SeriesRequest{min_time, max_time, matchers: [{EQ name value}...]}
function seriesRequest(minT, maxT, matchers) {
  const parts = [pbInt(1, minT), pbInt(2, maxT)];
  for (const [name, value] of matchers)
    parts.push(pbBytes(3, Buffer.concat([pbBytes(2, Buffer.from(name)), pbBytes(3, Buffer.from(value))])));
  return Buffer.concat(parts);
}

function grpcMessage(pb) {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(pb.length, 1);
  return Buffer.concat([h, pb]);
}

// Connects to 127.0.0.1:|port| (from |localAddress| when given) and sends the
// preface and an empty SETTINGS. Resolves with the socket once connected.
function connect(port, localAddress) {
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port };
    if (localAddress) opts.localAddress = localAddress;
    const s = net.connect(opts, () => {
      s.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      s.write(frame(4, 0, 0, Buffer.alloc(0)));
      resolve(s);
    });
    s.once('error', reject);
  });
}

// Starts one unary-request call on stream |id| (odd, increasing).
function startCall(sock, id, port, path, msg) {
  const hdr = Buffer.concat([
    hpackLiteral(':method', 'POST'), hpackLiteral(':scheme', 'http'),
    hpackLiteral(':path', path), hpackLiteral(':authority', `127.0.0.1:${port}`),
    hpackLiteral('content-type', 'application/grpc'), hpackLiteral('te', 'trailers'),
  ]);
  sock.write(frame(1, 0x4, id, hdr)); // END_HEADERS
  sock.write(frame(0, 0x1, id, msg)); // END_STREAM
}

module.exports = { connect, startCall, seriesRequest, grpcMessage, frame };
