"""``ssh -t host`` with no command: the bastion's own shell, one decided line at a time.

The bastion runs the line editor (``bastion.shell.editor``) and echoes keys itself, so
the target never sees a key before its line is entered. Each entered line is decided as
a whole (with the carried working directory), then:

- allow: it runs on its own upstream exec channel with a terminal of the client's type
  and size; keys typed while it runs go to that command and die with it, Ctrl-C
  interrupts it (the target's terminal turns it into SIGINT);
- deny: nothing is sent; one line names the rule;
- review: held inline (request id, expiry, Ctrl-C cancels), then runs the approved,
  stored bytes or is refused.

``cd``, ``export`` and ``unset`` lines are decided, run on the target without a terminal
and their outcome carried (``bastion.shell.state``); ``exit [N]`` ends the session;
Ctrl-D at an empty prompt too; a prompt left alone for the idle timeout ends it. The
prompt shows the last status when it was not 0.

Recording: everything the client is sent is recorded (prompt, echo, output), a marker
per entered line with its decision, resizes, and keystrokes only when input recording
is on and the target is not asking for a password. Limits: programs that take over the
terminal (editors, pagers, REPLs, nested shells) run unfiltered once allowed, so the
policy decides whether they start; keys typed between the end of a command and the
next prompt are dropped.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from dataclasses import replace

from ..errors import BastionError, UpstreamError
from ..record import RecordingError
from ..shell import (
    LineEditor,
    LineTooLong,
    PasswordWatch,
    ShellHistory,
    ShellSettings,
    ShellState,
    history_path,
    is_state_line,
    mentions_state,
)
from ..shell.capture import run_captured
from ..shell.complete import RemoteCompleter
from ..shell.state import parse_state, probe_command
from .base import EXIT_BASTION_ERROR, EXIT_DENIED, Flow, FlowContext
from .deciding import decide_off_loop
from .exec import text_to_run
from .hold import Hold, decision_detail
from .ports import ExitResult, RemoteCommand
from .relay import Relay

__all__ = ["ShellFlow"]

_EXIT = re.compile(r"\s*(exit|logout)(\s+(\d{1,3}))?\s*;?\s*\Z")
_BASH_PREFIX = re.compile(rb"^(?:bash|sh): line \d+: ", re.MULTILINE)


def status_of(result: ExitResult) -> int:
    if result.signal:
        return 128 + _SIGNALS.get(result.signal[0], 0)
    if result.status is not None:
        return result.status
    return EXIT_BASTION_ERROR


_SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "PIPE": 13, "TERM": 15, "ABRT": 6}


class ShellFlow(Flow):
    """An interactive session: prompt, decide, run, repeat."""

    def __init__(self, ctx: FlowContext, settings: ShellSettings):
        super().__init__(ctx)
        self.settings = settings
        term = ctx.term
        self.size = (term.width, term.height) if term else (80, 24)
        self.mode = "starting"  # prompt | running | held | busy
        self.editor: LineEditor | None = None
        self.relay: Relay | None = None
        self.remote: RemoteCommand | None = None
        self.hold: Hold | None = None
        self.passwords = PasswordWatch()
        self.state: ShellState | None = None
        self.status = 0
        self.client_eof = False
        self._entered = 0.0  # when the line being run was entered (perf_counter)
        self.record_failure: RecordingError | None = None
        self._last_key = asyncio.get_running_loop().time()

    # ---- events ----
    def data_received(self, data: bytes) -> None:
        self._last_key = asyncio.get_running_loop().time()
        if self.passwords.input(data) and self.settings.record_input:
            try:
                self.ctx.recorder.input(data)
            except RecordingError as exc:
                self._recording_failed(exc)
                return
        if self.mode == "prompt" and self.editor is not None:
            self.editor.feed(data)
        elif self.mode == "running" and self.relay is not None:
            self.relay.from_client(data)
        elif self.mode == "held" and self.hold is not None:
            if b"\x03" in data or b"\x04" in data:
                self.hold.cancel("cancelled by the requester (Ctrl-C)")
        # otherwise (deciding, between commands) keys are dropped: nothing runs them

    def eof_received(self) -> None:
        self.client_eof = True  # no more keys: the session ends at the next prompt
        if self.mode == "running" and self.relay is not None:
            self.relay.client_sent_eof()
        elif self.editor is not None:
            self.editor.close()

    def resized(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.size = (width, height)
        try:
            self.ctx.recorder.resize(width, height)
        except RecordingError as exc:
            self._recording_failed(exc)
        if self.editor is not None:
            self.editor.resized(width, height)
        if self.remote is not None:
            self.remote.resize(width, height, pixwidth, pixheight)

    def signal_received(self, name: str) -> None:
        if self.remote is not None:
            self.remote.signal(name)
        elif self.hold is not None and self.hold.pending:
            self.hold.cancel(f"cancelled by the requester (signal {name})")

    def break_received(self, msec: int) -> None:
        if self.remote is not None:
            self.remote.send_break(msec)

    def client_paused(self) -> None:
        if self.relay is not None:
            self.relay.client_paused()

    def client_resumed(self) -> None:
        if self.relay is not None:
            self.relay.client_resumed()

    def client_gone(self) -> None:
        self._stop("the requester disconnected")

    def shutdown(self) -> None:
        self._stop("the bastion is shutting down")
        super().shutdown()

    def _stop(self, reason: str) -> None:
        if self.hold is not None:
            self.hold.cancel(reason)
        if self.relay is not None:
            self.relay.close()
        if self.remote is not None:
            self.remote.close()
        if self.editor is not None:
            self.editor.close()

    # ---- output ----
    def _show(self, data: bytes) -> None:
        """Bytes for the client's terminal, recorded first (the editor's output)."""
        try:
            self.ctx.recorder.output(data)
        except RecordingError as exc:
            self._recording_failed(exc)
            return
        self.passwords.output(data)
        self.ctx.client.write(data)

    def _record_output(self, data: bytes) -> None:
        """A running command's output, on its way to the client."""
        self.passwords.output(data)
        try:
            self.ctx.recorder.output(data)
        except RecordingError as exc:
            self._recording_failed(exc)

    def _recording_failed(self, exc: RecordingError) -> None:
        # fail closed, this session only: stop what runs, end at the next step
        if self.record_failure is None:
            self.record_failure = exc
            self.ctx.log.error("%s", exc)
            self._stop(str(exc))

    def say(self, message: str) -> None:
        """One message on the terminal, in order with the prompt: stdout, since a
        terminal has one stream (stderr would overtake or trail the prompt)."""
        text = message.replace("\r\n", "\n").replace("\n", "\r\n")
        self._show(f"bastion: {text}\r\n".encode())

    # ---- the flow ----
    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            if self.hold is not None:
                await self.hold.cancel_now()
            if not self.finished:
                self.gone(self.hold.cancel_reason if self.hold else "client disconnected")
            raise
        except BastionError as exc:  # RecordingError and UpstreamError included
            self.finish(ExitResult(status=EXIT_BASTION_ERROR, error=str(exc)), str(exc))
        except Exception:  # never let one channel take down others
            self.ctx.log.exception("shell flow failed")
            self.finish(
                ExitResult(status=EXIT_BASTION_ERROR, error="internal error"),
                "internal error in the bastion; see its log",
            )
        finally:
            self._stop("the session ended")

    async def _run(self) -> None:
        if not self.begin():
            return
        ctx = self.ctx
        self.state = await self._probe()
        history = ShellHistory(
            history_path(self.settings.history_dir, ctx.identity.user, ctx.target),
            self.settings.history_size,
        )
        self.editor = LineEditor(
            self._show,
            term=ctx.term.type if ctx.term else "xterm",
            size=self.size,
            history=history,
            completer=RemoteCompleter(self._complete),
            max_bytes=ctx.policy.max_command_bytes,
        )
        ctx.recorder.event("shell", "shell started", cwd=self.state.cwd)
        while not self.finished:
            line = await self._read_line()
            if self.record_failure is not None:
                raise self.record_failure
            if line is None:  # Ctrl-D at an empty prompt (or idle: already finished)
                if not self.finished:
                    self._show(b"\r\n")
                    ctx.recorder.event("shell", "end of input (Ctrl-D)")
                    self.finish(ExitResult(status=self.status))
                return
            if not line.strip():
                continue
            ended = _EXIT.match(line)
            if ended:
                code = int(ended.group(3)) if ended.group(3) else self.status
                ctx.recorder.event("shell", f"exit {code}", command=line)
                self.finish(ExitResult(status=code & 0xFF))
                return
            self.mode = "busy"
            self.status = await self._line(line)
            if self.record_failure is not None:
                raise self.record_failure

    async def _probe(self) -> ShellState:
        got = await run_captured(
            self.ctx.upstream, probe_command(), env=self.ctx.env, timeout=self.settings.side_timeout
        )
        try:
            return ShellState.from_probe(got.stdout)
        except ValueError as exc:
            raise BastionError(f"cannot start a shell on {self.ctx.target}: {exc}") from None

    async def _read_line(self) -> str | None:
        """The next line; None when the session ends (Ctrl-D, idle, disconnect)."""
        assert self.editor is not None and self.state is not None
        if self.client_eof:
            return None
        prompt = self._prompt()
        self.mode = "prompt"
        reading = asyncio.ensure_future(self.editor.read_line(prompt))
        idle = self.settings.idle_timeout
        try:
            while True:
                loop = asyncio.get_running_loop()
                left = self._last_key + idle - loop.time() if idle else None
                if left is not None and left <= 0:
                    reading.cancel()
                    self._show(b"\r\n")
                    self.ctx.recorder.event("shell", f"idle for {idle:g} s: session closed")
                    self.finish(
                        ExitResult(status=self.status),
                        f"no key for {_duration(idle)}: the session is closed",
                    )
                    return None
                done, _ = await asyncio.wait({reading}, timeout=left)
                if done:
                    try:
                        return reading.result()
                    except LineTooLong as exc:
                        self.say(str(exc))
                        self.status = EXIT_DENIED
                        prompt = self._prompt()
                        reading = asyncio.ensure_future(self.editor.read_line(prompt))
        finally:
            if not reading.done():
                reading.cancel()
            self.mode = "busy"

    def _prompt(self) -> str:
        assert self.state is not None
        sign = "#" if self.ctx.login == "root" else "$"
        status = f"[{self.status}] " if self.status else ""
        return f"{status}{self.ctx.login}@{self.ctx.target}:{self.state.shown_cwd()}{sign} "

    async def _line(self, line: str) -> int:
        """Decide one entered line and act on it; its exit status."""
        ctx, state = self.ctx, self.state
        assert state is not None
        cwd = state.cwd
        self._entered = time.perf_counter()
        decision = await decide_off_loop(
            ctx.policy,
            user=ctx.identity.user,
            groups=ctx.identity.groups,
            target=ctx.target,
            login=ctx.login,
            command=line,
            cwd=cwd,
            pty=True,
        )
        ctx.recorder.decision(
            decision.action,
            decision.rule,
            decision.reason,
            decision.commands,
            command=line,
            cwd=cwd,
        )
        ctx.log.info("shell line decision %s rule=%s", decision.action, decision.rule)
        if decision.action == "deny":
            self.say(f"denied ({decision.rule}): {decision_detail(decision)}")
            return EXIT_DENIED
        carried = is_state_line(line)
        text = text_to_run(decision, line)
        run = state.compose_state(text) if carried else state.compose(text)
        if decision.action == "review":
            self.hold = Hold(ctx, self.say)
            self.mode = "held"
            try:
                outcome = await self.hold.seek(
                    decision, command=line, run=run, cwd=cwd, waiting=True
                )
            finally:
                self.mode = "busy"
            if outcome.run is None:
                self.say(outcome.message)
                return outcome.status
            run = outcome.run
        try:
            if carried:
                return await self._carry(run)
            if mentions_state(line):
                self.say(
                    "cd/export/unset in a line with other commands do not carry to the next line"
                )
            return await self._execute(run)
        except UpstreamError as exc:  # this line did not run; the session goes on
            self.say(str(exc))
            return EXIT_BASTION_ERROR

    async def _execute(self, run: str) -> int:
        ctx = self.ctx
        term = replace(ctx.term, width=self.size[0], height=self.size[1]) if ctx.term else None
        relay = Relay(ctx.client, self._record_output, pass_eof=False)
        self.remote = remote = await ctx.upstream.start(run, env=ctx.env, term=term, sink=relay)
        # what the bastion adds to a line: its decision and its own channel (bench/)
        ctx.recorder.audit.write(
            "shell_line",
            session=ctx.session_id,
            user=ctx.identity.user,
            decide_and_open_ms=round((time.perf_counter() - self._entered) * 1000, 3),
        )
        try:
            if self.finished:
                return EXIT_BASTION_ERROR
            self.relay = relay
            relay.attach(remote)
            self.mode = "running"
            result = await remote.wait()
        finally:
            self.mode = "busy"
            relay.close()
            self.relay = None
            self.remote = None
            remote.close()
            self.passwords.reset()
        if result.error:
            self.say(result.error)
        return status_of(result)

    async def _carry(self, run: str) -> int:
        """Run a cd/export/unset line and keep what it changed."""
        state = self.state
        assert state is not None
        got = await run_captured(
            self.ctx.upstream, run, env=self.ctx.env, timeout=self.settings.side_timeout
        )
        change = parse_state(got.stdout)
        printed = change.output if change is not None else got.stdout
        if printed:
            self._show(printed.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        if got.stderr:
            self._show(_BASH_PREFIX.sub(b"", got.stderr).replace(b"\n", b"\r\n"))
        if change is None:
            return status_of(got.result) if not got.result.error else EXIT_BASTION_ERROR
        kept = state.apply(change)
        if isinstance(kept, str):
            self.say(kept)
            return change.status
        exports, unset = kept
        refused = await self._judge_variables(state.new_variables(exports))
        if refused:
            self.say(f"variables not kept: {refused}")
            return change.status or EXIT_DENIED
        state.keep(exports, unset)
        return change.status

    async def _judge_variables(self, new: dict[str, str]) -> str:
        """The policy judges carried variables as assignments in front of a command,
        since every later line runs with them (LD_PRELOAD, PATH, ...)."""
        if not new:
            return ""
        ctx = self.ctx
        probe = " ".join(f"{k}={shlex.quote(v)}" for k, v in new.items()) + " true"
        decision = await decide_off_loop(
            ctx.policy,
            user=ctx.identity.user,
            groups=ctx.identity.groups,
            target=ctx.target,
            login=ctx.login,
            command=probe,
            cwd=self.state.cwd if self.state else None,
            pty=True,
        )
        if decision.action == "allow":
            return ""
        ctx.recorder.decision(
            decision.action, decision.rule, decision.reason, decision.commands, command=probe
        )
        return f"{decision.action} ({decision.rule}): {decision_detail(decision)}"

    async def _complete(self, command: str) -> list[str]:
        state = self.state
        if state is None:
            return []
        got = await run_captured(
            self.ctx.upstream,
            state.compose(command),
            env=self.ctx.env,
            timeout=self.settings.side_timeout,
            limit=64 * 1024,
        )
        return got.stdout.decode("utf-8", errors="replace").splitlines()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
