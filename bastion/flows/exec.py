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

import asyncio
import time

from ..errors import BastionError
from ..policy import Decision, decide
from ..record import RecordingError
from ..storage import ApprovalRequest
from .base import (
    EXIT_BASTION_ERROR,
    EXIT_DENIED,
    EXIT_HELD,
    Flow,
    FlowContext,
    cancelled_quietly,
)
from .ports import ExitResult, RemoteCommand
from .relay import Relay

__all__ = ["ExecFlow", "describe_wait", "held_block"]

_CANCEL_KEYS = (b"\x03", b"\x04")  # Ctrl-C, Ctrl-D typed while held (terminal sessions)


def describe_wait(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def held_block(request: ApprovalRequest, message: str, *, waiting: bool, now: float) -> str:
    """What the requester reads when a command is held: one block, every fact once."""
    who = " or ".join(request.approvers)
    need = f"{request.required} approvals from" if request.required > 1 else "a member of"
    expires = time.strftime("%H:%M:%S UTC", time.gmtime(request.expires))
    lines = [
        f"held for approval ({request.rule}): {message}",
        f"  request:   {request.id}",
        f"  command:   {request.command}",
        f"  approvers: {need} {who} (not you)",
        f"  approve:   bastion-cli approve {request.id}",
        f"  expires:   in {describe_wait(request.expires - now)} ({expires})",
    ]
    if waiting:
        lines.append("waiting for a decision; Ctrl-C cancels")
    else:
        lines.append(
            f"not waiting (BASTION_WAIT=0): run `bastion-cli wait {request.id}`, then send the "
            "same command again once it is approved"
        )
    return "\n".join(lines)


class ExecFlow(Flow):
    """One exec request, from decision to exit status."""

    def __init__(self, ctx: FlowContext, command: str):
        super().__init__(ctx)
        self.command = command
        self.relay = Relay(ctx.client, self._record_output)
        self.remote: RemoteCommand | None = None
        self.request: ApprovalRequest | None = None
        self._cancelled = asyncio.Event()
        self._cancel_reason = ""

    # ---- events ----
    def data_received(self, data: bytes) -> None:
        try:
            self.ctx.recorder.input(data)
        except RecordingError:
            pass
        if self.request is not None and self.remote is None and self.ctx.term:
            if any(key in data for key in _CANCEL_KEYS):
                self._cancel("cancelled by the requester (Ctrl-C)")
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

    def signal_received(self, name: str) -> None:
        if self.remote is not None:
            self.remote.signal(name)
        elif self.request is not None:
            self._cancel(f"cancelled by the requester (signal {name})")

    def break_received(self, msec: int) -> None:
        if self.remote is not None:
            self.remote.send_break(msec)

    def client_paused(self) -> None:
        self.relay.client_paused()

    def client_resumed(self) -> None:
        self.relay.client_resumed()

    def client_gone(self) -> None:
        self._cancel("the requester disconnected")
        self.relay.close()
        if self.remote is not None:
            self.remote.close()

    def shutdown(self) -> None:
        self.relay.close()
        if self.remote is not None:
            self.remote.close()
        super().shutdown()

    def _cancel(self, reason: str) -> None:
        if not self._cancel_reason:
            self._cancel_reason = reason
        self._cancelled.set()

    def _record_output(self, data: bytes) -> None:
        try:
            self.ctx.recorder.output(data)
        except RecordingError as exc:
            # fail closed, and only this channel: the upstream connection is shared
            self.ctx.log.error("%s", exc)
            if self.remote is not None:
                self.remote.close()
            self.relay.close()
            self.finish(ExitResult(status=EXIT_BASTION_ERROR, error=str(exc)), str(exc))

    # ---- the flow ----
    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            if self.request is not None and self.request.status == "pending":
                await cancelled_quietly(
                    self.ctx.approvals.cancel(self.request.id, self._cancel_reason or "cancelled")
                )
            if not self.finished:
                self.gone(self._cancel_reason or "client disconnected")
            raise
        except RecordingError as exc:
            self.finish(ExitResult(status=EXIT_BASTION_ERROR, error=str(exc)), str(exc))
        except BastionError as exc:
            self.finish(ExitResult(status=EXIT_BASTION_ERROR, error=str(exc)), str(exc))
        except Exception:  # never let one channel take down others
            self.ctx.log.exception("exec flow failed")
            self.finish(
                ExitResult(status=EXIT_BASTION_ERROR, error="internal error"),
                "internal error in the bastion; see its log",
            )
        finally:
            self.relay.close()

    async def _run(self) -> None:
        ctx = self.ctx
        try:
            ctx.recorder.open()
        except OSError as exc:  # fail closed: nothing runs unrecorded
            ctx.log.error("cannot open the recording: %s", exc)
            self.finish(
                ExitResult(status=EXIT_BASTION_ERROR, error="recording failed"),
                "the session cannot be recorded; nothing was run",
            )
            return
        if ctx.refusal:
            rule, _, reason = ctx.refusal.partition(": ")
            ctx.recorder.decision("deny", rule, reason)
            self.relay.discard_held()
            self.finish(ExitResult(status=EXIT_DENIED), f"denied ({rule}): {reason}")
            return
        if not self.command.strip():
            reason = (
                "an empty command: give the command to run, e.g. ssh HOST 'uptime' "
                "(the bastion never opens a shell on the target for a command)"
            )
            ctx.recorder.decision("deny", "empty-command", reason)
            self.finish(ExitResult(status=EXIT_DENIED), f"denied (empty-command): {reason}")
            return
        decision = decide(
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
        detail = _detail(decision)
        if decision.action == "deny":
            self.relay.discard_held()
            self.finish(ExitResult(status=EXIT_DENIED), f"denied ({decision.rule}): {detail}")
            return
        run = _text_to_run(decision, self.command)
        if decision.action == "review":
            approved = await self._approval(decision, detail, run)
            if approved is None:
                return
            run = approved
        await self._execute(run)

    async def _approval(self, decision: Decision, detail: str, run: str) -> str | None:
        """The bytes to run once approved, or None (the flow has ended)."""
        ctx = self.ctx
        approvals = ctx.approvals
        taken = await approvals.take_approved(
            user=ctx.identity.user,
            target=ctx.target,
            login=ctx.login,
            cwd=None,
            command=self.command,
        )
        if taken is not None:
            ctx.recorder.event(
                "approval_run",
                f"running request {taken.id}, approved by {taken.decided_by}",
                request=taken.id,
            )
            return taken.run
        waiting = ctx.options.get("BASTION_WAIT", "1").strip().lower() not in ("0", "no", "false")
        self.request = request = await approvals.file(
            user=ctx.identity.user,
            groups=ctx.identity.groups,
            target=ctx.target,
            login=ctx.login,
            cwd=None,
            command=self.command,
            run=run,
            rule=decision.rule,
            reason=detail,
            approvers=tuple(getattr(decision, "approvers", ()) or ()),
            required=int(getattr(decision, "approvals_required", 1) or 1),
            ttl=getattr(decision, "approval_ttl", None),
            session_id=ctx.session_id,
            waiting=waiting,
        )
        ctx.recorder.event(
            "approval",
            f"held for approval: request {request.id} ({decision.rule})",
            request=request.id,
        )
        block = held_block(request, detail, waiting=waiting, now=approvals.clock())
        if not waiting:
            self.relay.discard_held()
            self.finish(ExitResult(status=EXIT_HELD), block)
            return None
        self.say(block)
        outcome = await self._wait(request.id)
        self.request = outcome
        if outcome.status == "approved":
            used = await approvals.use(outcome)
            if used is not None:
                ctx.recorder.event(
                    "approval_run",
                    f"request {request.id} approved by {outcome.decided_by}; running it",
                    request=request.id,
                )
                return used.run
            outcome = await approvals.get(request.id)
        self.relay.discard_held()
        by = f" by {outcome.decided_by}" if outcome.decided_by else ""
        why = f": {outcome.decision_reason}" if outcome.decision_reason else ""
        ctx.recorder.event(
            "approval_outcome", f"request {request.id} {outcome.status}{by}", request=request.id
        )
        if outcome.status == "denied":
            self.finish(ExitResult(status=EXIT_DENIED), f"request {request.id} denied{by}{why}")
        else:
            self.finish(ExitResult(status=EXIT_HELD), f"request {request.id} {outcome.status}{why}")
        return None

    async def _wait(self, request_id: str) -> ApprovalRequest:
        """Wait for the decision, or for the requester to cancel."""
        approvals = self.ctx.approvals
        waiter = asyncio.ensure_future(approvals.wait(request_id))
        cancel = asyncio.ensure_future(self._cancelled.wait())
        try:
            await asyncio.wait({waiter, cancel}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancel.cancel()
            if not waiter.done():
                waiter.cancel()
        if waiter.done() and not waiter.cancelled():
            outcome = waiter.result()
            if outcome.status != "pending":
                return outcome
        cancelled = await approvals.cancel(request_id, self._cancel_reason or "cancelled")
        if cancelled is None:
            raise BastionError(f"request {request_id} disappeared while waiting")
        return cancelled

    async def _execute(self, run: str) -> None:
        ctx = self.ctx
        self.remote = await ctx.upstream.start(run, env=ctx.env, term=ctx.term, sink=self.relay)
        if self.finished:  # the client left or the bastion stopped while we connected
            self.remote.close()
            return
        self.relay.attach(self.remote)
        result = await self.remote.wait()
        if self.finished:
            return
        if result.error:
            self.finish(result, result.error)
        else:
            self.finish(result)


def _detail(decision: Decision) -> str:
    """The decision's reason without its "action (rule): " prefix: said once."""
    detail = decision.reason.removeprefix(f"{decision.action} ({decision.rule})")
    return detail.removeprefix(":").strip() or decision.rule


def _text_to_run(decision: Decision, command: str) -> str:
    """What goes to the target: the policy's re-emitted command when it gives one."""
    run = getattr(decision, "run", None)
    return run if isinstance(run, str) and run.strip() else command
