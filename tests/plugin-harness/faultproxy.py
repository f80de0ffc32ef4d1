# SPDX-License-Identifier: MIT
"""The per-request fault engine of the test proxies (tests/s3/s3proxy.py in
front of s3rver or radosgw, tests/gcs/gcsproxy.py in front of the GCS
emulator).

curl keeps connections alive, so faults that act per connection rarely
hit the request a test aims at; these act per request.  A Fault matches
requests by method, path and query regexes, lets the first `skip` matches
pass ("the Nth request of a kind" is skip=N-1), then acts on the next
`times` matches (None: all of them), with one of:

    status=S [code=C, body=B]  answer S (500, 503 + SlowDown, 429...)
                               instead of forwarding, or after forwarding
                               with forward_first=True (the server applied
                               the request, the client hears it failed)
    drop=True                  close the connection without an answer
                               (after forwarding with forward_first=True:
                               a lost answer)
    delay=SECONDS              stall before forwarding
    stall=SECONDS              forward, then stall before answering (a test
                               can kill the client in between)
    reset="request"            read half of the request body (at most
                               reset_at bytes), then reset the connection
    reset="response"           forward, send the headers and half the
                               body (at most reset_at bytes), then reset
    corrupt=True               forward, flip one byte of the response body
                               (the middle one, or corrupt_at)

and Proxy.outage(seconds) resets every connection for a while, as a
backend that is down.  Resets are real TCP RSTs (SO_LINGER 0).
"""
import re
import socket
import struct
import threading
import time
import urllib.parse


class Fault:
    """What to do with matching requests; see the module doc."""

    def __init__(self, method=None, query=None, path=None, times=1, skip=0,
                 status=None, code=None, body=None, forward_first=False,
                 delay=0.0, drop=False, stall=0.0, reset=None, reset_at=None,
                 corrupt=False, corrupt_at=None, headers=None):
        if reset not in (None, "request", "response"):
            raise ValueError("reset is 'request' or 'response'")
        self.method, self.query, self.path = method, query, path
        self.times, self.skip = times, skip
        self.status, self.code, self.body = status, code, body
        self.headers = headers or []
        self.forward_first = forward_first
        self.delay, self.stall = delay, stall
        self.drop = drop
        self.reset, self.reset_at = reset, reset_at
        self.corrupt, self.corrupt_at = corrupt, corrupt_at
        self.seen = 0               # matching requests, skipped included
        self.hits = 0               # requests acted on

    def matches(self, method, path, query):
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and method != self.method:
            return False
        if self.path and not re.search(self.path, urllib.parse.unquote(path)):
            return False
        if self.query is not None and not re.search(self.query, query):
            return False
        return True

    def take(self):
        """Counts a match; True when this one is acted on."""
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.hits += 1
        return True

    def corrupt_body(self, body):
        if not body:
            return body
        i = self.corrupt_at if self.corrupt_at is not None else len(body) // 2
        i = min(i, len(body) - 1)
        return body[:i] + bytes([body[i] ^ 0x5A]) + body[i + 1:]

    def response_cut(self, length):
        cut = length // 2
        return min(cut, self.reset_at) if self.reset_at is not None else cut

    def request_cut(self, length):
        return self.response_cut(length)


class FaultSet:
    """The faults of one proxy and its outage window; thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.faults = []
        self.outage_until = 0.0
        self.outage_hits = 0

    def add(self, **kw):
        f = Fault(**kw)
        with self.lock:
            self.faults.append(f)
        return f

    def clear(self):
        with self.lock:
            self.faults.clear()
            self.outage_until = 0.0

    def outage(self, seconds):
        with self.lock:
            self.outage_until = time.monotonic() + seconds

    def in_outage(self):
        with self.lock:
            if time.monotonic() < self.outage_until:
                self.outage_hits += 1
                return True
            return False

    def match(self, method, path, query):
        """The fault that acts on this request, or None."""
        with self.lock:
            for f in self.faults:
                if f.matches(method, path, query):
                    return f if f.take() else None
        return None


def reset(handler):
    """Resets the handler's connection (TCP RST, nothing more is sent)."""
    sock = handler.connection
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    handler.close_connection = True
    try:
        sock.close()
    except OSError:
        pass
    # Nothing is left to flush: the handler's writer must not try.
    handler.wfile = _Discard()


class _Discard:
    closed = False

    def write(self, data):
        return len(data)

    def flush(self):
        pass

    def close(self):
        self.closed = True


def quiet_server(server):
    """Connections the fault engine reset raise in the server's threads;
    that is the point, not an error to print."""
    server.handle_error = lambda request, client_address: None
    return server
