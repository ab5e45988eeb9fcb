#!/usr/bin/env python3
"""bad_sources.py: --endpoint.promql sources that answer badly give a
warning naming them, and leave the other sources serving (issue 13).

A tiny HTTP server (this process, http.server) plays seven query APIs
under path prefixes: /good answers as Prometheus does (two series
m{i="1|2"}), /jsonerr with Prometheus's JSON error, /html with a login
page, /garbage with bytes that are not JSON, /badvalue with a series and
then a value that is not a number, /truncated with a body cut in the
middle (ended by the connection's close), /hang never answers. One
gateway has each as --endpoint.promql with the external label src=<mode>
(--endpoint.promql-timeout=2s). A user then sees:
  - /api/v1/query m: 200 with good's two series and values, one warning per
    bad source naming its URL and what was wrong, within a few seconds;
  - with partial_response=false: an error naming a bad source's URL;
  - /api/v1/labels and /api/v1/label/i/values: good's answer, warnings;
  - /api/v1/series: good's two series;
  - /api/v1/stores: each source under "promql" with its URL and label;
  - /metrics: the bytes each source sent.
Usage: bad_sources.py --orrery BIN"""
import argparse
import http.server as httpserver
import json
import os
import shutil
import socketserver
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
from gateway_common import (check, finish, http, start_gateway, stop_all, stores_up,  # noqa: E402
                            wait_for)

# mode -> what its warning must say
BAD = {
    "jsonerr": "HTTP 422: execution: query processing would load too many samples",
    "html": "not a Prometheus API answer",
    "garbage": "not a Prometheus API answer",
    "truncated": "truncated JSON",
    "hang": "no answer within 2000ms",
    "badvalue": "bad point value at byte",
}
stop_hang = threading.Event()


class Handler(httpserver.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the reader stops at the first byte that is not JSON

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        mode, _, path = self.path.lstrip("/").partition("/")
        path = "/" + path
        if mode == "good":
            return self.good(path, form)
        if mode == "jsonerr":
            return self.send(422, "application/json", json.dumps({
                "status": "error", "errorType": "execution",
                "error": "query processing would load too many samples into memory"}).encode())
        if mode == "html":
            return self.send(200, "text/html", b"<html><body><h1>Login required</h1></body></html>")
        if mode == "garbage":
            return self.send(200, "application/json", b"\x00\xff{{{ this is not json")
        if mode == "truncated":
            body = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"m"'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")  # the body ends where the connection does
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass  # the client may have given up first
            self.close_connection = True
            return
        if mode == "badvalue":  # one good series, then a value that is not a number
            t = float(form.get("time", ["1"])[0])
            return self.send(200, "application/json", json.dumps({
                "status": "success", "data": {"resultType": "matrix", "result": [
                    {"metric": {"__name__": "m", "i": "9"}, "values": [[t - 1, "1"]]},
                    {"metric": {"__name__": "m", "i": "8"}, "values": [[t - 1, "one"]]}]}}).encode())
        if mode == "hang":
            stop_hang.wait(60)
            return
        self.send(404, "text/plain", b"not found")

    def good(self, path, form):
        if path == "/api/v1/query":
            t = float(form["time"][0])
            res = [{"metric": {"__name__": "m", "i": str(i)},
                    "values": [[t - 1, str(i * 1.5)]]} for i in (2, 1)]  # unsorted on purpose
            body = {"status": "success", "data": {"resultType": "matrix", "result": res}}
        elif path == "/api/v1/series":
            body = {"status": "success", "data": [{"__name__": "m", "i": "1"},
                                                  {"__name__": "m", "i": "2"}]}
        elif path == "/api/v1/labels":
            body = {"status": "success", "data": ["__name__", "i"]}
        elif path == "/api/v1/label/i/values":
            body = {"status": "success", "data": ["1", "2"]}
        else:
            return self.send(404, "text/plain", b"not found")
        self.send(200, "application/json", json.dumps(body).encode())


class Server(socketserver.ThreadingMixIn, httpserver.HTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orrery", required=True)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="promql_src_bad.")
    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % srv.server_address[1]
    try:
        modes = ["good"] + sorted(BAD)
        gw = start_gateway(args.orrery, work, [],
                           ["--endpoint.promql=%s/%s;src=%s" % (base, m, m) for m in modes] +
                           ["--endpoint.promql-timeout=2s"])
        wait_for("every source up", lambda: stores_up(gw.url, len(modes)), 30)
        st, body, _ = http("GET", gw.url + "/api/v1/stores", timeout=10)
        d = (json.loads(body).get("data") or {}) if st == 200 else {}
        shown = sorted((e.get("name"), json.dumps(e.get("labelSets"))) for e in d.get("promql") or [])
        check("stores: every source under promql with its URL and label",
              shown == sorted(("%s/%s" % (base, m), json.dumps([{"src": m}])) for m in modes),
              body[:600])

        now = time.time()
        st, body, dt = http("GET", gw.url + "/api/v1/query", {"query": "m", "time": "%.3f" % now},
                            timeout=60)
        d = json.loads(body) if st == 200 else {}
        res = sorted((r["metric"].get("i"), r["metric"].get("src"), r["value"][1])
                     for r in d.get("data", {}).get("result", []))
        check("query: 200 with good's two series, values and external label",
              st == 200 and res == [("1", "good", "1.5"), ("2", "good", "3")], body[:400])
        warns = d.get("warnings") or []
        for mode, want in sorted(BAD.items()):
            url = "%s/%s" % (base, mode)
            w = [x for x in warns if url + ":" in x]
            check("query: a warning names %s and says %r" % (url, want),
                  len(w) == 1 and want in w[0], repr(w or warns)[:400])
        check("query: answered within 10 s (the hung source's timeout is 2 s)", dt < 10,
              "%.1f s" % dt)

        st, body, _ = http("GET", gw.url + "/api/v1/query",
                           {"query": "m", "time": "%.3f" % now, "partial_response": "false"},
                           timeout=60)
        check("partial_response=false: an error naming a bad source",
              st != 200 and '"status":"error"' in body and base + "/" in body, body[:300])

        st, body, _ = http("GET", gw.url + "/api/v1/labels", timeout=60)
        d = json.loads(body) if st == 200 else {}
        check("labels: good's names and the external label, with warnings",
              st == 200 and d.get("data") == ["__name__", "i", "src"] and
              len(d.get("warnings") or []) == len(BAD), body[:400])
        st, body, _ = http("GET", gw.url + "/api/v1/label/i/values", timeout=60)
        d = json.loads(body) if st == 200 else {}
        check("label values: good's values", st == 200 and d.get("data") == ["1", "2"], body[:300])
        st, body, _ = http("GET", gw.url + "/api/v1/series", {"match[]": "m"}, timeout=60)
        d = json.loads(body) if st == 200 else {}
        check("series: good's two series",
              st == 200 and sorted(s.get("i") for s in d.get("data", [])) == ["1", "2"],
              body[:400])
        st, body, _ = http("GET", gw.url + "/metrics", timeout=10)
        got = {}
        for line in body.splitlines():
            if line.startswith("orrery_gateway_promql_source_received_bytes_total{"):
                got[line.split('"')[1]] = float(line.split()[-1])
        check("metrics: bytes received from the good source",
              got.get(base + "/good", 0) > 100 and base + "/html" in got, repr(got))
        durs = {}
        for line in body.splitlines():
            if line.startswith("orrery_gateway_promql_source_request_duration_seconds_count{"):
                durs[line.split('"')[1]] = float(line.split()[-1])
        check("metrics: request durations of each source",
              durs.get(base + "/good", 0) >= 4 and durs.get(base + "/hang", 0) >= 1, repr(durs))
    finally:
        stop_hang.set()
        stop_all()
        srv.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
