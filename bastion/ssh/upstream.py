"""Connections from the bastion to targets, with the stored key and pinned host key.

Upstream connections are pooled per (target, login) and shared by sessions: a new
command opens a channel on an existing connection instead of a new handshake. A
connection carries at most ``channels_per_connection`` channels (sshd's MaxSessions
defaults to 10) and is closed after ``idle_seconds`` without channels. Host keys are
pinned in policies.toml; an unknown or changed key is refused, never learned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncssh

from ..config import Target
from ..errors import HostKeyChangedError, UpstreamError
from .certs import load_private_key
from .tuning import MAX_PKTSIZE, WINDOW, common_options

__all__ = ["Lease", "UpstreamPool", "scan_host_key"]

log = logging.getLogger("bastion.upstream")


@dataclass(eq=False)
class _Conn:
    conn: asyncssh.SSHClientConnection
    limit: int
    channels: int = 0
    idle: asyncio.TimerHandle | None = None
    closed: bool = False


@dataclass(eq=False)
class Lease:
    """One channel's claim on a pooled connection; release it exactly once."""

    pool: UpstreamPool
    slot: _Conn
    released: bool = field(default=False)

    @property
    def conn(self) -> asyncssh.SSHClientConnection:
        return self.slot.conn

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.pool._release(self.slot)


class _Client(asyncssh.SSHClient):
    def __init__(self, on_lost: Callable[[], None]):
        self._on_lost = on_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()


class UpstreamPool:
    """Hands out channels to targets over shared, pinned connections."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        idle_seconds: float = 60.0,
        channels_per_connection: int = 8,
    ):
        self.connect_timeout = connect_timeout
        self.idle_seconds = idle_seconds
        self.channels_per_connection = channels_per_connection
        self._conns: dict[tuple[str, str], list[_Conn]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._keys: dict[str, asyncssh.SSHKey] = {}

    async def lease(self, target: Target, login: str) -> Lease:
        """A connection with room for one more channel, connecting if needed."""
        key = (target.name, login)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            for slot in self._conns.get(key, []):
                if not slot.closed and slot.channels < slot.limit:
                    return self._claim(slot)
            slot = await self._connect(target, login)
            self._conns.setdefault(key, []).append(slot)
            return self._claim(slot)

    def mark_full(self, lease: Lease) -> None:
        """The target refused a channel (MaxSessions): stop giving out this one."""
        lease.slot.limit = max(1, lease.slot.channels - 1)

    def _claim(self, slot: _Conn) -> Lease:
        slot.channels += 1
        if slot.idle:
            slot.idle.cancel()
            slot.idle = None
        return Lease(self, slot)

    def _release(self, slot: _Conn) -> None:
        slot.channels -= 1
        if slot.channels <= 0 and not slot.closed:
            loop = asyncio.get_running_loop()
            slot.idle = loop.call_later(self.idle_seconds, self._expire, slot)

    @staticmethod
    def _expire(slot: _Conn) -> None:
        slot.closed = True  # before close(): no lease may pick a closing connection
        slot.conn.close()

    def _private_key(self, target: Target, login: str) -> asyncssh.SSHKey:
        path = target.logins[login].key_file
        cache_key = str(path)
        if cache_key not in self._keys:
            self._keys[cache_key] = load_private_key(path)
        return self._keys[cache_key]

    async def _connect(self, target: Target, login: str) -> _Conn:
        where = f"{target.name} ({target.host}:{target.port})"
        try:
            pinned = [asyncssh.import_public_key(k) for k in target.host_keys]
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise UpstreamError(f"pinned host key of {target.name} is unreadable: {exc}") from None
        holder: dict[str, _Conn] = {}

        def lost() -> None:
            slot = holder.get("slot")
            if slot:
                slot.closed = True
                conns = self._conns.get((target.name, login), [])
                if slot in conns:
                    conns.remove(slot)

        try:
            conn, _ = await asyncio.wait_for(
                asyncssh.create_connection(
                    lambda: _Client(lost),
                    target.host,
                    target.port,
                    username=login,
                    client_keys=[self._private_key(target, login)],
                    known_hosts=(pinned, [], []),
                    agent_path=None,
                    config=None,
                    preferred_auth=["publickey"],
                    connect_timeout=self.connect_timeout,
                    keepalive_interval=30,
                    **common_options(),
                ),
                self.connect_timeout,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise HostKeyChangedError(
                f"host key changed on {where}: it does not match the pinned key. "
                f"If the change is expected, an administrator re-pins it with "
                f"`bastion target add {target.name} --scan ...`"
            ) from None
        except asyncssh.PermissionDenied:
            raise UpstreamError(f"{where} refused the bastion's key for login {login!r}") from None
        except TimeoutError:
            raise UpstreamError(
                f"{where} did not answer within {self.connect_timeout:g} s"
            ) from None
        except ConnectionRefusedError:
            raise UpstreamError(f"{where} is down: connection refused") from None
        except (OSError, asyncssh.Error) as exc:
            raise UpstreamError(f"cannot connect to {where}: {exc}") from None
        slot = _Conn(conn, self.channels_per_connection)
        holder["slot"] = slot
        log.info("upstream connected target=%s login=%s", target.name, login)
        return slot

    def close(self) -> None:
        for conns in self._conns.values():
            for slot in conns:
                slot.conn.close()
        self._conns.clear()


async def scan_host_key(host: str, port: int, timeout: float = 10.0) -> asyncssh.SSHKey:
    """Fetch a server's host key once, to pin it (`bastion target add --scan`)."""
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(host, port, server_host_key_algs=["ssh-ed25519"]),
            timeout,
        )
        if key is None:
            key = await asyncio.wait_for(asyncssh.get_server_host_key(host, port), timeout)
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise UpstreamError(f"cannot fetch the host key of {host}:{port}: {exc}") from None
    if key is None:
        raise UpstreamError(f"{host}:{port} offered no host key")
    return key


__all__ += ["MAX_PKTSIZE", "WINDOW"]
