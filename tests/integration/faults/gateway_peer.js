// gateway_peer.js: hostile (and one honest) StoreAPI peers for the gateway
// fault suite, on @grpc/grpc-js with our protos (lib/storeapi/proto). Each
// mode named on the command line gets its own server on a free port; once
// all listen, one line "READY {mode: address, ...}" goes to stdout. Runs
// until killed.
//
// Modes (external labels {peer="<mode>"} each):
//   good[:N]   N series fault_metric{i="k"} (default 3), one 3-sample chunk each
//   nochunks   series without chunks, forever
//   repeat     the same series forever, each message one 1-sample chunk
//   corrupt    a series whose XOR chunk is garbage
//   badutf8    a label value that is not UTF-8 (a lone surrogate)
//   nul        a label value holding a NUL byte
//   badname    an invalid label name ("0bad") and an empty one
//   mismatch   fake_metric (matching nothing asked) besides a right series
//   backwards  a chunk whose timestamps go backwards
//   http500    not gRPC at all: an HTTP/2 server answering 500 with HTML
// Usage: node gateway_peer.js <proto dir> <tests/node dir> mode...
'use strict';
const path = require('path');
const http2 = require('http2');
const { createRequire } = require('module');

const [protoDir, nodeDir, ...modes] = process.argv.slice(2);
const nodeRequire = createRequire(path.join(nodeDir, 'package.json'));
const grpc = nodeRequire('@grpc/grpc-js');
const protoLoader = nodeRequire('@grpc/proto-loader');
const def = protoLoader.loadSync(['rpc.proto', 'info.proto'], {
  keepCase: true, longs: Number, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const pkg = grpc.loadPackageDefinition(def);

// ---------------------------------------------------------------- XOR chunks
// Prometheus's XOR encoding, for samples of one constant value: 2-byte
// count, varint t0 and the value's 64 bits, uvarint delta, then
// delta-of-delta buckets; an unchanged value is a single 0 bit.
class Bits {
  constructor() { this.b = []; this.n = 0; }
  bit(x) {
    if (this.n % 8 === 0) this.b.push(0);
    if (x) this.b[this.b.length - 1] |= 0x80 >> (this.n % 8);
    this.n++;
  }
  bits(v, k) { for (let i = k - 1; i >= 0; i--) this.bit(Number((v >> BigInt(i)) & 1n)); }
  byte(x) { this.bits(BigInt(x), 8); }
  uvarint(v) {
    v = BigInt(v);
    while (v >= 0x80n) { this.byte(Number((v & 0x7fn) | 0x80n)); v >>= 7n; }
    this.byte(Number(v));
  }
}
function xorChunk(ts, value = 1) {
  const w = new Bits();
  w.bits(BigInt(ts.length), 16);
  let prevT = 0;
  let prevDelta = 0;
  ts.forEach((t, i) => {
    if (i === 0) {
      const z = (BigInt(t) << 1n) ^ (BigInt(t) < 0n ? -1n : 0n); // zigzag varint
      w.uvarint(BigInt.asUintN(64, z));
      const f = Buffer.alloc(8);
      f.writeDoubleBE(value);
      w.bits(f.readBigUInt64BE(), 64);
    } else if (i === 1) {
      prevDelta = t - prevT;
      w.uvarint(BigInt.asUintN(64, BigInt(prevDelta)));
      w.bit(0);
    } else {
      const delta = t - prevT;
      const dod = delta - prevDelta;
      prevDelta = delta;
      const fits = (k) => -((1 << (k - 1)) - 1) <= dod && dod <= 1 << (k - 1);
      if (dod === 0) w.bit(0);
      else if (fits(14)) { w.bits(0b10n, 2); w.bits(BigInt.asUintN(14, BigInt(dod)), 14); }
      else if (fits(17)) { w.bits(0b110n, 3); w.bits(BigInt.asUintN(17, BigInt(dod)), 17); }
      else if (fits(20)) { w.bits(0b1110n, 4); w.bits(BigInt.asUintN(20, BigInt(dod)), 20); }
      else { w.bits(0b1111n, 4); w.bits(BigInt.asUintN(64, BigInt(dod)), 64); }
      w.bit(0);
    }
    prevT = t;
  });
  return Buffer.from(w.b);
}
function chunkOf(ts, value) {
  return { min_time: Math.min(...ts), max_time: Math.max(...ts),
    raw: { type: 'XOR', data: xorChunk(ts, value) } };
}

// ---------------------------------------------------------------- matching
// A regex that is an alternation of (escaped) literals as a Set, as
// Prometheus and Thanos match it; else a RegExp. Cached per matcher value.
const compiled = new Map();
function compile(re) {
  if (compiled.has(re)) return compiled.get(re);
  let c;
  const lits = [];
  let cur = '';
  let plain = true;
  for (let i = 0; i < re.length && plain; i++) {
    const ch = re[i];
    if (ch === '\\' && i + 1 < re.length && /[^A-Za-z0-9]/.test(re[i + 1])) cur += re[++i];
    else if (ch === '|') { lits.push(cur); cur = ''; }
    else if ('.+*?()[]{}^$\\'.includes(ch)) plain = false;
    else cur += ch;
  }
  lits.push(cur);
  if (plain) { const set = new Set(lits); c = (v) => set.has(v); }
  else { const r = new RegExp(`^(?:${re})$`); c = (v) => r.test(v); }
  if (compiled.size > 1000) compiled.clear();
  compiled.set(re, c);
  return c;
}
function matches(m, v) {
  const t = m.type;
  if (t === 'EQ' || t === 0) return v === m.value;
  if (t === 'NEQ' || t === 1) return v !== m.value;
  const f = compile(m.value);
  return (t === 'RE' || t === 2) ? f(v) : !f(v);
}
function labelsOf(obj) {
  return Object.keys(obj).sort().map((k) => ({ name: k, value: obj[k] }));
}
// The equality matchers of a request as labels: a series "like" what was asked.
function asked(req) {
  const o = {};
  for (const m of req.matchers) if (m.type === 'EQ' || m.type === 0) o[m.name] = m.value;
  if (!o.__name__) o.__name__ = 'fault_metric';
  return o;
}

// Writes |next()| results until it returns null, honouring flow control,
// stopping when the client cancels.
function stream(call, next) {
  let stopped = false;
  call.on('cancelled', () => { stopped = true; });
  call.on('error', () => { stopped = true; });
  const more = () => {
    for (;;) {
      if (stopped) return;
      const m = next();
      if (m === null) { call.end(); return; }
      if (!call.write(m)) { call.once('drain', more); return; }
    }
  };
  more();
}

// ---------------------------------------------------------------- the peers
function seriesHandler(mode, arg, ext) {
  return (call) => {
    const req = call.request;
    // Samples 30, 20 and 10 s before each request: always within the
    // lookback of an instant query, however long the suite ran.
    const now = Date.now();
    const T3 = [now - 30000, now - 20000, now - 10000];
    const like = { ...asked(req), ...ext };
    const one = (labels, chunks) => ({ series: { labels: labelsOf(labels), chunks } });
    const list = (arr) => { let i = 0; stream(call, () => (i < arr.length ? arr[i++] : null)); };
    switch (mode) {
      case 'good': {
        const n = arg ? Number(arg) : 3;
        const chunk = [chunkOf(T3, 1)];
        const out = [];
        for (let k = 0; k < n; k++) {
          const l = { __name__: 'fault_metric', i: String(k), ...ext };
          if (req.matchers.every((m) => matches(m, l[m.name] || ''))) out.push(l);
        }
        out.sort((a, b) => (a.i < b.i ? -1 : a.i > b.i ? 1 : 0));
        return list(out.map((l) => one(l, req.skip_chunks ? [] : chunk)));
      }
      case 'nochunks': {
        let k = 0;
        return stream(call, () => one({ ...like, junk: String(k++).padStart(12, '0') }, []));
      }
      case 'repeat': {
        let t = now - 3600000;
        return stream(call, () => one(like, [chunkOf([t++], 1)]));
      }
      case 'corrupt': {
        const bad = { min_time: T3[0], max_time: T3[2],
          raw: { type: 'XOR', data: Buffer.from('0032deadbeefdeadbeef', 'hex') } };
        return list([one({ ...like, i: 'c' }, [bad])]);
      }
      case 'badutf8':
        return list([one({ ...like, i: 'x\uD800y' }, [chunkOf(T3, 1)])]);
      case 'nul':
        return list([one({ ...like, i: 'a\u0000b' }, [chunkOf(T3, 1)])]);
      case 'badname': {
        const s1 = one({ ...like, '0bad': 'v' }, [chunkOf(T3, 1)]);
        const s2 = one({ ...like, '': 'v' }, [chunkOf(T3, 1)]);
        return list([s1, s2]);
      }
      case 'mismatch':
        return list([one({ ...ext, __name__: 'fake_metric', i: 'm' }, [chunkOf(T3, 7)]),
          one({ ...like, i: 'm' }, [chunkOf(T3, 1)])]);
      case 'backwards':
        return list([one({ ...like, i: 'b' }, [chunkOf([T3[0], T3[2], T3[1]], 1)])]);
      default:
        return call.end();
    }
  };
}

function grpcPeer(modeArg) {
  const [mode, arg] = modeArg.split(':');
  const ext = { peer: mode };
  const server = new grpc.Server({ 'grpc.max_send_message_length': 64 << 20 });
  server.addService(pkg.thanos.info.Info.service, {
    Info: (call, cb) => cb(null, {
      label_sets: [{ labels: labelsOf(ext) }], ComponentType: 'sidecar',
      store: { min_time: 0, max_time: 8640000000000000, supports_without_replica_labels: true },
    }),
  });
  server.addService(pkg.thanos.Store.service, {
    Series: seriesHandler(mode, arg, ext),
    LabelNames: (call, cb) => cb(null, { names: ['__name__', 'i', 'peer'], warnings: [] }),
    LabelValues: (call, cb) => cb(null, { values: [], warnings: [] }),
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve(`127.0.0.1:${port}`);
    });
  });
}

function http500Peer() {
  const server = http2.createServer();
  server.on('stream', (s) => {
    s.respond({ ':status': 500, 'content-type': 'text/html' });
    s.end('<html><body>500 Internal Server Error</body></html>');
  });
  server.on('error', () => {});
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${server.address().port}`));
  });
}

(async () => {
  const addrs = {};
  for (const m of modes) {
    addrs[m.split(':')[0]] = m === 'http500' ? await http500Peer() : await grpcPeer(m);
  }
  console.log(`READY ${JSON.stringify(addrs)}`);
})().catch((e) => { console.error(e); process.exit(1); });
