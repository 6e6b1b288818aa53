"""Approval requests: file a held command, decide it, wait for it, run it once.

A request is bound to a hash of (user, target, login, working directory, exact command
bytes) and stores the bytes that will run; approving it approves those bytes and no
others. Deciding is a compare-and-set on the stored request, so two approvers deciding
at once get exactly one winner. A request is single use: the run that takes it moves
it from ``approved`` to ``used`` (again a compare-and-set), and it expires.

Rules for approvers: a member of one of the request's approver groups, never the
requester under any of their names or with the same key, and ``required`` different
approvers for a yes (one no is enough to deny).

Waiting is an in-process event per request, with a periodic re-read of the store so a
decision made elsewhere (another bastion sharing the store) or an expiry is seen too.
This module never imports asyncssh: the SSH layer and ``bastion-cli`` call it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..errors import BastionError
from ..identity import Identity
from ..record import AuditLog
from ..record.audit import bounded
from ..storage import FINAL_STATES, Approval, ApprovalRequest, Store
from .notify import Notifier

__all__ = ["ApprovalError", "ApprovalService", "ApprovalSettings", "binding_of"]

log = logging.getLogger("bastion.approvals")

#: How often a waiter re-reads its request from the store (decisions elsewhere, expiry).
POLL_SECONDS = 2.0


class ApprovalError(BastionError):
    """A decision or lookup that cannot be made; the message is the sentence to show."""


@dataclass(frozen=True)
class ApprovalSettings:
    """``[approvals]`` in policies.toml."""

    ttl: int = 600  # seconds a request waits for a decision
    approver_group: str = "approvers"
    notify_url: str = ""
    owner: str = "bastion"  # this process among bastions sharing the store


def binding_of(user: str, target: str, login: str, cwd: str | None, command: str) -> str:
    """What an approval is for: these five, exactly (sha256 of their JSON)."""
    data = json.dumps([user, target, login, cwd or "", command], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def _new_id() -> str:
    return secrets.token_hex(5)


class ApprovalService:
    """Files, decides and waits on approval requests over a ``Store``."""

    def __init__(
        self,
        store: Store,
        settings: ApprovalSettings,
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
    ):
        self.store = store
        self.settings = settings
        self.audit = audit
        self.clock = clock
        self.notifier = notifier or Notifier(settings.notify_url)
        self._events: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        """Cancel what a stopped bastion's connections waited on (they are gone)."""
        count = await self.store.cancel_waiting(
            self.settings.owner, "the bastion restarted while the requester waited", self.clock()
        )
        if count:
            log.info("cancelled %d requests left waiting by a previous run", count)
            self.audit.write("approval_cancelled_on_start", count=count)

    async def close(self) -> None:
        await self.notifier.close()

    # ---- requester side ----
    async def file(
        self,
        *,
        user: str,
        groups: tuple[str, ...],
        target: str,
        login: str,
        cwd: str | None,
        command: str,
        run: str,
        rule: str,
        reason: str,
        approvers: tuple[str, ...] = (),
        required: int = 1,
        ttl: int | None = None,
        session_id: str = "",
        waiting: bool = True,
    ) -> ApprovalRequest:
        now = self.clock()
        request = ApprovalRequest(
            id=_new_id(),
            binding=binding_of(user, target, login, cwd, command),
            status="pending",
            user=user,
            groups=tuple(groups),
            target=target,
            login=login,
            cwd=cwd,
            command=command,
            run=run,
            rule=rule,
            reason=reason,
            approvers=tuple(approvers) or (self.settings.approver_group,),
            required=max(1, required),
            created=now,
            expires=now + (ttl or self.settings.ttl),
            session_id=session_id,
            waiting=waiting,
            owner=self.settings.owner,
        )
        await self.store.create_request(request)
        self._audit("approval_requested", request)
        self.notifier.announce("requested", request)
        return request

    async def take_approved(
        self, *, user: str, target: str, login: str, cwd: str | None, command: str
    ) -> ApprovalRequest | None:
        """An approved, unexpired request for exactly these bytes, now used (runs once)."""
        binding = binding_of(user, target, login, cwd, command)
        for request in await self.store.find_approved(binding, user):
            if request.expires <= self.clock():
                await self._finish(request, "expired", None, "no one ran it before it expired")
                continue
            used = await self.use(request)
            if used is not None:
                return used
        return None

    async def use(self, request: ApprovalRequest) -> ApprovalRequest | None:
        """approved -> used; None if another run took it first."""
        used = replace(request, status="used", waiting=False)
        if not await self.store.update_request(used):
            return None
        self._audit("approval_used", used)
        self._wake(request.id)
        return replace(used, version=used.version + 1)

    async def wait(self, request_id: str, timeout: float | None = None) -> ApprovalRequest:
        """Until the request is decided (approved, denied), expires or is cancelled.

        Returns the request as it then stands; on ``timeout`` returns it still pending."""
        event = self._events.setdefault(request_id, asyncio.Event())
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                request = await self.store.get_request(request_id)
                if request is None:
                    raise ApprovalError(f"no request {request_id!r}")
                if request.status != "pending":
                    return request
                if request.expires <= self.clock():
                    expired = await self._finish(
                        request, "expired", None, "no decision before it expired"
                    )
                    if expired is not None:
                        return expired
                    continue
                step = min(POLL_SECONDS, max(0.05, request.expires - self.clock()))
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return request
                    step = min(step, left)
                event.clear()
                try:
                    await asyncio.wait_for(event.wait(), step)
                except TimeoutError:
                    pass
        finally:
            self._events.pop(request_id, None)

    async def cancel(self, request_id: str, reason: str) -> ApprovalRequest | None:
        """The requester gave up (Ctrl-C, disconnect): pending -> cancelled."""
        for _ in range(5):
            request = await self.store.get_request(request_id)
            if request is None or request.status != "pending":
                return request
            done = await self._finish(request, "cancelled", None, reason)
            if done is not None:
                return done
        return None

    # ---- approver side ----
    async def get(self, request_id: str) -> ApprovalRequest:
        request = await self.store.get_request(request_id)
        if request is None:
            raise ApprovalError(f"no request with id {request_id!r}")
        return await self._expire_if_due(request)

    async def list(self, *, pending_only: bool = True) -> list[ApprovalRequest]:
        requests = await self.store.list_requests(pending_only=pending_only)
        fresh = [await self._expire_if_due(r) for r in requests]
        return [r for r in fresh if r.status == "pending"] if pending_only else fresh

    async def decide(
        self, request_id: str, approver: Identity, *, approve: bool, reason: str
    ) -> ApprovalRequest:
        """Record one approver's yes or no; raises ApprovalError with the sentence."""
        for _ in range(10):  # retry only when another approver changed it meanwhile
            request = await self.get(request_id)
            self._check_approver(request, approver)
            if approve:
                if any(a.user == approver.user for a in request.approvals):
                    raise ApprovalError(
                        f"you already approved request {request_id}; it needs "
                        f"{request.required} different approvers"
                    )
                approvals = (*request.approvals, Approval(approver.user, reason, self.clock()))
                if len(approvals) < request.required:
                    partial = replace(request, approvals=approvals)
                    if await self.store.update_request(partial):
                        self._audit("approval_partial", partial, approver=approver.user)
                        return replace(partial, version=partial.version + 1)
                    continue
                done = await self._finish(
                    replace(request, approvals=approvals), "approved", approver.user, reason
                )
            else:
                done = await self._finish(request, "denied", approver.user, reason)
            if done is not None:
                return done
        raise ApprovalError(f"request {request_id} is being decided by others; try again")

    def _check_approver(self, request: ApprovalRequest, approver: Identity) -> None:
        if request.status != "pending":
            by = f" by {request.decided_by}" if request.decided_by else ""
            raise ApprovalError(f"request {request.id} is already {request.status}{by}")
        if approver.is_same_person(request.user):
            raise ApprovalError(
                f"you cannot decide your own request {request.id}: another approver must"
            )
        if not any(g in approver.groups for g in request.approvers):
            raise ApprovalError(
                f"you are not an approver for request {request.id}: it needs a member of "
                f"{', '.join(request.approvers)}"
            )

    # ---- state changes ----
    async def _expire_if_due(self, request: ApprovalRequest) -> ApprovalRequest:
        if request.status in ("pending", "approved") and request.expires <= self.clock():
            done = await self._finish(request, "expired", None, "it expired")
            if done is not None:
                return done
            fresh = await self.store.get_request(request.id)
            return fresh or request
        return request

    async def _finish(
        self, request: ApprovalRequest, status: str, by: str | None, reason: str | None
    ) -> ApprovalRequest | None:
        """CAS to a new status; the updated request, or None if another change won."""
        assert status in FINAL_STATES or status == "approved"
        new = replace(
            request,
            status=status,
            waiting=request.waiting and status == "approved",
            decided_at=self.clock(),
            decided_by=by,
            decision_reason=reason,
        )
        if not await self.store.update_request(new):
            return None
        new = replace(new, version=new.version + 1)
        self._audit(f"approval_{status}", new, by=by, reason=reason)
        if status in ("approved", "denied"):
            self.notifier.announce(status, new)
        self._wake(request.id)
        return new

    def _wake(self, request_id: str) -> None:
        event = self._events.get(request_id)
        if event is not None:
            event.set()

    def _audit(self, event: str, request: ApprovalRequest, **fields: object) -> None:
        self.audit.write(
            event,
            request=request.id,
            status=request.status,
            user=request.user,
            target=request.target,
            login=request.login,
            cwd=request.cwd,
            rule=request.rule,
            **bounded(request.command),
            session=request.session_id,
            approvals=[a.user for a in request.approvals],
            **fields,
        )
