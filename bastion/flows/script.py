"""A shell without a terminal (``ssh host < script.sh``, ``ssh host bash -s``): the script
on stdin is decided statement by statement.

The bastion cuts stdin into statements (``bastion.shell.statements``; a statement may
span lines), decides each, and feeds the allowed ones, in order, to one ``bash -s`` on
the target, so variables, functions and ``set -e`` work as in any script. A statement is
sent only once it is decided; a held one waits for its approval like an exec command
(``BASTION_WAIT=0``: it is filed and the script stops with status 75). A denied or
unreadable statement, or a refused hold, stops the script: what was sent before it
finishes, nothing after it is sent, one line says why, and the status is non-zero (77
denied, 75 held, 65 unreadable).

Limits: decisions are made without the working directory (``cd`` in a script is not
followed; relative paths are judged as such); a command in the script that reads stdin
reads the statements sent after it, as with ``bash -s`` itself (they were decided).
"""

from __future__ import annotations

import asyncio

from ..record import RecordingError
from ..shell import ScriptError, StatementReader
from .base import EXIT_DENIED, FlowContext
from .deciding import decide_off_loop
from .exec import text_to_run
from .hold import Hold, decision_detail
from .ports import ExitResult, RemoteCommand
from .relay import Relay
from .relayed import RelayedFlow

__all__ = ["EXIT_UNREADABLE", "SCRIPT_RUNNER", "ScriptFlow"]

#: Exit status when the script cannot be read (sysexits EX_DATAERR).
EXIT_UNREADABLE = 65
#: What runs on the target and reads the decided statements.
SCRIPT_RUNNER = "exec bash -s"
#: Script bytes kept unread before the client is paused.
_READ_AHEAD = 256 * 1024


class ScriptFlow(RelayedFlow):
    """Stdin as a script: read, decide, send, statement by statement."""

    kind = "script"

    def __init__(self, ctx: FlowContext):
        super().__init__(ctx)
        self.reader = StatementReader(ctx.policy.max_command_bytes)
        self.relay = Relay(ctx.client, self._record_output, masker=ctx.masker)  # no PTY
        self.remote: RemoteCommand | None = None
        self.hold = Hold(ctx, self.say)
        self._more = asyncio.Event()
        self._paused = False

    # ---- events ----
    def data_received(self, data: bytes) -> None:
        try:
            self.ctx.recorder.input(data)
        except RecordingError:
            pass
        self.reader.feed(data)
        self._more.set()
        if self.reader.buffered > _READ_AHEAD and not self._paused:
            self._paused = True
            self.ctx.client.pause_reading()

    def eof_received(self) -> None:
        self.reader.end()
        self._more.set()

    def _record_output(self, data: bytes) -> None:
        try:
            self.ctx.recorder.output(data)
        except RecordingError as exc:
            self._recording_failed(exc)

    # ---- the flow ----
    async def _run(self) -> None:
        if not self.begin():
            return
        ctx = self.ctx
        stop: tuple[int, str] | None = None
        while stop is None and not self.finished:
            try:
                statement = self.reader.next()
            except ScriptError as exc:
                ctx.recorder.decision("deny", "unreadable-script", str(exc))
                stop = (EXIT_UNREADABLE, f"script stopped: {exc}")
                break
            if statement is None:
                if self.reader.eof:
                    break
                self._resume()
                self._more.clear()
                await self._more.wait()
                continue
            if not statement.text.strip():
                continue
            stop = await self._statement(statement.text, statement.line)
        await self._end(stop)

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self.ctx.client.resume_reading()

    async def _statement(self, text: str, line: int) -> tuple[int, str] | None:
        """Decide one statement and send it; (status, message) when the script stops."""
        ctx = self.ctx
        decision = await decide_off_loop(
            ctx.policy,
            user=ctx.identity.user,
            groups=ctx.identity.groups,
            target=ctx.target,
            login=ctx.login,
            command=text,
        )
        ctx.recorder.decision(
            decision.action, decision.rule, decision.reason, decision.commands, command=text
        )
        detail = decision_detail(decision)
        if decision.action == "deny":
            return EXIT_DENIED, f"script stopped at line {line}: denied ({decision.rule}): {detail}"
        run = text_to_run(decision, text)
        if decision.action == "review":
            waiting = ctx.options.get("BASTION_WAIT", "1").strip().lower() not in (
                "0",
                "no",
                "false",
            )
            outcome = await self.hold.seek(
                decision, command=text, run=run, cwd=None, waiting=waiting
            )
            if outcome.run is None:
                return outcome.status, f"script stopped at line {line}: {outcome.message}"
            run = outcome.run
        remote = await self._runner()
        remote.write((run + "\n").encode("utf-8", errors="surrogateescape"))
        return None

    async def _runner(self) -> RemoteCommand:
        if self.remote is None:
            ctx = self.ctx
            self.remote = await ctx.upstream.start(
                SCRIPT_RUNNER, env=ctx.env, term=None, sink=self.relay
            )
            self.relay.attach(self.remote)
        return self.remote

    async def _end(self, stop: tuple[int, str] | None) -> None:
        result = ExitResult(status=0)
        if self.remote is not None:
            self.remote.write_eof()
            result = await self.remote.wait()
            self.relay.flush_masked()
        if self.finished:
            return
        if stop is not None:
            self.finish(ExitResult(status=stop[0]), stop[1])
        elif result.error:
            self.finish(result, result.error)
        else:
            self.finish(result)
