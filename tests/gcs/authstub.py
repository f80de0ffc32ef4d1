# SPDX-License-Identifier: MIT
"""Stand-ins for the Google services the plugin's credential chain talks
to: the OAuth 2.0 token endpoint (POST /token) and the GCE/GKE metadata
server (GET /computeMetadata/v1/instance/service-accounts/default/token).

The token endpoint checks a service account's JWT the way Google does:
RS256 signature against the public half of the test key (with the
openssl CLI, so no Python crypto package is needed), header alg/kid, and
the claims iss, aud, scope, iat and exp.  The metadata server refuses
requests without "Metadata-Flavor: Google" and sends the header back.

Every token handed out is named after its source and a serial number
("ya29.sa-3"), and written to the emulator's --token-file so that the
emulator accepts exactly the newest token: a request carrying an older
one would fail with 401 there.
"""
import base64
import http.server
import json
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from harness import serve_tls

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def make_key(dir_path):
    """A throwaway RSA key pair (PKCS#8 PEM, like Google's key files)."""
    key = Path(dir_path) / "sa-key.pem"
    pub = Path(dir_path) / "sa-pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA",
                    "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout",
                    "-out", str(pub)], check=True, capture_output=True)
    return key, pub


def verify_rs256(pub, signing_input, sig):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "in").write_bytes(signing_input)
        (Path(d) / "sig").write_bytes(sig)
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub),
                            "-signature", str(Path(d) / "sig"),
                            str(Path(d) / "in")], capture_output=True, text=True)
        return p.returncode == 0 and "Verified OK" in p.stdout


class AuthStub:
    def __init__(self, pub_key=None, token_file=None, tls=None):
        """tls: (key.pem, cert.pem) to answer over https instead."""
        self.pub_key = pub_key
        self.token_file = token_file
        self.expect = {}            # claims the JWT must carry
        self.kid = None             # expected JWT kid
        self.user = None            # (client_id, secret, refresh token)
        self.expires_in = 3600
        self.fail = None            # (status, json body) for the next calls
        self.metadata_flavor_reply = True
        self.calls = []             # {"kind", "time", "token", ...}
        self.lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                stub.post(self)

            def do_GET(self):
                stub.get(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            serve_tls(self.server, *tls)
        self.port = self.server.server_address[1]
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self.host = "127.0.0.1:%d" % self.port
        self.token_uri = self.url + "/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def reply(self, h, status, body, headers=()):
        body = json.dumps(body).encode() if not isinstance(body, bytes) else body
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def issue(self, h, kind, info, headers=()):
        with self.lock:
            n = len([c for c in self.calls if c["kind"] == kind]) + 1
            token = "ya29.%s-%d" % (kind, n)
            info.update(kind=kind, time=time.time(), token=token,
                        expires_in=self.expires_in)
            self.calls.append(info)
            if self.token_file:
                tmp = Path(str(self.token_file) + ".new")
                tmp.write_text(token + "\n")
                tmp.replace(self.token_file)
        self.reply(h, 200, {"access_token": token, "expires_in": self.expires_in,
                            "token_type": "Bearer"}, headers)

    def refuse(self, h, kind, status, body, info, headers=()):
        with self.lock:
            info.update(kind=kind, time=time.time(), refused=body)
            self.calls.append(info)
        self.reply(h, status, body, headers)

    def post(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length).decode()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        info = {"form": form, "content_type": h.headers.get("Content-Type")}
        if h.path != "/token":
            return self.reply(h, 404, {"error": "not_found"})
        if self.fail:
            return self.refuse(h, "fail", self.fail[0], self.fail[1], info)
        if form.get("grant_type") == JWT_BEARER:
            problem = self.check_jwt(form.get("assertion", ""), info)
            if problem:
                return self.refuse(h, "sa", 400, {"error": "invalid_grant",
                                                  "error_description": problem}, info)
            return self.issue(h, "sa", info)
        if form.get("grant_type") == "refresh_token":
            want = self.user or ()
            got = (form.get("client_id"), form.get("client_secret"),
                   form.get("refresh_token"))
            if got != tuple(want):
                return self.refuse(h, "user", 400, {"error": "invalid_grant",
                                                    "error_description": "Bad Request"}, info)
            return self.issue(h, "user", info)
        return self.refuse(h, "other", 400, {"error": "unsupported_grant_type",
                                             "error_description": "Invalid grant_type"}, info)

    def check_jwt(self, jwt, info):
        """None if the assertion is one Google would accept, else why not."""
        parts = jwt.split(".")
        if len(parts) != 3:
            return "Invalid JWT: not three parts"
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            return "Invalid JWT: bad encoding"
        info.update(header=header, claims=claims)
        if header.get("alg") != "RS256" or header.get("typ") != "JWT":
            return "Invalid JWT header"
        if self.kid is not None and header.get("kid") != self.kid:
            return "Invalid JWT: wrong kid"
        if not verify_rs256(self.pub_key, (parts[0] + "." + parts[1]).encode(), sig):
            return "Invalid JWT Signature."
        for k, v in self.expect.items():
            if claims.get(k) != v:
                return "Invalid JWT: %s is %r, not %r" % (k, claims.get(k), v)
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "Invalid JWT: iat/exp missing"
        if abs(iat - now) > 60 or not 0 < exp - iat <= 3600:
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        return None

    def get(self, h):
        info = {"path": h.path, "flavor": h.headers.get("Metadata-Flavor")}
        if h.path != METADATA_PATH:
            return self.reply(h, 404, b"not found")
        if h.headers.get("Metadata-Flavor") != "Google":
            # What the real server says to requests without the header.
            return self.refuse(h, "metadata", 403, b"Missing required header: Metadata-Flavor", info)
        headers = [("Metadata-Flavor", "Google")] if self.metadata_flavor_reply else []
        if self.fail:
            return self.refuse(h, "metadata", self.fail[0], self.fail[1], info,
                               headers)
        return self.issue(h, "md", info, headers)

    def fetches(self, kind=None):
        with self.lock:
            return [c for c in self.calls if "token" in c and
                    (kind is None or c["kind"] == kind)]
