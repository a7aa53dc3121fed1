#!/usr/bin/env python3
"""A token server for the registry tests (Docker's token authentication, as docker-registry's
`auth: token` expects it): answers GET /token?service=S&scope=repository:NAME:ACTIONS with an
ES256 JWT carrying its signing certificate (x5c), for the one user it knows (HTTP Basic).
Requests without credentials, or with wrong ones, get 401. Listens on 127.0.0.1 only."""

import argparse
import base64
import datetime
import http.server
import json
import time
import uuid
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--cert-out", required=True)
    a = p.parse_args()

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strata-test-token-signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    server = http.server.HTTPServer(("127.0.0.1", a.port), None)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            print(fmt % args, flush=True)

        def deny(self):
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/token":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            expected = "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self.deny()
            q = parse_qs(url.query)
            access = []
            for scope in q.get("scope", []):
                parts = scope.split(":")
                if len(parts) >= 3 and parts[0] == "repository":
                    access.append({"type": "repository", "name": ":".join(parts[1:-1]), "actions": parts[-1].split(",")})
            t = int(time.time())
            header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
            claims = {
                "iss": "strata-test-issuer",
                "sub": a.user,
                "aud": q.get("service", [""])[0],
                "exp": t + 600,
                "nbf": t - 60,
                "iat": t,
                "jti": str(uuid.uuid4()),
                "access": access,
            }
            signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}".encode()
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            token = signing_input.decode() + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
            body = json.dumps({"token": token, "access_token": token, "expires_in": 600}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server.RequestHandlerClass = Handler
    with open(a.cert_out + ".tmp", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    import os

    os.rename(a.cert_out + ".tmp", a.cert_out)
    server.serve_forever()


if __name__ == "__main__":
    main()
