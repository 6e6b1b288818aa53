"""What every flow of one channel shares, and how a flow ends.

A flow owns one client channel from the moment the client asks for something (exec,
shell, subsystem) to its end. The adapter in ``bastion.ssh`` delivers the client's
events to it; the flow decides, records and relays, and ends the channel exactly once
with ``finish``: one line on stderr saying why (when there is something to say), the
exit status, and the recording closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..identity import Identity
from ..record import RecordingError, SessionRecorder
from .ports import ClientChannel, ExitResult, Terminal, Upstream

if TYPE_CHECKING:
    from ..approvals import ApprovalService
    from ..policy import Policy
    from ..record.mask import Masker

__all__ = [
    "EXIT_BASTION_ERROR",
    "EXIT_DENIED",
    "EXIT_HELD",
    "FlowContext",
    "Flow",
]

#: Exit status of a command denied by policy or by an approver (sysexits EX_NOPERM).
EXIT_DENIED = 77
#: Exit status of a held command that did not run: filed without waiting, expired or
#: cancelled (sysexits EX_TEMPFAIL: try again once approved).
EXIT_HELD = 75
#: Exit status when the bastion itself could not run the command (like ssh's 255).
EXIT_BASTION_ERROR = 255


@dataclass
class FlowContext:
    """Who asked, where it goes, and the services a flow uses."""

    identity: Identity
    target: str
    login: str
    session_id: str
    client: ClientChannel
    recorder: SessionRecorder
    upstream: Upstream
    policy: Policy
    approvals: ApprovalService
    log: logging.LoggerAdapter[Any] | logging.Logger
    term: Terminal | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # passed on to the target
    options: Mapping[str, str] = field(default_factory=dict)  # BASTION_* set by the client
    refusal: str = ""  # set by the adapter when the request itself was bad
    masker: Masker | None = None  # masks live output without a PTY ([masking] live)


class Flow:
    """Base of the channel flows: event hooks with safe defaults, and one way to end."""

    def __init__(self, ctx: FlowContext):
        self.ctx = ctx
        self.finished = False

    # ---- events from the client (called from the event loop; never block) ----
    def data_received(self, data: bytes) -> None:
        """Bytes from the client's stdin."""

    def eof_received(self) -> None:
        """The client closed its stdin."""

    def resized(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        """The client's terminal changed size."""

    def signal_received(self, name: str) -> None:
        """The client asked to deliver a signal."""

    def break_received(self, msec: int) -> None:
        """The client sent a break."""

    def client_paused(self) -> None:
        """The client cannot take more output for now."""

    def client_resumed(self) -> None:
        """The client can take output again."""

    def client_gone(self) -> None:
        """The channel closed under us (disconnect)."""

    def shutdown(self) -> None:
        """The bastion is stopping."""
        if not self.finished:
            try:
                self.ctx.recorder.marker("bastion shutting down")
            except RecordingError:
                pass
        self.finish(ExitResult(status=EXIT_BASTION_ERROR), "the bastion is shutting down")

    async def run(self) -> None:
        raise NotImplementedError

    def begin(self) -> bool:
        """Open the recording (fail closed: nothing runs unrecorded) and end at once on a
        request the adapter refused; True when the flow may go on."""
        ctx = self.ctx
        try:
            ctx.recorder.open()
        except OSError as exc:
            ctx.log.error("cannot open the recording: %s", exc)
            self.finish(
                ExitResult(status=EXIT_BASTION_ERROR, error="recording failed"),
                "the session cannot be recorded; nothing was run",
            )
            return False
        if ctx.refusal:
            rule, _, reason = ctx.refusal.partition(": ")
            ctx.recorder.decision("deny", rule, reason)
            self.refused()
            self.finish(ExitResult(status=EXIT_DENIED), f"denied ({rule}): {reason}")
            return False
        return True

    def refused(self) -> None:
        """The request was refused; called before the channel ends."""

    # ---- ending ----
    def say(self, message: str) -> None:
        """One line for the user on stderr, also in the recording."""
        newline = "\r\n" if self.ctx.term else "\n"
        line = f"bastion: {message}{newline}".encode()
        try:
            self.ctx.client.write_stderr(line)
        except Exception:  # noqa: BLE001 - a closing channel: nothing more to tell
            pass
        try:
            self.ctx.recorder.output(line)
        except RecordingError:
            pass

    def finish(self, result: ExitResult, message: str | None = None) -> None:
        """End the channel once: say why, record, exit."""
        if self.finished:
            return
        self.finished = True
        if message:
            self.say(message)
        note = None
        if result.signal:
            note = f"exit signal {result.signal[0]}"
        elif result.error:
            note = result.error
        self.ctx.recorder.close(result.status, note)
        self.ctx.client.exit(result)

    def gone(self, note: str = "client disconnected") -> None:
        """The client left: close the records, nothing to tell anyone."""
        self.finished = True
        self.ctx.recorder.close(None, note)


async def cancelled_quietly(coro: Any) -> None:
    """Run cleanup that must finish even while the task is being cancelled."""
    try:
        await asyncio.shield(coro)
    except Exception as exc:  # noqa: BLE001 - cleanup never raises
        logging.getLogger("bastion.flows").warning("cleanup failed: %s", exc)
