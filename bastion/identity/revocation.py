"""The revocation list: checked on every authentication, and on live connections.

``bastion cert revoke`` writes an entry to the store (by serial, key id or subject);
every public-key authentication, outer and inner (the jump's), asks the store whether
an entry covers the certificate, so a revoked certificate cannot open a new connection
from the moment the entry is written. Connections that are already open (an ssh
ControlMaster) are closed by ``watch``, which polls the store for new entries every
``interval`` seconds (several bastions sharing one store all see them).

Limits: a bastion whose store cannot be read refuses every certificate (fail closed);
a serial is compared whatever CA signed the certificate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from ..storage.interface import REVOCATION_KINDS, Revocation
from .model import Identity

__all__ = ["RevocationStore", "describe", "new_revocation", "revocation_reason", "watch"]

log = logging.getLogger("bastion.identity")


class RevocationStore(Protocol):
    async def revocation_for(
        self, serial: int, key_id: str, valid_after: int
    ) -> Revocation | None: ...

    async def revocations_after(self, position: int) -> tuple[int, list[Revocation]]: ...


def describe(revocation: Revocation) -> str:
    """The sentence a revoked user reads."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(revocation.at))
    why = f": {revocation.reason}" if revocation.reason else ""
    return f"your certificate was revoked ({when}{why}); ask an administrator"


def new_revocation(kind: str, value: str, reason: str = "", by: str = "") -> Revocation:
    """A checked revocation entry (ValueError names what is wrong)."""
    if kind not in REVOCATION_KINDS:
        raise ValueError(f"revoke by one of {', '.join(REVOCATION_KINDS)}, not {kind!r}")
    value = value.strip()
    if not value:
        raise ValueError(f"give the {kind} to revoke")
    if kind == "serial" and not value.isdigit():
        raise ValueError(f"a serial is a number, not {value!r}")
    return Revocation(kind, value, time.time(), reason.strip()[:500], by)


async def revocation_reason(store: RevocationStore, identity: Identity) -> str:
    """Why ``identity``'s certificate may not authenticate ("" if it may); a store that
    cannot answer refuses (fail closed)."""
    try:
        found = await store.revocation_for(identity.serial, identity.key_id, identity.valid_after)
    except Exception as exc:  # noqa: BLE001 - any store failure refuses, never admits
        log.error("revocation check failed: %s", exc)
        return "the bastion cannot check revocations right now; try again shortly"
    return describe(found) if found else ""


async def watch(
    store: RevocationStore,
    live: Callable[[], Iterable[tuple[Identity, Callable[[str], None]]]],
    interval: float = 2.0,
) -> None:
    """Close live connections whose certificate a new entry revokes, until cancelled.

    ``live`` yields (identity, close) for each authenticated connection; ``close`` gets
    the sentence to tell."""
    position, _ = await store.revocations_after(0)
    while True:
        await asyncio.sleep(interval)
        try:
            position, new = await store.revocations_after(position)
        except Exception as exc:  # noqa: BLE001 - keep watching; auth still checks each time
            log.error("reading revocations failed: %s", exc)
            continue
        if not new:
            continue
        for identity, close in list(live()):
            reason = await revocation_reason(store, identity)
            if reason:
                close(reason)
