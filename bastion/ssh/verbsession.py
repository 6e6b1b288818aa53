"""The session shape the reserved users share (``bastion-ctl``, ``bastion-login``): one
exec request names a verb, the answer is one JSON object and an exit status. No pty; a
shell or subsystem request leaves ``command`` unset, which the verb reader answers with
its usage."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncssh

__all__ = ["VerbSession"]


class VerbSession(asyncssh.SSHServerSession[bytes]):
    """Base of ``ControlSession`` and ``LoginSession``: they implement ``_serve``."""

    def __init__(self) -> None:
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.command: str | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan

    def pty_requested(self, term_type: Any, term_size: Any, term_modes: Any) -> bool:
        return False

    def shell_requested(self) -> bool:
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.command = command
        return True

    def session_started(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        raise NotImplementedError

    def eof_received(self) -> bool:
        # `ssh ... < /dev/null` sends EOF at once: keep our side open for the answer
        # (asyncssh would otherwise half-close it before the verb has run)
        return True

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        if self.chan is None:
            return
        try:
            self.chan.write((json.dumps(body, ensure_ascii=False) + "\n").encode())
            self.chan.exit(status)
        except (OSError, asyncssh.Error):
            pass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
