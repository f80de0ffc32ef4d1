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
"""
import http.client
import http.server
import threading


class Proxy:
    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.records = []
        self.lock = threading.Lock()
        self.lose_answer = None
        self.intercept = None
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def handle_one(self):
                proxy.forward(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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

    def forward(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rec = {"method": h.command, "path": h.path,
               "headers": {k.lower(): v for k, v in h.headers.items()},
               "length": len(body)}
        with self.lock:
            self.records.append(rec)
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
        rec["status"] = resp.status
        rec["response_headers"] = {k.lower(): v for k, v in resp.getheaders()}
        if self.lose_answer and self.lose_answer(rec):
            rec["lost"] = True
            h.close_connection = True
            return
        self.reply(h, resp.status, resp.getheaders(), data, resp.reason)

    def reply(self, h, status, headers, data, reason=None):
        h.send_response(status, reason)
        for k, v in headers:
            if k.lower() in ("content-length", "connection",
                             "transfer-encoding", "date"):
                continue
            if k.lower() == "location":
                v = v.replace(self.upstream_url, self.url)
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
