# SPDX-License-Identifier: MIT
"""Recording, fault-injecting reverse proxy in front of s3rver (or
radosgw).

Tests point the plugin at this proxy to see exactly what went over the
wire (method, raw path and query, headers, body size) and to make the
server misbehave per request (the fault engine of
tests/plugin-harness/faultproxy.py): 5xx, SlowDown, 429, a 200 whose body
is an <Error>, a lost answer after the upstream applied the request,
resets in the middle of a request or response body, stalls, a corrupted
response byte, an outage.

With emulate_mpu it also implements the two multipart calls s3rver lacks
(ListParts and AbortMultipartUpload) from what it saw pass through, and
answers NoSuchUpload for uploads it aborted, so resume paths that depend on
them can be tested.
"""
import hashlib
import http.client
import http.server
import re
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugin-harness"))
from faultproxy import FaultSet, quiet_server, reset  # noqa: E402

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "expect",
               "proxy-connection", "te", "upgrade"}


def error_xml(code, message):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
            "<Message>%s</Message></Error>" % (code, escape(message))).encode()


class Proxy:
    def __init__(self, upstream_port, emulate_mpu=False):
        self.upstream_port = upstream_port
        self.emulate_mpu = emulate_mpu
        self.log = []
        self.faults = FaultSet()
        self.lock = threading.Lock()
        self.uploads = {}          # upload id -> {part: (etag, size)}
        self.aborted = set()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                proxy.handle(self)

            do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

        self.server = quiet_server(
            http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def add_fault(self, **kw):
        """A per-request fault; see faultproxy.Fault."""
        return self.faults.add(**kw)

    def clear_faults(self):
        self.faults.clear()

    def outage(self, seconds):
        """Every connection is reset for this long."""
        self.faults.outage(seconds)

    def requests(self, method=None, query=None):
        with self.lock:
            entries = list(self.log)
        return [e for e in entries
                if (method is None or e["method"] == method)
                and (query is None or re.search(query, e["query"]))]

    def clear(self):
        with self.lock:
            self.log.clear()

    # -- request handling ------------------------------------------------

    def handle(self, h):
        method = h.command
        raw = h.path
        path, _, query = raw.partition("?")
        length = int(h.headers.get("Content-Length") or 0)
        entry = {
            "time": time.time(), "method": method, "path": path,
            "query": query, "raw": raw,
            "headers": {k.lower(): v for k, v in h.headers.items()},
            "body_len": 0, "body_sha256": None, "body": None, "status": None,
        }
        with self.lock:
            self.log.append(entry)
        if self.faults.in_outage():
            entry["status"] = "outage"
            return reset(h)
        fault = self.faults.match(method, path, query)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.reset == "request":
            h.rfile.read(fault.request_cut(length))
            entry["status"] = "reset"
            return reset(h)
        body = h.rfile.read(length) if length else b""
        entry.update(body_len=len(body),
                     body_sha256=hashlib.sha256(body).hexdigest(),
                     body=body if len(body) <= 65536 else None)
        if len(body) < length:
            # The client died mid-request (SIGKILL tests).  S3 discards
            # such a request; forwarding the stub would let s3rver store a
            # truncated part.
            h.close_connection = True
            return
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        if fault and fault.drop and not fault.forward_first:
            entry["status"] = "dropped"
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if fault and not fault.forward_first and fault.status:
            return self.reply_fault(h, entry, fault)

        upload_id = params.get("uploadId", [None])[0]
        if self.emulate_mpu and upload_id is not None:
            if upload_id in self.aborted:
                return self.reply(h, entry, 404,
                                  error_xml("NoSuchUpload",
                                            "The specified upload does not exist."))
            if method == "GET":
                return self.list_parts(h, entry, upload_id, params)
            if method == "DELETE":
                with self.lock:
                    self.aborted.add(upload_id)
                return self.reply(h, entry, 204, b"")

        try:
            status, headers, rbody = self.forward(method, raw, h.headers, body)
        except (OSError, http.client.HTTPException):
            # The server cut the connection (or is down): so do we.
            entry["status"] = "upstream-failed"
            return reset(h)
        if self.emulate_mpu:
            self.track(method, params, status, headers, rbody, len(body))
        entry["upstream_status"] = status
        if fault and fault.forward_first and fault.drop:
            entry["status"] = "lost"
            return reset(h)
        if fault and fault.forward_first and fault.status:
            return self.reply_fault(h, entry, fault)
        if fault and fault.stall:
            entry["stalled"] = True
            time.sleep(fault.stall)
        if fault and fault.corrupt and method != "HEAD":
            rbody = fault.corrupt_body(rbody)
            entry["corrupted"] = True
        entry["status"] = status
        if fault and fault.reset == "response":
            entry["status"] = "reset"
            self.send(h, status, headers, rbody[:fault.response_cut(len(rbody))],
                      method, length=len(rbody))
            return reset(h)
        self.send(h, status, headers, rbody, method)

    def forward(self, method, raw, headers, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port,
                                          timeout=60)
        fwd = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}
        conn.request(method, raw, body=body if body or method in ("PUT", "POST")
                     else None, headers=fwd)
        resp = conn.getresponse()
        rbody = resp.read()
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() not in HOP_HEADERS]
        conn.close()
        return resp.status, out, rbody

    def track(self, method, params, status, headers, rbody, body_len):
        if status != 200:
            return
        if method == "POST" and "uploads" in params:
            m = re.search(rb"<UploadId>([^<]+)</UploadId>", rbody)
            if m:
                with self.lock:
                    self.uploads[m.group(1).decode()] = {}
        elif method == "PUT" and "partNumber" in params and "uploadId" in params:
            etag = dict((k.lower(), v) for k, v in headers).get("etag", "")
            with self.lock:
                parts = self.uploads.setdefault(params["uploadId"][0], {})
                parts[int(params["partNumber"][0])] = (etag, body_len)

    def list_parts(self, h, entry, upload_id, params):
        with self.lock:
            parts = dict(self.uploads.get(upload_id, {}))
        if upload_id not in self.uploads:
            return self.reply(h, entry, 404, error_xml(
                "NoSuchUpload", "The specified upload does not exist."))
        marker = int(params.get("part-number-marker", ["0"])[0] or 0)
        xml = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
               "<ListPartsResult><UploadId>%s</UploadId>" % escape(upload_id),
               "<IsTruncated>false</IsTruncated>"]
        for n in sorted(p for p in parts if p > marker):
            etag = parts[n][0]
            xml.append("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>"
                       "<Size>%d</Size></Part>"
                       % (n, escape(etag, {'"': "&quot;"}), parts[n][1]))
        xml.append("</ListPartsResult>")
        return self.reply(h, entry, 200, "".join(xml).encode())

    def reply_fault(self, h, entry, fault):
        body = fault.body
        if body is None and fault.code:
            body = error_xml(fault.code, "injected by the test proxy")
        return self.reply(h, entry, fault.status, body or b"", fault.headers)

    def reply(self, h, entry, status, body, extra=()):
        entry["status"] = status
        headers = [("Content-Type", "application/xml")] if body else []
        self.send(h, status, headers + list(extra), body, h.command)

    def send(self, h, status, headers, body, method, length=None):
        length = str(len(body) if length is None else length)
        h.send_response(status)
        for k, v in headers:
            if k.lower() == "content-length":
                # A HEAD answer describes the object, not its empty body.
                if method == "HEAD":
                    length = v
                continue
            h.send_header(k, v)
        h.send_header("Content-Length", length)
        h.end_headers()
        if method != "HEAD" and body:
            h.wfile.write(body)
