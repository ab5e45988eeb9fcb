// storeapi_tls.js: StoreAPI over TLS and mutual TLS between orrery and
// @grpc/grpc-js, both directions, with certificates made by openssl
// (tests/integration/tls/mkcerts.sh: a CA, server and client certificates,
// an expired one, and a second CA with its own).
//  1. grpc-js client -> `orrery store --grpc-server-tls-*` (client CA set):
//     Info and Series over mTLS answer as a plaintext store over the same
//     bucket (chunks byte for byte); a client without a certificate, with
//     one from the other CA, with an expired one, or in plaintext is
//     refused, and each refusal is logged once (warn, logfmt) with the
//     client's address.
//  2. orrery gateway -> grpc-js server (mTLS, the other CA, relaying to the
//     plaintext store): the gateway configured by --endpoint.sd-config with
//     that endpoint's own tls_config answers a query as a gateway reaching
//     the mTLS store through --grpc-client-tls-*; with the wrong CA the
//     endpoint is down with a TLS error and the gateway logs it.
//  3. The store's certificate swapped on disk (ORRERY_TLS_RELOAD_INTERVAL_MS
//     500) is served to new connections within seconds, while a gateway
//     querying through its established connection loses no query.
//  4. curl --cacert against the HTTP server with net_http_server_set_tls
//     (http_echo_server), and curl without the CA is refused.
// Usage: node storeapi_tls.js ORRERY STORE_FIXTURE ECHO_SERVER MKCERTS PROTO_DIR CURL
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const tls = require('tls');
const { execFileSync, spawnSync } = require('child_process');
const { check, failed, freePort, startProcess, httpGet, waitReady } = require('./grpc_common.js');

const [orrery, fixture, echoServer, mkcerts, protoDir, curl] = process.argv.slice(2);

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

const procs = [];
function start(bin, args, env) {
  const p = startProcess(bin, args, env);
  procs.push(p);
  return p;
}
function stop(p) { try { process.kill(p.proc.pid, 'SIGTERM'); } catch (e) { /* gone */ } }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function unary(client, method, req) {
  return new Promise((resolve) => {
    client[method](req, { deadline: Date.now() + 20000 }, (err, rep) => resolve({ err, rep }));
  });
}
function series(client, req) {
  return new Promise((resolve) => {
    const call = client.Series(req, { deadline: Date.now() + 30000 });
    const out = { series: [], err: null };
    call.on('data', (r) => { if (r.result === 'series') out.series.push(r.series); });
    let pending = 2;
    const fin = () => { if (--pending === 0) setImmediate(() => resolve(out)); };
    call.on('error', (e) => { out.err = e; fin(); });
    call.on('end', fin);
    call.on('status', fin);
  });
}
const lset = (ls) => ls.map((l) => `${l.name}=${l.value}`).join(',');
const seriesStr = (s) => lset(s.labels) + ' ' + s.chunks.map((c) =>
  `[${c.min_time},${c.max_time}:${c.raw ? Buffer.from(c.raw.data).toString('base64') : '-'}]`).join('');

const rd = (d, f) => fs.readFileSync(path.join(d, f));
const BASE = 1700000000000;
const ALL = { min_time: BASE, max_time: BASE + 4 * 3600000,
  matchers: [{ type: 'EQ', name: '__name__', value: 'fixture_metric' }] };

// Lines of |p|'s stderr matching "TLS handshake failed" from line |from|.
const refusals = (p, from) => p.lines.stderr.slice(from).filter((l) => /msg="TLS handshake failed"/.test(l));

async function gatewayQuery(port, q) {
  const r = await httpGet(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}&time=${(BASE + 3600000) / 1000}`, 20000);
  try { return { status: r.status, body: JSON.parse(r.body) }; } catch (e) { return { status: r.status, body: r.body }; }
}

async function waitStoreUp(port, ms) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await httpGet(`http://127.0.0.1:${port}/api/v1/stores`, 5000);
    if (/"store":\[\{[^\]]*"lastError":null/.test(last.body)) return last; // Info answered
    await sleep(200);
  }
  return last;
}

async function run(tmp) {
  const certs = path.join(tmp, 'certs');
  execFileSync('bash', [mkcerts, certs], { stdio: 'inherit' });
  const C = (f) => path.join(certs, f);
  const bucket = path.join(tmp, 'bucket');
  fs.mkdirSync(bucket);
  execFileSync(fixture, [bucket, '20', '2', '8'], { stdio: 'ignore' });
  const objstore = `--objstore.config=type: FILESYSTEM\nconfig:\n  directory: ${bucket}\n`;

  // The store's certificate files are copies, swapped in part 3.
  fs.copyFileSync(C('server.crt'), path.join(tmp, 'store.crt'));
  fs.copyFileSync(C('server.key'), path.join(tmp, 'store.key'));
  const [tPort, tHttp, pPort] = [await freePort(), await freePort(), await freePort()];
  const ts = start(orrery, ['store', objstore, `--data-dir=${path.join(tmp, 'ds-tls')}`,
    `--grpc-address=127.0.0.1:${tPort}`, `--http-address=127.0.0.1:${tHttp}`,
    `--grpc-server-tls-cert=${path.join(tmp, 'store.crt')}`, `--grpc-server-tls-key=${path.join(tmp, 'store.key')}`,
    `--grpc-server-tls-client-ca=${C('ca.crt')}`], { ORRERY_TLS_RELOAD_INTERVAL_MS: '500' });
  const ps = start(orrery, ['store', objstore, `--data-dir=${path.join(tmp, 'ds-plain')}`,
    `--grpc-address=127.0.0.1:${pPort}`, '--http-address=127.0.0.1:0']);
  await ts.waitLine('stderr', /listening for StoreAPI gRPC/, 60000);
  await ps.waitLine('stderr', /listening for StoreAPI gRPC/, 60000);

  // ---- 0. bad TLS settings: a non-zero exit and a message naming the problem
  const cli = (args) => spawnSync(orrery, args, { timeout: 60000 });
  const badCases = [
    [['store', objstore, `--data-dir=${path.join(tmp, 'dbad')}`, '--http-address=127.0.0.1:0',
      '--grpc-address=127.0.0.1:0', `--grpc-server-tls-cert=${C('server.crt')}`], /needs both --grpc-server-tls-cert and --grpc-server-tls-key/],
    [['store', objstore, `--data-dir=${path.join(tmp, 'dbad')}`, '--http-address=127.0.0.1:0',
      '--grpc-address=127.0.0.1:0', `--grpc-server-tls-cert=${C('server.crt')}`,
      `--grpc-server-tls-key=${C('client.key')}`], /cannot set up TLS for the gRPC server.*key/],
    [['store', objstore, `--data-dir=${path.join(tmp, 'dbad')}`, '--http-address=127.0.0.1:0',
      '--grpc-address=127.0.0.1:0', `--grpc-server-tls-cert=${C('server.crt')}`,
      `--grpc-server-tls-key=${C('server.key')}`, '--grpc-server-tls-min-version=1.4'], /unknown TLS version 1.4/],
    [['gateway', '--http-address=127.0.0.1:0', '--grpc-address=127.0.0.1:0',
      '--endpoint.sd-config=endpoints: [{address: a:1, tls_config: {ca_fil: x}}]'], /endpoint config: tls_config: unknown field ca_fil/],
    [['gateway', '--http-address=127.0.0.1:0', '--grpc-address=127.0.0.1:0', '--grpc-client-tls-secure',
      `--grpc-client-tls-ca=${path.join(tmp, 'nope.crt')}`], /cannot load the CA/],
  ];
  for (const [args, want] of badCases) {
    const r = cli(args);
    const err = r.stderr.toString();
    check(r.status === 1 && want.test(err), `bad settings refused: ${want}`, [r.status, err.slice(-300)]);
  }

  // ---- 1. grpc-js client -> orrery store over mTLS
  const opts = { 'grpc.ssl_target_name_override': 'localhost' };
  const mtls = (caF, keyF, crtF) => grpc.credentials.createSsl(rd(certs, caF),
    keyF ? rd(certs, keyF) : null, crtF ? rd(certs, crtF) : null);
  const good = mtls('ca.crt', 'client.key', 'client.crt');
  const plainStore = new pkg.thanos.Store(`127.0.0.1:${pPort}`, grpc.credentials.createInsecure());
  const plainInfo = new pkg.thanos.info.Info(`127.0.0.1:${pPort}`, grpc.credentials.createInsecure());
  const tlsStore = new pkg.thanos.Store(`127.0.0.1:${tPort}`, good, opts);
  const tlsInfo = new pkg.thanos.info.Info(`127.0.0.1:${tPort}`, good, opts);
  let r = await unary(tlsInfo, 'Info', {});
  const p0 = await unary(plainInfo, 'Info', {});
  check(!r.err && r.rep.ComponentType === 'store' && lset(r.rep.label_sets[0].labels) === 'fixture=1' &&
    JSON.stringify(r.rep) === JSON.stringify(p0.rep), 'mTLS: grpc-js Info from the store, as in plaintext',
  r.err ? r.err.message : r.rep);
  const sT = await series(tlsStore, ALL), sP = await series(plainStore, ALL);
  check(!sT.err && sT.series.length === 20 && JSON.stringify(sT.series.map(seriesStr)) ===
    JSON.stringify(sP.series.map(seriesStr)), 'mTLS: grpc-js Series: 20 series, chunks as in plaintext',
  sT.err ? sT.err.message : sT.series.length);
  tlsStore.close();
  tlsInfo.close();

  const refused = [
    ['no client certificate', mtls('ca.crt'), /peer did not return a certificate/],
    ['a certificate from another CA', mtls('ca.crt', 'otherclient.key', 'otherclient.crt'), /unable to get local issuer certificate/],
    ['an expired certificate', mtls('ca.crt', 'expired.key', 'expired.crt'), /certificate has expired/],
    ['plaintext', grpc.credentials.createInsecure(), /./],
  ];
  for (const [what, creds, why] of refused) {
    const from = ts.lines.stderr.length;
    // grpc-js's own subchannel: a background reconnect of an earlier
    // refused channel may still add its (own, distinct) line
    const c = new pkg.thanos.info.Info(`127.0.0.1:${tPort}`, creds,
      { ...opts, 'grpc.use_local_subchannel_pool': 1 });
    const x = await unary(c, 'Info', {});
    c.close();
    check(x.err && x.err.code === grpc.status.UNAVAILABLE, `refused: ${what} (UNAVAILABLE)`, x.err ? x.err.message : 'answered');
    await ts.waitLine('stderr', /msg="TLS handshake failed"/, 10000, from).catch(() => null);
    await sleep(300); // a second line for the same connection would come now
    const lines = refusals(ts, from);
    const peers = lines.map((l) => (l.match(/ client=(\S+)/) || [])[1]);
    check(lines.length >= 1 && peers.every((p) => /^127\.0\.0\.1:\d+$/.test(p)) &&
      new Set(peers).size === peers.length && lines.every((l) => /level=warn/.test(l)) &&
      lines.some((l) => why.test(l)),
    `refused: ${what}: logged once per connection at warn with the client address`, lines);
  }

  // ---- 2. orrery gateway -> grpc-js server over mTLS (the other CA)
  const rPort = await freePort();
  const relay = new grpc.Server();
  let relayed = 0;
  relay.addService(pkg.thanos.Store.service, {
    Series: (call) => {
      relayed++;
      const up = plainStore.Series(call.request);
      up.on('data', (d) => call.write(d));
      up.on('end', () => call.end());
      up.on('error', (e) => call.destroy(e));
    },
    LabelNames: (call, cb) => plainStore.LabelNames(call.request, cb),
    LabelValues: (call, cb) => plainStore.LabelValues(call.request, cb),
  });
  relay.addService(pkg.thanos.info.Info.service, { Info: (call, cb) => plainInfo.Info(call.request, cb) });
  await new Promise((resolve, reject) => relay.bindAsync(`127.0.0.1:${rPort}`,
    grpc.ServerCredentials.createSsl(rd(certs, 'otherca.crt'),
      [{ cert_chain: rd(certs, 'otherserver.crt'), private_key: rd(certs, 'otherserver.key') }], true),
    (e) => (e ? reject(e) : resolve())));

  const epcfg = (ca) => `endpoints:\n  - address: 127.0.0.1:${rPort}\n    tls_config:\n      ca_file: ${C(ca)}\n` +
    `      cert_file: ${C('otherclient.crt')}\n      key_file: ${C('otherclient.key')}\n`;
  const [g1, g2, g3] = [await freePort(), await freePort(), await freePort()];
  const gw1 = start(orrery, ['gateway', `--http-address=127.0.0.1:${g1}`, '--grpc-address=127.0.0.1:0',
    `--endpoint=localhost:${tPort}`, '--grpc-client-tls-secure', `--grpc-client-tls-ca=${C('ca.crt')}`,
    `--grpc-client-tls-cert=${C('client.crt')}`, `--grpc-client-tls-key=${C('client.key')}`]);
  const gw2 = start(orrery, ['gateway', `--http-address=127.0.0.1:${g2}`, '--grpc-address=127.0.0.1:0',
    `--endpoint.sd-config=${epcfg('otherca.crt')}`]);
  const gw3 = start(orrery, ['gateway', `--http-address=127.0.0.1:${g3}`, '--grpc-address=127.0.0.1:0',
    `--endpoint.sd-config=${epcfg('ca.crt')}`]);
  const up1 = await waitStoreUp(g1, 30000), up2 = await waitStoreUp(g2, 30000);
  check(/"lastError":null/.test(up1.body) && /"lastError":null/.test(up2.body),
    'gateways: the mTLS store (--grpc-client-tls-*) and the grpc-js server (--endpoint.sd-config) are up',
    [up1.body, up2.body]);
  const q = 'sum by (job) (fixture_metric)';
  const a1 = await gatewayQuery(g1, q), a2 = await gatewayQuery(g2, q);
  check(a1.status === 200 && a1.body.data.result.length === 10 &&
    JSON.stringify(a1.body) === JSON.stringify(a2.body) && relayed > 0,
  'gateway over mTLS to grpc-js answers as the gateway over mTLS to the store', [a1.body, a2.body, relayed]);
  await gw3.waitLine('stderr', /msg="TLS handshake failed" server=127\.0\.0\.1:\d+ err="[^"]*certificate/, 30000)
    .then(() => check(true, 'gateway with the wrong CA: the TLS failure is logged with the server address'))
    .catch((e) => check(false, 'gateway with the wrong CA: the TLS failure is logged with the server address', e.message));
  const stores3 = await httpGet(`http://127.0.0.1:${g3}/api/v1/stores`, 5000);
  check(/TLS handshake failed/.test(stores3.body), 'gateway with the wrong CA: the endpoint is down with a TLS error', stores3.body);
  stop(gw2);
  stop(gw3);

  // ---- 3. certificate swapped on disk; no query dropped meanwhile
  const serial = (f) => execFileSync('openssl', ['x509', '-in', f, '-noout', '-serial']).toString().trim().split('=')[1];
  const peerSerial = () => new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: tPort, servername: 'localhost', ca: rd(certs, 'ca.crt'),
      key: rd(certs, 'client.key'), cert: rd(certs, 'client.crt'), ALPNProtocols: ['h2'] }, () => {
      const sn = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(sn);
    });
    s.on('error', (e) => resolve('error: ' + e.message));
  });
  const oldSerial = serial(C('server.crt')), newSerial = serial(C('server2.crt'));
  check((await peerSerial()) === oldSerial, 'reload: the store serves its first certificate', oldSerial);
  let queries = 0, bad = 0, running = true;
  const loop = (async () => {
    while (running) {
      const x = await gatewayQuery(g1, q);
      queries++;
      if (x.status !== 200 || x.body.data.result.length !== 10) bad++;
    }
  })();
  await sleep(300);
  // new files land by rename: a reader never sees half a file
  fs.copyFileSync(C('server2.key'), path.join(tmp, 'store.key.new'));
  fs.copyFileSync(C('server2.crt'), path.join(tmp, 'store.crt.new'));
  fs.renameSync(path.join(tmp, 'store.key.new'), path.join(tmp, 'store.key'));
  fs.renameSync(path.join(tmp, 'store.crt.new'), path.join(tmp, 'store.crt'));
  const t0 = Date.now();
  let got = '';
  while (Date.now() - t0 < 15000 && (got = await peerSerial()) !== newSerial) await sleep(200);
  check(got === newSerial, `reload: new connections get the new certificate (after ${Date.now() - t0} ms)`, [got, newSerial]);
  await sleep(500);
  running = false;
  await loop;
  check(queries > 3 && bad === 0, `reload: no query dropped during the swap (${queries} queries)`, bad);
  stop(gw1);

  // ---- 5. one gateway, two stores over mTLS with different CAs and one in
  // plaintext (--endpoint.sd-config), answers as a gateway over the same
  // buckets all in plaintext
  const b2 = path.join(tmp, 'bucket2'), b3 = path.join(tmp, 'bucket3');
  fs.mkdirSync(b2);
  fs.mkdirSync(b3);
  execFileSync(fixture, [b2, '30', '3', '8'], { stdio: 'ignore' });
  execFileSync(fixture, [b3, '10', '1', '16'], { stdio: 'ignore' });
  const os2 = `--objstore.config=type: FILESYSTEM\nconfig:\n  directory: ${b2}\n`;
  const os3 = `--objstore.config=type: FILESYSTEM\nconfig:\n  directory: ${b3}\n`;
  const [s2, p2, s3] = [await freePort(), await freePort(), await freePort()];
  const st2 = start(orrery, ['store', os2, `--data-dir=${path.join(tmp, 'ds2')}`, `--grpc-address=127.0.0.1:${s2}`,
    '--http-address=127.0.0.1:0', `--grpc-server-tls-cert=${C('otherserver.crt')}`,
    `--grpc-server-tls-key=${C('otherserver.key')}`, `--grpc-server-tls-client-ca=${C('otherca.crt')}`]);
  const pt2 = start(orrery, ['store', os2, `--data-dir=${path.join(tmp, 'dp2')}`, `--grpc-address=127.0.0.1:${p2}`,
    '--http-address=127.0.0.1:0']);
  const st3 = start(orrery, ['store', os3, `--data-dir=${path.join(tmp, 'ds3')}`, `--grpc-address=127.0.0.1:${s3}`,
    '--http-address=127.0.0.1:0']);
  for (const p of [st2, pt2, st3]) await p.waitLine('stderr', /listening for StoreAPI gRPC/, 60000);
  const mixed = `endpoints:
  - address: localhost:${tPort}
    tls_config: {ca_file: ${C('ca.crt')}, cert_file: ${C('client.crt')}, key_file: ${C('client.key')}}
  - address: 127.0.0.1:${s2}
    tls_config: {ca_file: ${C('otherca.crt')}, cert_file: ${C('otherclient.crt')}, key_file: ${C('otherclient.key')}, server_name: orrery.test}
  - address: 127.0.0.1:${s3}
`;
  const [gt, gr] = [await freePort(), await freePort()];
  const gwT = start(orrery, ['gateway', `--http-address=127.0.0.1:${gt}`, '--grpc-address=127.0.0.1:0',
    `--endpoint.sd-config=${mixed}`]);
  const gwR = start(orrery, ['gateway', `--http-address=127.0.0.1:${gr}`, '--grpc-address=127.0.0.1:0',
    `--endpoint=127.0.0.1:${pPort}`, `--endpoint=127.0.0.1:${p2}`, `--endpoint=127.0.0.1:${s3}`]);
  const upAll = async (port) => {
    const end = Date.now() + 30000;
    let b = '';
    while (Date.now() < end) {
      b = (await httpGet(`http://127.0.0.1:${port}/api/v1/stores`, 5000)).body;
      if ((b.match(/"lastError":null/g) || []).length === 3 && !/"unknown"/.test(b)) return b;
      await sleep(200);
    }
    return b;
  };
  const bT = await upAll(gt), bR = await upAll(gr);
  check((bT.match(/"lastError":null/g) || []).length === 3 && (bR.match(/"lastError":null/g) || []).length === 3,
    'mixed: the gateway reaches two mTLS stores (two CAs) and a plaintext one', bT);
  const rangeQ = async (port, qq) => {
    const u = `http://127.0.0.1:${port}/api/v1/query_range?query=${encodeURIComponent(qq)}` +
      `&start=${BASE / 1000}&end=${BASE / 1000 + 6 * 3600}&step=600`;
    return (await httpGet(u, 20000)).body;
  };
  const qs = ['fixture_metric', 'sum by (job) (fixture_metric)', 'count(fixture_metric)',
    'max_over_time(fixture_metric[1h])', 'topk(3, fixture_metric)', 'rate(fixture_metric[2h])',
    'count by (instance) (fixture_metric)'];
  let same = 0;
  const diffs = [];
  for (const qq of qs) {
    const [x, y] = [await rangeQ(gt, qq), await rangeQ(gr, qq)];
    if (x === y && /"status":"success"/.test(x) && /"values"/.test(x)) same++;
    else diffs.push([qq, x.slice(0, 300), y.slice(0, 300)]);
  }
  check(same === qs.length, `mixed: ${same}/${qs.length} range queries answer as the all-plaintext gateway`, diffs);
  for (const p of [gwT, gwR, st2, pt2, st3]) stop(p);

  // ---- 4. HTTPS through net_http_server_set_tls
  const ePort = await freePort();
  const echo = start(echoServer, [`127.0.0.1:${ePort}`], {
    ECHO_TLS_CERT: C('server.crt'), ECHO_TLS_KEY: C('server.key') });
  await echo.waitLine('stderr', /msg=ready/, 20000);
  const cr = spawnSync(curl, ['-sS', '--cacert', C('ca.crt'), `https://localhost:${ePort}/echo?a=1`]);
  check(cr.status === 0 && cr.stdout.toString() === 'GET /echo\na=1\n', 'HTTPS: curl --cacert gets the answer',
    cr.stdout.toString() + cr.stderr.toString());
  const cr2 = spawnSync(curl, ['-sS', '--cacert', C('otherca.crt'), `https://localhost:${ePort}/echo`]);
  check(cr2.status !== 0, 'HTTPS: curl trusting another CA refuses the server', cr2.status);
  await new Promise((res) => relay.tryShutdown(res));
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'orrery-tls-'));
  try {
    await run(tmp);
  } catch (e) {
    check(false, 'no exception', e.stack);
  } finally {
    for (const p of procs) stop(p);
    await Promise.all(procs.map((p) => p.waitExit(10000).catch(() => {
      try { process.kill(p.proc.pid, 'SIGKILL'); } catch (e) { /* gone */ }
    })));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(failed() ? 1 : 0);
}
main();
