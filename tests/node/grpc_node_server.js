// grpc_node_server.js: @grpc/grpc-js as the server for our gRPC client
// (tests/integration/grpc/grpc_test_client.c, one process per case):
// unary, streaming, deadlines, cancellation, status with special
// characters, a paused reader, unknown method.
// Usage: node grpc_node_server.js CLIENT_BIN PROTO
'use strict';
const { execFile } = require('child_process');
const { load, check, failed } = require('./grpc_common.js');

const [clientBin, protoPath] = process.argv.slice(2);
const { grpc, proto } = load(protoPath);

let cancels = 0;
const seenCases = [];

const impl = {
  Unary(call, cb) {
    const r = call.request;
    seenCases.push(call.metadata.get('x-orrery-case')[0]);
    const go = () => {
      if (r.status) cb({ code: r.status, details: r.message });
      else cb(null, { payload: r.payload });
    };
    if (r.delay_ms > 0) {
      const t = setTimeout(go, r.delay_ms);
      call.on('cancelled', () => { clearTimeout(t); cancels++; });
    } else {
      go();
    }
  },
  Stream(call) {
    const r = call.request;
    const payload = Buffer.alloc(r.size, 'a');
    let seq = 0;
    let timer = null;
    let cancelled = false;
    call.on('cancelled', () => { cancelled = true; cancels++; clearTimeout(timer); });
    const pump = () => {
      if (cancelled) return;
      while (r.count === 0 || seq < r.count) {
        const ok = call.write({ seq: seq++, payload });
        if (r.interval_ms > 0) { timer = setTimeout(pump, r.interval_ms); return; }
        if (!ok) { call.once('drain', pump); return; }
      }
      call.end();
    };
    timer = setTimeout(pump, r.delay_ms || 0);
  },
};

function runCase(port, name) {
  return new Promise((resolve) => {
    execFile(clientBin, [`--port=${port}`, `--case=${name}`], { timeout: 30000 },
      (err, stdout, stderr) => {
        if (err) { resolve({ error: err.message, stderr }); return; }
        try { resolve(JSON.parse(stdout)); } catch (e) { resolve({ error: 'bad output', stdout }); }
      });
  });
}

async function waitFor(pred, ms) {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return pred();
}

async function main(port) {
  let r = await runCase(port, 'unary');
  check(r.status === 0 && r.msgs === 1 && r.payload === 'hello from orrery' && r.done_calls === 1,
    'unary', r);
  check(seenCases.includes('unary'), 'metadata reached the server', seenCases);

  r = await runCase(port, 'stream');
  check(r.status === 0 && r.msgs === 1000 && r.bytes === 1000000 && r.seq_ok, 'streaming', r);

  let c0 = cancels;
  r = await runCase(port, 'deadline');
  check(r.status === 4 && r.elapsed_ms >= 250 && r.elapsed_ms < 3000, 'unary deadline', r);
  check(await waitFor(() => cancels > c0, 3000), 'server saw the deadline as a cancel', cancels);

  c0 = cancels;
  r = await runCase(port, 'stream_deadline');
  check(r.status === 4 && r.msgs > 0, 'streaming deadline', r);
  check(await waitFor(() => cancels > c0, 3000), 'server stream saw the deadline', cancels);

  c0 = cancels;
  r = await runCase(port, 'cancel');
  check(r.status === 1 && r.msgs === 5, 'cancel after 5 messages', r);
  check(await waitFor(() => cancels > c0, 3000), 'server saw the cancel', cancels);

  r = await runCase(port, 'status');
  check(r.status === 9 && r.message === 'bad: \u00fc 100%\r\n{x="y"} \u2713',
    'status and message with special characters', r);

  r = await runCase(port, 'paused');
  check(r.status === 0 && r.msgs === 200 && r.bytes === 200 * 65536 && r.seq_ok,
    'paused reader gets everything after resuming', r);

  r = await runCase(port, 'unimplemented');
  check(r.status === 12, 'unknown method is UNIMPLEMENTED', r);
}

const server = new grpc.Server();
server.addService(proto.orrery.test.Echo.service, impl);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) { console.log(`FAIL bind: ${err.message}`); process.exit(1); }
  main(port).then(() => {
    server.forceShutdown();
    process.exit(failed() ? 1 : 0);
  }, (e) => {
    console.log(`FAIL ${e.stack}`);
    process.exit(1);
  });
});
