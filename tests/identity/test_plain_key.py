"""Plain-ssh login binds only keys the client proved to hold on this connection: a key
merely offered (anyone can copy a public key) or badly signed is never bound."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

from asyncssh.packet import String

from bastion.identity.settings import IdentitySettings
from bastion.ssh.certs import generate_key
from bastion.ssh.login_auth import plain_key_auth


@dataclass
class Owner:
    """The parts of a BastionServer that plain_key_auth uses."""

    parent: object = None
    proven_keys: list = field(default_factory=list)
    told: list = field(default_factory=list)
    services: object = None

    def _refuse(self, username: str, reason: str, *, certificate: bool) -> None:
        self.told.append(reason)


class NoBindings:
    async def bound_certificate(self, fingerprint: str, now: float) -> None:
        return None


def owner(parent: object = None) -> Owner:
    identity = IdentitySettings(ssh_login_provider="corp")
    services = SimpleNamespace(
        store=NoBindings(), issuer=object(), config=SimpleNamespace(identity=identity)
    )
    return Owner(parent=parent, services=services)


def test_only_a_key_that_signed_is_proven():
    key = generate_key()
    data = key.public_data
    signed = String(b"session-id") + b"userauth request"

    async def run() -> None:
        outer = owner()
        assert await plain_key_auth(outer, "alice", data, b"", b"") is True  # PK_OK
        assert outer.proven_keys == []  # a query proves nothing
        other = generate_key()
        bad = other.sign(signed, b"ssh-ed25519")
        assert await plain_key_auth(outer, "alice", data, signed, bad) is False
        assert outer.proven_keys == []  # another key's signature proves nothing
        good = key.sign(signed, b"ssh-ed25519")
        assert await plain_key_auth(outer, "alice", data, signed, good) is False  # not bound
        assert [k.public_data for k in outer.proven_keys] == [data]
        assert "is not signed in" in outer.told[-1]
        inner = owner(parent=outer)
        assert await plain_key_auth(inner, "root", data, b"", b"") is False  # no binding

    asyncio.run(run())
