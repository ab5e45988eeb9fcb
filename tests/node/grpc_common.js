// grpc_common.js: shared helpers of the gRPC interop drivers — loading
// grpc-js and the test proto, starting a process and waiting for a line,
// small assertions that count failures, and free ports for test daemons.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');

function load(protoPath) {
  let grpc, protoLoader;
  try {
    grpc = require('@grpc/grpc-js');
    protoLoader = require('@grpc/proto-loader');
  } catch (e) {
    console.error('SKIP: @grpc/grpc-js not installed (run scripts/bootstrap.sh)');
    process.exit(77);
  }
  const def = protoLoader.loadSync(protoPath, {
    keepCase: true, longs: Number, defaults: true, oneofs: true,
  });
  return { grpc, proto: grpc.loadPackageDefinition(def) };
}

let failures = 0;
function check(cond, what, detail) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures++;
    console.log(`FAIL ${what}${detail !== undefined ? ': ' + JSON.stringify(detail) : ''}`);
  }
}
function failed() { return failures; }

// Every process startProcess started and not yet seen exit: killed (SIGKILL)
// when this test process exits, on every path — a failed check, an
// exception, or a child still in its SIGTERM shutdown — so no Prometheus or
// daemon outlives its test.
const children = new Set();
process.on('exit', () => {
  for (const c of children) { try { c.kill('SIGKILL'); } catch (e) { /* gone */ } }
});

// Starts |bin| with |args| (and |env| added to the environment, if given);
// collects stdout and stderr lines so a test can wait for one (readiness,
// log events) instead of sleeping.
function startProcess(bin, args, env) {
  const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'],
    env: env ? { ...process.env, ...env } : process.env });
  children.add(p);
  const lines = { stdout: [], stderr: [] };
  const waiters = [];
  const feed = (name) => {
    let partial = '';
    p[name].on('data', (d) => {
      partial += d.toString();
      let i;
      while ((i = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        lines[name].push(line);
        if (process.env.GRPC_TEST_VERBOSE) console.log(`[${name}] ${line}`);
        for (const w of waiters.slice()) w();
      }
    });
  };
  feed('stdout');
  feed('stderr');
  let exited = null;
  const exitWaiters = [];
  p.on('exit', (code, sig) => {
    children.delete(p);
    exited = { code, sig };
    for (const w of exitWaiters) w();
    for (const w of waiters.slice()) w();
  });
  // Resolves with the match of the first line of |stream| (from line |from|)
  // matching |re|; rejects after |ms| or when the process exits.
  function waitLine(stream, re, ms, from = 0) {
    return new Promise((resolve, reject) => {
      let timer;
      const w = () => {
        for (let i = from; i < lines[stream].length; i++) {
          const m = lines[stream][i].match(re);
          if (m) {
            waiters.splice(waiters.indexOf(w), 1);
            clearTimeout(timer);
            resolve(m);
            return;
          }
        }
        if (exited) {
          waiters.splice(waiters.indexOf(w), 1);
          clearTimeout(timer);
          reject(new Error(`process exited (${JSON.stringify(exited)}) before ${re}`));
        }
      };
      timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`timed out waiting for ${re} on ${stream}`));
      }, ms);
      waiters.push(w);
      w();
    });
  }
  function waitExit(ms) {
    return new Promise((resolve, reject) => {
      if (exited) return resolve(exited);
      const t = setTimeout(() => reject(new Error('process did not exit')), ms);
      exitWaiters.push(() => { clearTimeout(t); resolve(exited); });
    });
  }
  return { proc: p, lines, waitLine, waitExit };
}

// Peak resident set (VmHWM) of process |pid| in KiB, from /proc.
function vmHwmKb(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = s.match(/^VmHWM:\s+(\d+) kB/m);
  return m ? Number(m[1]) : -1;
}

// A free port drawn below the kernel's ephemeral range (where outgoing
// connections and port-0 binds of tests running in parallel land), handed
// out once per process (as tests/integration/portpick.py).
const givenPorts = new Set();
function freePort() {
  return new Promise((resolve, reject) => {
    const attempt = (left) => {
      if (left === 0) { reject(new Error('no free TCP port in 20000-32000')); return; }
      const p = 20000 + Math.floor(Math.random() * 12000);
      if (givenPorts.has(p)) { attempt(left - 1); return; }
      const s = net.createServer();
      s.once('error', () => attempt(left - 1));
      s.listen(p, '127.0.0.1', () => s.close(() => { givenPorts.add(p); resolve(p); }));
    };
    attempt(1000);
  });
}

// GET |url|; resolves {status, body} (status 0 with the error as body when
// the request fails; with |timeoutMs|, a request still open then fails).
function httpGet(url, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    if (timeoutMs) req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
  });
}

// Polls a readiness endpoint until it answers 200 (true) or |ms| passed (false).
async function waitReady(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await httpGet(url);
    if (r.status === 200) return true;
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return false;
}

module.exports = { load, check, failed, freePort, startProcess, vmHwmKb, httpGet, waitReady };
