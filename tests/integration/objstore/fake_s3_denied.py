#!/usr/bin/env python3
"""fake_s3_denied.py PORTFILE: a tiny S3 stand-in on 127.0.0.1 (free port,
written to PORTFILE once listening) that refuses every request as S3 does
for an unknown access key: 403 with an InvalidAccessKeyId error document."""
import http.server
import sys

BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidAccessKeyId</Code>'
        b'<Message>The AWS Access Key Id you provided does not exist in our records.</Message>'
        b'<RequestId>0</RequestId></Error>')


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(BODY)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = answer

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
