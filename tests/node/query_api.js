// query_api.js: the gateway's Query API (gRPC thanos.Query, gateway/queryapi.c)
// called by @grpc/grpc-js through our lib/storeapi/proto files, against the
// gateway's own HTTP API over the same data: a Prometheus 2.42 over promtool
// blocks (external label region=eu), a sidecar, a gateway. Checks that Info
// advertises the Query API; that Query (vector, scalar, selectors with
// external labels) and QueryRange answer exactly what /api/v1/query and
// /api/v1/query_range answer (labels, timestamps, float64 bits), ending with
// a stats message; and the refusals (a parse error, storeMatchers, a zero
// interval). Usage: node query_api.js ORRERY PROMETHEUS PROMTOOL PROTO_DIR
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { check, failed, freePort, startProcess, httpGet, waitReady } = require('./grpc_common.js');

const [orrery, prometheusBin, promtool, protoDir] = process.argv.slice(2);

// A missing client library fails the test (it is in tests/node/package.json).
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const def = protoLoader.loadSync(['info.proto', 'query.proto'], {
  keepCase: true, longs: Number, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const pkg = grpc.loadPackageDefinition(def);

const STEP = 15;
const HOUR = 3600;

function makeBlocks(dir, t0) {
  let om = '# HELP http_requests Requests.\n# TYPE http_requests counter\n';
  for (const job of ['api', 'web']) {
    for (let inst = 0; inst < 4; inst++) {
      let v = 0;
      for (let k = 0; k <= HOUR / STEP; k++) {
        v += (inst + 1) * (job === 'api' ? 2 : 3) + (k % 7) / 3;
        om += `http_requests_total{job="${job}",instance="${inst}"} ${v} ${t0 + k * STEP}\n`;
      }
    }
  }
  om += '# EOF\n';
  fs.writeFileSync(path.join(dir, 'data.om'), om);
  execFileSync(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', path.join(dir, 'data.om'),
    path.join(dir, 'data')], { stdio: 'ignore' });
}

function stream(client, method, req) {
  return new Promise((resolve) => {
    const out = { series: [], warnings: [], stats: 0, err: null };
    const call = client[method](req, { deadline: Date.now() + 60000 });
    call.on('data', (r) => {
      if (r.result === 'timeseries') out.series.push(r.timeseries);
      else if (r.result === 'warnings') out.warnings.push(r.warnings);
      else if (r.stats) out.stats++;
    });
    call.on('error', (e) => { out.err = e; resolve(out); });
    call.on('end', () => resolve(out));
  });
}

function unary(client, method, req) {
  return new Promise((resolve) => {
    client[method](req, { deadline: Date.now() + 30000 }, (err, rep) => resolve({ err, rep }));
  });
}

// Both sides as {labels-json: [[t_ms, value]]}.
function fromGrpc(series) {
  const m = {};
  for (const s of series) {
    const l = {};
    for (const x of s.labels) l[x.name] = x.value;
    m[JSON.stringify(l, Object.keys(l).sort())] = s.samples.map((p) => [p.timestamp, p.value]);
  }
  return m;
}

function fromHttp(body) {
  const d = JSON.parse(body);
  if (d.status !== 'success') return null;
  const m = {};
  const r = d.data.result;
  if (d.data.resultType === 'scalar') {
    m['{}'] = [[Math.round(r[0] * 1000), parseFloat(r[1])]];
    return m;
  }
  for (const s of r) {
    const pts = s.values || [s.value];
    m[JSON.stringify(s.metric, Object.keys(s.metric).sort())] =
      pts.map(([t, v]) => [Math.round(t * 1000), parseFloat(v)]);
  }
  return m;
}

function equal(a, b) {
  if (!a || !b) return false;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (JSON.stringify(ka) !== JSON.stringify(kb)) return false;
  for (const k of ka) {
    if (a[k].length !== b[k].length) return false;
    for (let i = 0; i < a[k].length; i++) {
      const [ta, va] = a[k][i];
      const [tb, vb] = b[k][i];
      if (ta !== tb || !(Object.is(va, vb) || (Number.isNaN(va) && Number.isNaN(vb)))) return false;
    }
  }
  return true;
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'query_api.'));
  const t0 = (Math.floor(Date.now() / 1000 / HOUR) - 3) * HOUR;
  const procs = [];
  try {
    makeBlocks(work, t0);
    const pport = await freePort();
    fs.writeFileSync(path.join(work, 'prometheus.yml'),
      'global:\n  scrape_interval: 1h\n  external_labels:\n    region: eu\nscrape_configs: []\n');
    procs.push(startProcess(prometheusBin, [`--config.file=${path.join(work, 'prometheus.yml')}`,
      `--web.listen-address=127.0.0.1:${pport}`, `--storage.tsdb.path=${path.join(work, 'data')}`,
      '--storage.tsdb.retention.time=100y']));
    const purl = `http://127.0.0.1:${pport}`;
    if (!await waitReady(`${purl}/-/ready`, 60000)) throw new Error('Prometheus did not start');
    const sport = await freePort();
    procs.push(startProcess(orrery, ['sidecar', `--prometheus.url=${purl}`,
      `--grpc-address=127.0.0.1:${sport}`, '--http-address=127.0.0.1:0']));
    const gport = await freePort();
    const hport = await freePort();
    const gw = startProcess(orrery, ['gateway', `--endpoint=127.0.0.1:${sport}`,
      `--grpc-address=127.0.0.1:${gport}`, `--http-address=127.0.0.1:${hport}`]);
    procs.push(gw);
    const gurl = `http://127.0.0.1:${hport}`;
    if (!await waitReady(`${gurl}/-/ready`, 60000)) throw new Error('gateway did not start');
    // The sidecar up in the gateway: its label set is known.
    const end = Date.now() + 60000;
    while (Date.now() < end) {
      const r = await httpGet(`${gurl}/api/v1/stores`);
      if (r.status === 200 && r.body.includes('"region":"eu"')) break;
      await new Promise((r2) => setTimeout(r2, 100));
    }

    const addr = `127.0.0.1:${gport}`;
    const cred = grpc.credentials.createInsecure();
    const info = new pkg.thanos.info.Info(addr, cred);
    const q = new pkg.thanos.Query(addr, cred);

    const ir = await unary(info, 'Info', {});
    check(!ir.err && ir.rep.query !== null && ir.rep.ComponentType === 'query',
      'Info: component query, the Query API advertised (field 8)', ir.err ? ir.err.message : ir.rep);

    const at = t0 + 1800;
    const instant = [
      'sum by (job) (rate(http_requests_total[5m]))',
      'http_requests_total{instance="1"}',
      'scalar(sum(http_requests_total))',
      'topk(3, irate(http_requests_total[2m]))',
      'max_over_time(http_requests_total{job="web"}[10m]) / 3',
    ];
    for (const expr of instant) {
      const g = await stream(q, 'Query', { query: expr, time_seconds: at });
      const h = await httpGet(`${gurl}/api/v1/query?query=${encodeURIComponent(expr)}&time=${at}`);
      const want = h.status === 200 ? fromHttp(h.body) : null;
      check(!g.err && g.stats === 1 && equal(fromGrpc(g.series), want),
        `Query ${expr}: the HTTP API's answer, then one stats message`,
        g.err ? g.err.message : { grpc: fromGrpc(g.series), http: want });
    }
    const range = [
      'sum by (job) (rate(http_requests_total[5m]))',
      'rate(http_requests_total{job="api"}[1m])',
      'http_requests_total{instance="2"} offset 5m',
      'count(http_requests_total) by (region)',
    ];
    const start = t0 + 600;
    const stop = t0 + HOUR;
    for (const expr of range) {
      const g = await stream(q, 'QueryRange', { query: expr, start_time_seconds: start,
        end_time_seconds: stop, interval_seconds: 60 });
      const h = await httpGet(`${gurl}/api/v1/query_range?query=${encodeURIComponent(expr)}` +
        `&start=${start}&end=${stop}&step=60`);
      const want = h.status === 200 ? fromHttp(h.body) : null;
      check(!g.err && g.series.length > 0 && equal(fromGrpc(g.series), want),
        `QueryRange ${expr}: the HTTP API's answer`,
        g.err ? g.err.message : { grpc: Object.keys(fromGrpc(g.series)), http: Object.keys(want || {}) });
    }

    const bad = await stream(q, 'Query', { query: 'sum(', time_seconds: at });
    check(bad.err && bad.err.code === grpc.status.INVALID_ARGUMENT && /parse error/.test(bad.err.details),
      'Query of a parse error: INVALID_ARGUMENT with the parser\'s message', bad.err && bad.err.details);
    const sm = await stream(q, 'Query', { query: 'up', time_seconds: at,
      storeMatchers: [{ labelMatchers: [{ type: 'EQ', name: 'region', value: 'eu' }] }] });
    check(sm.err && sm.err.code === grpc.status.INVALID_ARGUMENT,
      'Query with storeMatchers: refused (INVALID_ARGUMENT), not answered over all data',
      sm.err && sm.err.details);
    const zero = await stream(q, 'QueryRange', { query: 'up', start_time_seconds: start,
      end_time_seconds: stop, interval_seconds: 0 });
    check(zero.err && zero.err.code === grpc.status.INVALID_ARGUMENT,
      'QueryRange with a zero interval: INVALID_ARGUMENT', zero.err && zero.err.details);
    // Calls that end early: cancelled at once, and a deadline that passes
    // while the gateway fetches. Both end for the client; the gateway goes
    // on answering (and, under ASan, exits without a leak below).
    const early = await new Promise((resolve) => {
      const call = q.QueryRange({ query: 'sum by (job) (rate(http_requests_total[5m]))',
        start_time_seconds: start, end_time_seconds: stop, interval_seconds: 15 });
      call.on('data', () => {});
      call.on('error', (e) => resolve(e.code));
      call.on('end', () => resolve('end'));
      call.cancel();
    });
    check(early === grpc.status.CANCELLED, 'QueryRange cancelled by the client: CANCELLED', early);
    const late = await new Promise((resolve) => {
      const call = q.QueryRange({ query: 'count_over_time(http_requests_total[1h])',
        start_time_seconds: start, end_time_seconds: stop, interval_seconds: 1 },
      { deadline: Date.now() + 2 });
      call.on('data', () => {});
      call.on('error', (e) => resolve(e.code));
      call.on('end', () => resolve('end'));
    });
    check(late === grpc.status.DEADLINE_EXCEEDED || late === 'end',
      'QueryRange past its deadline: DEADLINE_EXCEEDED (or done in time)', late);
    const after = await stream(q, 'Query', { query: 'count(http_requests_total)', time_seconds: at });
    check(!after.err && after.series.length === 1 && after.series[0].samples[0].value === 8,
      'Query after the cancelled calls: answered (8 series)', after.err ? after.err.message : after.series);
    info.close();
    q.close();
    gw.proc.kill('SIGTERM');
    const ex = await gw.waitExit(30000);
    check(ex && ex.code === 0, 'the gateway exits cleanly on SIGTERM', ex);
  } finally {
    for (const p of procs) p.proc.kill('SIGTERM');
    fs.rmSync(work, { recursive: true, force: true });
  }
  process.exit(failed() ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
