// storeapi_store.js: `orrery store` over a FILESYSTEM bucket of promtool's
// blocks and `orrery sidecar` beside a Prometheus 2.42 holding the same
// blocks, both called by @grpc/grpc-js through lib/storeapi/proto: Info,
// Series (the same series with the same chunks, byte for byte; skip_chunks;
// without_replica_labels; external-label matchers), LabelNames and
// LabelValues give the same answers. With FIXTURE (store_fixture): a bucket
// of raw blocks and of 1h-downsampled blocks over the same range; Series
// with max_resolution_window 1h and aggregates gives the downsampled blocks'
// aggregate chunks (count, sum, min, max of each hour, as written), with 0
// the raw chunks.
// Usage: node storeapi_store.js ORRERY PROMETHEUS PROMTOOL PROTO_DIR [FIXTURE]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { check, failed, freePort, startProcess, httpGet, waitReady } = require('./grpc_common.js');
const { decodeXor } = require('./storeapi_xor.js');

const [orrery, prometheusBin, promtool, protoDir, fixture] = process.argv.slice(2);

let grpc, protoLoader;
try {
  grpc = require('@grpc/grpc-js');
  protoLoader = require('@grpc/proto-loader');
} catch (e) {
  console.error('@grpc/grpc-js is not installed');
  process.exit(1);
}
const def = protoLoader.loadSync(['rpc.proto', 'info.proto'], {
  keepCase: true, longs: String, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const pkg = grpc.loadPackageDefinition(def);

function unary(client, method, req) {
  return new Promise((resolve) => {
    client[method](req, { deadline: Date.now() + 30000 }, (err, rep) => resolve({ err, rep }));
  });
}
function series(client, req) {
  return new Promise((resolve) => {
    const call = client.Series(req, { deadline: Date.now() + 120000 });
    const out = { series: [], warnings: [], err: null };
    call.on('data', (r) => {
      if (r.result === 'series') out.series.push(r.series);
      else if (r.result === 'warning') out.warnings.push(r.warning);
    });
    let pending = 2;
    const fin = () => { if (--pending === 0) setImmediate(() => resolve(out)); };
    call.on('error', (e) => { out.err = e; fin(); });
    call.on('end', fin);
    call.on('status', fin);
  });
}
const lsetStr = (ls) => ls.map((l) => `${l.name}=${l.value}`).join(',');
const M = (name, value, type = 'EQ') => ({ type, name, value });
// A series as text: labels, then each chunk's range and bytes.
const seriesStr = (s) => lsetStr(s.labels) + ' ' + s.chunks.map((c) =>
  `[${c.min_time},${c.max_time}:${c.raw ? Buffer.from(c.raw.data).toString('base64') : '-'}]`).join('');

// A series as its samples within [mint, maxt] (Prometheus's remote read
// re-encodes chunks cut by the range; the store passes chunks as stored).
const samplesStr = (s, mint, maxt) => lsetStr(s.labels) + ' ' + s.chunks.map((c) =>
  decodeXor(c.raw.data).filter(([t]) => t >= mint && t <= maxt).map(([t, v]) => `${t}:${v}`).join(' ')).join(' ');

function writeOpenMetrics(file, from, to) {
  let b = '# TYPE req counter\n';
  for (let s = 0; s < 5; s++) {
    for (let t = from; t <= to; t += 15000) {
      b += `req_total{job="api",inst="${s}",code="${s % 2 ? 500 : 200}"} ${(t - from) / 1000 * (s + 1)} ${t / 1000}\n`;
    }
  }
  b += '# TYPE temp gauge\n';
  for (let s = 0; s < 3; s++) {
    for (let t = from; t <= to; t += 30000) {
      b += `temp{sensor="s${s}"} ${Math.sin(t / 1e6 + s) * 40} ${t / 1000}\n`;
    }
  }
  fs.writeFileSync(file, b + '# EOF\n');
}

function stop(p) { try { process.kill(p.proc.pid, 'SIGTERM'); } catch (e) { /* gone */ } }

async function run(tmp) {
  const hour = 3600000;
  const from = 1700000000000;
  const to = from + 5 * hour;
  const om = path.join(tmp, 'data.om');
  writeOpenMetrics(om, from, to);
  const blocks = path.join(tmp, 'blocks');
  execFileSync(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', om, blocks], { stdio: 'ignore' });
  const ids = fs.readdirSync(blocks).filter((d) => fs.existsSync(path.join(blocks, d, 'meta.json')));
  check(ids.length >= 2, 'promtool wrote several blocks', ids.length);
  // The bucket: the blocks with the external labels the sidecar's Prometheus has.
  const bucket = path.join(tmp, 'bucket');
  const yaml = `type: FILESYSTEM\nconfig:\n  directory: ${bucket}\n`;
  fs.mkdirSync(bucket);
  for (const id of ids) {
    const dir = path.join(blocks, id);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json')));
    meta.thanos = { version: 1, labels: { region: 'eu', replica: 'a' }, downsample: { resolution: 0 }, source: 'sidecar' };
    fs.writeFileSync(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, '\t'));
    const files = ['index', ...fs.readdirSync(path.join(dir, 'chunks')).map((c) => `chunks/${c}`)];
    for (const f of [...files, 'meta.json']) {
      const src = f === 'meta.json' ? path.join(tmp, 'meta.json') : path.join(dir, f);
      execFileSync(orrery, ['tools', 'bucket', 'put', `--objstore.config=${yaml}`, `${id}/${f}`, src]);
    }
  }
  // Prometheus on a copy of the same blocks, with those external labels.
  const pdir = path.join(tmp, 'prom');
  fs.mkdirSync(pdir);
  fs.cpSync(blocks, path.join(pdir, 'data'), { recursive: true });
  fs.writeFileSync(path.join(pdir, 'prometheus.yml'),
    'global:\n  external_labels:\n    region: eu\n    replica: a\nscrape_configs: []\n');
  const pport = await freePort();
  const prom = startProcess(prometheusBin, [`--config.file=${path.join(pdir, 'prometheus.yml')}`,
    `--web.listen-address=127.0.0.1:${pport}`, `--storage.tsdb.path=${path.join(pdir, 'data')}`,
    '--storage.tsdb.retention.time=100y']);
  const procs = [{ proc: prom.proc }];
  try {
    check(await waitReady(`http://127.0.0.1:${pport}/-/ready`, 60000), 'Prometheus ready');
    const scPort = await freePort();
    const sc = startProcess(orrery, ['sidecar', `--prometheus.url=http://127.0.0.1:${pport}`,
      `--grpc-address=127.0.0.1:${scPort}`, '--http-address=127.0.0.1:0']);
    procs.push(sc);
    const stPort = await freePort();
    const stHttp = await freePort();
    const st = startProcess(orrery, ['store', `--objstore.config=${yaml}`, `--data-dir=${path.join(tmp, 'store')}`,
      `--grpc-address=127.0.0.1:${stPort}`, `--http-address=127.0.0.1:${stHttp}`]);
    procs.push(st);
    await sc.waitLine('stderr', /listening for StoreAPI gRPC/, 60000);
    await st.waitLine('stderr', /listening for StoreAPI gRPC/, 60000);
    const opts = { 'grpc.max_receive_message_length': 64 << 20 };
    const cred = grpc.credentials.createInsecure();
    const scS = new pkg.thanos.Store(`127.0.0.1:${scPort}`, cred, opts);
    const stS = new pkg.thanos.Store(`127.0.0.1:${stPort}`, cred, opts);
    const stI = new pkg.thanos.info.Info(`127.0.0.1:${stPort}`, cred);

    let r = await unary(stI, 'Info', {});
    check(!r.err && r.rep.ComponentType === 'store', 'Info: component type store', r.err && r.err.message);
    check(r.rep && r.rep.label_sets.length === 1 && lsetStr(r.rep.label_sets[0].labels) === 'region=eu,replica=a',
      'Info: label_sets [the blocks\' external labels]', r.rep && r.rep.label_sets);
    check(r.rep && Number(r.rep.store.min_time) === from && Number(r.rep.store.max_time) >= to,
      'Info: the blocks\' time range', r.rep && [r.rep.store.min_time, r.rep.store.max_time]);

    const cases = [
      { what: 'one metric', req: { min_time: from, max_time: to, matchers: [M('__name__', 'req_total')] } },
      { what: 'regex and negative matchers', req: { min_time: from, max_time: to,
        matchers: [M('__name__', 'req_total|temp', 'RE'), M('inst', '3', 'NEQ')] } },
      { what: 'a sub-range (samples: Prometheus cuts chunks to the range)', samples: true,
        req: { min_time: from + 2 * hour + 123, max_time: from + 3 * hour, matchers: [M('__name__', 'temp')] } },
      { what: 'skip_chunks', req: { min_time: from, max_time: to, skip_chunks: true,
        matchers: [M('job', 'api')] } },
      { what: 'without_replica_labels', req: { min_time: from, max_time: to,
        matchers: [M('__name__', 'temp')], without_replica_labels: ['replica'] } },
      { what: 'external-label matcher that matches', req: { min_time: from, max_time: to,
        matchers: [M('region', 'eu'), M('sensor', 's1')] } },
      { what: 'external-label matcher that does not', req: { min_time: from, max_time: to,
        matchers: [M('region', 'us'), M('sensor', 's1')] } },
    ];
    for (const c of cases) {
      const a = await series(scS, c.req);
      const b = await series(stS, c.req);
      const str = c.samples ? (x) => samplesStr(x, c.req.min_time, c.req.max_time) : seriesStr;
      const sa = a.series.map(str);
      const sb = b.series.map(str);
      const same = !a.err && !b.err && sa.length === sb.length && sa.every((x, i) => x === sb[i]);
      check(same, `Series (${c.what}): store == sidecar (${sb.length} series, ` +
        `${b.series.reduce((n, s) => n + s.chunks.length, 0)} chunks)`,
      same ? undefined : { sidecar: a.err ? a.err.message : sa.slice(0, 3), store: b.err ? b.err.message : sb.slice(0, 3) });
    }
    const lnA = await unary(scS, 'LabelNames', { start: from, end: to });
    const lnB = await unary(stS, 'LabelNames', { start: from, end: to });
    check(!lnB.err && JSON.stringify(lnA.rep.names) === JSON.stringify(lnB.rep.names),
      'LabelNames: store == sidecar', [lnA.rep && lnA.rep.names, lnB.err ? lnB.err.message : lnB.rep.names]);
    for (const [label, ms] of [['inst', []], ['sensor', []], ['inst', [M('code', '500')]], ['region', []]]) {
      const a = await unary(scS, 'LabelValues', { label, start: from, end: to, matchers: ms });
      const b = await unary(stS, 'LabelValues', { label, start: from, end: to, matchers: ms });
      check(!b.err && JSON.stringify(a.rep.values) === JSON.stringify(b.rep.values),
        `LabelValues ${label} ${JSON.stringify(ms)}: store == sidecar`,
        [a.rep && a.rep.values, b.err ? b.err.message : b.rep.values]);
    }
  } finally {
    for (const p of procs.reverse()) stop(p);
  }
}

async function downsampled(tmp) {
  const bucket = path.join(tmp, 'ds-bucket');
  fs.mkdirSync(bucket);
  const nseries = 20, nblocks = 2, nsamples = 8, hour = 3600000, h2 = 2 * hour;
  execFileSync(fixture, [bucket, String(nseries), String(nblocks), String(nsamples)], { stdio: 'ignore' });
  execFileSync(fixture, [bucket, String(nseries), String(nblocks), String(nsamples), String(hour)], { stdio: 'ignore' });
  const port = await freePort();
  const st = startProcess(orrery, ['store', `--objstore.config=type: FILESYSTEM\nconfig:\n  directory: ${bucket}\n`,
    `--data-dir=${path.join(tmp, 'ds-store')}`, `--grpc-address=127.0.0.1:${port}`, '--http-address=127.0.0.1:0']);
  try {
    await st.waitLine('stderr', /listening for StoreAPI gRPC/, 60000);
    const c = new pkg.thanos.Store(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const base = 1700000000000, end = base + nblocks * h2;
    const i = 7;
    const ms = [M('__name__', 'fixture_metric'), M('instance', `i-${String(i).padStart(8, '0')}`)];
    // What the fixture wrote: per hour window, the aggregates at its last sample.
    const want = { count: [], sum: [], min: [], max: [] };
    const raw = [];
    for (let b = 0; b < nblocks; b++) {
      const vs = [];
      for (let k = 0; k < nsamples; k++) vs.push([base + b * h2 + k * (h2 / nsamples), (i * 31 + k * 7 + b) % 1000]);
      raw.push(...vs);
      for (let w = 0; w < 2; w++) {
        const win = vs.slice(w * nsamples / 2, (w + 1) * nsamples / 2);
        const at = win[win.length - 1][0];
        want.count.push(`${at}:${win.length}`);
        want.sum.push(`${at}:${win.reduce((x, [, v]) => x + v, 0)}`);
        want.min.push(`${at}:${Math.min(...win.map(([, v]) => v))}`);
        want.max.push(`${at}:${Math.max(...win.map(([, v]) => v))}`);
      }
    }
    const dec = (s, f) => s.chunks.flatMap((ch) => (ch[f] ? decodeXor(ch[f].data).map(([t, v]) => `${t}:${v}`) : []));
    let r = await series(c, { min_time: base, max_time: end, matchers: ms, max_resolution_window: hour,
      aggregates: ['COUNT', 'SUM', 'MIN', 'MAX'] });
    const s1 = r.series[0];
    check(!r.err && r.series.length === 1 && s1.chunks.length === nblocks && s1.chunks.every((ch) => !ch.raw),
      'downsampled: max_resolution_window 1h gives the 1h blocks\' aggregate chunks',
      r.err ? r.err.message : s1 && s1.chunks.map((ch) => Object.keys(ch).filter((k) => ch[k])));
    for (const f of ['count', 'sum', 'min', 'max']) {
      const got = s1 ? dec(s1, f) : [];
      check(JSON.stringify(got) === JSON.stringify(want[f]), `downsampled: ${f} aggregate as written`, [got, want[f]]);
    }
    r = await series(c, { min_time: base, max_time: end, matchers: ms, max_resolution_window: hour,
      aggregates: ['MAX'] });
    check(!r.err && r.series[0] && r.series[0].chunks.every((ch) => ch.max && !ch.count && !ch.sum),
      'downsampled: only the aggregates asked for');
    r = await series(c, { min_time: base, max_time: end, matchers: ms, max_resolution_window: 0 });
    const got = r.series[0] ? dec(r.series[0], 'raw') : [];
    check(!r.err && JSON.stringify(got) === JSON.stringify(raw.map(([t, v]) => `${t}:${v}`)),
      'downsampled: max_resolution_window 0 gives the raw blocks', got.slice(0, 4));
  } finally {
    stop(st);
  }
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'orrery-store-'));
  try {
    await run(tmp);
    if (fixture) await downsampled(tmp);
  } catch (e) {
    check(false, 'no exception', e.stack);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(failed() ? 1 : 0);
}
main();
