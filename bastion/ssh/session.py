"""One session channel: decide the command, then relay it to the target and record it.

asyncssh's ``exec_requested`` must answer at once, so the request is accepted and the
session's task decides: allow opens an upstream channel of the same shape (PTY or
not); deny writes one line naming the rule and exits with ``EXIT_DENIED``; review is
held (fail closed) until the approvals service exists. Data is relayed as bytes with
back-pressure both ways: when one side's send buffer fills, the other side stops
reading, so a stream of any size keeps the bastion's memory flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncssh

from ..errors import BastionError, UpstreamError
from ..identity import Identity
from ..logs import ContextLog
from ..policy import Decision, decide
from ..record import CastWriter, cast_path

if TYPE_CHECKING:
    from ..config import Target
    from .server import Services
    from .upstream import Lease

__all__ = ["EXIT_BASTION_ERROR", "EXIT_DENIED", "EXIT_HELD", "BastionSession", "SessionContext"]

#: Exit status of a command the policy denied (sysexits EX_NOPERM).
EXIT_DENIED = 77
#: Exit status of a command held for review that was not approved (EX_TEMPFAIL).
EXIT_HELD = 75
#: Exit status when the bastion itself could not run the command (like ssh's 255).
EXIT_BASTION_ERROR = 255

#: Longest a target's EOF waits for the exit status that usually follows it at once.
EOF_HOLD_SECONDS = 5.0

_PASS_ENV_PREFIXES = ("LANG", "LC_")
_HOLD_LIMIT = 256 * 1024


@dataclass
class SessionContext:
    """Who asked for this channel, where it goes, and the shared services."""

    services: Services
    identity: Identity
    target: Target
    login: str
    conn_label: str
    peer: str


def new_session_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


class _Upstream(asyncssh.SSHClientSession[bytes]):
    """The target's side of one relayed command; hands everything to the session."""

    def __init__(self, down: BastionSession):
        self.down = down

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self.down.from_target(data, datatype)

    def eof_received(self) -> bool:
        self.down.target_eof()
        return True

    def exit_status_received(self, status: int) -> None:
        self.down.target_exited()

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.down.target_exited()

    def pause_writing(self) -> None:
        self.down.pause_client()

    def resume_writing(self) -> None:
        self.down.resume_client()

    def connection_lost(self, exc: Exception | None) -> None:
        self.down.target_closed(exc)


class BastionSession(asyncssh.SSHServerSession[bytes]):
    """A client's session channel on the bastion (jump or direct mode)."""

    def __init__(self, ctx: SessionContext):
        self.ctx = ctx
        self.id = new_session_id()
        self.log = ContextLog(
            "bastion.session",
            f"{ctx.conn_label} session={self.id} user={ctx.identity.user} "
            f"target={ctx.target.name} login={ctx.login}",
        )
        self.chan: asyncssh.SSHServerChannel | None = None
        self.up_chan: asyncssh.SSHClientChannel | None = None
        self.lease: Lease | None = None
        self.command: str | None = None
        self.kind = "exec"
        self.term: tuple[str, tuple[int, int, int, int], dict[int, int]] | None = None
        self.cast: CastWriter | None = None
        self.client_eof = False
        self.finished = False
        self._held: list[bytes] = []  # client bytes that arrived before the target was ready
        self._held_size = 0
        self.task: asyncio.Task | None = None
        self._eof_hold: asyncio.TimerHandle | None = None  # target EOF waiting for the status

    # ---- requests from the client (answered at once) ----
    def connection_made(self, chan: asyncssh.SSHServerChannel) -> None:
        self.chan = chan
        self.ctx.services.sessions.add(self)

    def shutdown(self) -> None:
        """The bastion is stopping: stop the command, tell the client, close the cast."""
        if self.cast:
            self.cast.marker("bastion shutting down")
        if self.up_chan is not None:
            self.up_chan.close()
        self._finish(EXIT_BASTION_ERROR, "the bastion is shutting down")

    def pty_requested(self, term_type: str, term_size, term_modes) -> bool:
        self.term = (term_type, term_size, term_modes)
        return True

    def shell_requested(self) -> bool:
        self.kind = "shell"
        return True

    def exec_requested(self, command: str) -> bool:
        self.kind = "exec"
        self.command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        self.kind = f"subsystem:{subsystem}"
        return True

    def session_started(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    # ---- the session's task ----
    async def _run(self) -> None:
        try:
            await self._start()
        except asyncio.CancelledError:
            self._finish(EXIT_BASTION_ERROR, "bastion shutting down")
            raise
        except BastionError as exc:
            self._finish(EXIT_BASTION_ERROR, str(exc))
        except Exception:  # never let one session take down others
            self.log.exception("session failed")
            self._finish(EXIT_BASTION_ERROR, "internal error in the bastion; see its log")

    def _open_cast(self) -> None:
        ctx = self.ctx
        width, height = 80, 24
        env: dict[str, str] = {}
        if self.term:
            width, height = self.term[1][0] or 80, self.term[1][1] or 24
            env["TERM"] = self.term[0]
        path = cast_path(ctx.services.config.recording.dir, self.id)
        title = f"{ctx.identity.user} -> {ctx.login}@{ctx.target.name}: {self.command or self.kind}"
        self.cast = CastWriter(
            path,
            width=width,
            height=height,
            command=self.command if self.command is not None else self.kind,
            title=title[:200],
            env=env or None,
            extra={
                "bastion": {
                    "session": self.id,
                    "user": ctx.identity.user,
                    "groups": list(ctx.identity.groups),
                    "target": ctx.target.name,
                    "login": ctx.login,
                    "kind": self.kind,
                    "peer": ctx.peer,
                }
            },
            max_output_bytes=ctx.services.config.recording.max_output_bytes,
        )
        ctx.services.store.session_started(
            self.id,
            user=ctx.identity.user,
            target=ctx.target.name,
            login=ctx.login,
            kind=self.kind,
            command=self.command,
            cast_path=str(path),
        )
        ctx.services.audit.write(
            "channel",
            session=self.id,
            conn=self.ctx.conn_label,
            user=ctx.identity.user,
            target=ctx.target.name,
            login=ctx.login,
            kind=self.kind,
            command=self.command,
            pty=bool(self.term),
            cast=str(path),
        )

    async def _start(self) -> None:
        try:
            self._open_cast()
        except OSError as exc:  # fail closed: nothing runs unrecorded
            self.log.error("cannot open the recording: %s", exc)
            self._finish(EXIT_BASTION_ERROR, "the session cannot be recorded; nothing was run")
            return
        if self.kind != "exec" or self.command is None:
            where = f"{self.ctx.login}@{self.ctx.target.name}"
            if self.kind == "shell":
                what = "interactive shells are"
                hint = f"run one command at a time: ssh -J <bastion> {where} 'COMMAND'"
            else:
                what = f"the {self.kind.split(':', 1)[1]} subsystem is"
                hint = "to copy files use scp -O (the classic protocol, checked like a command)"
            reason = f"{what} not available through this bastion yet"
            self._record_decision(Decision("deny", "unsupported", reason))
            self._finish(EXIT_DENIED, f"{reason}; {hint}")
            return
        if "\x00" in self.command:
            # sshd hands the command to the shell as a C string, cutting it at the NUL:
            # what would run is not what was decided.
            reason = "the command contains a NUL byte, so the target would run only a part of it"
            self._record_decision(Decision("deny", "nul-byte", reason))
            self._finish(EXIT_DENIED, f"denied (nul-byte): {reason}")
            return
        decision = decide(
            self.ctx.services.config.policy,
            user=self.ctx.identity.user,
            groups=self.ctx.identity.groups,
            target=self.ctx.target.name,
            login=self.ctx.login,
            command=self.command,
            pty=self.term is not None,
        )
        self._record_decision(decision)
        # The reason starts with "deny (rule): "; say it once, in the user's words.
        detail = decision.reason.removeprefix(f"{decision.action} ({decision.rule})")
        detail = detail.removeprefix(":").strip()
        if decision.action == "deny":
            self._finish(EXIT_DENIED, f"denied ({decision.rule}): {detail}")
            return
        if decision.action != "allow":
            self._finish(
                EXIT_HELD,
                f"held for review ({decision.rule}): {detail}; approvals are not "
                f"enabled on this bastion yet, so the command was not run",
            )
            return
        await self._open_upstream()

    def _record_decision(self, decision: Decision) -> None:
        ctx = self.ctx
        self.log.info(
            "decision %s rule=%s command=%r", decision.action, decision.rule, self.command
        )
        if self.cast:
            self.cast.marker(
                f"decision {decision.action} ({decision.rule}) for {ctx.identity.user}: "
                f"{decision.reason}"
            )
        ctx.services.store.session_decided(self.id, decision.action, decision.rule)
        ctx.services.audit.write(
            "decision",
            session=self.id,
            user=ctx.identity.user,
            target=ctx.target.name,
            login=ctx.login,
            command=self.command,
            decision=decision.action,
            rule=decision.rule,
            reason=decision.reason,
            commands=list(decision.commands),
        )

    async def _open_upstream(self) -> None:
        ctx = self.ctx
        assert self.chan is not None and self.command is not None
        env: dict[bytes | str, bytes | str] = {
            k: v for k, v in self.chan.get_environment().items() if k.startswith(_PASS_ENV_PREFIXES)
        }
        # () means "no PTY" to asyncssh (with config=None), as the client asked.
        term_type, term_size, term_modes = self.term or ((), (), ())
        for attempt in range(3):
            lease = self.lease = await ctx.services.pool.lease(ctx.target, ctx.login)
            try:
                self.up_chan, _ = await lease.conn.create_session(
                    lambda: _Upstream(self),
                    self.command,
                    env=env,
                    encoding=None,
                    window=ctx.services.window,
                    max_pktsize=ctx.services.max_pktsize,
                    term_type=term_type,
                    term_size=term_size,
                    term_modes=term_modes,
                )
                break
            except asyncssh.ChannelOpenError as exc:
                ctx.services.pool.mark_full(lease)
                lease.release()
                self.lease = None
                if attempt == 2:
                    raise UpstreamError(
                        f"{ctx.target.name} refused a session: {exc.reason}"
                    ) from None
            except (OSError, asyncssh.Error) as exc:
                lease.release()
                self.lease = None
                raise UpstreamError(f"lost the connection to {ctx.target.name}: {exc}") from None
        assert self.up_chan is not None
        if self.finished:  # the client left while we were connecting
            self.up_chan.close()
            return
        for data in self._held:
            self.up_chan.write(data)
        self._held.clear()
        if self.client_eof:
            self.up_chan.write_eof()
        self.chan.resume_reading()

    # ---- relay: client -> target ----
    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.cast and self.ctx.services.config.recording.record_input:
            self.cast.input(data)
        if self.up_chan is not None:
            self.up_chan.write(data)
        elif not self.finished:
            # Not decided or not connected yet: keep it (never sent unless allowed),
            # and stop reading once a window's worth is waiting.
            self._held.append(data)
            self._held_size += len(data)
            if self._held_size >= _HOLD_LIMIT and self.chan is not None:
                self.chan.pause_reading()

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.up_chan is not None:
            self.up_chan.write_eof()
        return True

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self.cast:
            self.cast.resize(width, height)
        if self.up_chan is not None:
            self.up_chan.change_terminal_size(width, height, pixwidth, pixheight)

    def signal_received(self, signal: str) -> None:
        if self.up_chan is not None:
            self.up_chan.send_signal(signal)

    def break_received(self, msec: int) -> bool:
        if self.up_chan is not None:
            self.up_chan.send_break(msec)
            return True
        return False

    def pause_writing(self) -> None:
        if self.up_chan is not None:
            self.up_chan.pause_reading()

    def resume_writing(self) -> None:
        if self.up_chan is not None:
            self.up_chan.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        """The client went away: stop the command, close the recording."""
        self.ctx.services.sessions.discard(self)
        if self.up_chan is not None:
            self.up_chan.close()
        if self.task and not self.task.done():
            self.task.cancel()
        self._close_records(None, "client disconnected" if not self.finished else None)
        self.finished = True

    # ---- relay: target -> client ----
    def from_target(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.finished:
            return
        if self.cast:
            try:
                self.cast.output(data)
            except OSError as exc:
                # Fail closed, and only this session: the upstream connection is shared.
                self.log.error("recording failed: %s", exc)
                if self.up_chan is not None:
                    self.up_chan.close()
                self._finish(EXIT_BASTION_ERROR, "the session could not be recorded; stopped")
                return
        if self.chan is not None:
            self.chan.write(data, datatype)

    def target_eof(self) -> None:
        """Pass EOF on once the command's exit status is known, the status first.

        sshd may send EOF before exit-status, and an OpenSSH ControlMaster closes a
        channel as soon as EOF has gone both ways: an EOF passed on at once would lose
        the status (the client then reports 255). So EOF waits for the status, or the
        target's close, for at most ``EOF_HOLD_SECONDS`` (a command that closed its
        output and runs on still gets its EOF)."""
        if self.chan is None or self.finished:
            return
        if not self._deliver_exit(None):
            loop = asyncio.get_running_loop()
            self._eof_hold = loop.call_later(EOF_HOLD_SECONDS, self._release_eof)

    def target_exited(self) -> None:
        """The command's exit status or signal arrived: deliver it if EOF is waiting."""
        if self._eof_hold is not None and not self.finished:
            self._cancel_eof_hold()
            self._deliver_exit(None)

    def _release_eof(self) -> None:
        self._eof_hold = None
        if self.chan is not None and not self.finished:
            self.chan.write_eof()

    def _cancel_eof_hold(self) -> None:
        if self._eof_hold is not None:
            self._eof_hold.cancel()
            self._eof_hold = None

    def pause_client(self) -> None:
        if self.chan is not None:
            self.chan.pause_reading()

    def resume_client(self) -> None:
        if self.chan is not None:
            self.chan.resume_reading()

    def target_closed(self, exc: Exception | None) -> None:
        self._cancel_eof_hold()
        if self.lease:
            self.lease.release()
            self.lease = None
        if self.finished or self.chan is None or self.up_chan is None:
            return
        if not self._deliver_exit(exc):
            why = f"connection to {self.ctx.target.name} lost" + (f": {exc}" if exc else "")
            self._finish(EXIT_BASTION_ERROR, why)

    def _deliver_exit(self, exc: Exception | None) -> bool:
        """Relay the target's exit status or signal if it is known; False if not."""
        assert self.chan is not None and self.up_chan is not None
        signal = self.up_chan.get_exit_signal()
        status = self.up_chan.get_exit_status()
        if signal:
            name, core, msg, lang = signal
            self._close_records(None, f"exit signal {name}")
            self.finished = True
            self.chan.exit_with_signal(name, core, msg, lang)
            return True
        if status is not None and status >= 0 and exc is None:
            self._finish(status, None)
            return True
        return False

    # ---- ending ----
    def _finish(self, status: int, message: str | None) -> None:
        """Tell the client why (one line on stderr), exit with status, close records."""
        if self.finished:
            return
        self.finished = True
        self._cancel_eof_hold()
        self._held.clear()
        if message and self.chan is not None:
            line = f"bastion: {message}\r\n" if self.term else f"bastion: {message}\n"
            try:
                self.chan.write_stderr(line.encode())
            except (OSError, asyncssh.Error, BrokenPipeError):
                pass
            if self.cast:
                with contextlib.suppress(OSError):
                    self.cast.output(line.encode())
        self._close_records(status, None)
        if self.chan is not None:
            try:
                self.chan.exit(status)
            except (OSError, asyncssh.Error):
                pass

    def _close_records(self, status: int | None, note: str | None) -> None:
        if self.cast and not self.cast.closed:
            try:
                self.cast.close(note or (f"exit status {status}" if status is not None else None))
            except OSError as exc:
                self.log.error("closing the recording failed: %s", exc)
            self.ctx.services.store.session_ended(self.id, status)
            self.ctx.services.audit.write(
                "session_end",
                session=self.id,
                user=self.ctx.identity.user,
                target=self.ctx.target.name,
                exit_status=status,
                note=note,
                output_bytes=self.cast.output_bytes + self.cast.dropped_bytes,
            )
