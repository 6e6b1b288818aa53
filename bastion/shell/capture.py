"""Run a short command on the target and collect what it prints (the shell's side execs).

The interactive shell asks the target small questions on the same upstream connection:
the starting directory and environment, whether a ``cd`` works, what a ``Tab`` completes
to. Each is its own exec channel without a terminal, bounded in time and in output;
nothing here reaches the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import UpstreamError
from ..flows.ports import ExitResult, Upstream

__all__ = ["Captured", "run_captured"]


@dataclass(frozen=True)
class Captured:
    result: ExitResult
    stdout: bytes
    stderr: bytes
    truncated: bool = False


class _Collect:
    """A ``RemoteSink`` that keeps at most ``limit`` bytes of each stream."""

    def __init__(self, limit: int):
        self.limit = limit
        self.out = bytearray()
        self.err = bytearray()
        self.truncated = False

    def remote_output(self, data: bytes, stderr: bool) -> None:
        buf = self.err if stderr else self.out
        room = self.limit - len(buf)
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        buf += data

    def remote_eof(self) -> None:
        pass

    def remote_exited(self) -> None:
        pass

    def remote_paused(self) -> None:
        pass

    def remote_resumed(self) -> None:
        pass


async def run_captured(
    upstream: Upstream,
    command: str,
    *,
    env: Mapping[str, str],
    timeout: float = 10.0,
    limit: int = 1 << 20,
) -> Captured:
    """Run ``command`` (no terminal, empty stdin); raises ``UpstreamError`` on failure
    or when it runs longer than ``timeout`` seconds."""
    sink = _Collect(limit)
    # opening the channel is bounded by the upstream's own connect timeout
    remote = await upstream.start(command, env=env, term=None, sink=sink)
    try:
        remote.write_eof()
        result = await asyncio.wait_for(remote.wait(), timeout)
    except TimeoutError:
        raise UpstreamError(f"the target did not answer within {timeout:g} s") from None
    finally:
        remote.close()
    return Captured(result, bytes(sink.out), bytes(sink.err), sink.truncated)
