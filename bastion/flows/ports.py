"""What a flow sees of the world: the client's channel and commands on the target.

Flows (exec, shell, sftp) are written against these small interfaces, never against
asyncssh, so they can be tested with plain fakes. ``bastion.ssh.adapter`` implements
``ClientChannel`` over an asyncssh server channel and ``bastion.ssh.upstream``
implements ``Upstream`` over the pooled connection to a target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "ClientChannel",
    "ExitResult",
    "RemoteCommand",
    "RemoteSink",
    "Terminal",
    "Upstream",
]


@dataclass(frozen=True)
class Terminal:
    """The client's PTY request, validated: passed on as is to the target."""

    type: str
    width: int = 80
    height: int = 24
    pixwidth: int = 0
    pixheight: int = 0
    modes: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ExitResult:
    """How a command on the target ended: a status, a signal, or the bastion's error."""

    status: int | None = None
    signal: tuple[str, bool, str, str] | None = None  # name, core dumped, message, lang
    error: str = ""  # set when the target could not say (connection lost, refused)


class ClientChannel(Protocol):
    """The client's session channel, as a flow drives it."""

    def write(self, data: bytes) -> None: ...

    def write_stderr(self, data: bytes) -> None: ...

    def write_eof(self) -> None: ...

    def exit(self, result: ExitResult) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class RemoteSink(Protocol):
    """Receives what a command on the target sends back (called from the event loop)."""

    def remote_output(self, data: bytes, stderr: bool) -> None: ...

    def remote_eof(self) -> None: ...

    def remote_exited(self) -> None: ...

    def remote_paused(self) -> None: ...

    def remote_resumed(self) -> None: ...


class RemoteCommand(Protocol):
    """One command running on the target."""

    def write(self, data: bytes) -> None: ...

    def write_eof(self) -> None: ...

    def resize(self, width: int, height: int, pixwidth: int, pixheight: int) -> None: ...

    def signal(self, name: str) -> None: ...

    def send_break(self, msec: int) -> None: ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...

    def result(self) -> ExitResult | None:
        """The exit status or signal if it has arrived, else None."""
        ...

    async def wait(self) -> ExitResult:
        """Until the command has ended and its output has been delivered."""
        ...


class Upstream(Protocol):
    """Starts commands on one target as one login, for one identity."""

    async def start(
        self,
        command: str,
        *,
        env: Mapping[str, str],
        term: Terminal | None,
        sink: RemoteSink,
    ) -> RemoteCommand:
        """Open a channel and run ``command`` (never empty: the bastion never asks a
        target for a shell). Raises ``UpstreamError`` with a sentence on failure."""
        ...

    async def start_sftp(self, *, sink: RemoteSink) -> RemoteCommand:
        """Open the target's SFTP server; its replies go to ``sink`` as stdout."""
        ...
