"""A write-coalescing wrapper for the transport under an SSH connection.

asyncssh writes every SSH packet with its own ``transport.write``. Under a client's TCP
connection each becomes a ``send`` system call; under an inner (jump) connection each
becomes its own data message on the outer channel, and since an inner packet is a few
bytes larger than the outer channel's largest packet, a full one and a tiny remainder.
The wrapper gathers the writes made while one event-loop callback runs and hands them
on as one ``writelines`` at the end of that callback: one system call, and outer packets
cut full. Nothing waits on a timer: latency is unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["CoalescingTransport"]


class CoalescingTransport:
    """Proxies an asyncio transport or an SSH channel; ``write`` is batched per loop
    iteration."""

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop):
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
            try:
                self._transport.writelines(pending)
            except OSError:  # a jump channel closed under us: the connection is ending
                pass

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
