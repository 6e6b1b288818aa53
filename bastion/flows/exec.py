"""``ssh host 'command'``: decide the command, hold it for approval if the policy says
so, then run exactly the decided bytes on the target and stream it.

Decisions: allow runs at once; deny ends with one line naming the rule and status 77;
review files an approval request. By default the requester waits on the open channel
(a block on stderr says who may approve and how); Ctrl-C or Ctrl-D typed in a terminal
session, a signal, or a disconnect cancels the request. With ``BASTION_WAIT=0`` (``ssh
-o SetEnv=BASTION_WAIT=0``) the request is filed, its id printed, and the channel ends
at once with status 75; once approved, the same identity sending the same bytes to the
same target and login runs them once. End of stdin does not cancel: it belongs to the
command (``psql < dump.sql`` waits with its input kept, never sent unless approved).
"""

from __future__ import annotations

from ..policy import Decision
from ..record import RecordingError
from .base import EXIT_DENIED, FlowContext
from .deciding import decide_off_loop
from .hold import Hold, decision_detail
from .ports import ExitResult, RemoteCommand
from .relay import Relay
from .relayed import RelayedFlow

__all__ = ["ExecFlow", "text_to_run"]

_CANCEL_KEYS = (b"\x03", b"\x04")  # Ctrl-C, Ctrl-D typed while held (terminal sessions)


class ExecFlow(RelayedFlow):
    """One exec request, from decision to exit status."""

    kind = "exec"

    def __init__(self, ctx: FlowContext, command: str):
        super().__init__(ctx)
        self.command = command
        # live masking only without a PTY: a terminal's screen is not a byte stream
        self.relay = Relay(
            ctx.client, self._record_output, masker=ctx.masker if ctx.term is None else None
        )
        self.remote: RemoteCommand | None = None
        self.hold = Hold(ctx, self.say)

    # ---- events ----
    def data_received(self, data: bytes) -> None:
        try:
            self.ctx.recorder.input(data)
        except RecordingError:
            pass
        if self.hold.pending and self.remote is None and self.ctx.term:
            if any(key in data for key in _CANCEL_KEYS):
                self.hold.cancel("cancelled by the requester (Ctrl-C)")
                return
        self.relay.from_client(data)

    def eof_received(self) -> None:
        self.relay.client_sent_eof()

    def resized(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        try:
            self.ctx.recorder.resize(width, height)
        except RecordingError:
            pass
        if self.remote is not None:
            self.remote.resize(width, height, pixwidth, pixheight)

    def refused(self) -> None:
        self.relay.discard_held()  # what the client sent for it is dropped

    def break_received(self, msec: int) -> None:
        if self.remote is not None:
            self.remote.send_break(msec)

    def _record_output(self, data: bytes) -> None:
        try:
            self.ctx.recorder.output(data, masked=self.relay.masking)
        except RecordingError as exc:
            self._recording_failed(exc)

    # ---- the flow ----
    async def _run(self) -> None:
        if not self.begin():
            return
        ctx = self.ctx
        if not self.command.strip():
            reason = (
                "an empty command: give the command to run, e.g. ssh HOST 'uptime' "
                "(the bastion never opens a shell on the target for a command)"
            )
            ctx.recorder.decision("deny", "empty-command", reason)
            self.finish(ExitResult(status=EXIT_DENIED), f"denied (empty-command): {reason}")
            return
        decision = await decide_off_loop(
            ctx.policy,
            user=ctx.identity.user,
            groups=ctx.identity.groups,
            target=ctx.target,
            login=ctx.login,
            command=self.command,
            pty=ctx.term is not None,
        )
        ctx.recorder.decision(decision.action, decision.rule, decision.reason, decision.commands)
        ctx.log.info("decision %s rule=%s", decision.action, decision.rule)
        detail = decision_detail(decision)
        if decision.action == "deny":
            self.relay.discard_held()
            self.finish(ExitResult(status=EXIT_DENIED), f"denied ({decision.rule}): {detail}")
            return
        run = text_to_run(decision, self.command)
        if decision.action == "review":
            waiting = ctx.options.get("BASTION_WAIT", "1").strip().lower() not in (
                "0",
                "no",
                "false",
            )
            outcome = await self.hold.seek(
                decision, command=self.command, run=run, cwd=None, waiting=waiting
            )
            if outcome.run is None:
                self.relay.discard_held()
                self.finish(ExitResult(status=outcome.status), outcome.message)
                return
            run = outcome.run
        await self._execute(run)

    async def _execute(self, run: str) -> None:
        ctx = self.ctx
        self.remote = await ctx.upstream.start(run, env=ctx.env, term=ctx.term, sink=self.relay)
        if self.finished:  # the client left or the bastion stopped while we connected
            self.remote.close()
            return
        self.relay.attach(self.remote)
        result = await self.remote.wait()
        self.relay.flush_masked()
        if self.finished:
            return
        if result.error:
            self.finish(result, result.error)
        else:
            self.finish(result)


def text_to_run(decision: Decision, command: str) -> str:
    """What goes to the target: the policy's re-emitted command when it gives one."""
    run = getattr(decision, "run", None)
    return run if isinstance(run, str) and run.strip() else command
