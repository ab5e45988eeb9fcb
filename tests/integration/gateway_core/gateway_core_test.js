// gateway_core_test.js: `orrery gateway` over fake StoreAPI endpoints served
// here with @grpc/grpc-js — an HA pair (replica a has a gap, replica b is
// offset by 5 s), and an endpoint that answers Info but never Series — and
// queried through the gateway's own StoreAPI with a grpc-js client.
// Usage: node gateway_core_test.js <orrery> <gw_xor_encode> <proto dir> <tests/node dir>
'use strict';
const path = require('path');
const { execFileSync } = require('child_process');
const { createRequire } = require('module');

const [orrery, xorEncode, protoDir, nodeDir] = process.argv.slice(2);
const nodeRequire = createRequire(path.join(nodeDir, 'package.json'));
const { check, failed, freePort, startProcess, vmHwmKb } = nodeRequire('./grpc_common.js');
const NBIG = 20000;
const { decodeXor } = nodeRequire('./storeapi_xor.js');
let grpc, protoLoader;
try {
  grpc = nodeRequire('@grpc/grpc-js');
  protoLoader = nodeRequire('@grpc/proto-loader');
} catch (e) {
  console.error('SKIP: @grpc/grpc-js not installed');
  process.exit(77);
}
const def = protoLoader.loadSync(['rpc.proto', 'info.proto'], {
  keepCase: true, longs: Number, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const pkg = grpc.loadPackageDefinition(def);


function chunk(samples) {
  const args = samples.map(([t, v]) => `${t}:${v}`);
  return Buffer.from(execFileSync(xorEncode, args).toString().trim(), 'hex');
}

// --- the fake endpoints -----------------------------------------------------
// Replica a: every 10 s over [0, 300 s] except (100 s, 200 s); value t/1000.
// Replica b: every 10 s from 5 s to 305 s; value 1000 + t/1000.
const samplesA = [];
for (let t = 0; t <= 300000; t += 10000) if (t <= 100000 || t >= 200000) samplesA.push([t, t / 1000]);
const samplesB = [];
for (let t = 5000; t <= 305000; t += 10000) samplesB.push([t, 1000 + t / 1000]);

function labelsOf(obj) {
  return Object.keys(obj).sort().map((k) => ({ name: k, value: obj[k] }));
}

function fakeStore(ext, series, opts = {}) {
  const server = new grpc.Server();
  server.addService(pkg.thanos.info.Info.service, {
    Info: (call, cb) => cb(null, {
      label_sets: [{ labels: labelsOf(ext) }], ComponentType: 'sidecar',
      store: { min_time: 0, max_time: 305000, supports_without_replica_labels: !opts.keepReplica },
    }),
  });
  server.addService(pkg.thanos.Store.service, {
    Series: (call) => {
      if (opts.hang) return; // accepts the call, never answers
      const drop = new Set(opts.keepReplica ? [] : call.request.without_replica_labels);
      const out = [];
      const eq = call.request.matchers.filter((m) => m.type === 'EQ' || m.type === 0);
      for (const s of series) {
        const all = { ...s.labels, ...ext };
        if (eq.some((m) => (all[m.name] || '') !== m.value)) continue;
        for (const d of drop) delete all[d];
        out.push({ labels: labelsOf(all), chunks: s.chunks });
      }
      if (!opts.presorted) {
        out.sort((x, y) => JSON.stringify(x.labels) < JSON.stringify(y.labels) ? -1 : 1);
      }
      // Honour the HTTP/2 flow control: write on when the stream drains.
      let i = 0;
      const more = () => {
        while (i < out.length) {
          if (!call.write({ series: out[i++] })) return call.once('drain', more);
        }
        call.end();
      };
      more();
    },
    LabelNames: (call, cb) => {
      if (opts.hang) return;
      const names = new Set(['__name__', 'job', ...Object.keys(ext)]);
      for (const d of call.request.without_replica_labels) names.delete(d);
      cb(null, { names: [...names].sort(), warnings: [] });
    },
    LabelValues: (call, cb) => {
      if (opts.hang) return;
      const v = ext[call.request.label];
      cb(null, { values: v ? [v] : (call.request.label === 'job' ? ['x'] : []), warnings: [] });
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve({ server, addr: `127.0.0.1:${port}` });
    });
  });
}

function mkSeries(samples) {
  return [{
    labels: { __name__: 'up', job: 'x' },
    chunks: [{ min_time: samples[0][0], max_time: samples[samples.length - 1][0],
      raw: { type: 'XOR', data: chunk(samples) } }],
  }];
}

// --- the gateway ------------------------------------------------------------
async function startGateway(endpoints, respTimeout, extra = []) {
  const grpcPort = await freePort();
  const args = ['gateway', '--http-address=127.0.0.1:0', `--grpc-address=127.0.0.1:${grpcPort}`,
    '--query.replica-label=replica', `--store.response-timeout=${respTimeout}`, '--query.timeout=60s',
    ...endpoints.map((e) => `--endpoint=${e}`), ...extra];
  const p = startProcess(orrery, args);
  await p.waitLine('stderr', /listening for StoreAPI gRPC/, 10000);
  const addr = `127.0.0.1:${grpcPort}`;
  return {
    proc: p, addr,
    store: new pkg.thanos.Store(addr, grpc.credentials.createInsecure()),
    info: new pkg.thanos.info.Info(addr, grpc.credentials.createInsecure()),
  };
}

function info(gw) {
  return new Promise((resolve, reject) => gw.info.Info({}, (e, r) => (e ? reject(e) : resolve(r))));
}

// Waits until the gateway's Info lists |n| label sets (its endpoints answered).
async function waitEndpoints(gw, n, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const r = await info(gw).catch(() => null);
    if (r && r.label_sets.length >= n) return r;
    if (Date.now() > end) throw new Error(`gateway ${gw.addr} did not see ${n} label sets`);
    await new Promise((res) => setTimeout(res, 100)); // polling the gateway's Info
  }
}

function series(gw, req, slowMs = 0) {
  return new Promise((resolve) => {
    const out = { series: [], warnings: [], error: null, ms: 0 };
    const t0 = Date.now();
    let slowed = false;
    const call = gw.store.Series({
      min_time: 0, max_time: 400000,
      matchers: [{ type: 'EQ', name: '__name__', value: 'up' }], ...req,
    });
    call.on('data', (r) => {
      if (slowMs && !slowed) {
        // A slow reader: the gateway must hold back, not buffer everything.
        slowed = true;
        call.pause();
        setTimeout(() => call.resume(), slowMs);
      }
      if (r.result === 'series') {
        const s = r.series;
        const labels = {};
        for (const l of s.labels) labels[l.name] = l.value;
        let samples = [];
        for (const c of s.chunks) samples = samples.concat(decodeXor(c.raw.data));
        out.series.push({ labels, samples });
      } else if (r.result === 'warning') {
        out.warnings.push(r.warning);
      }
    });
    call.on('error', (e) => { out.error = e; out.ms = Date.now() - t0; resolve(out); });
    call.on('end', () => { out.ms = Date.now() - t0; resolve(out); });
  });
}

function expectedDedup() {
  // Penalty dedup: a until its gap (0..100 s), then b from 125 s (b's 105
  // and 115 s fall inside the 20 s penalty), staying on b to the end.
  const out = samplesA.filter(([t]) => t <= 100000);
  for (const s of samplesB) if (s[0] >= 125000) out.push(s);
  return out;
}

function sameSamples(got, want) {
  if (got.length !== want.length) return false;
  for (let i = 0; i < got.length; i++) {
    if (got[i][0] !== want[i][0] || got[i][1] !== want[i][1]) return false;
  }
  return true;
}

async function main() {
  const a = await fakeStore({ cluster: 'c1', replica: 'a' }, mkSeries(samplesA));
  // b does not support without_replica_labels: the gateway buffers and
  // re-sorts its series after removing the replica label.
  const b = await fakeStore({ cluster: 'c1', replica: 'b' }, mkSeries(samplesB), { keepReplica: true });
  const hang = await fakeStore({ cluster: 'c2' }, [], { hang: true });
  // Many series from one endpoint (one shared 120-sample chunk each).
  const bigChunk = chunk(Array.from({ length: 120 }, (_, i) => [i * 15000, i]));
  const bigSeries = [];
  for (let i = 0; i < NBIG; i++) {
    bigSeries.push({ labels: { __name__: 'big', i: String(i).padStart(6, '0') },
      chunks: [{ min_time: 0, max_time: 119 * 15000, raw: { type: 'XOR', data: bigChunk } }] });
  }
  const big = await fakeStore({ cluster: 'c3' }, bigSeries, { presorted: true });
  // Downsampled data: aggregate chunks (count and sum, no raw) every 5 min.
  const dsT = [0, 300000, 600000];
  const dsChunk = { min_time: 0, max_time: 600000,
    count: { type: 'XOR', data: chunk(dsT.map((t, i) => [t, 10 + i])) },
    sum: { type: 'XOR', data: chunk(dsT.map((t, i) => [t, 100 * (i + 1)])) } };
  const ds = await fakeStore({ cluster: 'c4' }, [{ labels: { __name__: 'ds', job: 'x' }, chunks: [dsChunk] }]);
  // Replica b is found through DNS (dns+localhost:port).
  const gw1 = await startGateway([a.addr, `dns+localhost:${b.addr.split(':')[1]}`, hang.addr, big.addr, ds.addr], '3s');
  let gw2 = null;
  try {
    const inf = await waitEndpoints(gw1, 5, 20000);
    const sets = inf.label_sets.map((s) => s.labels.map((l) => `${l.name}=${l.value}`).join(',')).sort();
    check(JSON.stringify(sets) === JSON.stringify(['cluster=c1,replica=a', 'cluster=c1,replica=b', 'cluster=c2', 'cluster=c3', 'cluster=c4']),
      'Info: union of the endpoints\' label sets', sets);
    check(inf.ComponentType === 'query', 'Info: component type query', inf.ComponentType);
    check(inf.store && inf.store.min_time === 0 && inf.store.max_time === 305000,
      'Info: time range over the endpoints', inf.store);

    // Deduplicated, with partial response: the hanging endpoint becomes a
    // warning after the 3 s response timeout (3 s, not 1 s: a loaded CI core once took over 1 s to deliver a healthy answer).
    let r = await series(gw1, { without_replica_labels: ['replica'] });
    check(!r.error, 'dedup series: no error', r.error && r.error.message);
    check(r.series.length === 1 && JSON.stringify(r.series[0].labels) ===
      JSON.stringify({ __name__: 'up', cluster: 'c1', job: 'x' }), 'dedup series: one series without replica label',
      r.series.map((s) => s.labels));
    const want = expectedDedup();
    check(r.series.length === 1 && sameSamples(r.series[0].samples, want),
      'dedup series: penalty dedup across the gap', r.series[0] && r.series[0].samples);
    check(r.warnings.length === 1 && r.warnings[0].includes(hang.addr) && /DeadlineExceeded/.test(r.warnings[0]),
      'partial response: a warning naming the silent endpoint', r.warnings);
    check(r.ms < 8000, 'partial response: returned within the response timeout', r.ms);
    const dedupSamples = r.series[0] ? r.series[0].samples : [];

    // Without partial response the silent endpoint fails the call.
    r = await series(gw1, { without_replica_labels: ['replica'], partial_response_strategy: 'ABORT',
      partial_response_disabled: true });
    check(r.error && r.error.details.includes(hang.addr), 'no partial response: error naming the endpoint',
      r.error && r.error.details);
    check(r.ms < 8000, 'no partial response: fails within the response timeout', r.ms);

    // Without without_replica_labels the replicas stay apart, complete.
    r = await series(gw1, {});
    check(r.series.length === 2 && r.series[0].labels.replica === 'a' && r.series[1].labels.replica === 'b',
      'no dedup: both replicas, labelled', r.series.slice(0, 5).map((s) => s.labels));
    check(r.series.length === 2 && sameSamples(r.series[0].samples, samplesA) &&
      sameSamples(r.series[1].samples, samplesB), 'no dedup: every sample of each replica');

    // Pruning: a matcher on an external label leaves the silent endpoint out.
    r = await series(gw1, { matchers: [{ type: 'EQ', name: '__name__', value: 'up' },
      { type: 'EQ', name: 'cluster', value: 'c1' }], without_replica_labels: ['replica'] });
    check(r.warnings.length === 0 && r.series.length === 1 && r.ms < 900,
      'pruning: cluster="c1" does not ask the c2 endpoint', { w: r.warnings, ms: r.ms });

    // Labels.
    const t0 = Date.now();
    const names = await new Promise((res) => gw1.store.LabelNames({ start: 0, end: 400000,
      without_replica_labels: ['replica'] }, (e, x) => res(e ? { error: e } : x)));
    const namesMs = Date.now() - t0;
    check(namesMs < 5000, 'LabelNames: the silent endpoint is cut at the response timeout', namesMs);
    check(names.names && JSON.stringify(names.names) === JSON.stringify(['__name__', 'cluster', 'job']),
      'LabelNames: union without the replica label', names);
    check(names.warnings && names.warnings.length === 1 && names.warnings[0].includes(hang.addr),
      'LabelNames: warning for the silent endpoint', names.warnings);
    const vals = await new Promise((res) => gw1.store.LabelValues({ label: 'replica', start: 0, end: 400000 },
      (e, x) => res(e ? { error: e } : x)));
    check(vals.values && JSON.stringify(vals.values) === JSON.stringify(['a', 'b']),
      'LabelValues: union', vals);

    // Downsampled chunks: the average (sum / count) by default, the count
    // aggregate under count_over_time.
    const dsReq = { max_time: 1000000, max_resolution_window: 300000,
      matchers: [{ type: 'EQ', name: '__name__', value: 'ds' }, { type: 'EQ', name: 'cluster', value: 'c4' }] };
    r = await series(gw1, dsReq);
    check(r.series.length === 1 && sameSamples(r.series[0].samples, [[0, 10], [300000, 200 / 11], [600000, 300 / 12]]),
      'downsampled: averages from sum and count', r.series[0] && r.series[0].samples);
    r = await series(gw1, { ...dsReq, query_hints: { func: { name: 'count_over_time' } } });
    check(r.series.length === 1 && sameSamples(r.series[0].samples, [[0, 10], [300000, 11], [600000, 12]]),
      'downsampled: the count aggregate for count_over_time', r.series[0] && r.series[0].samples);

    // Many series, read slowly: every one arrives, in order; the gateway's
    // peak RSS stays bounded.
    r = await series(gw1, { max_time: 2000000, matchers: [{ type: 'EQ', name: '__name__', value: 'big' }] }, 1500);
    let ordered = r.series.length === NBIG;
    for (let i = 1; ordered && i < r.series.length; i++) ordered = r.series[i - 1].labels.i < r.series[i].labels.i;
    check(!r.error && ordered && r.series.every((x) => x.samples.length === 120),
      `many series: ${NBIG} series of 120 samples, in label order`,
      { n: r.series.length, e: r.error && r.error.message, w: r.warnings, ms: r.ms });
    const hwm = vmHwmKb(gw1.proc.proc.pid);
    console.log(`gateway VmHWM after ${NBIG} series: ${hwm} kB; query took ${r.ms} ms`);
    check(hwm > 0 && hwm < 400 * 1024, 'many series: gateway peak RSS under 400 MiB', hwm);

    // Stacking: a gateway over gw1 gives the same deduplicated series. gw1
    // answers once its own response timeout cut the silent endpoint, so the
    // upper gateway waits longer.
    gw2 = await startGateway([gw1.addr], '5s');
    await waitEndpoints(gw2, 5, 20000);
    r = await series(gw2, { without_replica_labels: ['replica'] });
    check(r.series.length === 1 && sameSamples(r.series[0].samples, dedupSamples),
      'stacked gateway: same deduplicated series', r.series.slice(0, 5).map((s) => [s.labels, s.samples.length]));
    check(r.warnings.length === 1 && r.warnings[0].includes(hang.addr),
      'stacked gateway: the warning comes through', r.warnings);
  } finally {
    for (const g of [gw1, gw2]) {
      if (!g) continue;
      g.proc.proc.kill('SIGTERM');
      const ex = await g.proc.waitExit(10000).catch(() => null);
      check(ex && ex.code === 0, `gateway ${g.addr} exits cleanly on SIGTERM`, ex);
    }
    for (const s of [a, b, hang, big, ds]) s.server.forceShutdown();
  }
  if (failed()) {
    console.log(`${failed()} check(s) failed`);
    process.exit(1);
  }
  console.log('all checks passed');
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
