"""Certificate issuance over the bastion's own SSH port: the reserved user ``bastion-login``.

``bastion-cli login`` connects as ``bastion-login`` with the public key it wants signed:
any key is accepted for this user name, and the SSH signature proves the client holds
its private half (proof of possession). The session's exec request is a verb:

- ``providers``: the identity providers (name, issuer, kind, client id, scopes) the
  client needs for the browser and device flows; JSON on stdout, status 0;
- ``issue [--provider NAME] [--nonce VALUE]``: the token arrives on stdin (never in the
  command, which is logged), up to 16 KiB; the answer is the signed certificate and what
  it grants (status 0), or ``{"error": sentence}`` (status 1).

Nothing on this user reaches a target; a shell, pty or subsystem gets the usage.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from typing import TYPE_CHECKING, Any

import asyncssh
from asyncssh.public_key import decode_ssh_public_key

from ..errors import BastionError
from ..identity import Identity
from ..identity.issue import Grant, Issuer, IssueRefused, Signer
from ..identity.oidc import MAX_TOKEN_BYTES, TokenRefused, Verifier
from ..identity.settings import IdentitySettings
from .certs import issue_user_cert
from .verbsession import VerbSession

if TYPE_CHECKING:
    from .server import Services

__all__ = [
    "LOGIN_USER",
    "LoginSession",
    "build_issuer",
    "login_identity",
    "make_signer",
    "providers_json",
]

log = logging.getLogger("bastion.login")
LOGIN_USER = "bastion-login"
USAGE = "issue [--provider NAME] [--nonce VALUE] < token  |  providers"
_LOGIN_WINDOW = 300  # seconds a bastion-login connection may live


def make_signer(ca_key: asyncssh.SSHKey) -> Signer:
    """A Signer for ``Issuer``: OpenSSH certificates from the bastion's user CA."""

    def sign(grant: Grant, public_key: bytes) -> tuple[str, int, int, int]:
        key = decode_ssh_public_key(public_key)
        cert = issue_user_cert(
            ca_key,
            key,
            principals=[grant.principal],
            groups=list(grant.groups),
            ttl=grant.ttl,
            key_id=grant.key_id,
            permits=grant.permits,
        )
        line = cert.export_certificate("openssh").decode().strip()
        return line, cert._serial, cert._valid_after, cert._valid_before  # type: ignore[attr-defined]

    return sign


def build_issuer(
    settings: IdentitySettings, store: Any, audit: Any, ca_key: asyncssh.SSHKey
) -> Issuer | None:
    """The issuance service, or None when no provider is configured."""
    if not settings.providers:
        return None
    return Issuer(settings, Verifier(settings), store, audit, make_signer(ca_key))


def login_identity(key: asyncssh.SSHKey) -> Identity:
    """The identity of a ``bastion-login`` connection: only a key, not yet a person."""
    return Identity(
        user=LOGIN_USER,
        groups=(),
        key_id="",
        serial=0,
        ca="",
        fingerprint=key.get_fingerprint(),
        valid_before=int(time.time()) + _LOGIN_WINDOW,
        permits=frozenset(),
    )


def providers_json(settings: IdentitySettings) -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": p.name,
                "issuer": p.issuer,
                "kind": p.kind,
                "client_id": p.client_id,
                "scopes": list(p.scopes),
            }
            for p in settings.providers
        ]
    }


def _parse(command: str) -> tuple[str, dict[str, str]]:
    """``verb --opt value ...`` -> (verb, options); ValueError if malformed."""
    words = shlex.split(command)
    if not words:
        raise ValueError("give a verb")
    verb, rest, options = words[0], words[1:], {}
    allowed = {"issue": ("--provider", "--nonce"), "providers": ()}
    if verb not in allowed:
        raise ValueError(f"unknown verb {verb[:32]!r}")
    while rest:
        opt = rest.pop(0)
        if opt not in allowed[verb] or not rest or opt[2:] in options:
            raise ValueError(f"unexpected {opt[:32]!r}")
        options[opt[2:]] = rest.pop(0)[:256]
    return verb, options


class LoginSession(VerbSession):
    """One issuance request: read the token from stdin, answer JSON, exit."""

    def __init__(self, services: Services, key: asyncssh.SSHKey, conn_label: str):
        super().__init__()
        self.services, self.key, self.conn_label = services, key, conn_label
        self.stdin = bytearray()
        self.eof = asyncio.Event()

    async def _serve(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the client gets a sentence, the log the details
            log.exception("%s: certificate request failed", self.conn_label)
            self._answer(1, {"error": "the bastion failed to issue a certificate (see its log)"})

    def data_received(self, data: bytes, datatype: Any) -> None:
        if len(self.stdin) <= MAX_TOKEN_BYTES:
            self.stdin += data[: MAX_TOKEN_BYTES + 1 - len(self.stdin)]
        if len(self.stdin) > MAX_TOKEN_BYTES:
            self.eof.set()

    def eof_received(self) -> bool:
        self.eof.set()
        return super().eof_received()

    async def _run(self) -> None:
        issuer: Issuer | None = self.services.issuer
        if self.command is None:
            self._answer(2, {"error": "give a verb", "usage": USAGE})
            return
        try:
            verb, options = _parse(self.command)
        except ValueError as exc:
            self._answer(2, {"error": str(exc), "usage": USAGE})
            return
        if issuer is None:
            self._answer(1, {"error": "this bastion has no [[identity_providers]] configured"})
            return
        if verb == "providers":
            self._answer(0, providers_json(issuer.settings))
            return
        try:
            await asyncio.wait_for(self.eof.wait(), 30)
        except TimeoutError:
            self._answer(1, {"error": "no token arrived on stdin within 30 seconds"})
            return
        if len(self.stdin) > MAX_TOKEN_BYTES:
            self._answer(1, {"error": f"the token is larger than {MAX_TOKEN_BYTES} bytes"})
            return
        token = self.stdin.decode("ascii", errors="replace").strip()
        try:
            issued = await issuer.issue(
                token,
                public_key=self.key.public_data,
                fingerprint=self.key.get_fingerprint(),
                provider=options.get("provider"),
                nonce=options.get("nonce"),
                conn=self.conn_label,
            )
        except (IssueRefused, TokenRefused) as exc:
            self._answer(1, {"error": str(exc)})
            return
        except BastionError as exc:
            self._answer(1, {"error": f"cannot issue a certificate now: {exc}"})
            return
        grant = issued.grant
        targets = [
            {"name": t.name, "port": t.port, "logins": t.logins_for(grant.groups)}
            for t in self.services.config.targets.values()
            if t.logins_for(grant.groups)
        ]
        self._answer(
            0,
            {
                "certificate": issued.certificate,
                "user": grant.principal,
                "groups": list(grant.groups),
                "permits": sorted(grant.permits),
                "key_id": grant.key_id,
                "serial": issued.serial,
                "valid_before": issued.valid_before,
                "provider": grant.provider,
                "targets": targets,
            },
        )
