// daemon_conn_memory.js: memory per open gRPC connection, and memory given
// back once connections close (issue 10, item 9). A gateway (no endpoints:
// its gRPC server is the one every daemon uses) takes 2,000 HTTP/2
// connections, each with one Info call answered; RSS is read from
// /proc/PID/status. Asserted: at most MAX_KB_PER_CONN KiB per open
// connection, and after all 2,000 close, RSS within RETURN_SLACK_KB of where
// it was before they opened (the daemon gives the memory back).
// Usage: node daemon_conn_memory.js ORRERY [N]
'use strict';
const fs = require('fs');
const { check, failed, freePort, startProcess, httpGet } = require('../../node/grpc_common.js');
const h2 = require('./h2raw.js');

const [orrery, nArg] = process.argv.slice(2);
const N = Number(nArg || 2000);
const MAX_KB_PER_CONN = Number(process.env.MAX_KB_PER_CONN || 24);
const RETURN_SLACK_KB = Number(process.env.RETURN_SLACK_KB || 8192);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function rssKb(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) : -1;
}
// Value of an unlabelled gauge in a /metrics text.
function gauge(text, name) {
  const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

// Opens one connection and makes one Info call; resolves when the answer's
// trailers (grpc-status) came back, keeping the connection open.
function openOne(port) {
  return h2.connect(port).then((sock) => new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no Info answer in 20 s')), 20000);
    sock.on('data', (d) => {
      got = Buffer.concat([got, d]);
      // Walk frames: done at a HEADERS frame with END_STREAM on stream 1.
      let off = 0;
      while (off + 9 <= got.length) {
        const len = got.readUIntBE(off, 3);
        if (off + 9 + len > got.length) break;
        const type = got[off + 3], flags = got[off + 4], sid = got.readUInt32BE(off + 5) & 0x7fffffff;
        if (type === 4 && !(flags & 1)) sock.write(h2.frame(4, 1, 0, Buffer.alloc(0))); // SETTINGS ACK
        if (type === 1 && sid === 1 && (flags & 1)) {
          clearTimeout(timer);
          sock.removeAllListeners('data');
          resolve(sock);
          return;
        }
        off += 9 + len;
      }
    });
    h2.startCall(sock, 1, port, '/thanos.info.Info/Info', h2.grpcMessage(Buffer.alloc(0)));
  }));
}

async function main() {
  let gw;
  const socks = [];
  try {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    gw = startProcess(orrery, ['gateway', `--grpc-address=127.0.0.1:${grpcPort}`,
      `--http-address=127.0.0.1:${httpPort}`]);
    await gw.waitLine('stderr', /msg=listening component=gateway/, 30000);
    const pid = gw.proc.pid;
    // Warm up (first connections allocate the server's shared state).
    for (let i = 0; i < 20; i++) (await openOne(grpcPort)).destroy();
    const metricsUrl = `http://127.0.0.1:${httpPort}/metrics`;
    const fds0 = gauge((await httpGet(metricsUrl)).body, 'process_open_fds');
    await sleep(300); // closes are processed by the daemon's loop
    const base = rssKb(pid);
    for (let i = 0; i < N; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + 100); j++) batch.push(openOne(grpcPort));
      socks.push(...await Promise.all(batch));
    }
    const open = rssKb(pid);
    const perConn = (open - base) / N;
    console.log(`RSS: ${base} KiB before, ${open} KiB with ${N} open gRPC connections: ${perConn.toFixed(1)} KiB per connection`);
    check(perConn <= MAX_KB_PER_CONN, `at most ${MAX_KB_PER_CONN} KiB RSS per open gRPC connection (${perConn.toFixed(1)})`);
    for (const s of socks) s.destroy();
    // Wait until the daemon has seen every close (its open fds drop back).
    const end = Date.now() + 30000;
    let fds = -1;
    while (Date.now() < end) {
      fds = gauge((await httpGet(metricsUrl)).body, 'process_open_fds');
      if (fds <= fds0 + 5) break;
      await sleep(100); // polling the daemon's open fds
    }
    check(fds <= fds0 + 5, `the daemon closed the ${N} connections (open fds back to ${fds}, ${fds0} before)`);
    await sleep(1500); // the daemon trims after a burst of closes, on its next sweep
    const after = rssKb(pid);
    console.log(`RSS: ${after} KiB after the ${N} connections closed (before: ${base} KiB, open: ${open} KiB)`);
    check(after - base <= RETURN_SLACK_KB, `memory given back after ${N} closes (${after} KiB vs ${base} KiB before)`);
    const r = await httpGet(`http://127.0.0.1:${httpPort}/-/healthy`);
    check(r.status === 200, 'the gateway is healthy afterwards');
  } catch (e) {
    check(false, 'no exception', e.stack);
  } finally {
    for (const s of socks) s.destroy();
    if (gw) try { process.kill(gw.proc.pid, 'SIGKILL'); } catch (e) { /* gone */ }
  }
  process.exit(failed() ? 1 : 0);
}
main();
