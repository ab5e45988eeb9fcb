// grpc_node_client.js: @grpc/grpc-js as the client of our gRPC server
// (tests/integration/grpc/grpc_test_server.c): unary, status messages,
// many streamed messages, deadline, cancellation, unknown method, message
// size limit, and a 100 MiB stream to a slow reader with the server's peak
// RSS bounded. Usage: node grpc_node_client.js SERVER_BIN PROTO
'use strict';
const { load, check, failed, startProcess, vmHwmKb } = require('./grpc_common.js');

const [serverBin, protoPath] = process.argv.slice(2);
const { grpc, proto } = load(protoPath);

function unary(client, req, opts = {}) {
  return new Promise((resolve) => {
    client.Unary(req, new grpc.Metadata(), opts, (err, rep) => resolve({ err, rep }));
  });
}

// Collects a server stream; |onData(chunk, call)| may pause, resume or cancel.
function stream(client, req, opts = {}, onData = null) {
  return new Promise((resolve) => {
    const call = client.Stream(req, new grpc.Metadata(), opts);
    const out = { chunks: 0, bytes: 0, seqOk: true, err: null };
    call.on('data', (ch) => {
      if (ch.seq !== out.chunks) out.seqOk = false;
      out.chunks++;
      out.bytes += ch.payload.length;
      if (onData) onData(ch, call, out);
    });
    call.on('error', (e) => { out.err = e; });
    call.on('status', (st) => { out.status = st; setImmediate(() => resolve(out)); });
  });
}

async function main() {
  const srv = startProcess(serverBin, ['--port=0', '--max-recv-bytes=1MiB']);
  const m = await srv.waitLine('stdout', /^listening port=(\d+)/, 10000);
  const port = Number(m[1]);
  const pid = srv.proc.pid;
  const client = new proto.orrery.test.Echo(`127.0.0.1:${port}`,
    grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 8 << 20 });
  try {
    // Unary.
    let r = await unary(client, { payload: Buffer.from('hello orrery') });
    check(!r.err && r.rep.payload.toString() === 'hello orrery', 'unary echo', r.err && r.err.message);

    // Status and message with special characters.
    const msg = 'no such series: {job="a"} 100% \u00fc\r\n\u2713';
    r = await unary(client, { status: 9, message: msg });
    check(r.err && r.err.code === grpc.status.FAILED_PRECONDITION, 'status code propagated',
      r.err && r.err.code);
    check(r.err && r.err.details === msg, 'status message propagated', r.err && r.err.details);

    // Many streamed messages, in order.
    let s = await stream(client, { count: 10000, size: 100 });
    check(!s.err && s.chunks === 10000 && s.bytes === 1000000 && s.seqOk,
      'server streaming 10000 messages', { chunks: s.chunks, err: s.err && s.err.message });

    // Deadline: the handler would answer after 3 s.
    let t0 = Date.now();
    r = await unary(client, { delay_ms: 3000 }, { deadline: Date.now() + 300 });
    check(r.err && r.err.code === grpc.status.DEADLINE_EXCEEDED, 'unary deadline exceeded',
      r.err && r.err.code);
    check(Date.now() - t0 < 2500, 'deadline did not wait for the handler', Date.now() - t0);
    await srv.waitLine('stderr', /call cancelled.*kind=unary.*status=(DEADLINE_EXCEEDED|CANCELLED)/, 5000);
    check(true, 'server handler saw the deadline');

    // Deadline while streaming.
    s = await stream(client, { count: 0, size: 10, interval_ms: 10 }, { deadline: Date.now() + 300 });
    check(s.err && s.err.code === grpc.status.DEADLINE_EXCEEDED && s.chunks > 0,
      'streaming deadline exceeded', { code: s.err && s.err.code, chunks: s.chunks });

    // Cancellation mid-stream: our handler's cancel callback runs.
    const before = srv.lines.stderr.length;
    s = await stream(client, { count: 0, size: 100, interval_ms: 2 }, {}, (ch, call, out) => {
      if (out.chunks === 5) call.cancel();
    });
    check(s.err && s.err.code === grpc.status.CANCELLED, 'client cancel', s.err && s.err.code);
    await srv.waitLine('stderr', /call cancelled.*kind=stream.*status=CANCELLED/, 5000, before);
    check(true, 'server handler saw the cancel');

    // Unknown method.
    r = await new Promise((resolve) => client.makeUnaryRequest('/orrery.test.Echo/Nope',
      (x) => x, (x) => x, Buffer.alloc(0), (err) => resolve({ err })));
    check(r.err && r.err.code === grpc.status.UNIMPLEMENTED, 'unknown method is UNIMPLEMENTED',
      r.err && r.err.code);

    // Request over the server's 1 MiB limit.
    r = await unary(client, { payload: Buffer.alloc(2 << 20, 120) });
    check(r.err && r.err.code === grpc.status.RESOURCE_EXHAUSTED, 'max message size',
      r.err && r.err.code);
    r = await unary(client, { payload: Buffer.from('still fine') });
    check(!r.err, 'connection still serves calls', r.err && r.err.message);

    // 100 MiB to a slow reader: pauses 1 s at the start, then 100 ms every
    // 100 messages (64 KiB each). The server must not buffer it.
    const hwmBefore = vmHwmKb(pid);
    t0 = Date.now();
    let maxHwm = 0;
    s = await stream(client, { count: 1600, size: 65536 }, {}, (ch, call, out) => {
      if (out.chunks === 1 || out.chunks % 100 === 0) {
        call.pause();
        setTimeout(() => { maxHwm = Math.max(maxHwm, vmHwmKb(pid)); call.resume(); },
          out.chunks === 1 ? 1000 : 100);
      }
    });
    const secs = (Date.now() - t0) / 1000;
    const hwm = Math.max(maxHwm, vmHwmKb(pid));
    check(!s.err && s.chunks === 1600 && s.bytes === 1600 * 65536 && s.seqOk,
      '100 MiB stream to a slow reader', { chunks: s.chunks, err: s.err && s.err.message });
    console.log(`info 100 MiB stream: ${secs.toFixed(2)} s, server VmHWM ${hwmBefore} kB before,` +
      ` ${hwm} kB after`);
    check(hwm < 60 * 1024, 'server peak RSS < 60 MB while streaming 100 MiB', hwm);

    // Stress: 300 calls at once — unary calls racing their deadlines, streams
    // cancelled after a few messages, streams that finish. Afterwards every
    // handler the server started has either finished or been cancelled.
    const jobs = [];
    let okCalls = 0;
    for (let i = 0; i < 300; i++) {
      if (i % 3 === 0) {
        jobs.push(unary(client, { payload: Buffer.from(`p${i}`), delay_ms: i % 40 },
          { deadline: Date.now() + 5 + (i * 7) % 60 }).then((x) => {
          if (!x.err || x.err.code === grpc.status.DEADLINE_EXCEEDED) okCalls++;
        }));
      } else if (i % 3 === 1) {
        jobs.push(stream(client, { count: 0, size: 500, interval_ms: 1 }, {}, (ch, call, out) => {
          if (out.chunks === 1 + (i % 7)) call.cancel();
        }).then((x) => { if (x.err && x.err.code === grpc.status.CANCELLED) okCalls++; }));
      } else {
        jobs.push(stream(client, { count: 100, size: 2000 }).then((x) => {
          if (!x.err && x.chunks === 100) okCalls++;
        }));
      }
    }
    await Promise.all(jobs);
    check(okCalls === 300, '300 concurrent calls end as expected', okCalls);
    let settled = null;
    for (let i = 0; i < 100 && !settled; i++) {
      const from = srv.lines.stdout.length;
      srv.proc.kill('SIGUSR1');
      const sm = await srv.waitLine('stdout', /^stats started=(\d+) finished=(\d+) cancelled=(\d+)/,
        5000, from);
      if (Number(sm[1]) === Number(sm[2]) + Number(sm[3])) settled = sm;
      else await new Promise((r) => setTimeout(r, 50));
    }
    check(settled !== null, 'every started handler finished or was cancelled',
      srv.lines.stdout[srv.lines.stdout.length - 1]);
  } finally {
    client.close();
    srv.proc.kill('SIGTERM');
  }
  const st = await srv.waitLine('stdout', /^stats (.*)/, 10000);
  console.log(`info server ${st[1]}`);
  const cancelled = Number((st[1].match(/cancelled=(\d+)/) || [0, -1])[1]);
  check(cancelled >= 3, 'server counted the cancels (deadline x2, cancel)', cancelled);
  const ex = await srv.waitExit(10000);
  check(ex.code === 0, 'server exited cleanly after SIGTERM', ex);
}

main().then(() => process.exit(failed() ? 1 : 0), (e) => {
  console.log(`FAIL ${e.stack}`);
  process.exit(1);
});
