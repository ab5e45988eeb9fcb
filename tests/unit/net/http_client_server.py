#!/usr/bin/env python3
"""Test HTTP/1.1 server for test_http_client: serves bodies of N bytes, delays,
fails then succeeds (retries), holds requests, streams slowly, echoes bodies.
Usage: http_client_server.py PORT [CERT KEY] (binds 127.0.0.1:PORT; with a
certificate and key it speaks HTTPS)."""

import hashlib
import hmac
import http.server
import socket
import ssl
import select
import sys
import threading
import time
import urllib.parse

PATTERN = bytes(range(251))
BLOCK = PATTERN * 4096  # a multiple of the pattern, ~1 MB

lock = threading.Lock()
accepted = 0
flaky = {}  # key -> list of arrival times (monotonic ms)


SECRET = "secretkey"  # the test signs with this secret key


def sigv4_ok(method, path, headers, body):
    """Checks an AWS SigV4 Authorization header (as S3 would) against SECRET."""
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    _, date, region, service, term = parts["Credential"].split("/")
    signed = parts["SignedHeaders"].split(";")
    u = urllib.parse.urlsplit(path)
    query = "&".join(sorted(q for q in u.query.split("&") if q))
    canon_headers = "".join("%s:%s\n" % (h, " ".join(headers.get(h, "").split())) for h in signed)
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    creq = "\n".join([method, u.path, query, canon_headers, ";".join(signed), payload])
    scope = "/".join([date, region, service, term])
    sts = "\n".join(["AWS4-HMAC-SHA256", headers.get("x-amz-date", ""), scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + SECRET).encode()
    for m in (date, region, service, term):
        key = hmac.new(key, m.encode(), hashlib.sha256).digest()
    want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["Signature"])


def pattern_bytes(n):
    """Byte i of a body is i % 251; yields pieces of at most ~1 MB."""
    while n > 0:
        k = min(n, len(BLOCK))
        yield BLOCK[:k]
        n -= k


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        global accepted
        super().setup()
        with lock:
            accepted += 1
            self.conn_id = accepted

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is not None:
            return self.rfile.read(int(n)), False
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out), True
                out += self.rfile.read(size)
                self.rfile.readline()
        return b"", False

    def start(self, status, length=None, extra=()):
        self.send_response(status)
        self.send_header("X-Conn-Id", str(self.conn_id))
        with lock:
            self.send_header("X-Accepted", str(accepted))
        for k, v in extra:
            self.send_header(k, v)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def reply(self, status, body, extra=()):
        self.start(status, len(body), extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def wait_client_gone(self, seconds):
        """Holds the request until the client closes or |seconds| pass."""
        end = time.monotonic() + seconds
        sock = self.connection
        while time.monotonic() < end:
            r, _, _ = select.select([sock], [], [], 0.1)
            if r:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return

    def handle_any(self):
        u = urllib.parse.urlparse(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query).items()}
        body, chunked = self.read_body()
        if u.path == "/bytes":
            n = int(q.get("n", "0"))
            time.sleep(int(q.get("delay_ms", "0")) / 1000.0)
            if q.get("chunked"):
                self.start(200, None)
                for piece in pattern_bytes(n):
                    self.write_chunk(piece)
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.start(200, n)
                for piece in pattern_bytes(n if self.command != "HEAD" else 0):
                    self.wfile.write(piece)
        elif u.path == "/slow":
            n, chunk, ms = int(q["n"]), int(q["chunk"]), int(q["ms"])
            self.start(200, n)
            sent = 0
            data = PATTERN * (chunk // len(PATTERN) + 1)
            while sent < n:
                k = min(chunk, n - sent)
                off = sent % len(PATTERN)
                piece = (PATTERN[off:] + data)[:k]
                self.wfile.write(piece)
                self.wfile.flush()
                sent += k
                if sent < n:
                    time.sleep(ms / 1000.0)
        elif u.path == "/hold":
            self.wait_client_gone(30)
            self.close_connection = True
        elif u.path == "/flaky":
            key = q["key"]
            fails = int(q.get("fails", "1"))
            now = time.monotonic() * 1000.0
            with lock:
                times = flaky.setdefault(key, [])
                times.append(now)
                count = len(times)
                arrivals = ",".join("%.1f" % (t - times[0]) for t in times)
            extra = [("X-Attempt", str(count)), ("X-Arrivals", arrivals),
                     ("X-Body-Len", str(len(body)))]
            if count <= fails:
                if "retry_after" in q:
                    extra.append(("Retry-After", q["retry_after"]))
                self.reply(int(q.get("status", "500")), b"fail %d" % count, extra)
            else:
                self.reply(200, body if body else arrivals.encode(), extra)
        elif u.path == "/echo":
            extra = [("X-Chunked", "1" if chunked else "0"),
                     ("X-Content-Type", self.headers.get("Content-Type", "")),
                     ("X-Sig-Ok", "1" if sigv4_ok(self.command, self.path, self.headers,
                                                  body) else "0")]
            for name in ("Authorization", "X-Amz-Date", "X-Test"):
                if self.headers.get(name):
                    extra.append(("X-Echo-" + name, self.headers.get(name)))
            self.reply(200, body, extra)
        else:
            self.reply(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # clients that cancel or time out reset their connections: expected
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError, ssl.SSLError)):
            super().handle_error(request, client_address)


def main():
    port = int(sys.argv[1])
    srv = Server(("127.0.0.1", port), Handler)
    if len(sys.argv) > 3:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
