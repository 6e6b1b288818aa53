"""Authentication steps that come from OIDC login: the issuance user's key check and
the revocation check every certificate passes, outer and inner connections alike.

Kept apart from ``server.py`` so the listener only calls one function per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncssh
from asyncssh.public_key import decode_ssh_public_key

from ..errors import AuthError
from ..identity import Identity
from ..identity.revocation import revocation_reason
from .login import login_identity

if TYPE_CHECKING:
    from .server import BastionServer

__all__ = ["check_login_key", "live_identities", "revocation_refusal"]


def check_login_key(key_data: bytes) -> tuple[asyncssh.SSHKey, Identity]:
    """The key a ``bastion-login`` client wants signed: a plain public key."""
    try:
        key = decode_ssh_public_key(key_data)
    except asyncssh.KeyImportError:
        raise AuthError(
            "bastion-login takes the plain key to be certified, not a certificate "
            "(bastion-cli login does this for you)"
        ) from None
    return key, login_identity(key)


async def revocation_refusal(owner: BastionServer, username: str, checked: Any) -> bool:
    """True if ``checked`` may authenticate; else tells the client why (audited)."""
    if checked.issuing:
        return True
    reason = await revocation_reason(owner.services.store, checked.identity)
    if not reason:
        return True
    owner._refuse(username, reason, certificate=True)
    return False


def live_identities(services: Any) -> list[tuple[Identity, Any]]:
    """(identity, close) for every authenticated connection, for the revocation watcher;
    ``close`` disconnects with the sentence (ssh prints it) and audits it."""
    found = []
    for conn in list(services.connections):
        owner = getattr(conn, "_owner", None)
        identity = getattr(owner, "identity", None)
        if identity is None or getattr(owner, "issuing", False):
            continue

        def close(reason: str, conn: Any = conn, owner: Any = owner) -> None:
            owner._audit_refusal("connection", reason)
            try:
                conn.disconnect(asyncssh.DISC_BY_APPLICATION, f"bastion: {reason}")
            except (OSError, asyncssh.Error):
                conn.abort()

        found.append((identity, close))
    return found
