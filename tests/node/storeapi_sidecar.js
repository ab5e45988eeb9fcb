// storeapi_sidecar.js: `orrery sidecar` beside a real Prometheus 2.42, called
// by @grpc/grpc-js through our lib/storeapi/proto files. Checks Info, Series
// (matchers, time ranges, skip_chunks, external-label matchers,
// without_replica_labels; samples decoded from the XOR chunks equal what
// Prometheus's query API returns), LabelNames, LabelValues; the refusals to
// start; and (mode "memory") the sidecar's peak RSS while streaming many
// series. Usage: node storeapi_sidecar.js MODE ORRERY PROMETHEUS PROMTOOL PROTO_DIR
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { check, failed, freePort, startProcess, vmHwmKb, httpGet, waitReady } = require('./grpc_common.js');
const { decodeXor } = require('./storeapi_xor.js');

const [mode, orrery, prometheusBin, promtool, protoDir] = process.argv.slice(2);

let grpc, protoLoader;
try {
  grpc = require('@grpc/grpc-js');
  protoLoader = require('@grpc/proto-loader');
} catch (e) {
  console.error('SKIP: @grpc/grpc-js not installed');
  process.exit(77);
}
const def = protoLoader.loadSync(['rpc.proto', 'info.proto'], {
  keepCase: true, longs: String, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const pkg = grpc.loadPackageDefinition(def);


async function startPrometheus(dir, extLabels, extraArgs = []) {
  const port = await freePort();
  let yml = `global:\n  scrape_interval: 1s\n`;
  if (extLabels) {
    yml += '  external_labels:\n';
    for (const [k, v] of Object.entries(extLabels)) yml += `    ${k}: ${v}\n`;
  }
  yml += `scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:${port}']\n`;
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), yml);
  const p = startProcess(prometheusBin, [
    `--config.file=${path.join(dir, 'prometheus.yml')}`, `--web.listen-address=127.0.0.1:${port}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`, '--storage.tsdb.retention.time=100y',
    ...extraArgs]);
  const url = `http://127.0.0.1:${port}`;
  if (!await waitReady(`${url}/-/ready`, 60000)) throw new Error('Prometheus did not start');
  return { proc: p, url };
}

async function startSidecar(promUrl, extra = []) {
  const grpcPort = await freePort();
  const p = startProcess(orrery, ['sidecar', `--prometheus.url=${promUrl}`,
    `--grpc-address=127.0.0.1:${grpcPort}`, '--http-address=127.0.0.1:0', ...extra]);
  return { proc: p, grpcPort };
}

function unary(client, method, req) {
  return new Promise((resolve) => {
    client[method](req, { deadline: Date.now() + 30000 }, (err, rep) => resolve({ err, rep }));
  });
}
function series(client, req, onData = null) {
  return new Promise((resolve) => {
    const call = client.Series(req, { deadline: Date.now() + 300000 });
    const out = { series: [], warnings: [], err: null, count: 0 };
    call.on('data', (r) => {
      if (r.result === 'series') {
        out.count++;
        if (onData) onData(r.series, call); else out.series.push(r.series);
      } else if (r.result === 'warning') out.warnings.push(r.warning);
    });
    // 'status' may come while paused data is still buffered: wait for 'end'
    // (or an error) too.
    let pending = 2;
    const fin = () => { if (--pending === 0) setImmediate(() => resolve(out)); };
    call.on('error', (e) => { out.err = e; fin(); });
    call.on('end', fin);
    call.on('status', fin);
  });
}
const lsetStr = (ls) => ls.map((l) => `${l.name}=${l.value}`).join(',');
const lmap = (ls) => Object.fromEntries(ls.map((l) => [l.name, l.value]));
const M = (name, value, type = 'EQ') => ({ type, name, value });

// Samples of a series decoded from its chunks, limited to [mint, maxt].
function samplesOf(s, mint, maxt) {
  const out = [];
  for (const c of s.chunks) {
    for (const [t, v] of decodeXor(c.raw.data)) if (t >= mint && t <= maxt) out.push([t, v]);
  }
  return out;
}

// Raw samples of |selector| in [mint, maxt] from Prometheus's query API.
async function promRaw(url, selector, mint, maxt) {
  const rangeS = Math.ceil((maxt - mint) / 1000);
  const q = `${selector}[${rangeS}s]`;
  const r = await httpGet(`${url}/api/v1/query?query=${encodeURIComponent(q)}&time=${maxt / 1000}`);
  const res = JSON.parse(r.body).data.result;
  const m = new Map();
  for (const s of res) {
    const key = Object.entries(s.metric).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`).join(',');
    m.set(key, s.values.map(([t, v]) => [Math.round(t * 1000), Number(v)])
      .filter(([t]) => t >= mint && t <= maxt));
  }
  return m;
}

function sameSamples(a, b) {
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const eq = a[i][0] === b[i][0] && (a[i][1] === b[i][1] || (Number.isNaN(a[i][1]) && Number.isNaN(b[i][1])));
    if (!eq) return `sample ${i}: ${a[i]} != ${b[i]}`;
  }
  return null;
}

function writeOpenMetrics(file, nseries, fromMs, toMs, stepMs) {
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, '# HELP test_metric Generated.\n# TYPE test_metric gauge\n');
  let buf = '';
  for (let s = 0; s < nseries; s++) {
    for (let t = fromMs; t <= toMs; t += stepMs) {
      const v = ((s * 7919 + t / 1000) % 1000) / 8 + (s % 3 === 0 ? 0.1 : 0);
      buf += `test_metric{job="gen",inst="${s}"} ${v} ${(t / 1000).toFixed(3)}\n`;
      if (buf.length > 1 << 20) { fs.writeSync(fd, buf); buf = ''; }
    }
  }
  fs.writeSync(fd, buf + '# EOF\n');
  fs.closeSync(fd);
}

function stop(p) { try { process.kill(p.proc.pid, 'SIGTERM'); } catch (e) { /* gone */ } }

async function functional(tmp) {
  // Several hours of old data as promtool blocks, then a live Prometheus.
  const now = Date.now();
  const hour = 3600000;
  const from = Math.floor((now - 6 * hour) / 15000) * 15000;
  const to = from + 3 * hour;
  const om = path.join(tmp, 'data.om');
  writeOpenMetrics(om, 3, from, to, 15000);
  fs.mkdirSync(path.join(tmp, 'data'));
  execFileSync(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', om, path.join(tmp, 'data')],
    { stdio: 'ignore' });
  const prom = await startPrometheus(tmp, { region: 'eu', replica: 'a' },
    ['--storage.tsdb.min-block-duration=2h', '--storage.tsdb.max-block-duration=2h']);
  const sc = await startSidecar(prom.url);
  try {
    await sc.proc.waitLine('stderr', /listening for StoreAPI gRPC/, 60000);
    const store = new pkg.thanos.Store(`127.0.0.1:${sc.grpcPort}`, grpc.credentials.createInsecure(),
      { 'grpc.max_receive_message_length': 64 << 20 });
    const info = new pkg.thanos.info.Info(`127.0.0.1:${sc.grpcPort}`, grpc.credentials.createInsecure());

    // Info.
    let r = await unary(info, 'Info', {});
    check(!r.err && r.rep.ComponentType === 'sidecar', 'Info: component type sidecar', r.err && r.err.message);
    const ls = r.rep && r.rep.label_sets.length === 1 ? lsetStr(r.rep.label_sets[0].labels) : '';
    check(ls === 'region=eu,replica=a', 'Info: label_sets [external labels]', ls);
    check(r.rep && r.rep.store && r.rep.store.max_time === '9223372036854775807', 'Info: max_time MaxInt64',
      r.rep && r.rep.store);
    check(r.rep && r.rep.store && Number(r.rep.store.min_time) <= from &&
      Number(r.rep.store.min_time) > from - 86400000, 'Info: min_time is the oldest sample Prometheus holds',
    r.rep && r.rep.store && [r.rep.store.min_time, from]);
    check(r.rep && r.rep.store && r.rep.store.supports_without_replica_labels, 'Info: supports_without_replica_labels');

    // Series over the whole old range: samples equal Prometheus's own.
    const want = await promRaw(prom.url, 'test_metric', from, to);
    let s = await series(store, { min_time: from, max_time: to, matchers: [M('__name__', 'test_metric')] });
    check(!s.err && s.series.length === 3, 'Series: 3 series from the promtool blocks', s.err ? s.err.message : s.series.length);
    let allOk = s.series.length === 3;
    for (const x of s.series) {
      const m = lmap(x.labels);
      if (m.region !== 'eu' || m.replica !== 'a') { allOk = false; check(false, 'Series: external labels added', m); break; }
      const key = lsetStr(x.labels.filter((l) => l.name !== 'region' && l.name !== 'replica'));
      const d = sameSamples(samplesOf(x, from, to), want.get(key) || []);
      if (d) { allOk = false; check(false, `Series: samples of ${key} equal Prometheus's`, d); }
      if (x.chunks.some((c) => c.raw.type !== 0 && c.raw.type !== 'XOR')) { allOk = false; check(false, 'chunks are XOR', x.chunks.map((c) => c.raw.type)); }
    }
    check(allOk, 'Series: labels sorted with external labels, samples equal /api/v1/query over 3h');
    const sorted = s.series.every((x) => x.labels.every((l, i, a) => i === 0 || a[i - 1].name < l.name));
    check(sorted, 'Series: labels sorted');

    // A time range inside, a regex matcher, an external label matcher that matches.
    const mint = from + hour, maxt = from + hour + 20 * 60000;
    const want2 = await promRaw(prom.url, 'test_metric{inst=~"1|2"}', mint, maxt);
    s = await series(store, { min_time: mint, max_time: maxt,
      matchers: [M('__name__', 'test_metric'), M('inst', '1|2', 'RE'), M('region', 'eu')] });
    allOk = !s.err && s.series.length === 2;
    for (const x of s.series) {
      const key = lsetStr(x.labels.filter((l) => l.name !== 'region' && l.name !== 'replica'));
      const got = samplesOf(x, mint, maxt);
      const d = sameSamples(got, want2.get(key) || []);
      if (d || got.length < 70) { allOk = false; check(false, `range samples of ${key}`, d || got.length); }
      // Chunks overlap the asked range.
      if (x.chunks.some((c) => Number(c.max_time) < mint || Number(c.min_time) > maxt)) {
        allOk = false; check(false, 'chunks overlap the range');
      }
    }
    check(allOk, 'Series: time range, regex matcher, matching external-label matcher', s.err && s.err.message);

    // Live head data (self-scrape) too, once Prometheus has scraped a few times.
    for (let i = 0; i < 150; i++) {
      const n = Date.now();
      const w = await promRaw(prom.url, 'prometheus_tsdb_head_series', n - 60000, n);
      if (w.size === 1 && [...w.values()][0].length >= 3) break;
      await new Promise((r2) => setTimeout(r2, 200)); // polling Prometheus's query API
    }
    const hnow = Date.now();
    s = await series(store, { min_time: hnow - 60000, max_time: hnow,
      matchers: [M('__name__', 'prometheus_tsdb_head_series')] });
    const want3 = await promRaw(prom.url, 'prometheus_tsdb_head_series', hnow - 60000, hnow);
    allOk = !s.err && s.series.length === 1;
    for (const x of s.series) {
      const key = lsetStr(x.labels.filter((l) => l.name !== 'region' && l.name !== 'replica'));
      const d = sameSamples(samplesOf(x, hnow - 60000, hnow), want3.get(key) || []);
      if (d) { allOk = false; check(false, 'head samples', d); }
    }
    check(allOk, 'Series: head samples equal Prometheus\'s', s.err ? s.err.message : s.series.map((x) => [lsetStr(x.labels), x.chunks.length]));

    // External label matcher that does not match: empty, Prometheus not asked.
    s = await series(store, { min_time: from, max_time: to, matchers: [M('__name__', 'test_metric'), M('region', 'us')] });
    check(!s.err && s.count === 0, 'Series: external-label mismatch gives an empty answer', s.err && s.err.message);
    s = await series(store, { min_time: from, max_time: to, matchers: [M('__name__', 'test_metric'), M('replica', 'b|c', 'RE')] });
    check(!s.err && s.count === 0, 'Series: external-label regex mismatch gives an empty answer');
    // Only external-label matchers: as Thanos, INVALID_ARGUMENT.
    s = await series(store, { min_time: from, max_time: to, matchers: [M('region', 'eu')] });
    check(s.err && s.err.code === grpc.status.INVALID_ARGUMENT && /no matchers specified/.test(s.err.details),
      'Series: only external-label matchers → INVALID_ARGUMENT', s.err && [s.err.code, s.err.details]);
    // Bad regex.
    s = await series(store, { min_time: from, max_time: to, matchers: [M('__name__', '(', 'RE')] });
    check(s.err && s.err.code === grpc.status.INVALID_ARGUMENT && /missing closing \)/.test(s.err.details),
      'Series: bad regex → INVALID_ARGUMENT with the reason', s.err && [s.err.code, s.err.details]);

    // skip_chunks: labels only, as /api/v1/series.
    s = await series(store, { min_time: from, max_time: to, skip_chunks: true,
      matchers: [M('__name__', 'test_metric'), M('inst', '0', 'NEQ')] });
    check(!s.err && s.series.length === 2 && s.series.every((x) => x.chunks.length === 0 &&
      lmap(x.labels).region === 'eu' && lmap(x.labels).inst !== '0'), 'Series: skip_chunks gives labels only',
    s.err ? s.err.message : s.series.map((x) => lsetStr(x.labels)));

    // without_replica_labels.
    s = await series(store, { min_time: from, max_time: to, without_replica_labels: ['replica'],
      matchers: [M('__name__', 'test_metric'), M('inst', '0')] });
    check(!s.err && s.series.length === 1 && lsetStr(s.series[0].labels) ===
      '__name__=test_metric,inst=0,job=gen,region=eu', 'Series: without_replica_labels drops replica',
    s.series.map((x) => lsetStr(x.labels)));

    // limit.
    s = await series(store, { min_time: from, max_time: to, limit: 2, matchers: [M('__name__', 'test_metric')] });
    check(!s.err && s.series.length === 2, 'Series: limit 2 gives 2 series', s.err ? s.err.message : s.series.length);
    s = await series(store, { min_time: from, max_time: to, limit: 1, skip_chunks: true, matchers: [M('__name__', 'test_metric')] });
    check(!s.err && s.series.length === 1, 'Series: limit with skip_chunks', s.err ? s.err.message : s.series.length);

    // LabelNames / LabelValues.
    r = await unary(store, 'LabelNames', { start: from, end: to });
    const names = r.rep ? r.rep.names : [];
    check(!r.err && ['__name__', 'inst', 'job', 'region', 'replica'].every((n) => names.includes(n)) &&
      names.every((n, i) => i === 0 || names[i - 1] < n), 'LabelNames: Prometheus names and external labels, sorted',
    r.err ? r.err.message : names);
    r = await unary(store, 'LabelNames', { start: from, end: to, matchers: [M('__name__', 'test_metric')] });
    check(!r.err && lsetStr(r.rep.names.map((n) => ({ name: n, value: '' }))) ===
      '__name__=,inst=,job=,region=,replica=', 'LabelNames with matchers', r.err ? r.err.message : r.rep.names);
    r = await unary(store, 'LabelValues', { label: 'region', start: from, end: to });
    check(!r.err && JSON.stringify(r.rep.values) === '["eu"]', 'LabelValues of an external label', r.rep);
    r = await unary(store, 'LabelValues', { label: 'inst', start: from, end: to, matchers: [M('__name__', 'test_metric')] });
    check(!r.err && JSON.stringify(r.rep.values) === '["0","1","2"]', 'LabelValues through Prometheus', r.err ? r.err.message : r.rep.values);
    r = await unary(store, 'LabelValues', { label: 'inst', start: from, end: to, limit: 2, matchers: [M('__name__', 'test_metric')] });
    check(!r.err && JSON.stringify(r.rep.values) === '["0","1"]', 'LabelValues: limit', r.err ? r.err.message : r.rep.values);
    r = await unary(store, 'LabelValues', { label: 'inst', start: from, end: to, matchers: [M('region', 'us')] });
    check(!r.err && r.rep.values.length === 0, 'LabelValues: external-label mismatch → empty', r.rep);
    r = await unary(store, 'LabelValues', { label: '', start: from, end: to });
    check(r.err && r.err.code === grpc.status.INVALID_ARGUMENT, 'LabelValues: empty label → INVALID_ARGUMENT');

    // Metrics on the sidecar's HTTP port.
    const hm = await sc.proc.waitLine('stderr', /msg=listening component=sidecar address=([\d.:]+)/, 1000);
    const met = await httpGet(`http://${hm[1]}/metrics`);
    check(/orrery_storeapi_requests_total\{method="Series",status="OK"\} \d+/.test(met.body) &&
      /orrery_sidecar_remote_read_bytes_total [1-9]/.test(met.body), 'metrics: storeapi requests and remote-read bytes');
    const rd = await httpGet(`http://${hm[1]}/-/ready`);
    check(rd.status === 200, '/-/ready is 200 once Prometheus is ready');

    // Clean shutdown.
    store.close();
    info.close();
    process.kill(sc.proc.proc.pid, 'SIGTERM');
    const ex = await sc.proc.waitExit(30000);
    check(ex.code === 0, 'SIGTERM: clean exit 0', ex);
  } finally {
    stop(sc);
    stop(prom);
  }
}

async function refusals(tmp) {
  const prom = await startPrometheus(tmp, null);
  try {
    let sc = await startSidecar(prom.url);
    let ex = await sc.proc.waitExit(60000);
    const line = sc.proc.lines.stderr.find((l) => /level=error/.test(l)) || '';
    check(ex.code === 1 && /no external labels configured on Prometheus server, uniquely identifying external labels must be configured/.test(line),
      'refuses to start without external labels (exit 1, Thanos\'s message)', [ex, line]);
    // With uploads, Prometheus's default block durations differ (compaction on).
    fs.mkdirSync(path.join(tmp, 'bucket'));
    fs.writeFileSync(path.join(tmp, 'bucket.yml'), `type: FILESYSTEM\nconfig:\n  directory: ${tmp}/bucket\n`);
    sc = await startSidecar(prom.url, [`--objstore.config-file=${path.join(tmp, 'bucket.yml')}`]);
    ex = await sc.proc.waitExit(60000);
    const l2 = sc.proc.lines.stderr.find((l) => /level=error/.test(l)) || '';
    check(ex.code === 1 && /Compaction needs to be disabled \(storage.tsdb.min-block-duration = storage.tsdb.max-block-duration\)/.test(l2),
      'with uploads, refuses unequal block durations', [ex, l2]);
  } finally {
    stop(prom);
  }
}

async function memory(tmp, nseries) {
  const now = Date.now();
  const from = Math.floor((now - 5 * 3600000) / 60000) * 60000;
  const om = path.join(tmp, 'data.om');
  writeOpenMetrics(om, nseries, from, from + 40 * 60000, 60000);
  fs.mkdirSync(path.join(tmp, 'data'));
  execFileSync(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', om, path.join(tmp, 'data')],
    { stdio: 'ignore' });
  fs.unlinkSync(om);
  const prom = await startPrometheus(tmp, { region: 'eu', replica: 'a' },
    ['--storage.tsdb.min-block-duration=2h', '--storage.tsdb.max-block-duration=2h']);
  const sc = await startSidecar(prom.url);
  try {
    await sc.proc.waitLine('stderr', /listening for StoreAPI gRPC/, 60000);
    const store = new pkg.thanos.Store(`127.0.0.1:${sc.grpcPort}`, grpc.credentials.createInsecure());
    const base = vmHwmKb(sc.proc.proc.pid);
    let bytes = 0;
    const t0 = Date.now();
    // A slow-ish reader: pause now and then so backpressure is exercised.
    const s = await series(store, { min_time: from, max_time: from + 3600000, matchers: [M('__name__', 'test_metric')] },
      (x, call) => {
        for (const c of x.chunks) bytes += c.raw.data.length;
        if (bytes % 97 === 0) { call.pause(); setTimeout(() => call.resume(), 5); }
      });
    const peak = vmHwmKb(sc.proc.proc.pid);
    console.log(`memory: ${s.count} series, ${bytes} chunk bytes in ${Date.now() - t0} ms; sidecar VmHWM ${peak} KiB (before ${base} KiB)`);
    check(!s.err && s.count === nseries, `memory: all ${nseries} series streamed`, s.err ? s.err.message : s.count);
    check(peak - base < 64 * 1024, 'memory: sidecar peak RSS grows by less than 64 MiB', [base, peak]);
    // skip_chunks goes through /api/v1/series.
    const t1 = Date.now();
    const s2 = await series(store, { min_time: from, max_time: from + 3600000, skip_chunks: true,
      matchers: [M('__name__', 'test_metric')] }, () => {});
    const peak2 = vmHwmKb(sc.proc.proc.pid);
    console.log(`memory: skip_chunks ${s2.count} series in ${Date.now() - t1} ms; sidecar VmHWM ${peak2} KiB`);
    check(!s2.err && s2.count === nseries, `memory: skip_chunks streamed all ${nseries} series`, s2.err ? s2.err.message : s2.count);
    // SIGTERM during a Series stream: the call in flight finishes within the
    // grace period, then the sidecar exits 0.
    let termed = false;
    const s3 = await series(store, { min_time: from, max_time: from + 3600000, matchers: [M('__name__', 'test_metric')] },
      () => { if (!termed) { termed = true; process.kill(sc.proc.proc.pid, 'SIGTERM'); } });
    check(!s3.err && s3.count === nseries, 'SIGTERM mid-stream: the Series call in flight completes', s3.err ? s3.err.message : s3.count);
    const ex = await sc.proc.waitExit(60000);
    check(ex.code === 0, 'SIGTERM mid-stream: exit 0 after the call', ex);
    store.close();
  } finally {
    stop(sc);
    stop(prom);
  }
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'orrery-sidecar-'));
  try {
    if (mode === 'functional') {
      await functional(path.join(tmp));
    } else if (mode === 'refusals') {
      await refusals(tmp);
    } else if (mode === 'memory') {
      await memory(tmp, Number(process.env.SIDECAR_MEMORY_SERIES || 200000));
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  } catch (e) {
    check(false, 'no exception', e.stack);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(failed() ? 1 : 0);
}
main();
