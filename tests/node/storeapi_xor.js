// storeapi_xor.js: a small decoder of Prometheus XOR chunks (Gorilla
// encoding) so the integration tests can check the samples the sidecar
// passes through against Prometheus's own query API.
'use strict';

class BitReader {
  constructor(buf) { this.buf = buf; this.pos = 0; } // pos in bits
  bit() {
    const b = this.buf[this.pos >> 3];
    if (b === undefined) throw new Error('xor: read past end of chunk');
    const v = (b >> (7 - (this.pos & 7))) & 1;
    this.pos++;
    return v;
  }
  bits(n) { // returns BigInt
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 1n) | BigInt(this.bit());
    return v;
  }
}

function readUvarint(buf, off) {
  let x = 0n, s = 0n, i = off;
  for (;;) {
    const b = buf[i++];
    x |= BigInt(b & 0x7f) << s;
    if (b < 0x80) return [x, i];
    s += 7n;
  }
}
function readVarint(buf, off) {
  const [ux, i] = readUvarint(buf, off);
  const x = (ux & 1n) ? -((ux >> 1n) + 1n) : (ux >> 1n);
  return [x, i];
}

const f64 = new DataView(new ArrayBuffer(8));
function bitsToFloat(b) { f64.setBigUint64(0, BigInt.asUintN(64, b)); return f64.getFloat64(0); }

// Returns [[tsMs(Number), value(Number)], ...].
function decodeXor(buf) {
  const n = buf.readUInt16BE(0);
  const out = [];
  if (n === 0) return out;
  let off = 2;
  let t, tDelta = 0n, vbits, leading = 0, trailing = 0;
  let r;
  [t, off] = readVarint(buf, off);
  vbits = buf.readBigUInt64BE(off);
  off += 8;
  out.push([Number(t), bitsToFloat(vbits)]);
  if (n === 1) return out;
  [tDelta, off] = readUvarint(buf, off);
  t += tDelta;
  r = new BitReader(buf);
  r.pos = off * 8;
  const readValue = () => {
    if (r.bit() === 0) return;
    if (r.bit() === 1) {
      leading = Number(r.bits(5));
      let sig = Number(r.bits(6));
      if (sig === 0) sig = 64;
      trailing = 64 - leading - sig;
    }
    const sig = 64 - leading - trailing;
    vbits ^= r.bits(sig) << BigInt(trailing);
  };
  readValue();
  out.push([Number(t), bitsToFloat(vbits)]);
  for (let i = 2; i < n; i++) {
    let prefix = 0;
    while (prefix < 4 && r.bit() === 1) prefix++;
    let dod = 0n;
    const sz = [0, 14, 17, 20, 64][prefix];
    if (sz) {
      dod = r.bits(sz);
      if (sz < 64 && dod > (1n << BigInt(sz - 1))) dod -= 1n << BigInt(sz);
      if (sz === 64) dod = BigInt.asIntN(64, dod);
    }
    tDelta += dod;
    t += tDelta;
    readValue();
    out.push([Number(t), bitsToFloat(vbits)]);
  }
  return out;
}

module.exports = { decodeXor };
