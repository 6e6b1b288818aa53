"""A write-coalescing wrapper for the client's TCP transport.

asyncssh writes every SSH packet (and an empty IGNORE packet before each one) with its
own ``transport.write``; on an idle socket each becomes a ``send`` system call. The
wrapper gathers the writes made while one event-loop callback runs and hands them to
the socket as one ``writelines`` at the end of that callback, so a burst of packets
costs one system call. Nothing waits on a timer: latency is unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["CoalescingTransport"]


class CoalescingTransport:
    """Proxies an asyncio transport; ``write`` is batched per loop iteration."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.writelines(pending)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
