// sidecar_stall.js: one client that never reads must not stall the sidecar
// (issue 10, item 4). A real Prometheus 2.42 with a few thousand series, the
// sidecar beside it and a gateway over the sidecar. A raw HTTP/2 client
// (from 127.0.0.2) opens 100 Series streams and then reads nothing — no
// WINDOW_UPDATE, not a byte from its socket. Asserted, as a user sees it:
//  - a healthy PromQL query through the gateway answers as fast as before
//    (the stalled client holds only its share of the sidecar's connections
//    to Prometheus);
//  - the stalled streams are reset after --grpc-server-write-timeout (5s
//    here): the sidecar logs it and counts them as DEADLINE_EXCEEDED;
//  - once the client leaves, all 100 calls are finished, and the sidecar
//    stops cleanly (exit 0; under ASan, with no leak).
// Usage: node sidecar_stall.js ORRERY PROMETHEUS PROMTOOL
// STALL_BASELINE=1 leaves out the flags an older build lacks (to measure it).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const common = require('../../node/grpc_common.js');
const { check, failed, freePort, startProcess } = common;
const h2 = require('./h2raw.js');

const [orrery, prometheusBin, promtool] = process.argv.slice(2);
const NSERIES = 3000;
const WRITE_TIMEOUT_S = 5;
const baseline = process.env.STALL_BASELINE === '1';

// Requests here give up after 30 s unless told otherwise.
const httpGet = (url, timeoutMs = 30000) => common.httpGet(url, timeoutMs);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await sleep(100); // polling a condition the daemon exposes
  }
  throw new Error(`timed out waiting for ${what}`);
}

function writeOpenMetrics(file, nseries, fromMs, toMs, stepMs) {
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, '# HELP test_metric Generated.\n# TYPE test_metric gauge\n');
  let buf = '';
  for (let s = 0; s < nseries; s++) {
    for (let t = fromMs; t <= toMs; t += stepMs) {
      buf += `test_metric{job="gen",inst="${s}"} ${((s * 7919 + t / 1000) % 1000) / 8} ${(t / 1000).toFixed(3)}\n`;
      if (buf.length > 1 << 20) { fs.writeSync(fd, buf); buf = ''; }
    }
  }
  fs.writeSync(fd, buf + '# EOF\n');
  fs.closeSync(fd);
}

// Sum of a counter family's samples whose labels contain every |want| pair.
function metricSum(text, name, want) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    if (!want.every((w) => line.includes(w))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'orrery-stall-'));
  const procs = [];
  const stopAll = () => { for (const p of procs) { try { process.kill(p.proc.pid, 'SIGKILL'); } catch (e) { /* gone */ } } };
  try {
    const now = Date.now();
    const from = Math.floor((now - 5 * 3600000) / 60000) * 60000;
    const to = from + 60 * 60000;
    const om = path.join(tmp, 'data.om');
    writeOpenMetrics(om, NSERIES, from, to, 15000);
    fs.mkdirSync(path.join(tmp, 'data'));
    execFileSync(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', om, path.join(tmp, 'data')], { stdio: 'ignore' });
    fs.unlinkSync(om);

    const promPort = await freePort();
    fs.writeFileSync(path.join(tmp, 'prometheus.yml'),
      'global:\n  scrape_interval: 1m\n  external_labels:\n    region: eu\n    replica: a\n');
    const prom = startProcess(prometheusBin, [`--config.file=${path.join(tmp, 'prometheus.yml')}`,
      `--web.listen-address=127.0.0.1:${promPort}`, `--storage.tsdb.path=${path.join(tmp, 'data')}`,
      '--storage.tsdb.retention.time=100y', '--storage.tsdb.min-block-duration=2h',
      '--storage.tsdb.max-block-duration=2h']);
    procs.push(prom);
    await waitFor('Prometheus ready', async () => (await httpGet(`http://127.0.0.1:${promPort}/-/ready`)).status === 200, 60000);

    const scGrpc = await freePort();
    const scHttp = await freePort();
    const scArgs = ['sidecar', `--prometheus.url=http://127.0.0.1:${promPort}`,
      `--grpc-address=127.0.0.1:${scGrpc}`, `--http-address=127.0.0.1:${scHttp}`];
    if (!baseline) scArgs.push(`--grpc-server-write-timeout=${WRITE_TIMEOUT_S}s`);
    const sc = startProcess(orrery, scArgs);
    procs.push(sc);
    await sc.waitLine('stderr', /listening for StoreAPI gRPC/, 60000);

    const gwHttp = await freePort();
    const gw = startProcess(orrery, ['gateway', `--endpoint=127.0.0.1:${scGrpc}`,
      `--http-address=127.0.0.1:${gwHttp}`, '--grpc-address=127.0.0.1:0', '--query.timeout=30s']);
    procs.push(gw);
    const q = `http://127.0.0.1:${gwHttp}/api/v1/query?query=${encodeURIComponent('count(test_metric)')}&time=${(from + 1800000) / 1000}`;
    const healthy = async () => {
      const t0 = Date.now();
      const r = await httpGet(q, 40000);
      const ms = Date.now() - t0;
      let v = null;
      try { v = JSON.parse(r.body).data.result[0].value[1]; } catch (e) { /* not an answer */ }
      return { ms, ok: r.status === 200 && v === String(NSERIES), status: r.status, body: r.body.slice(0, 200) };
    };
    await waitFor('the gateway answering from the sidecar', async () => (await healthy()).ok, 60000);
    const median = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const before = [];
    for (let i = 0; i < 3; i++) before.push((await healthy()).ms);
    const metrics = async () => (await httpGet(`http://127.0.0.1:${scHttp}/metrics`)).body;
    const started0 = metricSum(await metrics(), 'grpc_server_started_total', ['grpc_method="Series"']);

    // The attack: 100 Series streams, then not one byte read.
    const sock = await h2.connect(scGrpc, '127.0.0.2');
    const msg = h2.grpcMessage(h2.seriesRequest(from, to, [['__name__', 'test_metric']]));
    for (let i = 0; i < 100; i++) h2.startCall(sock, 1 + 2 * i, scGrpc, '/thanos.Store/Series', msg);
    sock.pause();
    const attackAt = Date.now();
    // Every stream has reached the sidecar's handler (started, possibly
    // queued behind the client's share of upstream connections).
    await waitFor('100 Series calls started', async () =>
      metricSum(await metrics(), 'grpc_server_started_total', ['grpc_method="Series"']) >= started0 + 100, 30000);
    const during = [];
    const results = [];
    for (let i = 0; i < 3; i++) {
      const r = await healthy();
      results.push(r);
      during.push(r.ms);
    }
    const mb = median(before);
    const md = median(during);
    console.log(`healthy query: median ${mb} ms before (${before}), ${md} ms while a non-reading client holds 100 streams (${during})`);
    check(results.every((r) => r.ok), 'healthy queries answer (count = 3000) while 100 streams are stalled',
      results.map((r) => `${r.status} ${r.body}`));
    check(md <= 3 * mb + 1500, `healthy query time unchanged under the stall (median ${md} ms vs ${mb} ms)`, { before, during });

    if (!baseline) {
      // The write timeout resets the stalled streams.
      await waitFor('stalled streams reset', async () =>
        metricSum(await metrics(), 'grpc_server_handled_total', ['grpc_method="Series"', 'grpc_code="DEADLINE_EXCEEDED"']) > 0,
      (WRITE_TIMEOUT_S + 20) * 1000).catch(() => {});
      const reset = metricSum(await metrics(), 'grpc_server_handled_total', ['grpc_method="Series"', 'grpc_code="DEADLINE_EXCEEDED"']);
      const after = (Date.now() - attackAt) / 1000;
      check(reset > 0, `stalled streams are reset after the write timeout (${reset} within ${after.toFixed(1)} s)`);
      check(sc.lines.stderr.some((l) => /level=warn.*stream stalled/.test(l) && l.includes('127.0.0.2')),
        'the sidecar logs the stalled client by address');
    }
    // The client leaves: every one of its calls ends.
    sock.destroy();
    await waitFor('all 100 calls finished', async () => {
      const m = await metrics();
      return metricSum(m, 'grpc_server_handled_total', ['grpc_method="Series"']) >= started0 + 100;
    }, 30000).then(() => check(true, 'all 100 stalled calls end once the client leaves'),
      (e) => check(false, 'all 100 stalled calls end once the client leaves', e.message));
    const r = await healthy();
    check(r.ok, 'the sidecar still answers afterwards', r.body);
    // A clean stop (under ASan this is also the leak check of every call
    // the write timeout and the per-client queue ended).
    process.kill(gw.proc.pid, 'SIGTERM');
    await gw.waitExit(30000);
    process.kill(sc.proc.pid, 'SIGTERM');
    const ex = await sc.waitExit(60000);
    check(ex.code === 0, 'the sidecar stops cleanly with exit 0', ex);
  } catch (e) {
    check(false, 'no exception', e.stack);
  } finally {
    stopAll();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(failed() ? 1 : 0);
}
main();
