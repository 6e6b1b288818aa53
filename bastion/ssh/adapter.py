"""Thin glue: asyncssh session callbacks in, flow events out; the flow's ``ClientChannel``.

asyncssh answers a channel's requests (pty, env, exec, shell, subsystem) through these
callbacks and needs the answer at once, so the adapter only notes what was asked; when
the session starts it builds the flow (``make_flow``) and runs it as the channel's task.
Everything the client sends afterwards becomes a call on the flow. Writes to a closing
channel are dropped quietly: the flow learns of the close through ``client_gone``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import asyncssh

from ..flows.base import EXIT_BASTION_ERROR, Flow
from ..flows.ports import ExitResult, Terminal

if TYPE_CHECKING:
    from .channel import BastionServerChannel

__all__ = ["ChannelRequest", "SessionAdapter"]

log = logging.getLogger("bastion.session")


class ChannelRequest:
    """What the client asked of one session channel, as the flow factory sees it."""

    def __init__(self) -> None:
        self.kind = "shell"  # exec | shell | subsystem
        self.command: str | None = None
        self.subsystem: str | None = None
        self.term: Terminal | None = None
        self.env: dict[str, str] = {}
        self.refusal = ""
        self.pty_refused = ""


class SessionAdapter(asyncssh.SSHServerSession[bytes]):
    """One client session channel: requests noted, then events handed to a flow."""

    def __init__(
        self,
        make_flow: Callable[[SessionAdapter, ChannelRequest], Flow],
        *,
        allow_pty: bool = True,
        on_close: Callable[[SessionAdapter], None] | None = None,
    ):
        self.make_flow = make_flow
        self.allow_pty = allow_pty
        self.on_close = on_close
        self.request = ChannelRequest()
        self.chan: BastionServerChannel | None = None
        self.flow: Flow | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    # ---- requests (answered at once) ----
    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan  # type: ignore[assignment]

    def pty_requested(self, term_type: str, term_size, term_modes) -> bool:  # type: ignore[no-untyped-def]
        if not self.allow_pty:
            # OpenSSH's answer to a certificate without permit-pty: no PTY, command runs
            self.request.pty_refused = "your certificate does not permit a terminal (permit-pty)"
            return False
        width, height, pixwidth, pixheight = term_size
        self.request.term = Terminal(
            term_type,
            max(1, min(int(width) or 80, 10000)),
            max(1, min(int(height) or 24, 10000)),
            int(pixwidth),
            int(pixheight),
            dict(term_modes),
        )
        return True

    def shell_requested(self) -> bool:
        self.request.kind = "shell"
        return True

    def exec_requested(self, command: str) -> bool:
        self.request.kind = "exec"
        self.request.command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        self.request.kind = "subsystem"
        self.request.subsystem = subsystem
        return True

    def session_started(self) -> None:
        assert self.chan is not None
        self.request.env = dict(self.chan.client_env)
        self.request.refusal = self.chan.refusal
        try:
            self.flow = self.make_flow(self, self.request)
        except Exception:  # noqa: BLE001 - a bug here must fail this channel only
            log.exception("cannot start the session")
            self.exit(ExitResult(status=EXIT_BASTION_ERROR))
            return
        self.task = asyncio.get_running_loop().create_task(self.flow.run())

    # ---- events from the client ----
    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.flow is not None:
            self.flow.data_received(data)

    def eof_received(self) -> bool:
        if self.flow is not None:
            self.flow.eof_received()
        return True  # keep our half open: the command's output still comes

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self.flow is not None:
            self.flow.resized(width, height, pixwidth, pixheight)

    def signal_received(self, signal: str) -> None:
        if self.flow is not None:
            self.flow.signal_received(signal)

    def break_received(self, msec: int) -> bool:
        if self.flow is not None:
            self.flow.break_received(msec)
            return True
        return False

    def pause_writing(self) -> None:
        if self.flow is not None:
            self.flow.client_paused()

    def resume_writing(self) -> None:
        if self.flow is not None:
            self.flow.client_resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.flow is not None:
            self.flow.client_gone()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.on_close is not None:
            self.on_close(self)

    def shutdown(self) -> None:
        """The bastion is stopping."""
        if self.flow is not None and not self.flow.finished:
            self.flow.shutdown()

    # ---- ClientChannel (what the flow calls) ----
    def write(self, data: bytes) -> None:
        if self.chan is not None and not self.closed:
            try:
                self.chan.write(data)
            except (OSError, asyncssh.Error):
                pass

    def write_stderr(self, data: bytes) -> None:
        if self.chan is not None and not self.closed:
            try:
                self.chan.write_stderr(data)
            except (OSError, asyncssh.Error):
                pass

    def write_eof(self) -> None:
        if self.chan is not None and not self.closed:
            try:
                self.chan.write_eof()
            except (OSError, asyncssh.Error):
                pass

    def exit(self, result: ExitResult) -> None:
        if self.chan is None or self.closed:
            return
        try:
            if result.signal:
                name, core, msg, lang = result.signal
                self.chan.exit_with_signal(name, core, msg, lang)
            else:
                status = result.status if result.status is not None else EXIT_BASTION_ERROR
                self.chan.exit(status)
        except (OSError, asyncssh.Error):
            pass

    def pause_reading(self) -> None:
        if self.chan is not None and not self.closed:
            self.chan.pause_reading()

    def resume_reading(self) -> None:
        if self.chan is not None and not self.closed:
            self.chan.resume_reading()
