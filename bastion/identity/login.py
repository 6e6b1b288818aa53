"""Getting a token from an OpenID provider, on the user's side (``bastion-cli login``)
and for keyboard-interactive login on the bastion (device flow only).

- ``code_flow``: authorization code with PKCE (S256), ``state`` and ``nonce``, on a
  loopback redirect (``http://127.0.0.1:PORT/callback``, a free port). It opens a
  browser when one is there, else prints the URL; the callback must carry the same
  ``state``, and only one callback is taken.
- ``DeviceFlow``: the device authorization grant (RFC 8628): a code and a URL to show,
  then polling at the provider's interval, slower on ``slow_down``, until the user
  signs in, denies, or the code expires.
- ``read_token_file``: a workload token from a file or stdin (``-``), for agents and CI.

The provider is a public client (no secret): PKCE protects the code. HTTP goes through
httpx with timeouts; a token is never logged, and leaves this module only as a value.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from ..errors import BastionError
from .oidc import MAX_TOKEN_BYTES, http_get_json
from .settings import check_url

__all__ = [
    "DeviceFlow",
    "ProviderInfo",
    "Tokens",
    "code_flow",
    "discover",
    "pkce_pair",
    "read_token_file",
]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ProviderInfo:
    """What a client needs to talk to a provider (the bastion's ``providers`` verb)."""

    name: str
    issuer: str
    client_id: str
    scopes: tuple[str, ...]
    kind: str = "user"


@dataclass(frozen=True)
class Tokens:
    id_token: str
    nonce: str | None = None


async def discover(issuer: str) -> dict[str, Any]:
    """The provider's discovery document; its issuer must be the one configured."""
    try:
        check_url(issuer)
    except ValueError as exc:
        raise BastionError(f"issuer {exc}") from None
    metadata = await http_get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
    if str(metadata.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise BastionError(f"the provider at {issuer} names another issuer")
    return metadata


def _endpoint(metadata: dict[str, Any], name: str) -> str:
    url = metadata.get(name)
    if not isinstance(url, str):
        raise BastionError(f"the provider does not offer {name.replace('_', ' ')}")
    try:
        return check_url(url)
    except ValueError as exc:
        raise BastionError(f"{name}: {exc}") from None


async def _post(url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False) as client:
            response = await client.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise BastionError(f"cannot reach {url}: {exc.__class__.__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


def _error(body: dict[str, Any], status: int) -> str:
    code = str(body.get("error") or f"HTTP {status}")[:64]
    text = str(body.get("error_description") or "")[:200]
    return f"{code}: {text}" if text else code


def _id_token(body: dict[str, Any]) -> str:
    token = body.get("id_token")
    if not isinstance(token, str) or not token:
        raise BastionError("the provider answered without an ID token (is 'openid' a scope?)")
    return token


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_PAGE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"<!doctype html><title>bastion</title><p>Signed in. You can close this window and "
    b"return to the terminal.</p>"
)
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n"


async def code_flow(
    provider: ProviderInfo,
    *,
    open_browser: Callable[[str], bool],
    say: Callable[[str], None],
    timeout: float = 300.0,
) -> Tokens:
    """Authorization code + PKCE on a loopback redirect; the ID token and its nonce."""
    metadata = await discover(provider.issuer)
    authorize = _endpoint(metadata, "authorization_endpoint")
    token_url = _endpoint(metadata, "token_endpoint")
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    got: asyncio.Future[dict[str, list[str]]] = asyncio.get_running_loop().create_future()

    async def on_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            parts = line.decode("latin-1").split()
            target = urlsplit(parts[1]) if len(parts) >= 2 else None
            query = parse_qs(target.query) if target else {}
            if target is None or target.path != "/callback" or query.get("state") != [state]:
                writer.write(_NOT_FOUND)  # another page, or a forged callback: ignored
            else:
                writer.write(_PAGE)
                if not got.done():
                    got.set_result(query)
            await writer.drain()
        except (OSError, TimeoutError, UnicodeError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_request, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redirect = f"http://127.0.0.1:{port}/callback"
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect,
        "scope": " ".join(provider.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    url = f"{authorize}?{urlencode(params)}"
    try:
        if not open_browser(url):
            say(f"Open this URL in a browser to sign in:\n\n  {url}\n")
        else:
            say(f"A browser opened to sign in; if it did not, open:\n\n  {url}\n")
        try:
            query = await asyncio.wait_for(got, timeout)
        except TimeoutError:
            raise BastionError(f"no sign-in within {int(timeout)} seconds") from None
    finally:
        server.close()
    if "error" in query:
        raise BastionError(
            f"the provider refused: {query['error'][0][:64]} "
            f"{query.get('error_description', [''])[0][:200]}".strip()
        )
    code = query.get("code", [""])[0]
    if not code:
        raise BastionError("the provider's redirect carried no code")
    status, body = await _post(
        token_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": provider.client_id,
            "code_verifier": verifier,
        },
    )
    if status != 200:
        raise BastionError(f"the provider refused the code: {_error(body, status)}")
    return Tokens(_id_token(body), nonce)


@dataclass
class DeviceFlow:
    """RFC 8628, in two steps: ``start`` (what to show) and ``wait`` (poll for the token)."""

    provider: ProviderInfo
    user_code: str = ""
    verification_uri: str = ""
    verification_uri_complete: str = ""
    device_code: str = ""
    interval: float = 5.0
    expires_at: float = 0.0
    token_url: str = ""

    async def start(self) -> DeviceFlow:
        metadata = await discover(self.provider.issuer)
        device_url = _endpoint(metadata, "device_authorization_endpoint")
        self.token_url = _endpoint(metadata, "token_endpoint")
        status, body = await _post(
            device_url,
            {"client_id": self.provider.client_id, "scope": " ".join(self.provider.scopes)},
        )
        if status != 200 or not isinstance(body.get("device_code"), str):
            raise BastionError(f"the provider refused a device code: {_error(body, status)}")
        self.device_code = body["device_code"]
        self.user_code = str(body.get("user_code", ""))[:64]
        self.verification_uri = str(body.get("verification_uri", ""))[:512]
        self.verification_uri_complete = str(body.get("verification_uri_complete", ""))[:1024]
        self.interval = max(1.0, float(body.get("interval", 5)))
        self.expires_at = time.monotonic() + min(float(body.get("expires_in", 600)), 1800)
        return self

    def instructions(self) -> str:
        lines = [f"To sign in, open {self.verification_uri} and enter the code {self.user_code}"]
        if self.verification_uri_complete:
            lines.append(f"(or open {self.verification_uri_complete})")
        return "\n".join(lines)

    async def poll_once(self) -> Tokens | None:
        """One token request: the tokens, None while pending; BastionError when final."""
        status, body = await _post(
            self.token_url,
            {
                "grant_type": DEVICE_GRANT,
                "device_code": self.device_code,
                "client_id": self.provider.client_id,
            },
        )
        if status == 200:
            return Tokens(_id_token(body))
        error = body.get("error")
        if error == "authorization_pending":
            return None
        if error == "slow_down":
            self.interval += 5
            return None
        if error == "access_denied":
            raise BastionError("the sign-in was denied")
        if error == "expired_token":
            raise BastionError("the device code expired: start again")
        raise BastionError(f"the provider refused the device code: {_error(body, status)}")

    async def wait(self, deadline: float | None = None) -> Tokens:
        """Poll until signed in (or the code, or ``deadline``, runs out)."""
        end = self.expires_at if deadline is None else min(deadline, self.expires_at)
        while True:
            tokens = await self.poll_once()
            if tokens is not None:
                return tokens
            if time.monotonic() + self.interval > end:
                raise BastionError("no sign-in before the device code expired")
            await asyncio.sleep(self.interval)


def read_token_file(path: str) -> str:
    """A workload token from ``path`` (``-``: stdin): one JWT, whitespace trimmed."""
    try:
        if path == "-":
            text = sys.stdin.read(MAX_TOKEN_BYTES + 1)
        else:
            with Path(path).open(encoding="ascii", errors="replace") as f:
                text = f.read(MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise BastionError(f"cannot read the token file {path}: {exc.strerror}") from None
    token = text.strip()
    if not token:
        raise BastionError(f"the token file {path} is empty")
    if len(token) > MAX_TOKEN_BYTES:
        raise BastionError(f"the token in {path} is larger than {MAX_TOKEN_BYTES} bytes")
    return token
