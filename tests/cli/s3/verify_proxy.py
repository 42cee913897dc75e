#!/usr/bin/env python3
"""verify_proxy: a signature-checking HTTP proxy for the S3 client's tests.

Listens on 127.0.0.1 (a free port, printed as "verify_proxy listening on 127.0.0.1:PORT"),
receives each request our client sends, recomputes its SigV4 signature with botocore's own signer
(botocore.auth.S3SigV4Auth, same credentials, region and X-Amz-Date) over an AWSRequest built
from the same method, URL, headers and body hash, and requires the Authorization header to match
exactly. A match is forwarded to the upstream S3 server (fakes3) and its answer relayed; a
mismatch is answered 403 ProxySignatureMismatch and logged with both canonical requests.

The proxy also checks that X-Amz-Content-SHA256 is the SHA-256 of the body actually received
(unless UNSIGNED-PAYLOAD) and that X-Amz-Security-Token carries the configured session token.

With --tls-cert and --tls-key it serves HTTPS (the upstream stays plain HTTP), so the client's
https path (CA bundle, verification, skip-verify) is tested through the same check.

Log (--log): one line per request, "OK METHOD TARGET [range=...]" or "MISMATCH METHOD TARGET",
followed, for a mismatch, by the details.

Headers the client does not sign and botocore would not see at signing time (the HTTP layer adds
them later) are left out of the reconstructed request: Content-Length, Accept, Accept-Encoding,
Connection, Expect, User-Agent, Transfer-Encoding. Every other header the client sent is given to
botocore, so a header sent but not signed is a mismatch too.
"""
import argparse
import hashlib
import http.client
import http.server
import socketserver
import ssl
import sys
import threading
import urllib.parse

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

UNSIGNED = {"content-length", "accept", "accept-encoding", "connection", "expect", "user-agent",
            "transfer-encoding", "authorization", "keep-alive", "proxy-connection"}
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer",
       "upgrade"}

ARGS = None
LOG_LOCK = threading.Lock()


def log(line):
    with LOG_LOCK:
        with open(ARGS.log, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def expected_authorization(method, url, headers, amz_date, token):
    """Authorization as botocore computes it, and the canonical request it signed."""
    req = AWSRequest(method=method, url=url, headers=headers, data=b"")
    req.context["timestamp"] = amz_date
    creds = Credentials(ARGS.access_key, ARGS.secret_key, token)
    auth = S3SigV4Auth(creds, "s3", ARGS.region)
    canonical = auth.canonical_request(req)
    sts = auth.string_to_sign(req, canonical)
    sig = auth.signature(sts, req)
    signed = auth.signed_headers(auth.headers_to_sign(req))
    scope = auth.credential_scope(req)
    value = (f"AWS4-HMAC-SHA256 Credential={ARGS.access_key}/{scope}, "
             f"SignedHeaders={signed}, Signature={sig}")
    return value, canonical


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the log file says what matters
        pass

    def refuse(self, status, code, message):
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        target = self.path
        got = self.headers.get("Authorization", "")
        amz_date = self.headers.get("X-Amz-Date", "")
        problems = []
        payload = self.headers.get("X-Amz-Content-SHA256", "")
        if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
            problems.append(f"x-amz-content-sha256 {payload} is not the body's SHA-256")
        token = self.headers.get("X-Amz-Security-Token")
        if (token or None) != (ARGS.session_token or None):
            problems.append(f"x-amz-security-token {token!r}, want {ARGS.session_token!r}")
        # the request as the client sent it: same method, URL (path and query as on the wire)
        headers = {}
        for name, value in self.headers.items():
            if name.lower() not in UNSIGNED:
                headers[name] = value
        scheme = "https" if ARGS.tls_cert else "http"
        url = scheme + "://" + self.headers.get("Host", "") + target
        try:
            want, canonical = expected_authorization(self.command, url, headers, amz_date, token)
        except Exception as e:  # a request botocore cannot sign is a failure too
            want, canonical = f"(botocore failed: {e!r})", ""
        if got != want:
            problems.append(f"Authorization\n  got:  {got}\n  want: {want}\n"
                            f"botocore's canonical request:\n{canonical}")
        rng = self.headers.get("Range")
        desc = f"{self.command} {target}" + (f" range={rng}" if rng else "")
        if problems:
            log("MISMATCH " + desc + "\n" + "\n".join(problems))
            self.refuse(403, "ProxySignatureMismatch", "botocore computes another signature")
            return
        log("OK " + desc)
        self.forward(body)

    def forward(self, body):
        up = urllib.parse.urlsplit(ARGS.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if self.command == "HEAD":
            cl = resp.getheader("Content-Length")
            if cl is not None:
                self.send_header("Content-Length", cl)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--session-token")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--log", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    ARGS = p.parse_args()
    open(ARGS.log, "w").close()
    srv = Server(("127.0.0.1", 0), Handler)
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(f"verify_proxy listening on 127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
