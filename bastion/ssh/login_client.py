"""``bastion-cli login``'s side of the wire: ask the bastion, as ``bastion-login``, which
providers it trusts, and to certify our key for a token.

The bastion is verified before anything is sent: either its host certificate is signed
by the CA whose fingerprint the user gave (``--ca-fingerprint``, read from the
administrator), or known_hosts already trusts it (``@cert-authority``). The token
travels on the channel's stdin, never in the command.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass
from typing import Any

import asyncssh

from ..errors import BastionError
from ..identity.login import ProviderInfo
from .client import ClientSettings
from .login import LOGIN_USER

__all__ = ["Bastion", "request_certificate", "trusted_providers"]


@dataclass
class Bastion:
    """How to reach and trust a bastion for login."""

    settings: ClientSettings
    key: asyncssh.SSHKey
    ca_fingerprint: str | None = None  # SHA256:... of the bastion's host CA
    host_ca: asyncssh.SSHKey | None = None  # set once verified by fingerprint


class _LoginClient(asyncssh.SSHClient):
    def __init__(self, bastion: Bastion):
        self.bastion = bastion
        self.banner: list[str] = []
        self.seen_ca = ""

    def auth_banner_received(self, msg: str, lang: str) -> None:
        self.banner.append(msg.strip())

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.seen_ca = key.get_fingerprint()
        if self.bastion.ca_fingerprint and self.seen_ca == self.bastion.ca_fingerprint:
            self.bastion.host_ca = key
            return True
        return False


async def _run(bastion: Bastion, command: list[str], stdin: str = "") -> dict[str, Any]:
    settings = bastion.settings
    where = f"{settings.host}:{settings.port}"
    client = _LoginClient(bastion)
    known_hosts: Any
    if bastion.ca_fingerprint:
        known_hosts = ([], [], [])  # only the CA with that fingerprint (validate_host_ca_key)
    elif settings.known_hosts.exists():
        known_hosts = str(settings.known_hosts)
    else:
        raise BastionError(
            f"cannot verify the bastion at {where}: give --ca-fingerprint SHA256:... (ask "
            f"your administrator) or add its @cert-authority line to {settings.known_hosts}"
        )
    try:
        conn, _ = await asyncio.wait_for(
            asyncssh.create_connection(
                lambda: client,
                settings.host,
                settings.port,
                username=LOGIN_USER,
                client_keys=[bastion.key],
                known_hosts=known_hosts,
                agent_path=None,
                config=None,
                preferred_auth=["publickey"],
            ),
            settings.connect_timeout,
        )
    except TimeoutError:
        raise BastionError(f"the bastion at {where} did not answer") from None
    except asyncssh.HostKeyNotVerifiable as exc:
        if bastion.ca_fingerprint:
            seen = client.seen_ca or "no host certificate"
            raise BastionError(
                f"the bastion at {where} is not the one you were told about: its host CA is "
                f"{seen}, not {bastion.ca_fingerprint}. Nothing was sent."
            ) from None
        raise BastionError(
            f"cannot verify the bastion at {where} ({exc.reason}): give --ca-fingerprint, "
            f"or check the @cert-authority line in {settings.known_hosts}"
        ) from None
    except asyncssh.PermissionDenied:
        why = "; ".join(b.removeprefix("bastion: ") for b in client.banner) or "refused"
        raise BastionError(f"the bastion refused the login request: {why}") from None
    except (OSError, asyncssh.Error) as exc:
        raise BastionError(f"cannot reach the bastion at {where}: {exc}") from None
    try:
        async with conn:
            result = await conn.run(shlex.join(command), input=stdin, check=False)
    except (OSError, asyncssh.Error) as exc:
        raise BastionError(f"lost the connection to the bastion at {where}: {exc}") from None
    text = str(result.stdout or "").strip()
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if result.exit_status != 0:
        raise BastionError(str(body.get("error") or "the bastion refused the login request"))
    return body


async def trusted_providers(bastion: Bastion) -> list[ProviderInfo]:
    """The identity providers the bastion trusts (name, issuer, client id, scopes)."""
    body = await _run(bastion, ["providers"])
    found = []
    for p in body.get("providers", []):
        if isinstance(p, dict):
            found.append(
                ProviderInfo(
                    str(p.get("name", "")),
                    str(p.get("issuer", "")),
                    str(p.get("client_id", "")),
                    tuple(str(s) for s in p.get("scopes", []) or ["openid"]),
                    str(p.get("kind", "user")),
                )
            )
    return found


async def request_certificate(
    bastion: Bastion, token: str, *, provider: str | None = None, nonce: str | None = None
) -> dict[str, Any]:
    """Ask the bastion to certify ``bastion.key`` for ``token``; its JSON answer."""
    command = ["issue"]
    if provider:
        command += ["--provider", provider]
    if nonce:
        command += ["--nonce", nonce]
    body = await _run(bastion, command, stdin=token + "\n")
    if not isinstance(body.get("certificate"), str):
        raise BastionError("the bastion answered without a certificate")
    return body
