"""Allowed TCP forwards (``[[forwards]]``): the bastion connects, relays and counts bytes.

A ``direct-tcpip`` request on the outer connection that names no target (``ssh -L``,
``-D`` and ``-W`` all send one) is a forward. ``forward_for`` answers it: refused (an
audited ``forward`` event, the client sees "administratively prohibited") unless the
certificate permits port forwarding and a ``[[forwards]]`` rule allows the identity that
host and port, and never to a target's own SSH address. An allowed forward is a
``ForwardSession``: the bastion opens the TCP connection itself and relays both ways with
back-pressure; the audit event at its end has the bytes each way. The destination name is
resolved once, and refused when an address is a target's SSH address (a name that
points at a target is no way around ``ssh -J``); the checked address is the one used.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import asyncssh

from ..config import Config
from ..forwards import allowed_forward
from ..identity import Identity
from ..record import AuditLog
from .validate import clip

__all__ = ["ForwardSession", "forward_refusal", "target_addresses"]

log = logging.getLogger("bastion.forward")
CONNECT_TIMEOUT = 10.0


def forward_refusal(config: Config, identity: Identity, host: str, port: int) -> tuple[str, str]:
    """("", rule id) when the forward is allowed, else (why not, "")."""
    if "port-forwarding" not in identity.permits:
        return "your certificate does not permit port forwarding (permit-port-forwarding)", ""
    for target in config.targets.values():
        if port == target.port and host.lower().strip("[]") in (target.host.lower(), target.name):
            return f"{clip(host, 64)}:{port} is a target's SSH port: use ssh -J", ""
    rule = allowed_forward(config.forwards, identity.user, identity.groups, host, port)
    if rule is None:
        return (
            f"port forwarding to {clip(host, 64)}:{port} is not allowed for {identity.user} "
            "(no [[forwards]] rule allows it)",
            "",
        )
    return "", rule.id


async def target_addresses(config: Config) -> set[tuple[str, int]]:
    """Every (address, port) where a target's sshd listens, as this host resolves them."""
    loop = asyncio.get_running_loop()
    found: set[tuple[str, int]] = set()
    for target in config.targets.values():
        try:
            infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except OSError:
            continue
        found.update((str(info[4][0]), target.port) for info in infos)
    return found


class _TcpSide(asyncio.Protocol):
    """The bastion's TCP connection to the forward's destination."""

    def __init__(self, owner: ForwardSession):
        self.owner = owner
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.owner.bytes_down += len(data)
        chan = self.owner.chan
        if chan is not None:
            try:
                chan.write(data)
            except (OSError, asyncssh.Error):
                pass

    def eof_received(self) -> bool:
        self._eof()
        self.owner.tcp_closed = True  # the destination sends no more
        self.owner.maybe_done()
        return True

    def _eof(self) -> None:
        chan = self.owner.chan
        if chan is not None and not self.owner.sent_eof:
            self.owner.sent_eof = True
            try:
                chan.write_eof()
            except (OSError, asyncssh.Error):
                pass

    def pause_writing(self) -> None:
        if self.owner.chan is not None:
            self.owner.chan.pause_reading()

    def resume_writing(self) -> None:
        if self.owner.chan is not None:
            self.owner.chan.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.tcp_closed = True
        if exc is not None:
            self.owner.close(str(exc))
        else:
            self._eof()  # queued data still goes out first
            self.owner.maybe_done()


class ForwardSession(asyncssh.SSHTCPSession[bytes]):
    """One allowed forward: client channel <-> TCP connection from the bastion."""

    def __init__(
        self,
        host: str,
        port: int,
        rule: str,
        who: dict[str, Any],
        audit: AuditLog,
        on_close: Callable[[], None] | None = None,
        forbidden: Callable[[], Awaitable[set[tuple[str, int]]]] | None = None,
    ):
        self.host, self.port, self.rule = host, port, rule
        self.forbidden = forbidden
        self.on_close = on_close
        self.who = who
        self.audit = audit
        self.chan: asyncssh.SSHTCPChannel[bytes] | None = None
        self.tcp: _TcpSide | None = None
        self.bytes_up = 0  # client -> destination
        self.bytes_down = 0
        self._waiting: list[bytes] = []
        self._client_eof = False
        self.sent_eof = False
        self.tcp_closed = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, chan: asyncssh.SSHTCPChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan
        self._task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            address = await asyncio.wait_for(self._address(), CONNECT_TIMEOUT)
            if address is None:
                return
            _, tcp = await asyncio.wait_for(
                loop.create_connection(lambda: _TcpSide(self), address, self.port),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            self.close(f"cannot connect: {exc}")
            return
        self.tcp = tcp
        if self._closed:
            if tcp.transport is not None:
                tcp.transport.close()
            return
        self.audit.write("forward", **self.who, result="open", rule=self.rule, dest=self.dest)
        assert tcp.transport is not None
        for data in self._waiting:
            tcp.transport.write(data)
        self._waiting = []
        if self._client_eof and tcp.transport.can_write_eof():
            tcp.transport.write_eof()

    async def _address(self) -> str | None:
        """The address to connect to, resolved once and checked: a name that resolves
        to a target's SSH address is refused (and the checked address is the one used)."""
        infos = await asyncio.get_running_loop().getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        )
        addresses = [str(info[4][0]) for info in infos]
        if not addresses:
            raise OSError(f"{clip(self.host, 64)} has no address")
        forbidden = await self.forbidden() if self.forbidden is not None else set()
        for address in addresses:
            if (address, self.port) in forbidden:
                why = f"{self.dest} is a target's SSH address ({address}): use ssh -J"
                self.audit.write("forward", **self.who, result="refused", reason=why)
                self.close(why)
                return None
        return addresses[0]

    @property
    def dest(self) -> str:
        return f"{clip(self.host, 64)}:{self.port}"

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.bytes_up += len(data)
        if self.tcp is not None and self.tcp.transport is not None:
            self.tcp.transport.write(data)
        else:
            self._waiting.append(data)
            if sum(map(len, self._waiting)) > 256 * 1024 and self.chan is not None:
                self.chan.pause_reading()

    def eof_received(self) -> bool:
        self._client_eof = True
        transport = self.tcp.transport if self.tcp else None
        if transport is not None and transport.can_write_eof():
            transport.write_eof()
        self.maybe_done()
        return True

    def maybe_done(self) -> None:
        """Both sides said EOF and the destination closed: close the channel (asyncssh
        sends what is queued first); its end is audited in ``close``."""
        if self._client_eof and self.tcp_closed and self.chan is not None:
            self.chan.close()

    def pause_writing(self) -> None:
        if self.tcp is not None and self.tcp.transport is not None:
            self.tcp.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.tcp is not None and self.tcp.transport is not None:
            self.tcp.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.close("closed by the client" if exc is None else str(exc))

    def close(self, why: str) -> None:
        """End both sides once and audit the bytes each way."""
        if self._closed:
            return
        self._closed = True
        if self.on_close is not None:
            self.on_close()
        if self.tcp is not None and self.tcp.transport is not None:
            self.tcp.transport.close()
        if self.chan is not None:
            self.chan.close()
        log.info("forward %s closed: %s", self.dest, why)
        self.audit.write(
            "forward",
            **self.who,
            result="closed",
            rule=self.rule,
            dest=self.dest,
            note=why,
            bytes_to_dest=self.bytes_up,
            bytes_from_dest=self.bytes_down,
        )
