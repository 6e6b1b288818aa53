"""Holding a command for approval, as any flow does it (exec now, the shell's lines too).

``Hold.seek`` first looks for an approved, unused request for exactly these bytes (the
agent that filed it earlier and now sends the same command again): it is taken, once.
Otherwise it files a request and either returns at once (``waiting=False``: the caller
ends with status 75) or waits until it is decided, expires, or the requester cancels
(``cancel()``, from Ctrl-C, a signal or a disconnect). The outcome says what to run
(the stored bytes, never a buffer that could have changed) or why nothing runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..policy import Decision
from ..storage import ApprovalRequest
from .base import EXIT_DENIED, EXIT_HELD, FlowContext, cancelled_quietly

__all__ = ["Hold", "HoldOutcome", "describe_wait", "held_block"]


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


@dataclass(frozen=True)
class HoldOutcome:
    """Run ``run``, or end with ``status`` and ``message``."""

    run: str | None = None
    status: int = EXIT_HELD
    message: str = ""
    request: ApprovalRequest | None = None


def decision_detail(decision: Decision) -> str:
    """The decision's reason without its "action (rule): " prefix: said once."""
    detail = decision.reason.removeprefix(f"{decision.action} ({decision.rule})")
    return detail.removeprefix(":").strip() or decision.rule


class Hold:
    """One held command of one flow, from filing to outcome."""

    def __init__(self, ctx: FlowContext, say: Callable[[str], None]):
        self.ctx = ctx
        self.say = say
        self.request: ApprovalRequest | None = None
        self._cancelled = asyncio.Event()
        self.cancel_reason = ""

    @property
    def pending(self) -> bool:
        return self.request is not None and self.request.status == "pending"

    def cancel(self, reason: str) -> None:
        """The requester gave up (Ctrl-C, signal, disconnect)."""
        if not self.cancel_reason:
            self.cancel_reason = reason
        self._cancelled.set()

    async def cancel_now(self) -> None:
        """Mark a pending request cancelled, even while our task is being cancelled."""
        if self.pending and self.request is not None:
            await cancelled_quietly(
                self.ctx.approvals.cancel(self.request.id, self.cancel_reason or "cancelled")
            )

    async def seek(
        self, decision: Decision, *, command: str, run: str, cwd: str | None, waiting: bool
    ) -> HoldOutcome:
        ctx = self.ctx
        approvals = ctx.approvals
        taken = await approvals.take_approved(
            user=ctx.identity.user, target=ctx.target, login=ctx.login, cwd=cwd, command=command
        )
        if taken is not None:
            ctx.recorder.event(
                "approval_run",
                f"running request {taken.id}, approved by {taken.decided_by}",
                request=taken.id,
            )
            return HoldOutcome(run=taken.run, request=taken)
        detail = decision_detail(decision)
        self.request = request = await approvals.file(
            user=ctx.identity.user,
            groups=ctx.identity.groups,
            target=ctx.target,
            login=ctx.login,
            cwd=cwd,
            command=command,
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
            return HoldOutcome(status=EXIT_HELD, message=block, request=request)
        self.say(block)
        outcome = await self._wait(request.id)
        self.request = outcome
        if outcome.status == "approved":
            used = await approvals.use(outcome)
            if used is not None:
                self.request = used
                ctx.recorder.event(
                    "approval_run",
                    f"request {request.id} approved by {outcome.decided_by}; running it",
                    request=request.id,
                )
                return HoldOutcome(run=used.run, request=used)
            outcome = await approvals.get(request.id)
        by = f" by {outcome.decided_by}" if outcome.decided_by else ""
        why = f": {outcome.decision_reason}" if outcome.decision_reason else ""
        ctx.recorder.event(
            "approval_outcome", f"request {request.id} {outcome.status}{by}", request=request.id
        )
        if outcome.status == "denied":
            return HoldOutcome(
                status=EXIT_DENIED, message=f"request {request.id} denied{by}{why}", request=outcome
            )
        return HoldOutcome(
            status=EXIT_HELD, message=f"request {request.id} {outcome.status}{why}", request=outcome
        )

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
        cancelled = await approvals.cancel(request_id, self.cancel_reason or "cancelled")
        if cancelled is None:
            raise RuntimeError(f"request {request_id} disappeared while waiting")
        return cancelled
