# SPDX-License-Identifier: MIT
"""Stand-ins for the AWS credential services the plugin's chain talks to:
STS AssumeRoleWithWebIdentity (POST /sts/), the ECS/EKS container
credentials endpoint (GET /container) and EC2 IMDSv2 (/latest/...).

Every source hands out s3rver's keys (s3rver accepts no others) with a
session token naming the source and a serial number ("sts-3"), so a test
sees in the S3 requests which source signed them and after how many
fetches.
"""
import datetime
import http.server
import json
import threading
import urllib.parse

from harness import serve_tls

KEY = "S3RVER"
IMDS_SESSION = "imds-session-token-AQAEAE"
ROLE = "drgw-node-role"


def expiration(ttl):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=ttl)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class CredStub:
    def __init__(self, tls=None):
        """tls: (key.pem, cert.pem) to answer over https instead."""
        self.sts_ttl = 3600
        self.container_ttl = 3600
        self.imds_ttl = 6 * 3600
        self.container_auth = None      # required Authorization value
        self.sts_fail = None            # (status, code, message)
        self.calls = {"sts": [], "container": [], "imds": []}
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

            def do_PUT(self):
                stub.put(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            serve_tls(self.server, *tls)
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http",
                                          self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def reply(self, h, status, body, ctype):
        body = body.encode() if isinstance(body, str) else body
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def record(self, kind, info):
        with self.lock:
            self.calls[kind].append(info)
            return len(self.calls[kind])

    def post(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(h.rfile.read(length).decode(),
                                     keep_blank_values=True)
        form = {k: v[0] for k, v in form.items()}
        n = self.record("sts", {"form": form,
                                "authorization": h.headers.get("Authorization"),
                                "content_type": h.headers.get("Content-Type")})
        if h.path != "/sts/" or form.get("Action") != "AssumeRoleWithWebIdentity":
            return self.reply(h, 400, "<ErrorResponse><Error><Code>InvalidAction"
                              "</Code><Message>bad</Message></Error></ErrorResponse>",
                              "text/xml")
        if self.sts_fail:
            status, code, msg = self.sts_fail
            return self.reply(h, status, "<ErrorResponse><Error><Type>Sender</Type>"
                              "<Code>%s</Code><Message>%s</Message></Error>"
                              "</ErrorResponse>" % (code, msg), "text/xml")
        xml = ("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
               "<AssumeRoleWithWebIdentityResult><Credentials>"
               "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
               "<SessionToken>sts-%d</SessionToken><Expiration>%s</Expiration>"
               "</Credentials><SubjectFromWebIdentityToken>system:sa</SubjectFromWebIdentityToken>"
               "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
               % (KEY, KEY, n, expiration(self.sts_ttl)))
        self.reply(h, 200, xml, "text/xml")

    def json_creds(self, token, ttl, code=None):
        d = {"AccessKeyId": KEY, "SecretAccessKey": KEY, "Token": token,
             "Expiration": expiration(ttl)}
        if code:
            d.update(Code=code, Type="AWS-HMAC", LastUpdated=expiration(0))
        return json.dumps(d)

    def get(self, h):
        if h.path == "/container":
            n = self.record("container", {"authorization": h.headers.get("Authorization")})
            if self.container_auth and h.headers.get("Authorization") != self.container_auth:
                return self.reply(h, 401, "{}", "application/json")
            return self.reply(h, 200, self.json_creds("container-%d" % n,
                                                      self.container_ttl),
                              "application/json")
        base = "/latest/meta-data/iam/security-credentials/"
        if h.path.startswith(base):
            n = self.record("imds", {"path": h.path,
                                     "token": h.headers.get("X-aws-ec2-metadata-token")})
            if h.headers.get("X-aws-ec2-metadata-token") != IMDS_SESSION:
                return self.reply(h, 401, "", "text/plain")
            if h.path == base:
                return self.reply(h, 200, ROLE, "text/plain")
            if h.path == base + ROLE:
                return self.reply(h, 200, self.json_creds("imds-%d" % n, self.imds_ttl,
                                                          "Success"),
                                  "text/plain")
        self.reply(h, 404, "not found", "text/plain")

    def put(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        h.rfile.read(length)
        if h.path == "/latest/api/token" and \
                h.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self.record("imds", {"path": h.path})
            return self.reply(h, 200, IMDS_SESSION, "text/plain")
        self.reply(h, 403, "", "text/plain")
