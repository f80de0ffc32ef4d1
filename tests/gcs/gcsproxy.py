# SPDX-License-Identifier: MIT
"""A recording proxy in front of the GCS emulator, for tests that must see
the headers the plugin sends (X-Goog-Hash, Authorization, Content-Range),
which the emulator's own log leaves out.

Each request is forwarded as is; the answer comes back as is, except that
session URIs in Location headers are rewritten to point at the proxy (the
plugin only sends data to its configured endpoint).  A connection the
emulator cuts is cut towards the plugin too.

Hooks stage failures the emulator cannot: lose_answer(record) -> bool
forwards a request but cuts the connection instead of answering (the
request took effect, the client never learns it); intercept(record) ->
None or (status, headers, body) answers in the emulator's place without
forwarding (a server that acknowledges what it then loses).

add_fault() and outage() are the per-request fault engine of
tests/plugin-harness/faultproxy.py (5xx, 429, resets mid-request and
mid-response, stalls, a corrupted response byte, an outage).  Paths are
matched with the query string included (`path=` regex), as the
emulator's own fault rules do.
"""
import http.client
import http.server
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugin-harness"))
from faultproxy import FaultSet, quiet_server, reset  # noqa: E402


def error_json(status, reason, message):
    import json
    return json.dumps({"error": {"code": status, "message": message, "errors": [
        {"message": message, "domain": "global", "reason": reason}]}}).encode()


REASONS = {429: "rateLimitExceeded", 500: "backendError", 502: "backendError",
           503: "backendError", 504: "backendError", 408: "requestTimeout"}


class Proxy:
    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.records = []
        self.lock = threading.Lock()
        self.lose_answer = None
        self.intercept = None
        self.faults = FaultSet()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def handle_one(self):
                proxy.forward(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = handle_one

        self.server = quiet_server(
            http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.upstream_url = "http://%s:%d" % self.upstream
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def requests(self, method=None):
        with self.lock:
            return [r for r in self.records
                    if method is None or r["method"] == method]

    def clear(self):
        with self.lock:
            self.records.clear()

    def add_fault(self, **kw):
        """A per-request fault; see faultproxy.Fault."""
        return self.faults.add(**kw)

    def clear_faults(self):
        self.faults.clear()

    def outage(self, seconds):
        """Every connection is reset for this long."""
        self.faults.outage(seconds)

    def forward(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        rec = {"method": h.command, "path": h.path,
               "headers": {k.lower(): v for k, v in h.headers.items()},
               "length": 0, "status": None}
        with self.lock:
            self.records.append(rec)
        if self.faults.in_outage():
            rec["status"] = "outage"
            return reset(h)
        fault = self.faults.match(h.command, h.path, h.path)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.reset == "request":
            h.rfile.read(fault.request_cut(length))
            rec["status"] = "reset"
            return reset(h)
        body = h.rfile.read(length) if length else b""
        rec["length"] = len(body)
        if fault and fault.drop and not fault.forward_first:
            rec["status"] = "dropped"
            return reset(h)
        if fault and fault.status and not fault.forward_first:
            return self.reply_fault(h, rec, fault)
        fake = self.intercept(rec) if self.intercept else None
        if fake:
            rec["status"], rec["faked"] = fake[0], True
            self.reply(h, fake[0], fake[1], fake[2])
            return
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() not in ("host", "expect", "connection")}
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(h.command, h.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            # The emulator cut the connection (a "reset" fault): so do we.
            rec["status"] = None
            h.close_connection = True
            conn.close()
            return
        conn.close()
        rec["status"] = rec["upstream_status"] = resp.status
        rec["response_headers"] = {k.lower(): v for k, v in resp.getheaders()}
        if (self.lose_answer and self.lose_answer(rec)) or \
                (fault and fault.forward_first and fault.drop):
            rec["lost"] = True
            return reset(h)
        if fault and fault.forward_first and fault.status:
            return self.reply_fault(h, rec, fault)
        if fault and fault.stall:
            rec["stalled"] = True
            time.sleep(fault.stall)
        if fault and fault.corrupt and h.command != "HEAD":
            data = fault.corrupt_body(data)
            rec["corrupted"] = True
        if fault and fault.reset == "response":
            rec["status"] = "reset"
            self.reply(h, resp.status, resp.getheaders(),
                       data[:fault.response_cut(len(data))], resp.reason,
                       length=len(data))
            return reset(h)
        self.reply(h, resp.status, resp.getheaders(), data, resp.reason)

    def reply_fault(self, h, rec, fault):
        rec["status"] = fault.status
        body = fault.body
        if body is None:
            body = error_json(fault.status, fault.code or
                              REASONS.get(fault.status, "invalid"),
                              "injected by the test proxy")
        self.reply(h, fault.status,
                   [("Content-Type", "application/json; charset=UTF-8")] +
                   list(fault.headers), body)

    def reply(self, h, status, headers, data, reason=None, length=None):
        h.send_response(status, reason)
        for k, v in headers:
            if k.lower() in ("content-length", "connection",
                             "transfer-encoding", "date"):
                continue
            if k.lower() == "location":
                v = v.replace(self.upstream_url, self.url)
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data) if length is None else length))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
