# SPDX-License-Identifier: MIT
"""A loopback HTTP/1.1 proxy that makes a local test server look distant:
each request waits `latency` seconds before it is forwarded (a round trip
to a far region), and all response and request bodies together pass at
most `bandwidth` bytes per second (a shared link).  It counts requests by
kind, so a benchmark can say how many a restore took.

Used by bench/restore in front of s3rver and the GCS emulator.  It speaks
just enough HTTP for them and their clients: keep-alive, Content-Length
and chunked bodies, HEAD.  Nothing here is for production.

    proxy = LatencyProxy(upstream_port, latency=0.03, bandwidth=100 << 20)
    ... point clients at proxy.url ...
    proxy.counts()   # {"GET": n, "GET range": n, "list": n, ...}
    proxy.close()
"""
import asyncio
import collections
import threading
import time

PIECE = 256 << 10


class Throttle:
    """A token bucket shared by all connections (asyncio, one loop)."""

    def __init__(self, rate):
        self.rate = rate
        self.tokens = 0.0
        self.last = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, n):
        if not self.rate:
            return
        async with self.lock:
            now = time.monotonic()
            # At most 50 ms of burst: a link does not save up.
            self.tokens = min(self.tokens + (now - self.last) * self.rate,
                              self.rate * 0.05)
            self.last = now
            self.tokens -= n
            if self.tokens < 0:
                await asyncio.sleep(-self.tokens / self.rate)


async def read_head(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return head


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0], headers


async def copy_body(reader, writer, headers, throttle, no_body=False,
                    request=False, count=None):
    """Copies one message body; False if the connection must close after.
    A request without a length has no body; a response ends with the
    connection."""
    if no_body:
        return True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = await reader.readuntil(b"\r\n")
            writer.write(line)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    t = await reader.readuntil(b"\r\n")
                    writer.write(t)
                    if t == b"\r\n":
                        return True
            left = size + 2
            while left:
                data = await reader.read(min(left, PIECE))
                if not data:
                    raise ConnectionError("short chunk")
                await throttle.take(len(data))
                writer.write(data)
                await writer.drain()
                left -= len(data)
    if "content-length" in headers:
        left = int(headers["content-length"])
        while left:
            data = await reader.read(min(left, PIECE))
            if not data:
                raise ConnectionError("short body")
            await throttle.take(len(data))
            if count:
                count(len(data))
            writer.write(data)
            await writer.drain()
            left -= len(data)
        return True
    if request:
        return True
    while True:  # until the server closes
        data = await reader.read(PIECE)
        if not data:
            return False
        await throttle.take(len(data))
        writer.write(data)
        await writer.drain()


def kind(method, target, headers):
    path, _, query = target.partition("?")
    if method == "GET" and ("list-type" in query or "prefix=" in query or
                            path.rstrip("/").endswith("/o")):
        return "list"
    if method == "GET" and "range" in headers:
        return "GET range"
    return method


class LatencyProxy:
    def __init__(self, upstream_port, latency=0.0, bandwidth=0):
        self.upstream_port = upstream_port
        self.latency = latency
        self.bandwidth = bandwidth
        self._counts = collections.Counter()
        self._bytes = 0
        self._lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait()
        self.url = "http://127.0.0.1:%d" % self.port

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.throttle = Throttle(self.bandwidth)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, limit=1 << 20))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _client(self, creader, cwriter):
        ureader = uwriter = None
        try:
            ureader, uwriter = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port, limit=1 << 20)
            while True:
                head = await read_head(creader)
                if head is None:
                    break
                start, headers = parse_head(head)
                method, target = start.split(" ")[:2]
                with self._lock:
                    self._counts[kind(method, target, headers)] += 1
                if "expect" in headers:  # no 100-continue through here
                    head = b"\r\n".join(
                        l for l in head.split(b"\r\n")
                        if not l.lower().startswith(b"expect:"))
                if self.latency:
                    await asyncio.sleep(self.latency)
                uwriter.write(head)
                await copy_body(creader, uwriter, headers, self.throttle,
                                request=True)
                await uwriter.drain()
                rhead = await read_head(ureader)
                if rhead is None:
                    break
                status_line, rheaders = parse_head(rhead)
                status = int(status_line.split(" ")[1])
                cwriter.write(rhead)
                keep = await copy_body(ureader, cwriter, rheaders, self.throttle,
                                       no_body=method == "HEAD" or status in (204, 304),
                                       count=self._count_bytes)
                await cwriter.drain()
                if not keep or rheaders.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            for w in (cwriter, uwriter):
                if w:
                    w.close()

    def _count_bytes(self, n):
        with self._lock:
            self._bytes += n

    def bytes(self):
        """Response body bytes (with a Content-Length) since clear()."""
        with self._lock:
            return self._bytes

    def counts(self):
        with self._lock:
            return dict(self._counts)

    def requests(self):
        return sum(self.counts().values())

    def clear(self):
        with self._lock:
            self._counts.clear()
            self._bytes = 0

    def close(self):
        async def stop():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
