"""``bastion-cli``'s side of the wire: run one verb on the bastion over SSH.

It logs in as the reserved user ``bastion-ctl`` with the person's own key and the
certificate beside it (``KEY-cert.pub``), checks the bastion's host certificate against
the user's known_hosts (the ``@cert-authority`` line from ``bastion ca known-hosts``),
and returns the verb's exit status and JSON answer. Errors are sentences.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from ..errors import BastionError
from .control import CONTROL_USER

__all__ = ["ClientSettings", "call"]


@dataclass(frozen=True)
class ClientSettings:
    """Where the bastion is and who we are."""

    host: str
    port: int
    identity: Path
    known_hosts: Path
    connect_timeout: float = 15.0


class _Client(asyncssh.SSHClient):
    def __init__(self) -> None:
        self.banner: list[str] = []

    def auth_banner_received(self, msg: str, lang: str) -> None:
        self.banner.append(msg.strip())


def _credentials(identity: Path) -> list[Any]:
    if not identity.exists():
        raise BastionError(
            f"no key at {identity}: run `bastion-cli login`, or give -i/--identity KEY"
        )
    cert = Path(f"{identity}-cert.pub")
    if not cert.exists():
        raise BastionError(
            f"no certificate at {cert}: run `bastion-cli login` to get one for {identity}"
        )
    try:
        key = asyncssh.read_private_key(str(identity))
        certificate = asyncssh.read_certificate(str(cert))
    except (OSError, asyncssh.KeyImportError) as exc:
        raise BastionError(f"cannot read {identity} or its certificate: {exc}") from None
    return [(key, certificate)]


async def call(settings: ClientSettings, words: list[str]) -> tuple[int, dict[str, Any]]:
    """Run one verb; (exit status, JSON answer). Raises BastionError if it cannot."""
    where = f"{settings.host}:{settings.port}"
    if not settings.known_hosts.exists():
        raise BastionError(
            f"{settings.known_hosts} not found: add the bastion's @cert-authority line "
            "(`bastion ca known-hosts` on the bastion) or give --known-hosts FILE"
        )
    client = _Client()
    try:
        conn, _ = await asyncio.wait_for(
            asyncssh.create_connection(
                lambda: client,
                settings.host,
                settings.port,
                username=CONTROL_USER,
                client_keys=_credentials(settings.identity),
                known_hosts=str(settings.known_hosts),
                agent_path=None,
                config=None,
                preferred_auth=["publickey"],
            ),
            settings.connect_timeout,
        )
    except TimeoutError:
        raise BastionError(f"the bastion at {where} did not answer") from None
    except asyncssh.HostKeyNotVerifiable as exc:
        raise BastionError(
            f"cannot verify the bastion at {where} ({exc.reason}): is its @cert-authority line "
            f"in {settings.known_hosts}, for this name?"
        ) from None
    except asyncssh.PermissionDenied:
        why = "; ".join(b.removeprefix("bastion: ") for b in client.banner) or "refused"
        raise BastionError(f"the bastion refused your certificate: {why}") from None
    except (OSError, asyncssh.Error) as exc:
        raise BastionError(f"cannot reach the bastion at {where}: {exc}") from None
    try:
        async with conn:
            result = await conn.run(shlex.join(words), check=False, encoding="utf-8")
    except (OSError, asyncssh.Error) as exc:
        raise BastionError(f"lost the connection to the bastion at {where}: {exc}") from None
    text = str(result.stdout or "").strip()
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {"error": text or str(result.stderr or "").strip() or "no answer"}
    if not isinstance(body, dict):
        body = {"error": "unexpected answer from the bastion"}
    status = result.exit_status if result.exit_status is not None else 255
    return status, body
