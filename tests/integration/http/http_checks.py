#!/usr/bin/env python3
"""http_checks.py: checks against http_echo_server with real sockets.

  endpoints PORT        /-/healthy, /-/ready, /metrics (after some traffic)
  slowloris PORT        clients trickling headers are cut at the header
                        timeout (2 s) while prompt clients are served
  stream PORT PID       a 1 GiB chunked response: a stalled reader does not
                        make the server buffer it; a fast reader gets it all
"""
import fcntl
import socket
import struct
import sys
import termios
import time


def expect(cond, what):
    """A failed check: exits 1 naming it (a bare assert is gone under -O)."""
    if not cond:
        sys.exit("FAIL: %s" % what)


def request(port, raw, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(raw)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, head.decode(), body


def get(port, path):
    return request(port, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())


def endpoints(port):
    st, head, body = get(port, "/-/healthy")
    expect(st == 200 and body == b"OK", "/-/healthy: %r %r" % (st, body))
    # not ready until the component says so (5 s after start: http_load.sh)
    st, head, body = get(port, "/-/ready")
    expect(st == 503, "/-/ready before the component is: %r" % st)
    t0 = time.monotonic()
    while st != 200 and time.monotonic() - t0 < 20:
        time.sleep(0.05)  # polling interval of the readiness check
        st, head, body = get(port, "/-/ready")
    expect(st == 200 and body == b"OK", "/-/ready within 20 s: %r %r" % (st, body))
    st, head, body = get(port, "/echo?x=1")
    expect(st == 200 and body == b"GET /echo\nx=1\n", "/echo?x=1: %r %r" % (st, body))
    st, head, body = get(port, "/nope")
    expect(st == 404, "/nope: %r" % st)
    st, head, body = get(port, "/metrics")
    expect(st == 200, "/metrics: %r" % st)
    expect("Content-Type: text/plain; version=0.0.4; charset=utf-8" in head, "/metrics head: %s" % head)
    text = body.decode()
    for want in ('http_requests_total{code="200",handler="echo",method="GET"} 1',
                 'http_requests_total{code="404",handler="other",method="GET"} 1',
                 'http_request_duration_seconds_bucket{handler="healthy",le="+Inf"} 1',
                 'http_requests_total{code="503",handler="ready",method="GET"} ',
                 "process_resident_memory_bytes "):
        expect(want in text, "/metrics lacks %r" % want)
    print("endpoints ok")


def slowloris(port, nslow=50, timeout=2.0):
    slow = []
    for _ in range(nslow):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        slow.append(s)
    msg = b"GET /echo HTTP/1.1\r\nX-Slow: " + b"a" * 200
    start = time.monotonic()
    closed = {}
    i = 0
    served = 0
    while len(closed) < nslow and time.monotonic() - start < 10:
        for k, s in enumerate(slow):
            if k in closed:
                continue
            try:
                s.send(msg[i:i + 1])
                if s.recv(1) == b"":
                    closed[k] = time.monotonic() - start
            except BlockingIOError:
                pass
            except OSError:
                closed[k] = time.monotonic() - start
        i += 1
        # prompt clients are served meanwhile
        st, _, _ = get(port, "/echo")
        served += st == 200
        time.sleep(0.2)  # the slow clients' pace: one byte each per 0.2 s (the input, not a wait)
    for s in slow:
        s.close()
    expect(len(closed) == nslow, "%d of %d slow clients still connected" % (nslow - len(closed), nslow))
    lo, hi = min(closed.values()), max(closed.values())
    print("slowloris: %d slow clients cut after %.2f-%.2f s; %d prompt requests served" %
          (nslow, lo, hi, served))
    expect(lo >= timeout * 0.8 and hi <= timeout + 1.5,
           "slow clients cut after %.2f-%.2f s, want %.1f-%.1f s" % (lo, hi, timeout * 0.8, timeout + 1.5))
    expect(served >= 5, "only %d prompt requests served meanwhile" % served)


def rss_kb(pid):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def cpu_ticks(pid):
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def await_stalled(s, pid, timeout=30):
    """Polls until the server has stopped sending to the stalled socket |s|:
    bytes are queued to it and neither they nor the server's CPU time move
    for 0.5 s. A server that buffered the response itself would keep
    working until it had all of it. Returns the bytes queued."""
    end = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < end:
        queued = struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        now = (queued, cpu_ticks(pid))
        if now != last or queued == 0:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            return queued
        time.sleep(0.05)  # polling interval
    sys.exit("FAIL: the server still sends to a stalled reader after %d s" % timeout)


def stream(port, pid):
    n, size = 16384, 65536  # 1 GiB
    base = rss_kb(pid)
    # stalled reader: the server must not buffer the response
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /stream?n=%d&size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (n, size))
    queued = await_stalled(s, pid)
    stalled = rss_kb(pid)
    s.close()
    print("stream: rss %d kB before, %d kB with a stalled 1 GiB reader (%d bytes queued to it)"
          % (base, stalled, queued))
    expect(stalled <= base + 32768, "rss %d kB with a stalled reader, %d kB before" % (stalled, base))
    # fast reader: all of it arrives, memory stays flat
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET /stream?n=%d&size=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (n, size))
    got, peak, t0 = 0, 0, time.monotonic()
    buf = bytearray(1 << 20)
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        got += k
        if got % (64 << 20) < k:
            peak = max(peak, rss_kb(pid))
    s.close()
    dt = time.monotonic() - t0
    # body plus chunk framing ("10000\r\n" ... "\r\n") and the head
    expect(got > n * size, "fast reader got %d bytes of %d" % (got, n * size))
    print("stream: %d MiB in %.2f s (%.0f MiB/s), peak rss %d kB" % (got >> 20, dt, (got >> 20) / dt, peak))
    expect(peak <= base + 32768, "peak rss %d kB for a fast reader, %d kB before" % (peak, base))


if __name__ == "__main__":
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "endpoints":
        endpoints(port)
    elif cmd == "slowloris":
        slowloris(port)
    elif cmd == "stream":
        stream(port, sys.argv[3])
    else:
        sys.exit("unknown check " + cmd)
