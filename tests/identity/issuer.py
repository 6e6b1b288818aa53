"""A local token issuer for tests: a discovery document and a JWKS served over HTTP on
127.0.0.1, and tokens signed with its keys (joserfc), like a CI system's or a
Kubernetes cluster's workload issuer. Keys can be rotated while it runs."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, Key, KeySet, RSAKey

_RSA: dict[str, RSAKey] = {}


def rsa_key(name: str, kid: str) -> RSAKey:
    """An RSA key generated once per test run for ``name`` (RSA generation is slow)."""
    if name not in _RSA:
        _RSA[name] = RSAKey.generate_key(2048)
    return RSAKey.import_key(_RSA[name].as_dict(private=True), parameters={"kid": kid})


class LocalIssuer:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks`` on a free port."""

    def __init__(self) -> None:
        self.keys: list[Key] = [rsa_key("issuer", "k1")]
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {
                        "issuer": issuer.url,
                        "jwks_uri": f"{issuer.url}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    }
                elif self.path == "/jwks":
                    issuer.fetches += 1
                    body = KeySet(list(issuer.keys)).as_dict(private=False)  # type: ignore[assignment]
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LocalIssuer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def rotate(self, kid: str = "k2", kind: str = "EC") -> Key:
        """Publish a new key (the old ones stay published, as providers do)."""
        key: Key = (
            ECKey.generate_key("P-256", parameters={"kid": kid})
            if kind == "EC"
            else rsa_key("rotated", kid)
        )
        self.keys.append(key)
        return key

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": "bastion",
            "sub": "system:serviceaccount:ci:deployer",
            "name": "deployer",
            "groups": ["ci"],
            "iat": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        key: Key | None = None,
        alg: str | None = None,
        kid: str | None = "",
        **claims: Any,
    ) -> str:
        key = key or self.keys[0]
        alg = alg or ("ES256" if isinstance(key, ECKey) else "RS256")
        header: dict[str, Any] = {"alg": alg}
        kid = key.kid if kid == "" else kid
        if kid is not None:
            header["kid"] = kid
        return jwt.encode(header, self.claims(**claims), key, algorithms=[alg])


def unsigned_token(claims: dict[str, Any]) -> str:
    """``alg: none``: a header, a payload and an empty signature."""
    import base64

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def hs256_with_public_key(issuer: LocalIssuer, claims: dict[str, Any]) -> str:
    """The classic key-confusion forgery: HMAC keyed with the issuer's public key (made
    by hand: joserfc refuses to build it)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    public = issuer.keys[0].as_pem(private=False)
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.keys[0].kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def tamper(token: str, **changes: Any) -> str:
    """The same signature over a changed payload."""
    import base64

    head, payload, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    new = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{head}.{new}.{sig}"
