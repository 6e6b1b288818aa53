"""Sessions of the reserved user names: the bastion's own verbs, never a target.

``bastion-ctl`` is the user name ``bastion-cli`` logs in with, using the person's usual
certificate; its exec requests are verbs (``bastion.control.verbs``) answered with one
JSON object and an exit status. A shell or subsystem request gets the usage and
status 2; nothing else is possible on these sessions.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import asyncssh

from ..control import ControlContext, run_verb
from ..control.verbs import USAGE
from ..identity import Identity

if TYPE_CHECKING:
    from .server import Services

__all__ = ["CONTROL_USER", "RESERVED_USERS", "ControlSession"]

CONTROL_USER = "bastion-ctl"
RESERVED_USERS = frozenset({CONTROL_USER})


class ControlSession(asyncssh.SSHServerSession[bytes]):
    """One verb: read the request, answer in JSON, exit with its status."""

    def __init__(self, services: Services, identity: Identity, conn_label: str):
        self.ctx = ControlContext(identity, services.approvals, services.audit, conn_label)
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
        self.task = asyncio.get_running_loop().create_task(self._run())

    def eof_received(self) -> bool:
        # `ssh ... < /dev/null` sends EOF at once: keep our side open for the answer
        # (asyncssh would otherwise half-close it before the verb has run)
        return True

    async def _run(self) -> None:
        if self.command is None:
            self._answer(2, {"error": "give a verb", "usage": USAGE})
            return
        reply = await run_verb(self.ctx, self.command)
        self._answer(reply.status, reply.body)

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
