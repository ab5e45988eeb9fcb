#!/usr/bin/env python3
"""fake_s3.py MODE PORTFILE: a tiny S3 stand-in on 127.0.0.1 (a free port,
written to PORTFILE once listening).

MODE denied: refuses every request as S3 does for an unknown access key
(403, InvalidAccessKeyId).
MODE verify: checks the AWS Signature Version 4 of every request as S3
does (canonical request from the AWS SigV4 documentation, secret "SECRET"),
and the body against x-amz-content-sha256 unless UNSIGNED-PAYLOAD; answers
403 SignatureDoesNotMatch or a minimal success (objects kept in memory)."""
import hashlib
import hmac
import http.server
import os
import sys
import urllib.parse

MODE, PORTFILE = sys.argv[1], sys.argv[2]
SECRET = "SECRET"
OBJECTS = {}
UPLOADS = {}


def error(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
            '<RequestId>0</RequestId></Error>' % (code, message)).encode()


def canonical_query(raw):
    pairs = []
    for part in raw.split("&") if raw else []:
        k, _, v = part.partition("=")
        k = urllib.parse.quote(urllib.parse.unquote(k), safe="-_.~")
        v = urllib.parse.quote(urllib.parse.unquote(v), safe="-_.~")
        pairs.append((k, v))
    return "&".join("%s=%s" % kv for kv in sorted(pairs))


def sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def check_signature(req, body):
    auth = req.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no SigV4 Authorization header"
    fields = dict(f.strip().split("=", 1) for f in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    akid, date, region, service, term = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    for h in ("host", "x-amz-date", "x-amz-content-sha256"):
        if h not in signed:
            return "%s is not signed" % h
    payload = req.headers.get("x-amz-content-sha256")
    if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 does not match the body"
    for h in signed:
        if h not in req.headers:
            return "signed header %s is not in the request" % h
    path, _, query = req.path.partition("?")
    headers = "".join("%s:%s\n" % (h, " ".join(req.headers.get(h, "").split())) for h in signed)
    creq = "\n".join([req.command, path, canonical_query(query), headers, ";".join(signed), payload])
    amzdate = req.headers["x-amz-date"]
    scope = "/".join([date, region, service, term])
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = sign(sign(sign(sign(("AWS4" + SECRET).encode(), date), region), service), term)
    want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    if want != fields["Signature"]:
        return "signature mismatch; canonical request was:\n" + creq
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if MODE == "denied":
            return self.reply(403, error("InvalidAccessKeyId", "The AWS Access Key Id you "
                                         "provided does not exist in our records."))
        problem = check_signature(self, body)
        if problem:
            sys.stderr.write("fake_s3: %s %s: %s\n" % (self.command, self.path, problem))
            return self.reply(403, error("SignatureDoesNotMatch", "The request signature we "
                                         "calculated does not match the signature you provided."))
        path, _, query = self.path.partition("?")
        key = urllib.parse.unquote(path.split("/", 2)[2]) if path.count("/") >= 2 else ""
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        if self.command == "POST" and "uploads" in q:
            UPLOADS[key] = {}
            return self.reply(200, ("<InitiateMultipartUploadResult><Key>%s</Key><UploadId>u-1"
                                    "</UploadId></InitiateMultipartUploadResult>" % key).encode())
        if self.command == "PUT" and "partNumber" in q:
            UPLOADS[key][int(q["partNumber"][0])] = body
            return self.reply(200, headers=[("ETag", '"p%s"' % q["partNumber"][0])])
        if self.command == "POST" and "uploadId" in q:
            parts = UPLOADS.pop(key)
            OBJECTS[key] = b"".join(parts[n] for n in sorted(parts))
            return self.reply(200, b"<CompleteMultipartUploadResult><ETag>&quot;m-2&quot;</ETag>"
                                   b"</CompleteMultipartUploadResult>")
        if self.command == "PUT":
            OBJECTS[key] = body
            return self.reply(200, headers=[("ETag", '"e"')])
        if self.command in ("GET", "HEAD") and key:
            if key not in OBJECTS:
                return self.reply(404, error("NoSuchKey", "The specified key does not exist."))
            data = OBJECTS[key]
            rng = self.headers.get("Range")
            if rng:
                a, _, b = rng[len("bytes="):].partition("-")
                data = data[int(a):int(b) + 1 if b else None]
                return self.reply(206, data)
            return self.reply(200, data)
        if self.command == "GET":
            prefix = q.get("prefix", [""])[0]
            keys = "".join("<Contents><Key>%s</Key><Size>%d</Size></Contents>" % (
                k.replace("&", "&amp;").replace("<", "&lt;"), len(v))
                for k, v in sorted(OBJECTS.items()) if k.startswith(prefix))
            return self.reply(200, ("<ListBucketResult><IsTruncated>false</IsTruncated>%s"
                                    "</ListBucketResult>" % keys).encode())
        if self.command == "DELETE":
            OBJECTS.pop(key, None)
            return self.reply(204)
        return self.reply(405)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = answer

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
